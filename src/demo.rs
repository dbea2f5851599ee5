//! `vmmi demo`: vmmi speakers in this process on loopback, over real TCP and UDP sockets — a
//! VTEP in data center 1 (AS 65001), a VTEP in data center 2 (AS 65002), a DC gateway between
//! them (AS 65000, eBGP to both) that is also the LISP Map-Server/Map-Resolver fed by EVPN, and
//! a LISP ITR (vmmi's xTR role, no BGP) subscribed to the VM's EID — a VM attached in dc1, then
//! moved to dc2; prints the timeline with the time of each step, measured, and a summary line.
//!
//! Owns: the demo's configs, driving the daemons through their API (as an orchestrator would)
//! and the printout. Must not: reach into the daemons — everything it shows comes from their
//! API (`/v1/macs`, `/v1/moves`, `/v1/lisp/...`), as `vmmi show` would see it.
//! `--netns` (real kernel VXLAN in network namespaces) is `demo_netns.rs`.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // a program: real time, threads

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::Value;
use vmmi::config::Config;
use vmmi::runtime::{self, RunOpts, client};

const VNI: u32 = 100;
const MAC: &str = "02:00:00:00:00:42";
const IP: &str = "10.1.0.42";

const LISP_KEY: &str = "demo-site-key";

struct Node {
    name: &'static str,
    asn: u32,
    addr: &'static str,
    api: SocketAddr,
}

fn nodes() -> [Node; 4] {
    let api = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    [
        Node {
            name: "dc1-vtep",
            asn: 65001,
            addr: "127.0.66.1",
            api: api(50191),
        },
        Node {
            name: "dc2-vtep",
            asn: 65002,
            addr: "127.0.66.2",
            api: api(50192),
        },
        Node {
            name: "dc-gw",
            asn: 65000,
            addr: "127.0.66.3",
            api: api(50193),
        },
        Node {
            name: "itr",
            asn: 65009,
            addr: "127.0.66.4",
            api: api(50194),
        },
    ]
}

fn config(n: &Node, state: &std::path::Path) -> String {
    let gw = "127.0.66.3";
    let itr = "127.0.66.4";
    let neighbors = if n.addr == itr {
        String::new()
    } else if n.addr == gw {
        ["127.0.66.1:65001", "127.0.66.2:65002"]
            .iter()
            .map(|p| {
                let (a, asn) = p.split_once(':').unwrap_or_default();
                format!(
                    "[[neighbor]]\naddress = \"{a}\"\nremote_asn = {asn}\nport = 1179\nfamilies = [\"l2vpn-evpn\"]\nconnect_retry = 1\n"
                )
            })
            .collect::<String>()
    } else {
        format!(
            "[[neighbor]]\naddress = \"{gw}\"\nremote_asn = 65000\nport = 1179\nfamilies = [\"l2vpn-evpn\"]\nconnect_retry = 1\npassive = true\n"
        )
    };
    let vni = if n.addr == itr {
        format!(
            "[lisp]\nroles = [\"xtr\"]\nlisten = \"{itr}:4342\"\n[[lisp.map_server]]\naddress = \"{gw}\"\nkey = \"{LISP_KEY}\"\n[dataplane]\nkind = \"none\"\n"
        )
    } else if n.addr == gw {
        // the gateway carries the VNI without a dataplane: its EVPN layer follows the VM and
        // feeds the Map-Server's mappings (EID [VNI] IP and MAC -> the VTEP holding them)
        format!(
            "[[vni]]\nvni = {VNI}\n[mobility]\nstate_file = \"{}\"\n[lisp]\nroles = [\"map-server\", \"map-resolver\"]\nlisten = \"{gw}:4342\"\n[[lisp.site]]\nname = \"dc\"\nkey = \"{LISP_KEY}\"\neids = [\"iid:{VNI} 10.1.0.0/16\", \"iid:{VNI} mac:any\"]\n[dataplane]\nkind = \"none\"\n",
            state.display()
        )
    } else {
        format!(
            "[[vni]]\nvni = {VNI}\ngateway_ip = \"10.1.0.1/24\"\n[mobility]\nstate_file = \"{}\"\n[dataplane]\nkind = \"memory\"\n",
            state.display()
        )
    };
    format!(
        "[global]\nasn = {}\nrouter_id = \"{}\"\nlisten = [\"{}:1179\"]\n{neighbors}{vni}[api]\nlisten = \"{}\"\n",
        n.asn, n.addr, n.addr, n.api
    )
}

fn get(api: SocketAddr, path: &str) -> Option<Value> {
    match client::request(api, "GET", path, None) {
        Ok((200, b)) => serde_json::from_str(&b).ok(),
        _ => None,
    }
}

fn post(api: SocketAddr, path: &str, body: &str) -> Result<(), String> {
    match client::request(api, "POST", path, Some(body)) {
        Ok((200..=299, _)) => Ok(()),
        Ok((c, b)) => Err(format!("HTTP {c}: {b}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Poll `f` every 200 µs until it holds; the time it first held, from `t0`.
fn until(t0: Instant, limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let end = t0 + limit;
    while Instant::now() < end {
        if f() {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    None
}

fn mac_entry(api: SocketAddr) -> Option<Value> {
    get(api, &format!("/v1/macs?vni={VNI}"))?
        .as_array()?
        .iter()
        .find(|m| m["mac"] == MAC)
        .cloned()
}

fn ms(d: Duration) -> String {
    format!("{:8.3} ms", d.as_secs_f64() * 1e3)
}

/// The latest move of the demo MAC on `api`, with each step's time relative to `t0`.
fn steps(api: SocketAddr, t0: Instant) -> Vec<(String, Duration)> {
    let asked = Instant::now();
    let Some(moves) = get(api, "/v1/moves?limit=5") else {
        return Vec::new();
    };
    let Some(m) = moves
        .as_array()
        .and_then(|v| v.iter().find(|m| m["mac"] == MAC))
    else {
        return Vec::new();
    };
    let start = asked.checked_sub(Duration::from_micros(m["age_us"].as_u64().unwrap_or(0)));
    let Some(start) = start else {
        return Vec::new();
    };
    m["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let at = start + Duration::from_micros(s["after_us"].as_u64().unwrap_or(0));
            (
                s["step"].as_str().unwrap_or("?").to_string(),
                at.saturating_duration_since(t0),
            )
        })
        .collect()
}

pub fn run() -> ExitCode {
    let dir = std::env::temp_dir().join(format!("vmmi-demo-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("vmmi demo: {}: {e}", dir.display());
        return ExitCode::from(1);
    }
    let ns = nodes();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vmmi demo: tokio: {e}");
            return ExitCode::from(1);
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    println!(
        "vmmi demo — a VM moves between two data centers; four vmmi speakers in this process,"
    );
    println!(
        "real BGP sessions and LISP over UDP on loopback, driven through their API as an orchestrator would.\n"
    );
    let started = Instant::now();
    for n in &ns {
        let state = dir.join(format!("{}-mobility.json", n.name));
        let cfg = match Config::from_toml_str(&config(n, &state)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("vmmi demo: internal config for {}: {e:?}", n.name);
                return ExitCode::from(1);
            }
        };
        let opts = RunOpts {
            config_path: None,
            restarting: false,
            stop: Some(stop_rx.clone()),
        };
        let name = n.name;
        tasks.push(rt.spawn(async move {
            if let Err(e) = runtime::run(cfg, opts).await {
                eprintln!("vmmi demo: {name}: {e:#}");
            }
        }));
    }
    let code = drive(&ns, started);
    let _ = stop_tx.send(true);
    rt.block_on(async {
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(3), t).await;
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    code
}

/// The ITR's map-cache entry answering for the VM's IP EID (`mac` false) or its MAC EID.
fn itr_entry(api: SocketAddr, mac: bool) -> Option<Value> {
    let ip: std::net::IpAddr = IP.parse().ok()?;
    get(api, "/v1/lisp/map-cache")?
        .as_array()?
        .iter()
        .find(|e| {
            let p = e["eid"]
                .as_str()
                .and_then(|x| x.strip_prefix(&format!("[{VNI}] ")));
            if mac {
                return p == Some(format!("{MAC}/48").as_str());
            }
            p.and_then(|p| p.parse::<ipnet::IpNet>().ok())
                .is_some_and(|p| p.contains(&ip))
        })
        .cloned()
}

fn points_at(e: &Value, rloc: &str) -> bool {
    e["rlocs"]
        .as_array()
        .is_some_and(|r| r.len() == 1 && r.iter().all(|x| x == rloc))
}

/// One LISP counter of a node.
fn lisp_counter(api: SocketAddr, name: &str) -> u64 {
    get(api, "/v1/lisp/counters")
        .and_then(|c| c[name].as_u64())
        .unwrap_or(0)
}

/// The first times (from `t0`) each condition held, polling them together for at most 5 s.
fn all_until<const N: usize>(
    t0: Instant,
    mut conds: [&mut dyn FnMut() -> bool; N],
) -> [Option<Duration>; N] {
    let mut at = [None; N];
    let _ = until(t0, Duration::from_secs(5), || {
        for (c, t) in conds.iter_mut().zip(at.iter_mut()) {
            if t.is_none() && c() {
                *t = Some(t0.elapsed());
            }
        }
        at.iter().all(Option::is_some)
    });
    at
}

fn drive(ns: &[Node; 4], started: Instant) -> ExitCode {
    let [a, b, g, itr] = ns;
    let up = until(started, Duration::from_secs(15), || {
        ns[..3].iter().all(|n| {
            get(n.api, "/v1/neighbors")
                .and_then(|v| v.as_array().cloned())
                .is_some_and(|v| !v.is_empty() && v.iter().all(|p| p["state"] == "Established"))
        }) && get(itr.api, "/v1/lisp/counters").is_some()
    });
    let Some(up) = up else {
        eprintln!(
            "vmmi demo: sessions did not come up in 15 s (ports 1179 and 4342 on 127.0.66.1-4 and API 50191-50194 must be free)"
        );
        return ExitCode::from(1);
    };
    for n in &ns[..3] {
        let lisp = if n.addr == g.addr {
            "   + LISP Map-Server/Map-Resolver on UDP 4342"
        } else {
            ""
        };
        println!(
            "  {:<9} AS {:<6} {}:1179   API {}{lisp}",
            n.name, n.asn, n.addr, n.api
        );
    }
    println!(
        "  {:<9} {:<9} {}:4342   API {}   LISP xTR, resolves through dc-gw",
        itr.name, "(no BGP)", itr.addr, itr.api
    );
    println!(
        "  eBGP dc1-vtep — dc-gw — dc2-vtep, L2VPN EVPN, VNI {VNI} (auto RD/RT), sessions Established after {}\n",
        ms(up).trim()
    );

    // 1. the VM appears in dc1
    let body = format!(r#"{{"vni":{VNI},"mac":"{MAC}","ip":"{IP}"}}"#);
    println!(
        "VM {MAC} / {IP} starts in dc1   (vmmi vm attach --vni {VNI} --mac {MAC} --ip {IP} on dc1-vtep)"
    );
    let t0 = Instant::now();
    if let Err(e) = post(a.api, "/v1/vm/attach", &body) {
        eprintln!("vmmi demo: attach on dc1-vtep: {e}");
        return ExitCode::from(1);
    }
    let at_b = until(t0, Duration::from_secs(5), || {
        mac_entry(b.api).is_some_and(|m| m["fdb"] == a.addr)
    });
    match at_b {
        Some(d) => println!(
            "  [{}] dc2-vtep forwards it to dc1 (type-2 route via dc-gw, no MAC Mobility community: first learn)\n",
            ms(d)
        ),
        None => {
            eprintln!("vmmi demo: dc2-vtep never learned the VM");
            return ExitCode::from(1);
        }
    }

    // 2. an ITR resolves the VM: its IP with a subscription, its MAC without
    println!(
        "An ITR looks the VM up   (on itr: vmmi lisp request --iid {VNI} {IP}/32 --subscribe; vmmi lisp request --iid {VNI} mac:{MAC})"
    );
    let tq = Instant::now();
    for req in [
        format!(r#"{{"eid":"iid:{VNI} {IP}/32","subscribe":true}}"#),
        format!(r#"{{"eid":"iid:{VNI} mac:{MAC}"}}"#),
    ] {
        if let Err(e) = post(itr.api, "/v1/lisp/request", &req) {
            eprintln!("vmmi demo: lisp request on itr: {e}");
            return ExitCode::from(1);
        }
    }
    let [ip_at, mac_at] = all_until(
        tq,
        [
            &mut || {
                itr_entry(itr.api, false)
                    .is_some_and(|e| points_at(&e, a.addr) && e["subscribed"] == true)
            },
            &mut || itr_entry(itr.api, true).is_some_and(|e| points_at(&e, a.addr)),
        ],
    );
    let (Some(ip_at), Some(mac_at)) = (ip_at, mac_at) else {
        eprintln!("vmmi demo: the ITR never resolved the VM through dc-gw");
        return ExitCode::from(1);
    };
    println!(
        "  [{}] itr's map-cache: [{VNI}] {IP} -> {} (ECM Map-Request to dc-gw, Map-Reply from the EVPN-fed mapping; subscribed, RFC 9437)",
        ms(ip_at),
        a.addr
    );
    println!(
        "  [{}] itr's map-cache: [{VNI}] {MAC} -> {} (Map-Reply; not subscribed: dc-gw remembers the ITR for an SMR)\n",
        ms(mac_at),
        a.addr
    );
    let (smr0, pub0) = (
        lisp_counter(g.api, "smr_tx"),
        lisp_counter(g.api, "publications_tx"),
    );

    // 3. the VM moves to dc2 (live migration; the orchestrator tells vmmi at once)
    println!("VM moves to dc2   (vmmi vm attach on dc2-vtep — works for a VM that sends no frame)");
    let (t1, wall1) = (Instant::now(), std::time::SystemTime::now());
    if let Err(e) = post(b.api, "/v1/vm/attach", &body) {
        eprintln!("vmmi demo: attach on dc2-vtep: {e}");
        return ExitCode::from(1);
    }
    let [done, itr_ip, itr_mac] = all_until(
        t1,
        [
            &mut || mac_entry(a.api).is_some_and(|m| m["fdb"] == b.addr && m["seq"] == 1),
            &mut || itr_entry(itr.api, false).is_some_and(|e| points_at(&e, b.addr)),
            &mut || itr_entry(itr.api, true).is_some_and(|e| points_at(&e, b.addr)),
        ],
    );
    let Some(done) = done else {
        eprintln!("vmmi demo: dc1-vtep did not follow the move");
        return ExitCode::from(1);
    };
    let (Some(itr_ip), Some(itr_mac)) = (itr_ip, itr_mac) else {
        eprintln!(
            "vmmi demo: the ITR's map-cache did not follow the move\n  itr map-cache: {}\n  dc-gw LISP counters: {}\n  itr LISP counters: {}\n  dc-gw registrations: {}",
            get(itr.api, "/v1/lisp/map-cache").unwrap_or_default(),
            get(g.api, "/v1/lisp/counters").unwrap_or_default(),
            get(itr.api, "/v1/lisp/counters").unwrap_or_default(),
            get(g.api, "/v1/lisp/registrations").unwrap_or_default()
        );
        return ExitCode::from(1);
    };
    std::thread::sleep(Duration::from_millis(20));
    let mut timeline: Vec<(Duration, String)> = Vec::new();
    for (who, n) in [("dc2-vtep", b), ("dc1-vtep", a), ("dc-gw", g)] {
        for (step, at) in steps(n.api, t1) {
            let what = match (who, step.as_str()) {
                ("dc2-vtep", "learned") => {
                    "dc2-vtep learns the VM (seq = highest seen + 1 = 1, RFC 7432 §15.1)"
                }
                ("dc2-vtep", "advertised") => {
                    "dc2-vtep sends the UPDATE (MAC and MAC+IP, MM seq 1)"
                }
                ("dc2-vtep", "old-withdrawn") => "dc2-vtep sees dc1's route withdrawn",
                ("dc2-vtep", "dataplane") => {
                    "dc2-vtep removes its remote entry (the VM is local now)"
                }
                ("dc1-vtep", "route-seen") => "dc1-vtep receives seq 1 from dc2 (via dc-gw)",
                ("dc1-vtep", "withdrawn") => {
                    "dc1-vtep withdraws its own route (a higher sequence won)"
                }
                ("dc1-vtep", "dataplane") => {
                    "dc1-vtep's FDB points the MAC at dc2 (one replace, no gap)"
                }
                ("dc-gw", "route-seen") => {
                    "dc-gw sees seq 1: its Map-Server moves the mapping to dc2 (the EVPN feed)"
                }
                _ => continue,
            };
            timeline.push((at, what.to_string()));
        }
    }
    timeline.push((
        done,
        "dc1-vtep's API shows the MAC at dc2 with sequence 1 (seen by polling)".into(),
    ));
    let via = |mac| {
        itr_entry(itr.api, mac)
            .and_then(|e| e["via"].as_str().map(str::to_string))
            .unwrap_or_else(|| "?".into())
    };
    timeline.push((
        itr_ip,
        format!(
            "itr's map-cache: {IP} at dc2 (via {}, i.e. the Map-Notify; seen by polling)",
            via(false)
        ),
    ));
    timeline.push((
        itr_mac,
        format!(
            "itr's map-cache: {MAC} at dc2 (via {}, after SMR -> SMR-invoked Map-Request; seen by polling)",
            via(true)
        ),
    ));
    // when dc-gw handed its publication and its SMR to the socket (its wall clock)
    let sent = get(g.api, "/v1/lisp/counters").unwrap_or_default();
    for (key, what) in [
        (
            "last_publication_unix_us",
            "dc-gw sends the publication (Map-Notify, RFC 9437 §6) to the subscribed ITR",
        ),
        (
            "last_smr_unix_us",
            "dc-gw sends the SMR to the ITR that asked for the MAC (RFC 9301 §6.1)",
        ),
    ] {
        let at = sent[key]
            .as_u64()
            .map(|us| std::time::UNIX_EPOCH + Duration::from_micros(us))
            .and_then(|t| t.duration_since(wall1).ok());
        if let Some(at) = at {
            timeline.push((at, what.to_string()));
        }
    }
    timeline.sort_by_key(|t| t.0);
    for (at, what) in &timeline {
        println!("  [{}] {what}", ms(*at));
    }
    let gw_routes = get(g.api, "/v1/routes?family=evpn")
        .and_then(|v| v.as_array().map(|a| a.len()))
        .unwrap_or(0);
    println!(
        "  dc-gw holds {gw_routes} EVPN routes (it relays them, and carries VNI {VNI} without a dataplane to feed its Map-Server)"
    );
    let smr = lisp_counter(g.api, "smr_tx").saturating_sub(smr0);
    let publ = lisp_counter(g.api, "publications_tx").saturating_sub(pub0);
    println!(
        "  dc-gw sent {publ} publication(s) (Map-Notify, RFC 9437 §6) and {smr} SMR(s) (RFC 9301 §6.6.2) for the move\n"
    );
    let dp = timeline
        .iter()
        .find(|t| t.1.starts_with("dc1-vtep's FDB"))
        .map(|t| t.0);
    println!(
        "summary: move converged — dc1 forwards to dc2 {} after the attach (API poll: {}); the ITR follows at {} (IP, publication) and {} (MAC, SMR); MAC Mobility sequence 1, dc1's route withdrawn; {} steps timed",
        dp.map(|d| ms(d).trim().to_string())
            .unwrap_or_else(|| "?".into()),
        ms(done).trim(),
        ms(itr_ip).trim(),
        ms(itr_mac).trim(),
        timeline.len()
    );
    ExitCode::SUCCESS
}
