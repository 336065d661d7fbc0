//! The admin API over users (GOTRUE_BEHAVIOUR.md §10 items 37–40): admin-role callers only, GoTrue's
//! pagination headers, create/update/delete with GoTrue's validation answers, and the audit log.

use auth_testkit::{Suite, assert_gotrue_error};
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::support::*;

fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn only_admin_roles_reach_the_admin_api() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let response = suite.get("/admin/users").await?;
    assert_gotrue_error(response, 401, "no_authorization").await;
    let session = sign_up(&suite, &email()).await?;
    let response = suite
        .request(Method::GET, "/admin/users")
        .header("authorization", bearer(&session))
        .send()
        .await?;
    assert_gotrue_error(response, 403, "not_admin").await;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_user_list_pages_like_gotrue() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let response = admin(&suite, Method::GET, "/admin/users", None).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "link"), "</admin/users?page=0>; rel=\"last\"");
    assert_eq!(header(&response, "x-total-count"), "0");
    let body: Value = response.json().await?;
    assert_eq!(body, json!({"users": [], "aud": "authenticated"}));

    let first = email();
    let second = email();
    sign_up(&suite, &first).await?;
    sign_up(&suite, &second).await?;
    let response = admin(&suite, Method::GET, "/admin/users?per_page=1", None).await?;
    assert_eq!(
        header(&response, "link"),
        "</admin/users?page=2&per_page=1>; rel=\"next\", </admin/users?page=2&per_page=1>; rel=\"last\""
    );
    assert_eq!(header(&response, "x-total-count"), "2");
    let body: Value = response.json().await?;
    assert_eq!(body["users"][0]["email"], second, "newest first");

    let body = admin_ok(
        &suite,
        Method::GET,
        "/admin/users?sort=created_at%20asc&page=1&per_page=1",
        None,
    )
    .await?;
    assert_eq!(body["users"][0]["email"], first);
    let filter = &first[..first.find('@').unwrap_or(first.len())];
    let response = admin(&suite, Method::GET, &format!("/admin/users?filter={filter}"), None).await?;
    assert_eq!(header(&response, "x-total-count"), "1");

    let response = admin(&suite, Method::GET, "/admin/users?sort=email", None).await?;
    let body = assert_gotrue_error(response, 400, "validation_failed").await;
    assert_eq!(body["msg"], "Bad Sort Parameters: bad field for sort 'email'");
    let response = admin(&suite, Method::GET, "/admin/users?page=x", None).await?;
    assert_gotrue_error(response, 400, "validation_failed").await;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn cursor_pages_walk_every_user_once() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    for _ in 0..3 {
        sign_up(&suite, &email()).await?;
    }
    let mut seen = Vec::new();
    let mut path = "/admin/users?limit=2".to_string();
    loop {
        let response = admin(&suite, Method::GET, &path, None).await?;
        assert_eq!(response.status(), 200);
        let link = header(&response, "link");
        let body: Value = response.json().await?;
        for user in body["users"].as_array().expect("users") {
            seen.push(user["id"].as_str().expect("id").to_string());
        }
        if body["pagination"]["has_more"] == false {
            assert!(link.is_empty());
            break;
        }
        let cursor = body["pagination"]["next_cursor"].as_str().expect("cursor");
        assert_eq!(link, format!("</admin/users?cursor={cursor}&limit=2>; rel=\"next\""));
        path = format!("/admin/users?limit=2&cursor={cursor}");
    }
    assert_eq!(seen.len(), 3);
    seen.dedup();
    assert_eq!(seen.len(), 3, "no user twice");
    let response = admin(&suite, Method::GET, "/admin/users?cursor=not-a-cursor", None).await?;
    assert_gotrue_error(response, 400, "validation_failed").await;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn admin_create_user_follows_gotrue() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let phone_only = admin_ok(
        &suite,
        Method::POST,
        "/admin/users",
        Some(json!({"phone": "+15551230001"})),
    )
    .await?;
    assert_eq!(phone_only["app_metadata"]["provider"], "phone");
    assert_eq!(phone_only["phone"], "15551230001");

    let address = email();
    let custom_id = uuid::Uuid::new_v4();
    let both = admin_ok(
        &suite,
        Method::POST,
        "/admin/users",
        Some(json!({
            "id": custom_id, "email": address, "phone": "+15551230002", "password": "secret-password-1",
            "email_confirm": true, "user_metadata": {"full_name": "Ada"}, "app_metadata": {"plan": "pro"},
            "role": "editor"
        })),
    )
    .await?;
    assert_eq!(both["id"], custom_id.to_string());
    assert_eq!(
        both["app_metadata"],
        json!({"provider": "email", "providers": ["email", "phone"], "plan": "pro"})
    );
    assert_eq!(both["role"], "editor");
    assert!(both["email_confirmed_at"].is_string());
    assert!(both["phone_confirmed_at"].is_null());
    let providers: Vec<&str> = both["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .map(|i| i["provider"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(providers, ["email", "phone"]);
    assert_eq!(
        password_grant(&suite, &address, "secret-password-1").await?.status(),
        200
    );

    // An imported bcrypt hash signs in with its password.
    let imported = email();
    let hash = bcrypt::hash("imported-password", 4)?;
    admin_ok(
        &suite,
        Method::POST,
        "/admin/users",
        Some(json!({"email": imported, "password_hash": hash, "email_confirm": true})),
    )
    .await?;
    assert_eq!(
        password_grant(&suite, &imported, "imported-password").await?.status(),
        200
    );

    let banned = admin_ok(
        &suite,
        Method::POST,
        "/admin/users",
        Some(json!({"email": email(), "ban_duration": "24h"})),
    )
    .await?;
    let until = chrono::DateTime::parse_from_rfc3339(banned["banned_until"].as_str().expect("banned_until"))?;
    let hours = (until.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!((23 * 60..=24 * 60).contains(&hours), "banned for a day: {hours} min");

    for (body, message) in [
        (json!({}), "Cannot create a user without either an email or phone"),
        (
            json!({"email": email(), "password": "a-password-1", "password_hash": hash}),
            "Only a password or a password hash should be provided",
        ),
        (
            json!({"email": email(), "ban_duration": "forever"}),
            "invalid format for ban duration: time: invalid duration \"forever\"",
        ),
        (
            json!({"email": email(), "id": "00000000-0000-0000-0000-000000000000"}),
            "ID cannot be a nil uuid",
        ),
        (
            json!({"email": email(), "id": "not-a-uuid"}),
            "ID must conform to the uuid v4 format",
        ),
    ] {
        let response = admin(&suite, Method::POST, "/admin/users", Some(body)).await?;
        let error = assert_gotrue_error(response, 400, "validation_failed").await;
        assert_eq!(error["msg"], message);
    }
    let response = admin(&suite, Method::POST, "/admin/users", Some(json!({"email": address}))).await?;
    assert_gotrue_error(response, 422, "email_exists").await;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(users, 4, "refused requests wrote nothing");

    let actors: Vec<String> = sqlx::query_scalar(
        "SELECT payload->>'actor_username' FROM audit_log_entries WHERE payload->>'action' = 'user_signedup'",
    )
    .fetch_all(&suite.db)
    .await?;
    assert_eq!(actors.len(), 4);
    assert!(actors.iter().all(|a| a == "service_role"));
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn admin_update_merges_metadata_bans_and_confirms() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let address = email();
    let session = sign_up(&suite, &address).await?;
    let id = user_id(&session);
    let path = format!("/admin/users/{id}");
    let user = admin_ok(&suite, Method::GET, &path, None).await?;
    assert_eq!(user["email"], address);

    admin_ok(
        &suite,
        Method::PUT,
        &path,
        Some(json!({"user_metadata": {"a": 1, "b": 2}})),
    )
    .await?;
    let user = admin_ok(
        &suite,
        Method::PUT,
        &path,
        Some(json!({"user_metadata": {"a": null, "c": 3}, "app_metadata": {"plan": "pro"}})),
    )
    .await?;
    assert_eq!(user["user_metadata"]["b"], 2);
    assert_eq!(user["user_metadata"]["c"], 3);
    assert!(user["user_metadata"].get("a").is_none(), "null deletes a key");
    assert_eq!(user["app_metadata"]["plan"], "pro");
    assert_eq!(user["app_metadata"]["provider"], "email");

    let user = admin_ok(&suite, Method::PUT, &path, Some(json!({"ban_duration": "1h"}))).await?;
    assert!(user["banned_until"].is_string());
    assert_eq!(password_grant(&suite, &address, PASSWORD).await?.status(), 400);
    let user = admin_ok(&suite, Method::PUT, &path, Some(json!({"ban_duration": "none"}))).await?;
    assert!(user["banned_until"].is_null());

    let response = admin(&suite, Method::PUT, &path, Some(json!({"password": "1"}))).await?;
    assert_gotrue_error(response, 422, "weak_password").await;
    let response = admin(&suite, Method::PUT, &path, Some(json!({"ban_duration": "soon"}))).await?;
    assert_gotrue_error(response, 400, "validation_failed").await;
    let response = admin(&suite, Method::GET, "/admin/users/not-a-uuid", None).await?;
    assert_gotrue_error(response, 404, "validation_failed").await;
    let response = admin(
        &suite,
        Method::GET,
        &format!("/admin/users/{}", uuid::Uuid::new_v4()),
        None,
    )
    .await?;
    assert_gotrue_error(response, 404, "user_not_found").await;

    admin_ok(
        &suite,
        Method::PUT,
        &path,
        Some(json!({"password": "a-new-password-9"})),
    )
    .await?;
    assert_eq!(
        password_grant(&suite, &address, "a-new-password-9").await?.status(),
        200
    );
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn admin_confirming_an_email_makes_an_anonymous_user_permanent() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "true")
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .start()
        .await?;
    for confirm in [false, true] {
        let response = suite.post_json("/signup", &json!({})).await?;
        let session: Value = response.json().await?;
        let id = user_id(&session);
        let user = admin_ok(
            &suite,
            Method::PUT,
            &format!("/admin/users/{id}"),
            Some(json!({"email": email(), "email_confirm": confirm})),
        )
        .await?;
        assert_eq!(user["is_anonymous"], !confirm);
        assert_eq!(
            user["identities"].as_array().map(Vec::len),
            Some(1),
            "one email identity"
        );
    }
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn admin_delete_is_hard_or_soft() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let hard = sign_up(&suite, &email()).await?;
    let path = format!("/admin/users/{}", user_id(&hard));
    assert_eq!(admin_ok(&suite, Method::DELETE, &path, None).await?, json!({}));
    let response = admin(&suite, Method::GET, &path, None).await?;
    assert_gotrue_error(response, 404, "user_not_found").await;

    let address = email();
    let soft = sign_up(&suite, &address).await?;
    let id = user_id(&soft);
    let path = format!("/admin/users/{id}");
    admin_ok(&suite, Method::DELETE, &path, Some(json!({"should_soft_delete": true}))).await?;
    let user = admin_ok(&suite, Method::GET, &path, None).await?;
    assert!(user["deleted_at"].is_string());
    let expected = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(format!("{id}{address}")))
    };
    assert_eq!(user["email"], expected, "GoTrue's obfuscation");
    assert_eq!(user["user_metadata"], json!({}));
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE user_id = $1")
        .bind(id)
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(sessions, 0);
    assert_eq!(password_grant(&suite, &address, PASSWORD).await?.status(), 400);
    let deleted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log_entries WHERE payload->>'action' = 'user_deleted'")
            .fetch_one(&suite.db)
            .await?;
    assert_eq!(deleted, 2);
    suite.shutdown().await;
    Ok(())
}

async fn count_of_user(suite: &Suite, table: &str, id: uuid::Uuid) -> anyhow::Result<i64> {
    let sql = format!("SELECT count(*) FROM {table} WHERE user_id = $1");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(&suite.db)
        .await?)
}

/// The soft delete keeps the row, so the user's sessions (the token service's), factors and
/// WebAuthn credentials (the MFA service's) are removed by asking their owners, after the user
/// service's own commit. An owner that cannot be reached makes the delete answer 503, and
/// repeating it finishes the job.
#[tokio::test]
async fn soft_delete_asks_each_owner_and_a_repeat_finishes_it() -> anyhow::Result<()> {
    let mut suite = autoconfirm_suite().await?;
    let address = email();
    let id = user_id(&sign_up(&suite, &address).await?);
    sqlx::query(
        "INSERT INTO mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, secret) \
         VALUES (gen_random_uuid(), $1, 'phone app', 'totp', 'verified', now(), now(), 'secret-value')",
    )
    .bind(id)
    .execute(&suite.db)
    .await?;
    sqlx::query("INSERT INTO webauthn_credentials (user_id, credential_id, public_key) VALUES ($1, '\\x01', '\\x02')")
        .bind(id)
        .execute(&suite.db)
        .await?;
    let path = format!("/admin/users/{id}");
    let soft = Some(json!({"should_soft_delete": true}));

    let mfa = suite.stop(auth_testkit::Service::Mfa).await?;
    let response = admin(&suite, Method::DELETE, &path, soft.clone()).await?;
    assert_gotrue_error(response, 503, "unexpected_failure").await;
    // Committed before the calls: the account is already anonymous and its sessions ended.
    let user = admin_ok(&suite, Method::GET, &path, None).await?;
    assert!(user["deleted_at"].is_string());
    assert_eq!(password_grant(&suite, &address, PASSWORD).await?.status(), 400);
    assert_eq!(count_of_user(&suite, "sessions", id).await?, 0);
    assert_eq!(count_of_user(&suite, "mfa_factors", id).await?, 1, "its owner was down");

    suite.restart(auth_testkit::Service::Mfa, mfa).await?;
    admin_ok(&suite, Method::DELETE, &path, soft).await?;
    assert_eq!(count_of_user(&suite, "mfa_factors", id).await?, 0);
    assert_eq!(count_of_user(&suite, "webauthn_credentials", id).await?, 0);
    suite.shutdown().await;
    Ok(())
}

/// The `href` of the first link in an email, unescaped.
fn first_link(body: &str) -> String {
    body.split("href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link in the email")
        .replace("&amp;", "&")
}

/// §10 item 41, and the invitation link signing the invited user in.
#[tokio::test]
async fn invitations_follow_gotrue_and_their_links_sign_in() -> anyhow::Result<()> {
    // No per-user interval, so the sign-up attempt below may re-send a confirmation at once.
    let suite = Suite::builder().env("GOTRUE_SMTP_MAX_FREQUENCY", "0s").start().await?;
    let response = suite.post_json("/invite", &json!({"email": email()})).await?;
    assert_gotrue_error(response, 401, "no_authorization").await;

    let address = email();
    let invited = admin_ok(
        &suite,
        Method::POST,
        "/invite",
        Some(json!({"email": address, "data": {"team": "red"}})),
    )
    .await?;
    assert_eq!(invited["email"], address);
    assert!(invited["invited_at"].is_string());
    assert!(invited["confirmation_sent_at"].is_string());
    assert_eq!(invited["user_metadata"]["team"], "red");
    assert_eq!(invited["identities"].as_array().map(Vec::len), Some(1));
    let mail = suite.smtp.next().await.expect("the invitation");
    assert_eq!(mail.header("Subject").as_deref(), Some("You've been invited"));
    let link = first_link(&mail.body());
    assert!(link.contains("type=invite"), "{link}");

    // Invited again while unconfirmed: fine, a new link.
    admin_ok(&suite, Method::POST, "/invite", Some(json!({"email": address}))).await?;
    let link = first_link(&suite.smtp.next().await.expect("the second invitation").body());

    let url = url::Url::parse(&link)?;
    let response = suite
        .get(&format!("{}?{}", url.path(), url.query().unwrap_or_default()))
        .await?;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str()?.to_string();
    assert!(location.contains("type=invite"), "{location}");
    assert!(location.contains("access_token="), "{location}");

    let response = admin(&suite, Method::POST, "/invite", Some(json!({"email": address}))).await?;
    assert_gotrue_error(response, 422, "email_exists").await;

    // A sign-up attempt for another invited address reveals nothing about the invitation.
    let other = email();
    admin_ok(
        &suite,
        Method::POST,
        "/invite",
        Some(json!({"email": other, "data": {"secret": 1}})),
    )
    .await?;
    let response = suite
        .post_json("/signup", &json!({"email": other, "password": PASSWORD}))
        .await?;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    assert_eq!(body["identities"], json!([]));
    assert_eq!(body["user_metadata"], json!({}));
    let invited_actions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log_entries WHERE payload->>'action' = 'user_invited'")
            .fetch_one(&suite.db)
            .await?;
    assert_eq!(invited_actions, 3);
    suite.shutdown().await;
    Ok(())
}

/// X-Total-Count comes from the trigger-kept counter: it follows creation, hard and soft deletion
/// (a soft-deleted row still counts, as in GoTrue) and a move to another audience made in SQL.
#[tokio::test]
async fn the_total_count_follows_every_change() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let user = admin_ok(&suite, Method::POST, "/admin/users", Some(json!({"email": email()}))).await?;
        ids.push(user["id"].as_str().unwrap_or_default().to_string());
    }
    admin_ok(&suite, Method::DELETE, &format!("/admin/users/{}", ids[0]), None).await?;
    admin_ok(
        &suite,
        Method::DELETE,
        &format!("/admin/users/{}", ids[1]),
        Some(json!({"should_soft_delete": true})),
    )
    .await?;
    // GoTrue's API never moves a user between audiences; SQL (a dashboard, a script) can.
    sqlx::query("UPDATE users SET aud = 'partners' WHERE id = $1::uuid")
        .bind(&ids[2])
        .execute(&suite.db)
        .await?;

    let total = |response: &Response| header(response, "x-total-count");
    let response = admin(&suite, Method::GET, "/admin/users", None).await?;
    assert_eq!(total(&response), "2", "one hard-deleted, one moved away");
    let response = suite
        .request(Method::GET, "/admin/users")
        .bearer_auth(auth_testkit::jwt::service_role_token())
        .header("x-jwt-aud", "partners")
        .send()
        .await?;
    assert_eq!(total(&response), "1");
    let counted: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE aud = 'authenticated'")
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(counted, 2);
    suite.shutdown().await;
    Ok(())
}
