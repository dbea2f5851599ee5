//! EVPN wire codec: route distinguishers, EVPN NLRI (RFC 7432 §7, RFC 9136 §3), ESIs and the
//! extended communities EVPN uses.
//!
//! Kinds of test (ARCHITECTURE.md rule 8): hand-written hex fixtures from the RFC layouts,
//! decoded to exact values and re-encoded to the same bytes; property round-trips through
//! `Arbitrary`; malformed input asserting the exact error (offset, field, reason); and decoding
//! arbitrary bytes, which must never panic and must re-encode exactly what it consumed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::{Arbitrary, Unstructured};
use proptest::prelude::*;
use vmmi::wire::bgp::evpn::{
    Esi, EthernetAdRoute, EthernetSegmentRoute, EvpnRoute, InclusiveMulticastRoute, IpPrefixRoute,
    Label, MacIpRoute,
};
use vmmi::wire::bgp::extcomm::{ExtCommunity, RouteTarget, mac_mobility};
use vmmi::wire::bgp::rd::RouteDistinguisher;
use vmmi::wire::{MacAddr, Reader, Reason, WireError, WireResult};

/// Hex with `#` comments and any whitespace, one annotated field per line.
fn h(s: &str) -> Vec<u8> {
    let digits: String = s
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    hex::decode(digits).expect("fixture is valid hex")
}

fn decode_route(b: &[u8]) -> WireResult<EvpnRoute> {
    let mut r = Reader::new(b);
    let x = EvpnRoute::decode(&mut r)?;
    r.finish("test buffer")?;
    Ok(x)
}

fn encode_route(x: &EvpnRoute) -> Vec<u8> {
    let mut out = Vec::new();
    x.encode(&mut out);
    assert_eq!(out.len(), x.encoded_len());
    out
}

/// Fixture both ways: bytes → exactly `want`, `want` → exactly the bytes; and its text form.
fn route_fixture(hex: &str, want: EvpnRoute, text: &str) {
    let b = h(hex);
    assert_eq!(decode_route(&b), Ok(want.clone()));
    assert_eq!(encode_route(&want), b);
    assert_eq!(want.to_string(), text);
}

fn bad(offset: usize, field: &'static str, value: u64, expected: &'static str) -> WireError {
    WireError {
        offset,
        field,
        reason: Reason::BadValue { value, expected },
    }
}

fn truncated(offset: usize, field: &'static str, needed: usize, available: usize) -> WireError {
    WireError {
        offset,
        field,
        reason: Reason::Truncated { needed, available },
    }
}

const RD_FRR: RouteDistinguisher = RouteDistinguisher::Ipv4 {
    addr: Ipv4Addr::new(10, 255, 0, 2),
    number: 2,
};

// The FRR example of INTEROP.md / lab/README.md: GoBGP's macadv 02:bb:00:00:00:01 10.100.0.50,
// label (VNI) 100, as FRR keyed it under RD 10.255.0.2:2.
const FRR_TYPE2: &str = "
    02                          # route type 2 (MAC/IP advertisement)
    25                          # length 37
    0001 0aff0002 0002          # RD type 1: 10.255.0.2:2
    00 000000000000000000       # ESI type 0, all zero (single-homed)
    00000000                    # Ethernet tag 0
    30                          # MAC address length 48
    02bb00000001                # MAC 02:bb:00:00:00:01
    20                          # IP address length 32
    0a640032                    # IP 10.100.0.50
    000064                      # MPLS label1 = VNI 100
";

fn frr_type2() -> MacIpRoute {
    MacIpRoute {
        rd: RD_FRR,
        esi: Esi::ZERO,
        ethernet_tag: 0,
        mac: MacAddr([0x02, 0xbb, 0, 0, 0, 1]),
        ip: Some(IpAddr::V4(Ipv4Addr::new(10, 100, 0, 50))),
        label1: Label(100),
        label2: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Route fixtures
// ---------------------------------------------------------------------------------------------

#[test]
fn type1_ethernet_ad() {
    route_fixture(
        "
        01                          # route type 1 (Ethernet A-D)
        19                          # length 25
        0001 0aff0002 0002          # RD 10.255.0.2:2
        00 112233445566778899       # ESI type 0, arbitrary value
        ffffffff                    # Ethernet tag MAX-ET (per-ES route, RFC 7432 §8.2)
        000000                      # MPLS label 0
        ",
        EvpnRoute::EthernetAd(EthernetAdRoute {
            rd: RD_FRR,
            esi: Esi::Arbitrary {
                value: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99],
            },
            ethernet_tag: u32::MAX,
            label: Label(0),
        }),
        "[1]:[4294967295]:[00:11:22:33:44:55:66:77:88:99]",
    );
}

#[test]
fn type2_frr_example() {
    let want = EvpnRoute::MacIp(frr_type2());
    route_fixture(
        FRR_TYPE2,
        want.clone(),
        "[2]:[0]:[48]:[02:bb:00:00:00:01]:[32]:[10.100.0.50]",
    );
    assert_eq!(want.rd(), Some(RD_FRR));
    assert_eq!(
        want.rd().map(|r| r.to_string()).as_deref(),
        Some("10.255.0.2:2")
    );
    assert_eq!(want.route_type(), 2);
    let EvpnRoute::MacIp(m) = &want else {
        unreachable!()
    };
    assert_eq!((m.label1.vni(), m.label1.mpls_label()), (100, 6));
    let json = serde_json::to_value(&want).expect("serializes");
    assert_eq!(
        json,
        serde_json::json!({
            "type": 2, "name": "mac-ip", "rd": "10.255.0.2:2",
            "esi": "00:00:00:00:00:00:00:00:00:00", "ethernet_tag": 0,
            "mac": "02:bb:00:00:00:01", "ip": "10.100.0.50",
            "label1": 100, "label2": null, "vni": 100
        })
    );
}

#[test]
fn type2_mac_only() {
    route_fixture(
        "
        02 21                       # type 2, length 33
        0001 0aff0002 0002          # RD 10.255.0.2:2
        00 000000000000000000       # ESI 0
        00000000                    # Ethernet tag 0
        30 02bbbb000001             # MAC length 48, MAC 02:bb:bb:00:00:01
        00                          # IP address length 0 (no IP)
        000064                      # label1 100
        ",
        EvpnRoute::MacIp(MacIpRoute {
            mac: MacAddr([0x02, 0xbb, 0xbb, 0, 0, 1]),
            ip: None,
            ..frr_type2()
        }),
        "[2]:[0]:[48]:[02:bb:bb:00:00:01]",
    );
}

#[test]
fn type2_ipv6_two_labels_lacp_esi() {
    route_fixture(
        "
        02 34                       # type 2, length 52
        0000 fde9 00000064          # RD type 0: 65001:100
        01 02aa00000001 0064 00     # ESI type 1 (LACP): system MAC, port key 100, reserved 0
        0000000a                    # Ethernet tag 10
        30 02aa00000099             # MAC length 48, MAC 02:aa:00:00:00:99
        80                          # IP address length 128
        20010db8000000000000000000000050  # IP 2001:db8::50
        000064                      # label1 100 (L2 VNI)
        001388                      # label2 5000 (L3 VNI, symmetric IRB)
        ",
        EvpnRoute::MacIp(MacIpRoute {
            rd: RouteDistinguisher::As2 {
                asn: 65001,
                number: 100,
            },
            esi: Esi::Lacp {
                system_mac: MacAddr([0x02, 0xaa, 0, 0, 0, 1]),
                port_key: 100,
                reserved: 0,
            },
            ethernet_tag: 10,
            mac: MacAddr([0x02, 0xaa, 0, 0, 0, 0x99]),
            ip: Some(IpAddr::V6(Ipv6Addr::new(
                0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x50,
            ))),
            label1: Label(100),
            label2: Some(Label(5000)),
        }),
        "[2]:[10]:[48]:[02:aa:00:00:00:99]:[128]:[2001:db8::50]",
    );
}

#[test]
fn type3_inclusive_multicast() {
    let want = EvpnRoute::InclusiveMulticast(InclusiveMulticastRoute {
        rd: RD_FRR,
        ethernet_tag: 0,
        originator: IpAddr::V4(Ipv4Addr::new(10, 255, 0, 2)),
    });
    route_fixture(
        "
        03 11                       # type 3 (IMET), length 17
        0001 0aff0002 0002          # RD 10.255.0.2:2
        00000000                    # Ethernet tag 0
        20 0aff0002                 # IP length 32, originator 10.255.0.2
        ",
        want.clone(),
        "[3]:[0]:[32]:[10.255.0.2]",
    );
    assert_eq!(
        serde_json::to_value(&want).expect("serializes"),
        serde_json::json!({
            "type": 3, "name": "inclusive-multicast", "rd": "10.255.0.2:2",
            "ethernet_tag": 0, "originator": "10.255.0.2"
        })
    );
    route_fixture(
        "
        03 1d                       # type 3, length 29
        0002 fa56ea00 0064          # RD type 2: 4200000000:100
        00000064                    # Ethernet tag 100
        80 20010db8000000000000000000000002  # IP length 128, originator 2001:db8::2
        ",
        EvpnRoute::InclusiveMulticast(InclusiveMulticastRoute {
            rd: RouteDistinguisher::As4 {
                asn: 4_200_000_000,
                number: 100,
            },
            ethernet_tag: 100,
            originator: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
        }),
        "[3]:[100]:[128]:[2001:db8::2]",
    );
}

#[test]
fn type4_ethernet_segment() {
    route_fixture(
        "
        04 17                       # type 4 (ES), length 23
        0001 0aff0001 0000          # RD 10.255.0.1:0
        03 02cc00000001 000007      # ESI type 3 (MAC-based): MAC, local discriminator 7
        20 0aff0001                 # IP length 32, originator 10.255.0.1
        ",
        EvpnRoute::EthernetSegment(EthernetSegmentRoute {
            rd: RouteDistinguisher::Ipv4 {
                addr: Ipv4Addr::new(10, 255, 0, 1),
                number: 0,
            },
            esi: Esi::MacBased {
                system_mac: MacAddr([0x02, 0xcc, 0, 0, 0, 1]),
                local_discriminator: 7,
            },
            originator: IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1)),
        }),
        "[4]:[03:02:cc:00:00:00:01:00:00:07]:[32]:[10.255.0.1]",
    );
}

#[test]
fn type5_ip_prefix_v4_and_v6() {
    // GoBGP's `add prefix 10.200.0.0/24 gw 0.0.0.0 etag 0 label 5000 rd 10.255.0.1:5000`
    let want = EvpnRoute::IpPrefix(IpPrefixRoute {
        rd: RouteDistinguisher::Ipv4 {
            addr: Ipv4Addr::new(10, 255, 0, 1),
            number: 5000,
        },
        esi: Esi::ZERO,
        ethernet_tag: 0,
        prefix: IpAddr::V4(Ipv4Addr::new(10, 200, 0, 0)),
        prefix_len: 24,
        gateway: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        label: Label(5000),
    });
    route_fixture(
        "
        05 22                       # type 5 (IP prefix), length 34 (IPv4)
        0001 0aff0001 1388          # RD 10.255.0.1:5000
        00 000000000000000000       # ESI 0
        00000000                    # Ethernet tag 0
        18                          # IP prefix length 24
        0ac80000                    # prefix 10.200.0.0
        00000000                    # GW IP 0.0.0.0 (no overlay index)
        001388                      # label 5000 (L3 VNI)
        ",
        want.clone(),
        "[5]:[0]:[24]:[10.200.0.0]",
    );
    assert_eq!(
        serde_json::to_value(&want).expect("serializes"),
        serde_json::json!({
            "type": 5, "name": "ip-prefix", "rd": "10.255.0.1:5000",
            "esi": "00:00:00:00:00:00:00:00:00:00", "ethernet_tag": 0,
            "prefix": "10.200.0.0", "prefix_len": 24, "gateway": "0.0.0.0",
            "label": 5000, "vni": 5000
        })
    );
    route_fixture(
        "
        05 3a                       # type 5, length 58 (IPv6)
        0001 0aff0001 1389          # RD 10.255.0.1:5001
        00 000000000000000000       # ESI 0
        00000000                    # Ethernet tag 0
        30                          # IP prefix length 48
        20010db8000100000000000000000000  # prefix 2001:db8:1::
        20010db8000000000000000000000001  # GW IP 2001:db8::1
        001389                      # label 5001
        ",
        EvpnRoute::IpPrefix(IpPrefixRoute {
            rd: RouteDistinguisher::Ipv4 {
                addr: Ipv4Addr::new(10, 255, 0, 1),
                number: 5001,
            },
            esi: Esi::ZERO,
            ethernet_tag: 0,
            prefix: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0)),
            prefix_len: 48,
            gateway: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            label: Label(5001),
        }),
        "[5]:[0]:[48]:[2001:db8:1::]",
    );
}

#[test]
fn type9_kept_raw_and_relayed() {
    let hex = "
        09 14                       # type 9 (per-region I-PMSI A-D, RFC 9572), length 20
        0000 fde9 00000064          # RD 65001:100
        00000000                    # Ethernet tag 0
        0002fde900000001            # Region ID (8 octets)
    ";
    let value = h(hex).get(2..).map(<[u8]>::to_vec).unwrap_or_default();
    let want = EvpnRoute::Other {
        route_type: 9,
        value,
    };
    route_fixture(
        hex,
        want.clone(),
        "[9]:[0000fde900000064000000000002fde900000001]",
    );
    assert_eq!(
        want.rd(),
        Some(RouteDistinguisher::As2 {
            asn: 65001,
            number: 100
        })
    );
    assert_eq!(
        serde_json::to_value(&want).expect("serializes"),
        serde_json::json!({
            "type": 9, "name": "per-region-i-pmsi-ad", "rd": "65001:100",
            "value": "0000fde900000064000000000002fde900000001"
        })
    );
    // an unassigned type with an empty value
    route_fixture(
        "c8 00",
        EvpnRoute::Other {
            route_type: 200,
            value: vec![],
        },
        "[200]:[]",
    );
}

#[test]
fn several_routes_back_to_back() {
    let mut b = h(FRR_TYPE2);
    b.extend(h("03 11 0001 0aff0002 0002 00000000 20 0aff0002"));
    let mut r = Reader::new(&b);
    let mut got = Vec::new();
    while !r.is_empty() {
        got.push(EvpnRoute::decode(&mut r).expect("decodes").to_string());
    }
    assert_eq!(
        got,
        [
            "[2]:[0]:[48]:[02:bb:00:00:00:01]:[32]:[10.100.0.50]",
            "[3]:[0]:[32]:[10.255.0.2]"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// ESI and RD fixtures
// ---------------------------------------------------------------------------------------------

fn esi_fixture(hex: &str, want: Esi) {
    let b = h(hex);
    let mut r = Reader::new(&b);
    assert_eq!(Esi::decode(&mut r), Ok(want));
    assert!(r.is_empty());
    let mut out = Vec::new();
    want.encode(&mut out);
    assert_eq!(out, b);
    // Display is the ten octets, colon-separated
    let text: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    assert_eq!(want.to_string(), text.join(":"));
    assert_eq!(want.to_string().parse::<Esi>(), Ok(want));
    assert_eq!(want.esi_type(), b.first().copied().unwrap_or(0));
}

#[test]
fn esi_every_type() {
    // type 0: 9 arbitrary octets
    esi_fixture(
        "00 0102030405060708 09",
        Esi::Arbitrary {
            value: [1, 2, 3, 4, 5, 6, 7, 8, 9],
        },
    );
    esi_fixture("00 000000000000000000", Esi::ZERO);
    // type 1: CE LACP system MAC | port key | reserved
    esi_fixture(
        "01 02aa00000001 0064 00",
        Esi::Lacp {
            system_mac: MacAddr([2, 0xaa, 0, 0, 0, 1]),
            port_key: 100,
            reserved: 0,
        },
    );
    // type 1 with a non-zero reserved octet: kept so we relay it unchanged
    esi_fixture(
        "01 02aa00000001 0064 ff",
        Esi::Lacp {
            system_mac: MacAddr([2, 0xaa, 0, 0, 0, 1]),
            port_key: 100,
            reserved: 0xff,
        },
    );
    // type 2: root bridge MAC | root bridge priority | reserved
    esi_fixture(
        "02 02bb00000001 8000 00",
        Esi::Bridged {
            root_bridge_mac: MacAddr([2, 0xbb, 0, 0, 0, 1]),
            priority: 0x8000,
            reserved: 0,
        },
    );
    // type 3: system MAC | 3-octet local discriminator
    esi_fixture(
        "03 02cc00000001 abcdef",
        Esi::MacBased {
            system_mac: MacAddr([2, 0xcc, 0, 0, 0, 1]),
            local_discriminator: 0xabcdef,
        },
    );
    // type 4: router ID | 4-octet local discriminator | reserved
    esi_fixture(
        "04 c0000201 0000002a 00",
        Esi::RouterId {
            router_id: Ipv4Addr::new(192, 0, 2, 1),
            local_discriminator: 42,
            reserved: 0,
        },
    );
    // type 5: AS number | 4-octet local discriminator | reserved
    esi_fixture(
        "05 0000fde9 0000002a 00",
        Esi::AsBased {
            asn: 65001,
            local_discriminator: 42,
            reserved: 0,
        },
    );
    // type 7 (unassigned): raw
    esi_fixture(
        "07 0102030405060708 09",
        Esi::Unknown {
            esi_type: 7,
            value: [1, 2, 3, 4, 5, 6, 7, 8, 9],
        },
    );
    assert_eq!(
        serde_json::to_string(&Esi::ZERO).ok().as_deref(),
        Some("\"00:00:00:00:00:00:00:00:00:00\"")
    );
}

#[test]
fn rd_every_type() {
    for (hex, want, text) in [
        (
            "0000 fde9 00000064",
            RouteDistinguisher::As2 {
                asn: 65001,
                number: 100,
            },
            "65001:100",
        ),
        (
            "0001 c0000201 0064",
            RouteDistinguisher::Ipv4 {
                addr: Ipv4Addr::new(192, 0, 2, 1),
                number: 100,
            },
            "192.0.2.1:100",
        ),
        (
            "0002 fa56ea00 0064",
            RouteDistinguisher::As4 {
                asn: 4_200_000_000,
                number: 100,
            },
            "4200000000:100",
        ),
        (
            "0003 010203040506",
            RouteDistinguisher::Unknown {
                rd_type: 3,
                value: [1, 2, 3, 4, 5, 6],
            },
            "3:010203040506",
        ),
    ] {
        let b = h(hex);
        let mut r = Reader::new(&b);
        assert_eq!(RouteDistinguisher::decode(&mut r), Ok(want));
        assert!(r.is_empty());
        let mut out = Vec::new();
        want.encode(&mut out);
        assert_eq!(out, b);
        assert_eq!(want.to_string(), text);
        if want.rd_type() <= 2 {
            assert_eq!(text.parse::<RouteDistinguisher>(), Ok(want));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Extended community fixtures
// ---------------------------------------------------------------------------------------------

fn ec_fixture(hex: &str, want: ExtCommunity, text: &str, json: serde_json::Value) {
    let b: [u8; 8] = h(hex).try_into().expect("8 octets");
    assert_eq!(ExtCommunity::decode(b), want);
    assert_eq!(want.encode(), b);
    assert_eq!(want.to_string(), text);
    assert_eq!(serde_json::to_value(want).expect("serializes"), json);
}

#[test]
fn ext_community_every_variant() {
    use serde_json::json;
    ec_fixture(
        "00 02 fde9 00000064", // transitive 2-octet AS, RT, AS 65001, local 100
        ExtCommunity::RouteTarget(RouteTarget::As2 {
            asn: 65001,
            value: 100,
        }),
        "RT:65001:100",
        json!({"type": "route-target", "value": "65001:100"}),
    );
    ec_fixture(
        "01 02 c0000201 0064", // transitive IPv4, RT, 192.0.2.1, local 100
        ExtCommunity::RouteTarget(RouteTarget::Ipv4 {
            addr: Ipv4Addr::new(192, 0, 2, 1),
            value: 100,
        }),
        "RT:192.0.2.1:100",
        json!({"type": "route-target", "value": "192.0.2.1:100"}),
    );
    ec_fixture(
        "02 02 fa56ea00 0064", // transitive 4-octet AS, RT, AS 4200000000, local 100
        ExtCommunity::RouteTarget(RouteTarget::As4 {
            asn: 4_200_000_000,
            value: 100,
        }),
        "RT:4200000000:100",
        json!({"type": "route-target", "value": "4200000000:100"}),
    );
    ec_fixture(
        "03 0c 00000000 0008", // opaque, encapsulation, reserved, tunnel type 8 (VXLAN)
        ExtCommunity::vxlan_encap(),
        "ET:8",
        json!({"type": "encapsulation", "tunnel_type": 8, "tunnel": "vxlan"}),
    );
    ec_fixture(
        "03 0c 00000001 000b", // reserved octets non-zero are kept; tunnel type 11 (MPLS)
        ExtCommunity::Encapsulation {
            tunnel_type: 11,
            reserved: 1,
        },
        "ET:11",
        json!({"type": "encapsulation", "tunnel_type": 11}),
    );
    ec_fixture(
        "03 0d 000000000000", // opaque, default gateway, reserved value
        ExtCommunity::DefaultGateway { value: [0; 6] },
        "Default Gateway",
        json!({"type": "default-gateway"}),
    );
    ec_fixture(
        "06 00 00 00 00000007", // EVPN, MAC mobility, flags 0, reserved, seq 7
        ExtCommunity::mac_mobility_seq(7, false),
        "MM:7",
        json!({"type": "mac-mobility", "seq": 7, "sticky": false}),
    );
    ec_fixture(
        "06 00 01 00 00000009", // EVPN, MAC mobility, flags S (sticky), seq 9
        ExtCommunity::MacMobility {
            flags: 1,
            reserved: 0,
            seq: 9,
        },
        "MM:9, sticky MAC",
        json!({"type": "mac-mobility", "seq": 9, "sticky": true}),
    );
    ec_fixture(
        "06 01 01 0000 000064", // EVPN, ESI label, flags single-active, reserved, label 100
        ExtCommunity::EsiLabel {
            flags: 1,
            reserved: 0,
            label: Label(100),
        },
        "ESI-label-Rt:SA:100",
        json!({"type": "esi-label", "single_active": true, "label": 100}),
    );
    ec_fixture(
        "06 02 02aa00000001", // EVPN, ES-Import RT, MAC
        ExtCommunity::EsImportRt {
            mac: MacAddr([2, 0xaa, 0, 0, 0, 1]),
        },
        "ES-Import-Rt:02:aa:00:00:00:01",
        json!({"type": "es-import-rt", "mac": "02:aa:00:00:00:01"}),
    );
    ec_fixture(
        "06 03 02aaff000001", // EVPN, Router's MAC (RFC 9135)
        ExtCommunity::RoutersMac {
            mac: MacAddr([2, 0xaa, 0xff, 0, 0, 1]),
        },
        "Rmac:02:aa:ff:00:00:01",
        json!({"type": "router-mac", "mac": "02:aa:ff:00:00:01"}),
    );
    ec_fixture(
        "06 06 02 0000 000064", // EVPN, DF election, RSV 0 + alg 2 (pref), bitmap 0, pref 100
        ExtCommunity::DfElection {
            reserved_bits: 0,
            algorithm: 2,
            capabilities: 0,
            reserved: [0, 0, 100],
        },
        "DF: (alg: 2, pref: 100)",
        json!({"type": "df-election", "algorithm": 2, "capabilities": 0, "preference": 100}),
    );
    ec_fixture(
        "06 06 e1 8000 ff0000", // RSV bits 111 + alg 1 (HRW), bitmap D bit, odd reserved
        ExtCommunity::DfElection {
            reserved_bits: 7,
            algorithm: 1,
            capabilities: 0x8000,
            reserved: [0xff, 0, 0],
        },
        "DF: (alg: 1, bmap: 0x8000 pref: 0)",
        json!({"type": "df-election", "algorithm": 1, "capabilities": 32768, "preference": 0}),
    );
    ec_fixture(
        "06 08 01 0000000000", // EVPN, ARP/ND, flags R
        ExtCommunity::ArpNd {
            flags: 1,
            reserved: [0; 5],
        },
        "ND:Router Flag",
        json!({"type": "arp-nd", "router": true, "override": false, "immutable": false}),
    );
    ec_fixture(
        "06 08 0a 0000000001", // flags I + O, non-zero reserved kept
        ExtCommunity::ArpNd {
            flags: 0x0a,
            reserved: [0, 0, 0, 0, 1],
        },
        "ND:Override Flag, Immutable Flag",
        json!({"type": "arp-nd", "router": false, "override": true, "immutable": true}),
    );
    ec_fixture(
        "06 04 0000 05dc 0000", // EVPN Layer 2 Attributes (RFC 8214): not typed here
        ExtCommunity::Unknown([6, 4, 0, 0, 5, 0xdc, 0, 0]),
        "unknown:06:04:000005dc0000",
        json!({"type": "unknown", "value": "0604000005dc0000"}),
    );
    ec_fixture(
        "40 02 fde9 00000064", // non-transitive 2-octet AS with RT sub-type: not an RT
        ExtCommunity::Unknown([0x40, 2, 0xfd, 0xe9, 0, 0, 0, 100]),
        "unknown:40:02:fde900000064",
        json!({"type": "unknown", "value": "4002fde900000064"}),
    );
}

#[test]
fn ext_community_helpers() {
    let list = [
        ExtCommunity::route_target(RouteTarget::As2 {
            asn: 65001,
            value: 100,
        }),
        ExtCommunity::vxlan_encap(),
        ExtCommunity::mac_mobility_seq(9, true),
    ];
    assert_eq!(mac_mobility(&list), Some((9, true)));
    assert!(list.get(2).is_some_and(ExtCommunity::sticky));
    assert!(!ExtCommunity::mac_mobility_seq(9, false).sticky());
    assert_eq!(mac_mobility(&list[..2]), None);
    let s: Vec<String> = list.iter().map(ToString::to_string).collect();
    assert_eq!(s.join(" "), "RT:65001:100 ET:8 MM:9, sticky MAC");
}

// ---------------------------------------------------------------------------------------------
// Malformed input: exact errors
// ---------------------------------------------------------------------------------------------

/// The FRR type-2 fixture with one octet replaced.
fn frr_type2_with(at: usize, value: u8) -> Vec<u8> {
    let mut b = h(FRR_TYPE2);
    if let Some(x) = b.get_mut(at) {
        *x = value;
    }
    b
}

#[test]
fn type2_mac_length_40() {
    // offsets: type 0, length 1, RD 2..10, ESI 10..20, tag 20..24, MAC length 24
    let e = decode_route(&frr_type2_with(24, 40));
    assert_eq!(e, Err(bad(24, "MAC address length", 40, "48")));
    assert_eq!(
        e.err().map(|e| e.to_string()).as_deref(),
        Some("at byte 24: MAC address length: value 40 is invalid, expected 48")
    );
}

#[test]
fn type2_ip_length_24() {
    // IP address length is at 24 + 1 + 6 = 31
    assert_eq!(
        decode_route(&frr_type2_with(31, 24)),
        Err(bad(31, "IP address length", 24, "0, 32 or 128"))
    );
}

#[test]
fn type2_length_too_short() {
    // length 36 (one short) and the last octet gone: label1 at 36 has only 2 octets
    let mut b = frr_type2_with(1, 36);
    b.pop();
    assert_eq!(decode_route(&b), Err(truncated(36, "MPLS label1", 3, 2)));
    // length 20: the route ends inside the Ethernet tag (RD 8 + ESI 10 + 2 of 4)
    let b = frr_type2_with(1, 20);
    let mut r = Reader::new(&b);
    assert_eq!(
        EvpnRoute::decode(&mut r),
        Err(truncated(20, "Ethernet tag ID", 4, 2))
    );
}

#[test]
fn type2_length_too_long() {
    // one extra octet after label1: not a whole label2
    let mut b = frr_type2_with(1, 38);
    b.push(0);
    assert_eq!(decode_route(&b), Err(truncated(39, "MPLS label2", 3, 1)));
    // four extra octets: label2 then one octet nobody claims
    let mut b = frr_type2_with(1, 41);
    b.extend([0, 0, 1, 0xee]);
    assert_eq!(
        decode_route(&b),
        Err(WireError {
            offset: 42,
            field: "EVPN route",
            reason: Reason::Trailing { extra: 1 }
        })
    );
}

#[test]
fn type5_length_35() {
    let mut b = h("05 23 0001 0aff0001 1388 00 000000000000000000 00000000 18 0ac80000 00000000");
    b.extend([0, 0x13, 0x88, 0]);
    assert_eq!(b.len(), 2 + 35);
    assert_eq!(
        decode_route(&b),
        Err(bad(
            1,
            "EVPN route length",
            35,
            "34 (IPv4) or 58 (IPv6) for an IP Prefix route"
        ))
    );
}

#[test]
fn type5_prefix_length_33() {
    // IP prefix length at 2 + 8 + 10 + 4 = 24
    let b =
        h("05 22 0001 0aff0001 1388 00 000000000000000000 00000000 21 0ac80000 00000000 001388");
    assert_eq!(
        decode_route(&b),
        Err(bad(24, "IP prefix length", 33, "0..=32"))
    );
}

#[test]
fn type3_ip_length_16() {
    // IP length at 2 + 8 + 4 = 14
    let b = h("03 0f 0001 0aff0002 0002 00000000 10 0aff");
    assert_eq!(
        decode_route(&b),
        Err(bad(
            14,
            "originating router's IP address length",
            16,
            "32 or 128"
        ))
    );
}

#[test]
fn truncated_rd() {
    let b = h("03 05 0001 0aff00");
    assert_eq!(
        decode_route(&b),
        Err(truncated(2, "route distinguisher", 8, 5))
    );
    // and offsets stay absolute inside a larger message
    let mut r = Reader::with_base(&b, 100);
    assert_eq!(
        EvpnRoute::decode(&mut r),
        Err(truncated(102, "route distinguisher", 8, 5))
    );
}

#[test]
fn route_length_past_buffer() {
    let b = h("02 25 0001 0aff0002 0002 0000");
    assert_eq!(decode_route(&b), Err(truncated(2, "EVPN route", 37, 10)));
    assert_eq!(
        decode_route(&[2]),
        Err(truncated(1, "EVPN route length", 1, 0))
    );
    assert_eq!(
        decode_route(&[]),
        Err(truncated(0, "EVPN route type", 1, 0))
    );
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn generate<'a, T: Arbitrary<'a>>(bytes: &'a [u8]) -> Option<T> {
    T::arbitrary(&mut Unstructured::new(bytes)).ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn evpn_route_roundtrip(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Some(x) = generate::<EvpnRoute>(&bytes) {
            let b = encode_route(&x);
            prop_assert_eq!(decode_route(&b), Ok(x.clone()));
            // the text form never panics and always starts with the route type
            let head = format!("[{}]", x.route_type());
            prop_assert!(x.to_string().starts_with(&head));
            prop_assert!(serde_json::to_string(&x).is_ok());
        }
    }

    #[test]
    fn esi_roundtrip(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
        if let Some(x) = generate::<Esi>(&bytes) {
            let mut out = Vec::new();
            x.encode(&mut out);
            prop_assert_eq!(Esi::decode(&mut Reader::new(&out)), Ok(x));
            prop_assert_eq!(x.to_string().parse::<Esi>(), Ok(x));
        }
    }

    #[test]
    fn rd_roundtrip(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
        if let Some(x) = generate::<RouteDistinguisher>(&bytes) {
            let mut out = Vec::new();
            x.encode(&mut out);
            prop_assert_eq!(RouteDistinguisher::decode(&mut Reader::new(&out)), Ok(x));
            // text round trip, except the AS4-with-small-ASN form the text cannot tell apart
            let small_as4 = matches!(x, RouteDistinguisher::As4 { asn, .. } if asn <= 0xffff);
            if x.rd_type() <= 2 && !small_as4 {
                prop_assert_eq!(x.to_string().parse::<RouteDistinguisher>(), Ok(x));
            }
        }
    }

    #[test]
    fn ext_community_roundtrip(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
        if let Some(x) = generate::<ExtCommunity>(&bytes) {
            prop_assert_eq!(ExtCommunity::decode(x.encode()), x);
            prop_assert!(!x.to_string().is_empty());
        }
    }

    #[test]
    fn ext_community_any_octets_reencode(b in any::<[u8; 8]>()) {
        prop_assert_eq!(ExtCommunity::decode(b).encode(), b);
    }

    /// Any bytes: decode never panics; on success encode gives back exactly what it consumed.
    #[test]
    fn decode_any_prefix(
        first in prop_oneof![1u8..=5, any::<u8>()],
        rest in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let mut b = vec![first];
        b.extend(rest);
        // bias the length octet towards the real lengths so typed decoders get exercised
        if let Some(l) = b.get_mut(1) {
            let choices = [25u8, 33, 37, 52, 17, 29, 23, 35, 34, 58];
            *l = choices.get(usize::from(*l) % 16).copied().unwrap_or(*l);
        }
        let mut r = Reader::new(&b);
        if let Ok(x) = EvpnRoute::decode(&mut r) {
            let consumed = b.get(..r.offset()).unwrap_or_default();
            prop_assert_eq!(encode_route(&x), consumed);
        }
    }

    /// Every strict prefix of a valid route's encoding fails to decode; the whole decodes.
    #[test]
    fn truncations_fail(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Some(x) = generate::<EvpnRoute>(&bytes) {
            let b = encode_route(&x);
            for n in 0..b.len() {
                let cut = b.get(..n).unwrap_or_default();
                prop_assert!(EvpnRoute::decode(&mut Reader::new(cut)).is_err());
            }
        }
    }
}
