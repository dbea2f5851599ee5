//! Raw bytes → UPDATE body → RFC 7606 `validate` → `apply`.
//! Asserts: no panic; the verdict's action is the strongest finding; a session reset always
//! carries an UPDATE Message Error NOTIFICATION; applying a non-fatal verdict yields an UPDATE
//! that encodes and decodes back to itself and validates without a session reset.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vmmi::wire::Reader;
use vmmi::wire::bgp::validate::{Action, ValidateCtx, apply, validate};
use vmmi::wire::bgp::{BgpCtx, Family, Message, UpdateMsg};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let four = sel & 1 != 0;
    let mut add_path_rx = Vec::new();
    if sel & 2 != 0 {
        add_path_rx.push(Family::L2VPN_EVPN);
    }
    let ctx = BgpCtx { four_octet_as: four, extended_message: true, add_path_rx };
    let Ok(u) = UpdateMsg::decode(&mut Reader::new(body), &ctx) else { return };
    let vctx = ValidateCtx {
        ibgp: sel & 4 != 0,
        four_octet_as: four,
        families: vec![Family::L2VPN_EVPN, Family::IPV4_UNICAST],
        peer_as: 65001,
        enforce_first_as: sel & 8 != 0,
        confed_peer: false,
    };
    let v = validate(&u, &vctx);
    assert_eq!(v.action, v.findings.iter().map(|f| f.action).max().unwrap_or(Action::None));
    if v.action == Action::SessionReset {
        let n = v.notification.as_ref().expect("session reset carries a NOTIFICATION");
        assert_eq!(n.code, 3);
        assert!(apply(&u, &v).is_none());
        return;
    }
    let fixed = apply(&u, &v).expect("non-fatal verdicts apply");
    assert!(!fixed.is_empty() && fixed.len() <= 2);
    for f in fixed {
        let bytes = Message::Update(f.clone()).to_bytes(&ctx);
        if bytes.len() > ctx.max_len() {
            continue;
        }
        let (back, _) = Message::decode(&bytes, &ctx).expect("applied UPDATE decodes");
        assert_eq!(back, Message::Update(f.clone()));
        // what survives `apply` is usable: at most routes of a family that was never negotiated
        // remain, which are ignored (attribute discard); nothing withdraws or resets
        let again = validate(&f, &vctx);
        assert!(again.action <= Action::AttributeDiscard, "{again:?}");
    }
});
