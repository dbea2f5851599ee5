//! `vmmi::config`: the INTERFACE.md example, the embedded default, environment overrides, one
//! test per validation rule (asserting the exact key path), parse errors from the `config`
//! crate, and the `vmmi check` verb as a subprocess.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // a test of sockets and real time

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;

use vmmi::config::*;
use vmmi::wire::bgp::Family;
use vmmi::wire::bgp::extcomm::RouteTarget;
use vmmi::wire::bgp::rd::RouteDistinguisher;

/// The "Config" block of INTERFACE.md, verbatim.
const INTERFACE_EXAMPLE: &str = r#"
[global]
asn = 65001
router_id = "192.0.2.1"
listen = ["0.0.0.0:179"]          # BGP; empty list = no listener
vtep = "192.0.2.1"                # local VTEP / LISP RLOC

[[neighbor]]
address = "192.0.2.2"             # IP or DNS name (re-resolved on TTL expiry)
remote_asn = 65002
port = 179                        # remote TCP port (tests on loopback use others)
families = ["l2vpn-evpn"]         # also "ipv4-unicast", "ipv6-unicast"
passive = false
hold_time = 90
md5_password = "optional"
ttl_security = false              # GTSM, RFC 5082
route_reflector_client = false
max_prefix = 2000000
graceful_restart = true

[[vni]]
vni = 100
kind = "l2"                       # "l2" or "l3" (symmetric IRB, type 5)
rd = "auto"                       # or "192.0.2.1:100"
import_rt = ["auto"]              # auto = ASN:VNI (RFC 8365 5.1.2.1)
export_rt = ["auto"]
bridge = "br100"                  # linux dataplane devices (created when absent)
vxlan = "vxlan100"
gateway_ip = "10.1.0.1/24"        # optional anycast gateway (default-gateway community)

[mobility]
dad_max_moves = 5
dad_window_secs = 180
dad_freeze_secs = 0               # 0 = frozen until `vmmi dad clear`

[lisp]
roles = ["map-server", "map-resolver"]   # and/or "xtr"
listen = "0.0.0.0:4342"
pubsub = true
smr = true

[[lisp.site]]                     # map-server role
name = "dc-a"
key = "secret"
auth = "hmac-sha256-128"          # "hmac-sha1-96", "hmac-sha256-128", "hmac-sha256-128-hkdf"
eids = ["iid:100 10.1.0.0/16", "iid:100 mac:any"]

[[lisp.map_server]]               # xtr role: where our local EIDs register
address = "192.0.2.9"
key = "secret"

[dataplane]
kind = "linux"                    # "linux", "memory", "none"

[api]
listen = "127.0.0.1:50179"        # HTTP/JSON; GET /metrics is Prometheus text
"#;

/// The example with the "xtr" role its `[[lisp.map_server]]` needs.
fn interface_example_with_xtr() -> String {
    INTERFACE_EXAMPLE.replace(
        r#"roles = ["map-server", "map-resolver"]"#,
        r#"roles = ["map-server", "map-resolver", "xtr"]"#,
    )
}

const BASE: &str = "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\n";

/// `(key, reason)` of every error in `text`.
fn errors_in(text: &str) -> Vec<(String, String)> {
    match Config::from_toml_str(text) {
        Ok(_) => Vec::new(),
        Err(errs) => errs.into_iter().map(|e| (e.key, e.reason)).collect(),
    }
}

/// `(key, reason)` of every error for BASE + `extra`.
fn errors(extra: &str) -> Vec<(String, String)> {
    errors_in(&format!("{BASE}{extra}"))
}

/// Exactly one error in `text`, at `key`, whose reason contains `needle`.
#[track_caller]
fn only_error_in(text: &str, key: &str, needle: &str) {
    let errs = errors_in(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].0, key, "{errs:#?}");
    assert!(
        errs[0].1.contains(needle),
        "{:?} lacks {needle:?}",
        errs[0].1
    );
}

/// Exactly one error for BASE + `extra`, at `key`, whose reason contains `needle`.
#[track_caller]
fn only_error(extra: &str, key: &str, needle: &str) {
    only_error_in(&format!("{BASE}{extra}"), key, needle);
}

#[track_caller]
fn valid(extra: &str) -> Config {
    match Config::from_toml_str(&format!("{BASE}{extra}")) {
        Ok(c) => c,
        Err(e) => panic!("{e:#?}"),
    }
}

const NB: &str = "[[neighbor]]\naddress = \"192.0.2.2\"\nremote_asn = 65002\n";
const IBGP: &str = "[[neighbor]]\naddress = \"192.0.2.2\"\nremote_asn = 65001\n";

// ---- the INTERFACE.md example and the embedded default ---------------------------------------

#[test]
fn interface_example_parses_to_expected_values() {
    let c = Config::from_toml_str(&interface_example_with_xtr()).unwrap();
    let g = &c.global;
    assert_eq!(g.asn, 65001);
    assert_eq!(g.router_id, Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(g.listen, vec!["0.0.0.0:179".parse::<SocketAddr>().unwrap()]);
    assert_eq!(g.vtep, IpAddr::from([192, 0, 2, 1]));
    assert_eq!(
        (g.cluster_id, g.effective_cluster_id()),
        (None, g.router_id)
    );
    assert_eq!((g.graceful_restart_time, g.stale_routes_time), (120, 360));

    assert_eq!(c.neighbor.len(), 1);
    let n = &c.neighbor[0];
    assert_eq!(n.address, PeerAddr::Ip(IpAddr::from([192, 0, 2, 2])));
    assert_eq!((n.remote_asn, n.port, n.hold_time), (65002, 179, 90));
    assert_eq!(n.families, vec![FamilyCfg::L2vpnEvpn]);
    assert!(!n.passive && !n.ttl_security && !n.route_reflector_client && n.graceful_restart);
    assert_eq!(n.md5_password.as_deref(), Some("optional"));
    assert_eq!(n.max_prefix, Some(2_000_000));
    // defaults for the keys the example leaves out
    assert_eq!(
        (n.keepalive, n.keepalive_secs(), n.connect_retry),
        (None, 30, 120)
    );
    assert_eq!(n.max_prefix_action, MaxPrefixAction::Teardown);
    assert_eq!(n.max_prefix_restart_secs, 0);
    assert_eq!(n.add_path, AddPathCfg::None);
    assert_eq!(
        (n.ebgp_multihop, n.local_address, n.delay_open),
        (None, None, None)
    );
    assert!(n.is_ebgp(g.asn));

    assert_eq!(c.vni.len(), 1);
    let v = &c.vni[0];
    assert_eq!((v.vni, v.kind), (100, VniKind::L2));
    assert_eq!(v.rd, RdCfg::Auto);
    assert_eq!(
        (v.import_rt.clone(), v.export_rt.clone()),
        (vec![RtCfg::Auto], vec![RtCfg::Auto])
    );
    assert_eq!(
        (v.bridge.as_deref(), v.vxlan.as_deref()),
        (Some("br100"), Some("vxlan100"))
    );
    assert_eq!(v.gateway_ip, Some("10.1.0.1/24".parse().unwrap()));
    assert_eq!((v.l3_vni, v.prefixes.len()), (None, 0));

    assert_eq!(
        c.mobility,
        MobilityCfg {
            dad_max_moves: 5,
            dad_window_secs: 180,
            dad_freeze_secs: 0,
            state_file: vmmi::config::DEFAULT_STATE_FILE.to_string(),
        }
    );
    let l = &c.lisp;
    assert_eq!(
        l.roles,
        vec![LispRole::MapServer, LispRole::MapResolver, LispRole::Xtr]
    );
    assert_eq!(l.listen, "0.0.0.0:4342".parse::<SocketAddr>().unwrap());
    assert!(l.pubsub && l.smr);
    assert_eq!(l.site.len(), 1);
    let s = &l.site[0];
    assert_eq!(
        (s.name.as_str(), s.key.as_str(), s.auth),
        ("dc-a", "secret", LispAuth::HmacSha256_128)
    );
    assert_eq!(s.eids, vec!["iid:100 10.1.0.0/16", "iid:100 mac:any"]);
    assert!(!s.legacy_key_id && !s.untruncated_auth);
    let m = &l.map_server[0];
    assert_eq!(m.address, PeerAddr::Ip(IpAddr::from([192, 0, 2, 9])));
    assert_eq!(
        (m.key.as_str(), m.auth),
        ("secret", LispAuth::HmacSha256_128)
    );
    assert_eq!(c.dataplane.kind, DataplaneKind::Linux);
    assert_eq!(c.api.listen, Some("127.0.0.1:50179".parse().unwrap()));
}

/// Verbatim, the example lists a map server without the "xtr" role: valid, with that one
/// warning (the section has no effect).
#[test]
fn interface_example_verbatim_is_valid_with_one_warning() {
    let c = Config::from_toml_str(INTERFACE_EXAMPLE).unwrap();
    let w = c.warnings();
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(w[0].key, "lisp.map_server");
    assert!(w[0].reason.contains("\"xtr\""));
}

#[test]
fn embedded_default_parses_and_validates() {
    let c = Config::embedded_default();
    assert!(c.validate().is_empty(), "{:#?}", c.validate());
    assert_eq!(Config::from_toml_str(DEFAULT_TOML).unwrap(), c);
    assert_eq!(
        Config::load_with_env(None, Vec::<(String, String)>::new()).unwrap(),
        c
    );
    assert_eq!(c.dataplane.kind, DataplaneKind::Memory);
    assert_eq!(
        c.global.listen,
        vec!["127.0.0.1:1179".parse::<SocketAddr>().unwrap()]
    );
    assert!(c.neighbor.is_empty() && c.vni.is_empty() && c.lisp.site.is_empty());
    assert_eq!(
        c.lisp.listen,
        "127.0.0.1:4342".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        c.lisp.roles,
        vec![LispRole::MapServer, LispRole::MapResolver]
    );
    assert_eq!(c.api.listen, Some("127.0.0.1:50179".parse().unwrap()));
    assert_eq!(
        (c.global.asn, c.global.router_id),
        (65000, Ipv4Addr::LOCALHOST)
    );
    assert_eq!(c.global.vtep, IpAddr::V4(Ipv4Addr::LOCALHOST));
}

#[test]
fn minimal_file_gets_defaults() {
    let c = valid(NB);
    assert_eq!(
        c.global.listen,
        vec!["0.0.0.0:179".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(
        c.global.vtep,
        IpAddr::from([192, 0, 2, 1]),
        "vtep defaults to router_id"
    );
    assert_eq!(c.neighbor[0].families, vec![FamilyCfg::L2vpnEvpn]);
    assert_eq!(c.neighbor[0].hold_time, 90);
    assert!(
        c.lisp.roles.is_empty(),
        "LISP is off unless a role is configured"
    );
    assert_eq!(c.lisp.listen, "0.0.0.0:4342".parse::<SocketAddr>().unwrap());
    assert_eq!(c.dataplane.kind, DataplaneKind::Memory);
    assert_eq!(c.api.listen, Some("127.0.0.1:50179".parse().unwrap()));
    assert_eq!(c.mobility, MobilityCfg::default());
    assert_eq!(valid("[api]\nlisten = \"none\"\n").api.listen, None);
}

#[test]
fn typed_accessors() {
    let c = valid(
        "[[vni]]\nvni = 10\nrd = \"192.0.2.1:10\"\nimport_rt = [\"auto\", \"4200000000:7\"]\n",
    );
    let v = &c.vni[0];
    let rd = RouteDistinguisher::Ipv4 {
        addr: Ipv4Addr::new(192, 0, 2, 1),
        number: 10,
    };
    assert_eq!(v.rd.explicit(), Some(rd));
    assert_eq!(v.import_rt[0].explicit(), None);
    assert_eq!(
        v.import_rt[1].explicit(),
        Some(RouteTarget::As4 {
            asn: 4_200_000_000,
            value: 7
        })
    );
    assert_eq!(Family::from(FamilyCfg::Ipv6Unicast), Family::IPV6_UNICAST);
    assert_eq!(parse_eid("iid:5 mac:any"), Ok(EidCfg::MacAny { iid: 5 }));
    assert_eq!(
        parse_eid("iid:5 mac:02:00:00:00:00:01"),
        Ok(EidCfg::Mac {
            iid: 5,
            mac: "02:00:00:00:00:01".parse().unwrap()
        })
    );
    assert_eq!(
        parse_eid("iid:0 2001:db8::/32"),
        Ok(EidCfg::Prefix {
            iid: 0,
            prefix: "2001:db8::/32".parse().unwrap()
        })
    );
    assert_eq!(
        LispAuth::NAMES,
        ["hmac-sha1-96", "hmac-sha256-128", "hmac-sha256-128-hkdf"]
    );
    let named = valid("[[neighbor]]\naddress = \"peer.example.net\"\nremote_asn = 2\n");
    assert_eq!(
        named.neighbor[0].address,
        PeerAddr::Name("peer.example.net".into())
    );
}

#[test]
fn error_display_is_key_colon_reason() {
    let e = ConfigError::new("neighbor[1].remote_asn", "required");
    assert_eq!(e.to_string(), "neighbor[1].remote_asn: required");
    assert_eq!(
        ConfigError::new("", "cannot read: x").to_string(),
        "cannot read: x"
    );
}

// ---- validation rules: one test each, exact key path -----------------------------------------

#[test]
fn global_asn_rules() {
    let t = |asn: &str| format!("[global]\nasn = {asn}\nrouter_id = \"192.0.2.1\"\n");
    let e = Config::from_toml_str(&t("0")).unwrap_err();
    assert_eq!((e.len(), e[0].key.as_str()), (1, "global.asn"));
    let e = Config::from_toml_str(&t("23456")).unwrap_err();
    assert_eq!((e.len(), e[0].key.as_str()), (1, "global.asn"));
    assert!(e[0].reason.contains("AS_TRANS"));
    assert!(Config::from_toml_str(&t("4200000000")).is_ok());
}

#[test]
fn global_router_id_not_zero() {
    let e = Config::from_toml_str("[global]\nasn = 1\nrouter_id = \"0.0.0.0\"\n").unwrap_err();
    assert_eq!(
        e.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        ["global.router_id"]
    );
}

#[test]
fn global_listen_unique() {
    let c = "[global]\nasn = 1\nrouter_id = \"192.0.2.1\"\nlisten = [\"0.0.0.0:179\", \"[::]:179\", \"0.0.0.0:179\"]\n";
    let e = Config::from_toml_str(c).unwrap_err();
    assert_eq!((e.len(), e[0].key.as_str()), (1, "global.listen[2]"));
    assert!(e[0].reason.contains("listen[0]"));
}

#[test]
fn global_vtep_cluster_id_restart_and_stale_times() {
    let g = |extra: &str| format!("[global]\nasn = 1\nrouter_id = \"192.0.2.1\"\n{extra}");
    let one = |extra: &str| {
        let e = Config::from_toml_str(&g(extra)).unwrap_err();
        assert_eq!(e.len(), 1, "{e:#?}");
        e[0].key.clone()
    };
    assert_eq!(one("vtep = \"224.0.0.5\"\n"), "global.vtep");
    assert_eq!(one("cluster_id = \"0.0.0.0\"\n"), "global.cluster_id");
    assert_eq!(
        one("graceful_restart_time = 4096\n"),
        "global.graceful_restart_time"
    );
    assert_eq!(one("stale_routes_time = 0\n"), "global.stale_routes_time");
    assert!(
        Config::from_toml_str(&g("graceful_restart_time = 4095\nvtep = \"2001:db8::1\"\n")).is_ok()
    );
}

#[test]
fn neighbor_address_unique_after_port() {
    only_error(
        &format!("{NB}{NB}"),
        "neighbor[1].address",
        "duplicate of neighbor[0]",
    );
    // same address, another port: two speakers on one host (loopback tests)
    valid(&format!("{NB}{NB}port = 1179\n"));
    // names compare case-insensitively, a trailing dot aside
    let name = |n: &str| format!("[[neighbor]]\naddress = \"{n}\"\nremote_asn = 2\n");
    only_error(
        &(name("Peer.Example") + &name("peer.example.")),
        "neighbor[1].address",
        "duplicate",
    );
}

#[test]
fn neighbor_address_syntax() {
    let a = |addr: &str| format!("[[neighbor]]\naddress = \"{addr}\"\nremote_asn = 2\n");
    only_error(&a("-bad.example"), "neighbor[0].address", "RFC 1123");
    only_error(&a("under_score.example"), "neighbor[0].address", "RFC 1123");
    only_error(
        &a("192.0.2.300"),
        "neighbor[0].address",
        "not a valid IP address",
    );
    only_error(
        &a("224.0.0.1"),
        "neighbor[0].address",
        "not a unicast address",
    );
    only_error(&a(&"a".repeat(64)), "neighbor[0].address", "label");
    only_error(
        "[[neighbor]]\nremote_asn = 2\n",
        "neighbor[0].address",
        "required",
    );
    valid(&a("rr1.dc-a.example.net."));
    valid(&a("2001:db8::2"));
}

#[test]
fn neighbor_remote_asn() {
    only_error(
        "[[neighbor]]\naddress = \"192.0.2.2\"\n",
        "neighbor[0].remote_asn",
        "required",
    );
    only_error(
        &NB.replace("65002", "23456"),
        "neighbor[0].remote_asn",
        "AS_TRANS",
    );
}

#[test]
fn neighbor_port_not_zero() {
    only_error(&format!("{NB}port = 0\n"), "neighbor[0].port", "1..=65535");
}

#[test]
fn neighbor_hold_time_zero_or_at_least_three() {
    only_error(
        &format!("{NB}hold_time = 2\n"),
        "neighbor[0].hold_time",
        "RFC 4271 §4.2",
    );
    only_error(
        &format!("{NB}hold_time = 1\n"),
        "neighbor[0].hold_time",
        "at least 3",
    );
    valid(&format!("{NB}hold_time = 0\n"));
    valid(&format!("{NB}hold_time = 3\n"));
}

#[test]
fn neighbor_keepalive_below_hold_time() {
    only_error(
        &format!("{NB}hold_time = 9\nkeepalive = 9\n"),
        "neighbor[0].keepalive",
        "less than hold_time (9)",
    );
    only_error(
        &format!("{NB}hold_time = 0\nkeepalive = 5\n"),
        "neighbor[0].keepalive",
        "hold_time is 0",
    );
    only_error(
        &format!("{NB}keepalive = 0\n"),
        "neighbor[0].keepalive",
        "at least 1",
    );
    assert_eq!(
        valid(&format!("{NB}hold_time = 9\nkeepalive = 8\n")).neighbor[0].keepalive_secs(),
        8
    );
}

#[test]
fn neighbor_connect_retry_positive() {
    only_error(
        &format!("{NB}connect_retry = 0\n"),
        "neighbor[0].connect_retry",
        "at least 1",
    );
}

#[test]
fn neighbor_families_non_empty_and_unique() {
    only_error(
        &format!("{NB}families = []\n"),
        "neighbor[0].families",
        "at least one",
    );
    only_error(
        &format!("{NB}families = [\"ipv4-unicast\", \"l2vpn-evpn\", \"ipv4-unicast\"]\n"),
        "neighbor[0].families[2]",
        "duplicate of families[0]",
    );
}

#[test]
fn neighbor_md5_password_length() {
    only_error(
        &format!("{NB}md5_password = \"{}\"\n", "x".repeat(81)),
        "neighbor[0].md5_password",
        "81 octets",
    );
    only_error(
        &format!("{NB}md5_password = \"\"\n"),
        "neighbor[0].md5_password",
        "empty",
    );
    valid(&format!("{NB}md5_password = \"{}\"\n", "x".repeat(80)));
    // octets, not characters: 41 two-octet characters are 82 octets
    only_error(
        &format!("{NB}md5_password = \"{}\"\n", "é".repeat(41)),
        "neighbor[0].md5_password",
        "82 octets",
    );
}

#[test]
fn neighbor_ttl_security_excludes_ebgp_multihop() {
    only_error(
        &format!("{NB}ttl_security = true\nebgp_multihop = 2\n"),
        "neighbor[0].ttl_security",
        "ebgp_multihop",
    );
    valid(&format!("{NB}ttl_security = true\n"));
}

/// FRR (bgpd.c peer_ttl_security_hops_set) accepts ttl-security on iBGP peers; so do we.
#[test]
fn neighbor_ttl_security_allowed_on_ibgp_as_in_frr() {
    valid(&format!("{IBGP}ttl_security = true\n"));
}

#[test]
fn neighbor_ebgp_multihop_only_for_ebgp() {
    only_error(
        &format!("{IBGP}ebgp_multihop = 3\n"),
        "neighbor[0].ebgp_multihop",
        "only for eBGP",
    );
    only_error(
        &format!("{NB}ebgp_multihop = 0\n"),
        "neighbor[0].ebgp_multihop",
        "1..=255",
    );
    valid(&format!("{NB}ebgp_multihop = 255\n"));
}

#[test]
fn neighbor_route_reflector_client_only_for_ibgp() {
    only_error(
        &format!("{NB}route_reflector_client = true\n"),
        "neighbor[0].route_reflector_client",
        "iBGP only",
    );
    valid(&format!("{IBGP}route_reflector_client = true\n"));
}

#[test]
fn neighbor_max_prefix_positive() {
    only_error(
        &format!("{NB}max_prefix = 0\n"),
        "neighbor[0].max_prefix",
        "greater than 0",
    );
    let c = valid(&format!(
        "{NB}max_prefix = 1\nmax_prefix_action = \"warning\"\nmax_prefix_restart_secs = 60\n"
    ));
    assert_eq!(c.neighbor[0].max_prefix_action, MaxPrefixAction::Warning);
}

#[test]
fn neighbor_delay_open_range() {
    only_error(
        &format!("{NB}delay_open = 0\n"),
        "neighbor[0].delay_open",
        "1..=240",
    );
    only_error(
        &format!("{NB}delay_open = 241\n"),
        "neighbor[0].delay_open",
        "1..=240",
    );
    valid(&format!(
        "{NB}delay_open = 240\nadd_path = \"both\"\ndescription = \"dc-b\"\n"
    ));
}

#[test]
fn neighbor_local_address_family_and_unicast() {
    only_error(
        &format!("{NB}local_address = \"2001:db8::1\"\n"),
        "neighbor[0].local_address",
        "different families",
    );
    only_error(
        &format!("{NB}local_address = \"0.0.0.0\"\n"),
        "neighbor[0].local_address",
        "unicast",
    );
    valid(&format!("{NB}local_address = \"192.0.2.1\"\n"));
}

#[test]
fn neighbor_errors_name_the_right_index() {
    let e = errors(&format!(
        "{NB}[[neighbor]]\naddress = \"192.0.2.3\"\nremote_asn = 0\n"
    ));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].0, "neighbor[1].remote_asn");
}

const VNI: &str = "[[vni]]\nvni = 100\n";

#[test]
fn vni_range_and_unique() {
    only_error("[[vni]]\nvni = 0\n", "vni[0].vni", "1..=16777215");
    only_error("[[vni]]\nvni = 16777216\n", "vni[0].vni", "1..=16777215");
    only_error(&format!("{VNI}{VNI}"), "vni[1].vni", "duplicate of vni[0]");
    valid("[[vni]]\nvni = 16777215\n");
}

#[test]
fn vni_rd_syntax_names_the_part_out_of_range() {
    let rd = |v: &str| format!("{VNI}rd = \"{v}\"\n");
    only_error(
        &rd("65000:4294967296"),
        "vni[0].rd",
        "with a 2-octet ASN it is 32 bits",
    );
    only_error(
        &rd("4200000000:65536"),
        "vni[0].rd",
        "with a 4-octet ASN (4200000000 > 65535) it is 16 bits",
    );
    only_error(
        &rd("192.0.2.1:65536"),
        "vni[0].rd",
        "with an IPv4 administrator it is 16 bits",
    );
    only_error(
        &rd("4294967296:1"),
        "vni[0].rd",
        "ASN 4294967296 is out of range",
    );
    only_error(&rd("192.0.2.300:1"), "vni[0].rd", "not an IPv4 address");
    only_error(&rd("65000"), "vni[0].rd", "expected ASN:NN or A.B.C.D:NN");
    only_error(
        &rd("65000:x"),
        "vni[0].rd",
        "assigned number \"x\" is not a number",
    );
    only_error(
        &rd("as65000:1"),
        "vni[0].rd",
        "neither an ASN nor an IPv4 address",
    );
    for ok in [
        "65000:4294967295",
        "4200000000:65535",
        "192.0.2.1:65535",
        "AUTO",
    ] {
        valid(&rd(ok));
    }
}

#[test]
fn vni_rt_syntax_names_the_list_index() {
    only_error(
        &format!("{VNI}import_rt = [\"auto\", \"65000:1\", \"70000:70000\"]\n"),
        "vni[0].import_rt[2]",
        "4-octet ASN",
    );
    only_error(
        &format!("{VNI}export_rt = [\"1.2.3.4:99999\"]\n"),
        "vni[0].export_rt[0]",
        "16 bits",
    );
}

#[test]
fn vni_l3_vni_must_exist_and_be_l3() {
    only_error(
        &format!("{VNI}l3_vni = 5000\n"),
        "vni[0].l3_vni",
        "no [[vni]] has vni = 5000",
    );
    only_error(
        &format!("{VNI}l3_vni = 200\n[[vni]]\nvni = 200\nkind = \"l2\"\n"),
        "vni[0].l3_vni",
        "kind \"l2\"",
    );
    valid(&format!(
        "{VNI}l3_vni = 5000\n[[vni]]\nvni = 5000\nkind = \"l3\"\nprefixes = [\"10.1.0.0/16\"]\n"
    ));
}

#[test]
fn vni_gateway_ip_only_on_l2() {
    only_error(
        "[[vni]]\nvni = 5000\nkind = \"l3\"\ngateway_ip = \"10.0.0.1/24\"\n",
        "vni[0].gateway_ip",
        "only for kind \"l2\"",
    );
}

#[test]
fn vni_l3_only_fields() {
    only_error(
        "[[vni]]\nvni = 5000\nkind = \"l3\"\nl3_vni = 5000\n",
        "vni[0].l3_vni",
        "only for kind \"l2\"",
    );
    only_error(
        &format!("{VNI}prefixes = [\"10.0.0.0/8\"]\n"),
        "vni[0].prefixes",
        "only for kind \"l3\"",
    );
    only_error(
        "[[vni]]\nvni = 5000\nkind = \"l3\"\nprefixes = [\"10.0.0.0/8\", \"10.1.0.1/16\"]\n",
        "vni[0].prefixes[1]",
        "host bits set (did you mean 10.1.0.0/16?)",
    );
}

#[test]
fn vni_device_names() {
    only_error(
        &format!("{VNI}bridge = \"a-very-long-bridge\"\n"),
        "vni[0].bridge",
        "1..=15 octets",
    );
    only_error(
        &format!("{VNI}vxlan = \"vx/100\"\n"),
        "vni[0].vxlan",
        "cannot contain",
    );
    only_error(
        &format!("{VNI}bridge = \"br0\"\n[[vni]]\nvni = 200\nvxlan = \"br0\"\n"),
        "vni[1].vxlan",
        "already used by vni[0].bridge",
    );
}

#[test]
fn mobility_dad_rules() {
    only_error(
        "[mobility]\ndad_max_moves = 1\n",
        "mobility.dad_max_moves",
        "at least 2",
    );
    only_error(
        "[mobility]\ndad_window_secs = 0\n",
        "mobility.dad_window_secs",
        "at least 1",
    );
    valid("[mobility]\ndad_max_moves = 2\ndad_freeze_secs = 30\n");
}

const MS: &str = "[lisp]\nroles = [\"map-server\"]\n";
const SITE_A: &str = "[[lisp.site]]\nname = \"a\"\nkey = \"k\"\neids = [\"iid:1 10.0.0.0/8\"]\n";

#[test]
fn lisp_site_names_unique() {
    only_error(
        &format!(
            "{MS}{SITE_A}[[lisp.site]]\nname = \"a\"\nkey = \"k\"\neids = [\"iid:2 mac:any\"]\n"
        ),
        "lisp.site[1].name",
        "lisp.site[0]",
    );
    only_error(
        &format!("{MS}[[lisp.site]]\nkey = \"k\"\neids = [\"iid:1 mac:any\"]\n"),
        "lisp.site[0].name",
        "required",
    );
}

#[test]
fn lisp_site_key_non_empty() {
    only_error(
        &format!("{MS}[[lisp.site]]\nname = \"a\"\neids = [\"iid:1 mac:any\"]\n"),
        "lisp.site[0].key",
        "empty",
    );
}

#[test]
fn lisp_site_eid_syntax() {
    let site = |eid: &str| {
        format!(
            "{MS}[[lisp.site]]\nname = \"a\"\nkey = \"k\"\neids = [\"iid:1 mac:any\", \"{eid}\"]\n"
        )
    };
    only_error(
        &site("10.0.0.0/8"),
        "lisp.site[0].eids[1]",
        "expected \"iid:N PREFIX\"",
    );
    only_error(
        &site("iid:16777216 10.0.0.0/8"),
        "lisp.site[0].eids[1]",
        "0..=16777215",
    );
    only_error(&site("iid:x 10.0.0.0/8"), "lisp.site[0].eids[1]", "iid:N");
    only_error(
        &site("iid:1 10.0.0.0/33"),
        "lisp.site[0].eids[1]",
        "is not a prefix",
    );
    only_error(
        &site("iid:1 10.0.0.1/8"),
        "lisp.site[0].eids[1]",
        "host bits",
    );
    only_error(
        &site("iid:1 mac:zz"),
        "lisp.site[0].eids[1]",
        "invalid MAC address",
    );
    only_error(
        &site("iid:1 mac:any"),
        "lisp.site[0].eids[1]",
        "same EID as lisp.site[0].eids[0]",
    );
    only_error(
        &format!("{MS}[[lisp.site]]\nname = \"a\"\nkey = \"k\"\n"),
        "lisp.site[0].eids",
        "at least one",
    );
    valid(&site("iid:1 mac:aa:bb:cc:dd:ee:ff"));
    valid(&site("iid:16777215 2001:db8::/32"));
}

#[test]
fn lisp_eid_in_two_sites() {
    only_error(
        &format!(
            "{MS}{SITE_A}[[lisp.site]]\nname = \"b\"\nkey = \"k\"\neids = [\"iid:1 10.0.0.0/8\"]\n"
        ),
        "lisp.site[1].eids[0]",
        "same EID as lisp.site[0].eids[0]",
    );
}

#[test]
fn lisp_sites_need_map_server_role() {
    only_error(
        &format!("[lisp]\nroles = [\"xtr\"]\n{SITE_A}"),
        "lisp.site",
        "\"map-server\"",
    );
}

#[test]
fn lisp_map_server_without_xtr_role_is_a_warning() {
    let ms = "[[lisp.map_server]]\naddress = \"ms.example\"\nkey = \"k\"\n";
    let w = valid(&format!("{MS}{ms}")).warnings();
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(w[0].key, "lisp.map_server");
    assert!(w[0].reason.contains("\"xtr\""), "{w:#?}");
    let c = valid(&format!("[lisp]\nroles = [\"xtr\"]\n{ms}"));
    assert!(c.warnings().is_empty());
    assert_eq!(
        c.lisp.map_server[0].address,
        PeerAddr::Name("ms.example".into())
    );
    only_error(
        "[lisp]\nroles = [\"xtr\"]\n[[lisp.map_server]]\naddress = \"ms.example\"\n",
        "lisp.map_server[0].key",
        "empty",
    );
    only_error(
        "[lisp]\nroles = [\"xtr\"]\n[[lisp.map_server]]\naddress = \"ms..example\"\nkey = \"k\"\n",
        "lisp.map_server[0].address",
        "RFC 1123",
    );
}

#[test]
fn lisp_roles_unique() {
    only_error(
        "[lisp]\nroles = [\"xtr\", \"map-resolver\", \"xtr\"]\n",
        "lisp.roles[2]",
        "duplicate of roles[0]",
    );
}

#[test]
fn api_listen_differs_from_bgp_listen() {
    let c = "[global]\nasn = 1\nrouter_id = \"192.0.2.1\"\nlisten = [\"127.0.0.1:1179\"]\n[api]\nlisten = \"127.0.0.1:1179\"\n";
    let e = Config::from_toml_str(c).unwrap_err();
    assert_eq!((e.len(), e[0].key.as_str()), (1, "api.listen"));
    assert!(e[0].reason.contains("global.listen[0]"));
}

#[test]
fn validation_reports_every_error_at_once() {
    let c = format!(
        "[global]\nasn = 0\nrouter_id = \"0.0.0.0\"\n{NB}hold_time = 1\n[[vni]]\nvni = 0\n[mobility]\ndad_max_moves = 0\n"
    );
    let keys: Vec<_> = Config::from_toml_str(&c)
        .unwrap_err()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(
        keys,
        [
            "global.asn",
            "global.router_id",
            "neighbor[0].hold_time",
            "vni[0].vni",
            "mobility.dad_max_moves"
        ]
    );
}

// ---- parse errors from the config crate: the key path and reason ------------------------------

#[test]
fn listen_addresses_parse() {
    let e = Config::from_toml_str("[global]\nlisten = [\"0.0.0.0:179\", \"0.0.0.0:17x\"]\n")
        .unwrap_err();
    assert_eq!(
        e[0].to_string(),
        "global.listen[1]: \"0.0.0.0:17x\": invalid socket address syntax"
    );
    only_error(
        "[lisp]\nlisten = \"4342\"\n",
        "lisp.listen",
        "invalid socket address syntax",
    );
    only_error(
        "[api]\nlisten = \"localhost:1\"\n",
        "api.listen",
        "\"none\" to disable",
    );
    only_error_in(
        "[global]\nlisten = \"0.0.0.0:179\"\n",
        "global.listen",
        "expected a sequence",
    );
}

#[test]
fn unknown_keys_name_the_key() {
    only_error_in("bgp = 1\n", "bgp", "unknown key (expected one of `global`");
    only_error_in(
        "[global]\nas = 1\n",
        "global.as",
        "unknown key (expected one of `asn`",
    );
    only_error(
        &format!("{NB}{NB}port = 1\nholdtime = 3\n"),
        "neighbor[1].holdtime",
        "did you mean `hold_time`?",
    );
    only_error(
        &format!("{VNI}[vni.extra]\n"),
        "vni[0].extra",
        "unknown key",
    );
    only_error(
        &format!("{MS}{SITE_A}secret = 1\n"),
        "lisp.site[0].secret",
        "unknown key",
    );
}

#[test]
fn wrong_types_name_the_key() {
    only_error_in(
        "[global]\nasn = \"x65001\"\n",
        "global.asn",
        "invalid type: string \"x65001\"",
    );
    only_error_in(
        "[global]\nasn = 65001.5\n",
        "global.asn",
        "invalid type: floating point `65001.5`",
    );
    only_error(
        &format!("{NB}port = true\n"),
        "neighbor[0].port",
        "invalid type: boolean `true`",
    );
    only_error(
        &format!("{NB}port = 70000\n"),
        "neighbor[0].port",
        "70000 is out of range (0..=65535)",
    );
    only_error(
        &format!("{NB}hold_time = -1\n"),
        "neighbor[0].hold_time",
        "-1 is out of range",
    );
    only_error(
        &format!("{NB}passive = \"maybe\"\n"),
        "neighbor[0].passive",
        "expected a boolean",
    );
    only_error_in(
        "[global]\nasn = 1\nrouter_id = \"192.0.2\"\n",
        "global.router_id",
        "invalid IPv4 address syntax",
    );
    only_error(
        "[dataplane]\nkind = \"dpdk\"\n",
        "dataplane.kind",
        "expected \"linux\", \"memory\", \"none\"",
    );
    only_error(
        &format!("{NB}families = [\"evpn\"]\n"),
        "neighbor[0].families[0]",
        "unknown value \"evpn\"",
    );
    only_error(
        "[mobility]\ndad_max_moves = [5]\n",
        "mobility.dad_max_moves",
        "invalid type",
    );
    only_error_in("mobility = 5\n", "mobility", "expected a table");
    // a quoted number is still a number (the environment only has strings)
    assert_eq!(
        valid(&format!("{NB}port = \"1179\"\n")).neighbor[0].port,
        1179
    );
}

#[test]
fn toml_syntax_errors_give_line_and_column() {
    let e = Config::from_toml_str("[global]\nasn = \n").unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].key, "");
    assert!(
        e[0].reason
            .starts_with("TOML syntax error at line 2, column 7: "),
        "{}",
        e[0].reason
    );
    let e = Config::from_toml_str("[global]\nasn = 1\nasn = 2\n").unwrap_err();
    assert_eq!(
        e[0].reason,
        "TOML syntax error at line 3, column 1 (`asn`): duplicate key"
    );
}

#[test]
fn load_reports_unreadable_file_with_its_name() {
    let p = PathBuf::from("/nonexistent/vmmi.toml");
    let e = Config::load_with_env(Some(&p), Vec::<(String, String)>::new()).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(e[0].reason.starts_with("cannot read: "));
    assert_eq!(e[0].origin.as_deref(), Some("/nonexistent/vmmi.toml"));
}

// ---- environment overrides ---------------------------------------------------------------------

fn temp_file(name: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("vmmi-config-{}-{name}.toml", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn env_overrides_in_process() {
    let p = temp_file(
        "env-in-process",
        &format!("{BASE}{NB}md5_password = \"file\"\n"),
    );
    let c = Config::load_with_env(
        Some(&p),
        env(&[
            ("VMMI_GLOBAL__ASN", "65010"),
            ("VMMI_GLOBAL__ROUTER_ID", "198.51.100.1"),
            ("VMMI_NEIGHBOR__0__HOLD_TIME", "30"),
            ("VMMI_NEIGHBOR__0__PASSIVE", "true"),
            ("VMMI_NEIGHBOR__0__MD5_PASSWORD", "0123"),
            ("VMMI_API__LISTEN", "127.0.0.1:60000"),
            ("VMMI_LISP_KEY", "not a config key"),
            ("OTHER__VAR", "ignored"),
        ]),
    )
    .unwrap();
    assert_eq!(c.global.asn, 65010);
    assert_eq!(c.global.router_id, Ipv4Addr::new(198, 51, 100, 1));
    assert_eq!(
        c.global.vtep,
        IpAddr::from([198, 51, 100, 1]),
        "vtep follows the overridden router id"
    );
    assert_eq!((c.neighbor[0].hold_time, c.neighbor[0].passive), (30, true));
    assert_eq!(
        c.neighbor[0].md5_password.as_deref(),
        Some("0123"),
        "strings are not re-typed"
    );
    assert_eq!(c.api.listen, Some("127.0.0.1:60000".parse().unwrap()));
    std::fs::remove_file(p).ok();
}

#[test]
fn env_errors_name_the_variable() {
    let p = temp_file("env-errors", BASE);
    let load = |vars: &[(&str, &str)]| Config::load_with_env(Some(&p), env(vars)).unwrap_err();
    let e = load(&[("VMMI_GLOBAL__ASN", "23456")]);
    assert_eq!(e[0].key, "global.asn");
    assert_eq!(e[0].origin.as_deref(), Some("VMMI_GLOBAL__ASN"));
    assert!(
        e[0].reason.ends_with("(set by VMMI_GLOBAL__ASN)"),
        "{}",
        e[0].reason
    );
    let e = load(&[("VMMI_GLOBAL__ASN", "many")]);
    assert_eq!(e[0].key, "global.asn");
    assert!(e[0].reason.contains("\"many\""), "{}", e[0].reason);
    let e = load(&[("VMMI_GLOBAL__LISTEN", "0.0.0.0:179")]);
    assert_eq!(
        e[0].key, "global.listen",
        "lists cannot come from the environment"
    );
    let e = load(&[("VMMI_GLOBAL__NOPE", "1")]);
    assert_eq!(e[0].key, "global.nope");
    // errors not caused by the environment point at the file
    let e = load(&[("VMMI_NEIGHBOR__0__ADDRESS", "192.0.2.7")]);
    assert_eq!(e[0].key, "neighbor[0].remote_asn");
    assert_eq!(
        e[0].origin.as_deref(),
        Some(p.display().to_string().as_str())
    );
    std::fs::remove_file(&p).ok();
}

fn vmmi_check(file: &std::path::Path, vars: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vmmi"))
        .args(["check", "--config"])
        .arg(file)
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn env_override_through_the_binary() {
    // invalid in the file (AS 0), fixed by the environment
    let p = temp_file(
        "env-binary",
        "[global]\nasn = 0\nrouter_id = \"192.0.2.1\"\n",
    );
    let (code, out) = vmmi_check(&p, &[("VMMI_GLOBAL__ASN", "65010")]);
    assert_eq!(code, 0, "{out}");
    // valid in the file, broken by the environment
    let (code, out) = vmmi_check(
        &p,
        &[
            ("VMMI_GLOBAL__ASN", "65010"),
            ("VMMI_GLOBAL__ROUTER_ID", "0.0.0.0"),
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(
        out,
        format!(
            "{}: global.router_id: required: a non-zero BGP Identifier (RFC 6286 §2.1) (set by VMMI_GLOBAL__ROUTER_ID)\n",
            p.display()
        )
    );
    std::fs::remove_file(&p).ok();
}

// ---- vmmi check ----------------------------------------------------------------------------------

#[test]
fn check_good_file() {
    let p = temp_file("check-good", &interface_example_with_xtr());
    let (code, out) = vmmi_check(&p, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!("ok: {} (1 neighbors, 1 VNIs, 1 LISP sites)\n", p.display())
    );
    std::fs::remove_file(&p).ok();
}

#[test]
fn check_bad_file_prints_every_error() {
    let text = format!("{BASE}{NB}hold_time = 2\n{NB}[[vni]]\nvni = 0\n");
    let p = temp_file("check-bad", &text);
    let (code, out) = vmmi_check(&p, &[]);
    assert_eq!(code, 1);
    let f = p.display();
    assert_eq!(
        out,
        format!(
            "{f}: neighbor[0].hold_time: 2 is invalid: 0 or at least 3 seconds (RFC 4271 §4.2)\n\
             {f}: neighbor[1].address: duplicate of neighbor[0] (same address and port)\n\
             {f}: vni[0].vni: 0 is out of range (1..=16777215, 24 bits, RFC 7348 §5)\n"
        )
    );
    // a parse error: one line, the key path and the crate's reason
    std::fs::write(&p, "[global]\nasn = 1.5\n").unwrap();
    let (code, out) = vmmi_check(&p, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        format!(
            "{f}: global.asn: invalid type: floating point `1.5`, expected an integer in 0..=4294967295\n"
        )
    );
    std::fs::remove_file(&p).ok();
    let (code, out) = vmmi_check(&p, &[]);
    assert_eq!(code, 1);
    assert!(out.starts_with(&format!("{f}: cannot read: ")), "{out}");
}

#[test]
fn l3_vni_vrf_and_table() {
    valid("[[vni]]\nvni = 5000\nkind = \"l3\"\nvrf = \"vrf-blue\"\ntable = 1001\n");
    // the default table is the VNI; 253-255 are the kernel's own
    valid("[[vni]]\nvni = 5000\nkind = \"l3\"\n");
    only_error(
        "[[vni]]\nvni = 254\nkind = \"l3\"\n",
        "vni[0].table",
        "the default (the VNI, 254) is a reserved routing table",
    );
    only_error(
        "[[vni]]\nvni = 5000\nkind = \"l3\"\ntable = 0\n",
        "vni[0].table",
        "0 is a reserved routing table",
    );
    only_error(
        "[[vni]]\nvni = 5000\nkind = \"l3\"\ntable = 7\n[[vni]]\nvni = 5001\nkind = \"l3\"\ntable = 7\n",
        "vni[1].table",
        "table 7 is already vni[0]'s",
    );
    only_error(
        &format!("{VNI}table = 7\n"),
        "vni[0].table",
        "only for kind \"l3\"",
    );
    only_error(
        &format!("{VNI}vrf = \"vrf1\"\n"),
        "vni[0].vrf",
        "only for kind \"l3\"",
    );
}

#[test]
fn vni_gateway_and_router_macs() {
    valid(&format!(
        "{VNI}gateway_ip = \"10.1.0.1/24\"\ngateway_mac = \"00:00:5e:00:01:01\"\n[[vni]]\nvni = 5000\nkind = \"l3\"\nrouter_mac = \"02:aa:00:00:00:01\"\n"
    ));
    only_error(
        &format!("{VNI}gateway_mac = \"02:00:00:00:00:01\"\n"),
        "vni[0].gateway_mac",
        "needs gateway_ip",
    );
    only_error(
        &format!("{VNI}gateway_ip = \"10.1.0.1/24\"\ngateway_mac = \"01:00:5e:00:00:01\"\n"),
        "vni[0].gateway_mac",
        "multicast",
    );
    only_error(
        &format!("{VNI}router_mac = \"02:00:00:00:00:01\"\n"),
        "vni[0].router_mac",
        "only for kind \"l3\"",
    );
    only_error(
        "[[vni]]\nvni = 5000\nkind = \"l3\"\ngateway_mac = \"02:00:00:00:00:01\"\n",
        "vni[0].gateway_mac",
        "only for kind \"l2\"",
    );
    only_error(
        "[[vni]]\nvni = 5000\nkind = \"l3\"\nrouter_mac = \"00:00:00:00:00:00\"\n",
        "vni[0].router_mac",
        "not a usable MAC",
    );
    // a MAC that does not parse names the key
    let errs = errors(&format!(
        "{VNI}gateway_ip = \"10.1.0.1/24\"\ngateway_mac = \"zz\"\n"
    ));
    assert!(
        errs.iter()
            .any(|(k, r)| k.contains("gateway_mac") && r.contains("MAC")),
        "{errs:?}"
    );
}

// ---------------------------------------------------------------------------------------
// SIGHUP: what a reload applies and what needs a restart (`reload_plan`)

fn reloadable_base() -> Config {
    Config::from_toml_str(
        r#"
[global]
asn = 65001
router_id = "192.0.2.1"
[[neighbor]]
address = "192.0.2.2"
remote_asn = 65002
[[vni]]
vni = 100
bridge = "br-a"
[[vni]]
vni = 200
[lisp]
roles = ["map-server"]
[[lisp.site]]
name = "dc-a"
key = "k"
eids = ["iid:100 10.1.0.0/16"]
"#,
    )
    .unwrap()
}

#[test]
fn reload_applies_neighbors_vnis_dad_and_sites_and_keeps_the_rest() {
    let old = reloadable_base();
    let mut new = old.clone();
    new.neighbor[0].hold_time = 30;
    new.vni.retain(|v| v.vni != 200);
    new.vni[0].export_rt = vec![RtCfg::Set("65001:1".into())];
    new.vni.push(VniCfg {
        vni: 300,
        ..VniCfg::default()
    });
    new.mobility.dad_max_moves = 9;
    new.lisp.site[0].key = "k2".into();
    let plan = reload_plan(&old, &new);
    assert_eq!(plan.needs_restart, Vec::<String>::new());
    assert_eq!(plan.effective, new);
}

#[test]
fn reload_keeps_what_needs_a_restart_and_names_each_key() {
    let old = reloadable_base();
    let mut new = old.clone();
    new.global.asn = 65099;
    new.api.listen = None;
    new.dataplane.kind = DataplaneKind::Linux;
    new.mobility.state_file = "/tmp/x.json".into();
    new.lisp.roles.push(LispRole::MapResolver);
    new.lisp.smr = false;
    new.vni[0].bridge = Some("br-b".into()); // a device of a VNI that stays
    new.vni[0].export_rt = vec![RtCfg::Set("65001:1".into())];
    new.neighbor[0].hold_time = 30; // applied all the same
    let plan = reload_plan(&old, &new);
    assert_eq!(
        plan.needs_restart,
        vec![
            "global",
            "api",
            "dataplane",
            "mobility.state_file",
            "lisp.roles",
            "lisp.smr",
            "vni 100: kind / bridge / vxlan / vrf / table / arp_nd_suppress (the VNI keeps its running configuration)",
        ]
    );
    let e = &plan.effective;
    assert_eq!(e.global, old.global);
    assert_eq!(e.api, old.api);
    assert_eq!(e.dataplane, old.dataplane);
    assert_eq!(e.mobility.state_file, old.mobility.state_file);
    assert_eq!(e.lisp, old.lisp);
    // the VNI whose device changed keeps all of its running configuration
    assert_eq!(e.vni[0], old.vni[0]);
    assert_eq!(e.neighbor[0].hold_time, 30);
    // a second reload of the same file reports the same keys (nothing was silently taken)
    assert_eq!(reload_plan(e, &new).needs_restart, plan.needs_restart);
}

/// `vmmi check` on INTERFACE.md's example as written: valid (exit 0), with the one warning
/// printed before the `ok:` line.
#[test]
fn check_prints_warnings_and_passes() {
    let p = temp_file("interface-example", INTERFACE_EXAMPLE);
    let (code, out) = vmmi_check(&p, &[]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&format!(
            "{}: warning: lisp.map_server: unused",
            p.display()
        )),
        "{out}"
    );
    assert!(lines[1].starts_with("ok: "), "{out}");
    std::fs::remove_file(&p).ok();
}

#[test]
fn arp_nd_suppress_is_an_l2_vni_bridge_port_setting() {
    let c = valid(&format!("{VNI}arp_nd_suppress = true\n"));
    assert!(c.vni[0].arp_nd_suppress);
    // what the Linux dataplane is asked for: neigh_suppress on that VNI's VXLAN port only
    let c = valid(&format!(
        "{VNI}arp_nd_suppress = true\n[[vni]]\nvni = 200\n"
    ));
    let devs = vmmi::runtime::vtep::vni_devs(&c);
    assert_eq!(
        devs.iter()
            .map(|d| (d.vni, d.neigh_suppress))
            .collect::<Vec<_>>(),
        vec![(100, true), (200, false)]
    );
    assert!(!valid(VNI).vni[0].arp_nd_suppress, "off by default");
    only_error(
        "[[vni]]\nvni = 5000\nkind = \"l3\"\narp_nd_suppress = true\n",
        "vni[0].arp_nd_suppress",
        "only for kind \"l2\"",
    );
}
