//! EVPN move → SMR and pub/sub Map-Notify latency through the real daemon (issue 3's
//! performance item: p99 ≤ 1 ms on loopback).
//!
//! `cargo bench --bench lisp_move [-- OPTIONS]` spawns the `vmmi` binary cargo built for the
//! bench (the `bench` profile = release; `--vmmi PATH` or `VMMI_BIN` picks another) with a
//! generated config in a temporary directory, and plays every other party itself on 127.S.x.y
//! (S = 100 + pid % 100, another S if an address is taken):
//!
//! - a BGP speaker (`common/bgp_gen.rs`, vmmi's own codec) at 127.S.0.2, eBGP AS 65001 to vmmi
//!   (127.S.0.1:1179, AS 65000, passive), L2VPN EVPN;
//! - K ITRs, 127.S.(1 + k / 250).(1 + k % 250):4342, each a UDP socket;
//! - one subscriber xTR (RFC 9437) at 127.S.0.3:4342.
//!
//! vmmi: roles map-server + map-resolver, pubsub and smr on (RFC timers: SMRs at most one per
//! 3 s per ITR RLOC), one site (HMAC-SHA-256-128) covering `iid:100 10.77.0.0/16` and the
//! VNI's MACs, one L2 VNI 100 (IID = VNI), dataplane `memory`, the MAC Mobility state file in
//! the temporary directory (written after the loop turn's sends, as in production), DAD
//! effectively off (a bench moves the same MAC more often than 5 times in 180 s).
//!
//! Setup: N VMs (MAC 02:4c:…, IP 10.77.x.y) announced in type-2 routes (RT 65000:100, VXLAN
//! encapsulation, next hop VTEP X = 127.S.0.10, no MAC Mobility community = sequence 0); the
//! bench waits until the Map-Server has every IP EID (`/v1/lisp/registrations`). Then for each
//! VM v: ITR k = v % K sends a Map-Request for v's IP EID (ITR-RLOC = its address, Source-EID
//! = its own EID) and gets the Map-Reply, so vmmi's SMR tracker remembers it; the subscriber
//! sends a Map-Request with the N bit and an xTR-ID/Site-ID for v's EID, and acknowledges the
//! subscription's Map-Notify with a Map-Notify-Ack signed with the site key (vmmi binds an
//! xTR-ID that never registered to the only site, `pubsub_default_site`).
//!
//! A move: one UPDATE re-announcing VM v (same RD) with MAC Mobility sequence + 1 and the other
//! VTEP (X ↔ Y = 127.S.0.11) as next hop. t0 is read right before the TCP write; the SMR
//! (Source-EID = v's EID) is timed when ITR k's socket returns it, the Map-Notify (a record for
//! v's EID with the new RLOC and Map-Version = the sequence, RFC 9302 §6) when the
//! subscriber's does. The ITR answers the SMR as an ITR would, with an SMR-invoked Map-Request
//! through the Map-Resolver (RFC 9301 §6.1; answered, it registers the requester again); the
//! subscriber acknowledges every Map-Notify (RFC 9437 §6), so vmmi retransmits nothing (both
//! checked in vmmi's counters afterwards). Receive times are taken by one thread that waits on
//! every socket (a current-thread tokio runtime); a move with no SMR or no Map-Notify within
//! the timeout (100 ms) is counted lost.
//!
//! - closed loop: one move outstanding at a time — the next UPDATE leaves once the SMR, the
//!   Map-Notify and the Map-Reply to the SMR-invoked Map-Request are in (latency, no queueing);
//! - open loop (`--open-rate R`, default 2000/s under `cargo bench`): UPDATEs at fixed times
//!   whatever is outstanding, reported separately.
//!
//! ITR count and pacing: vmmi sends at most one SMR per ITR RLOC per 3 s (RFC 9301 §6.1, a
//! real limit the bench does not lower); a second SMR inside the interval waits in vmmi's queue
//! and would be measured as a 3 s "latency". So every VM has its own ITR (K = N, up to 8192
//! by default: the open-files limit here is 20,000, and K is capped at that limit − 256), VMs
//! move round-robin, and before each move the bench waits until the VM's ITR has had no SMR
//! for 3 s + 20 ms (time outside any measurement, reported as "paced"). With K = 8192 the
//! closed loop (≈ 7,000 moves/s here) goes through all ITRs in ≈ 1.2 s, then waits once, ≈ 1.8
//! s, for the first one, and the rest of its moves do not wait; the open loop's rate is capped
//! at K / 3.02 s so that it never has to. Each VM moves 10,000 / N ≈ 1–2 times per phase; only
//! its IP EID is requested and subscribed (its MAC EID changes too, and nobody asked for it),
//! so one move = one SMR + one Map-Notify.
//!
//! Output: a table (moves, lost, p50/p90/p99/max of UPDATE → SMR and UPDATE → Map-Notify, the
//! rate), the moves over 1 ms with their time in the loop, vmmi's LISP counters, and one JSON
//! line. `--daemon-log info,vmmi::runtime=debug,vmmi::turn=trace` also checks the daemon's log:
//! `runtime::run` marks each event-loop turn (`vmmi::turn`, before its one await), so the bench
//! can tell whether each move's SMR was sent in the turn that imported its UPDATE
//! (`turn_check`). `--no-state-file` runs vmmi without its MAC Mobility state file.
//!
//! Without `--bench` (`cargo test --benches`, the debug daemon) it is a self-check: 50 VMs, 50
//! ITRs, 50 closed-loop moves, 1 s timeout, the loop-turn check on, asserting that every move
//! produced its SMR and its Map-Notify with the new RLOC and Map-Version, in the UPDATE's loop
//! turn, that every Map-Notify verified with the site key, and that vmmi queued no SMR and
//! retransmitted no Map-Notify; no latency target (about 0.3 s in all).
//!
//! The daemon runs as a child process; a guard kills it (by PID) on every exit path, panics
//! included (`common/daemon.rs`, shared with `lisp_serve/`). Every wait is bounded. Each ITR
//! answers its SMR at once, so vmmi retransmits none (`smr_retransmits` is checked to be 0).
//!
//! Files: this one (addresses, config, the daemon, setup, report), `lisp_side.rs` (ITRs and the
//! subscriber), `moves.rs` (the BGP session and the two loops).

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::unwrap_used,
    clippy::expect_used
)] // a load generator: real sockets, threads, processes and time

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use vmmi::lisp::{EidPrefix, map_version};
use vmmi::wire::MacAddr;
use vmmi::wire::bgp::extcomm::RouteTarget;
use vmmi::wire::bgp::nlri::EvpnNlri;
use vmmi::wire::bgp::rd::RouteDistinguisher;
use vmmi::wire::bgp::{BgpCtx, Family, Message, UpdateMsg};
use vmmi::wire::lisp::auth::{AuthParams, sign, verify};
use vmmi::wire::lisp::{LispAddr, LispMsg, MapRequest, XtrTrailer, decode};

#[path = "../common/bgp_gen.rs"]
mod bgp_gen;
#[path = "../common/daemon.rs"]
mod daemon;
mod lisp_side;
mod moves;
use bgp_gen::{Framer, Opened, evpn_update, http_get, mac_ip_route, open_exchange, open_msg};
use daemon::{Daemon, TempDir, nofile, wait_for};
use lisp_side::*;
use moves::*;

const VNI: u32 = 100;
const VMMI_ASN: u32 = 65000;
const GEN_ASN: u32 = 65001;
const KEY: &str = "bench-key";
const SUB_XTR_ID: u128 = 0x5ab5_c71b_e700_0000_0000_0000_0000_0001;
/// vmmi's per-RLOC SMR interval (RFC 9301 §6.1, `LispTimers::smr_interval`), and the margin
/// the bench adds before soliciting the same ITR again.
const SMR_INTERVAL: Duration = Duration::from_secs(3);
const SMR_MARGIN: Duration = Duration::from_millis(20);
/// Requests / subscriptions outstanding at once during setup (socket buffers stay small).
const SETUP_WINDOW: usize = 256;

#[derive(Parser, Debug)]
#[command(
    name = "lisp_move",
    about = "EVPN move -> SMR / Map-Notify latency through vmmi"
)]
struct Cli {
    /// The vmmi binary (default: the one cargo built for this bench; env VMMI_BIN).
    #[arg(long, env = "VMMI_BIN")]
    vmmi: Option<PathBuf>,
    /// Closed-loop moves (default 10,000 under `cargo bench`, else 50).
    #[arg(long)]
    moves: Option<usize>,
    /// Open-loop moves (default = --moves under `cargo bench`, else 0).
    #[arg(long)]
    open_moves: Option<usize>,
    /// Open-loop rate, moves/s (capped at ITRs / 3.02 s).
    #[arg(long, default_value_t = 2000.0)]
    open_rate: f64,
    /// VMs (default = ITRs).
    #[arg(long)]
    vms: Option<usize>,
    /// ITR sockets (default: 8192 under `cargo bench`, capped by the open-files limit; else 50).
    #[arg(long)]
    itrs: Option<usize>,
    /// A move with no SMR or Map-Notify after this long is lost (default 100 ms; 1 s in the
    /// self-check).
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// The daemon's VMMI_LOG filter (its log is in the temporary directory). With
    /// `vmmi::runtime=debug,vmmi::turn=trace` the log is also checked for each move's loop
    /// turn. Default: info; `info,vmmi::runtime=debug,vmmi::turn=trace` in the self-check.
    #[arg(long)]
    daemon_log: Option<String>,
    /// Run vmmi without its MAC Mobility state file (`[mobility] state_file = ""`), to see what
    /// the once-a-second write costs the moves that arrive during it.
    #[arg(long)]
    no_state_file: bool,
    /// Keep the temporary directory (config, daemon log).
    #[arg(long)]
    keep: bool,
    /// Fail unless the closed-loop p99 of both is at most this many ms.
    #[arg(long)]
    target_p99_ms: Option<f64>,
}

// ---------------------------------------------------------------------------------------------
// addresses

#[derive(Clone, Copy)]
struct Plan {
    s: u8,
    vms: usize,
    itrs: usize,
}

impl Plan {
    fn ip(&self, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, self.s, c, d)
    }
    fn vmmi(&self) -> Ipv4Addr {
        self.ip(0, 1)
    }
    fn gen_ip(&self) -> Ipv4Addr {
        self.ip(0, 2)
    }
    fn sub(&self) -> Ipv4Addr {
        self.ip(0, 3)
    }
    fn vtep(&self, seq: u32) -> Ipv4Addr {
        // sequence 0, 2, 4 … at X, 1, 3 … at Y
        self.ip(0, 10 + (seq % 2) as u8)
    }
    fn itr(&self, k: usize) -> Ipv4Addr {
        self.ip(1 + (k / 250) as u8, 1 + (k % 250) as u8)
    }
    fn lisp(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.vmmi()), 4342)
    }
    fn api(&self) -> String {
        format!("{}:50179", self.vmmi())
    }
    fn rd(&self) -> RouteDistinguisher {
        format!("{}:{VNI}", self.gen_ip()).parse().unwrap()
    }
}

fn vm_ip(v: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(
        u32::from(Ipv4Addr::new(10, 77, 0, 0)) + v as u32,
    ))
}

fn vm_mac(v: usize) -> MacAddr {
    let [a, b, c, d] = (v as u32).to_be_bytes();
    MacAddr([0x02, 0x4c, a, b, c, d])
}

fn vm_eid(v: usize) -> EidPrefix {
    EidPrefix::host(VNI, vm_ip(v))
}

/// ITR k's own EID (the Source-EID of its Map-Requests).
fn itr_eid(k: usize) -> EidPrefix {
    EidPrefix::host(
        VNI,
        IpAddr::V4(Ipv4Addr::from(
            u32::from(Ipv4Addr::new(10, 78, 0, 0)) + k as u32,
        )),
    )
}

fn params() -> AuthParams {
    AuthParams {
        key_id: 0,
        alg_id: 2,
        truncate: true,
        legacy_key_id: false,
    }
}

fn config(p: &Plan, state_file: &str) -> String {
    format!(
        r#"# generated by benches/lisp_move/main.rs
[global]
asn = {VMMI_ASN}
router_id = "{ms}"
listen = ["{ms}:1179"]
vtep = "{ms}"

[[neighbor]]
address = "{gen}"
remote_asn = {GEN_ASN}
families = ["l2vpn-evpn"]
passive = true

[[vni]]
vni = {VNI}

# a bench moves each MAC more often than duplicate-address detection allows (5 in 180 s)
[mobility]
dad_max_moves = 1000000
dad_window_secs = 1
state_file = "{state_file}"

[lisp]
roles = ["map-server", "map-resolver"]
listen = "{ms}:4342"
pubsub = true
smr = true

[[lisp.site]]
name = "bench"
key = "{KEY}"
auth = "hmac-sha256-128"
eids = ["iid:{VNI} 10.77.0.0/16", "iid:{VNI} mac:any"]

[dataplane]
kind = "memory"

[api]
listen = "{api}"
"#,
        ms = p.vmmi(),
        gen = p.gen_ip(),
        api = p.api(),
    )
}

// ---------------------------------------------------------------------------------------------
// the daemon

// ---------------------------------------------------------------------------------------------
// setup

/// Binds the subscriber and the K ITR sockets on 127.S.x.y:4342, trying a few S.
fn bind_all(vms: usize, itrs: usize) -> Result<(Plan, Vec<UdpSocket>, UdpSocket), String> {
    let base = 100 + (std::process::id() % 100) as u8;
    let mut last = String::new();
    for t in 0..8u8 {
        let s = 100 + (base - 100 + t * 13) % 100;
        let p = Plan { s, vms, itrs };
        let bind = |ip: Ipv4Addr, rcvbuf: usize| -> Result<UdpSocket, String> {
            let sock = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::DGRAM,
                Some(socket2::Protocol::UDP),
            )
            .map_err(|e| e.to_string())?;
            let _ = sock.set_recv_buffer_size(rcvbuf);
            sock.bind(&SocketAddr::new(IpAddr::V4(ip), 4342).into())
                .map_err(|e| format!("bind {ip}:4342: {e}"))?;
            Ok(sock.into())
        };
        // vmmi's own addresses must be free too (it binds 4342 and 1179 on 127.S.0.1)
        let probe = bind(p.vmmi(), 0).and_then(|_| {
            std::net::TcpListener::bind((p.vmmi(), 1179))
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        let r = probe.and_then(|()| {
            let sub = bind(p.sub(), 4 << 20)?;
            let v: Vec<UdpSocket> = (0..itrs)
                .map(|k| bind(p.itr(k), 1 << 16))
                .collect::<Result<_, _>>()?;
            Ok((v, sub))
        });
        match r {
            Ok((v, sub)) => return Ok((p, v, sub)),
            Err(e) => last = e,
        }
    }
    Err(format!("no free 127.S.0.0/16 block: {last}"))
}

fn spawn_daemon(
    bin: &Path,
    dir: &Path,
    p: &Plan,
    log_filter: &str,
    state_file: bool,
) -> Result<Daemon, String> {
    let state = if state_file {
        dir.join("mobility.json").display().to_string()
    } else {
        String::new()
    };
    daemon::spawn(bin, dir, &config(p, &state), &p.api(), log_filter, None)
}

fn api_json(p: &Plan, path: &str) -> Result<Value, String> {
    daemon::api_json(&p.api(), path)
}

/// Announces every VM at VTEP X (sequence 0) and waits until the Map-Server has their EIDs.
fn announce_all(p: &Plan, bgp: &mut Bgp, d: &mut Daemon) -> Result<(), String> {
    let mut out = Vec::new();
    for chunk in (0..p.vms).collect::<Vec<_>>().chunks(100) {
        let routes = chunk.iter().map(|v| announce(p, *v)).collect();
        evpn_update(GEN_ASN, rt(), None, p.vtep(0), routes).encode(&bgp.ctx, &mut out);
    }
    Message::Update(UpdateMsg::eor(Family::L2VPN_EVPN)).encode(&bgp.ctx, &mut out);
    bgp.write(&out)?;
    let want = p.vms;
    wait_for(Duration::from_secs(60), d, || {
        let v = api_json(p, "/v1/lisp/registrations").ok()?;
        let n = v
            .as_array()?
            .iter()
            .filter(|r| {
                r["eid"].as_str().is_some_and(|e| e.contains("10.77."))
                    && r["rlocs"] == json!([p.vtep(0).to_string()])
            })
            .count();
        (n >= want).then_some(())
    })
    .map_err(|e| format!("vmmi did not register the {want} VM EIDs: {e}"))
}

/// `send(i)` for i in 0..n, at most `SETUP_WINDOW` unanswered, until `answered(i)`; retries
/// the unanswered twice. Errors name how many never were.
fn windowed(
    what: &str,
    n: usize,
    lisp: &LispSide,
    mut send: impl FnMut(usize, u32),
    mut on_event: impl FnMut(Ev) -> Option<usize>,
) -> Result<(), String> {
    let mut answered = vec![false; n];
    for attempt in 0..3u32 {
        let todo: Vec<usize> = (0..n).filter(|i| !answered[*i]).collect();
        if todo.is_empty() {
            return Ok(());
        }
        for w in todo.chunks(SETUP_WINDOW) {
            for &i in w {
                send(i, attempt);
            }
            let end = Instant::now() + Duration::from_secs(5);
            while w.iter().any(|i| !answered[*i]) {
                let Some(left) = end.checked_duration_since(Instant::now()) else {
                    break;
                };
                if let Ok(e) = lisp.ev.recv_timeout(left)
                    && let Some(i) = on_event(e)
                    && let Some(a) = answered.get_mut(i)
                {
                    *a = true;
                }
            }
        }
    }
    let missing = answered.iter().filter(|a| !**a).count();
    if missing == 0 {
        Ok(())
    } else {
        Err(format!("{what}: {missing} of {n} unanswered"))
    }
}

fn vm_of(p: &Plan, e: &EidPrefix) -> Option<usize> {
    match e.ip()? {
        IpAddr::V4(a) => {
            let v = u32::from(a).checked_sub(u32::from(Ipv4Addr::new(10, 77, 0, 0)))? as usize;
            (v < p.vms && e.is_host() && e.iid() == VNI).then_some(v)
        }
        IpAddr::V6(_) => None,
    }
}

/// Every ITR asks for its VMs (SMR tracking), the subscriber subscribes to every VM.
fn lisp_setup(p: &Plan, lisp: &LispSide) -> Result<(), String> {
    let x = IpAddr::V4(p.vtep(0));
    windowed(
        "Map-Requests",
        p.vms,
        lisp,
        |v, attempt| {
            let k = v % p.itrs;
            let nonce = (u64::from(attempt) << 40) | v as u64;
            lisp.send(
                Via::Itr(k),
                map_request(vm_eid(v), p.itr(k), Some(itr_eid(k)), nonce, false, None),
            )
        },
        |e| match e {
            Ev::Reply { records, .. } => records
                .iter()
                .find(|r| r.rlocs == [x])
                .and_then(|r| vm_of(p, r.eid.as_ref()?)),
            _ => None,
        },
    )?;
    windowed(
        "subscriptions",
        p.vms,
        lisp,
        |v, attempt| {
            // RFC 9437 §5: the nonce must grow per (xTR-ID, EID-prefix)
            let nonce = 1 + u64::from(attempt);
            let xtr = XtrTrailer {
                xtr_id: SUB_XTR_ID,
                site_id: Some(1),
            };
            lisp.send(
                Via::Sub,
                map_request(vm_eid(v), p.sub(), None, nonce, false, Some(xtr)),
            )
        },
        |e| match e {
            Ev::Notify {
                auth_ok: true,
                records,
                ..
            } => records
                .iter()
                .find(|r| r.rlocs == [x])
                .and_then(|r| vm_of(p, r.eid.as_ref()?)),
            _ => None,
        },
    )?;
    Ok(())
}

/// What the daemon's log says about each move's loop turn. Only the SMR is located: the
/// publication's `map-notify-sent` names no EID, and both are queued by the same
/// `Lisp::set_mapping` call (publication first), so they leave in the same `flush`.
struct Turns {
    /// Moves whose UPDATE import (dataplane op) and SMR were both found.
    checked: usize,
    /// ... of which the SMR was logged in a later turn.
    mixed: usize,
    first_mixed: Option<String>,
}

/// The daemon's own log, `vmmi::runtime` at debug and `vmmi::turn` at trace: `runtime::run`
/// logs `vmmi::turn` right before the one await of its event loop, so the lines between two
/// such markers are one loop turn: a BGP frame handled (up to 256 at once), then `Vtep::pump`
/// (the EVPN import logs each dataplane op), `LispShell::mappings` and `LispShell::flush` (each
/// LISP event is logged as its datagram is queued on the socket). A move is in one turn when
/// its `dataplane op=Fdb` line and its `smr-sent` line have no marker between them. `None`:
/// the log has no markers (another filter).
fn turn_check(log: &str, p: &Plan) -> Option<Turns> {
    if !log.contains("vmmi::turn") || !log.contains("dataplane op=") {
        return None;
    }
    let ip_of: HashMap<String, String> = (0..p.vms)
        .map(|v| (vm_mac(v).to_string(), vm_ip(v).to_string()))
        .collect();
    let mut t = Turns {
        checked: 0,
        mixed: 0,
        first_mixed: None,
    };
    // moves whose dataplane op is logged and SMR not yet: IP -> the turn of the op
    let mut open: HashMap<&str, u64> = HashMap::new();
    let mut turn = 0u64;
    for l in log.lines() {
        if l.contains("vmmi::turn") {
            turn += 1;
        } else if let Some(rest) = l.split(&format!("op=Fdb {{ vni: {VNI}, mac: ")).nth(1) {
            let mac = rest.split(',').next().unwrap_or("");
            if let Some(ip) = ip_of.get(mac) {
                open.insert(ip.as_str(), turn);
            }
        } else if l.contains("\"smr-sent\"") {
            // `"eid":"[IID] IP/32"`
            let ip = l
                .split("\"eid\":\"[")
                .nth(1)
                .and_then(|r| r.split("] ").nth(1))
                .and_then(|r| r.split('/').next())
                .unwrap_or("");
            if let Some(at) = open.remove(ip) {
                t.checked += 1;
                if at != turn {
                    t.mixed += 1;
                    t.first_mixed.get_or_insert_with(|| {
                        format!("{ip}: imported in turn {at}, SMR in turn {turn}")
                    });
                }
            }
        }
    }
    Some(t)
}

// ---------------------------------------------------------------------------------------------
// main

struct Report {
    closed: Lat,
    open: Option<(f64, Lat)>,
    counters: Value,
    send_errors: Option<u64>,
    warnings: Vec<String>,
    turns: Option<Turns>,
    others: Vec<String>,
    auth_failures: usize,
    plan: Plan,
    bin: PathBuf,
}

fn run(cli: &Cli, full: bool) -> Result<Report, String> {
    let bin = cli
        .vmmi
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vmmi")));
    let moves = cli.moves.unwrap_or(if full { 10_000 } else { 50 });
    let open_moves = cli.open_moves.unwrap_or(if full { moves } else { 0 });
    let limit = nofile().unwrap_or(1024).saturating_sub(256).max(16);
    let itrs = cli
        .itrs
        .unwrap_or(if full { 8192 } else { 50 })
        .min(limit)
        .clamp(1, 250 * 254);
    let vms = cli.vms.unwrap_or(itrs).clamp(1, 65_000);
    let timeout = Duration::from_millis(cli.timeout_ms.unwrap_or(if full { 100 } else { 1000 }));

    let (plan, itr_socks, sub) = bind_all(vms, itrs)?;
    let dir = TempDir::new("vmmi-lisp-move", cli.keep)?;
    let filter = cli.daemon_log.clone().unwrap_or_else(|| {
        if full {
            "info".into()
        } else {
            "info,vmmi::runtime=debug,vmmi::turn=trace".into()
        }
    });
    let mut daemon = spawn_daemon(&bin, &dir.path, &plan, &filter, !cli.no_state_file)?;
    let lisp = start_lisp_side(plan, itr_socks, sub)?;
    let mut bgp = Bgp::connect(&plan)?;
    announce_all(&plan, &mut bgp, &mut daemon)?;
    lisp_setup(&plan, &lisp)?;
    // let the last setup acknowledgements land
    std::thread::sleep(Duration::from_millis(50));
    while lisp.ev.try_recv().is_ok() {}
    daemon.alive()?;

    let mut r = Run {
        p: plan,
        bgp: &mut bgp,
        lisp: &lisp,
        seq: vec![0; vms],
        ready: vec![Instant::now(); itrs],
        timeout,
        others: Vec::new(),
        auth_failures: 0,
    };
    let closed = r.closed_loop(moves, 0)?;
    let open = if open_moves > 0 {
        let cap = itrs as f64 / (SMR_INTERVAL + SMR_MARGIN).as_secs_f64();
        let rate = cli.open_rate.min(cap).max(1.0);
        let lat = r.open_loop(open_moves, moves % vms, rate)?;
        Some((rate, lat))
    } else {
        None
    };
    let (others, auth_failures) = (std::mem::take(&mut r.others), r.auth_failures);
    // let the last acknowledgements land before reading the counters
    std::thread::sleep(Duration::from_millis(100));
    daemon.alive()?;
    let counters = api_json(&plan, "/v1/lisp/counters")?;
    let metrics = http_get(&format!("{}/metrics", plan.api()), Duration::from_secs(5))?;
    let send_errors = metrics
        .lines()
        .find(|l| l.starts_with("vmmi_lisp_send_errors"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok());
    let log = std::fs::read_to_string(&daemon.log).unwrap_or_default();
    let warnings = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .take(10)
        .map(str::to_string)
        .collect();
    let turns = turn_check(&log, &plan);
    drop(bgp);
    drop(lisp);
    drop(daemon);
    Ok(Report {
        closed,
        open,
        counters,
        send_errors,
        warnings,
        others,
        auth_failures,
        turns,
        plan,
        bin,
    })
}

fn print(rep: &Report, full: bool) {
    let p = &rep.plan;
    println!(
        "LISP move benchmark ({}): EVPN UPDATE with MAC Mobility seq+1 -> SMR and pub/sub Map-Notify leaving vmmi",
        if full {
            "full"
        } else {
            "self-check, run with --bench"
        }
    );
    println!(
        "vmmi {}; {} VMs, {} ITRs, 1 subscriber xTR ({} subscriptions), loopback 127.{}.0.0/16",
        rep.bin.display(),
        p.vms,
        p.itrs,
        p.vms,
        p.s
    );
    println!();
    println!(
        "| {:<44} | {:>6} | {:>4} | {:>8} | {:>8} | {:>8} | {:>8} | {:>9} |",
        "UPDATE -> (ms)", "moves", "lost", "p50", "p90", "p99", "max", "moves/s"
    );
    println!(
        "|{:-<46}|{:->8}|{:->6}|{:->10}|{:->10}|{:->10}|{:->10}|{:->11}|",
        "", "", "", "", "", "", "", ""
    );
    let mut rows = vec![("closed loop".to_string(), &rep.closed)];
    if let Some((rate, l)) = &rep.open {
        rows.push((format!("open loop {rate:.0}/s"), l));
    }
    for (name, l) in rows {
        for (what, v, lost) in [
            ("SMR at the ITR", &l.smr, l.smr_lost),
            ("Map-Notify at the subscriber", &l.notify, l.notify_lost),
        ] {
            println!(
                "| {:<44} | {:>6} | {:>4} | {:>8} | {:>8} | {:>8} | {:>8} | {:>9.0} |",
                format!("{name}: {what}"),
                l.moves,
                lost,
                ms(pct(v, 0.5)),
                ms(pct(v, 0.9)),
                ms(pct(v, 0.99)),
                ms(pct(v, 1.0)),
                l.rate()
            );
        }
    }
    println!();
    for (name, l) in [
        ("closed", Some(&rep.closed)),
        ("open", rep.open.as_ref().map(|x| &x.1)),
    ] {
        if let Some(l) = l {
            println!(
                "{name} loop: {:.2} s, {} moves waited {:.0} ms in all for an ITR's 3 s SMR interval, {} wrong Map-Notify records",
                l.elapsed.as_secs_f64(),
                l.paced_moves,
                l.paced.as_secs_f64() * 1e3,
                l.wrong
            );
            for Slow(at, n, ds, dn, waited) in &l.slow {
                println!(
                    "  over 1 ms: move {n} at {at:.3} s: SMR {} ms, Map-Notify {} ms{}",
                    ms(*ds),
                    ms(*dn),
                    if *waited {
                        ", right after a pacing wait"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    let c = &rep.counters;
    println!(
        "vmmi counters: smr_tx {} smr_queued {} smr_dropped {} smr_retransmits {} publications_tx {} map_notifies_tx {} map_notify_retransmits {} map_notify_acks_rx {} map_replies_tx {} rx_dropped {} send_errors {}",
        c["smr_tx"],
        c["smr_queued"],
        c["smr_dropped"],
        c["smr_retransmits"],
        c["publications_tx"],
        c["map_notifies_tx"],
        c["map_notify_retransmits"],
        c["map_notify_acks_rx"],
        c["map_replies_tx"],
        c["rx_dropped"],
        rep.send_errors.map_or("?".into(), |n| n.to_string())
    );
    match &rep.turns {
        Some(t) => println!(
            "daemon log (loop turns): {} moves checked, {} whose SMR left in a later turn than the one that imported the UPDATE",
            t.checked, t.mixed
        ),
        None => println!(
            "daemon log: loop turns not checked (run with --daemon-log info,vmmi::runtime=debug,vmmi::turn=trace)"
        ),
    }
    for w in &rep.warnings {
        println!("daemon: {w}");
    }
    for o in &rep.others {
        println!("unexpected: {o}");
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{}",
        json!({"bench": "lisp_move", "mode": if full {"full"} else {"self-check"},
               "vms": p.vms, "itrs": p.itrs, "closed": rep.closed.json(),
               "open": rep.open.as_ref().map(|(r, l)| { let mut j = l.json(); j["rate"] = json!(r); j }),
               "vmmi_counters": {"smr_tx": c["smr_tx"], "smr_queued": c["smr_queued"],
                   "publications_tx": c["publications_tx"],
                   "map_notify_retransmits": c["map_notify_retransmits"],
                   "rx_dropped": c["rx_dropped"], "send_errors": rep.send_errors},
               "loop_turns": rep.turns.as_ref().map(|t| json!({"checked": t.checked, "mixed": t.mixed})),
               "loadavg": load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")})
    );
}

/// The self-check's assertions (and the full run's, but for latency).
fn check(rep: &Report, cli: &Cli) -> Result<(), String> {
    let mut errs = Vec::new();
    let all = std::iter::once(&rep.closed).chain(rep.open.as_ref().map(|x| &x.1));
    for l in all {
        if l.smr_lost + l.notify_lost + l.wrong > 0 {
            errs.push(format!(
                "{} SMRs and {} Map-Notifies lost, {} wrong records; first: {}",
                l.smr_lost,
                l.notify_lost,
                l.wrong,
                l.first_problem.as_deref().unwrap_or("-")
            ));
        }
    }
    let c = &rep.counters;
    for k in [
        "smr_queued",
        "smr_dropped",
        "smr_retransmits",
        "map_notify_retransmits",
    ] {
        if c[k].as_u64() != Some(0) {
            errs.push(format!("vmmi counter {k} = {}", c[k]));
        }
    }
    if let Some(t) = &rep.turns {
        let moves = rep.closed.moves + rep.open.as_ref().map_or(0, |x| x.1.moves);
        if t.mixed > 0 || t.checked < moves {
            errs.push(format!(
                "daemon log: {} of {moves} moves checked, {} not in one loop turn; first:\n{}",
                t.checked,
                t.mixed,
                t.first_mixed.as_deref().unwrap_or("-")
            ));
        }
    }
    if !rep.others.is_empty() {
        errs.push(format!("unexpected datagrams: {:?}", rep.others));
    }
    if rep.auth_failures > 0 {
        errs.push(format!(
            "{} Map-Notifies failed HMAC verification",
            rep.auth_failures
        ));
    }
    if let Some(t) = cli.target_p99_ms {
        for (what, v) in [("SMR", &rep.closed.smr), ("Map-Notify", &rep.closed.notify)] {
            let p99 = pct(v, 0.99).map_or(f64::INFINITY, |d| d.as_secs_f64() * 1e3);
            if p99 > t {
                errs.push(format!(
                    "closed-loop UPDATE -> {what} p99 {p99:.3} ms > {t} ms"
                ));
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n"))
    }
}

fn main() {
    // `cargo bench` passes --bench to harness=false targets; `cargo test --benches` passes nothing
    let raw: Vec<String> = std::env::args().collect();
    let full = raw.iter().any(|a| a == "--bench");
    let args: Vec<String> = raw.into_iter().filter(|a| a != "--bench").collect();
    let cli = Cli::parse_from(args);
    let r = run(&cli, full).and_then(|rep| {
        print(&rep, full);
        check(&rep, &cli)
    });
    if let Err(e) = r {
        eprintln!("lisp_move: {e}");
        std::process::exit(1);
    }
}
