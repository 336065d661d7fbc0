//! `POST /token?grant_type=refresh_token`: GoTrue's rotation, reuse detection and session checks.
//!
//! Every refresh of one session is serialised on the session row (`SELECT ... FOR UPDATE`), so two
//! requests with the same token cannot both rotate it: the second waits, then sees the token already
//! rotated and gets the same answer a client that lost the response would get. A request that
//! waits longer than the pool's `lock_timeout` (5 s, see `auth_core::db`) gets 409 `conflict`, as GoTrue answers after its retry loop.

use std::sync::LazyLock;

use auth_account::audit::{self, AuditAction};
use auth_account::session_validity::{SessionTimes, Validity};
use auth_account::users::{self, UserRecord};
use auth_core::{ErrorCode, ServiceError};
use auth_proto::common::v1 as pb;
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::refresh_token::{self, PresentedToken, SignedToken};
use crate::session::{AmrClaim, Client, TokenHeaders, TokenState, token_response};

const LOCK_NOT_AVAILABLE: &str = "55P03";

fn bad_request(code: ErrorCode, message: &str) -> ServiceError {
    ServiceError::bad_request(code, message)
}

fn not_found() -> ServiceError {
    bad_request(
        ErrorCode::RefreshTokenNotFound,
        "Invalid Refresh Token: Refresh Token Not Found",
    )
}

/// The session columns a refresh reads, aliased (`s_*`) so they can share a row with the user's.
const SESSION_COLUMNS: &str = "s.id AS s_id, s.created_at AS s_created_at, \
     s.refreshed_at AS s_refreshed_at, s.aal::text AS s_aal, s.not_after AS s_not_after, s.tag AS s_tag, \
     s.refresh_token_hmac_key AS s_refresh_token_hmac_key, s.refresh_token_counter AS s_refresh_token_counter";

#[derive(Debug, sqlx::FromRow)]
struct LockedSession {
    #[sqlx(rename = "s_id")]
    id: Uuid,
    #[sqlx(rename = "s_created_at")]
    created_at: Option<DateTime<Utc>>,
    #[sqlx(rename = "s_refreshed_at")]
    refreshed_at: Option<NaiveDateTime>,
    #[sqlx(rename = "s_aal")]
    aal: Option<String>,
    #[sqlx(rename = "s_not_after")]
    not_after: Option<DateTime<Utc>>,
    #[sqlx(rename = "s_tag")]
    tag: Option<String>,
    #[sqlx(rename = "s_refresh_token_hmac_key")]
    refresh_token_hmac_key: Option<String>,
    #[sqlx(rename = "s_refresh_token_counter")]
    refresh_token_counter: Option<i64>,
}

/// Everything a refresh needs, read in the statement that locks the session: the session, its
/// user (with identities and factors) and its amr claims.
#[derive(sqlx::FromRow)]
struct LockedRow {
    #[sqlx(flatten)]
    session: LockedSession,
    #[sqlx(flatten)]
    user: UserRecord,
    amr: Json<Vec<AmrClaim>>,
}

/// `SELECT <session> <user> <amr> FROM sessions s JOIN users u ... WHERE <by> FOR UPDATE OF s`.
fn lock_query(by: &str) -> String {
    format!(
        "{user}, {SESSION_COLUMNS}, \
         COALESCE((SELECT json_agg(json_build_object('method', c.authentication_method, 'at', c.updated_at)) \
                   FROM mfa_amr_claims c WHERE c.session_id = s.id), '[]'::json) AS amr \
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE {by} FOR UPDATE OF s",
        user = users::SELECT_USER_COLUMNS,
    )
}

/// Locks the session a v1 token belongs to (found through the token row).
static LOCK_BY_V1_TOKEN: LazyLock<String> =
    LazyLock::new(|| lock_query("s.id = (SELECT session_id FROM refresh_tokens WHERE token = $1)"));
/// Locks the session a v2 token names.
static LOCK_BY_SESSION_ID: LazyLock<String> = LazyLock::new(|| lock_query("s.id = $1"));

impl LockedSession {
    fn times(&self) -> SessionTimes<'_> {
        SessionTimes {
            created_at: self.created_at,
            refreshed_at: self.refreshed_at,
            not_after: self.not_after,
            aal: self.aal.as_deref(),
        }
    }

    fn last_refreshed_at(&self, token_time: Option<DateTime<Utc>>) -> DateTime<Utc> {
        self.times().last_refreshed_at(token_time)
    }
}

#[derive(Debug, sqlx::FromRow)]
struct V1Row {
    token: String,
    revoked: Option<bool>,
    updated_at: Option<DateTime<Utc>>,
    session_id: Option<Uuid>,
}

impl TokenState {
    pub async fn refresh(&self, presented: &str, client: &Client) -> Result<pb::SessionTokens, ServiceError> {
        let token = refresh_token::parse(presented)
            .ok_or_else(|| bad_request(ErrorCode::ValidationFailed, "Refresh token is not valid"))?;
        // The pool's connections carry `lock_timeout` (auth_core::db), so a refresh stuck behind
        // another on the same session fails with 55P03 instead of waiting forever.
        let mut tx = self.db.begin().await?;
        let result = self.refresh_locked(&mut tx, &token, client).await;
        match result {
            Ok(response) => {
                tx.commit().await?;
                Ok(response)
            }
            // GoTrue commits the family revocation before reporting reuse.
            Err(Refusal::CommitThen(error)) => {
                tx.commit().await?;
                Err(error)
            }
            Err(Refusal::Rollback(error)) => Err(error),
        }
    }

    /// Locks the token's session and reads its user and amr claims in the same statement; for v1
    /// tokens also (re-)reads the token row under the lock, since a concurrent refresh may just
    /// have rotated it.
    async fn lock_session(
        &self,
        conn: &mut PgConnection,
        token: &PresentedToken,
    ) -> Result<(LockedRow, Option<V1Row>), Refusal> {
        match token {
            PresentedToken::V2(signed) => {
                let locked: LockedRow = sqlx::query_as(sqlx::AssertSqlSafe(LOCK_BY_SESSION_ID.as_str()))
                    .bind(signed.session_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(lock_or_internal)?
                    .ok_or_else(not_found)?;
                let key = locked
                    .session
                    .refresh_token_hmac_key
                    .as_deref()
                    .and_then(refresh_token::decode_hmac_key)
                    .ok_or_else(not_found)?;
                if !signed.signed_by(&key) {
                    return Err(not_found().into());
                }
                Ok((locked, None))
            }
            PresentedToken::V1(text) => {
                let locked: Option<LockedRow> = sqlx::query_as(sqlx::AssertSqlSafe(LOCK_BY_V1_TOKEN.as_str()))
                    .bind(text)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(lock_or_internal)?;
                let row: Option<V1Row> = sqlx::query_as(
                    "SELECT token, revoked, updated_at, session_id FROM refresh_tokens WHERE token = $1",
                )
                .bind(text)
                .fetch_optional(&mut *conn)
                .await
                .map_err(internal)?;
                match (locked, row) {
                    (Some(locked), Some(row)) => Ok((locked, Some(row))),
                    // A token of GoTrue's older releases that never belonged to a session.
                    (None, Some(row)) if row.session_id.is_none() => {
                        sqlx::query("DELETE FROM refresh_tokens WHERE token = $1")
                            .bind(text)
                            .execute(&mut *conn)
                            .await
                            .map_err(internal)?;
                        Err(Refusal::CommitThen(bad_request(
                            ErrorCode::SessionNotFound,
                            "Invalid Refresh Token: No Valid Session Found",
                        )))
                    }
                    _ => Err(not_found().into()),
                }
            }
        }
    }

    async fn refresh_locked(
        &self,
        conn: &mut PgConnection,
        token: &PresentedToken,
        client: &Client,
    ) -> Result<pb::SessionTokens, Refusal> {
        let mut headers = TokenHeaders::new();
        let (LockedRow { session, user, amr }, v1_row) = self.lock_session(conn, token).await?;

        headers.insert("sb-auth-user-id".into(), user.id.to_string());
        let now = Utc::now();
        if user.is_banned(now) {
            return Err(bad_request(ErrorCode::UserBanned, "Invalid Refresh Token: User Banned").into());
        }
        headers.insert("sb-auth-session-id".into(), session.id.to_string());

        let token_time = v1_row.as_ref().and_then(|r| r.updated_at);
        match self.validity(&session, &user, now, token_time) {
            Validity::Valid => {}
            Validity::Expired => {
                return Err(bad_request(ErrorCode::SessionExpired, "Invalid Refresh Token: Session Expired").into());
            }
            Validity::TimedOut => {
                return Err(bad_request(
                    ErrorCode::SessionExpired,
                    "Invalid Refresh Token: Session Expired (Inactivity)",
                )
                .into());
            }
            Validity::LowAal => {
                return Err(bad_request(
                    ErrorCode::SessionExpired,
                    "Invalid Refresh Token: Session Expired (Low AAL: User Needs MFA Verification)",
                )
                .into());
            }
        }
        if self.config.sessions.single_per_user {
            self.check_newest_session(conn, &session, &user, now, token_time)
                .await?;
        }

        let (issued, counter, writes) = match (token, v1_row) {
            (PresentedToken::V1(_), Some(row)) => {
                let (issued, writes) = self.rotate_v1(conn, user.id, &session, &row, now, &mut headers).await?;
                (issued, None, writes)
            }
            (PresentedToken::V2(signed), _) => {
                let (issued, counter) = self.rotate_v2(conn, &session, signed, now, &mut headers).await?;
                (issued, Some(counter), RefreshWrites::refreshed_only())
            }
            (PresentedToken::V1(_), None) => return Err(not_found().into()),
        };

        let (access_token, expires_at) = self
            .access_token(&user, session.id, session.created_at, amr.0)
            .map_err(Refusal::Rollback)?;
        finish_refresh(conn, &user, session.id, client, counter, writes)
            .await
            .map_err(internal)?;
        Ok(token_response(access_token, expires_at, issued, &user, headers))
    }

    fn validity(
        &self,
        session: &LockedSession,
        user: &UserRecord,
        now: DateTime<Utc>,
        token_time: Option<DateTime<Utc>>,
    ) -> Validity {
        session
            .times()
            .validity(&self.config.sessions, now, user.highest_possible_aal(), token_time)
    }

    /// `GOTRUE_SESSIONS_SINGLE_PER_USER`: only the most recently refreshed valid session (per tag) lives.
    async fn check_newest_session(
        &self,
        conn: &mut PgConnection,
        session: &LockedSession,
        user: &UserRecord,
        now: DateTime<Utc>,
        token_time: Option<DateTime<Utc>>,
    ) -> Result<(), Refusal> {
        let others: Vec<LockedSession> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.user_id = $1 AND s.id <> $2"
        )))
        .bind(user.id)
        .bind(session.id)
        .fetch_all(&mut *conn)
        .await
        .map_err(internal)?;
        let tags = &self.config.sessions.tags;
        let tag_of = |s: &LockedSession| -> String {
            match (tags.first(), s.tag.as_deref()) {
                (None, _) => String::new(),
                (Some(_), Some(tag)) if tags.iter().any(|t| t == tag) => tag.to_string(),
                (Some(first), _) => first.clone(),
            }
        };
        let mine = session.last_refreshed_at(token_time);
        let my_tag = tag_of(session);
        let newer = others.iter().any(|other| {
            matches!(self.validity(other, user, now, None), Validity::Valid)
                && tag_of(other) == my_tag
                && other.last_refreshed_at(None) > mine
        });
        if newer {
            return Err(bad_request(
                ErrorCode::SessionExpired,
                "Invalid Refresh Token: Session Expired (Revoked by Newer Login)",
            )
            .into());
        }
        Ok(())
    }

    /// v1 rotation: the token to hand out, and what [`finish_refresh`] must write for it. Reuse
    /// detection and the move to v2 write here, under the same lock.
    async fn rotate_v1(
        &self,
        conn: &mut PgConnection,
        user_id: Uuid,
        session: &LockedSession,
        row: &V1Row,
        now: DateTime<Utc>,
        headers: &mut TokenHeaders,
    ) -> Result<(String, RefreshWrites), Refusal> {
        let security = &self.config.security;
        if row.revoked.unwrap_or(false) {
            let active: Option<(String, Option<String>)> = sqlx::query_as(
                "SELECT token, parent FROM refresh_tokens WHERE session_id = $1 AND revoked = false \
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(session.id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(internal)?;
            // The client lost the response to its last refresh: hand out the token it never saw.
            if let Some((active_token, Some(parent))) = &active
                && parent == &row.token
            {
                headers.insert("sb-auth-refresh-token-prefix".into(), active_token[..5].to_string());
                return Ok((active_token.clone(), RefreshWrites::refreshed_only()));
            }
            let revoked_at = row.updated_at.unwrap_or_default();
            let reuse_until = revoked_at + security.refresh_token_reuse_interval;
            if now > reuse_until {
                if security.refresh_token_rotation_enabled {
                    sqlx::query("UPDATE refresh_tokens SET revoked = true, updated_at = now() WHERE session_id = $1 AND revoked = false")
                        .bind(session.id)
                        .execute(&mut *conn)
                        .await
                        .map_err(internal)?;
                }
                tracing::warn!(session_id = %session.id, "refresh token reuse detected; token family revoked");
                return Err(Refusal::CommitThen(bad_request(
                    ErrorCode::RefreshTokenAlreadyUsed,
                    "Invalid Refresh Token: Already Used",
                )));
            }
        }

        if self.should_upgrade_to_v2(session.id) {
            // Move this session to v2 tokens: retire the presented token, record a v1 child that
            // is retired at once (as GoTrue leaves it), and give the session a key.
            sqlx::query("UPDATE refresh_tokens SET revoked = true, updated_at = now() WHERE token = $1")
                .bind(&row.token)
                .execute(&mut *conn)
                .await
                .map_err(internal)?;
            let child = refresh_token::new_v1();
            sqlx::query(INSERT_CHILD_TOKEN)
                .bind(&row.token)
                .bind(&child)
                .bind(user_id.to_string())
                .bind(session.id)
                .bind(true)
                .execute(&mut *conn)
                .await
                .map_err(internal)?;
            let key = refresh_token::new_hmac_key();
            sqlx::query("UPDATE sessions SET refresh_token_hmac_key = $2, refresh_token_counter = 0 WHERE id = $1")
                .bind(session.id)
                .bind(&key)
                .execute(&mut *conn)
                .await
                .map_err(internal)?;
            let key = refresh_token::decode_hmac_key(&key).ok_or_else(|| {
                Refusal::Rollback(ServiceError::internal(anyhow::anyhow!(
                    "a new refresh-token key is not base64url"
                )))
            })?;
            headers.insert("sb-auth-refresh-token-counter".into(), "0".into());
            headers.insert("sb-auth-refresh-token-reuse".into(), "false".into());
            let token = refresh_token::encode_v2(&key, session.id, 0);
            headers.insert("sb-auth-refresh-token-prefix".into(), token[..5].to_string());
            return Ok((token, RefreshWrites::rotated(None)));
        }
        let child = refresh_token::new_v1();
        headers.insert("sb-auth-refresh-token-reuse".into(), "false".into());
        headers.insert("sb-auth-refresh-token-prefix".into(), child[..5].to_string());
        Ok((
            child.clone(),
            RefreshWrites::rotated(Some(Rotation {
                parent: row.token.clone(),
                child,
            })),
        ))
    }

    /// `GOTRUE_SECURITY_REFRESH_TOKEN_UPGRADE_PERCENTAGE`: a stable share of v1 sessions (by CRC-32
    /// of the session id) moves to v2 tokens on their next refresh.
    fn should_upgrade_to_v2(&self, session_id: Uuid) -> bool {
        let security = &self.config.security;
        if security.refresh_token_algorithm_version != 2 || security.refresh_token_upgrade_percentage == 0 {
            return false;
        }
        let bucket = crc32fast::hash(session_id.as_bytes()) % 100;
        bucket < u32::from(security.refresh_token_upgrade_percentage)
    }

    async fn rotate_v2(
        &self,
        conn: &mut PgConnection,
        session: &LockedSession,
        signed: &SignedToken,
        now: DateTime<Utc>,
        headers: &mut TokenHeaders,
    ) -> Result<(String, i64), Refusal> {
        let security = &self.config.security;
        let key = session
            .refresh_token_hmac_key
            .as_deref()
            .and_then(refresh_token::decode_hmac_key)
            .ok_or_else(not_found)?;
        let current = u64::try_from(session.refresh_token_counter.unwrap_or(0)).unwrap_or(0);
        let presented = signed.counter;

        let counter = if presented > current {
            return Err(bad_request(
                ErrorCode::ValidationFailed,
                "Invalid Refresh Token: Not Issued By This Server",
            )
            .into());
        } else if presented == current {
            headers.insert("sb-auth-refresh-token-reuse".into(), "false".into());
            current + 1
        } else {
            let fail_to_save = current - presented == 1;
            let concurrent = (now - session.last_refreshed_at(None)).abs()
                < chrono::Duration::from_std(security.refresh_token_reuse_interval).unwrap_or_default();
            let mut causes = Vec::new();
            if concurrent {
                causes.push("concurrent-refresh");
            }
            if fail_to_save {
                causes.push("fail-to-save");
            }
            if security.refresh_token_allow_reuse {
                causes.push("always-allow");
            }
            if !causes.is_empty() {
                headers.insert("sb-auth-refresh-token-reuse-cause".into(), causes.join(","));
            }
            if !(fail_to_save || concurrent || security.refresh_token_allow_reuse) {
                if security.refresh_token_rotation_enabled {
                    sqlx::query("DELETE FROM sessions WHERE id = $1")
                        .bind(session.id)
                        .execute(&mut *conn)
                        .await
                        .map_err(internal)?;
                    tracing::warn!(session_id = %session.id, "refresh token reuse detected; session terminated");
                }
                return Err(Refusal::CommitThen(bad_request(
                    ErrorCode::RefreshTokenAlreadyUsed,
                    "Invalid Refresh Token: Already Used",
                )));
            }
            // Re-issue the current token without moving the counter.
            current
        };

        headers.insert("sb-auth-refresh-token-counter".into(), counter.to_string());
        let stored_counter = i64::try_from(counter).unwrap_or(i64::MAX);
        Ok((refresh_token::encode_v2(&key, session.id, counter), stored_counter))
    }
}

/// A v1 token rotated: `parent` (the presented token) is revoked and `child` replaces it.
struct Rotation {
    parent: String,
    child: String,
}

/// What a successful refresh writes besides the session's own update.
struct RefreshWrites {
    audit: &'static [AuditAction],
    rotation: Option<Rotation>,
}

impl RefreshWrites {
    /// A token handed out again (a lost response, a v2 token within its reuse rules, or a v2
    /// counter step): only `token_refreshed`.
    fn refreshed_only() -> Self {
        Self {
            audit: &[AuditAction::TokenRefreshed],
            rotation: None,
        }
    }

    /// A v1 token replaced: `token_refreshed` and `token_revoked`.
    fn rotated(rotation: Option<Rotation>) -> Self {
        Self {
            audit: &[AuditAction::TokenRefreshed, AuditAction::TokenRevoked],
            rotation,
        }
    }
}

/// A v1 child token: `$1` parent, `$2` token, `$3` user id (text, as GoTrue stores it), `$4`
/// session, `$5` revoked.
const INSERT_CHILD_TOKEN: &str = "INSERT INTO refresh_tokens \
     (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id) \
     VALUES ('00000000-0000-0000-0000-000000000000', $2, $3, $5, now(), now(), $1, $4)";

/// The end of every successful refresh in one statement (one round trip instead of four): the
/// audit entries, the rotation of a v1 token, and the session's refresh time, client and counter.
async fn finish_refresh(
    conn: &mut PgConnection,
    user: &UserRecord,
    session_id: Uuid,
    client: &Client,
    counter: Option<i64>,
    writes: RefreshWrites,
) -> sqlx::Result<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH audit AS ({audit}), \
             revoked AS (UPDATE refresh_tokens SET revoked = true, updated_at = now() \
                         WHERE $4::text IS NOT NULL AND token = $4), \
             child AS (INSERT INTO refresh_tokens \
                         (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id) \
                       SELECT '00000000-0000-0000-0000-000000000000', $5, $6, false, now(), now(), $4, $7 \
                       WHERE $5::text IS NOT NULL) \
             UPDATE sessions SET refreshed_at = (now() AT TIME ZONE 'UTC'), updated_at = now(), \
                    user_agent = $8, ip = $9::inet, refresh_token_counter = COALESCE($10, refresh_token_counter) \
             WHERE id = $7",
            audit = audit::INSERT_ENTRIES
        )
    });
    let (ids, payloads) = audit::entries(user, writes.audit);
    let (parent, child) = match writes.rotation {
        Some(Rotation { parent, child }) => (Some(parent), Some(child)),
        None => (None, None),
    };
    sqlx::query(sqlx::AssertSqlSafe(SQL.as_str()))
        .bind(ids)
        .bind(payloads)
        .bind(auth_core::client_ip::current())
        .bind(parent)
        .bind(child)
        .bind(user.id.to_string())
        .bind(session_id)
        .bind(&client.user_agent)
        .bind(&client.ip)
        .bind(counter)
        .execute(conn)
        .await?;
    Ok(())
}

/// How a refresh fails: most failures roll back; reuse detection commits its revocation first.
enum Refusal {
    Rollback(ServiceError),
    CommitThen(ServiceError),
}

impl From<ServiceError> for Refusal {
    fn from(error: ServiceError) -> Self {
        Refusal::Rollback(error)
    }
}

fn internal(error: sqlx::Error) -> Refusal {
    Refusal::Rollback(ServiceError::internal(error))
}

fn lock_or_internal(error: sqlx::Error) -> Refusal {
    let lock_timeout = error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == LOCK_NOT_AVAILABLE);
    if lock_timeout {
        Refusal::Rollback(ServiceError::new(
            409,
            ErrorCode::Conflict,
            "Too many concurrent token refresh requests on the same session or refresh token",
        ))
    } else {
        internal(error)
    }
}
