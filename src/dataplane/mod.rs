//! The dataplane seam: what the EVPN layer asks forwarding to hold, and what forwarding
//! reports back (local learning).
//!
//! Owns: `DataplaneOp` (idempotent operations, applied in batches, one result per op),
//! `LearnEvent` (a MAC appeared on or left a local port), the `Dataplane` trait, and the
//! in-memory backend (`memory`). The Linux backend (netlink) lives in `linux/` (issue 4).
//! Must not: know about BGP, the RIB or LISP. The EVPN layer describes ops; the runtime
//! performs them.
//!
//! Semantics every backend keeps (ARCHITECTURE rule 4, BIRD's bridge sync):
//! - `Fdb` is a *replace*: a move is one op that points the MAC at the new VTEP, so there is
//!   never a moment without an entry (no delete-then-add gap).
//! - `Flood` / `FloodDel` add and remove one VTEP of a VNI's flood list (ingress replication,
//!   RFC 8365 §5.1.3); other VTEPs of the list are untouched.
//! - Deleting what is not there succeeds; adding what is there already succeeds.

pub mod memory;

use std::future::Future;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::wire::types::MacAddr;

/// One thing the dataplane must hold (or stop holding).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum DataplaneOp {
    /// Remote MAC of L2 VNI `vni` behind `vtep` (replace). `sticky`: a static MAC (RFC 7432
    /// §15.2) that the kernel must never move by learning.
    Fdb {
        vni: u32,
        mac: MacAddr,
        vtep: IpAddr,
        sticky: bool,
    },
    /// No remote entry for the MAC any more.
    FdbDel {
        vni: u32,
        mac: MacAddr,
    },
    /// `vtep` is in the flood list of `vni` (EVPN type 3, ingress replication).
    Flood {
        vni: u32,
        vtep: IpAddr,
    },
    FloodDel {
        vni: u32,
        vtep: IpAddr,
    },
    /// ARP/ND suppression entry of L2 VNI `vni`: `ip` is at `mac` (replace).
    Neigh {
        vni: u32,
        ip: IpAddr,
        mac: MacAddr,
    },
    NeighDel {
        vni: u32,
        ip: IpAddr,
    },
    /// A route in the IP-VRF of L3 VNI `vni` (symmetric IRB host route or type 5 prefix):
    /// VXLAN to `vtep` with inner destination MAC `rmac` (RFC 9135 §4.1).
    Route {
        vni: u32,
        prefix: IpNet,
        vtep: IpAddr,
        rmac: Option<MacAddr>,
    },
    RouteDel {
        vni: u32,
        prefix: IpNet,
    },
}

impl DataplaneOp {
    pub fn vni(&self) -> u32 {
        match self {
            DataplaneOp::Fdb { vni, .. }
            | DataplaneOp::FdbDel { vni, .. }
            | DataplaneOp::Flood { vni, .. }
            | DataplaneOp::FloodDel { vni, .. }
            | DataplaneOp::Neigh { vni, .. }
            | DataplaneOp::NeighDel { vni, .. }
            | DataplaneOp::Route { vni, .. }
            | DataplaneOp::RouteDel { vni, .. } => *vni,
        }
    }
}

/// A batch of ops with the number the EVPN layer gave it (`Evpn::handle_applied` takes it
/// back to time the moves the batch completes).
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub id: u64,
    pub ops: Vec<DataplaneOp>,
}

/// Why one op failed (the runtime retries with backoff and counts it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpError {
    pub op: DataplaneOp,
    pub reason: String,
}

/// What local forwarding saw: the same path as `vmmi vm attach/detach`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum LearnEvent {
    /// `mac` (and `ip`, when known) appeared on a local port of `vni`'s bridge.
    Learned {
        vni: u32,
        mac: MacAddr,
        ip: Option<IpAddr>,
        sticky: bool,
    },
    /// `mac` left (all its addresses, or only `ip` when given).
    Left {
        vni: u32,
        mac: MacAddr,
        ip: Option<IpAddr>,
    },
}

/// A forwarding backend. Ops are applied in order; each batch returns the ops that failed.
pub trait Dataplane: Send {
    fn apply(&mut self, batch: &Batch) -> impl Future<Output = Vec<OpError>> + Send;
    /// Local learn events that happened since the last call (non-blocking).
    fn drain_events(&mut self) -> Vec<LearnEvent>;
}
