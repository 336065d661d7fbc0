//! `auth-bench sessions --target URL`: the same workloads against this suite and against any
//! GoTrue-compatible server (GoTrue itself, configured with the same `GOTRUE_*` variables), one after
//! the other in one run, on one machine, with the same clients and durations, printed side by side
//! with the ratio.
//!
//!     auth-bench sessions --target http://127.0.0.1:9999 \
//!         [--target-jwt-secret SECRET]     # the target's GOTRUE_JWT_SECRET (default: $GOTRUE_JWT_SECRET)
//!         [--target-db postgres://…]       # the target's database: seeded users are removed afterwards
//!         [--seconds N]
//!
//! Users are seeded the way any GoTrue accepts them, through its admin API (`POST /admin/users` with a
//! `service_role` token signed with the target's secret), on both servers alike. Then, per server:
//! password sign-ins (8 clients), refreshes (50 clients, each following its own token chain) and
//! `GET /user` (50 clients).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use auth_testkit::LaunchedSuite;
use auth_testkit::jwt::{TEST_JWT_SECRET, sign_hs256};
use serde_json::{Value, json};

use crate::sessions::{self, CLIENTS, PASSWORD, Phase, SIGN_IN_CLIENTS, USERS};

/// The target and how to reach its admin API and database.
pub struct Target {
    pub url: String,
    pub jwt_secret: String,
    pub database_url: Option<String>,
}

impl Target {
    /// From `--target`, `--target-jwt-secret` (or `$GOTRUE_JWT_SECRET`) and `--target-db`.
    pub fn from_args() -> anyhow::Result<Option<Self>> {
        let Some(url) = crate::text_option("--target") else {
            return Ok(None);
        };
        let jwt_secret = crate::text_option("--target-jwt-secret")
            .or_else(|| std::env::var("GOTRUE_JWT_SECRET").ok())
            .context("--target needs the target's JWT secret: --target-jwt-secret or $GOTRUE_JWT_SECRET")?;
        Ok(Some(Self {
            url: url.trim_end_matches('/').to_string(),
            jwt_secret,
            database_url: crate::text_option("--target-db"),
        }))
    }
}

/// The three workloads measured on one server.
struct Workloads {
    sign_in: Phase,
    refresh: Phase,
    get_user: Phase,
}

/// An admin token for a server whose JWT secret is `secret`.
fn service_role(secret: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    sign_hs256(&json!({"role": "service_role", "iat": now, "exp": now + 3600}), secret)
}

/// Creates confirmed users with a password through the admin API; returns their addresses.
async fn seed(http: &reqwest::Client, base: &str, admin: &str, tag: &str) -> anyhow::Result<Vec<String>> {
    let mut emails = Vec::new();
    for i in 0..USERS {
        let email = format!("bench-{tag}-{i}@example.com");
        let response = http
            .post(format!("{base}/admin/users"))
            .bearer_auth(admin)
            .json(&json!({"email": email, "password": PASSWORD, "email_confirm": true}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 200,
            "seeding {base}: POST /admin/users answered {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
        emails.push(email);
    }
    Ok(emails)
}

async fn sign_in(http: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<Value> {
    let response = http
        .post(format!("{base}/token?grant_type=password"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(response.status() == 200, "sign-in at {base}: {}", response.status());
    Ok(response.json().await?)
}

async fn measure(
    http: &reqwest::Client,
    base: &str,
    emails: &[String],
    duration: Duration,
) -> anyhow::Result<Workloads> {
    let sign_in_phase = sessions::sign_in_phase(http, base, emails, duration).await;
    let mut refresh_tokens = Vec::new();
    for email in emails {
        let session = sign_in(http, base, email).await?;
        refresh_tokens.push(session["refresh_token"].as_str().unwrap_or_default().to_string());
    }
    let refresh = sessions::refresh_phase(http, base, refresh_tokens, duration).await;
    let mut access_tokens = Vec::new();
    for email in emails {
        let session = sign_in(http, base, email).await?;
        access_tokens.push(session["access_token"].as_str().unwrap_or_default().to_string());
    }
    let get_user = sessions::get_user_phase(http, base, access_tokens, duration).await;
    Ok(Workloads {
        sign_in: sign_in_phase,
        refresh,
        get_user,
    })
}

/// Removes the seeded users from the target's database (GoTrue's schema: identities and sessions go
/// with them).
async fn clean_up(database_url: &str, tag: &str) -> anyhow::Result<u64> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await
        .context("--target-db")?;
    let removed = sqlx::query("DELETE FROM auth.users WHERE email LIKE $1")
        .bind(format!("bench-{tag}-%"))
        .execute(&pool)
        .await?
        .rows_affected();
    pool.close().await;
    Ok(removed)
}

pub async fn run(bin_dir: &Path, seconds: u64, target: Target) -> anyhow::Result<()> {
    let duration = Duration::from_secs(seconds);
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let http = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS * 2).build()?;

    let suite = LaunchedSuite::start(bin_dir, &[("GOTRUE_LOG_LEVEL", "warn".into())]).await?;
    let suite_users = seed(&http, &suite.base_url, &service_role(TEST_JWT_SECRET), &tag).await?;
    let ours = measure(&http, &suite.base_url, &suite_users, duration).await?;
    suite.shutdown().await?;

    let target_users = seed(&http, &target.url, &service_role(&target.jwt_secret), &tag).await?;
    let theirs = measure(&http, &target.url, &target_users, duration).await;
    let removed = match &target.database_url {
        Some(url) => Some(clean_up(url, &tag).await?),
        None => None,
    };
    let theirs = theirs?;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = String::new();
    {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "machine: {cores} cores; {seconds} s per phase; the suite first, then {}; same clients, same load generator\n",
            target.url
        );
        let _ = writeln!(
            out,
            "| workload | clients | suite req/s | target req/s | suite ÷ target | suite p50/p99 ms | target p50/p99 ms | errors (suite/target) |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for (a, b, clients) in [
            (&ours.sign_in, &theirs.sign_in, SIGN_IN_CLIENTS),
            (&ours.refresh, &theirs.refresh, CLIENTS),
            (&ours.get_user, &theirs.get_user, CLIENTS),
        ] {
            let _ = writeln!(
                out,
                "| {} | {clients} | {:.1} | {:.1} | {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {} / {} |",
                a.name,
                a.per_second(),
                b.per_second(),
                a.per_second() / b.per_second().max(f64::MIN_POSITIVE),
                a.percentile(0.50),
                a.percentile(0.99),
                b.percentile(0.50),
                b.percentile(0.99),
                a.errors,
                b.errors
            );
        }
        let _ = writeln!(
            out,
            "\nPassword sign-in is bound by the hash: the suite verifies argon2id (19 MiB, t=2), GoTrue bcrypt (cost 10)."
        );
        if let Some(removed) = removed {
            let _ = writeln!(out, "{removed} seeded users removed from the target's database.");
        }
    }
    #[allow(clippy::print_stdout)]
    {
        print!("{out}");
    }
    Ok(())
}
