//! Passkeys (GoTrue's `/passkeys` routes and the admin's `/admin/users/{user_id}/passkeys`), served
//! by the mfa process's `PasskeyService`.
//!
//! As in GoTrue, every `/passkeys` route first answers 404 `passkey_disabled` when
//! `GOTRUE_PASSKEY_ENABLED` is off (before the caller or the rate limit is looked at); the sign-in
//! options are limited per IP by `GOTRUE_RATE_LIMIT_PASSKEY`. The options routes read no body.

use auth_core::ErrorCode;
use auth_proto::mfa::v1::{
    PasskeyCeremony, PasskeyOptionsRequest, PasskeyRef, PasskeyVerifyRequest, RenamePasskeyRequest,
};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::{rate_limit, request_context, with_authorization};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::AppJson;
use crate::middleware::RequestId;
use crate::rate_limit::Limiter;
use crate::render;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/passkeys", get(list))
        .route("/passkeys/{passkey_id}", patch(rename).delete(remove))
        .route("/passkeys/registration/options", post(registration_options))
        .route("/passkeys/registration/verify", post(registration_verify))
        .route("/passkeys/authentication/options", post(authentication_options))
        .route("/passkeys/authentication/verify", post(authentication_verify))
        .route("/admin/users/{user_id}/passkeys", get(admin_list))
        .route("/admin/users/{user_id}/passkeys/{passkey_id}", delete(admin_delete))
}

/// GoTrue's `requirePasskeyEnabled`.
fn require_passkeys(state: &AppState) -> Result<(), ApiError> {
    if state.config.passkey_enabled {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::PasskeyDisabled,
            "Passkeys are disabled",
        ))
    }
}

fn options_request(headers: &HeaderMap, request_id: Option<&RequestId>) -> PasskeyOptionsRequest {
    PasskeyOptionsRequest {
        context: Some(request_context(headers, request_id)),
    }
}

/// `{challenge_id, options, expires_at}`
fn ceremony(started: &PasskeyCeremony) -> Result<Response, ApiError> {
    let options: Value = serde_json::from_str(&started.options_json).map_err(|error| {
        tracing::error!(%error, "the mfa service's passkey options are not JSON");
        ApiError::unexpected()
    })?;
    Ok(axum::Json(json!({
        "challenge_id": started.challenge_id,
        "options": options,
        "expires_at": started.expires_at,
    }))
    .into_response())
}

/// A present `credential`, `null` included: GoTrue tells a missing one (`credential is
/// required`) from a `null` one (not a credential).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// GoTrue's `PasskeyRegistrationVerifyParams` / `PasskeyAuthenticationVerifyParams`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VerifyBody {
    challenge_id: Option<String>,
    #[serde(deserialize_with = "present")]
    credential: Option<Value>,
}

impl VerifyBody {
    fn into_request(self, headers: &HeaderMap, request_id: Option<&RequestId>) -> PasskeyVerifyRequest {
        PasskeyVerifyRequest {
            challenge_id: self.challenge_id.unwrap_or_default(),
            credential_json: self.credential.map(|c| c.to_string()).unwrap_or_default(),
            context: Some(request_context(headers, request_id)),
        }
    }
}

async fn registration_options(
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_passkeys(&state)?;
    let request = options_request(&headers, request_id.as_deref());
    let started = state
        .clients
        .passkeys
        .clone()
        .registration_options(with_authorization(&headers, request))
        .await?
        .into_inner();
    ceremony(&started)
}

async fn registration_verify(
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<VerifyBody>, ApiError>,
) -> Result<Response, ApiError> {
    require_passkeys(&state)?;
    let AppJson(body) = body?;
    let request = body.into_request(&headers, request_id.as_deref());
    let passkey = state
        .clients
        .passkeys
        .clone()
        .registration_verify(with_authorization(&headers, request))
        .await?
        .into_inner();
    Ok(axum::Json(render::passkey(&passkey)).into_response())
}

async fn authentication_options(
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_passkeys(&state)?;
    rate_limit(&state, &headers, Limiter::PasskeySignIn).await?;
    let request = options_request(&headers, request_id.as_deref());
    let started = state
        .clients
        .passkeys
        .clone()
        .authentication_options(request)
        .await?
        .into_inner();
    ceremony(&started)
}

async fn authentication_verify(
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<VerifyBody>, ApiError>,
) -> Result<Response, ApiError> {
    require_passkeys(&state)?;
    let AppJson(body) = body?;
    let request = body.into_request(&headers, request_id.as_deref());
    let tokens = state
        .clients
        .passkeys
        .clone()
        .authentication_verify(request)
        .await?
        .into_inner();
    Ok(render::token_response(&tokens))
}

async fn list(
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_passkeys(&state)?;
    let request = options_request(&headers, request_id.as_deref());
    let listed = state
        .clients
        .passkeys
        .clone()
        .list(with_authorization(&headers, request))
        .await?
        .into_inner();
    let passkeys: Vec<Value> = listed.passkeys.iter().map(render::passkey).collect();
    Ok(axum::Json(passkeys).into_response())
}

/// GoTrue's `PasskeyUpdateParams`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RenameBody {
    friendly_name: Option<String>,
}

async fn rename(
    State(state): State<AppState>,
    Path(passkey_id): Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<RenameBody>, ApiError>,
) -> Result<Response, ApiError> {
    require_passkeys(&state)?;
    let AppJson(body) = body?;
    let request = RenamePasskeyRequest {
        passkey_id,
        friendly_name: body.friendly_name.unwrap_or_default(),
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    let passkey = state
        .clients
        .passkeys
        .clone()
        .rename(with_authorization(&headers, request))
        .await?
        .into_inner();
    Ok(axum::Json(render::passkey(&passkey)).into_response())
}

async fn remove(
    State(state): State<AppState>,
    Path(passkey_id): Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_passkeys(&state)?;
    let request = PasskeyRef {
        user_id: String::new(),
        passkey_id,
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    state
        .clients
        .passkeys
        .clone()
        .delete(with_authorization(&headers, request))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn admin_list(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = PasskeyRef {
        user_id,
        passkey_id: String::new(),
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    let listed = state
        .clients
        .passkeys
        .clone()
        .admin_list(with_authorization(&headers, request))
        .await?
        .into_inner();
    let passkeys: Vec<Value> = listed.passkeys.iter().map(render::passkey).collect();
    Ok(axum::Json(passkeys).into_response())
}

async fn admin_delete(
    State(state): State<AppState>,
    Path((user_id, passkey_id)): Path<(String, String)>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = PasskeyRef {
        user_id,
        passkey_id,
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    state
        .clients
        .passkeys
        .clone()
        .admin_delete(with_authorization(&headers, request))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
