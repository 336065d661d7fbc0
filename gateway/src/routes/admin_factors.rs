//! The admin factor API: `/admin/users/{user_id}/factors` and
//! `/admin/users/{user_id}/factors/{factor_id}`, served by the MFA service.

use auth_proto::mfa::v1::{AdminFactorRequest, AdminListFactorsRequest, AdminUpdateFactorRequest};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use super::{request_context, with_authorization};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::AppJson;
use crate::middleware::RequestId;
use crate::render;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users/{user_id}/factors", get(list_factors))
        .route(
            "/admin/users/{user_id}/factors/{factor_id}",
            put(update_factor).delete(delete_factor),
        )
}

async fn list_factors(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = AdminListFactorsRequest {
        user_id,
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    let listed = state
        .clients
        .mfa
        .clone()
        .admin_list_factors(with_authorization(&headers, request))
        .await?
        .into_inner();
    let factors: Vec<Value> = listed.factors.iter().map(render::factor).collect();
    Ok(axum::Json(factors).into_response())
}

/// GoTrue's `adminUserUpdateFactorParams`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UpdateFactorBody {
    friendly_name: String,
    phone: String,
}

async fn update_factor(
    State(state): State<AppState>,
    Path((user_id, factor_id)): Path<(String, String)>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<UpdateFactorBody>, ApiError>,
) -> Result<Response, ApiError> {
    let AppJson(body) = body?;
    let request = AdminUpdateFactorRequest {
        user_id,
        factor_id,
        friendly_name: body.friendly_name,
        phone: body.phone,
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    let factor = state
        .clients
        .mfa
        .clone()
        .admin_update_factor(with_authorization(&headers, request))
        .await?
        .into_inner();
    Ok(axum::Json(render::factor(&factor)).into_response())
}

async fn delete_factor(
    State(state): State<AppState>,
    Path((user_id, factor_id)): Path<(String, String)>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = AdminFactorRequest {
        user_id,
        factor_id,
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    let factor = state
        .clients
        .mfa
        .clone()
        .admin_delete_factor(with_authorization(&headers, request))
        .await?
        .into_inner();
    Ok(axum::Json(render::factor(&factor)).into_response())
}
