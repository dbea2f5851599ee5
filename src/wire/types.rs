//! Small value types shared by the BGP and LISP codecs.
//!
//! Owns: `MacAddr` (48-bit IEEE 802 address) with its text form `aa:bb:cc:dd:ee:ff`.
//! Must not: depend on either protocol.

use std::fmt;
use std::str::FromStr;

/// A 48-bit MAC address. Displays and serializes as lower-case `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, arbitrary::Arbitrary)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error parsing a MAC address from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: expected six hex octets like 02:00:00:00:00:01")]
pub struct MacParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacParseError;

    /// Accepts `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` and the LISP/Cisco `aabb.ccdd.eeff` form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex: String = s
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | '.'))
            .collect();
        let sep_ok = s.split([':', '-']).count() == 6 || s.split('.').count() == 3;
        if hex.len() != 12 || !sep_ok || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(MacParseError(s.to_string()));
        }
        let mut out = [0u8; 6];
        for (i, o) in out.iter_mut().enumerate() {
            let pair = hex
                .get(2 * i..2 * i + 2)
                .ok_or_else(|| MacParseError(s.to_string()))?;
            *o = u8::from_str_radix(pair, 16).map_err(|_| MacParseError(s.to_string()))?;
        }
        Ok(MacAddr(out))
    }
}

/// Octets as lower-case hex without separators (`0a0b`), for JSON and logs: `Hex(&bytes)`
/// displays and serializes as that string.
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl serde::Serialize for Hex<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `#[serde(serialize_with = "crate::wire::types::ser_hex")]` for byte fields.
pub fn ser_hex<T: AsRef<[u8]>, S: serde::Serializer>(b: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&Hex(b.as_ref()))
}

impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MacAddr {
    /// From the text forms `FromStr` accepts.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_text_forms() {
        let m = MacAddr([0x02, 0xaa, 0, 0, 0, 1]);
        assert_eq!(m.to_string(), "02:aa:00:00:00:01");
        assert_eq!("02:AA:00:00:00:01".parse::<MacAddr>(), Ok(m));
        assert_eq!("02-aa-00-00-00-01".parse::<MacAddr>(), Ok(m));
        assert_eq!("02aa.0000.0001".parse::<MacAddr>(), Ok(m));
        assert!("02:aa:00:00:00".parse::<MacAddr>().is_err());
        assert!("02:aa:00:00:00:0g".parse::<MacAddr>().is_err());
    }
}
