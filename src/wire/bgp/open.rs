//! OPEN message (RFC 4271 §4.2) with RFC 9072 extended optional parameters.
//!
//! Owns: version, My AS, Hold Time, BGP Identifier, optional parameters (Capabilities typed,
//! others kept), and whether the RFC 9072 extended encoding was used (kept for round trip).
//! Must not: check the values against configuration (the FSM does, RFC 4271 §6.2).
//!
//! ```text
//! RFC 4271 §4.2:                          RFC 9072 §2 (Non-Ext OP Len = Non-Ext OP Type = 255):
//! +-+-+-+-+-+-+-+-+                       +-+-+-+-+-+-+-+-+
//! |    Version    |                       |  Non-Ext OP Len (255)         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+       |  Non-Ext OP Type (255)        |
//! |     My Autonomous System      |       |  Extended Opt. Parm. Length (2)|
//! |           Hold Time           |       |  Parm. Type (1) | Parm. Length (2) | value ...
//! |         BGP Identifier        |
//! | Opt Parm Len  | Optional Parameters (variable): Parm. Type (1) | Parm. Length (1) | value
//! ```

use std::net::Ipv4Addr;

use super::capability::Capability;
use super::message::MessageError;
use super::notification::{NotificationMsg, code, open_sub};
use crate::wire::reader::{Reader, WireError, WireResult};

/// RFC 5492 §4: optional parameter type 2 = Capabilities.
pub const PARAM_CAPABILITIES: u8 = 2;

#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(tag = "param", rename_all = "snake_case")]
pub enum OptParam {
    Capabilities {
        capabilities: Vec<Capability>,
    },
    Unknown {
        param_type: u8,
        #[serde(serialize_with = "crate::wire::bgp::attr::ser_hex")]
        value: Vec<u8>,
    },
}

#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct OpenMsg {
    pub version: u8,
    /// 2-octet My AS (AS_TRANS 23456 when the real AS is in the 4-octet AS capability).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub params: Vec<OptParam>,
    /// RFC 9072 encoding in use (sent when the parameters exceed 255 octets, or as received).
    pub extended_params: bool,
}

impl OpenMsg {
    /// AS_TRANS (RFC 6793 §9).
    pub const AS_TRANS: u16 = 23456;

    /// All capabilities across all Capabilities parameters, in order.
    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.params.iter().flat_map(|p| match p {
            OptParam::Capabilities { capabilities } => capabilities.as_slice(),
            OptParam::Unknown { .. } => &[],
        })
    }

    /// The sender's AS: from the 4-octet AS capability if present (RFC 6793 §3), else My AS.
    pub fn asn(&self) -> u32 {
        self.capabilities()
            .find_map(|c| match c {
                Capability::FourOctetAs { asn } => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, MessageError> {
        // RFC 4271 §6.2: a malformed recognized optional parameter → subcode 0 (Unspecific);
        // a length inconsistency in the fixed part → Bad Message Length is not applicable once
        // framing succeeded, so it is also reported as Unspecific.
        let fail = |error: WireError| MessageError {
            error,
            notification: NotificationMsg::new(
                code::OPEN_MESSAGE,
                open_sub::UNSPECIFIC,
                Vec::new(),
            ),
        };
        Self::decode_inner(r).map_err(fail)
    }

    fn decode_inner(r: &mut Reader<'_>) -> WireResult<Self> {
        let version = r.u8("version")?;
        let my_as = r.u16("my AS")?;
        let hold_time = r.u16("hold time")?;
        let bgp_id = Ipv4Addr::from(r.array::<4>("BGP identifier")?);
        let opt_len = r.u8("optional parameters length")?;
        let extended = opt_len == 255 && r.peek_u8() == Some(255);
        let mut params = Vec::new();
        let mut p = if extended {
            let _non_ext_type = r.u8("non-ext OP type")?;
            let ext_len = r.u16("extended optional parameters length")?;
            r.sub(usize::from(ext_len), "optional parameters")?
        } else {
            r.sub(usize::from(opt_len), "optional parameters")?
        };
        while !p.is_empty() {
            let param_type = p.u8("parameter type")?;
            let len = if extended {
                usize::from(p.u16("parameter length")?)
            } else {
                usize::from(p.u8("parameter length")?)
            };
            let mut v = p.sub(len, "parameter value")?;
            if param_type == PARAM_CAPABILITIES {
                let mut capabilities = Vec::new();
                while !v.is_empty() {
                    capabilities.push(Capability::decode(&mut v)?);
                }
                params.push(OptParam::Capabilities { capabilities });
            } else {
                params.push(OptParam::Unknown {
                    param_type,
                    value: v.rest().to_vec(),
                });
            }
        }
        r.finish("OPEN message")?;
        Ok(OpenMsg {
            version,
            my_as,
            hold_time,
            bgp_id,
            params,
            extended_params: extended,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.version);
        out.extend(self.my_as.to_be_bytes());
        out.extend(self.hold_time.to_be_bytes());
        out.extend(self.bgp_id.octets());
        let mut values: Vec<(u8, Vec<u8>)> = Vec::with_capacity(self.params.len());
        for p in &self.params {
            match p {
                OptParam::Capabilities { capabilities } => {
                    let mut v = Vec::new();
                    capabilities.iter().for_each(|c| c.encode(&mut v));
                    values.push((PARAM_CAPABILITIES, v));
                }
                OptParam::Unknown { param_type, value } => {
                    values.push((*param_type, value.clone()))
                }
            }
        }
        let plain_len: usize = values.iter().map(|(_, v)| 2 + v.len()).sum();
        // RFC 9072 §2: use the extended form when the parameters do not fit, or a single
        // parameter value exceeds 255 octets.
        let extended =
            self.extended_params || plain_len > 255 || values.iter().any(|(_, v)| v.len() > 255);
        if extended {
            let ext_len: usize = values.iter().map(|(_, v)| 3 + v.len()).sum();
            out.extend([255, 255]);
            out.extend((ext_len.min(usize::from(u16::MAX)) as u16).to_be_bytes());
            for (t, v) in values {
                out.push(t);
                out.extend((v.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
                out.extend(v);
            }
        } else {
            out.push(plain_len as u8);
            for (t, v) in values {
                out.push(t);
                out.push(v.len() as u8);
                out.extend(v);
            }
        }
    }
}

impl<'a> arbitrary::Arbitrary<'a> for OpenMsg {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let n = u.int_in_range(0..=4usize)?;
        let mut params = Vec::with_capacity(n);
        for _ in 0..n {
            if u.ratio(1, 6)? {
                let mut param_type: u8 = u.arbitrary()?;
                if param_type == PARAM_CAPABILITIES || param_type == 255 {
                    param_type = 1;
                }
                let len = u.int_in_range(0..=40usize)?;
                params.push(OptParam::Unknown {
                    param_type,
                    value: u.bytes(len)?.to_vec(),
                });
            } else {
                let c = u.int_in_range(0..=6usize)?;
                let capabilities = (0..c).map(|_| u.arbitrary()).collect::<Result<_, _>>()?;
                params.push(OptParam::Capabilities { capabilities });
            }
        }
        let mut m = OpenMsg {
            version: u.arbitrary()?,
            my_as: u.arbitrary()?,
            hold_time: u.arbitrary()?,
            bgp_id: Ipv4Addr::from(u.arbitrary::<u32>()?),
            params,
            extended_params: u.arbitrary()?,
        };
        // canonical: the extended flag is what encode would choose for these parameters
        let mut enc = Vec::new();
        m.encode(&mut enc);
        m.extended_params = enc.get(9) == Some(&255) && enc.get(10) == Some(&255);
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::bgp::Family;

    #[test]
    fn open_round_trip_plain_and_extended() {
        // version 4, AS 65001, hold 90, id 10.0.0.1, one Capabilities param: MP evpn + 4-octet AS
        let body = [
            4u8, 0xfd, 0xe9, 0, 90, 10, 0, 0, 1, 14, 2, 12, 1, 4, 0, 25, 0, 70, 65, 4, 0, 0, 0xfd,
            0xe9,
        ];
        let m = OpenMsg::decode(&mut Reader::new(&body)).unwrap();
        assert_eq!(m.asn(), 65001);
        assert_eq!(
            m.capabilities().next(),
            Some(&Capability::Multiprotocol {
                family: Family::L2VPN_EVPN,
                reserved: 0
            })
        );
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out, body);

        // the same in RFC 9072 form
        let ext = [
            4u8, 0xfd, 0xe9, 0, 90, 10, 0, 0, 1, 255, 255, 0, 15, 2, 0, 12, 1, 4, 0, 25, 0, 70, 65,
            4, 0, 0, 0xfd, 0xe9,
        ];
        let m2 = OpenMsg::decode(&mut Reader::new(&ext)).unwrap();
        assert!(m2.extended_params);
        assert_eq!(m2.params, m.params);
        let mut out = Vec::new();
        m2.encode(&mut out);
        assert_eq!(out, ext);
    }

    #[test]
    fn malformed_capability_gives_open_error_unspecific() {
        let body = [4u8, 0xfd, 0xe9, 0, 90, 10, 0, 0, 1, 4, 2, 2, 65, 0];
        let e = OpenMsg::decode(&mut Reader::new(&body)).unwrap_err();
        assert_eq!((e.notification.code, e.notification.subcode), (2, 0));
        assert_eq!(e.error.field, "4-octet AS capability length");
    }
}
