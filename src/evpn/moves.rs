//! The move log: every change of a MAC's location, with the time of each step.
//!
//! Owns: a bounded ring of `MoveRecord`s and the pending "dataplane applied" marks.
//! Must not: decide anything — `evpn::Evpn` reports steps here.
//!
//! Steps, as this speaker sees them:
//! - the MAC moved *to us* (learned locally): `learned` → `advertised` (our UPDATE handed to
//!   BGP) → `old-withdrawn` (the old VTEP's route left our RIB) → `dataplane` (our remote
//!   entry for the MAC removed);
//! - the MAC moved *away from us* or between two other VTEPs: `route-seen` (the winning route
//!   arrived) → `withdrawn` (we withdrew ours, when it was ours) → `dataplane` (the FDB
//!   points at the new VTEP) → `old-withdrawn`.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Instant;

use serde::Serialize;

use crate::rib::mac_mobility::MoveReason;
use crate::wire::types::MacAddr;

/// Where a MAC is, as one speaker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "at", content = "vtep")]
pub enum Loc {
    Local,
    Remote(IpAddr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Learned,
    RouteSeen,
    Advertised,
    Withdrawn,
    OldWithdrawn,
    Dataplane,
}

#[derive(Clone, Debug)]
pub struct MoveRecord {
    pub id: u64,
    pub vni: u32,
    pub mac: MacAddr,
    pub from: Loc,
    pub to: Loc,
    pub seq: u32,
    pub reason: MoveReason,
    /// Counted by duplicate-address detection (one side of the move is this speaker).
    pub counted: bool,
    pub at: Instant,
    pub steps: Vec<(Step, Instant)>,
}

impl MoveRecord {
    pub fn has(&self, s: Step) -> bool {
        self.steps.iter().any(|(x, _)| *x == s)
    }

    /// When step `s` happened, after the move started.
    pub fn after(&self, s: Step) -> Option<std::time::Duration> {
        let (_, t) = self.steps.iter().find(|(x, _)| *x == s)?;
        Some(t.saturating_duration_since(self.at))
    }
}

/// Recent moves, oldest first; at most `cap`.
#[derive(Debug)]
pub struct MoveLog {
    ring: VecDeque<MoveRecord>,
    cap: usize,
    next: u64,
    /// (batch id, move id): moves whose dataplane step completes with that batch.
    awaiting: VecDeque<(u64, u64)>,
    /// Moves recorded since start (not bounded by the ring).
    pub total: u64,
    done: Vec<u64>,
}

impl MoveLog {
    pub fn new(cap: usize) -> MoveLog {
        MoveLog {
            ring: VecDeque::new(),
            cap: cap.max(1),
            next: 1,
            awaiting: VecDeque::new(),
            total: 0,
            done: Vec::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        now: Instant,
        vni: u32,
        mac: MacAddr,
        from: Loc,
        to: Loc,
        seq: u32,
        reason: MoveReason,
        counted: bool,
        first: Step,
    ) -> u64 {
        let id = self.next;
        self.next += 1;
        self.total += 1;
        if self.ring.len() == self.cap {
            self.ring.pop_front();
        }
        self.ring.push_back(MoveRecord {
            id,
            vni,
            mac,
            from,
            to,
            seq,
            reason,
            counted,
            at: now,
            steps: vec![(first, now)],
        });
        id
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut MoveRecord> {
        let first = self.ring.front()?.id;
        let i = usize::try_from(id.checked_sub(first)?).ok()?;
        self.ring.get_mut(i).filter(|r| r.id == id)
    }

    pub fn get(&self, id: u64) -> Option<&MoveRecord> {
        let first = self.ring.front()?.id;
        let i = usize::try_from(id.checked_sub(first)?).ok()?;
        self.ring.get(i).filter(|r| r.id == id)
    }

    /// Mark a step once (the first time it happens counts).
    pub fn step(&mut self, id: u64, s: Step, now: Instant) {
        if let Some(r) = self.get_mut(id)
            && !r.has(s)
        {
            r.steps.push((s, now));
            if s == Step::Dataplane {
                self.done.push(id);
            }
        }
    }

    /// Moves whose dataplane step was reached since the last call.
    pub fn take_done(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.done)
    }

    /// The move's dataplane step completes when batch `batch` is applied.
    pub fn await_batch(&mut self, id: u64, batch: u64) {
        self.awaiting.push_back((batch, id));
    }

    /// Batches up to `batch` are applied.
    pub fn applied(&mut self, batch: u64, now: Instant) {
        while let Some(&(b, id)) = self.awaiting.front() {
            if b > batch {
                break;
            }
            self.awaiting.pop_front();
            self.step(id, Step::Dataplane, now);
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &MoveRecord> {
        self.ring.iter()
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}
