//! The MFA service: TOTP, phone and WebAuthn factors. It owns `mfa_factors` and `mfa_challenges`.
//! Today it serves the admin factor API; enrolment, challenges and verification arrive with the
//! MFA flows. Sessions are the token service's: removing a factor asks it to downgrade them.

mod admin_factors;
mod grpc;
mod state;

use auth_core::runtime::ServiceContext;
use auth_proto::mfa::v1::mfa_service_server::MfaServiceServer;
use tonic::service::Routes;

/// Serves the MFA service until `ctx.shutdown` fires.
pub async fn serve(ctx: ServiceContext) -> anyhow::Result<()> {
    let state = state::MfaState::new(ctx.config.clone(), ctx.db.clone())?;
    let routes = Routes::new(MfaServiceServer::new(grpc::MfaGrpc { state }));
    auth_core::grpc::serve(auth_proto::service_names::MFA, routes, ctx.listener, ctx.shutdown).await
}
