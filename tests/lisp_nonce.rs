//! Map-Notify-Acks are matched among the outstanding Map-Notifies of their nonce, and nonces
//! are chosen by the xTRs (RFC 9437 §5: a subscription's notifies carry its Map-Request's
//! nonce). Subscriptions made to share one nonce — by accident or by an attacker with many
//! xTR-IDs — must not make one Ack (or a forged one) cost work in proportion to their number:
//! past `max_notifies_per_nonce` a notify is sent once and not kept, so matching stays bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod lisp_harness;

use lisp_harness::*;
use vmmi::lisp::{DropReason, EidPrefix, LispEvent};
use vmmi::wire::lisp::auth::sign;
use vmmi::wire::lisp::{LispMsg, XtrTrailer};

const MS: &str = "10.0.0.1";

/// Subscriber `i` (ITR-RLOC 192.0.2.(10+i), xTR-ID 0x100+i) subscribes to `e` with `nonce`;
/// what the Map-Server sent back.
fn subscribe(net: &mut Net, ms: usize, e: EidPrefix, i: u32, nonce: u64) -> Vec<Pkt> {
    let rloc = format!("192.0.2.{}", 10 + i);
    let mut req = request(e, &rloc, nonce);
    req.records[0].notify = true;
    req.xtr = Some(XtrTrailer {
        xtr_id: 0x100 + u128::from(i),
        site_id: Some(0),
    });
    let mark = net.wire.len();
    net.inject(sa(&rloc), ms, &bytes_of(&req));
    net.since(mark)
}

#[test]
fn notifies_sharing_a_nonce_are_bounded_and_an_ack_still_matches() {
    let mut net = Net::new();
    // one site: ITRs that never registered subscribe under it (RFC 9437 §7.1)
    let mut cfg = ms_cfg(MS, vec![site("dc-a", &[pfx(100, "10.1.0.0/16")])]);
    cfg.pubsub_default_site = Some(0);
    let ms = net.add(cfg);
    let e = host(100, "10.1.0.5");
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.200")), 1)
    });
    let cap = net.nodes[ms].lisp.cfg().limits.max_notifies_per_nonce;
    let mut first = None;
    for i in 0..40 {
        let sent = subscribe(&mut net, ms, e, i, 7);
        let n = sent
            .iter()
            .find(|p| p.bytes.first().is_some_and(|b| b >> 4 == 4))
            .expect("a confirming Map-Notify per subscription");
        first.get_or_insert_with(|| n.clone());
    }
    // every subscriber got its confirmation; only `cap` are kept for retransmission
    assert_eq!(net.nodes[ms].lisp.subscribers(net.now).len(), 40);
    assert_eq!(net.nodes[ms].lisp.pending_notifies(), cap);
    assert_eq!(
        net.nodes[ms].lisp.counters().map_notifies_unreliable,
        40 - cap as u64
    );
    // a forged Ack for nonce 7 (wrong key): refused, counted once
    let first = first.unwrap();
    let mut forged = first.bytes.clone();
    forged[0] = (forged[0] & 0x0f) | 0x50;
    let p = vmmi::wire::lisp::auth::AuthParams {
        key_id: 0,
        alg_id: 2,
        truncate: true,
        legacy_key_id: false,
    };
    sign(&mut forged, b"not-the-key", &p).unwrap();
    let fails = net.nodes[ms].lisp.counters().auth_failures;
    net.inject(sa("192.0.2.10"), ms, &forged);
    assert_eq!(net.nodes[ms].lisp.counters().auth_failures, fails + 1);
    assert!(net.nodes[ms].events.iter().any(|(_, ev)| matches!(
        ev,
        LispEvent::Dropped {
            reason: DropReason::AuthFailed { .. },
            ..
        }
    )));
    assert_eq!(net.nodes[ms].lisp.pending_notifies(), cap);
    // the real Ack of subscriber 0 matches its own notify among those sharing the nonce
    let mut ack = first.bytes.clone();
    ack[0] = (ack[0] & 0x0f) | 0x50;
    sign(&mut ack, KEY, &p).unwrap();
    assert!(matches!(decode_ok(&ack), LispMsg::MapNotifyAck(_)));
    net.inject(sa("192.0.2.10"), ms, &ack);
    assert_eq!(net.nodes[ms].lisp.pending_notifies(), cap - 1);
    let subs = net.nodes[ms].lisp.subscribers(net.now);
    let s0 = subs.iter().find(|s| s.xtr_id == 0x100).unwrap();
    assert!(s0.confirmed && !s0.awaiting_ack, "{s0:?}");
}

fn decode_ok(b: &[u8]) -> LispMsg {
    vmmi::wire::lisp::decode(b).unwrap()
}
