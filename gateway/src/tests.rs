//! The HTTP contract of the gateway, exercised in-process through the full middleware stack
//! (`oneshot`, no sockets). End-to-end tests through real services live in `shared/testkit/tests`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{AppJson, AppState, middleware, routes};

fn state(extra: &[(&str, &str)]) -> AppState {
    let mut pairs = vec![
        ("GOTRUE_SITE_URL", "http://localhost:3000"),
        ("API_EXTERNAL_URL", "http://localhost:9999"),
        ("DATABASE_URL", "postgres://postgres@127.0.0.1/postgres"),
        ("GOTRUE_JWT_SECRET", "test-secret-test-secret-test-secret"),
        // nothing listens on port 1: every call to the token service fails fast
        ("AUTH_TOKEN_URL", "http://127.0.0.1:1"),
    ];
    pairs.extend_from_slice(extra);
    let config = auth_core::Config::from_pairs(pairs).expect("valid test config");
    AppState::new(Arc::new(config)).expect("state")
}

/// The real app plus probe routes that exercise what GoTrue endpoints share (JSON bodies, panics, slow
/// handlers) without depending on any one endpoint.
fn app_with_probes(state: AppState) -> Router {
    async fn echo(AppJson(body): AppJson<Value>) -> axum::Json<Value> {
        axum::Json(body)
    }
    async fn panics() -> &'static str {
        panic!("probe panic")
    }
    async fn never_finishes() -> &'static str {
        std::future::pending().await
    }
    let routes = routes::router()
        .route("/probe/echo", post(echo))
        .route("/probe/panic", get(panics))
        .route("/probe/slow", get(never_finishes));
    middleware::wrap(routes, state)
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Value,
}

async fn send(app: Router, request: Request<Body>) -> Reply {
    let response = app.oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    Reply { status, headers, body }
}

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

fn post_req(path: &str, body: impl Into<Body>, api_version: Option<&str>) -> Request<Body> {
    let mut builder = Request::post(path).header("content-type", "application/json");
    if let Some(version) = api_version {
        builder = builder.header("x-supabase-api-version", version);
    }
    builder.body(body.into()).expect("request")
}

#[tokio::test]
async fn health_is_gotrue_shaped() {
    let reply = send(crate::app(state(&[])), get_req("/health")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["name"], "GoTrue");
    assert_eq!(
        reply.body["description"],
        "GoTrue is a user registration and authentication API"
    );
    assert!(reply.body["version"].is_string());
    assert!(reply.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn malformed_json_in_both_error_formats() {
    let reply = send(app_with_probes(state(&[])), post_req("/probe/echo", "{not json", None)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["code"], 400);
    assert_eq!(reply.body["error_code"], "bad_json");
    assert!(
        reply.body["msg"]
            .as_str()
            .expect("msg")
            .starts_with("Could not parse request body as JSON")
    );
    assert_eq!(reply.headers["x-sb-error-code"], "bad_json");
    assert!(reply.body.get("error_id").is_none(), "error_id is for 5xx only");

    let reply = send(
        app_with_probes(state(&[])),
        post_req("/probe/echo", "{not json", Some("2024-01-01")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body.as_object().expect("object").len(), 2, "{}", reply.body);
    assert_eq!(reply.body["code"], "bad_json");
    assert!(reply.body["message"].is_string());
    assert_eq!(reply.headers["x-supabase-api-version"], "2024-01-01");
    assert_eq!(reply.headers["x-sb-error-code"], "bad_json");

    // a date before 2024-01-01 keeps the initial format
    let reply = send(
        app_with_probes(state(&[])),
        post_req("/probe/echo", "", Some("2023-12-31")),
    )
    .await;
    assert_eq!(reply.body["code"], 400);
    assert_eq!(reply.body["error_code"], "bad_json");
}

#[tokio::test]
async fn valid_json_passes_through() {
    let reply = send(app_with_probes(state(&[])), post_req("/probe/echo", r#"{"a":1}"#, None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({"a": 1}));
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_413() {
    let big = format!(r#"{{"data":"{}"}}"#, "x".repeat(middleware::MAX_BODY_BYTES));
    let reply = send(app_with_probes(state(&[])), post_req("/probe/echo", big, None)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.body["error_code"], "request_entity_too_large");
    assert_eq!(reply.body["code"], 413);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json() {
    let reply = send(crate::app(state(&[])), get_req("/no/such/route")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body["error_code"], "not_found");
    assert_eq!(reply.body["code"], 404);

    let reply = send(crate::app(state(&[])), post_req("/health", "{}", Some("2024-06-01"))).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.body["code"], "method_not_allowed");
}

#[tokio::test]
async fn panics_become_500_with_error_id() {
    let reply = send(app_with_probes(state(&[])), get_req("/probe/panic")).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.body["error_code"], "unexpected_failure");
    assert_eq!(
        reply.body["error_id"],
        reply.headers["x-request-id"].to_str().expect("ascii")
    );
    assert!(!reply.body.to_string().contains("probe panic"));
}

#[tokio::test]
async fn slow_requests_time_out_with_504() {
    let app = app_with_probes(state(&[("GOTRUE_API_MAX_REQUEST_DURATION", "50ms")]));
    let reply = send(app, get_req("/probe/slow")).await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(reply.body["error_code"], "request_timeout");
}

#[tokio::test]
async fn request_ids_are_inherited_only_when_configured() {
    let request = || {
        Request::get("/health")
            .header("x-request-id", "client-chosen")
            .body(Body::empty())
            .expect("request")
    };
    let reply = send(crate::app(state(&[])), request()).await;
    assert_ne!(reply.headers["x-request-id"], "client-chosen");

    let app = crate::app(state(&[("REQUEST_ID_HEADER", "X-Request-Id")]));
    let reply = send(app, request()).await;
    assert_eq!(reply.headers["x-request-id"], "client-chosen");
}

#[tokio::test]
async fn cors_follows_gotrue() {
    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/settings")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,x-client-info,x-custom")
        .body(Body::empty())
        .expect("request");
    let app = crate::app(state(&[("GOTRUE_CORS_ALLOWED_HEADERS", "X-Custom")]));
    let response = app.oneshot(preflight).await.expect("infallible");
    assert!(response.status().is_success());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let allowed = headers["access-control-allow-headers"].to_str().expect("ascii");
    for header in ["authorization", "x-client-info", "x-supabase-api-version", "x-custom"] {
        assert!(allowed.contains(header), "{header} not in {allowed}");
    }

    let request = Request::get("/health")
        .header("origin", "https://app.example.com")
        .body(Body::empty())
        .expect("request");
    let response = crate::app(state(&[])).oneshot(request).await.expect("infallible");
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_string();
    for header in ["x-total-count", "link", "x-supabase-api-version"] {
        assert!(exposed.contains(header), "{header} not in {exposed}");
    }
}

#[tokio::test]
async fn an_unreachable_service_is_a_fast_json_503() {
    let started = std::time::Instant::now();
    let reply = send(crate::app(state(&[])), get_req("/.well-known/jwks.json")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body["error_code"], "unexpected_failure");
    assert!(reply.body["error_id"].is_string());
    // bounded by AUTH_GRPC_CONNECT_TIMEOUT (1s), not by the request timeout
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
