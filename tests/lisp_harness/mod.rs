//! LISP cores back to back on a virtual clock (tests only).
//!
//! Owns: a datagram network between `Lisp` cores (delivery in send order, at the sender's
//! virtual time), packets to addresses that are no node (kept in `external`, for tests that
//! play a foreign xTR or ITR), loss rules, and a clock that jumps to the next deadline.
//! Must not: use real time or sockets. Every run is bounded (`MAX_STEPS`).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use vmmi::lisp::{EidPrefix, Lisp, LispCoreCfg, LispEvent, MapServerCoreCfg, Output, SiteCoreCfg};
use vmmi::wire::lisp::auth::{AuthParams, sign};
use vmmi::wire::lisp::{
    Bits, Ecm, EidRecord, InnerIp, Ipv4Header, LispAddr, LispMsg, Locator, MapRegister, MapRequest,
    XtrTrailer, decode,
};

const MAX_STEPS: usize = 1_000_000;

/// A datagram seen on the virtual wire.
#[derive(Clone, Debug)]
pub struct Pkt {
    pub at: Duration,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

impl Pkt {
    pub fn msg(&self) -> LispMsg {
        decode(&self.bytes).unwrap_or_else(|e| panic!("undecodable packet {self:?}: {e}"))
    }
}

pub struct Node {
    pub lisp: Lisp,
    pub addr: SocketAddr,
    pub events: Vec<(Duration, LispEvent)>,
}

/// Which datagrams the network loses.
pub type LossRule = Box<dyn Fn(&Pkt) -> bool>;

pub struct Net {
    pub base: Instant,
    pub now: Instant,
    pub nodes: Vec<Node>,
    /// Every datagram sent by a node, in order.
    pub wire: Vec<Pkt>,
    /// Datagrams to addresses that are no node.
    pub external: Vec<Pkt>,
    /// Datagrams matching this are lost.
    pub lose: Option<LossRule>,
    queue: VecDeque<Pkt>,
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn sa(s: &str) -> SocketAddr {
    SocketAddr::new(ip(s), 4342)
}

pub fn host(iid: u32, s: &str) -> EidPrefix {
    EidPrefix::host(iid, ip(s))
}

pub fn pfx(iid: u32, s: &str) -> EidPrefix {
    EidPrefix::prefix(iid, s.parse().unwrap())
}

pub const KEY: &[u8] = b"secret";

/// A site with HMAC-SHA-256-128 and the RFC lengths only.
pub fn site(name: &str, eids: &[EidPrefix]) -> SiteCoreCfg {
    SiteCoreCfg {
        name: name.to_string(),
        key: KEY.to_vec(),
        alg_id: 2,
        legacy_key_id: false,
        untruncated_auth: false,
        eids: eids.to_vec(),
    }
}

/// A Map-Server + Map-Resolver at `rloc` with `sites`.
pub fn ms_cfg(rloc: &str, sites: Vec<SiteCoreCfg>) -> LispCoreCfg {
    let mut c = LispCoreCfg::new(ip(rloc));
    c.map_server = true;
    c.map_resolver = true;
    c.sites = sites;
    c.rng_seed = 1;
    c
}

/// An xTR at `rloc` registering with the Map-Server at `ms` with `KEY`.
pub fn xtr_cfg(rloc: &str, ms: &str) -> LispCoreCfg {
    let mut c = LispCoreCfg::new(ip(rloc));
    c.xtr = true;
    c.map_servers = vec![MapServerCoreCfg {
        addr: sa(ms),
        key: KEY.to_vec(),
        auth: AuthParams {
            key_id: 0,
            alg_id: 2,
            truncate: true,
            legacy_key_id: false,
        },
    }];
    c.rng_seed = 2;
    c.nonce_seed = 1 << 32;
    c
}

impl Net {
    pub fn new() -> Net {
        #[allow(clippy::disallowed_methods)]
        let base = Instant::now();
        Net {
            base,
            now: base,
            nodes: Vec::new(),
            wire: Vec::new(),
            external: Vec::new(),
            lose: None,
            queue: VecDeque::new(),
        }
    }

    pub fn add(&mut self, cfg: LispCoreCfg) -> usize {
        let addr = SocketAddr::new(cfg.rloc, 4342);
        let lisp = Lisp::new(cfg, self.now);
        self.nodes.push(Node {
            lisp,
            addr,
            events: Vec::new(),
        });
        let i = self.nodes.len() - 1;
        self.pump(i);
        self.run();
        i
    }

    pub fn t(&self) -> Duration {
        self.now - self.base
    }

    fn node_at(&self, to: SocketAddr) -> Option<usize> {
        self.nodes.iter().position(|n| n.addr.ip() == to.ip())
    }

    /// Moves node `i`'s outputs onto the wire.
    pub fn pump(&mut self, i: usize) {
        let at = self.t();
        while let Some(o) = self.nodes[i].lisp.poll_output() {
            match o {
                Output::Send { to, bytes } => {
                    let p = Pkt {
                        at,
                        from: self.nodes[i].addr,
                        to,
                        bytes,
                    };
                    self.wire.push(p.clone());
                    self.queue.push_back(p);
                }
                Output::Event(e) => self.nodes[i].events.push((at, e)),
            }
        }
    }

    /// Delivers queued datagrams until none is left.
    pub fn run(&mut self) {
        let mut steps = 0;
        while let Some(p) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < MAX_STEPS, "network did not settle");
            if self.lose.as_ref().is_some_and(|f| f(&p)) {
                continue;
            }
            match self.node_at(p.to) {
                Some(j) => {
                    let local = self.nodes[j].addr;
                    let now = self.now;
                    self.nodes[j]
                        .lisp
                        .handle_packet(now, p.from, local, &p.bytes);
                    self.pump(j);
                }
                None => self.external.push(p),
            }
        }
    }

    /// A datagram from outside (a fake xTR/ITR) to node `i`.
    pub fn inject(&mut self, from: SocketAddr, i: usize, bytes: &[u8]) {
        let local = self.nodes[i].addr;
        let now = self.now;
        self.nodes[i].lisp.handle_packet(now, from, local, bytes);
        self.pump(i);
        self.run();
    }

    /// Runs `f` on node `i` at the current time, then delivers what it sent.
    pub fn with<R>(&mut self, i: usize, f: impl FnOnce(&mut Lisp, Instant) -> R) -> R {
        let now = self.now;
        let r = f(&mut self.nodes[i].lisp, now);
        self.pump(i);
        self.run();
        r
    }

    /// Runs `f` on node `i` and returns the datagrams that very call queued (before anything
    /// is delivered), then delivers them.
    pub fn call<R>(&mut self, i: usize, f: impl FnOnce(&mut Lisp, Instant) -> R) -> (R, Vec<Pkt>) {
        let now = self.now;
        let r = f(&mut self.nodes[i].lisp, now);
        let mark = self.wire.len();
        self.pump(i);
        let sent = self.wire[mark..].to_vec();
        self.run();
        (r, sent)
    }

    /// Advances the clock by `d`, firing every deadline on the way in order.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(steps < MAX_STEPS, "timers did not settle");
            let next = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.lisp.poll_timeout().map(|t| (t, i)))
                .min();
            match next {
                Some((t, i)) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    self.nodes[i].lisp.handle_timeout(now);
                    self.pump(i);
                    self.run();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    /// Advances to `base + secs`.
    pub fn at(&mut self, secs: f64) {
        let target = self.base + Duration::from_secs_f64(secs);
        if target > self.now {
            self.advance(target - self.now);
        }
    }

    /// Datagrams sent after wire index `from` (use `self.wire.len()` as a mark).
    pub fn since(&self, mark: usize) -> Vec<Pkt> {
        self.wire[mark..].to_vec()
    }

    /// Events of node `i` recorded after event index `mark`.
    pub fn events_since(&self, i: usize, mark: usize) -> Vec<LispEvent> {
        self.nodes[i].events[mark..]
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }
}

/// The locator a test xTR registers: priority 1, weight 100, L and R.
pub fn loc(rloc: &str) -> Locator {
    Locator::new(LispAddr::from(ip(rloc)), true)
}

pub fn record(eid: EidPrefix, ttl: u32, version: u32, rlocs: &[&str]) -> EidRecord {
    let (addr, mask_len) = eid.to_wire(Default::default());
    EidRecord::new(
        addr,
        mask_len,
        ttl,
        version,
        rlocs.iter().map(|r| loc(r)).collect(),
    )
}

/// What a test Map-Register says.
#[derive(Clone)]
pub struct Reg {
    pub records: Vec<EidRecord>,
    pub nonce: u64,
    pub xtr: Option<(u128, u64)>,
    pub proxy: bool,
    pub merge: bool,
    pub want_notify: bool,
    pub ttl_timeout: bool,
    pub params: AuthParams,
    pub key: Vec<u8>,
}

impl Reg {
    pub fn new(records: Vec<EidRecord>, nonce: u64) -> Reg {
        Reg {
            records,
            nonce,
            xtr: None,
            proxy: true,
            merge: false,
            want_notify: false,
            ttl_timeout: false,
            params: AuthParams {
                key_id: 0,
                alg_id: 2,
                truncate: true,
                legacy_key_id: false,
            },
            key: KEY.to_vec(),
        }
    }

    pub fn msg(&self) -> MapRegister {
        MapRegister {
            proxy_reply: self.proxy,
            lisp_sec: false,
            reserved: Bits::new(0),
            eid_notify: false,
            ttl_timeout: self.ttl_timeout,
            merge: self.merge,
            r: false,
            want_map_notify: self.want_notify,
            nonce: self.nonce,
            auth: self.params.placeholder().unwrap_or_default(),
            records: self.records.clone(),
            xtr: self.xtr.map(|(x, s)| XtrTrailer {
                xtr_id: x,
                site_id: Some(s),
            }),
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        self.msg().encode(&mut b);
        sign(&mut b, &self.key, &self.params).unwrap();
        b
    }
}

/// A Map-Request for `eid` from ITR-RLOC `itr`.
pub fn request(eid: EidPrefix, itr: &str, nonce: u64) -> MapRequest {
    let (addr, mask_len) = eid.to_wire(Default::default());
    MapRequest::new(nonce, LispAddr::from(ip(itr)), addr, mask_len)
}

pub fn bytes_of(m: &MapRequest) -> Vec<u8> {
    let mut b = Vec::new();
    m.encode(&mut b);
    b
}

/// `m` in an ECM with inner IPv4 `src` → `dst`, inner UDP source port `sport`.
pub fn ecm(m: &MapRequest, src: Ipv4Addr, dst: Ipv4Addr, sport: u16) -> Vec<u8> {
    let ip = InnerIp::V4(Ipv4Header {
        tos: 0,
        total_length: 0,
        id: 0,
        flags_fragment: 0,
        ttl: 64,
        checksum: 0,
        src,
        dst,
        options: Vec::new(),
    });
    LispMsg::Ecm(Ecm::new(ip, sport, LispMsg::MapRequest(m.clone()))).to_bytes()
}
