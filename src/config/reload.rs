//! What a SIGHUP can apply of a new configuration while the old one runs.
//!
//! Owns: the split of a reloaded file into what the running daemon takes at once and what
//! needs a restart — as data, so the rule is one place and tested without a daemon.
//! Must not: apply anything (the runtime does, section by section).
//!
//! Applied at once: `[[neighbor]]` (added, removed, changed — the others keep their
//! sessions), `[[vni]]` (added, removed, changed — the others are not touched), the DAD
//! settings of `[mobility]`, and `[[lisp.site]]` (added, removed, changed). Everything else —
//! `[global]`, `[api]`, `[dataplane]`, `mobility.state_file`, `[lisp]` roles, listen address,
//! pubsub/smr switches and map-servers, and the devices of a VNI that stays (`kind`,
//! `bridge`, `vxlan`, `vrf`, `table`, `arp_nd_suppress`) — keeps its running value and is reported, key by key,
//! as needing a restart (FRR's behaviour for `router bgp` ASN changes: refused until the
//! instance is re-created).

use super::{Config, LispCfg, VniCfg};

/// The configuration the daemon runs after a reload, and one line per key of the file that
/// needs a restart to take effect (empty when everything applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadPlan {
    pub effective: Config,
    pub needs_restart: Vec<String>,
}

/// `old` is running, `new` was just read and validated.
pub fn reload_plan(old: &Config, new: &Config) -> ReloadPlan {
    let mut eff = new.clone();
    let mut restart = Vec::new();
    let mut note = |key: &str, differs: bool| {
        if differs {
            restart.push(key.to_string());
        }
    };
    let (ol, nl) = (&old.lisp, &new.lisp);
    note("global", old.global != new.global);
    note("api", old.api != new.api);
    note("dataplane", old.dataplane != new.dataplane);
    let file = old.mobility.state_file != new.mobility.state_file;
    note("mobility.state_file", file);
    note("lisp.roles", ol.roles != nl.roles);
    note("lisp.listen", ol.listen != nl.listen);
    note("lisp.pubsub", ol.pubsub != nl.pubsub);
    note("lisp.smr", ol.smr != nl.smr);
    note("lisp.map_server", ol.map_server != nl.map_server);
    eff.global = old.global.clone();
    eff.api = old.api.clone();
    eff.dataplane = old.dataplane.clone();
    eff.mobility.state_file = old.mobility.state_file.clone();
    eff.lisp = LispCfg {
        site: nl.site.clone(),
        ..ol.clone()
    };
    // a VNI that stays keeps its devices: the dataplane cannot move its entries to others
    for v in &mut eff.vni {
        let Some(o) = old.vni.iter().find(|o| o.vni == v.vni) else {
            continue;
        };
        if !same_devices(o, v) {
            restart.push(format!(
                "vni {}: kind / bridge / vxlan / vrf / table / arp_nd_suppress (the VNI keeps its running configuration)",
                v.vni
            ));
            *v = o.clone();
        }
    }
    ReloadPlan {
        effective: eff,
        needs_restart: restart,
    }
}

/// The parts of a VNI that name or shape its dataplane devices.
fn same_devices(a: &VniCfg, b: &VniCfg) -> bool {
    (
        a.kind,
        &a.bridge,
        &a.vxlan,
        &a.vrf,
        a.table,
        a.arp_nd_suppress,
    ) == (
        b.kind,
        &b.bridge,
        &b.vxlan,
        &b.vrf,
        b.table,
        b.arp_nd_suppress,
    )
}
