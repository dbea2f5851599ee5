//! Raw bytes → EXTENDED_COMMUNITIES attribute value (8-octet entries) and each entry on its own.
//! Asserts: decoding is total and re-encoding is the identity on every 8 octets; the attribute
//! decoder agrees with the per-entry decoder and flags a length that is not a multiple of 8.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vmmi::wire::Reader;
use vmmi::wire::bgp::BgpCtx;
use vmmi::wire::bgp::attr::{AttrValue, PathAttr};
use vmmi::wire::bgp::extcomm::ExtCommunity;

fuzz_target!(|data: &[u8]| {
    for chunk in data.chunks_exact(8) {
        let b: [u8; 8] = chunk.try_into().unwrap();
        let c = ExtCommunity::decode(b);
        assert_eq!(c.encode(), b, "{c:?}");
        assert_eq!(ExtCommunity::decode(c.encode()), c);
        let _ = c.to_string();
    }
    let Ok(len) = u16::try_from(data.len()) else { return };
    let mut attr = vec![0xd0, 16];
    attr.extend(len.to_be_bytes());
    attr.extend(data);
    let a = PathAttr::decode(&mut Reader::new(&attr), &BgpCtx::default()).expect("framing is valid");
    match a.value {
        AttrValue::ExtCommunities(v) => {
            assert_eq!(data.len() % 8, 0);
            assert_eq!(v.len(), data.len() / 8);
        }
        AttrValue::Malformed { .. } => assert_ne!(data.len() % 8, 0),
        other => panic!("unexpected {other:?}"),
    }
    let mut out = Vec::new();
    PathAttr { flags: 0xd0, type_code: 16, value: PathAttr::decode(&mut Reader::new(&attr), &BgpCtx::default()).unwrap().value }
        .encode(&BgpCtx::default(), &mut out);
    assert_eq!(out, attr);
});
