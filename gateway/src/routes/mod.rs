//! Routes, one module per area of GoTrue's API. Each module exposes `router()`; the helpers here are
//! what every area needs to turn an HTTP request into an RPC.

mod admin;
mod admin_audit;
mod admin_custom_providers;
mod admin_factors;
mod external;
mod factors;
mod feature_off;
pub mod general;
mod generate_link;
mod logout;
mod otp;
mod pagination;
mod passkeys;
mod reauthenticate;
mod recover;
mod recovery_codes;
mod redirect_url;
mod resend;
mod signup;
mod token;
mod user;
mod verify;
mod well_known;

use auth_proto::common::v1::RequestContext;
use axum::Router;
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::AppState;
use crate::error::ApiError;
use crate::middleware::{RequestId, method_not_allowed, not_found};
use crate::rate_limit::Limiter;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(general::router())
        .merge(admin::router())
        .merge(admin_audit::router())
        .merge(admin_custom_providers::router())
        .merge(admin_factors::router())
        .merge(factors::router())
        .merge(recovery_codes::router())
        .merge(passkeys::router())
        .merge(external::router())
        .merge(generate_link::router())
        .merge(well_known::router())
        .merge(signup::router())
        .merge(token::router())
        .merge(logout::router())
        .merge(user::router())
        .merge(verify::router())
        .merge(recover::router())
        .merge(otp::router())
        .merge(resend::router())
        .merge(reauthenticate::router())
        .merge(feature_off::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// Go's `url.Values.Encode`: keys sorted (values keep their order), form encoding.
pub(crate) fn go_encode<K: AsRef<str>>(mut pairs: Vec<(K, String)>) -> String {
    pairs.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in &pairs {
        out.append_pair(key.as_ref(), value);
    }
    out.finish()
}

/// What the services record about the caller.
fn request_context(headers: &HeaderMap, request_id: Option<&RequestId>) -> RequestContext {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    RequestContext {
        ip: auth_core::client_ip::current(),
        user_agent: header("user-agent").to_string(),
        audience: header("x-jwt-aud").to_string(),
        request_id: request_id.map(|r| r.0.clone()).unwrap_or_default(),
    }
}

/// A gRPC request carrying the caller's `Authorization` header.
fn with_authorization<T>(headers: &HeaderMap, body: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(body);
    if let Some(value) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Ok(value) = value.parse()
    {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

async fn rate_limit(state: &AppState, headers: &HeaderMap, limiter: Limiter) -> Result<(), ApiError> {
    let Some(rate_limiter) = &state.rate_limiter else {
        return Ok(());
    };
    let limits = &state.config.rate_limit;
    let limit = match limiter {
        Limiter::Token => limits.token,
        Limiter::AnonymousSignup => limits.anonymous_users,
        Limiter::Verify => limits.verify,
        Limiter::FactorChallenge | Limiter::FactorVerify => limits.mfa_challenge_and_verify,
        Limiter::PasskeySignIn => limits.passkey,
        Limiter::Signup
        | Limiter::UserUpdate
        | Limiter::Recover
        | Limiter::Resend
        | Limiter::MagicLink
        | Limiter::Otp => limits.otp,
    };
    rate_limiter.check(headers, limiter, limit).await
}

/// The answer of every route that sends a code: `{}`, or `{"message_id"}` when an SMS was queued.
fn sent(response: auth_proto::user::v1::SendResponse) -> axum::response::Response {
    use axum::response::IntoResponse;
    let auth_proto::user::v1::SendResponse { message_id } = response;
    if message_id.is_empty() {
        axum::Json(serde_json::json!({})).into_response()
    } else {
        axum::Json(serde_json::json!({"message_id": message_id})).into_response()
    }
}

fn json_text(value: Option<&Map<String, Value>>) -> String {
    value.map(|m| Value::Object(m.clone()).to_string()).unwrap_or_default()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RedirectQuery {
    redirect_to: Option<String>,
}

/// GoTrue's `GetReferrer`: the `redirect_to` header or query parameter, else the `Referer`, when
/// the allow list admits it; else `GOTRUE_SITE_URL`.
fn redirect_target(state: &AppState, headers: &HeaderMap, query: &RedirectQuery) -> String {
    redirect_target_or(state, headers, query, "")
}

/// [`redirect_target`], preferring `preferred` (a body's `redirect_to`) when the allow list admits it.
fn redirect_target_or(state: &AppState, headers: &HeaderMap, query: &RedirectQuery, preferred: &str) -> String {
    let header = |name: http::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let explicit = match header(http::HeaderName::from_static("redirect_to")) {
        "" => query.redirect_to.as_deref().unwrap_or_default(),
        value => value,
    };
    state
        .redirects
        .resolve([preferred, explicit, header(http::header::REFERER)])
}
