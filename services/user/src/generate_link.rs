//! `POST /admin/generate_link` (GoTrue's `adminGenerateLink`): an admin gets the link an email would
//! carry, to send it by their own means. The code is stored exactly where the matching email flow
//! stores it (user columns and `one_time_tokens`), so the link verifies through `/verify`; nothing
//! is queued for sending.

use crate::password::check_strength;
use auth_account::audit::{self, AuditAction};
use auth_account::principal::Principal;
use auth_account::users::{self, UserRecord};
use auth_core::{ErrorCode, ServiceError};
use auth_proto::user::v1::{GenerateLinkRequest, GenerateLinkResponse};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::code_purpose::LinkType;
use crate::invite::create_email_user;
use crate::state::UserState;
use crate::store;
use crate::store::one_time_tokens::OneTimeTokenKind;
use crate::update::merge;
use crate::validate;
use auth_outbox as outbox;

const DUPLICATE_EMAIL: &str = "A user with this email address has already been registered";

impl UserState {
    pub async fn generate_link(
        &self,
        principal: &Principal,
        request: GenerateLinkRequest,
    ) -> Result<GenerateLinkResponse, ServiceError> {
        principal.require_admin()?;
        let email = validate::email(&request.email)?;
        let mut link_type = LinkType::parse(&request.r#type)?;
        let aud = self.request_aud(request.context.as_ref());
        let data = validate::metadata(&request.data_json)?;
        let mut password = request.password.clone();

        let existing = users::find_by_email(&self.db, &email, &aud).await?;
        if existing.is_none() {
            match link_type {
                // A magic link for an unknown address signs up, with a password nobody knows.
                LinkType::MagicLink => {
                    link_type = LinkType::Signup;
                    password = unguessable_password();
                }
                LinkType::Recovery | LinkType::EmailChangeCurrent | LinkType::EmailChangeNew => {
                    return Err(ServiceError::not_found(
                        ErrorCode::UserNotFound,
                        "User with this email not found",
                    ));
                }
                LinkType::Signup | LinkType::Invite => {}
            }
        }
        // A new sign-up needs a password, checked (and hashed, off the async threads) before the
        // transaction opens.
        let new_user_id = Uuid::new_v4();
        let password_hash = if existing.is_none() && link_type == LinkType::Signup {
            if password.is_empty() {
                return Err(ServiceError::bad_request(
                    ErrorCode::ValidationFailed,
                    "Signup requires a valid password",
                ));
            }
            check_strength(&self.config.password, &password)?;
            Some(
                self.hash_password(new_user_id, &password)
                    .await
                    .map_err(ServiceError::internal)?,
            )
        } else {
            None
        };

        let otp = outbox::generate_otp(self.config.mailer.otp_length);
        let mut tx = self.db.begin().await?;
        let (user, hash) = match (link_type, existing) {
            (LinkType::MagicLink | LinkType::Recovery, Some(user)) => {
                audit::record(&mut *tx, &user, AuditAction::UserRecoveryRequested, None).await?;
                let hash = outbox::token_hash(&email, &otp);
                store_code(&mut tx, &user, OneTimeTokenKind::Recovery, &hash).await?;
                (user, hash)
            }
            (LinkType::Invite, existing) => {
                let user = match existing {
                    Some(user) if user.is_email_confirmed() => return Err(email_exists()),
                    Some(user) => user,
                    None => create_email_user(&mut tx, self, Uuid::new_v4(), &aud, &email, None, &data).await?,
                };
                audit::record_by_admin(
                    &mut *tx,
                    principal.claims.role(),
                    AuditAction::UserInvited,
                    Some(json!({"user_id": user.id, "user_email": user.email()})),
                )
                .await?;
                let hash = outbox::token_hash(&email, &otp);
                store_code(&mut tx, &user, OneTimeTokenKind::Confirmation, &hash).await?;
                store::users::mark_invited(&mut tx, user.id).await?;
                (user, hash)
            }
            (LinkType::Signup, existing) => {
                let user = match existing {
                    Some(user) if user.is_email_confirmed() => return Err(email_exists()),
                    Some(user) => {
                        // GoTrue merges the given metadata into the pending user's; the password stays.
                        let mut metadata = user.user_metadata();
                        merge(&mut metadata, data);
                        store::users::set_user_metadata(&mut tx, user.id, metadata).await?;
                        user
                    }
                    None => {
                        let hash = password_hash.as_deref();
                        create_email_user(&mut tx, self, new_user_id, &aud, &email, hash, &data).await?
                    }
                };
                let hash = outbox::token_hash(&email, &otp);
                store_code(&mut tx, &user, OneTimeTokenKind::Confirmation, &hash).await?;
                (user, hash)
            }
            (LinkType::EmailChangeCurrent | LinkType::EmailChangeNew, Some(user)) => {
                let hash = self
                    .store_email_change(&mut tx, &user, link_type, &request.new_email, &otp)
                    .await?;
                (user, hash)
            }
            (_, None) => unreachable!("unknown addresses were turned away or into sign-ups above"),
        };
        let user = store::users::load(&mut tx, user.id).await?;
        tx.commit().await?;

        let action_link = outbox::action_link(&self.config, link_type.verify_type(), &hash, &request.redirect_to);
        Ok(GenerateLinkResponse {
            user: Some(user.to_proto()),
            action_link,
            email_otp: otp,
            hashed_token: hash,
            verification_type: link_type.as_str().to_string(),
            redirect_to: request.redirect_to,
        })
    }

    /// An email change to `new_email`, confirmed by the link of `link_type`. Returns the stored hash.
    ///
    /// GoTrue returns the current address's hash even for `email_change_new`, whose link carries
    /// the new address's; the suite returns the hash that was stored, so `hashed_token` verifies.
    async fn store_email_change(
        &self,
        conn: &mut PgConnection,
        user: &UserRecord,
        link_type: LinkType,
        new_email: &str,
        otp: &str,
    ) -> Result<String, ServiceError> {
        if link_type == LinkType::EmailChangeCurrent && !self.config.mailer.secure_email_change_enabled {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Enable secure email change to generate link for current email",
            ));
        }
        let new_email = validate::email(new_email)?;
        let taken = users::find_by_email(&mut *conn, &new_email, user.aud.as_deref().unwrap_or_default())
            .await?
            .is_some_and(|other| other.id != user.id);
        if taken {
            return Err(email_exists());
        }
        let current_address = link_type == LinkType::EmailChangeCurrent;
        let (kind, address) = if current_address {
            (OneTimeTokenKind::EmailChangeCurrent, user.email())
        } else {
            (OneTimeTokenKind::EmailChangeNew, new_email.as_str())
        };
        let hash = outbox::token_hash(address, otp);
        store::users::store_email_change_code(conn, user.id, current_address, &hash, &new_email).await?;
        store::one_time_tokens::store(conn, user.id, kind, &hash, address).await?;
        Ok(hash)
    }
}

fn email_exists() -> ServiceError {
    ServiceError::unprocessable(ErrorCode::EmailExists, DUPLICATE_EMAIL)
}

/// Stores a link's code in the user's column for `kind` and in `one_time_tokens`. Unlike an
/// email, a generated link has no send interval: the admin asked for it.
async fn store_code(
    conn: &mut PgConnection,
    user: &UserRecord,
    kind: OneTimeTokenKind,
    hash: &str,
) -> Result<(), ServiceError> {
    store::users::store_code(conn, user.id, kind, hash).await?;
    store::one_time_tokens::store(conn, user.id, kind, hash, user.email()).await?;
    Ok(())
}

/// A 64-character random password (GoTrue generates one for a magic-link sign-up).
fn unguessable_password() -> String {
    rand::rng().sample_iter(Alphanumeric).take(64).map(char::from).collect()
}
