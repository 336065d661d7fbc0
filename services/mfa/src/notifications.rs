//! The factor notification emails (GoTrue v2.196,
//! `GOTRUE_MAILER_NOTIFICATIONS_MFA_FACTOR_{ENROLLED,UNENROLLED}_ENABLED`): the user is told that a
//! sign-in verification method was added (its first verification) or removed.
//!
//! As in GoTrue, a notification never fails the change it reports: a spent email budget skips it with
//! a warning. Unlike GoTrue, it is written to the outbox in the change's own transaction, so it goes
//! out exactly when the change commits.

use auth_account::users::UserRecord;
use auth_core::{Config, ServiceError};
use auth_outbox::EmailContent;
use auth_proto::notification::v1::EmailKind;
use serde_json::Value;
use sqlx::PgConnection;

/// What happened to the factor.
#[derive(Debug, Clone, Copy)]
pub enum FactorChange {
    Enrolled,
    Unenrolled,
}

impl FactorChange {
    fn kind(self) -> EmailKind {
        match self {
            Self::Enrolled => EmailKind::MfaFactorEnrolledNotification,
            Self::Unenrolled => EmailKind::MfaFactorUnenrolledNotification,
        }
    }

    fn enabled(self, config: &Config) -> bool {
        let switches = &config.mailer.notifications;
        match self {
            Self::Enrolled => switches.mfa_factor_enrolled_enabled,
            Self::Unenrolled => switches.mfa_factor_unenrolled_enabled,
        }
    }
}

/// Queues the notification of `change` when it is switched on and the user has an email address;
/// returns whether it was queued. The caller nudges the relay after its commit.
pub async fn notify(
    conn: &mut PgConnection,
    config: &Config,
    user: &UserRecord,
    change: FactorChange,
    factor_type: &str,
) -> Result<bool, ServiceError> {
    if !change.enabled(config) || user.email().is_empty() {
        return Ok(false);
    }
    if !auth_outbox::budget::spend_on_notification(conn, config, change.kind()).await? {
        return Ok(false);
    }
    let content = EmailContent {
        data_json: Value::Object(user.user_metadata()).to_string(),
        factor_type: factor_type.to_string(),
        ..Default::default()
    };
    auth_outbox::enqueue_email(conn, config, change.kind(), user.email(), content).await?;
    Ok(true)
}
