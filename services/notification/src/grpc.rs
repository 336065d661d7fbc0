//! The notification service's gRPC API for operators and internal backends: what was given up on.

use std::sync::Arc;

use auth_account::jwt::JwtKeys;
use auth_account::principal;
use auth_core::{Config, ServiceError};
use auth_proto::notification::v1::notification_service_server::NotificationService;
use auth_proto::notification::v1::{DeadLetter, ListDeadLettersRequest, ListDeadLettersResponse};
use tonic::{Request, Response, Status};

pub struct NotificationGrpc {
    pub config: Arc<Config>,
    pub db: sqlx::PgPool,
    pub keys: Arc<JwtKeys>,
}

#[tonic::async_trait]
impl NotificationService for NotificationGrpc {
    #[tracing::instrument(skip_all)]
    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        principal::authenticate(request.metadata(), &self.keys, &self.config, &self.db)
            .await?
            .require_admin()?;
        let limit = match request.get_ref().limit {
            0 => 100,
            n => n.min(1000),
        };
        let rows = sqlx::query!(
            "SELECT message_id, channel, recipient, attempts, last_error, sent_by, created_at, updated_at \
             FROM notification_deliveries WHERE status = 'dead_lettered' \
             ORDER BY updated_at DESC, message_id LIMIT $1",
            i64::from(limit)
        )
        .fetch_all(&self.db)
        .await
        .map_err(ServiceError::from)?;
        let dead_letters = rows
            .into_iter()
            .map(|row| DeadLetter {
                message_id: row.message_id.to_string(),
                channel: row.channel,
                recipient: row.recipient,
                attempts: u32::try_from(row.attempts).unwrap_or_default(),
                last_error: row.last_error.unwrap_or_default(),
                sent_by: row.sent_by.unwrap_or_default(),
                first_attempt_at: auth_account::users::timestamp(Some(row.created_at)),
                given_up_at: auth_account::users::timestamp(Some(row.updated_at)),
            })
            .collect();
        Ok(Response::new(ListDeadLettersResponse { dead_letters }))
    }
}
