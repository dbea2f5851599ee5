//! `vmmi-dataplane-probe`: drives the Linux dataplane from JSON lines — one command per line
//! on stdin, one JSON answer per line on stdout. `tests/dataplane_linux.rs` runs it inside a
//! network namespace (`ip netns exec NS vmmi-dataplane-probe`); it is also a way to poke a
//! kernel by hand. Logs (RUST_LOG) go to stderr.
//!
//! Commands (ops in `DataplaneOp`'s JSON form, `{"op":"fdb","vni":100,"mac":"02:..",
//! "vtep":"10.0.0.2","sticky":false}`, devices in `VniDev`'s):
//! - `{"cmd":"configure","vnis":[...]}` → `{"ok":true,"devices":[[vni,bridge,vxlan,vrf]]}`
//!   or `{"ok":false,"error":"..."}`
//! - `{"cmd":"apply","ops":[...]}` → `{"errors":[{"op":..,"reason":".."}]}`
//! - `{"cmd":"reconcile","desired":[...]}` → `{"report":{"adopted":..,...}}`
//! - `{"cmd":"events","min":N,"timeout_ms":T}` → `{"events":[...]}` once N events arrived or
//!   T ms passed.
//! - `{"cmd":"lookup","vni":N,"mac":".."}` → `{"entry":{..}}` (`MacEntry`: what the kernel
//!   holds for the MAC) or `{"lookup_error":{..}}`.
//!
//! Every answer also carries `elapsed_ms` (wall time of the command, for rough measurements).

#![allow(clippy::disallowed_methods)] // Instant::now: a driver that times the backend

use std::io::BufRead;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vmmi::dataplane::linux::Linux;
use vmmi::dataplane::{Batch, Dataplane, DataplaneOp, VniDev};
use vmmi::wire::types::MacAddr;

fn field<T: std::str::FromStr>(v: &Value, k: &str) -> Result<T, String> {
    let s = match &v[k] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => return Err(format!("{k}: missing or not a scalar ({other})")),
    };
    s.parse().map_err(|_| format!("{k}: cannot parse {s:?}"))
}

fn parse_op(v: &Value) -> Result<DataplaneOp, String> {
    let vni: u32 = field(v, "vni")?;
    let mac = || field::<MacAddr>(v, "mac");
    let vtep = || field::<IpAddr>(v, "vtep");
    let ip = || field::<IpAddr>(v, "ip");
    Ok(match v["op"].as_str().unwrap_or("") {
        "fdb" => DataplaneOp::Fdb {
            vni,
            mac: mac()?,
            vtep: vtep()?,
            sticky: field(v, "sticky").unwrap_or(false),
        },
        "fdb-del" => DataplaneOp::FdbDel { vni, mac: mac()? },
        "flood" => DataplaneOp::Flood { vni, vtep: vtep()? },
        "flood-del" => DataplaneOp::FloodDel { vni, vtep: vtep()? },
        "neigh" => DataplaneOp::Neigh {
            vni,
            ip: ip()?,
            mac: mac()?,
        },
        "neigh-del" => DataplaneOp::NeighDel { vni, ip: ip()? },
        "route" => DataplaneOp::Route {
            vni,
            prefix: field(v, "prefix")?,
            vtep: vtep()?,
            rmac: field(v, "rmac").ok(),
        },
        "route-del" => DataplaneOp::RouteDel {
            vni,
            prefix: field(v, "prefix")?,
        },
        other => return Err(format!("unknown op {other:?}")),
    })
}

fn parse_ops(v: &Value) -> Result<Vec<DataplaneOp>, String> {
    v.as_array()
        .ok_or("ops: not an array")?
        .iter()
        .map(parse_op)
        .collect()
}

async fn handle(dp: &mut Linux, cmd: &Value) -> Result<Value, String> {
    match cmd["cmd"].as_str().unwrap_or("") {
        "configure" => {
            let vnis: Vec<VniDev> =
                serde_json::from_value(cmd["vnis"].clone()).map_err(|e| format!("vnis: {e}"))?;
            Ok(match dp.configure(&vnis).await {
                Ok(()) => json!({"ok": true, "devices": dp.devices()}),
                Err(e) => json!({"ok": false, "error": e, "devices": dp.devices()}),
            })
        }
        "apply" => {
            let ops = parse_ops(&cmd["ops"])?;
            let errors = dp.apply(&Batch { id: 1, ops }).await;
            Ok(json!({ "errors": errors }))
        }
        "reconcile" => {
            let desired = parse_ops(&cmd["desired"])?;
            Ok(json!({ "report": dp.reconcile(&desired).await }))
        }
        "events" => {
            let min = cmd["min"].as_u64().unwrap_or(1) as usize;
            let wait = Duration::from_millis(cmd["timeout_ms"].as_u64().unwrap_or(3000));
            let sleep = tokio::time::sleep(wait);
            tokio::pin!(sleep);
            let mut out = dp.drain_events();
            while out.len() < min {
                tokio::select! {
                    _ = &mut sleep => break,
                    _ = dp.events_ready() => out.extend(dp.drain_events()),
                }
            }
            Ok(json!({ "events": out }))
        }
        "lookup" => {
            let vni: u32 = field(cmd, "vni")?;
            let mac: MacAddr = field(cmd, "mac")?;
            Ok(match dp.lookup(vni, mac).await {
                Ok(e) => json!({ "entry": e }),
                Err(e) => json!({ "lookup_error": e }),
            })
        }
        other => Err(format!("unknown cmd {other:?}")),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut dp = Linux::new()?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = rx.recv().await {
        if line.trim().is_empty() {
            continue;
        }
        let t0 = Instant::now();
        let mut answer = match serde_json::from_str::<Value>(&line) {
            Ok(cmd) => handle(&mut dp, &cmd)
                .await
                .unwrap_or_else(|e| json!({ "error": e })),
            Err(e) => json!({ "error": format!("bad json: {e}") }),
        };
        answer["elapsed_ms"] = json!(t0.elapsed().as_secs_f64() * 1e3);
        println!("{answer}");
    }
    Ok(())
}
