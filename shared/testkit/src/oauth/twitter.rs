//! Twitter's OAuth 1.0a endpoints under `/twitter`: request token, access token and
//! `verify_credentials`, each checking the HMAC-SHA1 signature of the request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Shared, primary_email, unauthorized};

/// An OAuth 1.0a `Authorization: OAuth k="v", ...` header's parameters, decoded.
fn oauth1_parameters(headers: &HeaderMap) -> HashMap<String, String> {
    let header = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("OAuth "))
        .unwrap_or_default();
    header
        .split(',')
        .filter_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            let value = value.trim_matches('"');
            let decoded = url::form_urlencoded::parse(format!("v={}", value.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())?;
            Some((key.to_string(), decoded))
        })
        .collect()
}

/// Whether the request is signed (HMAC-SHA1) by the consumer with `token_secret`: the signature is
/// recomputed from the request's own parameters (RFC 5849 §3.4).
fn oauth1_signed(
    shared: &Shared,
    method: &str,
    uri: &str,
    headers: &HeaderMap,
    token_secret: &str,
    request: &[(String, String)],
) -> bool {
    let params = oauth1_parameters(headers);
    let get = |key: &str| params.get(key).map(String::as_str);
    if get("oauth_consumer_key") != Some(shared.client_id.as_str())
        || get("oauth_signature_method") != Some("HMAC-SHA1")
    {
        return false;
    }
    let mut builder = oauth1_request::Builder::<_, _, &str>::new(
        oauth1_request::Credentials::new(shared.client_id.as_str(), shared.client_secret.as_str()),
        oauth1_request::HmacSha1::new(),
    );
    if let Some(token) = get("oauth_token") {
        builder.token(oauth1_request::Credentials::new(token, token_secret));
    }
    builder
        .callback(get("oauth_callback"))
        .verifier(get("oauth_verifier"))
        .nonce(get("oauth_nonce"))
        .timestamp(
            get("oauth_timestamp")
                .and_then(|t| t.parse().ok())
                .and_then(std::num::NonZeroU64::new),
        )
        .version(params.contains_key("oauth_version"));
    let mut sorted = request.to_vec();
    sorted.sort();
    let expected = builder.authorize(method, uri, &oauth1_request::ParameterList::new(sorted));
    let expected = oauth1_parameters(&HeaderMap::from_iter([(
        axum::http::header::AUTHORIZATION,
        axum::http::HeaderValue::from_str(&expected).expect("an ASCII header"),
    )]));
    expected.contains_key("oauth_signature") && expected.get("oauth_signature") == params.get("oauth_signature")
}

fn own_uri(headers: &HeaderMap, path: &str) -> String {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default();
    format!("http://{host}{path}")
}

fn form_answer(pairs: &[(&str, &str)]) -> Response {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
        body,
    )
        .into_response()
}

pub(super) async fn twitter_request_token(
    State(shared): State<Arc<Mutex<Shared>>>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Response {
    let mut shared = shared.lock().expect("fake provider state");
    let uri = own_uri(&headers, "/twitter/oauth/request_token");
    if !oauth1_signed(&shared, method.as_str(), &uri, &headers, "", &[]) {
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    let callback = oauth1_parameters(&headers).remove("oauth_callback").unwrap_or_default();
    shared.counter += 1;
    let (token, secret) = (format!("rt-{}", shared.counter), format!("rts-{}", shared.counter));
    shared
        .request_tokens
        .insert(token.clone(), (secret.clone(), callback, None));
    form_answer(&[
        ("oauth_token", &token),
        ("oauth_token_secret", &secret),
        ("oauth_callback_confirmed", "true"),
    ])
}

pub(super) async fn twitter_access_token(
    State(shared): State<Arc<Mutex<Shared>>>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Response {
    let mut shared = shared.lock().expect("fake provider state");
    shared.token_requests += 1;
    let params = oauth1_parameters(&headers);
    let request_token = params.get("oauth_token").cloned().unwrap_or_default();
    let Some((secret, _, Some((user, verifier)))) = shared.request_tokens.get(&request_token).cloned() else {
        return (StatusCode::UNAUTHORIZED, "unknown or unauthorized request token").into_response();
    };
    let uri = own_uri(&headers, "/twitter/oauth/access_token");
    // Signed with the request token's secret, or (as GoTrue's client does) with none.
    let signed = oauth1_signed(&shared, method.as_str(), &uri, &headers, &secret, &[])
        || oauth1_signed(&shared, method.as_str(), &uri, &headers, "", &[]);
    if !signed || params.get("oauth_verifier") != Some(&verifier) {
        return (StatusCode::UNAUTHORIZED, "bad signature or verifier").into_response();
    }
    shared.request_tokens.remove(&request_token);
    shared.counter += 1;
    let (token, token_secret) = (format!("at-{}", shared.counter), format!("ats-{}", shared.counter));
    shared
        .access_tokens
        .insert(token.clone(), (token_secret.clone(), user.clone()));
    let user_id = user.id.to_string();
    form_answer(&[
        ("oauth_token", &token),
        ("oauth_token_secret", &token_secret),
        ("user_id", &user_id),
        ("screen_name", &user.login),
    ])
}

pub(super) async fn twitter_user(
    State(shared): State<Arc<Mutex<Shared>>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Response {
    let shared = shared.lock().expect("fake provider state");
    let token = oauth1_parameters(&headers).remove("oauth_token").unwrap_or_default();
    let Some((secret, user)) = shared.access_tokens.get(&token).cloned() else {
        return unauthorized();
    };
    let query: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let uri = own_uri(&headers, "/twitter/1.1/account/verify_credentials.json");
    if !oauth1_signed(&shared, "GET", &uri, &headers, &secret, &query) {
        return unauthorized();
    }
    let email = if query.iter().any(|(k, v)| k == "include_email" && v == "true") {
        primary_email(&user)
    } else {
        String::new()
    };
    axum::Json(json!({
        "id": user.id, "id_str": user.id.to_string(), "screen_name": user.login, "name": user.name,
        "profile_image_url_https": user.avatar_url, "email": email,
    }))
    .into_response()
}
