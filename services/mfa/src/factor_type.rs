//! The factor types GoTrue knows, their switches (`GOTRUE_MFA_{TOTP,PHONE,WEB_AUTHN}_*`) and the
//! answers that name them.

use auth_core::{ErrorCode, ServiceError};

/// The factor types GoTrue knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorType {
    Totp,
    Phone,
    WebAuthn,
}

impl FactorType {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "totp" => Some(Self::Totp),
            "phone" => Some(Self::Phone),
            "webauthn" => Some(Self::WebAuthn),
            _ => None,
        }
    }

    /// The `factor_type` value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Phone => "phone",
            Self::WebAuthn => "webauthn",
        }
    }

    /// How GoTrue's messages name the type.
    fn label(self) -> &'static str {
        match self {
            Self::Totp => "TOTP",
            Self::Phone => "Phone",
            Self::WebAuthn => "WebAuthn",
        }
    }

    fn enroll_code(self) -> ErrorCode {
        match self {
            Self::Totp => ErrorCode::MfaTotpEnrollNotEnabled,
            Self::Phone => ErrorCode::MfaPhoneEnrollNotEnabled,
            Self::WebAuthn => ErrorCode::MfaWebAuthnEnrollNotEnabled,
        }
    }

    fn verify_code(self) -> ErrorCode {
        match self {
            Self::Totp => ErrorCode::MfaTotpVerifyNotEnabled,
            Self::Phone => ErrorCode::MfaPhoneVerifyNotEnabled,
            Self::WebAuthn => ErrorCode::MfaWebAuthnVerifyNotEnabled,
        }
    }

    /// GoTrue's `ErrorCodeMFA*EnrollDisabled` answer.
    pub fn enroll_disabled(self) -> ServiceError {
        ServiceError::unprocessable(
            self.enroll_code(),
            format!("MFA enroll is disabled for {}", self.label()),
        )
    }

    /// GoTrue's `ErrorCodeMFA*VerifyDisabled` answer.
    pub fn verify_disabled(self) -> ServiceError {
        ServiceError::unprocessable(
            self.verify_code(),
            format!("MFA verification is disabled for {}", self.label()),
        )
    }

    /// GoTrue's `VerifyFactor` for a WebAuthn factor with verification off: the verify message with
    /// the enrol code (`mfa_webauthn_enroll_not_enabled`).
    pub fn verify_disabled_with_enroll_code(self) -> ServiceError {
        ServiceError::unprocessable(
            self.enroll_code(),
            format!("MFA verification is disabled for {}", self.label()),
        )
    }

    /// The configured switches of this type.
    pub fn switches(self, mfa: &auth_core::config::MfaConfig) -> auth_core::config::FactorSwitches {
        match self {
            Self::Totp => mfa.totp,
            Self::Phone => mfa.phone,
            Self::WebAuthn => mfa.web_authn,
        }
    }
}

pub fn invalid_factor_type() -> ServiceError {
    ServiceError::bad_request(
        ErrorCode::ValidationFailed,
        "factor_type needs to be totp, phone, or webauthn",
    )
}
