//! The admin factor API (served by the MFA service): list, rename, move a phone factor, remove;
//! a removed factor's sessions fall back to AAL1.

use auth_testkit::{Suite, assert_gotrue_error};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::*;

async fn insert_factor(
    suite: &Suite,
    user_id: Uuid,
    factor_type: &str,
    status: &str,
    name: &str,
    phone: Option<&str>,
) -> anyhow::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, secret, phone) \
         VALUES ($1, $2, $3, $4::factor_type, $5::factor_status, clock_timestamp(), clock_timestamp(), 'secret-value', $6)",
    )
    .bind(id)
    .bind(user_id)
    .bind(name)
    .bind(factor_type)
    .bind(status)
    .bind(phone)
    .execute(&suite.db)
    .await?;
    Ok(id)
}

/// Marks the session as stepped up with `factor_id` (what a TOTP verification records).
async fn step_up(suite: &Suite, session_id: &str, factor_id: Uuid) -> anyhow::Result<()> {
    sqlx::query("UPDATE sessions SET aal = 'aal2', factor_id = $2 WHERE id = $1::uuid")
        .bind(session_id)
        .bind(factor_id)
        .execute(&suite.db)
        .await?;
    sqlx::query(
        "INSERT INTO mfa_amr_claims (id, session_id, created_at, updated_at, authentication_method) \
         VALUES ($1, $2::uuid, now(), now(), 'totp')",
    )
    .bind(Uuid::new_v4())
    .bind(session_id)
    .execute(&suite.db)
    .await?;
    Ok(())
}

#[tokio::test]
async fn admins_list_rename_and_remove_factors() -> anyhow::Result<()> {
    let suite = autoconfirm_suite().await?;
    let session = sign_up(&suite, &email()).await?;
    let user = user_id(&session);
    let session_id = claims(session["access_token"].as_str().unwrap_or_default())["session_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let totp = insert_factor(&suite, user, "totp", "verified", "authenticator", None).await?;
    let phone = insert_factor(&suite, user, "phone", "unverified", "", Some("15551234567")).await?;
    step_up(&suite, &session_id, totp).await?;
    let refreshed = refresh_ok(&suite, session["refresh_token"].as_str().unwrap_or_default()).await?;
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap_or_default())["aal"],
        "aal2"
    );

    let path = format!("/admin/users/{user}/factors");
    let response = suite.get(&path).await?;
    assert_gotrue_error(response, 401, "no_authorization").await;
    let factors = admin_ok(&suite, Method::GET, &path, None).await?;
    assert_eq!(factors.as_array().map(Vec::len), Some(2), "{factors}");
    assert_eq!(factors[0]["id"], totp.to_string(), "oldest first");
    assert_eq!(factors[0]["friendly_name"], "authenticator");
    assert_eq!(factors[0]["factor_type"], "totp");
    assert_eq!(factors[0]["status"], "verified");
    assert!(factors[0].get("secret").is_none(), "never the secret");
    assert_eq!(factors[1]["phone"], "15551234567");
    assert!(factors[1].get("friendly_name").is_none(), "omitted when empty");

    // Not found and malformed, as GoTrue answers them.
    let other = user_id(&sign_up(&suite, &email()).await?);
    let others_factor = insert_factor(&suite, other, "totp", "verified", "theirs", None).await?;
    for (method, path, status, code) in [
        (
            Method::GET,
            "/admin/users/nope/factors".to_string(),
            404,
            "validation_failed",
        ),
        (
            Method::GET,
            format!("/admin/users/{}/factors", Uuid::new_v4()),
            404,
            "user_not_found",
        ),
        (Method::PUT, format!("{path}/nope"), 404, "validation_failed"),
        (
            Method::PUT,
            format!("{path}/{}", Uuid::new_v4()),
            404,
            "mfa_factor_not_found",
        ),
        (
            Method::DELETE,
            format!("{path}/{others_factor}"),
            404,
            "mfa_factor_not_found",
        ),
    ] {
        let body = (method == Method::PUT).then(|| json!({"friendly_name": "x"}));
        let response = admin(&suite, method, &path, body).await?;
        assert_gotrue_error(response, status, code).await;
    }

    // Rename; a phone factor moves to a new number; a TOTP factor ignores a phone.
    let renamed = admin_ok(
        &suite,
        Method::PUT,
        &format!("{path}/{totp}"),
        Some(json!({"friendly_name": "work phone app", "phone": "+1 555 000 0000"})),
    )
    .await?;
    assert_eq!(renamed["friendly_name"], "work phone app");
    assert_eq!(renamed["phone"], "");
    let moved = admin_ok(
        &suite,
        Method::PUT,
        &format!("{path}/{phone}"),
        Some(json!({"phone": "+44 7700 900123"})),
    )
    .await?;
    assert_eq!(moved["phone"], "447700900123");
    let response = admin(
        &suite,
        Method::PUT,
        &format!("{path}/{phone}"),
        Some(json!({"phone": "not-a-number"})),
    )
    .await?;
    assert_gotrue_error(response, 400, "validation_failed").await;
    let response = admin(
        &suite,
        Method::PUT,
        &format!("{path}/{phone}"),
        Some(json!({"friendly_name": "work phone app"})),
    )
    .await?;
    assert_gotrue_error(response, 422, "mfa_factor_name_conflict").await;

    // Remove the factor the session stepped up with: the session falls back to AAL1.
    let removed = admin_ok(&suite, Method::DELETE, &format!("{path}/{totp}"), None).await?;
    assert_eq!(removed["id"], totp.to_string());
    let (aal, factor_id): (Option<String>, Option<Uuid>) =
        sqlx::query_as("SELECT aal::text, factor_id FROM sessions WHERE id = $1::uuid")
            .bind(&session_id)
            .fetch_one(&suite.db)
            .await?;
    assert_eq!((aal.as_deref(), factor_id), (Some("aal1"), None));
    let claims_left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM mfa_amr_claims WHERE session_id = $1::uuid AND authentication_method = 'totp'",
    )
    .bind(&session_id)
    .fetch_one(&suite.db)
    .await?;
    assert_eq!(claims_left, 0);
    let refreshed = refresh_ok(&suite, refreshed["refresh_token"].as_str().unwrap_or_default()).await?;
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap_or_default())["aal"],
        "aal1"
    );
    let factors = admin_ok(&suite, Method::GET, &path, None).await?;
    assert_eq!(factors.as_array().map(Vec::len), Some(1));

    let actions: Vec<(String, String)> = sqlx::query_as(
        "SELECT payload->>'action', payload->>'actor_username' FROM audit_log_entries \
         WHERE payload->>'log_type' = 'factor' ORDER BY created_at",
    )
    .fetch_all(&suite.db)
    .await?;
    let actions: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["factor_updated", "factor_updated", "factor_deleted"]);
    let entries: Value = admin_ok(&suite, Method::GET, "/admin/audit?query=type:factor", None).await?;
    assert_eq!(entries.as_array().map(Vec::len), Some(3));
    suite.shutdown().await;
    Ok(())
}
