//! `users` (GoTrue's `models/user.go`): the account row and every named change to it (see
//! `store/mod.rs` for the two statements written elsewhere). In order below:
//!
//! - reading and creating: `load`, `lock`, `insert`, `insert_by_admin`;
//! - confirming and signing in: `confirm_email`, `confirm_phone`, `record_sign_in`;
//! - profile: `set_user_metadata`, `set_app_metadata`, `refresh_providers`, `mark_invited`;
//! - admin changes: `set_role`, `confirm_phone_by_admin`, `set_email`, `set_phone`, `ban_for`,
//!   `soft_delete`;
//! - passwords: `set_password_hash`, `upgrade_password_hash`, `change_password`;
//! - email and phone changes: `begin_email_change`, `spend_one_email_change_code`,
//!   `finish_email_change`, `finish_phone_change`, `adopt_contact`;
//! - one-time codes: `store_code_if_due`, `store_code`, `store_email_change_code`,
//!   `spend_recovery_code`, `clear_pending_codes` (each code's column pair is the one its
//!   `OneTimeTokenKind` names).

use auth_account::users::{self, UserRecord};
use auth_core::{ErrorCode, ServiceError};
use serde_json::{Map, Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use super::identities::Provider;
use super::one_time_tokens::{OneTimeTokenKind, per_code_columns};

/// The user as it stands inside the caller's transaction (it must exist: the caller found or made it).
pub async fn load(conn: &mut PgConnection, id: Uuid) -> Result<UserRecord, ServiceError> {
    users::find_by_id(conn, id)
        .await?
        .ok_or_else(|| ServiceError::internal(anyhow::anyhow!("user {id} vanished inside its transaction")))
}

/// The user, locked until the caller's transaction ends (concurrent changes of one user apply one
/// after the other); `None` when there is no such user.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<UserRecord>, ServiceError> {
    let locked: Option<Uuid> = sqlx::query_scalar!("SELECT id FROM users WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *conn)
        .await?;
    match locked {
        Some(_) => Ok(Some(load(conn, id).await?)),
        None => Ok(None),
    }
}

/// A new account's insert refused by the unique indexes: 422 `email_exists` / `phone_exists`.
fn address_taken(error: sqlx::Error) -> ServiceError {
    match error.as_database_error().and_then(|d| d.constraint()) {
        Some("users_phone_key") => {
            ServiceError::unprocessable(ErrorCode::PhoneExists, "Phone number already registered")
        }
        Some("users_email_partial_key") => {
            ServiceError::unprocessable(ErrorCode::EmailExists, "Email address already registered")
        }
        _ => ServiceError::internal(error),
    }
}

/// A new account, as the sign-up, invite and OTP flows make it.
pub struct NewUser<'a> {
    pub id: Uuid,
    pub aud: &'a str,
    /// `GOTRUE_JWT_DEFAULT_GROUP_NAME`
    pub role: &'a str,
    pub provider: Provider,
    /// The email or phone (ignored for anonymous users).
    pub address: &'a str,
    pub password_hash: Option<&'a str>,
    pub user_metadata: &'a Map<String, Value>,
    pub anonymous: bool,
}

/// Inserts a new account; 422 `email_exists` / `phone_exists` when the address is taken.
pub async fn insert(conn: &mut PgConnection, new: NewUser<'_>) -> Result<(), ServiceError> {
    let (email, phone) = match (new.anonymous, new.provider) {
        (true, _) => (None, None),
        (false, Provider::Email) => (Some(new.address), None),
        (false, Provider::Phone) => (None, Some(new.address)),
    };
    let app_metadata = if new.anonymous {
        json!({})
    } else {
        json!({"provider": new.provider.as_str(), "providers": [new.provider.as_str()]})
    };
    // GoTrue writes '' (not NULL) into its string token columns; GoTrue itself fails to read NULLs
    // there, so a database shared with it must keep that shape.
    sqlx::query!(
        "INSERT INTO users (instance_id, id, aud, role, email, phone, encrypted_password, \
           raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_anonymous, is_sso_user, \
           confirmation_token, recovery_token, email_change_token_new, email_change) \
         VALUES ('00000000-0000-0000-0000-000000000000', $1, $2, $3, $4, $5, $6, $7, $8, now(), now(), $9, false, \
           '', '', '', '')",
        new.id,
        new.aud,
        new.role,
        email,
        phone,
        new.password_hash.unwrap_or_default(),
        sqlx::types::Json(app_metadata) as _,
        sqlx::types::Json(Value::Object(new.user_metadata.clone())) as _,
        new.anonymous
    )
    .execute(conn)
    .await
    .map_err(address_taken)?;
    Ok(())
}

/// GoTrue's `User.Confirm` on the row: confirmed now, `email_verified` in the metadata, the
/// confirmation code spent. (The caller also forgets the user's one-time tokens.)
pub async fn confirm_email(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET email_confirmed_at = now(), confirmation_token = '', updated_at = now(), \
         raw_user_meta_data = COALESCE(raw_user_meta_data, '{}'::jsonb) || '{\"email_verified\": true}'::jsonb \
         WHERE id = $1",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The user signed in now.
pub async fn record_sign_in(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("UPDATE users SET last_sign_in_at = now() WHERE id = $1", user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces `user_metadata` (the caller merged the update in).
pub async fn set_user_metadata(
    conn: &mut PgConnection,
    user_id: Uuid,
    metadata: Map<String, Value>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET raw_user_meta_data = $2, updated_at = now() WHERE id = $1",
        user_id,
        sqlx::types::Json(Value::Object(metadata)) as _
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces `app_metadata` (the caller merged the update in).
pub async fn set_app_metadata(
    conn: &mut PgConnection,
    user_id: Uuid,
    metadata: Map<String, Value>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET raw_app_meta_data = $2, updated_at = now() WHERE id = $1",
        user_id,
        sqlx::types::Json(Value::Object(metadata)) as _
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// GoTrue's `UpdateAppMetaDataProviders`: `providers` lists the user's identity providers in the
/// order they were linked, `provider` is the first.
pub async fn refresh_providers(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET raw_app_meta_data = COALESCE(raw_app_meta_data, '{}'::jsonb) \
           || jsonb_build_object('providers', p.list) \
           || CASE WHEN jsonb_array_length(p.list) > 0 THEN jsonb_build_object('provider', p.list -> 0) \
                   ELSE '{}'::jsonb END \
         FROM (SELECT COALESCE(jsonb_agg(provider ORDER BY first_linked), '[]'::jsonb) AS list \
               FROM (SELECT provider, min(created_at) AS first_linked FROM identities \
                     WHERE user_id = $1 GROUP BY provider) linked) p \
         WHERE id = $1",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The user was invited now.
pub async fn mark_invited(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!("UPDATE users SET invited_at = now() WHERE id = $1", user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every pending code of the user dies (too many wrong guesses). The one-time token index is the
/// caller's to clear too.
pub async fn clear_pending_codes(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET confirmation_token = '', recovery_token = '', email_change_token_current = '', \
         email_change_token_new = '', phone_change_token = '', reauthentication_token = '' WHERE id = $1",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A new account made by an admin (`POST /admin/users`), with its confirmations and ban decided.
pub struct AdminNewUser<'a> {
    pub id: Uuid,
    pub aud: &'a str,
    pub role: &'a str,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    /// `''` for none, as GoTrue stores it.
    pub password_hash: &'a str,
    pub app_metadata: &'a Map<String, Value>,
    pub user_metadata: &'a Map<String, Value>,
    pub email_confirmed: bool,
    pub phone_confirmed: bool,
    /// Nanoseconds; 0 for none.
    pub ban_nanos: i64,
}

/// Inserts an admin-made account. The unique-index error is the caller's to map.
pub async fn insert_by_admin(conn: &mut PgConnection, new: AdminNewUser<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO users (instance_id, id, aud, role, email, phone, encrypted_password, \
           raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_anonymous, is_sso_user, \
           confirmation_token, recovery_token, email_change_token_new, email_change, \
           email_confirmed_at, phone_confirmed_at, banned_until) \
         VALUES ('00000000-0000-0000-0000-000000000000', $1, $2, $3, $4, $5, $6, $7, $8, now(), now(), false, false, \
           '', '', '', '', CASE WHEN $9 THEN now() END, CASE WHEN $10 THEN now() END, \
           CASE WHEN $11::bigint > 0 THEN now() + make_interval(secs => $11::bigint / 1e9) END)",
        new.id,
        new.aud,
        new.role,
        new.email,
        new.phone,
        new.password_hash,
        sqlx::types::Json(new.app_metadata) as _,
        sqlx::types::Json(new.user_metadata) as _,
        new.email_confirmed,
        new.phone_confirmed,
        new.ban_nanos
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_role(conn: &mut PgConnection, user_id: Uuid, role: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET role = $2, updated_at = now() WHERE id = $1",
        user_id,
        role
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The phone is confirmed by an admin; a pending phone change is dropped.
pub async fn confirm_phone_by_admin(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET phone_confirmed_at = now(), phone_change = '', phone_change_token = '', updated_at = now() \
         WHERE id = $1",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A new password hash, nothing else touched (an admin's update, a recovery link's reset).
pub async fn set_password_hash(conn: &mut PgConnection, user_id: Uuid, hash: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET encrypted_password = $2, updated_at = now() WHERE id = $1",
        user_id,
        hash
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the password hash only if it is still `verified` (a sign-in upgrading an old hash must
/// not undo a concurrent password change).
pub async fn upgrade_password_hash(
    conn: &mut PgConnection,
    user_id: Uuid,
    upgraded: &str,
    verified: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET encrypted_password = $2 WHERE id = $1 AND encrypted_password = $3",
        user_id,
        upgraded,
        verified
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An admin sets the email; a confirmed one makes an anonymous user permanent. The unique-index
/// error is the caller's to map.
pub async fn set_email(conn: &mut PgConnection, user_id: Uuid, email: &str, confirmed: bool) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET email = $2, updated_at = now(), is_anonymous = is_anonymous AND NOT $3 WHERE id = $1",
        user_id,
        email,
        confirmed
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An admin sets the phone; a confirmed one makes an anonymous user permanent. The unique-index
/// error is the caller's to map.
pub async fn set_phone(conn: &mut PgConnection, user_id: Uuid, phone: &str, confirmed: bool) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET phone = $2, updated_at = now(), is_anonymous = is_anonymous AND NOT $3 WHERE id = $1",
        user_id,
        phone,
        confirmed
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Banned for `nanos` from now; 0 lifts the ban.
pub async fn ban_for(conn: &mut PgConnection, user_id: Uuid, nanos: i64) -> sqlx::Result<()> {
    sqlx::query!("UPDATE users SET banned_until = CASE WHEN $2::bigint > 0 THEN now() + make_interval(secs => $2::bigint / 1e9) END, \
         updated_at = now() WHERE id = $1", user_id, nanos)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a soft-deleted user's contact details become (GoTrue's obfuscation, computed by the caller).
pub struct Obfuscated {
    pub email: String,
    pub phone: String,
    pub email_change: String,
    pub phone_change: String,
}

/// GoTrue's `SoftDeleteUser` on the row: contact details replaced, password and every pending code
/// cleared, metadata emptied, `deleted_at` set.
pub async fn soft_delete(conn: &mut PgConnection, user_id: Uuid, obfuscated: &Obfuscated) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET email = $2, phone = $3, email_change = $4, phone_change = $5, encrypted_password = NULL, \
           confirmation_token = '', recovery_token = '', email_change_token_current = '', \
           email_change_token_new = '', phone_change_token = '', deleted_at = now(), \
           raw_user_meta_data = '{}'::jsonb, raw_app_meta_data = '{}'::jsonb, updated_at = now() \
         WHERE id = $1",
        user_id,
        &obfuscated.email,
        &obfuscated.phone,
        &obfuscated.email_change,
        &obfuscated.phone_change
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The phone is confirmed (a sign-up under SMS autoconfirm, or its code verified); the
/// confirmation code is spent.
pub async fn confirm_phone(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET phone_confirmed_at = now(), confirmation_token = '', is_anonymous = false, \
         updated_at = now() WHERE id = $1",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// GoTrue's `UpdatePassword`: the new hash, and every pending code dies with the old password.
/// (The caller also forgets the user's one-time tokens.)
pub async fn change_password(conn: &mut PgConnection, user_id: Uuid, hash: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET encrypted_password = $2, updated_at = now(), \
         confirmation_token = '', confirmation_sent_at = NULL, recovery_token = '', recovery_sent_at = NULL, \
         email_change_token_current = '', email_change_token_new = '', email_change_sent_at = NULL, \
         phone_change_token = '', phone_change_sent_at = NULL, \
         reauthentication_token = '', reauthentication_sent_at = NULL WHERE id = $1",
        user_id,
        hash
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An email change starts: the new address waits for its code (and, with secure email change, the
/// current address for its own; `''` otherwise).
pub async fn begin_email_change(
    conn: &mut PgConnection,
    user_id: Uuid,
    new_email: &str,
    new_address_hash: &str,
    current_address_hash: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET email_change = $2, email_change_token_new = $3, email_change_token_current = $4, \
         email_change_sent_at = now(), email_change_confirm_status = 0 WHERE id = $1",
        user_id,
        new_email,
        new_address_hash,
        current_address_hash
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// One of the two codes of a secure email change was used; the other is still awaited.
pub async fn spend_one_email_change_code(
    conn: &mut PgConnection,
    user_id: Uuid,
    current_address: bool,
) -> sqlx::Result<()> {
    if current_address {
        sqlx::query!(
            "UPDATE users SET email_change_token_current = '', email_change_confirm_status = 1 WHERE id = $1",
            user_id
        )
        .execute(conn)
        .await?;
    } else {
        sqlx::query!(
            "UPDATE users SET email_change_token_new = '', email_change_confirm_status = 1 WHERE id = $1",
            user_id
        )
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// The email change is complete: the new address is the user's.
pub async fn finish_email_change(conn: &mut PgConnection, user_id: Uuid, new_email: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET email = $2, email_change = '', email_change_token_current = '', \
         email_change_token_new = '', email_change_confirm_status = 0, is_anonymous = false, updated_at = now() \
         WHERE id = $1",
        user_id,
        new_email
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The phone change is complete: the new number is the user's, confirmed.
pub async fn finish_phone_change(conn: &mut PgConnection, user_id: Uuid, new_phone: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET phone = $2, phone_change = '', phone_change_token = '', phone_confirmed_at = now(), \
         is_anonymous = false, updated_at = now() WHERE id = $1",
        user_id,
        new_phone
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An anonymous user (under autoconfirm) takes an email address or phone number at once and
/// becomes permanent; `app_metadata_patch` sets `provider`/`providers`.
pub async fn adopt_contact(
    conn: &mut PgConnection,
    user_id: Uuid,
    provider: Provider,
    address: &str,
    app_metadata_patch: Value,
) -> sqlx::Result<()> {
    match provider {
        Provider::Email => {
            sqlx::query!(
                "UPDATE users SET email = $2, email_confirmed_at = now(), is_anonymous = false, email_change = '', \
             updated_at = now(), raw_app_meta_data = COALESCE(raw_app_meta_data, '{}'::jsonb) || $3 WHERE id = $1",
                user_id,
                address,
                app_metadata_patch
            )
            .execute(conn)
            .await?
        }
        Provider::Phone => {
            sqlx::query!(
                "UPDATE users SET phone = $2, phone_confirmed_at = now(), is_anonymous = false, phone_change = '', \
             updated_at = now(), raw_app_meta_data = COALESCE(raw_app_meta_data, '{}'::jsonb) || $3 WHERE id = $1",
                user_id,
                address,
                app_metadata_patch
            )
            .execute(conn)
            .await?
        }
    };
    Ok(())
}

/// The recovery code was used.
pub async fn spend_recovery_code(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET recovery_token = '', updated_at = now() WHERE id = $1",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a code's hash in the user's column for `kind` and stamps its send time, unless the
/// previous code of that kind went out less than `interval` ago (then `false`, and nothing is
/// written). The check and the write are one statement, so two simultaneous requests cannot both
/// send. A phone change also records the new number.
pub async fn store_code_if_due(
    conn: &mut PgConnection,
    user_id: Uuid,
    kind: OneTimeTokenKind,
    hash: &str,
    phone_change: Option<&str>,
    interval: std::time::Duration,
) -> sqlx::Result<bool> {
    // `$4` (the new number) is only written for a phone change.
    macro_rules! store_if_due {
        ($token:tt, $sent:tt) => {
            sqlx::query!(
                "UPDATE users SET "
                    + $token
                    + " = $2, "
                    + $sent
                    + " = now(), updated_at = now(), \
                   phone_change = CASE WHEN $4::text IS NULL THEN phone_change ELSE $4 END \
                 WHERE id = $1 AND ("
                    + $sent
                    + " IS NULL OR "
                    + $sent
                    + " + make_interval(secs => $3) <= now())",
                user_id,
                hash,
                interval.as_secs_f64(),
                phone_change
            )
        };
    }
    let query = per_code_columns!(kind, store_if_due);
    Ok(query.execute(conn).await?.rows_affected() > 0)
}

/// Stores a code's hash for `kind` and stamps its send time, with no interval (an admin's
/// generated link).
pub async fn store_code(
    conn: &mut PgConnection,
    user_id: Uuid,
    kind: OneTimeTokenKind,
    hash: &str,
) -> sqlx::Result<()> {
    macro_rules! store {
        ($token:tt, $sent:tt) => {
            sqlx::query!(
                "UPDATE users SET " + $token + " = $2, " + $sent + " = now(), updated_at = now() WHERE id = $1",
                user_id,
                hash
            )
        };
    }
    let query = per_code_columns!(kind, store);
    query.execute(conn).await?;
    Ok(())
}

/// An admin's generated email-change link: the code for one of the two addresses, the new address
/// recorded as pending.
pub async fn store_email_change_code(
    conn: &mut PgConnection,
    user_id: Uuid,
    current_address: bool,
    hash: &str,
    new_email: &str,
) -> sqlx::Result<()> {
    if current_address {
        sqlx::query!(
            "UPDATE users SET email_change_token_current = $2, email_change = $3, email_change_sent_at = now(), \
             email_change_confirm_status = 0, updated_at = now() WHERE id = $1",
            user_id,
            hash,
            new_email
        )
        .execute(conn)
        .await?;
    } else {
        sqlx::query!(
            "UPDATE users SET email_change_token_new = $2, email_change = $3, email_change_sent_at = now(), \
             email_change_confirm_status = 0, updated_at = now() WHERE id = $1",
            user_id,
            hash,
            new_email
        )
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// A new account made from an external identity (GoTrue's `SignupParams.ToUserModel` with a
/// provider): no password; `email` may be absent (an optional or already-taken address).
pub struct ExternalNewUser<'a> {
    pub id: Uuid,
    pub aud: &'a str,
    pub role: &'a str,
    pub provider: &'a str,
    pub email: Option<&'a str>,
    pub user_metadata: &'a Map<String, Value>,
    /// GoTrue marks accounts of a linking domain other than `default` as SSO users, so they may
    /// share an address with a default-domain account.
    pub is_sso_user: bool,
}

pub async fn insert_external(conn: &mut PgConnection, new: ExternalNewUser<'_>) -> Result<(), ServiceError> {
    let app_metadata = json!({"provider": new.provider, "providers": [new.provider]});
    sqlx::query!(
        "INSERT INTO users (instance_id, id, aud, role, email, encrypted_password, raw_app_meta_data, \
           raw_user_meta_data, created_at, updated_at, is_anonymous, is_sso_user, \
           confirmation_token, recovery_token, email_change_token_new, email_change) \
         VALUES ('00000000-0000-0000-0000-000000000000', $1, $2, $3, $4, '', $5, $6, now(), now(), false, $7, \
           '', '', '', '')",
        new.id,
        new.aud,
        new.role,
        new.email,
        sqlx::types::Json(app_metadata) as _,
        sqlx::types::Json(Value::Object(new.user_metadata.clone())) as _,
        new.is_sso_user
    )
    .execute(conn)
    .await
    .map_err(address_taken)?;
    Ok(())
}

/// The ids of the non-SSO accounts holding one of `emails` (lower-case), whatever their audience,
/// as GoTrue's linking decision looks them up.
pub async fn ids_with_emails(conn: &mut PgConnection, emails: &[String]) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM users WHERE email = ANY($1) AND is_sso_user = false",
        emails
    )
    .fetch_all(conn)
    .await
}

/// GoTrue's `RemoveUnconfirmedIdentities` (the account part): the password of an unconfirmed
/// account is dropped when an external identity claims it, so whoever set it cannot get in.
pub async fn clear_password(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET encrypted_password = '', updated_at = now() WHERE id = $1",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The account's email after its identities changed (GoTrue's `SetEmail` in
/// `UpdateUserEmailFromIdentities`): confirmed only when `confirmed`; an anonymous user with a
/// confirmed address becomes permanent. The unique-index error is the caller's to map.
pub async fn promote_email(conn: &mut PgConnection, user_id: Uuid, email: &str, confirmed: bool) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET email = NULLIF($2, ''), updated_at = now(), \
           email_confirmed_at = CASE WHEN $3 THEN email_confirmed_at ELSE NULL END \
         WHERE id = $1",
        user_id,
        email,
        confirmed
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The phone identity is gone: so is the account's number.
pub async fn drop_phone(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET phone = NULL, phone_confirmed_at = NULL, updated_at = now() WHERE id = $1",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An anonymous user who linked an identity with a verified email is a permanent user now.
pub async fn make_permanent(conn: &mut PgConnection, user_id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET is_anonymous = false, updated_at = now() WHERE id = $1",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The invited (or otherwise unconfirmed) user whose pending confirmation code is `token`,
/// locked; GoTrue's `FindUserByConfirmationToken`.
pub async fn lock_by_confirmation_token(
    conn: &mut PgConnection,
    token: &str,
) -> Result<Option<UserRecord>, ServiceError> {
    if token.is_empty() {
        return Ok(None);
    }
    let id: Option<Uuid> = sqlx::query_scalar!(
        "SELECT id FROM users WHERE confirmation_token = $1 LIMIT 1 FOR UPDATE",
        token
    )
    .fetch_optional(&mut *conn)
    .await?;
    match id {
        Some(id) => Ok(Some(load(conn, id).await?)),
        None => Ok(None),
    }
}

/// GoTrue's `UpdateUserMetaData` in one statement: `updates`' keys overwrite the account's, a
/// top-level `null` removes its key.
pub async fn merge_user_metadata(
    conn: &mut PgConnection,
    user_id: Uuid,
    updates: &Map<String, Value>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET updated_at = now(), raw_user_meta_data = \
           (COALESCE(raw_user_meta_data, '{}'::jsonb) || $2) \
           - COALESCE(ARRAY(SELECT key FROM jsonb_each($2) WHERE jsonb_typeof(value) = 'null'), '{}'::text[]) \
         WHERE id = $1",
        user_id,
        sqlx::types::Json(Value::Object(updates.clone())) as _
    )
    .execute(conn)
    .await?;
    Ok(())
}
