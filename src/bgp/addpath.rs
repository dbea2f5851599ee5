//! ADD-PATH send (RFC 7911): which paths an add-path peer is sent, the path identifier each
//! one carries, and the record of what the peer holds.
//!
//! Owns: per peer and family for which we send path identifiers (`Negotiated::add_path_tx`),
//! the paths advertised per key with their identifiers (`AddPathOut`); the choice of paths;
//! which RIB changes queue a key for such a peer (`feed`: best-path and other-path changes);
//! switching the RIB tables that an add-path peer reads to record every path change
//! (`track`). Must not: change the RIB's paths, decide export rules (adj_out.rs `exportable`
//! and `export_for`, applied here per path) or build UPDATE bytes (adj_out.rs packs the
//! announcements and withdrawals `key_ops` returns, path identifier first).
//!
//! Which paths: RFC 7911 leaves the choice to the sender; §5 only asks that "A BGP speaker
//! SHOULD include the best route [RFC4271] when more than one path is advertised to a
//! neighbor, unless it is a path received from that neighbor". vmmi sends every exportable
//! path of the key, best first, like FRR's `addpath-tx-all-paths` — so the best path is always
//! among them.
//!
//! Path identifiers: RFC 7911 §2: "The assignment of the Path Identifier for a path by a BGP
//! speaker is purely a local matter. However, the Path Identifier MUST be assigned in such a
//! way that the BGP speaker is able to use the (Prefix, Path Identifier) to uniquely identify
//! a path advertised to a neighbor. A BGP speaker that re-advertises a route MUST generate its
//! own Path Identifier to be associated with the re-advertised route." A path is (source peer,
//! source path identifier); the first time it is advertised to the peer it gets the smallest
//! identifier ≥ 1 that no path of the key holds for this peer — counting the paths being
//! withdrawn in the same round, so an identifier is never reused before its withdrawal has
//! been sent. It keeps that identifier as long as it stays advertised (attribute changes
//! replace it under the same identifier: §5, "a new advertisement for a given address prefix
//! and a given Path Identifier replaces a previous advertisement"). Identifiers are per
//! session: a new session starts from an empty record.
//!
//! Cost: only peers with ADD-PATH send hold a record (one entry per advertised path: source,
//! identifier, the source attributes and NLRI rest, so an unchanged path is not re-sent —
//! about 180 octets per key at 1M single-path keys); the RIB records non-best changes only in
//! tables such a peer reads, and a speaker without such a peer runs the RIB's and
//! Adj-RIB-Out's plain code (rib `announce`/`withdraw` compile a tracking copy apart).

use std::collections::BTreeMap;
use std::sync::Arc;

use smallvec::SmallVec;

use super::adj_out::{Export, export_for, exportable, feed_best_all, queue};
use super::{Negotiated, Speaker};
use crate::rib::key::{NlriRest, RouteKey};
use crate::rib::{Attrs, Change, Map, Path, PathChange, PeerId};
use crate::wire::bgp::afi::Family;
use crate::wire::bgp::message::BgpCtx;

/// One path as advertised to the peer.
struct Sent {
    src: PeerId,
    src_id: u32,
    /// The path identifier the peer knows it by.
    id: u32,
    /// What was sent (the source attributes, pinned so the pointer stays unique, and the NLRI
    /// rest): an unchanged path is not sent again.
    attrs: Arc<Attrs>,
    rest: NlriRest,
}

/// What an add-path peer has been sent: per family and key, the advertised paths.
#[derive(Default)]
pub(super) struct AddPathOut {
    sent: BTreeMap<Family, Map<RouteKey, SmallVec<[Sent; 2]>>>,
}

/// One NLRI to put on the wire for a key: announce (with the exported attributes and the NLRI
/// rest) or withdraw, under path identifier `id`.
pub(super) enum Op {
    Announce {
        id: u32,
        export: Arc<Export>,
        rest: NlriRest,
    },
    Withdraw {
        id: u32,
    },
}

/// The smallest identifier ≥ 1 that no entry of `rec` holds.
fn free_id(rec: &[Sent]) -> u32 {
    let mut id = 1;
    while rec.iter().any(|s| s.id == id) {
        id += 1;
    }
    id
}

/// Bring what `peer` holds for `key` in line with the RIB: the announcements and withdrawals
/// to send go to `ops`. `full`: re-send every path even if unchanged (session start, ROUTE-
/// REFRESH). `hint`: the key's table position, as in `Rib::entry_hint`.
#[allow(clippy::too_many_arguments)]
pub(super) fn key_ops(
    sp: &mut Speaker,
    peer: PeerId,
    n: &Negotiated,
    ctx: &BgpCtx,
    family: Family,
    key: &RouteKey,
    hint: usize,
    full: bool,
    ops: &mut Vec<Op>,
) {
    // every path that may go to the peer, best first, with its export
    let paths: SmallVec<[Path; 2]> = sp
        .rib
        .entry_hint(family, key, hint)
        .map(|e| {
            e.paths
                .iter()
                .filter(|p| exportable(sp, peer, p))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut want: SmallVec<[(Path, Arc<Export>); 2]> = SmallVec::new();
    for p in paths {
        if let Some(e) = export_for(sp, peer, n, ctx, family, &p) {
            want.push((p, e));
        }
    }
    let Some(p) = sp.peers.get_mut(&peer) else {
        return;
    };
    let table = p.out.addpath.sent.entry(family).or_default();
    // one hash lookup per key: update the record in place
    match table.entry(key.clone()) {
        indexmap::map::Entry::Occupied(mut o) => {
            diff(o.get_mut(), &want, full, ops);
            if o.get().is_empty() {
                o.swap_remove();
            }
        }
        indexmap::map::Entry::Vacant(v) => {
            let mut rec = SmallVec::new();
            diff(&mut rec, &want, full, ops);
            if !rec.is_empty() {
                v.insert(rec);
            }
        }
    }
    if table.is_empty() && table.capacity() > 4096 {
        // a peer whose paths are all gone gives back what a bulk load grew
        *table = Map::default();
    }
}

/// Bring the record `rec` of one key in line with `want` (the exportable paths, best first),
/// pushing the announcements and withdrawals that takes to `ops`.
fn diff(
    rec: &mut SmallVec<[Sent; 2]>,
    want: &[(Path, Arc<Export>)],
    full: bool,
    ops: &mut Vec<Op>,
) {
    for (path, export) in want {
        let known = rec
            .iter_mut()
            .find(|s| s.src == path.peer && s.src_id == path.path_id);
        match known {
            Some(s) => {
                if full || !Arc::ptr_eq(&s.attrs, &path.attrs) || s.rest != path.rest {
                    s.attrs = path.attrs.clone();
                    s.rest = path.rest.clone();
                    ops.push(Op::Announce {
                        id: s.id,
                        export: export.clone(),
                        rest: path.rest.clone(),
                    });
                }
            }
            None => {
                // allocated while the paths about to be withdrawn still hold their ids
                let id = free_id(rec);
                rec.push(Sent {
                    src: path.peer,
                    src_id: path.path_id,
                    id,
                    attrs: path.attrs.clone(),
                    rest: path.rest.clone(),
                });
                ops.push(Op::Announce {
                    id,
                    export: export.clone(),
                    rest: path.rest.clone(),
                });
            }
        }
    }
    // RFC 7911 §5: withdraw exactly the identifiers of the paths that are gone (or no longer
    // exportable); the others stay advertised
    rec.retain(|s| {
        let keep = want
            .iter()
            .any(|(p, _)| p.peer == s.src && p.path_id == s.src_id);
        if !keep {
            ops.push(Op::Withdraw { id: s.id });
        }
        keep
    });
}

/// Queue for ADD-PATH peer `peer` the keys of its families `fams` that changed: in the families
/// we send it every path for (`tx`), a change of any path but its own (its own paths never go
/// back to it, nor change what else it gets); in the others, best-path changes as for any peer.
pub(super) fn feed(
    sp: &mut Speaker,
    peer: PeerId,
    fams: &[Family],
    tx: &[Family],
    changes: &[Change],
    path_changes: &[PathChange],
) {
    let best_only: Vec<Family> = fams.iter().filter(|f| !tx.contains(f)).copied().collect();
    feed_best_all(sp, peer, &best_only, changes);
    for ch in changes
        .iter()
        .filter(|c| fams.contains(&c.family) && tx.contains(&c.family))
    {
        // whose path changed is known when the key came or went (its only path); a key that
        // appeared with one of the peer's own paths is the bulk-load case: nothing to send
        let own = match (&ch.old, ch.new_peer) {
            (None, Some(p)) => p == peer,
            (Some(o), None) => o.peer == peer,
            _ => false,
        };
        if !own {
            queue(sp, peer, ch.family, &ch.key, ch.index, false);
        }
    }
    for pc in path_changes {
        if tx.contains(&pc.family) && fams.contains(&pc.family) && pc.peer != peer {
            queue(sp, peer, pc.family, &pc.key, pc.index, false);
        }
    }
}

/// Switch every RIB table an established ADD-PATH send peer reads to record all path
/// changes, and the others back (after a session comes up or goes down).
pub(super) fn track(sp: &mut Speaker) {
    let mut want: Vec<Family> = Vec::new();
    for n in sp.peers.values().filter_map(|p| p.nego()) {
        for f in &n.add_path_tx {
            if !want.contains(f) {
                want.push(*f);
            }
        }
    }
    let have: Vec<Family> = sp.rib.families().collect();
    for f in have.into_iter().chain(want.iter().copied()) {
        sp.rib.set_all_paths(f, want.contains(&f));
    }
}
