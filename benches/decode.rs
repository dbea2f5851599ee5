//! UPDATE decode throughput, vmmi vs netgauze-bgp-pkt 0.13, on the same bytes.
//!
//! Input: 100 UPDATEs shaped like the EVPN type-2 advertisements FRR/GoBGP send: ORIGIN IGP,
//! AS_PATH (AS 65001), EXTENDED_COMMUNITIES (RT 65001:100, Encapsulation VXLAN, MAC Mobility
//! seq = message index) and MP_REACH_NLRI (L2VPN EVPN, 4-octet next hop) packed with as many
//! type-2 MAC+IPv4 routes as fit in 4096 octets (RD type 1, ESI 0, tag 0, label = VNI 100,
//! distinct MACs). Throughput is reported in NLRI (EVPN routes) per second.
//!
//! Groups: `vmmi/decode+validate` (`Message::decode` + RFC 7606 `validate`), `vmmi/decode`,
//! `netgauze/decode` (`BgpMessage::parse`, asn4, no ADD-PATH, lenient). After criterion, `main`
//! prints a summary (NLRI/s and the vmmi/netgauze ratio) from its own `Instant` timing.
//!
//! `cargo bench --bench decode` runs everything; without `--bench` (as `cargo test --benches`
//! runs it) it only decodes each message once with each codec and checks the results.

#![allow(clippy::disallowed_methods)] // a benchmark measures real time

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use netgauze_bgp_pkt::BgpMessage;
use netgauze_bgp_pkt::path_attribute::{MpReach as NgMpReach, PathAttributeValue};
use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;
use netgauze_parse_utils::reader::SliceReader;
use netgauze_parse_utils::traits::ParseFromWithOneInput;
use vmmi::wire::MacAddr;
use vmmi::wire::bgp::attr::{AsSegment, AttrValue, MpNextHop, MpReach, PathAttr, code};
use vmmi::wire::bgp::evpn::{Esi, EvpnRoute, Label, MacIpRoute};
use vmmi::wire::bgp::extcomm::{ExtCommunity, RouteTarget};
use vmmi::wire::bgp::nlri::{EvpnNlri, NlriList};
use vmmi::wire::bgp::rd::RouteDistinguisher;
use vmmi::wire::bgp::validate::{Action, ValidateCtx, validate};
use vmmi::wire::bgp::{BgpCtx, Family, Message, UpdateMsg};

const MESSAGES: usize = 100;
const MAX_LEN: usize = 4096;

fn ctx() -> BgpCtx {
    BgpCtx {
        four_octet_as: true,
        extended_message: false,
        add_path_rx: Vec::new(),
    }
}

fn vctx() -> ValidateCtx {
    ValidateCtx {
        ibgp: false,
        four_octet_as: true,
        families: vec![Family::IPV4_UNICAST, Family::L2VPN_EVPN],
        peer_as: 65001,
        enforce_first_as: true,
        confed_peer: false,
    }
}

fn ng_ctx() -> BgpParsingContext {
    BgpParsingContext::new(
        true,
        Default::default(),
        Default::default(),
        false,
        false,
        false,
        false,
    )
}

fn route(n: u32) -> EvpnNlri {
    let [_, a, b, c] = n.to_be_bytes();
    EvpnNlri {
        path_id: None,
        route: EvpnRoute::MacIp(MacIpRoute {
            rd: RouteDistinguisher::Ipv4 {
                addr: Ipv4Addr::new(10, 255, 0, 1),
                number: 100,
            },
            esi: Esi::ZERO,
            ethernet_tag: 0,
            mac: MacAddr([0x02, 0x42, 0xac, a, b, c]),
            ip: Some(IpAddr::V4(Ipv4Addr::new(10, a, b, c))),
            label1: Label(100),
            label2: None,
        }),
    }
}

fn update(seq: u32, routes: Vec<EvpnNlri>) -> Message {
    Message::Update(UpdateMsg {
        attrs: vec![
            PathAttr::new(code::ORIGIN, AttrValue::Origin(0)),
            PathAttr::new(
                code::AS_PATH,
                AttrValue::AsPath(vec![AsSegment {
                    seg_type: 2,
                    asns: vec![65001],
                }]),
            ),
            PathAttr::new(
                code::EXTENDED_COMMUNITIES,
                AttrValue::ExtCommunities(vec![
                    ExtCommunity::route_target(RouteTarget::As2 {
                        asn: 65001,
                        value: 100,
                    }),
                    ExtCommunity::vxlan_encap(),
                    ExtCommunity::mac_mobility_seq(seq, false),
                ]),
            ),
            PathAttr::new(
                code::MP_REACH_NLRI,
                AttrValue::MpReach(MpReach {
                    family: Family::L2VPN_EVPN,
                    next_hop: MpNextHop::Ipv4(Ipv4Addr::new(10, 99, 0, 1)),
                    reserved: 0,
                    nlri: NlriList::Evpn(routes),
                }),
            ),
        ],
        ..UpdateMsg::default()
    })
}

/// `MESSAGES` full UPDATEs (wire bytes) and the total number of NLRI in them.
fn corpus() -> (Vec<Vec<u8>>, u64) {
    let c = ctx();
    let mut next = 1u32;
    let mut out = Vec::with_capacity(MESSAGES);
    let mut total = 0u64;
    for seq in 0..MESSAGES as u32 {
        let mut routes = Vec::new();
        let mut bytes = update(seq, routes.clone()).to_bytes(&c);
        loop {
            routes.push(route(next));
            let b = update(seq, routes.clone()).to_bytes(&c);
            if b.len() > MAX_LEN {
                routes.pop();
                break;
            }
            next += 1;
            bytes = b;
        }
        total += routes.len() as u64;
        out.push(bytes);
    }
    (out, total)
}

fn vmmi_decode(msgs: &[Vec<u8>], c: &BgpCtx) -> usize {
    let mut n = 0;
    for m in msgs {
        if let Ok((Message::Update(u), _)) = Message::decode(black_box(m), c) {
            n += u.mp_reach().map_or(0, |r| r.nlri.len());
            black_box(&u);
        }
    }
    n
}

fn vmmi_decode_validate(msgs: &[Vec<u8>], c: &BgpCtx, v: &ValidateCtx) -> usize {
    let mut n = 0;
    for m in msgs {
        if let Ok((Message::Update(u), _)) = Message::decode(black_box(m), c) {
            let verdict = validate(&u, v);
            if verdict.action == Action::None {
                n += u.mp_reach().map_or(0, |r| r.nlri.len());
            }
            black_box(&verdict);
        }
    }
    n
}

fn netgauze_decode(msgs: &[Vec<u8>]) -> usize {
    let mut n = 0;
    for m in msgs {
        let mut cx = ng_ctx();
        let mut cur = SliceReader::new(black_box(m));
        if let Ok(BgpMessage::Update(u)) = BgpMessage::parse(&mut cur, &mut cx) {
            for a in u.path_attributes() {
                if let PathAttributeValue::MpReach(NgMpReach::L2Evpn { nlri, .. }) = a.value() {
                    n += nlri.len();
                }
            }
            black_box(&u);
        }
    }
    n
}

/// NLRI per second of `f` over the corpus, timed for about `budget`.
fn rate(budget: Duration, nlri: u64, mut f: impl FnMut() -> usize) -> f64 {
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < budget {
        black_box(f());
        rounds += 1;
    }
    (rounds * nlri) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let (msgs, nlri) = corpus();
    let c = ctx();
    let v = vctx();
    let total = nlri as usize;
    // every codec must see every route, or the comparison is meaningless
    assert_eq!(vmmi_decode(&msgs, &c), total);
    assert_eq!(vmmi_decode_validate(&msgs, &c, &v), total);
    assert_eq!(netgauze_decode(&msgs), total);
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "decode bench smoke run: {} UPDATEs, {nlri} NLRI decoded by both",
            msgs.len()
        );
        return;
    }
    let bytes: usize = msgs.iter().map(Vec::len).sum();
    println!(
        "corpus: {} UPDATEs, {nlri} EVPN type-2 NLRI ({:.1} per UPDATE), {bytes} octets",
        msgs.len(),
        nlri as f64 / msgs.len() as f64
    );

    let mut crit = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    {
        let mut g = crit.benchmark_group("vmmi");
        g.throughput(Throughput::Elements(nlri));
        g.bench_function("decode+validate", |b| {
            b.iter(|| vmmi_decode_validate(&msgs, &c, &v))
        });
        g.bench_function("decode", |b| b.iter(|| vmmi_decode(&msgs, &c)));
        g.finish();
    }
    {
        let mut g = crit.benchmark_group("netgauze");
        g.throughput(Throughput::Elements(nlri));
        g.bench_function("decode", |b| b.iter(|| netgauze_decode(&msgs)));
        g.finish();
    }
    crit.final_summary();

    let budget = Duration::from_secs(2);
    let dv = rate(budget, nlri, || vmmi_decode_validate(&msgs, &c, &v));
    let d = rate(budget, nlri, || vmmi_decode(&msgs, &c));
    let ng = rate(budget, nlri, || netgauze_decode(&msgs));
    println!("\nsummary ({nlri} NLRI per round, {budget:?} each):");
    println!("{:<24} {:>14} {:>16}", "", "NLRI/s", "vs netgauze");
    for (name, r) in [
        ("vmmi/decode+validate", dv),
        ("vmmi/decode", d),
        ("netgauze/decode", ng),
    ] {
        println!("{name:<24} {r:>14.0} {:>15.2}x", r / ng);
    }
}
