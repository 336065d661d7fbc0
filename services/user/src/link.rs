//! Manual identity linking (`GOTRUE_SECURITY_MANUAL_LINKING_ENABLED`): a signed-in user adds an
//! external identity (GoTrue's `linkIdentityToUser`, run when the callback of a flow started at
//! `GET /user/identities/authorize` comes back) or removes one (`DELETE /user/identities/{id}`,
//! GoTrue's `DeleteIdentity`).
//!
//! An account without an email takes the linked identity's (an anonymous user becomes permanent
//! once that address is verified); removing the identity that provided the account's email
//! promotes another identity's, as GoTrue's `UpdateUserEmailFromIdentities` ranks them.

use auth_account::audit::{self, AuditAction};
use auth_account::principal::Principal;
use auth_core::{ErrorCode, ServiceError};
use auth_proto::user::v1::{ExternalIdentityRequest, ExternalIdentityResponse, UnlinkIdentityRequest};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::code_purpose::EmailCode;
use crate::notifications::{self, Account, AccountChange};
use crate::state::UserState;
use crate::{store, validate};

/// No identity's email could become the account's: another account of the audience holds each.
struct EmailConflict;

impl UserState {
    pub async fn link_external_identity(
        &self,
        target_user_id: &str,
        request: ExternalIdentityRequest,
    ) -> Result<ExternalIdentityResponse, ServiceError> {
        let target_id = Uuid::parse_str(target_user_id)
            .map_err(|_| ServiceError::bad_request(ErrorCode::ValidationFailed, "target_user_id must be a UUID"))?;
        let provider = request.provider.as_str();
        let identity_data = validate::metadata(&request.identity_data_json)?;
        let email_verified = identity_data.get("email_verified").and_then(|v| v.as_bool()) == Some(true);

        let mut tx = self.db.begin().await?;
        sqlx::query!(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
            format!("identity:{provider}:{}", request.subject)
        )
        .execute(&mut *tx)
        .await?;
        let target = store::users::lock(&mut tx, target_id)
            .await?
            .ok_or_else(|| ServiceError::unprocessable(ErrorCode::UserNotFound, "Linking target user not found"))?;
        if let Some(existing) = store::identities::find_by_provider_id(&mut tx, &request.subject, provider).await? {
            let message = if existing.user_id == target_id {
                "Identity is already linked"
            } else {
                "Identity is already linked to another user"
            };
            return Err(ServiceError::unprocessable(ErrorCode::IdentityAlreadyExists, message));
        }
        let identity_id =
            store::identities::insert_external(&mut tx, target_id, provider, &request.subject, &identity_data).await?;
        let traits = json!({"identity_id": identity_id, "provider": provider, "provider_id": request.subject});
        audit::record(&mut *tx, &target, AuditAction::IdentityLinked, Some(traits)).await?;

        if target.email().is_empty() {
            match self.promote_identity_email(&mut tx, &target).await? {
                Ok(()) => {}
                Err(EmailConflict) => {
                    return Err(ServiceError::bad_request(
                        ErrorCode::EmailExists,
                        "A user with this email address has already been registered",
                    ));
                }
            }
            let promoted = store::users::load(&mut tx, target_id).await?;
            if !email_verified {
                // GoTrue keeps the link and asks the user to confirm the address, then refuses.
                if !promoted.email().is_empty() {
                    self.send_email_code(&mut tx, &promoted, EmailCode::Confirmation, false, "")
                        .await?;
                }
                tx.commit().await?;
                self.relay.nudge();
                self.accounts.forget(target_id);
                return Err(ServiceError::unprocessable(
                    ErrorCode::EmailNotConfirmed,
                    format!(
                        "Unverified email with {provider}. A confirmation email has been sent to your {provider} email"
                    ),
                ));
            }
            store::users::confirm_email(&mut tx, target_id).await?;
            store::one_time_tokens::delete_all(&mut tx, target_id).await?;
            if target.is_anonymous {
                store::users::make_permanent(&mut tx, target_id).await?;
            }
        }
        store::users::refresh_providers(&mut tx, target_id).await?;
        let linked = store::users::load(&mut tx, target_id).await?;
        if !linked.email().is_empty() {
            notifications::notify(
                &mut tx,
                &self.config,
                AccountChange::IdentityLinked { provider },
                account(&linked),
            )
            .await?;
        }
        store::users::record_sign_in(&mut tx, target_id).await?;
        tx.commit().await?;
        self.relay.nudge();
        self.accounts.forget(target_id);
        Ok(ExternalIdentityResponse {
            user_id: target_id.to_string(),
            decision: "link_account".into(),
        })
    }

    pub async fn unlink_identity(
        &self,
        principal: &Principal,
        request: UnlinkIdentityRequest,
    ) -> Result<(), ServiceError> {
        let user = principal.require_user()?;
        let identity_id = Uuid::parse_str(&request.identity_id)
            .map_err(|_| ServiceError::not_found(ErrorCode::ValidationFailed, "identity_id must be an UUID"))?;
        let audience = self.request_aud(request.context.as_ref());
        if principal.claims.aud() != Some(audience.as_str()) {
            return Err(ServiceError::forbidden(
                ErrorCode::UnexpectedAudience,
                "Token audience doesn't match request audience",
            ));
        }

        let mut tx = self.db.begin().await?;
        let user = store::users::lock(&mut tx, user.id)
            .await?
            .ok_or_else(|| ServiceError::not_found(ErrorCode::UserNotFound, "User not found"))?;
        if user.identities.0.len() <= 1 {
            return Err(ServiceError::unprocessable(
                ErrorCode::SingleIdentityNotDeletable,
                "User must have at least 1 identity after unlinking",
            ));
        }
        let identity = user
            .identities
            .0
            .iter()
            .find(|identity| identity.id == identity_id)
            .ok_or_else(|| ServiceError::unprocessable(ErrorCode::IdentityNotFound, "Identity doesn't exist"))?
            .clone();
        let traits =
            json!({"identity_id": identity.id, "provider": identity.provider, "provider_id": identity.provider_id});
        audit::record(&mut *tx, &user, AuditAction::IdentityUnlinked, Some(traits)).await?;
        store::identities::delete(&mut tx, user.id, identity.id).await?;
        if identity.provider == "phone" {
            store::users::drop_phone(&mut tx, user.id).await?;
        } else if let Err(EmailConflict) = self.promote_identity_email(&mut tx, &user).await? {
            return Err(ServiceError::unprocessable(
                ErrorCode::EmailConflictIdentityNotDeletable,
                "Unable to unlink identity due to email conflict",
            ));
        }
        store::users::refresh_providers(&mut tx, user.id).await?;
        // To the address the account had before: the unlinked identity may have provided it.
        notifications::notify(
            &mut tx,
            &self.config,
            AccountChange::IdentityUnlinked {
                provider: &identity.provider,
            },
            account(&user),
        )
        .await?;
        tx.commit().await?;
        self.relay.nudge();
        self.accounts.forget(user.id);
        Ok(())
    }

    /// GoTrue's `UpdateUserEmailFromIdentities`: the account keeps its email while an identity has
    /// it; otherwise the best-ranked identity's email not held by another account of the audience
    /// becomes the account's (confirmed only when that identity's provider verified it, or under
    /// autoconfirm), and every pending code dies with the old address.
    async fn promote_identity_email(
        &self,
        conn: &mut PgConnection,
        user: &auth_account::users::UserRecord,
    ) -> Result<Result<(), EmailConflict>, ServiceError> {
        let ranked = store::identities::emails_by_promotion_rank(conn, user.id).await?;
        if ranked.iter().any(|identity| identity.email == user.email()) {
            return Ok(Ok(()));
        }
        let aud = user.aud.clone().unwrap_or_default();
        let mut chosen = None;
        for identity in &ranked {
            let taken = !identity.email.is_empty()
                && auth_account::users::find_by_email(&mut *conn, &identity.email, &aud)
                    .await?
                    .is_some_and(|holder| holder.id != user.id);
            if !taken {
                chosen = Some(identity);
                break;
            }
        }
        let Some(chosen) = chosen else {
            return Ok(Err(EmailConflict));
        };
        let confirmed = !chosen.email.is_empty() && (chosen.verified || self.config.mailer.autoconfirm);
        if let Err(error) = store::users::promote_email(conn, user.id, &chosen.email, confirmed).await {
            return match error.as_database_error().and_then(|d| d.constraint()) {
                Some("users_email_partial_key") => Ok(Err(EmailConflict)),
                _ => Err(error.into()),
            };
        }
        store::users::clear_pending_codes(conn, user.id).await?;
        store::one_time_tokens::delete_all(conn, user.id).await?;
        Ok(Ok(()))
    }
}

fn account(user: &auth_account::users::UserRecord) -> Account<'_> {
    Account {
        email: user.email(),
        phone: user.phone(),
        data_json: serde_json::Value::Object(user.user_metadata().clone()).to_string(),
    }
}
