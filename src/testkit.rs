//! Speakers back to back on a virtual clock, for deterministic tests of the sans-IO cores.
//!
//! Owns: a fake network between `Speaker`s — connects, byte delivery with framing, closes,
//! partitions and crashes — a clock that jumps straight to the next deadline, and the record
//! of every message each node received (decoded on demand, with a chosen context for
//! ADD-PATH).
//! Must not: use real time or sockets. Every run is bounded by a virtual deadline and a step
//! count.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::bgp::{ConnId, Event, Output, PeerCfg, Speaker, SpeakerCfg};
use crate::dataplane::LearnEvent;
use crate::dataplane::memory::Memory;
use crate::evpn::{self, Evpn, EvpnCfg, EvpnEvent};
use crate::rib::PeerId;
use crate::wire::bgp::afi::Family;
use crate::wire::bgp::message::{BgpCtx, Message, frame_len};

/// One node: a speaker and its address.
pub struct Node {
    pub speaker: Speaker,
    pub addr: IpAddr,
    pub cfg: SpeakerCfg,
    /// Every event, in order.
    pub events: Vec<Event>,
    /// Every message received, decoded leniently (for assertions), with the connection.
    pub received: Vec<(ConnId, Vec<u8>)>,
    pub peers: Vec<(PeerId, PeerCfg)>,
    /// The EVPN layer (`enable_evpn`), its config, events and in-memory dataplane.
    pub evpn: Option<Evpn>,
    pub evpn_cfg: Option<EvpnCfg>,
    pub evpn_events: Vec<EvpnEvent>,
    /// The EVPN layer's mapping feed (what LISP would be told), in order.
    pub mappings: Vec<evpn::Mapping>,
    pub dp: Memory,
}

struct Link {
    to: usize,
    conn: ConnId,
    /// Bytes to this side are dropped (a partition).
    cut: bool,
    buf: Vec<u8>,
}

pub struct Net {
    pub now: Instant,
    pub nodes: Vec<Node>,
    links: HashMap<(usize, ConnId), Link>,
    queue: VecDeque<(usize, Output)>,
    next_port: u16,
}

/// The address of node `i`: 10.0.0.(i+1).
pub fn addr(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, (i + 1) as u8))
}

impl Default for Net {
    fn default() -> Self {
        Self::new()
    }
}

impl Net {
    pub fn new() -> Net {
        // The one wall-clock read: a base for virtual time.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        Net {
            now,
            nodes: Vec::new(),
            links: HashMap::new(),
            queue: VecDeque::new(),
            next_port: 40000,
        }
    }

    /// A speaker with AS `asn`, router ID = its address.
    pub fn add(&mut self, asn: u32) -> usize {
        let i = self.nodes.len();
        let a = addr(i);
        let IpAddr::V4(id) = a else { unreachable_v4() };
        let cfg = SpeakerCfg {
            asn,
            router_id: id,
            cluster_id: id,
            gr_restart_time: 120,
            stale_routes_time: 360,
            restarting: false,
        };
        self.nodes.push(Node {
            speaker: Speaker::new(cfg.clone(), self.now),
            addr: a,
            cfg,
            events: Vec::new(),
            received: Vec::new(),
            peers: Vec::new(),
            evpn: None,
            evpn_cfg: None,
            evpn_events: Vec::new(),
            mappings: Vec::new(),
            dp: Memory::new(),
        });
        i
    }

    /// `n` VTEPs in AS 65000, iBGP full mesh for L2VPN EVPN, each with the EVPN layer (`f`
    /// sets its config: VNIs, DAD, ...), sessions up.
    pub fn evpn_mesh(n: usize, f: impl Fn(&mut EvpnCfg)) -> Net {
        let mut net = Net::new();
        for _ in 0..n {
            net.add(65000);
        }
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    net.peer(i, j, &[Family::L2VPN_EVPN], |_| {});
                }
            }
        }
        for i in 0..n {
            net.enable_evpn(i, &f);
        }
        net.run(Duration::from_secs(10));
        net
    }

    /// Give node `i` an EVPN layer over an in-memory dataplane; VTEP = its address.
    pub fn enable_evpn(&mut self, i: usize, f: impl FnOnce(&mut EvpnCfg)) {
        let n = &mut self.nodes[i];
        let mut cfg = EvpnCfg {
            asn: n.cfg.asn,
            router_id: n.cfg.router_id,
            vtep: n.addr,
            vnis: Vec::new(),
            dad: Default::default(),
            move_log: 1024,
        };
        f(&mut cfg);
        let mut ev = Evpn::new(&cfg);
        n.speaker.watch_evpn();
        ev.start(self.now);
        n.evpn = Some(ev);
        n.evpn_cfg = Some(cfg);
    }

    /// Node `i`'s EVPN configuration is reloaded (SIGHUP) with `f` applied to the running one;
    /// returns the VNIs the layer reports changed.
    pub fn reconfigure_evpn(&mut self, i: usize, f: impl FnOnce(&mut EvpnCfg)) -> Vec<u32> {
        let now = self.now;
        let n = &mut self.nodes[i];
        let (Some(ev), Some(cfg)) = (&mut n.evpn, &mut n.evpn_cfg) else {
            panic!("testkit: node {i} has no EVPN layer");
        };
        f(cfg);
        let changed = ev.reconfigure(now, cfg, n.speaker.rib());
        self.settle();
        changed
    }

    /// A local learn (or leave) on node `i`, as its dataplane or `vmmi vm attach` reports it.
    pub fn learn(&mut self, i: usize, e: LearnEvent) {
        let now = self.now;
        if let Some(ev) = &mut self.nodes[i].evpn {
            ev.handle_learn(now, e);
        }
        self.settle();
    }

    /// The EVPN layer of node `i`.
    pub fn evpn(&self, i: usize) -> &Evpn {
        match &self.nodes[i].evpn {
            Some(e) => e,
            None => panic!("testkit: node {i} has no EVPN layer"),
        }
    }

    pub fn evpn_mut(&mut self, i: usize) -> &mut Evpn {
        match &mut self.nodes[i].evpn {
            Some(e) => e,
            None => panic!("testkit: node {i} has no EVPN layer"),
        }
    }

    /// Node `i`'s EVPN daemon restarts: sequences come back from its state file, the kernel
    /// keeps the dataplane and reports the MACs on local ports again. Call after `restart`.
    pub fn restart_evpn(&mut self, i: usize) {
        let now = self.now;
        let n = &mut self.nodes[i];
        let (Some(old), Some(cfg)) = (n.evpn.take(), n.evpn_cfg.clone()) else {
            return;
        };
        let saved = old.snapshot();
        let local = old.local_macs();
        let mut ev = Evpn::new(&cfg);
        ev.restore(&saved);
        n.speaker.watch_evpn();
        ev.start(now);
        for (vni, mac, ips, sticky) in local {
            let mut it = ips.into_iter();
            ev.handle_learn(
                now,
                LearnEvent::Learned {
                    vni,
                    mac,
                    ip: it.next(),
                    sticky,
                },
            );
            for ip in it {
                ev.handle_learn(
                    now,
                    LearnEvent::Learned {
                        vni,
                        mac,
                        ip: Some(ip),
                        sticky,
                    },
                );
            }
        }
        n.evpn = Some(ev);
        self.settle();
    }

    /// Make node `i`'s dataplane hold exactly what its EVPN layer wants (startup reconcile).
    pub fn reconcile(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if let Some(ev) = &n.evpn {
            n.dp.reconcile_now(&ev.desired());
        }
    }

    /// Configure node `i` to peer with node `j` (call for both sides). `f` adjusts the config.
    pub fn peer(
        &mut self,
        i: usize,
        j: usize,
        families: &[Family],
        f: impl FnOnce(&mut PeerCfg),
    ) -> PeerId {
        let asn = self.nodes[j].cfg.asn;
        let mut pc = PeerCfg::new(SocketAddr::new(addr(j), 179), asn, families.to_vec());
        pc.connect_retry = 5;
        f(&mut pc);
        let now = self.now;
        let id = self.nodes[i].speaker.add_peer(now, pc.clone());
        self.nodes[i].peers.push((id, pc));
        id
    }

    /// Process outputs until nothing moves, without advancing time.
    pub fn settle(&mut self) {
        for _ in 0..1_000_000 {
            self.collect();
            let Some((i, o)) = self.queue.pop_front() else {
                return;
            };
            self.deliver(i, o);
        }
        panic!("testkit: no quiescence after 1M steps");
    }

    fn collect(&mut self) {
        let now = self.now;
        for (i, n) in self.nodes.iter_mut().enumerate() {
            if let Some(ev) = &mut n.evpn {
                let mut outs = Vec::new();
                evpn::glue::pump(&mut n.speaker, ev, now, &mut outs);
                for o in outs {
                    match o {
                        evpn::Output::Dataplane(b) => {
                            n.dp.apply_now(&b.ops);
                            ev.handle_applied(now, b.id);
                        }
                        evpn::Output::Event(e) => n.evpn_events.push(e),
                        evpn::Output::Mapping(m) => n.mappings.push(m),
                        _ => {}
                    }
                }
            }
            while let Some(o) = n.speaker.poll_output() {
                if let Output::Event(e) = o {
                    n.events.push(e);
                } else {
                    self.queue.push_back((i, o));
                }
            }
        }
    }

    fn deliver(&mut self, i: usize, o: Output) {
        let now = self.now;
        match o {
            Output::Connect { conn, remote, .. } => {
                let target = self.nodes.iter().position(|n| n.addr == remote.ip());
                let port = self.next_port;
                self.next_port = self.next_port.wrapping_add(1).max(40000);
                let local = SocketAddr::new(self.nodes[i].addr, port);
                let accepted = target.and_then(|j| {
                    let r = self.nodes[j].speaker.handle_accept(now, local, remote);
                    r.map(|c| (j, c))
                });
                match accepted {
                    Some((j, jc)) => {
                        self.links.insert(
                            (i, conn),
                            Link {
                                to: j,
                                conn: jc,
                                cut: false,
                                buf: Vec::new(),
                            },
                        );
                        self.links.insert(
                            (j, jc),
                            Link {
                                to: i,
                                conn,
                                cut: false,
                                buf: Vec::new(),
                            },
                        );
                        self.nodes[i].speaker.handle_connected(now, conn, local);
                    }
                    None => {
                        self.nodes[i]
                            .speaker
                            .handle_connect_failed(now, conn, "connection refused")
                    }
                }
            }
            Output::Send { conn, data } => {
                let n = data.len();
                if let Some(l) = self.links.get(&(i, conn))
                    && !l.cut
                {
                    let (to, tc) = (l.to, l.conn);
                    if let Some(back) = self.links.get_mut(&(to, tc)) {
                        back.buf.extend_from_slice(&data);
                        let mut buf = std::mem::take(&mut back.buf);
                        let mut at = 0;
                        let ctx = BgpCtx {
                            extended_message: true,
                            ..BgpCtx::default()
                        };
                        while let Ok(Some(len)) = frame_len(buf.get(at..).unwrap_or(&[]), &ctx) {
                            let Some(frame) = buf.get(at..at + len) else {
                                break;
                            };
                            self.nodes[to].received.push((tc, frame.to_vec()));
                            self.nodes[to].speaker.handle_frame(now, tc, frame);
                            at += len;
                        }
                        buf.drain(..at);
                        if let Some(back) = self.links.get_mut(&(to, tc)) {
                            back.buf = buf;
                        }
                    }
                }
                self.nodes[i].speaker.handle_sent(now, conn, n);
            }
            Output::Close { conn } => {
                if let Some(l) = self.links.remove(&(i, conn))
                    && self.links.remove(&(l.to, l.conn)).is_some()
                {
                    {
                        self.nodes[l.to].speaker.handle_closed(
                            now,
                            l.conn,
                            "connection closed by peer",
                        );
                    }
                }
            }
            Output::Event(_) => {}
        }
    }

    /// Advance virtual time by `d`, firing timers in order.
    pub fn run(&mut self, d: Duration) {
        let end = self.now + d;
        self.settle();
        for _ in 0..1_000_000 {
            let next = self
                .nodes
                .iter()
                .flat_map(|n| {
                    let e = n.evpn.as_ref().and_then(|e| e.poll_timeout());
                    n.speaker.poll_timeout().into_iter().chain(e)
                })
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    for n in &mut self.nodes {
                        if n.speaker.poll_timeout().is_some_and(|t| t <= now) {
                            n.speaker.handle_timeout(now);
                        }
                        if let Some(e) = &mut n.evpn
                            && e.poll_timeout().is_some_and(|t| t <= now)
                        {
                            e.handle_timeout(now);
                        }
                    }
                    self.settle();
                }
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
        panic!("testkit: timers did not settle");
    }

    /// Silently drop traffic between `i` and `j` (both directions) until `heal`.
    pub fn partition(&mut self, i: usize, j: usize, cut: bool) {
        for ((a, _), l) in self.links.iter_mut() {
            if (*a == i && l.to == j) || (*a == j && l.to == i) {
                l.cut = cut;
            }
        }
    }

    /// Node `i` crashes and restarts with the same configuration (`restarting` per RFC 4724):
    /// its connections reset, its peers see the TCP close.
    pub fn restart(&mut self, i: usize, restarting: bool) {
        let now = self.now;
        let gone: Vec<(usize, ConnId)> = self
            .links
            .iter()
            .filter(|((a, _), _)| *a == i)
            .map(|(_, l)| (l.to, l.conn))
            .collect();
        self.links.retain(|(a, _), l| *a != i && l.to != i);
        self.queue.retain(|(a, _)| *a != i);
        for (to, c) in gone {
            self.nodes[to]
                .speaker
                .handle_closed(now, c, "connection reset");
        }
        let mut cfg = self.nodes[i].cfg.clone();
        cfg.restarting = restarting;
        let mut sp = Speaker::new(cfg, now);
        let peers = self.nodes[i].peers.clone();
        let mut ids = Vec::new();
        for (_, pc) in &peers {
            ids.push((sp.add_peer(now, pc.clone()), pc.clone()));
        }
        self.nodes[i].speaker = sp;
        self.nodes[i].peers = ids;
    }

    /// Node `i` restarts and its peers do not notice (its old connections are forgotten
    /// without a close reaching the other side, as when a host reboots behind a partition).
    pub fn restart_silently(&mut self, i: usize) {
        let now = self.now;
        self.links.retain(|(a, _), _| *a != i);
        self.queue.retain(|(a, _)| *a != i);
        let cfg = self.nodes[i].cfg.clone();
        let mut sp = Speaker::new(
            SpeakerCfg {
                restarting: true,
                ..cfg
            },
            now,
        );
        let peers = self.nodes[i].peers.clone();
        let mut ids = Vec::new();
        for (_, pc) in &peers {
            ids.push((sp.add_peer(now, pc.clone()), pc.clone()));
        }
        self.nodes[i].speaker = sp;
        self.nodes[i].peers = ids;
    }

    /// Messages node `i` received, decoded with a permissive context.
    pub fn messages(&self, i: usize) -> Vec<Message> {
        let ctx = BgpCtx {
            four_octet_as: true,
            extended_message: true,
            add_path_rx: Vec::new(),
        };
        self.messages_with(i, &ctx)
    }

    /// Messages node `i` received, decoded with `ctx` (e.g. ADD-PATH path identifiers in
    /// `add_path_rx`); what does not decode with it is left out.
    pub fn messages_with(&self, i: usize, ctx: &BgpCtx) -> Vec<Message> {
        self.nodes[i]
            .received
            .iter()
            .filter_map(|(_, b)| Message::decode(b, ctx).ok().map(|(m, _)| m))
            .collect()
    }
}

fn unreachable_v4() -> ! {
    panic!("testkit addresses are IPv4")
}
