//! Sign-up, sign-in, token refresh, sign-out and the signed-in user:
//! `POST /signup`, `POST /token`, `POST /logout`, `GET /user`, `PUT /user`.

use auth_proto::token::v1::{ExchangeAuthCodeRequest, LogoutRequest, RefreshSessionRequest};
use auth_proto::user::v1::{
    GetUserRequest, SignInWithPasswordRequest, SignUpRequest, UpdateUserRequest, sign_up_response,
};
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{RedirectQuery, json_text, rate_limit, redirect_target, request_context, with_authorization};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AppJson, AppQuery};
use crate::middleware::RequestId;
use crate::rate_limit::Limiter;
use crate::render;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signup", post(signup))
        .route("/token", post(token))
        .route("/logout", post(logout))
        .route("/user", axum::routing::get(get_user).put(update_user))
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

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenQuery {
    grant_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PasswordGrantBody {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PkceGrantBody {
    auth_code: Option<String>,
    code_verifier: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RefreshGrantBody {
    refresh_token: Option<String>,
}

/// GoTrue's OAuth-style error (`{"error","error_description"}`, always 400).
pub(super) fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn token(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<TokenQuery>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<Value>, ApiError>,
) -> Result<Response, ApiError> {
    let grant = query.grant_type.unwrap_or_default();
    if !matches!(
        grant.as_str(),
        "password" | "refresh_token" | "id_token" | "pkce" | "web3"
    ) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            auth_core::ErrorCode::InvalidCredentials,
            "unsupported_grant_type",
        ));
    }
    // GoTrue limits before it reads the body: malformed requests count too.
    rate_limit(&state, &headers, Limiter::Token).await?;
    let AppJson(body) = body?;
    let context = Some(request_context(&headers, request_id.as_deref()));
    match grant.as_str() {
        "password" => {
            let params: PasswordGrantBody = serde_json::from_value(body).map_err(ApiError::bad_json)?;
            let request = SignInWithPasswordRequest {
                email: params.email.unwrap_or_default(),
                phone: params.phone.unwrap_or_default(),
                password: params.password.unwrap_or_default(),
                context,
            };
            let tokens = state
                .clients
                .user
                .clone()
                .sign_in_with_password(request)
                .await?
                .into_inner();
            Ok(render::token_response(&tokens))
        }
        "refresh_token" => {
            let params: RefreshGrantBody = serde_json::from_value(body).map_err(ApiError::bad_json)?;
            let refresh_token = params.refresh_token.unwrap_or_default();
            if refresh_token.is_empty() {
                return Ok(oauth_error("invalid_request", "refresh_token required"));
            }
            let request = RefreshSessionRequest { refresh_token, context };
            let tokens = state.clients.token.clone().refresh_session(request).await?.into_inner();
            Ok(render::token_response(&tokens))
        }
        "pkce" => {
            let params: PkceGrantBody = serde_json::from_value(body).map_err(ApiError::bad_json)?;
            let request = ExchangeAuthCodeRequest {
                auth_code: params.auth_code.unwrap_or_default(),
                code_verifier: params.code_verifier.unwrap_or_default(),
                context,
            };
            let tokens = state
                .clients
                .token
                .clone()
                .exchange_auth_code(request)
                .await?
                .into_inner();
            Ok(render::token_response(&tokens))
        }
        "id_token" => Ok(super::feature_off::id_token_grant(&state, body)),
        _ => Err(super::feature_off::web3_grant(&state, &body)),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LogoutQuery {
    scope: Option<String>,
}

async fn logout(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<LogoutQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = with_authorization(
        &headers,
        LogoutRequest {
            scope: query.scope.unwrap_or_default(),
        },
    );
    state.clients.token.clone().logout(request).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
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
