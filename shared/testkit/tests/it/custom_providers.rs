//! Custom OAuth 2.0 / OIDC providers end to end: the admin API (`/admin/custom-providers`) through
//! the gateway into the sso service, then sign-in as `custom:<name>` through `/authorize`,
//! `/callback` and `grant_type=id_token` against the fake provider served over HTTPS (the schema
//! and GoTrue require HTTPS URLs), its certificate authority trusted through
//! `AUTH_EXTERNAL_CA_CERTS`, its loopback address through `AUTH_CUSTOM_OAUTH_ALLOW_PRIVATE_NETWORKS`.

use auth_testkit::oauth::{FakeOAuthProvider, FakeUser};
use auth_testkit::{Suite, SuiteBuilder, assert_gotrue_error};
use reqwest::Method;
use serde_json::{Value, json};

use crate::external::{
    APP, CLIENT_ID, CLIENT_SECRET, authorize, callback, fragment_map, id_token_grant, query_map, user_of,
};
use crate::support::*;

/// A 256-bit key, base64url: client secrets are stored encrypted in these tests.
const DB_KEY: &str = "6Kl6Tcg0BKmz7Q2jHq3Mdu4xwPGfgMxKczHUOOuiqXw";

/// A suite trusting `provider`'s certificate authority and its loopback address.
fn suite_for(provider: &FakeOAuthProvider) -> anyhow::Result<SuiteBuilder> {
    let ca_file = std::env::temp_dir().join(format!("auth-suite-test-ca-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&ca_file, provider.ca_pem().unwrap_or_default())?;
    Ok(Suite::builder()
        .env("AUTH_EXTERNAL_CA_CERTS", &ca_file.to_string_lossy())
        .env("AUTH_CUSTOM_OAUTH_ALLOW_PRIVATE_NETWORKS", "true")
        .env("GOTRUE_URI_ALLOW_LIST", "http://localhost:3000/**")
        .env("GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPT", "true")
        .env("GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPTION_KEY_ID", "k1")
        .env("GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPTION_KEY", DB_KEY)
        .env("GOTRUE_SECURITY_DB_ENCRYPTION_DECRYPTION_KEYS", &format!("k1:{DB_KEY}")))
}

fn oidc_provider(provider: &FakeOAuthProvider, identifier: &str) -> Value {
    json!({
        "provider_type": "oidc",
        "identifier": identifier,
        "name": "Acme SSO",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "issuer": provider.base_url(),
        "acceptable_client_ids": ["acme-ios"],
        "custom_claims_allowlist": ["dept"],
        "attribute_mapping": {"nickname": "dept"},
        "authorization_params": {"prompt": "login"},
    })
}

/// POST /admin/custom-providers, which answers 201.
async fn create_provider(suite: &Suite, body: Value) -> anyhow::Result<Value> {
    let response = admin(suite, Method::POST, "/admin/custom-providers", Some(body)).await?;
    anyhow::ensure!(
        response.status() == 201,
        "create: {} {}",
        response.status(),
        response.text().await?
    );
    Ok(response.json().await?)
}

/// The browser's whole sign-in with `identifier`, the code granted under the PKCE challenge the
/// suite sent when the provider asks for one.
async fn sign_in(
    suite: &Suite,
    provider: &FakeOAuthProvider,
    identifier: &str,
    user: &FakeUser,
) -> anyhow::Result<Value> {
    let redirect = authorize(suite, &format!("provider={identifier}&redirect_to={APP}")).await?;
    let query = query_map(&redirect);
    let code = match query.get("code_challenge") {
        Some(challenge) => provider.grant_pkce(user, challenge),
        None => provider.grant(user),
    };
    let landed = callback(suite, &query["state"], &code).await?;
    user_of(suite, &fragment_map(&landed)).await
}

#[tokio::test]
async fn an_oidc_custom_provider_signs_users_in_with_its_mapping() -> anyhow::Result<()> {
    let provider = FakeOAuthProvider::start_tls(CLIENT_ID, CLIENT_SECRET).await?;
    let suite = suite_for(&provider)?.start().await?;

    let created = admin(
        &suite,
        Method::POST,
        "/admin/custom-providers",
        Some(oidc_provider(&provider, "custom:acme")),
    )
    .await?;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await?;
    assert_eq!(created["identifier"], "custom:acme");
    assert_eq!(created["provider_type"], "oidc");
    assert_eq!(
        created["scopes"],
        json!(["openid"]),
        "openid is always asked of OIDC providers"
    );
    assert_eq!(created["pkce_enabled"], true);
    assert_eq!(created["enabled"], true);
    assert_eq!(created["issuer"], provider.base_url());
    assert_eq!(created["discovery_document"]["issuer"], provider.base_url());
    assert_eq!(
        created["discovery_document"]["token_endpoint"],
        format!("{}/oidc/token", provider.base_url())
    );
    assert!(
        created.get("client_secret").is_none() && created.get("token_url").is_none(),
        "{created}"
    );
    // The secret is stored sealed as GoTrue seals it, readable by neither the API nor the table.
    let stored: String =
        sqlx::query_scalar("SELECT client_secret FROM custom_oauth_providers WHERE identifier = 'custom:acme'")
            .fetch_one(&suite.db)
            .await?;
    let sealed: Value = serde_json::from_str(&stored)?;
    assert_eq!(sealed["alg"], "aes-gcm-hkdf");
    assert_eq!(sealed["key_id"], "k1");
    assert!(!stored.contains(CLIENT_SECRET));

    // /authorize: the discovered endpoint, PKCE towards the provider, the admin's parameters.
    let redirect = authorize(&suite, &format!("provider=custom:acme&redirect_to={APP}")).await?;
    assert_eq!(redirect.path(), "/oidc/authorize");
    let query = query_map(&redirect);
    assert_eq!(query["scope"], "openid");
    assert_eq!(query["prompt"], "login");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["redirect_uri"], "http://localhost:9999/callback");

    // The callback reads the verified ID token; the allow-listed claim is kept and mapped.
    let email = email();
    let mut ada = FakeUser::new(31, &email, true);
    ada.extra_claims.insert("dept".into(), json!("R&D"));
    ada.extra_claims.insert("secret_flag".into(), json!(true));
    let code = provider.grant_pkce(&ada, &query["code_challenge"]);
    let user = user_of(&suite, &fragment_map(&callback(&suite, &query["state"], &code).await?)).await?;
    assert_eq!(user["email"], email);
    assert_eq!(user["app_metadata"]["provider"], "custom:acme");
    let identity = &user["identities"][0];
    assert_eq!(identity["provider"], "custom:acme");
    assert_eq!(identity["identity_data"]["sub"], "g-31");
    assert_eq!(identity["identity_data"]["custom_claims"], json!({"dept": "R&D"}));
    assert_eq!(user["user_metadata"]["nickname"], "R&D");

    // A native app's ID token for the provider signs the same user in; another client id of the
    // provider is an acceptable audience.
    let now = chrono::Utc::now().timestamp();
    let id_token = provider.id_token(&json!({
        "iss": provider.base_url(), "sub": "g-31", "aud": "acme-ios", "exp": now + 300, "iat": now,
        "email": email, "email_verified": true,
    }));
    let response = id_token_grant(&suite, json!({"provider": "custom:acme", "id_token": id_token})).await?;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await?;
    assert_eq!(session["user"]["id"], user["id"]);

    // Disabled, the provider is refused where GoTrue refuses it.
    let updated = admin_ok(
        &suite,
        Method::PUT,
        "/admin/custom-providers/custom:acme",
        Some(json!({"enabled": false, "name": "Acme"})),
    )
    .await?;
    assert_eq!(
        (updated["enabled"].clone(), updated["name"].clone()),
        (json!(false), json!("Acme"))
    );
    assert_eq!(
        updated["issuer"],
        provider.base_url(),
        "what the update leaves out is kept"
    );
    let refused = suite
        .get(&format!("/authorize?provider=custom:acme&redirect_to={APP}"))
        .await?;
    let body = assert_gotrue_error(refused, 400, "validation_failed").await;
    assert_eq!(
        body["msg"],
        "Unsupported provider: custom provider custom:acme is disabled"
    );
    let refused = id_token_grant(&suite, json!({"provider": "custom:acme", "id_token": id_token})).await?;
    let body = assert_gotrue_error(refused, 400, "provider_disabled").await;
    assert_eq!(body["msg"], "Custom provider \"custom:acme\" is disabled");

    // Deleted, it is gone.
    let deleted = admin(&suite, Method::DELETE, "/admin/custom-providers/custom:acme", None).await?;
    assert_eq!(deleted.status(), 204);
    let gone = admin(&suite, Method::GET, "/admin/custom-providers/custom:acme", None).await?;
    assert_gotrue_error(gone, 404, "custom_provider_not_found").await;
    let refused = id_token_grant(&suite, json!({"provider": "custom:acme", "id_token": id_token})).await?;
    let body = assert_gotrue_error(refused, 400, "validation_failed").await;
    assert_eq!(body["msg"], "Custom provider \"custom:acme\" not found");
    suite.shutdown().await;
    Ok(())
}

/// A plain OAuth 2.0 provider's user API names its user `id`: the mapping makes it the subject
/// (which GoTrue's mapping cannot: it only reads the standard claims).
#[tokio::test]
async fn an_oauth2_custom_provider_reads_its_userinfo_through_the_mapping() -> anyhow::Result<()> {
    let provider = FakeOAuthProvider::start_tls(CLIENT_ID, CLIENT_SECRET).await?;
    let suite = suite_for(&provider)?.start().await?;
    let base = provider.base_url();
    let body = json!({
        "provider_type": "oauth2",
        "identifier": "custom:forge",
        "name": "Forge",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "authorization_url": format!("{base}/login/oauth/authorize?tenant=t1"),
        "token_url": format!("{base}/oauth/token"),
        "userinfo_url": format!("{base}/custom/userinfo"),
        "scopes": ["read:user", "user:email"],
        "pkce_enabled": false,
        "attribute_mapping": {"sub": "id", "user_name": "login"},
    });
    let created = create_provider(&suite, body).await?;
    assert_eq!(created["token_url"], format!("{base}/oauth/token"));
    assert!(created.get("issuer").is_none() && created.get("discovery_document").is_none());
    let read = admin_ok(&suite, Method::GET, "/admin/custom-providers/custom:forge", None).await?;
    assert_eq!(read, created, "the answer to the creation is what is stored");

    let redirect = authorize(
        &suite,
        &format!("provider=custom:forge&scopes=read:org&redirect_to={APP}"),
    )
    .await?;
    let query = query_map(&redirect);
    assert_eq!(query["scope"], "read:org", "the app's scopes replace the provider's");
    assert!(
        redirect.query().is_some_and(|q| q.starts_with("tenant=t1&")),
        "the configured query comes first, as Go's AuthCodeURL keeps it: {redirect}"
    );
    assert!(!query.contains_key("code_challenge"));

    let email = email();
    let user = sign_in(&suite, &provider, "custom:forge", &FakeUser::new(9001, &email, true)).await?;
    assert_eq!(user["email"], email);
    let identity = &user["identities"][0];
    assert_eq!(identity["provider"], "custom:forge");
    assert_eq!(identity["id"], "9001");
    assert_eq!(identity["identity_data"]["user_name"], "user9001");

    // The list, newest first, filtered by type.
    create_provider(&suite, oidc_provider(&provider, "custom:acme")).await?;
    let all = admin_ok(&suite, Method::GET, "/admin/custom-providers", None).await?;
    let names: Vec<&str> = all["providers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["identifier"].as_str())
        .collect();
    assert_eq!(names, ["custom:acme", "custom:forge"]);
    let oidc = admin_ok(&suite, Method::GET, "/admin/custom-providers?type=oidc", None).await?;
    assert_eq!(oidc["providers"].as_array().map(Vec::len), Some(1));
    let bad = admin(&suite, Method::GET, "/admin/custom-providers?type=saml", None).await?;
    assert_gotrue_error(bad, 400, "validation_failed").await;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_admin_api_refuses_what_gotrue_refuses() -> anyhow::Result<()> {
    let provider = FakeOAuthProvider::start_tls(CLIENT_ID, CLIENT_SECRET).await?;
    let suite = suite_for(&provider)?
        .env("GOTRUE_CUSTOM_OAUTH_MAX_PROVIDERS", "1")
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .start()
        .await?;
    let create = |body: Value| {
        let suite = &suite;
        async move { admin(suite, Method::POST, "/admin/custom-providers", Some(body)).await }
    };
    let with = |changes: Value| {
        let mut body = oidc_provider(&provider, "custom:acme");
        if let (Some(body), Some(changes)) = (body.as_object_mut(), changes.as_object()) {
            body.extend(changes.clone());
        }
        body
    };
    let cases = [
        (
            json!({"provider_type": "saml"}),
            "provider_type must be either 'oauth2' or 'oidc'",
        ),
        (
            json!({"identifier": "acme"}),
            "identifier must start with 'custom:' prefix, e.g. 'custom:acme'",
        ),
        (json!({"client_secret": ""}), "client_secret is required"),
        (json!({"issuer": ""}), "issuer is required for OIDC providers"),
        (json!({"issuer": "http://idp.example.com"}), "URL must use HTTPS"),
        (
            json!({"authorization_params": {"state": "x"}}),
            "Cannot override reserved OAuth parameter: state",
        ),
        (
            json!({"attribute_mapping": {"role": "groups"}}),
            "Cannot map to protected system field: role",
        ),
        (
            json!({"custom_claims_allowlist": [""]}),
            "custom_claims_allowlist entries must be non-empty strings",
        ),
    ];
    for (changes, message) in cases {
        let body = assert_gotrue_error(create(with(changes.clone())).await?, 400, "validation_failed").await;
        assert_eq!(body["msg"], message, "{changes}");
    }
    // A discovery document naming another issuer is refused before anything is stored.
    let body = assert_gotrue_error(
        create(with(json!({"issuer": format!("{}/realms/other", provider.base_url()), "discovery_url": format!("{}/.well-known/openid-configuration", provider.base_url())}))).await?,
        400,
        "validation_failed",
    )
    .await;
    assert!(
        body["msg"].as_str().is_some_and(|m| m.contains("issuer mismatch")),
        "{body}"
    );

    assert_eq!(create(with(json!({}))).await?.status(), 201);
    let duplicate = create(with(json!({}))).await?;
    assert_gotrue_error(duplicate, 400, "over_custom_provider_quota").await;

    // Not an admin: refused before anything else.
    let session = sign_up(&suite, &email()).await?;
    let response = suite
        .request(Method::GET, "/admin/custom-providers")
        .header("authorization", bearer(&session))
        .send()
        .await?;
    assert_gotrue_error(response, 403, "not_admin").await;
    let missing = admin(
        &suite,
        Method::PUT,
        "/admin/custom-providers/custom:nope",
        Some(json!({"name": "x"})),
    )
    .await?;
    assert_gotrue_error(missing, 404, "custom_provider_not_found").await;
    suite.shutdown().await;

    // Without the suite's private-network allowance, GoTrue's guard holds: loopback is refused.
    let guarded = Suite::builder().start().await?;
    let response = admin(&guarded, Method::POST, "/admin/custom-providers", Some(with(json!({})))).await?;
    let body = assert_gotrue_error(response, 400, "validation_failed").await;
    assert_eq!(body["msg"], "URL cannot point to localhost or loopback addresses");
    // A row that points inside (written by hand, or a name re-pointed since) is refused at sign-in
    // too, with GoTrue's message.
    sqlx::query(
        "INSERT INTO custom_oauth_providers (provider_type, identifier, name, client_id, client_secret, issuer) \
         VALUES ('oidc', 'custom:inside', 'Inside', 'c', 's', $1)",
    )
    .bind(provider.base_url())
    .execute(&guarded.db)
    .await?;
    let response = guarded
        .get(&format!("/authorize?provider=custom:inside&redirect_to={APP}"))
        .await?;
    let body = assert_gotrue_error(response, 400, "validation_failed").await;
    assert_eq!(
        body["msg"],
        format!(
            "Unsupported provider: error creating OIDC provider: failed to create OIDC provider: oidc: discovery request to {}/.well-known/openid-configuration failed: 400: URL cannot point to localhost or loopback addresses",
            provider.base_url()
        )
    );
    guarded.shutdown().await;

    // Switched off, the whole API is a 404.
    let off = Suite::builder()
        .env("GOTRUE_CUSTOM_OAUTH_ENABLED", "false")
        .start()
        .await?;
    let response = admin(&off, Method::GET, "/admin/custom-providers", None).await?;
    assert_gotrue_error(response, 404, "feature_disabled").await;
    off.shutdown().await;
    Ok(())
}
