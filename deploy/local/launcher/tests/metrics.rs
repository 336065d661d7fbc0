//! `/metrics` on every process (`GOTRUE_METRICS_ENABLED`), scraped while the suite works: each
//! family the README lists is exposed by the process that records it.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is the test failing"
)]

use std::path::{Path, PathBuf};

use auth_testkit::jwt::service_role_token;
use auth_testkit::{LaunchedSuite, SmtpSink, retry_until};
use serde_json::{Value, json};

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_auth-launcher"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

/// Everything the six processes expose, concatenated.
async fn scrape(http: &reqwest::Client, base: u16) -> String {
    let mut all = String::new();
    for port in base..base + 6 {
        if let Ok(response) = http.get(format!("http://127.0.0.1:{port}/metrics")).send().await
            && let Ok(text) = response.text().await
        {
            all.push_str(&text);
        }
    }
    all
}

#[tokio::test]
async fn every_process_exposes_its_metrics() -> anyhow::Result<()> {
    auth_core::install_tls_provider();
    let smtp = SmtpSink::start().await?;
    // Six consecutive ports for six processes, away from the usual ones.
    let base = 20000 + u16::try_from(std::process::id() % 20000)?;
    let mut settings = smtp.settings();
    settings.push(("GOTRUE_METRICS_ENABLED", "true".into()));
    settings.push(("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1".into()));
    settings.push(("OTEL_EXPORTER_PROMETHEUS_PORT", base.to_string()));
    let suite = LaunchedSuite::start(&bin_dir(), &settings).await?;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", suite.base_url);

    // An email through the pipeline, a password sign-in (hashing), GET /user twice (the cache).
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let response = http
        .post(url("/signup"))
        .json(&json!({"email": format!("metrics-{unique}@example.com"), "password": "password-123"}))
        .send()
        .await?;
    anyhow::ensure!(response.status() == 200, "signup: {}", response.status());
    smtp.next().await.expect("the confirmation email");
    let address = format!("metrics-admin-{unique}@example.com");
    let response = http
        .post(url("/admin/users"))
        .bearer_auth(service_role_token())
        .json(&json!({"email": address, "password": "password-123", "email_confirm": true}))
        .send()
        .await?;
    anyhow::ensure!(response.status() == 200, "admin create: {}", response.status());
    let session: Value = http
        .post(url("/token?grant_type=password"))
        .json(&json!({"email": address, "password": "password-123"}))
        .send()
        .await?
        .json()
        .await?;
    let token = session["access_token"].as_str().unwrap_or_default().to_string();
    for _ in 0..2 {
        let response = http.get(url("/user")).bearer_auth(&token).send().await?;
        anyhow::ensure!(response.status() == 200, "GET /user: {}", response.status());
    }

    let families = [
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "grpc_server_requests_total",
        "grpc_server_request_duration_seconds_bucket",
        "password_hash_queue_depth",
        "password_hashes_in_progress",
        "outbox_unpublished_messages",
        "outbox_oldest_unpublished_age_seconds",
        "jetstream_consumer_pending_messages",
        "notification_deliveries_total",
        "account_cache_lookups_total",
        "db_pool_connections",
    ];
    retry_until(|| async {
        let text = scrape(&http, base).await;
        families.iter().all(|family| text.contains(family))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}; missing from the scrape"))?;

    let text = scrape(&http, base).await;
    assert!(text.contains(r#"route="/signup""#), "per-route labels");
    assert!(text.contains(r#"outcome="sent""#), "deliveries by outcome");
    assert!(
        text.contains(r#"result="hit""#),
        "the second GET /user came from the cache"
    );
    // GoTrue serves the same document at `/`.
    let root = http
        .get(format!("http://127.0.0.1:{base}/"))
        .send()
        .await?
        .text()
        .await?;
    assert!(root.contains("# TYPE"), "{root}");
    suite.shutdown().await?;
    Ok(())
}
