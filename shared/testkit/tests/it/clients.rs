//! The official clients against the suite: `@supabase/auth-js` (Node) and `supabase-auth` (Python),
//! pinned in shared/testkit/clients and installed by deploy/local/test. Each script runs sign-up,
//! sign-in, refresh, get/update user, JWKS-verified claims and sign-out (and, in Node, the admin API
//! with a `service_role` key), and exits non-zero on any difference from GoTrue's answers.

use std::path::PathBuf;
use std::process::Stdio;

use auth_testkit::{Suite, test_jwk};
use serde_json::json;

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients")
}

async fn client_suite() -> anyhow::Result<Suite> {
    Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_EXTERNAL_ANONYMOUS_USERS_ENABLED", "true")
        .env("GOTRUE_MFA_PHONE_ENROLL_ENABLED", "true")
        .env("GOTRUE_MFA_PHONE_VERIFY_ENABLED", "true")
        .env("GOTRUE_JWT_KEYS", &json!([test_jwk("rsa")]).to_string())
        .start()
        .await
}

/// A `service_role` key signed with the suite's signing key (here the RSA key), as a project's is.
fn service_role_key(suite: &Suite) -> anyhow::Result<String> {
    let keys = auth_account::jwt::JwtKeys::from_config(&suite.config.jwt)?;
    auth_account::principal::service_token(&keys, &suite.config)
}

async fn run(program: PathBuf, script: PathBuf, suite: &Suite) -> anyhow::Result<()> {
    run_with(program, script, suite, &[]).await
}

/// [`run`] with more arguments after the gateway URL and the `service_role` key.
async fn run_with(program: PathBuf, script: PathBuf, suite: &Suite, extra: &[String]) -> anyhow::Result<()> {
    anyhow::ensure!(
        program.exists() || program.components().count() == 1,
        "{} is missing: run deploy/local/test (it installs the pinned clients)",
        program.display()
    );
    let output = tokio::process::Command::new(&program)
        .arg(&script)
        .arg(&suite.base_url)
        // the service_role key, for the admin API
        .arg(service_role_key(suite)?)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(output.status.success(), "{} failed:\n{stderr}", script.display());
    Ok(())
}

#[tokio::test]
async fn supabase_auth_js() -> anyhow::Result<()> {
    let node_modules = clients_dir().join("node/node_modules/@supabase/auth-js");
    anyhow::ensure!(
        node_modules.exists(),
        "@supabase/auth-js is not installed: run deploy/local/test (npm ci in shared/testkit/clients/node)"
    );
    let suite = client_suite().await?;
    let result = run("node".into(), clients_dir().join("node/client_test.mjs"), &suite).await;
    suite.shutdown().await;
    result
}

/// auth-js's experimental passkey API (`auth.passkey`, `auth.admin.passkey`), with the script
/// playing the browser's authenticator.
#[tokio::test]
async fn supabase_auth_js_passkeys() -> anyhow::Result<()> {
    let suite = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_PASSKEY_ENABLED", "true")
        .env("GOTRUE_WEBAUTHN_RP_ID", "localhost")
        .env("GOTRUE_WEBAUTHN_RP_DISPLAY_NAME", "Client tests")
        .env("GOTRUE_WEBAUTHN_RP_ORIGINS", "http://localhost:3000")
        .start()
        .await?;
    let result = run("node".into(), clients_dir().join("node/passkey_test.mjs"), &suite).await;
    suite.shutdown().await;
    result
}

/// auth-js's `signInWithOAuth` (implicit and PKCE), `exchangeCodeForSession`, `getUserIdentities`,
/// `linkIdentity` and `unlinkIdentity` with GitHub pointed at the fake provider; the script follows
/// the redirects.
/// A suite whose GitHub and Keycloak (`realm`) providers are the fake provider, with manual linking.
async fn oauth_client_suite(provider: &auth_testkit::oauth::FakeOAuthProvider, realm: &str) -> anyhow::Result<Suite> {
    let mut builder = Suite::builder()
        .env("GOTRUE_URI_ALLOW_LIST", "http://localhost:3000/**")
        .env("GOTRUE_SECURITY_MANUAL_LINKING_ENABLED", "true");
    for (name, url) in [("GITHUB", provider.base_url()), ("KEYCLOAK", realm.to_string())] {
        builder = builder
            .env(&format!("GOTRUE_EXTERNAL_{name}_ENABLED"), "true")
            .env(&format!("GOTRUE_EXTERNAL_{name}_CLIENT_ID"), "client-id")
            .env(&format!("GOTRUE_EXTERNAL_{name}_SECRET"), "client-secret")
            .env(
                &format!("GOTRUE_EXTERNAL_{name}_REDIRECT_URI"),
                "http://localhost:9999/callback",
            )
            .env(&format!("GOTRUE_EXTERNAL_{name}_URL"), &url);
    }
    builder.start().await
}

/// An ID token of the fake Keycloak realm for `subject`, verified `email`, valid ten minutes.
fn realm_id_token(
    provider: &auth_testkit::oauth::FakeOAuthProvider,
    realm: &str,
    subject: &str,
    email: &str,
) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    Ok(provider.id_token(&json!({
        "iss": realm, "sub": subject, "aud": "client-id", "exp": now + 600,
        "email": email, "email_verified": true,
    })))
}

#[tokio::test]
async fn supabase_auth_js_oauth() -> anyhow::Result<()> {
    use auth_testkit::oauth::{FakeOAuthProvider, FakeUser};
    let provider = FakeOAuthProvider::start("client-id", "client-secret").await?;
    let realm = format!("{}/realms/test", provider.base_url());
    let suite = oauth_client_suite(&provider, &realm).await?;
    let email = format!("octo-{}@example.com", uuid::Uuid::new_v4().simple());
    let user = FakeUser::new(1001, &email, true);
    let second = FakeUser::new(1002, &format!("second-{email}"), true);
    let id_token = realm_id_token(&provider, &realm, "js-kc-1", &format!("kc-{email}"))?;
    let args = [
        email.clone(),
        provider.grant(&user),
        provider.grant(&user),
        provider.grant(&second),
        id_token,
    ];
    let result = run_with("node".into(), clients_dir().join("node/oauth_test.mjs"), &suite, &args).await;
    suite.shutdown().await;
    result
}

/// supabase-auth's `sign_in_with_oauth` (PKCE), `exchange_code_for_session`, `link_identity`,
/// `unlink_identity`, `get_user_identities` and `sign_in_with_id_token`, against the fake provider.
#[tokio::test]
async fn supabase_auth_python_oauth() -> anyhow::Result<()> {
    use auth_testkit::oauth::{FakeOAuthProvider, FakeUser};
    let python = clients_dir().join("python/.venv/bin/python");
    let provider = FakeOAuthProvider::start("client-id", "client-secret").await?;
    let realm = format!("{}/realms/test", provider.base_url());
    let suite = oauth_client_suite(&provider, &realm).await?;
    let email = format!("py-octo-{}@example.com", uuid::Uuid::new_v4().simple());
    let user = FakeUser::new(2001, &email, true);
    let second = FakeUser::new(2002, &format!("second-{email}"), true);
    let id_token = realm_id_token(&provider, &realm, "py-kc-1", &format!("kc-{email}"))?;
    let args = [email.clone(), provider.grant(&user), provider.grant(&second), id_token];
    // The Python script takes the URL and then these (no service key).
    let output = tokio::process::Command::new(&python)
        .arg(clients_dir().join("python/oauth_test.py"))
        .arg(&suite.base_url)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .await?;
    suite.shutdown().await;
    anyhow::ensure!(
        output.status.success(),
        "oauth_test.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn supabase_auth_python() -> anyhow::Result<()> {
    let python = clients_dir().join("python/.venv/bin/python");
    anyhow::ensure!(
        python.exists(),
        "supabase-auth is not installed: run deploy/local/test (venv in shared/testkit/clients/python)"
    );
    let suite = client_suite().await?;
    let result = run(python, clients_dir().join("python/client_test.py"), &suite).await;
    suite.shutdown().await;
    result
}
