//! `GET /metrics`: Prometheus (OpenMetrics text) from a snapshot of the loop's state.
//!
//! Owns: metric names and help texts. Must not: keep state — every scrape builds a registry
//! from the counters the cores keep (no global recorder, nothing to lock).

use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::vtep::Vtep;
use crate::bgp::{PeerState, Speaker};
use crate::evpn::Loc;

type Labels = Vec<(String, String)>;

fn counter(r: &mut Registry, name: &str, help: &str, v: u64) {
    let c: Counter = Counter::default();
    c.inc_by(v);
    r.register(name, help, c);
}

pub fn render(
    sp: &Speaker,
    vtep: Option<&Vtep>,
    lisp: Option<&super::lisp::LispShell>,
    now: Instant,
) -> String {
    let mut r = Registry::default();
    let views = sp.neighbors(now);
    let up: Family<Labels, Gauge> = Family::default();
    let pfx: Family<Labels, Gauge> = Family::default();
    let flaps: Family<Labels, Gauge> = Family::default();
    for n in &views {
        let l = vec![("neighbor".to_string(), n.name.clone())];
        up.get_or_create(&l)
            .set(i64::from(n.state == PeerState::Established));
        flaps.get_or_create(&l).set(i64::from(n.flaps));
        for (fam, count) in &n.prefixes_received {
            let mut lf = l.clone();
            lf.push(("family".into(), fam.clone()));
            pfx.get_or_create(&lf).set(i64::from(*count));
        }
    }
    // sessions by FSM state (RFC 4271 §8.2.2), every state listed so a dashboard sees zeros
    let states: Family<Labels, Gauge> = Family::default();
    let all = [
        PeerState::Idle,
        PeerState::Connect,
        PeerState::Active,
        PeerState::OpenSent,
        PeerState::OpenConfirm,
        PeerState::Established,
    ];
    for st in all {
        let n = views.iter().filter(|v| v.state == st).count();
        states
            .get_or_create(&vec![("state".to_string(), format!("{st:?}"))])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    r.register("vmmi_bgp_sessions", "BGP sessions per FSM state", states);
    // Loc-RIB routes by family and (EVPN) route type
    let routes: Family<Labels, Gauge> = Family::default();
    for f in sp.rib().families() {
        let evpn = f == crate::wire::bgp::afi::Family::L2VPN_EVPN;
        if evpn {
            for (t, n) in sp.rib().count_by_first_octet(f) {
                let name = match t {
                    1 => "ethernet-ad".to_string(),
                    2 => "mac-ip".to_string(),
                    3 => "inclusive-multicast".to_string(),
                    4 => "ethernet-segment".to_string(),
                    5 => "ip-prefix".to_string(),
                    other => format!("type-{other}"),
                };
                routes
                    .get_or_create(&vec![
                        ("family".to_string(), f.to_string()),
                        ("type".to_string(), name),
                    ])
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        } else {
            routes
                .get_or_create(&vec![
                    ("family".to_string(), f.to_string()),
                    ("type".to_string(), "prefix".to_string()),
                ])
                .set(i64::try_from(sp.rib().len(f)).unwrap_or(i64::MAX));
        }
    }
    r.register(
        "vmmi_bgp_routes",
        "Loc-RIB routes (one per key, any number of paths) by family and EVPN route type",
        routes,
    );
    r.register(
        "vmmi_bgp_neighbor_up",
        "1 when the BGP session is Established",
        up,
    );
    r.register(
        "vmmi_bgp_prefixes_received",
        "Paths held from the neighbor, per family",
        pfx,
    );
    r.register(
        "vmmi_bgp_neighbor_flaps",
        "Times the session left Established",
        flaps,
    );
    if let Some(v) = vtep {
        let c = &v.evpn.counters;
        counter(
            &mut r,
            "vmmi_evpn_local_learns",
            "Local MAC learns (dataplane and vm attach)",
            c.local_learns,
        );
        counter(
            &mut r,
            "vmmi_evpn_local_leaves",
            "Local MAC leaves",
            c.local_leaves,
        );
        counter(
            &mut r,
            "vmmi_evpn_moved_away",
            "Local MACs withdrawn because a remote claim won (RFC 7432 §15.1)",
            c.moved_away,
        );
        counter(
            &mut r,
            "vmmi_evpn_duplicates_detected",
            "MACs frozen by duplicate-address detection",
            c.duplicates_detected,
        );
        counter(
            &mut r,
            "vmmi_evpn_sticky_conflicts",
            "Static MACs claimed elsewhere (RFC 7432 §15.2)",
            c.sticky_conflicts,
        );
        counter(
            &mut r,
            "vmmi_evpn_moves",
            "MAC location changes seen",
            v.evpn.log.total,
        );
        counter(
            &mut r,
            "vmmi_evpn_routes_ignored",
            "EVPN routes no VNI imports",
            c.routes_ignored,
        );
        counter(
            &mut r,
            "vmmi_dataplane_ops",
            "Dataplane operations issued",
            c.dataplane_ops,
        );
        counter(
            &mut r,
            "vmmi_dataplane_op_failures",
            "Dataplane operations that failed (retried)",
            v.dp_failures,
        );
        let macs: Family<Labels, Gauge> = Family::default();
        let dup: Family<Labels, Gauge> = Family::default();
        for m in v.evpn.mac_views(None, now) {
            let vni = ("vni".to_string(), m.vni.to_string());
            let loc = match m.location {
                Some(Loc::Local) => "local",
                Some(Loc::Remote(_)) => "remote",
                None => "none",
            };
            macs.get_or_create(&vec![vni.clone(), ("location".into(), loc.into())])
                .inc();
            if m.duplicate {
                dup.get_or_create(&vec![vni]).inc();
            }
        }
        r.register("vmmi_evpn_macs", "MACs per VNI and location", macs);
        r.register(
            "vmmi_evpn_duplicate_macs",
            "MACs frozen now by duplicate-address detection",
            dup,
        );
        r.register(
            "vmmi_evpn_move_to_update_seconds",
            "Move start (learn or route seen) to our UPDATE (advertise or withdraw)",
            v.latency.to_update.clone(),
        );
        r.register(
            "vmmi_evpn_move_to_dataplane_seconds",
            "Move start (learn or route seen) to the dataplane change applied",
            v.latency.to_dataplane.clone(),
        );
        // convergence of recent moves: start → dataplane applied
        let last: Family<Labels, Gauge> = Family::default();
        if let Some(m) = v.evpn.move_views(now, 1).first()
            && let Some(s) = m
                .steps
                .iter()
                .find(|s| s.step == crate::evpn::Step::Dataplane)
        {
            last.get_or_create(&vec![])
                .set(i64::try_from(s.after_us).unwrap_or(i64::MAX));
        }
        r.register(
            "vmmi_evpn_last_move_dataplane_us",
            "Microseconds from the start of the latest move to its dataplane change",
            last,
        );
    }
    if let Some(l) = lisp {
        // every LISP counter, named after its field (registrations, auth failures, Map-Notify
        // sent/retried/acked, SMRs, subscriptions, ...)
        if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(l.core.counters()) {
            for (k, v) in m {
                if let Some(v) = v.as_u64() {
                    counter(
                        &mut r,
                        &format!("vmmi_lisp_{k}"),
                        &format!("LISP {}", k.replace('_', " ")),
                        v,
                    );
                }
            }
        }
        // what the Map-Server holds now: mappings by where they come from (a site's
        // registrations or the EVPN feed), and live subscriptions
        let regs: Family<Labels, Gauge> = Family::default();
        for v in l.core.registrations(now) {
            for g in &v.registrants {
                let from = g.site.clone().unwrap_or_else(|| g.source.to_string());
                regs.get_or_create(&vec![("source".to_string(), from)])
                    .inc();
            }
        }
        r.register(
            "vmmi_lisp_registrations",
            "EID registrations held by the Map-Server, by site (or evpn for the EVPN feed)",
            regs,
        );
        let subs: Gauge = Gauge::default();
        subs.set(i64::try_from(l.core.subscribers(now).len()).unwrap_or(i64::MAX));
        r.register(
            "vmmi_lisp_subscriptions",
            "RFC 9437 subscriptions held by the Map-Server",
            subs,
        );
        counter(
            &mut r,
            "vmmi_lisp_send_errors",
            "LISP datagrams the socket refused",
            l.send_errors,
        );
    }
    let mut out = String::new();
    let _ = encode(&mut out, &r);
    out
}
