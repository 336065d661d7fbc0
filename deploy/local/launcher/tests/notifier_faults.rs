//! Delivery faults with the real binaries: a notifier process killed outright (SIGKILL) in the middle
//! of a burst of sign-ups, and the NATS server restarted under the suite. Afterwards every
//! confirmation email has arrived at the SMTP sink; the counts are exact.
//!
//! Needs every binary built in the same target directory (`cargo build --workspace --bins`, which the
//! README's test command runs first).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is the test failing"
)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use auth_testkit::launched::is_gone;
use auth_testkit::{LaunchedSuite, PrivateNats, SmtpSink, retry_until};
use nix::sys::signal::Signal;
use serde_json::json;

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_auth-launcher"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

/// Settings for a suite that sends confirmation emails to `smtp` without per-project send limits,
/// and retries an interrupted delivery after 3 s instead of 60 s.
fn mail_settings(smtp: &SmtpSink) -> Vec<(&'static str, String)> {
    let mut settings = smtp.settings();
    settings.push(("GOTRUE_RATE_LIMIT_EMAIL_SENT", "100000".into()));
    settings.push(("AUTH_NOTIFY_ACK_WAIT", "3s".into()));
    settings.push(("GOTRUE_LOG_LEVEL", "warn".into()));
    settings
}

/// Signs up `count` new addresses, `parallel` at a time; every sign-up must succeed.
async fn sign_up_burst(base_url: String, tag: &str, count: usize, parallel: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let addresses: Vec<String> = (0..count)
        .map(|i| format!("{tag}-{i}-{}@example.com", &unique[..8]))
        .collect();
    for chunk in addresses.chunks(parallel) {
        let requests = chunk.iter().map(|address| {
            http.post(format!("{base_url}/signup"))
                .json(&json!({"email": address, "password": "password-123"}))
                .send()
        });
        for response in futures::future::join_all(requests).await {
            let response = response?;
            anyhow::ensure!(response.status() == 200, "signup answered {}", response.status());
        }
    }
    Ok(())
}

async fn count(suite: &LaunchedSuite, sql: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&suite.db)
        .await?)
}

/// SIGKILL gives the notifier no chance to finish anything. Every email still arrives. The only
/// messages that may arrive twice are the ones the dead process was sending at that instant (the
/// SMTP server may have accepted them before the process could record it; see deliver.rs): the test
/// checks that every duplicate is one of those and that nothing arrives a third time.
#[tokio::test]
async fn a_notifier_killed_mid_burst_loses_no_email() -> anyhow::Result<()> {
    auth_core::install_tls_provider();
    let smtp = SmtpSink::start().await?;
    let suite = LaunchedSuite::start(&bin_dir(), &mail_settings(&smtp)).await?;
    let burst = tokio::spawn(sign_up_burst(suite.base_url.clone(), "kill", 200, 10));

    let mut seen = HashMap::new();
    smtp.collect_by_message_id(&mut seen, 30, Duration::ZERO, Duration::from_secs(30))
        .await?;
    let notifier = suite.pid("notification")?;
    suite.signal("notification", Signal::SIGKILL)?;
    retry_until(|| async { is_gone(notifier) }).await?;
    // The dead process's claims: the only messages whose fate it could not record.
    let in_flight: HashSet<String> =
        sqlx::query_scalar::<_, uuid::Uuid>("SELECT message_id FROM notification_deliveries WHERE status = 'sending'")
            .fetch_all(&suite.db)
            .await?
            .into_iter()
            .map(|id| format!("<{id}@auth-suite>"))
            .collect();
    burst.await??;

    // The launcher restarts the notifier; it delivers the rest and, after the ack wait, the
    // interrupted ones.
    smtp.collect_by_message_id(&mut seen, 200, Duration::from_secs(8), Duration::from_secs(30))
        .await?;
    assert_eq!(seen.len(), 200, "every confirmation email arrived");
    let duplicates: Vec<&String> = seen.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).collect();
    assert!(
        duplicates.iter().all(|id| in_flight.contains(*id)),
        "only messages in flight at the kill may be sent twice: {duplicates:?} vs {in_flight:?}"
    );
    assert!(seen.values().all(|n| *n <= 2), "no message is sent more than twice");
    // The snapshot may also hold claims of the restarted notifier, if the launcher was quicker than
    // the query: at most two replicas' in-flight windows (16 each).
    assert!(in_flight.len() <= 32, "at most two in-flight windows: {in_flight:?}");
    eprintln!(
        "killed with {} in flight; {} sent twice",
        in_flight.len(),
        duplicates.len()
    );
    assert_eq!(
        count(
            &suite,
            "SELECT count(*) FROM notification_deliveries WHERE status = 'sent'"
        )
        .await?,
        200
    );
    suite.shutdown().await?;
    Ok(())
}

/// NATS stops (as in a rolling restart) while sign-ups keep coming: the sign-ups succeed (their
/// emails wait in the Postgres outbox), and when NATS is back the relay publishes them and the
/// notifier delivers every email exactly once.
#[tokio::test]
async fn a_nats_restart_delays_email_but_loses_and_duplicates_none() -> anyhow::Result<()> {
    auth_core::install_tls_provider();
    let mut nats = PrivateNats::start().await?;
    let smtp = SmtpSink::start().await?;
    let mut settings = mail_settings(&smtp);
    settings.push(("NATS_URL", nats.url()));
    let suite = LaunchedSuite::start(&bin_dir(), &settings).await?;

    sign_up_burst(suite.base_url.clone(), "before", 50, 10).await?;
    let mut seen = HashMap::new();
    smtp.collect_by_message_id(&mut seen, 10, Duration::ZERO, Duration::from_secs(30))
        .await?;

    nats.stop().await?;
    sign_up_burst(suite.base_url.clone(), "during", 50, 10).await?;
    let waiting = count(
        &suite,
        "SELECT count(*) FROM outbox_messages WHERE published_at IS NULL",
    )
    .await?;
    assert!(waiting > 0, "sign-ups during the outage wait in the outbox");

    nats.restart().await?;
    sign_up_burst(suite.base_url.clone(), "after", 50, 10).await?;
    smtp.collect_by_message_id(&mut seen, 150, Duration::from_secs(5), Duration::from_secs(30))
        .await?;
    assert_eq!(seen.len(), 150, "every confirmation email arrived");
    assert!(seen.values().all(|n| *n == 1), "no email was sent twice: {seen:?}");
    assert_eq!(
        count(
            &suite,
            "SELECT count(*) FROM outbox_messages WHERE published_at IS NULL"
        )
        .await?,
        0
    );
    suite.shutdown().await?;
    Ok(())
}
