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

use crate::codes::{EmailCode, PhoneCode};
use crate::compensate;
use crate::state::UserState;
use crate::validate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Email,
    Phone,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Email => "email",
            Provider::Phone => "phone",
        }
    }
}

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
            validate::channel(channel, &config.sms.provider)?;
            if !request.code_challenge.is_empty() {
                return Err(ServiceError::bad_request(
                    ErrorCode::ValidationFailed,
                    "PKCE not supported for phone signups",
                ));
            }
        }
        validate::pkce(&request.code_challenge_method, &request.code_challenge)?;
        let aud = self.request_aud(request.context.as_ref());

        let (address, existing) = match provider {
            Provider::Email => {
                if !config.external.email_enabled {
                    return Err(ServiceError::bad_request(
                        ErrorCode::EmailProviderDisabled,
                        "Email signups are disabled",
                    ));
                }
                let email = validate::email(&request.email)?;
                let existing = users::find_by_email(&self.db, &email, &aud).await?;
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
                let existing = users::find_by_phone(&self.db, &phone, &aud).await?;
                (phone, existing)
            }
        };
        let data = validate::metadata(&request.data_json)?;
        // Always hash: a repeated sign-up must take as long as a new one.
        let password_hash = self
            .hasher
            .hash(&request.password)
            .await
            .map_err(ServiceError::internal)?;

        let existing_confirmed = existing.as_ref().is_some_and(|existing| match provider {
            Provider::Email => existing.is_email_confirmed(),
            Provider::Phone => existing.is_phone_confirmed(),
        });
        let new_user_id = Uuid::new_v4();
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
                insert_user(
                    &mut tx,
                    self,
                    id,
                    &aud,
                    provider,
                    &address,
                    Some(&password_hash),
                    &data,
                    false,
                )
                .await?;
                id
            }
        };
        ensure_identity(&mut tx, user_id, provider, &address, &data).await?;
        let record = load(&mut tx, user_id).await?;

        let confirmed_now = match provider {
            Provider::Email if !record.is_email_confirmed() => {
                if config.mailer.autoconfirm {
                    audit::record(
                        &mut *tx,
                        &record,
                        AuditAction::UserSignedUp,
                        Some(json!({"provider": "email"})),
                    )
                    .await?;
                    confirm_email(&mut tx, user_id).await?;
                    true
                } else {
                    audit::record(
                        &mut *tx,
                        &record,
                        AuditAction::UserConfirmationRequested,
                        Some(json!({"provider": "email"})),
                    )
                    .await?;
                    self.send_email_code(&mut tx, &record, EmailCode::Confirmation, pkce, &request.redirect_to)
                        .await?;
                    false
                }
            }
            Provider::Phone if !record.is_phone_confirmed() => {
                if config.sms.autoconfirm {
                    audit::record(
                        &mut *tx,
                        &record,
                        AuditAction::UserSignedUp,
                        Some(json!({"provider": "phone", "channel": channel})),
                    )
                    .await?;
                    sqlx::query("UPDATE users SET phone_confirmed_at = now(), confirmation_token = '', updated_at = now() WHERE id = $1")
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                    clear_one_time_tokens(&mut tx, user_id).await?;
                    true
                } else {
                    audit::record(
                        &mut *tx,
                        &record,
                        AuditAction::UserConfirmationRequested,
                        Some(json!({"provider": "phone"})),
                    )
                    .await?;
                    self.send_phone_code(&mut tx, &record, PhoneCode::Confirmation, &address, channel)
                        .await?;
                    false
                }
            }
            _ => true,
        };

        if confirmed_now {
            let record = load(&mut tx, user_id).await?;
            audit::record(
                &mut *tx,
                &record,
                AuditAction::Login,
                Some(json!({"provider": provider.as_str()})),
            )
            .await?;
            sqlx::query("UPDATE users SET last_sign_in_at = now() WHERE id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
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

        let record = load(&mut tx, user_id).await?;
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
        insert_user(&mut tx, self, id, &aud, Provider::Email, "", None, &data, true).await?;
        sqlx::query("UPDATE users SET last_sign_in_at = now() WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        match self.issue_session(id, "anonymous", request.context).await {
            Ok(tokens) => Ok(session(tokens)),
            Err(error) => {
                compensate::remove_new_user(&self.db, id).await;
                Err(error)
            }
        }
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

/// 429 with GoTrue's message when the previous message went out less than `frequency` ago.
pub fn check_frequency(
    sent_at: Option<chrono::DateTime<Utc>>,
    frequency: std::time::Duration,
    code: ErrorCode,
) -> Result<(), ServiceError> {
    let Some(sent_at) = sent_at else { return Ok(()) };
    let frequency = chrono::Duration::from_std(frequency).unwrap_or_default();
    let next = sent_at + frequency;
    let now = Utc::now();
    if next > now {
        let wait = (next - now).num_milliseconds().div_euclid(1000) + 1;
        let wait = wait.min(frequency.num_seconds().max(1));
        return Err(ServiceError::new(
            429,
            code,
            format!("For security purposes, you can only request this after {wait} seconds."),
        ));
    }
    Ok(())
}

pub async fn load(conn: &mut PgConnection, id: Uuid) -> Result<UserRecord, ServiceError> {
    users::find_by_id(conn, id)
        .await?
        .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("user {id} vanished inside its transaction")))
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_user(
    conn: &mut PgConnection,
    state: &UserState,
    id: Uuid,
    aud: &str,
    provider: Provider,
    address: &str,
    password_hash: Option<&str>,
    data: &Map<String, Value>,
    anonymous: bool,
) -> Result<(), ServiceError> {
    let (email, phone) = match (anonymous, provider) {
        (true, _) => (None, None),
        (false, Provider::Email) => (Some(address), None),
        (false, Provider::Phone) => (None, Some(address)),
    };
    let app_metadata = if anonymous {
        json!({})
    } else {
        json!({"provider": provider.as_str(), "providers": [provider.as_str()]})
    };
    // GoTrue writes '' (not NULL) into its string token columns; GoTrue itself fails to read NULLs
    // there, so a database shared with it must keep that shape.
    sqlx::query(
        "INSERT INTO users (instance_id, id, aud, role, email, phone, encrypted_password, \
           raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_anonymous, is_sso_user, \
           confirmation_token, recovery_token, email_change_token_new, email_change) \
         VALUES ('00000000-0000-0000-0000-000000000000', $1, $2, $3, $4, $5, $6, $7, $8, now(), now(), $9, false, \
           '', '', '', '')",
    )
    .bind(id)
    .bind(aud)
    .bind(&state.config.jwt.default_group_name)
    .bind(email)
    .bind(phone)
    .bind(password_hash.unwrap_or_default())
    .bind(sqlx::types::Json(app_metadata))
    .bind(sqlx::types::Json(Value::Object(data.clone())))
    .bind(anonymous)
    .execute(conn)
    .await
    .map_err(|e| match e.as_database_error().and_then(|d| d.constraint()) {
        Some("users_phone_key") => {
            ServiceError::unprocessable(ErrorCode::PhoneExists, "Phone number already registered")
        }
        Some("users_email_partial_key") => {
            ServiceError::unprocessable(ErrorCode::EmailExists, "Email address already registered")
        }
        _ => ServiceError::internal(e),
    })?;
    Ok(())
}

/// The email or phone identity of a sign-up (provider_id = user id), created when missing.
async fn ensure_identity(
    conn: &mut PgConnection,
    user_id: Uuid,
    provider: Provider,
    address: &str,
    data: &Map<String, Value>,
) -> Result<(), ServiceError> {
    let mut identity_data = Map::new();
    identity_data.insert("sub".into(), json!(user_id.to_string()));
    if provider == Provider::Email {
        identity_data.insert("email".into(), json!(address));
    }
    identity_data.insert("email_verified".into(), json!(false));
    identity_data.insert("phone_verified".into(), json!(false));
    for (key, value) in data {
        identity_data.entry(key.clone()).or_insert_with(|| value.clone());
    }
    sqlx::query(
        "INSERT INTO identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, now(), now(), now()) \
         ON CONFLICT ON CONSTRAINT identities_provider_id_provider_unique DO NOTHING",
    )
    .bind(user_id.to_string())
    .bind(user_id)
    .bind(sqlx::types::Json(Value::Object(identity_data)))
    .bind(provider.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// GoTrue's `User.Confirm`: confirmed now, `email_verified` in the metadata, pending codes gone.
pub async fn confirm_email(conn: &mut PgConnection, user_id: Uuid) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE users SET email_confirmed_at = now(), confirmation_token = '', updated_at = now(), \
         raw_user_meta_data = COALESCE(raw_user_meta_data, '{}'::jsonb) || '{\"email_verified\": true}'::jsonb \
         WHERE id = $1",
    )
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    clear_one_time_tokens(conn, user_id).await
}

pub async fn clear_one_time_tokens(conn: &mut PgConnection, user_id: Uuid) -> Result<(), ServiceError> {
    sqlx::query("DELETE FROM one_time_tokens WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}
