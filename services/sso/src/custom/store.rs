//! `custom_oauth_providers`, owned by the sso service: one row per provider an admin added.
//! The client secret column holds what `db_encryption::seal` wrote (GoTrue's format).

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

/// A row as stored.
#[derive(Debug, Clone)]
pub struct CustomProviderRow {
    pub id: Uuid,
    /// `oauth2` or `oidc`
    pub provider_type: String,
    /// `custom:<name>`
    pub identifier: String,
    pub name: String,
    pub client_id: String,
    /// Sealed (encrypted when `GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPT` was on when written).
    pub client_secret: String,
    pub acceptable_client_ids: Vec<String>,
    pub scopes: Vec<String>,
    pub pkce_enabled: bool,
    pub attribute_mapping: Value,
    pub custom_claims_allowlist: Vec<String>,
    pub authorization_params: Value,
    pub enabled: bool,
    pub email_optional: bool,
    pub issuer: Option<String>,
    pub discovery_url: Option<String>,
    pub skip_nonce_check: bool,
    pub cached_discovery: Option<Value>,
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub jwks_uri: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CustomProviderRow {
    pub fn is_oidc(&self) -> bool {
        self.provider_type == "oidc"
    }

    /// GoTrue's `GetDiscoveryURL`: the configured one, else the issuer's well-known document.
    pub fn discovery_url(&self) -> Option<String> {
        let issuer = self.issuer.as_deref().filter(|_| self.is_oidc())?;
        match self.discovery_url.as_deref() {
            Some(url) if !url.is_empty() => Some(url.to_string()),
            _ => Some(format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            )),
        }
    }
}

/// Every statement reads the same columns into [`CustomProviderRow`].
macro_rules! query_provider {
    ($tail:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            CustomProviderRow,
            "SELECT id, provider_type, identifier, name, client_id, client_secret, acceptable_client_ids, \
                    scopes, pkce_enabled, attribute_mapping, custom_claims_allowlist, authorization_params, \
                    enabled, email_optional, issuer, discovery_url, skip_nonce_check, cached_discovery, \
                    authorization_url, token_url, userinfo_url, jwks_uri, created_at, updated_at \
             FROM custom_oauth_providers " + $tail
            $(, $arg)*
        )
    };
}

pub async fn find(db: &sqlx::PgPool, identifier: &str) -> Result<Option<CustomProviderRow>, sqlx::Error> {
    query_provider!("WHERE identifier = $1", identifier)
        .fetch_optional(db)
        .await
}

/// Newest first, optionally of one type.
pub async fn list(db: &sqlx::PgPool, provider_type: Option<&str>) -> Result<Vec<CustomProviderRow>, sqlx::Error> {
    query_provider!(
        "WHERE $1::text IS NULL OR provider_type = $1 ORDER BY created_at DESC",
        provider_type
    )
    .fetch_all(db)
    .await
}

pub async fn count(db: &sqlx::PgPool) -> Result<i64, sqlx::Error> {
    let count = sqlx::query_scalar!("SELECT count(*) FROM custom_oauth_providers")
        .fetch_one(db)
        .await?;
    Ok(count.unwrap_or_default())
}

/// Inserts the row; `false` when its identifier is taken.
pub async fn insert(db: &sqlx::PgPool, row: &CustomProviderRow) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query!(
        "INSERT INTO custom_oauth_providers (id, provider_type, identifier, name, client_id, client_secret, \
             acceptable_client_ids, scopes, pkce_enabled, attribute_mapping, custom_claims_allowlist, \
             authorization_params, enabled, email_optional, issuer, discovery_url, skip_nonce_check, \
             cached_discovery, discovery_cached_at, authorization_url, token_url, userinfo_url, jwks_uri, \
             created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
             CASE WHEN $18::jsonb IS NULL THEN NULL ELSE now() END, $19, $20, $21, $22, $23, $23) \
         ON CONFLICT (identifier) DO NOTHING",
        row.id,
        row.provider_type,
        row.identifier,
        row.name,
        row.client_id,
        row.client_secret,
        &row.acceptable_client_ids,
        &row.scopes,
        row.pkce_enabled,
        row.attribute_mapping,
        &row.custom_claims_allowlist,
        row.authorization_params,
        row.enabled,
        row.email_optional,
        row.issuer,
        row.discovery_url,
        row.skip_nonce_check,
        row.cached_discovery,
        row.authorization_url,
        row.token_url,
        row.userinfo_url,
        row.jwks_uri,
        row.created_at,
    )
    .execute(db)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Writes every changeable column of the row (GoTrue's `UpdateCustomOAuthProvider`); `false` when
/// the row is gone.
pub async fn update(
    db: &sqlx::PgPool,
    row: &CustomProviderRow,
    discovery_refreshed: bool,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query!(
        "UPDATE custom_oauth_providers SET name = $2, client_id = $3, client_secret = $4, \
             acceptable_client_ids = $5, scopes = $6, pkce_enabled = $7, attribute_mapping = $8, \
             custom_claims_allowlist = $9, authorization_params = $10, enabled = $11, email_optional = $12, \
             issuer = $13, discovery_url = $14, skip_nonce_check = $15, cached_discovery = $16, \
             discovery_cached_at = CASE WHEN $17 THEN now() ELSE discovery_cached_at END, \
             authorization_url = $18, token_url = $19, userinfo_url = $20, jwks_uri = $21, updated_at = $22 \
         WHERE id = $1",
        row.id,
        row.name,
        row.client_id,
        row.client_secret,
        &row.acceptable_client_ids,
        &row.scopes,
        row.pkce_enabled,
        row.attribute_mapping,
        &row.custom_claims_allowlist,
        row.authorization_params,
        row.enabled,
        row.email_optional,
        row.issuer,
        row.discovery_url,
        row.skip_nonce_check,
        row.cached_discovery,
        discovery_refreshed,
        row.authorization_url,
        row.token_url,
        row.userinfo_url,
        row.jwks_uri,
        row.updated_at,
    )
    .execute(db)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// The deleted row's issuer, if a row was deleted.
pub async fn delete(db: &sqlx::PgPool, identifier: &str) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar!(
        "DELETE FROM custom_oauth_providers WHERE identifier = $1 RETURNING issuer",
        identifier
    )
    .fetch_optional(db)
    .await
}
