//! `POST /token`: the grants. `password` is served by the user service (it checks the password,
//! then asks the token service for a session); `refresh_token` and `pkce` by the token service;
//! `id_token` and `web3` answer as GoTrue does while those features are off.

use auth_proto::sso::v1::IdTokenRequest;
use auth_proto::token::v1::{ExchangeAuthCodeRequest, RefreshSessionRequest};
use auth_proto::user::v1::SignInWithPasswordRequest;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{rate_limit, request_context};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AppJson, AppQuery};
use crate::middleware::RequestId;
use crate::rate_limit::Limiter;
use crate::render;

pub fn router() -> Router<AppState> {
    Router::new().route("/token", post(token))
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

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IdTokenGrantBody {
    id_token: String,
    access_token: String,
    nonce: String,
    provider: String,
    client_id: String,
    issuer: String,
    link_identity: bool,
}

/// A service's error as GoTrue renders it: OAuth-style when the service says so (its
/// `OAuthError`s), GoTrue's usual shape otherwise.
fn oauth_or_api_error(status: tonic::Status) -> Response {
    if let Some(decoded) = auth_core::error::decode_status(&status)
        && let Some(error) = decoded.metadata.get(auth_core::error::OAUTH_ERROR_KEY)
    {
        return oauth_error(error, &decoded.message);
    }
    ApiError::from(status).into_response()
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
        "id_token" => {
            let params: IdTokenGrantBody = serde_json::from_value(body).map_err(ApiError::bad_json)?;
            let request = IdTokenRequest {
                id_token: params.id_token,
                access_token: params.access_token,
                nonce: params.nonce,
                provider: params.provider,
                client_id: params.client_id,
                issuer: params.issuer,
                link_identity: params.link_identity,
                context,
            };
            match state
                .clients
                .sso
                .clone()
                .sign_in_with_id_token(super::with_authorization(&headers, request))
                .await
            {
                Ok(tokens) => Ok(render::token_response(&tokens.into_inner())),
                Err(status) => Ok(oauth_or_api_error(status)),
            }
        }
        _ => Err(super::feature_off::web3_grant(&state, &body)),
    }
}
