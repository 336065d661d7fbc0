//! Sessions: starting one, minting its access tokens, ending it.

use std::collections::HashMap;
use std::sync::Arc;

use auth_account::audit::{self, AuditAction};
use auth_account::jwt::{AccessTokenClaims, AmrEntry, JwtKeys};
use auth_account::users::UserRecord;
use auth_core::{Config, ErrorCode, ServiceError};
use auth_proto::common::v1 as pb;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::refresh_token;

/// Methods whose presence in a session's amr makes it AAL2 (GoTrue's `IsAAL2Claim`), plus the
/// suite's recovery codes (`mfa/recovery_code`, which GoTrue would read as AAL1: the safe side).
const AAL2_METHODS: &[&str] = &["totp", "mfa/phone", "mfa/webauthn", "mfa/recovery_code"];

/// What the token service works with.
#[derive(Clone)]
pub struct TokenState {
    pub config: Arc<Config>,
    pub db: PgPool,
    pub keys: Arc<JwtKeys>,
}

/// Client details recorded on the session.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Client {
    pub fn from_proto(context: Option<&pb::RequestContext>) -> Self {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        match context {
            None => Self::default(),
            Some(c) => Self {
                ip: non_empty(&c.ip).filter(|ip| ip.parse::<std::net::IpAddr>().is_ok()),
                user_agent: non_empty(&c.user_agent),
            },
        }
    }
}

/// Headers GoTrue sets on every token response.
pub type TokenHeaders = HashMap<String, String>;

/// The statement of [`TokenState::issue_session_on`]: the session, its first v1 token and its amr
/// claim inserted, and the user read back with the statement's `now()` (`claimed_at`).
macro_rules! issue_session_statement {
    ($user_columns:literal, $($arg:expr),*) => {
        sqlx::query!(
            r#"WITH new_session AS (
                 INSERT INTO sessions (id, user_id, created_at, updated_at, aal, user_agent, ip,
                                       refresh_token_hmac_key, refresh_token_counter)
                 VALUES ($1, $2, now(), now(), 'aal1', $3, $4::text::inet, $5, $6) RETURNING id),
               new_token AS (
                 INSERT INTO refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, session_id)
                 SELECT '00000000-0000-0000-0000-000000000000', $7::text, $2::text, false, now(), now(), id
                 FROM new_session WHERE $7::text IS NOT NULL),
               new_claim AS (
                 INSERT INTO mfa_amr_claims (id, session_id, created_at, updated_at, authentication_method)
                 SELECT $8, id, now(), now(), $9 FROM new_session)"#
                + $user_columns
                + r#", now() AS "claimed_at!" FROM users u WHERE u.id = $2"#,
            $($arg),*
        )
    };
}

/// One `mfa_amr_claims` row of a session: how the user authenticated, and when.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct AmrClaim {
    pub method: String,
    pub at: Option<DateTime<Utc>>,
}

impl TokenState {
    /// GoTrue's `IssueRefreshToken`: a new session (v1 token row or v2 HMAC key), an amr claim for
    /// the method, and a signed access token. One statement: the session, its first v1 token and
    /// its amr claim are inserted together and the user is read back in the same round trip.
    pub async fn issue_session(
        &self,
        user_id: Uuid,
        method: &str,
        client: &Client,
    ) -> Result<pb::SessionTokens, ServiceError> {
        self.issue_session_on(&self.db, user_id, method, client).await
    }

    /// [`Self::issue_session`] on a given connection, e.g. inside a transaction that must not
    /// wait for a second pooled connection.
    pub async fn issue_session_on<'e>(
        &self,
        db: impl sqlx::PgExecutor<'e>,
        user_id: Uuid,
        method: &str,
        client: &Client,
    ) -> Result<pb::SessionTokens, ServiceError> {
        let session_id = Uuid::new_v4();
        let v2 = self.config.security.refresh_token_algorithm_version == 2;
        let hmac_key = v2.then(refresh_token::new_hmac_key);
        let stored_key = hmac_key
            .as_deref()
            .map(|key| refresh_token::stored_hmac_key(&self.config.security.db_encryption, session_id, key))
            .transpose()?;
        let v1_token = (!v2).then(refresh_token::new_v1);

        let issued = auth_account::with_user_columns!(
            [issue_session_statement],
            session_id,
            user_id,
            (client.user_agent),
            (client.ip),
            stored_key,
            (v2.then_some(0i64)),
            v1_token,
            (Uuid::new_v4()),
            method
        )
        .fetch_one(db)
        .await
        .map_err(|error| {
            let unknown_user = error
                .as_database_error()
                .is_some_and(|e| e.kind() == sqlx::error::ErrorKind::ForeignKeyViolation);
            if unknown_user {
                ServiceError::not_found(ErrorCode::UserNotFound, "User not found")
            } else {
                ServiceError::internal(error)
            }
        })?;
        let claimed_at = issued.claimed_at;
        let user = auth_account::user_record_from_row!(issued);

        let mut headers = TokenHeaders::new();
        headers.insert("sb-auth-user-id".into(), user.id.to_string());
        headers.insert("sb-auth-session-id".into(), session_id.to_string());
        let refresh_token = match (&hmac_key, v1_token) {
            (Some(stored_key), _) => {
                let key = refresh_token::decode_hmac_key(stored_key).ok_or_else(|| {
                    ServiceError::internal(anyhow::anyhow!("a session's refresh-token key is not base64url"))
                })?;
                headers.insert("sb-auth-refresh-token-counter".into(), "0".into());
                refresh_token::encode_v2(&key, session_id, 0)
            }
            (None, token) => {
                let token = token.unwrap_or_default();
                headers.insert("sb-auth-refresh-token-prefix".into(), token[..5].to_string());
                token
            }
        };

        // A new session has exactly the claim just made, at the session's creation time.
        let claims = vec![AmrClaim {
            method: method.to_string(),
            at: Some(claimed_at),
        }];
        let (access_token, expires_at) = self.access_token(&user, session_id, Some(claimed_at), claims)?;
        Ok(token_response(access_token, expires_at, refresh_token, &user, headers))
    }

    /// Signs an access token for `user` in `session_id` with GoTrue's claims, from the session's
    /// start and its amr claims (callers already hold both, so signing needs no query).
    pub fn access_token(
        &self,
        user: &UserRecord,
        session_id: Uuid,
        created_at: Option<DateTime<Utc>>,
        rows: Vec<AmrClaim>,
    ) -> Result<(String, i64), ServiceError> {
        let aal = if rows.iter().any(|claim| AAL2_METHODS.contains(&claim.method.as_str())) {
            "aal2"
        } else {
            "aal1"
        };
        let sso_provider = match user.identities.0.as_slice() {
            [only] => only.provider.strip_prefix("sso:").map(str::to_string),
            _ => None,
        };
        // Newest first; claims made within one second keep their true order.
        let mut rows = rows;
        rows.sort_by_key(|claim| std::cmp::Reverse(claim.at));
        let amr: Vec<AmrEntry> = rows
            .into_iter()
            .map(|claim| AmrEntry {
                provider: (claim.method == "sso/saml").then(|| sso_provider.clone()).flatten(),
                method: claim.method,
                timestamp: claim.at.map_or(0, |t| t.timestamp()),
            })
            .collect();

        let now = Utc::now();
        let mut expires_at = now.timestamp() + i64::try_from(self.config.jwt.exp).unwrap_or(i64::MAX / 2);
        if let (Some(allow_low_aal), Some(created_at)) = (self.config.sessions.allow_low_aal, created_at)
            && aal < user.highest_possible_aal()
        {
            let cap = created_at + allow_low_aal;
            expires_at = expires_at.min(cap.timestamp());
        }

        let claims = AccessTokenClaims {
            iss: self.config.jwt.issuer.clone(),
            sub: user.id.to_string(),
            aud: user.aud().to_string(),
            exp: expires_at,
            iat: now.timestamp(),
            email: user.email().to_string(),
            phone: user.phone().to_string(),
            app_metadata: Value::Object(user.app_metadata()),
            user_metadata: Value::Object(user.user_metadata()),
            role: user.role().to_string(),
            aal: aal.to_string(),
            amr,
            session_id: session_id.to_string(),
            is_anonymous: user.is_anonymous,
        };
        let token = self.keys.sign(&claims).map_err(ServiceError::internal)?;
        Ok((token, expires_at))
    }

    /// POST /logout: `global` ends every session of the user, `local` the caller's, `others` all but
    /// the caller's. Deleting a session cascades to its refresh tokens and amr claims.
    pub async fn logout(&self, user: &UserRecord, session_id: Option<Uuid>, scope: &str) -> Result<(), ServiceError> {
        let mut tx = self.db.begin().await?;
        match (scope, session_id) {
            ("local", Some(session)) => {
                sqlx::query!("DELETE FROM sessions WHERE id = $1", session)
                    .execute(&mut *tx)
                    .await?;
            }
            ("local", None) => {}
            ("others", Some(session)) => {
                sqlx::query!("DELETE FROM sessions WHERE user_id = $1 AND id <> $2", user.id, session)
                    .execute(&mut *tx)
                    .await?;
            }
            _ => {
                sqlx::query!("DELETE FROM sessions WHERE user_id = $1", user.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        audit::record(&mut *tx, user, AuditAction::Logout, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends every session of `user_id` except `keep` (e.g. after a password change).
    pub async fn revoke_sessions(&self, user_id: Uuid, keep: Option<Uuid>) -> Result<u64, ServiceError> {
        let done = sqlx::query!(
            "DELETE FROM sessions WHERE user_id = $1 AND ($2::uuid IS NULL OR id <> $2)",
            user_id,
            keep
        )
        .execute(&self.db)
        .await?;
        Ok(done.rows_affected())
    }

    /// GoTrue's `DowngradeSessionsToAAL1`: the sessions of `user_id` stepped up with `factor_id` lose
    /// the factor's amr claim and fall back to AAL1, in one statement.
    pub async fn downgrade_factor_sessions(
        &self,
        user_id: Uuid,
        factor_id: Uuid,
        method: &str,
    ) -> Result<u64, ServiceError> {
        let done = sqlx::query_scalar!(
            "WITH downgraded AS ( \
               UPDATE sessions SET aal = 'aal1', factor_id = NULL, updated_at = now() \
               WHERE user_id = $1 AND factor_id = $2 RETURNING id), \
             dropped AS ( \
               DELETE FROM mfa_amr_claims WHERE authentication_method = $3 \
               AND session_id IN (SELECT id FROM downgraded)) \
             SELECT count(*) FROM downgraded",
            user_id,
            factor_id,
            method
        )
        .fetch_one(&self.db)
        .await?;
        Ok(u64::try_from(done.unwrap_or(0)).unwrap_or(0))
    }
}

pub fn token_response(
    access_token: String,
    expires_at: i64,
    refresh_token: String,
    user: &UserRecord,
    headers: TokenHeaders,
) -> pb::SessionTokens {
    pb::SessionTokens {
        access_token,
        token_type: "bearer".into(),
        expires_in: (expires_at - Utc::now().timestamp()).max(0),
        expires_at,
        refresh_token,
        user: Some(user.to_proto()),
        headers,
        weak_password: None,
        provider_token: String::new(),
        provider_refresh_token: String::new(),
    }
}
