//! Records carried inside LISP messages: the EID-record with its Locator (RLOC) records
//! (RFC 9301 §5.4, shared by Map-Reply, Map-Register, Map-Notify and Map-Notify-Ack and the
//! Map-Request's Map-Reply record) and the Map-Request EID-record (RFC 9301 §5.2, RFC 9437 §4).
//!
//! Owns: record layouts, locator flag bits, the locator count derived from the vector length.
//! Must not: sort, merge or validate locator sets (RFC 9301 §5.5 ordering is the sender's job).

use arbitrary::{Arbitrary, Unstructured};
use serde::Serialize;

use super::address::LispAddr;
use super::fields::{Act, Bits, arb_vec, count_u8};
use crate::wire::{Reader, WireResult};

/// Most locators `Arbitrary` puts in a record (the wire allows 255).
const ARB_MAX_LOCATORS: usize = 4;

/// An EID-record (RFC 9301 §5.4).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                          Record TTL                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Locator Count | EID mask-len  | ACT |A|       Reserved        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | Rsvd  |  Map-Version Number   |       EID-Prefix-AFI          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                          EID-Prefix                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                  Locator records (Locator Count)              |
/// ```
/// The Locator Count is `locators.len()` (at most 255; longer vectors do not round-trip).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct EidRecord {
    /// Minutes; 0 = remove now, 0xffffffff = receiver decides (RFC 9301 §5.4).
    pub ttl: u32,
    pub mask_len: u8,
    /// RFC 9301 §5.4: ACT is for negative Map-Replies, but RFC 9437 §5 uses ACT 5 in a
    /// Map-Notify, so it is parsed in every record.
    pub act: Act,
    /// A bit: authoritative; only an ETR sets it (RFC 9301 §5.4).
    pub authoritative: bool,
    /// The 12 reserved bits after A.
    pub reserved: Bits<12>,
    /// The 4 reserved bits before the Map-Version.
    pub rsvd: Bits<4>,
    /// RFC 9302 §6 Map-Version, 0 = none.
    pub map_version: Bits<12>,
    pub eid: LispAddr,
    pub locators: Vec<Locator>,
}

/// A Locator (RLOC) record (RFC 9301 §5.4).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Priority    |    Weight     |  M Priority   |   M Weight    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |        Unused Flags     |L|p|R|           Loc-AFI             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                             Locator                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Arbitrary)]
pub struct Locator {
    /// 255 = not used for unicast forwarding.
    pub priority: u8,
    pub weight: u8,
    pub m_priority: u8,
    pub m_weight: u8,
    /// The 13 unused flag bits, kept.
    pub unused_flags: Bits<13>,
    /// L: the locator is local to the sender.
    pub local: bool,
    /// p: this locator was RLOC-probed (only in probe replies).
    pub probed: bool,
    /// R: reachable.
    pub reachable: bool,
    pub addr: LispAddr,
}

/// A Map-Request EID-record (RFC 9301 §5.2, RFC 9437 §4).
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |N|  Reserved   | EID mask-len  |        EID-Prefix-AFI         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       EID-Prefix  ...                         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// RFC 9437 §4 (paraphrased): N = 1 asks the Map-Server to notify the xTR of updates to this
/// EID-Prefix (subscribe); registry "Map-Request-Record", bit position 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Arbitrary)]
pub struct RequestRecord {
    /// N: subscribe (RFC 9437).
    pub notify: bool,
    /// The 7 reserved bits after N.
    pub reserved: Bits<7>,
    pub mask_len: u8,
    pub eid: LispAddr,
}

impl EidRecord {
    /// A mapping record as an ETR or a Map-Server sends it: no ACT, the A bit set, nothing
    /// reserved (set what differs on the result).
    pub fn new(
        eid: LispAddr,
        mask_len: u8,
        ttl: u32,
        version: u32,
        locators: Vec<Locator>,
    ) -> Self {
        EidRecord {
            ttl,
            mask_len,
            act: Act::NO_ACTION,
            authoritative: true,
            reserved: Bits::new(0),
            rsvd: Bits::new(0),
            map_version: Bits::new(version),
            eid,
            locators,
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> WireResult<Self> {
        let ttl = r.u32("EID-record TTL")?;
        let count = r.u8("locator count")?;
        let mask_len = r.u8("EID mask-len")?;
        let w = r.u16("EID-record ACT/A/reserved")?;
        let v = r.u16("Map-Version")?;
        let eid = LispAddr::decode(r)?;
        let mut locators = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            locators.push(Locator::decode(r)?);
        }
        Ok(EidRecord {
            ttl,
            mask_len,
            act: Act::new(u8::try_from(w >> 13).unwrap_or(0)),
            authoritative: w & 0x1000 != 0,
            reserved: Bits::new(u32::from(w & 0x0fff)),
            rsvd: Bits::new(u32::from(v >> 12)),
            map_version: Bits::new(u32::from(v & 0x0fff)),
            eid,
            locators,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ttl.to_be_bytes());
        out.push(count_u8(self.locators.len()));
        out.push(self.mask_len);
        let w = (u32::from(self.act.get()) << 13)
            | (u32::from(self.authoritative) << 12)
            | self.reserved.get();
        let v = (self.rsvd.get() << 12) | self.map_version.get();
        out.extend_from_slice(&u16::try_from(w).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&u16::try_from(v).unwrap_or(0).to_be_bytes());
        self.eid.encode(out);
        self.locators.iter().for_each(|l| l.encode(out));
    }
}

impl<'a> Arbitrary<'a> for EidRecord {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(EidRecord {
            ttl: u32::arbitrary(u)?,
            mask_len: u8::arbitrary(u)?,
            act: Act::arbitrary(u)?,
            authoritative: bool::arbitrary(u)?,
            reserved: Bits::arbitrary(u)?,
            rsvd: Bits::arbitrary(u)?,
            map_version: Bits::arbitrary(u)?,
            eid: LispAddr::arbitrary(u)?,
            locators: arb_vec(u, 0, ARB_MAX_LOCATORS, Locator::arbitrary)?,
        })
    }
}

impl Locator {
    /// A unicast locator: priority 1, weight 100, multicast unused (priority 255), reachable;
    /// `local` is the L bit (RFC 9301 §5.4: the locator is the sender's own).
    pub fn new(addr: LispAddr, local: bool) -> Self {
        Locator {
            priority: 1,
            weight: 100,
            m_priority: 255,
            m_weight: 0,
            unused_flags: Bits::new(0),
            local,
            probed: false,
            reachable: true,
            addr,
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> WireResult<Self> {
        let [priority, weight, m_priority, m_weight] = r.array("locator priority/weight")?;
        let flags = r.u16("locator flags")?;
        let addr = LispAddr::decode(r)?;
        Ok(Locator {
            priority,
            weight,
            m_priority,
            m_weight,
            unused_flags: Bits::new(u32::from(flags >> 3)),
            local: flags & 0x4 != 0,
            probed: flags & 0x2 != 0,
            reachable: flags & 0x1 != 0,
            addr,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.priority, self.weight, self.m_priority, self.m_weight]);
        let flags = (self.unused_flags.get() << 3)
            | (u32::from(self.local) << 2)
            | (u32::from(self.probed) << 1)
            | u32::from(self.reachable);
        out.extend_from_slice(&u16::try_from(flags).unwrap_or(0).to_be_bytes());
        self.addr.encode(out);
    }
}

impl RequestRecord {
    pub fn decode(r: &mut Reader<'_>) -> WireResult<Self> {
        let b = r.u8("Map-Request record reserved")?;
        let mask_len = r.u8("EID mask-len")?;
        let eid = LispAddr::decode(r)?;
        Ok(RequestRecord {
            notify: b & 0x80 != 0,
            reserved: Bits::new(u32::from(b & 0x7f)),
            mask_len,
            eid,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let b = (u32::from(self.notify) << 7) | self.reserved.get();
        out.push(u8::try_from(b).unwrap_or(0));
        out.push(self.mask_len);
        self.eid.encode(out);
    }
}
