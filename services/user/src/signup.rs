//! `POST /signup`: email or phone with a password, or anonymous.
//!
//! GoTrue's order of checks and answers, with two hardenings that clients cannot tell apart from
//! GoTrue: the password is hashed on every sign-up (a repeated sign-up takes as long as a new one),
//! and the look-alike user returned for an already-registered address carries the same role as a
//! real new user.

use crate::password::check_strength;
use auth_account::audit::{self, AuditAction};
use auth_account::users::{self, UserRecord};
use auth_core::{ErrorCode, ServiceError};
use auth_proto::common::v1 as pb;
use auth_proto::user::v1::{SignUpRequest, SignUpResponse, sign_up_response};
use chrono::Utc;
use serde_json::{Map, Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::code_purpose::{EmailCode, PhoneCode};
use crate::compensate;
use crate::state::UserState;
use crate::store;
use crate::store::identities::Provider;
use crate::validate;

fn session(tokens: pb::SessionTokens) -> SignUpResponse {
    SignUpResponse {
        result: Some(sign_up_response::Result::Session(tokens)),
    }
}

fn user(user: pb::User) -> SignUpResponse {
    SignUpResponse {
        result: Some(sign_up_response::Result::User(user)),
    }
}

impl UserState {
    pub async fn sign_up(&self, request: SignUpRequest) -> Result<SignUpResponse, ServiceError> {
        let config = &self.config;
        if config.disable_signup {
            return Err(ServiceError::unprocessable(
                ErrorCode::SignupDisabled,
                "Signups not allowed for this instance",
            ));
        }
        if request.email.is_empty() && request.phone.is_empty() {
            return self.sign_up_anonymously(request).await;
        }
        let (provider, channel) = self.check_sign_up_request(&request)?;
        let aud = self.request_aud(request.context.as_ref());

        let (address, existing) = self.find_sign_up_address(provider, &request, &aud).await?;
        let data = validate::metadata(&request.data_json)?;
        // Always hash: a repeated sign-up must take as long as a new one.
        let new_user_id = Uuid::new_v4();
        let password_hash = self
            .hash_password(new_user_id, &request.password)
            .await
            .map_err(ServiceError::internal)?;

        let existing_confirmed = existing.as_ref().is_some_and(|existing| match provider {
            Provider::Email => existing.is_email_confirmed(),
            Provider::Phone => existing.is_phone_confirmed(),
        });
        let pkce = !request.code_challenge.is_empty();
        // The confirmation link of a PKCE sign-up yields an auth code. That flow is the token
        // service's: it is started before the transaction opens, so no call is made while the
        // transaction holds locks (should the transaction fail, the flow only expires unused).
        if pkce && matches!(provider, Provider::Email) && !config.mailer.autoconfirm && !existing_confirmed {
            let user_id = existing.as_ref().map_or(new_user_id, |existing| existing.id);
            self.create_flow_state(
                user_id,
                "email/signup",
                &request.code_challenge,
                &request.code_challenge_method,
            )
            .await?;
        }

        let mut tx = self.db.begin().await?;
        // Whether this request creates the user (and so must remove it if no session can be issued).
        let mut created = false;
        let user_id = match &existing {
            Some(existing) => {
                let confirmed = match provider {
                    Provider::Email => existing.is_email_confirmed(),
                    Provider::Phone => existing.is_phone_confirmed(),
                };
                if confirmed {
                    audit::record(
                        &mut *tx,
                        existing,
                        AuditAction::UserRepeatedSignUp,
                        Some(json!({ "provider": provider.as_str() })),
                    )
                    .await?;
                    tx.commit().await?;
                    if config.mailer.autoconfirm || config.sms.autoconfirm {
                        return Err(ServiceError::unprocessable(
                            ErrorCode::UserAlreadyExists,
                            "User already registered",
                        ));
                    }
                    return Ok(user(self.look_alike_user(existing, provider, &aud, data)));
                }
                // An unconfirmed account: the claimant has proven nothing, so the row is left alone and
                // the confirmation goes out again.
                existing.id
            }
            None => {
                created = true;
                let id = new_user_id;
                let new_user = store::users::NewUser {
                    id,
                    aud: &aud,
                    role: &config.jwt.default_group_name,
                    provider,
                    address: &address,
                    password_hash: Some(&password_hash),
                    user_metadata: &data,
                    anonymous: false,
                };
                store::users::insert(&mut tx, new_user).await?;
                id
            }
        };
        store::identities::insert_for_sign_up(&mut tx, user_id, provider, &address, &data).await?;
        let record = store::users::load(&mut tx, user_id).await?;

        let confirmed_now = self
            .confirm_or_send_code(
                &mut tx,
                &record,
                provider,
                &address,
                channel,
                pkce,
                &request.redirect_to,
            )
            .await?;

        if confirmed_now {
            let record = store::users::load(&mut tx, user_id).await?;
            audit::record(
                &mut *tx,
                &record,
                AuditAction::Login,
                Some(json!({"provider": provider.as_str()})),
            )
            .await?;
            store::users::record_sign_in(&mut tx, user_id).await?;
            tx.commit().await?;
            let tokens = match self.issue_session(user_id, "password", request.context).await {
                Ok(tokens) => tokens,
                Err(error) => {
                    if created {
                        compensate::remove_new_user(&self.db, user_id).await;
                    }
                    return Err(error);
                }
            };
            return Ok(session(tokens));
        }

        let record = store::users::load(&mut tx, user_id).await?;
        tx.commit().await?;
        self.relay.nudge(); // the confirmation request is in the outbox
        let mut shown = record.to_proto();
        // An invited user who signs up before accepting sees nothing of what the inviter set.
        if record.invited_at.is_some() {
            shown.user_metadata_json = "{}".into();
            shown.identities.clear();
        }
        Ok(user(shown))
    }

    async fn sign_up_anonymously(&self, request: SignUpRequest) -> Result<SignUpResponse, ServiceError> {
        if !self.config.external.anonymous_users_enabled {
            return Err(ServiceError::unprocessable(
                ErrorCode::AnonymousProviderDisabled,
                "Anonymous sign-ins are disabled",
            ));
        }
        let aud = self.request_aud(request.context.as_ref());
        let data = validate::metadata(&request.data_json)?;
        let id = Uuid::new_v4();
        let mut tx = self.db.begin().await?;
        let new_user = store::users::NewUser {
            id,
            aud: &aud,
            role: &self.config.jwt.default_group_name,
            provider: Provider::Email,
            address: "",
            password_hash: None,
            user_metadata: &data,
            anonymous: true,
        };
        store::users::insert(&mut tx, new_user).await?;
        store::users::record_sign_in(&mut tx, id).await?;
        tx.commit().await?;
        match self.issue_session(id, "anonymous", request.context).await {
            Ok(tokens) => Ok(session(tokens)),
            Err(error) => {
                compensate::remove_new_user(&self.db, id).await;
                Err(error)
            }
        }
    }

    /// GoTrue's sign-up validation: a strong password, one of email or phone, the SMS channel the
    /// provider supports, no PKCE for phones. Returns the provider and the SMS channel.
    fn check_sign_up_request<'r>(&self, request: &'r SignUpRequest) -> Result<(Provider, &'r str), ServiceError> {
        let config = &self.config;
        if request.password.is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Signup requires a valid password",
            ));
        }
        check_strength(&config.password, &request.password)?;
        if !request.email.is_empty() && !request.phone.is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Only an email address or phone number should be provided on signup.",
            ));
        }
        let provider = if request.email.is_empty() {
            Provider::Phone
        } else {
            Provider::Email
        };
        let channel = if request.channel.is_empty() {
            "sms"
        } else {
            request.channel.as_str()
        };
        if provider == Provider::Phone {
            auth_outbox::check_channel(channel, &config.sms.provider)?;
            if !request.code_challenge.is_empty() {
                return Err(ServiceError::bad_request(
                    ErrorCode::ValidationFailed,
                    "PKCE not supported for phone signups",
                ));
            }
        }
        validate::pkce(&request.code_challenge_method, &request.code_challenge)?;
        Ok((provider, channel))
    }

    /// The normalised address of the sign-up and the user who already has it, if any; 400 when its
    /// provider is switched off.
    async fn find_sign_up_address(
        &self,
        provider: Provider,
        request: &SignUpRequest,
        aud: &str,
    ) -> Result<(String, Option<UserRecord>), ServiceError> {
        let config = &self.config;
        Ok(match provider {
            Provider::Email => {
                if !config.external.email_enabled {
                    return Err(ServiceError::bad_request(
                        ErrorCode::EmailProviderDisabled,
                        "Email signups are disabled",
                    ));
                }
                let email = validate::email(&request.email)?;
                let existing = users::find_by_email(&self.db, &email, aud).await?;
                (email, existing)
            }
            Provider::Phone => {
                if !config.external.phone_enabled {
                    return Err(ServiceError::bad_request(
                        ErrorCode::PhoneProviderDisabled,
                        "Phone signups are disabled",
                    ));
                }
                let phone = validate::phone(&request.phone)?;
                let existing = users::find_by_phone(&self.db, &phone, aud).await?;
                (phone, existing)
            }
        })
    }

    /// A new (or still unconfirmed) sign-up is either confirmed at once (autoconfirm; `true`) or sent
    /// its confirmation code (`false`). An address already confirmed needs neither (`true`).
    #[allow(clippy::too_many_arguments)]
    async fn confirm_or_send_code(
        &self,
        conn: &mut PgConnection,
        record: &UserRecord,
        provider: Provider,
        address: &str,
        channel: &str,
        pkce: bool,
        redirect_to: &str,
    ) -> Result<bool, ServiceError> {
        let config = &self.config;
        let (confirmed, autoconfirm) = match provider {
            Provider::Email => (record.is_email_confirmed(), config.mailer.autoconfirm),
            Provider::Phone => (record.is_phone_confirmed(), config.sms.autoconfirm),
        };
        if confirmed {
            return Ok(true);
        }
        if autoconfirm {
            let traits = match provider {
                Provider::Email => json!({"provider": "email"}),
                Provider::Phone => json!({"provider": "phone", "channel": channel}),
            };
            audit::record(&mut *conn, record, AuditAction::UserSignedUp, Some(traits)).await?;
            match provider {
                Provider::Email => store::users::confirm_email(&mut *conn, record.id).await?,
                Provider::Phone => store::users::confirm_phone(&mut *conn, record.id).await?,
            }
            store::one_time_tokens::delete_all(&mut *conn, record.id).await?;
            return Ok(true);
        }
        let traits = json!({"provider": provider.as_str()});
        audit::record(&mut *conn, record, AuditAction::UserConfirmationRequested, Some(traits)).await?;
        match provider {
            Provider::Email => {
                self.send_email_code(&mut *conn, record, EmailCode::Confirmation, pkce, redirect_to)
                    .await?;
            }
            Provider::Phone => {
                self.send_phone_code(&mut *conn, record, PhoneCode::Confirmation, address, channel)
                    .await?;
            }
        }
        Ok(false)
    }

    /// GoTrue's `sanitizeUser`: what a repeated sign-up sees instead of the real account.
    fn look_alike_user(&self, real: &UserRecord, provider: Provider, aud: &str, data: Map<String, Value>) -> pb::User {
        let now = users::timestamp(Some(Utc::now()));
        pb::User {
            id: Uuid::new_v4().to_string(),
            aud: aud.to_string(),
            role: self.config.jwt.default_group_name.clone(),
            email: if provider == Provider::Email {
                real.email().to_string()
            } else {
                String::new()
            },
            phone: if provider == Provider::Phone {
                real.phone().to_string()
            } else {
                String::new()
            },
            confirmation_sent_at: now,
            app_metadata_json: json!({"provider": provider.as_str(), "providers": [provider.as_str()]}).to_string(),
            user_metadata_json: Value::Object(data).to_string(),
            created_at: now,
            updated_at: now,
            ..Default::default()
        }
    }
}
