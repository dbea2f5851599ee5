//! A configuration reload (SIGHUP) of the EVPN layer: VNIs added, removed or changed, and the
//! duplicate-detection settings — without touching the VNIs that did not change.
//!
//! Owns: deciding which VNIs a reload affects, taking back what an affected VNI originated
//! and forwarded under its old configuration, and re-deriving it under the new one.
//! Must not: touch devices (the runtime configures the dataplane's devices before the ops of
//! a new VNI and after the deletes of a removed one) or the speaker (routes leave as
//! `Output::Announce/Withdraw` like every other change).
//!
//! What an operator sees, VNI by VNI:
//! - **added**: its type 3 / gateway / type 5 routes are originated, and every EVPN route
//!   already in the RIB is imported into it by Route Target — as if it had been configured at
//!   start.
//! - **removed**: our routes for it are withdrawn, its FDB, flood-list, suppression and VRF
//!   entries are deleted from the dataplane, its EIDs leave the LISP mapping feed; its local
//!   MACs are forgotten (a VNI that comes back learns them again; the MAC Mobility sequences
//!   in the state file are kept by the next save only for configured VNIs).
//! - **changed** (RD, RTs, gateway, prefixes, `l3_vni`, Router's MAC): our routes are advertised
//!   under the new configuration with the same MAC Mobility sequences (RFC 7432 §15.1: the
//!   same location is not a move) and those of the old one that were not replaced in place
//!   (a new RD is a new route key) are withdrawn; every route in the RIB is imported again
//!   under the new Route Targets. Local MACs, their sequences and DAD state are kept. A peer
//!   gets the withdrawals of an old RD in the UPDATE before the new routes (the speaker's
//!   packing order), so its forwarding entry for a MAC may be rewritten once. Symmetric IRB
//!   ties an L2 VNI to its L3 VNI (Label2, the L3 RT and Router's MAC ride on the L2 VNI's
//!   MAC+IP routes; the L2 VNIs' gateway subnets are the L3 VNI's type 5 routes), so a
//!   change to either side re-derives both.
//! - the DAD settings apply from the next move on; a MAC frozen now stays frozen until its
//!   old timer or `vmmi dad clear`.

use std::collections::BTreeSet;
use std::time::Instant;

use super::origin::MacRouteOpts;
use super::{Adv, Evpn, EvpnCfg, ImportIndex, Mapping, Output, origin, vni};
use crate::dataplane::DataplaneOp;
use crate::rib::Rib;
use crate::rib::key::{RouteKey, split_evpn};
use crate::wire::bgp::afi::Family;
use crate::wire::types::MacAddr;

impl Evpn {
    /// Apply a reloaded configuration (`cfg.asn`, `router_id` and `vtep` must be the running
    /// ones: they need a restart). Returns the VNIs whose configuration changed (added,
    /// removed or changed), sorted.
    pub fn reconfigure(&mut self, now: Instant, cfg: &EvpnCfg, rib: &Rib) -> Vec<u32> {
        self.dad = cfg.dad;
        let new = vni::resolve(&cfg.vnis, cfg.asn, cfg.router_id, None);
        let mut affected: BTreeSet<u32> = self
            .vnis
            .iter()
            .filter(|(n, v)| new.get(n) != Some(v))
            .map(|(n, _)| *n)
            .chain(new.keys().filter(|n| !self.vnis.contains_key(n)).copied())
            .collect();
        let changed: Vec<u32> = affected.iter().copied().collect();
        // symmetric IRB links, old and new, both ways, until nothing more is pulled in
        loop {
            let before = affected.len();
            for v in self.vnis.values().chain(new.values()) {
                if let Some(l3) = v.l3_vni
                    && (affected.contains(&l3) || affected.contains(&v.vni))
                {
                    affected.insert(l3);
                    affected.insert(v.vni);
                }
            }
            if affected.len() == before {
                break;
            }
        }
        if affected.is_empty() {
            return changed;
        }

        // 1. what the affected VNIs originated, under their old configuration (withdrawn at
        //    the end, after the new routes: make before break)
        let mut frozen = Vec::new();
        let mut old_nlri = Vec::new();
        for n in &affected {
            frozen.extend(self.withdraw_origin(*n, &mut old_nlri));
        }
        // 2. removed VNIs (and one that changed kind): their forwarding entries and their
        //    EIDs in the mapping feed
        let gone: Vec<u32> = affected
            .iter()
            .filter(|n| new.get(n).map(|v| v.l3) != self.vnis.get(n).map(|v| v.l3))
            .copied()
            .collect();
        for n in gone {
            self.drop_vni(n);
        }

        // 3. the new configuration
        self.vnis = new;
        self.index = ImportIndex::new(&self.vnis);
        for v in self.vnis.values() {
            if v.l3 {
                self.l3.entry(v.vni).or_default();
            } else {
                self.l2.entry(v.vni).or_default();
            }
        }
        // a VNI that changed kind (l2 <-> l3) keeps no table of the other kind
        let vnis = &self.vnis;
        self.l2.retain(|n, _| vnis.get(n).is_some_and(|v| !v.l3));
        self.l3.retain(|n, _| vnis.get(n).is_some_and(|v| v.l3));

        // 4. originate again; local MACs re-advertise through `settle` (their `adv` is gone),
        //    except frozen ones: RFC 7432 §15.1 "stop sending" keeps what was advertised as it
        //    was, so it is advertised again as it was, under the new RD and RTs
        for (n, mac, a) in frozen {
            let (Some(v), Some(st)) = (
                self.vnis.get(&n),
                self.l2.get_mut(&n).and_then(|t| t.macs.get_mut(&mac)),
            ) else {
                continue;
            };
            let l3 = v.l3_vni.and_then(|x| self.vnis.get(&x));
            let o = MacRouteOpts {
                seq: a.seq,
                sticky: a.sticky,
                mobility: a.moved,
                default_gateway: false,
            };
            let ips = std::iter::once(None).chain(a.ips.iter().map(|i| Some(*i)));
            let routes: Vec<_> = ips
                .map(|ip| origin::mac_ip(v, l3, mac, ip, o, self.vtep))
                .collect();
            st.adv = Some(a);
            self.out.extend(routes.into_iter().map(Output::Announce));
        }
        for n in &affected {
            self.originate_vni(*n);
            if let Some(t) = self.l2.get(n) {
                let macs: Vec<_> = t.macs.keys().copied().collect();
                self.dirty.extend(macs.into_iter().map(|m| (*n, m)));
            }
            if let Some(t) = self.l3.get(n) {
                let ps: Vec<_> = t
                    .prefixes
                    .keys()
                    .chain(t.installed.keys())
                    .copied()
                    .collect();
                self.dirty_prefixes.extend(ps.into_iter().map(|p| (*n, p)));
            }
        }

        // 5. import every EVPN route again under the new Route Targets (keys whose result is
        //    unchanged settle to no change)
        self.import_all(now, rib);

        // 6. the old routes that were not advertised again under the same key (same RD: the
        //    announcement replaces them; labels are not part of the key)
        let key = |nlri: &[u8]| split_evpn(nlri).0;
        let again: std::collections::HashSet<RouteKey> = self
            .out
            .iter()
            .filter_map(|o| match o {
                Output::Announce(b) => Some(key(&b.nlri)),
                _ => None,
            })
            .collect();
        let withdraw: Vec<Output> = old_nlri
            .into_iter()
            .filter(|n| !again.contains(&key(n)))
            .map(|nlri| Output::Withdraw {
                family: Family::L2VPN_EVPN,
                nlri,
            })
            .collect();
        self.out.extend(withdraw);
        changed
    }

    /// Import every EVPN route of `rib` again (a reload, or a layer started while the
    /// sessions were already up): what each key imports is recomputed from scratch.
    pub fn import_all(&mut self, now: Instant, rib: &Rib) {
        let mut keys: Vec<_> = rib
            .table(Family::L2VPN_EVPN)
            .map(|t| t.map.keys().cloned().collect())
            .unwrap_or_default();
        // imported keys the RIB no longer has a best path for (none in a consistent state)
        keys.extend(
            self.imported
                .keys()
                .filter(|k| rib.best(Family::L2VPN_EVPN, k).is_none())
                .cloned(),
        );
        self.handle_rib(now, rib, &keys);
    }

    /// The NLRIs of everything VNI `n` advertises under its current configuration (the
    /// routes of `originate_vni` and of its local MACs), appended to `nlri`; the MACs' `adv`
    /// is cleared so `settle` advertises them again under the new one. Returns the frozen
    /// MACs' advertisements, which `settle` would not make again.
    fn withdraw_origin(&mut self, n: u32, nlri: &mut Vec<Vec<u8>>) -> Vec<(u32, MacAddr, Adv)> {
        let mut frozen = Vec::new();
        let Some(v) = self.vnis.get(&n) else {
            return frozen;
        };
        let vtep = self.vtep;
        let mut routes = Vec::new();
        if v.l3 {
            if let Some(t) = self.l3.get_mut(&n) {
                for p in std::mem::take(&mut t.own) {
                    routes.push(origin::prefix_route(v, p));
                }
            }
        } else {
            routes.push(origin::multicast_route(v, vtep));
            let l3 = v.l3_vni.and_then(|x| self.vnis.get(&x));
            if let Some((g, gmac)) = v.gateway {
                routes.push(origin::mac_ip_route(v, gmac, Some(g.addr()), l3));
            }
            if let Some(t) = self.l2.get_mut(&n) {
                for (mac, st) in t.macs.iter_mut() {
                    if let Some(a) = st.adv.take() {
                        routes.push(origin::mac_ip_route(v, *mac, None, l3));
                        for ip in &a.ips {
                            routes.push(origin::mac_ip_route(v, *mac, Some(*ip), l3));
                        }
                        if st.dad.frozen() {
                            frozen.push((n, *mac, a));
                        }
                    }
                }
            }
        }
        nlri.extend(routes.iter().map(origin::nlri_of));
        frozen
    }

    /// VNI `n` is no longer configured: delete its dataplane entries, take its EIDs out of
    /// the mapping feed, forget its MACs and their pending DAD timers.
    fn drop_vni(&mut self, n: u32) {
        if let Some(t) = self.l2.remove(&n) {
            for (mac, st) in &t.macs {
                if st.fdb.is_some() {
                    self.ops.push(DataplaneOp::FdbDel { vni: n, mac: *mac });
                }
                if let Some(m) = st.mapped.as_deref() {
                    let gone = |ip| {
                        Output::Mapping(Mapping {
                            vni: n,
                            mac: *mac,
                            ip,
                            rloc: None,
                            version: m.1,
                            local: false,
                        })
                    };
                    self.out.push_back(gone(None));
                    self.out.extend(m.2.iter().map(|ip| gone(Some(*ip))));
                }
            }
            for ip in t.neigh.keys() {
                self.ops.push(DataplaneOp::NeighDel { vni: n, ip: *ip });
            }
            for vtep in &t.flood_on {
                self.ops.push(DataplaneOp::FloodDel {
                    vni: n,
                    vtep: *vtep,
                });
            }
        }
        if let Some(t) = self.l3.remove(&n) {
            for p in t.installed.keys() {
                self.ops.push(DataplaneOp::RouteDel { vni: n, prefix: *p });
            }
        }
        self.thaw.retain(|(_, v, _)| *v != n);
        self.dirty.retain(|(v, _)| *v != n);
        self.dirty_prefixes.retain(|(v, _)| *v != n);
        self.dirty_floods.retain(|(v, _)| *v != n);
    }
}
