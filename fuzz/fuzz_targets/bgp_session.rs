//! The speaker fed with event sequences: two eBGP peers, A driven by the fuzzer (raw frames,
//! structure-aware UPDATEs, timer jumps, reconnects, local originations, and well-formed EVPN
//! announcements, replacements and withdrawals — by A or local — of a small set of routes, so
//! keys get several paths that come and go), B a well-behaved
//! receiver of what vmmi re-advertises, with ADD-PATH (RFC 7911) for EVPN on both sides: vmmi
//! sends B every path of a key with path identifiers (IPv4 unicast stays without). B answers
//! each timer jump with a KEEPALIVE, so its session lives through them.
//! Asserts: no panic anywhere in the FSM, ingest, RIB or packing; every byte vmmi sends to
//! either peer decodes with the session's context (B's EVPN NLRI with path identifiers: our
//! own output round-trips), every UPDATE sent to B passes RFC 7606 validation with no finding,
//! the RIB's per-peer counts match the paths it holds, and — B's Adj-RIB-In rebuilt from what
//! it was sent — B holds exactly as many EVPN paths per key as vmmi's RIB (every path is
//! exportable to B), and vmmi never withdraws a path identifier B does not hold.
#![no_main]
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use vmmi::bgp::{ConnId, Output, PeerCfg, Speaker, SpeakerCfg};
use vmmi::rib::key::{RouteKey, split_evpn};
use vmmi::wire::bgp::capability::{AddPathFamily, Capability};
use vmmi::wire::bgp::attr::{AsSegment, AttrValue, MpNextHop, MpReach, MpUnreach, PathAttr, code, segment};
use vmmi::wire::bgp::evpn::EvpnRoute;
use vmmi::wire::bgp::nlri::{EvpnNlri, NlriList};
use vmmi::wire::bgp::generate::arbitrary_update;
use vmmi::wire::bgp::message::frame_len;
use vmmi::wire::bgp::open::{OpenMsg, OptParam};
use vmmi::wire::bgp::validate::{Action, ValidateCtx, validate};
use vmmi::wire::bgp::{BgpCtx, Family, Message};

const FAMS: [Family; 2] = [Family::L2VPN_EVPN, Family::IPV4_UNICAST];

/// B's peer number in vmmi (A is 1).
const B: vmmi::rib::PeerId = vmmi::rib::PeerId(2);

fn open(asn: u32, id: [u8; 4], add_path: bool) -> Vec<u8> {
    let mut caps: Vec<Capability> = FAMS
        .iter()
        .map(|f| Capability::Multiprotocol { family: *f, reserved: 0 })
        .collect();
    caps.push(Capability::FourOctetAs { asn });
    caps.push(Capability::ExtendedMessage);
    caps.push(Capability::RouteRefresh);
    if add_path {
        caps.push(Capability::AddPath {
            families: vec![AddPathFamily {
                family: Family::L2VPN_EVPN,
                send_receive: AddPathFamily::BOTH,
            }],
        });
    }
    Message::Open(OpenMsg {
        version: 4,
        my_as: asn as u16,
        hold_time: 9,
        bgp_id: Ipv4Addr::from(id),
        params: vec![OptParam::Capabilities { capabilities: caps }],
        extended_params: false,
    })
    .to_bytes(&BgpCtx::default())
}

fn ctx() -> BgpCtx {
    BgpCtx { four_octet_as: true, extended_message: true, add_path_rx: Vec::new() }
}

/// B's view of the session: EVPN NLRI carry path identifiers.
fn ctx_b() -> BgpCtx {
    BgpCtx { add_path_rx: vec![Family::L2VPN_EVPN], ..ctx() }
}

fn connect(sp: &mut Speaker, now: Instant, i: u8, asn: u32, add_path: bool) -> Option<ConnId> {
    let remote = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)), 40000);
    let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 179);
    let c = sp.handle_accept(now, remote, local)?;
    sp.handle_frame(now, c, &open(asn, [10, 0, 0, i], add_path));
    sp.handle_frame(now, c, &Message::Keepalive.to_bytes(&BgpCtx::default()));
    Some(c)
}

/// B's Adj-RIB-In for EVPN: key → the path identifiers it holds.
type BRib = BTreeMap<RouteKey, BTreeSet<u32>>;

fn evpn_key(route: &EvpnRoute) -> RouteKey {
    let mut b = Vec::new();
    route.encode(&mut b);
    split_evpn(&b).0
}

/// Apply one UPDATE sent to B to its Adj-RIB-In.
fn b_apply(rib: &mut BRib, u: &vmmi::wire::bgp::UpdateMsg) {
    if let Some(w) = u.mp_unreach()
        && let NlriList::Evpn(v) = &w.withdrawn
    {
        for n in v {
            let id = n.path_id.expect("a path identifier on every EVPN withdrawal to B");
            let k = evpn_key(&n.route);
            let held = rib.get_mut(&k).is_some_and(|s| s.remove(&id));
            assert!(held, "vmmi withdrew path id {id} of {k:?}, which B does not hold");
            if rib.get(&k).is_some_and(BTreeSet::is_empty) {
                rib.remove(&k);
            }
        }
    }
    if let Some(r) = u.mp_reach()
        && let NlriList::Evpn(v) = &r.nlri
    {
        for n in v {
            let id = n.path_id.expect("a path identifier on every EVPN route to B");
            rib.entry(evpn_key(&n.route)).or_default().insert(id);
        }
    }
}

/// A well-formed eBGP UPDATE from A (AS 65001) announcing `routes` via `nh` (with a MED, so a
/// re-announcement can change the path), or withdrawing them.
fn a_update(routes: &[EvpnRoute], nh: u8, med: u8, withdraw: bool) -> Vec<u8> {
    let nlri = NlriList::Evpn(routes.iter().map(|r| EvpnNlri { path_id: None, route: r.clone() }).collect());
    let attrs = if withdraw {
        vec![PathAttr::new(
            code::MP_UNREACH_NLRI,
            AttrValue::MpUnreach(MpUnreach { family: Family::L2VPN_EVPN, withdrawn: nlri }),
        )]
    } else {
        vec![
            PathAttr::new(code::ORIGIN, AttrValue::Origin(0)),
            PathAttr::new(
                code::AS_PATH,
                AttrValue::AsPath(vec![AsSegment { seg_type: segment::AS_SEQUENCE, asns: vec![65001] }]),
            ),
            PathAttr::new(code::MED, AttrValue::Med(u32::from(med))),
            PathAttr::new(
                code::MP_REACH_NLRI,
                AttrValue::MpReach(MpReach {
                    family: Family::L2VPN_EVPN,
                    next_hop: MpNextHop::Ipv4(Ipv4Addr::new(192, 0, 2, nh)),
                    reserved: 0,
                    nlri,
                }),
            ),
        ]
    };
    let up = vmmi::wire::bgp::UpdateMsg { attrs, ..Default::default() };
    Message::Update(up).to_bytes(&ctx())
}

/// Drain outputs; check everything sent decodes and B's UPDATEs validate cleanly.
fn drain(sp: &mut Speaker, b: Option<ConnId>, brib: &mut BRib, now: Instant) {
    let vctx = ValidateCtx {
        ibgp: false,
        four_octet_as: true,
        families: FAMS.to_vec(),
        // B's view: vmmi (AS 65000) is the peer
        peer_as: 65000,
        enforce_first_as: true,
        confed_peer: false,
    };
    while let Some(o) = sp.poll_output() {
        if let Output::Send { conn, data } = o {
            let mut at = 0;
            while at < data.len() {
                let rest = &data[at..];
                // OPENs go out before the context is negotiated: decode those with the default
                let c = if rest.get(18) == Some(&1) {
                    BgpCtx::default()
                } else if Some(conn) == b {
                    ctx_b()
                } else {
                    ctx()
                };
                let (m, n) = Message::decode(rest, &c).expect("vmmi's own output decodes");
                at += n;
                if Some(conn) == b
                    && let Message::Update(u) = &m
                {
                    let v = validate(u, &vctx);
                    // informational findings (relayed unknown route types) are fine; no repair
                    assert_eq!(v.action, Action::None, "vmmi sent an UPDATE needing repair: {v:?}");
                    b_apply(brib, u);
                }
            }
            sp.handle_sent(now, conn, data.len());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut now = Instant::now();
    let cfg = SpeakerCfg {
        asn: 65000,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        cluster_id: Ipv4Addr::new(10, 0, 0, 1),
        gr_restart_time: 30,
        stale_routes_time: 60,
        restarting: false,
    };
    let mut sp = Speaker::new(cfg, now);
    for (i, asn) in [(2u8, 65001u32), (3, 65002)] {
        let mut pc = PeerCfg::new(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)), 179), asn, FAMS.to_vec());
        pc.passive = true;
        pc.max_prefix = Some(50);
        // B: ADD-PATH both ways (its OPEN says both for EVPN only)
        pc.add_path_tx = i == 3;
        pc.add_path_rx = i == 3;
        sp.add_peer(now, pc);
    }
    let mut brib = BRib::new();
    // routes the well-formed ops pick from (so keys get several paths)
    let mut known: Vec<EvpnRoute> = Vec::new();
    let mut a = connect(&mut sp, now, 2, 65001, false);
    let b = connect(&mut sp, now, 3, 65002, true);
    drain(&mut sp, b, &mut brib, now);
    for _ in 0..64 {
        let Ok(op) = u.int_in_range(0u8..=7) else { break };
        match op {
            0 => {
                // raw bytes framed like the runtime does
                let Ok(len) = u.int_in_range(0usize..=300) else { break };
                let Ok(bytes) = u.bytes(len) else { break };
                if let Some(c) = a {
                    match frame_len(bytes, &ctx()) {
                        Ok(Some(n)) if n <= bytes.len() => sp.handle_frame(now, c, &bytes[..n]),
                        Ok(_) => {}
                        Err(e) => sp.handle_frame_error(now, c, e.notification, "fuzz"),
                    }
                }
            }
            1 => {
                let Ok(up) = arbitrary_update(&mut u, &ctx()) else { break };
                let bytes = Message::Update(up).to_bytes(&ctx());
                if let (Some(c), true) = (a, bytes.len() <= 65535) {
                    sp.handle_frame(now, c, &bytes);
                }
            }
            2 => {
                let Ok(s) = u.int_in_range(0u64..=200) else { break };
                now += Duration::from_secs(s);
                // B is well-behaved: it keeps its session alive
                if let Some(c) = b
                    && sp.peer_state(B) == Some(vmmi::bgp::PeerState::Established)
                {
                    sp.handle_frame(now, c, &Message::Keepalive.to_bytes(&ctx_b()));
                }
                if sp.poll_timeout().is_some_and(|t| t <= now) {
                    sp.handle_timeout(now);
                }
            }
            3 => {
                if let Some(c) = a {
                    sp.handle_closed(now, c, "fuzz close");
                }
                drain(&mut sp, b, &mut brib, now);
                a = connect(&mut sp, now, 2, 65001, false);
            }
            4 => {
                let Ok(up) = arbitrary_update(&mut u, &ctx()) else { break };
                if let Some(m) = up.mp_reach()
                    && m.family == Family::L2VPN_EVPN
                    && let vmmi::wire::bgp::nlri::NlriList::Evpn(v) = &m.nlri
                    && let Some(n) = v.first()
                {
                    let mut nlri = Vec::new();
                    n.route.encode(&mut nlri);
                    let attrs = up.attrs.iter().filter(|a| a.type_code != 14 && a.type_code != 15).cloned().collect();
                    sp.originate(now, Family::L2VPN_EVPN, &nlri, attrs, Some(m.next_hop.clone()));
                }
            }
            5 => {
                if let Some(id) = sp.peer_by_name("10.0.0.2") {
                    sp.request_refresh(now, id, Family::L2VPN_EVPN);
                }
            }
            6 => {
                // A announces a new route (well-formed, so it is installed)
                let Ok(r) = EvpnRoute::arbitrary(&mut u) else { break };
                let Ok(nh) = u.int_in_range(1u8..=4) else { break };
                if known.len() < 16 {
                    known.push(r.clone());
                }
                if let Some(c) = a {
                    sp.handle_frame(now, c, &a_update(&[r], nh, 0, false));
                }
            }
            _ => {
                // one of the known routes: A re-announces (maybe changed) or withdraws it, or
                // the speaker originates (a second path of the key) or withdraws its own
                let (Ok(i), Ok(what), Ok(nh)) =
                    (u.int_in_range(0..=15usize), u.int_in_range(0u8..=3), u.int_in_range(1u8..=4))
                else {
                    break;
                };
                let Some(r) = known.get(i % known.len().max(1)).cloned() else { continue };
                let mut nlri = Vec::new();
                r.encode(&mut nlri);
                match what {
                    0 | 1 => {
                        if let Some(c) = a {
                            sp.handle_frame(now, c, &a_update(&[r], nh, nh, what == 1));
                        }
                    }
                    2 => {
                        let attrs = vec![PathAttr::new(code::ORIGIN, AttrValue::Origin(0))];
                        let vtep = MpNextHop::Ipv4(Ipv4Addr::new(192, 0, 2, 10 + nh));
                        sp.originate(now, Family::L2VPN_EVPN, &nlri, attrs, Some(vtep));
                    }
                    _ => sp.withdraw_local(now, Family::L2VPN_EVPN, &nlri),
                }
            }
        }
        drain(&mut sp, b, &mut brib, now);
        // a closed A stays closed until op 3 reconnects it
        if let Some(c) = a
            && sp.peer_state(vmmi::rib::PeerId(1)) != Some(vmmi::bgp::PeerState::Established)
        {
            let _ = c;
            a = None;
        }
        // RIB bookkeeping matches what it holds
        for f in FAMS {
            if let Some(t) = sp.rib().table(f) {
                let held = t.map.values().flat_map(|e| e.paths.iter()).filter(|p| p.peer == vmmi::rib::PeerId(1)).count();
                assert_eq!(held as u32, sp.rib().count(vmmi::rib::PeerId(1), f));
            }
        }
        // RFC 7911: B holds every path of every EVPN key, each under its own id, and nothing
        // else (checked while B's session is up: a new session would start from nothing)
        if sp.peer_state(B) == Some(vmmi::bgp::PeerState::Established) {
            let mine: BTreeMap<RouteKey, usize> = sp
                .rib()
                .table(Family::L2VPN_EVPN)
                .map(|t| t.map.iter().map(|(k, e)| (k.clone(), e.paths.len())).collect())
                .unwrap_or_default();
            let theirs: BTreeMap<RouteKey, usize> =
                brib.iter().map(|(k, s)| (k.clone(), s.len())).collect();
            assert_eq!(mine, theirs, "B's EVPN paths per key differ from vmmi's RIB");
        }
    }
});
