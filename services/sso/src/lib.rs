//! The SSO service: external OAuth/OIDC providers and the SAML 2.0 service provider. It owns
//! `sso_providers`, `sso_domains`, `saml_providers` and `saml_relay_states`. Its RPCs arrive with the
//! SSO issue; today the process migrates the schema and serves gRPC health.

use auth_core::runtime::ServiceContext;
use auth_proto::sso::v1::sso_service_server::{SsoService, SsoServiceServer};
use tonic::service::Routes;

struct SsoGrpc;

#[tonic::async_trait]
impl SsoService for SsoGrpc {}

/// Serves the SSO service until `ctx.shutdown` fires.
pub async fn serve(ctx: ServiceContext) -> anyhow::Result<()> {
    let routes = Routes::new(SsoServiceServer::new(SsoGrpc));
    auth_core::grpc::serve(auth_proto::service_names::SSO, routes, ctx.listener, ctx.shutdown).await
}
