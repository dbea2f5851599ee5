//! BGP-4 codec (RFC 4271) with multiprotocol (RFC 4760), EVPN (RFC 7432, 8365, 9135, 9136) and
//! RFC 7606 error classification.
//!
//! Owns: message framing and every message type, capabilities, path attributes, NLRI of the
//! families we speak (IPv4/IPv6 unicast, L2VPN EVPN; others kept raw), extended communities,
//! and `validate` (RFC 7606 actions in context).
//! Must not: keep session state, touch sockets/clocks/logging, or decide policy.

pub mod afi;
pub mod attr;
pub mod capability;
pub mod evpn;
pub mod extcomm;
pub mod message;
pub mod nlri;
pub mod notification;
pub mod open;
pub mod rd;
pub mod route_refresh;
pub mod update;
pub mod validate;

pub use afi::{Afi, Family, Safi};

pub use message::{BgpCtx, Message, MessageError};
pub use update::UpdateMsg;
pub use validate::{Action, ValidateCtx, Verdict, validate};
pub mod generate;
