//! `POST /passkeys/registration/options` and `/verify` (GoTrue's `PasskeyRegistrationOptions`,
//! `PasskeyRegistrationVerify`): a signed-in, non-anonymous, non-SSO user adds a passkey, up to
//! `GOTRUE_PASSKEY_MAX_PASSKEYS_PER_USER`.

use auth_account::audit::{self, AuditAction};
use auth_account::principal::Principal;
use auth_account::users::UserRecord;
use auth_core::{ErrorCode, ServiceError};
use auth_proto::mfa::v1::{Passkey, PasskeyCeremony, PasskeyVerifyRequest};
use chrono::Utc;
use serde_json::json;

use super::store::{self, ChallengeKind};
use super::{ceremony, challenge_expired, challenge_not_found, parse_challenge_id, verification_failed};
use crate::factors::signed_in;
use crate::state::MfaState;

fn too_many_passkeys() -> ServiceError {
    ServiceError::unprocessable(ErrorCode::TooManyPasskeys, "Maximum number of passkeys reached")
}

impl MfaState {
    /// Who may register: a signed-in user who is not anonymous (`requireNotAnonymous`), not an SSO
    /// user, and at AAL2 when they have a verified factor.
    async fn registering_user<'p>(&self, principal: &'p Principal) -> Result<&'p UserRecord, ServiceError> {
        self.require_passkeys()?;
        let (user, _, _) = signed_in(principal)?;
        if user.is_sso_user {
            return Err(ServiceError::unprocessable(
                ErrorCode::ValidationFailed,
                "SSO users cannot register passkeys",
            ));
        }
        self.require_passkey_management_aal(principal).await?;
        Ok(user)
    }

    pub async fn passkey_registration_options(&self, principal: &Principal) -> Result<PasskeyCeremony, ServiceError> {
        let user = self.registering_user(principal).await?;
        let existing = store::list(&self.db, user.id).await?;
        if existing.len() >= self.config.passkey_max_per_user as usize {
            return Err(too_many_passkeys());
        }
        let rp = self.passkey_relying_party()?;
        let (options, session_data) = ceremony::start_registration(&rp, user, &existing)?;
        let expires_at = Utc::now() + self.config.webauthn.challenge_expiry;
        let challenge_id = store::insert_challenge(
            &self.db,
            Some(user.id),
            ChallengeKind::Registration,
            &session_data,
            expires_at,
        )
        .await?;
        Ok(PasskeyCeremony {
            challenge_id: challenge_id.to_string(),
            options_json: options.to_string(),
            expires_at: expires_at.timestamp(),
        })
    }

    pub async fn passkey_registration_verify(
        &self,
        principal: &Principal,
        request: PasskeyVerifyRequest,
    ) -> Result<Passkey, ServiceError> {
        let user = self.registering_user(principal).await?;
        let challenge_id = parse_challenge_id(&request.challenge_id, &request.credential_json)?;
        let challenge = store::consume_challenge(&self.db, challenge_id, ChallengeKind::Registration, Some(user.id))
            .await?
            .ok_or_else(challenge_not_found)?;
        if challenge.expires_at < Utc::now() {
            return Err(challenge_expired());
        }
        let rp = self.passkey_relying_party()?;
        let new_passkey = ceremony::finish_registration(&rp, user.id, challenge.session_data, &request.credential_json)
            .map_err(verification_failed)?;

        let mut tx = self.db.begin().await?;
        // Counted under a per-user lock: two registrations at once cannot both take the last place.
        store::lock_user_passkeys(&mut tx, user.id).await?;
        if store::count(&mut tx, user.id).await? >= i64::from(self.config.passkey_max_per_user) {
            return Err(too_many_passkeys());
        }
        let passkey = store::insert(&mut tx, &new_passkey).await?.ok_or_else(|| {
            ServiceError::unprocessable(
                ErrorCode::WebauthnCredentialExists,
                "This credential is already registered",
            )
        })?;
        audit::record(
            &mut *tx,
            user,
            AuditAction::PasskeyCreated,
            Some(json!({"passkey_id": passkey.id})),
        )
        .await?;
        tx.commit().await?;
        Ok(passkey.to_proto())
    }
}
