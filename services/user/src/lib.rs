//! The user service: account lifecycle. It owns `users`, `identities`, `one_time_tokens` and
//! `audit_log_entries`: sign-up, password sign-in, reading and updating the signed-in user.
//! Email and SMS requests go to the outbox table and on to JetStream through the relay.
//! Sessions are the token service's: the user service asks it for one once a user proved who they are.

mod account_cache;
mod admin;
mod audit_log;
mod code_purpose;
mod codes;
mod compensate;
mod generate_link;
mod grpc;
mod invite;
mod live_sessions;
mod notifications;
mod otp_failures;
mod outbox;
mod outbox_relay;
pub mod password;
mod send;
mod send_budget;
mod signin;
mod signup;
mod state;
mod store;
mod update;
mod validate;
mod verify;

use auth_core::nats;
use auth_core::runtime::ServiceContext;
use auth_proto::user::v1::user_service_server::UserServiceServer;
use tonic::service::Routes;

/// Serves the user service until `ctx.shutdown` fires, relaying its outbox to JetStream meanwhile.
pub async fn serve(ctx: ServiceContext) -> anyhow::Result<()> {
    let suite = &ctx.config.suite;
    let jetstream = async_nats::jetstream::new(nats::connect_with(suite).await?);
    // The stream must exist before the first publish, whichever process starts first.
    nats::set_up("notification stream", &ctx.shutdown, || {
        nats::ensure_notification_stream(&jetstream, &suite.nats_prefix)
    })
    .await?;
    let relay = outbox_relay::spawn(ctx.db.clone(), jetstream, &suite.nats_prefix, ctx.shutdown.clone());
    if ctx.config.metrics.enabled {
        outbox_relay::sample_backlog(ctx.db.clone(), &suite.nats_prefix, ctx.shutdown.clone());
    }
    let accounts = account_cache::AccountCache::new(suite.user_cache_ttl, suite.user_cache_capacity);
    account_cache::spawn_listener(accounts.clone(), &ctx.config.db, ctx.shutdown.clone())?;
    let live_sessions = live_sessions::LiveSessions::spawn(ctx.db.clone(), &ctx.shutdown);
    let state = state::UserState::new(ctx.config.clone(), ctx.db.clone(), relay, accounts, live_sessions)?;
    let routes = Routes::new(UserServiceServer::new(grpc::UserGrpc { state }));
    auth_core::grpc::serve(auth_proto::service_names::USER, routes, ctx.listener, ctx.shutdown).await
}
