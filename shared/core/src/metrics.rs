//! Prometheus metrics (`GOTRUE_METRICS_ENABLED`): every process records with the `metrics` facade and,
//! when enabled, serves the Prometheus text format on its own port (`OTEL_EXPORTER_PROMETHEUS_*`),
//! at `/` as GoTrue does and at `/metrics`, never on the public API port.
//!
//! What is recorded, and where:
//! - `http_requests_total{method,route,status}`, `http_request_duration_seconds{method,route}`: the
//!   gateway, per matched route;
//! - `grpc_server_requests_total{service,method,code}`, `grpc_server_request_duration_seconds`: every
//!   gRPC server, per RPC;
//! - `password_hash_queue_depth`, `password_hashes_in_progress`: the user service's hashing pool;
//! - `outbox_unpublished_messages`, `outbox_oldest_unpublished_age_seconds`: the outbox relay;
//! - `jetstream_consumer_pending_messages{consumer}`, `notification_deliveries_total{channel,outcome}`:
//!   the notifier;
//! - `account_cache_lookups_total{result}`: the user service's GET /user cache (hit ratio);
//! - `db_pool_connections{state}`: every process with a database pool.
//!
//! Without `GOTRUE_METRICS_ENABLED` no recorder is installed and recording costs nothing.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use tonic::codegen::http;

use crate::config::MetricsConfig;

/// Latency buckets (seconds) for request histograms: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the Prometheus recorder and serves it until `shutdown`; returns the bound address.
/// Announces `{"metrics": "<addr>", "process": ...}` on stdout, as processes announce their API address.
pub async fn serve(process: &str, config: &MetricsConfig, shutdown: CancellationToken) -> anyhow::Result<SocketAddr> {
    let handle = PrometheusBuilder::new()
        .set_buckets(LATENCY_BUCKETS)
        .context("metrics buckets")?
        .add_global_label("process", format!("auth-{process}"))
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let listener = tokio::net::TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "cannot serve metrics on {} (OTEL_EXPORTER_PROMETHEUS_PORT)",
            config.listen
        )
    })?;
    let addr = listener.local_addr()?;
    let line = serde_json::json!({ "metrics": addr.to_string(), "process": process });
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
    let render = {
        let handle = handle.clone();
        move || {
            let handle = handle.clone();
            async move { handle.render() }
        }
    };
    let app = axum::Router::new()
        .route("/", get(render.clone()))
        .route("/metrics", get(render));
    tokio::spawn(upkeep(handle, shutdown.clone()));
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "metrics server failed");
        }
    });
    tracing::info!(%addr, "metrics on /metrics");
    Ok(addr)
}

/// Histograms are summarised lazily; upkeep keeps the recorder's memory bounded.
async fn upkeep(handle: PrometheusHandle, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => handle.run_upkeep(),
        }
    }
}

/// Runs `sample` now and then every few seconds until `shutdown`: how gauges that are read rather
/// than counted (pool usage, backlogs, consumer lag) stay current.
pub fn sample_periodically<F, Fut>(shutdown: CancellationToken, mut sample: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => sample().await,
            }
        }
    });
}

/// Samples a database pool's connections as `db_pool_connections{state}`.
#[cfg(feature = "db")]
pub fn sample_pool(pool: sqlx::PgPool, shutdown: CancellationToken) {
    sample_periodically(shutdown, move || {
        let size = f64::from(pool.size());
        let idle = pool.num_idle() as f64;
        let max = f64::from(pool.options().get_max_connections());
        async move {
            ::metrics::gauge!("db_pool_connections", "state" => "idle").set(idle);
            ::metrics::gauge!("db_pool_connections", "state" => "in_use").set((size - idle).max(0.0));
            ::metrics::gauge!("db_pool_max_connections").set(max);
        }
    });
}

/// Records `grpc_server_requests_total{service,method,code}` and
/// `grpc_server_request_duration_seconds{service,method}` for every call a gRPC server serves.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // `/auth.user.v1.UserService/GetUser` → service `auth.user.v1.UserService`, method `GetUser`
        let path = request.uri().path().trim_start_matches('/');
        let (service, method) = path.split_once('/').unwrap_or((path, ""));
        let (service, method) = (service.to_string(), method.to_string());
        let started = std::time::Instant::now();
        let call = self.inner.call(request);
        Box::pin(async move {
            let result = call.await;
            // An error is answered "trailers-only": its status is in the headers. A success
            // carries `grpc-status: 0` in the trailers, after the body.
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_string(),
                Err(_) => "transport".to_string(),
            };
            ::metrics::counter!("grpc_server_requests_total", "service" => service.clone(), "method" => method.clone(), "code" => code)
                .increment(1);
            ::metrics::histogram!("grpc_server_request_duration_seconds", "service" => service, "method" => method)
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}
