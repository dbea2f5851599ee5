//! LISP control-plane codec (RFC 9301, RFC 9437, RFC 8060).
//!
//! Owns: LISP control messages, AFI/LCAF addresses, EID/RLOC records, authentication field
//! layout and HMAC computation over the right bytes.
//! Must not: touch sockets, clocks, registrations or any protocol state.
