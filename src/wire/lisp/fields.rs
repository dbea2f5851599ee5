//! Small field types shared by the LISP codec: fixed-width bit fields, the EID-record ACT code,
//! the xTR-ID/Site-ID trailer, and helpers for JSON output and `Arbitrary` generation.
//!
//! Owns: value types that are narrower than a byte or need a text form.
//! Must not: know message layouts (those live in `request.rs`, `register.rs`, `ecm.rs`).

use std::fmt;

use arbitrary::{Arbitrary, Unstructured};
use serde::{Serialize, Serializer};

use crate::wire::Reader;
use crate::wire::WireResult;

/// An unsigned field of `N` bits (reserved bits, Map-Version, flow label, ...).
///
/// The value is masked to `N` bits on construction, so every `Bits<N>` re-encodes to the value
/// it holds; reserved bits are kept in one of these so that re-encoding a decoded message gives
/// back the same bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Bits<const N: u32>(u32);

impl<const N: u32> Bits<N> {
    /// All ones in the low `N` bits.
    pub const MASK: u32 = if N >= 32 { u32::MAX } else { (1u32 << N) - 1 };

    /// The low `N` bits of `v` (higher bits are dropped).
    pub const fn new(v: u32) -> Self {
        Bits(v & Self::MASK)
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

impl<const N: u32> fmt::Debug for Bits<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl<const N: u32> Serialize for Bits<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

impl<'a, const N: u32> Arbitrary<'a> for Bits<N> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self::new(u32::arbitrary(u)?))
    }
}

/// EID-record ACT field (3 bits), RFC 9301 §5.4 / §12.3.
///
/// RFC 9301 §5.4: "This 3-bit field describes Negative Map-Reply actions." It is parsed in
/// every record type: RFC 9437 §5 sends ACT = 5 in a Map-Notify to end a subscription.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Act(u8);

impl Act {
    pub const NO_ACTION: Act = Act(0);
    pub const NATIVELY_FORWARD: Act = Act(1);
    pub const SEND_MAP_REQUEST: Act = Act(2);
    pub const DROP_NO_REASON: Act = Act(3);
    pub const DROP_POLICY_DENIED: Act = Act(4);
    pub const DROP_AUTH_FAILURE: Act = Act(5);

    /// The low 3 bits of `v`.
    pub const fn new(v: u8) -> Self {
        Act(v & 0x7)
    }

    pub const fn get(self) -> u8 {
        self.0
    }

    /// The RFC 9301 §12.3 name, or `None` for the unassigned values 6 and 7.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "no-action",
            1 => "natively-forward",
            2 => "send-map-request",
            3 => "drop/no-reason",
            4 => "drop/policy-denied",
            5 => "drop/auth-failure",
            _ => return None,
        })
    }
}

impl fmt::Display for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "act-{}", self.0),
        }
    }
}

impl fmt::Debug for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Act {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'a> Arbitrary<'a> for Act {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Act::new(u8::arbitrary(u)?))
    }
}

/// The xTR-ID / Site-ID trailer of a Map-Request (RFC 9437 §4, I bit) or Map-Register
/// (RFC 9301 §5.6, I bit).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                                                               |
/// +                                                               +
/// |                       xTR-ID (128 bits)                       |
/// +                                                               +
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       Site-ID (64 bits)                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// Interop: lispers.net puts a 16-byte trailer (xTR-ID only) on its Map-Requests
/// (lisp-anchors.md §1.10). When exactly 16 bytes are left we decode that form as
/// `site_id: None` and re-encode it as 16 bytes; our own messages always carry a Site-ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Arbitrary)]
pub struct XtrTrailer {
    #[serde(serialize_with = "ser_u128_hex")]
    pub xtr_id: u128,
    #[serde(serialize_with = "ser_opt_u64_hex")]
    pub site_id: Option<u64>,
}

impl XtrTrailer {
    /// Decodes the trailer from everything left in `r` (16 or 24 bytes).
    pub(crate) fn decode(r: &mut Reader<'_>) -> WireResult<Self> {
        let xtr_id = r.u128("xTR-ID")?;
        let site_id = if r.remaining() == 0 {
            None
        } else {
            Some(r.u64("Site-ID")?)
        };
        r.finish("xTR-ID/Site-ID trailer")?;
        Ok(XtrTrailer { xtr_id, site_id })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.xtr_id.to_be_bytes());
        if let Some(site) = self.site_id {
            out.extend_from_slice(&site.to_be_bytes());
        }
    }
}

/// Lower-case hex text of a byte string.
pub(crate) use crate::wire::types::ser_hex;

/// Whether `mask` is set in the header word `w`.
pub(crate) fn flag(w: u32, mask: u32) -> bool {
    w & mask != 0
}

/// `mask` if `b`, else 0: for building header words from flags.
pub(crate) fn set(b: bool, mask: u32) -> u32 {
    if b { mask } else { 0 }
}

pub(crate) fn ser_u64_hex<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:016x}"))
}

pub(crate) fn ser_u128_hex<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:032x}"))
}

pub(crate) fn ser_opt_u64_hex<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => ser_u64_hex(v, s),
        None => s.serialize_none(),
    }
}

/// A vector of `min..=max` arbitrary elements generated by `f` (counts on the wire are narrow,
/// so generated vectors must stay within what the count field can say).
pub(crate) fn arb_vec<'a, T>(
    u: &mut Unstructured<'a>,
    min: usize,
    max: usize,
    mut f: impl FnMut(&mut Unstructured<'a>) -> arbitrary::Result<T>,
) -> arbitrary::Result<Vec<T>> {
    let n = u.int_in_range(min..=max)?;
    (0..n).map(|_| f(u)).collect()
}

/// Up to `max` arbitrary bytes.
pub(crate) fn arb_bytes(u: &mut Unstructured<'_>, max: usize) -> arbitrary::Result<Vec<u8>> {
    let n = u.int_in_range(0..=max)?.min(u.len());
    Ok(u.bytes(n)?.to_vec())
}

/// A count as written in a narrow count field; callers keep vectors within range (see the
/// `Arbitrary` impls), larger vectors saturate and will not decode back.
pub(crate) fn count_u8(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_mask() {
        assert_eq!(Bits::<12>::new(0xffff).get(), 0xfff);
        assert_eq!(Bits::<32>::MASK, u32::MAX);
        assert_eq!(Act::new(13), Act::DROP_AUTH_FAILURE);
        assert_eq!(Act::new(6).to_string(), "act-6");
    }
}
