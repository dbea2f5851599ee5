//! Start-up reconcile of the Linux backend (ARCHITECTURE rule 4, BIRD's bridge sync): dump
//! what the kernel holds on the configured devices, compare it with what the EVPN layer
//! wants, adopt what is right, fix what is wrong, and remove only what vmmi owns and nobody
//! wants — never a flush.
//!
//! Ownership (what may be removed): on a configured VXLAN device, unicast `self` entries
//! marked `extern_learn` and every flood-list entry (00:00:00:00:00:00 `self`); on the bridge
//! of a configured L2 VNI, FDB entries marked `extern_learn` that point at its VXLAN port (the
//! bridge side of a remote MAC) and neighbour entries marked `extern_learn`; in the table of
//! a configured L3 VNI, routes of protocol 210 (`nl::RTPROT_VMMI`). Everything else (entries
//! an operator added, MACs the bridge learned on local ports, the kernel's own, another
//! daemon's routes — FRR's are `proto bgp`, its FDB entries live on its own VNIs' devices) is
//! never removed; a desired MAC that an operator's entry on the VXLAN device or port holds is
//! rewritten as vmmi's.
//!
//! A remote MAC of an L2 VNI is two entries (`mod.rs`): the VXLAN device's (`self`, the VTEP)
//! and the bridge's (`master extern_learn` on the VXLAN port). Each side is compared on its
//! own (`How::Sides`): kept when right, replaced, or deleted and rewritten when its kind is
//! wrong (the extern_learn path of the bridge keeps an entry's `static` and `sticky` bits,
//! as the VXLAN replace keeps its state). A desired MAC the bridge holds on a *local* port is
//! left there: the learn task reports it as local at start-up and the EVPN layer's next op
//! for the MAC decides; a start-up reconcile never takes a local MAC over. The pair counts
//! once in the report: adopted when both sides are right, added when neither existed.
//!
//! L3 VNIs: the desired `Route`s give the routes, and through `l3::Vrf` the RMAC FDB entries
//! and next-hop neighbours they share; those are compared like any FDB or neighbour entry of
//! the VNI. A route of ours is right when its next hop, device, `onlink` and metric are what
//! `apply` writes; one with another metric (never written by this version) is removed.
//!
//! Owns: `Snapshot` (the dump, keyed by VNI) and `plan` (pure: snapshot + desired → steps).
//! Must not: send anything (`mod.rs` lowers and runs the steps).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::neighbour::NeighbourFlags;

use super::l3::{Entry, NO_RMAC, Vrf};
use super::nl::{
    NUD_NOARP, NUD_PERMANENT, NeighView, ROUTE_METRIC, RTPROT_VMMI, RouteView, fdb_kind, gateway,
};
use crate::dataplane::{DataplaneOp, OpError};
use crate::wire::types::MacAddr;

/// One remote of a VXLAN FDB entry as dumped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Remote {
    pub dst: Option<IpAddr>,
    pub state: u16,
    pub flags: NeighbourFlags,
    /// NDA_VNI / NDA_PORT differing from the device's.
    pub odd: bool,
}

impl Remote {
    fn ours(&self) -> bool {
        self.flags.contains(NeighbourFlags::ExtLearned)
    }

    /// Exactly what `nl::fdb_replace(.., sticky)` writes (state, extern_learn, sticky bit).
    fn kind_is(&self, sticky: bool) -> bool {
        let (state, flags) = fdb_kind(sticky);
        self.state == state
            && self.ours()
            && self.flags.contains(NeighbourFlags::Sticky) == flags.contains(NeighbourFlags::Sticky)
            && !self.odd
    }
}

/// The bridge's FDB entry (VLAN 0) for a MAC, on the bridge of a configured VNI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct BrEntry {
    /// It points at the VNI's VXLAN port (else at a local port, or the bridge itself).
    pub on_vxlan: bool,
    pub state: u16,
    pub flags: NeighbourFlags,
}

impl BrEntry {
    /// A control plane's entry on the VXLAN port: what vmmi owns there.
    fn ours(&self) -> bool {
        self.on_vxlan && self.flags.contains(NeighbourFlags::ExtLearned)
    }

    /// Exactly what `nl::master_replace` leaves: extern_learn, neither local (PERMANENT) nor
    /// static (NOARP) nor sticky — the kernel reports it NUD_REACHABLE.
    fn right(&self) -> bool {
        self.ours()
            && self.state & (NUD_PERMANENT | NUD_NOARP) == 0
            && !self.flags.contains(NeighbourFlags::Sticky)
    }
}

/// A neighbour entry on a configured bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Neigh {
    pub mac: Option<MacAddr>,
    pub state: u16,
    pub ours: bool,
}

/// A route of ours in an L3 VNI's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct OurRoute {
    pub gateway: Option<IpAddr>,
    pub metric: u32,
    /// Through the VNI's bridge, `onlink`, one next hop: the shape `apply` writes.
    pub shape: bool,
}

/// What the kernel holds on the configured devices, by VNI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Snapshot {
    pub fdb: BTreeMap<(u32, MacAddr), Vec<Remote>>,
    /// The bridges' entries (VLAN 0), wherever they point.
    pub br: BTreeMap<(u32, MacAddr), BrEntry>,
    pub flood: BTreeSet<(u32, IpAddr)>,
    pub neigh: BTreeMap<(u32, IpAddr), Neigh>,
    /// Routes of protocol 210 in L3 VNIs' tables.
    pub routes: BTreeMap<(u32, IpNet), Vec<OurRoute>>,
}

impl Snapshot {
    /// From dumps: `bridge_fdb` (AF_BRIDGE) and `ip_neigh` (AF_INET + AF_INET6);
    /// `vxlan`/`bridge`: ifindex → VNI of the configured devices.
    pub fn build(
        bridge_fdb: &[NeighView],
        ip_neigh: &[NeighView],
        vxlan: &HashMap<u32, u32>,
        bridge: &HashMap<u32, u32>,
    ) -> Snapshot {
        let mut s = Snapshot::default();
        for v in bridge_fdb {
            if !v.bridge_family {
                continue;
            }
            // the bridge's own table: NDA_MASTER is the bridge, the ifindex the port
            if let (Some(br), Some(mac), false) =
                (v.master, v.mac, v.flags.contains(NeighbourFlags::Own))
            {
                if let Some(&vni) = bridge.get(&br)
                    && v.vlan.is_none_or(|n| n == 0)
                {
                    s.br.insert(
                        (vni, mac),
                        BrEntry {
                            on_vxlan: vxlan.get(&v.ifindex) == Some(&vni),
                            state: v.state,
                            flags: v.flags,
                        },
                    );
                }
                continue;
            }
            let (Some(&vni), Some(mac)) = (vxlan.get(&v.ifindex), v.mac) else {
                continue;
            };
            if !v.flags.contains(NeighbourFlags::Own) || v.master.is_some() {
                continue;
            }
            if mac == MacAddr::ZERO {
                if let Some(dst) = v.dst {
                    s.flood.insert((vni, dst));
                }
            } else {
                s.fdb.entry((vni, mac)).or_default().push(Remote {
                    dst: v.dst,
                    state: v.state,
                    flags: v.flags,
                    odd: v.vni.is_some() || v.port.is_some(),
                });
            }
        }
        for v in ip_neigh {
            let (Some(&vni), Some(ip)) = (bridge.get(&v.ifindex), v.dst) else {
                continue;
            };
            s.neigh.insert(
                (vni, ip),
                Neigh {
                    mac: v.mac,
                    state: v.state,
                    ours: v.flags.contains(NeighbourFlags::ExtLearned),
                },
            );
        }
        s
    }

    /// Add the routes of ours (`RTPROT_VMMI`) in the tables of L3 VNIs; `tables`: table →
    /// (VNI, bridge ifindex).
    pub fn with_routes(mut self, routes: &[RouteView], tables: &HashMap<u32, (u32, u32)>) -> Self {
        for r in routes {
            let Some(&(vni, br)) = tables.get(&r.table) else {
                continue;
            };
            if r.protocol != RTPROT_VMMI {
                continue;
            }
            self.routes
                .entry((vni, r.prefix))
                .or_default()
                .push(OurRoute {
                    gateway: r.gateway,
                    metric: r.metric,
                    shape: r.oif == Some(br) && r.onlink && !r.multipath,
                });
        }
        self
    }
}

/// What a step does to one side of a remote MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    /// Right already: nothing.
    Keep,
    /// Replace (creates it when absent).
    Write,
    /// Delete the entry, then write it: one whose state or flags a replace would keep (the
    /// kernel's VXLAN replace changes only the remote; the bridge's extern_learn path only
    /// the port).
    Fresh,
}

/// How a step is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum How {
    /// The op as `apply` writes it.
    Normal,
    /// An `Fdb`: each side as given (an L3 VNI's RMAC entry has no bridge side).
    Sides { vxlan: Side, bridge: Side },
    /// An `FdbDel` of these sides only (the other one is not vmmi's).
    Del { vxlan: bool, bridge: bool },
    /// A route alone (its RMAC entry and neighbour are steps of their own).
    Bare,
    /// Delete a route of ours with this metric.
    Stale { metric: u32 },
}

/// The shared L3 entry a step on an L3 VNI is about.
pub(super) fn l3_entry(op: &DataplaneOp) -> Option<Entry> {
    match *op {
        DataplaneOp::Fdb { mac, .. } | DataplaneOp::FdbDel { mac, .. } => Some(Entry::Rmac(mac)),
        DataplaneOp::Neigh { ip, .. } | DataplaneOp::NeighDel { ip, .. } => Some(Entry::Nh(ip)),
        _ => None,
    }
}

/// Why a step is there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    Fixed,
    Added,
    Removed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Step {
    pub op: DataplaneOp,
    pub how: How,
    pub class: Class,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Plan {
    pub steps: Vec<Step>,
    pub adopted: usize,
    /// Desired ops that cannot be reconciled (VNI not configured, the wrong kind of VNI, a
    /// route without a Router's MAC).
    pub errors: Vec<OpError>,
    /// Per L3 VNI, the routes it will hold: (prefix, VTEP, RMAC).
    pub vrfs: BTreeMap<u32, Vec<(IpNet, IpAddr, MacAddr)>>,
}

/// Compare; `configured`: the VNIs whose devices exist, `l3` those of them that are L3 VNIs.
/// Deletes in `desired` are ignored (desired state is a set of entries); a later add of the
/// same key wins.
pub(super) fn plan(
    desired: &[DataplaneOp],
    snap: &Snapshot,
    configured: &BTreeSet<u32>,
    l3: &BTreeSet<u32>,
) -> Plan {
    let mut p = Plan::default();
    let mut fdb: BTreeMap<(u32, MacAddr), (IpAddr, bool)> = BTreeMap::new();
    let mut flood: BTreeSet<(u32, IpAddr)> = BTreeSet::new();
    let mut neigh: BTreeMap<(u32, IpAddr), MacAddr> = BTreeMap::new();
    let mut routes: BTreeMap<(u32, IpNet), (IpAddr, MacAddr)> = BTreeMap::new();
    for op in desired {
        if !configured.contains(&op.vni()) {
            p.errors.push(OpError {
                op: op.clone(),
                reason: super::not_configured(op.vni()),
            });
            continue;
        }
        if let Some(reason) = super::wrong_kind(op, l3.contains(&op.vni())) {
            if !matches!(op, DataplaneOp::RouteDel { .. }) {
                p.errors.push(OpError {
                    op: op.clone(),
                    reason,
                });
            }
            continue;
        }
        match *op {
            DataplaneOp::Fdb {
                vni,
                mac,
                vtep,
                sticky,
            } => {
                fdb.insert((vni, mac), (vtep, sticky));
            }
            DataplaneOp::Flood { vni, vtep } => {
                flood.insert((vni, vtep));
            }
            DataplaneOp::Neigh { vni, ip, mac } => {
                neigh.insert((vni, ip), mac);
            }
            DataplaneOp::Route {
                vni,
                prefix,
                vtep,
                rmac: Some(rmac),
            } => {
                routes.insert((vni, prefix), (vtep, rmac));
            }
            DataplaneOp::Route { vni, prefix, .. } => {
                // not installable: and not kept either (a route of ours there is removed)
                routes.remove(&(vni, prefix));
                p.errors.push(OpError {
                    op: op.clone(),
                    reason: NO_RMAC.into(),
                });
            }
            _ => {}
        }
    }
    let step = |op, how, class| Step { op, how, class };

    // L3 VNIs: the shared entries the routes want join the VNI's FDB and neighbour entries
    for (&(vni, prefix), &(vtep, rmac)) in &routes {
        p.vrfs.entry(vni).or_default().push((prefix, vtep, rmac));
    }
    for (&vni, rs) in &p.vrfs {
        let w = Vrf::from_routes(rs.iter().copied()).wanted();
        for (rmac, vtep) in w.rmacs {
            fdb.insert((vni, rmac), (vtep, false));
        }
        for (gw, rmac) in w.nhs {
            neigh.insert((vni, gw), rmac);
        }
    }

    for (&(vni, mac), &(vtep, sticky)) in &fdb {
        let op = DataplaneOp::Fdb {
            vni,
            mac,
            vtep,
            sticky,
        };
        let have = snap.fdb.get(&(vni, mac)).map_or(&[][..], Vec::as_slice);
        let vxlan = match have {
            [] => Side::Write,
            [r] if r.kind_is(sticky) && r.dst == Some(vtep) => Side::Keep,
            // one remote with the right kind: a replace moves it without a gap
            [r] if r.kind_is(sticky) => Side::Write,
            _ => Side::Fresh,
        };
        let br = snap.br.get(&(vni, mac));
        let bridge = match br {
            // an L3 VNI's RMAC entry has no bridge side (`mod.rs`)
            _ if l3.contains(&vni) => Side::Keep,
            None => Side::Write,
            // on a local port (or the bridge's own address): never taken over at start-up
            Some(b) if !b.on_vxlan => Side::Keep,
            Some(b) if b.right() => Side::Keep,
            Some(_) => Side::Fresh,
        };
        let existed = !have.is_empty() || (!l3.contains(&vni) && br.is_some_and(|b| b.on_vxlan));
        match (vxlan, bridge) {
            (Side::Keep, Side::Keep) => p.adopted += 1,
            _ => p.steps.push(step(
                op,
                How::Sides { vxlan, bridge },
                if existed { Class::Fixed } else { Class::Added },
            )),
        }
    }
    // stale: (vni, mac) → (the VXLAN entry is ours, the bridge's entry is ours)
    let mut stale: BTreeMap<(u32, MacAddr), (bool, bool)> = BTreeMap::new();
    for (&(vni, mac), remotes) in &snap.fdb {
        if !fdb.contains_key(&(vni, mac))
            && configured.contains(&vni)
            && remotes.iter().any(Remote::ours)
        {
            stale.entry((vni, mac)).or_default().0 = true;
        }
    }
    for (&(vni, mac), b) in &snap.br {
        if !fdb.contains_key(&(vni, mac))
            && configured.contains(&vni)
            && !l3.contains(&vni)
            && b.ours()
        {
            stale.entry((vni, mac)).or_default().1 = true;
        }
    }
    for ((vni, mac), (vxlan, bridge)) in stale {
        p.steps.push(step(
            DataplaneOp::FdbDel { vni, mac },
            How::Del { vxlan, bridge },
            Class::Removed,
        ));
    }

    for &(vni, vtep) in &flood {
        if snap.flood.contains(&(vni, vtep)) {
            p.adopted += 1;
        } else {
            p.steps.push(step(
                DataplaneOp::Flood { vni, vtep },
                How::Normal,
                Class::Added,
            ));
        }
    }
    for &(vni, vtep) in &snap.flood {
        if !flood.contains(&(vni, vtep)) && configured.contains(&vni) {
            p.steps.push(step(
                DataplaneOp::FloodDel { vni, vtep },
                How::Normal,
                Class::Removed,
            ));
        }
    }

    for (&(vni, ip), &mac) in &neigh {
        let op = DataplaneOp::Neigh { vni, ip, mac };
        match snap.neigh.get(&(vni, ip)) {
            None => p.steps.push(step(op, How::Normal, Class::Added)),
            Some(n) if n.ours && n.mac == Some(mac) && n.state == NUD_NOARP => p.adopted += 1,
            Some(_) => p.steps.push(step(op, How::Normal, Class::Fixed)),
        }
    }
    for (&(vni, ip), n) in &snap.neigh {
        if n.ours && !neigh.contains_key(&(vni, ip)) && configured.contains(&vni) {
            p.steps.push(step(
                DataplaneOp::NeighDel { vni, ip },
                How::Normal,
                Class::Removed,
            ));
        }
    }

    for (&(vni, prefix), &(vtep, rmac)) in &routes {
        let gw = gateway(&prefix, vtep);
        let have = snap
            .routes
            .get(&(vni, prefix))
            .map_or(&[][..], Vec::as_slice);
        let op = DataplaneOp::Route {
            vni,
            prefix,
            vtep,
            rmac: Some(rmac),
        };
        if have
            .iter()
            .any(|r| r.shape && r.metric == ROUTE_METRIC && r.gateway == Some(gw))
        {
            p.adopted += 1;
        } else if have.iter().any(|r| r.metric == ROUTE_METRIC) {
            p.steps.push(step(op, How::Bare, Class::Fixed));
        } else {
            p.steps.push(step(op, How::Bare, Class::Added));
        }
    }
    for (&(vni, prefix), have) in &snap.routes {
        let wanted = routes.contains_key(&(vni, prefix));
        for r in have {
            if configured.contains(&vni) && !(wanted && r.metric == ROUTE_METRIC) {
                p.steps.push(step(
                    DataplaneOp::RouteDel { vni, prefix },
                    How::Stale { metric: r.metric },
                    Class::Removed,
                ));
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::super::nl::NUD_REACHABLE;
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn mac(b: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, b])
    }
    fn remote(dst: &str, state: u16, flags: NeighbourFlags) -> Remote {
        Remote {
            dst: Some(ip(dst)),
            state,
            flags,
            odd: false,
        }
    }
    const OURS: NeighbourFlags = NeighbourFlags::Own.union(NeighbourFlags::ExtLearned);
    /// The flags the kernel reports on a bridge entry written `master extern_learn`.
    const MASTER: NeighbourFlags = NeighbourFlags::ExtLearned;

    fn master(on_vxlan: bool, state: u16, flags: NeighbourFlags) -> BrEntry {
        BrEntry {
            on_vxlan,
            state,
            flags,
        }
    }

    fn sides(vxlan: Side, bridge: Side) -> How {
        How::Sides { vxlan, bridge }
    }

    fn classes(p: &Plan) -> Vec<(DataplaneOp, How, Class)> {
        p.steps
            .iter()
            .map(|s| (s.op.clone(), s.how.clone(), s.class))
            .collect()
    }

    #[test]
    fn adopts_right_entries_fixes_wrong_ones_and_removes_only_owned_stale_ones() {
        let mut s = Snapshot::default();
        s.fdb
            .insert((100, mac(1)), vec![remote("10.0.0.2", NUD_REACHABLE, OURS)]); // right
        s.fdb
            .insert((100, mac(2)), vec![remote("10.0.0.9", NUD_REACHABLE, OURS)]); // moved
        s.fdb.insert(
            (100, mac(3)),
            vec![remote("10.0.0.2", NUD_PERMANENT, NeighbourFlags::Own)],
        ); // operator's, desired
        s.fdb
            .insert((100, mac(4)), vec![remote("10.0.0.9", NUD_REACHABLE, OURS)]); // stale, ours
        s.fdb.insert(
            (100, mac(5)),
            vec![remote("10.0.0.8", NUD_PERMANENT, NeighbourFlags::Own)],
        ); // operator's
        s.fdb
            .insert((200, mac(6)), vec![remote("10.0.0.8", NUD_REACHABLE, OURS)]); // vni not configured
        for m in 1..=4 {
            s.br.insert((100, mac(m)), master(true, NUD_REACHABLE, MASTER)); // right
        }
        s.flood.insert((100, ip("10.0.0.2")));
        s.flood.insert((100, ip("10.0.0.7")));
        s.neigh.insert(
            (100, ip("192.0.2.1")),
            Neigh {
                mac: Some(mac(1)),
                state: NUD_NOARP,
                ours: true,
            },
        );
        s.neigh.insert(
            (100, ip("192.0.2.2")),
            Neigh {
                mac: Some(mac(1)),
                state: NUD_NOARP,
                ours: true,
            },
        );
        s.neigh.insert(
            (100, ip("192.0.2.3")),
            Neigh {
                mac: Some(mac(9)),
                state: NUD_REACHABLE,
                ours: false,
            },
        );
        let fdb = |m, v: &str| DataplaneOp::Fdb {
            vni: 100,
            mac: mac(m),
            vtep: ip(v),
            sticky: false,
        };
        let desired = vec![
            fdb(1, "10.0.0.2"),
            fdb(2, "10.0.0.3"),
            fdb(3, "10.0.0.2"),
            fdb(7, "10.0.0.4"),
            DataplaneOp::Flood {
                vni: 100,
                vtep: ip("10.0.0.2"),
            },
            DataplaneOp::Flood {
                vni: 100,
                vtep: ip("10.0.0.5"),
            },
            DataplaneOp::Neigh {
                vni: 100,
                ip: ip("192.0.2.1"),
                mac: mac(1),
            },
            DataplaneOp::Route {
                vni: 100,
                prefix: "10.1.0.0/16".parse().unwrap(),
                vtep: ip("10.0.0.2"),
                rmac: None,
            },
            DataplaneOp::Flood {
                vni: 300,
                vtep: ip("10.0.0.2"),
            },
        ];
        let p = plan(&desired, &s, &[100].into_iter().collect(), &BTreeSet::new());
        assert_eq!(p.adopted, 3); // mac 1, flood 10.0.0.2, neighbour 192.0.2.1
        assert_eq!(
            classes(&p),
            vec![
                (
                    fdb(2, "10.0.0.3"),
                    sides(Side::Write, Side::Keep),
                    Class::Fixed
                ),
                (
                    fdb(3, "10.0.0.2"),
                    sides(Side::Fresh, Side::Keep),
                    Class::Fixed
                ),
                (
                    fdb(7, "10.0.0.4"),
                    sides(Side::Write, Side::Write),
                    Class::Added
                ),
                (
                    DataplaneOp::FdbDel {
                        vni: 100,
                        mac: mac(4)
                    },
                    How::Del {
                        vxlan: true,
                        bridge: true
                    },
                    Class::Removed
                ),
                (
                    DataplaneOp::Flood {
                        vni: 100,
                        vtep: ip("10.0.0.5")
                    },
                    How::Normal,
                    Class::Added
                ),
                (
                    DataplaneOp::FloodDel {
                        vni: 100,
                        vtep: ip("10.0.0.7")
                    },
                    How::Normal,
                    Class::Removed
                ),
                (
                    DataplaneOp::NeighDel {
                        vni: 100,
                        ip: ip("192.0.2.2")
                    },
                    How::Normal,
                    Class::Removed
                ),
            ]
        );
        assert_eq!(p.errors.len(), 2);
        assert_eq!(
            p.errors[0].reason,
            "vni 100 is an l2 VNI: routes go in an l3 VNI's table"
        );
        assert!(p.errors[1].reason.contains("vni 300"));
    }

    #[test]
    fn the_bridge_side_is_adopted_fixed_and_removed_only_when_ours_and_on_the_vxlan_port() {
        let mut s = Snapshot::default();
        let right = remote("10.0.0.2", NUD_REACHABLE, OURS);
        let operator = remote("10.0.0.2", NUD_PERMANENT, NeighbourFlags::Own);
        // desired: the bridge side absent (a vmmi before bridge-side entries)
        s.fdb.insert((100, mac(1)), vec![right.clone()]);
        // desired: an operator's static entry on the VXLAN port, and a sticky one
        s.fdb.insert((100, mac(2)), vec![right.clone()]);
        s.br.insert(
            (100, mac(2)),
            master(true, NUD_NOARP, NeighbourFlags::empty()),
        );
        s.br.insert(
            (100, mac(3)),
            master(true, NUD_NOARP, MASTER | NeighbourFlags::Sticky),
        );
        // desired, but the bridge has the MAC on a local port: left to the learn task
        s.br.insert(
            (100, mac(4)),
            master(false, NUD_REACHABLE, NeighbourFlags::empty()),
        );
        // not desired: ours on both sides; only the bridge side ours; only the VXLAN side
        // ours (the bridge's entry is an operator's static one); a MAC learned on a local
        // port; an operator's static entry on the VXLAN port
        s.fdb.insert((100, mac(5)), vec![right.clone()]);
        s.br.insert((100, mac(5)), master(true, NUD_REACHABLE, MASTER));
        s.br.insert((100, mac(6)), master(true, NUD_REACHABLE, MASTER));
        s.fdb.insert((100, mac(7)), vec![operator.clone()]);
        s.br.insert((100, mac(7)), master(true, NUD_REACHABLE, MASTER));
        s.fdb.insert((100, mac(8)), vec![right.clone()]);
        s.br.insert(
            (100, mac(8)),
            master(true, NUD_NOARP, NeighbourFlags::empty()),
        );
        s.br.insert(
            (100, mac(9)),
            master(false, NUD_REACHABLE, NeighbourFlags::empty()),
        );
        s.br.insert(
            (100, mac(10)),
            master(true, NUD_NOARP, NeighbourFlags::empty()),
        );
        // another (unconfigured) VNI's bridge: never touched
        s.br.insert((200, mac(11)), master(true, NUD_REACHABLE, MASTER));
        // an L3 VNI: no bridge side, whatever is there
        s.br.insert((5000, mac(12)), master(true, NUD_REACHABLE, MASTER));
        s.br.insert(
            (5000, mac(13)),
            master(true, NUD_NOARP, NeighbourFlags::empty()),
        );
        let fdb = |vni, m| DataplaneOp::Fdb {
            vni,
            mac: mac(m),
            vtep: ip("10.0.0.2"),
            sticky: false,
        };
        let del = |m, vxlan, bridge| {
            (
                DataplaneOp::FdbDel {
                    vni: 100,
                    mac: mac(m),
                },
                How::Del { vxlan, bridge },
                Class::Removed,
            )
        };
        let desired = [fdb(100, 1), fdb(100, 2), fdb(100, 3), fdb(100, 4)];
        let p = plan(
            &desired,
            &s,
            &[100, 5000].into_iter().collect(),
            &[5000].into_iter().collect(),
        );
        assert_eq!(p.adopted, 0);
        assert_eq!(
            classes(&p),
            vec![
                (fdb(100, 1), sides(Side::Keep, Side::Write), Class::Fixed),
                (fdb(100, 2), sides(Side::Keep, Side::Fresh), Class::Fixed),
                (fdb(100, 3), sides(Side::Write, Side::Fresh), Class::Fixed),
                (fdb(100, 4), sides(Side::Write, Side::Keep), Class::Added),
                del(5, true, true),
                del(6, false, true),
                del(7, false, true),
                del(8, true, false),
            ]
        );
        // a right pair is adopted
        let mut s2 = Snapshot::default();
        s2.fdb.insert((100, mac(1)), vec![right]);
        s2.br
            .insert((100, mac(1)), master(true, NUD_REACHABLE, MASTER));
        let p = plan(
            &[fdb(100, 1)],
            &s2,
            &[100].into_iter().collect(),
            &BTreeSet::new(),
        );
        assert_eq!((p.adopted, p.steps.len()), (1, 0));
    }

    #[test]
    fn sticky_changes_and_extra_remotes_need_a_fresh_entry() {
        let mut s = Snapshot::default();
        s.fdb
            .insert((1, mac(1)), vec![remote("10.0.0.2", NUD_REACHABLE, OURS)]);
        s.fdb.insert(
            (1, mac(2)),
            vec![
                remote("10.0.0.2", NUD_REACHABLE, OURS),
                remote("10.0.0.3", NUD_REACHABLE, OURS),
            ],
        );
        let sticky = DataplaneOp::Fdb {
            vni: 1,
            mac: mac(1),
            vtep: ip("10.0.0.2"),
            sticky: true,
        };
        let two = DataplaneOp::Fdb {
            vni: 1,
            mac: mac(2),
            vtep: ip("10.0.0.2"),
            sticky: false,
        };
        let p = plan(
            &[sticky.clone(), two.clone()],
            &s,
            &[1].into_iter().collect(),
            &BTreeSet::new(),
        );
        assert_eq!(
            classes(&p),
            vec![
                (sticky, sides(Side::Fresh, Side::Write), Class::Fixed),
                (two, sides(Side::Fresh, Side::Write), Class::Fixed)
            ]
        );
    }

    #[test]
    fn snapshot_keeps_only_entries_of_configured_devices() {
        let v = |ifindex, m: MacAddr, dst: &str, flags, master| NeighView {
            bridge_family: true,
            ifindex,
            state: NUD_REACHABLE,
            flags,
            mac: Some(m),
            dst: Some(ip(dst)),
            master,
            vni: None,
            port: None,
            vlan: None,
        };
        let side = |ifindex, m: MacAddr, flags, master| NeighView {
            dst: None,
            ..v(ifindex, m, "10.0.0.2", flags, master)
        };
        let fdb = [
            v(3, mac(1), "10.0.0.2", OURS, None),
            v(3, MacAddr::ZERO, "10.0.0.2", NeighbourFlags::Own, None),
            side(3, mac(2), NeighbourFlags::ExtLearned, Some(2)), // bridge side, VXLAN port
            side(4, mac(4), NeighbourFlags::empty(), Some(2)),    // bridge side, a local port
            side(3, mac(5), NeighbourFlags::ExtLearned, Some(8)), // another bridge
            NeighView {
                vlan: Some(10),
                ..side(4, mac(6), NeighbourFlags::empty(), Some(2))
            }, // a VLAN's
            side(3, mac(7), NeighbourFlags::Own, Some(2)),        // a port's own (self) entry
            v(9, mac(3), "10.0.0.2", OURS, None),                 // another device
        ];
        let s = Snapshot::build(
            &fdb,
            &[],
            &[(3, 100)].into_iter().collect(),
            &[(2, 100)].into_iter().collect(),
        );
        assert_eq!(s.fdb.len(), 1);
        assert!(s.fdb.contains_key(&(100, mac(1))));
        assert_eq!(
            s.flood.iter().collect::<Vec<_>>(),
            vec![&(100, ip("10.0.0.2"))]
        );
        assert_eq!(
            s.br.into_iter().collect::<Vec<_>>(),
            vec![
                (
                    (100, mac(2)),
                    master(true, NUD_REACHABLE, NeighbourFlags::ExtLearned)
                ),
                (
                    (100, mac(4)),
                    master(false, NUD_REACHABLE, NeighbourFlags::empty())
                ),
            ]
        );
    }

    #[test]
    fn l3_routes_and_their_shared_entries_are_adopted_fixed_and_removed_only_when_ours() {
        let (x, y) = (ip("10.0.0.2"), ip("10.0.0.3"));
        let r = |b: u8| MacAddr([2, 0, 0, 0, 0xee, b]);
        let net = |s: &str| -> IpNet { s.parse().unwrap() };
        let ours = |gw: &str, metric| OurRoute {
            gateway: Some(ip(gw)),
            metric,
            shape: true,
        };
        let mut s = Snapshot::default();
        s.routes.insert(
            (5000, net("10.1.0.0/16")),
            vec![ours("10.0.0.2", ROUTE_METRIC)],
        ); // right
        s.routes.insert(
            (5000, net("10.2.0.0/16")),
            vec![ours("10.0.0.9", ROUTE_METRIC)],
        ); // moved
        s.routes.insert(
            (5000, net("10.3.0.0/16")),
            vec![ours("10.0.0.9", ROUTE_METRIC)],
        ); // stale
        s.routes
            .insert((5000, net("10.4.0.0/16")), vec![ours("10.0.0.3", 99)]); // old metric
        s.fdb
            .insert((5000, r(1)), vec![remote("10.0.0.2", NUD_REACHABLE, OURS)]);
        s.fdb
            .insert((5000, r(9)), vec![remote("10.0.0.9", NUD_REACHABLE, OURS)]); // stale
        s.neigh.insert(
            (5000, x),
            Neigh {
                mac: Some(r(1)),
                state: NUD_NOARP,
                ours: true,
            },
        );
        let route = |p: &str, vtep, rmac| DataplaneOp::Route {
            vni: 5000,
            prefix: net(p),
            vtep,
            rmac,
        };
        let desired = vec![
            route("10.1.0.0/16", x, Some(r(1))),
            route("10.2.0.0/16", x, Some(r(1))),
            route("10.4.0.0/16", y, Some(r(2))),
            route("10.5.0.0/16", y, None),
            DataplaneOp::Fdb {
                vni: 5000,
                mac: r(7),
                vtep: x,
                sticky: false,
            },
        ];
        let both: BTreeSet<u32> = [5000].into_iter().collect();
        let p = plan(&desired, &s, &both, &both);
        // adopted: RMAC 1, neighbour x, route 10.1/16
        assert_eq!(p.adopted, 3);
        let del = |p: &str, metric| {
            (
                DataplaneOp::RouteDel {
                    vni: 5000,
                    prefix: net(p),
                },
                How::Stale { metric },
                Class::Removed,
            )
        };
        assert_eq!(
            classes(&p),
            vec![
                (
                    DataplaneOp::Fdb {
                        vni: 5000,
                        mac: r(2),
                        vtep: y,
                        sticky: false
                    },
                    sides(Side::Write, Side::Keep),
                    Class::Added
                ),
                (
                    DataplaneOp::FdbDel {
                        vni: 5000,
                        mac: r(9)
                    },
                    How::Del {
                        vxlan: true,
                        bridge: false
                    },
                    Class::Removed
                ),
                (
                    DataplaneOp::Neigh {
                        vni: 5000,
                        ip: y,
                        mac: r(2)
                    },
                    How::Normal,
                    Class::Added
                ),
                (route("10.2.0.0/16", x, Some(r(1))), How::Bare, Class::Fixed),
                (route("10.4.0.0/16", y, Some(r(2))), How::Bare, Class::Added),
                del("10.3.0.0/16", ROUTE_METRIC),
                del("10.4.0.0/16", 99),
            ]
        );
        let reasons: Vec<&str> = p.errors.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(
            reasons,
            vec![
                NO_RMAC,
                "vni 5000 is an l3 VNI: MAC, flood and neighbour ops belong to l2 VNIs"
            ]
        );
        assert_eq!(p.vrfs[&5000].len(), 3);
    }
}
