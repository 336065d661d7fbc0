//! Input rules shared by the flows, with GoTrue's messages.

use std::sync::LazyLock;

use auth_core::{ErrorCode, ServiceError};
use regex::Regex;

/// The `checkmail` format GoTrue validates with.
#[expect(clippy::expect_used, reason = "a constant pattern, compiled by every test run")]
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$",
    )
    .expect("static regex")
});

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::bad_request(ErrorCode::ValidationFailed, message)
}

/// Returns the address lower-cased, as it is stored.
pub fn email(email: &str) -> Result<String, ServiceError> {
    if email.is_empty() {
        return Err(invalid("An email address is required"));
    }
    if email.len() > 255 {
        return Err(invalid("An email address is too long"));
    }
    if !EMAIL.is_match(email) {
        return Err(invalid("Unable to validate email address: invalid format"));
    }
    Ok(email.to_lowercase())
}

/// E.164 digits without `+` and spaces, as stored.
pub fn phone(phone: &str) -> Result<String, ServiceError> {
    auth_account::users::normalize_phone(phone).ok_or_else(|| invalid("Invalid phone number format (E.164 required)"))
}

pub use auth_account::pkce::validate as pkce;

/// User metadata as sent: a JSON object, or nothing.
pub fn metadata(json: &str) -> Result<serde_json::Map<String, serde_json::Value>, ServiceError> {
    if json.is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(serde_json::Value::Null) => Ok(serde_json::Map::new()),
        _ => Err(ServiceError::bad_request(
            ErrorCode::BadJson,
            "Could not parse request body as JSON: data must be an object",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_phones() {
        assert_eq!(email("A@Example.COM").expect("valid"), "a@example.com");
        assert!(email("not-an-email").is_err());
        assert!(email("").is_err());
        assert_eq!(phone("+1 555 123 4567").expect("valid"), "15551234567");
        assert!(phone("+0123").is_err());
        assert!(phone("12345678901234567").is_err());
        assert!(phone("abc").is_err());
    }

    #[test]
    fn pkce_needs_both_parts() {
        assert!(pkce("", "").is_ok());
        assert!(pkce("s256", "").is_err());
        assert!(pkce("s256", &"a".repeat(43)).is_ok());
        assert!(pkce("md5", &"a".repeat(43)).is_err());
    }
}
