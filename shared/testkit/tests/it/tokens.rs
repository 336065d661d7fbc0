//! Refresh tokens, sessions, logout and rate limits (GOTRUE_BEHAVIOUR.md §10 items 14–19, 29, 58).

use auth_testkit::{Suite, assert_gotrue_error};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn refresh_rotates_and_detects_reuse() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let address = email();
    let first = sign_up(&suite, &address).await?;
    let t0 = first["refresh_token"].as_str().unwrap_or_default().to_string();

    let response = refresh(&suite, &t0).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["sb-auth-refresh-token-reuse"], "false");
    let second: Value = response.json().await?;
    let t1 = second["refresh_token"].as_str().unwrap_or_default().to_string();
    assert_ne!(t0, t1);
    let claims = claims(second["access_token"].as_str().unwrap_or_default());
    assert_eq!(
        claims["session_id"],
        self::claims(first["access_token"].as_str().unwrap_or_default())["session_id"]
    );

    // The client lost the response: presenting t0 again hands out t1 once more.
    let again = refresh_ok(&suite, &t0).await?;
    assert_eq!(again["refresh_token"], t1);

    let third = refresh_ok(&suite, &t1).await?;
    let t2 = third["refresh_token"].as_str().unwrap_or_default().to_string();
    let fourth = refresh_ok(&suite, &t2).await?;
    let t3 = fourth["refresh_token"].as_str().unwrap_or_default().to_string();

    // Reusing t0 now is theft: the whole family is revoked, including the newest token.
    let body = assert_gotrue_error(refresh(&suite, &t0).await?, 400, "refresh_token_already_used").await;
    assert_eq!(body["msg"], "Invalid Refresh Token: Already Used");
    assert_gotrue_error(refresh(&suite, &t3).await?, 400, "refresh_token_already_used").await;

    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT payload->>'action' FROM audit_log_entries WHERE payload->>'log_type' = 'token' ORDER BY created_at",
    )
    .fetch_all(&suite.db)
    .await?;
    // Three rotations log both entries; the re-issue for the lost response only `token_refreshed`;
    // the refused reuses nothing.
    let count = |action: &str| actions.iter().filter(|a| a.as_str() == action).count();
    assert_eq!((count("token_refreshed"), count("token_revoked")), (4, 3));
    // Each rotation revoked its parent and recorded the child under it, in the same session.
    let chain: Vec<(String, Option<String>, bool, String)> = sqlx::query_as(
        "SELECT token, parent, revoked, user_id FROM refresh_tokens \
         WHERE session_id = (SELECT session_id FROM refresh_tokens WHERE token = $1) ORDER BY id",
    )
    .bind(&t0)
    .fetch_all(&suite.db)
    .await?;
    let parents: Vec<(String, Option<String>)> = chain.iter().map(|(t, p, _, _)| (t.clone(), p.clone())).collect();
    assert_eq!(
        parents,
        vec![
            (t0.clone(), None),
            (t1.clone(), Some(t0.clone())),
            (t2.clone(), Some(t1.clone())),
            (t3.clone(), Some(t2.clone()))
        ]
    );
    assert!(
        chain
            .iter()
            .all(|(_, _, revoked, user)| *revoked && *user == user_id(&first).to_string())
    );
    let refreshed_at: Option<chrono::NaiveDateTime> = sqlx::query_scalar("SELECT refreshed_at FROM sessions")
        .fetch_one(&suite.db)
        .await?;
    assert!(refreshed_at.is_some());

    let unknown = assert_gotrue_error(refresh(&suite, "abcdefghijkl").await?, 400, "refresh_token_not_found").await;
    assert_eq!(unknown["msg"], "Invalid Refresh Token: Refresh Token Not Found");
    assert_gotrue_error(refresh(&suite, "short").await?, 400, "validation_failed").await;
    let missing = suite.post_json("/token?grant_type=refresh_token", &json!({})).await?;
    assert_eq!(missing.status(), 400);
    let body: Value = missing.json().await?;
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "refresh_token required"})
    );
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_all_get_the_same_answer() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let session = sign_up(&suite, &email()).await?;
    let token = session["refresh_token"].as_str().unwrap_or_default().to_string();
    let attempts = (0..8).map(|_| refresh_ok(&suite, &token));
    let results = futures::future::join_all(attempts).await;
    let issued: std::collections::BTreeSet<String> = results
        .into_iter()
        .map(|r| r.map(|v| v["refresh_token"].as_str().unwrap_or_default().to_string()))
        .collect::<anyhow::Result<_>>()?;
    assert_eq!(
        issued.len(),
        1,
        "one rotation, every caller gets its result: {issued:?}"
    );
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM refresh_tokens WHERE revoked = false")
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(live, 1);
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn refresh_waiting_too_long_on_a_locked_session_is_a_conflict() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let session = sign_up(&suite, &email()).await?;
    let token = session["refresh_token"].as_str().unwrap_or_default().to_string();

    // Another transaction holds the session row, as a stuck refresh would.
    let mut holder = suite.db.begin().await?;
    sqlx::query("SELECT id FROM sessions FOR UPDATE")
        .execute(&mut *holder)
        .await?;
    let body = assert_gotrue_error(refresh(&suite, &token).await?, 409, "conflict").await;
    assert_eq!(
        body["msg"],
        "Too many concurrent token refresh requests on the same session or refresh token"
    );
    holder.rollback().await?;

    // Once the lock is gone the token still works: the refused attempt changed nothing.
    refresh_ok(&suite, &token).await?;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn banned_users_and_expired_sessions_cannot_refresh() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_SESSIONS_TIMEBOX", "1h")
        .env("GOTRUE_SESSIONS_INACTIVITY_TIMEOUT", "30m")
        .start()
        .await?;
    let address = email();
    let session = sign_up(&suite, &address).await?;
    let token = session["refresh_token"].as_str().unwrap_or_default().to_string();
    let session_id: uuid::Uuid = claims(session["access_token"].as_str().unwrap_or_default())["session_id"]
        .as_str()
        .unwrap_or_default()
        .parse()?;

    sqlx::query("UPDATE users SET banned_until = now() + interval '1 day' WHERE email = $1")
        .bind(&address)
        .execute(&suite.db)
        .await?;
    assert_gotrue_error(refresh(&suite, &token).await?, 400, "user_banned").await;
    sqlx::query("UPDATE users SET banned_until = NULL WHERE email = $1")
        .bind(&address)
        .execute(&suite.db)
        .await?;

    // Inactivity: not refreshed for 31 minutes.
    sqlx::query("UPDATE refresh_tokens SET updated_at = now() - interval '31 minutes' WHERE token = $1")
        .bind(&token)
        .execute(&suite.db)
        .await?;
    sqlx::query("UPDATE sessions SET created_at = now() - interval '31 minutes' WHERE id = $1")
        .bind(session_id)
        .execute(&suite.db)
        .await?;
    let body = assert_gotrue_error(refresh(&suite, &token).await?, 400, "session_expired").await;
    assert_eq!(body["msg"], "Invalid Refresh Token: Session Expired (Inactivity)");

    // Timebox: the session began more than an hour ago.
    sqlx::query("UPDATE sessions SET created_at = now() - interval '2 hours', refreshed_at = (now() AT TIME ZONE 'UTC') WHERE id = $1")
        .bind(session_id)
        .execute(&suite.db)
        .await?;
    let body = assert_gotrue_error(refresh(&suite, &token).await?, 400, "session_expired").await;
    assert_eq!(body["msg"], "Invalid Refresh Token: Session Expired");

    // not_after: in the past refused, in the future fine.
    sqlx::query("UPDATE sessions SET created_at = now(), not_after = now() - interval '1 second' WHERE id = $1")
        .bind(session_id)
        .execute(&suite.db)
        .await?;
    assert_gotrue_error(refresh(&suite, &token).await?, 400, "session_expired").await;
    sqlx::query("UPDATE sessions SET not_after = now() + interval '1 hour' WHERE id = $1")
        .bind(session_id)
        .execute(&suite.db)
        .await?;
    refresh_ok(&suite, &token).await?;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn single_session_per_user() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_SESSIONS_SINGLE_PER_USER", "true")
        .start()
        .await?;
    let address = email();
    let older = sign_up(&suite, &address).await?;
    let newer = sign_in(&suite, &address).await?;
    refresh_ok(&suite, newer["refresh_token"].as_str().unwrap_or_default()).await?;
    let body = assert_gotrue_error(
        refresh(&suite, older["refresh_token"].as_str().unwrap_or_default()).await?,
        400,
        "session_expired",
    )
    .await;
    assert_eq!(
        body["msg"],
        "Invalid Refresh Token: Session Expired (Revoked by Newer Login)"
    );
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn v2_refresh_tokens() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_SECURITY_REFRESH_TOKEN_ALGORITHM_VERSION", "2")
        .start()
        .await?;
    let response = suite
        .post_json("/signup", &json!({"email": email(), "password": PASSWORD}))
        .await?;
    assert_eq!(response.headers()["sb-auth-refresh-token-counter"], "0");
    let session: Value = response.json().await?;
    let mut tokens = vec![session["refresh_token"].as_str().unwrap_or_default().to_string()];
    assert!(tokens[0].len() > 12);
    for expected in 1..=130u64 {
        let response = refresh(&suite, tokens.last().expect("one token")).await?;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["sb-auth-refresh-token-counter"],
            expected.to_string().as_str()
        );
        let body: Value = response.json().await?;
        tokens.push(body["refresh_token"].as_str().unwrap_or_default().to_string());
    }
    let stored: i64 = sqlx::query_scalar("SELECT refresh_token_counter FROM sessions")
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(stored, 130);
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM refresh_tokens")
            .fetch_one(&suite.db)
            .await?,
        0
    );

    // The previous token (client failed to save the new one) is re-issued without moving the counter.
    let previous = refresh(&suite, &tokens[129]).await?;
    assert_eq!(previous.status(), 200);
    assert_eq!(previous.headers()["sb-auth-refresh-token-reuse-cause"], "fail-to-save");
    assert_eq!(previous.headers()["sb-auth-refresh-token-counter"], "130");

    // An older one is reuse: the session is terminated.
    assert_gotrue_error(refresh(&suite, &tokens[0]).await?, 400, "refresh_token_already_used").await;
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sessions")
            .fetch_one(&suite.db)
            .await?,
        0
    );
    assert_gotrue_error(refresh(&suite, &tokens[130]).await?, 400, "refresh_token_not_found").await;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn logout_scopes() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let address = email();
    let a = sign_up(&suite, &address).await?;
    let b = sign_in(&suite, &address).await?;
    let c = sign_in(&suite, &address).await?;
    let logout = |session: &Value, scope: &str| {
        suite
            .request(reqwest::Method::POST, &format!("/logout?scope={scope}"))
            .header("Authorization", bearer(session))
            .send()
    };
    let sessions = || sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sessions").fetch_one(&suite.db);

    let response = logout(&c, "local").await?;
    assert_eq!(response.status(), 204);
    assert_eq!(sessions().await?, 2);
    assert_eq!(logout(&a, "others").await?.status(), 204);
    assert_eq!(sessions().await?, 1);
    assert_gotrue_error(
        refresh(&suite, b["refresh_token"].as_str().unwrap_or_default()).await?,
        400,
        "refresh_token_not_found",
    )
    .await;
    let d = sign_in(&suite, &address).await?;
    assert_eq!(logout(&d, "").await?.status(), 204);
    assert_eq!(sessions().await?, 0);
    // The token of an ended session no longer authenticates.
    assert_gotrue_error(get_user(&suite, &bearer(&a)).await?, 403, "session_not_found").await;
    let e = sign_in(&suite, &address).await?;
    assert_eq!(logout(&e, "global").await?.status(), 204);
    let f = sign_in(&suite, &address).await?;
    assert_gotrue_error(logout(&f, "everything").await?, 400, "validation_failed").await;
    let unauthenticated = suite.request(reqwest::Method::POST, "/logout").send().await?;
    assert_gotrue_error(unauthenticated, 401, "no_authorization").await;
    let actions: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log_entries WHERE payload->>'action' = 'logout'")
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(actions, 4);
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn per_ip_rate_limit_holds_across_gateway_replicas() -> anyhow::Result<()> {
    let first = Suite::builder()
        .env("GOTRUE_RATE_LIMIT_HEADER", "My-Custom-Header")
        .env("GOTRUE_RATE_LIMIT_TOKEN_REFRESH", "30")
        .start()
        .await?;
    // A second replica of everything on the same database and the same NATS prefix.
    let second = Suite::builder()
        .share_database_with(&first)
        .env("AUTH_NATS_PREFIX", &first.config.suite.nats_prefix)
        .env("GOTRUE_RATE_LIMIT_HEADER", "My-Custom-Header")
        .env("GOTRUE_RATE_LIMIT_TOKEN_REFRESH", "30")
        .start()
        .await?;
    let token = |suite: &Suite, ip: &str| {
        suite
            .request(reqwest::Method::POST, "/token?grant_type=password")
            .header("My-Custom-Header", ip)
            .header("X-Forwarded-For", format!("10.0.0.{}", rand_octet()))
            .body("")
            .send()
    };
    for i in 0..30 {
        let suite = if i % 2 == 0 { &first } else { &second };
        let response = token(suite, "1.2.3.4").await?;
        assert_eq!(response.status(), 400, "request {i} is not limited (empty body → 400)");
    }
    let limited = assert_gotrue_error(token(&first, "1.2.3.4").await?, 429, "over_request_rate_limit").await;
    assert_eq!(limited["msg"], "Request rate limit reached");
    assert_gotrue_error(token(&second, "1.2.3.4").await?, 429, "over_request_rate_limit").await;
    assert_eq!(
        token(&second, "5.6.7.8").await?.status(),
        400,
        "another client is not limited"
    );
    second.shutdown().await;
    first.shutdown().await;

    let suite = Suite::builder()
        .env("GOTRUE_RATE_LIMIT_HEADER", "My-Custom-Header")
        .env("GOTRUE_RATE_LIMIT_ANONYMOUS_USERS", "5")
        .env("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "true")
        .start()
        .await?;
    for _ in 0..5 {
        let response = suite
            .request(reqwest::Method::POST, "/signup")
            .header("My-Custom-Header", "9.9.9.9")
            .json(&json!({}))
            .send()
            .await?;
        assert_eq!(response.status(), 200);
    }
    let response = suite
        .request(reqwest::Method::POST, "/signup")
        .header("My-Custom-Header", "9.9.9.9")
        .json(&json!({}))
        .send()
        .await?;
    assert_gotrue_error(response, 429, "over_request_rate_limit").await;
    suite.shutdown().await;
    Ok(())
}

fn rand_octet() -> u8 {
    (uuid::Uuid::new_v4().as_bytes()[0] % 250) + 1
}

#[tokio::test]
async fn v1_sessions_move_to_v2_tokens_at_the_upgrade_percentage() -> anyhow::Result<()> {
    let v1 = autoconfirm_suite().await?;
    let session = sign_up(&v1, &email()).await?;
    let t0 = session["refresh_token"].as_str().unwrap_or_default().to_string();
    assert_eq!(t0.len(), 12, "a v1 token");
    let v2 = Suite::builder()
        .share_database_with(&v1)
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_SECURITY_REFRESH_TOKEN_ALGORITHM_VERSION", "2")
        .env("GOTRUE_SECURITY_REFRESH_TOKEN_UPGRADE_PERCENTAGE", "100")
        .start()
        .await?;

    let response = refresh(&v2, &t0).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["sb-auth-refresh-token-counter"], "0");
    let upgraded: Value = response.json().await?;
    let first_v2 = upgraded["refresh_token"].as_str().unwrap_or_default().to_string();
    assert!(first_v2.len() > 12, "a v2 token");
    // The v1 family is retired: the presented token and the child recorded for it.
    let rows: Vec<(Option<String>, bool)> = sqlx::query_as("SELECT parent, revoked FROM refresh_tokens ORDER BY id")
        .fetch_all(&v2.db)
        .await?;
    assert_eq!(rows, vec![(None, true), (Some(t0.clone()), true)]);
    let has_key: bool = sqlx::query_scalar("SELECT refresh_token_hmac_key IS NOT NULL FROM sessions")
        .fetch_one(&v2.db)
        .await?;
    assert!(has_key);

    let response = refresh(&v2, &first_v2).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["sb-auth-refresh-token-counter"], "1");
    assert_gotrue_error(refresh(&v2, &t0).await?, 400, "refresh_token_already_used").await;
    v2.shutdown().await;
    v1.shutdown().await;
    Ok(())
}
