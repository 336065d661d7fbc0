//! The suite's MFA recovery codes (not in GoTrue; `AUTH_MFA_RECOVERY_CODES_ENABLED`), served by the
//! MFA service: `POST /factors/recovery-codes` makes a new set (shown once), `GET` tells how many are
//! left, `POST /factors/recovery-codes/verify {code}` steps the session up to AAL2 with one.

use auth_proto::mfa::v1::{RecoveryCodesRequest, UseRecoveryCodeRequest};
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::json;

use super::{rate_limit, request_context, with_authorization};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::AppJson;
use crate::middleware::RequestId;
use crate::rate_limit::Limiter;
use crate::render;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/factors/recovery-codes", get(status).post(generate))
        .route("/factors/recovery-codes/verify", post(verify))
}

fn context_only(headers: &HeaderMap, request_id: Option<&RequestId>) -> RecoveryCodesRequest {
    RecoveryCodesRequest {
        context: Some(request_context(headers, request_id)),
    }
}

async fn generate(
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = context_only(&headers, request_id.as_deref());
    let generated = state
        .clients
        .mfa
        .clone()
        .generate_recovery_codes(with_authorization(&headers, request))
        .await?
        .into_inner();
    Ok(axum::Json(json!({"codes": generated.codes, "created_at": generated.created_at})).into_response())
}

async fn status(
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = context_only(&headers, request_id.as_deref());
    let status = state
        .clients
        .mfa
        .clone()
        .recovery_codes_status(with_authorization(&headers, request))
        .await?
        .into_inner();
    let created_at = (status.created_at != 0).then_some(status.created_at);
    Ok(axum::Json(json!({
        "total": status.total,
        "remaining": status.remaining,
        "created_at": created_at,
    }))
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VerifyBody {
    code: Option<String>,
}

async fn verify(
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<VerifyBody>, ApiError>,
) -> Result<Response, ApiError> {
    // The same per-address limit as factor verifications: a code is a second factor too.
    rate_limit(&state, &headers, Limiter::FactorVerify).await?;
    let AppJson(body) = body?;
    let request = UseRecoveryCodeRequest {
        code: body.code.unwrap_or_default(),
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    let tokens = state
        .clients
        .mfa
        .clone()
        .use_recovery_code(with_authorization(&headers, request))
        .await?
        .into_inner();
    Ok(render::token_response(&tokens))
}
