//! What the official clients and GoTrue's own behaviour expect of every request, tested as classes:
//! `null` fields, bodies that are not objects, repeated query parameters, errors that are always
//! JSON, sessionless admin tokens, links as GoTrue writes them, and the answers of switched-off
//! features.

use auth_proto::notification::v1::EmailKind;
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

/// Issue 13 items 1 and 4: links carry `GOTRUE_SITE_URL` exactly as configured, and `redirect_to`
/// verbatim unless it holds `&`, `=` or `#` (GoTrue's encodeRedirectURL), in every email and in
/// `action_link`.
#[tokio::test]
async fn links_carry_redirects_as_gotrue_writes_them() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_URI_ALLOW_LIST", "http://localhost:3000/**")
        .env("GOTRUE_SMTP_MAX_FREQUENCY", "0s")
        .start()
        .await?;
    let cases = [
        (None, "redirect_to=http://localhost:3000"),
        (
            Some("http://localhost:3000/welcome"),
            "redirect_to=http://localhost:3000/welcome",
        ),
        (
            Some("http://localhost:3000/cb?a=1&b=2"),
            "redirect_to=http%3A%2F%2Flocalhost%3A3000%2Fcb%3Fa%3D1%26b%3D2",
        ),
    ];
    for (redirect_to, expected) in cases {
        // An email link (sign-up confirmation) ...
        let address = email();
        let path = redirect_to.map_or("/signup".to_string(), |r| {
            format!("/signup?redirect_to={}", urlencode(r))
        });
        let response = suite
            .post_json(&path, &json!({"email": address, "password": PASSWORD}))
            .await?;
        assert_eq!(response.status(), 200);
        let request = last_email_request(&suite, &address).await?;
        assert!(
            request.confirmation_url.ends_with(expected),
            "{} vs {expected}",
            request.confirmation_url
        );
        assert_eq!(request.redirect_to, redirect_to.unwrap_or("http://localhost:3000"));
        assert_eq!(request.site_url, "http://localhost:3000");
        // ... and an action link.
        let mut body = json!({"type": "magiclink", "email": address});
        if let Some(redirect_to) = redirect_to {
            body["redirect_to"] = json!(redirect_to);
        }
        let link = admin_ok(&suite, Method::POST, "/admin/generate_link", Some(body)).await?;
        let action_link = link["action_link"].as_str().unwrap_or_default();
        assert!(action_link.ends_with(expected), "{action_link} vs {expected}");
        assert_eq!(link["redirect_to"], redirect_to.unwrap_or("http://localhost:3000"));
    }

    // Issue 13 security item 6: targets that are not plain URLs never reach a link or a Location.
    for hostile in [
        "http://localhost:3000/a\r\nSet-Cookie: x=1",
        "http://localhost:3000\\@evil.com",
        "http://localhost:3000@evil.com/",
        "http://user:pass@localhost:3000/",
        // (a NUL character is refused before any redirect is considered: see the NUL test)
    ] {
        let link = admin_ok(
            &suite,
            Method::POST,
            "/admin/generate_link",
            Some(json!({"type": "magiclink", "email": email(), "redirect_to": hostile})),
        )
        .await?;
        assert_eq!(link["redirect_to"], "http://localhost:3000", "{hostile:?}");
        let response = suite
            .get(&format!(
                "/verify?type=magiclink&token=nonexistent&redirect_to={}",
                urlencode(hostile)
            ))
            .await?;
        assert_eq!(response.status(), 303, "{hostile:?}");
        let location = response.headers()["location"].to_str()?.to_string();
        assert!(
            location.starts_with("http://localhost:3000#"),
            "{hostile:?} went to {location}"
        );
    }
    suite.shutdown().await;
    Ok(())
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Issue 13 item 5: switched-off features answer GoTrue's errors.
#[tokio::test]
async fn switched_off_features_answer_gotrues_errors() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    for (method, path) in [
        (Method::POST, "/sso"),
        (Method::GET, "/sso/saml/metadata"),
        (Method::POST, "/sso/saml/acs"),
    ] {
        let response = suite.request(method, path).json(&json!({})).send().await?;
        let body = assert_gotrue_error(response, 404, "saml_provider_disabled").await;
        assert_eq!(body["msg"], "SAML 2.0 is disabled");
    }
    let response = suite
        .post_json("/token?grant_type=web3", &json!({"chain": "solana"}))
        .await?;
    let body = assert_gotrue_error(response, 422, "web3_provider_disabled").await;
    assert_eq!(body["msg"], "Web3 provider is disabled");

    let response = suite
        .post_json(
            "/token?grant_type=id_token",
            &json!({"provider": "google", "id_token": "x.y.z"}),
        )
        .await?;
    let body = assert_gotrue_error(response, 400, "provider_disabled").await;
    assert_eq!(
        body["msg"],
        "Provider (issuer \"https://accounts.google.com\") is not enabled"
    );
    let response = suite
        .post_json("/token?grant_type=id_token", &json!({"provider": "google"}))
        .await?;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await?,
        json!({"error": "invalid request", "error_description": "id_token required"})
    );

    // Manual linking and MFA authenticate first.
    for (method, path) in [
        (Method::GET, "/user/identities/authorize?provider=github"),
        (Method::DELETE, "/user/identities/7f0e9e6e-0d9e-4d4e-9d7e-6c1f1f1f1f1f"),
    ] {
        let response = suite.request(method.clone(), path).send().await?;
        assert_gotrue_error(response, 401, "no_authorization").await;
        let session = sign_up(&suite, &email()).await?;
        let response = suite
            .request(method, path)
            .header("authorization", bearer(&session))
            .send()
            .await?;
        let body = assert_gotrue_error(response, 404, "manual_linking_disabled").await;
        assert_eq!(body["msg"], "Manual linking is disabled");
    }
    for (method, path) in [
        (Method::POST, "/factors"),
        (Method::POST, "/factors/abc/verify"),
        (Method::DELETE, "/factors/abc"),
    ] {
        let response = suite.request(method, path).json(&json!({})).send().await?;
        assert_gotrue_error(response, 401, "no_authorization").await;
    }
    suite.shutdown().await;
    Ok(())
}

/// Issue 13 item 7: account-change notifications (password, email, phone), with GoTrue's subjects
/// and bodies, through the outbox to the SMTP server.
#[tokio::test]
async fn account_changes_are_notified_when_switched_on() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED", "false")
        .env("GOTRUE_SMTP_MAX_FREQUENCY", "0s")
        .env("GOTRUE_EXTERNAL_PHONE_ENABLED", "true")
        .env("GOTRUE_MAILER_NOTIFICATIONS_PASSWORD_CHANGED_ENABLED", "true")
        .env("GOTRUE_MAILER_NOTIFICATIONS_EMAIL_CHANGED_ENABLED", "true")
        .env("GOTRUE_MAILER_NOTIFICATIONS_PHONE_CHANGED_ENABLED", "true")
        .env(
            "GOTRUE_MAILER_SUBJECTS_PHONE_CHANGED_NOTIFICATION",
            "Phone now {{ .Phone }}",
        )
        .start()
        .await?;
    let old_address = email();
    let session = sign_up(&suite, &old_address).await?;
    let authorization = bearer(&session);

    let response = put_user(&suite, &authorization, &json!({"password": "a-new-password-456"})).await?;
    assert_eq!(response.status(), 200);
    let notice = last_email_request(&suite, &old_address).await?;
    assert_eq!(notice.kind, EmailKind::PasswordChangedNotification as i32);
    assert_eq!(notice.confirmation_url, "", "a notification carries no link");
    let mail = suite
        .smtp
        .next()
        .await
        .expect("the password notification at the SMTP server");
    assert_eq!(mail.header("Subject").as_deref(), Some("Your password was changed"));
    assert!(
        mail.body()
            .contains("The password for your account was recently changed.")
    );

    let new_address = email();
    let response = put_user(&suite, &authorization, &json!({"email": new_address})).await?;
    assert_eq!(response.status(), 200);
    let change = last_email_request(&suite, &new_address).await?;
    let verified = post_verify(&suite, json!({"type": "email_change", "token_hash": change.token_hash})).await?;
    assert_eq!(verified.status(), 200, "{}", verified.text().await?);
    let notice = last_email_request(&suite, &old_address).await?;
    assert_eq!(notice.kind, EmailKind::EmailChangedNotification as i32);
    assert_eq!(
        (notice.old_email.as_str(), notice.email.as_str()),
        (old_address.as_str(), new_address.as_str())
    );

    // A phone change: the first number is set directly (no previous number, so no notice), the
    // second is verified by its SMS code and notified to the email address.
    let response = admin(
        &suite,
        Method::PUT,
        &format!("/admin/users/{}", user_id(&session)),
        Some(json!({"phone": "15550101010", "phone_confirm": true})),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let response = put_user(&suite, &authorization, &json!({"phone": "15550102020"})).await?;
    assert_eq!(response.status(), 200, "{}", response.text().await?);
    let otp = last_sms_request(&suite, "15550102020").await?.otp;
    let verified = post_verify(
        &suite,
        json!({"type": "phone_change", "phone": "15550102020", "token": otp}),
    )
    .await?;
    assert_eq!(verified.status(), 200, "{}", verified.text().await?);
    let notice = last_email_request(&suite, &new_address).await?;
    assert_eq!(notice.kind, EmailKind::PhoneChangedNotification as i32);
    assert_eq!(
        (notice.old_phone.as_str(), notice.phone.as_str()),
        ("15550101010", "15550102020")
    );
    let mut subjects = Vec::new();
    while let Some(mail) = suite.smtp.next_within(std::time::Duration::from_secs(10)).await {
        subjects.push(mail.header("Subject").unwrap_or_default());
        if subjects.last().is_some_and(|s| s == "Phone now 15550102020") {
            break;
        }
    }
    assert!(
        subjects.contains(&"Your email address was changed".to_string()),
        "{subjects:?}"
    );
    assert_eq!(
        subjects.last().map(String::as_str),
        Some("Phone now 15550102020"),
        "{subjects:?}"
    );

    // Switched off (the default): nothing is queued.
    let quiet = autoconfirm_suite().await?;
    let address = email();
    let session = sign_up(&quiet, &address).await?;
    put_user(&quiet, &bearer(&session), &json!({"password": "a-new-password-456"})).await?;
    assert!(email_requests(&quiet, &address).await?.is_empty());
    quiet.shutdown().await;
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
