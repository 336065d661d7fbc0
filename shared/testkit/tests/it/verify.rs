//! `/verify` (links and codes), `/recover`, `/magiclink`, `/otp`, `/resend`, `/reauthenticate` and
//! PKCE, end to end: codes are read where the user would read them (the email in the SMTP sink) or,
//! for the digits that GoTrue's default templates do not show, from the queued request itself.

use auth_proto::notification::v1::EmailRequested;
use auth_testkit::{Suite, assert_gotrue_error};
use base64::Engine;
use reqwest::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::support::*;

/// Signs up without autoconfirm and returns the queued confirmation request.
async fn sign_up_unconfirmed(suite: &Suite, address: &str) -> anyhow::Result<EmailRequested> {
    let response = suite
        .post_json("/signup", &json!({"email": address, "password": PASSWORD}))
        .await?;
    anyhow::ensure!(response.status() == 200, "signup: {}", response.text().await?);
    last_email_request(suite, address).await
}

/// The path and query of an emailed link, to call on the gateway.
fn link_path(link: &str) -> String {
    let url = Url::parse(link).expect("an absolute link");
    format!("{}?{}", url.path(), url.query().unwrap_or_default())
}

fn location(response: &Response) -> Url {
    let value = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header");
    Url::parse(value).expect("an absolute Location")
}

fn fragment_param(url: &Url, name: &str) -> Option<String> {
    url::form_urlencoded::parse(url.fragment().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

const VERIFIER: &str = "a-code-verifier-long-enough-for-rfc-7636-0123456789";

/// §10 items 4 and 5, and single use: the emailed link signs the user in once, confirms them, and
/// is refused afterwards with GoTrue's error fragment.
#[tokio::test]
async fn the_confirmation_link_signs_in_once_and_confirms() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let address = email();
    sign_up_unconfirmed(&suite, &address).await?;
    let mail = suite.smtp.next().await.expect("the confirmation email");
    let body = mail.body();
    let href = body
        .split("href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link in the email")
        .replace("&amp;", "&");
    assert!(href.starts_with("http://localhost:9999/verify?token="), "{href}");

    let response = suite.get(&link_path(&href)).await?;
    assert_eq!(response.status(), 303);
    let target = location(&response);
    assert_eq!(target.as_str().split('#').next(), Some("http://localhost:3000/"));
    assert_eq!(fragment_param(&target, "type").as_deref(), Some("signup"));
    assert_eq!(fragment_param(&target, "token_type").as_deref(), Some("bearer"));
    assert_eq!(fragment_param(&target, "sb").as_deref(), Some(""));
    let access_token = fragment_param(&target, "access_token").expect("access_token");
    assert!(fragment_param(&target, "refresh_token").is_some_and(|t| !t.is_empty()));
    assert_eq!(fragment_param(&target, "expires_in").as_deref(), Some("3600"));
    assert_eq!(claims(&access_token)["amr"][0]["method"], "otp");

    let user: Value = get_user(&suite, &format!("Bearer {access_token}"))
        .await?
        .json()
        .await?;
    assert!(user["email_confirmed_at"].is_string());
    assert_eq!(user["user_metadata"]["email_verified"], true);
    assert_eq!(user["identities"][0]["identity_data"]["email_verified"], true);

    let again = suite.get(&link_path(&href)).await?;
    assert_eq!(again.status(), 303);
    let refused = location(&again);
    assert_eq!(fragment_param(&refused, "error").as_deref(), Some("access_denied"));
    assert_eq!(fragment_param(&refused, "error_code").as_deref(), Some("otp_expired"));
    assert_eq!(
        fragment_param(&refused, "error_description").as_deref(),
        Some("Email link is invalid or has expired")
    );
    suite.shutdown().await;
    Ok(())
}

/// §10 item 5: a link sent 48 hours ago has expired.
#[tokio::test]
async fn an_expired_link_redirects_with_otp_expired() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let address = email();
    let request = sign_up_unconfirmed(&suite, &address).await?;
    sqlx::query("UPDATE users SET confirmation_sent_at = now() - interval '48 hours' WHERE email = $1")
        .bind(&address)
        .execute(&suite.db)
        .await?;
    let response = suite.get(&link_path(&request.confirmation_url)).await?;
    assert_eq!(response.status(), 303);
    let target = location(&response);
    assert_eq!(fragment_param(&target, "error_code").as_deref(), Some("otp_expired"));
    assert_eq!(fragment_param(&target, "error").as_deref(), Some("access_denied"));
    suite.shutdown().await;
    Ok(())
}

/// §10 items 6–8: codes typed in, by email (type `email` and `signup`), the parameter rules, and
/// wrong codes.
#[tokio::test]
async fn codes_verify_by_post_with_gotrues_parameter_rules() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let address = email();
    let request = sign_up_unconfirmed(&suite, &address).await?;

    let missing_type = post_verify(&suite, json!({"token": "123456", "email": address})).await?;
    let body = assert_gotrue_error(missing_type, 400, "validation_failed").await;
    assert_eq!(body["msg"], "Verify requires a verification type");
    let no_address = post_verify(&suite, json!({"type": "signup", "token": "123456"})).await?;
    let body = assert_gotrue_error(no_address, 400, "validation_failed").await;
    assert_eq!(
        body["msg"],
        "Only an email address or phone number should be provided on verify"
    );
    let both = post_verify(&suite, json!({"type": "signup", "token": "1", "token_hash": "x"})).await?;
    let body = assert_gotrue_error(both, 400, "validation_failed").await;
    assert_eq!(body["msg"], "Verify requires either a token or a token hash");
    let wrong = post_verify(&suite, json!({"type": "signup", "token": "000000", "email": address})).await?;
    let body = assert_gotrue_error(wrong, 403, "otp_expired").await;
    assert_eq!(body["msg"], "Token has expired or is invalid");

    // The email type accepts the confirmation code; the address's casing does not matter.
    let response = post_verify(
        &suite,
        json!({"type": "email", "token": request.token, "email": address.to_uppercase()}),
    )
    .await?;
    assert_eq!(response.status(), 200, "{}", response.text().await?);
    let session: Value = response.json().await?;
    assert!(session["user"]["email_confirmed_at"].is_string());
    assert_eq!(session["user"]["app_metadata"]["providers"], json!(["email"]));
    assert_eq!(
        claims(session["access_token"].as_str().unwrap())["amr"][0]["method"],
        "otp"
    );

    let reused = post_verify(
        &suite,
        json!({"type": "email", "token": request.token, "email": address}),
    )
    .await?;
    assert_gotrue_error(reused, 403, "otp_expired").await;
    suite.shutdown().await;
    Ok(())
}

/// Two requests racing with one code: one session, one refusal.
#[tokio::test]
async fn a_code_verified_twice_at_once_signs_in_once() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let address = email();
    let request = sign_up_unconfirmed(&suite, &address).await?;
    let body = json!({"type": "signup", "token_hash": request.token_hash});
    let (a, b) = tokio::join!(post_verify(&suite, body.clone()), post_verify(&suite, body.clone()));
    let mut statuses = vec![a?.status().as_u16(), b?.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, vec![200, 403]);
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(sessions, 1);
    suite.shutdown().await;
    Ok(())
}

/// §10 item 10: a banned user's link redirects with `user_banned`; the code is refused with 403.
#[tokio::test]
async fn banned_users_cannot_verify() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let address = email();
    let request = sign_up_unconfirmed(&suite, &address).await?;
    sqlx::query("UPDATE users SET banned_until = now() + interval '1 day' WHERE email = $1")
        .bind(&address)
        .execute(&suite.db)
        .await?;
    let response = suite.get(&link_path(&request.confirmation_url)).await?;
    assert_eq!(response.status(), 303);
    let target = location(&response);
    assert_eq!(fragment_param(&target, "error_code").as_deref(), Some("user_banned"));
    assert_eq!(fragment_param(&target, "error").as_deref(), Some("access_denied"));
    let post = post_verify(
        &suite,
        json!({"type": "signup", "token": request.token, "email": address}),
    )
    .await?;
    assert_gotrue_error(post, 403, "user_banned").await;
    suite.shutdown().await;
    Ok(())
}

/// §10 item 27, and the recovery session: `/recover` is limited per user, silent for unknown
/// addresses, and its code starts a session that may set a password without the old one.
#[tokio::test]
async fn recovery_is_rate_limited_silent_for_strangers_and_signs_in() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_CURRENT_PASSWORD", "true")
        .start()
        .await?;
    let address = email();
    sign_up(&suite, &address).await?;

    let first = suite.post_json("/recover", &json!({"email": address})).await?;
    assert_eq!(first.status(), 200);
    assert_eq!(first.json::<Value>().await?, json!({}));
    let sent_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT recovery_sent_at FROM users WHERE email = $1")
            .bind(&address)
            .fetch_one(&suite.db)
            .await?;
    assert!((chrono::Utc::now() - sent_at).num_seconds().abs() < 5);

    let second = suite.post_json("/recover", &json!({"email": address})).await?;
    let body = assert_gotrue_error(second, 429, "over_email_send_rate_limit").await;
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .starts_with("For security purposes, you can only request this after")
    );
    let unchanged: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT recovery_sent_at FROM users WHERE email = $1")
            .bind(&address)
            .fetch_one(&suite.db)
            .await?;
    assert_eq!(unchanged, sent_at);

    let stranger = suite.post_json("/recover", &json!({"email": email()})).await?;
    assert_eq!(stranger.status(), 200);
    assert_eq!(stranger.json::<Value>().await?, json!({}));

    let mail = suite.smtp.next().await.expect("the recovery email");
    assert_eq!(mail.header("Subject").as_deref(), Some("Reset your password"));
    let request = last_email_request(&suite, &address).await?;
    assert!(request.confirmation_url.contains("type=recovery"));
    let response = post_verify(&suite, json!({"type": "recovery", "token_hash": request.token_hash})).await?;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await?;
    let update = put_user(&suite, &bearer(&session), &json!({"password": "a-brand-new-password"})).await?;
    assert_eq!(update.status(), 200, "{}", update.text().await?);
    suite.shutdown().await;
    Ok(())
}

/// §10 items 24–26: `/otp` and `/magiclink` rules; an unconfirmed user gets the confirmation
/// again, a confirmed one a magic link that signs in.
#[tokio::test]
async fn otp_and_magic_links_follow_gotrue() -> anyhow::Result<()> {
    let suite = Suite::builder().env("GOTRUE_SMTP_MAX_FREQUENCY", "0s").start().await?;

    let unknown = suite
        .post_json("/otp", &json!({"email": email(), "create_user": false}))
        .await?;
    assert_eq!(unknown.status(), 422);
    assert_eq!(
        unknown.json::<Value>().await?,
        json!({"code": 422, "error_code": "otp_disabled", "msg": "Signups not allowed for otp"})
    );
    let both = suite
        .post_json("/otp", &json!({"email": email(), "phone": "15551234567"}))
        .await?;
    let body = assert_gotrue_error(both, 400, "validation_failed").await;
    assert_eq!(body["msg"], "Only an email address or phone number should be provided");
    let half_pkce = suite
        .post_json("/otp", &json!({"email": email(), "code_challenge": s256(VERIFIER)}))
        .await?;
    let body = assert_gotrue_error(half_pkce, 400, "validation_failed").await;
    assert_eq!(
        body["msg"],
        "PKCE flow requires code_challenge_method and code_challenge"
    );

    // A new address is signed up; asking again re-sends the confirmation, never a recovery code.
    let address = email();
    for _ in 0..2 {
        let response = suite.post_json("/otp", &json!({"email": address})).await?;
        assert_eq!(response.status(), 200, "{}", response.text().await?);
    }
    let requests = email_requests(&suite, &address).await?;
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.confirmation_url.contains("type=signup")));
    let recovery_token: Option<String> = sqlx::query_scalar("SELECT recovery_token FROM users WHERE email = $1")
        .bind(&address)
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(recovery_token.as_deref(), Some(""));

    // Confirm with the latest code, then a magic link signs in.
    let latest = requests.last().unwrap();
    let confirmed = post_verify(
        &suite,
        json!({"type": "email", "token": latest.token, "email": address}),
    )
    .await?;
    assert_eq!(confirmed.status(), 200);
    let response = suite.post_json("/magiclink", &json!({"email": address})).await?;
    assert_eq!(response.status(), 200);
    let link = last_email_request(&suite, &address).await?;
    assert!(link.confirmation_url.contains("type=magiclink"));
    let response = suite.get(&link_path(&link.confirmation_url)).await?;
    assert_eq!(response.status(), 303);
    let target = location(&response);
    assert_eq!(fragment_param(&target, "type").as_deref(), Some("magiclink"));
    assert!(fragment_param(&target, "access_token").is_some());
    suite.shutdown().await;
    Ok(())
}

/// §10 items 20–21: a magic link in a PKCE flow yields `?code=`, which the verifier trades once for
/// a session; a wrong verifier and an unknown code are refused as GoTrue refuses them.
#[tokio::test]
async fn pkce_magic_link_trades_its_code_once() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let address = email();
    sign_up(&suite, &address).await?;
    let response = suite
        .post_json(
            "/otp",
            &json!({"email": address, "code_challenge": s256(VERIFIER), "code_challenge_method": "s256"}),
        )
        .await?;
    assert_eq!(response.status(), 200, "{}", response.text().await?);
    let request = last_email_request(&suite, &address).await?;
    assert!(request.token_hash.starts_with("pkce_"));

    let response = suite.get(&link_path(&request.confirmation_url)).await?;
    assert_eq!(response.status(), 303);
    let target = location(&response);
    let code = query_param(&target, "code").expect("?code= in the redirect");
    assert!(target.fragment().is_none());

    let unknown = suite
        .post_json(
            "/token?grant_type=pkce",
            &json!({"auth_code": uuid::Uuid::new_v4().to_string(), "code_verifier": VERIFIER}),
        )
        .await?;
    assert_gotrue_error(unknown, 404, "flow_state_not_found").await;
    let wrong = suite
        .post_json(
            "/token?grant_type=pkce",
            &json!({"auth_code": code, "code_verifier": "the-wrong-verifier-the-wrong-verifier-0123"}),
        )
        .await?;
    assert_gotrue_error(wrong, 400, "bad_code_verifier").await;
    let missing = suite
        .post_json("/token?grant_type=pkce", &json!({"auth_code": code}))
        .await?;
    assert_gotrue_error(missing, 400, "validation_failed").await;

    let exchanged = suite
        .post_json(
            "/token?grant_type=pkce",
            &json!({"auth_code": code, "code_verifier": VERIFIER}),
        )
        .await?;
    assert_eq!(exchanged.status(), 200);
    let session: Value = exchanged.json().await?;
    assert_eq!(
        claims(session["access_token"].as_str().unwrap())["amr"][0]["method"],
        "magiclink"
    );
    let again = suite
        .post_json(
            "/token?grant_type=pkce",
            &json!({"auth_code": code, "code_verifier": VERIFIER}),
        )
        .await?;
    assert_gotrue_error(again, 404, "flow_state_not_found").await;
    suite.shutdown().await;
    Ok(())
}

/// A PKCE sign-up: the confirmation link yields a code for an `email/signup` session.
#[tokio::test]
async fn pkce_signup_confirmation_yields_a_code() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let address = email();
    let response = suite
        .post_json(
            "/signup?redirect_to=http://localhost:3000/welcome",
            &json!({"email": address, "password": PASSWORD,
                    "code_challenge": VERIFIER, "code_challenge_method": "plain"}),
        )
        .await?;
    assert_eq!(response.status(), 200);
    let request = last_email_request(&suite, &address).await?;
    assert_eq!(request.redirect_to, "http://localhost:3000/welcome");
    let response = suite.get(&link_path(&request.confirmation_url)).await?;
    let target = location(&response);
    assert_eq!(target.path(), "/welcome");
    let code = query_param(&target, "code").expect("a code");
    let session: Value = suite
        .post_json(
            "/token?grant_type=pkce",
            &json!({"auth_code": code, "code_verifier": VERIFIER}),
        )
        .await?
        .json()
        .await?;
    assert_eq!(
        claims(session["access_token"].as_str().unwrap())["amr"][0]["method"],
        "email/signup"
    );
    assert!(session["user"]["email_confirmed_at"].is_string());
    suite.shutdown().await;
    Ok(())
}

/// The auth code of a PKCE link is asked of the token service before the confirmation's
/// transaction opens: a link whose flow state is gone confirms nothing and stays usable, and once a
/// flow exists again the same link confirms and yields its code.
#[tokio::test]
async fn pkce_link_without_a_flow_state_confirms_nothing() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let address = email();
    let response = suite
        .post_json(
            "/signup",
            &json!({"email": address, "password": PASSWORD,
                    "code_challenge": VERIFIER, "code_challenge_method": "plain"}),
        )
        .await?;
    assert_eq!(response.status(), 200);
    let request = last_email_request(&suite, &address).await?;
    let saved: Vec<(String, String)> = sqlx::query_as(
        "DELETE FROM flow_state WHERE user_id = (SELECT id FROM users WHERE email = $1) \
         RETURNING code_challenge, authentication_method",
    )
    .bind(&address)
    .fetch_all(&suite.db)
    .await?;
    assert_eq!(saved.len(), 1, "the sign-up started one flow");

    let response = suite.get(&link_path(&request.confirmation_url)).await?;
    assert!(
        query_param(&location(&response), "code").is_none(),
        "no code without a flow"
    );
    let (confirmed, tokens): (bool, i64) = sqlx::query_as(
        "SELECT u.email_confirmed_at IS NOT NULL, (SELECT count(*) FROM one_time_tokens t WHERE t.user_id = u.id) \
         FROM users u WHERE u.email = $1",
    )
    .bind(&address)
    .fetch_one(&suite.db)
    .await?;
    assert!(!confirmed, "nothing confirmed");
    assert_eq!(tokens, 1, "the link is not spent");

    // The same flow back (as a retry of the sign-up would start it): the link now works.
    sqlx::query(
        "INSERT INTO flow_state (id, user_id, auth_code, code_challenge_method, code_challenge, provider_type, \
           authentication_method, created_at, updated_at) \
         SELECT gen_random_uuid(), id, gen_random_uuid()::text, 'plain', $2, 'email', $3, now(), now() \
         FROM users WHERE email = $1",
    )
    .bind(&address)
    .bind(&saved[0].0)
    .bind(&saved[0].1)
    .execute(&suite.db)
    .await?;
    let response = suite.get(&link_path(&request.confirmation_url)).await?;
    assert!(query_param(&location(&response), "code").is_some());
    suite.shutdown().await;
    Ok(())
}

/// §8 and §10 item 11 through the gateway: a target outside the allow list falls back to the site.
#[tokio::test]
async fn redirect_targets_outside_the_allow_list_fall_back_to_the_site() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_URI_ALLOW_LIST", "https://*.example.org/**,com.example.app://**")
        .start()
        .await?;
    for (asked, expected) in [
        ("https://app.example.org/cb/done", "https://app.example.org/cb/done"),
        ("com.example.app://sign-in/v2", "com.example.app://sign-in/v2"),
        ("https://evil.example.com/", "http://localhost:3000"),
        ("https://a.b.example.org/", "http://localhost:3000"),
    ] {
        let address = email();
        let response = suite
            .request(
                reqwest::Method::POST,
                &format!(
                    "/signup?{}",
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("redirect_to", asked)
                        .finish()
                ),
            )
            .json(&json!({"email": address, "password": PASSWORD}))
            .send()
            .await?;
        assert_eq!(response.status(), 200);
        let request = last_email_request(&suite, &address).await?;
        assert_eq!(request.redirect_to, expected, "for {asked}");
        let response = suite.get(&link_path(&request.confirmation_url)).await?;
        let target = response.headers()["location"].to_str()?.to_string();
        assert!(target.starts_with(&format!("{expected}#")), "{target} for {asked}");
    }
    suite.shutdown().await;
    Ok(())
}

/// §10 item 28: `/resend` rules, and a resend regenerates the code.
#[tokio::test]
async fn resend_follows_gotrue() -> anyhow::Result<()> {
    let suite = Suite::builder().env("GOTRUE_SMTP_MAX_FREQUENCY", "0s").start().await?;
    let invalid = suite
        .post_json("/resend", &json!({"type": "magiclink", "email": email()}))
        .await?;
    let body = assert_gotrue_error(invalid, 400, "validation_failed").await;
    assert_eq!(
        body["msg"],
        "Missing one of these types: signup, email_change, sms, phone_change"
    );
    let sms_by_email = suite
        .post_json("/resend", &json!({"type": "sms", "email": email()}))
        .await?;
    let body = assert_gotrue_error(sms_by_email, 400, "validation_failed").await;
    assert_eq!(body["msg"], "Type provided requires a phone number");
    let both = suite
        .post_json(
            "/resend",
            &json!({"type": "signup", "email": email(), "phone": "15551234567"}),
        )
        .await?;
    let body = assert_gotrue_error(both, 400, "validation_failed").await;
    assert_eq!(body["msg"], "Only an email address or phone number should be provided.");

    let address = email();
    let first = sign_up_unconfirmed(&suite, &address).await?;
    let resent = suite
        .post_json("/resend", &json!({"type": "signup", "email": address}))
        .await?;
    assert_eq!(resent.status(), 200);
    assert_eq!(resent.json::<Value>().await?, json!({}));
    let second = last_email_request(&suite, &address).await?;
    assert_ne!(first.token_hash, second.token_hash);
    let old = post_verify(&suite, json!({"type": "signup", "token_hash": first.token_hash})).await?;
    assert_gotrue_error(old, 403, "otp_expired").await;
    let new = post_verify(&suite, json!({"type": "signup", "token_hash": second.token_hash})).await?;
    assert_eq!(new.status(), 200);
    suite.shutdown().await;
    Ok(())
}

/// §10 item 9: secure email change needs both links; the first answers with GoTrue's message,
/// the second signs in with the new address, and a spent link is refused.
#[tokio::test]
async fn secure_email_change_needs_both_links() -> anyhow::Result<()> {
    let suite = Suite::builder().env("GOTRUE_SMTP_MAX_FREQUENCY", "0s").start().await?;
    let old_address = email();
    let request = sign_up_unconfirmed(&suite, &old_address).await?;
    let session: Value = post_verify(&suite, json!({"type": "signup", "token_hash": request.token_hash}))
        .await?
        .json()
        .await?;
    let new_address = email();
    let update = put_user(&suite, &bearer(&session), &json!({"email": new_address})).await?;
    assert_eq!(update.status(), 200);
    let to_new = last_email_request(&suite, &new_address).await?;
    let to_old = last_email_request(&suite, &old_address).await?;
    assert!(to_old.confirmation_url.contains("type=email_change"));

    let first = post_verify(&suite, json!({"type": "email_change", "token_hash": to_old.token_hash})).await?;
    assert_eq!(first.status(), 200);
    assert_eq!(
        first.json::<Value>().await?,
        json!({"msg": "Confirmation link accepted. Please proceed to confirm link sent to the other email",
               "code": "200"})
    );
    let reused = post_verify(&suite, json!({"type": "email_change", "token_hash": to_old.token_hash})).await?;
    assert_gotrue_error(reused, 403, "otp_expired").await;
    let second = post_verify(&suite, json!({"type": "email_change", "token_hash": to_new.token_hash})).await?;
    assert_eq!(second.status(), 200);
    let session: Value = second.json().await?;
    assert_eq!(session["user"]["email"], new_address);
    assert_eq!(session["user"]["identities"][0]["identity_data"]["email"], new_address);
    suite.shutdown().await;
    Ok(())
}

/// §10 item 36: an anonymous user becomes permanent by confirming an email, keeping its id.
#[tokio::test]
async fn an_anonymous_user_becomes_permanent_through_email_change() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "true")
        .start()
        .await?;
    let anonymous: Value = suite.post_json("/signup", &json!({})).await?.json().await?;
    let address = email();
    let update = put_user(&suite, &bearer(&anonymous), &json!({"email": address})).await?;
    assert_eq!(update.status(), 200, "{}", update.text().await?);
    let request = last_email_request(&suite, &address).await?;
    let response = post_verify(
        &suite,
        json!({"type": "email_change", "token_hash": request.token_hash}),
    )
    .await?;
    assert_eq!(response.status(), 200, "{}", response.text().await?);
    let session: Value = response.json().await?;
    let user = &session["user"];
    assert_eq!(user["id"], anonymous["user"]["id"]);
    assert_eq!(user["is_anonymous"], false);
    assert_eq!(user["email"], address);
    assert!(user["email_confirmed_at"].is_string());
    assert_eq!(user["identities"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        user["app_metadata"],
        json!({"provider": "email", "providers": ["email"]})
    );
    suite.shutdown().await;
    Ok(())
}

/// §10 item 8 (sms) and test codes: a phone sign-up is confirmed by the SMS code; a number with a
/// configured test code signs in with it, and nothing is queued for it.
#[tokio::test]
async fn phone_codes_and_test_codes_verify() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_EXTERNAL_PHONE_ENABLED", "true")
        .env("GOTRUE_SMS_TEST_OTP", "+1 555 000 1111:424242")
        .start()
        .await?;
    let phone = "15557654321";
    let response = suite
        .post_json("/signup", &json!({"phone": format!("+{phone}"), "password": PASSWORD}))
        .await?;
    assert_eq!(response.status(), 200);
    let sms = last_sms_request(&suite, phone).await?;
    // Delivered through Twilio's API (the fake provider), with GoTrue's default template.
    let delivered = suite.sms.next().await.expect("the SMS at the provider");
    assert_eq!(delivered.path, "/2010-04-01/Accounts/AC123/Messages.json");
    assert_eq!(
        delivered.form_field("To").as_deref(),
        Some(format!("+{phone}").as_str())
    );
    assert_eq!(delivered.form_field("From").as_deref(), Some("MG123"));
    assert_eq!(delivered.form_field("Body"), Some(format!("Your code is {}", sms.otp)));
    assert!(delivered.authorization.is_some_and(|a| a.starts_with("Basic ")));
    let wrong = post_verify(&suite, json!({"type": "sms", "phone": phone, "token": "000000"})).await?;
    assert_gotrue_error(wrong, 403, "otp_expired").await;
    let response = post_verify(&suite, json!({"type": "sms", "phone": phone, "token": sms.otp})).await?;
    assert_eq!(response.status(), 200, "{}", response.text().await?);
    let session: Value = response.json().await?;
    assert!(session["user"]["phone_confirmed_at"].is_string());

    let queued_before: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_messages")
        .fetch_one(&suite.db)
        .await?;
    let test_phone = "15550001111";
    let first = suite.post_json("/otp", &json!({"phone": test_phone})).await?;
    assert_eq!(first.status(), 200, "{}", first.text().await?);
    let verified = post_verify(&suite, json!({"type": "sms", "phone": test_phone, "token": "424242"})).await?;
    assert_eq!(verified.status(), 200, "{}", verified.text().await?);
    let again = suite.post_json("/otp", &json!({"phone": test_phone})).await;
    let again = again?;
    assert_eq!(again.status(), 429, "one code per minute, test codes included");
    let queued_after: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_messages")
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(queued_after, queued_before, "test codes are never sent");
    suite.shutdown().await;
    Ok(())
}

/// §10 item 32: `GET /reauthenticate` sends a code that `PUT /user {password, nonce}` accepts once.
#[tokio::test]
async fn reauthentication_codes_unlock_a_password_change() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION", "true")
        .start()
        .await?;
    let address = email();
    let session = sign_up(&suite, &address).await?;
    // Sessions younger than a day need no code; this one is made older.
    sqlx::query("UPDATE sessions SET created_at = now() - interval '2 days'")
        .execute(&suite.db)
        .await?;
    let without = put_user(&suite, &bearer(&session), &json!({"password": "another-password-1"})).await?;
    assert_gotrue_error(without, 400, "reauthentication_needed").await;

    let response = suite
        .request(reqwest::Method::GET, "/reauthenticate")
        .header("Authorization", bearer(&session))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await?, json!({}));
    let mail = suite.smtp.next().await.expect("the reauthentication email");
    let request = last_email_request(&suite, &address).await?;
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some(format!("{} is your verification code", request.token).as_str())
    );
    let wrong = put_user(
        &suite,
        &bearer(&session),
        &json!({"password": "another-password-1", "nonce": "000000"}),
    )
    .await?;
    assert_gotrue_error(wrong, 422, "reauthentication_not_valid").await;
    let right = put_user(
        &suite,
        &bearer(&session),
        &json!({"password": "another-password-1", "nonce": request.token}),
    )
    .await?;
    assert_eq!(right.status(), 200, "{}", right.text().await?);
    suite.shutdown().await;
    Ok(())
}

/// Each provider's API as GoTrue calls it, a WhatsApp code, a provider outage retried until the
/// message goes through once, and a provider without credentials refused in the request as GoTrue
/// refuses it.
#[tokio::test]
async fn sms_providers_are_called_as_gotrue_calls_them() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_EXTERNAL_PHONE_ENABLED", "true")
        .env("GOTRUE_SMS_TEMPLATE", "Code: {{ .Code }}")
        .env("GOTRUE_SMS_MAX_FREQUENCY", "0s")
        .start()
        .await?;
    let phone = "15551230001";
    let whatsapp = suite
        .post_json("/otp", &json!({"phone": phone, "channel": "whatsapp"}))
        .await?;
    assert_eq!(whatsapp.status(), 200, "{}", whatsapp.text().await?);
    let sent = suite.sms.next().await.expect("the WhatsApp message");
    assert_eq!(sent.form_field("To").as_deref(), Some("whatsapp:+15551230001"));
    assert_eq!(sent.form_field("Channel").as_deref(), Some("whatsapp"));
    let otp = last_sms_request(&suite, phone).await?.otp;
    assert_eq!(sent.form_field("Body"), Some(format!("Code: {otp}")));

    // An outage at the provider: the request succeeded already; the notifier retries.
    suite.sms.respond_with(503);
    let response = suite
        .post_json("/resend", &json!({"type": "sms", "phone": phone}))
        .await?;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    let message_id = body["message_id"].as_str().expect("a message id").to_string();
    assert!(uuid::Uuid::parse_str(&message_id).is_ok());
    let refused = suite.sms.next().await.expect("the first attempt");
    assert_eq!(refused.form_field("To").as_deref(), Some("+15551230001"));
    suite.sms.respond_with(200);
    let accepted = suite.sms.next().await.expect("the retry");
    assert_eq!(accepted.form_field("Body"), refused.form_field("Body"));
    auth_testkit::retry_until(|| async {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM notification_deliveries WHERE message_id = $1::uuid")
                .bind(&message_id)
                .fetch_optional(&suite.db)
                .await
                .ok()
                .flatten();
        status.as_deref() == Some("sent")
    })
    .await?;
    assert!(
        suite.sms.next_within(std::time::Duration::from_secs(1)).await.is_none(),
        "sent once"
    );
    suite.shutdown().await;

    for (provider, env, path, field, expected) in [
        (
            "messagebird",
            vec![
                ("GOTRUE_SMS_MESSAGEBIRD_ACCESS_KEY", "mb-key"),
                ("GOTRUE_SMS_MESSAGEBIRD_ORIGINATOR", "Auth"),
            ],
            "/messages",
            "recipients",
            "15551230002",
        ),
        (
            "textlocal",
            vec![
                ("GOTRUE_SMS_TEXTLOCAL_API_KEY", "tl-key"),
                ("GOTRUE_SMS_TEXTLOCAL_SENDER", "Auth"),
            ],
            "/send",
            "numbers",
            "15551230002",
        ),
        (
            "vonage",
            vec![
                ("GOTRUE_SMS_VONAGE_API_KEY", "vk"),
                ("GOTRUE_SMS_VONAGE_API_SECRET", "vs"),
                ("GOTRUE_SMS_VONAGE_FROM", "Auth"),
            ],
            "/sms/json",
            "to",
            "15551230002",
        ),
    ] {
        let mut builder = Suite::builder()
            .env("GOTRUE_EXTERNAL_PHONE_ENABLED", "true")
            .env("GOTRUE_SMS_PROVIDER", provider);
        for (name, value) in &env {
            builder = builder.env(name, value);
        }
        let suite = builder.start().await?;
        let response = suite.post_json("/otp", &json!({"phone": "+1 555 123 0002"})).await?;
        assert_eq!(response.status(), 200, "{provider}: {}", response.text().await?);
        let sent = suite.sms.next().await.expect("the SMS");
        assert_eq!(sent.path, path, "{provider}");
        assert_eq!(sent.form_field(field).as_deref(), Some(expected), "{provider}");
        suite.shutdown().await;
    }

    let unconfigured = Suite::builder()
        .env("GOTRUE_EXTERNAL_PHONE_ENABLED", "true")
        .env("GOTRUE_SMS_PROVIDER", "vonage")
        .start()
        .await?;
    let response = unconfigured.post_json("/otp", &json!({"phone": "15551230003"})).await?;
    let body = assert_gotrue_error(response, 500, "unexpected_failure").await;
    assert_eq!(body["msg"], "Unable to get SMS provider");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&unconfigured.db)
        .await?;
    assert_eq!(users, 0, "nothing half-written");
    unconfigured.shutdown().await;
    Ok(())
}

/// `GOTRUE_RATE_LIMIT_EMAIL_SENT` / `_SMS_SENT` are one budget for the project, however many
/// replicas serve it (GoTrue's are per process): two suites on one database share it.
#[tokio::test]
async fn send_budgets_hold_across_replicas() -> anyhow::Result<()> {
    let first = Suite::builder()
        .env("GOTRUE_RATE_LIMIT_EMAIL_SENT", "2")
        .env("GOTRUE_RATE_LIMIT_SMS_SENT", "1/1h")
        .env("GOTRUE_EXTERNAL_PHONE_ENABLED", "true")
        .start()
        .await?;
    let second = Suite::builder()
        .share_database_with(&first)
        .env("GOTRUE_RATE_LIMIT_EMAIL_SENT", "2")
        .env("GOTRUE_RATE_LIMIT_SMS_SENT", "1/1h")
        .env("GOTRUE_EXTERNAL_PHONE_ENABLED", "true")
        .start()
        .await?;
    for suite in [&first, &second] {
        let response = suite
            .post_json("/signup", &json!({"email": email(), "password": PASSWORD}))
            .await?;
        assert_eq!(response.status(), 200);
    }
    let address = email();
    let third = first
        .post_json("/signup", &json!({"email": address, "password": PASSWORD}))
        .await?;
    let body = assert_gotrue_error(third, 429, "over_email_send_rate_limit").await;
    assert_eq!(body["msg"], "email rate limit exceeded");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE email = $1")
        .bind(&address)
        .fetch_one(&first.db)
        .await?;
    assert_eq!(stored, 0, "a refused sign-up leaves nothing behind");

    let sms = second.post_json("/otp", &json!({"phone": "15551239001"})).await?;
    assert_eq!(sms.status(), 200, "{}", sms.text().await?);
    let refused = first.post_json("/otp", &json!({"phone": "15551239002"})).await?;
    let body = assert_gotrue_error(refused, 429, "over_sms_send_rate_limit").await;
    assert_eq!(body["msg"], "SMS rate limit exceeded");
    second.shutdown().await;
    first.shutdown().await;
    Ok(())
}
