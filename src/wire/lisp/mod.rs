//! LISP control-plane codec (RFC 9301, RFC 9437, RFC 8060).
//!
//! Owns: LISP control messages, AFI/LCAF addresses, EID/RLOC records, authentication field
//! layout and HMAC computation over the right bytes.
//! Must not: touch sockets, clocks, registrations or any protocol state.
//!
//! Files: `address.rs` (AFI/LCAF), `record.rs` (EID, Locator and Map-Request records),
//! `request.rs` (Map-Request, Map-Reply), `register.rs` (Map-Register, Map-Notify,
//! Map-Notify-Ack, auth field), `ecm.rs` (Encapsulated Control Message), `auth.rs` (HMAC,
//! HKDF, sign/verify), `fields.rs` (bit fields, ACT, xTR-ID trailer).
//!
//! Every message starts with a 4-bit Type (RFC 9301 §5.1, Table 1):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Type=x |          type-specific flags, reserved, counts          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Decoded: 1 Map-Request, 2 Map-Reply, 3 Map-Register, 4 Map-Notify, 5 Map-Notify-Ack,
//! 8 ECM. Everything else (0 reserved, 6 Map-Referral, 7 the de facto Info-Request, 9–14
//! unassigned, 15 shared extension) is a `BadValue` error on the type naming the value.
//!
//! Round trip: every field the wire carries, reserved bits included, is kept, so
//! `encode(decode(b)) == b` for every `b` that decodes, except where noted (Map-Notify
//! record-count quirk is kept too). Counts and presence bits are derived from the values
//! (vector lengths, `Option`s); vectors longer than a count field can say saturate on encode.

pub mod address;
pub mod auth;
pub mod ecm;
pub mod fields;
pub mod record;
pub mod register;
pub mod request;

use arbitrary::{Arbitrary, Unstructured};
use serde::Serialize;

pub use address::{Lcaf, LcafBody, LispAddr, MacAfi};
pub use auth::{AuthError, AuthParams, AuthTag, compute_auth, sign, verify};
pub use ecm::{Ecm, InnerIp, Ipv4Header, Ipv6Header, UdpHeader};
pub use fields::{Act, Bits, XtrTrailer};
pub use record::{EidRecord, Locator, RequestRecord};
pub use register::{AuthField, MapNotify, MapRegister};
pub use request::{MapReply, MapRequest};

use crate::wire::{Reader, WireResult};

pub const MSG_MAP_REQUEST: u8 = 1;
pub const MSG_MAP_REPLY: u8 = 2;
pub const MSG_MAP_REGISTER: u8 = 3;
pub const MSG_MAP_NOTIFY: u8 = 4;
pub const MSG_MAP_NOTIFY_ACK: u8 = 5;
pub const MSG_ECM: u8 = 8;

/// A LISP control message. Serializes with `"type": "map-request"` etc.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LispMsg {
    MapRequest(MapRequest),
    MapReply(MapReply),
    MapRegister(MapRegister),
    MapNotify(MapNotify),
    MapNotifyAck(MapNotify),
    #[serde(rename = "encapsulated-control-message")]
    Ecm(Ecm),
}

/// Decodes one LISP control message (the UDP payload) and requires it to fill `buf`.
pub fn decode(buf: &[u8]) -> WireResult<LispMsg> {
    decode_from(&mut Reader::new(buf), true)
}

/// The message inside an ECM: anything but another ECM (one level only).
pub(crate) fn decode_inner(r: &mut Reader<'_>) -> WireResult<LispMsg> {
    decode_from(r, false)
}

fn decode_from(r: &mut Reader<'_>, allow_ecm: bool) -> WireResult<LispMsg> {
    let start = r.offset();
    let w = r.u32("LISP message header")?;
    let msg_type = u8::try_from(w >> 28).unwrap_or(0);
    Ok(match msg_type {
        MSG_MAP_REQUEST => LispMsg::MapRequest(MapRequest::decode_body(w, r)?),
        MSG_MAP_REPLY => LispMsg::MapReply(MapReply::decode_body(w, r)?),
        MSG_MAP_REGISTER => LispMsg::MapRegister(MapRegister::decode_body(w, r)?),
        MSG_MAP_NOTIFY => LispMsg::MapNotify(MapNotify::decode_body(w, r)?),
        MSG_MAP_NOTIFY_ACK => LispMsg::MapNotifyAck(MapNotify::decode_body(w, r)?),
        MSG_ECM if allow_ecm => LispMsg::Ecm(Ecm::decode_body(w, start, r)?),
        MSG_ECM => {
            return Err(Reader::bad_value_at(
                start,
                "inner LISP message type",
                8,
                "1, 2, 3, 4 or 5 (an ECM inside an ECM is not accepted)",
            ));
        }
        other => {
            return Err(Reader::bad_value_at(
                start,
                "LISP message type",
                u64::from(other),
                "1 Map-Request, 2 Map-Reply, 3 Map-Register, 4 Map-Notify, 5 Map-Notify-Ack or 8 ECM",
            ));
        }
    })
}

impl LispMsg {
    /// The 4-bit message type.
    pub fn msg_type(&self) -> u8 {
        match self {
            LispMsg::MapRequest(_) => MSG_MAP_REQUEST,
            LispMsg::MapReply(_) => MSG_MAP_REPLY,
            LispMsg::MapRegister(_) => MSG_MAP_REGISTER,
            LispMsg::MapNotify(_) => MSG_MAP_NOTIFY,
            LispMsg::MapNotifyAck(_) => MSG_MAP_NOTIFY_ACK,
            LispMsg::Ecm(_) => MSG_ECM,
        }
    }

    /// Appends the encoded message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            LispMsg::MapRequest(m) => m.encode(out),
            LispMsg::MapReply(m) => m.encode(out),
            LispMsg::MapRegister(m) => m.encode(out),
            LispMsg::MapNotify(m) => m.encode_as(MSG_MAP_NOTIFY, out),
            LispMsg::MapNotifyAck(m) => m.encode_as(MSG_MAP_NOTIFY_ACK, out),
            LispMsg::Ecm(m) => m.encode(out),
        }
    }

    /// The encoded message as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// An arbitrary message that is not an ECM (for the inside of an ECM).
    pub(crate) fn arbitrary_inner(u: &mut Unstructured<'_>) -> arbitrary::Result<Self> {
        Self::arbitrary_kind(u, 5)
    }

    fn arbitrary_kind(u: &mut Unstructured<'_>, kinds: usize) -> arbitrary::Result<Self> {
        Ok(match u.choose_index(kinds)? {
            0 => LispMsg::MapRequest(MapRequest::arbitrary(u)?),
            1 => LispMsg::MapReply(MapReply::arbitrary(u)?),
            2 => LispMsg::MapRegister(MapRegister::arbitrary(u)?),
            3 => LispMsg::MapNotify(MapNotify::arbitrary(u)?),
            4 => LispMsg::MapNotifyAck(MapNotify::arbitrary(u)?),
            _ => LispMsg::Ecm(Ecm::arbitrary(u)?),
        })
    }
}

impl<'a> Arbitrary<'a> for LispMsg {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Self::arbitrary_kind(u, 6)
    }
}
