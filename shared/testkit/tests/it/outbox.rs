//! The outbox relay: email/SMS requests written with their token reach JetStream, once, with
//! `Nats-Msg-Id` = outbox id, and rows written while the relay was down are published when it is back.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use auth_core::nats;
use auth_proto::notification::v1::{EmailKind, EmailRequested};
use auth_testkit::{Service, Suite, retry_until};
use futures::StreamExt;
use prost::Message as _;
use serde_json::json;
use uuid::Uuid;

use crate::support::*;

/// A pull consumer on the suite's notification stream, for reading what the relay published.
async fn stream_reader(suite: &Suite) -> anyhow::Result<consumer::Consumer<consumer::pull::Config>> {
    let prefix = &suite.config.suite.nats_prefix;
    let jetstream = jetstream::new(nats::connect(&suite.config.suite.nats_url).await?);
    let stream = jetstream.get_stream(nats::notification_stream_name(prefix)).await?;
    Ok(stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("test-reader".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?)
}

/// The next `count` messages of the stream, waiting up to 10 s for them.
async fn next_messages(
    reader: &consumer::Consumer<consumer::pull::Config>,
    count: usize,
) -> anyhow::Result<Vec<jetstream::Message>> {
    let mut batch = reader
        .fetch()
        .max_messages(count)
        .expires(Duration::from_secs(10))
        .messages()
        .await?;
    let mut messages = Vec::new();
    while let Some(message) = batch.next().await {
        messages.push(message.map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    Ok(messages)
}

async fn unpublished(suite: &Suite) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM outbox_messages WHERE published_at IS NULL")
            .fetch_one(&suite.db)
            .await?,
    )
}

#[tokio::test]
async fn a_confirmation_request_reaches_jetstream_once_with_its_outbox_id() -> anyhow::Result<()> {
    let suite = Suite::start().await?;
    let reader = stream_reader(&suite).await?;
    let address = email();
    let response = suite
        .post_json("/signup", &json!({"email": address, "password": "password-123"}))
        .await?;
    assert_eq!(response.status(), 200);

    let messages = next_messages(&reader, 1).await?;
    assert_eq!(messages.len(), 1, "one message for one sign-up");
    let message = &messages[0];
    let request = EmailRequested::decode(message.payload.as_ref())?;
    assert_eq!(request.to, address);
    assert_eq!(request.kind, EmailKind::Confirmation as i32);
    let outbox_id: Uuid = sqlx::query_scalar("SELECT id FROM outbox_messages")
        .fetch_one(&suite.db)
        .await?;
    assert_eq!(request.message_id, outbox_id.to_string());
    let msg_id = message
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Msg-Id"))
        .map(|v| v.to_string());
    assert_eq!(msg_id, Some(outbox_id.to_string()));
    assert_eq!(
        message.subject.as_str(),
        nats::notification_subject(&suite.config.suite.nats_prefix, "email_requested")
    );
    retry_until(|| async { unpublished(&suite).await.is_ok_and(|n| n == 0) }).await?;
    // Marked published after the ack: later passes publish nothing more.
    let more = reader
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(1))
        .messages()
        .await?
        .count()
        .await;
    assert_eq!(more, 0, "published once");
    suite.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn rows_written_while_the_relay_was_down_are_published_when_it_is_back() -> anyhow::Result<()> {
    let mut suite = Suite::start().await?;
    let reader = stream_reader(&suite).await?;
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
    let messages = next_messages(&reader, 3).await?;
    let mut published: Vec<String> = messages
        .iter()
        .map(|m| EmailRequested::decode(m.payload.as_ref()).map(|r| r.message_id))
        .collect::<Result<_, _>>()?;
    published.sort();
    ids.sort();
    assert_eq!(published, ids, "oldest first, each once");
    retry_until(|| async { unpublished(&suite).await.is_ok_and(|n| n == 1) }).await?;
    let foreign_published: bool =
        sqlx::query_scalar("SELECT published_at IS NOT NULL FROM outbox_messages WHERE subject LIKE 'elsewhere.%'")
            .fetch_one(&suite.db)
            .await?;
    assert!(!foreign_published);
    suite.shutdown().await;
    Ok(())
}
