//! The delivery loop: pull email and SMS requests from the durable JetStream consumers, claim each
//! in the delivery log, send, record the outcome, and ack (done) or nak with backoff (retry later).
//!
//! Several replicas share the consumer; JetStream hands each message to one of them. The delivery
//! log (`notification_deliveries`, keyed by the outbox id) is what keeps a redelivered message from
//! being sent twice: a message already `sent` is acked without sending, one another replica is
//! `sending` right now is retried later. Only a process that dies between the SMTP server's
//! acceptance and the `sent` mark (a few milliseconds) leaves a stale `sending` row; after
//! `AUTH_NOTIFY_ACK_WAIT` (60 s) it is sent again, because losing a confirmation email is worse than
//! a second one.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer};
use auth_core::Config;
use auth_proto::notification::v1::{EmailRequested, SmsChannel, SmsKind, SmsRequested};
use futures::StreamExt;
use prost::Message as _;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::mail::Mailer;
use crate::sms::{Channel, SmsSender};
use crate::template_cache::TemplateCache;
use crate::templates;

/// The durable consumers every replica shares: one per channel, so a slow SMS provider never holds
/// up email (and the other way round).
pub const EMAIL_CONSUMER: &str = "notifier";
pub const SMS_CONSUMER: &str = "notifier-sms";
/// Messages sent at the same time by one replica.
const IN_FLIGHT: usize = 16;

/// What the delivery log says about a message before sending it.
enum Claim {
    /// Ours to send; this is attempt number n.
    Attempt(i32),
    /// Sent or dead-lettered already: ack without sending.
    Done,
    /// Another replica is sending it now: try again later.
    Busy,
    /// No outbox row holds this message: it did not come from the suite (anyone who can publish on
    /// the subject could otherwise make the notifier send mail of their choosing). Dropped.
    Forged,
}

pub struct Deliverer {
    /// This replica's name in the delivery log (`sent_by`).
    pub replica: String,
    pub db: PgPool,
    pub config: Arc<Config>,
    pub mailer: Option<Mailer>,
    pub templates: TemplateCache,
    pub sms: Option<SmsSender>,
}

/// One message to deliver, whichever its channel.
enum Request {
    // Boxed: an email request carries many template variables, an SMS request few.
    Email(Box<EmailRequested>),
    Sms(SmsRequested),
}

impl Request {
    fn decode(subject: &str, payload: &[u8]) -> Result<Self, prost::DecodeError> {
        if subject.ends_with(".sms_requested") {
            SmsRequested::decode(payload).map(Self::Sms)
        } else {
            EmailRequested::decode(payload).map(|email| Self::Email(Box::new(email)))
        }
    }

    fn message_id(&self) -> &str {
        match self {
            Self::Email(email) => &email.message_id,
            Self::Sms(sms) => &sms.message_id,
        }
    }

    fn channel(&self) -> &'static str {
        match self {
            Self::Email(_) => "email",
            Self::Sms(_) => "sms",
        }
    }

    fn recipient(&self) -> &str {
        match self {
            Self::Email(email) => &email.to,
            Self::Sms(sms) => &sms.phone,
        }
    }
}

/// Creates (or finds) the durable consumer of one kind of request (`email_requested`,
/// `sms_requested`).
pub async fn consumer(
    stream: &jetstream::stream::Stream,
    prefix: &str,
    name: &str,
    event: &str,
    ack_wait: Duration,
) -> anyhow::Result<consumer::Consumer<consumer::pull::Config>> {
    stream
        .get_or_create_consumer(
            name,
            consumer::pull::Config {
                durable_name: Some(name.into()),
                filter_subject: auth_core::nats::notification_subject(prefix, event),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the {name} consumer: {e}"))
}

/// Samples a durable consumer's backlog every few seconds as
/// `jetstream_consumer_pending_messages{consumer}` (not yet delivered) and
/// `jetstream_consumer_ack_pending_messages{consumer}` (delivered, not yet acknowledged).
pub fn sample_consumer_lag(
    consumer: consumer::Consumer<consumer::pull::Config>,
    name: &'static str,
    shutdown: CancellationToken,
) {
    auth_core::metrics::sample_periodically(shutdown, move || {
        let mut consumer = consumer.clone();
        async move {
            if let Ok(info) = consumer.info().await {
                metrics::gauge!("jetstream_consumer_pending_messages", "consumer" => name).set(info.num_pending as f64);
                metrics::gauge!("jetstream_consumer_ack_pending_messages", "consumer" => name)
                    .set(info.num_ack_pending as f64);
            }
        }
    });
}

impl Deliverer {
    /// Delivers until `shutdown`; in-flight sends finish before it returns.
    pub async fn run(
        self: Arc<Self>,
        consumer: consumer::Consumer<consumer::pull::Config>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("cannot pull from the notifier consumer: {e}"))?;
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => break,
                next = messages.next() => next,
            };
            let message = match next {
                None => break,
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    tracing::warn!(%error, "pulling notification messages failed; retrying");
                    continue;
                }
            };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let deliverer = self.clone();
            tokio::spawn(async move {
                deliverer.handle(message).await;
                drop(slot);
            });
        }
        // Let in-flight deliveries finish (and ack) before the process exits.
        let _ = slots.acquire_many(IN_FLIGHT as u32).await;
        Ok(())
    }

    /// Delivers one message in a span that continues the trace of the request that asked for it
    /// (the `traceparent` header the outbox stored).
    async fn handle(&self, message: jetstream::Message) {
        let span = tracing::info_span!("deliver", subject = %message.subject);
        if let Some(headers) = &message.headers {
            auth_core::telemetry::continue_trace(&span, |name| headers.get(name).map(|value| value.as_str()));
        }
        self.deliver(message).instrument(span).await;
    }

    async fn deliver(&self, message: jetstream::Message) {
        let request = match Request::decode(&message.subject, message.payload.as_ref()) {
            Ok(request) => request,
            Err(error) => {
                tracing::error!(%error, subject = %message.subject, "undecodable notification message dropped");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        let Ok(id) = Uuid::parse_str(request.message_id()) else {
            tracing::error!(message_id = %request.message_id(), "notification without a valid message id dropped");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        };
        let claimed = self
            .claim(
                id,
                &message.subject,
                message.payload.as_ref(),
                request.channel(),
                request.recipient(),
            )
            .await;
        let outcome = match claimed {
            Err(error) => {
                tracing::warn!(%error, %id, "delivery log unavailable; retrying later");
                AckKind::Nak(Some(Duration::from_secs(1)))
            }
            Ok(Claim::Done) => AckKind::Ack,
            Ok(Claim::Forged) => {
                metrics::counter!("notification_deliveries_total", "channel" => request.channel(), "outcome" => "forged")
                    .increment(1);
                tracing::error!(
                    %id,
                    subject = %message.subject,
                    "notification message matches no outbox row: not sent (forged or altered on NATS)"
                );
                AckKind::Term
            }
            Ok(Claim::Busy) => AckKind::Nak(Some(self.config.suite.notify_ack_wait)),
            Ok(Claim::Attempt(attempt)) => self.attempt(id, &request, attempt).await,
        };
        if let Err(error) = message.ack_with(outcome).await {
            tracing::warn!(%error, %id, "acknowledging a notification failed; it will be redelivered");
        }
    }

    /// Sends once and records the result; returns how to acknowledge the message.
    async fn attempt(&self, id: Uuid, request: &Request, attempt: i32) -> AckKind {
        let result = match request {
            Request::Email(email) => self.send_email(email).await,
            Request::Sms(sms) => self.send_sms(sms).await,
        };
        let channel = request.channel();
        let max_attempts = i32::try_from(self.config.suite.notify_max_attempts).unwrap_or(i32::MAX);
        let (status, error, ack) = match &result {
            Ok(()) => ("sent", None, AckKind::Ack),
            Err(error) if attempt >= max_attempts => {
                tracing::error!(%id, channel, attempt, error = format!("{error:#}"), "message dead-lettered after its last attempt");
                ("dead_lettered", Some(format!("{error:#}")), AckKind::Ack)
            }
            Err(error) => {
                tracing::warn!(%id, channel, attempt, error = format!("{error:#}"), "delivery failed; will retry");
                (
                    "failed",
                    Some(format!("{error:#}")),
                    AckKind::Nak(Some(backoff(attempt))),
                )
            }
        };
        metrics::counter!("notification_deliveries_total", "channel" => channel, "outcome" => status).increment(1);
        let recorded = sqlx::query!(
            "UPDATE notification_deliveries SET status = $2, last_error = $3, updated_at = now(), sent_by = $4, \
             sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END WHERE message_id = $1",
            id,
            status,
            error,
            &self.replica
        )
        .execute(&self.db)
        .await;
        if let Err(error) = recorded {
            // The row stays `sending`; a redelivery after the ack wait decides again.
            tracing::warn!(%error, %id, status, "recording a delivery outcome failed");
        }
        ack
    }

    async fn send_email(&self, request: &EmailRequested) -> anyhow::Result<()> {
        let Some(mailer) = &self.mailer else {
            anyhow::bail!("no SMTP server configured (GOTRUE_SMTP_HOST)");
        };
        let body = self.templates.body(templates::kind_of(request)).await;
        let rendered = templates::render(request, &self.config.mailer.subjects, body.as_deref());
        mailer
            .send(&request.to, &rendered.subject, rendered.html, &request.message_id)
            .await
    }

    async fn send_sms(&self, request: &SmsRequested) -> anyhow::Result<()> {
        let Some(sender) = &self.sms else {
            anyhow::bail!(
                "no usable SMS provider: {}",
                self.config.sms.provider_problem().unwrap_or_default()
            );
        };
        let channel = if request.channel == SmsChannel::Whatsapp as i32 {
            Channel::Whatsapp
        } else {
            Channel::Sms
        };
        let template = match SmsKind::try_from(request.kind) {
            Ok(SmsKind::MfaChallenge) => &self.config.mfa.phone_template,
            Ok(SmsKind::Otp) | Err(_) => &self.config.sms.template,
        };
        let text = SmsSender::render(template, &request.otp);
        let provider_id = sender.send(&request.phone, &text, channel, &request.otp).await?;
        tracing::debug!(message_id = %request.message_id, %provider_id, "SMS accepted by the provider");
        Ok(())
    }

    /// Records the attempt before sending: a new message, a failed one's retry, or a stale `sending`
    /// row become attempts; anything else is not ours to send now. Records the attempt, unless the message is not exactly what the suite wrote to its outbox
    /// (same id, subject and payload bytes): only the suite's own requests are ever sent.
    async fn claim(
        &self,
        id: Uuid,
        subject: &str,
        payload: &[u8],
        channel: &str,
        recipient: &str,
    ) -> sqlx::Result<Claim> {
        let attempt: Option<i32> = sqlx::query_scalar!(
            "INSERT INTO notification_deliveries (message_id, channel, recipient, status, attempts) \
             SELECT $1, $4, $2, 'sending', 1 FROM outbox_messages o \
             WHERE o.id = $1 AND o.subject = $5 AND o.payload = $6 \
             ON CONFLICT (message_id) DO UPDATE \
               SET status = 'sending', attempts = notification_deliveries.attempts + 1, updated_at = now() \
               WHERE notification_deliveries.status = 'failed' \
                  OR (notification_deliveries.status = 'sending' \
                      AND notification_deliveries.updated_at < now() - make_interval(secs => $3)) \
             RETURNING attempts",
            id,
            recipient,
            self.config.suite.notify_ack_wait.as_secs_f64(),
            channel,
            subject,
            payload
        )
        .fetch_optional(&self.db)
        .await?;
        if let Some(attempt) = attempt {
            return Ok(Claim::Attempt(attempt));
        }
        let status: Option<String> =
            sqlx::query_scalar!("SELECT status FROM notification_deliveries WHERE message_id = $1", id)
                .fetch_optional(&self.db)
                .await?;
        Ok(match status.as_deref() {
            Some("sending") => Claim::Busy,
            Some(_) => Claim::Done,
            None => Claim::Forged,
        })
    }
}

/// Exponential backoff between attempts: 1 s, 2 s, 4 s, ... capped at 5 minutes.
fn backoff(attempt: i32) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(9);
    Duration::from_secs(1u64 << exponent).min(Duration::from_secs(300))
}
