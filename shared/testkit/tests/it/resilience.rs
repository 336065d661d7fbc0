//! Health of every service, a service going away and coming back, and suites side by side.

use std::time::{Duration, Instant};

use auth_testkit::{Service, Suite, assert_gotrue_error};
use serde_json::Value;

#[tokio::test]
async fn every_service_reports_grpc_health() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    for service in Service::ALL {
        let channel = suite.channel(service)?;
        assert!(
            auth_core::grpc::is_serving(channel.clone(), service.grpc_name()).await,
            "{service:?}"
        );
        // the whole-server entry ("") too, as load balancers ask for it
        assert!(auth_core::grpc::is_serving(channel, "").await, "{service:?} overall");
    }
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_stopped_service_gives_fast_json_5xx_and_the_gateway_recovers_by_itself() -> anyhow::Result<()> {
    let mut suite = Suite::start().await?;
    assert_eq!(suite.get("/.well-known/jwks.json").await?.status(), 200);

    let addr = suite.stop(Service::Token).await?;
    let started = Instant::now();
    let body = assert_gotrue_error(suite.get("/.well-known/jwks.json").await?, 503, "unexpected_failure").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(body["error_id"].is_string(), "{body}");
    assert!(
        !body["msg"].as_str().unwrap_or_default().contains("127.0.0.1"),
        "internals leaked: {body}"
    );
    // routes that need no service keep working
    assert_eq!(suite.get("/settings").await?.status(), 200);

    suite.restart(Service::Token, addr).await?;
    // same gateway, same channel: it reconnects on its own
    auth_testkit::retry_until(|| async {
        matches!(suite.get("/.well-known/jwks.json").await, Ok(r) if r.status() == 200)
    })
    .await?;
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn two_suites_share_one_database_with_different_settings() -> anyhow::Result<()> {
    let first = Suite::builder()
        .env("GOTRUE_MAILER_AUTOCONFIRM", "true")
        .start()
        .await?;
    let second = Suite::builder()
        .share_database_with(&first)
        .env("GOTRUE_DISABLE_SIGNUP", "true")
        .start()
        .await?;
    assert_ne!(first.base_url, second.base_url);
    assert_ne!(first.config.suite.nats_prefix, second.config.suite.nats_prefix);

    let a: Value = first.get("/settings").await?.json().await?;
    let b: Value = second.get("/settings").await?.json().await?;
    assert_eq!(
        (a["mailer_autoconfirm"].clone(), a["disable_signup"].clone()),
        (true.into(), false.into())
    );
    assert_eq!(
        (b["mailer_autoconfirm"].clone(), b["disable_signup"].clone()),
        (false.into(), true.into())
    );

    // one schema, migrated once: both see the same tables
    let migrations: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&second.db)
        .await?;
    assert_eq!(migrations as usize, auth_core::db::MIGRATOR.iter().count());
    second.shutdown().await;
    first.shutdown().await;
    Ok(())
}
