//! Raw bytes → one BGP message (any type, any session context).
//! Asserts: decoding never panics; a decoded message re-encodes to bytes that decode to the same
//! value, and re-encoding is stable; a generated canonical message round-trips byte-exactly.
#![no_main]
use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use vmmi::wire::bgp::generate::{arbitrary_ctx, arbitrary_message};
use vmmi::wire::bgp::{BgpCtx, Family, Message};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    if sel & 0x80 != 0 {
        // structure-aware: generate a canonical message, require an exact round trip
        let mut u = Unstructured::new(rest);
        let Ok(ctx) = arbitrary_ctx(&mut u) else { return };
        let Ok(msg) = arbitrary_message(&mut u, &ctx) else { return };
        let bytes = msg.to_bytes(&ctx);
        let (back, n) = Message::decode(&bytes, &ctx).expect("canonical message must decode");
        assert_eq!(n, bytes.len());
        assert_eq!(back, msg);
        assert_eq!(back.to_bytes(&ctx), bytes);
        return;
    }
    let mut add_path_rx = Vec::new();
    if sel & 1 != 0 {
        add_path_rx.push(Family::L2VPN_EVPN);
    }
    if sel & 2 != 0 {
        add_path_rx.push(Family::IPV4_UNICAST);
    }
    let ctx = BgpCtx { four_octet_as: sel & 4 != 0, extended_message: sel & 8 != 0, add_path_rx };
    if let Ok((m, n)) = Message::decode(rest, &ctx) {
        assert!(n <= rest.len());
        let again = m.to_bytes(&ctx);
        let (m2, n2) = Message::decode(&again, &ctx).expect("re-encoded message must decode");
        assert_eq!(n2, again.len());
        assert_eq!(m2, m);
        assert_eq!(m2.to_bytes(&ctx), again);
    }
});
