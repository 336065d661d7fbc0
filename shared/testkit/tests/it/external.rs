//! External sign-in through OAuth providers, end to end: the gateway's `/authorize` and
//! `/callback`, the sso service's code exchange against a fake provider (shared/testkit's
//! `FakeOAuthProvider`, reached through each provider's `_URL` setting), the user service's
//! linking decision and the token service's flow. The test plays the browser.

use std::collections::HashMap;

use auth_testkit::oauth::{FakeOAuthProvider, FakeUser};
use auth_testkit::{Suite, SuiteBuilder, assert_gotrue_error};
use reqwest::Method;
use serde_json::{Value, json};
use url::Url;

use crate::support::*;

pub(crate) const CLIENT_ID: &str = "suite-client";
pub(crate) const CLIENT_SECRET: &str = "suite-client-secret";
pub(crate) const APP: &str = "http://localhost:3000/welcome";

fn with_provider(builder: SuiteBuilder, env_name: &str, url: &str) -> SuiteBuilder {
    let name = |field: &str| format!("GOTRUE_EXTERNAL_{env_name}_{field}");
    builder
        .env(&name("ENABLED"), "true")
        .env(&name("CLIENT_ID"), CLIENT_ID)
        .env(&name("SECRET"), CLIENT_SECRET)
        .env(&name("REDIRECT_URI"), "http://localhost:9999/callback")
        .env(&name("URL"), url)
}

fn github_suite(provider: &FakeOAuthProvider) -> SuiteBuilder {
    with_provider(Suite::builder(), "GITHUB", &provider.base_url())
        .env("GOTRUE_URI_ALLOW_LIST", "http://localhost:3000/**")
}

pub(crate) fn location(response: &reqwest::Response) -> Url {
    let location = response
        .headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .expect("ascii");
    Url::parse(location).expect("an absolute location")
}

pub(crate) fn query_map(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

pub(crate) fn fragment_map(url: &Url) -> HashMap<String, String> {
    url::form_urlencoded::parse(url.fragment().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// `/authorize` for `provider`; the provider's URL it redirects to.
pub(crate) async fn authorize(suite: &Suite, query: &str) -> anyhow::Result<Url> {
    let response = suite.get(&format!("/authorize?{query}")).await?;
    anyhow::ensure!(
        response.status() == 302,
        "authorize: {} {}",
        response.status(),
        response.text().await?
    );
    Ok(location(&response))
}

/// The provider's redirect back with `code` for the flow `state`; the app URL the gateway sends to.
pub(crate) async fn callback(suite: &Suite, state: &str, code: &str) -> anyhow::Result<Url> {
    let response = suite.get(&format!("/callback?code={code}&state={state}")).await?;
    anyhow::ensure!(
        response.status() == 302,
        "callback: {} {}",
        response.status(),
        response.text().await?
    );
    Ok(location(&response))
}

/// A whole implicit sign-in of `user`; the fragment of the app URL the browser lands on.
async fn sign_in_with(
    suite: &Suite,
    provider: &FakeOAuthProvider,
    name: &str,
    user: &FakeUser,
) -> anyhow::Result<HashMap<String, String>> {
    let redirect = authorize(suite, &format!("provider={name}&redirect_to={APP}")).await?;
    let state = query_map(&redirect)["state"].clone();
    let landed = callback(suite, &state, &provider.grant(user)).await?;
    Ok(fragment_map(&landed))
}

pub(crate) async fn user_of(suite: &Suite, fragment: &HashMap<String, String>) -> anyhow::Result<Value> {
    let access_token = fragment.get("access_token").cloned().unwrap_or_default();
    let response = get_user(suite, &format!("Bearer {access_token}")).await?;
    anyhow::ensure!(
        response.status() == 200,
        "GET /user: {} {}",
        response.status(),
        response.text().await?
    );
    Ok(response.json().await?)
}

#[tokio::test]
async fn github_sign_in_creates_the_account_then_finds_it_and_links_verified_emails() -> anyhow::Result<()> {
    let provider = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET).await?;
    let suite = github_suite(&provider)
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .start()
        .await?;

    // /authorize: the provider's URL with the flow's state, the default and extra scopes, and
    // every other parameter passed on.
    let redirect = authorize(
        &suite,
        &format!("provider=github&scopes=repo&login=octo&redirect_to={APP}"),
    )
    .await?;
    assert_eq!(redirect.path(), "/login/oauth/authorize");
    let query = query_map(&redirect);
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["scope"], "user:email repo");
    assert_eq!(query["redirect_uri"], "http://localhost:9999/callback");
    assert_eq!(query["login"], "octo");
    assert_eq!(query["redirect_to"], APP);
    let state = query["state"].clone();
    uuid::Uuid::parse_str(&state)?;

    // The callback: a new account, signed in with tokens in the fragment of the app's URL.
    let email = email();
    let octo = FakeUser::new(4242, &email, true);
    let landed = callback(&suite, &state, &provider.grant(&octo)).await?;
    assert_eq!(
        format!("{}{}", landed.origin().ascii_serialization(), landed.path()),
        APP
    );
    let fragment = fragment_map(&landed);
    assert_eq!(fragment["token_type"], "bearer");
    assert!(fragment["provider_token"].starts_with("access-"), "{fragment:?}");
    assert!(
        fragment["provider_refresh_token"].starts_with("refresh-"),
        "{fragment:?}"
    );
    assert!(fragment.contains_key("sb"));
    let claims = claims(&fragment["access_token"]);
    assert_eq!(claims["amr"][0]["method"], "oauth");
    assert_eq!(claims["app_metadata"]["provider"], "github");
    let user = user_of(&suite, &fragment).await?;
    assert_eq!(user["email"], email);
    assert!(
        user["email_confirmed_at"].is_string(),
        "a verified provider email confirms: {user}"
    );
    assert_eq!(user["app_metadata"]["providers"], json!(["github"]));
    assert_eq!(user["user_metadata"]["full_name"], "User 4242");
    assert_eq!(user["user_metadata"]["user_name"], "user4242");
    assert_eq!(user["user_metadata"]["email_verified"], true);
    let identity = &user["identities"][0];
    assert_eq!(identity["provider"], "github");
    assert_eq!(identity["id"], "4242");
    assert_eq!(identity["identity_data"]["provider_id"], "4242");
    assert_eq!(
        identity["identity_data"]["iss"],
        format!("{}/api/v3", provider.base_url())
    );
    assert_eq!(
        identity["identity_data"]["avatar_url"],
        "https://avatars.example/4242.png"
    );
    let user_id = user["id"].clone();

    // The state was spent with the flow: a replay lands on the site URL with the error.
    let replay = suite
        .get(&format!("/callback?code={}&state={state}", provider.grant(&octo)))
        .await?;
    assert_eq!(replay.status(), 303);
    let replayed = query_map(&location(&replay));
    assert_eq!(replayed["error"], "invalid_request");
    assert_eq!(replayed["error_code"], "bad_oauth_state");

    // Signing in again finds the same account and identity.
    let again = user_of(&suite, &sign_in_with(&suite, &provider, "github", &octo).await?).await?;
    assert_eq!(again["id"], user_id);
    assert_eq!(again["identities"].as_array().map(Vec::len), Some(1));

    // A password account with the address the provider verifies gets the identity linked.
    let linked_email = crate::support::email();
    let password_user = sign_up(&suite, &linked_email).await?;
    let other = FakeUser::new(777, &linked_email, true);
    let linked = user_of(&suite, &sign_in_with(&suite, &provider, "github", &other).await?).await?;
    assert_eq!(linked["id"], password_user["user"]["id"]);
    assert_eq!(linked["app_metadata"]["providers"], json!(["email", "github"]));
    let audit = admin_ok(&suite, Method::GET, "/admin/audit?per_page=50", None).await?;
    assert!(
        audit
            .as_array()
            .is_some_and(|entries| entries.iter().any(|e| e["payload"]["action"] == "identity_linked")),
        "identity_linked is audited: {audit}"
    );
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unverified_provider_emails_never_take_over_accounts() -> anyhow::Result<()> {
    let provider = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET).await?;
    let suite = github_suite(&provider).start().await?;

    // An address someone else confirmed, reported unverified by the provider: a separate account
    // without the address, which cannot sign in.
    let victim = email();
    admin_ok(
        &suite,
        Method::POST,
        "/admin/users",
        Some(json!({"email": victim, "password": PASSWORD, "email_confirm": true})),
    )
    .await?;
    let redirect = authorize(&suite, &format!("provider=github&redirect_to={APP}")).await?;
    let state = query_map(&redirect)["state"].clone();
    let landed = callback(&suite, &state, &provider.grant(&FakeUser::new(1, &victim, false))).await?;
    let query = query_map(&landed);
    assert_eq!(query["error"], "access_denied");
    assert_eq!(query["error_code"], "provider_email_needs_verification");
    assert_eq!(
        query["error_description"],
        "Unverified email with github. Verify the email with github in order to sign in"
    );
    let fragment = fragment_map(&landed);
    assert_eq!(fragment["error_code"], "provider_email_needs_verification");
    assert!(fragment.contains_key("sb"));
    let accounts = admin_ok(&suite, Method::GET, &format!("/admin/users?filter={victim}"), None).await?;
    let holders: Vec<&Value> = accounts["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| u["email"] == victim.as_str())
        .collect();
    assert_eq!(holders.len(), 1);
    assert_eq!(
        holders[0]["identities"].as_array().map(Vec::len),
        Some(1),
        "no identity joined the victim's account"
    );

    // A new unverified address: the account is made and asked to confirm by email.
    let newcomer = email();
    let redirect = authorize(&suite, &format!("provider=github&redirect_to={APP}")).await?;
    let state = query_map(&redirect)["state"].clone();
    let landed = callback(&suite, &state, &provider.grant(&FakeUser::new(2, &newcomer, false))).await?;
    assert_eq!(
        query_map(&landed)["error_description"],
        "Unverified email with github. A confirmation email has been sent to your github email"
    );
    let sent = last_email_request(&suite, &newcomer).await?;
    assert!(!sent.token_hash.is_empty());

    // The provider's own error is forwarded as it came.
    let redirect = authorize(&suite, &format!("provider=github&redirect_to={APP}")).await?;
    let state = query_map(&redirect)["state"].clone();
    let denied = suite
        .get(&format!(
            "/callback?error=access_denied&error_description=The+user+said+no&state={state}"
        ))
        .await?;
    assert_eq!(denied.status(), 302);
    let query = query_map(&location(&denied));
    assert_eq!(query["error"], "access_denied");
    assert_eq!(query["error_description"], "The user said no");
    assert!(!query.contains_key("error_code"));

    // A forged state, and none at all.
    let forged = suite.get("/callback?code=x&state=not-a-flow").await?;
    assert_eq!(forged.status(), 303);
    assert!(location(&forged).as_str().starts_with("http://localhost:3000"));
    assert_eq!(query_map(&location(&forged))["error_code"], "bad_oauth_state");
    let missing = suite.get("/callback?code=x").await?;
    assert_eq!(query_map(&location(&missing))["error_code"], "bad_oauth_callback");

    // A code the provider does not know: the exchange fails as GoTrue reports it.
    let redirect = authorize(&suite, &format!("provider=github&redirect_to={APP}")).await?;
    let state = query_map(&redirect)["state"].clone();
    let landed = callback(&suite, &state, "bogus-code").await?;
    assert_eq!(query_map(&landed)["error"], "server_error");
    assert_eq!(
        query_map(&landed)["error_description"],
        "Unable to exchange external code: bogu"
    );

    // Abandoned flows do not pile up: a day-old one goes when the next flow starts.
    let abandoned = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO flow_state (id, auth_code, provider_type, authentication_method, created_at, updated_at) \
         VALUES ($1, 'x', 'github', 'oauth', now() - interval '25 hours', now() - interval '25 hours')",
    )
    .bind(abandoned)
    .execute(&suite.db)
    .await?;
    authorize(&suite, &format!("provider=github&redirect_to={APP}")).await?;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM flow_state WHERE id = $1")
        .bind(abandoned)
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(left, 0, "the abandoned flow was cleared");

    // Unknown and disabled providers, and PKCE parameters out of pairs.
    let unknown = suite.get("/authorize?provider=nope").await?;
    let body = assert_gotrue_error(unknown, 400, "validation_failed").await;
    assert_eq!(body["msg"], "Unsupported provider: Provider nope could not be found");
    let disabled = suite.get("/authorize?provider=gitlab").await?;
    let body = assert_gotrue_error(disabled, 400, "validation_failed").await;
    assert_eq!(body["msg"], "Unsupported provider: provider is not enabled");
    let half_pkce = suite
        .get("/authorize?provider=github&code_challenge_method=s256")
        .await?;
    assert_gotrue_error(half_pkce, 400, "validation_failed").await;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn pkce_sign_in_hands_out_a_code_traded_once_with_the_provider_tokens() -> anyhow::Result<()> {
    let provider = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET).await?;
    let suite = github_suite(&provider).start().await?;
    let verifier = "a-code-verifier-that-is-long-enough-to-pass-the-checks-0123456789";
    let challenge = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    let redirect = authorize(
        &suite,
        &format!("provider=github&redirect_to={APP}&code_challenge={challenge}&code_challenge_method=s256"),
    )
    .await?;
    let state = query_map(&redirect)["state"].clone();
    let email = email();
    let code = provider.grant(&FakeUser::new(9, &email, true));
    let landed = callback(&suite, &state, &code).await?;
    assert!(landed.fragment().is_none(), "no tokens in the URL: {landed}");
    let auth_code = query_map(&landed)["code"].clone();

    // The same state cannot be used twice.
    let replay = suite
        .get(&format!(
            "/callback?code={}&state={state}",
            provider.grant(&FakeUser::new(9, &email, true))
        ))
        .await?;
    assert_eq!(query_map(&location(&replay))["error_code"], "flow_state_already_used");

    let body = json!({"auth_code": auth_code, "code_verifier": verifier});
    let tokens: Value = suite.post_json("/token?grant_type=pkce", &body).await?.json().await?;
    assert_eq!(tokens["user"]["email"], email);
    assert!(
        tokens["provider_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("access-")),
        "{tokens}"
    );
    assert!(
        tokens["provider_refresh_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("refresh-"))
    );
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap_or_default())["amr"][0]["method"],
        "oauth"
    );
    let again = suite.post_json("/token?grant_type=pkce", &body).await?;
    assert_gotrue_error(again, 404, "flow_state_not_found").await;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn gitlab_and_keycloak_map_their_users_as_gotrue_does() -> anyhow::Result<()> {
    let provider = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET).await?;
    let builder = with_provider(Suite::builder(), "GITLAB", &provider.base_url());
    let builder = with_provider(builder, "KEYCLOAK", &format!("{}/realms/test/", provider.base_url()));
    let suite = builder.env("GOTRUE_DISABLE_SIGNUP", "false").start().await?;

    // GitLab: the account's email is primary and verified when confirmed; others are unverified.
    let email = email();
    let mut gitlab_user = FakeUser::new(31, &email, true);
    gitlab_user.emails.push(("alias@example.com".into(), true, false));
    let user = user_of(&suite, &sign_in_with(&suite, &provider, "gitlab", &gitlab_user).await?).await?;
    assert_eq!(user["email"], email);
    let data = &user["identities"][0]["identity_data"];
    assert_eq!(data["iss"], provider.base_url());
    assert_eq!(data["sub"], "31");
    assert_eq!(data["picture"], "https://avatars.example/31.png");
    assert_eq!(data["name"], "User 31");

    // Keycloak: the realm's userinfo, with the non-standard claims under custom_claims.
    let email = crate::support::email();
    let mut keycloak_user = FakeUser::new(51, &email, true);
    keycloak_user
        .extra_claims
        .insert("department".into(), json!("research"));
    let user = user_of(
        &suite,
        &sign_in_with(&suite, &provider, "keycloak", &keycloak_user).await?,
    )
    .await?;
    let data = &user["identities"][0]["identity_data"];
    assert_eq!(data["iss"], format!("{}/realms/test", provider.base_url()));
    assert_eq!(data["sub"], "51");
    assert_eq!(data["email"], email);
    assert_eq!(data["custom_claims"]["department"], "research");
    assert_eq!(user["user_metadata"]["custom_claims"]["department"], "research");

    // /settings lists the enabled providers.
    let settings: Value = suite.get("/settings").await?.json().await?;
    assert_eq!(settings["external"]["gitlab"], true);
    assert_eq!(settings["external"]["keycloak"], true);
    assert_eq!(settings["external"]["github"], false);
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn disabled_signups_refuse_new_external_accounts() -> anyhow::Result<()> {
    let provider = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET).await?;
    let suite = github_suite(&provider)
        .env("GOTRUE_DISABLE_SIGNUP", "true")
        .start()
        .await?;
    let redirect = authorize(&suite, &format!("provider=github&redirect_to={APP}")).await?;
    let state = query_map(&redirect)["state"].clone();
    let landed = callback(&suite, &state, &provider.grant(&FakeUser::new(3, &email(), true))).await?;
    let query = query_map(&landed);
    assert_eq!(query["error"], "access_denied");
    assert_eq!(query["error_code"], "signup_disabled");
    suite.shutdown().await;
    Ok(())
}

/// Every provider mapped as GoTrue maps it: one suite with all of them pointed at the fake
/// provider, one sign-in each, the identity checked field by field.
#[tokio::test]
async fn each_provider_maps_its_user_as_gotrue_does() -> anyhow::Result<()> {
    let provider = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET).await?;
    let base = provider.base_url();
    let mut builder = Suite::builder().env("GOTRUE_URI_ALLOW_LIST", "http://localhost:3000/**");
    for env_name in [
        "BITBUCKET",
        "SLACK",
        "LINKEDIN",
        "DISCORD",
        "FACEBOOK",
        "FIGMA",
        "FLY",
        "KAKAO",
        "NOTION",
        "SLACK_OIDC",
        "SNAPCHAT",
        "TWITCH",
        "WORKOS",
        "ZOOM",
    ] {
        builder = with_provider(builder, env_name, &base);
    }
    // Spotify's accounts and API hosts both become its `_URL`.
    builder = with_provider(builder, "SPOTIFY", &format!("{base}/spotify"));
    let suite = builder.start().await?;

    // (provider, the user's id at the provider, expected identity_data fields)
    // "BASE" and "EMAIL" stand for the fake provider's URL and the user's address.
    let cases: Vec<(&str, i64, Value)> = vec![
        (
            "bitbucket",
            61,
            json!({"sub": "{61}", "provider_id": "{61}", "name": "User 61", "picture": "https://avatars.example/61.png", "iss": "BASE/2.0"}),
        ),
        (
            "discord",
            62,
            json!({"sub": "62", "name": "user62#0007", "full_name": "user62", "picture": "https://cdn.discordapp.com/embed/avatars/2.png", "custom_claims": {"global_name": "User 62"}}),
        ),
        (
            "facebook",
            63,
            json!({"sub": "63", "name": "User 63", "nickname": "user63", "slug": "user63", "picture": "https://avatars.example/63.png"}),
        ),
        (
            "figma",
            64,
            json!({"sub": "64", "name": "User 64", "email": "EMAIL", "email_verified": true, "avatar_url": "https://avatars.example/64.png"}),
        ),
        (
            "fly",
            65,
            json!({"sub": "65", "full_name": "User 65", "custom_claims": {"resource_owner_id": "owner-65", "organizations": [{"id": "org-1", "role": "admin"}], "scope": ["read"], "application": {"uid": "app"}, "created_at": 1_700_000_000}}),
        ),
        (
            "twitch",
            66,
            json!({"sub": "66", "name": "user66", "nickname": "User 66", "slug": "User 66", "custom_claims": {"broadcaster_type": "partner", "view_count": 12}}),
        ),
        (
            "zoom",
            67,
            json!({"sub": "zoom-67", "name": "User 67", "full_name": "User 67", "picture": "https://avatars.example/67.png"}),
        ),
        (
            "kakao",
            68,
            json!({"sub": "68", "name": "user68", "preferred_username": "user68", "user_name": "user68", "avatar_url": "https://avatars.example/68.png", "iss": "BASE"}),
        ),
        (
            "notion",
            69,
            json!({"sub": "notion-69", "name": "User 69", "picture": "https://avatars.example/69.png"}),
        ),
        (
            "slack_oidc",
            70,
            json!({"sub": "U70", "name": "User 70", "picture": "https://avatars.example/70.png", "iss": "BASE/api", "custom_claims": {"https://slack.com/team_id": "T0001"}}),
        ),
        (
            "snapchat",
            71,
            json!({"sub": "snap-71", "name": "User 71", "slug": "User 71", "iss": "https://accounts.snapchat.com/accounts/oauth2/token", "picture": "https://avatars.example/71.png"}),
        ),
        (
            "workos",
            72,
            json!({"sub": "prof_72", "name": "User 72", "custom_claims": {"connection_id": "conn_1", "organization_id": "org_1"}}),
        ),
        (
            "slack",
            74,
            json!({"sub": "U74", "name": "User 74", "iss": "BASE/api", "custom_claims": {"https://slack.com/team_id": "T0001"}}),
        ),
        (
            "linkedin",
            75,
            json!({"sub": "li-75", "name": "User 75", "picture": "https://avatars.example/75.png", "email_verified": true}),
        ),
    ];
    for (name, id, expected) in cases {
        let email = crate::support::email();
        let fragment = sign_in_with(&suite, &provider, name, &FakeUser::new(id, &email, true)).await?;
        let user = user_of(&suite, &fragment).await?;
        assert_eq!(user["email"], email, "{name}: {user}");
        assert!(
            user["email_confirmed_at"].is_string(),
            "{name}: the provider's email is verified"
        );
        assert_eq!(user["app_metadata"]["provider"], name);
        let identity = &user["identities"][0];
        assert_eq!(identity["provider"], name);
        let data = &identity["identity_data"];
        assert_eq!(data["email"], email, "{name}");
        for (key, value) in expected.as_object().into_iter().flatten() {
            let value = match value.as_str() {
                Some(text) => json!(text.replace("BASE", &base).replace("EMAIL", &email)),
                None => value.clone(),
            };
            match (&data[key], &value) {
                (Value::Object(actual), Value::Object(wanted)) => {
                    for (inner, wanted) in wanted {
                        assert_eq!(&actual[inner], wanted, "{name}: {key}.{inner} in {data}");
                    }
                }
                (actual, wanted) => assert_eq!(actual, wanted, "{name}: {key} in {data}"),
            }
        }
    }

    // Spotify does not verify emails: the account must confirm its address first.
    let email = crate::support::email();
    let redirect = authorize(&suite, &format!("provider=spotify&redirect_to={APP}")).await?;
    assert_eq!(redirect.path(), "/spotify/authorize");
    let state = query_map(&redirect)["state"].clone();
    let landed = callback(&suite, &state, &provider.grant(&FakeUser::new(73, &email, true))).await?;
    assert_eq!(query_map(&landed)["error_code"], "provider_email_needs_verification");
    let listed = admin_ok(&suite, Method::GET, &format!("/admin/users?filter={email}"), None).await?;
    let data = &listed["users"][0]["identities"][0]["identity_data"];
    assert_eq!(data["sub"], "spotify-73");
    assert_eq!(data["picture"], "https://avatars.example/73.png", "the largest image");
    assert_eq!(data["email_verified"], false);

    // Bitbucket ignores the app's extra scopes; Discord adds them.
    let bitbucket = authorize(&suite, "provider=bitbucket&scopes=repository").await?;
    assert_eq!(query_map(&bitbucket)["scope"], "account email");
    let discord = authorize(&suite, "provider=discord&scopes=guilds").await?;
    assert_eq!(query_map(&discord)["scope"], "email identify guilds");
    suite.shutdown().await;
    Ok(())
}

/// Starts manual linking for `session`'s user; the flow's state.
async fn start_linking(suite: &Suite, session: &Value) -> anyhow::Result<String> {
    let response = suite
        .request(
            Method::GET,
            &format!("/user/identities/authorize?provider=github&redirect_to={APP}&skip_http_redirect=true"),
        )
        .header("authorization", bearer(session))
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 200,
        "link: {} {}",
        response.status(),
        response.text().await?
    );
    let body: Value = response.json().await?;
    let url = Url::parse(body["url"].as_str().unwrap_or_default())?;
    assert_eq!(url.path(), "/login/oauth/authorize");
    Ok(query_map(&url)["state"].clone())
}

async fn unlink(suite: &Suite, session: &Value, identity_id: &str) -> anyhow::Result<reqwest::Response> {
    Ok(suite
        .request(Method::DELETE, &format!("/user/identities/{identity_id}"))
        .header("authorization", bearer(session))
        .send()
        .await?)
}

#[tokio::test]
async fn manual_linking_adds_and_removes_identities() -> anyhow::Result<()> {
    use auth_proto::notification::v1::EmailKind;
    let provider = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET).await?;
    let suite = github_suite(&provider)
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_SECURITY_MANUAL_LINKING_ENABLED", "true")
        .env("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "true")
        .env("GOTRUE_MAILER_NOTIFICATIONS_IDENTITY_LINKED_ENABLED", "true")
        .env("GOTRUE_MAILER_NOTIFICATIONS_IDENTITY_UNLINKED_ENABLED", "true")
        .start()
        .await?;

    // A password user links a GitHub account with another address: a new session for the same
    // user, who keeps the address, and a notice to it.
    let owner_email = email();
    let owner = sign_up(&suite, &owner_email).await?;
    let octo = FakeUser::new(808, &crate::support::email(), true);
    let state = start_linking(&suite, &owner).await?;
    let landed = callback(&suite, &state, &provider.grant(&octo)).await?;
    let fragment = fragment_map(&landed);
    assert!(fragment.contains_key("access_token"), "linked: {landed}");
    let linked = user_of(&suite, &fragment).await?;
    assert_eq!(linked["id"], owner["user"]["id"]);
    assert_eq!(linked["email"], owner_email);
    assert_eq!(linked["app_metadata"]["providers"], json!(["email", "github"]));
    let github_identity = linked["identities"]
        .as_array()
        .and_then(|all| all.iter().find(|i| i["provider"] == "github"))
        .cloned()
        .expect("the github identity");
    let notice = last_email_request(&suite, &owner_email).await?;
    assert_eq!(notice.kind, EmailKind::IdentityLinkedNotification as i32);
    assert_eq!(notice.provider, "github");

    // The same identity again, for the same user and for another one.
    let state = start_linking(&suite, &owner).await?;
    let again = query_map(&callback(&suite, &state, &provider.grant(&octo)).await?);
    assert_eq!(again["error_code"], "identity_already_exists");
    assert_eq!(again["error_description"], "Identity is already linked");
    let other = sign_up(&suite, &email()).await?;
    let state = start_linking(&suite, &other).await?;
    let taken = query_map(&callback(&suite, &state, &provider.grant(&octo)).await?);
    assert_eq!(taken["error_description"], "Identity is already linked to another user");

    // Unlinking: GoTrue's checks, then the identity goes and a notice tells the owner.
    let malformed = unlink(&suite, &owner, "not-a-uuid").await?;
    assert_gotrue_error(malformed, 404, "validation_failed").await;
    let unknown = unlink(&suite, &owner, &uuid::Uuid::new_v4().to_string()).await?;
    assert_gotrue_error(unknown, 422, "identity_not_found").await;
    let removed = unlink(
        &suite,
        &owner,
        github_identity["identity_id"].as_str().unwrap_or_default(),
    )
    .await?;
    assert_eq!(removed.status(), 200);
    assert_eq!(removed.json::<Value>().await?, json!({}));
    let after = user_of(
        &suite,
        &HashMap::from([(
            "access_token".to_string(),
            owner["access_token"].as_str().unwrap_or_default().to_string(),
        )]),
    )
    .await?;
    assert_eq!(after["identities"].as_array().map(Vec::len), Some(1));
    assert_eq!(after["app_metadata"]["providers"], json!(["email"]));
    let notice = last_email_request(&suite, &owner_email).await?;
    assert_eq!(notice.kind, EmailKind::IdentityUnlinkedNotification as i32);
    let last = after["identities"][0]["identity_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let single = unlink(&suite, &owner, &last).await?;
    assert_gotrue_error(single, 422, "single_identity_not_deletable").await;

    // An anonymous user links an identity with a verified email and becomes a permanent user.
    let anonymous: Value = suite.post_json("/signup", &json!({})).await?.json().await?;
    assert_eq!(anonymous["user"]["is_anonymous"], true);
    let newcomer = crate::support::email();
    let state = start_linking(&suite, &anonymous).await?;
    let fragment =
        fragment_map(&callback(&suite, &state, &provider.grant(&FakeUser::new(909, &newcomer, true))).await?);
    let upgraded = user_of(&suite, &fragment).await?;
    assert_eq!(upgraded["id"], anonymous["user"]["id"]);
    assert_eq!(upgraded["email"], newcomer);
    assert_eq!(upgraded["is_anonymous"], false);
    assert!(upgraded["email_confirmed_at"].is_string());
    assert_eq!(claims(&fragment["access_token"])["is_anonymous"], false);

    // Without skip_http_redirect the answer is the redirect itself.
    let response = suite
        .request(Method::GET, "/user/identities/authorize?provider=github")
        .header("authorization", bearer(&owner))
        .send()
        .await?;
    assert_eq!(response.status(), 302);
    assert!(location(&response).as_str().starts_with(&provider.base_url()));
    suite.shutdown().await;
    Ok(())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

pub(crate) async fn id_token_grant(suite: &Suite, body: Value) -> anyhow::Result<reqwest::Response> {
    Ok(suite.post_json("/token?grant_type=id_token", &body).await?)
}

pub(crate) async fn oauth_error_of(response: reqwest::Response) -> anyhow::Result<(String, String)> {
    anyhow::ensure!(response.status() == 400, "expected 400, got {}", response.status());
    let body: Value = response.json().await?;
    Ok((
        body["error"].as_str().unwrap_or_default().to_string(),
        body["error_description"].as_str().unwrap_or_default().to_string(),
    ))
}

/// `grant_type=id_token` against the fake provider acting as an OIDC issuer (discovery, JWKS with
/// a rotation): Keycloak's realm, Google through the suite's issuer override, and an allowed
/// issuer in the deprecated form; GoTrue's checks of signature, expiry, audience, nonce and
/// `at_hash`.
#[tokio::test]
async fn id_token_sign_in_verifies_the_token_as_gotrue_does() -> anyhow::Result<()> {
    use base64::Engine;
    use sha2::Digest;
    let provider = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET).await?;
    let base = provider.base_url();
    let realm = format!("{base}/realms/test");
    let builder = with_provider(Suite::builder(), "KEYCLOAK", &realm);
    let suite = with_provider(builder, "GOOGLE", "")
        .env("AUTH_EXTERNAL_GOOGLE_ISSUER", &base)
        .env("GOTRUE_EXTERNAL_ALLOWED_ID_TOKEN_ISSUERS", &base)
        .env("AUTH_OIDC_JWKS_REFRESH_INTERVAL", "0s")
        .env("GOTRUE_SECURITY_MANUAL_LINKING_ENABLED", "true")
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .start()
        .await?;
    let claims = |email: &str, extra: Value| {
        let mut claims = json!({
            "iss": realm, "sub": format!("kc-{email}"), "aud": CLIENT_ID, "exp": now() + 600, "iat": now(),
            "email": email, "email_verified": true, "name": "Kay Cloak",
        });
        if let (Some(map), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
            map.extend(extra.clone());
        }
        claims
    };

    // Keycloak: a verified token signs a new account in, amr oauth.
    let email = email();
    let response = id_token_grant(
        &suite,
        json!({"provider": "keycloak", "id_token": provider.id_token(&claims(&email, json!({})))}),
    )
    .await?;
    anyhow::ensure!(response.status() == 200, "{}", response.text().await?);
    let session: Value = response.json().await?;
    assert_eq!(session["user"]["email"], email);
    assert_eq!(session["user"]["app_metadata"]["provider"], "keycloak");
    let identity = &session["user"]["identities"][0];
    assert_eq!(identity["identity_data"]["iss"], realm);
    assert_eq!(identity["identity_data"]["aud"], json!([CLIENT_ID]));
    assert_eq!(claims_of(&session)["amr"][0]["method"], "oauth");

    // The nonce: the token carries the SHA-256 (hex) of the one the app sends.
    let nonce = "a-nonce-of-the-app";
    let hashed = sha2::Sha256::digest(nonce.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let with_nonce = provider.id_token(&claims(&email, json!({"nonce": hashed})));
    let ok = id_token_grant(
        &suite,
        json!({"provider": "keycloak", "id_token": with_nonce, "nonce": nonce}),
    )
    .await?;
    assert_eq!(ok.status(), 200);
    let wrong = id_token_grant(
        &suite,
        json!({"provider": "keycloak", "id_token": with_nonce, "nonce": "another"}),
    )
    .await?;
    assert_eq!(
        oauth_error_of(wrong).await?,
        ("invalid nonce".into(), "Nonces mismatch".into())
    );
    let missing = id_token_grant(&suite, json!({"provider": "keycloak", "id_token": with_nonce})).await?;
    assert_eq!(
        oauth_error_of(missing).await?.1,
        "Passed nonce and nonce in id_token should either both exist or not."
    );

    // Audience, expiry, at_hash, and tokens not signed by the issuer's keys.
    let other_audience = provider.id_token(&claims(&email, json!({"aud": "someone-else"})));
    let refused = id_token_grant(&suite, json!({"provider": "keycloak", "id_token": other_audience})).await?;
    assert_eq!(
        oauth_error_of(refused).await?.1,
        "Unacceptable audience in id_token: [someone-else]"
    );
    let expired = provider.id_token(&claims(&email, json!({"exp": now() - 10})));
    let refused = id_token_grant(&suite, json!({"provider": "keycloak", "id_token": expired})).await?;
    assert_eq!(
        oauth_error_of(refused).await?,
        ("invalid request".into(), "Bad ID token".into())
    );
    let digest = sha2::Sha256::digest(b"provider-access-token");
    let at_hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]);
    let bound = provider.id_token(&claims(&email, json!({"at_hash": at_hash})));
    let mismatched = id_token_grant(
        &suite,
        json!({"provider": "keycloak", "id_token": bound, "access_token": "another-token"}),
    )
    .await?;
    assert_eq!(oauth_error_of(mismatched).await?.1, "Bad ID token");
    let matched = id_token_grant(
        &suite,
        json!({"provider": "keycloak", "id_token": bound, "access_token": "provider-access-token"}),
    )
    .await?;
    assert_eq!(matched.status(), 200);
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims(&email, json!({})).to_string());
    let unsigned = format!(
        "{}.{payload}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
    );
    let refused = id_token_grant(&suite, json!({"provider": "keycloak", "id_token": unsigned})).await?;
    assert_eq!(oauth_error_of(refused).await?.1, "Bad ID token");
    let hmac = auth_testkit::jwt::sign_hs256(&claims(&email, json!({})), CLIENT_SECRET);
    let refused = id_token_grant(&suite, json!({"provider": "keycloak", "id_token": hmac})).await?;
    assert_eq!(
        oauth_error_of(refused).await?.1,
        "Bad ID token",
        "no HMAC algorithm confusion"
    );

    // The issuer rotates its key: a token signed with the new one verifies.
    provider.rotate_keys();
    let rotated = id_token_grant(
        &suite,
        json!({"provider": "keycloak", "id_token": provider.id_token(&claims(&email, json!({})))}),
    )
    .await?;
    assert_eq!(rotated.status(), 200);

    // Google (its claims read as Google's), and an allowed issuer named in the request.
    let google_email = crate::support::email();
    let google_token = provider.id_token(&json!({
        "iss": base, "sub": "g-1", "aud": CLIENT_ID, "exp": now() + 600, "email": google_email,
        "email_verified": true, "name": "Gee", "picture": "https://g.example/p.png", "hd": "example.com",
    }));
    let google: Value = id_token_grant(&suite, json!({"provider": "google", "id_token": google_token}))
        .await?
        .json()
        .await?;
    assert_eq!(google["user"]["app_metadata"]["provider"], "google");
    assert_eq!(google["user"]["user_metadata"]["custom_claims"]["hd"], "example.com");
    assert_eq!(google["user"]["user_metadata"]["avatar_url"], "https://g.example/p.png");
    let generic_email = crate::support::email();
    let generic_token = provider.id_token(&json!({"iss": base, "sub": "gen-1", "aud": "app-1", "exp": now() + 600, "email": generic_email, "email_verified": true}));
    let generic: Value = id_token_grant(
        &suite,
        json!({"issuer": base, "client_id": "app-1", "id_token": generic_token}),
    )
    .await?
    .json()
    .await?;
    assert_eq!(generic["user"]["identities"][0]["provider"], base);
    let unknown = id_token_grant(
        &suite,
        json!({"issuer": "https://not-allowed.example", "client_id": "x", "id_token": generic_token}),
    )
    .await?;
    let body = assert_gotrue_error(unknown, 400, "validation_failed").await;
    assert_eq!(body["msg"], "Custom OIDC provider \"\" not allowed");

    // link_identity: the token's identity joins the caller's account.
    let owner = sign_up(&suite, &crate::support::email()).await?;
    let linking = provider.id_token(&claims(&crate::support::email(), json!({"sub": "kc-linked"})));
    let linked = suite
        .request(Method::POST, "/token?grant_type=id_token")
        .header("authorization", bearer(&owner))
        .json(&json!({"provider": "keycloak", "id_token": linking, "link_identity": true}))
        .send()
        .await?;
    assert_eq!(linked.status(), 200);
    let linked: Value = linked.json().await?;
    assert_eq!(linked["user"]["id"], owner["user"]["id"]);
    assert_eq!(
        linked["user"]["app_metadata"]["providers"],
        json!(["email", "keycloak"])
    );
    let anonymous_link = id_token_grant(
        &suite,
        json!({"provider": "keycloak", "id_token": linking, "link_identity": true}),
    )
    .await?;
    assert_eq!(
        oauth_error_of(anonymous_link).await?.1,
        "Linking requires a valid user access token in Authorization"
    );
    suite.shutdown().await;
    Ok(())
}

/// Google's code flow: endpoints from its discovery document (here the fake issuer's, through the
/// suite's `AUTH_EXTERNAL_GOOGLE_ISSUER`), the user from the verified ID token of the exchange.
#[tokio::test]
async fn google_sign_in_reads_the_verified_id_token() -> anyhow::Result<()> {
    let provider = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET).await?;
    let suite = with_provider(Suite::builder(), "GOOGLE", "")
        .env("AUTH_EXTERNAL_GOOGLE_ISSUER", &provider.base_url())
        .env("GOTRUE_URI_ALLOW_LIST", "http://localhost:3000/**")
        .start()
        .await?;
    let email = email();
    let redirect = authorize(&suite, &format!("provider=google&redirect_to={APP}")).await?;
    assert_eq!(redirect.path(), "/oidc/authorize");
    assert_eq!(query_map(&redirect)["scope"], "email profile");
    let state = query_map(&redirect)["state"].clone();
    let landed = callback(&suite, &state, &provider.grant(&FakeUser::new(88, &email, true))).await?;
    let user = user_of(&suite, &fragment_map(&landed)).await?;
    assert_eq!(user["email"], email);
    let data = &user["identities"][0]["identity_data"];
    assert_eq!(user["identities"][0]["provider"], "google");
    assert_eq!(data["sub"], "g-88");
    assert_eq!(data["iss"], provider.base_url());
    assert_eq!(data["avatar_url"], "https://avatars.example/88.png");
    assert_eq!(data["email_verified"], true);
    suite.shutdown().await;
    Ok(())
}

/// Apple (discovery, form-posted callback with the user's name, ID token), LinkedIn (OIDC) and
/// Azure (the tenant's issuer from the token) through stand-in issuers.
#[tokio::test]
async fn apple_linkedin_and_azure_read_their_id_tokens() -> anyhow::Result<()> {
    let provider = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET).await?;
    let base = provider.base_url();
    let mut builder = Suite::builder().env("GOTRUE_URI_ALLOW_LIST", "http://localhost:3000/**");
    for (env_name, url) in [
        ("APPLE", ""),
        ("LINKEDIN_OIDC", base.as_str()),
        ("AZURE", base.as_str()),
        ("VERCEL_MARKETPLACE", base.as_str()),
    ] {
        builder = with_provider(builder, env_name, url).env(&format!("AUTH_EXTERNAL_{env_name}_ISSUER"), &base);
    }
    let suite = builder.start().await?;

    // Apple: form_post, its scopes only, the name from the callback's `user` field.
    let redirect = authorize(&suite, &format!("provider=apple&scopes=extra&redirect_to={APP}")).await?;
    let query = query_map(&redirect);
    assert_eq!(redirect.path(), "/oidc/authorize");
    assert_eq!(query["response_mode"], "form_post");
    assert_eq!(query["scope"], "email name");
    let email = email();
    let code = provider.grant(&FakeUser::new(91, &email, true));
    let form = format!(
        "code={code}&state={}&user={}",
        query["state"],
        url::form_urlencoded::byte_serialize(br#"{"name":{"firstName":"Ada","lastName":"Lovelace"},"email":"x"}"#)
            .collect::<String>()
    );
    let posted = suite
        .request(Method::POST, "/callback")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await?;
    assert_eq!(posted.status(), 302);
    let user = user_of(&suite, &fragment_map(&location(&posted))).await?;
    assert_eq!(user["email"], email);
    assert_eq!(user["identities"][0]["provider"], "apple");
    assert_eq!(user["identities"][0]["identity_data"]["sub"], "g-91");
    assert_eq!(user["user_metadata"]["full_name"], "Ada Lovelace");

    // LinkedIn and Azure: the user from the verified ID token.
    for (name, id) in [("linkedin_oidc", 92), ("azure", 93), ("vercel_marketplace", 94)] {
        let email = crate::support::email();
        let user = user_of(
            &suite,
            &sign_in_with(&suite, &provider, name, &FakeUser::new(id, &email, true)).await?,
        )
        .await?;
        assert_eq!(user["email"], email, "{name}");
        assert_eq!(user["identities"][0]["provider"], name);
        let expected_sub = if name == "vercel_marketplace" {
            format!("global_user_id:vg-{id}")
        } else {
            format!("g-{id}")
        };
        assert_eq!(user["identities"][0]["identity_data"]["sub"], expected_sub);
        assert!(user["email_confirmed_at"].is_string(), "{name}: verified");
    }
    suite.shutdown().await;
    Ok(())
}

/// X requires PKCE from its clients: the suite keeps a verifier per flow in
/// `oauth_client_states`, sends its challenge and proves it at the exchange, once.
#[tokio::test]
async fn x_sign_in_does_pkce_with_the_provider() -> anyhow::Result<()> {
    let provider = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET).await?;
    let suite = with_provider(Suite::builder(), "X", &provider.base_url())
        .env("GOTRUE_URI_ALLOW_LIST", "http://localhost:3000/**")
        .start()
        .await?;
    let redirect = authorize(&suite, &format!("provider=x&redirect_to={APP}")).await?;
    assert_eq!(redirect.path(), "/i/oauth2/authorize");
    let query = query_map(&redirect);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["scope"], "users.email tweet.read users.read offline.access");
    let email = email();
    let code = provider.grant_pkce(&FakeUser::new(77, &email, true), &query["code_challenge"]);
    let landed = callback(&suite, &query["state"], &code).await?;
    let user = user_of(&suite, &fragment_map(&landed)).await?;
    assert_eq!(user["email"], email);
    let data = &user["identities"][0]["identity_data"];
    assert_eq!(data["sub"], "x-77");
    assert_eq!(data["profile"], "https://x.com/user77");
    assert_eq!(data["custom_claims"]["created_at"], "2020-01-01T00:00:00.000Z");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM oauth_client_states")
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(left, 0, "the verifier is spent");
    suite.shutdown().await;
    Ok(())
}

/// An invitation accepted through a provider (`/authorize?invite_token=`): the invited account
/// takes the identity when the provider vouches for the invited address.
#[tokio::test]
async fn an_invitation_is_accepted_through_a_provider() -> anyhow::Result<()> {
    let provider = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET).await?;
    let suite = github_suite(&provider).start().await?;
    let invited = email();
    let user = admin_ok(&suite, Method::POST, "/invite", Some(json!({"email": invited}))).await?;
    let token: String = sqlx::query_scalar("SELECT confirmation_token FROM users WHERE email = $1")
        .bind(&invited)
        .fetch_one(&suite.db)
        .await?;

    let unknown = suite.get("/authorize?provider=github&invite_token=nope").await?;
    let body = assert_gotrue_error(unknown, 404, "user_not_found").await;
    assert_eq!(body["msg"], "User identified by token not found");

    // Another address than the invited one is refused.
    let redirect = authorize(
        &suite,
        &format!("provider=github&invite_token={token}&redirect_to={APP}"),
    )
    .await?;
    let state = query_map(&redirect)["state"].clone();
    let other = callback(
        &suite,
        &state,
        &provider.grant(&FakeUser::new(61, &crate::support::email(), true)),
    )
    .await?;
    assert_eq!(
        query_map(&other)["error_description"],
        "Invited email does not match emails from external provider"
    );

    let redirect = authorize(
        &suite,
        &format!("provider=github&invite_token={token}&redirect_to={APP}"),
    )
    .await?;
    let state = query_map(&redirect)["state"].clone();
    let landed = callback(&suite, &state, &provider.grant(&FakeUser::new(62, &invited, true))).await?;
    let accepted = user_of(&suite, &fragment_map(&landed)).await?;
    assert_eq!(accepted["id"], user["id"]);
    assert!(accepted["email_confirmed_at"].is_string());
    assert_eq!(accepted["app_metadata"]["provider"], "github");
    assert_eq!(accepted["identities"].as_array().map(Vec::len), Some(1));
    let audit = admin_ok(&suite, Method::GET, "/admin/audit?per_page=50", None).await?;
    assert!(
        audit
            .as_array()
            .is_some_and(|entries| entries.iter().any(|e| e["payload"]["action"] == "invite_accepted")),
        "invite_accepted is audited: {audit}"
    );
    suite.shutdown().await;
    Ok(())
}

fn claims_of(session: &Value) -> Value {
    claims(session["access_token"].as_str().unwrap_or_default())
}

/// Twitter over OAuth 1.0a, as GoTrue still serves it: a signed request token at `/authorize`, the
/// browser sent to Twitter's `/oauth/authenticate`, the callback's `oauth_token` and
/// `oauth_verifier` traded (signed) for an access token, the user read from `verify_credentials`.
#[tokio::test]
async fn twitter_sign_in_goes_through_oauth_1a() -> anyhow::Result<()> {
    let provider = FakeOAuthProvider::start(CLIENT_ID, CLIENT_SECRET).await?;
    let twitter_url = format!("{}/twitter", provider.base_url());
    let suite = with_provider(Suite::builder(), "TWITTER", &twitter_url)
        .env("GOTRUE_URI_ALLOW_LIST", "http://localhost:3000/**")
        .start()
        .await?;
    let redirect = authorize(&suite, &format!("provider=twitter&redirect_to={APP}")).await?;
    assert_eq!(redirect.path(), "/twitter/oauth/authenticate");
    let request_token = query_map(&redirect)["oauth_token"].clone();

    let email = email();
    let callback_url = provider
        .twitter_authorize(&request_token, &FakeUser::new(1234, &email, false))
        .expect("the request token the suite obtained");
    let callback_url = Url::parse(&callback_url)?;
    assert_eq!(callback_url.path(), "/callback");
    let response = suite
        .get(&format!("/callback?{}", callback_url.query().unwrap_or_default()))
        .await?;
    assert_eq!(response.status(), 302);
    let fragment = fragment_map(&location(&response));
    assert!(fragment["provider_token"].starts_with("at-"), "{fragment:?}");
    let user = user_of(&suite, &fragment).await?;
    assert_eq!(user["email"], email);
    assert!(user["email_confirmed_at"].is_string(), "Twitter's emails are verified");
    let identity = &user["identities"][0];
    assert_eq!(identity["provider"], "twitter");
    assert_eq!(identity["id"], "1234");
    // What GoTrue v2.196 writes for the same answer of the same fake (compared side by side).
    assert_eq!(
        identity["identity_data"],
        json!({
            "iss": format!("{twitter_url}/1.1/account/verify_credentials.json"), "sub": "1234",
            "name": "User 1234", "email": email, "picture": "https://avatars.example/1234.png",
            "full_name": "User 1234", "user_name": "user1234", "avatar_url": "https://avatars.example/1234.png",
            "provider_id": "1234", "email_verified": true, "phone_verified": false, "preferred_username": "user1234",
        })
    );

    // A verifier for another request token is refused by Twitter: the sign-in fails visibly.
    let redirect = authorize(&suite, &format!("provider=twitter&redirect_to={APP}")).await?;
    let state_url = provider
        .twitter_authorize(
            &query_map(&redirect)["oauth_token"],
            &FakeUser::new(1, &crate::support::email(), true),
        )
        .expect("authorized");
    let forged = Url::parse(&state_url)?;
    let mut pairs = query_map(&forged);
    pairs.insert("oauth_verifier".into(), "forged".into());
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let response = suite.get(&format!("/callback?{query}")).await?;
    assert_eq!(response.status(), 302);
    let landed = query_map(&location(&response));
    assert_eq!(landed["error"], "server_error");
    assert_eq!(landed["error_description"], "Unable to retrieve access token");
    suite.shutdown().await;
    Ok(())
}
