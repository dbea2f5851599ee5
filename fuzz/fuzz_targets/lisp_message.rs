//! Fuzz target: LISP control messages (`vmmi::wire::lisp`).
//!
//! 1. Arbitrary bytes → `decode`. When it succeeds, `encode` must give back exactly the input
//!    (the codec keeps every wire bit, so every decodable input is canonical), and decoding the
//!    re-encoding must give the same value.
//! 2. The same bytes drive `LispMsg::arbitrary` (structure-aware): any generated message must
//!    survive `decode(encode(m)) == m`.
//! 3. `verify` runs on the raw bytes; under `cfg(fuzzing)` it skips only the final HMAC
//!    comparison (ARCHITECTURE.md rule 9), so it must never panic on any input.
#![no_main]

use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use vmmi::wire::lisp::{AuthParams, LispMsg, decode, verify};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode(data) {
        let bytes = msg.to_bytes();
        assert_eq!(
            bytes.as_slice(),
            data,
            "decoded input did not re-encode to the same bytes"
        );
        assert_eq!(decode(&bytes).as_ref(), Ok(&msg));
    }

    let mut u = Unstructured::new(data);
    if let Ok(msg) = LispMsg::arbitrary(&mut u) {
        let bytes = msg.to_bytes();
        assert_eq!(
            decode(&bytes),
            Ok(msg),
            "generated message did not round-trip"
        );
    }

    let _ = verify(data, b"fuzz-key", &AuthParams::oor());
    let _ = verify(data, b"fuzz-key", &AuthParams::default());
});
