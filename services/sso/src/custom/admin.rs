//! `/admin/custom-providers` (GoTrue's `custom_oauth_admin.go`): list, read, create, update and
//! delete custom providers, with GoTrue's checks and messages (`checks.rs`), the SSRF guard on
//! their URLs (`url_guard.rs`) and the discovery document checked before anything is stored.

use auth_core::{ErrorCode, ServiceError};
use auth_proto::sso::v1 as pb;
use chrono::{SubsecRound, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::checks::{
    check_allowlist, check_attribute_mapping, check_authorization_params, check_lengths, checked_identifier,
    identifier_fits_schema, invalid, json_object,
};
use super::store::{self, CustomProviderRow};
use super::{url_guard, with_openid};
use crate::state::SsoState;

fn not_found() -> ServiceError {
    ServiceError::not_found(ErrorCode::CustomProviderNotFound, "Custom OAuth provider not found")
}

fn list_values(list: &Option<pb::StringList>) -> Option<Vec<String>> {
    list.as_ref().map(|l| l.values.clone())
}

fn some_text(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

/// The discovery document fields GoTrue keeps (`models.OIDCDiscovery`), in its order.
#[derive(serde::Serialize, serde::Deserialize)]
struct DiscoveryDocument {
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    authorization_endpoint: String,
    #[serde(default)]
    token_endpoint: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    userinfo_endpoint: String,
    #[serde(default)]
    jwks_uri: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    scopes_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    response_types_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    grant_types_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    subject_types_supported: Vec<String>,
}

impl CustomProviderRow {
    pub fn to_proto(&self) -> pb::CustomProvider {
        let timestamp = |at: chrono::DateTime<Utc>| prost_types::Timestamp {
            seconds: at.timestamp(),
            nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or_default(),
        };
        pb::CustomProvider {
            id: self.id.to_string(),
            provider_type: self.provider_type.clone(),
            identifier: self.identifier.clone(),
            name: self.name.clone(),
            client_id: self.client_id.clone(),
            acceptable_client_ids: self.acceptable_client_ids.clone(),
            scopes: self.scopes.clone(),
            pkce_enabled: self.pkce_enabled,
            attribute_mapping_json: self.attribute_mapping.to_string(),
            custom_claims_allowlist: self.custom_claims_allowlist.clone(),
            authorization_params_json: self.authorization_params.to_string(),
            enabled: self.enabled,
            email_optional: self.email_optional,
            issuer: self.issuer.clone(),
            discovery_url: self.discovery_url.clone(),
            skip_nonce_check: self.skip_nonce_check,
            discovery_document_json: self.cached_discovery.as_ref().map(Value::to_string).unwrap_or_default(),
            authorization_url: self.authorization_url.clone(),
            token_url: self.token_url.clone(),
            userinfo_url: self.userinfo_url.clone(),
            jwks_uri: self.jwks_uri.clone(),
            created_at: Some(timestamp(self.created_at)),
            updated_at: Some(timestamp(self.updated_at)),
        }
    }
}

impl SsoState {
    fn require_custom_oauth(&self) -> Result<(), ServiceError> {
        if self.config.custom_oauth.enabled {
            Ok(())
        } else {
            Err(ServiceError::not_found(
                ErrorCode::FeatureDisabled,
                "Custom OAuth providers are disabled",
            ))
        }
    }

    async fn check_url(&self, url: &str) -> Result<(), ServiceError> {
        url_guard::check(url, self.config.custom_oauth.allow_private_networks).await
    }

    /// GoTrue's `fetchAndValidateDiscovery`: the document must name the issuer and the endpoints
    /// sign-in needs, or the provider is refused now rather than failing at a user's sign-in.
    async fn fetch_discovery(&self, discovery_url: &str, issuer: &str) -> Result<Value, ServiceError> {
        let failed = |e: String| {
            invalid(format!(
                "OIDC discovery from {} failed: {e}",
                Value::String(discovery_url.into())
            ))
        };
        let document: DiscoveryDocument = self
            .http
            .get_json(discovery_url, "", &[])
            .await
            .map_err(|e| failed(format!("oidc: discovery request to {discovery_url} failed: {e}")))?;
        if document.issuer != issuer {
            return Err(failed(format!(
                "oidc: issuer mismatch, expected {} got {}",
                Value::String(issuer.into()),
                Value::String(document.issuer.clone())
            )));
        }
        let missing: Vec<&str> = [
            ("issuer", &document.issuer),
            ("authorization_endpoint", &document.authorization_endpoint),
            ("token_endpoint", &document.token_endpoint),
            ("jwks_uri", &document.jwks_uri),
        ]
        .into_iter()
        .filter(|(_, value)| value.is_empty())
        .map(|(name, _)| name)
        .collect();
        if !missing.is_empty() {
            return Err(invalid(format!(
                "OIDC discovery document is missing required fields: {}",
                missing.join(", ")
            )));
        }
        serde_json::to_value(&document).map_err(ServiceError::internal)
    }

    pub async fn list_custom_providers(&self, provider_type: &str) -> Result<Vec<pb::CustomProvider>, ServiceError> {
        self.require_custom_oauth()?;
        let filter = match provider_type {
            "" => None,
            "oauth2" | "oidc" => Some(provider_type),
            _ => return Err(invalid("type must be either 'oauth2' or 'oidc'")),
        };
        let rows = store::list(&self.db, filter).await?;
        Ok(rows.iter().map(CustomProviderRow::to_proto).collect())
    }

    pub async fn get_custom_provider(&self, identifier: &str) -> Result<pb::CustomProvider, ServiceError> {
        self.require_custom_oauth()?;
        checked_identifier(identifier)?;
        let row = self.find_custom_provider(identifier).await?.ok_or_else(not_found)?;
        Ok(row.to_proto())
    }

    pub async fn create_custom_provider(
        &self,
        params: pb::CustomProviderParams,
    ) -> Result<pb::CustomProvider, ServiceError> {
        self.require_custom_oauth()?;
        let oidc = match params.provider_type.as_str() {
            "oidc" => true,
            "oauth2" => false,
            _ => return Err(invalid("provider_type must be either 'oauth2' or 'oidc'")),
        };
        checked_identifier(&params.identifier)?;
        for (value, name) in [
            (&params.name, "name"),
            (&params.client_id, "client_id"),
            (&params.client_secret, "client_secret"),
        ] {
            if value.is_empty() {
                return Err(invalid(format!("{name} is required")));
            }
        }
        if oidc && params.issuer.is_empty() {
            return Err(invalid("issuer is required for OIDC providers"));
        }
        if !oidc {
            for (value, name) in [
                (&params.authorization_url, "authorization_url"),
                (&params.token_url, "token_url"),
                (&params.userinfo_url, "userinfo_url"),
            ] {
                if value.is_empty() {
                    return Err(invalid(format!("{name} is required for OAuth2 providers")));
                }
            }
        }
        if !identifier_fits_schema(&params.identifier) {
            return Err(invalid(
                "identifier must be 'custom:' and a name of lower-case letters, digits, ':' or '-', 2 to 50 characters in all",
            ));
        }
        let authorization_params = json_object(
            params.authorization_params_json.as_deref().unwrap_or("{}"),
            "authorization_params",
        )?;
        check_authorization_params(&authorization_params)?;
        let attribute_mapping = json_object(
            params.attribute_mapping_json.as_deref().unwrap_or("{}"),
            "attribute_mapping",
        )?;
        check_attribute_mapping(&attribute_mapping)?;
        let allowlist = list_values(&params.custom_claims_allowlist).unwrap_or_default();
        check_allowlist(&allowlist)?;

        let max = self.config.custom_oauth.max_providers;
        if max > 0 && u64::try_from(store::count(&self.db).await?).unwrap_or(u64::MAX) >= max {
            return Err(ServiceError::bad_request(
                ErrorCode::OverCustomProviderQuota,
                "Maximum number of custom OAuth/OIDC providers reached",
            ));
        }
        let urls: Vec<&str> = if oidc {
            [params.issuer.as_str(), params.discovery_url.as_str()].to_vec()
        } else {
            [
                params.authorization_url.as_str(),
                params.token_url.as_str(),
                params.userinfo_url.as_str(),
                params.jwks_uri.as_str(),
            ]
            .to_vec()
        };
        check_lengths(Some(&params.name), Some(&params.client_id), &urls)?;
        for url in urls.iter().filter(|u| !u.is_empty()) {
            self.check_url(url).await?;
        }
        if self.find_custom_provider(&params.identifier).await?.is_some() {
            return Err(ServiceError::bad_request(
                ErrorCode::Conflict,
                "A custom OAuth provider with this identifier already exists",
            ));
        }

        // Postgres keeps microseconds: answer what later reads will show.
        let now = Utc::now().trunc_subsecs(6);
        let scopes = list_values(&params.scopes).unwrap_or_default();
        let mut row = CustomProviderRow {
            id: Uuid::new_v4(),
            provider_type: params.provider_type.clone(),
            identifier: params.identifier.clone(),
            name: params.name.clone(),
            client_id: params.client_id.clone(),
            client_secret: String::new(),
            acceptable_client_ids: list_values(&params.acceptable_client_ids).unwrap_or_default(),
            scopes: if oidc { with_openid(scopes) } else { scopes },
            pkce_enabled: params.pkce_enabled.unwrap_or(true),
            attribute_mapping: Value::Object(attribute_mapping),
            custom_claims_allowlist: allowlist,
            authorization_params: Value::Object(authorization_params),
            enabled: params.enabled.unwrap_or(true),
            email_optional: params.email_optional.unwrap_or(false),
            issuer: oidc.then(|| params.issuer.clone()),
            discovery_url: if oidc { some_text(&params.discovery_url) } else { None },
            skip_nonce_check: oidc && params.skip_nonce_check.unwrap_or(false),
            cached_discovery: None,
            authorization_url: if oidc {
                None
            } else {
                some_text(&params.authorization_url)
            },
            token_url: if oidc { None } else { some_text(&params.token_url) },
            userinfo_url: if oidc { None } else { some_text(&params.userinfo_url) },
            jwks_uri: if oidc { None } else { some_text(&params.jwks_uri) },
            created_at: now,
            updated_at: now,
        };
        if let Some(discovery_url) = row.discovery_url() {
            row.cached_discovery = Some(self.fetch_discovery(&discovery_url, &params.issuer).await?);
        }
        row.client_secret = auth_account::db_encryption::seal(
            &self.config.security.db_encryption,
            &row.id.to_string(),
            &params.client_secret,
        )
        .map_err(ServiceError::internal)?;
        if !store::insert(&self.db, &row).await? {
            // Another admin call created it since the check above.
            return Err(ServiceError::bad_request(
                ErrorCode::Conflict,
                "A custom OAuth provider with this identifier already exists",
            ));
        }
        Ok(row.to_proto())
    }

    pub async fn update_custom_provider(
        &self,
        params: pb::CustomProviderParams,
    ) -> Result<pb::CustomProvider, ServiceError> {
        self.require_custom_oauth()?;
        checked_identifier(&params.identifier)?;
        let authorization_params = params
            .authorization_params_json
            .as_deref()
            .map(|text| json_object(text, "authorization_params"))
            .transpose()?;
        if let Some(params) = &authorization_params {
            check_authorization_params(params)?;
        }
        let attribute_mapping = params
            .attribute_mapping_json
            .as_deref()
            .map(|text| json_object(text, "attribute_mapping"))
            .transpose()?;
        if let Some(mapping) = &attribute_mapping {
            check_attribute_mapping(mapping)?;
        }
        let allowlist = list_values(&params.custom_claims_allowlist);
        if let Some(allowlist) = &allowlist {
            check_allowlist(allowlist)?;
        }
        let mut row = self
            .find_custom_provider(&params.identifier)
            .await?
            .ok_or_else(not_found)?;
        let old_issuer = row.issuer.clone();

        let name = some_text(&params.name);
        let client_id = some_text(&params.client_id);
        check_lengths(
            name.as_deref(),
            client_id.as_deref(),
            &[
                &params.issuer,
                &params.discovery_url,
                &params.authorization_url,
                &params.token_url,
                &params.userinfo_url,
                &params.jwks_uri,
            ],
        )?;
        if let Some(name) = name {
            row.name = name;
        }
        if let Some(client_id) = client_id {
            row.client_id = client_id;
        }
        if let Some(ids) = list_values(&params.acceptable_client_ids) {
            row.acceptable_client_ids = ids;
        }
        if let Some(scopes) = list_values(&params.scopes) {
            row.scopes = if row.is_oidc() { with_openid(scopes) } else { scopes };
        }
        if let Some(pkce) = params.pkce_enabled {
            row.pkce_enabled = pkce;
        }
        if let Some(mapping) = attribute_mapping {
            row.attribute_mapping = Value::Object(mapping);
        }
        if let Some(allowlist) = allowlist {
            row.custom_claims_allowlist = allowlist;
        }
        if let Some(params) = authorization_params {
            row.authorization_params = Value::Object(params);
        }
        if let Some(enabled) = params.enabled {
            row.enabled = enabled;
        }
        if let Some(optional) = params.email_optional {
            row.email_optional = optional;
        }
        // Only the URLs of the provider's own type apply; each is checked as on creation.
        let fields: Vec<(&String, &mut Option<String>)> = if row.is_oidc() {
            vec![
                (&params.issuer, &mut row.issuer),
                (&params.discovery_url, &mut row.discovery_url),
            ]
        } else {
            vec![
                (&params.authorization_url, &mut row.authorization_url),
                (&params.token_url, &mut row.token_url),
                (&params.userinfo_url, &mut row.userinfo_url),
                (&params.jwks_uri, &mut row.jwks_uri),
            ]
        };
        for (given, column) in fields {
            if !given.is_empty() {
                url_guard::check(given, self.config.custom_oauth.allow_private_networks).await?;
                *column = Some(given.clone());
            }
        }
        if row.is_oidc()
            && let Some(skip) = params.skip_nonce_check
        {
            row.skip_nonce_check = skip;
        }
        let rediscover = row.is_oidc() && (!params.issuer.is_empty() || !params.discovery_url.is_empty());
        if rediscover && let (Some(url), Some(issuer)) = (row.discovery_url(), row.issuer.clone()) {
            row.cached_discovery = Some(self.fetch_discovery(&url, &issuer).await?);
        }
        if !params.client_secret.is_empty() {
            row.client_secret = auth_account::db_encryption::seal(
                &self.config.security.db_encryption,
                &row.id.to_string(),
                &params.client_secret,
            )
            .map_err(ServiceError::internal)?;
        }
        row.updated_at = Utc::now().trunc_subsecs(6);
        if !store::update(&self.db, &row, rediscover).await? {
            return Err(not_found());
        }
        // This replica forgets the old discovery at once; others within the cache's TTL.
        for issuer in [old_issuer, row.issuer.clone()].into_iter().flatten() {
            self.oidc.invalidate(&issuer);
        }
        Ok(row.to_proto())
    }

    pub async fn delete_custom_provider(&self, identifier: &str) -> Result<(), ServiceError> {
        self.require_custom_oauth()?;
        checked_identifier(identifier)?;
        let issuer = store::delete(&self.db, identifier).await?.ok_or_else(not_found)?;
        if let Some(issuer) = issuer {
            self.oidc.invalidate(&issuer);
        }
        Ok(())
    }
}
