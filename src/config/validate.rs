//! The cross-field rules of `Config::validate`: each finding names the exact key path.
//!
//! Owns: the rules, with the RFC (or FRR / Linux behaviour) behind each. Must not: read files,
//! resolve names or consult the running system; it sees only the parsed `Config`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr};

use super::{Config, ConfigError, EidCfg, LispRole, PeerAddr, RdCfg, RtCfg, VniKind};
use super::{canonical, parse_eid};

#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    fn add(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.0.push(ConfigError::new(key, reason));
    }
}

/// `fail!(errors, key => "format", args..)`: one finding (a macro so each rule stays a line).
macro_rules! fail {
    ($e:expr, $key:expr => $($msg:tt)+) => { $e.add($key, format!($($msg)+)) };
}

/// The first index a value was seen at, on a repeat (the map keeps the first).
fn first_seen<K: Hash + Eq, V: Clone>(m: &mut HashMap<K, V>, k: K, v: V) -> Option<V> {
    match m.entry(k) {
        Entry::Occupied(o) => Some(o.get().clone()),
        Entry::Vacant(slot) => {
            slot.insert(v);
            None
        }
    }
}

/// Findings for repeated elements of a list: `(index, index of its first occurrence)`.
fn repeats<T: PartialEq>(items: &[T]) -> impl Iterator<Item = (usize, usize)> + '_ {
    (0..items.len()).filter_map(move |k| {
        items[..k]
            .iter()
            .position(|x| *x == items[k])
            .map(|j| (k, j))
    })
}

/// Findings that do not stop the daemon: configuration that has no effect as written.
/// `vmmi check` prints them as warnings, `vmmi run` logs them at start.
pub(super) fn warnings(c: &Config) -> Vec<ConfigError> {
    let mut e = Errors::default();
    let l = &c.lisp;
    if !l.map_server.is_empty() && !l.roles.contains(&LispRole::Xtr) {
        fail!(e, "lisp.map_server" =>
            "unused: map servers are where the \"xtr\" role registers, and lisp.roles has no \"xtr\"");
    }
    e.0
}

pub(super) fn validate(c: &Config) -> Vec<ConfigError> {
    let mut e = Errors::default();
    global(c, &mut e);
    neighbors(c, &mut e);
    vnis(c, &mut e);
    let m = &c.mobility;
    if m.dad_max_moves < 2 {
        fail!(e, "mobility.dad_max_moves" =>
            "{} is too small: at least 2 (RFC 7432 §15.1, M moves in N seconds)",
            m.dad_max_moves);
    }
    if m.dad_window_secs == 0 {
        fail!(e, "mobility.dad_window_secs" => "must be at least 1 second");
    }
    lisp(c, &mut e);
    if let Some(api) = c.api.listen
        && let Some(k) = c.global.listen.iter().position(|l| *l == api)
    {
        fail!(e, "api.listen" => "same TCP address as global.listen[{k}] (BGP)");
    }
    e.0
}

fn global(c: &Config, e: &mut Errors) {
    let g = &c.global;
    asn(e, "global.asn", g.asn);
    if g.router_id.is_unspecified() {
        fail!(e, "global.router_id" => "required: a non-zero BGP Identifier (RFC 6286 §2.1)");
    }
    for (k, j) in repeats(&g.listen) {
        fail!(e, format!("global.listen[{k}]") => "duplicate of listen[{j}]");
    }
    // Unspecified only when router_id is too (parse fills it in); reported there.
    if !is_unicast(g.vtep) && !g.vtep.is_unspecified() {
        fail!(e, "global.vtep" => "{} is not a unicast address", g.vtep);
    }
    if g.cluster_id.is_some_and(|c| c.is_unspecified()) {
        fail!(e, "global.cluster_id" => "must be non-zero (RFC 4456 §7)");
    }
    if g.graceful_restart_time > 4095 {
        fail!(e, "global.graceful_restart_time" =>
            "{} is out of range (0..=4095): Restart Time is 12 bits (RFC 4724 §3)",
            g.graceful_restart_time);
    }
    if g.stale_routes_time == 0 {
        fail!(e, "global.stale_routes_time" => "must be at least 1 second");
    }
}

fn neighbors(c: &Config, e: &mut Errors) {
    let local = c.global.asn;
    let mut seen: HashMap<(String, u16), usize> = HashMap::new();
    for (i, n) in c.neighbor.iter().enumerate() {
        let k = |f: &str| format!("neighbor[{i}].{f}");
        if peer_addr(e, &k("address"), &n.address) {
            let norm = n
                .address
                .to_string()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            if let Some(j) = first_seen(&mut seen, (norm, n.port), i) {
                fail!(e, k("address") => "duplicate of neighbor[{j}] (same address and port)");
            }
        }
        asn(e, &k("remote_asn"), n.remote_asn);
        if n.port == 0 {
            fail!(e, k("port") => "must be 1..=65535");
        }
        if n.families.is_empty() {
            fail!(e, k("families") => "must name at least one family");
        }
        for (f, j) in repeats(&n.families) {
            fail!(e, format!("neighbor[{i}].families[{f}]") =>
                "duplicate of families[{j}] ({})", n.families[f]);
        }
        // RFC 4271 §4.2: "the Hold Time MUST be either zero or at least three seconds".
        if matches!(n.hold_time, 1 | 2) {
            fail!(e, k("hold_time") => "{} is invalid: 0 or at least 3 seconds (RFC 4271 §4.2)",
                n.hold_time);
        }
        match n.keepalive {
            Some(_) if n.hold_time == 0 => fail!(e, k("keepalive") =>
                "must not be set when hold_time is 0: no KEEPALIVEs are sent (RFC 4271 §4.4)"),
            Some(0) => fail!(e, k("keepalive") => "must be at least 1 (omit it for hold_time / 3)"),
            Some(ka) if ka >= n.hold_time => fail!(e, k("keepalive") =>
                "{ka} must be less than hold_time ({}); RFC 4271 §10 suggests a third",
                n.hold_time),
            _ => {}
        }
        if n.connect_retry == 0 {
            fail!(e, k("connect_retry") => "must be at least 1 second");
        }
        match &n.md5_password {
            Some(p) if p.is_empty() => {
                fail!(e, k("md5_password") => "empty; remove the key to disable TCP-MD5")
            }
            Some(p) if p.len() > 80 => fail!(e, k("md5_password") =>
                "{} octets; Linux takes at most 80 (TCP_MD5SIG_MAXKEYLEN)", p.len()),
            _ => {}
        }
        // As FRR (bgpd.c, peer_ttl_security_hops_set): ttl-security and ebgp-multihop exclude
        // each other, and ttl-security is allowed on iBGP sessions too (only the minimum TTL
        // is set there), so there is no eBGP-only rule for it.
        if n.ttl_security && n.ebgp_multihop.is_some() {
            fail!(e, k("ttl_security") =>
                "cannot be combined with ebgp_multihop (GTSM expects TTL 255, RFC 5082)");
        }
        let ebgp = n.is_ebgp(local);
        match n.ebgp_multihop {
            Some(0) => fail!(e, k("ebgp_multihop") => "must be 1..=255"),
            Some(_) if !ebgp => fail!(e, k("ebgp_multihop") =>
                "only for eBGP; this neighbor is iBGP (remote_asn = global.asn = {local})"),
            _ => {}
        }
        if n.route_reflector_client && ebgp {
            fail!(e, k("route_reflector_client") =>
                "iBGP only (RFC 4456); remote_asn {} differs from global.asn {local}",
                n.remote_asn);
        }
        if n.max_prefix == Some(0) {
            fail!(e, k("max_prefix") => "must be greater than 0 (omit it for no limit)");
        }
        if n.delay_open.is_some_and(|d| !(1..=240).contains(&d)) {
            fail!(e, k("delay_open") => "must be 1..=240 seconds (FRR's range)");
        }
        if let Some(la) = n.local_address {
            if !is_unicast(la) {
                fail!(e, k("local_address") => "{la} is not a unicast address");
            } else if let PeerAddr::Ip(ip) = n.address
                && ip.is_ipv4() != la.is_ipv4()
            {
                fail!(e, k("local_address") => "{la} and address {ip} are different families");
            }
        }
    }
}

fn vnis(c: &Config, e: &mut Errors) {
    let mut seen: HashMap<u32, usize> = HashMap::new();
    let mut devices: HashMap<&str, String> = HashMap::new();
    let mut tables: HashMap<u32, usize> = HashMap::new();
    for (i, v) in c.vni.iter().enumerate() {
        let k = |f: &str| format!("vni[{i}].{f}");
        if !(1..=0xFF_FFFF).contains(&v.vni) {
            fail!(e, k("vni") => "{} is out of range (1..=16777215, 24 bits, RFC 7348 §5)", v.vni);
        } else if let Some(j) = first_seen(&mut seen, v.vni, i) {
            fail!(e, k("vni") => "duplicate of vni[{j}]");
        }
        if let RdCfg::Set(s) = &v.rd
            && let Err(r) = admin_number(s.trim())
        {
            e.add(k("rd"), r);
        }
        for (name, rts) in [("import_rt", &v.import_rt), ("export_rt", &v.export_rt)] {
            for (r, rt) in rts.iter().enumerate() {
                if let RtCfg::Set(s) = rt
                    && let Err(why) = admin_number(s.trim())
                {
                    e.add(format!("vni[{i}].{name}[{r}]"), why);
                }
            }
        }
        for (field, dev) in [("bridge", &v.bridge), ("vxlan", &v.vxlan), ("vrf", &v.vrf)] {
            let Some(dev) = dev.as_deref() else { continue };
            if let Err(r) = ifname(dev) {
                e.add(k(field), r);
            } else if let Some(other) = first_seen(&mut devices, dev, k(field)) {
                fail!(e, k(field) => "{dev:?} is already used by {other}");
            }
        }
        match v.kind {
            VniKind::L2 => {
                match v.l3_vni.map(|l3| (l3, c.vni.iter().find(|w| w.vni == l3))) {
                    Some((l3, None)) => fail!(e, k("l3_vni") => "no [[vni]] has vni = {l3}"),
                    Some((l3, Some(w))) if w.kind != VniKind::L3 => fail!(e, k("l3_vni") =>
                        "vni {l3} is kind \"l2\"; l3_vni must name an l3 VNI"),
                    _ => {}
                }
                if !v.prefixes.is_empty() {
                    fail!(e, k("prefixes") => "only for kind \"l3\" (type-5 routes, RFC 9136)");
                }
                if v.router_mac.is_some() {
                    fail!(e, k("router_mac") => "only for kind \"l3\" (the IP-VRF's Router's MAC, RFC 9135 §8.1)");
                }
                if v.vrf.is_some() {
                    fail!(e, k("vrf") => "only for kind \"l3\" (an IP-VRF's VRF device)");
                }
                if v.table.is_some() {
                    fail!(e, k("table") => "only for kind \"l3\" (an IP-VRF's routing table)");
                }
                if let Some(m) = v.gateway_mac {
                    if v.gateway_ip.is_none() {
                        fail!(e, k("gateway_mac") => "needs gateway_ip (the anycast gateway's address)");
                    }
                    if let Err(r) = unicast_mac(m) {
                        e.add(k("gateway_mac"), r);
                    }
                }
            }
            VniKind::L3 => {
                if v.arp_nd_suppress {
                    fail!(e, k("arp_nd_suppress") => "only for kind \"l2\" (a MAC-VRF's bridge port)");
                }
                if v.gateway_ip.is_some() {
                    fail!(e, k("gateway_ip") => "only for kind \"l2\" (a MAC-VRF's gateway)");
                }
                if v.l3_vni.is_some() {
                    fail!(e, k("l3_vni") => "only for kind \"l2\" (names a MAC-VRF's IP-VRF)");
                }
                if v.gateway_mac.is_some() {
                    fail!(e, k("gateway_mac") => "only for kind \"l2\" (a MAC-VRF's gateway)");
                }
                if let Some(m) = v.router_mac
                    && let Err(r) = unicast_mac(m)
                {
                    e.add(k("router_mac"), r);
                }
                // 0 is "unspecified"; 253–255 are the kernel's default, main and local tables
                match v.table_id() {
                    0 | 253..=255 if v.table.is_some() => fail!(e, k("table") =>
                        "{} is a reserved routing table (0 unspec, 253 default, 254 main, 255 local)", v.table_id()),
                    253..=255 => fail!(e, k("table") =>
                        "the default (the VNI, {}) is a reserved routing table (253 default, 254 main, 255 local): set table", v.vni),
                    t => {
                        if let Some(j) = first_seen(&mut tables, t, i) {
                            fail!(e, k("table") => "table {t} is already vni[{j}]'s");
                        }
                    }
                }
                for (p, prefix) in v.prefixes.iter().enumerate() {
                    if let Err(r) = canonical(*prefix) {
                        e.add(format!("vni[{i}].prefixes[{p}]"), r);
                    }
                }
            }
        }
    }
}

/// A MAC a VTEP may own: not zero, not group (I/G bit).
fn unicast_mac(m: crate::wire::MacAddr) -> Result<(), String> {
    if m == crate::wire::MacAddr::ZERO {
        return Err("00:00:00:00:00:00 is not a usable MAC".into());
    }
    if m.0[0] & 1 != 0 {
        return Err(format!("{m} is a multicast/broadcast MAC (I/G bit set)"));
    }
    Ok(())
}

fn lisp(c: &Config, e: &mut Errors) {
    let l = &c.lisp;
    for (k, j) in repeats(&l.roles) {
        fail!(e, format!("lisp.roles[{k}]") => "duplicate of roles[{j}] ({})", l.roles[k]);
    }
    if !l.site.is_empty() && !l.roles.contains(&LispRole::MapServer) {
        fail!(e, "lisp.site" => "sites need the \"map-server\" role in lisp.roles");
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut eids: HashMap<EidCfg, String> = HashMap::new();
    for (i, s) in l.site.iter().enumerate() {
        let k = |f: &str| format!("lisp.site[{i}].{f}");
        if s.name.trim().is_empty() {
            fail!(e, k("name") => "required");
        } else if let Some(j) = first_seen(&mut names, s.name.as_str(), i) {
            fail!(e, k("name") => "{:?} is already the name of lisp.site[{j}]", s.name);
        }
        if s.key.is_empty() {
            fail!(e, k("key") => "must not be empty");
        }
        if s.eids.is_empty() {
            fail!(e, k("eids") => "must list at least one EID");
        }
        for (x, text) in s.eids.iter().enumerate() {
            let key = format!("lisp.site[{i}].eids[{x}]");
            match parse_eid(text) {
                Err(r) => e.add(key, r),
                Ok(eid) => {
                    if let Some(other) = first_seen(&mut eids, eid, key.clone()) {
                        fail!(e, key => "same EID as {other}");
                    }
                }
            }
        }
    }
    for (i, m) in l.map_server.iter().enumerate() {
        peer_addr(e, &format!("lisp.map_server[{i}].address"), &m.address);
        if m.key.is_empty() {
            fail!(e, format!("lisp.map_server[{i}].key") => "must not be empty");
        }
    }
}

fn asn(e: &mut Errors, key: &str, asn: u32) {
    match asn {
        0 => fail!(e, key => "required: AS 0 is reserved (RFC 7607)"),
        23456 => fail!(e, key => "23456 is AS_TRANS, not a real AS (RFC 6793 §9)"),
        _ => {}
    }
}

fn is_unicast(ip: IpAddr) -> bool {
    !ip.is_unspecified() && !ip.is_multicast() && !matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

/// An IP must be unicast, a name an RFC 1123 host name; returns whether the address is usable.
fn peer_addr(e: &mut Errors, key: &str, a: &PeerAddr) -> bool {
    let r = match a {
        PeerAddr::Ip(ip) if !is_unicast(*ip) => Err(format!("{ip} is not a unicast address")),
        PeerAddr::Ip(_) => Ok(()),
        PeerAddr::Name(n) => hostname(n),
    };
    r.map_err(|r| e.add(key, r)).is_ok()
}

/// RFC 1123 §2.1 host name: dot-separated labels of 1..=63 letters, digits and hyphens, not
/// starting or ending with a hyphen, 253 octets at most (a trailing dot aside).
fn hostname(s: &str) -> Result<(), String> {
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.trim().is_empty() {
        return Err("required: an IP address or a DNS name".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "host name of {} octets; at most 253 (RFC 1123 §2.1)",
            name.len()
        ));
    }
    for label in name.split('.') {
        let chars_ok = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !chars_ok
            || label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!(
                "{s:?} is neither an IP address nor a host name (label {label:?}: \
                1..=63 letters, digits, inner hyphens; RFC 1123 §2.1)"
            ));
        }
    }
    // RFC 1123 §2.1: a host name's top-level label is never all-numeric; this is a mistyped
    // address such as 192.0.2.300.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("{s:?} is not a valid IP address"));
    }
    Ok(())
}

/// Linux `dev_valid_name`: 1..=15 octets (IFNAMSIZ 16), not "." or "..", no '/', ':' or space.
fn ifname(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 15 || s == "." || s == ".." {
        return Err(format!("{s:?}: an interface name has 1..=15 octets"));
    }
    if s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return Err(format!(
            "{s:?}: an interface name cannot contain '/', ':' or white space"
        ));
    }
    Ok(())
}

/// RD (RFC 4364 §4.2) or RT (RFC 4360 §4) text — `ASN:NN` with a 2-octet ASN and 32-bit NN,
/// `ASN:NN` with a 4-octet ASN and 16-bit NN, or `A.B.C.D:NN` with a 16-bit NN — saying which
/// part is wrong. Accepts what `RouteDistinguisher`/`RouteTarget::from_str` accept (without the
/// `RT:` display prefix).
fn admin_number(t: &str) -> Result<(), String> {
    let (admin, num) = t
        .rsplit_once(':')
        .ok_or_else(|| format!("{t:?}: expected ASN:NN or A.B.C.D:NN"))?;
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{t:?}: assigned number {num:?} is not a number"))?;
    if admin.contains('.') {
        admin
            .parse::<Ipv4Addr>()
            .map_err(|_| format!("{t:?}: administrator {admin:?} is not an IPv4 address"))?;
        if n > 0xFFFF {
            return Err(format!(
                "{t:?}: assigned number {n} is out of range: \
                with an IPv4 administrator it is 16 bits (0..=65535)"
            ));
        }
        return Ok(());
    }
    let asn: u64 = admin.parse().map_err(|_| {
        format!("{t:?}: administrator {admin:?} is neither an ASN nor an IPv4 address")
    })?;
    if asn > u64::from(u32::MAX) {
        return Err(format!("{t:?}: ASN {asn} is out of range (0..=4294967295)"));
    }
    if asn <= 0xFFFF && n > u64::from(u32::MAX) {
        return Err(format!(
            "{t:?}: assigned number {n} is out of range: \
            with a 2-octet ASN it is 32 bits (0..=4294967295)"
        ));
    }
    if asn > 0xFFFF && n > 0xFFFF {
        return Err(format!(
            "{t:?}: assigned number {n} is out of range: \
            with a 4-octet ASN ({asn} > 65535) it is 16 bits (0..=65535)"
        ));
    }
    Ok(())
}
