//! vmmi: a BGP EVPN + LISP control plane for virtual-machine mobility.
//!
//! Module map and dependency direction: `../shared/ARCHITECTURE.md`. Today the crate holds the
//! wire codecs (`wire`), the offline decoder behind `vmmi decode` (`decode`, `pcap`), the
//! typed, validated configuration (`config`), the RIB (`rib`), the sans-IO BGP speaker
//! (`bgp`), the sans-IO LISP control plane (`lisp`), the tokio shell (`runtime`) and the
//! virtual-clock test harness (`testkit`).

pub mod bgp;
pub mod config;
pub mod dataplane;
pub mod decode;
pub mod evpn;
pub mod lisp;
pub mod pcap;
pub mod rib;
pub mod runtime;
pub mod testkit;
pub mod wire;
