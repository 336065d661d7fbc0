//! The delivery pipeline: an email request written with its token goes outbox → relay → JetStream →
//! notifier → SMTP, exactly once; rows written while the relay was down are delivered when it is back.

use std::time::Duration;

use auth_core::nats;
use auth_proto::notification::v1::{EmailKind, EmailRequested};
use auth_testkit::{Service, Suite, retry_until};
use prost::Message as _;
use serde_json::json;
use uuid::Uuid;

use crate::support::*;

/// The status of the (only) delivery-log row, if there is one yet.
async fn delivery_status(suite: &Suite) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM notification_deliveries")
        .fetch_optional(&suite.db)
        .await
        .ok()
        .flatten()
}

async fn unpublished(suite: &Suite) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM outbox_messages WHERE published_at IS NULL")
            .fetch_one(&suite.db)
            .await?,
    )
}

#[tokio::test]
async fn a_confirmation_email_is_delivered_once_through_jetstream() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let address = email();
    let response = suite
        .post_json("/signup", &json!({"email": address, "password": "password-123"}))
        .await?;
    assert_eq!(response.status(), 200);

    let mail = suite.smtp.next().await.expect("the confirmation email");
    assert_eq!(mail.to, vec![address.clone()]);
    assert_eq!(mail.header("Subject").as_deref(), Some("Confirm your email address"));
    assert_eq!(
        mail.header("From").as_deref(),
        Some("\"Auth Suite Tests\" <admin@example.com>")
    );
    let (outbox_id, token_hash): (Uuid, String) =
        sqlx::query_as("SELECT o.id, u.confirmation_token FROM outbox_messages o, users u WHERE u.email = $1")
            .bind(&address)
            .fetch_one(&suite.db)
            .await?;
    assert_eq!(mail.header("Message-ID"), Some(format!("<{outbox_id}@auth-suite>")));
    assert!(
        mail.body().contains(&format!("token={token_hash}&amp;type=signup")),
        "the link carries the token hash: {}",
        mail.body()
    );
    retry_until(|| async { delivery_status(&suite).await.as_deref() == Some("sent") }).await?;
    assert_eq!(unpublished(&suite).await?, 0);
    assert!(
        suite.smtp.next_within(Duration::from_secs(1)).await.is_none(),
        "delivered once"
    );
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn rows_written_while_the_relay_was_down_are_published_when_it_is_back() -> anyhow::Result<()> {
    let mut suite = Suite::start().await?;
    let addr = suite.stop(Service::User).await?;

    // Requests committed just before a crash: in the outbox, never published.
    let subject = nats::notification_subject(&suite.config.suite.nats_prefix, "email_requested");
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = Uuid::new_v4();
        let payload = EmailRequested {
            message_id: id.to_string(),
            kind: EmailKind::Recovery as i32,
            to: format!("waiting-{n}@example.com"),
            email: format!("waiting-{n}@example.com"),
            ..Default::default()
        };
        sqlx::query("INSERT INTO outbox_messages (id, subject, payload) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(&subject)
            .bind(payload.encode_to_vec())
            .execute(&suite.db)
            .await?;
        ids.push(id.to_string());
    }
    // A row of another suite sharing the database is not this relay's to publish.
    sqlx::query("INSERT INTO outbox_messages (id, subject, payload) VALUES ($1, 'elsewhere.notification.v1.email_requested', '')")
        .bind(Uuid::new_v4())
        .execute(&suite.db)
        .await?;

    suite.restart(Service::User, addr).await?;
    let mut delivered = Vec::new();
    for _ in 0..3 {
        let mail = suite.smtp.next().await.expect("a waiting email");
        delivered.push(mail.header("Message-ID").unwrap_or_default());
    }
    delivered.sort();
    let mut expected: Vec<String> = ids.iter().map(|id| format!("<{id}@auth-suite>")).collect();
    expected.sort();
    assert_eq!(delivered, expected, "each waiting request delivered once");
    retry_until(|| async { unpublished(&suite).await.is_ok_and(|n| n == 1) }).await?;
    let foreign_published: bool =
        sqlx::query_scalar("SELECT published_at IS NOT NULL FROM outbox_messages WHERE subject LIKE 'elsewhere.%'")
            .fetch_one(&suite.db)
            .await?;
    assert!(!foreign_published);
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_refusing_mail_server_delays_the_email_but_does_not_lose_it() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    suite.smtp.refuse_next(2);
    let address = email();
    let response = suite
        .post_json("/signup", &json!({"email": address, "password": "password-123"}))
        .await?;
    assert_eq!(response.status(), 200);

    // Refused twice (retried after 1 s, then 2 s), accepted the third time.
    let mail = suite
        .smtp
        .next_within(Duration::from_secs(20))
        .await
        .expect("delivered after the refusals");
    assert_eq!(mail.to, vec![address]);
    // The notifier marks the row right after the server's 250.
    retry_until(|| async { delivery_status(&suite).await.as_deref() == Some("sent") }).await?;
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM notification_deliveries")
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(attempts, 3);
    assert!(suite.smtp.next_within(Duration::from_secs(1)).await.is_none(), "once");
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_email_refused_on_every_attempt_is_dead_lettered() -> anyhow::Result<()> {
    let suite = Suite::builder().env("AUTH_NOTIFY_MAX_ATTEMPTS", "2").start().await?;
    suite.smtp.refuse_next(usize::MAX);
    let response = suite
        .post_json("/signup", &json!({"email": email(), "password": "password-123"}))
        .await?;
    assert_eq!(response.status(), 200);
    retry_until(|| async { delivery_status(&suite).await.as_deref() == Some("dead_lettered") }).await?;
    let (attempts, error): (i32, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM notification_deliveries")
            .fetch_one(&suite.db)
            .await?;
    assert_eq!(attempts, 2);
    assert!(error.is_some_and(|e| e.contains("451")), "the server's answer is kept");
    suite.shutdown().await;
    Ok(())
}
