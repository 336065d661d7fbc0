//! Passkeys through the gateway (GoTrue v2.196's `/passkeys` API): registration by a signed-in
//! user, a passwordless sign-in with the passkey, the user's and the admin's management, and
//! GoTrue's rules and error codes.
//!
//! The authenticator is webauthn-authenticator-rs's `SoftPasskey`, which signs like a real one but
//! cannot keep a credential on the device (a resident key). The test keeps it instead: it asks the
//! software authenticator for a non-resident credential, remembers the credential id and the user
//! handle the server asked to store, and at sign-in names that credential and returns that handle,
//! as a device holding the passkey would. Everything the server checks (signature, challenge,
//! origin, RP id, counter) is the authenticator's own.

use auth_testkit::{Suite, assert_gotrue_error};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::mfa::{access_claims, call, call_ok, enroll_and_verify};
use crate::support::*;

const ORIGIN: &str = "http://localhost:3000";

fn passkey_suite() -> auth_testkit::SuiteBuilder {
    Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_PASSKEY_ENABLED", "true")
        .env("GOTRUE_WEBAUTHN_RP_ID", "localhost")
        .env("GOTRUE_WEBAUTHN_RP_DISPLAY_NAME", "Suite tests")
        .env("GOTRUE_WEBAUTHN_RP_ORIGINS", ORIGIN)
}

/// A passkey held by the test: the software authenticator with the credential it made, and the
/// user handle it was asked to keep.
struct Device {
    authenticator: SoftPasskey,
    credential_id: String,
    user_handle: String,
}

/// Answers registration options (`{challenge_id, options, expires_at}`) with a new credential.
fn create(authenticator: &mut SoftPasskey, started: &Value) -> anyhow::Result<(Value, String, String)> {
    let mut options = started["options"].clone();
    // The software authenticator cannot store resident keys; the test stores what it would.
    options["authenticatorSelection"]["requireResidentKey"] = json!(false);
    options["authenticatorSelection"]["residentKey"] = json!("discouraged");
    let user_handle = options["user"]["id"].as_str().unwrap_or_default().to_string();
    let creation: CreationChallengeResponse = serde_json::from_value(json!({"publicKey": options}))?;
    let registered = authenticator
        .do_registration(Url::parse(ORIGIN)?, creation)
        .map_err(|e| anyhow::anyhow!("registration: {e:?}"))?;
    let credential = serde_json::to_value(&registered)?;
    let credential_id = credential["id"].as_str().unwrap_or_default().to_string();
    Ok((credential, credential_id, user_handle))
}

/// Registers a passkey for the signed-in `session`; the device and the created passkey.
async fn register(suite: &Suite, session: &Value) -> anyhow::Result<(Device, Value)> {
    let started = call_ok(suite, session, Method::POST, "/passkeys/registration/options", None).await?;
    let mut authenticator = SoftPasskey::new(true);
    let (credential, credential_id, user_handle) = create(&mut authenticator, &started)?;
    let created = call_ok(
        suite,
        session,
        Method::POST,
        "/passkeys/registration/verify",
        Some(json!({"challenge_id": started["challenge_id"], "credential": credential})),
    )
    .await?;
    let device = Device {
        authenticator,
        credential_id,
        user_handle,
    };
    Ok((device, created))
}

/// Starts a sign-in and answers it with the device: the challenge id and the assertion.
async fn assert_with(suite: &Suite, device: &mut Device) -> anyhow::Result<(String, Value)> {
    let response = suite.post_json("/passkeys/authentication/options", &json!({})).await?;
    anyhow::ensure!(response.status() == 200, "options: {}", response.status());
    let started: Value = response.json().await?;
    let mut options = started["options"].clone();
    options["allowCredentials"] = json!([{"type": "public-key", "id": device.credential_id}]);
    let request: RequestChallengeResponse = serde_json::from_value(json!({"publicKey": options}))?;
    let asserted = device
        .authenticator
        .do_authentication(Url::parse(ORIGIN)?, request)
        .map_err(|e| anyhow::anyhow!("authentication: {e:?}"))?;
    let mut assertion = serde_json::to_value(&asserted)?;
    assertion["response"]["userHandle"] = json!(device.user_handle);
    let challenge_id = started["challenge_id"].as_str().unwrap_or_default().to_string();
    Ok((challenge_id, assertion))
}

async fn sign_in_verify(suite: &Suite, challenge_id: &str, assertion: &Value) -> anyhow::Result<reqwest::Response> {
    Ok(suite
        .post_json(
            "/passkeys/authentication/verify",
            &json!({"challenge_id": challenge_id, "credential": assertion}),
        )
        .await?)
}

fn user_id_of(session: &Value) -> String {
    session["user"]["id"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_passkey_registers_signs_in_and_is_managed() -> anyhow::Result<()> {
    let suite = passkey_suite().start().await?;
    let address = email();
    let session = sign_up(&suite, &address).await?;
    let user_id = user_id_of(&session);

    // Registration options: GoTrue's shape, its user handle (the id as text), a resident key.
    let started = call_ok(&suite, &session, Method::POST, "/passkeys/registration/options", None).await?;
    let options = &started["options"];
    assert_eq!(options["rp"]["id"], "localhost");
    assert_eq!(options["user"]["name"], address.as_str());
    assert_eq!(options["user"]["id"], URL_SAFE_NO_PAD.encode(user_id.as_bytes()));
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert!(started["expires_at"].as_i64().unwrap_or_default() > chrono::Utc::now().timestamp());

    let mut authenticator = SoftPasskey::new(true);
    let (credential, credential_id, user_handle) = create(&mut authenticator, &started)?;
    let verify_body = json!({"challenge_id": started["challenge_id"], "credential": credential});
    let created = call_ok(
        &suite,
        &session,
        Method::POST,
        "/passkeys/registration/verify",
        Some(verify_body.clone()),
    )
    .await?;
    assert_eq!(created["friendly_name"], "Passkey");
    assert!(
        created["created_at"].is_string() && created.get("last_used_at").is_none(),
        "{created}"
    );
    let passkey_id = created["id"].as_str().unwrap_or_default().to_string();

    // A ceremony answers once.
    let replayed = call(
        &suite,
        &session,
        Method::POST,
        "/passkeys/registration/verify",
        Some(verify_body),
    )
    .await?;
    assert_gotrue_error(replayed, 400, "webauthn_challenge_not_found").await;

    // Stored in GoTrue's layout: the raw credential id and a COSE key.
    let (stored_id, public_key, owner): (Vec<u8>, Vec<u8>, uuid::Uuid) =
        sqlx::query_as("SELECT credential_id, public_key, user_id FROM webauthn_credentials WHERE id = $1::uuid")
            .bind(&passkey_id)
            .fetch_one(&suite.db)
            .await?;
    assert_eq!(URL_SAFE_NO_PAD.encode(&stored_id), credential_id);
    assert_eq!(owner.to_string(), user_id);
    assert_eq!(public_key.first().map(|b| b & 0xe0), Some(0xa0), "a CBOR map");

    // A passwordless sign-in with it.
    let mut device = Device {
        authenticator,
        credential_id,
        user_handle,
    };
    let (challenge_id, assertion) = assert_with(&suite, &mut device).await?;
    let response = sign_in_verify(&suite, &challenge_id, &assertion).await?;
    assert_eq!(response.status(), 200);
    let signed_in: Value = response.json().await?;
    assert_eq!(user_id_of(&signed_in), user_id);
    assert!(signed_in["refresh_token"].is_string());
    let claims = access_claims(&signed_in);
    assert_eq!(claims["aal"], "aal1");
    assert_eq!(claims["amr"][0]["method"], "passkey");
    let logins: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log_entries WHERE payload->>'action' = 'login' \
         AND payload->'traits'->>'passkey_id' = $1",
    )
    .bind(&passkey_id)
    .fetch_one(&suite.db)
    .await?;
    assert_eq!(logins, 1);

    // The same assertion does not pass for another ceremony.
    let (other_challenge, _) = assert_with(&suite, &mut device).await?;
    let replayed = sign_in_verify(&suite, &other_challenge, &assertion).await?;
    assert_gotrue_error(replayed, 400, "webauthn_verification_failed").await;

    // The list shows the use; the counter moved.
    let listed = call_ok(&suite, &signed_in, Method::GET, "/passkeys", None).await?;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["id"], passkey_id.as_str());
    assert!(listed[0]["last_used_at"].is_string(), "{listed}");
    let sign_count: i64 = sqlx::query_scalar("SELECT sign_count FROM webauthn_credentials WHERE id = $1::uuid")
        .bind(&passkey_id)
        .fetch_one(&suite.db)
        .await?;
    assert!(sign_count > 0);

    // Renaming, with GoTrue's checks.
    let path = format!("/passkeys/{passkey_id}");
    let renamed = call_ok(
        &suite,
        &signed_in,
        Method::PATCH,
        &path,
        Some(json!({"friendly_name": "Laptop"})),
    )
    .await?;
    assert_eq!(renamed["friendly_name"], "Laptop");
    let empty = call(
        &suite,
        &signed_in,
        Method::PATCH,
        &path,
        Some(json!({"friendly_name": ""})),
    )
    .await?;
    assert_gotrue_error(empty, 400, "validation_failed").await;
    let long = call(
        &suite,
        &signed_in,
        Method::PATCH,
        &path,
        Some(json!({"friendly_name": "x".repeat(121)})),
    )
    .await?;
    assert_gotrue_error(long, 400, "validation_failed").await;
    let unknown = call(
        &suite,
        &signed_in,
        Method::PATCH,
        "/passkeys/not-a-uuid",
        Some(json!({"friendly_name": "x"})),
    )
    .await?;
    assert_gotrue_error(unknown, 404, "validation_failed").await;

    // Another user cannot see or touch it.
    let stranger = sign_up(&suite, &email()).await?;
    let foreign = call(
        &suite,
        &stranger,
        Method::PATCH,
        &path,
        Some(json!({"friendly_name": "mine"})),
    )
    .await?;
    assert_gotrue_error(foreign, 404, "validation_failed").await;
    let foreign = call(&suite, &stranger, Method::DELETE, &path, None).await?;
    assert_gotrue_error(foreign, 404, "validation_failed").await;
    let theirs = call_ok(&suite, &stranger, Method::GET, "/passkeys", None).await?;
    assert_eq!(theirs, json!([]));

    // The admin sees it.
    let admin_listed = admin_ok(&suite, Method::GET, &format!("/admin/users/{user_id}/passkeys"), None).await?;
    assert_eq!(admin_listed[0]["friendly_name"], "Laptop");

    // Deleted, it no longer signs in.
    let deleted = call(&suite, &signed_in, Method::DELETE, &path, None).await?;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        call_ok(&suite, &signed_in, Method::GET, "/passkeys", None).await?,
        json!([])
    );
    let (challenge_id, assertion) = assert_with(&suite, &mut device).await?;
    let refused = sign_in_verify(&suite, &challenge_id, &assertion).await?;
    assert_gotrue_error(refused, 400, "webauthn_verification_failed").await;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn passkeys_follow_gotrues_rules() -> anyhow::Result<()> {
    // Off: every /passkeys route says so first, signed in or not.
    let off = Suite::builder().start().await?;
    let response = off.post_json("/passkeys/authentication/options", &json!({})).await?;
    assert_gotrue_error(response, 404, "passkey_disabled").await;
    let response = off.get("/passkeys").await?;
    assert_gotrue_error(response, 404, "passkey_disabled").await;
    off.shutdown().await;

    let suite = passkey_suite()
        .env("GOTRUE_PASSKEY_MAX_PASSKEYS_PER_USER", "1")
        .env("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "true")
        .env("GOTRUE_MFA_TOTP_ENROLL_ENABLED", "true")
        .env("GOTRUE_MFA_TOTP_VERIFY_ENABLED", "true")
        .start()
        .await?;

    // Signed-in, non-anonymous callers only.
    let response = suite.post_json("/passkeys/registration/options", &json!({})).await?;
    assert_eq!(response.status(), 401);
    let anonymous: Value = suite.post_json("/signup", &json!({})).await?.json().await?;
    let response = call(&suite, &anonymous, Method::POST, "/passkeys/registration/options", None).await?;
    assert_gotrue_error(response, 403, "no_authorization").await;

    // The per-user limit.
    let address = email();
    let session = sign_up(&suite, &address).await?;
    let (mut device, created) = register(&suite, &session).await?;
    let response = call(&suite, &session, Method::POST, "/passkeys/registration/options", None).await?;
    assert_gotrue_error(response, 422, "too_many_passkeys").await;

    // The verify body's checks, in GoTrue's order.
    for (body, message) in [
        (json!({}), "challenge_id is required"),
        (json!({"challenge_id": "x"}), "credential is required"),
        (
            json!({"challenge_id": "x", "credential": {}}),
            "challenge_id must be a valid UUID",
        ),
    ] {
        let response = suite.post_json("/passkeys/authentication/verify", &body).await?;
        let error = assert_gotrue_error(response, 400, "validation_failed").await;
        assert_eq!(error["msg"], message);
    }
    let response = suite.post_json("/passkeys/authentication/verify", &json!([])).await?;
    assert_gotrue_error(response, 400, "bad_json").await;
    let (challenge_id, _) = assert_with(&suite, &mut device).await?;
    let garbage = sign_in_verify(&suite, &challenge_id, &json!({"id": 7})).await?;
    let error = assert_gotrue_error(garbage, 400, "webauthn_verification_failed").await;
    assert_eq!(error["msg"], "Invalid credential response");

    // An expired ceremony.
    let (challenge_id, assertion) = assert_with(&suite, &mut device).await?;
    sqlx::query("UPDATE webauthn_challenges SET expires_at = now() - interval '1 second' WHERE id = $1::uuid")
        .bind(&challenge_id)
        .execute(&suite.db)
        .await?;
    let expired = sign_in_verify(&suite, &challenge_id, &assertion).await?;
    assert_gotrue_error(expired, 400, "webauthn_challenge_expired").await;

    // Unconfirmed and banned users do not sign in, however good the assertion.
    let user_id = user_id_of(&session);
    sqlx::query("UPDATE users SET email_confirmed_at = NULL WHERE id = $1::uuid")
        .bind(&user_id)
        .execute(&suite.db)
        .await?;
    let (challenge_id, assertion) = assert_with(&suite, &mut device).await?;
    let unconfirmed = sign_in_verify(&suite, &challenge_id, &assertion).await?;
    assert_gotrue_error(unconfirmed, 403, "email_not_confirmed").await;
    sqlx::query(
        "UPDATE users SET email_confirmed_at = now(), banned_until = now() + interval '1 hour' WHERE id = $1::uuid",
    )
    .bind(&user_id)
    .execute(&suite.db)
    .await?;
    let (challenge_id, assertion) = assert_with(&suite, &mut device).await?;
    let banned = sign_in_verify(&suite, &challenge_id, &assertion).await?;
    assert_gotrue_error(banned, 403, "user_banned").await;

    // With a verified factor, passkeys are managed at AAL2 only.
    let other = email();
    let other_session = sign_up(&suite, &other).await?;
    enroll_and_verify(&suite, &other_session).await?;
    let aal1 = sign_in(&suite, &other).await?;
    let response = call(&suite, &aal1, Method::POST, "/passkeys/registration/options", None).await?;
    assert_gotrue_error(response, 403, "insufficient_aal").await;

    // The admin removes a passkey; the removal is audited.
    let passkey_id = created["id"].as_str().unwrap_or_default();
    let path = format!("/admin/users/{user_id}/passkeys/{passkey_id}");
    let response = admin(&suite, Method::DELETE, &path, None).await?;
    assert_eq!(response.status(), 204);
    let response = admin(&suite, Method::DELETE, &path, None).await?;
    assert_gotrue_error(response, 404, "validation_failed").await;
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log_entries WHERE payload->>'action' = 'passkey_deleted' \
         AND payload->'traits'->>'passkey_id' = $1",
    )
    .bind(passkey_id)
    .fetch_one(&suite.db)
    .await?;
    assert_eq!(audited, 1);
    let response = admin(&suite, Method::GET, "/admin/users/not-a-uuid/passkeys", None).await?;
    assert_eq!(response.status(), 404);
    suite.shutdown().await;
    Ok(())
}
