//! Raw bytes → a run of EVPN NLRI (route type, length, value), decoded two ways.
//! Asserts: no panic; every decoded route re-encodes to exactly the bytes it was decoded from
//! (EVPN routes keep every field, reserved bits and unknown types included); the hot-path
//! decoder of `NlriList::decode` gives the same routes as decoding one route at a time; and
//! the type-2 fast path agrees with the checked field-by-field decoder on every value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vmmi::wire::Reader;
use vmmi::wire::bgp::Family;
use vmmi::wire::bgp::evpn::{EvpnRoute, MacIpRoute};
use vmmi::wire::bgp::nlri::NlriList;

fuzz_target!(|data: &[u8]| {
    // the type-2 fast path vs the checked decoder, on the whole input as a route value
    let checked = {
        let mut r = Reader::new(data);
        MacIpRoute::decode_value(&mut r).ok().filter(|_| r.is_empty())
    };
    assert_eq!(MacIpRoute::decode_regular(data), checked);

    let mut r = Reader::new(data);
    let mut one_by_one = Vec::new();
    let mut all_ok = true;
    while !r.is_empty() {
        let start = r.offset();
        let Ok(route) = EvpnRoute::decode(&mut r) else {
            all_ok = false;
            break;
        };
        let consumed = &data[start..r.offset()];
        let mut out = Vec::new();
        route.encode(&mut out);
        assert_eq!(out, consumed, "{route:?}");
        let back = EvpnRoute::decode(&mut Reader::new(&out)).expect("re-encoded route decodes");
        assert_eq!(back, route);
        one_by_one.push(route);
    }
    let list = NlriList::decode(&mut Reader::new(data), Family::L2VPN_EVPN, false);
    match list {
        Ok(NlriList::Evpn(v)) => {
            assert!(all_ok);
            assert_eq!(v.into_iter().map(|n| n.route).collect::<Vec<_>>(), one_by_one);
        }
        Ok(other) => panic!("{other:?}"),
        Err(_) => assert!(!all_ok),
    }
});
