//! VNIs as the EVPN layer uses them: RD and RT derivation, and the import index.
//!
//! Owns: `[[vni]]` config → `Vni` (RD, export RTs, import rules, gateway, Router's MAC) and
//! `ImportIndex` (which VNIs a route's Route Targets import it into).
//! Must not: hold routes or MAC state.
//!
//! - RD `auto`: RFC 7432 §7.9 "The RD ... SHOULD be a Type 1 RD ... the IP address of the PE
//!   ... [and] a number unique to the PE": `router-id:VNI` when the VNI fits 16 bits, else
//!   `router-id:N` with N the VNI's position among `[[vni]]` (FRR's `router-id:rd_id`).
//! - Export RT `auto`: `ASN:VNI` with the low 16 bits of the ASN (FRR's default auto RT, so a
//!   fabric of FRR VTEPs in one AS imports it unchanged).
//! - Import RT `auto`: any RT whose local administrator names this VNI, whatever the global
//!   administrator: `*:VNI` (FRR's wildcard, needed where each VTEP has its own ASN) and the
//!   RFC 8365 §5.1.2.1 auto-derived form (A = 0, Type = 1 VXLAN, any D-ID, Service ID = VNI).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use smallvec::SmallVec;

use crate::config::{RtCfg, VniCfg, VniKind};
use crate::wire::bgp::extcomm::RouteTarget;
use crate::wire::bgp::rd::RouteDistinguisher;
use crate::wire::types::MacAddr;

/// One configured VNI, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Vni {
    pub vni: u32,
    pub l3: bool,
    pub rd: RouteDistinguisher,
    pub export: Vec<RouteTarget>,
    pub import: Vec<ImportRt>,
    /// l2: the IP-VRF this MAC-VRF routes in (symmetric IRB).
    pub l3_vni: Option<u32>,
    /// l2: anycast gateway (RFC 7432 §10.1 Default Gateway community on its MAC/IP route).
    pub gateway: Option<(IpNet, MacAddr)>,
    /// l3: our Router's MAC (RFC 9135 §8.1), the inner destination MAC towards us.
    pub router_mac: MacAddr,
    /// l3: prefixes advertised as type 5 (RFC 9136).
    pub prefixes: Vec<IpNet>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportRt {
    Exact(RouteTarget),
    /// `*:VNI` and the RFC 8365 auto-derived form.
    Auto(u32),
}

/// The anycast gateway MAC of a VNI when none is configured: locally administered, the same
/// on every VTEP (it must be — every VTEP answers for the gateway).
pub fn default_gateway_mac(vni: u32) -> MacAddr {
    let [_, a, b, c] = vni.to_be_bytes();
    MacAddr([0x02, 0x76, 0x6d, a, b, c])
}

/// Our Router's MAC when none is configured: locally administered, from the router ID.
pub fn default_router_mac(router_id: Ipv4Addr) -> MacAddr {
    let [a, b, c, d] = router_id.octets();
    MacAddr([0x02, 0x00, a, b, c, d])
}

/// The RFC 8365 §5.1.2.1 local administrator of an auto-derived RT: A (1 bit) = 0, Type (3
/// bits) = 1 (VXLAN), D-ID (4 bits), Service ID (24 bits).
pub fn rfc8365_local_admin(vni: u32) -> u32 {
    (1 << 28) | (vni & 0x00ff_ffff)
}

/// Resolve `[[vni]]` entries. Config validation has checked uniqueness and ranges.
pub fn resolve(
    cfgs: &[VniCfg],
    asn: u32,
    router_id: Ipv4Addr,
    router_mac: Option<MacAddr>,
) -> BTreeMap<u32, Vni> {
    let low16 = u16::try_from(asn & 0xffff).unwrap_or(0);
    let mut out = BTreeMap::new();
    for (i, c) in cfgs.iter().enumerate() {
        let number =
            u16::try_from(c.vni).unwrap_or_else(|_| u16::try_from(i + 1).unwrap_or(u16::MAX));
        // an explicit value `validate` would have rejected falls back to auto
        let rd = c.rd.explicit().unwrap_or(RouteDistinguisher::Ipv4 {
            addr: router_id,
            number,
        });
        let export = c
            .export_rt
            .iter()
            .filter_map(|r| match r {
                RtCfg::Auto => Some(RouteTarget::As2 {
                    asn: low16,
                    value: c.vni,
                }),
                RtCfg::Set(_) => r.explicit(),
            })
            .collect();
        let import = c
            .import_rt
            .iter()
            .filter_map(|r| match r {
                RtCfg::Auto => Some(ImportRt::Auto(c.vni)),
                RtCfg::Set(_) => r.explicit().map(ImportRt::Exact),
            })
            .collect();
        let l3 = c.kind == VniKind::L3;
        out.insert(
            c.vni,
            Vni {
                vni: c.vni,
                l3,
                rd,
                export,
                import,
                l3_vni: if l3 { None } else { c.l3_vni },
                gateway: c
                    .gateway_ip
                    .filter(|_| !l3)
                    .map(|g| (g, c.gateway_mac.unwrap_or(default_gateway_mac(c.vni)))),
                router_mac: c
                    .router_mac
                    .or(router_mac)
                    .unwrap_or(default_router_mac(router_id)),
                prefixes: c.prefixes.clone(),
            },
        );
    }
    out
}

/// Route Target → VNIs it imports into.
#[derive(Clone, Debug, Default)]
pub struct ImportIndex {
    exact: HashMap<RouteTarget, SmallVec<[u32; 2]>>,
    auto: HashMap<u32, SmallVec<[u32; 2]>>,
}

impl ImportIndex {
    pub fn new(vnis: &BTreeMap<u32, Vni>) -> ImportIndex {
        let mut ix = ImportIndex::default();
        for v in vnis.values() {
            for r in &v.import {
                let list = match *r {
                    ImportRt::Exact(rt) => ix.exact.entry(rt).or_default(),
                    ImportRt::Auto(n) => ix.auto.entry(n).or_default(),
                };
                if !list.contains(&v.vni) {
                    list.push(v.vni);
                }
            }
        }
        ix
    }

    /// The VNIs any of `rts` imports into (sorted, each once).
    pub fn vnis<'a>(&self, rts: impl Iterator<Item = &'a RouteTarget>) -> SmallVec<[u32; 2]> {
        let mut out: SmallVec<[u32; 2]> = SmallVec::new();
        for rt in rts {
            let mut add = |l: Option<&SmallVec<[u32; 2]>>| {
                for v in l.into_iter().flatten() {
                    if !out.contains(v) {
                        out.push(*v);
                    }
                }
            };
            add(self.exact.get(rt));
            if let Some(service) = auto_service_id(rt) {
                add(self.auto.get(&service));
            }
        }
        out.sort_unstable();
        out
    }
}

/// The VNI an RT names under the auto rules (`*:VNI`, or RFC 8365 A=0/Type=1/any D-ID).
fn auto_service_id(rt: &RouteTarget) -> Option<u32> {
    let value = match *rt {
        RouteTarget::As2 { value, .. } => value,
        RouteTarget::As4 { value, .. } | RouteTarget::Ipv4 { value, .. } => u32::from(value),
    };
    match value >> 24 {
        0 => Some(value),
        0x10..=0x1f => Some(value & 0x00ff_ffff),
        _ => None,
    }
}

/// The host prefix of an address (/32 or /128).
pub fn host(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vni: u32) -> VniCfg {
        VniCfg {
            vni,
            ..VniCfg::default()
        }
    }

    #[test]
    fn auto_rd_rt_and_import() {
        let rid: Ipv4Addr = "192.0.2.1".parse().unwrap();
        let mut big = cfg(70000);
        big.import_rt = vec![RtCfg::Auto, RtCfg::Set("65009:7".into())];
        let v = resolve(&[cfg(100), big], 4_200_000_001, rid, None);
        let a = &v[&100];
        assert_eq!(a.rd.to_string(), "192.0.2.1:100");
        // low 16 bits of a 4-octet ASN, as FRR derives it
        assert_eq!(
            a.export,
            vec![RouteTarget::As2 {
                asn: (4_200_000_001u32 & 0xffff) as u16,
                value: 100
            }]
        );
        assert_eq!(v[&70000].rd.to_string(), "192.0.2.1:2");
        let ix = ImportIndex::new(&v);
        let rt = |s: &str| s.parse::<RouteTarget>().unwrap();
        // *:VNI from any AS, the RFC 8365 form, and an explicit RT
        assert_eq!(ix.vnis([rt("65002:100")].iter()).as_slice(), &[100]);
        let r8365 = RouteTarget::As2 {
            asn: 65002,
            value: rfc8365_local_admin(100) | (3 << 24),
        };
        assert_eq!(ix.vnis([r8365].iter()).as_slice(), &[100]);
        assert_eq!(ix.vnis([rt("65009:7")].iter()).as_slice(), &[70000]);
        assert_eq!(
            ix.vnis([rt("65009:7"), rt("1:100"), rt("1:70000")].iter())
                .as_slice(),
            &[100, 70000]
        );
        assert!(ix.vnis([rt("65002:101")].iter()).is_empty());
        // A = 1 (not auto-derived) never matches the auto rule
        let manual = RouteTarget::As2 {
            asn: 1,
            value: (1 << 31) | 100,
        };
        assert!(ix.vnis([manual].iter()).is_empty());
    }
}
