//! `auth-bench admin-users`: the admin user list and lookup with a million users (GET /admin/users
//! first page, a `filter=`, a deep offset page, keyset steps from random depths, and
//! GET /admin/users/{id}).
//!
//! Users (each with an email identity, as a sign-up leaves them) are inserted with SQL, then the
//! tables are analysed. Requests go one at a time: this measures the latency of each query shape,
//! not throughput.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use auth_testkit::LaunchedSuite;
use auth_testkit::jwt::service_role_token;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;

use crate::percentile_ms;

/// Timed requests per scenario (after a warm-up of a tenth as many).
const SAMPLES: usize = 200;
/// The slow shapes (deep offset, a filter matching everyone) get fewer.
const SLOW_SAMPLES: usize = 10;

/// Makes the path of the next request of a scenario.
type NextPath = Box<dyn FnMut() -> String>;

struct Scenario {
    name: &'static str,
    latencies: Vec<Duration>,
    errors: usize,
}

pub async fn run(bin_dir: &Path, users: u64) -> anyhow::Result<()> {
    let suite = LaunchedSuite::start(bin_dir, &[("GOTRUE_LOG_LEVEL", "warn".into())]).await?;
    let seeding = Instant::now();
    seed(&suite, users).await?;
    let seeded_in = seeding.elapsed();

    let http = reqwest::Client::new();
    let token = service_role_token();
    let ids: Vec<String> = sqlx::query_scalar("SELECT id::text FROM users TABLESAMPLE SYSTEM (1) LIMIT $1")
        .bind(i64::try_from(SAMPLES * 2).unwrap_or(i64::MAX))
        .fetch_all(&suite.db)
        .await?;
    // Any user's (created_at, id) is a keyset position; these are spread over the whole list.
    let cursors: Vec<String> = sqlx::query_scalar(
        "SELECT json_build_object('created_at', created_at, 'id', id)::text FROM users TABLESAMPLE SYSTEM (1) LIMIT $1",
    )
    .bind(i64::try_from(SAMPLES * 2).unwrap_or(i64::MAX))
    .fetch_all(&suite.db)
    .await?;
    let cursors: Vec<String> = cursors.iter().map(|c| URL_SAFE_NO_PAD.encode(c)).collect();
    let deep_page = users / 2 / 50;

    let mut scenarios = Vec::new();
    let plan: Vec<(&'static str, usize, NextPath)> = vec![
        (
            "first page (page=1, per_page=50, X-Total-Count)",
            SAMPLES,
            Box::new(|| "/admin/users?page=1&per_page=50".into()),
        ),
        (
            "filter matching one user (filter=user<n>@)",
            SAMPLES,
            Box::new(move || format!("/admin/users?filter=user{}%40", rand::rng().random_range(1..=users))),
        ),
        (
            "GET /admin/users/{id}",
            SAMPLES,
            Box::new({
                let ids = ids.clone();
                move || format!("/admin/users/{}", ids[rand::rng().random_range(0..ids.len())])
            }),
        ),
        (
            "keyset step from a random depth (cursor=, limit=50)",
            SAMPLES,
            Box::new({
                let cursors = cursors.clone();
                move || {
                    format!(
                        "/admin/users?limit=50&cursor={}",
                        cursors[rand::rng().random_range(0..cursors.len())]
                    )
                }
            }),
        ),
        (
            "deep offset page (the middle of the list)",
            SLOW_SAMPLES,
            Box::new(move || format!("/admin/users?page={deep_page}&per_page=50")),
        ),
        (
            "filter matching every user (filter=bench.example)",
            SLOW_SAMPLES,
            Box::new(|| "/admin/users?filter=bench.example".into()),
        ),
    ];
    for (name, samples, mut path) in plan {
        let mut scenario = Scenario {
            name,
            latencies: Vec::with_capacity(samples),
            errors: 0,
        };
        for round in 0..samples + samples / 10 {
            let url = suite.url(&path());
            let started = Instant::now();
            let ok = http
                .get(url)
                .bearer_auth(&token)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            let took = started.elapsed();
            if round < samples / 10 {
                continue;
            }
            scenario.latencies.push(took);
            if !ok {
                scenario.errors += 1;
            }
        }
        scenario.latencies.sort();
        scenarios.push(scenario);
    }

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = format!(
        "machine: {cores} cores; {users} users (+ identities) seeded in {:.0} s; Postgres and the load \
         generator on the same machine; one request at a time\n\n\
         | request | samples | p50 ms | p95 ms | max ms | errors |\n|---|---|---|---|---|---|\n",
        seeded_in.as_secs_f64()
    );
    for s in &scenarios {
        out.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {} |\n",
            s.name,
            s.latencies.len(),
            percentile_ms(&s.latencies, 0.50),
            percentile_ms(&s.latencies, 0.95),
            percentile_ms(&s.latencies, 1.0),
            s.errors
        ));
    }
    #[allow(clippy::print_stdout)]
    {
        print!("{out}");
    }
    suite.shutdown().await?;
    Ok(())
}

/// `count` confirmed email users, one second apart in creation time, each with its email identity
/// and a `full_name`, inserted in batches; then the tables are analysed as autovacuum would.
async fn seed(suite: &LaunchedSuite, count: u64) -> anyhow::Result<()> {
    const BATCH: u64 = 250_000;
    let mut start = 1;
    while start <= count {
        let end = (start + BATCH - 1).min(count);
        sqlx::query(
            "WITH inserted AS ( \
               INSERT INTO users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, \
                 raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_anonymous, is_sso_user, \
                 confirmation_token, recovery_token, email_change_token_new, email_change) \
               SELECT '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated', \
                 'user' || n || '@bench.example', '', now(), '{\"provider\":\"email\",\"providers\":[\"email\"]}', \
                 jsonb_build_object('full_name', 'Person ' || n), now() - make_interval(secs => $2 - n), \
                 now() - make_interval(secs => $2 - n), false, false, '', '', '', '' \
               FROM generate_series($1::bigint, $3::bigint) AS n \
               RETURNING id, email, created_at) \
             INSERT INTO identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at) \
             SELECT id::text, id, jsonb_build_object('sub', id::text, 'email', email, 'email_verified', true), \
               'email', created_at, created_at, created_at FROM inserted",
        )
        .bind(i64::try_from(start)?)
        .bind(i64::try_from(count)? as f64)
        .bind(i64::try_from(end)?)
        .execute(&suite.db)
        .await
        .with_context(|| format!("seeding users {start}..={end}"))?;
        start = end + 1;
    }
    sqlx::query("VACUUM ANALYZE users").execute(&suite.db).await?;
    sqlx::query("VACUUM ANALYZE identities").execute(&suite.db).await?;
    Ok(())
}
