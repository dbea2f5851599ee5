//! Authentication of Map-Register, Map-Notify and Map-Notify-Ack (RFC 9301 §5.6, §12.5):
//! per-message key derivation, HMAC over the encoded message with the auth field zeroed, and
//! constant-time verification.
//!
//! Owns: algorithm IDs, auth data lengths (truncated and the untruncated de facto form), the
//! RFC 6830 16-bit Key ID interop knob, `compute_auth`, `sign`, `verify`.
//! Must not: pick keys per site, track nonces (replay protection is `lisp/`), or log.
//!
//! RFC 9301 §5.6, the steps this module implements:
//!
//! > 1. The KDF algorithm is identified by the field 'Algorithm ID' according to the table in
//! >    Section 12.5. Implementations of this specification MUST implement HMAC-SHA-256-128
//! >    [RFC4868] and SHOULD implement HMAC-SHA256-128+HKDF-SHA256 [RFC5869].
//! > 2. The MAC algorithm is identified by the field 'Algorithm ID' according to the table in
//! >    Section 12.5.
//! > 3. The pre-shared secret used to derive the per-message key is represented by
//! >    PSK[Key ID], that is, the pre-shared secret identified by the 'Key ID'.
//! > 4. The per-message key is computed as: per-msg-key = KDF( nonce + s + PSK[Key ID] ),
//! >    where the nonce is the value in the Nonce field of the Map-Register, '+' denotes
//! >    concatenation, and 's' (the salt) is a string that corresponds to the message type
//! >    being authenticated. For Map-Register messages, it is equal to "Map-Register
//! >    Authentication". Similarly, for Map-Notify and Map-Notify-Ack messages, it is
//! >    "Map-Notify Authentication" and "Map-Notify-Ack Authentication", respectively. For
//! >    those Algorithm IDs defined in Section 12.5 that specify a 'none' KDF, the per-message
//! >    key is computed as: per-msg-key = PSK[Key ID]. This means that the same key is used
//! >    across multiple protocol messages.
//! > 5. The MAC output is computed using the MAC algorithm and the per-msg-key over the entire
//! >    Map-Register payload (from and including the LISP message type field through the end
//! >    of the last RLOC-Record) with the authenticated data field preset to 0.
//!
//! (Quoted from memory of the RFC text and the IETF 105 6833bis slides, which give
//! "per-msg-key=KDF(nonce+s+PSK[Key ID]). 's' is a string equal to "Map-Register
//! Authentication""; the full RFC page could not be fetched from the corpora.)
//!
//! HKDF mapping (alg 3), our reading of step 4 since RFC 5869 HKDF takes (salt, IKM, info, L)
//! and the RFC calls `s` "the salt":
//! `per-msg-key = HKDF-SHA256(salt = s, IKM = nonce (8 bytes, network order) ‖ PSK[Key ID],
//! info = "" , L = 32)`. No peer we know implements alg 3 (lisp-anchors.md §1.7), so this is
//! unverified against another implementation.
//!
//! Interop (lisp-anchors.md §1.7, lab/oor/README.md): lispers.net, OOR and pylisp send the
//! untruncated HMAC (20 bytes for alg 1, 32 for alg 2) and the RFC 6830 16-bit Key ID (value 1
//! = SHA-1, 2 = SHA-256, i.e. Key ID byte 0 + Algorithm ID byte). `verify` accepts either
//! length; `AuthParams` says what we send.
//!
//! Fuzzing: under `cfg(fuzzing)` `verify` does every structural check but skips the final
//! HMAC comparison (ARCHITECTURE.md rule 9), so fuzzers can reach code behind authentication.

use hkdf::HkdfExtract;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha1::Sha1;
use sha2::Sha256;

use super::register::{AUTH_DATA_OFFSET, AUTH_KEY_ID_OFFSET, AUTH_LEN_OFFSET};
use super::{MSG_MAP_NOTIFY, MSG_MAP_NOTIFY_ACK, MSG_MAP_REGISTER};

/// Algorithm ID 0: no authentication.
pub const ALG_NONE: u8 = 0;
/// Algorithm ID 1: HMAC-SHA-1-96, KDF none (RFC 2404).
pub const ALG_HMAC_SHA1_96: u8 = 1;
/// Algorithm ID 2: HMAC-SHA-256-128, KDF none (RFC 4868).
pub const ALG_HMAC_SHA256_128: u8 = 2;
/// Algorithm ID 3: HMAC-SHA256-128 with HKDF-SHA256 per-message keys (RFC 4868, RFC 5869).
pub const ALG_HMAC_SHA256_128_HKDF: u8 = 3;

/// RFC 9301 §5.6 step 4 salts.
pub const SALT_MAP_REGISTER: &[u8] = b"Map-Register Authentication";
pub const SALT_MAP_NOTIFY: &[u8] = b"Map-Notify Authentication";
pub const SALT_MAP_NOTIFY_ACK: &[u8] = b"Map-Notify-Ack Authentication";

/// What we send and what we expect (one per Map-Server / site key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, arbitrary::Arbitrary)]
pub struct AuthParams {
    /// Key ID we send and require (ignored when `legacy_key_id`).
    pub key_id: u8,
    /// Algorithm ID we send and require.
    pub alg_id: u8,
    /// Send truncated auth data (12 bytes for alg 1, 16 for alg 2/3) instead of the full HMAC
    /// output (20 / 32) that OOR, lispers.net and pylisp send. Receiving accepts both.
    pub truncate: bool,
    /// RFC 6830 16-bit Key ID (OOR, lispers.net): we send Key ID byte 0 and Algorithm ID 1 or 2
    /// (16-bit value 1 = SHA-1, 2 = SHA-256) and, like OOR, ignore the Key ID byte on receive.
    pub legacy_key_id: bool,
}

impl Default for AuthParams {
    /// RFC 9301's mandatory algorithm (HMAC-SHA-256-128), Key ID 0, untruncated as peers send.
    fn default() -> Self {
        AuthParams {
            key_id: 0,
            alg_id: ALG_HMAC_SHA256_128,
            truncate: false,
            legacy_key_id: false,
        }
    }
}

impl AuthParams {
    /// What OOR 1.3.0 sends and accepts: 16-bit Key ID 1 (HMAC-SHA-1), 20-byte auth data.
    pub fn oor() -> Self {
        AuthParams {
            key_id: 0,
            alg_id: ALG_HMAC_SHA1_96,
            truncate: false,
            legacy_key_id: true,
        }
    }

    /// Length of the auth data we send.
    pub fn auth_len(&self) -> Result<usize, AuthError> {
        let (full, trunc) = lengths(self.alg_id)?;
        Ok(if self.truncate { trunc } else { full })
    }

    /// The Key ID byte we send.
    pub fn wire_key_id(&self) -> Result<u8, AuthError> {
        if !self.legacy_key_id {
            return Ok(self.key_id);
        }
        match self.alg_id {
            ALG_HMAC_SHA1_96 | ALG_HMAC_SHA256_128 => Ok(0),
            other => Err(AuthError::LegacyKeyId(other)),
        }
    }

    /// An auth field to put in a message before `sign`: our Key ID / Algorithm ID and zeroed
    /// auth data of the length we send.
    pub fn placeholder(&self) -> Result<super::AuthField, AuthError> {
        Ok(super::AuthField {
            key_id: self.wire_key_id()?,
            alg_id: self.alg_id,
            data: vec![0; self.auth_len()?],
        })
    }
}

/// Why authentication failed or could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
pub enum AuthError {
    #[error("message of {0} bytes is too short for its authentication field")]
    Truncated(usize),
    #[error("message type {0} carries no authentication data (only 3, 4 and 5 do)")]
    NotAuthenticated(u8),
    #[error("algorithm ID {0} is not supported (0, 1, 2 and 3 are)")]
    UnsupportedAlgorithm(u8),
    #[error("algorithm ID {got}, expected {expected}")]
    AlgorithmMismatch { expected: u8, got: u8 },
    #[error("key ID {got}, expected {expected}")]
    KeyIdMismatch { expected: u8, got: u8 },
    #[error("authentication data length {len} is invalid for algorithm ID {alg_id}")]
    BadLength { alg_id: u8, len: usize },
    #[error("the RFC 6830 16-bit key ID cannot express algorithm ID {0}")]
    LegacyKeyId(u8),
    #[error("authentication data does not match")]
    Mismatch,
}

/// `(untruncated, truncated)` auth data lengths for an algorithm.
pub fn lengths(alg_id: u8) -> Result<(usize, usize), AuthError> {
    match alg_id {
        ALG_NONE => Ok((0, 0)),
        ALG_HMAC_SHA1_96 => Ok((20, 12)),
        ALG_HMAC_SHA256_128 | ALG_HMAC_SHA256_128_HKDF => Ok((32, 16)),
        other => Err(AuthError::UnsupportedAlgorithm(other)),
    }
}

/// The RFC 9301 §5.6 salt `s` for a message type (3, 4 or 5).
pub fn salt_for(msg_type: u8) -> Option<&'static [u8]> {
    match msg_type {
        MSG_MAP_REGISTER => Some(SALT_MAP_REGISTER),
        MSG_MAP_NOTIFY => Some(SALT_MAP_NOTIFY),
        MSG_MAP_NOTIFY_ACK => Some(SALT_MAP_NOTIFY_ACK),
        _ => None,
    }
}

/// An HMAC output (up to 32 bytes) or a truncation of it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuthTag {
    bytes: [u8; 32],
    len: usize,
}

impl AuthTag {
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

impl std::fmt::Debug for AuthTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthTag({})", crate::wire::types::Hex(self.as_slice()))
    }
}

/// The per-message key (RFC 9301 §5.6 step 4): PSK itself for algorithms with a 'none' KDF,
/// HKDF-SHA256(salt = s, IKM = nonce ‖ PSK, info = "", L = 32) for algorithm 3.
pub fn per_message_key(
    alg_id: u8,
    psk: &[u8],
    nonce: u64,
    msg_type: u8,
) -> Result<PerMsgKey<'_>, AuthError> {
    match alg_id {
        ALG_NONE | ALG_HMAC_SHA1_96 | ALG_HMAC_SHA256_128 => Ok(PerMsgKey::Psk(psk)),
        ALG_HMAC_SHA256_128_HKDF => {
            let salt = salt_for(msg_type).ok_or(AuthError::NotAuthenticated(msg_type))?;
            let mut ex = HkdfExtract::<Sha256>::new(Some(salt));
            ex.input_ikm(&nonce.to_be_bytes());
            ex.input_ikm(psk);
            let (_, hk) = ex.finalize();
            let mut okm = [0u8; 32];
            // 32 <= 255 * 32: expand cannot fail
            hk.expand(&[], &mut okm)
                .map_err(|_| AuthError::UnsupportedAlgorithm(alg_id))?;
            Ok(PerMsgKey::Derived(okm))
        }
        other => Err(AuthError::UnsupportedAlgorithm(other)),
    }
}

/// A per-message key: borrowed PSK or a derived 32-byte key.
#[derive(Clone, PartialEq, Eq)]
pub enum PerMsgKey<'a> {
    Psk(&'a [u8]),
    Derived([u8; 32]),
}

impl PerMsgKey<'_> {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            PerMsgKey::Psk(k) => k,
            PerMsgKey::Derived(k) => k,
        }
    }
}

enum Hasher {
    None,
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
}

impl Hasher {
    fn new(alg_id: u8, key: &[u8]) -> Result<Self, AuthError> {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it
        let bad = |_| AuthError::UnsupportedAlgorithm(alg_id);
        match alg_id {
            ALG_NONE => Ok(Hasher::None),
            ALG_HMAC_SHA1_96 => Ok(Hasher::Sha1(
                Hmac::<Sha1>::new_from_slice(key).map_err(bad)?,
            )),
            ALG_HMAC_SHA256_128 | ALG_HMAC_SHA256_128_HKDF => Ok(Hasher::Sha256(
                Hmac::<Sha256>::new_from_slice(key).map_err(bad)?,
            )),
            other => Err(AuthError::UnsupportedAlgorithm(other)),
        }
    }

    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::None => {}
            Hasher::Sha1(m) => m.update(b),
            Hasher::Sha256(m) => m.update(b),
        }
    }

    /// Feeds `n` zero bytes.
    fn update_zeros(&mut self, mut n: usize) {
        const Z: [u8; 64] = [0; 64];
        while n > 0 {
            let k = n.min(Z.len());
            self.update(Z.get(..k).unwrap_or(&[]));
            n -= k;
        }
    }

    /// The leftmost `len` bytes of the MAC (`len` ≤ the hash output).
    fn finish(self, len: usize) -> AuthTag {
        let mut bytes = [0u8; 32];
        let n = match self {
            Hasher::None => 0,
            Hasher::Sha1(m) => copy_prefix(&mut bytes, &m.finalize().into_bytes()),
            Hasher::Sha256(m) => copy_prefix(&mut bytes, &m.finalize().into_bytes()),
        };
        AuthTag {
            bytes,
            len: len.min(n),
        }
    }

    /// Constant-time comparison of the leftmost `tag.len()` bytes of the MAC with `tag`.
    fn verify_left(self, tag: &[u8]) -> bool {
        match self {
            Hasher::None => tag.is_empty(),
            Hasher::Sha1(m) => m.verify_truncated_left(tag).is_ok(),
            Hasher::Sha256(m) => m.verify_truncated_left(tag).is_ok(),
        }
    }
}

fn copy_prefix(dst: &mut [u8; 32], src: &[u8]) -> usize {
    let n = src.len().min(dst.len());
    if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
        d.copy_from_slice(s);
    }
    n
}

/// Header facts of an authenticated message.
struct AuthLayout {
    msg_type: u8,
    nonce: u64,
    key_id: u8,
    alg_id: u8,
    auth_len: usize,
}

fn layout(msg: &[u8]) -> Result<AuthLayout, AuthError> {
    let head = msg
        .get(..AUTH_DATA_OFFSET)
        .ok_or(AuthError::Truncated(msg.len()))?;
    let [
        b0,
        _,
        _,
        _,
        n0,
        n1,
        n2,
        n3,
        n4,
        n5,
        n6,
        n7,
        key_id,
        alg_id,
        l0,
        l1,
    ] = <[u8; AUTH_DATA_OFFSET]>::try_from(head).map_err(|_| AuthError::Truncated(msg.len()))?;
    let msg_type = b0 >> 4;
    if salt_for(msg_type).is_none() {
        return Err(AuthError::NotAuthenticated(msg_type));
    }
    let auth_len = usize::from(u16::from_be_bytes([l0, l1]));
    if msg.len() < AUTH_DATA_OFFSET + auth_len {
        return Err(AuthError::Truncated(msg.len()));
    }
    debug_assert_eq!(AUTH_KEY_ID_OFFSET + 2, AUTH_LEN_OFFSET);
    Ok(AuthLayout {
        msg_type,
        nonce: u64::from_be_bytes([n0, n1, n2, n3, n4, n5, n6, n7]),
        key_id,
        alg_id,
        auth_len,
    })
}

/// A keyed MAC over `msg` with its auth data (at the real offset, of the length its header
/// says) taken as zeros. No copy of the message is made.
fn mac_over(msg: &[u8], l: &AuthLayout, psk: &[u8]) -> Result<Hasher, AuthError> {
    let key = per_message_key(l.alg_id, psk, l.nonce, l.msg_type)?;
    let mut h = Hasher::new(l.alg_id, key.as_slice())?;
    h.update(msg.get(..AUTH_DATA_OFFSET).unwrap_or(&[]));
    h.update_zeros(l.auth_len);
    h.update(msg.get(AUTH_DATA_OFFSET + l.auth_len..).unwrap_or(&[]));
    Ok(h)
}

/// The leftmost `len` bytes of HMAC(`key`, concatenation of `parts`) with the hash of
/// `alg_id` (SHA-1 for 1, SHA-256 for 2 and 3; `key` is used as is, no KDF). `len` is capped at
/// the hash output length.
pub fn hmac(alg_id: u8, key: &[u8], parts: &[&[u8]], len: usize) -> Result<AuthTag, AuthError> {
    let mut h = Hasher::new(alg_id, key)?;
    parts.iter().for_each(|p| h.update(p));
    Ok(h.finish(len))
}

/// The auth data for an encoded Map-Register / Map-Notify / Map-Notify-Ack whose auth data is
/// already zeroed (RFC 9301 §5.6 step 5): the message type and nonce for the KDF come from the
/// message; `alg_id` and `len` (the auth data length to produce) from the caller.
pub fn compute_auth(
    zeroed: &[u8],
    psk: &[u8],
    alg_id: u8,
    len: usize,
) -> Result<AuthTag, AuthError> {
    let mut l = layout(zeroed)?;
    l.alg_id = alg_id;
    let (full, trunc) = lengths(alg_id)?;
    if len != full && len != trunc {
        return Err(AuthError::BadLength { alg_id, len });
    }
    let key = per_message_key(alg_id, psk, l.nonce, l.msg_type)?;
    let mut h = Hasher::new(alg_id, key.as_slice())?;
    h.update(zeroed);
    Ok(h.finish(len))
}

/// Signs an encoded Map-Register / Map-Notify / Map-Notify-Ack in place: writes our Key ID and
/// Algorithm ID, then the MAC over the message with the auth data zeroed. The message must
/// have been encoded with auth data of `params.auth_len()` bytes (see
/// [`AuthParams::placeholder`]).
pub fn sign(encoded: &mut [u8], psk: &[u8], params: &AuthParams) -> Result<(), AuthError> {
    let want = params.auth_len()?;
    let key_id = params.wire_key_id()?;
    let l = layout(encoded)?;
    if l.auth_len != want {
        return Err(AuthError::BadLength {
            alg_id: params.alg_id,
            len: l.auth_len,
        });
    }
    if let Some(ids) = encoded.get_mut(AUTH_KEY_ID_OFFSET..AUTH_LEN_OFFSET) {
        ids.copy_from_slice(&[key_id, params.alg_id]);
    }
    let l = AuthLayout {
        key_id,
        alg_id: params.alg_id,
        ..l
    };
    let tag = mac_over(encoded, &l, psk)?.finish(want);
    if let Some(dst) = encoded.get_mut(AUTH_DATA_OFFSET..AUTH_DATA_OFFSET + want) {
        dst.copy_from_slice(tag.as_slice());
    }
    Ok(())
}

/// Verifies an encoded Map-Register / Map-Notify / Map-Notify-Ack: the Algorithm ID must be
/// `params.alg_id`, the Key ID `params.key_id` (unless `legacy_key_id`), the auth data length
/// the truncated or untruncated length of that algorithm, and the MAC (compared in constant
/// time) must match. Under `cfg(fuzzing)` the final comparison is skipped.
pub fn verify(encoded: &[u8], psk: &[u8], params: &AuthParams) -> Result<(), AuthError> {
    let l = layout(encoded)?;
    if l.alg_id != params.alg_id {
        return Err(AuthError::AlgorithmMismatch {
            expected: params.alg_id,
            got: l.alg_id,
        });
    }
    if !params.legacy_key_id && l.key_id != params.key_id {
        return Err(AuthError::KeyIdMismatch {
            expected: params.key_id,
            got: l.key_id,
        });
    }
    let (full, trunc) = lengths(l.alg_id)?;
    if l.auth_len != full && l.auth_len != trunc {
        return Err(AuthError::BadLength {
            alg_id: l.alg_id,
            len: l.auth_len,
        });
    }
    let tag = encoded
        .get(AUTH_DATA_OFFSET..AUTH_DATA_OFFSET + l.auth_len)
        .ok_or(AuthError::Truncated(encoded.len()))?;
    let h = mac_over(encoded, &l, psk)?;
    if skip_mac_check() || h.verify_left(tag) {
        Ok(())
    } else {
        Err(AuthError::Mismatch)
    }
}

#[allow(unexpected_cfgs)]
const fn skip_mac_check() -> bool {
    cfg!(fuzzing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_key_differs_per_type_and_nonce() {
        let a = per_message_key(3, b"k", 1, 3).map(|k| k.as_slice().to_vec());
        let b = per_message_key(3, b"k", 1, 4).map(|k| k.as_slice().to_vec());
        let c = per_message_key(3, b"k", 2, 3).map(|k| k.as_slice().to_vec());
        assert!(a.is_ok() && a != b && a != c);
        assert_eq!(
            per_message_key(2, b"k", 1, 3).map(|k| k.as_slice().to_vec()),
            Ok(b"k".to_vec())
        );
    }
}
