//! The in-memory dataplane: the tables a kernel would hold, as maps. Used by tests, the
//! examples, `vmmi demo` and `[dataplane] kind = "memory"`.
//!
//! Owns: its four tables and a queue of injected learn events.
//! Must not: fail — every op succeeds, as the idempotence rules in `dataplane` say.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::{
    Batch, BridgeSide, Dataplane, DataplaneOp, LearnEvent, LookupError, MacEntry, OpError,
    ReconcileReport,
};
use crate::wire::types::MacAddr;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// (vni, mac) → (vtep, sticky)
    pub fdb: BTreeMap<(u32, MacAddr), (IpAddr, bool)>,
    pub flood: BTreeSet<(u32, IpAddr)>,
    pub neigh: BTreeMap<(u32, IpAddr), MacAddr>,
    pub routes: BTreeMap<(u32, IpNet), (IpAddr, Option<MacAddr>)>,
    /// Ops applied so far.
    pub applied: u64,
    /// Every op applied, in order, when set to `Some` (tests: "was this entry ever deleted?").
    #[serde(skip)]
    pub record: Option<Vec<DataplaneOp>>,
    #[serde(skip)]
    events: VecDeque<LearnEvent>,
}

impl Memory {
    pub fn new() -> Memory {
        Memory::default()
    }

    /// Apply one op (never fails).
    pub fn apply_op(&mut self, op: &DataplaneOp) {
        self.applied += 1;
        if let Some(r) = &mut self.record {
            r.push(op.clone());
        }
        match *op {
            DataplaneOp::Fdb {
                vni,
                mac,
                vtep,
                sticky,
            } => {
                self.fdb.insert((vni, mac), (vtep, sticky));
            }
            DataplaneOp::FdbDel { vni, mac } => {
                self.fdb.remove(&(vni, mac));
            }
            DataplaneOp::Flood { vni, vtep } => {
                self.flood.insert((vni, vtep));
            }
            DataplaneOp::FloodDel { vni, vtep } => {
                self.flood.remove(&(vni, vtep));
            }
            DataplaneOp::Neigh { vni, ip, mac } => {
                self.neigh.insert((vni, ip), mac);
            }
            DataplaneOp::NeighDel { vni, ip } => {
                self.neigh.remove(&(vni, ip));
            }
            DataplaneOp::Route {
                vni,
                prefix,
                vtep,
                rmac,
            } => {
                self.routes.insert((vni, prefix), (vtep, rmac));
            }
            DataplaneOp::RouteDel { vni, prefix } => {
                self.routes.remove(&(vni, prefix));
            }
        }
    }

    pub fn apply_now(&mut self, ops: &[DataplaneOp]) {
        for op in ops {
            self.apply_op(op);
        }
    }

    /// Queue a learn event, as a kernel bridge would report one.
    pub fn inject(&mut self, e: LearnEvent) {
        self.events.push_back(e);
    }

    /// Make the tables hold exactly the adds in `desired` (everything in memory is owned).
    pub fn reconcile_now(&mut self, desired: &[DataplaneOp]) -> ReconcileReport {
        let mut want = Memory::new();
        for op in desired {
            if matches!(
                op,
                DataplaneOp::Fdb { .. }
                    | DataplaneOp::Flood { .. }
                    | DataplaneOp::Neigh { .. }
                    | DataplaneOp::Route { .. }
            ) {
                want.apply_op(op);
            }
        }
        let mut r = ReconcileReport::default();
        fn diff<K: Ord, V: PartialEq>(
            r: &mut ReconcileReport,
            have: &BTreeMap<K, V>,
            want: &BTreeMap<K, V>,
        ) {
            for (k, v) in want {
                match have.get(k) {
                    Some(h) if h == v => r.adopted += 1,
                    Some(_) => r.fixed += 1,
                    None => r.added += 1,
                }
            }
            r.removed += have.keys().filter(|k| !want.contains_key(k)).count();
        }
        diff(&mut r, &self.fdb, &want.fdb);
        diff(&mut r, &self.neigh, &want.neigh);
        diff(&mut r, &self.routes, &want.routes);
        r.adopted += self.flood.intersection(&want.flood).count();
        r.added += want.flood.difference(&self.flood).count();
        r.removed += self.flood.difference(&want.flood).count();
        self.applied += (r.fixed + r.added + r.removed) as u64;
        self.fdb = want.fdb;
        self.flood = want.flood;
        self.neigh = want.neigh;
        self.routes = want.routes;
        r
    }

    /// Where the FDB points `mac` of `vni`.
    pub fn vtep_of(&self, vni: u32, mac: MacAddr) -> Option<IpAddr> {
        self.fdb.get(&(vni, mac)).map(|e| e.0)
    }

    /// What the FDB holds for `mac` of `vni`, as a kernel would show vmmi's entry: a remote
    /// MAC is one entry here (the VXLAN side and the bridge side at once), written by the
    /// control plane (`extern_learn`), `static` and `sticky` when sticky. Local MACs are not
    /// in these tables (they are the EVPN layer's): a MAC without a remote entry is absent.
    pub fn entry(&self, vni: u32, mac: MacAddr) -> MacEntry {
        match self.fdb.get(&(vni, mac)) {
            Some(&(vtep, sticky)) => MacEntry {
                vtep: Some(vtep),
                extern_learn: true,
                is_static: sticky,
                sticky,
                bridge: BridgeSide::Vxlan,
                ..MacEntry::default()
            },
            None => MacEntry::default(),
        }
    }
}

impl Dataplane for Memory {
    async fn apply(&mut self, batch: &Batch) -> Vec<OpError> {
        self.apply_now(&batch.ops);
        Vec::new()
    }

    fn drain_events(&mut self) -> Vec<LearnEvent> {
        self.events.drain(..).collect()
    }

    async fn reconcile(&mut self, desired: &[DataplaneOp]) -> ReconcileReport {
        self.reconcile_now(desired)
    }

    async fn lookup(&mut self, vni: u32, mac: MacAddr) -> Result<MacEntry, LookupError> {
        Ok(self.entry(vni, mac))
    }

    /// Ready at once when events are queued; otherwise never (only `inject` queues them, and
    /// the caller that injects also drains).
    fn events_ready(&self) -> impl std::future::Future<Output = ()> + Send {
        let ready = !self.events.is_empty();
        async move {
            if !ready {
                std::future::pending::<()>().await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ops_are_idempotent_and_fdb_replaces() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let mut m = Memory::new();
        let add = |vtep| DataplaneOp::Fdb {
            vni: 100,
            mac,
            vtep: ip(vtep),
            sticky: false,
        };
        m.apply_now(&[add("10.0.0.1"), add("10.0.0.1")]);
        assert_eq!(m.vtep_of(100, mac), Some(ip("10.0.0.1")));
        // a move is one replace: the entry is never absent in between
        m.apply_now(&[add("10.0.0.2")]);
        assert_eq!(m.vtep_of(100, mac), Some(ip("10.0.0.2")));
        assert_eq!(m.fdb.len(), 1);
        let e = m.entry(100, mac);
        assert_eq!(
            (e.vtep, e.bridge, e.extern_learn, e.sticky),
            (Some(ip("10.0.0.2")), BridgeSide::Vxlan, true, false)
        );
        assert_eq!(m.entry(101, mac), MacEntry::default(), "per VNI");
        m.apply_now(&[
            DataplaneOp::FdbDel { vni: 100, mac },
            DataplaneOp::FdbDel { vni: 100, mac },
        ]);
        assert!(m.fdb.is_empty());
        // flood lists: per-VTEP append/delete
        m.apply_now(&[
            DataplaneOp::Flood {
                vni: 100,
                vtep: ip("10.0.0.1"),
            },
            DataplaneOp::Flood {
                vni: 100,
                vtep: ip("10.0.0.2"),
            },
            DataplaneOp::FloodDel {
                vni: 100,
                vtep: ip("10.0.0.1"),
            },
        ]);
        assert_eq!(
            m.flood.iter().collect::<Vec<_>>(),
            vec![&(100, ip("10.0.0.2"))]
        );
        assert_eq!(m.applied, 8);
    }

    #[test]
    fn reconcile_makes_the_tables_exactly_desired() {
        let mac = |b| MacAddr([2, 0, 0, 0, 0, b]);
        let mut m = Memory::new();
        m.apply_now(&[
            DataplaneOp::Fdb {
                vni: 1,
                mac: mac(1),
                vtep: ip("10.0.0.1"),
                sticky: false,
            },
            DataplaneOp::Fdb {
                vni: 1,
                mac: mac(2),
                vtep: ip("10.0.0.1"),
                sticky: false,
            },
            DataplaneOp::Fdb {
                vni: 1,
                mac: mac(3),
                vtep: ip("10.0.0.1"),
                sticky: false,
            },
            DataplaneOp::Flood {
                vni: 1,
                vtep: ip("10.0.0.1"),
            },
        ]);
        let r = m.reconcile_now(&[
            DataplaneOp::Fdb {
                vni: 1,
                mac: mac(1),
                vtep: ip("10.0.0.1"),
                sticky: false,
            },
            DataplaneOp::Fdb {
                vni: 1,
                mac: mac(2),
                vtep: ip("10.0.0.2"),
                sticky: false,
            },
            DataplaneOp::Fdb {
                vni: 1,
                mac: mac(4),
                vtep: ip("10.0.0.2"),
                sticky: false,
            },
            DataplaneOp::Flood {
                vni: 1,
                vtep: ip("10.0.0.2"),
            },
            DataplaneOp::FdbDel {
                vni: 1,
                mac: mac(1),
            },
        ]);
        assert_eq!((r.adopted, r.fixed, r.added, r.removed), (1, 1, 2, 2));
        assert_eq!(m.vtep_of(1, mac(2)), Some(ip("10.0.0.2")));
        assert_eq!(m.vtep_of(1, mac(3)), None);
        assert_eq!(m.flood.len(), 1);
    }
}
