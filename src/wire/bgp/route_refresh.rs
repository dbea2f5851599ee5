//! ROUTE-REFRESH message (RFC 2918 §3) with the RFC 7313 §3.2 message subtypes.
//!
//! Owns: encode/decode of the 4-octet body. Must not: decide when to refresh.
//!
//! ```text
//!  0       7      15      23      31
//! +-------+-------+-------+-------+
//! |      AFI      | Subtyp| SAFI  |
//! +-------+-------+-------+-------+
//! ```
//! RFC 7313 §3.2: subtype 0 = normal route refresh, 1 = Beginning of Route Refresh (BoRR),
//! 2 = End of Route Refresh (EoRR), 255 reserved; RFC 7313 §5: other values "MUST be ignored"
//! by the receiver, so they are decoded and kept.

use super::afi::{Afi, Family, Safi};
use super::message::MessageError;
use super::notification::{NotificationMsg, code};
use crate::wire::reader::Reader;

pub mod subtype {
    pub const NORMAL: u8 = 0;
    pub const BORR: u8 = 1;
    pub const EORR: u8 = 2;
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, arbitrary::Arbitrary, serde::Serialize)]
pub struct RouteRefreshMsg {
    pub family: Family,
    pub subtype: u8,
}

impl RouteRefreshMsg {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        // RFC 7313 §5: "If the length, excluding the fixed-size message header, of the received
        // ROUTE-REFRESH message with Message Subtype 1 and 2 is not 4, then the BGP speaker MUST
        // send a NOTIFICATION message with the Error Code of 'ROUTE-REFRESH Message Error' and
        // the subcode of 'Invalid Message Length'." Applied to all subtypes: the body is 4 octets.
        let len = r.remaining();
        if len != 4 {
            let error = r.error(
                "ROUTE-REFRESH body",
                crate::wire::Reason::BadValue {
                    value: len as u64,
                    expected: "4 octets",
                },
            );
            // The Data field carries the complete message (RFC 7313 §5); we have the body only,
            // the header is re-created by the sender of the NOTIFICATION.
            return Err(MessageError {
                error,
                notification: NotificationMsg::new(code::ROUTE_REFRESH, 1, r.rest().to_vec()),
            });
        }
        let map = |error| MessageError {
            error,
            notification: NotificationMsg::new(code::ROUTE_REFRESH, 1, Vec::new()),
        };
        let afi = Afi(r.u16("AFI").map_err(map)?);
        let subtype = r.u8("route refresh subtype").map_err(map)?;
        let safi = Safi(r.u8("SAFI").map_err(map)?);
        Ok(RouteRefreshMsg {
            family: Family::new(afi, safi),
            subtype,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend(self.family.afi.0.to_be_bytes());
        out.push(self.subtype);
        out.push(self.family.safi.0);
    }
}
