//! The Postgres pool and the schema migrations.
//!
//! Every table lives in one schema, `DB_NAMESPACE` (default `auth`). Connections start with
//! `search_path` set to that schema, so queries and migrations name tables without a schema and the
//! same SQL serves any namespace.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

use crate::config::DbConfig;

/// The suite's migrations (`migrations/`), embedded in every binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// The newest GoTrue migration whose schema ours reproduces. A database GoTrue migrated to this
/// version (or beyond) is adopted as it is; one migrated by an older GoTrue is refused.
pub const GOTRUE_SCHEMA_VERSION: &str = "20260625000000";

/// Connection options for the configured database, with `search_path` set to the namespace.
pub fn connect_options(config: &DbConfig, application_name: &str) -> anyhow::Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(config.url.expose_secret())
        .context("DATABASE_URL is not a valid Postgres connection string")?;
    Ok(options
        .application_name(application_name)
        .options([("search_path", config.namespace.as_str())]))
}

/// How long a request's statement may wait for a row lock before failing with `55P03`; the token
/// service answers that as 409 `conflict` (GoTrue's answer to too many concurrent refreshes).
pub const LOCK_TIMEOUT: &str = "5s";

/// A pool for one process. Sized by `GOTRUE_DB_MAX_POOL_SIZE` (10 when unset: six processes share the
/// server's connection budget). Its connections carry [`LOCK_TIMEOUT`]: no request should wait on a
/// lock for longer, and setting it per connection saves a `SET LOCAL` round trip per transaction.
pub async fn connect(config: &DbConfig, application_name: &str) -> anyhow::Result<PgPool> {
    let max = if config.max_pool_size == 0 {
        10
    } else {
        config.max_pool_size
    };
    let pool = PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        .max_lifetime(config.conn_max_lifetime)
        .idle_timeout(config.conn_max_idle_time.or(Some(Duration::from_secs(600))))
        .connect_with(connect_options(config, application_name)?.options([("lock_timeout", LOCK_TIMEOUT)]))
        .await
        .context("cannot connect to Postgres (DATABASE_URL)")?;
    Ok(pool)
}

/// Applies the migrations to the namespace. Safe when several processes start together: the whole
/// run holds an advisory lock keyed by the namespace. Idempotent: applied migrations are skipped.
pub async fn migrate(config: &DbConfig) -> anyhow::Result<()> {
    let namespace = &config.namespace;
    // A dedicated connection: advisory locks belong to a session.
    let mut conn = PgConnection::connect_with(&connect_options(config, "auth_migrations")?)
        .await
        .context("cannot connect to Postgres to migrate (DATABASE_URL)")?;

    sqlx::query!(
        "SELECT pg_advisory_lock(hashtextextended('auth-suite-migrations:' || $1, 0))",
        namespace
    )
    .fetch_one(&mut conn)
    .await?;
    let result = migrate_locked(&mut conn, namespace).await;
    sqlx::query!(
        "SELECT pg_advisory_unlock(hashtextextended('auth-suite-migrations:' || $1, 0))",
        namespace
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    result
}

async fn migrate_locked(conn: &mut PgConnection, namespace: &str) -> anyhow::Result<()> {
    // The namespace was validated as a plain identifier when the configuration was loaded. An
    // identifier cannot be a bound parameter, so this statement (and the version read below) is
    // built at run time; every other statement of the suite is checked at compile time.
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS \"{namespace}\"")))
        .execute(&mut *conn)
        .await
        .with_context(|| format!("cannot create schema {namespace}"))?;
    refuse_old_gotrue_schema(conn, namespace).await?;
    MIGRATOR
        .run(&mut *conn)
        .await
        .with_context(|| format!("migrating schema {namespace} failed"))?;
    Ok(())
}

/// A schema GoTrue migrated, but to an older version than ours mirrors, lacks columns our SQL would
/// not add (it only creates what is missing). Stop with a clear message instead of failing later.
async fn refuse_old_gotrue_schema(conn: &mut PgConnection, namespace: &str) -> anyhow::Result<()> {
    let ours: bool = sqlx::query_scalar!(
        r#"SELECT to_regclass($1) IS NOT NULL AS "exists!""#,
        format!("\"{namespace}\"._sqlx_migrations")
    )
    .fetch_one(&mut *conn)
    .await?;
    let gotrue: bool = sqlx::query_scalar!(
        r#"SELECT to_regclass($1) IS NOT NULL AS "exists!""#,
        format!("\"{namespace}\".schema_migrations")
    )
    .fetch_one(&mut *conn)
    .await?;
    if ours || !gotrue {
        return Ok(());
    }
    let (rows, newest): (i64, Option<String>) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT count(*), max(version) FROM \"{namespace}\".schema_migrations"
    )))
    .fetch_one(&mut *conn)
    .await?;
    match newest {
        Some(newest) if rows > 0 && newest.as_str() < GOTRUE_SCHEMA_VERSION => anyhow::bail!(
            "schema {namespace} was migrated by an older GoTrue (newest migration {newest}); \
             migrate it with GoTrue v2.196.0 or later first, then start the suite"
        ),
        _ => Ok(()),
    }
}
