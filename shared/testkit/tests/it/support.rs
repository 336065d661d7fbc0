//! Helpers shared by the end-to-end tests: sign-ups, sign-ins and direct database fixtures.

use auth_proto::notification::v1::{EmailRequested, SmsRequested};
use auth_testkit::Suite;
use auth_testkit::jwt::service_role_token;
use prost::Message as _;
use reqwest::{Method, Response};
use serde_json::{Value, json};
use uuid::Uuid;

pub const PASSWORD: &str = "test-password-123";

pub fn email() -> String {
    format!("user-{}@example.com", &Uuid::new_v4().simple().to_string()[..12])
}

/// A suite that confirms sign-ups at once (GOTRUE_MAILER_AUTOCONFIRM).
pub async fn autoconfirm_suite() -> anyhow::Result<Suite> {
    Suite::builder().env("GOTRUE_MAILER_AUTOCONFIRM", "true").start().await
}

/// Signs up under autoconfirm and returns the token response.
pub async fn sign_up(suite: &Suite, email: &str) -> anyhow::Result<Value> {
    let response = suite
        .post_json("/signup", &json!({"email": email, "password": PASSWORD}))
        .await?;
    anyhow::ensure!(
        response.status() == 200,
        "signup: {} {}",
        response.status(),
        response.text().await?
    );
    Ok(response.json().await?)
}

pub async fn password_grant(suite: &Suite, email: &str, password: &str) -> anyhow::Result<Response> {
    Ok(suite
        .post_json(
            "/token?grant_type=password",
            &json!({"email": email, "password": password}),
        )
        .await?)
}

pub async fn sign_in(suite: &Suite, email: &str) -> anyhow::Result<Value> {
    let response = password_grant(suite, email, PASSWORD).await?;
    anyhow::ensure!(
        response.status() == 200,
        "sign-in: {} {}",
        response.status(),
        response.text().await?
    );
    Ok(response.json().await?)
}

pub async fn refresh(suite: &Suite, refresh_token: &str) -> anyhow::Result<Response> {
    Ok(suite
        .post_json(
            "/token?grant_type=refresh_token",
            &json!({"refresh_token": refresh_token}),
        )
        .await?)
}

pub async fn refresh_ok(suite: &Suite, refresh_token: &str) -> anyhow::Result<Value> {
    let response = refresh(suite, refresh_token).await?;
    anyhow::ensure!(
        response.status() == 200,
        "refresh: {} {}",
        response.status(),
        response.text().await?
    );
    Ok(response.json().await?)
}

pub fn bearer(session: &Value) -> String {
    format!("Bearer {}", session["access_token"].as_str().unwrap_or_default())
}

pub fn user_id(session: &Value) -> Uuid {
    session["user"]["id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .expect("user id")
}

/// Decodes a JWT's payload without verifying it (the tests check what the server put there).
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

pub fn header(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').next().expect("three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON header")
}

pub async fn get_user(suite: &Suite, authorization: &str) -> anyhow::Result<Response> {
    Ok(suite
        .request(reqwest::Method::GET, "/user")
        .header("Authorization", authorization)
        .send()
        .await?)
}

/// GET /user's `user_metadata`.
pub async fn user_metadata(suite: &Suite, authorization: &str) -> anyhow::Result<Value> {
    let response = get_user(suite, authorization).await?;
    anyhow::ensure!(response.status() == 200, "GET /user: {}", response.status());
    Ok(response.json::<Value>().await?["user_metadata"].clone())
}

pub async fn put_user(suite: &Suite, authorization: &str, body: &Value) -> anyhow::Result<Response> {
    Ok(suite
        .request(reqwest::Method::PUT, "/user")
        .header("Authorization", authorization)
        .json(body)
        .send()
        .await?)
}

/// A request with a `service_role` token.
pub async fn admin(suite: &Suite, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Response> {
    let mut request = suite.request(method, path).bearer_auth(service_role_token());
    if let Some(body) = body {
        request = request.json(&body);
    }
    Ok(request.send().await?)
}

/// An admin request that must answer 200; its JSON body.
pub async fn admin_ok(suite: &Suite, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let response = admin(suite, method, path, body).await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(status == 200, "{status}: {body}");
    Ok(body)
}

/// Every email request queued for `to`, oldest first.
pub async fn email_requests(suite: &Suite, to: &str) -> anyhow::Result<Vec<EmailRequested>> {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT payload FROM outbox_messages WHERE subject LIKE '%.email_requested' ORDER BY created_at, id",
    )
    .fetch_all(&suite.db)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|bytes| EmailRequested::decode(bytes.as_slice()).ok())
        .filter(|request| request.to == to)
        .collect())
}

pub async fn last_email_request(suite: &Suite, to: &str) -> anyhow::Result<EmailRequested> {
    email_requests(suite, to)
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no email queued for {to}"))
}

/// `POST /verify` with a JSON body.
pub async fn post_verify(suite: &Suite, body: Value) -> anyhow::Result<Response> {
    Ok(suite.post_json("/verify", &body).await?)
}

/// The newest SMS request queued for `phone`.
pub async fn last_sms_request(suite: &Suite, phone: &str) -> anyhow::Result<SmsRequested> {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT payload FROM outbox_messages WHERE subject LIKE '%.sms_requested' ORDER BY created_at DESC, id",
    )
    .fetch_all(&suite.db)
    .await?;
    rows.iter()
        .filter_map(|bytes| SmsRequested::decode(bytes.as_slice()).ok())
        .find(|request| request.phone == phone)
        .ok_or_else(|| anyhow::anyhow!("no SMS queued for {phone}"))
}
