//! The notification service: delivers the email requested through NATS JetStream. It owns the
//! delivery log (`notification_deliveries`). At start it makes sure the stream and its durable
//! consumer exist, then delivers until shutdown (see [`deliver`]). SMS delivery comes with the SMS
//! providers; SMS requests wait in the stream until then.

mod deliver;
mod mail;
mod templates;

use std::sync::Arc;

use auth_core::nats;
use auth_core::runtime::ServiceContext;
use auth_proto::notification::v1::notification_service_server::{NotificationService, NotificationServiceServer};
use tonic::service::Routes;

struct NotificationGrpc;

#[tonic::async_trait]
impl NotificationService for NotificationGrpc {}

/// Serves the notification service until `ctx.shutdown` fires.
pub async fn serve(ctx: ServiceContext) -> anyhow::Result<()> {
    let suite = &ctx.config.suite;
    let client = nats::connect(&suite.nats_url).await?;
    let jetstream = async_nats::jetstream::new(client);
    let stream = nats::ensure_notification_stream(&jetstream, &suite.nats_prefix).await?;
    tracing::info!(stream = %stream.cached_info().config.name, "notification stream ready");
    let consumer = deliver::email_consumer(&stream, &suite.nats_prefix).await?;

    let deliverer = Arc::new(deliver::Deliverer {
        db: ctx.db.clone(),
        mailer: mail::Mailer::from_config(&ctx.config.smtp, &ctx.config.site_url)?,
        config: ctx.config.clone(),
    });
    let delivering = tokio::spawn(deliverer.run(consumer, ctx.shutdown.clone()));

    let routes = Routes::new(NotificationServiceServer::new(NotificationGrpc));
    let served = auth_core::grpc::serve(
        auth_proto::service_names::NOTIFICATION,
        routes,
        ctx.listener,
        ctx.shutdown.clone(),
    )
    .await;
    ctx.shutdown.cancel();
    delivering.await??;
    served
}
