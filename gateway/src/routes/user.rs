//! The signed-in user: `GET /user` and `PUT /user` (metadata, password, email and phone change),
//! both served by the user service.

use auth_proto::user::v1::{GetUserRequest, UpdateUserRequest};
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{RedirectQuery, rate_limit, redirect_target, request_context, with_authorization};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AppJson, AppQuery};
use crate::middleware::RequestId;
use crate::rate_limit::Limiter;
use crate::render;

pub fn router() -> Router<AppState> {
    Router::new().route("/user", axum::routing::get(get_user).put(update_user))
}

async fn get_user(
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let context = request_context(&headers, request_id.as_deref());
    let user = state
        .clients
        .user
        .clone()
        .get_user(with_authorization(&headers, GetUserRequest { context: Some(context) }))
        .await?
        .into_inner();
    Ok(axum::Json(render::user(&user)).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UpdateUserBody {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    current_password: Option<String>,
    nonce: Option<String>,
    data: Option<Map<String, Value>>,
    app_metadata: Option<Map<String, Value>>,
    channel: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

async fn update_user(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<RedirectQuery>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<UpdateUserBody>, ApiError>,
) -> Result<Response, ApiError> {
    rate_limit(&state, &headers, Limiter::UserUpdate).await?;
    let AppJson(body) = body?;
    let request = UpdateUserRequest {
        email: body.email,
        phone: body.phone,
        password: body.password,
        nonce: body.nonce,
        current_password: body.current_password,
        data_json: body.data.map(|d| Value::Object(d).to_string()),
        app_metadata_json: body.app_metadata.map(|d| Value::Object(d).to_string()),
        channel: body.channel.unwrap_or_default(),
        code_challenge: body.code_challenge.unwrap_or_default(),
        code_challenge_method: body.code_challenge_method.unwrap_or_default(),
        context: Some(request_context(&headers, request_id.as_deref())),
        redirect_to: redirect_target(&state, &headers, &query),
    };
    let user = state
        .clients
        .user
        .clone()
        .update_user(with_authorization(&headers, request))
        .await?
        .into_inner();
    Ok(axum::Json(render::user(&user)).into_response())
}
