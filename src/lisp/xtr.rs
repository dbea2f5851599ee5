//! The xTR role: register local EIDs with the configured Map-Servers, resolve and cache remote
//! mappings through the Map-Resolver, subscribe to them (RFC 9437), and act on SMRs and
//! publications.
//!
//! Owns: local EIDs, per-Map-Server registration state (periodic and quick timers,
//! unconfirmed Map-Registers), the map-cache, outstanding Map-Requests, subscriber-side
//! nonces, the SMR-responder rate limit.
//! Must not: answer Map-Requests (we always register with the P bit, RFC 9301 §8.2 "An ETR
//! MAY also request ... that a Map-Server answer Map-Requests instead of forwarding them").
//!
//! Registration (RFC 9301 §8.2): "Map-Register messages are sent periodically from an ETR to
//! a Map-Server with a suggested interval between messages of one minute ... When first
//! contacting a Map-Server after restart or changes to its EID-to-RLOC database mappings, an
//! ETR MAY initially send Map-Register messages at an increased frequency, up to one every
//! 20 seconds. This 'quick registration' period is limited to five minutes in duration." A
//! change is registered at once (a Map-Register with only the changed EIDs) — mobility cannot
//! wait for the next period — and starts the quick period. Every Map-Register sets M and is
//! retransmitted (§5.7: "if a Map-Notify is not received after 1 second, the transmitter MUST
//! retransmit ... with an exponential backoff ... the maximum backoff is 1 minute"), with a
//! new nonce each time (§5.6: the nonce "is incremented each time a Map-Register message is
//! sent"), at most `REGISTER_TRIES` times; the next periodic registration supersedes it.
//! An EID that leaves is deregistered with a Record TTL of 0.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::eid::{EidPrefix, PrefixTable};
use super::map_server::{ip_of, lisp_addr, locator_for};
use super::resolver::inner_header;
use super::timers::{Timer, TimerHandle};
use super::{CacheSource, DropReason, Lisp, LispCoreCfg, LispEvent, Map, control, hasher};
use crate::wire::lisp::auth::{AuthParams, compute_auth, lengths, verify};
use crate::wire::lisp::register::AUTH_DATA_OFFSET;
use crate::wire::lisp::{
    Act, Bits, Ecm, EidRecord, LispAddr, LispMsg, Locator, MapNotify, MapRegister, MapReply,
    MapRequest, XtrTrailer, sign,
};

/// Sends of one Map-Register (first + retransmissions) before it is left to the next
/// periodic registration: 1 + 2 + 4 + 8 + 16 + 32 + 60 s.
const REGISTER_TRIES: u8 = 8;

struct Inflight {
    nonce: u64,
    eids: Vec<(EidPrefix, bool)>,
    attempt: u8,
    backoff: Duration,
    timer: TimerHandle,
}

struct MsState {
    periodic: Option<TimerHandle>,
    quick_until: Option<Instant>,
    inflight: BTreeMap<u64, Inflight>,
}

#[derive(Clone, Debug)]
struct CacheEntry {
    locators: Vec<Locator>,
    act: Act,
    version: u16,
    ttl: u32,
    timer: TimerHandle,
    via: CacheSource,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Plain,
    Subscribe,
    SmrInvoked,
}

struct PendingRequest {
    nonce: u64,
    tries: u8,
    timer: TimerHandle,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Pending,
    Active,
    Unsubscribing,
    Inactive,
}

#[derive(Clone, Copy, Debug)]
struct SubState {
    /// The last nonce accepted (or the one before our request's).
    last: u64,
    phase: Phase,
}

pub(crate) struct Xtr {
    local: BTreeMap<EidPrefix, u16>,
    servers: Vec<MsState>,
    next_inflight: u64,
    nonce_ctr: u64,
    cache: PrefixTable<CacheEntry>,
    requests: Map<EidPrefix, PendingRequest>,
    by_nonce: Map<u64, EidPrefix>,
    smr_last: Map<EidPrefix, Instant>,
    subs: PrefixTable<SubState>,
}

impl Xtr {
    pub(crate) fn new(cfg: &LispCoreCfg, seed: u64) -> Xtr {
        Xtr {
            local: BTreeMap::new(),
            servers: cfg
                .map_servers
                .iter()
                .map(|_| MsState {
                    periodic: None,
                    quick_until: None,
                    inflight: BTreeMap::new(),
                })
                .collect(),
            next_inflight: 0,
            nonce_ctr: 0,
            cache: PrefixTable::new(seed ^ 0x50),
            requests: Map::with_hasher(hasher(seed ^ 0x51)),
            by_nonce: Map::with_hasher(hasher(seed ^ 0x52)),
            smr_last: Map::with_hasher(hasher(seed ^ 0x53)),
            subs: PrefixTable::new(seed ^ 0x54),
        }
    }
}

impl Lisp {
    /// The EVPN feed (xTR role).
    pub(crate) fn xtr_set_mapping(
        &mut self,
        now: Instant,
        eid: EidPrefix,
        rloc: Option<IpAddr>,
        version: u16,
    ) {
        if rloc == Some(self.cfg.rloc) {
            if self.xtr.local.get(&eid) == Some(&version) {
                return;
            }
            self.xtr.local.insert(eid, version);
            for ms in 0..self.xtr.servers.len() {
                self.send_register(now, ms, vec![(eid, false)]);
                self.start_quick(now, ms);
            }
        } else if self.xtr.local.remove(&eid).is_some() {
            for ms in 0..self.xtr.servers.len() {
                self.send_register(now, ms, vec![(eid, true)]);
                self.start_quick(now, ms);
            }
        }
    }

    /// Starts (or extends) the quick-registration period: the next periodic Map-Register in
    /// 20 s at most.
    fn start_quick(&mut self, now: Instant, ms: usize) {
        let t = &self.cfg.timers;
        let (quick, period) = (t.quick_register_interval, t.quick_register_period);
        let Some(s) = self.xtr.servers.get_mut(ms) else {
            return;
        };
        s.quick_until = Some(now + period);
        let due = now + quick;
        if s.periodic.is_none_or(|h| h.at() > due) {
            s.periodic = Some(self.timers.reschedule(s.periodic, due, Timer::Register(ms)));
        }
    }

    pub(crate) fn on_register_timer(&mut self, now: Instant, ms: usize) {
        let (quick, normal) = (
            self.cfg.timers.quick_register_interval,
            self.cfg.timers.register_interval,
        );
        let Some(s) = self.xtr.servers.get_mut(ms) else {
            return;
        };
        s.periodic = None;
        if self.xtr.local.is_empty() {
            return;
        }
        // The periodic registration supersedes unconfirmed ones (deregistrations excepted).
        let superseded: Vec<u64> = s
            .inflight
            .iter()
            .filter(|(_, f)| f.eids.iter().all(|(_, dereg)| !dereg))
            .map(|(id, _)| *id)
            .collect();
        for id in superseded {
            if let Some(f) = s.inflight.remove(&id) {
                self.timers.cancel(f.timer);
            }
        }
        let interval = if s.quick_until.is_some_and(|q| now < q) {
            quick
        } else {
            normal
        };
        s.periodic = Some(self.timers.schedule(now + interval, Timer::Register(ms)));
        let eids: Vec<(EidPrefix, bool)> = self.xtr.local.keys().map(|e| (*e, false)).collect();
        let per = self.cfg.limits.register_records_per_message.max(1);
        for chunk in eids.chunks(per) {
            self.send_register(now, ms, chunk.to_vec());
        }
    }

    fn next_register_nonce(&mut self) -> u64 {
        self.xtr.nonce_ctr += 1;
        self.cfg.nonce_seed.wrapping_add(self.xtr.nonce_ctr)
    }

    /// Builds and signs a Map-Register for `eids` (`true` = deregister) to map-server `ms`.
    fn register_bytes(&self, ms: usize, nonce: u64, eids: &[(EidPrefix, bool)]) -> Option<Vec<u8>> {
        let m = self.cfg.map_servers.get(ms)?;
        let records = eids
            .iter()
            .map(|(eid, dereg)| {
                let (addr, mask_len) = eid.to_wire(self.cfg.mac_afi);
                let ttl = if *dereg {
                    0
                } else {
                    self.cfg.timers.mapping_ttl_minutes
                };
                let version = u32::from(self.xtr.local.get(eid).copied().unwrap_or(0));
                // RFC 9301 §5.4: "The Authoritative bit MAY only be set to 1 by an ETR" (we
                // are one: `EidRecord::new` sets it)
                EidRecord::new(
                    addr,
                    mask_len,
                    ttl,
                    version,
                    vec![locator_for(self.cfg.rloc, true)],
                )
            })
            .collect();
        let reg = MapRegister {
            proxy_reply: true,
            lisp_sec: false,
            reserved: Bits::new(0),
            eid_notify: false,
            ttl_timeout: false,
            merge: false,
            r: false,
            want_map_notify: true,
            nonce,
            auth: m.auth.placeholder().ok()?,
            records,
            // RFC 9301 §5.6: "If an xTR is configured with an xTR-ID and Site-ID, it MUST set
            // the I-bit to 1 and include its xTR-ID and Site-ID".
            xtr: Some(XtrTrailer {
                xtr_id: self.cfg.xtr_id,
                site_id: Some(self.cfg.site_id),
            }),
        };
        let mut bytes = Vec::with_capacity(128);
        reg.encode(&mut bytes);
        sign(&mut bytes, &m.key, &m.auth).ok()?;
        Some(bytes)
    }

    fn send_register(&mut self, now: Instant, ms: usize, eids: Vec<(EidPrefix, bool)>) {
        let Some(addr) = self.cfg.map_servers.get(ms).map(|m| m.addr) else {
            return;
        };
        let nonce = self.next_register_nonce();
        let Some(bytes) = self.register_bytes(ms, nonce, &eids) else {
            return;
        };
        self.xtr.next_inflight += 1;
        let id = self.xtr.next_inflight;
        let backoff = self.cfg.timers.register_retx_initial;
        let timer = self
            .timers
            .schedule(now + backoff, Timer::RegisterRetx { ms, id });
        let max = self.cfg.limits.max_inflight_registers.max(1);
        if let Some(s) = self.xtr.servers.get_mut(ms) {
            while s.inflight.len() >= max {
                match s.inflight.pop_first() {
                    Some((_, f)) => self.timers.cancel(f.timer),
                    None => break,
                }
            }
            s.inflight.insert(
                id,
                Inflight {
                    nonce,
                    eids,
                    attempt: 1,
                    backoff,
                    timer,
                },
            );
        }
        self.counters.map_registers_tx += 1;
        self.send(addr, bytes);
    }

    pub(crate) fn on_register_retx(&mut self, now: Instant, h: TimerHandle, ms: usize, id: u64) {
        let max_backoff = self.cfg.timers.register_retx_max;
        let nonce = self.next_register_nonce();
        let Some(s) = self.xtr.servers.get_mut(ms) else {
            return;
        };
        let Some(f) = s.inflight.get_mut(&id) else {
            return;
        };
        if f.timer != h {
            return;
        }
        if f.attempt >= REGISTER_TRIES {
            s.inflight.remove(&id);
            return;
        }
        f.attempt += 1;
        f.backoff = (f.backoff * 2).min(max_backoff);
        f.nonce = nonce;
        f.timer = self
            .timers
            .schedule(now + f.backoff, Timer::RegisterRetx { ms, id });
        let (eids, attempt) = (f.eids.clone(), f.attempt);
        let Some(addr) = self.cfg.map_servers.get(ms).map(|m| m.addr) else {
            return;
        };
        if let Some(bytes) = self.register_bytes(ms, nonce, &eids) {
            self.counters.map_register_retransmits += 1;
            self.counters.map_registers_tx += 1;
            self.send(addr, bytes);
            self.event(LispEvent::RegisterRetransmit {
                map_server: addr,
                attempt,
            });
        }
    }

    /// How we verify what map-server `ms` signs: its algorithm, either length.
    fn ms_verify(&self, ms: usize, bytes: &[u8]) -> bool {
        let Some(m) = self.cfg.map_servers.get(ms) else {
            return false;
        };
        verify(
            bytes,
            &m.key,
            &AuthParams {
                truncate: true,
                ..m.auth
            },
        )
        .is_ok()
    }

    /// A Map-Notify: the confirmation of one of our Map-Registers (RFC 9301 §5.7), or a
    /// subscription confirmation / publication (RFC 9437 §5, §6).
    pub(crate) fn on_map_notify(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        m: MapNotify,
    ) -> Result<(), DropReason> {
        self.counters.map_notifies_rx += 1;
        if !self.cfg.xtr {
            return Err(DropReason::Unexpected {
                message: "Map-Notify (not an xTR)",
            });
        }
        for ms in 0..self.xtr.servers.len() {
            let hit = self
                .xtr
                .servers
                .get(ms)
                .and_then(|s| s.inflight.iter().find(|(_, f)| f.nonce == m.nonce))
                .map(|(id, f)| (*id, f.eids.len()));
            let Some((id, n)) = hit else { continue };
            if !self.ms_verify(ms, bytes) {
                return Err(DropReason::AuthFailed {
                    error: "Map-Notify does not verify with the map-server key".to_string(),
                });
            }
            if let Some(f) = self
                .xtr
                .servers
                .get_mut(ms)
                .and_then(|s| s.inflight.remove(&id))
            {
                self.timers.cancel(f.timer);
            }
            self.counters.registrations_confirmed += 1;
            let map_server = self.cfg.map_servers.get(ms).map(|c| c.addr).unwrap_or(from);
            self.event(LispEvent::Registered {
                map_server,
                eids: n,
            });
            return Ok(());
        }
        self.on_publication(now, from, bytes, m)
    }

    /// RFC 9437 §6: "The xTR MUST keep track of the last nonce seen in a Map-Notify received
    /// as a publication from the Map-Server for the EID-Prefix ... If a Map-Notify that is
    /// received as a publication has a nonce value that is not greater than the saved nonce,
    /// the xTR drops the Map-Notify message"; "The xTR MUST use its security association with
    /// the Map-Server ... to validate the authentication data"; "MUST use the mapping
    /// information carried in the Map-Notify to update its internal Map-Cache"; then the
    /// Map-Notify-Ack (RFC 9301 §5.7).
    fn on_publication(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        m: MapNotify,
    ) -> Result<(), DropReason> {
        // The Map-Server that sent it (by address), else any whose key verifies.
        let n = self.cfg.map_servers.len();
        let by_addr = (0..n).find(|i| {
            self.cfg
                .map_servers
                .get(*i)
                .is_some_and(|c| c.addr.ip() == from.ip())
        });
        let ms = match by_addr {
            Some(i) if self.ms_verify(i, bytes) => i,
            Some(_) => {
                return Err(DropReason::AuthFailed {
                    error: "Map-Notify does not verify with the map-server key".to_string(),
                });
            }
            None => (0..n)
                .find(|i| self.ms_verify(*i, bytes))
                .ok_or(DropReason::AuthFailed {
                    error: "Map-Notify from no configured map-server".to_string(),
                })?,
        };
        // RFC 9437 §5: the Map-Server dropped our subscription: "a single Map-Notify with the
        // same nonce but with Loc-Count = 0 ... and ACT bits set to 5". Same nonce as the
        // last publication, so `>=`. "xTR implementations can use this signal to try to
        // reinstall their subscription state".
        let drop_signal = !m.records.is_empty()
            && m.records
                .iter()
                .all(|r| r.locators.is_empty() && r.act == Act::DROP_AUTH_FAILURE);
        if drop_signal {
            for rec in &m.records {
                let Ok((eid, _)) = EidPrefix::from_wire(rec.mask_len, &rec.eid) else {
                    continue;
                };
                let hit = self.xtr.subs.covering(&eid).into_iter().find(|p| {
                    self.xtr
                        .subs
                        .get(p)
                        .is_some_and(|s| s.phase != Phase::Inactive && m.nonce >= s.last)
                });
                if let Some(p) = hit {
                    if let Some(s) = self.xtr.subs.get_mut(&p) {
                        s.phase = Phase::Inactive;
                        s.last = m.nonce;
                    }
                    self.event(LispEvent::SubscriptionLost { eid: p });
                    self.request(now, p, true);
                }
            }
            return Ok(());
        }
        // A retransmission of the last Map-Notify we accepted (our Map-Notify-Ack was lost):
        // acknowledged again, not processed again.
        let repeat = m.records.iter().all(|rec| {
            EidPrefix::from_wire(rec.mask_len, &rec.eid).is_ok_and(|(eid, _)| {
                self.xtr.subs.covering(&eid).iter().any(|p| {
                    self.xtr
                        .subs
                        .get(p)
                        .is_some_and(|s| s.phase != Phase::Pending && s.last == m.nonce)
                })
            })
        });
        if repeat && !m.records.is_empty() {
            if let Some(ack) = self.ack_bytes(ms, bytes) {
                self.counters.map_notify_acks_tx += 1;
                self.send(control(from.ip()), ack);
            }
            return Ok(());
        }
        // The confirmation of a subscribe request (RFC 9437 §5: "When the xTR receives a
        // Map-Notify with a nonce that matches one in the list of outstanding Map-Request
        // messages sent with an N-bit set"): its records belong to that subscription, whatever
        // prefix the Map-Server answered with (a covering mapping, say).
        let confirms = self.xtr.by_nonce.get(&m.nonce).copied().filter(|p| {
            self.xtr
                .requests
                .get(p)
                .is_some_and(|r| r.kind == Kind::Subscribe && r.nonce == m.nonce)
        });
        // Otherwise every record must fall under one of our subscriptions with a smaller last
        // nonce (publications of more-specifics reach subscribers of covering prefixes, §6).
        let mut targets: Vec<(EidPrefix, EidRecord)> = Vec::new();
        let mut subs: Vec<EidPrefix> = Vec::new();
        for rec in &m.records {
            let Ok((eid, _)) = EidPrefix::from_wire(rec.mask_len, &rec.eid) else {
                continue;
            };
            let sub = confirms.or_else(|| {
                self.xtr.subs.covering(&eid).into_iter().find(|p| {
                    self.xtr
                        .subs
                        .get(p)
                        .is_some_and(|s| s.phase != Phase::Inactive)
                })
            });
            let Some(p) = sub else {
                return Err(DropReason::Unexpected {
                    message: "Map-Notify for an EID-prefix we did not subscribe to",
                });
            };
            if let Some(s) = self.xtr.subs.get(&p)
                && m.nonce <= s.last
            {
                return Err(DropReason::Replay {
                    nonce: m.nonce,
                    last: s.last,
                });
            }
            if !subs.contains(&p) {
                subs.push(p);
            }
            targets.push((eid, rec.clone()));
        }
        if targets.is_empty() {
            return Err(DropReason::Unexpected {
                message: "Map-Notify with no record",
            });
        }
        for p in &subs {
            let phase = self.xtr.subs.get(p).map(|s| s.phase);
            if let Some(s) = self.xtr.subs.get_mut(p) {
                s.last = m.nonce;
                if s.phase == Phase::Pending {
                    s.phase = Phase::Active;
                }
                if s.phase == Phase::Unsubscribing {
                    s.phase = Phase::Inactive;
                }
            }
            if phase == Some(Phase::Pending) {
                self.event(LispEvent::SubscriptionConfirmed { eid: *p });
            }
            if let Some(r) = self.xtr.requests.remove(p) {
                self.timers.cancel(r.timer);
                self.xtr.by_nonce.remove(&r.nonce);
            }
        }
        for (eid, rec) in targets {
            let unsub = subs.iter().any(|p| {
                (p.contains(&eid) || eid.contains(p))
                    && self
                        .xtr
                        .subs
                        .get(p)
                        .is_some_and(|s| s.phase == Phase::Inactive)
            });
            if !unsub {
                self.install(now, eid, &rec, CacheSource::Publication);
            }
        }
        // Map-Notify-Ack: "The fields of the Map-Notify-Ack are copied from the corresponding
        // Map-Notify ... The 'Authentication Data' field is recomputed".
        if let Some(ack) = self.ack_bytes(ms, bytes) {
            self.counters.map_notify_acks_tx += 1;
            self.send(control(from.ip()), ack);
        }
        Ok(())
    }

    fn ack_bytes(&self, ms: usize, bytes: &[u8]) -> Option<Vec<u8>> {
        let key = &self.cfg.map_servers.get(ms)?.key;
        let (_, alg, len) = super::map_server::auth_fields(bytes);
        lengths(alg).ok()?;
        let mut out = bytes.to_vec();
        let b0 = out.first_mut()?;
        *b0 = (*b0 & 0x0f) | 0x50;
        out.get_mut(AUTH_DATA_OFFSET..AUTH_DATA_OFFSET + len)?
            .fill(0);
        let tag = compute_auth(&out, key, alg, len).ok()?;
        out.get_mut(AUTH_DATA_OFFSET..AUTH_DATA_OFFSET + len)?
            .copy_from_slice(tag.as_slice());
        Some(out)
    }

    /// Installs (or removes, TTL 0) a map-cache entry.
    fn install(&mut self, now: Instant, eid: EidPrefix, rec: &EidRecord, via: CacheSource) {
        if rec.ttl == 0 {
            // RFC 9301 §5.4: "If the TTL is 0, the entry MUST be removed from the cache
            // immediately."
            if let Some(e) = self.xtr.cache.remove(&eid) {
                self.timers.cancel(e.timer);
                self.event(LispEvent::MapCacheRemoved { eid });
            }
            return;
        }
        let max = self.cfg.timers.cache_max;
        // "If the value is 0xffffffff, the recipient can decide locally how long to store".
        let life = if rec.ttl == u32::MAX {
            max
        } else {
            Duration::from_secs(u64::from(rec.ttl) * 60).min(max)
        };
        let old = self.xtr.cache.get(&eid).map(|e| e.timer);
        if old.is_none() && self.xtr.cache.len() >= self.cfg.limits.max_map_cache {
            let l = self.local_addr();
            self.dropped(l, l, DropReason::Full { table: "map-cache" });
            return;
        }
        let timer = self
            .timers
            .reschedule(old, now + life, Timer::CacheExpire(eid));
        let version = u16::try_from(rec.map_version.get()).unwrap_or(0);
        self.xtr.cache.insert(
            eid,
            CacheEntry {
                locators: rec.locators.clone(),
                act: rec.act,
                version,
                ttl: rec.ttl,
                timer,
                via,
            },
        );
        self.counters.map_cache_updates += 1;
        self.event(LispEvent::MapCacheUpdated {
            eid,
            rlocs: rec.locators.iter().filter_map(|l| ip_of(&l.addr)).collect(),
            act: rec.act.get(),
            ttl_minutes: rec.ttl,
            version,
            via,
        });
    }

    pub(crate) fn on_cache_expire(&mut self, _now: Instant, h: TimerHandle, eid: EidPrefix) {
        if self.xtr.cache.get(&eid).is_some_and(|e| e.timer == h) {
            self.xtr.cache.remove(&eid);
            self.event(LispEvent::MapCacheRemoved { eid });
        }
    }

    /// A Map-Reply to one of our Map-Requests (nonce match, RFC 9301 §5.3: "A successful
    /// Map-Reply, which is one that has a nonce that matches an outstanding Map-Request
    /// nonce, will update the cached set of RLOCs").
    pub(crate) fn on_map_reply(
        &mut self,
        now: Instant,
        _from: SocketAddr,
        m: MapReply,
    ) -> Result<(), DropReason> {
        self.counters.map_replies_rx += 1;
        if !self.cfg.xtr {
            return Err(DropReason::Unexpected {
                message: "Map-Reply (not an xTR)",
            });
        }
        let Some(eid) = self.xtr.by_nonce.remove(&m.nonce) else {
            return Err(DropReason::UnknownNonce { nonce: m.nonce });
        };
        let kind = self.xtr.requests.remove(&eid).map(|r| {
            self.timers.cancel(r.timer);
            r.kind
        });
        if kind == Some(Kind::Subscribe) {
            // A Map-Reply instead of a Map-Notify: the subscription failed (RFC 9437 §5).
            if let Some(s) = self.xtr.subs.get_mut(&eid) {
                s.phase = Phase::Inactive;
            }
        }
        for rec in &m.records {
            if let Ok((e, _)) = EidPrefix::from_wire(rec.mask_len, &rec.eid) {
                self.install(now, e, rec, CacheSource::MapReply);
            }
        }
        Ok(())
    }

    /// An SMR (RFC 9301 §6.1): "An ITR or PITR will send a Map-Request (SMR-invoked
    /// Map-Request) when it receives an SMR message ... the SMR-invoked Map-Request MUST be
    /// sent through the Mapping System (not directly)"; "When an ITR receives an SMR message
    /// for which it does not have a cached mapping for the EID in the SMR message, it SHOULD
    /// NOT send an SMR-invoked Map-Request"; "It is RECOMMENDED that the SMR responder rate
    /// limit a Map-Request for the same EID-Prefix to no more than once every 3 seconds."
    pub(crate) fn on_smr(
        &mut self,
        now: Instant,
        from: SocketAddr,
        req: &MapRequest,
    ) -> Result<(), DropReason> {
        self.counters.smr_rx += 1;
        if !self.cfg.xtr {
            return Err(DropReason::Unexpected {
                message: "SMR (not an xTR)",
            });
        }
        // The changed EID is the SMR's Source-EID (OOR and our Map-Server put it there);
        // the records are tried after it.
        let candidates = EidPrefix::host_from_wire(&req.source_eid)
            .into_iter()
            .chain(req.records.iter().filter_map(|r| {
                EidPrefix::from_wire(r.mask_len, &r.eid)
                    .ok()
                    .map(|(e, _)| e)
            }));
        let mut target = None;
        for c in candidates {
            if let Some((p, _)) = self.xtr.cache.lpm(&c) {
                target = Some(p);
                break;
            }
        }
        let Some(p) = target else {
            return Err(DropReason::SmrIgnored {
                why: "no cached mapping for the SMR's EID",
            });
        };
        self.event(LispEvent::SmrReceived { from, eid: p });
        let interval = self.cfg.timers.smr_invoked_interval;
        if self
            .xtr
            .smr_last
            .get(&p)
            .is_some_and(|t| now.saturating_duration_since(*t) < interval)
        {
            return Err(DropReason::SmrIgnored {
                why: "SMR-invoked Map-Request for this EID-prefix less than 3 s ago",
            });
        }
        if self.xtr.smr_last.len() >= self.cfg.limits.max_map_cache {
            self.xtr
                .smr_last
                .retain(|_, t| now.saturating_duration_since(*t) < interval);
        }
        self.xtr.smr_last.insert(p, now);
        if !self.xtr.requests.contains_key(&p) {
            self.send_request(now, p, Kind::SmrInvoked);
        }
        Ok(())
    }

    /// Resolves `eid` through the Map-Resolver (an ECM Map-Request, RFC 9301 §8.1), and
    /// with `subscribe` asks to be notified of changes (RFC 9437 §5: I bit, xTR-ID/Site-ID,
    /// N bit, "If the xTR has a nonce associated with the EID-Prefix, it MUST use this nonce
    /// increased by one"). At most one request per EID-prefix is outstanding (RFC 9301 §5.3
    /// "rate limited to 1 per second per EID-Prefix").
    pub fn request(&mut self, now: Instant, eid: EidPrefix, subscribe: bool) {
        if !self.cfg.xtr || self.xtr.requests.contains_key(&eid) {
            return;
        }
        let kind = if subscribe {
            Kind::Subscribe
        } else {
            Kind::Plain
        };
        self.send_request(now, eid, kind);
    }

    /// RFC 9437 §5: ends our subscription to `eid` (N bit, one ITR-RLOC of AFI 0).
    pub fn unsubscribe(&mut self, _now: Instant, eid: EidPrefix) {
        let Some(s) = self.xtr.subs.get(&eid).copied() else {
            return;
        };
        if s.phase == Phase::Inactive {
            return;
        }
        let nonce = s.last.wrapping_add(1);
        if let Some(st) = self.xtr.subs.get_mut(&eid) {
            st.phase = Phase::Unsubscribing;
        }
        if let Some(r) = self.xtr.requests.remove(&eid) {
            self.timers.cancel(r.timer);
            self.xtr.by_nonce.remove(&r.nonce);
        }
        if let Some((to, bytes)) = self.request_bytes(eid, nonce, Kind::Subscribe, true) {
            self.counters.map_requests_tx += 1;
            self.send(to, bytes);
        }
    }

    fn send_request(&mut self, now: Instant, eid: EidPrefix, kind: Kind) {
        if self.xtr.requests.len() >= self.cfg.limits.max_pending_requests {
            let l = self.local_addr();
            self.dropped(
                l,
                l,
                DropReason::Full {
                    table: "map-requests",
                },
            );
            return;
        }
        let nonce = match kind {
            Kind::Subscribe => {
                let last = self.xtr.subs.get(&eid).map(|s| s.last);
                let nonce = match last {
                    Some(l) => l.wrapping_add(1),
                    None => self.rng.nonce(),
                };
                if self.xtr.subs.get(&eid).is_none()
                    && self.xtr.subs.len() >= self.cfg.limits.max_map_cache
                {
                    let l = self.local_addr();
                    self.dropped(
                        l,
                        l,
                        DropReason::Full {
                            table: "subscriptions",
                        },
                    );
                    return;
                }
                self.xtr.subs.insert(
                    eid,
                    SubState {
                        last: nonce.wrapping_sub(1),
                        phase: Phase::Pending,
                    },
                );
                nonce
            }
            _ => self.rng.nonce(),
        };
        let Some((to, bytes)) = self.request_bytes(eid, nonce, kind, false) else {
            return;
        };
        let timer = self
            .timers
            .schedule(now + self.cfg.timers.request_retx, Timer::Request(eid));
        self.xtr.requests.insert(
            eid,
            PendingRequest {
                nonce,
                tries: 1,
                timer,
                kind,
            },
        );
        self.xtr.by_nonce.insert(nonce, eid);
        self.counters.map_requests_tx += 1;
        if kind == Kind::SmrInvoked {
            self.counters.smr_invoked_tx += 1;
            self.event(LispEvent::SmrInvokedRequestSent { to, eid });
        }
        self.send(to, bytes);
    }

    pub(crate) fn on_request_timer(&mut self, now: Instant, h: TimerHandle, eid: EidPrefix) {
        let tries = self.cfg.timers.request_tries;
        let retx = self.cfg.timers.request_retx;
        let Some(r) = self.xtr.requests.get_mut(&eid) else {
            return;
        };
        if r.timer != h {
            return;
        }
        if r.tries >= tries {
            let nonce = r.nonce;
            let kind = r.kind;
            self.xtr.requests.remove(&eid);
            self.xtr.by_nonce.remove(&nonce);
            if kind == Kind::Subscribe
                && let Some(s) = self.xtr.subs.get_mut(&eid)
            {
                s.phase = Phase::Inactive;
            }
            self.event(LispEvent::RequestGaveUp { eid });
            return;
        }
        r.tries += 1;
        r.timer = self.timers.schedule(now + retx, Timer::Request(eid));
        let (nonce, kind) = (r.nonce, r.kind);
        if let Some((to, bytes)) = self.request_bytes(eid, nonce, kind, false) {
            self.counters.map_requests_tx += 1;
            self.send(to, bytes);
        }
    }

    /// An ECM Map-Request for `eid` to the first Map-Resolver: inner IP from our RLOC to the
    /// EID (or to the resolver for MAC EIDs), inner UDP 4342 → 4342 (as OOR sends it,
    /// lab/oor/README.md step 4).
    fn request_bytes(
        &self,
        eid: EidPrefix,
        nonce: u64,
        kind: Kind,
        unsubscribe: bool,
    ) -> Option<(SocketAddr, Vec<u8>)> {
        let mr = self.cfg.resolvers().first().copied()?;
        let (addr, mask_len) = eid.to_wire(self.cfg.mac_afi);
        let sub = kind == Kind::Subscribe;
        let itr = if unsubscribe {
            LispAddr::None
        } else {
            lisp_addr(self.cfg.rloc)
        };
        let mut req = MapRequest::new(nonce, itr, addr, mask_len);
        req.smr_invoked = kind == Kind::SmrInvoked;
        if let Some(r) = req.records.first_mut() {
            r.notify = sub;
        }
        req.xtr = sub.then_some(XtrTrailer {
            xtr_id: self.cfg.xtr_id,
            site_id: Some(self.cfg.site_id),
        });
        let ip = inner_header(self.cfg.rloc, eid.ip(), mr.ip())?;
        let e = Ecm::new(ip, super::LISP_CONTROL_PORT, LispMsg::MapRequest(req));
        Some((mr, LispMsg::Ecm(e).to_bytes()))
    }

    /// The map-cache, sorted by EID (the API's map-cache view).
    pub fn map_cache(&self, now: Instant) -> Vec<MapCacheView> {
        let mut v: Vec<MapCacheView> = self
            .xtr
            .cache
            .iter()
            .map(|(eid, e)| self.cache_view(now, eid, e))
            .collect();
        v.sort_by_key(|a| a.eid);
        v
    }

    /// The map-cache entry that `eid` matches (longest prefix), as the ITR forwards by it.
    pub fn map_cache_lookup(&self, now: Instant, eid: &EidPrefix) -> Option<MapCacheView> {
        let (p, e) = self.xtr.cache.lpm(eid)?;
        Some(self.cache_view(now, &p, e))
    }

    fn cache_view(&self, now: Instant, eid: &EidPrefix, e: &CacheEntry) -> MapCacheView {
        MapCacheView {
            eid: *eid,
            rlocs: e.locators.iter().filter_map(|l| ip_of(&l.addr)).collect(),
            act: e.act.to_string(),
            version: e.version,
            ttl_minutes: e.ttl,
            expires_in_secs: e.timer.at().saturating_duration_since(now).as_secs(),
            via: e.via,
            subscribed: self.xtr.subs.covering(eid).iter().any(|p| {
                self.xtr
                    .subs
                    .get(p)
                    .is_some_and(|s| s.phase == Phase::Active)
            }),
        }
    }

    /// Local EIDs this xTR registers.
    pub fn local_eids(&self) -> Vec<EidPrefix> {
        self.xtr.local.keys().copied().collect()
    }
}

/// One map-cache entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MapCacheView {
    pub eid: EidPrefix,
    pub rlocs: Vec<IpAddr>,
    /// RFC 9301 §12.3 action name (meaningful for negative entries).
    pub act: String,
    pub version: u16,
    pub ttl_minutes: u32,
    pub expires_in_secs: u64,
    pub via: CacheSource,
    pub subscribed: bool,
}
