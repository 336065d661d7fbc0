//! What the official clients and GoTrue's own decoding expect of every request, tested as classes:
//! `null` fields, bodies that are not objects, repeated query parameters, NUL characters, errors that
//! are always JSON, sessionless admin tokens. Links and switched-off features: `compat_links.rs`;
//! the attack-run fixes: `hardening.rs`.

use auth_testkit::jwt::{TEST_JWT_SECRET, service_role_token, sign_hs256};
use auth_testkit::{Suite, assert_gotrue_error};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// Every JSON body the REST API reads, with each field it knows.
fn every_body(user_id: &str) -> Vec<(Method, String, Vec<&'static str>)> {
    vec![
        (
            Method::POST,
            "/signup".into(),
            vec![
                "email",
                "phone",
                "password",
                "data",
                "channel",
                "code_challenge",
                "code_challenge_method",
            ],
        ),
        (
            Method::POST,
            "/token?grant_type=password".into(),
            vec!["email", "phone", "password"],
        ),
        (
            Method::POST,
            "/token?grant_type=refresh_token".into(),
            vec!["refresh_token"],
        ),
        (
            Method::POST,
            "/token?grant_type=pkce".into(),
            vec!["auth_code", "code_verifier"],
        ),
        (
            Method::POST,
            "/token?grant_type=id_token".into(),
            vec!["id_token", "provider", "client_id", "issuer", "nonce", "access_token"],
        ),
        (
            Method::POST,
            "/recover".into(),
            vec!["email", "code_challenge", "code_challenge_method"],
        ),
        (
            Method::POST,
            "/otp".into(),
            vec![
                "email",
                "phone",
                "channel",
                "create_user",
                "data",
                "code_challenge",
                "code_challenge_method",
            ],
        ),
        (
            Method::POST,
            "/magiclink".into(),
            vec!["email", "data", "code_challenge", "code_challenge_method"],
        ),
        (
            Method::POST,
            "/resend".into(),
            vec!["type", "email", "phone", "code_challenge", "code_challenge_method"],
        ),
        (
            Method::POST,
            "/verify".into(),
            vec!["type", "token", "token_hash", "email", "phone", "redirect_to"],
        ),
        (
            Method::PUT,
            "/user".into(),
            vec![
                "email",
                "phone",
                "password",
                "current_password",
                "nonce",
                "data",
                "app_metadata",
                "channel",
            ],
        ),
        (
            Method::POST,
            "/admin/users".into(),
            vec![
                "id",
                "aud",
                "role",
                "email",
                "phone",
                "password",
                "password_hash",
                "email_confirm",
                "phone_confirm",
                "user_metadata",
                "app_metadata",
                "ban_duration",
            ],
        ),
        (
            Method::PUT,
            format!("/admin/users/{user_id}"),
            vec![
                "aud",
                "role",
                "email",
                "phone",
                "password",
                "email_confirm",
                "phone_confirm",
                "user_metadata",
                "app_metadata",
                "ban_duration",
            ],
        ),
        (
            Method::POST,
            "/admin/generate_link".into(),
            vec!["type", "email", "new_email", "password", "data", "redirect_to"],
        ),
        (Method::POST, "/invite".into(), vec!["email", "data"]),
    ]
}

async fn send(suite: &Suite, method: Method, path: &str, token: &str, body: String) -> anyhow::Result<(u16, Value)> {
    let response = suite
        .request(method, path)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

/// Issue 13 item 2: a `null` field is an absent field on every body, as Go decodes it.
#[tokio::test]
async fn null_fields_are_absent_fields_in_every_body() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let session = sign_up(&suite, &email()).await?;
    let user_id = user_id(&session).to_string();
    let admin = service_role_token();
    for (method, path, fields) in every_body(&user_id) {
        let token = if path.starts_with("/admin") || path == "/invite" {
            admin.clone()
        } else {
            bearer(&session)
        };
        let token = token.trim_start_matches("Bearer ").to_string();
        let nulls: serde_json::Map<String, Value> = fields.iter().map(|f| (f.to_string(), Value::Null)).collect();
        let (status, body) = send(&suite, method.clone(), &path, &token, Value::Object(nulls).to_string()).await?;
        assert!(
            body.get("error_code") != Some(&json!("bad_json")) && status != 500,
            "{method} {path} with null fields answered {status} {body}"
        );
    }

    // /otp: `create_user: null` keeps GoTrue's default (true), so the user is created.
    let address = email();
    let (status, body) = send(
        &suite,
        Method::POST,
        "/otp",
        "",
        json!({"email": address, "create_user": null, "data": null}).to_string(),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let created: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE email = $1")
        .bind(&address)
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(created, 1);

    // PUT /admin/users: null metadata and confirm flags change nothing.
    let before = admin_ok(&suite, Method::GET, &format!("/admin/users/{user_id}"), None).await?;
    let after = admin_ok(
        &suite,
        Method::PUT,
        &format!("/admin/users/{user_id}"),
        Some(json!({"user_metadata": null, "app_metadata": null, "email_confirm": null, "ban_duration": null})),
    )
    .await?;
    assert_eq!(before["user_metadata"], after["user_metadata"]);
    assert_eq!(before["app_metadata"], after["app_metadata"]);
    suite.shutdown().await;
    Ok(())
}

/// Issue 13 item 10: a body that is not a JSON object is 400 `bad_json` everywhere, and creates
/// nothing (`[]` on `/signup` used to create an anonymous user).
#[tokio::test]
async fn bodies_that_are_not_objects_are_bad_json_everywhere() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "true")
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .start()
        .await?;
    let session = sign_up(&suite, &email()).await?;
    let user_id = user_id(&session).to_string();
    let users_before: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&suite.db)
        .await?;
    for (method, path, _) in every_body(&user_id) {
        let token = if path.starts_with("/admin") || path == "/invite" {
            service_role_token()
        } else {
            bearer(&session).trim_start_matches("Bearer ").to_string()
        };
        for body in ["[]", "\"text\"", "1", "true", "[{\"email\":\"a@b.co\"}]"] {
            let (status, answer) = send(&suite, method.clone(), &path, &token, body.into()).await?;
            assert_eq!(
                (status, answer["error_code"].as_str()),
                (400, Some("bad_json")),
                "{method} {path} with {body}: {answer}"
            );
        }
    }
    let users_after: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(users_after, users_before);
    suite.shutdown().await;
    Ok(())
}

/// Issue 13 item 10: a repeated query parameter counts with its first value, and every error,
/// whoever raised it (a route, an extractor, the router), is JSON in GoTrue's shape.
#[tokio::test]
async fn query_parameters_and_errors_are_read_and_answered_as_gotrue() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let address = email();
    sign_up(&suite, &address).await?;
    let response = suite
        .request(Method::POST, "/token?grant_type=password&grant_type=refresh_token")
        .json(&json!({"email": address, "password": PASSWORD}))
        .send()
        .await?;
    assert_eq!(response.status(), 200, "the first grant_type counts");
    let response = suite.get("/verify?type=signup&type=recovery&token=").await?;
    assert_gotrue_error(response, 400, "validation_failed").await;

    // Errors raised outside the routes: a path that is not UTF-8, a method not allowed, a body
    // over the limit, an unknown route.
    for (method, path, body) in [
        (Method::GET, "/admin/users/%FF%FE", String::new()),
        (Method::DELETE, "/signup", String::new()),
        (Method::POST, "/signup", "x".repeat(2 << 20)),
        (Method::GET, "/no/such/route", String::new()),
    ] {
        let response = suite
            .request(method.clone(), path)
            .bearer_auth(service_role_token())
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let content_type = response.headers().get("content-type").cloned();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_client_error(), "{method} {path}: {status}");
        assert_eq!(
            content_type.as_ref().and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{method} {path}"
        );
        assert_eq!(answer["code"], status.as_u16(), "{method} {path}: {answer}");
        assert!(
            answer["error_code"].is_string() && answer["msg"].is_string(),
            "{method} {path}: {answer}"
        );
    }
    suite.shutdown().await;
    Ok(())
}

/// Issue 13 item 3: a sessionless admin token is not asked for a UUID `sub` on admin routes (the
/// official suites mint `{sub: "1234567890", role: "supabase_admin"}`); routes that act as the
/// user still refuse it as GoTrue does.
#[tokio::test]
async fn sessionless_admin_tokens_need_no_uuid_sub() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_JWT_ADMIN_ROLES", "service_role,supabase_admin")
        .start()
        .await?;
    for claims in [
        json!({"sub": "1234567890", "role": "supabase_admin"}),
        json!({"sub": "not-a-uuid", "role": "service_role", "exp": chrono::Utc::now().timestamp() + 60}),
        json!({"sub": "", "role": "service_role"}),
    ] {
        let token = sign_hs256(&claims, TEST_JWT_SECRET);
        for path in ["/admin/users", "/admin/audit"] {
            let response = suite.request(Method::GET, path).bearer_auth(&token).send().await?;
            assert_eq!(response.status(), 200, "{claims} on {path}: {}", response.text().await?);
        }
        let response = suite
            .request(Method::POST, "/admin/users")
            .bearer_auth(&token)
            .json(&json!({"email": email(), "password": PASSWORD}))
            .send()
            .await?;
        assert_eq!(response.status(), 200, "{claims}");
    }
    let token = sign_hs256(&json!({"sub": "1234567890", "role": "supabase_admin"}), TEST_JWT_SECRET);
    let response = suite.request(Method::GET, "/user").bearer_auth(&token).send().await?;
    assert_gotrue_error(response, 400, "bad_jwt").await;
    // A token that names a session is checked in full, sub included.
    let token = sign_hs256(
        &json!({"sub": "1234567890", "role": "supabase_admin", "session_id": uuid::Uuid::new_v4()}),
        TEST_JWT_SECRET,
    );
    let response = suite
        .request(Method::GET, "/admin/users")
        .bearer_auth(&token)
        .send()
        .await?;
    assert_gotrue_error(response, 400, "bad_jwt").await;
    suite.shutdown().await;
    Ok(())
}

/// Issue 13 security item 8: the NUL character, which Postgres cannot store, is refused with a 400
/// wherever it arrives: any body field (nested too), a query parameter.
#[tokio::test]
async fn nul_characters_are_refused_everywhere() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let cases = [
        (
            Method::POST,
            "/signup".to_string(),
            Some(json!({"email": email(), "password": PASSWORD, "data": {"name": "a\u{0}b"}})),
        ),
        (
            Method::POST,
            "/token?grant_type=password".to_string(),
            Some(json!({"email": "a\u{0}@example.com", "password": PASSWORD})),
        ),
        (
            Method::POST,
            "/signup".to_string(),
            Some(json!({"email": email(), "password": PASSWORD, "data": {"k\u{0}": 1}})),
        ),
        (Method::GET, "/admin/users?filter=%00".to_string(), None),
        (Method::GET, "/admin/audit?query=action:%00".to_string(), None),
        (Method::GET, "/verify?type=signup&token=%00".to_string(), None),
    ];
    for (method, path, body) in cases {
        let response = admin(&suite, method.clone(), &path, body).await?;
        let answer = assert_gotrue_error(response, 400, "validation_failed").await;
        assert!(
            answer["msg"].as_str().is_some_and(|m| m.contains("NUL")),
            "{method} {path}: {answer}"
        );
    }
    suite.shutdown().await;
    Ok(())
}
