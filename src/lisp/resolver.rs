//! Map-Resolver / Map-Server Map-Request processing (RFC 9301 §8.3, §8.4): Map-Requests
//! plain and in an ECM, proxy Map-Replies, forwarding to the registered ETR, negative
//! Map-Replies, and the Map-Reply rate limit.
//!
//! Owns: the Map-Request hot path and `ReplyLimiter`.
//! Must not: change the mapping database; subscriptions are handed to pubsub.rs, SMRs to
//! xtr.rs (receipt) and smr.rs (requester tracking).
//!
//! Decisions, in the order RFC 9301 §8.3 takes them for each requested record:
//! 1. "the Map-Server first checks to see if the destination EID matches a configured
//!    EID-Prefix. If there is no match, the Map-Server returns a Negative Map-Reply with action
//!    code 'Natively-Forward' and a 15-minute TTL" — with the least-specific prefix of §8.4.
//! 2. "Next, the Map-Server checks to see if any ETRs have registered the matching
//!    EID-Prefix. If none are found, then the Map-Server returns a Negative Map-Reply with
//!    action code 'Natively-Forward' and a 1-minute TTL."
//! 3. "If any of the registered ETRs for the EID-Prefix have requested proxy reply service,
//!    then the Map-Server answers the request instead of forwarding it."
//! 4. "If none of the ETRs have requested proxy reply service, then the Map-Server
//!    re-encapsulates and forwards the resulting Encapsulated Map-Request to one of the
//!    registered ETRs. It does not otherwise alter the Map-Request".
//!
//! The Map-Reply goes to an ITR-RLOC, "The destination port of a Map-Reply message is copied
//! from the source port of the Map-Request" (§5.5) — the inner UDP source port for an ECM.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::eid::EidPrefix;
use super::pubsub::{SubOutcome, negative_record};
use super::{DropReason, Lisp, Map, control, hasher};
use crate::wire::lisp::ecm::{InnerIp, Ipv4Header, Ipv6Header};
use crate::wire::lisp::{Act, Bits, Ecm, LispAddr, LispMsg, MapRequest};

/// What we know about an ECM carrying a Map-Request.
pub(crate) struct EcmCtx<'a> {
    /// The whole ECM as received (forwarded verbatim to an ETR).
    pub(crate) bytes: &'a [u8],
    pub(crate) inner_sport: u16,
}

/// RFC 9301 §5.4: "Map-Replies MUST be rate limited." A token bucket per destination RLOC,
/// `LispLimits::map_replies_per_rloc` tokens per second and as deep. The RFC's RECOMMENDED
/// one per 3 s is meant for ETR replies to data-driven requests; a Map-Resolver answers every
/// cache miss of an ITR, so the rate is a knob.
pub(crate) struct ReplyLimiter {
    buckets: Map<IpAddr, (u64, Instant)>,
    last_sweep: Option<Instant>,
}

/// Nanotokens per token.
const NANO: u128 = 1_000_000_000;

impl ReplyLimiter {
    pub(crate) fn new(seed: u64) -> ReplyLimiter {
        ReplyLimiter {
            buckets: Map::with_hasher(hasher(seed ^ 0x30)),
            last_sweep: None,
        }
    }

    /// Takes a token for `to`; `false` when the bucket is empty.
    fn allow(&mut self, now: Instant, to: IpAddr, rate: u32, max_entries: usize) -> bool {
        let cap = u128::from(rate) * NANO;
        if !self.buckets.contains_key(&to) && self.buckets.len() >= max_entries {
            // Full: forget buckets idle long enough to be full again (a sweep at most once a
            // second, so a flood of new sources cannot make every packet scan the table); a
            // new destination is refused while the table stays full.
            let second = std::time::Duration::from_secs(1);
            if self
                .last_sweep
                .is_none_or(|t| now.saturating_duration_since(t) >= second)
            {
                self.last_sweep = Some(now);
                self.buckets
                    .retain(|_, (_, last)| now.saturating_duration_since(*last) < second);
            }
            if self.buckets.len() >= max_entries {
                return false;
            }
        }
        let (tokens, last) = self
            .buckets
            .entry(to)
            .or_insert((u64::try_from(cap).unwrap_or(u64::MAX), now));
        let elapsed = now.saturating_duration_since(*last).as_nanos();
        let refilled = (u128::from(*tokens) + elapsed.saturating_mul(u128::from(rate))).min(cap);
        *last = now;
        if refilled >= NANO {
            *tokens = u64::try_from(refilled - NANO).unwrap_or(u64::MAX);
            true
        } else {
            *tokens = u64::try_from(refilled).unwrap_or(0);
            false
        }
    }
}

impl Lisp {
    /// RFC 9301 §5.8 / §8.4: an Encapsulated Control Message.
    pub(crate) fn on_ecm(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        ecm: Ecm,
    ) -> Result<(), DropReason> {
        if !(self.cfg.map_server || self.cfg.map_resolver) {
            return Err(DropReason::Unexpected {
                message: "ECM (no map-server or map-resolver role)",
            });
        }
        if ecm.ddt {
            return Err(DropReason::Unexpected {
                message: "ECM with the DDT bit (LISP-DDT is not supported)",
            });
        }
        let inner_sport = ecm.udp.src_port;
        match *ecm.msg {
            LispMsg::MapRequest(req) => {
                // RFC 9301 §5.8: "When Map-Requests are sent for RLOC-Probing purposes (i.e.,
                // the probe-bit is set), they MUST NOT be sent inside Encapsulated Control
                // Messages."
                if req.probe {
                    return Err(DropReason::Probe);
                }
                self.on_map_request(now, from, req, Some(EcmCtx { bytes, inner_sport }))
            }
            _ => Err(DropReason::EcmPayload),
        }
    }

    /// A Map-Request (plain, or the payload of `ecm`).
    pub(crate) fn on_map_request(
        &mut self,
        now: Instant,
        from: SocketAddr,
        req: MapRequest,
        ecm: Option<EcmCtx<'_>>,
    ) -> Result<(), DropReason> {
        self.counters.map_requests_rx += 1;
        if req.smr {
            return self.on_smr(now, from, &req);
        }
        // RFC 9301 §5.2: "If a Map-Resolver or Map-Server receives a Map-Request with the
        // probe-bit set, it MUST drop the message." RLOC-probing is not implemented on the
        // xTR either.
        if req.probe {
            return Err(DropReason::Probe);
        }
        if !(self.cfg.map_server || self.cfg.map_resolver) {
            // The xTR registers with the proxy bit and answers nothing; an SMR-invoked request
            // sent to it directly is refused (RFC 9301 §6.1: "the SMR-invoked Map-Request
            // MUST be sent through the Mapping System (not directly)").
            return Err(DropReason::Unexpected {
                message: "Map-Request (no map-server or map-resolver role)",
            });
        }
        // RFC 9301 §6.1: the SMR-invoked Map-Request is the answer to our SMR; "The ETR then
        // stops sending SMR messages" (smr.rs retransmits until it arrives)
        if req.smr_invoked {
            self.smr_answered(from.ip(), &req);
        }
        let reply_to = pick_itr_rloc(&req.itr_rlocs, from.ip());
        let unsubscribe =
            req.itr_rlocs.len() == 1 && req.itr_rlocs.first() == Some(&LispAddr::None);
        if reply_to.is_none() && !(unsubscribe && req.xtr.is_some()) {
            return Err(DropReason::NoItrRloc);
        }
        let port = ecm.as_ref().map_or(from.port(), |e| e.inner_sport);
        let src_eid = EidPrefix::host_from_wire(&req.source_eid);
        let mut records: Vec<u8> = Vec::with_capacity(64);
        let mut count: u8 = 0;
        let mut negatives = 0u64;
        let mut forward: Option<(SocketAddr, EidPrefix)> = None;
        let mut first_err = None;
        let mut any = false;
        for rr in &req.records {
            let (eid, afi) = match EidPrefix::from_wire(rr.mask_len, &rr.eid) {
                Ok(x) => x,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            any = true;
            let mac_afi = afi.unwrap_or(self.cfg.mac_afi);
            if rr.notify
                && let Some(xtr) = req.xtr
            {
                match self.subscribe(now, from, &req, xtr, eid, mac_afi) {
                    SubOutcome::Notified => {}
                    SubOutcome::Negative(rec) => {
                        rec.encode(&mut records);
                        count = count.saturating_add(1);
                        negatives += 1;
                    }
                    SubOutcome::Drop(reason) => {
                        let l = self.local_addr();
                        self.dropped(from, l, reason);
                    }
                }
                continue;
            }
            let Some(itr) = reply_to else { continue };
            match self.ms.db.lpm(&eid) {
                Some((p, m)) => {
                    let ttl = m.ttl_minutes();
                    if m.proxy() {
                        self.append_proxy_record(&p, mac_afi, &mut records);
                        count = count.saturating_add(1);
                    } else if let Some(etr) = m.etr() {
                        forward.get_or_insert((control(etr.ip()), eid));
                    }
                    self.smr_track(now, p, itr, src_eid, ttl);
                }
                None => {
                    // RFC 9301 §8.3 steps 1-2 and §8.4 (`negative_hole`)
                    let (hole, ttl) = self.negative_hole(&eid);
                    negative_record(&hole, mac_afi, Act::NATIVELY_FORWARD, ttl)
                        .encode(&mut records);
                    count = count.saturating_add(1);
                    negatives += 1;
                    // An ITR that cached "not registered" is told when the EID appears.
                    self.smr_track(now, hole, itr, src_eid, ttl);
                }
            }
        }
        if !any && let Some(error) = first_err {
            return Err(DropReason::BadEid { error });
        }
        if let Some((etr, eid)) = forward {
            self.forward_to_etr(etr, &req, ecm.as_ref(), reply_to, port, &eid);
        }
        // RFC 9301 §5.2 D bit: "When this bit is set, the receiver of the Map-Request does
        // not return a Map-Reply."
        if count == 0 || req.dont_map_reply {
            return Ok(());
        }
        let Some(itr) = reply_to else { return Ok(()) };
        if let Some(rate) = self.cfg.limits.map_replies_per_rloc {
            let max = self.cfg.limits.max_reply_limiter_entries.max(1);
            if !self.limiter.allow(now, itr, rate, max) {
                self.counters.replies_rate_limited += 1;
                return Err(DropReason::RateLimited);
            }
        }
        let mut out = Vec::with_capacity(12 + records.len());
        out.extend_from_slice(&[0x20, 0, 0, count]);
        out.extend_from_slice(&req.nonce.to_be_bytes());
        out.extend_from_slice(&records);
        self.counters.map_replies_tx += 1;
        self.counters.negative_replies_tx += negatives;
        self.send(SocketAddr::new(itr, port), out);
        Ok(())
    }

    /// Appends the proxy-reply record of mapping `p`, from the per-mapping cache when the MAC
    /// AFI is our default.
    fn append_proxy_record(
        &mut self,
        p: &EidPrefix,
        mac_afi: crate::wire::lisp::MacAfi,
        out: &mut Vec<u8>,
    ) {
        let default = mac_afi == self.cfg.mac_afi;
        let Some(m) = self.ms.db.get_mut(p) else {
            return;
        };
        if default && let Some(b) = &m.reply_record {
            out.extend_from_slice(b);
            return;
        }
        let mut b = Vec::new();
        m.record(p, mac_afi).encode(&mut b);
        out.extend_from_slice(&b);
        if default {
            m.reply_record = Some(b);
        }
    }

    /// RFC 9301 §8.3 step 4: the Map-Request goes to the ETR in an ECM. An ECM is forwarded
    /// as received (OOR does the same, lab/oor/README.md step 5); a plain Map-Request is
    /// encapsulated with an inner header from the ITR-RLOC to the EID, inner UDP source port =
    /// the request's, so the ETR's Map-Reply reaches the ITR.
    fn forward_to_etr(
        &mut self,
        etr: SocketAddr,
        req: &MapRequest,
        ecm: Option<&EcmCtx<'_>>,
        itr: Option<IpAddr>,
        port: u16,
        eid: &EidPrefix,
    ) {
        let bytes = match ecm {
            Some(e) => e.bytes.to_vec(),
            None => {
                let Some(src) = itr else { return };
                let Some(ip) = inner_header(src, eid.ip(), etr.ip()) else {
                    return;
                };
                LispMsg::Ecm(Ecm::new(ip, port, LispMsg::MapRequest(req.clone()))).to_bytes()
            }
        };
        self.counters.map_requests_forwarded += 1;
        self.send(etr, bytes);
    }
}

/// An inner IP header from `src` to `dst` (or to `fallback` when `dst` is absent or of the
/// other family), TTL 64, UDP. `None` when no destination has `src`'s family.
pub(crate) fn inner_header(src: IpAddr, dst: Option<IpAddr>, fallback: IpAddr) -> Option<InnerIp> {
    let same = |d: &IpAddr| d.is_ipv4() == src.is_ipv4();
    let dst = dst.filter(same).or(Some(fallback).filter(same))?;
    Some(match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => InnerIp::V4(Ipv4Header {
            tos: 0,
            total_length: 0,
            id: 0,
            flags_fragment: 0x4000,
            ttl: 64,
            checksum: 0,
            src: s,
            dst: d,
            options: Vec::new(),
        }),
        (IpAddr::V6(s), IpAddr::V6(d)) => InnerIp::V6(Ipv6Header {
            traffic_class: 0,
            flow_label: Bits::new(0),
            payload_length: 0,
            hop_limit: 64,
            src: s,
            dst: d,
        }),
        _ => return None,
    })
}

/// The Map-Reply destination: "copied from one of the 'ITR-RLOC' fields" (RFC 9301 §5.5) —
/// the first IPv4/IPv6 one of `from`'s family, else the first IPv4/IPv6 one.
fn pick_itr_rloc(rlocs: &[LispAddr], from: IpAddr) -> Option<IpAddr> {
    let ips = || {
        rlocs.iter().filter_map(|a| match a {
            LispAddr::Ipv4(x) => Some(IpAddr::V4(*x)),
            LispAddr::Ipv6(x) => Some(IpAddr::V6(*x)),
            _ => None,
        })
    };
    ips()
        .find(|ip| ip.is_ipv4() == from.is_ipv4())
        .or_else(|| ips().next())
        .filter(|ip| !ip.is_unspecified())
}
