//! Running the real `vmmi` daemon under a bench: a temporary directory, the child process
//! (killed by PID and reaped on every exit path, panics included), its API polled over HTTP,
//! bounded waits, the open-files limit. Shared by `lisp_move/` (EVPN move → SMR / Map-Notify
//! latency) and `lisp_serve/` (Map-Request service rate, pub/sub fan-out). Each includes it
//! with `#[path = "../common/daemon.rs"] mod daemon;` next to `bgp_gen.rs` (for `http_get`).
//!
//! Owns: spawning (optionally pinned to CPUs with `taskset -c`), the daemon's log file,
//! waiting for its API. Must not: write configs or drive protocols: the benches do that.

#![allow(dead_code)] // each bench uses its part
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // real processes and time

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::bgp_gen::http_get;

/// The spawned daemon: killed (by PID) and reaped when dropped, panics included.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
    /// `host:port` of its API.
    pub api: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    pub fn log_tail(&self) -> String {
        let t = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(st)) => Err(format!("vmmi exited ({st}):\n{}", self.log_tail())),
            Err(e) => Err(format!("vmmi: {e}")),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET path` on its API, as JSON.
    pub fn api_json(&self, path: &str) -> Result<Value, String> {
        api_json(&self.api, path)
    }

    /// CPU time the daemon's threads have used so far, to the nanosecond: the sum of the first
    /// field of `/proc/PID/task/*/schedstat` (time on a CPU; threads that have exited are not
    /// counted — vmmi's live for the whole run).
    pub fn cpu_time(&self) -> Option<Duration> {
        let dir = std::fs::read_dir(format!("/proc/{}/task", self.pid())).ok()?;
        let mut ns: u64 = 0;
        for t in dir.flatten() {
            let s = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            ns += s.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(Duration::from_nanos(ns))
    }
}

/// The temporary directory, removed when dropped unless `keep`.
pub struct TempDir {
    pub path: PathBuf,
    pub keep: bool,
}

impl TempDir {
    pub fn new(name: &str, keep: bool) -> Result<TempDir, String> {
        let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
        Ok(TempDir { path, keep })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

pub fn api_json(api: &str, path: &str) -> Result<Value, String> {
    let body = http_get(&format!("{api}{path}"), Duration::from_secs(5))?;
    serde_json::from_str(&body).map_err(|e| format!("{path}: {e}"))
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(
    limit: Duration,
    d: &mut Daemon,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    let end = Instant::now() + limit;
    loop {
        d.alive()?;
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > end {
            return Err("timed out".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The open-files soft limit (from /proc/self/limits).
pub fn nofile() -> Option<usize> {
    let t = std::fs::read_to_string("/proc/self/limits").ok()?;
    let l = t.lines().find(|l| l.starts_with("Max open files"))?;
    l.split_whitespace().nth(3)?.parse().ok()
}

/// Writes `config` to `dir/vmmi.toml` and runs `bin run --config` with `VMMI_LOG=log_filter`
/// (its stderr in `dir/vmmi.log`), under `taskset -c CPUS` when `cpus` is given; waits until
/// its API at `api` answers `/v1/neighbors`.
pub fn spawn(
    bin: &Path,
    dir: &Path,
    config: &str,
    api: &str,
    log_filter: &str,
    cpus: Option<&str>,
) -> Result<Daemon, String> {
    let cfg = dir.join("vmmi.toml");
    std::fs::write(&cfg, config).map_err(|e| e.to_string())?;
    let log = dir.join("vmmi.log");
    // taskset execs the daemon: the child's PID is vmmi's
    let mut cmd = match cpus {
        Some(c) => {
            let mut t = Command::new("taskset");
            t.args(["-c", c]).arg(bin);
            t
        }
        None => Command::new(bin),
    };
    let child = cmd
        .args(["run", "--config"])
        .arg(&cfg)
        .env("VMMI_LOG", log_filter)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
    let mut d = Daemon {
        child,
        log,
        api: api.to_string(),
    };
    let a = d.api.clone();
    wait_for(Duration::from_secs(15), &mut d, || {
        api_json(&a, "/v1/neighbors").ok()
    })
    .map_err(|e| format!("vmmi API did not come up: {e}"))?;
    Ok(d)
}
