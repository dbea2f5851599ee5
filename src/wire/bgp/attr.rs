//! BGP path attributes (RFC 4271 §4.3, §5) and the ones EVPN needs from other RFCs.
//!
//! Owns: the attribute header (flags, type, 1- or 2-octet length), typed values for ORIGIN,
//! AS_PATH/AS4_PATH (RFC 6793), NEXT_HOP, MED, LOCAL_PREF, ATOMIC_AGGREGATE, AGGREGATOR,
//! AS4_AGGREGATOR, COMMUNITIES (RFC 1997), ORIGINATOR_ID and CLUSTER_LIST (RFC 4456),
//! MP_REACH_NLRI/MP_UNREACH_NLRI (RFC 4760), EXTENDED_COMMUNITIES (RFC 4360), PMSI_TUNNEL
//! (RFC 6514 §5), LARGE_COMMUNITY (RFC 8092); unknown attributes kept raw with their flags.
//! Must not: decide what a malformed attribute means for the UPDATE — the decoder only records
//! `Malformed { raw, error }` and `validate` applies RFC 7606.
//!
//! ```text
//! RFC 4271 §4.3 path attribute:
//!  0                   1
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |O|T|P|E| unused|  Attr. Type   |  Attr. Length (1 octet, or 2 when E is set) | value ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::afi::{Afi, Family, Safi};
use super::evpn::Label;
use super::extcomm::ExtCommunity;
use super::message::BgpCtx;
use super::nlri::NlriList;
use crate::wire::reader::{Reader, WireError, WireResult};

/// Attribute flag bits (RFC 4271 §4.3).
pub mod flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Attribute type codes (IANA "BGP Path Attributes").
pub mod code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MED: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const PMSI_TUNNEL: u8 = 22;
    pub const LARGE_COMMUNITY: u8 = 32;
}

/// Attribute name for logs and JSON.
pub fn name(type_code: u8) -> &'static str {
    match type_code {
        code::ORIGIN => "ORIGIN",
        code::AS_PATH => "AS_PATH",
        code::NEXT_HOP => "NEXT_HOP",
        code::MED => "MULTI_EXIT_DISC",
        code::LOCAL_PREF => "LOCAL_PREF",
        code::ATOMIC_AGGREGATE => "ATOMIC_AGGREGATE",
        code::AGGREGATOR => "AGGREGATOR",
        code::COMMUNITIES => "COMMUNITIES",
        code::ORIGINATOR_ID => "ORIGINATOR_ID",
        code::CLUSTER_LIST => "CLUSTER_LIST",
        code::MP_REACH_NLRI => "MP_REACH_NLRI",
        code::MP_UNREACH_NLRI => "MP_UNREACH_NLRI",
        code::EXTENDED_COMMUNITIES => "EXTENDED_COMMUNITIES",
        code::AS4_PATH => "AS4_PATH",
        code::AS4_AGGREGATOR => "AS4_AGGREGATOR",
        code::PMSI_TUNNEL => "PMSI_TUNNEL",
        code::LARGE_COMMUNITY => "LARGE_COMMUNITY",
        _ => "UNKNOWN",
    }
}

/// The flags a correct sender uses for a recognized attribute (Optional/Transitive only), or
/// `None` for attributes we do not recognize. RFC 7606 §3(c) compares against these.
pub fn expected_flags(type_code: u8) -> Option<u8> {
    use flags::*;
    match type_code {
        // well-known (mandatory or discretionary): O=0, T=1
        code::ORIGIN
        | code::AS_PATH
        | code::NEXT_HOP
        | code::LOCAL_PREF
        | code::ATOMIC_AGGREGATE => Some(TRANSITIVE),
        // optional transitive
        code::AGGREGATOR
        | code::COMMUNITIES
        | code::EXTENDED_COMMUNITIES
        | code::AS4_PATH
        | code::AS4_AGGREGATOR
        | code::PMSI_TUNNEL
        | code::LARGE_COMMUNITY => Some(OPTIONAL | TRANSITIVE),
        // optional non-transitive
        code::MED
        | code::ORIGINATOR_ID
        | code::CLUSTER_LIST
        | code::MP_REACH_NLRI
        | code::MP_UNREACH_NLRI => Some(OPTIONAL),
        _ => None,
    }
}

pub(crate) use crate::wire::types::ser_hex;

/// One path attribute. `flags` are kept as received (including Extended Length and Partial)
/// so the attribute re-encodes to the same bytes and can be relayed with Partial set.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PathAttr {
    pub flags: u8,
    pub type_code: u8,
    pub value: AttrValue,
}

impl serde::Serialize for PathAttr {
    /// `{"type_code": 1, "name": "ORIGIN", "flags": 64, "origin": 0}`
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct View<'a> {
            type_code: u8,
            name: &'static str,
            flags: u8,
            #[serde(flatten)]
            value: &'a AttrValue,
        }
        View {
            type_code: self.type_code,
            name: self.name(),
            flags: self.flags,
            value: &self.value,
        }
        .serialize(s)
    }
}

/// ORIGIN values (RFC 4271 §5.1.1).
pub mod origin {
    pub const IGP: u8 = 0;
    pub const EGP: u8 = 1;
    pub const INCOMPLETE: u8 = 2;
}

/// AS_PATH segment types (RFC 4271 §4.3, RFC 5065 §3).
pub mod segment {
    pub const AS_SET: u8 = 1;
    pub const AS_SEQUENCE: u8 = 2;
    pub const AS_CONFED_SEQUENCE: u8 = 3;
    pub const AS_CONFED_SET: u8 = 4;
}

#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct AsSegment {
    pub seg_type: u8,
    pub asns: Vec<u32>,
}

#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct Aggregator {
    pub asn: u32,
    pub addr: Ipv4Addr,
}

/// The next hop of MP_REACH_NLRI (RFC 4760 §3; RFC 2545 §3 for the IPv6 link-local form).
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MpNextHop {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    Ipv6LinkLocal {
        global: Ipv6Addr,
        link_local: Ipv6Addr,
    },
    /// Any other length, kept raw (validate decides whether the family allows it).
    Other(#[serde(serialize_with = "ser_hex")] Vec<u8>),
}

impl MpNextHop {
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            MpNextHop::Ipv4(a) => Some(IpAddr::V4(*a)),
            MpNextHop::Ipv6(a) | MpNextHop::Ipv6LinkLocal { global: a, .. } => Some(IpAddr::V6(*a)),
            MpNextHop::Other(_) => None,
        }
    }

    fn decode(b: &[u8]) -> Self {
        if let Ok(a) = <[u8; 4]>::try_from(b) {
            return MpNextHop::Ipv4(Ipv4Addr::from(a));
        }
        if let Ok(a) = <[u8; 16]>::try_from(b) {
            return MpNextHop::Ipv6(Ipv6Addr::from(a));
        }
        if let Ok(a) = <[u8; 32]>::try_from(b) {
            let mut g = [0u8; 16];
            let mut l = [0u8; 16];
            g.copy_from_slice(a.get(..16).unwrap_or(&[0; 16]));
            l.copy_from_slice(a.get(16..).unwrap_or(&[0; 16]));
            return MpNextHop::Ipv6LinkLocal {
                global: Ipv6Addr::from(g),
                link_local: Ipv6Addr::from(l),
            };
        }
        MpNextHop::Other(b.to_vec())
    }

    /// Length octet and address, as in MP_REACH_NLRI.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            MpNextHop::Ipv4(a) => {
                out.push(4);
                out.extend(a.octets());
            }
            MpNextHop::Ipv6(a) => {
                out.push(16);
                out.extend(a.octets());
            }
            MpNextHop::Ipv6LinkLocal { global, link_local } => {
                out.push(32);
                out.extend(global.octets());
                out.extend(link_local.octets());
            }
            MpNextHop::Other(b) => {
                out.push(b.len().min(255) as u8);
                out.extend(b.iter().take(255));
            }
        }
    }
}

/// MP_REACH_NLRI (RFC 4760 §3).
///
/// ```text
/// +---------------------------------------------------------+
/// | Address Family Identifier (2 octets)                    |
/// | Subsequent Address Family Identifier (1 octet)          |
/// | Length of Next Hop Network Address (1 octet)            |
/// | Network Address of Next Hop (variable)                  |
/// | Reserved (1 octet)                                      |
/// | Network Layer Reachability Information (variable)       |
/// +---------------------------------------------------------+
/// ```
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct MpReach {
    pub family: Family,
    pub next_hop: MpNextHop,
    /// RFC 4760 §3: "MUST be set to 0, and SHOULD be ignored upon receipt" — kept for relay.
    pub reserved: u8,
    pub nlri: NlriList,
}

/// MP_UNREACH_NLRI (RFC 4760 §4): AFI, SAFI, withdrawn routes.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: NlriList,
}

/// PMSI Tunnel attribute (RFC 6514 §5); EVPN uses it on type-3 routes (RFC 7432 §11.2,
/// RFC 8365 §5.1.3: Ingress Replication, tunnel identifier = the originating VTEP, label = VNI).
///
/// ```text
/// +---------------------------------+
/// |  Flags (1 octet)                |
/// |  Tunnel Type (1 octet)          |
/// |  MPLS Label (3 octets)          |
/// |  Tunnel Identifier (variable)   |
/// +---------------------------------+
/// ```
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct PmsiTunnel {
    pub flags: u8,
    pub tunnel_type: u8,
    pub label: Label,
    pub tunnel_id: PmsiTunnelId,
}

impl PmsiTunnel {
    /// RFC 6514 §5: tunnel type 6 = Ingress Replication.
    pub const INGRESS_REPLICATION: u8 = 6;
}

#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PmsiTunnelId {
    /// Ingress Replication with a 4- or 16-octet identifier: the tunnel endpoint address.
    Ip(IpAddr),
    Raw(#[serde(serialize_with = "ser_hex")] Vec<u8>),
}

/// A typed attribute value.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrValue {
    Origin(u8),
    AsPath(Vec<AsSegment>),
    NextHop(Ipv4Addr),
    Med(u32),
    LocalPref(u32),
    AtomicAggregate,
    Aggregator(Aggregator),
    Communities(Vec<u32>),
    OriginatorId(Ipv4Addr),
    ClusterList(Vec<Ipv4Addr>),
    MpReach(MpReach),
    MpUnreach(MpUnreach),
    ExtCommunities(Vec<ExtCommunity>),
    As4Path(Vec<AsSegment>),
    As4Aggregator(Aggregator),
    PmsiTunnel(PmsiTunnel),
    LargeCommunities(Vec<[u32; 3]>),
    /// An attribute we do not recognize: value kept verbatim (RFC 4271 §5: optional transitive
    /// ones are passed on with Partial set).
    Unknown(#[serde(serialize_with = "ser_hex")] Vec<u8>),
    /// A recognized attribute whose value failed to parse; `validate` turns this into the
    /// RFC 7606 action for this attribute type.
    Malformed {
        #[serde(serialize_with = "ser_hex")]
        raw: Vec<u8>,
        error: WireError,
    },
}

fn decode_segments(r: &mut Reader<'_>, four: bool) -> WireResult<Vec<AsSegment>> {
    let mut segs = Vec::new();
    while !r.is_empty() {
        let start = r.offset();
        let seg_type = r.u8("AS_PATH segment type")?;
        if !(segment::AS_SET..=segment::AS_CONFED_SET).contains(&seg_type) {
            // RFC 7606 §7.2: "An AS_PATH is considered malformed if an unrecognized segment
            // type is encountered".
            return Err(Reader::bad_value_at(
                start,
                "AS_PATH segment type",
                u64::from(seg_type),
                "1..=4",
            ));
        }
        let n_at = r.offset();
        let n = r.u8("AS_PATH segment length")?;
        if n == 0 {
            // RFC 7606 §7.2: a segment is malformed if "the Path Segment Length field contains
            // the value 0".
            return Err(Reader::bad_value_at(
                n_at,
                "AS_PATH segment length",
                0,
                "at least 1 AS",
            ));
        }
        let width = if four { 4 } else { 2 };
        let mut s = r.sub(usize::from(n) * width, "AS_PATH segment")?;
        let mut asns = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            asns.push(if four {
                s.u32("AS number")?
            } else {
                u32::from(s.u16("AS number")?)
            });
        }
        segs.push(AsSegment { seg_type, asns });
    }
    Ok(segs)
}

fn encode_segments(segs: &[AsSegment], four: bool, out: &mut Vec<u8>) {
    for s in segs {
        // A segment holds at most 255 ASNs; longer lists are split into consecutive segments
        // of the same type (RFC 4271 §9.2.2.1 does the same when prepending).
        for chunk in s.asns.chunks(255) {
            out.push(s.seg_type);
            out.push(chunk.len() as u8);
            for a in chunk {
                if four {
                    out.extend(a.to_be_bytes());
                } else {
                    // RFC 6793 §4.2.2: a 4-octet AS that does not fit is sent as AS_TRANS.
                    out.extend(u16::try_from(*a).unwrap_or(23456).to_be_bytes());
                }
            }
        }
    }
}

fn decode_aggregator(r: &mut Reader<'_>, four: bool) -> WireResult<Aggregator> {
    let asn = if four {
        r.u32("AGGREGATOR AS")?
    } else {
        u32::from(r.u16("AGGREGATOR AS")?)
    };
    Ok(Aggregator {
        asn,
        addr: Ipv4Addr::from(r.array::<4>("AGGREGATOR address")?),
    })
}

fn decode_value(type_code: u8, r: &mut Reader<'_>, ctx: &BgpCtx) -> WireResult<AttrValue> {
    let len = r.remaining();
    let v = match type_code {
        code::ORIGIN => {
            let at = r.offset();
            let o = r.u8("ORIGIN")?;
            if o > origin::INCOMPLETE {
                // RFC 7606 §7.1: "undefined ORIGIN value" is malformed.
                return Err(Reader::bad_value_at(
                    at,
                    "ORIGIN",
                    u64::from(o),
                    "0 (IGP), 1 (EGP) or 2 (INCOMPLETE)",
                ));
            }
            AttrValue::Origin(o)
        }
        code::AS_PATH => AttrValue::AsPath(decode_segments(r, ctx.four_octet_as)?),
        code::AS4_PATH => AttrValue::As4Path(decode_segments(r, true)?),
        code::NEXT_HOP => AttrValue::NextHop(Ipv4Addr::from(r.array::<4>("NEXT_HOP")?)),
        code::MED => AttrValue::Med(r.u32("MULTI_EXIT_DISC")?),
        code::LOCAL_PREF => AttrValue::LocalPref(r.u32("LOCAL_PREF")?),
        code::ATOMIC_AGGREGATE => AttrValue::AtomicAggregate,
        code::AGGREGATOR => {
            // RFC 6793 §4: 8 octets between NEW speakers, 6 otherwise.
            let four = ctx.four_octet_as;
            let want = if four { 8 } else { 6 };
            if len != want {
                return Err(Reader::bad_value_at(
                    r.offset(),
                    "AGGREGATOR length",
                    len as u64,
                    if four { "8" } else { "6" },
                ));
            }
            AttrValue::Aggregator(decode_aggregator(r, four)?)
        }
        code::AS4_AGGREGATOR => AttrValue::As4Aggregator(decode_aggregator(r, true)?),
        code::COMMUNITIES => {
            check_multiple(r, 4, "COMMUNITIES length")?;
            let mut v = Vec::with_capacity(len / 4);
            while !r.is_empty() {
                v.push(r.u32("community")?);
            }
            AttrValue::Communities(v)
        }
        code::ORIGINATOR_ID => {
            AttrValue::OriginatorId(Ipv4Addr::from(r.array::<4>("ORIGINATOR_ID")?))
        }
        code::CLUSTER_LIST => {
            check_multiple(r, 4, "CLUSTER_LIST length")?;
            let mut v = Vec::with_capacity(len / 4);
            while !r.is_empty() {
                v.push(Ipv4Addr::from(r.array::<4>("cluster id")?));
            }
            AttrValue::ClusterList(v)
        }
        code::MP_REACH_NLRI => {
            let family = Family::new(Afi(r.u16("MP_REACH AFI")?), Safi(r.u8("MP_REACH SAFI")?));
            let nh_len = r.u8("next hop length")?;
            let nh = r.bytes(usize::from(nh_len), "next hop")?;
            let reserved = r.u8("MP_REACH reserved")?;
            let nlri = NlriList::decode(r, family, ctx.add_path_rx(family))?;
            AttrValue::MpReach(MpReach {
                family,
                next_hop: MpNextHop::decode(nh),
                reserved,
                nlri,
            })
        }
        code::MP_UNREACH_NLRI => {
            let family = Family::new(
                Afi(r.u16("MP_UNREACH AFI")?),
                Safi(r.u8("MP_UNREACH SAFI")?),
            );
            let withdrawn = NlriList::decode(r, family, ctx.add_path_rx(family))?;
            AttrValue::MpUnreach(MpUnreach { family, withdrawn })
        }
        code::EXTENDED_COMMUNITIES => {
            check_multiple(r, 8, "EXTENDED_COMMUNITIES length")?;
            let mut v = Vec::with_capacity(len / 8);
            while !r.is_empty() {
                v.push(ExtCommunity::decode(r.array::<8>("extended community")?));
            }
            AttrValue::ExtCommunities(v)
        }
        code::LARGE_COMMUNITY => {
            check_multiple(r, 12, "LARGE_COMMUNITY length")?;
            let mut v = Vec::with_capacity(len / 12);
            while !r.is_empty() {
                v.push([
                    r.u32("global administrator")?,
                    r.u32("local data 1")?,
                    r.u32("local data 2")?,
                ]);
            }
            AttrValue::LargeCommunities(v)
        }
        code::PMSI_TUNNEL => {
            let flags = r.u8("PMSI flags")?;
            let tunnel_type = r.u8("PMSI tunnel type")?;
            let label = Label(r.u24("PMSI MPLS label")?);
            let id = r.rest();
            let tunnel_id = match (tunnel_type, id.len()) {
                (PmsiTunnel::INGRESS_REPLICATION, 4 | 16) => PmsiTunnelId::Ip(
                    MpNextHop::decode(id)
                        .ip()
                        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                ),
                _ => PmsiTunnelId::Raw(id.to_vec()),
            };
            AttrValue::PmsiTunnel(PmsiTunnel {
                flags,
                tunnel_type,
                label,
                tunnel_id,
            })
        }
        _ => AttrValue::Unknown(r.rest().to_vec()),
    };
    Ok(v)
}

fn check_multiple(r: &Reader<'_>, n: usize, field: &'static str) -> WireResult<()> {
    let len = r.remaining();
    if !len.is_multiple_of(n) {
        let expected = match n {
            4 => "a multiple of 4",
            8 => "a multiple of 8",
            _ => "a multiple of 12",
        };
        return Err(Reader::bad_value_at(
            r.offset(),
            field,
            len as u64,
            expected,
        ));
    }
    Ok(())
}

impl PathAttr {
    /// A new attribute with the standard flags for its type (Extended Length added on encode
    /// when the value needs it).
    pub fn new(type_code: u8, value: AttrValue) -> Self {
        PathAttr {
            flags: expected_flags(type_code).unwrap_or(flags::OPTIONAL | flags::TRANSITIVE),
            type_code,
            value,
        }
    }

    /// Decode one attribute: header from `r`, value from a bounded sub-reader. Header or length
    /// overruns are returned as errors (the caller keeps the unparsed tail, RFC 7606 §4); a
    /// value that does not parse becomes `AttrValue::Malformed`.
    pub fn decode(r: &mut Reader<'_>, ctx: &BgpCtx) -> WireResult<Self> {
        let flags = r.u8("attribute flags")?;
        let type_code = r.u8("attribute type")?;
        let len = if flags & flags::EXTENDED_LENGTH != 0 {
            usize::from(r.u16("attribute length")?)
        } else {
            usize::from(r.u8("attribute length")?)
        };
        let mut v = r.sub(len, "attribute value")?;
        let raw_reader = v.clone();
        let value = match decode_value(type_code, &mut v, ctx)
            .and_then(|val| v.finish(name(type_code)).map(|_| val))
        {
            Ok(val) => val,
            Err(error) => {
                let mut rr = raw_reader;
                AttrValue::Malformed {
                    raw: rr.rest().to_vec(),
                    error,
                }
            }
        };
        Ok(PathAttr {
            flags,
            type_code,
            value,
        })
    }

    pub fn encode(&self, ctx: &BgpCtx, out: &mut Vec<u8>) {
        let mut val = Vec::new();
        self.encode_value(ctx, &mut val);
        let len = val.len().min(usize::from(u16::MAX));
        let extended = self.flags & flags::EXTENDED_LENGTH != 0 || len > 255;
        out.push(if extended {
            self.flags | flags::EXTENDED_LENGTH
        } else {
            self.flags
        });
        out.push(self.type_code);
        if extended {
            out.extend((len as u16).to_be_bytes());
        } else {
            out.push(len as u8);
        }
        out.extend(val.iter().take(len));
    }

    fn encode_value(&self, ctx: &BgpCtx, out: &mut Vec<u8>) {
        match &self.value {
            AttrValue::Origin(o) => out.push(*o),
            AttrValue::AsPath(s) => encode_segments(s, ctx.four_octet_as, out),
            AttrValue::As4Path(s) => encode_segments(s, true, out),
            AttrValue::NextHop(a) | AttrValue::OriginatorId(a) => out.extend(a.octets()),
            AttrValue::Med(v) | AttrValue::LocalPref(v) => out.extend(v.to_be_bytes()),
            AttrValue::AtomicAggregate => {}
            AttrValue::Aggregator(a) => {
                if ctx.four_octet_as {
                    out.extend(a.asn.to_be_bytes());
                } else {
                    out.extend(u16::try_from(a.asn).unwrap_or(23456).to_be_bytes());
                }
                out.extend(a.addr.octets());
            }
            AttrValue::As4Aggregator(a) => {
                out.extend(a.asn.to_be_bytes());
                out.extend(a.addr.octets());
            }
            AttrValue::Communities(v) => v.iter().for_each(|c| out.extend(c.to_be_bytes())),
            AttrValue::ClusterList(v) => v.iter().for_each(|c| out.extend(c.octets())),
            AttrValue::MpReach(m) => {
                out.extend(m.family.afi.0.to_be_bytes());
                out.push(m.family.safi.0);
                m.next_hop.encode(out);
                out.push(m.reserved);
                m.nlri.encode(out);
            }
            AttrValue::MpUnreach(m) => {
                out.extend(m.family.afi.0.to_be_bytes());
                out.push(m.family.safi.0);
                m.withdrawn.encode(out);
            }
            AttrValue::ExtCommunities(v) => v.iter().for_each(|c| out.extend(c.encode())),
            AttrValue::LargeCommunities(v) => {
                v.iter().flatten().for_each(|x| out.extend(x.to_be_bytes()));
            }
            AttrValue::PmsiTunnel(p) => {
                out.push(p.flags);
                out.push(p.tunnel_type);
                out.extend(p.label.0.to_be_bytes().iter().skip(1));
                match &p.tunnel_id {
                    PmsiTunnelId::Ip(IpAddr::V4(a)) => out.extend(a.octets()),
                    PmsiTunnelId::Ip(IpAddr::V6(a)) => out.extend(a.octets()),
                    PmsiTunnelId::Raw(b) => out.extend(b),
                }
            }
            AttrValue::Unknown(b) | AttrValue::Malformed { raw: b, .. } => out.extend(b),
        }
    }

    pub fn name(&self) -> &'static str {
        name(self.type_code)
    }

    /// Set Extended Length when the encoded value needs two length octets (RFC 4271 §4.3), so
    /// that an attribute we build is equal to its own decoded encoding. A bit already set is
    /// kept (some peers always use it, e.g. FRR on MP_REACH_NLRI).
    pub fn fit_length(mut self, ctx: &BgpCtx) -> Self {
        let mut val = Vec::new();
        self.encode_value(ctx, &mut val);
        if val.len() > 255 {
            self.flags |= flags::EXTENDED_LENGTH;
        }
        self
    }

    /// How this attribute is passed on to other peers when we do not recognize it
    /// (RFC 4271 §5): "Unrecognized non-transitive optional attributes MUST be quietly ignored
    /// and not passed along to other BGP peers. Unrecognized transitive optional attributes
    /// SHOULD be accepted. If an optional transitive attribute is unrecognized, the Partial bit
    /// in the attribute flags octet is set to 1, and the attribute is retained for propagation
    /// to other BGP speakers." Recognized attributes are returned unchanged (the speaker
    /// rebuilds them); unrecognized non-transitive ones give `None`.
    pub fn for_propagation(&self) -> Option<PathAttr> {
        if !matches!(self.value, AttrValue::Unknown(_)) {
            return Some(self.clone());
        }
        if self.flags & flags::OPTIONAL == 0 || self.flags & flags::TRANSITIVE == 0 {
            return None;
        }
        Some(PathAttr {
            flags: self.flags | flags::PARTIAL,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx4() -> BgpCtx {
        BgpCtx {
            four_octet_as: true,
            ..BgpCtx::default()
        }
    }

    fn rt(bytes: &[u8], ctx: &BgpCtx) -> PathAttr {
        let a = PathAttr::decode(&mut Reader::new(bytes), ctx).unwrap();
        let mut out = Vec::new();
        a.encode(ctx, &mut out);
        assert_eq!(out, bytes, "re-encode of {a:?}");
        a
    }

    #[test]
    fn origin_as_path_next_hop() {
        assert_eq!(rt(&[0x40, 1, 1, 0], &ctx4()).value, AttrValue::Origin(0));
        let a = rt(
            &[0x40, 2, 10, 2, 2, 0, 0, 0xfd, 0xe9, 0, 0, 0xfd, 0xea],
            &ctx4(),
        );
        assert_eq!(
            a.value,
            AttrValue::AsPath(vec![AsSegment {
                seg_type: 2,
                asns: vec![65001, 65002]
            }])
        );
        let two = BgpCtx::default();
        let a = rt(&[0x40, 2, 6, 2, 2, 0xfd, 0xe9, 0x5b, 0xa0], &two);
        assert_eq!(
            a.value,
            AttrValue::AsPath(vec![AsSegment {
                seg_type: 2,
                asns: vec![65001, 23456]
            }])
        );
        assert_eq!(
            rt(&[0x40, 3, 4, 10, 0, 0, 1], &two).value,
            AttrValue::NextHop(Ipv4Addr::new(10, 0, 0, 1))
        );
    }

    #[test]
    fn extended_length_flag_is_kept() {
        let a = rt(&[0x50, 5, 0, 4, 0, 0, 0, 100], &ctx4());
        assert_eq!(a.value, AttrValue::LocalPref(100));
        assert_eq!(a.flags, 0x50);
    }

    #[test]
    fn malformed_value_keeps_raw_bytes() {
        // ORIGIN 3 is undefined (RFC 7606 §7.1)
        let a = rt(&[0x40, 1, 1, 3], &ctx4());
        assert!(matches!(a.value, AttrValue::Malformed { ref raw, .. } if raw == &[3]));
        // communities length 5
        let a = rt(&[0xc0, 8, 5, 0, 0, 0, 1, 9], &ctx4());
        match a.value {
            AttrValue::Malformed { error, .. } => {
                assert_eq!((error.offset, error.field), (3, "COMMUNITIES length"))
            }
            v => panic!("{v:?}"),
        }
        // zero-length AS_PATH segment
        let a = rt(&[0x40, 2, 2, 2, 0], &ctx4());
        assert!(matches!(a.value, AttrValue::Malformed { .. }));
    }

    #[test]
    fn pmsi_ingress_replication() {
        let bytes = [0xc0, 22, 9, 0, 6, 0, 0, 100, 10, 255, 0, 2];
        let a = rt(&bytes, &ctx4());
        assert_eq!(
            a.value,
            AttrValue::PmsiTunnel(PmsiTunnel {
                flags: 0,
                tunnel_type: 6,
                label: Label(100),
                tunnel_id: PmsiTunnelId::Ip(IpAddr::V4(Ipv4Addr::new(10, 255, 0, 2)))
            })
        );
    }

    #[test]
    fn unknown_attributes_propagate_per_rfc4271_section5() {
        // optional transitive type 99: kept, Partial set, value and Extended Length unchanged
        let a = rt(&[0xd0, 99, 0, 2, 1, 2], &ctx4());
        let p = a.for_propagation().unwrap();
        assert_eq!(p.flags, 0xf0);
        let mut out = Vec::new();
        p.encode(&ctx4(), &mut out);
        assert_eq!(out, [0xf0, 99, 0, 2, 1, 2]);
        // optional non-transitive: not passed on
        assert_eq!(rt(&[0x80, 99, 1, 7], &ctx4()).for_propagation(), None);
        // recognized: unchanged
        let o = rt(&[0x40, 1, 1, 0], &ctx4());
        assert_eq!(o.for_propagation(), Some(o));
    }

    #[test]
    fn json_names_the_attribute() {
        let a = rt(&[0x40, 1, 1, 2], &ctx4());
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"type_code":1,"name":"ORIGIN","flags":64,"origin":2}"#
        );
    }

    #[test]
    fn attribute_length_overrun_is_an_error() {
        let e = PathAttr::decode(&mut Reader::new(&[0x40, 1, 5, 0]), &ctx4()).unwrap_err();
        assert_eq!((e.offset, e.field), (3, "attribute value"));
    }
}
