//! `POST /admin/generate_link` (every type; the links verify through `/verify`, nothing is sent)
//! and `GET /admin/audit` (pagination, `query=` scopes, actor and IP).

use auth_testkit::{Suite, assert_gotrue_error};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

async fn generate(suite: &Suite, body: Value) -> anyhow::Result<Value> {
    admin_ok(suite, Method::POST, "/admin/generate_link", Some(body)).await
}

/// Follows a generated link as a browser would; returns the redirect's `Location`.
async fn follow(suite: &Suite, link: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(link)?;
    let response = suite
        .get(&format!("{}?{}", url.path(), url.query().unwrap_or_default()))
        .await?;
    anyhow::ensure!(response.status() == 303, "verify answered {}", response.status());
    Ok(response.headers()["location"].to_str()?.to_string())
}

async fn create_confirmed(suite: &Suite, address: &str) -> anyhow::Result<Value> {
    admin_ok(
        suite,
        Method::POST,
        "/admin/users",
        Some(json!({"email": address, "password": PASSWORD, "email_confirm": true})),
    )
    .await
}

async fn outbox_rows(suite: &Suite) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM outbox_messages")
        .fetch_one(&suite.db)
        .await?)
}

#[tokio::test]
async fn generated_signup_invite_and_magic_links_sign_in_and_send_nothing() -> anyhow::Result<()> {
    let suite = Suite::builder().start().await?;
    let response = suite
        .post_json("/admin/generate_link", &json!({"type": "signup", "email": email()}))
        .await?;
    assert_gotrue_error(response, 401, "no_authorization").await;

    // signup: a new unconfirmed user with a password; the link confirms and signs in.
    let address = email();
    let response = admin(
        &suite,
        Method::POST,
        "/admin/generate_link",
        Some(json!({"type": "signup", "email": address})),
    )
    .await?;
    assert_gotrue_error(response, 400, "validation_failed").await;
    let link = generate(
        &suite,
        json!({"type": "signup", "email": address, "password": PASSWORD, "data": {"plan": "pro"}}),
    )
    .await?;
    assert_eq!(link["email"], address);
    assert_eq!(link["verification_type"], "signup");
    assert_eq!(link["redirect_to"], "http://localhost:3000");
    assert_eq!(link["user_metadata"]["plan"], "pro");
    assert_eq!(link["identities"].as_array().map(Vec::len), Some(1));
    assert!(link["confirmation_sent_at"].is_string());
    assert!(link.get("email_confirmed_at").is_none());
    let otp = link["email_otp"].as_str().unwrap_or_default();
    assert!(otp.len() == 6 && otp.bytes().all(|b| b.is_ascii_digit()), "{otp}");
    let hashed = link["hashed_token"].as_str().unwrap_or_default();
    let action_link = link["action_link"].as_str().unwrap_or_default();
    assert_eq!(
        action_link,
        format!("http://localhost:9999/verify?token={hashed}&type=signup&redirect_to=http://localhost:3000")
    );
    let location = follow(&suite, action_link).await?;
    assert!(
        location.starts_with("http://localhost:3000#access_token="),
        "{location}"
    );
    assert!(location.contains("type=signup"), "{location}");
    let response = password_grant(&suite, &address, PASSWORD).await?;
    assert_eq!(response.status(), 200, "the generated sign-up's password works");

    // Confirmed now: signup and invite are refused, leaving the user as it was.
    for link_type in ["signup", "invite"] {
        let response = admin(
            &suite,
            Method::POST,
            "/admin/generate_link",
            Some(json!({"type": link_type, "email": address, "password": PASSWORD})),
        )
        .await?;
        assert_gotrue_error(response, 422, "email_exists").await;
    }

    // magiclink for a known user: the recovery code, verified by link or by the emailed code.
    let link = generate(&suite, json!({"type": "magiclink", "email": address})).await?;
    assert_eq!(link["verification_type"], "magiclink");
    assert!(link["recovery_sent_at"].is_string());
    let location = follow(&suite, link["action_link"].as_str().unwrap_or_default()).await?;
    assert!(location.contains("type=magiclink"), "{location}");
    let link = generate(&suite, json!({"type": "magiclink", "email": address})).await?;
    let response = suite
        .post_json(
            "/verify",
            &json!({"type": "magiclink", "email": address, "token": link["email_otp"]}),
        )
        .await?;
    assert_eq!(response.status(), 200);

    // magiclink for an unknown address signs up (GoTrue gives it a random password).
    let stranger = email();
    let link = generate(&suite, json!({"type": "magiclink", "email": stranger})).await?;
    assert_eq!(link["verification_type"], "signup");
    assert!(link["action_link"].as_str().unwrap_or_default().contains("type=signup"));
    follow(&suite, link["action_link"].as_str().unwrap_or_default()).await?;

    // invite: a password-less user, invited_at set; the link signs in.
    let invitee = email();
    let link = generate(
        &suite,
        json!({"type": "invite", "email": invitee, "redirect_to": "http://localhost:3000/welcome"}),
    )
    .await?;
    assert_eq!(link["verification_type"], "invite");
    assert!(link["invited_at"].is_string());
    assert_eq!(link["redirect_to"], "http://localhost:3000/welcome");
    let location = follow(&suite, link["action_link"].as_str().unwrap_or_default()).await?;
    assert!(
        location.starts_with("http://localhost:3000/welcome#access_token="),
        "{location}"
    );

    // A redirect the allow list refuses falls back to the site URL.
    let link = generate(
        &suite,
        json!({"type": "invite", "email": email(), "redirect_to": "https://evil.example/"}),
    )
    .await?;
    assert_eq!(link["redirect_to"], "http://localhost:3000");

    assert_eq!(outbox_rows(&suite).await?, 0, "a generated link is never emailed");
    let invited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log_entries WHERE payload->>'action' = 'user_invited'")
            .fetch_one(&suite.db)
            .await?;
    assert_eq!(invited, 2);
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn generated_recovery_and_email_change_links_follow_gotrue() -> anyhow::Result<()> {
    // Not autoconfirm: secure email change then needs both addresses to confirm, as in GoTrue.
    let suite = Suite::builder().start().await?;
    let address = email();
    create_confirmed(&suite, &address).await?;

    for link_type in ["recovery", "email_change_current", "email_change_new"] {
        let response = admin(
            &suite,
            Method::POST,
            "/admin/generate_link",
            Some(json!({"type": link_type, "email": email(), "new_email": email()})),
        )
        .await?;
        assert_gotrue_error(response, 404, "user_not_found").await;
    }
    for (body, status, code) in [
        (json!({"type": "bogus", "email": address}), 400, "validation_failed"),
        (
            json!({"type": "recovery", "email": "not-an-email"}),
            400,
            "validation_failed",
        ),
        (
            json!({"type": "email_change_new", "email": address, "new_email": "nope"}),
            400,
            "validation_failed",
        ),
    ] {
        let response = admin(&suite, Method::POST, "/admin/generate_link", Some(body)).await?;
        assert_gotrue_error(response, status, code).await;
    }

    // recovery: the link signs in with type=recovery; the code alone works by POST too.
    let link = generate(&suite, json!({"type": "recovery", "email": address})).await?;
    assert_eq!(link["verification_type"], "recovery");
    let location = follow(&suite, link["action_link"].as_str().unwrap_or_default()).await?;
    assert!(location.contains("type=recovery"), "{location}");

    // email change: the address another user holds is refused.
    let other = email();
    create_confirmed(&suite, &other).await?;
    let response = admin(
        &suite,
        Method::POST,
        "/admin/generate_link",
        Some(json!({"type": "email_change_new", "email": address, "new_email": other})),
    )
    .await?;
    assert_gotrue_error(response, 422, "email_exists").await;

    // Secure email change (the default): both links must be followed; then the address moves.
    let new_address = email();
    let current = generate(
        &suite,
        json!({"type": "email_change_current", "email": address, "new_email": new_address}),
    )
    .await?;
    let new = generate(
        &suite,
        json!({"type": "email_change_new", "email": address, "new_email": new_address}),
    )
    .await?;
    assert_eq!(new["new_email"], new_address);
    assert_eq!(new["verification_type"], "email_change_new");
    assert!(
        new["action_link"]
            .as_str()
            .unwrap_or_default()
            .contains("type=email_change")
    );
    let response = suite
        .post_json(
            "/verify",
            &json!({"type": "email_change", "token_hash": current["hashed_token"]}),
        )
        .await?;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    assert!(
        body["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("Confirmation link accepted"),
        "{body}"
    );
    // The returned hashed_token of the new address verifies (GoTrue returns the current one's).
    let response = suite
        .post_json(
            "/verify",
            &json!({"type": "email_change", "token_hash": new["hashed_token"]}),
        )
        .await?;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    assert_eq!(body["user"]["email"], new_address);
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn email_change_current_needs_secure_email_change() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED", "false")
        .start()
        .await?;
    let address = email();
    sign_up(&suite, &address).await?;
    let response = admin(
        &suite,
        Method::POST,
        "/admin/generate_link",
        Some(json!({"type": "email_change_current", "email": address, "new_email": email()})),
    )
    .await?;
    assert_gotrue_error(response, 400, "validation_failed").await;
    let new_address = email();
    let link = generate(
        &suite,
        json!({"type": "email_change_new", "email": address, "new_email": new_address}),
    )
    .await?;
    let location = follow(&suite, link["action_link"].as_str().unwrap_or_default()).await?;
    assert!(location.contains("access_token="), "{location}");
    let changed: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1::uuid")
        .bind(link["id"].as_str().unwrap_or_default())
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(changed, new_address);
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_audit_log_pages_filters_and_names_actor_and_ip() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let response = suite.get("/admin/audit").await?;
    assert_gotrue_error(response, 401, "no_authorization").await;

    let address = email();
    let response = suite
        .request(Method::POST, "/signup")
        .header("x-forwarded-for", "203.0.113.7, 10.0.0.1")
        .json(&json!({"email": address, "password": PASSWORD}))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    admin_ok(&suite, Method::POST, "/invite", Some(json!({"email": email()}))).await?;

    let response = admin(&suite, Method::GET, "/admin/audit", None).await?;
    assert_eq!(response.status(), 200);
    let total = response.headers()["x-total-count"].to_str()?.to_string();
    let entries: Vec<Value> = response.json().await?;
    assert_eq!(total, entries.len().to_string());
    assert_eq!(entries[0]["payload"]["action"], "user_invited", "newest first");
    assert_eq!(entries[0]["payload"]["actor_username"], "service_role");
    assert_eq!(entries[0]["payload"]["log_type"], "team");
    let signed_up = entries
        .iter()
        .find(|e| e["payload"]["action"] == "user_signedup")
        .expect("the sign-up is logged");
    assert_eq!(signed_up["payload"]["actor_username"], address);
    assert_eq!(
        signed_up["ip_address"], "203.0.113.7",
        "the client's address, first of the chain"
    );
    assert!(signed_up["id"].is_string() && signed_up["created_at"].is_string());

    let response = admin(&suite, Method::GET, "/admin/audit?per_page=1", None).await?;
    let link = response.headers()["link"].to_str()?.to_string();
    assert_eq!(
        link,
        format!("</admin/audit?page=2&per_page=1>; rel=\"next\", </admin/audit?page={total}&per_page=1>; rel=\"last\"")
    );
    let page: Vec<Value> = response.json().await?;
    assert_eq!(page.len(), 1);

    let entries: Vec<Value> = admin_ok(&suite, Method::GET, "/admin/audit?query=action:INVITED", None)
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(entries.len(), 1, "action: matches case-insensitively");
    let prefix = &address[..10];
    let entries = admin_ok(
        &suite,
        Method::GET,
        &format!("/admin/audit?query=author:{prefix}"),
        None,
    )
    .await?;
    assert!(
        entries
            .as_array()
            .is_some_and(|e| !e.is_empty() && e.iter().all(|entry| entry["payload"]["actor_username"] == address)),
        "{entries}"
    );
    let entries = admin_ok(&suite, Method::GET, "/admin/audit?query=type:team", None).await?;
    assert!(entries.as_array().is_some_and(|e| e.len() >= 2), "{entries}");
    for bad in [
        "/admin/audit?query=who:x",
        "/admin/audit?query=action",
        "/admin/audit?page=x",
    ] {
        let response = admin(&suite, Method::GET, bad, None).await?;
        assert_gotrue_error(response, 400, "validation_failed").await;
    }
    suite.shutdown().await;
    Ok(())
}
