//! `POST /logout?scope=global|local|others`: the token service ends the sessions; 204.

use auth_proto::token::v1::LogoutRequest;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::with_authorization;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::AppQuery;

pub fn router() -> Router<AppState> {
    Router::new().route("/logout", post(logout))
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
