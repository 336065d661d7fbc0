//! The error contract between services and the gateway.
//!
//! A service fails with a [`ServiceError`]: a GoTrue `error_code`, the HTTP status GoTrue would answer
//! with (GoTrue reuses one code with different statuses on different endpoints, so the status travels
//! with it) and a user-facing message. It becomes a `tonic::Status` with a meaningful gRPC code for
//! internal callers plus a `google.rpc.ErrorInfo { reason: <error_code>, domain: "auth",
//! metadata: { http_status, ... } }`. [`decode_status`] reads it back on the other side.
//!
//! Internal failures never carry their cause across the wire: the cause is logged where it happened
//! and the caller sees a generic `unexpected_failure`.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every error the suite produces.
pub const ERROR_DOMAIN: &str = "auth";
/// `ErrorInfo.metadata` key carrying the HTTP status GoTrue would use.
pub const HTTP_STATUS_KEY: &str = "http_status";
/// `ErrorInfo.metadata` key carrying comma-separated weak password reasons.
pub const WEAK_PASSWORD_REASONS_KEY: &str = "weak_password_reasons";
/// Marks a 5xx whose message is meant for the client (GoTrue's deliberate 500s such as "Unable to
/// get SMS provider"); other 5xx messages are replaced by the generic one at the gateway.
pub const PUBLIC_MESSAGE_KEY: &str = "public_message";
/// Marks an OAuth-style error (GoTrue's `OAuthError`, rendered `{"error","error_description"}`):
/// the value is the `error`, the message the `error_description`.
pub const OAUTH_ERROR_KEY: &str = "oauth_error";

macro_rules! error_codes {
    ($($variant:ident => $text:literal,)*) => {
        /// GoTrue's `error_code` values (`internal/api/apierrors/errorcode.go`), plus the two of the
        /// suite's own marked below.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $($variant,)* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $text,)* }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(ErrorCode::$variant),)* _ => None }
            }
        }
    };
}

error_codes! {
    Unknown => "unknown",
    UnexpectedFailure => "unexpected_failure",
    ValidationFailed => "validation_failed",
    BadJson => "bad_json",
    EmailExists => "email_exists",
    PhoneExists => "phone_exists",
    BadJwt => "bad_jwt",
    NotAdmin => "not_admin",
    NoAuthorization => "no_authorization",
    UserNotFound => "user_not_found",
    SessionNotFound => "session_not_found",
    SessionExpired => "session_expired",
    RefreshTokenNotFound => "refresh_token_not_found",
    RefreshTokenAlreadyUsed => "refresh_token_already_used",
    FlowStateNotFound => "flow_state_not_found",
    FlowStateExpired => "flow_state_expired",
    FlowStateAlreadyUsed => "flow_state_already_used",
    SignupDisabled => "signup_disabled",
    UserBanned => "user_banned",
    ProviderEmailNeedsVerification => "provider_email_needs_verification",
    InviteNotFound => "invite_not_found",
    BadOauthState => "bad_oauth_state",
    BadOauthCallback => "bad_oauth_callback",
    OauthProviderNotSupported => "oauth_provider_not_supported",
    UnexpectedAudience => "unexpected_audience",
    SingleIdentityNotDeletable => "single_identity_not_deletable",
    EmailConflictIdentityNotDeletable => "email_conflict_identity_not_deletable",
    IdentityAlreadyExists => "identity_already_exists",
    EmailProviderDisabled => "email_provider_disabled",
    PhoneProviderDisabled => "phone_provider_disabled",
    TooManyEnrolledMfaFactors => "too_many_enrolled_mfa_factors",
    MfaFactorNameConflict => "mfa_factor_name_conflict",
    MfaFactorNotFound => "mfa_factor_not_found",
    MfaIpAddressMismatch => "mfa_ip_address_mismatch",
    MfaChallengeExpired => "mfa_challenge_expired",
    MfaVerificationFailed => "mfa_verification_failed",
    MfaVerificationRejected => "mfa_verification_rejected",
    InsufficientAal => "insufficient_aal",
    CaptchaFailed => "captcha_failed",
    SamlProviderDisabled => "saml_provider_disabled",
    ManualLinkingDisabled => "manual_linking_disabled",
    SmsSendFailed => "sms_send_failed",
    EmailNotConfirmed => "email_not_confirmed",
    PhoneNotConfirmed => "phone_not_confirmed",
    SamlRelayStateNotFound => "saml_relay_state_not_found",
    SamlRelayStateExpired => "saml_relay_state_expired",
    SamlIdpNotFound => "saml_idp_not_found",
    SamlAssertionNoUserId => "saml_assertion_no_user_id",
    SamlAssertionNoEmail => "saml_assertion_no_email",
    UserAlreadyExists => "user_already_exists",
    SsoProviderNotFound => "sso_provider_not_found",
    SsoProviderDisabled => "sso_provider_disabled",
    SamlMetadataFetchFailed => "saml_metadata_fetch_failed",
    SamlIdpAlreadyExists => "saml_idp_already_exists",
    SsoDomainAlreadyExists => "sso_domain_already_exists",
    SamlEntityIdMismatch => "saml_entity_id_mismatch",
    Conflict => "conflict",
    ProviderDisabled => "provider_disabled",
    UserSsoManaged => "user_sso_managed",
    ReauthenticationNeeded => "reauthentication_needed",
    SamePassword => "same_password",
    ReauthenticationNotValid => "reauthentication_not_valid",
    OtpExpired => "otp_expired",
    OtpDisabled => "otp_disabled",
    IdentityNotFound => "identity_not_found",
    WeakPassword => "weak_password",
    OverRequestRateLimit => "over_request_rate_limit",
    OverEmailSendRateLimit => "over_email_send_rate_limit",
    OverSmsSendRateLimit => "over_sms_send_rate_limit",
    BadCodeVerifier => "bad_code_verifier",
    AnonymousProviderDisabled => "anonymous_provider_disabled",
    HookTimeout => "hook_timeout",
    HookTimeoutAfterRetry => "hook_timeout_after_retry",
    HookPayloadOverSizeLimit => "hook_payload_over_size_limit",
    HookPayloadInvalidContentType => "hook_payload_invalid_content_type",
    RequestTimeout => "request_timeout",
    MfaPhoneEnrollNotEnabled => "mfa_phone_enroll_not_enabled",
    MfaPhoneVerifyNotEnabled => "mfa_phone_verify_not_enabled",
    MfaTotpEnrollNotEnabled => "mfa_totp_enroll_not_enabled",
    MfaTotpVerifyNotEnabled => "mfa_totp_verify_not_enabled",
    MfaWebAuthnEnrollNotEnabled => "mfa_webauthn_enroll_not_enabled",
    MfaWebAuthnVerifyNotEnabled => "mfa_webauthn_verify_not_enabled",
    MfaVerifiedFactorExists => "mfa_verified_factor_exists",
    CurrentPasswordRequired => "current_password_required",
    CurrentPasswordInvalid => "current_password_invalid",
    EmailAddressNotAuthorized => "email_address_not_authorized",
    EmailAddressInvalid => "email_address_invalid",
    RequestEntityTooLarge => "request_entity_too_large",
    FeatureDisabled => "feature_disabled",
    OauthClientNotFound => "oauth_client_not_found",
    PasskeyDisabled => "passkey_disabled",
    // Not GoTrue codes: GoTrue answers an unknown route or method with a plain-text page; the suite
    // answers JSON in the same error shape so clients can always parse errors.
    NotFound => "not_found",
    MethodNotAllowed => "method_not_allowed",
    CustomProviderNotFound => "custom_provider_not_found",
    EmailAddressNotProvided => "email_address_not_provided",
    InvalidCredentials => "invalid_credentials",
    OauthAuthorizationNotFound => "oauth_authorization_not_found",
    OauthClientStateExpired => "oauth_client_state_expired",
    OauthClientStateNotFound => "oauth_client_state_not_found",
    OauthConsentNotFound => "oauth_consent_not_found",
    OauthDynamicClientRegistrationDisabled => "oauth_dynamic_client_registration_disabled",
    OauthInvalidState => "oauth_invalid_state",
    OverCustomProviderQuota => "over_custom_provider_quota",
    TooManyPasskeys => "too_many_passkeys",
    Web3ProviderDisabled => "web3_provider_disabled",
    Web3UnsupportedChain => "web3_unsupported_chain",
    WebauthnChallengeExpired => "webauthn_challenge_expired",
    WebauthnChallengeNotFound => "webauthn_challenge_not_found",
    WebauthnCredentialExists => "webauthn_credential_exists",
    WebauthnCredentialNotFound => "webauthn_credential_not_found",
    WebauthnVerificationFailed => "webauthn_verification_failed",
}

/// A failure a service reports to its caller.
#[derive(Debug, thiserror::Error)]
#[error("{code:?} ({http_status}): {message}")]
pub struct ServiceError {
    pub code: ErrorCode,
    pub http_status: u16,
    pub message: String,
    /// Extra `ErrorInfo.metadata` entries, e.g. [`WEAK_PASSWORD_REASONS_KEY`].
    pub metadata: HashMap<String, String>,
    /// gRPC code for internal callers; derived from the HTTP status unless set.
    pub grpc_code: Option<Code>,
    /// The cause of an internal failure: logged, never sent.
    #[source]
    pub source: Option<anyhow::Error>,
}

impl ServiceError {
    pub fn new(http_status: u16, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            http_status,
            message: message.into(),
            metadata: HashMap::new(),
            grpc_code: None,
            source: None,
        }
    }

    /// The error another service answered a call with, passed on unchanged (it already carries
    /// GoTrue's code and status); a transport failure becomes an internal error.
    #[allow(clippy::needless_pass_by_value)] // used as `map_err(ServiceError::forwarded)`
    pub fn forwarded(status: Status) -> Self {
        match decode_status(&status) {
            Some(decoded) => {
                let code = ErrorCode::parse(&decoded.code).unwrap_or(ErrorCode::UnexpectedFailure);
                let mut error = Self::new(decoded.http_status, code, decoded.message);
                error.metadata = decoded.metadata;
                error.metadata.remove(HTTP_STATUS_KEY);
                error
            }
            // The service could not be reached, or the connection broke mid-call: retryable.
            None if is_unreachable(&status) => {
                tracing::error!(grpc_code = ?status.code(), grpc_message = status.message(), "service unreachable");
                Self::new(503, ErrorCode::UnexpectedFailure, SERVICE_UNAVAILABLE_MESSAGE)
            }
            None => Self::internal(anyhow::anyhow!("service call failed: {status}")),
        }
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn unprocessable(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(422, code, message)
    }

    pub fn forbidden(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(403, code, message)
    }

    pub fn not_found(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }

    /// An unexpected failure. The cause stays in the process that saw it.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        Self {
            source: Some(source.into()),
            ..Self::new(500, ErrorCode::UnexpectedFailure, UNEXPECTED_FAILURE_MESSAGE)
        }
    }

    /// A server-side failure whose message GoTrue shows to clients (a configuration problem).
    pub fn server_misconfigured(message: impl Into<String>) -> Self {
        Self::new(500, ErrorCode::UnexpectedFailure, message).with_metadata(PUBLIC_MESSAGE_KEY, "true")
    }

    /// GoTrue's `OAuthError` (a 400 rendered `{"error","error_description"}`), e.g. the
    /// `id_token` grant's "invalid request" answers.
    pub fn oauth(error: &str, description: impl Into<String>) -> Self {
        Self::bad_request(ErrorCode::ValidationFailed, description).with_metadata(OAUTH_ERROR_KEY, error)
    }

    pub fn with_metadata(mut self, key: &str, value: impl Into<String>) -> Self {
        self.metadata.insert(key.to_string(), value.into());
        self
    }

    pub fn with_grpc_code(mut self, code: Code) -> Self {
        self.grpc_code = Some(code);
        self
    }

    fn default_grpc_code(&self) -> Code {
        match (self.code, self.http_status) {
            (
                ErrorCode::UserAlreadyExists
                | ErrorCode::EmailExists
                | ErrorCode::PhoneExists
                | ErrorCode::IdentityAlreadyExists,
                _,
            ) => Code::AlreadyExists,
            (_, 400 | 413 | 422) => Code::InvalidArgument,
            (_, 401) => Code::Unauthenticated,
            (_, 403) => Code::PermissionDenied,
            (_, 404) => Code::NotFound,
            (_, 409) => Code::Aborted,
            (_, 429) => Code::ResourceExhausted,
            (_, 503) => Code::Unavailable,
            (_, 504) => Code::DeadlineExceeded,
            _ => Code::Internal,
        }
    }
}

pub const UNEXPECTED_FAILURE_MESSAGE: &str = "Unexpected failure, please check server logs for more information";

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Self {
        if let Some(source) = &err.source {
            tracing::error!(error = ?source, code = err.code.as_str(), "request failed");
        }
        let grpc_code = err.grpc_code.unwrap_or_else(|| err.default_grpc_code());
        let mut metadata = err.metadata;
        metadata.insert(HTTP_STATUS_KEY.to_string(), err.http_status.to_string());
        let details = ErrorDetails::with_error_info(err.code.as_str(), ERROR_DOMAIN, metadata);
        Status::with_error_details(grpc_code, err.message, details)
    }
}

#[cfg(feature = "db")]
impl From<sqlx::Error> for ServiceError {
    fn from(err: sqlx::Error) -> Self {
        // Text Postgres cannot store (a NUL character, `\u0000` in JSON) is the caller's mistake,
        // whichever field carried it: 400, not 500. The gateway refuses it before it gets here;
        // this covers internal gRPC callers and any field it does not see.
        if let sqlx::Error::Database(db) = &err
            && matches!(db.code().as_deref(), Some("22021" | "22P05"))
        {
            return Self::bad_request(ErrorCode::ValidationFailed, NUL_CHARACTER_MESSAGE);
        }
        Self::internal(err)
    }
}

/// The answer for text holding the NUL character, which Postgres cannot store.
pub const NUL_CHARACTER_MESSAGE: &str = "Text must not contain the NUL character (\\u0000)";

/// What a caller is told when a service it needs cannot be reached.
pub const SERVICE_UNAVAILABLE_MESSAGE: &str = "Service temporarily unavailable, please retry after a moment.";

/// Whether a call failed because the service could not be reached or the connection broke (not
/// because the service answered an error): `Unavailable`, or `Unknown` carrying a transport error
/// (what a connection dropped mid-call yields). Statuses sent by a server never carry a source.
pub fn is_unreachable(status: &Status) -> bool {
    match status.code() {
        tonic::Code::Unavailable => true,
        tonic::Code::Unknown => std::error::Error::source(status).is_some(),
        _ => false,
    }
}

/// An error as the gateway (or any internal client) reads it back from a `Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedError {
    pub code: String,
    pub http_status: u16,
    pub message: String,
    pub metadata: HashMap<String, String>,
}

/// Reads a suite error back from a `Status`. `None` when the status carries no suite `ErrorInfo`
/// (a transport failure, a panic, a foreign server): the caller treats that as an unexpected failure.
pub fn decode_status(status: &Status) -> Option<DecodedError> {
    let info = status.get_error_details().error_info().cloned()?;
    if info.domain != ERROR_DOMAIN {
        return None;
    }
    let http_status = info.metadata.get(HTTP_STATUS_KEY)?.parse().ok()?;
    Some(DecodedError {
        code: info.reason,
        http_status,
        message: status.message().to_string(),
        metadata: info.metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_text() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
        }
    }

    #[test]
    fn status_carries_code_http_status_and_metadata() {
        let err = ServiceError::unprocessable(ErrorCode::WeakPassword, "Password is too weak")
            .with_metadata(WEAK_PASSWORD_REASONS_KEY, "length,characters");
        let status = Status::from(err);
        assert_eq!(status.code(), Code::InvalidArgument);
        let decoded = decode_status(&status).expect("suite error");
        assert_eq!(decoded.code, "weak_password");
        assert_eq!(decoded.http_status, 422);
        assert_eq!(decoded.message, "Password is too weak");
        assert_eq!(
            decoded.metadata.get(WEAK_PASSWORD_REASONS_KEY).map(String::as_str),
            Some("length,characters")
        );
    }

    #[test]
    fn grpc_codes_stay_meaningful_for_internal_callers() {
        let cases = [
            (
                ServiceError::unprocessable(ErrorCode::UserAlreadyExists, "x"),
                Code::AlreadyExists,
            ),
            (ServiceError::forbidden(ErrorCode::BadJwt, "x"), Code::PermissionDenied),
            (
                ServiceError::new(401, ErrorCode::NoAuthorization, "x"),
                Code::Unauthenticated,
            ),
            (ServiceError::not_found(ErrorCode::UserNotFound, "x"), Code::NotFound),
            (ServiceError::new(409, ErrorCode::Conflict, "x"), Code::Aborted),
            (
                ServiceError::new(429, ErrorCode::OverRequestRateLimit, "x"),
                Code::ResourceExhausted,
            ),
        ];
        for (err, code) in cases {
            assert_eq!(Status::from(err).code(), code);
        }
    }

    #[test]
    fn internal_failures_do_not_leak_their_cause() {
        let status = Status::from(ServiceError::internal(anyhow::anyhow!(
            "password authentication failed for user secret_db_user"
        )));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret_db_user"));
        assert_eq!(decode_status(&status).expect("suite error").code, "unexpected_failure");
    }

    #[test]
    fn foreign_statuses_are_not_decoded() {
        assert_eq!(decode_status(&Status::unavailable("connection refused")), None);
    }
}
