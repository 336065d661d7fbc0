//! `POST /otp` and `POST /magiclink`: a one-time code or magic link by email, or a code by SMS or
//! WhatsApp; the account is created first unless `create_user` is false.

use auth_proto::user::v1::SendOtpRequest;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{RedirectQuery, json_text, rate_limit, redirect_target, request_context, sent};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AppJson, AppQuery};
use crate::middleware::RequestId;
use crate::rate_limit::Limiter;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/magiclink", post(magic_link))
        .route("/otp", post(otp))
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct OtpBody {
    email: Option<String>,
    phone: Option<String>,
    channel: Option<String>,
    create_user: bool,
    data: Option<Map<String, Value>>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

impl Default for OtpBody {
    fn default() -> Self {
        Self {
            email: None,
            phone: None,
            channel: None,
            // GoTrue creates the account unless told not to.
            create_user: true,
            data: None,
            code_challenge: None,
            code_challenge_method: None,
        }
    }
}

async fn send_otp(
    state: AppState,
    query: RedirectQuery,
    request_id: Option<&RequestId>,
    headers: HeaderMap,
    body: OtpBody,
    magic_link_endpoint: bool,
) -> Result<Response, ApiError> {
    let request = SendOtpRequest {
        email: body.email.unwrap_or_default(),
        phone: body.phone.unwrap_or_default(),
        channel: body.channel.unwrap_or_default(),
        create_user: body.create_user,
        data_json: json_text(body.data.as_ref()),
        code_challenge: body.code_challenge.unwrap_or_default(),
        code_challenge_method: body.code_challenge_method.unwrap_or_default(),
        redirect_to: redirect_target(&state, &headers, &query),
        context: Some(request_context(&headers, request_id)),
        magic_link_endpoint,
    };
    Ok(sent(state.clients.user.clone().send_otp(request).await?.into_inner()))
}

async fn magic_link(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<RedirectQuery>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<OtpBody>, ApiError>,
) -> Result<Response, ApiError> {
    rate_limit(&state, &headers, Limiter::MagicLink).await?;
    let AppJson(body) = body?;
    send_otp(state, query, request_id.as_deref(), headers, body, true).await
}

async fn otp(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<RedirectQuery>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<OtpBody>, ApiError>,
) -> Result<Response, ApiError> {
    rate_limit(&state, &headers, Limiter::Otp).await?;
    let AppJson(body) = body?;
    send_otp(state, query, request_id.as_deref(), headers, body, false).await
}
