//! A verified MFA factor steps a session up to AAL2 (GoTrue's `updateMFASessionAndClaims`, called
//! from its `/factors/{id}/verify`). The mfa service has committed the verification; this is the
//! sessions' half, in one transaction:
//!
//! - the session gains the factor's amr claim (or refreshes its time) and becomes `aal2`, tied to
//!   the factor (so removing the factor downgrades it again); a recovery code names no factor;
//! - it gets a new refresh token: v2 sessions skip their counter by two, so the AAL1 token the
//!   client held can no longer refresh; v1 sessions rotate their newest token (audited
//!   `token_revoked`, as GoTrue's `GrantRefreshTokenSwap`);
//! - the user's other sessions below AAL2 end, as GoTrue's `InvalidateSessionsWithAALLessThan`.

use auth_account::audit::{self, AuditAction};
use auth_account::users;
use auth_core::{ErrorCode, ServiceError};
use auth_proto::common::v1 as pb;
use uuid::Uuid;

use crate::refresh_token;
use crate::session::{AmrClaim, TokenHeaders, TokenState, token_response};

impl TokenState {
    pub async fn step_up_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        factor_id: Option<Uuid>,
        method: &str,
    ) -> Result<pb::SessionTokens, ServiceError> {
        let mut tx = self.db.begin().await?;
        let session = sqlx::query!(
            "SELECT created_at, refresh_token_hmac_key, refresh_token_counter FROM sessions \
             WHERE id = $1 AND user_id = $2 FOR UPDATE",
            session_id,
            user_id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ServiceError::forbidden(ErrorCode::SessionNotFound, "Session not found"))?;

        sqlx::query!(
            "INSERT INTO mfa_amr_claims (id, session_id, created_at, updated_at, authentication_method) \
             VALUES ($1, $2, now(), now(), $3) \
             ON CONFLICT ON CONSTRAINT mfa_amr_claims_session_id_authentication_method_pkey \
             DO UPDATE SET updated_at = now()",
            Uuid::new_v4(),
            session_id,
            method
        )
        .execute(&mut *tx)
        .await?;

        let user = users::find_by_id(&mut *tx, user_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(ErrorCode::UserNotFound, "User not found"))?;
        let mut headers = TokenHeaders::new();
        headers.insert("sb-auth-user-id".into(), user_id.to_string());
        headers.insert("sb-auth-session-id".into(), session_id.to_string());
        let refresh_token = match (&session.refresh_token_hmac_key, session.refresh_token_counter) {
            (Some(stored_key), Some(counter)) => {
                let key = refresh_token::session_hmac_key(&self.config.security.db_encryption, session_id, stored_key)
                    .ok_or_else(|| {
                        ServiceError::internal(anyhow::anyhow!("a session's refresh-token key is not base64url"))
                    })?;
                let counter = counter + 2;
                sqlx::query!(
                    "UPDATE sessions SET refresh_token_counter = $2 WHERE id = $1",
                    session_id,
                    counter
                )
                .execute(&mut *tx)
                .await?;
                headers.insert("sb-auth-refresh-token-counter".into(), counter.to_string());
                refresh_token::encode_v2(&key, session_id, u64::try_from(counter).unwrap_or_default())
            }
            _ => {
                let token = self.rotate_newest_v1_token(&mut tx, user_id, session_id).await?;
                audit::record(&mut *tx, &user, AuditAction::TokenRevoked, None).await?;
                headers.insert("sb-auth-refresh-token-prefix".into(), token[..5].to_string());
                token
            }
        };

        sqlx::query!(
            "UPDATE sessions SET aal = 'aal2', factor_id = COALESCE($2, factor_id), updated_at = now() WHERE id = $1",
            session_id,
            factor_id
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "DELETE FROM sessions WHERE user_id = $1 AND id <> $2 AND aal < 'aal2'",
            user_id,
            session_id
        )
        .execute(&mut *tx)
        .await?;
        let claims = sqlx::query_as!(
            AmrClaim,
            r#"SELECT authentication_method AS method, updated_at AS "at?" FROM mfa_amr_claims WHERE session_id = $1"#,
            session_id
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;

        let (access_token, expires_at) = self.access_token(&user, session_id, session.created_at, claims)?;
        Ok(token_response(access_token, expires_at, refresh_token, &user, headers))
    }

    /// GoTrue's `GrantRefreshTokenSwap` for a v1 session: its newest live token is revoked and a
    /// child of it is the session's token now.
    async fn rotate_newest_v1_token(
        &self,
        conn: &mut sqlx::PgConnection,
        user_id: Uuid,
        session_id: Uuid,
    ) -> Result<String, ServiceError> {
        let child = refresh_token::new_v1();
        let parent = sqlx::query_scalar!(
            "UPDATE refresh_tokens SET revoked = true, updated_at = now() \
             WHERE id = (SELECT id FROM refresh_tokens WHERE session_id = $1 AND revoked = false \
                         ORDER BY id DESC LIMIT 1) \
             RETURNING token",
            session_id
        )
        .fetch_optional(&mut *conn)
        .await?
        .flatten();
        sqlx::query!(
            "INSERT INTO refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id) \
             VALUES ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), $3, $4)",
            child,
            user_id.to_string(),
            parent,
            session_id
        )
        .execute(&mut *conn)
        .await?;
        Ok(child)
    }
}
