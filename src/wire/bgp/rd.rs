//! Route Distinguisher (RFC 4364 §4.2), the 8-octet value that makes VPN and EVPN NLRI unique.
//!
//! Owns: `RouteDistinguisher` — decode/encode of the 8 octets, the FRR/GoBGP text form
//! (`65001:100`, `192.0.2.1:100`, `4200000000:100`) and parsing of that form.
//! Must not: derive RDs from configuration (that is `evpn/`), or reject unknown RD types —
//! RFC 4364 §4.2 defines types 0–2 only, and a reflector must still relay the others unchanged.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::wire::{Reader, WireResult};

/// A Route Distinguisher.
///
/// ```text
/// RFC 4364 §4.2:
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |          Type (2)             |    Value ...                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
/// |                     ... Value (6 octets)                      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///
/// Type 0: Administrator = 2-octet ASN,   Assigned Number = 4 octets
/// Type 1: Administrator = IPv4 address,  Assigned Number = 2 octets
/// Type 2: Administrator = 4-octet ASN,   Assigned Number = 2 octets
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum RouteDistinguisher {
    /// Type 0.
    As2 { asn: u16, number: u32 },
    /// Type 1.
    Ipv4 { addr: Ipv4Addr, number: u16 },
    /// Type 2.
    As4 { asn: u32, number: u16 },
    /// Any other type (never 0, 1 or 2), kept verbatim so it can be relayed.
    Unknown { rd_type: u16, value: [u8; 6] },
}

impl RouteDistinguisher {
    /// Encoded size in octets.
    pub const LEN: usize = 8;

    /// Interprets 8 octets; infallible (unknown types become `Unknown`).
    #[inline]
    pub fn from_bytes(b: [u8; 8]) -> Self {
        // Whole-word conversions (no byte-by-byte rebuilds): this runs once per EVPN route.
        let w = u64::from_be_bytes(b);
        let rd_type = (w >> 48) as u16;
        match rd_type {
            0 => RouteDistinguisher::As2 {
                asn: (w >> 32) as u16,
                number: w as u32,
            },
            1 => RouteDistinguisher::Ipv4 {
                addr: Ipv4Addr::from((w >> 16) as u32),
                number: w as u16,
            },
            2 => RouteDistinguisher::As4 {
                asn: (w >> 16) as u32,
                number: w as u16,
            },
            _ => {
                let [_, _, value @ ..] = b;
                RouteDistinguisher::Unknown { rd_type, value }
            }
        }
    }

    /// The 8 wire octets.
    pub fn to_bytes(&self) -> [u8; 8] {
        let (t, v): (u16, [u8; 6]) = match *self {
            RouteDistinguisher::As2 { asn, number } => {
                let [a, b] = asn.to_be_bytes();
                let [c, d, e, f] = number.to_be_bytes();
                (0, [a, b, c, d, e, f])
            }
            RouteDistinguisher::Ipv4 { addr, number } => {
                let [a, b, c, d] = addr.octets();
                let [e, f] = number.to_be_bytes();
                (1, [a, b, c, d, e, f])
            }
            RouteDistinguisher::As4 { asn, number } => {
                let [a, b, c, d] = asn.to_be_bytes();
                let [e, f] = number.to_be_bytes();
                (2, [a, b, c, d, e, f])
            }
            RouteDistinguisher::Unknown { rd_type, value } => (rd_type, value),
        };
        let [t0, t1] = t.to_be_bytes();
        let [a, b, c, d, e, f] = v;
        [t0, t1, a, b, c, d, e, f]
    }

    /// The 2-octet Type field.
    pub fn rd_type(&self) -> u16 {
        match *self {
            RouteDistinguisher::As2 { .. } => 0,
            RouteDistinguisher::Ipv4 { .. } => 1,
            RouteDistinguisher::As4 { .. } => 2,
            RouteDistinguisher::Unknown { rd_type, .. } => rd_type,
        }
    }

    /// Reads exactly 8 octets.
    pub fn decode(r: &mut Reader<'_>) -> WireResult<Self> {
        r.array::<8>("route distinguisher").map(Self::from_bytes)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
}

impl fmt::Display for RouteDistinguisher {
    /// `ASN:N`, `A.B.C.D:N`; an unknown type prints as `TYPE:HEX` (e.g. `3:0102030405ff`), a form
    /// FRR and GoBGP do not have (they refuse such RDs) and `FromStr` does not accept.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RouteDistinguisher::As2 { asn, number } => write!(f, "{asn}:{number}"),
            RouteDistinguisher::Ipv4 { addr, number } => write!(f, "{addr}:{number}"),
            RouteDistinguisher::As4 { asn, number } => write!(f, "{asn}:{number}"),
            RouteDistinguisher::Unknown { rd_type, value } => {
                write!(f, "{rd_type}:")?;
                value.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

/// Error parsing an RD or RT from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {what} {text:?}: expected ASN:NN (2-octet ASN, 4-octet number), \
     ASN:NN (4-octet ASN, 2-octet number) or A.B.C.D:NN (2-octet number)"
)]
pub struct AdminParseError {
    pub what: &'static str,
    pub text: String,
}

/// The administrator/assigned-number pair shared by RDs (RFC 4364 §4.2) and RTs (RFC 4360 §4):
/// parse `ADMIN:NUMBER`; the ASN forms choose the 2-octet-ASN layout when the ASN fits in 16
/// bits (so `65001:100` is type 0, as FRR and GoBGP do), else the 4-octet-ASN layout.
pub(crate) enum AdminNumber {
    As2(u16, u32),
    Ipv4(Ipv4Addr, u16),
    As4(u32, u16),
}

pub(crate) fn parse_admin_number(
    s: &str,
    what: &'static str,
) -> Result<AdminNumber, AdminParseError> {
    let err = || AdminParseError {
        what,
        text: s.to_string(),
    };
    let (admin, number) = s.rsplit_once(':').ok_or_else(err)?;
    if admin.contains('.') {
        let addr: Ipv4Addr = admin.parse().map_err(|_| err())?;
        let n: u16 = number.parse().map_err(|_| err())?;
        return Ok(AdminNumber::Ipv4(addr, n));
    }
    let asn: u32 = admin.parse().map_err(|_| err())?;
    let n: u32 = number.parse().map_err(|_| err())?;
    match (u16::try_from(asn), u16::try_from(n)) {
        (Ok(asn16), _) => Ok(AdminNumber::As2(asn16, n)),
        (Err(_), Ok(n16)) => Ok(AdminNumber::As4(asn, n16)),
        (Err(_), Err(_)) => Err(err()),
    }
}

impl FromStr for RouteDistinguisher {
    type Err = AdminParseError;

    /// Accepts the three typed forms. `Display` then `FromStr` is the identity except for an
    /// `As4` whose ASN fits in 16 bits, which parses back as `As2` (the text cannot tell them
    /// apart).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match parse_admin_number(s, "route distinguisher")? {
            AdminNumber::As2(asn, number) => RouteDistinguisher::As2 { asn, number },
            AdminNumber::Ipv4(addr, number) => RouteDistinguisher::Ipv4 { addr, number },
            AdminNumber::As4(asn, number) => RouteDistinguisher::As4 { asn, number },
        })
    }
}

impl serde::Serialize for RouteDistinguisher {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'a> arbitrary::Arbitrary<'a> for RouteDistinguisher {
    /// Only canonical values: `Unknown` never carries types 0–2 (those decode as typed).
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0u8..=3)? {
            0 => RouteDistinguisher::As2 {
                asn: u.arbitrary()?,
                number: u.arbitrary()?,
            },
            1 => RouteDistinguisher::Ipv4 {
                addr: Ipv4Addr::from(u.arbitrary::<u32>()?),
                number: u.arbitrary()?,
            },
            2 => RouteDistinguisher::As4 {
                asn: u.arbitrary()?,
                number: u.arbitrary()?,
            },
            _ => RouteDistinguisher::Unknown {
                rd_type: u.int_in_range(3..=u16::MAX)?,
                value: u.arbitrary()?,
            },
        })
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(9))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Reason, WireError};

    fn rt(bytes: [u8; 8], rd: RouteDistinguisher, text: &str) {
        let mut r = Reader::new(&bytes);
        assert_eq!(RouteDistinguisher::decode(&mut r), Ok(rd));
        assert!(r.is_empty());
        let mut out = Vec::new();
        rd.encode(&mut out);
        assert_eq!(out, bytes);
        assert_eq!(rd.to_string(), text);
    }

    #[test]
    fn typed_forms() {
        // type 0 | ASN 65001 | number 100
        rt(
            [0x00, 0x00, 0xfd, 0xe9, 0x00, 0x00, 0x00, 0x64],
            RouteDistinguisher::As2 {
                asn: 65001,
                number: 100,
            },
            "65001:100",
        );
        // type 1 | 10.255.0.2 | number 2   (FRR auto RD router-id:rd_id)
        rt(
            [0x00, 0x01, 10, 255, 0, 2, 0x00, 0x02],
            RouteDistinguisher::Ipv4 {
                addr: Ipv4Addr::new(10, 255, 0, 2),
                number: 2,
            },
            "10.255.0.2:2",
        );
        // type 2 | ASN 4200000000 = 0xfa56ea00 | number 100
        rt(
            [0x00, 0x02, 0xfa, 0x56, 0xea, 0x00, 0x00, 0x64],
            RouteDistinguisher::As4 {
                asn: 4_200_000_000,
                number: 100,
            },
            "4200000000:100",
        );
        // type 3 (unassigned) kept raw
        rt(
            [0x00, 0x03, 1, 2, 3, 4, 5, 0xff],
            RouteDistinguisher::Unknown {
                rd_type: 3,
                value: [1, 2, 3, 4, 5, 0xff],
            },
            "3:0102030405ff",
        );
    }

    #[test]
    fn parse_text() {
        assert_eq!(
            "65001:100".parse(),
            Ok(RouteDistinguisher::As2 {
                asn: 65001,
                number: 100
            })
        );
        assert_eq!(
            "65001:4294967295".parse(),
            Ok(RouteDistinguisher::As2 {
                asn: 65001,
                number: u32::MAX
            })
        );
        assert_eq!(
            "192.0.2.1:100".parse(),
            Ok(RouteDistinguisher::Ipv4 {
                addr: Ipv4Addr::new(192, 0, 2, 1),
                number: 100
            })
        );
        assert_eq!(
            "4200000000:100".parse(),
            Ok(RouteDistinguisher::As4 {
                asn: 4_200_000_000,
                number: 100
            })
        );
        for bad in [
            "",
            "65001",
            "4200000000:70000",
            "192.0.2.1:70000",
            "1.2.3:4",
            "a:1",
            ":1",
        ] {
            assert!(bad.parse::<RouteDistinguisher>().is_err(), "{bad}");
        }
    }

    #[test]
    fn truncated() {
        let mut r = Reader::with_base(&[0, 0, 1], 20);
        assert_eq!(
            RouteDistinguisher::decode(&mut r),
            Err(WireError {
                offset: 20,
                field: "route distinguisher",
                reason: Reason::Truncated {
                    needed: 8,
                    available: 3
                }
            })
        );
    }

    #[test]
    fn serializes_as_text() {
        let rd = RouteDistinguisher::Ipv4 {
            addr: Ipv4Addr::new(10, 255, 0, 2),
            number: 2,
        };
        assert_eq!(
            serde_json::to_string(&rd).ok().as_deref(),
            Some("\"10.255.0.2:2\"")
        );
    }
}
