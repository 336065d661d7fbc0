//! The mfa service's tables (GoTrue's `models/factor.go` and `models/challenge.go`): every
//! statement that reads or writes `mfa_factors`, `mfa_challenges`, `webauthn_credentials` and
//! `suite_totp_accepted_steps`, as named operations on the caller's connection or pool. The
//! endpoint modules (`factors.rs`, `admin_factors.rs`) decide; this module only runs SQL.
//! (`failures.rs` keeps the wrong-code counter beside its rule.)

use auth_account::users::FactorRecord;
use auth_core::{ErrorCode, ServiceError};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// One of a user's factors, with what the factor routes decide on.
pub struct OwnedFactor {
    pub id: Uuid,
    pub factor_type: String,
    pub status: String,
    pub verified: bool,
    /// TOTP: base32
    pub secret: Option<String>,
    /// phone factors: E.164 digits
    pub phone: Option<String>,
}

/// The user's factor `id` (GoTrue's `FindOwnedFactorByID`).
pub async fn find_owned(db: &PgPool, user_id: Uuid, id: Uuid) -> sqlx::Result<Option<OwnedFactor>> {
    sqlx::query_as!(
        OwnedFactor,
        r#"SELECT id, factor_type::text AS "factor_type!", status::text AS "status!",
                  status::text = 'verified' AS "verified!", secret, phone
           FROM mfa_factors WHERE id = $1 AND user_id = $2"#,
        id,
        user_id
    )
    .fetch_optional(db)
    .await
}

/// The user's factor `id` as the admin API shows it.
pub async fn find_record(db: &PgPool, user_id: Uuid, id: Uuid) -> sqlx::Result<Option<FactorRecord>> {
    sqlx::query_as!(
        FactorRecord,
        r#"SELECT id, created_at, updated_at, status::text AS "status!", friendly_name,
                  factor_type::text AS "factor_type!", phone, last_challenged_at
           FROM mfa_factors WHERE id = $1 AND user_id = $2"#,
        id,
        user_id
    )
    .fetch_optional(db)
    .await
}

/// Each of the user's factors: its name and whether it is verified.
pub struct FactorSummary {
    pub friendly_name: Option<String>,
    pub verified: bool,
}

pub async fn summaries(db: &PgPool, user_id: Uuid) -> sqlx::Result<Vec<FactorSummary>> {
    sqlx::query_as!(
        FactorSummary,
        r#"SELECT friendly_name, status::text = 'verified' AS "verified!" FROM mfa_factors WHERE user_id = $1"#,
        user_id
    )
    .fetch_all(db)
    .await
}

/// GoTrue's `DeleteExpiredFactors`: every user's unverified factors without a challenge, older than
/// `expiry_seconds`.
pub async fn delete_expired_unverified(db: &PgPool, expiry_seconds: f64) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM mfa_factors f WHERE f.status <> 'verified' \
         AND NOT EXISTS (SELECT 1 FROM mfa_challenges c WHERE c.factor_id = f.id) \
         AND f.created_at + make_interval(secs => $1) < now()",
        expiry_seconds
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A new, unverified factor: TOTP with its `secret`, or phone with its `phone` number; 422
/// `mfa_factor_name_conflict` when the user already has the name.
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    user_id: Uuid,
    friendly_name: &str,
    factor_type: &str,
    secret: Option<&str>,
    phone: Option<&str>,
) -> Result<(), ServiceError> {
    sqlx::query!(
        "INSERT INTO mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, secret, phone) \
         VALUES ($1, $2, $3, $4::text::factor_type, 'unverified', now(), now(), $5, $6)",
        id,
        user_id,
        friendly_name,
        factor_type,
        secret,
        phone
    )
    .execute(conn)
    .await
    .map_err(|e| name_conflict(e, friendly_name))?;
    Ok(())
}

/// Whether the user has a verified phone factor on `phone`.
pub async fn has_verified_phone(db: &PgPool, user_id: Uuid, phone: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM mfa_factors WHERE user_id = $1 AND factor_type = 'phone'
                          AND phone = $2 AND status = 'verified') AS "exists!""#,
        user_id,
        phone
    )
    .fetch_one(db)
    .await
}

/// The user's unverified phone factors on `phone` (a new enrolment of the number replaces them).
pub async fn delete_unverified_phone(db: &PgPool, user_id: Uuid, phone: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM mfa_factors WHERE user_id = $1 AND factor_type = 'phone' AND phone = $2 \
         AND status = 'unverified'",
        user_id,
        phone
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Stamps the factor's `last_challenged_at`, unless it was challenged `min_interval_seconds` ago or
/// less: then the previous stamp comes back as the refusal. The row lock makes two replicas agree.
pub async fn claim_challenge_slot(
    conn: &mut PgConnection,
    factor_id: Uuid,
    min_interval_seconds: f64,
) -> sqlx::Result<Result<(), DateTime<Utc>>> {
    let stamped = sqlx::query_scalar!(
        "UPDATE mfa_factors SET last_challenged_at = now() WHERE id = $1 \
         AND (last_challenged_at IS NULL OR last_challenged_at + make_interval(secs => $2) < now()) \
         RETURNING id",
        factor_id,
        min_interval_seconds
    )
    .fetch_optional(&mut *conn)
    .await?;
    if stamped.is_some() {
        return Ok(Ok(()));
    }
    let previous = sqlx::query_scalar!(
        r#"SELECT COALESCE(last_challenged_at, now()) AS "at!" FROM mfa_factors WHERE id = $1"#,
        factor_id
    )
    .fetch_one(conn)
    .await?;
    Ok(Err(previous))
}

/// An admin renames a factor and/or moves a phone factor (`None` leaves it); 422
/// `mfa_factor_name_conflict` when the user already has the name.
pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    friendly_name: Option<&str>,
    phone: Option<&str>,
) -> Result<FactorRecord, ServiceError> {
    sqlx::query_as!(
        FactorRecord,
        r#"UPDATE mfa_factors SET friendly_name = COALESCE($2, friendly_name), phone = COALESCE($3, phone),
             updated_at = CASE WHEN $2::text IS NULL AND $3::text IS NULL THEN updated_at ELSE now() END
           WHERE id = $1
           RETURNING id, created_at, updated_at, status::text AS "status!", friendly_name,
             factor_type::text AS "factor_type!", phone, last_challenged_at"#,
        id,
        friendly_name,
        phone
    )
    .fetch_one(conn)
    .await
    .map_err(|e| name_conflict(e, friendly_name.unwrap_or_default()))
}

/// The factor is verified now; `true` when it was not before (its first verification).
pub async fn mark_verified(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
    let changed = sqlx::query!(
        "UPDATE mfa_factors SET status = 'verified', updated_at = now() WHERE id = $1 AND status <> 'verified'",
        id
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// GoTrue's `DeleteUnverifiedFactors`: the user's other unverified factors of `factor_type`.
pub async fn delete_other_unverified(
    conn: &mut PgConnection,
    user_id: Uuid,
    keep: Uuid,
    factor_type: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM mfa_factors WHERE user_id = $1 AND id <> $2 AND status = 'unverified' \
         AND factor_type = $3::text::factor_type",
        user_id,
        keep,
        factor_type
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes a factor; its challenges, accepted steps and wrong-code count go with it.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM mfa_factors WHERE id = $1", id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes every factor, WebAuthn credential and recovery code of a user; how many factors and
/// credentials.
pub async fn delete_all_of_user(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<(u64, u64)> {
    sqlx::query!("DELETE FROM suite_mfa_recovery_codes WHERE user_id = $1", user_id)
        .execute(&mut *conn)
        .await?;
    let credentials = sqlx::query!("DELETE FROM webauthn_credentials WHERE user_id = $1", user_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    let factors = sqlx::query!("DELETE FROM mfa_factors WHERE user_id = $1", user_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok((factors, credentials))
}

pub fn name_conflict_error(friendly_name: &str) -> ServiceError {
    ServiceError::unprocessable(
        ErrorCode::MfaFactorNameConflict,
        format!("A factor with the friendly name \"{friendly_name}\" for this user already exists"),
    )
}

/// A name the user already has loses on the unique index (also when two requests race).
fn name_conflict(error: sqlx::Error, friendly_name: &str) -> ServiceError {
    match error.as_database_error().and_then(|d| d.constraint()) {
        Some("mfa_factors_user_friendly_name_unique") => name_conflict_error(friendly_name),
        _ => error.into(),
    }
}

/// What a new challenge carries besides its factor and address.
#[derive(Default)]
pub struct ChallengeSecrets<'a> {
    /// phone factors: the hash of the code sent
    pub otp_code_hash: Option<&'a str>,
    /// WebAuthn factors: the ceremony's state
    pub webauthn_session_data: Option<&'a serde_json::Value>,
}

/// A new challenge of the factor from `ip`, stamping the factor's `last_challenged_at`; when it was
/// made.
pub async fn insert_challenge(
    conn: &mut PgConnection,
    id: Uuid,
    factor_id: Uuid,
    ip: &str,
    secrets: ChallengeSecrets<'_>,
) -> sqlx::Result<DateTime<Utc>> {
    sqlx::query_scalar!(
        "WITH stamped AS (UPDATE mfa_factors SET last_challenged_at = clock_timestamp() WHERE id = $2) \
         INSERT INTO mfa_challenges (id, factor_id, created_at, ip_address, otp_code, web_authn_session_data) \
         VALUES ($1, $2, now(), $3::text::inet, $4, $5) RETURNING created_at",
        id,
        factor_id,
        ip,
        secrets.otp_code_hash,
        secrets.webauthn_session_data
    )
    .fetch_one(conn)
    .await
}

/// A challenge of the factor, as verification checks it.
pub struct Challenge {
    pub created_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    /// the address that made it
    pub ip: String,
    /// phone factors: the hash of the code sent
    pub otp_code: Option<String>,
    /// WebAuthn factors: the ceremony's state
    pub web_authn_session_data: Option<serde_json::Value>,
}

pub async fn find_challenge(db: &PgPool, factor_id: Uuid, id: Uuid) -> sqlx::Result<Option<Challenge>> {
    sqlx::query_as!(
        Challenge,
        r#"SELECT created_at, verified_at, host(ip_address) AS "ip!", otp_code, web_authn_session_data
           FROM mfa_challenges
           WHERE id = $1 AND factor_id = $2"#,
        id,
        factor_id
    )
    .fetch_optional(db)
    .await
}

/// Marks the challenge used; `false` when it already was (a concurrent verification won).
pub async fn spend_challenge(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
    let spent = sqlx::query!(
        "UPDATE mfa_challenges SET verified_at = now() WHERE id = $1 AND verified_at IS NULL",
        id
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(spent > 0)
}

pub async fn delete_challenge(db: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM mfa_challenges WHERE id = $1", id)
        .execute(db)
        .await?;
    Ok(())
}

/// Records `step` as the factor's newest accepted TOTP step, unless it is not newer than the last
/// one (then `false`: the code was used already). One statement, so two replicas cannot both
/// accept a step.
pub async fn accept_totp_step(conn: &mut PgConnection, factor_id: Uuid, step: i64) -> sqlx::Result<bool> {
    let fresh = sqlx::query_scalar!(
        "INSERT INTO suite_totp_accepted_steps AS a (factor_id, step) VALUES ($1, $2) \
         ON CONFLICT (factor_id) DO UPDATE SET step = EXCLUDED.step, updated_at = now() \
         WHERE a.step < EXCLUDED.step RETURNING step",
        factor_id,
        step
    )
    .fetch_optional(conn)
    .await?;
    Ok(fresh.is_some())
}

/// Replaces a TOTP factor's stored secret with `sealed` if it still holds `stored` (GoTrue
/// re-encrypts a secret kept in the clear or under an old key once it verifies).
pub async fn reseal_factor_secret(
    conn: &mut PgConnection,
    factor_id: Uuid,
    sealed: &str,
    stored: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE mfa_factors SET secret = $2 WHERE id = $1 AND secret = $3",
        factor_id,
        sealed,
        stored
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the user's recovery codes with new ones (their hashes); when they were made.
pub async fn replace_recovery_codes(
    conn: &mut PgConnection,
    user_id: Uuid,
    code_hashes: &[String],
) -> sqlx::Result<DateTime<Utc>> {
    sqlx::query!("DELETE FROM suite_mfa_recovery_codes WHERE user_id = $1", user_id)
        .execute(&mut *conn)
        .await?;
    let ids: Vec<Uuid> = code_hashes.iter().map(|_| Uuid::new_v4()).collect();
    sqlx::query!(
        "INSERT INTO suite_mfa_recovery_codes (id, user_id, code_hash) \
         SELECT id, $2, code_hash FROM unnest($1::uuid[], $3::text[]) AS c(id, code_hash)",
        &ids,
        user_id,
        code_hashes
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar!(r#"SELECT now() AS "now!""#).fetch_one(conn).await
}

/// How many recovery codes the user has, how many are unused, and when they were made.
pub struct RecoveryCodeCount {
    pub total: i64,
    pub remaining: i64,
    pub created_at: Option<DateTime<Utc>>,
}

pub async fn count_recovery_codes(db: &PgPool, user_id: Uuid) -> sqlx::Result<RecoveryCodeCount> {
    sqlx::query_as!(
        RecoveryCodeCount,
        r#"SELECT count(*) AS "total!", count(*) FILTER (WHERE used_at IS NULL) AS "remaining!",
                  min(created_at) AS created_at
           FROM suite_mfa_recovery_codes WHERE user_id = $1"#,
        user_id
    )
    .fetch_one(db)
    .await
}

/// Spends the user's unused recovery code with this hash; `false` when there is none (wrong, or
/// used already). One statement, so a code works once across replicas.
pub async fn spend_recovery_code(conn: &mut PgConnection, user_id: Uuid, code_hash: &str) -> sqlx::Result<bool> {
    let spent = sqlx::query!(
        "UPDATE suite_mfa_recovery_codes SET used_at = now() \
         WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        user_id,
        code_hash
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(spent > 0)
}

/// The credentials of the user's verified WebAuthn factors, by factor.
pub async fn verified_webauthn_credentials(
    db: &PgPool,
    user_id: Uuid,
) -> sqlx::Result<Vec<(Uuid, Option<serde_json::Value>)>> {
    let rows = sqlx::query!(
        "SELECT id, web_authn_credential FROM mfa_factors \
         WHERE user_id = $1 AND factor_type = 'webauthn' AND status = 'verified' ORDER BY created_at",
        user_id
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|row| (row.id, row.web_authn_credential)).collect())
}

/// Stores a WebAuthn factor's credential (registered, or its counter moved on).
pub async fn save_webauthn_credential(
    conn: &mut PgConnection,
    factor_id: Uuid,
    credential: &serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE mfa_factors SET web_authn_credential = $2, updated_at = now() WHERE id = $1",
        factor_id,
        credential
    )
    .execute(conn)
    .await?;
    Ok(())
}
