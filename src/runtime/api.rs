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
use crate::bgp::spec::RouteSpec;
use crate::wire::bgp::afi::Family;

type Send = Arc<dyn Fn(ApiReq) -> bool + std::marker::Send + Sync>;

pub fn router(send: impl Fn(ApiReq) -> bool + std::marker::Send + Sync + 'static) -> Router {
    let s: Send = Arc::new(send);
    Router::new()
        .route("/v1/neighbors", get(neighbors))
        .route("/v1/neighbors/{addr}/refresh", post(refresh))
        .route("/v1/routes", get(routes))
        .route("/v1/routes/announce", post(announce))
        .route("/v1/routes/withdraw", post(withdraw))
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
