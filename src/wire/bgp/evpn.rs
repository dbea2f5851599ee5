//! EVPN NLRI (RFC 7432 §7, RFC 9136 §3): the route types carried under AFI 25 / SAFI 70.
//!
//! Owns: `EvpnRoute` and one struct per route type 1–5, the Ethernet Segment Identifier (`Esi`,
//! RFC 7432 §5) and the 24-bit `Label` field; their decode/encode, FRR-style text and JSON.
//! Route types 6–11 (RFC 9251, RFC 9572) and unassigned types are kept raw in
//! `EvpnRoute::Other` and re-encoded byte for byte.
//! Must not: decide whether a label is a VNI or an MPLS label (that depends on the
//! Encapsulation community, RFC 8365 §5.1.3; `Label` offers both readings), decide RFC 7606
//! actions (that is `validate`), or allocate while decoding route types 1–5.
//!
//! Every route is decoded from a sub-reader bounded by its Length octet and must consume it
//! exactly (`Reader::finish`), so a wrong length is reported at the route that carries it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::ser::SerializeStruct;

use super::rd::RouteDistinguisher;
use crate::wire::{MacAddr, Reader, WireResult};

// Field names used in errors (they are what `vmmi decode` prints).
const F_ROUTE_TYPE: &str = "EVPN route type";
const F_ROUTE_LENGTH: &str = "EVPN route length";
const F_ROUTE: &str = "EVPN route";
const F_ESI: &str = "ESI";
const F_ETAG: &str = "Ethernet tag ID";
const F_MAC_LEN: &str = "MAC address length";
const F_MAC: &str = "MAC address";
const F_IP_LEN: &str = "IP address length";
const F_IP: &str = "IP address";
const F_LABEL: &str = "MPLS label";
const F_LABEL1: &str = "MPLS label1";
const F_LABEL2: &str = "MPLS label2";
const F_ORIG_LEN: &str = "originating router's IP address length";
const F_ORIG: &str = "originating router's IP address";
const F_PREFIX_LEN: &str = "IP prefix length";
const F_PREFIX: &str = "IP prefix";
const F_GW: &str = "gateway IP address";

// ---------------------------------------------------------------------------------------------
// Label
// ---------------------------------------------------------------------------------------------

/// The raw 3-octet MPLS Label field of an EVPN route.
///
/// ```text
/// RFC 7432 §7: MPLS Label (3 octets) = 20-bit label value + 4 low-order bits (BOS etc.)
/// RFC 8365 §5.1.3: with VXLAN/NVGRE the whole 24-bit field carries the VNI/VSID.
/// ```
/// The value is kept as the raw 24-bit field; `vni()` and `mpls_label()` read it either way.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, serde::Serialize)]
#[serde(transparent)]
pub struct Label(pub u32);

impl Label {
    pub const MAX: u32 = 0x00ff_ffff;

    /// The field read as a VXLAN VNI (RFC 8365 §5.1.3): all 24 bits.
    pub fn vni(&self) -> u32 {
        self.0 & Self::MAX
    }

    /// The field read as an MPLS label (RFC 7432 §7): the high-order 20 bits.
    pub fn mpls_label(&self) -> u32 {
        (self.0 & Self::MAX) >> 4
    }

    pub fn decode(r: &mut Reader<'_>, field: &'static str) -> WireResult<Self> {
        r.u24(field).map(Label)
    }

    /// Writes the low 24 bits; anything above is dropped.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let [_, a, b, c] = self.0.to_be_bytes();
        out.extend_from_slice(&[a, b, c]);
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.vni())
    }
}

impl<'a> arbitrary::Arbitrary<'a> for Label {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        u.int_in_range(0..=Self::MAX).map(Label)
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (0, Some(4))
    }
}

// ---------------------------------------------------------------------------------------------
// ESI
// ---------------------------------------------------------------------------------------------

/// Ethernet Segment Identifier, 10 octets (RFC 7432 §5).
///
/// ```text
/// +---+---+---+---+---+---+---+---+---+---+
/// | T |          ESI Value (9 octets)      |
/// +---+---+---+---+---+---+---+---+---+---+
/// T=0  arbitrary 9 octets (all-zero = single-homed)
/// T=1  CE LACP System MAC (6) | CE LACP Port Key (2) | 0x00
/// T=2  Root Bridge MAC (6)    | Root Bridge Priority (2) | 0x00
/// T=3  System MAC (6)         | Local Discriminator (3)
/// T=4  Router ID (4)          | Local Discriminator (4) | 0x00
/// T=5  AS number (4)          | Local Discriminator (4) | 0x00
/// ```
/// The trailing octets the RFC says to set to zero are kept (`reserved`) so re-encoding is
/// byte-exact even when a peer sends something else there.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Esi {
    Arbitrary {
        value: [u8; 9],
    },
    Lacp {
        system_mac: MacAddr,
        port_key: u16,
        reserved: u8,
    },
    Bridged {
        root_bridge_mac: MacAddr,
        priority: u16,
        reserved: u8,
    },
    /// `local_discriminator` is 24 bits on the wire.
    MacBased {
        system_mac: MacAddr,
        local_discriminator: u32,
    },
    RouterId {
        router_id: Ipv4Addr,
        local_discriminator: u32,
        reserved: u8,
    },
    AsBased {
        asn: u32,
        local_discriminator: u32,
        reserved: u8,
    },
    /// Types 6–255 (unassigned), kept raw.
    Unknown {
        esi_type: u8,
        value: [u8; 9],
    },
}

impl Default for Esi {
    fn default() -> Self {
        Esi::ZERO
    }
}

impl Esi {
    pub const LEN: usize = 10;
    /// The single-homed ESI (type 0, all zero).
    pub const ZERO: Esi = Esi::Arbitrary { value: [0; 9] };

    pub fn is_zero(&self) -> bool {
        *self == Esi::ZERO
    }

    pub fn esi_type(&self) -> u8 {
        match *self {
            Esi::Arbitrary { .. } => 0,
            Esi::Lacp { .. } => 1,
            Esi::Bridged { .. } => 2,
            Esi::MacBased { .. } => 3,
            Esi::RouterId { .. } => 4,
            Esi::AsBased { .. } => 5,
            Esi::Unknown { esi_type, .. } => esi_type,
        }
    }

    /// Interprets 10 octets; infallible.
    #[inline(always)]
    pub fn from_bytes(b: [u8; 10]) -> Self {
        // Whole-word conversions (no byte-by-byte rebuilds): this runs once per EVPN route.
        let [t, value @ ..] = b;
        // type 0 (and the all-zero ESI of single-homed VTEPs) is by far the most common
        if t == 0 {
            return Esi::Arbitrary { value };
        }
        let [m @ .., _, _, _] = value;
        let mac = MacAddr(m);
        // the 9 value octets as one big-endian integer, low 72 bits
        let mut w = [0u8; 16];
        if let Some(tail) = w.get_mut(7..) {
            tail.copy_from_slice(&value);
        }
        let w = u128::from_be_bytes(w);
        match t {
            0 => Esi::Arbitrary { value },
            1 => Esi::Lacp {
                system_mac: mac,
                port_key: (w >> 8) as u16,
                reserved: w as u8,
            },
            2 => Esi::Bridged {
                root_bridge_mac: mac,
                priority: (w >> 8) as u16,
                reserved: w as u8,
            },
            3 => Esi::MacBased {
                system_mac: mac,
                local_discriminator: (w as u32) & 0x00ff_ffff,
            },
            4 => Esi::RouterId {
                router_id: Ipv4Addr::from((w >> 40) as u32),
                local_discriminator: (w >> 8) as u32,
                reserved: w as u8,
            },
            5 => Esi::AsBased {
                asn: (w >> 40) as u32,
                local_discriminator: (w >> 8) as u32,
                reserved: w as u8,
            },
            esi_type => Esi::Unknown { esi_type, value },
        }
    }

    /// The 10 wire octets. A `MacBased` discriminator above 24 bits is truncated to 24.
    pub fn to_bytes(&self) -> [u8; 10] {
        let mac6_u16_u8 = |t: u8, m: MacAddr, x: u16, r: u8| {
            let [a, b, c, d, e, f] = m.0;
            let [g, h] = x.to_be_bytes();
            [t, a, b, c, d, e, f, g, h, r]
        };
        let u32_u32_u8 = |t: u8, x: u32, y: u32, r: u8| {
            let [a, b, c, d] = x.to_be_bytes();
            let [e, f, g, h] = y.to_be_bytes();
            [t, a, b, c, d, e, f, g, h, r]
        };
        match *self {
            Esi::Arbitrary { value: v } => prepend(0, v),
            Esi::Unknown { esi_type, value: v } => prepend(esi_type, v),
            Esi::Lacp {
                system_mac,
                port_key,
                reserved,
            } => mac6_u16_u8(1, system_mac, port_key, reserved),
            Esi::Bridged {
                root_bridge_mac,
                priority,
                reserved,
            } => mac6_u16_u8(2, root_bridge_mac, priority, reserved),
            Esi::MacBased {
                system_mac,
                local_discriminator,
            } => {
                let [a, b, c, d, e, f] = system_mac.0;
                let [_, g, h, i] = local_discriminator.to_be_bytes();
                [3, a, b, c, d, e, f, g, h, i]
            }
            Esi::RouterId {
                router_id,
                local_discriminator,
                reserved,
            } => u32_u32_u8(4, u32::from(router_id), local_discriminator, reserved),
            Esi::AsBased {
                asn,
                local_discriminator,
                reserved,
            } => u32_u32_u8(5, asn, local_discriminator, reserved),
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> WireResult<Self> {
        r.array::<10>(F_ESI).map(Self::from_bytes)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
}

fn prepend(t: u8, v: [u8; 9]) -> [u8; 10] {
    let [a, b, c, d, e, f, g, h, i] = v;
    [t, a, b, c, d, e, f, g, h, i]
}

impl fmt::Display for Esi {
    /// Ten colon-separated hex octets, as FRR prints (`00:00:00:00:00:00:00:00:00:00`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.to_bytes().iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Error parsing an ESI from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid ESI {0:?}: expected ten colon-separated hex octets like 00:11:22:33:44:55:66:77:88:99"
)]
pub struct EsiParseError(pub String);

impl FromStr for Esi {
    type Err = EsiParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || EsiParseError(s.to_string());
        let mut out = [0u8; 10];
        let mut parts = s.split(':');
        for o in out.iter_mut() {
            let p = parts.next().ok_or_else(err)?;
            if p.len() != 2 {
                return Err(err());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        match parts.next() {
            None => Ok(Esi::from_bytes(out)),
            Some(_) => Err(err()),
        }
    }
}

impl serde::Serialize for Esi {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'a> arbitrary::Arbitrary<'a> for Esi {
    /// Only canonical values: types 0–5 are generated typed (3 times in 4), `Unknown` only with
    /// types 6–255, and a `MacBased` discriminator fits in 24 bits.
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let t = if u.ratio(3u8, 4)? {
            u.int_in_range(0u8..=5)?
        } else {
            u.arbitrary()?
        };
        let v: [u8; 9] = u.arbitrary()?;
        Ok(Esi::from_bytes(prepend(t, v)))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (9, Some(11))
    }
}

// ---------------------------------------------------------------------------------------------
// IP address helpers
// ---------------------------------------------------------------------------------------------

/// Reads a length octet (in bits) and the address it announces: 32 or 128, or 0 (no address)
/// when `allow_zero`; any other value is a `BadValue` at the length octet.
fn read_len_ip(
    r: &mut Reader<'_>,
    len_field: &'static str,
    ip_field: &'static str,
    allow_zero: bool,
) -> WireResult<Option<IpAddr>> {
    let off = r.offset();
    match r.u8(len_field)? {
        0 if allow_zero => Ok(None),
        32 => Ok(Some(IpAddr::V4(Ipv4Addr::from(r.array::<4>(ip_field)?)))),
        128 => Ok(Some(IpAddr::V6(Ipv6Addr::from(r.array::<16>(ip_field)?)))),
        n => Err(Reader::bad_value_at(
            off,
            len_field,
            n.into(),
            if allow_zero {
                "0, 32 or 128"
            } else {
                "32 or 128"
            },
        )),
    }
}

/// The Originating Router's IP of types 3 and 4: length 32 or 128 only.
fn read_originator(r: &mut Reader<'_>) -> WireResult<IpAddr> {
    let off = r.offset();
    // RFC 7432 §7.3: "the IP Address Length field [...] is either 32 or 128" (likewise §7.4).
    match read_len_ip(r, F_ORIG_LEN, F_ORIG, false)? {
        Some(ip) => Ok(ip),
        None => Err(Reader::bad_value_at(off, F_ORIG_LEN, 0, "32 or 128")),
    }
}

fn ip_bits(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn ip_len(ip: &IpAddr) -> usize {
    match ip {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 16,
    }
}

fn write_ip(out: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}

fn write_len_ip(out: &mut Vec<u8>, ip: &IpAddr) {
    out.push(ip_bits(ip));
    write_ip(out, ip);
}

fn arbitrary_ip(u: &mut arbitrary::Unstructured<'_>, v6: bool) -> arbitrary::Result<IpAddr> {
    Ok(if v6 {
        IpAddr::V6(Ipv6Addr::from(u.arbitrary::<[u8; 16]>()?))
    } else {
        IpAddr::V4(Ipv4Addr::from(u.arbitrary::<[u8; 4]>()?))
    })
}

// ---------------------------------------------------------------------------------------------
// Route types
// ---------------------------------------------------------------------------------------------

/// Route type 1, Ethernet Auto-Discovery (RFC 7432 §7.1). Value length 25.
///
/// ```text
/// +---------------------------------------+
/// |  Route Distinguisher (RD) (8 octets)  |
/// +---------------------------------------+
/// |Ethernet Segment Identifier (10 octets)|
/// +---------------------------------------+
/// |  Ethernet Tag ID (4 octets)           |
/// +---------------------------------------+
/// |  MPLS Label (3 octets)                |
/// +---------------------------------------+
/// ```
/// An Ethernet Tag of 0xFFFFFFFF (MAX-ET) marks the per-ES route (RFC 7432 §8.2).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, arbitrary::Arbitrary)]
pub struct EthernetAdRoute {
    pub rd: RouteDistinguisher,
    pub esi: Esi,
    pub ethernet_tag: u32,
    pub label: Label,
}

impl EthernetAdRoute {
    pub const VALUE_LEN: usize = 25;

    /// Parses the route value (after Type and Length). The caller checks the reader is empty.
    pub fn decode_value(r: &mut Reader<'_>) -> WireResult<Self> {
        Ok(EthernetAdRoute {
            rd: RouteDistinguisher::decode(r)?,
            esi: Esi::decode(r)?,
            ethernet_tag: r.u32(F_ETAG)?,
            label: Label::decode(r, F_LABEL)?,
        })
    }

    pub fn encode_value(&self, out: &mut Vec<u8>) {
        self.rd.encode(out);
        self.esi.encode(out);
        out.extend_from_slice(&self.ethernet_tag.to_be_bytes());
        self.label.encode(out);
    }
}

/// Route type 2, MAC/IP Advertisement (RFC 7432 §7.2).
///
/// ```text
/// +---------------------------------------+
/// |  RD (8 octets)                        |
/// +---------------------------------------+
/// |Ethernet Segment Identifier (10 octets)|
/// +---------------------------------------+
/// |  Ethernet Tag ID (4 octets)           |
/// +---------------------------------------+
/// |  MAC Address Length (1 octet)         |
/// +---------------------------------------+
/// |  MAC Address (6 octets)               |
/// +---------------------------------------+
/// |  IP Address Length (1 octet)          |
/// +---------------------------------------+
/// |  IP Address (0, 4, or 16 octets)      |
/// +---------------------------------------+
/// |  MPLS Label1 (3 octets)               |
/// +---------------------------------------+
/// |  MPLS Label2 (0 or 3 octets)          |
/// +---------------------------------------+
/// ```
/// With symmetric IRB (RFC 9135 §5.1) `label2` carries the L3 VNI.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, arbitrary::Arbitrary)]
pub struct MacIpRoute {
    pub rd: RouteDistinguisher,
    pub esi: Esi,
    pub ethernet_tag: u32,
    pub mac: MacAddr,
    pub ip: Option<IpAddr>,
    pub label1: Label,
    pub label2: Option<Label>,
}

impl MacIpRoute {
    /// A placeholder to decode into (`decode_regular_into`): all fields zero.
    pub const EMPTY: MacIpRoute = MacIpRoute {
        rd: RouteDistinguisher::As2 { asn: 0, number: 0 },
        esi: Esi::ZERO,
        ethernet_tag: 0,
        mac: MacAddr::ZERO,
        ip: None,
        label1: Label(0),
        label2: None,
    };

    /// `decode_regular`, assigning field by field into an existing route (a slot already in a
    /// `Vec`): no whole-route temporary is built and moved, which is what a table of thousands
    /// of type-2 routes spends its time on. Returns false, leaving `out` untouched, if `b` is
    /// not a regular type-2 value.
    #[inline]
    pub fn decode_regular_into(b: &[u8], out: &mut MacIpRoute) -> bool {
        let Some((rd, b)) = b.split_first_chunk::<8>() else {
            return false;
        };
        let Some((esi, b)) = b.split_first_chunk::<10>() else {
            return false;
        };
        let Some((tag, b)) = b.split_first_chunk::<4>() else {
            return false;
        };
        let Some((&48, b)) = b.split_first() else {
            return false;
        };
        let Some((mac, b)) = b.split_first_chunk::<6>() else {
            return false;
        };
        let Some((&ip_len, rest)) = b.split_first() else {
            return false;
        };
        let (ip, labels) = match (ip_len, rest.len()) {
            (0, 3 | 6) => (None, rest),
            (32, 7 | 10) => match rest.split_first_chunk::<4>() {
                Some((a, l)) => (Some(IpAddr::V4(Ipv4Addr::from(*a))), l),
                None => return false,
            },
            (128, 19 | 22) => match rest.split_first_chunk::<16>() {
                Some((a, l)) => (Some(IpAddr::V6(Ipv6Addr::from(*a))), l),
                None => return false,
            },
            _ => return false,
        };
        let (label1, label2) = match labels {
            [a, b, c] => (u32::from_be_bytes([0, *a, *b, *c]), None),
            [a, b, c, d, e, f] => (
                u32::from_be_bytes([0, *a, *b, *c]),
                Some(Label(u32::from_be_bytes([0, *d, *e, *f]))),
            ),
            _ => return false,
        };
        out.rd = RouteDistinguisher::from_bytes(*rd);
        out.esi = Esi::from_bytes(*esi);
        out.ethernet_tag = u32::from_be_bytes(*tag);
        out.mac = MacAddr(*mac);
        out.ip = ip;
        out.label1 = Label(label1);
        out.label2 = label2;
        true
    }

    /// The value of a well-formed type-2 route (RFC 7432 §7.2: MAC length 48; IP length 0, 32
    /// or 128; one or two labels), decoded without a cursor; `None` for anything else (the
    /// checked `decode_value` then reports the exact error).
    #[inline]
    pub fn decode_regular(b: &[u8]) -> Option<Self> {
        let mut m = MacIpRoute::EMPTY;
        MacIpRoute::decode_regular_into(b, &mut m).then_some(m)
    }

    /// Parses the route value (after Type and Length). The caller checks the reader is empty.
    pub fn decode_value(r: &mut Reader<'_>) -> WireResult<Self> {
        let rd = RouteDistinguisher::decode(r)?;
        let esi = Esi::decode(r)?;
        let ethernet_tag = r.u32(F_ETAG)?;
        // RFC 7432 §7.2: "The MAC Address Length field is in bits, and it is set to 48. MAC
        // address length values other than 48 bits are outside the scope of this document."
        let off = r.offset();
        let mac_len = r.u8(F_MAC_LEN)?;
        if mac_len != 48 {
            return Err(Reader::bad_value_at(off, F_MAC_LEN, mac_len.into(), "48"));
        }
        let mac = MacAddr(r.array(F_MAC)?);
        // RFC 7432 §7.2: "The IP Address Length field is in bits. [...] the IP Address field
        // [...] may be 0, 32, or 128 bits".
        let ip = read_len_ip(r, F_IP_LEN, F_IP, true)?;
        let label1 = Label::decode(r, F_LABEL1)?;
        // RFC 7432 §7.2: MPLS Label2 is 0 or 3 octets. 1–2 octets fail here as truncated;
        // more than 3 are left for the caller's `finish` to report as trailing.
        let label2 = if r.is_empty() {
            None
        } else {
            Some(Label::decode(r, F_LABEL2)?)
        };
        Ok(MacIpRoute {
            rd,
            esi,
            ethernet_tag,
            mac,
            ip,
            label1,
            label2,
        })
    }

    pub fn value_len(&self) -> usize {
        8 + 10
            + 4
            + 1
            + 6
            + 1
            + self.ip.as_ref().map_or(0, ip_len)
            + 3
            + 3 * self.label2.is_some() as usize
    }

    pub fn encode_value(&self, out: &mut Vec<u8>) {
        self.rd.encode(out);
        self.esi.encode(out);
        out.extend_from_slice(&self.ethernet_tag.to_be_bytes());
        out.push(48);
        out.extend_from_slice(&self.mac.0);
        match &self.ip {
            None => out.push(0),
            Some(ip) => write_len_ip(out, ip),
        }
        self.label1.encode(out);
        if let Some(l) = &self.label2 {
            l.encode(out);
        }
    }
}

/// Route type 3, Inclusive Multicast Ethernet Tag (RFC 7432 §7.3).
///
/// ```text
/// +---------------------------------------+
/// |  RD (8 octets)                        |
/// +---------------------------------------+
/// |  Ethernet Tag ID (4 octets)           |
/// +---------------------------------------+
/// |  IP Address Length (1 octet)          |
/// +---------------------------------------+
/// |  Originating Router's IP Address      |
/// |          (4 or 16 octets)             |
/// +---------------------------------------+
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, arbitrary::Arbitrary)]
pub struct InclusiveMulticastRoute {
    pub rd: RouteDistinguisher,
    pub ethernet_tag: u32,
    pub originator: IpAddr,
}

impl InclusiveMulticastRoute {
    /// Parses the route value (after Type and Length). The caller checks the reader is empty.
    pub fn decode_value(r: &mut Reader<'_>) -> WireResult<Self> {
        let rd = RouteDistinguisher::decode(r)?;
        let ethernet_tag = r.u32(F_ETAG)?;
        let originator = read_originator(r)?;
        Ok(InclusiveMulticastRoute {
            rd,
            ethernet_tag,
            originator,
        })
    }

    pub fn value_len(&self) -> usize {
        8 + 4 + 1 + ip_len(&self.originator)
    }

    pub fn encode_value(&self, out: &mut Vec<u8>) {
        self.rd.encode(out);
        out.extend_from_slice(&self.ethernet_tag.to_be_bytes());
        write_len_ip(out, &self.originator);
    }
}

/// Route type 4, Ethernet Segment (RFC 7432 §7.4).
///
/// ```text
/// +---------------------------------------+
/// |  RD (8 octets)                        |
/// +---------------------------------------+
/// |Ethernet Segment Identifier (10 octets)|
/// +---------------------------------------+
/// |  IP Address Length (1 octet)          |
/// +---------------------------------------+
/// |  Originating Router's IP Address      |
/// |          (4 or 16 octets)             |
/// +---------------------------------------+
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, arbitrary::Arbitrary)]
pub struct EthernetSegmentRoute {
    pub rd: RouteDistinguisher,
    pub esi: Esi,
    pub originator: IpAddr,
}

impl EthernetSegmentRoute {
    /// Parses the route value (after Type and Length). The caller checks the reader is empty.
    pub fn decode_value(r: &mut Reader<'_>) -> WireResult<Self> {
        let rd = RouteDistinguisher::decode(r)?;
        let esi = Esi::decode(r)?;
        let originator = read_originator(r)?;
        Ok(EthernetSegmentRoute {
            rd,
            esi,
            originator,
        })
    }

    pub fn value_len(&self) -> usize {
        8 + 10 + 1 + ip_len(&self.originator)
    }

    pub fn encode_value(&self, out: &mut Vec<u8>) {
        self.rd.encode(out);
        self.esi.encode(out);
        write_len_ip(out, &self.originator);
    }
}

/// Route type 5, IP Prefix (RFC 9136 §3.1). Value length 34 (IPv4) or 58 (IPv6).
///
/// ```text
/// +---------------------------------------+
/// |      RD (8 octets)                    |
/// +---------------------------------------+
/// |Ethernet Segment Identifier (10 octets)|
/// +---------------------------------------+
/// |  Ethernet Tag ID (4 octets)           |
/// +---------------------------------------+
/// |  IP Prefix Length (1 octet, 0 to 32)  |
/// +---------------------------------------+
/// |  IP Prefix (4 octets)                 |
/// +---------------------------------------+
/// |  GW IP Address (4 octets)             |
/// +---------------------------------------+
/// |  MPLS Label (3 octets)                |
/// +---------------------------------------+
/// (IPv6: prefix length 0 to 128, prefix and GW 16 octets each)
/// ```
/// `prefix` and `gateway` are always the same family. Bits of `prefix` beyond `prefix_len` are
/// kept as received (not masked) so the route re-encodes byte for byte.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct IpPrefixRoute {
    pub rd: RouteDistinguisher,
    pub esi: Esi,
    pub ethernet_tag: u32,
    pub prefix: IpAddr,
    pub prefix_len: u8,
    pub gateway: IpAddr,
    pub label: Label,
}

impl IpPrefixRoute {
    pub const VALUE_LEN_V4: usize = 34;
    pub const VALUE_LEN_V6: usize = 58;

    /// Parses the route value (after Type and Length); the family is chosen by the value
    /// length (58 → IPv6, otherwise IPv4). `EvpnRoute::decode` checks the length is 34 or 58
    /// first; the caller checks the reader is empty.
    pub fn decode_value(r: &mut Reader<'_>) -> WireResult<Self> {
        let v6 = r.remaining() == Self::VALUE_LEN_V6;
        let rd = RouteDistinguisher::decode(r)?;
        let esi = Esi::decode(r)?;
        let ethernet_tag = r.u32(F_ETAG)?;
        let off = r.offset();
        let prefix_len = r.u8(F_PREFIX_LEN)?;
        // RFC 9136 §3.1: "The IP Prefix Length can be set to a value between 0 and 32 (bits)
        // for IPv4 and between 0 and 128 for IPv6."
        let (max, expected) = if v6 { (128, "0..=128") } else { (32, "0..=32") };
        if prefix_len > max {
            return Err(Reader::bad_value_at(
                off,
                F_PREFIX_LEN,
                prefix_len.into(),
                expected,
            ));
        }
        let (prefix, gateway) = if v6 {
            let p = Ipv6Addr::from(r.array::<16>(F_PREFIX)?);
            let g = Ipv6Addr::from(r.array::<16>(F_GW)?);
            (IpAddr::V6(p), IpAddr::V6(g))
        } else {
            let p = Ipv4Addr::from(r.array::<4>(F_PREFIX)?);
            let g = Ipv4Addr::from(r.array::<4>(F_GW)?);
            (IpAddr::V4(p), IpAddr::V4(g))
        };
        let label = Label::decode(r, F_LABEL)?;
        Ok(IpPrefixRoute {
            rd,
            esi,
            ethernet_tag,
            prefix,
            prefix_len,
            gateway,
            label,
        })
    }

    pub fn value_len(&self) -> usize {
        match self.prefix {
            IpAddr::V4(_) => Self::VALUE_LEN_V4,
            IpAddr::V6(_) => Self::VALUE_LEN_V6,
        }
    }

    /// The gateway in the prefix's family. A gateway of the other family cannot be encoded
    /// (RFC 9136 §3.1: both are the same size); it is converted (IPv4-mapped IPv6 either way)
    /// or, if that is impossible, sent as the unspecified address ("no overlay index").
    fn gateway_in_family(&self) -> IpAddr {
        match (self.prefix, self.gateway) {
            (IpAddr::V4(_), IpAddr::V6(g)) => {
                IpAddr::V4(g.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED))
            }
            (IpAddr::V6(_), IpAddr::V4(g)) => IpAddr::V6(g.to_ipv6_mapped()),
            (_, g) => g,
        }
    }

    /// Encodes the value; `prefix_len` is written as is (decode rejects one beyond the family).
    pub fn encode_value(&self, out: &mut Vec<u8>) {
        self.rd.encode(out);
        self.esi.encode(out);
        out.extend_from_slice(&self.ethernet_tag.to_be_bytes());
        out.push(self.prefix_len);
        write_ip(out, &self.prefix);
        write_ip(out, &self.gateway_in_family());
        self.label.encode(out);
    }
}

impl<'a> arbitrary::Arbitrary<'a> for IpPrefixRoute {
    /// Prefix and gateway of one family; `prefix_len` within that family's range.
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let rd = u.arbitrary()?;
        let esi = u.arbitrary()?;
        let ethernet_tag = u.arbitrary()?;
        let v6: bool = u.arbitrary()?;
        let prefix_len = u.int_in_range(0..=if v6 { 128 } else { 32 })?;
        let prefix = arbitrary_ip(u, v6)?;
        let gateway = arbitrary_ip(u, v6)?;
        let label = u.arbitrary()?;
        Ok(IpPrefixRoute {
            rd,
            esi,
            ethernet_tag,
            prefix,
            prefix_len,
            gateway,
            label,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// EvpnRoute
// ---------------------------------------------------------------------------------------------

/// One EVPN NLRI (RFC 7432 §7).
///
/// ```text
/// +-----------------------------------+
/// |    Route Type (1 octet)           |
/// +-----------------------------------+
/// |     Length (1 octet)              |
/// +-----------------------------------+
/// | Route Type specific (variable)    |
/// +-----------------------------------+
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum EvpnRoute {
    EthernetAd(EthernetAdRoute),
    MacIp(MacIpRoute),
    InclusiveMulticast(InclusiveMulticastRoute),
    EthernetSegment(EthernetSegmentRoute),
    IpPrefix(IpPrefixRoute),
    /// Route types other than 1–5: 6–8 (RFC 9251), 9–11 (RFC 9572) and unassigned ones.
    /// RFC 7606 §5.4: an unrecognized NLRI type is not an error for the whole UPDATE; we keep
    /// the value raw and relay it unchanged. `value` is at most 255 octets (the Length octet).
    /// Decoding never yields `Other` for types 1–5 (they decode typed or fail); one built by
    /// hand with such a type is still encoded verbatim.
    Other {
        route_type: u8,
        value: Vec<u8>,
    },
}

impl EvpnRoute {
    pub const ETHERNET_AD: u8 = 1;
    pub const MAC_IP: u8 = 2;
    pub const INCLUSIVE_MULTICAST: u8 = 3;
    pub const ETHERNET_SEGMENT: u8 = 4;
    pub const IP_PREFIX: u8 = 5;

    /// Reads Route Type, Length and exactly `Length` octets of value.
    pub fn decode(r: &mut Reader<'_>) -> WireResult<Self> {
        let route_type = r.u8(F_ROUTE_TYPE)?;
        let len_off = r.offset();
        let len = r.u8(F_ROUTE_LENGTH)?;
        let mut v = r.sub(usize::from(len), F_ROUTE)?;
        if route_type == Self::MAC_IP {
            // Hot path (thousands of type-2 routes per UPDATE): one length match, then fields
            // from a fixed-size array. Anything irregular falls through to the field-by-field
            // decoder below, which reports the exact error.
            if let Some(route) = MacIpRoute::decode_regular(v.clone().rest()) {
                return Ok(EvpnRoute::MacIp(route));
            }
        }
        let route = match route_type {
            Self::ETHERNET_AD => EvpnRoute::EthernetAd(EthernetAdRoute::decode_value(&mut v)?),
            Self::MAC_IP => EvpnRoute::MacIp(MacIpRoute::decode_value(&mut v)?),
            Self::INCLUSIVE_MULTICAST => {
                EvpnRoute::InclusiveMulticast(InclusiveMulticastRoute::decode_value(&mut v)?)
            }
            Self::ETHERNET_SEGMENT => {
                EvpnRoute::EthernetSegment(EthernetSegmentRoute::decode_value(&mut v)?)
            }
            Self::IP_PREFIX => {
                // RFC 9136 §3.1: "The Length field of the BGP EVPN NLRI for an EVPN IP Prefix
                // route MUST be either 34 (if IPv4 addresses are carried) or 58 (if IPv6
                // addresses are carried)."
                let l = usize::from(len);
                if l != IpPrefixRoute::VALUE_LEN_V4 && l != IpPrefixRoute::VALUE_LEN_V6 {
                    return Err(Reader::bad_value_at(
                        len_off,
                        F_ROUTE_LENGTH,
                        len.into(),
                        "34 (IPv4) or 58 (IPv6) for an IP Prefix route",
                    ));
                }
                EvpnRoute::IpPrefix(IpPrefixRoute::decode_value(&mut v)?)
            }
            route_type => EvpnRoute::Other {
                route_type,
                value: v.rest().to_vec(),
            },
        };
        v.finish(F_ROUTE)?;
        Ok(route)
    }

    /// Length of the route value (what the Length octet says).
    pub fn value_len(&self) -> usize {
        match self {
            EvpnRoute::EthernetAd(_) => EthernetAdRoute::VALUE_LEN,
            EvpnRoute::MacIp(x) => x.value_len(),
            EvpnRoute::InclusiveMulticast(x) => x.value_len(),
            EvpnRoute::EthernetSegment(x) => x.value_len(),
            EvpnRoute::IpPrefix(x) => x.value_len(),
            EvpnRoute::Other { value, .. } => value.len().min(usize::from(u8::MAX)),
        }
    }

    /// Octets `encode` appends: 2 + `value_len()`.
    pub fn encoded_len(&self) -> usize {
        2 + self.value_len()
    }

    /// Appends Route Type, Length and value. An `Other` value longer than 255 octets (which
    /// decode never produces) is cut at 255 so the Length octet stays truthful.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.push(self.route_type());
        out.push(u8::try_from(self.value_len()).unwrap_or(u8::MAX));
        match self {
            EvpnRoute::EthernetAd(x) => x.encode_value(out),
            EvpnRoute::MacIp(x) => x.encode_value(out),
            EvpnRoute::InclusiveMulticast(x) => x.encode_value(out),
            EvpnRoute::EthernetSegment(x) => x.encode_value(out),
            EvpnRoute::IpPrefix(x) => x.encode_value(out),
            EvpnRoute::Other { value, .. } => {
                out.extend(value.iter().take(usize::from(u8::MAX)));
            }
        }
    }

    pub fn route_type(&self) -> u8 {
        match self {
            EvpnRoute::EthernetAd(_) => Self::ETHERNET_AD,
            EvpnRoute::MacIp(_) => Self::MAC_IP,
            EvpnRoute::InclusiveMulticast(_) => Self::INCLUSIVE_MULTICAST,
            EvpnRoute::EthernetSegment(_) => Self::ETHERNET_SEGMENT,
            EvpnRoute::IpPrefix(_) => Self::IP_PREFIX,
            EvpnRoute::Other { route_type, .. } => *route_type,
        }
    }

    /// A short name for the route type (used in JSON).
    pub fn route_type_name(&self) -> &'static str {
        route_type_name(self.route_type())
    }

    /// The RD. For `Other`, types 6–10 start with an RD (RFC 9251 §9, RFC 9572 §3) and it is
    /// read from the raw value; type 11 (Leaf A-D) and unassigned types have none we know of.
    pub fn rd(&self) -> Option<RouteDistinguisher> {
        match self {
            EvpnRoute::EthernetAd(x) => Some(x.rd),
            EvpnRoute::MacIp(x) => Some(x.rd),
            EvpnRoute::InclusiveMulticast(x) => Some(x.rd),
            EvpnRoute::EthernetSegment(x) => Some(x.rd),
            EvpnRoute::IpPrefix(x) => Some(x.rd),
            EvpnRoute::Other {
                route_type: 6..=10,
                value,
            } => {
                let b: [u8; 8] = value.get(..8)?.try_into().ok()?;
                Some(RouteDistinguisher::from_bytes(b))
            }
            EvpnRoute::Other { .. } => None,
        }
    }
}

fn route_type_name(t: u8) -> &'static str {
    match t {
        1 => "ethernet-ad",
        2 => "mac-ip",
        3 => "inclusive-multicast",
        4 => "ethernet-segment",
        5 => "ip-prefix",
        6 => "selective-multicast",
        7 => "multicast-join-sync",
        8 => "multicast-leave-sync",
        9 => "per-region-i-pmsi-ad",
        10 => "s-pmsi-ad",
        11 => "leaf-ad",
        _ => "unknown",
    }
}

impl fmt::Display for EvpnRoute {
    /// FRR's EVPN prefix text (`prefix2str`), **without** the RD (FRR prints the RD separately
    /// and keys its JSON by RD; print `rd()` yourself when you need it):
    ///
    /// - 1: `[1]:[ETAG]:[ESI]` — FRR appends its own originator IP and fragment id, which are
    ///   not in the NLRI; we leave them out.
    /// - 2: `[2]:[ETAG]:[48]:[MAC]` or `[2]:[ETAG]:[48]:[MAC]:[32|128]:[IP]`
    /// - 3: `[3]:[ETAG]:[32|128]:[ORIGINATOR]`
    /// - 4: `[4]:[ESI]:[32|128]:[ORIGINATOR]`
    /// - 5: `[5]:[ETAG]:[PREFIXLEN]:[PREFIX]`
    /// - other: `[T]:[HEX VALUE]` (FRR prints "Unsupported EVPN prefix").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvpnRoute::EthernetAd(x) => write!(f, "[1]:[{}]:[{}]", x.ethernet_tag, x.esi),
            EvpnRoute::MacIp(x) => {
                write!(f, "[2]:[{}]:[48]:[{}]", x.ethernet_tag, x.mac)?;
                match &x.ip {
                    Some(ip) => write!(f, ":[{}]:[{}]", ip_bits(ip), ip),
                    None => Ok(()),
                }
            }
            EvpnRoute::InclusiveMulticast(x) => write!(
                f,
                "[3]:[{}]:[{}]:[{}]",
                x.ethernet_tag,
                ip_bits(&x.originator),
                x.originator
            ),
            EvpnRoute::EthernetSegment(x) => {
                write!(
                    f,
                    "[4]:[{}]:[{}]:[{}]",
                    x.esi,
                    ip_bits(&x.originator),
                    x.originator
                )
            }
            EvpnRoute::IpPrefix(x) => {
                write!(
                    f,
                    "[5]:[{}]:[{}]:[{}]",
                    x.ethernet_tag, x.prefix_len, x.prefix
                )
            }
            EvpnRoute::Other { route_type, value } => {
                write!(f, "[{route_type}]:[")?;
                value.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
                f.write_str("]")
            }
        }
    }
}

impl<'a> arbitrary::Arbitrary<'a> for EvpnRoute {
    /// `Other` only with route types outside 1–5 and at most 255 octets of value.
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0u8..=5)? {
            0 => EvpnRoute::EthernetAd(u.arbitrary()?),
            1 => EvpnRoute::MacIp(u.arbitrary()?),
            2 => EvpnRoute::InclusiveMulticast(u.arbitrary()?),
            3 => EvpnRoute::EthernetSegment(u.arbitrary()?),
            4 => EvpnRoute::IpPrefix(u.arbitrary()?),
            _ => {
                let route_type = match u.int_in_range(0u8..=250)? {
                    0 => 0,
                    t => t + 5,
                };
                let n = u.int_in_range(0..=usize::from(u8::MAX))?;
                let value = u.bytes(n.min(u.len()))?.to_vec();
                EvpnRoute::Other { route_type, value }
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------
//
// Every route serializes as one flat object: `{"type": 2, "name": "mac-ip", "rd": "...", ...}`.
// IPs, MACs, RDs and ESIs are strings; labels are numbers, with `vni` repeating the (first)
// label read as a VXLAN VNI (RFC 8365 §5.1.3) for convenience.

impl serde::Serialize for EthernetAdRoute {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("EthernetAdRoute", 7)?;
        st.serialize_field("type", &1u8)?;
        st.serialize_field("name", route_type_name(1))?;
        st.serialize_field("rd", &self.rd)?;
        st.serialize_field("esi", &self.esi)?;
        st.serialize_field("ethernet_tag", &self.ethernet_tag)?;
        st.serialize_field("label", &self.label)?;
        st.serialize_field("vni", &self.label.vni())?;
        st.end()
    }
}

impl serde::Serialize for MacIpRoute {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("MacIpRoute", 10)?;
        st.serialize_field("type", &2u8)?;
        st.serialize_field("name", route_type_name(2))?;
        st.serialize_field("rd", &self.rd)?;
        st.serialize_field("esi", &self.esi)?;
        st.serialize_field("ethernet_tag", &self.ethernet_tag)?;
        st.serialize_field("mac", &self.mac)?;
        st.serialize_field("ip", &self.ip)?;
        st.serialize_field("label1", &self.label1)?;
        st.serialize_field("label2", &self.label2)?;
        st.serialize_field("vni", &self.label1.vni())?;
        st.end()
    }
}

impl serde::Serialize for InclusiveMulticastRoute {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("InclusiveMulticastRoute", 5)?;
        st.serialize_field("type", &3u8)?;
        st.serialize_field("name", route_type_name(3))?;
        st.serialize_field("rd", &self.rd)?;
        st.serialize_field("ethernet_tag", &self.ethernet_tag)?;
        st.serialize_field("originator", &self.originator)?;
        st.end()
    }
}

impl serde::Serialize for EthernetSegmentRoute {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("EthernetSegmentRoute", 5)?;
        st.serialize_field("type", &4u8)?;
        st.serialize_field("name", route_type_name(4))?;
        st.serialize_field("rd", &self.rd)?;
        st.serialize_field("esi", &self.esi)?;
        st.serialize_field("originator", &self.originator)?;
        st.end()
    }
}

impl serde::Serialize for IpPrefixRoute {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("IpPrefixRoute", 10)?;
        st.serialize_field("type", &5u8)?;
        st.serialize_field("name", route_type_name(5))?;
        st.serialize_field("rd", &self.rd)?;
        st.serialize_field("esi", &self.esi)?;
        st.serialize_field("ethernet_tag", &self.ethernet_tag)?;
        st.serialize_field("prefix", &self.prefix)?;
        st.serialize_field("prefix_len", &self.prefix_len)?;
        st.serialize_field("gateway", &self.gateway)?;
        st.serialize_field("label", &self.label)?;
        st.serialize_field("vni", &self.label.vni())?;
        st.end()
    }
}

impl serde::Serialize for EvpnRoute {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            EvpnRoute::EthernetAd(x) => x.serialize(s),
            EvpnRoute::MacIp(x) => x.serialize(s),
            EvpnRoute::InclusiveMulticast(x) => x.serialize(s),
            EvpnRoute::EthernetSegment(x) => x.serialize(s),
            EvpnRoute::IpPrefix(x) => x.serialize(s),
            EvpnRoute::Other { route_type, value } => {
                let mut st = s.serialize_struct("EvpnRoute", 4)?;
                st.serialize_field("type", route_type)?;
                st.serialize_field("name", route_type_name(*route_type))?;
                st.serialize_field("rd", &self.rd())?;
                st.serialize_field("value", &crate::wire::types::Hex(value))?;
                st.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Reason, WireError};

    fn decode_all(b: &[u8]) -> WireResult<EvpnRoute> {
        let mut r = Reader::new(b);
        let x = EvpnRoute::decode(&mut r)?;
        r.finish("test")?;
        Ok(x)
    }

    #[test]
    fn label_views() {
        let l = Label(100);
        assert_eq!((l.vni(), l.mpls_label()), (100, 6));
        let mut out = Vec::new();
        Label(0x0123_4567).encode(&mut out);
        assert_eq!(out, [0x23, 0x45, 0x67]);
    }

    #[test]
    fn esi_text_and_zero() {
        assert_eq!(Esi::ZERO.to_string(), "00:00:00:00:00:00:00:00:00:00");
        assert!(Esi::ZERO.is_zero());
        let e: Esi = "03:02:aa:00:00:00:01:00:00:07".parse().unwrap_or_default();
        assert_eq!(
            e,
            Esi::MacBased {
                system_mac: MacAddr([2, 0xaa, 0, 0, 0, 1]),
                local_discriminator: 7
            }
        );
        assert_eq!(e.to_string(), "03:02:aa:00:00:00:01:00:00:07");
        assert!("03:02:aa:00:00:00:01:00:00".parse::<Esi>().is_err());
        assert!("03:02:aa:00:00:00:01:00:00:07:08".parse::<Esi>().is_err());
    }

    #[test]
    fn type2_minimal_roundtrip_and_display() {
        // type 2, len 33: RD 65001:100, ESI 0, tag 0, MAC len 48, MAC, IP len 0, label 100
        let b: Vec<u8> = [
            &[2u8, 33][..],
            &[0, 0, 0xfd, 0xe9, 0, 0, 0, 100],
            &[0; 10],
            &[0; 4],
            &[48, 2, 0xbb, 0, 0, 0, 1],
            &[0],
            &[0, 0, 100],
        ]
        .concat();
        let route = EvpnRoute::MacIp(MacIpRoute {
            rd: RouteDistinguisher::As2 {
                asn: 65001,
                number: 100,
            },
            esi: Esi::ZERO,
            ethernet_tag: 0,
            mac: MacAddr([2, 0xbb, 0, 0, 0, 1]),
            ip: None,
            label1: Label(100),
            label2: None,
        });
        assert_eq!(decode_all(&b), Ok(route.clone()));
        assert_eq!(route.to_string(), "[2]:[0]:[48]:[02:bb:00:00:00:01]");
        let mut out = Vec::new();
        route.encode(&mut out);
        assert_eq!(out, b);
        assert_eq!(route.encoded_len(), b.len());
    }

    #[test]
    fn other_type_kept_raw() {
        let b = [0u8, 3, 1, 2, 3];
        assert_eq!(
            decode_all(&b),
            Ok(EvpnRoute::Other {
                route_type: 0,
                value: vec![1, 2, 3]
            })
        );
        assert_eq!(
            decode_all(&[9, 3, 1, 2]),
            Err(WireError {
                offset: 2,
                field: "EVPN route",
                reason: Reason::Truncated {
                    needed: 3,
                    available: 2
                }
            })
        );
    }

    #[test]
    fn over_long_other_is_cut_to_255() {
        let r = EvpnRoute::Other {
            route_type: 7,
            value: vec![0xaa; 300],
        };
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(out.len(), 257);
        assert_eq!(out.get(1), Some(&255));
    }

    #[test]
    fn type5_mixed_family_gateway_is_encodable() {
        let r = EvpnRoute::IpPrefix(IpPrefixRoute {
            rd: RouteDistinguisher::As2 { asn: 1, number: 1 },
            esi: Esi::ZERO,
            ethernet_tag: 0,
            prefix: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)),
            prefix_len: 8,
            gateway: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            label: Label(5000),
        });
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(out.len(), 36);
        let gw = match decode_all(&out) {
            Ok(EvpnRoute::IpPrefix(p)) => Some(p.gateway),
            _ => None,
        };
        assert_eq!(gw, Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    }
}
