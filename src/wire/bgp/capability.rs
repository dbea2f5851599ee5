//! BGP capabilities (RFC 5492) carried in the OPEN Capabilities optional parameter.
//!
//! Owns: typed Multiprotocol (RFC 4760 §8), Route Refresh (RFC 2918), Enhanced Route Refresh
//! (RFC 7313), 4-octet AS (RFC 6793), Graceful Restart (RFC 4724 §3, RFC 8538 N bit), ADD-PATH
//! (RFC 7911 §4), Extended Message (RFC 8654), FQDN (draft-walton-bgp-hostname, sent by FRR);
//! every other capability kept as `Unknown { code, value }`.
//! Must not: negotiate — the speaker intersects capabilities.
//!
//! ```text
//! RFC 5492 §4:
//! +------------------------------+
//! | Capability Code (1 octet)    |
//! +------------------------------+
//! | Capability Length (1 octet)  |
//! +------------------------------+
//! | Capability Value (variable)  |
//! +------------------------------+
//! ```

use super::afi::{Afi, Family, Safi};
use crate::wire::reader::{Reader, WireResult};

pub mod cap_code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    pub const FQDN: u8 = 73;
}

/// One Graceful Restart family entry (RFC 4724 §3): AFI, SAFI and the flags octet whose top bit
/// is "Forwarding State preserved".
#[derive(Clone, Copy, PartialEq, Eq, Debug, arbitrary::Arbitrary, serde::Serialize)]
pub struct GrFamily {
    pub family: Family,
    pub flags: u8,
}

impl GrFamily {
    pub const FORWARDING_PRESERVED: u8 = 0x80;

    pub fn forwarding_preserved(&self) -> bool {
        self.flags & Self::FORWARDING_PRESERVED != 0
    }
}

/// RFC 4724 §3 Graceful Restart capability.
///
/// ```text
/// +--------------------------------------------------+
/// | Restart Flags (4 bits)                           |
/// | Restart Time in seconds (12 bits)                |
/// | AFI (16 bits) | SAFI (8 bits) | Flags (8 bits)   |  repeated
/// +--------------------------------------------------+
/// ```
/// Restart Flags: 0x8 = R (Restart State), 0x4 = N (Notification, RFC 8538).
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct GracefulRestart {
    pub restart_flags: u8,
    pub restart_time: u16,
    pub families: Vec<GrFamily>,
}

impl GracefulRestart {
    pub const RESTART_STATE: u8 = 0x8;
    pub const NOTIFICATION: u8 = 0x4;
}

/// RFC 7911 §4: send/receive values 1 = receive, 2 = send, 3 = both.
#[derive(Clone, Copy, PartialEq, Eq, Debug, arbitrary::Arbitrary, serde::Serialize)]
pub struct AddPathFamily {
    pub family: Family,
    pub send_receive: u8,
}

impl AddPathFamily {
    pub const RECEIVE: u8 = 1;
    pub const SEND: u8 = 2;
    pub const BOTH: u8 = 3;
}

#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(tag = "capability", rename_all = "kebab-case")]
pub enum Capability {
    /// RFC 4760 §8: AFI (2), Reserved (1), SAFI (1). The reserved octet is kept.
    Multiprotocol {
        family: Family,
        reserved: u8,
    },
    RouteRefresh,
    EnhancedRouteRefresh,
    FourOctetAs {
        asn: u32,
    },
    GracefulRestart(GracefulRestart),
    AddPath {
        families: Vec<AddPathFamily>,
    },
    ExtendedMessage,
    /// FRR's hostname capability: hostname and domain name, each length-prefixed.
    Fqdn {
        hostname: String,
        domain: String,
    },
    Unknown {
        code: u8,
        #[serde(serialize_with = "crate::wire::bgp::attr::ser_hex")]
        value: Vec<u8>,
    },
}

fn fixed_len(r: &Reader<'_>, want: usize, field: &'static str) -> WireResult<()> {
    if r.remaining() != want {
        let expected = match want {
            0 => "0 octets",
            4 => "4 octets",
            _ => "a different length",
        };
        return Err(Reader::bad_value_at(
            r.offset(),
            field,
            r.remaining() as u64,
            expected,
        ));
    }
    Ok(())
}

fn utf8_string(b: &[u8], at: usize, field: &'static str) -> WireResult<String> {
    std::str::from_utf8(b)
        .map(str::to_string)
        .map_err(|_| Reader::bad_value_at(at, field, 0, "UTF-8 text"))
}

impl Capability {
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol { .. } => cap_code::MULTIPROTOCOL,
            Capability::RouteRefresh => cap_code::ROUTE_REFRESH,
            Capability::EnhancedRouteRefresh => cap_code::ENHANCED_ROUTE_REFRESH,
            Capability::FourOctetAs { .. } => cap_code::FOUR_OCTET_AS,
            Capability::GracefulRestart(_) => cap_code::GRACEFUL_RESTART,
            Capability::AddPath { .. } => cap_code::ADD_PATH,
            Capability::ExtendedMessage => cap_code::EXTENDED_MESSAGE,
            Capability::Fqdn { .. } => cap_code::FQDN,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Decode one capability (code, length, value) from `r`.
    pub fn decode(r: &mut Reader<'_>) -> WireResult<Self> {
        let code = r.u8("capability code")?;
        let len = r.u8("capability length")?;
        let mut v = r.sub(usize::from(len), "capability value")?;
        let cap = match code {
            cap_code::MULTIPROTOCOL => {
                fixed_len(&v, 4, "multiprotocol capability length")?;
                let afi = Afi(v.u16("AFI")?);
                let reserved = v.u8("reserved")?;
                let safi = Safi(v.u8("SAFI")?);
                Capability::Multiprotocol {
                    family: Family::new(afi, safi),
                    reserved,
                }
            }
            cap_code::ROUTE_REFRESH => {
                fixed_len(&v, 0, "route refresh capability length")?;
                Capability::RouteRefresh
            }
            cap_code::ENHANCED_ROUTE_REFRESH => {
                fixed_len(&v, 0, "enhanced route refresh capability length")?;
                Capability::EnhancedRouteRefresh
            }
            cap_code::EXTENDED_MESSAGE => {
                fixed_len(&v, 0, "extended message capability length")?;
                Capability::ExtendedMessage
            }
            cap_code::FOUR_OCTET_AS => {
                fixed_len(&v, 4, "4-octet AS capability length")?;
                Capability::FourOctetAs {
                    asn: v.u32("AS number")?,
                }
            }
            cap_code::GRACEFUL_RESTART => {
                let w = v.u16("restart flags and time")?;
                let mut families = Vec::new();
                while !v.is_empty() {
                    let afi = Afi(v.u16("AFI")?);
                    let safi = Safi(v.u8("SAFI")?);
                    families.push(GrFamily {
                        family: Family::new(afi, safi),
                        flags: v.u8("AFI flags")?,
                    });
                }
                Capability::GracefulRestart(GracefulRestart {
                    restart_flags: (w >> 12) as u8,
                    restart_time: w & 0x0fff,
                    families,
                })
            }
            cap_code::ADD_PATH => {
                let mut families = Vec::new();
                while !v.is_empty() {
                    let afi = Afi(v.u16("AFI")?);
                    let safi = Safi(v.u8("SAFI")?);
                    families.push(AddPathFamily {
                        family: Family::new(afi, safi),
                        send_receive: v.u8("send/receive")?,
                    });
                }
                Capability::AddPath { families }
            }
            cap_code::FQDN => {
                let hl = v.u8("hostname length")?;
                let at = v.offset();
                let hostname = utf8_string(v.bytes(usize::from(hl), "hostname")?, at, "hostname")?;
                let dl = v.u8("domain name length")?;
                let at = v.offset();
                let domain =
                    utf8_string(v.bytes(usize::from(dl), "domain name")?, at, "domain name")?;
                Capability::Fqdn { hostname, domain }
            }
            _ => Capability::Unknown {
                code,
                value: v.rest().to_vec(),
            },
        };
        v.finish("capability value")?;
        Ok(cap)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.code());
        let len_at = out.len();
        out.push(0);
        match self {
            Capability::Multiprotocol { family, reserved } => {
                out.extend(family.afi.0.to_be_bytes());
                out.push(*reserved);
                out.push(family.safi.0);
            }
            Capability::RouteRefresh
            | Capability::EnhancedRouteRefresh
            | Capability::ExtendedMessage => {}
            Capability::FourOctetAs { asn } => out.extend(asn.to_be_bytes()),
            Capability::GracefulRestart(gr) => {
                let w = (u16::from(gr.restart_flags & 0x0f) << 12) | (gr.restart_time & 0x0fff);
                out.extend(w.to_be_bytes());
                for f in &gr.families {
                    out.extend(f.family.afi.0.to_be_bytes());
                    out.push(f.family.safi.0);
                    out.push(f.flags);
                }
            }
            Capability::AddPath { families } => {
                for f in families {
                    out.extend(f.family.afi.0.to_be_bytes());
                    out.push(f.family.safi.0);
                    out.push(f.send_receive);
                }
            }
            Capability::Fqdn { hostname, domain } => {
                for s in [hostname, domain] {
                    let b = s.as_bytes();
                    let n = b.len().min(255);
                    out.push(n as u8);
                    out.extend(b.iter().take(n));
                }
            }
            Capability::Unknown { value, .. } => out.extend(value),
        }
        let len = (out.len() - len_at - 1).min(255) as u8;
        if let Some(l) = out.get_mut(len_at) {
            *l = len;
        }
    }
}

impl<'a> arbitrary::Arbitrary<'a> for Capability {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let small_vec = |u: &mut arbitrary::Unstructured<'a>, max: usize| u.int_in_range(0..=max);
        Ok(match u.int_in_range(0..=8u8)? {
            0 => Capability::Multiprotocol {
                family: u.arbitrary()?,
                reserved: u.arbitrary()?,
            },
            1 => Capability::RouteRefresh,
            2 => Capability::EnhancedRouteRefresh,
            3 => Capability::FourOctetAs {
                asn: u.arbitrary()?,
            },
            4 => {
                let n = small_vec(u, 40)?;
                Capability::GracefulRestart(GracefulRestart {
                    restart_flags: u.int_in_range(0..=15)?,
                    restart_time: u.int_in_range(0..=4095)?,
                    families: (0..n).map(|_| u.arbitrary()).collect::<Result<_, _>>()?,
                })
            }
            5 => {
                let n = small_vec(u, 40)?;
                Capability::AddPath {
                    families: (0..n).map(|_| u.arbitrary()).collect::<Result<_, _>>()?,
                }
            }
            6 => Capability::ExtendedMessage,
            7 => {
                let h = small_vec(u, 60)?;
                let d = small_vec(u, 60)?;
                let hostname = String::from_utf8_lossy(u.bytes(h)?)
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .collect();
                let domain = String::from_utf8_lossy(u.bytes(d)?)
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .collect();
                Capability::Fqdn { hostname, domain }
            }
            _ => {
                let known = [1u8, 2, 6, 64, 65, 69, 70, 73];
                let mut code: u8 = u.arbitrary()?;
                while known.contains(&code) {
                    code = code.wrapping_add(3);
                }
                let n = small_vec(u, 255)?;
                Capability::Unknown {
                    code,
                    value: u.bytes(n)?.to_vec(),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(bytes: &[u8]) -> Capability {
        let c = Capability::decode(&mut Reader::new(bytes)).unwrap();
        let mut out = Vec::new();
        c.encode(&mut out);
        assert_eq!(out, bytes);
        c
    }

    #[test]
    fn fixtures() {
        assert_eq!(
            rt(&[1, 4, 0, 25, 0, 70]),
            Capability::Multiprotocol {
                family: Family::L2VPN_EVPN,
                reserved: 0
            }
        );
        assert_eq!(rt(&[2, 0]), Capability::RouteRefresh);
        assert_eq!(rt(&[70, 0]), Capability::EnhancedRouteRefresh);
        assert_eq!(rt(&[6, 0]), Capability::ExtendedMessage);
        assert_eq!(
            rt(&[65, 4, 0, 0, 0xfd, 0xe9]),
            Capability::FourOctetAs { asn: 65001 }
        );
        // GR: R bit + N bit, 120 s, l2vpn evpn with forwarding preserved
        assert_eq!(
            rt(&[64, 6, 0xc0, 120, 0, 25, 70, 0x80]),
            Capability::GracefulRestart(GracefulRestart {
                restart_flags: 0xc,
                restart_time: 120,
                families: vec![GrFamily {
                    family: Family::L2VPN_EVPN,
                    flags: 0x80
                }]
            })
        );
        assert_eq!(
            rt(&[69, 4, 0, 1, 1, 3]),
            Capability::AddPath {
                families: vec![AddPathFamily {
                    family: Family::IPV4_UNICAST,
                    send_receive: 3
                }]
            }
        );
        assert_eq!(
            rt(&[73, 7, 4, b'l', b'e', b'a', b'f', 1, b'x']),
            Capability::Fqdn {
                hostname: "leaf".into(),
                domain: "x".into()
            }
        );
        assert_eq!(
            rt(&[128, 0]),
            Capability::Unknown {
                code: 128,
                value: vec![]
            }
        );
    }

    #[test]
    fn malformed_known_capability_is_an_error() {
        let e = Capability::decode(&mut Reader::new(&[65, 2, 0, 1])).unwrap_err();
        assert_eq!((e.offset, e.field), (2, "4-octet AS capability length"));
        let e = Capability::decode(&mut Reader::new(&[2, 1, 0])).unwrap_err();
        assert_eq!(e.field, "route refresh capability length");
    }
}
