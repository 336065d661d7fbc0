//! Phone factors through the gateway, with the code read from the fake SMS provider: enrolment,
//! the SMS challenge (`GOTRUE_MFA_PHONE_TEMPLATE`, `GOTRUE_MFA_PHONE_MAX_FREQUENCY`), verification
//! stepping the session up with `mfa/phone`, one verified factor per number, and the factor
//! enrolled/unenrolled notification emails.

use std::time::Duration;

use auth_proto::notification::v1::{EmailKind, SmsKind};
use auth_testkit::{Suite, assert_gotrue_error};
use reqwest::Method;
use serde_json::{Value, json};

use crate::mfa::{access_claims, call, call_ok, enroll_and_verify, verify};
use crate::support::*;

async fn phone_suite() -> anyhow::Result<Suite> {
    Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_MFA_PHONE_ENROLL_ENABLED", "true")
        .env("GOTRUE_MFA_PHONE_VERIFY_ENABLED", "true")
        .env("GOTRUE_MFA_PHONE_TEMPLATE", "Your sign-in code: {{ .Code }}")
        .env("GOTRUE_MFA_PHONE_OTP_LENGTH", "8")
        .env("GOTRUE_MAILER_NOTIFICATIONS_MFA_FACTOR_ENROLLED_ENABLED", "true")
        .env("GOTRUE_MAILER_NOTIFICATIONS_MFA_FACTOR_UNENROLLED_ENABLED", "true")
        .start()
        .await
}

async fn enroll_phone(suite: &Suite, session: &Value, phone: &str, name: &str) -> anyhow::Result<Value> {
    call_ok(
        suite,
        session,
        Method::POST,
        "/factors",
        Some(json!({"factor_type": "phone", "phone": phone, "friendly_name": name})),
    )
    .await
}

/// Challenges the factor and reads the code off the SMS the provider received.
async fn challenge_by_sms(suite: &Suite, session: &Value, factor_id: &str) -> anyhow::Result<(Value, String)> {
    let challenge = call_ok(
        suite,
        session,
        Method::POST,
        &format!("/factors/{factor_id}/challenge"),
        Some(json!({"channel": "sms"})),
    )
    .await?;
    let sms = suite.sms.next().await.ok_or_else(|| anyhow::anyhow!("no SMS sent"))?;
    let body = sms.form_field("Body").unwrap_or_default();
    let code = body
        .strip_prefix("Your sign-in code: ")
        .ok_or_else(|| anyhow::anyhow!("unexpected SMS text {body:?}"))?
        .to_string();
    Ok((challenge, code))
}

#[tokio::test]
async fn a_phone_factor_is_verified_by_the_code_sent_to_it() -> anyhow::Result<()> {
    let suite = phone_suite().await?;
    let address = email();
    let session = sign_up(&suite, &address).await?;

    // GoTrue's checks on the number.
    let missing = call(
        &suite,
        &session,
        Method::POST,
        "/factors",
        Some(json!({"factor_type": "phone"})),
    )
    .await?;
    assert_gotrue_error(missing, 400, "validation_failed").await;
    let bad = call(
        &suite,
        &session,
        Method::POST,
        "/factors",
        Some(json!({"factor_type": "phone", "phone": "call me"})),
    )
    .await?;
    assert_gotrue_error(bad, 400, "validation_failed").await;

    // Enrolment answers with the number as sent; the factor stores E.164 digits.
    let factor = enroll_phone(&suite, &session, "+1 555 010 3030", "my phone").await?;
    assert_eq!(factor["type"], "phone");
    assert_eq!(factor["phone"], "+1 555 010 3030");
    assert_eq!(factor["friendly_name"], "my phone");
    assert!(factor.get("totp").is_none(), "{factor}");
    let factor_id = factor["id"].as_str().unwrap_or_default().to_string();

    // A channel the provider cannot use is refused before anything is sent.
    let refused = call(
        &suite,
        &session,
        Method::POST,
        &format!("/factors/{factor_id}/challenge"),
        Some(json!({"channel": "pigeon"})),
    )
    .await?;
    assert_gotrue_error(refused, 400, "validation_failed").await;

    let (challenge, code) = challenge_by_sms(&suite, &session, &factor_id).await?;
    assert_eq!(challenge["type"], "phone");
    assert_eq!(code.len(), 8, "GOTRUE_MFA_PHONE_OTP_LENGTH");
    assert!(challenge["expires_at"].as_i64().unwrap_or_default() > chrono::Utc::now().timestamp());
    let queued = last_sms_request(&suite, "15550103030").await?;
    assert_eq!(queued.kind, SmsKind::MfaChallenge as i32);
    let challenge_id = challenge["id"].as_str().unwrap_or_default().to_string();
    // The stored challenge keeps a hash, never the code itself.
    let stored: Option<String> = sqlx::query_scalar("SELECT otp_code FROM mfa_challenges WHERE id = $1::uuid")
        .bind(&challenge_id)
        .fetch_one(&suite.db)
        .await?;
    assert_ne!(stored.as_deref(), Some(code.as_str()));

    // A second challenge within GOTRUE_MFA_PHONE_MAX_FREQUENCY (60 s) sends nothing.
    let again = call(
        &suite,
        &session,
        Method::POST,
        &format!("/factors/{factor_id}/challenge"),
        None,
    )
    .await?;
    let body = assert_gotrue_error(again, 429, "over_sms_send_rate_limit").await;
    assert!(
        body["msg"]
            .as_str()
            .unwrap_or_default()
            .starts_with("For security purposes, you can only request this after"),
        "{body}"
    );
    assert!(suite.sms.next_within(Duration::from_millis(500)).await.is_none());

    let wrong = verify(&suite, &session, &factor_id, &challenge_id, "00000000").await?;
    let body = assert_gotrue_error(wrong, 422, "mfa_verification_failed").await;
    assert_eq!(body["msg"], "Invalid MFA Phone code entered");

    let response = verify(&suite, &session, &factor_id, &challenge_id, &code).await?;
    assert_eq!(response.status(), 200);
    let stepped_up: Value = response.json().await?;
    let claims = access_claims(&stepped_up);
    assert_eq!(claims["aal"], "aal2");
    let methods: Vec<&str> = claims["amr"]
        .as_array()
        .map(|amr| amr.iter().filter_map(|c| c["method"].as_str()).collect())
        .unwrap_or_default();
    assert!(methods.contains(&"mfa/phone"), "{methods:?}");

    // The code is spent with its challenge.
    let replay = verify(&suite, &stepped_up, &factor_id, &challenge_id, &code).await?;
    assert_gotrue_error(replay, 422, "mfa_ip_address_mismatch").await;

    // The first verification is notified to the user's email address.
    let notice = last_email_request(&suite, &address).await?;
    assert_eq!(notice.kind, EmailKind::MfaFactorEnrolledNotification as i32);
    assert_eq!(notice.factor_type, "phone");
    let mail = suite.smtp.next().await.expect("the enrolled notification");
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("A new verification method was added to your account")
    );
    assert!(mail.body().contains("Sign-in verification method phone was added"));

    // One verified factor per number.
    let duplicate = call(
        &suite,
        &stepped_up,
        Method::POST,
        "/factors",
        Some(json!({"factor_type": "phone", "phone": "+15550103030", "friendly_name": "again"})),
    )
    .await?;
    assert_gotrue_error(duplicate, 422, "mfa_verified_factor_exists").await;

    let user: Value = get_user(&suite, &bearer(&stepped_up)).await?.json().await?;
    let factors = user["factors"].as_array().cloned().unwrap_or_default();
    assert_eq!(factors.len(), 1, "{user}");
    assert_eq!(factors[0]["phone"], "15550103030");
    assert_eq!(factors[0]["status"], "verified");

    call_ok(
        &suite,
        &stepped_up,
        Method::DELETE,
        &format!("/factors/{factor_id}"),
        None,
    )
    .await?;
    let notice = last_email_request(&suite, &address).await?;
    assert_eq!(notice.kind, EmailKind::MfaFactorUnenrolledNotification as i32);
    let mail = suite.smtp.next().await.expect("the unenrolled notification");
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("A verification method was removed from your account")
    );
    assert!(mail.body().contains("Sign-in verification method phone was removed"));
    suite.shutdown().await;
    Ok(())
}

/// An unverified factor on a number is replaced by a new enrolment of the number; wrong phone codes
/// count toward the factor's pause like wrong TOTP codes; a TOTP factor's first verification is
/// notified too, with its own type.
#[tokio::test]
async fn phone_factors_follow_the_shared_factor_rules() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_MFA_PHONE_ENROLL_ENABLED", "true")
        .env("GOTRUE_MFA_PHONE_VERIFY_ENABLED", "true")
        .env("GOTRUE_MFA_PHONE_TEMPLATE", "Your sign-in code: {{ .Code }}")
        .env("GOTRUE_MAILER_NOTIFICATIONS_MFA_FACTOR_ENROLLED_ENABLED", "true")
        .env("AUTH_MFA_MAX_FAILURES", "2")
        .start()
        .await?;
    let address = email();
    let session = sign_up(&suite, &address).await?;
    let first = enroll_phone(&suite, &session, "+15550104040", "first").await?;
    let second = enroll_phone(&suite, &session, "+15550104040", "second").await?;
    let user: Value = get_user(&suite, &bearer(&session)).await?.json().await?;
    let ids: Vec<&str> = user["factors"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        ids,
        [second["id"].as_str().unwrap_or_default()],
        "the first was replaced: {first}"
    );

    let factor_id = second["id"].as_str().unwrap_or_default().to_string();
    let (challenge, code) = challenge_by_sms(&suite, &session, &factor_id).await?;
    let challenge_id = challenge["id"].as_str().unwrap_or_default();
    for _ in 0..2 {
        let wrong = verify(&suite, &session, &factor_id, challenge_id, "000000").await?;
        assert_gotrue_error(wrong, 422, "mfa_verification_failed").await;
    }
    let paused = verify(&suite, &session, &factor_id, challenge_id, &code).await?;
    assert_gotrue_error(paused, 429, "over_request_rate_limit").await;

    // A TOTP factor of another user: its first verification is notified as `totp`.
    let other = email();
    let other_session = sign_up(&suite, &other).await?;
    enroll_and_verify(&suite, &other_session).await?;
    let notice = last_email_request(&suite, &other).await?;
    assert_eq!(notice.kind, EmailKind::MfaFactorEnrolledNotification as i32);
    assert_eq!(notice.factor_type, "totp");
    suite.shutdown().await;
    Ok(())
}
