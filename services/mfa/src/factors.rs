//! A user's own factors (GoTrue's `api/mfa.go`): `POST /factors` (enrol), `POST
//! /factors/{id}/challenge`, `POST /factors/{id}/verify` and `DELETE /factors/{id}`.
//!
//! The type-specific parts live in `totp.rs`, `phone.rs` and `webauthn.rs`; phone and WebAuthn
//! factors are off by default, as in GoTrue (`GOTRUE_MFA_PHONE_*`, `GOTRUE_MFA_WEB_AUTHN_*`).
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

use crate::factor_type::{FactorType, invalid_factor_type};
use crate::failures;
use crate::notifications::{self, FactorChange};
use crate::phone::{self, PhoneCode};
use crate::state::MfaState;
use crate::store::{self, ChallengeSecrets, OwnedFactor};
use crate::{totp, webauthn};

/// GoTrue's `requireNotAnonymous` and the session every factor route needs.
pub(crate) fn signed_in(principal: &Principal) -> Result<(&UserRecord, Uuid, bool), ServiceError> {
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
    /// What to store instead of a TOTP factor's `stored` secret once it verified: sealed anew when
    /// encryption is on and it is in the clear or under an old key (GoTrue's `shouldReEncrypt`).
    fn resealed_secret(&self, factor_id: Uuid, stored: &str) -> Result<Option<String>, ServiceError> {
        let encryption = &self.config.security.db_encryption;
        if !auth_account::db_encryption::needs_resealing(encryption, stored) {
            return Ok(None);
        }
        let row = factor_id.to_string();
        let clear = auth_account::db_encryption::open(encryption, &row, stored).map_err(ServiceError::internal)?;
        let sealed = auth_account::db_encryption::seal(encryption, &row, &clear).map_err(ServiceError::internal)?;
        Ok(Some(sealed))
    }

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
        match factor_type {
            FactorType::Totp => self.enroll_totp(user, aal2, request).await,
            FactorType::Phone => self.enroll_phone(user, aal2, request).await,
            FactorType::WebAuthn => self.enroll_webauthn(user, aal2, request).await,
        }
    }

    async fn enroll_webauthn(
        &self,
        user: &UserRecord,
        aal2: bool,
        request: EnrollFactorRequest,
    ) -> Result<EnrollFactorResponse, ServiceError> {
        self.check_room_for_factor(user, &request.friendly_name, aal2).await?;
        let factor_id = Uuid::new_v4();
        self.insert_factor(
            user,
            factor_id,
            &request.friendly_name,
            FactorType::WebAuthn,
            None,
            None,
        )
        .await?;
        Ok(EnrollFactorResponse {
            id: factor_id.to_string(),
            r#type: "webauthn".into(),
            friendly_name: request.friendly_name,
            totp: None,
            phone: String::new(),
        })
    }

    async fn enroll_totp(
        &self,
        user: &UserRecord,
        aal2: bool,
        request: EnrollFactorRequest,
    ) -> Result<EnrollFactorResponse, ServiceError> {
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
        // Sealed with the factor's id when GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPT is on, as GoTrue's
        // `SetSecret` does.
        let stored_secret = auth_account::db_encryption::seal(
            &self.config.security.db_encryption,
            &factor_id.to_string(),
            &enrollment.secret,
        )
        .map_err(ServiceError::internal)?;
        self.insert_factor(
            user,
            factor_id,
            &request.friendly_name,
            FactorType::Totp,
            Some(&stored_secret),
            None,
        )
        .await?;
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

    async fn enroll_phone(
        &self,
        user: &UserRecord,
        aal2: bool,
        request: EnrollFactorRequest,
    ) -> Result<EnrollFactorResponse, ServiceError> {
        let number = phone::number_to_enroll(&request.phone)?;
        phone::make_room_for_number(&self.db, user.id, &number).await?;
        self.check_room_for_factor(user, &request.friendly_name, aal2).await?;
        let factor_id = Uuid::new_v4();
        self.insert_factor(
            user,
            factor_id,
            &request.friendly_name,
            FactorType::Phone,
            None,
            Some(&number),
        )
        .await?;
        // GoTrue answers with the number as it was sent.
        Ok(EnrollFactorResponse {
            id: factor_id.to_string(),
            r#type: "phone".into(),
            friendly_name: request.friendly_name,
            totp: None,
            phone: request.phone,
        })
    }

    /// Stores a new unverified factor with its audit entry.
    async fn insert_factor(
        &self,
        user: &UserRecord,
        factor_id: Uuid,
        friendly_name: &str,
        factor_type: FactorType,
        secret: Option<&str>,
        number: Option<&str>,
    ) -> Result<(), ServiceError> {
        let mut tx = self.db.begin().await?;
        store::insert(
            &mut tx,
            factor_id,
            user.id,
            friendly_name,
            factor_type.name(),
            secret,
            number,
        )
        .await?;
        audit::record(
            &mut *tx,
            user,
            AuditAction::FactorInProgress,
            Some(json!({"factor_id": factor_id, "factor_type": factor_type.name()})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
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
        store::delete_expired_unverified(&self.db, self.config.mfa.factor_expiry.as_secs_f64()).await?;
        let factors = store::summaries(&self.db, user.id).await?;
        if factors
            .iter()
            .any(|f| f.friendly_name.as_deref().unwrap_or_default() == friendly_name)
        {
            return Err(store::name_conflict_error(friendly_name));
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
    async fn own_factor(&self, user: &UserRecord, factor_id: &str) -> Result<OwnedFactor, ServiceError> {
        let id = Uuid::parse_str(factor_id)
            .map_err(|_| ServiceError::not_found(ErrorCode::ValidationFailed, "factor_id must be an UUID"))?;
        let factor = store::find_owned(&self.db, user.id, id).await?;
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
        let factor_type = self.verifiable(&factor)?;
        let phone_code = match factor_type {
            FactorType::Phone => Some(PhoneCode::new(&self.config, factor.phone.as_deref(), &request.channel)?),
            FactorType::Totp | FactorType::WebAuthn => None,
        };
        let ceremony = match factor_type {
            FactorType::WebAuthn => {
                let rp = self.relying_party()?;
                Some(webauthn::start(&rp, &self.db, user, &factor).await?)
            }
            FactorType::Totp | FactorType::Phone => None,
        };
        let challenge_id = Uuid::new_v4();
        let mut tx = self.db.begin().await?;
        let code_hash = phone_code.as_ref().map(|code| code.hash.clone());
        let sends_sms = phone_code.is_some();
        if let Some(code) = phone_code {
            code.send(&mut tx, &self.config, factor.id).await?;
        }
        let secrets = ChallengeSecrets {
            otp_code_hash: code_hash.as_deref(),
            webauthn_session_data: ceremony.as_ref().map(|(_, state)| state),
        };
        let created_at = store::insert_challenge(&mut tx, challenge_id, factor.id, &client_ip(), secrets).await?;
        audit::record(
            &mut *tx,
            user,
            AuditAction::ChallengeCreated,
            Some(json!({"factor_id": factor.id, "factor_status": factor.status})),
        )
        .await?;
        tx.commit().await?;
        if sends_sms {
            self.relay.nudge();
        }
        let expires_at = created_at + self.config.mfa.challenge_expiry;
        Ok(ChallengeFactorResponse {
            id: challenge_id.to_string(),
            r#type: factor.factor_type.clone(),
            expires_at: expires_at.timestamp(),
            webauthn: ceremony.map(|(options, _)| options),
        })
    }

    /// The factor's type, when its verification is switched on and served.
    fn verifiable(&self, factor: &OwnedFactor) -> Result<FactorType, ServiceError> {
        let factor_type = FactorType::parse(&factor.factor_type).ok_or_else(invalid_factor_type)?;
        if !factor_type.switches(&self.config.mfa).verify {
            return Err(factor_type.verify_disabled());
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
        let is_webauthn = factor.factor_type == FactorType::WebAuthn.name();
        if request.code.is_empty() && !is_webauthn {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Code needs to be non-empty",
            ));
        }
        if is_webauthn && !self.config.mfa.web_authn.verify {
            // GoTrue's verify (not its challenge) answers with the enrol code here.
            return Err(FactorType::WebAuthn.verify_disabled_with_enroll_code());
        }
        let factor_type = self.verifiable(&factor)?;
        let answer = if is_webauthn {
            Some(webauthn::check_answer(request.webauthn.as_ref())?)
        } else {
            None
        };
        let challenge_id = Uuid::parse_str(&request.challenge_id).map_err(|_| {
            ServiceError::bad_request(
                ErrorCode::BadJson,
                "Could not parse request body as JSON: challenge_id must be an UUID",
            )
        })?;
        let challenge = self.check_challenge(factor.id, challenge_id).await?;
        failures::ensure_not_paused(&self.db, factor.id).await?;

        // The proof is checked before the transaction; a TOTP step is claimed inside it.
        let proof = match (factor_type, answer) {
            (FactorType::WebAuthn, Some(answer)) => {
                let rp = self.relying_party()?;
                let session_data = challenge.web_authn_session_data;
                Proof::WebAuthn(webauthn::finish(&rp, &self.db, user, &factor, session_data, answer).await?)
            }
            (FactorType::Totp, _) => {
                let now = u64::try_from(Utc::now().timestamp()).unwrap_or_default();
                let secret = factor
                    .secret
                    .as_deref()
                    .map(|stored| {
                        auth_account::db_encryption::open(
                            &self.config.security.db_encryption,
                            &factor.id.to_string(),
                            stored,
                        )
                    })
                    .transpose()
                    .map_err(ServiceError::internal)?;
                let step = secret
                    .as_deref()
                    .and_then(|secret| totp::accepted_step(secret, &request.code, now));
                self.counted(factor.id, step.map(Proof::TotpStep).ok_or_else(totp::invalid_code))
                    .await?
            }
            // `answer` is always set for WebAuthn factors (checked above).
            (FactorType::WebAuthn, None) => {
                return Err(ServiceError::internal(anyhow::anyhow!(
                    "WebAuthn verification without an answer"
                )));
            }
            (FactorType::Phone, _) => {
                let phone = factor.phone.as_deref();
                let matches = phone::code_matches(phone, challenge.otp_code.as_deref(), &request.code);
                let proof = if matches {
                    Ok(Proof::PhoneCode)
                } else {
                    Err(phone::invalid_code())
                };
                self.counted(factor.id, proof).await?
            }
        };

        let resealed = match (&proof, factor.secret.as_deref()) {
            (Proof::TotpStep(_), Some(stored)) => self.resealed_secret(factor.id, stored)?,
            _ => None,
        };
        let mut tx = self.db.begin().await?;
        match &proof {
            // A TOTP code is accepted once: only for a step newer than the last this factor accepted.
            Proof::TotpStep(step) => {
                if !store::accept_totp_step(&mut tx, factor.id, i64::try_from(*step).unwrap_or(i64::MAX)).await? {
                    return Err(totp::invalid_code());
                }
                if let (Some(sealed), Some(stored)) = (&resealed, factor.secret.as_deref()) {
                    store::reseal_factor_secret(&mut tx, factor.id, sealed, stored).await?;
                }
            }
            Proof::WebAuthn(update) => {
                store::save_webauthn_credential(&mut tx, update.factor_id, &update.credential).await?
            }
            Proof::PhoneCode => {}
        }
        if !store::spend_challenge(&mut tx, challenge_id).await? {
            return Err(ip_mismatch());
        }
        let first_verification = store::mark_verified(&mut tx, factor.id).await?;
        failures::forget(&mut tx, factor.id).await?;
        store::delete_other_unverified(&mut tx, user.id, factor.id, &factor.factor_type).await?;
        audit::record(
            &mut *tx,
            user,
            AuditAction::VerificationAttempted,
            Some(json!({"factor_id": factor.id, "challenge_id": challenge_id, "factor_type": factor.factor_type})),
        )
        .await?;
        let notified = first_verification
            && notifications::notify(&mut tx, &self.config, user, FactorChange::Enrolled, &factor.factor_type).await?;
        tx.commit().await?;
        if notified {
            self.relay.nudge();
        }

        self.step_up_session(user.id, session_id, Some(factor.id), amr_method(&factor.factor_type))
            .await
    }

    /// A wrong code counts toward the factor's pause (`suite_mfa_failures`).
    async fn counted(&self, factor_id: Uuid, proof: Result<Proof, ServiceError>) -> Result<Proof, ServiceError> {
        if proof.is_err() {
            let suite = &self.config.suite;
            failures::record(&self.db, factor_id, suite.mfa_max_failures, suite.mfa_lockout).await?;
        }
        proof
    }

    fn relying_party(&self) -> Result<std::sync::Arc<webauthn_rs::Webauthn>, ServiceError> {
        if let Some(rp) = self.webauthn.get() {
            return Ok(rp.clone());
        }
        let rp = std::sync::Arc::new(webauthn::relying_party(&self.config.webauthn)?);
        Ok(self.webauthn.get_or_init(|| rp).clone())
    }

    /// GoTrue's `validateChallenge`: the factor's challenge, unverified, from the caller's address,
    /// not expired (an expired one is deleted).
    async fn check_challenge(&self, factor_id: Uuid, challenge_id: Uuid) -> Result<store::Challenge, ServiceError> {
        let challenge = store::find_challenge(&self.db, factor_id, challenge_id)
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
            store::delete_challenge(&self.db, challenge_id).await?;
            return Err(ServiceError::unprocessable(
                ErrorCode::MfaChallengeExpired,
                format!(
                    "MFA challenge {challenge_id} has expired, verify against another challenge or create a new challenge."
                ),
            ));
        }
        Ok(challenge)
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
        store::delete(&mut tx, factor.id).await?;
        audit::record(
            &mut *tx,
            user,
            AuditAction::FactorUnenrolled,
            Some(json!({"factor_id": factor.id, "factor_status": factor.status, "session_id": session_id})),
        )
        .await?;
        let notified = notifications::notify(
            &mut tx,
            &self.config,
            user,
            FactorChange::Unenrolled,
            &factor.factor_type,
        )
        .await?;
        tx.commit().await?;
        if notified {
            self.relay.nudge();
        }
        Ok(UnenrollFactorResponse {
            id: factor.id.to_string(),
        })
    }
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

fn ip_mismatch() -> ServiceError {
    ServiceError::unprocessable(
        ErrorCode::MfaIpAddressMismatch,
        "Challenge and verify IP addresses mismatch.",
    )
}

/// What a verification proved, checked before its transaction.
enum Proof {
    /// the TOTP time step the code belongs to
    TotpStep(u64),
    PhoneCode,
    /// the credential to store (registered, or its counter moved on)
    WebAuthn(webauthn::CredentialUpdate),
}
