//! WebAuthn credentials in GoTrue's storage format, so that a database moves between GoTrue and
//! the suite with its WebAuthn factors: `mfa_factors.web_authn_credential` holds go-webauthn's
//! `Credential` as JSON (`id` and `publicKey` as standard base64, the public key a COSE_Key in
//! CBOR, `flags`, `authenticator.{AAGUID,signCount}`, ...).
//!
//! webauthn-rs keeps its own `Passkey` type; this module converts both ways. What GoTrue does not
//! store (the registration's extensions and attestation chain) reads back as "not requested" and
//! "none": neither is used to check later assertions.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_cbor_2::Value as Cbor;
use serde_json::{Value, json};
use webauthn_rs::prelude::{COSEKey, COSEKeyType, Passkey};

/// The credential as GoTrue stores it (go-webauthn v0.16 `Credential`).
pub fn to_gotrue(passkey: &Passkey) -> Result<Value, String> {
    let ours = serde_json::to_value(passkey).map_err(|e| e.to_string())?;
    let cred = &ours["cred"];
    let flag = |name: &str| cred[name].as_bool().unwrap_or(false);
    let id: &[u8] = passkey.cred_id().as_ref();
    let attestation_type = match cred["attestation_format"].as_str() {
        Some("none") | None => "none".to_string(),
        Some(format) => format.to_string(),
    };
    Ok(json!({
        "id": STANDARD.encode(id),
        "publicKey": STANDARD.encode(cose_bytes(passkey.get_public_key())?),
        "attestationType": attestation_type,
        "transport": cred["transports"].as_array().cloned().unwrap_or_default(),
        "flags": {
            "userPresent": true,
            "userVerified": flag("user_verified"),
            "backupEligible": flag("backup_eligible"),
            "backupState": flag("backup_state"),
        },
        "authenticator": {
            "AAGUID": null,
            "signCount": cred["counter"].as_u64().unwrap_or(0),
            "cloneWarning": false,
            "attachment": "",
        },
        "attestation": {
            "clientDataJSON": null,
            "clientDataHash": null,
            "authenticatorData": null,
            "publicKeyAlgorithm": passkey.get_public_key().type_ as i64,
            "object": null,
        },
    }))
}

/// A credential GoTrue (or the suite) stored, as webauthn-rs's `Passkey`.
pub fn from_gotrue(stored: &Value) -> Result<Passkey, String> {
    let bytes = |field: &Value| -> Result<Vec<u8>, String> {
        STANDARD
            .decode(field.as_str().ok_or("missing field")?)
            .map_err(|e| e.to_string())
    };
    let id = bytes(&stored["id"])?;
    let key = cose_key(&bytes(&stored["publicKey"])?)?;
    let flags = &stored["flags"];
    let flag = |name: &str| flags[name].as_bool().unwrap_or(false);
    let transports = stored["transport"]
        .as_array()
        .filter(|t| !t.is_empty())
        .map(|t| Value::Array(t.clone()));
    let ours = json!({
        "cred": {
            "cred_id": URL_SAFE_NO_PAD.encode(&id),
            "cred": serde_json::to_value(&key).map_err(|e| e.to_string())?,
            "counter": stored["authenticator"]["signCount"].as_u64().unwrap_or(0),
            "transports": transports,
            "user_verified": flag("userVerified"),
            "backup_eligible": flag("backupEligible"),
            "backup_state": flag("backupState"),
            "registration_policy": "required",
            "extensions": {
                "cred_protect": "NotRequested",
                "hmac_create_secret": "NotRequested",
                "appid": "NotRequested",
                "cred_props": "NotRequested",
            },
            "attestation": {"data": "None", "metadata": "None"},
            "attestation_format": "none",
        }
    });
    serde_json::from_value(ours).map_err(|e| e.to_string())
}

/// A COSE_Key in CBOR, as go-webauthn stores public keys (passkeys too).
pub(crate) fn cose_key(bytes: &[u8]) -> Result<COSEKey, String> {
    let cose: Cbor = serde_cbor_2::from_slice(bytes).map_err(|e| e.to_string())?;
    COSEKey::try_from(&cose).map_err(|e| e.to_string())
}

/// The public key as a COSE_Key (RFC 9052 §7, RFC 9053 labels) in CBOR.
pub(crate) fn cose_bytes(key: &COSEKey) -> Result<Vec<u8>, String> {
    let int = |n: i128| Cbor::Integer(n);
    let mut map = std::collections::BTreeMap::new();
    map.insert(int(3), int(key.type_ as i128));
    match &key.key {
        COSEKeyType::EC_EC2(ec) => {
            map.insert(int(1), int(2));
            map.insert(int(-1), int(ec.curve.clone() as i128));
            map.insert(int(-2), Cbor::Bytes(ec.x.to_vec()));
            map.insert(int(-3), Cbor::Bytes(ec.y.to_vec()));
        }
        COSEKeyType::EC_OKP(okp) => {
            map.insert(int(1), int(1));
            map.insert(int(-1), int(okp.curve.clone() as i128));
            map.insert(int(-2), Cbor::Bytes(okp.x.to_vec()));
        }
        COSEKeyType::RSA(rsa) => {
            map.insert(int(1), int(3));
            map.insert(int(-1), Cbor::Bytes(rsa.n.to_vec()));
            map.insert(int(-2), Cbor::Bytes(rsa.e.to_vec()));
        }
    }
    serde_cbor_2::to_vec(&Cbor::Map(map)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;
    use webauthn_rs::prelude::{Url, Uuid, WebauthnBuilder};

    /// A credential registered by a software authenticator survives GoTrue's format, and the
    /// copy read back verifies the authenticator's next assertion.
    #[test]
    fn credentials_round_trip_through_gotrues_format() {
        let origin = Url::parse("http://localhost:3000").expect("origin");
        let rp = WebauthnBuilder::new("localhost", &origin)
            .and_then(|b| b.rp_name("tests").build())
            .expect("relying party");
        let mut authenticator = SoftPasskey::new(true);
        let (options, state) = rp
            .start_passkey_registration(Uuid::new_v4(), "a@example.com", "a@example.com", None)
            .expect("options");
        let registered = authenticator
            .do_registration(origin.clone(), options)
            .expect("registration");
        let passkey = rp.finish_passkey_registration(&registered, &state).expect("passkey");

        let stored = to_gotrue(&passkey).expect("GoTrue JSON");
        assert_eq!(stored["attestationType"], "packed");
        assert_eq!(stored["attestation"]["publicKeyAlgorithm"], -7);
        let read_back = from_gotrue(&stored).expect("read back");
        assert_eq!(read_back.cred_id(), passkey.cred_id());
        assert_eq!(read_back.get_public_key(), passkey.get_public_key());
        assert_eq!(to_gotrue(&read_back).expect("again")["publicKey"], stored["publicKey"]);

        let (options, state) = rp
            .start_passkey_authentication(&[read_back])
            .expect("assertion options");
        let asserted = authenticator.do_authentication(origin, options).expect("assertion");
        let result = rp.finish_passkey_authentication(&asserted, &state).expect("verified");
        assert_eq!(result.cred_id(), passkey.cred_id());
    }

    #[test]
    fn malformed_credentials_are_refused() {
        assert!(from_gotrue(&json!({})).is_err());
        assert!(from_gotrue(&json!({"id": "AAAA", "publicKey": "not base64!"})).is_err());
        assert!(from_gotrue(&json!({"id": "AAAA", "publicKey": STANDARD.encode([0xa0])})).is_err());
    }
}
