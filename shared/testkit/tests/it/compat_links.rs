//! Links and emails as GoTrue writes them (site URL as configured, `redirect_to` encoding, hostile
//! redirect targets), the answers of switched-off features, and account-change notifications.

use auth_proto::notification::v1::EmailKind;
use auth_testkit::{Suite, assert_gotrue_error};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// Issue 13 items 1 and 4: links carry `GOTRUE_SITE_URL` exactly as configured, and `redirect_to`
/// verbatim unless it holds `&`, `=` or `#` (GoTrue's encodeRedirectURL), in every email and in
/// `action_link`.
#[tokio::test]
async fn links_carry_redirects_as_gotrue_writes_them() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_URI_ALLOW_LIST", "http://localhost:3000/**")
        .env("GOTRUE_SMTP_MAX_FREQUENCY", "0s")
        .start()
        .await?;
    let cases = [
        (None, "redirect_to=http://localhost:3000"),
        (
            Some("http://localhost:3000/welcome"),
            "redirect_to=http://localhost:3000/welcome",
        ),
        (
            Some("http://localhost:3000/cb?a=1&b=2"),
            "redirect_to=http%3A%2F%2Flocalhost%3A3000%2Fcb%3Fa%3D1%26b%3D2",
        ),
    ];
    for (redirect_to, expected) in cases {
        // An email link (sign-up confirmation) ...
        let address = email();
        let path = redirect_to.map_or("/signup".to_string(), |r| {
            format!("/signup?redirect_to={}", urlencode(r))
        });
        let response = suite
            .post_json(&path, &json!({"email": address, "password": PASSWORD}))
            .await?;
        assert_eq!(response.status(), 200);
        let request = last_email_request(&suite, &address).await?;
        assert!(
            request.confirmation_url.ends_with(expected),
            "{} vs {expected}",
            request.confirmation_url
        );
        assert_eq!(request.redirect_to, redirect_to.unwrap_or("http://localhost:3000"));
        assert_eq!(request.site_url, "http://localhost:3000");
        // ... and an action link.
        let mut body = json!({"type": "magiclink", "email": address});
        if let Some(redirect_to) = redirect_to {
            body["redirect_to"] = json!(redirect_to);
        }
        let link = admin_ok(&suite, Method::POST, "/admin/generate_link", Some(body)).await?;
        let action_link = link["action_link"].as_str().unwrap_or_default();
        assert!(action_link.ends_with(expected), "{action_link} vs {expected}");
        assert_eq!(link["redirect_to"], redirect_to.unwrap_or("http://localhost:3000"));
    }

    // Issue 13 security item 6: targets that are not plain URLs never reach a link or a Location.
    for hostile in [
        "http://localhost:3000/a\r\nSet-Cookie: x=1",
        "http://localhost:3000\\@evil.com",
        "http://localhost:3000@evil.com/",
        "http://user:pass@localhost:3000/",
        // (a NUL character is refused before any redirect is considered: see the NUL test)
    ] {
        let link = admin_ok(
            &suite,
            Method::POST,
            "/admin/generate_link",
            Some(json!({"type": "magiclink", "email": email(), "redirect_to": hostile})),
        )
        .await?;
        assert_eq!(link["redirect_to"], "http://localhost:3000", "{hostile:?}");
        let response = suite
            .get(&format!(
                "/verify?type=magiclink&token=nonexistent&redirect_to={}",
                urlencode(hostile)
            ))
            .await?;
        assert_eq!(response.status(), 303, "{hostile:?}");
        let location = response.headers()["location"].to_str()?.to_string();
        assert!(
            location.starts_with("http://localhost:3000#"),
            "{hostile:?} went to {location}"
        );
    }
    suite.shutdown().await;
    Ok(())
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Issue 13 item 5: switched-off features answer GoTrue's errors.
#[tokio::test]
async fn switched_off_features_answer_gotrues_errors() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    for (method, path) in [
        (Method::POST, "/sso"),
        (Method::GET, "/sso/saml/metadata"),
        (Method::POST, "/sso/saml/acs"),
    ] {
        let response = suite.request(method, path).json(&json!({})).send().await?;
        let body = assert_gotrue_error(response, 404, "saml_provider_disabled").await;
        assert_eq!(body["msg"], "SAML 2.0 is disabled");
    }
    let response = suite
        .post_json("/token?grant_type=web3", &json!({"chain": "solana"}))
        .await?;
    let body = assert_gotrue_error(response, 422, "web3_provider_disabled").await;
    assert_eq!(body["msg"], "Web3 provider is disabled");

    let response = suite
        .post_json(
            "/token?grant_type=id_token",
            &json!({"provider": "google", "id_token": "x.y.z"}),
        )
        .await?;
    let body = assert_gotrue_error(response, 400, "provider_disabled").await;
    assert_eq!(
        body["msg"],
        "Provider (issuer \"https://accounts.google.com\") is not enabled"
    );
    let response = suite
        .post_json("/token?grant_type=id_token", &json!({"provider": "google"}))
        .await?;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await?,
        json!({"error": "invalid request", "error_description": "id_token required"})
    );

    // Manual linking and MFA authenticate first.
    for (method, path) in [
        (Method::GET, "/user/identities/authorize?provider=github"),
        (Method::DELETE, "/user/identities/7f0e9e6e-0d9e-4d4e-9d7e-6c1f1f1f1f1f"),
    ] {
        let response = suite.request(method.clone(), path).send().await?;
        assert_gotrue_error(response, 401, "no_authorization").await;
        let session = sign_up(&suite, &email()).await?;
        let response = suite
            .request(method, path)
            .header("authorization", bearer(&session))
            .send()
            .await?;
        let body = assert_gotrue_error(response, 404, "manual_linking_disabled").await;
        assert_eq!(body["msg"], "Manual linking is disabled");
    }
    for (method, path) in [
        (Method::POST, "/factors"),
        (Method::POST, "/factors/abc/verify"),
        (Method::DELETE, "/factors/abc"),
    ] {
        let response = suite.request(method, path).json(&json!({})).send().await?;
        assert_gotrue_error(response, 401, "no_authorization").await;
    }
    suite.shutdown().await;
    Ok(())
}

/// Issue 13 item 7: account-change notifications (password, email, phone), with GoTrue's subjects
/// and bodies, through the outbox to the SMTP server.
#[tokio::test]
async fn account_changes_are_notified_when_switched_on() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_MAILER_SECURE_EMAIL_CHANGE_ENABLED", "false")
        .env("GOTRUE_SMTP_MAX_FREQUENCY", "0s")
        .env("GOTRUE_EXTERNAL_PHONE_ENABLED", "true")
        .env("GOTRUE_MAILER_NOTIFICATIONS_PASSWORD_CHANGED_ENABLED", "true")
        .env("GOTRUE_MAILER_NOTIFICATIONS_EMAIL_CHANGED_ENABLED", "true")
        .env("GOTRUE_MAILER_NOTIFICATIONS_PHONE_CHANGED_ENABLED", "true")
        .env(
            "GOTRUE_MAILER_SUBJECTS_PHONE_CHANGED_NOTIFICATION",
            "Phone now {{ .Phone }}",
        )
        .start()
        .await?;
    let old_address = email();
    let session = sign_up(&suite, &old_address).await?;
    let authorization = bearer(&session);

    let response = put_user(&suite, &authorization, &json!({"password": "a-new-password-456"})).await?;
    assert_eq!(response.status(), 200);
    let notice = last_email_request(&suite, &old_address).await?;
    assert_eq!(notice.kind, EmailKind::PasswordChangedNotification as i32);
    assert_eq!(notice.confirmation_url, "", "a notification carries no link");
    let mail = suite
        .smtp
        .next()
        .await
        .expect("the password notification at the SMTP server");
    assert_eq!(mail.header("Subject").as_deref(), Some("Your password was changed"));
    assert!(
        mail.body()
            .contains("The password for your account was recently changed.")
    );

    let new_address = email();
    let response = put_user(&suite, &authorization, &json!({"email": new_address})).await?;
    assert_eq!(response.status(), 200);
    let change = last_email_request(&suite, &new_address).await?;
    let verified = post_verify(&suite, json!({"type": "email_change", "token_hash": change.token_hash})).await?;
    assert_eq!(verified.status(), 200, "{}", verified.text().await?);
    let notice = last_email_request(&suite, &old_address).await?;
    assert_eq!(notice.kind, EmailKind::EmailChangedNotification as i32);
    assert_eq!(
        (notice.old_email.as_str(), notice.email.as_str()),
        (old_address.as_str(), new_address.as_str())
    );

    // A phone change: the first number is set directly (no previous number, so no notice), the
    // second is verified by its SMS code and notified to the email address.
    let response = admin(
        &suite,
        Method::PUT,
        &format!("/admin/users/{}", user_id(&session)),
        Some(json!({"phone": "15550101010", "phone_confirm": true})),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let response = put_user(&suite, &authorization, &json!({"phone": "15550102020"})).await?;
    assert_eq!(response.status(), 200, "{}", response.text().await?);
    let otp = last_sms_request(&suite, "15550102020").await?.otp;
    let verified = post_verify(
        &suite,
        json!({"type": "phone_change", "phone": "15550102020", "token": otp}),
    )
    .await?;
    assert_eq!(verified.status(), 200, "{}", verified.text().await?);
    let notice = last_email_request(&suite, &new_address).await?;
    assert_eq!(notice.kind, EmailKind::PhoneChangedNotification as i32);
    assert_eq!(
        (notice.old_phone.as_str(), notice.phone.as_str()),
        ("15550101010", "15550102020")
    );
    let mut subjects = Vec::new();
    while let Some(mail) = suite.smtp.next_within(std::time::Duration::from_secs(10)).await {
        subjects.push(mail.header("Subject").unwrap_or_default());
        if subjects.last().is_some_and(|s| s == "Phone now 15550102020") {
            break;
        }
    }
    assert!(
        subjects.contains(&"Your email address was changed".to_string()),
        "{subjects:?}"
    );
    assert_eq!(
        subjects.last().map(String::as_str),
        Some("Phone now 15550102020"),
        "{subjects:?}"
    );

    // Switched off (the default): nothing is queued.
    let quiet = autoconfirm_suite().await?;
    let address = email();
    let session = sign_up(&quiet, &address).await?;
    put_user(&quiet, &bearer(&session), &json!({"password": "a-new-password-456"})).await?;
    assert!(email_requests(&quiet, &address).await?.is_empty());
    quiet.shutdown().await;
    suite.shutdown().await;
    Ok(())
}
