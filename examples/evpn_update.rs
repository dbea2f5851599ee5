//! Build the UPDATE a VTEP sends when a VM appears (an EVPN type-2 MAC/IP route with its VNI,
//! route target, VXLAN encapsulation and MAC Mobility sequence), encode it, decode it back and
//! run the RFC 7606 checks — the codec round trip every vmmi component relies on.
//!
//! `cargo run --example evpn_update` prints the hex (feed it to `vmmi decode --hex`) and the
//! decoded JSON.

use std::net::{IpAddr, Ipv4Addr};

use vmmi::wire::MacAddr;
use vmmi::wire::bgp::attr::{
    AsSegment, AttrValue, MpNextHop, MpReach, PathAttr, code, origin, segment,
};
use vmmi::wire::bgp::evpn::{Esi, EvpnRoute, Label, MacIpRoute};
use vmmi::wire::bgp::extcomm::{ExtCommunity, RouteTarget};
use vmmi::wire::bgp::nlri::{EvpnNlri, NlriList};
use vmmi::wire::bgp::rd::RouteDistinguisher;
use vmmi::wire::bgp::validate::{ValidateCtx, validate};
use vmmi::wire::bgp::{BgpCtx, Family, Message, UpdateMsg};

fn main() {
    let vtep = Ipv4Addr::new(192, 0, 2, 1);
    let vni = 100;
    // RFC 7432 §7.2 MAC/IP route; with VXLAN the label field carries the VNI (RFC 8365 §5.1.3)
    let route = EvpnRoute::MacIp(MacIpRoute {
        rd: RouteDistinguisher::Ipv4 {
            addr: vtep,
            number: 1,
        },
        esi: Esi::ZERO,
        ethernet_tag: 0,
        mac: MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]),
        ip: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 10))),
        label1: Label(vni),
        label2: None,
    });
    let update = UpdateMsg {
        attrs: vec![
            PathAttr::new(code::ORIGIN, AttrValue::Origin(origin::IGP)),
            PathAttr::new(
                code::AS_PATH,
                AttrValue::AsPath(vec![AsSegment {
                    seg_type: segment::AS_SEQUENCE,
                    asns: vec![65001],
                }]),
            ),
            PathAttr::new(
                code::EXTENDED_COMMUNITIES,
                AttrValue::ExtCommunities(vec![
                    // RFC 8365 §5.1.2.1 auto-derived RT: ASN:VNI
                    ExtCommunity::route_target(RouteTarget::As2 {
                        asn: 65001,
                        value: vni,
                    }),
                    ExtCommunity::vxlan_encap(),
                    // the VM moved once before: sequence 1 (RFC 7432 §15)
                    ExtCommunity::mac_mobility_seq(1, false),
                ]),
            ),
            PathAttr::new(
                code::MP_REACH_NLRI,
                AttrValue::MpReach(MpReach {
                    family: Family::L2VPN_EVPN,
                    next_hop: MpNextHop::Ipv4(vtep),
                    reserved: 0,
                    nlri: NlriList::Evpn(vec![EvpnNlri {
                        path_id: None,
                        route,
                    }]),
                }),
            ),
        ],
        ..UpdateMsg::default()
    };
    let ctx = BgpCtx {
        four_octet_as: true,
        ..BgpCtx::default()
    };
    let vctx = ValidateCtx {
        ibgp: true,
        four_octet_as: true,
        families: vec![Family::L2VPN_EVPN],
        ..Default::default()
    };
    let verdict = validate(&update, &vctx);
    let msg = Message::Update(update);
    let bytes = msg.to_bytes(&ctx);
    let (back, _) = Message::decode(&bytes, &ctx).expect("our own UPDATE decodes");
    assert_eq!(back, msg);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    println!("{hex}");
    println!(
        "{}",
        serde_json::to_string_pretty(&back).unwrap_or_default()
    );
    println!(
        "RFC 7606 verdict: {:?} ({} findings)",
        verdict.action,
        verdict.findings.len()
    );
}
