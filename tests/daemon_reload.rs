//! SIGHUP on a running daemon beyond neighbors: `[[vni]]` added and removed, `[[lisp.site]]`
//! added and removed, and a change that needs a restart — observed as an operator would, over
//! the API and on the peer daemon, with the session between them never flapping.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // real processes and time

use std::time::Duration;

use serde_json::Value;

#[path = "daemon_harness/mod.rs"]
mod daemon_harness;
use daemon_harness::*;

#[path = "lisp_harness/mod.rs"]
mod lisp_harness;

const A_API: &str = "127.0.0.1:51581";
const B_API: &str = "127.0.0.1:51582";

/// A: VNI 100, Map-Server with site "dc-a" (iid 100); `extra` appended.
fn a_cfg(st: &std::path::Path, vnis: &[u32], sites: &str) -> String {
    let mut s = vtep_cfg("127.0.6.1", "127.0.6.2", A_API, st).replace("[[vni]]\nvni = 100\n", "");
    for v in vnis {
        s.push_str(&format!("[[vni]]\nvni = {v}\n"));
    }
    s.push_str("[lisp]\nroles = [\"map-server\", \"map-resolver\"]\nlisten = \"127.0.6.1:4342\"\n");
    s.push_str(sites);
    s
}

const SITE_A: &str =
    "[[lisp.site]]\nname = \"dc-a\"\nkey = \"secret\"\neids = [\"iid:100 10.1.0.0/16\"]\n";
const SITE_B: &str =
    "[[lisp.site]]\nname = \"dc-b\"\nkey = \"secret-b\"\neids = [\"iid:300 10.3.0.0/16\"]\n";

fn vnis(d: &Daemon) -> Vec<u64> {
    cli(d, &["show", "vnis", "--json"])
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v["vni"].as_u64())
        .collect()
}

/// The RDs of the type-3 routes daemon `d` holds from its peer.
fn type3_rds(d: &Daemon) -> Vec<String> {
    cli(d, &["show", "routes", "--json", "--family", "evpn"])
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r["prefix"].as_str().map(str::to_string))
        .filter(|p| p.starts_with("[3]:"))
        .collect()
}

fn flaps(d: &Daemon) -> Value {
    cli(d, &["show", "neighbors", "--json"]).unwrap()[0]["flaps"].clone()
}

/// Register `eid` (iid 300) from an xTR on 127.0.6.9 with `key`; the registrations the
/// Map-Server then lists for it.
fn register(key: &[u8], nonce: u64) -> std::net::UdpSocket {
    let xtr = std::net::UdpSocket::bind("127.0.6.9:0").unwrap();
    let mut r = lisp_harness::Reg::new(
        vec![lisp_harness::record(
            lisp_harness::pfx(300, "10.3.1.0/24"),
            3,
            1,
            &["127.0.6.9"],
        )],
        nonce,
    );
    r.key = key.to_vec();
    xtr.send_to(&r.bytes(), "127.0.6.1:4342").unwrap();
    xtr
}

fn registered_300() -> Vec<Value> {
    let (_, v) = http(A_API, "GET", "/v1/lisp/registrations", "");
    v.as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["eid"].as_str().is_some_and(|e| e.contains("10.3.1.0/24")))
        .collect()
}

#[test]
fn sighup_adds_and_removes_vnis_and_lisp_sites_without_touching_the_rest() {
    let (st_a, st_b) = (dir().join("ra-mob.json"), dir().join("rb-mob.json"));
    let a = start("ra", &a_cfg(&st_a, &[100], SITE_A), A_API);
    let b_cfg = vtep_cfg("127.0.6.2", "127.0.6.1", B_API, &st_b);
    let b = start("rb", &b_cfg, B_API);
    assert!(wait(Duration::from_secs(15), || state(&a) == "Established"
        && state(&b) == "Established"));
    assert!(wait(Duration::from_secs(5), || type3_rds(&b)
        .contains(&"[3]:[127.0.6.1:100]:[127.0.6.1]".to_string())));

    // a Map-Register for iid 300 before site dc-b exists: refused
    let _x = register(b"secret-b", 1);
    std::thread::sleep(Duration::from_millis(300));
    assert!(registered_300().is_empty());

    // A gets VNI 200 and site dc-b
    std::fs::write(
        &a.config,
        a_cfg(&st_a, &[100, 200], &format!("{SITE_A}{SITE_B}")),
    )
    .unwrap();
    sighup(&a);
    assert!(
        wait(Duration::from_secs(5), || vnis(&a) == vec![100, 200]),
        "{}",
        log_of(&a)
    );
    // B holds A's new type 3, and A's VNI 100 route is still there
    assert!(wait(Duration::from_secs(5), || type3_rds(&b)
        .contains(&"[3]:[127.0.6.1:200]:[127.0.6.1]".to_string())));
    assert!(type3_rds(&b).contains(&"[3]:[127.0.6.1:100]:[127.0.6.1]".to_string()));
    // B gets VNI 200 as well and a VM in it: A imports it into its new VNI
    std::fs::write(
        &b.config,
        b_cfg.replace(
            "[[vni]]\nvni = 100\n",
            "[[vni]]\nvni = 100\n[[vni]]\nvni = 200\n",
        ),
    )
    .unwrap();
    sighup(&b);
    assert!(wait(Duration::from_secs(5), || vnis(&b) == vec![100, 200]));
    cli(
        &b,
        &["vm", "attach", "--vni", "200", "--mac", "02:00:00:00:06:02"],
    )
    .expect("attach");
    assert!(
        wait(Duration::from_secs(5), || cli(
            &a,
            &["show", "macs", "--json", "--vni", "200"]
        )
        .is_some_and(
            |m| m[0]["mac"] == "02:00:00:00:06:02" && m[0]["location"]["vtep"] == "127.0.6.2"
        )),
        "{}",
        log_of(&a)
    );
    // the new site accepts the xTR now
    let _x = register(b"secret-b", 2);
    assert!(wait(Duration::from_secs(5), || registered_300().len() == 1));
    let reg = &registered_300()[0];
    assert_eq!(reg["registrants"][0]["site"], "dc-b", "{reg}");
    assert_eq!(reg["rlocs"][0], "127.0.6.9", "{reg}");

    // A drops VNI 100 and site dc-b: B loses A's type 3 for 100, the registration goes
    std::fs::write(&a.config, a_cfg(&st_a, &[200], SITE_A)).unwrap();
    sighup(&a);
    assert!(wait(Duration::from_secs(5), || vnis(&a) == vec![200]));
    assert!(wait(Duration::from_secs(5), || !type3_rds(&b)
        .contains(&"[3]:[127.0.6.1:100]:[127.0.6.1]".to_string())));
    assert!(type3_rds(&b).contains(&"[3]:[127.0.6.1:200]:[127.0.6.1]".to_string()));
    assert!(wait(Duration::from_secs(5), || registered_300().is_empty()));
    let (c, v) = http(A_API, "GET", "/v1/macs?vni=100", "");
    assert!(
        c == 404 || v.as_array().is_some_and(|a| a.is_empty()),
        "{c} {v}"
    );
    // the VM in 200 is still where it was
    let m = cli(&a, &["show", "macs", "--json", "--vni", "200"]).unwrap();
    assert_eq!(m[0]["location"]["vtep"], "127.0.6.2", "{m}");

    // a change that needs a restart is reported by key and not applied
    let asn_changed = a_cfg(&st_a, &[200], SITE_A).replacen("asn = 65000", "asn = 65099", 1);
    std::fs::write(&a.config, asn_changed).unwrap();
    sighup(&a);
    assert!(
        wait(Duration::from_secs(5), || log_of(&a).contains(
            "SIGHUP: this change needs a restart; the running value is kept key=global"
        )),
        "{}",
        log_of(&a)
    );
    // (an applied ASN change would have reset the session: B expects AS 65000)
    std::thread::sleep(Duration::from_millis(300));
    // nothing flapped through all of it
    assert_eq!(state(&a), "Established");
    assert_eq!(flaps(&a), 0);
    assert_eq!(flaps(&b), 0);
}

/// `vmmi run` without `--config`: the embedded default (INTERFACE.md) — BGP passive on
/// 127.0.0.1:1179, LISP Map-Server/Map-Resolver on 127.0.0.1:4342, the API on
/// 127.0.0.1:50179, memory dataplane — logged at start and answering on each.
#[test]
fn the_embedded_default_runs_without_a_config() {
    use std::process::{Command, Stdio};
    let log = dir().join("default.log");
    let child = Command::new(VMMI)
        .arg("run")
        .env("VMMI_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let d = Daemon {
        child,
        api: "127.0.0.1:50179".into(),
        config: dir().join("default.toml"), // none: the guard removes nothing there
        log,
        netns: None,
    };
    assert!(
        wait(Duration::from_secs(10), || cli(
            &d,
            &["show", "neighbors", "--json"]
        )
        .is_some_and(|v| v == serde_json::json!([]))),
        "{}",
        log_of(&d)
    );
    let text = log_of(&d);
    assert!(text.contains("embedded default"), "{text}");
    // BGP listens (passive, no neighbors)
    assert!(std::net::TcpStream::connect("127.0.0.1:1179").is_ok());
    // LISP answers a Map-Request: no site, so a negative Map-Reply (RFC 9301 §8.3)
    let itr = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    itr.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let req = lisp_harness::request(
        lisp_harness::host(0, "10.9.9.9"),
        "127.0.0.1",
        0x0102_0304_0506_0708,
    );
    let mut got = None;
    for _ in 0..10 {
        itr.send_to(&lisp_harness::bytes_of(&req), "127.0.0.1:4342")
            .unwrap();
        let mut buf = [0u8; 1500];
        if let Ok((n, _)) = itr.recv_from(&mut buf) {
            got = vmmi::wire::lisp::decode(&buf[..n]).ok();
            break;
        }
    }
    let Some(vmmi::wire::lisp::LispMsg::MapReply(r)) = got else {
        panic!("no Map-Reply: {got:?}\n{}", log_of(&d));
    };
    assert_eq!(r.nonce, 0x0102_0304_0506_0708);
    assert!(r.records[0].locators.is_empty());
    let (c, v) = http(&d.api, "GET", "/v1/lisp/counters", "");
    assert_eq!((c, &v["map_requests_rx"]), (200, &Value::from(1)), "{v}");
}

/// `--log-format json`: one JSON object per line; a neighbor's events carry the `peer` span
/// with its address, a site's refusals the `lisp_site` span with its name.
#[test]
fn json_logs_carry_peer_and_lisp_site_spans() {
    let (st_a, st_b) = (dir().join("ja-mob.json"), dir().join("jb-mob.json"));
    let a_toml = a_cfg(&st_a, &[100], SITE_A)
        .replace("127.0.6.1", "127.0.7.1")
        .replace("127.0.6.2", "127.0.7.2")
        .replace(A_API, "127.0.0.1:51591");
    let a = start_args("ja", &a_toml, "127.0.0.1:51591", &["--log-format", "json"]);
    let b_toml = vtep_cfg("127.0.7.2", "127.0.7.1", "127.0.0.1:51592", &st_b);
    let b = start("jb", &b_toml, "127.0.0.1:51592");
    assert!(wait(Duration::from_secs(15), || state(&a) == "Established"
        && state(&b) == "Established"));
    // a Map-Register for dc-a's space with the wrong key: refused, in dc-a's span
    let x = std::net::UdpSocket::bind("127.0.7.9:0").unwrap();
    let mut r = lisp_harness::Reg::new(
        vec![lisp_harness::record(
            lisp_harness::host(100, "10.1.0.9"),
            3,
            1,
            &["127.0.7.9"],
        )],
        1,
    );
    r.key = b"not-the-key".to_vec();
    x.send_to(&r.bytes(), "127.0.7.1:4342").unwrap();
    let lines = || -> Vec<Value> {
        log_of(&a)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    };
    let in_span = |name: &str, field: &str, value: &str| {
        lines().iter().any(|l| {
            l["span"]["name"] == name && l["span"][field] == value
                || l["spans"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|s| s["name"] == name && s[field] == value))
        })
    };
    assert!(
        wait(Duration::from_secs(5), || in_span(
            "peer",
            "peer",
            "127.0.7.2"
        )),
        "{}",
        log_of(&a)
    );
    assert!(
        wait(Duration::from_secs(5), || in_span(
            "lisp_site",
            "site",
            "dc-a"
        )),
        "{}",
        log_of(&a)
    );
    // every line is JSON with a level and a message
    assert!(
        lines()
            .iter()
            .all(|l| l["level"].is_string() && l["fields"]["message"].is_string())
    );
}
