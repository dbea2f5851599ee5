//! Daemon-facing verbs of the binary: `run`, `show`, `explain`, `vm`, `dad`, `lisp request`,
//! `route`, `refresh`. Parsing is in main.rs;
//! protocol logic is in the library; this file formats what the API returns.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use vmmi::config::Config;
use vmmi::runtime::{self, RunOpts, client};

pub fn run(config: Option<PathBuf>, log_json: bool, restarting: bool) -> ExitCode {
    // before any thread: one malloc arena (RSS per route, see the function)
    let one_arena = runtime::sockopt::limit_malloc_arenas();
    init_logging(log_json);
    tracing::debug!(one_arena, "malloc arenas");
    let cfg = match Config::load(config.as_deref()) {
        Ok(c) => c,
        Err(errs) => {
            for e in errs {
                eprintln!(
                    "{}: {e}",
                    config
                        .as_deref()
                        .map_or("(embedded default)".into(), |p| p.display().to_string())
                );
            }
            return ExitCode::from(1);
        }
    };
    if config.is_none() {
        tracing::info!(config = %vmmi::config::DEFAULT_TOML, "no --config: running the embedded default");
    }
    for w in cfg.warnings() {
        tracing::warn!(key = %w.key, reason = %w.reason, "config: has no effect as written");
    }
    // One event loop owns the protocol state; two workers run the connection tasks, the
    // API and the dataplane task beside it. Allowed one CPU only (taskset, cgroup cpuset),
    // everything runs on the thread of the loop: worker threads on the same CPU would only
    // add a wake-up and two context switches to every socket readiness (measured with
    // benches/lisp_serve, conformance/bench/README.md).
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let built = if one_cpu {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(runtime::run(
        cfg,
        RunOpts {
            config_path: config,
            restarting,
            stop: None,
        },
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmmi: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VMMI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // colours only on a terminal (a log file or journald gets plain text), and never with
    // NO_COLOR set
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

fn call(
    api: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<serde_json::Value, ExitCode> {
    match client::request(api, method, path, body) {
        Ok((200..=299, b)) => serde_json::from_str(&b).map_err(|e| {
            eprintln!("vmmi: API answered with invalid JSON: {e}");
            ExitCode::from(1)
        }),
        Ok((code, b)) => {
            eprintln!("vmmi: API {method} {path}: HTTP {code}: {b}");
            Err(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!(
                "vmmi: cannot reach the daemon's API at {api}: {e} (is `vmmi run` up? --api ADDR)"
            );
            Err(ExitCode::from(1))
        }
    }
}

/// A JSON value as a table cell: strings bare, null as `-`.
fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        o => o.to_string(),
    }
}

/// A `Loc` JSON value (`{"at":"local"}` / `{"at":"remote","vtep":IP}`) as a cell; `remote` is
/// put before a remote VTEP's address.
fn loc_text(l: &serde_json::Value, remote: &str) -> String {
    match l["at"].as_str() {
        Some("remote") => format!("{remote}{}", text(&l["vtep"])),
        Some(x) => x.to_string(),
        None => "-".into(),
    }
}

/// A JSON array as one cell, items joined by `sep`.
fn list(v: &serde_json::Value, sep: &str) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect::<Vec<_>>()
        .join(sep)
}

/// `vmmi show lisp` for people: the Map-Server's registrations (one line per registrant),
/// its subscribers, the xTR's map-cache, and the counters that are not zero.
fn lisp_tables(all: &serde_json::Map<String, serde_json::Value>) {
    let s = text;
    // rows sorted by EID (the daemon's tables are hash maps)
    let rows = |k: &str| {
        let mut v = all
            .get(k)
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        v.sort_by_key(|r| text(&r["eid"]));
        v
    };
    let regs = rows("registrations");
    println!("registrations ({})", regs.len());
    println!(
        "  {:<36} {:<24} {:>5} {:>5} {:<6} {:<14} {:<12} {:<22} {:>8}",
        "eid", "rlocs", "ver", "ttl", "proxy", "source", "site", "from", "expires"
    );
    for r in &regs {
        for g in r["registrants"].as_array().into_iter().flatten() {
            println!(
                "  {:<36} {:<24} {:>5} {:>5} {:<6} {:<14} {:<12} {:<22} {:>8}",
                s(&r["eid"]),
                list(&g["rlocs"], ","),
                s(&r["version"]),
                s(&r["ttl_minutes"]),
                if g["proxy_reply"] == true {
                    "yes"
                } else {
                    "no"
                },
                s(&g["source"]),
                s(&g["site"]),
                s(&g["address"]),
                g["expires_in_secs"]
                    .as_u64()
                    .map_or("-".into(), |x| format!("{x}s"))
            );
        }
    }
    let subs = rows("subscribers");
    println!("subscribers ({})", subs.len());
    println!(
        "  {:<36} {:<34} {:<12} {:<24} {:<10} {:>6}",
        "eid", "xtr-id", "site", "itr-rlocs", "state", "pubs"
    );
    for x in &subs {
        let state = if x["awaiting_ack"] == true {
            "awaiting"
        } else if x["confirmed"] == true {
            "confirmed"
        } else {
            "new"
        };
        println!(
            "  {:<36} {:<34} {:<12} {:<24} {:<10} {:>6}",
            s(&x["eid"]),
            s(&x["xtr_id"]),
            s(&x["site"]),
            list(&x["itr_rlocs"], ","),
            state,
            s(&x["publications"])
        );
    }
    let cache = rows("map-cache");
    println!("map-cache ({})", cache.len());
    println!(
        "  {:<36} {:<24} {:<18} {:>5} {:>8} {:<12} subscribed",
        "eid", "rlocs", "action", "ver", "expires", "via"
    );
    for c in &cache {
        println!(
            "  {:<36} {:<24} {:<18} {:>5} {:>8} {:<12} {}",
            s(&c["eid"]),
            list(&c["rlocs"], ","),
            s(&c["act"]),
            s(&c["version"]),
            format!("{}s", s(&c["expires_in_secs"])),
            s(&c["via"]),
            if c["subscribed"] == true { "yes" } else { "no" }
        );
    }
    let counters: Vec<String> = all
        .get("counters")
        .and_then(|v| v.as_object())
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.as_u64() != Some(0))
        .map(|(k, v)| format!("{k}={}", s(v)))
        .collect();
    println!("counters (not zero): {}", counters.join(" "));
}

pub fn show(
    what: &str,
    json: bool,
    api: SocketAddr,
    family: Option<&str>,
    vni: Option<u32>,
) -> ExitCode {
    let path = match what {
        "neighbors" => "/v1/neighbors".to_string(),
        "routes" => {
            let mut q = Vec::new();
            if let Some(f) = family {
                q.push(format!("family={f}"));
            }
            if let Some(v) = vni {
                q.push(format!("vni={v}"));
            }
            if q.is_empty() {
                "/v1/routes".into()
            } else {
                format!("/v1/routes?{}", q.join("&"))
            }
        }
        "macs" => match vni {
            Some(v) => format!("/v1/macs?vni={v}"),
            None => "/v1/macs".into(),
        },
        "vnis" => "/v1/vnis".into(),
        "moves" => "/v1/moves".into(),
        "lisp" => {
            let mut all = serde_json::Map::new();
            for v in ["registrations", "subscribers", "map-cache", "counters"] {
                match call(api, "GET", &format!("/v1/lisp/{v}"), None) {
                    Ok(x) => {
                        all.insert(v.to_string(), x);
                    }
                    Err(c) => return c,
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
                return ExitCode::SUCCESS;
            }
            lisp_tables(&all);
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!(
                "vmmi show: {other:?}: expected neighbors, routes, macs, vnis, moves or lisp"
            );
            return ExitCode::from(2);
        }
    };
    let v = match call(api, "GET", &path, None) {
        Ok(v) => v,
        Err(c) => return c,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let s = text;
    match what {
        "neighbors" => {
            println!(
                "{:<24} {:>10} {:<12} {:>8} {:<28} {:>8} {:>8}  last error",
                "neighbor", "AS", "state", "up(s)", "prefixes", "msg in", "msg out"
            );
            for n in v.as_array().into_iter().flatten() {
                let pfx: Vec<String> = n["prefixes_received"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!(
                    "{:<24} {:>10} {:<12} {:>8} {:<28} {:>8} {:>8}  {}",
                    s(&n["address"]),
                    s(&n["remote_asn"]),
                    s(&n["state"]),
                    s(&n["uptime_secs"]),
                    pfx.join(" "),
                    s(&n["msgs_in"]),
                    s(&n["msgs_out"]),
                    s(&n["last_error"])
                );
            }
        }
        "macs" => {
            println!(
                "{:>8} {:<17} {:<24} {:>10} {:<6} {:<4} {:<28}  reason",
                "vni", "mac", "location", "seq", "static", "dup", "ips"
            );
            for m in v.as_array().into_iter().flatten() {
                let loc = loc_text(&m["location"], "remote ");
                println!(
                    "{:>8} {:<17} {:<24} {:>10} {:<6} {:<4} {:<28}  {}",
                    s(&m["vni"]),
                    s(&m["mac"]),
                    loc,
                    s(&m["seq"]),
                    if m["sticky"] == true { "yes" } else { "no" },
                    if m["duplicate"] == true { "DUP" } else { "" },
                    list(&m["ips"], ","),
                    s(&m["reason"])
                );
            }
        }
        "vnis" => {
            println!(
                "{:>8} {:<4} {:<20} {:<16} {:<16} {:>6} {:>6}  flood list",
                "vni", "kind", "rd", "import", "export", "local", "remote"
            );
            for x in v.as_array().into_iter().flatten() {
                let join = |k: &str| list(&x[k], ",");
                println!(
                    "{:>8} {:<4} {:<20} {:<16} {:<16} {:>6} {:>6}  {}",
                    s(&x["vni"]),
                    s(&x["kind"]),
                    s(&x["rd"]),
                    join("import_rt"),
                    join("export_rt"),
                    s(&x["local_macs"]),
                    s(&x["remote_macs"]),
                    join("flood_list")
                );
            }
        }
        "moves" => {
            println!(
                "{:>6} {:>8} {:<17} {:<22} {:<22} {:>10}  steps (ms after the start)",
                "id", "vni", "mac", "from", "to", "seq"
            );
            let loc = |l: &serde_json::Value| loc_text(l, "");
            for m in v.as_array().into_iter().flatten() {
                let steps: Vec<String> = m["steps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|st| {
                        let us = st["after_us"].as_u64().unwrap_or(0);
                        format!("{} {:.3}", s(&st["step"]), us as f64 / 1000.0)
                    })
                    .collect();
                println!(
                    "{:>6} {:>8} {:<17} {:<22} {:<22} {:>10}  {}",
                    s(&m["id"]),
                    s(&m["vni"]),
                    s(&m["mac"]),
                    loc(&m["from"]),
                    loc(&m["to"]),
                    s(&m["seq"]),
                    steps.join(" → ")
                );
            }
        }
        _ => {
            println!(
                "{:<12} {:<64} {:<16} {:<16} {:>5} {:>5}  reason",
                "family", "route", "from", "next hop", "seq", "paths"
            );
            for r in v.as_array().into_iter().flatten() {
                let best = &r["paths"][0];
                println!(
                    "{:<12} {:<64} {:<16} {:<16} {:>5} {:>5}  {}",
                    s(&r["family"]),
                    s(&r["prefix"]),
                    s(&best["peer"]),
                    s(&best["next_hop"]),
                    s(&best["mac_mobility_seq"]),
                    r["paths"].as_array().map_or(0, |a| a.len()),
                    s(&best["reason"])
                );
            }
        }
    }
    ExitCode::SUCCESS
}

pub fn route(action: &str, spec: &str, api: SocketAddr) -> ExitCode {
    if let Err(e) = serde_json::from_str::<vmmi::bgp::spec::RouteSpec>(spec) {
        eprintln!("vmmi route {action}: bad route JSON: {e}");
        return ExitCode::from(2);
    }
    match call(api, "POST", &format!("/v1/routes/{action}"), Some(spec)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(c) => c,
    }
}

pub fn refresh(neighbor: &str, family: &str, api: SocketAddr) -> ExitCode {
    match call(
        api,
        "POST",
        &format!("/v1/neighbors/{neighbor}/refresh?family={family}"),
        None,
    ) {
        Ok(_) => ExitCode::SUCCESS,
        Err(c) => c,
    }
}

/// A `MacEntry` (what the dataplane holds for one MAC) as one line: the remote entry with its
/// flags, then the bridge's side when it says more than the remote entry does.
fn held_text(e: &serde_json::Value) -> String {
    let remote = !e["vtep"].is_null();
    let mut parts = Vec::new();
    if remote {
        let mut t = format!("FDB -> VTEP {}", text(&e["vtep"]));
        for o in e["other_vteps"].as_array().into_iter().flatten() {
            t.push_str(&format!(", VTEP {}", text(o)));
        }
        let flags: Vec<&str> = ["extern_learn", "permanent", "static", "sticky"]
            .into_iter()
            .filter(|f| e[*f] == true)
            .collect();
        if !flags.is_empty() {
            t.push_str(&format!(" ({})", flags.join(", ")));
        }
        parts.push(t);
    }
    let b = &e["bridge"];
    match b["at"].as_str() {
        Some("local") => parts.push(format!("on local bridge port ifindex {}", text(&b["port"]))),
        Some("vxlan") if !remote => parts.push("bridge -> VXLAN port, no VTEP entry".into()),
        Some("absent") if remote => parts.push("no bridge entry".into()),
        _ => {}
    }
    if parts.is_empty() {
        "no entry".into()
    } else {
        parts.join("; ")
    }
}

pub fn explain_mac(mac: &str, vni: u32, json: bool, api: SocketAddr) -> ExitCode {
    if mac.parse::<vmmi::wire::types::MacAddr>().is_err() {
        eprintln!("vmmi explain mac: {mac:?} is not a MAC address");
        return ExitCode::from(2);
    }
    let v = match call(api, "GET", &format!("/v1/explain/mac/{vni}/{mac}"), None) {
        Ok(v) => v,
        Err(c) => return c,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let s = text;
    println!(
        "{} in vni {}: {}",
        s(&v["mac"]),
        s(&v["vni"]),
        s(&v["summary"])
    );
    println!("claims:");
    for c in v["claims"].as_array().into_iter().flatten() {
        let at = loc_text(&c["at"], "VTEP ");
        println!(
            "  {} {:<22} seq {:>10}{}  {}",
            if c["winner"] == true { "*" } else { " " },
            at,
            s(&c["seq"]),
            if c["sticky"] == true { " static" } else { "" },
            list(&c["routes"], "; ")
        );
    }
    println!("decided by: {}", s(&v["decided_by"]));
    println!(
        "advertised by us: {}",
        match &v["advertised"] {
            serde_json::Value::Null => "nothing".to_string(),
            a => format!(
                "seq {}{}",
                s(&a["seq"]),
                if a["sticky"] == true { " static" } else { "" }
            ),
        }
    );
    println!(
        "sequences: last advertised here {}, highest seen {}",
        s(&v["last_local_seq"]),
        s(&v["highest_seq_seen"])
    );
    println!(
        "duplicate detection: {} (moves: {} in the window, {} since the last clear)",
        if v["duplicate"] == true {
            "FROZEN"
        } else {
            "ok"
        },
        s(&v["moves_in_window"]),
        s(&v["moves_total"])
    );
    // what the dataplane holds, what the EVPN layer wants, and a note when they differ
    let held = match (&v["dataplane_entry"], &v["dataplane_error"]) {
        (e, _) if e.is_object() => held_text(e),
        (_, serde_json::Value::Null) => "unknown".to_string(),
        (_, why) => format!("unknown ({})", s(why)),
    };
    println!("dataplane: {held}");
    println!(
        "  the EVPN layer wants: {}",
        match &v["dataplane_wanted"] {
            serde_json::Value::Null => "no remote entry".to_string(),
            d => format!("FDB -> VTEP {}", s(d)),
        }
    );
    if v["dataplane_entry"].is_object() && v["dataplane_in_sync"] != true {
        println!("  MISMATCH: the dataplane does not hold what the EVPN layer wants");
    }
    let loc = |l: &serde_json::Value| loc_text(l, "VTEP ");
    for m in v["recent_moves"].as_array().into_iter().flatten() {
        println!(
            "  move {}: {} -> {} seq {} ({} µs ago)",
            s(&m["id"]),
            loc(&m["from"]),
            loc(&m["to"]),
            s(&m["seq"]),
            s(&m["age_us"])
        );
    }
    ExitCode::SUCCESS
}

pub fn vm(
    action: &str,
    vni: u32,
    mac: &str,
    ip: Option<std::net::IpAddr>,
    sticky: bool,
    api: SocketAddr,
) -> ExitCode {
    if mac.parse::<vmmi::wire::types::MacAddr>().is_err() {
        eprintln!("vmmi vm {action}: --mac {mac:?} is not a MAC address");
        return ExitCode::from(2);
    }
    let body = serde_json::json!({ "vni": vni, "mac": mac, "ip": ip, "sticky": sticky });
    match call(
        api,
        "POST",
        &format!("/v1/vm/{action}"),
        Some(&body.to_string()),
    ) {
        Ok(_) => ExitCode::SUCCESS,
        Err(c) => c,
    }
}

pub fn dad_clear(vni: u32, mac: &str, api: SocketAddr) -> ExitCode {
    if mac.parse::<vmmi::wire::types::MacAddr>().is_err() {
        eprintln!("vmmi dad clear: --mac {mac:?} is not a MAC address");
        return ExitCode::from(2);
    }
    let body = serde_json::json!({ "vni": vni, "mac": mac });
    match call(api, "POST", "/v1/dad/clear", Some(&body.to_string())) {
        Ok(_) => ExitCode::SUCCESS,
        Err(c) => c,
    }
}

/// Does the map-cache entry `entry` (shown as `[IID] ADDR/LEN`) answer for `eid` (`[IID] ADDR/LEN`
/// as the API echoed it)? The Map-Reply may carry a covering prefix (RFC 9301 §8.1: the
/// reply's EID-prefix is the registered one).
fn covers(entry: &str, eid: &str) -> bool {
    let split = |s: &str| -> Option<(String, String)> {
        let (iid, rest) = s.strip_prefix('[')?.split_once("] ")?;
        Some((iid.to_string(), rest.to_string()))
    };
    let (Some((ei, ep)), Some((qi, qp))) = (split(entry), split(eid)) else {
        return false;
    };
    if ei != qi {
        return false;
    }
    match (ep.parse::<ipnet::IpNet>(), qp.parse::<ipnet::IpNet>()) {
        (Ok(e), Ok(q)) => e.contains(&q),
        _ => ep == qp,
    }
}

/// `vmmi lisp request EID [--iid N] [--subscribe] [--wait S]`: the xTR resolves an EID through
/// its Map-Resolver (like `lig`) and prints the map-cache entry it got, waiting at most `wait`.
pub fn lisp_request(
    eid: &str,
    iid: u32,
    subscribe: bool,
    wait: std::time::Duration,
    json: bool,
    api: SocketAddr,
) -> ExitCode {
    let spec = if eid.starts_with("iid:") {
        eid.to_string()
    } else {
        format!("iid:{iid} {eid}")
    };
    if let Err(e) = vmmi::config::parse_eid(&spec) {
        eprintln!("vmmi lisp request: {e}");
        return ExitCode::from(2);
    }
    let body = serde_json::json!({ "eid": spec, "subscribe": subscribe });
    let asked = match call(api, "POST", "/v1/lisp/request", Some(&body.to_string())) {
        Ok(v) => v["eid"].as_str().unwrap_or_default().to_string(),
        Err(c) => return c,
    };
    #[allow(clippy::disallowed_methods)] // a CLI waiting for an answer: real time
    let t0 = std::time::Instant::now();
    loop {
        let cache = match call(api, "GET", "/v1/lisp/map-cache", None) {
            Ok(v) => v,
            Err(c) => return c,
        };
        let hit = cache
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["eid"].as_str().is_some_and(|x| covers(x, &asked)));
        if let Some(e) = hit {
            if json {
                println!("{}", serde_json::to_string_pretty(e).unwrap_or_default());
            } else {
                let rlocs: Vec<String> = e["rlocs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                println!(
                    "{asked}: {} -> {} (action {}, version {}, TTL {} min, via {}{})",
                    text(&e["eid"]),
                    if rlocs.is_empty() {
                        "no RLOC".to_string()
                    } else {
                        rlocs.join(", ")
                    },
                    text(&e["act"]),
                    text(&e["version"]),
                    text(&e["ttl_minutes"]),
                    text(&e["via"]),
                    if e["subscribed"] == true {
                        ", subscribed"
                    } else {
                        ""
                    },
                );
            }
            return ExitCode::SUCCESS;
        }
        if t0.elapsed() >= wait {
            eprintln!(
                "vmmi lisp request: no answer for {asked} within {:?} (the Map-Request is retried; see `vmmi show lisp`)",
                wait
            );
            return ExitCode::from(1);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
