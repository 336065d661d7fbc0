//! The public JWK set (`GET /.well-known/jwks.json`): the public halves of the configured asymmetric
//! signing keys. Symmetric (`oct`) keys are secrets and are never listed, so an HS256-only
//! configuration publishes `{"keys": []}`, as GoTrue does.

use serde_json::{Map, Value};

type Jwk = Map<String, Value>;

/// Members that hold private key material (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Members each key type needs for its public half.
fn required_public_members(kty: &str) -> Option<&'static [&'static str]> {
    match kty {
        "RSA" => Some(&["n", "e"]),
        "EC" => Some(&["crv", "x", "y"]),
        "OKP" => Some(&["crv", "x"]),
        _ => None,
    }
}

/// Public halves of `keys` (the private JWKs of `GOTRUE_JWT_KEYS`), marked `use=sig`,
/// `key_ops=["verify"]`. Fails on a key that is neither `oct` nor a complete RSA/EC/OKP key.
pub fn public_jwks(keys: &[Jwk]) -> anyhow::Result<Vec<Jwk>> {
    let mut public = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        let kty = key.get("kty").and_then(Value::as_str).unwrap_or_default();
        if kty == "oct" {
            continue;
        }
        let Some(required) = required_public_members(kty) else {
            anyhow::bail!("GOTRUE_JWT_KEYS[{index}]: unsupported key type {kty:?}");
        };
        if let Some(missing) = required.iter().find(|member| !key.contains_key(**member)) {
            anyhow::bail!("GOTRUE_JWT_KEYS[{index}]: {kty} key lacks \"{missing}\"");
        }
        let mut jwk: Jwk = key
            .iter()
            .filter(|(name, _)| !PRIVATE_MEMBERS.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        jwk.insert("use".into(), Value::from("sig"));
        jwk.insert("key_ops".into(), Value::from(vec!["verify"]));
        public.push(jwk);
    }
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwk(value: Value) -> Jwk {
        match value {
            Value::Object(map) => map,
            other => panic!("not a JSON object: {other}"),
        }
    }

    #[test]
    fn hmac_keys_are_never_published() {
        let keys = [jwk(
            json!({"kty": "oct", "k": "c2VjcmV0", "kid": "a", "key_ops": ["sign", "verify"]}),
        )];
        assert!(public_jwks(&keys).expect("valid").is_empty());
    }

    #[test]
    fn private_members_are_stripped() {
        let keys = [
            jwk(
                json!({"kty": "RSA", "kid": "r1", "alg": "RS256", "n": "AQAB-n", "e": "AQAB",
                       "d": "secret", "p": "s", "q": "s", "dp": "s", "dq": "s", "qi": "s", "key_ops": ["sign"]}),
            ),
            jwk(json!({"kty": "EC", "kid": "e1", "alg": "ES256", "crv": "P-256", "x": "x", "y": "y", "d": "secret"})),
            jwk(json!({"kty": "OKP", "kid": "o1", "alg": "EdDSA", "crv": "Ed25519", "x": "x", "d": "secret"})),
        ];
        let public = public_jwks(&keys).expect("valid");
        assert_eq!(public.len(), 3);
        for key in &public {
            for member in PRIVATE_MEMBERS {
                assert!(!key.contains_key(*member), "{member} leaked in {key:?}");
            }
            assert_eq!(key["use"], "sig");
            assert_eq!(key["key_ops"], json!(["verify"]));
        }
        assert_eq!(public[0]["n"], "AQAB-n");
        assert_eq!(public[0]["kid"], "r1");
    }

    #[test]
    fn incomplete_keys_are_refused() {
        let keys = [jwk(json!({"kty": "RSA", "d": "secret"}))];
        assert!(public_jwks(&keys).is_err());
        let keys = [jwk(json!({"kty": "wat"}))];
        assert!(public_jwks(&keys).is_err());
    }
}
