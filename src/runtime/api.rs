//! The management API (HTTP/JSON, axum): a thin front that forwards each request to the event
//! loop and returns its answer. Errors are `{"error": "...", "detail": ...}` with a proper
//! status code.
//!
//! Owns: routes, query/body parsing and status codes. Must not: hold protocol state — it has
//! none; every answer comes from the loop.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // runtime/: the clock, tasks and sockets live here

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::ApiReq;
use super::vtep::{EvpnReq, ReqError};
use crate::bgp::spec::RouteSpec;
use crate::dataplane::LearnEvent;
use crate::wire::bgp::afi::Family;
use crate::wire::types::MacAddr;

type Send = Arc<dyn Fn(ApiReq) -> bool + std::marker::Send + Sync>;

pub fn router(send: impl Fn(ApiReq) -> bool + std::marker::Send + Sync + 'static) -> Router {
    let s: Send = Arc::new(send);
    Router::new()
        .route("/v1/neighbors", get(neighbors))
        .route("/v1/neighbors/{addr}/refresh", post(refresh))
        .route("/v1/routes", get(routes))
        .route("/v1/routes/announce", post(announce))
        .route("/v1/routes/withdraw", post(withdraw))
        .route("/v1/macs", get(macs))
        .route("/v1/vnis", get(vnis))
        .route("/v1/moves", get(moves))
        .route("/v1/explain/mac/{vni}/{mac}", get(explain))
        .route("/v1/vm/attach", post(vm_attach))
        .route("/v1/vm/detach", post(vm_detach))
        .route("/v1/dad/clear", post(dad_clear))
        .route("/metrics", get(metrics))
        .route("/v1/lisp/{what}", get(lisp_view))
        .route("/v1/lisp/request", post(lisp_request))
        .fallback(|| async {
            err(
                StatusCode::NOT_FOUND,
                "no such endpoint",
                serde_json::Value::Null,
            )
        })
        .with_state(s)
}

fn err(code: StatusCode, msg: &str, detail: serde_json::Value) -> Response {
    (
        code,
        Json(serde_json::json!({ "error": msg, "detail": detail })),
    )
        .into_response()
}

async fn ask<T>(s: &Send, f: impl FnOnce(oneshot::Sender<T>) -> ApiReq) -> Result<T, Response> {
    let (tx, rx) = oneshot::channel();
    if !s(f(tx)) {
        return Err(err(
            StatusCode::SERVICE_UNAVAILABLE,
            "daemon is shutting down",
            serde_json::Value::Null,
        ));
    }
    rx.await.map_err(|_| {
        err(
            StatusCode::SERVICE_UNAVAILABLE,
            "daemon is shutting down",
            serde_json::Value::Null,
        )
    })
}

async fn neighbors(State(s): State<Send>) -> Response {
    match ask(&s, ApiReq::Neighbors).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// `family` as operators spell it: `l2vpn-evpn` (or `evpn`), `ipv4-unicast` (`ipv4`),
/// `ipv6-unicast` (`ipv6`).
pub fn parse_family(s: &str) -> Option<Family> {
    match s {
        "evpn" | "l2vpn-evpn" | "l2vpn_evpn" => Some(Family::L2VPN_EVPN),
        "ipv4" | "ipv4-unicast" | "ipv4_unicast" => Some(Family::IPV4_UNICAST),
        "ipv6" | "ipv6-unicast" | "ipv6_unicast" => Some(Family::IPV6_UNICAST),
        _ => None,
    }
}

#[derive(Deserialize)]
struct RoutesQ {
    family: Option<String>,
    vni: Option<u32>,
}

async fn routes(
    State(s): State<Send>,
    q: Result<Query<RoutesQ>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return err(
            StatusCode::BAD_REQUEST,
            "bad query: family=evpn|ipv4|ipv6, vni=N",
            serde_json::Value::Null,
        );
    };
    let family = match q.family.as_deref() {
        None => None,
        Some(f) => match parse_family(f) {
            Some(f) => Some(f),
            None => {
                return err(
                    StatusCode::BAD_REQUEST,
                    "unknown family",
                    serde_json::json!(f),
                );
            }
        },
    };
    match ask(&s, |reply| ApiReq::Routes {
        family,
        vni: q.vni,
        reply,
    })
    .await
    {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

type SpecBody = Result<Json<RouteSpec>, axum::extract::rejection::JsonRejection>;

async fn announce(State(s): State<Send>, body: SpecBody) -> Response {
    route_op(s, body, ApiReq::Announce).await
}

async fn withdraw(State(s): State<Send>, body: SpecBody) -> Response {
    route_op(s, body, ApiReq::Withdraw).await
}

/// Announce or withdraw: 400 for JSON that is not a route, 422 for a route that cannot be
/// built (the reason names the field).
async fn route_op(
    s: Send,
    body: SpecBody,
    op: fn(RouteSpec, oneshot::Sender<Result<(), String>>) -> ApiReq,
) -> Response {
    let spec = match body {
        Ok(Json(b)) => b,
        Err(e) => {
            return err(
                StatusCode::BAD_REQUEST,
                "bad route",
                serde_json::json!(e.body_text()),
            );
        }
    };
    match ask(&s, |reply| op(spec, reply)).await {
        Ok(Ok(())) => (StatusCode::OK, Json(serde_json::json!({"ok": true}))).into_response(),
        Ok(Err(e)) => err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad route",
            serde_json::json!(e),
        ),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct RefreshQ {
    family: String,
}

async fn refresh(
    State(s): State<Send>,
    Path(addr): Path<String>,
    q: Result<Query<RefreshQ>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return err(
            StatusCode::BAD_REQUEST,
            "family=evpn|ipv4|ipv6 is required",
            serde_json::Value::Null,
        );
    };
    let Some(family) = parse_family(&q.family) else {
        return err(
            StatusCode::BAD_REQUEST,
            "unknown family",
            serde_json::json!(q.family),
        );
    };
    match ask(&s, |reply| ApiReq::Refresh {
        neighbor: addr,
        family,
        reply,
    })
    .await
    {
        Ok(Ok(())) => Json(serde_json::json!({"ok": true})).into_response(),
        Ok(Err(e)) => err(
            StatusCode::CONFLICT,
            "route refresh not sent",
            serde_json::json!(e),
        ),
        Err(r) => r,
    }
}

// ------------------------------------------------------------------ EVPN

/// An EVPN request the daemon refused: its status code and a stable error text, the reason
/// in `detail`.
fn refused(e: &ReqError) -> Response {
    let (code, msg) = match e {
        ReqError::NoVni(_) => (StatusCode::NOT_FOUND, "no such vni"),
        ReqError::NoMac(_) => (StatusCode::NOT_FOUND, "unknown MAC"),
        ReqError::WrongVni(_) => (StatusCode::UNPROCESSABLE_ENTITY, "not an l2 vni"),
        ReqError::Conflict(_) => (StatusCode::CONFLICT, "not frozen"),
    };
    err(code, msg, serde_json::json!(e.to_string()))
}

fn bad(msg: &str, detail: impl serde::Serialize) -> Response {
    err(StatusCode::BAD_REQUEST, msg, serde_json::json!(detail))
}

#[derive(Deserialize)]
struct VniQ {
    vni: Option<u32>,
}

async fn macs(
    State(s): State<Send>,
    q: Result<Query<VniQ>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return bad("bad query: vni=N", serde_json::Value::Null);
    };
    match ask(&s, |reply| {
        ApiReq::Evpn(EvpnReq::Macs { vni: q.vni, reply })
    })
    .await
    {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => refused(&e),
        Err(r) => r,
    }
}

async fn vnis(State(s): State<Send>) -> Response {
    match ask(&s, |r| ApiReq::Evpn(EvpnReq::Vnis(r))).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct MovesQ {
    limit: Option<usize>,
}

async fn moves(
    State(s): State<Send>,
    q: Result<Query<MovesQ>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return bad("bad query: limit=N", serde_json::Value::Null);
    };
    let limit = q.limit.unwrap_or(100);
    match ask(&s, |reply| ApiReq::Evpn(EvpnReq::Moves { limit, reply })).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn explain(State(s): State<Send>, Path((vni, mac)): Path<(String, String)>) -> Response {
    let Ok(vni) = vni.parse::<u32>() else {
        return bad("vni must be a number", vni);
    };
    let Ok(mac) = mac.parse::<MacAddr>() else {
        return bad("bad MAC address", mac);
    };
    match ask(&s, |reply| {
        ApiReq::Evpn(EvpnReq::Explain { vni, mac, reply })
    })
    .await
    {
        Ok(Ok(x)) => Json(x).into_response(),
        Ok(Err(e)) => refused(&e),
        Err(r) => r,
    }
}

/// `POST /v1/vm/attach|detach` body; `POST /v1/dad/clear` takes `vni` and `mac` only.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VmBody {
    vni: u32,
    mac: MacAddr,
    #[serde(default)]
    ip: Option<std::net::IpAddr>,
    /// A static MAC (RFC 7432 §15.2): it never moves by learning.
    #[serde(default)]
    sticky: bool,
}

type VmJson = Result<Json<VmBody>, axum::extract::rejection::JsonRejection>;

async fn vm_attach(State(s): State<Send>, body: VmJson) -> Response {
    vm(s, body, true).await
}

async fn vm_detach(State(s): State<Send>, body: VmJson) -> Response {
    vm(s, body, false).await
}

async fn vm(s: Send, body: VmJson, attach: bool) -> Response {
    let b = match body {
        Ok(Json(b)) => b,
        Err(e) => return bad("bad body: {vni, mac, ip?, sticky?}", e.body_text()),
    };
    let event = if attach {
        LearnEvent::Learned {
            vni: b.vni,
            mac: b.mac,
            ip: b.ip,
            sticky: b.sticky,
        }
    } else {
        LearnEvent::Left {
            vni: b.vni,
            mac: b.mac,
            ip: b.ip,
        }
    };
    match ask(&s, |reply| ApiReq::Evpn(EvpnReq::Vm { event, reply })).await {
        Ok(Ok(())) => Json(serde_json::json!({"ok": true})).into_response(),
        Ok(Err(e)) => refused(&e),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DadBody {
    vni: u32,
    mac: MacAddr,
}

async fn dad_clear(
    State(s): State<Send>,
    body: Result<Json<DadBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let b = match body {
        Ok(Json(b)) => b,
        Err(e) => return bad("bad body: {vni, mac}", e.body_text()),
    };
    let (vni, mac) = (b.vni, b.mac);
    match ask(&s, |reply| {
        ApiReq::Evpn(EvpnReq::DadClear { vni, mac, reply })
    })
    .await
    {
        Ok(Ok(())) => Json(serde_json::json!({"ok": true})).into_response(),
        Ok(Err(e)) => refused(&e),
        Err(r) => r,
    }
}

async fn metrics(State(s): State<Send>) -> Response {
    match ask(&s, ApiReq::Metrics).await {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn lisp_view(State(s): State<Send>, Path(what): Path<String>) -> Response {
    use super::LispView as V;
    let v = match what.as_str() {
        "registrations" => V::Registrations,
        "subscribers" => V::Subscribers,
        "map-cache" => V::MapCache,
        "counters" => V::Counters,
        _ => {
            return err(
                StatusCode::NOT_FOUND,
                "no such LISP view",
                serde_json::json!("registrations, subscribers, map-cache, counters"),
            );
        }
    };
    match ask(&s, |reply| ApiReq::Lisp(v, reply)).await {
        Ok(Ok(x)) => Json(x).into_response(),
        Ok(Err(e)) => err(StatusCode::NOT_FOUND, "LISP is off", serde_json::json!(e)),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LispRequestBody {
    /// `iid:N PREFIX` or `iid:N mac:MAC`, as in `[[lisp.site]] eids`.
    eid: String,
    #[serde(default)]
    subscribe: bool,
}

/// The xTR asks its Map-Resolver for `eid` (and subscribes): the answer lands in
/// `GET /v1/lisp/map-cache`. 202: the Map-Request is on its way (or one for this EID already
/// is, RFC 9301 §5.3 allows one per second per EID-prefix).
async fn lisp_request(
    State(s): State<Send>,
    body: Result<Json<LispRequestBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let b = match body {
        Ok(Json(b)) => b,
        Err(e) => return bad("bad body: {eid, subscribe}", e.body_text()),
    };
    let eid = match crate::config::parse_eid(&b.eid) {
        Ok(crate::config::EidCfg::MacAny { .. }) => {
            return bad(
                "bad eid",
                "mac:any is a site wildcard, not an EID to resolve",
            );
        }
        Ok(c) => crate::lisp::EidPrefix::from_cfg(&c),
        Err(e) => return bad("bad eid", e),
    };
    let subscribe = b.subscribe;
    match ask(&s, |reply| ApiReq::LispRequest {
        eid,
        subscribe,
        reply,
    })
    .await
    {
        Ok(Ok(())) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"eid": eid.to_string(), "subscribe": subscribe})),
        )
            .into_response(),
        Ok(Err(e)) => err(StatusCode::CONFLICT, "not requested", serde_json::json!(e)),
        Err(r) => r,
    }
}
