//! RIB and best-path properties: antisymmetry of the comparator, insertion-order independence
//! of selection and of the RIB's best path, and the step each case is decided by.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use proptest::prelude::*;

use super::best::{Candidate, Reason, compare, select, seq_cmp};
use super::*;
use crate::wire::bgp::attr::{AsSegment, AttrValue, MpNextHop, PathAttr, code, segment};
use crate::wire::bgp::extcomm::ExtCommunity;

#[derive(Clone, Debug)]
struct Spec {
    lp: Option<u32>,
    as_path: Vec<u32>,
    origin: u8,
    med: Option<u32>,
    mm: Option<(u32, bool)>,
    nh: u8,
    cluster: u8,
    originator: Option<u8>,
    peer: u32,
    ebgp: bool,
    bgp_id: u8,
    path_id: u32,
}

fn attrs(s: &Spec) -> Attrs {
    let mut v = vec![PathAttr::new(code::ORIGIN, AttrValue::Origin(s.origin))];
    v.push(PathAttr::new(
        code::AS_PATH,
        AttrValue::AsPath(vec![AsSegment {
            seg_type: segment::AS_SEQUENCE,
            asns: s.as_path.clone(),
        }]),
    ));
    if let Some(m) = s.med {
        v.push(PathAttr::new(code::MED, AttrValue::Med(m)));
    }
    if let Some(l) = s.lp {
        v.push(PathAttr::new(code::LOCAL_PREF, AttrValue::LocalPref(l)));
    }
    if let Some(o) = s.originator {
        v.push(PathAttr::new(
            code::ORIGINATOR_ID,
            AttrValue::OriginatorId(Ipv4Addr::new(10, 9, 9, o)),
        ));
    }
    if s.cluster > 0 {
        v.push(PathAttr::new(
            code::CLUSTER_LIST,
            AttrValue::ClusterList(vec![Ipv4Addr::new(1, 1, 1, 1); usize::from(s.cluster)]),
        ));
    }
    if let Some((seq, sticky)) = s.mm {
        v.push(PathAttr::new(
            code::EXTENDED_COMMUNITIES,
            AttrValue::ExtCommunities(vec![ExtCommunity::mac_mobility_seq(seq, sticky)]),
        ));
    }
    Attrs::derive(v, Some(MpNextHop::Ipv4(Ipv4Addr::new(192, 0, 2, s.nh))))
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        (
            prop::option::of(prop::sample::select(vec![90u32, 100, 200])),
            prop::collection::vec(prop::sample::select(vec![65001u32, 65002, 65003]), 0..3),
            0u8..3,
            prop::option::of(0u32..3),
        ),
        (
            prop::option::of((
                prop::sample::select(vec![0u32, 1, 2, u32::MAX, u32::MAX - 1]),
                any::<bool>(),
            )),
            1u8..4,
            0u8..2,
            prop::option::of(1u8..3),
        ),
        (0u32..4, any::<bool>(), 1u8..4, 0u32..2),
    )
        .prop_map(
            |(
                (lp, as_path, origin, med),
                (mm, nh, cluster, originator),
                (peer, ebgp, bgp_id, path_id),
            )| Spec {
                lp,
                as_path,
                origin,
                med,
                mm,
                nh,
                cluster,
                originator,
                peer,
                ebgp,
                bgp_id,
                path_id,
            },
        )
}

fn cands<'a>(specs: &[Spec], a: &'a [Attrs]) -> Vec<Candidate<'a>> {
    specs
        .iter()
        .zip(a)
        .map(|(s, a)| Candidate {
            attrs: a,
            local: s.peer == 0,
            ebgp: s.ebgp,
            peer_bgp_id: Ipv4Addr::new(10, 0, 0, s.bgp_id),
            peer_addr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, s.peer as u8)),
            peer_num: s.peer,
            path_id: s.path_id,
        })
        .collect()
}

/// Distinct (peer, path id) pairs, as in a real RIB entry.
fn distinct(v: Vec<Spec>) -> Vec<Spec> {
    let mut seen = std::collections::HashSet::new();
    v.into_iter()
        .filter(|s| seen.insert((s.peer, s.path_id)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn comparator_is_antisymmetric(a in spec(), b in spec()) {
        let at = [attrs(&a), attrs(&b)];
        let c = cands(&[a.clone(), b.clone()], &at);
        let (ab, r1) = compare(&c[0], &c[1]);
        let (ba, r2) = compare(&c[1], &c[0]);
        prop_assert_eq!(ab, ba.reverse());
        prop_assert_eq!(r1, r2);
        // two candidates: selection agrees with the comparator
        if (a.peer, a.path_id) != (b.peer, b.path_id) {
            let (i, _) = select(&c).unwrap();
            prop_assert_eq!(i == 0, ab == std::cmp::Ordering::Less);
        }
    }

    #[test]
    fn selection_does_not_depend_on_order(v in prop::collection::vec(spec(), 1..7), rot in 0usize..7, rev in any::<bool>()) {
        let v = distinct(v);
        let at: Vec<Attrs> = v.iter().map(attrs).collect();
        let c = cands(&v, &at);
        let (i, _) = select(&c).unwrap();
        let winner = (v[i].peer, v[i].path_id);
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.rotate_left(rot % v.len());
        if rev { order.reverse(); }
        let v2: Vec<Spec> = order.iter().map(|&k| v[k].clone()).collect();
        let at2: Vec<Attrs> = v2.iter().map(attrs).collect();
        let c2 = cands(&v2, &at2);
        let (j, _) = select(&c2).unwrap();
        prop_assert_eq!(winner, (v2[j].peer, v2[j].path_id));
    }

    #[test]
    fn rib_best_does_not_depend_on_arrival_order(v in prop::collection::vec(spec(), 1..6), rev in any::<bool>()) {
        let v: Vec<Spec> = distinct(v).into_iter().filter(|s| s.peer != 0).collect();
        prop_assume!(!v.is_empty());
        let run = |order: Vec<&Spec>| {
            let mut rib = Rib::default();
            for s in &v {
                rib.set_peer(PeerId(s.peer), PeerMeta {
                    addr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, s.peer as u8)),
                    bgp_id: Ipv4Addr::new(10, 0, 0, s.bgp_id),
                    ebgp: s.ebgp,
                });
            }
            let key = RouteKey::new(&[24, 10, 0, 0]);
            for s in order {
                let a = rib.intern(attrs(s));
                rib.announce(Family::IPV4_UNICAST, key.clone(), PeerId(s.peer), s.path_id, a, NlriRest::default());
            }
            let b = rib.best(Family::IPV4_UNICAST, &key).unwrap();
            (b.peer, b.path_id)
        };
        let fwd = run(v.iter().collect());
        let back = run(if rev { v.iter().rev().collect() } else { v.iter().collect() });
        // the peer meta may disagree for duplicate peers with different ebgp/bgp_id: last wins,
        // same in both runs
        prop_assert_eq!(fwd, back);
    }
}

fn one(s: Spec) -> (Spec, Attrs) {
    let a = attrs(&s);
    (s, a)
}

fn base() -> Spec {
    Spec {
        lp: None,
        as_path: vec![65001],
        origin: 0,
        med: None,
        mm: None,
        nh: 1,
        cluster: 0,
        originator: None,
        peer: 1,
        ebgp: true,
        bgp_id: 1,
        path_id: 0,
    }
}

fn decide(a: Spec, b: Spec) -> (std::cmp::Ordering, Reason) {
    let (a, aa) = one(a);
    let (b, ba) = one(b);
    let at = [aa, ba];
    let c = cands(&[a, b], &at);
    compare(&c[0], &c[1])
}

#[test]
fn each_step_decides_its_case() {
    use std::cmp::Ordering::Less;
    let b2 = Spec {
        peer: 2,
        bgp_id: 2,
        nh: 2,
        ..base()
    };
    assert_eq!(
        decide(
            Spec {
                mm: Some((1, true)),
                ..base()
            },
            Spec {
                mm: Some((9, false)),
                ..b2.clone()
            }
        ),
        (Less, Reason::Sticky)
    );
    assert_eq!(
        decide(
            Spec {
                mm: Some((5, false)),
                ..base()
            },
            Spec {
                mm: Some((4, false)),
                ..b2.clone()
            }
        ),
        (Less, Reason::MacMobilitySeq)
    );
    // wraparound: 0 is newer than 4294967295
    assert_eq!(
        decide(
            Spec {
                mm: Some((0, false)),
                ..base()
            },
            Spec {
                mm: Some((u32::MAX, false)),
                ..b2.clone()
            }
        ),
        (Less, Reason::MacMobilitySeq)
    );
    assert_eq!(
        decide(
            Spec {
                mm: Some((3, false)),
                nh: 1,
                ..base()
            },
            Spec {
                mm: Some((3, false)),
                nh: 2,
                ..b2.clone()
            }
        ),
        (Less, Reason::MacMobilityLowerIp)
    );
    assert_eq!(
        decide(
            Spec {
                lp: Some(200),
                ..base()
            },
            b2.clone()
        ),
        (Less, Reason::LocalPref)
    );
    assert_eq!(
        decide(Spec { peer: 0, ..base() }, b2.clone()),
        (Less, Reason::Local)
    );
    assert_eq!(
        decide(
            base(),
            Spec {
                as_path: vec![65002, 65003],
                ..b2.clone()
            }
        ),
        (Less, Reason::AsPathLen)
    );
    assert_eq!(
        decide(
            base(),
            Spec {
                origin: 2,
                ..b2.clone()
            }
        ),
        (Less, Reason::Origin)
    );
    assert_eq!(
        decide(
            Spec {
                med: Some(1),
                ..base()
            },
            Spec {
                med: Some(5),
                ..b2.clone()
            }
        ),
        (Less, Reason::Med)
    );
    assert_eq!(
        decide(
            base(),
            Spec {
                ebgp: false,
                ..b2.clone()
            }
        ),
        (Less, Reason::Ebgp)
    );
    assert_eq!(
        decide(
            Spec {
                ebgp: false,
                ..base()
            },
            Spec {
                ebgp: false,
                cluster: 1,
                ..b2.clone()
            }
        ),
        (Less, Reason::ClusterListLen)
    );
    assert_eq!(decide(base(), b2.clone()), (Less, Reason::RouterId));
    assert_eq!(
        decide(base(), Spec { peer: 2, ..base() }),
        (Less, Reason::PeerAddr)
    );
    assert_eq!(
        decide(
            base(),
            Spec {
                path_id: 1,
                ..base()
            }
        ),
        (Less, Reason::PathId)
    );
    // MED is not compared across neighbor ASes
    assert_eq!(
        decide(
            Spec {
                med: Some(9),
                ..base()
            },
            Spec {
                med: Some(1),
                as_path: vec![65002],
                ..b2
            }
        )
        .1,
        Reason::RouterId
    );
}

#[test]
fn serial_arithmetic() {
    use std::cmp::Ordering::*;
    assert_eq!(seq_cmp(1, 0), Greater);
    assert_eq!(seq_cmp(0, u32::MAX), Greater);
    assert_eq!(seq_cmp(u32::MAX, 0), Less);
    assert_eq!(seq_cmp(5, 5), Equal);
    // exactly half the range apart: numeric order, still antisymmetric
    assert_eq!(seq_cmp(1 << 31, 0), Greater);
    assert_eq!(seq_cmp(0, 1 << 31), Less);
}

#[test]
fn stale_mark_keeps_best_and_sweep_removes_only_stale() {
    let mut rib = Rib::default();
    let p1 = PeerId(1);
    rib.set_peer(
        p1,
        PeerMeta {
            addr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)),
            bgp_id: Ipv4Addr::new(10, 0, 0, 1),
            ebgp: true,
        },
    );
    let k1 = RouteKey::new(&[24, 10, 0, 1]);
    let k2 = RouteKey::new(&[24, 10, 0, 2]);
    let a = rib.intern(attrs(&base()));
    for k in [&k1, &k2] {
        rib.announce(
            Family::IPV4_UNICAST,
            k.clone(),
            p1,
            0,
            a.clone(),
            NlriRest::default(),
        );
    }
    rib.drain_changes().for_each(drop);
    assert_eq!(rib.stale_count(Family::IPV4_UNICAST, p1), 0);
    assert_eq!(rib.mark_stale(Family::IPV4_UNICAST, p1), 2);
    assert_eq!(rib.stale_count(Family::IPV4_UNICAST, p1), 2);
    assert!(
        !rib.has_changes(),
        "stale marking does not change forwarding"
    );
    rib.announce(
        Family::IPV4_UNICAST,
        k1.clone(),
        p1,
        0,
        a.clone(),
        NlriRest::default(),
    );
    assert!(!rib.best(Family::IPV4_UNICAST, &k1).unwrap().stale());
    assert_eq!(rib.stale_count(Family::IPV4_UNICAST, p1), 1, "k1 refreshed");
    assert_eq!(rib.sweep_stale(Family::IPV4_UNICAST, p1), 1);
    assert_eq!(rib.stale_count(Family::IPV4_UNICAST, p1), 0);
    assert!(rib.best(Family::IPV4_UNICAST, &k2).is_none());
    assert_eq!(rib.count(p1, Family::IPV4_UNICAST), 1);
    assert!(Arc::strong_count(&a) >= 2);
}

#[test]
fn layout_sizes() {
    // the memory budget (≤ 250 octets per route) rests on these
    assert_eq!(std::mem::size_of::<Path>(), 56);
    assert!(
        std::mem::size_of::<Entry>() <= 72,
        "{}",
        std::mem::size_of::<Entry>()
    );
}

#[test]
fn all_paths_tables_record_non_best_changes_and_others_do_not() {
    // RFC 7911 send: a table an ADD-PATH send peer reads records every path change (best ones
    // as `Change`, others as `PathChange`); a table without one records best-path changes only
    let f = Family::L2VPN_EVPN;
    let k = RouteKey::new(&[2, 1, 2, 3]);
    let run = |all: bool| -> (usize, Vec<PeerId>) {
        let mut rib = Rib::default();
        for (p, id) in [(1, 1), (2, 2)] {
            rib.set_peer(
                PeerId(p),
                PeerMeta {
                    addr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, id)),
                    bgp_id: Ipv4Addr::new(10, 0, 0, id),
                    ebgp: true,
                },
            );
        }
        rib.set_all_paths(f, all);
        assert_eq!(rib.all_paths(f), all);
        let a1 = rib.intern(attrs(&base()));
        let a2 = rib.intern(attrs(&Spec { nh: 2, ..base() }));
        let a3 = rib.intern(attrs(&Spec { nh: 3, ..base() }));
        let rest = NlriRest::default();
        rib.announce(f, k.clone(), PeerId(1), 0, a1.clone(), rest.clone()); // best
        rib.announce(f, k.clone(), PeerId(2), 0, a2, rest.clone()); // not best (router ID)
        rib.announce(f, k.clone(), PeerId(2), 0, a3.clone(), rest.clone()); // replaced
        rib.announce(f, k.clone(), PeerId(2), 0, a3, rest.clone()); // the same again
        rib.announce(f, k.clone(), PeerId(1), 0, a1, rest); // the same again
        rib.withdraw(f, &k, PeerId(2), 0); // not best, gone
        rib.withdraw(f, &k, PeerId(1), 0); // best, gone
        assert!(rib.has_changes());
        let best = rib.drain_changes().count();
        let others = rib.drain_path_changes().map(|c| c.peer).collect();
        assert!(!rib.has_changes());
        (best, others)
    };
    let p2 = PeerId(2);
    assert_eq!(run(false), (2, vec![]));
    assert_eq!(run(true), (2, vec![p2, p2, p2]));
}

/// One step of `route_type_counts_follow_every_change`: (announce?, peer, route type, key).
fn type_count_ops() -> impl Strategy<Value = Vec<(u8, u32, u8, u8)>> {
    prop::collection::vec((0u8..5, 1u32..3, 1u8..6, 0u8..12), 1..80)
}

proptest! {
    /// `/metrics` reads the per-route-type counters instead of scanning: after any mix of
    /// announcements, withdrawals, stale sweeps and peer removals from two peers they equal a
    /// count over the table.
    #[test]
    fn route_type_counts_follow_every_change(ops in type_count_ops()) {
        let f = Family::L2VPN_EVPN;
        let mut rib = Rib::default();
        for p in 1..3u8 {
            rib.set_peer(PeerId(u32::from(p)), PeerMeta {
                addr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, p)),
                bgp_id: Ipv4Addr::new(10, 0, 0, p),
                ebgp: true,
            });
        }
        let a = rib.intern(attrs(&base()));
        for (op, peer, ty, k) in ops {
            let key = RouteKey::new(&[ty, 8, k]);
            let peer = PeerId(peer);
            match op {
                0 | 1 => rib.announce(f, key, peer, 0, a.clone(), NlriRest::default()),
                2 => rib.withdraw(f, &key, peer, 0),
                3 => {
                    rib.mark_stale(f, peer);
                    rib.sweep_stale(f, peer);
                }
                _ => {
                    rib.remove_peer(f, peer);
                }
            }
            let mut scan = std::collections::BTreeMap::new();
            if let Some(t) = rib.table(f) {
                for k in t.map.keys() {
                    *scan.entry(k.as_bytes()[0]).or_insert(0usize) += 1;
                }
            }
            prop_assert_eq!(rib.count_by_first_octet(f), scan);
        }
    }
}
