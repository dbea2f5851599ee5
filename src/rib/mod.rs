//! The RIB: Adj-RIB-In and Loc-RIB per address family.
//!
//! Owns: every received and locally originated path, keyed per family by `RouteKey`; best-path
//! selection on every change; GR stale marks; per-peer prefix counts; the list of keys whose
//! best path changed since the caller last drained it (the feed for Adj-RIB-Out and EVPN) —
//! and, for a table switched to `all_paths` (an ADD-PATH send peer takes every path, RFC
//! 7911), a second list of keys where another path changed while the best stayed. A table
//! without it records best-path changes only and pays one flag test per operation.
//! Must not: do I/O, read clocks, know about sessions or the dataplane.
//!
//! Layout (memory is the budget: ≤ 250 octets per route at 1M routes): one `IndexMap` entry
//! per key holds all candidate paths — the Adj-RIB-In of every peer for that key — with the
//! best path kept first, so the Loc-RIB is `paths[0]` and needs no copy. A path is a peer
//! number, an ADD-PATH id, flags, one pointer to interned attributes and the inline rest of
//! its NLRI (labels, ESI): 56 octets.

pub mod attrs;
pub mod best;
pub mod key;
pub mod mac_mobility;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use indexmap::IndexMap;
use smallvec::SmallVec;

use crate::wire::bgp::afi::Family;
pub use attrs::{Attrs, Interner};
pub use best::{Candidate, Reason};
pub use key::{NlriRest, RouteKey};

/// A peer's number in the RIB. 0 is the local speaker (originated routes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize)]
pub struct PeerId(pub u32);

impl PeerId {
    pub const LOCAL: PeerId = PeerId(0);
}

/// What best path needs to know about a peer.
#[derive(Clone, Debug)]
pub struct PeerMeta {
    pub addr: IpAddr,
    pub bgp_id: Ipv4Addr,
    pub ebgp: bool,
}

/// One candidate path of a route key.
#[derive(Clone, Debug)]
pub struct Path {
    pub peer: PeerId,
    pub path_id: u32,
    pub flags: u8,
    pub attrs: Arc<Attrs>,
    pub rest: NlriRest,
}

impl Path {
    /// RFC 4724 §4.2: kept from a restarting peer, to be refreshed or swept.
    pub const STALE: u8 = 0x01;

    pub fn stale(&self) -> bool {
        self.flags & Self::STALE != 0
    }
}

/// The candidate paths of one key, best first.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    pub paths: SmallVec<[Path; 1]>,
    pub reason: Option<Reason>,
}

impl Entry {
    pub fn best(&self) -> Option<&Path> {
        self.paths.first()
    }
}

/// A key whose best path changed; `old` is the best path before the first change since the
/// last drain (so a consumer can tell whether it had announced something).
#[derive(Clone, Debug)]
pub struct Change {
    pub family: Family,
    pub key: RouteKey,
    pub old: Option<Path>,
    /// The peer of the best path after the change (None: the key is gone).
    pub new_peer: Option<PeerId>,
    /// Where the entry sat in the table right after the change: a hint that saves a hash
    /// lookup when the key is looked up again soon (checked, never trusted).
    pub index: usize,
}

/// In an `all_paths` table: a path of `key` other than the best was added, replaced (with
/// other attributes or NLRI rest) or removed, and the best path stayed as it was.
#[derive(Clone, Debug)]
pub struct PathChange {
    pub family: Family,
    pub key: RouteKey,
    /// The peer whose path changed.
    pub peer: PeerId,
    /// Where the entry sat in the table (a lookup hint, as in `Change`).
    pub index: usize,
}

/// The hasher of every RIB map: foldhash, seeded per process.
pub type Hasher = foldhash::fast::RandomState;
/// An insertion-indexed map with the RIB hasher.
pub type Map<K, V> = IndexMap<K, V, Hasher>;

#[derive(Default)]
pub struct Table {
    pub map: Map<RouteKey, Entry>,
    /// Record a `Change` when any path changes, not only the best (see `set_all_paths`).
    all_paths: bool,
    /// Keys per leading octet (the EVPN route type), kept as keys come and go so that
    /// `/metrics` never scans the table on the event loop (empty until the first key).
    by_first: Vec<usize>,
}

/// `Table::by_first` after a key was added (`up`) or removed.
fn count_key(by_first: &mut Vec<usize>, k: &RouteKey, up: bool) {
    if by_first.is_empty() {
        *by_first = vec![0; 256];
    }
    let b = usize::from(k.as_bytes().first().copied().unwrap_or(0));
    if let Some(c) = by_first.get_mut(b) {
        *c = if up { *c + 1 } else { c.saturating_sub(1) };
    }
}

#[derive(Default)]
pub struct Rib {
    tables: BTreeMap<Family, Table>,
    pub interner: Interner,
    peers: HashMap<PeerId, PeerMeta>,
    counts: HashMap<(PeerId, Family), u32, Hasher>,
    changes: Vec<Change>,
    path_changes: Vec<PathChange>,
    /// Some table has `all_paths` on: `announce`/`withdraw` take their tracking variant.
    tracking: bool,
    /// (peer, family) pairs marked stale and not swept yet: only they can hold stale paths,
    /// so `stale_count` scans nothing for the others (the API asks on every `show neighbors`).
    stale_marked: std::collections::BTreeSet<(PeerId, Family)>,
}

fn candidate<'a>(peers: &'a HashMap<PeerId, PeerMeta>, p: &'a Path) -> Candidate<'a> {
    let meta = peers.get(&p.peer);
    Candidate {
        attrs: &p.attrs,
        local: p.peer == PeerId::LOCAL,
        ebgp: meta.is_some_and(|m| m.ebgp),
        peer_bgp_id: meta.map_or(Ipv4Addr::UNSPECIFIED, |m| m.bgp_id),
        peer_addr: meta.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |m| m.addr),
        peer_num: p.peer.0,
        path_id: p.path_id,
    }
}

/// Put the best path first; return whether the best path (peer, path id or attributes or
/// NLRI rest) differs from `before`.
fn reselect(peers: &HashMap<PeerId, PeerMeta>, e: &mut Entry) {
    let pick = {
        let cands: Vec<Candidate<'_>> = e.paths.iter().map(|p| candidate(peers, p)).collect();
        best::select(&cands)
    };
    if let Some((i, reason)) = pick {
        if i != 0 {
            e.paths.swap(0, i);
        }
        e.reason = Some(reason);
    } else {
        e.reason = None;
    }
}

fn same_path(a: Option<&Path>, b: Option<&Path>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.peer == b.peer
                && a.path_id == b.path_id
                && Arc::ptr_eq(&a.attrs, &b.attrs)
                && a.rest == b.rest
                && a.stale() == b.stale()
        }
        _ => false,
    }
}

impl Rib {
    pub fn set_peer(&mut self, id: PeerId, meta: PeerMeta) {
        self.peers.insert(id, meta);
    }

    pub fn peer(&self, id: PeerId) -> Option<&PeerMeta> {
        self.peers.get(&id)
    }

    pub fn table(&self, f: Family) -> Option<&Table> {
        self.tables.get(&f)
    }

    pub fn families(&self) -> impl Iterator<Item = Family> + '_ {
        self.tables.keys().copied()
    }

    pub fn count(&self, peer: PeerId, f: Family) -> u32 {
        self.counts.get(&(peer, f)).copied().unwrap_or(0)
    }

    pub fn len(&self, f: Family) -> usize {
        self.tables.get(&f).map_or(0, |t| t.map.len())
    }

    /// Loc-RIB entries of `f` per leading octet of the key — the EVPN route type (RFC 7432
    /// §7), non-zero counts only; from counters kept as keys come and go (no table scan).
    pub fn count_by_first_octet(&self, f: Family) -> BTreeMap<u8, usize> {
        let Some(t) = self.tables.get(&f) else {
            return BTreeMap::new();
        };
        (0u8..=255)
            .zip(t.by_first.iter().copied())
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.values().all(|t| t.map.is_empty())
    }

    pub fn best(&self, f: Family, key: &RouteKey) -> Option<&Path> {
        self.tables.get(&f)?.map.get(key)?.best()
    }

    /// `best`, trying table position `hint` before hashing (positions move only when an entry
    /// is removed, so a recent hint is usually right).
    pub fn best_hint(&self, f: Family, key: &RouteKey, hint: usize) -> Option<&Path> {
        let t = self.tables.get(&f)?;
        if let Some((k, e)) = t.map.get_index(hint)
            && k == key
        {
            return e.best();
        }
        t.map.get(key)?.best()
    }

    /// `entry`, trying table position `hint` before hashing.
    pub fn entry_hint(&self, f: Family, key: &RouteKey, hint: usize) -> Option<&Entry> {
        let t = self.tables.get(&f)?;
        if let Some((k, e)) = t.map.get_index(hint)
            && k == key
        {
            return Some(e);
        }
        t.map.get(key)
    }

    /// Whether `f` records a change for every path (RFC 7911: an ADD-PATH send peer is sent
    /// every path, so it must hear of non-best ones too). Off by default: without such a peer
    /// only best-path changes are recorded.
    pub fn set_all_paths(&mut self, f: Family, on: bool) {
        if on {
            self.tables.entry(f).or_default().all_paths = true;
        } else if let Some(t) = self.tables.get_mut(&f) {
            t.all_paths = false;
        }
        self.tracking = self.tables.values().any(|t| t.all_paths);
    }

    pub fn all_paths(&self, f: Family) -> bool {
        self.tables.get(&f).is_some_and(|t| t.all_paths)
    }

    pub fn entry(&self, f: Family, key: &RouteKey) -> Option<&Entry> {
        self.tables.get(&f)?.map.get(key)
    }

    pub fn intern(&mut self, a: Attrs) -> Arc<Attrs> {
        self.interner.intern(a)
    }

    /// Add or replace the path (`peer`, `path_id`) of `key`. A replaced path loses its stale
    /// mark (RFC 4724 §4.2: refreshed).
    pub fn announce(
        &mut self,
        f: Family,
        key: RouteKey,
        peer: PeerId,
        path_id: u32,
        attrs: Arc<Attrs>,
        rest: NlriRest,
    ) {
        // two copies: the common one (no all-paths table) is the plain code, inlined here; the
        // tracking one stays out of line so that this function keeps its size
        if self.tracking {
            self.announce_tracking(f, key, peer, path_id, attrs, rest);
        } else {
            self.announce_in::<false>(f, key, peer, path_id, attrs, rest);
        }
    }

    #[inline(never)]
    fn announce_tracking(
        &mut self,
        f: Family,
        key: RouteKey,
        peer: PeerId,
        path_id: u32,
        attrs: Arc<Attrs>,
        rest: NlriRest,
    ) {
        self.announce_in::<true>(f, key, peer, path_id, attrs, rest);
    }

    #[inline(always)]
    fn announce_in<const TRACK: bool>(
        &mut self,
        f: Family,
        key: RouteKey,
        peer: PeerId,
        path_id: u32,
        attrs: Arc<Attrs>,
        rest: NlriRest,
    ) {
        let t = self.tables.entry(f).or_default();
        let all = TRACK && t.all_paths;
        let path = Path {
            peer,
            path_id,
            flags: 0,
            attrs,
            rest,
        };
        // one hash lookup for both the new and the existing key
        let entry = t.map.entry(key);
        let index = entry.index();
        // `other`: a path changed (recorded even when the best did not, in an all-paths table)
        let (before, changed, other, key, new_peer) = match entry {
            indexmap::map::Entry::Occupied(mut o) => {
                let e = o.get_mut();
                let before = e.paths.first().cloned();
                let mut other = all;
                if let Some(p) = e
                    .paths
                    .iter_mut()
                    .find(|p| p.peer == peer && p.path_id == path_id)
                {
                    // the same path again (a refresh, a GR re-announcement): nothing to send
                    if TRACK && all && Arc::ptr_eq(&p.attrs, &path.attrs) && p.rest == path.rest {
                        other = false;
                    }
                    *p = path;
                } else {
                    e.paths.push(path);
                    *self.counts.entry((peer, f)).or_default() += 1;
                }
                if e.paths.len() > 1 {
                    reselect(&self.peers, e);
                } else {
                    e.reason = Some(Reason::Only);
                }
                let changed = !same_path(before.as_ref(), e.paths.first());
                let new_peer = e.paths.first().map(|p| p.peer);
                (before, changed, other, o.key().clone(), new_peer)
            }
            indexmap::map::Entry::Vacant(v) => {
                let key = v.key().clone();
                let mut e = Entry::default();
                e.paths.push(path);
                e.reason = Some(Reason::Only);
                v.insert(e);
                count_key(&mut t.by_first, &key, true);
                *self.counts.entry((peer, f)).or_default() += 1;
                (None, true, true, key, Some(peer))
            }
        };
        if changed {
            self.changes.push(Change {
                family: f,
                key,
                old: before,
                new_peer,
                index,
            });
        } else if TRACK && other {
            self.path_changes.push(PathChange {
                family: f,
                key,
                peer,
                index,
            });
        }
    }

    /// Remove the path (`peer`, `path_id`) of `key`, if present.
    pub fn withdraw(&mut self, f: Family, key: &RouteKey, peer: PeerId, path_id: u32) {
        if self.tracking {
            self.withdraw_tracking(f, key, peer, path_id);
        } else {
            self.withdraw_in::<false>(f, key, peer, path_id);
        }
    }

    #[inline(never)]
    fn withdraw_tracking(&mut self, f: Family, key: &RouteKey, peer: PeerId, path_id: u32) {
        self.withdraw_in::<true>(f, key, peer, path_id);
    }

    #[inline(always)]
    fn withdraw_in<const TRACK: bool>(
        &mut self,
        f: Family,
        key: &RouteKey,
        peer: PeerId,
        path_id: u32,
    ) {
        let Some(t) = self.tables.get_mut(&f) else {
            return;
        };
        let all = TRACK && t.all_paths;
        let Some((index, _, e)) = t.map.get_full_mut(key) else {
            return;
        };
        let Some(i) = e
            .paths
            .iter()
            .position(|p| p.peer == peer && p.path_id == path_id)
        else {
            return;
        };
        let before = e.paths.first().cloned();
        e.paths.remove(i);
        if let Some(c) = self.counts.get_mut(&(peer, f)) {
            *c = c.saturating_sub(1);
        }
        if e.paths.len() > 1 {
            reselect(&self.peers, e);
        } else if e.paths.len() == 1 {
            e.reason = Some(Reason::Only);
        }
        let changed = !same_path(before.as_ref(), e.paths.first());
        let new_peer = e.paths.first().map(|p| p.peer);
        if e.paths.is_empty()
            && let Some((k, _)) = t.map.swap_remove_index(index)
        {
            count_key(&mut t.by_first, &k, false);
        }
        if changed {
            self.changes.push(Change {
                family: f,
                key: key.clone(),
                old: before,
                new_peer,
                index,
            });
        } else if TRACK && all {
            self.path_changes.push(PathChange {
                family: f,
                key: key.clone(),
                peer,
                index,
            });
        }
    }

    /// Every key of `f` where `peer` has a path matching `pred` (a scan: peer-down, GR).
    fn keys_of(
        &self,
        f: Family,
        peer: PeerId,
        pred: impl Fn(&Path) -> bool,
    ) -> Vec<(RouteKey, u32)> {
        let Some(t) = self.tables.get(&f) else {
            return Vec::new();
        };
        t.map
            .iter()
            .flat_map(|(k, e)| {
                e.paths
                    .iter()
                    .filter(|p| p.peer == peer && pred(p))
                    .map(move |p| (k.clone(), p.path_id))
            })
            .collect()
    }

    /// Withdraw every path of `peer` in `f` (session down without graceful restart). Returns
    /// how many paths were removed.
    pub fn remove_peer(&mut self, f: Family, peer: PeerId) -> usize {
        let keys = self.keys_of(f, peer, |_| true);
        for (k, id) in &keys {
            self.withdraw(f, k, peer, *id);
        }
        self.counts.remove(&(peer, f));
        self.stale_marked.remove(&(peer, f));
        keys.len()
    }

    /// RFC 4724 §4.2: "the Receiving Speaker MUST retain the routes received from the Restarting
    /// Speaker for all the address families that were previously received in the Graceful
    /// Restart Capability and MUST mark them as stale routing information." Best paths do not
    /// change (forwarding continues on them). Returns how many paths were marked.
    pub fn mark_stale(&mut self, f: Family, peer: PeerId) -> usize {
        let Some(t) = self.tables.get_mut(&f) else {
            return 0;
        };
        let mut n = 0;
        for e in t.map.values_mut() {
            for p in e.paths.iter_mut().filter(|p| p.peer == peer) {
                p.flags |= Path::STALE;
                n += 1;
            }
        }
        if n > 0 {
            self.stale_marked.insert((peer, f));
        }
        n
    }

    /// RFC 4724 §4.2: after End-of-RIB (or when the timers run out) "the Receiving Speaker MUST
    /// immediately remove all the stale routes from the peer that it is retaining for that
    /// address family". Returns how many were removed.
    pub fn sweep_stale(&mut self, f: Family, peer: PeerId) -> usize {
        let keys = self.keys_of(f, peer, Path::stale);
        for (k, id) in &keys {
            self.withdraw(f, k, peer, *id);
        }
        self.stale_marked.remove(&(peer, f));
        keys.len()
    }

    /// Number of stale paths of `peer` in `f`: a scan of the table while `peer` has paths
    /// marked stale in `f` (a graceful restart or an enhanced route refresh in progress),
    /// nothing otherwise.
    pub fn stale_count(&self, f: Family, peer: PeerId) -> usize {
        if !self.stale_marked.contains(&(peer, f)) {
            return 0;
        }
        self.tables.get(&f).map_or(0, |t| {
            t.map
                .values()
                .flat_map(|e| e.paths.iter())
                .filter(|p| p.peer == peer && p.stale())
                .count()
        })
    }

    /// The keys whose best path changed since the last call.
    pub fn drain_changes(&mut self) -> std::vec::Drain<'_, Change> {
        self.changes.drain(..)
    }

    /// The keys of `all_paths` tables where another path changed since the last call.
    pub fn drain_path_changes(&mut self) -> std::vec::Drain<'_, PathChange> {
        self.path_changes.drain(..)
    }

    /// Best-path or other-path changes wait to be drained.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty() || !self.path_changes.is_empty()
    }
}

#[cfg(test)]
mod tests;
