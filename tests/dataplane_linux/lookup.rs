//! What the kernel holds for one MAC (part of `dataplane_linux`: its namespaces and probe):
//! `Dataplane::lookup` through the probe — vmmi's pair, an operator's replace, a sticky MAC,
//! a local port — and `vmmi explain mac` of a daemon running the Linux backend in a
//! namespace, which reads the kernel's entry and says when it is not what the EVPN layer
//! wants.

use super::*;
use crate::daemon_harness::{self as dh, Daemon};

fn lookup(p: &mut Probe, mac: &str) -> Value {
    let a = p.cmd(json!({"cmd": "lookup", "vni": 100, "mac": mac}));
    a.get("entry").cloned().unwrap_or_else(|| panic!("{a}"))
}

#[test]
fn lookup_reads_the_kernels_entries_for_one_mac() {
    require!();
    let ns = Ns::new();
    let mut p = ns.probe();
    assert_eq!(p.configure(json!([l2(100)]))["ok"], true);
    // nothing yet
    let e = lookup(&mut p, M1);
    assert_eq!(e["vtep"], Value::Null, "{e}");
    assert_eq!(e["bridge"]["at"], "absent", "{e}");

    // the layer wants M1 behind X: the kernel's pair, read back
    p.apply_ok(json!([fdb(M1, "10.0.0.2", false)]));
    let e = lookup(&mut p, M1);
    assert_eq!(e["vtep"], "10.0.0.2", "{e}");
    assert_eq!(e["extern_learn"], true, "{e}");
    assert_eq!(e["sticky"], false, "{e}");
    assert_eq!(e["bridge"]["at"], "vxlan", "{e}");
    assert_eq!(e["other_vteps"], json!([]), "{e}");

    // an operator points it elsewhere: the lookup says what the kernel holds, not what was
    // written
    ns.sh(&format!(
        "bridge fdb replace {M1} dev vxlan100 dst 10.0.0.9 self permanent"
    ));
    let e = lookup(&mut p, M1);
    assert_eq!(e["vtep"], "10.0.0.9", "{e}");
    assert_eq!(e["permanent"], true, "{e}");
    assert_eq!(
        e["extern_learn"], false,
        "the kernel took the operator's flags: {e}"
    );

    // a sticky MAC: static sticky
    p.apply_ok(json!([fdb(M2, "10.0.0.3", true)]));
    let e = lookup(&mut p, M2);
    assert_eq!(
        (&e["vtep"], &e["static"], &e["sticky"]),
        (&json!("10.0.0.3"), &json!(true), &json!(true)),
        "{e}"
    );

    // a MAC on a local port of the bridge
    const M3: &str = "02:00:00:00:00:03";
    ns.sh("ip link add vm0 type veth peer name vm0p && ip link set vm0 master br100 up");
    ns.sh(&format!("bridge fdb add {M3} dev vm0 master static"));
    let e = lookup(&mut p, M3);
    assert_eq!(e["vtep"], Value::Null, "{e}");
    assert_eq!(
        e["bridge"],
        json!({"at": "local", "port": ns.ifindex("vm0")}),
        "{e}"
    );

    // a VNI the backend does not have
    let a = p.cmd(json!({"cmd": "lookup", "vni": 7, "mac": M1}));
    assert_eq!(
        a["lookup_error"],
        json!({"kind": "not-configured", "vni": 7}),
        "{a}"
    );
}

/// `vmmi run` with `[dataplane] kind = "linux"` in the namespace (VTEP 10.255.0.1), peering
/// with a memory-dataplane daemon (VTEP 10.255.0.2) in the same namespace.
fn linux_daemons(ns: &Ns) -> (Daemon, Daemon) {
    ns.sh("ip addr add 10.255.0.1/32 dev lo && ip addr add 10.255.0.2/32 dev lo");
    let d = dh::dir();
    let a_toml = dh::vtep_cfg(
        "10.255.0.1",
        "10.255.0.2",
        "127.0.0.1:51901",
        &d.join(format!("{}-a.json", ns.name)),
    )
    .replace("kind = \"memory\"", "kind = \"linux\"");
    let b_toml = dh::vtep_cfg(
        "10.255.0.2",
        "10.255.0.1",
        "127.0.0.1:51902",
        &d.join(format!("{}-b.json", ns.name)),
    );
    let a = dh::start_in_netns(&ns.name, "lx-a", &a_toml, "127.0.0.1:51901");
    let b = dh::start_in_netns(&ns.name, "lx-b", &b_toml, "127.0.0.1:51902");
    assert!(
        dh::wait(Duration::from_secs(15), || dh::state(&a) == "Established"
            && dh::state(&b) == "Established"),
        "{}\n{}",
        dh::log_of(&a),
        dh::log_of(&b)
    );
    (a, b)
}

#[test]
fn explain_shows_the_kernels_entry_and_a_mismatch_after_an_operators_replace() {
    require!();
    let ns = Ns::new();
    let (a, b) = linux_daemons(&ns);
    // the start-up reconcile (after b's End-of-RIB) would rewrite an operator's entry: let it
    // pass first
    assert!(
        dh::wait(WAIT, || dh::log_of(&a).contains("dataplane reconciled")),
        "{}",
        dh::log_of(&a)
    );
    const M: &str = "02:00:00:00:09:01";
    dh::cli(&b, &["vm", "attach", "--vni", "100", "--mac", M]).expect("vm attach");
    // the layer wants M behind b; explain reads it back from the kernel
    assert!(
        dh::wait(WAIT, || dh::explain(&a, M)
            .is_some_and(|x| x["dataplane"] == "10.255.0.2")),
        "{:?}\n{}",
        dh::explain(&a, M),
        dh::log_of(&a)
    );
    let x = dh::explain(&a, M).expect("explain");
    assert_eq!(x["dataplane_wanted"], "10.255.0.2", "{x}");
    assert_eq!(x["dataplane_in_sync"], true, "{x}");
    assert_eq!(x["dataplane_entry"]["extern_learn"], true, "{x}");
    assert_eq!(x["dataplane_entry"]["bridge"]["at"], "vxlan", "{x}");
    assert_eq!(x["dataplane_error"], Value::Null, "{x}");
    assert_eq!(
        entries_of(&ns.fdb("vxlan100"), M),
        vec![(
            "10.255.0.2".to_string(),
            strs(&["self", "extern_learn"]),
            String::new()
        )],
        "the kernel agrees"
    );

    // an operator points the MAC elsewhere: explain reports the kernel's value, not in sync
    ns.sh(&format!(
        "bridge fdb replace {M} dev vxlan100 dst 10.255.0.9 self"
    ));
    let x = dh::explain(&a, M).expect("explain");
    assert_eq!(x["dataplane"], "10.255.0.9", "{x}");
    assert_eq!(x["dataplane_wanted"], "10.255.0.2", "{x}");
    assert_eq!(x["dataplane_in_sync"], false, "{x}");
    let out = a
        .vmmi(&["explain", "mac", M, "--vni", "100"])
        .output()
        .expect("vmmi explain");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("dataplane: FDB -> VTEP 10.255.0.9")
            && text.contains("the EVPN layer wants: FDB -> VTEP 10.255.0.2")
            && text.contains("MISMATCH"),
        "{text}"
    );
}
