//! Sending a one-time code (sign-up confirmation, recovery, magic link, OTP, resend,
//! reauthentication): generates the code, stores its hash where `/verify` will look for it,
//! enforces the per-user send interval, and queues the email or SMS in the outbox, all on the
//! caller's transaction. Two other places store codes: `generate_link.rs` (links returned to an
//! admin, not sent) and `update.rs` (the two codes of a secure email change).
//!
//! The interval is enforced by the same `UPDATE` that stores the code (`... WHERE sent_at is old
//! enough`), so two simultaneous requests cannot both send; GoTrue checks then writes.

use auth_account::audit::{self, AuditAction};
use auth_account::users::UserRecord;
use auth_core::{ErrorCode, ServiceError};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::code_purpose::{EmailCode, PhoneCode};
use crate::state::UserState;
use crate::store;
use crate::store::one_time_tokens;
use auth_outbox::budget::{self as send_budget, Budget};
use auth_outbox::{self as outbox, EmailContent};

/// Where a code goes.
pub enum Delivery<'a> {
    /// To the user's email address; with `pkce`, the link yields an auth code.
    Email {
        code: EmailCode,
        pkce: Option<Pkce<'a>>,
        redirect_to: &'a str,
    },
    /// To `phone` by SMS or WhatsApp.
    Phone {
        code: PhoneCode,
        phone: &'a str,
        channel: &'a str,
    },
}

/// A PKCE request's flow: its method name at the token service and the client's challenge.
pub struct Pkce<'a> {
    pub flow_method: &'static str,
    pub challenge: &'a str,
    pub challenge_method: &'a str,
}

impl<'a> Pkce<'a> {
    /// The flow of a request that sent a `code_challenge`; `None` when it sent none.
    pub fn requested(flow_method: &'static str, challenge: &'a str, challenge_method: &'a str) -> Option<Self> {
        (!challenge.is_empty()).then_some(Self {
            flow_method,
            challenge,
            challenge_method,
        })
    }
}

/// The message id GoTrue reports when a test code stands in for an SMS.
pub const TEST_OTP_MESSAGE_ID: &str = "test-otp";

impl UserState {
    /// The one "send a code" flow of the endpoints that send nothing else (recover, magic link, OTP,
    /// reauthenticate): a PKCE flow is started first (before the transaction: no call is made while
    /// it is open), then the audit entry, the code and its outbox message commit together, and the
    /// relay is woken. Returns the SMS message id (`""` for email).
    pub async fn send_code_now(
        &self,
        user: &UserRecord,
        action: AuditAction,
        traits: Option<Value>,
        delivery: Delivery<'_>,
    ) -> Result<String, ServiceError> {
        if let Delivery::Email { pkce: Some(pkce), .. } = &delivery {
            self.create_flow_state(user.id, pkce.flow_method, pkce.challenge, pkce.challenge_method)
                .await?;
        }
        let mut tx = self.db.begin().await?;
        audit::record(&mut *tx, user, action, traits).await?;
        let message_id = match delivery {
            Delivery::Email {
                code,
                pkce,
                redirect_to,
            } => {
                self.send_email_code(&mut tx, user, code, pkce.is_some(), redirect_to)
                    .await?;
                String::new()
            }
            Delivery::Phone { code, phone, channel } => {
                self.send_phone_code(&mut tx, user, code, phone, channel).await?
            }
        };
        tx.commit().await?;
        self.relay.nudge();
        Ok(message_id)
    }

    /// Sends `code` to the user's email address. `pkce` stores the hash with GoTrue's `pkce_`
    /// prefix, so verifying the link yields an auth code instead of tokens.
    pub async fn send_email_code(
        &self,
        conn: &mut PgConnection,
        user: &UserRecord,
        code: EmailCode,
        pkce: bool,
        redirect_to: &str,
    ) -> Result<Uuid, ServiceError> {
        let otp = outbox::generate_otp(self.config.mailer.otp_length);
        let hash = outbox::token_hash(user.email(), &otp);
        let stored = if pkce { format!("pkce_{hash}") } else { hash };
        let interval = code.interval(self.config.mailer.max_frequency);
        if !store::users::store_code_if_due(conn, user.id, code.token_kind(), &stored, None, interval).await? {
            return Err(too_soon(
                code.last_sent(user),
                self.config.mailer.max_frequency,
                ErrorCode::OverEmailSendRateLimit,
            ));
        }
        if !self.config.mailer.autoconfirm {
            send_budget::spend(conn, Budget::Email, self.config.rate_limit.email_sent).await?;
        }
        one_time_tokens::store(conn, user.id, code.token_kind(), &stored, user.email()).await?;
        let id = outbox::enqueue_email(
            conn,
            &self.config,
            code.email_kind(),
            user.email(),
            EmailContent {
                otp,
                token_hash: stored,
                link_type: code.link_type(),
                redirect_to: self.redirect_target(redirect_to),
                data_json: Value::Object(user.user_metadata()).to_string(),
                ..Default::default()
            },
        )
        .await?;
        Ok(id)
    }

    /// Sends `code` by SMS to `phone` and returns the message id (`test-otp` when a configured test
    /// code stands in and nothing is sent).
    pub async fn send_phone_code(
        &self,
        conn: &mut PgConnection,
        user: &UserRecord,
        code: PhoneCode,
        phone: &str,
        channel: &str,
    ) -> Result<String, ServiceError> {
        let test_code = self.config.sms.test_otp(phone, Utc::now()).map(str::to_string);
        // Found here, in the request, as GoTrue finds it; a provider outage is the notifier's to retry.
        if test_code.is_none()
            && let Some(problem) = self.config.sms.provider_problem()
        {
            tracing::error!(%problem, "SMS requested but the SMS provider is not configured");
            return Err(ServiceError::server_misconfigured("Unable to get SMS provider"));
        }
        let otp = test_code
            .clone()
            .unwrap_or_else(|| outbox::generate_otp(self.config.sms.otp_length));
        let hash = outbox::token_hash(phone, &otp);
        let phone_change = (code == PhoneCode::PhoneChange).then_some(phone);
        let interval = self.config.sms.max_frequency;
        if !store::users::store_code_if_due(conn, user.id, code.token_kind(), &hash, phone_change, interval).await? {
            return Err(too_soon(
                code.last_sent(user),
                self.config.sms.max_frequency,
                ErrorCode::OverSmsSendRateLimit,
            ));
        }
        one_time_tokens::store(conn, user.id, code.token_kind(), &hash, phone).await?;
        if test_code.is_some() {
            return Ok(TEST_OTP_MESSAGE_ID.to_string());
        }
        if !self.config.sms.autoconfirm {
            send_budget::spend(conn, Budget::Sms, self.config.rate_limit.sms_sent).await?;
        }
        let id = outbox::enqueue_sms(conn, &self.config, outbox::SmsKind::Otp, phone, channel, &otp).await?;
        Ok(id.to_string())
    }

    /// A `redirect_to` the policy allows, else the site URL.
    pub fn redirect_target(&self, requested: &str) -> String {
        self.redirects.resolve([requested])
    }
}

/// The 429 for a code refused by its send interval, with GoTrue's wait in seconds.
fn too_soon(last_sent: Option<DateTime<Utc>>, interval: std::time::Duration, code: ErrorCode) -> ServiceError {
    let last_sent = last_sent.unwrap_or_else(Utc::now);
    outbox::check_frequency(Some(last_sent), interval, code)
        .err()
        .or_else(|| {
            // The row was written by a request racing this one, after our snapshot.
            outbox::check_frequency(Some(Utc::now()), interval, code).err()
        })
        .unwrap_or_else(|| ServiceError::new(429, code, "For security purposes, please wait a moment."))
}
