//! Publish/subscribe (RFC 9437) on the Map-Server, and the reliable delivery of every
//! unsolicited Map-Notify (RFC 9301 §5.7), subscriptions' and previous registrants' alike.
//!
//! Owns: subscriptions (xTR-ID, EID-prefix) with their ITR-RLOCs and nonce, the replay
//! nonces of ended subscriptions, outstanding Map-Notifies and their retransmission,
//! Map-Notify-Ack matching.
//! Must not: decide mappings (map_server.rs) or parse Map-Requests (resolver.rs hands us the
//! N-bit records).
//!
//! Security association (RFC 9437 §7.1, "a shared PubSubKey"): an xTR may subscribe once it
//! has registered with a site's key carrying its xTR-ID (RFC 9301 §5.6 I bit); its
//! publications are signed with that key. An xTR-ID that never registered (an ITR without
//! local EIDs) uses `LispCoreCfg::pubsub_default_site` (the only site, when there is one);
//! otherwise it gets a negative Map-Reply with ACT 5 (RFC 9437 §5: "If the subscription request fails due to authentication ... ACT bits
//! set to 5").
//!
//! Nonces (RFC 9437 §6 item 2): "The Map-Server increments the nonce by one every time it
//! sends a Map-Notify as publication to an xTR-ID for a particular EID-Prefix" — the counter
//! is per subscription (xTR-ID, subscribed prefix). At most one publication per subscription
//! is outstanding: a newer change supersedes it with nonce + 1 and carries every change the
//! xTR has not acknowledged yet (up to `max_publication_records`), so a lost Map-Notify is
//! never needed again.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use serde::Serialize;
use smallvec::SmallVec;

use super::eid::{EidPrefix, PrefixTable};
use super::map_server::{check_site_auth, ip_of, removal_record};
use super::timers::{Timer, TimerHandle};
use super::{DropReason, Lisp, LispEvent, Map, NotifyKind, SubscriptionEnd, control, hasher};
use crate::wire::lisp::auth::{AuthError, AuthParams, sign};
use crate::wire::lisp::fields::ser_u128_hex;
use crate::wire::lisp::{Act, EidRecord, LispAddr, MacAfi, MapNotify, MapRequest, XtrTrailer};

/// What an outstanding Map-Notify is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Subscription confirmation or publication of subscription (xTR-ID, prefix).
    Subscription {
        xtr_id: u128,
        eid: EidPrefix,
    },
    PreviousRegistrant {
        eid: EidPrefix,
    },
}

/// An unsolicited Map-Notify waiting for its Map-Notify-Ack.
struct Pending {
    nonce: u64,
    bytes: Vec<u8>,
    dests: SmallVec<[SocketAddr; 4]>,
    dest: usize,
    /// Sends to the current destination so far, minus one (0 = only the first send).
    attempt: u8,
    timer: TimerHandle,
    site: usize,
    purpose: Purpose,
    kind: NotifyKind,
}

struct Subscription {
    site: usize,
    site_id: u64,
    itr_rlocs: SmallVec<[IpAddr; 4]>,
    /// The last nonce used with this xTR for this prefix (request or publication).
    nonce: u64,
    since: Instant,
    /// A temporary subscription to an unregistered EID (RFC 9437 §5, 15 minutes).
    temp: Option<TimerHandle>,
    pending: Option<u64>,
    /// The subscription's own state has not been acknowledged yet.
    initial: bool,
    /// Changed more-specifics not acknowledged yet.
    changed: SmallVec<[EidPrefix; 2]>,
    confirmed: bool,
    publications: u64,
}

/// Pub/sub state.
pub(crate) struct PubSub {
    subs: Map<(u128, EidPrefix), Subscription>,
    by_eid: PrefixTable<Vec<u128>>,
    pending: Map<u64, Pending>,
    /// Outstanding notifies by nonce (several may share one: nonces are chosen by xTRs).
    by_nonce: Map<u64, SmallVec<[u64; 1]>>,
    next_id: u64,
    /// Last nonces of ended subscriptions (RFC 9437 §5: "the Map-Server SHOULD keep the last
    /// nonce seen per xTR-ID (and EID-Prefix)"), oldest first out.
    tombstones: Map<(u128, EidPrefix), u64>,
    tomb_order: VecDeque<(u128, EidPrefix)>,
}

impl PubSub {
    pub(crate) fn new(seed: u64) -> PubSub {
        PubSub {
            subs: Map::with_hasher(hasher(seed ^ 0x20)),
            by_eid: PrefixTable::new(seed ^ 0x21),
            pending: Map::with_hasher(hasher(seed ^ 0x22)),
            by_nonce: Map::with_hasher(hasher(seed ^ 0x23)),
            next_id: 0,
            tombstones: Map::with_hasher(hasher(seed ^ 0x24)),
            tomb_order: VecDeque::new(),
        }
    }
}

/// Outcome of an N-bit record.
pub(crate) enum SubOutcome {
    /// Answered with a Map-Notify; nothing goes in the Map-Reply.
    Notified,
    /// Answered in the Map-Reply with this (negative) record.
    Negative(EidRecord),
    /// Dropped silently (and reported).
    Drop(DropReason),
}

/// An encoded Map-Notify (type 4) with `records` (already encoded, `count` of them), signed
/// with `key` (RFC 9301 §5.6 steps 1–5 via `wire::lisp::auth::sign`).
pub(crate) fn notify_bytes(
    nonce: u64,
    count: u8,
    records: &[u8],
    key: &[u8],
    params: &AuthParams,
) -> Result<Vec<u8>, AuthError> {
    let len = params.auth_len()?;
    let key_id = params.wire_key_id()?;
    let mut out = Vec::with_capacity(16 + len + records.len());
    out.extend_from_slice(&[0x40, 0, 0, count]);
    out.extend_from_slice(&nonce.to_be_bytes());
    out.extend_from_slice(&[key_id, params.alg_id]);
    out.extend_from_slice(&u16::try_from(len).unwrap_or(0).to_be_bytes());
    out.resize(out.len() + len, 0);
    out.extend_from_slice(records);
    sign(&mut out, key, params)?;
    Ok(out)
}

/// A negative record (no locators) with `act` and `ttl` minutes.
pub(crate) fn negative_record(eid: &EidPrefix, mac_afi: MacAfi, act: Act, ttl: u32) -> EidRecord {
    EidRecord {
        ttl,
        act,
        ..removal_record(eid, mac_afi)
    }
}

impl Lisp {
    /// The state the subscription to `eid` starts from: the mapping covering it, or a negative
    /// record when nothing is registered there (yet).
    fn initial_record(&self, eid: &EidPrefix, mac_afi: MacAfi) -> EidRecord {
        match self.ms.db.lpm(eid) {
            Some((p, m)) => m.record(&p, mac_afi),
            None => negative_record(
                eid,
                mac_afi,
                Act::NATIVELY_FORWARD,
                self.cfg.timers.negative_ttl_hole_minutes,
            ),
        }
    }

    /// The record announcing a change of `eid`: its mapping, or TTL 0 when it is gone.
    fn change_record(&self, eid: &EidPrefix, mac_afi: MacAfi) -> EidRecord {
        match self.ms.db.get(eid) {
            Some(m) => m.record(eid, mac_afi),
            None => removal_record(eid, mac_afi),
        }
    }

    /// RFC 9437 §5: a Map-Request record with the N bit from xTR `xtr`.
    pub(crate) fn subscribe(
        &mut self,
        now: Instant,
        from: SocketAddr,
        req: &MapRequest,
        xtr: XtrTrailer,
        eid: EidPrefix,
        mac_afi: MacAfi,
    ) -> SubOutcome {
        let denied_ttl = self.cfg.timers.negative_ttl_denied_minutes;
        let denied = move |act| negative_record(&eid, mac_afi, act, denied_ttl);
        // Policy: pub/sub switched off ("fails due to policy ... ACT bits set to 4").
        if !self.cfg.pubsub || !self.cfg.map_server {
            self.counters.subscriptions_rejected += 1;
            self.event(LispEvent::SubscribeRejected { from, eid, act: 4 });
            return SubOutcome::Negative(denied(Act::DROP_POLICY_DENIED));
        }
        // No security association with this xTR-ID.
        let bound = self.ms.xtr_sites.get(&xtr.xtr_id).copied();
        let default = self
            .cfg
            .pubsub_default_site
            .filter(|i| *i < self.cfg.sites.len());
        let Some(site) = bound.or(default) else {
            self.counters.subscriptions_rejected += 1;
            self.event(LispEvent::SubscribeRejected { from, eid, act: 5 });
            return SubOutcome::Negative(denied(Act::DROP_AUTH_FAILURE));
        };
        let key = (xtr.xtr_id, eid);
        // "the Map-Server MUST verify that the nonce in the Map-Request is greater than the
        // stored nonce (if any) associated with the xTR-ID (and EID-Prefix ...). Otherwise,
        // the Map-Server MUST silently drop the Map-Request message and SHOULD log".
        let last = self
            .ps
            .subs
            .get(&key)
            .map(|s| s.nonce)
            .or_else(|| self.ps.tombstones.get(&key).copied());
        if let Some(last) = last
            && req.nonce <= last
        {
            return SubOutcome::Drop(DropReason::Replay {
                nonce: req.nonce,
                last,
            });
        }
        // Unsubscribe: "a valid Map-Request with the N-bit set to 1 only has one ITR-RLOC with
        // AFI = 0 ... the Map-Server MUST remove the subscription state ... MUST send a
        // Map-Notify to the source RLOC of the Map-Request."
        if req.itr_rlocs.len() == 1 && req.itr_rlocs.first() == Some(&LispAddr::None) {
            self.remove_subscription(key, SubscriptionEnd::Unsubscribed);
            self.tombstone(key, req.nonce);
            let rec = self.initial_record(&eid, mac_afi);
            let to = control(from.ip());
            self.send_notify_once(to, req.nonce, site, &rec, NotifyKind::Unsubscribed);
            return SubOutcome::Notified;
        }
        let rlocs: SmallVec<[IpAddr; 4]> = req
            .itr_rlocs
            .iter()
            .filter_map(ip_of)
            .take(self.cfg.limits.max_itr_rlocs.max(1))
            .collect();
        if rlocs.is_empty() {
            return SubOutcome::Drop(DropReason::NoItrRloc);
        }
        let registered = self.ms.db.lpm(&eid).is_some();
        if !registered && !self.configured(&eid) {
            // "Alternatively, the Map-Server can determine that such a subscription request
            // fails and send a Negative Map-Reply following Section 8.3 of [RFC9301]".
            self.counters.subscriptions_rejected += 1;
            let hole = self.least_specific_hole(&eid);
            return SubOutcome::Negative(negative_record(
                &hole,
                mac_afi,
                Act::NATIVELY_FORWARD,
                self.cfg.timers.negative_ttl_non_eid_minutes,
            ));
        }
        let exists = self.ps.subs.contains_key(&key);
        if !exists && self.ps.subs.len() >= self.cfg.limits.max_subscriptions {
            // RFC 9437 §5: fails "because the Map-Server has exhausted the resources".
            self.counters.subscriptions_rejected += 1;
            self.event(LispEvent::SubscribeRejected { from, eid, act: 4 });
            return SubOutcome::Negative(denied(Act::DROP_POLICY_DENIED));
        }
        // "Any state that is already present regarding ITR-RLOCs and/or nonce for the same
        // xTR-ID MUST be overwritten."
        if exists {
            self.cancel_subscription_notify(&key);
        }
        // "create a temporary subscription state ... the TTL of the temporary subscription
        // state ... a value of 15 minutes being RECOMMENDED".
        let temp = (!registered).then(|| {
            self.timers.schedule(
                now + self.cfg.timers.temp_subscription,
                Timer::SubExpire {
                    xtr_id: xtr.xtr_id,
                    eid,
                },
            )
        });
        let first = rlocs.first().copied();
        match self.ps.subs.get_mut(&key) {
            Some(s) => {
                if let Some(h) = s.temp.take() {
                    self.timers.cancel(h);
                }
                s.site = site;
                s.site_id = xtr.site_id.unwrap_or(0);
                s.itr_rlocs = rlocs;
                s.nonce = req.nonce;
                s.temp = temp;
                s.initial = true;
                s.changed.clear();
                s.confirmed = false;
            }
            None => {
                self.ps.subs.insert(
                    key,
                    Subscription {
                        site,
                        site_id: xtr.site_id.unwrap_or(0),
                        itr_rlocs: rlocs,
                        nonce: req.nonce,
                        since: now,
                        temp,
                        pending: None,
                        initial: true,
                        changed: SmallVec::new(),
                        confirmed: false,
                        publications: 0,
                    },
                );
                self.ps
                    .by_eid
                    .get_or_insert_with(eid, Vec::new)
                    .push(xtr.xtr_id);
                self.counters.subscriptions_added += 1;
                if let Some(rloc) = first {
                    self.event(LispEvent::SubscriberAdded {
                        xtr_id: xtr.xtr_id,
                        eid,
                        rloc,
                    });
                }
            }
        }
        // "the Map-Server MUST send a Map-Notify message back to the xTR to acknowledge the
        // successful subscription ... MUST use the nonce from the Map-Request ... MUST use its
        // security association with the xTR ... MUST send the Map-Notify to one of the
        // ITR-RLOCs received in the Map-Request". Retransmitted until acknowledged.
        self.send_subscription_notify(now, key, mac_afi, None, NotifyKind::Subscribed);
        SubOutcome::Notified
    }

    /// (Re)sends the subscription's Map-Notify: the initial state if unacknowledged, then
    /// every unacknowledged change. `nonce` overrides the subscription's stored nonce use
    /// (`None` = use the stored nonce as is, for the confirmation).
    fn send_subscription_notify(
        &mut self,
        now: Instant,
        key: (u128, EidPrefix),
        mac_afi: MacAfi,
        cached: Option<(&EidPrefix, &[u8])>,
        kind: NotifyKind,
    ) {
        let Some(s) = self.ps.subs.get(&key) else {
            return;
        };
        let (site, nonce, initial) = (s.site, s.nonce, s.initial);
        let changed = s.changed.clone();
        let dests: SmallVec<[SocketAddr; 4]> = s.itr_rlocs.iter().map(|r| control(*r)).collect();
        let Some(site_cfg) = self.cfg.sites.get(site) else {
            return;
        };
        let (psk, params) = (site_cfg.key.clone(), site_cfg.send_params());
        let mut records = Vec::new();
        let mut count = 0u8;
        if initial {
            self.initial_record(&key.1, mac_afi).encode(&mut records);
            count += 1;
        }
        for e in &changed {
            match cached {
                Some((ce, bytes)) if ce == e => records.extend_from_slice(bytes),
                _ => self.change_record(e, mac_afi).encode(&mut records),
            }
            count = count.saturating_add(1);
        }
        let Ok(bytes) = notify_bytes(nonce, count, &records, &psk, &params) else {
            return;
        };
        let id = self.send_reliable(
            now,
            dests,
            bytes,
            nonce,
            site,
            Purpose::Subscription {
                xtr_id: key.0,
                eid: key.1,
            },
            kind,
        );
        if let Some(s) = self.ps.subs.get_mut(&key) {
            s.pending = Some(id);
        }
    }

    /// RFC 9437 §6: "When a mapping stored in a Map-Server is updated ..., the Map-Server
    /// MUST notify the subscribers of that mapping ... If subscription state in the
    /// Map-Server exists for a less-specific EID-Prefix and a more-specific EID-Prefix is
    /// updated, then the Map-Notify is sent with the more-specific EID-Prefix mapping to the
    /// subscribers of the less-specific EID-Prefix mapping."
    pub(crate) fn publish(&mut self, now: Instant, eid: EidPrefix) {
        let keys = self.ps.by_eid.covering(&eid);
        if keys.is_empty() {
            return;
        }
        let mac_afi = self.cfg.mac_afi;
        let mut rec_bytes = Vec::new();
        self.change_record(&eid, mac_afi).encode(&mut rec_bytes);
        let max = self.cfg.limits.max_publication_records.max(1);
        for p in keys {
            let xtrs = self.ps.by_eid.get(&p).cloned().unwrap_or_default();
            for x in xtrs {
                let key = (x, p);
                self.cancel_subscription_notify(&key);
                let Some(s) = self.ps.subs.get_mut(&key) else {
                    continue;
                };
                if p == eid {
                    // The subscribed prefix itself changed: its record is the change.
                    s.initial = false;
                }
                if !s.changed.contains(&eid) {
                    if s.changed.len() + usize::from(s.initial) >= max && !s.changed.is_empty() {
                        s.changed.remove(0);
                    }
                    s.changed.push(eid);
                }
                s.nonce = s.nonce.wrapping_add(1);
                s.publications += 1;
                self.counters.publications_tx += 1;
                self.send_subscription_notify(
                    now,
                    key,
                    mac_afi,
                    Some((&eid, &rec_bytes)),
                    NotifyKind::Publication,
                );
            }
        }
    }

    /// Sends `bytes` to `dests[0]` and keeps it for retransmission until a Map-Notify-Ack
    /// with `nonce` arrives (RFC 9301 §5.7: "A Map-Notify is retransmitted until a
    /// Map-Notify-Ack is received by the Map-Server with the same nonce ... up to 3 times at
    /// 3-second retransmission intervals, after which time the retransmission interval is
    /// exponentially backed off ... for another 3 retransmission attempts"). After the last
    /// attempt the next ITR-RLOC is tried (RFC 9437 §6), then it is given up.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_reliable(
        &mut self,
        now: Instant,
        dests: SmallVec<[SocketAddr; 4]>,
        bytes: Vec<u8>,
        nonce: u64,
        site: usize,
        purpose: Purpose,
        kind: NotifyKind,
    ) -> u64 {
        self.ps.next_id += 1;
        let id = self.ps.next_id;
        let Some(to) = dests.first().copied() else {
            return id;
        };
        let same_nonce = self.ps.by_nonce.get(&nonce).map_or(0, |v| v.len());
        if self.ps.pending.len() >= self.cfg.limits.max_pending_notifies
            || same_nonce >= self.cfg.limits.max_notifies_per_nonce
        {
            // Bounded: past the caps a Map-Notify is sent once, not kept for retransmission
            // (RFC 9437 §5 lets a Map-Server pace and limit unsolicited Map-Notifies); the
            // per-nonce cap bounds what one Map-Notify-Ack costs to match.
            self.counters.map_notifies_tx += 1;
            self.counters.map_notifies_unreliable += 1;
            self.send(to, bytes);
            self.event(LispEvent::MapNotifySent { to, nonce, kind });
            return id;
        }
        let gap = self.cfg.timers.notify_retx.first().copied();
        let gap = gap.unwrap_or(self.cfg.timers.notify_final_wait);
        let timer = self.timers.schedule(now + gap, Timer::Notify(id));
        self.counters.map_notifies_tx += 1;
        self.send(to, bytes.clone());
        self.event(LispEvent::MapNotifySent { to, nonce, kind });
        self.ps.by_nonce.entry(nonce).or_default().push(id);
        self.ps.pending.insert(
            id,
            Pending {
                nonce,
                bytes,
                dests,
                dest: 0,
                attempt: 0,
                timer,
                site,
                purpose,
                kind,
            },
        );
        id
    }

    /// A Map-Notify sent once (unsubscription confirmation, subscription-dropped signal).
    fn send_notify_once(
        &mut self,
        to: SocketAddr,
        nonce: u64,
        site: usize,
        rec: &EidRecord,
        kind: NotifyKind,
    ) {
        let Some(s) = self.cfg.sites.get(site) else {
            return;
        };
        let mut records = Vec::new();
        rec.encode(&mut records);
        if let Ok(bytes) = notify_bytes(nonce, 1, &records, &s.key, &s.send_params()) {
            self.counters.map_notifies_tx += 1;
            self.send(to, bytes);
            self.event(LispEvent::MapNotifySent { to, nonce, kind });
        }
    }

    pub(crate) fn on_notify_timer(&mut self, now: Instant, h: TimerHandle, id: u64) {
        let retx = self.cfg.timers.notify_retx.clone();
        let final_wait = self.cfg.timers.notify_final_wait;
        let Some(p) = self.ps.pending.get_mut(&id) else {
            return;
        };
        if p.timer != h {
            return;
        }
        let n = u8::try_from(retx.len()).unwrap_or(u8::MAX);
        if p.attempt < n {
            p.attempt += 1;
            let gap = retx
                .get(usize::from(p.attempt))
                .copied()
                .unwrap_or(final_wait);
            p.timer = self.timers.schedule(now + gap, Timer::Notify(id));
            let (to, bytes, nonce, attempt, kind) = (
                p.dests.get(p.dest).copied(),
                p.bytes.clone(),
                p.nonce,
                p.attempt,
                p.kind,
            );
            if let Some(to) = to {
                self.counters.map_notify_retransmits += 1;
                self.send(to, bytes);
                self.event(LispEvent::MapNotifyRetransmit {
                    to,
                    nonce,
                    attempt,
                    kind,
                });
            }
            return;
        }
        if p.dest + 1 < p.dests.len() {
            // RFC 9437 §6: "it can try sending the Map-Notify to a different ITR-RLOC".
            p.dest += 1;
            p.attempt = 0;
            let gap = retx.first().copied().unwrap_or(final_wait);
            p.timer = self.timers.schedule(now + gap, Timer::Notify(id));
            let (to, bytes, nonce, kind) = (
                p.dests.get(p.dest).copied(),
                p.bytes.clone(),
                p.nonce,
                p.kind,
            );
            if let Some(to) = to {
                self.counters.map_notifies_tx += 1;
                self.send(to, bytes);
                self.event(LispEvent::MapNotifySent { to, nonce, kind });
            }
            return;
        }
        let Some(p) = self.ps.pending.remove(&id) else {
            return;
        };
        self.unindex(p.nonce, id);
        self.counters.map_notify_gave_up += 1;
        self.event(LispEvent::MapNotifyGaveUp {
            nonce: p.nonce,
            kind: p.kind,
        });
        if let Purpose::Subscription { xtr_id, eid } = p.purpose {
            // RFC 9437 §5: "If the Map-Server does not receive the Map-Notify-Ack after
            // exhausting the Map-Notify retransmissions ..., the Map-Server can remove the
            // subscription state. If the Map-Server removes the subscription state ... it
            // SHOULD notify the xTR by sending a single Map-Notify with the same nonce but
            // with Loc-Count = 0 (and Loc-AFI = 0) and ACT bits set to 5".
            let key = (xtr_id, eid);
            let to = self
                .ps
                .subs
                .get(&key)
                .and_then(|s| s.itr_rlocs.first().copied())
                .map(control);
            if let Some(s) = self.ps.subs.get_mut(&key) {
                s.pending = None;
            }
            let nonce = self.ps.subs.get(&key).map(|s| s.nonce).unwrap_or(p.nonce);
            self.remove_subscription(key, SubscriptionEnd::NoAck);
            self.tombstone(key, nonce);
            if let Some(to) = to {
                let rec = negative_record(
                    &eid,
                    self.cfg.mac_afi,
                    Act::DROP_AUTH_FAILURE,
                    self.cfg.timers.negative_ttl_denied_minutes,
                );
                self.send_notify_once(to, p.nonce, p.site, &rec, NotifyKind::SubscriptionDropped);
            }
        }
    }

    /// RFC 9301 §5.7: "Upon reception of a Map-Register, Map-Notify, or Map-Notify-Ack, the
    /// receiver verifies the Authentication Data. If the Authentication Data fails to
    /// validate, the message is dropped"; a valid Ack stops the retransmission of the
    /// Map-Notify with the same nonce.
    pub(crate) fn on_map_notify_ack(
        &mut self,
        _now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        m: MapNotify,
    ) -> Result<(), DropReason> {
        self.counters.map_notify_acks_rx += 1;
        let Some(ids) = self.ps.by_nonce.get(&m.nonce) else {
            return Err(DropReason::UnknownNonce { nonce: m.nonce });
        };
        // The outstanding notify this Ack verifies for (its site's key), preferring the one
        // sent to the Ack's source address when several share the nonce. At most
        // `max_notifies_per_nonce` candidates, and one HMAC per site among them: the message
        // is the same for every candidate.
        let mut found = None;
        let mut auth_err = None;
        let mut verified: SmallVec<[(usize, bool); 2]> = SmallVec::new();
        for &id in ids {
            let Some(p) = self.ps.pending.get(&id) else {
                continue;
            };
            let ok = match verified.iter().find(|v| v.0 == p.site) {
                Some(v) => v.1,
                None => {
                    let Some(site) = self.cfg.sites.get(p.site) else {
                        continue;
                    };
                    let r = check_site_auth(site, bytes);
                    let ok = r.is_ok();
                    if let Err(e) = r {
                        auth_err.get_or_insert(e);
                    }
                    verified.push((p.site, ok));
                    ok
                }
            };
            if ok {
                let same_addr = p.dests.get(p.dest).is_some_and(|d| d.ip() == from.ip());
                if same_addr || found.is_none() {
                    found = Some(id);
                }
                if same_addr {
                    break;
                }
            }
        }
        let Some(id) = found else {
            self.counters.auth_failures += 1;
            return Err(DropReason::AuthFailed {
                error: format!("{:?}", auth_err),
            });
        };
        self.unindex(m.nonce, id);
        let Some(p) = self.ps.pending.remove(&id) else {
            return Ok(());
        };
        self.timers.cancel(p.timer);
        self.event(LispEvent::MapNotifyAcked {
            from,
            nonce: p.nonce,
            kind: p.kind,
        });
        if let Purpose::Subscription { xtr_id, eid } = p.purpose
            && let Some(s) = self.ps.subs.get_mut(&(xtr_id, eid))
            && s.pending == Some(id)
        {
            s.pending = None;
            s.initial = false;
            s.changed.clear();
            s.confirmed = true;
        }
        Ok(())
    }

    pub(crate) fn on_sub_expire(
        &mut self,
        _now: Instant,
        h: TimerHandle,
        xtr_id: u128,
        eid: EidPrefix,
    ) {
        let key = (xtr_id, eid);
        let Some(s) = self.ps.subs.get_mut(&key) else {
            return;
        };
        if s.temp != Some(h) {
            return;
        }
        s.temp = None;
        let nonce = s.nonce;
        self.remove_subscription(key, SubscriptionEnd::Expired);
        self.tombstone(key, nonce);
    }

    fn cancel_subscription_notify(&mut self, key: &(u128, EidPrefix)) {
        let Some(id) = self.ps.subs.get_mut(key).and_then(|s| s.pending.take()) else {
            return;
        };
        if let Some(p) = self.ps.pending.remove(&id) {
            self.timers.cancel(p.timer);
            self.unindex(p.nonce, id);
        }
    }

    fn unindex(&mut self, nonce: u64, id: u64) {
        if let Some(v) = self.ps.by_nonce.get_mut(&nonce) {
            v.retain(|x| *x != id);
            if v.is_empty() {
                self.ps.by_nonce.remove(&nonce);
            }
        }
    }

    /// Will a change of `eid` be published to `rloc`? True when a subscription covering
    /// `eid` lists `rloc` among its ITR-RLOCs: that ITR gets the Map-Notify, so an SMR for the
    /// same change would only make it ask again (smr.rs skips it). An ITR subscribed to other
    /// EIDs only is still solicited for this one.
    pub(crate) fn publishes_to(&self, eid: &EidPrefix, rloc: IpAddr) -> bool {
        self.ps.by_eid.covering(eid).iter().any(|p| {
            self.ps.by_eid.get(p).is_some_and(|xtrs| {
                xtrs.iter().any(|x| {
                    self.ps
                        .subs
                        .get(&(*x, *p))
                        .is_some_and(|s| s.itr_rlocs.contains(&rloc))
                })
            })
        })
    }

    fn remove_subscription(&mut self, key: (u128, EidPrefix), why: SubscriptionEnd) {
        self.cancel_subscription_notify(&key);
        let Some(s) = self.ps.subs.remove(&key) else {
            return;
        };
        if let Some(h) = s.temp {
            self.timers.cancel(h);
        }
        let empty = match self.ps.by_eid.get_mut(&key.1) {
            Some(v) => {
                v.retain(|x| *x != key.0);
                v.is_empty()
            }
            None => false,
        };
        if empty {
            self.ps.by_eid.remove(&key.1);
        }
        self.counters.subscriptions_removed += 1;
        self.event(LispEvent::SubscriberRemoved {
            xtr_id: key.0,
            eid: key.1,
            why,
        });
    }

    fn tombstone(&mut self, key: (u128, EidPrefix), nonce: u64) {
        let ps = &mut self.ps;
        if let Some(v) = ps.tombstones.get_mut(&key) {
            *v = (*v).max(nonce);
            return;
        }
        while ps.tombstones.len() >= self.cfg.limits.max_subscriptions.max(1) {
            match ps.tomb_order.pop_front() {
                Some(old) => {
                    ps.tombstones.remove(&old);
                }
                None => break,
            }
        }
        ps.tombstones.insert(key, nonce);
        ps.tomb_order.push_back(key);
    }

    /// Subscriptions, sorted by EID then xTR-ID (the API's `/v1/lisp/subscribers`).
    pub fn subscribers(&self, now: Instant) -> Vec<SubscriberView> {
        let mut v: Vec<SubscriberView> = self
            .ps
            .subs
            .iter()
            .map(|((x, e), s)| SubscriberView {
                xtr_id: *x,
                site_id: s.site_id,
                eid: *e,
                site: self
                    .cfg
                    .sites
                    .get(s.site)
                    .map(|c| c.name.clone())
                    .unwrap_or_default(),
                itr_rlocs: s.itr_rlocs.to_vec(),
                nonce: s.nonce,
                confirmed: s.confirmed,
                temporary: s.temp.is_some(),
                awaiting_ack: s.pending.is_some(),
                publications: s.publications,
                since_secs: now.saturating_duration_since(s.since).as_secs(),
            })
            .collect();
        v.sort_by_key(|a| (a.eid, a.xtr_id));
        v
    }

    /// Outstanding unsolicited Map-Notifies (for tests of boundedness).
    pub fn pending_notifies(&self) -> usize {
        self.ps.pending.len()
    }
}

/// One subscription.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubscriberView {
    #[serde(serialize_with = "ser_u128_hex")]
    pub xtr_id: u128,
    pub site_id: u64,
    pub eid: EidPrefix,
    pub site: String,
    pub itr_rlocs: Vec<IpAddr>,
    pub nonce: u64,
    /// A Map-Notify-Ack confirmed the subscription.
    pub confirmed: bool,
    pub temporary: bool,
    pub awaiting_ack: bool,
    pub publications: u64,
    pub since_secs: u64,
}

impl Lisp {
    /// Subscriptions and outstanding Map-Notifies after a site reload (`remap[old] = new`,
    /// `None` = the site is gone). A subscription whose site is gone loses its security
    /// association (RFC 9437 §7.1): it is removed and the xTR told with the RFC 9437 §5
    /// signal, a single Map-Notify with ACT 5 signed with the key it knew — before the key is
    /// forgotten (so call this while `cfg.sites` is still the old list). Outstanding
    /// Map-Notifies of a removed site are given up; the others follow their site.
    pub(crate) fn remap_subscription_sites(&mut self, remap: &[Option<usize>]) {
        let to = |i: usize| remap.get(i).copied().flatten();
        let gone: Vec<(u128, EidPrefix)> = self
            .ps
            .subs
            .iter()
            .filter(|(_, s)| to(s.site).is_none())
            .map(|(k, _)| *k)
            .collect();
        for key in gone {
            let Some((site, nonce, rloc)) = self
                .ps
                .subs
                .get(&key)
                .map(|s| (s.site, s.nonce, s.itr_rlocs.first().copied()))
            else {
                continue;
            };
            self.remove_subscription(key, SubscriptionEnd::Reconfigured);
            self.tombstone(key, nonce);
            if let Some(r) = rloc {
                let rec = negative_record(
                    &key.1,
                    self.cfg.mac_afi,
                    Act::DROP_AUTH_FAILURE,
                    self.cfg.timers.negative_ttl_denied_minutes,
                );
                self.send_notify_once(
                    control(r),
                    nonce,
                    site,
                    &rec,
                    NotifyKind::SubscriptionDropped,
                );
            }
        }
        let dropped: Vec<u64> = self
            .ps
            .pending
            .iter()
            .filter(|(_, p)| to(p.site).is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in dropped {
            if let Some(p) = self.ps.pending.remove(&id) {
                self.timers.cancel(p.timer);
                self.unindex(p.nonce, id);
            }
        }
        for s in self.ps.subs.values_mut() {
            s.site = to(s.site).unwrap_or(s.site);
        }
        for p in self.ps.pending.values_mut() {
            p.site = to(p.site).unwrap_or(p.site);
        }
    }
}
