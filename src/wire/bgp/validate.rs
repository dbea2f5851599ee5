//! RFC 7606 revised error handling for UPDATE messages, applied to a decoded `UpdateMsg`.
//!
//! Owns: the ordered `Action` (attribute discard < treat-as-withdraw < AFI/SAFI disable <
//! session reset), per-finding classification with the RFC section, and the NOTIFICATION a
//! session reset must carry.
//! Must not: mutate sessions or RIBs — the speaker reads the `Verdict` and acts.
//!
//! Decision table (each row cites where it comes from):
//! | condition                                         | action            | source            |
//! |---------------------------------------------------|-------------------|-------------------|
//! | attribute overruns the attribute section          | treat-as-withdraw | RFC 7606 §4       |
//! |   … and the broken attribute is MP_(UN)REACH      | session reset 3/1 | RFC 7606 §4, §5.3 |
//! | MP_REACH or MP_UNREACH more than once             | session reset 3/1 | RFC 7606 §3(g)    |
//! | any other attribute more than once                | discard repeats   | RFC 7606 §3(g)    |
//! | O/T flags differ from the attribute's definition  | treat-as-withdraw | RFC 7606 §3(c)    |
//! | well-known mandatory attribute missing            | treat-as-withdraw | RFC 7606 §3(d)    |
//! | ORIGIN, AS_PATH, NEXT_HOP, MED malformed          | treat-as-withdraw | RFC 7606 §7.1–7.4 |
//! | LOCAL_PREF malformed (iBGP) / from eBGP           | t-a-w / discard   | RFC 7606 §7.5     |
//! | ATOMIC_AGGREGATE, AGGREGATOR malformed            | attribute discard | RFC 7606 §7.6–7.7 |
//! | AS4_PATH, AS4_AGGREGATOR malformed                | attribute discard | RFC 6793 §6       |
//! | COMMUNITIES, ORIGINATOR_ID, CLUSTER_LIST bad      | treat-as-withdraw | RFC 7606 §7.8–7.10|
//! | MP_REACH/MP_UNREACH NLRI unparseable              | AFI/SAFI disable  | RFC 7606 §5.3, §7.11; RFC 4760 §7 |
//! | MP_REACH next hop length wrong for the family     | treat-as-withdraw | RFC 7606 §7.11    |
//! | EXTENDED_COMMUNITIES, LARGE_COMMUNITY bad length  | treat-as-withdraw | RFC 7606 §7.14, RFC 8092 §6 |
//! | PMSI_TUNNEL malformed                             | treat-as-withdraw | RFC 7606 §2 (default for attributes that affect forwarding) |
//! | unrecognized attribute with O=0 (well-known)      | treat-as-withdraw | RFC 4271 §6.3 3/2, softened per RFC 7606 §2 |
//! | family of MP_(UN)REACH not negotiated             | attribute discard | RFC 4760 §6 (ignore) |
//! | EVPN route type we do not type (6–11, unknown)    | none: kept, relayed | RFC 7606 §5.4   |

use std::net::Ipv4Addr;

use super::afi::{Afi, Family, Safi};
use super::attr::{
    AttrValue, MpNextHop, MpReach, MpUnreach, code, expected_flags, flags, name, segment,
};
use super::message::MessageError;
use super::nlri::NlriList;
use super::notification::{NotificationMsg, code as ncode, update_sub};
use super::update::UpdateMsg;

/// RFC 7606 error-handling approaches, weakest first; the strongest finding wins.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    None,
    AttributeDiscard,
    TreatAsWithdraw,
    AfiSafiDisable,
    SessionReset,
}

/// The session facts RFC 7606 decisions depend on.
#[derive(Clone, Debug, Default)]
pub struct ValidateCtx {
    /// The peer is internal (same AS).
    pub ibgp: bool,
    /// RFC 6793 4-octet AS negotiated (AS4_PATH/AS4_AGGREGATOR are then not expected).
    pub four_octet_as: bool,
    /// Families negotiated with the Multiprotocol capability.
    pub families: Vec<Family>,
    /// The peer's AS, for the RFC 4271 §6.3 first-AS check on eBGP sessions.
    pub peer_as: u32,
    /// Check that an eBGP AS_PATH starts with the peer's AS (off for route servers).
    pub enforce_first_as: bool,
    /// The peer is a member of our confederation (RFC 5065): confed segments are legal.
    pub confed_peer: bool,
}

/// One problem found, with what it means.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct Finding {
    pub action: Action,
    /// Attribute type code the finding is about, if any.
    pub attr: Option<u8>,
    pub attr_name: &'static str,
    /// Index into `UpdateMsg::attrs` (for attribute discard).
    #[serde(skip)]
    pub index: Option<usize>,
    /// The family concerned (AFI/SAFI disable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    pub reason: String,
    pub rfc: &'static str,
    /// The NOTIFICATION RFC 4271 §6.3 associates with this error; sent only on session reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<NotificationMsg>,
}

/// The result of validating one UPDATE.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct Verdict {
    pub action: Action,
    pub findings: Vec<Finding>,
    /// Present when `action` is `SessionReset`: the NOTIFICATION to send.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<NotificationMsg>,
}

impl Verdict {
    pub fn ok() -> Self {
        Verdict {
            action: Action::None,
            findings: Vec::new(),
            notification: None,
        }
    }

    /// A message that failed to decode (header, OPEN, UPDATE sections): session reset.
    pub fn from_message_error(e: &MessageError) -> Self {
        Verdict {
            action: Action::SessionReset,
            findings: vec![Finding {
                action: Action::SessionReset,
                attr: None,
                attr_name: "",
                index: None,
                family: None,
                reason: e.error.to_string(),
                rfc: "RFC 4271 §6; RFC 7606 §4",
                notification: Some(e.notification.clone()),
            }],
            notification: Some(e.notification.clone()),
        }
    }

    /// Attribute indices to drop (attribute discard findings).
    pub fn discarded(&self) -> impl Iterator<Item = usize> + '_ {
        self.findings
            .iter()
            .filter(|f| f.action == Action::AttributeDiscard)
            .filter_map(|f| f.index)
    }

    /// Families to disable (AFI/SAFI disable findings).
    pub fn disabled_families(&self) -> impl Iterator<Item = Family> + '_ {
        self.findings
            .iter()
            .filter(|f| f.action == Action::AfiSafiDisable)
            .filter_map(|f| f.family)
    }
}

struct Acc {
    findings: Vec<Finding>,
}

impl Acc {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        action: Action,
        attr: Option<u8>,
        index: Option<usize>,
        family: Option<Family>,
        reason: impl Into<String>,
        rfc: &'static str,
        notification: Option<NotificationMsg>,
    ) {
        self.findings.push(Finding {
            action,
            attr,
            attr_name: attr.map_or("", name),
            index,
            family,
            reason: reason.into(),
            rfc,
            notification,
        });
    }
}

fn upd(sub: u8, data: Vec<u8>) -> Option<NotificationMsg> {
    Some(NotificationMsg::new(ncode::UPDATE_MESSAGE, sub, data))
}

/// The attribute as it appeared on the wire, for NOTIFICATION data (RFC 4271 §6.3: "the Data
/// field MUST contain the erroneous attribute (type, length, and value)").
fn attr_bytes(u: &UpdateMsg, i: usize) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(a) = u.attrs.get(i) {
        a.encode(
            &super::message::BgpCtx {
                four_octet_as: true,
                ..Default::default()
            },
            &mut out,
        );
    }
    out
}

fn family_of_raw(raw: &[u8]) -> Option<Family> {
    match raw {
        [a, b, s, ..] => Some(Family::new(Afi(u16::from_be_bytes([*a, *b])), Safi(*s))),
        _ => None,
    }
}

/// Apply RFC 7606 to a decoded UPDATE in the session context `ctx`.
pub fn validate(u: &UpdateMsg, ctx: &ValidateCtx) -> Verdict {
    let mut acc = Acc {
        findings: Vec::new(),
    };

    // RFC 7606 §4: "the 'treat-as-withdraw' approach MUST be used ... and the Total Attribute
    // Length MUST be relied upon to enable the beginning of the NLRI field to be located." If
    // the unparseable attribute is MP_REACH/MP_UNREACH its NLRI cannot be located: "the
    // procedures of [RFC4271] and/or [RFC4760] continue to apply, meaning that the 'session
    // reset' approach (or the 'AFI/SAFI disable' approach) MUST be followed."
    if let Some(t) = &u.attrs_tail {
        let tc = t.raw.get(1).copied();
        if matches!(tc, Some(code::MP_REACH_NLRI | code::MP_UNREACH_NLRI)) {
            acc.push(
                Action::SessionReset,
                tc,
                None,
                None,
                format!(
                    "{} overruns the attribute section: {}",
                    tc.map_or("", name),
                    t.error
                ),
                "RFC 7606 §4",
                upd(update_sub::MALFORMED_ATTRIBUTE_LIST, Vec::new()),
            );
        } else {
            acc.push(
                Action::TreatAsWithdraw,
                tc,
                None,
                None,
                format!("attribute overruns the attribute section: {}", t.error),
                "RFC 7606 §4",
                upd(update_sub::ATTRIBUTE_LENGTH_ERROR, t.raw.clone()),
            );
        }
    }

    // RFC 7606 §3(g): duplicates.
    let mut seen = [false; 256];
    let mut repeated = vec![false; u.attrs.len()];
    for (i, a) in u.attrs.iter().enumerate() {
        let slot = seen.get_mut(usize::from(a.type_code));
        let dup = slot.as_ref().is_some_and(|s| **s);
        if let Some(s) = slot {
            *s = true;
        }
        if !dup {
            continue;
        }
        if let Some(r) = repeated.get_mut(i) {
            *r = true;
        }
        if matches!(a.type_code, code::MP_REACH_NLRI | code::MP_UNREACH_NLRI) {
            acc.push(
                Action::SessionReset,
                Some(a.type_code),
                Some(i),
                None,
                format!("{} appears more than once", a.name()),
                "RFC 7606 §3(g)",
                upd(update_sub::MALFORMED_ATTRIBUTE_LIST, Vec::new()),
            );
        } else {
            acc.push(
                Action::AttributeDiscard,
                Some(a.type_code),
                Some(i),
                None,
                format!(
                    "repeated {}: all but the first occurrence discarded",
                    a.name()
                ),
                "RFC 7606 §3(g)",
                None,
            );
        }
    }

    for (i, a) in u.attrs.iter().enumerate() {
        if repeated.get(i).copied().unwrap_or(false) {
            continue; // already handled as a duplicate
        }
        let tc = a.type_code;
        // RFC 7606 §3(c): Optional/Transitive bits in conflict with the definition.
        match expected_flags(tc) {
            Some(want) if a.flags & (flags::OPTIONAL | flags::TRANSITIVE) != want => {
                acc.push(
                    Action::TreatAsWithdraw,
                    Some(tc),
                    Some(i),
                    None,
                    format!(
                        "{} flags 0x{:02x} conflict with its definition (O/T = 0x{want:02x})",
                        a.name(),
                        a.flags
                    ),
                    "RFC 7606 §3(c)",
                    upd(update_sub::ATTRIBUTE_FLAGS_ERROR, attr_bytes(u, i)),
                );
                continue;
            }
            None if a.flags & flags::OPTIONAL == 0 => {
                // RFC 4271 §6.3: unrecognized well-known attribute → 3/2. RFC 7606 §2 asks
                // for the least disruptive approach that is safe: the path is unusable, the
                // session is not.
                acc.push(
                    Action::TreatAsWithdraw,
                    Some(tc),
                    Some(i),
                    None,
                    format!("unrecognized well-known attribute type {tc}"),
                    "RFC 4271 §6.3; RFC 7606 §2",
                    upd(
                        update_sub::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                        attr_bytes(u, i),
                    ),
                );
                continue;
            }
            _ => {}
        }
        match &a.value {
            AttrValue::Malformed { raw, error } => {
                classify_malformed(&mut acc, u, i, tc, raw, error, ctx)
            }
            AttrValue::LocalPref(_) if !ctx.ibgp => acc.push(
                Action::AttributeDiscard,
                Some(tc),
                Some(i),
                None,
                "LOCAL_PREF received from an external peer",
                "RFC 7606 §7.5",
                None,
            ),
            AttrValue::OriginatorId(_) | AttrValue::ClusterList(_) if !ctx.ibgp => acc.push(
                Action::AttributeDiscard,
                Some(tc),
                Some(i),
                None,
                format!("{} received from an external peer", a.name()),
                "RFC 7606 §7.9, §7.10",
                None,
            ),
            AttrValue::As4Path(_) | AttrValue::As4Aggregator(_) if ctx.four_octet_as => acc.push(
                Action::AttributeDiscard,
                Some(tc),
                Some(i),
                None,
                format!("{} received on a 4-octet AS session", a.name()),
                "RFC 6793 §3",
                None,
            ),
            AttrValue::AsPath(segs) => {
                let confed = segs.iter().any(|s| {
                    matches!(
                        s.seg_type,
                        segment::AS_CONFED_SEQUENCE | segment::AS_CONFED_SET
                    )
                });
                if confed && !ctx.ibgp && !ctx.confed_peer {
                    acc.push(
                        Action::TreatAsWithdraw,
                        Some(tc),
                        Some(i),
                        None,
                        "AS_CONFED segment from a peer outside the confederation",
                        "RFC 7606 §7.2; RFC 5065 §5",
                        upd(update_sub::MALFORMED_AS_PATH, Vec::new()),
                    );
                } else if !ctx.ibgp && ctx.enforce_first_as && !ctx.confed_peer {
                    let first = segs
                        .first()
                        .filter(|s| s.seg_type == segment::AS_SEQUENCE)
                        .and_then(|s| s.asns.first());
                    if first != Some(&ctx.peer_as)
                        && (!u.nlri.is_empty() || u.mp_reach().is_some_and(|m| !m.nlri.is_empty()))
                    {
                        acc.push(
                            Action::TreatAsWithdraw,
                            Some(tc),
                            Some(i),
                            None,
                            format!("AS_PATH does not start with the peer AS {}", ctx.peer_as),
                            "RFC 4271 §6.3; RFC 7606 §7.2",
                            upd(update_sub::MALFORMED_AS_PATH, Vec::new()),
                        );
                    }
                }
            }
            AttrValue::NextHop(nh) => {
                // RFC 7606 §7.3 / RFC 4271 §6.3: a semantically incorrect NEXT_HOP (not a unicast
                // address) → treat-as-withdraw.
                let bad = nh.is_unspecified() || nh.is_multicast() || *nh == Ipv4Addr::BROADCAST;
                if bad && !u.nlri.is_empty() {
                    acc.push(
                        Action::TreatAsWithdraw,
                        Some(tc),
                        Some(i),
                        None,
                        format!("NEXT_HOP {nh} is not a unicast address"),
                        "RFC 7606 §7.3",
                        upd(update_sub::INVALID_NEXT_HOP_ATTRIBUTE, attr_bytes(u, i)),
                    );
                }
            }
            AttrValue::MpReach(MpReach { family, nlri, .. })
            | AttrValue::MpUnreach(MpUnreach {
                family,
                withdrawn: nlri,
            }) if !ctx.families.contains(family) => {
                acc.push(
                    Action::AttributeDiscard,
                    Some(tc),
                    Some(i),
                    Some(*family),
                    format!(
                        "{} for {family} which was not negotiated: ignored",
                        a.name()
                    ),
                    "RFC 4760 §6",
                    None,
                );
                note_untyped_evpn(&mut acc, nlri, i, tc);
            }
            AttrValue::MpReach(m) => {
                if !next_hop_fits(m.family, &m.next_hop) && !m.nlri.is_empty() {
                    acc.push(
                        Action::TreatAsWithdraw,
                        Some(tc),
                        Some(i),
                        Some(m.family),
                        format!("next hop length invalid for {}", m.family),
                        "RFC 7606 §7.11",
                        upd(update_sub::OPTIONAL_ATTRIBUTE_ERROR, attr_bytes(u, i)),
                    );
                }
                note_untyped_evpn(&mut acc, &m.nlri, i, tc);
            }
            AttrValue::MpUnreach(m) => note_untyped_evpn(&mut acc, &m.withdrawn, i, tc),
            _ => {}
        }
    }

    // RFC 7606 §3(d): "If any of the well-known mandatory attributes are not present in an
    // UPDATE message, then 'treat-as-withdraw' MUST be used." Mandatory only when the UPDATE
    // announces something; NEXT_HOP only for the IPv4 NLRI field (RFC 4760 §3 makes it
    // irrelevant for MP_REACH-only UPDATEs).
    let announces = !u.nlri.is_empty() || u.mp_reach().is_some_and(|m| !m.nlri.is_empty());
    if announces {
        let mut missing = vec![(code::ORIGIN, "ORIGIN"), (code::AS_PATH, "AS_PATH")];
        if !u.nlri.is_empty() {
            missing.push((code::NEXT_HOP, "NEXT_HOP"));
        }
        for (c, n) in missing {
            if u.attr(c).is_none() {
                acc.push(
                    Action::TreatAsWithdraw,
                    Some(c),
                    None,
                    None,
                    format!("well-known mandatory attribute {n} missing"),
                    "RFC 7606 §3(d)",
                    upd(update_sub::MISSING_WELL_KNOWN_ATTRIBUTE, vec![c]),
                );
            }
        }
    }

    let action = acc
        .findings
        .iter()
        .map(|f| f.action)
        .max()
        .unwrap_or(Action::None);
    let notification = if action == Action::SessionReset {
        acc.findings
            .iter()
            .find(|f| f.action == Action::SessionReset)
            .and_then(|f| f.notification.clone())
    } else {
        None
    };
    Verdict {
        action,
        findings: acc.findings,
        notification,
    }
}

fn next_hop_fits(f: Family, nh: &MpNextHop) -> bool {
    match f {
        // RFC 7432 §7: the next hop is an IPv4 or IPv6 address of the PE/VTEP.
        Family::L2VPN_EVPN => matches!(
            nh,
            MpNextHop::Ipv4(_) | MpNextHop::Ipv6(_) | MpNextHop::Ipv6LinkLocal { .. }
        ),
        // RFC 8950 allows an IPv6 next hop for IPv4 NLRI.
        Family::IPV4_UNICAST => matches!(
            nh,
            MpNextHop::Ipv4(_) | MpNextHop::Ipv6(_) | MpNextHop::Ipv6LinkLocal { .. }
        ),
        Family::IPV6_UNICAST => matches!(nh, MpNextHop::Ipv6(_) | MpNextHop::Ipv6LinkLocal { .. }),
        _ => true,
    }
}

fn note_untyped_evpn(acc: &mut Acc, nlri: &NlriList, i: usize, tc: u8) {
    if let NlriList::Evpn(v) = nlri {
        let n = v
            .iter()
            .filter(|e| matches!(e.route, super::evpn::EvpnRoute::Other { .. }))
            .count();
        if n > 0 {
            // RFC 7606 §5.4: typed NLRI of a type the speaker does not support are not an error
            // for the UPDATE; we keep them raw and relay them.
            acc.push(
                Action::None,
                Some(tc),
                Some(i),
                Some(Family::L2VPN_EVPN),
                format!("{n} EVPN route(s) of a type vmmi does not interpret: kept and relayed as received"),
                "RFC 7606 §5.4",
                None,
            );
        }
    }
}

fn classify_malformed(
    acc: &mut Acc,
    u: &UpdateMsg,
    i: usize,
    tc: u8,
    raw: &[u8],
    error: &crate::wire::WireError,
    ctx: &ValidateCtx,
) {
    let what = format!("{} malformed: {}", name(tc), error);
    let data = attr_bytes(u, i);
    let (action, rfc, sub) = match tc {
        code::ORIGIN => (
            Action::TreatAsWithdraw,
            "RFC 7606 §7.1",
            update_sub::INVALID_ORIGIN_ATTRIBUTE,
        ),
        code::AS_PATH => (
            Action::TreatAsWithdraw,
            "RFC 7606 §7.2",
            update_sub::MALFORMED_AS_PATH,
        ),
        code::NEXT_HOP => (
            Action::TreatAsWithdraw,
            "RFC 7606 §7.3",
            update_sub::ATTRIBUTE_LENGTH_ERROR,
        ),
        code::MED => (
            Action::TreatAsWithdraw,
            "RFC 7606 §7.4",
            update_sub::ATTRIBUTE_LENGTH_ERROR,
        ),
        code::LOCAL_PREF if ctx.ibgp => (
            Action::TreatAsWithdraw,
            "RFC 7606 §7.5",
            update_sub::ATTRIBUTE_LENGTH_ERROR,
        ),
        code::LOCAL_PREF => (
            Action::AttributeDiscard,
            "RFC 7606 §7.5",
            update_sub::ATTRIBUTE_LENGTH_ERROR,
        ),
        code::ATOMIC_AGGREGATE => (
            Action::AttributeDiscard,
            "RFC 7606 §7.6",
            update_sub::ATTRIBUTE_LENGTH_ERROR,
        ),
        code::AGGREGATOR => (
            Action::AttributeDiscard,
            "RFC 7606 §7.7",
            update_sub::ATTRIBUTE_LENGTH_ERROR,
        ),
        code::AS4_PATH | code::AS4_AGGREGATOR => (
            Action::AttributeDiscard,
            "RFC 6793 §6",
            update_sub::OPTIONAL_ATTRIBUTE_ERROR,
        ),
        code::COMMUNITIES => (
            Action::TreatAsWithdraw,
            "RFC 7606 §7.8",
            update_sub::OPTIONAL_ATTRIBUTE_ERROR,
        ),
        code::ORIGINATOR_ID => (
            Action::TreatAsWithdraw,
            "RFC 7606 §7.9",
            update_sub::OPTIONAL_ATTRIBUTE_ERROR,
        ),
        code::CLUSTER_LIST => (
            Action::TreatAsWithdraw,
            "RFC 7606 §7.10",
            update_sub::OPTIONAL_ATTRIBUTE_ERROR,
        ),
        code::EXTENDED_COMMUNITIES => (
            Action::TreatAsWithdraw,
            "RFC 7606 §7.14",
            update_sub::OPTIONAL_ATTRIBUTE_ERROR,
        ),
        code::LARGE_COMMUNITY => (
            Action::TreatAsWithdraw,
            "RFC 8092 §6",
            update_sub::OPTIONAL_ATTRIBUTE_ERROR,
        ),
        code::PMSI_TUNNEL => (
            Action::TreatAsWithdraw,
            "RFC 7606 §2",
            update_sub::OPTIONAL_ATTRIBUTE_ERROR,
        ),
        code::MP_REACH_NLRI | code::MP_UNREACH_NLRI => {
            // RFC 7606 §5.3 / §7.11 with RFC 4760 §7: NLRI that cannot be parsed → AFI/SAFI
            // disable when the family is known and negotiated, otherwise session reset.
            // A family that was never negotiated is ignored whole (RFC 4760 §6), malformed or
            // not; only when even the AFI/SAFI cannot be read is there nothing short of a reset.
            let fam = family_of_raw(raw);
            let (action, family) = match fam {
                Some(f) if ctx.families.contains(&f) => (Action::AfiSafiDisable, Some(f)),
                Some(f) => (Action::AttributeDiscard, Some(f)),
                None => (Action::SessionReset, None),
            };
            acc.push(
                action,
                Some(tc),
                Some(i),
                family,
                what,
                "RFC 7606 §5.3, §7.11; RFC 4760 §7",
                upd(update_sub::OPTIONAL_ATTRIBUTE_ERROR, data),
            );
            return;
        }
        _ => (
            Action::TreatAsWithdraw,
            "RFC 7606 §2",
            update_sub::OPTIONAL_ATTRIBUTE_ERROR,
        ),
    };
    acc.push(action, Some(tc), Some(i), None, what, rfc, upd(sub, data));
}

/// The UPDATE(s) after applying a verdict that is not a session reset: discarded attributes
/// removed; for AFI/SAFI disable, the disabled families' attributes removed (the caller also
/// flushes those families); for treat-as-withdraw, every announced route moved to the withdrawn
/// side. An UPDATE carries one MP_UNREACH_NLRI (RFC 7606 §3(g)), so when the withdrawn MP_REACH
/// routes belong to another family than an MP_UNREACH already present, they go in a second
/// UPDATE. `None` for a session reset.
pub fn apply(u: &UpdateMsg, v: &Verdict) -> Option<Vec<UpdateMsg>> {
    use super::attr::{MpUnreach, PathAttr};
    if v.action == Action::SessionReset {
        return None;
    }
    let discard: Vec<usize> = v.discarded().collect();
    let disabled: Vec<Family> = v.disabled_families().collect();
    let mut out = UpdateMsg {
        withdrawn: u.withdrawn.clone(),
        nlri: u.nlri.clone(),
        ..UpdateMsg::default()
    };
    for (i, a) in u.attrs.iter().enumerate() {
        if discard.contains(&i) {
            continue;
        }
        let fam = match &a.value {
            AttrValue::MpReach(m) => Some(m.family),
            AttrValue::MpUnreach(m) => Some(m.family),
            AttrValue::Malformed { raw, .. }
                if matches!(a.type_code, code::MP_REACH_NLRI | code::MP_UNREACH_NLRI) =>
            {
                family_of_raw(raw)
            }
            _ => None,
        };
        if fam.is_some_and(|f| disabled.contains(&f)) {
            continue;
        }
        out.attrs.push(a.clone());
    }
    // Findings are independent: an UPDATE can disable one family and be treat-as-withdraw for
    // the rest, so treat-as-withdraw applies whenever any finding asks for it (found by the
    // `bgp_update_validate` fuzz target; regression test `taw_applies_alongside_afi_safi_disable`).
    if !v
        .findings
        .iter()
        .any(|f| f.action == Action::TreatAsWithdraw)
    {
        return Some(vec![out]);
    }
    // RFC 7606 §2: "treat-as-withdraw": the routes in the UPDATE are handled as though they had
    // been listed in the Withdrawn Routes field or the MP_UNREACH_NLRI attribute.
    let mut withdrawn = out.withdrawn.clone();
    withdrawn.append(&mut out.nlri);
    let mut unreach: Option<MpUnreach> = None;
    let mut reach_as_unreach: Option<MpUnreach> = None;
    for a in out.attrs.drain(..) {
        match a.value {
            AttrValue::MpReach(m) => {
                reach_as_unreach = Some(MpUnreach {
                    family: m.family,
                    withdrawn: m.nlri,
                })
            }
            AttrValue::MpUnreach(m) if unreach.is_none() => unreach = Some(m),
            _ => {}
        }
    }
    let mp = |m: MpUnreach| {
        PathAttr::new(code::MP_UNREACH_NLRI, AttrValue::MpUnreach(m))
            .fit_length(&super::message::BgpCtx::default())
    };
    let mut extra = None;
    match (unreach.as_mut(), reach_as_unreach) {
        (Some(u), Some(r)) if u.family == r.family => merge_nlri(&mut u.withdrawn, r.withdrawn),
        (Some(_), Some(r)) => {
            extra = Some(UpdateMsg {
                attrs: vec![mp(r)],
                ..UpdateMsg::default()
            })
        }
        (None, Some(r)) => unreach = Some(r),
        (_, None) => {}
    }
    let first = UpdateMsg {
        withdrawn,
        attrs: unreach.into_iter().map(mp).collect(),
        attrs_tail: None,
        nlri: Vec::new(),
    };
    Some(std::iter::once(first).chain(extra).collect())
}

fn merge_nlri(into: &mut NlriList, from: NlriList) {
    match (into, from) {
        (NlriList::Ipv4(a), NlriList::Ipv4(b)) | (NlriList::Ipv6(a), NlriList::Ipv6(b)) => {
            a.extend(b)
        }
        (NlriList::Evpn(a), NlriList::Evpn(b)) => a.extend(b),
        (NlriList::Raw(a), NlriList::Raw(b)) => a.extend(b),
        _ => {}
    }
}
