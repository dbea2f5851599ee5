//! vmmi: a BGP EVPN + LISP control plane for virtual-machine mobility.
//!
//! Module map and dependency direction: `../shared/ARCHITECTURE.md`. Today the crate holds the
//! wire codecs (`wire`), the offline decoder behind `vmmi decode` (`decode`, `pcap`) and the
//! typed, validated configuration behind `vmmi check` (`config`).

pub mod config;
pub mod decode;
pub mod pcap;
pub mod wire;
