//! Map-Request (type 1, RFC 9301 §5.2–5.3 with the RFC 9437 §4 I and N bits) and Map-Reply
//! (type 2, RFC 9301 §5.4–5.5).
//!
//! Owns: these two layouts, their flag bits, and the counts derived from vector lengths (IRC,
//! Record Count) and presence bits derived from options (M, I).
//! Must not: decide replies, rate-limit, or check nonces.

use arbitrary::{Arbitrary, Unstructured};
use serde::Serialize;

use super::address::LispAddr;
use super::fields::{
    Bits, XtrTrailer, arb_bytes, arb_vec, count_u8, flag, ser_hex, ser_u64_hex, set,
};
use super::record::{EidRecord, RequestRecord};
use crate::wire::{Reader, WireResult};

/// Most records `Arbitrary` puts in a message (the wire allows 255).
pub(crate) const ARB_MAX_RECORDS: usize = 3;

/// A Map-Request (RFC 9301 §5.2; RFC 9437 §4).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Type=1 |A|M|P|S|p|s|R|I|  Rsvd   |L|D|   IRC   | Record Count  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         Nonce . . .                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         . . . Nonce                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |        Source-EID-AFI         |   Source EID Address  ...     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         ITR-RLOC-AFI 1        |    ITR-RLOC Address 1  ...    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                              ...                              |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |N|  Reserved   | EID mask-len  |        EID-Prefix-AFI         |  (Record Count times)
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       EID-Prefix  ...                         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                   Map-Reply Record  ...  (M = 1)              |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |        xTR-ID (128 bits) + Site-ID (64 bits)  (I = 1)         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// M is `map_reply.is_some()`, I is `xtr.is_some()`, IRC is `itr_rlocs.len() - 1` and Record
/// Count is `records.len()`. RFC 9301 §5.2: IRC is the number of ITR-RLOCs minus 1, and at
/// least one MUST be present — decoding always yields 1..=32 ITR-RLOCs; encoding an empty
/// `itr_rlocs` writes IRC 0 with no address, which does not decode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct MapRequest {
    /// A: authoritative (the destination site should answer).
    pub authoritative: bool,
    /// P: RLOC-probe.
    pub probe: bool,
    /// S: Solicit-Map-Request (SMR, RFC 9301 §6.1).
    pub smr: bool,
    /// p: sent by a PITR.
    pub pitr: bool,
    /// s: SMR-invoked.
    pub smr_invoked: bool,
    /// R (bit 10): reserved; lispers.net uses it as "mobile-node".
    pub r: bool,
    /// The 5 reserved bits 12..16 (lispers.net uses bit 16 for "decent-nat-xtr").
    pub reserved: Bits<5>,
    /// L: local xTR (RFC 9301 §5.2).
    pub local_xtr: bool,
    /// D: don't send a Map-Reply (set on SMRs).
    pub dont_map_reply: bool,
    #[serde(serialize_with = "ser_u64_hex")]
    pub nonce: u64,
    pub source_eid: LispAddr,
    /// 1..=32 ITR-RLOCs.
    pub itr_rlocs: Vec<LispAddr>,
    pub records: Vec<RequestRecord>,
    /// The sender's own mapping (M bit); RFC 9301 §5.3: not to be cached without verification.
    pub map_reply: Option<EidRecord>,
    /// RFC 9437 §4 xTR-ID/Site-ID trailer (I bit).
    pub xtr: Option<XtrTrailer>,
}

const MREQ_A: u32 = 0x0800_0000;
const MREQ_M: u32 = 0x0400_0000;
const MREQ_P: u32 = 0x0200_0000;
const MREQ_S: u32 = 0x0100_0000;
const MREQ_PITR: u32 = 0x0080_0000;
const MREQ_SMR_INVOKED: u32 = 0x0040_0000;
const MREQ_R: u32 = 0x0020_0000;
const MREQ_I: u32 = 0x0010_0000;
const MREQ_L: u32 = 0x0000_4000;
const MREQ_D: u32 = 0x0000_2000;

impl MapRequest {
    /// A Map-Request for one EID-prefix from one ITR-RLOC: every flag off, no source EID, no
    /// piggybacked mapping, no xTR-ID (set what differs on the result).
    pub fn new(nonce: u64, itr_rloc: LispAddr, eid: LispAddr, mask_len: u8) -> Self {
        MapRequest {
            authoritative: false,
            probe: false,
            smr: false,
            pitr: false,
            smr_invoked: false,
            r: false,
            reserved: Bits::new(0),
            local_xtr: false,
            dont_map_reply: false,
            nonce,
            source_eid: LispAddr::None,
            itr_rlocs: vec![itr_rloc],
            records: vec![RequestRecord {
                notify: false,
                reserved: Bits::new(0),
                mask_len,
                eid,
            }],
            map_reply: None,
            xtr: None,
        }
    }

    /// Decodes the body after word 0 (`w`, already read).
    pub(crate) fn decode_body(w: u32, r: &mut Reader<'_>) -> WireResult<Self> {
        let nonce = r.u64("nonce")?;
        let source_eid = LispAddr::decode(r)?;
        let irc = (w >> 8) & 0x1f;
        let mut itr_rlocs = Vec::with_capacity(usize::try_from(irc + 1).unwrap_or(1));
        for _ in 0..=irc {
            itr_rlocs.push(LispAddr::decode(r)?);
        }
        let count = w & 0xff;
        let mut records = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for _ in 0..count {
            records.push(RequestRecord::decode(r)?);
        }
        let map_reply = if flag(w, MREQ_M) {
            Some(EidRecord::decode(r)?)
        } else {
            None
        };
        // RFC 9437 §4 (paraphrased): I set but the trailer missing → log and MUST drop;
        // `XtrTrailer::decode` fails on fewer than 16 bytes.
        let xtr = if flag(w, MREQ_I) {
            Some(XtrTrailer::decode(r)?)
        } else {
            None
        };
        r.finish("Map-Request")?;
        Ok(MapRequest {
            authoritative: flag(w, MREQ_A),
            probe: flag(w, MREQ_P),
            smr: flag(w, MREQ_S),
            pitr: flag(w, MREQ_PITR),
            smr_invoked: flag(w, MREQ_SMR_INVOKED),
            r: flag(w, MREQ_R),
            reserved: Bits::new(w >> 15),
            local_xtr: flag(w, MREQ_L),
            dont_map_reply: flag(w, MREQ_D),
            nonce,
            source_eid,
            itr_rlocs,
            records,
            map_reply,
            xtr,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let irc = u32::try_from(self.itr_rlocs.len().saturating_sub(1)).unwrap_or(0) & 0x1f;
        let w = (1u32 << 28)
            | set(self.authoritative, MREQ_A)
            | set(self.map_reply.is_some(), MREQ_M)
            | set(self.probe, MREQ_P)
            | set(self.smr, MREQ_S)
            | set(self.pitr, MREQ_PITR)
            | set(self.smr_invoked, MREQ_SMR_INVOKED)
            | set(self.r, MREQ_R)
            | set(self.xtr.is_some(), MREQ_I)
            | (self.reserved.get() << 15)
            | set(self.local_xtr, MREQ_L)
            | set(self.dont_map_reply, MREQ_D)
            | (irc << 8)
            | u32::from(count_u8(self.records.len()));
        out.extend_from_slice(&w.to_be_bytes());
        out.extend_from_slice(&self.nonce.to_be_bytes());
        self.source_eid.encode(out);
        self.itr_rlocs.iter().for_each(|a| a.encode(out));
        self.records.iter().for_each(|r| r.encode(out));
        if let Some(m) = &self.map_reply {
            m.encode(out);
        }
        if let Some(x) = &self.xtr {
            x.encode(out);
        }
    }
}

impl<'a> Arbitrary<'a> for MapRequest {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(MapRequest {
            authoritative: bool::arbitrary(u)?,
            probe: bool::arbitrary(u)?,
            smr: bool::arbitrary(u)?,
            pitr: bool::arbitrary(u)?,
            smr_invoked: bool::arbitrary(u)?,
            r: bool::arbitrary(u)?,
            reserved: Bits::arbitrary(u)?,
            local_xtr: bool::arbitrary(u)?,
            dont_map_reply: bool::arbitrary(u)?,
            nonce: u64::arbitrary(u)?,
            source_eid: LispAddr::arbitrary(u)?,
            itr_rlocs: arb_vec(u, 1, 4, LispAddr::arbitrary)?,
            records: arb_vec(u, 0, ARB_MAX_RECORDS, RequestRecord::arbitrary)?,
            map_reply: Option::<EidRecord>::arbitrary(u)?,
            xtr: Option::<XtrTrailer>::arbitrary(u)?,
        })
    }
}

/// A Map-Reply (RFC 9301 §5.4).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Type=2 |P|E|S|          Reserved               | Record Count  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         Nonce . . .                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         . . . Nonce                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                   EID-records (Record Count)                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           LISP-SEC Authentication Data (S = 1, RFC 9303)      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 9301 §5.4: "S: This is the Security bit. When set to 1, the following authentication
/// information will be appended to the end of the Map-Reply." We keep those bytes raw in
/// `lisp_sec_data` (empty unless `security`; bytes after the records with S = 0 are an error).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct MapReply {
    /// P: probe reply.
    pub probe: bool,
    /// E: echo-nonce capable.
    pub echo_nonce: bool,
    /// S: LISP-SEC data appended.
    pub security: bool,
    /// The 17 reserved bits (lispers.net puts a hop count in bits 16..23).
    pub reserved: Bits<17>,
    #[serde(serialize_with = "ser_u64_hex")]
    pub nonce: u64,
    pub records: Vec<EidRecord>,
    #[serde(serialize_with = "ser_hex")]
    pub lisp_sec_data: Vec<u8>,
}

const MREP_P: u32 = 0x0800_0000;
const MREP_E: u32 = 0x0400_0000;
const MREP_S: u32 = 0x0200_0000;

impl MapReply {
    pub(crate) fn decode_body(w: u32, r: &mut Reader<'_>) -> WireResult<Self> {
        let nonce = r.u64("nonce")?;
        let count = w & 0xff;
        let mut records = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for _ in 0..count {
            records.push(EidRecord::decode(r)?);
        }
        let security = flag(w, MREP_S);
        let lisp_sec_data = if security {
            r.rest().to_vec()
        } else {
            Vec::new()
        };
        r.finish("Map-Reply")?;
        Ok(MapReply {
            probe: flag(w, MREP_P),
            echo_nonce: flag(w, MREP_E),
            security,
            reserved: Bits::new(w >> 8),
            nonce,
            records,
            lisp_sec_data,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let w = (2u32 << 28)
            | set(self.probe, MREP_P)
            | set(self.echo_nonce, MREP_E)
            | set(self.security, MREP_S)
            | (self.reserved.get() << 8)
            | u32::from(count_u8(self.records.len()));
        out.extend_from_slice(&w.to_be_bytes());
        out.extend_from_slice(&self.nonce.to_be_bytes());
        self.records.iter().for_each(|r| r.encode(out));
        out.extend_from_slice(&self.lisp_sec_data);
    }
}

impl<'a> Arbitrary<'a> for MapReply {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let probe = bool::arbitrary(u)?;
        let echo_nonce = bool::arbitrary(u)?;
        let security = bool::arbitrary(u)?;
        Ok(MapReply {
            probe,
            echo_nonce,
            security,
            reserved: Bits::arbitrary(u)?,
            nonce: u64::arbitrary(u)?,
            records: arb_vec(u, 0, ARB_MAX_RECORDS, EidRecord::arbitrary)?,
            lisp_sec_data: if security {
                arb_bytes(u, 32)?
            } else {
                Vec::new()
            },
        })
    }
}
