//! The cross-cutting HTTP behaviour, in GoTrue's order: request id → logging → body limit →
//! request timeout → CORS → the routes, with every error rendered in GoTrue's JSON shape.

use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::{API_VERSION_HEADER, ApiError, ApiVersion};

/// GoTrue's request body limit.
pub const MAX_BODY_BYTES: usize = 1 << 20;

const REQUEST_ID_RESPONSE_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request: from `REQUEST_ID_HEADER` when configured and present, else a fresh
/// UUID (a client-chosen id is never trusted unless the operator asked for it).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub fn wrap(routes: Router<AppState>, state: AppState) -> Router {
    let timeout = state.config.api.max_request_duration;
    routes
        .layer(cors(&state))
        .layer(middleware::from_fn_with_state(timeout, request_timeout))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // A panic becomes an ordinary 500 `unexpected_failure`, rendered like every other error.
        .layer(CatchPanicLayer::custom(|_panic: Box<dyn std::any::Any + Send>| {
            tracing::error!("handler panicked");
            ApiError::unexpected().into_response()
        }))
        .layer(middleware::from_fn(render_errors))
        .layer(middleware::from_fn(record_metrics))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let request_id = request
                .extensions()
                .get::<RequestId>()
                .map(|id| id.0.as_str())
                .unwrap_or_default();
            let span = tracing::info_span!("http", method = %request.method(), path = request.uri().path(), request_id);
            // A caller's W3C `traceparent` makes this request part of its trace.
            auth_core::telemetry::continue_trace(&span, |name| request.headers().get(name)?.to_str().ok());
            span
        }))
        .layer(middleware::from_fn_with_state(state.clone(), assign_request_id))
        .layer(middleware::from_fn_with_state(state.clone(), scope_client_ip))
        .with_state(state)
}

/// GoTrue's `GetIPAddress`: `Sb-Forwarded-For` when enabled, else the first valid address of
/// `X-Forwarded-For`, else the peer's address.
fn client_ip(request: &Request, sb_forwarded_for_enabled: bool) -> String {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let first_address = |chain: &str| {
        chain
            .split(',')
            .find_map(|part| part.trim().parse::<std::net::IpAddr>().ok())
            .map(|ip| ip.to_string())
    };
    let forwarded = if sb_forwarded_for_enabled {
        first_address(header("sb-forwarded-for"))
    } else {
        None
    };
    forwarded
        .or_else(|| first_address(header("x-forwarded-for")))
        .or_else(|| {
            let peer = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>()?;
            Some(peer.0.ip().to_string())
        })
        .unwrap_or_default()
}

/// Serves the request inside its client address's scope: handlers read it from there, and every
/// gRPC call the request makes carries it to the services (see `auth_core::client_ip`).
async fn scope_client_ip(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ip = client_ip(&request, state.config.security.sb_forwarded_for_enabled);
    auth_core::client_ip::scope(ip, next.run(request)).await
}

async fn assign_request_id(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let inherited = state
        .config
        .api
        .request_id_header
        .as_deref()
        .and_then(|name| request.headers().get(name))
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty() && value.len() <= 200)
        .map(str::to_string);
    let id = inherited.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_RESPONSE_HEADER, value);
    }
    response
}

/// Writes the body of every error response in the format the request asked for, and turns the
/// router's bare 404/405 into JSON errors.
async fn render_errors(request: Request, next: Next) -> Response {
    let version = ApiVersion::from_headers(request.headers());
    let request_id = request.extensions().get::<RequestId>().cloned();
    let mut response = next.run(request).await;
    let error = match response.extensions_mut().remove::<ApiError>() {
        Some(error) => error,
        // An error answered by a layer or an extractor of axum's own (a malformed path, a method
        // not allowed, a body limit): GoTrue answers every error as JSON, so it is rendered too.
        None if is_plain_error(&response) => {
            let (parts, body) = response.into_parts();
            let error = plain_error(parts.status, body).await;
            response = Response::from_parts(parts, axum::body::Body::empty());
            error
        }
        None => return response,
    };
    let mut rendered = error.render(version, request_id.as_ref().map(|id| id.0.as_str()));
    // Keep headers the handler or CORS layer set (Allow, Access-Control-*), but not the body's.
    for (name, value) in response.headers() {
        if name != http::header::CONTENT_TYPE && name != http::header::CONTENT_LENGTH {
            rendered.headers_mut().entry(name).or_insert(value.clone());
        }
    }
    rendered
}

/// An error status whose body is not already JSON.
fn is_plain_error(response: &Response) -> bool {
    let json = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    (response.status().is_client_error() || response.status().is_server_error()) && !json
}

/// The error a plain-text error response stands for, its text as the message (4xx only: a 5xx text
/// may hold internals, so it gets GoTrue's generic message).
async fn plain_error(status: StatusCode, body: axum::body::Body) -> ApiError {
    use auth_core::ErrorCode;
    if status.is_server_error() {
        return ApiError::new(
            status,
            ErrorCode::UnexpectedFailure,
            auth_core::error::UNEXPECTED_FAILURE_MESSAGE,
        );
    }
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::RequestEntityTooLarge,
        StatusCode::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::OverRequestRateLimit,
        _ => ErrorCode::ValidationFailed,
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_string()
    } else {
        text
    };
    ApiError::new(status, code, message)
}

/// `http_requests_total` and `http_request_duration_seconds` per matched route (`GOTRUE_METRICS_ENABLED`).
async fn record_metrics(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

async fn request_timeout(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::request_timeout().into_response(),
    }
}

/// GoTrue's CORS policy: any origin (reflected, since credentials are allowed), its method list, its
/// header list plus `GOTRUE_CORS_ALLOWED_HEADERS`, and the headers the admin API exposes.
fn cors(state: &AppState) -> CorsLayer {
    let mut allowed = vec![
        HeaderName::from_static("accept"),
        // supabase-js sends it; on Supabase the API gateway in front answers CORS for it
        HeaderName::from_static("apikey"),
        HeaderName::from_static("authorization"),
        HeaderName::from_static("content-type"),
        HeaderName::from_static("x-client-ip"),
        HeaderName::from_static("x-client-info"),
        HeaderName::from_static("x-jwt-aud"),
        HeaderName::from_static("x-use-cookie"),
        API_VERSION_HEADER,
    ];
    allowed.extend(
        state
            .config
            .cors_allowed_headers
            .iter()
            .filter_map(|name| HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).ok()),
    );
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers(allowed)
        .expose_headers([
            HeaderName::from_static("x-total-count"),
            HeaderName::from_static("link"),
            API_VERSION_HEADER,
        ])
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, auth_core::ErrorCode::NotFound, "Not Found")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        auth_core::ErrorCode::MethodNotAllowed,
        "Method Not Allowed",
    )
}
