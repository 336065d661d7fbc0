//! `GET /admin/audit`: the audit log a page at a time, with GoTrue's pagination headers.

use auth_proto::user::v1::ListAuditLogRequest;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::HeaderMap;
use serde_json::Value;

use super::pagination::{first, page_headers, parse_count};
use super::{request_context, with_authorization};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::query_pairs;
use crate::middleware::RequestId;
use crate::render;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/audit", get(list_audit_log))
}

async fn list_audit_log(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(raw.as_deref())?;
    let request = ListAuditLogRequest {
        page: parse_count(&pairs, "page")?,
        per_page: parse_count(&pairs, "per_page")?,
        query: first(&pairs, "query").to_string(),
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    let listed = state
        .clients
        .user
        .clone()
        .list_audit_log(with_authorization(&headers, request))
        .await?
        .into_inner();
    let entries: Vec<Value> = listed.entries.iter().map(render::audit_entry).collect();
    let response_headers = page_headers("/admin/audit", &pairs, listed.total, listed.page, listed.per_page);
    Ok((response_headers, axum::Json(entries)).into_response())
}
