//! UPDATE message (RFC 4271 §4.3), decoded so that RFC 7606 can be applied afterwards.
//!
//! Owns: the three sections (withdrawn routes, path attributes, NLRI), the unparsed tail of the
//! attribute section (RFC 7606 §4), End-of-RIB recognition (RFC 4724 §2), attribute look-ups.
//! Must not: apply error actions — `validate` does; this decoder fails only where RFC 7606
//! leaves no choice but session reset (section lengths, malformed NLRI field).
//!
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! |   Withdrawn Routes (variable)                       |
//! |   Total Path Attribute Length (2 octets)            |
//! |   Path Attributes (variable)                        |
//! |   Network Layer Reachability Information (variable) |
//! +-----------------------------------------------------+
//! ```

use super::afi::Family;
use super::attr::{AttrValue, MpReach, MpUnreach, PathAttr, code};
use super::extcomm::ExtCommunity;
use super::message::{BgpCtx, MessageError};
use super::nlri::{NlriList, PrefixNlri, decode_prefixes, encode_prefixes};
use super::notification::{NotificationMsg, code as ncode, update_sub};
use crate::wire::reader::{Reader, WireError};

/// Bytes at the end of the path attribute section that do not form a complete attribute
/// (RFC 7606 §4: an attribute header or length that overruns the Total Attribute Length).
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct AttrTail {
    #[serde(serialize_with = "crate::wire::bgp::attr::ser_hex")]
    pub raw: Vec<u8>,
    pub error: WireError,
}

#[derive(Clone, PartialEq, Eq, Debug, Default, serde::Serialize)]
pub struct UpdateMsg {
    pub withdrawn: Vec<PrefixNlri>,
    pub attrs: Vec<PathAttr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attrs_tail: Option<AttrTail>,
    pub nlri: Vec<PrefixNlri>,
}

fn update_error(error: WireError, sub: u8) -> MessageError {
    MessageError {
        error,
        notification: NotificationMsg::new(ncode::UPDATE_MESSAGE, sub, Vec::new()),
    }
}

impl UpdateMsg {
    pub fn decode(r: &mut Reader<'_>, ctx: &BgpCtx) -> Result<Self, MessageError> {
        let add_path = ctx.add_path_rx(Family::IPV4_UNICAST);
        // RFC 4271 §6.3: "If the Withdrawn Routes Length or Total Attribute Length is too large
        // (i.e., if Withdrawn Routes Length + Total Attribute Length + 23 exceeds the message
        // Length), then the Error Subcode MUST be set to Malformed Attribute List." RFC 7606 §4
        // keeps session reset for these: the sections cannot be located.
        let list = |e| update_error(e, update_sub::MALFORMED_ATTRIBUTE_LIST);
        let wlen = r.u16("withdrawn routes length").map_err(list)?;
        let mut w = r.sub(usize::from(wlen), "withdrawn routes").map_err(list)?;
        // RFC 7606 §5.3: a withdrawn routes or NLRI field that cannot be parsed (prefix length
        // too long, field ending inside a prefix) leaves no way to know what was announced or
        // withdrawn: session reset with Invalid Network Field (RFC 4271 §6.3).
        let netf = |e| update_error(e, update_sub::INVALID_NETWORK_FIELD);
        let withdrawn = decode_prefixes(&mut w, false, add_path).map_err(netf)?;
        let alen = r.u16("total path attribute length").map_err(list)?;
        let mut a = r.sub(usize::from(alen), "path attributes").map_err(list)?;
        let mut attrs = Vec::new();
        let mut attrs_tail = None;
        while !a.is_empty() {
            let before = a.clone();
            match PathAttr::decode(&mut a, ctx) {
                Ok(attr) => attrs.push(attr),
                Err(error) => {
                    let mut b = before;
                    attrs_tail = Some(AttrTail {
                        raw: b.rest().to_vec(),
                        error,
                    });
                    break;
                }
            }
        }
        let nlri = decode_prefixes(r, false, add_path).map_err(netf)?;
        Ok(UpdateMsg {
            withdrawn,
            attrs,
            attrs_tail,
            nlri,
        })
    }

    pub fn encode(&self, ctx: &BgpCtx, out: &mut Vec<u8>) {
        let wl_at = out.len();
        out.extend([0, 0]);
        encode_prefixes(&self.withdrawn, out);
        let wl = (out.len() - wl_at - 2).min(usize::from(u16::MAX)) as u16;
        if let Some(s) = out.get_mut(wl_at..wl_at + 2) {
            s.copy_from_slice(&wl.to_be_bytes());
        }
        let al_at = out.len();
        out.extend([0, 0]);
        for a in &self.attrs {
            a.encode(ctx, out);
        }
        if let Some(t) = &self.attrs_tail {
            out.extend(&t.raw);
        }
        let al = (out.len() - al_at - 2).min(usize::from(u16::MAX)) as u16;
        if let Some(s) = out.get_mut(al_at..al_at + 2) {
            s.copy_from_slice(&al.to_be_bytes());
        }
        encode_prefixes(&self.nlri, out);
    }

    /// The first attribute of this type (RFC 7606 §3(g): later duplicates are discarded).
    pub fn attr(&self, type_code: u8) -> Option<&PathAttr> {
        self.attrs.iter().find(|a| a.type_code == type_code)
    }

    pub fn mp_reach(&self) -> Option<&MpReach> {
        match self.attr(code::MP_REACH_NLRI).map(|a| &a.value) {
            Some(AttrValue::MpReach(m)) => Some(m),
            _ => None,
        }
    }

    pub fn mp_unreach(&self) -> Option<&MpUnreach> {
        match self.attr(code::MP_UNREACH_NLRI).map(|a| &a.value) {
            Some(AttrValue::MpUnreach(m)) => Some(m),
            _ => None,
        }
    }

    pub fn ext_communities(&self) -> &[ExtCommunity] {
        match self.attr(code::EXTENDED_COMMUNITIES).map(|a| &a.value) {
            Some(AttrValue::ExtCommunities(v)) => v,
            _ => &[],
        }
    }

    /// RFC 4724 §2: End-of-RIB is an UPDATE with no withdrawn routes, no attributes and no NLRI
    /// (IPv4 unicast), or with only an empty MP_UNREACH_NLRI for the family.
    pub fn end_of_rib(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() || self.attrs_tail.is_some() {
            return None;
        }
        match self.attrs.as_slice() {
            [] => Some(Family::IPV4_UNICAST),
            [
                PathAttr {
                    value: AttrValue::MpUnreach(m),
                    ..
                },
            ] if m.withdrawn.is_empty() => Some(m.family),
            _ => None,
        }
    }

    /// The End-of-RIB marker for `family`.
    pub fn eor(family: Family) -> Self {
        if family == Family::IPV4_UNICAST {
            return UpdateMsg::default();
        }
        let withdrawn = match family {
            Family::IPV6_UNICAST => NlriList::Ipv6(Vec::new()),
            Family::L2VPN_EVPN => NlriList::Evpn(Vec::new()),
            _ => NlriList::Raw(Vec::new()),
        };
        UpdateMsg {
            attrs: vec![PathAttr::new(
                code::MP_UNREACH_NLRI,
                AttrValue::MpUnreach(MpUnreach { family, withdrawn }),
            )],
            ..UpdateMsg::default()
        }
    }

    /// Number of routes announced and withdrawn across the NLRI field and MP attributes.
    pub fn route_counts(&self) -> (usize, usize) {
        let ann = self.nlri.len() + self.mp_reach().map_or(0, |m| m.nlri.len());
        let wd = self.withdrawn.len() + self.mp_unreach().map_or(0, |m| m.withdrawn.len());
        (ann, wd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::bgp::Message;

    #[test]
    fn eor_markers_round_trip() {
        let ctx = BgpCtx::default();
        for f in [
            Family::IPV4_UNICAST,
            Family::IPV6_UNICAST,
            Family::L2VPN_EVPN,
        ] {
            let m = Message::Update(UpdateMsg::eor(f));
            let bytes = m.to_bytes(&ctx);
            let (back, n) = Message::decode(&bytes, &ctx).unwrap();
            assert_eq!(n, bytes.len());
            match back {
                Message::Update(u) => assert_eq!(u.end_of_rib(), Some(f)),
                other => panic!("{other:?}"),
            }
        }
        // the EVPN EoR bytes as FRR and GoBGP send them: MP_UNREACH 25/70, flags 0x80
        let evpn = Message::Update(UpdateMsg::eor(Family::L2VPN_EVPN)).to_bytes(&ctx);
        assert_eq!(&evpn[16..], &[0, 29, 2, 0, 0, 0, 6, 0x80, 15, 3, 0, 25, 70]);
    }

    #[test]
    fn attribute_overrun_is_kept_as_tail() {
        // withdrawn 0, attrs 4: ORIGIN IGP (4 bytes) ok, then NLRI; then a second message whose
        // attribute claims 9 bytes of a 4-byte section
        let body = [0u8, 0, 0, 4, 0x40, 1, 9, 0, 24, 10, 0, 0];
        let u = UpdateMsg::decode(&mut Reader::new(&body), &BgpCtx::default()).unwrap();
        let t = u.attrs_tail.clone().unwrap();
        assert_eq!(t.raw, vec![0x40, 1, 9, 0]);
        assert_eq!(t.error.field, "attribute value");
        assert_eq!(u.nlri.len(), 1);
        let mut out = Vec::new();
        u.encode(&BgpCtx::default(), &mut out);
        assert_eq!(out, body);
    }

    #[test]
    fn section_length_errors_are_session_reset() {
        let body = [0u8, 9, 0, 0];
        let e = UpdateMsg::decode(&mut Reader::new(&body), &BgpCtx::default()).unwrap_err();
        assert_eq!((e.notification.code, e.notification.subcode), (3, 1));
        let body = [0u8, 0, 0, 0, 33, 10, 0, 0, 0, 0];
        let e = UpdateMsg::decode(&mut Reader::new(&body), &BgpCtx::default()).unwrap_err();
        assert_eq!((e.notification.code, e.notification.subcode), (3, 10));
    }
}
