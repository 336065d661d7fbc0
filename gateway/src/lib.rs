//! The HTTP gateway: GoTrue's public REST API in front of the suite's gRPC services.
//!
//! It owns no data. It parses requests, applies the cross-cutting HTTP rules (CORS, request ids, the
//! 1 MiB body limit, the request timeout, error rendering in both GoTrue formats) and makes (usually)
//! one RPC per request.

mod clients;
pub mod error;
mod extract;
mod middleware;
mod rate_limit;
mod render;
mod routes;
mod server;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use auth_core::Config;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use clients::ServiceClients;
pub use extract::AppJson;

/// Shared by every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub clients: ServiceClients,
    /// Per-IP limits in NATS KV; `None` when no rate-limit header is configured (GoTrue applies none).
    pub rate_limiter: Option<rate_limit::RateLimiter>,
    /// Which `redirect_to` targets are honoured (`GOTRUE_SITE_URL`, `GOTRUE_URI_ALLOW_LIST`).
    pub redirects: Arc<auth_core::redirect::RedirectPolicy>,
    /// `/settings` depends only on the configuration: rendered once.
    settings_json: Arc<str>,
}

impl AppState {
    pub fn new(config: Arc<Config>) -> anyhow::Result<Self> {
        let clients = ServiceClients::new(&config.suite)?;
        let settings_json = routes::general::render_settings(&config)?.into();
        Ok(Self {
            redirects: Arc::new(auth_core::redirect::RedirectPolicy::new(&config)),
            config,
            clients,
            rate_limiter: None,
            settings_json,
        })
    }
}

/// The complete application: every route behind every middleware.
pub fn app(state: AppState) -> Router {
    middleware::wrap(routes::router(), state)
}

/// Serves the gateway on `listener` until `shutdown` fires, then finishes in-flight requests.
pub async fn serve(config: Arc<Config>, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut state = AppState::new(config.clone())?;
    if config.rate_limit.header.is_some() || config.security.sb_forwarded_for_enabled {
        state.rate_limiter = Some(rate_limit::RateLimiter::connect(&config).await?);
    }
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "gateway listening");
    let limits = server::HttpLimits {
        max_connections: config.api.max_connections,
        header_read_timeout: config.api.header_read_timeout,
    };
    server::serve(listener, app(state), limits, shutdown).await;
    tracing::info!("gateway stopped");
    Ok(())
}
