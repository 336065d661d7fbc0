//! The routes that send a code: `POST /recover`, `POST /magiclink`, `POST /otp`, `POST /resend`,
//! `GET /reauthenticate`. Each answers `{}`, or `{"message_id"}` when an SMS was queued.

use auth_proto::user::v1::{ReauthenticateRequest, RecoverRequest, ResendRequest, SendOtpRequest, SendResponse};
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{RedirectQuery, json_text, rate_limit, redirect_target, request_context, with_authorization};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AppJson, AppQuery};
use crate::middleware::RequestId;
use crate::rate_limit::Limiter;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/recover", post(recover))
        .route("/magiclink", post(magic_link))
        .route("/otp", post(otp))
        .route("/resend", post(resend))
        .route("/reauthenticate", get(reauthenticate))
}

fn sent(response: SendResponse) -> Response {
    let SendResponse { message_id } = response;
    if message_id.is_empty() {
        axum::Json(json!({})).into_response()
    } else {
        axum::Json(json!({"message_id": message_id})).into_response()
    }
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

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ResendBody {
    r#type: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

async fn resend(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<RedirectQuery>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<ResendBody>, ApiError>,
) -> Result<Response, ApiError> {
    rate_limit(&state, &headers, Limiter::Resend).await?;
    let AppJson(body) = body?;
    let request = ResendRequest {
        r#type: body.r#type.unwrap_or_default(),
        email: body.email.unwrap_or_default(),
        phone: body.phone.unwrap_or_default(),
        code_challenge: body.code_challenge.unwrap_or_default(),
        code_challenge_method: body.code_challenge_method.unwrap_or_default(),
        redirect_to: redirect_target(&state, &headers, &query),
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    Ok(sent(state.clients.user.clone().resend(request).await?.into_inner()))
}

async fn reauthenticate(
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = with_authorization(
        &headers,
        ReauthenticateRequest {
            context: Some(request_context(&headers, request_id.as_deref())),
        },
    );
    Ok(sent(
        state.clients.user.clone().reauthenticate(request).await?.into_inner(),
    ))
}
