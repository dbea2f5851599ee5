//! RFC 7606 malformed-UPDATE cases: each asserts the exact action (and the NOTIFICATION where
//! the action is a session reset), not just "no panic". Also the message-header cases of
//! RFC 4271 §6.1, and the fuzz-found regressions.

use vmmi::wire::Reader;
use vmmi::wire::bgp::validate::{Action, ValidateCtx, Verdict, apply, validate};
use vmmi::wire::bgp::{BgpCtx, Family, Message, UpdateMsg};

fn ctx() -> BgpCtx {
    BgpCtx {
        four_octet_as: true,
        ..BgpCtx::default()
    }
}

fn ebgp() -> ValidateCtx {
    ValidateCtx {
        ibgp: false,
        four_octet_as: true,
        families: vec![Family::IPV4_UNICAST, Family::L2VPN_EVPN],
        peer_as: 65001,
        enforce_first_as: true,
        confed_peer: false,
    }
}

fn ibgp() -> ValidateCtx {
    ValidateCtx {
        ibgp: true,
        enforce_first_as: false,
        ..ebgp()
    }
}

const ORIGIN: [u8; 4] = [0x40, 1, 1, 0];
const AS_PATH: [u8; 9] = [0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9];
const NEXT_HOP: [u8; 7] = [0x40, 3, 4, 10, 0, 0, 1];
const NLRI: [u8; 4] = [24, 10, 1, 2];

/// An UPDATE body from attribute bytes and IPv4 NLRI.
fn body(attrs: &[&[u8]], nlri: &[u8]) -> Vec<u8> {
    let a: Vec<u8> = attrs.concat();
    let mut b = vec![0, 0];
    b.extend((a.len() as u16).to_be_bytes());
    b.extend(a);
    b.extend(nlri);
    b
}

fn verdict(attrs: &[&[u8]], nlri: &[u8], v: &ValidateCtx) -> Verdict {
    let u =
        UpdateMsg::decode(&mut Reader::new(&body(attrs, nlri)), &ctx()).expect("sections parse");
    validate(&u, v)
}

/// The single strongest finding: (action, attribute type, rfc).
fn one(v: &Verdict) -> (Action, Option<u8>, &'static str) {
    let f = v
        .findings
        .iter()
        .find(|f| f.action == v.action)
        .expect("a finding");
    (v.action, f.attr, f.rfc)
}

/// A well-formed EVPN MP_REACH with one type-2 route, and variants with one byte changed.
fn mp_reach_evpn(mac_len: u8, route_len: u8, nh: &[u8]) -> Vec<u8> {
    let mut r = vec![0, 1, 10, 255, 0, 2, 0, 2]; // RD 10.255.0.2:2
    r.extend([0; 10]); // ESI
    r.extend([0; 4]); // Ethernet Tag
    r.push(mac_len);
    r.extend([2, 0xbb, 0, 0, 0, 1]);
    r.push(32);
    r.extend([10, 100, 0, 50]);
    r.extend([0, 0, 100]);
    let mut v = vec![0, 25, 70, nh.len() as u8];
    v.extend(nh);
    v.push(0);
    v.push(2);
    v.push(route_len);
    v.extend(r);
    let mut a = vec![0x90, 14];
    a.extend((v.len() as u16).to_be_bytes());
    a.extend(v);
    a
}

#[test]
fn well_formed_update_is_clean() {
    let v = verdict(&[&ORIGIN, &AS_PATH, &NEXT_HOP], &NLRI, &ebgp());
    assert_eq!(v.action, Action::None);
    let v = verdict(
        &[&ORIGIN, &AS_PATH, &mp_reach_evpn(48, 37, &[10, 255, 0, 1])],
        &[],
        &ebgp(),
    );
    assert_eq!(v, Verdict::ok());
}

#[test]
fn treat_as_withdraw_cases() {
    let taw = |attrs: &[&[u8]], v: &ValidateCtx| one(&verdict(attrs, &NLRI, v));
    assert_eq!(
        taw(&[&[0x40, 1, 1, 3], &AS_PATH, &NEXT_HOP], &ebgp()),
        (Action::TreatAsWithdraw, Some(1), "RFC 7606 §7.1")
    );
    assert_eq!(
        taw(&[&ORIGIN, &[0x40, 2, 2, 2, 0], &NEXT_HOP], &ebgp()),
        (Action::TreatAsWithdraw, Some(2), "RFC 7606 §7.2")
    );
    assert_eq!(
        taw(&[&ORIGIN, &AS_PATH, &[0x40, 3, 5, 10, 0, 0, 1, 0]], &ebgp()),
        (Action::TreatAsWithdraw, Some(3), "RFC 7606 §7.3")
    );
    assert_eq!(
        taw(&[&ORIGIN, &AS_PATH, &[0x40, 3, 4, 0, 0, 0, 0]], &ebgp()),
        (Action::TreatAsWithdraw, Some(3), "RFC 7606 §7.3")
    );
    assert_eq!(
        taw(
            &[&ORIGIN, &AS_PATH, &NEXT_HOP, &[0x80, 4, 3, 0, 0, 1]],
            &ebgp()
        ),
        (Action::TreatAsWithdraw, Some(4), "RFC 7606 §7.4")
    );
    assert_eq!(
        taw(
            &[&ORIGIN, &AS_PATH, &NEXT_HOP, &[0x40, 5, 3, 0, 0, 1]],
            &ibgp()
        ),
        (Action::TreatAsWithdraw, Some(5), "RFC 7606 §7.5")
    );
    assert_eq!(
        taw(
            &[&ORIGIN, &AS_PATH, &NEXT_HOP, &[0xc0, 8, 5, 0, 0, 0, 1, 2]],
            &ebgp()
        ),
        (Action::TreatAsWithdraw, Some(8), "RFC 7606 §7.8")
    );
    assert_eq!(
        taw(
            &[&ORIGIN, &AS_PATH, &NEXT_HOP, &[0x80, 9, 3, 1, 2, 3]],
            &ibgp()
        ),
        (Action::TreatAsWithdraw, Some(9), "RFC 7606 §7.9")
    );
    assert_eq!(
        taw(
            &[&ORIGIN, &AS_PATH, &NEXT_HOP, &[0x80, 10, 5, 1, 2, 3, 4, 5]],
            &ibgp()
        ),
        (Action::TreatAsWithdraw, Some(10), "RFC 7606 §7.10")
    );
    // extended community length 7: treat-as-withdraw, as FRR 8.4 and GoBGP do (INTEROP.md)
    assert_eq!(
        taw(
            &[
                &ORIGIN,
                &AS_PATH,
                &NEXT_HOP,
                &[0xc0, 16, 7, 0, 2, 0xfd, 0xe9, 0, 0, 0]
            ],
            &ebgp()
        ),
        (Action::TreatAsWithdraw, Some(16), "RFC 7606 §7.14")
    );
    assert_eq!(
        taw(
            &[
                &ORIGIN,
                &AS_PATH,
                &NEXT_HOP,
                &[0xc0, 32, 11, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]
            ],
            &ebgp()
        ),
        (Action::TreatAsWithdraw, Some(32), "RFC 8092 §6")
    );
    assert_eq!(
        taw(
            &[&ORIGIN, &AS_PATH, &NEXT_HOP, &[0xc0, 22, 3, 0, 6, 0]],
            &ebgp()
        ),
        (Action::TreatAsWithdraw, Some(22), "RFC 7606 §2")
    );
    // O/T flags wrong: ORIGIN sent as optional
    assert_eq!(
        taw(&[&[0xc0, 1, 1, 0], &AS_PATH, &NEXT_HOP], &ebgp()),
        (Action::TreatAsWithdraw, Some(1), "RFC 7606 §3(c)")
    );
    // missing well-known mandatory AS_PATH
    assert_eq!(
        taw(&[&ORIGIN, &NEXT_HOP], &ebgp()),
        (Action::TreatAsWithdraw, Some(2), "RFC 7606 §3(d)")
    );
    // AS_PATH from an eBGP peer not starting with its AS; confederation segment from eBGP
    assert_eq!(
        taw(
            &[&ORIGIN, &[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea], &NEXT_HOP],
            &ebgp()
        )
        .0,
        Action::TreatAsWithdraw
    );
    assert_eq!(
        taw(
            &[&ORIGIN, &[0x40, 2, 6, 3, 1, 0, 0, 0xfd, 0xe9], &NEXT_HOP],
            &ebgp()
        )
        .2,
        "RFC 7606 §7.2; RFC 5065 §5"
    );
    // unrecognized well-known attribute (O = 0)
    assert_eq!(
        taw(&[&ORIGIN, &AS_PATH, &NEXT_HOP, &[0x40, 99, 1, 0]], &ebgp()).0,
        Action::TreatAsWithdraw
    );
    // attribute length overruns the attribute section (RFC 7606 §4)
    let v = verdict(
        &[&ORIGIN, &AS_PATH, &NEXT_HOP, &[0xc0, 8, 9, 0, 0]],
        &NLRI,
        &ebgp(),
    );
    assert_eq!(one(&v), (Action::TreatAsWithdraw, Some(8), "RFC 7606 §4"));
    // EVPN next hop of 5 octets
    let v = verdict(
        &[
            &ORIGIN,
            &AS_PATH,
            &mp_reach_evpn(48, 37, &[10, 255, 0, 1, 9]),
        ],
        &[],
        &ebgp(),
    );
    assert_eq!(
        one(&v),
        (Action::TreatAsWithdraw, Some(14), "RFC 7606 §7.11")
    );
}

#[test]
fn attribute_discard_cases() {
    let d = |attrs: &[&[u8]], v: &ValidateCtx| one(&verdict(attrs, &NLRI, v));
    let base: [&[u8]; 3] = [&ORIGIN, &AS_PATH, &NEXT_HOP];
    let with = |x: &'static [u8]| -> Vec<&[u8]> { base.iter().copied().chain([x]).collect() };
    assert_eq!(
        d(&with(&[0x40, 5, 4, 0, 0, 0, 100]), &ebgp()),
        (Action::AttributeDiscard, Some(5), "RFC 7606 §7.5")
    );
    assert_eq!(
        d(&with(&[0x40, 5, 3, 0, 0, 100]), &ebgp()),
        (Action::AttributeDiscard, Some(5), "RFC 7606 §7.5")
    );
    assert_eq!(
        d(&with(&[0x40, 6, 1, 0]), &ebgp()),
        (Action::AttributeDiscard, Some(6), "RFC 7606 §7.6")
    );
    assert_eq!(
        d(&with(&[0xc0, 7, 7, 0, 0, 0xfd, 0xe9, 10, 0, 0]), &ebgp()),
        (Action::AttributeDiscard, Some(7), "RFC 7606 §7.7")
    );
    assert_eq!(
        d(&with(&[0xc0, 17, 2, 2, 0]), &ebgp()),
        (Action::AttributeDiscard, Some(17), "RFC 6793 §6")
    );
    assert_eq!(
        d(&with(&[0x80, 9, 4, 1, 2, 3, 4]), &ebgp()),
        (Action::AttributeDiscard, Some(9), "RFC 7606 §7.9, §7.10")
    );
    // a repeated attribute: the second ORIGIN is discarded, the UPDATE is processed
    let v = verdict(
        &[&ORIGIN, &AS_PATH, &NEXT_HOP, &[0x40, 1, 1, 2]],
        &NLRI,
        &ebgp(),
    );
    assert_eq!(
        one(&v),
        (Action::AttributeDiscard, Some(1), "RFC 7606 §3(g)")
    );
    let u = UpdateMsg::decode(
        &mut Reader::new(&body(
            &[&ORIGIN, &AS_PATH, &NEXT_HOP, &[0x40, 1, 1, 2]],
            &NLRI,
        )),
        &ctx(),
    )
    .unwrap();
    let fixed = apply(&u, &v).unwrap();
    assert_eq!(fixed[0].attrs.len(), 3);
    assert_eq!(fixed[0].nlri.len(), 1);
    // unknown optional transitive attribute: kept, no finding
    assert_eq!(
        verdict(&with(&[0xc0, 99, 2, 1, 2]), &NLRI, &ebgp()).action,
        Action::None
    );
}

#[test]
fn afi_safi_disable_and_session_reset_cases() {
    // EVPN MAC length 40: the NLRI cannot be parsed. FRR 8.4 resets (3/9); RFC 7606 §5.3 and
    // RFC 4760 §7 allow disabling just the family, which keeps IPv4 unicast up.
    let v = verdict(
        &[&ORIGIN, &AS_PATH, &mp_reach_evpn(40, 37, &[10, 255, 0, 1])],
        &[],
        &ebgp(),
    );
    let f = &v.findings[0];
    assert_eq!(
        (v.action, f.family),
        (Action::AfiSafiDisable, Some(Family::L2VPN_EVPN))
    );
    let n = f.notification.as_ref().unwrap();
    assert_eq!((n.code, n.subcode), (3, 9));
    // EVPN route length wrong: same
    assert_eq!(
        verdict(
            &[&ORIGIN, &AS_PATH, &mp_reach_evpn(48, 38, &[10, 255, 0, 1])],
            &[],
            &ebgp()
        )
        .action,
        Action::AfiSafiDisable
    );
    // the same for a family that was not negotiated is ignored
    let ipv4_only = ValidateCtx {
        families: vec![Family::IPV4_UNICAST],
        ..ebgp()
    };
    assert_eq!(
        verdict(
            &[&ORIGIN, &AS_PATH, &mp_reach_evpn(40, 37, &[10, 255, 0, 1])],
            &[],
            &ipv4_only
        )
        .action,
        Action::AttributeDiscard
    );
    // MP_REACH twice: session reset with Malformed Attribute List (RFC 7606 §3(g))
    let mp = mp_reach_evpn(48, 37, &[10, 255, 0, 1]);
    let v = verdict(&[&ORIGIN, &AS_PATH, &mp, &mp], &[], &ebgp());
    assert_eq!(one(&v), (Action::SessionReset, Some(14), "RFC 7606 §3(g)"));
    assert_eq!(
        v.notification.as_ref().map(|n| (n.code, n.subcode)),
        Some((3, 1))
    );
    // MP_REACH overrunning the attribute section: its NLRI cannot be located (RFC 7606 §4)
    let mut cut = mp.clone();
    cut.truncate(20);
    let v = verdict(&[&ORIGIN, &AS_PATH, &cut], &[], &ebgp());
    assert_eq!(one(&v), (Action::SessionReset, Some(14), "RFC 7606 §4"));
    assert!(apply(&UpdateMsg::default(), &v).is_none());
    // an EVPN route type vmmi does not type (9): kept, noted, no error (RFC 7606 §5.4)
    let mut t9 = mp.clone();
    let at = t9.iter().position(|b| *b == 2).unwrap(); // first "2" is the route type after the header
    assert_eq!(t9[at + 1], 37);
    t9[at] = 9;
    let v = verdict(&[&ORIGIN, &AS_PATH, &t9], &[], &ebgp());
    assert_eq!(
        (v.action, v.findings[0].rfc),
        (Action::None, "RFC 7606 §5.4")
    );
}

#[test]
fn section_and_header_errors_are_session_reset() {
    let dec = |b: &[u8]| {
        Message::decode(b, &ctx())
            .map(|_| ())
            .unwrap_err()
            .notification
    };
    let mut msg = vec![0xff; 16];
    msg.extend([0, 23, 2, 0, 9, 0, 0]); // withdrawn length 9 in a 4-octet body
    let n = dec(&msg);
    assert_eq!((n.code, n.subcode), (3, 1));
    let mut msg = vec![0xff; 16];
    msg.extend([0, 28, 2, 0, 0, 0, 0, 33, 10, 0, 0, 0]); // prefix length 33
    let n = dec(&msg);
    assert_eq!((n.code, n.subcode), (3, 10));
    let mut ka = vec![0xff; 16];
    ka.extend([0, 18, 4]);
    assert_eq!(
        (dec(&ka).code, dec(&ka).subcode, dec(&ka).data),
        (1, 2, vec![0, 18])
    );
}

/// Found by `cargo fuzz run bgp_update_validate`: an UPDATE with a malformed ORIGIN
/// (treat-as-withdraw) and unparseable EVPN NLRI (AFI/SAFI disable). `apply` used to act only on
/// the strongest action and kept the malformed path.
#[test]
fn taw_applies_alongside_afi_safi_disable() {
    let data = include_bytes!("../fuzz/regressions/bgp_update_validate-taw-with-disable.bin");
    let (_sel, b) = data.split_first().unwrap();
    let u = UpdateMsg::decode(&mut Reader::new(b), &ctx()).unwrap();
    let v = validate(
        &u,
        &ValidateCtx {
            ibgp: true,
            enforce_first_as: false,
            ..ebgp()
        },
    );
    assert_eq!(v.action, Action::AfiSafiDisable);
    assert!(
        v.findings
            .iter()
            .any(|f| f.action == Action::TreatAsWithdraw && f.attr == Some(1))
    );
    let fixed = apply(&u, &v).unwrap();
    assert_eq!(fixed.len(), 1);
    assert!(fixed[0].attrs.is_empty(), "{fixed:?}");
    assert_eq!(validate(&fixed[0], &ebgp()).action, Action::None);
}

/// Found by the fuzzer: treat-as-withdraw of an UPDATE carrying both MP_REACH and MP_UNREACH of
/// different families must not produce an UPDATE with two MP_UNREACH_NLRI (RFC 7606 §3(g)).
#[test]
fn taw_with_reach_and_unreach_of_different_families() {
    let unreach_v4: &[u8] = &[0x80, 15, 7, 0, 1, 1, 24, 10, 9, 9];
    let mp = mp_reach_evpn(48, 37, &[10, 255, 0, 1]);
    // ORIGIN malformed → treat-as-withdraw for the whole UPDATE
    let u = UpdateMsg::decode(
        &mut Reader::new(&body(&[&[0x40, 1, 1, 7], &AS_PATH, unreach_v4, &mp], &[])),
        &ctx(),
    )
    .unwrap();
    let v = validate(&u, &ebgp());
    assert_eq!(v.action, Action::TreatAsWithdraw);
    let out = apply(&u, &v).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0].mp_unreach().map(|m| (m.family, m.withdrawn.len())),
        Some((Family::IPV4_UNICAST, 1))
    );
    assert_eq!(
        out[1].mp_unreach().map(|m| (m.family, m.withdrawn.len())),
        Some((Family::L2VPN_EVPN, 1))
    );
}

/// Found by the fuzzer: an MP_UNREACH_NLRI sent with wrong flags (0x40, well-known) makes the
/// UPDATE treat-as-withdraw (RFC 7606 §3(c)); its withdrawals still stand and are re-issued with
/// the attribute's proper flags, so the result validates clean.
#[test]
fn taw_reissues_withdrawals_with_canonical_flags() {
    let unreach_bad_flags: &[u8] = &[0x40, 15, 7, 0, 1, 1, 24, 10, 9, 9];
    let u = UpdateMsg::decode(
        &mut Reader::new(&body(&[&ORIGIN, &AS_PATH, unreach_bad_flags], &[])),
        &ctx(),
    )
    .unwrap();
    let v = validate(&u, &ebgp());
    assert_eq!(
        one(&v),
        (Action::TreatAsWithdraw, Some(15), "RFC 7606 §3(c)")
    );
    let out = apply(&u, &v).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].attrs[0].flags, 0x80);
    assert_eq!(out[0].mp_unreach().map(|m| m.withdrawn.len()), Some(1));
    assert_eq!(validate(&out[0], &ebgp()).action, Action::None);
}

/// Found by the fuzzer: a withdrawal list longer than 255 octets re-issued by `apply` must carry
/// the Extended Length flag in memory too, so the UPDATE equals its own decoded encoding.
#[test]
fn reissued_long_withdrawal_gets_extended_length() {
    let data =
        include_bytes!("../fuzz/regressions/bgp_update_validate-reissued-unreach-ext-length.bin");
    let (_sel, b) = data.split_first().unwrap();
    // the fuzz target's context for selector 0x05: 4-octet AS, iBGP, extended messages
    let ext = BgpCtx {
        four_octet_as: true,
        extended_message: true,
        add_path_rx: vec![],
    };
    let u = UpdateMsg::decode(&mut Reader::new(b), &ext).unwrap();
    let v = validate(&u, &ibgp());
    let out = apply(&u, &v).expect("not a session reset");
    assert!(out.iter().any(|f| f.mp_unreach().is_some()));
    for f in out {
        let bytes = Message::Update(f.clone()).to_bytes(&ext);
        let (back, _) = Message::decode(&bytes, &ext).unwrap();
        assert_eq!(back, Message::Update(f));
    }
}
