//! Netlink plumbing of the Linux backend: one send/acknowledge pair (so a batch can keep many
//! requests in flight), the neighbour messages that make FDB, flood-list and ARP/ND entries,
//! dumps, and a flat view of a neighbour message.
//!
//! Owns: how a `DataplaneOp` looks on the wire (`Req`), errno handling, AF_BRIDGE address
//! decoding (NDA_DST comes back as raw bytes in AF_BRIDGE messages; decoded by length).
//! Must not: decide anything (which entry to write is `mod.rs` / `reconcile.rs`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::RouteType;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::Handle;

use crate::wire::types::MacAddr;

/// `NUD_*` neighbour states (include/uapi/linux/neighbour.h).
pub(super) const NUD_REACHABLE: u16 = 0x02;
pub(super) const NUD_NOARP: u16 = 0x40;
pub(super) const NUD_PERMANENT: u16 = 0x80;

const ENOENT: i32 = 2;

/// Header flags of a create-or-replace (`bridge fdb replace`, `ip neigh replace`).
const F_REPLACE: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
/// Header flags of `bridge fdb append` (a VXLAN FDB entry with one more remote).
const F_APPEND: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND;
const F_DELETE: u16 = NLM_F_REQUEST | NLM_F_ACK;

/// A failed netlink request: the errno (0 when the connection itself failed) and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NlError {
    pub errno: i32,
    pub text: String,
}

impl fmt::Display for NlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<rtnetlink::Error> for NlError {
    fn from(e: rtnetlink::Error) -> NlError {
        match e {
            rtnetlink::Error::NetlinkError(m) => NlError {
                errno: m.raw_code().abs(),
                text: m.to_string(),
            },
            other => NlError {
                errno: 0,
                text: other.to_string(),
            },
        }
    }
}

/// One netlink request of an op: the message, its header flags, and what to call it in an
/// error (`"fdb replace on vxlan100"`).
#[derive(Debug)]
pub(super) struct Req {
    msg: RouteNetlinkMessage,
    flags: u16,
    /// A delete of something absent succeeds (ARCHITECTURE rule 4).
    enoent_ok: bool,
    pub what: String,
}

/// A request on its way: the stream its acknowledgement arrives on.
pub(super) type Pending = BoxStream<'static, NetlinkMessage<RouteNetlinkMessage>>;

/// Send `req` without waiting (the kernel handles one socket's requests in order).
pub(super) fn send(handle: &Handle, req: &Req) -> Result<Pending, NlError> {
    let mut msg = NetlinkMessage::from(req.msg.clone());
    msg.header.flags = req.flags;
    let mut h = handle.clone();
    match h.request(msg) {
        Ok(s) => Ok(s.boxed()),
        Err(e) => Err(NlError::from(e)),
    }
}

/// Wait for the acknowledgement of a sent request.
pub(super) async fn ack(req: &Req, mut pending: Pending) -> Result<(), NlError> {
    while let Some(m) = pending.next().await {
        if let NetlinkPayload::Error(e) = m.payload
            && let Some(code) = e.code
        {
            let errno = code.get().abs();
            if errno == ENOENT && req.enoent_ok {
                return Ok(());
            }
            return Err(NlError {
                errno,
                text: e.to_string(),
            });
        }
    }
    Ok(())
}

fn neigh(
    family: AddressFamily,
    ifindex: u32,
    state: u16,
    flags: NeighbourFlags,
    attributes: Vec<NeighbourAttribute>,
) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = family;
    m.header.ifindex = ifindex;
    m.header.state = NeighbourState::from(state);
    m.header.flags = flags;
    m.header.kind = RouteType::Unspec;
    m.attributes = attributes;
    m
}

fn addr(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(a) => NeighbourAddress::Inet(a),
        IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    }
}

fn family(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// State and flags of a remote MAC entry: `self extern_learn` (what FRR writes: the kernel
/// never ages an extern_learn VXLAN entry); sticky adds `static` (NUD_NOARP, with
/// NUD_REACHABLE: the VXLAN driver refuses a state without PERMANENT or REACHABLE) and
/// `sticky`.
pub(super) fn fdb_kind(sticky: bool) -> (u16, NeighbourFlags) {
    if sticky {
        (
            NUD_NOARP | NUD_REACHABLE,
            NeighbourFlags::Own | NeighbourFlags::ExtLearned | NeighbourFlags::Sticky,
        )
    } else {
        (
            NUD_REACHABLE,
            NeighbourFlags::Own | NeighbourFlags::ExtLearned,
        )
    }
}

/// `bridge fdb replace MAC dev VXLAN dst VTEP self extern_learn [static sticky]`.
pub(super) fn fdb_replace(vx: u32, dev: &str, mac: MacAddr, vtep: IpAddr, sticky: bool) -> Req {
    let (state, flags) = fdb_kind(sticky);
    Req {
        msg: RouteNetlinkMessage::NewNeighbour(neigh(
            AddressFamily::Bridge,
            vx,
            state,
            flags,
            vec![
                NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()),
                NeighbourAttribute::Destination(addr(vtep)),
            ],
        )),
        flags: F_REPLACE,
        enoent_ok: false,
        what: format!("fdb replace {mac} dst {vtep} on {dev}"),
    }
}

/// `bridge fdb del MAC dev VXLAN self [dst VTEP]`: without `vtep` the whole entry (every
/// remote), with it that one remote.
pub(super) fn fdb_delete(vx: u32, dev: &str, mac: MacAddr, vtep: Option<IpAddr>) -> Req {
    let mut attributes = vec![NeighbourAttribute::LinkLayerAddress(mac.0.to_vec())];
    if let Some(v) = vtep {
        attributes.push(NeighbourAttribute::Destination(addr(v)));
    }
    let what = match vtep {
        Some(v) => format!("fdb delete {mac} dst {v} on {dev}"),
        None => format!("fdb delete {mac} on {dev}"),
    };
    Req {
        msg: RouteNetlinkMessage::DelNeighbour(neigh(
            AddressFamily::Bridge,
            vx,
            0,
            NeighbourFlags::Own,
            attributes,
        )),
        flags: F_DELETE,
        enoent_ok: true,
        what,
    }
}

/// `bridge fdb append 00:00:00:00:00:00 dev VXLAN dst VTEP self permanent` (one flood-list
/// member; appending a member already there succeeds).
pub(super) fn flood_append(vx: u32, dev: &str, vtep: IpAddr) -> Req {
    Req {
        msg: RouteNetlinkMessage::NewNeighbour(neigh(
            AddressFamily::Bridge,
            vx,
            NUD_PERMANENT,
            NeighbourFlags::Own,
            vec![
                NeighbourAttribute::LinkLayerAddress(vec![0; 6]),
                NeighbourAttribute::Destination(addr(vtep)),
            ],
        )),
        flags: F_APPEND,
        enoent_ok: false,
        what: format!("flood append dst {vtep} on {dev}"),
    }
}

/// Remove exactly the flood-list member `vtep`.
pub(super) fn flood_delete(vx: u32, dev: &str, vtep: IpAddr) -> Req {
    let mut r = fdb_delete(vx, dev, MacAddr::ZERO, Some(vtep));
    r.what = format!("flood delete dst {vtep} on {dev}");
    r
}

/// `ip neigh replace IP lladdr MAC dev BRIDGE nud noarp extern_learn` (what FRR writes for a
/// remote MAC+IP; the bridge answers ARP/ND from it when `neigh_suppress` is on).
pub(super) fn neigh_replace(br: u32, dev: &str, ip: IpAddr, mac: MacAddr) -> Req {
    Req {
        msg: RouteNetlinkMessage::NewNeighbour(neigh(
            family(ip),
            br,
            NUD_NOARP,
            NeighbourFlags::ExtLearned,
            vec![
                NeighbourAttribute::Destination(addr(ip)),
                NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()),
            ],
        )),
        flags: F_REPLACE,
        enoent_ok: false,
        what: format!("neighbour replace {ip} lladdr {mac} on {dev}"),
    }
}

pub(super) fn neigh_delete(br: u32, dev: &str, ip: IpAddr) -> Req {
    Req {
        msg: RouteNetlinkMessage::DelNeighbour(neigh(
            family(ip),
            br,
            0,
            NeighbourFlags::empty(),
            vec![NeighbourAttribute::Destination(addr(ip))],
        )),
        flags: F_DELETE,
        enoent_ok: true,
        what: format!("neighbour delete {ip} on {dev}"),
    }
}

/// Every neighbour entry of one family (`AddressFamily::Bridge`: the FDBs of all bridges and
/// VXLAN devices).
pub(super) async fn dump_neigh(
    handle: &Handle,
    family: AddressFamily,
) -> Result<Vec<NeighView>, NlError> {
    let mut out = Vec::new();
    let mut s = handle
        .neighbours()
        .get()
        .set_address_family(family)
        .execute()
        .boxed();
    while let Some(m) = s.try_next().await? {
        out.push(NeighView::from_msg(&m));
    }
    Ok(out)
}

/// Every link.
pub(super) async fn dump_links(handle: &Handle) -> Result<Vec<LinkMessage>, NlError> {
    let mut out = Vec::new();
    let mut s = handle.link().get().execute().boxed();
    while let Some(m) = s.try_next().await? {
        out.push(m);
    }
    Ok(out)
}

/// The parts of a neighbour message the backend looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NeighView {
    pub bridge_family: bool,
    pub ifindex: u32,
    pub state: u16,
    pub flags: NeighbourFlags,
    pub mac: Option<MacAddr>,
    pub dst: Option<IpAddr>,
    /// NDA_MASTER: the bridge of a bridge-port entry.
    pub master: Option<u32>,
    /// NDA_VNI / NDA_PORT: present on a VXLAN remote only when they differ from the device's.
    pub vni: Option<u32>,
    pub port: Option<u16>,
}

impl NeighView {
    pub fn from_msg(m: &NeighbourMessage) -> NeighView {
        let mut v = NeighView {
            bridge_family: m.header.family == AddressFamily::Bridge,
            ifindex: m.header.ifindex,
            state: u16::from(m.header.state),
            flags: m.header.flags,
            mac: None,
            dst: None,
            master: None,
            vni: None,
            port: None,
        };
        for a in &m.attributes {
            match a {
                NeighbourAttribute::LinkLayerAddress(b) => {
                    v.mac = <[u8; 6]>::try_from(b.as_slice()).ok().map(MacAddr);
                }
                NeighbourAttribute::Destination(d) => v.dst = decode_addr(d),
                NeighbourAttribute::Controller(i) => v.master = Some(*i),
                NeighbourAttribute::Vni(n) => v.vni = Some(*n),
                NeighbourAttribute::Port(p) => v.port = Some(*p),
                _ => {}
            }
        }
        v
    }
}

/// NDA_DST: typed in AF_INET/AF_INET6 messages, raw bytes in AF_BRIDGE ones.
pub(super) fn decode_addr(d: &NeighbourAddress) -> Option<IpAddr> {
    match d {
        NeighbourAddress::Inet(a) => Some(IpAddr::V4(*a)),
        NeighbourAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        NeighbourAddress::Other(b) => match b.len() {
            4 => <[u8; 4]>::try_from(b.as_slice())
                .ok()
                .map(|o| IpAddr::V4(Ipv4Addr::from(o))),
            16 => <[u8; 16]>::try_from(b.as_slice())
                .ok()
                .map(|o| IpAddr::V6(Ipv6Addr::from(o))),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_family_destinations_decode_by_length() {
        assert_eq!(
            decode_addr(&NeighbourAddress::Other(vec![10, 0, 0, 2])),
            Some("10.0.0.2".parse().unwrap())
        );
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            decode_addr(&NeighbourAddress::Other(v6.octets().to_vec())),
            Some(IpAddr::V6(v6))
        );
        assert_eq!(decode_addr(&NeighbourAddress::Other(vec![1, 2, 3])), None);
    }

    #[test]
    fn remote_mac_entries_are_extern_learn_and_sticky_is_static() {
        let (s, f) = fdb_kind(false);
        assert_eq!(s, NUD_REACHABLE);
        assert!(f.contains(NeighbourFlags::Own | NeighbourFlags::ExtLearned));
        assert!(!f.contains(NeighbourFlags::Sticky));
        let (s, f) = fdb_kind(true);
        assert_eq!(s, NUD_NOARP | NUD_REACHABLE);
        assert!(f.contains(NeighbourFlags::Sticky | NeighbourFlags::ExtLearned));
        let r = flood_append(7, "vxlan100", "10.0.0.2".parse().unwrap());
        assert_eq!(r.flags & NLM_F_APPEND, NLM_F_APPEND);
        assert_eq!(r.flags & NLM_F_REPLACE, 0);
        let d = fdb_delete(7, "vxlan100", MacAddr([2, 0, 0, 0, 0, 1]), None);
        assert!(d.enoent_ok);
    }
}
