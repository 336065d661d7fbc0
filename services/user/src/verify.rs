//! `GET /verify` (an emailed link) and `POST /verify` (a code typed in, or a link's hash): prove a
//! one-time code, apply what it was for, and sign the user in.
//!
//! Follows GoTrue's `verify.go`. Differences a client cannot see: codes are compared in constant
//! time, and the code's row is locked from lookup to consumption, so two requests racing with one
//! code get one session between them.

use auth_account::audit::{self, AuditAction};
use auth_core::{ErrorCode, ServiceError};
use auth_proto::user::v1::{VerifyRequest, VerifyResponse, verify_response};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::code_purpose::{OneTimeTokenKind, VerifyType};
use crate::notifications;
use crate::otp_failures;
use crate::state::UserState;
use crate::store;
use crate::validate;
use auth_outbox as outbox;

const LINK_INVALID: &str = "Email link is invalid or has expired";
const CODE_INVALID: &str = "Token has expired or is invalid";
/// Secure email change: the answer to the first of the two confirmations.
pub const SINGLE_CONFIRMATION_ACCEPTED: &str =
    "Confirmation link accepted. Please proceed to confirm link sent to the other email";

/// The user columns a verification reads: the pending codes and when each was sent.
#[derive(Debug, sqlx::FromRow)]
struct PendingCodes {
    id: Uuid,
    aud: Option<String>,
    email: Option<String>,
    banned_until: Option<DateTime<Utc>>,
    confirmation_token: Option<String>,
    confirmation_sent_at: Option<DateTime<Utc>>,
    recovery_token: Option<String>,
    recovery_sent_at: Option<DateTime<Utc>>,
    email_change: Option<String>,
    email_change_token_current: Option<String>,
    email_change_token_new: Option<String>,
    email_change_sent_at: Option<DateTime<Utc>>,
    email_change_confirm_status: Option<i16>,
    phone_change: Option<String>,
    phone_change_token: Option<String>,
    phone_change_sent_at: Option<DateTime<Utc>>,
    email_confirmed_at: Option<DateTime<Utc>>,
    invited_at: Option<DateTime<Utc>>,
    encrypted_password: Option<String>,
    phone: Option<String>,
    raw_user_meta_data: Option<serde_json::Value>,
}

/// The user's pending codes, locked until the transaction ends, for one way of naming the user
/// (`$condition` is a literal, so each variant is a statement the compiler checks).
macro_rules! lock_pending_codes {
    ($conn:expr, $condition:tt $(, $arg:expr)*) => {
        sqlx::query_as!(
            PendingCodes,
            "SELECT id, aud, email, banned_until, confirmation_token, confirmation_sent_at, \
               recovery_token, recovery_sent_at, email_change, email_change_token_current, email_change_token_new, \
               email_change_sent_at, email_change_confirm_status, phone_change, phone_change_token, \
               phone_change_sent_at, email_confirmed_at, invited_at, encrypted_password, phone, raw_user_meta_data \
             FROM users WHERE " + $condition + " LIMIT 1 FOR UPDATE"
            $(, $arg)*
        )
        .fetch_optional($conn)
        .await
    };
}

impl PendingCodes {
    fn metadata_json(&self) -> String {
        self.raw_user_meta_data
            .as_ref()
            .filter(|m| m.is_object())
            .map_or_else(|| "{}".to_string(), ToString::to_string)
    }

    fn is_banned(&self) -> bool {
        self.banned_until.is_some_and(|until| until > Utc::now())
    }
}

fn is_expired(sent_at: Option<DateTime<Utc>>, lifetime: std::time::Duration) -> bool {
    let lifetime = chrono::Duration::from_std(lifetime).unwrap_or_default();
    sent_at.is_none_or(|sent| Utc::now() > sent + lifetime)
}

fn same_secret(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// GoTrue's `isOtpValid`: a live code equal to the stored hash, with or without the PKCE prefix.
fn code_matches(
    presented_hash: &str,
    stored: Option<&str>,
    sent_at: Option<DateTime<Utc>>,
    lifetime: std::time::Duration,
) -> bool {
    let stored = stored.unwrap_or_default();
    if stored.is_empty() || is_expired(sent_at, lifetime) {
        return false;
    }
    same_secret(presented_hash, stored) || same_secret(&format!("pkce_{presented_hash}"), stored)
}

fn link_invalid() -> ServiceError {
    ServiceError::forbidden(ErrorCode::OtpExpired, LINK_INVALID)
}

/// What a code presented with an address or number found.
enum CodeLookup {
    /// The user's pending code, and the type it turned out to be (`email` resolves to one).
    Matched(Box<PendingCodes>, VerifyType),
    /// The user exists but the code is not theirs: a failure to count.
    Wrong(Uuid),
}

fn code_invalid() -> ServiceError {
    ServiceError::forbidden(ErrorCode::OtpExpired, CODE_INVALID)
}

fn banned() -> ServiceError {
    ServiceError::forbidden(ErrorCode::UserBanned, "User is banned")
}

/// What the verification did, before any session is issued.
enum Verified {
    /// The code was for this user; sign them in.
    User(Uuid),
    /// The first half of a secure email change.
    SingleConfirmation,
}

impl UserState {
    pub async fn verify(&self, request: VerifyRequest) -> Result<VerifyResponse, ServiceError> {
        if request.r#type.is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Verify requires a verification type",
            ));
        }
        let (token_hash, by_hash, phone) = self.presented_hash(&request)?;
        let requested_type = VerifyType::parse(&request.r#type);
        let pkce_link = request.from_link && request.token.starts_with("pkce_");
        let flow_method = requested_type.map_or("otp", VerifyType::flow_method);
        // A PKCE link yields an auth code, handed out by the token service (the flow's owner). It is
        // asked before the transaction opens, so no call is made while the transaction holds locks:
        // the code is only marked issued, and reaches nobody unless the confirmation commits. No
        // flow state still means no confirmation, as in GoTrue.
        let issued = match (pkce_link, by_hash) {
            (true, true) => match self.link_owner(&token_hash, requested_type).await? {
                Some(user_id) => Some((user_id, self.issue_auth_code(user_id, flow_method).await?)),
                None => None,
            },
            _ => None,
        };

        let mut tx = self.db.begin().await?;
        let (user, verify_type) = if by_hash {
            let Some(verify_type) = requested_type.filter(|t| t.link_token_kinds().is_some()) else {
                return Err(ServiceError::bad_request(
                    ErrorCode::ValidationFailed,
                    "Invalid email verification type",
                ));
            };
            self.find_by_link(&mut tx, &token_hash, verify_type).await?
        } else {
            let aud = self.request_aud(request.context.as_ref());
            let Some(verify_type) = requested_type else {
                // GoTrue looks the user up by email, finds no matching code, and says so.
                return Err(code_invalid());
            };
            match self
                .find_by_code(&mut tx, &request, &token_hash, &phone, verify_type, &aud)
                .await?
            {
                CodeLookup::Matched(user, resolved) => {
                    otp_failures::forget(&mut tx, user.id).await?;
                    (*user, resolved)
                }
                CodeLookup::Wrong(user_id) => {
                    // The failure counts even though the request fails.
                    otp_failures::record(&mut tx, user_id, self.config.suite.otp_max_failures).await?;
                    tx.commit().await?;
                    return Err(code_invalid());
                }
            }
        };

        let verified = match verify_type {
            VerifyType::Signup | VerifyType::Invite | VerifyType::Email => self.confirm_signup(&mut tx, &user).await?,
            VerifyType::Recovery | VerifyType::MagicLink => self.confirm_recovery(&mut tx, &user).await?,
            VerifyType::EmailChange => self.confirm_email_change(&mut tx, &user, &token_hash).await?,
            VerifyType::Sms | VerifyType::PhoneChange => self.confirm_phone(&mut tx, &user, verify_type).await?,
        };
        let shown_type = verify_type.as_str().to_string();
        let user_id = match verified {
            Verified::SingleConfirmation => {
                tx.commit().await?;
                self.relay.nudge();
                return Ok(VerifyResponse {
                    result: Some(verify_response::Result::Message(SINGLE_CONFIRMATION_ACCEPTED.into())),
                    r#type: shown_type,
                });
            }
            Verified::User(id) => id,
        };
        store::users::refresh_providers(&mut tx, user_id).await?;

        if pkce_link {
            let auth_code = match issued {
                Some((owner, auth_code)) if owner == user_id => auth_code,
                // The link changed hands between the look-up and the lock: not this request's.
                _ => return Err(link_invalid()),
            };
            tx.commit().await?;
            self.relay.nudge(); // account-change notifications, if any, are in the outbox
            return Ok(VerifyResponse {
                result: Some(verify_response::Result::AuthCode(auth_code)),
                r#type: shown_type,
            });
        }
        store::users::record_sign_in(&mut tx, user_id).await?;
        tx.commit().await?;
        self.relay.nudge(); // account-change notifications, if any, are in the outbox
        let tokens = self.issue_session(user_id, "otp", request.context).await?;
        Ok(VerifyResponse {
            result: Some(verify_response::Result::Session(tokens)),
            r#type: shown_type,
        })
    }

    /// GoTrue's `VerifyParams.Validate`: the hash to look for, whether it came as a hash (a link),
    /// and the normalised phone of an SMS code.
    fn presented_hash(&self, request: &VerifyRequest) -> Result<(String, bool, String), ServiceError> {
        if request.from_link {
            if request.token.is_empty() {
                return Err(ServiceError::bad_request(
                    ErrorCode::ValidationFailed,
                    "Verify requires a token or a token hash",
                ));
            }
            return Ok((request.token.clone(), true, String::new()));
        }
        if request.token.is_empty() == request.token_hash.is_empty() {
            return Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Verify requires either a token or a token hash",
            ));
        }
        if request.token.is_empty() {
            if !request.email.is_empty() || !request.phone.is_empty() {
                return Err(ServiceError::bad_request(
                    ErrorCode::ValidationFailed,
                    "Only the token_hash and type should be provided",
                ));
            }
            return Ok((request.token_hash.clone(), true, String::new()));
        }
        match (request.email.is_empty(), request.phone.is_empty()) {
            (true, false) => {
                let phone = validate::phone(&request.phone)?;
                Ok((outbox::token_hash(&phone, &request.token), false, phone))
            }
            (false, true) => {
                let email = validate::email(&request.email)
                    .map_err(|_| ServiceError::unprocessable(ErrorCode::ValidationFailed, "Invalid email format"))?;
                Ok((outbox::token_hash(&email, &request.token), false, String::new()))
            }
            _ => Err(ServiceError::bad_request(
                ErrorCode::ValidationFailed,
                "Only an email address or phone number should be provided on verify",
            )),
        }
    }

    /// GoTrue's `verifyTokenHash`: the user whose pending link carries this hash. The code's row is
    /// locked first, so a second verification of the same link waits and then finds it consumed.
    async fn find_by_link(
        &self,
        conn: &mut PgConnection,
        token_hash: &str,
        verify_type: VerifyType,
    ) -> Result<(PendingCodes, VerifyType), ServiceError> {
        let kinds = token_type_names(verify_type.link_token_kinds());
        let user_id: Uuid = sqlx::query_scalar!(
            "SELECT user_id FROM one_time_tokens WHERE token_hash = $1 \
             AND token_type::text = ANY($2) LIMIT 1 FOR UPDATE",
            token_hash,
            &kinds as _
        )
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(link_invalid)?;
        let user = lock_user(conn, user_id).await?.ok_or_else(link_invalid)?;
        if user.is_banned() {
            return Err(banned());
        }
        let lifetime = self.config.mailer.otp_exp;
        let (sent_at, resolved) = match verify_type {
            VerifyType::Email => {
                if user
                    .recovery_token
                    .as_deref()
                    .is_some_and(|t| same_secret(t, token_hash))
                {
                    (user.recovery_sent_at, VerifyType::MagicLink)
                } else {
                    (user.confirmation_sent_at, VerifyType::Signup)
                }
            }
            VerifyType::Signup | VerifyType::Invite => (user.confirmation_sent_at, verify_type),
            VerifyType::Recovery | VerifyType::MagicLink => (user.recovery_sent_at, verify_type),
            _ => (user.email_change_sent_at, verify_type),
        };
        if is_expired(sent_at, lifetime) {
            return Err(link_invalid());
        }
        Ok((user, resolved))
    }

    /// Whose link `token_hash` is (read without locking; [`Self::find_by_link`] locks and checks it).
    async fn link_owner(
        &self,
        token_hash: &str,
        verify_type: Option<VerifyType>,
    ) -> Result<Option<Uuid>, ServiceError> {
        let kinds = token_type_names(verify_type.and_then(VerifyType::link_token_kinds));
        Ok(sqlx::query_scalar!(
            "SELECT user_id FROM one_time_tokens WHERE token_hash = $1 AND token_type::text = ANY($2) LIMIT 1",
            token_hash,
            &kinds as _
        )
        .fetch_optional(&self.db)
        .await?)
    }

    /// GoTrue's `verifyUserAndToken`: the user named by the address, whose pending code must match.
    async fn find_by_code(
        &self,
        conn: &mut PgConnection,
        request: &VerifyRequest,
        token_hash: &str,
        phone: &str,
        verify_type: VerifyType,
        aud: &str,
    ) -> Result<CodeLookup, ServiceError> {
        let user = match verify_type {
            VerifyType::PhoneChange => lock_user_by(conn, Addressed::PendingPhoneChange(phone), aud).await?,
            VerifyType::Sms => lock_user_by(conn, Addressed::Phone(phone), aud).await?,
            VerifyType::EmailChange => {
                let user_id: Option<Uuid> = sqlx::query_scalar!(
                    "SELECT user_id FROM one_time_tokens WHERE token_hash IN ($1, 'pkce_' || $1) \
                     AND token_type IN ('email_change_token_current', 'email_change_token_new') LIMIT 1",
                    token_hash
                )
                .fetch_optional(&mut *conn)
                .await?;
                match user_id {
                    Some(id) => lock_user(conn, id).await?.filter(|u| {
                        let email = request.email.to_lowercase();
                        u.aud.as_deref() == Some(aud)
                            && (u.email.as_deref().is_some_and(|e| e.to_lowercase() == email)
                                || u.email_change.as_deref().is_some_and(|e| e.to_lowercase() == email))
                    }),
                    None => None,
                }
            }
            _ => {
                let email = request.email.trim().to_lowercase();
                lock_user_by(conn, Addressed::Email(&email), aud).await?
            }
        }
        .ok_or_else(code_invalid)?;
        if user.is_banned() {
            return Err(banned());
        }

        let mailer_lifetime = self.config.mailer.otp_exp;
        let sms_lifetime = self.config.sms.otp_exp;
        let mut resolved = verify_type;
        let valid = match verify_type {
            VerifyType::Email => {
                if code_matches(
                    token_hash,
                    user.confirmation_token.as_deref(),
                    user.confirmation_sent_at,
                    mailer_lifetime,
                ) {
                    resolved = VerifyType::Signup;
                    true
                } else if code_matches(
                    token_hash,
                    user.recovery_token.as_deref(),
                    user.recovery_sent_at,
                    mailer_lifetime,
                ) {
                    resolved = VerifyType::MagicLink;
                    true
                } else {
                    false
                }
            }
            VerifyType::Signup | VerifyType::Invite => code_matches(
                token_hash,
                user.confirmation_token.as_deref(),
                user.confirmation_sent_at,
                mailer_lifetime,
            ),
            VerifyType::Recovery | VerifyType::MagicLink => code_matches(
                token_hash,
                user.recovery_token.as_deref(),
                user.recovery_sent_at,
                mailer_lifetime,
            ),
            VerifyType::EmailChange => {
                let sent = user.email_change_sent_at;
                code_matches(
                    token_hash,
                    user.email_change_token_current.as_deref(),
                    sent,
                    mailer_lifetime,
                ) || code_matches(
                    token_hash,
                    user.email_change_token_new.as_deref(),
                    sent,
                    mailer_lifetime,
                )
            }
            VerifyType::Sms | VerifyType::PhoneChange => {
                let test_code = self.config.sms.test_otp(phone, Utc::now());
                if test_code.is_some_and(|code| same_secret(code, &request.token)) {
                    true
                } else if verify_type == VerifyType::Sms {
                    code_matches(
                        token_hash,
                        user.confirmation_token.as_deref(),
                        user.confirmation_sent_at,
                        sms_lifetime,
                    )
                } else {
                    code_matches(
                        token_hash,
                        user.phone_change_token.as_deref(),
                        user.phone_change_sent_at,
                        sms_lifetime,
                    )
                }
            }
        };
        if !valid {
            return Ok(CodeLookup::Wrong(user.id));
        }
        Ok(CodeLookup::Matched(Box::new(user), resolved))
    }

    /// GoTrue's `signupVerify`: confirmed, `email_verified` in metadata and identity; an invited
    /// user without a password gets a random one (the app then asks for a real one).
    async fn confirm_signup(&self, conn: &mut PgConnection, user: &PendingCodes) -> Result<Verified, ServiceError> {
        let has_password = user.encrypted_password.as_deref().is_some_and(|p| !p.is_empty());
        if !has_password && user.invited_at.is_some() {
            let random = outbox::generate_otp(64);
            let hash = self
                .hash_password(user.id, &random)
                .await
                .map_err(ServiceError::internal)?;
            store::users::set_password_hash(conn, user.id, &hash).await?;
        }
        record_audit(
            conn,
            user.id,
            AuditAction::UserSignedUp,
            Some(json!({"provider": "email"})),
        )
        .await?;
        store::users::confirm_email(conn, user.id).await?;
        store::one_time_tokens::delete_all(conn, user.id).await?;
        store::identities::mark_email_verified(conn, user.id).await?;
        Ok(Verified::User(user.id))
    }

    /// GoTrue's `recoverVerify`: the recovery code is spent; an unconfirmed user is confirmed by it.
    async fn confirm_recovery(&self, conn: &mut PgConnection, user: &PendingCodes) -> Result<Verified, ServiceError> {
        store::users::spend_recovery_code(conn, user.id).await?;
        store::one_time_tokens::delete_all(conn, user.id).await?;
        if user.email_confirmed_at.is_none() {
            record_audit(
                conn,
                user.id,
                AuditAction::UserSignedUp,
                Some(json!({"provider": "email"})),
            )
            .await?;
            store::users::confirm_email(conn, user.id).await?;
            store::one_time_tokens::delete_all(conn, user.id).await?;
        } else {
            record_audit(conn, user.id, AuditAction::Login, None).await?;
        }
        Ok(Verified::User(user.id))
    }

    /// GoTrue's `emailChangeVerify`: with secure email change both addresses confirm, the first
    /// confirmation only marks its half; the second (or the only one) moves the address.
    async fn confirm_email_change(
        &self,
        conn: &mut PgConnection,
        user: &PendingCodes,
        token_hash: &str,
    ) -> Result<Verified, ServiceError> {
        let config = &self.config.mailer;
        let has_email = user.email.as_deref().is_some_and(|e| !e.is_empty());
        if !config.autoconfirm
            && config.secure_email_change_enabled
            && user.email_change_confirm_status.unwrap_or(0) == 0
            && has_email
        {
            let is = |stored: Option<&str>| {
                let stored = stored.unwrap_or_default();
                !stored.is_empty()
                    && (same_secret(stored, token_hash) || same_secret(stored, &format!("pkce_{token_hash}")))
            };
            let spent = if is(user.email_change_token_current.as_deref()) {
                Some((true, OneTimeTokenKind::EmailChangeCurrent))
            } else if is(user.email_change_token_new.as_deref()) {
                Some((false, OneTimeTokenKind::EmailChangeNew))
            } else {
                None
            };
            if let Some((current_address, kind)) = spent {
                store::users::spend_one_email_change_code(conn, user.id, current_address).await?;
                store::one_time_tokens::delete_kind(conn, user.id, kind).await?;
            }
            return Ok(Verified::SingleConfirmation);
        }

        let new_email = user.email_change.clone().unwrap_or_default();
        record_audit(conn, user.id, AuditAction::UserModified, None).await?;
        store::identities::upsert_merging(
            conn,
            user.id,
            "email",
            json!({"sub": user.id.to_string(), "email": new_email, "email_verified": true}),
        )
        .await?;
        store::users::finish_email_change(conn, user.id, &new_email).await?;
        store::one_time_tokens::delete_all(conn, user.id).await?;
        if user.email_confirmed_at.is_none() {
            store::users::confirm_email(conn, user.id).await?;
            store::one_time_tokens::delete_all(conn, user.id).await?;
        }
        let account = notifications::Account {
            email: &new_email,
            phone: user.phone.as_deref().unwrap_or_default(),
            data_json: user.metadata_json(),
        };
        let change = notifications::AccountChange::Email {
            old_email: user.email.as_deref().unwrap_or_default(),
        };
        notifications::notify(conn, &self.config, change, account).await?;
        Ok(Verified::User(user.id))
    }

    /// GoTrue's `smsVerify`: a sign-up's phone is confirmed, or a phone change takes effect.
    async fn confirm_phone(
        &self,
        conn: &mut PgConnection,
        user: &PendingCodes,
        verify_type: VerifyType,
    ) -> Result<Verified, ServiceError> {
        if verify_type == VerifyType::Sms {
            record_audit(
                conn,
                user.id,
                AuditAction::UserSignedUp,
                Some(json!({"provider": "phone"})),
            )
            .await?;
            store::users::confirm_phone(conn, user.id).await?;
        } else {
            let new_phone = user.phone_change.clone().unwrap_or_default();
            record_audit(conn, user.id, AuditAction::UserModified, None).await?;
            store::identities::upsert_merging(
                conn,
                user.id,
                "phone",
                json!({"sub": user.id.to_string(), "phone": new_phone, "phone_verified": true}),
            )
            .await?;
            store::users::finish_phone_change(conn, user.id, &new_phone).await?;
            let account = notifications::Account {
                email: user.email.as_deref().unwrap_or_default(),
                phone: &new_phone,
                data_json: user.metadata_json(),
            };
            let change = notifications::AccountChange::Phone {
                old_phone: user.phone.as_deref().unwrap_or_default(),
            };
            notifications::notify(conn, &self.config, change, account).await?;
        }
        store::one_time_tokens::delete_all(conn, user.id).await?;
        Ok(Verified::User(user.id))
    }
}

/// The `one_time_tokens.token_type` values of `kinds` (none: matches nothing).
fn token_type_names(kinds: Option<&[OneTimeTokenKind]>) -> Vec<&'static str> {
    kinds.unwrap_or_default().iter().map(|kind| kind.as_sql()).collect()
}

async fn lock_user(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<PendingCodes>> {
    lock_pending_codes!(conn, "id = $1", id)
}

/// What names the user whose code is presented (GoTrue's `verifyUserAndToken` lookups).
#[derive(Clone, Copy)]
enum Addressed<'a> {
    Email(&'a str),
    Phone(&'a str),
    PendingPhoneChange(&'a str),
}

async fn lock_user_by(
    conn: &mut PgConnection,
    addressed: Addressed<'_>,
    aud: &str,
) -> sqlx::Result<Option<PendingCodes>> {
    match addressed {
        Addressed::Email(email) => lock_pending_codes!(
            conn,
            "instance_id = '00000000-0000-0000-0000-000000000000' AND lower(email) = $1 AND aud = $2 \
             AND is_sso_user = false",
            email,
            aud
        ),
        Addressed::Phone(phone) => {
            lock_pending_codes!(conn, "phone = $1 AND aud = $2 AND is_sso_user = false", phone, aud)
        }
        Addressed::PendingPhoneChange(phone) => {
            lock_pending_codes!(
                conn,
                "phone_change = $1 AND aud = $2 AND is_sso_user = false",
                phone,
                aud
            )
        }
    }
}

/// An audit entry for the user as the row now stands (the actor's email and phone).
async fn record_audit(
    conn: &mut PgConnection,
    user_id: Uuid,
    action: AuditAction,
    traits: Option<serde_json::Value>,
) -> Result<(), ServiceError> {
    let user = store::users::load(conn, user_id).await?;
    audit::record(&mut *conn, &user, action, traits).await?;
    Ok(())
}
