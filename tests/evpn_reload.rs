//! A configuration reload (SIGHUP) of the EVPN layer on the testkit's virtual clock: VNIs
//! added, removed and changed while sessions run — exactly which routes the peer then holds,
//! what both dataplanes hold, what the LISP mapping feed is told, and that nothing else is
//! touched (no dataplane op on an unchanged VNI, MAC Mobility sequences kept, make before
//! break when an RD changes).

use std::net::IpAddr;
use std::time::Duration;

use vmmi::config::{RdCfg, RtCfg, VniCfg, VniKind};
use vmmi::dataplane::{DataplaneOp, LearnEvent};
use vmmi::rib::PeerId;
use vmmi::testkit::{Net, addr};
use vmmi::wire::bgp::afi::Family;
use vmmi::wire::bgp::evpn::EvpnRoute;
use vmmi::wire::reader::Reader;
use vmmi::wire::types::MacAddr;

const M: MacAddr = MacAddr([0x02, 0, 0, 0, 0x07, 0x01]);
const M2: MacAddr = MacAddr([0x02, 0, 0, 0, 0x07, 0x02]);

fn l2(vni: u32) -> VniCfg {
    VniCfg {
        vni,
        ..VniCfg::default()
    }
}

/// Two VTEPs in one AS, iBGP, VNI 100 on both.
fn fabric() -> Net {
    let mut net = Net::new();
    net.add(65000);
    net.add(65000);
    net.peer(0, 1, &[Family::L2VPN_EVPN], |_| {});
    net.peer(1, 0, &[Family::L2VPN_EVPN], |_| {});
    net.enable_evpn(0, |c| c.vnis = vec![l2(100)]);
    net.enable_evpn(1, |c| c.vnis = vec![l2(100)]);
    net.run(Duration::from_secs(10));
    net
}

fn learn(net: &mut Net, i: usize, vni: u32, mac: MacAddr, ip: Option<&str>) {
    net.learn(
        i,
        LearnEvent::Learned {
            vni,
            mac,
            ip: ip.map(|s| s.parse().unwrap()),
            sticky: false,
        },
    );
}

/// (type, RD, MAC, IP, MAC Mobility sequence) of one EVPN route.
type Held = (u8, String, Option<MacAddr>, Option<IpAddr>, Option<u32>);

/// The EVPN routes node `i`'s RIB holds from its peer (best paths, not our own).
fn held(net: &Net, i: usize) -> Vec<Held> {
    let rib = net.nodes[i].speaker.rib();
    let Some(t) = rib.table(Family::L2VPN_EVPN) else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for (key, e) in &t.map {
        let Some(p) = e.best() else { continue };
        if p.peer == PeerId::LOCAL {
            continue;
        }
        let mut nlri = Vec::new();
        vmmi::bgp::join_nlri(Family::L2VPN_EVPN, key, &p.rest, &mut nlri);
        let seq = p.attrs.mac_mobility.map(|m| m.0);
        v.push(match EvpnRoute::decode(&mut Reader::new(&nlri)).unwrap() {
            EvpnRoute::MacIp(m) => (2, m.rd.to_string(), Some(m.mac), m.ip, seq),
            EvpnRoute::InclusiveMulticast(m) => (3, m.rd.to_string(), None, None, seq),
            EvpnRoute::IpPrefix(p) => (5, p.rd.to_string(), None, None, seq),
            _ => (0, String::new(), None, None, seq),
        });
    }
    v.sort();
    v
}

#[test]
fn a_vni_added_is_originated_and_imports_what_the_rib_already_holds() {
    let mut net = fabric();
    // node 0 has VNI 200 first: its type 3 and a MAC are in node 1's RIB, imported nowhere
    net.reconfigure_evpn(0, |c| c.vnis.push(l2(200)));
    learn(&mut net, 0, 200, M, Some("10.2.0.5"));
    assert!(net.nodes[1].dp.fdb.is_empty(), "node 1 has no VNI 200 yet");
    let rd1 = "10.0.0.2:200".to_string();
    assert!(!held(&net, 0).iter().any(|r| r.1 == rd1));

    let changed = net.reconfigure_evpn(1, |c| c.vnis.push(l2(200)));
    assert_eq!(changed, vec![200]);
    // node 1 imported what it already held, as if VNI 200 had been configured at start
    assert_eq!(net.nodes[1].dp.vtep_of(200, M), Some(addr(0)));
    assert!(net.nodes[1].dp.flood.contains(&(200, addr(0))));
    assert_eq!(
        net.nodes[1]
            .dp
            .neigh
            .get(&(200, "10.2.0.5".parse().unwrap())),
        Some(&M)
    );
    // and originated its type 3, which node 0 imports
    assert!(held(&net, 0).contains(&(3, rd1, None, None, None)));
    assert!(net.nodes[0].dp.flood.contains(&(200, addr(1))));
    // VNI 100 was not touched on either side
    assert!(net.nodes[0].dp.flood.contains(&(100, addr(1))));
}

#[test]
fn a_vni_removed_withdraws_its_routes_and_deletes_its_entries_only() {
    let mut net = fabric();
    net.reconfigure_evpn(0, |c| c.vnis.push(l2(200)));
    net.reconfigure_evpn(1, |c| c.vnis.push(l2(200)));
    learn(&mut net, 0, 100, M, Some("10.1.0.5"));
    learn(&mut net, 0, 200, M2, None);
    learn(&mut net, 1, 200, M, None);
    assert_eq!(net.nodes[1].dp.vtep_of(100, M), Some(addr(0)));
    net.nodes[1].dp.record = Some(Vec::new());
    net.nodes[0].mappings.clear();
    net.nodes[1].mappings.clear();

    assert_eq!(
        net.reconfigure_evpn(1, |c| c.vnis.retain(|v| v.vni != 100)),
        vec![100]
    );
    // node 1's VNI 100 entries are deleted, and nothing of VNI 200 is touched
    let ops = net.nodes[1].dp.record.take().unwrap();
    assert!(!ops.is_empty());
    assert!(ops.iter().all(|o| o.vni() == 100), "only VNI 100: {ops:?}");
    assert!(ops.contains(&DataplaneOp::FdbDel { vni: 100, mac: M }));
    assert!(ops.contains(&DataplaneOp::FloodDel {
        vni: 100,
        vtep: addr(0)
    }));
    assert!(ops.contains(&DataplaneOp::NeighDel {
        vni: 100,
        ip: "10.1.0.5".parse().unwrap()
    }));
    assert!(!net.nodes[1].dp.fdb.keys().any(|(v, _)| *v == 100));
    assert_eq!(net.nodes[1].dp.vtep_of(200, M2), Some(addr(0)));
    // its type 3 for VNI 100 is withdrawn at node 0 (flood entry gone), VNI 200's stays
    assert!(!held(&net, 0).iter().any(|r| r.1 == "10.0.0.2:100"));
    assert!(!net.nodes[0].dp.flood.contains(&(100, addr(1))));
    assert!(net.nodes[0].dp.flood.contains(&(200, addr(1))));
    assert_eq!(net.nodes[0].dp.vtep_of(200, M), Some(addr(1)));
    // the mapping feed takes VNI 100's EIDs out (MAC and address), nothing else
    let m = &net.nodes[1].mappings;
    assert!(m.iter().all(|x| x.vni == 100 && x.rloc.is_none()), "{m:?}");
    assert!(m.iter().any(|x| x.mac == M && x.ip.is_none()));
    assert!(
        m.iter()
            .any(|x| x.mac == M && x.ip == Some("10.1.0.5".parse().unwrap()))
    );
    // a learn in the removed VNI is ignored
    learn(&mut net, 1, 100, M2, None);
    assert!(!held(&net, 0).iter().any(|r| r.1 == "10.0.0.2:100"));
}

#[test]
fn a_changed_rd_re_advertises_under_the_new_rd_with_the_same_sequence() {
    let mut net = fabric();
    // M moves 0 -> 1 -> 0: node 0 advertises it with sequence 2
    learn(&mut net, 0, 100, M, Some("10.1.0.5"));
    learn(&mut net, 1, 100, M, Some("10.1.0.5"));
    learn(&mut net, 0, 100, M, Some("10.1.0.5"));
    assert_eq!(net.nodes[1].dp.vtep_of(100, M), Some(addr(0)));
    let seq = |net: &Net| {
        held(net, 1)
            .into_iter()
            .find(|r| r.0 == 2 && r.2 == Some(M) && r.3.is_none())
            .and_then(|r| r.4)
    };
    assert_eq!(seq(&net), Some(2));
    let fdb_before = net.nodes[1].dp.fdb.clone();
    let (neigh_before, flood_before) =
        (net.nodes[1].dp.neigh.clone(), net.nodes[1].dp.flood.clone());

    let changed = net.reconfigure_evpn(0, |c| {
        if let Some(v) = c.vnis.iter_mut().find(|v| v.vni == 100) {
            v.rd = RdCfg::Set("10.0.0.1:7777".into());
        }
    });
    assert_eq!(changed, vec![100]);
    // node 1 holds node 0's routes under the new RD only, with the same sequence (RFC 7432
    // §15.1: the same location is not a move)
    let h = held(&net, 1);
    assert!(
        h.iter()
            .any(|r| r.0 == 2 && r.1 == "10.0.0.1:7777" && r.2 == Some(M))
    );
    assert!(h.iter().any(|r| r.0 == 3 && r.1 == "10.0.0.1:7777"));
    assert!(
        !h.iter().any(|r| r.1 == "10.0.0.1:100"),
        "old RD withdrawn: {h:?}"
    );
    assert_eq!(seq(&net), Some(2));
    // node 1 forwards exactly as before (the speaker sends the withdrawals of the old RD in
    // the UPDATE before the new routes, so node 1 rewrites its entries once)
    assert_eq!(net.nodes[1].dp.fdb, fdb_before);
    assert_eq!(net.nodes[1].dp.neigh, neigh_before);
    assert_eq!(net.nodes[1].dp.flood, flood_before);
    // and node 0 did not count it as a move
    assert!(
        net.nodes[0]
            .evpn_events
            .iter()
            .all(|e| !matches!(e, vmmi::evpn::EvpnEvent::DuplicateDetected { .. }))
    );
}

#[test]
fn changed_route_targets_re_import_both_ways() {
    let mut net = fabric();
    learn(&mut net, 0, 100, M, None);
    assert_eq!(net.nodes[1].dp.vtep_of(100, M), Some(addr(0)));
    // node 1 imports only 65000:999 now: node 0's routes (65000:100) leave VNI 100
    let set = |rt: &str| vec![RtCfg::Set(rt.into())];
    net.reconfigure_evpn(1, |c| c.vnis[0].import_rt = set("65000:999"));
    assert_eq!(net.nodes[1].dp.vtep_of(100, M), None);
    assert!(!net.nodes[1].dp.flood.contains(&(100, addr(0))));
    // node 0 exports 65000:999 too: imported again, under node 1's new rule
    net.reconfigure_evpn(0, |c| {
        c.vnis[0].export_rt = vec![RtCfg::Auto, set("65000:999")[0].clone()]
    });
    assert_eq!(net.nodes[1].dp.vtep_of(100, M), Some(addr(0)));
    assert!(net.nodes[1].dp.flood.contains(&(100, addr(0))));
}

#[test]
fn an_l3_vni_added_brings_type5_and_irb_on_its_l2_vni() {
    let mut net = fabric();
    learn(&mut net, 0, 100, M, Some("10.1.0.5"));
    let l3 = |p: &str| VniCfg {
        vni: 5000,
        kind: VniKind::L3,
        prefixes: vec![p.parse().unwrap()],
        ..VniCfg::default()
    };
    let changed = net.reconfigure_evpn(0, |c| {
        c.vnis.push(l3("192.168.50.0/24"));
        c.vnis[0].l3_vni = Some(5000);
    });
    // the L2 VNI changed (it routes in 5000 now) and 5000 is new
    assert_eq!(changed, vec![100, 5000]);
    net.reconfigure_evpn(1, |c| {
        c.vnis.push(l3("192.168.60.0/24"));
        c.vnis[0].l3_vni = Some(5000);
    });
    // node 1: node 0's type 5 prefix and its host route in the IP-VRF, the MAC still bridged
    let routes = &net.nodes[1].dp.routes;
    let at = |p: &str| routes.get(&(5000, p.parse().unwrap())).map(|r| r.0);
    assert_eq!(at("192.168.50.0/24"), Some(addr(0)));
    assert_eq!(at("10.1.0.5/32"), Some(addr(0)));
    assert_eq!(net.nodes[1].dp.vtep_of(100, M), Some(addr(0)));
    // and node 0 has node 1's prefix
    assert_eq!(
        net.nodes[0]
            .dp
            .routes
            .get(&(5000, "192.168.60.0/24".parse().unwrap()))
            .map(|r| r.0),
        Some(addr(1))
    );
    // node 0 removes the L3 VNI again: node 1's VRF routes from node 0 go, the MAC stays
    net.reconfigure_evpn(0, |c| {
        c.vnis.retain(|v| v.vni != 5000);
        c.vnis[0].l3_vni = None;
    });
    let routes = &net.nodes[1].dp.routes;
    let at = |p: &str| routes.get(&(5000, p.parse().unwrap())).map(|r| r.0);
    assert_eq!(at("192.168.50.0/24"), None);
    assert_eq!(at("10.1.0.5/32"), None);
    assert_eq!(net.nodes[1].dp.vtep_of(100, M), Some(addr(0)));
    // node 0 no longer has a VRF: node 1's prefix is gone from its dataplane
    assert!(net.nodes[0].dp.routes.is_empty());
}

#[test]
fn a_reload_without_vni_changes_touches_nothing() {
    let mut net = fabric();
    learn(&mut net, 0, 100, M, None);
    net.nodes[1].dp.record = Some(Vec::new());
    let before = net.nodes[1].received.len();
    let changed = net.reconfigure_evpn(0, |c| c.dad.max_moves = 9);
    assert!(changed.is_empty());
    assert_eq!(net.nodes[1].received.len(), before, "no UPDATE sent");
    assert_eq!(net.nodes[1].dp.record.take().unwrap(), vec![]);
}
