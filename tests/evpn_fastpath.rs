//! The type-2 hot paths (`MacIpRoute::decode_regular`, `decode_regular_into`, and the loop in
//! `NlriList::decode` that uses them) must agree exactly with the field-by-field decoder
//! `MacIpRoute::decode_value`: same value whenever either accepts, and the fast path declines
//! only what the checked decoder rejects.

use arbitrary::{Arbitrary, Unstructured};
use proptest::prelude::*;
use vmmi::wire::Reader;
use vmmi::wire::bgp::Family;
use vmmi::wire::bgp::evpn::{EvpnRoute, MacIpRoute};
use vmmi::wire::bgp::nlri::NlriList;

fn checked(b: &[u8]) -> Option<MacIpRoute> {
    let mut r = Reader::new(b);
    let v = MacIpRoute::decode_value(&mut r).ok()?;
    r.finish("route").ok()?;
    Some(v)
}

fn fast_into(b: &[u8]) -> Option<MacIpRoute> {
    let mut slot = MacIpRoute::EMPTY;
    MacIpRoute::decode_regular_into(b, &mut slot).then_some(slot)
}

fn check(b: &[u8]) -> Result<(), TestCaseError> {
    let c = checked(b);
    prop_assert_eq!(&MacIpRoute::decode_regular(b), &c);
    prop_assert_eq!(&fast_into(b), &c);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, .. ProptestConfig::default() })]

    /// Random bytes near the real sizes (33–52 octets), with the MAC/IP length octets often
    /// set to legal values so both accept and reject paths are exercised.
    #[test]
    fn fast_paths_equal_checked_decoder_on_random_bytes(
        mut b in proptest::collection::vec(any::<u8>(), 28..56),
        mac_ok in any::<bool>(),
        ip in 0u8..4,
    ) {
        if mac_ok && b.len() > 22 {
            b[22] = 48;
        }
        if b.len() > 29 {
            b[29] = [0, 32, 128, 24][usize::from(ip)];
        }
        check(&b)?;
    }

    /// Every generated type-2 route (all ESI/RD types, IPv4/IPv6/no IP, one or two labels).
    #[test]
    fn fast_paths_decode_every_generated_route(seed in proptest::collection::vec(any::<u8>(), 64..256)) {
        let mut u = Unstructured::new(&seed);
        let Ok(route) = EvpnRoute::arbitrary(&mut u) else { return Ok(()) };
        let mut bytes = Vec::new();
        route.encode(&mut bytes);
        if let EvpnRoute::MacIp(m) = &route {
            let value = &bytes[2..];
            let got = fast_into(value);
            prop_assert_eq!(got.as_ref(), Some(m));
            check(value)?;
        }
        // a run of the same route three times through the NLRI loop
        let run: Vec<u8> = bytes.iter().chain(&bytes).chain(&bytes).copied().collect();
        let mut r = Reader::new(&run);
        let list = NlriList::decode(&mut r, Family::L2VPN_EVPN, false);
        match list {
            Ok(NlriList::Evpn(v)) => {
                prop_assert_eq!(v.len(), 3);
                prop_assert!(v.iter().all(|n| n.route == route));
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
