//! GoTrue's column encryption (`GOTRUE_SECURITY_DB_ENCRYPTION_*`) across the services: password
//! hashes (user service), TOTP secrets (mfa service) and v2 refresh-token keys (token service) are
//! stored sealed with their row's id, in GoTrue's format, and read back; values stored in the clear
//! (encryption switched on later, or rows GoTrue wrote unencrypted) keep working, and a password
//! is sealed at its next sign-in, as GoTrue re-encrypts it.

use auth_testkit::{Suite, SuiteBuilder};
use serde_json::Value;

use crate::mfa::{challenge, enroll_and_verify, now, totp_code, verify};
use crate::support::*;

const KEY: &str = "6Kl6Tcg0BKmz7Q2jHq3Mdu4xwPGfgMxKczHUOOuiqXw";

fn encrypting(builder: SuiteBuilder) -> SuiteBuilder {
    builder
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .env("GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPT", "true")
        .env("GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPTION_KEY_ID", "k1")
        .env("GOTRUE_SECURITY_DB_ENCRYPTION_ENCRYPTION_KEY", KEY)
        .env("GOTRUE_SECURITY_DB_ENCRYPTION_DECRYPTION_KEYS", &format!("k1:{KEY}"))
}

/// The column holds GoTrue's encrypted-string JSON under key `k1`, and not `clear`.
fn assert_sealed(stored: &str, clear: &str) {
    let sealed: Value = serde_json::from_str(stored).unwrap_or_default();
    assert_eq!(sealed["alg"], "aes-gcm-hkdf", "sealed: {stored}");
    assert_eq!(sealed["key_id"], "k1");
    assert!(clear.is_empty() || !stored.contains(clear));
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_read_back() -> anyhow::Result<()> {
    let suite = encrypting(Suite::builder())
        .env("GOTRUE_SECURITY_REFRESH_TOKEN_ALGORITHM_VERSION", "2")
        .env("GOTRUE_MFA_TOTP_ENROLL_ENABLED", "true")
        .env("GOTRUE_MFA_TOTP_VERIFY_ENABLED", "true")
        .start()
        .await?;
    let address = email();
    let session = sign_up(&suite, &address).await?;
    let account = user_id(&session);

    let stored: String = sqlx::query_scalar("SELECT encrypted_password FROM users WHERE id = $1")
        .bind(account)
        .fetch_one(&suite.db)
        .await?;
    assert_sealed(&stored, "");
    let signed_in = sign_in(&suite, &address).await?;
    assert!(signed_in["access_token"].is_string());

    let key: String = sqlx::query_scalar("SELECT refresh_token_hmac_key FROM sessions WHERE user_id = $1 LIMIT 1")
        .bind(account)
        .fetch_one(&suite.db)
        .await?;
    assert_sealed(&key, "");
    let refreshed = refresh_ok(&suite, signed_in["refresh_token"].as_str().unwrap_or_default()).await?;
    assert!(
        refreshed["access_token"].is_string(),
        "a sealed key still signs the session's tokens"
    );

    let (_, factor_id, secret) = enroll_and_verify(&suite, &signed_in).await?;
    let stored_secret: String = sqlx::query_scalar("SELECT secret FROM mfa_factors WHERE id = $1::uuid")
        .bind(&factor_id)
        .fetch_one(&suite.db)
        .await?;
    assert_sealed(&stored_secret, &secret);
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn values_stored_in_the_clear_keep_working_and_are_sealed_then() -> anyhow::Result<()> {
    let plain = autoconfirm_suite().await?;
    let address = email();
    let session = sign_up(&plain, &address).await?;
    let account = user_id(&session);
    let (_, factor_id, secret) = enroll_and_verify(&plain, &session).await?;
    let encrypted = encrypting(Suite::builder().share_database_with(&plain)).start().await?;

    let signed_in = sign_in(&encrypted, &address).await?;
    // The TOTP secret stored in the clear verifies, and is sealed once it has (next step's code:
    // this step's was spent on the first server).
    let challenge_id = challenge(&encrypted, &signed_in, &factor_id).await?;
    let response = verify(
        &encrypted,
        &signed_in,
        &factor_id,
        &challenge_id,
        &totp_code(&secret, now() + 30),
    )
    .await?;
    assert_eq!(response.status(), 200);
    let stored_secret: String = sqlx::query_scalar("SELECT secret FROM mfa_factors WHERE id = $1::uuid")
        .bind(&factor_id)
        .fetch_one(&encrypted.db)
        .await?;
    assert_sealed(&stored_secret, &secret);

    let stored: String = sqlx::query_scalar("SELECT encrypted_password FROM users WHERE id = $1")
        .bind(account)
        .fetch_one(&encrypted.db)
        .await?;
    assert_sealed(&stored, "");
    // Sealed, it works again on the suite that wrote it, and not under another user's id.
    sign_in(&encrypted, &address).await?;
    let other = sign_up(&encrypted, &email()).await?;
    sqlx::query("UPDATE users SET encrypted_password = $1 WHERE id = $2")
        .bind(&stored)
        .bind(user_id(&other))
        .execute(&encrypted.db)
        .await?;
    let moved = password_grant(
        &encrypted,
        other["user"]["email"].as_str().unwrap_or_default(),
        PASSWORD,
    )
    .await?;
    assert_eq!(moved.status(), 400, "a sealed hash copied to another row does not open");
    encrypted.shutdown().await;
    plain.shutdown().await;
    Ok(())
}
