//! `GET /verify` (a link from an email: answered with a 303 redirect) and `POST /verify` (a code or
//! a link's hash: answered with JSON).
//!
//! The redirects are built as GoTrue builds them, since apps parse them: tokens go in the fragment
//! after the target as written; a PKCE flow gets `?code=`; errors go in the fragment (and, for PKCE,
//! the query) as `error`, `error_code`, `error_description`, always with GoTrue's `sb` marker.
//! Parameters are encoded like Go's `url.Values.Encode` (sorted by key).

use auth_proto::user::v1::{VerifyRequest, VerifyResponse, verify_response};
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::redirect_url::{Target, see_other, set, with_query};
use super::{RedirectQuery, go_encode, rate_limit, redirect_target, request_context};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AppJson, AppQuery};
use crate::middleware::RequestId;
use crate::rate_limit::Limiter;
use crate::render;

pub fn router() -> Router<AppState> {
    Router::new().route("/verify", get(verify_link).post(verify_code))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LinkQuery {
    token: Option<String>,
    r#type: Option<String>,
    redirect_to: Option<String>,
}

async fn verify_link(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<LinkQuery>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    rate_limit(&state, &headers, Limiter::Verify).await?;
    let verify_type = query.r#type.unwrap_or_default();
    let token = query.token.unwrap_or_default();
    // GoTrue validates these before it starts, and answers them as JSON, not as a redirect.
    if verify_type.is_empty() {
        return Err(validation_failed("Verify requires a verification type"));
    }
    if token.is_empty() {
        return Err(validation_failed("Verify requires a token or a token hash"));
    }
    let target = redirect_target(
        &state,
        &headers,
        &RedirectQuery {
            redirect_to: query.redirect_to,
        },
    );
    let pkce = token.starts_with("pkce_");
    let request = VerifyRequest {
        r#type: verify_type.clone(),
        token,
        context: Some(request_context(&headers, request_id.as_deref())),
        from_link: true,
        ..Default::default()
    };
    let location = match state.clients.user.clone().verify(request).await {
        Ok(response) => success_location(&target, &verify_type, pkce, response.into_inner()),
        Err(status) => error_location(&target, &ApiError::from(status), pkce),
    };
    Ok(see_other(&location))
}

fn success_location(target: &str, verify_type: &str, pkce: bool, response: VerifyResponse) -> String {
    match response.result {
        Some(verify_response::Result::Session(tokens)) => {
            let params = vec![
                ("type", verify_type.to_string()),
                ("access_token", tokens.access_token),
                ("token_type", tokens.token_type),
                ("expires_in", tokens.expires_in.to_string()),
                ("expires_at", tokens.expires_at.to_string()),
                ("refresh_token", tokens.refresh_token),
                ("sb", String::new()),
            ];
            // GoTrue appends to the target as written, even one that has a fragment already.
            format!("{target}#{}", go_encode(params))
        }
        Some(verify_response::Result::AuthCode(code)) => with_query(target, vec![("code", code)]),
        Some(verify_response::Result::Message(message)) => message_location(target, &message, pkce),
        None => error_location(target, &ApiError::unexpected(), pkce),
    }
}

/// GoTrue's `prepRedirectURL`: an informational `message` in the fragment (and query for PKCE).
fn message_location(target: &str, message: &str, pkce: bool) -> String {
    let Some(mut target) = Target::parse(target) else {
        return target.to_string();
    };
    if pkce {
        set(&mut target.query, "message", message);
    }
    target.set_fragment_values(vec![("message", message.to_string()), ("sb", String::new())]);
    target.to_string()
}

/// GoTrue's `prepErrorRedirectURL`.
fn error_location(target: &str, error: &ApiError, pkce: bool) -> String {
    let Some(mut target) = Target::parse(target) else {
        return target.to_string();
    };
    let oauth_error = match error.status.as_u16() {
        400 => Some("invalid_request"),
        401 => Some("unauthorized_client"),
        403 => Some("access_denied"),
        500 => Some("server_error"),
        503 => Some("temporarily_unavailable"),
        _ => None,
    };
    let mut fragment = Vec::new();
    if let Some(oauth_error) = oauth_error {
        fragment.push(("error", oauth_error.to_string()));
    }
    fragment.push(("error_code", error.code.clone()));
    fragment.push(("error_description", error.message.clone()));
    if pkce {
        for (key, value) in &fragment {
            set(&mut target.query, key, value);
        }
    }
    fragment.push(("sb", String::new()));
    target.set_fragment_values(fragment);
    target.to_string()
}

fn validation_failed(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, auth_core::ErrorCode::ValidationFailed, message)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CodeBody {
    r#type: Option<String>,
    token: Option<String>,
    token_hash: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    redirect_to: Option<String>,
}

async fn verify_code(
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<CodeBody>, ApiError>,
) -> Result<Response, ApiError> {
    rate_limit(&state, &headers, Limiter::Verify).await?;
    let AppJson(body) = body?;
    let token = body.token.unwrap_or_default();
    let token_hash = body.token_hash.unwrap_or_default();
    let verify_type = body.r#type.unwrap_or_default();
    let only_hash = token.is_empty() && !token_hash.is_empty();
    if !verify_type.is_empty() && only_hash && body.redirect_to.is_some_and(|r| !r.is_empty()) {
        return Err(validation_failed("Only the token_hash and type should be provided"));
    }
    let request = VerifyRequest {
        r#type: verify_type,
        token,
        token_hash,
        email: body.email.unwrap_or_default(),
        phone: body.phone.unwrap_or_default(),
        context: Some(request_context(&headers, request_id.as_deref())),
        from_link: false,
    };
    let response = state.clients.user.clone().verify(request).await?.into_inner();
    match response.result {
        Some(verify_response::Result::Session(tokens)) => Ok(render::token_response(&tokens)),
        // GoTrue sends this status code as a string.
        Some(verify_response::Result::Message(message)) => {
            Ok(axum::Json(json!({"msg": message, "code": "200"})).into_response())
        }
        _ => Err(ApiError::unexpected()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(status: u16, code: &str, message: &str) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(status).unwrap(),
            code: code.into(),
            message: message.into(),
            weak_password_reasons: None,
        }
    }

    /// GoTrue's `TestPrepErrorRedirectURL` and `TestPrepRedirectURL` (§10 item 12).
    #[test]
    fn redirects_are_built_as_gotrue_builds_them() {
        let e = error(400, "validation_failed", "Invalid redirect");
        assert_eq!(
            error_location("https://example.com/page?error=old&x=1", &e, true),
            "https://example.com/page?error=invalid_request&error_code=validation_failed\
             &error_description=Invalid+redirect&x=1\
             #error=invalid_request&error_code=validation_failed&error_description=Invalid+redirect&sb="
        );
        assert_eq!(
            error_location("https://example.com/page?error=old", &e, false),
            "https://example.com/page?error=old\
             #error=invalid_request&error_code=validation_failed&error_description=Invalid+redirect&sb="
        );
        assert_eq!(
            message_location("https://example.com/?message=old", "hello there", true),
            "https://example.com/?message=hello+there#message=hello+there&sb="
        );
        assert_eq!(
            message_location("https://example.com/?a=b", "hi", false),
            "https://example.com/?a=b#message=hi&sb="
        );
        assert_eq!(
            with_query("https://example.com/cb?z=1", vec![("code", "abc".into())]),
            "https://example.com/cb?code=abc&z=1"
        );
        let expired = error(403, "otp_expired", "Email link is invalid or has expired");
        assert_eq!(
            error_location("http://localhost:3000", &expired, false),
            "http://localhost:3000#error=access_denied&error_code=otp_expired\
             &error_description=Email+link+is+invalid+or+has+expired&sb="
        );
    }
}
