//! ID token verification, as go-oidc's `IDTokenVerifier` does it for GoTrue: a signature by one of
//! the issuer's published keys with an asymmetric algorithm the key is for (never `none`, never
//! HMAC, never a key of another type), an unexpired token, the expected issuer, and, when the app
//! sent the access token, the `at_hash` that binds the two. The audience and nonce are the
//! caller's to check.

use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::Digest;

use super::cache::{Issuer, OidcCache};

/// A verified ID token.
#[derive(Debug, Clone)]
pub struct IdToken {
    pub issuer: String,
    pub subject: String,
    pub audience: Vec<String>,
    pub nonce: String,
    pub access_token_hash: String,
    pub claims: Map<String, Value>,
}

#[derive(Debug)]
pub struct VerifyError(pub String);

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The algorithms go-oidc accepts (jsonwebtoken has no ES512).
const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The token's `iss` before verification, to pick the issuer (GoTrue's `Detect…IDTokenIssuer`).
pub fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

impl OidcCache {
    /// Verifies `token` against `issuer_url`'s keys. `expected_issuer`: the `iss` the token must
    /// carry (`None` for Apple, whose two issuer names the caller checked).
    pub async fn verify(
        &self,
        issuer_url: &str,
        exact_issuer: bool,
        token: &str,
        expected_issuer: Option<&str>,
        access_token: Option<&str>,
    ) -> Result<IdToken, VerifyError> {
        let issuer = self
            .issuer(issuer_url, exact_issuer)
            .await
            .map_err(|e| VerifyError(format!("cannot load the issuer's keys: {e}")))?;
        let header = jsonwebtoken::decode_header(token).map_err(|e| VerifyError(format!("malformed jwt: {e}")))?;
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(VerifyError(format!("unsupported signing algorithm {:?}", header.alg)));
        }
        let key = match find_key(&issuer, header.kid.as_deref(), header.alg) {
            Some(key) => key,
            None => {
                // Perhaps a rotation: look again with fresh keys.
                let refreshed = self
                    .refresh_keys(issuer_url)
                    .await
                    .map_err(|e| VerifyError(format!("cannot refresh the issuer's keys: {e}")))?;
                refreshed
                    .as_ref()
                    .and_then(|issuer| find_key(issuer, header.kid.as_deref(), header.alg))
                    .ok_or_else(|| VerifyError("no key of the issuer verifies this token".into()))?
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.required_spec_claims = ["exp".to_string()].into_iter().collect();
        if let Some(expected) = expected_issuer {
            validation.set_issuer(&[expected]);
        }
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| VerifyError(format!("failed to verify id token: {e}")))?
            .claims;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
        let audience = match claims.get("aud") {
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => Vec::new(),
        };
        let id_token = IdToken {
            issuer: text("iss"),
            subject: text("sub"),
            audience,
            nonce: text("nonce"),
            access_token_hash: text("at_hash"),
            claims,
        };
        if let Some(access_token) = access_token.filter(|t| !t.is_empty())
            && !id_token.access_token_hash.is_empty()
            && !at_hash_matches(header.alg, access_token, &id_token.access_token_hash)
        {
            return Err(VerifyError("access token hash does not match value in ID token".into()));
        }
        Ok(id_token)
    }
}

/// The issuer's key for the token: by `kid` when it names one, else the only key that fits the
/// algorithm; its type must match the algorithm's (no RSA key for an ES token, and so on).
fn find_key(issuer: &Issuer, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
    let fits = |jwk: &&Jwk| {
        let kind_fits = matches!(
            (&jwk.algorithm, alg),
            (
                AlgorithmParameters::RSA(_),
                Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512
            ) | (
                AlgorithmParameters::RSA(_),
                Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512
            ) | (
                AlgorithmParameters::EllipticCurve(_),
                Algorithm::ES256 | Algorithm::ES384
            ) | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
        );
        let alg_fits = jwk
            .common
            .key_algorithm
            .is_none_or(|declared| format!("{declared:?}") == format!("{alg:?}"));
        kind_fits && alg_fits
    };
    let candidates: Vec<&Jwk> = issuer.keys.keys.iter().filter(fits).collect();
    let chosen = match kid {
        Some(kid) => candidates
            .into_iter()
            .find(|jwk| jwk.common.key_id.as_deref() == Some(kid)),
        None if candidates.len() == 1 => candidates.into_iter().next(),
        None => None,
    }?;
    DecodingKey::from_jwk(chosen).ok()
}

/// OIDC Core §3.1.3.6: the left half of the access token's hash, with the hash of the token's
/// algorithm, base64url without padding.
fn at_hash_matches(alg: Algorithm, access_token: &str, expected: &str) -> bool {
    let digest: Vec<u8> = match alg {
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 => sha2::Sha384::digest(access_token).to_vec(),
        Algorithm::RS512 | Algorithm::PS512 | Algorithm::EdDSA => sha2::Sha512::digest(access_token).to_vec(),
        _ => sha2::Sha256::digest(access_token).to_vec(),
    };
    let half = &digest[..digest.len() / 2];
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(half);
    subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), expected.trim_end_matches('=').as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_sha256() {
        // OIDC Core's example: access token "jHkWEdUXMU1BwAsC4vtUsZwnNSj2rSL..." style; computed independently.
        let token = "ya29.a0AfH6SMBx";
        let digest = sha2::Sha256::digest(token);
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]);
        assert!(at_hash_matches(Algorithm::RS256, token, &expected));
        assert!(!at_hash_matches(Algorithm::RS256, "another", &expected));
    }

    #[test]
    fn the_issuer_is_read_without_verifying() {
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"iss":"https://appleid.apple.com"}"#);
        assert_eq!(
            unverified_issuer(&format!("e30.{payload}.sig")).as_deref(),
            Some("https://appleid.apple.com")
        );
        assert_eq!(unverified_issuer("garbage"), None);
    }
}
