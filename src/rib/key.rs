//! Route keys and the per-path rest of an NLRI, stored inline.
//!
//! Owns: how an NLRI's wire bytes split into the part BGP uses as the route key (one Loc-RIB
//! entry per key) and the per-path rest (labels, ESI, gateway), and how they join back into
//! the NLRI that goes on the wire.
//! Must not: allocate per route in the common case — both parts are stored inline up to their
//! capacity (a regular type-2 key is 25–37 octets), only longer ones go to the heap.
//!
//! The key rules, quoted:
//! - RFC 7432 §7.1 (type 1): "only the Ethernet Segment Identifier and the Ethernet Tag ID are
//!   considered to be part of the prefix in the NLRI. The MPLS Label field is to be treated as a
//!   route attribute".
//! - RFC 7432 §7.2 (type 2): "only the Ethernet Tag ID, MAC Address Length, MAC Address, IP
//!   Address Length, and IP Address fields are considered to be part of the prefix".
//! - RFC 7432 §7.3/§7.4 (types 3, 4): all fields but the labels — there are none.
//! - RFC 9136 §3.2 (type 5): "only the Ethernet Tag ID, IP Prefix Length, and IP Prefix are part
//!   of the route key used by BGP".
//!
//! In every case the RD is part of the key (RFC 4364 §4.1: the RD makes the prefix unique), and
//! the route type octet leads, so keys of different types never collide. Unknown route types
//! and malformed lengths keep the whole NLRI as the key (nothing is lost, nothing merged).

use std::fmt;
use std::hash::{Hash, Hasher};

/// Bytes stored inline up to `N` octets, on the heap beyond.
#[derive(Clone)]
pub enum InlineBytes<const N: usize> {
    Inline { len: u8, buf: [u8; N] },
    Heap(Box<[u8]>),
}

impl<const N: usize> InlineBytes<N> {
    pub fn new(b: &[u8]) -> Self {
        if b.len() <= N
            && let Ok(len) = u8::try_from(b.len())
        {
            let mut buf = [0u8; N];
            if let Some(dst) = buf.get_mut(..b.len()) {
                dst.copy_from_slice(b);
            }
            return InlineBytes::Inline { len, buf };
        }
        InlineBytes::Heap(b.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            InlineBytes::Inline { len, buf } => buf.get(..usize::from(*len)).unwrap_or(&[]),
            InlineBytes::Heap(b) => b,
        }
    }
}

impl<const N: usize> Default for InlineBytes<N> {
    fn default() -> Self {
        InlineBytes::Inline {
            len: 0,
            buf: [0; N],
        }
    }
}

impl<const N: usize> PartialEq for InlineBytes<N> {
    fn eq(&self, o: &Self) -> bool {
        self.as_bytes() == o.as_bytes()
    }
}
impl<const N: usize> Eq for InlineBytes<N> {}
impl<const N: usize> Hash for InlineBytes<N> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write(self.as_bytes());
    }
}
impl<const N: usize> PartialOrd for InlineBytes<N> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<const N: usize> Ord for InlineBytes<N> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(o.as_bytes())
    }
}
impl<const N: usize> fmt::Debug for InlineBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The route key of one Loc-RIB entry (40 octets in memory).
pub type RouteKey = InlineBytes<38>;
/// The per-path rest of the NLRI (ESI, labels, gateway), 32 octets in memory.
pub type NlriRest = InlineBytes<30>;

const RD: usize = 8;
const ESI: usize = 10;
const TAG: usize = 4;

/// Split one EVPN NLRI (route type, length, value — no path identifier) into key and rest.
pub fn split_evpn(nlri: &[u8]) -> (RouteKey, NlriRest) {
    let whole = || (RouteKey::new(nlri), NlriRest::new(&[]));
    let [t, len, value @ ..] = nlri else {
        return whole();
    };
    if value.len() != usize::from(*len) {
        return whole();
    }
    let mut key = Vec::with_capacity(40);
    key.push(*t);
    let (Some(rd), Some(after_rd)) = (value.get(..RD), value.get(RD..)) else {
        return whole();
    };
    key.extend_from_slice(rd);
    match *t {
        // RD | ESI | Tag | Label → key RD ESI Tag, rest Label
        1 if value.len() == RD + ESI + TAG + 3 => {
            key.extend_from_slice(after_rd.get(..ESI + TAG).unwrap_or(&[]));
            (
                RouteKey::new(&key),
                NlriRest::new(after_rd.get(ESI + TAG..).unwrap_or(&[])),
            )
        }
        // RD | ESI | Tag | MAC len | MAC | IP len | IP | Label1 | [Label2]
        2 => {
            let ip_len_at = ESI + TAG + 1 + 6;
            let ip_bits = after_rd.get(ip_len_at).copied().unwrap_or(0xff);
            let ip_octets = match ip_bits {
                0 => 0,
                32 => 4,
                128 => 16,
                _ => return whole(),
            };
            let key_end = ip_len_at + 1 + ip_octets;
            let rest_len = after_rd.len().saturating_sub(key_end);
            if rest_len != 3 && rest_len != 6 {
                return whole();
            }
            let (Some(esi), Some(k), Some(labels)) = (
                after_rd.get(..ESI),
                after_rd.get(ESI..key_end),
                after_rd.get(key_end..),
            ) else {
                return whole();
            };
            key.extend_from_slice(k);
            let mut rest = [0u8; ESI + 6];
            let n = ESI + labels.len();
            let (a, b) = rest.split_at_mut(ESI);
            a.copy_from_slice(esi);
            if let Some(b) = b.get_mut(..labels.len()) {
                b.copy_from_slice(labels);
            }
            (
                RouteKey::new(&key),
                NlriRest::new(rest.get(..n).unwrap_or(&[])),
            )
        }
        // RD | ESI | Tag | IP prefix len | prefix (4/16) | GW IP (4/16) | Label
        5 if value.len() == 34 || value.len() == 58 => {
            let a = if value.len() == 34 { 4 } else { 16 };
            let key_end = ESI + TAG + 1 + a;
            let (Some(esi), Some(k), Some(tail)) = (
                after_rd.get(..ESI),
                after_rd.get(ESI..key_end),
                after_rd.get(key_end..),
            ) else {
                return whole();
            };
            key.extend_from_slice(k);
            let mut rest = Vec::with_capacity(ESI + tail.len());
            rest.extend_from_slice(esi);
            rest.extend_from_slice(tail);
            (RouteKey::new(&key), NlriRest::new(&rest))
        }
        _ => whole(),
    }
}

/// Join a key and rest made by `split_evpn` back into the NLRI, appended to `out`.
pub fn join_evpn(key: &RouteKey, rest: &NlriRest, out: &mut Vec<u8>) {
    let k = key.as_bytes();
    let r = rest.as_bytes();
    let [t, kv @ ..] = k else {
        return;
    };
    if r.is_empty() {
        // the whole NLRI is the key (types 3, 4, others)
        out.extend_from_slice(k);
        return;
    }
    let len = u8::try_from(kv.len() + r.len()).unwrap_or(u8::MAX);
    out.push(*t);
    out.push(len);
    let (rd, after) = kv.split_at(RD.min(kv.len()));
    out.extend_from_slice(rd);
    match *t {
        1 => {
            out.extend_from_slice(after);
            out.extend_from_slice(r);
        }
        2 | 5 => {
            let (esi, tail) = r.split_at(ESI.min(r.len()));
            out.extend_from_slice(esi);
            out.extend_from_slice(after);
            out.extend_from_slice(tail);
        }
        _ => {
            out.extend_from_slice(after);
            out.extend_from_slice(r);
        }
    }
}

/// The key of an IPv4/IPv6 unicast prefix: its wire form (length octet, significant octets).
pub fn prefix_key(wire: &[u8]) -> RouteKey {
    RouteKey::new(wire)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t2(ip: &[u8], labels: &[u8]) -> Vec<u8> {
        let mut v = vec![2u8, 0];
        v.extend([0, 1, 192, 0, 2, 1, 0, 100]); // RD 192.0.2.1:100
        v.extend([0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9]); // ESI
        v.extend([0, 0, 0, 0]); // tag
        v.push(48);
        v.extend([0x52, 0x54, 0, 0, 0, 1]);
        v.push((ip.len() * 8) as u8);
        v.extend(ip);
        v.extend(labels);
        v[1] = (v.len() - 2) as u8;
        v
    }

    #[test]
    fn type2_key_excludes_esi_and_labels_and_joins_back() {
        for ip in [
            &[][..],
            &[10, 1, 0, 5][..],
            &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1][..],
        ] {
            for labels in [&[0, 6, 0x41][..], &[0, 6, 0x41, 0, 0x27, 0x11][..]] {
                let n = t2(ip, labels);
                let (k, r) = split_evpn(&n);
                assert!(matches!(k, RouteKey::Inline { .. }), "key inline");
                assert_eq!(k.as_bytes().len(), 1 + 8 + 4 + 1 + 6 + 1 + ip.len());
                let mut back = Vec::new();
                join_evpn(&k, &r, &mut back);
                assert_eq!(back, n);
                // another label and ESI: same key
                let mut other = n.clone();
                let last = other.len() - 1;
                other[last] ^= 0xff;
                other[12] ^= 0xff;
                assert_eq!(split_evpn(&other).0, k);
            }
        }
    }

    #[test]
    fn type5_and_type1_and_others_round_trip() {
        let mut t5 = vec![5u8, 34];
        t5.extend([0, 1, 192, 0, 2, 1, 0, 100]);
        t5.extend([0u8; 10]);
        t5.extend([0, 0, 0, 0, 24, 10, 1, 0, 0, 192, 0, 2, 1, 0, 0x27, 0x11]);
        let (k, r) = split_evpn(&t5);
        assert_eq!(k.as_bytes().len(), 1 + 8 + 4 + 1 + 4);
        let mut back = Vec::new();
        join_evpn(&k, &r, &mut back);
        assert_eq!(back, t5);

        let mut t1 = vec![1u8, 25];
        t1.extend([0u8; 8]);
        t1.extend([1u8; 10]);
        t1.extend([0, 0, 0, 5, 0, 0, 1]);
        let (k, r) = split_evpn(&t1);
        assert_eq!(r.as_bytes(), &[0, 0, 1]);
        let mut back = Vec::new();
        join_evpn(&k, &r, &mut back);
        assert_eq!(back, t1);

        let t3 = [
            3u8, 17, 0, 1, 192, 0, 2, 1, 0, 100, 0, 0, 0, 0, 32, 192, 0, 2, 1,
        ];
        let (k, r) = split_evpn(&t3);
        assert!(r.as_bytes().is_empty());
        let mut back = Vec::new();
        join_evpn(&k, &r, &mut back);
        assert_eq!(back, t3);

        let odd = [9u8, 50, 1, 2, 3];
        let (k, r) = split_evpn(&odd);
        let mut back = Vec::new();
        join_evpn(&k, &r, &mut back);
        assert_eq!(back, odd);
        let long: Vec<u8> = std::iter::once(9u8)
            .chain(std::iter::once(60))
            .chain(0..60)
            .collect();
        let (k, _) = split_evpn(&long);
        assert!(matches!(k, RouteKey::Heap(_)));
    }

    #[test]
    fn sizes() {
        assert_eq!(std::mem::size_of::<RouteKey>(), 40);
        assert_eq!(std::mem::size_of::<NlriRest>(), 32);
    }
}
