//! Device setup of the Linux backend: per configured VNI a bridge, a VXLAN port on it (id =
//! VNI, local VTEP, UDP 4789, nolearning; bridge-port learning off, `neigh_suppress` as asked)
//! and, for an L3 VNI, a VRF device the bridge is enslaved to.
//!
//! A kernel built without VRF support (`CONFIG_NET_VRF`: creating the device answers "not
//! supported") still gets the L3 VNI's bridge and VXLAN device, unenslaved; its routes go to
//! the configured table all the same (the backend never needs the VRF device to write them),
//! and `setup` returns the reason next to the devices so `configure` reports it.
//!
//! An L2 VNI's bridge keeps the address it has: its address is *set* (NET_ADDR_SET) once,
//! to the value it already has, when it is not set yet. A bridge whose address is not set
//! takes the lowest address of its ports, so a VM port joining with a lower MAC changes it —
//! and a device address change (NETDEV_CHANGEADDR) flushes the device's neighbour entries:
//! the ARP/ND suppression entries vmmi wrote on the bridge would silently go (seen on 6.18:
//! an entry gone after `ip link set vm0 master br100`). Netlink does not carry
//! `addr_assign_type`; it is read from sysfs, and only trusted when the sysfs device has the
//! ifindex netlink gave (a process in another network namespace than its /sys shows is told
//! so in the log and leaves the bridge as it is). Setting it flushes the bridge's neighbour
//! entries once, when vmmi first configures the bridge — before the start-up reconcile, which
//! writes them.
//!
//! Owns: reading links into `LinkView`, deciding adopt / create / refuse (`check_*`, pure),
//! and the create/attach requests.
//! Must not: delete or recreate a device. A device that is present with the wrong identity
//! (kind, VNI, local address, port, data-plane learning, enslaved to another master, VRF
//! table) is reported by name with the mismatch and left as it is; what can be set without
//! disturbing traffic (admin up, attaching an unattached port, bridge-port flags, an L3 VNI
//! bridge's address = our Router's MAC) is set.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;

use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoVrf, InfoVxlan, LinkAttribute, LinkFlags,
    LinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkUnspec, LinkVrf, LinkVxlan};
use tracing::warn;

use super::nl::{self, NlError};
use crate::dataplane::{VniDev, VniDevKind};
use crate::wire::types::MacAddr;

/// The IANA VXLAN port (RFC 7348 §5).
pub(super) const VXLAN_PORT: u16 = 4789;

/// The parts of a link the backend checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct LinkView {
    pub index: u32,
    pub name: String,
    /// IFLA_INFO_KIND as text (`bridge`, `vxlan`, `vrf`, `veth`, ...); `None`: no kind.
    pub kind: Option<String>,
    pub up: bool,
    pub master: Option<u32>,
    /// IFLA_ADDRESS (an Ethernet device's MAC).
    pub address: Option<MacAddr>,
    pub vxlan_id: Option<u32>,
    pub vxlan_local: Option<IpAddr>,
    pub vxlan_port: Option<u16>,
    pub vxlan_learning: Option<bool>,
    pub vrf_table: Option<u32>,
    /// Bridge-port flags when the link is a bridge port.
    pub port_learning: Option<bool>,
    pub port_neigh_suppress: Option<bool>,
}

fn kind_name(k: &InfoKind) -> String {
    match k {
        InfoKind::Bridge => "bridge".into(),
        InfoKind::Vxlan => "vxlan".into(),
        InfoKind::Vrf => "vrf".into(),
        InfoKind::Veth => "veth".into(),
        InfoKind::Other(s) => s.clone(),
        other => format!("{other:?}").to_lowercase(),
    }
}

impl LinkView {
    pub fn from_msg(m: &LinkMessage) -> LinkView {
        let mut v = LinkView {
            index: m.header.index,
            up: m.header.flags.contains(LinkFlags::Up),
            ..LinkView::default()
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => v.name = n.clone(),
                LinkAttribute::Address(a) => {
                    v.address = <[u8; 6]>::try_from(a.as_slice()).ok().map(MacAddr)
                }
                LinkAttribute::Controller(i) => v.master = Some(*i),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        match i {
                            LinkInfo::Kind(k) => v.kind = Some(kind_name(k)),
                            LinkInfo::Data(InfoData::Vxlan(d)) => {
                                for x in d {
                                    match x {
                                        InfoVxlan::Id(n) => v.vxlan_id = Some(*n),
                                        InfoVxlan::Local(a) => v.vxlan_local = Some((*a).into()),
                                        InfoVxlan::Local6(a) => v.vxlan_local = Some((*a).into()),
                                        InfoVxlan::Port(p) => v.vxlan_port = Some(*p),
                                        InfoVxlan::Learning(l) => v.vxlan_learning = Some(*l),
                                        _ => {}
                                    }
                                }
                            }
                            LinkInfo::Data(InfoData::Vrf(d)) => {
                                for x in d {
                                    if let InfoVrf::TableId(t) = x {
                                        v.vrf_table = Some(*t);
                                    }
                                }
                            }
                            LinkInfo::PortData(InfoPortData::BridgePort(d)) => {
                                for x in d {
                                    match x {
                                        InfoBridgePort::Learning(l) => v.port_learning = Some(*l),
                                        InfoBridgePort::NeighSupress(s) => {
                                            v.port_neigh_suppress = Some(*s)
                                        }
                                        _ => {}
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        v
    }
}

/// The kernel's view of the links, by name and index.
pub(super) struct Links {
    by_name: HashMap<String, LinkView>,
    names: HashMap<u32, String>,
}

impl Links {
    pub fn new(views: Vec<LinkView>) -> Links {
        let names = views.iter().map(|v| (v.index, v.name.clone())).collect();
        let by_name = views.into_iter().map(|v| (v.name.clone(), v)).collect();
        Links { by_name, names }
    }

    pub async fn dump(handle: &Handle) -> Result<Links, NlError> {
        let msgs = nl::dump_links(handle).await?;
        Ok(Links::new(msgs.iter().map(LinkView::from_msg).collect()))
    }

    pub fn get(&self, name: &str) -> Option<&LinkView> {
        self.by_name.get(name)
    }

    fn name_of(&self, index: u32) -> String {
        self.names
            .get(&index)
            .cloned()
            .unwrap_or_else(|| format!("ifindex {index}"))
    }
}

/// Mismatches of a present device that must be a VRF with `table`.
pub(super) fn check_vrf(l: &LinkView, table: u32) -> Vec<String> {
    if l.kind.as_deref() != Some("vrf") {
        return vec![format!("kind {} (want vrf)", kind_str(l))];
    }
    match l.vrf_table {
        Some(t) if t == table => vec![],
        t => vec![format!("table {} (want {table})", opt(t))],
    }
}

/// Mismatches of a present device that must be a bridge; `vrf`: the master it must have (an
/// L3 VNI's bridge). A bridge without a master is fixable (it is attached).
pub(super) fn check_bridge(l: &LinkView, vrf: Option<(u32, &str)>, links: &Links) -> Vec<String> {
    if l.kind.as_deref() != Some("bridge") {
        return vec![format!("kind {} (want bridge)", kind_str(l))];
    }
    match (vrf, l.master) {
        (Some((want, name)), Some(m)) if m != want => {
            vec![format!("enslaved to {} (want {name})", links.name_of(m))]
        }
        _ => vec![],
    }
}

/// Mismatches of a present device that must be the VXLAN port of `d` on bridge `br`.
pub(super) fn check_vxlan(l: &LinkView, d: &VniDev, br: Option<u32>, links: &Links) -> Vec<String> {
    if l.kind.as_deref() != Some("vxlan") {
        return vec![format!("kind {} (want vxlan)", kind_str(l))];
    }
    let mut out = Vec::new();
    if l.vxlan_id != Some(d.vni) {
        out.push(format!("vni {} (want {})", opt(l.vxlan_id), d.vni));
    }
    if l.vxlan_local != Some(d.local) {
        out.push(format!("local {} (want {})", opt(l.vxlan_local), d.local));
    }
    if l.vxlan_port != Some(VXLAN_PORT) {
        out.push(format!("dstport {} (want {VXLAN_PORT})", opt(l.vxlan_port)));
    }
    if l.vxlan_learning != Some(false) {
        out.push("learning on (want nolearning)".into());
    }
    if let (Some(m), Some(b)) = (l.master, br)
        && m != b
    {
        out.push(format!(
            "enslaved to {} (want {})",
            links.name_of(m),
            d.bridge
        ));
    }
    out
}

fn kind_str(l: &LinkView) -> &str {
    l.kind.as_deref().unwrap_or("none")
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "unset".into(), |v| v.to_string())
}

fn wrong(name: &str, what: Vec<String>) -> String {
    format!(
        "device {name} is present but wrong: {} (left as it is)",
        what.join(", ")
    )
}

/// Two VNIs that would share a device name or a VNI number.
pub(super) fn check_set(vnis: &[VniDev]) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen_vni = HashSet::new();
    let mut seen_dev: HashMap<&str, u32> = HashMap::new();
    for d in vnis {
        if !seen_vni.insert(d.vni) {
            out.push(format!("vni {} configured twice", d.vni));
        }
        let mut devs = vec![d.bridge.as_str(), d.vxlan.as_str()];
        if let VniDevKind::L3 { vrf, .. } = &d.kind {
            devs.push(vrf);
        }
        if d.bridge == d.vxlan {
            out.push(format!(
                "vni {}: bridge and vxlan both named {}",
                d.vni, d.bridge
            ));
        }
        for n in devs {
            if let Some(other) = seen_dev.insert(n, d.vni)
                && other != d.vni
            {
                out.push(format!("device {n} used by vni {other} and vni {}", d.vni));
            }
        }
    }
    out
}

/// The ifindexes of one configured VNI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Devs {
    pub bridge: u32,
    pub vxlan: u32,
    pub vrf: Option<u32>,
}

async fn index_of(handle: &Handle, name: &str) -> Result<u32, String> {
    view_of(handle, name).await.map(|l| l.index)
}

async fn view_of(handle: &Handle, name: &str) -> Result<LinkView, String> {
    let links = Links::dump(handle)
        .await
        .map_err(|e| format!("link dump: {e}"))?;
    links
        .get(name)
        .cloned()
        .ok_or_else(|| format!("device {name} absent right after it was created"))
}

/// `addr_assign_type` NET_ADDR_SET (include/linux/netdevice.h).
const NET_ADDR_SET: &str = "3";

/// Whether the address of `name` (ifindex `index`) is set, from sysfs; `None` when this
/// process's /sys does not show that device (see the module header).
fn address_is_set(name: &str, index: u32) -> Option<bool> {
    let dir = Path::new("/sys/class/net").join(name);
    let shown: u32 = std::fs::read_to_string(dir.join("ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if shown != index {
        return None;
    }
    let t = std::fs::read_to_string(dir.join("addr_assign_type")).ok()?;
    Some(t.trim() == NET_ADDR_SET)
}

/// Keep an L2 bridge's address whatever ports join it (see the module header). Only logged
/// when it cannot: the bridge forwards all the same.
async fn pin_address(handle: &Handle, l: &LinkView) {
    let Some(addr) = l.address else {
        return;
    };
    match address_is_set(&l.name, l.index) {
        Some(true) => {}
        Some(false) => {
            let m = LinkUnspec::new_with_index(l.index)
                .address(addr.0.to_vec())
                .build();
            if let Err(e) = set(handle, &l.name, "setting the address of", m).await {
                warn!(bridge = %l.name, "{e}: its address follows its ports");
            }
        }
        None => {
            warn!(
                bridge = %l.name,
                "cannot read its addr_assign_type from /sys (another network namespace?): its \
                 address is left to follow its ports, and a port joining with a lower MAC \
                 flushes the ARP/ND suppression entries on it"
            );
        }
    }
}

/// `EOPNOTSUPP`: the kernel does not know the link kind (module absent and not built in).
const EOPNOTSUPP: i32 = 95;

async fn add(handle: &Handle, name: &str, msg: LinkMessage) -> Result<u32, String> {
    add_nl(handle, msg)
        .await
        .map_err(|e| format!("creating {name}: {e}"))?;
    index_of(handle, name).await
}

async fn add_nl(handle: &Handle, msg: LinkMessage) -> Result<(), NlError> {
    handle
        .link()
        .add(msg)
        .execute()
        .await
        .map_err(NlError::from)
}

/// Why an L3 VNI runs without its VRF device.
pub(super) fn no_vrf_support(vrf: &str, table: u32, d: &VniDev, e: &NlError) -> String {
    format!(
        "creating {vrf}: this kernel has no vrf link type (CONFIG_NET_VRF): {e}; \
         {} and {} are set up without a VRF and routes are written to table {table}, \
         but nothing enslaves {} to it: traffic is not routed through that table",
        d.bridge, d.vxlan, d.bridge
    )
}

async fn set(handle: &Handle, name: &str, what: &str, msg: LinkMessage) -> Result<(), String> {
    handle
        .link()
        .set(msg)
        .execute()
        .await
        .map_err(|e| format!("{what} {name}: {}", NlError::from(e)))
}

/// Create or adopt the devices of `d`; with them, why an L3 VNI has no VRF device (a kernel
/// without VRF support).
pub(super) async fn setup(
    handle: &Handle,
    links: &Links,
    d: &VniDev,
) -> Result<(Devs, Option<String>), String> {
    let mut degraded = None;
    // L3: the VRF first, the bridge is enslaved to it.
    let vrf = match &d.kind {
        VniDevKind::L2 => None,
        VniDevKind::L3 { vrf, table } => match links.get(vrf) {
            Some(l) => {
                let bad = check_vrf(l, *table);
                if !bad.is_empty() {
                    return Err(wrong(vrf, bad));
                }
                if !l.up {
                    set(
                        handle,
                        vrf,
                        "bringing up",
                        LinkUnspec::new_with_index(l.index).up().build(),
                    )
                    .await?;
                }
                Some((l.index, vrf.as_str()))
            }
            None => match add_nl(handle, LinkVrf::new(vrf, *table).up().build()).await {
                Ok(()) => Some((index_of(handle, vrf).await?, vrf.as_str())),
                Err(e) if e.errno == EOPNOTSUPP => {
                    degraded = Some(no_vrf_support(vrf, *table, d, &e));
                    None
                }
                Err(e) => return Err(format!("creating {vrf}: {e}")),
            },
        },
    };

    let l2 = d.kind == VniDevKind::L2;
    let bridge = match links.get(&d.bridge) {
        Some(l) if l2 => {
            let bad = check_bridge(l, None, links);
            if !bad.is_empty() {
                return Err(wrong(&d.bridge, bad));
            }
            if !l.up {
                let m = LinkUnspec::new_with_index(l.index).up().build();
                set(handle, &d.bridge, "setting up", m).await?;
            }
            pin_address(handle, l).await;
            l.index
        }
        None if l2 => {
            add_nl(handle, LinkBridge::new(&d.bridge).up().build())
                .await
                .map_err(|e| format!("creating {}: {e}", d.bridge))?;
            let l = view_of(handle, &d.bridge).await?;
            pin_address(handle, &l).await;
            l.index
        }
        Some(l) => {
            let bad = check_bridge(l, vrf, links);
            if !bad.is_empty() {
                return Err(wrong(&d.bridge, bad));
            }
            let mut m = LinkUnspec::new_with_index(l.index).up();
            if let (Some((v, _)), None) = (vrf, l.master) {
                m = m.controller(v);
            }
            // an L3 VNI's bridge answers to the Router's MAC (settable without disturbing
            // its ports)
            let readdress = d.router_mac.filter(|r| l.address != Some(*r));
            if let Some(r) = readdress {
                m = m.address(r.0.to_vec());
            }
            if !l.up || (vrf.is_some() && l.master.is_none()) || readdress.is_some() {
                set(handle, &d.bridge, "setting up", m.build()).await?;
            }
            l.index
        }
        None => {
            let mut m = LinkBridge::new(&d.bridge).up();
            if let Some((v, _)) = vrf {
                m = m.controller(v);
            }
            if let Some(r) = d.router_mac {
                m = m.address(r.0.to_vec());
            }
            add(handle, &d.bridge, m.build()).await?
        }
    };

    let vxlan = match links.get(&d.vxlan) {
        Some(l) => {
            let bad = check_vxlan(l, d, Some(bridge), links);
            if !bad.is_empty() {
                return Err(wrong(&d.vxlan, bad));
            }
            if !l.up || l.master.is_none() {
                let m = LinkUnspec::new_with_index(l.index)
                    .controller(bridge)
                    .up()
                    .build();
                set(handle, &d.vxlan, "attaching", m).await?;
            }
            l.index
        }
        None => {
            let m = LinkVxlan::new(&d.vxlan, d.vni)
                .port(VXLAN_PORT)
                .learning(false);
            let m = match d.local {
                IpAddr::V4(a) => m.local(a),
                IpAddr::V6(a) => m.local6(a),
            };
            add(handle, &d.vxlan, m.controller(bridge).up().build()).await?
        }
    };

    // `bridge link set dev VXLAN learning off neigh_suppress on|off`
    let port = LinkBridgePort::new(vxlan)
        .learning(false)
        .neigh_suppress(d.neigh_suppress)
        .build();
    handle
        .link()
        .set_port(port)
        .execute()
        .await
        .map_err(|e| format!("bridge port flags of {}: {}", d.vxlan, NlError::from(e)))?;

    Ok((
        Devs {
            bridge,
            vxlan,
            vrf: vrf.map(|v| v.0),
        },
        degraded,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vx(name: &str, id: u32, local: &str, master: Option<u32>) -> LinkView {
        LinkView {
            index: 3,
            name: name.into(),
            kind: Some("vxlan".into()),
            up: true,
            master,
            vxlan_id: Some(id),
            vxlan_local: Some(local.parse().unwrap()),
            vxlan_port: Some(4789),
            vxlan_learning: Some(false),
            ..LinkView::default()
        }
    }

    fn links() -> Links {
        let br = LinkView {
            index: 2,
            name: "br100".into(),
            kind: Some("bridge".into()),
            ..LinkView::default()
        };
        let other = LinkView {
            index: 9,
            name: "br9".into(),
            kind: Some("bridge".into()),
            ..LinkView::default()
        };
        Links::new(vec![br, other])
    }

    #[test]
    fn a_correct_vxlan_is_adopted_and_a_wrong_one_is_named_with_every_mismatch() {
        let d = VniDev::l2(100, "10.255.0.1".parse().unwrap());
        let l = links();
        assert!(
            check_vxlan(&vx("vxlan100", 100, "10.255.0.1", Some(2)), &d, Some(2), &l).is_empty()
        );
        // not attached yet: fixable, not a mismatch
        assert!(check_vxlan(&vx("vxlan100", 100, "10.255.0.1", None), &d, Some(2), &l).is_empty());
        let mut bad = vx("vxlan100", 300, "10.255.0.9", Some(9));
        bad.vxlan_learning = Some(true);
        bad.vxlan_port = Some(8472);
        let m = check_vxlan(&bad, &d, Some(2), &l);
        assert_eq!(
            m,
            vec![
                "vni 300 (want 100)",
                "local 10.255.0.9 (want 10.255.0.1)",
                "dstport 8472 (want 4789)",
                "learning on (want nolearning)",
                "enslaved to br9 (want br100)",
            ]
        );
        assert!(wrong("vxlan100", m).starts_with("device vxlan100 is present but wrong: vni 300"));
        let mut veth = vx("vxlan100", 100, "10.255.0.1", None);
        veth.kind = Some("veth".into());
        assert_eq!(
            check_vxlan(&veth, &d, Some(2), &l),
            vec!["kind veth (want vxlan)"]
        );
    }

    #[test]
    fn bridges_and_vrfs_are_checked_for_kind_master_and_table() {
        let l = links();
        let br = l.get("br100").unwrap().clone();
        assert!(check_bridge(&br, None, &l).is_empty());
        assert!(check_bridge(&br, Some((7, "vrf1")), &l).is_empty());
        let mut owned = br.clone();
        owned.master = Some(9);
        assert_eq!(
            check_bridge(&owned, Some((7, "vrf1")), &l),
            vec!["enslaved to br9 (want vrf1)"]
        );
        let vrf = LinkView {
            kind: Some("vrf".into()),
            vrf_table: Some(1001),
            ..LinkView::default()
        };
        assert!(check_vrf(&vrf, 1001).is_empty());
        assert_eq!(check_vrf(&vrf, 1002), vec!["table 1001 (want 1002)"]);
        assert_eq!(check_vrf(&br, 1), vec!["kind bridge (want vrf)"]);
    }

    #[test]
    fn a_vni_set_sharing_devices_is_refused() {
        let a = VniDev::l2(100, "10.0.0.1".parse().unwrap());
        let mut b = VniDev::l2(200, "10.0.0.1".parse().unwrap());
        assert!(check_set(&[a.clone(), b.clone()]).is_empty());
        b.bridge = "br100".into();
        assert_eq!(
            check_set(&[a.clone(), b]),
            vec!["device br100 used by vni 100 and vni 200"]
        );
        assert_eq!(check_set(&[a.clone(), a]), vec!["vni 100 configured twice"]);
    }
}
