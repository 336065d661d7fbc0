//! The token service: the session authority. It owns `sessions`, `refresh_tokens`, `mfa_amr_claims`
//! and `flow_state`, signs access tokens and publishes the verification keys.

mod external_flow;
mod flow_state;
mod grpc;
pub mod jwks;
mod refresh;
pub mod refresh_token;
mod session;
mod step_up;

use auth_core::runtime::ServiceContext;
use auth_proto::token::v1::token_service_server::TokenServiceServer;
use tonic::service::Routes;

/// Serves the token service until `ctx.shutdown` fires.
pub async fn serve(ctx: ServiceContext) -> anyhow::Result<()> {
    let service = grpc::TokenGrpc::new(ctx.config.clone(), ctx.db.clone())?;
    let routes = Routes::new(TokenServiceServer::new(service));
    auth_core::grpc::serve(auth_proto::service_names::TOKEN, routes, ctx.listener, ctx.shutdown).await
}
