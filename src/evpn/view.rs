//! Read-only views of the EVPN layer for the API and CLI: `show macs|vnis|moves`,
//! `explain mac`.
//!
//! Owns: the JSON shapes. Must not: change state.

use std::net::IpAddr;
use std::time::Instant;

use serde::Serialize;

use super::{Evpn, Loc, MoveRecord, Step};
use crate::dataplane::{BridgeSide, MacEntry};
use crate::rib::mac_mobility::{self, Claim, MoveReason};
use crate::wire::types::MacAddr;

#[derive(Clone, Debug, Serialize)]
pub struct MacView {
    pub vni: u32,
    pub mac: MacAddr,
    /// Where the MAC is (None: nobody claims it now).
    pub location: Option<Loc>,
    /// The winning claim's sequence.
    pub seq: u32,
    pub sticky: bool,
    pub ips: Vec<IpAddr>,
    pub reason: Option<MoveReason>,
    pub duplicate: bool,
    pub moves_in_window: usize,
    /// Where the dataplane points the MAC (remote VTEP), when it does.
    pub fdb: Option<IpAddr>,
}

#[derive(Clone, Debug, Serialize)]
pub struct VniView {
    pub vni: u32,
    pub kind: &'static str,
    pub rd: String,
    pub import_rt: Vec<String>,
    pub export_rt: Vec<String>,
    pub l3_vni: Option<u32>,
    pub local_macs: usize,
    pub remote_macs: usize,
    pub flood_list: Vec<IpAddr>,
    pub prefixes: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct StepView {
    pub step: Step,
    /// Microseconds after the move started.
    pub after_us: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct MoveView {
    pub id: u64,
    pub vni: u32,
    pub mac: MacAddr,
    pub from: Loc,
    pub to: Loc,
    pub seq: u32,
    pub reason: MoveReason,
    pub counted: bool,
    /// Microseconds before `now` the move started.
    pub age_us: u64,
    /// When the move started, in microseconds since the UNIX epoch (the runtime fills it in
    /// from its wall clock; one clock for every daemon on a host, so timelines of several
    /// daemons line up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_unix_us: Option<u64>,
    pub steps: Vec<StepView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClaimView {
    pub at: Loc,
    pub seq: u32,
    pub sticky: bool,
    /// The routes behind a remote claim: RD and IP of each.
    pub routes: Vec<String>,
    pub winner: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Explain {
    pub vni: u32,
    pub mac: MacAddr,
    pub claims: Vec<ClaimView>,
    pub decided_by: Option<&'static str>,
    pub advertised: Option<AdvView>,
    pub last_local_seq: u32,
    pub highest_seq_seen: u32,
    pub duplicate: bool,
    pub moves_in_window: usize,
    pub moves_total: u32,
    /// What the dataplane holds: the remote VTEP of its entry for the MAC (`None`: no remote
    /// entry, or the dataplane could not be asked — `dataplane_error` says why). Read back
    /// from the backend (the kernel, for the Linux one) when the request is answered.
    pub dataplane: Option<IpAddr>,
    /// The dataplane's bridge holds the MAC on a local port.
    pub dataplane_local: bool,
    /// What the EVPN layer wants the dataplane to hold: the remote VTEP it last wrote for the
    /// MAC (`None`: no remote entry).
    pub dataplane_wanted: Option<IpAddr>,
    /// The dataplane holds what the layer wants (`Explain::set_dataplane` says when);
    /// `false` when it could not be asked.
    pub dataplane_in_sync: bool,
    /// The dataplane's entry as read, with its flags (`None` when it could not be asked).
    pub dataplane_entry: Option<MacEntry>,
    /// Why the dataplane could not be asked (no backend, no answer in time, a failed read).
    pub dataplane_error: Option<String>,
    pub suppression: Vec<IpAddr>,
    pub recent_moves: Vec<MoveView>,
    pub summary: String,
}

impl Explain {
    /// Fill in what the dataplane holds (`Ok`) or why it could not be asked (`Err`), and
    /// whether that is what the layer wants. In sync: with a remote VTEP wanted, the entry
    /// sends to that VTEP alone and the bridge forwards the MAC to the VXLAN port; with none
    /// wanted, there is no remote entry and the bridge does not point at the VXLAN port
    /// (a local MAC, or none). The entry's flags are shown, not judged: an operator's entry
    /// (no `extern_learn`) to the right VTEP forwards right.
    pub fn set_dataplane(&mut self, held: Result<MacEntry, String>) {
        match held {
            Ok(e) => {
                self.dataplane = e.vtep;
                self.dataplane_local = e.local();
                self.dataplane_in_sync = match self.dataplane_wanted {
                    Some(v) => {
                        e.vtep == Some(v)
                            && e.other_vteps.is_empty()
                            && e.bridge == BridgeSide::Vxlan
                    }
                    None => e.vtep.is_none() && e.bridge != BridgeSide::Vxlan,
                };
                self.dataplane_entry = Some(e);
                self.dataplane_error = None;
            }
            Err(why) => {
                self.dataplane = None;
                self.dataplane_local = false;
                self.dataplane_in_sync = false;
                self.dataplane_entry = None;
                self.dataplane_error = Some(why);
            }
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct AdvView {
    pub seq: u32,
    pub sticky: bool,
    pub ips: Vec<IpAddr>,
}

fn us(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

pub fn move_view(r: &MoveRecord, now: Instant) -> MoveView {
    MoveView {
        id: r.id,
        vni: r.vni,
        mac: r.mac,
        from: r.from,
        to: r.to,
        seq: r.seq,
        reason: r.reason,
        counted: r.counted,
        age_us: us(now.saturating_duration_since(r.at)),
        started_unix_us: None,
        steps: r
            .steps
            .iter()
            .map(|(s, t)| StepView {
                step: *s,
                after_us: us(t.saturating_duration_since(r.at)),
            })
            .collect(),
    }
}

impl Evpn {
    pub fn vni_views(&self) -> Vec<VniView> {
        self.vnis
            .values()
            .map(|v| {
                let t = self.l2.get(&v.vni);
                let count = |local: bool| {
                    t.map_or(0, |t| {
                        t.macs
                            .values()
                            .filter(|m| {
                                if local {
                                    m.local.is_some()
                                } else {
                                    m.fdb.is_some()
                                }
                            })
                            .count()
                    })
                };
                let mut flood: Vec<IpAddr> = t
                    .map(|t| t.floods.keys().copied().collect())
                    .unwrap_or_default();
                flood.sort_unstable();
                VniView {
                    vni: v.vni,
                    kind: if v.l3 { "l3" } else { "l2" },
                    rd: v.rd.to_string(),
                    import_rt: v
                        .import
                        .iter()
                        .map(|r| match r {
                            super::vni::ImportRt::Exact(rt) => rt.to_string(),
                            super::vni::ImportRt::Auto(n) => format!("*:{n}"),
                        })
                        .collect(),
                    export_rt: v.export.iter().map(|r| r.to_string()).collect(),
                    l3_vni: v.l3_vni,
                    local_macs: count(true),
                    remote_macs: count(false),
                    flood_list: flood,
                    prefixes: self.l3.get(&v.vni).map_or(0, |t| t.installed.len()),
                }
            })
            .collect()
    }

    /// MACs of one VNI (or all), sorted.
    pub fn mac_views(&self, vni: Option<u32>, now: Instant) -> Vec<MacView> {
        let mut out = Vec::new();
        for (n, t) in &self.l2 {
            if vni.is_some_and(|v| v != *n) {
                continue;
            }
            for (mac, st) in &t.macs {
                let location = match (&st.local, st.fdb) {
                    (Some(_), _) => Some(Loc::Local),
                    (None, Some((v, _))) => Some(Loc::Remote(v)),
                    _ => None,
                };
                if location.is_none() && !st.dad.frozen() {
                    continue;
                }
                let (seq, sticky, ips) = match (&st.local, st.fdb) {
                    (Some(l), _) => (l.seq, l.sticky, l.ips.to_vec()),
                    (None, Some((v, s))) => {
                        let rs = st.remotes.iter().filter(|r| r.vtep == v);
                        let seq = rs.clone().map(|r| r.seq).fold(0, mac_mobility::seq_max);
                        (seq, s, rs.filter_map(|r| r.ip).collect())
                    }
                    _ => (0, false, Vec::new()),
                };
                out.push(MacView {
                    vni: *n,
                    mac: *mac,
                    location,
                    seq,
                    sticky,
                    ips,
                    reason: st.reason,
                    duplicate: st.dad.frozen(),
                    moves_in_window: st.dad.recent(now, &self.dad),
                    fdb: st.fdb.map(|f| f.0),
                });
            }
        }
        out.sort_by_key(|m| (m.vni, m.mac));
        out
    }

    /// Recent moves, newest first.
    pub fn move_views(&self, now: Instant, limit: usize) -> Vec<MoveView> {
        self.log
            .iter()
            .rev()
            .take(limit)
            .map(|r| move_view(r, now))
            .collect()
    }

    /// Why this MAC is where it is.
    pub fn explain(&self, vni: u32, mac: MacAddr, now: Instant) -> Option<Explain> {
        let t = self.l2.get(&vni)?;
        let st = t.macs.get(&mac)?;
        let mut claims: Vec<(Claim, Vec<String>)> = Vec::new();
        if let Some(l) = &st.local {
            claims.push((
                Claim {
                    vtep: self.vtep,
                    seq: l.seq,
                    sticky: l.sticky,
                    local: true,
                },
                l.ips.iter().map(|i| format!("local {i}")).collect(),
            ));
        }
        for r in &st.remotes {
            let what = match r.ip {
                Some(ip) => format!("rd {} mac+ip {ip} seq {}", r.rd, r.seq),
                None => format!("rd {} mac seq {}", r.rd, r.seq),
            };
            match claims
                .iter_mut()
                .find(|(c, _)| !c.local && c.vtep == r.vtep)
            {
                Some((c, w)) => {
                    c.seq = mac_mobility::seq_max(c.seq, r.seq);
                    c.sticky |= r.sticky;
                    w.push(what);
                }
                None => claims.push((
                    Claim {
                        vtep: r.vtep,
                        seq: r.seq,
                        sticky: r.sticky,
                        local: false,
                    },
                    vec![what],
                )),
            }
        }
        let plain: Vec<Claim> = claims.iter().map(|c| c.0).collect();
        let win = mac_mobility::resolve(&plain);
        let frozen = st.dad.frozen();
        let loc = |c: &Claim| {
            if c.local {
                Loc::Local
            } else {
                Loc::Remote(c.vtep)
            }
        };
        let summary = match (win, frozen) {
            (_, true) => format!(
                "duplicate: {} moves within {} s froze it: nothing new is advertised for it \
                 until `vmmi dad clear --vni {vni} --mac {mac}`{}; forwarding stays where it \
                 was while that location holds the MAC and follows the winner once it is gone \
                 (now: {})",
                self.dad.max_moves,
                self.dad.window.as_secs(),
                self.dad
                    .freeze
                    .map(|d| format!(" or {} s pass", d.as_secs()))
                    .unwrap_or_default(),
                match (st.fdb, &st.local) {
                    (Some((v, _)), _) => format!("towards VTEP {v}"),
                    (None, Some(_)) => "local".to_string(),
                    (None, None) => "no entry, flooded".to_string(),
                }
            ),
            (None, false) => "nobody claims this MAC now".to_string(),
            (Some((i, why)), false) => {
                let c = plain.get(i).copied();
                match c {
                    Some(c) if c.local => {
                        format!("local here with sequence {} ({})", c.seq, why.describe())
                    }
                    Some(c) => format!(
                        "at VTEP {} with sequence {} ({})",
                        c.vtep,
                        c.seq,
                        why.describe()
                    ),
                    None => String::new(),
                }
            }
        };
        Some(Explain {
            vni,
            mac,
            claims: claims
                .iter()
                .enumerate()
                .map(|(i, (c, routes))| ClaimView {
                    at: loc(c),
                    seq: c.seq,
                    sticky: c.sticky,
                    routes: routes.clone(),
                    winner: win.is_some_and(|w| w.0 == i),
                })
                .collect(),
            decided_by: win.map(|w| w.1.describe()),
            advertised: st.adv.as_ref().map(|a| AdvView {
                seq: a.seq,
                sticky: a.sticky,
                ips: a.ips.to_vec(),
            }),
            last_local_seq: st.last_local,
            highest_seq_seen: super::high(st),
            duplicate: frozen,
            moves_in_window: st.dad.recent(now, &self.dad),
            moves_total: st.dad.total(),
            dataplane: None,
            dataplane_local: false,
            dataplane_wanted: st.fdb.map(|f| f.0),
            dataplane_in_sync: false,
            dataplane_entry: None,
            dataplane_error: Some("the dataplane was not asked".to_string()),
            suppression: st.neighs.to_vec(),
            recent_moves: self
                .log
                .iter()
                .rev()
                .filter(|r| r.vni == vni && r.mac == mac)
                .take(10)
                .map(|r| move_view(r, now))
                .collect(),
            summary,
        })
    }

    /// Where the dataplane of this layer points each remote MAC (for tests and `show`).
    pub fn fdb(&self, vni: u32, mac: MacAddr) -> Option<IpAddr> {
        self.l2.get(&vni)?.macs.get(&mac)?.fdb.map(|f| f.0)
    }

    /// Whether the MAC is frozen by duplicate detection.
    pub fn frozen(&self, vni: u32, mac: MacAddr) -> bool {
        self.l2
            .get(&vni)
            .and_then(|t| t.macs.get(&mac))
            .is_some_and(|s| s.dad.frozen())
    }

    /// The sequence we advertise for a local MAC (None: not advertised).
    pub fn advertised_seq(&self, vni: u32, mac: MacAddr) -> Option<u32> {
        self.l2
            .get(&vni)?
            .macs
            .get(&mac)?
            .adv
            .as_ref()
            .map(|a| a.seq)
    }

    pub fn is_local(&self, vni: u32, mac: MacAddr) -> bool {
        self.l2
            .get(&vni)
            .and_then(|t| t.macs.get(&mac))
            .is_some_and(|s| s.local.is_some())
    }
}

impl Evpn {
    /// Local MACs: (vni, mac, addresses, sticky).
    pub fn local_macs(&self) -> Vec<(u32, MacAddr, Vec<IpAddr>, bool)> {
        let mut v: Vec<_> = self
            .l2
            .iter()
            .flat_map(|(vni, t)| {
                t.macs.iter().filter_map(move |(m, s)| {
                    s.local
                        .as_ref()
                        .map(|l| (*vni, *m, l.ips.to_vec(), l.sticky))
                })
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// Everything the dataplane should hold now (for the startup reconcile).
    pub fn desired(&self) -> Vec<crate::dataplane::DataplaneOp> {
        use crate::dataplane::DataplaneOp;
        let mut ops = Vec::new();
        for (&vni, t) in &self.l2 {
            for &vtep in t.floods.keys() {
                ops.push(DataplaneOp::Flood { vni, vtep });
            }
            for (&mac, st) in &t.macs {
                if let Some((vtep, sticky)) = st.fdb {
                    ops.push(DataplaneOp::Fdb {
                        vni,
                        mac,
                        vtep,
                        sticky,
                    });
                }
            }
            for (&ip, macs) in &t.neigh {
                if let Some(&mac) = macs.last() {
                    ops.push(DataplaneOp::Neigh { vni, ip, mac });
                }
            }
        }
        for (&vni, t) in &self.l3 {
            for (&prefix, &(vtep, rmac)) in &t.installed {
                ops.push(DataplaneOp::Route {
                    vni,
                    prefix,
                    vtep,
                    rmac,
                });
            }
        }
        ops
    }
}

impl Evpn {
    /// What the layer wants now for the entry `op` is about (the add, or the delete when it
    /// wants nothing there): a failed op is retried as this, never as its stale self.
    pub fn current(&self, op: &crate::dataplane::DataplaneOp) -> crate::dataplane::DataplaneOp {
        use crate::dataplane::DataplaneOp as O;
        match *op {
            O::Fdb { vni, mac, .. } | O::FdbDel { vni, mac } => {
                match self
                    .l2
                    .get(&vni)
                    .and_then(|t| t.macs.get(&mac))
                    .and_then(|s| s.fdb)
                {
                    Some((vtep, sticky)) => O::Fdb {
                        vni,
                        mac,
                        vtep,
                        sticky,
                    },
                    None => O::FdbDel { vni, mac },
                }
            }
            O::Flood { vni, vtep } | O::FloodDel { vni, vtep } => {
                if self
                    .l2
                    .get(&vni)
                    .is_some_and(|t| t.floods.contains_key(&vtep))
                {
                    O::Flood { vni, vtep }
                } else {
                    O::FloodDel { vni, vtep }
                }
            }
            O::Neigh { vni, ip, .. } | O::NeighDel { vni, ip } => {
                match self
                    .l2
                    .get(&vni)
                    .and_then(|t| t.neigh.get(&ip))
                    .and_then(|m| m.last())
                {
                    Some(&mac) => O::Neigh { vni, ip, mac },
                    None => O::NeighDel { vni, ip },
                }
            }
            O::Route { vni, prefix, .. } | O::RouteDel { vni, prefix } => {
                match self.l3.get(&vni).and_then(|t| t.installed.get(&prefix)) {
                    Some(&(vtep, rmac)) => O::Route {
                        vni,
                        prefix,
                        vtep,
                        rmac,
                    },
                    None => O::RouteDel { vni, prefix },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explain(wanted: Option<&str>) -> Explain {
        Explain {
            vni: 100,
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            claims: Vec::new(),
            decided_by: None,
            advertised: None,
            last_local_seq: 0,
            highest_seq_seen: 0,
            duplicate: false,
            moves_in_window: 0,
            moves_total: 0,
            dataplane: None,
            dataplane_local: false,
            dataplane_wanted: wanted.and_then(|w| w.parse().ok()),
            dataplane_in_sync: false,
            dataplane_entry: None,
            dataplane_error: None,
            suppression: Vec::new(),
            recent_moves: Vec::new(),
            summary: String::new(),
        }
    }

    fn remote(vtep: &str) -> MacEntry {
        MacEntry {
            vtep: vtep.parse().ok(),
            extern_learn: true,
            bridge: BridgeSide::Vxlan,
            ..MacEntry::default()
        }
    }

    fn in_sync(wanted: Option<&str>, held: MacEntry) -> bool {
        let mut x = explain(wanted);
        x.set_dataplane(Ok(held.clone()));
        assert_eq!(x.dataplane, held.vtep);
        assert_eq!(x.dataplane_entry, Some(held));
        assert_eq!(x.dataplane_error, None);
        x.dataplane_in_sync
    }

    #[test]
    fn in_sync_means_the_dataplane_forwards_where_the_layer_wants() {
        let x = Some("10.0.0.2");
        assert!(in_sync(x, remote("10.0.0.2")));
        assert!(!in_sync(x, remote("10.0.0.9")), "an operator's replace");
        assert!(!in_sync(x, MacEntry::default()), "absent");
        let mut two = remote("10.0.0.2");
        two.other_vteps.push([10, 0, 0, 8].into());
        assert!(!in_sync(x, two), "frames also go elsewhere");
        let mut no_bridge = remote("10.0.0.2");
        no_bridge.bridge = BridgeSide::Absent;
        assert!(!in_sync(x, no_bridge), "the bridge floods it");
        let mut operators = remote("10.0.0.2");
        operators.extern_learn = false;
        assert!(in_sync(x, operators), "flags are shown, not judged");
        // no remote entry wanted: none held, the bridge not pointing at the VXLAN port
        assert!(in_sync(None, MacEntry::default()));
        let local = MacEntry {
            bridge: BridgeSide::Local { port: 4 },
            ..MacEntry::default()
        };
        let mut l = explain(None);
        l.set_dataplane(Ok(local));
        assert!(l.dataplane_in_sync && l.dataplane_local);
        assert!(!in_sync(None, remote("10.0.0.2")), "a stale remote entry");
    }

    #[test]
    fn a_dataplane_that_cannot_be_asked_is_never_in_sync() {
        let mut x = explain(Some("10.0.0.2"));
        x.set_dataplane(Ok(remote("10.0.0.2")));
        x.set_dataplane(Err("the dataplane did not answer within 1000 ms".into()));
        assert_eq!(
            (
                x.dataplane,
                x.dataplane_in_sync,
                x.dataplane_entry,
                x.dataplane_local
            ),
            (None, false, None, false)
        );
        assert_eq!(
            x.dataplane_error.as_deref(),
            Some("the dataplane did not answer within 1000 ms")
        );
        assert_eq!(x.dataplane_wanted, "10.0.0.2".parse().ok(), "kept");
    }
}
