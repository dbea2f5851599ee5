//! The pieces of a raw BGP speaker on vmmi's own codec (`vmmi::wire::bgp`), shared by the
//! benches that drive a real daemon or another BGP implementation over TCP: `ingest.rs` (the
//! EVPN ingest generator / sink) and `lisp_move/` (EVPN move → SMR / Map-Notify latency).
//! Each includes this file with `#[path = "common/bgp_gen.rs"] mod bgp_gen;` (from a
//! directory bench, `"../common/bgp_gen.rs"`).
//!
//! Owns: message framing from a blocking `TcpStream`, the OPEN our generators send and the
//! OPEN exchange up to Established (RFC 4271 §8), EVPN type-2 NLRI and the UPDATE that carries
//! them, and a minimal HTTP/1.1 GET for polling an API.
//! Must not: keep session state, spawn threads or print: the benches do that their own way.

#![allow(dead_code)] // each bench uses its part
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // real sockets and time

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use vmmi::wire::MacAddr;
use vmmi::wire::bgp::attr::{AsSegment, AttrValue, MpNextHop, MpReach, PathAttr, code, origin};
use vmmi::wire::bgp::capability::Capability;
use vmmi::wire::bgp::evpn::{Esi, EvpnRoute, Label, MacIpRoute};
use vmmi::wire::bgp::extcomm::{ExtCommunity, RouteTarget};
use vmmi::wire::bgp::message::frame_len;
use vmmi::wire::bgp::nlri::{EvpnNlri, NlriList};
use vmmi::wire::bgp::notification::NotificationMsg;
use vmmi::wire::bgp::open::{OpenMsg, OptParam};
use vmmi::wire::bgp::rd::RouteDistinguisher;
use vmmi::wire::bgp::{BgpCtx, Family, Message, UpdateMsg};

/// Reads whole BGP messages from a stream.
pub struct Framer {
    buf: Vec<u8>,
    start: usize,
}

impl Framer {
    pub fn new() -> Self {
        Framer {
            buf: Vec::with_capacity(1 << 17),
            start: 0,
        }
    }

    /// Next message's bytes (header included), or `Ok(None)` on a read timeout.
    pub fn next(&mut self, s: &mut TcpStream) -> io::Result<Option<&[u8]>> {
        // framing accepts up to 65535 octets; the decoder checks against what was negotiated
        let fctx = BgpCtx {
            extended_message: true,
            ..BgpCtx::default()
        };
        loop {
            let avail = self.buf.get(self.start..).unwrap_or(&[]);
            match frame_len(avail, &fctx) {
                Ok(Some(len)) if avail.len() >= len => {
                    let from = self.start;
                    self.start += len;
                    return Ok(self.buf.get(from..from + len));
                }
                Ok(_) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let old = self.buf.len();
            self.buf.resize(old + (1 << 16), 0);
            match s.read(&mut self.buf[old..]) {
                Ok(0) => {
                    self.buf.truncate(old);
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed"));
                }
                Ok(n) => self.buf.truncate(old + n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    self.buf.truncate(old);
                    return Ok(None);
                }
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        }
    }
}

/// Parse `ADDR` or `ADDR:PORT` (port 179 by default).
pub fn sockaddr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 179))
        .map_err(|e| format!("{s:?}: {e}"))
}

/// Our OPEN: MP l2vpn-evpn, route refresh, 4-octet AS and, with `extended_message`, RFC 8654.
pub fn open_msg(asn: u32, hold_time: u16, rid: Ipv4Addr, extended_message: bool) -> Message {
    let mut caps = vec![
        Capability::Multiprotocol {
            family: Family::L2VPN_EVPN,
            reserved: 0,
        },
        Capability::RouteRefresh,
        Capability::FourOctetAs { asn },
    ];
    if extended_message {
        caps.push(Capability::ExtendedMessage);
    }
    Message::Open(OpenMsg {
        version: 4,
        my_as: u16::try_from(asn).unwrap_or(OpenMsg::AS_TRANS),
        hold_time,
        bgp_id: rid,
        params: vec![OptParam::Capabilities { capabilities: caps }],
        extended_params: false,
    })
}

/// What the OPEN exchange settled.
pub struct Opened {
    /// The codec context for the session (4-octet AS, Extended Message as negotiated).
    pub ctx: BgpCtx,
    /// The negotiated hold time (the smaller of the two).
    pub hold: u16,
}

/// RFC 4271 §8, OpenSent → OpenConfirm → Established on a connected stream: send our OPEN,
/// read the peer's (`on_open` sees it with the negotiated context and hold time before our
/// KEEPALIVE goes), answer with a KEEPALIVE and wait for the peer's. A peer AS other than
/// `peer_asn` (when given) is refused with NOTIFICATION 2/2. The stream's read timeout bounds
/// every wait.
pub fn open_exchange(
    s: &mut TcpStream,
    fr: &mut Framer,
    ours: &Message,
    extended_message: bool,
    peer_asn: Option<u32>,
    mut on_open: impl FnMut(&OpenMsg, &BgpCtx, u16),
) -> Result<Opened, String> {
    let pre = BgpCtx::default();
    let our_hold = match ours {
        Message::Open(o) => o.hold_time,
        _ => return Err("open_exchange: not an OPEN".into()),
    };
    let mut ob = Vec::new();
    ours.encode(&pre, &mut ob);
    s.write_all(&ob).map_err(|e| format!("send OPEN: {e}"))?;
    let mut ctx = BgpCtx::default();
    let mut hold = our_hold;
    let mut got_open = false;
    loop {
        let m = match fr.next(s) {
            Ok(Some(b)) => {
                Message::decode(b, &ctx)
                    .map_err(|e| format!("decode: {e}"))?
                    .0
            }
            Ok(None) => return Err("timeout in OPEN exchange".into()),
            Err(e) => return Err(format!("OPEN exchange: {e}")),
        };
        match m {
            Message::Open(op) if !got_open => {
                got_open = true;
                let caps: Vec<&Capability> = op.capabilities().collect();
                if let Some(want) = peer_asn
                    && op.asn() != want
                {
                    let mut n = Vec::new();
                    Message::Notification(NotificationMsg::new(2, 2, Vec::new()))
                        .encode(&pre, &mut n);
                    let _ = s.write_all(&n);
                    return Err(format!("peer AS {} != expected {want}", op.asn()));
                }
                ctx.four_octet_as = caps
                    .iter()
                    .any(|c| matches!(c, Capability::FourOctetAs { .. }));
                ctx.extended_message = extended_message
                    && caps
                        .iter()
                        .any(|c| matches!(c, Capability::ExtendedMessage));
                hold = hold.min(op.hold_time);
                on_open(&op, &ctx, hold);
                let mut k = Vec::new();
                Message::Keepalive.encode(&ctx, &mut k);
                s.write_all(&k)
                    .map_err(|e| format!("send KEEPALIVE: {e}"))?;
            }
            Message::Keepalive if got_open => break,
            Message::Notification(n) => return Err(format!("NOTIFICATION {}", n.describe())),
            other => return Err(format!("unexpected {} in OPEN exchange", other.type_code())),
        }
    }
    Ok(Opened { ctx, hold })
}

/// An EVPN type-2 MAC/IP Advertisement route (RFC 7432 §7.2): ESI 0, Ethernet Tag 0, the VNI
/// as label 1 (RFC 8365 §5.1.3), no label 2.
pub fn mac_ip_route(
    rd: RouteDistinguisher,
    mac: MacAddr,
    ip: Option<IpAddr>,
    vni: u32,
) -> EvpnNlri {
    EvpnNlri {
        path_id: None,
        route: EvpnRoute::MacIp(MacIpRoute {
            rd,
            esi: Esi::ZERO,
            ethernet_tag: 0,
            mac,
            ip,
            label1: Label(vni),
            label2: None,
        }),
    }
}

/// An UPDATE announcing `routes` from AS `asn` (AS_PATH = [asn]): MP_REACH with next hop `nh`
/// (the VTEP), ORIGIN IGP, and as extended communities the route target, the VXLAN
/// encapsulation (RFC 9012 §4.1, tunnel type 8) and, when `seq` is given, MAC Mobility with
/// that sequence number (RFC 7432 §7.7; absent means sequence 0).
pub fn evpn_update(
    asn: u32,
    rt: RouteTarget,
    seq: Option<u32>,
    nh: Ipv4Addr,
    routes: Vec<EvpnNlri>,
) -> Message {
    let mut ecs = vec![ExtCommunity::route_target(rt), ExtCommunity::vxlan_encap()];
    if let Some(seq) = seq {
        ecs.push(ExtCommunity::mac_mobility_seq(seq, false));
    }
    // RFC 7606 §5.1: MP_REACH_NLRI first
    Message::Update(UpdateMsg {
        attrs: vec![
            PathAttr::new(
                code::MP_REACH_NLRI,
                AttrValue::MpReach(MpReach {
                    family: Family::L2VPN_EVPN,
                    next_hop: MpNextHop::Ipv4(nh),
                    reserved: 0,
                    nlri: NlriList::Evpn(routes),
                }),
            ),
            PathAttr::new(code::ORIGIN, AttrValue::Origin(origin::IGP)),
            PathAttr::new(
                code::AS_PATH,
                AttrValue::AsPath(vec![AsSegment {
                    seg_type: vmmi::wire::bgp::attr::segment::AS_SEQUENCE,
                    asns: vec![asn],
                }]),
            ),
            PathAttr::new(code::EXTENDED_COMMUNITIES, AttrValue::ExtCommunities(ecs)),
        ],
        ..UpdateMsg::default()
    })
}

/// GET http://HOST:PORT/PATH (`target` without the scheme); the body of a 200 answer
/// (chunked transfer decoded), else the status line as the error.
pub fn http_get(target: &str, timeout: Duration) -> Result<String, String> {
    let (hostport, path) = match target.find('/') {
        Some(i) => (&target[..i], &target[i..]),
        None => (target, "/"),
    };
    let addr = sockaddr(hostport)?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP header end")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(head.lines().next().unwrap_or("").to_string());
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((len, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(len.trim(), 16).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            out.push_str(after.get(..n).ok_or("short chunk")?);
            rest = after.get(n + 2..).unwrap_or("");
        }
        return Ok(out);
    }
    Ok(body.to_string())
}
