//! Sessions: the RFC 4271 §8 FSM per connection, OPEN and capability negotiation (including
//! the ADD-PATH directions per family, RFC 7911 §4–5), connection collision (§6.8), timers,
//! NOTIFICATIONs, and graceful restart's helper side (RFC 4724 §4.2).
//!
//! Owns: `Peer` and `Conn` state. Must not: touch the RIB except through the session-down /
//! End-of-RIB rules below, or decide export (adj_out.rs) or UPDATE contents (ingest.rs).
//!
//! A peer has at most two connections (one we opened, one it opened) until collision
//! resolution keeps one. The peer's FSM state is the most advanced of its connections':
//! `Idle` (admin down, max-prefix down, waiting to retry), `Connect` (our TCP connect in
//! progress), `Active` (waiting for the peer to connect), `OpenSent`, `OpenConfirm`,
//! `Established`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::{ConnId, Event, MaxPrefixAction, Output, PeerCfg, Speaker, addpath, adj_out, ingest};
use crate::rib::{PeerId, PeerMeta, Rib};
use crate::wire::bgp::afi::Family;
use crate::wire::bgp::capability::{AddPathFamily, Capability, GrFamily, GracefulRestart};
use crate::wire::bgp::message::{BgpCtx, Message};
use crate::wire::bgp::notification::{NotificationMsg, cease_sub, code, open_sub};
use crate::wire::bgp::open::{OpenMsg, OptParam};
use crate::wire::bgp::route_refresh::{RouteRefreshMsg, subtype};

/// RFC 4271 §8.2.2: "the HoldTimer ... set to a large value" while waiting for OPEN: 4 minutes.
const OPEN_HOLD: Duration = Duration::from_secs(240);
/// First retry after a failed or closed connection; doubles up to the configured ConnectRetry.
const FIRST_RETRY: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, serde::Serialize)]
pub enum PeerState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Dir {
    Out,
    In,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum ConnState {
    Connecting,
    OpenSent,
    OpenConfirm,
    Established,
}

/// What both sides agreed in their OPENs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Negotiated {
    pub remote_id: Ipv4Addr,
    pub remote_asn: u32,
    pub ibgp: bool,
    pub hold_time: u16,
    pub keepalive: u16,
    pub families: Vec<Family>,
    pub four_octet_as: bool,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    pub extended_message: bool,
    /// RFC 7911: families whose NLRI we receive with path identifiers.
    pub add_path_rx: Vec<Family>,
    /// RFC 7911: families we send every path to the peer for, with path identifiers.
    pub add_path_tx: Vec<Family>,
    /// The peer's GR capability, if it sent one.
    pub peer_gr: Option<GracefulRestart>,
    /// We advertised GR to this peer.
    pub local_gr: bool,
    /// RFC 8538: both sides set the N bit — a NOTIFICATION other than Cease/Hard Reset keeps
    /// the routes as a restart would.
    pub gr_notification: bool,
    pub local_addr: Option<IpAddr>,
}

impl Negotiated {
    pub fn ctx(&self) -> BgpCtx {
        BgpCtx {
            four_octet_as: self.four_octet_as,
            extended_message: self.extended_message,
            add_path_rx: self.add_path_rx.clone(),
        }
    }

    /// RFC 4724 §4.2: families the peer listed in its GR capability.
    pub fn gr_families(&self) -> Vec<Family> {
        self.peer_gr
            .as_ref()
            .map(|g| g.families.iter().map(|f| f.family).collect())
            .unwrap_or_default()
    }
}

pub(super) struct Conn {
    pub id: ConnId,
    pub dir: Dir,
    pub state: ConnState,
    pub ctx: BgpCtx,
    pub hold_at: Option<Instant>,
    pub keepalive_at: Option<Instant>,
    pub delay_open_at: Option<Instant>,
    pub open_sent: bool,
    pub remote_open: Option<OpenMsg>,
    pub nego: Option<Negotiated>,
    pub local: Option<SocketAddr>,
    pub inflight: usize,
}

/// Graceful restart helper state for a peer whose session went down (RFC 4724 §4.2).
pub(super) struct GrHelper {
    pub families: Vec<Family>,
    /// Restart timer (the peer's Restart Time) while it is away, then the stale-routes timer
    /// while we wait for its End-of-RIB.
    pub deadline: Instant,
}

pub(super) struct Peer {
    pub id: PeerId,
    pub cfg: PeerCfg,
    pub conns: Vec<Conn>,
    pub connect_at: Option<Instant>,
    pub retry: Duration,
    pub admin_down: bool,
    /// Down after max-prefix teardown until this time (None with `down` = until reconfigured).
    pub prefix_down: bool,
    pub prefix_restart_at: Option<Instant>,
    pub prefix_warned: bool,
    pub gr: Option<GrHelper>,
    /// Families whose End-of-RIB arrived on the current session.
    pub eor_rx: Vec<Family>,
    /// Enhanced route refresh in progress per family (RFC 7313: BoRR seen, EoRR pending).
    pub borr: Vec<Family>,
    pub up_since: Option<Instant>,
    pub last_nego: Option<Negotiated>,
    pub msgs_in: u64,
    pub msgs_out: u64,
    pub updates_in: u64,
    pub updates_out: u64,
    pub flaps: u32,
    pub last_error: Option<String>,
    pub out: adj_out::AdjOut,
}

impl Peer {
    pub fn new(id: PeerId, cfg: PeerCfg, now: Instant) -> Peer {
        let connect_at = (!cfg.passive).then_some(now);
        Peer {
            id,
            cfg,
            conns: Vec::new(),
            connect_at,
            retry: FIRST_RETRY,
            admin_down: false,
            prefix_down: false,
            prefix_restart_at: None,
            prefix_warned: false,
            gr: None,
            eor_rx: Vec::new(),
            borr: Vec::new(),
            up_since: None,
            last_nego: None,
            msgs_in: 0,
            msgs_out: 0,
            updates_in: 0,
            updates_out: 0,
            flaps: 0,
            last_error: None,
            out: adj_out::AdjOut::default(),
        }
    }

    pub fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns.iter_mut().find(|c| c.id == id)
    }

    pub fn established(&self) -> Option<&Conn> {
        self.conns
            .iter()
            .find(|c| c.state == ConnState::Established)
    }

    pub fn nego(&self) -> Option<&Negotiated> {
        self.established().and_then(|c| c.nego.as_ref())
    }

    pub fn state(&self) -> PeerState {
        let best = self.conns.iter().map(|c| c.state).max_by_key(|s| match s {
            ConnState::Connecting => 0,
            ConnState::OpenSent => 1,
            ConnState::OpenConfirm => 2,
            ConnState::Established => 3,
        });
        match best {
            Some(ConnState::Established) => PeerState::Established,
            Some(ConnState::OpenConfirm) => PeerState::OpenConfirm,
            Some(ConnState::OpenSent) => PeerState::OpenSent,
            Some(ConnState::Connecting) => PeerState::Connect,
            None if self.admin_down || self.prefix_down => PeerState::Idle,
            None if self.cfg.passive => PeerState::Active,
            None if self.connect_at.is_some() => PeerState::Active,
            None => PeerState::Idle,
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let conn = self
            .conns
            .iter()
            .flat_map(|c| [c.hold_at, c.keepalive_at, c.delay_open_at])
            .flatten();
        conn.chain(self.connect_at)
            .chain(self.prefix_restart_at)
            .chain(self.gr.as_ref().map(|g| g.deadline))
            .min()
    }

    pub fn view(&self, now: Instant, rib: &Rib) -> super::NeighborView {
        let nego = self.nego().cloned();
        let fams = nego
            .as_ref()
            .map(|n| n.families.clone())
            .unwrap_or_else(|| self.cfg.families.clone());
        let mut prefixes_received = BTreeMap::new();
        let mut stale = BTreeMap::new();
        for f in &fams {
            prefixes_received.insert(f.to_string(), rib.count(self.id, *f));
            let s = rib.stale_count(*f, self.id);
            if s > 0 {
                stale.insert(f.to_string(), s);
            }
        }
        super::NeighborView {
            id: self.id,
            name: self.cfg.name.clone(),
            address: self.cfg.remote,
            remote_asn: self.cfg.remote_asn,
            state: self.state(),
            remote_id: nego.as_ref().map(|n| n.remote_id),
            uptime_secs: self
                .up_since
                .map(|t| now.saturating_duration_since(t).as_secs()),
            families: self.cfg.families.clone(),
            negotiated: nego,
            prefixes_received,
            stale,
            msgs_in: self.msgs_in,
            msgs_out: self.msgs_out,
            updates_in: self.updates_in,
            updates_out: self.updates_out,
            flaps: self.flaps,
            last_error: self.last_error.clone(),
        }
    }
}

fn secs(s: u16) -> Duration {
    Duration::from_secs(u64::from(s))
}

/// Queue one message on a connection.
pub(super) fn send_msg(sp: &mut Speaker, peer: PeerId, conn: ConnId, m: &Message) {
    let Some(p) = sp.peers.get_mut(&peer) else {
        return;
    };
    let Some(c) = p.conn_mut(conn) else {
        return;
    };
    let data = m.to_bytes(&c.ctx);
    c.inflight += data.len();
    p.msgs_out += 1;
    if matches!(m, Message::Update(_)) {
        p.updates_out += 1;
    }
    sp.out.push_back(Output::Send { conn, data });
}

/// Our OPEN for `cfg` (RFC 4271 §4.2, RFC 5492 capabilities).
fn our_open(sp: &Speaker, cfg: &PeerCfg) -> OpenMsg {
    let mut caps = Vec::new();
    for f in &cfg.families {
        caps.push(Capability::Multiprotocol {
            family: *f,
            reserved: 0,
        });
    }
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::EnhancedRouteRefresh);
    caps.push(Capability::FourOctetAs { asn: sp.cfg.asn });
    caps.push(Capability::ExtendedMessage);
    // RFC 7911 §4: "Send/Receive: This field indicates whether the sender is (a) able to
    // receive multiple paths from its peer (value 1), (b) able to send multiple paths to its
    // peer (value 2), or (c) both (value 3) for the <AFI, SAFI>."
    let send_receive = if cfg.add_path_rx {
        AddPathFamily::RECEIVE
    } else {
        0
    } | if cfg.add_path_tx {
        AddPathFamily::SEND
    } else {
        0
    };
    if send_receive != 0 {
        caps.push(Capability::AddPath {
            families: cfg
                .families
                .iter()
                .map(|f| AddPathFamily {
                    family: *f,
                    send_receive,
                })
                .collect(),
        });
    }
    if cfg.graceful_restart {
        // RFC 4724 §3: the R bit after a restart. RFC 8538 §2: the N bit — graceful restart
        // also after a NOTIFICATION (other than Hard Reset). The F bit is set for every
        // family: vmmi never flushes forwarding state on a restart (the dataplane is
        // reconciled, not rebuilt), so peers may keep forwarding on our routes meanwhile.
        let mut flags = GracefulRestart::NOTIFICATION;
        if sp.cfg.restarting {
            flags |= GracefulRestart::RESTART_STATE;
        }
        let fwd = GrFamily::FORWARDING_PRESERVED;
        caps.push(Capability::GracefulRestart(GracefulRestart {
            restart_flags: flags,
            restart_time: sp.cfg.gr_restart_time.min(4095),
            families: cfg
                .families
                .iter()
                .map(|f| GrFamily {
                    family: *f,
                    flags: fwd,
                })
                .collect(),
        }));
    }
    OpenMsg {
        version: 4,
        my_as: u16::try_from(sp.cfg.asn).unwrap_or(OpenMsg::AS_TRANS),
        hold_time: cfg.hold_time,
        bgp_id: sp.cfg.router_id,
        params: vec![OptParam::Capabilities { capabilities: caps }],
        extended_params: false,
    }
}

/// RFC 4271 §6.2 checks and capability negotiation. `Err` is the NOTIFICATION to send.
fn negotiate(
    sp: &Speaker,
    cfg: &PeerCfg,
    o: &OpenMsg,
    local: Option<SocketAddr>,
) -> Result<Negotiated, (NotificationMsg, String)> {
    let open_err = |sub: u8, data: Vec<u8>, why: String| {
        Err((NotificationMsg::new(code::OPEN_MESSAGE, sub, data), why))
    };
    if o.version != 4 {
        // "the Data field is a 2-octet unsigned integer, which indicates the largest, locally
        // supported version number less than the version the remote BGP peer bid"
        return open_err(
            open_sub::UNSUPPORTED_VERSION,
            vec![0, 4],
            format!("version {}", o.version),
        );
    }
    let asn = o.asn();
    // RFC 6793 §4.2.1: My AS must be AS_TRANS when the real AS does not fit two octets.
    let cap_as = o.capabilities().find_map(|c| match c {
        Capability::FourOctetAs { asn } => Some(*asn),
        _ => None,
    });
    if let Some(a) = cap_as
        && o.my_as != OpenMsg::AS_TRANS
        && u32::from(o.my_as) != a
    {
        return open_err(
            open_sub::BAD_PEER_AS,
            Vec::new(),
            format!(
                "My AS {} disagrees with the 4-octet AS capability {a}",
                o.my_as
            ),
        );
    }
    if asn != cfg.remote_asn {
        return open_err(
            open_sub::BAD_PEER_AS,
            Vec::new(),
            format!("peer AS {asn}, configured {}", cfg.remote_asn),
        );
    }
    // "If the Hold Time field of the OPEN message is unacceptable, then the Error Subcode MUST
    // be set to Unacceptable Hold Time" — 1 and 2 seconds MUST be rejected (§4.2).
    if o.hold_time == 1 || o.hold_time == 2 {
        return open_err(
            open_sub::UNACCEPTABLE_HOLD_TIME,
            Vec::new(),
            format!("hold time {}", o.hold_time),
        );
    }
    let ibgp = asn == sp.cfg.asn;
    // RFC 6286 §2.2: the BGP Identifier is non-zero, and unique within the AS.
    if o.bgp_id.is_unspecified() || (ibgp && o.bgp_id == sp.cfg.router_id) {
        return open_err(
            open_sub::BAD_BGP_IDENTIFIER,
            o.bgp_id.octets().to_vec(),
            format!("BGP identifier {}", o.bgp_id),
        );
    }
    let theirs: Vec<&Capability> = o.capabilities().collect();
    let their_families: Vec<Family> = theirs
        .iter()
        .filter_map(|c| match c {
            Capability::Multiprotocol { family, .. } => Some(*family),
            _ => None,
        })
        .collect();
    // RFC 4760 §8: without any Multiprotocol capability the peer speaks IPv4 unicast only.
    let their_families = if their_families.is_empty() {
        vec![Family::IPV4_UNICAST]
    } else {
        their_families
    };
    let families: Vec<Family> = cfg
        .families
        .iter()
        .copied()
        .filter(|f| their_families.contains(f))
        .collect();
    if families.is_empty() {
        // RFC 5492 §3: "the Error Subcode ... set to Unsupported Capability ... The Data field
        // ... lists the set of capabilities that cause the speaker to send the message."
        let mut data = Vec::new();
        for f in &cfg.families {
            Capability::Multiprotocol {
                family: *f,
                reserved: 0,
            }
            .encode(&mut data);
        }
        return open_err(
            open_sub::UNSUPPORTED_CAPABILITY,
            data,
            format!(
                "no common address family (ours {:?}, theirs {:?})",
                cfg.families
                    .iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>(),
                their_families
                    .iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>()
            ),
        );
    }
    let has = |pred: &dyn Fn(&Capability) -> bool| theirs.iter().any(|c| pred(c));
    let their_add_path: Vec<AddPathFamily> = theirs
        .iter()
        .filter_map(|c| match c {
            Capability::AddPath { families } => Some(families.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    // RFC 7911 §4: a Send/Receive value other than 1–3 "SHOULD be treated as not understood
    // and ignored".
    let ap = |f: &Family, bit: u8| {
        their_add_path.iter().any(|a| {
            a.family == *f
                && (AddPathFamily::RECEIVE..=AddPathFamily::BOTH).contains(&a.send_receive)
                && a.send_receive & bit != 0
        })
    };
    // RFC 7911 §5: we receive path IDs for a family when we said receive and they said send.
    let add_path_rx = if cfg.add_path_rx {
        families
            .iter()
            .copied()
            .filter(|f| ap(f, AddPathFamily::SEND))
            .collect()
    } else {
        Vec::new()
    };
    // RFC 7911 §5: "For a BGP speaker to be able to send multiple paths to its peer, that BGP
    // speaker MUST advertise the ADD-PATH Capability with the Send/Receive field set to either
    // 2 or 3, and MUST receive from its peer the ADD-PATH Capability with the Send/Receive
    // field set to either 1 or 3, for the corresponding <AFI, SAFI>."
    let add_path_tx = if cfg.add_path_tx {
        families
            .iter()
            .copied()
            .filter(|f| ap(f, AddPathFamily::RECEIVE))
            .collect()
    } else {
        Vec::new()
    };
    let peer_gr = theirs.iter().find_map(|c| match c {
        Capability::GracefulRestart(g) => Some(g.clone()),
        _ => None,
    });
    let gr_notification = cfg.graceful_restart
        && peer_gr
            .as_ref()
            .is_some_and(|g| g.restart_flags & GracefulRestart::NOTIFICATION != 0);
    // RFC 4271 §4.2: the smaller hold time; keepalive one third of it unless configured.
    let hold_time = cfg.hold_time.min(o.hold_time);
    let keepalive = if hold_time == 0 {
        0
    } else {
        cfg.keepalive
            .unwrap_or(hold_time / 3)
            .clamp(1, hold_time / 3)
    };
    Ok(Negotiated {
        remote_id: o.bgp_id,
        remote_asn: asn,
        ibgp,
        hold_time,
        keepalive,
        families,
        four_octet_as: cap_as.is_some(),
        route_refresh: has(&|c| matches!(c, Capability::RouteRefresh)),
        enhanced_route_refresh: has(&|c| matches!(c, Capability::EnhancedRouteRefresh)),
        extended_message: has(&|c| matches!(c, Capability::ExtendedMessage)),
        add_path_rx,
        add_path_tx,
        peer_gr: if cfg.graceful_restart { peer_gr } else { None },
        local_gr: cfg.graceful_restart,
        gr_notification,
        local_addr: local.map(|l| l.ip()),
    })
}

fn new_conn(sp: &mut Speaker, peer: PeerId, dir: Dir, now: Instant) -> ConnId {
    let id = ConnId(sp.next_conn);
    sp.next_conn += 1;
    sp.conns.insert(id, peer);
    if let Some(p) = sp.peers.get_mut(&peer) {
        p.conns.push(Conn {
            id,
            dir,
            state: ConnState::Connecting,
            ctx: BgpCtx::default(),
            hold_at: Some(now + OPEN_HOLD),
            keepalive_at: None,
            delay_open_at: None,
            open_sent: false,
            remote_open: None,
            nego: None,
            local: None,
            inflight: 0,
        });
    }
    id
}

fn state_change(sp: &mut Speaker, peer: PeerId, before: PeerState) {
    if let Some(p) = sp.peers.get(&peer) {
        let after = p.state();
        if after != before {
            let name = p.cfg.name.clone();
            sp.emit(Event::StateChange {
                peer: name,
                from: before,
                to: after,
            });
        }
    }
}

fn peer_state(sp: &Speaker, peer: PeerId) -> PeerState {
    sp.peers.get(&peer).map_or(PeerState::Idle, |p| p.state())
}

/// TCP is up on `conn` (either direction): send OPEN unless DelayOpen holds it back.
fn tcp_up(sp: &mut Speaker, now: Instant, peer: PeerId, conn: ConnId, local: SocketAddr) {
    let before = peer_state(sp, peer);
    let Some(p) = sp.peers.get_mut(&peer) else {
        return;
    };
    let delay = p.cfg.delay_open;
    let cfg = p.cfg.clone();
    let Some(c) = p.conn_mut(conn) else {
        return;
    };
    c.local = Some(local);
    c.state = ConnState::OpenSent;
    c.hold_at = Some(now + OPEN_HOLD);
    match delay {
        // RFC 4271 §8.1.1 DelayOpen: wait for the peer's OPEN up to DelayOpenTime.
        Some(d) if d > 0 => c.delay_open_at = Some(now + secs(d)),
        _ => {
            c.open_sent = true;
            let open = our_open(sp, &cfg);
            send_msg(sp, peer, conn, &Message::Open(open));
        }
    }
    state_change(sp, peer, before);
}

pub(super) fn accept(
    sp: &mut Speaker,
    now: Instant,
    remote: SocketAddr,
    local: SocketAddr,
) -> Option<ConnId> {
    let ip = canonical(remote.ip());
    let Some(peer) = sp
        .peers
        .values()
        .find(|p| canonical(p.cfg.remote.ip()) == ip)
        .map(|p| p.id)
    else {
        sp.emit(Event::Rejected { remote });
        return None;
    };
    let p = sp.peers.get(&peer)?;
    // An administratively or max-prefix down peer refuses connections (FRR does the same);
    // so does a peer that already has an incoming connection in progress. A new connection
    // while the session is Established is let through to its OPEN: RFC 4724 §4.2 (the peer
    // restarted) or RFC 4271 §6.8 (collision with an Established session) decide there.
    let opening_in = p
        .conns
        .iter()
        .any(|c| c.dir == Dir::In && c.state != ConnState::Established);
    if p.admin_down || p.prefix_down || opening_in {
        sp.emit(Event::Rejected { remote });
        return None;
    }
    let conn = new_conn(sp, peer, Dir::In, now);
    tcp_up(sp, now, peer, conn, local);
    Some(conn)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

pub(super) fn connected(sp: &mut Speaker, now: Instant, conn: ConnId, local: SocketAddr) {
    if let Some(&peer) = sp.conns.get(&conn) {
        tcp_up(sp, now, peer, conn, local);
    }
}

pub(super) fn notify_and_close(
    sp: &mut Speaker,
    now: Instant,
    conn: ConnId,
    n: NotificationMsg,
    why: &str,
) {
    let Some(&peer) = sp.conns.get(&conn) else {
        return;
    };
    let c = sp
        .peers
        .get(&peer)
        .and_then(|p| p.conns.iter().find(|c| c.id == conn));
    let sendable = c.is_some_and(|c| c.state != ConnState::Connecting);
    let nego = c.and_then(|c| c.nego.clone());
    // RFC 8538 §5: Maximum Number of Prefixes Reached, Administrative Shutdown and Peer
    // De-configured are sent as Hard Reset when the N bit is in use — they must not leave
    // routes behind.
    let n = match &nego {
        Some(g)
            if g.gr_notification
                && n.code == code::CEASE
                && matches!(
                    n.subcode,
                    cease_sub::MAX_PREFIXES_REACHED
                        | cease_sub::ADMINISTRATIVE_SHUTDOWN
                        | cease_sub::PEER_DECONFIGURED
                ) =>
        {
            let mut data = vec![n.code, n.subcode];
            data.extend_from_slice(&n.data);
            NotificationMsg::new(code::CEASE, cease_sub::HARD_RESET, data)
        }
        _ => n,
    };
    if sendable {
        send_msg(sp, peer, conn, &Message::Notification(n.clone()));
    }
    if let Some(p) = sp.peers.get_mut(&peer) {
        p.last_error = Some(format!("sent {}: {why}", n.describe()));
        let name = p.cfg.name.clone();
        sp.emit(Event::NotificationSent {
            peer: name,
            notification: n.clone(),
            reason: why.to_string(),
        });
    }
    let no_gr = !gr_survives(nego.as_ref(), &n);
    conn_gone(sp, now, conn, why, no_gr);
}

/// RFC 8538 §4: with the N bit negotiated, a NOTIFICATION other than Cease/Hard Reset is
/// handled like a TCP failure — graceful restart applies. Without it, any NOTIFICATION ends
/// graceful restart (RFC 4724 §4.2).
fn gr_survives(nego: Option<&Negotiated>, n: &NotificationMsg) -> bool {
    nego.is_some_and(|g| g.gr_notification)
        && !(n.code == code::CEASE && n.subcode == cease_sub::HARD_RESET)
}

/// Close the session for a daemon restart, so that peers keep our routes (RFC 4724 helper).
/// With graceful restart negotiated the TCP connection is closed without a NOTIFICATION —
/// RFC 4724 §4's restart signal, which every helper honours. A soft RFC 8538 NOTIFICATION
/// would be the alternative, but FRR 8.4 treats Cease/Administrative Reset as a Hard Reset
/// by default (`bgp hard-administrative-reset`) and flushes, measured in
/// conformance/interop. Without graceful restart: Cease/Administrative Shutdown.
pub(super) fn close_for_restart(sp: &mut Speaker, now: Instant, peer: PeerId) {
    let conns: Vec<(ConnId, Option<Negotiated>)> = sp
        .peers
        .get(&peer)
        .map(|p| p.conns.iter().map(|c| (c.id, c.nego.clone())).collect())
        .unwrap_or_default();
    for (conn, nego) in conns {
        match nego {
            Some(g) if g.local_gr && g.peer_gr.is_some() => {
                conn_gone(
                    sp,
                    now,
                    conn,
                    "restart (graceful, RFC 4724: no NOTIFICATION)",
                    false,
                );
            }
            _ => {
                let n = NotificationMsg::new(
                    code::CEASE,
                    cease_sub::ADMINISTRATIVE_SHUTDOWN,
                    Vec::new(),
                );
                notify_and_close(sp, now, conn, n, "administrative shutdown");
            }
        }
    }
    if let Some(p) = sp.peers.get_mut(&peer) {
        p.admin_down = true;
        p.connect_at = None;
    }
}

/// A connection ended. `notified`: a NOTIFICATION was exchanged (no graceful restart).
pub(super) fn conn_gone(sp: &mut Speaker, now: Instant, conn: ConnId, why: &str, notified: bool) {
    let Some(peer) = sp.conns.remove(&conn) else {
        return;
    };
    sp.out.push_back(Output::Close { conn });
    let before = peer_state(sp, peer);
    let Some(p) = sp.peers.get_mut(&peer) else {
        return;
    };
    let Some(i) = p.conns.iter().position(|c| c.id == conn) else {
        return;
    };
    let c = p.conns.remove(i);
    if c.state == ConnState::Established {
        session_down(sp, now, peer, c, why, notified);
    } else if p.conns.is_empty() && !p.cfg.passive && !p.admin_down && !p.prefix_down {
        // RFC 4271 §8.2.2: ConnectRetryTimer; backoff from 1 s up to the configured value.
        p.connect_at = Some(now + p.retry);
        p.retry = (p.retry * 2).min(secs(p.cfg.connect_retry.max(1)));
        if p.last_error.is_none() || !why.starts_with("connect failed") {
            p.last_error = Some(why.to_string());
        }
    }
    state_change(sp, peer, before);
}

fn session_down(sp: &mut Speaker, now: Instant, peer: PeerId, c: Conn, why: &str, notified: bool) {
    let Some(p) = sp.peers.get_mut(&peer) else {
        return;
    };
    p.up_since = None;
    p.flaps += 1;
    p.eor_rx.clear();
    p.borr.clear();
    p.out = adj_out::AdjOut::default();
    if p.conns.is_empty() && !p.cfg.passive && !p.admin_down && !p.prefix_down {
        p.connect_at = Some(now + p.retry);
    }
    addpath::track(sp);
    let Some(p) = sp.peers.get_mut(&peer) else {
        return;
    };
    let nego = c.nego.clone();
    // RFC 4724 §4.2: when the session ends without a NOTIFICATION and the peer advertised GR,
    // keep its routes for the families in its capability, marked stale, for Restart Time.
    let gr = nego.as_ref().and_then(|n| {
        let g = n.peer_gr.as_ref()?;
        (!notified && n.local_gr).then(|| (n.gr_families(), g.restart_time))
    });
    let name = p.cfg.name.clone();
    let all: Vec<Family> = nego.map(|n| n.families).unwrap_or_default();
    let mut graceful = false;
    match gr {
        Some((fams, restart_time)) if restart_time > 0 => {
            graceful = true;
            for f in &fams {
                sp.rib.mark_stale(*f, peer);
            }
            for f in all.iter().filter(|f| !fams.contains(f)) {
                sp.rib.remove_peer(*f, peer);
            }
            if let Some(p) = sp.peers.get_mut(&peer) {
                p.gr = Some(GrHelper {
                    families: fams,
                    deadline: now + secs(restart_time),
                });
            }
        }
        _ => {
            for f in &all {
                sp.rib.remove_peer(*f, peer);
            }
            if let Some(p) = sp.peers.get_mut(&peer) {
                p.gr = None;
            }
        }
    }
    sp.emit(Event::SessionDown {
        peer: name,
        reason: why.to_string(),
        graceful,
    });
}

/// A whole message on `conn`.
pub(super) fn frame(sp: &mut Speaker, now: Instant, conn: ConnId, bytes: &[u8]) {
    let Some(&peer) = sp.conns.get(&conn) else {
        return;
    };
    let Some(p) = sp.peers.get_mut(&peer) else {
        return;
    };
    p.msgs_in += 1;
    let Some(c) = p.conn_mut(conn) else {
        return;
    };
    // RFC 4271 §8.2.2: every message received restarts the HoldTimer once OPEN has been seen.
    if c.state != ConnState::OpenSent
        && let Some(n) = &c.nego
        && n.hold_time > 0
    {
        c.hold_at = Some(now + secs(n.hold_time));
    }
    let state = c.state;
    let msg = match Message::decode(bytes, &c.ctx) {
        Ok((m, _)) => m,
        Err(e) => {
            let why = format!("malformed message: {}", e.error);
            notify_and_close(sp, now, conn, e.notification, &why);
            return;
        }
    };
    match (state, msg) {
        (_, Message::Notification(n)) => {
            let name = p.cfg.name.clone();
            p.last_error = Some(format!("received {}", n.describe()));
            sp.emit(Event::NotificationReceived {
                peer: name,
                notification: n.clone(),
            });
            let nego = sp
                .peers
                .get(&peer)
                .and_then(|p| p.conns.iter().find(|c| c.id == conn))
                .and_then(|c| c.nego.clone());
            let no_gr = !gr_survives(nego.as_ref(), &n);
            conn_gone(sp, now, conn, &format!("received {}", n.describe()), no_gr);
        }
        (ConnState::OpenSent, Message::Open(o)) => got_open(sp, now, peer, conn, o),
        (ConnState::OpenConfirm, Message::Keepalive) => established(sp, now, peer, conn),
        (ConnState::Established, Message::Keepalive) => {}
        (ConnState::Established, Message::Update(u)) => {
            if let Some(p) = sp.peers.get_mut(&peer) {
                p.updates_in += 1;
            }
            ingest::update(sp, now, peer, conn, u);
        }
        (ConnState::Established, Message::RouteRefresh(rr)) => route_refresh_in(sp, peer, rr),
        (_, m) => {
            // RFC 4271 §6.6: "Any error detected by the BGP Finite State Machine (e.g., receipt
            // of an unexpected event) is indicated by sending the NOTIFICATION message with the
            // Error Code Finite State Machine Error." RFC 6608 subcodes: 1 OpenSent, 2
            // OpenConfirm, 3 Established.
            let sub = match state {
                ConnState::OpenSent | ConnState::Connecting => 1,
                ConnState::OpenConfirm => 2,
                ConnState::Established => 3,
            };
            let why = format!("unexpected message type {} in {state:?}", m.type_code());
            notify_and_close(
                sp,
                now,
                conn,
                NotificationMsg::new(code::FSM, sub, Vec::new()),
                &why,
            );
        }
    }
}

fn got_open(sp: &mut Speaker, now: Instant, peer: PeerId, conn: ConnId, o: OpenMsg) {
    let Some(p) = sp.peers.get(&peer) else {
        return;
    };
    let cfg = p.cfg.clone();
    let local = p.conns.iter().find(|c| c.id == conn).and_then(|c| c.local);
    let nego = match negotiate(sp, &cfg, &o, local) {
        Ok(n) => n,
        Err((n, why)) => {
            notify_and_close(sp, now, conn, n, &why);
            return;
        }
    };
    // RFC 4271 §6.8 collision detection against the peer's other connection.
    let other = p
        .conns
        .iter()
        .find(|c| c.id != conn)
        .map(|c| (c.id, c.state, c.dir));
    if let Some((other_id, other_state, other_dir)) = other {
        let this_dir = if other_dir == Dir::Out {
            Dir::In
        } else {
            Dir::Out
        };
        match other_state {
            ConnState::Established => {
                // RFC 4724 §4.2: a new connection from a peer that negotiated GR means it
                // restarted — treat the old session as failed (routes stale), continue here.
                let gr = p
                    .established()
                    .and_then(|c| c.nego.as_ref())
                    .is_some_and(|n| n.peer_gr.is_some() && n.local_gr);
                if gr {
                    conn_gone(sp, now, other_id, "peer restarted (new connection)", false);
                } else {
                    // "a collision with an existing BGP connection that is in the Established
                    // state causes closing of the newly created connection"
                    let n = NotificationMsg::new(
                        code::CEASE,
                        cease_sub::CONNECTION_COLLISION_RESOLUTION,
                        Vec::new(),
                    );
                    notify_and_close(sp, now, conn, n, "collision with an established session");
                    return;
                }
            }
            ConnState::OpenConfirm | ConnState::OpenSent => {
                // "If the value of the local BGP Identifier is less than the remote one, the
                // local system closes the BGP connection that already exists ... Otherwise, the
                // local system closes the newly created BGP connection" — i.e. the connection
                // initiated by the speaker with the higher BGP Identifier survives.
                let keep_out = u32::from(sp.cfg.router_id) > u32::from(o.bgp_id);
                let loser = if (this_dir == Dir::Out) == keep_out {
                    other_id
                } else {
                    conn
                };
                let n = NotificationMsg::new(
                    code::CEASE,
                    cease_sub::CONNECTION_COLLISION_RESOLUTION,
                    Vec::new(),
                );
                notify_and_close(sp, now, loser, n, "connection collision resolution");
                if loser == conn {
                    return;
                }
            }
            ConnState::Connecting => {
                // our connect has not completed: abandon it
                conn_gone(sp, now, other_id, "collision: peer connected first", true);
            }
        }
    }
    let before = peer_state(sp, peer);
    let open_sent = sp
        .peers
        .get(&peer)
        .and_then(|p| p.conns.iter().find(|c| c.id == conn))
        .is_some_and(|c| c.open_sent);
    if !open_sent {
        // DelayOpen: the peer's OPEN arrived first — send ours now (RFC 4271 §8.2.2 event 20).
        let open = our_open(sp, &cfg);
        if let Some(c) = sp.peers.get_mut(&peer).and_then(|p| p.conn_mut(conn)) {
            c.open_sent = true;
            c.delay_open_at = None;
        }
        send_msg(sp, peer, conn, &Message::Open(open));
    }
    if let Some(p) = sp.peers.get_mut(&peer)
        && let Some(c) = p.conn_mut(conn)
    {
        c.ctx = nego.ctx();
        c.state = ConnState::OpenConfirm;
        c.hold_at = (nego.hold_time > 0).then(|| now + secs(nego.hold_time));
        c.keepalive_at = (nego.keepalive > 0).then(|| now + secs(nego.keepalive));
        c.remote_open = Some(o);
        c.nego = Some(nego);
    }
    send_msg(sp, peer, conn, &Message::Keepalive);
    state_change(sp, peer, before);
}

fn established(sp: &mut Speaker, now: Instant, peer: PeerId, conn: ConnId) {
    let before = peer_state(sp, peer);
    let asn = sp.cfg.asn;
    let Some(p) = sp.peers.get_mut(&peer) else {
        return;
    };
    let Some(c) = p.conn_mut(conn) else {
        return;
    };
    c.state = ConnState::Established;
    let Some(nego) = c.nego.clone() else {
        return;
    };
    p.up_since = Some(now);
    p.retry = FIRST_RETRY;
    p.connect_at = None;
    p.eor_rx.clear();
    p.last_nego = Some(nego.clone());
    let name = p.cfg.name.clone();
    sp.rib.set_peer(
        peer,
        PeerMeta {
            addr: p.cfg.remote.ip(),
            bgp_id: nego.remote_id,
            ebgp: nego.remote_asn != asn,
        },
    );
    // RFC 4724 §4.2: back after a restart. Families it no longer lists, or lists without the F
    // bit, lose their stale routes now; the rest wait for End-of-RIB (or the stale timer).
    if let Some(gr) = p.gr.take() {
        let kept: Vec<Family> = nego
            .peer_gr
            .as_ref()
            .map(|g| {
                g.families
                    .iter()
                    .filter(|f| f.forwarding_preserved())
                    .map(|f| f.family)
                    .collect()
            })
            .unwrap_or_default();
        let (keep, flush): (Vec<Family>, Vec<Family>) =
            gr.families.iter().partition(|f| kept.contains(f));
        let stale_time = sp.cfg.stale_routes_time;
        if !keep.is_empty()
            && let Some(p) = sp.peers.get_mut(&peer)
        {
            p.gr = Some(GrHelper {
                families: keep,
                deadline: now + secs(stale_time),
            });
        }
        for f in flush {
            let removed = sp.rib.sweep_stale(f, peer);
            sp.emit(Event::StaleSwept {
                peer: name.clone(),
                family: f,
                removed,
                why: "forwarding state not preserved",
            });
        }
    }
    sp.emit(Event::Established {
        peer: name,
        families: nego.families.clone(),
    });
    state_change(sp, peer, before);
    // RFC 7911: an ADD-PATH send peer needs every path change of its families from now on
    addpath::track(sp);
    if sp.defer_until.is_none() {
        adj_out::start_full_sync(sp, peer, None);
    }
}

fn route_refresh_in(sp: &mut Speaker, peer: PeerId, rr: RouteRefreshMsg) {
    let Some(p) = sp.peers.get_mut(&peer) else {
        return;
    };
    let name = p.cfg.name.clone();
    let negotiated = p.nego().is_some_and(|n| n.families.contains(&rr.family));
    sp.emit(Event::RouteRefresh {
        peer: name.clone(),
        family: rr.family,
        subtype: rr.subtype,
        received: true,
    });
    // RFC 2918 §4: "If a BGP speaker receives from its peer a ROUTE-REFRESH message with the
    // <AFI, SAFI> that the speaker didn't advertise to the peer at the session establishment
    // time, the speaker shall ignore such a message."
    if !negotiated {
        return;
    }
    match rr.subtype {
        subtype::NORMAL => adj_out::start_full_sync(sp, peer, Some(rr.family)),
        // RFC 7313 §4: routes not re-advertised between BoRR and EoRR are stale.
        subtype::BORR => {
            sp.rib.mark_stale(rr.family, peer);
            if let Some(p) = sp.peers.get_mut(&peer)
                && !p.borr.contains(&rr.family)
            {
                p.borr.push(rr.family);
            }
        }
        subtype::EORR => {
            if let Some(p) = sp.peers.get_mut(&peer) {
                p.borr.retain(|f| *f != rr.family);
            }
            let removed = sp.rib.sweep_stale(rr.family, peer);
            sp.emit(Event::StaleSwept {
                peer: name,
                family: rr.family,
                removed,
                why: "enhanced route refresh: EoRR",
            });
        }
        // RFC 7313 §5: unknown subtypes are ignored.
        _ => {}
    }
}

/// An End-of-RIB from the peer for `f` (called by ingest).
pub(super) fn eor_received(sp: &mut Speaker, peer: PeerId, f: Family) {
    let Some(p) = sp.peers.get_mut(&peer) else {
        return;
    };
    if !p.eor_rx.contains(&f) {
        p.eor_rx.push(f);
    }
    let name = p.cfg.name.clone();
    sp.emit(Event::EndOfRib {
        peer: name.clone(),
        family: f,
    });
    let Some(p) = sp.peers.get_mut(&peer) else {
        return;
    };
    let mut sweep = false;
    if let Some(gr) = p.gr.as_mut()
        && gr.families.contains(&f)
    {
        gr.families.retain(|x| *x != f);
        sweep = true;
        if gr.families.is_empty() {
            p.gr = None;
        }
    }
    if sweep {
        // RFC 4724 §4.2: "Once the End-of-RIB marker for an address family is received from the
        // peer, it MUST immediately remove any routes from the peer that are still marked as
        // stale for that address family."
        let removed = sp.rib.sweep_stale(f, peer);
        sp.emit(Event::StaleSwept {
            peer: name,
            family: f,
            removed,
            why: "End-of-RIB",
        });
    }
}

/// Every established peer has sent End-of-RIB for all its families (deferral may end).
pub(super) fn all_eor_received(sp: &Speaker) -> bool {
    let mut any = false;
    for p in sp.peers.values() {
        if let Some(n) = p.nego() {
            any = true;
            if !n.families.iter().all(|f| p.eor_rx.contains(f)) {
                return false;
            }
        }
    }
    any
}

pub(super) fn send_route_refresh(sp: &mut Speaker, peer: PeerId, family: Family) -> bool {
    let Some(p) = sp.peers.get(&peer) else {
        return false;
    };
    let Some(c) = p.established() else {
        return false;
    };
    let Some(n) = &c.nego else {
        return false;
    };
    if !n.route_refresh || !n.families.contains(&family) {
        return false;
    }
    let conn = c.id;
    let name = p.cfg.name.clone();
    send_msg(
        sp,
        peer,
        conn,
        &Message::RouteRefresh(RouteRefreshMsg {
            family,
            subtype: subtype::NORMAL,
        }),
    );
    sp.emit(Event::RouteRefresh {
        peer: name,
        family,
        subtype: subtype::NORMAL,
        received: false,
    });
    true
}

/// Max-prefix after an UPDATE (called by ingest). True when the session was torn down.
pub(super) fn check_max_prefix(sp: &mut Speaker, now: Instant, peer: PeerId, conn: ConnId) -> bool {
    let Some(p) = sp.peers.get(&peer) else {
        return false;
    };
    let Some(limit) = p.cfg.max_prefix else {
        return false;
    };
    let fams = p.nego().map(|n| n.families.clone()).unwrap_or_default();
    let count: u32 = fams.iter().map(|f| sp.rib.count(peer, *f)).sum();
    if count <= limit {
        if let Some(p) = sp.peers.get_mut(&peer) {
            p.prefix_warned = false;
        }
        return false;
    }
    let name = p.cfg.name.clone();
    let warned = p.prefix_warned;
    let restart = p.cfg.max_prefix_restart;
    match p.cfg.max_prefix_action {
        MaxPrefixAction::Warning => {
            if !warned {
                if let Some(p) = sp.peers.get_mut(&peer) {
                    p.prefix_warned = true;
                }
                sp.emit(Event::MaxPrefix {
                    peer: name,
                    count,
                    limit,
                    teardown: false,
                });
            }
            false
        }
        MaxPrefixAction::Teardown => {
            sp.emit(Event::MaxPrefix {
                peer: name,
                count,
                limit,
                teardown: true,
            });
            // RFC 4486 §4: "the Data field ... AFI (2), SAFI (1), upper bound (4)".
            let f = fams.first().copied().unwrap_or(Family::IPV4_UNICAST);
            let mut data = f.afi.0.to_be_bytes().to_vec();
            data.push(f.safi.0);
            data.extend(limit.to_be_bytes());
            if let Some(p) = sp.peers.get_mut(&peer) {
                p.prefix_down = true;
                p.connect_at = None;
                p.prefix_restart_at =
                    (restart > 0).then(|| now + Duration::from_secs(u64::from(restart)));
            }
            let n = NotificationMsg::new(code::CEASE, cease_sub::MAX_PREFIXES_REACHED, data);
            notify_and_close(
                sp,
                now,
                conn,
                n,
                &format!("{count} prefixes > max-prefix {limit}"),
            );
            true
        }
    }
}

/// A connection's hold, keepalive and delay-open deadlines.
type ConnTimers = (ConnId, Option<Instant>, Option<Instant>, Option<Instant>);

/// Every timer due at `now`.
pub(super) fn timers(sp: &mut Speaker, now: Instant) {
    let ids: Vec<PeerId> = sp.peers.keys().copied().collect();
    for peer in ids {
        let Some(p) = sp.peers.get_mut(&peer) else {
            continue;
        };
        // connect retry
        if p.connect_at.is_some_and(|t| t <= now) {
            p.connect_at = None;
            if p.conns.iter().all(|c| c.dir != Dir::Out) && !p.admin_down && !p.prefix_down {
                let before = p.state();
                let cfg = p.cfg.clone();
                let conn = new_conn(sp, peer, Dir::Out, now);
                sp.out.push_back(Output::Connect {
                    conn,
                    peer,
                    remote: cfg.remote,
                    local: cfg.local_address,
                    md5: cfg.md5.clone(),
                    ttl: cfg.ttl,
                });
                state_change(sp, peer, before);
            }
        }
        let Some(p) = sp.peers.get_mut(&peer) else {
            continue;
        };
        // max-prefix restart
        if p.prefix_restart_at.is_some_and(|t| t <= now) {
            p.prefix_restart_at = None;
            p.prefix_down = false;
            if !p.cfg.passive {
                p.connect_at = Some(now);
            }
        }
        // GR restart / stale timer: flush what is still stale
        if let Some(gr) = &p.gr
            && gr.deadline <= now
        {
            let fams = gr.families.clone();
            let name = p.cfg.name.clone();
            p.gr = None;
            for f in fams {
                let removed = sp.rib.sweep_stale(f, peer);
                sp.emit(Event::StaleSwept {
                    peer: name.clone(),
                    family: f,
                    removed,
                    why: "restart timer expired",
                });
            }
        }
        // per connection
        let conns: Vec<ConnTimers> = sp
            .peers
            .get(&peer)
            .map(|p| {
                p.conns
                    .iter()
                    .map(|c| (c.id, c.hold_at, c.keepalive_at, c.delay_open_at))
                    .collect()
            })
            .unwrap_or_default();
        for (conn, hold, ka, delay) in conns {
            if hold.is_some_and(|t| t <= now) {
                // RFC 4271 §6.5: "If a system does not receive successive KEEPALIVE, UPDATE,
                // and/or NOTIFICATION messages within the period specified in the Hold Time
                // field of the OPEN message, then the NOTIFICATION message with the Hold Timer
                // Expired Error Code is sent and the BGP connection is closed."
                let n = NotificationMsg::new(code::HOLD_TIMER_EXPIRED, 0, Vec::new());
                notify_and_close(sp, now, conn, n, "hold timer expired");
                continue;
            }
            if delay.is_some_and(|t| t <= now) {
                let cfg = sp.peers.get(&peer).map(|p| p.cfg.clone());
                if let Some(cfg) = cfg {
                    let open = our_open(sp, &cfg);
                    if let Some(c) = sp.peers.get_mut(&peer).and_then(|p| p.conn_mut(conn)) {
                        c.delay_open_at = None;
                        c.open_sent = true;
                    }
                    send_msg(sp, peer, conn, &Message::Open(open));
                }
            }
            if ka.is_some_and(|t| t <= now) {
                let interval = sp
                    .peers
                    .get_mut(&peer)
                    .and_then(|p| p.conn_mut(conn))
                    .and_then(|c| c.nego.as_ref().map(|n| n.keepalive));
                if let Some(c) = sp.peers.get_mut(&peer).and_then(|p| p.conn_mut(conn)) {
                    c.keepalive_at = interval.map(|k| now + secs(k));
                }
                send_msg(sp, peer, conn, &Message::Keepalive);
            }
        }
    }
}
