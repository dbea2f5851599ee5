//! Adj-RIB-Out: export policy, attribute rewriting, UPDATE packing and End-of-RIB.
//!
//! Owns: per peer, the keys whose advertisement must be (re)computed, the export cache, and
//! the bytes of every UPDATE we send — with the 4-octet path identifier before each NLRI for
//! the families where we send ADD-PATH (RFC 7911 §3). Must not: change the RIB.
//!
//! The Adj-RIB-Out is not a copy of the routes: what a peer has been sent is a function of the
//! Loc-RIB best path and the export rules below, so only the keys that changed since the last
//! packing are kept (`pending`, with a bit saying whether the peer had been sent the old best
//! path — it decides between sending a withdrawal or nothing). A 1M-route table costs nothing
//! per peer once the peer has caught up. The exception is a family negotiated for ADD-PATH
//! send (`Negotiated::add_path_tx`): there the peer gets every exportable path of a key, each
//! under its own path identifier, and what it holds is recorded per key (addpath.rs) — the
//! only per-route state kept for a peer, and only for such peers.
//!
//! Export rules (RFC 4271 §9.1.3, RFC 4456 §6), applied to each path sent:
//! - never back to the peer the path came from;
//! - iBGP → iBGP only when reflecting: "A route from a non-client peer: reflect to all the
//!   clients. A route from a client peer: reflect to all non-client peers and also to the
//!   client peers";
//! - to eBGP: prepend our AS (§5.1.2), drop LOCAL_PREF (§5.1.5), drop a MED learned from
//!   another AS (§5.1.4: "MUST NOT be propagated to other neighboring ASes"), drop
//!   ORIGINATOR_ID/CLUSTER_LIST (RFC 4456: non-transitive, AS-local); IP unicast next hop =
//!   our session address (§5.1.3); EVPN next hop unchanged — it is the VTEP (FRR does the same);
//! - to iBGP: LOCAL_PREF 100 when absent; reflected routes get ORIGINATOR_ID (if absent) and
//!   our CLUSTER_ID prepended to CLUSTER_LIST (RFC 4456 §8);
//! - unknown optional transitive attributes pass with the Partial bit, unknown non-transitive
//!   ones are dropped (RFC 4271 §5);
//! - to a peer without 4-octet AS support: AS4_PATH alongside an AS_TRANS AS_PATH (RFC 6793).
//!
//! Packing: keys are taken in batches, grouped by exported attribute set (one shared encoding
//! per set), and each group fills UPDATEs up to the negotiated message size (4096, or 65535
//! with RFC 8654). Withdrawals of a batch go before its announcements, so a path identifier
//! freed and given to another path in the same batch reaches the peer in that order.
//! MP_REACH_NLRI goes last in the attribute list (tshark shows the VNI only when the
//! Encapsulation community comes first). End-of-RIB (RFC 4724 §2) follows the initial table
//! for each family.

use std::collections::BTreeMap;

/// Hash maps here: the RIB hasher (foldhash); keys are pointers and peer numbers.
type HashMap<K, V> = std::collections::HashMap<K, V, crate::rib::Hasher>;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::{MAX_INFLIGHT, Speaker, addpath, join_nlri, session};
use crate::rib::key::{NlriRest, RouteKey};
use crate::rib::{Attrs, Map, Path, PeerId};
use crate::wire::bgp::afi::Family;
use crate::wire::bgp::attr::{AsSegment, AttrValue, MpNextHop, PathAttr, code, flags, segment};
use crate::wire::bgp::message::{BgpCtx, HEADER_LEN, MARKER, Message, msg_type};
use crate::wire::bgp::route_refresh::{RouteRefreshMsg, subtype};
use crate::wire::bgp::update::UpdateMsg;

/// Keys examined per packing round.
const BATCH: usize = 4096;

#[derive(Default)]
pub(super) struct AdjOut {
    /// Keys to (re)advertise per family → "the peer had been sent the previous best path".
    pending: BTreeMap<Family, Map<RouteKey, Pending>>,
    /// End-of-RIB to send once the family's initial table is out.
    eor_due: Vec<Family>,
    /// RFC 7313: EoRR to send once the refreshed family is out.
    eorr_due: Vec<Family>,
    /// (source attributes, source peer) → exported attributes for this peer.
    cache: HashMap<(usize, PeerId), CacheEntry>,
    /// Families disabled by RFC 7606 AFI/SAFI disable on the receive side.
    pub disabled: Vec<Family>,
    /// RFC 7911: what the peer holds in the families we send path identifiers for (empty for
    /// every other peer).
    pub addpath: addpath::AddPathOut,
}

impl AdjOut {
    pub fn pending_len(&self) -> usize {
        self.pending.values().map(Map::len).sum()
    }
}

/// A queued key: whether the peer had been sent the old best path, and where the key sat in
/// the RIB table (a lookup hint). `full` (ADD-PATH families only, where the record says what
/// was sent): send every path again, unchanged or not — a full sync or ROUTE-REFRESH.
#[derive(Clone, Copy)]
struct Pending {
    was: bool,
    full: bool,
    hint: usize,
}

/// The source attributes (pinned, so the pointer key stays valid) and their export.
type CacheEntry = (Arc<Attrs>, Option<Arc<Export>>);

/// One exported attribute set, encoded for the peer.
pub(super) struct Export {
    /// Every attribute but MP_REACH_NLRI, encoded with the session's context.
    attrs: Vec<u8>,
    /// Next hop for MP_REACH_NLRI (or in NEXT_HOP for IPv4 unicast, already in `attrs`).
    next_hop: MpNextHop,
}

/// What export needs to know about the source of a path.
struct Src {
    local: bool,
    ibgp: bool,
    rr_client: bool,
    bgp_id: Ipv4Addr,
}

fn src_of(sp: &Speaker, from: PeerId) -> Src {
    if from == PeerId::LOCAL {
        return Src {
            local: true,
            ibgp: false,
            rr_client: false,
            bgp_id: sp.cfg.router_id,
        };
    }
    let p = sp.peers.get(&from);
    let meta = sp.rib.peer(from);
    Src {
        local: false,
        ibgp: meta.is_some_and(|m| !m.ebgp),
        rr_client: p.is_some_and(|p| p.cfg.rr_client),
        bgp_id: meta.map_or(Ipv4Addr::UNSPECIFIED, |m| m.bgp_id),
    }
}

/// RFC 4271 §9.1.3 / RFC 4456 §6: may `path` go to `dest` at all?
pub(super) fn exportable(sp: &Speaker, dest: PeerId, path: &Path) -> bool {
    exportable_from(sp, dest, path.peer)
}

/// `exportable` for a path learned from `from`.
pub(super) fn exportable_from(sp: &Speaker, dest: PeerId, from: PeerId) -> bool {
    if from == dest {
        return false;
    }
    let Some(d) = sp.peers.get(&dest) else {
        return false;
    };
    let Some(n) = d.nego() else {
        return false;
    };
    let src = src_of(sp, from);
    if src.ibgp && n.ibgp {
        return src.rr_client || d.cfg.rr_client;
    }
    true
}

/// Feed the RIB's changed keys to every established peer's pending set.
pub(super) fn feed_changes(sp: &mut Speaker) {
    if !sp.rib.has_changes() {
        return;
    }
    let changes: Vec<crate::rib::Change> = sp.rib.drain_changes().collect();
    // only tables an ADD-PATH send peer reads record these (empty otherwise: no allocation)
    let path_changes: Vec<crate::rib::PathChange> = sp.rib.drain_path_changes().collect();
    if let Some(w) = &mut sp.watched {
        let evpn = changes.iter().filter(|c| c.family == Family::L2VPN_EVPN);
        w.extend(evpn.map(|c| c.key.clone()));
    }
    if sp.defer_until.is_some() {
        return; // the full sync at the end of deferral covers them
    }
    let targets: Vec<(PeerId, Vec<Family>, Vec<Family>)> = sp
        .peers
        .values()
        .filter_map(|p| {
            p.nego()
                .map(|n| (p.id, n.families.clone(), n.add_path_tx.clone()))
        })
        .collect();
    for (peer, fams, tx) in targets {
        if !tx.is_empty() {
            addpath::feed(sp, peer, &fams, &tx, &changes, &path_changes);
            continue;
        }
        feed_best_all(sp, peer, &fams, &changes);
    }
}

/// Queue for `peer`, which is sent the best path only in `fams`, every best-path change of
/// those families in one drain. Whether a source peer's paths may go to `peer` is looked up
/// once per source (a bulk load has one), and the pending set grows once for what is queued
/// instead of doubling its way there.
pub(super) fn feed_best_all(
    sp: &mut Speaker,
    peer: PeerId,
    fams: &[Family],
    changes: &[crate::rib::Change],
) {
    let mut may: Vec<(PeerId, bool)> = Vec::new();
    let mut exp = |sp: &Speaker, from: PeerId| match may.iter().find(|(p, _)| *p == from) {
        Some((_, ok)) => *ok,
        None => {
            let ok = exportable_from(sp, peer, from);
            may.push((from, ok));
            ok
        }
    };
    let mut todo: Vec<(&crate::rib::Change, bool)> = Vec::with_capacity(changes.len());
    for ch in changes.iter().filter(|c| fams.contains(&c.family)) {
        let was = ch.old.as_ref().is_some_and(|o| exp(sp, o.peer));
        // nothing to send when the peer was not sent the old best and may not be sent the new
        // one (it came from this very peer — a bulk load — or from an iBGP peer towards iBGP
        // without reflection)
        if was || ch.new_peer.is_some_and(|from| exp(sp, from)) {
            todo.push((ch, was));
        }
    }
    let Some(p) = sp.peers.get_mut(&peer) else {
        return;
    };
    for f in fams {
        let n = todo.iter().filter(|(c, _)| c.family == *f).count();
        if n == 0 {
            continue;
        }
        let q = p.out.pending.entry(*f).or_default();
        q.reserve(n);
        for (ch, was) in todo.iter().filter(|(c, _)| c.family == *f) {
            enqueue(q, &ch.key, ch.index, *was);
        }
    }
}

/// Queue `key` for `peer`; a key already queued keeps its `was` (the state before the first
/// change since it was packed) and takes the newer hint.
#[inline(always)]
pub(super) fn queue(
    sp: &mut Speaker,
    peer: PeerId,
    family: Family,
    key: &RouteKey,
    hint: usize,
    was: bool,
) {
    if let Some(p) = sp.peers.get_mut(&peer) {
        enqueue(p.out.pending.entry(family).or_default(), key, hint, was);
    }
}

/// `queue` into one family's pending set.
#[inline(always)]
fn enqueue(q: &mut Map<RouteKey, Pending>, key: &RouteKey, hint: usize, was: bool) {
    let e = q.entry(key.clone()).or_insert(Pending {
        was,
        full: false,
        hint,
    });
    e.hint = hint;
}

/// Queue the whole Loc-RIB of `family` (or of every negotiated family, followed by End-of-RIB)
/// for `peer`: at session start, after deferral, or on ROUTE-REFRESH.
pub(super) fn start_full_sync(sp: &mut Speaker, peer: PeerId, family: Option<Family>) {
    let Some(p) = sp.peers.get(&peer) else {
        return;
    };
    let Some(n) = p.nego().cloned() else {
        return;
    };
    let fams: Vec<Family> = match family {
        Some(f) => vec![f],
        None => n.families.clone(),
    };
    let mut keys: Vec<(Family, Vec<RouteKey>)> = Vec::new();
    for f in &fams {
        if let Some(t) = sp.rib.table(*f) {
            keys.push((*f, t.map.keys().cloned().collect()));
        }
    }
    let enhanced = family.is_some() && n.enhanced_route_refresh;
    let conn = p.established().map(|c| c.id);
    if enhanced && let (Some(f), Some(conn)) = (family, conn) {
        // RFC 7313 §4: "Before the speaker starts a route re-advertisement ... it MUST send a
        // BoRR message."
        session::send_msg(
            sp,
            peer,
            conn,
            &Message::RouteRefresh(RouteRefreshMsg {
                family: f,
                subtype: subtype::BORR,
            }),
        );
    }
    let Some(p) = sp.peers.get_mut(&peer) else {
        return;
    };
    for (f, ks) in keys {
        let q = p.out.pending.entry(f).or_default();
        for (hint, k) in ks.into_iter().enumerate() {
            q.entry(k).and_modify(|e| e.full = true).or_insert(Pending {
                was: false,
                full: true,
                hint,
            });
        }
    }
    match family {
        None => p.out.eor_due = fams,
        Some(f) if enhanced && !p.out.eorr_due.contains(&f) => p.out.eorr_due.push(f),
        Some(_) => {}
    }
}

pub(super) fn pack_all(sp: &mut Speaker) {
    let ids: Vec<PeerId> = sp
        .peers
        .values()
        .filter(|p| {
            p.established().is_some()
                && (p.out.pending_len() > 0
                    || !p.out.eor_due.is_empty()
                    || !p.out.eorr_due.is_empty())
        })
        .map(|p| p.id)
        .collect();
    for id in ids {
        pack(sp, id);
    }
}

/// A group of announcements sharing one exported attribute set.
struct Group {
    export: Arc<Export>,
    nlri: Vec<u8>,
}

/// The groups of one packing round, found by their export's address.
#[derive(Default)]
struct Groups {
    list: Vec<Group>,
    index: HashMap<usize, usize>,
    /// The group of the previous push (consecutive keys mostly share one).
    last: Option<(usize, usize)>,
}

impl Groups {
    /// Append one NLRI record, written by `f`, to the group for `e` (created on first use).
    fn push(&mut self, e: &Arc<Export>, f: impl FnOnce(&mut Vec<u8>)) {
        let ptr = Arc::as_ptr(e) as usize;
        let gi = match self.last {
            Some((p, gi)) if p == ptr => gi,
            _ => {
                let list = &mut self.list;
                let gi = *self.index.entry(ptr).or_insert_with(|| {
                    list.push(Group {
                        export: e.clone(),
                        nlri: Vec::new(),
                    });
                    list.len() - 1
                });
                self.last = Some((ptr, gi));
                gi
            }
        };
        if let Some(g) = self.list.get_mut(gi) {
            push_record(&mut g.nlri, f);
        }
    }
}

fn pack(sp: &mut Speaker, peer: PeerId) {
    loop {
        let Some(p) = sp.peers.get(&peer) else {
            return;
        };
        let Some(c) = p.established() else {
            return;
        };
        if c.inflight >= MAX_INFLIGHT {
            return;
        }
        let conn = c.id;
        let Some(n) = c.nego.clone() else {
            return;
        };
        let ctx = c.ctx.clone();
        let Some(family) = p
            .out
            .pending
            .iter()
            .find(|(_, q)| !q.is_empty())
            .map(|(f, _)| *f)
        else {
            // everything out: End-of-RIB / EoRR now
            let eor = p.out.eor_due.clone();
            let eorr = p.out.eorr_due.clone();
            if let Some(p) = sp.peers.get_mut(&peer) {
                p.out.eor_due.clear();
                p.out.eorr_due.clear();
            }
            for f in eor {
                session::send_msg(sp, peer, conn, &Message::Update(UpdateMsg::eor(f)));
            }
            for f in eorr {
                session::send_msg(
                    sp,
                    peer,
                    conn,
                    &Message::RouteRefresh(RouteRefreshMsg {
                        family: f,
                        subtype: subtype::EORR,
                    }),
                );
            }
            return;
        };
        let batch: Vec<(RouteKey, Pending)> = {
            let Some(q) = sp
                .peers
                .get_mut(&peer)
                .and_then(|p| p.out.pending.get_mut(&family))
            else {
                return;
            };
            let take = q.len().min(BATCH);
            let b: Vec<(RouteKey, Pending)> = (0..take).filter_map(|_| q.pop()).collect();
            if q.is_empty() && q.capacity() > BATCH {
                // a caught-up peer costs nothing: give back what a bulk load grew
                *q = Map::default();
            }
            b
        };
        let mut groups = Groups::default();
        let mut withdrawn: Vec<u8> = Vec::new();
        // RFC 7911 §5: with ADD-PATH send negotiated for the family "the speaker MUST generate
        // a route update for the <AFI, SAFI> based on the combination of the address prefix
        // and the Path Identifier, and use the extended NLRI encodings"
        if n.add_path_tx.contains(&family) {
            let mut ops: Vec<addpath::Op> = Vec::new();
            for (key, Pending { full, hint, .. }) in batch {
                addpath::key_ops(sp, peer, &n, &ctx, family, &key, hint, full, &mut ops);
                for op in ops.drain(..) {
                    match op {
                        addpath::Op::Announce { id, export, rest } => {
                            groups.push(&export, |out| {
                                out.extend_from_slice(&id.to_be_bytes());
                                join_nlri(family, &key, &rest, out);
                            });
                        }
                        addpath::Op::Withdraw { id } => {
                            let rest = withdraw_rest(family, &key);
                            push_record(&mut withdrawn, |out| {
                                out.extend_from_slice(&id.to_be_bytes());
                                join_nlri(family, &key, &rest, out);
                            });
                        }
                    }
                }
            }
        } else {
            // the keys of a bulk load share their attribute set: whether it may go to this
            // peer and its export are found once per run of keys with the same set
            let mut last: Option<(Arc<Attrs>, PeerId, Option<Arc<Export>>)> = None;
            for (key, Pending { was, hint, .. }) in batch {
                let exported = match sp.rib.best_hint(family, &key, hint) {
                    None => None,
                    Some(b) => match &last {
                        Some((a, from, e)) if Arc::ptr_eq(a, &b.attrs) && *from == b.peer => {
                            e.clone().map(|e| (e, b.rest.clone()))
                        }
                        _ => {
                            let b = b.clone();
                            let e = exportable(sp, peer, &b)
                                .then(|| export_for(sp, peer, &n, &ctx, family, &b))
                                .flatten();
                            last = Some((b.attrs.clone(), b.peer, e.clone()));
                            e.map(|e| (e, b.rest))
                        }
                    },
                };
                match exported {
                    Some((e, rest)) => {
                        groups.push(&e, |out| join_nlri(family, &key, &rest, out));
                    }
                    None if was => {
                        let rest = withdraw_rest(family, &key);
                        push_record(&mut withdrawn, |out| join_nlri(family, &key, &rest, out));
                    }
                    None => {}
                }
            }
        }
        let max = ctx.max_len();
        let mut msgs: Vec<Vec<u8>> = Vec::new();
        emit_withdraw(family, &withdrawn, max, &mut msgs);
        for g in &groups.list {
            emit_reach(family, &g.export, &g.nlri, max, &mut msgs);
        }
        if let Some(p) = sp.peers.get_mut(&peer) {
            p.updates_out += msgs.len() as u64;
            p.msgs_out += msgs.len() as u64;
            if let Some(c) = p.conn_mut(conn) {
                for m in &msgs {
                    c.inflight += m.len();
                }
            }
        }
        for data in msgs {
            sp.out.push_back(super::Output::Send { conn, data });
        }
    }
}

/// The NLRI rest for a withdrawal: zero ESI, labels and gateway (the receiver keys on the
/// rest; FRR sends label 0 in withdrawals too).
fn withdraw_rest(family: Family, key: &RouteKey) -> NlriRest {
    if family != Family::L2VPN_EVPN {
        return NlriRest::new(&[]);
    }
    let k = key.as_bytes();
    match k.first() {
        Some(1) => NlriRest::new(&[0; 3]),
        Some(2) => NlriRest::new(&[0; 13]),
        Some(5) => {
            // key: type RD(8) tag(4) len(1) prefix(4|16) → rest ESI(10) GW(4|16) label(3)
            let a = k.len().saturating_sub(1 + 8 + 4 + 1);
            NlriRest::new(&vec![0; 10 + a + 3])
        }
        _ => NlriRest::new(&[]),
    }
}

/// Append one NLRI written by `f` as a record: a 2-octet length, then the bytes (an EVPN NLRI
/// can be 257 octets: type, length 255, value).
fn push_record(buf: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) {
    let at = buf.len();
    buf.extend_from_slice(&[0, 0]);
    f(buf);
    let len = u16::try_from(buf.len() - at - 2).unwrap_or(u16::MAX);
    if let Some(l) = buf.get_mut(at..at + 2) {
        l.copy_from_slice(&len.to_be_bytes());
    }
}

/// Iterate the records made by `push_record`.
fn records(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let len = usize::from(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]));
        let r = buf.get(at + 2..at + 2 + len)?;
        at += 2 + len;
        Some(r)
    })
}

fn header(out: &mut Vec<u8>) {
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&[0, 0, msg_type::UPDATE]);
}

fn finish(mut m: Vec<u8>, msgs: &mut Vec<Vec<u8>>) {
    let len = u16::try_from(m.len()).unwrap_or(u16::MAX).to_be_bytes();
    if let Some(l) = m.get_mut(16..18) {
        l.copy_from_slice(&len);
    }
    msgs.push(m);
}

/// Append records while the message stays within `max - reserve` octets.
fn fill<'a>(
    m: &mut Vec<u8>,
    it: &mut std::iter::Peekable<impl Iterator<Item = &'a [u8]>>,
    max: usize,
    reserve: usize,
) {
    while let Some(r) = it.peek() {
        if m.len() + r.len() + reserve > max {
            break;
        }
        m.extend_from_slice(r);
        it.next();
    }
}

/// Write a 2-octet length field at `m[at..at + 2]`.
fn set_len(m: &mut [u8], at: usize, len: usize) {
    if let Some(l) = m.get_mut(at..at + 2) {
        l.copy_from_slice(&u16::try_from(len).unwrap_or(0).to_be_bytes());
    }
}

/// Start an MP_REACH/MP_UNREACH attribute (extended length, patched by `end_mp`) with its
/// AFI/SAFI; returns where its value starts.
fn start_mp(m: &mut Vec<u8>, type_code: u8, family: Family) -> usize {
    m.extend_from_slice(&[flags::OPTIONAL | flags::EXTENDED_LENGTH, type_code, 0, 0]);
    let attr_start = m.len();
    m.extend_from_slice(&family.afi.0.to_be_bytes());
    m.push(family.safi.0);
    attr_start
}

/// Patch the attribute length and the Total Path Attribute Length after the MP attribute,
/// the last attribute of the message.
fn end_mp(m: &mut [u8], attr_start: usize) {
    let len = m.len();
    set_len(m, attr_start - 2, len - attr_start);
    set_len(m, HEADER_LEN + 2, len - HEADER_LEN - 4);
}

fn emit_withdraw(family: Family, recs: &[u8], max: usize, msgs: &mut Vec<Vec<u8>>) {
    if recs.is_empty() {
        return;
    }
    let mut it = records(recs).peekable();
    while it.peek().is_some() {
        let mut m = Vec::with_capacity(max.min(4096));
        header(&mut m);
        if family == Family::IPV4_UNICAST {
            // Withdrawn Routes Length, routes, Total Path Attribute Length 0
            m.extend_from_slice(&[0, 0]);
            fill(&mut m, &mut it, max, 2);
            let wlen = m.len() - HEADER_LEN - 2;
            set_len(&mut m, HEADER_LEN, wlen);
            m.extend_from_slice(&[0, 0]);
        } else {
            // Withdrawn Routes Length 0, attributes: MP_UNREACH_NLRI (extended length)
            m.extend_from_slice(&[0, 0, 0, 0]);
            let attr_start = start_mp(&mut m, code::MP_UNREACH_NLRI, family);
            fill(&mut m, &mut it, max, 0);
            end_mp(&mut m, attr_start);
        }
        finish(m, msgs);
    }
}

fn emit_reach(family: Family, e: &Export, recs: &[u8], max: usize, msgs: &mut Vec<Vec<u8>>) {
    let mut it = records(recs).peekable();
    while it.peek().is_some() {
        let mut m = Vec::with_capacity(max.min(4096));
        header(&mut m);
        m.extend_from_slice(&[0, 0, 0, 0]); // withdrawn len, total attr len (patched)
        m.extend_from_slice(&e.attrs);
        if family == Family::IPV4_UNICAST {
            let attrs_len = m.len() - HEADER_LEN - 4;
            fill(&mut m, &mut it, max, 0);
            set_len(&mut m, HEADER_LEN + 2, attrs_len);
        } else {
            let attr_start = start_mp(&mut m, code::MP_REACH_NLRI, family);
            e.next_hop.encode(&mut m);
            m.push(0);
            let before = m.len();
            fill(&mut m, &mut it, max, 0);
            if m.len() == before {
                // a single NLRI that cannot fit is dropped rather than looping forever
                it.next();
                continue;
            }
            end_mp(&mut m, attr_start);
        }
        finish(m, msgs);
    }
}

/// The exported attribute set of `path` for `dest`, cached per (attribute set, source peer).
/// Always inlined (it has two callers, `pack` and addpath.rs): the cache hit is the
/// per-route hot path of packing.
#[inline(always)]
pub(super) fn export_for(
    sp: &mut Speaker,
    dest: PeerId,
    n: &super::Negotiated,
    ctx: &BgpCtx,
    family: Family,
    path: &Path,
) -> Option<Arc<Export>> {
    let ck = (Arc::as_ptr(&path.attrs) as usize, path.peer);
    if let Some((_, e)) = sp.peers.get(&dest).and_then(|p| p.out.cache.get(&ck)) {
        return e.clone();
    }
    let src = src_of(sp, path.peer);
    let e = make_export(sp, n, ctx, family, &src, &path.attrs).map(Arc::new);
    if let Some(p) = sp.peers.get_mut(&dest) {
        if p.out.cache.len() > 65536 {
            p.out.cache.clear();
        }
        p.out.cache.insert(ck, (path.attrs.clone(), e.clone()));
    }
    e
}

fn local_addr_for(n: &super::Negotiated, v6: bool) -> Option<MpNextHop> {
    match n.local_addr? {
        IpAddr::V4(a) if !v6 => Some(MpNextHop::Ipv4(a)),
        IpAddr::V6(a) if v6 => Some(MpNextHop::Ipv6(a)),
        IpAddr::V6(a) if !v6 => a.to_ipv4_mapped().map(MpNextHop::Ipv4),
        _ => None,
    }
}

fn make_export(
    sp: &Speaker,
    n: &super::Negotiated,
    ctx: &BgpCtx,
    family: Family,
    src: &Src,
    a: &Attrs,
) -> Option<Export> {
    let ebgp = !n.ibgp;
    let reflect = !ebgp && src.ibgp;
    let mut list: Vec<PathAttr> = Vec::with_capacity(a.list.len() + 3);
    let mut have_origin = false;
    for p in &a.list {
        match p.type_code {
            code::ORIGIN => {
                have_origin = true;
                list.push(p.clone());
            }
            code::AS_PATH | code::AS4_PATH | code::AS4_AGGREGATOR | code::NEXT_HOP => {}
            code::AGGREGATOR => {
                // RFC 6793 §4.2.2: towards an OLD speaker, AGGREGATOR carries AS_TRANS and
                // AS4_AGGREGATOR the real AS
                if let AttrValue::Aggregator(ag) = &p.value
                    && !n.four_octet_as
                    && ag.asn > 65535
                {
                    list.push(PathAttr::new(
                        code::AS4_AGGREGATOR,
                        AttrValue::As4Aggregator(ag.clone()),
                    ));
                }
                list.push(p.clone());
            }
            code::LOCAL_PREF if ebgp => {}
            code::MED if ebgp && !src.local => {}
            code::ORIGINATOR_ID | code::CLUSTER_LIST => {}
            _ => {
                if let Some(q) = if src.local {
                    Some(p.clone())
                } else {
                    p.for_propagation()
                } {
                    list.push(q);
                }
            }
        }
    }
    if !have_origin {
        list.push(PathAttr::new(code::ORIGIN, AttrValue::Origin(0)));
    }
    // AS_PATH (RFC 4271 §5.1.2): prepend our AS towards eBGP.
    let mut segs: Vec<AsSegment> = a.as_path().to_vec();
    if ebgp {
        // RFC 5065 §5.3: confederation segments never leave the confederation (vmmi is not a
        // confederation member; a local route may still carry them)
        segs.retain(|s| s.seg_type == segment::AS_SEQUENCE || s.seg_type == segment::AS_SET);
        match segs.first_mut() {
            Some(s) if s.seg_type == segment::AS_SEQUENCE && s.asns.len() < 255 => {
                s.asns.insert(0, sp.cfg.asn)
            }
            _ => segs.insert(
                0,
                AsSegment {
                    seg_type: segment::AS_SEQUENCE,
                    asns: vec![sp.cfg.asn],
                },
            ),
        }
    }
    let needs_as4 = !n.four_octet_as && segs.iter().flat_map(|s| &s.asns).any(|x| *x > 65535);
    if needs_as4 {
        list.push(PathAttr::new(
            code::AS4_PATH,
            AttrValue::As4Path(segs.clone()),
        ));
    }
    list.push(PathAttr::new(code::AS_PATH, AttrValue::AsPath(segs)));
    if !ebgp && a.local_pref.is_none() {
        list.push(PathAttr::new(code::LOCAL_PREF, AttrValue::LocalPref(100)));
    }
    if reflect {
        // RFC 4456 §8: "ORIGINATOR_ID ... created by an RR ... If this attribute is already
        // present, it MUST NOT be modified"; "When an RR reflects a route, it MUST prepend the
        // local CLUSTER_ID to the CLUSTER_LIST."
        let orig = a.originator_id.unwrap_or(src.bgp_id);
        list.push(PathAttr::new(
            code::ORIGINATOR_ID,
            AttrValue::OriginatorId(orig),
        ));
        let mut cl = vec![sp.cfg.cluster_id];
        cl.extend_from_slice(a.cluster_list());
        list.push(PathAttr::new(
            code::CLUSTER_LIST,
            AttrValue::ClusterList(cl),
        ));
    } else if !ebgp {
        // iBGP without reflection keeps what it had (an RR client's own attributes)
        for p in &a.list {
            if matches!(p.type_code, code::ORIGINATOR_ID | code::CLUSTER_LIST) {
                list.push(p.clone());
            }
        }
    }
    // Next hop
    let v6 = family.afi.0 == 2;
    let next_hop = if family == Family::L2VPN_EVPN {
        a.next_hop
            .clone()
            .or_else(|| local_addr_for(n, false))
            .or_else(|| local_addr_for(n, true))?
    } else if ebgp || src.local || a.next_hop.is_none() {
        local_addr_for(n, v6)?
    } else {
        a.next_hop.clone()?
    };
    if family == Family::IPV4_UNICAST {
        let MpNextHop::Ipv4(ip) = next_hop else {
            return None;
        };
        list.push(PathAttr::new(code::NEXT_HOP, AttrValue::NextHop(ip)));
    }
    list.sort_by_key(|p| p.type_code);
    let mut attrs = Vec::with_capacity(128);
    for p in list {
        p.fit_length(ctx).encode(ctx, &mut attrs);
    }
    Some(Export { attrs, next_hop })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::rib::key::{RouteKey, split_evpn};
    use crate::wire::bgp::nlri::{NlriList, PrefixNlri, encode_prefixes};
    use crate::wire::bgp::validate::{Action, ValidateCtx, validate};

    const PATH_IDS: [u32; 2] = [1, 7];

    /// Announce two paths of one key (ids 1 and 7) and withdraw id 9 of it, as `pack` does for
    /// an ADD-PATH family; returns the UPDATEs.
    fn packed(family: Family, nlri: &[u8]) -> Vec<Vec<u8>> {
        let ctx = BgpCtx {
            four_octet_as: true,
            extended_message: false,
            add_path_rx: Vec::new(),
        };
        let nh = Ipv4Addr::new(192, 0, 2, 1);
        let mut attrs = Vec::new();
        let mut list = vec![
            PathAttr::new(code::ORIGIN, AttrValue::Origin(0)),
            PathAttr::new(
                code::AS_PATH,
                AttrValue::AsPath(vec![AsSegment {
                    seg_type: segment::AS_SEQUENCE,
                    asns: vec![65000],
                }]),
            ),
        ];
        if family == Family::IPV4_UNICAST {
            list.push(PathAttr::new(code::NEXT_HOP, AttrValue::NextHop(nh)));
        }
        for a in list {
            a.encode(&ctx, &mut attrs);
        }
        let e = Export {
            attrs,
            next_hop: MpNextHop::Ipv4(nh),
        };
        let (key, rest): (RouteKey, NlriRest) = if family == Family::L2VPN_EVPN {
            split_evpn(nlri)
        } else {
            (RouteKey::new(nlri), NlriRest::new(&[]))
        };
        let mut recs = Vec::new();
        for id in PATH_IDS {
            push_record(&mut recs, |out| {
                out.extend_from_slice(&id.to_be_bytes());
                join_nlri(family, &key, &rest, out);
            });
        }
        let mut wd = Vec::new();
        let wrest = withdraw_rest(family, &key);
        push_record(&mut wd, |out| {
            out.extend_from_slice(&9u32.to_be_bytes());
            join_nlri(family, &key, &wrest, out);
        });
        let mut msgs = Vec::new();
        emit_withdraw(family, &wd, ctx.max_len(), &mut msgs);
        emit_reach(family, &e, &recs, ctx.max_len(), &mut msgs);
        msgs
    }

    #[test]
    fn updates_with_path_ids_decode_with_add_path_rx_and_validate_clean() {
        // RFC 7911 §3: the 4-octet Path Identifier before each NLRI, in MP_REACH/MP_UNREACH
        // (EVPN) and in the NLRI and Withdrawn Routes fields (IPv4 unicast)
        let mut evpn = vec![2u8, 33];
        evpn.extend_from_slice(&[0, 1, 192, 0, 2, 1, 0, 100]); // RD 192.0.2.1:100
        evpn.extend_from_slice(&[0; 10]); // ESI
        evpn.extend_from_slice(&[0; 4]); // Ethernet Tag
        evpn.extend_from_slice(&[48, 0x52, 0x54, 0, 0, 0, 1, 0]); // MAC, no IP
        evpn.extend_from_slice(&[0, 0, 100]); // label (VNI)
        assert_eq!(evpn.len(), 35);
        for (family, nlri) in [
            (Family::L2VPN_EVPN, evpn),
            (Family::IPV4_UNICAST, vec![24u8, 10, 50, 0]),
        ] {
            let dctx = BgpCtx {
                four_octet_as: true,
                extended_message: false,
                add_path_rx: vec![family],
            };
            let vctx = ValidateCtx {
                ibgp: false,
                four_octet_as: true,
                families: vec![family],
                peer_as: 65000,
                enforce_first_as: true,
                confed_peer: false,
            };
            let (mut ann, mut wd) = (Vec::new(), Vec::new());
            for m in packed(family, &nlri) {
                let (msg, n) = Message::decode(&m, &dctx).expect("decodes with add_path_rx");
                assert_eq!(n, m.len());
                let Message::Update(u) = msg else {
                    panic!("an UPDATE")
                };
                let v = validate(&u, &vctx);
                assert_eq!(v.action, Action::None, "{family}: {v:?}");
                assert!(v.findings.is_empty(), "{family}: {v:?}");
                // re-encoding the decoded message gives the same bytes
                assert_eq!(Message::Update(u.clone()).to_bytes(&dctx), m);
                let take = |l: &NlriList, into: &mut Vec<(Option<u32>, Vec<u8>)>| match l {
                    NlriList::Evpn(v) => into.extend(v.iter().map(|e| {
                        let mut b = Vec::new();
                        e.route.encode(&mut b);
                        (e.path_id, b)
                    })),
                    NlriList::Ipv4(v) => into.extend(v.iter().map(|p| {
                        let mut b = Vec::new();
                        let bare = PrefixNlri {
                            path_id: None,
                            prefix: p.prefix,
                        };
                        encode_prefixes(&[bare], &mut b);
                        (p.path_id, b)
                    })),
                    _ => panic!("{l:?}"),
                };
                if let Some(r) = u.mp_reach() {
                    take(&r.nlri, &mut ann);
                }
                if let Some(w) = u.mp_unreach() {
                    take(&w.withdrawn, &mut wd);
                }
                take(&NlriList::Ipv4(u.nlri.clone()), &mut ann);
                take(&NlriList::Ipv4(u.withdrawn.clone()), &mut wd);
            }
            let want: Vec<(Option<u32>, Vec<u8>)> = PATH_IDS
                .iter()
                .map(|id| (Some(*id), nlri.clone()))
                .collect();
            assert_eq!(ann, want, "{family}");
            assert_eq!(wd.len(), 1, "{family}");
            assert_eq!(wd[0].0, Some(9), "{family}");
        }
    }
}
