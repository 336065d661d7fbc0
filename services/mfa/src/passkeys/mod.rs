//! Passkeys (GoTrue v2.196's `/passkeys` API, on when `GOTRUE_PASSKEY_ENABLED`): discoverable
//! WebAuthn credentials in `webauthn_credentials` that sign a user in without a password.
//!
//! - `registration.rs`: a signed-in user adds a passkey (options, then the authenticator's answer).
//! - `sign_in.rs`: anyone asks for sign-in options; an assertion naming a user's passkey signs that
//!   user in (a new AAL1 session with amr `passkey`, issued by the token service).
//! - `manage.rs`: the user's list, rename and delete, and the admin's list and delete.
//! - `ceremony.rs`: the WebAuthn checks (webauthn-rs core); `store.rs`: the SQL; `names.rs`: the
//!   name a new passkey gets.
//!
//! A ceremony's state waits in `webauthn_challenges` between its two requests and is taken out by
//! the request that answers it, so each ceremony is answered once across replicas.

mod ceremony;
mod manage;
mod names;
mod registration;
mod sign_in;
mod store;

use std::sync::Arc;

use auth_account::principal::Principal;
use auth_account::users::{UserRecord, timestamp};
use auth_core::{ErrorCode, ServiceError};
use auth_proto::mfa::v1 as mfa_pb;
use uuid::Uuid;
use webauthn_rs_core::WebauthnCore;

use crate::state::MfaState;

pub use store::StoredPasskey;

impl StoredPasskey {
    fn to_proto(&self) -> mfa_pb::Passkey {
        mfa_pb::Passkey {
            id: self.id.to_string(),
            friendly_name: self.friendly_name.clone(),
            created_at: timestamp(Some(self.created_at)),
            last_used_at: timestamp(self.last_used_at),
        }
    }
}

/// GoTrue's `Challenge not found or already used` / `Challenge has expired`, and the checks of a
/// verify request's body, shared by both ceremonies.
fn parse_challenge_id(challenge_id: &str, credential_json: &str) -> Result<Uuid, ServiceError> {
    let invalid = |message: &str| ServiceError::bad_request(ErrorCode::ValidationFailed, message);
    if challenge_id.is_empty() {
        return Err(invalid("challenge_id is required"));
    }
    if credential_json.is_empty() || credential_json == "null" {
        return Err(invalid("credential is required"));
    }
    Uuid::parse_str(challenge_id).map_err(|_| invalid("challenge_id must be a valid UUID"))
}

fn challenge_not_found() -> ServiceError {
    ServiceError::bad_request(
        ErrorCode::WebauthnChallengeNotFound,
        "Challenge not found or already used",
    )
}

fn challenge_expired() -> ServiceError {
    ServiceError::bad_request(ErrorCode::WebauthnChallengeExpired, "Challenge has expired")
}

/// An answer that does not check out. What was wrong is logged, not told: the caller learns
/// nothing about which users or passkeys exist.
fn verification_failed(refusal: ceremony::Refusal) -> ServiceError {
    let (message, reason) = match refusal {
        ceremony::Refusal::Malformed(reason) => ("Invalid credential response", reason),
        ceremony::Refusal::Rejected(reason) => ("Credential verification failed", reason),
    };
    tracing::info!(reason, "passkey ceremony refused");
    ServiceError::bad_request(ErrorCode::WebauthnVerificationFailed, message)
}

/// GoTrue's passkey 404 for a malformed id or a passkey that is not the user's.
fn passkey_not_found() -> ServiceError {
    ServiceError::not_found(ErrorCode::ValidationFailed, "Passkey not found")
}

fn parse_passkey_id(text: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(text).map_err(|_| passkey_not_found())
}

impl MfaState {
    /// GoTrue's `requirePasskeyEnabled`, before anything else on the `/passkeys` routes.
    pub(crate) fn require_passkeys(&self) -> Result<(), ServiceError> {
        if self.config.passkey_enabled {
            Ok(())
        } else {
            Err(ServiceError::not_found(
                ErrorCode::PasskeyDisabled,
                "Passkeys are disabled",
            ))
        }
    }

    /// The passkey relying party, built at first use.
    fn passkey_relying_party(&self) -> Result<Arc<WebauthnCore>, ServiceError> {
        if let Some(rp) = self.passkey_rp.get() {
            return Ok(rp.clone());
        }
        let rp = Arc::new(ceremony::relying_party(&self.config.webauthn)?);
        Ok(self.passkey_rp.get_or_init(|| rp).clone())
    }

    /// GoTrue's `requirePasskeyManagementAAL`: a user with a verified factor adds and removes
    /// passkeys from an AAL2 session only (a user without one cannot reach AAL2, so is not asked).
    async fn require_passkey_management_aal<'p>(
        &self,
        principal: &'p Principal,
    ) -> Result<&'p UserRecord, ServiceError> {
        let user = principal.require_user()?;
        let aal2 = principal
            .session
            .as_ref()
            .is_some_and(|s| s.aal.as_deref() == Some("aal2"));
        if !aal2
            && crate::store::summaries(&self.db, user.id)
                .await?
                .iter()
                .any(|f| f.verified)
        {
            return Err(ServiceError::forbidden(
                ErrorCode::InsufficientAal,
                "AAL2 session is required to manage passkeys when MFA is enabled",
            ));
        }
        Ok(user)
    }
}
