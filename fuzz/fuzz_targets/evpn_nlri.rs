//! Raw bytes → a run of EVPN NLRI (route type, length, value).
//! Asserts: no panic; every decoded route re-encodes to exactly the bytes it was decoded from
//! (EVPN routes keep every field, reserved bits and unknown types included).
#![no_main]
use libfuzzer_sys::fuzz_target;
use vmmi::wire::Reader;
use vmmi::wire::bgp::evpn::EvpnRoute;

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    while !r.is_empty() {
        let start = r.offset();
        let Ok(route) = EvpnRoute::decode(&mut r) else { return };
        let consumed = &data[start..r.offset()];
        let mut out = Vec::new();
        route.encode(&mut out);
        assert_eq!(out, consumed, "{route:?}");
        let back = EvpnRoute::decode(&mut Reader::new(&out)).expect("re-encoded route decodes");
        assert_eq!(back, route);
    }
});
