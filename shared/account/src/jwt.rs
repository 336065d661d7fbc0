//! Access-token signing and verification, shared by every service so that an internal gRPC caller
//! gets exactly the checks the REST API applies.
//!
//! Keys come from `GOTRUE_JWT_KEYS` (private JWKs; exactly one has `sign` in `key_ops`) or, when none
//! are configured, from `GOTRUE_JWT_SECRET` as an HS256 key (kid = `GOTRUE_JWT_KEY_ID`). Verification
//! follows GoTrue: the header's `kid` picks a configured key; a `kid` equal to `GOTRUE_JWT_KEY_ID`, or
//! none at all with HS256, falls back to the secret; the algorithm must be allowed
//! (`GOTRUE_JWT_VALID_METHODS`, else the algorithms of the configured keys) and must fit the key, so
//! `alg: none` and algorithm confusion (an RSA public key used as an HMAC secret) are refused.

use std::collections::HashMap;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use auth_core::config::JwtConfig;

/// One entry of the `amr` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmrEntry {
    pub method: String,
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// GoTrue's access-token claim set, serialised in GoTrue's order.
#[derive(Debug, Clone, Serialize)]
pub struct AccessTokenClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    pub sub: String,
    /// A single string, as GoTrue writes it.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub email: String,
    pub phone: String,
    pub app_metadata: Value,
    pub user_metadata: Value,
    pub role: String,
    pub aal: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<AmrEntry>,
    pub session_id: String,
    pub is_anonymous: bool,
}

/// Claims of a verified incoming token. Unknown claims are kept (custom claims, hooks).
#[derive(Debug, Clone)]
pub struct VerifiedClaims {
    pub raw: Map<String, Value>,
}

impl VerifiedClaims {
    fn str(&self, name: &str) -> Option<&str> {
        self.raw.get(name).and_then(Value::as_str)
    }

    pub fn sub(&self) -> Option<&str> {
        self.str("sub").filter(|s| !s.is_empty())
    }

    pub fn role(&self) -> &str {
        self.str("role").unwrap_or_default()
    }

    pub fn session_id(&self) -> Option<&str> {
        self.str("session_id").filter(|s| !s.is_empty())
    }

    /// GoTrue's `is_anonymous` claim.
    pub fn is_anonymous(&self) -> bool {
        self.raw.get("is_anonymous").and_then(Value::as_bool).unwrap_or(false)
    }

    pub fn aal(&self) -> &str {
        self.str("aal").unwrap_or("aal1")
    }

    /// `aud` as GoTrue reads it: a string, or the first entry of an array.
    pub fn aud(&self) -> Option<&str> {
        match self.raw.get("aud") {
            Some(Value::String(s)) => Some(s),
            Some(Value::Array(items)) => items.first().and_then(Value::as_str),
            _ => None,
        }
    }

    pub fn amr_methods(&self) -> Vec<String> {
        self.raw
            .get("amr")
            .and_then(Value::as_array)
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| match e {
                        Value::String(s) => Some(s.clone()),
                        Value::Object(o) => o.get("method").and_then(Value::as_str).map(str::to_string),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn iat(&self) -> Option<i64> {
        self.raw.get("iat").and_then(Value::as_i64)
    }
}

struct VerificationKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Signing key plus every key accepted for verification.
pub struct JwtKeys {
    signing_key: EncodingKey,
    signing_header: Header,
    by_kid: HashMap<String, VerificationKey>,
    secret: DecodingKey,
    secret_kid: Option<String>,
    allowed: Vec<Algorithm>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("signing_alg", &self.signing_header.alg)
            .field("signing_kid", &self.signing_header.kid)
            .field("kids", &self.by_kid.keys().collect::<Vec<_>>())
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused; rendered after "invalid JWT: unable to parse or verify signature, ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JwtRejected(pub String);

impl JwtKeys {
    pub fn from_config(config: &JwtConfig) -> anyhow::Result<Self> {
        let secret_bytes = config.secret.expose_secret().as_bytes();
        let mut by_kid = HashMap::new();
        let mut signing = None;
        let mut algorithms = Vec::new();

        for jwk in &config.keys {
            let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_string);
            let algorithm = jwk_algorithm(jwk)?;
            let can_sign = jwk
                .get("key_ops")
                .and_then(Value::as_array)
                .is_some_and(|ops| ops.iter().any(|op| op == "sign"));
            if can_sign {
                let mut header = Header::new(algorithm);
                header.kid = kid.clone();
                signing = Some((private_encoding_key(jwk, algorithm)?, header));
            }
            if !algorithms.contains(&algorithm) {
                algorithms.push(algorithm);
            }
            if let Some(kid) = kid {
                let key = public_decoding_key(jwk, algorithm)?;
                by_kid.insert(kid, VerificationKey { algorithm, key });
            }
        }

        let (signing_key, signing_header) = match signing {
            Some(signing) => signing,
            None => {
                let mut header = Header::new(Algorithm::HS256);
                header.kid = config.key_id.clone();
                (EncodingKey::from_secret(secret_bytes), header)
            }
        };
        if algorithms.is_empty() {
            algorithms.push(Algorithm::HS256);
        }
        let allowed = if config.valid_methods.is_empty() {
            algorithms
        } else {
            config
                .valid_methods
                .iter()
                .map(|m| m.parse::<Algorithm>().map_err(|_| anyhow!("unknown JWT method {m}")))
                .collect::<anyhow::Result<_>>()
                .context("GOTRUE_JWT_VALID_METHODS")?
        };

        Ok(Self {
            signing_key,
            signing_header,
            by_kid,
            secret: DecodingKey::from_secret(secret_bytes),
            secret_kid: config.key_id.clone(),
            allowed,
        })
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> anyhow::Result<String> {
        jsonwebtoken::encode(&self.signing_header, claims, &self.signing_key).context("signing access token")
    }

    pub fn verify(&self, token: &str) -> Result<VerifiedClaims, JwtRejected> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| JwtRejected(format!("token is malformed: {e}")))?;
        if !self.allowed.contains(&header.alg) {
            return Err(JwtRejected(format!(
                "token is unverifiable: signing method {:?} is invalid",
                header.alg
            )));
        }
        let key = match header.kid.as_deref() {
            Some(kid) if self.by_kid.contains_key(kid) => {
                let entry = &self.by_kid[kid];
                if entry.algorithm != header.alg {
                    return Err(JwtRejected("token signature is invalid: key algorithm mismatch".into()));
                }
                &entry.key
            }
            Some(kid) if self.secret_kid.as_deref() == Some(kid) && header.alg == Algorithm::HS256 => &self.secret,
            _ if header.alg == Algorithm::HS256 => &self.secret,
            _ => return Err(JwtRejected("token is unverifiable: no key found for this token".into())),
        };

        let mut validation = Validation::new(header.alg);
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;

        jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
            .map(|data| VerifiedClaims { raw: data.claims })
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                JwtRejected(match e.kind() {
                    ErrorKind::ExpiredSignature => "token has invalid claims: token is expired".into(),
                    ErrorKind::ImmatureSignature => "token has invalid claims: token is not valid yet".into(),
                    ErrorKind::InvalidSignature => "token signature is invalid: signature is invalid".into(),
                    _ => format!("token is malformed: {e}"),
                })
            })
    }
}

fn jwk_algorithm(jwk: &Map<String, Value>) -> anyhow::Result<Algorithm> {
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or_default();
    let alg = jwk.get("alg").and_then(Value::as_str);
    Ok(match (kty, alg) {
        (_, Some(alg)) => alg.parse().map_err(|_| anyhow!("unsupported JWK alg {alg}"))?,
        ("oct", None) => Algorithm::HS256,
        ("RSA", None) => Algorithm::RS256,
        ("EC", None) => Algorithm::ES256,
        ("OKP", None) => Algorithm::EdDSA,
        (other, None) => bail!("unsupported JWK kty {other}"),
    })
}

fn field_bytes(jwk: &Map<String, Value>, name: &str) -> anyhow::Result<Vec<u8>> {
    let text = jwk
        .get(name)
        .and_then(Value::as_str)
        .with_context(|| format!("JWK is missing `{name}`"))?;
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .with_context(|| format!("JWK `{name}` is not base64url"))
}

fn field_str<'a>(jwk: &'a Map<String, Value>, name: &str) -> anyhow::Result<&'a str> {
    jwk.get(name)
        .and_then(Value::as_str)
        .with_context(|| format!("JWK is missing `{name}`"))
}

/// A private JWK (with `kid` and `alg` or a `kty` that implies it) as a signer: its key and the JWT
/// header naming it. Also what test doubles of identity providers sign their ID tokens with.
pub fn signer_from_private_jwk(jwk: &Map<String, Value>) -> anyhow::Result<(EncodingKey, Header)> {
    let algorithm = jwk_algorithm(jwk)?;
    let mut header = Header::new(algorithm);
    header.kid = jwk.get("kid").and_then(Value::as_str).map(str::to_string);
    Ok((private_encoding_key(jwk, algorithm)?, header))
}

/// jsonwebtoken signs from DER: PKCS#1 for RSA, PKCS#8 for EC and Ed25519.
fn private_encoding_key(jwk: &Map<String, Value>, algorithm: Algorithm) -> anyhow::Result<EncodingKey> {
    use Algorithm::*;
    match algorithm {
        HS256 | HS384 | HS512 => Ok(EncodingKey::from_secret(&field_bytes(jwk, "k")?)),
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => {
            use rsa::BigUint;
            use rsa::pkcs1::EncodeRsaPrivateKey;
            let int = |name| field_bytes(jwk, name).map(|b| BigUint::from_bytes_be(&b));
            let key = rsa::RsaPrivateKey::from_components(int("n")?, int("e")?, int("d")?, vec![int("p")?, int("q")?])
                .context("invalid RSA JWK")?;
            let der = key.to_pkcs1_der().context("encoding RSA key")?;
            Ok(EncodingKey::from_rsa_der(der.as_bytes()))
        }
        ES256 => {
            use p256::pkcs8::EncodePrivateKey;
            let key = p256::SecretKey::from_slice(&field_bytes(jwk, "d")?).context("invalid P-256 JWK")?;
            let der = key.to_pkcs8_der().context("encoding P-256 key")?;
            Ok(EncodingKey::from_ec_der(der.as_bytes()))
        }
        EdDSA => {
            use ed25519_dalek::pkcs8::EncodePrivateKey;
            let d: [u8; 32] = field_bytes(jwk, "d")?
                .try_into()
                .map_err(|_| anyhow!("Ed25519 JWK `d` must be 32 bytes"))?;
            let der = ed25519_dalek::SigningKey::from_bytes(&d)
                .to_pkcs8_der()
                .context("encoding Ed25519 key")?;
            Ok(EncodingKey::from_ed_der(der.as_bytes()))
        }
        other => bail!("signing with {other:?} keys is not supported"),
    }
}

fn public_decoding_key(jwk: &Map<String, Value>, algorithm: Algorithm) -> anyhow::Result<DecodingKey> {
    use Algorithm::*;
    match algorithm {
        HS256 | HS384 | HS512 => Ok(DecodingKey::from_secret(&field_bytes(jwk, "k")?)),
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Ok(DecodingKey::from_rsa_components(
            field_str(jwk, "n")?,
            field_str(jwk, "e")?,
        )?),
        ES256 | ES384 => Ok(DecodingKey::from_ec_components(
            field_str(jwk, "x")?,
            field_str(jwk, "y")?,
        )?),
        EdDSA => Ok(DecodingKey::from_ed_components(field_str(jwk, "x")?)?),
        other => bail!("verifying with {other:?} keys is not supported"),
    }
}

/// The `Authorization` header's token: GoTrue's `^bearer (\S+$)`, case-insensitive.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_at_checked(7)?;
    (scheme.eq_ignore_ascii_case("bearer ") && !token.is_empty() && !token.contains(char::is_whitespace))
        .then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn config(keys: Vec<Map<String, Value>>) -> JwtConfig {
        JwtConfig {
            secret: SecretString::from("secret-of-at-least-32-characters-long"),
            exp: 3600,
            aud: "authenticated".into(),
            admin_roles: vec!["service_role".into()],
            default_group_name: "authenticated".into(),
            admin_group_name: "admin".into(),
            issuer: None,
            key_id: None,
            keys,
            valid_methods: vec![],
        }
    }

    fn claims(exp: i64) -> Value {
        serde_json::json!({"sub": "u", "role": "authenticated", "exp": exp})
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn hs256_round_trip_and_expiry() {
        let keys = JwtKeys::from_config(&config(vec![])).expect("keys");
        let token = keys.sign(&claims(now() + 60)).expect("sign");
        assert_eq!(keys.verify(&token).expect("valid").sub(), Some("u"));
        let expired = keys.sign(&claims(now() - 1)).expect("sign");
        assert!(keys.verify(&expired).unwrap_err().0.contains("expired"));
        // no exp at all is accepted (service_role keys)
        let no_exp = keys.sign(&serde_json::json!({"role": "service_role"})).expect("sign");
        assert!(keys.verify(&no_exp).is_ok());
    }

    #[test]
    fn refuses_alg_none_tampering_and_wrong_key() {
        let keys = JwtKeys::from_config(&config(vec![])).expect("keys");
        let token = keys.sign(&claims(now() + 60)).expect("sign");
        let parts: Vec<&str> = token.split('.').collect();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(keys.verify(&format!("{none_header}.{}.", parts[1])).is_err());
        let tampered = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin","role":"service_role"}"#);
        assert!(keys.verify(&format!("{}.{tampered}.{}", parts[0], parts[2])).is_err());
        let mut other = config(vec![]);
        other.secret = SecretString::from("another-secret-of-32-characters-long!!");
        let foreign = JwtKeys::from_config(&other)
            .expect("keys")
            .sign(&claims(now() + 60))
            .expect("sign");
        assert!(keys.verify(&foreign).is_err());
    }

    #[test]
    fn bearer_prefix_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bEaReR abc"), Some("abc"));
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer a b"), None);
    }
}
