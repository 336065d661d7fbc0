//! `identities`: how a user signs in (GoTrue's `models/identity.go`). Accounts made here have an
//! `email` and/or a `phone` identity whose `provider_id` is the user's id.

use serde_json::{Map, Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

/// The identity providers of accounts made by this service.
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

/// Adds an identity with `data` as its `identity_data`.
pub async fn insert(conn: &mut PgConnection, user_id: Uuid, provider: &str, data: Value) -> sqlx::Result<()> {
    sqlx::query!("INSERT INTO identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, clock_timestamp(), clock_timestamp(), clock_timestamp())", user_id.to_string(), user_id, sqlx::types::Json(data) as _, provider)
    .execute(conn)
    .await?;
    Ok(())
}

/// The email or phone identity of a sign-up, created unless the user has it already:
/// `{sub, email?, email_verified: false, phone_verified: false}` plus the sign-up's metadata.
pub async fn insert_for_sign_up(
    conn: &mut PgConnection,
    user_id: Uuid,
    provider: Provider,
    address: &str,
    data: &Map<String, Value>,
) -> sqlx::Result<()> {
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
    sqlx::query!("INSERT INTO identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, now(), now(), now()) \
         ON CONFLICT ON CONSTRAINT identities_provider_id_provider_unique DO NOTHING", user_id.to_string(), user_id, sqlx::types::Json(Value::Object(identity_data)) as _, provider.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Creates the email/phone identity of a confirmed address, or merges `data` into it (GoTrue's
/// `UpdateIdentityData`).
pub async fn upsert_merging(conn: &mut PgConnection, user_id: Uuid, provider: &str, data: Value) -> sqlx::Result<()> {
    sqlx::query!("INSERT INTO identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, now(), now(), now()) \
         ON CONFLICT ON CONSTRAINT identities_provider_id_provider_unique \
         DO UPDATE SET identity_data = identities.identity_data || EXCLUDED.identity_data, updated_at = now()", user_id.to_string(), user_id, sqlx::types::Json(data) as _, provider)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces one identity's `identity_data`.
pub async fn set_data(conn: &mut PgConnection, identity_id: Uuid, data: Value) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE identities SET identity_data = $2, updated_at = now() WHERE id = $1",
        identity_id,
        sqlx::types::Json(data) as _
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The identity of the user's own email address now carries `email_verified: true`.
pub async fn mark_email_verified(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE identities i SET identity_data = i.identity_data || '{\"email_verified\": true}'::jsonb, \
         updated_at = now() FROM users u \
         WHERE i.user_id = $1 AND u.id = $1 AND coalesce(i.email, '') <> '' AND i.email = u.email",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// GoTrue's `SoftDeleteUserIdentities` for one identity: no data, and a `provider_id` nobody can
/// sign in with again.
pub async fn anonymize(conn: &mut PgConnection, identity_id: Uuid, obfuscated_provider_id: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE identities SET identity_data = '{}'::jsonb, provider_id = $2, updated_at = now() WHERE id = $1",
        identity_id,
        obfuscated_provider_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An identity a provider vouches for, found by the provider's id of the user.
pub struct FoundIdentity {
    pub id: Uuid,
    pub user_id: Uuid,
}

/// GoTrue's `FindIdentityByIdAndProvider`.
pub async fn find_by_provider_id(
    conn: &mut PgConnection,
    provider_id: &str,
    provider: &str,
) -> sqlx::Result<Option<FoundIdentity>> {
    sqlx::query_as!(
        FoundIdentity,
        "SELECT id, user_id FROM identities WHERE provider_id = $1 AND provider = $2",
        provider_id,
        provider
    )
    .fetch_optional(conn)
    .await
}

/// The `(provider, user_id)` of every identity whose email is one of `emails` (lower-case).
pub async fn providers_with_emails(conn: &mut PgConnection, emails: &[String]) -> sqlx::Result<Vec<(String, Uuid)>> {
    let rows = sqlx::query!("SELECT provider, user_id FROM identities WHERE email = ANY($1)", emails)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|row| (row.provider, row.user_id)).collect())
}

/// Adds an external identity (`provider_id` is the provider's id of the user); returns its id.
pub async fn insert_external(
    conn: &mut PgConnection,
    user_id: Uuid,
    provider: &str,
    provider_id: &str,
    data: &Map<String, Value>,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar!(
        "INSERT INTO identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, now(), now(), now()) RETURNING id",
        provider_id,
        user_id,
        sqlx::types::Json(Value::Object(data.clone())) as _,
        provider
    )
    .fetch_one(conn)
    .await
}

/// A returning identity: the provider's latest data, signed in now.
pub async fn refresh_external(
    conn: &mut PgConnection,
    identity_id: Uuid,
    data: &Map<String, Value>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE identities SET identity_data = $2, last_sign_in_at = now(), updated_at = now() WHERE id = $1",
        identity_id,
        sqlx::types::Json(Value::Object(data.clone())) as _
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// GoTrue's `RemoveUnconfirmedIdentities` (the identity part): an unconfirmed account keeps only
/// the identity that just proved itself.
pub async fn delete_all_but(conn: &mut PgConnection, user_id: Uuid, keep: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM identities WHERE user_id = $1 AND id <> $2", user_id, keep)
        .execute(conn)
        .await?;
    Ok(())
}

/// An identity's address as GoTrue ranks it when one must become the account's email.
pub struct IdentityEmail {
    pub email: String,
    pub verified: bool,
}

/// The user's identities' emails in GoTrue's order of promotion (`UpdateUserEmailFromIdentities`):
/// emails the provider verified, then unverified ones, then identities without one; oldest first.
pub async fn emails_by_promotion_rank(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<Vec<IdentityEmail>> {
    sqlx::query_as!(
        IdentityEmail,
        r#"SELECT coalesce(email, '') AS "email!", (identity_data -> 'email_verified') = 'true'::jsonb AS "verified!"
           FROM identities WHERE user_id = $1
           ORDER BY CASE WHEN coalesce(email, '') = '' THEN 2
                         WHEN (identity_data -> 'email_verified') = 'true'::jsonb THEN 0 ELSE 1 END,
                    created_at, id::text"#,
        user_id
    )
    .fetch_all(conn)
    .await
}

/// Removes one identity of the user; whether it was there.
pub async fn delete(conn: &mut PgConnection, user_id: Uuid, identity_id: Uuid) -> sqlx::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM identities WHERE id = $1 AND user_id = $2",
        identity_id,
        user_id
    )
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected() == 1)
}
