//! L3 VNIs against a real kernel (part of `dataplane_linux`: its namespaces, probe and
//! monitors): the VRF device or the clear error without one, routes with their shared
//! RMAC entries and next-hop neighbours, moves without a gap, reconcile, 10,000 routes.

use super::*;

/// Whether this kernel can make VRF devices (Debian 12's can; some CI/dev kernels cannot).
fn vrf_supported(ns: &Ns) -> bool {
    let ok = ns
        .try_sh("ip link add vmmi-vrfprobe type vrf table 4242")
        .is_ok();
    if ok {
        ns.sh("ip link del vmmi-vrfprobe");
    }
    ok
}

const L3: u32 = 5000;
const TABLE: u32 = 1001;
/// The Router's MAC we advertise: the L3 VNI bridge's address.
const OUR_RMAC: &str = "02:00:0a:ff:00:01";
const R1: &str = "02:00:00:00:ee:01";
const R2: &str = "02:00:00:00:ee:02";
const X: &str = "10.0.0.2";
const Y: &str = "10.0.0.3";

fn l3dev() -> Value {
    json!({"vni": L3, "kind": {"type": "l3", "vrf": "vrf-t1", "table": TABLE},
           "bridge": "br5000", "vxlan": "vxlan5000", "local": VTEP, "neigh_suppress": false,
           "router_mac": OUR_RMAC})
}

fn route(prefix: &str, vtep: &str, rmac: Option<&str>) -> Value {
    let mut r = json!({"op": "route", "vni": L3, "prefix": prefix, "vtep": vtep});
    if let Some(m) = rmac {
        r["rmac"] = json!(m);
    }
    r
}

fn route_del(prefix: &str) -> Value {
    json!({"op": "route-del", "vni": L3, "prefix": prefix})
}

/// Configure the L3 VNI (plus L2 VNI 100); assert the VRF device and its enslaved bridge
/// when this kernel has VRFs, the clear error otherwise — the rest works either way.
fn configure_l3(ns: &Ns, p: &mut Probe) {
    let vrf = vrf_supported(ns);
    let a = p.configure(json!([l2(100), l3dev()]));
    // both VNIs are configured on either kernel
    assert_eq!(a["devices"].as_array().unwrap().len(), 2, "{a}");
    if vrf {
        assert_eq!(a["ok"], true, "{a}");
        let v = &ns.json("ip -d -j link show vrf-t1")[0];
        assert_eq!(v["linkinfo"]["info_kind"], "vrf");
        assert_eq!(v["linkinfo"]["info_data"]["table"], TABLE);
        assert_eq!(ns.json("ip -j link show br5000")[0]["master"], "vrf-t1");
    } else {
        assert_eq!(a["ok"], false, "{a}");
        let err = a["error"].as_str().unwrap();
        assert!(
            err.starts_with(
                "vni 5000: creating vrf-t1: this kernel has no vrf link type (CONFIG_NET_VRF): "
            ),
            "{err}"
        );
        assert!(err.contains("routes are written to table 1001"), "{err}");
        assert!(ns.try_sh("ip link show vrf-t1").is_err());
        assert!(ns.json("ip -j link show br5000")[0].get("master").is_none());
    }
    let vx = &ns.json("ip -d -j link show vxlan5000")[0];
    assert_eq!(vx["linkinfo"]["info_data"]["id"], L3);
    assert_eq!(vx["master"], "br5000");
    // remote VTEPs send routed frames to our Router's MAC: the bridge answers to it
    assert_eq!(ns.json("ip -j link show br5000")[0]["address"], OUR_RMAC);
}

/// `ip -j [-6] route show table 1001` as (dst, next hop, dev, protocol, metric, flags).
fn routes(ns: &Ns, v6: bool) -> Vec<(String, String, String, String, u64, Vec<String>)> {
    let fam = if v6 { "-6" } else { "-4" };
    let cmd = format!("ip -j {fam} route show table {TABLE}");
    // a table nothing was ever written to does not exist yet
    let all = match ns.try_sh(&cmd) {
        Err(e) if e.contains("FIB table does not exist") => vec![],
        _ => ns.json(&cmd),
    };
    let mut v: Vec<_> = all
        .iter()
        .map(|r| {
            let nh = r["gateway"]
                .as_str()
                .or(r["via"]["host"].as_str())
                .unwrap_or("")
                .to_string();
            (
                r["dst"].as_str().unwrap_or("").to_string(),
                nh,
                r["dev"].as_str().unwrap_or("").to_string(),
                r["protocol"].as_str().unwrap_or("").to_string(),
                r["metric"].as_u64().unwrap_or(0),
                r["flags"]
                    .as_array()
                    .map(|f| f.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

/// One of our routes as `routes` shows it.
fn ours(dst: &str, nh: &str) -> (String, String, String, String, u64, Vec<String>) {
    (
        dst.into(),
        nh.into(),
        "br5000".into(),
        "210".into(),
        30,
        strs(&["onlink"]),
    )
}

/// The extern_learn neighbours on br5000 as (address, lladdr, state).
fn l3_neighs(ns: &Ns) -> Vec<(String, String, Vec<String>)> {
    let mut v: Vec<_> = ns
        .json("ip -j neigh show nud all dev br5000")
        .iter()
        .filter(|n| n.get("extern_learn").is_some())
        .map(|n| {
            (
                n["dst"].as_str().unwrap().to_string(),
                n["lladdr"].as_str().unwrap_or("").to_string(),
                n["state"]
                    .as_array()
                    .map(|f| f.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

fn nh(ip: &str, mac: &str) -> (String, String, Vec<String>) {
    (ip.into(), mac.into(), strs(&["NOARP"]))
}

/// The unicast FDB entries of vxlan5000 as (mac, dst, flags).
fn rmacs(ns: &Ns) -> Vec<(String, String, Vec<String>)> {
    let mut v: Vec<_> = ns
        .fdb("vxlan5000")
        .iter()
        .filter(|e| e["mac"] != "00:00:00:00:00:00")
        .map(|e| {
            (
                e["mac"].as_str().unwrap().to_string(),
                e["dst"].as_str().unwrap().to_string(),
                e["flags"]
                    .as_array()
                    .map(|f| f.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

fn rmac(mac: &str, dst: &str) -> (String, String, Vec<String>) {
    (mac.into(), dst.into(), strs(&["self", "extern_learn"]))
}

#[test]
fn an_l3_vni_gets_a_vrf_or_a_clear_error_and_its_routes_either_way() {
    require!();
    let ns = Ns::new();
    // a bridge already there (with the kernel's random MAC) is adopted and readdressed
    ns.sh("ip link add br5000 type bridge");
    let bi = ns.ifindex("br5000");
    let mut p = ns.probe();
    configure_l3(&ns, &mut p);
    assert_eq!(ns.ifindex("br5000"), bi, "adopted, not recreated");
    // a route without a Router's MAC is refused and nothing is written
    let errs = p.apply(json!([route("10.1.0.0/16", X, None)]));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("no Router's MAC extended community (RFC 9135 §8.1) on the route"),
        "{errs:?}"
    );
    assert!(routes(&ns, false).is_empty());
    assert!(l3_neighs(&ns).is_empty());
    assert!(rmacs(&ns).is_empty());
    // with one, the route is in table 1001 whether or not the VRF device exists
    p.apply_ok(json!([route("10.1.0.0/16", X, Some(R1))]));
    assert_eq!(routes(&ns, false), vec![ours("10.1.0.0/16", X)]);
    // the wrong kind of op for each kind of VNI
    let errs = p.apply(json!([
        {"op": "fdb", "vni": L3, "mac": M1, "vtep": X, "sticky": false},
        {"op": "route", "vni": 100, "prefix": "10.1.0.0/16", "vtep": X, "rmac": R1},
    ]));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(
        errs[0]["reason"],
        "vni 5000 is an l3 VNI: MAC, flood and neighbour ops belong to l2 VNIs"
    );
    assert_eq!(
        errs[1]["reason"],
        "vni 100 is an l2 VNI: routes go in an l3 VNI's table"
    );
}

#[test]
fn l3_routes_share_refcounted_rmac_and_neighbour_entries_and_move_without_a_gap() {
    require!();
    let ns = Ns::new();
    let mut p = ns.probe();
    configure_l3(&ns, &mut p);

    // a type-5 prefix, a symmetric-IRB host route and an IPv6 prefix, all behind VTEP X
    p.apply_ok(json!([
        route("10.1.0.0/16", X, Some(R1)),
        route("10.2.0.1/32", X, Some(R1)),
        route("2001:db8:1::/48", X, Some(R1)),
    ]));
    assert_eq!(
        routes(&ns, false),
        vec![ours("10.1.0.0/16", X), ours("10.2.0.1", X)]
    );
    let r6 = routes(&ns, true);
    assert_eq!(r6.len(), 1, "{r6:?}");
    assert_eq!(
        (&r6[0].0, &r6[0].1, &r6[0].2, &r6[0].3, r6[0].4),
        (
            &"2001:db8:1::/48".to_string(),
            &"::ffff:10.0.0.2".to_string(),
            &"br5000".to_string(),
            &"210".to_string(),
            30
        )
    );
    assert_eq!(r6[0].5, strs(&["onlink"]));
    // one RMAC entry and one neighbour per family, shared by the routes
    assert_eq!(rmacs(&ns), vec![rmac(R1, X)]);
    assert_eq!(
        l3_neighs(&ns),
        vec![nh("10.0.0.2", R1), nh("::ffff:10.0.0.2", R1)]
    );

    // the host route moves to VTEP Y (RMAC 2): one replace, never a delete
    let mon = Monitor::start(&ns);
    p.apply_ok(json!([route("10.2.0.1/32", Y, Some(R2))]));
    let seen = mon.until(|l| l.starts_with("10.2.0.1 via 10.0.0.3"));
    assert!(
        !seen
            .iter()
            .any(|l| l.starts_with("Deleted") && l.contains("10.2.0.1")),
        "the move deleted the route first: {seen:?}"
    );
    drop(mon);
    assert_eq!(
        routes(&ns, false),
        vec![ours("10.1.0.0/16", X), ours("10.2.0.1", Y)]
    );
    assert_eq!(rmacs(&ns), vec![rmac(R1, X), rmac(R2, Y)]);
    assert_eq!(
        l3_neighs(&ns),
        vec![
            nh("10.0.0.2", R1),
            nh("10.0.0.3", R2),
            nh("::ffff:10.0.0.2", R1)
        ]
    );

    // deleting the last IPv4 route to X removes X's IPv4 neighbour, not the RMAC entry the
    // IPv6 route still uses
    p.apply_ok(json!([route_del("10.1.0.0/16")]));
    assert_eq!(routes(&ns, false), vec![ours("10.2.0.1", Y)]);
    assert_eq!(rmacs(&ns), vec![rmac(R1, X), rmac(R2, Y)]);
    assert_eq!(
        l3_neighs(&ns),
        vec![nh("10.0.0.3", R2), nh("::ffff:10.0.0.2", R1)]
    );
    // the last route to X: its RMAC entry and neighbour go; deleting again succeeds
    p.apply_ok(json!([
        route_del("2001:db8:1::/48"),
        route_del("2001:db8:1::/48")
    ]));
    assert!(routes(&ns, true).is_empty());
    assert_eq!(rmacs(&ns), vec![rmac(R2, Y)]);
    assert_eq!(l3_neighs(&ns), vec![nh("10.0.0.3", R2)]);

    // Y changes its Router's MAC: the neighbour and the RMAC entry follow
    p.apply_ok(json!([route("10.2.0.1/32", Y, Some(R1))]));
    assert_eq!(rmacs(&ns), vec![rmac(R1, Y)]);
    assert_eq!(l3_neighs(&ns), vec![nh("10.0.0.3", R1)]);

    // the best path loses its Router's MAC: refused, and the route it replaced goes (never
    // forward to a VTEP the EVPN layer no longer chose)
    let errs = p.apply(json!([route("10.2.0.1/32", X, None)]));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(routes(&ns, false).is_empty());
    assert!(rmacs(&ns).is_empty());
    assert!(l3_neighs(&ns).is_empty());
}

#[test]
fn l3_reconcile_adopts_fixes_and_removes_only_our_routes() {
    require!();
    let ns = Ns::new();
    let mut p = ns.probe();
    configure_l3(&ns, &mut p);
    let t = format!("table {TABLE}");
    // another writer's routes in the same table: one with a prefix we want too
    ns.sh(&format!(
        "ip route add 10.9.0.0/16 via 10.0.0.7 dev br5000 onlink {t} proto static"
    ));
    // (an FRR next to vmmi: zebra's EVPN routes are `proto bgp`)
    ns.sh(&format!(
        "ip route add 10.1.0.0/16 dev br5000 {t} proto bgp"
    ));
    // what a previous vmmi left: right (10.2), moved since (10.4), stale (10.3), with the
    // shared entries of X (right) and of 10.0.0.9 (stale)
    let mine = format!("dev br5000 onlink {t} proto 210 metric 30");
    ns.sh(&format!("ip route add 10.2.0.0/16 via {X} {mine}"));
    ns.sh(&format!("ip route add 10.3.0.0/16 via 10.0.0.9 {mine}"));
    ns.sh(&format!("ip route add 10.4.0.0/16 via 10.0.0.9 {mine}"));
    ns.sh(&format!(
        "bridge fdb add {R1} dev vxlan5000 dst {X} self extern_learn dynamic"
    ));
    ns.sh("bridge fdb add 02:00:00:00:ee:09 dev vxlan5000 dst 10.0.0.9 self extern_learn dynamic");
    ns.sh(&format!(
        "ip neigh add {X} lladdr {R1} dev br5000 nud noarp extern_learn"
    ));
    ns.sh("ip neigh add 10.0.0.9 lladdr 02:00:00:00:ee:09 dev br5000 nud noarp extern_learn");
    // an operator's neighbour on the bridge
    ns.sh("ip neigh add 10.0.0.8 lladdr 02:00:00:00:ee:08 dev br5000 nud permanent");

    let desired = json!([
        route("10.1.0.0/16", X, Some(R1)),
        route("10.2.0.0/16", X, Some(R1)),
        route("10.4.0.0/16", Y, Some(R2)),
    ]);
    let r = p.cmd(json!({"cmd": "reconcile", "desired": desired}));
    let rep = &r["report"];
    assert_eq!(rep["errors"], json!([]), "{r}");
    // adopted: route 10.2, RMAC 1, neighbour X; fixed: route 10.4; added: route 10.1, RMAC 2,
    // neighbour Y; removed: route 10.3, RMAC 9, neighbour 10.0.0.9
    assert_eq!(
        (
            &rep["adopted"],
            &rep["fixed"],
            &rep["added"],
            &rep["removed"]
        ),
        (&json!(3), &json!(1), &json!(3), &json!(3)),
        "{r}"
    );
    let foreign = |dst: &str, nh: &str, proto: &str, flags: &[&str]| {
        (
            dst.to_string(),
            nh.to_string(),
            "br5000".to_string(),
            proto.to_string(),
            0,
            strs(flags),
        )
    };
    assert_eq!(
        routes(&ns, false),
        vec![
            foreign("10.1.0.0/16", "", "bgp", &[]),
            ours("10.1.0.0/16", X),
            ours("10.2.0.0/16", X),
            ours("10.4.0.0/16", Y),
            foreign("10.9.0.0/16", "10.0.0.7", "static", &["onlink"]),
        ]
    );
    assert_eq!(rmacs(&ns), vec![rmac(R1, X), rmac(R2, Y)]);
    assert_eq!(l3_neighs(&ns), vec![nh(X, R1), nh(Y, R2)]);
    let op = ns.json("ip -j neigh show nud all dev br5000 to 10.0.0.8");
    assert_eq!(op.len(), 1, "the operator's neighbour is kept: {op:?}");

    // the same desired state again: everything adopted
    let r = p.cmd(json!({"cmd": "reconcile", "desired": desired}));
    let rep = &r["report"];
    assert_eq!(
        (
            &rep["adopted"],
            &rep["fixed"],
            &rep["added"],
            &rep["removed"]
        ),
        (&json!(7), &json!(0), &json!(0), &json!(0)),
        "{r}"
    );

    // the reconcile rebuilt the reference counts: X's entries stay while 10.1 uses them
    p.apply_ok(json!([route_del("10.2.0.0/16")]));
    assert_eq!(rmacs(&ns), vec![rmac(R1, X), rmac(R2, Y)]);
    p.apply_ok(json!([route_del("10.1.0.0/16")]));
    assert_eq!(rmacs(&ns), vec![rmac(R2, Y)]);
    assert_eq!(l3_neighs(&ns), vec![nh(Y, R2)]);
    // the other writers' routes are still there
    assert_eq!(
        routes(&ns, false),
        vec![
            foreign("10.1.0.0/16", "", "bgp", &[]),
            ours("10.4.0.0/16", Y),
            foreign("10.9.0.0/16", "10.0.0.7", "static", &["onlink"]),
        ]
    );
}

/// Rough numbers (debug build unless run with --release): 10,000 routes behind 100 VTEPs
/// written, moved and removed; printed, and the table checked.
#[test]
fn ten_thousand_l3_routes_are_written_moved_and_removed() {
    require!();
    let ns = Ns::new();
    let mut p = ns.probe();
    configure_l3(&ns, &mut p);
    let vtep = |i: usize| format!("10.0.{}.{}", 1 + i / 250, 1 + i % 250);
    let mac = |i: usize| format!("02:00:00:00:{:02x}:{:02x}", i / 256, i % 256);
    let batch = |shift: usize| {
        let ops: Vec<Value> = (0..10_000usize)
            .map(|i| {
                let v = (i + shift) % 100;
                route(
                    &format!("10.{}.{}.{}/32", 100 + i / 65536, (i / 256) % 256, i % 256),
                    &vtep(v),
                    Some(&mac(v)),
                )
            })
            .collect();
        json!(ops)
    };
    let timed = |p: &mut Probe, ops: Value| {
        let a = p.cmd(json!({"cmd": "apply", "ops": ops}));
        assert_eq!(a["errors"], json!([]), "{}", a["errors"]);
        a["elapsed_ms"].as_f64().unwrap()
    };
    let add = timed(&mut p, batch(0));
    let count = ns.sh(&format!("ip -4 route show table {TABLE} proto 210 | wc -l"));
    assert_eq!(count.trim(), "10000");
    assert_eq!(rmacs(&ns).len(), 100);
    let mv = timed(&mut p, batch(1));
    assert_eq!(rmacs(&ns).len(), 100);
    let dels: Vec<Value> = (0..10_000usize)
        .map(|i| {
            route_del(&format!(
                "10.{}.{}.{}/32",
                100 + i / 65536,
                (i / 256) % 256,
                i % 256
            ))
        })
        .collect();
    let del = timed(&mut p, json!(dels));
    assert!(routes(&ns, false).is_empty());
    assert!(rmacs(&ns).is_empty());
    assert!(l3_neighs(&ns).is_empty());
    eprintln!(
        "10,000 L3 routes behind 100 VTEPs: written in {add:.0} ms, all moved in {mv:.0} ms, removed in {del:.0} ms"
    );
}
