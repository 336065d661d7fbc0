//! `/health`, `/settings`, `/.well-known/jwks.json` and the error contract, through the gateway.

use auth_testkit::{Suite, assert_gotrue_error};
use serde_json::{Value, json};

/// GoTrue v2.196.0's `/settings.external` keys, in its order.
const EXTERNAL_KEYS: &[&str] = &[
    "anonymous_users",
    "apple",
    "azure",
    "bitbucket",
    "discord",
    "facebook",
    "snapchat",
    "figma",
    "fly",
    "github",
    "gitlab",
    "google",
    "keycloak",
    "kakao",
    "linkedin",
    "linkedin_oidc",
    "notion",
    "spotify",
    "slack",
    "slack_oidc",
    "workos",
    "twitch",
    "twitter",
    "email",
    "phone",
    "zoom",
];

#[tokio::test]
async fn health_is_gotrue_shaped() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let response = suite.get("/health").await?;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    assert_eq!(body.as_object().map(|o| o.len()), Some(3), "{body}");
    assert_eq!(body["name"], "GoTrue");
    assert_eq!(
        body["description"],
        "GoTrue is a user registration and authentication API"
    );
    assert!(body["version"].as_str().is_some_and(|v| !v.is_empty()));
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn settings_with_gotrue_defaults() -> anyhow::Result<()> {
    // The harness configures an SMS provider for the fake one; GoTrue's default is none.
    let suite = Suite::builder().env("GOTRUE_SMS_PROVIDER", "").start().await?;
    let response = suite.get("/settings").await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await?;
    let body: Value = serde_json::from_str(&text)?;

    let top: Vec<&str> = body.as_object().expect("object").keys().map(String::as_str).collect();
    let mut expected_top = vec![
        "disable_signup",
        "external",
        "mailer_autoconfirm",
        "passkeys_enabled",
        "phone_autoconfirm",
        "saml_enabled",
        "saml_private_key_next_configured",
        "sms_provider",
    ];
    expected_top.sort_unstable();
    let mut top_sorted = top.clone();
    top_sorted.sort_unstable();
    assert_eq!(top_sorted, expected_top);

    let external = body["external"].as_object().expect("external is an object");
    let keys: Vec<&str> = external.keys().map(String::as_str).collect();
    let mut expected = EXTERNAL_KEYS.to_vec();
    expected.sort_unstable();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected);
    // GoTrue's field order is kept on the wire
    assert!(
        text.starts_with(r#"{"external":{"anonymous_users":false,"apple":false"#),
        "{text}"
    );

    for key in EXTERNAL_KEYS {
        let expected = *key == "email";
        assert_eq!(external[*key], expected, "external.{key}");
    }
    assert_eq!(body["disable_signup"], false);
    assert_eq!(body["mailer_autoconfirm"], false);
    assert_eq!(body["phone_autoconfirm"], false);
    assert_eq!(body["sms_provider"], "");
    assert_eq!(body["saml_enabled"], false);
    assert_eq!(body["saml_private_key_next_configured"], false);
    assert_eq!(body["passkeys_enabled"], false);
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn settings_follow_the_configuration() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_DISABLE_SIGNUP", "true")
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_SMS_AUTOCONFIRM", "1")
        .env("GOTRUE_SMS_PROVIDER", "twilio")
        .env("GOTRUE_EXTERNAL_PHONE_ENABLED", "true")
        .env("GOTRUE_EXTERNAL_EMAIL_ENABLED", "false")
        .env("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "true")
        .env("GOTRUE_EXTERNAL_GITHUB_ENABLED", "true")
        .env("GOTRUE_EXTERNAL_LINKEDIN_OIDC_ENABLED", "true")
        // configurable, but GoTrue does not report it in /settings
        .env("GOTRUE_EXTERNAL_X_ENABLED", "true")
        .env("GOTRUE_SAML_ENABLED", "true")
        .env("GOTRUE_PASSKEY_ENABLED", "true")
        .start()
        .await?;
    let body: Value = suite.get("/settings").await?.json().await?;
    assert_eq!(body["disable_signup"], true);
    assert_eq!(body["mailer_autoconfirm"], true);
    assert_eq!(body["phone_autoconfirm"], true);
    assert_eq!(body["sms_provider"], "twilio");
    assert_eq!(body["saml_enabled"], true);
    assert_eq!(body["passkeys_enabled"], true);
    let external = &body["external"];
    assert_eq!(external["phone"], true);
    assert_eq!(external["email"], false);
    assert_eq!(external["anonymous_users"], true);
    assert_eq!(external["github"], true);
    assert_eq!(external["linkedin_oidc"], true);
    assert_eq!(external["google"], false);
    assert!(external.get("x").is_none());
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn jwks_publishes_only_public_halves_of_asymmetric_keys() -> anyhow::Result<()> {
    // HMAC only: nothing to publish
    let suite = Suite::start().await?;
    let response = suite.get("/.well-known/jwks.json").await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=600");
    assert_eq!(response.json::<Value>().await?, json!({ "keys": [] }));
    suite.shutdown().await;

    let keys = json!([
        { "kty": "EC", "kid": "ec-1", "alg": "ES256", "crv": "P-256", "key_ops": ["sign", "verify"],
          "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
          "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI" },
        { "kty": "oct", "kid": "hs-1", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ", "key_ops": ["verify"] },
    ]);
    let suite = Suite::builder()
        .env("GOTRUE_JWT_KEYS", &keys.to_string())
        .start()
        .await?;
    let body: Value = suite.get("/.well-known/jwks.json").await?.json().await?;
    let published = body["keys"].as_array().expect("keys array");
    assert_eq!(published.len(), 1, "{body}");
    let key = &published[0];
    assert_eq!(key["kid"], "ec-1");
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["key_ops"], json!(["verify"]));
    assert!(key.get("d").is_none(), "private part leaked: {key}");
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unknown_routes_are_json_404_in_both_formats() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let body = assert_gotrue_error(suite.get("/definitely/not/here").await?, 404, "not_found").await;
    assert!(body.get("error_id").is_none());

    let response = suite
        .request(reqwest::Method::GET, "/definitely/not/here")
        .header("X-Supabase-Api-Version", "2024-01-01")
        .send()
        .await?;
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-sb-error-code"], "not_found");
    assert_eq!(response.headers()["x-supabase-api-version"], "2024-01-01");
    assert_eq!(
        response.json::<Value>().await?,
        json!({ "code": "not_found", "message": "Not Found" })
    );
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn cors_preflight_reflects_the_origin() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let response = suite
        .request(reqwest::Method::OPTIONS, "/settings")
        .header("Origin", "http://localhost:5173")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "apikey, x-client-info, authorization")
        .send()
        .await?;
    assert!(response.status().is_success());
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    assert_eq!(response.headers()["access-control-allow-credentials"], "true");
    suite.shutdown().await;
    Ok(())
}
