//! `POST /admin/generate_link`: the link an email would carry, returned to the admin instead of sent.

use auth_proto::user::v1::GenerateLinkRequest;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{RedirectQuery, json_text, redirect_target_or, request_context, with_authorization};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AppJson, AppQuery};
use crate::middleware::RequestId;
use crate::render;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/generate_link", post(generate_link))
}

/// GoTrue's `GenerateLinkParams`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GenerateLinkBody {
    #[serde(rename = "type")]
    link_type: String,
    email: String,
    new_email: String,
    password: String,
    data: Option<Map<String, Value>>,
    redirect_to: String,
}

async fn generate_link(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<RedirectQuery>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<GenerateLinkBody>, ApiError>,
) -> Result<Response, ApiError> {
    let AppJson(body) = body?;
    let request = GenerateLinkRequest {
        r#type: body.link_type,
        email: body.email,
        new_email: body.new_email,
        password: body.password,
        data_json: json_text(body.data.as_ref()),
        // The body's `redirect_to` when the allow list admits it, else GoTrue's referrer.
        redirect_to: redirect_target_or(&state, &headers, &query, &body.redirect_to),
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    let link = state
        .clients
        .user
        .clone()
        .generate_link(with_authorization(&headers, request))
        .await?
        .into_inner();
    Ok(axum::Json(render::generated_link(&link)).into_response())
}
