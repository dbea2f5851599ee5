//! The runtime side of the EVPN layer: one `Evpn` core next to the speaker, its dataplane
//! backend, the MAC Mobility state file, and the API requests about MACs, VNIs and moves.
//!
//! Owns: the backend object (the memory one inline; the Linux one, or any given to
//! `with_backend`, in a task of its own), retrying the ops such a backend fails — with backoff
//! (1, 2, 4 ... 30 s), one pending retry per entry, sent as what the EVPN layer wants for the
//! entry *then* (`Evpn::current`: a MAC that moved again meanwhile goes to where it is now) —
//! the state file I/O (write-then-rename, at most once a second and at shutdown), turning
//! EVPN events into log lines and counters, and `explain mac`'s question to the backend
//! (`DpCmd::Lookup`, answered between batches; the reply is composed off the loop, bounded by
//! `LOOKUP_WAIT`).
//! Must not: decide anything about routes or MACs (that is `evpn/`).

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // runtime/: the clock and files live here

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::bgp::{Event, Speaker};
use crate::config::{Config, DataplaneKind, FamilyCfg, VniKind};
use crate::dataplane::linux::Linux;
use crate::dataplane::memory::Memory;
use crate::dataplane::{
    Batch, Dataplane, DataplaneOp, LearnEvent, LookupError, MacEntry, OpError, ReconcileReport,
    VniDev, VniDevKind,
};
use crate::evpn::view::{Explain, MacView, MoveView, VniView};
use crate::evpn::{self, Evpn, EvpnCfg, EvpnEvent, Output};
use crate::rib::mac_mobility::DadCfg;
use crate::wire::bgp::afi::Family;
use crate::wire::types::MacAddr;

/// How often the state file is written at most.
const STATE_EVERY: Duration = Duration::from_secs(1);

/// Why an EVPN request was refused; the API maps each kind to its status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReqError {
    /// No such VNI (404 "no such vni").
    NoVni(String),
    /// No such MAC in the VNI (404 "unknown MAC").
    NoMac(String),
    /// The VNI exists but cannot take this request: an L3 VNI (422).
    WrongVni(String),
    /// The request conflicts with the MAC's state: not frozen (409).
    Conflict(String),
}

impl std::fmt::Display for ReqError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (ReqError::NoVni(s)
        | ReqError::NoMac(s)
        | ReqError::WrongVni(s)
        | ReqError::Conflict(s)) = self;
        f.write_str(s)
    }
}

/// API requests about the EVPN layer.
pub enum EvpnReq {
    Macs {
        vni: Option<u32>,
        reply: oneshot::Sender<Result<Vec<MacView>, ReqError>>,
    },
    Vnis(oneshot::Sender<Vec<VniView>>),
    Moves {
        limit: usize,
        reply: oneshot::Sender<Vec<MoveView>>,
    },
    Explain {
        vni: u32,
        mac: MacAddr,
        reply: oneshot::Sender<Result<Explain, ReqError>>,
    },
    /// `vmmi vm attach/detach` (the orchestrator hook): a learn event like the dataplane's.
    Vm {
        event: LearnEvent,
        reply: oneshot::Sender<Result<(), ReqError>>,
    },
    DadClear {
        vni: u32,
        mac: MacAddr,
        reply: oneshot::Sender<Result<(), ReqError>>,
    },
}

/// Batch ids of retries (the EVPN layer's own batch ids never reach this bit).
const RETRY_BIT: u64 = 1 << 63;

/// The wait before the first retry of a failed dataplane op, doubled per attempt up to
/// `RETRY_MAX` (1, 2, 4, 8, 16, 30, 30 ... s).
pub const RETRY_MIN: Duration = Duration::from_secs(1);
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// What the dataplane task reports to the loop.
#[derive(Debug)]
pub enum DpEv {
    Applied(u64, Vec<OpError>),
    Reconciled(ReconcileReport),
    Learn(Vec<LearnEvent>),
    /// The task ended (the backend failed).
    Gone(String),
}

enum DpCmd {
    Apply(Batch),
    Reconcile(Vec<DataplaneOp>),
    /// The whole set of VNI devices (a reload added or removed VNIs).
    Configure(Vec<VniDev>),
    /// What the backend holds for one MAC (`explain mac`): answered in order with the other
    /// commands, so after every batch sent before it.
    Lookup {
        vni: u32,
        mac: MacAddr,
        reply: oneshot::Sender<Result<MacEntry, LookupError>>,
    },
}

/// How long `explain mac` waits for a task backend's `Lookup` answer (it queues behind the
/// batches sent before it) before it answers that the dataplane did not.
pub const LOOKUP_WAIT: Duration = Duration::from_secs(1);

/// The dataplane backends this build runs.
enum Dp {
    Memory(Memory),
    /// A backend owned by its own task — the kernel one (netlink round trips never stall the
    /// loop), or any other given to `Vtep::with_backend`. Its ops can fail: failed ones are
    /// retried with backoff.
    Task(tokio::sync::mpsc::UnboundedSender<DpCmd>),
    /// `[dataplane] kind = "none"`: nothing is programmed (a route server / DC GW without
    /// forwarding).
    None,
}

/// A backend's task: apply batches in order, reconcile on request, forward learn events.
async fn backend_task<D: Dataplane>(
    mut lx: D,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<DpCmd>,
    back: impl Fn(DpEv) -> bool + Send + 'static,
) {
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(DpCmd::Apply(b)) => {
                    let errs = lx.apply(&b).await;
                    if !back(DpEv::Applied(b.id, errs)) { return }
                }
                Some(DpCmd::Reconcile(d)) => {
                    let r = lx.reconcile(&d).await;
                    if !back(DpEv::Reconciled(r)) { return }
                }
                Some(DpCmd::Configure(devs)) => {
                    if let Err(e) = lx.configure(&devs).await {
                        warn!("dataplane: {e}");
                    }
                }
                Some(DpCmd::Lookup { vni, mac, reply }) => {
                    // the asker may have given up (`LOOKUP_WAIT`)
                    let _ = reply.send(lx.lookup(vni, mac).await);
                }
                None => return,
            },
            _ = lx.events_ready() => {
                let ev = lx.drain_events();
                if !ev.is_empty() && !back(DpEv::Learn(ev)) { return }
            }
        }
    }
}

/// Move latency histograms (seconds), kept for `/metrics`.
#[derive(Clone)]
pub struct Latency {
    pub to_update: prometheus_client::metrics::histogram::Histogram,
    pub to_dataplane: prometheus_client::metrics::histogram::Histogram,
}

impl Latency {
    fn new() -> Latency {
        let b = || {
            prometheus_client::metrics::histogram::Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 18),
            )
        };
        Latency {
            to_update: b(),
            to_dataplane: b(),
        }
    }

    fn observe(&self, update_us: Option<u64>, dataplane_us: u64) {
        if let Some(u) = update_us {
            self.to_update.observe(u as f64 / 1e6);
        }
        self.to_dataplane.observe(dataplane_us as f64 / 1e6);
    }
}

pub struct Vtep {
    pub evpn: Evpn,
    mappings: Vec<crate::evpn::Mapping>,
    pub latency: Latency,
    dp: Dp,
    /// Failed ops waiting for their retry, one per entry (by entry key): (due, attempt, op).
    /// What is sent at `due` is what the EVPN layer wants for the entry then.
    retry: std::collections::BTreeMap<String, (Instant, u32, DataplaneOp)>,
    /// Attempts so far of an entry being retried (by entry key).
    attempts: std::collections::HashMap<String, u32>,
    /// Retry batches in flight: id (with `RETRY_BIT`) → the entries they carry; an entry that
    /// comes back without an error is done and forgotten.
    retry_batches: std::collections::HashMap<u64, Vec<String>>,
    next_retry: u64,
    /// Failed dataplane ops, counted once per failure (`vmmi_dataplane_op_failures`).
    pub dp_failures: u64,
    /// Commands sent to a task backend whose answer has not come back yet.
    in_flight: usize,
    /// Start-up reconcile (Linux): done, or waiting for every EVPN neighbor's End-of-RIB (or
    /// `reconcile_at`).
    reconciled: bool,
    reconcile_at: Instant,
    evpn_neighbors: usize,
    eor: std::collections::BTreeSet<String>,
    state_file: Option<PathBuf>,
    state_due: Option<Instant>,
    state_written: Option<Instant>,
    outs: Vec<Output>,
    /// `vmmi vm attach/detach` answers held until the loop turn has handed the learn's
    /// UPDATEs, Map-Notifies/SMRs and dataplane ops on (`release_replies`).
    replies: Vec<oneshot::Sender<Result<(), ReqError>>>,
    /// The state-file write in flight (a blocking task).
    writer: Option<tokio::task::JoinHandle<bool>>,
}

#[derive(Serialize, Deserialize)]
struct SavedSeq {
    vni: u32,
    mac: MacAddr,
    last: u32,
    high: u32,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    sequences: Vec<SavedSeq>,
}

/// The devices `Config` asks of a kernel dataplane: per `[[vni]]` a bridge and a VXLAN
/// device, for an l3 VNI also its VRF device and table.
pub fn vni_devs(c: &Config) -> Vec<VniDev> {
    c.vni
        .iter()
        .map(|v| {
            let mut d = VniDev::l2(v.vni, c.global.vtep);
            d.neigh_suppress = v.arp_nd_suppress;
            if v.kind == VniKind::L3 {
                d.kind = VniDevKind::L3 {
                    vrf: v.vrf.clone().unwrap_or_else(|| format!("vrf{}", v.vni)),
                    table: v.table_id(),
                };
                // the MAC the EVPN layer advertises in the Router's MAC community
                d.router_mac = Some(
                    v.router_mac
                        .unwrap_or(crate::evpn::vni::default_router_mac(c.global.router_id)),
                );
            }
            if let Some(b) = &v.bridge {
                d.bridge = b.clone();
            }
            if let Some(x) = &v.vxlan {
                d.vxlan = x.clone();
            }
            d
        })
        .collect()
}

fn spawn_backend<D: Dataplane + 'static>(
    backend: D,
    back: impl Fn(DpEv) -> bool + Send + 'static,
) -> Dp {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(backend_task(backend, rx, back));
    Dp::Task(tx)
}

/// What `Config` says the EVPN layer is.
pub fn evpn_cfg(c: &Config) -> EvpnCfg {
    let m = &c.mobility;
    EvpnCfg {
        asn: c.global.asn,
        router_id: c.global.router_id,
        vtep: c.global.vtep,
        vnis: c.vni.clone(),
        dad: DadCfg {
            max_moves: m.dad_max_moves,
            window: Duration::from_secs(u64::from(m.dad_window_secs)),
            freeze: (m.dad_freeze_secs > 0)
                .then(|| Duration::from_secs(u64::from(m.dad_freeze_secs))),
        },
        move_log: 4096,
    }
}

impl Vtep {
    /// `None` when no `[[vni]]` is configured (a plain BGP speaker / route reflector).
    pub async fn new(
        c: &Config,
        sp: &mut Speaker,
        now: Instant,
        back: impl Fn(DpEv) -> bool + Send + 'static,
    ) -> anyhow::Result<Option<Vtep>> {
        if c.vni.is_empty() {
            return Ok(None);
        }
        let dp = match c.dataplane.kind {
            DataplaneKind::Memory => Dp::Memory(Memory::new()),
            DataplaneKind::None => Dp::None,
            DataplaneKind::Linux => {
                let mut lx = Linux::new()
                    .map_err(|e| anyhow::anyhow!("dataplane.kind = \"linux\": netlink: {e}"))?;
                let devs = vni_devs(c);
                if let Err(e) = lx.configure(&devs).await {
                    // an L3 VNI on a kernel without VRF support is configured all the same
                    // (bridge, VXLAN device, routes in its table): warn and go on
                    if lx.devices().len() < devs.len() {
                        return Err(anyhow::anyhow!("dataplane: {e}"));
                    }
                    warn!("dataplane: {e}");
                }
                info!(vnis = devs.len(), "linux dataplane: devices ready");
                spawn_backend(lx, back)
            }
        };
        Ok(Some(Vtep::build(c, sp, now, dp)))
    }

    /// A `Vtep` over `backend`, run in its own task as the Linux backend is (its ops may fail
    /// and are retried; a start-up reconcile is sent once the EVPN layer's state is complete).
    /// `[dataplane] kind` is not looked at. `None` when no `[[vni]]` is configured.
    pub fn with_backend<D: Dataplane + 'static>(
        c: &Config,
        sp: &mut Speaker,
        now: Instant,
        backend: D,
        back: impl Fn(DpEv) -> bool + Send + 'static,
    ) -> Option<Vtep> {
        if c.vni.is_empty() {
            return None;
        }
        Some(Vtep::build(c, sp, now, spawn_backend(backend, back)))
    }

    fn build(c: &Config, sp: &mut Speaker, now: Instant, dp: Dp) -> Vtep {
        let mut evpn = Evpn::new(&evpn_cfg(c));
        let state_file =
            Some(PathBuf::from(&c.mobility.state_file)).filter(|p| !p.as_os_str().is_empty());
        if let Some(p) = &state_file {
            match std::fs::read(p) {
                Ok(b) => match serde_json::from_slice::<StateFile>(&b) {
                    Ok(s) => {
                        let v: Vec<_> = s
                            .sequences
                            .iter()
                            .map(|x| (x.vni, x.mac, x.last, x.high))
                            .collect();
                        evpn.restore(&v);
                        info!(file = %p.display(), macs = v.len(), "MAC Mobility sequences restored");
                    }
                    Err(e) => {
                        warn!(file = %p.display(), error = %e, "mobility.state_file unreadable: starting without saved sequences")
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    info!(file = %p.display(), "no saved MAC Mobility sequences (first start)")
                }
                Err(e) => {
                    warn!(file = %p.display(), error = %e, "mobility.state_file cannot be read")
                }
            }
        }
        sp.watch_evpn();
        evpn.start(now);
        for v in evpn.vnis() {
            info!(vni = v.vni, kind = if v.l3 { "l3" } else { "l2" }, rd = %v.rd, export = ?v.export.iter().map(|r| r.to_string()).collect::<Vec<_>>(), "VNI configured");
        }
        let evpn_neighbors = evpn_neighbors(c);
        let reconciled = !matches!(dp, Dp::Task(_));
        Vtep {
            evpn,
            mappings: Vec::new(),
            latency: Latency::new(),
            dp,
            retry: Default::default(),
            attempts: Default::default(),
            retry_batches: Default::default(),
            next_retry: 0,
            dp_failures: 0,
            in_flight: 0,
            reconciled,
            reconcile_at: now
                + Duration::from_secs(u64::from(c.global.graceful_restart_time.max(30))),
            evpn_neighbors,
            eor: Default::default(),
            state_file,
            state_due: None,
            state_written: None,
            outs: Vec::new(),
            replies: Vec::new(),
            writer: None,
        }
    }

    /// SIGHUP: `new` (the effective configuration of `config::reload_plan`) changes the
    /// VNIs or the DAD settings. A kernel backend gets the devices of added VNIs before
    /// their entries, and drops removed VNIs after their entries are deleted; the devices
    /// themselves are left in place (like every entry vmmi did not write, they may be in use).
    pub fn reconfigure(&mut self, old: &Config, new: &Config, sp: &mut Speaker, now: Instant) {
        let (before, after) = (vni_devs(old), vni_devs(new));
        let task = matches!(self.dp, Dp::Task(_));
        if task && before != after {
            let mut union = after.clone();
            union.extend(
                before
                    .iter()
                    .filter(|d| !after.iter().any(|a| a.vni == d.vni))
                    .cloned(),
            );
            self.send_uncounted(DpCmd::Configure(union));
        }
        let changed = self.evpn.reconfigure(now, &evpn_cfg(new), sp.rib());
        for n in &changed {
            match self.evpn.vni(*n) {
                Some(v) => {
                    info!(vni = n, kind = if v.l3 { "l3" } else { "l2" }, rd = %v.rd, export = ?v.export.iter().map(|r| r.to_string()).collect::<Vec<_>>(), "SIGHUP: VNI added or changed")
                }
                None => info!(
                    vni = n,
                    "SIGHUP: VNI removed (its routes withdrawn, its entries deleted; devices left in place)"
                ),
            }
        }
        self.pump(sp, now);
        if task && before != after {
            self.send_uncounted(DpCmd::Configure(after));
        }
        // a retry for a VNI that is gone would fail for ever
        let vnis: std::collections::BTreeSet<u32> = new.vni.iter().map(|v| v.vni).collect();
        self.retry.retain(|_, r| vnis.contains(&r.2.vni()));
        self.evpn_neighbors = evpn_neighbors(new);
    }

    /// Import what the RIB already holds and reconcile at once: a layer created by a reload,
    /// while the sessions were up (their End-of-RIBs are past).
    pub fn start_late(&mut self, sp: &mut Speaker, now: Instant) {
        self.evpn.import_all(now, sp.rib());
        self.pump(sp, now);
        self.reconcile_at = now;
        self.maybe_reconcile(now);
    }

    fn send_uncounted(&mut self, cmd: DpCmd) {
        if let Dp::Task(tx) = &self.dp {
            let _ = tx.send(cmd);
        }
    }

    /// Commands sent to a task backend whose answer has not come back (`dataplane_event`).
    pub fn dp_in_flight(&self) -> usize {
        self.in_flight
    }

    fn send(&mut self, cmd: DpCmd) {
        if let Dp::Task(tx) = &self.dp
            && tx.send(cmd).is_ok()
        {
            self.in_flight += 1;
        }
    }

    /// After every input: routes both ways, then dataplane batches and events.
    pub fn pump(&mut self, sp: &mut Speaker, now: Instant) {
        let mut outs = std::mem::take(&mut self.outs);
        evpn::glue::pump(sp, &mut self.evpn, now, &mut outs);
        for o in outs.drain(..) {
            match o {
                Output::Dataplane(b) => {
                    for op in &b.ops {
                        debug!(?op, "dataplane");
                    }
                    match &mut self.dp {
                        Dp::Memory(m) => {
                            m.apply_now(&b.ops);
                            self.evpn.handle_applied(now, b.id);
                        }
                        // before the start-up reconcile, batches still go out: entries the
                        // kernel kept are replaced in place (idempotent)
                        Dp::Task(_) => self.send(DpCmd::Apply(b)),
                        Dp::None => self.evpn.handle_applied(now, b.id),
                    }
                }
                Output::Event(e) => {
                    if let EvpnEvent::MoveApplied {
                        update_us,
                        dataplane_us,
                        ..
                    } = &e
                    {
                        self.latency.observe(*update_us, *dataplane_us);
                    }
                    log_event(&e)
                }
                // the LISP control plane takes them (`take_mappings`) in this loop turn
                Output::Mapping(m) => self.mappings.push(m),
                Output::Announce(_) | Output::Withdraw { .. } => {}
            }
        }
        self.outs = outs;
        if self.evpn.take_state_dirty() && self.state_file.is_some() && self.state_due.is_none() {
            let at = self
                .state_written
                .map_or(now, |w| (w + STATE_EVERY).max(now));
            self.state_due = Some(at);
        }
    }

    /// Write the state file when due — after the loop has handed this turn's UPDATEs to the
    /// sockets, so the disk write never delays a move's UPDATE (it cost ≈ 0.4 ms of a 1 ms
    /// move in the namespace benchmark when it came first).
    pub fn save_if_due(&mut self, now: Instant) {
        if self.state_due.is_some_and(|t| t <= now) {
            self.save_in_background(now);
        }
    }

    /// Answer the `vm attach/detach` requests of this loop turn: called after the turn's
    /// UPDATEs and LISP datagrams are handed on, so an orchestrator that gets its answer can
    /// rely on the move being announced (a Map-Request right after gets the new locator).
    pub fn release_replies(&mut self) {
        for r in self.replies.drain(..) {
            let _ = r.send(Ok(()));
        }
    }

    /// The EVPN layer's location changes since the last call (for LISP).
    pub fn take_mappings(&mut self) -> Vec<crate::evpn::Mapping> {
        std::mem::take(&mut self.mappings)
    }

    pub fn deadline(&self) -> Option<Instant> {
        let retry = self.retry.values().map(|r| r.0).min();
        let rec = (!self.reconciled).then_some(self.reconcile_at);
        [self.evpn.poll_timeout(), self.state_due, retry, rec]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.evpn.poll_timeout().is_some_and(|t| t <= now) {
            self.evpn.handle_timeout(now);
        }
        self.maybe_reconcile(now);
        // failed ops: retry what the layer wants *now* for the same entry (a newer op may
        // have superseded the failed one)
        let due: Vec<String> = self
            .retry
            .iter()
            .filter(|(_, r)| r.0 <= now)
            .map(|(k, _)| k.clone())
            .collect();
        if matches!(self.dp, Dp::Task(_)) && !due.is_empty() {
            let mut ops = Vec::with_capacity(due.len());
            let mut keys = Vec::with_capacity(due.len());
            for k in due {
                if let Some((_, n, op)) = self.retry.remove(&k) {
                    ops.push(self.evpn.current(&op));
                    self.attempts.insert(k.clone(), n);
                    keys.push(k);
                }
            }
            self.next_retry += 1;
            let id = RETRY_BIT | self.next_retry;
            self.retry_batches.insert(id, keys);
            self.send(DpCmd::Apply(Batch { id, ops }));
        }
    }

    /// A speaker event: End-of-RIB of EVPN from a neighbor counts towards the reconcile.
    pub fn speaker_event(&mut self, e: &Event, now: Instant) {
        if let Event::EndOfRib { peer, family } = e
            && *family == Family::L2VPN_EVPN
        {
            self.eor.insert(peer.clone());
            self.maybe_reconcile(now);
        }
    }

    /// RFC 4724 spirit for the dataplane: reconcile (remove what vmmi owns and no longer
    /// wants) only once every EVPN neighbor has sent its End-of-RIB — the layer's desired
    /// state is then complete — or at the Restart Time; never flush at boot.
    fn maybe_reconcile(&mut self, now: Instant) {
        if self.reconciled || (self.eor.len() < self.evpn_neighbors && now < self.reconcile_at) {
            return;
        }
        self.reconciled = true;
        if matches!(self.dp, Dp::Task(_)) {
            let d = self.evpn.desired();
            info!(
                entries = d.len(),
                eor = self.eor.len(),
                "dataplane: start-up reconcile"
            );
            self.send(DpCmd::Reconcile(d));
        }
    }

    /// What the dataplane task reported.
    pub fn dataplane_event(&mut self, now: Instant, e: DpEv) {
        if matches!(e, DpEv::Applied(..) | DpEv::Reconciled(_)) {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        match e {
            DpEv::Applied(id, errs) => {
                if id & RETRY_BIT == 0 {
                    self.evpn.handle_applied(now, id);
                } else if let Some(keys) = self.retry_batches.remove(&id) {
                    for k in keys {
                        if !errs.iter().any(|e| key_of(&e.op) == k) {
                            self.attempts.remove(&k);
                        }
                    }
                }
                self.failed(now, errs);
            }
            DpEv::Reconciled(r) => {
                // the backend logged the counts
                self.failed(now, r.errors);
            }
            DpEv::Learn(v) => self.evpn.handle_learns(now, v),
            DpEv::Gone(why) => warn!(%why, "linux dataplane task ended"),
        }
    }

    fn failed(&mut self, now: Instant, errs: Vec<OpError>) {
        for e in errs {
            self.dp_failures += 1;
            // a route without a Router's MAC can never be written; when the EVPN layer's
            // route changes, a new op comes (RFC 9135 §8.1)
            if matches!(e.op, DataplaneOp::Route { rmac: None, .. }) {
                warn!(op = ?e.op, reason = %e.reason, "dataplane op refused (not retried)");
                continue;
            }
            let n = self
                .attempts
                .remove(&key_of(&e.op))
                .unwrap_or(0)
                .saturating_add(1);
            let wait = RETRY_MIN.saturating_mul(1 << (n - 1).min(5)).min(RETRY_MAX);
            warn!(op = ?e.op, reason = %e.reason, attempt = n, retry_in_ms = wait.as_millis() as u64, "dataplane op failed");
            // an entry already waiting keeps its turn: one retry per entry
            let k = key_of(&e.op);
            match self.retry.get_mut(&k) {
                Some(r) => {
                    r.1 = r.1.max(n);
                    r.2 = e.op;
                }
                None => {
                    self.retry.insert(k, (now + wait, n, e.op));
                }
            }
        }
    }

    /// The state file's bytes now: the sequences of every MAC that has one.
    fn state_bytes(&self) -> Vec<u8> {
        let s = StateFile {
            version: 1,
            sequences: self
                .evpn
                .snapshot()
                .into_iter()
                .map(|(vni, mac, last, high)| SavedSeq {
                    vni,
                    mac,
                    last,
                    high,
                })
                .collect(),
        };
        serde_json::to_vec(&s).unwrap_or_default()
    }

    /// Write the sequences when due, off the event loop: the snapshot is taken here, the
    /// write and rename run on a blocking thread (`rename` took up to 4.3 ms on tmpfs under
    /// strace in the move benchmark — never on a move's path). One write at a time, so an
    /// older snapshot never lands after a newer one; a due write waits for the one in flight.
    fn save_in_background(&mut self, now: Instant) {
        if let Some(h) = self.writer.take_if(|h| h.is_finished()) {
            // a failed write is tried again in 30 s, not on every change
            use futures::FutureExt;
            if h.now_or_never().is_some_and(|r| r.is_ok_and(|ok| !ok)) {
                self.state_due = Some(now + Duration::from_secs(30));
                return;
            }
        }
        if self.writer.is_some() {
            // the write in flight ends within milliseconds: look again then (not at once:
            // the loop would spin on a due deadline)
            self.state_due = Some(now + Duration::from_millis(10));
            return;
        }
        self.state_due = None;
        let Some(p) = self.state_file.clone() else {
            return;
        };
        let bytes = self.state_bytes();
        self.state_written = Some(now);
        self.writer = Some(tokio::task::spawn_blocking(move || {
            let r = write_state(&p, &bytes);
            if let Err(e) = &r {
                warn!(file = %p.display(), error = %e, "mobility.state_file cannot be written: sequences will not survive a restart (tried again in 30 s)");
            }
            r.is_ok()
        }));
    }

    /// Shutdown: wait for a write in flight, then write the sequences as they are now.
    pub async fn save_final(&mut self) {
        if let Some(h) = self.writer.take() {
            let _ = h.await;
        }
        let Some(p) = &self.state_file else { return };
        if let Err(e) = write_state(p, &self.state_bytes()) {
            warn!(file = %p.display(), error = %e, "mobility.state_file cannot be written: sequences will not survive a restart");
        }
    }

    /// `explain mac`: `x` with what the dataplane holds for the MAC, sent on `reply`. The
    /// memory backend is read inline; a task backend is asked with `DpCmd::Lookup`, and a
    /// small task waits (at most `LOOKUP_WAIT`) for its answer and then replies, so the loop
    /// never waits for the kernel.
    fn explain_with_dataplane(
        &mut self,
        mut x: Explain,
        reply: oneshot::Sender<Result<Explain, ReqError>>,
    ) {
        let (vni, mac) = (x.vni, x.mac);
        let tx = match &self.dp {
            Dp::Memory(m) => {
                x.set_dataplane(Ok(m.entry(vni, mac)));
                let _ = reply.send(Ok(x));
                return;
            }
            Dp::None => {
                x.set_dataplane(Err(
                    "no dataplane: [dataplane] kind = \"none\" programs nothing".to_string(),
                ));
                let _ = reply.send(Ok(x));
                return;
            }
            Dp::Task(tx) => tx,
        };
        let (ltx, lrx) = oneshot::channel();
        if tx
            .send(DpCmd::Lookup {
                vni,
                mac,
                reply: ltx,
            })
            .is_err()
        {
            x.set_dataplane(Err("the dataplane task has ended".to_string()));
            let _ = reply.send(Ok(x));
            return;
        }
        tokio::spawn(async move {
            let held = match tokio::time::timeout(LOOKUP_WAIT, lrx).await {
                Ok(Ok(r)) => r.map_err(|e| e.to_string()),
                Ok(Err(_)) => Err("the dataplane task has ended".to_string()),
                Err(_) => Err(format!(
                    "the dataplane did not answer within {} ms",
                    LOOKUP_WAIT.as_millis()
                )),
            };
            x.set_dataplane(held);
            let _ = reply.send(Ok(x));
        });
    }

    pub fn api(&mut self, now: Instant, req: EvpnReq) {
        let no_vni = |vni: u32| ReqError::NoVni(format!("no vni {vni} is configured"));
        match req {
            EvpnReq::Macs { vni, reply } => {
                let r = match vni {
                    Some(n) if self.evpn.vni(n).is_none() => Err(no_vni(n)),
                    _ => Ok(self.evpn.mac_views(vni, now)),
                };
                let _ = reply.send(r);
            }
            EvpnReq::Vnis(reply) => {
                let _ = reply.send(self.evpn.vni_views());
            }
            EvpnReq::Moves { limit, reply } => {
                let mut v = self.evpn.move_views(now, limit);
                // the wall clock now, minus the time since `now` was read
                let wall = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros() as u64)
                    .saturating_sub(
                        Instant::now().saturating_duration_since(now).as_micros() as u64
                    );
                for m in &mut v {
                    m.started_unix_us = Some(wall.saturating_sub(m.age_us));
                }
                let _ = reply.send(v);
            }
            EvpnReq::Explain { vni, mac, reply } => {
                let r = match self.evpn.explain(vni, mac, now) {
                    Some(x) => return self.explain_with_dataplane(x, reply),
                    None if self.evpn.vni(vni).is_none() => Err(no_vni(vni)),
                    None => Err(ReqError::NoMac(format!(
                        "vni {vni} knows nothing about {mac}"
                    ))),
                };
                let _ = reply.send(r);
            }
            EvpnReq::Vm { event, reply } => {
                let (LearnEvent::Learned { vni, .. } | LearnEvent::Left { vni, .. }) = event;
                let r = match self.evpn.vni(vni) {
                    None => Err(no_vni(vni)),
                    Some(v) if v.l3 => Err(ReqError::WrongVni(format!(
                        "vni {vni} is an l3 VNI: VMs attach to l2 VNIs"
                    ))),
                    Some(_) => {
                        info!(?event, "vm hook");
                        self.evpn.handle_learn(now, event);
                        // answered once this loop turn has sent what the learn caused
                        self.replies.push(reply);
                        return;
                    }
                };
                let _ = reply.send(r);
            }
            EvpnReq::DadClear { vni, mac, reply } => {
                let r = match self.evpn.vni(vni) {
                    None => Err(no_vni(vni)),
                    Some(_) => self.evpn.clear_dad(now, vni, mac).map_err(|e| match e {
                        evpn::DadClearError::UnknownMac => {
                            ReqError::NoMac(format!("no MAC {mac} in vni {vni}"))
                        }
                        evpn::DadClearError::NotFrozen => {
                            ReqError::Conflict(format!("MAC {mac} in vni {vni} is not frozen"))
                        }
                    }),
                };
                let _ = reply.send(r);
            }
        }
    }
}

fn log_event(e: &EvpnEvent) {
    match e {
        EvpnEvent::Learned { vni, mac, ip, seq } => {
            info!(vni, %mac, ?ip, seq, "MAC learned locally")
        }
        EvpnEvent::Left { vni, mac, ip } => info!(vni, %mac, ?ip, "MAC left"),
        EvpnEvent::MovedAway { vni, mac, to, seq } => {
            info!(vni, %mac, %to, seq, "MAC moved away (RFC 7432 §15.1): our route withdrawn")
        }
        EvpnEvent::StickyConflict {
            vni,
            mac,
            static_at,
            other,
        } => {
            warn!(vni, %mac, ?static_at, ?other, "static MAC claimed elsewhere (RFC 7432 §15.2): ignored")
        }
        EvpnEvent::DuplicateDetected {
            vni,
            mac,
            moves,
            window_secs,
        } => {
            warn!(vni, %mac, moves, window_secs, "duplicate MAC detected: frozen (RFC 7432 §15.1); `vmmi dad clear` lifts it")
        }
        EvpnEvent::DuplicateCleared { vni, mac, by_timer } => {
            info!(vni, %mac, by_timer, "duplicate MAC freeze lifted")
        }
        EvpnEvent::Ignored { vni, mac, reason } => warn!(vni, %mac, reason, "learn ignored"),
        EvpnEvent::MoveApplied {
            vni,
            mac,
            id,
            update_us,
            dataplane_us,
        } => debug!(vni, %mac, id, ?update_us, dataplane_us, "move applied"),
    }
}

/// Write-then-rename, so a crash leaves the old file or the new one, never half of one.
fn write_state(p: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(d) = p.parent()
        && !d.as_os_str().is_empty()
    {
        std::fs::create_dir_all(d)?;
    }
    let tmp = p.with_extension("json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, p)
}

/// EVPN neighbors: the End-of-RIBs the start-up reconcile waits for.
fn evpn_neighbors(c: &Config) -> usize {
    c.neighbor
        .iter()
        .filter(|n| n.families.contains(&FamilyCfg::L2vpnEvpn))
        .count()
}

/// Answer an EVPN request when no `[[vni]]` is configured.
pub fn no_evpn(req: EvpnReq) {
    const WHY: &str = "no [[vni]] is configured: the EVPN service layer is off";
    let off = || ReqError::NoVni(WHY.into());
    match req {
        EvpnReq::Macs { vni, reply } => {
            let _ = reply.send(match vni {
                Some(_) => Err(off()),
                None => Ok(Vec::new()),
            });
        }
        EvpnReq::Vnis(reply) => {
            let _ = reply.send(Vec::new());
        }
        EvpnReq::Moves { reply, .. } => {
            let _ = reply.send(Vec::new());
        }
        EvpnReq::Explain { reply, .. } => {
            let _ = reply.send(Err(off()));
        }
        EvpnReq::Vm { reply, .. } | EvpnReq::DadClear { reply, .. } => {
            let _ = reply.send(Err(off()));
        }
    }
}

/// The entry an op is about (for retry bookkeeping).
fn key_of(op: &DataplaneOp) -> String {
    match op {
        DataplaneOp::Fdb { vni, mac, .. } | DataplaneOp::FdbDel { vni, mac } => {
            format!("fdb {vni} {mac}")
        }
        DataplaneOp::Flood { vni, vtep } | DataplaneOp::FloodDel { vni, vtep } => {
            format!("flood {vni} {vtep}")
        }
        DataplaneOp::Neigh { vni, ip, .. } | DataplaneOp::NeighDel { vni, ip } => {
            format!("neigh {vni} {ip}")
        }
        DataplaneOp::Route { vni, prefix, .. } | DataplaneOp::RouteDel { vni, prefix } => {
            format!("route {vni} {prefix}")
        }
    }
}
