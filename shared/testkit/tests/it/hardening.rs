//! What the attack run found, each closed as a class: large access tokens, idle and excess
//! connections, the rate-limit header, guessed one-time codes, a token service that fails mid-request,
//! and admin listings of users with the largest metadata.

use auth_testkit::{Suite, assert_gotrue_error};
use reqwest::Method;
use serde_json::json;

use crate::support::*;

/// Issue 13 security item 3: an access token as large as GoTrue's 1 MiB header limit allows works
/// on every authenticated call (the gateway and the services accept such headers).
#[tokio::test]
async fn large_access_tokens_work_like_small_ones() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let session = sign_up(&suite, &email()).await?;
    let big = "x".repeat(600 * 1024);
    let response = put_user(&suite, &bearer(&session), &json!({"data": {"big": big}})).await?;
    assert_eq!(response.status(), 200);
    let refreshed = refresh_ok(&suite, session["refresh_token"].as_str().unwrap_or_default()).await?;
    let token = refreshed["access_token"].as_str().unwrap_or_default();
    assert!(
        token.len() > 700 * 1024,
        "the token carries the metadata ({} bytes)",
        token.len()
    );
    let response = get_user(&suite, &format!("Bearer {token}")).await?;
    assert_eq!(response.status(), 200);
    let response = suite.request(Method::POST, "/logout").bearer_auth(token).send().await?;
    assert_eq!(response.status(), 204);
    suite.shutdown().await;
    Ok(())
}

/// Issue 13 security item 4: silent connections are closed after the header-read timeout, and past
/// the connection cap a new connection is answered 503 in GoTrue's shape instead of exhausting the
/// process; once the silent ones are gone the gateway answers again.
#[tokio::test]
async fn idle_connections_are_closed_and_excess_ones_shed() -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let suite = Suite::builder()
        .env("AUTH_HTTP_MAX_CONNECTIONS", "4")
        .env("AUTH_HTTP_HEADER_READ_TIMEOUT", "1s")
        .start()
        .await?;
    let addr = url::Url::parse(&suite.url("/"))?.socket_addrs(|| None)?[0];
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(tokio::net::TcpStream::connect(addr).await?);
    }
    // The cap is reached: a fifth connection is told so at once.
    let mut extra = tokio::net::TcpStream::connect(addr).await?;
    extra.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").await?;
    let mut answer = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), extra.read_to_string(&mut answer)).await??;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains(r#""code":503"#), "{answer}");
    // The silent ones are closed by the server (end of stream) ...
    for mut stream in silent {
        let mut buffer = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut buffer)).await;
        assert!(read.is_ok(), "a silent connection was left open");
    }
    // ... and their slots are free again.
    retry_health(&suite).await?;
    suite.shutdown().await;
    Ok(())
}

async fn retry_health(suite: &Suite) -> anyhow::Result<()> {
    auth_testkit::retry_until(|| async { suite.get("/health").await.is_ok_and(|r| r.status() == 200) }).await
}

/// Issue 13 security item 9: whatever the rate-limit header holds, it is answered at once and never
/// lets requests past the limit: an oversized value is refused, a long one still counts.
#[tokio::test]
async fn the_rate_limit_header_cannot_stall_or_bypass_the_limit() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_RATE_LIMIT_HEADER", "X-Real-IP")
        .start()
        .await?;
    let started = std::time::Instant::now();
    let response = suite
        .request(Method::POST, "/token?grant_type=password")
        .header("x-real-ip", "9".repeat(3000))
        .json(&json!({"email": "a@example.com", "password": "wrong"}))
        .send()
        .await?;
    assert_gotrue_error(response, 400, "validation_failed").await;
    let long_but_allowed = "1".repeat(200);
    let mut statuses = Vec::new();
    // GoTrue's /token bucket holds a burst of 30.
    for _ in 0..35 {
        let response = suite
            .request(Method::POST, "/token?grant_type=password")
            .header("x-real-ip", &long_but_allowed)
            .json(&json!({"email": "a@example.com", "password": "wrong"}))
            .send()
            .await?;
        statuses.push(response.status().as_u16());
    }
    assert!(statuses.contains(&429), "the limit holds for a long key: {statuses:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "no request stalled"
    );
    suite.shutdown().await;
    Ok(())
}

/// Issue 13 security item 11 (beyond GoTrue): wrong codes are counted per user across replicas;
/// at `AUTH_OTP_MAX_FAILURES` the pending codes die, a new code starts a new count.
#[tokio::test]
async fn guessed_codes_die_after_too_many_wrong_tries() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("AUTH_OTP_MAX_FAILURES", "3")
        .env("GOTRUE_SMTP_MAX_FREQUENCY", "0s")
        .start()
        .await?;
    let address = email();
    let response = suite
        .post_json("/signup", &json!({"email": address, "password": PASSWORD}))
        .await?;
    assert_eq!(response.status(), 200);
    let code = last_email_request(&suite, &address).await?.token;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let verify = |token: &str| post_verify(&suite, json!({"type": "signup", "email": address, "token": token}));

    // Under the limit a mistyped code costs nothing.
    assert_gotrue_error(verify(wrong).await?, 403, "otp_expired").await;
    assert_gotrue_error(verify(wrong).await?, 403, "otp_expired").await;
    assert_gotrue_error(verify(wrong).await?, 403, "otp_expired").await;
    // The third wrong code killed the pending one: even the right code is refused now.
    assert_gotrue_error(verify(&code).await?, 403, "otp_expired").await;

    // A new code starts a new count and works.
    let response = suite
        .post_json("/resend", &json!({"type": "signup", "email": address}))
        .await?;
    assert_eq!(response.status(), 200, "{}", response.text().await?);
    let fresh = last_email_request(&suite, &address).await?.token;
    assert_gotrue_error(verify(wrong).await?, 403, "otp_expired").await;
    let response = verify(&fresh).await?;
    assert_eq!(response.status(), 200, "{}", response.text().await?);
    suite.shutdown().await;
    Ok(())
}

/// Issue 13 security item 5: when the token service is down, sign-up and sign-in answer 503 and
/// leave nothing behind (no user without a session, no `login` entry, no moved `last_sign_in_at`),
/// so the client can simply try again once it is back.
#[tokio::test]
async fn a_failed_session_leaves_nothing_half_written() -> anyhow::Result<()> {
    let mut suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "true")
        .start()
        .await?;
    let existing = email();
    sign_up(&suite, &existing).await?;
    let db = suite.db.clone();
    let count = |sql: &'static str| {
        let db = db.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&db).await }
    };
    let users_before = count("SELECT count(*) FROM users").await?;
    let audit_before = count("SELECT count(*) FROM audit_log_entries").await?;
    let sign_in_before: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_sign_in_at FROM users WHERE email = $1")
            .bind(&existing)
            .fetch_one(&suite.db)
            .await?;

    let token_addr = suite.stop(auth_testkit::Service::Token).await?;
    let newcomer = email();
    let response = suite
        .post_json("/signup", &json!({"email": newcomer, "password": PASSWORD}))
        .await?;
    assert_gotrue_error(response, 503, "unexpected_failure").await;
    let response = suite.post_json("/signup", &json!({})).await?;
    assert_gotrue_error(response, 503, "unexpected_failure").await;
    let response = password_grant(&suite, &existing, PASSWORD).await?;
    assert_gotrue_error(response, 503, "unexpected_failure").await;
    assert_eq!(
        count("SELECT count(*) FROM users").await?,
        users_before,
        "no user without a session"
    );
    assert_eq!(
        count("SELECT count(*) FROM audit_log_entries").await?,
        audit_before,
        "no audit entry"
    );
    let sign_in_after: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_sign_in_at FROM users WHERE email = $1")
            .bind(&existing)
            .fetch_one(&suite.db)
            .await?;
    assert_eq!(sign_in_after, sign_in_before);

    // Back up: the same requests simply succeed.
    suite.restart(auth_testkit::Service::Token, token_addr).await?;
    sign_up(&suite, &newcomer).await?;
    sign_in(&suite, &existing).await?;
    suite.shutdown().await;
    Ok(())
}

/// Issue 13 security item 2: users holding as much metadata as GoTrue's 1 MiB body allows are
/// listed (the answer is larger than gRPC's default 4 MiB message).
#[tokio::test]
async fn admin_lists_users_with_the_largest_metadata() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "true")
        .start()
        .await?;
    let big = "m".repeat(950 * 1024);
    for _ in 0..6 {
        let response = suite.post_json("/signup", &json!({"data": {"notes": big}})).await?;
        assert_eq!(response.status(), 200);
    }
    let page = admin_ok(&suite, Method::GET, "/admin/users?per_page=50", None).await?;
    assert_eq!(page["users"].as_array().map(Vec::len), Some(6));
    suite.shutdown().await;
    Ok(())
}
