//! Pure wire codecs: BGP (`bgp/`) and LISP (`lisp/`).
//!
//! Owns: bytes ⇄ typed values, and RFC 7606 classification of BGP UPDATE errors.
//! Must not: use tokio, sockets, clocks or logging; panic on any input (the lints below are
//! denied for the whole module tree, tests excepted); leak a parser library's types.
//!
//! Conventions (ARCHITECTURE.md rule 5): decoders take a [`Reader`] and parse every
//! length-prefixed item from a bounded `sub` reader that must be consumed exactly; code points
//! are newtypes or enums with an `Unknown`/raw variant where the RFC says ignore or propagate;
//! encoding is total for everything decoding can produce, and re-encoding a decoded value gives
//! back the same bytes.
// Denied for the production build; unit tests (`cfg(test)`) may unwrap and index.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod bgp;
pub mod lisp;
pub mod reader;
pub mod types;

pub use reader::{Reader, Reason, WireError, WireResult};
pub use types::MacAddr;
