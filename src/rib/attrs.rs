//! Interned path attributes and the facts best-path selection reads from them.
//!
//! Owns: `Attrs` — one received attribute set (MP_REACH/MP_UNREACH and NEXT_HOP lifted out,
//! AS4_PATH merged into a 4-octet AS_PATH), with the derived values the comparator needs — and
//! the `Interner` that makes every route with the same attributes share one `Arc<Attrs>`.
//! Must not: know about peers, sessions or export policy.
//!
//! One UPDATE carries one attribute set for up to thousands of NLRI; routes from a load of
//! 1M type-2 routes typically share a handful of sets, so a route costs one pointer here.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::wire::bgp::attr::{AsSegment, AttrValue, MpNextHop, PathAttr, code, segment};
use crate::wire::bgp::extcomm::{ExtCommunity, RouteTarget, mac_mobility};
use crate::wire::bgp::message::BgpCtx;

/// One attribute set as stored in the RIB.
#[derive(Debug, PartialEq, Eq)]
pub struct Attrs {
    /// The attributes other than MP_REACH_NLRI, MP_UNREACH_NLRI, NEXT_HOP, AS4_PATH and
    /// AS4_AGGREGATOR, in type code order, AS_PATH and AGGREGATOR in 4-octet form.
    pub list: Vec<PathAttr>,
    /// NEXT_HOP, or the MP_REACH_NLRI next hop (RFC 4760 §3); `None` for local routes that take
    /// the session's address on export.
    pub next_hop: Option<MpNextHop>,
    // ---- derived, read by best path ----
    pub origin: u8,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    /// RFC 4271 §9.1.2.2 a): AS_SET counts 1, confederation segments 0.
    pub as_path_len: u32,
    /// The first AS of the first AS_SEQUENCE (RFC 4271 §9.1.2.2 c: "the neighbor AS").
    pub neighbor_as: Option<u32>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list_len: u32,
    /// RFC 7432 §7.7 MAC Mobility: (sequence, sticky). The lowest sequence when several.
    pub mac_mobility: Option<(u32, bool)>,
}

impl Attrs {
    /// Build from received attributes (`four_octet_as` as negotiated on the session).
    pub fn from_received(attrs: &[PathAttr], four_octet_as: bool) -> Attrs {
        let mut list: Vec<PathAttr> = Vec::with_capacity(attrs.len());
        let mut next_hop = None;
        let mut as4: Option<&Vec<AsSegment>> = None;
        let mut as4_aggr = None;
        for a in attrs {
            match &a.value {
                AttrValue::MpReach(m) => next_hop = Some(m.next_hop.clone()),
                AttrValue::MpUnreach(_) => {}
                AttrValue::NextHop(ip) => {
                    if next_hop.is_none() {
                        next_hop = Some(MpNextHop::Ipv4(*ip));
                    }
                }
                AttrValue::As4Path(s) => as4 = Some(s),
                AttrValue::As4Aggregator(a) => as4_aggr = Some(a.clone()),
                _ => list.push(a.clone()),
            }
        }
        // RFC 6793 §4.2.3: a NEW speaker receiving from an OLD one reconstructs the path from
        // AS_PATH and AS4_PATH; from a NEW speaker AS4_PATH "MUST be discarded" (we drop it).
        if !four_octet_as
            && let Some(as4) = as4
            && let Some(p) = list.iter_mut().find(|a| a.type_code == code::AS_PATH)
            && let AttrValue::AsPath(segs) = &mut p.value
        {
            let old_len = path_len(segs);
            let new_len = path_len(as4);
            if old_len >= new_len {
                let mut keep = old_len - new_len;
                let mut merged = Vec::new();
                for s in segs.iter() {
                    if keep == 0 {
                        break;
                    }
                    let take = if s.seg_type == segment::AS_SET {
                        1
                    } else {
                        s.asns.len() as u32
                    };
                    if take <= keep {
                        merged.push(s.clone());
                        keep -= take;
                    } else {
                        merged.push(AsSegment {
                            seg_type: s.seg_type,
                            asns: s.asns.iter().take(keep as usize).copied().collect(),
                        });
                        keep = 0;
                    }
                }
                merged.extend(as4.iter().cloned());
                *segs = merged;
            }
        }
        // RFC 6793 §4.2.3: "if the AGGREGATOR attribute contains AS_TRANS, the AS4_AGGREGATOR
        // ... is used"; otherwise AS4_AGGREGATOR is ignored. Stored merged, 4-octet.
        if !four_octet_as
            && let Some(a4) = as4_aggr
            && let Some(p) = list.iter_mut().find(|a| a.type_code == code::AGGREGATOR)
            && let AttrValue::Aggregator(a) = &mut p.value
            && a.asn == u32::from(crate::wire::bgp::open::OpenMsg::AS_TRANS)
        {
            *a = a4;
        }
        list.sort_by_key(|a| a.type_code);
        Attrs::derive(list, next_hop)
    }

    /// Build from a list the caller made (local origination, export rewrites).
    pub fn derive(list: Vec<PathAttr>, next_hop: Option<MpNextHop>) -> Attrs {
        let mut a = Attrs {
            list,
            next_hop,
            origin: 2,
            local_pref: None,
            med: None,
            as_path_len: 0,
            neighbor_as: None,
            originator_id: None,
            cluster_list_len: 0,
            mac_mobility: None,
        };
        for p in &a.list {
            match &p.value {
                AttrValue::Origin(o) => a.origin = *o,
                AttrValue::LocalPref(v) => a.local_pref = Some(*v),
                AttrValue::Med(v) => a.med = Some(*v),
                AttrValue::AsPath(segs) => {
                    a.as_path_len = path_len(segs);
                    a.neighbor_as = segs
                        .iter()
                        .find(|s| s.seg_type == segment::AS_SEQUENCE)
                        .and_then(|s| s.asns.first().copied());
                }
                AttrValue::OriginatorId(id) => a.originator_id = Some(*id),
                AttrValue::ClusterList(v) => a.cluster_list_len = v.len() as u32,
                AttrValue::ExtCommunities(v) => a.mac_mobility = mac_mobility(v),
                _ => {}
            }
        }
        a
    }

    pub fn get(&self, type_code: u8) -> Option<&PathAttr> {
        self.list.iter().find(|a| a.type_code == type_code)
    }

    pub fn as_path(&self) -> &[AsSegment] {
        match self.get(code::AS_PATH).map(|a| &a.value) {
            Some(AttrValue::AsPath(s)) => s,
            _ => &[],
        }
    }

    pub fn ext_communities(&self) -> &[ExtCommunity] {
        match self.get(code::EXTENDED_COMMUNITIES).map(|a| &a.value) {
            Some(AttrValue::ExtCommunities(v)) => v,
            _ => &[],
        }
    }

    pub fn cluster_list(&self) -> &[Ipv4Addr] {
        match self.get(code::CLUSTER_LIST).map(|a| &a.value) {
            Some(AttrValue::ClusterList(v)) => v,
            _ => &[],
        }
    }

    pub fn route_targets(&self) -> impl Iterator<Item = &RouteTarget> {
        self.ext_communities().iter().filter_map(|c| match c {
            ExtCommunity::RouteTarget(rt) => Some(rt),
            _ => None,
        })
    }

    /// True when `asn` appears anywhere in the AS_PATH (RFC 4271 §9.1.2: loop detection).
    pub fn as_path_contains(&self, asn: u32) -> bool {
        self.as_path().iter().any(|s| s.asns.contains(&asn))
    }

    /// The next hop as one address (the global one of an IPv6 pair).
    pub fn next_hop_ip(&self) -> Option<IpAddr> {
        match self.next_hop.as_ref()? {
            MpNextHop::Ipv4(a) => Some(IpAddr::V4(*a)),
            MpNextHop::Ipv6(a) => Some(IpAddr::V6(*a)),
            MpNextHop::Ipv6LinkLocal { global, .. } => Some(IpAddr::V6(*global)),
            MpNextHop::Other(_) => None,
        }
    }

    /// The intern key: the canonical encoding (4-octet AS) plus the next hop.
    fn intern_key(&self) -> Vec<u8> {
        let ctx = BgpCtx {
            four_octet_as: true,
            ..BgpCtx::default()
        };
        let mut k = Vec::with_capacity(128);
        for a in &self.list {
            a.encode(&ctx, &mut k);
        }
        if let Some(nh) = &self.next_hop {
            k.push(0xff);
            nh.encode(&mut k);
        }
        k
    }
}

fn path_len(segs: &[AsSegment]) -> u32 {
    segs.iter()
        .map(|s| match s.seg_type {
            segment::AS_SET => 1,
            segment::AS_SEQUENCE => s.asns.len() as u32,
            _ => 0,
        })
        .sum()
}

/// Shares one `Arc<Attrs>` among all routes with equal attributes.
#[derive(Default)]
pub struct Interner {
    map: HashMap<Vec<u8>, Arc<Attrs>, super::Hasher>,
    inserts_since_sweep: usize,
}

impl Interner {
    pub fn intern(&mut self, a: Attrs) -> Arc<Attrs> {
        let key = a.intern_key();
        if let Some(found) = self.map.get(&key) {
            return found.clone();
        }
        self.inserts_since_sweep += 1;
        if self.inserts_since_sweep > self.map.len().max(1024) {
            self.sweep();
        }
        let arc = Arc::new(a);
        self.map.insert(key, arc.clone());
        arc
    }

    /// Drop sets no route uses any more.
    pub fn sweep(&mut self) {
        self.map.retain(|_, a| Arc::strong_count(a) > 1);
        self.inserts_since_sweep = 0;
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(asns: &[u32]) -> AsSegment {
        AsSegment {
            seg_type: segment::AS_SEQUENCE,
            asns: asns.to_vec(),
        }
    }

    #[test]
    fn as4_path_merge_from_old_speaker() {
        // RFC 6793 §4.2.3: AS_PATH 65001 23456 23456, AS4_PATH 4200000001 4200000002
        let attrs = vec![
            PathAttr::new(code::ORIGIN, AttrValue::Origin(0)),
            PathAttr::new(
                code::AS_PATH,
                AttrValue::AsPath(vec![seq(&[65001, 23456, 23456])]),
            ),
            PathAttr::new(
                code::AS4_PATH,
                AttrValue::As4Path(vec![seq(&[4200000001, 4200000002])]),
            ),
        ];
        let a = Attrs::from_received(&attrs, false);
        assert_eq!(
            a.as_path(),
            &[seq(&[65001]), seq(&[4200000001, 4200000002])]
        );
        assert_eq!(a.as_path_len, 3);
        assert_eq!(a.neighbor_as, Some(65001));
        assert!(a.get(code::AS4_PATH).is_none());
    }

    #[test]
    fn interner_shares_and_sweeps() {
        let mk = |lp| {
            Attrs::derive(
                vec![PathAttr::new(code::LOCAL_PREF, AttrValue::LocalPref(lp))],
                None,
            )
        };
        let mut i = Interner::default();
        let a = i.intern(mk(100));
        let b = i.intern(mk(100));
        let c = i.intern(mk(200));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.local_pref, Some(200));
        drop(c);
        i.sweep();
        assert_eq!(i.len(), 1);
    }
}
