//! PKCE parameters as GoTrue checks them wherever a flow starts (sign-up, magic link, recovery,
//! `/authorize`).

use auth_core::{ErrorCode, ServiceError};

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::bad_request(ErrorCode::ValidationFailed, message)
}

/// GoTrue's `validatePKCEParams`: both or neither; 43..128 unreserved characters.
pub fn validate(method: &str, challenge: &str) -> Result<(), ServiceError> {
    match (method.is_empty(), challenge.is_empty()) {
        (true, true) => Ok(()),
        (false, false) => {
            if !(43..=128).contains(&challenge.len()) {
                return Err(invalid("code challenge has to be between 43 and 128 characters"));
            }
            if !challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            {
                return Err(invalid(
                    "code challenge can only contain alphanumeric characters, hyphens, periods, underscores and tildes",
                ));
            }
            if !matches!(method.to_lowercase().as_str(), "s256" | "plain") {
                return Err(invalid(format!("code challenge method {method} not supported")));
            }
            Ok(())
        }
        _ => Err(invalid("PKCE flow requires code_challenge_method and code_challenge")),
    }
}
