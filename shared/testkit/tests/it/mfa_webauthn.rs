//! WebAuthn factors through the gateway with a software authenticator (webauthn-authenticator-rs's
//! `SoftPasskey`): registration on the first challenge of a factor, assertions after, both stepping
//! the session up with `mfa/webauthn`, and GoTrue's checks of the `webauthn` parameters.

use auth_testkit::{Suite, assert_gotrue_error};
use reqwest::Method;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::mfa::{access_claims, call, call_ok};
use crate::support::*;

const ORIGIN: &str = "http://localhost:3000";

async fn webauthn_suite() -> anyhow::Result<Suite> {
    Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_MFA_WEB_AUTHN_ENROLL_ENABLED", "true")
        .env("GOTRUE_MFA_WEB_AUTHN_VERIFY_ENABLED", "true")
        .env("GOTRUE_WEBAUTHN_RP_ID", "localhost")
        .env("GOTRUE_WEBAUTHN_RP_DISPLAY_NAME", "Suite tests")
        .env("GOTRUE_WEBAUTHN_RP_ORIGINS", ORIGIN)
        .start()
        .await
}

async fn challenge_webauthn(suite: &Suite, session: &Value, factor_id: &str) -> anyhow::Result<Value> {
    call_ok(
        suite,
        session,
        Method::POST,
        &format!("/factors/{factor_id}/challenge"),
        None,
    )
    .await
}

async fn verify_webauthn(
    suite: &Suite,
    session: &Value,
    factor_id: &str,
    challenge_id: &str,
    webauthn: Value,
) -> anyhow::Result<reqwest::Response> {
    call(
        suite,
        session,
        Method::POST,
        &format!("/factors/{factor_id}/verify"),
        Some(json!({"challenge_id": challenge_id, "webauthn": webauthn})),
    )
    .await
}

fn methods(session: &Value) -> Vec<String> {
    access_claims(session)["amr"]
        .as_array()
        .map(|amr| {
            amr.iter()
                .filter_map(|c| c["method"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_webauthn_factor_registers_then_asserts() -> anyhow::Result<()> {
    let suite = webauthn_suite().await?;
    let address = email();
    let session = sign_up(&suite, &address).await?;
    let mut authenticator = SoftPasskey::new(true);
    let origin = Url::parse(ORIGIN)?;

    let factor = call_ok(
        &suite,
        &session,
        Method::POST,
        "/factors",
        Some(json!({"factor_type": "webauthn", "friendly_name": "security key"})),
    )
    .await?;
    assert_eq!(factor["type"], "webauthn");
    assert!(
        factor.get("totp").is_none() && factor.get("phone").is_none(),
        "{factor}"
    );
    let factor_id = factor["id"].as_str().unwrap_or_default().to_string();

    // An unverified factor is challenged with registration options.
    let challenge = challenge_webauthn(&suite, &session, &factor_id).await?;
    assert_eq!(challenge["type"], "webauthn");
    assert_eq!(challenge["webauthn"]["type"], "create");
    let options = &challenge["webauthn"]["credential_options"];
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
    assert_eq!(options["publicKey"]["user"]["name"], address.as_str());
    let challenge_id = challenge["id"].as_str().unwrap_or_default().to_string();

    // GoTrue's checks of the parameters.
    let missing = call(
        &suite,
        &session,
        Method::POST,
        &format!("/factors/{factor_id}/verify"),
        Some(json!({"challenge_id": challenge_id})),
    )
    .await?;
    let body = assert_gotrue_error(missing, 400, "validation_failed").await;
    assert_eq!(body["msg"], "WebAuthn config required");
    let bad_type = verify_webauthn(&suite, &session, &factor_id, &challenge_id, json!({"type": "get"})).await?;
    assert_gotrue_error(bad_type, 400, "validation_failed").await;
    let no_response = verify_webauthn(&suite, &session, &factor_id, &challenge_id, json!({"type": "create"})).await?;
    let body = assert_gotrue_error(no_response, 400, "validation_failed").await;
    assert_eq!(body["msg"], "credential_response required");

    let creation: CreationChallengeResponse = serde_json::from_value(options.clone())?;
    let registered = authenticator
        .do_registration(origin.clone(), creation)
        .map_err(|e| anyhow::anyhow!("registration: {e:?}"))?;
    let response = verify_webauthn(
        &suite,
        &session,
        &factor_id,
        &challenge_id,
        json!({"type": "create", "credential_response": registered}),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let stepped: Value = response.json().await?;
    assert_eq!(access_claims(&stepped)["aal"], "aal2");
    assert!(methods(&stepped).contains(&"mfa/webauthn".to_string()));
    assert_eq!(stepped["user"]["factors"][0]["status"], "verified");

    // Later sign-ins step up with an assertion of the registered credential.
    let later = sign_in(&suite, &address).await?;
    assert_eq!(access_claims(&later)["aal"], "aal1");
    let challenge = challenge_webauthn(&suite, &later, &factor_id).await?;
    assert_eq!(challenge["webauthn"]["type"], "request");
    let options = challenge["webauthn"]["credential_options"].clone();
    let challenge_id = challenge["id"].as_str().unwrap_or_default().to_string();
    let request: RequestChallengeResponse = serde_json::from_value(options.clone())?;
    let asserted = authenticator
        .do_authentication(origin.clone(), request)
        .map_err(|e| anyhow::anyhow!("authentication: {e:?}"))?;
    let stored_before: Value = sqlx::query_scalar("SELECT web_authn_credential FROM mfa_factors WHERE id = $1::uuid")
        .bind(&factor_id)
        .fetch_one(&suite.db)
        .await?;

    // The registration answer does not pass for an assertion challenge.
    let mismatched = verify_webauthn(
        &suite,
        &later,
        &factor_id,
        &challenge_id,
        json!({"type": "create", "credential_response": registered}),
    )
    .await?;
    assert_gotrue_error(mismatched, 400, "validation_failed").await;

    let response = verify_webauthn(
        &suite,
        &later,
        &factor_id,
        &challenge_id,
        json!({"type": "request", "credential_response": asserted}),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let stepped_again: Value = response.json().await?;
    assert_eq!(access_claims(&stepped_again)["aal"], "aal2");
    let stored_after: Value = sqlx::query_scalar("SELECT web_authn_credential FROM mfa_factors WHERE id = $1::uuid")
        .bind(&factor_id)
        .fetch_one(&suite.db)
        .await?;
    assert_ne!(stored_before, stored_after, "the signature counter is stored");

    // An assertion is good for its own challenge only.
    let next = challenge_webauthn(&suite, &later, &factor_id).await?;
    let replayed = verify_webauthn(
        &suite,
        &later,
        &factor_id,
        next["id"].as_str().unwrap_or_default(),
        json!({"type": "request", "credential_response": asserted}),
    )
    .await?;
    assert_gotrue_error(replayed, 422, "mfa_verification_failed").await;
    suite.shutdown().await;
    Ok(())
}

/// GoTrue's switches, including its quirk: a WebAuthn verification with verification off answers
/// with the enrol code.
#[tokio::test]
async fn webauthn_factors_follow_gotrues_switches() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_MFA_WEB_AUTHN_ENROLL_ENABLED", "true")
        .env("GOTRUE_WEBAUTHN_RP_ID", "localhost")
        .env("GOTRUE_WEBAUTHN_RP_DISPLAY_NAME", "Suite tests")
        .env("GOTRUE_WEBAUTHN_RP_ORIGINS", ORIGIN)
        .start()
        .await?;
    let session = sign_up(&suite, &email()).await?;
    let factor = call_ok(
        &suite,
        &session,
        Method::POST,
        "/factors",
        Some(json!({"factor_type": "webauthn", "friendly_name": "key"})),
    )
    .await?;
    let factor_id = factor["id"].as_str().unwrap_or_default();
    let challenge = call(
        &suite,
        &session,
        Method::POST,
        &format!("/factors/{factor_id}/challenge"),
        None,
    )
    .await?;
    assert_gotrue_error(challenge, 422, "mfa_webauthn_verify_not_enabled").await;
    let verify = call(
        &suite,
        &session,
        Method::POST,
        &format!("/factors/{factor_id}/verify"),
        Some(json!({"challenge_id": uuid::Uuid::new_v4(), "webauthn": {"type": "create"}})),
    )
    .await?;
    assert_gotrue_error(verify, 422, "mfa_webauthn_enroll_not_enabled").await;
    suite.shutdown().await;
    Ok(())
}
