//! RFC 7432 §15 MAC mobility across VTEPs: three (or more) vmmi speakers in one iBGP full
//! mesh on the testkit's virtual clock, each with the EVPN layer and an in-memory dataplane.
//! Every case asserts what the other VTEPs hold (the RIB routes with their MAC Mobility
//! sequence, the dataplane FDB) — one test per §15 rule, then duplicate detection.

use std::net::IpAddr;
use std::time::Duration;

use vmmi::config::VniCfg;
use vmmi::dataplane::LearnEvent;
use vmmi::evpn::{EvpnCfg, EvpnEvent, Loc};
use vmmi::rib::mac_mobility::DadCfg;
use vmmi::testkit::{Net, addr};
use vmmi::wire::bgp::afi::Family;
use vmmi::wire::bgp::attr::AttrValue;
use vmmi::wire::bgp::evpn::EvpnRoute;
use vmmi::wire::bgp::extcomm::ExtCommunity;
use vmmi::wire::bgp::message::Message;
use vmmi::wire::bgp::nlri::NlriList;
use vmmi::wire::types::MacAddr;

const VNI: u32 = 100;
const M: MacAddr = MacAddr([0x02, 0, 0, 0, 0x02, 0x02]);

fn fabric(n: usize, f: impl Fn(&mut EvpnCfg)) -> Net {
    Net::evpn_mesh(n, |c| {
        c.vnis = vec![VniCfg {
            vni: VNI,
            ..VniCfg::default()
        }];
        f(c);
    })
}

fn attach(net: &mut Net, i: usize, ip: Option<&str>, sticky: bool) {
    net.learn(
        i,
        LearnEvent::Learned {
            vni: VNI,
            mac: M,
            ip: ip.map(|s| s.parse().unwrap()),
            sticky,
        },
    );
}

fn detach(net: &mut Net, i: usize) {
    net.learn(
        i,
        LearnEvent::Left {
            vni: VNI,
            mac: M,
            ip: None,
        },
    );
}

/// (VTEP, IP, MAC Mobility (seq, sticky)) of one type-2 route.
type T2 = (IpAddr, Option<IpAddr>, Option<(u32, bool)>);

/// The type-2 routes for `M` in node `i`'s RIB.
fn routes(net: &Net, i: usize) -> Vec<T2> {
    let rib = net.nodes[i].speaker.rib();
    let Some(t) = rib.table(Family::L2VPN_EVPN) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, e) in &t.map {
        let Some(p) = e.best() else { continue };
        let mut nlri = Vec::new();
        vmmi::bgp::join_nlri(Family::L2VPN_EVPN, key, &p.rest, &mut nlri);
        let Ok(EvpnRoute::MacIp(r)) =
            EvpnRoute::decode(&mut vmmi::wire::reader::Reader::new(&nlri))
        else {
            continue;
        };
        if r.mac != M {
            continue;
        }
        let vtep = p.attrs.next_hop_ip().unwrap_or(net.nodes[i].addr);
        out.push((vtep, r.ip, p.attrs.mac_mobility));
    }
    out.sort();
    out
}

fn fdb(net: &Net, i: usize) -> Option<IpAddr> {
    net.nodes[i].dp.vtep_of(VNI, M)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn first_learn_is_advertised_without_mobility_community() {
    let mut net = fabric(3, |_| {});
    attach(&mut net, 0, None, false);
    // RFC 7432 §15.1: a MAC advertised for the first time carries no MAC Mobility community
    assert_eq!(routes(&net, 1), vec![(addr(0), None, None)]);
    assert_eq!(fdb(&net, 1), Some(addr(0)));
    assert_eq!(fdb(&net, 2), Some(addr(0)));
    assert_eq!(fdb(&net, 0), None, "local MACs get no remote FDB entry");
    // every VTEP floods to the two others (type 3, ingress replication)
    for i in 0..3 {
        let fl: Vec<IpAddr> = net.nodes[i].dp.flood.iter().map(|f| f.1).collect();
        let want: Vec<IpAddr> = (0..3).filter(|j| *j != i).map(addr).collect();
        assert_eq!(fl, want, "flood list of node {i}");
    }
}

#[test]
fn local_learn_of_a_remote_mac_advertises_highest_plus_one_and_the_old_vtep_withdraws() {
    let mut net = fabric(3, |_| {});
    attach(&mut net, 0, None, false);
    // the VM moves to node 1 (make-before-break: node 1 learns while node 0's route exists)
    attach(&mut net, 1, None, false);
    // RFC 7432 §15.1: seq = 0 + 1; node 0 saw a higher sequence and withdrew its route
    assert_eq!(routes(&net, 2), vec![(addr(1), None, Some((1, false)))]);
    assert_eq!(net.evpn(0).advertised_seq(VNI, M), None);
    assert!(!net.evpn(0).is_local(VNI, M));
    assert!(net.nodes[0].evpn_events.iter().any(|e| matches!(
        e,
        EvpnEvent::MovedAway { to, seq: 1, .. } if *to == addr(1)
    )));
    assert_eq!(fdb(&net, 0), Some(addr(1)));
    assert_eq!(fdb(&net, 2), Some(addr(1)));
    assert_eq!(fdb(&net, 1), None);
    // and back: 2, then to node 2: 3
    attach(&mut net, 0, None, false);
    assert_eq!(routes(&net, 2), vec![(addr(0), None, Some((2, false)))]);
    attach(&mut net, 2, None, false);
    assert_eq!(routes(&net, 1), vec![(addr(2), None, Some((3, false)))]);
    assert_eq!((fdb(&net, 0), fdb(&net, 1)), (Some(addr(2)), Some(addr(2))));
    // the move log at node 1 (a third party for the last move) has every step
    let mv = net.evpn(1).move_views(net.now, 1);
    assert_eq!(mv[0].from, Loc::Remote(addr(0)));
    assert_eq!(mv[0].to, Loc::Remote(addr(2)));
    let steps: Vec<_> = mv[0].steps.iter().map(|s| s.step).collect();
    use vmmi::evpn::Step;
    assert!(steps.contains(&Step::RouteSeen), "{steps:?}");
    assert!(steps.contains(&Step::Dataplane), "{steps:?}");
    assert!(steps.contains(&Step::OldWithdrawn), "{steps:?}");
}

#[test]
fn break_before_make_still_bumps_the_sequence() {
    // The old VTEP's withdrawal arrives before the new learn (FRR 8.4 then advertises 0:
    // `gap200` in the move lab). vmmi remembers the highest sequence it saw for the MAC.
    let mut net = fabric(3, |_| {});
    attach(&mut net, 0, None, false);
    attach(&mut net, 1, None, false);
    detach(&mut net, 1);
    assert_eq!(routes(&net, 2), vec![]);
    assert_eq!(fdb(&net, 2), None);
    attach(&mut net, 2, None, false);
    assert_eq!(routes(&net, 0), vec![(addr(2), None, Some((2, false)))]);
}

#[test]
fn equal_sequence_lowest_vtep_wins() {
    let mut net = fabric(3, |_| {});
    // nodes 2 and 1 learn the MAC at the same moment, both with sequence 0
    let now = net.now;
    for i in [2, 1] {
        net.evpn_mut(i).handle_learn(
            now,
            LearnEvent::Learned {
                vni: VNI,
                mac: M,
                ip: None,
                sticky: false,
            },
        );
    }
    net.settle();
    // RFC 7432 §15.1: same sequence → the lowest VTEP address (node 1) wins; node 2 withdraws
    assert_eq!(routes(&net, 0), vec![(addr(1), None, None)]);
    assert_eq!(fdb(&net, 0), Some(addr(1)));
    assert_eq!(fdb(&net, 2), Some(addr(1)));
    assert!(!net.evpn(2).is_local(VNI, M));
}

#[test]
fn sticky_mac_never_moves_and_the_conflict_is_alarmed() {
    let mut net = fabric(3, |_| {});
    attach(&mut net, 0, None, true);
    assert_eq!(routes(&net, 2), vec![(addr(0), None, Some((0, true)))]);
    // a dynamic learn of the same MAC elsewhere: advertised with seq 1, but static wins
    attach(&mut net, 1, None, false);
    assert_eq!(routes(&net, 2), vec![(addr(0), None, Some((0, true)))]);
    assert_eq!(fdb(&net, 2), Some(addr(0)));
    assert_eq!(fdb(&net, 1), Some(addr(0)));
    assert!(net.evpn(0).is_local(VNI, M));
    assert_eq!(net.evpn(0).advertised_seq(VNI, M), Some(0));
    // RFC 7432 §15.2: the operator is told where the conflicting learn happened; that VTEP
    // never advertised the MAC (so the static side sees nothing to alarm about)
    let conflict = |i: usize| {
        net.nodes[i]
            .evpn_events
            .iter()
            .any(|e| matches!(e, EvpnEvent::StickyConflict { .. }))
    };
    assert!(conflict(1) && !conflict(0));
    assert!(!net.evpn(1).is_local(VNI, M));
}

#[test]
fn mac_and_mac_ip_routes_share_one_sequence() {
    let mut net = fabric(3, |_| {});
    attach(&mut net, 0, Some("10.1.0.5"), false);
    attach(&mut net, 0, Some("10.1.0.6"), false);
    assert_eq!(
        routes(&net, 2),
        vec![
            (addr(0), None, None),
            (addr(0), Some(ip("10.1.0.5")), None),
            (addr(0), Some(ip("10.1.0.6")), None),
        ]
    );
    // ARP/ND suppression entries on the remote VTEPs
    assert_eq!(net.nodes[2].dp.neigh.get(&(VNI, ip("10.1.0.5"))), Some(&M));
    attach(&mut net, 1, Some("10.1.0.5"), false);
    // the MAC and its MAC+IP route move together with one sequence; node 0 withdrew all three
    assert_eq!(
        routes(&net, 2),
        vec![
            (addr(1), None, Some((1, false))),
            (addr(1), Some(ip("10.1.0.5")), Some((1, false))),
        ]
    );
    assert!(net.nodes[2].dp.neigh.contains_key(&(VNI, ip("10.1.0.5"))));
    assert!(!net.nodes[2].dp.neigh.contains_key(&(VNI, ip("10.1.0.6"))));
    // an address-only leave withdraws that MAC+IP route and keeps the MAC
    net.learn(
        1,
        LearnEvent::Left {
            vni: VNI,
            mac: M,
            ip: Some(ip("10.1.0.5")),
        },
    );
    assert_eq!(routes(&net, 2), vec![(addr(1), None, Some((1, false)))]);
    assert!(net.nodes[2].dp.neigh.is_empty());
}

#[test]
fn sequence_wraps_around_in_serial_arithmetic() {
    let mut net = fabric(3, |_| {});
    // node 0 advertised 4294967295 before (its state file says so)
    net.evpn_mut(0).restore(&[(VNI, M, u32::MAX, u32::MAX)]);
    attach(&mut net, 0, None, false);
    assert_eq!(
        routes(&net, 2),
        vec![(addr(0), None, Some((u32::MAX, false)))]
    );
    // the next move advertises 0, which is newer than 4294967295 (RFC 1982)
    attach(&mut net, 1, None, false);
    // (sent with the community: a move to sequence 0 is still a move)
    assert_eq!(routes(&net, 2), vec![(addr(1), None, Some((0, false)))]);
    assert_eq!(fdb(&net, 2), Some(addr(1)));
    assert!(
        !net.evpn(0).is_local(VNI, M),
        "node 0 withdrew: 0 follows 2^32-1"
    );
    attach(&mut net, 0, None, false);
    assert_eq!(routes(&net, 2), vec![(addr(0), None, Some((1, false)))]);
}

/// Sequences of `M` that node `i` received from node `from` in UPDATEs (MP_REACH only).
fn seqs_received(net: &Net, i: usize, from: usize) -> Vec<u32> {
    let mut out = Vec::new();
    for m in net.messages(i) {
        let Message::Update(u) = m else { continue };
        let mut seq = 0;
        let mut nh = None;
        let mut has_m = false;
        for a in &u.attrs {
            match &a.value {
                AttrValue::ExtCommunities(v) => {
                    for c in v {
                        if let ExtCommunity::MacMobility { seq: s, .. } = c {
                            seq = *s;
                        }
                    }
                }
                AttrValue::MpReach(r) => {
                    nh = match r.next_hop {
                        vmmi::wire::bgp::attr::MpNextHop::Ipv4(a) => Some(IpAddr::V4(a)),
                        _ => None,
                    };
                    if let NlriList::Evpn(routes) = &r.nlri {
                        has_m = routes
                            .iter()
                            .any(|x| matches!(&x.route, EvpnRoute::MacIp(m) if m.mac == M));
                    }
                }
                _ => {}
            }
        }
        if has_m && nh == Some(addr(from)) {
            out.push(seq);
        }
    }
    out
}

#[test]
fn restart_never_advertises_a_lower_sequence() {
    let mut net = fabric(3, |_| {});
    attach(&mut net, 0, None, false);
    attach(&mut net, 1, None, false);
    attach(&mut net, 0, None, false);
    assert_eq!(routes(&net, 2), vec![(addr(0), None, Some((2, false)))]);
    let before = seqs_received(&net, 2, 0).len();
    for i in [1, 2] {
        net.nodes[i].dp.record = Some(Vec::new());
    }
    // node 0 crashes and comes back (graceful restart); the kernel still has the VM on its
    // port and reports it; the sequence comes back from the state file
    net.restart(0, true);
    net.restart_evpn(0);
    net.run(Duration::from_secs(30));
    net.reconcile(0);
    let after = seqs_received(&net, 2, 0);
    assert!(after.len() > before, "node 0 re-advertised the MAC");
    assert!(
        after[before..].iter().all(|s| *s == 2),
        "sequences after restart: {:?}",
        &after[before..]
    );
    assert_eq!(routes(&net, 2), vec![(addr(0), None, Some((2, false)))]);
    assert_eq!(fdb(&net, 2), Some(addr(0)));
    assert_eq!(fdb(&net, 1), Some(addr(0)));
    assert_eq!(fdb(&net, 0), None);
    // the helpers never removed anything towards node 0 while it restarted (found by the
    // e2e test: a re-advertised type 3 deleted and re-added the flood entry in one batch)
    use vmmi::dataplane::DataplaneOp;
    for i in [1, 2] {
        let ops = net.nodes[i].dp.record.take().unwrap();
        let gaps: Vec<_> = ops
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    DataplaneOp::FloodDel { .. }
                        | DataplaneOp::FdbDel { .. }
                        | DataplaneOp::NeighDel { .. }
                )
            })
            .collect();
        assert!(gaps.is_empty(), "node {i}: {gaps:?}");
    }
    // the next move still counts up from there
    attach(&mut net, 2, None, false);
    assert_eq!(routes(&net, 1), vec![(addr(2), None, Some((3, false)))]);
}

fn dad(max: u32, window: u64, freeze: Option<u64>) -> impl Fn(&mut EvpnCfg) {
    move |c: &mut EvpnCfg| {
        c.dad = DadCfg {
            max_moves: max,
            window: Duration::from_secs(window),
            freeze: freeze.map(Duration::from_secs),
        }
    }
}

fn dup(net: &Net, i: usize) -> bool {
    net.evpn(i).frozen(VNI, M)
}

#[test]
fn duplicate_detection_freezes_after_n_moves_and_dad_clear_lifts_it() {
    let mut net = fabric(3, dad(3, 180, None));
    // a duplicate MAC: both VMs talk, each learn bumps the sequence (ping-pong 0↔1)
    attach(&mut net, 0, None, false);
    attach(&mut net, 1, None, false); // move 1 (counted at 0 and 1)
    net.run(Duration::from_secs(1));
    attach(&mut net, 0, None, false); // move 2
    net.run(Duration::from_secs(1));
    assert!(!dup(&net, 0) && !dup(&net, 1));
    attach(&mut net, 1, None, false); // move 3: frozen at 0 and 1, not at 2 (never involved)
    assert!(dup(&net, 0) && dup(&net, 1) && !dup(&net, 2));
    assert!(
        net.nodes[1]
            .evpn_events
            .iter()
            .any(|e| matches!(e, EvpnEvent::DuplicateDetected { moves: 3, .. }))
    );
    // the third move itself was applied: everyone points at node 1 ("last good location")
    assert_eq!(routes(&net, 2), vec![(addr(1), None, Some((3, false)))]);
    assert_eq!((fdb(&net, 0), fdb(&net, 2)), (Some(addr(1)), Some(addr(1))));
    // frozen: node 0 learns it again — not advertised, forwarding untouched
    attach(&mut net, 0, None, false);
    assert_eq!(routes(&net, 2), vec![(addr(1), None, Some((3, false)))]);
    assert_eq!(fdb(&net, 0), Some(addr(1)));
    assert_eq!(net.evpn(0).advertised_seq(VNI, M), None);
    // `vmmi dad clear` on node 0: the local MAC is advertised as a fresh move (4) and wins
    let now = net.now;
    net.evpn_mut(0).clear_dad(now, VNI, M).unwrap();
    net.settle();
    assert!(!dup(&net, 0));
    // node 1 is still frozen: it keeps advertising what it had ("stop sending" changes);
    // its sequence 3 loses to 4 everywhere
    assert_eq!(
        routes(&net, 2),
        vec![
            (addr(0), None, Some((4, false))),
            (addr(1), None, Some((3, false)))
        ]
    );
    assert_eq!(fdb(&net, 2), Some(addr(0)));
    assert!(dup(&net, 1));
    assert!(
        net.evpn_mut(0).clear_dad(now, VNI, M).is_err(),
        "not frozen any more"
    );
}

#[test]
fn moves_outside_the_window_do_not_count() {
    let mut net = fabric(2, dad(3, 10, None));
    attach(&mut net, 0, None, false);
    for k in 0..6 {
        attach(&mut net, 1 - (k % 2), None, false);
        net.run(Duration::from_secs(6)); // two moves per 12 s window: never 3
    }
    assert!(!dup(&net, 0) && !dup(&net, 1));
}

#[test]
fn freeze_timeout_lifts_the_freeze_by_itself() {
    let mut net = fabric(3, dad(2, 180, Some(30)));
    attach(&mut net, 0, None, false);
    attach(&mut net, 1, None, false);
    attach(&mut net, 0, None, false); // move 2: frozen at 0 and 1
    assert!(dup(&net, 0) && dup(&net, 1));
    net.run(Duration::from_secs(29));
    assert!(dup(&net, 0));
    net.run(Duration::from_secs(2));
    assert!(!dup(&net, 0) && !dup(&net, 1));
    assert!(
        net.nodes[0]
            .evpn_events
            .iter()
            .any(|e| matches!(e, EvpnEvent::DuplicateCleared { by_timer: true, .. }))
    );
}

#[test]
fn a_frozen_mac_that_leaves_is_withdrawn() {
    // FRR 8.4 keeps advertising a DAD-flagged MAC after it left (move lab `dadbug`: a
    // permanent black hole). vmmi withdraws a MAC that is not here, frozen or not.
    let mut net = fabric(3, dad(2, 180, None));
    attach(&mut net, 0, None, false);
    attach(&mut net, 1, None, false);
    attach(&mut net, 0, None, false); // frozen at 0 (local, advertised) and at 1
    assert!(dup(&net, 0));
    assert_eq!(routes(&net, 2), vec![(addr(0), None, Some((2, false)))]);
    detach(&mut net, 0);
    assert_eq!(routes(&net, 2), vec![], "node 0 withdrew the frozen MAC");
    assert_eq!(fdb(&net, 2), None, "no black hole towards node 0");
    // it shows up on node 2 (never involved in the duplicate): converges at once
    attach(&mut net, 2, None, false);
    assert_eq!(routes(&net, 0), vec![(addr(2), None, Some((3, false)))]);
    // the frozen VTEPs' forwarding held a location that is gone: it follows the new one
    assert_eq!(fdb(&net, 0), Some(addr(2)));
    assert_eq!(fdb(&net, 1), Some(addr(2)));
    assert!(dup(&net, 0) && dup(&net, 1), "still flagged until cleared");
}

#[test]
fn each_move_record_holds_only_its_own_steps() {
    // found by the FRR interop suite: steps of the next move landed on the previous record
    let mut net = fabric(3, |_| {});
    attach(&mut net, 0, None, false);
    for k in 0..4 {
        net.run(Duration::from_secs(1));
        attach(&mut net, 1 + (k % 2), None, false);
    }
    net.run(Duration::from_secs(1));
    use vmmi::evpn::Step;
    for i in 0..3 {
        let moves = net.evpn(i).move_views(net.now, 10);
        assert_eq!(moves.len(), 4, "node {i}: {moves:?}");
        for m in &moves {
            for s in &m.steps {
                assert!(
                    s.after_us < 500_000,
                    "node {i} move {} step {:?} at {} µs",
                    m.id,
                    s.step,
                    s.after_us
                );
            }
            let has = |x: Step| m.steps.iter().any(|s| s.step == x);
            assert!(
                has(Step::Dataplane),
                "node {i} move {}: {:?}",
                m.id,
                m.steps
            );
            match (m.from, m.to) {
                (_, Loc::Local) => assert!(has(Step::Learned) && has(Step::Advertised)),
                (Loc::Local, _) => assert!(has(Step::RouteSeen) && has(Step::Withdrawn)),
                _ => assert!(has(Step::RouteSeen) && has(Step::OldWithdrawn)),
            }
        }
    }
}

#[test]
fn every_location_change_feeds_the_mapping_system_with_the_sequence_as_version() {
    use vmmi::evpn::Mapping;
    let mut net = fabric(3, |_| {});
    attach(&mut net, 0, Some("10.1.0.5"), false);
    let m = |ip: Option<&str>, rloc: Option<IpAddr>, version: u32, local: bool| Mapping {
        vni: VNI,
        mac: M,
        ip: ip.map(|s| s.parse().unwrap()),
        rloc,
        version,
        local,
    };
    // the owner reports its own VTEP as the RLOC, the others the owner's
    assert_eq!(
        net.nodes[0].mappings,
        vec![
            m(None, Some(addr(0)), 0, true),
            m(Some("10.1.0.5"), Some(addr(0)), 0, true)
        ]
    );
    assert_eq!(
        net.nodes[2].mappings.last(),
        Some(&m(Some("10.1.0.5"), Some(addr(0)), 0, false))
    );
    // a move: MAC and address move together, Map-Version = MAC Mobility sequence
    net.nodes[2].mappings.clear();
    attach(&mut net, 1, Some("10.1.0.5"), false);
    assert_eq!(
        net.nodes[2].mappings,
        vec![
            m(None, Some(addr(1)), 1, false),
            m(Some("10.1.0.5"), Some(addr(1)), 1, false)
        ]
    );
    // gone: both withdrawn from the mapping
    net.nodes[2].mappings.clear();
    detach(&mut net, 1);
    assert_eq!(
        net.nodes[2].mappings,
        vec![m(None, None, 0, false), m(Some("10.1.0.5"), None, 0, false)]
    );
}
