//! `oauth_client_states`: the PKCE verifier of a flow with a provider that requires PKCE from its
//! clients (X), kept from `/authorize` to the callback (GoTrue's `OAuthClientState`), five minutes
//! at most, used once.

use auth_core::{ErrorCode, ServiceError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// GoTrue's `OAuthClientStateTimeout`.
const LIFETIME: chrono::Duration = chrono::Duration::minutes(5);

pub async fn store(db: &sqlx::PgPool, provider_type: &str, code_verifier: &str) -> Result<Uuid, ServiceError> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO oauth_client_states (id, provider_type, code_verifier, created_at) VALUES ($1, $2, $3, now())",
        id,
        provider_type,
        code_verifier
    )
    .execute(db)
    .await?;
    // States of abandoned flows are left behind: clear a few expired ones each time.
    sqlx::query!(
        "DELETE FROM oauth_client_states WHERE id IN \
           (SELECT id FROM oauth_client_states WHERE created_at < now() - interval '1 hour' LIMIT 100 FOR UPDATE SKIP LOCKED)"
    )
    .execute(db)
    .await?;
    Ok(id)
}

/// The verifier of the flow's state, which is spent by reading it.
pub async fn take(db: &sqlx::PgPool, id: &str, provider_type: &str) -> Result<String, ServiceError> {
    let not_found = || ServiceError::unprocessable(ErrorCode::OauthClientStateNotFound, "OAuth state not found");
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    struct Row {
        provider_type: String,
        code_verifier: Option<String>,
        created_at: DateTime<Utc>,
    }
    let row = sqlx::query_as!(
        Row,
        "DELETE FROM oauth_client_states WHERE id = $1 RETURNING provider_type, code_verifier, created_at",
        id
    )
    .fetch_optional(db)
    .await?
    .ok_or_else(not_found)?;
    if row.provider_type != provider_type {
        return Err(ServiceError::bad_request(
            ErrorCode::OauthInvalidState,
            "OAuth provider mismatch",
        ));
    }
    if Utc::now() - row.created_at > LIFETIME {
        return Err(ServiceError::unprocessable(
            ErrorCode::OauthClientStateExpired,
            "OAuth state expired",
        ));
    }
    Ok(row.code_verifier.unwrap_or_default())
}
