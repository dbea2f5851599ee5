//! A site reload of the LISP core (`Lisp::set_sites`, SIGHUP) on the virtual clock: a removed
//! site takes its registrations and subscriptions with it (with the publication and the
//! RFC 9437 §5 ACT 5 signal), a site that stays keeps its registrations and replay state
//! under its new position, a narrowed site drops what it no longer covers, a new key applies
//! to the next Map-Register.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod lisp_harness;

use lisp_harness::*;
use vmmi::lisp::{ChangeCause, EidPrefix, LispEvent, RejectReason, SiteCoreCfg};
use vmmi::wire::lisp::auth::{AuthParams, verify};
use vmmi::wire::lisp::{Act, LispMsg};

const MS: &str = "10.0.0.1";

fn dc_a() -> SiteCoreCfg {
    site("dc-a", &[pfx(100, "10.1.0.0/16")])
}

fn dc_b() -> SiteCoreCfg {
    SiteCoreCfg {
        key: b"bkey".to_vec(),
        ..site("dc-b", &[pfx(200, "10.2.0.0/16")])
    }
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

/// (EID, site of its first registrant) of every registration.
fn regs(net: &Net, i: usize) -> Vec<(EidPrefix, Option<String>)> {
    let mut v: Vec<_> = net.nodes[i]
        .lisp
        .registrations(net.now)
        .into_iter()
        .map(|r| (r.eid, r.registrants[0].site.clone()))
        .collect();
    v.sort_by_key(|x| x.0.to_string());
    v
}

/// dc-a's xTR (192.0.2.10, xTR-ID 0xa) and dc-b's (192.0.2.20, xTR-ID 0xb) registered.
fn registered() -> (Net, usize, Reg, Reg) {
    let mut net = Net::new();
    let ms = net.add(ms_cfg(MS, vec![dc_a(), dc_b()]));
    let mut a = Reg::new(
        vec![record(host(100, "10.1.0.5"), 10, 0, &["192.0.2.10"])],
        10,
    );
    a.xtr = Some((0xa, 1));
    let mut b = Reg::new(
        vec![record(host(200, "10.2.0.5"), 10, 0, &["192.0.2.20"])],
        20,
    );
    b.xtr = Some((0xb, 2));
    b.key = b"bkey".to_vec();
    net.inject(sa("192.0.2.10"), ms, &a.bytes());
    net.inject(sa("192.0.2.20"), ms, &b.bytes());
    assert_eq!(regs(&net, ms).len(), 2);
    (net, ms, a, b)
}

#[test]
fn a_removed_site_loses_its_registrations_and_the_other_keeps_its_replay_state() {
    let (mut net, ms, _a, mut b) = registered();
    let mark = net.events_since(ms, 0).len();
    // dc-a goes; dc-b moves from position 1 to 0
    net.with(ms, |l, now| l.set_sites(now, vec![dc_b()]));
    assert_eq!(
        regs(&net, ms),
        vec![(host(200, "10.2.0.5"), Some("dc-b".to_string()))]
    );
    let ev = net.events_since(ms, mark);
    assert!(
        ev.iter().any(|e| matches!(e,
            LispEvent::MappingChanged { eid, rlocs, cause: ChangeCause::Reconfigured, .. }
                if *eid == host(100, "10.1.0.5") && rlocs.is_empty())),
        "{ev:?}"
    );
    // dc-a's key is gone: its xTR is refused now
    let mut a2 = Reg::new(
        vec![record(host(100, "10.1.0.5"), 10, 0, &["192.0.2.10"])],
        11,
    );
    a2.xtr = Some((0xa, 1));
    net.inject(sa("192.0.2.10"), ms, &a2.bytes());
    // dc-b's replay state followed it: its old nonce is a replay, a newer one is accepted
    net.inject(sa("192.0.2.20"), ms, &b.bytes());
    b.nonce = 21;
    net.inject(sa("192.0.2.20"), ms, &b.bytes());
    assert_eq!(
        rejections(&net, ms),
        vec![
            RejectReason::UnknownSite,
            RejectReason::NonceReplay {
                site: "dc-b".into(),
                nonce: 20,
                last: 20
            }
        ]
    );
    assert_eq!(regs(&net, ms).len(), 1);
}

#[test]
fn a_narrowed_site_drops_what_it_no_longer_covers_and_a_new_key_applies_next() {
    let (mut net, ms, _a, mut b) = registered();
    let narrow = SiteCoreCfg {
        eids: vec![pfx(200, "10.2.1.0/24")],
        ..dc_b()
    };
    net.with(ms, |l, now| l.set_sites(now, vec![dc_a(), narrow]));
    assert_eq!(
        regs(&net, ms),
        vec![(host(100, "10.1.0.5"), Some("dc-a".to_string()))]
    );
    // a new key: the next Map-Register with the old one is refused, with the new one accepted
    let rekeyed = SiteCoreCfg {
        key: b"bkey2".to_vec(),
        ..dc_b()
    };
    net.with(ms, |l, now| l.set_sites(now, vec![dc_a(), rekeyed]));
    b.nonce = 30;
    net.inject(sa("192.0.2.20"), ms, &b.bytes());
    assert_eq!(
        rejections(&net, ms),
        vec![RejectReason::WrongKey {
            site: "dc-b".into()
        }]
    );
    b.key = b"bkey2".to_vec();
    b.nonce = 31;
    net.inject(sa("192.0.2.20"), ms, &b.bytes());
    assert_eq!(regs(&net, ms).len(), 2);
}

#[test]
fn a_subscriber_whose_site_is_removed_gets_act_5_signed_with_the_key_it_knew() {
    // an xTR registered with dc-a's key subscribes (RFC 9437 §7.1: its security association)
    let mut net = Net::new();
    let ms = net.add(ms_cfg(MS, vec![dc_a()]));
    let x = net.add(xtr_cfg("192.0.2.30", MS));
    net.with(x, |l, now| {
        l.set_mapping(now, host(100, "10.1.0.30"), Some(ip("192.0.2.30")), 0)
    });
    let e = host(100, "10.1.0.5");
    net.with(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.10")), 1)
    });
    net.with(x, |l, now| l.request(now, e, true));
    assert_eq!(net.nodes[ms].lisp.subscribers(net.now).len(), 1);

    // dc-a goes; with two sites left there is no default association (RFC 9437 §7.1), so the
    // xTR's immediate re-subscription is refused too
    let dc_c = site("dc-c", &[pfx(300, "10.3.0.0/16")]);
    let (_, sent) = net.call(ms, |l, now| l.set_sites(now, vec![dc_b(), dc_c]));
    assert!(net.nodes[ms].lisp.subscribers(net.now).is_empty());
    // the xTR's own registration was dc-a's: gone too
    assert!(
        !net.nodes[ms]
            .lisp
            .registrations(net.now)
            .iter()
            .any(|r| r.eid == host(100, "10.1.0.30"))
    );
    // RFC 9437 §5: one Map-Notify, Loc-Count 0, ACT 5, signed with dc-a's key
    let n = sent
        .iter()
        .find(|p| p.bytes.first().is_some_and(|b| b >> 4 == 4))
        .expect("Map-Notify");
    assert_eq!(n.to, sa("192.0.2.30"));
    let LispMsg::MapNotify(m) = n.msg() else {
        panic!()
    };
    assert_eq!(m.records[0].act, Act::DROP_AUTH_FAILURE);
    assert!(m.records[0].locators.is_empty());
    let p = AuthParams {
        key_id: 0,
        alg_id: 2,
        truncate: true,
        legacy_key_id: false,
    };
    assert!(verify(&n.bytes, KEY, &p).is_ok());
    // the EVPN-fed mapping is not a site's: it stays, and a change is not published to
    // anyone (nobody is subscribed any more)
    let (_, sent) = net.call(ms, |l, now| {
        l.set_mapping(now, e, Some(ip("192.0.2.11")), 2)
    });
    assert!(
        !sent
            .iter()
            .any(|p| p.bytes.first().is_some_and(|b| b >> 4 == 4)),
        "{sent:?}"
    );
    assert_eq!(net.nodes[ms].lisp.registrations(net.now).len(), 1);
    assert_eq!(net.nodes[ms].lisp.pending_notifies(), 0);
}
