//! The admin API's checks of a custom provider's parameters, with GoTrue's messages
//! (`custom_oauth_admin.go`'s `validate*`), and up front what the table's CHECK constraints would
//! refuse (GoTrue lets those surface as a 500 with Postgres's text).

use auth_core::{ErrorCode, ServiceError};
use serde_json::{Map, Value};

use super::PREFIX;

/// OAuth parameters the server sets itself; an admin's `authorization_params` cannot override them.
const RESERVED_AUTHORIZATION_PARAMS: &[&str] = &[
    "client_id",
    "client_secret",
    "redirect_uri",
    "response_type",
    "state",
    "code_challenge",
    "code_challenge_method",
    "code_verifier",
    "nonce",
];

/// User fields a provider's claims must never set (privilege escalation, verification bypass).
const PROTECTED_MAPPING_TARGETS: &[&str] = &[
    "id",
    "aud",
    "role",
    "app_metadata",
    "created_at",
    "updated_at",
    "confirmed_at",
    "email_confirmed_at",
    "phone_confirmed_at",
    "email_verified",
    "phone_verified",
    "banned_until",
    "is_super_admin",
];

/// The URL columns' limit in the schema.
const MAX_URL_LENGTH: usize = 2048;

pub(super) fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::bad_request(ErrorCode::ValidationFailed, message)
}

/// The path's identifier, as GoTrue checks it.
pub(super) fn checked_identifier(identifier: &str) -> Result<(), ServiceError> {
    if identifier.is_empty() {
        return Err(invalid("identifier is required"));
    }
    if !identifier.starts_with(PREFIX) {
        return Err(invalid(format!(
            "identifier must start with 'custom:' prefix, e.g. 'custom:{identifier}'"
        )));
    }
    Ok(())
}

/// The schema's `custom_oauth_providers_identifier_format`.
pub(super) fn identifier_fits_schema(identifier: &str) -> bool {
    let bytes = identifier.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (2..=50).contains(&bytes.len())
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes.iter().all(|b| edge(b) || *b == b':' || *b == b'-')
}

/// A JSON object parameter (`attribute_mapping`, `authorization_params`).
pub(super) fn json_object(text: &str, name: &str) -> Result<Map<String, Value>, ServiceError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        _ => Err(invalid(format!("{name} must be a JSON object"))),
    }
}

/// GoTrue's `validateAuthorizationParams`.
pub(super) fn check_authorization_params(params: &Map<String, Value>) -> Result<(), ServiceError> {
    for (key, value) in params {
        if RESERVED_AUTHORIZATION_PARAMS.contains(&key.as_str()) {
            return Err(invalid(format!("Cannot override reserved OAuth parameter: {key}")));
        }
        if !value.is_string() {
            return Err(invalid(format!(
                "Authorization parameter {} must be a string",
                Value::String(key.clone())
            )));
        }
    }
    Ok(())
}

/// GoTrue's `validateAttributeMapping`.
pub(super) fn check_attribute_mapping(mapping: &Map<String, Value>) -> Result<(), ServiceError> {
    match mapping
        .keys()
        .find(|target| PROTECTED_MAPPING_TARGETS.contains(&target.as_str()))
    {
        Some(target) => Err(invalid(format!("Cannot map to protected system field: {target}"))),
        None => Ok(()),
    }
}

/// GoTrue's `validateCustomClaimsAllowlist`.
pub(super) fn check_allowlist(allowlist: &[String]) -> Result<(), ServiceError> {
    if allowlist.iter().any(|key| key.trim().is_empty()) {
        return Err(invalid("custom_claims_allowlist entries must be non-empty strings"));
    }
    Ok(())
}

/// The lengths the schema allows.
pub(super) fn check_lengths(name: Option<&str>, client_id: Option<&str>, urls: &[&str]) -> Result<(), ServiceError> {
    if name.is_some_and(|n| n.chars().count() > 100) {
        return Err(invalid("name must be at most 100 characters"));
    }
    if client_id.is_some_and(|c| c.chars().count() > 512) {
        return Err(invalid("client_id must be at most 512 characters"));
    }
    if urls.iter().any(|url| url.chars().count() > MAX_URL_LENGTH) {
        return Err(invalid("URLs must be at most 2048 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifiers_are_checked_as_the_schema_does() {
        assert!(identifier_fits_schema("custom:acme"));
        assert!(identifier_fits_schema("custom:acme-sso2"));
        assert!(!identifier_fits_schema("custom:Acme"));
        assert!(!identifier_fits_schema("custom:acme-"));
        assert!(!identifier_fits_schema(&format!("custom:{}", "a".repeat(44))));
        assert!(identifier_fits_schema(&format!("custom:{}", "a".repeat(43))));
    }

    #[test]
    fn reserved_parameters_and_protected_fields_are_refused() {
        let params = json!({"prompt": "login", "nonce": "x"});
        let err = check_authorization_params(params.as_object().unwrap()).unwrap_err();
        assert_eq!(err.message, "Cannot override reserved OAuth parameter: nonce");
        let params = json!({"max_age": 5});
        let err = check_authorization_params(params.as_object().unwrap()).unwrap_err();
        assert_eq!(err.message, "Authorization parameter \"max_age\" must be a string");
        let mapping = json!({"name": "login", "role": "admin_claim"});
        let err = check_attribute_mapping(mapping.as_object().unwrap()).unwrap_err();
        assert_eq!(err.message, "Cannot map to protected system field: role");
        assert!(check_allowlist(&["groups".into(), " ".into()]).is_err());
    }
}
