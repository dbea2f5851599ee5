//! Raw bytes → one LISP control message (UDP 4342 payload).
//! Asserts: no panic; a decoded message re-encodes to exactly the input bytes (every field,
//! reserved bits included, is kept); a generated canonical message round-trips exactly.
#![no_main]
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use vmmi::wire::lisp::{LispMsg, decode};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    if sel & 0x80 != 0 {
        let mut u = Unstructured::new(rest);
        let Ok(msg) = LispMsg::arbitrary(&mut u) else { return };
        let bytes = msg.to_bytes();
        let back = decode(&bytes).expect("canonical message must decode");
        assert_eq!(back, msg);
        assert_eq!(back.to_bytes(), bytes);
        return;
    }
    if let Ok(m) = decode(rest) {
        let again = m.to_bytes();
        let m2 = decode(&again).expect("re-encoded message must decode");
        assert_eq!(m2, m);
        assert_eq!(again, rest, "decoded LISP message did not re-encode byte-exactly: {m:?}");
    }
});
