//! Request extractors that read bodies and query strings the way GoTrue's Go decoding does, and fail
//! only in GoTrue's error shape (never axum's plain-text rejections).
//!
//! Every JSON body and every query string of the REST API goes through these two, so the rules below
//! hold for all of them at once:
//! - a body field that is `null` is a field that is absent (Go's `encoding/json` leaves the field at
//!   its zero value), so no request type can refuse a `null` optional field: supabase-py sends absent
//!   fields as `null`;
//! - a body that is not a JSON object (`[]`, `"x"`, `1`) is 400 `bad_json`, as Go refuses to decode
//!   it into a struct; a `null` body is an empty one, as in Go;
//! - a query parameter given several times counts with its first value (`url.Values.Get`).

use axum::extract::{FromRequest, FromRequestParts, Request};
use bytes::Bytes;
use http::StatusCode;
use http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::middleware::MAX_BODY_BYTES;

/// A JSON body. Like GoTrue, the content type is not checked; a body that is not JSON is 400
/// `bad_json`, and one over 1 MiB is 413 `request_entity_too_large`.
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let body = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::body_too_large(MAX_BODY_BYTES)
            } else {
                ApiError::bad_json(rejection.body_text())
            }
        })?;
        decode_body(&body).map(AppJson)
    }
}

/// Decodes a request body as Go decodes one into a struct (see the module documentation).
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let fields = match serde_json::from_slice::<Value>(body).map_err(ApiError::bad_json)? {
        Value::Object(fields) => fields,
        Value::Null => Map::new(),
        other => {
            return Err(ApiError::bad_json(format!(
                "json: cannot unmarshal {} into Go value of type struct",
                go_json_kind(&other)
            )));
        }
    };
    if fields.iter().any(|(key, value)| has_nul(key) || holds_nul(value)) {
        return Err(nul_character());
    }
    let present: Map<String, Value> = fields.into_iter().filter(|(_, value)| !value.is_null()).collect();
    serde_json::from_value(Value::Object(present)).map_err(ApiError::bad_json)
}

/// Postgres cannot store the NUL character in text or JSON, so no request may carry one.
fn has_nul(text: &str) -> bool {
    text.contains('\0')
}

fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => has_nul(text),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields.iter().any(|(key, value)| has_nul(key) || holds_nul(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

pub fn nul_character() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        auth_core::ErrorCode::ValidationFailed,
        auth_core::error::NUL_CHARACTER_MESSAGE,
    )
}

/// The kind Go's decoder names in its "cannot unmarshal" error.
fn go_json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A query string of string parameters. A repeated parameter counts with its first value, and
/// nothing about the query string makes the request fail (GoTrue reads parameters one by one).
pub struct AppQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for AppQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        decode_query(parts.uri.query()).map(AppQuery)
    }
}

/// Decodes a query string into a struct whose fields are optional strings, first value winning.
pub fn decode_query<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    let mut fields = Map::new();
    for (name, value) in query_pairs(raw)? {
        fields.entry(name).or_insert_with(|| Value::String(value));
    }
    serde_json::from_value(Value::Object(fields)).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            auth_core::ErrorCode::ValidationFailed,
            format!("Invalid query parameters: {e}"),
        )
    })
}

/// The query string as ordered, decoded pairs (GoTrue reads the first value of each name); a
/// parameter holding the NUL character is refused.
pub fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(name, value)| {
            if has_nul(&name) || has_nul(&value) {
                Err(nul_character())
            } else {
                Ok((name.into_owned(), value.into_owned()))
            }
        })
        .collect()
}
