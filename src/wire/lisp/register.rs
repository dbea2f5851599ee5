//! Map-Register (type 3, RFC 9301 §5.6), Map-Notify (type 4) and Map-Notify-Ack (type 5,
//! RFC 9301 §5.7): the three authenticated messages, and their authentication field layout.
//!
//! Owns: these layouts, flag bits, the auth field (`AuthField`) as bytes on the wire.
//! Must not: compute or check HMACs (that is `auth.rs`), track nonces or registrations.

use arbitrary::{Arbitrary, Unstructured};
use serde::Serialize;

use super::fields::{
    Bits, XtrTrailer, arb_bytes, arb_vec, count_u8, flag, ser_hex, ser_u64_hex, set,
};
use super::record::EidRecord;
use super::request::ARB_MAX_RECORDS;
use crate::wire::{Reader, WireResult};

/// Byte offset of Key ID in a Map-Register / Map-Notify / Map-Notify-Ack.
pub const AUTH_KEY_ID_OFFSET: usize = 12;
/// Byte offset of the Authentication Data Length field.
pub const AUTH_LEN_OFFSET: usize = 14;
/// Byte offset of the Authentication Data.
pub const AUTH_DATA_OFFSET: usize = 16;

/// The authentication fields (RFC 9301 §5.6).
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |    Key ID     |  Algorithm ID |  Authentication Data Length   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                     Authentication Data                       ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 6830 had one 16-bit Key ID here; OOR and lispers.net still write it (value 1 = SHA-1,
/// 2 = SHA-256). Those bytes are Key ID 0 + Algorithm ID 1/2 in RFC 9301 terms, so decoding is
/// the same; [`AuthField::legacy_key_id`] gives the 16-bit view.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct AuthField {
    pub key_id: u8,
    pub alg_id: u8,
    /// Authentication Data; its length is the Authentication Data Length field.
    #[serde(serialize_with = "ser_hex")]
    pub data: Vec<u8>,
}

impl AuthField {
    /// The RFC 6830 16-bit Key ID view of Key ID + Algorithm ID.
    pub fn legacy_key_id(&self) -> u16 {
        u16::from_be_bytes([self.key_id, self.alg_id])
    }

    fn decode(r: &mut Reader<'_>) -> WireResult<Self> {
        let key_id = r.u8("Key ID")?;
        let alg_id = r.u8("Algorithm ID")?;
        let len = r.u16("Authentication Data Length")?;
        let data = r.bytes(usize::from(len), "Authentication Data")?.to_vec();
        Ok(AuthField {
            key_id,
            alg_id,
            data,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.key_id);
        out.push(self.alg_id);
        // longer data cannot be expressed; it saturates and will not decode back
        out.extend_from_slice(
            &u16::try_from(self.data.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        out.extend_from_slice(&self.data);
    }
}

impl<'a> Arbitrary<'a> for AuthField {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(AuthField {
            key_id: u8::arbitrary(u)?,
            alg_id: u8::arbitrary(u)?,
            data: arb_bytes(u, 40)?,
        })
    }
}

/// A Map-Register (RFC 9301 §5.6).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Type=3 |P|S|I|        Reserved       |E|T|a|R|M| Record Count  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         Nonce . . .                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         . . . Nonce                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |    Key ID     |  Algorithm ID |  Authentication Data Length   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                     Authentication Data                       ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                   EID-records (Record Count)                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |        xTR-ID (128 bits) + Site-ID (64 bits)  (I = 1)         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// I is `xtr.is_some()`; Record Count is `records.len()`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct MapRegister {
    /// P: proxy Map-Reply wanted.
    pub proxy_reply: bool,
    /// S: LISP-SEC capable.
    pub lisp_sec: bool,
    /// The 12 reserved bits 7..18.
    pub reserved: Bits<12>,
    /// E: EID-notify. lispers.net uses this bit as its "refresh" flag.
    pub eid_notify: bool,
    /// T: use the Record TTL as the registration timeout.
    pub ttl_timeout: bool,
    /// a: merge RLOC-sets of several registrants.
    pub merge: bool,
    /// R: reserved (lispers.net "mobile-node").
    pub r: bool,
    /// M: want a Map-Notify.
    pub want_map_notify: bool,
    #[serde(serialize_with = "ser_u64_hex")]
    pub nonce: u64,
    pub auth: AuthField,
    pub records: Vec<EidRecord>,
    /// xTR-ID/Site-ID (I bit); RFC 9301 §5.6 has configured xTRs set it.
    pub xtr: Option<XtrTrailer>,
}

const MREG_P: u32 = 0x0800_0000;
const MREG_S: u32 = 0x0400_0000;
const MREG_I: u32 = 0x0200_0000;
const MREG_E: u32 = 0x0000_1000;
const MREG_T: u32 = 0x0000_0800;
const MREG_A: u32 = 0x0000_0400;
const MREG_R: u32 = 0x0000_0200;
const MREG_M: u32 = 0x0000_0100;

fn decode_records(count: u32, r: &mut Reader<'_>) -> WireResult<Vec<EidRecord>> {
    let mut records = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for _ in 0..count {
        records.push(EidRecord::decode(r)?);
    }
    Ok(records)
}

impl MapRegister {
    pub(crate) fn decode_body(w: u32, r: &mut Reader<'_>) -> WireResult<Self> {
        let nonce = r.u64("nonce")?;
        let auth = AuthField::decode(r)?;
        let records = decode_records(w & 0xff, r)?;
        let xtr = if flag(w, MREG_I) {
            Some(XtrTrailer::decode(r)?)
        } else {
            None
        };
        r.finish("Map-Register")?;
        Ok(MapRegister {
            proxy_reply: flag(w, MREG_P),
            lisp_sec: flag(w, MREG_S),
            reserved: Bits::new(w >> 13),
            eid_notify: flag(w, MREG_E),
            ttl_timeout: flag(w, MREG_T),
            merge: flag(w, MREG_A),
            r: flag(w, MREG_R),
            want_map_notify: flag(w, MREG_M),
            nonce,
            auth,
            records,
            xtr,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let w = (3u32 << 28)
            | set(self.proxy_reply, MREG_P)
            | set(self.lisp_sec, MREG_S)
            | set(self.xtr.is_some(), MREG_I)
            | (self.reserved.get() << 13)
            | set(self.eid_notify, MREG_E)
            | set(self.ttl_timeout, MREG_T)
            | set(self.merge, MREG_A)
            | set(self.r, MREG_R)
            | set(self.want_map_notify, MREG_M)
            | u32::from(count_u8(self.records.len()));
        out.extend_from_slice(&w.to_be_bytes());
        out.extend_from_slice(&self.nonce.to_be_bytes());
        self.auth.encode(out);
        self.records.iter().for_each(|r| r.encode(out));
        if let Some(x) = &self.xtr {
            x.encode(out);
        }
    }
}

impl<'a> Arbitrary<'a> for MapRegister {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(MapRegister {
            proxy_reply: bool::arbitrary(u)?,
            lisp_sec: bool::arbitrary(u)?,
            reserved: Bits::arbitrary(u)?,
            eid_notify: bool::arbitrary(u)?,
            ttl_timeout: bool::arbitrary(u)?,
            merge: bool::arbitrary(u)?,
            r: bool::arbitrary(u)?,
            want_map_notify: bool::arbitrary(u)?,
            nonce: u64::arbitrary(u)?,
            auth: AuthField::arbitrary(u)?,
            records: arb_vec(u, 0, ARB_MAX_RECORDS, EidRecord::arbitrary)?,
            xtr: Option::<XtrTrailer>::arbitrary(u)?,
        })
    }
}

/// A Map-Notify (type 4) or Map-Notify-Ack (type 5) body (RFC 9301 §5.7).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Type=4/5|             Reserved                 | Record Count  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         Nonce . . .                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         . . . Nonce                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |    Key ID     |  Algorithm ID |  Authentication Data Length   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ~                     Authentication Data                       ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                   EID-records (Record Count)                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 9301 §5.7: "The Map-Notify-Ack message has the same contents as a Map-Notify message."
///
/// lispers.net quirk (lisp-anchors.md §1.6): its Map-Notify-Ack says Record Count = 0 but
/// still carries the EID-records. When the count is 0 and bytes follow the auth data, we
/// decode records until the message ends and set `zero_record_count`, so re-encoding writes
/// Record Count 0 again and gives back the same bytes. With `zero_record_count` false the count
/// is `records.len()`; with it true and no records the field is meaningless (and `Arbitrary`
/// never generates that combination). The same leniency applies to type 4.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct MapNotify {
    /// The 20 reserved bits after Type (the NAT-traversal draft's I and R bits live here).
    pub reserved: Bits<20>,
    #[serde(serialize_with = "ser_u64_hex")]
    pub nonce: u64,
    pub auth: AuthField,
    pub records: Vec<EidRecord>,
    /// The record count on the wire was 0 although records followed (lispers.net).
    pub zero_record_count: bool,
}

impl MapNotify {
    pub(crate) fn decode_body(w: u32, r: &mut Reader<'_>) -> WireResult<Self> {
        let nonce = r.u64("nonce")?;
        let auth = AuthField::decode(r)?;
        let count = w & 0xff;
        let zero_record_count = count == 0 && !r.is_empty();
        let records = if zero_record_count {
            let mut v = Vec::new();
            while !r.is_empty() {
                v.push(EidRecord::decode(r)?);
            }
            v
        } else {
            decode_records(count, r)?
        };
        r.finish("Map-Notify")?;
        Ok(MapNotify {
            reserved: Bits::new(w >> 8),
            nonce,
            auth,
            records,
            zero_record_count,
        })
    }

    /// Encodes as message type `msg_type` (4 Map-Notify or 5 Map-Notify-Ack; only the low 4
    /// bits are used).
    pub fn encode_as(&self, msg_type: u8, out: &mut Vec<u8>) {
        let count = if self.zero_record_count {
            0
        } else {
            count_u8(self.records.len())
        };
        let w = (u32::from(msg_type & 0xf) << 28) | (self.reserved.get() << 8) | u32::from(count);
        out.extend_from_slice(&w.to_be_bytes());
        out.extend_from_slice(&self.nonce.to_be_bytes());
        self.auth.encode(out);
        self.records.iter().for_each(|r| r.encode(out));
    }
}

impl<'a> Arbitrary<'a> for MapNotify {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let reserved = Bits::arbitrary(u)?;
        let nonce = u64::arbitrary(u)?;
        let auth = AuthField::arbitrary(u)?;
        let records = arb_vec(u, 0, ARB_MAX_RECORDS, EidRecord::arbitrary)?;
        let zero_record_count = bool::arbitrary(u)? && !records.is_empty();
        Ok(MapNotify {
            reserved,
            nonce,
            auth,
            records,
            zero_record_count,
        })
    }
}
