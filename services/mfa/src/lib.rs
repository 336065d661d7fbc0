//! The MFA service: TOTP, phone and WebAuthn factors. It owns `mfa_factors` and `mfa_challenges`.
//! Its RPCs arrive with the MFA issue; today the process migrates the schema and serves gRPC health.

use auth_core::runtime::ServiceContext;
use auth_proto::mfa::v1::mfa_service_server::{MfaService, MfaServiceServer};
use tonic::service::Routes;

struct MfaGrpc;

#[tonic::async_trait]
impl MfaService for MfaGrpc {}

/// Serves the MFA service until `ctx.shutdown` fires.
pub async fn serve(ctx: ServiceContext) -> anyhow::Result<()> {
    let routes = Routes::new(MfaServiceServer::new(MfaGrpc));
    auth_core::grpc::serve(auth_proto::service_names::MFA, routes, ctx.listener, ctx.shutdown).await
}
