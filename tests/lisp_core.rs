//! The LISP core on a virtual clock: Map-Server registrations (lifetime, expiry, every
//! authentication failure, replay, merge, solicited Map-Notify bytes, Map-Notify to the
//! previous registrant), Map-Resolver answers (proxy reply, forwarding, negative replies with
//! the RFC 9301 §8.3 TTLs and ACT), pub/sub (RFC 9437: handshake, publication with nonce + 1,
//! retransmission and backoff until the Ack at exact times, unsubscribe, removal), SMR
//! fan-out and rate limit, SMR-invoked Map-Requests, the xTR registration cycle, and
//! `set_mapping` producing its Map-Notify/SMR in the same call. Bytes and fields are asserted.
//! This file holds the helpers, the Map-Server and the Map-Resolver cases; pub/sub and SMR are
//! in `lisp_core/pubsub_smr.rs`, the xTR role and the rest in `lisp_core/xtr.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod lisp_harness;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use lisp_harness::*;
use vmmi::lisp::{
    ChangeCause, DropReason, EidPrefix, LispEvent, NotifyKind, RejectReason, SiteCoreCfg,
    SubscriptionEnd,
};
use vmmi::wire::MacAddr;
use vmmi::wire::lisp::auth::{AuthParams, compute_auth, sign, verify};
use vmmi::wire::lisp::{
    Act, Bits, EidRecord, LispAddr, LispMsg, Locator, MapNotify, MapReply, MapRequest, decode,
};

const MS: &str = "10.0.0.1";

fn sha256_trunc() -> AuthParams {
    AuthParams {
        key_id: 0,
        alg_id: 2,
        truncate: true,
        legacy_key_id: false,
    }
}

fn dc_a() -> SiteCoreCfg {
    site("dc-a", &[pfx(100, "10.1.0.0/16"), EidPrefix::any_mac(100)])
}

fn dc_b() -> SiteCoreCfg {
    SiteCoreCfg {
        key: b"bkey".to_vec(),
        ..site("dc-b", &[pfx(200, "10.2.0.0/16")])
    }
}

fn ms_net() -> (Net, usize) {
    let mut net = Net::new();
    let ms = net.add(ms_cfg(MS, vec![dc_a(), dc_b()]));
    (net, ms)
}

fn rejections(net: &Net, i: usize) -> Vec<RejectReason> {
    net.nodes[i]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            LispEvent::RegistrationRejected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn rlocs_of(net: &Net, i: usize, eid: EidPrefix) -> Option<Vec<IpAddr>> {
    let now = net.now;
    net.nodes[i]
        .lisp
        .registrations(now)
        .into_iter()
        .find(|r| r.eid == eid)
        .map(|r| r.rlocs)
}

fn notify(p: &Pkt) -> MapNotify {
    match p.msg() {
        LispMsg::MapNotify(n) => n,
        other => panic!("not a Map-Notify: {other:?}"),
    }
}

fn reply(p: &Pkt) -> MapReply {
    match p.msg() {
        LispMsg::MapReply(r) => r,
        other => panic!("not a Map-Reply: {other:?}"),
    }
}

fn map_request(p: &Pkt) -> MapRequest {
    match p.msg() {
        LispMsg::MapRequest(r) => r,
        LispMsg::Ecm(e) => match *e.msg {
            LispMsg::MapRequest(r) => r,
            other => panic!("ECM without Map-Request: {other:?}"),
        },
        other => panic!("not a Map-Request: {other:?}"),
    }
}

fn is_type(p: &Pkt, t: u8) -> bool {
    p.bytes.first().is_some_and(|b| b >> 4 == t)
}

/// A Map-Notify-Ack for `n` (fields copied, type 5, re-signed).
fn ack_for(n: &[u8], key: &[u8], params: &AuthParams) -> Vec<u8> {
    let mut b = n.to_vec();
    b[0] = (b[0] & 0x0f) | 0x50;
    sign(&mut b, key, params).unwrap();
    b
}

// ---------------------------------------------------------------------------------------
// Map-Server: registrations

#[test]
fn registration_lives_three_minutes_and_refresh_extends_it() {
    let (mut net, ms) = ms_net();
    let e = host(100, "10.1.0.5");
    let mut r = Reg::new(vec![record(e, 10, 0, &["192.0.2.10"])], 1);
    r.xtr = Some((0xa, 1));
    net.inject(sa("192.0.2.10"), ms, &r.bytes());
    let v = net.nodes[ms].lisp.registrations(net.now);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].rlocs, vec![ip("192.0.2.10")]);
    assert!(v[0].proxy_reply);
    assert_eq!(v[0].registrants[0].site.as_deref(), Some("dc-a"));
    assert_eq!(v[0].registrants[0].expires_in_secs, Some(180));
    assert_eq!(v[0].registrants[0].xtr_id, Some(0xa));

    // RFC 9301 §8.2: removed 3 minutes after the last valid Map-Register.
    net.at(179.999);
    assert!(rlocs_of(&net, ms, e).is_some());
    net.at(180.0);
    assert!(rlocs_of(&net, ms, e).is_none());
    let ev = net.events_since(ms, 0);
    assert!(
        ev.iter()
            .any(|e2| matches!(e2, LispEvent::RegistrationExpired { eid, .. } if *eid == e))
    );
    assert!(ev.iter().any(|e2| matches!(e2,
        LispEvent::MappingChanged { eid, rlocs, cause: ChangeCause::Expiry, .. } if *eid == e && rlocs.is_empty())));
    assert_eq!(net.nodes[ms].lisp.counters().registrations_expired, 1);

    // A refresh at 100 s moves the expiry to 280 s.
    r.nonce = 2;
    net.inject(sa("192.0.2.10"), ms, &r.bytes());
    net.at(280.0);
    r.nonce = 3;
    net.inject(sa("192.0.2.10"), ms, &r.bytes());
    net.at(459.9);
    assert!(rlocs_of(&net, ms, e).is_some());
    net.at(460.0);
    assert!(rlocs_of(&net, ms, e).is_none());
}

#[test]
fn t_bit_uses_the_record_ttl() {
    let (mut net, ms) = ms_net();
    let e = host(100, "10.1.0.6");
    let mut r = Reg::new(vec![record(e, 1, 0, &["192.0.2.10"])], 1);
    r.ttl_timeout = true;
    net.inject(sa("192.0.2.10"), ms, &r.bytes());
    net.at(59.9);
    assert!(rlocs_of(&net, ms, e).is_some());
    net.at(60.0);
    assert!(rlocs_of(&net, ms, e).is_none());
}

#[test]
fn record_ttl_zero_deregisters() {
    let (mut net, ms) = ms_net();
    let e = host(100, "10.1.0.7");
    let mut r = Reg::new(vec![record(e, 10, 0, &["192.0.2.10"])], 1);
    r.xtr = Some((1, 1));
    net.inject(sa("192.0.2.10"), ms, &r.bytes());
    assert!(rlocs_of(&net, ms, e).is_some());
    let mut d = Reg::new(vec![record(e, 0, 0, &["192.0.2.10"])], 2);
    d.xtr = Some((1, 1));
    net.inject(sa("192.0.2.10"), ms, &d.bytes());
    assert!(rlocs_of(&net, ms, e).is_none());
    assert_eq!(net.nodes[ms].lisp.pending_timers(), 0);
}

#[test]
fn every_authentication_failure_is_rejected_and_counted() {
    let (mut net, ms) = ms_net();
    let e = host(100, "10.1.0.5");
    let from = sa("192.0.2.10");
    let base = Reg::new(vec![record(e, 10, 0, &["192.0.2.10"])], 10);

    // wrong key
    let mut r = base.clone();
    r.key = b"wrong".to_vec();
    net.inject(from, ms, &r.bytes());
    // unknown site: a key no site has and an EID no site covers
    let mut r = Reg::new(
        vec![record(host(300, "10.3.0.1"), 10, 0, &["192.0.2.10"])],
        11,
    );
    r.key = b"nobody".to_vec();
    net.inject(from, ms, &r.bytes());
    // EID outside the site: dc-a's key, an EID of dc-b
    let r = Reg::new(
        vec![
            record(e, 10, 0, &["192.0.2.10"]),
            record(host(200, "10.2.0.1"), 10, 0, &["192.0.2.10"]),
        ],
        12,
    );
    net.inject(from, ms, &r.bytes());
    // wrong algorithm: HMAC-SHA-1 to a SHA-256 site
    let mut r = base.clone();
    r.params.alg_id = 1;
    net.inject(from, ms, &r.bytes());
    // untruncated SHA-256 (32 bytes) without the knob
    let mut r = base.clone();
    r.params.truncate = false;
    net.inject(from, ms, &r.bytes());
    // Key ID 1 without the legacy knob
    let mut r = base.clone();
    r.params.key_id = 1;
    net.inject(from, ms, &r.bytes());

    assert_eq!(
        rejections(&net, ms),
        vec![
            RejectReason::WrongKey {
                site: "dc-a".into()
            },
            RejectReason::UnknownSite,
            RejectReason::EidOutsideSite {
                site: "dc-a".into(),
                eid: host(200, "10.2.0.1")
            },
            RejectReason::WrongAlgorithm {
                site: "dc-a".into(),
                expected: 2,
                got: 1
            },
            RejectReason::UntruncatedNotAccepted {
                site: "dc-a".into(),
                len: 32
            },
            RejectReason::KeyIdNotAccepted {
                site: "dc-a".into(),
                got: 1
            },
        ]
    );
    assert!(net.nodes[ms].lisp.registrations(net.now).is_empty());
    let c = net.nodes[ms].lisp.counters();
    assert_eq!(c.registrations_rejected, 6);
    assert_eq!(c.auth_failures, 5);
    assert_eq!(c.registrations_accepted, 0);

    // The same message, correct: accepted.
    net.inject(from, ms, &base.bytes());
    assert!(rlocs_of(&net, ms, e).is_some());
}

#[test]
fn nonce_replay_is_refused() {
    let (mut net, ms) = ms_net();
    let e = host(100, "10.1.0.5");
    let from = sa("192.0.2.10");
    let mut r = Reg::new(vec![record(e, 10, 0, &["192.0.2.10"])], 100);
    r.xtr = Some((0xa, 1));
    let first = r.bytes();
    net.inject(from, ms, &first);
    // verbatim replay, then an older nonce: RFC 9301 §5.6 "not greater than the saved nonce"
    net.inject(from, ms, &first);
    r.nonce = 99;
    net.inject(from, ms, &r.bytes());
    r.nonce = 101;
    net.inject(from, ms, &r.bytes());
    assert_eq!(
        rejections(&net, ms),
        vec![
            RejectReason::NonceReplay {
                site: "dc-a".into(),
                nonce: 100,
                last: 100
            },
            RejectReason::NonceReplay {
                site: "dc-a".into(),
                nonce: 99,
                last: 100
            },
        ]
    );
    assert_eq!(net.nodes[ms].lisp.counters().nonce_replays, 2);
    assert_eq!(net.nodes[ms].lisp.counters().registrations_accepted, 2);

    // Without an xTR-ID (OOR sends random nonces): only a repeat is refused.
    let mut o = Reg::new(
        vec![record(host(100, "10.1.0.8"), 10, 0, &["192.0.2.11"])],
        500,
    );
    let b = o.bytes();
    net.inject(sa("192.0.2.11"), ms, &b);
    net.inject(sa("192.0.2.11"), ms, &b);
    o.nonce = 7;
    net.inject(sa("192.0.2.11"), ms, &o.bytes());
    let rej = rejections(&net, ms);
    assert_eq!(rej.len(), 3);
    assert_eq!(
        rej[2],
        RejectReason::NonceReplay {
            site: "dc-a".into(),
            nonce: 500,
            last: 500
        }
    );
    assert_eq!(net.nodes[ms].lisp.counters().registrations_accepted, 4);
}

/// OOR 1.3.0's real Map-Register (lab/oor/README.md step 3): 16-bit Key ID 1, 20-byte
/// HMAC-SHA-1, IID 107 — accepted only with both knobs, and answered with the Map-Notify OOR
/// accepts: its record bytes verbatim, Key ID/Alg/length copied, HMAC recomputed.
const OOR_REGISTER: &str = "30000101 7cfafd6fc7e0ea6c 0001 0014 \
    3e17a6d0c5d598c727f1be36d7d078d598474f52 \
    0000000a 0118 1000 0000 \
    40030000 0220 000a 0000006b 0001 0a010700 \
    0164ff00 0005 0001 0a600001";

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

fn oor_site(legacy: bool, untruncated: bool) -> SiteCoreCfg {
    SiteCoreCfg {
        name: "oor".into(),
        key: b"oor-lab-key".to_vec(),
        alg_id: 1,
        legacy_key_id: legacy,
        untruncated_auth: untruncated,
        eids: vec![pfx(107, "10.1.7.0/24")],
    }
}

#[test]
fn oor_register_needs_the_interop_knobs_and_gets_a_byte_exact_map_notify() {
    let reg = unhex(OOR_REGISTER);
    assert_eq!(reg.len(), 76);
    let from = sa("10.96.0.1");

    // Without `untruncated_auth` the 20-byte SHA-1 is refused.
    let mut net = Net::new();
    let ms = net.add(ms_cfg("10.96.0.2", vec![oor_site(true, false)]));
    net.inject(from, ms, &reg);
    assert_eq!(
        rejections(&net, ms),
        vec![RejectReason::UntruncatedNotAccepted {
            site: "oor".into(),
            len: 20
        }]
    );

    // With both knobs: accepted, and the solicited Map-Notify goes to port 4342.
    let mut net = Net::new();
    let ms = net.add(ms_cfg("10.96.0.2", vec![oor_site(true, true)]));
    let mark = net.wire.len();
    net.inject(SocketAddr::new(ip("10.96.0.1"), 61000), ms, &reg);
    let sent = net.since(mark);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, sa("10.96.0.1"));
    let n = &sent[0].bytes;
    assert_eq!(n.len(), 76);
    assert_eq!(&n[..4], &[0x40, 0, 0, 1]);
    assert_eq!(&n[4..12], &reg[4..12], "nonce copied");
    assert_eq!(
        &n[12..16],
        &[0x00, 0x01, 0x00, 0x14],
        "Key ID/Alg/length copied"
    );
    assert_eq!(&n[36..], &reg[36..], "record copied byte for byte");
    let mut zeroed = n.clone();
    zeroed[16..36].fill(0);
    let want = compute_auth(&zeroed, b"oor-lab-key", 1, 20).unwrap();
    assert_eq!(&n[16..36], want.as_slice());
    assert!(verify(n, b"oor-lab-key", &AuthParams::oor()).is_ok());
    assert_eq!(
        rlocs_of(&net, ms, pfx(107, "10.1.7.0/24")),
        Some(vec![ip("10.96.0.1")])
    );

    // OOR's other accepted form, Key ID byte 1 (16-bit 0x0101), needs `legacy_key_id`.
    let mut other = reg.clone();
    other[12] = 1;
    other[4] ^= 0x55; // a new nonce (still a valid HMAC after re-signing)
    sign(&mut other, b"oor-lab-key", &AuthParams::oor()).unwrap();
    other[12] = 1;
    let mut zeroed = other.clone();
    zeroed[16..36].fill(0);
    let tag = compute_auth(&zeroed, b"oor-lab-key", 1, 20).unwrap();
    other[16..36].copy_from_slice(tag.as_slice());
    let mut strict = Net::new();
    let s = strict.add(ms_cfg("10.96.0.2", vec![oor_site(false, true)]));
    strict.inject(from, s, &other);
    assert_eq!(
        rejections(&strict, s),
        vec![RejectReason::KeyIdNotAccepted {
            site: "oor".into(),
            got: 1
        }]
    );
    net.inject(from, ms, &other);
    assert_eq!(net.nodes[ms].lisp.counters().registrations_accepted, 2);
}

#[test]
fn solicited_map_notify_for_an_xtr_id_register_verifies_and_has_no_trailer() {
    let (mut net, ms) = ms_net();
    let e = host(100, "10.1.0.5");
    let mut r = Reg::new(vec![record(e, 10, 3, &["192.0.2.10"])], 0x1122);
    r.xtr = Some((0xabc, 9));
    r.want_notify = true;
    let reg = r.bytes();
    let mark = net.wire.len();
    net.inject(sa("192.0.2.10"), ms, &reg);
    let sent = net.since(mark);
    assert_eq!(sent.len(), 1);
    let n = &sent[0].bytes;
    // header, nonce, Key ID 0 / Alg 2 / 16 bytes, HMAC, the record (register minus 24-byte trailer)
    assert_eq!(n.len(), reg.len() - 24);
    assert_eq!(
        &n[..16],
        &[0x40, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x11, 0x22, 0, 2, 0, 16]
    );
    assert_eq!(&n[32..], &reg[32..reg.len() - 24]);
    assert!(verify(n, KEY, &sha256_trunc()).is_ok());
    let m = notify(&sent[0]);
    assert_eq!(m.records, r.records);
    let ev = net.events_since(ms, 0);
    assert!(ev.contains(&LispEvent::MapNotifySent {
        to: sa("192.0.2.10"),
        nonce: 0x1122,
        kind: NotifyKind::Solicited
    }));
}

#[test]
fn hkdf_sites_authenticate_with_per_message_keys() {
    let mut net = Net::new();
    let s = SiteCoreCfg {
        alg_id: 3,
        ..site("hk", &[pfx(100, "10.1.0.0/16")])
    };
    let ms = net.add(ms_cfg(MS, vec![s]));
    let mut r = Reg::new(
        vec![record(host(100, "10.1.0.5"), 10, 0, &["192.0.2.10"])],
        1,
    );
    r.params.alg_id = 3;
    r.want_notify = true;
    let mark = net.wire.len();
    net.inject(sa("192.0.2.10"), ms, &r.bytes());
    let n = &net.since(mark)[0].bytes;
    assert!(
        verify(
            n,
            KEY,
            &AuthParams {
                alg_id: 3,
                ..sha256_trunc()
            }
        )
        .is_ok()
    );
    // the HKDF key differs per message type: verifying as a Map-Register's MAC fails
    let mut as_reg = n.clone();
    as_reg[0] = 0x30;
    assert!(
        verify(
            &as_reg,
            KEY,
            &AuthParams {
                alg_id: 3,
                ..sha256_trunc()
            }
        )
        .is_err()
    );
}

#[test]
fn a_move_notifies_the_previous_registrant_until_it_acks() {
    let (mut net, ms) = ms_net();
    let e = host(100, "10.1.0.5");
    let mut a = Reg::new(vec![record(e, 10, 1, &["192.0.2.10"])], 1);
    a.xtr = Some((0xa, 1));
    net.inject(sa("192.0.2.10"), ms, &a.bytes());
    let mut b = Reg::new(vec![record(e, 10, 2, &["192.0.2.20"])], 1);
    b.xtr = Some((0xb, 1));
    let mark = net.wire.len();
    net.inject(sa("192.0.2.20"), ms, &b.bytes());
    assert_eq!(rlocs_of(&net, ms, e), Some(vec![ip("192.0.2.20")]));
    let sent = net.since(mark);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, sa("192.0.2.10"));
    let n = notify(&sent[0]);
    assert_eq!(n.records.len(), 1);
    let rec = &n.records[0];
    assert_eq!(rec.eid, e.to_wire(Default::default()).0);
    assert_eq!(rec.mask_len, 32);
    assert_eq!(rec.map_version.get(), 2);
    assert!(!rec.authoritative);
    assert_eq!(rec.locators.len(), 1);
    assert_eq!(
        rec.locators[0].addr,
        LispAddr::Ipv4("192.0.2.20".parse().unwrap())
    );
    assert!(
        !rec.locators[0].local,
        "L bit cleared in what the Map-Server sends"
    );
    assert!(verify(&sent[0].bytes, KEY, &sha256_trunc()).is_ok());

    // Unacknowledged: retransmitted at +3 s, byte-identical.
    net.advance(Duration::from_secs(3));
    let again = net.since(mark);
    assert_eq!(again.len(), 2);
    assert_eq!(again[1].bytes, sent[0].bytes);
    assert_eq!(again[1].at, Duration::from_secs(3));
    // The Ack stops it.
    net.inject(
        sa("192.0.2.10"),
        ms,
        &ack_for(&sent[0].bytes, KEY, &sha256_trunc()),
    );
    net.advance(Duration::from_secs(120));
    let after: Vec<_> = net
        .since(mark)
        .into_iter()
        .filter(|p| is_type(p, 4))
        .collect();
    assert_eq!(after.len(), 2);
    assert_eq!(net.nodes[ms].lisp.pending_notifies(), 0);
    assert!(net.events_since(ms, 0).iter().any(|e| matches!(
        e,
        LispEvent::MapNotifyAcked {
            kind: NotifyKind::PreviousRegistrant,
            ..
        }
    )));
}

#[test]
fn an_ack_with_a_bad_hmac_is_dropped() {
    let (mut net, ms) = ms_net();
    let e = host(100, "10.1.0.5");
    let mut a = Reg::new(vec![record(e, 10, 1, &["192.0.2.10"])], 1);
    a.xtr = Some((0xa, 1));
    net.inject(sa("192.0.2.10"), ms, &a.bytes());
    let mark = net.wire.len();
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.30")), 5)
    });
    let n = net.since(mark)[0].bytes.clone();
    net.inject(
        sa("192.0.2.10"),
        ms,
        &ack_for(&n, b"wrong", &sha256_trunc()),
    );
    assert_eq!(net.nodes[ms].lisp.pending_notifies(), 1);
    assert!(net.events_since(ms, 0).iter().any(|e| matches!(
        e,
        LispEvent::Dropped {
            reason: DropReason::AuthFailed { .. },
            ..
        }
    )));
}

#[test]
fn merge_unions_rloc_sets_and_a_plain_register_replaces_them() {
    let (mut net, ms) = ms_net();
    let e = host(100, "10.1.0.5");
    let mut a = Reg::new(vec![record(e, 10, 0, &["192.0.2.20"])], 1);
    a.xtr = Some((0xa, 1));
    a.merge = true;
    let mut b = Reg::new(vec![record(e, 10, 0, &["192.0.2.10", "2001:db8::1"])], 1);
    b.xtr = Some((0xb, 1));
    b.merge = true;
    net.inject(sa("192.0.2.20"), ms, &a.bytes());
    net.at(60.0);
    net.inject(sa("192.0.2.10"), ms, &b.bytes());
    // RFC 9301 §5.5 order: IPv4 ascending, then IPv6
    assert_eq!(
        rlocs_of(&net, ms, e),
        Some(vec![ip("192.0.2.10"), ip("192.0.2.20"), ip("2001:db8::1")])
    );
    // a expires at 180 s, b lives until 240 s
    net.at(180.0);
    assert_eq!(
        rlocs_of(&net, ms, e),
        Some(vec![ip("192.0.2.10"), ip("2001:db8::1")])
    );
    // a plain (non-merge) registration by a third xTR replaces the set
    let mut c = Reg::new(vec![record(e, 10, 0, &["192.0.2.30"])], 1);
    c.xtr = Some((0xc, 1));
    net.inject(sa("192.0.2.30"), ms, &c.bytes());
    assert_eq!(rlocs_of(&net, ms, e), Some(vec![ip("192.0.2.30")]));
    assert_eq!(
        net.nodes[ms].lisp.registrations(net.now)[0]
            .registrants
            .len(),
        1
    );
}

#[test]
fn an_older_map_version_is_dropped() {
    let (mut net, ms) = ms_net();
    let e = host(100, "10.1.0.5");
    let mut a = Reg::new(vec![record(e, 10, 7, &["192.0.2.10"])], 1);
    a.xtr = Some((0xa, 1));
    net.inject(sa("192.0.2.10"), ms, &a.bytes());
    let mut b = Reg::new(vec![record(e, 10, 6, &["192.0.2.20"])], 1);
    b.xtr = Some((0xb, 1));
    net.inject(sa("192.0.2.20"), ms, &b.bytes());
    assert_eq!(rlocs_of(&net, ms, e), Some(vec![ip("192.0.2.10")]));
    assert_eq!(net.nodes[ms].lisp.counters().stale_versions, 1);
}

// ---------------------------------------------------------------------------------------
// Map-Resolver

fn registered(proxy: bool) -> (Net, usize, EidPrefix) {
    let (mut net, ms) = ms_net();
    let e = host(100, "10.1.0.5");
    let mut r = Reg::new(vec![record(e, 10, 4, &["192.0.2.10"])], 1);
    r.xtr = Some((0xa, 1));
    r.proxy = proxy;
    net.inject(sa("192.0.2.10"), ms, &r.bytes());
    (net, ms, e)
}

#[test]
fn proxy_reply_to_an_ecm_map_request_goes_to_the_itr_rloc_and_inner_port() {
    let (mut net, ms, e) = registered(true);
    let req = request(e, "192.0.2.50", 0xfeed);
    let bytes = ecm(
        &req,
        Ipv4Addr::new(192, 0, 2, 50),
        Ipv4Addr::new(10, 1, 0, 5),
        61000,
    );
    let mark = net.wire.len();
    net.inject(sa("192.0.2.50"), ms, &bytes);
    let sent = net.since(mark);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, SocketAddr::new(ip("192.0.2.50"), 61000));
    let (addr, mask_len) = e.to_wire(Default::default());
    let want = MapReply {
        probe: false,
        echo_nonce: false,
        security: false,
        reserved: Bits::new(0),
        nonce: 0xfeed,
        records: vec![EidRecord {
            ttl: 10,
            mask_len,
            act: Act::NO_ACTION,
            authoritative: false,
            reserved: Bits::new(0),
            rsvd: Bits::new(0),
            map_version: Bits::new(4),
            eid: addr,
            locators: vec![Locator {
                local: false,
                ..loc("192.0.2.10")
            }],
        }],
        lisp_sec_data: Vec::new(),
    };
    assert_eq!(sent[0].bytes, LispMsg::MapReply(want).to_bytes());
    // the cached record gives the same bytes the second time
    net.inject(sa("192.0.2.50"), ms, &bytes);
    assert_eq!(net.since(mark)[1].bytes, sent[0].bytes);
}

#[test]
fn without_proxy_the_ecm_is_forwarded_to_the_etr_verbatim() {
    let (mut net, ms, e) = registered(false);
    let req = request(e, "192.0.2.50", 7);
    let bytes = ecm(
        &req,
        Ipv4Addr::new(192, 0, 2, 50),
        Ipv4Addr::new(10, 1, 0, 5),
        61000,
    );
    let mark = net.wire.len();
    net.inject(sa("192.0.2.50"), ms, &bytes);
    let sent = net.since(mark);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, sa("192.0.2.10"));
    assert_eq!(sent[0].bytes, bytes);

    // A plain Map-Request is encapsulated: inner 192.0.2.50 → EID, inner sport = its port.
    let mark = net.wire.len();
    net.inject(
        SocketAddr::new(ip("192.0.2.50"), 50000),
        ms,
        &bytes_of(&req),
    );
    let sent = net.since(mark);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, sa("192.0.2.10"));
    let LispMsg::Ecm(x) = sent[0].msg() else {
        panic!("not an ECM")
    };
    assert_eq!(x.udp.src_port, 50000);
    assert_eq!(x.udp.dst_port, 4342);
    assert_ne!(x.udp.checksum, 0);
    match &x.ip {
        vmmi::wire::lisp::InnerIp::V4(h) => {
            assert_eq!(h.src, Ipv4Addr::new(192, 0, 2, 50));
            assert_eq!(h.dst, Ipv4Addr::new(10, 1, 0, 5));
        }
        other => panic!("inner header {other:?}"),
    }
    assert_eq!(*x.msg, LispMsg::MapRequest(req));
    assert_eq!(net.nodes[ms].lisp.counters().map_requests_forwarded, 2);
}

fn negative(net: &mut Net, ms: usize, eid: EidPrefix) -> EidRecord {
    let mark = net.wire.len();
    net.inject(
        sa("192.0.2.50"),
        ms,
        &bytes_of(&request(eid, "192.0.2.50", 3)),
    );
    let sent = net.since(mark);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let r = reply(&sent[0]);
    assert_eq!(r.nonce, 3);
    assert_eq!(r.records.len(), 1);
    r.records[0].clone()
}

#[test]
fn negative_replies_carry_the_rfc_ttl_act_and_least_specific_prefix() {
    let (mut net, ms) = ms_net();
    // Outside configured space: RFC 9301 §8.3 Natively-Forward, 15 minutes, and §8.4 the
    // least-specific prefix not covering any EID-prefix: 10.200.0.1 vs 10.1.0.0/16 share 8
    // bits → 10.128.0.0/9.
    let r = negative(&mut net, ms, host(100, "10.200.0.1"));
    assert_eq!(r.ttl, 15);
    assert_eq!(r.act, Act::NATIVELY_FORWARD);
    assert!(r.locators.is_empty());
    assert!(!r.authoritative);
    assert_eq!(r.mask_len, 9);
    assert_eq!(
        r.eid,
        pfx(100, "10.128.0.0/9").to_wire(Default::default()).0
    );
    // 10.0.0.1: shares 15 bits with 10.1.0.0 → /16 10.0.0.0
    let r = negative(&mut net, ms, host(100, "10.0.0.1"));
    assert_eq!((r.mask_len, r.ttl), (16, 15));
    // An IID without any site: the whole space, 0.0.0.0/0.
    let r = negative(&mut net, ms, host(300, "10.0.0.1"));
    assert_eq!((r.mask_len, r.ttl), (0, 15));
    // Configured but unregistered: "Natively-Forward and a 1-minute TTL", the host itself.
    let r = negative(&mut net, ms, host(100, "10.1.9.9"));
    assert_eq!((r.mask_len, r.ttl, r.act), (32, 1, Act::NATIVELY_FORWARD));
    assert_eq!(r.eid, host(100, "10.1.9.9").to_wire(Default::default()).0);
    // MAC space (mac:any in IID 100) unregistered: 1 minute /48; IID 200 has no MACs: /0.
    let m = EidPrefix::mac(100, MacAddr([2, 0, 0, 0, 0, 9]));
    let r = negative(&mut net, ms, m);
    assert_eq!((r.mask_len, r.ttl), (48, 1));
    let r = negative(
        &mut net,
        ms,
        EidPrefix::mac(200, MacAddr([2, 0, 0, 0, 0, 9])),
    );
    assert_eq!((r.mask_len, r.ttl), (0, 15));
    assert_eq!(net.nodes[ms].lisp.counters().negative_replies_tx, 6);
}

/// Real OOR 1.3.0 bytes from the live suite (conformance/interop/lisp_oor.sh; capture on
/// vmmi's port towards OOR, 2026-11-25): OOR (RLOC 10.99.0.11, EID 10.1.7.0/24 in IID 107,
/// pinging from 10.1.7.1) misses [107] 10.107.0.50 before any VM has it: ECM, inner IPv4
/// 10.1.7.1 → 10.107.0.50, UDP 4342 → 4342, Map-Request nonce 7c79df6b3bb5303c.
const OOR_ECM_MISS: &str = "80000000 4500005400024000ff115ff80a0107010a6b0032 10f610f600403eab \
    100000017c79df6b3bb5303c 400300000220000a0000006b00010a010701 00010a63000b \
    0020400300000220000a0000006b00010a6b0032";
/// ... and, after vmmi's SMR, OOR's SMR-invoked ECM Map-Request (s bit, nonce
/// 5a7ba66b38cc7b08) for the negative prefix it had cached from our answer, [107]
/// 10.64.0.0/10 (inner destination = the prefix's network address).
const OOR_ECM_SMR_INVOKED: &str = "80000000 4500005400044000ff1160530a0107010a400000 10f610f600405256 \
    104000015a7ba66b38cc7b08 400300000220000a0000006b00010a010701 00010a63000b \
    000a400300000220000a0000006b00010a400000";
const OOR_RLOC: &str = "10.99.0.11";

/// The only datagram sent since `mark`, as a Map-Reply to OOR's control port.
fn reply_to_oor(net: &Net, mark: usize) -> MapReply {
    let sent = net.since(mark);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, sa(OOR_RLOC));
    reply(&sent[0])
}

/// Found by the live OOR suite: a VNI's IID had no VM yet, so OOR's miss got the 15-minute
/// least-specific hole [107] 10.64.0.0/10; RFC 9301 §8.3 makes a configured VNI's space
/// "configured", so the answer is the 1-minute negative for the queried host, and the VM
/// appearing there solicits OOR with exactly the EIDs OOR checks (lab/oor/README.md step 4).
#[test]
fn oor_misses_in_a_vni_before_the_vm_get_a_one_minute_host_negative_then_an_smr() {
    let mut cfg = ms_cfg("10.99.0.1", vec![oor_site(true, true)]);
    cfg.evpn_iids = vec![107];
    let mut net = Net::new();
    let ms = net.add(cfg);
    let vm = host(107, "10.107.0.50");
    let mark = net.wire.len();
    net.inject(sa(OOR_RLOC), ms, &unhex(OOR_ECM_MISS));
    let r = reply_to_oor(&net, mark);
    assert_eq!(r.nonce, 0x7c79_df6b_3bb5_303c);
    let rec = &r.records[0];
    assert_eq!(
        (rec.mask_len, rec.ttl, rec.act),
        (32, 1, Act::NATIVELY_FORWARD)
    );
    assert_eq!(rec.eid, vm.to_wire(Default::default()).0);
    assert!(rec.locators.is_empty());
    // the VM appears at a VTEP: OOR is solicited, record = its Source-EID, source EID = the VM
    let (_, sent) = net.call(ms, |l, now| {
        l.set_mapping(now, vm, Some(ip("10.255.0.1")), 0)
    });
    let smr: Vec<&Pkt> = sent.iter().filter(|p| is_type(p, 1)).collect();
    assert_eq!(smr.len(), 1);
    assert_eq!(smr[0].to, sa(OOR_RLOC));
    let m = map_request(smr[0]);
    assert!(m.smr && m.dont_map_reply);
    assert_eq!(m.source_eid, vm.to_wire(Default::default()).0);
    assert_eq!(
        m.records[0].eid,
        host(107, "10.1.7.1").to_wire(Default::default()).0
    );
    // without the VNI in `evpn_iids` (an IID the feed has not touched yet): §8.4's hole
    let mut net = Net::new();
    let ms = net.add(ms_cfg("10.99.0.1", vec![oor_site(true, true)]));
    let mark = net.wire.len();
    net.inject(sa(OOR_RLOC), ms, &unhex(OOR_ECM_MISS));
    let rec = reply_to_oor(&net, mark).records[0].clone();
    assert_eq!((rec.mask_len, rec.ttl), (10, 15));
}

/// Found by the live OOR suite: OOR answers an SMR by asking for the prefix it cached — here
/// our own 15-minute negative [107] 10.64.0.0/10 — and we answered that prefix with a
/// negative again although the VM had just appeared inside it, so OOR re-armed its negative
/// entry and could not reach the VM. RFC 9301 §8.4: the answer must not "match any
/// EID-Prefix known to exist"; it now carries TTL 0 (§5.4: "the entry MUST be removed from
/// the cache immediately"), while a prefix with nothing inside keeps the 1-minute TTL.
#[test]
fn a_negative_answer_never_caches_over_a_mapping_inside_it() {
    let mut net = Net::new();
    let ms = net.add(ms_cfg("10.99.0.1", vec![oor_site(true, true)]));
    let vm = host(107, "10.107.0.50");
    let mark = net.wire.len();
    net.inject(sa(OOR_RLOC), ms, &unhex(OOR_ECM_MISS));
    let rec = reply_to_oor(&net, mark).records[0].clone();
    assert_eq!((rec.mask_len, rec.ttl), (10, 15));
    let (_, sent) = net.call(ms, |l, now| {
        l.set_mapping(now, vm, Some(ip("10.255.0.1")), 0)
    });
    let smr: Vec<&Pkt> = sent.iter().filter(|p| is_type(p, 1)).collect();
    assert_eq!(smr.len(), 1, "the requester of the hole is solicited");
    assert_eq!(
        map_request(smr[0]).source_eid,
        vm.to_wire(Default::default()).0
    );
    let mark = net.wire.len();
    net.inject(sa(OOR_RLOC), ms, &unhex(OOR_ECM_SMR_INVOKED));
    let r = reply_to_oor(&net, mark);
    assert_eq!(r.nonce, 0x5a7b_a66b_38cc_7b08);
    let rec = &r.records[0];
    assert_eq!(
        (rec.mask_len, rec.ttl, rec.act, rec.locators.len()),
        (10, 0, Act::NATIVELY_FORWARD, 0)
    );
    assert_eq!(
        rec.eid,
        pfx(107, "10.64.0.0/10").to_wire(Default::default()).0
    );
    // the host itself now resolves
    let mark = net.wire.len();
    net.inject(sa(OOR_RLOC), ms, &unhex(OOR_ECM_MISS));
    let rec = reply_to_oor(&net, mark).records[0].clone();
    assert_eq!((rec.mask_len, rec.locators.len()), (32, 1));
    assert_eq!(
        rec.locators[0].addr,
        LispAddr::Ipv4(Ipv4Addr::new(10, 255, 0, 1))
    );
    // a prefix that holds no mapping (checked exactly: 256 probes) keeps the 1-minute TTL;
    // the /24 holding the VM gets 0
    for (p, ttl) in [("10.107.1.0/24", 1), ("10.107.0.0/24", 0)] {
        let mark = net.wire.len();
        net.inject(
            sa(OOR_RLOC),
            ms,
            &bytes_of(&request(pfx(107, p), OOR_RLOC, 9)),
        );
        let rec = reply_to_oor(&net, mark).records[0].clone();
        assert_eq!((rec.mask_len, rec.ttl), (24, ttl), "{p}");
    }
}

#[test]
fn a_mac_request_with_afi_16389_gets_a_16389_reply() {
    let (mut net, ms) = ms_net();
    let m = EidPrefix::mac(100, MacAddr([2, 0, 0, 0xaa, 0xbb, 0xcc]));
    net.with(ms, |l, now| {
        l.set_mapping(now, m, Some(ip("192.0.2.10")), 1)
    });
    let mut req = request(m, "192.0.2.50", 1);
    req.records[0].eid = m.to_wire(vmmi::wire::lisp::MacAfi::Mac48).0;
    let mark = net.wire.len();
    net.inject(sa("192.0.2.50"), ms, &bytes_of(&req));
    let r = reply(&net.since(mark)[0]);
    assert_eq!(
        r.records[0].eid,
        m.to_wire(vmmi::wire::lisp::MacAfi::Mac48).0
    );
    assert_eq!(r.records[0].mask_len, 48);
}

#[test]
fn probes_requests_without_itr_rloc_and_garbage_are_dropped_with_a_reason() {
    let (mut net, ms, e) = registered(true);
    let mut p = request(e, "192.0.2.50", 1);
    p.probe = true;
    net.inject(sa("192.0.2.50"), ms, &bytes_of(&p));
    let mut n = request(e, "192.0.2.50", 1);
    n.itr_rlocs = vec![LispAddr::Mac {
        afi: Default::default(),
        mac: MacAddr([2, 0, 0, 0, 0, 1]),
    }];
    net.inject(sa("192.0.2.50"), ms, &bytes_of(&n));
    net.inject(sa("192.0.2.50"), ms, &[0x10, 0, 0]);
    net.inject(sa("192.0.2.50"), ms, &[0x70, 0, 0, 0]);
    let mut d = request(e, "192.0.2.50", 1);
    d.dont_map_reply = true;
    let mark = net.wire.len();
    net.inject(sa("192.0.2.50"), ms, &bytes_of(&d));
    assert!(net.since(mark).is_empty(), "D bit: no Map-Reply");
    let reasons: Vec<DropReason> = net.nodes[ms]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            LispEvent::Dropped { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 4);
    assert_eq!(reasons[0], DropReason::Probe);
    assert_eq!(reasons[1], DropReason::NoItrRloc);
    assert!(matches!(reasons[2], DropReason::Malformed { .. }));
    assert!(matches!(reasons[3], DropReason::Malformed { .. }));
    let c = net.nodes[ms].lisp.counters();
    assert_eq!((c.rx_malformed, c.rx_dropped), (2, 4));
}

#[test]
fn map_replies_are_rate_limited_per_rloc() {
    let mut net = Net::new();
    let mut c = ms_cfg(MS, vec![dc_a()]);
    c.limits.map_replies_per_rloc = Some(2);
    let ms = net.add(c);
    let e = host(100, "10.1.0.5");
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.10")), 1)
    });
    let mark = net.wire.len();
    for n in 0..4 {
        net.inject(
            sa("192.0.2.50"),
            ms,
            &bytes_of(&request(e, "192.0.2.50", n)),
        );
    }
    assert_eq!(net.since(mark).len(), 2);
    net.advance(Duration::from_millis(500));
    net.inject(
        sa("192.0.2.50"),
        ms,
        &bytes_of(&request(e, "192.0.2.50", 9)),
    );
    assert_eq!(net.since(mark).len(), 3);
    assert_eq!(net.nodes[ms].lisp.counters().replies_rate_limited, 2);
}

#[path = "lisp_core/pubsub_smr.rs"]
mod pubsub_smr;
#[path = "lisp_core/xtr.rs"]
mod xtr;
