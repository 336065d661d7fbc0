//! External sign-in through OAuth providers: `GET /authorize` (a 302 to the provider) and
//! `GET`/`POST /callback` (the provider's redirect back; a 302 to the app), and manual linking
//! (`GET /user/identities/authorize`, `DELETE /user/identities/{id}`). The sso service runs the
//! flow; the redirects are built here as GoTrue builds them, since apps parse them:
//!
//! - signed in (implicit flow): the target, then `#access_token=…&expires_at=…&expires_in=…&
//!   provider_refresh_token=…&provider_token=…&refresh_token=…&sb=&token_type=bearer`;
//! - signed in (PKCE): the target with `?code=`;
//! - failed after the flow was found: the target with `error`, `error_code`, `error_description`
//!   in its query and in the fragment (with `sb`);
//! - the `state` is missing, unknown, expired or spent: a 303 to `GOTRUE_SITE_URL` with the error
//!   in the query.

use std::collections::HashMap;

use auth_proto::sso::v1::{AuthorizeRequest, CallbackError, CallbackRequest, CallbackResponse, callback_response};
use auth_proto::user::v1::UnlinkIdentityRequest;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use http::{HeaderMap, Method};

use super::redirect_url::{Target, found, see_other, set, with_query};
use super::{RedirectQuery, go_encode, redirect_target, request_context, with_authorization};
use crate::AppState;
use crate::error::ApiError;
use crate::middleware::RequestId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/authorize", get(authorize))
        .route("/callback", get(callback).post(callback))
        .route("/user/identities/authorize", get(link_identity))
        .route("/user/identities/{identity_id}", delete(unlink_identity))
}

/// Go's `url.Values.Get` over a query or form: the first value of each key, keys in first-seen order.
fn first_values(raw: &[u8]) -> Vec<(String, String)> {
    let mut seen = HashMap::new();
    let mut pairs = Vec::new();
    for (key, value) in url::form_urlencoded::parse(raw) {
        if seen.insert(key.to_string(), ()).is_none() {
            pairs.push((key.into_owned(), value.into_owned()));
        }
    }
    pairs
}

async fn authorize(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = authorize_request(&state, raw.as_deref(), &headers, request_id.as_deref());
    let response = state.clients.sso.clone().authorize(request).await?.into_inner();
    Ok(found(&response.url))
}

/// GoTrue's `LinkIdentity` after `requireAuthentication` and `requireManualLinkingEnabled`: the
/// provider's URL for the caller, as a 302 or (`skip_http_redirect=true`) as `{"url"}`.
async fn link_identity(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    super::feature_off::require_manual_linking(&state, &headers).await?;
    let skip_redirect = first_values(raw.as_deref().unwrap_or_default().as_bytes())
        .iter()
        .any(|(key, value)| key == "skip_http_redirect" && value == "true");
    let mut request = authorize_request(&state, raw.as_deref(), &headers, request_id.as_deref());
    request.link_identity = true;
    let response = state
        .clients
        .sso
        .clone()
        .authorize(with_authorization(&headers, request))
        .await?
        .into_inner();
    if skip_redirect {
        Ok(axum::Json(serde_json::json!({"url": response.url})).into_response())
    } else {
        Ok(found(&response.url))
    }
}

/// `DELETE /user/identities/{identity_id}` (GoTrue's `DeleteIdentity`) → `{}`.
async fn unlink_identity(
    State(state): State<AppState>,
    Path(identity_id): Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    super::feature_off::require_manual_linking(&state, &headers).await?;
    let request = UnlinkIdentityRequest {
        identity_id,
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    state
        .clients
        .user
        .clone()
        .unlink_identity(with_authorization(&headers, request))
        .await?;
    Ok(axum::Json(serde_json::json!({})).into_response())
}

/// The `/authorize` query as the sso service takes it: GoTrue's own parameters taken out, every
/// other one (`redirect_to` and `invite_token` included) passed on to the provider.
fn authorize_request(
    state: &AppState,
    raw: Option<&str>,
    headers: &HeaderMap,
    request_id: Option<&RequestId>,
) -> AuthorizeRequest {
    let mut params = first_values(raw.unwrap_or_default().as_bytes());
    let mut take = |name: &str| {
        params
            .iter()
            .position(|(key, _)| key == name)
            .map(|at| params.remove(at).1)
            .unwrap_or_default()
    };
    let provider = take("provider");
    let scopes = take("scopes");
    let code_challenge = take("code_challenge");
    let code_challenge_method = take("code_challenge_method");
    // GoTrue passes every other parameter on to the provider, `redirect_to` and `invite_token` included.
    let redirect_to = params.iter().find(|(k, _)| k == "redirect_to").map(|(_, v)| v.clone());
    let invite_token = params
        .iter()
        .find(|(k, _)| k == "invite_token")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let referrer = redirect_target(state, headers, &RedirectQuery { redirect_to });
    AuthorizeRequest {
        provider,
        scopes,
        code_challenge,
        code_challenge_method,
        referrer,
        invite_token,
        query_params: params.into_iter().collect(),
        context: Some(request_context(headers, request_id)),
        link_identity: false,
    }
}

async fn callback(
    State(state): State<AppState>,
    method: Method,
    RawQuery(raw): RawQuery,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // A POST callback (Apple's form_post) carries its fields in the form, which wins over the query.
    let mut params = if method == Method::POST {
        first_values(&body)
    } else {
        Vec::new()
    };
    params.extend(first_values(raw.unwrap_or_default().as_bytes()));
    let get = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    let request = CallbackRequest {
        state: get("state"),
        code: get("code"),
        error: get("error"),
        error_description: get("error_description"),
        user: get("user"),
        oauth_token: get("oauth_token"),
        oauth_verifier: get("oauth_verifier"),
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    match state.clients.sso.clone().callback(request).await {
        Ok(response) => found(&callback_location(response.into_inner())),
        Err(status) => see_other(&state_error_location(
            state.config.site_url.as_str(),
            &ApiError::from(status),
        )),
    }
}

fn callback_location(response: CallbackResponse) -> String {
    let target = response.redirect_to;
    match response.outcome {
        Some(callback_response::Outcome::SignedIn(signed_in)) => {
            let tokens = signed_in.session.unwrap_or_default();
            let mut params = vec![
                ("provider_token", signed_in.provider_token),
                ("access_token", tokens.access_token),
                ("token_type", tokens.token_type),
                ("expires_in", tokens.expires_in.to_string()),
                ("expires_at", tokens.expires_at.to_string()),
                ("refresh_token", tokens.refresh_token),
                ("sb", String::new()),
            ];
            // Not every provider hands out a refresh token.
            if !signed_in.provider_refresh_token.is_empty() {
                params.push(("provider_refresh_token", signed_in.provider_refresh_token));
            }
            format!("{target}#{}", go_encode(params))
        }
        Some(callback_response::Outcome::AuthCode(code)) => with_query(&target, vec![("code", code)]),
        Some(callback_response::Outcome::Error(error)) => error_location(&target, &error),
        None => error_location(
            &target,
            &CallbackError {
                error: "server_error".into(),
                error_description: "Unexpected failure".into(),
                error_code: "unexpected_failure".into(),
            },
        ),
    }
}

/// GoTrue's `redirectErrors`: the error in the target's query and in its fragment.
fn error_location(target: &str, error: &CallbackError) -> String {
    let Some(mut parsed) = Target::parse(target) else {
        return target.to_string();
    };
    let mut fragment = vec![
        ("error", error.error.clone()),
        ("error_description", error.error_description.clone()),
    ];
    if !error.error_code.is_empty() {
        fragment.push(("error_code", error.error_code.clone()));
    }
    for (key, value) in &fragment {
        set(&mut parsed.query, key, value);
    }
    fragment.push(("sb", String::new()));
    parsed.set_fragment_values(fragment);
    parsed.to_string()
}

/// GoTrue's `loadFlowState` failure: a 303 to the site URL with the error in the query only.
fn state_error_location(site_url: &str, error: &ApiError) -> String {
    let oauth_error = match error.status.as_u16() {
        400 => "invalid_request",
        401 => "unauthorized_client",
        403 => "access_denied",
        503 => "temporarily_unavailable",
        _ => "server_error",
    };
    with_query(
        site_url,
        vec![
            ("error", oauth_error.to_string()),
            ("error_description", error.message.clone()),
            ("error_code", error.code.clone()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_proto::common::v1::SessionTokens;
    use auth_proto::sso::v1::SignedIn;

    #[test]
    fn an_implicit_sign_in_puts_the_tokens_in_the_fragment_sorted() {
        let response = CallbackResponse {
            redirect_to: "http://localhost:3000/welcome".into(),
            outcome: Some(callback_response::Outcome::SignedIn(SignedIn {
                session: Some(SessionTokens {
                    access_token: "at".into(),
                    token_type: "bearer".into(),
                    expires_in: 3600,
                    expires_at: 1700000000,
                    refresh_token: "rt".into(),
                    ..Default::default()
                }),
                provider_token: "pt".into(),
                provider_refresh_token: String::new(),
            })),
        };
        assert_eq!(
            callback_location(response),
            "http://localhost:3000/welcome#access_token=at&expires_at=1700000000&expires_in=3600&provider_token=pt&refresh_token=rt&sb=&token_type=bearer"
        );
    }

    #[test]
    fn a_failure_goes_in_query_and_fragment() {
        let error = CallbackError {
            error: "access_denied".into(),
            error_description: "Signups not allowed for this instance".into(),
            error_code: "signup_disabled".into(),
        };
        assert_eq!(
            error_location("http://localhost:3000?x=1", &error),
            "http://localhost:3000?error=access_denied&error_code=signup_disabled&error_description=Signups+not+allowed+for+this+instance&x=1#error=access_denied&error_code=signup_disabled&error_description=Signups+not+allowed+for+this+instance&sb="
        );
    }

    #[test]
    fn the_fragment_is_escaped_twice_as_go_writes_it() {
        let error = CallbackError {
            error: "server_error".into(),
            error_description: "Unable to exchange external code: bogu".into(),
            error_code: "unexpected_failure".into(),
        };
        // As GoTrue v2.196 answers (measured side by side): `%3A` in the query, `%253A` in the fragment.
        assert_eq!(
            error_location("http://localhost:3000/welcome", &error),
            "http://localhost:3000/welcome?error=server_error&error_code=unexpected_failure&error_description=Unable+to+exchange+external+code%3A+bogu#error=server_error&error_code=unexpected_failure&error_description=Unable+to+exchange+external+code%253A+bogu&sb="
        );
    }

    #[test]
    fn the_first_value_of_a_repeated_parameter_counts() {
        assert_eq!(
            first_values(b"a=1&b=2&a=3"),
            vec![("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string())]
        );
    }
}
