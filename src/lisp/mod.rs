//! The LISP control plane, sans-IO: Map-Server, Map-Resolver, publish/subscribe, SMR and the
//! xTR registration client, driven by UDP 4342 payloads, time and the EVPN mapping feed.
//!
//! Owns: sites and their keys, registrations and their expiry, Map-Register authentication and
//! replay protection, the mapping database, Map-Request resolution (proxy reply, forwarding to
//! the ETR, negative replies), subscriptions (RFC 9437), the reliable delivery of unsolicited
//! Map-Notifies, SMR state and rate limits, and the xTR side (registration, map-cache, SMR and
//! publication receipt).
//! Must not: touch sockets, tokio, clocks or BGP — time comes in as `now`, timers go out as the
//! deadline `poll_timeout` returns, datagrams go out as `Output::Send`. Message layouts and
//! HMACs are `wire::lisp`'s.
//!
//! ```text
//!   runtime (UDP 4342 task) ──handle_packet / handle_timeout──▶ Lisp ──poll_output──▶ runtime
//!   evpn (MAC/IP location)  ──set_mapping───────────────────────▶  │
//!        map_server.rs (sites, auth, registrations, merge, expiry, Map-Notify to the old ETR)
//!        resolver.rs   (Map-Request / ECM: proxy reply, forward to ETR, negative reply)
//!        pubsub.rs     (RFC 9437 subscriptions; reliable Map-Notify retransmission for all)
//!        smr.rs        (who asked for which EID; SMR fan-out with per-RLOC rate limit)
//!        xtr.rs        (register local EIDs, map-cache, SMR / publication receipt)
//!        eid.rs        (EidPrefix, PrefixTable)     timers.rs (deadlines, nonce PRNG)
//! ```
//!
//! # Driving it (the runtime)
//! - Every datagram received on the LISP socket: `handle_packet(now, from, to_local, bytes)`.
//! - Sleep until `poll_timeout()`; then `handle_timeout(now)`.
//! - After every call, drain `poll_output()`: `Output::Send { to, bytes }` is one UDP datagram
//!   from the LISP socket (source port 4342) to `to`; `Output::Event` is for logs, the API's
//!   move timeline and metrics.
//! - The EVPN layer reports every local and remote MAC/IP location change with
//!   `set_mapping(now, eid, rloc, seq)` (`rloc = None` when the EID is gone everywhere); the
//!   Map-Notifies and SMRs it causes are queued by that same call, so the runtime sends them
//!   in the event-loop turn that sends the EVPN UPDATE.
//!
//! # Decisions and their RFC text
//! Quoted at each decision in the files. Summary of timers (`LispTimers`, RFC defaults):
//! Map-Register every 60 s, quick registration every 20 s for 5 min after a change, a
//! registration lives 3 min without refresh (RFC 9301 §8.2) or its Record TTL with the T bit
//! (§5.6); Map-Register retransmitted after 1 s doubling to 60 s until the Map-Notify (§5.7);
//! unsolicited Map-Notify retransmitted at +3, +6, +9, +15, +27, +51 s and given up at +99 s
//! (§5.7: 3 tries 3 s apart, then 3 more with the interval doubled); negative Map-Reply TTL
//! 15 min outside configured EID space (every configured VNI's IID is configured space), 1 min
//! for unregistered configured space (§8.3), 0 when the answer may cover a mapping (§8.4); SMRs at
//! most one per 3 s per destination RLOC, SMR-invoked Map-Requests at most one per 3 s per
//! EID-prefix (§6.1); an SMR with no SMR-invoked Map-Request back is sent again after 3 s, at
//! most twice (§6.1 "The ETR then stops sending SMR messages", OOR's bounds; smr.rs);
//! Map-Requests retransmitted once a second (§5.3).
//!
//! # Bounds (`LispLimits`)
//! Every table has a cap; input past a cap is refused and counted, never grown: sites, mapping
//! entries, registrants merged per EID, replay-nonce entries, xTR-ID bindings, subscriptions
//! (then `Drop/Policy-Denied`, RFC 9437 §5), Map-Notifies kept for retransmission (past it:
//! sent once), ITR-RLOCs kept per subscriber, records per publication, SMR requesters per EID
//! and in total, queued SMRs per RLOC, SMRs awaiting their SMR-invoked request (past it: sent
//! once), map-cache entries, outstanding Map-Requests and
//! Map-Registers, Map-Reply rate per destination RLOC, HMACs tried per Map-Register (covering
//! sites + 8). Every retransmission schedule is finite.
//!
//! # Absent (documented, not built)
//! - LISP-SEC (RFC 9303): an ECM with the S bit is refused by the codec; Map-Replies carry no
//!   security data. RFC 9301 §9 says it MUST be implemented; this is a closed-DC deployment gap.
//! - Persistent nonce storage (RFC 9301 §5.6 "MUST ... save in persistent storage"): the
//!   Map-Server's replay table is in memory; the xTR's nonces start from `nonce_seed`, which
//!   the shell derives from the wall clock so they keep increasing across restarts.
//! - RLOC-probing (§7.1), Data-Probes, DDT (RFC 8111) and Map-Referrals, NAT traversal, the
//!   reliable TCP transport draft, LISP-SEC-derived PubSubKeys (RFC 9437 §7.1: we use the
//!   pre-shared site key learned from the xTR's authenticated Map-Register).
//! - Returning every more-specific prefix under a matched less-specific one (§5.5 example):
//!   a Map-Reply carries the single longest match per requested record.
//! - Map-Request verification of piggybacked Map-Reply records (M bit): they are ignored.
//! - The xTR answers no Map-Requests (it always registers with the proxy-reply P bit) and does
//!   not learn remote mappings from the EVPN feed.
//! - Pacing of unsolicited Map-Notifies (RFC 9301 §5.7 points to RFC 8085 congestion control;
//!   RFC 9437 §5 "SHOULD be configured with policies to control ... the pace"): a publication
//!   leaves as one burst, one datagram per subscriber; only their number is capped.
//! - Per-registrant Map-Notify knobs: an RFC 6830-era xTR (OOR) gets the Map-Notify to the
//!   previous registrant too and never acknowledges it (no type 5): six retransmissions, then
//!   given up.
//!
//! # Deviations, on purpose
//! - Replay protection for Map-Registers without an xTR-ID (RFC 9301 §5.6 keys it on xTR-ID):
//!   OOR sends a new random nonce on every Map-Register, so for such registrants only a repeat
//!   of one of the last 16 nonces is refused.
//! - Map-Reply rate limit: RFC 9301 §5.4 RECOMMENDS one per 3 s per destination RLOC, meant for
//!   ETRs; a Map-Resolver answers every cache miss of an ITR, so the default is 10,000/s per
//!   RLOC (`LispLimits::map_replies_per_rloc`).
//! - Map-Register retransmissions carry a new nonce (the RFC says "retransmit the original";
//!   a Map-Server that saw the original would drop the copy as a replay).
//! - A change is registered at once, outside the 20 s quick-registration cadence.
//! - SMRs come from the Map-Server to the ITRs that asked it (draft-rodrigueznatal-lisp-ms-smr,
//!   lisp-anchors.md §1.9), not data-driven from the old ETR.
//! - Pub/sub security association (RFC 9437 §7.1): the site key of the xTR-ID's
//!   authenticated registration, or `pubsub_default_site` for ITRs that never registered.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod eid;
mod map_server;
mod pubsub;
mod reconfig;
mod resolver;
mod smr;
mod timers;
mod xtr;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use eid::{EidError, EidFamily, EidPrefix, IID_MASK_LEN};
pub use map_server::{RegistrantView, RegistrationView};
pub use pubsub::SubscriberView;
pub use xtr::MapCacheView;

use crate::config::{LispAuth, LispCfg, LispRole, PeerAddr, parse_eid};
use crate::wire::lisp::auth::{
    ALG_HMAC_SHA1_96, ALG_HMAC_SHA256_128, ALG_HMAC_SHA256_128_HKDF, AuthParams,
};
use crate::wire::lisp::fields::ser_u128_hex;
use crate::wire::lisp::{LispMsg, MacAfi};
use timers::{Rng, Timer, Timers};

/// The well-known LISP control port (RFC 9301 §12.1).
pub const LISP_CONTROL_PORT: u16 = 4342;

/// The hasher of the core's maps: foldhash with a seed from the configuration, so a run is
/// reproducible in tests and unpredictable to peers in production.
pub type Hasher = foldhash::fast::FixedState;
pub(crate) type Map<K, V> = HashMap<K, V, Hasher>;

pub(crate) fn hasher(seed: u64) -> Hasher {
    foldhash::fast::FixedState::with_seed(seed)
}

/// One Map-Server site (`[[lisp.site]]`): who may register which EIDs with which key.
#[derive(Clone, Debug)]
pub struct SiteCoreCfg {
    pub name: String,
    pub key: Vec<u8>,
    /// Algorithm ID required in Map-Registers (1, 2 or 3).
    pub alg_id: u8,
    /// Accept the RFC 6830 16-bit Key ID: the Key ID byte is not checked (OOR writes 0x0001
    /// and reads only the low byte).
    pub legacy_key_id: bool,
    /// Accept the untruncated HMAC (20 bytes for SHA-1, 32 for SHA-256) that OOR and
    /// lispers.net send; without it only the RFC lengths (12 / 16) verify.
    pub untruncated_auth: bool,
    pub eids: Vec<EidPrefix>,
}

impl SiteCoreCfg {
    /// How we sign what we send to this site's xTRs (publications, notifies): its algorithm,
    /// Key ID 0, untruncated exactly when the site accepts untruncated data (those peers
    /// reject anything shorter, lab/oor/README.md).
    pub fn send_params(&self) -> AuthParams {
        AuthParams {
            key_id: 0,
            alg_id: self.alg_id,
            truncate: !self.untruncated_auth,
            legacy_key_id: self.legacy_key_id && self.alg_id != ALG_HMAC_SHA256_128_HKDF,
        }
    }
}

/// A Map-Server our xTR registers with (`[[lisp.map_server]]`, address resolved).
#[derive(Clone, Debug)]
pub struct MapServerCoreCfg {
    pub addr: SocketAddr,
    pub key: Vec<u8>,
    /// What we send; by default the RFC's truncated lengths.
    pub auth: AuthParams,
}

/// Protocol timers; `Default` is the RFC values quoted in the module header.
#[derive(Clone, Debug)]
pub struct LispTimers {
    pub register_interval: Duration,
    pub quick_register_interval: Duration,
    pub quick_register_period: Duration,
    pub registration_timeout: Duration,
    pub register_retx_initial: Duration,
    pub register_retx_max: Duration,
    /// Gaps before each retransmission of an unsolicited Map-Notify.
    pub notify_retx: Vec<Duration>,
    /// Wait after the last retransmission before giving up on a destination.
    pub notify_final_wait: Duration,
    pub smr_interval: Duration,
    /// Wait for the SMR-invoked Map-Request before an SMR is sent again (smr.rs).
    pub smr_retx: Duration,
    /// SMR retransmissions before giving up (0: SMRs are sent once).
    pub smr_retries: u8,
    pub smr_invoked_interval: Duration,
    pub request_retx: Duration,
    /// Map-Request sends (first + retransmissions) before giving up.
    pub request_tries: u8,
    /// Record TTL (minutes) of mappings fed by `set_mapping` and of our own registrations.
    pub mapping_ttl_minutes: u32,
    pub negative_ttl_non_eid_minutes: u32,
    pub negative_ttl_hole_minutes: u32,
    pub negative_ttl_denied_minutes: u32,
    pub temp_subscription: Duration,
    /// How long a record with TTL 0xffffffff ("receiver decides") is cached.
    pub cache_max: Duration,
}

impl Default for LispTimers {
    fn default() -> Self {
        let s = Duration::from_secs;
        LispTimers {
            register_interval: s(60),
            quick_register_interval: s(20),
            quick_register_period: s(300),
            registration_timeout: s(180),
            register_retx_initial: s(1),
            register_retx_max: s(60),
            notify_retx: vec![s(3), s(3), s(3), s(6), s(12), s(24)],
            notify_final_wait: s(48),
            smr_interval: s(3),
            smr_retx: s(3),
            smr_retries: 2,
            smr_invoked_interval: s(3),
            request_retx: s(1),
            request_tries: 3,
            mapping_ttl_minutes: 15,
            negative_ttl_non_eid_minutes: 15,
            negative_ttl_hole_minutes: 1,
            negative_ttl_denied_minutes: 1,
            temp_subscription: s(15 * 60),
            cache_max: s(24 * 3600),
        }
    }
}

/// Table caps (see the module header).
#[derive(Clone, Debug)]
pub struct LispLimits {
    pub max_sites: usize,
    pub max_mappings: usize,
    pub max_merged_registrants: usize,
    pub max_nonce_entries: usize,
    pub max_xtr_bindings: usize,
    pub max_subscriptions: usize,
    /// Unsolicited Map-Notifies kept for retransmission; past it they are sent once.
    pub max_pending_notifies: usize,
    /// Map-Notifies kept for retransmission that share one nonce; past it they are sent once.
    /// Nonces are the xTRs' (RFC 9437 §5: a subscription's notifies carry its request's nonce,
    /// plus one per publication), so many subscriptions can be made to share one; a Map-Notify-Ack
    /// is matched among the notifies of its nonce, and this bound keeps that matching (and the
    /// HMACs it may need) small whatever the senders choose.
    pub max_notifies_per_nonce: usize,
    pub max_itr_rlocs: usize,
    pub max_publication_records: usize,
    pub max_requesters_per_eid: usize,
    pub max_requesters: usize,
    pub max_smr_queue: usize,
    /// SMRs awaiting their SMR-invoked Map-Request (retransmitted); past it they are sent once.
    pub max_pending_smrs: usize,
    pub max_map_cache: usize,
    pub max_pending_requests: usize,
    pub max_inflight_registers: usize,
    /// Records per Map-Register we send, so one message stays within 576 octets of IPv4
    /// (RFC 9301 §5: the size to use when the path MTU is unknown).
    pub register_records_per_message: usize,
    /// Map-Replies per second per destination RLOC (token bucket of the same depth); `None`
    /// disables the limit (benchmarks). RFC 9301 §5.4 "Map-Replies MUST be rate limited".
    pub map_replies_per_rloc: Option<u32>,
    pub max_reply_limiter_entries: usize,
}

impl Default for LispLimits {
    fn default() -> Self {
        LispLimits {
            max_sites: 1024,
            max_mappings: 1_000_000,
            max_merged_registrants: 8,
            max_nonce_entries: 200_000,
            max_xtr_bindings: 100_000,
            max_subscriptions: 200_000,
            max_pending_notifies: 400_000,
            max_notifies_per_nonce: 16,
            max_itr_rlocs: 4,
            max_publication_records: 8,
            max_requesters_per_eid: 64,
            max_requesters: 200_000,
            max_smr_queue: 64,
            max_pending_smrs: 200_000,
            max_map_cache: 200_000,
            max_pending_requests: 4096,
            max_inflight_registers: 64,
            register_records_per_message: 10,
            map_replies_per_rloc: Some(10_000),
            max_reply_limiter_entries: 65_536,
        }
    }
}

/// Everything the core needs, already resolved (no DNS names, no config strings).
#[derive(Clone, Debug)]
pub struct LispCoreCfg {
    pub map_server: bool,
    pub map_resolver: bool,
    pub xtr: bool,
    /// Our RLOC: the VTEP address. ITR-RLOC of our Map-Requests and SMRs, the locator of our
    /// registrations.
    pub rloc: IpAddr,
    pub pubsub: bool,
    pub smr: bool,
    pub sites: Vec<SiteCoreCfg>,
    pub map_servers: Vec<MapServerCoreCfg>,
    /// RFC 9437 §7.1 security association for subscribers whose xTR-ID never registered (an
    /// ITR without local EIDs): the index of the site whose key signs their Map-Notifies.
    /// `from_config` sets it when exactly one site is configured; `None` = such
    /// subscriptions get ACT 5.
    pub pubsub_default_site: Option<usize>,
    /// Instance IDs fed by the EVPN mapping feed (the configured `[[vni]]` VNIs; the shell
    /// fills it). All of their EID space is configured EID space (RFC 9301 §8.3): a VM may
    /// appear at any address of a VNI, so a miss there is "not registered" (a 1-minute
    /// negative for the queried EID), never "not an EID" (a 15-minute negative for a
    /// least-specific hole that an ITR keeps after the VM appears).
    pub evpn_iids: Vec<u32>,
    /// Where the xTR sends Map-Requests; empty = the map-servers' addresses.
    pub map_resolvers: Vec<SocketAddr>,
    /// Our xTR-ID and Site-ID (RFC 9301 §5.6 I bit; RFC 9437 §5 step 1).
    pub xtr_id: u128,
    pub site_id: u64,
    /// MAC AFI we send (6 by default, 16389 for VPP); replies mirror the request's.
    pub mac_afi: MacAfi,
    /// High bits of our Map-Register nonces (the shell passes the wall-clock seconds << 32, so
    /// nonces keep increasing across restarts without persistent storage).
    pub nonce_seed: u64,
    /// PRNG and hash seed (the shell passes OS randomness; tests a constant).
    pub rng_seed: u64,
    pub timers: LispTimers,
    pub limits: LispLimits,
}

impl LispCoreCfg {
    /// A core with no role, RFC timers and default limits, RLOC `rloc`.
    pub fn new(rloc: IpAddr) -> LispCoreCfg {
        LispCoreCfg {
            map_server: false,
            map_resolver: false,
            xtr: false,
            rloc,
            pubsub: true,
            smr: true,
            sites: Vec::new(),
            map_servers: Vec::new(),
            pubsub_default_site: None,
            evpn_iids: Vec::new(),
            map_resolvers: Vec::new(),
            xtr_id: xtr_id_from(rloc),
            site_id: 0,
            mac_afi: MacAfi::Ieee802,
            nonce_seed: 0,
            rng_seed: 0x5eed,
            timers: LispTimers::default(),
            limits: LispLimits::default(),
        }
    }

    /// From the validated `[lisp]` section: `rloc` is the VTEP, `resolve` turns a
    /// `[[lisp.map_server]]` address into an IP (the shell resolves DNS names). Map-servers
    /// listen on 4342. Errors name the key.
    pub fn from_config(
        cfg: &LispCfg,
        rloc: IpAddr,
        resolve: impl Fn(&PeerAddr) -> Option<IpAddr>,
    ) -> Result<LispCoreCfg, String> {
        let mut c = LispCoreCfg::new(rloc);
        c.map_server = cfg.roles.contains(&LispRole::MapServer);
        c.map_resolver = cfg.roles.contains(&LispRole::MapResolver);
        c.xtr = cfg.roles.contains(&LispRole::Xtr);
        c.pubsub = cfg.pubsub;
        c.smr = cfg.smr;
        c.sites = sites_from_config(cfg)?;
        if c.sites.len() == 1 {
            c.pubsub_default_site = Some(0);
        }
        for (i, m) in cfg.map_server.iter().enumerate() {
            let ip = resolve(&m.address)
                .ok_or_else(|| format!("lisp.map_server[{i}].address: cannot be resolved"))?;
            c.map_servers.push(MapServerCoreCfg {
                addr: SocketAddr::new(ip, LISP_CONTROL_PORT),
                key: m.key.as_bytes().to_vec(),
                auth: AuthParams {
                    key_id: 0,
                    alg_id: alg_of(m.auth),
                    truncate: true,
                    legacy_key_id: false,
                },
            });
        }
        Ok(c)
    }

    fn resolvers(&self) -> Vec<SocketAddr> {
        if self.map_resolvers.is_empty() {
            self.map_servers.iter().map(|m| m.addr).collect()
        } else {
            self.map_resolvers.clone()
        }
    }
}

/// `[[lisp.site]]` as the core takes it (errors name the key).
pub fn sites_from_config(cfg: &LispCfg) -> Result<Vec<SiteCoreCfg>, String> {
    let mut sites = Vec::with_capacity(cfg.site.len());
    for (i, s) in cfg.site.iter().enumerate() {
        let eids = s
            .eids
            .iter()
            .map(|e| parse_eid(e).map(|e| EidPrefix::from_cfg(&e)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("lisp.site[{i}].eids: {e}"))?;
        sites.push(SiteCoreCfg {
            name: s.name.clone(),
            key: s.key.as_bytes().to_vec(),
            alg_id: alg_of(s.auth),
            legacy_key_id: s.legacy_key_id,
            untruncated_auth: s.untruncated_auth,
            eids,
        });
    }
    Ok(sites)
}

fn alg_of(a: LispAuth) -> u8 {
    match a {
        LispAuth::HmacSha1_96 => ALG_HMAC_SHA1_96,
        LispAuth::HmacSha256_128 => ALG_HMAC_SHA256_128,
        LispAuth::HmacSha256_128Hkdf => ALG_HMAC_SHA256_128_HKDF,
    }
}

/// The default xTR-ID: the RLOC as a 128-bit number (IPv4 as an IPv4-mapped IPv6 address),
/// unique per xTR in a fabric where every VTEP address is unique.
pub fn xtr_id_from(rloc: IpAddr) -> u128 {
    match rloc {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The 12-bit Map-Version for an EVPN MAC Mobility sequence number (RFC 9302 §6: 0 is the
/// null version, increments skip 0): sequence 0 (never moved) → 0, then 1..=4095 cycling.
/// Ordering holds within a window of 2048 moves (RFC 1982 serial arithmetic on 12 bits).
pub fn map_version(seq: u32) -> u16 {
    if seq == 0 {
        0
    } else {
        u16::try_from((seq - 1) % 4095 + 1).unwrap_or(1)
    }
}

/// RFC 9302 §6 / RFC 1982: whether 12-bit version `a` is newer than `b` (both non-null).
pub(crate) fn version_newer(a: u16, b: u16) -> bool {
    let (a, b) = (i32::from(a & 0xfff), i32::from(b & 0xfff));
    (a > b && a - b <= 2048) || (b > a && b - a > 2048)
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// One UDP datagram from the LISP socket to `to`.
    Send {
        to: SocketAddr,
        bytes: Vec<u8>,
    },
    Event(LispEvent),
}

/// Why an input was dropped (counted in `LispCounters::rx_dropped`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum DropReason {
    /// The codec refused it (message text includes the offset and field).
    Malformed { error: String },
    /// A valid message this core has no role for (e.g. a Map-Register without the
    /// map-server role, a Map-Reply with no outstanding request).
    Unexpected { message: &'static str },
    /// RFC 9301 §5.2: a Map-Resolver or Map-Server MUST drop an RLOC-probe.
    Probe,
    /// RFC 9301 §5.8: only Map-Requests are accepted inside an ECM (PIM is not supported).
    EcmPayload,
    /// RFC 9301 §5.2: "If the ITR erroneously provides no ITR-RLOC addresses, the
    /// Map-Replier MUST drop the Map-Request" (none was an IPv4/IPv6 address).
    NoItrRloc,
    /// No record had an EID we understand.
    BadEid { error: EidError },
    /// A Map-Notify / Map-Notify-Ack / Map-Reply whose nonce matches nothing outstanding.
    UnknownNonce { nonce: u64 },
    /// Authentication failed on a Map-Notify / Map-Notify-Ack.
    AuthFailed { error: String },
    /// RFC 9437 §5/§6: a nonce not greater than the stored one (possible replay).
    Replay { nonce: u64, last: u64 },
    /// RFC 9301 §5.4 Map-Reply rate limit towards this RLOC.
    RateLimited,
    /// RFC 9301 §6.1: an SMR for an EID we have not cached, or inside the 3 s per-prefix limit.
    SmrIgnored { why: &'static str },
    /// A table is full (see `LispLimits`).
    Full { table: &'static str },
}

/// Why a Map-Register was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum RejectReason {
    /// No site's key verified the message and no site covers its first EID.
    UnknownSite,
    /// The covering site's key does not verify the HMAC.
    WrongKey {
        site: String,
    },
    /// RFC 9301 §5.6: the Algorithm ID is not the site's.
    WrongAlgorithm {
        site: String,
        expected: u8,
        got: u8,
    },
    /// The Key ID byte is not 0 and the site does not accept the legacy 16-bit Key ID.
    KeyIdNotAccepted {
        site: String,
        got: u8,
    },
    /// The auth data is the untruncated HMAC and the site does not accept it.
    UntruncatedNotAccepted {
        site: String,
        len: usize,
    },
    /// The auth data length fits no form of the algorithm.
    BadAuthLength {
        site: String,
        len: usize,
    },
    /// RFC 9301 §8.2: "a Map-Server accepts only EID-Prefixes that are configured for that
    /// ETR".
    EidOutsideSite {
        site: String,
        eid: EidPrefix,
    },
    /// RFC 9301 §5.6: "If a Map-Register is received with a nonce value that is not greater
    /// than the saved nonce, it MUST drop the Map-Register message".
    NonceReplay {
        site: String,
        nonce: u64,
        last: u64,
    },
    /// A record's EID is not an IP or MAC prefix.
    BadEid {
        error: EidError,
    },
    NoRecords,
    /// `LispLimits::max_mappings` reached.
    Full,
}

/// Which unsolicited or solicited Map-Notify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyKind {
    /// Answer to a Map-Register with the M bit (not retransmitted, RFC 9301 §5.7).
    Solicited,
    /// To the ETR that registered the EID before it moved.
    PreviousRegistrant,
    /// RFC 9437 §5: confirms a subscription.
    Subscribed,
    /// RFC 9437 §6: a mapping change.
    Publication,
    /// RFC 9437 §5: confirms an unsubscription.
    Unsubscribed,
    /// RFC 9437 §5: the subscription was dropped after no Map-Notify-Ack (ACT 5).
    SubscriptionDropped,
}

/// Why a subscription ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubscriptionEnd {
    Unsubscribed,
    /// No Map-Notify-Ack from any ITR-RLOC after every retransmission.
    NoAck,
    /// A temporary subscription (unregistered EID) reached its TTL.
    Expired,
    /// Its site was removed by a configuration reload.
    Reconfigured,
}

/// What changed a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeCause {
    Register,
    Evpn,
    Expiry,
    Deregister,
    /// A configuration reload removed the registrant's site or the EID from it.
    Reconfigured,
}

/// How the xTR learned a map-cache entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheSource {
    MapReply,
    Publication,
}

/// Something worth logging, counting or putting on the move timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum LispEvent {
    Dropped {
        from: SocketAddr,
        to: SocketAddr,
        #[serde(flatten)]
        reason: DropReason,
    },
    RegistrationAccepted {
        site: String,
        from: SocketAddr,
        eids: Vec<EidPrefix>,
        want_map_notify: bool,
    },
    RegistrationRejected {
        from: SocketAddr,
        #[serde(flatten)]
        reason: RejectReason,
    },
    RegistrationExpired {
        eid: EidPrefix,
        registrant: String,
    },
    /// A mapping's effective RLOC set changed (empty = removed).
    MappingChanged {
        eid: EidPrefix,
        rlocs: Vec<IpAddr>,
        version: u16,
        cause: ChangeCause,
    },
    MapNotifySent {
        to: SocketAddr,
        nonce: u64,
        kind: NotifyKind,
    },
    MapNotifyRetransmit {
        to: SocketAddr,
        nonce: u64,
        attempt: u8,
        kind: NotifyKind,
    },
    MapNotifyAcked {
        from: SocketAddr,
        nonce: u64,
        kind: NotifyKind,
    },
    MapNotifyGaveUp {
        nonce: u64,
        kind: NotifyKind,
    },
    SmrSent {
        to: SocketAddr,
        eid: EidPrefix,
    },
    /// An SMR sent again (`attempt` = SMRs sent for this change, the first one included).
    SmrRetransmit {
        to: SocketAddr,
        eid: EidPrefix,
        attempt: u8,
    },
    /// No SMR-invoked Map-Request after every retransmission.
    SmrGaveUp {
        to: SocketAddr,
        eid: EidPrefix,
    },
    SubscriberAdded {
        #[serde(serialize_with = "ser_u128_hex")]
        xtr_id: u128,
        eid: EidPrefix,
        rloc: IpAddr,
    },
    SubscriberRemoved {
        #[serde(serialize_with = "ser_u128_hex")]
        xtr_id: u128,
        eid: EidPrefix,
        why: SubscriptionEnd,
    },
    /// A subscription refused with a negative Map-Reply (RFC 9437 §5: ACT 4 policy, 5 auth).
    SubscribeRejected {
        from: SocketAddr,
        eid: EidPrefix,
        act: u8,
    },
    /// xTR: a Map-Server confirmed a Map-Register (solicited Map-Notify verified).
    Registered {
        map_server: SocketAddr,
        eids: usize,
    },
    RegisterRetransmit {
        map_server: SocketAddr,
        attempt: u8,
    },
    MapCacheUpdated {
        eid: EidPrefix,
        rlocs: Vec<IpAddr>,
        act: u8,
        ttl_minutes: u32,
        version: u16,
        via: CacheSource,
    },
    MapCacheRemoved {
        eid: EidPrefix,
    },
    SmrReceived {
        from: SocketAddr,
        eid: EidPrefix,
    },
    SmrInvokedRequestSent {
        to: SocketAddr,
        eid: EidPrefix,
    },
    SubscriptionConfirmed {
        eid: EidPrefix,
    },
    /// The Map-Server ended our subscription (ACT 5 Map-Notify); we subscribe again.
    SubscriptionLost {
        eid: EidPrefix,
    },
    RequestGaveUp {
        eid: EidPrefix,
    },
}

/// Counters for metrics (monotonic).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LispCounters {
    pub rx_packets: u64,
    pub rx_malformed: u64,
    pub rx_dropped: u64,
    pub tx_packets: u64,
    // Map-Server / Map-Resolver
    pub map_registers_rx: u64,
    pub registrations_accepted: u64,
    pub registrations_rejected: u64,
    pub auth_failures: u64,
    pub nonce_replays: u64,
    pub stale_versions: u64,
    pub registrations_expired: u64,
    pub map_requests_rx: u64,
    pub map_replies_tx: u64,
    pub negative_replies_tx: u64,
    pub map_requests_forwarded: u64,
    pub replies_rate_limited: u64,
    pub map_notifies_tx: u64,
    pub map_notify_retransmits: u64,
    pub map_notify_acks_rx: u64,
    pub map_notify_gave_up: u64,
    /// Sent once because `max_pending_notifies` or `max_notifies_per_nonce` was reached.
    pub map_notifies_unreliable: u64,
    pub publications_tx: u64,
    pub subscriptions_added: u64,
    pub subscriptions_removed: u64,
    pub subscriptions_rejected: u64,
    pub smr_tx: u64,
    pub smr_queued: u64,
    pub smr_dropped: u64,
    /// SMRs sent again because no SMR-invoked Map-Request came back in `smr_retx`.
    pub smr_retransmits: u64,
    /// SMRs given up after `smr_retries` retransmissions.
    pub smr_gave_up: u64,
    // xTR
    pub map_registers_tx: u64,
    pub map_register_retransmits: u64,
    pub registrations_confirmed: u64,
    pub map_requests_tx: u64,
    pub map_replies_rx: u64,
    pub map_notifies_rx: u64,
    pub map_notify_acks_tx: u64,
    pub smr_rx: u64,
    pub smr_invoked_tx: u64,
    pub map_cache_updates: u64,
}

/// The LISP core. See the module header.
pub struct Lisp {
    pub(crate) cfg: LispCoreCfg,
    pub(crate) ms: map_server::MapServer,
    pub(crate) ps: pubsub::PubSub,
    pub(crate) smr: smr::Smr,
    pub(crate) xtr: xtr::Xtr,
    pub(crate) limiter: resolver::ReplyLimiter,
    pub(crate) timers: Timers,
    pub(crate) rng: Rng,
    pub(crate) out: VecDeque<Output>,
    pub(crate) counters: LispCounters,
    started: Instant,
}

impl Lisp {
    /// A core for `cfg` starting at `now`. Nothing is sent until there is something to say:
    /// the xTR registers when the EVPN layer reports its first local EID.
    pub fn new(mut cfg: LispCoreCfg, now: Instant) -> Lisp {
        cfg.sites.truncate(cfg.limits.max_sites);
        let seed = cfg.rng_seed;
        Lisp {
            ms: map_server::MapServer::new(seed),
            ps: pubsub::PubSub::new(seed),
            smr: smr::Smr::new(seed),
            xtr: xtr::Xtr::new(&cfg, seed),
            limiter: resolver::ReplyLimiter::new(seed),
            timers: Timers::new(),
            rng: Rng::new(seed ^ 0x6c69_7370),
            out: VecDeque::new(),
            counters: LispCounters::default(),
            started: now,
            cfg,
        }
    }

    /// Time since `new` (for the API).
    pub fn uptime(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    pub fn cfg(&self) -> &LispCoreCfg {
        &self.cfg
    }

    /// One UDP 4342 payload received from `from` on the local address `to_local`.
    /// Malformed or unexpected input is counted and reported as `LispEvent::Dropped`.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to_local: SocketAddr,
        bytes: &[u8],
    ) {
        self.counters.rx_packets += 1;
        let msg = match crate::wire::lisp::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.counters.rx_malformed += 1;
                self.dropped(
                    from,
                    to_local,
                    DropReason::Malformed {
                        error: e.to_string(),
                    },
                );
                return;
            }
        };
        let r = match msg {
            LispMsg::MapRequest(m) => self.on_map_request(now, from, m, None),
            LispMsg::Ecm(e) => self.on_ecm(now, from, bytes, e),
            LispMsg::MapRegister(m) => self.on_map_register(now, from, bytes, m),
            LispMsg::MapNotify(m) => self.on_map_notify(now, from, bytes, m),
            LispMsg::MapNotifyAck(m) => self.on_map_notify_ack(now, from, bytes, m),
            LispMsg::MapReply(m) => self.on_map_reply(now, from, m),
        };
        if let Err(reason) = r {
            self.dropped(from, to_local, reason);
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((h, t)) = self.timers.pop_due(now) {
            match t {
                Timer::RegExpire { eid, who } => self.on_reg_expire(now, h, eid, who),
                Timer::Notify(id) => self.on_notify_timer(now, h, id),
                Timer::SubExpire { xtr_id, eid } => self.on_sub_expire(now, h, xtr_id, eid),
                Timer::SmrRelease(rloc) => self.on_smr_release(now, rloc),
                Timer::SmrRetx { rloc, eid } => self.on_smr_retx(now, h, rloc, eid),
                Timer::Register(ms) => self.on_register_timer(now, ms),
                Timer::RegisterRetx { ms, id } => self.on_register_retx(now, h, ms, id),
                Timer::Request(eid) => self.on_request_timer(now, h, eid),
                Timer::CacheExpire(eid) => self.on_cache_expire(now, h, eid),
            }
        }
    }

    /// The next deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The EVPN feed: `eid` (IID = VNI; host IP or MAC) is now at `rloc` (`None`: gone), with
    /// the MAC Mobility sequence number `seq` (→ Map-Version, `map_version`).
    ///
    /// Map-Server role: the mapping database is updated and the resulting publications,
    /// SMRs and the Map-Notify to the previous registrant are queued by this call.
    /// xTR role: an EID at our own RLOC is registered at once (and kept registered); an EID
    /// that left us is deregistered (Record TTL 0).
    pub fn set_mapping(&mut self, now: Instant, eid: EidPrefix, rloc: Option<IpAddr>, seq: u32) {
        let version = map_version(seq);
        if self.cfg.map_server {
            self.ms_set_mapping(now, eid, rloc, version);
        }
        if self.cfg.xtr {
            self.xtr_set_mapping(now, eid, rloc, version);
        }
    }

    pub fn counters(&self) -> &LispCounters {
        &self.counters
    }

    /// Timers currently scheduled (for tests of boundedness).
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    pub(crate) fn send(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        self.counters.tx_packets += 1;
        self.out.push_back(Output::Send { to, bytes });
    }

    pub(crate) fn event(&mut self, e: LispEvent) {
        self.out.push_back(Output::Event(e));
    }

    pub(crate) fn dropped(&mut self, from: SocketAddr, to: SocketAddr, reason: DropReason) {
        self.counters.rx_dropped += 1;
        self.event(LispEvent::Dropped { from, to, reason });
    }

    /// The address that stands for "ours" in drop events raised outside `handle_packet`.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        SocketAddr::new(self.cfg.rloc, LISP_CONTROL_PORT)
    }
}

/// Port 4342 at `ip`.
pub(crate) fn control(ip: IpAddr) -> SocketAddr {
    SocketAddr::new(ip, LISP_CONTROL_PORT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(map_version(0), 0);
        assert_eq!(map_version(1), 1);
        assert_eq!(map_version(4095), 4095);
        assert_eq!(map_version(4096), 1);
        assert!(version_newer(2, 1));
        assert!(version_newer(1, 4095));
        assert!(!version_newer(4095, 1));
        assert!(!version_newer(5, 5));
    }
}
