//! `POST /signup`: an account with an email or phone and password, or an anonymous one. Answers a
//! session when no confirmation is needed, else the user (GoTrue's `Signup`).

use auth_proto::user::v1::{SignUpRequest, sign_up_response};
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{RedirectQuery, json_text, rate_limit, redirect_target, request_context};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AppJson, AppQuery};
use crate::middleware::RequestId;
use crate::rate_limit::Limiter;
use crate::render;

pub fn router() -> Router<AppState> {
    Router::new().route("/signup", post(signup))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SignupBody {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    data: Option<Map<String, Value>>,
    channel: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

async fn signup(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<RedirectQuery>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    AppJson(body): AppJson<SignupBody>,
) -> Result<Response, ApiError> {
    let email = body.email.unwrap_or_default();
    let phone = body.phone.unwrap_or_default();
    let anonymous = email.is_empty() && phone.is_empty();
    if anonymous && !state.config.disable_signup && !state.config.external.anonymous_users_enabled {
        // GoTrue answers this before rate limiting.
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            auth_core::ErrorCode::AnonymousProviderDisabled,
            "Anonymous sign-ins are disabled",
        ));
    }
    let limiter = if anonymous {
        Limiter::AnonymousSignup
    } else {
        Limiter::Signup
    };
    rate_limit(&state, &headers, limiter).await?;

    let request = SignUpRequest {
        email,
        phone,
        password: body.password.unwrap_or_default(),
        data_json: json_text(body.data.as_ref()),
        channel: body.channel.unwrap_or_default(),
        code_challenge: body.code_challenge.unwrap_or_default(),
        code_challenge_method: body.code_challenge_method.unwrap_or_default(),
        context: Some(request_context(&headers, request_id.as_deref())),
        redirect_to: redirect_target(&state, &headers, &query),
    };
    let response = state.clients.user.clone().sign_up(request).await?.into_inner();
    match response.result {
        Some(sign_up_response::Result::Session(tokens)) => Ok(render::token_response(&tokens)),
        Some(sign_up_response::Result::User(user)) => Ok(axum::Json(render::user(&user)).into_response()),
        None => Err(ApiError::unexpected()),
    }
}
