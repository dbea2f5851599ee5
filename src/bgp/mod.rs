//! The BGP speaker, sans-IO: every session's FSM, capability negotiation, UPDATE ingest into
//! the RIB, Adj-RIB-Out packing, route reflection, graceful restart, route refresh,
//! max-prefix and ADD-PATH (RFC 7911) in both directions.
//!
//! Owns: all per-peer protocol state and the RIB (one owner, no locks).
//! Must not: touch sockets, tokio or clocks — time comes in as `now`, timers go out as the
//! deadline `poll_timeout` returns, bytes go out as `Output::Send`. The shell in `runtime/`
//! frames the TCP stream with `wire::bgp::message::frame_len` and hands whole messages to
//! `handle_frame`; it reports written bytes with `handle_sent` (flow control: at most
//! `MAX_INFLIGHT` octets are handed out per connection before the shell confirms them).
//!
//! ```text
//!   runtime ──handle_accept/connected/frame/sent/closed/timeout──▶ Speaker ──poll_output──▶ runtime
//!                                                                    │
//!                                   session.rs (FSM, OPEN)  ingest.rs (UPDATE → RIB)
//!                                   adj_out.rs (export policy, packing, EoR)
//!                                   addpath.rs (ADD-PATH send: paths, path ids)
//! ```

mod addpath;
mod adj_out;
mod ingest;
mod session;
pub mod spec;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::rib::key::{NlriRest, RouteKey, prefix_key, split_evpn};
use crate::rib::{Attrs, PeerId, PeerMeta, Rib};
use crate::wire::bgp::afi::Family;
use crate::wire::bgp::attr::{MpNextHop, PathAttr};
use crate::wire::bgp::notification::NotificationMsg;

pub use session::{Negotiated, PeerState};

/// Octets handed to a connection and not yet confirmed by `handle_sent` before packing stops.
pub const MAX_INFLIGHT: usize = 1 << 20;

/// Speaker-wide settings.
#[derive(Clone, Debug)]
pub struct SpeakerCfg {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// RFC 4456 §7 CLUSTER_ID (default: the router ID).
    pub cluster_id: Ipv4Addr,
    /// RFC 4724 §3 Restart Time we advertise.
    pub gr_restart_time: u16,
    /// How long stale routes of a restarted peer may wait for its End-of-RIB once it is back.
    pub stale_routes_time: u16,
    /// This start is a restart with forwarding state preserved (RFC 4724 §4.1): advertise the
    /// R bit and F bits and defer our own advertisements until the peers' End-of-RIB.
    pub restarting: bool,
}

/// What `max_prefix` does when exceeded.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaxPrefixAction {
    /// Log and count once; keep the session.
    Warning,
    /// RFC 4486: NOTIFICATION Cease / Maximum Number of Prefixes Reached, then stay down for
    /// `max_prefix_restart` (0 = until reconfigured).
    Teardown,
}

/// RFC 5082 / multihop TTL handling for a session.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TtlMode {
    /// Kernel default (64) — directly connected eBGP and iBGP.
    Default,
    /// eBGP multihop: send with this TTL.
    Multihop(u8),
    /// GTSM: send with 255, accept only ≥ 255 - (hops - 1).
    Gtsm(u8),
}

/// One neighbor as the core sees it (the address already resolved).
#[derive(Clone, Debug)]
pub struct PeerCfg {
    /// For logs and the API: the configured address or DNS name.
    pub name: String,
    pub remote: SocketAddr,
    pub remote_asn: u32,
    pub families: Vec<Family>,
    pub passive: bool,
    pub hold_time: u16,
    pub keepalive: Option<u16>,
    pub connect_retry: u16,
    pub delay_open: Option<u16>,
    pub rr_client: bool,
    pub max_prefix: Option<u32>,
    pub max_prefix_action: MaxPrefixAction,
    pub max_prefix_restart: u32,
    pub graceful_restart: bool,
    /// RFC 7911: receive path identifiers (advertise Receive) for every configured family.
    pub add_path_rx: bool,
    /// RFC 7911: send every path with path identifiers (advertise Send) for every configured
    /// family — used for the families where the peer advertises Receive.
    pub add_path_tx: bool,
    pub local_address: Option<IpAddr>,
    pub md5: Option<Vec<u8>>,
    pub ttl: TtlMode,
}

impl PeerCfg {
    /// Defaults an operator expects from FRR/GoBGP for a plain neighbor.
    pub fn new(remote: SocketAddr, remote_asn: u32, families: Vec<Family>) -> PeerCfg {
        PeerCfg {
            name: remote.ip().to_string(),
            remote,
            remote_asn,
            families,
            passive: false,
            hold_time: 90,
            keepalive: None,
            connect_retry: 120,
            delay_open: None,
            rr_client: false,
            max_prefix: None,
            max_prefix_action: MaxPrefixAction::Teardown,
            max_prefix_restart: 0,
            graceful_restart: true,
            add_path_rx: false,
            add_path_tx: false,
            local_address: None,
            md5: None,
            ttl: TtlMode::Default,
        }
    }
}

/// A transport connection, named by the core.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize)]
pub struct ConnId(pub u64);

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Open a TCP connection; answer with `handle_connected` or `handle_connect_failed`.
    Connect {
        conn: ConnId,
        peer: PeerId,
        remote: SocketAddr,
        local: Option<IpAddr>,
        md5: Option<Vec<u8>>,
        ttl: TtlMode,
    },
    /// Write these bytes (whole messages) in order.
    Send { conn: ConnId, data: Vec<u8> },
    /// Close after writing what was queued.
    Close { conn: ConnId },
    /// Something to log and count.
    Event(Event),
}

/// Events for logs, metrics and tests; every one names the peer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    StateChange {
        peer: String,
        from: PeerState,
        to: PeerState,
    },
    Established {
        peer: String,
        families: Vec<Family>,
    },
    SessionDown {
        peer: String,
        reason: String,
        /// Routes kept as stale for graceful restart (else flushed).
        graceful: bool,
    },
    NotificationSent {
        peer: String,
        notification: NotificationMsg,
        reason: String,
    },
    NotificationReceived {
        peer: String,
        notification: NotificationMsg,
    },
    /// RFC 7606: an UPDATE was repaired or partly ignored.
    UpdateError {
        peer: String,
        action: String,
        findings: Vec<String>,
    },
    MaxPrefix {
        peer: String,
        count: u32,
        limit: u32,
        teardown: bool,
    },
    StaleSwept {
        peer: String,
        family: Family,
        removed: usize,
        why: &'static str,
    },
    RouteRefresh {
        peer: String,
        family: Family,
        subtype: u8,
        received: bool,
    },
    /// An incoming connection nobody is configured for.
    Rejected {
        remote: SocketAddr,
    },
    /// RFC 4724 §2: the peer finished sending its table for `family`.
    EndOfRib {
        peer: String,
        family: Family,
    },
    /// RFC 4724 §4.1: after our restart, advertisements start (every peer's End-of-RIB seen,
    /// or the Restart Time ran out).
    DeferralEnded {
        timed_out: bool,
    },
}

/// A snapshot of one neighbor for the API.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NeighborView {
    pub id: PeerId,
    pub name: String,
    pub address: SocketAddr,
    pub remote_asn: u32,
    pub state: PeerState,
    pub remote_id: Option<Ipv4Addr>,
    pub uptime_secs: Option<u64>,
    pub families: Vec<Family>,
    pub negotiated: Option<Negotiated>,
    pub prefixes_received: BTreeMap<String, u32>,
    pub stale: BTreeMap<String, usize>,
    pub msgs_in: u64,
    pub msgs_out: u64,
    pub updates_in: u64,
    pub updates_out: u64,
    pub flaps: u32,
    pub last_error: Option<String>,
}

/// A local route change for `Speaker::apply_local`.
#[derive(Debug)]
pub enum LocalRoute {
    Announce(spec::Built),
    Withdraw { family: Family, nlri: Vec<u8> },
}

/// The speaker: all peers and the RIB.
pub struct Speaker {
    cfg: SpeakerCfg,
    peers: BTreeMap<PeerId, session::Peer>,
    conns: HashMap<ConnId, PeerId>,
    next_peer: u32,
    next_conn: u64,
    rib: Rib,
    out: VecDeque<Output>,
    /// RFC 4724 §4.1 selection deferral after our own restart: until this deadline or every
    /// established peer's End-of-RIB, nothing is advertised.
    defer_until: Option<Instant>,
    scratch: Vec<u8>,
    /// EVPN keys whose best path changed, for the EVPN layer (`watch_evpn`); `None`: nobody
    /// watches and nothing is recorded.
    watched: Option<Vec<RouteKey>>,
}

impl Speaker {
    pub fn new(cfg: SpeakerCfg, now: Instant) -> Speaker {
        let defer_until = cfg
            .restarting
            .then(|| now + Duration::from_secs(u64::from(cfg.gr_restart_time.max(1))));
        Speaker {
            cfg,
            peers: BTreeMap::new(),
            conns: HashMap::new(),
            next_peer: 1,
            next_conn: 1,
            rib: Rib::default(),
            out: VecDeque::new(),
            defer_until,
            scratch: Vec::with_capacity(64),
            watched: None,
        }
    }

    /// Record the EVPN keys whose best path changes, for `drain_watched` (the EVPN layer's
    /// import feed). Local routes are recorded too.
    pub fn watch_evpn(&mut self) {
        self.watched.get_or_insert_with(Vec::new);
    }

    /// The EVPN keys whose best path changed since the last call (possibly repeated).
    pub fn drain_watched(&mut self) -> Vec<RouteKey> {
        match &mut self.watched {
            Some(v) => std::mem::take(v),
            None => Vec::new(),
        }
    }

    pub fn cfg(&self) -> &SpeakerCfg {
        &self.cfg
    }

    pub fn rib(&self) -> &Rib {
        &self.rib
    }

    /// Add a neighbor; an active one starts connecting at once.
    pub fn add_peer(&mut self, now: Instant, cfg: PeerCfg) -> PeerId {
        let id = PeerId(self.next_peer);
        self.next_peer += 1;
        self.rib.set_peer(
            id,
            PeerMeta {
                addr: cfg.remote.ip(),
                bgp_id: Ipv4Addr::UNSPECIFIED,
                ebgp: cfg.remote_asn != self.cfg.asn,
            },
        );
        let p = session::Peer::new(id, cfg, now);
        self.peers.insert(id, p);
        id
    }

    /// Remove a neighbor: NOTIFICATION Cease / Peer De-configured (RFC 4486), its routes gone.
    pub fn remove_peer(&mut self, now: Instant, id: PeerId) {
        let n = NotificationMsg::new(6, 3, Vec::new());
        self.shutdown_peer(now, id, n, "peer de-configured");
        if let Some(p) = self.peers.remove(&id) {
            for c in &p.conns {
                self.conns.remove(&c.id);
            }
            for f in self.rib.families().collect::<Vec<_>>() {
                self.rib.remove_peer(f, id);
            }
        }
        self.after_input(now);
    }

    /// Send NOTIFICATION Cease with `notification` on every connection of the peer (SIGTERM,
    /// admin shutdown). The peer's routes follow the normal session-down rules.
    pub fn shutdown_peer(&mut self, now: Instant, id: PeerId, n: NotificationMsg, why: &str) {
        let conns: Vec<ConnId> = self
            .peers
            .get(&id)
            .map(|p| p.conns.iter().map(|c| c.id).collect())
            .unwrap_or_default();
        for c in conns {
            self.notify_and_close(now, c, n.clone(), why);
        }
        if let Some(p) = self.peers.get_mut(&id) {
            p.admin_down = true;
            p.connect_at = None;
        }
    }

    /// Every peer, for SIGTERM.
    pub fn shutdown_all(&mut self, now: Instant) {
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            let n = NotificationMsg::new(6, 2, Vec::new());
            self.shutdown_peer(now, id, n, "administrative shutdown");
        }
    }

    /// SIGTERM with a restart to follow: close every session so that peers keep our routes
    /// as graceful-restart helpers (see `session::close_for_restart`).
    pub fn shutdown_for_restart(&mut self, now: Instant) {
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            session::close_for_restart(self, now, id);
        }
    }

    pub fn peer_ids(&self) -> Vec<PeerId> {
        self.peers.keys().copied().collect()
    }

    pub fn peer_by_name(&self, name: &str) -> Option<PeerId> {
        self.peers
            .values()
            .find(|p| p.cfg.name == name || p.cfg.remote.ip().to_string() == name)
            .map(|p| p.id)
    }

    pub fn peer_state(&self, id: PeerId) -> Option<PeerState> {
        self.peers.get(&id).map(|p| p.state())
    }

    pub fn neighbors(&self, now: Instant) -> Vec<NeighborView> {
        self.peers
            .values()
            .map(|p| p.view(now, &self.rib))
            .collect()
    }

    /// Originate (or replace) a local route. `nlri` is one NLRI in wire form without a path
    /// identifier; `attrs` the attributes without MP_REACH/NEXT_HOP; `next_hop` the next hop
    /// to advertise (None: the session's local address).
    pub fn originate(
        &mut self,
        now: Instant,
        family: Family,
        nlri: &[u8],
        attrs: Vec<PathAttr>,
        next_hop: Option<MpNextHop>,
    ) {
        self.originate_quiet(family, nlri, attrs, next_hop);
        self.after_input(now);
    }

    fn originate_quiet(
        &mut self,
        family: Family,
        nlri: &[u8],
        attrs: Vec<PathAttr>,
        next_hop: Option<MpNextHop>,
    ) {
        let (key, rest) = split_nlri(family, nlri);
        // a next hop that is not one address (or a v6 global + link-local pair) cannot be
        // advertised: use the session's address instead
        let next_hop = next_hop.filter(|n| !matches!(n, MpNextHop::Other(_)));
        let a = self.rib.intern(Attrs::derive(sorted(attrs), next_hop));
        self.rib.announce(family, key, PeerId::LOCAL, 0, a, rest);
    }

    /// Withdraw a local route.
    pub fn withdraw_local(&mut self, now: Instant, family: Family, nlri: &[u8]) {
        let (key, _) = split_nlri(family, nlri);
        self.rib.withdraw(family, &key, PeerId::LOCAL, 0);
        self.after_input(now);
    }

    /// Originate and withdraw many local routes as one input: the Adj-RIB-Outs are fed once.
    pub fn apply_local(&mut self, now: Instant, routes: impl IntoIterator<Item = LocalRoute>) {
        for r in routes {
            match r {
                LocalRoute::Announce(b) => {
                    self.originate_quiet(b.family, &b.nlri, b.attrs, b.next_hop)
                }
                LocalRoute::Withdraw { family, nlri } => {
                    let (key, _) = split_nlri(family, &nlri);
                    self.rib.withdraw(family, &key, PeerId::LOCAL, 0);
                }
            }
        }
        self.after_input(now);
    }

    /// Ask the peer to re-send `family` (RFC 2918; enhanced per RFC 7313 when negotiated).
    pub fn request_refresh(&mut self, now: Instant, id: PeerId, family: Family) -> bool {
        let ok = session::send_route_refresh(self, id, family);
        self.after_input(now);
        ok
    }

    /// An incoming TCP connection. `None`: nobody is configured for `remote` — close it.
    pub fn handle_accept(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local: SocketAddr,
    ) -> Option<ConnId> {
        let id = session::accept(self, now, remote, local);
        self.after_input(now);
        id
    }

    /// Our outgoing connection is up.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId, local: SocketAddr) {
        session::connected(self, now, conn, local);
        self.after_input(now);
    }

    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId, why: &str) {
        session::conn_gone(self, now, conn, &format!("connect failed: {why}"), false);
        self.after_input(now);
    }

    /// One whole message (as framed by `frame_len`).
    pub fn handle_frame(&mut self, now: Instant, conn: ConnId, frame: &[u8]) {
        session::frame(self, now, conn, frame);
        self.after_input(now);
    }

    /// The framer found an invalid header: RFC 4271 §6.1 NOTIFICATION, then close.
    pub fn handle_frame_error(
        &mut self,
        now: Instant,
        conn: ConnId,
        n: NotificationMsg,
        why: &str,
    ) {
        self.notify_and_close(now, conn, n, why);
        self.after_input(now);
    }

    /// The shell wrote `n` octets of what `Output::Send` gave it.
    pub fn handle_sent(&mut self, now: Instant, conn: ConnId, n: usize) {
        if let Some(p) = self.conns.get(&conn).and_then(|id| self.peers.get_mut(id))
            && let Some(c) = p.conn_mut(conn)
        {
            c.inflight = c.inflight.saturating_sub(n);
        }
        self.after_input(now);
    }

    /// The transport closed (peer closed, reset, or write error).
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId, why: &str) {
        session::conn_gone(self, now, conn, why, false);
        self.after_input(now);
    }

    /// Run every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        session::timers(self, now);
        if let Some(t) = self.defer_until
            && now >= t
        {
            self.end_deferral(now);
        }
        self.after_input(now);
    }

    /// The earliest deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let peers = self.peers.values().filter_map(|p| p.next_deadline());
        peers.chain(self.defer_until).min()
    }

    /// The next thing to do. UPDATEs are packed here, when everything else queued has been
    /// taken: all inputs handled since the last poll share UPDATEs.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.out.is_empty() {
            adj_out::pack_all(self);
        }
        self.out.pop_front()
    }

    fn emit(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    fn notify_and_close(&mut self, now: Instant, conn: ConnId, n: NotificationMsg, why: &str) {
        session::notify_and_close(self, now, conn, n, why);
    }

    fn end_deferral(&mut self, now: Instant) {
        if let Some(t) = self.defer_until.take() {
            self.emit(Event::DeferralEnded {
                timed_out: now >= t,
            });
            let ids: Vec<PeerId> = self.peers.keys().copied().collect();
            for id in ids {
                adj_out::start_full_sync(self, id, None);
            }
        }
        let _ = now;
    }

    /// After every input: feed RIB changes to the Adj-RIB-Outs (packing waits for
    /// `poll_output`).
    fn after_input(&mut self, now: Instant) {
        if self.defer_until.is_some() && session::all_eor_received(self) {
            self.end_deferral(now);
        }
        adj_out::feed_changes(self);
    }
}

/// Attributes of a local route: sorted, one per type code (the first), with RFC flags, without
/// the ones the speaker owns (MP_REACH/MP_UNREACH, NEXT_HOP, AS4_PATH, AS4_AGGREGATOR) or that failed to
/// parse.
fn sorted(v: Vec<PathAttr>) -> Vec<PathAttr> {
    use crate::wire::bgp::attr::{AttrValue, code, expected_flags, flags};
    let mut out: Vec<PathAttr> = Vec::with_capacity(v.len());
    for mut a in v {
        // flags as RFC 4271 §4.3 defines them for known types; an unknown type must be
        // optional (RFC 4271 §5: "unrecognized well-known" would be an error at the peer)
        match expected_flags(a.type_code) {
            Some(f) => a.flags = f | (a.flags & flags::EXTENDED_LENGTH),
            None if a.flags & flags::OPTIONAL == 0 => continue,
            None => {}
        }
        let owned = matches!(
            a.type_code,
            code::MP_REACH_NLRI
                | code::MP_UNREACH_NLRI
                | code::NEXT_HOP
                | code::AS4_PATH
                | code::AS4_AGGREGATOR
        );
        if owned
            || matches!(a.value, AttrValue::Malformed { .. })
            || out.iter().any(|b| b.type_code == a.type_code)
        {
            continue;
        }
        out.push(a);
    }
    out.sort_by_key(|a| a.type_code);
    out
}

/// Key and rest of one NLRI of `family` in wire form.
pub fn split_nlri(family: Family, nlri: &[u8]) -> (RouteKey, NlriRest) {
    if family == Family::L2VPN_EVPN {
        split_evpn(nlri)
    } else {
        (prefix_key(nlri), NlriRest::new(&[]))
    }
}

/// The wire NLRI of a stored route.
pub fn join_nlri(family: Family, key: &RouteKey, rest: &NlriRest, out: &mut Vec<u8>) {
    if family == Family::L2VPN_EVPN {
        crate::rib::key::join_evpn(key, rest, out);
    } else {
        out.extend_from_slice(key.as_bytes());
    }
}

/// Shared attribute sets in use (for metrics).
pub fn attr_sets(s: &Speaker) -> usize {
    s.rib.interner.len()
}

#[allow(dead_code)]
fn _assert_send(s: Speaker) -> impl Send {
    let _: Option<Arc<Attrs>> = None;
    s
}
