//! NOTIFICATION message (RFC 4271 §4.5) with typed error codes and subcodes.
//!
//! Owns: code/subcode constants and names (RFC 4271 §4.5, RFC 4486 and RFC 9384 Cease
//! subcodes, RFC 7313 Route-Refresh errors, RFC 6608 FSM errors), the Shutdown Communication
//! (RFC 9003) reader, encode/decode.
//! Must not: decide when to send one.
//!
//! ```text
//! +---------------+---------------+---------------------------+
//! | Error code    | Error subcode |   Data (variable)         |
//! +---------------+---------------+---------------------------+
//! ```

use crate::wire::reader::{Reader, WireResult};

pub mod code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN_MESSAGE: u8 = 2;
    pub const UPDATE_MESSAGE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;
}

/// RFC 4271 §6.1 Message Header Error subcodes.
pub mod header_sub {
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// RFC 4271 §6.2 OPEN Message Error subcodes (+ RFC 5492 §5 Unsupported Capability, RFC 9234 Role
/// Mismatch).
pub mod open_sub {
    pub const UNSPECIFIC: u8 = 0;
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    pub const ROLE_MISMATCH: u8 = 11;
}

/// RFC 4271 §6.3 UPDATE Message Error subcodes.
pub mod update_sub {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// RFC 4486 / RFC 9384 Cease subcodes.
pub mod cease_sub {
    pub const MAX_PREFIXES_REACHED: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    pub const HARD_RESET: u8 = 9;
    pub const BFD_DOWN: u8 = 10;
}

/// NOTIFICATION: code, subcode and data as sent.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NotificationMsg {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl NotificationMsg {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Self {
        NotificationMsg {
            code,
            subcode,
            data,
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> WireResult<Self> {
        let code = r.u8("error code")?;
        let subcode = r.u8("error subcode")?;
        Ok(NotificationMsg {
            code,
            subcode,
            data: r.rest().to_vec(),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.code);
        out.push(self.subcode);
        out.extend(&self.data);
    }

    pub fn code_name(&self) -> &'static str {
        match self.code {
            code::MESSAGE_HEADER => "Message Header Error",
            code::OPEN_MESSAGE => "OPEN Message Error",
            code::UPDATE_MESSAGE => "UPDATE Message Error",
            code::HOLD_TIMER_EXPIRED => "Hold Timer Expired",
            code::FSM => "Finite State Machine Error",
            code::CEASE => "Cease",
            code::ROUTE_REFRESH => "ROUTE-REFRESH Message Error",
            _ => "Unknown error code",
        }
    }

    pub fn subcode_name(&self) -> &'static str {
        match (self.code, self.subcode) {
            (code::MESSAGE_HEADER, 1) => "Connection Not Synchronized",
            (code::MESSAGE_HEADER, 2) => "Bad Message Length",
            (code::MESSAGE_HEADER, 3) => "Bad Message Type",
            (code::OPEN_MESSAGE, 0) => "Unspecific",
            (code::OPEN_MESSAGE, 1) => "Unsupported Version Number",
            (code::OPEN_MESSAGE, 2) => "Bad Peer AS",
            (code::OPEN_MESSAGE, 3) => "Bad BGP Identifier",
            (code::OPEN_MESSAGE, 4) => "Unsupported Optional Parameter",
            (code::OPEN_MESSAGE, 6) => "Unacceptable Hold Time",
            (code::OPEN_MESSAGE, 7) => "Unsupported Capability",
            (code::OPEN_MESSAGE, 11) => "Role Mismatch",
            (code::UPDATE_MESSAGE, 1) => "Malformed Attribute List",
            (code::UPDATE_MESSAGE, 2) => "Unrecognized Well-known Attribute",
            (code::UPDATE_MESSAGE, 3) => "Missing Well-known Attribute",
            (code::UPDATE_MESSAGE, 4) => "Attribute Flags Error",
            (code::UPDATE_MESSAGE, 5) => "Attribute Length Error",
            (code::UPDATE_MESSAGE, 6) => "Invalid ORIGIN Attribute",
            (code::UPDATE_MESSAGE, 8) => "Invalid NEXT_HOP Attribute",
            (code::UPDATE_MESSAGE, 9) => "Optional Attribute Error",
            (code::UPDATE_MESSAGE, 10) => "Invalid Network Field",
            (code::UPDATE_MESSAGE, 11) => "Malformed AS_PATH",
            (code::FSM, 0) => "Unspecified Error",
            (code::FSM, 1) => "Receive Unexpected Message in OpenSent State",
            (code::FSM, 2) => "Receive Unexpected Message in OpenConfirm State",
            (code::FSM, 3) => "Receive Unexpected Message in Established State",
            (code::CEASE, 1) => "Maximum Number of Prefixes Reached",
            (code::CEASE, 2) => "Administrative Shutdown",
            (code::CEASE, 3) => "Peer De-configured",
            (code::CEASE, 4) => "Administrative Reset",
            (code::CEASE, 5) => "Connection Rejected",
            (code::CEASE, 6) => "Other Configuration Change",
            (code::CEASE, 7) => "Connection Collision Resolution",
            (code::CEASE, 8) => "Out of Resources",
            (code::CEASE, 9) => "Hard Reset",
            (code::CEASE, 10) => "BFD Down",
            (code::ROUTE_REFRESH, 1) => "Invalid Message Length",
            (_, 0) => "Unspecific",
            _ => "Unknown subcode",
        }
    }

    /// RFC 9003 §2: Administrative Shutdown/Reset may carry a UTF-8 message (length octet first).
    pub fn shutdown_message(&self) -> Option<String> {
        if self.code != code::CEASE
            || !matches!(
                self.subcode,
                cease_sub::ADMINISTRATIVE_SHUTDOWN | cease_sub::ADMINISTRATIVE_RESET
            )
        {
            return None;
        }
        let (len, rest) = self.data.split_first()?;
        let text = rest.get(..usize::from(*len))?;
        std::str::from_utf8(text).ok().map(str::to_string)
    }

    /// `3/9 (UPDATE Message Error / Optional Attribute Error)`.
    pub fn describe(&self) -> String {
        format!(
            "{}/{} ({} / {})",
            self.code,
            self.subcode,
            self.code_name(),
            self.subcode_name()
        )
    }
}

impl serde::Serialize for NotificationMsg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("NotificationMsg", 6)?;
        st.serialize_field("code", &self.code)?;
        st.serialize_field("subcode", &self.subcode)?;
        st.serialize_field("code_name", self.code_name())?;
        st.serialize_field("subcode_name", self.subcode_name())?;
        st.serialize_field("data", &crate::wire::types::Hex(&self.data))?;
        st.serialize_field("shutdown_message", &self.shutdown_message())?;
        st.end()
    }
}

impl<'a> arbitrary::Arbitrary<'a> for NotificationMsg {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = u.int_in_range(0..=64usize)?;
        Ok(NotificationMsg {
            code: u.arbitrary()?,
            subcode: u.arbitrary()?,
            data: u.bytes(len)?.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cease_with_shutdown_communication() {
        // 6/2 with RFC 9003 message "maint"
        let bytes = [6u8, 2, 5, b'm', b'a', b'i', b'n', b't'];
        let n = NotificationMsg::decode(&mut Reader::new(&bytes)).unwrap();
        assert_eq!(n.describe(), "6/2 (Cease / Administrative Shutdown)");
        assert_eq!(n.shutdown_message().as_deref(), Some("maint"));
        let mut out = Vec::new();
        n.encode(&mut out);
        assert_eq!(out, bytes);
    }
}
