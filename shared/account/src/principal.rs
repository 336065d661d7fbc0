//! Who is calling: GoTrue's `requireAuthentication` + `maybeLoadUserOrSession` + `requireAdmin`,
//! shared by every service so REST and internal gRPC callers get the same checks.
//!
//! The gateway forwards the client's `Authorization` header as `authorization` metadata; internal
//! services send a short-lived `service_role` token minted by [`service_token`].

use chrono::{DateTime, NaiveDateTime, Utc};
use tonic::metadata::MetadataMap;
use uuid::Uuid;

use crate::jwt::{JwtKeys, VerifiedClaims, bearer_token};
use crate::session_validity::{SessionTimes, Validity};
use crate::users::UserRecord;
use auth_core::config::Config;
use auth_core::error::{ErrorCode, ServiceError};

/// The session row the token names, as far as authorization needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: Option<DateTime<Utc>>,
    pub refreshed_at: Option<NaiveDateTime>,
    pub aal: Option<String>,
    pub not_after: Option<DateTime<Utc>>,
}

/// A caller whose token verified.
#[derive(Debug, Clone)]
pub struct Principal {
    pub claims: VerifiedClaims,
    /// Set for user tokens; `None` for sessionless admin tokens without `sub`.
    pub user: Option<UserRecord>,
    pub session: Option<SessionRecord>,
    pub is_admin: bool,
    /// The named session's validity (timebox, inactivity, `not_after`, low AAL); `Valid` when the
    /// token names no session.
    pub session_validity: Validity,
    /// A sessionless admin token whose `sub` is not a UUID: fine for admin routes, which do not
    /// read `sub`, refused (400) by routes that act as the user.
    pub malformed_sub: bool,
}

impl Principal {
    /// The signed-in user, or 403 for tokens that carry none.
    pub fn require_user(&self) -> Result<&UserRecord, ServiceError> {
        if self.malformed_sub {
            return Err(malformed_sub_error());
        }
        self.user
            .as_ref()
            .ok_or_else(|| ServiceError::forbidden(ErrorCode::BadJwt, "invalid claim: missing sub claim"))
    }

    /// GoTrue's `requireAdminCredentials`: a token naming a session needs that session alive (403
    /// `session_expired` otherwise, checked first), and the role must be an admin role.
    pub fn require_admin(&self) -> Result<(), ServiceError> {
        if self.session_validity != Validity::Valid {
            return Err(ServiceError::forbidden(
                ErrorCode::SessionExpired,
                "Session is no longer valid",
            ));
        }
        if self.is_admin {
            Ok(())
        } else {
            Err(ServiceError::forbidden(ErrorCode::NotAdmin, "User not allowed"))
        }
    }
}

fn authorization(metadata: &MetadataMap) -> Result<&str, ServiceError> {
    metadata
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .ok_or_else(|| {
            ServiceError::new(
                401,
                ErrorCode::NoAuthorization,
                "This endpoint requires a valid Bearer token",
            )
        })
}

/// A bearer token that verified, before its user and session are loaded.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub claims: VerifiedClaims,
    pub is_admin: bool,
    /// The `sub` claim; `None` only for admin tokens, which need none.
    pub user_id: Option<Uuid>,
    /// The `session_id` claim, when present and not nil.
    pub session_id: Option<Uuid>,
    /// See [`Principal::malformed_sub`].
    pub malformed_sub: bool,
}

fn malformed_sub_error() -> ServiceError {
    ServiceError::bad_request(ErrorCode::BadJwt, "invalid claim: sub claim must be a UUID")
}

/// Verifies the bearer token and loads its user and session, with GoTrue's statuses and messages.
/// Admin tokens (role in `GOTRUE_JWT_ADMIN_ROLES`) need no `sub`.
pub async fn authenticate(
    metadata: &MetadataMap,
    keys: &JwtKeys,
    config: &Config,
    db: &sqlx::PgPool,
) -> Result<Principal, ServiceError> {
    let token = verify_bearer(metadata, keys, config)?;
    let loaded = match token.user_id {
        // The hot path (every GET /user): user and session in one round trip.
        Some(user_id) => find_user_and_session(db, user_id, token.session_id).await?,
        None => None,
    };
    assemble(token, loaded, config, db).await
}

/// The token checks that need no database: signature, algorithm, `exp`, and the shape of `sub`
/// and `session_id`.
pub fn verify_bearer(metadata: &MetadataMap, keys: &JwtKeys, config: &Config) -> Result<VerifiedToken, ServiceError> {
    let token = authorization(metadata)?;
    let claims = keys.verify(token).map_err(|reason| {
        ServiceError::forbidden(
            ErrorCode::BadJwt,
            format!("invalid JWT: unable to parse or verify signature, {reason}"),
        )
    })?;
    let is_admin = config.jwt.admin_roles.iter().any(|r| r == claims.role());

    let session_id = match claims.session_id() {
        None => None,
        Some(raw) => {
            let id = Uuid::parse_str(raw).map_err(|_| {
                ServiceError::forbidden(ErrorCode::BadJwt, "invalid claim: session_id claim must be a UUID")
            })?;
            (!id.is_nil()).then_some(id)
        }
    };
    // GoTrue's requireAdminCredentials reads `sub` only when the token names a session; the
    // official suites mint sessionless admin tokens such as {sub: "1234567890", role: "supabase_admin"}.
    let mut malformed_sub = false;
    let user_id = match claims.sub() {
        None if is_admin => None,
        None => {
            return Err(ServiceError::forbidden(
                ErrorCode::BadJwt,
                "invalid claim: missing sub claim",
            ));
        }
        Some(sub) => match Uuid::parse_str(sub) {
            Ok(id) => Some(id),
            Err(_) if is_admin && session_id.is_none() => {
                malformed_sub = true;
                None
            }
            Err(_) => return Err(malformed_sub_error()),
        },
    };
    Ok(VerifiedToken {
        claims,
        is_admin,
        user_id,
        session_id,
        malformed_sub,
    })
}

/// Builds the caller from a verified token and what was loaded for it (the user named by `sub`
/// with the session named by `session_id`, if it exists): GoTrue's not-found and banned answers,
/// and the session's validity.
pub async fn assemble(
    token: VerifiedToken,
    loaded: Option<(UserRecord, Option<SessionRecord>)>,
    config: &Config,
    db: &sqlx::PgPool,
) -> Result<Principal, ServiceError> {
    let VerifiedToken {
        claims,
        is_admin,
        user_id,
        session_id,
        malformed_sub,
    } = token;
    let (user, session) = match (user_id, loaded) {
        (None, _) => (None, None),
        (Some(_), Some((user, session))) => (Some(user), session),
        // A sessionless admin token may name anyone; GoTrue only loads users for user tokens.
        (Some(_), None) if is_admin => (None, None),
        (Some(_), None) => {
            return Err(ServiceError::forbidden(
                ErrorCode::UserNotFound,
                "User from sub claim in JWT does not exist",
            ));
        }
    };
    let session = match (session_id, session) {
        (None, _) => None,
        (Some(_), Some(session)) => Some(session),
        // Either the session is gone, or the user was not loaded (admin token without a user).
        (Some(id), None) => Some(find_session(db, id).await?.ok_or_else(|| {
            ServiceError::forbidden(
                ErrorCode::SessionNotFound,
                "Session from session_id claim in JWT does not exist",
            )
        })?),
    };

    if let Some(user) = &user
        && user.is_banned(Utc::now())
        && !is_admin
    {
        return Err(ServiceError::forbidden(ErrorCode::UserBanned, "User is banned"));
    }

    let session_validity = match (&session, &user) {
        (Some(session), Some(user)) => SessionTimes {
            created_at: session.created_at,
            refreshed_at: session.refreshed_at,
            not_after: session.not_after,
            aal: session.aal.as_deref(),
        }
        .validity(&config.sessions, Utc::now(), user.highest_possible_aal(), None),
        _ => Validity::Valid,
    };

    Ok(Principal {
        claims,
        user,
        session,
        is_admin,
        session_validity,
        malformed_sub,
    })
}

/// The statement of [`find_user_and_session`]: the user's columns, then the session's.
macro_rules! query_user_and_session {
    ($user_columns:literal, $user_id:expr, $session_id:expr) => {
        sqlx::query!(
            $user_columns
                + r#", s.id AS "session_id?", s.user_id AS "session_user_id?", s.created_at AS session_created_at,
                 s.refreshed_at AS session_refreshed_at, s.aal::text AS session_aal,
                 s.not_after AS session_not_after
                 FROM users u LEFT JOIN sessions s ON s.id = $2 WHERE u.id = $1"#,
            $user_id,
            $session_id
        )
    };
}

/// The user with identities and factors, and the session `session_id` (if any, and if it exists).
/// The session is looked up by id alone, as GoTrue does.
pub async fn find_user_and_session(
    db: &sqlx::PgPool,
    user_id: Uuid,
    session_id: Option<Uuid>,
) -> sqlx::Result<Option<(UserRecord, Option<SessionRecord>)>> {
    let row = crate::with_user_columns!([query_user_and_session], user_id, session_id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|row| {
        let session = match (row.session_id, row.session_user_id) {
            (Some(id), Some(user_id)) => Some(SessionRecord {
                id,
                user_id,
                created_at: row.session_created_at,
                refreshed_at: row.session_refreshed_at,
                aal: row.session_aal,
                not_after: row.session_not_after,
            }),
            _ => None,
        };
        (crate::user_record_from_row!(row), session)
    }))
}

pub async fn find_session<'e>(db: impl sqlx::PgExecutor<'e>, id: Uuid) -> sqlx::Result<Option<SessionRecord>> {
    sqlx::query_as!(
        SessionRecord,
        r#"SELECT id, user_id, created_at, refreshed_at, aal::text AS aal, not_after FROM sessions WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// A short-lived token for service-to-service calls: role `service_role` (or the first admin role).
pub fn service_token(keys: &JwtKeys, config: &Config) -> anyhow::Result<String> {
    let now = Utc::now().timestamp();
    let role = config
        .jwt
        .admin_roles
        .first()
        .cloned()
        .unwrap_or_else(|| "service_role".into());
    keys.sign(&serde_json::json!({
        "iss": config.jwt.issuer,
        "role": role,
        "iat": now,
        "exp": now + 60,
    }))
}

/// Attaches `authorization: Bearer <token>` to an outgoing request.
/// A call to another service carrying this service's own short-lived `service_role` token.
pub fn service_request<T>(keys: &JwtKeys, config: &Config, body: T) -> Result<tonic::Request<T>, ServiceError> {
    let token = service_token(keys, config).map_err(ServiceError::internal)?;
    Ok(with_bearer(tonic::Request::new(body), &token))
}

pub fn with_bearer<T>(mut request: tonic::Request<T>, token: &str) -> tonic::Request<T> {
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}
