//! NLRI encodings: IP prefixes (RFC 4271 §4.3), ADD-PATH path identifiers (RFC 7911 §3) and the
//! per-family NLRI lists carried in MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760 §3–4).
//!
//! Owns: `IpPrefix`, `PathId`-carrying entries, `NlriList` per family.
//! Must not: interpret routes (that is the RIB's job) or decide RFC 7606 actions.
//!
//! ```text
//! RFC 4271 §4.3 / RFC 7911 §3:
//! +--------------------------------+
//! | Path Identifier (4 octets)     |   only when ADD-PATH receive is negotiated for the family
//! +--------------------------------+
//! | Length (1 octet, in bits)      |
//! +--------------------------------+
//! | Prefix (variable, ceil(len/8)) |
//! +--------------------------------+
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::afi::Family;
use super::evpn::{EvpnRoute, MacIpRoute};
use crate::wire::reader::{Reader, WireResult};

/// An IP prefix exactly as carried on the wire. Bits beyond `len` in the last octet are kept
/// as received so that re-encoding gives back the same bytes; `network()` masks them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct IpPrefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl IpPrefix {
    /// The prefix with host bits cleared.
    pub fn network(&self) -> IpPrefix {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.len.min(32)))
                    .unwrap_or(0);
                IpPrefix {
                    addr: IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask)),
                    len: self.len,
                }
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len.min(128)))
                    .unwrap_or(0);
                IpPrefix {
                    addr: IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask)),
                    len: self.len,
                }
            }
        }
    }

    /// Decode one prefix of the given address width (4 or 16 octets).
    fn decode(r: &mut Reader<'_>, v6: bool) -> WireResult<Self> {
        let start = r.offset();
        let len = r.u8("prefix length")?;
        let max = if v6 { 128 } else { 32 };
        if len > max {
            // RFC 4271 §6.3: "the NLRI field ... is syntactically incorrect" (subcode 10).
            return Err(Reader::bad_value_at(
                start,
                "prefix length",
                u64::from(len),
                if v6 {
                    "at most 128 bits"
                } else {
                    "at most 32 bits"
                },
            ));
        }
        let bytes = r.bytes(usize::from(len).div_ceil(8), "prefix")?;
        let addr = if v6 {
            let mut o = [0u8; 16];
            for (d, s) in o.iter_mut().zip(bytes) {
                *d = *s;
            }
            IpAddr::V6(Ipv6Addr::from(o))
        } else {
            let mut o = [0u8; 4];
            for (d, s) in o.iter_mut().zip(bytes) {
                *d = *s;
            }
            IpAddr::V4(Ipv4Addr::from(o))
        };
        Ok(IpPrefix { addr, len })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let n = usize::from(self.len).div_ceil(8);
        out.push(self.len);
        match self.addr {
            IpAddr::V4(a) => out.extend(a.octets().iter().take(n)),
            IpAddr::V6(a) => out.extend(a.octets().iter().take(n)),
        }
    }
}

impl std::fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl serde::Serialize for IpPrefix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'a> arbitrary::Arbitrary<'a> for IpPrefix {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        if u.arbitrary()? {
            Self::arbitrary_v6(u)
        } else {
            Self::arbitrary_v4(u)
        }
    }
}

impl IpPrefix {
    /// A canonical IPv4 prefix: bytes past ceil(len/8) are zero (they are not on the wire).
    pub fn arbitrary_v4(u: &mut arbitrary::Unstructured<'_>) -> arbitrary::Result<Self> {
        let len = u.int_in_range(0..=32u8)?;
        let raw: u32 = u.arbitrary()?;
        let keep = usize::from(len).div_ceil(8) as u32 * 8;
        let mask = u32::MAX.checked_shl(32 - keep).unwrap_or(0);
        Ok(IpPrefix {
            addr: IpAddr::V4(Ipv4Addr::from(raw & mask)),
            len,
        })
    }

    pub fn arbitrary_v6(u: &mut arbitrary::Unstructured<'_>) -> arbitrary::Result<Self> {
        let len = u.int_in_range(0..=128u8)?;
        let raw: u128 = u.arbitrary()?;
        let keep = usize::from(len).div_ceil(8) as u32 * 8;
        let mask = u128::MAX.checked_shl(128 - keep).unwrap_or(0);
        Ok(IpPrefix {
            addr: IpAddr::V6(Ipv6Addr::from(raw & mask)),
            len,
        })
    }
}

/// One IP route: an optional ADD-PATH identifier and the prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize)]
pub struct PrefixNlri {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_id: Option<u32>,
    pub prefix: IpPrefix,
}

/// One EVPN route with its optional ADD-PATH identifier.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct EvpnNlri {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_id: Option<u32>,
    pub route: EvpnRoute,
}

/// The NLRI of one MP_REACH/MP_UNREACH attribute, typed for the families we speak.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NlriList {
    Ipv4(Vec<PrefixNlri>),
    Ipv6(Vec<PrefixNlri>),
    Evpn(Vec<EvpnNlri>),
    /// A family we do not decode: kept verbatim and relayed.
    Raw(#[serde(serialize_with = "crate::wire::bgp::attr::ser_hex")] Vec<u8>),
}

impl NlriList {
    pub fn is_empty(&self) -> bool {
        match self {
            NlriList::Ipv4(v) | NlriList::Ipv6(v) => v.is_empty(),
            NlriList::Evpn(v) => v.is_empty(),
            NlriList::Raw(v) => v.is_empty(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            NlriList::Ipv4(v) | NlriList::Ipv6(v) => v.len(),
            NlriList::Evpn(v) => v.len(),
            NlriList::Raw(_) => 0,
        }
    }

    /// Decode all of `r` as NLRI of `family`; `add_path` says whether path IDs precede entries.
    pub fn decode(r: &mut Reader<'_>, family: Family, add_path: bool) -> WireResult<Self> {
        match family {
            Family::IPV4_UNICAST => Ok(NlriList::Ipv4(decode_prefixes(r, false, add_path)?)),
            Family::IPV6_UNICAST => Ok(NlriList::Ipv6(decode_prefixes(r, true, add_path)?)),
            Family::L2VPN_EVPN => {
                let mut v = Vec::with_capacity(r.remaining() / 36);
                while !r.is_empty() {
                    let path_id = if add_path {
                        Some(r.u32("path identifier")?)
                    } else {
                        None
                    };
                    // Hot path: a regular MAC/IP route (the bulk of any EVPN table) straight
                    // from the slice; everything else, and every error, through the general
                    // decoder, which reports the exact offset and field.
                    if let [EvpnRoute::MAC_IP, len, tail @ ..] = r.peek_rest()
                        && let Some(value) = tail.get(..usize::from(*len))
                    {
                        // decode straight into the Vec slot (no 80-octet move per route)
                        v.push(EvpnNlri {
                            path_id,
                            route: EvpnRoute::MacIp(MacIpRoute::EMPTY),
                        });
                        if let Some(EvpnNlri {
                            route: EvpnRoute::MacIp(slot),
                            ..
                        }) = v.last_mut()
                            && MacIpRoute::decode_regular_into(value, slot)
                        {
                            r.bytes(2 + value.len(), "EVPN route")?;
                            continue;
                        }
                        v.pop();
                    }
                    v.push(EvpnNlri {
                        path_id,
                        route: EvpnRoute::decode(r)?,
                    });
                }
                Ok(NlriList::Evpn(v))
            }
            _ => Ok(NlriList::Raw(r.rest().to_vec())),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            NlriList::Ipv4(v) | NlriList::Ipv6(v) => encode_prefixes(v, out),
            NlriList::Evpn(v) => {
                for n in v {
                    if let Some(id) = n.path_id {
                        out.extend(id.to_be_bytes());
                    }
                    n.route.encode(out);
                }
            }
            NlriList::Raw(b) => out.extend(b),
        }
    }
}

/// Decode a run of prefixes filling all of `r` (withdrawn routes, NLRI field, MP NLRI).
pub fn decode_prefixes(
    r: &mut Reader<'_>,
    v6: bool,
    add_path: bool,
) -> WireResult<Vec<PrefixNlri>> {
    let mut v = Vec::with_capacity(r.remaining() / 4);
    while !r.is_empty() {
        let path_id = if add_path {
            Some(r.u32("path identifier")?)
        } else {
            None
        };
        v.push(PrefixNlri {
            path_id,
            prefix: IpPrefix::decode(r, v6)?,
        });
    }
    Ok(v)
}

pub fn encode_prefixes(v: &[PrefixNlri], out: &mut Vec<u8>) {
    for p in v {
        if let Some(id) = p.path_id {
            out.extend(id.to_be_bytes());
        }
        p.prefix.encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_keeps_host_bits_and_masks_on_request() {
        // 10.1.2.0/23 sent with a stray host bit in the last octet: 0x03 instead of 0x02.
        let bytes = [23u8, 10, 1, 3];
        let mut r = Reader::new(&bytes);
        let v = decode_prefixes(&mut r, false, false).unwrap();
        assert_eq!(v[0].prefix.to_string(), "10.1.3.0/23");
        assert_eq!(v[0].prefix.network().to_string(), "10.1.2.0/23");
        let mut out = Vec::new();
        encode_prefixes(&v, &mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn prefix_length_over_32_is_an_error_at_its_offset() {
        let bytes = [24u8, 10, 1, 2, 33, 1, 2, 3, 4, 5];
        let e = decode_prefixes(&mut Reader::new(&bytes), false, false).unwrap_err();
        assert_eq!((e.offset, e.field), (4, "prefix length"));
    }

    #[test]
    fn add_path_ids() {
        let bytes = [0u8, 0, 0, 7, 32, 192, 0, 2, 1];
        let v = decode_prefixes(&mut Reader::new(&bytes), false, true).unwrap();
        assert_eq!(v[0].path_id, Some(7));
        assert_eq!(v[0].prefix.to_string(), "192.0.2.1/32");
    }
}
