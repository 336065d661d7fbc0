//! `auth-bench sessions`: the request path. Reports, in one run: password sign-ins/s next to the hash-bound limit measured on this machine in
//! the same run (cores ÷ the time of one argon2id verification), refreshes/s, `GET /user`/s and TOTP
//! step-ups/s (`/factors/{id}/challenge` + `/verify`), each with p50/p95/p99 latency, the CPU time each process (and Postgres, NATS and the load generator
//! itself) spent per request in each phase, and the peak memory (VmHWM) of every process.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_testkit::LaunchedSuite;
use serde_json::{Value, json};

use crate::percentile_ms;

pub(crate) const PASSWORD: &str = "bench-password-123";
pub(crate) const SIGN_IN_CLIENTS: usize = 8;
pub(crate) const CLIENTS: usize = 50;
pub(crate) const USERS: usize = 50;
/// TOTP step-ups run by this many clients, each over its own users.
const TOTP_CLIENTS: usize = 20;
/// A factor accepts each time step once, and at most three steps are valid at a time (±1), so
/// every seeded factor serves three verifications; this many users per second of the phase.
const TOTP_USERS_PER_SECOND: u64 = 150;

pub(crate) struct Phase {
    pub(crate) name: &'static str,
    pub(crate) count: usize,
    pub(crate) errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    pub(crate) fn per_second(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }

    pub(crate) fn percentile(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies, p)
    }
}

/// Runs `clients` loops of `request` for `duration`; each loop keeps its own state (e.g. a refresh token).
pub(crate) async fn run_phase<S, F, Fut>(
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
        match task {
            Ok((l, e)) => {
                latencies.extend(l);
                errors += e;
            }
            // A client task that died counts as one error; its latencies are lost.
            Err(_) => errors += 1,
        }
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

/// Linux reports process CPU time in clock ticks of `USER_HZ`, which is 100 on every supported kernel.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU ticks (user + system) of a process, from `/proc/<pid>/stat`.
fn cpu_ticks(pid: &str) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    // Fields after the command: state is field 3; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// CPU ticks so far of each suite process (by name), of all Postgres and NATS processes, and of
/// this load generator.
fn cpu_sample(suite: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut sample = BTreeMap::new();
    for (name, pid) in suite {
        if let Some((_, ticks)) = cpu_ticks(&pid.to_string()) {
            sample.insert(name.clone(), ticks);
        }
    }
    if let Some((_, ticks)) = cpu_ticks("self") {
        sample.insert("load generator".into(), ticks);
    }
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        if let Some((comm, ticks)) = cpu_ticks(pid) {
            let group = match comm.as_str() {
                "postgres" => "postgres",
                "nats-server" => "nats",
                _ => continue,
            };
            *sample.entry(group.to_string()).or_default() += ticks;
        }
    }
    sample
}

/// CPU milliseconds per request of each process between two samples.
fn cpu_per_request(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    requests: usize,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(name, end)| {
            let start = before.get(name).copied().unwrap_or(*end);
            let seconds = end.saturating_sub(start) as f64 / TICKS_PER_SECOND;
            (name.clone(), seconds * 1000.0 / requests.max(1) as f64)
        })
        .collect()
}

/// Peak resident memory of a process, in MiB (`VmHWM`).
fn peak_memory_mib(pid: u64) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The hash-bound limit: how many argon2id verifications per second the cores can do at most,
/// as the cores ÷ the time of one verification alone (ms, limit/s).
fn hash_bound_limit() -> anyhow::Result<(f64, f64)> {
    let hash = auth_user::password::hash_blocking(PASSWORD)?;
    let rounds = 20;
    let started = Instant::now();
    for _ in 0..rounds {
        auth_user::password::verify_blocking(PASSWORD, &hash)?;
    }
    let one = started.elapsed().as_secs_f64() / f64::from(rounds);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    Ok((one * 1000.0, cores / one))
}

/// Verifications per second with one thread per core hashing at once, as the user service's
/// workers do under load: below [`hash_bound_limit`] where the cores share caches and memory
/// bandwidth (argon2id is memory-hard).
fn parallel_hash_rate() -> anyhow::Result<f64> {
    let hash = auth_user::password::hash_blocking(PASSWORD)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rounds = 20;
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..cores)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    for _ in 0..rounds {
                        auth_user::password::verify_blocking(PASSWORD, &hash)?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|worker| worker.join().map_err(|_| anyhow::anyhow!("hashing thread panicked"))?)
    })?;
    Ok((cores * rounds) as f64 / started.elapsed().as_secs_f64())
}

/// Password sign-ins by [`SIGN_IN_CLIENTS`] clients, each going round the seeded `emails`.
pub(crate) async fn sign_in_phase(http: &reqwest::Client, base: &str, emails: &[String], duration: Duration) -> Phase {
    let (http, base, emails) = (http.clone(), base.to_string(), emails.to_vec());
    let states: Vec<usize> = (0..SIGN_IN_CLIENTS).collect();
    run_phase(
        "password sign-in",
        SIGN_IN_CLIENTS,
        duration,
        states,
        move |i: usize| {
            let (http, base) = (http.clone(), base.clone());
            let email = emails[i % emails.len()].clone();
            async move {
                let ok = http
                    .post(format!("{base}/token?grant_type=password"))
                    .json(&json!({"email": email, "password": PASSWORD}))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                (i + SIGN_IN_CLIENTS, ok)
            }
        },
    )
    .await
}

/// Refreshes by [`CLIENTS`] clients, each following its own token chain.
pub(crate) async fn refresh_phase(
    http: &reqwest::Client,
    base: &str,
    tokens: Vec<String>,
    duration: Duration,
) -> Phase {
    let (http, base) = (http.clone(), base.to_string());
    run_phase("refresh", CLIENTS, duration, tokens, move |token: String| {
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
}

/// `GET /user` by [`CLIENTS`] clients, each with its own access token.
pub(crate) async fn get_user_phase(
    http: &reqwest::Client,
    base: &str,
    tokens: Vec<String>,
    duration: Duration,
) -> Phase {
    let (http, base) = (http.clone(), base.to_string());
    run_phase("GET /user", CLIENTS, duration, tokens, move |token: String| {
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
}

/// A user with a TOTP factor enrolled: its access token, factor and secret, and how many of the
/// three codes valid at a time it has used.
struct TotpUser {
    token: String,
    factor_id: String,
    secret: totp_rs::Totp,
    used: u64,
}

/// Signs up `count` users and enrols a TOTP factor for each.
async fn seed_totp_users(http: &reqwest::Client, base: &str, count: u64, tag: &str) -> anyhow::Result<Vec<TotpUser>> {
    let mut users = Vec::new();
    for i in 0..count {
        let session: Value = http
            .post(format!("{base}/signup"))
            .json(&json!({"email": format!("totp-{i}-{tag}@example.com"), "password": PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        let token = session["access_token"].as_str().unwrap_or_default().to_string();
        let factor: Value = http
            .post(format!("{base}/factors"))
            .bearer_auth(&token)
            .json(&json!({"factor_type": "totp"}))
            .send()
            .await?
            .json()
            .await?;
        let secret = totp_rs::Secret::try_from_base32(factor["totp"]["secret"].as_str().unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("enrolment answered no secret: {e:?} {factor}"))?;
        users.push(TotpUser {
            token,
            factor_id: factor["id"].as_str().unwrap_or_default().to_string(),
            secret: totp_rs::Builder::new().with_secret(secret).build_noncompliant(),
            used: 0,
        });
    }
    Ok(users)
}

/// TOTP step-ups by [`TOTP_CLIENTS`] clients: a challenge, then its verification with the code for
/// the next unused step of the client's next user (the step-up and its new tokens included).
async fn totp_phase(http: &reqwest::Client, base: &str, users: Vec<TotpUser>, duration: Duration) -> Phase {
    let (http, base) = (http.clone(), base.to_string());
    let mut shares: Vec<(Vec<TotpUser>, usize)> = (0..TOTP_CLIENTS).map(|_| (Vec::new(), 0)).collect();
    for (i, user) in users.into_iter().enumerate() {
        shares[i % TOTP_CLIENTS].0.push(user);
    }
    run_phase(
        "TOTP challenge + verify",
        TOTP_CLIENTS,
        duration,
        shares,
        move |(mut users, cursor)| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let Some(index) = (0..users.len())
                    .map(|k| (cursor + k) % users.len())
                    .find(|&k| users[k].used < 3)
                else {
                    return ((users, cursor), false);
                };
                let user = &mut users[index];
                let challenge = http
                    .post(format!("{base}/factors/{}/challenge", user.factor_id))
                    .bearer_auth(&user.token)
                    .send()
                    .await;
                let challenge_id = match challenge {
                    Ok(r) if r.status() == 200 => r.json::<Value>().await.ok().map(|c| c["id"].clone()),
                    _ => None,
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                // Codes for the previous, current and next step, in that order: each newer than the last.
                let code = user.secret.generate(now + user.used * 30 - 30).to_string();
                user.used += 1;
                let ok = match challenge_id {
                    Some(challenge_id) => http
                        .post(format!("{base}/factors/{}/verify", user.factor_id))
                        .bearer_auth(&user.token)
                        .json(&json!({"challenge_id": challenge_id, "code": code}))
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200),
                    None => false,
                };
                ((users, index + 1), ok)
            }
        },
    )
    .await
}

pub async fn run(bin_dir: &Path, seconds: u64) -> anyhow::Result<()> {
    let duration = Duration::from_secs(seconds);
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let suite = LaunchedSuite::start(
        bin_dir,
        &[
            ("GOTRUE_MAILER_AUTOCONFIRM", "true".into()),
            ("GOTRUE_LOG_LEVEL", "warn".into()),
        ],
    )
    .await?;
    let base = suite.base_url.clone();
    let pids: BTreeMap<String, u64> = suite
        .pids
        .iter()
        .map(|(name, pid)| (name.clone(), u64::from(*pid)))
        .collect();
    let http = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS * 2).build()?;

    let (verify_ms, hash_limit) = tokio::task::spawn_blocking(hash_bound_limit).await??;
    let parallel_hash_limit = tokio::task::spawn_blocking(parallel_hash_rate).await??;

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

    let before = cpu_sample(&pids);
    let sign_in = sign_in_phase(&http, &base, &emails, duration).await;

    let sign_in_cpu = cpu_per_request(&before, &cpu_sample(&pids), sign_in.count);

    let before = cpu_sample(&pids);
    let refresh_tokens: Vec<String> = sessions
        .iter()
        .map(|(_, s)| s["refresh_token"].as_str().unwrap_or_default().to_string())
        .collect();
    let refresh = refresh_phase(&http, &base, refresh_tokens, duration).await;

    let refresh_cpu = cpu_per_request(&before, &cpu_sample(&pids), refresh.count);

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
    let before = cpu_sample(&pids);
    let get_user = get_user_phase(&http, &base, access_tokens, duration).await;

    let get_user_cpu = cpu_per_request(&before, &cpu_sample(&pids), get_user.count);

    let totp_users = seed_totp_users(&http, &base, TOTP_USERS_PER_SECOND * seconds, &unique[..6]).await?;
    let before = cpu_sample(&pids);
    let totp = totp_phase(&http, &base, totp_users, duration).await;
    let totp_cpu = cpu_per_request(&before, &cpu_sample(&pids), totp.count);

    let memory: BTreeMap<&String, f64> = pids
        .iter()
        .filter_map(|(name, pid)| Some((name, peak_memory_mib(*pid)?)))
        .collect();

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let report = |out: &mut String| {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "machine: {cores} cores; {seconds} s per phase; Postgres and NATS on the same machine"
        );
        let _ = writeln!(
            out,
            "argon2id verify: {verify_ms:.1} ms → hash-bound limit {hash_limit:.1} sign-ins/s \
             ({parallel_hash_limit:.1}/s measured with every core hashing at once)\n"
        );
        let _ = writeln!(out, "| phase | clients | req/s | p50 ms | p95 ms | p99 ms | errors |");
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for (phase, clients) in [
            (&sign_in, SIGN_IN_CLIENTS),
            (&refresh, CLIENTS),
            (&get_user, CLIENTS),
            (&totp, TOTP_CLIENTS),
        ] {
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
            "\nsign-in at {:.0}% of the hash-bound limit ({:.0}% of the rate with every core hashing)",
            100.0 * sign_in.per_second() / hash_limit,
            100.0 * sign_in.per_second() / parallel_hash_limit
        );
        let _ = writeln!(
            out,
            "\nCPU time per request (ms), by process:\n\n| process | sign-in | refresh | GET /user | TOTP |\n|---|---|---|---|---|"
        );
        for name in get_user_cpu.keys() {
            let cell = |table: &BTreeMap<String, f64>| table.get(name).map_or("-".to_string(), |ms| format!("{ms:.3}"));
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} |",
                cell(&sign_in_cpu),
                cell(&refresh_cpu),
                cell(&get_user_cpu),
                cell(&totp_cpu)
            );
        }
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

    suite.shutdown().await?;
    Ok(())
}
