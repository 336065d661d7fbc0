//! Account-change notification emails (GoTrue v2.196, `GOTRUE_MAILER_NOTIFICATIONS_*_ENABLED`): the
//! user is told that their password, email address or phone number changed, or that a sign-in
//! method (an identity) was linked or unlinked.
//!
//! As in GoTrue, a notification never fails the change it reports: when the project's email budget
//! (`GOTRUE_RATE_LIMIT_EMAIL_SENT`) is spent it is skipped with a warning. Unlike GoTrue, it is
//! written to the outbox in the change's own transaction, so it is sent exactly when the change
//! commits, and never lost by a crash between the two.

use auth_core::ServiceError;
use auth_core::config::{Config, MailerNotifications};
use auth_proto::notification::v1::EmailKind;
use sqlx::PgConnection;

use auth_outbox::budget as send_budget;
use auth_outbox::{self as outbox, EmailContent};

/// What changed, and what the email says about it.
#[derive(Debug)]
pub enum AccountChange<'a> {
    Password,
    /// Sent to the old address.
    Email {
        old_email: &'a str,
    },
    Phone {
        old_phone: &'a str,
    },
    /// Manual linking added an identity of `provider`.
    IdentityLinked {
        provider: &'a str,
    },
    /// The user removed an identity of `provider`; sent to the address the account had before.
    IdentityUnlinked {
        provider: &'a str,
    },
}

impl AccountChange<'_> {
    fn kind(&self) -> EmailKind {
        match self {
            Self::Password => EmailKind::PasswordChangedNotification,
            Self::Email { .. } => EmailKind::EmailChangedNotification,
            Self::Phone { .. } => EmailKind::PhoneChangedNotification,
            Self::IdentityLinked { .. } => EmailKind::IdentityLinkedNotification,
            Self::IdentityUnlinked { .. } => EmailKind::IdentityUnlinkedNotification,
        }
    }

    fn enabled(&self, switches: &MailerNotifications) -> bool {
        match self {
            Self::Password => switches.password_changed_enabled,
            Self::Email { .. } => switches.email_changed_enabled,
            Self::Phone { .. } => switches.phone_changed_enabled,
            Self::IdentityLinked { .. } => switches.identity_linked_enabled,
            Self::IdentityUnlinked { .. } => switches.identity_unlinked_enabled,
        }
    }
}

/// The account as it is after the change.
#[derive(Debug)]
pub struct Account<'a> {
    pub email: &'a str,
    pub phone: &'a str,
    /// `raw_user_meta_data` as JSON text, for `{{ .Data.key }}`.
    pub data_json: String,
}

/// Queues the notification of `change` when it is switched on; returns whether it was queued.
pub async fn notify(
    conn: &mut PgConnection,
    config: &Config,
    change: AccountChange<'_>,
    account: Account<'_>,
) -> Result<bool, ServiceError> {
    if !change.enabled(&config.mailer.notifications) {
        return Ok(false);
    }
    let to = match &change {
        AccountChange::Email { old_email } => *old_email,
        AccountChange::Password
        | AccountChange::Phone { .. }
        | AccountChange::IdentityLinked { .. }
        | AccountChange::IdentityUnlinked { .. } => account.email,
    };
    // GoTrue's checks: both addresses (or numbers) known and different, someone to write to.
    let changed = match &change {
        AccountChange::Password | AccountChange::IdentityLinked { .. } | AccountChange::IdentityUnlinked { .. } => true,
        AccountChange::Email { old_email } => !account.email.is_empty() && *old_email != account.email,
        AccountChange::Phone { old_phone } => {
            !old_phone.is_empty() && !account.phone.is_empty() && *old_phone != account.phone
        }
    };
    if to.is_empty() || !changed {
        return Ok(false);
    }
    if !send_budget::spend_on_notification(conn, config, change.kind()).await? {
        return Ok(false);
    }
    let (old_email, old_phone) = match &change {
        AccountChange::Email { old_email } => (old_email.to_string(), String::new()),
        AccountChange::Phone { old_phone } => (String::new(), old_phone.to_string()),
        _ => (String::new(), String::new()),
    };
    let provider = match &change {
        AccountChange::IdentityLinked { provider } | AccountChange::IdentityUnlinked { provider } => {
            provider.to_string()
        }
        _ => String::new(),
    };
    let content = EmailContent {
        data_json: account.data_json,
        account_email: account.email.to_string(),
        old_email,
        old_phone,
        phone: account.phone.to_string(),
        provider,
        ..Default::default()
    };
    outbox::enqueue_email(conn, config, change.kind(), to, content).await?;
    Ok(true)
}
