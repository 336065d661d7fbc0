//! Load benchmark of the whole suite, as users run it: the six release binaries under the launcher,
//! on the local Postgres and NATS, driven over HTTP from this process.
//!
//!     cargo build --release --workspace --bins && target/release/auth-bench [--seconds N]
//!
//! Reports, in one run: password sign-ins/s next to the hash-bound limit measured on this machine in
//! the same run (cores ÷ the time of one argon2id verification), refreshes/s and `GET /user`/s, each
//! with p50/p95/p99 latency, and the peak memory (VmHWM) of every process.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const PASSWORD: &str = "bench-password-123";
const SIGN_IN_CLIENTS: usize = 8;
const CLIENTS: usize = 50;
const USERS: usize = 50;

struct Phase {
    name: &'static str,
    count: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    fn per_second(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index].as_secs_f64() * 1000.0
    }
}

/// Runs `clients` loops of `request` for `duration`; each loop keeps its own state (e.g. a refresh token).
async fn run_phase<S, F, Fut>(
    name: &'static str,
    clients: usize,
    duration: Duration,
    states: Vec<S>,
    request: F,
) -> Phase
where
    S: Send + 'static,
    F: Fn(S) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (S, bool)> + Send,
{
    let request = Arc::new(request);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for (index, state) in states.into_iter().enumerate().take(clients) {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let _ = index;
            let mut state = state;
            let mut latencies = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                let (next, ok) = request(state).await;
                state = next;
                if ok {
                    latencies.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in futures::future::join_all(tasks).await {
        let (l, e) = task.expect("bench task");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Phase {
        name,
        count: latencies.len(),
        errors,
        elapsed,
        latencies,
    }
}

/// Peak resident memory of a process, in MiB (`VmHWM`).
fn peak_memory_mib(pid: u64) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The hash-bound limit: how many argon2id verifications per second the cores can do at most.
fn hash_bound_limit() -> anyhow::Result<(f64, f64)> {
    let hash = auth_core::password::hash_blocking(PASSWORD)?;
    let rounds = 20;
    let started = Instant::now();
    for _ in 0..rounds {
        auth_core::password::verify_blocking(PASSWORD, &hash)?;
    }
    let one = started.elapsed().as_secs_f64() / f64::from(rounds);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    Ok((one * 1000.0, cores / one))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10);
    let duration = Duration::from_secs(seconds);
    let bin_dir: PathBuf = std::env::current_exe()?
        .parent()
        .context("binary directory")?
        .to_path_buf();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let database = format!("auth_bench_{}", &unique[..12]);
    auth_testkit::create_database(&database).await?;
    let env_file = std::env::temp_dir().join(format!("auth-bench-{unique}.env"));
    std::fs::write(
        &env_file,
        format!(
            "DATABASE_URL={}\nPORT=0\nGOTRUE_API_HOST=127.0.0.1\nAUTH_NATS_PREFIX=bench{}\n\
             GOTRUE_SITE_URL=http://localhost:3000\nAPI_EXTERNAL_URL=http://localhost:9999\n\
             GOTRUE_JWT_SECRET=bench-secret-0123456789-0123456789-0123\nGOTRUE_MAILER_AUTOCONFIRM=true\n\
             GOTRUE_DB_MAX_POOL_SIZE=20\nGOTRUE_LOG_LEVEL=warn\n",
            auth_testkit::database_url_for(&database),
            &unique[..8],
        ),
    )?;

    let mut launcher = Command::new(bin_dir.join("auth-launcher"))
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--env-file")
        .arg(&env_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("auth-launcher (build with: cargo build --release --workspace --bins)")?;
    let mut stdout = BufReader::new(launcher.stdout.take().context("stdout")?).lines();
    let ready: Value = loop {
        let line = stdout
            .next_line()
            .await?
            .context("launcher exited before the suite was ready")?;
        if let Ok(value) = serde_json::from_str::<Value>(&line)
            && value.get("ready").is_some()
        {
            break value;
        }
    };
    let base = ready["ready"].as_str().context("gateway URL")?.to_string();
    let http = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS * 2).build()?;

    let (verify_ms, hash_limit) = tokio::task::spawn_blocking(hash_bound_limit).await??;

    // Seed users, one session each.
    let mut sessions = Vec::new();
    for i in 0..USERS {
        let email = format!("bench-{i}-{}@example.com", &unique[..6]);
        let response: Value = http
            .post(format!("{base}/signup"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        sessions.push((email, response));
    }
    let emails: Vec<String> = sessions.iter().map(|(e, _)| e.clone()).collect();

    let sign_in = {
        let (http, base) = (http.clone(), base.clone());
        let states: Vec<(usize, Vec<String>)> = (0..SIGN_IN_CLIENTS).map(|i| (i, emails.clone())).collect();
        run_phase(
            "password sign-in",
            SIGN_IN_CLIENTS,
            duration,
            states,
            move |(i, emails)| {
                let (http, base) = (http.clone(), base.clone());
                async move {
                    let email = &emails[i % emails.len()];
                    let ok = http
                        .post(format!("{base}/token?grant_type=password"))
                        .json(&json!({"email": email, "password": PASSWORD}))
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200);
                    ((i + SIGN_IN_CLIENTS, emails), ok)
                }
            },
        )
        .await
    };

    let refresh = {
        let (http, base) = (http.clone(), base.clone());
        let states: Vec<String> = sessions
            .iter()
            .map(|(_, s)| s["refresh_token"].as_str().unwrap_or_default().to_string())
            .collect();
        run_phase("refresh", CLIENTS, duration, states, move |token: String| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let response = http
                    .post(format!("{base}/token?grant_type=refresh_token"))
                    .json(&json!({"refresh_token": token}))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 200 => match r.json::<Value>().await {
                        Ok(body) => (body["refresh_token"].as_str().unwrap_or_default().to_string(), true),
                        Err(_) => (token, false),
                    },
                    _ => (token, false),
                }
            }
        })
        .await
    };

    // Fresh sessions for GET /user (the refresh phase rotated the seeded ones).
    let mut access_tokens = Vec::new();
    for email in &emails {
        let session: Value = http
            .post(format!("{base}/token?grant_type=password"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        access_tokens.push(session["access_token"].as_str().unwrap_or_default().to_string());
    }
    let get_user = {
        let (http, base) = (http.clone(), base.clone());
        run_phase("GET /user", CLIENTS, duration, access_tokens, move |token: String| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let ok = http
                    .get(format!("{base}/user"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                (token, ok)
            }
        })
        .await
    };

    let mut memory = BTreeMap::new();
    if let Some(processes) = ready["processes"].as_object() {
        for (name, pid) in processes {
            if let Some(mib) = pid.as_u64().and_then(peak_memory_mib) {
                memory.insert(name.clone(), mib);
            }
        }
    }

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let report = |out: &mut String| {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "machine: {cores} cores; {seconds} s per phase; Postgres and NATS on the same machine"
        );
        let _ = writeln!(
            out,
            "argon2id verify: {verify_ms:.1} ms → hash-bound limit {hash_limit:.1} sign-ins/s\n"
        );
        let _ = writeln!(out, "| phase | clients | req/s | p50 ms | p95 ms | p99 ms | errors |");
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for (phase, clients) in [(&sign_in, SIGN_IN_CLIENTS), (&refresh, CLIENTS), (&get_user, CLIENTS)] {
            let _ = writeln!(
                out,
                "| {} | {clients} | {:.1} | {:.2} | {:.2} | {:.2} | {} |",
                phase.name,
                phase.per_second(),
                phase.percentile(0.50),
                phase.percentile(0.95),
                phase.percentile(0.99),
                phase.errors
            );
        }
        let _ = writeln!(
            out,
            "\nsign-in at {:.0}% of the hash-bound limit",
            100.0 * sign_in.per_second() / hash_limit
        );
        let _ = writeln!(out, "\n| process | peak memory (MiB) |\n|---|---|");
        for (name, mib) in &memory {
            let _ = writeln!(out, "| {name} | {mib:.1} |");
        }
    };
    let mut out = String::new();
    report(&mut out);
    #[allow(clippy::print_stdout)]
    {
        print!("{out}");
    }

    let _ = launcher.kill().await;
    let _ = std::fs::remove_file(&env_file);
    auth_testkit::drop_database(&database).await?;
    Ok(())
}
