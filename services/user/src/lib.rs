//! The user service: account lifecycle. It owns `users`, `identities`, `one_time_tokens` and
//! `audit_log_entries`: sign-up, password sign-in, reading and updating the signed-in user.
//! Sessions are the token service's: the user service asks it for one once a user proved who they are.

mod grpc;
mod outbox;
mod signin;
mod signup;
mod state;
mod update;
mod validate;

use auth_core::runtime::ServiceContext;
use auth_proto::user::v1::user_service_server::UserServiceServer;
use tonic::service::Routes;

/// Serves the user service until `ctx.shutdown` fires.
pub async fn serve(ctx: ServiceContext) -> anyhow::Result<()> {
    let state = state::UserState::new(ctx.config.clone(), ctx.db.clone())?;
    let routes = Routes::new(UserServiceServer::new(grpc::UserGrpc { state }));
    auth_core::grpc::serve(auth_proto::service_names::USER, routes, ctx.listener, ctx.shutdown).await
}
