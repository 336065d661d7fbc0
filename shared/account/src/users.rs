//! The account read model: one user with its identities and factors, loaded in a single query.
//!
//! The user service owns these tables; the token service reads them to build claims and token
//! responses (ARCHITECTURE: reads of a table you do not own are allowed on hot paths).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use auth_proto::common::v1 as pb;

/// The Rust types of the JSON columns in [`with_user_columns!`]. The macro names them by absolute
/// path inside its SQL (a type override is a string there, where `$crate` is not replaced, and a
/// column alias must fit in Postgres' 63 bytes), so they are short aliases.
pub type JsonObject = Json<Map<String, Value>>;
pub type JsonIdentities = Json<Vec<IdentityRecord>>;
pub type JsonFactors = Json<Vec<FactorRecord>>;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub id: Uuid,
    pub aud: Option<String>,
    pub role: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub encrypted_password: Option<String>,
    pub email_confirmed_at: Option<DateTime<Utc>>,
    pub phone_confirmed_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub invited_at: Option<DateTime<Utc>>,
    pub confirmation_sent_at: Option<DateTime<Utc>>,
    pub recovery_sent_at: Option<DateTime<Utc>>,
    pub email_change: Option<String>,
    pub email_change_sent_at: Option<DateTime<Utc>>,
    pub phone_change: Option<String>,
    pub phone_change_sent_at: Option<DateTime<Utc>>,
    pub reauthentication_token: Option<String>,
    pub reauthentication_sent_at: Option<DateTime<Utc>>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub raw_app_meta_data: Option<Json<Map<String, Value>>>,
    pub raw_user_meta_data: Option<Json<Map<String, Value>>>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub banned_until: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub is_sso_user: bool,
    pub is_anonymous: bool,
    pub identities: Json<Vec<IdentityRecord>>,
    pub factors: Json<Vec<FactorRecord>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IdentityRecord {
    pub id: Uuid,
    pub provider_id: String,
    pub user_id: Uuid,
    pub identity_data: Map<String, Value>,
    pub provider: String,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize, sqlx::FromRow)]
pub struct FactorRecord {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status: String,
    pub friendly_name: Option<String>,
    pub factor_type: String,
    pub phone: Option<String>,
    pub last_challenged_at: Option<DateTime<Utc>>,
}

/// Every user column the suite reads, plus identities and factors aggregated in the same statement
/// (one round trip instead of three), as one SQL literal handed to the macro in brackets ahead of the
/// other arguments: `with_user_columns!([my_statement], a, b)` expands to
/// `my_statement!("SELECT u.id, ...", a, b)` (each argument a single token tree).
///
/// `sqlx::query_as!` only accepts literals (joined with `+`), not constants, so the column list is a
/// macro: [`query_user!`] passes it to `query_as!`, checked at compile time; a statement selecting
/// more than the user (the principal's session) passes it to `query!` and maps the row with
/// [`user_record_from_row!`]. The `"name: Type"` aliases tell the macros the Rust types of the JSON
/// columns and that the aggregates are never NULL.
#[macro_export]
macro_rules! with_user_columns {
    ([$($then:tt)+] $(, $args:tt)*) => {
        $($then)+!(
            r#"
SELECT u.id, u.aud, u.role, u.email, u.phone, u.encrypted_password,
       u.email_confirmed_at, u.phone_confirmed_at, u.confirmed_at, u.invited_at,
       u.confirmation_sent_at, u.recovery_sent_at, u.email_change, u.email_change_sent_at,
       u.phone_change, u.phone_change_sent_at, u.reauthentication_token, u.reauthentication_sent_at,
       u.last_sign_in_at,
       u.raw_app_meta_data AS "raw_app_meta_data: ::auth_account::users::JsonObject",
       u.raw_user_meta_data AS "raw_user_meta_data: ::auth_account::users::JsonObject",
       u.created_at, u.updated_at, u.banned_until, u.deleted_at, u.is_sso_user, u.is_anonymous,
       COALESCE((SELECT json_agg(json_build_object(
                   'id', i.id, 'provider_id', i.provider_id, 'user_id', i.user_id,
                   'identity_data', i.identity_data, 'provider', i.provider,
                   'last_sign_in_at', i.last_sign_in_at, 'created_at', i.created_at,
                   'updated_at', i.updated_at, 'email', i.email) ORDER BY i.created_at, i.id)
                 FROM identities i WHERE i.user_id = u.id), '[]'::json)
         AS "identities!: ::auth_account::users::JsonIdentities",
       COALESCE((SELECT json_agg(json_build_object(
                   'id', f.id, 'created_at', f.created_at, 'updated_at', f.updated_at,
                   'status', f.status, 'friendly_name', f.friendly_name, 'factor_type', f.factor_type,
                   'phone', f.phone, 'last_challenged_at', f.last_challenged_at) ORDER BY f.created_at, f.id)
                 FROM mfa_factors f WHERE f.user_id = u.id), '[]'::json)
         AS "factors!: ::auth_account::users::JsonFactors"
"#
            $(, $args)*
        )
    };
}

/// `query_user!("FROM users u WHERE u.id = $1", id)`: a compile-time checked `query_as!` of
/// [`UserRecord`]s; the literal is the statement after the column list.
#[macro_export]
macro_rules! query_user {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        $crate::with_user_columns!([$crate::query_user_with_columns], $rest $(, ($arg))*)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! query_user_with_columns {
    ($columns:literal, $rest:literal $(, $arg:tt)*) => {
        sqlx::query_as!($crate::users::UserRecord, $columns + $rest $(, $arg)*)
    };
}

/// A [`UserRecord`] from a `query!` row that selected [`with_user_columns!`] (and more columns, which
/// are left to the caller).
#[macro_export]
macro_rules! user_record_from_row {
    ($row:expr) => {
        $crate::users::UserRecord {
            id: $row.id,
            aud: $row.aud,
            role: $row.role,
            email: $row.email,
            phone: $row.phone,
            encrypted_password: $row.encrypted_password,
            email_confirmed_at: $row.email_confirmed_at,
            phone_confirmed_at: $row.phone_confirmed_at,
            confirmed_at: $row.confirmed_at,
            invited_at: $row.invited_at,
            confirmation_sent_at: $row.confirmation_sent_at,
            recovery_sent_at: $row.recovery_sent_at,
            email_change: $row.email_change,
            email_change_sent_at: $row.email_change_sent_at,
            phone_change: $row.phone_change,
            phone_change_sent_at: $row.phone_change_sent_at,
            reauthentication_token: $row.reauthentication_token,
            reauthentication_sent_at: $row.reauthentication_sent_at,
            last_sign_in_at: $row.last_sign_in_at,
            raw_app_meta_data: $row.raw_app_meta_data,
            raw_user_meta_data: $row.raw_user_meta_data,
            created_at: $row.created_at,
            updated_at: $row.updated_at,
            banned_until: $row.banned_until,
            deleted_at: $row.deleted_at,
            is_sso_user: $row.is_sso_user,
            is_anonymous: $row.is_anonymous,
            identities: $row.identities,
            factors: $row.factors,
        }
    };
}

pub async fn find_by_id<'e>(db: impl sqlx::PgExecutor<'e>, id: Uuid) -> sqlx::Result<Option<UserRecord>> {
    query_user!("FROM users u WHERE u.id = $1", id).fetch_optional(db).await
}

/// GoTrue's `FindUserByEmailAndAudience`: case-insensitive, excluding SSO users.
pub async fn find_by_email<'e>(
    db: impl sqlx::PgExecutor<'e>,
    email: &str,
    aud: &str,
) -> sqlx::Result<Option<UserRecord>> {
    query_user!(
        "FROM users u WHERE u.instance_id = '00000000-0000-0000-0000-000000000000' \
         AND lower(u.email) = lower($1) AND u.aud = $2 AND u.is_sso_user = false LIMIT 1",
        email,
        aud
    )
    .fetch_optional(db)
    .await
}

/// GoTrue's `FindUserByPhoneAndAudience`; `phone` is E.164 digits without `+`.
pub async fn find_by_phone<'e>(
    db: impl sqlx::PgExecutor<'e>,
    phone: &str,
    aud: &str,
) -> sqlx::Result<Option<UserRecord>> {
    query_user!(
        "FROM users u WHERE u.instance_id = '00000000-0000-0000-0000-000000000000' \
         AND u.phone = $1 AND u.aud = $2 AND u.is_sso_user = false LIMIT 1",
        phone,
        aud
    )
    .fetch_optional(db)
    .await
}

impl UserRecord {
    pub fn email(&self) -> &str {
        self.email.as_deref().unwrap_or_default()
    }

    pub fn phone(&self) -> &str {
        self.phone.as_deref().unwrap_or_default()
    }

    pub fn aud(&self) -> &str {
        self.aud.as_deref().unwrap_or_default()
    }

    pub fn role(&self) -> &str {
        self.role.as_deref().unwrap_or_default()
    }

    pub fn app_metadata(&self) -> Map<String, Value> {
        self.raw_app_meta_data.as_ref().map(|j| j.0.clone()).unwrap_or_default()
    }

    pub fn user_metadata(&self) -> Map<String, Value> {
        self.raw_user_meta_data
            .as_ref()
            .map(|j| j.0.clone())
            .unwrap_or_default()
    }

    pub fn is_banned(&self, now: DateTime<Utc>) -> bool {
        self.banned_until.is_some_and(|until| until > now)
    }

    pub fn is_email_confirmed(&self) -> bool {
        self.email_confirmed_at.is_some()
    }

    pub fn is_phone_confirmed(&self) -> bool {
        self.phone_confirmed_at.is_some()
    }

    pub fn has_password(&self) -> bool {
        self.encrypted_password.as_deref().is_some_and(|p| !p.is_empty())
    }

    /// `aal2` when the user has a verified factor (so an `aal1` session could step up).
    pub fn highest_possible_aal(&self) -> &'static str {
        if self.factors.0.iter().any(|f| f.status == "verified") {
            "aal2"
        } else {
            "aal1"
        }
    }

    /// The name GoTrue puts in audit entries: the phone if there is one, else the email.
    pub fn audit_username(&self) -> &str {
        if self.phone().is_empty() {
            self.email()
        } else {
            self.phone()
        }
    }

    pub fn to_proto(&self) -> pb::User {
        pb::User {
            id: self.id.to_string(),
            aud: self.aud().to_string(),
            role: self.role().to_string(),
            email: self.email().to_string(),
            phone: self.phone().to_string(),
            email_confirmed_at: timestamp(self.email_confirmed_at),
            phone_confirmed_at: timestamp(self.phone_confirmed_at),
            confirmed_at: timestamp(self.confirmed_at),
            invited_at: timestamp(self.invited_at),
            confirmation_sent_at: timestamp(self.confirmation_sent_at),
            recovery_sent_at: timestamp(self.recovery_sent_at),
            new_email: self.email_change.clone().unwrap_or_default(),
            email_change_sent_at: timestamp(self.email_change_sent_at),
            new_phone: self.phone_change.clone().unwrap_or_default(),
            phone_change_sent_at: timestamp(self.phone_change_sent_at),
            reauthentication_sent_at: timestamp(self.reauthentication_sent_at),
            last_sign_in_at: timestamp(self.last_sign_in_at),
            app_metadata_json: Value::Object(self.app_metadata()).to_string(),
            user_metadata_json: Value::Object(self.user_metadata()).to_string(),
            factors: self.factors.0.iter().map(FactorRecord::to_proto).collect(),
            identities: self.identities.0.iter().map(IdentityRecord::to_proto).collect(),
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
            banned_until: timestamp(self.banned_until),
            deleted_at: timestamp(self.deleted_at),
            is_anonymous: self.is_anonymous,
        }
    }
}

impl IdentityRecord {
    pub fn to_proto(&self) -> pb::Identity {
        pb::Identity {
            identity_id: self.id.to_string(),
            id: self.provider_id.clone(),
            user_id: self.user_id.to_string(),
            identity_data_json: Value::Object(self.identity_data.clone()).to_string(),
            provider: self.provider.clone(),
            last_sign_in_at: timestamp(self.last_sign_in_at),
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
            email: self.email.clone().unwrap_or_default(),
        }
    }
}

impl FactorRecord {
    pub fn to_proto(&self) -> pb::Factor {
        pb::Factor {
            id: self.id.to_string(),
            created_at: timestamp(Some(self.created_at)),
            updated_at: timestamp(Some(self.updated_at)),
            status: self.status.clone(),
            friendly_name: self.friendly_name.clone().unwrap_or_default(),
            factor_type: self.factor_type.clone(),
            phone: self.phone.clone().unwrap_or_default(),
            last_challenged_at: timestamp(self.last_challenged_at),
        }
    }
}

/// GoTrue's `validatePhone`: E.164 digits without `+` and spaces, as stored; `None` when invalid.
pub fn normalize_phone(phone: &str) -> Option<String> {
    let digits = phone.strip_prefix('+').unwrap_or(phone).replace(' ', "");
    let valid =
        (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
    valid.then_some(digits)
}

pub fn timestamp(at: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    at.map(|at| prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    })
}
