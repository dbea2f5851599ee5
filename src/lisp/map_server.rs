//! Map-Server: sites, Map-Register authentication and replay protection, the mapping
//! database with its registrants (merge, expiry, deregistration), the solicited Map-Notify,
//! the Map-Notify to the previous registrant, and the EVPN feed into the database.
//!
//! Owns: `MapServer` (database, replay-nonce table, xTR-ID → site bindings) and `Mapping`.
//! Must not: answer Map-Requests (resolver.rs), retransmit (pubsub.rs owns reliable
//! Map-Notify delivery), or parse bytes itself beyond the auth field offsets of RFC 9301 §5.6.
//!
//! A mapping has one or more contributions: an xTR registration or the EVPN feed. Without
//! merge the newest contribution replaces the others (that is a move); with the `a` bit on
//! both sides they are merged (RFC 9301 §5.6 "a: ... merge RLOC-Records from different xTRs
//! registering the same EID-Record"). The effective RLOC set is the union, sorted as RFC 9301
//! §5.5 requires ("ascending IP address where an IPv4 Routing Locator Address is considered
//! numerically 'less than' an IPv6 Routing Locator Address").

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;
use smallvec::SmallVec;

use super::eid::{EidFamily, EidPrefix, PrefixTable};
use super::pubsub::Purpose;
use super::timers::{Timer, TimerHandle};
use super::{
    ChangeCause, DropReason, Lisp, LispEvent, Map, NotifyKind, RejectReason, control, hasher,
    version_newer,
};
use crate::wire::lisp::auth::{AuthError, AuthParams, lengths, verify};
use crate::wire::lisp::fields::ser_u128_hex;
use crate::wire::lisp::register::{AUTH_DATA_OFFSET, AUTH_KEY_ID_OFFSET};
use crate::wire::lisp::{Act, Bits, EidRecord, LispAddr, Locator, MacAfi, MapRegister};

/// Who contributed a mapping.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum RegId {
    /// A Map-Register with the I bit: RFC 9301 §5.6 "The combination of Site-ID plus xTR-ID
    /// uniquely identifies an xTR".
    Xtr { xtr_id: u128, site_id: u64 },
    /// A Map-Register without xTR-ID (RFC 6830-era xTRs such as OOR): its source address.
    Addr(IpAddr),
    /// `set_mapping` (the EVPN layer).
    Evpn,
}

impl RegId {
    fn label(&self) -> String {
        match self {
            RegId::Xtr { xtr_id, site_id } => {
                format!("xtr-id {xtr_id:032x} site-id {site_id:016x}")
            }
            RegId::Addr(a) => format!("xtr {a}"),
            RegId::Evpn => "evpn".to_string(),
        }
    }
}

/// One registrant's part of a mapping.
#[derive(Clone, Debug)]
pub(crate) struct Contribution {
    pub(crate) reg: RegId,
    /// Site index (xTR registrations).
    pub(crate) site: Option<usize>,
    /// Where its Map-Register came from (xTR registrations).
    pub(crate) addr: Option<SocketAddr>,
    pub(crate) locators: Vec<Locator>,
    pub(crate) ttl_minutes: u32,
    pub(crate) proxy: bool,
    pub(crate) merge: bool,
    pub(crate) version: u16,
    serial: u64,
    expiry: Option<TimerHandle>,
    since: Instant,
    refreshed: Instant,
}

/// A database entry.
#[derive(Clone, Debug)]
pub(crate) struct Mapping {
    pub(crate) contribs: SmallVec<[Contribution; 1]>,
    /// Effective locators (merged, RFC 9301 §5.5 order).
    pub(crate) locators: Vec<Locator>,
    pub(crate) version: u16,
    /// The encoded EID-record for proxy replies with our default MAC AFI (invalidated on
    /// every change); the Map-Request hot path copies it.
    pub(crate) reply_record: Option<Vec<u8>>,
}

impl Contribution {
    /// Identifies this contribution among all (a re-registration gets a new one).
    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }
}

impl Mapping {
    /// RFC 9301 §8.3: "If any of the registered ETRs for the EID-Prefix have requested proxy
    /// reply service, then the Map-Server answers the request instead of forwarding it." The
    /// EVPN feed has no ETR to forward to, so it is always answered.
    pub(crate) fn proxy(&self) -> bool {
        self.contribs.iter().any(|c| c.proxy)
    }

    /// The ETR to forward a Map-Request to (the newest registrant with an address).
    pub(crate) fn etr(&self) -> Option<SocketAddr> {
        self.contribs.iter().rev().find_map(|c| c.addr)
    }

    pub(crate) fn ttl_minutes(&self) -> u32 {
        self.contribs
            .iter()
            .map(|c| c.ttl_minutes)
            .min()
            .unwrap_or(0)
    }

    pub(crate) fn rloc_ips(&self) -> Vec<IpAddr> {
        self.locators
            .iter()
            .filter_map(|l| ip_of(&l.addr))
            .collect()
    }

    fn recompute(&mut self) {
        let mut all: Vec<Locator> = Vec::new();
        for c in &self.contribs {
            for l in &c.locators {
                if !all.iter().any(|x| x.addr == l.addr) {
                    all.push(l.clone());
                }
            }
        }
        all.sort_by_key(|a| locator_key(&a.addr));
        self.locators = all;
        self.version = self.contribs.last().map(|c| c.version).unwrap_or(0);
        self.reply_record = None;
    }

    /// The EID-record for Map-Replies and Map-Notifies: RFC 9301 §5.4 "A Map-Server
    /// generating Map-Reply messages as a proxy MUST NOT set the A-bit to 1" and "When a
    /// Map-Server is doing proxy Map-Replying for a LISP site, the L-bit is set to 0"; the
    /// p bit "MUST NOT be set" outside probe replies.
    pub(crate) fn record(&self, eid: &EidPrefix, mac_afi: MacAfi) -> EidRecord {
        let (addr, mask_len) = eid.to_wire(mac_afi);
        EidRecord {
            ttl: self.ttl_minutes(),
            mask_len,
            act: Act::NO_ACTION,
            authoritative: false,
            reserved: Bits::new(0),
            rsvd: Bits::new(0),
            map_version: Bits::new(u32::from(self.version)),
            eid: addr,
            locators: self
                .locators
                .iter()
                .map(|l| Locator {
                    local: false,
                    probed: false,
                    unused_flags: Bits::new(0),
                    ..l.clone()
                })
                .collect(),
        }
    }
}

/// RFC 9301 §5.5 sort key: IPv4 before IPv6, ascending; anything else after, by bytes.
fn locator_key(a: &LispAddr) -> (u8, Vec<u8>) {
    match a {
        LispAddr::Ipv4(x) => (0, x.octets().to_vec()),
        LispAddr::Ipv6(x) => (1, x.octets().to_vec()),
        other => {
            let mut b = Vec::new();
            other.encode(&mut b);
            (2, b)
        }
    }
}

pub(crate) fn ip_of(a: &LispAddr) -> Option<IpAddr> {
    match a {
        LispAddr::Ipv4(x) => Some(IpAddr::V4(*x)),
        LispAddr::Ipv6(x) => Some(IpAddr::V6(*x)),
        _ => None,
    }
}

pub(crate) fn lisp_addr(ip: IpAddr) -> LispAddr {
    LispAddr::from(ip)
}

/// The locator we advertise for an RLOC: priority 1, weight 100, multicast unused (255),
/// reachable.
pub(crate) fn locator_for(ip: IpAddr, local: bool) -> Locator {
    Locator::new(LispAddr::from(ip), local)
}

/// Replay protection state for one registrant of one site.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum NonceKey {
    Xtr {
        site: usize,
        xtr_id: u128,
        site_id: u64,
    },
    Addr {
        site: usize,
        ip: IpAddr,
    },
}

/// RFC 9301 §5.6: "A Map-Server MUST track and save ... the last nonce received for each ETR
/// xTR-ID and key pair." Registrants without an xTR-ID (OOR sends a new random nonce on every
/// Map-Register, lab/oor/README.md step 3) cannot be held to an increasing nonce; for them the
/// last `RECENT` nonces are remembered and a repeat is refused (a verbatim replay).
#[derive(Clone, Debug)]
enum NonceState {
    Last(u64),
    Recent { ring: [u64; RECENT], pos: usize },
}

const RECENT: usize = 16;

/// Hash probes spent proving that a negative answer covers no mapping (`negative_hole`);
/// past them the answer is given with TTL 0.
const NEGATIVE_PROBES: u32 = 256;

/// Sites not covering a Map-Register's first EID whose key is still tried.
const OTHER_SITES_TRIED: usize = 8;

/// The Map-Server's state.
pub(crate) struct MapServer {
    pub(crate) db: PrefixTable<Mapping>,
    nonces: Map<NonceKey, NonceState>,
    nonce_order: VecDeque<NonceKey>,
    /// RFC 9437 §7.1 security association: an xTR-ID that registered with a site's key may
    /// subscribe, and its publications are signed with that key.
    pub(crate) xtr_sites: Map<u128, usize>,
    xtr_order: VecDeque<u128>,
    /// (IID, family) pairs fed by EVPN: all of that space counts as configured EID space.
    evpn_space: Map<(u32, EidFamily), u32>,
    serial: u64,
}

impl MapServer {
    pub(crate) fn new(seed: u64) -> MapServer {
        MapServer {
            db: PrefixTable::new(seed ^ 0x10),
            nonces: Map::with_hasher(hasher(seed ^ 0x11)),
            nonce_order: VecDeque::new(),
            xtr_sites: Map::with_hasher(hasher(seed ^ 0x12)),
            xtr_order: VecDeque::new(),
            evpn_space: Map::with_hasher(hasher(seed ^ 0x13)),
            serial: 0,
        }
    }

    pub(crate) fn in_evpn_space(&self, eid: &EidPrefix) -> bool {
        self.evpn_space.contains_key(&(eid.iid(), eid.family()))
    }
}

/// Reads Key ID, Algorithm ID and auth data length of a decoded (hence long enough)
/// Map-Register / Map-Notify / Map-Notify-Ack.
pub(crate) fn auth_fields(bytes: &[u8]) -> (u8, u8, usize) {
    let g = |i: usize| bytes.get(i).copied().unwrap_or(0);
    (
        g(AUTH_KEY_ID_OFFSET),
        g(AUTH_KEY_ID_OFFSET + 1),
        usize::from(u16::from_be_bytes([
            g(AUTH_KEY_ID_OFFSET + 2),
            g(AUTH_KEY_ID_OFFSET + 3),
        ])),
    )
}

/// Checks an authenticated message against a site's key and knobs (RFC 9301 §5.6; §5.7
/// "If the Authentication Data fails to validate, the message is dropped").
pub(crate) fn check_site_auth(site: &super::SiteCoreCfg, bytes: &[u8]) -> Result<(), RejectReason> {
    let name = || site.name.clone();
    let (key_id, alg, len) = auth_fields(bytes);
    if alg != site.alg_id {
        return Err(RejectReason::WrongAlgorithm {
            site: name(),
            expected: site.alg_id,
            got: alg,
        });
    }
    // lisp-anchors.md §1.5: RFC 6830's 16-bit Key ID is Key ID byte + Algorithm ID byte in
    // RFC 9301 terms; OOR reads only the low byte. We send and expect Key ID 0.
    if !site.legacy_key_id && key_id != 0 {
        return Err(RejectReason::KeyIdNotAccepted {
            site: name(),
            got: key_id,
        });
    }
    let (full, trunc) = lengths(alg).map_err(|_| RejectReason::WrongAlgorithm {
        site: name(),
        expected: site.alg_id,
        got: alg,
    })?;
    if len == full && full != trunc && !site.untruncated_auth {
        return Err(RejectReason::UntruncatedNotAccepted { site: name(), len });
    }
    if len != full && len != trunc {
        return Err(RejectReason::BadAuthLength { site: name(), len });
    }
    let params = AuthParams {
        key_id: 0,
        alg_id: alg,
        truncate: len == trunc,
        legacy_key_id: site.legacy_key_id,
    };
    verify(bytes, &site.key, &params).map_err(|e| match e {
        AuthError::Mismatch => RejectReason::WrongKey { site: name() },
        _ => RejectReason::BadAuthLength { site: name(), len },
    })
}

impl Lisp {
    /// RFC 9301 §5.6 / §8.2: a Map-Register.
    pub(crate) fn on_map_register(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        m: MapRegister,
    ) -> Result<(), DropReason> {
        self.counters.map_registers_rx += 1;
        if !self.cfg.map_server {
            return Err(DropReason::Unexpected {
                message: "Map-Register (not a map-server)",
            });
        }
        match self.accept_register(bytes, from, &m) {
            Ok((site, eids, nonce_key)) => {
                self.commit_nonce(nonce_key, m.nonce);
                self.counters.registrations_accepted += 1;
                if let Some(x) = m.xtr {
                    self.bind_xtr(x.xtr_id, site);
                }
                let name = self
                    .cfg
                    .sites
                    .get(site)
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                self.event(LispEvent::RegistrationAccepted {
                    site: name,
                    from,
                    eids: eids.clone(),
                    want_map_notify: m.want_map_notify,
                });
                // RFC 9301 §8.2: "A Map-Server that receives a Map-Register with this flag set
                // will respond with a Map-Notify message ... sent to UDP destination port
                // 4342, not to the source port specified in the original Map-Register".
                if m.want_map_notify
                    && let Some(n) = self.solicited_notify(site, bytes, &m)
                {
                    let to = control(from.ip());
                    self.counters.map_notifies_tx += 1;
                    self.send(to, n);
                    self.event(LispEvent::MapNotifySent {
                        to,
                        nonce: m.nonce,
                        kind: NotifyKind::Solicited,
                    });
                }
                let reg = match m.xtr {
                    Some(x) => RegId::Xtr {
                        xtr_id: x.xtr_id,
                        site_id: x.site_id.unwrap_or(0),
                    },
                    None => RegId::Addr(from.ip()),
                };
                for (rec, eid) in m.records.iter().zip(eids) {
                    self.apply_record(now, from, site, reg, &m, rec, eid);
                }
            }
            Err(reason) => {
                self.counters.registrations_rejected += 1;
                match reason {
                    RejectReason::NonceReplay { .. } => self.counters.nonce_replays += 1,
                    RejectReason::EidOutsideSite { .. }
                    | RejectReason::BadEid { .. }
                    | RejectReason::NoRecords
                    | RejectReason::Full => {}
                    _ => self.counters.auth_failures += 1,
                }
                self.event(LispEvent::RegistrationRejected { from, reason });
            }
        }
        Ok(())
    }

    /// Authentication, site policy and replay checks; nothing is changed.
    fn accept_register(
        &self,
        bytes: &[u8],
        from: SocketAddr,
        m: &MapRegister,
    ) -> Result<(usize, Vec<EidPrefix>, NonceKey), RejectReason> {
        let eids = m
            .records
            .iter()
            .map(|r| EidPrefix::from_wire(r.mask_len, &r.eid).map(|(e, _)| e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| RejectReason::BadEid { error })?;
        let Some(first) = eids.first().copied() else {
            return Err(RejectReason::NoRecords);
        };
        let covers = |i: usize, e: &EidPrefix| {
            self.cfg
                .sites
                .get(i)
                .is_some_and(|s| s.eids.iter().any(|p| p.contains(e)))
        };
        // Sites covering the first EID are tried first; a site is the key that verifies.
        // Other sites are tried (to tell "EID outside the site" from "unknown site") up to
        // `OTHER_SITES_TRIED`, so one forged Map-Register costs a bounded number of HMACs.
        let n = self.cfg.sites.len();
        let order = (0..n).filter(|i| covers(*i, &first)).chain(
            (0..n)
                .filter(|i| !covers(*i, &first))
                .take(OTHER_SITES_TRIED),
        );
        let mut first_err = None;
        let mut outside = None;
        let mut site = None;
        for i in order {
            let Some(s) = self.cfg.sites.get(i) else {
                continue;
            };
            match check_site_auth(s, bytes) {
                Ok(()) => match eids.iter().find(|e| !covers(i, e)) {
                    None => {
                        site = Some(i);
                        break;
                    }
                    Some(e) => {
                        outside.get_or_insert((s.name.clone(), *e));
                    }
                },
                Err(e) => {
                    if covers(i, &first) && first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
        let Some(site) = site else {
            if let Some((site, eid)) = outside {
                return Err(RejectReason::EidOutsideSite { site, eid });
            }
            return Err(first_err.unwrap_or(RejectReason::UnknownSite));
        };
        let key = match m.xtr {
            Some(x) => NonceKey::Xtr {
                site,
                xtr_id: x.xtr_id,
                site_id: x.site_id.unwrap_or(0),
            },
            None => NonceKey::Addr {
                site,
                ip: from.ip(),
            },
        };
        let replay = |last| RejectReason::NonceReplay {
            site: self
                .cfg
                .sites
                .get(site)
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            nonce: m.nonce,
            last,
        };
        match self.ms.nonces.get(&key) {
            Some(NonceState::Last(last)) if m.nonce <= *last => return Err(replay(*last)),
            Some(NonceState::Recent { ring, .. }) if ring.contains(&m.nonce) => {
                return Err(replay(m.nonce));
            }
            _ => {}
        }
        Ok((site, eids, key))
    }

    fn commit_nonce(&mut self, key: NonceKey, nonce: u64) {
        let ms = &mut self.ms;
        if let Some(st) = ms.nonces.get_mut(&key) {
            match st {
                NonceState::Last(l) => *l = nonce,
                NonceState::Recent { ring, pos } => {
                    if let Some(slot) = ring.get_mut(*pos % RECENT) {
                        *slot = nonce;
                    }
                    *pos = (*pos + 1) % RECENT;
                }
            }
            return;
        }
        // Bounded: the oldest entry goes first (its xTR could then replay older messages; the
        // cap is `max_nonce_entries` registrants).
        while ms.nonces.len() >= self.cfg.limits.max_nonce_entries.max(1) {
            match ms.nonce_order.pop_front() {
                Some(old) => {
                    ms.nonces.remove(&old);
                }
                None => break,
            }
        }
        let st = match key {
            NonceKey::Xtr { .. } => NonceState::Last(nonce),
            NonceKey::Addr { .. } => {
                let mut ring = [0; RECENT];
                if let Some(s) = ring.first_mut() {
                    *s = nonce;
                }
                NonceState::Recent { ring, pos: 1 }
            }
        };
        ms.nonces.insert(key, st);
        ms.nonce_order.push_back(key);
    }

    fn bind_xtr(&mut self, xtr_id: u128, site: usize) {
        let ms = &mut self.ms;
        if ms.xtr_sites.insert(xtr_id, site).is_none() {
            ms.xtr_order.push_back(xtr_id);
            while ms.xtr_sites.len() > self.cfg.limits.max_xtr_bindings.max(1) {
                match ms.xtr_order.pop_front() {
                    Some(old) => {
                        ms.xtr_sites.remove(&old);
                    }
                    None => break,
                }
            }
        }
    }

    /// RFC 9301 §5.7: "The fields of the Map-Notify are copied from the corresponding
    /// Map-Register to acknowledge its correct processing. In the Map-Notify, the
    /// 'Authentication Data' field is recomputed using the corresponding per-message key".
    /// The records are copied byte for byte (OOR accepts a Map-Notify only if its record is
    /// exactly what it registered, lab/oor/README.md step 3); Key ID, Algorithm ID and auth
    /// length are the Map-Register's; the xTR-ID trailer is not part of a Map-Notify.
    fn solicited_notify(&self, site: usize, bytes: &[u8], m: &MapRegister) -> Option<Vec<u8>> {
        let s = self.cfg.sites.get(site)?;
        let (key_id, alg, len) = auth_fields(bytes);
        let trailer = match m.xtr {
            Some(x) if x.site_id.is_some() => 24,
            Some(_) => 16,
            None => 0,
        };
        let records = bytes.get(AUTH_DATA_OFFSET + len..bytes.len().checked_sub(trailer)?)?;
        let count = u8::try_from(m.records.len()).unwrap_or(u8::MAX);
        let mut out = Vec::with_capacity(AUTH_DATA_OFFSET + len + records.len());
        out.extend_from_slice(&[0x40, 0, 0, count]);
        out.extend_from_slice(&m.nonce.to_be_bytes());
        out.extend_from_slice(&[key_id, alg]);
        out.extend_from_slice(&u16::try_from(len).ok()?.to_be_bytes());
        out.resize(out.len() + len, 0);
        out.extend_from_slice(records);
        let tag = crate::wire::lisp::auth::compute_auth(&out, &s.key, alg, len).ok()?;
        out.get_mut(AUTH_DATA_OFFSET..AUTH_DATA_OFFSET + len)?
            .copy_from_slice(tag.as_slice());
        Some(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_record(
        &mut self,
        now: Instant,
        from: SocketAddr,
        site: usize,
        reg: RegId,
        m: &MapRegister,
        rec: &EidRecord,
        eid: EidPrefix,
    ) {
        // Deregistration: a Record TTL of 0 ("the entry MUST be removed from the cache
        // immediately", RFC 9301 §5.4) ends this registrant's contribution.
        if rec.ttl == 0 {
            self.remove_contribution(now, eid, ChangeCause::Deregister, |c| c.reg == reg);
            return;
        }
        // RFC 9301 §5.6 T bit: "the xTR wants the Map-Server to time out registrations based
        // on the value in the 'Record TTL' field ... Otherwise, the default timeout described
        // in Section 8.2 is used" (3 minutes).
        let life = if m.ttl_timeout {
            Duration::from_secs(u64::from(rec.ttl).saturating_mul(60))
        } else {
            self.cfg.timers.registration_timeout
        };
        let version = u16::try_from(rec.map_version.get()).unwrap_or(0);
        let locators = rec
            .locators
            .iter()
            .map(|l| Locator {
                probed: false,
                ..l.clone()
            })
            .collect();
        let c = NewContribution {
            reg,
            site: Some(site),
            addr: Some(from),
            locators,
            ttl_minutes: rec.ttl,
            proxy: m.proxy_reply,
            merge: m.merge,
            version,
            life: Some(life),
        };
        self.upsert(now, eid, c, ChangeCause::Register);
    }

    /// The EVPN feed (Map-Server role).
    pub(crate) fn ms_set_mapping(
        &mut self,
        now: Instant,
        eid: EidPrefix,
        rloc: Option<IpAddr>,
        version: u16,
    ) {
        match rloc {
            Some(ip) => {
                let c = NewContribution {
                    reg: RegId::Evpn,
                    site: None,
                    addr: None,
                    locators: vec![locator_for(ip, false)],
                    ttl_minutes: self.cfg.timers.mapping_ttl_minutes,
                    proxy: true,
                    merge: false,
                    version,
                    life: None,
                };
                self.upsert(now, eid, c, ChangeCause::Evpn);
            }
            None => {
                self.remove_contribution(now, eid, ChangeCause::Evpn, |c| c.reg == RegId::Evpn);
            }
        }
    }

    fn upsert(&mut self, now: Instant, eid: EidPrefix, n: NewContribution, cause: ChangeCause) {
        let exists = self.ms.db.contains_key(&eid);
        if !exists && self.ms.db.len() >= self.cfg.limits.max_mappings {
            let l = self.local_addr();
            self.dropped(
                n.addr.unwrap_or(l),
                l,
                DropReason::Full { table: "mappings" },
            );
            return;
        }
        if let Some(m) = self.ms.db.get(&eid) {
            // RFC 9302 §5 (via lisp-anchors.md §1.12): a Map-Server receiving an older
            // Map-Version MUST drop it. Null versions (0) are not compared. The EVPN feed is
            // ordered by the EVPN layer (MAC Mobility, RFC 7432 §15) and always applies.
            if n.reg != RegId::Evpn
                && n.version != 0
                && m.version != 0
                && n.version != m.version
                && !version_newer(n.version, m.version)
            {
                self.counters.stale_versions += 1;
                return;
            }
        }
        self.ms.serial += 1;
        let serial = self.ms.serial;
        let expiry = n.life.map(|life| {
            self.timers
                .schedule(now + life, Timer::RegExpire { eid, who: serial })
        });
        let new = Contribution {
            reg: n.reg,
            site: n.site,
            addr: n.addr,
            locators: n.locators,
            ttl_minutes: n.ttl_minutes,
            proxy: n.proxy,
            merge: n.merge,
            version: n.version,
            serial,
            expiry,
            since: now,
            refreshed: now,
        };
        let max_merge = self.cfg.limits.max_merged_registrants.max(1);
        let mut displaced: Vec<Contribution> = Vec::new();
        let mut evpn_delta: i32 = 0;
        let m = self.ms.db.get_or_insert_with(eid, || Mapping {
            contribs: SmallVec::new(),
            locators: Vec::new(),
            version: 0,
            reply_record: None,
        });
        let before = (m.locators.clone(), m.version);
        if let Some(pos) = m.contribs.iter().position(|c| c.reg == new.reg) {
            // A refresh (or an update) by the same registrant.
            if let Some(c) = m.contribs.get_mut(pos) {
                let since = c.since;
                if let Some(h) = c.expiry.take() {
                    self.timers.cancel(h);
                }
                *c = Contribution { since, ..new };
            }
        } else if new.merge && m.contribs.iter().all(|c| c.merge) && !m.contribs.is_empty() {
            if m.contribs.len() >= max_merge {
                if let Some(h) = new.expiry {
                    self.timers.cancel(h);
                }
                return;
            }
            m.contribs.push(new);
        } else {
            // A new owner without merge: a move. The others are displaced.
            for c in m.contribs.drain(..) {
                if let Some(h) = c.expiry {
                    self.timers.cancel(h);
                }
                if c.reg == RegId::Evpn {
                    evpn_delta -= 1;
                }
                displaced.push(c);
            }
            if new.reg == RegId::Evpn {
                evpn_delta += 1;
            }
            m.contribs.push(new);
        }
        m.recompute();
        let after = (m.locators.clone(), m.version);
        self.evpn_space_add(&eid, evpn_delta);
        if before != after {
            // Only registrants whose RLOCs are no longer part of the mapping are told.
            let now_rlocs = after.0;
            displaced.retain(|c| {
                c.addr.is_some()
                    && !c
                        .locators
                        .iter()
                        .all(|l| now_rlocs.iter().any(|x| x.addr == l.addr))
            });
            self.mapping_changed(now, eid, cause, &displaced);
        }
    }

    fn evpn_space_add(&mut self, eid: &EidPrefix, delta: i32) {
        if delta == 0 {
            return;
        }
        let k = (eid.iid(), eid.family());
        let e = self.ms.evpn_space.entry(k).or_insert(0);
        *e = u32::try_from(i64::from(*e) + i64::from(delta)).unwrap_or(0);
        if *e == 0 {
            self.ms.evpn_space.remove(&k);
        }
    }

    /// Removes the contributions matching `pred`; reports the change.
    pub(crate) fn remove_contribution(
        &mut self,
        now: Instant,
        eid: EidPrefix,
        cause: ChangeCause,
        pred: impl Fn(&Contribution) -> bool,
    ) -> bool {
        let Some(m) = self.ms.db.get_mut(&eid) else {
            return false;
        };
        let before = (m.locators.clone(), m.version);
        let mut removed_evpn = 0;
        let mut any = false;
        let mut i = 0;
        while i < m.contribs.len() {
            if m.contribs.get(i).is_some_and(&pred) {
                let c = m.contribs.remove(i);
                if let Some(h) = c.expiry {
                    self.timers.cancel(h);
                }
                if c.reg == RegId::Evpn {
                    removed_evpn += 1;
                }
                any = true;
            } else {
                i += 1;
            }
        }
        if !any {
            return false;
        }
        let gone = m.contribs.is_empty();
        m.recompute();
        let after = (m.locators.clone(), m.version);
        if gone {
            self.ms.db.remove(&eid);
        }
        self.evpn_space_add(&eid, -removed_evpn);
        if gone || before != after {
            self.mapping_changed(now, eid, cause, &[]);
        }
        true
    }

    /// A registration timed out (RFC 9301 §8.2: "A Map-Server SHOULD time out and remove an
    /// ETR's registration if it has not received a valid Map-Register message within the past
    /// three minutes").
    pub(crate) fn on_reg_expire(&mut self, now: Instant, h: TimerHandle, eid: EidPrefix, who: u64) {
        let label = self
            .ms
            .db
            .get(&eid)
            .and_then(|m| {
                m.contribs
                    .iter()
                    .find(|c| c.serial == who && c.expiry == Some(h))
            })
            .map(|c| c.reg.label());
        let Some(label) = label else { return };
        if let Some(c) = self
            .ms
            .db
            .get_mut(&eid)
            .and_then(|m| m.contribs.iter_mut().find(|c| c.serial == who))
        {
            c.expiry = None; // already fired
        }
        self.counters.registrations_expired += 1;
        self.event(LispEvent::RegistrationExpired {
            eid,
            registrant: label,
        });
        self.remove_contribution(now, eid, ChangeCause::Expiry, |c| c.serial == who);
    }

    /// Everything a mapping change causes, queued now: the event, the Map-Notify to each
    /// displaced registrant, publications to subscribers (RFC 9437 §6) and SMRs to recent
    /// requesters (RFC 9301 §6.1).
    fn mapping_changed(
        &mut self,
        now: Instant,
        eid: EidPrefix,
        cause: ChangeCause,
        displaced: &[Contribution],
    ) {
        let (rlocs, version) = self
            .ms
            .db
            .get(&eid)
            .map(|m| (m.rloc_ips(), m.version))
            .unwrap_or_default();
        self.event(LispEvent::MappingChanged {
            eid,
            rlocs,
            version,
            cause,
        });
        for c in displaced {
            self.notify_previous_registrant(now, eid, c);
        }
        if self.cfg.pubsub {
            self.publish(now, eid);
        }
        if self.cfg.smr {
            self.smr_on_change(now, eid);
        }
    }

    /// The EID moved away from this registrant: an unsolicited Map-Notify with the new
    /// mapping, signed with its site's key and retransmitted until acknowledged
    /// (lisp-anchors.md §1.11: lispers.net and Cisco notify the previous RLOCs; RFC 9301 §5.7
    /// for the retransmission).
    fn notify_previous_registrant(&mut self, now: Instant, eid: EidPrefix, c: &Contribution) {
        let (Some(addr), Some(site)) = (c.addr, c.site) else {
            return;
        };
        let Some(s) = self.cfg.sites.get(site) else {
            return;
        };
        let (key, params) = (s.key.clone(), s.send_params());
        let rec = match self.ms.db.get(&eid) {
            Some(m) => m.record(&eid, self.cfg.mac_afi),
            None => removal_record(&eid, self.cfg.mac_afi),
        };
        let mut records = Vec::new();
        rec.encode(&mut records);
        let nonce = self.rng.nonce();
        let Ok(bytes) = super::pubsub::notify_bytes(nonce, 1, &records, &key, &params) else {
            return;
        };
        self.send_reliable(
            now,
            smallvec::smallvec![control(addr.ip())],
            bytes,
            nonce,
            site,
            Purpose::PreviousRegistrant { eid },
            NotifyKind::PreviousRegistrant,
        );
    }

    /// Whether `eid` lies in configured EID space: a site's prefixes or an IID fed by EVPN
    /// (a configured VNI, or an IID the feed has put mappings in).
    pub(crate) fn configured(&self, eid: &EidPrefix) -> bool {
        self.cfg.evpn_iids.contains(&eid.iid())
            || self.ms.in_evpn_space(eid)
            || self
                .cfg
                .sites
                .iter()
                .any(|s| s.eids.iter().any(|p| p.contains(eid)))
    }

    /// The negative answer to a query `q` no mapping covers: (prefix, Record TTL minutes).
    ///
    /// RFC 9301 §8.3: "the Map-Server first checks to see if the destination EID matches a
    /// configured EID-Prefix. If there is no match, the Map-Server returns a Negative
    /// Map-Reply with action code 'Natively-Forward' and a 15-minute TTL" (for the least-
    /// specific hole, §8.4); "Next, the Map-Server checks to see if any ETRs have registered
    /// the matching EID-Prefix. If none are found, then the Map-Server returns a Negative
    /// Map-Reply with action code 'Natively-Forward' and a 1-minute TTL" (for `q` itself).
    ///
    /// §8.4 also wants a prefix that "does not match any EID-Prefix known to exist". `q` is
    /// not always a host: an ITR answering an SMR asks for the prefix it has cached (OOR,
    /// lab/oor/README.md step 4), and a mapping may have appeared inside it since. When the
    /// database may hold a more-specific prefix inside the answer, the TTL is 0 — §5.4: "If
    /// it is set to 0, the entry MUST be removed from the cache immediately" — so the ITR
    /// drops its covering negative entry and asks again for the destinations themselves
    /// (found by the live OOR suite: a 10.64.0.0/10 negative re-asserted for 15 minutes
    /// over a VM that had just appeared at 10.107.0.50).
    pub(crate) fn negative_hole(&self, q: &EidPrefix) -> (EidPrefix, u32) {
        let t = &self.cfg.timers;
        let (hole, ttl) = if self.configured(q) {
            (*q, t.negative_ttl_hole_minutes)
        } else {
            (self.least_specific_hole(q), t.negative_ttl_non_eid_minutes)
        };
        if self.ms.db.may_hold_inside(&hole, NEGATIVE_PROBES) {
            (hole, 0)
        } else {
            (hole, ttl)
        }
    }

    /// RFC 9301 §8.4: "the Map-Resolver SHOULD return the least-specific prefix that both
    /// matches the original query and does not match any EID-Prefix known to exist". For a
    /// query outside configured space: the shortest `q/n` that contains no configured prefix
    /// of the same IID and family, i.e. `n = 1 + max over prefixes P of min(P.len,
    /// common_len(q, P))`.
    pub(crate) fn least_specific_hole(&self, q: &EidPrefix) -> EidPrefix {
        let mut n = 0u8;
        for s in &self.cfg.sites {
            for p in &s.eids {
                if p.iid() == q.iid() && p.family() == q.family() {
                    let shared = q.common_len(p).min(p.prefix_len());
                    n = n.max(shared.saturating_add(1));
                }
            }
        }
        q.truncate(n.min(q.prefix_len()))
    }

    /// Registrations, sorted by EID (the API's `/v1/lisp/registrations`).
    pub fn registrations(&self, now: Instant) -> Vec<RegistrationView> {
        let mut v: Vec<RegistrationView> = self
            .ms
            .db
            .iter()
            .map(|(eid, m)| RegistrationView {
                eid: *eid,
                rlocs: m.rloc_ips(),
                version: m.version,
                proxy_reply: m.proxy(),
                ttl_minutes: m.ttl_minutes(),
                registrants: m
                    .contribs
                    .iter()
                    .map(|c| RegistrantView {
                        source: if c.reg == RegId::Evpn {
                            "evpn"
                        } else {
                            "map-register"
                        },
                        site: c
                            .site
                            .and_then(|i| self.cfg.sites.get(i))
                            .map(|s| s.name.clone()),
                        address: c.addr,
                        xtr_id: match c.reg {
                            RegId::Xtr { xtr_id, .. } => Some(xtr_id),
                            _ => None,
                        },
                        rlocs: c.locators.iter().filter_map(|l| ip_of(&l.addr)).collect(),
                        merge: c.merge,
                        proxy_reply: c.proxy,
                        registered_secs: now.saturating_duration_since(c.since).as_secs(),
                        refreshed_secs: now.saturating_duration_since(c.refreshed).as_secs(),
                        expires_in_secs: c
                            .expiry
                            .map(|h| h.at().saturating_duration_since(now).as_secs()),
                    })
                    .collect(),
            })
            .collect();
        v.sort_by_key(|a| a.eid);
        v
    }
}

/// A record saying "gone": TTL 0, no locators (RFC 9437 §5: "the Map-Server notifies its
/// subscribers (if any) via a Map-Notify with TTL equal to 0").
pub(crate) fn removal_record(eid: &EidPrefix, mac_afi: MacAfi) -> EidRecord {
    let (addr, mask_len) = eid.to_wire(mac_afi);
    EidRecord {
        ttl: 0,
        mask_len,
        act: Act::NO_ACTION,
        authoritative: false,
        reserved: Bits::new(0),
        rsvd: Bits::new(0),
        map_version: Bits::new(0),
        eid: addr,
        locators: Vec::new(),
    }
}

struct NewContribution {
    reg: RegId,
    site: Option<usize>,
    addr: Option<SocketAddr>,
    locators: Vec<Locator>,
    ttl_minutes: u32,
    proxy: bool,
    merge: bool,
    version: u16,
    life: Option<Duration>,
}

/// One mapping in the Map-Server database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegistrationView {
    pub eid: EidPrefix,
    pub rlocs: Vec<IpAddr>,
    pub version: u16,
    pub proxy_reply: bool,
    pub ttl_minutes: u32,
    pub registrants: Vec<RegistrantView>,
}

/// One contribution to a mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegistrantView {
    /// `map-register` or `evpn`.
    pub source: &'static str,
    pub site: Option<String>,
    pub address: Option<SocketAddr>,
    #[serde(serialize_with = "ser_opt_u128_hex")]
    pub xtr_id: Option<u128>,
    pub rlocs: Vec<IpAddr>,
    pub merge: bool,
    pub proxy_reply: bool,
    pub registered_secs: u64,
    pub refreshed_secs: u64,
    pub expires_in_secs: Option<u64>,
}

fn ser_opt_u128_hex<S: serde::Serializer>(v: &Option<u128>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => ser_u128_hex(v, s),
        None => s.serialize_none(),
    }
}

impl MapServer {
    /// Site indices after a reload (`remap[old] = new`, `None` = the site is gone): the
    /// replay-nonce entries and xTR-ID bindings of a removed site are forgotten, the others
    /// follow their site. Contributions are the caller's (`Lisp::set_sites`).
    pub(crate) fn remap_sites(&mut self, remap: &[Option<usize>]) {
        let to = |i: usize| remap.get(i).copied().flatten();
        let rekey = |k: NonceKey| match k {
            NonceKey::Xtr {
                site,
                xtr_id,
                site_id,
            } => to(site).map(|site| NonceKey::Xtr {
                site,
                xtr_id,
                site_id,
            }),
            NonceKey::Addr { site, ip } => to(site).map(|site| NonceKey::Addr { site, ip }),
        };
        let order = std::mem::take(&mut self.nonce_order);
        let kept: Vec<_> = order
            .into_iter()
            .filter_map(|k| Some((rekey(k)?, self.nonces.remove(&k)?)))
            .collect();
        self.nonces.clear();
        for (k, st) in kept {
            self.nonces.insert(k, st);
            self.nonce_order.push_back(k);
        }
        self.xtr_sites.retain(|_, s| match to(*s) {
            Some(n) => {
                *s = n;
                true
            }
            None => false,
        });
        let sites = &self.xtr_sites;
        self.xtr_order.retain(|x| sites.contains_key(x));
    }
}
