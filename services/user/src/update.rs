//! `PUT /user`: metadata, password, and the start of an email or phone change.

use crate::password::check_strength;
use auth_account::audit::{self, AuditAction};
use auth_account::principal::Principal;
use auth_account::users::{self, UserRecord};
use auth_core::{ErrorCode, ServiceError};
use auth_proto::common::v1 as pb;
use auth_proto::notification::v1::EmailKind;
use auth_proto::user::v1::UpdateUserRequest;
use chrono::Utc;
use serde_json::{Map, Value, json};
use sqlx::PgConnection;
use subtle::ConstantTimeEq;

use crate::code_purpose::PhoneCode;
use crate::notifications;
use crate::state::UserState;
use crate::store;
use crate::store::identities::Provider;
use crate::store::one_time_tokens::OneTimeTokenKind;
use crate::validate;
use auth_outbox::{self as outbox, EmailContent};

/// Sessions started by proving control of the inbox or phone may set a password without the old one.
const RECOVERY_METHODS: &[&str] = &["otp", "magiclink", "recovery"];
const REAUTHENTICATION_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// GoTrue's metadata merge: keys are set, `null` removes a key.
pub(crate) fn merge(target: &mut Map<String, Value>, updates: Map<String, Value>) {
    for (key, value) in updates {
        if value.is_null() {
            target.remove(&key);
        } else {
            target.insert(key, value);
        }
    }
}

pub(crate) fn parse_object(json: &str, what: &str) -> Result<Map<String, Value>, ServiceError> {
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ServiceError::bad_request(
            ErrorCode::BadJson,
            format!("Could not parse request body as JSON: {what} must be an object"),
        )),
    }
}

impl UserState {
    pub async fn update_user(
        &self,
        principal: &Principal,
        request: UpdateUserRequest,
    ) -> Result<pb::User, ServiceError> {
        let config = &self.config;
        let user = principal.require_user()?.clone();
        let session = principal.session.as_ref();
        let aud = self.request_aud(request.context.as_ref());

        let email = match request.email.as_deref() {
            Some(e) if !e.is_empty() => Some(validate::email(e)?),
            _ => None,
        };
        let channel = if request.channel.is_empty() {
            "sms"
        } else {
            request.channel.as_str()
        };
        let phone = match request.phone.as_deref() {
            Some(p) if !p.is_empty() => {
                let phone = validate::phone(p)?;
                auth_outbox::check_channel(channel, &config.sms.provider)?;
                Some(phone)
            }
            _ => None,
        };
        if let Some(password) = &request.password {
            check_strength(&config.password, password)?;
        }
        let data = request
            .data_json
            .as_deref()
            .map(|j| parse_object(j, "data"))
            .transpose()?;
        let app_data = request
            .app_metadata_json
            .as_deref()
            .map(|j| parse_object(j, "app_metadata"))
            .transpose()?;
        let legacy_admin = user.role() == config.jwt.admin_group_name && user.aud() == config.jwt.aud;
        if app_data.is_some() && !legacy_admin {
            return Err(ServiceError::forbidden(
                ErrorCode::NotAdmin,
                "Updating app_metadata requires admin privileges",
            ));
        }

        let new_password = request.password.as_deref().filter(|p| !p.is_empty());
        let email_changes = email.as_deref().is_some_and(|e| e != user.email());
        let phone_changes = phone.as_deref().is_some_and(|p| p != user.phone());
        let changes = Changes {
            password: new_password.is_some(),
            email: email_changes,
            phone: phone_changes,
            contact_given: email.is_some() || phone.is_some(),
            nonce: request.nonce.as_deref().is_some_and(|n| !n.is_empty()),
        };
        check_changes_allowed(&user, principal.claims.aal(), &changes)?;
        let new_email = email.as_deref().filter(|_| email_changes);
        let new_phone = phone.as_deref().filter(|_| phone_changes);
        self.ensure_contacts_free(&user, new_email, new_phone, &aud).await?;
        let password_hash = self.new_password_hash(&user, principal, &request).await?;

        let sends_email_change = email_changes && email.is_some() && !(user.is_anonymous && config.mailer.autoconfirm);
        let pkce = !request.code_challenge.is_empty();
        // The email-change link of a PKCE request yields an auth code: the token service's flow,
        // started before the transaction opens so no call is made while it holds locks.
        if sends_email_change && pkce {
            self.create_flow_state(
                user.id,
                "email_change",
                &request.code_challenge,
                &request.code_challenge_method,
            )
            .await?;
        }

        let mut tx = self.db.begin().await?;
        if let Some(hash) = &password_hash {
            self.store_new_password(&mut tx, &user, hash).await?;
        }
        if let Some(updates) = data {
            let mut metadata = user.user_metadata();
            merge(&mut metadata, updates);
            store::users::set_user_metadata(&mut tx, user.id, metadata).await?;
        }
        if let Some(updates) = app_data {
            let mut metadata = user.app_metadata();
            merge(&mut metadata, updates);
            store::users::set_app_metadata(&mut tx, user.id, metadata).await?;
        }
        if email_changes && let Some(email) = &email {
            if user.is_anonymous && config.mailer.autoconfirm {
                self.adopt_email(&mut tx, &user, email).await?;
            } else {
                self.send_email_change(&mut tx, &user, email, pkce, &request.redirect_to)
                    .await?;
            }
        }
        if phone_changes && let Some(phone) = &phone {
            if config.sms.autoconfirm {
                self.adopt_phone(&mut tx, &user, phone).await?;
            } else {
                self.send_phone_code(&mut tx, &user, PhoneCode::PhoneChange, phone, channel)
                    .await?;
            }
        }
        audit::record(&mut *tx, &user, AuditAction::UserModified, None).await?;
        let updated = store::users::load(&mut tx, user.id).await?;
        tx.commit().await?;
        self.relay.nudge(); // email/phone change requests, if any, are in the outbox

        if password_hash.is_some() {
            // Other sessions end with the password; the caller's own session stays.
            self.revoke_sessions(user.id, session.map(|s| s.id)).await?;
        }
        Ok(updated.to_proto())
    }

    /// GoTrue's `UpdatePassword`: the new hash, every pending code dies with the old password, the
    /// audit entry, and the password-changed notification when enabled.
    async fn store_new_password(
        &self,
        conn: &mut PgConnection,
        user: &UserRecord,
        hash: &str,
    ) -> Result<(), ServiceError> {
        store::users::change_password(conn, user.id, hash).await?;
        store::one_time_tokens::delete_all(conn, user.id).await?;
        audit::record(&mut *conn, user, AuditAction::UserUpdatedPassword, None).await?;
        let account = notifications::Account {
            email: user.email(),
            phone: user.phone(),
            data_json: Value::Object(user.user_metadata()).to_string(),
        };
        notifications::notify(conn, &self.config, notifications::AccountChange::Password, account).await?;
        Ok(())
    }

    /// The hash of the new password, after GoTrue's checks: the reauthentication nonce, the current
    /// password when required (not after a recovery link), and that it differs from the old one.
    async fn new_password_hash(
        &self,
        user: &UserRecord,
        principal: &Principal,
        request: &UpdateUserRequest,
    ) -> Result<Option<String>, ServiceError> {
        let config = &self.config;
        if let Some(password) = &request.password {
            self.check_reauthentication(user, principal, request.nonce.as_deref().unwrap_or_default())?;
            if !password.is_empty() && user.has_password() {
                let stored = user.encrypted_password.clone().unwrap_or_default();
                let recovery = principal
                    .claims
                    .amr_methods()
                    .iter()
                    .any(|m| RECOVERY_METHODS.contains(&m.as_str()));
                if config.security.update_password_require_current_password && !recovery {
                    let current = request.current_password.as_deref().unwrap_or_default();
                    if current.is_empty() {
                        return Err(ServiceError::bad_request(
                            ErrorCode::CurrentPasswordRequired,
                            "Current password required when setting new password.",
                        ));
                    }
                    let ok = self
                        .verify_password(user.id, current, &stored)
                        .await
                        .map(|v| v.matches)
                        .unwrap_or(false);
                    if !ok {
                        return Err(ServiceError::bad_request(
                            ErrorCode::CurrentPasswordInvalid,
                            "Current password required when setting new password.",
                        ));
                    }
                }
                let same = self
                    .verify_password(user.id, password, &stored)
                    .await
                    .map(|v| v.matches)
                    .unwrap_or(false);
                if same {
                    return Err(ServiceError::unprocessable(
                        ErrorCode::SamePassword,
                        "New password should be different from the old password.",
                    ));
                }
            }
            return Ok(Some(
                self.hash_password(user.id, password)
                    .await
                    .map_err(ServiceError::internal)?,
            ));
        }
        Ok(None)
    }

    /// A new email or phone must not belong to another user of the audience.
    async fn ensure_contacts_free(
        &self,
        user: &UserRecord,
        new_email: Option<&str>,
        new_phone: Option<&str>,
        aud: &str,
    ) -> Result<(), ServiceError> {
        if let Some(email) = new_email {
            let taken = users::find_by_email(&self.db, email, aud)
                .await?
                .is_some_and(|other| other.id != user.id);
            if taken {
                return Err(ServiceError::unprocessable(
                    ErrorCode::EmailExists,
                    "A user with this email address has already been registered",
                ));
            }
        }
        if let Some(phone) = new_phone {
            let taken = users::find_by_phone(&self.db, phone, aud)
                .await?
                .is_some_and(|other| other.id != user.id);
            if taken {
                return Err(ServiceError::unprocessable(
                    ErrorCode::PhoneExists,
                    "A user with this phone number has already been registered",
                ));
            }
        }
        Ok(())
    }

    /// `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION`: a session older than 24 hours must
    /// present the code from `GET /reauthenticate`.
    fn check_reauthentication(
        &self,
        user: &UserRecord,
        principal: &Principal,
        nonce: &str,
    ) -> Result<(), ServiceError> {
        if !self.config.security.update_password_require_reauthentication {
            return Ok(());
        }
        let recent = principal
            .session
            .as_ref()
            .and_then(|s| s.created_at)
            .is_some_and(|created| Utc::now() <= created + REAUTHENTICATION_WINDOW);
        if recent {
            return Ok(());
        }
        if nonce.is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::ReauthenticationNeeded,
                "Password update requires reauthentication",
            ));
        }
        let (address, expiry) = if !user.email().is_empty() {
            (user.email(), self.config.mailer.otp_exp)
        } else if !user.phone().is_empty() {
            (user.phone(), self.config.sms.otp_exp)
        } else {
            return Err(ServiceError::unprocessable(
                ErrorCode::ReauthenticationNotValid,
                "Reauthentication requires an email or a phone number",
            ));
        };
        let expected = user.reauthentication_token.as_deref().unwrap_or_default();
        let fresh = user
            .reauthentication_sent_at
            .is_some_and(|sent| Utc::now() <= sent + chrono::Duration::from_std(expiry).unwrap_or_default());
        let presented = outbox::token_hash(address, nonce);
        let matches = !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()));
        if !(matches && fresh) {
            return Err(ServiceError::unprocessable(
                ErrorCode::ReauthenticationNotValid,
                "Nonce has expired or is invalid",
            ));
        }
        Ok(())
    }

    /// GoTrue's `sendEmailChange`: a code for the new address and, with secure email change, one for
    /// the current address; both hashes stored (with the `pkce_` prefix in a PKCE flow), the email
    /// requests in the outbox.
    pub async fn send_email_change(
        &self,
        conn: &mut PgConnection,
        user: &UserRecord,
        new_email: &str,
        pkce: bool,
        redirect_to: &str,
    ) -> Result<(), ServiceError> {
        let prefixed = |hash: String| if pkce { format!("pkce_{hash}") } else { hash };
        let redirect_to = self.redirect_target(redirect_to);
        outbox::check_frequency(
            user.email_change_sent_at,
            self.config.mailer.max_frequency,
            ErrorCode::OverEmailSendRateLimit,
        )?;
        if !self.config.mailer.autoconfirm {
            auth_outbox::budget::spend(
                conn,
                auth_outbox::budget::Budget::Email,
                self.config.rate_limit.email_sent,
            )
            .await?;
        }
        let otp_new = outbox::generate_otp(self.config.mailer.otp_length);
        let hash_new = prefixed(outbox::token_hash(new_email, &otp_new));
        let secure = self.config.mailer.secure_email_change_enabled && !user.email().is_empty();
        let current = secure.then(|| {
            let otp = outbox::generate_otp(self.config.mailer.otp_length);
            let hash = prefixed(outbox::token_hash(user.email(), &otp));
            (otp, hash)
        });
        let current_hash = current.as_ref().map(|(_, h)| h.as_str()).unwrap_or_default();
        store::users::begin_email_change(conn, user.id, new_email, &hash_new, current_hash).await?;
        store::one_time_tokens::store(conn, user.id, OneTimeTokenKind::EmailChangeNew, &hash_new, new_email).await?;
        let data_json = Value::Object(user.user_metadata()).to_string();
        outbox::enqueue_email(
            conn,
            &self.config,
            EmailKind::EmailChange,
            new_email,
            EmailContent {
                otp: otp_new,
                token_hash: hash_new,
                link_type: "email_change",
                redirect_to: redirect_to.clone(),
                new_email: new_email.to_string(),
                data_json: data_json.clone(),
                ..Default::default()
            },
        )
        .await?;
        if let Some((otp, hash)) = current {
            store::one_time_tokens::store(conn, user.id, OneTimeTokenKind::EmailChangeCurrent, &hash, user.email())
                .await?;
            outbox::enqueue_email(
                conn,
                &self.config,
                EmailKind::EmailChange,
                user.email(),
                EmailContent {
                    otp,
                    token_hash: hash,
                    link_type: "email_change",
                    redirect_to,
                    new_email: new_email.to_string(),
                    data_json,
                    ..Default::default()
                },
            )
            .await?;
        }
        Ok(())
    }

    /// An anonymous user under mailer autoconfirm takes the address at once and becomes permanent.
    async fn adopt_email(&self, conn: &mut PgConnection, user: &UserRecord, email: &str) -> Result<(), ServiceError> {
        let patch = json!({"provider": "email", "providers": providers_with(user, "email")});
        store::users::adopt_contact(conn, user.id, Provider::Email, email, patch).await?;
        store::identities::upsert_merging(
            conn,
            user.id,
            "email",
            json!({"sub": user.id.to_string(), "email": email, "email_verified": true, "phone_verified": false}),
        )
        .await?;
        Ok(())
    }

    /// Phone change under SMS autoconfirm: the number is taken at once.
    async fn adopt_phone(&self, conn: &mut PgConnection, user: &UserRecord, phone: &str) -> Result<(), ServiceError> {
        let provider = match user.app_metadata().get("provider").and_then(Value::as_str) {
            Some(existing) if !user.is_anonymous => existing.to_string(),
            _ => "phone".to_string(),
        };
        let patch = json!({"provider": provider, "providers": providers_with(user, "phone")});
        store::users::adopt_contact(conn, user.id, Provider::Phone, phone, patch).await?;
        store::identities::upsert_merging(
            conn,
            user.id,
            "phone",
            json!({"sub": user.id.to_string(), "phone": phone, "email_verified": false, "phone_verified": true}),
        )
        .await?;
        Ok(())
    }
}

/// What a `PUT /user` asks to change, as far as who may change it matters.
struct Changes {
    password: bool,
    email: bool,
    phone: bool,
    /// An email or phone was given (changed or not).
    contact_given: bool,
    nonce: bool,
}

/// GoTrue's refusals before any work: an MFA user needs an AAL2 session to change a credential, an
/// anonymous user cannot set a password without an address, an SSO user changes nothing of these.
fn check_changes_allowed(user: &UserRecord, session_aal: &str, changes: &Changes) -> Result<(), ServiceError> {
    let credential = changes.password || changes.email || changes.phone;
    if user.highest_possible_aal() == "aal2" && session_aal != "aal2" && credential {
        return Err(ServiceError::new(
            401,
            ErrorCode::InsufficientAal,
            "AAL2 session is required to update email or password when MFA is enabled.",
        ));
    }
    if user.is_anonymous && changes.password && !changes.contact_given {
        return Err(ServiceError::unprocessable(
            ErrorCode::ValidationFailed,
            "Updating password of an anonymous user without an email or phone is not allowed",
        ));
    }
    if user.is_sso_user && (credential || changes.nonce) {
        return Err(ServiceError::unprocessable(
            ErrorCode::UserSsoManaged,
            "Updating email, phone, password of a SSO account only possible via SSO",
        ));
    }
    Ok(())
}

fn providers_with(user: &UserRecord, provider: &str) -> Vec<String> {
    let mut providers: Vec<String> = user
        .app_metadata()
        .get("providers")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if !providers.iter().any(|p| p == provider) {
        providers.push(provider.to_string());
    }
    providers
}
