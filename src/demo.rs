//! `vmmi demo`: three vmmi speakers in this process on loopback, over real TCP sessions — a
//! VTEP in data center 1 (AS 65001), a VTEP in data center 2 (AS 65002) and a DC gateway
//! between them (AS 65000, eBGP to both) — a VM attached in dc1, then moved to dc2; prints
//! the timeline with the time of each step, measured, and a summary line.
//!
//! Owns: the demo's configs, driving the daemons through their API (as an orchestrator would)
//! and the printout. Must not: reach into the daemons — everything it shows comes from their
//! API (`/v1/macs`, `/v1/moves`), as `vmmi show` would see it.
//! Absent: the LISP Map-Server/ITR pair of INTERFACE.md's demo (the LISP control plane is not
//! built yet) and `--netns` (real kernel VXLAN; `conformance/e2e/vxlan.sh` does that as a test).

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

struct Node {
    name: &'static str,
    asn: u32,
    addr: &'static str,
    api: SocketAddr,
}

fn nodes() -> [Node; 3] {
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
    ]
}

fn config(n: &Node, state: &std::path::Path) -> String {
    let gw = "127.0.66.3";
    let neighbors = if n.addr == gw {
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
    let vni = if n.addr == gw {
        "[dataplane]\nkind = \"none\"\n".to_string()
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
        Ok((200, _)) => Ok(()),
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

pub fn run(netns: bool) -> ExitCode {
    if netns {
        eprintln!(
            "vmmi demo --netns: not built yet — the kernel VXLAN version of the demo runs as the \
             test conformance/e2e/vxlan.sh (root); `vmmi demo` runs the same move on loopback"
        );
        return ExitCode::from(2);
    }
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
        "vmmi demo — a VM moves between two data centers; three vmmi speakers in this process,"
    );
    println!("real BGP sessions on loopback, driven through their API as an orchestrator would.\n");
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

fn drive(ns: &[Node; 3], started: Instant) -> ExitCode {
    let [a, b, g] = ns;
    let up = until(started, Duration::from_secs(15), || {
        ns.iter().all(|n| {
            get(n.api, "/v1/neighbors")
                .and_then(|v| v.as_array().cloned())
                .is_some_and(|v| !v.is_empty() && v.iter().all(|p| p["state"] == "Established"))
        })
    });
    let Some(up) = up else {
        eprintln!(
            "vmmi demo: sessions did not come up in 15 s (ports 1179 on 127.0.66.1-3 and API 50191-50193 must be free)"
        );
        return ExitCode::from(1);
    };
    for n in ns {
        println!(
            "  {:<9} AS {:<6} {}:1179   API {}",
            n.name, n.asn, n.addr, n.api
        );
    }
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

    // 2. the VM moves to dc2 (live migration; the orchestrator tells vmmi at once)
    println!("VM moves to dc2   (vmmi vm attach on dc2-vtep — works for a VM that sends no frame)");
    let t1 = Instant::now();
    if let Err(e) = post(b.api, "/v1/vm/attach", &body) {
        eprintln!("vmmi demo: attach on dc2-vtep: {e}");
        return ExitCode::from(1);
    }
    let done = until(t1, Duration::from_secs(5), || {
        mac_entry(a.api).is_some_and(|m| m["fdb"] == b.addr && m["seq"] == 1)
    });
    let Some(done) = done else {
        eprintln!("vmmi demo: dc1-vtep did not follow the move");
        return ExitCode::from(1);
    };
    std::thread::sleep(Duration::from_millis(20));
    let mut timeline: Vec<(Duration, String)> = Vec::new();
    for (who, n) in [("dc2-vtep", b), ("dc1-vtep", a)] {
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
                _ => continue,
            };
            timeline.push((at, what.to_string()));
        }
    }
    timeline.push((
        done,
        "dc1-vtep's API shows the MAC at dc2 with sequence 1 (seen by polling)".into(),
    ));
    timeline.sort_by_key(|t| t.0);
    for (at, what) in &timeline {
        println!("  [{}] {what}", ms(*at));
    }
    let gw_routes = get(g.api, "/v1/routes?family=evpn")
        .and_then(|v| v.as_array().map(|a| a.len()))
        .unwrap_or(0);
    println!("  dc-gw holds {gw_routes} EVPN routes (relays, no dataplane)");
    println!(
        "  LISP Map-Notify / SMR to ITRs: not in this build (the LISP control plane is issue 3)\n"
    );
    let dp = timeline
        .iter()
        .find(|t| t.1.starts_with("dc1-vtep's FDB"))
        .map(|t| t.0);
    println!(
        "summary: move converged — dc1 forwards to dc2 {} after the attach (API poll: {}), MAC Mobility sequence 1, dc1's route withdrawn; {} steps timed",
        dp.map(|d| ms(d).trim().to_string())
            .unwrap_or_else(|| "?".into()),
        ms(done).trim(),
        timeline.len()
    );
    ExitCode::SUCCESS
}
