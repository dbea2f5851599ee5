//! EVPN services beyond MAC mobility, on the testkit's virtual clock: import filtering by Route
//! Target, symmetric IRB (L3 VNI: MAC+IP with Label2 and Router's MAC → host route; type 5 →
//! VRF route), the anycast gateway (Default Gateway community, never a mobility claim), and
//! what exactly goes on the wire for each locally originated route.

use std::net::IpAddr;
use std::time::Duration;

use vmmi::config::{RtCfg, VniCfg, VniKind};
use vmmi::dataplane::LearnEvent;
use vmmi::evpn::EvpnCfg;
use vmmi::testkit::{Net, addr};
use vmmi::wire::bgp::afi::Family;
use vmmi::wire::bgp::attr::{AttrValue, PmsiTunnel, PmsiTunnelId};
use vmmi::wire::bgp::evpn::{EvpnRoute, Label};
use vmmi::wire::bgp::extcomm::{ExtCommunity, RouteTarget};
use vmmi::wire::bgp::message::Message;
use vmmi::wire::bgp::nlri::NlriList;
use vmmi::wire::types::MacAddr;

const M: MacAddr = MacAddr([0x02, 0, 0, 0, 0x05, 0x05]);

fn l2(vni: u32, l3: Option<u32>) -> VniCfg {
    VniCfg {
        vni,
        l3_vni: l3,
        gateway_ip: l3.map(|_| "10.1.0.1/24".parse().unwrap()),
        ..VniCfg::default()
    }
}

fn l3(vni: u32, prefixes: &[&str]) -> VniCfg {
    VniCfg {
        vni,
        kind: VniKind::L3,
        prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
        ..VniCfg::default()
    }
}

fn two(f0: impl Fn(&mut EvpnCfg), f1: impl Fn(&mut EvpnCfg)) -> Net {
    let mut net = Net::new();
    net.add(65000);
    net.add(65000);
    net.peer(0, 1, &[Family::L2VPN_EVPN], |_| {});
    net.peer(1, 0, &[Family::L2VPN_EVPN], |_| {});
    net.enable_evpn(0, f0);
    net.enable_evpn(1, f1);
    net.run(Duration::from_secs(10));
    net
}

fn learn(net: &mut Net, i: usize, vni: u32, ip: Option<&str>) {
    net.learn(
        i,
        LearnEvent::Learned {
            vni,
            mac: M,
            ip: ip.map(|s| s.parse().unwrap()),
            sticky: false,
        },
    );
}

/// Every EVPN route node `i` received in MP_REACH, with the UPDATE's extended communities and
/// PMSI attribute.
fn received(net: &Net, i: usize) -> Vec<(EvpnRoute, Vec<ExtCommunity>, Option<PmsiTunnel>)> {
    let mut out = Vec::new();
    for m in net.messages(i) {
        let Message::Update(u) = m else { continue };
        let mut ec = Vec::new();
        let mut pmsi = None;
        let mut routes = Vec::new();
        for a in &u.attrs {
            match &a.value {
                AttrValue::ExtCommunities(v) => ec = v.clone(),
                AttrValue::PmsiTunnel(p) => pmsi = Some(p.clone()),
                AttrValue::MpReach(r) => {
                    if let NlriList::Evpn(v) = &r.nlri {
                        routes.extend(v.iter().map(|x| x.route.clone()));
                    }
                }
                _ => {}
            }
        }
        for r in routes {
            out.push((r, ec.clone(), pmsi.clone()));
        }
    }
    out
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn type3_carries_pmsi_ingress_replication_with_the_vni() {
    let net = two(
        |c| c.vnis = vec![l2(100, None)],
        |c| c.vnis = vec![l2(100, None)],
    );
    let got = received(&net, 1);
    let (r, ec, pmsi) = got
        .iter()
        .find(|(r, _, _)| matches!(r, EvpnRoute::InclusiveMulticast(_)))
        .expect("type 3");
    let EvpnRoute::InclusiveMulticast(m) = r else {
        unreachable!()
    };
    assert_eq!(m.rd.to_string(), "10.0.0.1:100", "auto RD router-id:VNI");
    assert_eq!(m.originator, addr(0));
    // RFC 8365 §5.1.3: IR, label = VNI, endpoint = VTEP
    let p = pmsi.clone().expect("PMSI attribute");
    assert_eq!(p.tunnel_type, PmsiTunnel::INGRESS_REPLICATION);
    assert_eq!(p.label, Label(100));
    assert_eq!(p.tunnel_id, PmsiTunnelId::Ip(addr(0)));
    assert!(ec.contains(&ExtCommunity::route_target(RouteTarget::As2 {
        asn: 65000,
        value: 100
    })));
    assert!(ec.contains(&ExtCommunity::vxlan_encap()));
    assert!(net.nodes[1].dp.flood.contains(&(100, addr(0))));
}

#[test]
fn routes_without_a_matching_route_target_are_not_imported() {
    // node 1 imports only RT 65000:200 into its VNI 100: node 0's 65000:100 does not match
    let mut net = two(
        |c| c.vnis = vec![l2(100, None)],
        |c| {
            let mut v = l2(100, None);
            v.import_rt = vec![RtCfg::Set("65000:200".into())];
            c.vnis = vec![v];
        },
    );
    learn(&mut net, 0, 100, None);
    assert!(net.nodes[1].dp.fdb.is_empty());
    assert!(net.nodes[1].dp.flood.is_empty());
    // the route is in node 1's RIB (relayed, shown) but not in its MAC-VRF
    let rib = net.nodes[1].speaker.rib();
    assert!(rib.len(Family::L2VPN_EVPN) >= 2);
    assert_eq!(net.evpn(1).fdb(100, M), None);
    // and node 0 (auto import *:100) imports node 1's type 3 with export RT 65000:100
    assert!(net.nodes[0].dp.flood.contains(&(100, addr(1))));
}

#[test]
fn symmetric_irb_host_routes_and_type5_prefixes_reach_the_vrf() {
    let cfg = |c: &mut EvpnCfg| c.vnis = vec![l2(100, Some(5000)), l3(5000, &["192.168.50.0/24"])];
    let mut net = two(cfg, cfg);
    learn(&mut net, 0, 100, Some("10.1.0.5"));
    // the MAC+IP route: Label2 = L3 VNI, the L3 VNI's RT and our Router's MAC (RFC 9135 §8.1)
    let got = received(&net, 1);
    let (r, ec, _) = got
        .iter()
        .find(|(r, _, _)| matches!(r, EvpnRoute::MacIp(m) if m.mac == M && m.ip.is_some()))
        .expect("MAC+IP route");
    let EvpnRoute::MacIp(m) = r else {
        unreachable!()
    };
    assert_eq!((m.label1, m.label2), (Label(100), Some(Label(5000))));
    let rmac0 = MacAddr([0x02, 0x00, 10, 0, 0, 1]);
    assert!(
        ec.contains(&ExtCommunity::RoutersMac { mac: rmac0 }),
        "{ec:?}"
    );
    for v in [100, 5000] {
        assert!(ec.contains(&ExtCommunity::route_target(RouteTarget::As2 {
            asn: 65000,
            value: v
        })));
    }
    // the MAC-only route has no Label2 and no Router's MAC
    let (_, ec_mac, _) = got
        .iter()
        .find(|(r, _, _)| matches!(r, EvpnRoute::MacIp(m) if m.mac == M && m.ip.is_none()))
        .expect("MAC route");
    assert!(
        !ec_mac
            .iter()
            .any(|c| matches!(c, ExtCommunity::RoutersMac { .. }))
    );

    let dp = &net.nodes[1].dp;
    // L2: FDB + suppression; L3: host route to node 0 with its Router's MAC
    assert_eq!(dp.vtep_of(100, M), Some(addr(0)));
    assert_eq!(dp.neigh.get(&(100, ip("10.1.0.5"))), Some(&M));
    assert_eq!(
        dp.routes.get(&(5000, "10.1.0.5/32".parse().unwrap())),
        Some(&(addr(0), Some(rmac0)))
    );
    // type 5: the configured prefix and the L2 VNI's gateway subnet, from each side; each side
    // installs the other's (its own are connected)
    assert_eq!(
        dp.routes.get(&(5000, "192.168.50.0/24".parse().unwrap())),
        None,
        "both originate it: own prefix wins"
    );
    let t5: Vec<_> = got
        .iter()
        .filter_map(|(r, ec, _)| match r {
            EvpnRoute::IpPrefix(p) => Some((p.prefix, p.prefix_len, p.label, ec.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(t5.len(), 2, "{t5:?}");
    for (_, _, label, ec) in &t5 {
        assert_eq!(*label, Label(5000));
        assert!(ec.contains(&ExtCommunity::RoutersMac { mac: rmac0 }));
    }

    // the anycast gateway: advertised with the Default Gateway community by both; never a
    // MAC mobility claim, never in the FDB
    let gw = vmmi::evpn::vni::default_gateway_mac(100);
    let (_, ec_gw, _) = got
        .iter()
        .find(|(r, _, _)| matches!(r, EvpnRoute::MacIp(m) if m.mac == gw))
        .expect("gateway route");
    assert!(
        ec_gw
            .iter()
            .any(|c| matches!(c, ExtCommunity::DefaultGateway { .. }))
    );
    assert_eq!(dp.vtep_of(100, gw), None);
    assert!(
        net.evpn(1)
            .mac_views(Some(100), net.now)
            .iter()
            .all(|m| m.mac != gw)
    );

    // the host route follows the MAC when it moves (and the old one is gone)
    learn(&mut net, 1, 100, Some("10.1.0.5"));
    let dp0 = &net.nodes[0].dp;
    let rmac1 = MacAddr([0x02, 0x00, 10, 0, 0, 2]);
    assert_eq!(
        dp0.routes.get(&(5000, "10.1.0.5/32".parse().unwrap())),
        Some(&(addr(1), Some(rmac1)))
    );
    assert!(
        !net.nodes[1]
            .dp
            .routes
            .contains_key(&(5000, "10.1.0.5/32".parse().unwrap())),
        "node 1 has it locally now"
    );
}

#[test]
fn a_remote_only_type5_prefix_is_installed_and_removed() {
    let mut net = two(
        |c| c.vnis = vec![l3(5000, &["172.16.0.0/16"])],
        |c| c.vnis = vec![l3(5000, &[])],
    );
    let p = "172.16.0.0/16".parse().unwrap();
    assert_eq!(
        net.nodes[1].dp.routes.get(&(5000, p)),
        Some(&(addr(0), Some(MacAddr([0x02, 0x00, 10, 0, 0, 1]))))
    );
    // node 0 loses its session: node 1's GR helper keeps it stale, then sweeps it
    net.restart(0, false);
    net.nodes[0].evpn = None;
    net.run(Duration::from_secs(400));
    assert_eq!(net.nodes[1].dp.routes.get(&(5000, p)), None);
}

/// Found by the `evpn_layer` fuzz target (fuzz/regressions/evpn_layer-neigh-owner.bin): an IP
/// address claimed by two MACs (a VM replaced under the same address). The suppression entry
/// is per address; the MAC that gives it up must not delete the other MAC's entry.
#[test]
fn an_address_moving_between_macs_keeps_its_suppression_entry() {
    let mut net = Net::evpn_mesh(3, |c| c.vnis = vec![l2(100, None)]);
    let other = MacAddr([0x02, 0, 0, 0, 0x06, 0x06]);
    learn(&mut net, 0, 100, Some("10.1.0.9"));
    net.learn(
        1,
        LearnEvent::Learned {
            vni: 100,
            mac: other,
            ip: Some(ip("10.1.0.9")),
            sticky: false,
        },
    );
    let key = (100, ip("10.1.0.9"));
    assert_eq!(
        net.nodes[2].dp.neigh.get(&key),
        Some(&other),
        "latest claim holds it"
    );
    // the new VM leaves: the address goes back to the MAC that still claims it
    net.learn(
        1,
        LearnEvent::Left {
            vni: 100,
            mac: other,
            ip: None,
        },
    );
    assert_eq!(net.nodes[2].dp.neigh.get(&key), Some(&M));
    // and when that one leaves too, the entry is gone
    net.learn(
        0,
        LearnEvent::Left {
            vni: 100,
            mac: M,
            ip: None,
        },
    );
    assert_eq!(net.nodes[2].dp.neigh.get(&key), None);
    net.reconcile(2);
    assert!(net.nodes[2].dp.neigh.is_empty());
}
