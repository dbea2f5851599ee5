//! The glue between the EVPN layer and the BGP speaker: local routes go into the speaker,
//! best-path changes of the EVPN table come back for import.
//!
//! Owns: nothing — one function the runtime and the test harness both call after every input.
//! Must not: decide anything.

use std::time::Instant;

use super::{Evpn, Output};
use crate::bgp::{LocalRoute, Speaker};

/// Rounds of route exchange before giving up: one round settles a normal input (our
/// originations come back as watched keys that import ignores); the bound keeps a bug from
/// spinning the event loop.
const ROUNDS: usize = 64;

/// Move routes both ways until both cores are quiet; everything else the EVPN layer produced
/// (dataplane batches, events) is appended to `out` for the caller.
pub fn pump(sp: &mut Speaker, ev: &mut Evpn, now: Instant, out: &mut Vec<Output>) {
    for _ in 0..ROUNDS {
        let mut routes = Vec::new();
        while let Some(o) = ev.poll_output() {
            match o {
                Output::Announce(b) => routes.push(LocalRoute::Announce(b)),
                Output::Withdraw { family, nlri } => {
                    routes.push(LocalRoute::Withdraw { family, nlri })
                }
                other => out.push(other),
            }
        }
        let moved = !routes.is_empty();
        if moved {
            // one input for the speaker: the Adj-RIB-Outs are fed once per round
            sp.apply_local(now, routes);
        }
        let keys = sp.drain_watched();
        if keys.is_empty() && !moved {
            return;
        }
        if !keys.is_empty() {
            ev.handle_rib(now, sp.rib(), &keys);
        }
    }
    tracing::warn!("evpn: route exchange with the speaker did not settle in {ROUNDS} rounds");
}
