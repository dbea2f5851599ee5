//! Routes an operator announces by hand (`POST /v1/routes`, `vmmi route announce`), as GoBGP's
//! `gobgp global rib add` does, and the JSON view of the RIB (`GET /v1/routes`).
//!
//! Owns: `RouteSpec` → (family, NLRI bytes, attributes, next hop), and `RouteView`.
//! Must not: touch the speaker state — callers pass the result to `Speaker::originate`.
//!
//! EVPN routes built here follow RFC 7432 §7 / RFC 8365 §5.1: type 2 with the VNI in Label1,
//! Route Targets, the Encapsulation community (VXLAN, tunnel type 8) and MAC Mobility when the
//! sequence is > 0 (RFC 7432 §15.1: "a PE advertising a MAC for the first time ... without a
//! MAC Mobility extended community" — sequence 0 is the absence of the community); type 3 with
//! a PMSI Tunnel attribute of type Ingress Replication whose label is the VNI (RFC 8365
//! §5.1.3); type 5 with the L3 VNI, gateway and Router's MAC (RFC 9136 §3, RFC 9135 §8.1).

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::rib::{Entry, Reason, RouteKey};
use crate::wire::bgp::afi::Family;
use crate::wire::bgp::attr::{AttrValue, MpNextHop, PathAttr, PmsiTunnel, PmsiTunnelId, code};
use crate::wire::bgp::evpn::{
    Esi, EvpnRoute, InclusiveMulticastRoute, IpPrefixRoute, Label, MacIpRoute,
};
use crate::wire::bgp::extcomm::{ExtCommunity, RouteTarget};
use crate::wire::bgp::nlri::{IpPrefix, PrefixNlri, encode_prefixes};
use crate::wire::bgp::rd::RouteDistinguisher;
use crate::wire::reader::Reader;
use crate::wire::types::MacAddr;

/// One route as an operator writes it (JSON).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RouteSpec {
    /// EVPN type 2 (RFC 7432 §7.2).
    Macip {
        rd: String,
        mac: String,
        #[serde(default)]
        ip: Option<IpAddr>,
        /// L2 VNI (Label1).
        vni: u32,
        /// L3 VNI (Label2) for symmetric IRB.
        #[serde(default)]
        l3_vni: Option<u32>,
        #[serde(default)]
        esi: Option<String>,
        #[serde(default)]
        rt: Vec<String>,
        #[serde(default)]
        seq: u32,
        #[serde(default)]
        sticky: bool,
        #[serde(default)]
        router_mac: Option<String>,
        next_hop: IpAddr,
    },
    /// EVPN type 3 (RFC 7432 §7.3) with PMSI ingress replication.
    Multicast {
        rd: String,
        vni: u32,
        #[serde(default)]
        rt: Vec<String>,
        /// Originating router's IP = the VTEP; also the next hop.
        vtep: IpAddr,
    },
    /// EVPN type 5 (RFC 9136 §3).
    Prefix {
        rd: String,
        prefix: ipnet::IpNet,
        #[serde(default)]
        gateway: Option<IpAddr>,
        vni: u32,
        #[serde(default)]
        rt: Vec<String>,
        #[serde(default)]
        router_mac: Option<String>,
        next_hop: IpAddr,
    },
    /// IPv4 or IPv6 unicast; next hop = the session's address when absent.
    Unicast {
        prefix: ipnet::IpNet,
        #[serde(default)]
        next_hop: Option<IpAddr>,
        #[serde(default)]
        med: Option<u32>,
        #[serde(default)]
        local_pref: Option<u32>,
    },
}

/// What `Speaker::originate` takes.
#[derive(Debug)]
pub struct Built {
    pub family: Family,
    pub nlri: Vec<u8>,
    pub attrs: Vec<PathAttr>,
    pub next_hop: Option<MpNextHop>,
}

fn rd(s: &str) -> Result<RouteDistinguisher, String> {
    s.parse().map_err(|e| format!("rd {s:?}: {e:?}"))
}

fn rts(v: &[String]) -> Result<Vec<ExtCommunity>, String> {
    v.iter()
        .map(|s| {
            let t = s.strip_prefix("RT:").unwrap_or(s);
            t.parse::<RouteTarget>()
                .map(ExtCommunity::route_target)
                .map_err(|e| format!("rt {s:?}: {e:?}"))
        })
        .collect()
}

fn mac(s: &str) -> Result<MacAddr, String> {
    s.parse().map_err(|e| format!("mac {s:?}: {e:?}"))
}

fn nh(ip: IpAddr) -> MpNextHop {
    match ip {
        IpAddr::V4(a) => MpNextHop::Ipv4(a),
        IpAddr::V6(a) => MpNextHop::Ipv6(a),
    }
}

fn label(vni: u32, what: &str) -> Result<Label, String> {
    if vni > 0xff_ffff {
        return Err(format!("{what} {vni} does not fit 24 bits"));
    }
    Ok(Label(vni))
}

fn base(ec: Vec<ExtCommunity>) -> Vec<PathAttr> {
    vec![
        PathAttr::new(code::ORIGIN, AttrValue::Origin(0)),
        PathAttr::new(code::EXTENDED_COMMUNITIES, AttrValue::ExtCommunities(ec)),
    ]
}

/// A type-2 or type-5 route with RTs, VXLAN encapsulation (RFC 8365 §5.1.3), MAC Mobility
/// and Router's MAC (RFC 9135 §8.1) when given.
fn evpn_built(
    route: EvpnRoute,
    rt: &[String],
    mac_mobility: Option<ExtCommunity>,
    router_mac: Option<&str>,
    next_hop: IpAddr,
) -> Result<Built, String> {
    let mut ec = rts(rt)?;
    ec.push(ExtCommunity::vxlan_encap());
    ec.extend(mac_mobility);
    if let Some(rm) = router_mac {
        ec.push(ExtCommunity::RoutersMac { mac: mac(rm)? });
    }
    let mut nlri = Vec::new();
    route.encode(&mut nlri);
    Ok(Built {
        family: Family::L2VPN_EVPN,
        nlri,
        attrs: base(ec),
        next_hop: Some(nh(next_hop)),
    })
}

impl RouteSpec {
    pub fn build(&self) -> Result<Built, String> {
        let evpn = |route: EvpnRoute| {
            let mut v = Vec::new();
            route.encode(&mut v);
            v
        };
        match self {
            RouteSpec::Macip {
                rd: r,
                mac: m,
                ip,
                vni,
                l3_vni,
                esi,
                rt,
                seq,
                sticky,
                router_mac,
                next_hop,
            } => {
                let route = EvpnRoute::MacIp(MacIpRoute {
                    rd: rd(r)?,
                    esi: match esi {
                        Some(e) => e.parse::<Esi>().map_err(|e| format!("esi: {e:?}"))?,
                        None => MacIpRoute::EMPTY.esi,
                    },
                    ethernet_tag: 0,
                    mac: mac(m)?,
                    ip: *ip,
                    label1: label(*vni, "vni")?,
                    label2: l3_vni.map(|v| label(v, "l3_vni")).transpose()?,
                });
                let mm =
                    (*seq > 0 || *sticky).then(|| ExtCommunity::mac_mobility_seq(*seq, *sticky));
                evpn_built(route, rt, mm, router_mac.as_deref(), *next_hop)
            }
            RouteSpec::Multicast {
                rd: r,
                vni,
                rt,
                vtep,
            } => {
                let route = EvpnRoute::InclusiveMulticast(InclusiveMulticastRoute {
                    rd: rd(r)?,
                    ethernet_tag: 0,
                    originator: *vtep,
                });
                let mut ec = rts(rt)?;
                ec.push(ExtCommunity::vxlan_encap());
                let mut attrs = base(ec);
                attrs.push(PathAttr::new(
                    code::PMSI_TUNNEL,
                    AttrValue::PmsiTunnel(PmsiTunnel {
                        flags: 0,
                        tunnel_type: PmsiTunnel::INGRESS_REPLICATION,
                        label: label(*vni, "vni")?,
                        tunnel_id: PmsiTunnelId::Ip(*vtep),
                    }),
                ));
                Ok(Built {
                    family: Family::L2VPN_EVPN,
                    nlri: evpn(route),
                    attrs,
                    next_hop: Some(nh(*vtep)),
                })
            }
            RouteSpec::Prefix {
                rd: r,
                prefix,
                gateway,
                vni,
                rt,
                router_mac,
                next_hop,
            } => {
                let zero = match prefix {
                    ipnet::IpNet::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    ipnet::IpNet::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                };
                let gw = gateway.unwrap_or(zero);
                if gw.is_ipv4() != zero.is_ipv4() {
                    return Err("gateway and prefix must be the same address family".into());
                }
                let route = EvpnRoute::IpPrefix(IpPrefixRoute {
                    rd: rd(r)?,
                    esi: MacIpRoute::EMPTY.esi,
                    ethernet_tag: 0,
                    prefix: prefix.network(),
                    prefix_len: prefix.prefix_len(),
                    gateway: gw,
                    label: label(*vni, "vni")?,
                });
                evpn_built(route, rt, None, router_mac.as_deref(), *next_hop)
            }
            RouteSpec::Unicast {
                prefix,
                next_hop,
                med,
                local_pref,
            } => {
                let family = match prefix {
                    ipnet::IpNet::V4(_) => Family::IPV4_UNICAST,
                    ipnet::IpNet::V6(_) => Family::IPV6_UNICAST,
                };
                let mut nlri = Vec::new();
                encode_prefixes(
                    &[PrefixNlri {
                        path_id: None,
                        prefix: IpPrefix {
                            addr: prefix.network(),
                            len: prefix.prefix_len(),
                        },
                    }],
                    &mut nlri,
                );
                let mut attrs = vec![PathAttr::new(code::ORIGIN, AttrValue::Origin(0))];
                if let Some(m) = med {
                    attrs.push(PathAttr::new(code::MED, AttrValue::Med(*m)));
                }
                if let Some(l) = local_pref {
                    attrs.push(PathAttr::new(code::LOCAL_PREF, AttrValue::LocalPref(*l)));
                }
                Ok(Built {
                    family,
                    nlri,
                    attrs,
                    next_hop: next_hop.map(nh),
                })
            }
        }
    }
}

/// One path of a route, for the API.
#[derive(Clone, Debug, Serialize)]
pub struct PathView {
    /// "local" or the peer's address.
    pub peer: String,
    pub best: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    pub stale: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_id: Option<u32>,
    pub next_hop: Option<IpAddr>,
    pub as_path: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub med: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_mobility_seq: Option<u32>,
    pub sticky: bool,
    /// FRR's spelling: `RT:65001:100`, `ET:8`, `MM:3`, `Rmac:…`.
    pub ext_communities: Vec<String>,
    /// The full NLRI of this path, decoded (labels and ESI are per path).
    pub nlri: serde_json::Value,
    pub attrs: Vec<PathAttr>,
}

/// One route key with its paths, best first.
#[derive(Clone, Debug, Serialize)]
pub struct RouteView {
    pub family: String,
    /// The route as `vmmi decode` prints it (from the best path's NLRI).
    pub route: serde_json::Value,
    /// A short stable text form: `[2]:[rd]:[mac]:[ip]`, `[3]:[rd]:[ip]`, `[5]:[rd]:[prefix]`
    /// or the IP prefix.
    pub prefix: String,
    pub paths: Vec<PathView>,
}

fn decode_evpn(b: &[u8]) -> Option<EvpnRoute> {
    EvpnRoute::decode(&mut Reader::new(b)).ok()
}

/// The VNI a route belongs to, for `?vni=` filters: Label1 of types 2 and 5, the PMSI label
/// of type 3.
pub fn route_vni(r: &EvpnRoute, attrs: &[PathAttr]) -> Option<u32> {
    match r {
        EvpnRoute::MacIp(m) => Some(m.label1.vni()),
        EvpnRoute::IpPrefix(p) => Some(p.label.vni()),
        EvpnRoute::InclusiveMulticast(_) => attrs.iter().find_map(|a| match &a.value {
            AttrValue::PmsiTunnel(p) => Some(p.label.vni()),
            _ => None,
        }),
        _ => None,
    }
}

fn short(r: &EvpnRoute) -> String {
    match r {
        EvpnRoute::MacIp(m) => match m.ip {
            Some(ip) => format!("[2]:[{}]:[{}]:[{}]", m.rd, m.mac, ip),
            None => format!("[2]:[{}]:[{}]", m.rd, m.mac),
        },
        EvpnRoute::InclusiveMulticast(i) => format!("[3]:[{}]:[{}]", i.rd, i.originator),
        EvpnRoute::IpPrefix(p) => format!("[5]:[{}]:[{}/{}]", p.rd, p.prefix, p.prefix_len),
        EvpnRoute::EthernetAd(a) => format!("[1]:[{}]:[{}]", a.rd, a.esi),
        EvpnRoute::EthernetSegment(s) => format!("[4]:[{}]:[{}]", s.rd, s.esi),
        EvpnRoute::Other { route_type, .. } => format!("[{route_type}]"),
    }
}

/// Build the view of one entry; `peer_name` names a path's peer; `vni` filters EVPN routes.
pub fn view(
    family: Family,
    key: &RouteKey,
    e: &Entry,
    peer_name: &dyn Fn(crate::rib::PeerId) -> String,
    vni: Option<u32>,
) -> Option<RouteView> {
    let mut paths = Vec::with_capacity(e.paths.len());
    let mut route = serde_json::Value::Null;
    let mut prefix = String::new();
    for (i, p) in e.paths.iter().enumerate() {
        let mut wire = Vec::new();
        super::join_nlri(family, key, &p.rest, &mut wire);
        let nlri_json = if family == Family::L2VPN_EVPN {
            let r = decode_evpn(&wire);
            if i == 0 {
                if let (Some(want), Some(r)) = (vni, r.as_ref())
                    && route_vni(r, &p.attrs.list) != Some(want)
                {
                    return None;
                }
                prefix = r.as_ref().map(short).unwrap_or_default();
            }
            serde_json::to_value(&r).unwrap_or_default()
        } else {
            let pfx = crate::wire::bgp::nlri::decode_prefixes(
                &mut Reader::new(&wire),
                family.afi.0 == 2,
                false,
            )
            .ok()
            .and_then(|v| v.first().map(|p| p.prefix.to_string()));
            if i == 0 {
                prefix = pfx.clone().unwrap_or_default();
            }
            serde_json::to_value(pfx).unwrap_or_default()
        };
        if i == 0 {
            route = nlri_json.clone();
        }
        let a = &p.attrs;
        paths.push(PathView {
            peer: peer_name(p.peer),
            best: i == 0,
            reason: (i == 0).then(|| e.reason.unwrap_or(Reason::Only).describe()),
            stale: p.stale(),
            path_id: (p.path_id != 0).then_some(p.path_id),
            next_hop: a.next_hop_ip(),
            as_path: a
                .as_path()
                .iter()
                .flat_map(|s| s.asns.iter().copied())
                .collect(),
            local_pref: a.local_pref,
            med: a.med,
            mac_mobility_seq: a.mac_mobility.map(|m| m.0),
            sticky: a.mac_mobility.is_some_and(|m| m.1),
            ext_communities: a.ext_communities().iter().map(|c| c.to_string()).collect(),
            nlri: nlri_json,
            attrs: a.list.clone(),
        });
    }
    Some(RouteView {
        family: family.to_string(),
        route,
        prefix,
        paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macip_spec_builds_the_rfc_route() {
        let s: RouteSpec = serde_json::from_str(
            r#"{"type":"macip","rd":"192.0.2.1:100","mac":"52:54:00:00:00:01","ip":"10.1.0.5",
                "vni":100,"rt":["65001:100"],"seq":3,"next_hop":"192.0.2.1"}"#,
        )
        .unwrap();
        let b = s.build().unwrap();
        assert_eq!(b.family, Family::L2VPN_EVPN);
        let r = decode_evpn(&b.nlri).unwrap();
        let EvpnRoute::MacIp(m) = r else { panic!() };
        assert_eq!(m.label1.vni(), 100);
        assert_eq!(m.ip, Some("10.1.0.5".parse().unwrap()));
        let AttrValue::ExtCommunities(ec) = &b.attrs[1].value else {
            panic!()
        };
        let names: Vec<String> = ec.iter().map(|c| c.to_string()).collect();
        assert_eq!(names, vec!["RT:65001:100", "ET:8", "MM:3"]);
    }

    #[test]
    fn bad_specs_name_the_field() {
        let s = RouteSpec::Multicast {
            rd: "x".into(),
            vni: 1,
            rt: vec![],
            vtep: "192.0.2.1".parse().unwrap(),
        };
        assert!(s.build().unwrap_err().starts_with("rd \"x\""));
        let s = RouteSpec::Multicast {
            rd: "1:1".into(),
            vni: 1 << 24,
            rt: vec![],
            vtep: "192.0.2.1".parse().unwrap(),
        };
        assert!(s.build().unwrap_err().contains("24 bits"));
    }
}
