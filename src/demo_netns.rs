//! `vmmi demo --netns` (root): the demo's move with real kernel VXLAN. Three hosts are network
//! namespaces on one underlay bridge, each running a vmmi daemon (this binary, `vmmi run`) with
//! the Linux dataplane, which creates br100 + vxlan100 itself; two "VMs" are namespaces with a
//! veth into a host's bridge. VM1 pings VM2 every 10 ms while VM2 moves from host B to host C
//! (its veth deleted on B, created on C with the same MAC and IP, one frame sent as a hypervisor
//! does after a migration). Host A is also the LISP Map-Server/Map-Resolver fed by its EVPN
//! layer, and a fourth namespace on the underlay runs vmmi as a LISP ITR subscribed to VM2's
//! IP (RFC 9437): its map-cache follows the move by publication. Prints the timeline from the
//! daemons' move logs, the kernel FDB entry on A before and after, the ITR's map-cache, the
//! pings lost, and a summary line.
//!
//! Owns: the namespaces `vd-*` and veths it creates, the daemons it starts (stopped by PID),
//! their configs in a temporary directory — all removed on every exit path, Ctrl-C included.
//! Must not: touch anything outside its namespaces (it refuses to start when a `vd-*`
//! namespace already exists), or reach into the daemons (their API and the kernel are read).

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // a program: processes, real time

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const VNI: u32 = 100;
const HOSTS: [&str; 3] = ["vd-a", "vd-b", "vd-c"];
const CORE: &str = "vd-core";
/// The LISP ITR's namespace (underlay address `ul_ip(3)`).
const ITR: &str = "vd-itr";
const LISP_KEY: &str = "vmmi-demo-netns";
const VM1: &str = "vd-vm1";
const VM2: &str = "vd-vm2";
const VM1_MAC: &str = "02:00:00:98:01:01";
const VM2_MAC: &str = "02:00:00:98:02:02";
const VM1_IP: &str = "10.102.0.1";
const VM2_IP: &str = "10.102.0.2";
const API: &str = "127.0.0.1:50179";

fn ul_ip(i: usize) -> String {
    format!("10.98.0.{}", i + 1)
}
fn vtep_ip(i: usize) -> String {
    format!("10.198.0.{}", i + 1)
}

/// Everything created, undone in reverse on drop.
struct Lab {
    dir: PathBuf,
    namespaces: Vec<&'static str>,
    daemons: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.daemons {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a command; its stderr is the error.
fn sh(args: &[&str]) -> Result<String, String> {
    let (prog, rest) = args.split_first().ok_or("empty command")?;
    let out = Command::new(prog)
        .args(rest)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{prog}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `ip -n NS` + args.
fn ipn(ns: &str, args: &str) -> Result<String, String> {
    let mut v = vec!["ip", "-n", ns];
    v.extend(args.split_whitespace());
    sh(&v)
}

fn nsx(ns: &str, args: &[&str]) -> Result<String, String> {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(args);
    sh(&v)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

impl Lab {
    fn ns(&mut self, name: &'static str) -> Result<(), String> {
        sh(&["ip", "netns", "add", name])?;
        self.namespaces.push(name);
        nsx(
            name,
            &[
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        )?;
        ipn(name, "link set lo up")?;
        Ok(())
    }

    fn underlay(&mut self) -> Result<(), String> {
        self.ns(CORE)?;
        ipn(CORE, "link add vdbr0 type bridge stp_state 0")?;
        ipn(CORE, "link set vdbr0 up")?;
        for (i, h) in HOSTS.iter().enumerate() {
            self.ns(h)?;
            ipn(
                CORE,
                &format!("link add vdc{i} type veth peer name vdul netns {h}"),
            )?;
            ipn(CORE, &format!("link set vdc{i} master vdbr0 up"))?;
            ipn(h, &format!("addr add {}/24 dev vdul", ul_ip(i)))?;
            ipn(h, &format!("addr add {}/32 dev lo", vtep_ip(i)))?;
            ipn(h, "link set vdul up")?;
        }
        // the ITR: underlay only (its RLOC is its underlay address)
        self.ns(ITR)?;
        ipn(CORE, "link add vdc3 type veth peer name vdul netns vd-itr")?;
        ipn(CORE, "link set vdc3 master vdbr0 up")?;
        ipn(ITR, &format!("addr add {}/24 dev vdul", ul_ip(3)))?;
        ipn(ITR, "link set vdul up")?;
        for (i, h) in HOSTS.iter().enumerate() {
            for j in (0..HOSTS.len()).filter(|j| *j != i) {
                ipn(
                    h,
                    &format!("route add {}/32 via {} dev vdul", vtep_ip(j), ul_ip(j)),
                )?;
            }
        }
        Ok(())
    }

    fn config(&self, i: usize) -> Result<PathBuf, String> {
        let mut t = format!(
            "[global]\nasn = 65000\nrouter_id = \"{v}\"\nvtep = \"{v}\"\nlisten = [\"{u}:179\"]\n",
            v = vtep_ip(i),
            u = ul_ip(i)
        );
        for j in (0..HOSTS.len()).filter(|j| *j != i) {
            t += &format!(
                "[[neighbor]]\naddress = \"{}\"\nremote_asn = 65000\nfamilies = [\"l2vpn-evpn\"]\nconnect_retry = 1\n",
                ul_ip(j)
            );
        }
        t += &format!(
            "[[vni]]\nvni = {VNI}\n[mobility]\nstate_file = \"{}\"\n[dataplane]\nkind = \"linux\"\n[api]\nlisten = \"{API}\"\n",
            self.dir.join(format!("mobility-{i}.json")).display()
        );
        if i == 0 {
            // host A is the Map-Server/Map-Resolver, its mappings fed by its EVPN layer
            t += &format!(
                "[lisp]\nroles = [\"map-server\", \"map-resolver\"]\nlisten = \"{}:4342\"\n[[lisp.site]]\nname = \"dc\"\nkey = \"{LISP_KEY}\"\neids = [\"iid:{VNI} 10.102.0.0/24\", \"iid:{VNI} mac:any\"]\n",
                ul_ip(0)
            );
        }
        self.write_config(HOSTS[i], &t)
    }

    /// The ITR: no BGP, no dataplane; registers nothing, asks host A.
    fn itr_config(&self) -> Result<PathBuf, String> {
        let t = format!(
            "[global]\nasn = 65000\nrouter_id = \"{u}\"\nvtep = \"{u}\"\nlisten = []\n[lisp]\nroles = [\"xtr\"]\nlisten = \"{u}:4342\"\n[[lisp.map_server]]\naddress = \"{ms}\"\nkey = \"{LISP_KEY}\"\n[dataplane]\nkind = \"none\"\n[api]\nlisten = \"{API}\"\n",
            u = ul_ip(3),
            ms = ul_ip(0)
        );
        self.write_config(ITR, &t)
    }

    fn write_config(&self, name: &str, text: &str) -> Result<PathBuf, String> {
        let p = self.dir.join(format!("{name}.toml"));
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(p)
    }

    fn start(&mut self, exe: &Path, ns: &str, cfg: &Path) -> Result<(), String> {
        let log = self.dir.join(format!("{ns}.log"));
        let log = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(exe)
            .args(["run", "--config"])
            .arg(cfg)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting vmmi in {ns}: {e}"))?;
        self.daemons.push(child);
        Ok(())
    }

    /// A veth from `vm` into `host`'s br100 through `port`, with a permanent ARP entry for the
    /// other VM (a live-migrated VM keeps its ARP cache).
    fn plug(&self, vm: &str, host: &str, port: &str, mac: &str, ip: &str) -> Result<(), String> {
        let (pip, pmac) = if ip == VM1_IP {
            (VM2_IP, VM2_MAC)
        } else {
            (VM1_IP, VM1_MAC)
        };
        ipn(
            vm,
            &format!("link add eth0 address {mac} type veth peer name {port} netns {host}"),
        )?;
        ipn(vm, &format!("addr add {ip}/24 dev eth0"))?;
        ipn(vm, "link set eth0 up")?;
        ipn(
            vm,
            &format!("neigh replace {pip} lladdr {pmac} dev eth0 nud permanent"),
        )?;
        ipn(host, &format!("link set {port} master br{VNI} up"))?;
        Ok(())
    }
}

/// A daemon's API answer, through `vmmi` in its namespace.
fn api(exe: &Path, host: &str, args: &[&str]) -> Option<Value> {
    let out = Command::new("ip")
        .args(["netns", "exec", host])
        .arg(exe)
        .args(args)
        .args(["--json", "--api", API])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// The ITR's map-cache entry for `eid` (`mac:MAC` in the VNI's instance, shown as
/// `[VNI] MAC/48`).
fn itr_entry(exe: &Path, eid: &str) -> Option<Value> {
    let want = format!("[{VNI}] {}/48", eid.trim_start_matches("mac:"));
    api(exe, ITR, &["show", "lisp"])?["map-cache"]
        .as_array()?
        .iter()
        .find(|e| e["eid"] == want.as_str())
        .cloned()
}

/// The VXLAN FDB entry of `mac` in `host`'s kernel: its remote VTEP (`bridge -j fdb`).
fn kernel_fdb(host: &str, mac: &str) -> Option<String> {
    let out = nsx(
        host,
        &["bridge", "-j", "fdb", "show", "dev", &format!("vxlan{VNI}")],
    )
    .ok()?;
    let v: Value = serde_json::from_str(&out).ok()?;
    v.as_array()?
        .iter()
        .find(|e| e["mac"] == mac && e["dst"].is_string())
        .and_then(|e| e["dst"].as_str().map(str::to_string))
}

fn until(limit: Duration, stop: &AtomicBool, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The latest move of `mac` on `host`: (step, wall-clock time) pairs. The daemons report a
/// move's start on the host's wall clock (`started_unix_us`), which every namespace shares, so
/// the steps of several daemons line up without the skew of timing the `vmmi show` processes.
fn move_steps(exe: &Path, host: &str, mac: &str) -> Vec<(String, SystemTime)> {
    let Some(moves) = api(exe, host, &["show", "moves"]) else {
        return Vec::new();
    };
    let Some(m) = moves
        .as_array()
        .and_then(|v| v.iter().find(|m| m["mac"] == mac))
    else {
        return Vec::new();
    };
    let Some(start) = m["started_unix_us"]
        .as_u64()
        .map(|us| UNIX_EPOCH + Duration::from_micros(us))
    else {
        return Vec::new();
    };
    m["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["step"].as_str().unwrap_or("?").to_string(),
                start + Duration::from_micros(s["after_us"].as_u64().unwrap_or(0)),
            )
        })
        .collect()
}

pub fn run() -> ExitCode {
    if !is_root() {
        eprintln!(
            "vmmi demo --netns: needs root (network namespaces, VXLAN and bridge devices); `vmmi demo` runs without"
        );
        return ExitCode::from(2);
    }
    for tool in [["ip", "-V"], ["ping", "-V"], ["bridge", "-V"]] {
        if sh(&tool).is_err() {
            eprintln!(
                "vmmi demo --netns: `{}` is missing (Debian: apt-get install iproute2 iputils-ping)",
                tool[0]
            );
            return ExitCode::from(2);
        }
    }
    let existing = sh(&["ip", "netns", "list"]).unwrap_or_default();
    if let Some(l) = existing.lines().find(|l| l.starts_with("vd-")) {
        eprintln!(
            "vmmi demo --netns: namespace {} exists (an interrupted run?); remove the vd-* namespaces first: ip netns del NAME",
            l.split_whitespace().next().unwrap_or(l)
        );
        return ExitCode::from(2);
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("vmmi demo --netns: cannot find this program: {e}");
            return ExitCode::from(1);
        }
    };
    // Ctrl-C: stop waiting, then the lab's drop removes everything
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    let _ = tokio::signal::ctrl_c().await;
                });
                stop.store(true, Ordering::Relaxed);
            }
        });
    }
    let dir = std::env::temp_dir().join(format!("vmmi-demo-netns-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("vmmi demo --netns: {}: {e}", dir.display());
        return ExitCode::from(1);
    }
    let mut lab = Lab {
        dir,
        namespaces: Vec::new(),
        daemons: Vec::new(),
    };
    match drive(&mut lab, &exe, &stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmmi demo --netns: {e}");
            if !stop.load(Ordering::Relaxed) {
                for h in HOSTS.iter().chain([&ITR]) {
                    let log = lab.dir.join(format!("{h}.log"));
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(5).collect();
                    eprintln!("  last lines of vmmi in {h}:");
                    for l in tail.iter().rev() {
                        eprintln!("    {l}");
                    }
                }
            }
            ExitCode::from(1)
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:8.3} ms", d.as_secs_f64() * 1e3)
}

fn drive(lab: &mut Lab, exe: &Path, stop: &AtomicBool) -> Result<(), String> {
    println!(
        "vmmi demo --netns — a VM moves between hosts with real kernel VXLAN; three vmmi daemons in"
    );
    println!(
        "network namespaces (iBGP full mesh, Linux dataplane), a 10 ms ping running across the move;\n"
    );
    println!(
        "vd-a is also the LISP Map-Server, and a LISP ITR in vd-itr follows the VM by publication.\n"
    );
    let t_setup = Instant::now();
    lab.underlay()?;
    for (i, h) in HOSTS.iter().enumerate() {
        let cfg = lab.config(i)?;
        lab.start(exe, h, &cfg)?;
    }
    let cfg = lab.itr_config()?;
    lab.start(exe, ITR, &cfg)?;
    let up = until(Duration::from_secs(20), stop, || {
        HOSTS.iter().all(|h| {
            api(exe, h, &["show", "neighbors"])
                .and_then(|v| v.as_array().cloned())
                .is_some_and(|v| v.len() == 2 && v.iter().all(|n| n["state"] == "Established"))
        }) && HOSTS
            .iter()
            .all(|h| ipn(h, &format!("link show br{VNI}")).is_ok())
    });
    if !up {
        return Err("the daemons did not peer or create br100/vxlan100 within 20 s".into());
    }
    for (i, h) in HOSTS.iter().enumerate() {
        println!(
            "  {h}  VTEP {}  underlay {}  vmmi (pid {}) created br{VNI} + vxlan{VNI}",
            vtep_ip(i),
            ul_ip(i),
            lab.daemons.get(i).map(Child::id).unwrap_or(0)
        );
    }
    println!(
        "  fabric up in {:.2} s: three iBGP sessions Established, L2VPN EVPN, VNI {VNI}\n",
        t_setup.elapsed().as_secs_f64()
    );

    if stop.load(Ordering::Relaxed) {
        return Err("interrupted; everything it made is removed".into());
    }
    lab.ns(VM1)?;
    lab.ns(VM2)?;
    lab.plug(VM1, HOSTS[0], "vdp1", VM1_MAC, VM1_IP)?;
    lab.plug(VM2, HOSTS[1], "vdp2", VM2_MAC, VM2_IP)?;
    println!(
        "VM1 {VM1_MAC} / {VM1_IP} on vd-a, VM2 {VM2_MAC} / {VM2_IP} on vd-b (veths into br{VNI})"
    );
    // first traffic: the bridges learn the VMs' MACs, the daemons advertise them
    nsx(VM1, &["ping", "-c", "3", "-i", "0.2", "-W", "1", VM2_IP])
        .map_err(|e| format!("VM1 cannot reach VM2 over VXLAN: {e}"))?;
    let b_vtep = vtep_ip(1);
    if !until(Duration::from_secs(5), stop, || {
        kernel_fdb(HOSTS[0], VM2_MAC).as_deref() == Some(b_vtep.as_str())
    }) {
        return Err(format!(
            "vd-a's kernel FDB never pointed {VM2_MAC} at {b_vtep}"
        ));
    }
    println!(
        "  VM1 pings VM2 over VXLAN; vd-a's kernel: bridge fdb {VM2_MAC} dev vxlan{VNI} dst {b_vtep} (learned on vd-b, sent by BGP)"
    );
    // the ITR resolves VM2 through vd-a's Map-Resolver and subscribes (RFC 9437). The EID is
    // VM2's MAC: vmmi knows what the kernel bridge learned, a MAC (it learns no IPs from ARP)
    let eid = format!("mac:{VM2_MAC}");
    let mut asked = None;
    let resolved = until(Duration::from_secs(5), stop, || {
        asked = api(
            exe,
            ITR,
            &[
                "lisp",
                "request",
                "--iid",
                &VNI.to_string(),
                &eid,
                "--subscribe",
            ],
        );
        asked
            .as_ref()
            .is_some_and(|e| e["rlocs"] == serde_json::json!([b_vtep]))
    });
    if !resolved {
        return Err(format!(
            "the ITR did not resolve [{VNI}] {eid} to {b_vtep} through vd-a: {asked:?}"
        ));
    }
    println!(
        "  vd-itr ({}) asks vd-a's Map-Resolver for [{VNI}] {eid}: -> {b_vtep} (the mapping vd-a's EVPN layer feeds), subscribed\n",
        ul_ip(3)
    );

    // the ping that runs across the move: 10 ms interval, 5 s
    let count = 500;
    let pinger = Command::new("ip")
        .args(["netns", "exec", VM1, "ping", "-q", "-i", "0.01", "-W", "1"])
        .args(["-c", &count.to_string(), VM2_IP])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("ping: {e}"))?;
    lab.daemons.push(pinger); // killed by PID with the daemons if we stop early
    std::thread::sleep(Duration::from_millis(1000));

    println!(
        "VM2 moves to vd-c (live migration: same MAC and IP; its veth on vd-b deleted, a new one on vd-c)"
    );
    let (t_move, wall_move) = (Instant::now(), SystemTime::now());
    ipn(VM2, "link del eth0")?;
    lab.plug(VM2, HOSTS[2], "vdp2", VM2_MAC, VM2_IP)?;
    // after a migration the hypervisor sends a frame for the VM (RARP/GARP); one ping does it
    let _ = nsx(VM2, &["ping", "-c", "1", "-W", "1", VM1_IP]);
    let c_vtep = vtep_ip(2);
    let (mut seen, mut itr_seen) = (None, None);
    until(Duration::from_secs(5), stop, || {
        if seen.is_none() && kernel_fdb(HOSTS[0], VM2_MAC).as_deref() == Some(c_vtep.as_str()) {
            seen = Some(t_move.elapsed());
        }
        if itr_seen.is_none()
            && itr_entry(exe, &eid).is_some_and(|e| e["rlocs"] == serde_json::json!([c_vtep]))
        {
            itr_seen = Some(t_move.elapsed());
        }
        seen.is_some() && itr_seen.is_some()
    });
    let Some(seen) = seen else {
        return Err(format!(
            "vd-a's kernel FDB never pointed {VM2_MAC} at {c_vtep}"
        ));
    };
    let Some(itr_seen) = itr_seen else {
        return Err(format!(
            "the ITR's map-cache never pointed [{VNI}] {eid} at {c_vtep}: {:?}",
            itr_entry(exe, &eid)
        ));
    };
    let via = itr_entry(exe, &eid)
        .and_then(|e| e["via"].as_str().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    let Some(pinger) = lab.daemons.pop() else {
        return Err("pinger lost".into());
    };
    let out = pinger
        .wait_with_output()
        .map_err(|e| format!("ping: {e}"))?;
    if stop.load(Ordering::Relaxed) {
        return Err("interrupted; everything it made is removed".into());
    }
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    let (sent, recv) = summary
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .map(|l| {
            let n: Vec<u64> = l
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|x| x.parse().ok())
                .collect();
            (
                n.first().copied().unwrap_or(0),
                n.get(1).copied().unwrap_or(0),
            )
        })
        .unwrap_or((0, 0));

    // the timeline, from the daemons' move logs (one host clock)
    let mut timeline: Vec<(Instant, String)> = Vec::new();
    let mut fetched: Vec<(&str, Vec<(String, SystemTime)>)> = Vec::new();
    for (h, step, what) in [
        (
            HOSTS[2],
            "learned",
            "vd-c's bridge learns VM2 on its new port; vmmi takes it (seq = highest seen + 1)",
        ),
        (
            HOSTS[2],
            "advertised",
            "vd-c sends the UPDATE (MAC Mobility seq 1)",
        ),
        (HOSTS[0], "route-seen", "vd-a receives seq 1 from vd-c"),
        (
            HOSTS[0],
            "dataplane",
            "vd-a's kernel FDB entry replaced: VM2 -> vd-c (netlink acknowledged)",
        ),
        (HOSTS[1], "route-seen", "vd-b receives seq 1 from vd-c"),
        // vd-b withdrew VM2 when its port went away (its bridge forgot the MAC), before vd-c
        // learned it: a leave, not a step of this move
        (
            HOSTS[2],
            "old-withdrawn",
            "vd-c holds the only claim (vd-b withdrew when VM2's port went away)",
        ),
    ] {
        // one answer per host, so a host's steps share one clock offset
        let steps = match fetched.iter().find(|(x, _)| *x == h) {
            Some((_, v)) => v.clone(),
            None => {
                let v = move_steps(exe, h, VM2_MAC);
                fetched.push((h, v.clone()));
                v
            }
        };
        if let Some((_, at)) = steps.into_iter().find(|(s, _)| s == step) {
            // on the demo's monotonic clock: the move's instant plus the wall-clock distance
            let at = match at.duration_since(wall_move) {
                Ok(d) => t_move + d,
                Err(e) => t_move.checked_sub(e.duration()).unwrap_or(t_move),
            };
            timeline.push((at, what.to_string()));
        }
    }
    timeline.push((
        t_move + seen,
        format!("vd-a's kernel shows bridge fdb {VM2_MAC} dst {c_vtep} (seen by polling)"),
    ));
    timeline.push((
        t_move + itr_seen,
        format!(
            "vd-itr's map-cache: [{VNI}] {eid} -> {c_vtep} (via {via}: vd-a's Map-Notify, RFC 9437 §6; seen by polling)"
        ),
    ));
    timeline.sort_by_key(|t| t.0);
    for (at, what) in &timeline {
        println!("  [{}] {what}", ms(at.saturating_duration_since(t_move)));
    }
    let learned = timeline
        .iter()
        .find(|t| t.1.starts_with("vd-c's bridge learns"))
        .map(|t| t.0);
    let fdb = timeline
        .iter()
        .find(|t| t.1.starts_with("vd-a's kernel FDB entry replaced"))
        .map(|t| t.0);
    let lost = sent.saturating_sub(recv);
    println!(
        "  ping VM1 -> VM2 every 10 ms across the move: {sent} sent, {recv} answered, {lost} lost\n"
    );
    let conv = match (learned, fdb) {
        (Some(l), Some(f)) => ms(f.saturating_duration_since(l)).trim().to_string(),
        _ => "?".into(),
    };
    println!(
        "summary: move converged — vd-a's kernel forwards to vd-c {conv} after vd-c learned the VM (learn -> UPDATE -> FDB); the LISP ITR follows at {} (publication); {lost} of {sent} pings lost across the move; {} steps timed",
        ms(itr_seen).trim(),
        timeline.len()
    );
    Ok(())
}
