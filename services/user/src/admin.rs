//! The admin API over users (GoTrue's `admin.go`): list, get, create, update and delete. Every call
//! needs an admin-role caller (`Principal::require_admin`); every change is written to the audit log
//! in its transaction, with the caller's role as the actor, as GoTrue does.

use crate::password::{check_importable_hash, check_strength};
use auth_account::audit::{self, AuditAction};
use auth_account::principal::Principal;
use auth_account::users::{self, UserRecord};
use auth_core::{ErrorCode, ServiceError};
use auth_proto::common::v1 as pb;
use auth_proto::user::v1::{
    AdminDeleteUserRequest, AdminListUsersRequest, AdminListUsersResponse, AdminUserAttributes, AdminUserRequest,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::state::UserState;
use crate::store;
use crate::update::{merge, parse_object};
use crate::validate;

const DEFAULT_PER_PAGE: u64 = 50;
const MAX_KEYSET_LIMIT: u64 = 1000;
const DUPLICATE_EMAIL: &str = "A user with this email address has already been registered";
const DUPLICATE_PHONE: &str = "Phone number already registered by another user";

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::bad_request(ErrorCode::ValidationFailed, message)
}

/// GoTrue's `loadUser`: a malformed id is a 404 too.
fn user_id(text: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(text).map_err(|_| ServiceError::not_found(ErrorCode::ValidationFailed, "user_id must be an UUID"))
}

fn user_not_found() -> ServiceError {
    ServiceError::not_found(ErrorCode::UserNotFound, "User not found")
}

/// `ban_duration`: a Go duration, or `none` (zero: lift the ban). Go's own error text on failure.
fn ban_duration(text: Option<&str>) -> Result<Option<chrono::Duration>, ServiceError> {
    match text {
        None | Some("") => Ok(None),
        Some("none") => Ok(Some(chrono::Duration::zero())),
        Some(text) => go_parse_duration::parse_duration(text)
            .map(|nanos| Some(chrono::Duration::nanoseconds(nanos)))
            .map_err(|_| {
                invalid(format!(
                    "invalid format for ban duration: time: invalid duration \"{text}\""
                ))
            }),
    }
}

/// The keyset position after a page: GoTrue's opaque `base64url(json)` cursor.
#[derive(Serialize, Deserialize)]
struct Cursor {
    created_at: DateTime<Utc>,
    id: Uuid,
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(text: &str) -> Result<Self, ServiceError> {
        let bad = || invalid("Bad Pagination Parameters: invalid cursor");
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let cursor: Self = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if cursor.id.is_nil() {
            return Err(bad());
        }
        Ok(cursor)
    }
}

/// GoTrue's soft-delete obfuscation: base64url(SHA-256(user id ‖ value)).
fn obfuscate(id: Uuid, value: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{id}{value}")))
}

/// Phones were `VARCHAR(15)` once; GoTrue keeps obfuscated ones that short.
fn obfuscate_phone(id: Uuid, value: &str) -> String {
    obfuscate(id, value)[..15].to_string()
}

/// A user id the admin chose (`""` for a new one): a UUID, not the nil one.
fn requested_user_id(text: &str) -> Result<Uuid, ServiceError> {
    if text.is_empty() {
        return Ok(Uuid::new_v4());
    }
    let id = Uuid::parse_str(text).map_err(|_| invalid("ID must conform to the uuid v4 format"))?;
    if id.is_nil() {
        return Err(invalid("ID cannot be a nil uuid"));
    }
    Ok(id)
}

/// `SELECT u.id FROM users u WHERE <the audience, and GoTrue's filter>`, to be ordered and cut by
/// the caller. GoTrue's filter: email LIKE or user_metadata.full_name ILIKE, both unescaped
/// (trigram indexes serve it). Without a filter the statement names no pattern, so the planner
/// always sees the plain index seek.
fn matching_users(aud: &str, pattern: Option<&str>) -> QueryBuilder<Postgres> {
    let mut page = QueryBuilder::new(
        "SELECT u.id FROM users u WHERE u.instance_id = '00000000-0000-0000-0000-000000000000' AND u.aud = ",
    );
    page.push_bind(aud.to_string());
    if let Some(pattern) = pattern {
        page.push(" AND (u.email LIKE ")
            .push_bind(pattern.to_string())
            .push(" OR u.raw_user_meta_data->>'full_name' ILIKE ")
            .push_bind(pattern.to_string())
            .push(")");
    }
    page
}

fn order_by_creation(page: &mut QueryBuilder<Postgres>, ascending: bool) {
    page.push(if ascending {
        " ORDER BY u.created_at ASC, u.id ASC"
    } else {
        " ORDER BY u.created_at DESC, u.id DESC"
    });
}

impl UserState {
    /// `GET /admin/users`.
    pub async fn admin_list_users(
        &self,
        principal: &Principal,
        request: AdminListUsersRequest,
    ) -> Result<AdminListUsersResponse, ServiceError> {
        principal.require_admin()?;
        let aud = self.request_aud(request.context.as_ref());
        let filter = (!request.filter.is_empty()).then(|| format!("%{}%", request.filter));
        if request.keyset {
            let limit = match request.limit {
                0 => DEFAULT_PER_PAGE,
                n => n.min(MAX_KEYSET_LIMIT),
            };
            let after = match request.cursor.as_str() {
                "" => None,
                text => Some(Cursor::decode(text)?),
            };
            let mut page = matching_users(&aud, filter.as_deref());
            // A row comparison, so Postgres seeks the (created_at, id) index straight to the cursor.
            if let Some(after) = &after {
                page.push(if request.ascending {
                    " AND (u.created_at, u.id) > ("
                } else {
                    " AND (u.created_at, u.id) < ("
                });
                page.push_bind(after.created_at)
                    .push(", ")
                    .push_bind(after.id)
                    .push(")");
            }
            order_by_creation(&mut page, request.ascending);
            page.push(" LIMIT ")
                .push_bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));
            let mut users = self.users_in_order(page).await?;
            let has_more = users.len() as u64 > limit;
            users.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            let next_cursor = match users.last() {
                Some(last) if has_more => Cursor {
                    created_at: last.created_at.unwrap_or_default(),
                    id: last.id,
                }
                .encode(),
                _ => String::new(),
            };
            return Ok(AdminListUsersResponse {
                users: users.iter().map(UserRecord::to_proto).collect(),
                aud,
                next_cursor,
                has_more,
                ..Default::default()
            });
        }

        // pop's paginator: page < 1 is the first page, per_page < 1 is 20.
        let page_number = request.page.max(1);
        let per_page = match request.per_page {
            0 => 20,
            n => n,
        };
        let offset = (page_number - 1).saturating_mul(per_page);
        let total = self.count_users(&aud, filter.as_deref()).await?;
        let mut page = matching_users(&aud, filter.as_deref());
        order_by_creation(&mut page, request.ascending);
        page.push(" LIMIT ")
            .push_bind(i64::try_from(per_page).unwrap_or(i64::MAX))
            .push(" OFFSET ")
            .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
        let users = self.users_in_order(page).await?;
        Ok(AdminListUsersResponse {
            users: users.iter().map(UserRecord::to_proto).collect(),
            aud,
            total: u64::try_from(total).unwrap_or_default(),
            page: page_number,
            per_page,
            ..Default::default()
        })
    }

    /// The users a page of ids names, in the page's order. The page is built at run time (filter,
    /// sort, cursor); the users are read by the one checked statement every user read shares.
    async fn users_in_order(&self, mut page: QueryBuilder<Postgres>) -> Result<Vec<UserRecord>, ServiceError> {
        let ids: Vec<Uuid> = page.build_query_scalar().fetch_all(&self.db).await?;
        Ok(auth_account::query_user!(
            "FROM unnest($1::uuid[]) WITH ORDINALITY AS page(id, position) JOIN users u ON u.id = page.id \
             ORDER BY page.position",
            &ids
        )
        .fetch_all(&self.db)
        .await?)
    }

    /// X-Total-Count. Every user of the audience: the counter the migration's triggers keep exact
    /// (`suite_user_counts`), not a count of a million rows; filtered: counted.
    async fn count_users(&self, aud: &str, filter: Option<&str>) -> Result<i64, ServiceError> {
        match filter {
            None => Ok(sqlx::query_scalar!(
                r#"SELECT COALESCE(sum(users), 0)::bigint AS "total!" FROM suite_user_counts
                   WHERE instance_id = '00000000-0000-0000-0000-000000000000' AND aud = $1"#,
                aud
            )
            .fetch_one(&self.db)
            .await?),
            Some(pattern) => Ok(sqlx::query_scalar!(
                r#"SELECT count(*) AS "total!" FROM users u
                   WHERE u.instance_id = '00000000-0000-0000-0000-000000000000' AND u.aud = $1
                     AND (u.email LIKE $2 OR u.raw_user_meta_data->>'full_name' ILIKE $2)"#,
                aud,
                pattern
            )
            .fetch_one(&self.db)
            .await?),
        }
    }

    /// `GET /admin/users/{id}`.
    pub async fn admin_get_user(
        &self,
        principal: &Principal,
        request: AdminUserRequest,
    ) -> Result<pb::User, ServiceError> {
        principal.require_admin()?;
        let id = user_id(&request.user_id)?;
        let user = users::find_by_id(&self.db, id).await?.ok_or_else(user_not_found)?;
        Ok(user.to_proto())
    }

    /// `POST /admin/users`.
    pub async fn admin_create_user(
        &self,
        principal: &Principal,
        request: AdminUserAttributes,
    ) -> Result<pb::User, ServiceError> {
        principal.require_admin()?;
        let aud = match request.aud.as_deref() {
            Some(aud) if !aud.is_empty() => aud.to_string(),
            _ => self.request_aud(request.context.as_ref()),
        };
        let (email, phone) = self.new_contacts(&request, &aud).await?;
        let password = request.password.as_deref().filter(|p| !p.is_empty());
        let imported_hash = request.password_hash.as_deref().filter(|h| !h.is_empty());
        if request.password.is_some() && imported_hash.is_some() {
            return Err(invalid("Only a password or a password hash should be provided"));
        }
        // Better than GoTrue (a 500): a hash the suite could never verify is refused up front.
        if let Some(hash) = imported_hash {
            check_importable_hash(hash).map_err(|e| invalid(format!("Invalid password hash: {e}")))?;
        }
        let id = requested_user_id(&request.user_id)?;
        let ban = ban_duration(request.ban_duration.as_deref())?;
        let user_metadata = match request.user_metadata_json.as_deref() {
            Some(json) if !json.is_empty() => parse_object(json, "user_metadata")?,
            _ => Map::new(),
        };
        let app_metadata_updates = match request.app_metadata_json.as_deref() {
            Some(json) if !json.is_empty() => Some(parse_object(json, "app_metadata")?),
            _ => None,
        };
        let hash = match imported_hash {
            Some(hash) => hash.to_string(),
            None => self.admin_password_hash(id, password).await?,
        };
        let providers: Vec<&str> = [email.as_ref().map(|_| "email"), phone.as_ref().map(|_| "phone")]
            .into_iter()
            .flatten()
            .collect();
        let mut app_metadata = Map::new();
        app_metadata.insert("provider".into(), json!(providers[0]));
        app_metadata.insert("providers".into(), json!(providers));
        if let Some(updates) = app_metadata_updates {
            merge(&mut app_metadata, updates);
        }
        let role = request
            .role
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| self.config.jwt.default_group_name.clone());

        let mut tx = self.db.begin().await?;
        let new_user = store::users::AdminNewUser {
            id,
            aud: &aud,
            role: &role,
            email: email.as_deref(),
            phone: phone.as_deref(),
            password_hash: &hash,
            app_metadata: &app_metadata,
            user_metadata: &user_metadata,
            email_confirmed: request.email_confirm && email.is_some(),
            phone_confirmed: request.phone_confirm && phone.is_some(),
            ban_nanos: ban.and_then(|d| d.num_nanoseconds()).unwrap_or(0),
        };
        store::users::insert_by_admin(&mut tx, new_user)
            .await
            .map_err(unique_violation)?;
        for (provider, address) in [("email", &email), ("phone", &phone)] {
            if let Some(address) = address {
                let data =
                    json!({"sub": id.to_string(), provider: address, "email_verified": false, "phone_verified": false});
                store::identities::insert(&mut tx, id, provider, data).await?;
            }
        }
        if request.email_confirm && email.is_some() {
            store::users::confirm_email(&mut tx, id).await?;
            store::one_time_tokens::delete_all(&mut tx, id).await?;
        }
        audit::record_by_admin(
            &mut *tx,
            principal.claims.role(),
            AuditAction::UserSignedUp,
            Some(json!({"user_id": id, "user_email": email.clone().unwrap_or_default(), "user_phone": phone.clone().unwrap_or_default(), "provider": providers[0]})),
        )
        .await?;
        let user = store::users::load(&mut tx, id).await?;
        tx.commit().await?;
        Ok(user.to_proto())
    }

    /// `POST /admin/users`' email and phone: at least one, each valid and not taken in `aud`.
    async fn new_contacts(
        &self,
        request: &AdminUserAttributes,
        aud: &str,
    ) -> Result<(Option<String>, Option<String>), ServiceError> {
        let email = request.email.as_deref().unwrap_or_default();
        let phone = request.phone.as_deref().unwrap_or_default();
        if email.is_empty() && phone.is_empty() {
            return Err(invalid("Cannot create a user without either an email or phone"));
        }
        let email = (!email.is_empty()).then(|| validate::email(email)).transpose()?;
        let phone = (!phone.is_empty()).then(|| validate::phone(phone)).transpose()?;
        if let Some(email) = &email
            && users::find_by_email(&self.db, email, aud).await?.is_some()
        {
            return Err(ServiceError::unprocessable(ErrorCode::EmailExists, DUPLICATE_EMAIL));
        }
        if let Some(phone) = &phone
            && users::find_by_phone(&self.db, phone, aud).await?.is_some()
        {
            return Err(ServiceError::unprocessable(ErrorCode::PhoneExists, DUPLICATE_PHONE));
        }
        Ok((email, phone))
    }

    /// The hash of the admin's password, or of a random one nobody knows (GoTrue's choice when no
    /// password is given).
    async fn admin_password_hash(&self, user_id: Uuid, password: Option<&str>) -> Result<String, ServiceError> {
        let random;
        let password = match password {
            Some(password) => password,
            None => {
                random = crate::send::random_password(&self.config.password.required_characters, 64);
                &random
            }
        };
        self.hash_password(user_id, password)
            .await
            .map_err(ServiceError::internal)
    }

    /// `PUT /admin/users/{id}`.
    pub async fn admin_update_user(
        &self,
        principal: &Principal,
        request: AdminUserAttributes,
    ) -> Result<pb::User, ServiceError> {
        principal.require_admin()?;
        let id = user_id(&request.user_id)?;
        users::find_by_id(&self.db, id).await?.ok_or_else(user_not_found)?;
        let email = request
            .email
            .as_deref()
            .filter(|e| !e.is_empty())
            .map(validate::email)
            .transpose()?;
        let phone = request
            .phone
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(validate::phone)
            .transpose()?;
        let ban = ban_duration(request.ban_duration.as_deref())?;
        let user_metadata = request
            .user_metadata_json
            .as_deref()
            .filter(|j| !j.is_empty())
            .map(|j| parse_object(j, "user_metadata"))
            .transpose()?;
        let app_metadata = request
            .app_metadata_json
            .as_deref()
            .filter(|j| !j.is_empty())
            .map(|j| parse_object(j, "app_metadata"))
            .transpose()?;
        let hash = match request.password.as_deref() {
            Some(password) => {
                check_strength(&self.config.password, password)?;
                Some(self.hash_password(id, password).await.map_err(ServiceError::internal)?)
            }
            None => None,
        };

        let mut tx = self.db.begin().await?;
        // Locked, so concurrent admin updates of one user apply one after the other.
        let user = store::users::lock(&mut tx, id).await?.ok_or_else(user_not_found)?;
        if let Some(role) = request.role.as_deref().filter(|r| !r.is_empty()) {
            store::users::set_role(&mut tx, id, role).await?;
        }
        if request.email_confirm {
            store::users::confirm_email(&mut tx, id).await?;
            store::one_time_tokens::delete_all(&mut tx, id).await?;
        }
        if request.phone_confirm {
            store::users::confirm_phone_by_admin(&mut tx, id).await?;
        }
        if let Some(hash) = &hash {
            store::users::set_password_hash(&mut tx, id, hash).await?;
        }
        if let Some(email) = &email {
            upsert_identity_data(
                &mut tx,
                &user,
                "email",
                json!({"email": email, "email_verified": request.email_confirm}),
            )
            .await?;
            store::users::set_email(&mut tx, id, email, request.email_confirm)
                .await
                .map_err(unique_violation)?;
        }
        if let Some(phone) = &phone {
            upsert_identity_data(
                &mut tx,
                &user,
                "phone",
                json!({"phone": phone, "phone_verified": request.phone_confirm}),
            )
            .await?;
            store::users::set_phone(&mut tx, id, phone, request.phone_confirm)
                .await
                .map_err(unique_violation)?;
        }
        if let Some(updates) = app_metadata {
            let mut merged = user.app_metadata();
            merge(&mut merged, updates);
            store::users::set_app_metadata(&mut tx, id, merged).await?;
        }
        if let Some(updates) = user_metadata {
            // Re-read: confirming the email above may have set `email_verified`.
            let current: Option<sqlx::types::Json<Map<String, Value>>> = sqlx::query_scalar!(
                r#"SELECT raw_user_meta_data AS "raw_user_meta_data: auth_account::users::JsonObject"
                       FROM users WHERE id = $1"#,
                id
            )
            .fetch_one(&mut *tx)
            .await?;
            let mut merged = current.map(|j| j.0).unwrap_or_default();
            merge(&mut merged, updates);
            store::users::set_user_metadata(&mut tx, id, merged).await?;
        }
        if let Some(ban) = ban {
            store::users::ban_for(&mut tx, id, ban.num_nanoseconds().unwrap_or(i64::MAX)).await?;
        }
        let updated = store::users::load(&mut tx, id).await?;
        audit::record_by_admin(
            &mut *tx,
            principal.claims.role(),
            AuditAction::UserModified,
            Some(json!({"user_id": id, "user_email": updated.email(), "user_phone": updated.phone()})),
        )
        .await?;
        tx.commit().await?;
        Ok(updated.to_proto())
    }

    /// `DELETE /admin/users/{id}`: a hard delete (cascading to everything the user owns), or GoTrue's
    /// soft delete, which keeps the row but makes it anonymous and unusable.
    pub async fn admin_delete_user(
        &self,
        principal: &Principal,
        request: AdminDeleteUserRequest,
    ) -> Result<(), ServiceError> {
        principal.require_admin()?;
        let id = user_id(&request.user_id)?;
        let mut tx = self.db.begin().await?;
        let user = store::users::lock(&mut tx, id).await?.ok_or_else(user_not_found)?;
        audit::record_by_admin(
            &mut *tx,
            principal.claims.role(),
            AuditAction::UserDeleted,
            Some(json!({"user_id": id, "user_email": user.email(), "user_phone": user.phone()})),
        )
        .await?;
        if !request.should_soft_delete {
            // Everything the user owns in other services' tables goes with the row (the schema's
            // ON DELETE CASCADE), in this one commit.
            sqlx::query!("DELETE FROM users WHERE id = $1", id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(());
        }
        if user.deleted_at.is_none() {
            soft_delete(&mut tx, &user).await?;
        }
        tx.commit().await?;
        // The row stays, so the user's sessions and factors are removed by their owners, after the
        // commit (no call is made while a transaction is open). The committed soft delete already
        // makes the account unusable (no address or password to sign in with); should a call fail,
        // the admin gets the error and repeating the delete finishes the job.
        self.revoke_sessions(id, None).await?;
        self.delete_factors(id).await?;
        Ok(())
    }
}

/// The unique indexes on email and phone are the final word on duplicates (two admins creating the
/// same address at once): 422 as GoTrue's own checks answer, never a 500.
fn unique_violation(error: sqlx::Error) -> ServiceError {
    match error.as_database_error().and_then(|d| d.constraint()) {
        Some("users_email_partial_key") => ServiceError::unprocessable(ErrorCode::EmailExists, DUPLICATE_EMAIL),
        Some("users_phone_key") => ServiceError::unprocessable(ErrorCode::PhoneExists, DUPLICATE_PHONE),
        Some("users_pkey") => ServiceError::unprocessable(ErrorCode::UserAlreadyExists, "User already registered"),
        _ => ServiceError::internal(error),
    }
}

/// GoTrue's admin update of an email or phone: the user's identity for that provider gets the new
/// data merged in, or is created when the user has none.
async fn upsert_identity_data(
    conn: &mut PgConnection,
    user: &UserRecord,
    provider: &str,
    data: Value,
) -> Result<(), ServiceError> {
    let existing = user
        .identities
        .0
        .iter()
        .find(|i| i.provider == provider && i.provider_id == user.id.to_string());
    match existing {
        Some(identity) => {
            let mut merged = identity.identity_data.clone();
            if let Value::Object(updates) = data {
                merge(&mut merged, updates);
            }
            store::identities::set_data(conn, identity.id, Value::Object(merged)).await?;
        }
        None => {
            let mut full = json!({"sub": user.id.to_string(), "email_verified": false, "phone_verified": false});
            if let (Value::Object(full), Value::Object(data)) = (&mut full, data) {
                full.extend(data);
            }
            store::identities::insert(conn, user.id, provider, full).await?;
        }
    }
    Ok(())
}

/// GoTrue's `SoftDeleteUser` and `SoftDeleteUserIdentities` for the tables this service owns:
/// contact details replaced by hashes, password and every pending token cleared, metadata emptied,
/// identities unlinkable, `deleted_at` set. Sessions and factors are their owners' to remove.
async fn soft_delete(conn: &mut PgConnection, user: &UserRecord) -> Result<(), ServiceError> {
    let id = user.id;
    let obfuscated = store::users::Obfuscated {
        email: obfuscate(id, user.email()),
        phone: obfuscate_phone(id, user.phone()),
        email_change: obfuscate(id, user.email_change.as_deref().unwrap_or_default()),
        phone_change: obfuscate_phone(id, user.phone_change.as_deref().unwrap_or_default()),
    };
    store::users::soft_delete(conn, id, &obfuscated).await?;
    for identity in &user.identities.0 {
        let provider_id = obfuscate(id, &format!("{}:{}", identity.provider, identity.provider_id));
        store::identities::anonymize(conn, identity.id, &provider_id).await?;
    }
    store::one_time_tokens::delete_all(conn, id).await?;
    Ok(())
}
