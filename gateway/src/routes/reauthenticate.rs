//! `GET /reauthenticate`: sends the signed-in user a nonce to confirm a password change with.

use auth_proto::user::v1::ReauthenticateRequest;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use http::HeaderMap;

use super::{request_context, sent, with_authorization};
use crate::AppState;
use crate::error::ApiError;
use crate::middleware::RequestId;

pub fn router() -> Router<AppState> {
    Router::new().route("/reauthenticate", get(reauthenticate))
}

async fn reauthenticate(
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = with_authorization(
        &headers,
        ReauthenticateRequest {
            context: Some(request_context(&headers, request_id.as_deref())),
        },
    );
    Ok(sent(
        state.clients.user.clone().reauthenticate(request).await?.into_inner(),
    ))
}
