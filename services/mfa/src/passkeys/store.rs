//! Every statement on `webauthn_credentials` (a user's passkeys) and `webauthn_challenges` (passkey
//! ceremonies between their two requests), in GoTrue's layout (`models/webauthn_credential.go`,
//! `models/webauthn_challenge.go`), so either server reads what the other wrote.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A stored passkey: what is shown of it and what checks its assertions.
#[derive(Debug, Clone)]
pub struct StoredPasskey {
    pub id: Uuid,
    pub credential_id: Vec<u8>,
    /// COSE_Key in CBOR, as go-webauthn stores it
    pub public_key: Vec<u8>,
    pub sign_count: i64,
    /// go-webauthn's transport names (`usb`, `internal`, `hybrid`, ...)
    pub transports: Json<Vec<String>>,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub friendly_name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A passkey to insert after a registration.
pub struct NewPasskey {
    pub user_id: Uuid,
    pub credential_id: Vec<u8>,
    pub public_key: Vec<u8>,
    pub attestation_type: String,
    pub aaguid: Option<Uuid>,
    pub sign_count: i64,
    pub transports: Vec<String>,
    pub backup_eligible: bool,
    pub backed_up: bool,
    pub friendly_name: String,
}

/// The user's passkeys, oldest first (GoTrue's `FindWebAuthnCredentialsByUserID`).
pub async fn list(db: &PgPool, user_id: Uuid) -> sqlx::Result<Vec<StoredPasskey>> {
    sqlx::query_as!(
        StoredPasskey,
        r#"SELECT id, credential_id, public_key, sign_count,
                  transports AS "transports: Json<Vec<String>>", backup_eligible, backed_up,
                  friendly_name, created_at, last_used_at
           FROM webauthn_credentials WHERE user_id = $1 ORDER BY created_at, id"#,
        user_id
    )
    .fetch_all(db)
    .await
}

/// The user's passkey `id`.
pub async fn find(db: &PgPool, user_id: Uuid, id: Uuid) -> sqlx::Result<Option<StoredPasskey>> {
    sqlx::query_as!(
        StoredPasskey,
        r#"SELECT id, credential_id, public_key, sign_count,
                  transports AS "transports: Json<Vec<String>>", backup_eligible, backed_up,
                  friendly_name, created_at, last_used_at
           FROM webauthn_credentials WHERE id = $1 AND user_id = $2"#,
        id,
        user_id
    )
    .fetch_optional(db)
    .await
}

/// The passkey with this credential id, if it belongs to this user: the pair a discoverable
/// assertion names (credential id and user handle).
pub async fn find_by_credential_id(
    db: &PgPool,
    user_id: Uuid,
    credential_id: &[u8],
) -> sqlx::Result<Option<StoredPasskey>> {
    sqlx::query_as!(
        StoredPasskey,
        r#"SELECT id, credential_id, public_key, sign_count,
                  transports AS "transports: Json<Vec<String>>", backup_eligible, backed_up,
                  friendly_name, created_at, last_used_at
           FROM webauthn_credentials WHERE credential_id = $1 AND user_id = $2"#,
        credential_id,
        user_id
    )
    .fetch_optional(db)
    .await
}

pub async fn count(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<i64> {
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM webauthn_credentials WHERE user_id = $1"#,
        user_id
    )
    .fetch_one(conn)
    .await?;
    Ok(count)
}

/// Serialises the passkey changes of one user until the transaction ends, so that two concurrent
/// registrations cannot both pass the per-user limit.
pub async fn lock_user_passkeys(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('webauthn_credentials:' || $1, 0))",
        user_id.to_string()
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts a new passkey; `Ok(None)` when its credential id is already registered (to anyone).
pub async fn insert(conn: &mut PgConnection, passkey: &NewPasskey) -> sqlx::Result<Option<StoredPasskey>> {
    let inserted = sqlx::query_as!(
        StoredPasskey,
        r#"INSERT INTO webauthn_credentials
             (user_id, credential_id, public_key, attestation_type, aaguid, sign_count, transports,
              backup_eligible, backed_up, friendly_name)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (credential_id) DO NOTHING
           RETURNING id, credential_id, public_key, sign_count,
                     transports AS "transports: Json<Vec<String>>", backup_eligible, backed_up,
                     friendly_name, created_at, last_used_at"#,
        passkey.user_id,
        passkey.credential_id,
        passkey.public_key,
        passkey.attestation_type,
        passkey.aaguid,
        passkey.sign_count,
        Json(&passkey.transports) as _,
        passkey.backup_eligible,
        passkey.backed_up,
        passkey.friendly_name,
    )
    .fetch_optional(conn)
    .await?;
    Ok(inserted)
}

/// Records a sign-in with the passkey: its new signature counter (only forward, so a replica
/// that checked an older assertion cannot move it back) and backup state.
pub async fn record_use(
    db: &PgPool,
    id: Uuid,
    sign_count: i64,
    backup_eligible: bool,
    backed_up: bool,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE webauthn_credentials
         SET sign_count = GREATEST(sign_count, $2), backup_eligible = $3, backed_up = $4,
             last_used_at = now(), updated_at = now()
         WHERE id = $1",
        id,
        sign_count,
        backup_eligible,
        backed_up
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn rename(conn: &mut PgConnection, id: Uuid, friendly_name: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE webauthn_credentials SET friendly_name = $2, updated_at = now() WHERE id = $1",
        id,
        friendly_name
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes the user's passkey `id`; false when there was none.
pub async fn delete(conn: &mut PgConnection, user_id: Uuid, id: Uuid) -> sqlx::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM webauthn_credentials WHERE id = $1 AND user_id = $2",
        id,
        user_id
    )
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected() == 1)
}

/// The kinds of `webauthn_challenges.challenge_type` the suite writes.
#[derive(Debug, Clone, Copy)]
pub enum ChallengeKind {
    Registration,
    Authentication,
}

impl ChallengeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::Registration => "registration",
            ChallengeKind::Authentication => "authentication",
        }
    }
}

/// Stores a started ceremony; its id.
pub async fn insert_challenge(
    db: &PgPool,
    user_id: Option<Uuid>,
    kind: ChallengeKind,
    session_data: &Value,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar!(
        "INSERT INTO webauthn_challenges (user_id, challenge_type, session_data, expires_at)
         VALUES ($1, $2, $3, $4) RETURNING id",
        user_id,
        kind.as_str(),
        session_data,
        expires_at
    )
    .fetch_one(db)
    .await
}

/// A ceremony taken out of the table.
pub struct ConsumedChallenge {
    pub session_data: Value,
    pub expires_at: DateTime<Utc>,
}

/// Takes the challenge `id` of this kind (and this user; `None` for the sign-in ceremonies, which
/// have none) out of the table in one statement, so it answers at most one request across replicas
/// (GoTrue's `ConsumeWebAuthnChallengeByID`).
pub async fn consume_challenge(
    db: &PgPool,
    id: Uuid,
    kind: ChallengeKind,
    user_id: Option<Uuid>,
) -> sqlx::Result<Option<ConsumedChallenge>> {
    sqlx::query_as!(
        ConsumedChallenge,
        "DELETE FROM webauthn_challenges
         WHERE id = $1 AND challenge_type = $2 AND user_id IS NOT DISTINCT FROM $3
         RETURNING session_data, expires_at",
        id,
        kind.as_str(),
        user_id
    )
    .fetch_optional(db)
    .await
}

/// Removes up to `batch` ceremonies that expired unanswered (GoTrue never removes them; anyone may
/// start a sign-in ceremony, so they would pile up); how many.
pub async fn delete_expired_challenges(db: &PgPool, batch: i64) -> sqlx::Result<u64> {
    let deleted = sqlx::query!(
        "DELETE FROM webauthn_challenges WHERE id IN (
           SELECT id FROM webauthn_challenges WHERE expires_at < now()
           ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)",
        batch
    )
    .execute(db)
    .await?;
    Ok(deleted.rows_affected())
}
