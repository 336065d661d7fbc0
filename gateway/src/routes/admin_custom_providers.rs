//! `/admin/custom-providers` and `/admin/custom-providers/{identifier}`: custom OAuth 2.0 / OIDC
//! providers, kept by the sso service (GoTrue v2.196's `custom_oauth_admin.go`).

use auth_proto::sso::v1::{CustomProviderParams, CustomProviderRef, ListCustomProvidersRequest, StringList};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::with_authorization;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::AppJson;
use crate::render;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/custom-providers", get(list).post(create))
        .route(
            "/admin/custom-providers/{identifier}",
            get(read).put(update).delete(remove),
        )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListQuery {
    r#type: String,
}

async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = ListCustomProvidersRequest {
        provider_type: query.r#type,
    };
    let listed = state
        .clients
        .sso
        .clone()
        .list_custom_providers(with_authorization(&headers, request))
        .await?
        .into_inner();
    let providers: Vec<Value> = listed.providers.iter().map(render::custom_provider).collect();
    Ok(axum::Json(json!({ "providers": providers })).into_response())
}

async fn read(
    State(state): State<AppState>,
    Path(identifier): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let provider = state
        .clients
        .sso
        .clone()
        .get_custom_provider(with_authorization(&headers, CustomProviderRef { identifier }))
        .await?
        .into_inner();
    Ok(axum::Json(render::custom_provider(&provider)).into_response())
}

/// GoTrue's `AdminCustomOAuthProviderParams`. Lists and maps keep `null`/absent apart from empty,
/// since an update changes only what is given.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProviderBody {
    provider_type: String,
    identifier: String,
    name: String,
    client_id: String,
    client_secret: String,
    acceptable_client_ids: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    pkce_enabled: Option<bool>,
    attribute_mapping: Option<Map<String, Value>>,
    custom_claims_allowlist: Option<Vec<String>>,
    authorization_params: Option<Map<String, Value>>,
    enabled: Option<bool>,
    email_optional: Option<bool>,
    issuer: String,
    discovery_url: Option<String>,
    skip_nonce_check: Option<bool>,
    authorization_url: String,
    token_url: String,
    userinfo_url: String,
    jwks_uri: Option<String>,
}

impl ProviderBody {
    fn into_params(self) -> CustomProviderParams {
        let list = |values: Option<Vec<String>>| values.map(|values| StringList { values });
        let object = |map: Option<Map<String, Value>>| map.map(|map| Value::Object(map).to_string());
        CustomProviderParams {
            identifier: self.identifier,
            provider_type: self.provider_type,
            name: self.name,
            client_id: self.client_id,
            client_secret: self.client_secret,
            acceptable_client_ids: list(self.acceptable_client_ids),
            scopes: list(self.scopes),
            pkce_enabled: self.pkce_enabled,
            attribute_mapping_json: object(self.attribute_mapping),
            custom_claims_allowlist: list(self.custom_claims_allowlist),
            authorization_params_json: object(self.authorization_params),
            enabled: self.enabled,
            email_optional: self.email_optional,
            issuer: self.issuer,
            discovery_url: self.discovery_url.unwrap_or_default(),
            skip_nonce_check: self.skip_nonce_check,
            authorization_url: self.authorization_url,
            token_url: self.token_url,
            userinfo_url: self.userinfo_url,
            jwks_uri: self.jwks_uri.unwrap_or_default(),
        }
    }
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<AppJson<ProviderBody>, ApiError>,
) -> Result<Response, ApiError> {
    let AppJson(body) = body?;
    let provider = state
        .clients
        .sso
        .clone()
        .create_custom_provider(with_authorization(&headers, body.into_params()))
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, axum::Json(render::custom_provider(&provider))).into_response())
}

async fn update(
    State(state): State<AppState>,
    Path(identifier): Path<String>,
    headers: HeaderMap,
    body: Result<AppJson<ProviderBody>, ApiError>,
) -> Result<Response, ApiError> {
    let AppJson(body) = body?;
    // The path names the provider; a body's identifier or type cannot move or retype it.
    let params = CustomProviderParams {
        identifier,
        provider_type: String::new(),
        ..body.into_params()
    };
    let provider = state
        .clients
        .sso
        .clone()
        .update_custom_provider(with_authorization(&headers, params))
        .await?
        .into_inner();
    Ok(axum::Json(render::custom_provider(&provider)).into_response())
}

async fn remove(
    State(state): State<AppState>,
    Path(identifier): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state
        .clients
        .sso
        .clone()
        .delete_custom_provider(with_authorization(&headers, CustomProviderRef { identifier }))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
