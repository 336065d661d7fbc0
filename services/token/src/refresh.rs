//! `POST /token?grant_type=refresh_token`: GoTrue's rotation, reuse detection and session checks.
//!
//! Every refresh of one session is serialised on the session row (`SELECT ... FOR UPDATE`), so two
//! requests with the same token cannot both rotate it: the second waits, then sees the token already
//! rotated and gets the same answer a client that lost the response would get. A request that
//! waits longer than the pool's `lock_timeout` (5 s, see `auth_core::db`) gets 409 `conflict`, as GoTrue answers after its retry loop.

use auth_account::audit::{self, AuditAction};
use auth_account::session_validity::{SessionTimes, Validity};
use auth_account::users::UserRecord;
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

#[derive(Debug)]
struct LockedSession {
    id: Uuid,
    created_at: Option<DateTime<Utc>>,
    refreshed_at: Option<NaiveDateTime>,
    aal: Option<String>,
    not_after: Option<DateTime<Utc>>,
    tag: Option<String>,
    refresh_token_hmac_key: Option<String>,
    refresh_token_counter: Option<i64>,
}

/// Everything a refresh needs, read in the statement that locks the session: the session, its
/// user (with identities and factors) and its amr claims.
struct LockedRow {
    session: LockedSession,
    user: UserRecord,
    amr: Json<Vec<AmrClaim>>,
}

/// `SELECT <user> <session> <amr> FROM sessions s JOIN users u ... WHERE $by FOR UPDATE OF s` as a
/// [`LockedRow`]; the session's columns are aliased (`s_*`) to share the row with the user's.
macro_rules! lock_session_where {
    ($conn:expr, $by:tt, $arg:expr) => {
        auth_account::with_user_columns!([lock_session_statement], $by, ($arg))
            .fetch_optional($conn)
            .await
            .map(|row| {
                row.map(|row| LockedRow {
                    session: LockedSession {
                        id: row.s_id,
                        created_at: row.s_created_at,
                        refreshed_at: row.s_refreshed_at,
                        aal: row.s_aal,
                        not_after: row.s_not_after,
                        tag: row.s_tag,
                        refresh_token_hmac_key: row.s_refresh_token_hmac_key,
                        refresh_token_counter: row.s_refresh_token_counter,
                    },
                    amr: row.amr,
                    user: auth_account::user_record_from_row!(row),
                })
            })
    };
}

macro_rules! lock_session_statement {
    ($user_columns:literal, $by:tt, $arg:expr) => {
        sqlx::query!(
            $user_columns
                + r#", s.id AS s_id, s.created_at AS s_created_at, s.refreshed_at AS s_refreshed_at,
                   s.aal::text AS s_aal, s.not_after AS s_not_after, s.tag AS s_tag,
                   s.refresh_token_hmac_key AS s_refresh_token_hmac_key,
                   s.refresh_token_counter AS s_refresh_token_counter,
                   COALESCE((SELECT json_agg(json_build_object('method', c.authentication_method, 'at', c.updated_at))
                             FROM mfa_amr_claims c WHERE c.session_id = s.id), '[]'::json)
                     AS "amr!: Json<Vec<AmrClaim>>"
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE "#
                + $by
                + " FOR UPDATE OF s",
            $arg
        )
    };
}

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

#[derive(Debug)]
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
                let locked: LockedRow = lock_session_where!(&mut *conn, "s.id = $1", signed.session_id)
                    .map_err(lock_or_internal)?
                    .ok_or_else(not_found)?;
                let key = locked
                    .session
                    .refresh_token_hmac_key
                    .as_deref()
                    .and_then(|stored| {
                        refresh_token::session_hmac_key(&self.config.security.db_encryption, signed.session_id, stored)
                    })
                    .ok_or_else(not_found)?;
                if !signed.signed_by(&key) {
                    return Err(not_found().into());
                }
                Ok((locked, None))
            }
            PresentedToken::V1(text) => {
                let locked: Option<LockedRow> = lock_session_where!(
                    &mut *conn,
                    "s.id = (SELECT session_id FROM refresh_tokens WHERE token = $1)",
                    text
                )
                .map_err(lock_or_internal)?;
                let row: Option<V1Row> = sqlx::query_as!(
                    V1Row,
                    r#"SELECT token AS "token!", revoked, updated_at, session_id FROM refresh_tokens WHERE token = $1"#,
                    text
                )
                .fetch_optional(&mut *conn)
                .await
                .map_err(internal)?;
                match (locked, row) {
                    (Some(locked), Some(row)) => Ok((locked, Some(row))),
                    // A token of GoTrue's older releases that never belonged to a session.
                    (None, Some(row)) if row.session_id.is_none() => {
                        sqlx::query!("DELETE FROM refresh_tokens WHERE token = $1", text)
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
        let others: Vec<LockedSession> = sqlx::query_as!(
            LockedSession,
            "SELECT id, created_at, refreshed_at, aal::text AS aal, not_after, tag, refresh_token_hmac_key, \
               refresh_token_counter \
             FROM sessions WHERE user_id = $1 AND id <> $2",
            user.id,
            session.id
        )
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
            let active = sqlx::query!(
                "SELECT token, parent FROM refresh_tokens WHERE session_id = $1 AND revoked = false \
                 ORDER BY id DESC LIMIT 1",
                session.id
            )
            .fetch_optional(&mut *conn)
            .await
            .map_err(internal)?
            .map(|active| (active.token.unwrap_or_default(), active.parent));
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
                    sqlx::query!("UPDATE refresh_tokens SET revoked = true, updated_at = now() WHERE session_id = $1 AND revoked = false", session.id)
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
            sqlx::query!(
                "UPDATE refresh_tokens SET revoked = true, updated_at = now() WHERE token = $1",
                &row.token
            )
            .execute(&mut *conn)
            .await
            .map_err(internal)?;
            let child = refresh_token::new_v1();
            sqlx::query!(
                "INSERT INTO refresh_tokens \
                   (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id) \
                 VALUES ('00000000-0000-0000-0000-000000000000', $2, $3, true, now(), now(), $1, $4)",
                row.token,
                child,
                user_id.to_string(),
                session.id
            )
            .execute(&mut *conn)
            .await
            .map_err(internal)?;
            let key = refresh_token::new_hmac_key();
            let stored_key = refresh_token::stored_hmac_key(&self.config.security.db_encryption, session.id, &key)
                .map_err(Refusal::Rollback)?;
            sqlx::query!(
                "UPDATE sessions SET refresh_token_hmac_key = $2, refresh_token_counter = 0 WHERE id = $1",
                session.id,
                &stored_key
            )
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
            .and_then(|stored| refresh_token::session_hmac_key(&security.db_encryption, session.id, stored))
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
                    sqlx::query!("DELETE FROM sessions WHERE id = $1", session.id)
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
    let (ids, payloads) = audit::entries(user, writes.audit);
    let (parent, child) = match writes.rotation {
        Some(Rotation { parent, child }) => (Some(parent), Some(child)),
        None => (None, None),
    };
    sqlx::query!(
        "WITH audit AS ( \
           INSERT INTO audit_log_entries (instance_id, id, payload, created_at, ip_address) \
           SELECT '00000000-0000-0000-0000-000000000000', entry.id, entry.payload::json, now(), $3 \
           FROM unnest($1::uuid[], $2::text[]) AS entry(id, payload)), \
         revoked AS (UPDATE refresh_tokens SET revoked = true, updated_at = now() \
                     WHERE $4::text IS NOT NULL AND token = $4::text), \
         child AS (INSERT INTO refresh_tokens \
                     (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id) \
                   SELECT '00000000-0000-0000-0000-000000000000', $5::text, $6, false, now(), now(), $4, $7 \
                   WHERE $5::text IS NOT NULL) \
         UPDATE sessions SET refreshed_at = (now() AT TIME ZONE 'UTC'), updated_at = now(), \
                user_agent = $8, ip = $9::text::inet, refresh_token_counter = COALESCE($10, refresh_token_counter) \
         WHERE id = $7",
        &ids,
        &payloads,
        auth_core::client_ip::current(),
        parent,
        child,
        user.id.to_string(),
        session_id,
        client.user_agent,
        client.ip,
        counter
    )
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
