//! GoTrue's answers for features that are switched off: SAML (`/sso`, `/sso/saml/*`), manual identity
//! linking (the guard of `/user/identities/*`, whose routes are in `external.rs`), Web3 and
//! `id_token` sign-in for providers that are not enabled.
//!
//! Clients (and the official test suites) probe these answers, so they must be GoTrue's even where
//! the suite does not serve the feature yet. Where a feature is switched on but not built here (SAML,
//! id_token and Web3 sign-in with an enabled provider), the answer says so plainly instead of
//! pretending it is off.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use auth_core::ErrorCode;
use auth_proto::user::v1::GetUserRequest;

use super::with_authorization;
use crate::AppState;
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sso", post(saml_route))
        .route("/sso/saml/metadata", get(saml_route))
        .route("/sso/saml/acs", post(saml_route))
}

/// Not built yet, although the operator switched it on.
fn not_served(feature: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::FeatureDisabled,
        format!("{feature} is not available on this server yet"),
    )
}

/// GoTrue's `requireSAMLEnabled`, which guards every `/sso` route.
async fn saml_route(State(state): State<AppState>) -> ApiError {
    if state.config.saml.enabled {
        not_served("SAML 2.0")
    } else {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::SamlProviderDisabled,
            "SAML 2.0 is disabled",
        )
    }
}

/// GoTrue's `requireAuthentication` (done by the user service, which verifies the token and loads
/// its user and session) followed by `requireManualLinkingEnabled`, which guard `/user/identities/*`.
pub(super) async fn require_manual_linking(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    require_authentication(state, headers).await?;
    if state.config.security.manual_linking_enabled {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ManualLinkingDisabled,
            "Manual linking is disabled",
        ))
    }
}

async fn require_authentication(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    state
        .clients
        .user
        .clone()
        .get_user(with_authorization(headers, GetUserRequest { context: None }))
        .await?;
    Ok(())
}

/// GoTrue's `Web3Grant` up to the switch checks.
pub(super) fn web3_grant(state: &AppState, body: &Value) -> ApiError {
    let external = &state.config.external;
    let disabled = |message: &str| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Web3ProviderDisabled,
            message,
        )
    };
    if !external.web3_solana_enabled && !external.web3_ethereum_enabled {
        return disabled("Web3 provider is disabled");
    }
    match body.get("chain").and_then(Value::as_str).unwrap_or_default() {
        "solana" if !external.web3_solana_enabled => disabled("Solana Web3 provider is disabled"),
        "ethereum" if !external.web3_ethereum_enabled => disabled("Ethereum Web3 provider is disabled"),
        "solana" | "ethereum" => not_served("Web3 sign-in"),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::Web3UnsupportedChain,
            "Unsupported chain",
        ),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IdTokenGrantBody {
    id_token: String,
    provider: String,
    client_id: String,
    issuer: String,
}

const APPLE_ISSUERS: [&str; 2] = ["https://appleid.apple.com", "https://account.apple.com"];

/// GoTrue's `IdTokenGrant` and `getProvider` up to the "is the provider enabled" check, with their
/// parameter errors: an OAuth-style 400 for missing parameters, `validation_failed` for issuers that
/// are not allowed, `provider_disabled` for providers that are switched off.
pub(super) fn id_token_grant(state: &AppState, body: Value) -> Response {
    let params: IdTokenGrantBody = serde_json::from_value(body).unwrap_or_default();
    if params.id_token.is_empty() {
        return super::token::oauth_error("invalid request", "id_token required");
    }
    if params.provider.is_empty() && (params.client_id.is_empty() || params.issuer.is_empty()) {
        return super::token::oauth_error("invalid request", "provider or client_id and issuer required");
    }
    let token_issuer = unverified_issuer(&params.id_token);
    let validation = |message: String| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::ValidationFailed, message);
    let provider_key_and_issuer: Result<(&str, String), ApiError> = match params.provider.as_str() {
        p if p == "apple" || APPLE_ISSUERS.contains(&params.issuer.as_str()) => match token_issuer {
            Some(issuer) if APPLE_ISSUERS.contains(&issuer.as_str()) => Ok(("apple", issuer)),
            Some(_) => Err(validation(
                "Detected ID token issuer is not an Apple ID token issuer".into(),
            )),
            None => Err(validation(
                "Unable to detect issuer in ID token for Apple provider".into(),
            )),
        },
        p if p == "google" || params.issuer == "https://accounts.google.com" => {
            Ok(("google", "https://accounts.google.com".into()))
        }
        p if p == "azure" || params.issuer.starts_with("https://login.microsoftonline.com/") => match token_issuer {
            Some(issuer)
                if issuer.starts_with("https://login.microsoftonline.com/")
                    || issuer.starts_with("https://sts.windows.net/") =>
            {
                Ok(("azure", issuer))
            }
            Some(_) => Err(validation(
                "Detected ID token issuer is not an Azure ID token issuer".into(),
            )),
            None => Err(validation(
                "Unable to detect issuer in ID token for Azure provider".into(),
            )),
        },
        p if p == "facebook" || params.issuer == "https://www.facebook.com" => {
            Ok(("facebook", "https://www.facebook.com".into()))
        }
        "keycloak" => Ok((
            "keycloak",
            state
                .config
                .external
                .providers
                .get("keycloak")
                .and_then(|p| p.url.clone())
                .unwrap_or_default(),
        )),
        p if p == "kakao" || params.issuer == "https://kauth.kakao.com" => {
            Ok(("kakao", "https://kauth.kakao.com".into()))
        }
        p if p == "vercel_marketplace" || params.issuer == "https://marketplace.vercel.com" => {
            Ok(("vercel_marketplace", "https://marketplace.vercel.com".into()))
        }
        p if p == "snapchat" || params.issuer == "https://accounts.snapchat.com/accounts/oauth2/token" => {
            Ok(("snapchat", "https://accounts.snapchat.com/accounts/oauth2/token".into()))
        }
        p if p.starts_with("custom:") => Err(validation("Custom OAuth providers are disabled".into())),
        _ if state.config.external.allowed_id_token_issuers.contains(&params.issuer) => {
            return not_served("Sign-in with an ID token").into_response();
        }
        p => Err(validation(format!("Custom OIDC provider {} not allowed", go_quote(p)))),
    };
    match provider_key_and_issuer {
        Err(error) => error.into_response(),
        Ok((key, issuer)) if !state.config.provider_enabled(key) => ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::ProviderDisabled,
            format!("Provider (issuer {}) is not enabled", go_quote(&issuer)),
        )
        .into_response(),
        Ok(_) => not_served("Sign-in with an ID token").into_response(),
    }
}

/// The `iss` claim of a JWT, read without verifying it (only to pick the provider, as GoTrue does).
fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

/// Go's `%q` for the strings that appear here (JSON string quoting matches it for printable text).
fn go_quote(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}
