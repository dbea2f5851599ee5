//! The routes of L3 VNIs in the Linux backend (symmetric IRB, RFC 9135; type-5 prefixes,
//! RFC 9136), the way FRR's zebra writes them: for a route to `prefix` behind VTEP `vtep`
//! with Router's MAC `rmac`,
//! 1. the RMAC entry — `bridge fdb replace RMAC dev <l3 vxlan> dst VTEP self extern_learn` —
//!    tells the VXLAN device where a frame to that inner MAC goes;
//! 2. the next-hop neighbour — `ip neigh replace GW lladdr RMAC dev <l3 bridge> nud noarp
//!    extern_learn` — gives the route's next hop that MAC;
//! 3. the route — `ip route replace PREFIX via GW dev <l3 bridge> onlink table T proto 210`.
//!
//! RFC 9135 §8.1: the Router's MAC extended community carries the MAC of the advertising
//! VTEP that an ingress VTEP puts as the inner destination MAC of a routed packet (§5.4, data
//! plane of the ingress PE): that is why (1) and (2) exist, and why a route without it cannot
//! be written (`NO_RMAC`).
//!
//! Entries 1 and 2 are shared by every route to the same VTEP, so they are reference-counted:
//! `Refs` per RMAC (which VTEP it points at) and per next hop (which RMAC it resolves to),
//! the latest writer current. Deleting one route removes a shared entry only when no route
//! uses it any more; a VTEP whose RMAC changed gets its neighbour replaced by the first route
//! carrying the new RMAC, and the old RMAC's FDB entry goes with the last route carrying it.
//! The EVPN layer sends one op per prefix with one next hop (its best path, `settle_prefix`):
//! there is no ECMP to write; a route that moves is one replace (no gap).
//!
//! Owns: `Vrf` — the routes asked for per L3 VNI, the counts, and which shared entries are
//! *unsure* (their last write failed): those are written again, as wanted *then*, by the next
//! op that touches them. Pure: it returns `Write`s; `mod.rs` turns them into requests.
//! Must not: talk to the kernel.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use smallvec::SmallVec;

use super::nl::gateway;
use crate::wire::types::MacAddr;

/// The reason of a `Route` op without a Router's MAC.
pub const NO_RMAC: &str = "no Router's MAC extended community (RFC 9135 §8.1) on the route: \
     the inner destination MAC towards the VTEP is unknown, so the route is not installed \
     (a route this op replaces is removed)";

/// Values sharing one kernel entry, each with its count of routes; the last is current (the
/// latest route that asked for it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Refs<T>(SmallVec<[(T, u32); 1]>);

impl<T> Default for Refs<T> {
    fn default() -> Self {
        Refs(SmallVec::new())
    }
}

impl<T: Copy + PartialEq> Refs<T> {
    pub fn current(&self) -> Option<T> {
        self.0.last().map(|x| x.0)
    }

    /// One more route wants `v`; it becomes current. True when the current value changed.
    pub fn add(&mut self, v: T) -> bool {
        let before = self.current();
        let n = match self.0.iter().position(|x| x.0 == v) {
            Some(i) => self.0.remove(i).1,
            None => 0,
        };
        self.0.push((v, n.saturating_add(1)));
        before != Some(v)
    }

    /// One route less wants `v`. True when the current value changed (or went).
    pub fn remove(&mut self, v: T) -> bool {
        let before = self.current();
        if let Some(i) = self.0.iter().position(|x| x.0 == v) {
            let left = self.0.get(i).map_or(0, |x| x.1.saturating_sub(1));
            if left == 0 {
                self.0.remove(i);
            } else if let Some(x) = self.0.get_mut(i) {
                x.1 = left;
            }
        }
        before != self.current()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A shared kernel entry of an L3 VNI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Entry {
    /// The FDB entry of a Router's MAC on the VXLAN device.
    Rmac(MacAddr),
    /// The neighbour entry of a next hop (gateway address) on the bridge.
    Nh(IpAddr),
}

/// One kernel write of an L3 VNI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Write {
    Fdb { rmac: MacAddr, vtep: IpAddr },
    FdbDel { rmac: MacAddr },
    Nh { gw: IpAddr, rmac: MacAddr },
    NhDel { gw: IpAddr },
    Route { prefix: IpNet, gw: IpAddr },
    RouteDel { prefix: IpNet },
}

impl Write {
    /// The shared entry this write is about (`None` for a route).
    pub fn entry(&self) -> Option<Entry> {
        match *self {
            Write::Fdb { rmac, .. } | Write::FdbDel { rmac } => Some(Entry::Rmac(rmac)),
            Write::Nh { gw, .. } | Write::NhDel { gw } => Some(Entry::Nh(gw)),
            Write::Route { .. } | Write::RouteDel { .. } => None,
        }
    }
}

/// The shared entries routes want: RMAC → VTEP (FDB), next hop → RMAC (neighbours).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Wanted {
    pub rmacs: Vec<(MacAddr, IpAddr)>,
    pub nhs: Vec<(IpAddr, MacAddr)>,
}

/// What vmmi asked of one L3 VNI's kernel state.
#[derive(Clone, Debug, Default)]
pub(super) struct Vrf {
    /// prefix → (VTEP, RMAC), as last asked (whether or not the write succeeded).
    pub routes: HashMap<IpNet, (IpAddr, MacAddr)>,
    /// RMAC → the VTEPs routes point it at.
    rmac: HashMap<MacAddr, Refs<IpAddr>>,
    /// Next hop → the RMACs routes resolve it to.
    nh: HashMap<IpAddr, Refs<MacAddr>>,
    /// Shared entries whose last write failed.
    unsure: HashSet<Entry>,
    /// Per prefix: unsure entries its last op left (written again by its next op).
    retouch: HashMap<IpNet, SmallVec<[Entry; 2]>>,
}

impl Vrf {
    /// From the routes a reconcile made right: everything counted, nothing unsure.
    pub fn from_routes(routes: impl IntoIterator<Item = (IpNet, IpAddr, MacAddr)>) -> Vrf {
        let mut v = Vrf::default();
        for (p, vtep, rmac) in routes {
            let _ = v.add(p, vtep, rmac);
        }
        v
    }

    /// The write that makes `e` what the routes want now.
    fn want(&self, e: Entry) -> Write {
        match e {
            Entry::Rmac(rmac) => match self.rmac.get(&rmac).and_then(Refs::current) {
                Some(vtep) => Write::Fdb { rmac, vtep },
                None => Write::FdbDel { rmac },
            },
            Entry::Nh(gw) => match self.nh.get(&gw).and_then(Refs::current) {
                Some(rmac) => Write::Nh { gw, rmac },
                None => Write::NhDel { gw },
            },
        }
    }

    fn count(&mut self, prefix: &IpNet, vtep: IpAddr, rmac: MacAddr) -> [(Entry, bool); 2] {
        let gw = gateway(prefix, vtep);
        let f = self.rmac.entry(rmac).or_default().add(vtep);
        let n = self.nh.entry(gw).or_default().add(rmac);
        [(Entry::Rmac(rmac), f), (Entry::Nh(gw), n)]
    }

    fn uncount(&mut self, prefix: &IpNet, vtep: IpAddr, rmac: MacAddr) -> [(Entry, bool); 2] {
        let gw = gateway(prefix, vtep);
        let mut f = false;
        if let Some(r) = self.rmac.get_mut(&rmac) {
            f = r.remove(vtep);
            if r.is_empty() {
                self.rmac.remove(&rmac);
            }
        }
        let mut n = false;
        if let Some(r) = self.nh.get_mut(&gw) {
            n = r.remove(rmac);
            if r.is_empty() {
                self.nh.remove(&gw);
            }
        }
        [(Entry::Rmac(rmac), f), (Entry::Nh(gw), n)]
    }

    /// Entries this op must write again: the ones its prefix's last op left unsure.
    fn retouched(&mut self, prefix: &IpNet) -> SmallVec<[Entry; 2]> {
        let mut out: SmallVec<[Entry; 2]> = self.retouch.remove(prefix).unwrap_or_default();
        out.retain(|e| self.unsure.contains(e));
        out
    }

    /// The writes of `Route { prefix, vtep, rmac }`, in the order they must happen: shared
    /// entries first (the route's next hop resolves at once), the route (one replace: a move
    /// has no gap), then what the route's old next hop no longer needs.
    pub fn add(&mut self, prefix: IpNet, vtep: IpAddr, rmac: MacAddr) -> Vec<Write> {
        let mut out = Vec::with_capacity(3);
        let mut touched: SmallVec<[Entry; 4]> = self.retouched(&prefix).into_iter().collect();
        let old = self.routes.insert(prefix, (vtep, rmac));
        if old != Some((vtep, rmac)) {
            for (e, changed) in self.count(&prefix, vtep, rmac) {
                if changed {
                    touched.push(e);
                }
            }
        }
        // an entry this route needs whose last write failed is written again
        let gw = gateway(&prefix, vtep);
        for e in [Entry::Rmac(rmac), Entry::Nh(gw)] {
            if self.unsure.contains(&e) {
                touched.push(e);
            }
        }
        push_wants(self, &mut out, &touched);
        out.push(Write::Route { prefix, gw });
        if let Some((ov, om)) = old
            && old != Some((vtep, rmac))
        {
            let gone: SmallVec<[Entry; 2]> = self
                .uncount(&prefix, ov, om)
                .into_iter()
                .filter(|&(e, changed)| changed && !touched.contains(&e))
                .map(|x| x.0)
                .collect();
            push_wants(self, &mut out, &gone);
        }
        out
    }

    /// The writes of `RouteDel { prefix }`: the route, then the shared entries it alone used.
    pub fn del(&mut self, prefix: IpNet) -> Vec<Write> {
        let mut touched: SmallVec<[Entry; 4]> = self.retouched(&prefix).into_iter().collect();
        let mut out = vec![Write::RouteDel { prefix }];
        if let Some((ov, om)) = self.routes.remove(&prefix) {
            for (e, changed) in self.uncount(&prefix, ov, om) {
                if changed {
                    touched.push(e);
                }
            }
        }
        push_wants(self, &mut out, &touched);
        out
    }

    /// After the writes of one op for `prefix` ran: `failed` are the ones the kernel refused.
    pub fn done(&mut self, prefix: IpNet, writes: &[Write], failed: &[bool]) {
        for (w, bad) in writes.iter().zip(failed) {
            let Some(e) = w.entry() else { continue };
            if *bad {
                self.unsure.insert(e);
                let r = self.retouch.entry(prefix).or_default();
                if !r.contains(&e) {
                    r.push(e);
                }
            } else {
                self.unsure.remove(&e);
            }
        }
        if self.unsure.is_empty() {
            self.retouch.clear();
        }
    }

    /// The shared entries the route to `prefix` needs that are unsure (after a batch: a route
    /// whose RMAC or neighbour write failed — in its own op or an earlier one — does not
    /// forward, so its op is reported failed and retried).
    pub fn missing(&self, prefix: &IpNet) -> Vec<Entry> {
        let Some(&(vtep, rmac)) = self.routes.get(prefix) else {
            return Vec::new();
        };
        [Entry::Rmac(rmac), Entry::Nh(gateway(prefix, vtep))]
            .into_iter()
            .filter(|e| self.unsure.contains(e))
            .collect()
    }

    /// What the routes want of every shared entry.
    pub fn wanted(&self) -> Wanted {
        let f = self
            .rmac
            .iter()
            .filter_map(|(m, r)| r.current().map(|v| (*m, v)))
            .collect();
        let n = self
            .nh
            .iter()
            .filter_map(|(g, r)| r.current().map(|m| (*g, m)))
            .collect();
        Wanted { rmacs: f, nhs: n }
    }

    /// Mark `e` unsure (a reconcile step for it failed).
    pub fn mark_unsure(&mut self, e: Entry) {
        self.unsure.insert(e);
    }
}

fn push_wants(v: &Vrf, out: &mut Vec<Write>, entries: &[Entry]) {
    let mut seen: SmallVec<[Entry; 4]> = SmallVec::new();
    for &e in entries {
        if !seen.contains(&e) {
            seen.push(e);
            out.push(v.want(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn mac(b: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0xee, b])
    }

    #[test]
    fn shared_entries_are_written_once_and_removed_with_their_last_route() {
        let mut v = Vrf::default();
        let (x, r) = (ip("10.0.0.2"), mac(1));
        assert_eq!(
            v.add(net("10.1.0.0/16"), x, r),
            vec![
                Write::Fdb { rmac: r, vtep: x },
                Write::Nh { gw: x, rmac: r },
                Write::Route {
                    prefix: net("10.1.0.0/16"),
                    gw: x
                },
            ]
        );
        // a second route to the same VTEP: only the route
        assert_eq!(
            v.add(net("10.2.0.1/32"), x, r),
            vec![Write::Route {
                prefix: net("10.2.0.1/32"),
                gw: x
            }]
        );
        // the same op again: idempotent, only the route (replace)
        assert_eq!(v.add(net("10.2.0.1/32"), x, r).len(), 1);
        // deleting one keeps the shared entries
        assert_eq!(
            v.del(net("10.1.0.0/16")),
            vec![Write::RouteDel {
                prefix: net("10.1.0.0/16")
            }]
        );
        // deleting the last removes them (after the route)
        assert_eq!(
            v.del(net("10.2.0.1/32")),
            vec![
                Write::RouteDel {
                    prefix: net("10.2.0.1/32")
                },
                Write::FdbDel { rmac: r },
                Write::NhDel { gw: x },
            ]
        );
        // deleting what is not there: only the (absent-is-success) route delete
        assert_eq!(v.del(net("10.2.0.1/32")).len(), 1);
        assert_eq!(v.wanted(), Wanted::default());
    }

    #[test]
    fn a_move_is_one_replace_then_the_old_vteps_entries_go() {
        let mut v = Vrf::default();
        let (x, y) = (ip("10.0.0.2"), ip("10.0.0.3"));
        let p = net("192.0.2.10/32");
        v.add(p, x, mac(1));
        assert_eq!(
            v.add(p, y, mac(2)),
            vec![
                Write::Fdb {
                    rmac: mac(2),
                    vtep: y
                },
                Write::Nh {
                    gw: y,
                    rmac: mac(2)
                },
                Write::Route { prefix: p, gw: y },
                Write::FdbDel { rmac: mac(1) },
                Write::NhDel { gw: x },
            ]
        );
    }

    #[test]
    fn an_rmac_change_replaces_the_neighbour_and_drops_the_old_rmac_with_its_last_route() {
        let mut v = Vrf::default();
        let x = ip("10.0.0.2");
        let (p1, p2) = (net("10.1.0.0/16"), net("10.2.0.0/16"));
        v.add(p1, x, mac(1));
        v.add(p2, x, mac(1));
        // the VTEP now advertises RMAC 2: the neighbour follows the first route carrying it
        assert_eq!(
            v.add(p1, x, mac(2)),
            vec![
                Write::Fdb {
                    rmac: mac(2),
                    vtep: x
                },
                Write::Nh {
                    gw: x,
                    rmac: mac(2)
                },
                Write::Route { prefix: p1, gw: x },
            ]
        );
        // the last route with RMAC 1 moves over: RMAC 1's FDB entry goes
        assert_eq!(
            v.add(p2, x, mac(2)),
            vec![
                Write::Route { prefix: p2, gw: x },
                Write::FdbDel { rmac: mac(1) },
            ]
        );
        assert_eq!(
            v.wanted(),
            Wanted {
                rmacs: vec![(mac(2), x)],
                nhs: vec![(x, mac(2))]
            }
        );
    }

    #[test]
    fn ipv6_prefixes_behind_an_ipv4_vtep_use_the_mapped_next_hop() {
        let mut v = Vrf::default();
        let x = ip("10.0.0.2");
        let w = v.add(net("2001:db8:1::/48"), x, mac(1));
        let mapped = ip("::ffff:10.0.0.2");
        assert_eq!(
            w,
            vec![
                Write::Fdb {
                    rmac: mac(1),
                    vtep: x
                },
                Write::Nh {
                    gw: mapped,
                    rmac: mac(1)
                },
                Write::Route {
                    prefix: net("2001:db8:1::/48"),
                    gw: mapped
                },
            ]
        );
        // an IPv4 route to the same VTEP shares the RMAC entry, not the neighbour
        assert_eq!(
            v.add(net("10.9.0.0/16"), x, mac(1)),
            vec![
                Write::Nh {
                    gw: x,
                    rmac: mac(1)
                },
                Write::Route {
                    prefix: net("10.9.0.0/16"),
                    gw: x
                },
            ]
        );
    }

    #[test]
    fn a_failed_shared_write_is_rewritten_by_the_next_op_that_touches_it() {
        let mut v = Vrf::default();
        let x = ip("10.0.0.2");
        let (p1, p2) = (net("10.1.0.0/16"), net("10.2.0.0/16"));
        let w1 = v.add(p1, x, mac(1));
        let w2 = v.add(p2, x, mac(1));
        // the FDB write of op 1 failed; op 2 wrote only its route
        v.done(p1, &w1, &[true, false, false]);
        v.done(p2, &w2, &[false]);
        assert_eq!(v.missing(&p2), vec![Entry::Rmac(mac(1))]);
        // p1 is withdrawn before its retry: the entry is still wanted by p2, so the delete
        // writes it again as wanted now
        let w = v.del(p1);
        assert_eq!(
            w,
            vec![
                Write::RouteDel { prefix: p1 },
                Write::Fdb {
                    rmac: mac(1),
                    vtep: x
                },
            ]
        );
        v.done(p1, &w, &[false, false]);
        assert!(v.missing(&p2).is_empty());
        // had it failed again, p2's retry would write it
        v.done(p1, &w, &[false, true]);
        assert_eq!(
            v.add(p2, x, mac(1)),
            vec![
                Write::Fdb {
                    rmac: mac(1),
                    vtep: x
                },
                Write::Route { prefix: p2, gw: x },
            ]
        );
        let w = [
            Write::Fdb {
                rmac: mac(1),
                vtep: x,
            },
            Write::Route { prefix: p2, gw: x },
        ];
        v.done(p2, &w, &[false, false]);
        assert!(v.missing(&p2).is_empty());
        // a failed delete of a shared entry is retried as a delete by the prefix's next op
        let w = v.del(p2);
        assert_eq!(w.len(), 3);
        v.done(p2, &w, &[false, true, false]);
        assert_eq!(
            v.del(p2),
            vec![
                Write::RouteDel { prefix: p2 },
                Write::FdbDel { rmac: mac(1) }
            ]
        );
    }

    #[test]
    fn refs_keep_the_latest_value_current() {
        let mut r: Refs<u8> = Refs::default();
        assert!(r.add(1));
        assert!(!r.add(1));
        assert!(r.add(2));
        assert_eq!(r.current(), Some(2));
        assert!(r.remove(2));
        assert_eq!(r.current(), Some(1));
        assert!(!r.remove(1)); // one of two left
        assert!(r.remove(1));
        assert!(r.is_empty());
        assert!(!r.remove(7));
    }
}
