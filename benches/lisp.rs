//! LISP core performance (issue 3), the core alone in one thread, no sockets:
//!
//! 1. Map-Request service rate: `handle_packet` of pre-encoded Map-Requests (plain and in an
//!    ECM, for EIDs among 100,000 registered, from 256 ITRs) plus draining the Map-Reply bytes
//!    with `poll_output`. Also negative replies, and with SMR requester tracking off. Target
//!    ≥ 500k replies/s.
//! 2. Pub/sub fan-out: one `set_mapping` with 10,000 confirmed subscribers of the EID, until
//!    the 10,000 signed Map-Notifies (HMAC-SHA-256-128) are drained. Target ≤ 100 ms.
//! 3. `set_mapping` → SMR / Map-Notify latency: 10,000 moves, each EID with one subscriber and
//!    one SMR requester; the time of the call plus draining its outputs, p50 / p99 / max.
//!
//! `cargo bench --bench lisp` prints the table (best of 3 for rates). Without `--bench`
//! (`cargo test --benches`) it runs small sizes once, with every assertion.

#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)] // a benchmark reads the wall clock

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use vmmi::lisp::{EidPrefix, Lisp, LispCoreCfg, Output, SiteCoreCfg};
use vmmi::wire::lisp::auth::{AuthParams, sign};
use vmmi::wire::lisp::{
    Bits, Ecm, EidRecord, InnerIp, Ipv4Header, LispAddr, LispMsg, Locator, MapRegister, MapRequest,
    XtrTrailer, decode,
};

const KEY: &[u8] = b"bench-key";
const MS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn v4(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 1, 0, 0)) + i)
}

fn itr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 0)) + i)
}

fn params() -> AuthParams {
    AuthParams {
        key_id: 0,
        alg_id: 2,
        truncate: true,
        legacy_key_id: false,
    }
}

fn core(limit_replies: bool, smr: bool) -> Lisp {
    let mut c = LispCoreCfg::new(IpAddr::V4(MS));
    c.map_server = true;
    c.map_resolver = true;
    c.smr = smr;
    c.sites = vec![SiteCoreCfg {
        name: "bench".into(),
        key: KEY.to_vec(),
        alg_id: 2,
        legacy_key_id: false,
        untruncated_auth: false,
        eids: vec![EidPrefix::prefix(100, "10.0.0.0/8".parse().unwrap())],
    }];
    if !limit_replies {
        c.limits.map_replies_per_rloc = None;
    }
    c.rng_seed = 42;
    Lisp::new(c, Instant::now())
}

fn req(eid: EidPrefix, from: Ipv4Addr, nonce: u64) -> MapRequest {
    let (addr, mask_len) = eid.to_wire(Default::default());
    MapRequest::new(nonce, LispAddr::Ipv4(from), addr, mask_len)
}

fn ecm_of(m: &MapRequest, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
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
    LispMsg::Ecm(Ecm::new(ip, 4342, LispMsg::MapRequest(m.clone()))).to_bytes()
}

fn drain(l: &mut Lisp) -> (usize, usize) {
    let (mut sends, mut bytes) = (0, 0);
    while let Some(o) = l.poll_output() {
        if let Output::Send { bytes: b, .. } = o {
            sends += 1;
            bytes += b.len();
        }
    }
    (sends, bytes)
}

fn sa(ip: Ipv4Addr) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), 4342)
}

/// Replies per second over `n` requests cycling through `reqs`.
fn rate(l: &mut Lisp, reqs: &[(Ipv4Addr, Vec<u8>)], n: usize, expect_bytes: bool) -> f64 {
    let local = sa(MS);
    let base = Instant::now();
    let mut now = base;
    let mut replies = 0usize;
    let t = Instant::now();
    for i in 0..n {
        let (from, b) = &reqs[i % reqs.len()];
        now += Duration::from_nanos(100);
        l.handle_packet(now, sa(*from), local, b);
        replies += drain(l).0;
    }
    let el = t.elapsed();
    if expect_bytes {
        assert_eq!(replies, n, "one Map-Reply per Map-Request");
    }
    replies as f64 / el.as_secs_f64()
}

fn service_rate(eids: u32, n: usize, reps: usize) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (name, smr, ecm, negative) in [
        ("proxy reply, plain Map-Request", true, false, false),
        ("proxy reply, ECM Map-Request", true, true, false),
        ("proxy reply, plain, SMR tracking off", false, false, false),
        ("negative reply (unregistered, 1 min)", true, false, true),
    ] {
        let mut l = core(false, smr);
        let now = Instant::now();
        for i in 0..eids {
            l.set_mapping(
                now,
                EidPrefix::host(100, IpAddr::V4(v4(i))),
                Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 200) as u8 + 1))),
                1,
            );
        }
        drain(&mut l);
        let reqs: Vec<(Ipv4Addr, Vec<u8>)> = (0..4096u32)
            .map(|k| {
                let target = if negative {
                    eids + k * 7
                } else {
                    (k * 7919) % eids
                };
                let e = EidPrefix::host(100, IpAddr::V4(v4(target)));
                let from = itr(k % 256);
                let m = req(e, from, u64::from(k) + 1);
                let b = if ecm {
                    ecm_of(&m, from, v4(target))
                } else {
                    let mut b = Vec::new();
                    m.encode(&mut b);
                    b
                };
                (from, b)
            })
            .collect();
        // correctness of one reply
        l.handle_packet(now, sa(reqs[0].0), sa(MS), &reqs[0].1);
        match l.poll_output() {
            Some(Output::Send { bytes, .. }) => match decode(&bytes).unwrap() {
                LispMsg::MapReply(r) => {
                    assert_eq!(r.records.len(), 1);
                    assert_eq!(r.records[0].locators.is_empty(), negative);
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        drain(&mut l);
        let best = (0..reps)
            .map(|_| rate(&mut l, &reqs, n, true))
            .fold(0.0, f64::max);
        out.push((name.to_string(), best));
    }
    out
}

fn register(xtr_id: u128, eid: EidPrefix, rloc: Ipv4Addr, nonce: u64) -> Vec<u8> {
    let (addr, mask_len) = eid.to_wire(Default::default());
    let m = MapRegister {
        proxy_reply: true,
        lisp_sec: false,
        reserved: Bits::new(0),
        eid_notify: false,
        ttl_timeout: false,
        merge: false,
        r: false,
        want_map_notify: false,
        nonce,
        auth: params().placeholder().unwrap(),
        records: vec![EidRecord::new(
            addr,
            mask_len,
            10,
            0,
            vec![Locator::new(LispAddr::Ipv4(rloc), true)],
        )],
        xtr: Some(XtrTrailer {
            xtr_id,
            site_id: Some(0),
        }),
    };
    let mut b = Vec::new();
    m.encode(&mut b);
    sign(&mut b, KEY, &params()).unwrap();
    b
}

/// Acks every Map-Notify in the outputs (as the xTRs would).
fn ack_all(l: &mut Lisp, now: Instant) -> usize {
    let mut notifies = Vec::new();
    while let Some(o) = l.poll_output() {
        if let Output::Send { to, bytes } = o
            && bytes[0] >> 4 == 4
        {
            notifies.push((to, bytes));
        }
    }
    for (to, mut b) in notifies.iter().cloned() {
        b[0] = (b[0] & 0x0f) | 0x50;
        sign(&mut b, KEY, &params()).unwrap();
        l.handle_packet(now, to, sa(MS), &b);
    }
    drain(l);
    notifies.len()
}

/// MS with `subs` subscribers (distinct xTRs) of `eid`, every confirmation acknowledged.
fn fanout_core(subs: u32, eid: EidPrefix) -> Lisp {
    let mut l = core(false, true);
    let now = Instant::now();
    l.set_mapping(now, eid, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))), 1);
    for k in 0..subs {
        let x = itr(k);
        let xtr_id = 0x1000 + u128::from(k);
        // the xTR registers its own EID (binds its xTR-ID to the site) ...
        let own = EidPrefix::host(100, IpAddr::V4(v4(100_000 + k)));
        l.handle_packet(now, sa(x), sa(MS), &register(xtr_id, own, x, 1));
        // ... then subscribes to `eid`
        let mut m = req(eid, x, 1000 + u64::from(k));
        m.records[0].notify = true;
        m.xtr = Some(XtrTrailer {
            xtr_id,
            site_id: Some(0),
        });
        let b = ecm_of(&m, x, v4(0));
        l.handle_packet(now, sa(x), sa(MS), &b);
        ack_all(&mut l, now);
    }
    assert_eq!(l.subscribers(now).len(), subs as usize);
    assert!(l.subscribers(now).iter().all(|s| s.confirmed));
    l
}

fn fanout(subs: u32, reps: usize) -> (Duration, usize) {
    let eid = EidPrefix::host(100, IpAddr::V4(v4(0)));
    let mut l = fanout_core(subs, eid);
    let mut best = Duration::MAX;
    let mut sent = 0;
    let mut now = Instant::now();
    for r in 0..reps {
        now += Duration::from_secs(1);
        let t = Instant::now();
        l.set_mapping(
            now,
            eid,
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10 + r as u8))),
            2 + r as u32,
        );
        let mut n = 0;
        let mut keep = Vec::with_capacity(subs as usize);
        while let Some(o) = l.poll_output() {
            if let Output::Send { to, bytes } = o {
                n += 1;
                keep.push((to, bytes));
            }
        }
        let el = t.elapsed();
        best = best.min(el);
        sent = n;
        // acknowledge (outside the measurement) so the next rep starts clean
        for (to, mut b) in keep {
            b[0] = (b[0] & 0x0f) | 0x50;
            sign(&mut b, KEY, &params()).unwrap();
            l.handle_packet(now, to, sa(MS), &b);
        }
        drain(&mut l);
        assert_eq!(l.pending_notifies(), 0);
    }
    (best, sent)
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// 10,000 moves: each EID has one subscriber and one SMR requester.
fn move_latency(moves: u32) -> (Duration, Duration, Duration, usize) {
    let mut l = core(false, true);
    let now = Instant::now();
    let x = itr(1);
    let xtr_id = 0x77;
    l.handle_packet(
        now,
        sa(x),
        sa(MS),
        &register(xtr_id, EidPrefix::host(100, IpAddr::V4(v4(900_000))), x, 1),
    );
    for k in 0..moves {
        let e = EidPrefix::host(100, IpAddr::V4(v4(k)));
        l.set_mapping(now, e, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))), 1);
        let mut m = req(e, x, 10 + u64::from(k));
        m.records[0].notify = true;
        m.xtr = Some(XtrTrailer {
            xtr_id,
            site_id: Some(0),
        });
        l.handle_packet(now, sa(x), sa(MS), &ecm_of(&m, x, v4(k)));
        // an SMR requester (another ITR)
        let r = req(e, itr(2 + k % 250), 1);
        let mut b = Vec::new();
        r.encode(&mut b);
        l.handle_packet(now, sa(itr(2 + k % 250)), sa(MS), &b);
    }
    ack_all(&mut l, now);
    let mut lat = Vec::with_capacity(moves as usize);
    let mut sends = 0;
    let mut t_now = now;
    for k in 0..moves {
        // 50 ms apart on the virtual clock: each of the 250 requester RLOCs gets an SMR every
        // 12.5 s (the 3 s per-RLOC limit never queues) and all 10,000 moves fit in the
        // requesters' 15-minute TTL
        t_now += Duration::from_millis(50);
        if l.poll_timeout().is_some_and(|d| d <= t_now) {
            l.handle_timeout(t_now); // the runtime's timer turn, not measured
            drain(&mut l);
        }
        let e = EidPrefix::host(100, IpAddr::V4(v4(k)));
        let t = Instant::now();
        l.set_mapping(t_now, e, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))), 2);
        let (s, _) = drain(&mut l);
        lat.push(t.elapsed());
        sends += s;
    }
    let p50 = pct(&mut lat, 0.5);
    let p99 = pct(&mut lat, 0.99);
    let max = pct(&mut lat, 1.0);
    (p50, p99, max, sends)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (eids, n, reps, subs, moves) = if full {
        (100_000, 2_000_000, 3, 10_000, 10_000)
    } else {
        (1_000, 20_000, 1, 200, 200)
    };
    println!(
        "LISP core benchmark ({})",
        if full {
            "full"
        } else {
            "smoke, run with --bench"
        }
    );
    println!();
    println!(
        "1. Map-Request service rate ({eids} registered EIDs, 256 ITRs, {n} requests, best of {reps})"
    );
    println!("{:<42} {:>14} {:>10}", "case", "replies/s", "ns/req");
    for (name, r) in service_rate(eids, n, reps) {
        println!("{name:<42} {r:>14.0} {:>10.0}", 1e9 / r);
        if full && name.starts_with("proxy reply, plain Map-Request") {
            assert!(r >= 500_000.0, "target: >= 500k Map-Replies/s");
        }
    }
    println!();
    let (d, sent) = fanout(subs, reps.max(3));
    println!(
        "2. Pub/sub fan-out: one set_mapping, {subs} subscribers: {sent} Map-Notifies in {:.2} ms (best of {})",
        d.as_secs_f64() * 1e3,
        reps.max(3)
    );
    assert_eq!(sent, subs as usize);
    if full {
        assert!(d <= Duration::from_millis(100), "target: <= 100 ms");
    }
    println!();
    let (p50, p99, max, sends) = move_latency(moves);
    println!(
        "3. set_mapping -> Map-Notify + SMR drained, {moves} moves: p50 {:.1} us, p99 {:.1} us, max {:.1} us ({sends} datagrams)",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        max.as_secs_f64() * 1e6
    );
    assert_eq!(
        sends,
        2 * moves as usize,
        "one publication and one SMR per move"
    );
}
