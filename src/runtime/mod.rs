//! runtime/: the only tokio, socket and real-time code.
//!
//! Owns: the one event loop that owns the `Speaker` (no locks: connection tasks only frame and
//! forward bytes, the API asks the loop and gets snapshots), the BGP listeners and connection
//! tasks, timers, signals (SIGHUP reload, SIGTERM graceful shutdown), the management API, name
//! resolution of neighbors, and the translation of `Config` into the cores' settings.
//! Must not: make protocol decisions — every one of them is in `bgp/`.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // runtime/: the clock, tasks and sockets live here

pub mod api;
pub mod client;
pub mod lisp;
pub mod metrics;
pub mod sockopt;
pub mod vtep;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::bgp::spec::{RouteSpec, RouteView};
use crate::bgp::{
    ConnId, Event, MaxPrefixAction, NeighborView, Output, PeerCfg, Speaker, SpeakerCfg, TtlMode,
};
use crate::config::{self, Config, FamilyCfg, PeerAddr};
use crate::rib::PeerId;
use crate::wire::bgp::afi::Family;
use crate::wire::bgp::message::{BgpCtx, frame_len};

/// How long SIGTERM waits for NOTIFICATIONs to be written.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Bounds on how long a resolved neighbor address is trusted: the record's TTL, clamped.
const RESOLVE_MIN: Duration = Duration::from_secs(5);
const RESOLVE_MAX: Duration = Duration::from_secs(3600);
/// Retry after a failed lookup.
const RESOLVE_RETRY: Duration = Duration::from_secs(10);

/// Options from the command line.
#[derive(Clone, Debug)]
pub struct RunOpts {
    pub config_path: Option<PathBuf>,
    /// This start follows a restart (like FRR's `bgpd -K`): advertise the RFC 4724 R bit and
    /// defer our advertisements until the peers' End-of-RIB (or the Restart Time).
    pub restarting: bool,
    /// Stop when this turns true (as on SIGINT) — for running daemons inside another program
    /// (`vmmi demo`, tests). `None`: signals only.
    pub stop: Option<tokio::sync::watch::Receiver<bool>>,
}

/// Requests from the API to the loop.
pub enum ApiReq {
    Neighbors(oneshot::Sender<Vec<NeighborView>>),
    Routes {
        family: Option<Family>,
        vni: Option<u32>,
        reply: oneshot::Sender<Vec<RouteView>>,
    },
    Announce(RouteSpec, oneshot::Sender<Result<(), String>>),
    Withdraw(RouteSpec, oneshot::Sender<Result<(), String>>),
    Refresh {
        neighbor: String,
        family: Family,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// MACs, VNIs, moves, the VM hook, DAD (`None` reply when no `[[vni]]` is configured).
    Evpn(vtep::EvpnReq),
    /// `GET /metrics` (OpenMetrics text).
    Metrics(oneshot::Sender<String>),
    /// `GET /v1/lisp/...`.
    Lisp(LispView, oneshot::Sender<Result<serde_json::Value, String>>),
    /// `POST /v1/lisp/request`: the xTR resolves an EID through its Map-Resolver and, with
    /// `subscribe`, subscribes to it (RFC 9437) — what a LISP data plane's cache miss would do.
    LispRequest {
        eid: crate::lisp::EidPrefix,
        subscribe: bool,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// What `GET /v1/lisp/{what}` shows.
#[derive(Clone, Copy, Debug)]
pub enum LispView {
    Registrations,
    Subscribers,
    MapCache,
    Counters,
}

enum Ev {
    Accepted(TcpStream, SocketAddr, SocketAddr),
    Connected(ConnId, TcpStream),
    ConnectFailed(ConnId, String),
    Frame(ConnId, Vec<u8>),
    FrameError(ConnId, crate::wire::bgp::message::MessageError),
    Closed(ConnId, String),
    Api(ApiReq),
    /// A neighbor name (index into the configured list, the name) resolved to this address.
    Resolved(usize, String, IpAddr),
    /// The dataplane task: batch results, learn events.
    Dataplane(vtep::DpEv),
}

/// The loop's inputs, by priority: write confirmations first (they release flow control), then
/// control events, then received frames — bounded, so a peer that sends faster than the loop
/// works waits in its TCP window instead of in our memory.
#[derive(Clone)]
struct Chans {
    ev: mpsc::UnboundedSender<Ev>,
    acks: mpsc::UnboundedSender<(ConnId, usize)>,
    frames: mpsc::Sender<Ev>,
}

/// Frames queued between the readers and the loop.
const FRAME_QUEUE: usize = 256;

struct ConnHandle {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    reader: tokio::task::JoinHandle<()>,
}

/// The neighbor as configured, and what it resolved to.
struct Configured {
    cfg: config::NeighborCfg,
    addr: Option<IpAddr>,
    id: Option<PeerId>,
}

fn families(v: &[FamilyCfg]) -> Vec<Family> {
    v.iter()
        .map(|f| match f {
            FamilyCfg::L2vpnEvpn => Family::L2VPN_EVPN,
            FamilyCfg::Ipv4Unicast => Family::IPV4_UNICAST,
            FamilyCfg::Ipv6Unicast => Family::IPV6_UNICAST,
        })
        .collect()
}

/// The core's view of a configured neighbor.
pub fn peer_cfg(global: &config::GlobalCfg, n: &config::NeighborCfg, ip: IpAddr) -> PeerCfg {
    let mut p = PeerCfg::new(
        SocketAddr::new(ip, n.port),
        n.remote_asn,
        families(&n.families),
    );
    p.name = n.address.to_string();
    p.passive = n.passive;
    p.hold_time = n.hold_time;
    p.keepalive = n.keepalive;
    p.connect_retry = n.connect_retry;
    p.delay_open = n.delay_open;
    p.rr_client = n.route_reflector_client;
    p.max_prefix = n.max_prefix;
    p.max_prefix_action = match n.max_prefix_action {
        config::MaxPrefixAction::Warning => MaxPrefixAction::Warning,
        config::MaxPrefixAction::Teardown => MaxPrefixAction::Teardown,
    };
    p.max_prefix_restart = n.max_prefix_restart_secs;
    p.graceful_restart = n.graceful_restart;
    p.add_path_rx = matches!(
        n.add_path,
        config::AddPathCfg::Receive | config::AddPathCfg::Both
    );
    p.add_path_tx = matches!(
        n.add_path,
        config::AddPathCfg::Send | config::AddPathCfg::Both
    );
    // Source address: the configured one, else the first specific BGP listen address of the
    // peer's family (a speaker told to listen on one address speaks from it — the peer
    // identifies us by it), else the kernel's choice.
    p.local_address = n.local_address.or_else(|| {
        global
            .listen
            .iter()
            .map(|a| a.ip())
            .find(|a| !a.is_unspecified() && a.is_ipv4() == ip.is_ipv4())
    });
    p.md5 = n.md5_password.as_ref().map(|s| s.as_bytes().to_vec());
    p.ttl = if n.ttl_security {
        TtlMode::Gtsm(1)
    } else if let Some(h) = n.ebgp_multihop {
        TtlMode::Multihop(h)
    } else if n.is_ebgp(global.asn) {
        TtlMode::Multihop(1)
    } else {
        TtlMode::Default
    };
    p
}

pub fn speaker_cfg(c: &Config, restarting: bool) -> SpeakerCfg {
    SpeakerCfg {
        asn: c.global.asn,
        router_id: c.global.router_id,
        cluster_id: c.global.effective_cluster_id(),
        gr_restart_time: c.global.graceful_restart_time,
        stale_routes_time: c.global.stale_routes_time,
        restarting,
    }
}

/// Run the daemon until SIGTERM/SIGINT.
pub async fn run(cfg: Config, opts: RunOpts) -> anyhow::Result<()> {
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Ev>();
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<(ConnId, usize)>();
    let (frame_tx, mut frame_rx) = mpsc::channel::<Ev>(FRAME_QUEUE);
    let chans = Chans {
        ev: ev_tx.clone(),
        acks: ack_tx,
        frames: frame_tx,
    };
    let base = Instant::now();
    let mut speaker = Speaker::new(speaker_cfg(&cfg, opts.restarting), base.into_std());

    let dp_tx = ev_tx.clone();
    let mut vtep = vtep::Vtep::new(&cfg, &mut speaker, base.into_std(), move |e| {
        dp_tx.send(Ev::Dataplane(e)).is_ok()
    })
    .await?;
    let mut lisp = lisp::LispShell::new(&cfg, base.into_std()).await?;
    // listeners
    let mut listeners = Vec::new();
    for addr in &cfg.global.listen {
        let l =
            sockopt::bgp_listener(*addr).with_context(|| format!("global.listen: bind {addr}"))?;
        info!(%addr, "BGP listening");
        listeners.push(l);
    }
    // neighbors
    let mut configured: Vec<Configured> = cfg
        .neighbor
        .iter()
        .map(|n| Configured {
            cfg: n.clone(),
            addr: match &n.address {
                PeerAddr::Ip(ip) => Some(*ip),
                PeerAddr::Name(_) => None,
            },
            id: None,
        })
        .collect();
    let now = Instant::now().into_std();
    for c in &mut configured {
        if let Some(ip) = c.addr {
            listener_opts_for(&listeners, &c.cfg, ip);
            c.id = Some(speaker.add_peer(now, peer_cfg(&cfg.global, &c.cfg, ip)));
            info!(neighbor = %c.cfg.address, %ip, asn = c.cfg.remote_asn, "neighbor added");
        }
    }
    let listeners = std::sync::Arc::new(listeners);
    for (i, _) in cfg.global.listen.iter().enumerate() {
        let tx = ev_tx.clone();
        let ls = listeners.clone();
        tokio::spawn(async move {
            let Some(l) = ls.get(i) else { return };
            loop {
                match l.accept().await {
                    Ok((s, remote)) => {
                        let local = s.local_addr().unwrap_or(remote);
                        if tx.send(Ev::Accepted(s, remote, local)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
    // API
    if let Some(addr) = cfg.api.listen {
        let tx = ev_tx.clone();
        let app = api::router(move |r| tx.send(Ev::Api(r)).is_ok());
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("api.listen: bind {addr}"))?;
        info!(%addr, "API listening");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(l, app).await {
                warn!(error = %e, "API server stopped");
            }
        });
    }
    // names: one task per name, re-resolving when the record's TTL ends
    let resolver = std::sync::Arc::new(
        hickory_resolver::Resolver::builder_tokio()
            .and_then(|b| b.build())
            .context("DNS resolver (system configuration)")?,
    );
    let mut resolvers = spawn_resolvers(&configured, &resolver, &ev_tx);
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut conns: HashMap<ConnId, ConnHandle> = HashMap::new();
    let mut cfg = cfg;
    let mut shutting_down: Option<Instant> = None;
    let mut stop = opts.stop.clone();
    let mut turn: u64 = 0;

    loop {
        let now = Instant::now().into_std();
        if let Some(v) = &mut vtep {
            v.pump(&mut speaker, now);
            let m = v.take_mappings();
            if let Some(l) = &mut lisp {
                // EVPN → LISP: the Map-Notifies/SMRs of a move leave in this loop turn, with
                // the move's UPDATE
                l.mappings(now, m);
            }
        }
        if let Some(l) = &mut lisp {
            l.flush();
        }
        flush(&mut speaker, &mut conns, &chans, &mut vtep);
        if let Some(v) = &mut vtep {
            v.release_replies();
            v.save_if_due(Instant::now().into_std());
        }
        let evpn_deadline = vtep.as_ref().and_then(|v| v.deadline());
        let lisp_deadline = lisp.as_ref().and_then(|l| l.core.poll_timeout());
        let deadline = speaker
            .poll_timeout()
            .into_iter()
            .chain(evpn_deadline)
            .chain(lisp_deadline)
            .min()
            .map(Instant::from_std)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let deadline = match shutting_down {
            Some(t) => deadline.min(t),
            None => deadline,
        };
        // The await below ends this loop turn. `vmmi::turn` at trace marks it, so a log shows
        // what one turn did: an input's handling and everything it caused up to here (the
        // UPDATE's EVPN import, its SMRs and Map-Notifies — benches/lisp_move/ checks that).
        turn += 1;
        tracing::trace!(target: "vmmi::turn", turn, "await");
        tokio::select! {
            biased;
            ack = ack_rx.recv() => {
                let Some((conn, n)) = ack else { break };
                speaker.handle_sent(Instant::now().into_std(), conn, n);
                while let Ok((conn, n)) = ack_rx.try_recv() {
                    speaker.handle_sent(Instant::now().into_std(), conn, n);
                }
            }
            ev = ev_rx.recv() => {
                let Some(ev) = ev else { break };
                let mut ctx = Ctx { conns: &mut conns, chans: &chans, configured: &mut configured, cfg: &cfg, listeners: &listeners, vtep: &mut vtep, lisp: &mut lisp };
                handle(&mut speaker, &mut ctx, ev);
                while let Ok(ev) = ev_rx.try_recv() {
                    handle(&mut speaker, &mut ctx, ev);
                }
            }
            ev = frame_rx.recv() => {
                let Some(ev) = ev else { break };
                let mut ctx = Ctx { conns: &mut conns, chans: &chans, configured: &mut configured, cfg: &cfg, listeners: &listeners, vtep: &mut vtep, lisp: &mut lisp };
                handle(&mut speaker, &mut ctx, ev);
                // take what else is ready (bounded) so UPDATE packing sees it all at once, but
                // let write confirmations in between
                for _ in 0..FRAME_QUEUE {
                    match frame_rx.try_recv() {
                        Ok(ev) => handle(&mut speaker, &mut ctx, ev),
                        Err(_) => break,
                    }
                }
            }
            // LISP datagrams, read by the loop itself (runtime/lisp.rs: batches, at most
            // RECV_ROUNDS per turn). A flood keeps this branch ready and the sleep below
            // would never be polled: the deadlines that came due meanwhile fire here.
            _ = lisp_readable(&lisp) => {
                if shutting_down.is_some_and(|t| Instant::now() >= t) {
                    break;
                }
                let now = Instant::now().into_std();
                if let Some(l) = &mut lisp {
                    l.receive(now);
                }
                if Instant::from_std(now) >= deadline {
                    speaker.handle_timeout(now);
                    if let Some(v) = &mut vtep {
                        v.handle_timeout(now);
                    }
                    if let Some(l) = &mut lisp
                        && l.core.poll_timeout().is_some_and(|t| t <= now)
                    {
                        l.core.handle_timeout(now);
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                if shutting_down.is_some_and(|t| Instant::now() >= t) {
                    break;
                }
                let now = Instant::now().into_std();
                speaker.handle_timeout(now);
                if let Some(v) = &mut vtep {
                    v.handle_timeout(now);
                }
                if let Some(l) = &mut lisp
                    && l.core.poll_timeout().is_some_and(|t| t <= now)
                {
                    l.core.handle_timeout(now);
                }
            }
            _ = sigterm.recv(), if shutting_down.is_none() => {
                info!("SIGTERM: closing sessions so that peers keep our routes (graceful restart), dataplane left in place");
                speaker.shutdown_for_restart(Instant::now().into_std());
                shutting_down = Some(Instant::now() + SHUTDOWN_GRACE);
            }
            _ = stopped(&mut stop), if shutting_down.is_none() && stop.is_some() => {
                info!("stop requested: shutting down");
                speaker.shutdown_all(Instant::now().into_std());
                shutting_down = Some(Instant::now() + SHUTDOWN_GRACE);
            }
            _ = tokio::signal::ctrl_c(), if shutting_down.is_none() => {
                info!("SIGINT: shutting down");
                speaker.shutdown_all(Instant::now().into_std());
                shutting_down = Some(Instant::now() + SHUTDOWN_GRACE);
            }
            _ = sighup.recv() => {
                match Config::load(opts.config_path.as_deref()) {
                    Ok(new) => {
                        // what the running daemon can take now; the rest keeps its value
                        let plan = config::reload_plan(&cfg, &new);
                        for key in &plan.needs_restart {
                            warn!(%key, "SIGHUP: this change needs a restart; the running value is kept");
                        }
                        let new = plan.effective;
                        let now = Instant::now().into_std();
                        reload(&mut speaker, &mut configured, &new, &listeners);
                        resolvers.iter().for_each(|h| h.abort());
                        resolvers = spawn_resolvers(&configured, &resolver, &ev_tx);
                        match &mut vtep {
                            Some(v) => v.reconfigure(&cfg, &new, &mut speaker, now),
                            None if !new.vni.is_empty() => {
                                let tx = ev_tx.clone();
                                match vtep::Vtep::new(&new, &mut speaker, now, move |e| tx.send(Ev::Dataplane(e)).is_ok()).await {
                                    Ok(Some(mut v)) => {
                                        info!(vnis = new.vni.len(), "SIGHUP: EVPN layer started");
                                        v.start_late(&mut speaker, now);
                                        vtep = Some(v);
                                    }
                                    Ok(None) => {}
                                    Err(e) => warn!(error = %e, "SIGHUP: the EVPN layer could not start; [[vni]] not applied"),
                                }
                            }
                            None => {}
                        }
                        if let Some(l) = &mut lisp {
                            l.reconfigure(now, &cfg, &new);
                        }
                        cfg = new;
                    }
                    Err(errs) => {
                        for e in errs {
                            warn!(error = %e, "SIGHUP: config rejected, keeping the running one");
                        }
                    }
                }
            }
        }
        if shutting_down.is_some() && conns.is_empty() {
            flush(&mut speaker, &mut conns, &chans, &mut vtep);
            break;
        }
    }
    if let Some(v) = &mut vtep {
        v.save_final().await;
    }
    // let writers finish their NOTIFICATIONs
    for (_, h) in conns.drain() {
        drop(h.tx);
        tokio::time::sleep(Duration::from_millis(10)).await;
        h.reader.abort();
    }
    info!("stopped");
    Ok(())
}

/// Completes when the LISP socket is readable (never without LISP, or on a socket error:
/// the next `receive` finds out).
async fn lisp_readable(l: &Option<lisp::LispShell>) {
    match l {
        Some(l) if l.readable().await.is_ok() => {}
        _ => std::future::pending::<()>().await,
    }
}

/// Completes when `stop` turns true (never when there is none, or its sender is gone).
async fn stopped(stop: &mut Option<tokio::sync::watch::Receiver<bool>>) {
    let Some(rx) = stop else {
        return std::future::pending().await;
    };
    if rx.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Resolve every configured name, again when its record's TTL ends (clamped to 5 s … 1 h),
/// and report the address to the loop. The caller aborts the tasks on reload.
fn spawn_resolvers(
    configured: &[Configured],
    resolver: &std::sync::Arc<hickory_resolver::TokioResolver>,
    ev_tx: &mpsc::UnboundedSender<Ev>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles = Vec::new();
    for (i, c) in configured.iter().enumerate() {
        let PeerAddr::Name(name) = &c.cfg.address else {
            continue;
        };
        let (name, r, tx) = (name.clone(), resolver.clone(), ev_tx.clone());
        let local = c.cfg.local_address;
        handles.push(tokio::spawn(async move {
            let mut last: Option<IpAddr> = None;
            loop {
                let wait = match r.lookup_ip(name.as_str()).await {
                    Ok(l) => {
                        let ttl = l
                            .valid_until()
                            .saturating_duration_since(std::time::Instant::now())
                            .clamp(RESOLVE_MIN, RESOLVE_MAX);
                        // with A and AAAA records: the family of the configured source address,
                        // else IPv4 first
                        let want_v6 = local.is_some_and(|a: IpAddr| a.is_ipv6());
                        let pick = l
                            .iter()
                            .find(|a| a.is_ipv6() == want_v6)
                            .or_else(|| l.iter().next());
                        if let Some(ip) = pick
                            && last != Some(ip)
                        {
                            last = Some(ip);
                            if tx.send(Ev::Resolved(i, name.clone(), ip)).is_err() {
                                return;
                            }
                        }
                        debug!(%name, ?last, ttl_secs = ttl.as_secs(), "neighbor name resolved");
                        ttl
                    }
                    Err(e) => {
                        warn!(%name, error = %e, "neighbor name does not resolve; retrying");
                        RESOLVE_RETRY
                    }
                };
                tokio::time::sleep(wait).await;
                if tx.is_closed() {
                    return;
                }
            }
        }));
    }
    handles
}

/// Listener options a neighbor needs: its TCP-MD5 key (per peer address) and, for GTSM, TTL 255.
fn listener_opts_for(listeners: &[tokio::net::TcpListener], n: &config::NeighborCfg, ip: IpAddr) {
    // RFC 5082 §3: with GTSM the peer accepts only TTL 255 — our SYN-ACK included, and that
    // leaves before accept(), with the listener's TTL
    if n.ttl_security {
        for l in listeners {
            let v6 = l.local_addr().is_ok_and(|a| a.is_ipv6());
            if let Err(e) = sockopt::set_ttl(&socket2::SockRef::from(l), v6, 255) {
                warn!(neighbor = %n.address, error = %e, "TTL 255 on listener failed");
            }
        }
    }
    let key = n.md5_password.as_deref().unwrap_or("");
    if key.is_empty() {
        return;
    }
    for l in listeners {
        if let Err(e) = sockopt::set_tcp_md5(&socket2::SockRef::from(l), ip, key.as_bytes()) {
            warn!(neighbor = %n.address, error = %e, "TCP-MD5 on listener failed");
        }
    }
}

/// SIGHUP: neighbors added, removed or changed; the others are not touched.
fn reload(
    sp: &mut Speaker,
    configured: &mut Vec<Configured>,
    new: &Config,
    listeners: &[tokio::net::TcpListener],
) {
    let now = Instant::now().into_std();
    let mut keep: Vec<Configured> = Vec::new();
    for c in configured.drain(..) {
        if new.neighbor.contains(&c.cfg) {
            keep.push(c);
        } else if let Some(id) = c.id {
            info!(neighbor = %c.cfg.address, "SIGHUP: neighbor removed or changed");
            sp.remove_peer(now, id);
        }
    }
    for n in &new.neighbor {
        if keep.iter().any(|c| &c.cfg == n) {
            continue;
        }
        // names are added when their resolver task reports an address
        let addr = match &n.address {
            PeerAddr::Ip(ip) => Some(*ip),
            PeerAddr::Name(_) => None,
        };
        let id = addr.map(|ip| {
            listener_opts_for(listeners, n, ip);
            sp.add_peer(now, peer_cfg(&new.global, n, ip))
        });
        info!(neighbor = %n.address, "SIGHUP: neighbor added");
        keep.push(Configured {
            cfg: n.clone(),
            addr,
            id,
        });
    }
    *configured = keep;
}

/// What event handling may touch besides the speaker.
struct Ctx<'a> {
    conns: &'a mut HashMap<ConnId, ConnHandle>,
    chans: &'a Chans,
    configured: &'a mut Vec<Configured>,
    cfg: &'a Config,
    listeners: &'a [tokio::net::TcpListener],
    vtep: &'a mut Option<vtep::Vtep>,
    lisp: &'a mut Option<lisp::LispShell>,
}

fn handle(sp: &mut Speaker, cx: &mut Ctx<'_>, ev: Ev) {
    let now = Instant::now().into_std();
    let (conns, chans) = (&mut *cx.conns, cx.chans);
    match ev {
        Ev::Accepted(stream, remote, local) => match sp.handle_accept(now, remote, local) {
            Some(conn) => {
                // RFC 5082: GTSM / TTL for the peer on the accepted socket
                if let Some(c) = cx
                    .configured
                    .iter()
                    .find(|c| c.addr.map(canon) == Some(canon(remote.ip())))
                {
                    set_ttl(&stream, &c.cfg, remote.ip());
                }
                start_conn(conns, chans, conn, stream);
            }
            None => {
                debug!(%remote, "connection from an unconfigured address refused");
                drop(stream);
            }
        },
        Ev::Connected(conn, stream) => {
            let local = stream.local_addr().ok();
            if let Some(local) = local {
                sp.handle_connected(now, conn, local);
                start_conn(conns, chans, conn, stream);
            } else {
                sp.handle_connect_failed(now, conn, "no local address");
            }
        }
        Ev::ConnectFailed(conn, why) => sp.handle_connect_failed(now, conn, &why),
        Ev::Frame(conn, bytes) => sp.handle_frame(now, conn, &bytes),
        Ev::FrameError(conn, e) => {
            sp.handle_frame_error(now, conn, e.notification.clone(), &e.error.to_string())
        }
        Ev::Closed(conn, why) => {
            conns.remove(&conn);
            sp.handle_closed(now, conn, &why);
        }
        Ev::Api(ApiReq::Lisp(what, reply)) => {
            let v = match cx.lisp.as_ref() {
                None => {
                    Err("no [lisp] roles are configured: the LISP control plane is off".to_string())
                }
                Some(l) => Ok(match what {
                    LispView::Registrations => serde_json::to_value(l.core.registrations(now)),
                    LispView::Subscribers => serde_json::to_value(l.core.subscribers(now)),
                    LispView::MapCache => serde_json::to_value(l.core.map_cache(now)),
                    LispView::Counters => serde_json::to_value(l.core.counters()).map(|mut v| {
                        if let (Some(o), Ok(serde_json::Value::Object(t))) =
                            (v.as_object_mut(), serde_json::to_value(l.last_sent))
                        {
                            o.extend(t);
                        }
                        v
                    }),
                }
                .unwrap_or_default()),
            };
            let _ = reply.send(v);
        }
        Ev::Api(ApiReq::LispRequest {
            eid,
            subscribe,
            reply,
        }) => {
            let r = match cx.lisp.as_mut() {
                None => Err("no [lisp] roles are configured: the LISP control plane is off".into()),
                Some(l) if !l.core.cfg().xtr => {
                    Err("the xtr role is not configured ([lisp] roles)".into())
                }
                Some(l) => {
                    l.core.request(now, eid, subscribe);
                    Ok(())
                }
            };
            let _ = reply.send(r);
        }
        Ev::Dataplane(e) => {
            if let Some(v) = cx.vtep.as_mut() {
                v.dataplane_event(now, e);
            }
        }
        Ev::Api(ApiReq::Metrics(reply)) => {
            let _ = reply.send(metrics::render(sp, cx.vtep.as_ref(), cx.lisp.as_ref(), now));
        }
        Ev::Api(ApiReq::Evpn(req)) => match cx.vtep {
            Some(v) => v.api(now, req),
            None => vtep::no_evpn(req),
        },
        Ev::Api(req) => api_req(sp, now, req),
        Ev::Resolved(i, name, ip) => {
            // the configured entry may have changed with a reload: match by index and name
            let Some(c) = cx.configured.get_mut(i) else {
                return;
            };
            if !matches!(&c.cfg.address, PeerAddr::Name(n) if *n == name) || c.addr == Some(ip) {
                return;
            }
            // a new address is a new neighbor: the old session goes (RFC 4486 Peer
            // De-configured), the new one starts
            if let Some(id) = c.id.take() {
                info!(neighbor = %name, old = ?c.addr, new = %ip, "neighbor name now resolves to a new address");
                sp.remove_peer(now, id);
            }
            c.addr = Some(ip);
            listener_opts_for(cx.listeners, &c.cfg, ip);
            c.id = Some(sp.add_peer(now, peer_cfg(&cx.cfg.global, &c.cfg, ip)));
            info!(neighbor = %name, %ip, asn = c.cfg.remote_asn, "neighbor added");
        }
    }
}

fn canon(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn set_ttl(stream: &TcpStream, n: &config::NeighborCfg, peer: IpAddr) {
    let s = socket2::SockRef::from(stream);
    let v6 = stream.local_addr().is_ok_and(|a| a.is_ipv6());
    let r = if n.ttl_security {
        sockopt::set_gtsm(&s, v6, 1)
    } else if let Some(h) = n.ebgp_multihop {
        sockopt::set_ttl(&s, v6, h)
    } else {
        Ok(())
    };
    if let Err(e) = r {
        warn!(%peer, error = %e, "TTL/GTSM socket option failed");
    }
}

fn api_req(sp: &mut Speaker, now: std::time::Instant, req: ApiReq) {
    match req {
        ApiReq::Neighbors(reply) => {
            let _ = reply.send(sp.neighbors(now));
        }
        ApiReq::Routes { family, vni, reply } => {
            let _ = reply.send(routes(sp, family, vni));
        }
        ApiReq::Announce(spec, reply) => {
            let r = spec.build().map(|b| {
                sp.originate(now, b.family, &b.nlri, b.attrs, b.next_hop);
            });
            let _ = reply.send(r);
        }
        ApiReq::Withdraw(spec, reply) => {
            let r = spec
                .build()
                .map(|b| sp.withdraw_local(now, b.family, &b.nlri));
            let _ = reply.send(r);
        }
        ApiReq::Evpn(r) => vtep::no_evpn(r),
        ApiReq::Metrics(reply) => {
            let _ = reply.send(metrics::render(sp, None, None, now));
        }
        ApiReq::Lisp(_, reply) => {
            let _ = reply.send(Err("no LISP".into()));
        }
        ApiReq::LispRequest { reply, .. } => {
            let _ = reply.send(Err("no LISP".into()));
        }
        ApiReq::Refresh {
            neighbor,
            family,
            reply,
        } => {
            let r = match sp.peer_by_name(&neighbor) {
                None => Err(format!("no neighbor {neighbor}")),
                Some(id) if sp.request_refresh(now, id, family) => Ok(()),
                Some(_) => Err(format!(
                    "neighbor {neighbor} is not established or did not negotiate route refresh for {family}"
                )),
            };
            let _ = reply.send(r);
        }
    }
}

/// Every route of `family` (all when None), best path first.
pub fn routes(sp: &Speaker, family: Option<Family>, vni: Option<u32>) -> Vec<RouteView> {
    let names: HashMap<PeerId, String> = sp
        .neighbors(std::time::Instant::now())
        .into_iter()
        .map(|n| (n.id, n.address.ip().to_string()))
        .collect();
    let name = |p: PeerId| {
        if p == PeerId::LOCAL {
            "local".to_string()
        } else {
            names
                .get(&p)
                .cloned()
                .unwrap_or_else(|| format!("peer-{}", p.0))
        }
    };
    let mut out = Vec::new();
    let fams: Vec<Family> = sp.rib().families().collect();
    for f in fams.into_iter().filter(|f| family.is_none_or(|x| x == *f)) {
        if let Some(t) = sp.rib().table(f) {
            for (k, e) in &t.map {
                if let Some(v) = crate::bgp::spec::view(f, k, e, &name, vni) {
                    out.push(v);
                }
            }
        }
    }
    out.sort_by(|a, b| (&a.family, &a.prefix).cmp(&(&b.family, &b.prefix)));
    out
}

fn start_conn(
    conns: &mut HashMap<ConnId, ConnHandle>,
    chans: &Chans,
    conn: ConnId,
    stream: TcpStream,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let (etx, acks) = (chans.ev.clone(), chans.acks.clone());
    tokio::spawn(
        async move {
            while let Some(buf) = rx.recv().await {
                let n = buf.len();
                if let Err(e) = wr.write_all(&buf).await {
                    let _ = etx.send(Ev::Closed(conn, format!("write: {e}")));
                    return;
                }
                let _ = acks.send((conn, n));
            }
            let _ = wr.shutdown().await;
        }
        .instrument(info_span!("writer", conn = conn.0)),
    );
    let ftx = chans.frames.clone();
    let reader = tokio::spawn(async move {
        // Frames up to 65535 octets: the core checks each against the negotiated maximum.
        let ctx = BgpCtx {
            extended_message: true,
            ..BgpCtx::default()
        };
        let mut buf = BytesMut::with_capacity(1 << 16);
        loop {
            loop {
                match frame_len(&buf, &ctx) {
                    Ok(Some(len)) if buf.len() >= len => {
                        let frame = buf.split_to(len);
                        if ftx.send(Ev::Frame(conn, frame.to_vec())).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => break,
                    Err(e) => {
                        let _ = ftx.send(Ev::FrameError(conn, e)).await;
                        return;
                    }
                }
            }
            match rd.read_buf(&mut buf).await {
                Ok(0) => {
                    let _ = ftx
                        .send(Ev::Closed(conn, "connection closed by peer".into()))
                        .await;
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = ftx.send(Ev::Closed(conn, format!("read: {e}"))).await;
                    return;
                }
            }
        }
    });
    conns.insert(conn, ConnHandle { tx, reader });
}

/// Logs one speaker event inside a `peer` span (one per neighbor, so `VMMI_LOG` directives
/// like `[peer{peer=192.0.2.7}]=debug` and the JSON log's `span` field select a neighbor).
fn log_event(e: &Event) {
    let peer = match e {
        Event::StateChange { peer, .. }
        | Event::Established { peer, .. }
        | Event::SessionDown { peer, .. }
        | Event::NotificationSent { peer, .. }
        | Event::NotificationReceived { peer, .. }
        | Event::UpdateError { peer, .. }
        | Event::MaxPrefix { peer, .. }
        | Event::StaleSwept { peer, .. }
        | Event::RouteRefresh { peer, .. }
        | Event::EndOfRib { peer, .. } => Some(peer.as_str()),
        Event::Rejected { .. } | Event::DeferralEnded { .. } => None,
    };
    let span = match peer {
        Some(p) => tracing::info_span!("peer", peer = %p),
        None => tracing::Span::none(),
    };
    let _g = span.enter();
    log_event_in_span(e);
}

fn log_event_in_span(e: &Event) {
    match e {
        Event::StateChange { from, to, .. } => info!(?from, ?to, "state"),
        Event::Established { families, .. } => {
            let f: Vec<String> = families.iter().map(|f| f.to_string()).collect();
            info!(families = ?f, "session established")
        }
        Event::SessionDown {
            reason, graceful, ..
        } => {
            warn!(%reason, graceful, "session down")
        }
        Event::NotificationSent {
            notification,
            reason,
            ..
        } => {
            warn!(notification = %notification.describe(), %reason, "NOTIFICATION sent")
        }
        Event::NotificationReceived { notification, .. } => {
            warn!(notification = %notification.describe(), "NOTIFICATION received")
        }
        Event::UpdateError {
            action, findings, ..
        } => {
            warn!(%action, ?findings, "malformed UPDATE handled per RFC 7606")
        }
        Event::MaxPrefix {
            count,
            limit,
            teardown,
            ..
        } => {
            warn!(count, limit, teardown, "max-prefix exceeded")
        }
        Event::StaleSwept {
            family,
            removed,
            why,
            ..
        } => {
            info!(%family, removed, why, "stale routes swept")
        }
        Event::RouteRefresh {
            family,
            subtype,
            received,
            ..
        } => {
            info!(%family, subtype, received, "route refresh")
        }
        Event::Rejected { remote } => debug!(%remote, "connection refused"),
        Event::EndOfRib { family, .. } => info!(%family, "End-of-RIB received"),
        Event::DeferralEnded { timed_out } => {
            info!(
                timed_out,
                "restart: advertisement deferral over, sending our table"
            )
        }
    }
}

/// Carry out everything the speaker asks for.
fn flush(
    sp: &mut Speaker,
    conns: &mut HashMap<ConnId, ConnHandle>,
    chans: &Chans,
    vtep: &mut Option<vtep::Vtep>,
) {
    while let Some(o) = sp.poll_output() {
        match o {
            Output::Send { conn, data } => {
                if let Some(h) = conns.get(&conn) {
                    let _ = h.tx.send(data);
                }
            }
            Output::Close { conn } => {
                if let Some(h) = conns.remove(&conn) {
                    // the writer drains what is queued, then shuts the socket down
                    drop(h.tx);
                    let r = h.reader;
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        r.abort();
                    });
                }
            }
            Output::Connect {
                conn,
                remote,
                local,
                md5,
                ttl,
                ..
            } => {
                let tx = chans.ev.clone();
                let opts = sockopt::ConnectOpts {
                    local,
                    md5,
                    gtsm_hops: match ttl {
                        TtlMode::Gtsm(h) => Some(h),
                        _ => None,
                    },
                    ttl: match ttl {
                        TtlMode::Multihop(t) => Some(t),
                        _ => None,
                    },
                };
                tokio::spawn(async move {
                    match sockopt::bgp_connect(remote, &opts, Duration::from_secs(10)).await {
                        Ok(s) => {
                            let _ = tx.send(Ev::Connected(conn, s));
                        }
                        Err(e) => {
                            let _ = tx.send(Ev::ConnectFailed(conn, e.to_string()));
                        }
                    }
                });
            }
            Output::Event(e) => {
                if let Some(v) = vtep.as_mut() {
                    v.speaker_event(&e, Instant::now().into_std());
                }
                log_event(&e)
            }
        }
    }
}
