//! Encapsulated Control Message (type 8, RFC 9301 §5.8): the ECM header, the inner IPv4 or
//! IPv6 header and UDP header kept as received, and the inner LISP message (one level).
//!
//! Owns: ECM/inner-header layouts; `Ecm::seal`, which recomputes lengths and checksums for
//! messages we build.
//! Must not: route, choose addresses or ports, or accept an ECM inside an ECM.

use std::net::{Ipv4Addr, Ipv6Addr};

use arbitrary::{Arbitrary, Unstructured};
use serde::Serialize;

use super::LispMsg;
use super::fields::{Bits, ser_hex};
use crate::wire::{Reader, WireResult};

/// IP protocol / next header number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// An Encapsulated Control Message (RFC 9301 §5.8).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Type=8 |S|D|E|M|            Reserved                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       IPv4 or IPv6 Header                     |
/// |                  (uses RLOC or EID addresses)                 |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |       Source Port = xxxx      |       Dest Port = yyyy        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           UDP Length          |        UDP Checksum           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                      LISP Control Message                     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// Bits 6 and 7: the §5.8 figure labels them "R", but RFC 9301 §12.6 (Table 9) registers
/// E ("Forward to ETR") and M ("Destined to Map-Server"); lispers.net implements |S|D|E|M|.
///
/// S: "When set to 1, the field following the 'Reserved' field will have the following
/// Authentication Data format and follow the procedures from [RFC9303]". LISP-SEC is not
/// implemented, and without it the inner header cannot be located, so S = 1 is a decode error.
///
/// Lengths and checksums of the inner headers are kept as received (not checked) so that
/// re-encoding is byte-exact; `seal` recomputes them for messages we build. The inner LISP
/// message is everything after the UDP header.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Ecm {
    /// D: DDT-originated, asks for a Map-Referral (RFC 8111).
    pub ddt: bool,
    /// E: forward to ETR.
    pub to_etr: bool,
    /// M: destined to Map-Server.
    pub to_ms: bool,
    /// The 24 reserved bits.
    pub reserved: Bits<24>,
    pub ip: InnerIp,
    pub udp: UdpHeader,
    /// The encapsulated message; never itself an ECM.
    pub msg: Box<LispMsg>,
}

/// The inner IP header of an ECM.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InnerIp {
    V4(Ipv4Header),
    V6(Ipv6Header),
}

/// An IPv4 header (RFC 791), protocol UDP, kept field by field.
///
/// ```text
/// |Version|  IHL  |Type of Service|          Total Length         |
/// |         Identification        |Flags|      Fragment Offset    |
/// |  Time to Live |    Protocol   |         Header Checksum       |
/// |                       Source Address                          |
/// |                    Destination Address                        |
/// |                    Options                    |    Padding    |
/// ```
/// IHL is `5 + options.len() / 4`; `options` holds a multiple of 4 bytes, at most 40.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Ipv4Header {
    pub tos: u8,
    pub total_length: u16,
    pub id: u16,
    /// Flags (3 bits) and Fragment Offset (13 bits) as one word.
    pub flags_fragment: u16,
    pub ttl: u8,
    pub checksum: u16,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    #[serde(serialize_with = "ser_hex")]
    pub options: Vec<u8>,
}

/// An IPv6 header (RFC 8200) whose Next Header is UDP (no extension headers).
///
/// ```text
/// |Version| Traffic Class |           Flow Label                  |
/// |         Payload Length        |  Next Header  |   Hop Limit   |
/// |                     Source Address (128)                      |
/// |                  Destination Address (128)                    |
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Arbitrary)]
pub struct Ipv6Header {
    pub traffic_class: u8,
    pub flow_label: Bits<20>,
    pub payload_length: u16,
    pub hop_limit: u8,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
}

/// A UDP header (RFC 768), kept as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Arbitrary)]
pub struct UdpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    pub length: u16,
    pub checksum: u16,
}

const ECM_S: u32 = 0x0800_0000;
const ECM_D: u32 = 0x0400_0000;
const ECM_E: u32 = 0x0200_0000;
const ECM_M: u32 = 0x0100_0000;

impl Ecm {
    /// `msg` encapsulated as an ITR or a Map-Resolver originates it (RFC 9301 §5.8): no flag
    /// set, inner UDP from `src_port` to the LISP control port (4342), lengths and checksums
    /// computed (`seal`).
    pub fn new(ip: InnerIp, src_port: u16, msg: LispMsg) -> Ecm {
        let mut e = Ecm {
            ddt: false,
            to_etr: false,
            to_ms: false,
            reserved: Bits::new(0),
            ip,
            udp: UdpHeader {
                src_port,
                dst_port: 4342,
                length: 0,
                checksum: 0,
            },
            msg: Box::new(msg),
        };
        e.seal();
        e
    }

    /// Decodes the body after word 0 (`w`, read at `start`).
    pub(crate) fn decode_body(w: u32, start: usize, r: &mut Reader<'_>) -> WireResult<Self> {
        if w & ECM_S != 0 {
            return Err(Reader::bad_value_at(
                start,
                "ECM S bit",
                1,
                "0 (LISP-SEC authentication data, RFC 9303, is not supported)",
            ));
        }
        let ip = InnerIp::decode(r)?;
        let udp = UdpHeader {
            src_port: r.u16("inner UDP source port")?,
            dst_port: r.u16("inner UDP destination port")?,
            length: r.u16("inner UDP length")?,
            checksum: r.u16("inner UDP checksum")?,
        };
        let mut inner = r.sub(r.remaining(), "inner LISP message")?;
        let msg = super::decode_inner(&mut inner)?;
        Ok(Ecm {
            ddt: w & ECM_D != 0,
            to_etr: w & ECM_E != 0,
            to_ms: w & ECM_M != 0,
            reserved: Bits::new(w),
            ip,
            udp,
            msg: Box::new(msg),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let w = (8u32 << 28)
            | if self.ddt { ECM_D } else { 0 }
            | if self.to_etr { ECM_E } else { 0 }
            | if self.to_ms { ECM_M } else { 0 }
            | self.reserved.get();
        out.extend_from_slice(&w.to_be_bytes());
        self.ip.encode(out);
        let u = &self.udp;
        for v in [u.src_port, u.dst_port, u.length, u.checksum] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        self.msg.encode(out);
    }

    /// Sets the inner IP length, UDP length, IPv4 header checksum and UDP checksum from the
    /// current contents (for messages we originate; RFC 9301 §5.8: the inner UDP checksum
    /// must not be zero — a computed 0 is sent as 0xffff per RFC 768).
    pub fn seal(&mut self) {
        let mut payload = Vec::new();
        self.msg.encode(&mut payload);
        let udp_len = u16::try_from(8 + payload.len()).unwrap_or(u16::MAX);
        self.udp.length = udp_len;
        self.udp.checksum = 0;
        let mut sum: u32 = 0;
        match &mut self.ip {
            InnerIp::V4(h) => {
                h.total_length = u16::try_from(20 + h.options.len())
                    .unwrap_or(0)
                    .saturating_add(udp_len);
                h.checksum = 0;
                let mut hdr = Vec::with_capacity(60);
                h.encode(&mut hdr);
                h.checksum = !fold(add_words(0, &hdr));
                sum = add_words(sum, &h.src.octets());
                sum = add_words(sum, &h.dst.octets());
                sum += u32::from(IPPROTO_UDP) + u32::from(udp_len);
            }
            InnerIp::V6(h) => {
                h.payload_length = udp_len;
                sum = add_words(sum, &h.src.octets());
                sum = add_words(sum, &h.dst.octets());
                sum += u32::from(udp_len) + u32::from(IPPROTO_UDP);
            }
        }
        let u = self.udp;
        for v in [u.src_port, u.dst_port, u.length] {
            sum += u32::from(v);
        }
        sum = add_words(sum, &payload);
        let c = !fold(sum);
        self.udp.checksum = if c == 0 { 0xffff } else { c };
    }
}

/// Adds `b` as big-endian 16-bit words (odd tail padded with zero) to `sum`.
fn add_words(mut sum: u32, b: &[u8]) -> u32 {
    let mut chunks = b.chunks_exact(2);
    for c in &mut chunks {
        if let [x, y] = c {
            sum = fold_once(sum + u32::from(u16::from_be_bytes([*x, *y])));
        }
    }
    if let [x] = chunks.remainder() {
        sum = fold_once(sum + (u32::from(*x) << 8));
    }
    sum
}

fn fold_once(s: u32) -> u32 {
    (s & 0xffff) + (s >> 16)
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = fold_once(s);
    }
    u16::try_from(s).unwrap_or(0)
}

impl<'a> Arbitrary<'a> for Ecm {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Ecm {
            ddt: bool::arbitrary(u)?,
            to_etr: bool::arbitrary(u)?,
            to_ms: bool::arbitrary(u)?,
            reserved: Bits::arbitrary(u)?,
            ip: InnerIp::arbitrary(u)?,
            udp: UdpHeader::arbitrary(u)?,
            msg: Box::new(LispMsg::arbitrary_inner(u)?),
        })
    }
}

impl InnerIp {
    fn decode(r: &mut Reader<'_>) -> WireResult<Self> {
        let at = r.offset();
        let b0 = r.u8("inner IP version")?;
        match b0 >> 4 {
            4 => {
                let ihl = b0 & 0x0f;
                if ihl < 5 {
                    return Err(Reader::bad_value_at(
                        at,
                        "inner IPv4 IHL",
                        u64::from(ihl),
                        "at least 5",
                    ));
                }
                let tos = r.u8("inner IPv4 TOS")?;
                let total_length = r.u16("inner IPv4 total length")?;
                let id = r.u16("inner IPv4 identification")?;
                let flags_fragment = r.u16("inner IPv4 flags/fragment offset")?;
                let ttl = r.u8("inner IPv4 TTL")?;
                let proto_at = r.offset();
                let proto = r.u8("inner IPv4 protocol")?;
                if proto != IPPROTO_UDP {
                    return Err(Reader::bad_value_at(
                        proto_at,
                        "inner IPv4 protocol",
                        u64::from(proto),
                        "17 (UDP)",
                    ));
                }
                let checksum = r.u16("inner IPv4 header checksum")?;
                let src = Ipv4Addr::from(r.array::<4>("inner IPv4 source")?);
                let dst = Ipv4Addr::from(r.array::<4>("inner IPv4 destination")?);
                let options = r
                    .bytes(usize::from(ihl - 5) * 4, "inner IPv4 options")?
                    .to_vec();
                Ok(InnerIp::V4(Ipv4Header {
                    tos,
                    total_length,
                    id,
                    flags_fragment,
                    ttl,
                    checksum,
                    src,
                    dst,
                    options,
                }))
            }
            6 => {
                let rest = r.u24("inner IPv6 traffic class/flow label")?;
                let w = (u32::from(b0) << 24) | rest;
                let payload_length = r.u16("inner IPv6 payload length")?;
                let nh_at = r.offset();
                let nh = r.u8("inner IPv6 next header")?;
                if nh != IPPROTO_UDP {
                    return Err(Reader::bad_value_at(
                        nh_at,
                        "inner IPv6 next header",
                        u64::from(nh),
                        "17 (UDP)",
                    ));
                }
                let hop_limit = r.u8("inner IPv6 hop limit")?;
                let src = Ipv6Addr::from(r.array::<16>("inner IPv6 source")?);
                let dst = Ipv6Addr::from(r.array::<16>("inner IPv6 destination")?);
                Ok(InnerIp::V6(Ipv6Header {
                    traffic_class: u8::try_from((w >> 20) & 0xff).unwrap_or(0),
                    flow_label: Bits::new(w),
                    payload_length,
                    hop_limit,
                    src,
                    dst,
                }))
            }
            v => Err(Reader::bad_value_at(
                at,
                "inner IP version",
                u64::from(v),
                "4 or 6",
            )),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            InnerIp::V4(h) => h.encode(out),
            InnerIp::V6(h) => {
                let w = (6u32 << 28) | (u32::from(h.traffic_class) << 20) | h.flow_label.get();
                out.extend_from_slice(&w.to_be_bytes());
                out.extend_from_slice(&h.payload_length.to_be_bytes());
                out.push(IPPROTO_UDP);
                out.push(h.hop_limit);
                out.extend_from_slice(&h.src.octets());
                out.extend_from_slice(&h.dst.octets());
            }
        }
    }
}

impl Ipv4Header {
    fn encode(&self, out: &mut Vec<u8>) {
        // options beyond 40 bytes cannot be expressed by IHL; they saturate and do not round-trip
        let ihl = u8::try_from(5 + self.options.len() / 4)
            .unwrap_or(15)
            .min(15);
        out.push(0x40 | ihl);
        out.push(self.tos);
        out.extend_from_slice(&self.total_length.to_be_bytes());
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.flags_fragment.to_be_bytes());
        out.push(self.ttl);
        out.push(IPPROTO_UDP);
        out.extend_from_slice(&self.checksum.to_be_bytes());
        out.extend_from_slice(&self.src.octets());
        out.extend_from_slice(&self.dst.octets());
        out.extend_from_slice(&self.options);
    }
}

impl<'a> Arbitrary<'a> for InnerIp {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(if bool::arbitrary(u)? {
            InnerIp::V4(Ipv4Header::arbitrary(u)?)
        } else {
            InnerIp::V6(Ipv6Header::arbitrary(u)?)
        })
    }
}

impl<'a> Arbitrary<'a> for Ipv4Header {
    /// Options are a multiple of 4 bytes, at most 40 (what IHL can say).
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let words = u.int_in_range(0..=10usize)?.min(u.len() / 4);
        let options = u.bytes(words * 4)?.to_vec();
        Ok(Ipv4Header {
            tos: u8::arbitrary(u)?,
            total_length: u16::arbitrary(u)?,
            id: u16::arbitrary(u)?,
            flags_fragment: u16::arbitrary(u)?,
            ttl: u8::arbitrary(u)?,
            checksum: u16::arbitrary(u)?,
            src: Ipv4Addr::arbitrary(u)?,
            dst: Ipv4Addr::arbitrary(u)?,
            options,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071 §3 example words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement sum)
        assert_eq!(
            fold(add_words(
                0,
                &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]
            )),
            0xddf2
        );
    }
}
