//! Real-peer LISP vectors: messages OOR 1.3.0 (Debian `openoverlayrouter`) sent as an xTR in the
//! capture lab (`conformance/vectors/oor-1.3/`, provenance in its README): they decode, re-encode
//! byte-exactly, OOR's HMAC-SHA-1 (legacy 16-bit key-id, 20-octet auth data) verifies with the
//! lab key and fails with another, and the capture decodes through `vmmi decode --pcap`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use vmmi::decode::{DecodeOpts, decode_pcap, parse_hex};
use vmmi::wire::lisp::{AuthParams, LispAddr, LispMsg, decode, verify};

const DIR: &str = "conformance/vectors/oor-1.3";
/// The lab's `oor-xtr.conf` map-server key (README in the vector directory).
const KEY: &[u8] = b"vmmi-lisp-key";

fn vector(name: &str) -> Vec<u8> {
    parse_hex(
        std::fs::read_to_string(Path::new(DIR).join(name))
            .expect("vector")
            .trim(),
    )
    .expect("hex")
}

fn iid_v4(a: &LispAddr) -> Option<(u32, Ipv4Addr)> {
    match a.iid() {
        Some((iid, LispAddr::Ipv4(ip))) => Some((iid, *ip)),
        _ => None,
    }
}

#[test]
fn oor_map_register_decodes_and_its_hmac_verifies() {
    let b = vector("map-register.hex");
    let m = decode(&b).expect("decodes");
    assert_eq!(m.to_bytes(), b, "re-encode differs");
    let LispMsg::MapRegister(r) = &m else {
        panic!("{m:?}")
    };
    assert!(r.want_map_notify, "OOR sets M");
    assert_eq!(r.nonce, 0xfa3e_b77f_86b4_3c42);
    assert_eq!(
        (r.auth.key_id, r.auth.alg_id, r.auth.data.len()),
        (0, 1, 20)
    );
    let rec = &r.records[0];
    assert_eq!(iid_v4(&rec.eid), Some((107, Ipv4Addr::new(10, 1, 7, 0))));
    assert_eq!(
        rec.locators[0].addr,
        LispAddr::Ipv4(Ipv4Addr::new(10, 96, 0, 1))
    );
    verify(&b, KEY, &AuthParams::oor()).expect("OOR's HMAC-SHA-1 verifies with the lab key");
    assert!(verify(&b, b"wrong-key", &AuthParams::oor()).is_err());
}

#[test]
fn oor_ecm_map_request_decodes() {
    let b = vector("ecm-map-request.hex");
    let m = decode(&b).expect("decodes");
    assert_eq!(m.to_bytes(), b, "re-encode differs");
    let LispMsg::Ecm(e) = &m else { panic!("{m:?}") };
    assert_eq!((e.udp.src_port, e.udp.dst_port), (4342, 4342));
    let LispMsg::MapRequest(q) = e.msg.as_ref() else {
        panic!("{e:?}")
    };
    assert_eq!(q.nonce, 0xbe17_e66b_96e1_153e);
    assert!(!q.smr && !q.smr_invoked);
    assert_eq!(
        iid_v4(&q.source_eid),
        Some((107, Ipv4Addr::new(10, 1, 7, 1)))
    );
    assert_eq!(
        q.itr_rlocs,
        vec![LispAddr::Ipv4(Ipv4Addr::new(10, 96, 0, 1))]
    );
    assert_eq!(q.records.len(), 1);
    assert_eq!(
        iid_v4(&q.records[0].eid),
        Some((107, Ipv4Addr::new(10, 2, 8, 1)))
    );
    assert_eq!(q.records[0].mask_len, 32);
}

#[test]
fn oor_capture_decodes_through_vmmi_decode() {
    let pcap = std::fs::read(Path::new(DIR).join("oor-xtr-lisp.pcap")).expect("pcap");
    let objs = decode_pcap(&pcap, &DecodeOpts::default()).expect("capture decodes");
    assert!(objs.len() >= 2, "{objs:?}");
    for o in &objs {
        assert_eq!(o["proto"], "lisp");
        assert!(o.get("error").is_none(), "{o}");
        assert_eq!(o["verdict"]["valid"], true);
    }
    let src: IpAddr = Ipv4Addr::new(10, 96, 0, 1).into();
    assert!(
        objs.iter()
            .all(|o| o["src"].as_str().unwrap().starts_with(&src.to_string()))
    );
    let types: Vec<&str> = objs
        .iter()
        .filter_map(|o| o["message"]["type"].as_str())
        .collect();
    assert!(
        types.contains(&"map-register") && types.contains(&"encapsulated-control-message"),
        "{types:?}"
    );
}
