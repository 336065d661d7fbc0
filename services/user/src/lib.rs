//! The user service: account lifecycle. It owns `users`, `identities`, `one_time_tokens` and
//! `audit_log_entries`. Its RPCs arrive with the sign-up, verification and admin issues; today the
//! process migrates the schema and serves gRPC health.

use auth_core::runtime::ServiceContext;
use auth_proto::user::v1::user_service_server::{UserService, UserServiceServer};
use tonic::service::Routes;

struct UserGrpc;

#[tonic::async_trait]
impl UserService for UserGrpc {}

/// Serves the user service until `ctx.shutdown` fires.
pub async fn serve(ctx: ServiceContext) -> anyhow::Result<()> {
    let routes = Routes::new(UserServiceServer::new(UserGrpc));
    auth_core::grpc::serve(auth_proto::service_names::USER, routes, ctx.listener, ctx.shutdown).await
}
