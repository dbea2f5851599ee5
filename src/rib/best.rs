//! Best-path selection: one step list, used both pairwise (`compare`) and over a set (`select`).
//!
//! Owns: the order of preference between the paths of one route key.
//! Must not: look at anything but the candidates (no clocks, no arrival order).
//!
//! The steps, in order (the first that prefers one path decides; `Reason` names it):
//!  1. `Sticky` — RFC 7432 §15.2: a MAC advertised as static (sticky bit of the MAC Mobility
//!     community) is preferred over one that is not.
//!  2. `MacMobilitySeq` — RFC 7432 §15.1: the higher MAC Mobility sequence number wins ("no
//!     MAC Mobility extended community" counts as sequence 0). Compared in 32-bit serial
//!     arithmetic (RFC 1982) so that 0 follows 4294967295; at an exact half-range distance,
//!     where serial order is undefined, the plain numeric order decides.
//!  3. `MacMobilityLowerIp` — RFC 7432 §15.1: "the same sequence number ... selects the route
//!     advertised by the PE with the lowest IP address": the lower next hop, applied when
//!     either path carries a MAC Mobility community.
//!  4. `LocalPref` — RFC 4271 §9.1.1: higher LOCAL_PREF (absent = 100, FRR's default).
//!  5. `Local` — a locally originated path over a learned one (FRR, GoBGP do the same).
//!  6. `AsPathLen` — RFC 4271 §9.1.2.2 a): shorter AS_PATH (AS_SET = 1, confed = 0).
//!  7. `Origin` — §9.1.2.2 b): lower ORIGIN (IGP < EGP < INCOMPLETE).
//!  8. `Med` — §9.1.2.2 c): lower MULTI_EXIT_DISC (absent = 0), only between paths from the
//!     same neighbor AS. `select` applies it as the RFC says (remove every path that has a
//!     higher MED than another path of the same neighbor AS), so the result does not depend
//!     on the order the paths arrived in.
//!  9. `Ebgp` — §9.1.2.2 d): a path learned over eBGP over one learned over iBGP.
//!     (§9.1.2.2 e, IGP cost to the next hop: vmmi runs no IGP — every next hop costs the same.)
//! 10. `ClusterListLen` — RFC 4456 §9: shorter CLUSTER_LIST.
//! 11. `RouterId` — §9.1.2.2 f): lower BGP Identifier of the advertising peer, with
//!     ORIGINATOR_ID in its place when present (RFC 4456 §9).
//! 12. `PeerAddr` — §9.1.2.2 g): lower peer address.
//! 13. `PathId` — the total last step: lower peer number, then lower ADD-PATH identifier.
//!     Two distinct candidates always differ here, so the order is total.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr};

use super::attrs::Attrs;

/// What the comparator needs to know about a path.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    pub attrs: &'a Attrs,
    /// Locally originated (no peer).
    pub local: bool,
    pub ebgp: bool,
    pub peer_bgp_id: Ipv4Addr,
    pub peer_addr: IpAddr,
    pub peer_num: u32,
    pub path_id: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The only candidate.
    Only,
    Sticky,
    MacMobilitySeq,
    MacMobilityLowerIp,
    LocalPref,
    Local,
    AsPathLen,
    Origin,
    Med,
    Ebgp,
    ClusterListLen,
    RouterId,
    PeerAddr,
    PathId,
}

impl Reason {
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Only => "only path",
            Reason::Sticky => "sticky (static) MAC, RFC 7432 §15.2",
            Reason::MacMobilitySeq => "higher MAC Mobility sequence, RFC 7432 §15.1",
            Reason::MacMobilityLowerIp => "equal sequence, lower originator IP, RFC 7432 §15.1",
            Reason::LocalPref => "higher LOCAL_PREF",
            Reason::Local => "locally originated",
            Reason::AsPathLen => "shorter AS_PATH",
            Reason::Origin => "lower ORIGIN",
            Reason::Med => "lower MED from the same neighbor AS",
            Reason::Ebgp => "eBGP over iBGP",
            Reason::ClusterListLen => "shorter CLUSTER_LIST",
            Reason::RouterId => "lower router ID",
            Reason::PeerAddr => "lower peer address",
            Reason::PathId => "lower peer number / path ID",
        }
    }
}

/// RFC 1982 serial comparison of MAC Mobility sequences: `Greater` when `a` is newer.
pub fn seq_cmp(a: u32, b: u32) -> Ordering {
    let d = a.wrapping_sub(b);
    if d == 0 {
        Ordering::Equal
    } else if d == 1 << 31 {
        a.cmp(&b)
    } else if d < 1 << 31 {
        Ordering::Greater
    } else {
        Ordering::Less
    }
}

type Step = fn(&Candidate<'_>, &Candidate<'_>) -> Ordering;

fn mm(c: &Candidate<'_>) -> (u32, bool) {
    c.attrs.mac_mobility.unwrap_or((0, false))
}

fn addr_key(a: IpAddr) -> (u8, u128) {
    match a {
        IpAddr::V4(v) => (4, u128::from(u32::from(v))),
        IpAddr::V6(v) => (6, u128::from(v)),
    }
}

/// Each step returns `Less` when `a` is preferred.
const STEPS: [(Reason, Step); 13] = [
    (Reason::Sticky, |a, b| mm(b).1.cmp(&mm(a).1)),
    (Reason::MacMobilitySeq, |a, b| seq_cmp(mm(b).0, mm(a).0)),
    (Reason::MacMobilityLowerIp, |a, b| {
        if a.attrs.mac_mobility.is_none() && b.attrs.mac_mobility.is_none() {
            return Ordering::Equal;
        }
        let ip = |c: &Candidate<'_>| c.attrs.next_hop_ip().map(addr_key);
        match (ip(a), ip(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => Ordering::Equal,
        }
    }),
    (Reason::LocalPref, |a, b| {
        let lp = |c: &Candidate<'_>| c.attrs.local_pref.unwrap_or(100);
        lp(b).cmp(&lp(a))
    }),
    (Reason::Local, |a, b| b.local.cmp(&a.local)),
    (Reason::AsPathLen, |a, b| {
        a.attrs.as_path_len.cmp(&b.attrs.as_path_len)
    }),
    (Reason::Origin, |a, b| a.attrs.origin.cmp(&b.attrs.origin)),
    (Reason::Med, |a, b| {
        if a.attrs.neighbor_as != b.attrs.neighbor_as {
            return Ordering::Equal;
        }
        a.attrs.med.unwrap_or(0).cmp(&b.attrs.med.unwrap_or(0))
    }),
    (Reason::Ebgp, |a, b| b.ebgp.cmp(&a.ebgp)),
    (Reason::ClusterListLen, |a, b| {
        a.attrs.cluster_list_len.cmp(&b.attrs.cluster_list_len)
    }),
    (Reason::RouterId, |a, b| {
        let id = |c: &Candidate<'_>| c.attrs.originator_id.unwrap_or(c.peer_bgp_id);
        id(a).cmp(&id(b))
    }),
    (Reason::PeerAddr, |a, b| {
        addr_key(a.peer_addr).cmp(&addr_key(b.peer_addr))
    }),
    (Reason::PathId, |a, b| {
        (a.peer_num, a.path_id).cmp(&(b.peer_num, b.path_id))
    }),
];

/// `Less` when `a` is the better path, with the step that decided.
pub fn compare(a: &Candidate<'_>, b: &Candidate<'_>) -> (Ordering, Reason) {
    for (reason, step) in STEPS {
        let o = step(a, b);
        if o != Ordering::Equal {
            return (o, reason);
        }
    }
    (Ordering::Equal, Reason::PathId)
}

/// The index of the best candidate and the step that decided, by elimination: at each step,
/// remove every candidate that another remaining candidate beats at that step. Independent of
/// the order of `cands`.
pub fn select(cands: &[Candidate<'_>]) -> Option<(usize, Reason)> {
    match cands.len() {
        0 => return None,
        1 => return Some((0, Reason::Only)),
        _ => {}
    }
    let mut alive: Vec<usize> = (0..cands.len()).collect();
    let mut reason = Reason::PathId;
    for (r, step) in STEPS {
        if alive.len() == 1 {
            break;
        }
        let next: Vec<usize> = alive
            .iter()
            .copied()
            .filter(|&i| {
                !alive.iter().any(|&j| {
                    matches!(
                        (cands.get(j), cands.get(i)),
                        (Some(cj), Some(ci)) if step(cj, ci) == Ordering::Less
                    )
                })
            })
            .collect();
        // a cycle (serial arithmetic over more than half the range) eliminates everyone: keep
        // the set as it was and let the next steps decide
        if !next.is_empty() && next.len() < alive.len() {
            alive = next;
            reason = r;
        }
    }
    alive.first().map(|&i| (i, reason))
}
