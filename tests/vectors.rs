//! Real-peer vectors: every BGP message FRR 8.4 and GoBGP 3.10 sent in the capture lab
//! (`conformance/vectors/`, provenance in its README) decodes, re-encodes byte-exactly, passes
//! RFC 7606 validation with no finding, and agrees field by field with `expected.json` (fields
//! extracted independently by the lab's Python decoder and cross-checked against tshark).
//! The live capture itself decodes through `vmmi decode --pcap` with the session context learned
//! from the OPENs.

use std::path::Path;

use serde_json::Value;
use vmmi::decode::{DecodeOpts, decode_pcap, parse_hex};
use vmmi::wire::bgp::attr::{AttrValue, PmsiTunnelId, code};
use vmmi::wire::bgp::capability::Capability;
use vmmi::wire::bgp::evpn::EvpnRoute;
use vmmi::wire::bgp::extcomm::ExtCommunity;
use vmmi::wire::bgp::nlri::NlriList;
use vmmi::wire::bgp::validate::{Action, ValidateCtx, validate};
use vmmi::wire::bgp::{BgpCtx, Family, Message};

const DIR: &str = "conformance/vectors";

fn expected() -> Value {
    let text =
        std::fs::read_to_string(Path::new(DIR).join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn ext_str(c: &ExtCommunity) -> String {
    match c {
        ExtCommunity::RouteTarget(rt) => format!("rt:{rt}"),
        ExtCommunity::Encapsulation { tunnel_type: 8, .. } => "encap:vxlan".into(),
        ExtCommunity::MacMobility { seq, .. } if c.sticky() => format!("mac-mobility:{seq}:sticky"),
        ExtCommunity::MacMobility { seq, .. } => format!("mac-mobility:{seq}"),
        ExtCommunity::RoutersMac { mac } => format!("router-mac:{mac}"),
        other => format!("{other}"),
    }
}

/// Compare one decoded EVPN route with its expected.json entry.
fn check_route(name: &str, r: &EvpnRoute, e: &Value) {
    assert_eq!(
        u64::from(r.route_type()),
        e["route_type"].as_u64().unwrap(),
        "{name}"
    );
    assert_eq!(
        r.rd().map(|rd| rd.to_string()).as_deref(),
        e["rd"].as_str(),
        "{name} rd"
    );
    match r {
        EvpnRoute::MacIp(m) => {
            assert_eq!(m.mac.to_string(), e["mac"].as_str().unwrap(), "{name} mac");
            assert_eq!(
                m.ip.map(|i| i.to_string()).as_deref(),
                e["ip"].as_str(),
                "{name} ip"
            );
            assert_eq!(
                u64::from(m.label1.vni()),
                e["vni"].as_u64().unwrap(),
                "{name} vni"
            );
            assert_eq!(
                u64::from(m.ethernet_tag),
                e["etag"].as_u64().unwrap(),
                "{name} etag"
            );
            assert_eq!(
                m.esi.to_string().replace(':', ""),
                e["esi"].as_str().unwrap(),
                "{name} esi"
            );
            assert_eq!(
                m.label2.map(|l| u64::from(l.0)),
                e["label2"].as_u64(),
                "{name} label2"
            );
        }
        EvpnRoute::InclusiveMulticast(m) => {
            assert_eq!(
                m.originator.to_string(),
                e["ip"].as_str().unwrap(),
                "{name} originator"
            );
            assert_eq!(
                u64::from(m.ethernet_tag),
                e["etag"].as_u64().unwrap(),
                "{name} etag"
            );
        }
        EvpnRoute::IpPrefix(p) => {
            assert_eq!(
                p.prefix.to_string(),
                e["prefix"].as_str().unwrap(),
                "{name} prefix"
            );
            assert_eq!(
                u64::from(p.prefix_len),
                e["prefix_len"].as_u64().unwrap(),
                "{name} prefix_len"
            );
            assert_eq!(
                p.gateway.to_string(),
                e["gw"].as_str().unwrap(),
                "{name} gw"
            );
            assert_eq!(
                u64::from(p.label.vni()),
                e["vni"].as_u64().unwrap(),
                "{name} vni"
            );
        }
        other => panic!("{name}: unexpected route {other:?}"),
    }
}

#[test]
fn every_real_peer_vector_decodes_round_trips_and_matches_expected() {
    let exp = expected();
    let vectors = exp["vectors"].as_object().expect("vectors");
    assert!(vectors.len() >= 30, "only {} vectors", vectors.len());
    let ctx = BgpCtx {
        four_octet_as: true,
        extended_message: true,
        add_path_rx: vec![],
    };
    let mut counts = [0usize; 6];
    for (name, e) in vectors {
        let hex = std::fs::read_to_string(Path::new(DIR).join(name)).expect("vector file");
        let bytes = parse_hex(hex.trim()).expect("hex");
        let (msg, n) = Message::decode(&bytes, &ctx).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(n, bytes.len(), "{name}");
        assert_eq!(msg.to_bytes(&ctx), bytes, "{name}: re-encode differs");
        assert_eq!(
            u64::from(msg.type_code()),
            e["bgp_type"].as_u64().unwrap(),
            "{name}"
        );
        counts[usize::from(msg.type_code())] += 1;
        match &msg {
            Message::Update(u) => {
                let peer_as = e["as_path"]
                    .as_array()
                    .and_then(|a| a.first())
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let v = validate(
                    u,
                    &ValidateCtx {
                        ibgp: false,
                        four_octet_as: true,
                        families: vec![Family::L2VPN_EVPN],
                        peer_as: peer_as as u32,
                        enforce_first_as: true,
                        confed_peer: false,
                    },
                );
                assert_eq!(v.action, Action::None, "{name}: {v:?}");
                let codes: Vec<u64> = u.attrs.iter().map(|a| u64::from(a.type_code)).collect();
                let want: Vec<u64> = e["attr_type_codes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_u64)
                    .collect();
                assert_eq!(codes, want, "{name} attribute order");
                if !e["eor"].is_null() {
                    assert_eq!(u.end_of_rib(), Some(Family::L2VPN_EVPN), "{name}");
                    continue;
                }
                let exts: Vec<String> = u.ext_communities().iter().map(ext_str).collect();
                let want_ext: Vec<String> = e["ext_communities"].as_array().map_or(vec![], |a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                });
                assert_eq!(exts, want_ext, "{name} ext communities");
                let mm = vmmi::wire::bgp::extcomm::mac_mobility(u.ext_communities());
                assert_eq!(
                    mm.map(|(s, _)| u64::from(s)),
                    e["mm_seq"].as_u64(),
                    "{name} mm seq"
                );
                assert_eq!(
                    mm.is_some_and(|(_, st)| st),
                    e["sticky"].as_bool().unwrap_or(false),
                    "{name} sticky"
                );
                if let Some(want) = e["pmsi"].as_object() {
                    match u.attr(code::PMSI_TUNNEL).map(|a| &a.value) {
                        Some(AttrValue::PmsiTunnel(p)) => {
                            assert_eq!(
                                u64::from(p.tunnel_type),
                                want["tunnel_type"].as_u64().unwrap()
                            );
                            assert_eq!(u64::from(p.label.0), want["label"].as_u64().unwrap());
                            assert_eq!(
                                p.tunnel_id,
                                PmsiTunnelId::Ip(
                                    want["tunnel_id"].as_str().unwrap().parse().unwrap()
                                )
                            );
                        }
                        other => panic!("{name}: PMSI {other:?}"),
                    }
                }
                let announce = e["announce"].as_array().cloned().unwrap_or_default();
                let withdraw = e["withdraw"].as_array().cloned().unwrap_or_default();
                if let Some(m) = u.mp_reach() {
                    assert_eq!(
                        m.next_hop.ip().map(|i| i.to_string()).as_deref(),
                        e["next_hop"].as_str(),
                        "{name} next hop"
                    );
                    let NlriList::Evpn(routes) = &m.nlri else {
                        panic!("{name}: not EVPN")
                    };
                    assert_eq!(routes.len(), announce.len(), "{name}");
                    for (r, want) in routes.iter().zip(&announce) {
                        check_route(name, &r.route, want);
                    }
                } else {
                    assert!(announce.is_empty(), "{name}");
                }
                if let Some(m) = u.mp_unreach() {
                    let NlriList::Evpn(routes) = &m.withdrawn else {
                        panic!("{name}: not EVPN")
                    };
                    assert_eq!(routes.len(), withdraw.len(), "{name}");
                    for (r, want) in routes.iter().zip(&withdraw) {
                        check_route(name, &r.route, want);
                    }
                }
            }
            Message::Open(o) => {
                let want = &e["open"];
                assert_eq!(u64::from(o.hold_time), want["hold_time"].as_u64().unwrap());
                assert_eq!(o.bgp_id.to_string(), want["bgp_id"].as_str().unwrap());
                let codes: Vec<u64> = o.capabilities().map(|c| u64::from(c.code())).collect();
                let want_codes: Vec<u64> = want["capabilities"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|c| c["code"].as_u64())
                    .collect();
                assert_eq!(codes, want_codes, "{name} capability order");
                for (c, w) in o
                    .capabilities()
                    .zip(want["capabilities"].as_array().unwrap())
                {
                    match c {
                        Capability::FourOctetAs { asn } => {
                            assert_eq!(u64::from(*asn), w["as"].as_u64().unwrap())
                        }
                        Capability::Multiprotocol { family, .. } => {
                            assert_eq!(family.to_string(), w["family"].as_str().unwrap())
                        }
                        Capability::Fqdn { hostname, domain } => {
                            assert_eq!(hostname, w["hostname"].as_str().unwrap());
                            assert_eq!(domain, w["domain"].as_str().unwrap());
                        }
                        Capability::GracefulRestart(gr) => {
                            assert_eq!(
                                u64::from(gr.restart_time),
                                w["restart_time"].as_u64().unwrap()
                            );
                            assert_eq!(u64::from(gr.restart_flags), w["flags"].as_u64().unwrap());
                        }
                        _ => {}
                    }
                }
            }
            Message::Notification(n) => {
                let want = &e["notification"];
                assert_eq!(
                    (u64::from(n.code), u64::from(n.subcode)),
                    (
                        want["code"].as_u64().unwrap(),
                        want["subcode"].as_u64().unwrap()
                    )
                );
                assert_eq!(
                    n.shutdown_message().as_deref(),
                    want["shutdown_communication"].as_str(),
                    "{name}"
                );
            }
            Message::Keepalive | Message::RouteRefresh(_) => {}
        }
    }
    // both peers: OPEN, KEEPALIVE, NOTIFICATION and a dozen or more UPDATEs
    assert!(
        counts[1] >= 2 && counts[3] >= 2 && counts[4] >= 2 && counts[2] >= 25,
        "{counts:?}"
    );
}

#[test]
fn live_capture_decodes_with_session_context() {
    let pcap = std::fs::read(Path::new(DIR).join("frr-gobgp-evpn.pcap")).expect("pcap");
    let objs = decode_pcap(&pcap, &DecodeOpts::default()).expect("capture decodes");
    assert!(objs.len() > 30, "{} messages", objs.len());
    let errors: Vec<&Value> = objs.iter().filter(|o| o.get("error").is_some()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let bad: Vec<&Value> = objs
        .iter()
        .filter(|o| o["verdict"]["action"] != "none")
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
    let updates = objs
        .iter()
        .filter(|o| o["message"]["type"] == "update")
        .count();
    assert!(updates >= 20, "{updates}");
    // a MAC Mobility sequence 7 route from GoBGP is in there, with its VNI
    let text = serde_json::to_string(&objs).unwrap();
    assert!(text.contains("\"seq\":7"), "no MM seq 7");
    assert!(text.contains("\"vni\":100"));
}
