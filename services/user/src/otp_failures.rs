//! Wrong one-time codes, counted per user across replicas (`suite_otp_failures`): past
//! `AUTH_OTP_MAX_FAILURES`, every code pending for the user dies (GoTrue lets a code be guessed until
//! it expires). The count is tied to the codes pending when it was taken, so a new code starts afresh.

use sqlx::PgConnection;
use uuid::Uuid;

/// Counts a wrong code for `user_id` (on the verify request's transaction, which then commits even
/// though the request fails); returns whether this failure killed the user's pending codes.
pub async fn record(conn: &mut PgConnection, user_id: Uuid, max_failures: u32) -> sqlx::Result<bool> {
    if max_failures == 0 {
        return Ok(false);
    }
    // The fingerprint: the user's pending codes as one value that changes whenever any of them does.
    let failures: Option<i32> = sqlx::query_scalar!(
        "INSERT INTO suite_otp_failures AS f (user_id, codes_fingerprint, failures) \
         SELECT id, md5(concat_ws('|', confirmation_token, recovery_token, email_change_token_current, \
                email_change_token_new, phone_change_token, reauthentication_token)), 1 \
         FROM users WHERE id = $1 \
         ON CONFLICT (user_id) DO UPDATE \
           SET failures = CASE WHEN f.codes_fingerprint = EXCLUDED.codes_fingerprint THEN f.failures + 1 ELSE 1 END, \
               codes_fingerprint = EXCLUDED.codes_fingerprint, updated_at = now() \
         RETURNING failures",
        user_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    if failures.is_none_or(|n| n < i32::try_from(max_failures).unwrap_or(i32::MAX)) {
        return Ok(false);
    }
    // Too many wrong guesses: nothing pending for this user can be used any more.
    crate::store::users::clear_pending_codes(conn, user_id).await?;
    crate::store::one_time_tokens::delete_all(conn, user_id).await?;
    forget(conn, user_id).await?;
    tracing::warn!(%user_id, max_failures, "too many wrong one-time codes: the user's pending codes were revoked");
    Ok(true)
}

/// Clears the count (a code verified, or the codes were revoked).
pub async fn forget(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM suite_otp_failures WHERE user_id = $1", user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
