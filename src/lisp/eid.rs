//! EID prefixes as the core's table key, and a prefix table with longest-match and covering
//! lookups.
//!
//! Owns: `EidPrefix` (Instance ID + IPv4/IPv6/MAC prefix, host bits always cleared), its
//! conversion to and from the wire's `LispAddr` (always an Instance-ID LCAF on send, RFC 8060
//! §4.1), and `PrefixTable`, a hash map with per-(IID, family) prefix-length sets.
//! Must not: know registrations, subscriptions or any message; allocate per lookup.
//!
//! A MAC EID is a 48-bit prefix: a host MAC is `/48`, and the configuration's `mac:any` is
//! `/0` in its Instance ID, so one longest-match rule covers IP and MAC space alike.
//!
//! Lookups cost one hash probe per prefix length present in the table for that IID and family
//! (one for tables of host routes), never a scan.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Serialize, Serializer};
use smallvec::SmallVec;

use super::Map;
use crate::config::EidCfg;
use crate::wire::MacAddr;
use crate::wire::lisp::{LispAddr, MacAfi};

/// The address family of an EID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EidFamily {
    Ipv4,
    Ipv6,
    Mac,
}

impl EidFamily {
    /// Bits in an address of this family.
    pub const fn width(self) -> u8 {
        match self {
            EidFamily::Ipv4 => 32,
            EidFamily::Ipv6 => 128,
            EidFamily::Mac => 48,
        }
    }
}

/// The IID mask-len written in every Instance-ID LCAF we send. lab/oor/README.md gotcha 2: OOR
/// matches a Map-Notify record only with IID mask-len 32.
pub const IID_MASK_LEN: u8 = 32;

/// An EID prefix: Instance ID (the VNI), family, address bits (host bits zero) and length.
/// Orders by IID, family, address, length; displays as `[100] 10.1.0.5/32` or
/// `[100] 02:00:00:00:00:01/48`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EidPrefix {
    iid: u32,
    family: EidFamily,
    bits: u128,
    len: u8,
}

/// All ones in the low `n` bits (`n` ≤ 128).
const fn low_ones(n: u8) -> u128 {
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

/// The network mask of a `len`-bit prefix in a `width`-bit address (value right-aligned).
const fn net_mask(width: u8, len: u8) -> u128 {
    let len = if len > width { width } else { len };
    low_ones(width) & !low_ones(width - len)
}

/// Why a wire address is not an EID we can key on.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EidError {
    /// AFI 0, an AFI-List, an unknown LCAF or an Instance-ID range (inner AFI 0).
    UnsupportedAddress,
    /// The mask-len exceeds the address width.
    BadMaskLen,
}

impl EidPrefix {
    /// The prefix `bits/len` in `iid`; `len` is capped at the family width and host bits are
    /// cleared.
    pub fn from_bits(iid: u32, family: EidFamily, bits: u128, len: u8) -> EidPrefix {
        let len = len.min(family.width());
        EidPrefix {
            iid,
            family,
            bits: bits & net_mask(family.width(), len),
            len,
        }
    }

    /// A host EID (`/32` or `/128`).
    pub fn host(iid: u32, ip: IpAddr) -> EidPrefix {
        match ip {
            IpAddr::V4(a) => Self::from_bits(iid, EidFamily::Ipv4, u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => Self::from_bits(iid, EidFamily::Ipv6, u128::from(a), 128),
        }
    }

    /// A MAC EID (`/48`).
    pub fn mac(iid: u32, mac: MacAddr) -> EidPrefix {
        let [a, b, c, d, e, f] = mac.0;
        let bits = u128::from(u64::from_be_bytes([0, 0, a, b, c, d, e, f]));
        Self::from_bits(iid, EidFamily::Mac, bits, 48)
    }

    /// Every MAC in `iid` (`mac:any`).
    pub fn any_mac(iid: u32) -> EidPrefix {
        Self::from_bits(iid, EidFamily::Mac, 0, 0)
    }

    /// An IP prefix (host bits are cleared).
    pub fn prefix(iid: u32, net: IpNet) -> EidPrefix {
        match net {
            IpNet::V4(n) => Self::from_bits(
                iid,
                EidFamily::Ipv4,
                u128::from(u32::from(n.addr())),
                n.prefix_len(),
            ),
            IpNet::V6(n) => {
                Self::from_bits(iid, EidFamily::Ipv6, u128::from(n.addr()), n.prefix_len())
            }
        }
    }

    /// A configured site EID (`config::parse_eid`).
    pub fn from_cfg(c: &EidCfg) -> EidPrefix {
        match *c {
            EidCfg::Prefix { iid, prefix } => Self::prefix(iid, prefix),
            EidCfg::MacAny { iid } => Self::any_mac(iid),
            EidCfg::Mac { iid, mac } => Self::mac(iid, mac),
        }
    }

    pub fn iid(&self) -> u32 {
        self.iid
    }

    pub fn family(&self) -> EidFamily {
        self.family
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether this is a full-length (host) prefix.
    pub fn is_host(&self) -> bool {
        self.len == self.family.width()
    }

    /// The address part as an IP address (network address of the prefix), for IP EIDs.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.family {
            EidFamily::Ipv4 => Some(IpAddr::V4(Ipv4Addr::from(
                u32::try_from(self.bits).unwrap_or(0),
            ))),
            EidFamily::Ipv6 => Some(IpAddr::V6(Ipv6Addr::from(self.bits))),
            EidFamily::Mac => None,
        }
    }

    /// The address part as a MAC, for MAC EIDs.
    pub fn mac_addr(&self) -> Option<MacAddr> {
        match self.family {
            EidFamily::Mac => {
                let b = u64::try_from(self.bits).unwrap_or(0).to_be_bytes();
                let [_, _, m0, m1, m2, m3, m4, m5] = b;
                Some(MacAddr([m0, m1, m2, m3, m4, m5]))
            }
            _ => None,
        }
    }

    /// Whether `other` lies inside this prefix (same IID and family, at least as long).
    pub fn contains(&self, other: &EidPrefix) -> bool {
        self.iid == other.iid
            && self.family == other.family
            && other.len >= self.len
            && other.bits & net_mask(self.family.width(), self.len) == self.bits
    }

    /// This prefix shortened to `len` bits (no-op when `len` ≥ the current length).
    pub fn truncate(&self, len: u8) -> EidPrefix {
        if len >= self.len {
            *self
        } else {
            Self::from_bits(self.iid, self.family, self.bits, len)
        }
    }

    /// The number of leading bits `self` and `other` share (capped at both lengths). Only
    /// meaningful for the same IID and family.
    pub fn common_len(&self, other: &EidPrefix) -> u8 {
        let w = self.family.width();
        let x = (self.bits ^ other.bits) & low_ones(w);
        // leading zeros of x within the w-bit window
        let lz = u8::try_from(x.leading_zeros()).unwrap_or(128);
        let same = lz.saturating_sub(128 - w);
        same.min(self.len).min(other.len)
    }

    /// The wire form: an Instance-ID LCAF (IID mask-len 32) around the address, with the MAC
    /// AFI `mac_afi` for MAC EIDs. Returns the address and the record's EID mask-len.
    pub fn to_wire(&self, mac_afi: MacAfi) -> (LispAddr, u8) {
        let inner = match self.family {
            EidFamily::Ipv4 => {
                LispAddr::Ipv4(Ipv4Addr::from(u32::try_from(self.bits).unwrap_or(0)))
            }
            EidFamily::Ipv6 => LispAddr::Ipv6(Ipv6Addr::from(self.bits)),
            EidFamily::Mac => LispAddr::Mac {
                afi: mac_afi,
                mac: self.mac_addr().unwrap_or(MacAddr::ZERO),
            },
        };
        (LispAddr::with_iid(self.iid, IID_MASK_LEN, inner), self.len)
    }

    /// Parses a record's EID (`mask_len`, address). An address without an Instance-ID LCAF is
    /// in IID 0. Also returns the MAC AFI used, so replies can mirror it (lisp-anchors.md §1.2).
    pub fn from_wire(
        mask_len: u8,
        addr: &LispAddr,
    ) -> Result<(EidPrefix, Option<MacAfi>), EidError> {
        let (iid, inner) = match addr.iid() {
            Some((iid, inner)) => (iid, inner),
            None => (0, addr),
        };
        let (family, bits, afi) = match inner {
            LispAddr::Ipv4(a) => (EidFamily::Ipv4, u128::from(u32::from(*a)), None),
            LispAddr::Ipv6(a) => (EidFamily::Ipv6, u128::from(*a), None),
            LispAddr::Mac { afi, mac } => {
                let [a, b, c, d, e, f] = mac.0;
                (
                    EidFamily::Mac,
                    u128::from(u64::from_be_bytes([0, 0, a, b, c, d, e, f])),
                    Some(*afi),
                )
            }
            _ => return Err(EidError::UnsupportedAddress),
        };
        if mask_len > family.width() {
            return Err(EidError::BadMaskLen);
        }
        Ok((Self::from_bits(iid, family, bits, mask_len), afi))
    }

    /// A full-length EID from a bare address field (a Map-Request's Source-EID). `None` for
    /// AFI 0 and anything that is not an IP or MAC address.
    pub fn host_from_wire(addr: &LispAddr) -> Option<EidPrefix> {
        let (iid, inner) = addr.iid().unwrap_or((0, addr));
        let w = match inner {
            LispAddr::Ipv4(_) => 32,
            LispAddr::Ipv6(_) => 128,
            LispAddr::Mac { .. } => 48,
            _ => return None,
        };
        Self::from_wire(w, &LispAddr::with_iid(iid, IID_MASK_LEN, inner.clone()))
            .ok()
            .map(|(e, _)| e)
    }
}

impl fmt::Display for EidPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ip(), self.mac_addr()) {
            (Some(ip), _) => write!(f, "[{}] {}/{}", self.iid, ip, self.len),
            (None, Some(mac)) => write!(f, "[{}] {}/{}", self.iid, mac, self.len),
            (None, None) => write!(f, "[{}] ?/{}", self.iid, self.len),
        }
    }
}

impl fmt::Debug for EidPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for EidPrefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Which prefix lengths are present for one (IID, family), with a count per length.
#[derive(Clone)]
struct Lens {
    present: [u64; 3],
    count: Box<[u32; 129]>,
}

impl Lens {
    fn new() -> Lens {
        Lens {
            present: [0; 3],
            count: Box::new([0; 129]),
        }
    }

    fn add(&mut self, len: u8) {
        let i = usize::from(len);
        if let Some(c) = self.count.get_mut(i) {
            *c += 1;
            if let Some(w) = self.present.get_mut(i / 64) {
                *w |= 1 << (i % 64);
            }
        }
    }

    /// Returns whether no length is left.
    fn sub(&mut self, len: u8) -> bool {
        let i = usize::from(len);
        if let Some(c) = self.count.get_mut(i) {
            *c = c.saturating_sub(1);
            if *c == 0
                && let Some(w) = self.present.get_mut(i / 64)
            {
                *w &= !(1 << (i % 64));
            }
        }
        self.present == [0; 3]
    }

    /// Present lengths ≤ `max`, longest first.
    fn desc(&self, max: u8) -> impl Iterator<Item = u8> + '_ {
        (0..=max).rev().filter(|l| {
            let i = usize::from(*l);
            self.present
                .get(i / 64)
                .is_some_and(|w| w & (1 << (i % 64)) != 0)
        })
    }
}

/// A map from EID prefixes to `V` with longest-match and covering lookups.
pub(crate) struct PrefixTable<V> {
    map: Map<EidPrefix, V>,
    lens: Map<(u32, EidFamily), Lens>,
}

impl<V> PrefixTable<V> {
    pub(crate) fn new(seed: u64) -> Self {
        PrefixTable {
            map: Map::with_hasher(super::hasher(seed)),
            lens: Map::with_hasher(super::hasher(seed ^ 1)),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn get(&self, k: &EidPrefix) -> Option<&V> {
        self.map.get(k)
    }

    pub(crate) fn get_mut(&mut self, k: &EidPrefix) -> Option<&mut V> {
        self.map.get_mut(k)
    }

    pub(crate) fn contains_key(&self, k: &EidPrefix) -> bool {
        self.map.contains_key(k)
    }

    /// Inserts or replaces; returns the old value.
    pub(crate) fn insert(&mut self, k: EidPrefix, v: V) -> Option<V> {
        let old = self.map.insert(k, v);
        if old.is_none() {
            self.lens
                .entry((k.iid, k.family))
                .or_insert_with(Lens::new)
                .add(k.len);
        }
        old
    }

    /// The value at `k`, inserted with `f` when absent.
    pub(crate) fn get_or_insert_with(&mut self, k: EidPrefix, f: impl FnOnce() -> V) -> &mut V {
        if !self.map.contains_key(&k) {
            self.lens
                .entry((k.iid, k.family))
                .or_insert_with(Lens::new)
                .add(k.len);
        }
        self.map.entry(k).or_insert_with(f)
    }

    pub(crate) fn remove(&mut self, k: &EidPrefix) -> Option<V> {
        let old = self.map.remove(k);
        if old.is_some() {
            let key = (k.iid, k.family);
            if self.lens.get_mut(&key).is_some_and(|l| l.sub(k.len)) {
                self.lens.remove(&key);
            }
        }
        old
    }

    /// The longest prefix in the table containing `q`.
    pub(crate) fn lpm(&self, q: &EidPrefix) -> Option<(EidPrefix, &V)> {
        let lens = self.lens.get(&(q.iid, q.family))?;
        lens.desc(q.len).find_map(|l| {
            let k = q.truncate(l);
            self.map.get(&k).map(|v| (k, v))
        })
    }

    /// Every prefix in the table containing `q` (`q` itself included), longest first.
    pub(crate) fn covering(&self, q: &EidPrefix) -> SmallVec<[EidPrefix; 4]> {
        let mut out = SmallVec::new();
        if let Some(lens) = self.lens.get(&(q.iid, q.family)) {
            for l in lens.desc(q.len) {
                let k = q.truncate(l);
                if self.map.contains_key(&k) {
                    out.push(k);
                }
            }
        }
        out
    }

    /// Whether the table may hold a prefix strictly inside `q` (longer, same IID and
    /// family). Exact while at most `budget` candidate prefixes need a hash probe (every
    /// present length longer than `q` costs `2^(len - q.len)` probes); `true` (may) past it.
    pub(crate) fn may_hold_inside(&self, q: &EidPrefix, budget: u32) -> bool {
        let Some(lens) = self.lens.get(&(q.iid, q.family)) else {
            return false;
        };
        let w = q.family.width();
        let mut left = u128::from(budget);
        for l in lens.desc(w).take_while(|l| *l > q.len) {
            let extra = l.saturating_sub(q.len);
            let n = if extra >= 127 {
                u128::MAX
            } else {
                1u128 << extra
            };
            if n > left {
                return true;
            }
            left -= n;
            for i in 0..n {
                let k = EidPrefix {
                    iid: q.iid,
                    family: q.family,
                    bits: q.bits | (i << w.saturating_sub(l)),
                    len: l,
                };
                if self.map.contains_key(&k) {
                    return true;
                }
            }
        }
        false
    }

    /// Entries in unspecified order (callers sort before anything observable).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&EidPrefix, &V)> {
        self.map.iter()
    }

    /// Values in place (keys, and so the length index, are not changed).
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&EidPrefix, &mut V)> {
        self.map.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str, iid: u32) -> EidPrefix {
        EidPrefix::prefix(iid, s.parse().unwrap())
    }

    #[test]
    fn contains_and_common_len() {
        let a = p("10.1.0.0/16", 100);
        assert!(a.contains(&p("10.1.2.3/32", 100)));
        assert!(!a.contains(&p("10.1.2.3/32", 101)));
        assert!(!a.contains(&p("10.0.0.0/8", 100)));
        assert_eq!(p("10.1.2.3/32", 1).common_len(&p("10.1.3.0/24", 1)), 23);
        assert!(EidPrefix::any_mac(5).contains(&EidPrefix::mac(5, MacAddr([2, 0, 0, 0, 0, 1]))));
        assert_eq!(p("10.1.2.3/16", 0).to_string(), "[0] 10.1.0.0/16");
    }

    #[test]
    fn table_lpm_and_covering() {
        let mut t = PrefixTable::new(7);
        t.insert(p("10.0.0.0/8", 1), 'a');
        t.insert(p("10.1.0.0/16", 1), 'b');
        t.insert(p("10.1.0.5/32", 1), 'c');
        let q = p("10.1.0.5/32", 1);
        assert_eq!(t.lpm(&q).map(|(_, v)| *v), Some('c'));
        assert_eq!(t.lpm(&p("10.1.9.9/32", 1)).map(|(_, v)| *v), Some('b'));
        assert_eq!(t.lpm(&p("10.1.9.9/32", 2)), None);
        assert_eq!(t.covering(&q).len(), 3);
        t.remove(&p("10.1.0.0/16", 1));
        assert_eq!(t.lpm(&p("10.1.9.9/32", 1)).map(|(_, v)| *v), Some('a'));
    }

    #[test]
    fn may_hold_inside_is_exact_within_its_budget() {
        let mut t = PrefixTable::new(7);
        t.insert(p("10.107.0.50/32", 107), ());
        t.insert(p("10.1.7.0/24", 107), ());
        // a /24 holds the /32 (256 probes) but not the other /24
        assert!(t.may_hold_inside(&p("10.107.0.0/24", 107), 256));
        assert!(!t.may_hold_inside(&p("10.107.1.0/24", 107), 256));
        // itself is not inside itself; another IID holds nothing
        assert!(!t.may_hold_inside(&p("10.1.7.0/24", 107), 256));
        assert!(!t.may_hold_inside(&p("10.107.0.0/24", 108), 256));
        // past the budget: "may"
        assert!(t.may_hold_inside(&p("10.64.0.0/10", 107), 256));
        assert!(!t.may_hold_inside(&p("10.107.0.50/32", 107), 0));
    }

    #[test]
    fn wire_round_trip() {
        let e = EidPrefix::mac(100, MacAddr([2, 0, 0, 0xaa, 0xbb, 0xcc]));
        let (a, l) = e.to_wire(MacAfi::Mac48);
        assert_eq!(EidPrefix::from_wire(l, &a), Ok((e, Some(MacAfi::Mac48))));
        assert_eq!(
            EidPrefix::from_wire(33, &LispAddr::Ipv4(Ipv4Addr::LOCALHOST)),
            Err(EidError::BadMaskLen)
        );
    }
}
