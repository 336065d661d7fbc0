//! GoTrue's audit log (`audit_log_entries`), written in the same transaction as the action it records.
//!
//! The user service owns the table and serves it (`/admin/audit`); every service appends its own
//! actions (the token service records `token_refreshed`, `token_revoked`, `logout`). An append-only
//! log written beside the change is the only way to keep it truthful, so this is the one write the
//! ownership rule allows across services.
//!
//! Every entry records the end user's address, taken from the request context
//! ([`auth_core::client_ip`]); GoTrue records it for a few actions only.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::users::UserRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    Login,
    Logout,
    UserSignedUp,
    UserDeleted,
    UserInvited,
    UserModified,
    UserConfirmationRequested,
    UserRepeatedSignUp,
    UserUpdatedPassword,
    UserReauthenticateRequested,
    UserRecoveryRequested,
    TokenRevoked,
    TokenRefreshed,
    FactorDeleted,
    FactorUpdated,
    /// GoTrue's `EnrollFactorAction`
    FactorInProgress,
    FactorUnenrolled,
    ChallengeCreated,
    /// GoTrue's `VerifyFactorAction` (written for successful verifications)
    VerificationAttempted,
    /// The suite's own: a new set of MFA recovery codes.
    RecoveryCodesGenerated,
    /// The suite's own: a session stepped up with a recovery code.
    RecoveryCodeUsed,
    PasskeyCreated,
    PasskeyUpdated,
    PasskeyDeleted,
    /// GoTrue's `IdentityLinkAction`: an external identity joined an existing account.
    IdentityLinked,
    /// GoTrue's `IdentityUnlinkAction`: the user removed an identity.
    IdentityUnlinked,
    InviteAccepted,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Logout => "logout",
            Self::UserSignedUp => "user_signedup",
            Self::UserDeleted => "user_deleted",
            Self::UserInvited => "user_invited",
            Self::UserModified => "user_modified",
            Self::UserConfirmationRequested => "user_confirmation_requested",
            Self::UserRepeatedSignUp => "user_repeated_signup",
            Self::UserUpdatedPassword => "user_updated_password",
            Self::UserReauthenticateRequested => "user_reauthenticate_requested",
            Self::UserRecoveryRequested => "user_recovery_requested",
            Self::TokenRevoked => "token_revoked",
            Self::TokenRefreshed => "token_refreshed",
            Self::FactorDeleted => "factor_deleted",
            Self::FactorUpdated => "factor_updated",
            Self::FactorInProgress => "factor_in_progress",
            Self::FactorUnenrolled => "factor_unenrolled",
            Self::ChallengeCreated => "challenge_created",
            Self::VerificationAttempted => "verification_attempted",
            Self::RecoveryCodesGenerated => "recovery_codes_generated",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::PasskeyCreated => "passkey_created",
            Self::PasskeyUpdated => "passkey_updated",
            Self::PasskeyDeleted => "passkey_deleted",
            Self::IdentityLinked => "identity_linked",
            Self::IdentityUnlinked => "identity_unlinked",
            Self::InviteAccepted => "invite_accepted",
        }
    }

    /// GoTrue's `ActionLogTypeMap`.
    pub fn log_type(self) -> &'static str {
        match self {
            Self::Login | Self::Logout | Self::InviteAccepted => "account",
            Self::UserSignedUp | Self::UserDeleted | Self::UserInvited => "team",
            Self::TokenRevoked | Self::TokenRefreshed => "token",
            Self::FactorDeleted
            | Self::FactorUpdated
            | Self::FactorInProgress
            | Self::FactorUnenrolled
            | Self::ChallengeCreated
            | Self::VerificationAttempted
            | Self::RecoveryCodesGenerated
            | Self::RecoveryCodeUsed => "factor",
            _ => "user",
        }
    }
}

/// GoTrue's audit payload for `action` by `actor`, as JSON text. For callers that write the entry
/// as part of a larger statement (the sign-in).
pub fn payload(actor: &UserRecord, action: AuditAction, traits: Option<Value>) -> String {
    let actor = Actor {
        id: actor.id,
        via_sso: actor.is_sso_user,
        username: actor.audit_username(),
        name: actor.user_metadata().get("full_name").cloned(),
    };
    actor.payload(action, traits)
}

/// Who did it, as the log names them.
struct Actor<'a> {
    id: Uuid,
    via_sso: bool,
    username: &'a str,
    name: Option<Value>,
}

impl Actor<'_> {
    fn payload(&self, action: AuditAction, traits: Option<Value>) -> String {
        let mut payload = Map::new();
        payload.insert("actor_id".into(), json!(self.id));
        payload.insert("actor_via_sso".into(), json!(self.via_sso));
        payload.insert("actor_username".into(), json!(self.username));
        payload.insert("action".into(), json!(action.as_str()));
        payload.insert("log_type".into(), json!(action.log_type()));
        if let Some(name) = &self.name {
            payload.insert("actor_name".into(), name.clone());
        }
        if let Some(traits) = traits {
            payload.insert("traits".into(), traits);
        }
        tracing::info!(action = action.as_str(), actor_id = %self.id, "audit_event");
        Value::Object(payload).to_string()
    }
}

/// Appends one entry by an admin-role caller. GoTrue names such a caller by its role: the nil id
/// and the role as the username.
pub async fn record_by_admin<'e>(
    db: impl sqlx::PgExecutor<'e>,
    role: &str,
    action: AuditAction,
    traits: Option<Value>,
) -> sqlx::Result<()> {
    let actor = Actor {
        id: Uuid::nil(),
        via_sso: false,
        username: role,
        name: None,
    };
    insert_entry(db, actor.payload(action, traits)).await
}

/// Inserts one entry with its payload (from [`payload`]) and the client address. Statements that
/// append entries as a CTE (the sign-in, the refresh) repeat this `INSERT`, so that each stays one
/// literal the compiler checks.
async fn insert_entry<'e>(db: impl sqlx::PgExecutor<'e>, payload: String) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO audit_log_entries (instance_id, id, payload, created_at, ip_address) \
         VALUES ('00000000-0000-0000-0000-000000000000', $1, $2::text::json, now(), $3)",
        Uuid::new_v4(),
        payload,
        auth_core::client_ip::current()
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Appends one entry. `traits` is omitted when `None`, as GoTrue does.
pub async fn record<'e>(
    db: impl sqlx::PgExecutor<'e>,
    actor: &UserRecord,
    action: AuditAction,
    traits: Option<Value>,
) -> sqlx::Result<()> {
    insert_entry(db, payload(actor, action, traits)).await
}

/// The ids and payloads of trait-less entries by one actor, for a statement that inserts them from
/// `unnest(ids, payloads)` (the refresh).
pub fn entries(actor: &UserRecord, actions: &[AuditAction]) -> (Vec<Uuid>, Vec<String>) {
    let ids = actions.iter().map(|_| Uuid::new_v4()).collect();
    let payloads = actions.iter().map(|&action| payload(actor, action, None)).collect();
    (ids, payloads)
}
