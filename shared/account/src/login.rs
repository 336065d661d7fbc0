//! A sign-in's own records: GoTrue's `login` audit entry and `users.last_sign_in_at`, written in one
//! statement before the token service issues the session, and taken back when it cannot (the
//! session is another service's row, so the two cannot share a transaction).
//! Used by every service that signs users in: the user service (password), the mfa service
//! (passkeys).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::{self, AuditAction};
use crate::users::UserRecord;

/// What [`record`] wrote, to take it back.
pub struct LoginRecord {
    user_id: Uuid,
    entry_id: Uuid,
    previous_sign_in: Option<DateTime<Utc>>,
}

/// Writes the `login` entry (with `traits`) and the sign-in time, atomically without a transaction.
pub async fn record(db: &PgPool, user: &UserRecord, traits: Value) -> sqlx::Result<LoginRecord> {
    let payload = audit::payload(user, AuditAction::Login, Some(traits));
    let entry_id = Uuid::new_v4();
    sqlx::query!(
        "WITH entry AS ( \
           INSERT INTO audit_log_entries (instance_id, id, payload, created_at, ip_address) \
           VALUES ('00000000-0000-0000-0000-000000000000', $1, $2::text::json, now(), $3)) \
         UPDATE users SET last_sign_in_at = now() WHERE id = $4",
        entry_id,
        payload,
        auth_core::client_ip::current(),
        user.id
    )
    .execute(db)
    .await?;
    Ok(LoginRecord {
        user_id: user.id,
        entry_id,
        previous_sign_in: user.last_sign_in_at,
    })
}

/// Takes back a sign-in's `login` entry and `last_sign_in_at` when no session could be issued.
pub async fn undo(db: &PgPool, login: LoginRecord) {
    let LoginRecord {
        user_id,
        entry_id,
        previous_sign_in,
    } = login;
    let result = sqlx::query!(
        "WITH entry AS (DELETE FROM audit_log_entries WHERE id = $2) \
         UPDATE users SET last_sign_in_at = $3 WHERE id = $1",
        user_id,
        entry_id,
        previous_sign_in
    )
    .execute(db)
    .await;
    if let Err(error) = result {
        tracing::error!(%user_id, %error, "no session could be issued and the login record could not be taken back");
    }
}
