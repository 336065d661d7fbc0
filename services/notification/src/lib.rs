//! The notification service: delivers email and SMS requested through NATS JetStream. It owns the
//! delivery log (`notification_deliveries`). At start it connects to NATS and makes sure its stream
//! exists (so publishers never lose a message to a missing stream); the consumer that sends arrives
//! with the delivery-pipeline issue.

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

    let routes = Routes::new(NotificationServiceServer::new(NotificationGrpc));
    auth_core::grpc::serve(
        auth_proto::service_names::NOTIFICATION,
        routes,
        ctx.listener,
        ctx.shutdown,
    )
    .await
}
