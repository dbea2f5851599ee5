//! The runtime side of the LISP control plane: the UDP 4342 socket and feeding the sans-IO
//! `lisp::Lisp` core (datagrams, timers, the EVPN mapping feed).
//!
//! Owns: the socket, name resolution of `[[lisp.map_server]]` at start, seeds from the OS
//! (nonce high bits from the wall clock, PRNG seed), sending what the core outputs, logging
//! its events.
//! Must not: decide anything about LISP (that is `lisp/`).
//!
//! I/O: the event loop itself reads the socket (no reader task, no channel, no copy): when it
//! is readable, `receive` takes up to `sockopt::BATCH` datagrams per `recvmmsg` straight into
//! a reused buffer, hands each to the core with one `now`, and sends the replies with
//! `sendmmsg` before the next batch; at most `RECV_ROUNDS` batches per loop turn, so BGP, the
//! API and timers get their turn under a flood. `flush` sends everything else the core queued
//! (Map-Notifies, SMRs) the same way. A datagram the kernel refuses (full socket buffer) is
//! counted in `send_errors` and dropped, as UDP would. UDP GRO/GSO is not used: it coalesces
//! same-sized datagrams of one flow, and a Map-Resolver's requests and replies are one
//! datagram per ITR.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // runtime/: sockets and the clock live here

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tracing::{debug, info, warn};

use super::sockopt::{self, BATCH, RecvBatch};
use crate::config::{Config, PeerAddr};
use crate::evpn::Mapping;
use crate::lisp::{EidPrefix, Lisp, LispCoreCfg, LispEvent, NotifyKind, Output};

/// The largest LISP control message we read (a Map-Register with many records fits; larger
/// datagrams are cut and then refused by the codec).
const MAX_DATAGRAM: usize = 9000;

/// `recvmmsg` batches taken in one loop turn at most.
const RECV_ROUNDS: usize = 8;

pub struct LispShell {
    pub core: Lisp,
    sock: Arc<UdpSocket>,
    local: SocketAddr,
    /// Our address as the destination of received datagrams (the VTEP for a wildcard bind).
    to_local: SocketAddr,
    rx: RecvBatch,
    /// Datagrams the core queued, sent `BATCH` at a time.
    tx: Vec<(SocketAddr, Vec<u8>)>,
    pub send_errors: u64,
    /// Warnings logged in the current second (refusals are counted in metrics; the log keeps
    /// at most `WARN_PER_SEC` a second so a flood of bad packets cannot flood it).
    warned: (u64, u32),
    pub last_sent: LastSent,
}

/// When the last publication (RFC 9437 §6 Map-Notify for a change) and the last SMR were
/// handed to the socket, on the wall clock (µs since the UNIX epoch): for correlating a move
/// with its LISP messages (`GET /v1/lisp/counters`, the demo's timeline).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct LastSent {
    pub last_publication_unix_us: Option<u64>,
    pub last_smr_unix_us: Option<u64>,
}

/// Refusal warnings logged per second at most.
const WARN_PER_SEC: u32 = 10;

/// A send buffer large enough for one change fanned out to 10,000 subscribers (one flush).
const SNDBUF: usize = 8 << 20;

/// The LISP socket: non-blocking, with a large send buffer.
fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    let _ = s.set_send_buffer_size(SNDBUF);
    let _ = s.set_recv_buffer_size(SNDBUF);
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

impl LispShell {
    /// `None` when `[lisp] roles` is empty.
    pub async fn new(c: &Config, now: Instant) -> anyhow::Result<Option<LispShell>> {
        if c.lisp.roles.is_empty() {
            return Ok(None);
        }
        // map-server names: resolved once at start (the xTR re-registers to the address)
        let mut names: HashMap<String, IpAddr> = HashMap::new();
        for m in &c.lisp.map_server {
            if let PeerAddr::Name(n) = &m.address {
                let ip = tokio::net::lookup_host((n.as_str(), 4342))
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .map(|a| a.ip());
                match ip {
                    Some(ip) => {
                        names.insert(n.clone(), ip);
                    }
                    None => warn!(name = %n, "lisp.map_server: name does not resolve"),
                }
            }
        }
        let mut cfg = LispCoreCfg::from_config(&c.lisp, c.global.vtep, |a| match a {
            PeerAddr::Ip(ip) => Some(*ip),
            PeerAddr::Name(n) => names.get(n).copied(),
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        // the EVPN mapping feed owns the EID space of every configured VNI (IID = VNI)
        cfg.evpn_iids = c.vni.iter().map(|v| v.vni).collect();
        // RFC 9301 §5.6: Map-Register nonces must keep increasing across restarts; without
        // persistent storage the wall clock's seconds are the high half
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        cfg.nonce_seed = secs << 32;
        cfg.rng_seed = std::collections::hash_map::RandomState::new().hash_one(secs);
        let sock =
            bind(c.lisp.listen).with_context(|| format!("lisp.listen: bind {}", c.lisp.listen))?;
        let local = sock.local_addr().unwrap_or(c.lisp.listen);
        // the destination address of a datagram on a wildcard socket is our RLOC
        let to_local = if local.ip().is_unspecified() {
            SocketAddr::new(c.global.vtep, local.port())
        } else {
            local
        };
        let sock = Arc::new(sock);
        info!(listen = %local, roles = ?c.lisp.roles, sites = c.lisp.site.len(), map_servers = c.lisp.map_server.len(), "LISP control plane up");
        Ok(Some(LispShell {
            core: Lisp::new(cfg, now),
            sock,
            local,
            to_local,
            rx: RecvBatch::new(MAX_DATAGRAM),
            tx: Vec::with_capacity(BATCH),
            send_errors: 0,
            warned: (0, 0),
            last_sent: LastSent::default(),
        }))
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The EVPN layer's location changes (IID = VNI, RLOC = VTEP, version = MAC Mobility
    /// sequence): in the same loop turn as the UPDATE.
    pub fn mappings(&mut self, now: Instant, v: impl IntoIterator<Item = Mapping>) {
        for m in v {
            let eid = match m.ip {
                Some(ip) => EidPrefix::host(m.vni, ip),
                None => EidPrefix::mac(m.vni, m.mac),
            };
            self.core.set_mapping(now, eid, m.rloc, m.version);
        }
    }

    /// SIGHUP: the sites and the EVPN feed's Instance IDs of the effective configuration
    /// (roles, listen address, switches and map-servers need a restart: `reload_plan`).
    pub fn reconfigure(&mut self, now: Instant, old: &Config, new: &Config) {
        if old.lisp.site != new.lisp.site {
            match crate::lisp::sites_from_config(&new.lisp) {
                Ok(sites) => {
                    info!(sites = sites.len(), "SIGHUP: LISP sites reloaded");
                    self.core.set_sites(now, sites);
                }
                Err(e) => warn!(error = %e, "SIGHUP: LISP sites not reloaded"),
            }
        }
        self.core
            .set_evpn_iids(new.vni.iter().map(|v| v.vni).collect());
        self.flush();
    }

    /// Completes when the socket may have datagrams (then call `receive`).
    pub async fn readable(&self) -> std::io::Result<()> {
        self.sock.readable().await
    }

    /// Everything the socket holds, up to `RECV_ROUNDS` batches: each datagram to the core at
    /// `now`, the replies sent after each batch. How many datagrams were read.
    pub fn receive(&mut self, now: Instant) -> usize {
        let mut total = 0;
        for _ in 0..RECV_ROUNDS {
            let r = self.sock.try_io(Interest::READABLE, || {
                sockopt::recv_batch(&*self.sock, &mut self.rx)
            });
            let n = match r {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    debug!(error = %e, "lisp: recv");
                    break;
                }
            };
            for i in 0..n {
                match self.rx.get(i) {
                    Some((Some(from), data)) => {
                        self.core.handle_packet(now, from, self.to_local, data)
                    }
                    _ => debug!("lisp: datagram from a non-IP address"),
                }
            }
            self.flush();
            total += n;
            if n < BATCH {
                // drained (the next `readable` may wake once more and find nothing)
                break;
            }
        }
        total
    }

    /// Send what the core produced.
    pub fn flush(&mut self) {
        while let Some(o) = self.core.poll_output() {
            match o {
                Output::Send { to, bytes } => {
                    self.tx.push((to, bytes));
                    if self.tx.len() >= BATCH {
                        self.send_queued();
                    }
                }
                Output::Event(e) => self.log_event(&e),
            }
        }
        self.send_queued();
    }

    /// `sendmmsg` of `tx`, `BATCH` at a time; a datagram refused is counted and skipped.
    fn send_queued(&mut self) {
        let mut at = 0;
        while at < self.tx.len() {
            let msgs: smallvec::SmallVec<[(SocketAddr, &[u8]); BATCH]> = self
                .tx
                .iter()
                .skip(at)
                .take(BATCH)
                .map(|(to, b)| (*to, b.as_slice()))
                .collect();
            match sockopt::send_batch(&*self.sock, &msgs) {
                Ok(0) => {
                    self.send_errors += 1;
                    at += 1;
                }
                Ok(n) => at += n,
                Err(e) => {
                    // the first datagram was refused: drop it, go on with the rest
                    self.send_errors += 1;
                    if let Some((to, _)) = msgs.first() {
                        debug!(%to, error = %e, "lisp: send");
                    }
                    at += 1;
                }
            }
        }
        self.tx.clear();
    }
}

impl LispShell {
    fn log_event(&mut self, e: &LispEvent) {
        let stamp = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_micros() as u64)
        };
        match e {
            LispEvent::MapNotifySent {
                kind: NotifyKind::Publication,
                ..
            } => self.last_sent.last_publication_unix_us = stamp(),
            LispEvent::SmrSent { .. } => self.last_sent.last_smr_unix_us = stamp(),
            _ => {}
        }
        // the core's events are structured (serde): one line each; refusals are warnings,
        // at most WARN_PER_SEC a second (all of them are counted in /metrics). Nothing is
        // serialized for an event that will not be logged (the Map-Request hot path).
        let refused = is_refusal(e);
        if !refused && !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let v = serde_json::to_value(e).unwrap_or_default();
        let text = v.to_string();
        // events about a site's registrations are logged in a `lisp_site` span (one per site)
        let span = match v.get("site").and_then(|s| s.as_str()) {
            Some(s) => tracing::info_span!("lisp_site", site = %s),
            None => tracing::Span::none(),
        };
        let _g = span.enter();
        if !refused {
            debug!(event = %text, "lisp");
            return;
        }
        let sec = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.warned.0 != sec {
            self.warned = (sec, 0);
        }
        self.warned.1 += 1;
        if self.warned.1 <= WARN_PER_SEC {
            warn!(event = %text, "lisp");
        } else {
            debug!(event = %text, "lisp");
        }
    }
}

/// Events logged as warnings: inputs refused (dropped, registrations and subscriptions
/// rejected) and subscriptions dropped for want of an acknowledgement.
fn is_refusal(e: &LispEvent) -> bool {
    match e {
        LispEvent::Dropped { .. }
        | LispEvent::RegistrationRejected { .. }
        | LispEvent::SubscribeRejected { .. } => true,
        LispEvent::MapNotifySent { kind, .. }
        | LispEvent::MapNotifyRetransmit { kind, .. }
        | LispEvent::MapNotifyGaveUp { kind, .. } => *kind == NotifyKind::SubscriptionDropped,
        _ => false,
    }
}
