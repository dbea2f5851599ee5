//! The routes this VTEP originates, in the form `Speaker::originate` takes.
//!
//! Owns: NLRI and attributes of local type 2, 3 and 5 routes.
//! Must not: decide what to originate (that is `evpn::Evpn`) or keep state.
//!
//! - Type 2 (RFC 7432 §7.2, RFC 8365 §5.1.3): ESI 0, Ethernet Tag 0 (VLAN-based service, as
//!   FRR), Label1 = the L2 VNI; with symmetric IRB and an IP, Label2 = the L3 VNI, the L3
//!   VNI's RTs and the Router's MAC (RFC 9135 §8.1). Extended communities: the export RTs,
//!   Encapsulation VXLAN (RFC 9012 tunnel type 8), MAC Mobility when the sequence is > 0 or
//!   the MAC is static (RFC 7432 §7.7: "a PE advertising a MAC address for the first time
//!   ... without" it), Default Gateway for the anycast gateway (RFC 7432 §10.1).
//! - Type 3 (RFC 7432 §7.3, RFC 8365 §5.1.3): originator = our VTEP, PMSI Tunnel of type
//!   Ingress Replication with the VNI as label and our VTEP as endpoint.
//! - Type 5 (RFC 9136 §3.1): ESI 0, gateway 0, label = the L3 VNI, Router's MAC.
//!
//! The next hop of every route is our VTEP address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::vni::Vni;
use crate::bgp::spec::Built;
use crate::wire::bgp::afi::Family;
use crate::wire::bgp::attr::{AttrValue, MpNextHop, PathAttr, PmsiTunnel, PmsiTunnelId, code};
use crate::wire::bgp::evpn::{
    Esi, EvpnRoute, InclusiveMulticastRoute, IpPrefixRoute, Label, MacIpRoute,
};
use crate::wire::bgp::extcomm::ExtCommunity;
use crate::wire::types::MacAddr;

fn next_hop(vtep: IpAddr) -> MpNextHop {
    match vtep {
        IpAddr::V4(a) => MpNextHop::Ipv4(a),
        IpAddr::V6(a) => MpNextHop::Ipv6(a),
    }
}

/// The VNI's export Route Targets as extended communities.
fn export_rts(v: &Vni) -> Vec<ExtCommunity> {
    v.export
        .iter()
        .map(|rt| ExtCommunity::route_target(*rt))
        .collect()
}

fn label(vni: u32) -> Label {
    Label(vni & 0x00ff_ffff)
}

fn nlri(route: &EvpnRoute) -> Vec<u8> {
    let mut v = Vec::with_capacity(route.encoded_len());
    route.encode(&mut v);
    v
}

fn built(
    route: &EvpnRoute,
    mut attrs: Vec<PathAttr>,
    ec: Vec<ExtCommunity>,
    vtep: IpAddr,
) -> Built {
    attrs.push(PathAttr::new(code::ORIGIN, AttrValue::Origin(0)));
    attrs.push(PathAttr::new(
        code::EXTENDED_COMMUNITIES,
        AttrValue::ExtCommunities(ec),
    ));
    Built {
        family: Family::L2VPN_EVPN,
        nlri: nlri(route),
        attrs,
        next_hop: Some(next_hop(vtep)),
    }
}

/// The type-2 NLRI of a local MAC (only the key matters for a withdrawal).
pub fn mac_ip_route(v: &Vni, mac: MacAddr, ip: Option<IpAddr>, l3: Option<&Vni>) -> EvpnRoute {
    EvpnRoute::MacIp(MacIpRoute {
        rd: v.rd,
        esi: Esi::ZERO,
        ethernet_tag: 0,
        mac,
        ip,
        label1: label(v.vni),
        label2: ip.and(l3).map(|l| label(l.vni)),
    })
}

/// What a local MAC (or MAC+IP) route carries beyond its NLRI.
#[derive(Clone, Copy, Debug)]
pub struct MacRouteOpts {
    pub seq: u32,
    pub sticky: bool,
    /// Carry MAC Mobility even at sequence 0 and not sticky (the MAC has moved before).
    pub mobility: bool,
    pub default_gateway: bool,
}

/// A local type-2 route.
pub fn mac_ip(
    v: &Vni,
    l3: Option<&Vni>,
    mac: MacAddr,
    ip: Option<IpAddr>,
    o: MacRouteOpts,
    vtep: IpAddr,
) -> Built {
    let route = mac_ip_route(v, mac, ip, l3);
    let mut ec = export_rts(v);
    let irb = ip.and(l3);
    if let Some(l) = irb {
        ec.extend(export_rts(l));
    }
    ec.push(ExtCommunity::vxlan_encap());
    if o.seq > 0 || o.sticky || o.mobility {
        ec.push(ExtCommunity::mac_mobility_seq(o.seq, o.sticky));
    }
    if let Some(l) = irb {
        ec.push(ExtCommunity::RoutersMac { mac: l.router_mac });
    }
    if o.default_gateway {
        ec.push(ExtCommunity::DefaultGateway { value: [0; 6] });
    }
    built(&route, Vec::new(), ec, vtep)
}

/// Our type-3 route for an L2 VNI.
pub fn multicast_route(v: &Vni, vtep: IpAddr) -> EvpnRoute {
    EvpnRoute::InclusiveMulticast(InclusiveMulticastRoute {
        rd: v.rd,
        ethernet_tag: 0,
        originator: vtep,
    })
}

pub fn multicast(v: &Vni, vtep: IpAddr) -> Built {
    let route = multicast_route(v, vtep);
    let mut ec = export_rts(v);
    ec.push(ExtCommunity::vxlan_encap());
    let pmsi = PathAttr::new(
        code::PMSI_TUNNEL,
        AttrValue::PmsiTunnel(PmsiTunnel {
            flags: 0,
            tunnel_type: PmsiTunnel::INGRESS_REPLICATION,
            label: label(v.vni),
            tunnel_id: PmsiTunnelId::Ip(vtep),
        }),
    );
    built(&route, vec![pmsi], ec, vtep)
}

pub fn prefix_route(v: &Vni, p: IpNet) -> EvpnRoute {
    let gateway = match p {
        IpNet::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpNet::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    EvpnRoute::IpPrefix(IpPrefixRoute {
        rd: v.rd,
        esi: Esi::ZERO,
        ethernet_tag: 0,
        prefix: p.network(),
        prefix_len: p.prefix_len(),
        gateway,
        label: label(v.vni),
    })
}

/// A type-5 route of an L3 VNI.
pub fn prefix(v: &Vni, p: IpNet, vtep: IpAddr) -> Built {
    let route = prefix_route(v, p);
    let mut ec = export_rts(v);
    ec.push(ExtCommunity::vxlan_encap());
    ec.push(ExtCommunity::RoutersMac { mac: v.router_mac });
    built(&route, Vec::new(), ec, vtep)
}

/// The NLRI bytes of a route (for `Speaker::withdraw_local`).
pub fn nlri_of(route: &EvpnRoute) -> Vec<u8> {
    nlri(route)
}
