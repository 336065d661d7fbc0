//! `POST /passkeys/authentication/options` and `/verify` (GoTrue's `PasskeyAuthenticationOptions`,
//! `PasskeyAuthenticationVerify`): a sign-in with a discoverable credential. The options name no
//! user; the authenticator's assertion carries the user handle, which with the credential id picks
//! the one passkey that must verify it.

use auth_account::login;
use auth_account::users;
use auth_core::{ErrorCode, ServiceError};
use auth_proto::common::v1::SessionTokens;
use auth_proto::mfa::v1::{PasskeyCeremony, PasskeyVerifyRequest};
use chrono::Utc;
use serde_json::json;

use super::store::{self, ChallengeKind};
use super::{ceremony, challenge_expired, challenge_not_found, parse_challenge_id, verification_failed};
use crate::state::MfaState;

/// GoTrue's `PasskeyLogin` authentication method, in the session's amr.
const AMR_METHOD: &str = "passkey";

/// Expired, unanswered sign-in ceremonies removed each time one starts: anyone may start one, so
/// they must not pile up (GoTrue keeps them forever).
const EXPIRED_CHALLENGES_REMOVED_PER_START: i64 = 100;

impl MfaState {
    pub async fn passkey_authentication_options(&self) -> Result<PasskeyCeremony, ServiceError> {
        self.require_passkeys()?;
        let rp = self.passkey_relying_party()?;
        let (options, session_data) = ceremony::start_authentication(&rp)?;
        let expires_at = Utc::now() + self.config.webauthn.challenge_expiry;
        let challenge_id =
            store::insert_challenge(&self.db, None, ChallengeKind::Authentication, &session_data, expires_at).await?;
        if let Err(error) = store::delete_expired_challenges(&self.db, EXPIRED_CHALLENGES_REMOVED_PER_START).await {
            tracing::warn!(%error, "expired passkey ceremonies could not be removed");
        }
        Ok(PasskeyCeremony {
            challenge_id: challenge_id.to_string(),
            options_json: options.to_string(),
            expires_at: expires_at.timestamp(),
        })
    }

    pub async fn passkey_authentication_verify(
        &self,
        request: PasskeyVerifyRequest,
    ) -> Result<SessionTokens, ServiceError> {
        self.require_passkeys()?;
        let challenge_id = parse_challenge_id(&request.challenge_id, &request.credential_json)?;
        let challenge = store::consume_challenge(&self.db, challenge_id, ChallengeKind::Authentication, None)
            .await?
            .ok_or_else(challenge_not_found)?;
        if challenge.expires_at < Utc::now() {
            return Err(challenge_expired());
        }
        let assertion = ceremony::Assertion::parse(&request.credential_json).map_err(verification_failed)?;
        let unknown = || verification_failed(ceremony::Refusal::Rejected("no such user or passkey".into()));
        let user = users::find_by_id(&self.db, assertion.user_id)
            .await?
            .ok_or_else(unknown)?;
        let passkey = store::find_by_credential_id(&self.db, user.id, assertion.credential_id())
            .await?
            .ok_or_else(unknown)?;
        let rp = self.passkey_relying_party()?;
        let result = assertion
            .verify(&rp, challenge.session_data, &passkey)
            .map_err(verification_failed)?;

        if !user.email().is_empty() && !user.is_email_confirmed() {
            return Err(ServiceError::forbidden(
                ErrorCode::EmailNotConfirmed,
                "Email not confirmed",
            ));
        }
        if !user.phone().is_empty() && !user.is_phone_confirmed() {
            return Err(ServiceError::forbidden(
                ErrorCode::PhoneNotConfirmed,
                "Phone not confirmed",
            ));
        }
        if user.is_banned(Utc::now()) {
            return Err(ServiceError::forbidden(ErrorCode::UserBanned, "User is banned"));
        }

        // The counter is stored whatever happens next: the authenticator has moved on.
        store::record_use(
            &self.db,
            passkey.id,
            i64::from(result.counter()),
            result.backup_eligible(),
            result.backup_state(),
        )
        .await?;
        let login = login::record(&self.db, &user, json!({"passkey_id": passkey.id})).await?;
        match self.issue_session(user.id, AMR_METHOD, request.context).await {
            Ok(tokens) => Ok(tokens),
            Err(error) => {
                login::undo(&self.db, login).await;
                Err(error)
            }
        }
    }
}
