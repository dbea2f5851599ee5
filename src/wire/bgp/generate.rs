//! Generators of canonical BGP values for property tests and structure-aware fuzzing.
//!
//! Owns: `arbitrary_message(u, ctx)` and its helpers. "Canonical" means every generated value
//! `x` satisfies `decode(encode(x)) == x` under `ctx`: counts fit their fields, typed values use
//! their typed variant (never `Unknown` with a known code), Extended Length is set whenever the
//! value needs it, and AS numbers fit the session's AS width.
//! Must not: be used on any input path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::{Arbitrary, Result, Unstructured};

use super::afi::{Afi, Family, Safi};
use super::attr::{
    Aggregator, AsSegment, AttrValue, MpNextHop, MpReach, MpUnreach, PathAttr, PmsiTunnel,
    PmsiTunnelId, code, expected_flags, flags,
};
use super::evpn::{EvpnRoute, Label};
use super::extcomm::ExtCommunity;
use super::message::{BgpCtx, Message};
use super::nlri::{EvpnNlri, IpPrefix, NlriList, PrefixNlri};
use super::update::UpdateMsg;

const KNOWN: [u8; 17] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 22, 32];

fn vec_of<'a, T>(
    u: &mut Unstructured<'a>,
    max: usize,
    mut f: impl FnMut(&mut Unstructured<'a>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = u.int_in_range(0..=max)?;
    (0..n).map(|_| f(u)).collect()
}

fn asn(u: &mut Unstructured<'_>, four: bool) -> Result<u32> {
    Ok(if four {
        u.arbitrary()?
    } else {
        u32::from(u.arbitrary::<u16>()?)
    })
}

fn segments(u: &mut Unstructured<'_>, four: bool) -> Result<Vec<AsSegment>> {
    vec_of(u, 4, |u| {
        let seg_type = u.int_in_range(1..=4)?;
        let n = u.int_in_range(1..=12usize)?;
        let asns = (0..n).map(|_| asn(u, four)).collect::<Result<_>>()?;
        Ok(AsSegment { seg_type, asns })
    })
}

fn prefixes(
    u: &mut Unstructured<'_>,
    v6: bool,
    add_path: bool,
    max: usize,
) -> Result<Vec<PrefixNlri>> {
    vec_of(u, max, |u| {
        let path_id = if add_path { Some(u.arbitrary()?) } else { None };
        let prefix = if v6 {
            IpPrefix::arbitrary_v6(u)?
        } else {
            IpPrefix::arbitrary_v4(u)?
        };
        Ok(PrefixNlri { path_id, prefix })
    })
}

fn nlri_list(u: &mut Unstructured<'_>, family: Family, ctx: &BgpCtx) -> Result<NlriList> {
    let ap = ctx.add_path_rx(family);
    Ok(match family {
        Family::IPV4_UNICAST => NlriList::Ipv4(prefixes(u, false, ap, 20)?),
        Family::IPV6_UNICAST => NlriList::Ipv6(prefixes(u, true, ap, 20)?),
        Family::L2VPN_EVPN => NlriList::Evpn(vec_of(u, 12, |u| {
            let path_id = if ap { Some(u.arbitrary()?) } else { None };
            Ok(EvpnNlri {
                path_id,
                route: EvpnRoute::arbitrary(u)?,
            })
        })?),
        _ => {
            let n = u.int_in_range(0..=60usize)?;
            NlriList::Raw(u.bytes(n)?.to_vec())
        }
    })
}

fn family(u: &mut Unstructured<'_>) -> Result<Family> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => Family::IPV4_UNICAST,
        1 => Family::IPV6_UNICAST,
        2 => Family::L2VPN_EVPN,
        _ => {
            // a family we keep raw: anything but the three typed ones
            let mut f = Family::new(Afi(u.arbitrary()?), Safi(u.arbitrary()?));
            if [
                Family::IPV4_UNICAST,
                Family::IPV6_UNICAST,
                Family::L2VPN_EVPN,
            ]
            .contains(&f)
            {
                f = Family::new(Afi(16388), Safi(71));
            }
            f
        }
    })
}

fn next_hop(u: &mut Unstructured<'_>) -> Result<MpNextHop> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => MpNextHop::Ipv4(Ipv4Addr::from(u.arbitrary::<u32>()?)),
        1 => MpNextHop::Ipv6(Ipv6Addr::from(u.arbitrary::<u128>()?)),
        2 => MpNextHop::Ipv6LinkLocal {
            global: Ipv6Addr::from(u.arbitrary::<u128>()?),
            link_local: Ipv6Addr::from(u.arbitrary::<u128>()?),
        },
        _ => {
            let mut n = u.int_in_range(0..=40usize)?;
            if matches!(n, 4 | 16 | 32) {
                n += 1;
            }
            MpNextHop::Other(u.bytes(n)?.to_vec())
        }
    })
}

fn value(u: &mut Unstructured<'_>, ctx: &BgpCtx) -> Result<(u8, AttrValue)> {
    let four = ctx.four_octet_as;
    let ipv4 = |u: &mut Unstructured<'_>| -> Result<Ipv4Addr> {
        Ok(Ipv4Addr::from(u.arbitrary::<u32>()?))
    };
    Ok(match u.int_in_range(0..=17u8)? {
        0 => (code::ORIGIN, AttrValue::Origin(u.int_in_range(0..=2)?)),
        1 => (code::AS_PATH, AttrValue::AsPath(segments(u, four)?)),
        2 => (code::NEXT_HOP, AttrValue::NextHop(ipv4(u)?)),
        3 => (code::MED, AttrValue::Med(u.arbitrary()?)),
        4 => (code::LOCAL_PREF, AttrValue::LocalPref(u.arbitrary()?)),
        5 => (code::ATOMIC_AGGREGATE, AttrValue::AtomicAggregate),
        6 => (
            code::AGGREGATOR,
            AttrValue::Aggregator(Aggregator {
                asn: asn(u, four)?,
                addr: ipv4(u)?,
            }),
        ),
        7 => (
            code::COMMUNITIES,
            AttrValue::Communities(vec_of(u, 20, |u| u.arbitrary())?),
        ),
        8 => (code::ORIGINATOR_ID, AttrValue::OriginatorId(ipv4(u)?)),
        9 => (
            code::CLUSTER_LIST,
            AttrValue::ClusterList(vec_of(u, 10, ipv4)?),
        ),
        10 => {
            let f = family(u)?;
            let nlri = nlri_list(u, f, ctx)?;
            (
                code::MP_REACH_NLRI,
                AttrValue::MpReach(MpReach {
                    family: f,
                    next_hop: next_hop(u)?,
                    reserved: u.arbitrary()?,
                    nlri,
                }),
            )
        }
        11 => {
            let f = family(u)?;
            (
                code::MP_UNREACH_NLRI,
                AttrValue::MpUnreach(MpUnreach {
                    family: f,
                    withdrawn: nlri_list(u, f, ctx)?,
                }),
            )
        }
        12 => (
            code::EXTENDED_COMMUNITIES,
            AttrValue::ExtCommunities(vec_of(u, 12, ExtCommunity::arbitrary)?),
        ),
        13 => (code::AS4_PATH, AttrValue::As4Path(segments(u, true)?)),
        14 => (
            code::AS4_AGGREGATOR,
            AttrValue::As4Aggregator(Aggregator {
                asn: u.arbitrary()?,
                addr: ipv4(u)?,
            }),
        ),
        15 => {
            let ir: bool = u.arbitrary()?;
            let (tunnel_type, tunnel_id) = if ir {
                let ip = if u.arbitrary()? {
                    IpAddr::V6(Ipv6Addr::from(u.arbitrary::<u128>()?))
                } else {
                    IpAddr::V4(ipv4(u)?)
                };
                (PmsiTunnel::INGRESS_REPLICATION, PmsiTunnelId::Ip(ip))
            } else {
                let mut t: u8 = u.arbitrary()?;
                if t == PmsiTunnel::INGRESS_REPLICATION {
                    t = 3;
                }
                let n = u.int_in_range(0..=20usize)?;
                (t, PmsiTunnelId::Raw(u.bytes(n)?.to_vec()))
            };
            let label = Label(u.int_in_range(0..=0xff_ffff)?);
            (
                code::PMSI_TUNNEL,
                AttrValue::PmsiTunnel(PmsiTunnel {
                    flags: u.arbitrary()?,
                    tunnel_type,
                    label,
                    tunnel_id,
                }),
            )
        }
        16 => (
            code::LARGE_COMMUNITY,
            AttrValue::LargeCommunities(vec_of(u, 8, |u| u.arbitrary())?),
        ),
        _ => {
            let mut c: u8 = u.arbitrary()?;
            while KNOWN.contains(&c) {
                c = c.wrapping_add(37);
            }
            let n = u.int_in_range(0..=300usize)?;
            (c, AttrValue::Unknown(u.bytes(n)?.to_vec()))
        }
    })
}

/// A canonical path attribute: flags are the type's usual O/T bits plus random Partial and
/// Extended Length bits (Extended Length forced on when the value is longer than 255 octets).
pub fn arbitrary_attr(u: &mut Unstructured<'_>, ctx: &BgpCtx) -> Result<PathAttr> {
    let (type_code, value) = value(u, ctx)?;
    let base = match expected_flags(type_code) {
        Some(f) => f,
        None => u.arbitrary::<u8>()? & (flags::OPTIONAL | flags::TRANSITIVE),
    };
    let extra = u.arbitrary::<u8>()? & (flags::PARTIAL | flags::EXTENDED_LENGTH | 0x0f);
    Ok(PathAttr {
        flags: base | extra,
        type_code,
        value,
    }
    .fit_length(ctx))
}

pub fn arbitrary_update(u: &mut Unstructured<'_>, ctx: &BgpCtx) -> Result<UpdateMsg> {
    let ap = ctx.add_path_rx(Family::IPV4_UNICAST);
    Ok(UpdateMsg {
        withdrawn: prefixes(u, false, ap, 10)?,
        attrs: vec_of(u, 8, |u| arbitrary_attr(u, ctx))?,
        attrs_tail: None,
        nlri: prefixes(u, false, ap, 10)?,
    })
}

/// A session context worth testing: both AS widths, with or without ADD-PATH and extended
/// message size.
pub fn arbitrary_ctx(u: &mut Unstructured<'_>) -> Result<BgpCtx> {
    let mut add_path_rx = Vec::new();
    for f in [
        Family::IPV4_UNICAST,
        Family::IPV6_UNICAST,
        Family::L2VPN_EVPN,
    ] {
        if u.ratio(1, 3)? {
            add_path_rx.push(f);
        }
    }
    Ok(BgpCtx {
        four_octet_as: u.arbitrary()?,
        extended_message: true,
        add_path_rx,
    })
}

/// A canonical message that fits the context's maximum size.
pub fn arbitrary_message(u: &mut Unstructured<'_>, ctx: &BgpCtx) -> Result<Message> {
    let m = match u.int_in_range(0..=4u8)? {
        0 => Message::Open(Arbitrary::arbitrary(u)?),
        1 => Message::Notification(Arbitrary::arbitrary(u)?),
        2 => Message::Keepalive,
        3 => Message::RouteRefresh(Arbitrary::arbitrary(u)?),
        _ => Message::Update(arbitrary_update(u, ctx)?),
    };
    let len = m.to_bytes(ctx).len();
    let max = match m {
        Message::Open(_) => super::message::MAX_LEN,
        _ => ctx.max_len(),
    };
    if len > max {
        return Ok(Message::Keepalive);
    }
    Ok(m)
}
