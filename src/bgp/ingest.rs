//! UPDATE ingest: RFC 7606 validation, then withdrawals and announcements into the RIB.
//!
//! Owns: the order of operations for one received UPDATE and the receive-side eligibility
//! rules (AS loop, RFC 4456 reflection loops). Must not: send anything but the NOTIFICATION a
//! verdict demands (through session.rs), or decide export.
//!
//! Order (RFC 4271 §9, RFC 7606 §2): validate → session reset, or repair (attribute discard,
//! treat-as-withdraw, AFI/SAFI disable) → End-of-RIB → withdrawals → announcements →
//! max-prefix.

use std::sync::Arc;
use std::time::Instant;

use super::{ConnId, Event, Speaker, session};
use crate::rib::key::{NlriRest, RouteKey, prefix_key, split_evpn};
use crate::rib::{Attrs, PeerId};
use crate::wire::bgp::afi::Family;
use crate::wire::bgp::attr::{AttrValue, MpNextHop};
use crate::wire::bgp::nlri::{NlriList, PrefixNlri, encode_prefixes};
use crate::wire::bgp::update::UpdateMsg;
use crate::wire::bgp::validate::{Action, ValidateCtx, apply, validate};

pub(super) fn update(sp: &mut Speaker, now: Instant, peer: PeerId, conn: ConnId, u: UpdateMsg) {
    let Some(p) = sp.peers.get(&peer) else {
        return;
    };
    let Some(nego) = p.nego().cloned() else {
        return;
    };
    let name = p.cfg.name.clone();
    let disabled = p.out.disabled.clone();
    let vctx = ValidateCtx {
        ibgp: nego.ibgp,
        four_octet_as: nego.four_octet_as,
        families: nego
            .families
            .iter()
            .copied()
            .filter(|f| !disabled.contains(f))
            .collect(),
        peer_as: nego.remote_asn,
        // FRR's `enforce-first-as` is on by default; a route server client would turn it off.
        enforce_first_as: !nego.ibgp,
        confed_peer: false,
    };
    let verdict = validate(&u, &vctx);
    let updates = if verdict.findings.is_empty() {
        vec![u]
    } else {
        let findings: Vec<String> = verdict
            .findings
            .iter()
            .map(|f| {
                format!(
                    "{} {}: {} ({})",
                    action_name(f.action),
                    f.attr_name,
                    f.reason,
                    f.rfc
                )
            })
            .collect();
        sp.emit(Event::UpdateError {
            peer: name.clone(),
            action: action_name(verdict.action).to_string(),
            findings,
        });
        if verdict.action == Action::SessionReset {
            let n = verdict.notification.clone().unwrap_or_else(|| {
                crate::wire::bgp::notification::NotificationMsg::new(3, 0, Vec::new())
            });
            session::notify_and_close(
                sp,
                now,
                conn,
                n,
                "malformed UPDATE (RFC 7606 session reset)",
            );
            return;
        }
        // RFC 7606 §2 AFI/SAFI disable (RFC 4760 §7): as if the family had not been
        // negotiated — its routes from this peer go, later UPDATEs for it are ignored.
        for f in verdict.disabled_families() {
            sp.rib.remove_peer(f, peer);
            if let Some(p) = sp.peers.get_mut(&peer)
                && !p.out.disabled.contains(&f)
            {
                p.out.disabled.push(f);
            }
        }
        apply(&u, &verdict).unwrap_or_default()
    };
    for up in updates {
        process(sp, peer, &nego, &up);
    }
    session::check_max_prefix(sp, now, peer, conn);
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::None => "none",
        Action::AttributeDiscard => "attribute-discard",
        Action::TreatAsWithdraw => "treat-as-withdraw",
        Action::AfiSafiDisable => "afi-safi-disable",
        Action::SessionReset => "session-reset",
    }
}

fn process(sp: &mut Speaker, peer: PeerId, nego: &super::Negotiated, u: &UpdateMsg) {
    if let Some(f) = u.end_of_rib() {
        session::eor_received(sp, peer, f);
        return;
    }
    let disabled = sp
        .peers
        .get(&peer)
        .map(|p| p.out.disabled.clone())
        .unwrap_or_default();
    let usable = |f: Family| nego.families.contains(&f) && !disabled.contains(&f);
    // withdrawals: Withdrawn Routes (IPv4 unicast) and MP_UNREACH_NLRI
    if usable(Family::IPV4_UNICAST) && sp.rib.count(peer, Family::IPV4_UNICAST) > 0 {
        for w in &u.withdrawn {
            let key = prefix_route_key(&mut sp.scratch, w);
            sp.rib
                .withdraw(Family::IPV4_UNICAST, &key, peer, w.path_id.unwrap_or(0));
        }
    }
    if let Some(m) = u.mp_unreach()
        && usable(m.family)
    {
        withdraw_list(sp, peer, m.family, &m.withdrawn);
    }
    let reach = u.mp_reach();
    if u.nlri.is_empty() && reach.is_none() {
        return;
    }
    let attrs = Attrs::from_received(&u.attrs, nego.four_octet_as);
    // Receive-side eligibility. RFC 4271 §9.1.2: a route whose AS_PATH contains our AS is not
    // used. RFC 4456 §8: "a router that recognizes the ORIGINATOR_ID attribute SHOULD ignore a
    // route received with its BGP Identifier as the ORIGINATOR_ID", and one whose CLUSTER_LIST
    // contains our CLUSTER_ID "MUST" be ignored. Ignored = treated as withdrawn, so an earlier
    // usable path with the same key does not linger.
    let asn = sp.cfg.asn;
    let eligible = (nego.ibgp || !attrs.as_path_contains(asn))
        && attrs.originator_id != Some(sp.cfg.router_id)
        && !attrs.cluster_list().contains(&sp.cfg.cluster_id);
    if let Some(m) = reach
        && usable(m.family)
    {
        if eligible {
            let a = sp.rib.intern(attrs_with(&attrs, Some(m.next_hop.clone())));
            announce_list(sp, peer, m.family, &m.nlri, &a);
        } else {
            withdraw_list(sp, peer, m.family, &m.nlri);
        }
    }
    if !u.nlri.is_empty() && usable(Family::IPV4_UNICAST) {
        let nh = u.attrs.iter().find_map(|a| match a.value {
            AttrValue::NextHop(ip) => Some(MpNextHop::Ipv4(ip)),
            _ => None,
        });
        let a = sp.rib.intern(attrs_with(&attrs, nh));
        for n in &u.nlri {
            let key = prefix_route_key(&mut sp.scratch, n);
            let id = n.path_id.unwrap_or(0);
            if eligible {
                sp.rib.announce(
                    Family::IPV4_UNICAST,
                    key,
                    peer,
                    id,
                    a.clone(),
                    Default::default(),
                );
            } else {
                sp.rib.withdraw(Family::IPV4_UNICAST, &key, peer, id);
            }
        }
    }
}

fn attrs_with(a: &Attrs, nh: Option<MpNextHop>) -> Attrs {
    Attrs::derive(a.list.clone(), nh)
}

/// The route key of an IPv4/IPv6 prefix: its wire form with host bits cleared.
fn prefix_route_key(scratch: &mut Vec<u8>, n: &PrefixNlri) -> RouteKey {
    scratch.clear();
    encode_prefixes(
        &[PrefixNlri {
            path_id: None,
            prefix: n.prefix.network(),
        }],
        scratch,
    );
    prefix_key(scratch)
}

/// Every NLRI of `l` as (route key, per-path rest, ADD-PATH id or 0).
fn each_nlri(scratch: &mut Vec<u8>, l: &NlriList, mut f: impl FnMut(RouteKey, NlriRest, u32)) {
    match l {
        NlriList::Evpn(v) => {
            for n in v {
                scratch.clear();
                n.route.encode(scratch);
                let (key, rest) = split_evpn(scratch);
                f(key, rest, n.path_id.unwrap_or(0));
            }
        }
        NlriList::Ipv4(v) | NlriList::Ipv6(v) => {
            for n in v {
                f(
                    prefix_route_key(scratch, n),
                    NlriRest::default(),
                    n.path_id.unwrap_or(0),
                );
            }
        }
        NlriList::Raw(_) => {}
    }
}

fn announce_list(sp: &mut Speaker, peer: PeerId, f: Family, l: &NlriList, a: &Arc<Attrs>) {
    let mut scratch = std::mem::take(&mut sp.scratch);
    each_nlri(&mut scratch, l, |key, rest, id| {
        sp.rib.announce(f, key, peer, id, a.clone(), rest)
    });
    sp.scratch = scratch;
}

fn withdraw_list(sp: &mut Speaker, peer: PeerId, f: Family, l: &NlriList) {
    // nothing of this peer in the family: nothing to look up (FRR sends every route back to
    // the speaker it learned it from; they are all ineligible and all absent)
    if sp.rib.count(peer, f) == 0 {
        return;
    }
    let mut scratch = std::mem::take(&mut sp.scratch);
    each_nlri(&mut scratch, l, |key, _, id| {
        sp.rib.withdraw(f, &key, peer, id)
    });
    sp.scratch = scratch;
}
