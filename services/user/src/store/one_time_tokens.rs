//! `one_time_tokens`: the index GoTrue keeps of each user's live link and code hashes (one per kind
//! and user), which `/verify` looks links up by.

use sqlx::PgConnection;
use uuid::Uuid;

/// The kinds of one-time code, each with its own pair of `users` columns (the hash, and when it was
/// sent) and its `one_time_token_type`. Every flow that stores a code names one of these; no column
/// name is written anywhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneTimeTokenKind {
    Confirmation,
    Recovery,
    Reauthentication,
    EmailChangeNew,
    EmailChangeCurrent,
    PhoneChange,
}

/// `$statement!(token_column, sent_column)` for `$kind`'s pair of `users` columns, so a statement
/// written once becomes one compile-time checked statement per kind (a column name cannot be a bound
/// parameter). The one place that maps a kind to its columns.
macro_rules! per_code_columns {
    ($kind:expr, $statement:ident) => {{
        use $crate::store::one_time_tokens::OneTimeTokenKind as Kind;
        match $kind {
            Kind::Confirmation => $statement!("confirmation_token", "confirmation_sent_at"),
            Kind::Recovery => $statement!("recovery_token", "recovery_sent_at"),
            Kind::Reauthentication => $statement!("reauthentication_token", "reauthentication_sent_at"),
            Kind::EmailChangeNew => $statement!("email_change_token_new", "email_change_sent_at"),
            Kind::EmailChangeCurrent => $statement!("email_change_token_current", "email_change_sent_at"),
            Kind::PhoneChange => $statement!("phone_change_token", "phone_change_sent_at"),
        }
    }};
}
pub(crate) use per_code_columns;

impl OneTimeTokenKind {
    /// The `one_time_token_type` value, which is also the `users` column holding the hash.
    pub fn as_sql(self) -> &'static str {
        match self {
            Self::Confirmation => "confirmation_token",
            Self::Recovery => "recovery_token",
            Self::Reauthentication => "reauthentication_token",
            Self::EmailChangeNew => "email_change_token_new",
            Self::EmailChangeCurrent => "email_change_token_current",
            Self::PhoneChange => "phone_change_token",
        }
    }
}

/// Records the live token of one kind for a user (one per kind and user, newest wins).
pub async fn store(
    conn: &mut PgConnection,
    user_id: Uuid,
    kind: OneTimeTokenKind,
    hash: &str,
    relates_to: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO one_time_tokens (id, user_id, token_type, token_hash, relates_to, created_at, updated_at) \
         VALUES ($1, $2, $3::text::one_time_token_type, $4, lower($5), now(), now()) \
         ON CONFLICT (user_id, token_type) DO UPDATE \
         SET token_hash = EXCLUDED.token_hash, relates_to = EXCLUDED.relates_to, updated_at = now()",
        Uuid::new_v4(),
        user_id,
        kind.as_sql(),
        hash,
        relates_to
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets every live token of a user (a confirmation, a password change, too many wrong guesses).
pub async fn delete_all(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM one_time_tokens WHERE user_id = $1", user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets a user's live token of one kind.
pub async fn delete_kind(conn: &mut PgConnection, user_id: Uuid, kind: OneTimeTokenKind) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM one_time_tokens WHERE user_id = $1 AND token_type = $2::text::one_time_token_type",
        user_id,
        kind.as_sql()
    )
    .execute(conn)
    .await?;
    Ok(())
}
