//! What a custom provider's admin asked of its claims: the allow-listed raw claims copied into
//! `custom_claims` (GoTrue's `captureAllowedClaims`), then the attribute mapping (GoTrue's
//! `applyAttributeMapping`): `target: "source"` copies a claim, any other JSON value is a literal.
//!
//! Beyond GoTrue: a source that is not one of the standard claims is looked up among the
//! provider's raw claims too (GoTrue sees only the standard ones, so `{"sub": "id"}` or
//! `{"email": "upn"}` silently did nothing there).

use serde_json::{Map, Value};

use crate::providers::claims::Claims;

/// Copies each allow-listed key present in `raw` into `custom_claims` as it is.
pub fn capture_allowed(raw: &Map<String, Value>, allowlist: &[String], claims: &mut Claims) {
    for key in allowlist {
        if let Some(value) = raw.get(key) {
            claims.custom_claims.insert(key.clone(), value.clone());
        }
    }
}

/// The claims after `mapping`.
pub fn apply(claims: Claims, mapping: &Map<String, Value>, raw: &Map<String, Value>) -> Claims {
    if mapping.is_empty() {
        return claims;
    }
    let Ok(Value::Object(mut mapped)) = serde_json::to_value(&claims) else {
        return claims;
    };
    for (target, source) in mapping {
        let value = match source {
            Value::String(name) => match mapped.get(name).or_else(|| raw.get(name)) {
                Some(value) => value.clone(),
                None => continue,
            },
            literal => literal.clone(),
        };
        mapped.insert(target.clone(), value);
    }
    Claims::from_map(&mapped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn sources_are_copied_literals_set_and_missing_sources_ignored() {
        let raw = object(json!({"sub": "u1", "preferred_username": "ada", "upn": "ada@corp.example", "dept": "R&D"}));
        let claims = Claims::from_map(&raw);
        let mapping =
            object(json!({"name": "preferred_username", "email": "upn", "birthdate": 1990, "nickname": "absent"}));
        let mapped = apply(claims, &mapping, &raw);
        assert_eq!(mapped.name, "ada");
        assert_eq!(mapped.email, "ada@corp.example");
        assert_eq!(mapped.birthdate, "1990", "a value other than a string is a literal");
        assert_eq!(mapped.nickname, "");
        assert_eq!(mapped.subject, "u1");
    }

    #[test]
    fn only_allow_listed_claims_are_captured() {
        let raw = object(json!({"sub": "u1", "dept": "R&D", "groups": ["a", "b"], "secret_flag": true}));
        let mut claims = Claims::from_map(&raw);
        capture_allowed(&raw, &["dept".into(), "groups".into(), "missing".into()], &mut claims);
        assert_eq!(
            Value::Object(claims.custom_claims),
            json!({"dept": "R&D", "groups": ["a", "b"]})
        );
    }
}
