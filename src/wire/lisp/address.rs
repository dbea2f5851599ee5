//! LISP addresses: AFI-encoded addresses (RFC 9301 §5.1) and the LISP Canonical Address Format
//! (LCAF, RFC 8060), with Instance-ID (type 2) and AFI-List (type 1) typed and every other LCAF
//! type kept raw.
//!
//! Owns: `LispAddr` and its byte form, LCAF length handling and nesting limit.
//! Must not: interpret addresses (prefix matching, IID ↔ VNI mapping belong to `lisp/`).

use std::net::{Ipv4Addr, Ipv6Addr};

use arbitrary::{Arbitrary, Unstructured};
use serde::Serialize;

use super::fields::{arb_bytes, arb_vec, ser_hex};
use crate::wire::{MacAddr, Reader, WireResult};

/// AFI 0: no address follows (RFC 9301 §5.2 uses it for an absent Source-EID).
pub const AFI_NONE: u16 = 0;
pub const AFI_IPV4: u16 = 1;
pub const AFI_IPV6: u16 = 2;
/// AFI 6, IEEE 802 ("802 (includes all 802 media plus Ethernet)"): RFC 8060 §4.10.2, lispers.net.
pub const AFI_IEEE802: u16 = 6;
/// AFI 16387, LCAF (RFC 8060 §3).
pub const AFI_LCAF: u16 = 16387;
/// AFI 16389, IANA "48-bit MAC" (RFC 7042): what VPP sends for MAC EIDs.
pub const AFI_MAC48: u16 = 16389;

/// LCAF type 1, AFI List (RFC 8060 §4.10).
pub const LCAF_AFI_LIST: u8 = 1;
/// LCAF type 2, Instance ID (RFC 8060 §4.1).
pub const LCAF_INSTANCE_ID: u8 = 2;

/// How deep LCAFs may nest (an IID holding an AFI list holding an LCAF ...). Real encodings use
/// two or three levels; the limit keeps hostile input from recursing without bound.
pub const MAX_LCAF_DEPTH: usize = 8;

/// Which of the two MAC AFIs carried a MAC address; remembered so that a decoded address
/// re-encodes to the same bytes.
///
/// lisp-anchors.md §1.2: RFC 8060 §4.10.2 and lispers.net use AFI 6, VPP uses 16389. RFC 9301
/// §5.1 says an unrecognized AFI must be dropped, so we accept both and send 6 by default.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord, Serialize, Arbitrary,
)]
#[serde(rename_all = "kebab-case")]
pub enum MacAfi {
    /// AFI 6.
    #[default]
    Ieee802,
    /// AFI 16389.
    Mac48,
}

impl MacAfi {
    pub const fn afi(self) -> u16 {
        match self {
            MacAfi::Ieee802 => AFI_IEEE802,
            MacAfi::Mac48 => AFI_MAC48,
        }
    }
}

/// An AFI-encoded address as it appears in EID, RLOC, Source-EID and ITR-RLOC fields.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |             AFI               |   Address ... (length by AFI)
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// RFC 9301 §5.1 (paraphrased, lisp-anchors.md §1.1): a control message with an unrecognized
/// AFI MUST be dropped and logged — decoding fails on any AFI other than 0, 1, 2, 6, 16387 and
/// 16389.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LispAddr {
    /// AFI 0.
    None,
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// AFI 6 or 16389 followed by 6 bytes.
    Mac {
        afi: MacAfi,
        mac: MacAddr,
    },
    /// AFI 16387.
    Lcaf(Lcaf),
}

/// An LCAF-encoded address (RFC 8060 §3).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           AFI = 16387         |     Rsvd1     |     Flags     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |    Type       |     Rsvd2     |            Length             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 8060 §3: "Length: This 16-bit field is in bytes and starts counting after the Length
/// field". The payload is decoded from a reader of exactly that many bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Lcaf {
    pub rsvd1: u8,
    pub flags: u8,
    pub body: LcafBody,
}

/// The type-specific part of an LCAF (Type, Rsvd2 and payload).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "lcaf", rename_all = "kebab-case")]
pub enum LcafBody {
    /// Type 2 (RFC 8060 §4.1).
    ///
    /// ```text
    /// |           AFI = 16387         |     Rsvd1     |     Flags     |
    /// |   Type = 2    | IID mask-len  |             Length            |
    /// |                         Instance ID                           |
    /// |              AFI = x          |         Address  ...          |
    /// ```
    /// RFC 8060 §4.1 (paraphrased): the Rsvd2 byte carries the IID mask-len, and with AFI 0
    /// the LCAF names a range of Instance IDs. OOR insists on mask-len 32
    /// (lab/oor/README.md gotcha 2), so it is kept exactly.
    InstanceId {
        mask_len: u8,
        iid: u32,
        addr: Box<LispAddr>,
    },
    /// Type 1 (RFC 8060 §4.10): a sequence of AFI-encoded addresses filling the payload.
    AfiList { rsvd2: u8, addrs: Vec<LispAddr> },
    /// Any other type, kept raw and re-encoded exactly. `lcaf_type` must not be 1 or 2 (those
    /// decode to the typed variants).
    Unknown {
        lcaf_type: u8,
        rsvd2: u8,
        #[serde(serialize_with = "ser_hex")]
        payload: Vec<u8>,
    },
}

impl LcafBody {
    pub fn lcaf_type(&self) -> u8 {
        match self {
            LcafBody::InstanceId { .. } => LCAF_INSTANCE_ID,
            LcafBody::AfiList { .. } => LCAF_AFI_LIST,
            LcafBody::Unknown { lcaf_type, .. } => *lcaf_type,
        }
    }
}

impl LispAddr {
    /// An Instance-ID LCAF around `addr` with zero Rsvd1/Flags.
    pub fn with_iid(iid: u32, mask_len: u8, addr: LispAddr) -> LispAddr {
        LispAddr::Lcaf(Lcaf {
            rsvd1: 0,
            flags: 0,
            body: LcafBody::InstanceId {
                mask_len,
                iid,
                addr: Box::new(addr),
            },
        })
    }

    /// The AFI this address is encoded with.
    pub fn afi(&self) -> u16 {
        match self {
            LispAddr::None => AFI_NONE,
            LispAddr::Ipv4(_) => AFI_IPV4,
            LispAddr::Ipv6(_) => AFI_IPV6,
            LispAddr::Mac { afi, .. } => afi.afi(),
            LispAddr::Lcaf(_) => AFI_LCAF,
        }
    }

    /// `(iid, inner address)` if this is an Instance-ID LCAF.
    pub fn iid(&self) -> Option<(u32, &LispAddr)> {
        match self {
            LispAddr::Lcaf(Lcaf {
                body: LcafBody::InstanceId { iid, addr, .. },
                ..
            }) => Some((*iid, addr)),
            _ => None,
        }
    }

    /// Decodes one address (AFI + body) from `r`.
    pub fn decode(r: &mut Reader<'_>) -> WireResult<Self> {
        Self::decode_depth(r, 0)
    }

    fn decode_depth(r: &mut Reader<'_>, depth: usize) -> WireResult<Self> {
        let afi_at = r.offset();
        let afi = r.u16("AFI")?;
        Ok(match afi {
            AFI_NONE => LispAddr::None,
            AFI_IPV4 => LispAddr::Ipv4(Ipv4Addr::from(r.array::<4>("IPv4 address")?)),
            AFI_IPV6 => LispAddr::Ipv6(Ipv6Addr::from(r.array::<16>("IPv6 address")?)),
            AFI_IEEE802 => LispAddr::Mac {
                afi: MacAfi::Ieee802,
                mac: MacAddr(r.array("MAC address")?),
            },
            AFI_MAC48 => LispAddr::Mac {
                afi: MacAfi::Mac48,
                mac: MacAddr(r.array("MAC address")?),
            },
            AFI_LCAF => {
                if depth >= MAX_LCAF_DEPTH {
                    return Err(Reader::bad_value_at(
                        afi_at,
                        "LCAF nesting",
                        u64::try_from(depth).unwrap_or(u64::MAX),
                        "at most 8 nested LCAFs",
                    ));
                }
                LispAddr::Lcaf(Lcaf::decode_after_afi(r, depth)?)
            }
            other => {
                // RFC 9301 §5.1: a message with an unrecognized AFI MUST be dropped
                return Err(Reader::bad_value_at(
                    afi_at,
                    "AFI",
                    u64::from(other),
                    "0, 1, 2, 6, 16387 or 16389 (RFC 9301 §5.1: unknown AFI, drop)",
                ));
            }
        })
    }

    /// Appends the encoded address to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.afi().to_be_bytes());
        match self {
            LispAddr::None => {}
            LispAddr::Ipv4(a) => out.extend_from_slice(&a.octets()),
            LispAddr::Ipv6(a) => out.extend_from_slice(&a.octets()),
            LispAddr::Mac { mac, .. } => out.extend_from_slice(&mac.0),
            LispAddr::Lcaf(l) => l.encode_after_afi(out),
        }
    }

    /// Number of bytes `encode` appends.
    pub fn encoded_len(&self) -> usize {
        2 + match self {
            LispAddr::None => 0,
            LispAddr::Ipv4(_) => 4,
            LispAddr::Ipv6(_) => 16,
            LispAddr::Mac { .. } => 6,
            LispAddr::Lcaf(l) => 6 + l.payload_len(),
        }
    }

    /// An arbitrary address whose LCAFs nest at most `MAX_ARB_DEPTH - depth` more levels.
    fn arbitrary_depth(u: &mut Unstructured<'_>, depth: usize) -> arbitrary::Result<Self> {
        let kinds = if depth >= MAX_ARB_DEPTH { 4 } else { 5 };
        Ok(match u.choose_index(kinds)? {
            0 => LispAddr::None,
            1 => LispAddr::Ipv4(Ipv4Addr::arbitrary(u)?),
            2 => LispAddr::Ipv6(Ipv6Addr::arbitrary(u)?),
            3 => LispAddr::Mac {
                afi: MacAfi::arbitrary(u)?,
                mac: MacAddr::arbitrary(u)?,
            },
            _ => LispAddr::Lcaf(Lcaf::arbitrary_depth(u, depth + 1)?),
        })
    }
}

/// Nesting generated by `Arbitrary` (well inside `MAX_LCAF_DEPTH`).
const MAX_ARB_DEPTH: usize = 3;

impl<'a> Arbitrary<'a> for LispAddr {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Self::arbitrary_depth(u, 0)
    }
}

impl Lcaf {
    /// Decodes Rsvd1 .. payload; the AFI (16387) has been read. `depth` counts enclosing LCAFs.
    fn decode_after_afi(r: &mut Reader<'_>, depth: usize) -> WireResult<Self> {
        let rsvd1 = r.u8("LCAF Rsvd1")?;
        let flags = r.u8("LCAF flags")?;
        let lcaf_type = r.u8("LCAF type")?;
        let rsvd2 = r.u8("LCAF Rsvd2")?;
        let len = r.u16("LCAF length")?;
        let mut p = r.sub(usize::from(len), "LCAF payload")?;
        let body = match lcaf_type {
            LCAF_INSTANCE_ID => {
                let iid = p.u32("Instance ID")?;
                let addr = LispAddr::decode_depth(&mut p, depth + 1)?;
                p.finish("Instance-ID LCAF")?;
                LcafBody::InstanceId {
                    mask_len: rsvd2,
                    iid,
                    addr: Box::new(addr),
                }
            }
            LCAF_AFI_LIST => {
                let mut addrs = Vec::new();
                while !p.is_empty() {
                    addrs.push(LispAddr::decode_depth(&mut p, depth + 1)?);
                }
                LcafBody::AfiList { rsvd2, addrs }
            }
            _ => LcafBody::Unknown {
                lcaf_type,
                rsvd2,
                payload: p.rest().to_vec(),
            },
        };
        Ok(Lcaf { rsvd1, flags, body })
    }

    fn payload_len(&self) -> usize {
        match &self.body {
            LcafBody::InstanceId { addr, .. } => 4 + addr.encoded_len(),
            LcafBody::AfiList { addrs, .. } => addrs.iter().map(LispAddr::encoded_len).sum(),
            LcafBody::Unknown { payload, .. } => payload.len(),
        }
    }

    fn encode_after_afi(&self, out: &mut Vec<u8>) {
        let rsvd2 = match &self.body {
            LcafBody::InstanceId { mask_len, .. } => *mask_len,
            LcafBody::AfiList { rsvd2, .. } | LcafBody::Unknown { rsvd2, .. } => *rsvd2,
        };
        // A payload over 65535 bytes cannot be expressed; it saturates and will not decode back.
        let len = u16::try_from(self.payload_len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&[self.rsvd1, self.flags, self.body.lcaf_type(), rsvd2]);
        out.extend_from_slice(&len.to_be_bytes());
        match &self.body {
            LcafBody::InstanceId { iid, addr, .. } => {
                out.extend_from_slice(&iid.to_be_bytes());
                addr.encode(out);
            }
            LcafBody::AfiList { addrs, .. } => addrs.iter().for_each(|a| a.encode(out)),
            LcafBody::Unknown { payload, .. } => out.extend_from_slice(payload),
        }
    }

    fn arbitrary_depth(u: &mut Unstructured<'_>, depth: usize) -> arbitrary::Result<Self> {
        Ok(Lcaf {
            rsvd1: u8::arbitrary(u)?,
            flags: u8::arbitrary(u)?,
            body: LcafBody::arbitrary_depth(u, depth)?,
        })
    }
}

impl LcafBody {
    fn arbitrary_depth(u: &mut Unstructured<'_>, depth: usize) -> arbitrary::Result<Self> {
        Ok(match u.choose_index(3)? {
            0 => LcafBody::InstanceId {
                mask_len: u8::arbitrary(u)?,
                iid: u32::arbitrary(u)?,
                addr: Box::new(LispAddr::arbitrary_depth(u, depth)?),
            },
            1 => LcafBody::AfiList {
                rsvd2: u8::arbitrary(u)?,
                addrs: arb_vec(u, 0, 3, |u| LispAddr::arbitrary_depth(u, depth))?,
            },
            _ => {
                let t = u8::arbitrary(u)?;
                // types 1 and 2 decode to the typed variants, never to `Unknown`
                let lcaf_type = if t == LCAF_AFI_LIST || t == LCAF_INSTANCE_ID {
                    t + 10
                } else {
                    t
                };
                LcafBody::Unknown {
                    lcaf_type,
                    rsvd2: u8::arbitrary(u)?,
                    payload: arb_bytes(u, 24)?,
                }
            }
        })
    }
}

impl<'a> Arbitrary<'a> for LcafBody {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Self::arbitrary_depth(u, 1)
    }
}

impl<'a> Arbitrary<'a> for Lcaf {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Self::arbitrary_depth(u, 1)
    }
}

impl From<std::net::IpAddr> for LispAddr {
    fn from(ip: std::net::IpAddr) -> LispAddr {
        match ip {
            std::net::IpAddr::V4(a) => LispAddr::Ipv4(a),
            std::net::IpAddr::V6(a) => LispAddr::Ipv6(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Reason, WireError};

    fn roundtrip(hex: &[u8], want: &LispAddr) {
        let mut r = Reader::new(hex);
        assert_eq!(LispAddr::decode(&mut r).as_ref(), Ok(want));
        assert!(r.is_empty());
        let mut out = Vec::new();
        want.encode(&mut out);
        assert_eq!(out, hex);
        assert_eq!(want.encoded_len(), hex.len());
    }

    #[test]
    fn iid_lcaf_oor() {
        // OOR's EID 10.1.7.0 in IID 107, IID mask-len 32 (lab/oor/README.md step 3)
        let b = [
            0x40, 0x03, 0, 0, 0x02, 0x20, 0x00, 0x0a, 0, 0, 0, 0x6b, 0x00, 0x01, 10, 1, 7, 0,
        ];
        roundtrip(
            &b,
            &LispAddr::with_iid(107, 32, LispAddr::Ipv4(Ipv4Addr::new(10, 1, 7, 0))),
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        // AFI-List LCAFs nested MAX_LCAF_DEPTH + 1 deep around AFI 0, with correct lengths
        let mut b = vec![0u8, 0];
        for _ in 0..=MAX_LCAF_DEPTH {
            let len = u16::try_from(b.len()).unwrap_or(0).to_be_bytes();
            let mut outer = vec![0x40, 0x03, 0, 0, 0x01, 0, len[0], len[1]];
            outer.extend_from_slice(&b);
            b = outer;
        }
        assert_eq!(
            LispAddr::decode(&mut Reader::new(&b)).err(),
            Some(WireError {
                offset: 8 * MAX_LCAF_DEPTH,
                field: "LCAF nesting",
                reason: Reason::BadValue {
                    value: 8,
                    expected: "at most 8 nested LCAFs"
                },
            })
        );
    }
}
