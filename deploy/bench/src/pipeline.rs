//! `auth-bench pipeline`: how fast emails go from the HTTP request to the SMTP server, through the
//! Postgres outbox, the relay, JetStream and the notifier, with one notifier replica and then two.
//!
//! Each message is a `POST /recover` for a distinct seeded user (no password hashing on that path,
//! so the requests are cheap and the pipeline is what is measured). The SMTP server is a sink in this
//! process; a message's delay is from the moment its request was sent to the moment the sink had it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use auth_testkit::{LaunchedSuite, SmtpSink};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::Mutex;

use crate::percentile_ms;

/// Requests in flight at once.
const CLIENTS: usize = 20;

struct PhaseResult {
    replicas: usize,
    messages: usize,
    requests_per_second: f64,
    delivered_per_second: f64,
    delays: Vec<Duration>,
    errors: usize,
    by_replica: BTreeMap<String, i64>,
}

pub async fn run(bin_dir: &Path, messages: usize) -> anyhow::Result<()> {
    let smtp = SmtpSink::start().await?;
    let mut settings = smtp.settings();
    settings.extend([
        ("GOTRUE_RATE_LIMIT_EMAIL_SENT", "1000000000".to_string()),
        ("GOTRUE_LOG_LEVEL", "warn".into()),
    ]);
    let suite = LaunchedSuite::start(bin_dir, &settings).await?;
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let addresses = seed_users(&suite, tag, messages * 2).await?;
    let (first, second) = addresses.split_at(messages);

    let one = phase(&suite, &smtp, first, 1).await?;
    let mut second_replica = suite.spawn_replica("notification").await?;
    let two = phase(&suite, &smtp, second, 2).await?;
    second_replica.kill().await?;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = format!(
        "machine: {cores} cores; Postgres, NATS, the SMTP sink and the load generator on the same machine; \
         {CLIENTS} concurrent clients\n\n\
         | notifier replicas | messages | requests/s | delivered/s | p50 delay ms | p95 delay ms | max delay ms | errors | sent per replica |\n\
         |---|---|---|---|---|---|---|---|---|\n"
    );
    for result in [&one, &two] {
        let spread: Vec<String> = result.by_replica.values().map(i64::to_string).collect();
        out.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} |\n",
            result.replicas,
            result.messages,
            result.requests_per_second,
            result.delivered_per_second,
            percentile_ms(&result.delays, 0.50),
            percentile_ms(&result.delays, 0.95),
            percentile_ms(&result.delays, 1.0),
            result.errors,
            spread.join(" / ")
        ));
    }
    #[allow(clippy::print_stdout)]
    {
        print!("{out}");
    }
    suite.shutdown().await?;
    Ok(())
}

/// Confirmed email users inserted directly (the benchmark is about mail, not sign-up).
async fn seed_users(suite: &LaunchedSuite, tag: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let addresses: Vec<String> = (0..count).map(|i| format!("pipe-{i}-{tag}@example.com")).collect();
    sqlx::query(
        "INSERT INTO users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, \
           raw_app_meta_data, raw_user_meta_data, created_at, updated_at) \
         SELECT '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated', \
           email, '', now(), '{\"provider\":\"email\",\"providers\":[\"email\"]}', '{}', now(), now() \
         FROM unnest($1::text[]) AS email",
    )
    .bind(&addresses)
    .execute(&suite.db)
    .await
    .context("seeding users")?;
    Ok(addresses)
}

/// Sends one recovery request per address, `CLIENTS` at a time, and waits for every email.
async fn phase(
    suite: &LaunchedSuite,
    smtp: &SmtpSink,
    addresses: &[String],
    replicas: usize,
) -> anyhow::Result<PhaseResult> {
    let before = sent_by_replica(suite).await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build()?;
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let started = Instant::now();

    let requests = {
        let (http, url, sent_at) = (http.clone(), suite.url("/recover"), sent_at.clone());
        let addresses = addresses.to_vec();
        tokio::spawn(async move {
            let outcomes: Vec<bool> = futures::stream::iter(addresses)
                .map(|address| {
                    let (http, url, sent_at) = (http.clone(), url.clone(), sent_at.clone());
                    async move {
                        sent_at.lock().await.insert(address.clone(), Instant::now());
                        http.post(url)
                            .json(&json!({"email": address}))
                            .send()
                            .await
                            .is_ok_and(|r| r.status() == 200)
                    }
                })
                .buffer_unordered(CLIENTS)
                .collect()
                .await;
            (started.elapsed(), outcomes.iter().filter(|ok| !**ok).count())
        })
    };

    let mut received_at = HashMap::new();
    while received_at.len() < addresses.len() {
        let mail = smtp
            .next_within(Duration::from_secs(60))
            .await
            .with_context(|| format!("{} of {} emails arrived", received_at.len(), addresses.len()))?;
        let now = Instant::now();
        for to in mail.to {
            received_at.entry(to).or_insert(now);
        }
    }
    let delivered_in = started.elapsed();
    let (requested_in, errors) = requests.await?;

    let sent_at = sent_at.lock().await;
    let mut delays: Vec<Duration> = received_at
        .iter()
        .filter_map(|(to, received)| Some(received.duration_since(*sent_at.get(to)?)))
        .collect();
    delays.sort();
    // The sink can have a message a moment before the notifier records it as sent.
    let expected = before.values().sum::<i64>() + i64::try_from(addresses.len())?;
    let mut after = sent_by_replica(suite).await?;
    let give_up = Instant::now() + Duration::from_secs(10);
    while after.values().sum::<i64>() < expected && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = sent_by_replica(suite).await?;
    }
    let by_replica = after
        .into_iter()
        .map(|(replica, total)| {
            let earlier = before.get(&replica).copied().unwrap_or(0);
            (replica, total - earlier)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    Ok(PhaseResult {
        replicas,
        messages: addresses.len(),
        requests_per_second: addresses.len() as f64 / requested_in.as_secs_f64(),
        delivered_per_second: addresses.len() as f64 / delivered_in.as_secs_f64(),
        delays,
        errors,
        by_replica,
    })
}

/// Emails sent so far by each notifier replica (the delivery log's `sent_by`).
async fn sent_by_replica(suite: &LaunchedSuite) -> anyhow::Result<BTreeMap<String, i64>> {
    let rows: Vec<(Option<String>, i64)> =
        sqlx::query_as("SELECT sent_by, count(*) FROM notification_deliveries WHERE status = 'sent' GROUP BY sent_by")
            .fetch_all(&suite.db)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(replica, n)| (replica.unwrap_or_default(), n))
        .collect())
}
