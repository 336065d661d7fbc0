//! The outbox relay: moves email/SMS requests from `outbox_messages` to JetStream.
//!
//! A service that must send a message inserts an outbox row in the same transaction as the token the
//! message carries (so a rolled-back request sends nothing, and a committed one is never lost). The
//! relay, a task inside each writing service, publishes unpublished rows of its suite's prefix with
//! `Nats-Msg-Id` = row id and marks them published once JetStream acknowledged them.
//!
//! - Several replicas relay at once without double work: a batch is claimed with
//!   `FOR UPDATE SKIP LOCKED`.
//! - A crash between the ack and the mark re-publishes the row later; the stream's duplicate window
//!   drops the copy (same `Nats-Msg-Id`).
//! - A relay that was down (or NATS that was) catches up: rows wait in Postgres and every pass takes
//!   the oldest first. Writers wake the relay right after their commit ([`RelayHandle::nudge`]); a
//!   periodic pass covers rows written by other replicas or left by a crash.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::HeaderMap;
use async_nats::jetstream;
use auth_core::nats;
use auth_core::runtime::ServiceContext;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Rows claimed per pass: enough to pipeline publishes, few enough to keep the claim short.
const BATCH: i64 = 100;
/// How often the relay looks for rows nobody nudged it about.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How long to wait after a failed pass (e.g. NATS down) before trying again.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Wakes the relay of this process. Cheap to clone.
#[derive(Clone, Default)]
pub struct RelayHandle {
    wake: Arc<Notify>,
}

impl RelayHandle {
    /// Call after committing a transaction that wrote outbox rows.
    pub fn nudge(&self) {
        self.wake.notify_one();
    }
}

struct OutboxRow {
    id: Uuid,
    subject: String,
    payload: Vec<u8>,
    headers: sqlx::types::Json<Value>,
}

/// Connects to NATS, makes sure the notification stream exists (whichever process starts first),
/// and starts this process's relay, plus the backlog gauges with `GOTRUE_METRICS_ENABLED`.
pub async fn start(ctx: &ServiceContext) -> anyhow::Result<RelayHandle> {
    let suite = &ctx.config.suite;
    let jetstream = jetstream::new(nats::connect_with(suite).await?);
    nats::set_up("notification stream", &ctx.shutdown, || {
        nats::ensure_notification_stream(&jetstream, &suite.nats_prefix)
    })
    .await?;
    let relay = spawn(ctx.db.clone(), jetstream, &suite.nats_prefix, ctx.shutdown.clone());
    if ctx.config.metrics.enabled {
        sample_backlog(ctx.db.clone(), &suite.nats_prefix, ctx.shutdown.clone());
    }
    Ok(relay)
}

/// Starts the relay for rows whose subject begins with `<prefix>.` until `shutdown` fires.
pub fn spawn(db: PgPool, jetstream: jetstream::Context, prefix: &str, shutdown: CancellationToken) -> RelayHandle {
    let handle = RelayHandle::default();
    let relay = Relay {
        db,
        jetstream,
        subject_prefix: format!("{prefix}."),
        wake: handle.wake.clone(),
    };
    tokio::spawn(relay.run(shutdown));
    handle
}

struct Relay {
    db: PgPool,
    jetstream: jetstream::Context,
    subject_prefix: String,
    wake: Arc<Notify>,
}

impl Relay {
    async fn run(self, shutdown: CancellationToken) {
        loop {
            // Drain: pass after pass while there is work.
            let delay = match self.publish_batch().await {
                Ok(published) if published as i64 == BATCH => continue,
                Ok(_) => POLL_INTERVAL,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "outbox relay pass failed; retrying");
                    RETRY_DELAY
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Claims up to [`BATCH`] unpublished rows, publishes them (pipelined: every publish is sent
    /// before the first ack is awaited) and marks the acknowledged ones. Returns how many were claimed.
    async fn publish_batch(&self) -> anyhow::Result<usize> {
        let mut tx = self.db.begin().await?;
        let rows: Vec<OutboxRow> = sqlx::query_as!(
            OutboxRow,
            r#"SELECT id, subject, payload, headers AS "headers: sqlx::types::Json<Value>" FROM outbox_messages
               WHERE published_at IS NULL AND starts_with(subject, $1)
               ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED"#,
            self.subject_prefix,
            BATCH
        )
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }

        let mut pending = Vec::with_capacity(rows.len());
        for row in &rows {
            let sent = self
                .jetstream
                .publish_with_headers(row.subject.clone(), headers_of(row), row.payload.clone().into())
                .await;
            pending.push((row.id, sent));
        }
        let mut published = Vec::new();
        let mut failed = Vec::new();
        for (id, sent) in pending {
            let acked = match sent {
                Ok(ack) => ack.await.map(|_| ()).map_err(anyhow::Error::from),
                Err(error) => Err(anyhow::Error::from(error)),
            };
            match acked {
                Ok(()) => published.push(id),
                Err(error) => failed.push((id, format!("{error:#}"))),
            }
        }

        sqlx::query!(
            "UPDATE outbox_messages SET published_at = now() WHERE id = ANY($1)",
            &published
        )
        .execute(&mut *tx)
        .await?;
        for (id, error) in &failed {
            sqlx::query!(
                "UPDATE outbox_messages SET publish_attempts = publish_attempts + 1, last_error = $2 WHERE id = $1",
                id,
                error
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await.context("marking outbox rows published")?;
        if let Some((_, error)) = failed.first() {
            anyhow::bail!("{} of {} outbox rows not published: {error}", failed.len(), rows.len());
        }
        tracing::debug!(count = published.len(), "outbox rows published");
        Ok(rows.len())
    }
}

/// The row's stored headers (e.g. `traceparent`) plus `Nats-Msg-Id`, which makes re-publishing safe.
fn headers_of(row: &OutboxRow) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Value::Object(stored) = &row.headers.0 {
        for (name, value) in stored {
            if let Some(value) = value.as_str() {
                headers.insert(name.as_str(), value);
            }
        }
    }
    headers.insert("Nats-Msg-Id", row.id.to_string().as_str());
    headers
}

/// Samples the backlog every few seconds as `outbox_unpublished_messages` and
/// `outbox_oldest_unpublished_age_seconds` (with `GOTRUE_METRICS_ENABLED`): a relay that cannot reach
/// NATS shows as a growing age long before anyone misses an email.
pub fn sample_backlog(db: PgPool, prefix: &str, shutdown: CancellationToken) {
    let subject_prefix = format!("{prefix}.");
    auth_core::metrics::sample_periodically(shutdown, move || {
        let (db, subject_prefix) = (db.clone(), subject_prefix.clone());
        async move {
            let sampled = sqlx::query!(
                r#"SELECT count(*) AS "count!", extract(epoch FROM now() - min(created_at))::float8 AS age
                   FROM outbox_messages WHERE published_at IS NULL AND starts_with(subject, $1)"#,
                subject_prefix
            )
            .fetch_one(&db)
            .await;
            if let Ok(backlog) = sampled {
                ::metrics::gauge!("outbox_unpublished_messages").set(backlog.count as f64);
                ::metrics::gauge!("outbox_oldest_unpublished_age_seconds").set(backlog.age.unwrap_or(0.0));
            }
        }
    });
}
