//! The xTR role and the rest of `lisp_core` (its helpers and constants): registration cycle,
//! register retransmission, map-cache expiry, the bytes of everything sent, config,
//! foreign subscriptions and refusals, nonce collisions, role checks.

use super::pubsub_smr::*;
use super::*;

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
