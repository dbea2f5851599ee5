//! The Linux dataplane against a real kernel, inside network namespaces this test creates
//! (`vmmi-dpt-<pid>-<n>`). The backend runs in a child process (`vmmi-dataplane-probe` under
//! `ip netns exec`), fed JSON lines; the kernel state is read back with `bridge -j fdb` and
//! `ip -j neigh` (and, for L3 VNIs, `ip -j route show table N`) and compared with exactly
//! what must be there. A remote MAC is two entries: the VXLAN device's (`self`, the VTEP) and
//! the bridge's (`master extern_learn` on the VXLAN port); `bridge monitor fdb` / `ip monitor
//! route` show that moves are replaces (no delete). ARP/ND suppression is exercised with a
//! "VM" namespace on the bridge asking for a remote address whose VTEP does not exist: only
//! the bridge can answer.
//!
//! `lookup.rs`: one MAC read back from the kernel (`Dataplane::lookup`), and `vmmi explain mac`
//! of a daemon running the Linux backend in a namespace.
//!
//! L3 VNIs: whether the kernel can make VRF devices is found out at run time (a probe VRF in
//! the test's namespace): where it can (Debian 12's stock kernel, CI), the VRF device and
//! the enslaved bridge are asserted; where it cannot, the error `configure` returns is — and
//! in both cases the routes, neighbours and RMAC entries, which never need the VRF device.
//!
//! Needs root and iproute2 (`ip netns`, VXLAN and bridge devices). Not root, or no netns
//! support: each test prints why and passes, unless `VMMI_REQUIRE_PEERS=1` (CI), where it
//! fails. Every wait is bounded (≤ 5 s); namespaces and children are removed by Drop guards,
//! also when an assertion fails. No traffic leaves the namespaces.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);
const VTEP: &str = "10.255.0.1";

/// `Err(reason)` when these tests cannot run here.
fn can_run() -> Result<(), String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("id -u: {e}"))?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("not root: network namespaces need CAP_SYS_ADMIN".into());
    }
    let ip = Command::new("ip").arg("-V").output();
    if !ip.is_ok_and(|o| o.status.success()) {
        return Err("iproute2 `ip` not found".into());
    }
    Ok(())
}

macro_rules! require {
    () => {
        if let Err(why) = can_run() {
            if std::env::var("VMMI_REQUIRE_PEERS").as_deref() == Ok("1") {
                panic!("dataplane_linux: cannot run: {why}");
            }
            eprintln!("dataplane_linux: SKIPPED: {why}");
            return;
        }
    };
}

/// A network namespace, deleted on drop.
struct Ns {
    name: String,
}

impl Ns {
    fn new() -> Ns {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "vmmi-dpt-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("ip netns add");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns = Ns { name };
        ns.sh("ip link set lo up");
        ns
    }

    /// Run `cmd` (a shell line) in the namespace; panics on failure.
    fn sh(&self, cmd: &str) -> String {
        let out = self.try_sh(cmd);
        match out {
            Ok(s) => s,
            Err(e) => panic!("in {}: `{cmd}` failed: {e}", self.name),
        }
    }

    fn try_sh(&self, cmd: &str) -> Result<String, String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "sh", "-c", cmd])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn json(&self, cmd: &str) -> Vec<Value> {
        let s = self.sh(cmd);
        if s.trim().is_empty() {
            return vec![];
        }
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("`{cmd}`: {e}: {s}"))
    }

    /// `bridge -j fdb show dev DEV`, without the device's own (permanent, no dst) entries.
    fn fdb(&self, dev: &str) -> Vec<Value> {
        self.json(&format!("bridge -j fdb show dev {dev}"))
            .into_iter()
            .filter(|e| e.get("dst").is_some())
            .collect()
    }

    /// The bridge's entries for `mac` on br100 as (port, flags, state) (`bridge -j fdb show
    /// br br100`, without the bridge's and ports' own `self` entries).
    fn bridge_side(&self, mac: &str) -> Vec<(String, Vec<String>, String)> {
        self.json("bridge -j fdb show br br100")
            .into_iter()
            .filter(|e| e["mac"] == mac && e["master"] == "br100")
            .map(|e| {
                (
                    e["ifname"].as_str().unwrap_or("").to_string(),
                    e["flags"]
                        .as_array()
                        .map(|f| f.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                        .unwrap_or_default(),
                    e["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    fn ifindex(&self, dev: &str) -> u64 {
        self.json(&format!("ip -j link show {dev}"))[0]["ifindex"]
            .as_u64()
            .unwrap()
    }

    fn probe(&self) -> Probe {
        Probe::start(&self.name)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// The backend in a child process inside the namespace; killed (by its PID) on drop.
struct Probe {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Probe {
    fn start(ns: &str) -> Probe {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                env!("CARGO_BIN_EXE_vmmi-dataplane-probe"),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vmmi-dataplane-probe");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Probe {
            child,
            stdin,
            lines,
        }
    }

    /// One command, its answer (bounded wait).
    fn cmd(&mut self, c: Value) -> Value {
        writeln!(self.stdin, "{c}").expect("write to probe");
        self.stdin.flush().unwrap();
        let line = self
            .lines
            .recv_timeout(WAIT + Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("no answer to {c} within the bound: {e}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad answer {line}: {e}"))
    }

    fn configure(&mut self, vnis: Value) -> Value {
        self.cmd(json!({"cmd": "configure", "vnis": vnis}))
    }

    /// Apply `ops`; the errors.
    fn apply(&mut self, ops: Value) -> Vec<Value> {
        let a = self.cmd(json!({"cmd": "apply", "ops": ops}));
        a["errors"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("{a}"))
    }

    /// Apply `ops`, which must all succeed.
    fn apply_ok(&mut self, ops: Value) {
        let errs = self.apply(ops.clone());
        assert!(errs.is_empty(), "{ops} failed: {errs:?}");
    }

    fn events(&mut self, min: usize, timeout_ms: u64) -> Vec<Value> {
        let a = self.cmd(json!({"cmd": "events", "min": min, "timeout_ms": timeout_ms}));
        a["events"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("{a}"))
    }

    /// Collect events until `pred` holds for one (≤ 5 s); all events seen.
    fn wait_event(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        for _ in 0..10 {
            seen.extend(self.events(1, 500));
            if seen.iter().any(&pred) {
                return seen;
            }
        }
        panic!("no {what} event within 5 s; saw {seen:?}");
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn l2(vni: u32) -> Value {
    json!({"vni": vni, "kind": {"type": "l2"}, "bridge": format!("br{vni}"),
           "vxlan": format!("vxlan{vni}"), "local": VTEP, "neigh_suppress": true})
}

fn fdb(mac: &str, vtep: &str, sticky: bool) -> Value {
    json!({"op": "fdb", "vni": 100, "mac": mac, "vtep": vtep, "sticky": sticky})
}

fn flood(vtep: &str) -> Value {
    json!({"op": "flood", "vni": 100, "vtep": vtep})
}

/// The FDB entries of `mac` as (dst, flags, state).
fn entries_of(fdb: &[Value], mac: &str) -> Vec<(String, Vec<String>, String)> {
    fdb.iter()
        .filter(|e| e["mac"] == mac)
        .map(|e| {
            (
                e["dst"].as_str().unwrap_or("").to_string(),
                e["flags"]
                    .as_array()
                    .map(|f| f.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default(),
                e["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const M1: &str = "02:00:00:00:00:01";
const M2: &str = "02:00:00:00:00:02";

/// vmmi's bridge-side entry for a remote MAC, as `Ns::bridge_side` shows it: on the VXLAN
/// port, extern_learn, not static (the kernel reports NUD_REACHABLE for it).
fn on_vxlan() -> Vec<(String, Vec<String>, String)> {
    vec![("vxlan100".into(), strs(&["extern_learn"]), "".into())]
}

#[test]
fn devices_are_created_with_the_right_attributes() {
    require!();
    let ns = Ns::new();
    let mut p = ns.probe();
    let a = p.configure(json!([l2(100)]));
    assert_eq!(a["ok"], true, "{a}");
    let vx = &ns.json("ip -d -j link show vxlan100")[0];
    let info = &vx["linkinfo"]["info_data"];
    assert_eq!(info["id"], 100);
    assert_eq!(info["local"], VTEP);
    assert_eq!(info["port"], 4789);
    assert_eq!(info["learning"], false);
    assert_eq!(vx["master"], "br100");
    assert!(vx["flags"].as_array().unwrap().contains(&json!("UP")));
    let port = &vx["linkinfo"]["info_slave_data"];
    assert_eq!(port["learning"], false);
    assert_eq!(port["neigh_suppress"], true);
    let br = &ns.json("ip -d -j link show br100")[0];
    assert_eq!(br["linkinfo"]["info_kind"], "bridge");
    // configuring again changes nothing
    let (bi, vi) = (ns.ifindex("br100"), ns.ifindex("vxlan100"));
    assert_eq!(p.configure(json!([l2(100)]))["ok"], true);
    assert_eq!((ns.ifindex("br100"), ns.ifindex("vxlan100")), (bi, vi));

    // the bridge's address is set (NET_ADDR_SET): a port with a lower MAC joining changes
    // neither it nor — through NETDEV_CHANGEADDR — the neighbour entries on the bridge
    assert_eq!(
        ns.sh("cat /sys/class/net/br100/addr_assign_type").trim(),
        "3"
    );
    let addr = ns.json("ip -j link show br100")[0]["address"].clone();
    p.apply_ok(json!([{"op": "neigh", "vni": 100, "ip": "192.0.2.10", "mac": M1}]));
    ns.sh("ip link add vm0 address 02:00:00:00:00:01 type veth peer name vm0p");
    ns.sh("ip link set vm0 master br100 up && ip link set vm0p up");
    assert_eq!(ns.json("ip -j link show br100")[0]["address"], addr);
    assert_eq!(
        ns.json("ip -j neigh show nud all dev br100 to 192.0.2.10")
            .len(),
        1,
        "the suppression entry survives a port joining"
    );
}

#[test]
fn fdb_flood_and_neighbour_ops_hold_exactly_the_expected_entries() {
    require!();
    let ns = Ns::new();
    let mut p = ns.probe();
    assert_eq!(p.configure(json!([l2(100)]))["ok"], true);

    // a remote MAC, then its move: exactly one entry, pointing at the new VTEP
    p.apply_ok(json!([fdb(M1, "10.0.0.2", false)]));
    assert_eq!(
        entries_of(&ns.fdb("vxlan100"), M1),
        vec![(
            "10.0.0.2".into(),
            strs(&["self", "extern_learn"]),
            "".into()
        )]
    );
    p.apply_ok(json!([fdb(M1, "10.0.0.3", false)]));
    assert_eq!(
        entries_of(&ns.fdb("vxlan100"), M1),
        vec![(
            "10.0.0.3".into(),
            strs(&["self", "extern_learn"]),
            "".into()
        )]
    );

    // sticky: static + sticky; back to non-sticky: the flags follow (rewritten)
    p.apply_ok(json!([fdb(M2, "10.0.0.2", true)]));
    assert_eq!(
        entries_of(&ns.fdb("vxlan100"), M2),
        vec![(
            "10.0.0.2".into(),
            strs(&["self", "extern_learn", "sticky"]),
            "static".into()
        )]
    );
    p.apply_ok(json!([fdb(M2, "10.0.0.4", false)]));
    assert_eq!(
        entries_of(&ns.fdb("vxlan100"), M2),
        vec![(
            "10.0.0.4".into(),
            strs(&["self", "extern_learn"]),
            "".into()
        )]
    );

    // flood list: one entry per VTEP, appending twice is one entry, delete removes only it
    p.apply_ok(json!([
        flood("10.0.0.2"),
        flood("10.0.0.3"),
        flood("10.0.0.3")
    ]));
    let zero = "00:00:00:00:00:00";
    let mut f = entries_of(&ns.fdb("vxlan100"), zero);
    f.sort();
    assert_eq!(
        f,
        vec![
            ("10.0.0.2".into(), strs(&["self"]), "permanent".into()),
            ("10.0.0.3".into(), strs(&["self"]), "permanent".into()),
        ]
    );
    p.apply_ok(json!([{"op": "flood-del", "vni": 100, "vtep": "10.0.0.2"}]));
    assert_eq!(
        entries_of(&ns.fdb("vxlan100"), zero),
        vec![("10.0.0.3".into(), strs(&["self"]), "permanent".into())]
    );

    // deletes: present, then absent (success both times); the flood entry stays
    let del = json!([{"op": "fdb-del", "vni": 100, "mac": M1},
                     {"op": "fdb-del", "vni": 100, "mac": M1},
                     {"op": "flood-del", "vni": 100, "vtep": "10.0.0.9"}]);
    assert_eq!(p.apply(del), Vec::<Value>::new());
    assert!(entries_of(&ns.fdb("vxlan100"), M1).is_empty());
    assert_eq!(entries_of(&ns.fdb("vxlan100"), zero).len(), 1);

    // ARP suppression entry on the bridge: what FRR writes
    let neigh = json!({"op": "neigh", "vni": 100, "ip": "192.0.2.10", "mac": M1});
    p.apply_ok(json!([neigh]));
    let n = ns.json("ip -j neigh show nud all dev br100 to 192.0.2.10");
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0]["lladdr"], M1);
    assert_eq!(n[0]["state"], json!(["NOARP"]));
    assert!(n[0].get("extern_learn").is_some(), "{n:?}");
    let n6 = json!({"op": "neigh", "vni": 100, "ip": "2001:db8::10", "mac": M2});
    p.apply_ok(json!([n6]));
    assert_eq!(
        ns.json("ip -j -6 neigh show nud all dev br100 to 2001:db8::10")[0]["lladdr"],
        M2
    );
    let nd = json!([{"op": "neigh-del", "vni": 100, "ip": "192.0.2.10"},
                    {"op": "neigh-del", "vni": 100, "ip": "192.0.2.10"}]);
    p.apply_ok(nd);
    assert!(
        ns.json("ip -j neigh show nud all dev br100 to 192.0.2.10")
            .is_empty()
    );

    // one failing op does not stop the batch; each failure says why
    let errs = p.apply(json!([
        {"op": "fdb", "vni": 999, "mac": M1, "vtep": "10.0.0.2", "sticky": false},
        {"op": "route", "vni": 100, "prefix": "10.1.0.0/16", "vtep": "10.0.0.2"},
        fdb(M1, "10.0.0.5", false),
    ]));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0]["reason"]
            .as_str()
            .unwrap()
            .contains("vni 999 is not configured")
    );
    assert_eq!(
        errs[1]["reason"],
        "vni 100 is an l2 VNI: routes go in an l3 VNI's table"
    );
    assert_eq!(entries_of(&ns.fdb("vxlan100"), M1)[0].0, "10.0.0.5");
}

#[test]
fn remote_macs_get_a_bridge_side_entry_that_moves_in_place_and_goes_with_them() {
    require!();
    let ns = Ns::new();
    let mut p = ns.probe();
    assert_eq!(p.configure(json!([l2(100)]))["ok"], true);
    let ours = |dst: &str| {
        vec![(
            dst.to_string(),
            strs(&["self", "extern_learn"]),
            String::new(),
        )]
    };

    // written: the VXLAN entry and the bridge's, in one op
    p.apply_ok(json!([fdb(M1, "10.0.0.2", false)]));
    assert_eq!(entries_of(&ns.fdb("vxlan100"), M1), ours("10.0.0.2"));
    assert_eq!(ns.bridge_side(M1), on_vxlan());

    // moved: one replace per entry, nothing deleted on the way (the bridge's entry already
    // points at the VXLAN port: the kernel does not even report it)
    let mon = Monitor::fdb(&ns);
    p.apply_ok(json!([fdb(M1, "10.0.0.3", false)]));
    let seen = mon.until(|l| l.starts_with(&format!("{M1} dev vxlan100 dst 10.0.0.3")));
    assert!(
        !seen
            .iter()
            .any(|l| l.starts_with("Deleted") && l.contains(M1)),
        "the move deleted an entry: {seen:?}"
    );
    drop(mon);
    assert_eq!(entries_of(&ns.fdb("vxlan100"), M1), ours("10.0.0.3"));
    assert_eq!(ns.bridge_side(M1), on_vxlan());

    // sticky: the VXLAN entry is static sticky; the bridge's stays extern_learn (the kernel's
    // extern_learn path takes no sticky flag)
    p.apply_ok(json!([fdb(M2, "10.0.0.2", true)]));
    assert_eq!(
        entries_of(&ns.fdb("vxlan100"), M2),
        vec![(
            "10.0.0.2".into(),
            strs(&["self", "extern_learn", "sticky"]),
            "static".into()
        )]
    );
    assert_eq!(ns.bridge_side(M2), on_vxlan());

    // deleted: both entries; again: success
    p.apply_ok(json!([{"op": "fdb-del", "vni": 100, "mac": M1},
                      {"op": "fdb-del", "vni": 100, "mac": M1}]));
    assert!(entries_of(&ns.fdb("vxlan100"), M1).is_empty());
    assert!(ns.bridge_side(M1).is_empty());
    assert_eq!(ns.bridge_side(M2), on_vxlan(), "other MACs keep theirs");

    // the VXLAN device is no bridge port for a moment: the bridge's write fails, so the op
    // fails (with the kernel's text) though its VXLAN entry was written; configure attaches
    // the port again and the retry writes both (idempotent)
    ns.sh("ip link set vxlan100 nomaster");
    let errs = p.apply(json!([fdb(M1, "10.0.0.4", false)]));
    assert_eq!(errs.len(), 1, "{errs:?}");
    let reason = errs[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("fdb replace 02:00:00:00:00:01 on vxlan100 master br100: "),
        "{reason}"
    );
    assert_eq!(entries_of(&ns.fdb("vxlan100"), M1), ours("10.0.0.4"));
    assert_eq!(p.configure(json!([l2(100)]))["ok"], true);
    p.apply_ok(json!([fdb(M1, "10.0.0.4", false)]));
    assert_eq!(entries_of(&ns.fdb("vxlan100"), M1), ours("10.0.0.4"));
    assert_eq!(ns.bridge_side(M1), on_vxlan());
}

/// `ip [-6] neigh` in `vm` asking for `ip` from scratch: the MAC it was answered with, or
/// `None` (a ping sends the request; nothing behind the remote VTEP ever answers it).
fn resolve(vm: &Ns, ip: &str) -> Option<String> {
    let fam = if ip.contains(':') { "-6" } else { "-4" };
    vm.sh(&format!("ip {fam} neigh flush dev eth0"));
    let _ = vm.try_sh(&format!("ping {fam} -c1 -W1 {ip}"));
    let n = vm.json(&format!("ip -j {fam} neigh show {ip} dev eth0"));
    n.first()
        .and_then(|e| e["lladdr"].as_str())
        .map(str::to_string)
}

#[test]
fn the_bridge_answers_arp_and_nd_for_remote_addresses_only_with_suppression_and_its_entry() {
    require!();
    let ns = Ns::new();
    let vm = Ns::new();
    let mut p = ns.probe();
    assert_eq!(p.configure(json!([l2(100)]))["ok"], true);
    // a "VM" on the bridge; the remote VM (behind VTEP 10.0.0.2, unreachable: no route, no
    // namespace) does not exist, so any answer is the bridge's
    ns.sh(&format!(
        "ip link add vm0 type veth peer name eth0 netns {} && ip link set vm0 master br100 up",
        vm.name
    ));
    vm.sh("ip link set eth0 address 02:00:00:00:aa:01 up && ip addr add 192.0.2.100/24 dev eth0");
    let nd = match vm.try_sh("ip -6 addr add 2001:db8::100/64 dev eth0 nodad") {
        Ok(_) => true,
        Err(e) => {
            eprintln!("dataplane_linux: ND suppression part SKIPPED: no IPv6 here ({e})");
            false
        }
    };
    let r = "02:00:00:00:00:31";
    let mut ops = vec![
        fdb(r, "10.0.0.2", false),
        json!({"op": "neigh", "vni": 100, "ip": "192.0.2.50", "mac": r}),
    ];
    if nd {
        ops.push(json!({"op": "neigh", "vni": 100, "ip": "2001:db8::50", "mac": r}));
    }
    p.apply_ok(json!(ops));
    let addrs: &[&str] = if nd {
        &["192.0.2.50", "2001:db8::50"]
    } else {
        &["192.0.2.50"]
    };
    let all = |want: Option<&str>, why: &str| {
        for a in addrs {
            assert_eq!(resolve(&vm, a).as_deref(), want, "{a}: {why}");
        }
    };
    all(
        Some(r),
        "suppression on, neighbour and bridge-side entries: the bridge answers",
    );

    // without the bridge-side entry the kernel finds no port to check (br_fdb_find_rcu)
    ns.sh(&format!("bridge fdb del {r} dev vxlan100 master"));
    assert!(ns.bridge_side(r).is_empty());
    all(None, "no bridge-side entry: nobody answers");
    p.apply_ok(json!([fdb(r, "10.0.0.2", false)]));
    all(Some(r), "the entry is back");

    // suppression off on the VXLAN port: the request is flooded, unanswered
    let mut off = l2(100);
    off["neigh_suppress"] = json!(false);
    assert_eq!(p.configure(json!([off]))["ok"], true);
    all(None, "neigh_suppress off: nobody answers");
    assert_eq!(p.configure(json!([l2(100)]))["ok"], true);
    all(Some(r), "neigh_suppress on again");

    // without the neighbour entry there is nothing to answer with
    p.apply_ok(json!([{"op": "neigh-del", "vni": 100, "ip": "192.0.2.50"}]));
    assert_eq!(resolve(&vm, "192.0.2.50"), None);
}

#[test]
fn kernel_errors_come_back_per_op_with_the_kernel_text() {
    require!();
    let ns = Ns::new();
    let mut p = ns.probe();
    assert_eq!(p.configure(json!([l2(100)]))["ok"], true);
    // an IPv6 remote on an IPv4 VXLAN device: the kernel refuses it
    let errs = p.apply(json!([
        fdb(M1, "2001:db8::2", false),
        fdb(M2, "10.0.0.2", false)
    ]));
    assert_eq!(errs.len(), 1, "{errs:?}");
    let reason = errs[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("fdb replace 02:00:00:00:00:01 dst 2001:db8::2 on vxlan100: "),
        "{reason}"
    );
    assert!(reason.contains("os error"), "{reason}");
    assert_eq!(entries_of(&ns.fdb("vxlan100"), M2).len(), 1);
}

#[test]
fn present_devices_are_adopted_and_wrong_ones_reported_not_touched() {
    require!();
    let ns = Ns::new();
    ns.sh("ip link add br100 type bridge && ip link set br100 up");
    ns.sh(&format!(
        "ip link add vxlan100 type vxlan id 100 local {VTEP} dstport 4789 nolearning \
         && ip link set vxlan100 master br100 up"
    ));
    ns.sh(&format!(
        "ip link add vxlan200 type vxlan id 300 local {VTEP} dstport 4789 nolearning"
    ));
    let (bi, vi) = (ns.ifindex("br100"), ns.ifindex("vxlan100"));
    let br_addr = ns.json("ip -j link show br100")[0]["address"].clone();
    assert_ne!(
        ns.sh("cat /sys/class/net/br100/addr_assign_type").trim(),
        "3"
    );
    let mut p = ns.probe();
    let a = p.configure(json!([l2(100), l2(200)]));
    assert_eq!(a["ok"], false, "{a}");
    let err = a["error"].as_str().unwrap();
    assert!(
        err.contains("device vxlan200 is present but wrong: vni 300 (want 200)"),
        "{err}"
    );
    assert!(!err.contains("vxlan100"), "{err}");
    // adopted, not recreated; its address kept, and set
    assert_eq!((ns.ifindex("br100"), ns.ifindex("vxlan100")), (bi, vi));
    assert_eq!(ns.json("ip -j link show br100")[0]["address"], br_addr);
    assert_eq!(
        ns.sh("cat /sys/class/net/br100/addr_assign_type").trim(),
        "3"
    );
    assert_eq!(a["devices"].as_array().unwrap().len(), 1, "{a}");
    // the wrong one is left as it was
    let w = &ns.json("ip -d -j link show vxlan200")[0];
    assert_eq!(w["linkinfo"]["info_data"]["id"], 300);
    assert!(w.get("master").is_none());
    // ops on the adopted VNI work; on the refused one they fail
    let errs = p.apply(json!([fdb(M1, "10.0.0.2", false),
        {"op": "flood", "vni": 200, "vtep": "10.0.0.2"}]));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0]["reason"]
            .as_str()
            .unwrap()
            .contains("vni 200 is not configured")
    );
    // adopted devices got the port flags
    let vx = &ns.json("ip -d -j link show vxlan100")[0];
    assert_eq!(vx["linkinfo"]["info_slave_data"]["learning"], false);
    assert_eq!(vx["linkinfo"]["info_slave_data"]["neigh_suppress"], true);
}

#[test]
fn reconcile_adopts_fixes_and_removes_only_what_vmmi_owns() {
    require!();
    let ns = Ns::new();
    let mut p = ns.probe();
    assert_eq!(p.configure(json!([l2(100)]))["ok"], true);
    // what a previous vmmi (or an operator) left in the kernel
    let m = |b: u8| format!("02:00:00:00:01:{b:02x}");
    ns.sh(&format!(
        "bridge fdb add {} dev vxlan100 dst 10.0.0.2 self extern_learn dynamic",
        m(1)
    )); // right
    ns.sh(&format!(
        "bridge fdb add {} dev vxlan100 dst 10.0.0.9 self extern_learn dynamic",
        m(2)
    )); // moved since
    ns.sh(&format!(
        "bridge fdb add {} dev vxlan100 dst 10.0.0.9 self extern_learn dynamic",
        m(3)
    )); // stale
    ns.sh(&format!(
        "bridge fdb add {} dev vxlan100 dst 10.0.0.8 self permanent",
        m(4)
    )); // operator's
    ns.sh("bridge fdb append 00:00:00:00:00:00 dev vxlan100 dst 10.0.0.2 self permanent");
    ns.sh("bridge fdb append 00:00:00:00:00:00 dev vxlan100 dst 10.0.0.7 self permanent"); // stale
    ns.sh(&format!(
        "ip neigh add 192.0.2.1 lladdr {} dev br100 nud noarp extern_learn",
        m(1)
    ));
    ns.sh(&format!(
        "ip neigh add 192.0.2.2 lladdr {} dev br100 nud noarp extern_learn",
        m(3)
    )); // stale
    ns.sh(&format!(
        "ip neigh add 192.0.2.3 lladdr {} dev br100 nud permanent",
        m(4)
    )); // operator's
    // the bridge side: vmmi's entries of m1, m2, m3 (stale) and m6 (stale, no VXLAN entry
    // left); an operator's static entries on the VXLAN port (m9 kept, m10 desired); MACs the
    // bridge learned on a VM port (m7 kept, m8 desired: left to the learn task)
    for b in [1, 2, 3, 6] {
        ns.sh(&format!(
            "bridge fdb add {} dev vxlan100 master extern_learn",
            m(b)
        ));
    }
    for b in [9, 10] {
        ns.sh(&format!(
            "bridge fdb add {} dev vxlan100 master static",
            m(b)
        ));
    }
    ns.sh("ip link add vm0 type veth peer name vm0p && ip link set vm0 master br100 up");
    ns.sh("ip link set vm0p up");
    for b in [7, 8] {
        ns.sh(&format!("bridge fdb add {} dev vm0 master dynamic", m(b)));
    }
    // FRR's VNI on the same host (not configured in vmmi): its entries are never touched
    ns.sh("ip link add br200 type bridge && ip link set br200 up");
    ns.sh(&format!(
        "ip link add vxlan200 type vxlan id 200 local {VTEP} dstport 4789 nolearning \
         && ip link set vxlan200 master br200 up"
    ));
    ns.sh(&format!(
        "bridge fdb add {} dev vxlan200 dst 10.0.0.9 self extern_learn && \
         bridge fdb add {} dev vxlan200 master extern_learn",
        m(3),
        m(3)
    ));
    let on = |port: &str, flags: &[&str], state: &str| {
        vec![(port.to_string(), strs(flags), state.to_string())]
    };

    let desired = json!([
        fdb(&m(1), "10.0.0.2", false),
        fdb(&m(2), "10.0.0.3", false),
        fdb(&m(5), "10.0.0.4", false),
        fdb(&m(8), "10.0.0.4", false),
        fdb(&m(10), "10.0.0.4", false),
        flood("10.0.0.2"),
        flood("10.0.0.5"),
        {"op": "neigh", "vni": 100, "ip": "192.0.2.1", "mac": m(1)},
    ]);
    let mon = Monitor::fdb(&ns);
    let r = p.cmd(json!({"cmd": "reconcile", "desired": desired}));
    let rep = &r["report"];
    assert_eq!(rep["errors"], json!([]), "{r}");
    // adopted: m1 (both sides), flood .2, neighbour .1; fixed: m2 (its VXLAN entry), m10 (its
    // bridge entry, rewritten); added: m5, m8 (the VXLAN side only), flood .5; removed: m3
    // (both sides), m6 (the bridge side), flood .7, neighbour .2
    assert_eq!(
        (
            &rep["adopted"],
            &rep["fixed"],
            &rep["added"],
            &rep["removed"]
        ),
        (&json!(3), &json!(2), &json!(3), &json!(4)),
        "{r}"
    );
    // nothing that stays was deleted on the way, except m10's wrong-kind bridge entry
    // (the stale flood entry is the last FDB step)
    let seen = mon.until(|l| l.starts_with("Deleted") && l.contains("dst 10.0.0.7"));
    drop(mon);
    for l in seen.iter().filter(|l| l.starts_with("Deleted")) {
        assert!(
            [3, 6, 10]
                .iter()
                .any(|b| l.contains(&m(*b)) && l.contains("dev vxlan100"))
                || l.contains("dst 10.0.0.7"),
            "{l} (all: {seen:?})"
        );
    }
    assert_eq!(ns.bridge_side(&m(1)), on_vxlan());
    assert_eq!(ns.bridge_side(&m(2)), on_vxlan());
    assert!(ns.bridge_side(&m(3)).is_empty(), "stale: removed");
    assert_eq!(ns.bridge_side(&m(5)), on_vxlan());
    assert!(ns.bridge_side(&m(6)).is_empty(), "stale: removed");
    assert_eq!(
        ns.bridge_side(&m(7)),
        on("vm0", &[], ""),
        "learned locally: kept"
    );
    assert_eq!(
        ns.bridge_side(&m(8)),
        on("vm0", &[], ""),
        "local: not taken over"
    );
    assert_eq!(
        ns.bridge_side(&m(9)),
        on("vxlan100", &[], "static"),
        "operator's"
    );
    assert_eq!(ns.bridge_side(&m(10)), on_vxlan(), "desired: made vmmi's");
    let frr: Vec<Value> = ns
        .json("bridge -j fdb show dev vxlan200")
        .into_iter()
        .filter(|e| e["mac"] == m(3))
        .collect();
    assert_eq!(frr.len(), 2, "FRR's VNI untouched: {frr:?}");
    let f = ns.fdb("vxlan100");
    let ours = |dst: &str| {
        vec![(
            dst.to_string(),
            strs(&["self", "extern_learn"]),
            "".to_string(),
        )]
    };
    assert_eq!(entries_of(&f, &m(1)), ours("10.0.0.2"));
    assert_eq!(entries_of(&f, &m(2)), ours("10.0.0.3"));
    assert!(
        entries_of(&f, &m(3)).is_empty(),
        "stale extern_learn entry removed"
    );
    assert_eq!(
        entries_of(&f, &m(4)),
        vec![("10.0.0.8".into(), strs(&["self"]), "permanent".into())],
        "the operator's entry is kept"
    );
    assert_eq!(entries_of(&f, &m(5)), ours("10.0.0.4"));
    assert_eq!(entries_of(&f, &m(8)), ours("10.0.0.4"));
    assert_eq!(entries_of(&f, &m(10)), ours("10.0.0.4"));
    let mut fl: Vec<String> = entries_of(&f, "00:00:00:00:00:00")
        .into_iter()
        .map(|e| e.0)
        .collect();
    fl.sort();
    assert_eq!(fl, vec!["10.0.0.2", "10.0.0.5"]);
    let n: Vec<String> = ns
        .json("ip -j neigh show nud all dev br100")
        .iter()
        .filter(|e| e["dst"].as_str().unwrap().starts_with("192.0.2."))
        .map(|e| e["dst"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(n.len(), 2, "{n:?}");
    assert!(
        n.contains(&"192.0.2.1".into()) && n.contains(&"192.0.2.3".into()),
        "{n:?}"
    );

    // a second reconcile with the same desired state adopts everything
    let r = p.cmd(json!({"cmd": "reconcile", "desired": desired}));
    let rep = &r["report"];
    assert_eq!(
        (
            &rep["adopted"],
            &rep["fixed"],
            &rep["added"],
            &rep["removed"]
        ),
        (&json!(8), &json!(0), &json!(0), &json!(0)),
        "{r}"
    );
}

#[test]
fn local_macs_are_learned_reported_at_start_and_leave_with_their_port() {
    require!();
    let ns = Ns::new();
    let mut p = ns.probe();
    assert_eq!(p.configure(json!([l2(100)]))["ok"], true);
    // remote entries we write — the VXLAN device's and the bridge's — are never reported as
    // local
    p.apply_ok(json!([fdb(M2, "10.0.0.2", false)]));
    assert_eq!(ns.bridge_side(M2), on_vxlan());

    // a "VM": veth port on the bridge; its peer sends a frame (an ARP request) → learned
    let vm = "02:00:00:00:aa:01";
    ns.sh("ip link add vm0 type veth peer name vm0p && ip link set vm0 master br100 up");
    ns.sh(&format!(
        "ip link set vm0p address {vm} && ip link set vm0p up"
    ));
    ns.sh("ip addr add 192.0.2.100/24 dev vm0p");
    let _ = ns.try_sh("ping -c1 -W1 192.0.2.200"); // unanswered; the ARP request is the frame
    let is = |e: &Value, kind: &str, mac: &str| e["event"] == kind && e["mac"] == mac;
    let seen = p.wait_event("learned", |e| is(e, "learned", vm));
    let l = seen.iter().find(|e| is(e, "learned", vm)).unwrap();
    assert_eq!(l["vni"], 100);
    assert_eq!(l["sticky"], false);
    assert_eq!(l["ip"], Value::Null);

    // a static entry on the port (an operator pinning a MAC) is a sticky local MAC
    let pinned = "02:00:00:00:aa:02";
    ns.sh(&format!("bridge fdb add {pinned} dev vm0 master static"));
    let seen2 = p.wait_event("sticky learned", |e| is(e, "learned", pinned));
    assert!(
        seen2
            .iter()
            .any(|e| is(e, "learned", pinned) && e["sticky"] == true)
    );
    for e in seen.iter().chain(&seen2) {
        assert_ne!(e["mac"], M2, "a remote entry reported as local: {e}");
        assert_eq!(e["event"], "learned", "{e}");
    }

    // the EVPN layer finds the VM behind another VTEP: our bridge-side entry takes the local
    // one over in place — that is its leave; when the VM speaks from the same port again, it
    // is learned again (the bridge moves its entry back to the port)
    let mon = Monitor::fdb(&ns);
    p.apply_ok(json!([fdb(vm, "10.0.0.2", false)]));
    assert_eq!(ns.bridge_side(vm), on_vxlan());
    let left = p.wait_event("left", |e| is(e, "left", vm));
    assert!(!left.iter().any(|e| is(e, "learned", vm)), "{left:?}");
    let seen = mon.until(|l| l.starts_with(vm) && l.contains("master br100"));
    assert!(
        !seen.iter().any(|l| l.starts_with("Deleted")),
        "repointed, not deleted: {seen:?}"
    );
    drop(mon);
    let _ = ns.try_sh("ping -c1 -W1 192.0.2.201");
    let back = p.wait_event("learned again", |e| is(e, "learned", vm));
    assert!(!back.iter().any(|e| is(e, "left", vm)), "{back:?}");
    assert_eq!(ns.bridge_side(vm), vec![("vm0".into(), vec![], "".into())]);
    // the EVPN layer takes its entry back: the bridge's local entry is not touched
    p.apply_ok(json!([{"op": "fdb-del", "vni": 100, "mac": vm}]));
    assert_eq!(ns.bridge_side(vm), vec![("vm0".into(), vec![], "".into())]);
    assert!(entries_of(&ns.fdb("vxlan100"), vm).is_empty());

    // a restarted backend reports what is attached, without new traffic
    let mut p2 = ns.probe();
    assert_eq!(p2.configure(json!([l2(100)]))["ok"], true);
    let seen3 = p2.wait_event("startup learned", |e| is(e, "learned", pinned));
    assert!(seen3.iter().any(|e| is(e, "learned", vm)), "{seen3:?}");
    drop(p2);

    // the port goes away: both MACs leave
    ns.sh("ip link del vm0");
    let mut left = Vec::new();
    for _ in 0..10 {
        left.extend(p.events(1, 500));
        if [vm, pinned]
            .iter()
            .all(|m| left.iter().any(|e| is(e, "left", m)))
        {
            break;
        }
    }
    for m in [vm, pinned] {
        assert!(
            left.iter().any(|e| is(e, "left", m)),
            "no left for {m}: {left:?}"
        );
    }
}

/// `ip monitor route` or `bridge monitor fdb` in the namespace; killed on drop.
struct Monitor {
    child: Child,
    lines: Receiver<String>,
    what: &'static str,
}

impl Monitor {
    fn start(ns: &Ns) -> Monitor {
        // subscribed once it reports a route change we make (in a table of its own)
        Monitor::spawn(
            ns,
            "ip monitor route",
            |i| format!("ip route add 198.51.100.{i}/32 dev lo table 4243"),
            "198.51.100.",
        )
    }

    /// `bridge monitor fdb` (needs vxlan100: an operator-style entry of 02:00:00:00:fe:fe
    /// shows that it is subscribed; it stays).
    fn fdb(ns: &Ns) -> Monitor {
        Monitor::spawn(
            ns,
            "bridge monitor fdb",
            |i| {
                format!(
                    "bridge fdb replace 02:00:00:00:fe:fe dev vxlan100 dst 10.0.1.{i} self permanent"
                )
            },
            "02:00:00:00:fe:fe",
        )
    }

    /// Start `what`; `poke(i)` makes a change it reports (a new one for each `i`), `seen`
    /// is in the line: poked every 100 ms until one shows (≤ 5 s).
    fn spawn(ns: &Ns, what: &'static str, poke: impl Fn(u32) -> String, seen: &str) -> Monitor {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .args(what.split(' '))
            .stdout(Stdio::piped())
            .spawn()
            .expect(what);
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let m = Monitor { child, lines, what };
        for i in 1..=50 {
            ns.sh(&poke(i));
            if let Ok(l) = m.lines.recv_timeout(Duration::from_millis(100))
                && l.contains(seen)
            {
                // the other pokes' lines, if any, arrive before anything the test does
                std::thread::sleep(Duration::from_millis(50));
                while m.lines.try_recv().is_ok() {}
                return m;
            }
        }
        panic!("{what}: not subscribed after 5 s of changes");
    }

    /// Lines until one matches `pred` (each within 5 s, at most 1000); all lines seen.
    fn until(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let mut seen = Vec::new();
        // at most 5 s without a line (every line is ours: the namespace is the test's)
        for _ in 0..1000 {
            match self.lines.recv_timeout(WAIT) {
                Ok(l) => {
                    let hit = pred(&l);
                    seen.push(l);
                    if hit {
                        return seen;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("{}: no matching line; saw {seen:?}", self.what);
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// the L3 VNI tests, with their helpers (last: they use `require!`)
#[path = "dataplane_linux/l3.rs"]
mod l3;

// `Dataplane::lookup` and `vmmi explain mac` against the kernel (a daemon in a namespace)
#[path = "daemon_harness/mod.rs"]
mod daemon_harness;
#[path = "dataplane_linux/lookup.rs"]
mod lookup;
