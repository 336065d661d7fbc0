//! `GET /user`, `PUT /user` and bearer-token checks (GOTRUE_BEHAVIOUR.md §10 items 30–34, 51, 56).

use auth_proto::common::v1::RequestContext;
use auth_proto::token::v1::token_service_client::TokenServiceClient;
use auth_proto::token::v1::{IssueSessionRequest, VerifyAccessTokenRequest};
use auth_testkit::jwt::{TEST_JWT_SECRET, service_role_token, sign_hs256};
use auth_testkit::{Service, Suite, assert_gotrue_error, test_jwk};
use serde_json::{Value, json};

use crate::support::*;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[tokio::test]
async fn get_user_and_bearer_checks() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let address = email();
    let session = sign_up(&suite, &address).await?;
    let response = get_user(&suite, &bearer(&session)).await?;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await?;
    assert_eq!(user["id"], session["user"]["id"]);
    assert_eq!(user["email"], address);
    let lower_case = format!("bearer {}", session["access_token"].as_str().unwrap_or_default());
    assert_eq!(
        get_user(&suite, &lower_case).await?.status(),
        200,
        "Bearer is case-insensitive"
    );

    let missing = suite.get("/user").await?;
    let body = assert_gotrue_error(missing, 401, "no_authorization").await;
    assert_eq!(body["msg"], "This endpoint requires a valid Bearer token");

    let id = user_id(&session).to_string();
    let sid = claims(session["access_token"].as_str().unwrap_or_default())["session_id"].clone();
    let sign = |claims: Value| format!("Bearer {}", sign_hs256(&claims, TEST_JWT_SECRET));
    let no_sub = sign(json!({"role": "authenticated", "exp": now() + 60}));
    let body = assert_gotrue_error(get_user(&suite, &no_sub).await?, 403, "bad_jwt").await;
    assert_eq!(body["msg"], "invalid claim: missing sub claim");
    let bad_sub = sign(json!({"sub": "not-a-uuid", "role": "authenticated", "exp": now() + 60}));
    assert_gotrue_error(get_user(&suite, &bad_sub).await?, 400, "bad_jwt").await;
    let ghost = sign(json!({"sub": uuid::Uuid::new_v4(), "role": "authenticated", "exp": now() + 60}));
    assert_gotrue_error(get_user(&suite, &ghost).await?, 403, "user_not_found").await;
    let no_session =
        sign(json!({"sub": id, "aud": "authenticated", "role": "authenticated", "exp": now() + 60, "session_id": ""}));
    assert_eq!(
        get_user(&suite, &no_session).await?.status(),
        200,
        "empty session_id tolerated"
    );
    let nil_session = sign(
        json!({"sub": id, "aud": "authenticated", "role": "authenticated", "exp": now() + 60, "session_id": uuid::Uuid::nil()}),
    );
    assert_eq!(
        get_user(&suite, &nil_session).await?.status(),
        200,
        "nil session_id tolerated"
    );
    let gone = sign(json!({"sub": id, "role": "authenticated", "exp": now() + 60, "session_id": uuid::Uuid::new_v4()}));
    assert_gotrue_error(get_user(&suite, &gone).await?, 403, "session_not_found").await;
    // The token's audience must be the request's (X-JWT-AUD, else GOTRUE_JWT_AUD).
    let other_audience = suite
        .request(reqwest::Method::GET, "/user")
        .header("Authorization", bearer(&session))
        .header("X-JWT-AUD", "someone-else")
        .send()
        .await?;
    let body = assert_gotrue_error(other_audience, 400, "validation_failed").await;
    assert_eq!(body["msg"], "Token audience doesn't match request audience");
    let no_aud = sign(json!({"sub": id, "role": "authenticated", "exp": now() + 60}));
    assert_gotrue_error(get_user(&suite, &no_aud).await?, 400, "validation_failed").await;

    let expired = sign(json!({"sub": id, "role": "authenticated", "exp": now() - 10, "session_id": sid}));
    let body = assert_gotrue_error(get_user(&suite, &expired).await?, 403, "bad_jwt").await;
    assert!(
        body["msg"]
            .as_str()
            .is_some_and(|m| m.starts_with("invalid JWT: unable to parse or verify signature"))
    );

    // Tampered payload, wrong key and alg "none" are refused.
    let token = session["access_token"].as_str().unwrap_or_default();
    let parts: Vec<&str> = token.split('.').collect();
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let mut forged = claims(token);
    forged["role"] = json!("service_role");
    let tampered = format!("Bearer {}.{}.{}", parts[0], b64(&forged), parts[2]);
    assert_gotrue_error(get_user(&suite, &tampered).await?, 403, "bad_jwt").await;
    let none = format!("Bearer {}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), parts[1]);
    assert_gotrue_error(get_user(&suite, &none).await?, 403, "bad_jwt").await;
    let wrong_key = format!(
        "Bearer {}",
        sign_hs256(&claims(token), "a-completely-different-secret-of-32-bytes")
    );
    assert_gotrue_error(get_user(&suite, &wrong_key).await?, 403, "bad_jwt").await;

    // A banned user's still-valid token stops working; an expired ban does not matter.
    sqlx::query("UPDATE users SET banned_until = now() + interval '1 hour' WHERE email = $1")
        .bind(&address)
        .execute(&suite.db)
        .await?;
    // Refused by the very next request, though the account may be in the cache.
    let banned = get_user(&suite, &bearer(&session)).await?;
    assert_gotrue_error(banned, 403, "user_banned").await;
    sqlx::query("UPDATE users SET banned_until = now() - interval '1 hour' WHERE email = $1")
        .bind(&address)
        .execute(&suite.db)
        .await?;
    assert_eq!(get_user(&suite, &bearer(&session)).await?.status(), 200);
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn update_metadata_email_and_phone() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_EXTERNAL_PHONE_ENABLED", "true")
        .env("GOTRUE_SMS_AUTOCONFIRM", "true")
        .start()
        .await?;
    let session = sign_up(&suite, &email()).await?;
    let auth = bearer(&session);
    let response = put_user(
        &suite,
        &auth,
        &json!({"data": {"theme": "dark", "email_verified": null}}),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await?;
    assert_eq!(
        user["user_metadata"],
        json!({"theme": "dark"}),
        "merged; null removes a key"
    );
    let denied = put_user(&suite, &auth, &json!({"app_metadata": {"plan": "pro"}})).await?;
    assert_gotrue_error(denied, 403, "not_admin").await;

    // Phone: another user's number is refused, the user's own number is a no-op.
    let other = suite
        .post_json("/signup", &json!({"phone": "+15557654321", "password": PASSWORD}))
        .await?;
    assert_eq!(other.status(), 200);
    let taken = put_user(&suite, &auth, &json!({"phone": "+15557654321"})).await?;
    assert_gotrue_error(taken, 422, "phone_exists").await;
    let mine = put_user(&suite, &auth, &json!({"phone": "+15550000001"})).await?;
    assert_eq!(mine.status(), 200);
    let user: Value = mine.json().await?;
    assert_eq!(user["phone"], "15550000001");
    assert_eq!(
        put_user(&suite, &auth, &json!({"phone": "+15550000001"}))
            .await?
            .status(),
        200
    );

    // Email change starts: new_email set, confirmation emails queued for both addresses.
    let new_address = email();
    let response = put_user(&suite, &auth, &json!({"email": new_address})).await?;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await?;
    assert_eq!(user["new_email"], new_address);
    assert!(user["email_change_sent_at"].is_string());
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_messages WHERE subject LIKE '%email_requested'")
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(queued, 2, "secure email change: current and new address");
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn password_change_rules() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_CURRENT_PASSWORD", "true")
        .start()
        .await?;
    let address = email();
    let one = sign_up(&suite, &address).await?;
    let two = sign_in(&suite, &address).await?;

    let empty = put_user(&suite, &bearer(&one), &json!({"password": ""})).await?;
    assert_gotrue_error(empty, 422, "weak_password").await;
    let missing = put_user(&suite, &bearer(&one), &json!({"password": "new-password-1"})).await?;
    assert_gotrue_error(missing, 400, "current_password_required").await;
    let wrong = put_user(
        &suite,
        &bearer(&one),
        &json!({"password": "new-password-1", "current_password": "nope"}),
    )
    .await?;
    assert_gotrue_error(wrong, 400, "current_password_invalid").await;
    let same = put_user(
        &suite,
        &bearer(&one),
        &json!({"password": PASSWORD, "current_password": PASSWORD}),
    )
    .await?;
    assert_gotrue_error(same, 422, "same_password").await;
    let ok = put_user(
        &suite,
        &bearer(&one),
        &json!({"password": "new-password-1", "current_password": PASSWORD}),
    )
    .await?;
    assert_eq!(ok.status(), 200);

    // Session one lives on, session two ended with the old password.
    refresh_ok(&suite, one["refresh_token"].as_str().unwrap_or_default()).await?;
    assert_gotrue_error(
        refresh(&suite, two["refresh_token"].as_str().unwrap_or_default()).await?,
        400,
        "refresh_token_not_found",
    )
    .await;
    assert_eq!(password_grant(&suite, &address, "new-password-1").await?.status(), 200);
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT payload->>'action' FROM audit_log_entries ORDER BY created_at")
            .fetch_all(&suite.db)
            .await?;
    assert!(actions.contains(&"user_updated_password".to_string()));
    assert!(actions.contains(&"user_modified".to_string()));

    // A recovery session (amr otp), issued over gRPC the way the verify flow will, needs no current password.
    let user_id = user_id(&one);
    let mut token = TokenServiceClient::new(suite.channel(Service::Token)?);
    let mut request = tonic::Request::new(IssueSessionRequest {
        user_id: user_id.to_string(),
        authentication_method: "otp".into(),
        context: Some(RequestContext::default()),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {}", service_role_token()).parse()?);
    let recovery = token.issue_session(request).await?.into_inner();
    let recovery_auth = format!("Bearer {}", recovery.access_token);
    let ok = put_user(&suite, &recovery_auth, &json!({"password": "new-password-2"})).await?;
    assert_eq!(ok.status(), 200);

    // IssueSession is for services: a user token may not call it.
    let mut request = tonic::Request::new(IssueSessionRequest {
        user_id: user_id.to_string(),
        authentication_method: "password".into(),
        context: None,
    });
    request.metadata_mut().insert("authorization", recovery_auth.parse()?);
    let denied = token.issue_session(request).await.expect_err("not an admin");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    // Internal callers verify tokens with the REST API's checks.
    let verified = token
        .verify_access_token(VerifyAccessTokenRequest {
            access_token: recovery.access_token.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(verified.user.map(|u| u.id), Some(user_id.to_string()));
    let refused = token
        .verify_access_token(VerifyAccessTokenRequest {
            access_token: "garbage".into(),
        })
        .await
        .expect_err("garbage is refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn reauthentication_nonce_for_old_sessions() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION", "true")
        .start()
        .await?;
    let address = email();
    let session = sign_up(&suite, &address).await?;
    let auth = bearer(&session);
    assert_eq!(
        put_user(&suite, &auth, &json!({"password": "fresh-session-pass"}))
            .await?
            .status(),
        200,
        "recent session"
    );

    let session = sign_in_with(&suite, &address, "fresh-session-pass").await?;
    let auth = bearer(&session);
    sqlx::query("UPDATE sessions SET created_at = now() - interval '25 hours'")
        .execute(&suite.db)
        .await?;
    let needed = put_user(&suite, &auth, &json!({"password": "another-pass-1"})).await?;
    assert_gotrue_error(needed, 400, "reauthentication_needed").await;
    let invalid = put_user(&suite, &auth, &json!({"password": "another-pass-1", "nonce": "000000"})).await?;
    assert_gotrue_error(invalid, 422, "reauthentication_not_valid").await;

    // What GET /reauthenticate stores (that endpoint belongs to the email/SMS flows).
    let hash = token_hash(&address, "123456");
    sqlx::query("UPDATE users SET reauthentication_token = $1, reauthentication_sent_at = now() WHERE email = $2")
        .bind(&hash)
        .bind(&address)
        .execute(&suite.db)
        .await?;
    let ok = put_user(&suite, &auth, &json!({"password": "another-pass-1", "nonce": "123456"})).await?;
    assert_eq!(ok.status(), 200);
    let cleared: String = sqlx::query_scalar("SELECT reauthentication_token FROM users WHERE email = $1")
        .bind(&address)
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(cleared, "");
    suite.shutdown().await;
    Ok(())
}

async fn sign_in_with(suite: &Suite, address: &str, password: &str) -> anyhow::Result<Value> {
    let response = password_grant(suite, address, password).await?;
    anyhow::ensure!(response.status() == 200, "sign-in failed: {}", response.status());
    Ok(response.json().await?)
}

fn token_hash(address: &str, otp: &str) -> String {
    use sha2::Digest;
    sha2::Sha224::digest(format!("{address}{otp}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn asymmetric_signing_keys_and_jwks() -> anyhow::Result<()> {
    // HMAC only: nothing to publish.
    let suite = Suite::start().await?;
    let jwks: Value = suite.get("/.well-known/jwks.json").await?.json().await?;
    assert_eq!(jwks, json!({"keys": []}));
    suite.shutdown().await;

    for (kind, alg) in [("rsa", "RS256"), ("ec", "ES256"), ("ed", "EdDSA")] {
        let key = test_jwk(kind);
        let suite = Suite::builder()
            .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
            .env("GOTRUE_JWT_KEYS", &json!([key]).to_string())
            .start()
            .await?;
        let jwks: Value = suite.get("/.well-known/jwks.json").await?.json().await?;
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1), "{kind}");
        assert!(jwks["keys"][0].get("d").is_none(), "no private material");
        let session = sign_up(&suite, &email()).await?;
        let token = session["access_token"].as_str().unwrap_or_default();
        let header = header(token);
        assert_eq!(header["alg"], alg);
        assert_eq!(header["kid"], key["kid"]);
        assert_eq!(
            get_user(&suite, &bearer(&session)).await?.status(),
            200,
            "{kind} tokens verify"
        );

        // Algorithm confusion: an HS256 token keyed with the public key's text is refused.
        let public = jwks["keys"][0].to_string();
        let confused = format!("Bearer {}", sign_hs256(&claims(token), &public));
        assert_gotrue_error(get_user(&suite, &confused).await?, 403, "bad_jwt").await;
        suite.shutdown().await;
    }
    Ok(())
}

/// §10 item 52: an admin token that names a session needs that session alive; sessionless
/// `service_role` tokens and nil session ids need none. Checked over the token service's gRPC API
/// (the admin REST routes use the same `require_admin`).
#[tokio::test]
async fn admin_tokens_naming_a_session_need_it_alive() -> anyhow::Result<()> {
    use auth_proto::token::v1::RevokeSessionsRequest;

    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_SESSIONS_TIMEBOX", "1h")
        .start()
        .await?;
    let session = sign_up(&suite, &email()).await?;
    let user = user_id(&session).to_string();
    let session_id = claims(session["access_token"].as_str().unwrap_or_default())["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let admin_with = |session_id: Value| {
        sign_hs256(
            &json!({"sub": user, "role": "service_role", "aud": "authenticated", "exp": now() + 60, "session_id": session_id}),
            TEST_JWT_SECRET,
        )
    };
    let mut token = TokenServiceClient::new(suite.channel(Service::Token)?);
    let revoke = |bearer: String| {
        let mut request = tonic::Request::new(RevokeSessionsRequest {
            user_id: user.clone(),
            // Keep the caller's session so the checks below see it.
            keep_session_id: session_id.clone(),
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {bearer}").parse().expect("header"));
        request
    };

    token.revoke_sessions(revoke(admin_with(json!(session_id)))).await?;
    token.revoke_sessions(revoke(service_role_token())).await?;
    token
        .revoke_sessions(revoke(admin_with(json!(uuid::Uuid::nil()))))
        .await?;

    sqlx::query("UPDATE sessions SET created_at = now() - interval '2 hours'")
        .execute(&suite.db)
        .await?;
    let expired = token
        .revoke_sessions(revoke(admin_with(json!(session_id))))
        .await
        .expect_err("past the timebox");
    assert_eq!(expired.code(), tonic::Code::PermissionDenied);
    assert_eq!(expired.message(), "Session is no longer valid");

    sqlx::query("DELETE FROM sessions").execute(&suite.db).await?;
    let gone = token
        .revoke_sessions(revoke(admin_with(json!(session_id))))
        .await
        .expect_err("session deleted");
    assert_eq!(gone.message(), "Session from session_id claim in JWT does not exist");
    token.revoke_sessions(revoke(service_role_token())).await?;
    suite.shutdown().await;
    Ok(())
}
