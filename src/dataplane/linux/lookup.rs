//! One MAC read back from the kernel (`Dataplane::lookup`, for `vmmi explain mac`): the
//! entries an AF_BRIDGE FDB dump holds for it on one L2 VNI's devices.
//!
//! A remote MAC is two entries (`mod.rs`): the VXLAN device's (`self`, NDA_DST = the remote
//! VTEP, one message per remote) and the bridge's (NDA_MASTER = the bridge, on the VXLAN
//! port). A local MAC is the bridge's entry on another port. Entries of other devices, of
//! other MACs, of a VLAN other than 0 (vmmi's bridges are not VLAN-aware) and the ports' own
//! `self` addresses are not looked at.
//!
//! Owns: `mac_entry` (pure: dump → `MacEntry`). Must not: send anything (`mod.rs` dumps) or
//! judge what it finds (the runtime compares it with what the EVPN layer wants).

use netlink_packet_route::neighbour::NeighbourFlags;

use super::nl::{NUD_NOARP, NUD_PERMANENT, NeighView};
use crate::dataplane::{BridgeSide, MacEntry};
use crate::wire::types::MacAddr;

/// What `fdb` (an AF_BRIDGE dump) holds for `mac` on the VXLAN device `vx` and the bridge
/// `br` of one L2 VNI.
pub(super) fn mac_entry(fdb: &[NeighView], vx: u32, br: u32, mac: MacAddr) -> MacEntry {
    let mut e = MacEntry::default();
    for v in fdb.iter().filter(|v| v.bridge_family && v.mac == Some(mac)) {
        let own = v.flags.contains(NeighbourFlags::Own);
        if v.master == Some(br) && !own {
            if v.vlan.is_none_or(|n| n == 0) {
                e.bridge = if v.ifindex == vx {
                    BridgeSide::Vxlan
                } else {
                    BridgeSide::Local { port: v.ifindex }
                };
            }
        } else if v.ifindex == vx && own && v.master.is_none() {
            let Some(dst) = v.dst else { continue };
            if e.vtep.is_some() {
                e.other_vteps.push(dst);
                continue;
            }
            e.vtep = Some(dst);
            e.extern_learn = v.flags.contains(NeighbourFlags::ExtLearned);
            e.permanent = v.state & NUD_PERMANENT != 0;
            e.is_static = v.state & NUD_NOARP != 0;
            e.sticky = v.flags.contains(NeighbourFlags::Sticky);
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::dataplane::linux::nl::{fdb_kind, master_kind};

    const BR: u32 = 2;
    const VX: u32 = 3;
    const PORT: u32 = 4;
    const M: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

    fn view(ifindex: u32, master: Option<u32>, state: u16, flags: NeighbourFlags) -> NeighView {
        NeighView {
            bridge_family: true,
            ifindex,
            state,
            flags,
            mac: Some(M),
            dst: None,
            master,
            vni: None,
            port: None,
            vlan: None,
        }
    }

    fn remote(dst: &str, sticky: bool) -> NeighView {
        let (state, flags) = fdb_kind(sticky);
        let mut v = view(VX, None, state, flags);
        v.dst = dst.parse().ok();
        v
    }

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn vmmis_pair_is_a_remote_mac_with_its_flags() {
        let (s, f) = master_kind();
        let dump = vec![remote("10.0.0.2", false), view(VX, Some(BR), s, f)];
        let e = mac_entry(&dump, VX, BR, M);
        assert_eq!(e.vtep, ip("10.0.0.2"));
        assert!(e.extern_learn && !e.permanent && !e.is_static && !e.sticky);
        assert_eq!(e.bridge, BridgeSide::Vxlan);
        assert!(e.other_vteps.is_empty());
        // sticky: static sticky
        let e = mac_entry(&[remote("10.0.0.2", true)], VX, BR, M);
        assert!(e.is_static && e.sticky && e.extern_learn);
        assert_eq!(e.bridge, BridgeSide::Absent);
    }

    #[test]
    fn an_operators_entry_a_second_remote_and_a_local_port_are_shown_as_they_are() {
        let mut op = remote("10.0.0.9", false);
        op.flags = NeighbourFlags::Own;
        op.state = NUD_PERMANENT;
        let dump = vec![
            op,
            remote("10.0.0.8", false),
            view(PORT, Some(BR), 0x02, NeighbourFlags::empty()),
        ];
        let e = mac_entry(&dump, VX, BR, M);
        assert_eq!(e.vtep, ip("10.0.0.9"));
        assert_eq!(e.other_vteps, vec![IpAddr::from([10, 0, 0, 8])]);
        assert!(!e.extern_learn && e.permanent);
        assert_eq!(e.bridge, BridgeSide::Local { port: PORT });
        assert!(e.local());
    }

    #[test]
    fn other_devices_macs_vlans_and_own_addresses_are_not_looked_at() {
        let mut other_mac = remote("10.0.0.2", false);
        other_mac.mac = Some(MacAddr([2, 0, 0, 0, 0, 2]));
        let mut vlan = view(PORT, Some(BR), 0x02, NeighbourFlags::empty());
        vlan.vlan = Some(10);
        let dump = vec![
            other_mac,
            remote("10.0.0.2", false).tap(|v| v.ifindex = 99),
            view(PORT, Some(77), 0x02, NeighbourFlags::empty()),
            view(PORT, Some(BR), NUD_PERMANENT, NeighbourFlags::Own),
            vlan,
        ];
        assert_eq!(mac_entry(&dump, VX, BR, M), MacEntry::default());
    }

    trait Tap: Sized {
        fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
            f(&mut self);
            self
        }
    }
    impl Tap for NeighView {}
}
