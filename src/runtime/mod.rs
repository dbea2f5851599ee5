//! runtime/: the only tokio/socket/real-time code.

pub mod sockopt;
