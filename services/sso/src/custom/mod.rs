//! Custom OAuth 2.0 / OIDC providers (GoTrue v2.196's `custom_oauth_providers`): an admin adds
//! them at run time through `/admin/custom-providers` (`admin.rs`), and users sign in with them as
//! `custom:<name>` through `/authorize` and, for OIDC providers, `grant_type=id_token`.
//!
//! A provider is loaded from its row on each use (one indexed read): a change by any replica's
//! admin call is seen at once by every replica. OIDC discovery documents and keys go through the
//! shared [`crate::oidc::OidcCache`].

mod admin;
mod checks;
pub mod mapping;
pub mod store;
mod url_guard;

use auth_core::ServiceError;
use serde_json::Value;

use crate::providers::custom::CustomSettings;
use crate::providers::{Endpoints, Provider};
use crate::state::SsoState;
use store::CustomProviderRow;

/// Names of custom providers start with this.
pub const PREFIX: &str = "custom:";

/// An OIDC provider's scopes always include `openid` (GoTrue adds it first).
fn with_openid(mut scopes: Vec<String>) -> Vec<String> {
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    scopes
}

/// A JSON object column as key/value pairs of its string values (the authorization parameters).
fn string_pairs(object: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = object
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| value.as_str().map(|v| (key.clone(), v.to_string())))
        .collect();
    pairs.sort();
    pairs
}

impl SsoState {
    pub(crate) async fn find_custom_provider(
        &self,
        identifier: &str,
    ) -> Result<Option<CustomProviderRow>, ServiceError> {
        Ok(store::find(&self.db, identifier).await?)
    }

    /// The provider's client secret in the clear.
    fn custom_client_secret(&self, row: &CustomProviderRow) -> Result<String, String> {
        auth_account::db_encryption::open(
            &self.config.security.db_encryption,
            &row.id.to_string(),
            &row.client_secret,
        )
        .map_err(|e| format!("error decrypting client secret for provider {}: {e}", row.identifier))
    }

    /// GoTrue's `loadCustomProvider`; the error text is what follows "Unsupported provider: ".
    /// `scopes` (space-separated) replace the provider's own when given.
    pub(crate) async fn custom_provider(&self, identifier: &str, scopes: &str) -> Result<Provider, String> {
        if !self.config.custom_oauth.enabled {
            return Err("custom OAuth providers are disabled".into());
        }
        let row = self
            .find_custom_provider(identifier)
            .await
            .map_err(|e| format!("error finding custom provider: {e}"))?
            .ok_or_else(|| format!("custom provider {identifier} not found"))?;
        if !row.enabled {
            return Err(format!("custom provider {identifier} is disabled"));
        }
        let secret = self.custom_client_secret(&row)?;
        let external_url = match &self.config.custom_oauth.external_url {
            Some(url) => url.clone(),
            None => self.config.api.external_url.as_str().to_string(),
        };
        let redirect_uri = format!("{}/callback", external_url.trim_end_matches('/'));
        let asked: Vec<String> = scopes.split_whitespace().map(str::to_string).collect();
        let scopes = if asked.is_empty() { row.scopes.clone() } else { asked };

        let mut settings = CustomSettings {
            identifier: row.identifier.clone(),
            oidc_issuer: None,
            userinfo_url: row.userinfo_url.clone(),
            acceptable_client_ids: row.acceptable_client_ids.clone(),
            attribute_mapping: row.attribute_mapping.as_object().cloned().unwrap_or_default(),
            custom_claims_allowlist: row.custom_claims_allowlist.clone(),
            authorization_params: string_pairs(&row.authorization_params),
            pkce_enabled: row.pkce_enabled,
        };
        let (endpoints, scopes) = if row.is_oidc() {
            let issuer = row
                .issuer
                .clone()
                .ok_or_else(|| format!("OIDC provider {identifier} missing issuer"))?;
            let discovery_url = row.discovery_url().unwrap_or_default();
            let failed = |e: String| {
                format!(
                    "error creating OIDC provider: failed to create OIDC provider: oidc: discovery request to {discovery_url} failed: {e}"
                )
            };
            // As GoTrue, the guard is applied again whenever the discovery document is fetched (the
            // name may point elsewhere by now); a cached document needs no lookup.
            if !self.oidc.is_fresh(&issuer) {
                url_guard::check(&discovery_url, self.config.custom_oauth.allow_private_networks)
                    .await
                    .map_err(|e| failed(format!("{}: {}", e.http_status, e.message)))?;
            }
            let discovered = self
                .oidc
                .issuer_at(&issuer, &discovery_url)
                .await
                .map_err(|e| failed(e.to_string()))?;
            settings.userinfo_url = discovered.discovery.userinfo_endpoint.clone();
            settings.oidc_issuer = Some(issuer);
            let endpoints = Endpoints {
                authorize: discovered.discovery.authorization_endpoint.clone(),
                token: discovered.discovery.token_endpoint.clone(),
                api: String::new(),
            };
            (endpoints, with_openid(scopes))
        } else {
            let (Some(authorize), Some(token), Some(_)) = (&row.authorization_url, &row.token_url, &row.userinfo_url)
            else {
                return Err(format!("OAuth2 provider {identifier} missing required endpoints"));
            };
            let endpoints = Endpoints {
                authorize: authorize.clone(),
                token: token.clone(),
                api: String::new(),
            };
            (endpoints, scopes)
        };
        Provider::build_custom(
            (row.client_id.clone(), secret),
            &redirect_uri,
            scopes,
            &endpoints,
            row.email_optional,
            settings,
        )
    }
}
