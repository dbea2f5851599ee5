//! Solicit-Map-Request from the Map-Server (RFC 9301 §6.1; the Map-Server-originated SMR of
//! draft-rodrigueznatal-lisp-ms-smr, lisp-anchors.md §1.9 item 5): remember which ITRs asked
//! for each EID while their answer is cached, and when the mapping changes send each an SMR.
//!
//! Owns: requesters per EID-prefix (with the TTL of the answer they got), per-RLOC SMR rate
//! limit and queue, the SMR message.
//! Must not: answer Map-Requests or decide mappings.
//!
//! RFC 9301 §6.1: "Both the SMR sender and the SMR responder MUST rate limit these messages.
//! It is RECOMMENDED that the SMR sender rate limit a Map-Request for the same destination
//! RLOC to no more than one packet every 3 seconds." SMRs over the limit wait in a per-RLOC
//! queue (at most `max_smr_queue`, one entry per EID) and leave one per interval.
//!
//! The SMR carries the changed EID as Source-EID and, as its record, the requester's own
//! Source-EID when it sent one (OOR acts on an SMR only if "Its EID-record must be one of
//! OOR's local EIDs" and "Its source EID must be in OOR's map-cache", lab/oor/README.md step
//! 4), else the changed EID. S = 1 and D = 1 (§5.2: "When an xTR sends an SMR message, it
//! doesn't need a Map-Reply returned"). A requester is forgotten once solicited: its
//! SMR-invoked Map-Request, answered through the mapping system, registers it again.
//! Requesters whose RLOC is a subscriber's ITR-RLOC are skipped: they get the publication.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use super::eid::{EidPrefix, PrefixTable};
use super::map_server::lisp_addr;
use super::timers::{Timer, TimerHandle};
use super::{Lisp, LispEvent, Map, control, hasher};
use crate::wire::lisp::{Bits, MapRequest, RequestRecord};

#[derive(Clone, Copy, Debug)]
struct Requester {
    rloc: IpAddr,
    src_eid: Option<EidPrefix>,
    expires: Instant,
}

struct RlocState {
    last: Instant,
    queue: VecDeque<(EidPrefix, Option<EidPrefix>)>,
    timer: Option<TimerHandle>,
}

pub(crate) struct Smr {
    requesters: PrefixTable<SmallVec<[Requester; 2]>>,
    total: usize,
    last_sweep: Option<Instant>,
    rlocs: Map<IpAddr, RlocState>,
}

impl Smr {
    pub(crate) fn new(seed: u64) -> Smr {
        Smr {
            requesters: PrefixTable::new(seed ^ 0x40),
            total: 0,
            last_sweep: None,
            rlocs: Map::with_hasher(hasher(seed ^ 0x41)),
        }
    }
}

impl Lisp {
    /// `rloc` was answered about `eid` (positively or negatively) for `ttl_minutes`.
    pub(crate) fn smr_track(
        &mut self,
        now: Instant,
        eid: EidPrefix,
        rloc: IpAddr,
        src_eid: Option<EidPrefix>,
        ttl_minutes: u32,
    ) {
        if !self.cfg.smr || ttl_minutes == 0 {
            return;
        }
        let expires = now + Duration::from_secs(u64::from(ttl_minutes).saturating_mul(60));
        let per_eid = self.cfg.limits.max_requesters_per_eid.max(1);
        let s = &mut self.smr;
        if let Some(v) = s.requesters.get_mut(&eid)
            && let Some(r) = v.iter_mut().find(|r| r.rloc == rloc)
        {
            r.expires = r.expires.max(expires);
            if src_eid.is_some() {
                r.src_eid = src_eid;
            }
            return;
        }
        if s.total >= self.cfg.limits.max_requesters {
            // Full: drop expired requesters, at most once a second.
            if s.last_sweep
                .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
            {
                s.last_sweep = Some(now);
                let mut gone = Vec::new();
                let mut removed = 0;
                for (k, v) in s.requesters.iter() {
                    let live = v.iter().filter(|r| r.expires > now).count();
                    removed += v.len() - live;
                    if live == 0 {
                        gone.push(*k);
                    }
                }
                for k in &gone {
                    s.requesters.remove(k);
                }
                let keys: Vec<EidPrefix> = s.requesters.iter().map(|(k, _)| *k).collect();
                for k in keys {
                    if let Some(v) = s.requesters.get_mut(&k) {
                        v.retain(|r| r.expires > now);
                    }
                }
                s.total = s.total.saturating_sub(removed);
            }
            if s.total >= self.cfg.limits.max_requesters {
                return;
            }
        }
        let v = s.requesters.get_or_insert_with(eid, SmallVec::new);
        let r = Requester {
            rloc,
            src_eid,
            expires,
        };
        if v.len() < per_eid {
            v.push(r);
            s.total += 1;
        } else if let Some(old) = v.iter_mut().min_by_key(|r| r.expires) {
            *old = r;
        }
    }

    /// The mapping of `eid` changed: solicit every ITR that may have it cached.
    pub(crate) fn smr_on_change(&mut self, now: Instant, eid: EidPrefix) {
        let keys = self.smr.requesters.covering(&eid);
        for k in keys {
            let Some(v) = self.smr.requesters.remove(&k) else {
                continue;
            };
            self.smr.total = self.smr.total.saturating_sub(v.len());
            for r in v {
                if r.expires <= now || self.publishes_to(&eid, r.rloc) {
                    continue;
                }
                self.smr_enqueue(now, r.rloc, eid, r.src_eid);
            }
        }
    }

    fn smr_enqueue(&mut self, now: Instant, rloc: IpAddr, eid: EidPrefix, src: Option<EidPrefix>) {
        let interval = self.cfg.timers.smr_interval;
        let max_q = self.cfg.limits.max_smr_queue;
        match self.smr.rlocs.get_mut(&rloc) {
            Some(st) if st.queue.is_empty() && now >= st.last + interval => {
                // The interval has passed (its release timer may not have fired yet).
                st.last = now;
                st.timer = Some(self.timers.reschedule(
                    st.timer,
                    now + interval,
                    Timer::SmrRelease(rloc),
                ));
                self.send_smr(rloc, eid, src);
            }
            Some(st) => {
                if st.queue.iter().any(|(e, _)| *e == eid) {
                    return;
                }
                if st.queue.len() >= max_q {
                    self.counters.smr_dropped += 1;
                    return;
                }
                st.queue.push_back((eid, src));
                self.counters.smr_queued += 1;
                if st.timer.is_none() {
                    let at = (st.last + interval).max(now);
                    st.timer = Some(self.timers.schedule(at, Timer::SmrRelease(rloc)));
                }
            }
            None => {
                let timer = self
                    .timers
                    .schedule(now + interval, Timer::SmrRelease(rloc));
                self.smr.rlocs.insert(
                    rloc,
                    RlocState {
                        last: now,
                        queue: VecDeque::new(),
                        timer: Some(timer),
                    },
                );
                self.send_smr(rloc, eid, src);
            }
        }
    }

    /// The per-RLOC interval ended: the next queued SMR, or the RLOC's state is dropped.
    pub(crate) fn on_smr_release(&mut self, now: Instant, rloc: IpAddr) {
        let interval = self.cfg.timers.smr_interval;
        let Some(st) = self.smr.rlocs.get_mut(&rloc) else {
            return;
        };
        st.timer = None;
        match st.queue.pop_front() {
            Some((eid, src)) => {
                st.last = now;
                st.timer = Some(
                    self.timers
                        .schedule(now + interval, Timer::SmrRelease(rloc)),
                );
                self.send_smr(rloc, eid, src);
            }
            None => {
                self.smr.rlocs.remove(&rloc);
            }
        }
    }

    fn send_smr(&mut self, rloc: IpAddr, eid: EidPrefix, src: Option<EidPrefix>) {
        let mac_afi = self.cfg.mac_afi;
        let (source_eid, _) = eid.to_wire(mac_afi);
        let target = src.unwrap_or(eid);
        let (addr, mask_len) = target.to_wire(mac_afi);
        let req = MapRequest {
            authoritative: false,
            probe: false,
            smr: true,
            pitr: false,
            smr_invoked: false,
            r: false,
            reserved: Bits::new(0),
            local_xtr: false,
            dont_map_reply: true,
            nonce: self.rng.nonce(),
            source_eid,
            itr_rlocs: vec![lisp_addr(self.cfg.rloc)],
            records: vec![RequestRecord {
                notify: false,
                reserved: Bits::new(0),
                mask_len,
                eid: addr,
            }],
            map_reply: None,
            xtr: None,
        };
        let mut bytes = Vec::with_capacity(64);
        req.encode(&mut bytes);
        let to = control(rloc);
        self.counters.smr_tx += 1;
        self.send(to, bytes);
        self.event(LispEvent::SmrSent { to, eid });
    }

    /// Requesters remembered (for tests of boundedness).
    pub fn smr_requesters(&self) -> usize {
        self.smr.total
    }
}
