//! The dataplane seam: what the EVPN layer asks forwarding to hold, and what forwarding
//! reports back (local learning).
//!
//! Owns: `DataplaneOp` (idempotent operations, applied in batches, one result per op),
//! `LearnEvent` (a MAC appeared on or left a local port), `VniDev` (the devices a VNI needs),
//! `ReconcileReport`, `MacEntry` (what a backend holds for one MAC: `vmmi explain mac`), the
//! `Dataplane` trait, the in-memory backend (`memory`) and the Linux
//! kernel backend (`linux`, netlink; issue 4).
//! Must not: know about BGP, the RIB or LISP. The EVPN layer describes ops; the runtime
//! performs them.
//!
//! Semantics every backend keeps (ARCHITECTURE rule 4, BIRD's bridge sync):
//! - `Fdb` is a *replace*: a move is one op that points the MAC at the new VTEP, so there is
//!   never a moment without an entry (no delete-then-add gap).
//! - `Flood` / `FloodDel` add and remove one VTEP of a VNI's flood list (ingress replication,
//!   RFC 8365 §5.1.3); other VTEPs of the list are untouched.
//! - Deleting what is not there succeeds; adding what is there already succeeds.

#[cfg(target_os = "linux")]
pub mod linux;
pub mod memory;

use std::future::Future;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

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
    /// VXLAN to `vtep` with inner destination MAC `rmac` (RFC 9135 §4.1), replacing the
    /// prefix's previous route (a move has no gap). One next hop: the EVPN layer sends its
    /// best path. `rmac: None` (no Router's MAC extended community, RFC 9135 §8.1) cannot be
    /// forwarded over VXLAN: a kernel backend refuses it and removes the route it replaces.
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

/// The devices one VNI needs in a kernel dataplane: a VXLAN device (id = `vni`, local VTEP
/// `local`, UDP 4789, no data-plane learning) that is a port of `bridge`; for an L3 VNI the
/// bridge is enslaved to a VRF device with its own routing table (symmetric IRB, RFC 9135).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VniDev {
    pub vni: u32,
    pub kind: VniDevKind,
    /// Default `br<vni>`.
    pub bridge: String,
    /// Default `vxlan<vni>`.
    pub vxlan: String,
    /// Local VTEP address (the VXLAN source).
    pub local: IpAddr,
    /// ARP/ND suppression on the VXLAN bridge port (`neigh_suppress`): the bridge answers
    /// ARP/ND for a remote address from the `Neigh` entry and the remote MAC's bridge-side
    /// FDB entry instead of flooding the request over the fabric.
    pub neigh_suppress: bool,
    /// L3 VNI: the Router's MAC we advertise (RFC 9135 §8.1) — remote VTEPs send routed
    /// frames to it, so it is the bridge's own address (the bridge then routes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_mac: Option<MacAddr>,
}

/// What a `VniDev` is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum VniDevKind {
    /// A MAC-VRF: bridge + VXLAN port.
    L2,
    /// An IP-VRF: the bridge is enslaved to VRF device `vrf` using routing table `table`.
    L3 { vrf: String, table: u32 },
}

impl VniDev {
    /// An L2 VNI with the default device names and suppression off.
    pub fn l2(vni: u32, local: IpAddr) -> VniDev {
        VniDev {
            vni,
            kind: VniDevKind::L2,
            bridge: format!("br{vni}"),
            vxlan: format!("vxlan{vni}"),
            local,
            neigh_suppress: false,
            router_mac: None,
        }
    }
}

/// What `Dataplane::reconcile` found and did, entry by entry (FDB unicast, flood list,
/// neighbour; a backend that holds a remote MAC as several entries — the Linux one: the VXLAN
/// device's and the bridge's — counts it once): already right, rewritten, written because
/// absent, deleted because vmmi owns it and nothing wants it any more.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    pub adopted: usize,
    pub fixed: usize,
    pub added: usize,
    pub removed: usize,
    /// Writes or deletes that failed (the same retry rules as `apply`).
    pub errors: Vec<OpError>,
}

/// What a backend holds for one MAC of one L2 VNI (`Dataplane::lookup`): read back from the
/// backend's tables — for the Linux one, from the kernel — never from what was sent to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MacEntry {
    /// The remote VTEP the VNI's VXLAN device sends the MAC's frames to (`None`: no remote
    /// entry).
    pub vtep: Option<IpAddr>,
    /// Further remotes of the same entry (the frames would go to every one). vmmi writes one,
    /// and the kernel appends remotes only to the flood entry (Linux 6.1: an `append` to a
    /// unicast MAC changes nothing), so this is empty unless a backend holds a MAC otherwise
    /// than vmmi writes it; shown, never hidden.
    pub other_vteps: Vec<IpAddr>,
    /// The remote entry is a control plane's (`extern_learn`: vmmi's or another daemon's);
    /// `false` with a `vtep`: an operator's or the kernel's entry.
    pub extern_learn: bool,
    /// The remote entry is `permanent` (NUD_PERMANENT).
    pub permanent: bool,
    /// The remote entry is `static` (NUD_NOARP; vmmi writes a sticky MAC so).
    #[serde(rename = "static")]
    pub is_static: bool,
    /// The remote entry is `sticky` (RFC 7432 §15.2: the kernel never moves it by learning).
    pub sticky: bool,
    /// Where the VNI's bridge forwards the MAC.
    pub bridge: BridgeSide,
}

/// The bridge's entry for a MAC (`MacEntry::bridge`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "at", rename_all = "kebab-case")]
pub enum BridgeSide {
    /// The bridge holds no entry: it floods the MAC's frames as unknown unicast.
    #[default]
    Absent,
    /// On the VNI's VXLAN port: the MAC is remote (the VXLAN entry says which VTEP).
    Vxlan,
    /// On a local port (ifindex `port`): the MAC is here.
    Local { port: u32 },
}

impl MacEntry {
    /// The bridge holds the MAC on a local port.
    pub fn local(&self) -> bool {
        matches!(self.bridge, BridgeSide::Local { .. })
    }
}

/// Why `Dataplane::lookup` has no answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LookupError {
    /// The backend cannot be asked (the trait's default).
    Unsupported,
    /// The VNI has no devices in this backend (not configured, or its devices are wrong).
    NotConfigured { vni: u32 },
    /// The VNI is an L3 VNI: it holds routes, not MACs.
    NotL2 { vni: u32 },
    /// The backend's read failed (the kernel's error text).
    Failed { reason: String },
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::Unsupported => f.write_str("this dataplane backend cannot be asked"),
            LookupError::NotConfigured { vni } => {
                write!(f, "vni {vni} is not configured in the dataplane")
            }
            LookupError::NotL2 { vni } => write!(f, "vni {vni} is an l3 VNI: it holds no MACs"),
            LookupError::Failed { reason } => write!(f, "dataplane read failed: {reason}"),
        }
    }
}

/// A forwarding backend. Ops are applied in order; each batch returns the ops that failed.
///
/// Start-up order for the runtime: `configure` (devices), then — once the EVPN layer knows
/// its full desired state (after End-of-RIB / the graceful-restart stale sweep, never with an
/// empty table at boot) — `reconcile`, then `apply` for every later batch. Learn events are
/// read with `drain_events` whenever `events_ready` completes.
pub trait Dataplane: Send {
    fn apply(&mut self, batch: &Batch) -> impl Future<Output = Vec<OpError>> + Send;
    /// Local learn events that happened since the last call (non-blocking).
    fn drain_events(&mut self) -> Vec<LearnEvent>;

    /// Create or adopt the devices of `vnis` (the whole configured set). An error names each
    /// device that is present but wrong and why; such devices are left untouched.
    fn configure(&mut self, vnis: &[VniDev]) -> impl Future<Output = Result<(), String>> + Send {
        let _ = vnis;
        async { Ok(()) }
    }

    /// Make the dataplane hold exactly `desired` (adds only: `Fdb`, `Flood`, `Neigh`, `Route`)
    /// among the entries this daemon owns; entries it does not own are never touched.
    /// The default applies `desired` (adds are idempotent) and removes nothing.
    fn reconcile(
        &mut self,
        desired: &[DataplaneOp],
    ) -> impl Future<Output = ReconcileReport> + Send {
        let batch = Batch {
            id: 0,
            ops: desired.to_vec(),
        };
        async move {
            let errors = self.apply(&batch).await;
            ReconcileReport {
                added: batch.ops.len() - errors.len(),
                errors,
                ..ReconcileReport::default()
            }
        }
    }

    /// What the backend holds for `mac` in L2 VNI `vni`, read from its tables now (the
    /// kernel's, for the Linux backend). The runtime asks between batches. The default cannot
    /// be asked.
    fn lookup(
        &mut self,
        vni: u32,
        mac: MacAddr,
    ) -> impl Future<Output = Result<MacEntry, LookupError>> + Send {
        let _ = (vni, mac);
        async { Err(LookupError::Unsupported) }
    }

    /// Completes when `drain_events` has something to return (select on it in the event
    /// loop). The default never completes: such a backend is polled.
    fn events_ready(&self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }
}
