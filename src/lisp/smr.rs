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
//!
//! # Retransmission (reliable SMR)
//! An SMR is a UDP datagram; lost, it leaves the ITR with the old mapping until its TTL ends.
//! RFC 9301 §6.1 has the SMR sender go on until the SMR-invoked Map-Request comes back: "The
//! ETRs at the site with the changed mapping record the fact that the site that sent the
//! Map-Request has received the new mapping data ... The ETR then stops sending SMR messages."
//! We are the Map-Resolver that request reaches ("the SMR-invoked Map-Request MUST be sent
//! through the Mapping System", plain or in an ECM), so each SMR sent to an ITR RLOC for an EID
//! stays pending until a Map-Request with the s bit from that ITR (any of its ITR-RLOCs, or the
//! datagram's source) asks for that EID, a prefix covering it or one inside it. Unanswered
//! after `LispTimers::smr_retx` (3 s) it is sent again, at most `smr_retries` (2) times, then
//! given up (counted in `smr_retransmits` / `smr_gave_up`) — the bounds OOR uses for its own
//! SMR-invoked Map-Requests (`OOR_INITIAL_SMR_TIMEOUT 3`, `OOR_MAX_SMR_RETRANSMIT 2`,
//! lisp-anchors.md §1.9 item 2). A retransmission is an SMR like any other for the per-RLOC
//! rate limit above: it waits in the RLOC's queue when the interval has not passed, and its
//! next deadline counts from when it actually leaves. A new change of the same EID restarts
//! the count. At most `LispLimits::max_pending_smrs` SMRs are pending; past that they are sent
//! once.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use super::eid::{EidPrefix, PrefixTable};
use super::map_server::lisp_addr;
use super::timers::{Timer, TimerHandle};
use super::{Lisp, LispEvent, Map, control, hasher};
use crate::wire::lisp::{LispAddr, MapRequest};

#[derive(Clone, Copy, Debug)]
struct Requester {
    rloc: IpAddr,
    src_eid: Option<EidPrefix>,
    expires: Instant,
}

/// An SMR waiting in an RLOC's rate-limit queue: the changed EID, the requester's
/// Source-EID, whether it is a retransmission.
#[derive(Clone, Copy, Debug)]
struct Queued {
    eid: EidPrefix,
    src: Option<EidPrefix>,
    retx: bool,
}

struct RlocState {
    last: Instant,
    queue: VecDeque<Queued>,
    timer: Option<TimerHandle>,
}

/// An SMR sent to an RLOC and not yet answered with an SMR-invoked Map-Request.
#[derive(Clone, Copy, Debug)]
struct Pending {
    eid: EidPrefix,
    src: Option<EidPrefix>,
    /// SMRs sent for this change (the first + retransmissions).
    sent: u8,
    /// The retransmission deadline; `None` while a retransmission waits in the RLOC's queue.
    timer: Option<TimerHandle>,
}

pub(crate) struct Smr {
    requesters: PrefixTable<SmallVec<[Requester; 2]>>,
    total: usize,
    last_sweep: Option<Instant>,
    rlocs: Map<IpAddr, RlocState>,
    pending: Map<IpAddr, SmallVec<[Pending; 2]>>,
    pending_total: usize,
}

impl Smr {
    pub(crate) fn new(seed: u64) -> Smr {
        Smr {
            requesters: PrefixTable::new(seed ^ 0x40),
            total: 0,
            last_sweep: None,
            rlocs: Map::with_hasher(hasher(seed ^ 0x41)),
            pending: Map::with_hasher(hasher(seed ^ 0x42)),
            pending_total: 0,
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
                self.smr_enqueue(
                    now,
                    r.rloc,
                    Queued {
                        eid,
                        src: r.src_eid,
                        retx: false,
                    },
                );
            }
        }
    }

    fn smr_enqueue(&mut self, now: Instant, rloc: IpAddr, q: Queued) {
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
                self.send_smr(now, rloc, q);
            }
            Some(st) => {
                if let Some(old) = st.queue.iter_mut().find(|o| o.eid == q.eid) {
                    // Already waiting; a new change makes it a first SMR again.
                    old.retx &= q.retx;
                    old.src = q.src.or(old.src);
                    return;
                }
                if st.queue.len() >= max_q {
                    self.counters.smr_dropped += 1;
                    if q.retx {
                        self.smr_forget(rloc, q.eid);
                    }
                    return;
                }
                st.queue.push_back(q);
                if !q.retx {
                    // (retransmissions waiting their turn are not counted again)
                    self.counters.smr_queued += 1;
                }
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
                self.send_smr(now, rloc, q);
            }
        }
    }

    /// The per-RLOC interval ended: the next queued SMR, or the RLOC's state is dropped. A
    /// queued retransmission whose SMR-invoked Map-Request has arrived meanwhile is skipped.
    pub(crate) fn on_smr_release(&mut self, now: Instant, rloc: IpAddr) {
        let interval = self.cfg.timers.smr_interval;
        let Some(st) = self.smr.rlocs.get_mut(&rloc) else {
            return;
        };
        st.timer = None;
        let pending = self.smr.pending.get(&rloc);
        let next = std::iter::from_fn(|| st.queue.pop_front())
            .find(|q| !q.retx || pending.is_some_and(|v| v.iter().any(|p| p.eid == q.eid)));
        match next {
            Some(q) => {
                st.last = now;
                st.timer = Some(
                    self.timers
                        .schedule(now + interval, Timer::SmrRelease(rloc)),
                );
                self.send_smr(now, rloc, q);
            }
            None => {
                self.smr.rlocs.remove(&rloc);
            }
        }
    }

    /// A retransmission deadline: the SMR goes again (through the rate limit), or after
    /// `smr_retries` retransmissions it is given up.
    pub(crate) fn on_smr_retx(
        &mut self,
        now: Instant,
        h: TimerHandle,
        rloc: IpAddr,
        eid: EidPrefix,
    ) {
        let retries = self.cfg.timers.smr_retries;
        let Some(p) = self
            .smr
            .pending
            .get_mut(&rloc)
            .and_then(|v| v.iter_mut().find(|p| p.eid == eid && p.timer == Some(h)))
        else {
            return;
        };
        p.timer = None;
        if p.sent > retries {
            self.smr_forget(rloc, eid);
            self.counters.smr_gave_up += 1;
            self.event(LispEvent::SmrGaveUp {
                to: control(rloc),
                eid,
            });
            return;
        }
        let src = p.src;
        self.smr_enqueue(
            now,
            rloc,
            Queued {
                eid,
                src,
                retx: true,
            },
        );
    }

    /// A Map-Request with the s bit reached our Map-Resolver: the SMRs it answers (sent to one
    /// of its ITR-RLOCs or its source, for an EID it asks for, covers or lies inside) stop.
    pub(crate) fn smr_answered(&mut self, from: IpAddr, req: &MapRequest) {
        if self.smr.pending.is_empty() {
            return;
        }
        let asked: SmallVec<[EidPrefix; 2]> = req
            .records
            .iter()
            .filter_map(|r| EidPrefix::from_wire(r.mask_len, &r.eid).ok().map(|x| x.0))
            .collect();
        let rlocs = req
            .itr_rlocs
            .iter()
            .filter_map(|a| match a {
                LispAddr::Ipv4(x) => Some(IpAddr::V4(*x)),
                LispAddr::Ipv6(x) => Some(IpAddr::V6(*x)),
                _ => None,
            })
            .chain(std::iter::once(from));
        let mut gone: SmallVec<[(IpAddr, EidPrefix); 2]> = SmallVec::new();
        for rloc in rlocs {
            if let Some(v) = self.smr.pending.get(&rloc) {
                for p in v {
                    if asked
                        .iter()
                        .any(|a| a.contains(&p.eid) || p.eid.contains(a))
                    {
                        gone.push((rloc, p.eid));
                    }
                }
            }
        }
        for (rloc, eid) in gone {
            self.smr_forget(rloc, eid);
        }
    }

    /// Drops the pending SMR for (`rloc`, `eid`) and cancels its deadline.
    fn smr_forget(&mut self, rloc: IpAddr, eid: EidPrefix) {
        let Some(v) = self.smr.pending.get_mut(&rloc) else {
            return;
        };
        let Some(i) = v.iter().position(|p| p.eid == eid) else {
            return;
        };
        let p = v.swap_remove(i);
        if v.is_empty() {
            self.smr.pending.remove(&rloc);
        }
        self.smr.pending_total = self.smr.pending_total.saturating_sub(1);
        if let Some(h) = p.timer {
            self.timers.cancel(h);
        }
    }

    /// Remembers that an SMR left for (`rloc`, `eid`) and sets its retransmission deadline;
    /// the SMRs sent for this change so far (`None`: not tracked).
    fn smr_track_sent(&mut self, now: Instant, rloc: IpAddr, q: Queued) -> Option<u8> {
        if self.cfg.timers.smr_retries == 0 {
            return None;
        }
        let at = now + self.cfg.timers.smr_retx;
        let timer = Timer::SmrRetx { rloc, eid: q.eid };
        let full = self.smr.pending_total >= self.cfg.limits.max_pending_smrs;
        let v = self.smr.pending.entry(rloc).or_default();
        match v.iter_mut().find(|p| p.eid == q.eid) {
            Some(p) => {
                p.sent = if q.retx { p.sent.saturating_add(1) } else { 1 };
                p.src = q.src;
                p.timer = Some(self.timers.reschedule(p.timer, at, timer));
                Some(p.sent)
            }
            None if full => {
                if v.is_empty() {
                    self.smr.pending.remove(&rloc);
                }
                None
            }
            None => {
                v.push(Pending {
                    eid: q.eid,
                    src: q.src,
                    sent: 1,
                    timer: Some(self.timers.schedule(at, timer)),
                });
                self.smr.pending_total += 1;
                Some(1)
            }
        }
    }

    fn send_smr(&mut self, now: Instant, rloc: IpAddr, q: Queued) {
        let Queued { eid, src, retx } = q;
        let mac_afi = self.cfg.mac_afi;
        let (source_eid, _) = eid.to_wire(mac_afi);
        let target = src.unwrap_or(eid);
        let (addr, mask_len) = target.to_wire(mac_afi);
        let mut req = MapRequest::new(self.rng.nonce(), lisp_addr(self.cfg.rloc), addr, mask_len);
        req.smr = true;
        req.dont_map_reply = true;
        req.source_eid = source_eid;
        let mut bytes = Vec::with_capacity(64);
        req.encode(&mut bytes);
        let to = control(rloc);
        self.counters.smr_tx += 1;
        self.send(to, bytes);
        let sent = self.smr_track_sent(now, rloc, q);
        if retx {
            self.counters.smr_retransmits += 1;
            let attempt = sent.unwrap_or(1);
            self.event(LispEvent::SmrRetransmit { to, eid, attempt });
        } else {
            self.event(LispEvent::SmrSent { to, eid });
        }
    }

    /// Requesters remembered (for tests of boundedness).
    pub fn smr_requesters(&self) -> usize {
        self.smr.total
    }

    /// SMRs sent and not yet answered by an SMR-invoked Map-Request (for tests).
    pub fn pending_smrs(&self) -> usize {
        self.smr.pending_total
    }
}
