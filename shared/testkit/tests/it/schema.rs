//! The migrations: GoTrue's `auth` schema fact for fact, idempotent, safe under concurrency,
//! honouring DB_NAMESPACE, runnable by a plain database owner.

use auth_core::config::DbConfig;
use auth_testkit::{admin_execute, create_database, create_database_owned_by, database_url_for, drop_database};
use secrecy::SecretString;
use sqlx::Executor;

const SCHEMA_FACTS: &str = include_str!("schema_facts.sql");
const GOTRUE_SCHEMA: &str = include_str!("fixtures/gotrue_schema.txt");

fn db_config(url: String, namespace: &str) -> DbConfig {
    DbConfig {
        url: SecretString::from(url),
        namespace: namespace.to_string(),
        max_pool_size: 2,
        conn_max_lifetime: None,
        conn_max_idle_time: None,
    }
}

fn fresh_name(tag: &str) -> String {
    format!("auth_test_{tag}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Fails with the facts that differ from GoTrue's, if any.
fn ensure_gotrue_schema(facts: &str) -> anyhow::Result<()> {
    if facts == GOTRUE_SCHEMA {
        return Ok(());
    }
    let expected: Vec<&str> = GOTRUE_SCHEMA.lines().collect();
    let actual: Vec<&str> = facts.lines().collect();
    let missing: Vec<_> = expected.iter().filter(|l| !actual.contains(l)).collect();
    let extra: Vec<_> = actual.iter().filter(|l| !expected.contains(l)).collect();
    anyhow::bail!("schema differs from GoTrue's\nmissing: {missing:#?}\nextra: {extra:#?}")
}

async fn schema_facts(config: &DbConfig) -> anyhow::Result<String> {
    let pool = auth_core::db::connect(config, "schema_test").await?;
    let facts: Vec<String> = sqlx::query_scalar(SCHEMA_FACTS)
        .bind(&config.namespace)
        .fetch_all(&pool)
        .await?;
    pool.close().await;
    Ok(facts.join("\n") + "\n")
}

#[tokio::test]
async fn schema_is_gotrue_fact_for_fact_and_idempotent() -> anyhow::Result<()> {
    let name = fresh_name("schema");
    create_database(&name).await?;
    let config = db_config(database_url_for(&name), "auth");
    auth_core::db::migrate(&config).await?;
    ensure_gotrue_schema(&schema_facts(&config).await?)?;

    // again: nothing to do, nothing changes
    auth_core::db::migrate(&config).await?;
    ensure_gotrue_schema(&schema_facts(&config).await?)?;

    // the suite's own tables exist beside GoTrue's, and GoTrue's migrations are recorded as applied
    let pool = auth_core::db::connect(&config, "schema_test").await?;
    for table in [
        "outbox_messages",
        "notification_deliveries",
        "send_rate_limits",
        "suite_otp_failures",
        "suite_totp_accepted_steps",
        "suite_mfa_failures",
    ] {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(format!("auth.{table}"))
            .fetch_one(&pool)
            .await?;
        assert!(exists, "{table}");
    }
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM schema_migrations")
        .fetch_one(&pool)
        .await?;
    assert_eq!(recorded, 70);
    pool.close().await;
    drop_database(&name).await
}

#[tokio::test]
async fn sql_helpers_read_postgrest_claims() -> anyhow::Result<()> {
    let name = fresh_name("helpers");
    create_database(&name).await?;
    let config = db_config(database_url_for(&name), "auth");
    auth_core::db::migrate(&config).await?;
    let pool = auth_core::db::connect(&config, "schema_test").await?;
    let mut conn = pool.acquire().await?;
    conn.execute(r#"SET request.jwt.claims = '{"sub":"8c5e2c47-4c0e-4a53-9b6a-6bd2b7f3b0a1","role":"authenticated","email":"a@example.com"}'"#).await?;
    let row: (uuid::Uuid, String, String, serde_json::Value) =
        sqlx::query_as("SELECT auth.uid(), auth.role(), auth.email(), auth.jwt()")
            .fetch_one(&mut *conn)
            .await?;
    assert_eq!(row.0.to_string(), "8c5e2c47-4c0e-4a53-9b6a-6bd2b7f3b0a1");
    assert_eq!(row.1, "authenticated");
    assert_eq!(row.2, "a@example.com");
    assert_eq!(row.3["role"], "authenticated");
    drop(conn);
    pool.close().await;
    drop_database(&name).await
}

#[tokio::test]
async fn concurrent_starts_migrate_once() -> anyhow::Result<()> {
    let name = fresh_name("concurrent");
    create_database(&name).await?;
    let config = db_config(database_url_for(&name), "auth");
    // six processes starting together
    let runs = (0..6).map(|_| auth_core::db::migrate(&config));
    for result in futures::future::join_all(runs).await {
        result?;
    }
    ensure_gotrue_schema(&schema_facts(&config).await?)?;
    drop_database(&name).await
}

#[tokio::test]
async fn namespace_and_plain_owner_are_honoured() -> anyhow::Result<()> {
    // a role with no superuser power and no Supabase roles anywhere, owning its database
    let role = fresh_name("owner");
    let name = fresh_name("owned");
    admin_execute(&format!(
        "CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
    ))
    .await?;
    create_database_owned_by(&name, Some(&role)).await?;
    let url = database_url_for(&name).replacen("postgres@", &format!("{role}@"), 1);
    let config = db_config(url, "tenant_auth");
    let outcome = async {
        auth_core::db::migrate(&config).await?;
        ensure_gotrue_schema(&schema_facts(&config).await?)?;
        let pool = auth_core::db::connect(&config, "schema_test").await?;
        let in_auth: bool = sqlx::query_scalar("SELECT to_regnamespace('auth') IS NOT NULL")
            .fetch_one(&pool)
            .await?;
        pool.close().await;
        anyhow::ensure!(!in_auth, "nothing may be created outside DB_NAMESPACE");
        Ok(())
    }
    .await;
    drop_database(&name).await?;
    admin_execute(&format!("DROP ROLE IF EXISTS \"{role}\"")).await?;
    outcome
}
