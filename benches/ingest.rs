//! EVPN ingest load generator and sink: a raw BGP speaker built on vmmi's own codec.
//!
//! Modes (`cargo bench --bench ingest -- MODE ARGS`, or run the built bench executable directly):
//!
//! - `gen`: connect to (or, with `--listen`, accept from) one peer, OPEN with MP l2vpn-evpn,
//!   4-octet AS, route refresh and (unless `--no-extended-message`) RFC 8654 Extended Message;
//!   wait for Established; pre-encode `--count` distinct EVPN type-2 MAC/IP routes (one RD,
//!   distinct MACs and IPv4 addresses, RT, VXLAN encapsulation, MAC Mobility sequence) packed
//!   `--per-update` NLRI per UPDATE; then start the clock, blast them and End-of-RIB; keep the
//!   session up (keepalives, route refresh answered by re-sending everything) until SIGTERM/SIGINT
//!   or `--max-life`. It also counts the type-2 routes the peer sends (like `sink`).
//! - `sink`: a passive speaker (`--listen ADDR:PORT`) that accepts one session, counts the
//!   received EVPN routes by key (announcements minus withdrawals) and prints the time the count
//!   reaches `--expect`.
//! - `poll`: poll a JSON source (`--http HOST:PORT/PATH`, `--vty FRR_VTY_SOCKET`, or a command
//!   after `--`) every
//!   `--interval-ms` until the number at `--path` reaches `--count`; prints the wall-clock time
//!   and, with `--pid`, the process's VmRSS/VmHWM and CPU time at that moment. The harness
//!   (`conformance/bench/ingest.sh`) uses it for vmmi's API, FRR's vtysh and GoBGP's CLI.
//! - no mode (what `cargo bench --bench ingest` and `cargo test --benches` run): a loopback
//!   self-test, generator → sink in this process (200k routes under `cargo bench`, 10k otherwise).
//!
//! Every event is one JSON line on stdout: `{"event": ..., "unix_ms": ..., "t_ms": ...}` where
//! `unix_ms` is the wall clock (so a harness can compare events of different processes) and
//! `t_ms` is milliseconds since the start of the blast (`gen`) or since the process started.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // a load generator: real sockets and time

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use vmmi::wire::MacAddr;
use vmmi::wire::bgp::attr::{AttrValue, code};
use vmmi::wire::bgp::evpn::EvpnRoute;
use vmmi::wire::bgp::extcomm::RouteTarget;
use vmmi::wire::bgp::nlri::{EvpnNlri, NlriList};
use vmmi::wire::bgp::notification::NotificationMsg;
use vmmi::wire::bgp::rd::RouteDistinguisher;
use vmmi::wire::bgp::{BgpCtx, Family, Message, UpdateMsg};

#[path = "common/bgp_gen.rs"]
mod bgp_gen;
use bgp_gen::{
    Framer, Opened, evpn_update, http_get, mac_ip_route, open_exchange, open_msg, sockaddr,
};

// ---------------------------------------------------------------------------------------------
// command line

#[derive(Parser, Debug)]
#[command(name = "ingest", about = "EVPN ingest load generator / sink / poller")]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Blast N type-2 routes at a peer and keep the session up.
    Gen(SpeakerOpts),
    /// Accept a session and count the type-2 routes received.
    Sink(SpeakerOpts),
    /// Poll a JSON source until a number reaches a target.
    Poll(PollOpts),
    /// Loopback self-test: gen -> sink in this process.
    Selftest {
        #[arg(long, default_value_t = 10_000)]
        count: u32,
    },
}

#[derive(Args, Debug, Clone)]
struct SpeakerOpts {
    /// Peer to connect to (ADDR or ADDR:PORT, port 179 by default).
    #[arg(long)]
    connect: Option<String>,
    /// Accept one session on ADDR:PORT instead of connecting.
    #[arg(long)]
    listen: Option<String>,
    /// Source address when connecting.
    #[arg(long)]
    local: Option<IpAddr>,
    #[arg(long, default_value_t = 65004)]
    asn: u32,
    /// Expected peer AS (any if omitted).
    #[arg(long)]
    peer_asn: Option<u32>,
    /// BGP identifier (default: the local address of the session, if IPv4).
    #[arg(long)]
    router_id: Option<Ipv4Addr>,
    #[arg(long, default_value_t = 90)]
    hold_time: u16,
    /// Do not advertise RFC 8654 Extended Message.
    #[arg(long)]
    no_extended_message: bool,
    /// Routes to send (gen).
    #[arg(long, default_value_t = 0)]
    count: u32,
    /// NLRI per UPDATE (capped by what fits in the negotiated maximum message size).
    #[arg(long, default_value_t = 100)]
    per_update: usize,
    /// Route distinguisher of every route.
    #[arg(long, default_value = "10.98.0.2:100")]
    rd: String,
    /// Route target (extended community).
    #[arg(long, default_value = "65001:100")]
    rt: String,
    /// VNI (label 1).
    #[arg(long, default_value_t = 100)]
    vni: u32,
    /// MP_REACH next hop (default: the local address of the session).
    #[arg(long)]
    next_hop: Option<Ipv4Addr>,
    /// First MAC; route i has MAC base + i.
    #[arg(long, default_value = "02:10:00:00:00:00")]
    mac_base: String,
    /// First IPv4 address; route i has base + i.
    #[arg(long, default_value = "10.128.0.1")]
    ip_base: Ipv4Addr,
    /// MAC Mobility sequence number.
    #[arg(long, default_value_t = 1)]
    seq: u32,
    /// Print `rx-reached` when this many distinct EVPN routes have been received.
    #[arg(long, default_value_t = 0)]
    expect: u64,
    /// Exit once `--expect` is reached (after printing).
    #[arg(long)]
    exit_on_expect: bool,
    /// Print an `rx-progress`/`tx-progress` line every this many ms (0 = never).
    #[arg(long, default_value_t = 1000)]
    progress_ms: u64,
    /// Exit after this many seconds whatever happens (bounded runs).
    #[arg(long, default_value_t = 3600)]
    max_life: u64,
    /// Seconds to wait for the TCP connection / OPEN exchange.
    #[arg(long, default_value_t = 30)]
    setup_timeout: u64,
    /// gen: wait this long between `encoded` (session up, UPDATEs built) and `blast-start`, so
    /// the harness can read the daemon's RSS and CPU with the session already up.
    #[arg(long, default_value_t = 0)]
    hold_before_blast_ms: u64,
}

#[derive(Args, Debug, Clone)]
struct PollOpts {
    /// Label printed in the output.
    #[arg(long, default_value = "poll")]
    label: String,
    /// GET http://HOST:PORT/PATH (no scheme), e.g. 127.0.0.1:50179/v1/neighbors.
    #[arg(long)]
    http: Option<String>,
    /// An FRR daemon's vty socket (e.g. DIR/bgpd.vty): `--vty-cmd` is sent over one persistent
    /// connection, as vtysh does, without spawning vtysh for every poll (~25 ms CPU each).
    #[arg(long)]
    vty: Option<String>,
    #[arg(long, default_value = "show bgp l2vpn evpn summary json")]
    vty_cmd: String,
    /// Where the number is: `/`-separated keys; a number indexes an array; `?field=value`
    /// picks the first array element whose `field` is that string (or starts with `value:`).
    #[arg(long)]
    path: String,
    /// Target value (reached when >=).
    #[arg(long)]
    count: u64,
    #[arg(long, default_value_t = 50)]
    interval_ms: u64,
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Report VmRSS/VmHWM/CPU of this process when the target is reached.
    #[arg(long)]
    pid: Option<u32>,
    /// Print a `poll-progress` line every this many ms (0 = never).
    #[arg(long, default_value_t = 0)]
    progress_ms: u64,
    /// Command printing the JSON (after `--`).
    #[arg(last = true)]
    cmd: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// output

static START: OnceLock<Instant> = OnceLock::new();
/// µs since process start at which the blast started (u64::MAX = not yet).
static BLAST_AT: AtomicU64 = AtomicU64::new(u64::MAX);
/// µs since process start at which a sink's count reached `--expect` (u64::MAX = not yet).
static REACHED_AT: AtomicU64 = AtomicU64::new(u64::MAX);
static STOP: AtomicBool = AtomicBool::new(false);
static OUT: Mutex<()> = Mutex::new(());

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn since_start_ms() -> f64 {
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e3
}

fn emit(role: &str, event: &str, mut v: Value) {
    let now = since_start_ms();
    let blast = BLAST_AT.load(Ordering::Relaxed);
    let t_ms = if blast == u64::MAX {
        now
    } else {
        now - blast as f64 / 1e3
    };
    if let Value::Object(m) = &mut v {
        m.insert("event".into(), json!(event));
        m.insert("role".into(), json!(role));
        let us = unix_us();
        m.insert("unix_ms".into(), json!(us / 1000));
        m.insert("unix_us".into(), json!(us));
        m.insert("t_ms".into(), json!((t_ms * 10.0).round() / 10.0));
    }
    let _g = OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut o = io::stdout().lock();
    let _ = writeln!(o, "{v}");
    let _ = o.flush();
}

fn mark_blast_start() {
    BLAST_AT.store((since_start_ms() * 1e3) as u64, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------------------
// the speaker

/// The key of an EVPN route for counting (RFC 7432 §7.2: a MAC/IP route is identified by RD,
/// Ethernet Tag, MAC and IP; ESI and labels are not part of it).
#[derive(Hash, PartialEq, Eq)]
enum RouteKey {
    MacIp(RouteDistinguisher, u32, MacAddr, Option<IpAddr>),
    Other(EvpnRoute),
}

fn route_key(r: &EvpnRoute) -> RouteKey {
    match r {
        EvpnRoute::MacIp(m) => RouteKey::MacIp(m.rd, m.ethernet_tag, m.mac, m.ip),
        other => RouteKey::Other(other.clone()),
    }
}

#[derive(Default)]
struct RxState {
    routes: HashMap<RouteKey, ()>,
    updates: u64,
    announced: u64,
    withdrawn: u64,
    eor: bool,
    refresh_requests: u64,
    first_update_ms: Option<f64>,
    reached: bool,
    closed: Option<String>,
    /// Announced NLRI per distinct (AS_PATH, extended communities, next hop): shows what a
    /// re-advertising speaker kept of the generator's attributes (MAC Mobility, RT, encap).
    attr_sets: HashMap<String, u64>,
}

fn connect_bounded(o: &SpeakerOpts, remote: SocketAddr) -> io::Result<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(o.setup_timeout);
    loop {
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(remote),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        if let Some(l) = o.local {
            sock.bind(&SocketAddr::new(l, 0).into())?;
        }
        match sock.connect_timeout(&remote.into(), Duration::from_secs(3)) {
            Ok(()) => return Ok(sock.into()),
            Err(e) if Instant::now() < deadline && !STOP.load(Ordering::Relaxed) => {
                emit("gen", "connect-retry", json!({"error": e.to_string()}));
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(e),
        }
    }
}

fn accept_bounded(o: &SpeakerOpts, l: &TcpListener) -> io::Result<TcpStream> {
    l.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(o.max_life);
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                return Ok(s);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline || STOP.load(Ordering::Relaxed) {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "no session"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Write all of `buf`, checking STOP whenever the socket stays full for 200 ms.
fn write_all_stoppable(s: &mut TcpStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match s.write(buf) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write 0")),
            Ok(n) => buf = &buf[n..],
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if STOP.load(Ordering::Relaxed) {
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

struct Routes {
    rd: RouteDistinguisher,
    rt: RouteTarget,
    mac_base: u64,
}

fn parse_routes(o: &SpeakerOpts) -> Result<Routes, String> {
    let rd: RouteDistinguisher = o.rd.parse().map_err(|e| format!("--rd: {e:?}"))?;
    let rt: RouteTarget = o.rt.parse().map_err(|e| format!("--rt: {e:?}"))?;
    let mac: MacAddr = o.mac_base.parse().map_err(|e| format!("--mac-base: {e}"))?;
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&mac.0);
    Ok(Routes {
        rd,
        rt,
        mac_base: u64::from_be_bytes(b),
    })
}

fn type2(o: &SpeakerOpts, r: &Routes, i: u32) -> EvpnNlri {
    let m = (r.mac_base + u64::from(i)).to_be_bytes();
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&m[2..]);
    let ip = IpAddr::V4(Ipv4Addr::from(u32::from(o.ip_base).wrapping_add(i)));
    mac_ip_route(r.rd, MacAddr(mac), Some(ip), o.vni)
}

fn update_for(o: &SpeakerOpts, r: &Routes, nh: Ipv4Addr, routes: Vec<EvpnNlri>) -> Message {
    evpn_update(o.asn, r.rt, Some(o.seq), nh, routes)
}

/// All UPDATEs for `o.count` routes, concatenated, then End-of-RIB. Returns (bytes, messages).
fn encode_all(o: &SpeakerOpts, r: &Routes, nh: Ipv4Addr, ctx: &BgpCtx) -> (Vec<u8>, usize, usize) {
    // how many NLRI fit: the size is affine in the number of routes (all the same length)
    let one = update_for(o, r, nh, vec![type2(o, r, 0)])
        .to_bytes(ctx)
        .len();
    let two = update_for(o, r, nh, vec![type2(o, r, 0), type2(o, r, 1)])
        .to_bytes(ctx)
        .len();
    let per = two - one;
    let fixed = one - per;
    let fit = (ctx.max_len() - fixed) / per;
    let batch = o.per_update.clamp(1, fit);
    let mut out = Vec::with_capacity(o.count as usize / batch * (fixed + batch * per) + 4096);
    let mut msgs = 0;
    let mut i = 0u32;
    while i < o.count {
        let n = (o.count - i).min(batch as u32);
        let routes = (i..i + n).map(|k| type2(o, r, k)).collect();
        update_for(o, r, nh, routes).encode(ctx, &mut out);
        msgs += 1;
        i += n;
    }
    Message::Update(UpdateMsg::eor(Family::L2VPN_EVPN)).encode(ctx, &mut out);
    (out, msgs, batch)
}

fn count_update(role: &str, u: &UpdateMsg, st: &Mutex<RxState>, expect: u64) -> bool {
    let mut g = st.lock().unwrap_or_else(|e| e.into_inner());
    g.updates += 1;
    if g.first_update_ms.is_none() && u.mp_reach().is_some_and(|r| !r.nlri.is_empty()) {
        g.first_update_ms = Some(since_start_ms());
    }
    if u.end_of_rib() == Some(Family::L2VPN_EVPN) {
        g.eor = true;
        let n = g.routes.len();
        drop(g);
        emit(role, "rx-eor", json!({"routes": n}));
        return false;
    }
    if let Some(w) = u.mp_unreach()
        && let NlriList::Evpn(v) = &w.withdrawn
    {
        for n in v {
            g.withdrawn += 1;
            g.routes.remove(&route_key(&n.route));
        }
    }
    if let Some(a) = u.mp_reach()
        && let NlriList::Evpn(v) = &a.nlri
    {
        let as_path = u.attr(code::AS_PATH).map(|p| match &p.value {
            AttrValue::AsPath(segs) => segs
                .iter()
                .flat_map(|s| s.asns.iter().map(u32::to_string))
                .collect::<Vec<_>>()
                .join(" "),
            _ => "?".into(),
        });
        let ecs: Vec<String> = u
            .ext_communities()
            .iter()
            .map(ToString::to_string)
            .collect();
        let set = format!(
            "as_path [{}] ext [{}] nh {}",
            as_path.unwrap_or_default(),
            ecs.join(", "),
            a.next_hop.ip().map(|i| i.to_string()).unwrap_or_default()
        );
        *g.attr_sets.entry(set).or_default() += v.len() as u64;
        for n in v {
            g.announced += 1;
            g.routes.insert(route_key(&n.route), ());
        }
    }
    if expect > 0 && !g.reached && g.routes.len() as u64 >= expect {
        g.reached = true;
        REACHED_AT.store((since_start_ms() * 1e3) as u64, Ordering::Relaxed);
        let (n, upd, first) = (g.routes.len(), g.updates, g.first_update_ms);
        let sets = json!(g.attr_sets);
        drop(g);
        let since_first = first.map(|f| since_start_ms() - f);
        emit(
            role,
            "rx-reached",
            json!({"routes": n, "updates": upd, "ms_since_first_announcement": since_first,
                   "attr_sets": sets}),
        );
        return true;
    }
    false
}

/// Run one session. `role` is "gen" or "sink"; `ready` gets the bound address in listen mode.
fn speaker(
    role: &str,
    o: SpeakerOpts,
    ready: Option<std::sync::mpsc::Sender<SocketAddr>>,
) -> Result<(), String> {
    let life = Instant::now() + Duration::from_secs(o.max_life);
    let routes = parse_routes(&o)?;
    let mut s = if let Some(l) = &o.listen {
        let addr = sockaddr(l)?;
        let lst = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
        let bound = lst.local_addr().map_err(|e| e.to_string())?;
        emit(role, "listening", json!({"addr": bound.to_string()}));
        if let Some(tx) = ready {
            let _ = tx.send(bound);
        }
        accept_bounded(&o, &lst).map_err(|e| format!("accept: {e}"))?
    } else if let Some(c) = &o.connect {
        let remote = sockaddr(c)?;
        connect_bounded(&o, remote).map_err(|e| format!("connect {remote}: {e}"))?
    } else {
        return Err("one of --connect / --listen is required".into());
    };
    let local = s.local_addr().map_err(|e| e.to_string())?;
    let peer = s.peer_addr().map_err(|e| e.to_string())?;
    let local_v4 = match local.ip() {
        IpAddr::V4(a) => a,
        IpAddr::V6(a) => a.to_ipv4_mapped().unwrap_or(Ipv4Addr::new(10, 255, 255, 1)),
    };
    let rid = o.router_id.unwrap_or(local_v4);
    let nh = o.next_hop.unwrap_or(local_v4);
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(o.setup_timeout)));
    emit(
        role,
        "connected",
        json!({"local": local.to_string(), "peer": peer.to_string()}),
    );

    // OPEN exchange (RFC 4271 §8: OpenSent -> OpenConfirm -> Established)
    let mut fr = Framer::new();
    let ours = open_msg(o.asn, o.hold_time, rid, !o.no_extended_message);
    let Opened { ctx, hold } = open_exchange(
        &mut s,
        &mut fr,
        &ours,
        !o.no_extended_message,
        o.peer_asn,
        |op, ctx, hold| {
            emit(
                role,
                "open-received",
                json!({"peer_as": op.asn(), "peer_id": op.bgp_id.to_string(), "hold": hold,
                       "four_octet_as": ctx.four_octet_as, "extended_message": ctx.extended_message}),
            )
        },
    )?;
    emit(role, "established", json!({}));

    // reader thread: counts what the peer sends, answers nothing itself
    let st = Arc::new(Mutex::new(RxState::default()));
    let mut rs = s.try_clone().map_err(|e| e.to_string())?;
    let _ = rs.set_read_timeout(None);
    {
        let st = st.clone();
        let ctx = ctx.clone();
        let role = role.to_string();
        let expect = o.expect;
        let exit_on_expect = o.exit_on_expect;
        std::thread::spawn(move || {
            let why = loop {
                let b = match fr.next(&mut rs) {
                    Ok(Some(b)) => b,
                    Ok(None) => continue,
                    Err(e) => break e.to_string(),
                };
                match Message::decode(b, &ctx) {
                    Ok((Message::Update(u), _)) => {
                        if count_update(&role, &u, &st, expect) && exit_on_expect {
                            STOP.store(true, Ordering::Relaxed);
                        }
                    }
                    Ok((Message::RouteRefresh(r), _)) => {
                        emit(
                            &role,
                            "rx-route-refresh",
                            json!({"family": r.family.to_string(), "subtype": r.subtype}),
                        );
                        st.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .refresh_requests += 1;
                    }
                    Ok((Message::Notification(n), _)) => {
                        break format!("NOTIFICATION {}", n.describe());
                    }
                    Ok(_) => {}
                    Err(e) => break format!("decode: {e}"),
                }
            };
            emit(&role, "rx-closed", json!({"why": why}));
            st.lock().unwrap_or_else(|e| e.into_inner()).closed = Some(why);
        });
    }

    // pre-encode, then blast
    let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
    let mut sent_refresh = 0u64;
    let mut blast: Option<Vec<u8>> = None;
    if o.count > 0 {
        let t = Instant::now();
        let (bytes, msgs, batch) = encode_all(&o, &routes, nh, &ctx);
        emit(
            role,
            "encoded",
            json!({"routes": o.count, "updates": msgs, "nlri_per_update": batch, "bytes": bytes.len(),
                   "encode_ms": t.elapsed().as_secs_f64() * 1e3}),
        );
        if o.hold_before_blast_ms > 0 {
            std::thread::sleep(Duration::from_millis(o.hold_before_blast_ms));
        }
        mark_blast_start();
        emit(role, "blast-start", json!({"routes": o.count}));
        write_all_stoppable(&mut s, &bytes).map_err(|e| format!("blast: {e}"))?;
        emit(
            role,
            "blast-sent",
            json!({"routes": o.count, "updates": msgs, "bytes": bytes.len()}),
        );
        blast = Some(bytes);
    }

    // hold the session: keepalives, progress, route refresh, stop
    let ka_every = Duration::from_secs(u64::from((hold / 3).max(1)));
    let mut last_ka = Instant::now();
    let mut last_progress = Instant::now();
    let mut last_rx = u64::MAX;
    let why = loop {
        std::thread::sleep(Duration::from_millis(20));
        if STOP.load(Ordering::Relaxed) {
            break "stopped".to_string();
        }
        if Instant::now() > life {
            break "max-life".to_string();
        }
        let (closed, refresh, n) = {
            let g = st.lock().unwrap_or_else(|e| e.into_inner());
            (g.closed.clone(), g.refresh_requests, g.routes.len() as u64)
        };
        if let Some(c) = closed {
            break format!("session closed: {c}");
        }
        if refresh > sent_refresh {
            sent_refresh = refresh;
            if let Some(b) = &blast {
                emit(role, "refresh-resend", json!({}));
                write_all_stoppable(&mut s, b).map_err(|e| format!("resend: {e}"))?;
            }
        }
        if last_ka.elapsed() >= ka_every && hold > 0 {
            let mut k = Vec::new();
            Message::Keepalive.encode(&ctx, &mut k);
            write_all_stoppable(&mut s, &k).map_err(|e| format!("keepalive: {e}"))?;
            last_ka = Instant::now();
        }
        if o.progress_ms > 0
            && last_progress.elapsed() >= Duration::from_millis(o.progress_ms)
            && n != last_rx
        {
            emit(role, "rx-progress", json!({"routes": n}));
            last_rx = n;
            last_progress = Instant::now();
        }
    };
    // Cease / Administrative Shutdown (RFC 4486), best effort
    let mut n = Vec::new();
    Message::Notification(NotificationMsg::new(6, 2, Vec::new())).encode(&ctx, &mut n);
    let _ = s.write_all(&n);
    let g = st.lock().unwrap_or_else(|e| e.into_inner());
    emit(
        role,
        "done",
        json!({"why": why, "rx_routes": g.routes.len(), "rx_updates": g.updates,
               "rx_announced": g.announced, "rx_withdrawn": g.withdrawn, "rx_eor": g.eor,
               "rx_attr_sets": g.attr_sets}),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// polling

/// One command over FRR's vty socket protocol: the command and a NUL; the answer ends with
/// three NULs and a status octet.
fn vty_query(
    conn: &mut Option<std::os::unix::net::UnixStream>,
    path: &str,
    cmd: &str,
) -> Result<String, String> {
    if conn.is_none() {
        let s =
            std::os::unix::net::UnixStream::connect(path).map_err(|e| format!("{path}: {e}"))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        *conn = Some(s);
    }
    let r = (|| {
        let s = conn.as_mut().ok_or("no vty connection")?;
        s.write_all(cmd.as_bytes()).map_err(|e| e.to_string())?;
        s.write_all(&[0]).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            let n = s.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("vty closed".to_string());
            }
            out.extend_from_slice(&buf[..n]);
            let l = out.len();
            if l >= 4 && out[l - 4..l - 1] == [0, 0, 0] {
                let status = out[l - 1];
                out.truncate(l - 4);
                if status != 0 {
                    return Err(format!("vty status {status}"));
                }
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
        }
    })();
    if r.is_err() {
        *conn = None;
    }
    r
}

fn json_at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        cur = if let Some(sel) = seg.strip_prefix('?') {
            let (f, want) = sel.split_once('=')?;
            cur.as_array()?.iter().find(|e| {
                e.get(f).and_then(Value::as_str).is_some_and(|s| {
                    s == want || s.strip_prefix(want).is_some_and(|r| r.starts_with(':'))
                })
            })?
        } else if let (Some(a), Ok(i)) = (cur.as_array(), seg.parse::<usize>()) {
            a.get(i)?
        } else {
            cur.get(seg)?
        };
    }
    Some(cur)
}

fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_f64().map(|f| f as u64))
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// CPU time of every thread of `pid` in nanoseconds (`/proc/PID/task/*/schedstat` field 1:
/// time spent on the CPU, in ns — `stat`'s utime/stime count 10 ms ticks, too coarse at 10k
/// routes).
fn cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for t in tasks.flatten() {
        let s = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        total += s
            .split_whitespace()
            .next()
            .and_then(|x| x.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(total)
}

/// (VmRSS kB, VmHWM kB, utime+stime s, CPU ns) of a process.
fn proc_stats(pid: u32) -> Value {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // fields after the ")" of comm: state is field 3; utime/stime are 14/15
    let cpu = stat.rsplit_once(')').and_then(|(_, rest)| {
        let f: Vec<&str> = rest.split_whitespace().collect();
        let u: f64 = f.get(11)?.parse().ok()?;
        let s: f64 = f.get(12)?.parse().ok()?;
        Some((u + s) / 100.0)
    });
    json!({"rss_kb": kb("VmRSS:"), "hwm_kb": kb("VmHWM:"), "cpu_s": cpu, "cpu_ns": cpu_ns(pid)})
}

fn poll(o: PollOpts) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(o.timeout);
    let every = Duration::from_millis(o.interval_ms.max(1));
    let mut polls = 0u64;
    let mut last: Option<u64> = None;
    let mut last_err = String::new();
    let mut last_progress = Instant::now();
    // start of the previous poll that saw less than the target: the target was reached after it
    let mut prev_start: Option<u64> = None;
    let mut vty = None;
    emit(&o.label, "poll-start", json!({"count": o.count}));
    loop {
        let t = Instant::now();
        let unix_before = unix_us();
        let got = if let Some(h) = &o.http {
            http_get(h, Duration::from_secs(10))
        } else if let Some(v) = &o.vty {
            vty_query(&mut vty, v, &o.vty_cmd)
        } else if let Some((prog, args)) = o.cmd.split_first() {
            std::process::Command::new(prog)
                .args(args)
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .output()
                .map_err(|e| e.to_string())
                .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            return Err("poll needs --http, --vty or a command after --".into());
        };
        polls += 1;
        match got.and_then(|txt| serde_json::from_str::<Value>(&txt).map_err(|e| e.to_string())) {
            Ok(v) => {
                let n = json_at(&v, &o.path).and_then(as_u64);
                if let Some(n) = n {
                    last = Some(n);
                    if n >= o.count {
                        let mut out = json!({"value": n, "polls": polls, "poll_ms": t.elapsed().as_secs_f64() * 1e3,
                                             "unix_ms_poll_start": unix_before / 1000,
                                             "unix_ms_prev_poll_start": prev_start.map(|p| p / 1000),
                                             "unix_us_poll_start": unix_before,
                                             "unix_us_prev_poll_start": prev_start});
                        if let Some(p) = o.pid
                            && let (Value::Object(m), Value::Object(ps)) = (&mut out, proc_stats(p))
                        {
                            m.extend(ps);
                        }
                        emit(&o.label, "reached", out);
                        return Ok(());
                    }
                }
            }
            Err(e) => last_err = e,
        }
        prev_start = Some(unix_before);
        if o.progress_ms > 0 && last_progress.elapsed() >= Duration::from_millis(o.progress_ms) {
            emit(&o.label, "poll-progress", json!({"value": last}));
            last_progress = Instant::now();
        }
        if Instant::now() > deadline || STOP.load(Ordering::Relaxed) {
            emit(
                &o.label,
                "timeout",
                json!({"value": last, "polls": polls, "last_error": last_err}),
            );
            return Err("timeout".into());
        }
        if let Some(rest) = every.checked_sub(t.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// main

fn install_signals() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            STOP.store(true, Ordering::Relaxed);
        });
    });
}

fn selftest(count: u32) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let base = |role: &str| SpeakerOpts {
        connect: None,
        listen: None,
        local: None,
        asn: if role == "gen" { 65004 } else { 65005 },
        peer_asn: None,
        router_id: None,
        hold_time: 90,
        no_extended_message: false,
        count: 0,
        per_update: 100,
        rd: "10.98.0.2:100".into(),
        rt: "65001:100".into(),
        vni: 100,
        next_hop: None,
        mac_base: "02:10:00:00:00:00".into(),
        ip_base: Ipv4Addr::new(10, 128, 0, 1),
        seq: 1,
        expect: 0,
        exit_on_expect: false,
        progress_ms: 0,
        max_life: 120,
        setup_timeout: 10,
        hold_before_blast_ms: 0,
    };
    let mut so = base("sink");
    so.listen = Some("127.0.0.1:0".into());
    so.expect = u64::from(count);
    so.exit_on_expect = true;
    let sink = std::thread::spawn(move || speaker("sink", so, Some(tx)));
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|e| format!("sink did not listen: {e}"))?;
    let mut go = base("gen");
    go.connect = Some(addr.to_string());
    go.count = count;
    let t = Instant::now();
    let gen_thread = std::thread::spawn(move || speaker("gen", go, None));
    let r = sink.join().map_err(|_| "sink panicked".to_string())?;
    let el = t.elapsed();
    let blast = BLAST_AT.load(Ordering::Relaxed);
    let reached = REACHED_AT.load(Ordering::Relaxed);
    let blast_to_reached = (blast != u64::MAX && reached != u64::MAX)
        .then(|| reached.saturating_sub(blast) as f64 / 1e6);
    STOP.store(true, Ordering::Relaxed);
    let g = gen_thread.join().map_err(|_| "gen panicked".to_string())?;
    r?;
    g?;
    emit(
        "selftest",
        "result",
        json!({"routes": count, "seconds_incl_setup": el.as_secs_f64(),
               "blast_to_sink_count_s": blast_to_reached,
               "routes_per_s": blast_to_reached.map(|s| f64::from(count) / s)}),
    );
    Ok(())
}

fn main() {
    START.get_or_init(Instant::now);
    // `cargo bench` passes --bench to harness=false targets; `cargo test --benches` passes nothing
    let raw: Vec<String> = std::env::args().collect();
    let under_bench = raw.iter().any(|a| a == "--bench");
    let args: Vec<String> = raw.into_iter().filter(|a| a != "--bench").collect();
    let cli = Cli::parse_from(args);
    install_signals();
    let r = match cli.mode {
        Some(Mode::Gen(o)) => speaker("gen", o, None),
        Some(Mode::Sink(o)) => {
            if o.listen.is_none() && o.connect.is_none() {
                Err("sink: --listen ADDR:PORT (or --connect) is required".into())
            } else {
                speaker("sink", o, None)
            }
        }
        Some(Mode::Poll(o)) => poll(o),
        Some(Mode::Selftest { count }) => selftest(count),
        None => selftest(if under_bench { 200_000 } else { 10_000 }),
    };
    if let Err(e) = r {
        emit("ingest", "error", json!({"error": e}));
        std::process::exit(1);
    }
}
