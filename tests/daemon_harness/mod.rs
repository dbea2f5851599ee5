//! Real `vmmi run` daemons for the daemon tests: start one on a config, drive it through the
//! CLI and the HTTP API, wait (bounded) for what it shows. Every daemon is killed by PID when
//! its guard drops; a passing test's config and log files are removed. A daemon may run in a
//! network namespace (`start_in_netns`): it and every CLI call to it then run under
//! `ip netns exec` (which execs: the child's PID is the daemon's).

#![allow(dead_code)] // each test file uses its own part
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // real processes and time

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const VMMI: &str = env!("CARGO_BIN_EXE_vmmi");

pub struct Daemon {
    pub child: Child,
    pub api: String,
    pub config: PathBuf,
    pub log: PathBuf,
    /// The network namespace it runs in (`None`: this one).
    pub netns: Option<String>,
}

impl Daemon {
    /// `vmmi ARGS --api API`, in the daemon's namespace.
    pub fn vmmi(&self, args: &[&str]) -> Command {
        let mut c = vmmi_in(self.netns.as_deref());
        c.args(args).args(["--api", &self.api]);
        c
    }
}

/// `vmmi`, under `ip netns exec NS` when `netns` is given.
fn vmmi_in(netns: Option<&str>) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, VMMI]);
            c
        }
        None => Command::new(VMMI),
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // files of a passing test go; a failing test's stay for reading
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.config);
            let _ = std::fs::remove_file(&self.log);
            if let Some(d) = self.log.parent() {
                let _ = std::fs::remove_dir(d); // only once empty: the last daemon out
            }
        }
    }
}

pub fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("vmmi-daemon-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn start(name: &str, toml: &str, api: &str) -> Daemon {
    start_args(name, toml, api, &[])
}

/// `start` with more arguments for `vmmi run` (`--log-format json`, ...).
pub fn start_args(name: &str, toml: &str, api: &str, args: &[&str]) -> Daemon {
    start_full(None, name, toml, api, args)
}

/// `start` inside the network namespace `netns` (which must exist).
pub fn start_in_netns(netns: &str, name: &str, toml: &str, api: &str) -> Daemon {
    start_full(Some(netns), name, toml, api, &[])
}

fn start_full(netns: Option<&str>, name: &str, toml: &str, api: &str, args: &[&str]) -> Daemon {
    let d = dir();
    let config = d.join(format!("{name}.toml"));
    std::fs::write(&config, toml).unwrap();
    let log = d.join(format!("{name}.log"));
    let child = vmmi_in(netns)
        .args(["run", "--config"])
        .arg(&config)
        .args(args)
        .env("VMMI_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let dm = Daemon {
        child,
        api: api.to_string(),
        config,
        log,
        netns: netns.map(str::to_string),
    };
    assert!(
        wait(Duration::from_secs(10), || cli(
            &dm,
            &["show", "neighbors", "--json"]
        )
        .is_some()),
        "{name}: API up\n{}",
        std::fs::read_to_string(&dm.log).unwrap_or_default()
    );
    dm
}

pub fn cli(d: &Daemon, args: &[&str]) -> Option<Value> {
    let out = d.vmmi(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    if args.first() == Some(&"show") {
        serde_json::from_slice(&out.stdout).ok()
    } else {
        Some(Value::Null)
    }
}

/// `vmmi ARGS` whose output is JSON (`--json`, `--api` added): `None` when it fails.
pub fn cli_json(d: &Daemon, args: &[&str]) -> Option<Value> {
    let out = d.vmmi(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// `vmmi explain mac MAC --vni 100 --json`.
pub fn explain(d: &Daemon, mac: &str) -> Option<Value> {
    cli_json(d, &["explain", "mac", mac, "--vni", "100", "--json"])
}

pub fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

pub fn state(d: &Daemon) -> String {
    cli(d, &["show", "neighbors", "--json"])
        .and_then(|v| v[0]["state"].as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn routes(d: &Daemon) -> Vec<Value> {
    cli(d, &["show", "routes", "--json"])
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

pub fn cfg(
    asn: u32,
    id: &str,
    listen: &str,
    peer: &str,
    peer_asn: u32,
    api: &str,
    extra: &str,
) -> String {
    format!(
        r#"[global]
asn = {asn}
router_id = "{id}"
listen = ["{listen}"]
[[neighbor]]
address = "{peer}"
remote_asn = {peer_asn}
port = {port}
families = ["l2vpn-evpn", "ipv4-unicast"]
connect_retry = 2
hold_time = 9
{extra}
[api]
listen = "{api}"
[dataplane]
kind = "memory"
"#,
        port = listen.rsplit(':').next().unwrap()
    )
}

pub fn log_of(d: &Daemon) -> String {
    std::fs::read_to_string(&d.log).unwrap_or_default()
}

pub fn vtep_cfg(id: &str, peer: &str, api: &str, state: &std::path::Path) -> String {
    format!(
        r#"[global]
asn = 65000
router_id = "{id}"
listen = ["{id}:11279"]
[[neighbor]]
address = "{peer}"
remote_asn = 65000
port = 11279
families = ["l2vpn-evpn"]
connect_retry = 2
hold_time = 9
[[vni]]
vni = 100
[mobility]
state_file = "{state}"
[api]
listen = "{api}"
[dataplane]
kind = "memory"
"#,
        state = state.display()
    )
}

pub fn mac_at(d: &Daemon, mac: &str) -> Option<Value> {
    cli(d, &["show", "macs", "--json", "--vni", "100"])?
        .as_array()?
        .iter()
        .find(|m| m["mac"] == mac)
        .cloned()
}

pub fn http_get(api: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(api).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

pub fn http(api: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(api).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = out
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (code, json)
}

/// SIGHUP to a daemon (reload its config file).
pub fn sighup(d: &Daemon) {
    Command::new("kill")
        .args(["-HUP", &d.child.id().to_string()])
        .status()
        .unwrap();
}
