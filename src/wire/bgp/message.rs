//! BGP message framing (RFC 4271 §4.1) and the message enum.
//!
//! Owns: the 19-octet header (marker, length, type), the maximum message size (4096, or 65535
//! with the RFC 8654 Extended Message capability), the decode context `BgpCtx` negotiated per
//! session, and dispatch to the per-type codecs.
//! Must not: read sockets — `frame_len` tells a stream reader how many bytes one message needs.
//!
//! ```text
//! RFC 4271 §4.1:
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                           Marker (16 octets of 0xff)          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Length               |      Type     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::afi::Family;
use super::notification::{NotificationMsg, header_sub};
use super::open::OpenMsg;
use super::route_refresh::RouteRefreshMsg;
use super::update::UpdateMsg;
use crate::wire::reader::{Reader, WireError};

pub const HEADER_LEN: usize = 19;
pub const MARKER: [u8; 16] = [0xff; 16];
/// RFC 4271 §4.1: "The value of the Length field MUST always be at least 19 and no greater than
/// 4096".
pub const MAX_LEN: usize = 4096;
/// RFC 8654 §4: with the Extended Message capability on both sides, up to 65535 octets (OPEN and
/// KEEPALIVE excepted, which stay ≤ 4096).
pub const MAX_EXTENDED_LEN: usize = 65535;

/// Message type codes (RFC 4271 §4.1, RFC 2918 §3).
pub mod msg_type {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// What the two speakers negotiated, as far as the encoding of messages depends on it.
/// The default is the state before OPEN: 2-octet AS, no ADD-PATH, 4096-octet messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BgpCtx {
    /// RFC 6793: both sides advertised the 4-octet AS capability.
    pub four_octet_as: bool,
    /// RFC 8654: both sides advertised Extended Message.
    pub extended_message: bool,
    /// RFC 7911: families for which we receive (decode) path identifiers.
    pub add_path_rx: Vec<Family>,
}

impl BgpCtx {
    pub fn add_path_rx(&self, f: Family) -> bool {
        self.add_path_rx.contains(&f)
    }

    pub fn max_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_LEN
        } else {
            MAX_LEN
        }
    }
}

/// One BGP message.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    Open(OpenMsg),
    Update(UpdateMsg),
    Notification(NotificationMsg),
    Keepalive,
    RouteRefresh(RouteRefreshMsg),
}

/// A message that could not be decoded, with the NOTIFICATION RFC 4271 §6 prescribes.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct MessageError {
    pub error: WireError,
    pub notification: NotificationMsg,
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (NOTIFICATION {})",
            self.error,
            self.notification.describe()
        )
    }
}

impl std::error::Error for MessageError {}

/// How many bytes the message starting at `buf` occupies, once 19 header bytes are available.
/// `Ok(None)`: need more bytes. `Err`: the header is invalid (RFC 4271 §6.1) and the stream
/// cannot be resynchronized — the session must be reset with the attached NOTIFICATION.
pub fn frame_len(buf: &[u8], ctx: &BgpCtx) -> Result<Option<usize>, MessageError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let mut r = Reader::new(buf);
    let (len, _) = check_header(&mut r, ctx)?;
    Ok(Some(len))
}

fn header_error(error: WireError, sub: u8, data: Vec<u8>) -> MessageError {
    MessageError {
        error,
        notification: NotificationMsg::new(super::notification::code::MESSAGE_HEADER, sub, data),
    }
}

/// Validate the header (RFC 4271 §6.1) and return (length, type).
fn check_header(r: &mut Reader<'_>, ctx: &BgpCtx) -> Result<(usize, u8), MessageError> {
    let hdr = |e: WireError| header_error(e, header_sub::BAD_MESSAGE_LENGTH, Vec::new());
    let marker = r.array::<16>("marker").map_err(hdr)?;
    if marker != MARKER {
        // RFC 4271 §6.1: "If the Marker field of the message header is not as expected, then a
        // synchronization error has occurred and the Error Subcode MUST be set to Connection
        // Not Synchronized."
        let e = Reader::bad_value_at(0, "marker", 0, "16 octets of 0xff");
        return Err(header_error(
            e,
            header_sub::CONNECTION_NOT_SYNCHRONIZED,
            Vec::new(),
        ));
    }
    let len_at = r.offset();
    let len = r.u16("message length").map_err(hdr)?;
    let typ = r.u8("message type").map_err(hdr)?;
    let len_usize = usize::from(len);
    // RFC 4271 §6.1: Bad Message Length if < 19, > 4096 (RFC 8654: 65535 when negotiated, but
    // never for OPEN/KEEPALIVE), or the length is wrong for the type; the Data field is the
    // erroneous Length field.
    let max = match typ {
        msg_type::OPEN | msg_type::KEEPALIVE => MAX_LEN,
        _ => ctx.max_len(),
    };
    let min = match typ {
        msg_type::OPEN => 29,
        msg_type::UPDATE => 23,
        msg_type::NOTIFICATION => 21,
        msg_type::KEEPALIVE => 19,
        msg_type::ROUTE_REFRESH => 23,
        _ => HEADER_LEN,
    };
    let bad_len =
        len_usize < min || len_usize > max || (typ == msg_type::KEEPALIVE && len_usize != 19);
    if bad_len && (msg_type::OPEN..=msg_type::ROUTE_REFRESH).contains(&typ)
        || len_usize < HEADER_LEN
        || len_usize > max
    {
        let e = Reader::bad_value_at(
            len_at,
            "message length",
            u64::from(len),
            "19..=4096 and the size of the message type",
        );
        return Err(header_error(
            e,
            header_sub::BAD_MESSAGE_LENGTH,
            len.to_be_bytes().to_vec(),
        ));
    }
    if !(msg_type::OPEN..=msg_type::ROUTE_REFRESH).contains(&typ) {
        // RFC 4271 §6.1: "If the Type field of the message header is not recognized, then the
        // Error Subcode MUST be set to Bad Message Type. The Data field MUST contain the
        // erroneous Type field."
        let e = Reader::bad_value_at(len_at + 2, "message type", u64::from(typ), "1..=5");
        return Err(header_error(e, header_sub::BAD_MESSAGE_TYPE, vec![typ]));
    }
    Ok((len_usize, typ))
}

impl Message {
    /// Decode exactly one message from the start of `buf`; returns it and the bytes consumed.
    /// UPDATE attribute errors do not fail here: they are recorded in the `UpdateMsg` for
    /// `validate` (RFC 7606). Errors returned here are the session-reset class.
    pub fn decode(buf: &[u8], ctx: &BgpCtx) -> Result<(Message, usize), MessageError> {
        let mut r = Reader::new(buf);
        let (len, typ) = check_header(&mut r, ctx)?;
        let mut body = r.sub(len - HEADER_LEN, "message body").map_err(|e| {
            header_error(
                e,
                header_sub::BAD_MESSAGE_LENGTH,
                (len as u16).to_be_bytes().to_vec(),
            )
        })?;
        let msg = match typ {
            msg_type::OPEN => Message::Open(OpenMsg::decode(&mut body)?),
            msg_type::UPDATE => Message::Update(UpdateMsg::decode(&mut body, ctx)?),
            msg_type::NOTIFICATION => {
                Message::Notification(NotificationMsg::decode(&mut body).map_err(|e| {
                    header_error(
                        e,
                        header_sub::BAD_MESSAGE_LENGTH,
                        (len as u16).to_be_bytes().to_vec(),
                    )
                })?)
            }
            msg_type::KEEPALIVE => Message::Keepalive,
            _ => Message::RouteRefresh(RouteRefreshMsg::decode(&mut body)?),
        };
        Ok((msg, len))
    }

    pub fn type_code(&self) -> u8 {
        match self {
            Message::Open(_) => msg_type::OPEN,
            Message::Update(_) => msg_type::UPDATE,
            Message::Notification(_) => msg_type::NOTIFICATION,
            Message::Keepalive => msg_type::KEEPALIVE,
            Message::RouteRefresh(_) => msg_type::ROUTE_REFRESH,
        }
    }

    /// Append the encoded message (header included) to `out`.
    pub fn encode(&self, ctx: &BgpCtx, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend(MARKER);
        out.extend([0, 0, self.type_code()]);
        match self {
            Message::Open(m) => m.encode(out),
            Message::Update(m) => m.encode(ctx, out),
            Message::Notification(m) => m.encode(out),
            Message::Keepalive => {}
            Message::RouteRefresh(m) => m.encode(out),
        }
        let len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
        if let Some(l) = out.get_mut(start + 16..start + 18) {
            l.copy_from_slice(&len.to_be_bytes());
        }
    }

    pub fn to_bytes(&self, ctx: &BgpCtx) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(ctx, &mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::bgp::notification::code;

    fn keepalive() -> Vec<u8> {
        let mut v = vec![0xff; 16];
        v.extend([0, 19, 4]);
        v
    }

    #[test]
    fn keepalive_round_trip() {
        let (m, n) = Message::decode(&keepalive(), &BgpCtx::default()).unwrap();
        assert_eq!((m.clone(), n), (Message::Keepalive, 19));
        assert_eq!(m.to_bytes(&BgpCtx::default()), keepalive());
    }

    #[test]
    fn header_errors_carry_rfc4271_notifications() {
        let ctx = BgpCtx::default();
        // length 18 → 1/2 with the bad length as data
        let mut b = keepalive();
        b[17] = 18;
        let e = Message::decode(&b, &ctx).unwrap_err();
        assert_eq!(
            (
                e.notification.code,
                e.notification.subcode,
                e.notification.data.clone()
            ),
            (code::MESSAGE_HEADER, 2, vec![0, 18])
        );
        // KEEPALIVE with a body (length 23) → 1/2
        let mut b = keepalive();
        b[17] = 23;
        b.extend([0; 4]);
        assert_eq!(
            Message::decode(&b, &ctx).unwrap_err().notification.subcode,
            2
        );
        // marker not all ones → 1/1
        let mut b = keepalive();
        b[3] = 0;
        assert_eq!(
            Message::decode(&b, &ctx).unwrap_err().notification.subcode,
            1
        );
        // type 7 → 1/3 with the type as data
        let mut b = keepalive();
        b[18] = 7;
        let e = Message::decode(&b, &ctx).unwrap_err();
        assert_eq!((e.notification.subcode, e.notification.data), (3, vec![7]));
        // length 5000 without extended message → 1/2; with it, an UPDATE of 5000 is framed
        let mut b = keepalive();
        b[16..18].copy_from_slice(&5000u16.to_be_bytes());
        b[18] = 2;
        assert_eq!(frame_len(&b, &ctx).unwrap_err().notification.subcode, 2);
        let ext = BgpCtx {
            extended_message: true,
            ..BgpCtx::default()
        };
        assert_eq!(frame_len(&b, &ext).unwrap(), Some(5000));
        // but never an OPEN over 4096
        b[18] = 1;
        assert_eq!(frame_len(&b, &ext).unwrap_err().notification.subcode, 2);
    }

    #[test]
    fn frame_len_waits_for_header() {
        assert_eq!(
            frame_len(&keepalive()[..18], &BgpCtx::default()).unwrap(),
            None
        );
    }
}
