//! Local learning of the Linux backend: a background task subscribed to the kernel's
//! neighbour and link multicast groups turns bridge-FDB changes on local ports into
//! `LearnEvent`s, without ever blocking the event loop (events go into a channel that
//! `Dataplane::drain_events` empties; a `Notify` wakes `events_ready`).
//!
//! What counts as a local MAC: an AF_BRIDGE FDB entry whose NDA_MASTER is the bridge of a
//! configured L2 VNI, on a port other than that VNI's VXLAN device and other than the bridge
//! itself, not written by a control plane (no NTF_EXT_LEARNED), not a device's own address
//! (NUD_PERMANENT "local" entries, NTF_SELF entries) and not a multicast address. Such an
//! entry that is `static` (NUD_NOARP) or NTF_STICKY is reported sticky. vmmi's own entries
//! for remote MACs — the VXLAN device's and the bridge's (`master extern_learn` on the VXLAN
//! port) — are therefore never local MACs, on both counts.
//!
//! A local MAC leaves when its entry is deleted, when its port goes, or when the bridge's
//! entry for it is repointed at the VXLAN port by an extern_learn write (vmmi's bridge-side
//! entry: the EVPN layer found the MAC behind another VTEP). The kernel repoints the entry in
//! place (`br_fdb_external_learn_add`: one RTM_NEWNEIGH, no delete for the local port), so
//! that notification is the leave — without it, the VM coming back to the same port would
//! not be news.
//!
//! Owns: the learn task, its view of which MACs are local (`Learner`), resync by dump (when
//! the configured VNIs change — which reports what is already attached — and after a socket
//! overrun).
//! Must not: write to the kernel.

#![allow(clippy::disallowed_methods)] // tokio::spawn: dataplane/linux owns its netlink tasks

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::neighbour::NeighbourFlags;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::AsyncSocket;
use rtnetlink::{Handle, MulticastGroup};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::nl::{self, NUD_NOARP, NUD_PERMANENT, NeighView};
use crate::dataplane::LearnEvent;
use crate::wire::types::MacAddr;

/// Which bridges to watch: bridge ifindex → (VNI, its VXLAN ifindex).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct LearnMap {
    pub bridges: HashMap<u32, (u32, u32)>,
}

/// A local MAC as last reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Local {
    port: u32,
    sticky: bool,
}

/// The learn task's state: the map and what it has reported.
#[derive(Debug, Default)]
pub(super) struct Learner {
    map: LearnMap,
    known: HashMap<(u32, MacAddr), Local>,
}

impl Learner {
    /// `(vni, mac, local)` when `v` is a local MAC of a watched bridge (see the module header).
    fn local(&self, v: &NeighView) -> Option<(u32, MacAddr, Local)> {
        if !v.bridge_family
            || v.flags
                .intersects(NeighbourFlags::Own | NeighbourFlags::ExtLearned)
        {
            return None;
        }
        let br = v.master?;
        let &(vni, vx) = self.map.bridges.get(&br)?;
        let mac = v.mac?;
        if v.ifindex == vx || v.ifindex == br || mac.0[0] & 1 == 1 || mac == MacAddr::ZERO {
            return None;
        }
        if v.state & NUD_PERMANENT != 0 {
            return None;
        }
        let sticky = v.state & NUD_NOARP != 0 || v.flags.contains(NeighbourFlags::Sticky);
        Some((
            vni,
            mac,
            Local {
                port: v.ifindex,
                sticky,
            },
        ))
    }

    /// A known local MAC whose bridge entry a control plane repointed at the VXLAN port (see
    /// the module header): it left.
    fn taken_over(&mut self, v: &NeighView) -> Option<LearnEvent> {
        if !v.bridge_family
            || v.flags.contains(NeighbourFlags::Own)
            || !v.flags.contains(NeighbourFlags::ExtLearned)
        {
            return None;
        }
        let &(vni, vx) = self.map.bridges.get(&v.master?)?;
        let mac = v.mac?;
        if v.ifindex != vx {
            return None;
        }
        self.known.remove(&(vni, mac))?;
        Some(LearnEvent::Left { vni, mac, ip: None })
    }

    /// An RTM_NEWNEIGH (`added`) or RTM_DELNEIGH.
    pub fn on_neigh(&mut self, v: &NeighView, added: bool) -> Option<LearnEvent> {
        let Some((vni, mac, l)) = self.local(v) else {
            return if added { self.taken_over(v) } else { None };
        };
        if added {
            if self.known.insert((vni, mac), l) == Some(l) {
                return None;
            }
            Some(LearnEvent::Learned {
                vni,
                mac,
                ip: None,
                sticky: l.sticky,
            })
        } else {
            // a delete on a port the MAC already left (it moved to another port) is not a leave
            match self.known.get(&(vni, mac)) {
                Some(k) if k.port == l.port => {
                    self.known.remove(&(vni, mac));
                    Some(LearnEvent::Left { vni, mac, ip: None })
                }
                _ => None,
            }
        }
    }

    /// A port disappeared: every MAC on it left (the kernel also sends the FDB deletes; this
    /// covers a lost notification).
    pub fn on_link_gone(&mut self, ifindex: u32) -> Vec<LearnEvent> {
        let gone: Vec<(u32, MacAddr)> = self
            .known
            .iter()
            .filter(|(_, l)| l.port == ifindex)
            .map(|(k, _)| *k)
            .collect();
        gone.into_iter()
            .map(|(vni, mac)| {
                self.known.remove(&(vni, mac));
                LearnEvent::Left { vni, mac, ip: None }
            })
            .collect()
    }

    /// A new map (forgetting MACs of bridges no longer watched, silently).
    pub fn set_map(&mut self, map: LearnMap) {
        let vnis: Vec<u32> = map.bridges.values().map(|v| v.0).collect();
        self.known.retain(|(vni, _), _| vnis.contains(vni));
        self.map = map;
    }

    /// A full FDB dump: report what appeared or changed, and what is gone.
    pub fn resync(&mut self, dump: &[NeighView]) -> Vec<LearnEvent> {
        let mut now = HashMap::new();
        for v in dump {
            if let Some((vni, mac, l)) = self.local(v) {
                now.insert((vni, mac), l);
            }
        }
        let mut out = Vec::new();
        let mut gone: Vec<_> = self
            .known
            .keys()
            .filter(|k| !now.contains_key(k))
            .copied()
            .collect();
        gone.sort();
        for (vni, mac) in gone {
            out.push(LearnEvent::Left { vni, mac, ip: None });
        }
        let mut fresh: Vec<_> = now
            .iter()
            .filter(|(k, l)| self.known.get(k) != Some(l))
            .map(|(k, l)| (*k, *l))
            .collect();
        fresh.sort_by_key(|(k, _)| *k);
        for ((vni, mac), l) in fresh {
            out.push(LearnEvent::Learned {
                vni,
                mac,
                ip: None,
                sticky: l.sticky,
            });
        }
        self.known = now;
        out
    }
}

/// Where the learn task delivers.
pub(super) struct Sink {
    pub tx: mpsc::UnboundedSender<LearnEvent>,
    pub notify: Arc<Notify>,
}

impl Sink {
    fn emit(&self, events: impl IntoIterator<Item = LearnEvent>) {
        let mut any = false;
        for e in events {
            debug!(?e, "local learn");
            any |= self.tx.send(e).is_ok();
        }
        if any {
            self.notify.notify_one();
        }
    }
}

/// Subscribe (RTNLGRP_NEIGH + RTNLGRP_LINK) and start the learn task; `handle` serves the
/// resync dumps. Subscribing happens here, before any dump, so nothing falls between them.
pub(super) fn spawn(
    handle: Handle,
    map: watch::Receiver<LearnMap>,
    sink: Sink,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let (mut conn, _h, rx) =
        rtnetlink::new_multicast_connection(&[MulticastGroup::Neigh, MulticastGroup::Link])?;
    // a MAC storm can outrun the task: a larger buffer, and an overrun triggers a resync
    if let Err(e) = conn.socket_mut().socket_mut().set_rx_buf_sz(8 << 20) {
        warn!("learn socket: SO_RCVBUF 8 MiB refused: {e}");
    }
    let c = tokio::spawn(conn);
    let t = tokio::spawn(run(handle, map, rx, sink));
    Ok(vec![c, t])
}

type Rx = futures::channel::mpsc::UnboundedReceiver<(
    netlink_packet_core::NetlinkMessage<RouteNetlinkMessage>,
    netlink_sys::SocketAddr,
)>;

async fn run(handle: Handle, mut map: watch::Receiver<LearnMap>, mut rx: Rx, sink: Sink) {
    let mut l = Learner::default();
    loop {
        tokio::select! {
            changed = map.changed() => {
                if changed.is_err() {
                    return; // the backend is gone
                }
                let m = map.borrow_and_update().clone();
                l.set_map(m);
                resync(&handle, &mut l, &sink).await;
            }
            msg = rx.next() => {
                let Some((msg, _)) = msg else {
                    warn!("learn socket closed: local learning stopped");
                    return;
                };
                match msg.payload {
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(n)) => {
                        sink.emit(l.on_neigh(&NeighView::from_msg(&n), true));
                    }
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelNeighbour(n)) => {
                        sink.emit(l.on_neigh(&NeighView::from_msg(&n), false));
                    }
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(k)) => {
                        sink.emit(l.on_link_gone(k.header.index));
                    }
                    NetlinkPayload::Overrun(_) => {
                        warn!("learn socket overrun: resyncing local MACs by dump");
                        resync(&handle, &mut l, &sink).await;
                    }
                    _ => {}
                }
            }
        }
    }
}

async fn resync(handle: &Handle, l: &mut Learner, sink: &Sink) {
    match nl::dump_neigh(handle, AddressFamily::Bridge).await {
        Ok(d) => sink.emit(l.resync(&d)),
        Err(e) => warn!("local MAC resync: bridge FDB dump failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BR: u32 = 2;
    const VX: u32 = 3;
    const PORT: u32 = 4;

    fn learner() -> Learner {
        let mut l = Learner::default();
        l.set_map(LearnMap {
            bridges: [(BR, (100, VX))].into_iter().collect(),
        });
        l
    }

    fn entry(ifindex: u32, mac: u8, state: u16, flags: NeighbourFlags) -> NeighView {
        NeighView {
            bridge_family: true,
            ifindex,
            state,
            flags,
            mac: Some(MacAddr([2, 0, 0, 0, 0, mac])),
            dst: None,
            master: Some(BR),
            vni: None,
            port: None,
            vlan: None,
        }
    }

    const REACHABLE: u16 = 0x02;

    #[test]
    fn a_mac_learned_on_a_port_is_reported_once_and_leaves_with_its_port() {
        let mut l = learner();
        let e = entry(PORT, 1, REACHABLE, NeighbourFlags::empty());
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        assert_eq!(
            l.on_neigh(&e, true),
            Some(LearnEvent::Learned {
                vni: 100,
                mac,
                ip: None,
                sticky: false
            })
        );
        assert_eq!(l.on_neigh(&e, true), None, "a refresh is not news");
        // static (NUD_NOARP) = sticky: reported again
        let s = entry(PORT, 1, NUD_NOARP, NeighbourFlags::empty());
        assert_eq!(
            l.on_neigh(&s, true),
            Some(LearnEvent::Learned {
                vni: 100,
                mac,
                ip: None,
                sticky: true
            })
        );
        // moved to port 5, then the old port's delete arrives: not a leave
        let moved = entry(5, 1, REACHABLE, NeighbourFlags::empty());
        assert!(l.on_neigh(&moved, true).is_some());
        assert_eq!(l.on_neigh(&e, false), None);
        assert_eq!(
            l.on_link_gone(5),
            vec![LearnEvent::Left {
                vni: 100,
                mac,
                ip: None
            }]
        );
        assert_eq!(l.on_neigh(&moved, false), None, "already left");
    }

    #[test]
    fn our_own_entries_and_device_addresses_are_not_local_macs() {
        let mut l = learner();
        let skip = [
            entry(VX, 1, REACHABLE, NeighbourFlags::empty()), // on the VXLAN port
            entry(BR, 1, REACHABLE, NeighbourFlags::empty()), // the bridge itself
            entry(PORT, 1, REACHABLE, NeighbourFlags::ExtLearned), // a control plane's
            entry(PORT, 1, NUD_PERMANENT, NeighbourFlags::empty()), // the port's own address
            entry(PORT, 1, NUD_PERMANENT, NeighbourFlags::Own), // a device's self entry
            NeighView {
                master: Some(77),
                ..entry(PORT, 1, REACHABLE, NeighbourFlags::empty())
            },
            NeighView {
                mac: Some(MacAddr([0x33, 0x33, 0, 0, 0, 1])),
                ..entry(PORT, 1, REACHABLE, NeighbourFlags::empty())
            },
            NeighView {
                bridge_family: false,
                ..entry(PORT, 1, REACHABLE, NeighbourFlags::empty())
            },
        ];
        for (i, e) in skip.iter().enumerate() {
            assert_eq!(l.on_neigh(e, true), None, "entry {i} is not a local MAC");
        }
    }

    #[test]
    fn our_bridge_side_entry_taking_a_local_mac_over_is_its_leave() {
        let mut l = learner();
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let ours = entry(VX, 1, REACHABLE, NeighbourFlags::ExtLearned); // master extern_learn
        // never a learn, for a MAC nobody knows as local
        assert_eq!(l.on_neigh(&ours, true), None);
        let local = entry(PORT, 1, REACHABLE, NeighbourFlags::empty());
        assert!(l.on_neigh(&local, true).is_some());
        // the EVPN layer found it behind another VTEP: our write repoints the bridge's entry
        assert_eq!(
            l.on_neigh(&ours, true),
            Some(LearnEvent::Left {
                vni: 100,
                mac,
                ip: None
            })
        );
        assert_eq!(l.on_neigh(&ours, true), None, "left once");
        // the VM sends from the same port again: news again
        assert_eq!(
            l.on_neigh(&local, true),
            Some(LearnEvent::Learned {
                vni: 100,
                mac,
                ip: None,
                sticky: false
            })
        );
        // a VXLAN (self) entry, or one without extern_learn on the VXLAN port, is not that
        let own = NeighView {
            master: None,
            ..entry(
                VX,
                1,
                REACHABLE,
                NeighbourFlags::Own | NeighbourFlags::ExtLearned,
            )
        };
        assert_eq!(l.on_neigh(&own, true), None);
        assert_eq!(
            l.on_neigh(&entry(VX, 1, REACHABLE, NeighbourFlags::empty()), true),
            None
        );
        // nor is a delete of our entry
        assert_eq!(l.on_neigh(&ours, false), None);
        assert!(l.known.contains_key(&(100, mac)));
    }

    #[test]
    fn resync_reports_what_is_attached_and_what_left_since() {
        let mut l = learner();
        let a = entry(PORT, 1, REACHABLE, NeighbourFlags::empty());
        let b = entry(PORT, 2, NUD_NOARP, NeighbourFlags::empty());
        let ev = l.resync(&[
            a.clone(),
            b.clone(),
            entry(VX, 3, REACHABLE, NeighbourFlags::empty()),
        ]);
        assert_eq!(ev.len(), 2);
        assert!(
            ev.iter()
                .all(|e| matches!(e, LearnEvent::Learned { vni: 100, .. }))
        );
        assert!(l.resync(&[a.clone(), b]).is_empty());
        assert_eq!(
            l.resync(&[a]),
            vec![LearnEvent::Left {
                vni: 100,
                mac: MacAddr([2, 0, 0, 0, 0, 2]),
                ip: None
            }]
        );
        // unwatching a bridge forgets its MACs without reporting
        l.set_map(LearnMap::default());
        assert!(l.resync(&[]).is_empty());
    }
}
