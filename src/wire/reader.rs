//! Bounded cursor over borrowed bytes, shared by every decoder in `wire/`.
//!
//! Owns: reading fixed-width integers and length-delimited sub-slices with errors that carry the
//! absolute byte offset in the outermost message and the name of the field being read.
//! Must not: allocate on the success path, panic on any input, or know any protocol.
//!
//! The rule (ARCHITECTURE.md rule 5, after rustls `Reader::sub` and OpenBGPD `ibuf_truncate`):
//! every length-prefixed item is parsed from a `sub` reader that holds exactly `length` bytes,
//! and the item decoder must consume it entirely (`finish`), so a lying length field can never
//! make a decoder read its neighbour's bytes.

use std::fmt;

/// Why a decode failed. Every variant names what was expected so `vmmi decode` can say it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The field needs `needed` bytes but only `available` remain in its enclosing item.
    Truncated { needed: usize, available: usize },
    /// The item's length said it ends here, but `extra` bytes were left unparsed.
    Trailing { extra: usize },
    /// The field holds a value the encoding does not allow; `expected` says what would be legal.
    BadValue { value: u64, expected: &'static str },
}

/// A decode error: where (absolute byte offset), which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WireError {
    pub offset: usize,
    pub field: &'static str,
    pub reason: Reason,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Reason::Truncated { needed, available } => write!(
                f,
                "at byte {}: {}: expected {} byte(s), only {} available",
                self.offset, self.field, needed, available
            ),
            Reason::Trailing { extra } => write!(
                f,
                "at byte {}: {}: {} unexpected trailing byte(s)",
                self.offset, self.field, extra
            ),
            Reason::BadValue { value, expected } => write!(
                f,
                "at byte {}: {}: value {} is invalid, expected {}",
                self.offset, self.field, value, expected
            ),
        }
    }
}

impl std::error::Error for WireError {}

pub type WireResult<T> = Result<T, WireError>;

/// A forward-only cursor. `base` is the absolute offset of `buf[0]` in the outermost buffer.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// A reader whose offsets are reported relative to an enclosing buffer starting `base`
    /// bytes earlier (used when a decoder is handed a slice cut from a larger message).
    pub fn with_base(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    /// Absolute offset of the next unread byte.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// An error at the current position.
    pub fn error(&self, field: &'static str, reason: Reason) -> WireError {
        WireError {
            offset: self.offset(),
            field,
            reason,
        }
    }

    /// A `BadValue` error reported at `offset` (usually the start of the offending field).
    pub fn bad_value_at(
        offset: usize,
        field: &'static str,
        value: u64,
        expected: &'static str,
    ) -> WireError {
        WireError {
            offset,
            field,
            reason: Reason::BadValue { value, expected },
        }
    }

    pub fn bytes(&mut self, n: usize, field: &'static str) -> WireResult<&'a [u8]> {
        let available = self.remaining();
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.buf.get(self.pos..end)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.error(
                field,
                Reason::Truncated {
                    needed: n,
                    available,
                },
            )),
        }
    }

    pub fn array<const N: usize>(&mut self, field: &'static str) -> WireResult<[u8; N]> {
        let s = self.bytes(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub fn u8(&mut self, field: &'static str) -> WireResult<u8> {
        Ok(self.array::<1>(field)?[0])
    }

    pub fn u16(&mut self, field: &'static str) -> WireResult<u16> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// A 24-bit big-endian value (EVPN labels / VNIs, LISP Instance-ID low bits).
    pub fn u24(&mut self, field: &'static str) -> WireResult<u32> {
        let [a, b, c] = self.array(field)?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    pub fn u32(&mut self, field: &'static str) -> WireResult<u32> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub fn u64(&mut self, field: &'static str) -> WireResult<u64> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    pub fn u128(&mut self, field: &'static str) -> WireResult<u128> {
        Ok(u128::from_be_bytes(self.array(field)?))
    }

    /// The unread bytes, without consuming them.
    pub fn peek_rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Peek at the next byte without consuming it.
    pub fn peek_u8(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// A reader over exactly the next `n` bytes; `self` skips past them.
    pub fn sub(&mut self, n: usize, field: &'static str) -> WireResult<Reader<'a>> {
        let base = self.offset();
        let s = self.bytes(n, field)?;
        Ok(Reader {
            buf: s,
            pos: 0,
            base,
        })
    }

    /// Everything not yet read; the reader is then empty.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        s
    }

    /// Fails unless every byte of this (sub-)reader was consumed.
    pub fn finish(&self, field: &'static str) -> WireResult<()> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(self.error(field, Reason::Trailing { extra })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_reader_bounds_and_offsets() {
        let data = [1u8, 2, 3, 4, 5, 6];
        let mut r = Reader::new(&data);
        assert_eq!(r.u8("a").ok(), Some(1));
        let mut s = r.sub(3, "item").unwrap_or_else(|_| Reader::new(&[]));
        assert_eq!(s.offset(), 1);
        assert_eq!(s.u16("x").ok(), Some(0x0203));
        // the sub-reader cannot read past its own end even though the parent has bytes
        let e = s.u16("y").err();
        assert_eq!(
            e,
            Some(WireError {
                offset: 3,
                field: "y",
                reason: Reason::Truncated {
                    needed: 2,
                    available: 1
                }
            })
        );
        assert_eq!(
            s.finish("item").err(),
            Some(WireError {
                offset: 3,
                field: "item",
                reason: Reason::Trailing { extra: 1 }
            })
        );
        assert_eq!(r.offset(), 4);
        assert_eq!(r.u24("z").err().map(|e| e.offset), Some(4));
        assert_eq!(r.rest(), &[5, 6]);
        assert!(r.finish("msg").is_ok());
    }

    #[test]
    fn huge_length_does_not_overflow() {
        let mut r = Reader::new(&[0u8; 4]);
        let _ = r.u8("a");
        assert!(matches!(
            r.bytes(usize::MAX, "big").err().map(|e| e.reason),
            Some(Reason::Truncated {
                needed: usize::MAX,
                available: 3
            })
        ));
    }

    #[test]
    fn display_names_offset_and_field() {
        let e = Reader::bad_value_at(38, "MAC address length", 40, "48");
        assert_eq!(
            e.to_string(),
            "at byte 38: MAC address length: value 40 is invalid, expected 48"
        );
    }
}
