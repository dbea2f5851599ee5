//! The LISP core fed with event sequences: three cores on a virtual clock (a Map-Server/
//! Map-Resolver with a strict SHA-256 site, an OOR-style SHA-1 site with both interop knobs
//! and an HKDF site; an xTR registering with it; a second Map-Server-only core), with
//! datagrams between them delivered or lost as the input says, foreign datagrams (raw bytes,
//! or generated messages — Map-Registers signed with one of the site keys), EVPN
//! `set_mapping` calls, xTR requests/subscriptions/unsubscriptions, site reloads
//! (`set_sites`: sites removed, reordered, narrowed), and time jumps from milliseconds to hours.
//! Asserts: no panic; every datagram a core sends decodes with the codec and re-encodes to
//! the same bytes; every Map-Register / Map-Notify / Map-Notify-Ack a core sends carries the
//! right HMAC for one of the configured keys (recomputed with `compute_auth`, since `verify`
//! skips the comparison under `cfg(fuzzing)`); timers, outstanding notifies and SMRs awaiting
//! their SMR-invoked Map-Request (retransmitted, smr.rs) stay bounded, and every SMR
//! retransmission schedule ends (`smr_retransmits` ≤ `smr_retries` × SMRs sent first).
#![no_main]
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use vmmi::lisp::{EidPrefix, Lisp, LispCoreCfg, MapServerCoreCfg, Output, SiteCoreCfg};
use vmmi::wire::MacAddr;
use vmmi::wire::lisp::auth::{AuthParams, compute_auth, lengths, sign};
use vmmi::wire::lisp::register::AUTH_DATA_OFFSET;
use vmmi::wire::lisp::{LispMsg, MapRegister, decode};

const KEYS: [&[u8]; 3] = [b"secret", b"oor-lab-key", b"hkdf-key"];

fn addr(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + i % 8))
}

fn eid(i: u8) -> EidPrefix {
    match i % 6 {
        0..=2 => EidPrefix::host(100, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1 + i % 4))),
        3 => EidPrefix::mac(100, MacAddr([2, 0, 0, 0, 0, i % 3])),
        4 => EidPrefix::host(107, IpAddr::V4(Ipv4Addr::new(10, 1, 7, i % 3))),
        _ => EidPrefix::prefix(100, "10.1.0.0/24".parse().unwrap()),
    }
}

fn sites() -> Vec<SiteCoreCfg> {
    vec![
        SiteCoreCfg {
            name: "dc-a".into(),
            key: KEYS[0].to_vec(),
            alg_id: 2,
            legacy_key_id: false,
            untruncated_auth: false,
            eids: vec![
                EidPrefix::prefix(100, "10.1.0.0/16".parse().unwrap()),
                EidPrefix::any_mac(100),
            ],
        },
        SiteCoreCfg {
            name: "oor".into(),
            key: KEYS[1].to_vec(),
            alg_id: 1,
            legacy_key_id: true,
            untruncated_auth: true,
            eids: vec![EidPrefix::prefix(107, "10.1.7.0/24".parse().unwrap())],
        },
        SiteCoreCfg {
            name: "hk".into(),
            key: KEYS[2].to_vec(),
            alg_id: 3,
            legacy_key_id: false,
            untruncated_auth: true,
            eids: vec![EidPrefix::prefix(200, "10.2.0.0/16".parse().unwrap())],
        },
    ]
}

fn cfgs(tight: bool) -> Vec<LispCoreCfg> {
    let mut ms = LispCoreCfg::new(addr(0));
    ms.map_server = true;
    ms.map_resolver = true;
    ms.sites = sites();
    let mut xtr = LispCoreCfg::new(addr(1));
    xtr.xtr = true;
    xtr.map_servers = vec![MapServerCoreCfg {
        addr: SocketAddr::new(addr(0), 4342),
        key: KEYS[0].to_vec(),
        auth: AuthParams {
            key_id: 0,
            alg_id: 2,
            truncate: true,
            legacy_key_id: false,
        },
    }];
    xtr.nonce_seed = 1 << 40;
    let mut ms2 = LispCoreCfg::new(addr(2));
    ms2.map_server = true;
    ms2.sites = sites();
    ms2.pubsub = false;
    let mut v = vec![ms, xtr, ms2];
    if tight {
        for c in &mut v {
            let l = &mut c.limits;
            l.max_mappings = 4;
            l.max_subscriptions = 2;
            l.max_requesters = 3;
            l.max_requesters_per_eid = 2;
            l.max_smr_queue = 2;
            l.max_pending_smrs = 2;
            l.max_map_cache = 3;
            l.max_pending_requests = 2;
            l.max_nonce_entries = 3;
            l.max_xtr_bindings = 2;
            l.max_inflight_registers = 2;
            l.map_replies_per_rloc = Some(3);
            l.max_reply_limiter_entries = 2;
            l.max_publication_records = 2;
            l.max_pending_notifies = 3;
        }
    }
    v
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Deliver (or lose) the next queued datagram.
    Deliver {
        lose: bool,
    },
    DeliverAll,
    Raw {
        to: u8,
        from: u8,
        bytes: Vec<u8>,
    },
    /// A generated message; Map-Registers are signed with key `key` and `params`.
    Msg {
        to: u8,
        from: u8,
        key: u8,
        params: AuthParams,
        sign: bool,
        msg: LispMsg,
    },
    SetMapping {
        node: u8,
        eid: u8,
        rloc: Option<u8>,
        seq: u32,
    },
    Request {
        eid: u8,
        subscribe: bool,
    },
    Unsubscribe {
        eid: u8,
    },
    /// A configuration reload of the Map-Server's sites (`set_sites`): the sites whose bit is
    /// set in `keep`, in reverse order or not, the first one narrowed to a /24 or not.
    SetSites {
        keep: u8,
        reverse: bool,
        narrow: bool,
    },
    Advance {
        millis: u32,
        big: bool,
    },
}

struct Sim {
    now: Instant,
    nodes: Vec<Lisp>,
    queue: VecDeque<(usize, SocketAddr, Vec<u8>)>,
}

fn check_sent(bytes: &[u8]) {
    let m =
        decode(bytes).unwrap_or_else(|e| panic!("core sent undecodable bytes ({e}): {bytes:02x?}"));
    assert_eq!(
        m.to_bytes(),
        bytes,
        "core sent bytes that do not re-encode: {m:?}"
    );
    if matches!(
        m,
        LispMsg::MapRegister(_) | LispMsg::MapNotify(_) | LispMsg::MapNotifyAck(_)
    ) {
        let alg = bytes[13];
        let len = usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
        let (full, trunc) = lengths(alg).expect("a known algorithm");
        assert!(
            len == full || len == trunc,
            "auth length {len} for alg {alg}"
        );
        let mut zeroed = bytes.to_vec();
        zeroed[AUTH_DATA_OFFSET..AUTH_DATA_OFFSET + len].fill(0);
        let tag = &bytes[AUTH_DATA_OFFSET..AUTH_DATA_OFFSET + len];
        let ok = KEYS
            .iter()
            .any(|k| compute_auth(&zeroed, k, alg, len).is_ok_and(|t| t.as_slice() == tag));
        assert!(ok, "authenticated message with a wrong HMAC: {m:?}");
    }
}

impl Sim {
    fn pump(&mut self, i: usize) {
        while let Some(o) = self.nodes[i].poll_output() {
            if let Output::Send { to, bytes } = o {
                check_sent(&bytes);
                let from = SocketAddr::new(addr(u8::try_from(i).unwrap()), 4342);
                if let Some(j) =
                    (0..self.nodes.len()).find(|j| addr(u8::try_from(*j).unwrap()) == to.ip())
                {
                    if self.queue.len() < 10_000 {
                        self.queue.push_back((j, from, bytes));
                    }
                }
            }
        }
        assert!(self.nodes[i].pending_timers() < 100_000);
        assert!(self.nodes[i].pending_notifies() < 10_000);
        // SMRs awaiting their SMR-invoked Map-Request: within the cap, each with one deadline
        assert!(self.nodes[i].pending_smrs() <= self.nodes[i].cfg().limits.max_pending_smrs);
    }

    fn deliver(&mut self, lose: bool) -> bool {
        let Some((j, from, bytes)) = self.queue.pop_front() else {
            return false;
        };
        if !lose {
            let local = SocketAddr::new(addr(u8::try_from(j).unwrap()), 4342);
            self.nodes[j].handle_packet(self.now, from, local, &bytes);
            self.pump(j);
        }
        true
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(tight) = bool::arbitrary(&mut u) else {
        return;
    };
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let nodes = cfgs(tight).into_iter().map(|c| Lisp::new(c, now)).collect();
    let mut sim = Sim {
        now,
        nodes,
        queue: VecDeque::new(),
    };
    for i in 0..sim.nodes.len() {
        sim.pump(i);
    }
    let mut steps = 0;
    while let Ok(op) = Op::arbitrary(&mut u) {
        steps += 1;
        if steps > 256 {
            break;
        }
        match op {
            Op::Deliver { lose } => {
                sim.deliver(lose);
            }
            Op::DeliverAll => {
                let mut n = 0;
                while sim.deliver(false) && n < 2000 {
                    n += 1;
                }
            }
            Op::Raw { to, from, bytes } => {
                let j = usize::from(to % 3);
                let local = SocketAddr::new(addr(to % 3), 4342);
                sim.nodes[j].handle_packet(
                    sim.now,
                    SocketAddr::new(addr(3 + from % 5), 4342),
                    local,
                    &bytes,
                );
                sim.pump(j);
            }
            Op::Msg {
                to,
                from,
                key,
                params,
                sign: do_sign,
                msg,
            } => {
                let mut bytes = msg.to_bytes();
                if do_sign {
                    if let LispMsg::MapRegister(MapRegister { .. })
                    | LispMsg::MapNotify(_)
                    | LispMsg::MapNotifyAck(_) = msg
                    {
                        let _ = sign(&mut bytes, KEYS[usize::from(key % 3)], &params);
                    }
                }
                let j = usize::from(to % 3);
                let local = SocketAddr::new(addr(to % 3), 4342);
                sim.nodes[j].handle_packet(
                    sim.now,
                    SocketAddr::new(addr(3 + from % 5), 4342),
                    local,
                    &bytes,
                );
                sim.pump(j);
            }
            Op::SetMapping {
                node,
                eid: e,
                rloc,
                seq,
            } => {
                let j = usize::from(node % 3);
                let now = sim.now;
                sim.nodes[j].set_mapping(now, eid(e), rloc.map(addr), seq);
                sim.pump(j);
            }
            Op::SetSites {
                keep,
                reverse,
                narrow,
            } => {
                let mut v: Vec<SiteCoreCfg> = sites()
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| keep & (1 << i) != 0)
                    .map(|(_, s)| s)
                    .collect();
                if reverse {
                    v.reverse();
                }
                if narrow && let Some(s) = v.first_mut() {
                    s.eids = vec![EidPrefix::prefix(100, "10.1.0.0/24".parse().unwrap())];
                }
                let now = sim.now;
                sim.nodes[0].set_sites(now, v);
                sim.pump(0);
            }
            Op::Request { eid: e, subscribe } => {
                let now = sim.now;
                sim.nodes[1].request(now, eid(e), subscribe);
                sim.pump(1);
            }
            Op::Unsubscribe { eid: e } => {
                let now = sim.now;
                sim.nodes[1].unsubscribe(now, eid(e));
                sim.pump(1);
            }
            Op::Advance { millis, big } => {
                let d = if big {
                    Duration::from_secs(u64::from(millis % 10_000))
                } else {
                    Duration::from_millis(u64::from(millis % 5_000))
                };
                let end = sim.now + d;
                let mut n = 0;
                loop {
                    n += 1;
                    if n > 100_000 {
                        panic!("timers do not settle");
                    }
                    let next = (0..sim.nodes.len())
                        .filter_map(|i| sim.nodes[i].poll_timeout().map(|t| (t, i)))
                        .min();
                    match next {
                        Some((t, i)) if t <= end => {
                            sim.now = sim.now.max(t);
                            let now = sim.now;
                            sim.nodes[i].handle_timeout(now);
                            sim.pump(i);
                        }
                        _ => break,
                    }
                }
                sim.now = end;
            }
        }
    }
    // Every SMR is retransmitted at most `smr_retries` times.
    for n in &sim.nodes {
        let c = n.counters();
        let first = c.smr_tx - c.smr_retransmits;
        assert!(c.smr_retransmits <= first * u64::from(n.cfg().timers.smr_retries));
        assert!(c.smr_gave_up <= first);
    }
    // Views never panic and are consistent.
    for n in &sim.nodes {
        let _ = n.registrations(sim.now);
        let _ = n.subscribers(sim.now);
        let _ = n.map_cache(sim.now);
    }
});
