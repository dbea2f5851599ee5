//! The EVPN layer fed with event sequences: local learns and leaves (any VNI, MACs from a
//! small set so they collide, IPs, sticky), remote routes from four VTEPs put into a RIB
//! (types 2/3/5 with chosen Route Targets, MAC Mobility sequences near 0 and near the wrap,
//! sticky, Label2, Default Gateway — and raw NLRI bytes that may not decode), withdrawals,
//! time jumps (DAD windows and freeze timers), `dad clear`, daemon restarts (state file
//! snapshot → new core → replay → reconcile), and configuration reloads (`reconfigure`: VNIs
//! removed and added back, RD/RT/IRB changes, DAD settings) — after which the incremental ops
//! must still build exactly the state the layer wants, with no reconcile to hide a miss.
//! Asserts: no panic; the dataplane built from the op batches the layer emitted is exactly the
//! state the layer says it wants (`desired`) — incremental ops never drift from the truth;
//! no FDB entry points at our own VTEP; every route the layer originates decodes.
#![no_main]
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use vmmi::config::{VniCfg, VniKind};
use vmmi::dataplane::LearnEvent;
use vmmi::dataplane::memory::Memory;
use vmmi::evpn::{Evpn, EvpnCfg, Output};
use vmmi::rib::mac_mobility::DadCfg;
use vmmi::rib::{Attrs, PeerId, PeerMeta, Rib};
use vmmi::wire::bgp::afi::Family;
use vmmi::wire::bgp::attr::{AttrValue, MpNextHop, PathAttr, PmsiTunnel, PmsiTunnelId, code};
use vmmi::wire::bgp::evpn::{
    Esi, EvpnRoute, InclusiveMulticastRoute, IpPrefixRoute, Label, MacIpRoute,
};
use vmmi::wire::bgp::extcomm::{ExtCommunity, RouteTarget};
use vmmi::wire::bgp::rd::RouteDistinguisher;
use vmmi::wire::reader::Reader;
use vmmi::wire::types::MacAddr;

const EVPN: Family = Family::L2VPN_EVPN;
const OURS: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));

fn cfg() -> EvpnCfg {
    EvpnCfg {
        asn: 65000,
        router_id: Ipv4Addr::new(10, 0, 0, 9),
        vtep: OURS,
        vnis: vec![
            VniCfg {
                vni: 100,
                l3_vni: Some(5000),
                gateway_ip: Some("10.1.0.1/24".parse().unwrap()),
                ..VniCfg::default()
            },
            VniCfg {
                vni: 200,
                ..VniCfg::default()
            },
            VniCfg {
                vni: 5000,
                kind: VniKind::L3,
                prefixes: vec!["192.168.0.0/16".parse().unwrap()],
                ..VniCfg::default()
            },
        ],
        dad: DadCfg {
            max_moves: 3,
            window: Duration::from_secs(60),
            freeze: Some(Duration::from_secs(90)),
        },
        move_log: 64,
    }
}

fn vtep(p: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 1 + p % 4)
}

fn mac(i: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, i % 6])
}

fn ip(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, 5 + i % 3))
}

#[derive(Arbitrary, Debug)]
enum Op {
    Learn { vni: u8, mac: u8, ip: Option<u8>, sticky: bool },
    Leave { vni: u8, mac: u8, ip: Option<u8> },
    Mac { peer: u8, mac: u8, ip: Option<u8>, seq: u32, near_wrap: bool, sticky: bool, rt: u8, label2: bool, gw: bool },
    Imet { peer: u8, rt: u8 },
    Prefix { peer: u8, len: u8, addr: u8, rt: u8 },
    Raw { peer: u8, bytes: Vec<u8> },
    Withdraw { which: u16 },
    Wait { secs: u8 },
    Clear { vni: u8, mac: u8 },
    Restart,
    /// A configuration reload (SIGHUP): the VNIs whose bit is set in `keep`, VNI 100's export
    /// RT and VNI 200's RD changed or not, VNI 100 in the IP-VRF or not, other DAD settings.
    Reload { keep: u8, rt: bool, rd: bool, irb: bool, dad: bool },
}

fn vni_of(v: u8) -> u32 {
    [100, 200, 5000, 7][usize::from(v % 4)]
}

fn rt(r: u8) -> RouteTarget {
    match r % 5 {
        0 => RouteTarget::As2 { asn: 65000, value: 100 },
        1 => RouteTarget::As2 { asn: 65001, value: 200 },
        2 => RouteTarget::As2 { asn: 65000, value: 5000 },
        3 => RouteTarget::As2 { asn: 1, value: (1 << 28) | 100 },
        _ => RouteTarget::As2 { asn: 65000, value: 999 },
    }
}

struct World {
    rib: Rib,
    ev: Evpn,
    mem: Memory,
    keys: Vec<(vmmi::rib::RouteKey, PeerId)>,
    now: Instant,
}

fn attrs(rib: &mut Rib, peer: u8, ec: Vec<ExtCommunity>, extra: Vec<PathAttr>) -> Arc<Attrs> {
    let mut list = vec![
        PathAttr::new(code::ORIGIN, AttrValue::Origin(0)),
        PathAttr::new(code::EXTENDED_COMMUNITIES, AttrValue::ExtCommunities(ec)),
    ];
    list.extend(extra);
    list.sort_by_key(|a| a.type_code);
    rib.intern(Attrs::derive(list, Some(MpNextHop::Ipv4(vtep(peer)))))
}

impl World {
    fn drain(&mut self) {
        while let Some(o) = self.ev.poll_output() {
            match o {
                Output::Dataplane(b) => {
                    self.mem.apply_now(&b.ops);
                    self.ev.handle_applied(self.now, b.id);
                }
                Output::Announce(b) => {
                    let r = EvpnRoute::decode(&mut Reader::new(&b.nlri));
                    assert!(r.is_ok(), "our own route decodes: {:?}", b.nlri);
                }
                Output::Withdraw { nlri, .. } => {
                    assert!(EvpnRoute::decode(&mut Reader::new(&nlri)).is_ok());
                }
                Output::Event(_) | Output::Mapping(_) => {}
            }
        }
    }

    fn announce(&mut self, peer: u8, route: &EvpnRoute, a: Arc<Attrs>) {
        let mut nlri = Vec::new();
        route.encode(&mut nlri);
        self.announce_raw(peer, &nlri, a);
    }

    fn announce_raw(&mut self, peer: u8, nlri: &[u8], a: Arc<Attrs>) {
        let (key, rest) = vmmi::bgp::split_nlri(EVPN, nlri);
        let id = PeerId(1 + u32::from(peer % 4));
        self.rib.announce(EVPN, key.clone(), id, 0, a, rest);
        self.keys.push((key, id));
        self.feed();
    }

    fn feed(&mut self) {
        let keys: Vec<_> = self.rib.drain_changes().map(|c| c.key).collect();
        self.ev.handle_rib(self.now, &self.rib, &keys);
    }

    fn check(&self) {
        let mut want = Memory::new();
        want.apply_now(&self.ev.desired());
        assert_eq!(self.mem.fdb, want.fdb, "FDB drifted from the layer's state");
        assert_eq!(self.mem.flood, want.flood, "flood lists drifted");
        assert_eq!(self.mem.neigh, want.neigh, "neighbours drifted");
        assert_eq!(self.mem.routes, want.routes, "VRF routes drifted");
        assert!(self.mem.fdb.values().all(|(v, _)| *v != OURS), "FDB towards ourselves");
        assert!(self.mem.flood.iter().all(|(_, v)| *v != OURS), "flooding to ourselves");
    }
}

fn rd(peer: u8) -> RouteDistinguisher {
    RouteDistinguisher::Ipv4 { addr: vtep(peer), number: 100 }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let now = Instant::now();
    let mut c = cfg();
    let mut rib = Rib::default();
    for p in 0..4u8 {
        rib.set_peer(
            PeerId(1 + u32::from(p)),
            PeerMeta { addr: IpAddr::V4(vtep(p)), bgp_id: vtep(p), ebgp: false },
        );
    }
    let mut w = World { rib, ev: Evpn::new(&c), mem: Memory::new(), keys: Vec::new(), now };
    w.ev.start(now);
    w.drain();
    for _ in 0..64 {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        match op {
            Op::Learn { vni, mac: m, ip: i, sticky } => w.ev.handle_learn(
                w.now,
                LearnEvent::Learned { vni: vni_of(vni), mac: mac(m), ip: i.map(ip), sticky },
            ),
            Op::Leave { vni, mac: m, ip: i } => w.ev.handle_learn(
                w.now,
                LearnEvent::Left { vni: vni_of(vni), mac: mac(m), ip: i.map(ip) },
            ),
            Op::Mac { peer, mac: m, ip: i, seq, near_wrap, sticky, rt: r, label2, gw } => {
                let seq = if near_wrap { seq | 0xffff_fff0 } else { seq % 8 };
                let mut ec = vec![ExtCommunity::route_target(rt(r)), ExtCommunity::vxlan_encap()];
                if seq > 0 || sticky {
                    ec.push(ExtCommunity::mac_mobility_seq(seq, sticky));
                }
                if label2 {
                    ec.push(ExtCommunity::route_target(rt(2)));
                    ec.push(ExtCommunity::RoutersMac { mac: MacAddr([2, 9, 9, 9, 9, peer]) });
                }
                if gw {
                    ec.push(ExtCommunity::DefaultGateway { value: [0; 6] });
                }
                let a = attrs(&mut w.rib, peer, ec, Vec::new());
                let route = EvpnRoute::MacIp(MacIpRoute {
                    rd: rd(peer),
                    esi: Esi::ZERO,
                    ethernet_tag: 0,
                    mac: mac(m),
                    ip: i.map(ip),
                    label1: Label(100),
                    label2: label2.then_some(Label(5000)),
                });
                w.announce(peer, &route, a);
            }
            Op::Imet { peer, rt: r } => {
                let pmsi = PathAttr::new(
                    code::PMSI_TUNNEL,
                    AttrValue::PmsiTunnel(PmsiTunnel {
                        flags: 0,
                        tunnel_type: PmsiTunnel::INGRESS_REPLICATION,
                        label: Label(100),
                        tunnel_id: PmsiTunnelId::Ip(IpAddr::V4(vtep(peer))),
                    }),
                );
                let a = attrs(&mut w.rib, peer, vec![ExtCommunity::route_target(rt(r))], vec![pmsi]);
                let route = EvpnRoute::InclusiveMulticast(InclusiveMulticastRoute {
                    rd: rd(peer),
                    ethernet_tag: 0,
                    originator: IpAddr::V4(vtep(peer)),
                });
                w.announce(peer, &route, a);
            }
            Op::Prefix { peer, len, addr, rt: r } => {
                let a = attrs(
                    &mut w.rib,
                    peer,
                    vec![
                        ExtCommunity::route_target(rt(r)),
                        ExtCommunity::RoutersMac { mac: MacAddr([2, 8, 8, 8, 8, peer]) },
                    ],
                    Vec::new(),
                );
                let route = EvpnRoute::IpPrefix(IpPrefixRoute {
                    rd: rd(peer),
                    esi: Esi::ZERO,
                    ethernet_tag: 0,
                    prefix: IpAddr::V4(Ipv4Addr::new(192, 168, addr % 4, 0)),
                    prefix_len: 16 + len % 17,
                    gateway: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    label: Label(5000),
                });
                w.announce(peer, &route, a);
            }
            Op::Raw { peer, bytes } => {
                let a = attrs(&mut w.rib, peer, vec![ExtCommunity::route_target(rt(0))], Vec::new());
                w.announce_raw(peer, &bytes, a);
            }
            Op::Withdraw { which } => {
                if !w.keys.is_empty() {
                    let (k, p) = w.keys.swap_remove(usize::from(which) % w.keys.len());
                    w.rib.withdraw(EVPN, &k, p, 0);
                    w.feed();
                }
            }
            Op::Wait { secs } => {
                w.now += Duration::from_secs(u64::from(secs));
                if w.ev.poll_timeout().is_some_and(|t| t <= w.now) {
                    w.ev.handle_timeout(w.now);
                }
            }
            Op::Clear { vni, mac: m } => {
                let _ = w.ev.clear_dad(w.now, vni_of(vni), mac(m));
            }
            Op::Reload { keep, rt: rt_change, rd: rd_change, irb, dad } => {
                let mut n = cfg();
                n.vnis = n
                    .vnis
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| keep & (1 << i) != 0)
                    .map(|(_, v)| v)
                    .collect();
                // as validation requires: l3_vni names a configured L3 VNI
                let has_l3 = n.vnis.iter().any(|v| v.vni == 5000);
                for v in &mut n.vnis {
                    if v.vni == 100 {
                        if !has_l3 {
                            v.l3_vni = None;
                        }
                        if rt_change {
                            v.export_rt = vec![vmmi::config::RtCfg::Set("65000:999".into())];
                        }
                        if !irb {
                            v.l3_vni = None;
                        }
                    }
                    if v.vni == 200 && rd_change {
                        v.rd = vmmi::config::RdCfg::Set("10.0.0.9:7777".into());
                    }
                }
                if dad {
                    n.dad.max_moves = 2;
                }
                w.ev.reconfigure(w.now, &n, &w.rib);
                c = n;
            }
            Op::Restart => {
                // the state file, a new core, the kernel's local MACs, the RIB replayed
                let saved = w.ev.snapshot();
                let local = w.ev.local_macs();
                let mut ev = Evpn::new(&c);
                ev.restore(&saved);
                ev.start(w.now);
                for (vni, m, ips, sticky) in local {
                    ev.handle_learn(w.now, LearnEvent::Learned { vni, mac: m, ip: None, sticky });
                    for i in ips {
                        ev.handle_learn(w.now, LearnEvent::Learned { vni, mac: m, ip: Some(i), sticky });
                    }
                }
                let keys: Vec<_> = w
                    .rib
                    .table(EVPN)
                    .map(|t| t.map.keys().cloned().collect())
                    .unwrap_or_default();
                ev.handle_rib(w.now, &w.rib, &keys);
                w.ev = ev;
                w.drain();
                // startup reconcile: adopt, fix, remove
                let desired = w.ev.desired();
                w.mem.reconcile_now(&desired);
            }
        }
        w.drain();
        w.check();
    }
});
