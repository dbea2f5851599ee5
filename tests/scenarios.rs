//! Scenario step fixtures: `conformance/scenarios/NAME/NN-input-WHAT.jsonl` is fed to one
//! sans-IO speaker on a virtual clock; what it does is compared with
//! `NN-output-WHAT.jsonl` (every message sent, decoded; every close, connect and event).
//! `VMMI_REGEN=1 cargo test --test scenarios` rewrites the outputs — review the diff.
//!
//! Input lines (one JSON object each):
//! - `{"speaker": {"asn": 65001, "router_id": "10.0.0.1"}}` — first line of step 00
//! - `{"add_peer": {"remote": "10.0.0.2:179", "asn": 65002, "families": ["l2vpn-evpn"],
//!   "passive": true, "hold_time": 90, "graceful_restart": true, "max_prefix": N}}`
//! - `{"accept": {"remote": "10.0.0.2:40000", "local": "10.0.0.1:179"}}` (conn ids from 1)
//! - `{"recv": {"conn": 1, "open": {"asn": 65002, "id": "10.0.0.2", "hold": 90,
//!   "families": [...], "gr": true}}}`, `{"recv": {"conn": 1, "keepalive": true}}`,
//!   `{"recv": {"conn": 1, "hex": "ffff…"}}` (raw bytes, framed as the runtime frames them)
//! - `{"close": 1}` (the transport closed), `{"advance": SECONDS}`
//! - `{"announce": RouteSpec}`, `{"withdraw": RouteSpec}` (as `POST /v1/routes/…`)
//! - `{"rib": "l2vpn-evpn"}` — write a snapshot of the family's routes to the output

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vmmi::bgp::spec::RouteSpec;
use vmmi::bgp::{ConnId, Output, PeerCfg, Speaker, SpeakerCfg};
use vmmi::wire::bgp::Family;
use vmmi::wire::bgp::capability::{Capability, GrFamily, GracefulRestart};
use vmmi::wire::bgp::message::{BgpCtx, Message, frame_len};
use vmmi::wire::bgp::open::{OpenMsg, OptParam};

fn family(s: &str) -> Family {
    match s {
        "l2vpn-evpn" => Family::L2VPN_EVPN,
        "ipv4-unicast" => Family::IPV4_UNICAST,
        "ipv6-unicast" => Family::IPV6_UNICAST,
        o => panic!("unknown family {o}"),
    }
}

fn families(v: &Value) -> Vec<Family> {
    v.as_array()
        .map(|a| a.iter().filter_map(|f| f.as_str()).map(family).collect())
        .unwrap_or_else(|| vec![Family::L2VPN_EVPN])
}

struct Run {
    sp: Option<Speaker>,
    now: Instant,
    base: Instant,
    /// Decode context per connection, learned from the OPENs we saw.
    ctx: HashMap<ConnId, BgpCtx>,
}

fn open_msg(o: &Value) -> Vec<u8> {
    let asn = o["asn"].as_u64().unwrap_or(65002) as u32;
    let fams = families(&o["families"]);
    let mut caps: Vec<Capability> = fams
        .iter()
        .map(|f| Capability::Multiprotocol {
            family: *f,
            reserved: 0,
        })
        .collect();
    caps.push(Capability::FourOctetAs { asn });
    caps.push(Capability::RouteRefresh);
    if o["gr"].as_bool().unwrap_or(false) {
        caps.push(Capability::GracefulRestart(GracefulRestart {
            restart_flags: if o["gr_notification"].as_bool().unwrap_or(false) {
                4
            } else {
                0
            },
            restart_time: o["restart_time"].as_u64().unwrap_or(120) as u16,
            families: fams
                .iter()
                .map(|f| GrFamily {
                    family: *f,
                    flags: 0x80,
                })
                .collect(),
        }));
    }
    Message::Open(OpenMsg {
        version: 4,
        my_as: u16::try_from(asn).unwrap_or(23456),
        hold_time: o["hold"].as_u64().unwrap_or(90) as u16,
        bgp_id: o["id"].as_str().unwrap_or("10.0.0.2").parse().unwrap(),
        params: vec![OptParam::Capabilities { capabilities: caps }],
        extended_params: false,
    })
    .to_bytes(&BgpCtx::default())
}

impl Run {
    fn input(&mut self, line: &Value, out: &mut Vec<Value>) {
        let now = self.now;
        if let Some(s) = line.get("speaker") {
            let id: Ipv4Addr = s["router_id"].as_str().unwrap().parse().unwrap();
            self.sp = Some(Speaker::new(
                SpeakerCfg {
                    asn: s["asn"].as_u64().unwrap() as u32,
                    router_id: id,
                    cluster_id: id,
                    gr_restart_time: 120,
                    stale_routes_time: 360,
                    restarting: false,
                },
                now,
            ));
            return;
        }
        let sp = self
            .sp
            .as_mut()
            .expect("first line must be {\"speaker\": …}");
        if let Some(p) = line.get("add_peer") {
            let remote: SocketAddr = p["remote"].as_str().unwrap().parse().unwrap();
            let mut c = PeerCfg::new(
                remote,
                p["asn"].as_u64().unwrap() as u32,
                families(&p["families"]),
            );
            c.passive = p["passive"].as_bool().unwrap_or(true);
            c.hold_time = p["hold_time"].as_u64().unwrap_or(90) as u16;
            c.graceful_restart = p["graceful_restart"].as_bool().unwrap_or(true);
            c.max_prefix = p["max_prefix"].as_u64().map(|m| m as u32);
            c.rr_client = p["rr_client"].as_bool().unwrap_or(false);
            sp.add_peer(now, c);
        } else if let Some(a) = line.get("accept") {
            let remote = a["remote"].as_str().unwrap().parse().unwrap();
            let local = a["local"].as_str().unwrap().parse().unwrap();
            sp.handle_accept(now, remote, local);
        } else if let Some(r) = line.get("recv") {
            let conn = ConnId(r["conn"].as_u64().unwrap());
            let bytes = if let Some(o) = r.get("open") {
                let ctx = BgpCtx {
                    four_octet_as: true,
                    extended_message: false,
                    add_path_rx: Vec::new(),
                };
                self.ctx.insert(conn, ctx);
                open_msg(o)
            } else if r.get("keepalive").is_some() {
                Message::Keepalive.to_bytes(&BgpCtx::default())
            } else {
                hex::decode(r["hex"].as_str().unwrap().replace(' ', "")).unwrap()
            };
            let frame_ctx = BgpCtx {
                extended_message: true,
                ..BgpCtx::default()
            };
            let mut at = 0;
            while at < bytes.len() {
                match frame_len(&bytes[at..], &frame_ctx) {
                    Ok(Some(n)) if at + n <= bytes.len() => {
                        sp.handle_frame(now, conn, &bytes[at..at + n]);
                        at += n;
                    }
                    Ok(_) => break,
                    Err(e) => {
                        sp.handle_frame_error(now, conn, e.notification, &e.error.to_string());
                        break;
                    }
                }
            }
        } else if let Some(c) = line.get("close") {
            sp.handle_closed(now, ConnId(c.as_u64().unwrap()), "closed by peer");
        } else if let Some(s) = line.get("advance") {
            let end = self.now + Duration::from_secs_f64(s.as_f64().unwrap());
            // fire every deadline in order up to `end`
            for _ in 0..100_000 {
                let due = self.sp.as_ref().and_then(|sp| sp.poll_timeout());
                match due {
                    Some(t) if t <= end => {
                        self.now = self.now.max(t);
                        if let Some(sp) = self.sp.as_mut() {
                            sp.handle_timeout(self.now);
                        }
                        out.extend(self.outputs());
                    }
                    _ => break,
                }
            }
            self.now = end;
        } else if let Some(f) = line.get("rib") {
            // a snapshot of the RIB: every path with its peer and stale mark
            let fam = family(f.as_str().unwrap());
            let t = (self.now - self.base).as_secs_f64();
            for r in vmmi::runtime::routes(sp, Some(fam), None) {
                let paths: Vec<Value> = r
                    .paths
                    .iter()
                    .map(|p| json!({"peer": p.peer, "best": p.best, "stale": p.stale, "seq": p.mac_mobility_seq}))
                    .collect();
                out.push(json!({"t": t, "rib": {"route": r.prefix, "paths": paths}}));
            }
        } else if let Some(spec) = line.get("announce") {
            let s: RouteSpec = serde_json::from_value(spec.clone()).unwrap();
            let b = s.build().unwrap();
            sp.originate(now, b.family, &b.nlri, b.attrs, b.next_hop);
        } else if let Some(spec) = line.get("withdraw") {
            let s: RouteSpec = serde_json::from_value(spec.clone()).unwrap();
            let b = s.build().unwrap();
            sp.withdraw_local(now, b.family, &b.nlri);
        } else {
            panic!("unknown input line {line}");
        }
    }

    fn outputs(&mut self) -> Vec<Value> {
        let t = (self.now - self.base).as_secs_f64();
        let mut out = Vec::new();
        let sp = self.sp.as_mut().unwrap();
        while let Some(o) = sp.poll_output() {
            match o {
                Output::Send { conn, data } => {
                    let ctx = self.ctx.get(&conn).cloned().unwrap_or_default();
                    let mut at = 0;
                    while at < data.len() {
                        let c = if data.get(at + 18) == Some(&1) {
                            BgpCtx::default()
                        } else {
                            ctx.clone()
                        };
                        match Message::decode(&data[at..], &c) {
                            Ok((m, n)) => {
                                out.push(json!({"t": t, "send": {"conn": conn.0, "message": m}}));
                                at += n;
                            }
                            Err(e) => {
                                out.push(json!({"t": t, "send": {"conn": conn.0, "undecodable": e.to_string()}}));
                                break;
                            }
                        }
                    }
                    sp.handle_sent(self.now, conn, data.len());
                }
                Output::Close { conn } => out.push(json!({"t": t, "close": conn.0})),
                Output::Connect { conn, remote, .. } => out.push(
                    json!({"t": t, "connect": {"conn": conn.0, "remote": remote.to_string()}}),
                ),
                Output::Event(e) => out.push(json!({"t": t, "event": e})),
            }
        }
        out
    }
}

fn steps(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut v: Vec<(PathBuf, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("-input-"))
        })
        .map(|p| {
            let out = p.with_file_name(
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .replace("-input-", "-output-"),
            );
            (p, out)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn scenarios() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/scenarios");
    let regen = std::env::var("VMMI_REGEN").is_ok_and(|v| v == "1");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 3, "scenarios present");
    let mut failures = Vec::new();
    for d in dirs {
        #[allow(clippy::disallowed_methods)]
        let base = Instant::now();
        let mut run = Run {
            sp: None,
            now: base,
            base,
            ctx: HashMap::new(),
        };
        let mut all: Vec<Value> = Vec::new();
        for (input, output) in steps(&d) {
            for line in std::fs::read_to_string(&input).unwrap().lines() {
                if line.trim().is_empty() || line.trim_start().starts_with("//") {
                    continue;
                }
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{}: {e}: {line}", input.display()));
                let mut got = Vec::new();
                run.input(&v, &mut got);
                got.extend(run.outputs());
                all.extend(got);
            }
            let got = std::mem::take(&mut all);
            let text: String = got.iter().map(|v| format!("{v}\n")).collect();
            if regen {
                std::fs::write(&output, &text).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&output).unwrap_or_default();
            if want != text {
                failures.push(format!(
                    "{}: differs from {}\n--- want\n{want}--- got\n{text}",
                    input.display(),
                    output.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
