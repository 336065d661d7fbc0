//! A user's own TOTP factors through the gateway (`/factors`), with real codes computed from the
//! enrolled secret: enrolment, challenge, verification stepping the session up to AAL2, the
//! challenge rules, replayed codes, and unenrolment.

use auth_testkit::{Suite, assert_gotrue_error};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use totp_rs::{Algorithm, Builder, Secret};

use crate::support::*;

/// The current code of a TOTP secret (base32), as an authenticator app shows it.
pub(crate) fn totp_code(secret: &str, at_unix: u64) -> String {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(Secret::try_from_base32(secret).expect("base32 secret"))
        .build_noncompliant()
        .generate(at_unix)
        .to_string()
}

pub(crate) fn now() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).expect("after 1970")
}

pub(crate) async fn call(
    suite: &Suite,
    session: &Value,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Response> {
    let mut request = suite.request(method, path).header("Authorization", bearer(session));
    if let Some(body) = body {
        request = request.json(&body);
    }
    Ok(request.send().await?)
}

pub(crate) async fn call_ok(
    suite: &Suite,
    session: &Value,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let response = call(suite, session, method, path, body).await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(status == 200, "{path}: {status} {body}");
    Ok(body)
}

pub(crate) async fn enroll_totp(suite: &Suite, session: &Value, name: &str) -> anyhow::Result<Value> {
    call_ok(
        suite,
        session,
        Method::POST,
        "/factors",
        Some(json!({"factor_type": "totp", "friendly_name": name})),
    )
    .await
}

pub(crate) async fn challenge(suite: &Suite, session: &Value, factor_id: &str) -> anyhow::Result<String> {
    let challenge = call_ok(
        suite,
        session,
        Method::POST,
        &format!("/factors/{factor_id}/challenge"),
        None,
    )
    .await?;
    Ok(challenge["id"].as_str().unwrap_or_default().to_string())
}

pub(crate) async fn verify(
    suite: &Suite,
    session: &Value,
    factor_id: &str,
    challenge_id: &str,
    code: &str,
) -> anyhow::Result<Response> {
    call(
        suite,
        session,
        Method::POST,
        &format!("/factors/{factor_id}/verify"),
        Some(json!({"challenge_id": challenge_id, "code": code})),
    )
    .await
}

/// Enrols a TOTP factor and verifies it: the AAL2 token response and the factor's id and secret.
pub(crate) async fn enroll_and_verify(suite: &Suite, session: &Value) -> anyhow::Result<(Value, String, String)> {
    let factor = enroll_totp(suite, session, "authenticator").await?;
    let factor_id = factor["id"].as_str().unwrap_or_default().to_string();
    let secret = factor["totp"]["secret"].as_str().unwrap_or_default().to_string();
    let challenge_id = challenge(suite, session, &factor_id).await?;
    let response = verify(suite, session, &factor_id, &challenge_id, &totp_code(&secret, now())).await?;
    let status = response.status();
    let body: Value = response.json().await?;
    anyhow::ensure!(status == 200, "verify: {status} {body}");
    Ok((body, factor_id, secret))
}

pub(crate) fn access_claims(session: &Value) -> Value {
    claims(session["access_token"].as_str().unwrap_or_default())
}

#[tokio::test]
async fn a_verified_totp_factor_steps_the_session_up_to_aal2() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let address = email();
    let first = sign_up(&suite, &address).await?;
    let other = sign_in(&suite, &address).await?;

    let response = suite.post_json("/factors", &json!({"factor_type": "totp"})).await?;
    assert_gotrue_error(response, 401, "no_authorization").await;

    let factor = enroll_totp(&suite, &first, "phone app").await?;
    assert_eq!(factor["type"], "totp");
    assert_eq!(factor["friendly_name"], "phone app");
    assert!(factor.get("phone").is_none(), "{factor}");
    let qr_code = factor["totp"]["qr_code"].as_str().unwrap_or_default();
    assert!(
        qr_code.contains("<svg") && qr_code.contains("</svg>"),
        "an SVG document"
    );
    let uri = factor["totp"]["uri"].as_str().unwrap_or_default();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&address), "the account is the email: {uri}");
    let factor_id = factor["id"].as_str().unwrap_or_default().to_string();
    let secret = factor["totp"]["secret"].as_str().unwrap_or_default().to_string();

    let user: Value = get_user(&suite, &bearer(&first)).await?.json().await?;
    assert_eq!(user["factors"][0]["id"], factor_id.as_str());
    assert_eq!(user["factors"][0]["status"], "unverified");

    let challenge_body = call_ok(
        &suite,
        &first,
        Method::POST,
        &format!("/factors/{factor_id}/challenge"),
        None,
    )
    .await?;
    assert_eq!(challenge_body["type"], "totp");
    let expires_in = challenge_body["expires_at"].as_i64().unwrap_or_default() - i64::try_from(now())?;
    assert!(
        (295..=301).contains(&expires_in),
        "GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION 300 s: {expires_in}"
    );
    let challenge_id = challenge_body["id"].as_str().unwrap_or_default().to_string();

    let wrong = verify(&suite, &first, &factor_id, &challenge_id, "000000").await?;
    let body = assert_gotrue_error(wrong, 422, "mfa_verification_failed").await;
    assert_eq!(body["msg"], "Invalid TOTP code entered");

    let code = totp_code(&secret, now());
    let response = verify(&suite, &first, &factor_id, &challenge_id, &code).await?;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("sb-auth-session-id").is_some());
    let stepped: Value = response.json().await?;
    let stepped_claims = access_claims(&stepped);
    assert_eq!(stepped_claims["aal"], "aal2", "{stepped_claims}");
    assert_eq!(
        stepped_claims["session_id"],
        access_claims(&first)["session_id"],
        "the same session"
    );
    let methods: Vec<&str> = stepped_claims["amr"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["method"].as_str())
        .collect();
    assert_eq!(methods.first(), Some(&"totp"), "newest first: {methods:?}");
    assert!(methods.contains(&"password"), "{methods:?}");
    assert_ne!(stepped["refresh_token"], first["refresh_token"], "a new refresh token");
    assert_eq!(stepped["user"]["factors"][0]["status"], "verified");
    // A v1 session's token is swapped as GoTrue's GrantRefreshTokenSwap does: audited.
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT payload->>'action' FROM audit_log_entries WHERE payload->>'actor_id' = $1 ORDER BY created_at",
    )
    .bind(user_id(&first).to_string())
    .fetch_all(&suite.db)
    .await?;
    let tail: Vec<&str> = actions.iter().rev().take(2).map(String::as_str).collect();
    assert_eq!(tail, ["token_revoked", "verification_attempted"], "{actions:?}");

    // The user's other AAL1 session ended (GoTrue's InvalidateSessionsWithAALLessThan).
    let response = refresh(&suite, other["refresh_token"].as_str().unwrap_or_default()).await?;
    assert_eq!(response.status(), 400, "the AAL1 session is gone");

    // Refreshing keeps AAL2.
    let refreshed = refresh_ok(&suite, stepped["refresh_token"].as_str().unwrap_or_default()).await?;
    assert_eq!(access_claims(&refreshed)["aal"], "aal2");

    // Beyond GoTrue: a code is accepted once, even within its 90-second window.
    let again = challenge(&suite, &refreshed, &factor_id).await?;
    let replayed = verify(&suite, &refreshed, &factor_id, &again, &code).await?;
    assert_gotrue_error(replayed, 422, "mfa_verification_failed").await;

    // A new password sign-in starts at AAL1; the stepped-up session stays AAL2 (§10 item 50).
    let later = sign_in(&suite, &address).await?;
    assert_eq!(access_claims(&later)["aal"], "aal1");
    assert_eq!(later["user"]["factors"][0]["status"], "verified");
    let still = refresh_ok(&suite, refreshed["refresh_token"].as_str().unwrap_or_default()).await?;
    assert_eq!(access_claims(&still)["aal"], "aal2");

    // A verified factor exists: a new one needs AAL2.
    let response = call(
        &suite,
        &later,
        Method::POST,
        "/factors",
        Some(json!({"factor_type": "totp", "friendly_name": "second"})),
    )
    .await?;
    assert_gotrue_error(response, 403, "insufficient_aal").await;
    enroll_totp(&suite, &still, "second").await?;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unenrolling_a_verified_factor_needs_aal2_and_downgrades_its_sessions() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let address = email();
    let first = sign_up(&suite, &address).await?;
    let (stepped, factor_id, _) = enroll_and_verify(&suite, &first).await?;
    let aal1 = sign_in(&suite, &address).await?;

    let response = call(&suite, &aal1, Method::DELETE, &format!("/factors/{factor_id}"), None).await?;
    let body = assert_gotrue_error(response, 422, "insufficient_aal").await;
    assert_eq!(body["msg"], "AAL2 required to unenroll verified factor");

    let removed = call_ok(&suite, &stepped, Method::DELETE, &format!("/factors/{factor_id}"), None).await?;
    assert_eq!(removed, json!({"id": factor_id}));
    let refreshed = refresh_ok(&suite, stepped["refresh_token"].as_str().unwrap_or_default()).await?;
    assert_eq!(access_claims(&refreshed)["aal"], "aal1", "the factor's step-up is gone");
    assert!(
        refreshed["user"].get("factors").is_none(),
        "no factors left (omitted, as GoTrue omits them)"
    );

    // An unverified factor goes without AAL2.
    let pending = enroll_totp(&suite, &aal1, "pending").await?;
    let pending_id = pending["id"].as_str().unwrap_or_default();
    call_ok(&suite, &aal1, Method::DELETE, &format!("/factors/{pending_id}"), None).await?;
    let audit: Vec<String> = sqlx::query_scalar(
        "SELECT payload->>'action' FROM audit_log_entries WHERE payload->>'actor_id' = $1 ORDER BY created_at",
    )
    .bind(user_id(&first).to_string())
    .fetch_all(&suite.db)
    .await?;
    for action in [
        "factor_in_progress",
        "challenge_created",
        "verification_attempted",
        "factor_unenrolled",
    ] {
        assert!(audit.iter().any(|a| a == action), "{action} in {audit:?}");
    }
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn challenges_and_factors_are_checked_as_gotrue_checks_them() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "true")
        .env("GOTRUE_MFA_MAX_ENROLLED_FACTORS", "3")
        .start()
        .await?;
    let session = sign_up(&suite, &email()).await?;
    let stranger = sign_up(&suite, &email()).await?;
    let factor = enroll_totp(&suite, &session, "mine").await?;
    let factor_id = factor["id"].as_str().unwrap_or_default().to_string();
    let secret = factor["totp"]["secret"].as_str().unwrap_or_default().to_string();

    // Enrolment input.
    let response = call(
        &suite,
        &session,
        Method::POST,
        "/factors",
        Some(json!({"factor_type": "sms"})),
    )
    .await?;
    assert_gotrue_error(response, 400, "validation_failed").await;
    let response = call(
        &suite,
        &session,
        Method::POST,
        "/factors",
        Some(json!({"factor_type": "phone", "phone": "+15551234567"})),
    )
    .await?;
    assert_gotrue_error(response, 422, "mfa_phone_enroll_not_enabled").await;
    let response = call(
        &suite,
        &session,
        Method::POST,
        "/factors",
        Some(json!({"factor_type": "totp", "friendly_name": "mine"})),
    )
    .await?;
    assert_gotrue_error(response, 422, "mfa_factor_name_conflict").await;
    enroll_totp(&suite, &session, "two").await?;
    enroll_totp(&suite, &session, "three").await?;
    let response = call(
        &suite,
        &session,
        Method::POST,
        "/factors",
        Some(json!({"factor_type": "totp", "friendly_name": "four"})),
    )
    .await?;
    assert_gotrue_error(response, 422, "too_many_enrolled_mfa_factors").await;

    // Whose factor, and which.
    let response = call(
        &suite,
        &stranger,
        Method::POST,
        &format!("/factors/{factor_id}/challenge"),
        None,
    )
    .await?;
    assert_gotrue_error(response, 404, "mfa_factor_not_found").await;
    let response = call(&suite, &session, Method::POST, "/factors/not-a-uuid/challenge", None).await?;
    assert_gotrue_error(response, 404, "validation_failed").await;

    // The challenge: known, from the same address, not expired, one use.
    let challenge_id = challenge(&suite, &session, &factor_id).await?;
    let response = verify(&suite, &session, &factor_id, &challenge_id, "").await?;
    assert_gotrue_error(response, 400, "validation_failed").await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let response = verify(&suite, &session, &factor_id, &unknown, "123456").await?;
    assert_gotrue_error(response, 422, "mfa_factor_not_found").await;
    let response = suite
        .request(Method::POST, &format!("/factors/{factor_id}/verify"))
        .header("Authorization", bearer(&session))
        .header("X-Forwarded-For", "203.0.113.9")
        .json(&json!({"challenge_id": challenge_id, "code": totp_code(&secret, now())}))
        .send()
        .await?;
    assert_gotrue_error(response, 422, "mfa_ip_address_mismatch").await;
    sqlx::query("UPDATE mfa_challenges SET created_at = now() - interval '301 seconds' WHERE id = $1::uuid")
        .bind(&challenge_id)
        .execute(&suite.db)
        .await?;
    let response = verify(&suite, &session, &factor_id, &challenge_id, &totp_code(&secret, now())).await?;
    assert_gotrue_error(response, 422, "mfa_challenge_expired").await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM mfa_challenges WHERE id = $1::uuid")
        .bind(&challenge_id)
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(left, 0, "an expired challenge is deleted");

    let fresh = challenge(&suite, &session, &factor_id).await?;
    let response = verify(&suite, &session, &factor_id, &fresh, &totp_code(&secret, now())).await?;
    assert_eq!(response.status(), 200);
    let stepped: Value = response.json().await?;
    // The user's other unverified TOTP factors went with the verification (GoTrue's
    // DeleteUnverifiedFactors); a spent challenge cannot be used again.
    assert_eq!(
        stepped["user"]["factors"].as_array().map(Vec::len),
        Some(1),
        "{stepped}"
    );
    let response = verify(&suite, &stepped, &factor_id, &fresh, &totp_code(&secret, now() + 30)).await?;
    assert_gotrue_error(response, 422, "mfa_ip_address_mismatch").await;

    // Anonymous users have no factors.
    let anonymous: Value = suite.post_json("/signup", &json!({})).await?.json().await?;
    let response = call(
        &suite,
        &anonymous,
        Method::POST,
        "/factors",
        Some(json!({"factor_type": "totp"})),
    )
    .await?;
    assert_gotrue_error(response, 403, "no_authorization").await;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn switched_off_totp_is_refused() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_MFA_TOTP_ENROLL_ENABLED", "false")
        .start()
        .await?;
    let session = sign_up(&suite, &email()).await?;
    let response = call(
        &suite,
        &session,
        Method::POST,
        "/factors",
        Some(json!({"factor_type": "totp"})),
    )
    .await?;
    assert_gotrue_error(response, 422, "mfa_totp_enroll_not_enabled").await;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn wrong_codes_pause_the_factor_whatever_the_address() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("AUTH_MFA_MAX_FAILURES", "3")
        .start()
        .await?;
    let session = sign_up(&suite, &email()).await?;
    let factor = enroll_totp(&suite, &session, "guessed").await?;
    let factor_id = factor["id"].as_str().unwrap_or_default().to_string();
    let secret = factor["totp"]["secret"].as_str().unwrap_or_default().to_string();

    // Three wrong codes, each from another address (a challenge is bound to the address that made it).
    for (n, address) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"].into_iter().enumerate() {
        let with_address = |method: Method, path: String| {
            suite
                .request(method, &path)
                .header("Authorization", bearer(&session))
                .header("X-Forwarded-For", address)
        };
        let challenge: Value = with_address(Method::POST, format!("/factors/{factor_id}/challenge"))
            .send()
            .await?
            .json()
            .await?;
        let response = with_address(Method::POST, format!("/factors/{factor_id}/verify"))
            .json(&json!({"challenge_id": challenge["id"], "code": "000000"}))
            .send()
            .await?;
        assert_gotrue_error(response, 422, "mfa_verification_failed").await;
        let failures: Option<i32> =
            sqlx::query_scalar("SELECT failures FROM suite_mfa_failures WHERE factor_id = $1::uuid")
                .bind(&factor_id)
                .fetch_optional(&suite.db)
                .await?;
        assert_eq!(
            failures,
            Some(if n < 2 { i32::try_from(n)? + 1 } else { 0 }),
            "counted, then reset when paused"
        );
    }

    // Paused: even the right code is refused, with no attempt counted.
    let challenge_id = challenge(&suite, &session, &factor_id).await?;
    let response = verify(&suite, &session, &factor_id, &challenge_id, &totp_code(&secret, now())).await?;
    let body = assert_gotrue_error(response, 429, "over_request_rate_limit").await;
    assert!(
        body["msg"].as_str().unwrap_or_default().contains("Try again in"),
        "{body}"
    );

    // Once the pause is over, the right code verifies and the count is gone.
    sqlx::query("UPDATE suite_mfa_failures SET locked_until = now() - interval '1 second' WHERE factor_id = $1::uuid")
        .bind(&factor_id)
        .execute(&suite.db)
        .await?;
    let response = verify(&suite, &session, &factor_id, &challenge_id, &totp_code(&secret, now())).await?;
    assert_eq!(response.status(), 200);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM suite_mfa_failures WHERE factor_id = $1::uuid")
        .bind(&factor_id)
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(left, 0);
    suite.shutdown().await;
    Ok(())
}
