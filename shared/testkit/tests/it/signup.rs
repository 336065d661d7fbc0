//! `POST /signup` and `POST /token?grant_type=password` (GOTRUE_BEHAVIOUR.md §10 items 1–3, 13, 35).

use auth_proto::notification::v1::{EmailKind, EmailRequested};
use auth_testkit::{Suite, assert_gotrue_error};
use prost::Message;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn signup_needing_confirmation_returns_the_user_and_queues_the_email() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let address = email();
    let response = suite
        .post_json(
            "/signup?redirect_to=http://localhost:3000/welcome",
            &json!({"email": address.to_uppercase(), "password": "test123", "data": {"a": 1}}),
        )
        .await?;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await?;
    assert_eq!(user["aud"], "authenticated");
    assert_eq!(user["role"], "authenticated");
    assert_eq!(user["email"], address, "stored lower-cased");
    assert_eq!(user["phone"], "");
    assert_eq!(user["user_metadata"]["a"], 1);
    assert_eq!(
        user["app_metadata"],
        json!({"provider": "email", "providers": ["email"]})
    );
    assert!(user["confirmation_sent_at"].is_string());
    assert!(user.get("email_confirmed_at").is_none());
    assert!(user.get("access_token").is_none());
    assert_eq!(user["identities"][0]["provider"], "email");
    assert_eq!(user["identities"][0]["identity_data"]["email"], address);
    assert_eq!(user["identities"][0]["identity_data"]["email_verified"], false);
    assert_eq!(user["is_anonymous"], false);

    // The confirmation request sits in the outbox, written with the user.
    let (subject, payload): (String, Vec<u8>) = sqlx::query_as("SELECT subject, payload FROM outbox_messages")
        .fetch_one(&suite.db)
        .await?;
    assert!(subject.ends_with(".notification.v1.email_requested"), "{subject}");
    let event = EmailRequested::decode(payload.as_slice())?;
    assert_eq!(event.kind, EmailKind::Confirmation as i32);
    assert_eq!(event.to, address);
    assert_eq!(event.token.len(), 6);
    assert!(
        event
            .confirmation_url
            .starts_with("http://localhost:9999/verify?token="),
        "{}",
        event.confirmation_url
    );
    assert!(event.confirmation_url.contains("type=signup"));
    assert_eq!(event.redirect_to, "http://localhost:3000/welcome");
    let (stored_hash,): (String,) = sqlx::query_as("SELECT confirmation_token FROM users WHERE email = $1")
        .bind(&address)
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(stored_hash, event.token_hash);
    let tokens: i64 =
        sqlx::query_scalar("SELECT count(*) FROM one_time_tokens WHERE token_type = 'confirmation_token'")
            .fetch_one(&suite.db)
            .await?;
    assert_eq!(tokens, 1);
    let audit: Vec<String> = sqlx::query_scalar("SELECT payload->>'action' FROM audit_log_entries")
        .fetch_all(&suite.db)
        .await?;
    assert_eq!(audit, ["user_confirmation_requested"]);

    // Signing in before confirming is refused.
    let response = password_grant(&suite, &address, "test123").await?;
    assert_gotrue_error(response, 400, "email_not_confirmed").await;

    // Signing up again before the minute is over hits the per-user email frequency.
    let again = suite
        .post_json("/signup", &json!({"email": address, "password": "test123"}))
        .await?;
    assert_gotrue_error(again, 429, "over_email_send_rate_limit").await;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn repeated_signup_does_not_reveal_the_account() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let address = email();
    let first: Value = suite
        .post_json("/signup", &json!({"email": address, "password": PASSWORD}))
        .await?
        .json()
        .await?;
    sqlx::query("UPDATE users SET email_confirmed_at = now() WHERE email = $1")
        .bind(&address)
        .execute(&suite.db)
        .await?;
    let response = suite
        .post_json("/signup", &json!({"email": address, "password": "other-pass"}))
        .await?;
    assert_eq!(response.status(), 200);
    let second: Value = response.json().await?;
    assert_ne!(second["id"], first["id"], "a look-alike user, not the real one");
    assert_eq!(second["email"], address);
    let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
    assert_eq!(keys(&second), keys(&first), "same shape as a real new user");
    assert_eq!(second["role"], first["role"]);
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT payload->>'action' FROM audit_log_entries ORDER BY created_at")
            .fetch_all(&suite.db)
            .await?;
    assert!(actions.contains(&"user_repeated_signup".to_string()));
    suite.shutdown().await;

    let suite = autoconfirm_suite().await?;
    sign_up(&suite, &address).await?;
    let response = suite
        .post_json("/signup", &json!({"email": address, "password": PASSWORD}))
        .await?;
    let body = assert_gotrue_error(response, 422, "user_already_exists").await;
    assert_eq!(body["msg"], "User already registered");
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn autoconfirmed_signup_signs_in_with_gotrues_token_response() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let address = email();
    let response = suite
        .post_json(
            "/signup",
            &json!({"email": address, "password": PASSWORD, "data": {"name": "Ada"}}),
        )
        .await?;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("sb-auth-user-id"));
    assert!(response.headers().contains_key("sb-auth-session-id"));
    assert!(response.headers().contains_key("sb-auth-refresh-token-prefix"));
    let session: Value = response.json().await?;
    let keys: Vec<&str> = session
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "token_type",
            "expires_in",
            "expires_at",
            "refresh_token",
            "user"
        ]
    );
    assert_eq!(session["token_type"], "bearer");
    assert_eq!(session["expires_in"], 3600);
    assert_eq!(session["refresh_token"].as_str().map(str::len), Some(12));
    assert_eq!(session["user"]["user_metadata"]["email_verified"], true);
    assert_eq!(session["user"]["user_metadata"]["name"], "Ada");
    assert!(session["user"]["email_confirmed_at"].is_string());
    assert!(session["user"]["last_sign_in_at"].is_string());

    let claims = claims(session["access_token"].as_str().unwrap_or_default());
    let names: Vec<&str> = claims.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "sub",
            "aud",
            "exp",
            "iat",
            "email",
            "phone",
            "app_metadata",
            "user_metadata",
            "role",
            "aal",
            "amr",
            "session_id",
            "is_anonymous"
        ]
    );
    assert_eq!(claims["aud"], "authenticated", "a string, not an array");
    assert_eq!(claims["role"], "authenticated");
    assert_eq!(claims["aal"], "aal1");
    assert_eq!(claims["amr"][0]["method"], "password");
    assert_eq!(claims["email"], address);
    assert_eq!(
        claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0),
        3600
    );
    assert!(
        claims["session_id"]
            .as_str()
            .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok())
    );
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT payload->>'action' FROM audit_log_entries ORDER BY created_at")
            .fetch_all(&suite.db)
            .await?;
    assert_eq!(actions, ["user_signedup", "login"]);
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn signup_input_rules() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_PASSWORD_MIN_LENGTH", "10")
        .env(
            "GOTRUE_PASSWORD_REQUIRED_CHARACTERS",
            "abcdefghijklmnopqrstuvwxyz:0123456789",
        )
        .start()
        .await?;
    let post = |body: Value| {
        let request = suite.request(reqwest::Method::POST, "/signup").json(&body);
        request.send()
    };

    let weak = assert_gotrue_error(
        post(json!({"email": email(), "password": "short"})).await?,
        422,
        "weak_password",
    )
    .await;
    assert_eq!(weak["weak_password"]["reasons"], json!(["length", "characters"]));
    assert_eq!(
        weak["msg"],
        "Password should be at least 10 characters. Password should contain at least one character of each: abcdefghijklmnopqrstuvwxyz, 0123456789."
    );
    let long = "a1".repeat(40);
    assert_gotrue_error(
        post(json!({"email": email(), "password": long})).await?,
        400,
        "validation_failed",
    )
    .await;
    let missing = assert_gotrue_error(post(json!({"email": email()})).await?, 400, "validation_failed").await;
    assert_eq!(missing["msg"], "Signup requires a valid password");
    let both = json!({"email": email(), "phone": "+15551234567", "password": "abcdefgh12"});
    assert_gotrue_error(post(both).await?, 400, "validation_failed").await;
    let bad_email = json!({"email": "not an email", "password": "abcdefgh12"});
    assert_gotrue_error(post(bad_email).await?, 400, "validation_failed").await;
    let phone = json!({"phone": "+15551234567", "password": "abcdefgh12"});
    assert_gotrue_error(post(phone).await?, 400, "phone_provider_disabled").await;
    let anonymous = assert_gotrue_error(post(json!({"data": {}})).await?, 422, "anonymous_provider_disabled").await;
    assert_eq!(anonymous["msg"], "Anonymous sign-ins are disabled");

    // Malformed JSON and oversized bodies, over a real socket.
    let response = suite
        .request(reqwest::Method::POST, "/signup")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_gotrue_error(response, 400, "bad_json").await;
    let huge = json!({"email": email(), "password": "abcdefgh12", "data": {"blob": "x".repeat(1024 * 1024 + 1)}});
    assert_gotrue_error(post(huge).await?, 413, "request_entity_too_large").await;
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(users, 0, "nothing half-written");
    suite.shutdown().await;

    let suite = Suite::builder().env("GOTRUE_DISABLE_SIGNUP", "true").start().await?;
    let response = suite
        .post_json("/signup", &json!({"email": email(), "password": PASSWORD}))
        .await?;
    assert_gotrue_error(response, 422, "signup_disabled").await;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn phone_signup_and_sign_in() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_EXTERNAL_PHONE_ENABLED", "true")
        .env("GOTRUE_SMS_AUTOCONFIRM", "true")
        .start()
        .await?;
    let response = suite
        .post_json("/signup", &json!({"phone": "+1 555 000 1234", "password": PASSWORD}))
        .await?;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await?;
    assert_eq!(session["user"]["phone"], "15550001234");
    assert_eq!(session["user"]["email"], "");
    assert_eq!(
        session["user"]["app_metadata"],
        json!({"provider": "phone", "providers": ["phone"]})
    );
    assert!(session["user"]["phone_confirmed_at"].is_string());
    let response = suite
        .post_json(
            "/token?grant_type=password",
            &json!({"phone": "+15550001234", "password": PASSWORD}),
        )
        .await?;
    assert_eq!(response.status(), 200);
    let bad = suite
        .post_json("/signup", &json!({"phone": "12ab", "password": PASSWORD}))
        .await?;
    assert_gotrue_error(bad, 400, "validation_failed").await;
    suite.shutdown().await;

    // Without autoconfirm: the SMS request goes to the outbox.
    let suite = Suite::builder()
        .env("GOTRUE_EXTERNAL_PHONE_ENABLED", "true")
        .start()
        .await?;
    let response = suite
        .post_json("/signup", &json!({"phone": "+15550001234", "password": PASSWORD}))
        .await?;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await?;
    assert!(user["confirmation_sent_at"].is_string());
    let subject: String = sqlx::query_scalar("SELECT subject FROM outbox_messages")
        .fetch_one(&suite.db)
        .await?;
    assert!(subject.ends_with(".sms_requested"));
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn anonymous_sign_in() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "true")
        .start()
        .await?;
    let response = suite.post_json("/signup", &json!({"data": {"field": "foo"}})).await?;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await?;
    assert_eq!(session["user"]["is_anonymous"], true);
    assert_eq!(session["user"]["email"], "");
    assert_eq!(session["user"]["phone"], "");
    assert_eq!(session["user"]["user_metadata"], json!({"field": "foo"}));
    assert_eq!(session["user"]["app_metadata"], json!({}));
    let claims = claims(session["access_token"].as_str().unwrap_or_default());
    assert_eq!(claims["is_anonymous"], true);
    assert_eq!(claims["amr"][0]["method"], "anonymous");
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn password_sign_in_rules() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let address = email();
    sign_up(&suite, &address).await?;

    let session = sign_in(&suite, &address).await?;
    assert_eq!(session["user"]["email"], address);
    assert!(session.get("weak_password").is_none());

    let wrong = assert_gotrue_error(
        password_grant(&suite, &address, "wrong-password").await?,
        400,
        "invalid_credentials",
    )
    .await;
    let unknown = assert_gotrue_error(
        password_grant(&suite, &email(), PASSWORD).await?,
        400,
        "invalid_credentials",
    )
    .await;
    assert_eq!(wrong, unknown, "no hint of which part was wrong");
    assert_eq!(wrong["msg"], "Invalid login credentials");

    let missing = suite
        .post_json("/token?grant_type=password", &json!({"password": PASSWORD}))
        .await?;
    assert_gotrue_error(missing, 400, "validation_failed").await;
    let unsupported = suite.post_json("/token?grant_type=magic", &json!({})).await?;
    let body = assert_gotrue_error(unsupported, 400, "invalid_credentials").await;
    assert_eq!(body["msg"], "unsupported_grant_type");

    sqlx::query("UPDATE users SET banned_until = now() + interval '1 hour' WHERE email = $1")
        .bind(&address)
        .execute(&suite.db)
        .await?;
    assert_gotrue_error(password_grant(&suite, &address, PASSWORD).await?, 400, "user_banned").await;
    sqlx::query("UPDATE users SET banned_until = now() - interval '1 hour' WHERE email = $1")
        .bind(&address)
        .execute(&suite.db)
        .await?;
    sign_in(&suite, &address).await?;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn weak_password_is_reported_on_sign_in() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_PASSWORD_MIN_LENGTH", "20")
        .start()
        .await?;
    let address = email();
    // Created under the old policy, straight in the database (bcrypt, as GoTrue stored it).
    let hash = bcrypt::hash("old-short-pass", 4)?;
    let user_id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, \
         raw_app_meta_data, raw_user_meta_data, created_at, updated_at) \
         VALUES ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated', $2, $3, now(), \
         '{\"provider\":\"email\",\"providers\":[\"email\"]}', '{}', now(), now())",
    )
    .bind(user_id)
    .bind(&address)
    .bind(&hash)
    .execute(&suite.db)
    .await?;
    let response = password_grant(&suite, &address, "old-short-pass").await?;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await?;
    assert_eq!(session["weak_password"]["reasons"], json!(["length"]));
    assert_eq!(
        session["weak_password"]["message"],
        "Password should be at least 20 characters."
    );

    // The bcrypt hash was upgraded to argon2id, and the new hash still signs in.
    let stored: String = sqlx::query_scalar("SELECT encrypted_password FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&suite.db)
        .await?;
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert_eq!(password_grant(&suite, &address, "old-short-pass").await?.status(), 200);
    suite.shutdown().await;
    Ok(())
}
