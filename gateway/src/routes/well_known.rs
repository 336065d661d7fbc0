//! `GET /.well-known/jwks.json`: the public signing keys, from the token service.

use auth_proto::token::v1::GetJwksRequest;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header;
use serde_json::value::RawValue;

use crate::AppState;
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new().route("/.well-known/jwks.json", get(jwks))
}

#[derive(serde::Serialize)]
struct Jwks {
    keys: Vec<Box<RawValue>>,
}

async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let response = state.clients.token.clone().get_jwks(GetJwksRequest {}).await?;
    let keys = response
        .into_inner()
        .keys_json
        .into_iter()
        .map(RawValue::from_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            tracing::error!(error = %e, "token service returned a malformed JWK");
            ApiError::unexpected()
        })?;
    Ok((
        [(header::CACHE_CONTROL, "public, max-age=600")],
        axum::Json(Jwks { keys }),
    )
        .into_response())
}
