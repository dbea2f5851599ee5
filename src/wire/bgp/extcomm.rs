//! BGP Extended Communities (RFC 4360) used by EVPN: route targets and the EVPN/opaque types.
//!
//! Owns: `ExtCommunity` — one 8-octet community decoded infallibly into a typed variant or
//! `Unknown`, re-encoded byte for byte (reserved octets included); `RouteTarget` with its text
//! form; FRR-style display and JSON; small helpers for MAC Mobility and VXLAN encapsulation.
//! Must not: parse the EXTENDED_COMMUNITIES attribute framing (length multiple of 8 — that is
//! `attr`), or act on a community (RFC 7432 §15 mobility rules live in `rib/`).
//!
//! Code points (IANA "BGP Extended Communities" registry):
//!
//! | type/sub | name                         | reference            |
//! |----------|------------------------------|----------------------|
//! | 0x00/0x02| Route Target, 2-octet AS     | RFC 4360 §4          |
//! | 0x01/0x02| Route Target, IPv4 address   | RFC 4360 §4          |
//! | 0x02/0x02| Route Target, 4-octet AS     | RFC 5668 §2          |
//! | 0x03/0x0c| Encapsulation                | RFC 9012 §4.1 (ex RFC 5512 §4.5) |
//! | 0x03/0x0d| Default Gateway              | RFC 7432 §7.8        |
//! | 0x06/0x00| MAC Mobility                 | RFC 7432 §7.7        |
//! | 0x06/0x01| ESI Label                    | RFC 7432 §7.5        |
//! | 0x06/0x02| ES-Import Route Target       | RFC 7432 §7.6        |
//! | 0x06/0x03| EVPN Router's MAC            | RFC 9135 §8.1        |
//! | 0x06/0x06| DF Election                  | RFC 8584 §2.2        |
//! | 0x06/0x08| ARP/ND                       | RFC 9047 §3          |

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::evpn::Label;
use super::rd::{AdminNumber, AdminParseError, parse_admin_number};
use crate::wire::MacAddr;

/// A Route Target (RFC 4360 §4, RFC 5668 §2): which VRFs import a route.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  0x00 (AS2)   | Sub-Type 0x02 |    Global Administrator (AS)  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                 Local Administrator (4 octets)                |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// 0x01 (IPv4): Global = IPv4 address (4), Local = 2 octets
/// 0x02 (AS4):  Global = 4-octet AS (4),   Local = 2 octets
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, arbitrary::Arbitrary)]
pub enum RouteTarget {
    As2 { asn: u16, value: u32 },
    Ipv4 { addr: Ipv4Addr, value: u16 },
    As4 { asn: u32, value: u16 },
}

impl fmt::Display for RouteTarget {
    /// `65001:100`, `192.0.2.1:100`, `4200000000:100` (FRR adds the `RT:` prefix itself; see
    /// `ExtCommunity`'s Display).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RouteTarget::As2 { asn, value } => write!(f, "{asn}:{value}"),
            RouteTarget::Ipv4 { addr, value } => write!(f, "{addr}:{value}"),
            RouteTarget::As4 { asn, value } => write!(f, "{asn}:{value}"),
        }
    }
}

impl FromStr for RouteTarget {
    type Err = AdminParseError;

    /// `ASN:NN` (2-octet AS form when the ASN fits in 16 bits, else 4-octet AS form),
    /// `A.B.C.D:NN`. An optional `RT:` prefix (FRR's display) is accepted.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.strip_prefix("RT:").unwrap_or(s);
        Ok(match parse_admin_number(t, "route target")? {
            AdminNumber::As2(asn, value) => RouteTarget::As2 { asn, value },
            AdminNumber::Ipv4(addr, value) => RouteTarget::Ipv4 { addr, value },
            AdminNumber::As4(asn, value) => RouteTarget::As4 { asn, value },
        })
    }
}

impl serde::Serialize for RouteTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One extended community (8 octets).
///
/// ```text
/// RFC 4360 §2:
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Type high    |  Type low(*)  |                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+          Value                |
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// (*) the Sub-Type for the types used here
/// ```
/// Per-variant layouts are on each variant. Any other type/sub-type pair is `Unknown` and is
/// relayed unchanged (RFC 4360 §4: a transitive community of an unknown type is passed on).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum ExtCommunity {
    RouteTarget(RouteTarget),
    /// 0x03/0x0c, RFC 9012 §4.1: `| 0x03 | 0x0c | Reserved (4) | Tunnel Type (2) |`.
    /// VXLAN is tunnel type 8 (RFC 8365 §5.1.3).
    Encapsulation {
        tunnel_type: u16,
        reserved: u32,
    },
    /// 0x06/0x00, RFC 7432 §7.7: `| 0x06 | 0x00 | Flags | Reserved | Sequence Number (4) |`.
    /// "The low-order bit of the Flags octet is defined as the 'Sticky/static' flag".
    MacMobility {
        flags: u8,
        reserved: u8,
        seq: u32,
    },
    /// 0x06/0x01, RFC 7432 §7.5: `| 0x06 | 0x01 | Flags | Reserved (2) | ESI Label (3) |`.
    /// Flags low-order bit = Single-Active.
    EsiLabel {
        flags: u8,
        reserved: u16,
        label: Label,
    },
    /// 0x06/0x02, RFC 7432 §7.6: `| 0x06 | 0x02 | ES-Import (6 octets, a MAC) |`.
    EsImportRt {
        mac: MacAddr,
    },
    /// 0x06/0x03, RFC 9135 §8.1: `| 0x06 | 0x03 | EVPN Router's MAC (6) |`.
    RoutersMac {
        mac: MacAddr,
    },
    /// 0x06/0x06, RFC 8584 §2.2:
    /// `| 0x06 | 0x06 | RSV(3 bits) DF Alg(5 bits) | Bitmap (2) | Reserved (3) |`.
    /// `reserved_bits` holds the top 3 bits of the third octet, `algorithm` the low 5
    /// (0 = default/modulo, 1 = HRW, 2 = preference per RFC 9785). For the preference
    /// algorithm the last two `reserved` octets carry the DF preference.
    DfElection {
        reserved_bits: u8,
        algorithm: u8,
        capabilities: u16,
        reserved: [u8; 3],
    },
    /// 0x06/0x08, RFC 9047 §3: `| 0x06 | 0x08 | Flags | Reserved=0 (5) |`,
    /// flags bit 7 (0x01) R = Router, bit 6 (0x02) O = Override, bit 4 (0x08) I = Immutable.
    ArpNd {
        flags: u8,
        reserved: [u8; 5],
    },
    /// 0x03/0x0d, RFC 7432 §7.8 (Opaque, sub-type from RFC 5512 registry): the value is
    /// "reserved (set to 0 on send, not processed on receive)" — kept for re-encoding.
    DefaultGateway {
        value: [u8; 6],
    },
    /// Anything else, verbatim (never one of the type/sub-type pairs above).
    Unknown([u8; 8]),
}

impl ExtCommunity {
    pub const TUNNEL_VXLAN: u16 = 8;
    pub const MM_STICKY: u8 = 0x01;
    pub const ESI_LABEL_SINGLE_ACTIVE: u8 = 0x01;
    pub const ND_ROUTER: u8 = 0x01;
    pub const ND_OVERRIDE: u8 = 0x02;
    pub const ND_IMMUTABLE: u8 = 0x08;

    /// Interprets 8 octets; never fails.
    pub fn decode(b: [u8; 8]) -> ExtCommunity {
        let [t, s, a, b2, c, d, e, f] = b;
        let mac = MacAddr([a, b2, c, d, e, f]);
        match (t, s) {
            (0x00, 0x02) => ExtCommunity::RouteTarget(RouteTarget::As2 {
                asn: u16::from_be_bytes([a, b2]),
                value: u32::from_be_bytes([c, d, e, f]),
            }),
            (0x01, 0x02) => ExtCommunity::RouteTarget(RouteTarget::Ipv4 {
                addr: Ipv4Addr::new(a, b2, c, d),
                value: u16::from_be_bytes([e, f]),
            }),
            (0x02, 0x02) => ExtCommunity::RouteTarget(RouteTarget::As4 {
                asn: u32::from_be_bytes([a, b2, c, d]),
                value: u16::from_be_bytes([e, f]),
            }),
            (0x03, 0x0c) => ExtCommunity::Encapsulation {
                reserved: u32::from_be_bytes([a, b2, c, d]),
                tunnel_type: u16::from_be_bytes([e, f]),
            },
            (0x03, 0x0d) => ExtCommunity::DefaultGateway {
                value: [a, b2, c, d, e, f],
            },
            (0x06, 0x00) => ExtCommunity::MacMobility {
                flags: a,
                reserved: b2,
                seq: u32::from_be_bytes([c, d, e, f]),
            },
            (0x06, 0x01) => ExtCommunity::EsiLabel {
                flags: a,
                reserved: u16::from_be_bytes([b2, c]),
                label: Label(u32::from_be_bytes([0, d, e, f])),
            },
            (0x06, 0x02) => ExtCommunity::EsImportRt { mac },
            (0x06, 0x03) => ExtCommunity::RoutersMac { mac },
            (0x06, 0x06) => ExtCommunity::DfElection {
                reserved_bits: a >> 5,
                algorithm: a & 0x1f,
                capabilities: u16::from_be_bytes([b2, c]),
                reserved: [d, e, f],
            },
            (0x06, 0x08) => ExtCommunity::ArpNd {
                flags: a,
                reserved: [b2, c, d, e, f],
            },
            _ => ExtCommunity::Unknown(b),
        }
    }

    /// The 8 wire octets. Fields wider than their wire slot (a label above 24 bits, DF bits
    /// above their 3/5-bit slots) are truncated; `decode` never produces such values.
    pub fn encode(&self) -> [u8; 8] {
        let six = |t: u8, s: u8, v: [u8; 6]| {
            let [a, b, c, d, e, f] = v;
            [t, s, a, b, c, d, e, f]
        };
        let four_two = |t: u8, s: u8, x: [u8; 4], y: u16| {
            let [a, b, c, d] = x;
            let [e, f] = y.to_be_bytes();
            [t, s, a, b, c, d, e, f]
        };
        match *self {
            ExtCommunity::RouteTarget(RouteTarget::As2 { asn, value }) => {
                let [a, b] = asn.to_be_bytes();
                let [c, d, e, f] = value.to_be_bytes();
                [0x00, 0x02, a, b, c, d, e, f]
            }
            ExtCommunity::RouteTarget(RouteTarget::Ipv4 { addr, value }) => {
                four_two(0x01, 0x02, addr.octets(), value)
            }
            ExtCommunity::RouteTarget(RouteTarget::As4 { asn, value }) => {
                four_two(0x02, 0x02, asn.to_be_bytes(), value)
            }
            ExtCommunity::Encapsulation {
                tunnel_type,
                reserved,
            } => four_two(0x03, 0x0c, reserved.to_be_bytes(), tunnel_type),
            ExtCommunity::DefaultGateway { value } => six(0x03, 0x0d, value),
            ExtCommunity::MacMobility {
                flags,
                reserved,
                seq,
            } => {
                let [c, d, e, f] = seq.to_be_bytes();
                [0x06, 0x00, flags, reserved, c, d, e, f]
            }
            ExtCommunity::EsiLabel {
                flags,
                reserved,
                label,
            } => {
                let [b, c] = reserved.to_be_bytes();
                let [_, d, e, f] = label.0.to_be_bytes();
                [0x06, 0x01, flags, b, c, d, e, f]
            }
            ExtCommunity::EsImportRt { mac } => six(0x06, 0x02, mac.0),
            ExtCommunity::RoutersMac { mac } => six(0x06, 0x03, mac.0),
            ExtCommunity::DfElection {
                reserved_bits,
                algorithm,
                capabilities,
                reserved,
            } => {
                let a = (reserved_bits << 5) | (algorithm & 0x1f);
                let [b, c] = capabilities.to_be_bytes();
                let [d, e, f] = reserved;
                [0x06, 0x06, a, b, c, d, e, f]
            }
            ExtCommunity::ArpNd { flags, reserved } => {
                let [b, c, d, e, f] = reserved;
                [0x06, 0x08, flags, b, c, d, e, f]
            }
            ExtCommunity::Unknown(b) => b,
        }
    }

    /// The (type, sub-type) octets.
    pub fn type_subtype(&self) -> (u8, u8) {
        let [t, s, ..] = self.encode();
        (t, s)
    }

    /// RFC 4360 §2: the Transitive bit (0x40 of the type octet) clear means transitive.
    pub fn is_transitive(&self) -> bool {
        self.type_subtype().0 & 0x40 == 0
    }

    /// Encapsulation: VXLAN (RFC 8365 §5.1.3, tunnel type 8).
    pub fn vxlan_encap() -> ExtCommunity {
        ExtCommunity::Encapsulation {
            tunnel_type: Self::TUNNEL_VXLAN,
            reserved: 0,
        }
    }

    /// MAC Mobility with `seq` and the sticky/static flag (RFC 7432 §7.7).
    pub fn mac_mobility_seq(seq: u32, sticky: bool) -> ExtCommunity {
        ExtCommunity::MacMobility {
            flags: if sticky { Self::MM_STICKY } else { 0 },
            reserved: 0,
            seq,
        }
    }

    pub fn route_target(rt: RouteTarget) -> ExtCommunity {
        ExtCommunity::RouteTarget(rt)
    }

    /// True for a MAC Mobility community with the sticky/static flag set.
    pub fn sticky(&self) -> bool {
        matches!(self, ExtCommunity::MacMobility { flags, .. } if flags & Self::MM_STICKY != 0)
    }

    /// For the DF Election community with the preference algorithm: the DF preference, which
    /// FRR (and RFC 9785) carry in the last two reserved octets.
    pub fn df_preference(&self) -> Option<u16> {
        match *self {
            ExtCommunity::DfElection {
                reserved: [_, a, b],
                ..
            } => Some(u16::from_be_bytes([a, b])),
            _ => None,
        }
    }
}

/// The MAC Mobility sequence number and sticky flag carried in `list`, if any.
///
/// RFC 7432 §7.7 allows one MAC Mobility community per route. If a peer sends several, we use
/// the one with the lowest sequence number (the conservative choice: it never lets a malformed
/// route win a mobility comparison it would otherwise lose); sticky is that community's flag.
pub fn mac_mobility(list: &[ExtCommunity]) -> Option<(u32, bool)> {
    list.iter()
        .filter_map(|c| match *c {
            ExtCommunity::MacMobility { seq, .. } => Some((seq, c.sticky())),
            _ => None,
        })
        .min_by_key(|&(seq, _)| seq)
}

impl fmt::Display for ExtCommunity {
    /// FRR's `show bgp` spelling where FRR has one: `RT:65001:100`, `ET:8`, `MM:7`,
    /// `MM:9, sticky MAC`, `ESI-label-Rt:AA:100`, `ES-Import-Rt:MAC`, `Rmac:MAC`,
    /// `DF: (alg: 2, pref: 100)`, `ND:Router Flag`, `Default Gateway`; anything else as
    /// `unknown:TT:SS:HEX`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExtCommunity::RouteTarget(rt) => write!(f, "RT:{rt}"),
            ExtCommunity::Encapsulation { tunnel_type, .. } => write!(f, "ET:{tunnel_type}"),
            ExtCommunity::MacMobility { seq, .. } => {
                write!(f, "MM:{seq}")?;
                if self.sticky() {
                    f.write_str(", sticky MAC")?;
                }
                Ok(())
            }
            ExtCommunity::EsiLabel { flags, label, .. } => {
                let mode = if flags & Self::ESI_LABEL_SINGLE_ACTIVE != 0 {
                    "SA"
                } else {
                    "AA"
                };
                write!(f, "ESI-label-Rt:{mode}:{}", label.vni())
            }
            ExtCommunity::EsImportRt { mac } => write!(f, "ES-Import-Rt:{mac}"),
            ExtCommunity::RoutersMac { mac } => write!(f, "Rmac:{mac}"),
            ExtCommunity::DfElection {
                algorithm,
                capabilities,
                ..
            } => {
                let pref = self.df_preference().unwrap_or(0);
                if capabilities != 0 {
                    write!(
                        f,
                        "DF: (alg: {algorithm}, bmap: {capabilities:#x} pref: {pref})"
                    )
                } else {
                    write!(f, "DF: (alg: {algorithm}, pref: {pref})")
                }
            }
            ExtCommunity::ArpNd { flags, .. } => {
                f.write_str("ND:")?;
                let names = [
                    (Self::ND_ROUTER, "Router Flag"),
                    (Self::ND_OVERRIDE, "Override Flag"),
                    (Self::ND_IMMUTABLE, "Immutable Flag"),
                ];
                let mut first = true;
                for (bit, name) in names {
                    if flags & bit != 0 {
                        if !first {
                            f.write_str(", ")?;
                        }
                        f.write_str(name)?;
                        first = false;
                    }
                }
                if first {
                    write!(f, "flags {flags:#04x}")?;
                }
                Ok(())
            }
            ExtCommunity::DefaultGateway { .. } => f.write_str("Default Gateway"),
            ExtCommunity::Unknown(b) => {
                let [t, s, rest @ ..] = b;
                write!(f, "unknown:{t:02x}:{s:02x}:")?;
                rest.iter().try_for_each(|x| write!(f, "{x:02x}"))
            }
        }
    }
}

impl serde::Serialize for ExtCommunity {
    /// An object with a `type` name and the variant's fields, e.g.
    /// `{"type":"mac-mobility","seq":7,"sticky":false}`, `{"type":"route-target","value":"65001:100"}`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        match *self {
            ExtCommunity::RouteTarget(rt) => {
                m.serialize_entry("type", "route-target")?;
                m.serialize_entry("value", &rt)?;
            }
            ExtCommunity::Encapsulation { tunnel_type, .. } => {
                m.serialize_entry("type", "encapsulation")?;
                m.serialize_entry("tunnel_type", &tunnel_type)?;
                if tunnel_type == Self::TUNNEL_VXLAN {
                    m.serialize_entry("tunnel", "vxlan")?;
                }
            }
            ExtCommunity::MacMobility { seq, .. } => {
                m.serialize_entry("type", "mac-mobility")?;
                m.serialize_entry("seq", &seq)?;
                m.serialize_entry("sticky", &self.sticky())?;
            }
            ExtCommunity::EsiLabel { flags, label, .. } => {
                m.serialize_entry("type", "esi-label")?;
                m.serialize_entry(
                    "single_active",
                    &(flags & Self::ESI_LABEL_SINGLE_ACTIVE != 0),
                )?;
                m.serialize_entry("label", &label)?;
            }
            ExtCommunity::EsImportRt { mac } => {
                m.serialize_entry("type", "es-import-rt")?;
                m.serialize_entry("mac", &mac)?;
            }
            ExtCommunity::RoutersMac { mac } => {
                m.serialize_entry("type", "router-mac")?;
                m.serialize_entry("mac", &mac)?;
            }
            ExtCommunity::DfElection {
                algorithm,
                capabilities,
                ..
            } => {
                m.serialize_entry("type", "df-election")?;
                m.serialize_entry("algorithm", &algorithm)?;
                m.serialize_entry("capabilities", &capabilities)?;
                m.serialize_entry("preference", &self.df_preference())?;
            }
            ExtCommunity::ArpNd { flags, .. } => {
                m.serialize_entry("type", "arp-nd")?;
                m.serialize_entry("router", &(flags & Self::ND_ROUTER != 0))?;
                m.serialize_entry("override", &(flags & Self::ND_OVERRIDE != 0))?;
                m.serialize_entry("immutable", &(flags & Self::ND_IMMUTABLE != 0))?;
            }
            ExtCommunity::DefaultGateway { .. } => {
                m.serialize_entry("type", "default-gateway")?;
            }
            ExtCommunity::Unknown(b) => {
                m.serialize_entry("type", "unknown")?;
                m.serialize_entry("value", &crate::wire::types::Hex(b.as_slice()))?;
            }
        }
        m.end()
    }
}

/// Type/sub-type pairs `decode` knows, used to steer `Arbitrary` towards them.
const KNOWN: [[u8; 2]; 11] = [
    [0x00, 0x02],
    [0x01, 0x02],
    [0x02, 0x02],
    [0x03, 0x0c],
    [0x03, 0x0d],
    [0x06, 0x00],
    [0x06, 0x01],
    [0x06, 0x02],
    [0x06, 0x03],
    [0x06, 0x06],
    [0x06, 0x08],
];

impl<'a> arbitrary::Arbitrary<'a> for ExtCommunity {
    /// Generated as 8 octets passed through `decode`, so every value is canonical; the first two
    /// octets are a known type/sub-type 3 times in 4.
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let [t, s] = if u.ratio(3u8, 4)? {
            *u.choose(&KNOWN)?
        } else {
            u.arbitrary()?
        };
        let [a, b, c, d, e, f]: [u8; 6] = u.arbitrary()?;
        Ok(ExtCommunity::decode([t, s, a, b, c, d, e, f]))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (6, Some(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_mobility_picks_lowest_seq() {
        let list = [
            ExtCommunity::vxlan_encap(),
            ExtCommunity::mac_mobility_seq(9, true),
            ExtCommunity::mac_mobility_seq(7, false),
        ];
        assert_eq!(mac_mobility(&list), Some((7, false)));
        assert_eq!(mac_mobility(&list[..2]), Some((9, true)));
        assert_eq!(mac_mobility(&list[..1]), None);
    }

    #[test]
    fn rt_text() {
        assert_eq!(
            "RT:65001:100".parse(),
            Ok(RouteTarget::As2 {
                asn: 65001,
                value: 100
            })
        );
        assert_eq!(
            "4200000000:100".parse(),
            Ok(RouteTarget::As4 {
                asn: 4_200_000_000,
                value: 100
            })
        );
        assert!("4200000000:100000".parse::<RouteTarget>().is_err());
        let c = ExtCommunity::route_target(RouteTarget::Ipv4 {
            addr: Ipv4Addr::new(192, 0, 2, 1),
            value: 7,
        });
        assert_eq!(c.to_string(), "RT:192.0.2.1:7");
    }

    #[test]
    fn transitive_bit() {
        assert!(ExtCommunity::vxlan_encap().is_transitive());
        assert!(!ExtCommunity::decode([0x43, 0, 0, 0, 0, 0, 0, 0]).is_transitive());
    }
}
