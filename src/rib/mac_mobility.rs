//! RFC 7432 §15 MAC mobility, as pure functions over the claims on one MAC of one MAC-VRF.
//!
//! Owns: which VTEP a MAC is at (`resolve`), the sequence number a local learn advertises
//! (`local_seq`), and duplicate-address detection counting (`Dad`).
//! Must not: keep routes, talk to BGP or the dataplane, read clocks (time is an argument).
//!
//! A *claim* is one VTEP saying "the MAC is here": this speaker when the MAC is learned
//! locally, or a remote VTEP through its type-2 routes. The RIB picks a best path per route
//! key, but a MAC advertised by two VTEPs arrives under two keys (each VTEP has its own RD);
//! the choice between VTEPs is made here, after import into the MAC-VRF, as FRR's per-VNI
//! table does it. RFC 7432 §15.1: "MAC/IP Advertisement routes for the same MAC address ...
//! MAC and MAC+IP routes of one MAC share one sequence" — so a VTEP's claim carries the
//! highest sequence of all its routes for the MAC.
//!
//! The order (`compare`), first difference decides:
//!  1. sticky — RFC 7432 §15.2: "a PE receiving a MAC/IP Advertisement route for a static
//!     MAC (sticky bit set) ... MUST NOT" let it move; a static claim beats a dynamic one.
//!  2. sequence — §15.1: "If the sequence number in the received route is greater ... the PE
//!     MUST withdraw its MAC/IP Advertisement route"; compared in RFC 1982 serial arithmetic
//!     (0 follows 4294967295; at exactly half the range the plain order decides).
//!  3. lower VTEP address — §15.1: "If two (or more) PEs advertise the same MAC address with
//!     the same sequence number ... the PE with the lowest IP address" wins.
//!  4. local — only when a remote VTEP claims our own address (a misconfiguration).

use std::cmp::Ordering;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use smallvec::SmallVec;

pub use super::best::seq_cmp;

/// One VTEP's claim on a MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub vtep: IpAddr,
    pub seq: u32,
    pub sticky: bool,
    /// This speaker (the MAC is learned locally).
    pub local: bool,
}

/// Which step decided between the winner and the runner-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MoveReason {
    Only,
    Sticky,
    HigherSeq,
    LowerVtep,
    Local,
}

impl MoveReason {
    pub fn describe(self) -> &'static str {
        match self {
            MoveReason::Only => "only claim",
            MoveReason::Sticky => "static (sticky) MAC, RFC 7432 §15.2",
            MoveReason::HigherSeq => "higher MAC Mobility sequence, RFC 7432 §15.1",
            MoveReason::LowerVtep => "equal sequence, lowest VTEP address, RFC 7432 §15.1",
            MoveReason::Local => "local claim of our own address",
        }
    }
}

fn addr_key(a: IpAddr) -> (u8, u128) {
    match a {
        IpAddr::V4(v) => (4, u128::from(u32::from(v))),
        IpAddr::V6(v) => (6, u128::from(v)),
    }
}

/// `Less` when `a` is preferred, with the step that decided.
pub fn compare(a: &Claim, b: &Claim) -> (Ordering, MoveReason) {
    let steps = [
        (b.sticky.cmp(&a.sticky), MoveReason::Sticky),
        (seq_cmp(b.seq, a.seq), MoveReason::HigherSeq),
        (
            addr_key(a.vtep).cmp(&addr_key(b.vtep)),
            MoveReason::LowerVtep,
        ),
        (b.local.cmp(&a.local), MoveReason::Local),
    ];
    steps
        .into_iter()
        .find(|(o, _)| o.is_ne())
        .unwrap_or((Ordering::Equal, MoveReason::Only))
}

/// The winning claim (its index) and why. Elimination, so the answer does not depend on the
/// order of `claims` even where serial order is not transitive (sequences more than half the
/// range apart): keep the sticky claims if any; keep the claims no other claim has a higher
/// sequence than (all of them when that leaves none — a cycle — and then the plain numeric
/// maximum); the lowest VTEP; local last.
pub fn resolve(claims: &[Claim]) -> Option<(usize, MoveReason)> {
    let mut live: SmallVec<[usize; 4]> = (0..claims.len()).collect();
    let mut reason = MoveReason::Only;
    let mut keep = |live: &mut SmallVec<[usize; 4]>, r: MoveReason, f: &dyn Fn(usize) -> bool| {
        let before = live.len();
        let kept: SmallVec<[usize; 4]> = live.iter().copied().filter(|&i| f(i)).collect();
        if !kept.is_empty() && kept.len() < before {
            *live = kept;
            reason = r;
        }
    };
    let c = |i: usize| claims.get(i).copied();
    keep(&mut live, MoveReason::Sticky, &|i| {
        c(i).is_some_and(|x| x.sticky)
    });
    let snapshot = live.clone();
    let newest = |i: usize| {
        let Some(x) = c(i) else { return false };
        snapshot
            .iter()
            .all(|&j| c(j).is_none_or(|y| seq_cmp(y.seq, x.seq) != Ordering::Greater))
    };
    let any_newest = snapshot.iter().any(|&i| newest(i));
    if any_newest {
        keep(&mut live, MoveReason::HigherSeq, &newest);
    } else {
        let max = snapshot.iter().filter_map(|&i| c(i)).map(|x| x.seq).max();
        keep(&mut live, MoveReason::HigherSeq, &|i| {
            c(i).map(|x| x.seq) == max
        });
    }
    let low = live
        .iter()
        .filter_map(|&i| c(i))
        .map(|x| addr_key(x.vtep))
        .min();
    keep(&mut live, MoveReason::LowerVtep, &|i| {
        c(i).map(|x| addr_key(x.vtep)) == low
    });
    keep(&mut live, MoveReason::Local, &|i| {
        c(i).is_some_and(|x| x.local)
    });
    live.first().map(|&i| (i, reason))
}

/// The sequence a local learn advertises. RFC 7432 §15.1: "If the PE ... learns a MAC address
/// ... for which it had previously received a MAC/IP Advertisement route ... it MUST advertise
/// ... a sequence number that is one greater than the sequence number in the received route";
/// a first learn ("for the first time") carries none (0). `moved_in`: a remote VTEP claimed
/// the MAC since it was last local here; `high` the highest sequence seen for the MAC from
/// anyone (kept after that route is withdrawn, so a late withdrawal elsewhere never lets an
/// older claim win); `last_local` the sequence this speaker last advertised for it (kept
/// across restarts, so a restart never advertises a lower one).
pub fn local_seq(moved_in: bool, high: u32, last_local: u32) -> u32 {
    if !moved_in {
        return last_local;
    }
    let next = high.wrapping_add(1);
    if seq_cmp(last_local, next) == Ordering::Greater {
        last_local
    } else {
        next
    }
}

/// The higher of two sequences in serial order.
pub fn seq_max(a: u32, b: u32) -> u32 {
    if seq_cmp(a, b) == Ordering::Less {
        b
    } else {
        a
    }
}

/// Duplicate-address detection settings (`[mobility]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DadCfg {
    /// RFC 7432 §15.1 "N" moves ...
    pub max_moves: u32,
    /// ... within "M" seconds.
    pub window: Duration,
    /// How long a duplicate stays frozen; `None` = until cleared by the operator.
    pub freeze: Option<Duration>,
}

impl Default for DadCfg {
    fn default() -> Self {
        DadCfg {
            max_moves: 5,
            window: Duration::from_secs(180),
            freeze: None,
        }
    }
}

/// One MAC's duplicate-address state. RFC 7432 §15.1: "If it detects N MAC moves within an
/// M-second window ... the PE concludes that there's a duplicate MAC situation, it should alert
/// the operator and stop sending and processing any BGP MAC/IP Advertisement routes for that
/// MAC address until a corrective action is taken." One pointer until the MAC first moves
/// (most MACs never do), so a MAC-VRF of a million MACs does not pay for the move history.
#[derive(Clone, Debug, Default)]
pub struct Dad(Option<Box<DadState>>);

#[derive(Clone, Debug, Default)]
struct DadState {
    /// Times of the moves inside the window, oldest first (at most `max_moves`).
    moves: SmallVec<[Instant; 4]>,
    /// Moves counted since the last clear (for `explain`).
    total: u32,
    frozen_at: Option<Instant>,
}

impl Dad {
    /// Count one move at `now`. Returns true when this move declares the duplicate.
    pub fn record(&mut self, now: Instant, cfg: &DadCfg) -> bool {
        let d = self.0.get_or_insert_with(Default::default);
        d.total = d.total.saturating_add(1);
        if d.frozen_at.is_some() {
            return false;
        }
        d.moves
            .retain(|t| now.saturating_duration_since(*t) < cfg.window);
        d.moves.push(now);
        let cap = usize::try_from(cfg.max_moves).unwrap_or(usize::MAX).max(1);
        while d.moves.len() > cap {
            d.moves.remove(0);
        }
        if d.moves.len() >= cap {
            d.frozen_at = Some(now);
            return true;
        }
        false
    }

    pub fn frozen(&self) -> bool {
        self.frozen_at().is_some()
    }

    pub fn frozen_at(&self) -> Option<Instant> {
        self.0.as_ref()?.frozen_at
    }

    /// Moves counted since the last clear.
    pub fn total(&self) -> u32 {
        self.0.as_ref().map_or(0, |d| d.total)
    }

    /// When the freeze ends by itself (`None`: not frozen, or frozen until cleared).
    pub fn thaw_at(&self, cfg: &DadCfg) -> Option<Instant> {
        Some(self.frozen_at()? + cfg.freeze?)
    }

    /// Moves inside the window at `now`.
    pub fn recent(&self, now: Instant, cfg: &DadCfg) -> usize {
        self.0.as_ref().map_or(0, |d| {
            d.moves
                .iter()
                .filter(|t| now.saturating_duration_since(**t) < cfg.window)
                .count()
        })
    }

    /// Lift the freeze and forget the counted moves.
    pub fn clear(&mut self) {
        self.0 = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(vtep: &str, seq: u32, sticky: bool, local: bool) -> Claim {
        Claim {
            vtep: vtep.parse().unwrap(),
            seq,
            sticky,
            local,
        }
    }

    fn win(claims: &[Claim]) -> (usize, MoveReason) {
        let w = resolve(claims).unwrap();
        // order independence: every rotation picks the same claim
        for r in 1..claims.len() {
            let mut v = claims.to_vec();
            v.rotate_left(r);
            let (i, why) = resolve(&v).unwrap();
            assert_eq!(v[i], claims[w.0], "rotation {r}");
            assert_eq!(why, w.1);
        }
        w
    }

    // Each row: claims, index of the winner, reason — RFC 7432 §15 cases.
    #[test]
    fn rfc7432_section15_table() {
        let cases: &[(&[Claim], usize, MoveReason)] = &[
            // a single claim
            (&[c("10.0.0.2", 0, false, false)], 0, MoveReason::Only),
            // §15.1 higher sequence wins, local or remote
            (
                &[
                    c("10.0.0.1", 1, false, true),
                    c("10.0.0.2", 2, false, false),
                ],
                1,
                MoveReason::HigherSeq,
            ),
            (
                &[
                    c("10.0.0.9", 3, false, true),
                    c("10.0.0.2", 2, false, false),
                ],
                0,
                MoveReason::HigherSeq,
            ),
            // §15.1 tie → lowest VTEP address
            (
                &[
                    c("10.0.0.3", 4, false, true),
                    c("10.0.0.2", 4, false, false),
                ],
                1,
                MoveReason::LowerVtep,
            ),
            (
                &[
                    c("10.0.0.3", 4, false, false),
                    c("10.0.0.1", 4, false, true),
                    c("10.0.0.2", 4, false, false),
                ],
                1,
                MoveReason::LowerVtep,
            ),
            // §15.2 sticky beats any sequence
            (
                &[
                    c("10.0.0.3", 0, true, false),
                    c("10.0.0.1", 900, false, true),
                ],
                0,
                MoveReason::Sticky,
            ),
            (
                &[
                    c("10.0.0.3", 0, true, true),
                    c("10.0.0.1", 900, false, false),
                ],
                0,
                MoveReason::Sticky,
            ),
            // two sticky claims: sequence, then address decide among them
            (
                &[c("10.0.0.3", 1, true, false), c("10.0.0.1", 1, true, false)],
                1,
                MoveReason::LowerVtep,
            ),
            // wraparound: 0 follows 4294967295
            (
                &[
                    c("10.0.0.1", u32::MAX, false, true),
                    c("10.0.0.2", 0, false, false),
                ],
                1,
                MoveReason::HigherSeq,
            ),
            (
                &[
                    c("10.0.0.1", u32::MAX - 1, false, false),
                    c("10.0.0.2", u32::MAX, false, false),
                ],
                1,
                MoveReason::HigherSeq,
            ),
        ];
        for (i, (claims, want, why)) in cases.iter().enumerate() {
            assert_eq!(win(claims), (*want, *why), "case {i}");
        }
    }

    #[test]
    fn serial_cycle_falls_back_to_numeric_max() {
        // 0 < 2^30 < 2^31 < 3·2^30 < 0 in serial order: no claim is newest of all
        let v = [
            c("10.0.0.1", 0, false, false),
            c("10.0.0.2", 1 << 30, false, false),
            c("10.0.0.3", 1 << 31, false, false),
            c("10.0.0.4", 3 << 30, false, false),
        ];
        assert_eq!(win(&v), (3, MoveReason::HigherSeq));
    }

    #[test]
    fn local_sequence_rules() {
        // first learn: no community (0), or what we advertised before a restart
        assert_eq!(local_seq(false, 0, 0), 0);
        assert_eq!(local_seq(false, 7, 5), 5);
        // moved in: highest seen + 1 (§15.1)
        assert_eq!(local_seq(true, 0, 0), 1);
        assert_eq!(local_seq(true, 6, 3), 7);
        // never lower than our own last advertisement
        assert_eq!(local_seq(true, 2, 9), 9);
        // wraparound
        assert_eq!(local_seq(true, u32::MAX, u32::MAX - 5), 0);
        assert_eq!(seq_max(u32::MAX, 0), 0);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a base for virtual time
    fn dad_counts_within_the_window_and_freezes_at_n() {
        let cfg = DadCfg {
            max_moves: 3,
            window: Duration::from_secs(10),
            freeze: Some(Duration::from_secs(30)),
        };
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut d = Dad::default();
        assert!(!d.record(t0, &cfg));
        assert!(!d.record(t0 + s(4), &cfg));
        // the first move has left the window at t0+10: two in window, no freeze
        assert!(!d.record(t0 + s(11), &cfg));
        assert!(!d.frozen());
        assert!(d.record(t0 + s(12), &cfg));
        assert_eq!(d.thaw_at(&cfg), Some(t0 + s(42)));
        // frozen: further moves counted for the record but do not re-freeze
        assert!(!d.record(t0 + s(13), &cfg));
        assert_eq!(d.total(), 5);
        d.clear();
        assert!(!d.frozen());
        assert_eq!(d.recent(t0 + s(13), &cfg), 0);
    }
}
