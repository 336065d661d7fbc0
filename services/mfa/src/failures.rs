//! Wrong MFA codes, counted per factor across replicas (`suite_mfa_failures`). GoTrue only limits
//! verifications per IP address, so a factor's 6-digit code can be guessed from many addresses; here
//! `AUTH_MFA_MAX_FAILURES` wrong codes pause the factor's verifications for `AUTH_MFA_LOCKOUT`
//! (429), whichever addresses they came from. A verified code clears the count.

use std::time::Duration;

use auth_core::{ErrorCode, ServiceError};
use uuid::Uuid;

/// 429 while the factor is paused.
pub async fn ensure_not_paused(db: &sqlx::PgPool, factor_id: Uuid) -> Result<(), ServiceError> {
    let remaining = sqlx::query_scalar!(
        r#"SELECT ceil(extract(epoch FROM locked_until - now()))::bigint AS "seconds!" FROM suite_mfa_failures
           WHERE factor_id = $1 AND locked_until > now()"#,
        factor_id
    )
    .fetch_optional(db)
    .await?;
    match remaining {
        Some(seconds) => Err(ServiceError::new(
            429,
            ErrorCode::OverRequestRateLimit,
            format!("Too many wrong codes for this factor. Try again in {seconds} seconds."),
        )),
        None => Ok(()),
    }
}

/// Counts a wrong code; the `max_failures`th pauses the factor for `lockout` and starts the count
/// again. In its own statement, so it holds although the request fails.
pub async fn record(
    db: &sqlx::PgPool,
    factor_id: Uuid,
    max_failures: u32,
    lockout: Duration,
) -> Result<(), ServiceError> {
    if max_failures == 0 {
        return Ok(());
    }
    let max = i32::try_from(max_failures).unwrap_or(i32::MAX);
    let paused = sqlx::query_scalar!(
        r#"INSERT INTO suite_mfa_failures AS f (factor_id, failures, locked_until)
           VALUES ($1, CASE WHEN 1 >= $2 THEN 0 ELSE 1 END,
                   CASE WHEN 1 >= $2 THEN now() + make_interval(secs => $3) END)
           ON CONFLICT (factor_id) DO UPDATE SET
             failures = CASE WHEN f.failures + 1 >= $2 THEN 0 ELSE f.failures + 1 END,
             locked_until = CASE WHEN f.failures + 1 >= $2 THEN now() + make_interval(secs => $3) ELSE f.locked_until END,
             updated_at = now()
           RETURNING COALESCE(locked_until > now(), false) AS "paused!""#,
        factor_id,
        max,
        lockout.as_secs_f64()
    )
    .fetch_one(db)
    .await?;
    if paused {
        tracing::warn!(%factor_id, max_failures, "too many wrong MFA codes: the factor's verifications are paused");
    }
    Ok(())
}

/// Clears the count (a code verified).
pub async fn forget(conn: &mut sqlx::PgConnection, factor_id: Uuid) -> Result<(), ServiceError> {
    sqlx::query!("DELETE FROM suite_mfa_failures WHERE factor_id = $1", factor_id)
        .execute(conn)
        .await?;
    Ok(())
}
