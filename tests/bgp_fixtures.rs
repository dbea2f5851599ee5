//! Hand-written hex fixtures (annotated from the RFC layouts) for the BGP message types and
//! path attributes not already covered by the real-peer vectors: each decodes to the exact
//! value and encodes back to the same bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vmmi::decode::parse_hex;
use vmmi::wire::Reader;
use vmmi::wire::bgp::attr::{
    Aggregator, AsSegment, AttrValue, MpNextHop, MpReach, MpUnreach, PathAttr,
};
use vmmi::wire::bgp::nlri::{IpPrefix, NlriList, PrefixNlri};
use vmmi::wire::bgp::route_refresh::RouteRefreshMsg;
use vmmi::wire::bgp::{BgpCtx, Family, Message};

fn ctx4() -> BgpCtx {
    BgpCtx {
        four_octet_as: true,
        ..BgpCtx::default()
    }
}

fn attr(hex: &str, ctx: &BgpCtx, want: AttrValue) {
    let b = parse_hex(hex).unwrap();
    let a = PathAttr::decode(&mut Reader::new(&b), ctx).unwrap();
    assert_eq!(a.value, want, "{hex}");
    let mut out = Vec::new();
    a.encode(ctx, &mut out);
    assert_eq!(out, b, "{hex}");
}

fn msg(hex: &str, ctx: &BgpCtx, want: Message) {
    let b = parse_hex(hex).unwrap();
    let (m, n) = Message::decode(&b, ctx).unwrap();
    assert_eq!((m.clone(), n), (want, b.len()));
    assert_eq!(m.to_bytes(ctx), b);
}

const MARKER: &str = "ffffffffffffffffffffffffffffffff";

#[test]
fn route_refresh_normal_borr_eorr() {
    // length 23, type 5 | AFI 25 | subtype | SAFI 70
    for (sub, name) in [(0u8, "normal"), (1, "BoRR"), (2, "EoRR")] {
        let hex = format!("{MARKER} 0017 05 0019 {sub:02x} 46");
        msg(
            &hex,
            &ctx4(),
            Message::RouteRefresh(RouteRefreshMsg {
                family: Family::L2VPN_EVPN,
                subtype: sub,
            }),
        );
        let _ = name;
    }
    // RFC 7313 §5: a ROUTE-REFRESH whose body is not 4 octets → 7/1
    let b = parse_hex(&format!("{MARKER} 0018 05 0001 00 01 00")).unwrap();
    let e = Message::decode(&b, &ctx4()).unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (7, 1));
}

#[test]
fn scalar_and_list_attributes() {
    // MED (optional non-transitive 0x80, type 4, len 4)
    attr("80 04 04 00000064", &ctx4(), AttrValue::Med(100));
    // ATOMIC_AGGREGATE (well-known 0x40, type 6, len 0)
    attr("40 06 00", &ctx4(), AttrValue::AtomicAggregate);
    // AGGREGATOR 4-octet session: AS 4200000001, 192.0.2.1
    attr(
        "c0 07 08 fa56ea01 c0000201",
        &ctx4(),
        AttrValue::Aggregator(Aggregator {
            asn: 4_200_000_001,
            addr: Ipv4Addr::new(192, 0, 2, 1),
        }),
    );
    // AGGREGATOR 2-octet session: AS 65001
    attr(
        "c0 07 06 fde9 c0000201",
        &BgpCtx::default(),
        AttrValue::Aggregator(Aggregator {
            asn: 65001,
            addr: Ipv4Addr::new(192, 0, 2, 1),
        }),
    );
    // COMMUNITIES 65001:100, NO_EXPORT
    attr(
        "c0 08 08 fde90064 ffffff01",
        &ctx4(),
        AttrValue::Communities(vec![0xfde9_0064, 0xffff_ff01]),
    );
    // ORIGINATOR_ID, CLUSTER_LIST (RFC 4456)
    attr(
        "80 09 04 0aff0001",
        &ctx4(),
        AttrValue::OriginatorId(Ipv4Addr::new(10, 255, 0, 1)),
    );
    attr(
        "80 0a 08 0aff0001 0aff0002",
        &ctx4(),
        AttrValue::ClusterList(vec![
            Ipv4Addr::new(10, 255, 0, 1),
            Ipv4Addr::new(10, 255, 0, 2),
        ]),
    );
    // AS4_PATH and AS4_AGGREGATOR (RFC 6793) on a 2-octet session
    attr(
        "c0 11 0a 02 02 fa56ea01 0000fde9",
        &BgpCtx::default(),
        AttrValue::As4Path(vec![AsSegment {
            seg_type: 2,
            asns: vec![4_200_000_001, 65001],
        }]),
    );
    attr(
        "c0 12 08 fa56ea01 c0000201",
        &BgpCtx::default(),
        AttrValue::As4Aggregator(Aggregator {
            asn: 4_200_000_001,
            addr: Ipv4Addr::new(192, 0, 2, 1),
        }),
    );
    // AS_SET and AS_CONFED_SEQUENCE segments
    attr(
        "40 02 0c 01 01 0000fde9 03 01 0000fdea",
        &ctx4(),
        AttrValue::AsPath(vec![
            AsSegment {
                seg_type: 1,
                asns: vec![65001],
            },
            AsSegment {
                seg_type: 3,
                asns: vec![65002],
            },
        ]),
    );
    // LARGE_COMMUNITY (RFC 8092): 65001:1:2
    attr(
        "c0 20 0c 0000fde9 00000001 00000002",
        &ctx4(),
        AttrValue::LargeCommunities(vec![[65001, 1, 2]]),
    );
    // unknown optional transitive type 99, kept verbatim
    attr(
        "c0 63 03 010203",
        &ctx4(),
        AttrValue::Unknown(vec![1, 2, 3]),
    );
}

#[test]
fn mp_reach_and_unreach_ip_families_with_add_path() {
    // IPv6 unicast, next hop global + link-local (32), one prefix 2001:db8::/32
    attr(
        "90 0e 002a 0002 01 20 20010db8000000000000000000000001 fe800000000000000000000000000001 00 20 20010db8",
        &ctx4(),
        AttrValue::MpReach(MpReach {
            family: Family::IPV6_UNICAST,
            next_hop: MpNextHop::Ipv6LinkLocal {
                global: "2001:db8::1".parse().unwrap(),
                link_local: "fe80::1".parse().unwrap(),
            },
            reserved: 0,
            nlri: NlriList::Ipv6(vec![PrefixNlri {
                path_id: None,
                prefix: IpPrefix {
                    addr: IpAddr::V6("2001:db8::".parse::<Ipv6Addr>().unwrap()),
                    len: 32,
                },
            }]),
        }),
    );
    // IPv4 unicast via MP_REACH with ADD-PATH path id 7 (RFC 7911)
    let ap = BgpCtx {
        four_octet_as: true,
        add_path_rx: vec![Family::IPV4_UNICAST],
        ..BgpCtx::default()
    };
    attr(
        "90 0e 0011 0001 01 04 0a000001 00 00000007 18 0a0102",
        &ap,
        AttrValue::MpReach(MpReach {
            family: Family::IPV4_UNICAST,
            next_hop: MpNextHop::Ipv4(Ipv4Addr::new(10, 0, 0, 1)),
            reserved: 0,
            nlri: NlriList::Ipv4(vec![PrefixNlri {
                path_id: Some(7),
                prefix: IpPrefix {
                    addr: IpAddr::V4(Ipv4Addr::new(10, 1, 2, 0)),
                    len: 24,
                },
            }]),
        }),
    );
    // MP_UNREACH IPv4 with path id
    attr(
        "90 0f 000b 0001 01 00000007 18 0a0102",
        &ap,
        AttrValue::MpUnreach(MpUnreach {
            family: Family::IPV4_UNICAST,
            withdrawn: NlriList::Ipv4(vec![PrefixNlri {
                path_id: Some(7),
                prefix: IpPrefix {
                    addr: IpAddr::V4(Ipv4Addr::new(10, 1, 2, 0)),
                    len: 24,
                },
            }]),
        }),
    );
    // a family we do not type (AFI 16388 BGP-LS, SAFI 71): NLRI kept raw
    attr(
        "90 0f 0006 4004 47 aabbcc",
        &ctx4(),
        AttrValue::MpUnreach(MpUnreach {
            family: Family::new(vmmi::wire::bgp::Afi(16388), vmmi::wire::bgp::Safi(71)),
            withdrawn: NlriList::Raw(vec![0xaa, 0xbb, 0xcc]),
        }),
    );
}

#[test]
fn ipv4_update_with_nlri_field_and_withdrawals() {
    // withdrawn 10.9.0.0/16; ORIGIN IGP, AS_PATH 65001, NEXT_HOP 10.0.0.1; NLRI 10.1.2.0/24
    let hex = format!(
        "{MARKER} 0032 02 0003 10 0a09 0014 40 01 01 00 40 02 06 02 01 0000fde9 40 03 04 0a000001 18 0a0102"
    );
    let b = parse_hex(&hex).unwrap();
    let (m, _) = Message::decode(&b, &ctx4()).unwrap();
    let Message::Update(u) = &m else { panic!() };
    assert_eq!(u.withdrawn[0].prefix.to_string(), "10.9.0.0/16");
    assert_eq!(u.nlri[0].prefix.to_string(), "10.1.2.0/24");
    assert_eq!(u.route_counts(), (1, 1));
    assert_eq!(m.to_bytes(&ctx4()), b);
}
