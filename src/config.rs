//! Typed configuration and its validation: the TOML file of INTERFACE.md "Config", overridden by
//! `VMMI_SECTION__KEY` environment variables, parsed into `*Cfg` structs and checked for every
//! rule a daemon would otherwise discover at run time. Every error names its key path
//! (`neighbor[1].hold_time`) and a reason.
//!
//! Owns: the schema (key names, defaults, accepted spellings), `DEFAULT_TOML`, loading (the one
//! file plus the environment, merged by the `config` crate) and `Config::validate` (its rules
//! are in `config/validate.rs`).
//! Must not: do I/O beyond reading that file and the environment — no DNS resolution, no socket
//! binds, no interface lookups (the runtime does those and reports its own errors); derive
//! RDs/RTs or make any protocol decision (`evpn/`, `bgp/`, `lisp/` do). The `config` crate's
//! types never leave this module.
//!
//! Loading: the file is read, checked for TOML syntax (`toml`, for a line and column), merged
//! with the environment by the `config` crate, deserialized (`deny_unknown_fields`, defaults for
//! every key but the few validation insists on), then `validate` collects all rule violations.
//! The `config` crate coerces freely (a float rounds into an integer, `true` becomes 1); integer
//! keys are therefore read by a strict visitor that rejects floats and booleans. Booleans keep
//! the crate's spellings (`true`/`false`, also `yes`/`no`, `on`/`off`, `1`/`0`).
//!
//! Environment: `VMMI_GLOBAL__ASN=65010` sets `global.asn`; `__` separates path segments, a
//! numeric segment indexes an array (`VMMI_NEIGHBOR__0__HOLD_TIME=30` sets `neighbor[0].hold_time`;
//! an index past the end appends an entry built from defaults). Numbers and booleans parse from
//! the string. Lists (`listen`, `families`, `eids`, ...) cannot be set from the environment:
//! a value for one is a type error naming the key. Variables without `__` after `VMMI_` (for
//! example `VMMI_LISP_KEY`, read by `vmmi decode`) are not config overrides and are ignored.
//! The crate's `try_parsing` is *not* enabled: it turns every numeric-looking value into a number
//! first, which rewrites strings (`md5_password = "0123"` would become `"123"`, `"nan"` would
//! become `"NaN"`); numeric keys parse their strings without it.

use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::str::FromStr;

use ipnet::IpNet;
use serde::Deserialize;
use serde::de::{self, Deserializer, Unexpected, Visitor};

use crate::wire::MacAddr;
use crate::wire::bgp::Family;
use crate::wire::bgp::extcomm::RouteTarget;
use crate::wire::bgp::rd::RouteDistinguisher;

mod reload;
mod validate;

pub use reload::{ReloadPlan, reload_plan};

/// The embedded default used by `vmmi run` without `--config` (and logged at start): one
/// speaker on loopback with a memory dataplane, BGP passive on 1179, LISP Map-Server and
/// Map-Resolver on 4342, the API on 50179.
pub const DEFAULT_TOML: &str = r#"# vmmi embedded default: one speaker on loopback, no neighbors
[global]
asn = 65000
router_id = "127.0.0.1"
listen = ["127.0.0.1:1179"]
vtep = "127.0.0.1"

[lisp]
roles = ["map-server", "map-resolver"]
listen = "127.0.0.1:4342"

[dataplane]
kind = "memory"

[api]
listen = "127.0.0.1:50179"
"#;

/// One configuration problem: the key path (`neighbor[1].remote_asn`; empty for a problem with
/// the whole file, such as a TOML syntax error) and why. Displays as `key: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
    /// Where the offending value came from: the file path, or the environment variable
    /// (`VMMI_GLOBAL__ASN`, also appended to `reason`); `None` for a string or the default.
    pub origin: Option<String>,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
            origin: None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.key, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The whole configuration. Every section may be omitted; validation then asks for the keys
/// that have no sensible default (`global.asn`, `global.router_id`, a neighbor's `address` and
/// `remote_asn`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub global: GlobalCfg,
    pub neighbor: Vec<NeighborCfg>,
    pub vni: Vec<VniCfg>,
    pub mobility: MobilityCfg,
    pub lisp: LispCfg,
    pub dataplane: DataplaneCfg,
    pub api: ApiCfg,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalCfg {
    #[serde(deserialize_with = "int")]
    pub asn: u32,
    #[serde(deserialize_with = "text")]
    pub router_id: Ipv4Addr,
    /// BGP listeners; default `["0.0.0.0:179"]`, empty = no listener (outbound sessions only).
    #[serde(deserialize_with = "text_vec")]
    pub listen: Vec<SocketAddr>,
    /// Local VTEP / LISP RLOC address; when unset (or unspecified) it is `router_id`.
    #[serde(deserialize_with = "text")]
    pub vtep: IpAddr,
    /// Route-reflector CLUSTER_ID (RFC 4456 §7); `None` = the router id.
    #[serde(deserialize_with = "text_opt")]
    pub cluster_id: Option<Ipv4Addr>,
    /// Graceful-restart Restart Time advertised to peers, seconds (RFC 4724 §3). FRR: 120.
    #[serde(deserialize_with = "int")]
    pub graceful_restart_time: u16,
    /// How long a restarting peer's routes are kept as stale, seconds. FRR: 360.
    #[serde(deserialize_with = "int")]
    pub stale_routes_time: u16,
}

impl Default for GlobalCfg {
    fn default() -> Self {
        GlobalCfg {
            asn: 0,
            router_id: Ipv4Addr::UNSPECIFIED,
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 179))],
            vtep: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            cluster_id: None,
            graceful_restart_time: 120,
            stale_routes_time: 360,
        }
    }
}

impl GlobalCfg {
    /// The CLUSTER_ID this speaker uses when reflecting: `cluster_id`, else the router id.
    pub fn effective_cluster_id(&self) -> Ipv4Addr {
        self.cluster_id.unwrap_or(self.router_id)
    }
}

/// A BGP neighbor (`[[neighbor]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NeighborCfg {
    /// An IP address or a DNS host name (the runtime resolves and re-resolves it).
    pub address: PeerAddr,
    #[serde(deserialize_with = "int")]
    pub remote_asn: u32,
    /// Remote TCP port (default 179).
    #[serde(deserialize_with = "int")]
    pub port: u16,
    pub families: Vec<FamilyCfg>,
    /// Never connect; wait for the peer.
    pub passive: bool,
    /// Proposed Hold Time, seconds: 0 (no keepalives) or ≥ 3 (RFC 4271 §4.2). Default 90.
    #[serde(deserialize_with = "int")]
    pub hold_time: u16,
    /// KEEPALIVE interval, seconds; `None` = one third of the negotiated hold time.
    #[serde(deserialize_with = "opt_int")]
    pub keepalive: Option<u16>,
    /// ConnectRetryTimer, seconds. Default 120, FRR's `BGP_DEFAULT_CONNECT_RETRY` (RFC 4271 §10
    /// suggests the same 120).
    #[serde(deserialize_with = "int")]
    pub connect_retry: u16,
    /// TCP MD5 signature key (RFC 2385), at most 80 octets (Linux `TCP_MD5SIG_MAXKEYLEN`).
    pub md5_password: Option<String>,
    /// GTSM (RFC 5082): send with TTL 255, accept only TTL 255 (a directly connected peer).
    pub ttl_security: bool,
    /// eBGP only: TTL for a peer that is not directly connected.
    #[serde(deserialize_with = "opt_int")]
    pub ebgp_multihop: Option<u8>,
    /// Source address of outgoing connections.
    #[serde(deserialize_with = "text_opt")]
    pub local_address: Option<IpAddr>,
    /// iBGP only: reflect routes to this peer (RFC 4456).
    pub route_reflector_client: bool,
    /// Largest number of prefixes accepted from this peer; `None` = no limit.
    #[serde(deserialize_with = "opt_int")]
    pub max_prefix: Option<u32>,
    pub max_prefix_action: MaxPrefixAction,
    /// After a max-prefix teardown, re-establish after this many seconds; 0 = stay down.
    #[serde(deserialize_with = "int")]
    pub max_prefix_restart_secs: u32,
    /// Advertise the Graceful Restart capability (RFC 4724). Default true.
    pub graceful_restart: bool,
    /// ADD-PATH (RFC 7911) for the configured families.
    pub add_path: AddPathCfg,
    /// DelayOpenTimer, seconds (RFC 4271 §8.1.1); `None` = send OPEN at once.
    #[serde(deserialize_with = "opt_int")]
    pub delay_open: Option<u16>,
    pub description: Option<String>,
}

impl Default for NeighborCfg {
    fn default() -> Self {
        NeighborCfg {
            address: PeerAddr::Name(String::new()),
            remote_asn: 0,
            port: 179,
            families: vec![FamilyCfg::L2vpnEvpn],
            passive: false,
            hold_time: 90,
            keepalive: None,
            connect_retry: 120,
            md5_password: None,
            ttl_security: false,
            ebgp_multihop: None,
            local_address: None,
            route_reflector_client: false,
            max_prefix: None,
            max_prefix_action: MaxPrefixAction::Teardown,
            max_prefix_restart_secs: 0,
            graceful_restart: true,
            add_path: AddPathCfg::None,
            delay_open: None,
            description: None,
        }
    }
}

impl NeighborCfg {
    /// eBGP when the remote AS differs from ours.
    pub fn is_ebgp(&self, local_asn: u32) -> bool {
        self.remote_asn != local_asn
    }

    /// The configured KEEPALIVE interval, or one third of `hold_time` (RFC 4271 §10).
    pub fn keepalive_secs(&self) -> u16 {
        self.keepalive.unwrap_or(self.hold_time / 3)
    }
}

/// A neighbor or map-server address: an IP literal or a DNS host name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(from = "String")]
pub enum PeerAddr {
    Ip(IpAddr),
    Name(String),
}

impl From<String> for PeerAddr {
    fn from(s: String) -> Self {
        match s.trim().parse() {
            Ok(ip) => PeerAddr::Ip(ip),
            Err(_) => PeerAddr::Name(s),
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Ip(ip) => ip.fmt(f),
            PeerAddr::Name(n) => f.write_str(n),
        }
    }
}

/// An enum written as one of a fixed set of strings.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
        #[serde(try_from = "String")]
        pub enum $name { $($(#[$vm])* $var),+ }

        impl $name {
            /// Every accepted spelling, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $text),+ }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                match s.as_str() {
                    $($text => Ok($name::$var),)+
                    _ => Err(format!("unknown value {s:?}; expected {}", quoted(Self::NAMES))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

text_enum!(
    /// An address family a session negotiates (RFC 4760).
    FamilyCfg {
        L2vpnEvpn = "l2vpn-evpn",
        Ipv4Unicast = "ipv4-unicast",
        Ipv6Unicast = "ipv6-unicast",
    }
);
text_enum!(
    /// What exceeding `max_prefix` does.
    #[derive(Default)]
    MaxPrefixAction {
        #[default]
        /// NOTIFICATION Cease / Maximum Number of Prefixes Reached (RFC 4486 §4).
        Teardown = "teardown",
        /// Log and keep the session.
        Warning = "warning",
    }
);
text_enum!(
    /// ADD-PATH Send/Receive mode (RFC 7911 §4).
    #[derive(Default)]
    AddPathCfg { #[default] None = "none", Receive = "receive", Send = "send", Both = "both" }
);
text_enum!(
    /// `l2`: a MAC-VRF; `l3`: an IP-VRF for symmetric IRB and type-5 routes (RFC 9135, 9136).
    #[derive(Default)]
    VniKind { #[default] L2 = "l2", L3 = "l3" }
);
text_enum!(
    LispRole { MapServer = "map-server", MapResolver = "map-resolver", Xtr = "xtr" }
);
text_enum!(
    /// Map-Register/Map-Notify authentication (RFC 9301 §5.6). Default `hmac-sha256-128`.
    #[derive(Default)]
    LispAuth {
        HmacSha1_96 = "hmac-sha1-96",
        #[default]
        HmacSha256_128 = "hmac-sha256-128",
        HmacSha256_128Hkdf = "hmac-sha256-128-hkdf",
    }
);
text_enum!(
    /// Default `memory`: `linux` changes kernel state and must be chosen explicitly.
    #[derive(Default)]
    DataplaneKind { Linux = "linux", #[default] Memory = "memory", None = "none" }
);

impl From<FamilyCfg> for Family {
    fn from(f: FamilyCfg) -> Family {
        match f {
            FamilyCfg::L2vpnEvpn => Family::L2VPN_EVPN,
            FamilyCfg::Ipv4Unicast => Family::IPV4_UNICAST,
            FamilyCfg::Ipv6Unicast => Family::IPV6_UNICAST,
        }
    }
}

/// `"auto"` or an explicit value, kept as written (validation checks its syntax).
macro_rules! auto_or_set {
    ($(#[$m:meta])* $name:ident => $wire:ty) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Deserialize)]
        #[serde(from = "String")]
        pub enum $name {
            #[default]
            Auto,
            Set(String),
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                if s.trim().eq_ignore_ascii_case("auto") { $name::Auto } else { $name::Set(s) }
            }
        }

        impl $name {
            /// The explicit value (`None` for `Auto`, or a value `validate` rejects).
            pub fn explicit(&self) -> Option<$wire> {
                match self {
                    $name::Auto => None,
                    $name::Set(s) => s.trim().parse().ok(),
                }
            }
        }
    };
}

auto_or_set!(
    /// Route Distinguisher: `auto` (derived by `evpn/`, RFC 7432 §7.9) or `ASN:NN` / `A.B.C.D:NN`.
    RdCfg => RouteDistinguisher
);
auto_or_set!(
    /// Route Target: `auto` (ASN:VNI, RFC 8365 §5.1.2.1) or `ASN:NN` / `A.B.C.D:NN`.
    RtCfg => RouteTarget
);

/// A VNI (`[[vni]]`): a MAC-VRF (`l2`) or an IP-VRF (`l3`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VniCfg {
    #[serde(deserialize_with = "int")]
    pub vni: u32,
    pub kind: VniKind,
    pub rd: RdCfg,
    pub import_rt: Vec<RtCfg>,
    pub export_rt: Vec<RtCfg>,
    /// Linux dataplane bridge; `None` = the dataplane's own name for it.
    pub bridge: Option<String>,
    /// Linux dataplane VXLAN device; `None` = the dataplane's own name for it.
    pub vxlan: Option<String>,
    /// l2 only: anycast gateway address and subnet (default-gateway community, RFC 7432 §10.1).
    #[serde(deserialize_with = "text_opt")]
    pub gateway_ip: Option<IpNet>,
    /// l2 only: the l3 VNI (IP-VRF) this MAC-VRF routes in.
    #[serde(deserialize_with = "opt_int")]
    pub l3_vni: Option<u32>,
    /// l3 only: prefixes to advertise as type-5 routes (RFC 9136).
    #[serde(deserialize_with = "text_vec")]
    pub prefixes: Vec<IpNet>,
    /// l2 only: the anycast gateway MAC (the same on every VTEP); default `02:76:6d` + VNI.
    #[serde(deserialize_with = "text_opt")]
    pub gateway_mac: Option<MacAddr>,
    /// l3 only: our Router's MAC (RFC 9135 §8.1); default `02:00` + router ID.
    #[serde(deserialize_with = "text_opt")]
    pub router_mac: Option<MacAddr>,
    /// l3 only, Linux dataplane: the VRF device; default `vrf<vni>`.
    pub vrf: Option<String>,
    /// l2 only, Linux dataplane: ARP/ND suppression (`neigh_suppress` on the VXLAN bridge
    /// port): the bridge answers ARP/ND for remote MAC+IP routes from the neighbour entries
    /// vmmi writes on it (and the bridge-side FDB entry of the MAC) instead of flooding the
    /// requests over the fabric; a request for an address no route gives is flooded as
    /// before. Default off. A device setting: a reload keeps it until restart.
    pub arp_nd_suppress: bool,
    /// l3 only, Linux dataplane: the VRF's routing table, where the IP-VRF's routes go;
    /// default the VNI.
    #[serde(deserialize_with = "opt_int")]
    pub table: Option<u32>,
}

impl VniCfg {
    /// The routing table of an l3 VNI (`table`, default the VNI).
    pub fn table_id(&self) -> u32 {
        self.table.unwrap_or(self.vni)
    }
}

impl Default for VniCfg {
    fn default() -> Self {
        VniCfg {
            vni: 0,
            kind: VniKind::L2,
            rd: RdCfg::Auto,
            import_rt: vec![RtCfg::Auto],
            export_rt: vec![RtCfg::Auto],
            bridge: None,
            vxlan: None,
            gateway_ip: None,
            l3_vni: None,
            prefixes: Vec::new(),
            gateway_mac: None,
            router_mac: None,
            vrf: None,
            table: None,
            arp_nd_suppress: false,
        }
    }
}

/// The default `[mobility] state_file`.
pub const DEFAULT_STATE_FILE: &str = "/var/lib/vmmi/mobility.json";

/// MAC mobility and duplicate-address detection (RFC 7432 §15.1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MobilityCfg {
    /// Moves within `dad_window_secs` that declare a duplicate (RFC 7432 §15.1 "M"; default 5).
    #[serde(deserialize_with = "int")]
    pub dad_max_moves: u32,
    /// The window ("N"; default 180 s).
    #[serde(deserialize_with = "int")]
    pub dad_window_secs: u32,
    /// How long a duplicate stays frozen; 0 = until `vmmi dad clear`.
    #[serde(deserialize_with = "int")]
    pub dad_freeze_secs: u32,
    /// Where MAC Mobility sequence numbers are kept across restarts (RFC 7432 §15.1: a restart
    /// must never advertise a lower sequence than before); `""` = not kept.
    pub state_file: String,
}

impl Default for MobilityCfg {
    fn default() -> Self {
        MobilityCfg {
            dad_max_moves: 5,
            dad_window_secs: 180,
            dad_freeze_secs: 0,
            state_file: DEFAULT_STATE_FILE.to_string(),
        }
    }
}

/// The LISP control plane. No roles (the default) = LISP off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LispCfg {
    pub roles: Vec<LispRole>,
    /// UDP control port address (default `0.0.0.0:4342`).
    #[serde(deserialize_with = "text")]
    pub listen: SocketAddr,
    /// Publish/subscribe (RFC 9437). Default true.
    pub pubsub: bool,
    /// Solicit-Map-Request after a move (RFC 9301 §6.6.2). Default true.
    pub smr: bool,
    /// Map-server role: the sites allowed to register.
    pub site: Vec<LispSiteCfg>,
    /// xTR role: where local EIDs are registered.
    pub map_server: Vec<LispMapServerCfg>,
}

impl Default for LispCfg {
    fn default() -> Self {
        LispCfg {
            roles: Vec::new(),
            listen: SocketAddr::from(([0, 0, 0, 0], 4342)),
            pubsub: true,
            smr: true,
            site: Vec::new(),
            map_server: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LispSiteCfg {
    pub name: String,
    /// Pre-shared authentication key.
    pub key: String,
    pub auth: LispAuth,
    /// `iid:N PREFIX`, `iid:N mac:any` or `iid:N mac:MAC`; see `parse_eid`.
    pub eids: Vec<String>,
    /// Accept the pre-RFC 9301 Key ID numbering some xTRs still send.
    pub legacy_key_id: bool,
    /// Accept full-length (untruncated) HMAC values in the authentication field.
    pub untruncated_auth: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LispMapServerCfg {
    pub address: PeerAddr,
    pub key: String,
    pub auth: LispAuth,
}

impl Default for LispMapServerCfg {
    fn default() -> Self {
        LispMapServerCfg {
            address: PeerAddr::Name(String::new()),
            key: String::new(),
            auth: LispAuth::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataplaneCfg {
    pub kind: DataplaneKind,
}

/// The HTTP/JSON management API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiCfg {
    /// Default `127.0.0.1:50179` (where the CLI looks); `"none"` disables the API.
    #[serde(deserialize_with = "api_listen")]
    pub listen: Option<SocketAddr>,
}

impl Default for ApiCfg {
    fn default() -> Self {
        ApiCfg {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 50179))),
        }
    }
}

/// A parsed LISP site EID (`LispSiteCfg::eids`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EidCfg {
    Prefix { iid: u32, prefix: IpNet },
    MacAny { iid: u32 },
    Mac { iid: u32, mac: MacAddr },
}

/// Parses `iid:N PREFIX`, `iid:N mac:any` or `iid:N mac:MAC`. The Instance ID must fit the
/// 24 bits a LISP data header carries (RFC 9300 §5.3), like the VNI it maps to; a prefix must
/// have no host bits set.
pub fn parse_eid(s: &str) -> Result<EidCfg, String> {
    let mut parts = s.split_whitespace();
    let (Some(iid), Some(eid), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "{s:?}: expected \"iid:N PREFIX\", \"iid:N mac:any\" or \"iid:N mac:MAC\""
        ));
    };
    let iid = iid
        .strip_prefix("iid:")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n <= 0xFF_FFFF)
        .ok_or_else(|| format!("{s:?}: instance id must be iid:N with N in 0..=16777215"))?;
    if let Some(mac) = eid.strip_prefix("mac:") {
        if mac == "any" {
            return Ok(EidCfg::MacAny { iid });
        }
        return mac
            .parse()
            .map(|mac| EidCfg::Mac { iid, mac })
            .map_err(|e| format!("{s:?}: {e}"));
    }
    let prefix: IpNet = eid
        .parse()
        .map_err(|_| format!("{s:?}: {eid:?} is not a prefix (A.B.C.D/N, X:X::X/N) or mac:..."))?;
    canonical(prefix).map_err(|e| format!("{s:?}: {e}"))?;
    Ok(EidCfg::Prefix { iid, prefix })
}

fn canonical(p: IpNet) -> Result<(), String> {
    if p.trunc() == p {
        Ok(())
    } else {
        Err(format!(
            "{p} has host bits set (did you mean {}?)",
            p.trunc()
        ))
    }
}

// ---- strict field readers -------------------------------------------------------------------

/// Integer keys: accepts integers and decimal strings (the environment), rejects floats and
/// booleans, and names the range when a value does not fit.
trait Int: TryFrom<u64> {
    const MAX: u64;
}
impl Int for u8 {
    const MAX: u64 = u8::MAX as u64;
}
impl Int for u16 {
    const MAX: u64 = u16::MAX as u64;
}
impl Int for u32 {
    const MAX: u64 = u32::MAX as u64;
}

struct IntVisitor<T>(PhantomData<T>);

impl<T: Int> Visitor<'_> for IntVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an integer in 0..={}", T::MAX)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format!("{v} is out of range (0..={})", T::MAX)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        match u64::try_from(v) {
            Ok(u) => self.visit_u64(u),
            Err(_) => Err(E::custom(format!("{v} is out of range (0..={})", T::MAX))),
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        match s.trim().parse::<i64>() {
            Ok(v) => self.visit_i64(v),
            Err(_) => Err(E::invalid_type(Unexpected::Str(s), &self)),
        }
    }
}

fn int<'de, D: Deserializer<'de>, T: Int>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(IntVisitor(PhantomData))
}

fn opt_int<'de, D: Deserializer<'de>, T: Int>(d: D) -> Result<Option<T>, D::Error> {
    int(d).map(Some)
}

/// A value parsed from its text form, with the text in the error.
struct FromText<T>(T);

impl<'de, T: FromStr> Deserialize<'de> for FromText<T>
where
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.trim()
            .parse()
            .map(FromText)
            .map_err(|e| de::Error::custom(format!("{s:?}: {e}")))
    }
}

fn text<'de, D: Deserializer<'de>, T: FromStr>(d: D) -> Result<T, D::Error>
where
    T::Err: fmt::Display,
{
    FromText::deserialize(d).map(|t| t.0)
}

fn text_opt<'de, D: Deserializer<'de>, T: FromStr>(d: D) -> Result<Option<T>, D::Error>
where
    T::Err: fmt::Display,
{
    text(d).map(Some)
}

fn text_vec<'de, D: Deserializer<'de>, T: FromStr>(d: D) -> Result<Vec<T>, D::Error>
where
    T::Err: fmt::Display,
{
    Vec::<FromText<T>>::deserialize(d).map(|v| v.into_iter().map(|t| t.0).collect())
}

fn api_listen<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    s.trim()
        .parse()
        .map(Some)
        .map_err(|e| de::Error::custom(format!("{s:?}: {e} (or \"none\" to disable the API)")))
}

// ---- loading --------------------------------------------------------------------------------

impl Config {
    /// Loads `path` (or `DEFAULT_TOML` when `None`), applies `VMMI_*` environment overrides and
    /// validates. Every problem found is returned; parse errors stop before validation.
    pub fn load(path: Option<&Path>) -> Result<Config, Vec<ConfigError>> {
        let env = std::env::vars_os().map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        });
        Self::load_with_env(path, env)
    }

    /// `load` with the environment given explicitly (tests, or a caller that filtered it).
    pub fn load_with_env<I, K, V>(path: Option<&Path>, env: I) -> Result<Config, Vec<ConfigError>>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let file = path.map(|p| p.display().to_string());
        let env = EnvOverrides::new(env);
        let text = match path {
            None => DEFAULT_TOML.to_string(),
            Some(p) => std::fs::read_to_string(p).map_err(|e| {
                let mut err = ConfigError::new("", format!("cannot read: {e}"));
                err.origin.clone_from(&file);
                vec![err]
            })?,
        };
        let result = parse(&text, &env).and_then(|c| {
            let errs = c.validate();
            if errs.is_empty() { Ok(c) } else { Err(errs) }
        });
        result.map_err(|errs| env.attribute(errs, file.as_deref()))
    }

    /// Parses and validates TOML text; no environment.
    pub fn from_toml_str(s: &str) -> Result<Config, Vec<ConfigError>> {
        let c = parse(s, &EnvOverrides::default())?;
        let errs = c.validate();
        if errs.is_empty() { Ok(c) } else { Err(errs) }
    }

    /// `DEFAULT_TOML`, parsed (no environment; `load(None)` applies it).
    pub fn embedded_default() -> Config {
        // A constant, checked by tests/config.rs; not user input.
        parse(DEFAULT_TOML, &EnvOverrides::default()).expect("DEFAULT_TOML parses")
    }
}

/// TOML syntax check, then merge with the environment and deserialize.
fn parse(text: &str, env: &EnvOverrides) -> Result<Config, Vec<ConfigError>> {
    if let Err(e) = toml::from_str::<toml::Table>(text) {
        return Err(vec![syntax_error(text, &e)]);
    }
    let mut cfg: Config = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(env.source())
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| vec![crate_error(e)])?;
    if cfg.global.vtep.is_unspecified() {
        cfg.global.vtep = IpAddr::V4(cfg.global.router_id);
    }
    Ok(cfg)
}

/// `TOML syntax error at line L, column C (`text`): message`, the text quoted when the error
/// spans a short piece of one line (a duplicate key, say).
fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let at = e
        .span()
        .and_then(|s| Some((text.get(..s.start)?, text.get(s)?)))
        .map(|(before, spanned)| {
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let quote = match spanned.trim() {
                t if t.is_empty() || t.contains('\n') || t.len() > 40 => String::new(),
                t => format!(" (`{t}`)"),
            };
            format!(" at line {line}, column {col}{quote}")
        })
        .unwrap_or_default();
    ConfigError::new("", format!("TOML syntax error{at}: {}", e.message().trim()))
}

/// Maps the `config` crate's error (one per load: serde stops at the first) to a key path and a
/// reason. Its key paths lack the dot after an index (`neighbor[0]port`); `fix_key` adds it.
fn crate_error(e: config::ConfigError) -> ConfigError {
    match e {
        config::ConfigError::Type {
            unexpected,
            expected,
            key,
            ..
        } => ConfigError::new(
            fix_key(key.as_deref().unwrap_or("")),
            format!("invalid type: {unexpected}, expected {expected}"),
        ),
        config::ConfigError::At { error, key, .. } => {
            let msg = match *error {
                config::ConfigError::Message(m) => m,
                other => other.to_string(),
            };
            keyed_message(fix_key(key.as_deref().unwrap_or("")), msg)
        }
        config::ConfigError::Message(m) => keyed_message(String::new(), m),
        config::ConfigError::NotFound(k) => ConfigError::new(fix_key(&k), "missing required key"),
        other => ConfigError::new("", other.to_string()),
    }
}

/// serde's "unknown field `x`, expected ..." becomes an error on `parent.x`, with a suggestion
/// when `x` differs from a known key only in case, `-` or `_` (`holdtime`, `Hold-Time`).
fn keyed_message(key: String, msg: String) -> ConfigError {
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once('`')
    {
        let key = if key.is_empty() {
            field.to_string()
        } else {
            format!("{key}.{field}")
        };
        let norm = |s: &str| s.replace(['_', '-'], "").to_ascii_lowercase();
        let known = expected.split('`').skip(1).step_by(2);
        let reason = match known.clone().find(|k| norm(k) == norm(field)) {
            Some(k) => format!("unknown key; did you mean `{k}`?"),
            None => format!("unknown key ({})", expected.trim_start_matches(", ")),
        };
        return ConfigError::new(key, reason);
    }
    // serde names the Rust type ("expected struct GlobalCfg"); the file has a table.
    match msg.split_once(", expected struct ") {
        Some((head, _)) => ConfigError::new(key, format!("{head}, expected a table")),
        None => ConfigError::new(key, msg),
    }
}

fn fix_key(k: &str) -> String {
    let mut out = String::with_capacity(k.len() + 4);
    let mut prev = ' ';
    for c in k.chars() {
        if prev == ']' && c != '[' && c != '.' {
            out.push('.');
        }
        out.push(c);
        prev = c;
    }
    out
}

/// The `VMMI_SECTION__KEY` variables that are config overrides, with their key paths.
#[derive(Default)]
struct EnvOverrides {
    /// (key path as the `config` crate sees it, variable name, value)
    vars: Vec<(String, String, String)>,
}

impl EnvOverrides {
    fn new<I, K, V>(env: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut vars = Vec::new();
        for (k, v) in env {
            let (name, value) = (k.into(), v.into());
            let Some(rest) = name.strip_prefix("VMMI_") else {
                continue;
            };
            if !rest.contains("__") {
                continue;
            }
            // Numeric segments index the array named by the previous one: A__0__B -> a[0].b
            let mut path = String::new();
            for seg in rest.split("__").map(str::to_ascii_lowercase) {
                if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) && !path.is_empty() {
                    path.push_str(&format!("[{seg}]"));
                } else {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&seg);
                }
            }
            vars.push((path, name, value));
        }
        EnvOverrides { vars }
    }

    /// The `config` source: the variables renamed so that the crate's own prefix and separator
    /// handling turns `VMMI_NEIGHBOR[0]__PORT` into `neighbor[0].port`.
    fn source(&self) -> config::Environment {
        let vars = self
            .vars
            .iter()
            .map(|(path, _, value)| (format!("VMMI_{}", path.replace('.', "__")), value.clone()));
        config::Environment::with_prefix("VMMI")
            .prefix_separator("_")
            .separator("__")
            .source(Some(vars.collect()))
    }

    /// Sets each error's origin: the variable that set the key (also named in the reason), or
    /// the file.
    fn attribute(&self, mut errs: Vec<ConfigError>, file: Option<&str>) -> Vec<ConfigError> {
        for e in &mut errs {
            let var = self.vars.iter().find(|(path, _, _)| {
                e.key == *path
                    || e.key
                        .strip_prefix(path.as_str())
                        .is_some_and(|r| r.starts_with(['.', '[']))
            });
            match var {
                Some((_, name, _)) => {
                    e.reason.push_str(&format!(" (set by {name})"));
                    e.origin = Some(name.clone());
                }
                None => e.origin = file.map(str::to_string),
            }
        }
        errs
    }
}

impl Config {
    /// Every cross-field rule (`config/validate.rs`), in file order. Empty = valid.
    pub fn validate(&self) -> Vec<ConfigError> {
        validate::validate(self)
    }

    /// Configuration that has no effect as written (a section for a role that is not
    /// configured): the daemon runs, `vmmi check` and `vmmi run` report each.
    pub fn warnings(&self) -> Vec<ConfigError> {
        validate::warnings(self)
    }
}
