//! The notification service: delivers the emails and SMS requested through NATS JetStream. It owns
//! the delivery log (`notification_deliveries`). At start it makes sure the stream and its durable
//! consumers exist, then delivers until shutdown (see [`deliver`]).

mod deliver;
mod grpc;
mod mail;
mod sms;
mod template_cache;
mod templates;

use std::sync::Arc;

use auth_core::nats;
use auth_core::runtime::ServiceContext;
use auth_proto::notification::v1::notification_service_server::NotificationServiceServer;
use tonic::service::Routes;

/// Serves the notification service until `ctx.shutdown` fires.
pub async fn serve(ctx: ServiceContext) -> anyhow::Result<()> {
    let suite = &ctx.config.suite;
    let client = nats::connect_with(suite).await?;
    let jetstream = async_nats::jetstream::new(client);
    let shutdown = &ctx.shutdown;
    let stream = nats::set_up("notification stream", shutdown, || {
        nats::ensure_notification_stream(&jetstream, &suite.nats_prefix)
    })
    .await?;
    tracing::info!(stream = %stream.cached_info().config.name, "notification stream ready");
    let prefix = &suite.nats_prefix;
    let ack_wait = suite.notify_ack_wait;
    let emails = nats::set_up("email consumer", shutdown, || {
        deliver::consumer(&stream, prefix, deliver::EMAIL_CONSUMER, "email_requested", ack_wait)
    })
    .await?;
    let texts = nats::set_up("SMS consumer", shutdown, || {
        deliver::consumer(&stream, prefix, deliver::SMS_CONSUMER, "sms_requested", ack_wait)
    })
    .await?;

    if ctx.config.metrics.enabled {
        deliver::sample_consumer_lag(emails.clone(), deliver::EMAIL_CONSUMER, ctx.shutdown.clone());
        deliver::sample_consumer_lag(texts.clone(), deliver::SMS_CONSUMER, ctx.shutdown.clone());
    }
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "notifier".into());
    let replica = format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    tracing::info!(%replica, "notifier replica starting");
    let deliverer = Arc::new(deliver::Deliverer {
        replica,
        db: ctx.db.clone(),
        mailer: mail::Mailer::from_config(&ctx.config.smtp, &ctx.config.site_url)?,
        templates: template_cache::TemplateCache::new(ctx.config.clone())?,
        sms: sms::SmsSender::from_config(&ctx.config.sms)?,
        config: ctx.config.clone(),
    });
    let delivering_email = tokio::spawn(deliverer.clone().run(emails, ctx.shutdown.clone()));
    let delivering_sms = tokio::spawn(deliverer.run(texts, ctx.shutdown.clone()));

    let api = grpc::NotificationGrpc {
        keys: Arc::new(auth_account::jwt::JwtKeys::from_config(&ctx.config.jwt)?),
        config: ctx.config.clone(),
        db: ctx.db.clone(),
    };
    let routes = Routes::new(NotificationServiceServer::new(api));
    let served = auth_core::grpc::serve(
        auth_proto::service_names::NOTIFICATION,
        routes,
        ctx.listener,
        ctx.shutdown.clone(),
    )
    .await;
    ctx.shutdown.cancel();
    delivering_email.await??;
    delivering_sms.await??;
    served
}
