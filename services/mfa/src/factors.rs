//! A user's own factors (GoTrue's `api/mfa.go`): `POST /factors` (enrol), `POST
//! /factors/{id}/challenge`, `POST /factors/{id}/verify` and `DELETE /factors/{id}`.
//!
//! TOTP is complete. Phone and WebAuthn factors are off by default in GoTrue too
//! (`GOTRUE_MFA_PHONE_*`, `GOTRUE_MFA_WEB_AUTHN_*`); switched on, they are refused for now with a
//! message saying so (see the README).
//!
//! A verification writes this service's tables in one transaction (the code's time step, the
//! challenge, the factor), commits, and only then asks the token service to step the session up:
//! no call is made while the transaction is open. Should that call fail, the factor stays verified
//! and the client challenges and verifies again.

use std::net::IpAddr;

use auth_account::audit::{self, AuditAction};
use auth_account::principal::Principal;
use auth_account::users::UserRecord;
use auth_core::{ErrorCode, ServiceError};
use auth_proto::common::v1 as pb;
use auth_proto::mfa::v1::{
    ChallengeFactorRequest, ChallengeFactorResponse, EnrollFactorRequest, EnrollFactorResponse, TotpEnrollment,
    UnenrollFactorRequest, UnenrollFactorResponse, VerifyFactorRequest,
};
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use crate::failures;
use crate::state::MfaState;
use crate::totp;

/// The factor types GoTrue knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FactorType {
    Totp,
    Phone,
    WebAuthn,
}

impl FactorType {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "totp" => Some(Self::Totp),
            "phone" => Some(Self::Phone),
            "webauthn" => Some(Self::WebAuthn),
            _ => None,
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
    fn enroll_disabled(self) -> ServiceError {
        ServiceError::unprocessable(
            self.enroll_code(),
            format!("MFA enroll is disabled for {}", self.label()),
        )
    }

    /// GoTrue's `ErrorCodeMFA*VerifyDisabled` answer.
    fn verify_disabled(self) -> ServiceError {
        ServiceError::unprocessable(
            self.verify_code(),
            format!("MFA verification is disabled for {}", self.label()),
        )
    }

    /// Switched on, but not served by this release yet.
    fn not_available(self) -> ServiceError {
        ServiceError::unprocessable(
            self.enroll_code(),
            format!("MFA with {} factors is not available in this release yet", self.label()),
        )
    }

    /// The configured switches of this type.
    fn switches(self, mfa: &auth_core::config::MfaConfig) -> auth_core::config::FactorSwitches {
        match self {
            Self::Totp => mfa.totp,
            Self::Phone => mfa.phone,
            Self::WebAuthn => mfa.web_authn,
        }
    }
}

fn invalid_factor_type() -> ServiceError {
    ServiceError::bad_request(
        ErrorCode::ValidationFailed,
        "factor_type needs to be totp, phone, or webauthn",
    )
}

/// GoTrue's `requireNotAnonymous` and the session every factor route needs.
fn signed_in(principal: &Principal) -> Result<(&UserRecord, Uuid, bool), ServiceError> {
    let user = principal.require_user()?;
    if principal.claims.is_anonymous() {
        return Err(ServiceError::forbidden(
            ErrorCode::NoAuthorization,
            "Anonymous user not allowed to perform these actions",
        ));
    }
    let session = principal.session.as_ref().ok_or_else(|| {
        ServiceError::internal(anyhow::anyhow!(
            "A valid session and a registered user are required to manage factors"
        ))
    })?;
    Ok((user, session.id, session.aal.as_deref() == Some("aal2")))
}

/// The caller's address as a challenge records it (`inet`); unknown callers share `0.0.0.0`.
fn client_ip() -> String {
    let ip = auth_core::client_ip::current();
    match ip.parse::<IpAddr>() {
        Ok(parsed) => parsed.to_string(),
        Err(_) => "0.0.0.0".to_string(),
    }
}

impl MfaState {
    /// `POST /factors`.
    pub async fn enroll(
        &self,
        principal: &Principal,
        request: EnrollFactorRequest,
    ) -> Result<EnrollFactorResponse, ServiceError> {
        let (user, _, aal2) = signed_in(principal)?;
        let factor_type = FactorType::parse(&request.factor_type).ok_or_else(invalid_factor_type)?;
        if !factor_type.switches(&self.config.mfa).enroll {
            return Err(factor_type.enroll_disabled());
        }
        if factor_type != FactorType::Totp {
            return Err(factor_type.not_available());
        }
        let issuer = match request.issuer.as_str() {
            "" => site_host(&self.config.site_url),
            issuer => issuer.to_string(),
        };
        self.check_room_for_factor(user, &request.friendly_name, aal2).await?;

        let enrollment = totp::enroll(&issuer, user.email()).map_err(|error| {
            tracing::warn!(%error, "TOTP enrolment failed");
            ServiceError::server_misconfigured("Error generating QR Code")
        })?;
        let factor_id = Uuid::new_v4();
        let mut tx = self.db.begin().await?;
        sqlx::query!(
            "INSERT INTO mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, secret) \
             VALUES ($1, $2, $3, 'totp', 'unverified', now(), now(), $4)",
            factor_id,
            user.id,
            request.friendly_name,
            enrollment.secret
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| name_conflict(e, &request.friendly_name))?;
        audit::record(
            &mut *tx,
            user,
            AuditAction::FactorInProgress,
            Some(json!({"factor_id": factor_id})),
        )
        .await?;
        tx.commit().await?;
        Ok(EnrollFactorResponse {
            id: factor_id.to_string(),
            r#type: "totp".into(),
            friendly_name: request.friendly_name,
            totp: Some(TotpEnrollment {
                qr_code: enrollment.qr_code_svg,
                secret: enrollment.secret,
                uri: enrollment.uri,
            }),
            phone: String::new(),
        })
    }

    /// GoTrue's `validateFactors`: expired unverified factors go first (everyone's, as GoTrue
    /// does), then the name must be free, the limits not reached, and a user with a verified
    /// factor must be at AAL2.
    async fn check_room_for_factor(
        &self,
        user: &UserRecord,
        friendly_name: &str,
        aal2: bool,
    ) -> Result<(), ServiceError> {
        let expiry = self.config.mfa.factor_expiry.as_secs_f64();
        sqlx::query!(
            "DELETE FROM mfa_factors f WHERE f.status <> 'verified' \
             AND NOT EXISTS (SELECT 1 FROM mfa_challenges c WHERE c.factor_id = f.id) \
             AND f.created_at + make_interval(secs => $1) < now()",
            expiry
        )
        .execute(&self.db)
        .await?;
        let factors = sqlx::query!(
            r#"SELECT friendly_name, status::text = 'verified' AS "verified!" FROM mfa_factors WHERE user_id = $1"#,
            user.id
        )
        .fetch_all(&self.db)
        .await?;
        if factors
            .iter()
            .any(|f| f.friendly_name.as_deref().unwrap_or_default() == friendly_name)
        {
            return Err(name_conflict_error(friendly_name));
        }
        let verified = factors.iter().filter(|f| f.verified).count();
        let mfa = &self.config.mfa;
        if factors.len() >= mfa.max_enrolled_factors as usize || verified >= mfa.max_verified_factors as usize {
            return Err(ServiceError::unprocessable(
                ErrorCode::TooManyEnrolledMfaFactors,
                "Maximum number of verified factors reached, unenroll to continue",
            ));
        }
        if verified > 0 && !aal2 {
            return Err(ServiceError::forbidden(
                ErrorCode::InsufficientAal,
                "AAL2 required to enroll a new factor",
            ));
        }
        Ok(())
    }

    /// The caller's own factor `factor_id` (GoTrue's `loadFactor`).
    async fn own_factor(&self, user: &UserRecord, factor_id: &str) -> Result<OwnFactor, ServiceError> {
        let id = Uuid::parse_str(factor_id)
            .map_err(|_| ServiceError::not_found(ErrorCode::ValidationFailed, "factor_id must be an UUID"))?;
        let factor = sqlx::query_as!(
            OwnFactor,
            r#"SELECT id, factor_type::text AS "factor_type!", status::text AS "status!",
                      status::text = 'verified' AS "verified!", secret
               FROM mfa_factors WHERE id = $1 AND user_id = $2"#,
            id,
            user.id
        )
        .fetch_optional(&self.db)
        .await?;
        factor.ok_or_else(|| ServiceError::not_found(ErrorCode::MfaFactorNotFound, "Factor not found"))
    }

    /// `POST /factors/{id}/challenge`.
    pub async fn challenge(
        &self,
        principal: &Principal,
        request: ChallengeFactorRequest,
    ) -> Result<ChallengeFactorResponse, ServiceError> {
        let (user, _, _) = signed_in(principal)?;
        let factor = self.own_factor(user, &request.factor_id).await?;
        self.verifiable(&factor)?;
        let challenge_id = Uuid::new_v4();
        let mut tx = self.db.begin().await?;
        let created_at = sqlx::query_scalar!(
            "WITH stamped AS (UPDATE mfa_factors SET last_challenged_at = clock_timestamp() WHERE id = $2) \
             INSERT INTO mfa_challenges (id, factor_id, created_at, ip_address) \
             VALUES ($1, $2, now(), $3::text::inet) RETURNING created_at",
            challenge_id,
            factor.id,
            client_ip()
        )
        .fetch_one(&mut *tx)
        .await?;
        audit::record(
            &mut *tx,
            user,
            AuditAction::ChallengeCreated,
            Some(json!({"factor_id": factor.id, "factor_status": factor.status})),
        )
        .await?;
        tx.commit().await?;
        let expires_at = created_at + self.config.mfa.challenge_expiry;
        Ok(ChallengeFactorResponse {
            id: challenge_id.to_string(),
            r#type: factor.factor_type.clone(),
            expires_at: expires_at.timestamp(),
        })
    }

    /// The factor's type, when its verification is switched on and served.
    fn verifiable(&self, factor: &OwnFactor) -> Result<FactorType, ServiceError> {
        let factor_type = FactorType::parse(&factor.factor_type).ok_or_else(invalid_factor_type)?;
        if !factor_type.switches(&self.config.mfa).verify {
            return Err(factor_type.verify_disabled());
        }
        if factor_type != FactorType::Totp {
            return Err(factor_type.not_available());
        }
        Ok(factor_type)
    }

    /// `POST /factors/{id}/verify`: the factor verified, the session stepped up.
    pub async fn verify(
        &self,
        principal: &Principal,
        request: VerifyFactorRequest,
    ) -> Result<pb::SessionTokens, ServiceError> {
        let (user, session_id, _) = signed_in(principal)?;
        let factor = self.own_factor(user, &request.factor_id).await?;
        if request.code.is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Code needs to be non-empty",
            ));
        }
        self.verifiable(&factor)?;
        let challenge_id = Uuid::parse_str(&request.challenge_id).map_err(|_| {
            ServiceError::bad_request(
                ErrorCode::BadJson,
                "Could not parse request body as JSON: challenge_id must be an UUID",
            )
        })?;
        self.check_challenge(factor.id, challenge_id).await?;
        failures::ensure_not_paused(&self.db, factor.id).await?;

        let now = u64::try_from(Utc::now().timestamp()).unwrap_or_default();
        let step = factor
            .secret
            .as_deref()
            .and_then(|secret| totp::accepted_step(secret, &request.code, now));
        let Some(step) = step else {
            let suite = &self.config.suite;
            failures::record(&self.db, factor.id, suite.mfa_max_failures, suite.mfa_lockout).await?;
            return Err(invalid_code());
        };

        let mut tx = self.db.begin().await?;
        // A code is accepted once: only for a step newer than the last this factor accepted.
        let fresh = sqlx::query_scalar!(
            "INSERT INTO suite_totp_accepted_steps AS a (factor_id, step) VALUES ($1, $2) \
             ON CONFLICT (factor_id) DO UPDATE SET step = EXCLUDED.step, updated_at = now() \
             WHERE a.step < EXCLUDED.step RETURNING step",
            factor.id,
            i64::try_from(step).unwrap_or(i64::MAX)
        )
        .fetch_optional(&mut *tx)
        .await?;
        if fresh.is_none() {
            return Err(invalid_code());
        }
        let spent = sqlx::query!(
            "UPDATE mfa_challenges SET verified_at = now() WHERE id = $1 AND verified_at IS NULL",
            challenge_id
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent == 0 {
            return Err(ip_mismatch());
        }
        sqlx::query!(
            "UPDATE mfa_factors SET status = 'verified', updated_at = now() WHERE id = $1 AND status <> 'verified'",
            factor.id
        )
        .execute(&mut *tx)
        .await?;
        failures::forget(&mut tx, factor.id).await?;
        // GoTrue's `DeleteUnverifiedFactors`: the user's other unverified factors of this type go.
        sqlx::query!(
            "DELETE FROM mfa_factors WHERE user_id = $1 AND id <> $2 AND status = 'unverified' \
             AND factor_type = $3::text::factor_type",
            user.id,
            factor.id,
            factor.factor_type
        )
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut *tx,
            user,
            AuditAction::VerificationAttempted,
            Some(json!({"factor_id": factor.id, "challenge_id": challenge_id, "factor_type": factor.factor_type})),
        )
        .await?;
        tx.commit().await?;

        self.step_up_session(user.id, session_id, factor.id, amr_method(&factor.factor_type))
            .await
    }

    /// GoTrue's `validateChallenge`: the factor's challenge, unverified, from the caller's address,
    /// not expired (an expired one is deleted).
    async fn check_challenge(&self, factor_id: Uuid, challenge_id: Uuid) -> Result<(), ServiceError> {
        let challenge = sqlx::query!(
            r#"SELECT created_at, verified_at, host(ip_address) AS "ip!" FROM mfa_challenges
               WHERE id = $1 AND factor_id = $2"#,
            challenge_id,
            factor_id
        )
        .fetch_optional(&self.db)
        .await?
        .ok_or_else(|| {
            ServiceError::unprocessable(
                ErrorCode::MfaFactorNotFound,
                "MFA factor with the provided challenge ID not found",
            )
        })?;
        if challenge.verified_at.is_some() || challenge.ip != client_ip() {
            return Err(ip_mismatch());
        }
        if challenge.created_at + self.config.mfa.challenge_expiry < Utc::now() {
            sqlx::query!("DELETE FROM mfa_challenges WHERE id = $1", challenge_id)
                .execute(&self.db)
                .await?;
            return Err(ServiceError::unprocessable(
                ErrorCode::MfaChallengeExpired,
                format!(
                    "MFA challenge {challenge_id} has expired, verify against another challenge or create a new challenge."
                ),
            ));
        }
        Ok(())
    }

    /// `DELETE /factors/{id}`: a verified factor needs an AAL2 session; sessions it stepped up fall
    /// back to AAL1 (asked of the token service first, as the admin delete does).
    pub async fn unenroll(
        &self,
        principal: &Principal,
        request: UnenrollFactorRequest,
    ) -> Result<UnenrollFactorResponse, ServiceError> {
        let (user, session_id, aal2) = signed_in(principal)?;
        let factor = self.own_factor(user, &request.factor_id).await?;
        if factor.verified && !aal2 {
            return Err(ServiceError::unprocessable(
                ErrorCode::InsufficientAal,
                "AAL2 required to unenroll verified factor",
            ));
        }
        self.downgrade_factor_sessions(user.id, factor.id, amr_method(&factor.factor_type))
            .await?;
        let mut tx = self.db.begin().await?;
        sqlx::query!("DELETE FROM mfa_factors WHERE id = $1", factor.id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut *tx,
            user,
            AuditAction::FactorUnenrolled,
            Some(json!({"factor_id": factor.id, "factor_status": factor.status, "session_id": session_id})),
        )
        .await?;
        tx.commit().await?;
        Ok(UnenrollFactorResponse {
            id: factor.id.to_string(),
        })
    }
}

/// One of the caller's factors, with what the factor routes decide on.
struct OwnFactor {
    id: Uuid,
    factor_type: String,
    status: String,
    verified: bool,
    /// TOTP: base32
    secret: Option<String>,
}

/// The `amr` method a factor steps a session up with (GoTrue's `amrMethodForFactorType`).
pub fn amr_method(factor_type: &str) -> &'static str {
    match factor_type {
        "phone" => "mfa/phone",
        "webauthn" => "mfa/webauthn",
        _ => "totp",
    }
}

/// GoTrue's issuer default: the host (with its port) of `GOTRUE_SITE_URL`.
fn site_host(site_url: &url::Url) -> String {
    match (site_url.host_str(), site_url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        (None, _) => String::new(),
    }
}

fn invalid_code() -> ServiceError {
    ServiceError::unprocessable(ErrorCode::MfaVerificationFailed, "Invalid TOTP code entered")
}

fn ip_mismatch() -> ServiceError {
    ServiceError::unprocessable(
        ErrorCode::MfaIpAddressMismatch,
        "Challenge and verify IP addresses mismatch.",
    )
}

fn name_conflict_error(friendly_name: &str) -> ServiceError {
    ServiceError::unprocessable(
        ErrorCode::MfaFactorNameConflict,
        format!("A factor with the friendly name \"{friendly_name}\" for this user already exists"),
    )
}

/// A concurrent enrolment with the same name loses on the unique index.
fn name_conflict(error: sqlx::Error, friendly_name: &str) -> ServiceError {
    match error.as_database_error().and_then(|d| d.constraint()) {
        Some("mfa_factors_user_friendly_name_unique") => name_conflict_error(friendly_name),
        _ => error.into(),
    }
}
