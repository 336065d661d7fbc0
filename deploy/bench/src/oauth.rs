//! `auth-bench oauth`: the external sign-in path. Each flow is what a browser does: `GET
//! /authorize?provider=github` (the flow recorded, a 302 to the provider), then `GET /callback` with
//! a code the fake provider granted: the code exchange and the provider's user API (two calls to
//! the in-process fake provider), the account found (returning users, after a first pass that
//! creates them), the flow finished and a session issued, a 302 with the tokens. Reports flows/s
//! and p50/p95/p99 with 20 clients; with `--target URL`, the same against another server (GoTrue)
//! configured with `GOTRUE_EXTERNAL_GITHUB_URL=http://127.0.0.1:<--provider-port>`, client id
//! `bench-client`, secret `bench-secret`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use auth_testkit::LaunchedSuite;
use auth_testkit::oauth::{FakeOAuthProvider, FakeUser};

use crate::sessions::{Phase, run_phase};

const CLIENT_ID: &str = "bench-client";
const CLIENT_SECRET: &str = "bench-secret";
const CLIENTS: usize = 20;
const USERS: usize = 200;
const APP: &str = "http://localhost:3000/welcome";

/// One sign-in through `base`; whether it ended with tokens in the app's URL.
async fn flow(http: &reqwest::Client, base: &str, provider: &FakeOAuthProvider, user: &FakeUser) -> bool {
    let Ok(to_provider) = http
        .get(format!("{base}/authorize?provider=github&redirect_to={APP}"))
        .send()
        .await
    else {
        return false;
    };
    let state = to_provider
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| url::Url::parse(l).ok())
        .and_then(|u| u.query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned()));
    let Some(state) = state else { return false };
    let code = provider.grant(user);
    let Ok(back) = http
        .get(format!("{base}/callback?code={code}&state={state}"))
        .send()
        .await
    else {
        return false;
    };
    back.status() == 302
        && back
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .is_some_and(|l| l.contains("access_token="))
}

async fn measure(
    http: &reqwest::Client,
    base: &str,
    provider: &FakeOAuthProvider,
    users: &Arc<Vec<FakeUser>>,
    duration: Duration,
) -> anyhow::Result<Phase> {
    // First pass: every account is created, so the measured flows are returning users'.
    for user in users.iter() {
        anyhow::ensure!(
            flow(http, base, provider, user).await,
            "a first sign-in through {base} failed"
        );
    }
    let states: Vec<usize> = (0..CLIENTS).collect();
    let (http, base, provider, users) = (http.clone(), base.to_string(), provider.clone(), users.clone());
    Ok(run_phase(
        "OAuth sign-in (authorize + callback)",
        CLIENTS,
        duration,
        states,
        move |i: usize| {
            let (http, base, provider, users) = (http.clone(), base.clone(), provider.clone(), users.clone());
            async move {
                let ok = flow(&http, &base, &provider, &users[i % users.len()]).await;
                (i + CLIENTS, ok)
            }
        },
    )
    .await)
}

pub async fn run(bin_dir: &Path, seconds: u64, provider_port: u16, target: Option<String>) -> anyhow::Result<()> {
    let duration = Duration::from_secs(seconds);
    let provider = FakeOAuthProvider::start_on(provider_port, CLIENT_ID, CLIENT_SECRET).await?;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let users: Arc<Vec<FakeUser>> = Arc::new(
        (0..USERS)
            .map(|i| FakeUser::new(700_000 + i as i64, &format!("oauth-bench-{i}-{tag}@example.com"), true))
            .collect(),
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(CLIENTS * 2)
        .build()?;

    let settings = [
        ("GOTRUE_LOG_LEVEL", "warn".to_string()),
        ("GOTRUE_URI_ALLOW_LIST", "http://localhost:3000/**".to_string()),
        ("GOTRUE_EXTERNAL_GITHUB_ENABLED", "true".to_string()),
        ("GOTRUE_EXTERNAL_GITHUB_CLIENT_ID", CLIENT_ID.to_string()),
        ("GOTRUE_EXTERNAL_GITHUB_SECRET", CLIENT_SECRET.to_string()),
        (
            "GOTRUE_EXTERNAL_GITHUB_REDIRECT_URI",
            "http://localhost:9999/callback".to_string(),
        ),
        ("GOTRUE_EXTERNAL_GITHUB_URL", provider.base_url()),
    ];
    let suite = LaunchedSuite::start(bin_dir, &settings).await?;
    let ours = measure(&http, &suite.base_url, &provider, &users, duration).await?;
    suite.shutdown().await?;
    let theirs = match &target {
        Some(url) => Some(measure(&http, url, &provider, &users, duration).await?),
        None => None,
    };

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = String::new();
    {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "machine: {cores} cores; {seconds} s; {CLIENTS} clients; {USERS} returning GitHub users; fake provider in the load generator\n"
        );
        let _ = writeln!(out, "| server | flows/s | p50 ms | p95 ms | p99 ms | errors |");
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        let mut rows = vec![("suite", &ours)];
        if let Some(theirs) = &theirs {
            rows.push(("target", theirs));
        }
        for (name, phase) in rows {
            let _ = writeln!(
                out,
                "| {name} | {:.1} | {:.2} | {:.2} | {:.2} | {} |",
                phase.per_second(),
                phase.percentile(0.50),
                phase.percentile(0.95),
                phase.percentile(0.99),
                phase.errors
            );
        }
        if let Some(theirs) = &theirs {
            let _ = writeln!(
                out,
                "\nsuite ÷ target: {:.2}",
                ours.per_second() / theirs.per_second().max(f64::MIN_POSITIVE)
            );
        }
    }
    #[allow(clippy::print_stdout)]
    {
        print!("{out}");
    }
    Ok(())
}
