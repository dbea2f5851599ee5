//! Speakers back to back on the testkit's virtual clock: establishment, collision, timers,
//! negotiation failures, route exchange, reflection, graceful restart, route refresh,
//! max-prefix and ADD-PATH send. Every assertion is on what the peer holds or the exact
//! message sent.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use vmmi::bgp::{Event, MaxPrefixAction, PeerState, join_nlri};
use vmmi::rib::PeerId;
use vmmi::testkit::Net;
use vmmi::wire::bgp::afi::Family;
use vmmi::wire::bgp::attr::{AttrValue, MpNextHop, PathAttr, code};
use vmmi::wire::bgp::capability::{AddPathFamily, Capability};
use vmmi::wire::bgp::evpn::{EvpnRoute, Label, MacIpRoute};
use vmmi::wire::bgp::extcomm::{ExtCommunity, RouteTarget};
use vmmi::wire::bgp::message::{BgpCtx, Message};
use vmmi::wire::bgp::nlri::{NlriList, PrefixNlri, encode_prefixes};
use vmmi::wire::bgp::rd::RouteDistinguisher;
use vmmi::wire::types::MacAddr;

const EVPN: Family = Family::L2VPN_EVPN;
const V4: Family = Family::IPV4_UNICAST;

fn t2(rd_ip: [u8; 4], mac_last: u8, ip: Option<[u8; 4]>, vni: u32) -> Vec<u8> {
    let r = EvpnRoute::MacIp(MacIpRoute {
        rd: RouteDistinguisher::Ipv4 {
            addr: Ipv4Addr::from(rd_ip),
            number: 100,
        },
        esi: MacIpRoute::EMPTY.esi,
        ethernet_tag: 0,
        mac: MacAddr([0x52, 0x54, 0, 0, 0, mac_last]),
        ip: ip.map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        label1: Label(vni),
        label2: None,
    });
    let mut v = Vec::new();
    r.encode(&mut v);
    v
}

fn evpn_attrs(seq: Option<u32>) -> Vec<PathAttr> {
    let mut ec = vec![
        ExtCommunity::route_target(RouteTarget::As2 {
            asn: 65001,
            value: 100,
        }),
        ExtCommunity::vxlan_encap(),
    ];
    if let Some(s) = seq {
        ec.push(ExtCommunity::mac_mobility_seq(s, false));
    }
    vec![
        PathAttr::new(code::ORIGIN, AttrValue::Origin(0)),
        PathAttr::new(code::EXTENDED_COMMUNITIES, AttrValue::ExtCommunities(ec)),
    ]
}

fn vtep(i: u8) -> Option<MpNextHop> {
    Some(MpNextHop::Ipv4(Ipv4Addr::new(192, 0, 2, i)))
}

/// Node `i` originates EVPN route `n` (RT, encapsulation, MAC Mobility `seq` when given) with
/// next hop VTEP 192.0.2.`vtep_i`.
fn originate(net: &mut Net, i: usize, n: &[u8], seq: Option<u32>, vtep_i: u8) {
    let now = net.now;
    net.nodes[i]
        .speaker
        .originate(now, EVPN, n, evpn_attrs(seq), vtep(vtep_i));
}

/// a → b over eBGP, b limiting a to 2 prefixes with `action`; a sends 3.
fn max_prefix_net(action: MaxPrefixAction) -> (Net, usize, PeerId) {
    let mut net = Net::new();
    let a = net.add(65001);
    let b = net.add(65002);
    net.peer(a, b, &[EVPN], |_| {});
    let pb = net.peer(b, a, &[EVPN], |c| {
        c.max_prefix = Some(2);
        c.max_prefix_action = action;
    });
    net.run(Duration::from_secs(2));
    for i in 0..3u8 {
        originate(&mut net, a, &t2([192, 0, 2, 1], i, None, 100), None, 1);
    }
    (net, b, pb)
}

fn state(net: &Net, i: usize, p: PeerId) -> PeerState {
    net.nodes[i].speaker.peer_state(p).unwrap()
}

fn pair(ebgp: bool) -> (Net, usize, usize, PeerId, PeerId) {
    let mut net = Net::new();
    let a = net.add(65001);
    let b = net.add(if ebgp { 65002 } else { 65001 });
    let pa = net.peer(a, b, &[EVPN, V4], |_| {});
    let pb = net.peer(b, a, &[EVPN, V4], |_| {});
    (net, a, b, pa, pb)
}

fn sent_notifications(net: &Net, i: usize) -> Vec<(u8, u8)> {
    net.nodes[i]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::NotificationSent { notification, .. } => {
                Some((notification.code, notification.subcode))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn both_active_collide_and_one_connection_survives() {
    let (mut net, a, b, pa, pb) = pair(true);
    net.run(Duration::from_secs(5));
    assert_eq!(state(&net, a, pa), PeerState::Established);
    assert_eq!(state(&net, b, pb), PeerState::Established);
    // RFC 4271 §6.8: the connection opened by the higher BGP ID (b = 10.0.0.2) survives; the
    // other is closed with Cease / Connection Collision Resolution by one side.
    let cease: Vec<_> = [a, b]
        .iter()
        .flat_map(|&i| sent_notifications(&net, i))
        .collect();
    assert!(cease.iter().all(|c| *c == (6, 7)), "{cease:?}");
    assert!(!cease.is_empty());
    let v = net.nodes[a].speaker.neighbors(net.now);
    let n = v[0].negotiated.as_ref().unwrap();
    assert_eq!(n.families, vec![EVPN, V4]);
    assert!(n.four_octet_as && n.route_refresh && n.enhanced_route_refresh && n.extended_message);
    assert_eq!((n.hold_time, n.keepalive), (90, 30));
    // stays up across many keepalive intervals
    net.run(Duration::from_secs(600));
    assert_eq!(state(&net, a, pa), PeerState::Established);
    assert_eq!(net.nodes[a].speaker.neighbors(net.now)[0].flaps, 0);
}

#[test]
fn passive_side_waits_and_active_side_connects() {
    let mut net = Net::new();
    let a = net.add(65001);
    let b = net.add(65001);
    let pa = net.peer(a, b, &[EVPN], |c| c.passive = true);
    let pb = net.peer(b, a, &[EVPN], |_| {});
    assert_eq!(state(&net, a, pa), PeerState::Active);
    net.run(Duration::from_secs(1));
    assert_eq!(state(&net, a, pa), PeerState::Established);
    assert_eq!(state(&net, b, pb), PeerState::Established);
    assert!(sent_notifications(&net, a).is_empty());
}

#[test]
fn hold_timer_expiry_sends_4_0_and_the_session_comes_back() {
    let (mut net, a, b, pa, _) = pair(false);
    net.run(Duration::from_secs(2));
    assert_eq!(state(&net, a, pa), PeerState::Established);
    net.partition(a, b, true);
    net.run(Duration::from_secs(89));
    assert_eq!(
        state(&net, a, pa),
        PeerState::Established,
        "not before 90 s"
    );
    net.run(Duration::from_secs(2));
    assert!(sent_notifications(&net, a).contains(&(4, 0)));
    assert!(net.nodes[a].events.iter().any(|e| matches!(
        e,
        Event::SessionDown { reason, .. } if reason == "hold timer expired"
    )));
    net.partition(a, b, false);
    net.run(Duration::from_secs(30));
    assert_eq!(state(&net, a, pa), PeerState::Established);
}

#[test]
fn no_common_family_is_refused_with_2_7() {
    let mut net = Net::new();
    let a = net.add(65001);
    let b = net.add(65002);
    let pa = net.peer(a, b, &[EVPN], |_| {});
    net.peer(b, a, &[Family::IPV6_UNICAST], |_| {});
    net.run(Duration::from_secs(3));
    assert_ne!(state(&net, a, pa), PeerState::Established);
    let all: Vec<_> = [a, b]
        .iter()
        .flat_map(|&i| sent_notifications(&net, i))
        .collect();
    assert!(all.contains(&(2, 7)), "{all:?}");
}

#[test]
fn wrong_peer_as_is_refused_with_2_2() {
    let mut net = Net::new();
    let a = net.add(65001);
    let b = net.add(65002);
    let pa = net.peer(a, b, &[EVPN], |c| c.remote_asn = 65009);
    net.peer(b, a, &[EVPN], |_| {});
    net.run(Duration::from_secs(3));
    assert_ne!(state(&net, a, pa), PeerState::Established);
    assert!(sent_notifications(&net, a).contains(&(2, 2)));
}

fn evpn_best(net: &Net, i: usize, nlri: &[u8]) -> Option<vmmi::rib::Path> {
    let (k, _) = vmmi::bgp::split_nlri(EVPN, nlri);
    net.nodes[i].speaker.rib().best(EVPN, &k).cloned()
}

#[test]
fn evpn_route_crosses_ebgp_with_as_path_next_hop_and_communities() {
    let (mut net, a, b, _, pb) = pair(true);
    net.run(Duration::from_secs(2));
    let n = t2([192, 0, 2, 1], 1, Some([10, 1, 0, 5]), 100);
    let now = net.now;
    net.nodes[a]
        .speaker
        .originate(now, EVPN, &n, evpn_attrs(Some(3)), vtep(1));
    net.settle();
    let p = evpn_best(&net, b, &n).expect("b holds the route");
    assert_eq!(p.peer, pb);
    assert_eq!(
        p.attrs.next_hop,
        vtep(1),
        "EVPN next hop (the VTEP) unchanged over eBGP"
    );
    assert_eq!(p.attrs.as_path_len, 1);
    assert_eq!(p.attrs.neighbor_as, Some(65001));
    assert_eq!(p.attrs.mac_mobility, Some((3, false)));
    assert!(p.attrs.local_pref.is_none(), "no LOCAL_PREF over eBGP");
    let mut back = Vec::new();
    join_nlri(EVPN, &vmmi::bgp::split_nlri(EVPN, &n).0, &p.rest, &mut back);
    assert_eq!(back, n, "labels and ESI survive");
    // End-of-RIB was sent for both families after the (empty) initial table
    let eors: Vec<Family> = net
        .messages(b)
        .iter()
        .filter_map(|m| match m {
            Message::Update(u) => u.end_of_rib(),
            _ => None,
        })
        .collect();
    assert!(eors.contains(&EVPN) && eors.contains(&V4), "{eors:?}");

    // a higher sequence replaces; a withdrawal removes
    let now = net.now;
    net.nodes[a]
        .speaker
        .originate(now, EVPN, &n, evpn_attrs(Some(4)), vtep(1));
    net.settle();
    assert_eq!(
        evpn_best(&net, b, &n).unwrap().attrs.mac_mobility,
        Some((4, false))
    );
    let now = net.now;
    net.nodes[a].speaker.withdraw_local(now, EVPN, &n);
    net.settle();
    assert!(evpn_best(&net, b, &n).is_none());
}

#[test]
fn ipv4_unicast_uses_next_hop_self_over_ebgp() {
    let (mut net, a, b, _, _) = pair(true);
    net.run(Duration::from_secs(2));
    let now = net.now;
    let pfx = [24u8, 10, 50, 0];
    net.nodes[a].speaker.originate(
        now,
        V4,
        &pfx,
        vec![PathAttr::new(code::ORIGIN, AttrValue::Origin(0))],
        None,
    );
    net.settle();
    let (k, _) = vmmi::bgp::split_nlri(V4, &pfx);
    let p = net.nodes[b].speaker.rib().best(V4, &k).cloned().unwrap();
    assert_eq!(
        p.attrs.next_hop,
        Some(MpNextHop::Ipv4(Ipv4Addr::new(10, 0, 0, 1)))
    );
}

#[test]
fn route_reflector_reflects_client_routes_with_originator_and_cluster_list() {
    let mut net = Net::new();
    let c1 = net.add(65001);
    let rr = net.add(65001);
    let c2 = net.add(65001);
    let nc = net.add(65001); // a non-client iBGP peer of the RR
    net.peer(c1, rr, &[EVPN], |_| {});
    net.peer(rr, c1, &[EVPN], |c| c.rr_client = true);
    net.peer(c2, rr, &[EVPN], |_| {});
    net.peer(rr, c2, &[EVPN], |c| c.rr_client = true);
    net.peer(nc, rr, &[EVPN], |_| {});
    net.peer(rr, nc, &[EVPN], |_| {});
    net.run(Duration::from_secs(3));
    let n = t2([192, 0, 2, 1], 7, None, 100);
    originate(&mut net, c1, &n, None, 1);
    net.settle();
    for i in [c2, nc] {
        let p = evpn_best(&net, i, &n).unwrap_or_else(|| panic!("node {i} has the route"));
        assert_eq!(p.attrs.originator_id, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(p.attrs.cluster_list(), &[Ipv4Addr::new(10, 0, 0, 2)]);
        assert_eq!(p.attrs.local_pref, Some(100));
        assert_eq!(p.attrs.next_hop, vtep(1));
    }
    // a non-client's route goes to clients only
    let m = t2([192, 0, 2, 4], 8, None, 100);
    originate(&mut net, nc, &m, None, 4);
    net.settle();
    assert!(evpn_best(&net, c1, &m).is_some());
    assert!(evpn_best(&net, c2, &m).is_some());
}

#[test]
fn graceful_restart_keeps_routes_stale_then_sweeps_after_end_of_rib() {
    let (mut net, a, b, pa, _) = pair(false);
    net.run(Duration::from_secs(2));
    let keep = t2([192, 0, 2, 2], 1, None, 100);
    let gone = t2([192, 0, 2, 2], 2, None, 100);
    let now = net.now;
    for n in [&keep, &gone] {
        net.nodes[b]
            .speaker
            .originate(now, EVPN, n, evpn_attrs(None), vtep(2));
    }
    net.settle();
    assert!(evpn_best(&net, a, &keep).is_some() && evpn_best(&net, a, &gone).is_some());

    // b crashes (TCP reset, no NOTIFICATION): a keeps both routes, marked stale
    net.restart(b, true);
    net.settle();
    let p = evpn_best(&net, a, &keep).expect("kept during restart");
    assert!(p.stale());
    assert!(evpn_best(&net, a, &gone).unwrap().stale());
    let view = &net.nodes[a].speaker.neighbors(net.now)[0];
    assert_eq!(view.stale.get("l2vpn-evpn").copied(), Some(2));

    // b comes back and re-originates only `keep` before its End-of-RIB
    originate(&mut net, b, &keep, None, 2);
    net.run(Duration::from_secs(5));
    assert_eq!(state(&net, a, pa), PeerState::Established);
    let p = evpn_best(&net, a, &keep).expect("refreshed");
    assert!(!p.stale());
    assert!(evpn_best(&net, a, &gone).is_none(), "swept at End-of-RIB");
    assert!(net.nodes[a].events.iter().any(|e| matches!(
        e,
        Event::StaleSwept {
            removed: 1,
            why: "End-of-RIB",
            ..
        }
    )));
}

#[test]
fn graceful_restart_timer_flushes_when_the_peer_never_returns() {
    let (mut net, a, b, _, _) = pair(false);
    net.run(Duration::from_secs(2));
    let n = t2([192, 0, 2, 2], 1, None, 100);
    originate(&mut net, b, &n, None, 2);
    net.settle();
    // b goes away for good: partition and reset
    net.partition(a, b, true);
    net.restart(b, true);
    let nb = &mut net.nodes[b];
    let ids: Vec<_> = nb.peers.iter().map(|(id, _)| *id).collect();
    let now = net.now;
    for id in ids {
        net.nodes[b].speaker.remove_peer(now, id);
    }
    net.settle();
    assert!(evpn_best(&net, a, &n).unwrap().stale());
    net.run(Duration::from_secs(119));
    assert!(
        evpn_best(&net, a, &n).is_some(),
        "kept for Restart Time (120 s)"
    );
    net.run(Duration::from_secs(2));
    assert!(
        evpn_best(&net, a, &n).is_none(),
        "flushed after Restart Time"
    );
}

#[test]
fn with_the_n_bit_an_administrative_reset_keeps_routes_but_hard_reset_does_not() {
    // RFC 8538 §4: a NOTIFICATION other than Cease/Hard Reset is a graceful restart
    let (mut net, a, b, _, pb) = pair(false);
    net.run(Duration::from_secs(2));
    let n = t2([192, 0, 2, 1], 1, None, 100);
    originate(&mut net, a, &n, None, 1);
    net.settle();
    let now = net.now;
    net.nodes[b].speaker.shutdown_peer(
        now,
        pb,
        vmmi::wire::bgp::notification::NotificationMsg::new(6, 4, Vec::new()),
        "administrative reset",
    );
    net.settle();
    assert!(
        evpn_best(&net, b, &n).unwrap().stale(),
        "kept, stale, at the sender"
    );
    let pa = net.nodes[a].peers[0].0;
    let p = net.nodes[a].speaker.neighbors(net.now);
    assert_eq!(p[0].id, pa);
    assert!(
        net.nodes[a]
            .events
            .iter()
            .any(|e| matches!(e, Event::SessionDown { graceful: true, .. }))
    );
}

#[test]
fn notification_ends_session_without_graceful_restart() {
    let (mut net, a, b, _, pb) = pair(false);
    net.run(Duration::from_secs(2));
    let n = t2([192, 0, 2, 1], 1, None, 100);
    originate(&mut net, a, &n, None, 1);
    net.settle();
    assert!(evpn_best(&net, b, &n).is_some());
    let now = net.now;
    net.nodes[b].speaker.shutdown_peer(
        now,
        pb,
        vmmi::wire::bgp::notification::NotificationMsg::new(6, 2, Vec::new()),
        "test",
    );
    net.settle();
    assert!(
        evpn_best(&net, b, &n).is_none(),
        "flushed: a NOTIFICATION is not a restart"
    );
}

#[test]
fn route_refresh_resends_the_table_with_borr_and_eorr() {
    let (mut net, a, b, _, pb) = pair(true);
    net.run(Duration::from_secs(2));
    let now = net.now;
    for i in 0..5u8 {
        net.nodes[a].speaker.originate(
            now,
            EVPN,
            &t2([192, 0, 2, 1], i, None, 100),
            evpn_attrs(None),
            vtep(1),
        );
    }
    net.settle();
    let before = net.nodes[b].received.len();
    let now = net.now;
    assert!(net.nodes[b].speaker.request_refresh(now, pb, EVPN));
    net.settle();
    let msgs = net.messages(b);
    let tail = &msgs[msgs.len() - (net.nodes[b].received.len() - before)..];
    let kinds: Vec<String> = tail
        .iter()
        .map(|m| match m {
            Message::RouteRefresh(r) => format!("rr{}", r.subtype),
            Message::Update(u) => format!("u{}", u.route_counts().0),
            _ => "other".into(),
        })
        .collect();
    // RFC 7313: BoRR, the routes (one UPDATE: they share attributes), EoRR
    assert_eq!(kinds, vec!["rr1", "u5", "rr2"]);
    for i in 0..5u8 {
        let p = evpn_best(&net, b, &t2([192, 0, 2, 1], i, None, 100)).unwrap();
        assert!(!p.stale());
    }
}

#[test]
fn max_prefix_teardown_sends_cease_1_and_stays_down() {
    let (mut net, b, pb) = max_prefix_net(MaxPrefixAction::Teardown);
    net.run(Duration::from_secs(60));
    // RFC 4486 Cease / Maximum Number of Prefixes Reached, wrapped in RFC 8538 Hard Reset
    // (6/9, data = the original code and subcode) because both sides set the N bit
    let n = net.nodes[b]
        .events
        .iter()
        .find_map(|e| match e {
            Event::NotificationSent { notification, .. } if notification.subcode != 7 => {
                Some(notification.clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!((n.code, n.subcode), (6, 9));
    assert_eq!(&n.data[..2], &[6, 1]);
    // RFC 4486 §4 data: AFI 25, SAFI 70, the limit 2
    assert_eq!(&n.data[2..], &[0, 25, 70, 0, 0, 0, 2]);
    assert_eq!(state(&net, b, pb), PeerState::Idle);
    assert_eq!(net.nodes[b].speaker.rib().count(pb, EVPN), 0);
}

#[test]
fn max_prefix_warning_keeps_the_session() {
    let (mut net, b, pb) = max_prefix_net(MaxPrefixAction::Warning);
    net.settle();
    assert_eq!(state(&net, b, pb), PeerState::Established);
    assert_eq!(net.nodes[b].speaker.rib().count(pb, EVPN), 3);
    let warnings = net.nodes[b]
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::MaxPrefix {
                    teardown: false,
                    ..
                }
            )
        })
        .count();
    assert_eq!(warnings, 1, "warned once");
}

#[test]
fn many_routes_pack_into_few_updates_under_the_size_limit() {
    let (mut net, a, b, _, pb) = pair(true);
    net.run(Duration::from_secs(2));
    let now = net.now;
    for i in 0..2000u32 {
        let b3 = (i >> 8) as u8;
        let b4 = i as u8;
        let mut n = t2([192, 0, 2, 1], 0, Some([10, 1, b3, b4]), 100);
        // distinct MACs
        n[2 + 8 + 10 + 4 + 1 + 4] = b3;
        n[2 + 8 + 10 + 4 + 1 + 5] = b4;
        net.nodes[a]
            .speaker
            .originate(now, EVPN, &n, evpn_attrs(None), vtep(1));
    }
    net.settle();
    assert_eq!(net.nodes[b].speaker.rib().count(pb, EVPN), 2000);
    let sizes: Vec<usize> = net.nodes[b]
        .received
        .iter()
        .filter(|(_, m)| m.get(18) == Some(&2))
        .map(|(_, m)| m.len())
        .collect();
    // extended messages were negotiated: a handful of UPDATEs, each ≤ 65535 octets
    assert!(sizes.iter().all(|s| *s <= 65535));
    assert!(sizes.len() < 200, "{} UPDATEs for 2000 routes", sizes.len());
}

#[test]
fn a_257_octet_evpn_route_of_unknown_type_is_relayed_intact() {
    // fuzz-found (bgp_session): the packer framed NLRI with a one-octet length and truncated
    // routes longer than 255 octets; an unknown route type may carry a 255-octet value
    let (mut net, a, b, _, pb) = pair(true);
    net.run(Duration::from_secs(2));
    let mut n = vec![42u8, 255];
    n.extend((0..255u32).map(|i| i as u8));
    originate(&mut net, a, &n, None, 1);
    net.settle();
    let p = evpn_best(&net, b, &n).expect("relayed");
    assert_eq!(p.peer, pb);
    let (k, _) = vmmi::bgp::split_nlri(EVPN, &n);
    let mut back = Vec::new();
    join_nlri(EVPN, &k, &p.rest, &mut back);
    assert_eq!(back, n);
}

#[test]
fn delay_open_waits_for_the_peers_open_then_answers() {
    // RFC 4271 §8.1.1 DelayOpen: the passive side sends no OPEN until the peer's arrives
    let mut net = Net::new();
    let a = net.add(65001);
    let b = net.add(65002);
    let pa = net.peer(a, b, &[EVPN], |c| {
        c.passive = true;
        c.delay_open = Some(5);
    });
    net.peer(b, a, &[EVPN], |_| {});
    net.run(Duration::from_secs(1));
    assert_eq!(state(&net, a, pa), PeerState::Established);
    // b received a's OPEN only after its own OPEN reached a
    let first_from_a = net.messages(b).into_iter().next();
    assert!(matches!(first_from_a, Some(Message::Open(_))));
}

#[test]
fn own_as_in_path_and_reflection_loops_are_not_installed() {
    // RFC 4271 §9.1.2 (own AS in AS_PATH) and RFC 4456 §8 (own CLUSTER_ID): ignored routes
    let mut net = Net::new();
    let a = net.add(65001);
    let b = net.add(65002);
    let c = net.add(65001);
    net.peer(a, b, &[EVPN], |_| {});
    net.peer(b, a, &[EVPN], |_| {});
    net.peer(b, c, &[EVPN], |_| {});
    net.peer(c, b, &[EVPN], |_| {});
    net.run(Duration::from_secs(3));
    // a's route travels a → b → c; c (AS 65001, same as a) must not install it
    let n = t2([192, 0, 2, 1], 9, None, 100);
    originate(&mut net, a, &n, None, 1);
    net.settle();
    assert!(evpn_best(&net, b, &n).is_some());
    assert!(
        evpn_best(&net, c, &n).is_none(),
        "AS 65001 already in the path"
    );
}

#[test]
fn ibgp_routes_are_not_passed_between_non_clients() {
    let mut net = Net::new();
    let x = net.add(65001);
    let rr = net.add(65001);
    let y = net.add(65001);
    net.peer(x, rr, &[EVPN], |_| {});
    net.peer(rr, x, &[EVPN], |_| {});
    net.peer(y, rr, &[EVPN], |_| {});
    net.peer(rr, y, &[EVPN], |_| {});
    net.run(Duration::from_secs(3));
    let n = t2([192, 0, 2, 1], 3, None, 100);
    originate(&mut net, x, &n, None, 1);
    net.settle();
    assert!(evpn_best(&net, rr, &n).is_some());
    assert!(
        evpn_best(&net, y, &n).is_none(),
        "RFC 4271 §9.2: no iBGP → iBGP without reflection"
    );
}

#[test]
fn a_peer_that_reconnects_while_established_is_a_graceful_restart() {
    // RFC 4724 §4.2: "when the Receiving Speaker detects ... a new TCP connection from the
    // peer" while the old session looks up, the peer restarted: the old session ends without
    // a NOTIFICATION, its routes stay stale, the new one is established
    let (mut net, a, b, pa, _) = pair(false);
    net.run(Duration::from_secs(2));
    let n = t2([192, 0, 2, 2], 1, None, 100);
    originate(&mut net, b, &n, None, 2);
    net.settle();
    // b restarts but a never sees the old connection close (a silent partition of the old one)
    net.partition(a, b, true);
    net.restart_silently(b);
    net.partition(a, b, false);
    net.run(Duration::from_secs(3));
    assert_eq!(state(&net, a, pa), PeerState::Established);
    assert!(net.nodes[a].events.iter().any(|e| matches!(
        e,
        Event::SessionDown { graceful: true, reason, .. } if reason.contains("peer restarted")
    )));
    // kept stale until b's End-of-RIB, which (b has not re-originated it) sweeps it
    assert!(net.nodes[a].events.iter().any(|e| matches!(
        e,
        Event::StaleSwept {
            removed: 1,
            why: "End-of-RIB",
            ..
        }
    )));
    assert!(evpn_best(&net, a, &n).is_none());
}

// ---- ADD-PATH send (RFC 7911) ----

/// Decode what node `i` received with path identifiers in `fams`.
fn addpath_msgs(net: &Net, i: usize, fams: &[Family]) -> Vec<Message> {
    net.messages_with(
        i,
        &BgpCtx {
            four_octet_as: true,
            extended_message: true,
            add_path_rx: fams.to_vec(),
        },
    )
}

/// The path identifiers announced and withdrawn for `nlri`'s key in `msgs` (None: an NLRI
/// without one).
fn ids_for(msgs: &[Message], family: Family, nlri: &[u8]) -> (Vec<Option<u32>>, Vec<Option<u32>>) {
    let (key, _) = vmmi::bgp::split_nlri(family, nlri);
    let same = |f: Family, n: &NlriList| -> Vec<Option<u32>> {
        if f != family {
            return Vec::new();
        }
        match n {
            NlriList::Evpn(v) => v
                .iter()
                .filter(|e| {
                    let mut b = Vec::new();
                    e.route.encode(&mut b);
                    vmmi::bgp::split_nlri(family, &b).0 == key
                })
                .map(|e| e.path_id)
                .collect(),
            NlriList::Ipv4(v) | NlriList::Ipv6(v) => prefixes(v, nlri),
            NlriList::Raw(_) => Vec::new(),
        }
    };
    let (mut ann, mut wd) = (Vec::new(), Vec::new());
    for m in msgs {
        let Message::Update(u) = m else { continue };
        if family == V4 {
            ann.extend(prefixes(&u.nlri, nlri));
            wd.extend(prefixes(&u.withdrawn, nlri));
        }
        if let Some(r) = u.mp_reach() {
            ann.extend(same(r.family, &r.nlri));
        }
        if let Some(w) = u.mp_unreach() {
            wd.extend(same(w.family, &w.withdrawn));
        }
    }
    (ann, wd)
}

fn prefixes(v: &[PrefixNlri], nlri: &[u8]) -> Vec<Option<u32>> {
    v.iter()
        .filter(|p| {
            let mut b = Vec::new();
            encode_prefixes(
                &[PrefixNlri {
                    path_id: None,
                    prefix: p.prefix,
                }],
                &mut b,
            );
            b == nlri
        })
        .map(|p| p.path_id)
        .collect()
}

/// The paths node `i` holds for `nlri`'s key: (path id, next hop), sorted by next hop.
fn held(net: &Net, i: usize, family: Family, nlri: &[u8]) -> Vec<(u32, Option<MpNextHop>)> {
    let (k, _) = vmmi::bgp::split_nlri(family, nlri);
    let mut v: Vec<(u32, Option<MpNextHop>)> = net.nodes[i]
        .speaker
        .rib()
        .entry(family, &k)
        .map(|e| {
            e.paths
                .iter()
                .map(|p| (p.path_id, p.attrs.next_hop.clone()))
                .collect()
        })
        .unwrap_or_default();
    v.sort_by_key(|(_, nh)| format!("{nh:?}"));
    v
}

fn updates_received(net: &Net, i: usize) -> usize {
    net.nodes[i]
        .received
        .iter()
        .filter(|(_, m)| m.get(18) == Some(&2))
        .count()
}

fn evpn_attrs_rt(rt: u32) -> Vec<PathAttr> {
    let ec = vec![
        ExtCommunity::route_target(RouteTarget::As2 {
            asn: 65001,
            value: rt,
        }),
        ExtCommunity::vxlan_encap(),
    ];
    vec![
        PathAttr::new(code::ORIGIN, AttrValue::Origin(0)),
        PathAttr::new(code::EXTENDED_COMMUNITIES, AttrValue::ExtCommunities(ec)),
    ]
}

/// Two upstream eBGP peers u1 (AS 65001, 10.0.0.1) and u2 (AS 65002) of speaker s (AS 65000),
/// a plain downstream n (AS 65004). The add-path downstream d (AS 65003) is added by the test.
struct Fan {
    net: Net,
    u1: usize,
    u2: usize,
    s: usize,
    d: usize,
    n: usize,
}

fn fan() -> Fan {
    let mut net = Net::new();
    let u1 = net.add(65001);
    let u2 = net.add(65002);
    let s = net.add(65000);
    let d = net.add(65003);
    let n = net.add(65004);
    for (x, y) in [(u1, s), (u2, s), (n, s)] {
        net.peer(x, y, &[EVPN, V4], |_| {});
        net.peer(y, x, &[EVPN, V4], |_| {});
    }
    net.run(Duration::from_secs(3));
    Fan {
        net,
        u1,
        u2,
        s,
        d,
        n,
    }
}

#[test]
fn add_path_sends_every_path_with_its_own_id_and_withdraws_exactly_one() {
    let Fan {
        mut net,
        u1,
        u2,
        s,
        d,
        n,
    } = fan();
    // the same EVPN key (same RD, MAC, IP) and the same IPv4 prefix from both upstreams
    let key = t2([192, 0, 2, 9], 1, Some([10, 1, 0, 5]), 100);
    let pfx = [24u8, 10, 50, 0];
    let now = net.now;
    for (u, nh) in [(u1, 1), (u2, 2)] {
        net.nodes[u]
            .speaker
            .originate(now, EVPN, &key, evpn_attrs(None), vtep(nh));
        net.nodes[u].speaker.originate(
            now,
            V4,
            &pfx,
            vec![PathAttr::new(code::ORIGIN, AttrValue::Origin(0))],
            None,
        );
    }
    net.settle();
    assert_eq!(
        net.nodes[s]
            .speaker
            .rib()
            .entry(EVPN, &vmmi::bgp::split_nlri(EVPN, &key).0)
            .unwrap()
            .paths
            .len(),
        2
    );

    // d comes up now: the initial table (start_full_sync) carries both paths
    let sd = net.peer(s, d, &[EVPN, V4], |c| {
        c.add_path_tx = true;
        c.add_path_rx = true;
    });
    net.peer(d, s, &[EVPN, V4], |c| c.add_path_rx = true);
    net.run(Duration::from_secs(3));
    let nego = net.nodes[s]
        .speaker
        .neighbors(net.now)
        .into_iter()
        .find(|v| v.id == sd)
        .and_then(|v| v.negotiated)
        .unwrap();
    // RFC 7911 §5: we said send (both), d said receive → we send; d did not say send
    assert_eq!(nego.add_path_tx, vec![EVPN, V4]);
    assert!(nego.add_path_rx.is_empty());

    let ids_of = |net: &Net| -> Vec<u32> {
        held(net, d, EVPN, &key)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    };
    let got = held(&net, d, EVPN, &key);
    assert_eq!(
        got.iter().map(|(_, nh)| nh.clone()).collect::<Vec<_>>(),
        vec![vtep(1), vtep(2)],
        "d holds both paths"
    );
    let ids = ids_of(&net);
    assert_ne!(ids[0], ids[1], "distinct path identifiers");
    let msgs = addpath_msgs(&net, d, &[EVPN, V4]);
    let (ann, wd) = ids_for(&msgs, EVPN, &key);
    let mut ann_sorted = ann.clone();
    ann_sorted.sort();
    let mut want: Vec<Option<u32>> = ids.iter().map(|i| Some(*i)).collect();
    want.sort();
    assert_eq!(ann_sorted, want, "each path announced once, with its id");
    assert!(wd.is_empty());
    // IPv4 unicast: path ids in the NLRI field too; next hop self, AS paths tell them apart
    let v4 = held(&net, d, V4, &pfx);
    assert_eq!(v4.len(), 2);
    assert_ne!(v4[0].0, v4[1].0);
    let (ann4, _) = ids_for(&msgs, V4, &pfx);
    assert_eq!(ann4.len(), 2);
    assert!(ann4.iter().all(Option::is_some));

    // the plain downstream holds the best path only (u1: lower router ID), without ids
    assert_eq!(held(&net, n, EVPN, &key), vec![(0, vtep(1))]);
    let (ann_n, _) = ids_for(&net.messages(n), EVPN, &key);
    assert_eq!(ann_n, vec![None]);

    // u1 withdraws: d loses exactly u1's path id; n is moved to u2's path
    let u1_id = got.iter().find(|(_, nh)| *nh == vtep(1)).unwrap().0;
    let u2_id = got.iter().find(|(_, nh)| *nh == vtep(2)).unwrap().0;
    let before = addpath_msgs(&net, d, &[EVPN, V4]).len();
    let now = net.now;
    net.nodes[u1].speaker.withdraw_local(now, EVPN, &key);
    net.settle();
    let msgs = addpath_msgs(&net, d, &[EVPN, V4]);
    let (ann, wd) = ids_for(&msgs[before..], EVPN, &key);
    assert_eq!(wd, vec![Some(u1_id)], "exactly u1's id withdrawn");
    assert!(ann.is_empty(), "u2's path is not re-sent: {ann:?}");
    assert_eq!(held(&net, d, EVPN, &key), vec![(u2_id, vtep(2))]);
    assert_eq!(held(&net, n, EVPN, &key), vec![(0, vtep(2))]);

    // u1 comes back: a new id that u2's path does not hold
    let now = net.now;
    net.nodes[u1]
        .speaker
        .originate(now, EVPN, &key, evpn_attrs(None), vtep(1));
    net.settle();
    let back = held(&net, d, EVPN, &key);
    assert_eq!(back.len(), 2);
    assert_eq!(back[1], (u2_id, vtep(2)), "u2 keeps its id");
    assert_ne!(back[0].0, u2_id);
    assert_eq!(held(&net, n, EVPN, &key), vec![(0, vtep(1))]);

    // a change of the non-best path (u2's, new RT) reaches d under u2's id, not n
    let (n_before, d_before) = (
        updates_received(&net, n),
        addpath_msgs(&net, d, &[EVPN, V4]).len(),
    );
    let now = net.now;
    net.nodes[u2]
        .speaker
        .originate(now, EVPN, &key, evpn_attrs_rt(200), vtep(2));
    net.settle();
    assert_eq!(
        updates_received(&net, n),
        n_before,
        "n's best did not change"
    );
    let msgs = addpath_msgs(&net, d, &[EVPN, V4]);
    let (ann, wd) = ids_for(&msgs[d_before..], EVPN, &key);
    assert_eq!((ann, wd), (vec![Some(u2_id)], vec![]));

    // ROUTE-REFRESH from d: every path again, same ids, none left stale
    let before = addpath_msgs(&net, d, &[EVPN, V4]).len();
    let ds = net.nodes[d].peers[0].0;
    let now = net.now;
    assert!(net.nodes[d].speaker.request_refresh(now, ds, EVPN));
    net.settle();
    let msgs = addpath_msgs(&net, d, &[EVPN, V4]);
    let (mut ann, wd) = ids_for(&msgs[before..], EVPN, &key);
    ann.sort();
    let mut now_ids: Vec<Option<u32>> = ids_of(&net).into_iter().map(Some).collect();
    now_ids.sort();
    assert_eq!((ann, wd), (now_ids, vec![]));
    let (k, _) = vmmi::bgp::split_nlri(EVPN, &key);
    let e = net.nodes[d].speaker.rib().entry(EVPN, &k).unwrap();
    assert!(e.paths.iter().all(|p| !p.stale()));
    assert_eq!(e.paths.len(), 2);

    // the non-best path goes: d loses exactly its id, n hears nothing
    let (n_before, d_before) = (
        updates_received(&net, n),
        addpath_msgs(&net, d, &[EVPN, V4]).len(),
    );
    let now = net.now;
    net.nodes[u2].speaker.withdraw_local(now, EVPN, &key);
    net.settle();
    assert_eq!(updates_received(&net, n), n_before);
    let msgs = addpath_msgs(&net, d, &[EVPN, V4]);
    let (ann, wd) = ids_for(&msgs[d_before..], EVPN, &key);
    assert_eq!((ann, wd), (vec![], vec![Some(u2_id)]));
    assert_eq!(held(&net, d, EVPN, &key).len(), 1);
    assert_eq!(held(&net, d, EVPN, &key)[0].1, vtep(1));
}

#[test]
fn add_path_send_needs_the_peers_receive() {
    // RFC 7911 §5: SEND only when the peer said RECEIVE — d is not configured for it, so it
    // gets the best path without path identifiers
    let Fan {
        mut net,
        u1,
        u2,
        s,
        d,
        ..
    } = fan();
    let key = t2([192, 0, 2, 9], 1, None, 100);
    let now = net.now;
    for (u, nh) in [(u1, 1), (u2, 2)] {
        net.nodes[u]
            .speaker
            .originate(now, EVPN, &key, evpn_attrs(None), vtep(nh));
    }
    net.settle();
    let sd = net.peer(s, d, &[EVPN], |c| c.add_path_tx = true);
    net.peer(d, s, &[EVPN], |_| {});
    net.run(Duration::from_secs(3));
    // our OPEN advertised Send (2) for EVPN ...
    let open = net
        .messages(d)
        .into_iter()
        .find_map(|m| match m {
            Message::Open(o) => Some(o),
            _ => None,
        })
        .unwrap();
    let ap: Vec<AddPathFamily> = open
        .capabilities()
        .filter_map(|c| match c {
            Capability::AddPath { families } => Some(families.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(
        ap,
        vec![AddPathFamily {
            family: EVPN,
            send_receive: AddPathFamily::SEND
        }]
    );
    // ... but nothing was negotiated, and every UPDATE decodes without path ids
    let nego = net.nodes[s]
        .speaker
        .neighbors(net.now)
        .into_iter()
        .find(|v| v.id == sd)
        .and_then(|v| v.negotiated)
        .unwrap();
    assert!(nego.add_path_tx.is_empty() && nego.add_path_rx.is_empty());
    let updates = updates_received(&net, d);
    let msgs = net.messages(d);
    assert_eq!(
        msgs.iter()
            .filter(|m| matches!(m, Message::Update(_)))
            .count(),
        updates,
        "every UPDATE decodes without ADD-PATH"
    );
    let (ann, _) = ids_for(&msgs, EVPN, &key);
    assert_eq!(ann, vec![None], "the best path only, no path id");
    assert_eq!(held(&net, d, EVPN, &key), vec![(0, vtep(1))]);
}

#[test]
fn add_path_both_ways_negotiates_send_and_receive() {
    let mut net = Net::new();
    let a = net.add(65001);
    let b = net.add(65002);
    let both = |c: &mut vmmi::bgp::PeerCfg| {
        c.add_path_tx = true;
        c.add_path_rx = true;
    };
    let pa = net.peer(a, b, &[EVPN], both);
    net.peer(b, a, &[EVPN], both);
    net.run(Duration::from_secs(3));
    let open = net
        .messages(b)
        .into_iter()
        .find_map(|m| match m {
            Message::Open(o) => Some(o),
            _ => None,
        })
        .unwrap();
    assert!(open.capabilities().any(|c| matches!(
        c,
        Capability::AddPath { families } if families == &vec![AddPathFamily {
            family: EVPN,
            send_receive: AddPathFamily::BOTH
        }]
    )));
    let v = net.nodes[a].speaker.neighbors(net.now);
    let nego = v
        .iter()
        .find(|v| v.id == pa)
        .unwrap()
        .negotiated
        .clone()
        .unwrap();
    assert_eq!(
        (nego.add_path_tx, nego.add_path_rx),
        (vec![EVPN], vec![EVPN])
    );
    // a local route crosses with a path id and is held under it
    let n = t2([192, 0, 2, 1], 4, None, 100);
    let now = net.now;
    net.nodes[a]
        .speaker
        .originate(now, EVPN, &n, evpn_attrs(None), vtep(1));
    net.settle();
    let (ann, _) = ids_for(&addpath_msgs(&net, b, &[EVPN]), EVPN, &n);
    assert_eq!(ann, vec![Some(1)]);
    assert_eq!(held(&net, b, EVPN, &n), vec![(1, vtep(1))]);
}
