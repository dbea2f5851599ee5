//! The EVPN service layer: MAC-VRFs and IP-VRFs between the RIB and the dataplane.
//!
//! Owns: per-VNI state (remote MACs imported by Route Target, local MACs, flood lists, VRF
//! prefixes); MAC mobility per RFC 7432 §15 (decisions in `rib::mac_mobility`); duplicate-
//! address detection; which local routes exist (type 2, 3, 5 — built by `origin`); the
//! dataplane ops that make forwarding match; the move log.
//! Must not: touch sockets, netlink or clocks (time is an argument), or the BGP sessions —
//! it reads the RIB it is given and hands routes out as `Output::Announce/Withdraw`; `glue`
//! moves them into the speaker.
//!
//! Sans-IO: `handle_learn` (local learning: the dataplane or `vmmi vm attach/detach`, one
//! path), `handle_rib` (keys whose best path changed), `handle_applied` (a dataplane batch
//! is done), `clear_dad`, `handle_timeout`; then `poll_output` / `poll_timeout`.
//!
//! Decision points (RFC text at each, in `settle`):
//! - local learn while a remote VTEP claims the MAC → advertise with the highest sequence seen
//!   + 1 (§15.1, `mac_mobility::local_seq`);
//! - a remote claim beats our local one (higher sequence, or equal and a lower VTEP) → we
//!   withdraw ours: the MAC has moved away (§15.1 "MUST withdraw");
//! - a static (sticky) claim never moves; a conflicting dynamic claim is ignored and alarmed
//!   (§15.2);
//! - N moves in M seconds where this speaker is one side of the move → the MAC is frozen:
//!   no new advertisement for it, forwarding left where it is, until `dad_freeze_secs` or
//!   `vmmi dad clear` (§15.1). A frozen MAC that leaves is still withdrawn — never advertise a
//!   MAC that is not here (FRR 8.4 kept it: a permanent black hole);
//! - every forwarding change for a MAC is one replace op (`DataplaneOp::Fdb`): the new entry
//!   exists before the old one is gone.

pub mod glue;
pub mod moves;
pub mod origin;
mod reconfig;
pub mod view;
pub mod vni;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use ipnet::IpNet;
use serde::Serialize;
use smallvec::SmallVec;

use crate::bgp::spec::Built;
use crate::config::VniCfg;
use crate::dataplane::{Batch, DataplaneOp, LearnEvent};
use crate::rib::key::RouteKey;
use crate::rib::mac_mobility::{self, Claim, Dad, DadCfg, MoveReason, seq_max};
use crate::rib::{Map, PeerId, Rib};
use crate::wire::bgp::afi::Family;
use crate::wire::bgp::attr::{AttrValue, PmsiTunnel, PmsiTunnelId, code};
use crate::wire::bgp::evpn::EvpnRoute;
use crate::wire::bgp::extcomm::ExtCommunity;
use crate::wire::bgp::rd::RouteDistinguisher;
use crate::wire::reader::Reader;
use crate::wire::types::MacAddr;
pub use moves::{Loc, MoveLog, MoveRecord, Step};
use origin::MacRouteOpts;
pub use vni::{ImportIndex, Vni};

/// Hash maps of the layer: the RIB's hasher (foldhash, seeded per process).
type HashMap<K, V> = std::collections::HashMap<K, V, crate::rib::Hasher>;

/// What the EVPN layer is configured with.
#[derive(Clone, Debug)]
pub struct EvpnCfg {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// Our VTEP address: next hop of our routes, the PMSI endpoint.
    pub vtep: IpAddr,
    pub vnis: Vec<VniCfg>,
    pub dad: DadCfg,
    /// Moves kept for `vmmi show moves` (older ones are dropped).
    pub move_log: usize,
}

#[derive(Debug)]
pub enum Output {
    /// Originate (or replace) a local route.
    Announce(Built),
    /// Withdraw a local route.
    Withdraw {
        family: Family,
        nlri: Vec<u8>,
    },
    /// Make forwarding match.
    Dataplane(Batch),
    Event(EvpnEvent),
    /// Where an EID (a MAC, or one of its addresses, in the VNI) is now — the feed for the
    /// LISP mapping system (EID = Instance-ID VNI + MAC/IP, RLOC = the VTEP, Map-Version = the
    /// MAC Mobility sequence). Emitted in the same input as the UPDATE of the move.
    Mapping(Mapping),
}

/// One EID's location (`rloc` None: nobody has it any more).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mapping {
    pub vni: u32,
    pub mac: MacAddr,
    /// None: the MAC itself; Some: one of its addresses.
    pub ip: Option<IpAddr>,
    pub rloc: Option<IpAddr>,
    pub version: u32,
    /// The MAC is local to this VTEP.
    pub local: bool,
}

/// Things an operator should see (logged and counted by the runtime).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EvpnEvent {
    Learned {
        vni: u32,
        mac: MacAddr,
        ip: Option<IpAddr>,
        seq: u32,
    },
    Left {
        vni: u32,
        mac: MacAddr,
        ip: Option<IpAddr>,
    },
    /// A remote claim won over our local one; we withdrew ours.
    MovedAway {
        vni: u32,
        mac: MacAddr,
        to: IpAddr,
        seq: u32,
    },
    /// RFC 7432 §15.2: a static MAC is claimed elsewhere too; the static claim stays.
    StickyConflict {
        vni: u32,
        mac: MacAddr,
        static_at: Loc,
        other: Loc,
    },
    DuplicateDetected {
        vni: u32,
        mac: MacAddr,
        moves: u32,
        window_secs: u64,
    },
    DuplicateCleared {
        vni: u32,
        mac: MacAddr,
        by_timer: bool,
    },
    /// A move reached its dataplane step: how long each part took (for latency metrics).
    MoveApplied {
        vni: u32,
        mac: MacAddr,
        id: u64,
        /// Start → our UPDATE (advertised or withdrawn), when this speaker sent one.
        update_us: Option<u64>,
        /// Start → the dataplane change applied.
        dataplane_us: u64,
    },
    /// A learn the layer cannot use (unknown VNI, an L3 VNI, our gateway MAC).
    Ignored {
        vni: u32,
        mac: MacAddr,
        reason: &'static str,
    },
}

#[derive(Clone, Debug)]
struct Local {
    seq: u32,
    sticky: bool,
    /// Advertise the MAC Mobility community even at sequence 0: the MAC moved here.
    moved: bool,
    ips: SmallVec<[IpAddr; 2]>,
}

/// One imported remote type-2 route for a MAC.
#[derive(Clone, Debug)]
struct Remote {
    key: RouteKey,
    rd: RouteDistinguisher,
    vtep: IpAddr,
    ip: Option<IpAddr>,
    seq: u32,
    sticky: bool,
}

/// What we advertise for a MAC: one MAC route and one MAC+IP route per address.
#[derive(Clone, Debug, PartialEq)]
struct Adv {
    seq: u32,
    sticky: bool,
    /// Carry the MAC Mobility community even at sequence 0 (after a wrap, or a restored 0
    /// with history): the MAC has moved before.
    moved: bool,
    ips: SmallVec<[IpAddr; 2]>,
}

#[derive(Clone, Debug, Default)]
struct MacState {
    local: Option<Local>,
    remotes: SmallVec<[Remote; 1]>,
    adv: Option<Adv>,
    /// Highest sequence seen for the MAC from anyone (kept after withdrawals); `None`
    /// before any (0 is a sequence, and in serial order it is newer than 4294967295).
    high_seq: Option<u32>,
    /// The sequence we last advertised (kept across restarts).
    last_local: u32,
    /// Where the MAC last was (kept while nobody claims it, to count the next move).
    loc: Option<Loc>,
    /// A remote VTEP claimed the MAC since it was last local here.
    moved_in: bool,
    reason: Option<MoveReason>,
    fdb: Option<(IpAddr, bool)>,
    neighs: SmallVec<[IpAddr; 1]>,
    dad: Dad,
    /// The open move record.
    mv: Option<u64>,
    /// The location last fed to the mapping system: (RLOC, version, addresses).
    mapped: Option<Box<Mapped>>,
}

/// What was last fed to the mapping system for a MAC: (RLOC, version, addresses).
type Mapped = (IpAddr, u32, SmallVec<[IpAddr; 2]>);

#[derive(Debug, Default)]
struct L2 {
    macs: Map<MacAddr, MacState>,
    /// Remote VTEP → its type-3 route keys.
    floods: HashMap<IpAddr, SmallVec<[RouteKey; 1]>>,
    /// The flood-list entries the dataplane holds (settled after each input, so a type-3
    /// route replaced by a fresh copy — a peer's graceful restart — never deletes and re-adds
    /// the entry).
    flood_on: std::collections::HashSet<IpAddr, crate::rib::Hasher>,
    /// Suppression entries: address → the MACs that want it, the holder last.
    neigh: HashMap<IpAddr, SmallVec<[MacAddr; 1]>>,
}

#[derive(Clone, Debug)]
struct PrefixCand {
    key: RouteKey,
    vtep: IpAddr,
    rmac: Option<MacAddr>,
    seq: u32,
}

#[derive(Debug, Default)]
struct L3 {
    prefixes: Map<IpNet, SmallVec<[PrefixCand; 1]>>,
    installed: HashMap<IpNet, (IpAddr, Option<MacAddr>)>,
    /// Prefixes we originate ourselves (a remote copy is not installed).
    own: BTreeSet<IpNet>,
}

/// What one imported route key contributed, to undo it when the key changes.
#[derive(Clone, Debug)]
enum Kind {
    Mac { mac: MacAddr, ip: Option<IpAddr> },
    Flood(IpAddr),
    Prefix(IpNet),
}

#[derive(Clone, Debug)]
struct Imported {
    kind: Kind,
    vnis: SmallVec<[u32; 2]>,
}

/// Why `clear_dad` did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DadClearError {
    /// The VNI has no state for the MAC.
    UnknownMac,
    /// The MAC is not frozen.
    NotFrozen,
}

/// Counters for metrics.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counters {
    pub local_learns: u64,
    pub local_leaves: u64,
    pub moved_away: u64,
    pub duplicates_detected: u64,
    pub sticky_conflicts: u64,
    pub routes_imported: u64,
    pub routes_ignored: u64,
    pub dataplane_ops: u64,
}

pub struct Evpn {
    vtep: IpAddr,
    dad: DadCfg,
    vnis: BTreeMap<u32, Vni>,
    index: ImportIndex,
    l2: HashMap<u32, L2>,
    l3: HashMap<u32, L3>,
    imported: Map<RouteKey, Imported>,
    out: VecDeque<Output>,
    ops: Vec<DataplaneOp>,
    /// Moves whose dataplane step lands in the batch being built.
    batch_moves: Vec<u64>,
    next_batch: u64,
    dirty: Vec<(u32, MacAddr)>,
    dirty_prefixes: Vec<(u32, IpNet)>,
    dirty_floods: Vec<(u32, IpAddr)>,
    thaw: BTreeSet<(Instant, u32, MacAddr)>,
    pub log: MoveLog,
    pub counters: Counters,
    /// Sequences changed since `take_state_dirty` (persist them).
    state_dirty: bool,
    scratch: Vec<u8>,
}

impl Evpn {
    pub fn new(cfg: &EvpnCfg) -> Evpn {
        let vnis = vni::resolve(&cfg.vnis, cfg.asn, cfg.router_id, None);
        let index = ImportIndex::new(&vnis);
        let mut l2 = HashMap::default();
        let mut l3 = HashMap::default();
        for v in vnis.values() {
            if v.l3 {
                l3.insert(v.vni, L3::default());
            } else {
                l2.insert(v.vni, L2::default());
            }
        }
        Evpn {
            vtep: cfg.vtep,
            dad: cfg.dad,
            vnis,
            index,
            l2,
            l3,
            imported: Map::default(),
            out: VecDeque::new(),
            ops: Vec::new(),
            batch_moves: Vec::new(),
            next_batch: 1,
            dirty: Vec::new(),
            dirty_prefixes: Vec::new(),
            dirty_floods: Vec::new(),
            thaw: BTreeSet::new(),
            log: MoveLog::new(cfg.move_log),
            counters: Counters::default(),
            state_dirty: false,
            scratch: Vec::with_capacity(64),
        }
    }

    pub fn vtep(&self) -> IpAddr {
        self.vtep
    }

    pub fn vni(&self, vni: u32) -> Option<&Vni> {
        self.vnis.get(&vni)
    }

    pub fn vnis(&self) -> impl Iterator<Item = &Vni> {
        self.vnis.values()
    }

    /// Originate what exists without any learning: a type 3 per L2 VNI (RFC 8365 §5.1.3),
    /// the anycast gateway MAC/IP, type 5 for the L3 VNIs' prefixes and their L2 VNIs'
    /// gateway subnets (RFC 9136 §4.4.1).
    pub fn start(&mut self, now: Instant) {
        let _ = now;
        let all: Vec<u32> = self.vnis.keys().copied().collect();
        for n in all {
            self.originate_vni(n);
        }
    }

    /// What VNI `n` originates by configuration alone (`start`, and a VNI a reload adds or
    /// changes): its type 3, its anycast gateway, or for an L3 VNI its type 5 routes.
    fn originate_vni(&mut self, n: u32) {
        let Some(v) = self.vnis.get(&n) else { return };
        let mut routes = Vec::new();
        if v.l3 {
            let own = self.own_prefixes(v);
            for p in &own {
                routes.push(origin::prefix(v, *p, self.vtep));
            }
            if let Some(t) = self.l3.get_mut(&n) {
                t.own = own;
            }
        } else {
            routes.push(origin::multicast(v, self.vtep));
            if let Some((g, gmac)) = v.gateway {
                let l3 = v.l3_vni.and_then(|n| self.vnis.get(&n));
                let o = MacRouteOpts {
                    seq: 0,
                    sticky: true,
                    mobility: true,
                    default_gateway: true,
                };
                routes.push(origin::mac_ip(v, l3, gmac, Some(g.addr()), o, self.vtep));
            }
        }
        self.out.extend(routes.into_iter().map(Output::Announce));
    }

    /// The type 5 prefixes an L3 VNI originates: its `prefixes` and the gateway subnets of
    /// the L2 VNIs routing in it (RFC 9136 §4.4.1).
    fn own_prefixes(&self, v: &Vni) -> BTreeSet<IpNet> {
        let subnets = self
            .vnis
            .values()
            .filter(|x| x.l3_vni == Some(v.vni))
            .filter_map(|x| x.gateway.map(|(g, _)| g.trunc()));
        let mut own: BTreeSet<IpNet> = v.prefixes.iter().map(|p| p.trunc()).collect();
        own.extend(subnets);
        own
    }

    // ---------------------------------------------------------------- inputs

    /// Local learning (the dataplane's events and `vmmi vm attach/detach` both land here).
    pub fn handle_learn(&mut self, now: Instant, e: LearnEvent) {
        self.handle_learns(now, std::iter::once(e));
    }

    /// Many learn events as one input (a dataplane's burst): one dataplane batch for all.
    pub fn handle_learns(&mut self, now: Instant, events: impl IntoIterator<Item = LearnEvent>) {
        for e in events {
            match e {
                LearnEvent::Learned {
                    vni,
                    mac,
                    ip,
                    sticky,
                } => self.learn(now, vni, mac, ip, sticky),
                LearnEvent::Left { vni, mac, ip } => self.leave(now, vni, mac, ip),
            }
        }
        self.flush(now);
    }

    fn ignored(&mut self, vni: u32, mac: MacAddr, reason: &'static str) {
        self.out
            .push_back(Output::Event(EvpnEvent::Ignored { vni, mac, reason }));
    }

    fn learn(&mut self, _now: Instant, vni: u32, mac: MacAddr, ip: Option<IpAddr>, sticky: bool) {
        let Some(v) = self.vnis.get(&vni) else {
            return self.ignored(vni, mac, "unknown vni");
        };
        if v.l3 {
            return self.ignored(vni, mac, "l3 vni: MACs are learned in l2 vnis");
        }
        if v.gateway.is_some_and(|(_, g)| g == mac) {
            return self.ignored(vni, mac, "the anycast gateway MAC is always local");
        }
        let Some(t) = self.l2.get_mut(&vni) else {
            return;
        };
        let st = t.macs.entry(mac).or_default();
        let seq = match &mut st.local {
            Some(l) => {
                // already local: a new address or a change of the static flag
                if let Some(ip) = ip
                    && !l.ips.contains(&ip)
                {
                    l.ips.push(ip);
                }
                l.sticky = sticky;
                l.seq
            }
            None => {
                let moved_in = st.moved_in
                    || st.remotes.iter().any(|r| r.vtep != self.vtep)
                    || matches!(st.loc, Some(Loc::Remote(_)));
                let seq = mac_mobility::local_seq(moved_in, high(st), st.last_local);
                st.local = Some(Local {
                    seq,
                    sticky,
                    moved: moved_in || seq != 0,
                    ips: ip.into_iter().collect(),
                });
                seq
            }
        };
        self.counters.local_learns += 1;
        self.out
            .push_back(Output::Event(EvpnEvent::Learned { vni, mac, ip, seq }));
        self.dirty.push((vni, mac));
    }

    fn leave(&mut self, _now: Instant, vni: u32, mac: MacAddr, ip: Option<IpAddr>) {
        let Some(st) = self.l2.get_mut(&vni).and_then(|t| t.macs.get_mut(&mac)) else {
            return;
        };
        let Some(l) = &mut st.local else { return };
        match ip {
            Some(ip) => l.ips.retain(|x| *x != ip),
            None => st.local = None,
        }
        self.counters.local_leaves += 1;
        self.out
            .push_back(Output::Event(EvpnEvent::Left { vni, mac, ip }));
        self.dirty.push((vni, mac));
    }

    /// Keys of the EVPN table whose best path changed (`Speaker::drain_watched`).
    pub fn handle_rib(&mut self, now: Instant, rib: &Rib, keys: &[RouteKey]) {
        for key in keys {
            let new = rib
                .best(Family::L2VPN_EVPN, key)
                .filter(|p| p.peer != PeerId::LOCAL)
                .and_then(|p| self.decode_import(key, p));
            // one hash lookup per key: the slot is replaced in place
            let idx = self.imported.get_index_of(key);
            if let Some(old) = idx
                .and_then(|i| self.imported.get_index(i))
                .map(|e| e.1.clone())
            {
                self.unimport(key, &old);
            }
            match (idx, new) {
                (Some(i), Some((imp, data))) => {
                    self.import(key, &imp, data);
                    if let Some((_, slot)) = self.imported.get_index_mut(i) {
                        *slot = imp;
                    }
                    self.counters.routes_imported += 1;
                }
                (Some(i), None) => {
                    self.imported.swap_remove_index(i);
                }
                (None, Some((imp, data))) => {
                    self.import(key, &imp, data);
                    self.imported.insert(key.clone(), imp);
                    self.counters.routes_imported += 1;
                }
                (None, None) => {}
            }
        }
        self.flush(now);
    }

    /// The batch `id` (and every earlier one) is applied.
    pub fn handle_applied(&mut self, now: Instant, id: u64) {
        self.log.applied(id, now);
        self.report_done();
    }

    /// `MoveApplied` for every move whose dataplane step was just reached.
    fn report_done(&mut self) {
        let us = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        for id in self.log.take_done() {
            let Some(r) = self.log.get(id) else { continue };
            let update = r.after(Step::Advertised).or(r.after(Step::Withdrawn));
            let Some(dp) = r.after(Step::Dataplane) else {
                continue;
            };
            self.out.push_back(Output::Event(EvpnEvent::MoveApplied {
                vni: r.vni,
                mac: r.mac,
                id,
                update_us: update.map(us),
                dataplane_us: us(dp),
            }));
        }
    }

    /// `vmmi dad clear`: lift a duplicate freeze.
    pub fn clear_dad(&mut self, now: Instant, vni: u32, mac: MacAddr) -> Result<(), DadClearError> {
        let st = self
            .l2
            .get_mut(&vni)
            .and_then(|t| t.macs.get_mut(&mac))
            .ok_or(DadClearError::UnknownMac)?;
        let Some(at) = st.dad.frozen_at() else {
            return Err(DadClearError::NotFrozen);
        };
        if let Some(d) = self.dad.freeze {
            self.thaw.remove(&(at + d, vni, mac));
        }
        self.unfreeze(now, vni, mac, false);
        self.flush(now);
        Ok(())
    }

    fn unfreeze(&mut self, _now: Instant, vni: u32, mac: MacAddr, by_timer: bool) {
        let vtep = self.vtep;
        let Some(st) = self.l2.get_mut(&vni).and_then(|t| t.macs.get_mut(&mac)) else {
            return;
        };
        st.dad.clear();
        // RFC 7432 §15.1: a MAC that is local and was not advertised while frozen is
        // advertised now as a fresh local learn would be
        let moved_in = st.moved_in || st.remotes.iter().any(|r| r.vtep != vtep);
        let not_ours = st.adv.is_none();
        let h = high(st);
        if let Some(l) = &mut st.local
            && not_ours
        {
            l.seq = mac_mobility::local_seq(moved_in, h, st.last_local);
            l.moved = moved_in || l.seq != 0;
        }
        self.out
            .push_back(Output::Event(EvpnEvent::DuplicateCleared {
                vni,
                mac,
                by_timer,
            }));
        self.dirty.push((vni, mac));
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(t, vni, mac)) = self.thaw.first() {
            if t > now {
                break;
            }
            self.thaw.pop_first();
            self.unfreeze(now, vni, mac, true);
        }
        self.flush(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.thaw.first().map(|t| t.0)
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// True once after any sequence changed: time to persist `snapshot`.
    pub fn take_state_dirty(&mut self) -> bool {
        std::mem::take(&mut self.state_dirty)
    }

    /// (vni, mac, last sequence we advertised, highest seen) for every MAC with a sequence.
    pub fn snapshot(&self) -> Vec<(u32, MacAddr, u32, u32)> {
        let mut v: Vec<_> = self
            .l2
            .iter()
            .flat_map(|(vni, t)| {
                t.macs
                    .iter()
                    .filter(|(_, s)| s.last_local != 0 || s.high_seq.is_some())
                    .map(|(m, s)| (*vni, *m, s.last_local, high(s)))
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// Restore sequences saved by `snapshot` (before any learning).
    pub fn restore(&mut self, saved: &[(u32, MacAddr, u32, u32)]) {
        for &(vni, mac, last, high) in saved {
            if let Some(t) = self.l2.get_mut(&vni) {
                let st = t.macs.entry(mac).or_default();
                st.last_local = last;
                st.high_seq = Some(seq_max(high, last));
            }
        }
    }

    // ---------------------------------------------------------------- import

    /// What a RIB path means for the MAC-VRFs / IP-VRFs, or None when nothing imports it.
    fn decode_import(
        &mut self,
        key: &RouteKey,
        p: &crate::rib::Path,
    ) -> Option<(Imported, ImportData)> {
        self.scratch.clear();
        crate::bgp::join_nlri(Family::L2VPN_EVPN, key, &p.rest, &mut self.scratch);
        let route = EvpnRoute::decode(&mut Reader::new(&self.scratch)).ok()?;
        let a = &p.attrs;
        let vnis = self.index.vnis(a.route_targets());
        if vnis.is_empty() {
            self.counters.routes_ignored += 1;
            return None;
        }
        let nh = a.next_hop_ip();
        let (seq, sticky) = a.mac_mobility.unwrap_or((0, false));
        let mut rmac = None;
        let mut gw = false;
        for c in a.ext_communities() {
            match c {
                ExtCommunity::RoutersMac { mac } => rmac = Some(*mac),
                ExtCommunity::DefaultGateway { .. } => gw = true,
                _ => {}
            }
        }
        let (kind, data) = match route {
            EvpnRoute::MacIp(r) => {
                // RFC 7432 §10.1: every VTEP has the default gateway locally; its routes say
                // how to reach the gateway, not where a VM is
                if gw {
                    return None;
                }
                let vtep = nh?;
                (
                    Kind::Mac {
                        mac: r.mac,
                        ip: r.ip,
                    },
                    ImportData::Mac {
                        rd: r.rd,
                        vtep,
                        seq,
                        sticky,
                        rmac,
                        has_l3: r.label2.is_some(),
                    },
                )
            }
            EvpnRoute::InclusiveMulticast(r) => {
                // RFC 8365 §5.1.3: the flood list entry is the PMSI tunnel endpoint for
                // ingress replication, else the originating router
                let ep = a.get(code::PMSI_TUNNEL).and_then(|x| match &x.value {
                    AttrValue::PmsiTunnel(PmsiTunnel {
                        tunnel_type: PmsiTunnel::INGRESS_REPLICATION,
                        tunnel_id: PmsiTunnelId::Ip(ip),
                        ..
                    }) => Some(*ip),
                    _ => None,
                });
                (Kind::Flood(ep.unwrap_or(r.originator)), ImportData::None)
            }
            EvpnRoute::IpPrefix(r) => {
                let prefix = IpNet::new(r.prefix, r.prefix_len).ok()?.trunc();
                (Kind::Prefix(prefix), ImportData::Prefix { vtep: nh?, rmac })
            }
            _ => return None,
        };
        if let Some(v) = nh
            && v == self.vtep
        {
            // our own route reflected back
            return None;
        }
        Some((Imported { kind, vnis }, data))
    }

    fn import(&mut self, key: &RouteKey, imp: &Imported, data: ImportData) {
        for &vni in &imp.vnis {
            let l3 = self.vnis.get(&vni).is_some_and(|v| v.l3);
            match (&imp.kind, data, l3) {
                (
                    &Kind::Mac { mac, ip },
                    ImportData::Mac {
                        rd,
                        vtep,
                        seq,
                        sticky,
                        ..
                    },
                    false,
                ) => {
                    if let Some(t) = self.l2.get_mut(&vni) {
                        let st = t.macs.entry(mac).or_default();
                        st.remotes.retain(|r| r.key != *key);
                        st.remotes.push(Remote {
                            key: key.clone(),
                            rd,
                            vtep,
                            ip,
                            seq,
                            sticky,
                        });
                        self.dirty.push((vni, mac));
                    }
                }
                // symmetric IRB: a MAC+IP route with Label2 is a host route in the IP-VRF
                (
                    &Kind::Mac { ip: Some(ip), .. },
                    ImportData::Mac {
                        vtep,
                        seq,
                        rmac,
                        has_l3: true,
                        ..
                    },
                    true,
                ) => self.add_prefix(vni, vni::host(ip), key, vtep, rmac, seq),
                (&Kind::Prefix(p), ImportData::Prefix { vtep, rmac }, true) => {
                    self.add_prefix(vni, p, key, vtep, rmac, 0)
                }
                (&Kind::Flood(vtep), _, false) => {
                    if let Some(t) = self.l2.get_mut(&vni) {
                        let keys = t.floods.entry(vtep).or_default();
                        if !keys.contains(key) {
                            keys.push(key.clone());
                        }
                        self.dirty_floods.push((vni, vtep));
                    }
                }
                _ => {}
            }
        }
    }

    fn add_prefix(
        &mut self,
        vni: u32,
        p: IpNet,
        key: &RouteKey,
        vtep: IpAddr,
        rmac: Option<MacAddr>,
        seq: u32,
    ) {
        if let Some(t) = self.l3.get_mut(&vni) {
            let c = t.prefixes.entry(p).or_default();
            c.retain(|x| x.key != *key);
            c.push(PrefixCand {
                key: key.clone(),
                vtep,
                rmac,
                seq,
            });
            self.dirty_prefixes.push((vni, p));
        }
    }

    fn unimport(&mut self, key: &RouteKey, imp: &Imported) {
        for &vni in &imp.vnis {
            match imp.kind {
                Kind::Mac { mac, ip } => {
                    if let Some(st) = self.l2.get_mut(&vni).and_then(|t| t.macs.get_mut(&mac)) {
                        st.remotes.retain(|r| r.key != *key);
                        self.dirty.push((vni, mac));
                    }
                    if let (Some(t), Some(ip)) = (self.l3.get_mut(&vni), ip) {
                        let p = vni::host(ip);
                        if let Some(c) = t.prefixes.get_mut(&p) {
                            c.retain(|x| x.key != *key);
                            self.dirty_prefixes.push((vni, p));
                        }
                    }
                }
                Kind::Prefix(p) => {
                    if let Some(c) = self.l3.get_mut(&vni).and_then(|t| t.prefixes.get_mut(&p)) {
                        c.retain(|x| x.key != *key);
                        self.dirty_prefixes.push((vni, p));
                    }
                }
                Kind::Flood(vtep) => {
                    if let Some(t) = self.l2.get_mut(&vni)
                        && let Some(keys) = t.floods.get_mut(&vtep)
                    {
                        keys.retain(|k| k != key);
                        if keys.is_empty() {
                            t.floods.remove(&vtep);
                        }
                        self.dirty_floods.push((vni, vtep));
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- decisions

    /// Settle every MAC and prefix touched by the last input, then hand out one dataplane
    /// batch for all of it.
    fn flush(&mut self, now: Instant) {
        let mut dirty = std::mem::take(&mut self.dirty);
        if dirty.len() > 1 {
            dirty.sort_unstable();
            dirty.dedup();
        }
        for &(vni, mac) in &dirty {
            self.settle(now, vni, mac);
        }
        dirty.clear();
        self.dirty = dirty;
        let mut dp = std::mem::take(&mut self.dirty_prefixes);
        if dp.len() > 1 {
            dp.sort_unstable();
            dp.dedup();
        }
        for &(vni, p) in &dp {
            self.settle_prefix(vni, p);
        }
        dp.clear();
        self.dirty_prefixes = dp;
        // flood lists: the entry follows whether any type-3 route of that VTEP is imported,
        // decided once per input
        for (vni, vtep) in std::mem::take(&mut self.dirty_floods) {
            if let Some(t) = self.l2.get_mut(&vni) {
                let want = t.floods.contains_key(&vtep);
                if want && t.flood_on.insert(vtep) {
                    self.ops.push(DataplaneOp::Flood { vni, vtep });
                } else if !want && t.flood_on.remove(&vtep) {
                    self.ops.push(DataplaneOp::FloodDel { vni, vtep });
                }
            }
        }
        if !self.ops.is_empty() {
            let id = self.next_batch;
            self.next_batch += 1;
            self.counters.dataplane_ops += self.ops.len() as u64;
            for m in self.batch_moves.drain(..) {
                self.log.await_batch(m, id);
            }
            let ops = std::mem::take(&mut self.ops);
            self.out.push_back(Output::Dataplane(Batch { id, ops }));
        }
        self.report_done();
    }

    fn settle(&mut self, now: Instant, vni: u32, mac: MacAddr) {
        let Some(v) = self.vnis.get(&vni) else { return };
        let l3 = v.l3_vni.and_then(|n| self.vnis.get(&n));
        let Some(t) = self.l2.get_mut(&vni) else {
            return;
        };
        let Some(st) = t.macs.get_mut(&mac) else {
            return;
        };
        let vtep = self.vtep;

        // the claims: ours, and one per remote VTEP with the highest sequence of its routes
        // for this MAC (RFC 7432 §15.1: MAC and MAC+IP routes of a MAC share one sequence)
        let mut claims: SmallVec<[Claim; 4]> = SmallVec::new();
        if let Some(l) = &st.local {
            claims.push(Claim {
                vtep,
                seq: l.seq,
                sticky: l.sticky,
                local: true,
            });
        }
        for r in &st.remotes {
            st.high_seq = Some(st.high_seq.map_or(r.seq, |h| seq_max(h, r.seq)));
            match claims.iter_mut().find(|c| !c.local && c.vtep == r.vtep) {
                Some(c) => {
                    c.seq = seq_max(c.seq, r.seq);
                    c.sticky |= r.sticky;
                }
                None => claims.push(Claim {
                    vtep: r.vtep,
                    seq: r.seq,
                    sticky: r.sticky,
                    local: false,
                }),
            }
        }
        let frozen = st.dad.frozen();
        let winner =
            mac_mobility::resolve(&claims).and_then(|(i, why)| Some((*claims.get(i)?, why)));

        // RFC 7432 §15.2: a static MAC claimed elsewhere too — keep the static one, alarm
        if let Some((w, _)) = winner
            && w.sticky
        {
            for c in claims
                .iter()
                .filter(|c| c.vtep != w.vtep || c.local != w.local)
            {
                self.counters.sticky_conflicts += 1;
                let at = |c: &Claim| {
                    if c.local {
                        Loc::Local
                    } else {
                        Loc::Remote(c.vtep)
                    }
                };
                self.out.push_back(Output::Event(EvpnEvent::StickyConflict {
                    vni,
                    mac,
                    static_at: at(&w),
                    other: at(c),
                }));
            }
        }

        // our local claim lost (RFC 7432 §15.1): "the PE MUST withdraw its MAC/IP
        // Advertisement route" — the MAC has moved away. While frozen, nothing is processed.
        if !frozen
            && let (Some(l), Some((w, _))) = (&st.local, winner)
            && !w.local
        {
            let _ = l;
            st.local = None;
            self.counters.moved_away += 1;
            self.out.push_back(Output::Event(EvpnEvent::MovedAway {
                vni,
                mac,
                to: w.vtep,
                seq: w.seq,
            }));
        }

        // what we advertise
        let want: Option<Adv> = match (&st.local, frozen) {
            (None, _) => None,
            // frozen: "stop sending" — what was advertised stays as it was
            (Some(_), true) => st.adv.clone(),
            (Some(l), false) => Some(Adv {
                seq: l.seq,
                sticky: l.sticky,
                moved: l.moved,
                ips: l.ips.clone(),
            }),
        };
        if want != st.adv {
            let o = |a: &Adv| MacRouteOpts {
                seq: a.seq,
                sticky: a.sticky,
                mobility: a.moved,
                default_gateway: false,
            };
            let mut withdraw: SmallVec<[Option<IpAddr>; 3]> = SmallVec::new();
            let mut announce: SmallVec<[(Option<IpAddr>, MacRouteOpts); 3]> = SmallVec::new();
            match (&st.adv, &want) {
                (Some(old), None) => {
                    withdraw.push(None);
                    withdraw.extend(old.ips.iter().map(|i| Some(*i)));
                }
                (old, Some(new)) => {
                    let changed = old.as_ref().is_none_or(|o| {
                        (o.seq, o.sticky, o.moved) != (new.seq, new.sticky, new.moved)
                    });
                    let had: &[IpAddr] = old.as_ref().map(|o| &o.ips[..]).unwrap_or(&[]);
                    if changed {
                        announce.push((None, o(new)));
                    }
                    for ip in &new.ips {
                        if changed || !had.contains(ip) {
                            announce.push((Some(*ip), o(new)));
                        }
                    }
                    withdraw.extend(
                        had.iter()
                            .filter(|i| !new.ips.contains(i))
                            .map(|i| Some(*i)),
                    );
                }
                (None, None) => {}
            }
            for ip in withdraw {
                let r = origin::mac_ip_route(v, mac, ip, l3);
                self.out.push_back(Output::Withdraw {
                    family: Family::L2VPN_EVPN,
                    nlri: origin::nlri_of(&r),
                });
            }
            for (ip, o) in announce {
                self.out
                    .push_back(Output::Announce(origin::mac_ip(v, l3, mac, ip, o, vtep)));
            }
            if let Some(a) = &want {
                if a.seq != st.last_local {
                    self.state_dirty = true;
                }
                st.last_local = a.seq;
                st.high_seq = Some(st.high_seq.map_or(a.seq, |h| seq_max(h, a.seq)));
                st.moved_in = false;
            }
            st.adv = want;
        }

        // frozen: forwarding stays where it was ("keep forwarding to the last good location")
        // while that location still holds the MAC; once it is gone (withdrawn, or left this
        // VTEP) there is nothing good to keep and forwarding follows the winner
        let hold = frozen
            && match st.fdb {
                Some((at, _)) => st.remotes.iter().any(|r| r.vtep == at),
                None => st.local.is_some(),
            };
        if hold {
            return;
        }

        // location, moves and duplicate detection (steps are logged on the move this input
        // starts, never on an earlier one)
        let mut new_move = None;
        let new_loc = winner.map(|(w, _)| {
            if w.local {
                Loc::Local
            } else {
                Loc::Remote(w.vtep)
            }
        });
        st.reason = winner.map(|(_, why)| why);
        if let Some(m) = st.mv
            && let Some(r) = self.log.get(m)
            && let Loc::Remote(old) = r.from
            && !st.remotes.iter().any(|x| x.vtep == old)
        {
            self.log.step(m, Step::OldWithdrawn, now);
        }
        if matches!(new_loc, Some(Loc::Remote(_))) {
            st.moved_in = true;
        }
        if let (Some(old), Some(new), Some((w, why))) = (st.loc, new_loc, winner)
            && old != new
            && !frozen
        {
            let counted = old == Loc::Local || new == Loc::Local;
            let first = if new == Loc::Local {
                Step::Learned
            } else {
                Step::RouteSeen
            };
            let id = self
                .log
                .start(now, vni, mac, old, new, w.seq, why, counted, first);
            if new == Loc::Local && st.adv.is_some() {
                self.log.step(id, Step::Advertised, now);
            }
            if old == Loc::Local && st.adv.is_none() {
                self.log.step(id, Step::Withdrawn, now);
            }
            if let Loc::Remote(o) = old
                && !st.remotes.iter().any(|x| x.vtep == o)
            {
                self.log.step(id, Step::OldWithdrawn, now);
            }
            st.mv = Some(id);
            new_move = Some(id);
            if counted && st.dad.record(now, &self.dad) {
                self.counters.duplicates_detected += 1;
                self.out
                    .push_back(Output::Event(EvpnEvent::DuplicateDetected {
                        vni,
                        mac,
                        moves: self.dad.max_moves,
                        window_secs: self.dad.window.as_secs(),
                    }));
                if let Some(at) = st.dad.thaw_at(&self.dad) {
                    self.thaw.insert((at, vni, mac));
                }
            }
        }
        if new_loc.is_some() {
            st.loc = new_loc;
        }

        // the mapping feed: the winner's VTEP (ours when local), its sequence, its addresses
        let want_map = winner.map(|(w, _)| {
            let ips: SmallVec<[IpAddr; 2]> = if w.local {
                st.local.as_ref().map(|l| l.ips.clone()).unwrap_or_default()
            } else {
                let mut v: SmallVec<[IpAddr; 2]> = SmallVec::new();
                for ip in st
                    .remotes
                    .iter()
                    .filter(|r| r.vtep == w.vtep)
                    .filter_map(|r| r.ip)
                {
                    if !v.contains(&ip) {
                        v.push(ip);
                    }
                }
                v
            };
            (if w.local { vtep } else { w.vtep }, w.seq, ips)
        });
        let have_map = st.mapped.as_deref();
        if want_map.as_ref() != have_map {
            let local = winner.is_some_and(|(w, _)| w.local);
            let (rloc, version) = want_map.as_ref().map(|m| (m.0, m.1)).unzip();
            let version = version.unwrap_or(0);
            let empty: SmallVec<[IpAddr; 2]> = SmallVec::new();
            let new_ips = want_map.as_ref().map_or(&empty, |m| &m.2);
            let old_ips = have_map.map_or(&empty, |m| &m.2);
            let moved = have_map.map(|m| (m.0, m.1)) != want_map.as_ref().map(|m| (m.0, m.1));
            let mut feed = |ip: Option<IpAddr>, rloc: Option<IpAddr>| {
                self.out.push_back(Output::Mapping(Mapping {
                    vni,
                    mac,
                    ip,
                    rloc,
                    version,
                    local,
                }))
            };
            if moved {
                feed(None, rloc);
            }
            for ip in new_ips {
                if moved || !old_ips.contains(ip) {
                    feed(Some(*ip), rloc);
                }
            }
            for ip in old_ips.iter().filter(|i| !new_ips.contains(i)) {
                feed(Some(*ip), None);
            }
            st.mapped = want_map.map(Box::new);
        }

        // forwarding: one replace op per change (RFC 7432 §15 moves never leave a gap)
        let ops_before = self.ops.len();
        let want_fdb = match winner {
            Some((w, _)) if !w.local => Some((w.vtep, w.sticky)),
            _ => None,
        };
        let mut want_neigh: SmallVec<[IpAddr; 1]> = SmallVec::new();
        if let Some((vt, _)) = want_fdb {
            for r in st.remotes.iter().filter(|r| r.vtep == vt) {
                if let Some(ip) = r.ip
                    && !want_neigh.contains(&ip)
                {
                    want_neigh.push(ip);
                }
            }
        }
        if want_fdb != st.fdb {
            match want_fdb {
                Some((vtep, sticky)) => self.ops.push(DataplaneOp::Fdb {
                    vni,
                    mac,
                    vtep,
                    sticky,
                }),
                None => self.ops.push(DataplaneOp::FdbDel { vni, mac }),
            }
            st.fdb = want_fdb;
        }
        // suppression entries are per address, and an address can move between MACs (a VM
        // replaced under the same IP): the latest claim holds the entry, an earlier one takes
        // it back when the latest goes
        for ip in want_neigh.iter().filter(|i| !st.neighs.contains(i)) {
            let c = t.neigh.entry(*ip).or_default();
            c.retain(|m| *m != mac);
            c.push(mac);
            self.ops.push(DataplaneOp::Neigh { vni, ip: *ip, mac });
        }
        for ip in st.neighs.iter().filter(|i| !want_neigh.contains(i)) {
            let Some(c) = t.neigh.get_mut(ip) else {
                continue;
            };
            let was = c.last() == Some(&mac);
            c.retain(|m| *m != mac);
            match (was, c.last()) {
                (false, _) => {}
                (true, Some(&other)) => self.ops.push(DataplaneOp::Neigh {
                    vni,
                    ip: *ip,
                    mac: other,
                }),
                (true, None) => self.ops.push(DataplaneOp::NeighDel { vni, ip: *ip }),
            }
            if c.is_empty() {
                t.neigh.remove(ip);
            }
        }
        st.neighs = want_neigh;
        // the move's dataplane step: when the batch with its ops is applied, or now when it
        // needed none (forwarding was already right)
        if let Some(id) = new_move {
            if self.ops.len() > ops_before {
                self.batch_moves.push(id);
            } else {
                self.log.step(id, Step::Dataplane, now);
            }
        }

        // forget a MAC nobody claims and nothing remembers
        if st.local.is_none()
            && st.remotes.is_empty()
            && st.adv.is_none()
            && st.fdb.is_none()
            && st.neighs.is_empty()
            && st.high_seq.is_none()
            && st.last_local == 0
            && st.dad.total() == 0
            && st.mapped.is_none()
        {
            t.macs.swap_remove(&mac);
        }
    }

    fn settle_prefix(&mut self, vni: u32, p: IpNet) {
        let Some(t) = self.l3.get_mut(&vni) else {
            return;
        };
        let cands = t.prefixes.get(&p);
        let want = if t.own.contains(&p) {
            None
        } else {
            cands.and_then(|c| {
                let claims: SmallVec<[Claim; 2]> = c
                    .iter()
                    .map(|x| Claim {
                        vtep: x.vtep,
                        seq: x.seq,
                        sticky: false,
                        local: false,
                    })
                    .collect();
                let (i, _) = mac_mobility::resolve(&claims)?;
                c.get(i).map(|x| (x.vtep, x.rmac))
            })
        };
        if cands.is_some_and(|c| c.is_empty()) {
            t.prefixes.swap_remove(&p);
        }
        let have = t.installed.get(&p).copied();
        if want == have {
            return;
        }
        match want {
            Some((vtep, rmac)) => {
                t.installed.insert(p, (vtep, rmac));
                self.ops.push(DataplaneOp::Route {
                    vni,
                    prefix: p,
                    vtep,
                    rmac,
                });
            }
            None => {
                t.installed.remove(&p);
                self.ops.push(DataplaneOp::RouteDel { vni, prefix: p });
            }
        }
    }
}

/// The highest sequence seen (our own last one when nothing else was seen).
fn high(st: &MacState) -> u32 {
    st.high_seq.unwrap_or(st.last_local)
}

/// The parts of a route that `import` needs beyond its key.
#[derive(Clone, Copy, Debug)]
enum ImportData {
    None,
    Mac {
        rd: RouteDistinguisher,
        vtep: IpAddr,
        seq: u32,
        sticky: bool,
        rmac: Option<MacAddr>,
        has_l3: bool,
    },
    Prefix {
        vtep: IpAddr,
        rmac: Option<MacAddr>,
    },
}
