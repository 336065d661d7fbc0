//! The SSO service: external sign-in. Today it serves the OAuth 2.0 providers (`providers/`, the
//! flow in `oauth_flow.rs`); SAML 2.0 and OIDC `id_token` sign-in come with later issues. It owns
//! no user rows: the user service finds, links or creates accounts and the token service keeps
//! the flows (`flow_state`) and issues the sessions.

mod client_state;
mod custom;
mod grpc;
mod http;
mod id_token;
mod oauth_flow;
mod oidc;
mod providers;
mod state;

use auth_core::runtime::ServiceContext;
use auth_proto::sso::v1::sso_service_server::SsoServiceServer;
use tonic::service::Routes;

/// Serves the SSO service until `ctx.shutdown` fires.
pub async fn serve(ctx: ServiceContext) -> anyhow::Result<()> {
    let state = state::SsoState::new(ctx.config.clone(), ctx.db.clone())?;
    let routes = Routes::new(SsoServiceServer::new(grpc::SsoGrpc { state }));
    auth_core::grpc::serve(auth_proto::service_names::SSO, routes, ctx.listener, ctx.shutdown).await
}
