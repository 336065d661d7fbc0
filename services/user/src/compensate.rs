//! Undoing what a request committed when the session that completes it cannot be issued.
//!
//! A session is the token service's row and needs the user's row committed first (its foreign key),
//! so sign-up cannot make both in one transaction as GoTrue does. When the token service fails after
//! the user service committed, the request answers the failure (503 when the service is
//! unreachable) and these undo the local work, so the client can simply try again: no user without
//! a session, no `login` entry for a sign-in that did not happen.

use sqlx::PgPool;
use uuid::Uuid;

/// Removes a user created by this request (identities and one-time tokens go with it) and the
/// audit entries written about it.
pub async fn remove_new_user(db: &PgPool, user_id: Uuid) {
    let result = async {
        let mut tx = db.begin().await?;
        sqlx::query!(
            "DELETE FROM audit_log_entries WHERE payload->>'actor_id' = $1",
            user_id.to_string()
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!("DELETE FROM users WHERE id = $1", user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => tracing::warn!(%user_id, "no session could be issued: the new user was removed again"),
        Err(error) => {
            tracing::error!(%user_id, %error, "no session could be issued and the new user could not be removed")
        }
    }
}
