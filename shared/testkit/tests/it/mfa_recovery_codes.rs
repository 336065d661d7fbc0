//! The suite's MFA recovery codes (`AUTH_MFA_RECOVERY_CODES_ENABLED`, not in GoTrue) through the
//! gateway: generated at AAL2 beside a verified factor, shown once, usable once each in place of the
//! factor to step a session up to AAL2, replaced by a new set.

use auth_testkit::{Suite, assert_gotrue_error};
use reqwest::Method;
use serde_json::{Value, json};

use crate::mfa::{access_claims, call, call_ok, enroll_and_verify};
use crate::support::*;

const CODES: &str = "/factors/recovery-codes";
const USE_CODE: &str = "/factors/recovery-codes/verify";

async fn use_code(suite: &Suite, session: &Value, code: &str) -> anyhow::Result<reqwest::Response> {
    call(suite, session, Method::POST, USE_CODE, Some(json!({"code": code}))).await
}

fn codes_of(body: &Value) -> Vec<String> {
    body["codes"]
        .as_array()
        .map(|codes| codes.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn recovery_codes_are_off_unless_switched_on() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let session = sign_up(&suite, &email()).await?;
    let response = call(&suite, &session, Method::POST, CODES, None).await?;
    assert_gotrue_error(response, 404, "feature_disabled").await;
    let response = use_code(&suite, &session, "AAAA-BBBB-CCCC-DDDD").await?;
    assert_gotrue_error(response, 404, "feature_disabled").await;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_recovery_code_steps_a_session_up_once() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("AUTH_MFA_RECOVERY_CODES_ENABLED", "true")
        .env("AUTH_MFA_RECOVERY_CODES_COUNT", "3")
        .start()
        .await?;
    let address = email();
    let session = sign_up(&suite, &address).await?;

    // Codes stand in for a factor: none without one, and only at AAL2.
    let response = call(&suite, &session, Method::POST, CODES, None).await?;
    assert_gotrue_error(response, 422, "mfa_factor_not_found").await;
    let (stepped, _, _) = enroll_and_verify(&suite, &session).await?;
    let aal1 = sign_in(&suite, &address).await?;
    let response = call(&suite, &aal1, Method::POST, CODES, None).await?;
    assert_gotrue_error(response, 403, "insufficient_aal").await;

    let generated = call_ok(&suite, &stepped, Method::POST, CODES, None).await?;
    let codes = codes_of(&generated);
    assert_eq!(codes.len(), 3, "AUTH_MFA_RECOVERY_CODES_COUNT: {generated}");
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 19 && c.split('-').all(|group| group.len() == 4)),
        "{codes:?}"
    );
    let status = call_ok(&suite, &aal1, Method::GET, CODES, None).await?;
    assert_eq!(
        (status["total"].as_u64(), status["remaining"].as_u64()),
        (Some(3), Some(3))
    );
    let stored: Vec<String> = sqlx::query_scalar("SELECT code_hash FROM suite_mfa_recovery_codes")
        .fetch_all(&suite.db)
        .await?;
    assert!(
        stored
            .iter()
            .all(|hash| !codes.iter().any(|code| hash.contains(code.as_str()))),
        "only hashes are stored"
    );

    // A lost factor: an AAL1 session steps up with a code, typed loosely.
    let wrong = use_code(&suite, &aal1, "AAAA-BBBB-CCCC-DDDD").await?;
    assert_gotrue_error(wrong, 422, "mfa_verification_failed").await;
    let typed = codes[0].to_lowercase().replace('-', " ");
    let response = use_code(&suite, &aal1, &typed).await?;
    assert_eq!(response.status(), 200);
    let recovered: Value = response.json().await?;
    let claims = access_claims(&recovered);
    assert_eq!(claims["aal"], "aal2");
    assert_eq!(
        claims["session_id"],
        access_claims(&aal1)["session_id"],
        "the same session"
    );
    let methods: Vec<&str> = claims["amr"]
        .as_array()
        .map(|amr| amr.iter().filter_map(|c| c["method"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(methods.first(), Some(&"mfa/recovery_code"), "{methods:?}");
    let refreshed = refresh_ok(&suite, recovered["refresh_token"].as_str().unwrap_or_default()).await?;
    assert_eq!(access_claims(&refreshed)["aal"], "aal2", "refresh keeps AAL2");

    // Once only.
    let another = sign_in(&suite, &address).await?;
    let replay = use_code(&suite, &another, &codes[0]).await?;
    assert_gotrue_error(replay, 422, "mfa_verification_failed").await;
    let status = call_ok(&suite, &refreshed, Method::GET, CODES, None).await?;
    assert_eq!(status["remaining"].as_u64(), Some(2));

    // A new set replaces the old one.
    let renewed = call_ok(&suite, &refreshed, Method::POST, CODES, None).await?;
    assert_eq!(codes_of(&renewed).len(), 3);
    let old = use_code(&suite, &another, &codes[1]).await?;
    assert_gotrue_error(old, 422, "mfa_verification_failed").await;
    let new = use_code(&suite, &another, &codes_of(&renewed)[0]).await?;
    assert_eq!(new.status(), 200);

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT payload->>'action' FROM audit_log_entries WHERE payload->>'actor_id' = $1")
            .bind(user_id(&session).to_string())
            .fetch_all(&suite.db)
            .await?;
    assert_eq!(actions.iter().filter(|a| *a == "recovery_codes_generated").count(), 2);
    assert_eq!(actions.iter().filter(|a| *a == "recovery_code_used").count(), 2);
    suite.shutdown().await;
    Ok(())
}
