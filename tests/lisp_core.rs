//! The LISP core on a virtual clock: Map-Server registrations (lifetime, expiry, every
//! authentication failure, replay, merge, solicited Map-Notify bytes, Map-Notify to the
//! previous registrant), Map-Resolver answers (proxy reply, forwarding, negative replies with
//! the RFC 9301 §8.3 TTLs and ACT), pub/sub (RFC 9437: handshake, publication with nonce + 1,
//! retransmission and backoff until the Ack at exact times, unsubscribe, removal), SMR
//! fan-out and rate limit, SMR-invoked Map-Requests, the xTR registration cycle, and
//! `set_mapping` producing its Map-Notify/SMR in the same call. Bytes and fields are asserted.
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

// ---------------------------------------------------------------------------------------
// Pub/sub between a Map-Server core and an xTR core

const XTR: &str = "192.0.2.30";

/// MS + xTR; the xTR has registered a local EID (so its xTR-ID is bound to dc-a) and the MS
/// has `e` at 192.0.2.10 from EVPN.
fn pubsub_net() -> (Net, usize, usize, EidPrefix) {
    let mut net = Net::new();
    let ms = net.add(ms_cfg(MS, vec![dc_a()]));
    let x = net.add(xtr_cfg(XTR, MS));
    net.with(x, |l, now| {
        l.set_mapping(now, host(100, "10.1.0.30"), Some(ip(XTR)), 0)
    });
    let e = host(100, "10.1.0.5");
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.10")), 1)
    });
    (net, ms, x, e)
}

fn subscribed() -> (Net, usize, usize, EidPrefix, u64) {
    let (mut net, ms, x, e) = pubsub_net();
    let mark = net.wire.len();
    net.with(x, |l, now| l.request(now, e, true));
    let sent = net.since(mark);
    let req = map_request(&sent[0]);
    (net, ms, x, e, req.nonce)
}

#[test]
fn subscription_handshake() {
    let (mut net, ms, x, e) = pubsub_net();
    let mark = net.wire.len();
    net.with(x, |l, now| l.request(now, e, true));
    let sent = net.since(mark);
    // xTR → MS: ECM Map-Request, I bit + xTR-ID/Site-ID, N bit.
    assert_eq!(sent[0].to, sa(MS));
    assert!(is_type(&sent[0], 8));
    let req = map_request(&sent[0]);
    assert!(req.records[0].notify);
    let xt = req.xtr.expect("I bit");
    assert_eq!(xt.xtr_id, vmmi::lisp::xtr_id_from(ip(XTR)));
    assert_eq!(xt.site_id, Some(0));
    // MS → xTR: Map-Notify with the request's nonce, signed with the site key, to the
    // ITR-RLOC port 4342, carrying the mapping; no Map-Reply.
    assert_eq!(sent.len(), 3, "{sent:#?}");
    assert_eq!(sent[1].to, sa(XTR));
    let n = notify(&sent[1]);
    assert_eq!(n.nonce, req.nonce);
    assert!(verify(&sent[1].bytes, KEY, &sha256_trunc()).is_ok());
    assert_eq!(
        n.records[0].locators[0].addr,
        LispAddr::Ipv4("192.0.2.10".parse().unwrap())
    );
    // xTR → MS: Map-Notify-Ack, same nonce, re-signed with the Map-Notify-Ack salt.
    assert!(is_type(&sent[2], 5));
    assert_eq!(sent[2].to, sa(MS));
    let LispMsg::MapNotifyAck(a) = sent[2].msg() else {
        panic!()
    };
    assert_eq!(a.nonce, req.nonce);
    assert_eq!(a.records, n.records);
    assert!(verify(&sent[2].bytes, KEY, &sha256_trunc()).is_ok());

    let subs = net.nodes[ms].lisp.subscribers(net.now);
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].eid, e);
    assert!(subs[0].confirmed && !subs[0].awaiting_ack);
    assert_eq!(subs[0].itr_rlocs, vec![ip(XTR)]);
    let cache = net.nodes[x].lisp.map_cache(net.now);
    assert_eq!(cache.len(), 1);
    assert_eq!(cache[0].rlocs, vec![ip("192.0.2.10")]);
    assert!(cache[0].subscribed);
    assert!(
        net.events_since(x, 0)
            .contains(&LispEvent::SubscriptionConfirmed { eid: e })
    );
    assert_eq!(net.nodes[ms].lisp.pending_notifies(), 0);
}

#[test]
fn set_mapping_publishes_with_nonce_plus_one_in_the_same_call() {
    let (mut net, ms, x, e, n0) = subscribed();
    let (_, sent) = net.call(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.20")), 2)
    });
    let notifies: Vec<_> = sent.iter().filter(|p| is_type(p, 4)).collect();
    assert_eq!(
        notifies.len(),
        1,
        "the publication leaves in the set_mapping call"
    );
    assert_eq!(notifies[0].to, sa(XTR));
    let n = notify(notifies[0]);
    assert_eq!(n.nonce, n0 + 1);
    assert_eq!(n.records[0].map_version.get(), 2);
    assert_eq!(
        n.records[0].locators[0].addr,
        LispAddr::Ipv4("192.0.2.20".parse().unwrap())
    );
    assert_eq!(
        net.nodes[x].lisp.map_cache(net.now)[0].rlocs,
        vec![ip("192.0.2.20")]
    );
    // next change: nonce + 2
    let (_, sent) = net.call(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.21")), 3)
    });
    assert_eq!(notify(&sent[0]).nonce, n0 + 2);
    assert_eq!(net.nodes[ms].lisp.counters().publications_tx, 2);
    assert_eq!(
        net.nodes[ms].lisp.pending_notifies(),
        0,
        "both acknowledged"
    );
}

#[test]
fn publication_retransmits_three_times_three_seconds_then_backs_off_then_drops() {
    let (mut net, ms, x, e, n0) = subscribed();
    net.lose = Some(Box::new(|p: &Pkt| {
        p.bytes.first().is_some_and(|b| b >> 4 == 5)
    }));
    let t0 = net.t();
    let mark = net.wire.len();
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.20")), 2)
    });
    net.advance(Duration::from_secs(99));
    let from_ms: Vec<Pkt> = net
        .since(mark)
        .into_iter()
        .filter(|p| is_type(p, 4) && p.from == sa(MS) && notify(p).nonce == n0 + 1)
        .collect();
    let times: Vec<u64> = from_ms.iter().map(|p| (p.at - t0).as_secs()).collect();
    // RFC 9301 §5.7: 3 retransmissions 3 s apart, then 3 with the interval doubled; given
    // up 48 s after the last; then one Map-Notify with the same nonce, no locators, ACT 5.
    assert_eq!(times, vec![0, 3, 6, 9, 15, 27, 51, 99]);
    for p in &from_ms[..7] {
        assert_eq!(p.bytes, from_ms[0].bytes);
        assert_eq!(notify(p).nonce, n0 + 1);
    }
    let last = notify(&from_ms[7]);
    assert_eq!(last.nonce, n0 + 1);
    assert_eq!(last.records[0].act, Act::DROP_AUTH_FAILURE);
    assert!(last.records[0].locators.is_empty());
    assert!(net.events_since(ms, 0).iter().any(|e2| matches!(e2,
        LispEvent::SubscriberRemoved { eid, why: SubscriptionEnd::NoAck, .. } if *eid == e)));
    // The xTR re-acked every retransmission (all lost) and, told it was dropped, subscribes
    // again with nonce + 2.
    let acks = net
        .since(mark)
        .into_iter()
        .filter(|p| match p.msg() {
            LispMsg::MapNotifyAck(a) => a.nonce == n0 + 1,
            _ => false,
        })
        .count();
    assert_eq!(acks, 7);
    assert!(
        net.events_since(x, 0)
            .contains(&LispEvent::SubscriptionLost { eid: e })
    );
    let resub: Vec<Pkt> = net
        .since(mark)
        .into_iter()
        .filter(|p| is_type(p, 8) && p.from == sa(XTR))
        .collect();
    assert_eq!(resub.len(), 1);
    assert_eq!(map_request(&resub[0]).nonce, n0 + 2);
    assert_eq!(resub[0].at - t0, Duration::from_secs(99));
}

#[test]
fn a_superseding_change_carries_nonce_plus_two() {
    let (mut net, ms, _x, e, n0) = subscribed();
    net.lose = Some(Box::new(|p: &Pkt| {
        p.bytes.first().is_some_and(|b| b >> 4 == 5)
    }));
    let mark = net.wire.len();
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.20")), 2)
    });
    net.advance(Duration::from_secs(1));
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.21")), 3)
    });
    net.advance(Duration::from_secs(3));
    let n: Vec<(Duration, u64)> = net
        .since(mark)
        .into_iter()
        .filter(|p| is_type(p, 4))
        .map(|p| (p.at, notify(&p).nonce))
        .collect();
    let t = n[0].0;
    assert_eq!(
        n,
        vec![
            (t, n0 + 1),
            (t + Duration::from_secs(1), n0 + 2),
            (t + Duration::from_secs(4), n0 + 2)
        ]
    );
    assert_eq!(net.nodes[ms].lisp.pending_notifies(), 1);
}

#[test]
fn unsubscribe_removes_the_state_and_replays_are_dropped() {
    let (mut net, ms, x, e, n0) = pubsub_net_subscribe_capture();
    let mark = net.wire.len();
    net.with(x, |l, now| l.unsubscribe(now, e));
    let sent = net.since(mark);
    let req = map_request(&sent[0]);
    assert_eq!(req.nonce, n0.1 + 1);
    assert_eq!(req.itr_rlocs, vec![LispAddr::None]);
    assert!(req.records[0].notify);
    // MS: "MUST send a Map-Notify to the source RLOC of the Map-Request"
    let n = sent.iter().find(|p| is_type(p, 4)).expect("Map-Notify");
    assert_eq!(n.to, sa(XTR));
    assert_eq!(notify(n).nonce, req.nonce);
    assert!(net.nodes[ms].lisp.subscribers(net.now).is_empty());
    assert!(net.events_since(ms, 0).iter().any(|e2| matches!(
        e2,
        LispEvent::SubscriberRemoved {
            why: SubscriptionEnd::Unsubscribed,
            ..
        }
    )));
    // A change is not published any more.
    let (_, sent) = net.call(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.20")), 2)
    });
    assert!(sent.iter().all(|p| !is_type(p, 4)));
    // The original subscribe, replayed: silently dropped (RFC 9437 §5), no state.
    let mark = net.nodes[ms].events.len();
    net.inject(sa(XTR), ms, &n0.0);
    assert!(net.nodes[ms].lisp.subscribers(net.now).is_empty());
    assert!(net.events_since(ms, mark).iter().any(|e2| matches!(
        e2,
        LispEvent::Dropped {
            reason: DropReason::Replay { .. },
            ..
        }
    )));
}

/// `subscribed()` plus the bytes of the subscribe request.
fn pubsub_net_subscribe_capture() -> (Net, usize, usize, EidPrefix, (Vec<u8>, u64)) {
    let (mut net, ms, x, e) = pubsub_net();
    let mark = net.wire.len();
    net.with(x, |l, now| l.request(now, e, true));
    let p = net.since(mark)[0].clone();
    let nonce = map_request(&p).nonce;
    (net, ms, x, e, (p.bytes, nonce))
}

#[test]
fn removal_publishes_ttl_zero_and_the_xtr_drops_its_entry() {
    let (mut net, ms, x, e, n0) = subscribed();
    let (_, sent) = net.call(ms, |l, now| l.set_mapping(now, e, None, 2));
    let n = notify(sent.iter().find(|p| is_type(p, 4)).unwrap());
    assert_eq!(n.nonce, n0 + 1);
    assert_eq!(n.records[0].ttl, 0);
    assert!(n.records[0].locators.is_empty());
    assert!(net.nodes[x].lisp.map_cache(net.now).is_empty());
    assert!(
        net.events_since(x, 0)
            .contains(&LispEvent::MapCacheRemoved { eid: e })
    );
}

#[test]
fn subscribers_of_a_covering_prefix_get_the_more_specific_change() {
    let (mut net, ms, x, _e) = pubsub_net();
    let cover = pfx(100, "10.1.0.0/24");
    net.with(ms, |l, now| {
        l.set_mapping(now, cover, Some(ip("192.0.2.9")), 0)
    });
    net.with(x, |l, now| l.request(now, cover, true));
    let inner = host(100, "10.1.0.77");
    let (_, sent) = net.call(ms, |l, now| {
        l.set_mapping(now, inner, Some(ip("192.0.2.40")), 1)
    });
    let n = notify(sent.iter().find(|p| is_type(p, 4)).unwrap());
    assert_eq!(n.records[0].eid, inner.to_wire(Default::default()).0);
    assert!(
        net.nodes[x]
            .lisp
            .map_cache(net.now)
            .iter()
            .any(|c| c.eid == inner)
    );
}

#[test]
fn subscribing_without_a_security_association_gets_act_5() {
    let (mut net, ms) = ms_net();
    let e = host(100, "10.1.0.5");
    let mut req = request(e, "192.0.2.50", 1);
    req.records[0].notify = true;
    req.xtr = Some(vmmi::wire::lisp::XtrTrailer {
        xtr_id: 0x99,
        site_id: Some(0),
    });
    let mark = net.wire.len();
    net.inject(sa("192.0.2.50"), ms, &bytes_of(&req));
    let r = reply(&net.since(mark)[0]);
    assert_eq!(r.records[0].act, Act::DROP_AUTH_FAILURE);
    assert!(r.records[0].locators.is_empty());
    assert!(net.nodes[ms].lisp.subscribers(net.now).is_empty());
}

#[test]
fn a_temporary_subscription_to_an_unregistered_eid_ends_after_15_minutes() {
    let (mut net, ms, x, _) = pubsub_net();
    let future = host(100, "10.1.0.99");
    net.with(x, |l, now| l.request(now, future, true));
    let subs = net.nodes[ms].lisp.subscribers(net.now);
    assert!(subs[0].temporary && subs[0].confirmed);
    // it appears: published
    net.advance(Duration::from_secs(60));
    let (_, sent) = net.call(ms, |l, now| {
        l.set_mapping(now, future, Some(ip("192.0.2.44")), 1)
    });
    assert!(sent.iter().any(|p| is_type(p, 4)));
    net.advance(Duration::from_secs(14 * 60));
    assert!(net.nodes[ms].lisp.subscribers(net.now).is_empty());
}

// ---------------------------------------------------------------------------------------
// SMR

#[test]
fn smr_fans_out_to_every_recent_requester_in_the_same_call() {
    let mut net = Net::new();
    let ms = net.add(ms_cfg(MS, vec![dc_a()]));
    let e = host(100, "10.1.0.5");
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.10")), 1)
    });
    let itrs = ["192.0.2.51", "192.0.2.52", "192.0.2.53"];
    for (i, itr) in itrs.iter().enumerate() {
        let mut r = request(e, itr, i as u64);
        if i == 0 {
            r.source_eid = host(100, "10.1.7.1").to_wire(Default::default()).0;
        }
        net.inject(sa(itr), ms, &bytes_of(&r));
    }
    let (_, sent) = net.call(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.20")), 2)
    });
    let smrs: Vec<&Pkt> = sent.iter().filter(|p| is_type(p, 1)).collect();
    assert_eq!(smrs.len(), 3);
    for (p, itr) in smrs.iter().zip(itrs) {
        assert_eq!(p.to, sa(itr));
        let m = map_request(p);
        assert!(m.smr && m.dont_map_reply && !m.smr_invoked);
        assert_eq!(m.source_eid, e.to_wire(Default::default()).0);
        assert_eq!(m.itr_rlocs, vec![LispAddr::Ipv4(MS.parse().unwrap())]);
        assert_eq!(m.records.len(), 1);
    }
    // the first ITR sent a Source-EID: the SMR's record is it (OOR acts only on its own EID)
    let m0 = map_request(smrs[0]);
    assert_eq!(
        m0.records[0].eid,
        host(100, "10.1.7.1").to_wire(Default::default()).0
    );
    assert_eq!(m0.records[0].mask_len, 32);
    let m1 = map_request(smrs[1]);
    assert_eq!(m1.records[0].eid, e.to_wire(Default::default()).0);
    assert_eq!(net.nodes[ms].lisp.counters().smr_tx, 3);
    // Solicited requesters are forgotten: a second change solicits no one.
    let (_, sent) = net.call(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.21")), 3)
    });
    assert!(sent.iter().all(|p| !is_type(p, 1)));
    assert_eq!(net.nodes[ms].lisp.smr_requesters(), 0);
}

#[test]
fn smr_is_rate_limited_to_one_per_three_seconds_per_rloc() {
    let mut net = Net::new();
    let ms = net.add(ms_cfg(MS, vec![dc_a()]));
    let eids: Vec<EidPrefix> = (1..=3).map(|i| host(100, &format!("10.1.0.{i}"))).collect();
    for (i, e) in eids.iter().enumerate() {
        net.with(ms, |l, now| {
            l.set_mapping(now, *e, Some(ip("192.0.2.10")), 1)
        });
        net.inject(
            sa("192.0.2.51"),
            ms,
            &bytes_of(&request(*e, "192.0.2.51", i as u64)),
        );
    }
    let t0 = net.t();
    let mark = net.wire.len();
    for e in &eids {
        net.with(ms, |l, now| {
            l.set_mapping(now, *e, Some(ip("192.0.2.20")), 2)
        });
    }
    // (to 8 s: the first SMR's retransmission, unanswered here, would leave at 9 s)
    net.advance(Duration::from_secs(8));
    let smrs: Vec<(u64, EidPrefix)> = net
        .since(mark)
        .into_iter()
        .filter(|p| is_type(p, 1))
        .map(|p| {
            let m = map_request(&p);
            let (s, _) = EidPrefix::from_wire(32, &m.source_eid).unwrap();
            ((p.at - t0).as_secs(), s)
        })
        .collect();
    assert_eq!(smrs, vec![(0, eids[0]), (3, eids[1]), (6, eids[2])]);
    assert_eq!(net.nodes[ms].lisp.counters().smr_queued, 2);
}

#[test]
fn smr_invoked_map_request_goes_through_the_mapping_system_and_updates_the_cache() {
    let mut net = Net::new();
    let ms = net.add(ms_cfg(MS, vec![dc_a()]));
    let x = net.add(xtr_cfg(XTR, MS));
    let e = host(100, "10.1.0.5");
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.10")), 1)
    });
    net.with(x, |l, now| l.request(now, e, false));
    assert_eq!(
        net.nodes[x].lisp.map_cache(net.now)[0].rlocs,
        vec![ip("192.0.2.10")]
    );

    let mark = net.wire.len();
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.20")), 2)
    });
    let sent = net.since(mark);
    // MS → xTR SMR; xTR → MS (the Map-Resolver) ECM Map-Request with the s bit, new nonce;
    // MS → xTR Map-Reply with the new RLOC. All in the same instant.
    assert!(is_type(&sent[0], 1) && sent[0].to == sa(XTR));
    let smr = map_request(&sent[0]);
    assert!(smr.smr);
    assert!(is_type(&sent[1], 8) && sent[1].to == sa(MS));
    let inv = map_request(&sent[1]);
    assert!(inv.smr_invoked && !inv.smr);
    assert_ne!(inv.nonce, smr.nonce);
    assert!(is_type(&sent[2], 2) && sent[2].to == sa(XTR));
    assert_eq!(reply(&sent[2]).nonce, inv.nonce);
    assert!(sent.iter().all(|p| p.at == sent[0].at));
    let cache = net.nodes[x].lisp.map_cache(net.now);
    assert_eq!(cache[0].rlocs, vec![ip("192.0.2.20")]);
    assert_eq!(cache[0].version, 2);

    // Another SMR for the same prefix within 3 s is ignored by the xTR (RFC 9301 §6.1).
    let mut again = smr.clone();
    again.nonce += 1;
    let mark = net.wire.len();
    net.inject(sa(MS), x, &bytes_of(&again));
    assert!(net.since(mark).is_empty());
    net.advance(Duration::from_secs(3));
    let mark = net.wire.len();
    again.nonce += 1;
    net.inject(sa(MS), x, &bytes_of(&again));
    assert!(net.since(mark).iter().any(|p| is_type(p, 8)));
    // An SMR for an EID the xTR has not cached: nothing (SHOULD NOT send).
    let mut other = smr.clone();
    other.source_eid = host(100, "10.1.0.200").to_wire(Default::default()).0;
    other.records[0].eid = host(100, "10.1.0.201").to_wire(Default::default()).0;
    let mark = net.wire.len();
    net.inject(sa(MS), x, &bytes_of(&other));
    assert!(net.since(mark).is_empty());
}

/// SMRs sent to `to` after wire mark `mark`: (seconds since `t0`, the SMR's Source-EID).
fn smrs_to(net: &Net, mark: usize, t0: Duration, to: &str) -> Vec<(f64, EidPrefix)> {
    net.since(mark)
        .into_iter()
        .filter(|p| is_type(p, 1) && p.to == sa(to) && map_request(p).smr)
        .map(|p| {
            let m = map_request(&p);
            let (s, _) = EidPrefix::from_wire(32, &m.source_eid).unwrap();
            ((p.at - t0).as_secs_f64(), s)
        })
        .collect()
}

/// A Map-Server with `e` at 192.0.2.10 that `itr` (not a node: nothing answers) asked about.
fn smr_setup(eids: &[EidPrefix], itr: &str) -> (Net, usize) {
    let mut net = Net::new();
    let ms = net.add(ms_cfg(MS, vec![dc_a()]));
    for (i, e) in eids.iter().enumerate() {
        net.with(ms, |l, now| {
            l.set_mapping(now, *e, Some(ip("192.0.2.10")), 1)
        });
        net.inject(sa(itr), ms, &bytes_of(&request(*e, itr, i as u64)));
    }
    (net, ms)
}

#[test]
fn an_unanswered_smr_is_sent_again_after_3_s_twice_then_given_up() {
    let e = host(100, "10.1.0.5");
    let (mut net, ms) = smr_setup(&[e], "192.0.2.51");
    let (t0, mark) = (net.t(), net.wire.len());
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.20")), 2)
    });
    net.advance(Duration::from_secs(60));
    // RFC 9301 §6.1 "The ETR then stops sending SMR messages" only once the SMR-invoked
    // Map-Request arrives; bounded like OOR: 3 s apart, 2 retransmissions
    assert_eq!(
        smrs_to(&net, mark, t0, "192.0.2.51"),
        vec![(0.0, e), (3.0, e), (6.0, e)]
    );
    let c = net.nodes[ms].lisp.counters();
    assert_eq!((c.smr_tx, c.smr_retransmits, c.smr_gave_up), (3, 2, 1));
    let ev = net.events_since(ms, 0);
    let attempts: Vec<u8> = ev
        .iter()
        .filter_map(|x| match x {
            LispEvent::SmrRetransmit { to, eid, attempt }
                if *to == sa("192.0.2.51") && *eid == e =>
            {
                Some(*attempt)
            }
            _ => None,
        })
        .collect();
    assert_eq!(attempts, vec![2, 3]);
    let gave_up = net.nodes[ms]
        .events
        .iter()
        .filter(|(_, x)| matches!(x, LispEvent::SmrGaveUp { eid, .. } if *eid == e))
        .map(|(at, _)| (*at - t0).as_secs_f64())
        .collect::<Vec<_>>();
    assert_eq!(gave_up, vec![9.0]);
    assert_eq!(net.nodes[ms].lisp.pending_smrs(), 0);
}

#[test]
fn the_smr_invoked_request_stops_the_retransmissions_plain_or_in_an_ecm() {
    let e = host(100, "10.1.0.5");
    for ecm_wrapped in [false, true] {
        let (mut net, ms) = smr_setup(&[e], "192.0.2.51");
        let (t0, mark) = (net.t(), net.wire.len());
        net.with(ms, |l, now| {
            l.set_mapping(now, e, Some(ip("192.0.2.20")), 2)
        });
        assert_eq!(net.nodes[ms].lisp.pending_smrs(), 1);
        // the first SMR is lost; the retransmission at 3 s is answered at 4 s
        net.at((t0 + Duration::from_secs(4)).as_secs_f64());
        let mut inv = request(e, "192.0.2.51", 900);
        inv.smr_invoked = true;
        let b = if ecm_wrapped {
            ecm(
                &inv,
                "192.0.2.51".parse().unwrap(),
                "10.1.0.5".parse().unwrap(),
                4342,
            )
        } else {
            bytes_of(&inv)
        };
        let m2 = net.wire.len();
        net.inject(sa("192.0.2.51"), ms, &b);
        // answered as any Map-Request: the new RLOC
        let r = net.since(m2);
        assert_eq!(
            reply(&r[0]).records[0].locators[0].addr,
            LispAddr::Ipv4("192.0.2.20".parse().unwrap())
        );
        assert_eq!(net.nodes[ms].lisp.pending_smrs(), 0);
        net.advance(Duration::from_secs(60));
        assert_eq!(
            smrs_to(&net, mark, t0, "192.0.2.51"),
            vec![(0.0, e), (3.0, e)]
        );
        let c = net.nodes[ms].lisp.counters();
        assert_eq!(
            (c.smr_retransmits, c.smr_gave_up),
            (1, 0),
            "ecm {ecm_wrapped}"
        );
    }
}

#[test]
fn a_lost_smr_reaches_the_xtr_3_s_later_and_its_cache_follows() {
    let mut net = Net::new();
    let ms = net.add(ms_cfg(MS, vec![dc_a()]));
    let x = net.add(xtr_cfg(XTR, MS));
    let e = host(100, "10.1.0.5");
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.10")), 1)
    });
    net.with(x, |l, now| l.request(now, e, false));
    // lose the first SMR only
    let lost = std::rc::Rc::new(std::cell::Cell::new(0));
    let l2 = lost.clone();
    net.lose = Some(Box::new(move |p: &Pkt| {
        let smr = p.bytes.first().is_some_and(|b| b >> 4 == 1) && p.bytes[0] & 0x01 != 0;
        if smr && l2.get() == 0 {
            l2.set(1);
            return true;
        }
        false
    }));
    let t0 = net.t();
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.20")), 2)
    });
    assert_eq!(lost.get(), 1);
    assert_eq!(
        net.nodes[x].lisp.map_cache(net.now)[0].rlocs,
        vec![ip("192.0.2.10")]
    );
    net.at((t0 + Duration::from_millis(2999)).as_secs_f64());
    assert_eq!(
        net.nodes[x].lisp.map_cache(net.now)[0].rlocs,
        vec![ip("192.0.2.10")]
    );
    net.at((t0 + Duration::from_secs(3)).as_secs_f64());
    let cache = net.nodes[x].lisp.map_cache(net.now);
    assert_eq!(cache[0].rlocs, vec![ip("192.0.2.20")]);
    assert_eq!(cache[0].version, 2);
    net.advance(Duration::from_secs(60));
    let c = net.nodes[ms].lisp.counters();
    assert_eq!((c.smr_tx, c.smr_retransmits, c.smr_gave_up), (2, 1, 0));
    assert_eq!(net.nodes[ms].lisp.pending_smrs(), 0);
}

#[test]
fn smr_retransmissions_keep_to_one_per_3_s_per_rloc() {
    let eids: Vec<EidPrefix> = (1..=3).map(|i| host(100, &format!("10.1.0.{i}"))).collect();
    let (mut net, ms) = smr_setup(&eids, "192.0.2.51");
    let (t0, mark) = (net.t(), net.wire.len());
    for e in &eids {
        net.with(ms, |l, now| {
            l.set_mapping(now, *e, Some(ip("192.0.2.20")), 2)
        });
    }
    net.advance(Duration::from_secs(120));
    let smrs = smrs_to(&net, mark, t0, "192.0.2.51");
    // 3 EIDs x (1 + 2 retransmissions), one every 3 s, retransmissions queued behind
    let times: Vec<f64> = smrs.iter().map(|x| x.0).collect();
    assert_eq!(
        times,
        (0..9).map(|i| f64::from(i) * 3.0).collect::<Vec<_>>()
    );
    for e in &eids {
        assert_eq!(smrs.iter().filter(|x| x.1 == *e).count(), 3, "{e}");
    }
    let c = net.nodes[ms].lisp.counters();
    assert_eq!((c.smr_tx, c.smr_retransmits, c.smr_gave_up), (9, 6, 3));
    assert_eq!(net.nodes[ms].lisp.pending_smrs(), 0);
    // an answer while a retransmission waits in the queue: it is skipped, not sent
    let (mut net, ms) = smr_setup(&eids, "192.0.2.51");
    let (t0, mark) = (net.t(), net.wire.len());
    for e in &eids {
        net.with(ms, |l, now| {
            l.set_mapping(now, *e, Some(ip("192.0.2.20")), 2)
        });
    }
    // at 3 s: e2 leaves, e1's retransmission queues behind e3
    net.at((t0 + Duration::from_secs(4)).as_secs_f64());
    let mut inv = request(eids[0], "192.0.2.51", 900);
    inv.smr_invoked = true;
    net.inject(sa("192.0.2.51"), ms, &bytes_of(&inv));
    net.advance(Duration::from_secs(120));
    let smrs = smrs_to(&net, mark, t0, "192.0.2.51");
    assert_eq!(smrs.iter().filter(|x| x.1 == eids[0]).count(), 1);
    let times: Vec<f64> = smrs.iter().map(|x| x.0).collect();
    for w in times.windows(2) {
        assert!(w[1] - w[0] >= 3.0, "{times:?}");
    }
}

#[test]
fn subscribers_get_a_publication_instead_of_an_smr() {
    let (mut net, ms, _x, e, _) = subscribed();
    // the xTR also resolved it with a plain request before: it is a requester too
    net.inject(sa(XTR), ms, &bytes_of(&request(e, XTR, 77)));
    let (_, sent) = net.call(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.20")), 2)
    });
    assert!(sent.iter().any(|p| is_type(p, 4)));
    assert!(sent.iter().all(|p| !is_type(p, 1)));
}

#[test]
fn an_itr_subscribed_to_another_eid_still_gets_the_smr_for_one_it_only_requested() {
    // Found by `vmmi demo`: the ITR subscribed to the VM's IP and resolved its MAC without a
    // subscription; after the move its MAC entry never changed (every SMR to a subscriber's
    // RLOC was skipped, whatever EID it was for).
    let (mut net, ms, x, e, _) = subscribed();
    let other = host(100, "10.1.0.6");
    net.with(ms, |l, now| {
        l.set_mapping(now, other, Some(ip("192.0.2.10")), 1)
    });
    net.with(x, |l, now| l.request(now, other, false));
    let (_, sent) = net.call(ms, |l, now| {
        l.set_mapping(now, other, Some(ip("192.0.2.20")), 2)
    });
    let smrs: Vec<&Pkt> = sent.iter().filter(|p| is_type(p, 1)).collect();
    assert_eq!(smrs.len(), 1, "{sent:#?}");
    assert_eq!(smrs[0].to, sa(XTR));
    assert_eq!(
        map_request(smrs[0]).source_eid,
        other.to_wire(Default::default()).0
    );
    let cache = net.nodes[x].lisp.map_cache(net.now);
    let entry = cache.iter().find(|c| c.eid == other).expect("cached");
    assert_eq!(entry.rlocs, vec![ip("192.0.2.20")]);
    // the subscribed EID itself: a publication, no SMR
    let (_, sent) = net.call(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.30")), 2)
    });
    assert!(sent.iter().any(|p| is_type(p, 4)));
    assert!(sent.iter().all(|p| !is_type(p, 1)));
}

// ---------------------------------------------------------------------------------------
// xTR registration

#[test]
fn xtr_registers_at_once_then_quickly_for_five_minutes_then_every_minute() {
    let mut net = Net::new();
    let ms = net.add(ms_cfg(MS, vec![dc_a()]));
    let x = net.add(xtr_cfg(XTR, MS));
    let e = host(100, "10.1.0.30");
    let (_, sent) = net.call(x, |l, now| l.set_mapping(now, e, Some(ip(XTR)), 3));
    assert_eq!(sent.len(), 1);
    let LispMsg::MapRegister(r) = sent[0].msg() else {
        panic!()
    };
    assert!(r.proxy_reply && r.want_map_notify && !r.merge && !r.ttl_timeout);
    assert_eq!(r.nonce, (1 << 32) + 1);
    assert_eq!(r.xtr.unwrap().xtr_id, vmmi::lisp::xtr_id_from(ip(XTR)));
    assert_eq!(r.records.len(), 1);
    let rec = &r.records[0];
    assert_eq!((rec.ttl, rec.mask_len, rec.map_version.get()), (15, 32, 3));
    assert!(rec.authoritative);
    assert!(rec.locators[0].local && rec.locators[0].reachable);
    assert_eq!(r.auth.data.len(), 16);
    assert!(verify(&sent[0].bytes, KEY, &sha256_trunc()).is_ok());
    assert_eq!(rlocs_of(&net, ms, e), Some(vec![ip(XTR)]));
    assert!(net.events_since(x, 0).contains(&LispEvent::Registered {
        map_server: sa(MS),
        eids: 1
    }));

    net.at(430.0);
    let times: Vec<u64> = net
        .wire
        .iter()
        .filter(|p| p.from == sa(XTR) && is_type(p, 3))
        .map(|p| p.at.as_secs())
        .collect();
    let mut want: Vec<u64> = (0..=300).step_by(20).collect();
    want.extend([360, 420]);
    assert_eq!(times, want);
    let nonces: Vec<u64> = net
        .wire
        .iter()
        .filter(|p| p.from == sa(XTR) && is_type(p, 3))
        .map(|p| match p.msg() {
            LispMsg::MapRegister(r) => r.nonce,
            _ => 0,
        })
        .collect();
    assert!(
        nonces.windows(2).all(|w| w[1] == w[0] + 1),
        "increasing nonces"
    );
    assert_eq!(net.nodes[ms].lisp.counters().registrations_rejected, 0);
    assert_eq!(net.nodes[x].lisp.counters().map_register_retransmits, 0);

    // The EID moves away: deregistered (Record TTL 0) at once.
    let (_, sent) = net.call(x, |l, now| l.set_mapping(now, e, Some(ip("192.0.2.99")), 4));
    let LispMsg::MapRegister(d) = sent[0].msg() else {
        panic!()
    };
    assert_eq!(d.records[0].ttl, 0);
    assert!(rlocs_of(&net, ms, e).is_none());
}

#[test]
fn xtr_retransmits_an_unconfirmed_register_with_backoff() {
    let mut net = Net::new();
    let ms = net.add(ms_cfg(MS, vec![dc_a()]));
    let x = net.add(xtr_cfg(XTR, MS));
    net.lose = Some(Box::new(|p: &Pkt| {
        p.bytes.first().is_some_and(|b| b >> 4 == 4)
    }));
    net.with(x, |l, now| {
        l.set_mapping(now, host(100, "10.1.0.30"), Some(ip(XTR)), 0)
    });
    net.at(41.0);
    let times: Vec<u64> = net
        .wire
        .iter()
        .filter(|p| p.from == sa(XTR) && is_type(p, 3))
        .map(|p| p.at.as_secs())
        .collect();
    // RFC 9301 §5.7: 1 s, doubling; the periodic registration at 20 s supersedes.
    assert_eq!(times, vec![0, 1, 3, 7, 15, 20, 21, 23, 27, 35, 40, 41]);
    assert_eq!(
        net.nodes[ms].lisp.counters().nonce_replays,
        0,
        "each retransmission has a new nonce"
    );
}

#[test]
fn map_cache_entries_expire_with_their_ttl() {
    let mut net = Net::new();
    let ms = net.add(ms_cfg(MS, vec![dc_a()]));
    let x = net.add(xtr_cfg(XTR, MS));
    let e = host(100, "10.1.0.5");
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.10")), 1)
    });
    net.with(x, |l, now| l.request(now, e, false));
    assert_eq!(
        net.nodes[x].lisp.map_cache(net.now)[0].expires_in_secs,
        15 * 60
    );
    net.advance(Duration::from_secs(15 * 60));
    assert!(net.nodes[x].lisp.map_cache(net.now).is_empty());
    // a request nobody answers: 3 tries a second apart, then given up
    let mark = net.wire.len();
    net.lose = Some(Box::new(|p: &Pkt| p.from == sa(XTR)));
    net.with(x, |l, now| l.request(now, host(100, "10.1.0.6"), false));
    net.advance(Duration::from_secs(5));
    let tries: Vec<Duration> = net.since(mark).iter().map(|p| p.at).collect();
    assert_eq!(tries.len(), 3);
    assert_eq!(tries[2] - tries[0], Duration::from_secs(2));
    assert!(net.events_since(x, 0).contains(&LispEvent::RequestGaveUp {
        eid: host(100, "10.1.0.6")
    }));
}

#[test]
fn decoded_bytes_of_everything_sent_are_valid() {
    // Every datagram of a busy run decodes, and every authenticated one verifies.
    let (mut net, ms, x, e, _) = subscribed();
    for i in 0..5u32 {
        net.with(ms, |l, now| {
            l.set_mapping(
                now,
                e,
                Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100 + i as u8))),
                i + 2,
            )
        });
        net.advance(Duration::from_secs(7));
    }
    net.with(x, |l, now| l.unsubscribe(now, e));
    net.advance(Duration::from_secs(300));
    for p in &net.wire {
        let m = decode(&p.bytes).unwrap();
        if matches!(
            m,
            LispMsg::MapRegister(_) | LispMsg::MapNotify(_) | LispMsg::MapNotifyAck(_)
        ) {
            assert!(verify(&p.bytes, KEY, &sha256_trunc()).is_ok(), "{m:?}");
        }
    }
    assert!(net.wire.len() > 20);
}

#[test]
fn an_itr_without_local_eids_subscribes_through_the_default_site() {
    let mut net = Net::new();
    let mut c = ms_cfg(MS, vec![dc_a()]);
    c.pubsub_default_site = Some(0);
    let ms = net.add(c);
    let x = net.add(xtr_cfg(XTR, MS));
    let e = host(100, "10.1.0.5");
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.10")), 1)
    });
    net.with(x, |l, now| l.request(now, e, true));
    assert!(net.nodes[ms].lisp.subscribers(net.now)[0].confirmed);
    let (_, sent) = net.call(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.20")), 2)
    });
    assert!(sent.iter().any(|p| is_type(p, 4)));
    assert_eq!(
        net.nodes[x].lisp.map_cache(net.now)[0].rlocs,
        vec![ip("192.0.2.20")]
    );
}

#[test]
fn core_cfg_from_the_lisp_section() {
    use vmmi::config::{LispAuth, LispCfg, LispMapServerCfg, LispRole, LispSiteCfg, PeerAddr};
    let cfg = LispCfg {
        roles: vec![LispRole::MapServer, LispRole::Xtr],
        site: vec![LispSiteCfg {
            name: "dc-a".into(),
            key: "secret".into(),
            auth: LispAuth::HmacSha1_96,
            eids: vec!["iid:100 10.1.0.0/16".into(), "iid:100 mac:any".into()],
            legacy_key_id: true,
            untruncated_auth: true,
        }],
        map_server: vec![LispMapServerCfg {
            address: PeerAddr::Ip(ip("192.0.2.9")),
            key: "k".into(),
            auth: LispAuth::HmacSha256_128Hkdf,
        }],
        ..LispCfg::default()
    };
    let resolve = |a: &PeerAddr| match a {
        PeerAddr::Ip(i) => Some(*i),
        PeerAddr::Name(_) => None,
    };
    let c = vmmi::lisp::LispCoreCfg::from_config(&cfg, ip("192.0.2.1"), resolve).unwrap();
    assert!(c.map_server && !c.map_resolver && c.xtr && c.pubsub && c.smr);
    assert_eq!(c.sites[0].alg_id, 1);
    assert!(c.sites[0].legacy_key_id && c.sites[0].untruncated_auth);
    assert_eq!(
        c.sites[0].eids,
        vec![pfx(100, "10.1.0.0/16"), EidPrefix::any_mac(100)]
    );
    assert_eq!(c.pubsub_default_site, Some(0));
    assert_eq!(c.map_servers[0].addr, sa("192.0.2.9"));
    assert_eq!(c.map_servers[0].auth.alg_id, 3);
    assert!(c.map_servers[0].auth.truncate);
    assert_eq!(c.xtr_id, vmmi::lisp::xtr_id_from(ip("192.0.2.1")));

    let mut bad = cfg.clone();
    bad.site[0].eids.push("iid:100 10.1.0.1/16".into());
    let e = vmmi::lisp::LispCoreCfg::from_config(&bad, ip("192.0.2.1"), resolve).unwrap_err();
    assert!(e.starts_with("lisp.site[0].eids: "), "{e}");
    let mut unresolved = cfg;
    unresolved.map_server[0].address = PeerAddr::Name("ms.example".into());
    let e =
        vmmi::lisp::LispCoreCfg::from_config(&unresolved, ip("192.0.2.1"), resolve).unwrap_err();
    assert_eq!(e, "lisp.map_server[0].address: cannot be resolved");
}

/// A foreign xTR (xTR-ID `xtr_id`, at `rloc`) registers one EID so it has a security
/// association, then its subscribe request for `eid` with `itrs` as ITR-RLOCs is returned.
fn foreign_subscribe(
    net: &mut Net,
    ms: usize,
    xtr_id: u128,
    rloc: &str,
    eid: EidPrefix,
    itrs: &[&str],
    nonce: u64,
) -> Vec<u8> {
    let own = host(100, &format!("10.1.9.{}", xtr_id % 250));
    let mut r = Reg::new(vec![record(own, 10, 0, &[rloc])], 1);
    r.xtr = Some((xtr_id, 0));
    net.inject(sa(rloc), ms, &r.bytes());
    let mut m = request(eid, itrs[0], nonce);
    m.itr_rlocs = itrs
        .iter()
        .map(|i| LispAddr::Ipv4(i.parse().unwrap()))
        .collect();
    m.records[0].notify = true;
    m.xtr = Some(vmmi::wire::lisp::XtrTrailer {
        xtr_id,
        site_id: Some(0),
    });
    bytes_of(&m)
}

#[test]
fn an_unanswered_notify_tries_the_next_itr_rloc_then_drops_the_subscription() {
    let (mut net, ms) = ms_net();
    let e = host(100, "10.1.0.5");
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.10")), 1)
    });
    let sub = foreign_subscribe(
        &mut net,
        ms,
        0x5,
        "192.0.2.60",
        e,
        &["192.0.2.61", "192.0.2.62"],
        50,
    );
    let t0 = net.t();
    let mark = net.external.len();
    net.inject(sa("192.0.2.60"), ms, &sub);
    net.advance(Duration::from_secs(300));
    let got: Vec<(SocketAddr, u64, u64)> = net.external[mark..]
        .iter()
        .filter(|p| is_type(p, 4))
        .map(|p| (p.to, (p.at - t0).as_secs(), notify(p).nonce))
        .collect();
    let a = sa("192.0.2.61");
    let b = sa("192.0.2.62");
    let mut want: Vec<(SocketAddr, u64, u64)> = [0, 3, 6, 9, 15, 27, 51]
        .iter()
        .map(|t| (a, *t, 50))
        .collect();
    want.extend(
        [99, 102, 105, 108, 114, 126, 150]
            .iter()
            .map(|t| (b, *t, 50)),
    );
    // given up at 150 + 48 s: the ACT-5 Map-Notify (same nonce) to the first ITR-RLOC
    want.push((a, 198, 50));
    assert_eq!(got, want);
    assert!(net.nodes[ms].lisp.subscribers(net.now).is_empty());
    assert_eq!(net.nodes[ms].lisp.pending_notifies(), 0);
    assert_eq!(net.nodes[ms].lisp.pending_timers(), 0);
}

#[test]
fn subscription_refusals_carry_act_4_for_policy() {
    // pub/sub off
    let mut net = Net::new();
    let mut c = ms_cfg(MS, vec![dc_a()]);
    c.pubsub = false;
    let ms = net.add(c);
    let e = host(100, "10.1.0.5");
    let sub = foreign_subscribe(&mut net, ms, 0x5, "192.0.2.60", e, &["192.0.2.60"], 50);
    let mark = net.external.len();
    net.inject(sa("192.0.2.60"), ms, &sub);
    let r = reply(&net.external[mark]);
    assert_eq!(r.records[0].act, Act::DROP_POLICY_DENIED);
    assert_eq!(r.records[0].ttl, 1);
    // table full
    let mut net = Net::new();
    let mut c = ms_cfg(MS, vec![dc_a()]);
    c.limits.max_subscriptions = 1;
    let ms = net.add(c);
    let s1 = foreign_subscribe(&mut net, ms, 0x5, "192.0.2.60", e, &["192.0.2.60"], 50);
    net.inject(sa("192.0.2.60"), ms, &s1);
    let s2 = foreign_subscribe(&mut net, ms, 0x6, "192.0.2.70", e, &["192.0.2.70"], 50);
    let mark = net.external.len();
    net.inject(sa("192.0.2.70"), ms, &s2);
    let r = reply(net.external[mark..].iter().find(|p| is_type(p, 2)).unwrap());
    assert_eq!(r.records[0].act, Act::DROP_POLICY_DENIED);
    assert_eq!(net.nodes[ms].lisp.subscribers(net.now).len(), 1);
    assert_eq!(net.nodes[ms].lisp.counters().subscriptions_rejected, 1);
}

#[test]
fn past_the_pending_cap_notifies_are_sent_once() {
    let mut net = Net::new();
    let mut c = ms_cfg(MS, vec![dc_a()]);
    c.limits.max_pending_notifies = 2;
    let ms = net.add(c);
    let e = host(100, "10.1.0.5");
    for k in 0..4u8 {
        let rloc = format!("192.0.2.{}", 60 + k);
        let s = foreign_subscribe(&mut net, ms, 0x10 + u128::from(k), &rloc, e, &[&rloc], 50);
        net.inject(sa(&rloc), ms, &s);
    }
    assert_eq!(net.nodes[ms].lisp.pending_notifies(), 2);
    assert_eq!(net.nodes[ms].lisp.counters().map_notifies_unreliable, 2);
    net.advance(Duration::from_secs(1000));
    assert_eq!(net.nodes[ms].lisp.pending_notifies(), 0);
    assert_eq!(net.nodes[ms].lisp.pending_timers(), 0);
}

#[test]
fn evpn_withdrawal_leaves_an_xtr_registration_alone() {
    let (mut net, ms, e) = registered(true);
    net.with(ms, |l, now| l.set_mapping(now, e, None, 0));
    assert_eq!(rlocs_of(&net, ms, e), Some(vec![ip("192.0.2.10")]));
    // EVPN takes it over, then withdraws it: gone (the xTR's part was displaced by the move)
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.77")), 9)
    });
    assert_eq!(rlocs_of(&net, ms, e), Some(vec![ip("192.0.2.77")]));
    net.with(ms, |l, now| l.set_mapping(now, e, None, 9));
    assert!(rlocs_of(&net, ms, e).is_none());
}

#[test]
fn messages_for_a_role_the_core_does_not_have_are_dropped() {
    let mut net = Net::new();
    let x = net.add(xtr_cfg(XTR, MS));
    let r = Reg::new(
        vec![record(host(100, "10.1.0.5"), 10, 0, &["192.0.2.10"])],
        1,
    );
    net.inject(sa("192.0.2.10"), x, &r.bytes());
    let (mut net2, ms) = ms_net();
    let rep = MapReply {
        probe: false,
        echo_nonce: false,
        security: false,
        reserved: Bits::new(0),
        nonce: 1,
        records: vec![],
        lisp_sec_data: vec![],
    };
    net2.inject(
        sa("192.0.2.10"),
        ms,
        &LispMsg::MapReply(rep.clone()).to_bytes(),
    );
    // an xTR gets a Map-Reply it never asked for
    net.inject(sa(MS), x, &LispMsg::MapReply(rep).to_bytes());
    let drops = |n: &Net, i: usize| -> Vec<DropReason> {
        n.nodes[i]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                LispEvent::Dropped { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        drops(&net, x),
        vec![
            DropReason::Unexpected {
                message: "Map-Register (not a map-server)"
            },
            DropReason::UnknownNonce { nonce: 1 }
        ]
    );
    assert_eq!(
        drops(&net2, ms),
        vec![DropReason::Unexpected {
            message: "Map-Reply (not an xTR)"
        }]
    );
}

#[test]
fn an_ack_stops_only_the_notify_sent_to_its_source_when_nonces_collide() {
    let (mut net, ms) = ms_net();
    let e = host(100, "10.1.0.5");
    let a = foreign_subscribe(&mut net, ms, 0x21, "192.0.2.61", e, &["192.0.2.61"], 50);
    let b = foreign_subscribe(&mut net, ms, 0x22, "192.0.2.62", e, &["192.0.2.62"], 50);
    net.inject(sa("192.0.2.61"), ms, &a);
    let mark = net.external.len();
    net.inject(sa("192.0.2.62"), ms, &b);
    assert_eq!(net.nodes[ms].lisp.pending_notifies(), 2);
    let to_b = net.external[mark..]
        .iter()
        .find(|p| is_type(p, 4))
        .unwrap()
        .clone();
    assert_eq!(to_b.to, sa("192.0.2.62"));
    net.inject(
        sa("192.0.2.62"),
        ms,
        &ack_for(&to_b.bytes, KEY, &sha256_trunc()),
    );
    assert_eq!(net.nodes[ms].lisp.pending_notifies(), 1);
    let subs = net.nodes[ms].lisp.subscribers(net.now);
    let confirmed: Vec<(u128, bool)> = subs.iter().map(|s| (s.xtr_id, s.confirmed)).collect();
    assert_eq!(confirmed, vec![(0x21, false), (0x22, true)]);
}

#[test]
fn a_subscription_confirmed_with_a_covering_mapping_is_accepted() {
    let (mut net, ms, x, _) = pubsub_net();
    let cover = pfx(100, "10.1.3.0/24");
    net.with(ms, |l, now| {
        l.set_mapping(now, cover, Some(ip("192.0.2.9")), 0)
    });
    let h = host(100, "10.1.3.7");
    net.with(x, |l, now| l.request(now, h, true));
    assert!(
        net.events_since(x, 0)
            .contains(&LispEvent::SubscriptionConfirmed { eid: h })
    );
    let hit = net.nodes[x].lisp.map_cache_lookup(net.now, &h).unwrap();
    assert_eq!(hit.eid, cover);
    assert_eq!(hit.rlocs, vec![ip("192.0.2.9")]);
    assert_eq!(net.nodes[ms].lisp.pending_notifies(), 0, "acknowledged");
}
