//! Map-Request service rate and pub/sub fan-out through the real daemon on loopback (issue 3:
//! "Map-Request service rate on one core ... Target ≥ 500 k/s"; "fan-out of one change to
//! 10,000 subscribers ≤ 100 ms").
//!
//! `cargo bench --bench lisp_serve [-- OPTIONS]` spawns the `vmmi` cargo built for the bench
//! (`--vmmi PATH` / `VMMI_BIN` for another) under `taskset -c 0` — the daemon, all its
//! threads, on CPU 0 — as Map-Server + Map-Resolver (pubsub on, RFC timers and default limits,
//! Map-Reply rate limit 10,000/s per ITR RLOC) with one site (HMAC-SHA-256-128) covering
//! `iid:100 10.77.0.0/16`; the bench pins its one thread to CPU 1 and plays everyone else on
//! 127.S.0.0/16 (S = 100 + pid % 100, another S if taken):
//!
//! - a registrar at 127.S.0.5:4342 registers N VMs (`iid:100 10.77.x.y/32`, VM v at RLOC
//!   192.0.2.(1 + v % 200)) with proxy-reply Map-Registers (P bit, 10 records each) and waits
//!   for each solicited Map-Notify;
//! - X sockets 127.S.(10 + j / 250).(1 + j % 250):4342, each connected to vmmi, one epoll set
//!   over all: the first K are the ITRs of the service rows, the first S the subscribers.
//!
//! Service rows: ITR k sends Map-Requests (ITR-RLOC = its address; every other one inside an
//! ECM with inner source port 4342, as an ITR sends to a Map-Resolver, RFC 9301 §5.8) for VMs
//! spread over all N, 16 per `sendmmsg`, with at most W outstanding, paced to the row's offered
//! rate (or as fast as the window allows). Each nonce names its slot; a reply must match an
//! outstanding nonce and, the first time a VM is answered, decode to the VM's EID and RLOC (the
//! record bytes are compared after that). A request unanswered after 50 ms is lost. Each row:
//! 1 s warm-up, then 5 s measured (requests sent in it, their replies whenever they come, their
//! latency from the `sendmmsg` to the receive). The daemon's CPU time over the 5 s (all its
//! threads, `/proc/PID/task/*/schedstat`) and the generator thread's are printed with the
//! daemon's CPU time per reply and the rate one whole CPU would serve at that cost: on this
//! 2-CPU machine other work shares vmmi's CPU, which lowers replies/s but not the cost per
//! reply. When the window is full, latency is the queue (W / rate, Little's law), not service.
//!
//! The Map-Reply rate limit (RFC 9301 §5.4, `LispLimits::map_replies_per_rloc`, 10,000/s per
//! ITR RLOC with a bucket as deep) is left on: the rows spread the load over K = 4096 ITRs (≈ 122
//! requests/s each at 500k/s, far below it), and one row sends 200k/s from 16 ITRs to show it:
//! at most 16 × 10,000 replies/s once the buckets are empty, the rest dropped
//! (`replies_rate_limited`, lost here) — when vmmi can serve more than that at all.
//!
//! Fan-out: S = 10,000 subscribers (xTR-IDs …0001 + j, never registered: vmmi binds them to the
//! only site, `pubsub_default_site`; each a fresh random first nonce, RFC 9437 §5, or all 1
//! with `--shared-nonce`) subscribe to one more VM's EID and acknowledge the
//! confirmation; then the registrar re-registers that VM at another RLOC, and the bench times
//! from that Map-Register's send until every subscriber has received its publication (timed
//! when `recv` returns it: the generator checks each HMAC with the site key and the new RLOC
//! and sends the Map-Notify-Ack only while no datagram is waiting, so its own crypto does not
//! delay the arrivals it times), and until it has sent every Map-Notify-Ack; and the daemon's
//! CPU time for all of it.
//!
//! Without `--bench` (`cargo test --benches`, the debug daemon, no pinning) it is a self-check:
//! 200 VMs, 32 ITRs, one paced row, 200 subscribers; it asserts no reply lost or wrong, every
//! publication received, verified and acknowledged, vmmi retransmitting none.
//!
//! Files: this one (plan, config, setup, report), `load.rs` (sockets, the rows), `fanout.rs`,
//! `msgs.rs` (message builders). The daemon plumbing is `common/daemon.rs`, shared with
//! `lisp_move/`.

#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    clippy::unwrap_used,
    clippy::expect_used
)] // a load generator: real sockets, processes and time

use std::io::IoSlice;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use vmmi::lisp::EidPrefix;
use vmmi::wire::lisp::auth::{AuthParams, sign, verify};
use vmmi::wire::lisp::{
    Bits, Ecm, EidRecord, InnerIp, Ipv4Header, LispAddr, LispMsg, Locator, MapRegister, MapRequest,
    XtrTrailer, decode,
};

#[path = "../common/bgp_gen.rs"]
mod bgp_gen;
#[path = "../common/daemon.rs"]
mod daemon;
mod fanout;
mod load;
mod msgs;
use daemon::{Daemon, TempDir, nofile, wait_for};
use fanout::*;
use load::*;
use msgs::*;

const VNI: u32 = 100;
const KEY: &str = "bench-key";
const SUB_XTR_ID: u128 = 0x5ab5_c71b_e700_0000_0000_0000_0000_0001;

#[derive(Parser, Debug)]
#[command(
    name = "lisp_serve",
    about = "Map-Request service rate and pub/sub fan-out through vmmi"
)]
struct Cli {
    /// The vmmi binary (default: the one cargo built for this bench; env VMMI_BIN).
    #[arg(long, env = "VMMI_BIN")]
    vmmi: Option<PathBuf>,
    /// Registered VMs (EIDs) the requests are spread over (default 10,000; 200 in the
    /// self-check).
    #[arg(long)]
    vms: Option<u32>,
    /// ITR sockets of the service rows (default 4096; 32 in the self-check).
    #[arg(long)]
    itrs: Option<usize>,
    /// Offered rates of the service rows, requests/s; 0 = as fast as the window allows
    /// (default 100000,250000,500000,0; 2000 in the self-check).
    #[arg(long, value_delimiter = ',')]
    rates: Option<Vec<f64>>,
    /// Outstanding requests at most (default 2048).
    #[arg(long, default_value_t = 2048)]
    window: usize,
    /// Measured seconds per row (after 1 s of warm-up; default 5, 1 in the self-check).
    #[arg(long)]
    secs: Option<f64>,
    /// Skip the rate-limit row (200k/s from 16 ITRs).
    #[arg(long)]
    no_limit_row: bool,
    /// Subscribers of the fan-out (default 10,000, capped by the open-files limit; 200 in the
    /// self-check; 0 = no fan-out).
    #[arg(long)]
    subscribers: Option<usize>,
    /// Every subscriber's first nonce is 1 (instead of a fresh random one): all publications
    /// then share one nonce, vmmi's worst case for matching Map-Notify-Acks.
    #[arg(long)]
    shared_nonce: bool,
    /// CPUs: the daemon's (taskset -c) and the generator's; "none" = no pinning.
    #[arg(long, default_value = "0,1")]
    cpus: String,
    /// The daemon's VMMI_LOG filter (its log is in the temporary directory).
    #[arg(long, default_value = "info")]
    daemon_log: String,
    /// Keep the temporary directory (config, daemon log).
    #[arg(long)]
    keep: bool,
}

// ---------------------------------------------------------------------------------------------
// addresses

#[derive(Clone, Copy)]
pub(crate) struct Plan {
    s: u8,
}

impl Plan {
    fn ip(&self, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, self.s, c, d)
    }
    fn vmmi(&self) -> Ipv4Addr {
        self.ip(0, 1)
    }
    fn registrar(&self) -> Ipv4Addr {
        self.ip(0, 5)
    }
    /// Socket j (ITR j, subscriber j).
    pub(crate) fn itr(&self, j: usize) -> Ipv4Addr {
        self.ip(10 + (j / 250) as u8, 1 + (j % 250) as u8)
    }
    pub(crate) fn lisp(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.vmmi()), 4342)
    }
    fn api(&self) -> String {
        format!("{}:50180", self.vmmi())
    }
}

pub(crate) fn vm_ip(v: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 77, 0, 0)) + v)
}

pub(crate) fn vm_eid(v: u32) -> EidPrefix {
    EidPrefix::host(VNI, IpAddr::V4(vm_ip(v)))
}

pub(crate) fn vm_rloc(_p: &Plan, v: u32) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 1 + (v % 200) as u8)
}

fn config(p: &Plan) -> String {
    format!(
        r#"# generated by benches/lisp_serve/main.rs
[global]
asn = 65000
router_id = "{ms}"
listen = ["{ms}:1179"]
vtep = "{ms}"

[lisp]
roles = ["map-server", "map-resolver"]
listen = "{ms}:4342"
pubsub = true
smr = true

[[lisp.site]]
name = "bench"
key = "{KEY}"
auth = "hmac-sha256-128"
eids = ["iid:{VNI} 10.77.0.0/16"]

[dataplane]
kind = "memory"

[api]
listen = "{api}"
"#,
        ms = p.vmmi(),
        api = p.api(),
    )
}

/// Binds the registrar and X sockets on 127.S.x.y:4342 (the registrar last), trying a few S.
fn bind_all(x: usize) -> Result<(Plan, Vec<UdpSocket>), String> {
    let base = 100 + (std::process::id() % 100) as u8;
    let mut last = String::new();
    for t in 0..8u8 {
        let s = 100 + (base - 100 + t * 17) % 100;
        let p = Plan { s };
        let bind = |ip: Ipv4Addr| -> Result<UdpSocket, String> {
            let sock = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::DGRAM,
                Some(socket2::Protocol::UDP),
            )
            .map_err(|e| e.to_string())?;
            let _ = sock.set_recv_buffer_size(1 << 20);
            sock.bind(&SocketAddr::new(IpAddr::V4(ip), 4342).into())
                .map_err(|e| format!("bind {ip}:4342: {e}"))?;
            Ok(sock.into())
        };
        let probe = bind(p.vmmi()).and_then(|_| {
            std::net::TcpListener::bind((p.vmmi(), 1179))
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        let r = probe.and_then(|()| {
            let mut v: Vec<UdpSocket> = (0..x).map(|j| bind(p.itr(j))).collect::<Result<_, _>>()?;
            v.push(bind(p.registrar())?);
            Ok(v)
        });
        match r {
            Ok(v) => return Ok((p, v)),
            Err(e) => last = e,
        }
    }
    Err(format!("no free 127.S.0.0/16 block: {last}"))
}

impl Gen {
    fn registrar(&self) -> usize {
        self.socks.len() - 1
    }

    pub(crate) fn send_registrar(&self, b: &[u8]) -> Result<(), String> {
        if self.send_batch(self.registrar(), &[b]) == 1 {
            Ok(())
        } else {
            Err("registrar: send failed".into())
        }
    }
}

/// Registers VMs 0..n (10 per Map-Register, 64 Map-Registers outstanding), each confirmed by
/// its solicited Map-Notify.
fn register_all(g: &mut Gen, n: u32, nonce: &mut u64) -> Result<(), String> {
    let p = g.p;
    let chunks: Vec<Vec<u32>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(10)
        .map(<[u32]>::to_vec)
        .collect();
    for attempt in 0..3 {
        let mut confirmed = 0usize;
        for w in chunks.chunks(64) {
            let mut want = std::collections::HashSet::new();
            for c in w {
                *nonce += 1;
                let recs: Vec<(EidPrefix, Ipv4Addr)> =
                    c.iter().map(|v| (vm_eid(*v), vm_rloc(&p, *v))).collect();
                g.send_registrar(&map_register(&recs, *nonce))?;
                want.insert(*nonce);
            }
            let end = Instant::now() + Duration::from_secs(5);
            while !want.is_empty() && Instant::now() < end {
                g.poll(Duration::from_millis(5), |_, b, _| {
                    if let Ok(LispMsg::MapNotify(m)) = decode(b) {
                        want.remove(&m.nonce);
                    }
                });
            }
            confirmed += w.len() - want.len();
        }
        if confirmed == chunks.len() {
            return Ok(());
        }
        if attempt == 2 {
            return Err(format!(
                "{} of {} Map-Registers not confirmed",
                chunks.len() - confirmed,
                chunks.len()
            ));
        }
    }
    Ok(())
}

fn pin_self(cpu: usize) -> Result<(), String> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).map_err(|e| format!("sched_setaffinity: {e}"))
}

// ---------------------------------------------------------------------------------------------
// main

struct Report {
    rows: Vec<Row>,
    fanout: Option<Fanout>,
    counters: Value,
    send_errors: Option<u64>,
    warnings: Vec<String>,
    vms: u32,
    pinned: Option<(String, usize)>,
    bin: PathBuf,
    template_ok: bool,
}

fn run(cli: &Cli, full: bool) -> Result<Report, String> {
    let bin = cli
        .vmmi
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vmmi")));
    let vms = cli
        .vms
        .unwrap_or(if full { 10_000 } else { 200 })
        .clamp(1, 60_000);
    let limit = nofile().unwrap_or(1024).saturating_sub(256).max(32);
    let itrs = cli
        .itrs
        .unwrap_or(if full { 4096 } else { 32 })
        .clamp(1, limit);
    let subs = cli
        .subscribers
        .unwrap_or(if full { 10_000 } else { 200 })
        .min(limit);
    let x = itrs.max(subs).max(16).min(limit);
    let secs = Duration::from_secs_f64(cli.secs.unwrap_or(if full { 5.0 } else { 1.0 }));
    let rates = cli.rates.clone().unwrap_or_else(|| {
        if full {
            vec![100e3, 250e3, 500e3, 0.0]
        } else {
            vec![2000.0]
        }
    });
    // pinning: "D,G" when the machine has both CPUs
    let cpus: Vec<usize> = cli
        .cpus
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = match cpus.as_slice() {
        [d, g] if full && *d < ncpu && *g < ncpu && d != g => Some((d.to_string(), *g)),
        _ => None,
    };

    let (plan, socks) = bind_all(x)?;
    let dir = TempDir::new("vmmi-lisp-serve", cli.keep)?;
    let mut d = daemon::spawn(
        &bin,
        &dir.path,
        &config(&plan),
        &plan.api(),
        &cli.daemon_log,
        pinned.as_ref().map(|(c, _)| c.as_str()),
    )?;
    if let Some((_, g)) = &pinned {
        pin_self(*g)?;
    }
    let mut g = Gen::new(plan, socks)?;
    let mut nonce = 1u64;
    // VMs 0..vms are served; VM `vms` is the fan-out's
    register_all(&mut g, vms + 1, &mut nonce)?;
    let n = wait_for(Duration::from_secs(30), &mut d, || {
        let v = daemon::api_json(&plan.api(), "/v1/lisp/registrations").ok()?;
        let n = v.as_array()?.len();
        (n > vms as usize).then_some(n)
    })
    .map_err(|e| format!("vmmi did not register the {} VM EIDs: {e}", vms + 1))?;
    let _ = n;

    // the ECM template's patched checksum equals the codec's
    let mut t = Template::new(&plan, 1, 0, true);
    t.set_nonce(0x1234_5678_9abc);
    let fresh = ecm(
        &map_request(vm_eid(1), plan.itr(0), 0x1234_5678_9abc, None),
        plan.itr(0),
        vm_ip(1),
    );
    let template_ok = t.bytes == fresh;

    let mut rows = Vec::new();
    let mut known: Vec<Option<Vec<u8>>> = vec![None; vms as usize];
    let mut epoch = 0u64;
    let mut plan_rows: Vec<RowCfg> = rates
        .iter()
        .map(|r| RowCfg {
            name: if *r > 0.0 {
                format!("{:.0}k/s offered", r / 1e3)
            } else {
                format!("window {} (max)", cli.window)
            },
            itrs,
            rate: (*r > 0.0).then_some(*r),
            warmup: Duration::from_secs(1),
            measure: secs,
            window: cli.window,
            timeout: Duration::from_millis(50),
        })
        .collect();
    if full && !cli.no_limit_row {
        plan_rows.push(RowCfg {
            name: "200k/s from 16 ITRs (rate limit)".into(),
            itrs: 16.min(itrs),
            rate: Some(200e3),
            warmup: Duration::from_secs(1),
            measure: secs,
            window: cli.window,
            timeout: Duration::from_millis(50),
        });
    }
    for c in &plan_rows {
        let mut tpl = templates(&plan, vms, c.itrs, (c.itrs * 16).clamp(4096, 65_536));
        let r = run_row(&mut g, &d, c, &mut tpl, &mut known, &mut epoch);
        eprintln!(
            "lisp_serve: {}: {:.0} replies/s, {} lost",
            r.name, r.replies_per_s, r.lost
        );
        rows.push(r);
        d.alive()?;
        // let the daemon's queue empty
        std::thread::sleep(Duration::from_millis(200));
        g.poll(Duration::ZERO, |_, _, _| {});
    }

    let fanout = if subs > 0 {
        subscribe_all(&mut g, vm_eid(vms), subs, 512, cli.shared_nonce)?;
        Some(publish(
            &mut g,
            &d,
            vms,
            Ipv4Addr::new(198, 51, 100, 7),
            subs,
            nonce + 1,
            Duration::from_secs(10),
        )?)
    } else {
        None
    };
    d.alive()?;
    let counters = d.api_json("/v1/lisp/counters")?;
    let metrics = bgp_gen::http_get(&format!("{}/metrics", plan.api()), Duration::from_secs(5))?;
    let send_errors = metrics
        .lines()
        .find(|l| l.starts_with("vmmi_lisp_send_errors"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok());
    let log = std::fs::read_to_string(&d.log).unwrap_or_default();
    let warnings = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .take(5)
        .map(str::to_string)
        .collect();
    Ok(Report {
        rows,
        fanout,
        counters,
        send_errors,
        warnings,
        vms,
        pinned,
        bin,
        template_ok,
    })
}

pub(crate) fn pct(v: &[Duration], p: f64) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort();
    let i = ((s.len() as f64 * p).ceil() as usize).clamp(1, s.len()) - 1;
    Some(s[i])
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.3}", d.as_secs_f64() * 1e3))
}

fn print(rep: &Report, full: bool) {
    println!(
        "LISP Map-Request service through vmmi ({}): proxy Map-Replies, plain and ECM Map-Requests",
        if full {
            "full"
        } else {
            "self-check, run with --bench"
        }
    );
    println!(
        "vmmi {}; {} registered VMs; {}",
        rep.bin.display(),
        rep.vms,
        match &rep.pinned {
            Some((d, g)) => format!("vmmi on CPU {d} (taskset), generator thread on CPU {g}"),
            None => "no CPU pinning".into(),
        }
    );
    println!();
    println!(
        "| {:<34} | {:>5} | {:>10} | {:>10} | {:>6} | {:>6} | {:>8} | {:>8} | {:>6} | {:>6} | {:>7} | {:>10} |",
        "row",
        "ITRs",
        "sent/s",
        "replies/s",
        "lost",
        "wrong",
        "p50 ms",
        "p99 ms",
        "vmmi",
        "gen",
        "µs/rep",
        "1 CPU/s"
    );
    println!(
        "|{:-<36}|{:->7}|{:->12}|{:->12}|{:->8}|{:->8}|{:->10}|{:->10}|{:->8}|{:->8}|{:->9}|{:->12}|",
        "", "", "", "", "", "", "", "", "", "", "", ""
    );
    for r in &rep.rows {
        println!(
            "| {:<34} | {:>5} | {:>10.0} | {:>10.0} | {:>6} | {:>6} | {:>8} | {:>8} | {:>5.0}% | {:>5.0}% | {:>7.2} | {:>10.0} |",
            r.name,
            r.itrs,
            r.sent_rate,
            r.replies_per_s,
            r.lost,
            r.wrong,
            ms(pct(&r.lat, 0.5)),
            ms(pct(&r.lat, 0.99)),
            r.daemon_cpu.unwrap_or(f64::NAN) * 100.0,
            r.gen_cpu * 100.0,
            r.cpu_per_reply_us().unwrap_or(f64::NAN),
            r.one_cpu_rate().unwrap_or(f64::NAN),
        );
    }
    println!(
        "(vmmi / gen: CPU time used over the measured seconds, in % of one CPU — the daemon's threads, the generator thread;"
    );
    println!(
        " µs/rep: the daemon's CPU time per reply (requests + replies + everything else it did); 1 CPU/s: 1e6 / µs/rep,"
    );
    println!(
        " the rate one CPU given wholly to vmmi would serve at that cost — unlike replies/s, not lowered by other load on the CPU)"
    );
    if let Some(f) = &rep.fanout {
        println!();
        println!(
            "fan-out: 1 Map-Register -> {} subscribers: all publications in {} ms (p50 {} ms), last Map-Notify-Ack sent at {} ms; missing {}, bad HMAC {}, wrong record {}",
            f.subscribers,
            ms(f.arrivals.last().copied()),
            ms(pct(&f.arrivals, 0.5)),
            ms(f.last_ack),
            f.missing,
            f.bad_auth,
            f.wrong
        );
        let c = &f.daemon_counters;
        println!(
            "  vmmi: {} ms of CPU for the change, its {} publications and their acknowledgements; publications_tx {} map_notify_acks_rx {} map_notify_retransmits {}",
            ms(f.daemon_cpu),
            f.subscribers,
            c["publications_tx"],
            c["map_notify_acks_rx"],
            c["map_notify_retransmits"]
        );
    }
    let c = &rep.counters;
    println!(
        "vmmi counters: map_requests_rx {} map_replies_tx {} replies_rate_limited {} rx_dropped {} smr_tx {} send_errors {}",
        c["map_requests_rx"],
        c["map_replies_tx"],
        c["replies_rate_limited"],
        c["rx_dropped"],
        c["smr_tx"],
        rep.send_errors.map_or("?".into(), |n| n.to_string())
    );
    for w in &rep.warnings {
        println!("daemon: {w}");
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let rows: Vec<Value> = rep
        .rows
        .iter()
        .map(|r| {
            json!({"row": r.name, "itrs": r.itrs, "offered": r.offered, "sent_per_s": r.sent_rate.round(),
                   "replies_per_s": r.replies_per_s.round(), "lost": r.lost, "wrong": r.wrong,
                   "p50_ms": pct(&r.lat, 0.5).map(|d| d.as_secs_f64() * 1e3),
                   "p99_ms": pct(&r.lat, 0.99).map(|d| d.as_secs_f64() * 1e3),
                   "vmmi_cpu": r.daemon_cpu, "gen_cpu": r.gen_cpu,
                   "vmmi_cpu_us_per_reply": r.cpu_per_reply_us(), "one_cpu_replies_per_s": r.one_cpu_rate()})
        })
        .collect();
    println!(
        "{}",
        json!({"bench": "lisp_serve", "mode": if full {"full"} else {"self-check"}, "vms": rep.vms,
               "rows": rows,
               "fanout": rep.fanout.as_ref().map(|f| json!({"subscribers": f.subscribers,
                   "all_ms": f.arrivals.last().map(|d| d.as_secs_f64() * 1e3),
                   "last_ack_ms": f.last_ack.map(|d| d.as_secs_f64() * 1e3), "missing": f.missing,
                   "vmmi_cpu_ms": f.daemon_cpu.map(|d| d.as_secs_f64() * 1e3)})),
               "loadavg": load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")})
    );
}

fn check(rep: &Report, full: bool) -> Result<(), String> {
    let mut errs = Vec::new();
    if !rep.template_ok {
        errs.push("the patched ECM template differs from the codec's encoding".to_string());
    }
    for r in &rep.rows {
        if r.wrong > 0 {
            errs.push(format!(
                "{}: {} wrong replies; first: {}",
                r.name,
                r.wrong,
                r.first_wrong.as_deref().unwrap_or("-")
            ));
        }
        if !full && (r.lost > 0 || r.replied == 0) {
            errs.push(format!("{}: {} of {} lost", r.name, r.lost, r.sent));
        }
    }
    if let Some(f) = &rep.fanout {
        if f.missing + f.bad_auth + f.wrong > 0 {
            errs.push(format!(
                "fan-out: {} missing, {} bad HMAC, {} wrong",
                f.missing, f.bad_auth, f.wrong
            ));
        }
        let c = &f.daemon_counters;
        if !full && c["map_notify_retransmits"].as_u64() != Some(0) {
            errs.push(format!("fan-out: vmmi retransmitted: {c}"));
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
        check(&rep, full)
    });
    if let Err(e) = r {
        eprintln!("lisp_serve: {e}");
        std::process::exit(1);
    }
}
