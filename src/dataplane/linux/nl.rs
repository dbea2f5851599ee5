//! Netlink plumbing of the Linux backend: one send/acknowledge pair (so a batch can keep many
//! requests in flight), the neighbour messages that make FDB (the VXLAN device's and the
//! bridge's side of a remote MAC), flood-list and ARP/ND entries,
//! the route messages of an L3 VNI's table, dumps, and flat views of a neighbour and a route
//! message.
//!
//! Owns: how a `DataplaneOp` looks on the wire (`Req`), errno handling, AF_BRIDGE address
//! decoding (NDA_DST comes back as raw bytes in AF_BRIDGE messages; decoded by length), the
//! route protocol and metric that mark vmmi's routes (`RTPROT_VMMI`, `ROUTE_METRIC`).
//! Must not: decide anything (which entry to write is `mod.rs` / `reconcile.rs`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use ipnet::IpNet;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType, RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::Handle;

use crate::wire::types::MacAddr;

/// `NUD_*` neighbour states (include/uapi/linux/neighbour.h).
pub(super) const NUD_REACHABLE: u16 = 0x02;
pub(super) const NUD_NOARP: u16 = 0x40;
pub(super) const NUD_PERMANENT: u16 = 0x80;

const ENOENT: i32 = 2;
/// What a route delete of an absent route answers.
const ESRCH: i32 = 3;

/// The route protocol (`rtm_protocol`) of every route vmmi writes: how `reconcile` tells its
/// routes from everybody else's (`ip route show table N proto 210`). 210 is used by nobody we
/// know of: the kernel's uapi names 0–4 and 8–18, 42 (babel), 99 (openr) and 186–192;
/// iproute2's `rt_protos` adds nothing above that; FRR's zebra uses 11 and 186–198 — EVPN
/// routes installed by zebra are `proto bgp` (186). A protocol of our own means a vmmi and an
/// FRR on one host never take each other's routes for their own.
pub(super) const RTPROT_VMMI: u8 = 210;

/// The metric (`RTA_PRIORITY`) of every route vmmi writes. A route replace replaces the route
/// with the same prefix *and metric* whatever its protocol, so vmmi's metric must differ from
/// the ones other writers use by default — the kernel's (0 for IPv4, 1024 for IPv6 static,
/// 256 for IPv6 connected) and FRR's (20) — for a write of ours never to overwrite a route an
/// operator or another daemon put in the same table under the same prefix. Such a route, when
/// its metric is lower, wins the lookup; ours stays next to it.
pub(super) const ROUTE_METRIC: u32 = 30;

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
    /// A delete of something absent succeeds (ARCHITECTURE rule 4): ENOENT (neighbours) and
    /// ESRCH (routes) are success.
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
            if (errno == ENOENT || errno == ESRCH) && req.enoent_ok {
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

/// State and flags of the bridge-side entry of a remote MAC: `master extern_learn` on the
/// VXLAN port, so that the bridge forwards the MAC to that port alone (no unknown-unicast
/// flood to the local ports) and ARP/ND suppression finds it (`br_do_proxy_suppress_arp` /
/// `br_do_suppress_nd` reply only when `br_fdb_find_rcu` gives an entry whose port has
/// `neigh_suppress`).
///
/// The kernel's bridge (net/bridge/br_fdb.c, `__br_fdb_add`) sends an NTF_EXT_LEARNED request
/// on a port to `br_fdb_external_learn_add`, which takes neither the state nor NTF_STICKY: the
/// entry never ages (`has_expired` and `br_fdb_cleanup` skip extern_learn entries), a replace
/// of a present entry repoints it in place (one RTM_NEWNEIGH, no delete), and a dump shows it
/// NUD_REACHABLE, not static. `br_fdb_add` still wants one of PERMANENT, NOARP or REACHABLE:
/// `bridge fdb replace MAC dev vxlan100 master extern_learn` sends NOARP|PERMANENT (seen with
/// strace, iproute2 6.1); we send NUD_NOARP alone — "static", never "local" should a kernel
/// ever honour it. A sticky remote MAC keeps `sticky` on its VXLAN entry only: the bridge
/// cannot hold an extern_learn entry sticky, so a local learn of the MAC still moves the
/// bridge's entry to the local port — which is how the EVPN layer hears of it (RFC 7432
/// §15.2 wants that reported).
pub(super) fn master_kind() -> (u16, NeighbourFlags) {
    (
        NUD_NOARP,
        NeighbourFlags::Controller | NeighbourFlags::ExtLearned,
    )
}

/// `bridge fdb replace MAC dev VXLAN master extern_learn`: the bridge forwards `mac` to its
/// port `vx` (`dev`: the VXLAN device's name, `br`: the bridge's, for errors).
pub(super) fn master_replace(vx: u32, dev: &str, br: &str, mac: MacAddr) -> Req {
    let (state, flags) = master_kind();
    Req {
        msg: RouteNetlinkMessage::NewNeighbour(neigh(
            AddressFamily::Bridge,
            vx,
            state,
            flags,
            vec![NeighbourAttribute::LinkLayerAddress(mac.0.to_vec())],
        )),
        flags: F_REPLACE,
        enoent_ok: false,
        what: format!("fdb replace {mac} on {dev} master {br}"),
    }
}

/// `bridge fdb del MAC dev VXLAN master`: the bridge's entry for `mac` if it points at the port
/// `vx` (the kernel deletes by address *and* port: a MAC learned on a local port since is not
/// touched, and answers ENOENT — success, like an absent entry).
pub(super) fn master_delete(vx: u32, dev: &str, br: &str, mac: MacAddr) -> Req {
    Req {
        msg: RouteNetlinkMessage::DelNeighbour(neigh(
            AddressFamily::Bridge,
            vx,
            0,
            NeighbourFlags::Controller,
            vec![NeighbourAttribute::LinkLayerAddress(mac.0.to_vec())],
        )),
        flags: F_DELETE,
        enoent_ok: true,
        what: format!("fdb delete {mac} on {dev} master {br}"),
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

/// The gateway of a route to `prefix` through `vtep` as the kernel needs it: the VTEP itself
/// when the families match; for an IPv6 prefix behind an IPv4 VTEP the IPv4-mapped IPv6
/// address (what FRR's zebra installs: the kernel accepts a mapped next hop, and the neighbour
/// entry for it is an IPv6 one); for an IPv4 prefix behind an IPv6 VTEP the VTEP itself,
/// written as `RTA_VIA` (an IPv4 route with an IPv6 next hop, RFC 8950 style).
pub(super) fn gateway(prefix: &IpNet, vtep: IpAddr) -> IpAddr {
    match (prefix, vtep) {
        (IpNet::V6(_), IpAddr::V4(v)) => IpAddr::V6(v.to_ipv6_mapped()),
        _ => vtep,
    }
}

fn route_msg(prefix: &IpNet, table: u32) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = match prefix {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    };
    m.header.destination_prefix_length = prefix.prefix_len();
    // iproute2's encoding: the 8-bit header field when it fits, RTA_TABLE always
    m.header.table = u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    m.header.protocol = RouteProtocol::from(RTPROT_VMMI);
    m.attributes = vec![
        RouteAttribute::Destination(RouteAddress::from(prefix.network())),
        RouteAttribute::Table(table),
        RouteAttribute::Priority(ROUTE_METRIC),
    ];
    m
}

/// `ip route replace PREFIX via GW dev BRIDGE onlink table T proto 210 metric 30`: the route
/// of an L3 VNI (symmetric IRB host route or type-5 prefix). `onlink`: the VTEP is not on the
/// bridge's subnet (the bridge has none); the kernel takes the next hop's MAC from the
/// neighbour entry `nh_replace` writes, and the VXLAN device's FDB entry for that MAC says
/// which VTEP to send to.
pub(super) fn route_replace(br: u32, dev: &str, table: u32, prefix: &IpNet, gw: IpAddr) -> Req {
    let mut m = route_msg(prefix, table);
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.header.flags = RouteFlags::Onlink;
    m.attributes.push(match (prefix, gw) {
        (IpNet::V4(_), IpAddr::V6(v)) => RouteAttribute::Via(RouteVia::Inet6(v)),
        _ => RouteAttribute::Gateway(RouteAddress::from(gw)),
    });
    m.attributes.push(RouteAttribute::Oif(br));
    Req {
        msg: RouteNetlinkMessage::NewRoute(m),
        flags: F_REPLACE,
        enoent_ok: false,
        what: format!("route replace {prefix} via {gw} dev {dev} table {table}"),
    }
}

/// `ip route del PREFIX table T proto 210 metric M`: only a route of ours (the kernel matches
/// the protocol and metric given), never another writer's route of the same prefix.
pub(super) fn route_delete(table: u32, prefix: &IpNet, metric: u32) -> Req {
    let mut m = route_msg(prefix, table);
    m.header.scope = RouteScope::NoWhere;
    m.header.kind = RouteType::Unicast;
    for a in &mut m.attributes {
        if let RouteAttribute::Priority(p) = a {
            *p = metric;
        }
    }
    Req {
        msg: RouteNetlinkMessage::DelRoute(m),
        flags: F_DELETE,
        enoent_ok: true,
        what: format!("route delete {prefix} table {table}"),
    }
}

/// Every route of one family, all tables (filtered by the caller: the kernel filters a dump
/// by table only with strict checking on the socket).
pub(super) async fn dump_routes(
    handle: &Handle,
    family: AddressFamily,
) -> Result<Vec<RouteView>, NlError> {
    let mut m = RouteMessage::default();
    m.header.address_family = family;
    let mut out = Vec::new();
    let mut s = handle.route().get(m).execute().boxed();
    while let Some(r) = s.try_next().await? {
        if let Some(v) = RouteView::from_msg(&r) {
            out.push(v);
        }
    }
    Ok(out)
}

/// The parts of a route message the backend looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RouteView {
    pub table: u32,
    pub prefix: IpNet,
    pub protocol: u8,
    pub metric: u32,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub onlink: bool,
    /// Several next hops (RTA_MULTIPATH): never what vmmi writes.
    pub multipath: bool,
}

impl RouteView {
    /// `None` for a message without a usable destination.
    pub fn from_msg(m: &RouteMessage) -> Option<RouteView> {
        let mut table = u32::from(m.header.table);
        let mut dst = None;
        let mut v = RouteView {
            table: 0,
            prefix: IpNet::default(),
            protocol: u8::from(m.header.protocol),
            metric: 0,
            gateway: None,
            oif: None,
            onlink: m.header.flags.contains(RouteFlags::Onlink),
            multipath: false,
        };
        for a in &m.attributes {
            match a {
                RouteAttribute::Table(t) => table = *t,
                RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = Some(IpAddr::V4(*a)),
                RouteAttribute::Destination(RouteAddress::Inet6(a)) => dst = Some(IpAddr::V6(*a)),
                RouteAttribute::Gateway(RouteAddress::Inet(a)) => v.gateway = Some(IpAddr::V4(*a)),
                RouteAttribute::Gateway(RouteAddress::Inet6(a)) => v.gateway = Some(IpAddr::V6(*a)),
                RouteAttribute::Via(RouteVia::Inet(a)) => v.gateway = Some(IpAddr::V4(*a)),
                RouteAttribute::Via(RouteVia::Inet6(a)) => v.gateway = Some(IpAddr::V6(*a)),
                RouteAttribute::Priority(p) => v.metric = *p,
                RouteAttribute::Oif(i) => v.oif = Some(*i),
                RouteAttribute::MultiPath(_) => v.multipath = true,
                _ => {}
            }
        }
        // a default route has no RTA_DST
        let dst = dst.or(match m.header.address_family {
            AddressFamily::Inet => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            AddressFamily::Inet6 => Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            _ => None,
        })?;
        v.table = table;
        v.prefix = IpNet::new(dst, m.header.destination_prefix_length).ok()?;
        Some(v)
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
    /// NDA_VLAN: a bridge entry of one VLAN (vmmi writes none; VLAN-aware bridges are not
    /// supported).
    pub vlan: Option<u16>,
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
            vlan: None,
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
                NeighbourAttribute::Vlan(n) => v.vlan = Some(*n),
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

    #[test]
    fn bridge_side_entries_are_master_extern_learn_static_and_replace() {
        let (s, f) = master_kind();
        assert_eq!(s, NUD_NOARP);
        assert_eq!(f, NeighbourFlags::Controller | NeighbourFlags::ExtLearned);
        assert!(!f.contains(NeighbourFlags::Own), "not a VXLAN (self) entry");
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let r = master_replace(7, "vxlan100", "br100", mac);
        assert_eq!(r.flags, F_REPLACE);
        assert_eq!(
            r.what,
            "fdb replace 02:00:00:00:00:01 on vxlan100 master br100"
        );
        let RouteNetlinkMessage::NewNeighbour(m) = &r.msg else {
            panic!("{:?}", r.msg)
        };
        assert_eq!(m.header.ifindex, 7, "on the VXLAN port, not the bridge");
        assert_eq!(
            m.attributes,
            vec![NeighbourAttribute::LinkLayerAddress(mac.0.to_vec())]
        );
        let d = master_delete(7, "vxlan100", "br100", mac);
        assert!(d.enoent_ok);
        let RouteNetlinkMessage::DelNeighbour(m) = &d.msg else {
            panic!("{:?}", d.msg)
        };
        assert_eq!(m.header.flags, NeighbourFlags::Controller);
    }
}
