//! Address family code points (IANA "Address Family Numbers" and "SAFI Parameters").
//!
//! Owns: `Afi`, `Safi` newtypes with the named values we use, and `Family` (the pair).
//! Must not: carry any per-family behaviour beyond naming.

use std::fmt;

/// Address Family Identifier (2 octets).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, arbitrary::Arbitrary, serde::Serialize,
)]
#[serde(transparent)]
pub struct Afi(pub u16);

impl Afi {
    pub const IPV4: Afi = Afi(1);
    pub const IPV6: Afi = Afi(2);
    /// RFC 7432 §20 / RFC 4761: L2VPN.
    pub const L2VPN: Afi = Afi(25);
}

/// Subsequent Address Family Identifier (1 octet).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, arbitrary::Arbitrary, serde::Serialize,
)]
#[serde(transparent)]
pub struct Safi(pub u8);

impl Safi {
    pub const UNICAST: Safi = Safi(1);
    pub const MULTICAST: Safi = Safi(2);
    /// RFC 7432 §20: EVPN.
    pub const EVPN: Safi = Safi(70);
}

/// An (AFI, SAFI) pair.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, arbitrary::Arbitrary)]
pub struct Family {
    pub afi: Afi,
    pub safi: Safi,
}

impl Family {
    pub const IPV4_UNICAST: Family = Family {
        afi: Afi::IPV4,
        safi: Safi::UNICAST,
    };
    pub const IPV6_UNICAST: Family = Family {
        afi: Afi::IPV6,
        safi: Safi::UNICAST,
    };
    pub const L2VPN_EVPN: Family = Family {
        afi: Afi::L2VPN,
        safi: Safi::EVPN,
    };

    pub const fn new(afi: Afi, safi: Safi) -> Self {
        Family { afi, safi }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Family::IPV4_UNICAST => f.write_str("ipv4-unicast"),
            Family::IPV6_UNICAST => f.write_str("ipv6-unicast"),
            Family::L2VPN_EVPN => f.write_str("l2vpn-evpn"),
            Family { afi, safi } => write!(f, "afi{}-safi{}", afi.0, safi.0),
        }
    }
}

impl serde::Serialize for Family {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
