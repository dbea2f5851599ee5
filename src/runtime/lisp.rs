//! The runtime side of the LISP control plane: the UDP 4342 socket, its reader task, and
//! feeding the sans-IO `lisp::Lisp` core (datagrams, timers, the EVPN mapping feed).
//!
//! Owns: the socket, name resolution of `[[lisp.map_server]]` at start, seeds from the OS
//! (nonce high bits from the wall clock, PRNG seed), sending what the core outputs, logging
//! its events.
//! Must not: decide anything about LISP (that is `lisp/`).

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // runtime/: sockets and the clock live here

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::net::UdpSocket;
use tracing::{debug, info, warn};

use crate::config::{Config, PeerAddr};
use crate::evpn::Mapping;
use crate::lisp::{EidPrefix, Lisp, LispCoreCfg, LispEvent, Output};

/// The largest LISP control message we read (a Map-Register with many records fits; larger
/// datagrams are cut and then refused by the codec).
const MAX_DATAGRAM: usize = 9000;

pub struct LispShell {
    pub core: Lisp,
    sock: Arc<UdpSocket>,
    local: SocketAddr,
    pub send_errors: u64,
    /// Warnings logged in the current second (refusals are counted in metrics; the log keeps
    /// at most `WARN_PER_SEC` a second so a flood of bad packets cannot flood it).
    warned: (u64, u32),
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
    /// `None` when `[lisp] roles` is empty. `deliver` hands received datagrams to the loop.
    pub async fn new(
        c: &Config,
        now: Instant,
        deliver: impl Fn(SocketAddr, SocketAddr, Vec<u8>) -> bool + Send + Sync + 'static,
    ) -> anyhow::Result<Option<LispShell>> {
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
        let rx = sock.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            loop {
                match rx.recv_from(&mut buf).await {
                    Ok((n, from)) => {
                        let data = buf.get(..n).unwrap_or_default().to_vec();
                        if !deliver(from, to_local, data) {
                            return;
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, "lisp: recv");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                }
            }
        });
        info!(listen = %local, roles = ?c.lisp.roles, sites = c.lisp.site.len(), map_servers = c.lisp.map_server.len(), "LISP control plane up");
        Ok(Some(LispShell {
            core: Lisp::new(cfg, now),
            sock,
            local,
            send_errors: 0,
            warned: (0, 0),
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

    /// Send what the core produced.
    pub fn flush(&mut self) {
        while let Some(o) = self.core.poll_output() {
            match o {
                Output::Send { to, bytes } => {
                    if let Err(e) = self.sock.try_send_to(&bytes, to) {
                        self.send_errors += 1;
                        debug!(%to, error = %e, "lisp: send");
                    }
                }
                Output::Event(e) => self.log_event(&e),
            }
        }
    }
}

impl LispShell {
    fn log_event(&mut self, e: &LispEvent) {
        // the core's events are structured (serde): one line each; refusals are warnings,
        // at most WARN_PER_SEC a second (all of them are counted in /metrics)
        let text = serde_json::to_string(e).unwrap_or_default();
        // events about a site's registrations are logged in a `lisp_site` span (one per site)
        let site = serde_json::to_value(e)
            .ok()
            .and_then(|v| v.get("site").and_then(|s| s.as_str()).map(str::to_string));
        let span = match site {
            Some(s) => tracing::info_span!("lisp_site", site = %s),
            None => tracing::Span::none(),
        };
        let _g = span.enter();
        let refused = text.contains("reject") || text.contains("auth") || text.contains("drop");
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
