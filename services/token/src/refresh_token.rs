//! GoTrue's two refresh-token formats.
//!
//! * v1: 12 random characters from `a-z2-7`, one row per token in `refresh_tokens`.
//! * v2: base64url of `0x00 ‖ session uuid ‖ uvarint counter ‖ HMAC-SHA256(session key)[..16] ‖
//!   SHA-256(all before)[..4]`. Nothing is stored per token; the session keeps its HMAC key and the
//!   last counter it issued.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

const SIGNATURE_LEN: usize = 16;
const CHECKSUM_LEN: usize = 4;
const MIN_LEN: usize = 1 + 16 + 1 + SIGNATURE_LEN + CHECKSUM_LEN;
const MAX_LEN: usize = MIN_LEN + 9;

/// A refresh token as the client presented it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresentedToken {
    V1(String),
    V2(SignedToken),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedToken {
    pub session_id: Uuid,
    pub counter: u64,
    signed_part: Vec<u8>,
    signature: Vec<u8>,
}

/// GoTrue's `RefreshTokenGrantParams.Validate`: a 12-character `[a-z0-9]` token is v1; anything else
/// must parse as v2. `None` means "Refresh token is not valid".
pub fn parse(token: &str) -> Option<PresentedToken> {
    if token.len() == 12 && token.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
        return Some(PresentedToken::V1(token.to_string()));
    }
    parse_v2(token).map(PresentedToken::V2)
}

fn parse_v2(token: &str) -> Option<SignedToken> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    if bytes.len() < MIN_LEN || bytes.len() > MAX_LEN || bytes[0] != 0 {
        return None;
    }
    let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    let expected: [u8; 32] = Sha256::digest(body).into();
    if !bool::from(expected[..CHECKSUM_LEN].ct_eq(checksum)) {
        return None;
    }
    let (signed_part, signature) = body.split_at(body.len() - SIGNATURE_LEN);
    let session_id = Uuid::from_slice(&signed_part[1..17]).ok()?;
    let (counter, used) = read_uvarint(&signed_part[17..])?;
    if 17 + used != signed_part.len() {
        return None;
    }
    Some(SignedToken {
        session_id,
        counter,
        signed_part: signed_part.to_vec(),
        signature: signature.to_vec(),
    })
}

impl SignedToken {
    /// Constant-time check of the signature with the session's key.
    pub fn signed_by(&self, key: &[u8]) -> bool {
        let expected = signature(key, &self.signed_part);
        expected.ct_eq(&self.signature).into()
    }
}

#[expect(
    clippy::expect_used,
    reason = "HMAC accepts keys of any length; the error cannot occur"
)]
fn signature(key: &[u8], data: &[u8]) -> [u8; SIGNATURE_LEN] {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; SIGNATURE_LEN];
    out.copy_from_slice(&full[..SIGNATURE_LEN]);
    out
}

/// Encodes a v2 token for `session_id` at `counter`, signed with the session's key.
pub fn encode_v2(key: &[u8], session_id: Uuid, counter: u64) -> String {
    let mut bytes = Vec::with_capacity(MAX_LEN);
    bytes.push(0);
    bytes.extend_from_slice(session_id.as_bytes());
    write_uvarint(&mut bytes, counter);
    let sig = signature(key, &bytes);
    bytes.extend_from_slice(&sig);
    let checksum: [u8; 32] = Sha256::digest(&bytes).into();
    bytes.extend_from_slice(&checksum[..CHECKSUM_LEN]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh per-session HMAC key, stored base64url in `sessions.refresh_token_hmac_key`.
pub fn new_hmac_key() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill(&mut key);
    URL_SAFE_NO_PAD.encode(key)
}

pub fn decode_hmac_key(stored: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(stored.trim_end_matches('=')).ok()
}

/// What the session `session_id` stores for `key` (base64url): sealed with the session's id when
/// `GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPT` is on, as GoTrue stores it.
pub fn stored_hmac_key(
    config: &auth_core::config::DbEncryptionConfig,
    session_id: Uuid,
    key: &str,
) -> Result<String, auth_core::ServiceError> {
    auth_account::db_encryption::seal(config, &session_id.to_string(), key).map_err(auth_core::ServiceError::internal)
}

/// The HMAC key of the session `session_id` from what it stores, sealed (by the suite or GoTrue)
/// or not (GoTrue's `GetRefreshTokenHmacKey`).
pub fn session_hmac_key(
    config: &auth_core::config::DbEncryptionConfig,
    session_id: Uuid,
    stored: &str,
) -> Option<Vec<u8>> {
    match auth_account::db_encryption::open(config, &session_id.to_string(), stored) {
        Ok(key) => decode_hmac_key(&key),
        Err(error) => {
            tracing::warn!(%session_id, %error, "a session's refresh-token key cannot be opened");
            None
        }
    }
}

/// A v1 token: 12 characters of GoTrue's lower-case base32 alphabet.
pub fn new_v1() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::rng();
    (0..12)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn write_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (index, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_round_trips_across_multi_byte_counters() {
        let key = decode_hmac_key(&new_hmac_key()).expect("key");
        let session = Uuid::new_v4();
        for counter in [0u64, 1, 127, 128, 300, 1 << 40] {
            let token = encode_v2(&key, session, counter);
            let Some(PresentedToken::V2(parsed)) = parse(&token) else {
                panic!("{token} did not parse");
            };
            assert_eq!((parsed.session_id, parsed.counter), (session, counter));
            assert!(parsed.signed_by(&key));
            assert!(!parsed.signed_by(b"another key"));
        }
    }

    #[test]
    fn validation_matches_gotrue() {
        for bad in ["", "abcdefghijk", "ABCDEFGHIJKL", "abcdefghij-k", "0000000000000"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(parse("0123456abcde"), Some(PresentedToken::V1("0123456abcde".into())));
        let token = new_v1();
        assert_eq!(token.len(), 12);
        assert!(matches!(parse(&token), Some(PresentedToken::V1(_))));
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let key = decode_hmac_key(&new_hmac_key()).expect("key");
        let token = encode_v2(&key, Uuid::new_v4(), 5);
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).expect("b64");
        bytes[5] ^= 1;
        assert_eq!(parse(&URL_SAFE_NO_PAD.encode(bytes)), None);
    }
}
