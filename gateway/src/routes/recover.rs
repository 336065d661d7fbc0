//! `POST /recover`: sends a password-recovery link or code. Answers `{}` whether or not the
//! address has an account (no enumeration).

use auth_proto::user::v1::RecoverRequest;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use http::HeaderMap;
use serde::Deserialize;

use super::{RedirectQuery, rate_limit, redirect_target, request_context, sent};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AppJson, AppQuery};
use crate::middleware::RequestId;
use crate::rate_limit::Limiter;

pub fn router() -> Router<AppState> {
    Router::new().route("/recover", post(recover))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RecoverBody {
    email: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

async fn recover(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<RedirectQuery>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<RecoverBody>, ApiError>,
) -> Result<Response, ApiError> {
    rate_limit(&state, &headers, Limiter::Recover).await?;
    let AppJson(body) = body?;
    let request = RecoverRequest {
        email: body.email.unwrap_or_default(),
        code_challenge: body.code_challenge.unwrap_or_default(),
        code_challenge_method: body.code_challenge_method.unwrap_or_default(),
        redirect_to: redirect_target(&state, &headers, &query),
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    Ok(sent(state.clients.user.clone().recover(request).await?.into_inner()))
}
