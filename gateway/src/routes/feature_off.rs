//! GoTrue's answers for features that are switched off: SAML (`/sso`, `/sso/saml/*`), manual identity
//! linking (the guard of `/user/identities/*`, whose routes are in `external.rs`) and Web3.
//!
//! Clients (and the official test suites) probe these answers, so they must be GoTrue's even where
//! the suite does not serve the feature yet. Where a feature is switched on but not built here (SAML,
//! Web3 sign-in with an enabled chain), the answer says so plainly instead of pretending it is off.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
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
