//! GoTrue's column encryption (`crypto.EncryptedString`), so secrets written by either server read
//! on the other: AES-256-GCM under a key derived for the one row (HKDF-SHA256 of the configured key,
//! no salt, the row's id as info), stored as JSON `{"key_id","alg":"aes-gcm-hkdf","data","nonce"}`
//! with standard base64 bytes. Binding the key to the row means a ciphertext copied into another
//! row does not decrypt.
//!
//! With encryption off, values are stored as they are; reading accepts both forms, as GoTrue does,
//! so encryption can be turned on (or a key rotated) without rewriting old rows.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use auth_core::config::DbEncryptionConfig;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

const ALGORITHM: &str = "aes-gcm-hkdf";

#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    #[error("decryption key with name {0:?} does not exist")]
    UnknownKey(String),
    #[error("key with id {0:?} is not 256 bits")]
    BadKey(String),
    #[error("the value does not decrypt under its key (another row's, or altered)")]
    Inauthentic,
}

/// The stored form; field order and encodings as Go's `json.Marshal` writes them.
#[derive(Serialize, Deserialize)]
struct EncryptedString {
    key_id: String,
    alg: String,
    #[serde(with = "standard_base64")]
    data: Vec<u8>,
    #[serde(with = "standard_base64", default)]
    nonce: Vec<u8>,
}

mod standard_base64 {
    use super::{Engine, STANDARD};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// GoTrue's `deriveSymmetricKey`.
fn row_cipher(row_id: &str, key_id: &str, key_base64url: &str) -> Result<Aes256Gcm, EncryptionError> {
    let master = URL_SAFE_NO_PAD
        .decode(key_base64url)
        .ok()
        .filter(|key| key.len() == 32)
        .ok_or_else(|| EncryptionError::BadKey(key_id.to_string()))?;
    let mut derived = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(None, &master)
        .expand(row_id.as_bytes(), &mut derived)
        .map_err(|_| EncryptionError::BadKey(key_id.to_string()))?;
    Aes256Gcm::new_from_slice(&derived).map_err(|_| EncryptionError::BadKey(key_id.to_string()))
}

/// GoTrue's `ParseEncryptedString`: a value that is not a valid encrypted string is plain text.
fn parse(stored: &str) -> Option<EncryptedString> {
    if !stored.starts_with('{') {
        return None;
    }
    let parsed: EncryptedString = serde_json::from_str(stored).ok()?;
    let valid =
        !parsed.key_id.is_empty() && !parsed.data.is_empty() && parsed.nonce.len() == 12 && parsed.alg == ALGORITHM;
    valid.then_some(parsed)
}

/// What to store for `plaintext` in the row `row_id`: encrypted when encryption is on.
pub fn seal(config: &DbEncryptionConfig, row_id: &str, plaintext: &str) -> Result<String, EncryptionError> {
    let Some(key) = config.encryption_key.as_ref().filter(|_| config.encrypt) else {
        return Ok(plaintext.to_string());
    };
    let cipher = row_cipher(row_id, &config.encryption_key_id, key.expose_secret())?;
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let data = cipher
        .encrypt(&Nonce::from(nonce), plaintext.as_bytes())
        .map_err(|_| EncryptionError::Inauthentic)?;
    let sealed = EncryptedString {
        key_id: config.encryption_key_id.clone(),
        alg: ALGORITHM.to_string(),
        data,
        nonce: nonce.to_vec(),
    };
    serde_json::to_string(&sealed).map_err(|_| EncryptionError::Inauthentic)
}

/// The plain value of what [`seal`] (or GoTrue) stored in the row `row_id`.
pub fn open(config: &DbEncryptionConfig, row_id: &str, stored: &str) -> Result<String, EncryptionError> {
    let Some(sealed) = parse(stored) else {
        return Ok(stored.to_string());
    };
    let key = config
        .decryption_keys
        .get(&sealed.key_id)
        .ok_or_else(|| EncryptionError::UnknownKey(sealed.key_id.clone()))?;
    let cipher = row_cipher(row_id, &sealed.key_id, key.expose_secret())?;
    let nonce: [u8; 12] = sealed
        .nonce
        .as_slice()
        .try_into()
        .map_err(|_| EncryptionError::Inauthentic)?;
    let plain = cipher
        .decrypt(&Nonce::from(nonce), sealed.data.as_slice())
        .map_err(|_| EncryptionError::Inauthentic)?;
    String::from_utf8(plain).map_err(|_| EncryptionError::Inauthentic)
}

/// GoTrue's `shouldReEncrypt`: with encryption on, a value stored in the clear or under another
/// key is sealed anew (with the current key) when next written, e.g. at the next sign-in.
pub fn needs_resealing(config: &DbEncryptionConfig, stored: &str) -> bool {
    config.encrypt
        && match parse(stored) {
            Some(sealed) => sealed.key_id != config.encryption_key_id,
            None => true,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    const KEY: &str = "6Kl6Tcg0BKmz7Q2jHq3Mdu4xwPGfgMxKczHUOOuiqXw";

    fn encrypting(key_id: &str) -> DbEncryptionConfig {
        DbEncryptionConfig {
            encrypt: true,
            encryption_key_id: key_id.into(),
            encryption_key: Some(SecretString::from(KEY)),
            decryption_keys: [(key_id.to_string(), SecretString::from(KEY))].into_iter().collect(),
        }
    }

    #[test]
    fn sealed_values_open_only_in_their_own_row() {
        let config = encrypting("k1");
        let sealed = seal(&config, "row-1", "the secret").unwrap();
        let json: serde_json::Value = serde_json::from_str(&sealed).unwrap();
        assert_eq!(json["key_id"], "k1");
        assert_eq!(json["alg"], "aes-gcm-hkdf");
        assert!(!sealed.contains("the secret"));
        assert_eq!(open(&config, "row-1", &sealed).unwrap(), "the secret");
        assert!(matches!(
            open(&config, "row-2", &sealed),
            Err(EncryptionError::Inauthentic)
        ));
    }

    #[test]
    fn values_in_the_clear_or_under_old_keys_are_resealed() {
        let on = encrypting("k2");
        assert!(needs_resealing(&on, "plain"));
        assert!(needs_resealing(&on, &seal(&encrypting("k1"), "row", "s").unwrap()));
        assert!(!needs_resealing(&on, &seal(&on, "row", "s").unwrap()));
        assert!(!needs_resealing(&DbEncryptionConfig::default(), "plain"));
    }

    #[test]
    fn plain_values_pass_both_ways_and_unknown_keys_are_named() {
        let off = DbEncryptionConfig::default();
        assert_eq!(seal(&off, "row", "plain").unwrap(), "plain");
        assert_eq!(open(&off, "row", "plain").unwrap(), "plain");
        // A JSON-looking secret that is not an encrypted string stays plain text, as in GoTrue.
        assert_eq!(open(&off, "row", "{\"a\":1}").unwrap(), "{\"a\":1}");
        let sealed = seal(&encrypting("k1"), "row", "s").unwrap();
        assert!(matches!(open(&off, "row", &sealed), Err(EncryptionError::UnknownKey(id)) if id == "k1"));
    }

    /// A value sealed as GoTrue v2.196's `crypto.NewEncryptedString("row-1", "the secret", "k1",
    /// KEY)` seals it, with the nonce fixed to sevens: computed by Go's own crypto packages
    /// (hkdf, aes, cipher.NewGCM) and encoding/json, not by this module.
    #[test]
    fn values_sealed_by_go_open() {
        let stored = r#"{"key_id":"k1","alg":"aes-gcm-hkdf","data":"VX5WMG+CQCWdTIXEjL8ODOdXbIWnfWFeGX4=","nonce":"BwcHBwcHBwcHBwcH"}"#;
        assert_eq!(open(&encrypting("k1"), "row-1", stored).unwrap(), "the secret");
    }
}
