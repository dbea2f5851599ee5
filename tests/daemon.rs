//! Real daemons on loopback: `vmmi run` processes peering over TCP (127.0.0.x), driven and
//! observed through the CLI and API exactly as an operator would. Covers the runtime shell:
//! sockets, framing, timers in real time, the API, SIGHUP reload, SIGTERM graceful restart
//! (peers keep routes, stale, until End-of-RIB), TCP-MD5, GTSM and DNS neighbor names.
//! Every wait is bounded; every daemon is killed by PID when its guard drops.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // real processes and time

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

#[path = "daemon_harness/mod.rs"]
mod daemon_harness;
use daemon_harness::*;

#[path = "lisp_harness/mod.rs"]
mod lisp_harness;

const T2: &str = r#"{"type":"macip","rd":"10.0.0.1:100","mac":"52:54:00:00:00:01","ip":"10.1.0.5","vni":100,"rt":["65001:100"],"seq":1,"next_hop":"192.0.2.1"}"#;
const T2_SEQ2: &str = r#"{"type":"macip","rd":"10.0.0.1:100","mac":"52:54:00:00:00:01","ip":"10.1.0.5","vni":100,"rt":["65001:100"],"seq":2,"next_hop":"192.0.2.1"}"#;

#[test]
fn two_daemons_exchange_routes_and_survive_a_graceful_restart() {
    let a_cfg = cfg(
        65001,
        "10.0.0.1",
        "127.0.1.1:11179",
        "127.0.1.2",
        65002,
        "127.0.0.1:51181",
        "",
    );
    let b_cfg = cfg(
        65002,
        "10.0.0.2",
        "127.0.1.2:11179",
        "127.0.1.1",
        65001,
        "127.0.0.1:51182",
        "",
    );
    let a = start("a", &a_cfg, "127.0.0.1:51181");
    let mut b = start("b", &b_cfg, "127.0.0.1:51182");
    assert!(
        wait(Duration::from_secs(15), || state(&a) == "Established"
            && state(&b) == "Established"),
        "established\n{}\n{}",
        log_of(&a),
        log_of(&b)
    );
    // each neighbor's log lines are in its own `peer` span
    let la = log_of(&a);
    assert!(
        la.lines()
            .any(|l| l.contains("peer{peer=127.0.1.2") && l.contains("session established")),
        "{la}"
    );
    let n = &cli(&a, &["show", "neighbors", "--json"]).unwrap()[0];
    assert_eq!(
        n["negotiated"]["gr_notification"], true,
        "RFC 8538 N bit negotiated: {n}"
    );

    cli(&a, &["route", "announce", T2]).unwrap();
    assert!(wait(Duration::from_secs(5), || routes(&b).len() == 1));
    let r = &routes(&b)[0];
    assert_eq!(
        r["prefix"],
        "[2]:[10.0.0.1:100]:[52:54:00:00:00:01]:[10.1.0.5]"
    );
    assert_eq!(r["paths"][0]["mac_mobility_seq"], 1);
    assert_eq!(r["paths"][0]["next_hop"], "192.0.2.1");
    assert_eq!(r["paths"][0]["as_path"], serde_json::json!([65001]));
    let ec: Vec<String> = serde_json::from_value(r["paths"][0]["ext_communities"].clone()).unwrap();
    assert_eq!(ec, vec!["RT:65001:100", "ET:8", "MM:1"]);

    // a higher sequence replaces the route at the peer
    cli(&a, &["route", "announce", T2_SEQ2]).unwrap();
    assert!(wait(Duration::from_secs(5), || routes(&b)
        .first()
        .is_some_and(|r| r["paths"][0]["mac_mobility_seq"] == 2)));

    // b routes too, so a holds something from b across b's restart
    cli(
        &b,
        &[
            "route",
            "announce",
            r#"{"type":"unicast","prefix":"10.60.0.0/24"}"#,
        ],
    )
    .unwrap();
    assert!(wait(Duration::from_secs(5), || routes(&a).len() == 2));

    // SIGTERM on b: a keeps b's route, marked stale (RFC 8538 Cease/Administrative Reset)
    let pid = b.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(
        wait(Duration::from_secs(5), || b
            .child
            .try_wait()
            .ok()
            .flatten()
            .is_some()),
        "b exits on SIGTERM"
    );
    assert!(wait(Duration::from_secs(5), || state(&a) != "Established"));
    let stale = routes(&a)
        .into_iter()
        .find(|r| r["prefix"] == "10.60.0.0/24")
        .expect("kept during restart");
    assert_eq!(stale["paths"][0]["stale"], true, "{stale}");

    // b comes back and re-announces: fresh again after its End-of-RIB
    drop(b);
    b = start("b", &b_cfg, "127.0.0.1:51182");
    cli(
        &b,
        &[
            "route",
            "announce",
            r#"{"type":"unicast","prefix":"10.60.0.0/24"}"#,
        ],
    )
    .unwrap();
    assert!(wait(Duration::from_secs(15), || state(&a) == "Established"));
    assert!(wait(Duration::from_secs(5), || routes(&a).iter().any(
        |r| r["prefix"] == "10.60.0.0/24" && r["paths"][0]["stale"] == false
    )));
    // and b learned a's route again
    assert!(wait(Duration::from_secs(5), || routes(&b)
        .iter()
        .any(|r| r["paths"][0]["mac_mobility_seq"] == 2)));

    // withdrawal
    cli(&a, &["route", "withdraw", T2_SEQ2]).unwrap();
    assert!(wait(Duration::from_secs(5), || routes(&b)
        .iter()
        .all(|r| r["family"] != "l2vpn-evpn")));
    drop(a);
}

#[test]
fn sighup_adds_and_removes_neighbors_without_touching_others() {
    let a_cfg = cfg(
        65001,
        "10.0.0.1",
        "127.0.2.1:11179",
        "127.0.2.2",
        65002,
        "127.0.0.1:51191",
        "",
    );
    let b_cfg = cfg(
        65002,
        "10.0.0.2",
        "127.0.2.2:11179",
        "127.0.2.1",
        65001,
        "127.0.0.1:51192",
        "",
    );
    let c_cfg = cfg(
        65003,
        "10.0.0.3",
        "127.0.2.3:11179",
        "127.0.2.1",
        65001,
        "127.0.0.1:51193",
        "",
    );
    let a = start("ha", &a_cfg, "127.0.0.1:51191");
    let b = start("hb", &b_cfg, "127.0.0.1:51192");
    let c = start("hc", &c_cfg, "127.0.0.1:51193");
    assert!(wait(Duration::from_secs(15), || state(&a) == "Established"));
    let up_before = cli(&a, &["show", "neighbors", "--json"]).unwrap()[0]["uptime_secs"].clone();
    // add c to a's config, SIGHUP
    let mut with_c = a_cfg.clone();
    with_c = with_c.replace("[api]", "[[neighbor]]\naddress = \"127.0.2.3\"\nremote_asn = 65003\nport = 11179\nfamilies = [\"l2vpn-evpn\"]\nconnect_retry = 2\n[api]");
    std::fs::write(&a.config, &with_c).unwrap();
    Command::new("kill")
        .args(["-HUP", &a.child.id().to_string()])
        .status()
        .unwrap();
    assert!(
        wait(Duration::from_secs(15), || state(&c) == "Established"),
        "{}",
        log_of(&a)
    );
    let ns = cli(&a, &["show", "neighbors", "--json"]).unwrap();
    assert_eq!(ns.as_array().unwrap().len(), 2);
    let b_view = ns
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["address"] == "127.0.2.2:11179")
        .unwrap()
        .clone();
    assert_eq!(b_view["flaps"], 0, "b untouched");
    assert!(b_view["uptime_secs"].as_u64() >= up_before.as_u64());
    // remove b: only b goes down
    let only_c = with_c.replacen("[[neighbor]]\naddress = \"127.0.2.2\"\nremote_asn = 65002\nport = 11179\nfamilies = [\"l2vpn-evpn\", \"ipv4-unicast\"]\nconnect_retry = 2\nhold_time = 9\n", "", 1);
    assert_ne!(only_c, with_c);
    std::fs::write(&a.config, &only_c).unwrap();
    Command::new("kill")
        .args(["-HUP", &a.child.id().to_string()])
        .status()
        .unwrap();
    assert!(wait(Duration::from_secs(10), || state(&b) != "Established"));
    let ns = cli(&a, &["show", "neighbors", "--json"]).unwrap();
    assert_eq!(ns.as_array().unwrap().len(), 1);
    assert_eq!(ns[0]["address"], "127.0.2.3:11179");
    assert_eq!(ns[0]["state"], "Established");
    assert_eq!(ns[0]["flaps"], 0);
    // a bad config is rejected and the running one kept
    std::fs::write(&a.config, "[global]\nasn = 0\n").unwrap();
    Command::new("kill")
        .args(["-HUP", &a.child.id().to_string()])
        .status()
        .unwrap();
    assert!(wait(Duration::from_secs(5), || log_of(&a)
        .contains("config rejected")));
    assert_eq!(state(&a), "Established");
}

#[test]
fn md5_and_gtsm_sessions_come_up_and_a_wrong_key_does_not() {
    let md5 = "md5_password = \"s3cret\"\nttl_security = true";
    let a = start(
        "ma",
        &cfg(
            65001,
            "10.0.0.1",
            "127.0.3.1:11179",
            "127.0.3.2",
            65002,
            "127.0.0.1:51201",
            md5,
        ),
        "127.0.0.1:51201",
    );
    let b = start(
        "mb",
        &cfg(
            65002,
            "10.0.0.2",
            "127.0.3.2:11179",
            "127.0.3.1",
            65001,
            "127.0.0.1:51202",
            md5,
        ),
        "127.0.0.1:51202",
    );
    assert!(
        wait(Duration::from_secs(15), || state(&a) == "Established"
            && state(&b) == "Established"),
        "{}\n{}",
        log_of(&a),
        log_of(&b)
    );
    let wrong = "md5_password = \"other\"";
    let c = start(
        "mc",
        &cfg(
            65001,
            "10.0.0.3",
            "127.0.3.3:11179",
            "127.0.3.4",
            65002,
            "127.0.0.1:51203",
            "md5_password = \"s3cret\"",
        ),
        "127.0.0.1:51203",
    );
    let d = start(
        "md",
        &cfg(
            65002,
            "10.0.0.4",
            "127.0.3.4:11179",
            "127.0.3.3",
            65001,
            "127.0.0.1:51204",
            wrong,
        ),
        "127.0.0.1:51204",
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_ne!(state(&c), "Established");
    assert_ne!(state(&d), "Established");
}

#[test]
fn a_neighbor_given_by_dns_name_is_resolved_and_peers() {
    // a's neighbor is `localhost` (hosts file: 127.0.0.1), where b listens; a connects from
    // its own address so that b recognizes it
    let a = start(
        "da",
        &cfg(
            65001,
            "10.0.0.1",
            "127.0.4.1:11189",
            "localhost",
            65002,
            "127.0.0.1:51211",
            "local_address = \"127.0.4.1\"",
        ),
        "127.0.0.1:51211",
    );
    let b = start(
        "db",
        &cfg(
            65002,
            "10.0.0.2",
            "127.0.0.1:11189",
            "127.0.4.1",
            65001,
            "127.0.0.1:51212",
            "",
        ),
        "127.0.0.1:51212",
    );
    assert!(
        wait(Duration::from_secs(15), || state(&a) == "Established"
            && state(&b) == "Established"),
        "{}\n{}",
        log_of(&a),
        log_of(&b)
    );
    let n = &cli(&a, &["show", "neighbors", "--json"]).unwrap()[0];
    assert_eq!(n["name"], "localhost");
    assert_eq!(n["address"], "127.0.0.1:11189");
}

#[test]
fn vm_hook_moves_a_mac_between_daemons_and_the_sequence_survives_a_restart() {
    let st_a = dir().join("a-mobility.json");
    let st_b = dir().join("b-mobility.json");
    let a_cfg = vtep_cfg("127.0.2.1", "127.0.2.2", "127.0.0.1:51281", &st_a);
    let b_cfg = vtep_cfg("127.0.2.2", "127.0.2.1", "127.0.0.1:51282", &st_b);
    let mut a = start("va", &a_cfg, "127.0.0.1:51281");
    let b = start("vb", &b_cfg, "127.0.0.1:51282");
    assert!(wait(Duration::from_secs(15), || state(&a) == "Established"
        && state(&b) == "Established"));
    const M: &str = "02:00:00:00:02:02";
    let attach = |d: &Daemon| {
        cli(
            d,
            &[
                "vm", "attach", "--vni", "100", "--mac", M, "--ip", "10.1.0.5",
            ],
        )
        .expect("vm attach")
    };
    let remote_at = |d: &Daemon, vtep: &str, seq: u64| {
        wait(Duration::from_secs(5), || {
            mac_at(d, M).is_some_and(|m| {
                m["location"]["vtep"] == vtep && m["seq"] == seq && m["fdb"] == vtep
            })
        })
    };
    attach(&a);
    assert!(remote_at(&b, "127.0.2.1", 0), "{:?}", mac_at(&b, M));
    // the VM moves to b: seq 1 (RFC 7432 §15.1), a withdraws and points at b
    attach(&b);
    assert!(remote_at(&a, "127.0.2.2", 1), "{:?}", mac_at(&a, M));
    attach(&a);
    assert!(remote_at(&b, "127.0.2.1", 2), "{:?}", mac_at(&b, M));
    // an unknown VNI is refused with the reason
    assert!(cli(&a, &["vm", "attach", "--vni", "7", "--mac", M]).is_none());
    // the move log and explain
    let moves = cli(&b, &["show", "moves", "--json"]).unwrap();
    assert!(moves.as_array().is_some_and(|v| v.len() >= 2), "{moves}");
    // explain over the API: the memory dataplane holds what the layer wants (a's VTEP)
    let (c, x) = http(&b.api, "GET", &format!("/v1/explain/mac/100/{M}"), "");
    assert_eq!(c, 200, "{x}");
    assert_eq!(x["dataplane"], "127.0.2.1", "{x}");
    assert_eq!(x["dataplane_wanted"], "127.0.2.1", "{x}");
    assert_eq!(x["dataplane_in_sync"], true, "{x}");
    assert_eq!(x["dataplane_local"], false, "{x}");
    assert_eq!(x["dataplane_error"], Value::Null, "{x}");
    assert_eq!(x["dataplane_entry"]["bridge"]["at"], "vxlan", "{x}");
    // on a, where the MAC is local: no remote entry wanted or held
    let (c, x) = http(&a.api, "GET", &format!("/v1/explain/mac/100/{M}"), "");
    assert_eq!(c, 200, "{x}");
    assert_eq!(
        (
            &x["dataplane"],
            &x["dataplane_wanted"],
            &x["dataplane_in_sync"]
        ),
        (&Value::Null, &Value::Null, &Value::Bool(true)),
        "{x}"
    );

    // a stops (SIGTERM writes the state file) and comes back: the kernel reports the VM
    // again (here: the hook) and a advertises 2 again, never 0
    let pid = a.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(wait(Duration::from_secs(5), || a
        .child
        .try_wait()
        .ok()
        .flatten()
        .is_some()));
    let saved = std::fs::read_to_string(&st_a).unwrap();
    assert!(saved.contains(r#""last":2"#), "{saved}");
    drop(a);
    a = start("va", &a_cfg, "127.0.0.1:51281");
    assert!(wait(Duration::from_secs(15), || state(&a) == "Established"));
    attach(&a);
    assert!(remote_at(&b, "127.0.2.1", 2), "{:?}", mac_at(&b, M));
    let routes = cli(&b, &["show", "routes", "--json", "--family", "evpn"]).unwrap();
    let seqs: Vec<&Value> = routes
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["prefix"].as_str().is_some_and(|p| p.contains(M)))
        .map(|r| &r["paths"][0]["mac_mobility_seq"])
        .collect();
    assert_eq!(
        seqs,
        vec![&Value::from(2), &Value::from(2)],
        "MAC and MAC+IP share 2"
    );

    // GET /metrics (OpenMetrics text)
    let m = http_get(&b.api, "/metrics");
    for want in [
        "vmmi_bgp_neighbor_up{neighbor=\"127.0.2.1\"} 1",
        "vmmi_evpn_local_learns_total 1",
        "vmmi_evpn_moved_away_total 1",
        "vmmi_evpn_macs{vni=\"100\",location=\"remote\"} 1",
        "vmmi_evpn_move_to_dataplane_seconds_count 2",
        "vmmi_evpn_move_to_update_seconds_count 2",
        "vmmi_bgp_sessions{state=\"Established\"} 1",
        "vmmi_bgp_sessions{state=\"Idle\"} 0",
        "vmmi_bgp_routes{family=\"l2vpn-evpn\",type=\"inclusive-multicast\"} 2",
        "vmmi_bgp_routes{family=\"l2vpn-evpn\",type=\"mac-ip\"} 2",
        "# EOF",
    ] {
        assert!(m.contains(want), "{want:?} not in:\n{m}");
    }
}

#[test]
fn api_refuses_bad_input_with_the_reason_and_a_status_code() {
    let st = dir().join("api-mobility.json");
    let toml = format!(
        "{}[[vni]]\nvni = 5000\nkind = \"l3\"\n",
        vtep_cfg("127.0.3.1", "127.0.3.2", "127.0.0.1:51381", &st)
    );
    let d = start("api", &toml, "127.0.0.1:51381");
    let api = "127.0.0.1:51381";
    let cases: &[(&str, &str, &str, u16, &str)] = &[
        (
            "POST",
            "/v1/vm/attach",
            r#"{"vni":100,"mac":"zz"}"#,
            400,
            "bad body",
        ),
        ("POST", "/v1/vm/attach", r#"{"vni":100}"#, 400, "bad body"),
        ("POST", "/v1/vm/attach", "not json", 400, "bad body"),
        (
            "POST",
            "/v1/vm/attach",
            r#"{"vni":7,"mac":"02:00:00:00:00:01"}"#,
            404,
            "no such vni",
        ),
        (
            "POST",
            "/v1/vm/attach",
            r#"{"vni":100,"mac":"02:00:00:00:00:01","colour":1}"#,
            400,
            "bad body",
        ),
        ("GET", "/v1/explain/mac/100/zz", "", 400, "bad MAC address"),
        (
            "GET",
            "/v1/explain/mac/x/02:00:00:00:00:01",
            "",
            400,
            "vni must be a number",
        ),
        (
            "GET",
            "/v1/explain/mac/100/02:00:00:00:00:09",
            "",
            404,
            "unknown MAC",
        ),
        (
            "POST",
            "/v1/dad/clear",
            r#"{"vni":100,"mac":"02:00:00:00:00:09"}"#,
            404,
            "unknown MAC",
        ),
        (
            "POST",
            "/v1/dad/clear",
            r#"{"vni":7,"mac":"02:00:00:00:00:09"}"#,
            404,
            "no such vni",
        ),
        (
            "GET",
            "/v1/explain/mac/7/02:00:00:00:00:01",
            "",
            404,
            "no such vni",
        ),
        (
            "POST",
            "/v1/vm/attach",
            r#"{"vni":5000,"mac":"02:00:00:00:00:01"}"#,
            422,
            "not an l2 vni",
        ),
        (
            "POST",
            "/v1/vm/detach",
            r#"{"vni":7,"mac":"02:00:00:00:00:01"}"#,
            404,
            "no such vni",
        ),
        ("GET", "/v1/macs?vni=7", "", 404, "no such vni"),
        ("GET", "/v1/macs?vni=abc", "", 400, "bad query"),
        (
            "POST",
            "/v1/neighbors/127.0.3.9/refresh?family=evpn",
            "",
            409,
            "route refresh not sent",
        ),
        (
            "POST",
            "/v1/neighbors/127.0.3.2/refresh?family=bogus",
            "",
            400,
            "unknown family",
        ),
        ("GET", "/v1/nothing-here", "", 404, "no such endpoint"),
    ];
    for (m, path, body, code, err) in cases {
        let (c, v) = http(api, m, path, body);
        assert_eq!(c, *code, "{m} {path} {body}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| e.starts_with(err)),
            "{m} {path} {body}: {v}"
        );
    }
    // and the daemon is still there, answering
    let (c, v) = http(
        api,
        "POST",
        "/v1/vm/attach",
        r#"{"vni":100,"mac":"02:00:00:00:00:01"}"#,
    );
    assert_eq!((c, &v["ok"]), (200, &Value::Bool(true)));
    let m = mac_at(&d, "02:00:00:00:00:01").expect("attached");
    assert_eq!(m["location"]["at"], "local");
    // a MAC that is there but not frozen: 409 with the reason
    let (c, v) = http(
        api,
        "POST",
        "/v1/dad/clear",
        r#"{"vni":100,"mac":"02:00:00:00:00:01"}"#,
    );
    assert_eq!((c, &v["error"]), (409, &Value::from("not frozen")), "{v}");
    // detach: the MAC leaves (nobody else claims it: it is gone from the VNI)
    let (c, v) = http(
        api,
        "POST",
        "/v1/vm/detach",
        r#"{"vni":100,"mac":"02:00:00:00:00:01"}"#,
    );
    assert_eq!((c, &v["ok"]), (200, &Value::Bool(true)));
    assert!(wait(Duration::from_secs(5), || mac_at(
        &d,
        "02:00:00:00:00:01"
    )
    .is_none_or(|m| m["location"]["at"] != "local")));
    // the CLI turns a bad MAC into exit status 2 before asking the daemon
    let out = Command::new(VMMI)
        .args([
            "vm", "attach", "--vni", "100", "--mac", "nope", "--api", api,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a MAC address"));
}

/// `vmmi dad clear` lifts a real freeze: a VM bounced between two VTEPs `dad_max_moves` (2)
/// times within the window is frozen (explain: duplicate), and a clear over the API answers
/// 200 and thaws it (explain: not duplicate, the move count restarted).
#[test]
fn dad_clear_lifts_a_freeze_caused_by_moves() {
    let (sa, sb) = (dir().join("dad-a.json"), dir().join("dad-b.json"));
    let dad = |t: String| t.replace("[mobility]\n", "[mobility]\ndad_max_moves = 2\n");
    let a = start(
        "dad-a",
        &dad(vtep_cfg("127.0.8.1", "127.0.8.2", "127.0.0.1:51801", &sa)),
        "127.0.0.1:51801",
    );
    let b = start(
        "dad-b",
        &dad(vtep_cfg("127.0.8.2", "127.0.8.1", "127.0.0.1:51802", &sb)),
        "127.0.0.1:51802",
    );
    assert!(wait(Duration::from_secs(15), || state(&a) == "Established"
        && state(&b) == "Established"));
    const M: &str = "02:00:00:00:08:01";
    let attach = |d: &Daemon| {
        cli(d, &["vm", "attach", "--vni", "100", "--mac", M]).expect("vm attach");
    };
    let remote_at = |d: &Daemon, vtep: &str| {
        wait(Duration::from_secs(5), || {
            mac_at(d, M).is_some_and(|m| m["location"]["vtep"] == vtep)
        })
    };
    attach(&a);
    assert!(remote_at(&b, "127.0.8.1"), "{:?}", mac_at(&b, M));
    // the explain API on the memory dataplane: what it holds is what the layer wants
    let x = explain(&b, M).expect("explain");
    assert_eq!(x["dataplane"], "127.0.8.1", "{x}");
    assert_eq!(x["dataplane_in_sync"], true, "{x}");
    attach(&b); // move 1 (a: moved away)
    assert!(remote_at(&a, "127.0.8.2"), "{:?}", mac_at(&a, M));
    attach(&a); // move 2 within the window: frozen on a
    assert!(
        wait(Duration::from_secs(5), || explain(&a, M)
            .is_some_and(|x| x["duplicate"] == true)),
        "{:?}\n{}",
        explain(&a, M),
        log_of(&a)
    );
    let body = format!(r#"{{"vni":100,"mac":"{M}"}}"#);
    let (c, v) = http(&a.api, "POST", "/v1/dad/clear", &body);
    assert_eq!((c, &v["ok"]), (200, &Value::Bool(true)), "{v}");
    let x = explain(&a, M).expect("explain");
    assert_eq!(x["duplicate"], false, "{x}");
    assert_eq!(x["moves_total"], 0, "counted from the clear: {x}");
    assert!(log_of(&a).contains("duplicate MAC freeze lifted"));
    // a second clear: not frozen any more
    let (c, _) = http(&a.api, "POST", "/v1/dad/clear", &body);
    assert_eq!(c, 409);
}

/// EVPN → LISP inside one daemon: a VM attached on a vmmi that is also the Map-Server /
/// Map-Resolver is resolvable at once: a Map-Request for its IP (Instance-ID = VNI) gets a
/// Map-Reply with our VTEP as the locator; /v1/lisp/* and /metrics show it.
#[test]
fn a_vm_attached_on_a_map_server_vtep_is_resolvable_over_lisp() {
    use vmmi::lisp::EidPrefix;
    use vmmi::wire::lisp::{LispAddr, LispMsg};
    let st = dir().join("lisp-mobility.json");
    let toml = format!(
        r#"{}
[lisp]
roles = ["map-server", "map-resolver"]
listen = "127.0.5.1:4342"
[[lisp.site]]
name = "dc"
key = "secret"
eids = ["iid:100 10.1.0.0/16", "iid:100 mac:any"]
"#,
        vtep_cfg("127.0.5.1", "127.0.5.2", "127.0.0.1:51481", &st)
    );
    let d = start("lispms", &toml, "127.0.0.1:51481");
    cli(
        &d,
        &[
            "vm",
            "attach",
            "--vni",
            "100",
            "--mac",
            "02:00:00:00:05:05",
            "--ip",
            "10.1.0.5",
        ],
    )
    .expect("attach");
    let itr = std::net::UdpSocket::bind("127.0.5.9:4342").unwrap();
    itr.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let req = lisp_harness::request(
        EidPrefix::host(100, "10.1.0.5".parse().unwrap()),
        "127.0.5.9",
        0x1122_3344_5566_7788,
    );
    let b = lisp_harness::bytes_of(&req);
    let mut got = None;
    for _ in 0..20 {
        itr.send_to(&b, "127.0.5.1:4342").unwrap();
        let mut buf = [0u8; 2048];
        if let Ok((n, _)) = itr.recv_from(&mut buf) {
            got = vmmi::wire::lisp::decode(&buf[..n]).ok();
            break;
        }
    }
    let Some(LispMsg::MapReply(rep)) = got else {
        panic!("no Map-Reply: {got:?}\n{}", log_of(&d));
    };
    assert_eq!(rep.nonce, 0x1122_3344_5566_7788);
    let rec = &rep.records[0];
    let rlocs: Vec<_> = rec.locators.iter().map(|l| l.addr.clone()).collect();
    assert_eq!(
        rlocs,
        vec![LispAddr::Ipv4("127.0.5.1".parse().unwrap())],
        "{rep:?}"
    );
    let m = http_get("127.0.0.1:51481", "/metrics");
    assert!(m.contains("vmmi_lisp_map_replies_tx_total 1"), "{m}");
    // reliable SMR (lisp/smr.rs): next to the Map-Notify retransmissions
    for c in [
        "vmmi_lisp_map_notify_retransmits_total 0",
        "vmmi_lisp_smr_retransmits_total 0",
        "vmmi_lisp_smr_gave_up_total 0",
    ] {
        assert!(m.contains(c), "{c}: {m}");
    }
    // the attached VM's IP and MAC, both from the EVPN feed
    assert!(
        m.contains("vmmi_lisp_registrations{source=\"evpn\"} 2"),
        "{m}"
    );
    assert!(m.contains("vmmi_lisp_subscriptions 0"), "{m}");
    let (c, v) = http("127.0.0.1:51481", "GET", "/v1/lisp/counters", "");
    assert_eq!((c, &v["map_requests_rx"]), (200, &Value::from(1)), "{v}");
    assert_eq!(v["smr_retransmits"], Value::from(0), "{v}");
    assert_eq!(v["smr_gave_up"], Value::from(0), "{v}");
    // `POST /v1/lisp/request` is the xTR's: refused here with the reason, bad EIDs first
    for (body, code, e) in [
        (r#"{"eid":"iid:100 10.1.0.9/32"}"#, 409, "not requested"),
        (r#"{"eid":"10.1.0.9/32"}"#, 400, "bad eid"),
        (r#"{"eid":"iid:100 mac:any"}"#, 400, "bad eid"),
        (r#"{"eid":"iid:100 10.1.0.9/33"}"#, 400, "bad eid"),
        (r#"{"prefix":"x"}"#, 400, "bad body: {eid, subscribe}"),
    ] {
        let (c, v) = http("127.0.0.1:51481", "POST", "/v1/lisp/request", body);
        assert_eq!(c, code, "{body}: {v}");
        assert_eq!(v["error"], e, "{body}: {v}");
    }
    let (_, v) = http(
        "127.0.0.1:51481",
        "POST",
        "/v1/lisp/request",
        r#"{"eid":"iid:100 10.1.0.9/32"}"#,
    );
    assert!(
        v["detail"].as_str().is_some_and(|d| d.contains("xtr role")),
        "{v}"
    );
    // an xTR daemon (no BGP) resolves the VM through this Map-Resolver: `vmmi lisp request`
    let xtr_toml = r#"[global]
asn = 65009
router_id = "127.0.5.3"
listen = ["127.0.5.3:1179"]
[lisp]
roles = ["xtr"]
listen = "127.0.5.3:4342"
[[lisp.map_server]]
address = "127.0.5.1"
key = "secret"
[dataplane]
kind = "none"
[api]
listen = "127.0.0.1:51482"
"#;
    let x = start("lispxtr", xtr_toml, "127.0.0.1:51482");
    let lisp_request = |args: &[&str]| {
        let out = Command::new(VMMI)
            .args(["lisp", "request"])
            .args(args)
            .args(["--api", &x.api])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, text) = lisp_request(&["--iid", "100", "10.1.0.5/32", "--subscribe"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.starts_with("[100] 10.1.0.5/32: [100] 10.1.0.5/32 -> 127.0.5.1 ("),
        "{text}"
    );
    assert!(text.contains(", subscribed"), "{text}");
    // a MAC EID, JSON out
    let (code, text) = lisp_request(&["--iid", "100", "mac:02:00:00:00:05:05", "--json"]);
    assert_eq!(code, Some(0), "{text}");
    let j: Value = serde_json::from_str(&text).expect(&text);
    assert_eq!(j["rlocs"], serde_json::json!(["127.0.5.1"]), "{j}");
    assert_eq!(j["via"], "map-reply", "{j}");
    // an EID nobody registered: a negative entry (RFC 9301 §8.1), printed as such
    let (code, text) = lisp_request(&["--iid", "100", "10.1.9.9/32"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("-> no RLOC (action natively-forward"),
        "{text}"
    );
    // a bad EID: exit status 2 before asking
    assert_eq!(lisp_request(&["10.1.0.5/40"]).0, Some(2));
    // the Map-Server's side over the API: the EVPN-fed registrations of the VM (IP and MAC,
    // our VTEP as RLOC, source evpn) and the xTR's confirmed subscription
    let (c, regs) = http("127.0.0.1:51481", "GET", "/v1/lisp/registrations", "");
    assert_eq!(c, 200, "{regs}");
    let ip_reg = regs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["eid"] == "[100] 10.1.0.5/32")
        .unwrap_or_else(|| panic!("{regs}"));
    assert_eq!(
        ip_reg["rlocs"],
        serde_json::json!(["127.0.5.1"]),
        "{ip_reg}"
    );
    assert_eq!(ip_reg["registrants"][0]["source"], "evpn", "{ip_reg}");
    assert!(
        regs.as_array().unwrap().iter().any(|r| r["eid"]
            .as_str()
            .is_some_and(|e| e.contains("02:00:00:00:05:05"))),
        "{regs}"
    );
    let (c, subs) = http("127.0.0.1:51481", "GET", "/v1/lisp/subscribers", "");
    assert_eq!(c, 200, "{subs}");
    let sub = &subs[0];
    assert_eq!(sub["eid"], "[100] 10.1.0.5/32", "{subs}");
    assert_eq!(sub["itr_rlocs"], serde_json::json!(["127.0.5.3"]), "{subs}");
    assert_eq!(sub["confirmed"], true, "{subs}");
    // the xTR's map-cache over the API, and an unknown view
    let (c, cache) = http("127.0.0.1:51482", "GET", "/v1/lisp/map-cache", "");
    assert_eq!(c, 200);
    assert!(
        cache
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["eid"] == "[100] 10.1.0.5/32" && e["subscribed"] == true),
        "{cache}"
    );
    let (c, v) = http("127.0.0.1:51482", "GET", "/v1/lisp/nothing", "");
    assert_eq!((c, &v["error"]), (404, &Value::from("no such LISP view")));
    // `vmmi show lisp` as tables, on both sides
    let show = |d: &Daemon| {
        let out = Command::new(VMMI)
            .args(["show", "lisp", "--api", &d.api])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // expiry seconds and counters depend on timing (a retransmitted request counts)
    let blank: &[(&str, &str)] = &[
        (r" +\d+s ", " Ns "),
        (
            r"(?m)^counters \(not zero\): .*$",
            "counters (not zero): ...",
        ),
    ];
    snapshot("show-lisp-map-server", &show(&d), blank);
    snapshot("show-lisp-xtr", &show(&x), blank);
}

/// `tests/snapshots/cli/NAME.txt` holds the expected output; `VMMI_UPDATE_SNAPSHOTS=1`
/// rewrites it. Fields that vary between runs are blanked first by `rules` (regex, with).
fn snapshot(name: &str, text: &str, rules: &[(&str, &str)]) {
    let mut t = text.to_string();
    for (re, with) in rules {
        t = regex::Regex::new(re)
            .unwrap()
            .replace_all(&t, *with)
            .into_owned();
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots/cli")
        .join(format!("{name}.txt"));
    if std::env::var_os("VMMI_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &t).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (VMMI_UPDATE_SNAPSHOTS=1 writes it)",
            path.display()
        )
    });
    assert_eq!(
        t,
        want,
        "{name}: the CLI output differs from {} (VMMI_UPDATE_SNAPSHOTS=1 rewrites it)",
        path.display()
    );
}

/// The human tables of `vmmi show` and `vmmi explain` after a VM moved from A to B, as an
/// operator reads them: exact text, only uptimes, message counts and timings blanked.
#[test]
fn cli_tables_match_their_snapshots() {
    let (sa, sb) = (dir().join("snap-a.json"), dir().join("snap-b.json"));
    let a = start(
        "snap-a",
        &vtep_cfg("127.0.6.1", "127.0.6.2", "127.0.0.1:51601", &sa),
        "127.0.0.1:51601",
    );
    let b = start(
        "snap-b",
        &vtep_cfg("127.0.6.2", "127.0.6.1", "127.0.0.1:51602", &sb),
        "127.0.0.1:51602",
    );
    assert!(wait(Duration::from_secs(15), || state(&a) == "Established"
        && state(&b) == "Established"));
    let mac = "02:00:00:00:06:01";
    let attach = |d: &Daemon| {
        cli(
            d,
            &[
                "vm",
                "attach",
                "--vni",
                "100",
                "--mac",
                mac,
                "--ip",
                "10.1.0.61",
            ],
        )
        .expect("attach")
    };
    attach(&a);
    assert!(wait(Duration::from_secs(5), || mac_at(&b, mac)
        .is_some_and(|m| m["location"]["at"] == "remote")));
    attach(&b);
    assert!(wait(Duration::from_secs(5), || mac_at(&a, mac)
        .is_some_and(
            |m| m["seq"] == 1 && m["location"]["at"] == "remote"
        )));
    // B's withdrawal of its remote entry and A's withdrawal reach both sides
    assert!(wait(Duration::from_secs(5), || routes(&b).len() == 4));
    let run = |d: &Daemon, args: &[&str]| {
        let out = Command::new(VMMI)
            .args(args)
            .args(["--api", &d.api])
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let timings: &[(&str, &str)] = &[(r"\d+\.\d{3}", "T.TTT"), (r"\d+ µs ago", "N µs ago")];
    snapshot(
        "show-neighbors",
        &run(&a, &["show", "neighbors"]),
        // up(s), msg in, msg out and the last error depend on timing (who connected first)
        &[(
            r"(?m)^(\S+ +\d+ Established) +\d+ (\S+) +\d+ +\d+  .*$",
            "$1 UP $2 MSGS",
        )],
    );
    snapshot(
        "show-routes",
        &run(&a, &["show", "routes", "--family", "evpn"]),
        &[],
    );
    snapshot("show-macs-a", &run(&a, &["show", "macs"]), &[]);
    snapshot("show-macs-b", &run(&b, &["show", "macs"]), &[]);
    snapshot("show-vnis", &run(&a, &["show", "vnis"]), &[]);
    snapshot("show-moves-a", &run(&a, &["show", "moves"]), timings);
    snapshot("show-moves-b", &run(&b, &["show", "moves"]), timings);
    snapshot(
        "explain-mac",
        &run(&a, &["explain", "mac", mac, "--vni", "100"]),
        timings,
    );
}
