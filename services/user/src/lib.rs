//! The user service: account lifecycle. It owns `users`, `identities`, `one_time_tokens` and
//! `audit_log_entries`: sign-up, password sign-in, reading and updating the signed-in user.
//! Email and SMS requests go to the outbox table and on to JetStream through the relay (`auth-outbox`).
//! Sessions are the token service's: the user service asks it for one once a user proved who they are.

mod account_cache;
mod admin;
mod audit_log;
mod code_purpose;
mod codes;
mod compensate;
mod external;
mod generate_link;
mod grpc;
mod invite;
mod link;
mod live_sessions;
mod notifications;
mod otp_failures;
pub mod password;
mod sealed_password;
mod send;
mod signin;
mod signup;
mod state;
mod store;
mod update;
mod validate;
mod verify;

use auth_core::runtime::ServiceContext;
use auth_proto::user::v1::user_service_server::UserServiceServer;
use tonic::service::Routes;

/// Serves the user service until `ctx.shutdown` fires, relaying its outbox to JetStream meanwhile.
pub async fn serve(ctx: ServiceContext) -> anyhow::Result<()> {
    let suite = &ctx.config.suite;
    let relay = auth_outbox::relay::start(&ctx).await?;
    let accounts = account_cache::AccountCache::new(suite.user_cache_ttl, suite.user_cache_capacity);
    account_cache::spawn_listener(accounts.clone(), &ctx.config.db, ctx.shutdown.clone())?;
    let live_sessions = live_sessions::LiveSessions::spawn(ctx.db.clone(), &ctx.shutdown);
    let state = state::UserState::new(ctx.config.clone(), ctx.db.clone(), relay, accounts, live_sessions)?;
    let routes = Routes::new(UserServiceServer::new(grpc::UserGrpc { state }));
    auth_core::grpc::serve(auth_proto::service_names::USER, routes, ctx.listener, ctx.shutdown).await
}
