//! The admin API over users: `/admin/users`, `/admin/users/{user_id}` and `/invite`. The user service checks
//! that the caller's token carries an admin role; this module turns query strings and bodies into
//! RPCs and adds GoTrue's pagination headers.

use auth_proto::user::v1::{
    AdminDeleteUserRequest, AdminListUsersRequest, AdminListUsersResponse, AdminUserAttributes, AdminUserRequest,
    InviteRequest,
};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::pagination::{first, link, page_headers, parse_count, validation_failed};
use super::{RedirectQuery, json_text, redirect_target, request_context, with_authorization};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AppJson, AppQuery, query_pairs};
use crate::middleware::RequestId;
use crate::render;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/invite", post(invite))
        .route("/admin/users", get(list_users).post(create_user))
        .route(
            "/admin/users/{user_id}",
            get(get_user).put(update_user).delete(delete_user),
        )
}

/// GoTrue's `sort` parameter for the user list: `created_at [asc|desc]`, the only sortable field.
/// Returns whether the order is ascending.
fn parse_sort(sort: &str) -> Result<bool, ApiError> {
    let mut ascending = false;
    for part in sort.split(',').filter(|_| !sort.is_empty()) {
        let mut words = part.split(' ');
        let name = words.next().unwrap_or_default();
        if name != "created_at" {
            return Err(validation_failed(format!(
                "Bad Sort Parameters: bad field for sort '{name}'"
            )));
        }
        ascending = match words.next() {
            None => false,
            Some(direction) if direction.eq_ignore_ascii_case("asc") => true,
            Some(direction) if direction.eq_ignore_ascii_case("desc") => false,
            Some(direction) => {
                return Err(validation_failed(format!(
                    "Bad Sort Parameters: bad direction for sort '{direction}', only 'asc' and 'desc' allowed"
                )));
            }
        };
    }
    Ok(ascending)
}

async fn list_users(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(raw.as_deref())?;
    let ascending = parse_sort(first(&pairs, "sort"))?;
    // Keyset mode: GoTrue's experimental flag, or (the suite's addition) a `cursor`/`limit` asked
    // for explicitly; `page`/`per_page` always mean offset mode, as in GoTrue.
    let offset_asked = !first(&pairs, "page").is_empty() || !first(&pairs, "per_page").is_empty();
    let keyset_asked = !first(&pairs, "cursor").is_empty() || !first(&pairs, "limit").is_empty();
    let keyset = !offset_asked && (state.config.experimental_cursor_pagination || keyset_asked);
    let limit = if keyset { parse_count(&pairs, "limit")? } else { 0 };
    if keyset && !first(&pairs, "limit").is_empty() && limit == 0 {
        return Err(validation_failed(
            "Bad Pagination Parameters: limit must be greater than 0".into(),
        ));
    }
    let request = AdminListUsersRequest {
        context: Some(request_context(&headers, request_id.as_deref())),
        page: if keyset { 0 } else { parse_count(&pairs, "page")? },
        per_page: if keyset { 0 } else { parse_count(&pairs, "per_page")? },
        filter: first(&pairs, "filter").to_string(),
        ascending,
        keyset,
        limit,
        cursor: first(&pairs, "cursor").to_string(),
    };
    let listed = state
        .clients
        .user
        .clone()
        .admin_list_users(with_authorization(&headers, request))
        .await?
        .into_inner();
    Ok(list_response(&pairs, keyset, &listed))
}

fn list_response(pairs: &[(String, String)], keyset: bool, listed: &AdminListUsersResponse) -> Response {
    let users: Vec<Value> = listed.users.iter().map(render::user).collect();
    let mut body = json!({"users": users, "aud": listed.aud});
    let mut response_headers = HeaderMap::new();
    let path = "/admin/users";
    if keyset {
        let mut pagination = json!({"has_more": listed.has_more});
        if !listed.next_cursor.is_empty() {
            pagination["next_cursor"] = json!(listed.next_cursor);
            let next = format!(
                "{}; rel=\"next\"",
                link(path, pairs, "cursor", &listed.next_cursor, "page")
            );
            if let Ok(value) = HeaderValue::from_str(&next) {
                response_headers.insert(http::header::LINK, value);
            }
        }
        body["pagination"] = pagination;
    } else {
        response_headers = page_headers(path, pairs, listed.total, listed.page, listed.per_page);
    }
    (response_headers, axum::Json(body)).into_response()
}

/// GoTrue's `AdminUserParams`, the body of POST and PUT.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AdminUserBody {
    id: Option<String>,
    aud: Option<String>,
    role: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    password_hash: Option<String>,
    email_confirm: bool,
    phone_confirm: bool,
    user_metadata: Option<Map<String, Value>>,
    app_metadata: Option<Map<String, Value>>,
    ban_duration: Option<String>,
}

impl AdminUserBody {
    fn into_attributes(self, user_id: String, context: auth_proto::common::v1::RequestContext) -> AdminUserAttributes {
        AdminUserAttributes {
            user_id,
            aud: self.aud,
            role: self.role,
            email: self.email,
            phone: self.phone,
            password: self.password,
            password_hash: self.password_hash,
            email_confirm: self.email_confirm,
            phone_confirm: self.phone_confirm,
            user_metadata_json: self.user_metadata.as_ref().map(|m| json_text(Some(m))),
            app_metadata_json: self.app_metadata.as_ref().map(|m| json_text(Some(m))),
            ban_duration: self.ban_duration,
            context: Some(context),
        }
    }
}

async fn create_user(
    State(state): State<AppState>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<AdminUserBody>, ApiError>,
) -> Result<Response, ApiError> {
    let AppJson(body) = body?;
    let context = request_context(&headers, request_id.as_deref());
    let custom_id = body.id.clone().unwrap_or_default();
    let request = body.into_attributes(custom_id, context);
    let user = state
        .clients
        .user
        .clone()
        .admin_create_user(with_authorization(&headers, request))
        .await?
        .into_inner();
    Ok(axum::Json(render::user(&user)).into_response())
}

async fn get_user(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = AdminUserRequest {
        user_id,
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    let user = state
        .clients
        .user
        .clone()
        .admin_get_user(with_authorization(&headers, request))
        .await?
        .into_inner();
    Ok(axum::Json(render::user(&user)).into_response())
}

async fn update_user(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<AdminUserBody>, ApiError>,
) -> Result<Response, ApiError> {
    let AppJson(body) = body?;
    let context = request_context(&headers, request_id.as_deref());
    let request = body.into_attributes(user_id, context);
    let user = state
        .clients
        .user
        .clone()
        .admin_update_user(with_authorization(&headers, request))
        .await?
        .into_inner();
    Ok(axum::Json(render::user(&user)).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DeleteBody {
    should_soft_delete: bool,
}

async fn delete_user(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // GoTrue reads the body only when there is one.
    let body: DeleteBody = if body.is_empty() {
        DeleteBody::default()
    } else {
        serde_json::from_slice(&body).map_err(ApiError::bad_json)?
    };
    let request = AdminDeleteUserRequest {
        user_id,
        should_soft_delete: body.should_soft_delete,
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    state
        .clients
        .user
        .clone()
        .admin_delete_user(with_authorization(&headers, request))
        .await?;
    Ok(axum::Json(json!({})).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InviteBody {
    email: String,
    data: Option<Map<String, Value>>,
}

async fn invite(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<RedirectQuery>,
    request_id: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<AppJson<InviteBody>, ApiError>,
) -> Result<Response, ApiError> {
    let AppJson(body) = body?;
    let request = InviteRequest {
        email: body.email,
        data_json: json_text(body.data.as_ref()),
        redirect_to: redirect_target(&state, &headers, &query),
        context: Some(request_context(&headers, request_id.as_deref())),
    };
    let user = state
        .clients
        .user
        .clone()
        .invite(with_authorization(&headers, request))
        .await?
        .into_inner();
    Ok(axum::Json(render::user(&user)).into_response())
}
