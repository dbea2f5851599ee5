//! The runtime side of the EVPN layer: one `Evpn` core next to the speaker, its dataplane
//! backend, the MAC Mobility state file, and the API requests about MACs, VNIs and moves.
//!
//! Owns: the backend object, the state file I/O (write-then-rename, at most once a second and
//! at shutdown), turning EVPN events into log lines and counters.
//! Must not: decide anything about routes or MACs (that is `evpn/`).

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // runtime/: the clock and files live here

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::bgp::Speaker;
use crate::config::{Config, DataplaneKind};
use crate::dataplane::LearnEvent;
use crate::dataplane::memory::Memory;
use crate::evpn::view::{Explain, MacView, MoveView, VniView};
use crate::evpn::{self, Evpn, EvpnCfg, EvpnEvent, Output};
use crate::rib::mac_mobility::DadCfg;
use crate::wire::types::MacAddr;

/// How often the state file is written at most.
const STATE_EVERY: Duration = Duration::from_secs(1);

/// API requests about the EVPN layer.
pub enum EvpnReq {
    Macs {
        vni: Option<u32>,
        reply: oneshot::Sender<Vec<MacView>>,
    },
    Vnis(oneshot::Sender<Vec<VniView>>),
    Moves {
        limit: usize,
        reply: oneshot::Sender<Vec<MoveView>>,
    },
    Explain {
        vni: u32,
        mac: MacAddr,
        reply: oneshot::Sender<Result<Explain, String>>,
    },
    /// `vmmi vm attach/detach` (the orchestrator hook): a learn event like the dataplane's.
    Vm {
        event: LearnEvent,
        reply: oneshot::Sender<Result<(), String>>,
    },
    DadClear {
        vni: u32,
        mac: MacAddr,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// The dataplane backends this build runs.
enum Dp {
    Memory(Memory),
    /// `[dataplane] kind = "none"`: nothing is programmed (a route server / DC GW without
    /// forwarding).
    None,
}

pub struct Vtep {
    pub evpn: Evpn,
    dp: Dp,
    state_file: Option<PathBuf>,
    state_due: Option<Instant>,
    state_written: Option<Instant>,
    outs: Vec<Output>,
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
    pub fn new(c: &Config, sp: &mut Speaker, now: Instant) -> anyhow::Result<Option<Vtep>> {
        if c.vni.is_empty() {
            return Ok(None);
        }
        let dp = match c.dataplane.kind {
            DataplaneKind::Memory => Dp::Memory(Memory::new()),
            DataplaneKind::None => Dp::None,
            DataplaneKind::Linux => anyhow::bail!(
                "dataplane.kind: \"linux\" is not available in this build yet (the kernel VXLAN backend is issue 4); use \"memory\" or \"none\""
            ),
        };
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
        Ok(Some(Vtep {
            evpn,
            dp,
            state_file,
            state_due: None,
            state_written: None,
            outs: Vec::new(),
        }))
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
                        Dp::Memory(m) => m.apply_now(&b.ops),
                        Dp::None => {}
                    }
                    self.evpn.handle_applied(now, b.id);
                }
                Output::Event(e) => log_event(&e),
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
        if self.state_due.is_some_and(|t| t <= now) {
            self.save(now);
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        match (self.evpn.poll_timeout(), self.state_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.evpn.poll_timeout().is_some_and(|t| t <= now) {
            self.evpn.handle_timeout(now);
        }
    }

    /// Write the sequences now (shutdown, or when due).
    pub fn save(&mut self, now: Instant) {
        self.state_due = None;
        let Some(p) = &self.state_file else { return };
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
        let tmp = p.with_extension("json.tmp");
        let r = (|| -> std::io::Result<()> {
            if let Some(d) = p.parent()
                && !d.as_os_str().is_empty()
            {
                std::fs::create_dir_all(d)?;
            }
            std::fs::write(&tmp, serde_json::to_vec(&s).unwrap_or_default())?;
            std::fs::rename(&tmp, p)
        })();
        match r {
            Ok(()) => self.state_written = Some(now),
            Err(e) => {
                warn!(file = %p.display(), error = %e, "mobility.state_file cannot be written: sequences will not survive a restart");
                // try again later, not on every input
                self.state_written = Some(now + Duration::from_secs(30));
            }
        }
    }

    /// Where the memory dataplane points a MAC (API `explain`).
    fn dp_entry(&self, vni: u32, mac: MacAddr) -> Option<IpAddr> {
        match &self.dp {
            Dp::Memory(m) => m.vtep_of(vni, mac),
            Dp::None => None,
        }
    }

    pub fn api(&mut self, now: Instant, req: EvpnReq) {
        match req {
            EvpnReq::Macs { vni, reply } => {
                let _ = reply.send(self.evpn.mac_views(vni, now));
            }
            EvpnReq::Vnis(reply) => {
                let _ = reply.send(self.evpn.vni_views());
            }
            EvpnReq::Moves { limit, reply } => {
                let _ = reply.send(self.evpn.move_views(now, limit));
            }
            EvpnReq::Explain { vni, mac, reply } => {
                let r = match self.evpn.explain(vni, mac, now) {
                    Some(mut x) => {
                        x.dataplane = self.dp_entry(vni, mac).or(x.dataplane);
                        Ok(x)
                    }
                    None if self.evpn.vni(vni).is_none() => Err(format!("no vni {vni}")),
                    None => Err(format!("vni {vni} knows nothing about {mac}")),
                };
                let _ = reply.send(r);
            }
            EvpnReq::Vm { event, reply } => {
                let (LearnEvent::Learned { vni, .. } | LearnEvent::Left { vni, .. }) = event;
                let r = match self.evpn.vni(vni) {
                    None => Err(format!("no vni {vni} is configured")),
                    Some(v) if v.l3 => {
                        Err(format!("vni {vni} is an l3 VNI: VMs attach to l2 VNIs"))
                    }
                    Some(_) => {
                        info!(?event, "vm hook");
                        self.evpn.handle_learn(now, event);
                        Ok(())
                    }
                };
                let _ = reply.send(r);
            }
            EvpnReq::DadClear { vni, mac, reply } => {
                let _ = reply.send(self.evpn.clear_dad(now, vni, mac));
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
    }
}

/// Answer an EVPN request when no `[[vni]]` is configured.
pub fn no_evpn(req: EvpnReq) {
    const WHY: &str = "no [[vni]] is configured: the EVPN service layer is off";
    match req {
        EvpnReq::Macs { reply, .. } => {
            let _ = reply.send(Vec::new());
        }
        EvpnReq::Vnis(reply) => {
            let _ = reply.send(Vec::new());
        }
        EvpnReq::Moves { reply, .. } => {
            let _ = reply.send(Vec::new());
        }
        EvpnReq::Explain { reply, .. } => {
            let _ = reply.send(Err(WHY.into()));
        }
        EvpnReq::Vm { reply, .. } | EvpnReq::DadClear { reply, .. } => {
            let _ = reply.send(Err(WHY.into()));
        }
    }
}
