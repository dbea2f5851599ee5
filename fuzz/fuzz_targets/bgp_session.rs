//! The speaker fed with event sequences: two eBGP peers, A driven by the fuzzer (raw frames,
//! structure-aware UPDATEs, timer jumps, reconnects, local originations), B a well-behaved
//! receiver of what vmmi re-advertises.
//! Asserts: no panic anywhere in the FSM, ingest, RIB or packing; every byte vmmi sends to
//! either peer decodes with the session's context (our own output round-trips), every UPDATE
//! sent to B passes RFC 7606 validation with no finding, and the RIB's per-peer counts match
//! the paths it holds.
#![no_main]
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use vmmi::bgp::{ConnId, Output, PeerCfg, Speaker, SpeakerCfg};
use vmmi::wire::bgp::capability::Capability;
use vmmi::wire::bgp::generate::arbitrary_update;
use vmmi::wire::bgp::message::frame_len;
use vmmi::wire::bgp::open::{OpenMsg, OptParam};
use vmmi::wire::bgp::validate::{Action, ValidateCtx, validate};
use vmmi::wire::bgp::{BgpCtx, Family, Message};

const FAMS: [Family; 2] = [Family::L2VPN_EVPN, Family::IPV4_UNICAST];

fn open(asn: u32, id: [u8; 4]) -> Vec<u8> {
    let mut caps: Vec<Capability> = FAMS
        .iter()
        .map(|f| Capability::Multiprotocol { family: *f, reserved: 0 })
        .collect();
    caps.push(Capability::FourOctetAs { asn });
    caps.push(Capability::ExtendedMessage);
    caps.push(Capability::RouteRefresh);
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

fn connect(sp: &mut Speaker, now: Instant, i: u8, asn: u32) -> Option<ConnId> {
    let remote = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)), 40000);
    let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 179);
    let c = sp.handle_accept(now, remote, local)?;
    sp.handle_frame(now, c, &open(asn, [10, 0, 0, i]));
    sp.handle_frame(now, c, &Message::Keepalive.to_bytes(&BgpCtx::default()));
    Some(c)
}

/// Drain outputs; check everything sent decodes and B's UPDATEs validate cleanly.
fn drain(sp: &mut Speaker, b: Option<ConnId>, now: Instant) {
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
                let c = if rest.get(18) == Some(&1) { BgpCtx::default() } else { ctx() };
                let (m, n) = Message::decode(rest, &c).expect("vmmi's own output decodes");
                at += n;
                if Some(conn) == b
                    && let Message::Update(u) = &m
                {
                    let v = validate(u, &vctx);
                    // informational findings (relayed unknown route types) are fine; no repair
                    assert_eq!(v.action, Action::None, "vmmi sent an UPDATE needing repair: {v:?}");
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
        sp.add_peer(now, pc);
    }
    let mut a = connect(&mut sp, now, 2, 65001);
    let b = connect(&mut sp, now, 3, 65002);
    drain(&mut sp, b, now);
    for _ in 0..64 {
        let Ok(op) = u.int_in_range(0u8..=5) else { break };
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
                if sp.poll_timeout().is_some_and(|t| t <= now) {
                    sp.handle_timeout(now);
                }
            }
            3 => {
                if let Some(c) = a {
                    sp.handle_closed(now, c, "fuzz close");
                }
                drain(&mut sp, b, now);
                a = connect(&mut sp, now, 2, 65001);
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
            _ => {
                if let Some(id) = sp.peer_by_name("10.0.0.2") {
                    sp.request_refresh(now, id, Family::L2VPN_EVPN);
                }
            }
        }
        drain(&mut sp, b, now);
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
    }
});
