//! Pub/sub (RFC 9437) and SMR between a Map-Server core and xTR cores (part of `lisp_core`:
//! its helpers and constants): handshake, publication with nonce + 1, retransmission and
//! backoff until the Ack, unsubscribe, removal; SMR fan-out, rate limit, retransmission and
//! SMR-invoked Map-Requests.

use super::*;

// ---------------------------------------------------------------------------------------
// Pub/sub between a Map-Server core and an xTR core

pub(super) const XTR: &str = "192.0.2.30";

/// MS + xTR; the xTR has registered a local EID (so its xTR-ID is bound to dc-a) and the MS
/// has `e` at 192.0.2.10 from EVPN.
pub(super) fn pubsub_net() -> (Net, usize, usize, EidPrefix) {
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

pub(super) fn subscribed() -> (Net, usize, usize, EidPrefix, u64) {
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
pub(super) fn pubsub_net_subscribe_capture() -> (Net, usize, usize, EidPrefix, (Vec<u8>, u64)) {
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
pub(super) fn smrs_to(net: &Net, mark: usize, t0: Duration, to: &str) -> Vec<(f64, EidPrefix)> {
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
pub(super) fn smr_setup(eids: &[EidPrefix], itr: &str) -> (Net, usize) {
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
