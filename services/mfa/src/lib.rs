//! The MFA service: TOTP, phone and WebAuthn factors. It owns `mfa_factors`, `mfa_challenges`,
//! `suite_totp_accepted_steps`, `suite_mfa_failures` and `suite_mfa_recovery_codes`. It serves a
//! user's own factors (`factors.rs`, with `phone.rs` for SMS codes), the suite's recovery codes
//! (`recovery_codes.rs`), the admin factor API (`admin_factors.rs`) and passkeys (`passkeys/`, with
//! `webauthn_credentials` and `webauthn_challenges`).
//! Sessions are the token service's: a verification asks it to step the session up, removing a
//! factor asks it to downgrade them. Phone codes and factor notifications go out through the
//! outbox (`auth-outbox`), written in the transaction of the change they belong to.

mod admin_factors;
mod factor_type;
mod factors;
mod failures;
mod gotrue_credential;
mod grpc;
mod notifications;
mod passkeys;
mod passkeys_grpc;
mod phone;
mod recovery_codes;
mod state;
mod store;
mod totp;
mod webauthn;

use auth_core::runtime::ServiceContext;
use auth_proto::mfa::v1::mfa_service_server::MfaServiceServer;
use auth_proto::mfa::v1::passkey_service_server::PasskeyServiceServer;
use tonic::service::Routes;

/// Serves the MFA service until `ctx.shutdown` fires.
pub async fn serve(ctx: ServiceContext) -> anyhow::Result<()> {
    let relay = auth_outbox::relay::start(&ctx).await?;
    let state = state::MfaState::new(ctx.config.clone(), ctx.db.clone(), relay)?;
    let routes = Routes::new(MfaServiceServer::new(grpc::MfaGrpc { state: state.clone() }))
        .add_service(PasskeyServiceServer::new(passkeys_grpc::PasskeyGrpc { state }));
    auth_core::grpc::serve(auth_proto::service_names::MFA, routes, ctx.listener, ctx.shutdown).await
}
