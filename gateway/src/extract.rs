//! Request extractors that fail in GoTrue's error shape.

use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http::StatusCode;
use serde::de::DeserializeOwned;

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
        serde_json::from_slice(&body).map(AppJson).map_err(ApiError::bad_json)
    }
}
