//! gRPC plumbing shared by every service and client: serving with health and graceful shutdown,
//! and lazily-connected channels that fail fast while a service is down and recover by themselves.

use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codegen::http;
use tonic::metadata::MetadataKey;
use tonic::service::Routes;
use tonic::service::interceptor::{InterceptedService, Interceptor};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tower_http::trace::TraceLayer;

/// Serves `routes` plus the standard gRPC health service on `listener` until `shutdown` fires, then
/// drains in-flight calls. `service_name` is the fully-qualified name reported as SERVING (the empty
/// name, "the whole server", is reported too).
pub async fn serve(
    service_name: &'static str,
    routes: Routes,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    report(&reporter, service_name, tonic_health::ServingStatus::Serving).await;

    let addr = listener.local_addr()?;
    tracing::info!(%addr, service = service_name, "gRPC server listening");
    // Built from the listener, the incoming stream must set TCP_NODELAY itself: the builder's
    // `tcp_nodelay` only applies when tonic binds the socket. Without it, multiplexed HTTP/2
    // responses wait behind Nagle's algorithm.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let shutdown_signal = {
        let shutdown = shutdown.clone();
        let reporter = reporter.clone();
        async move {
            shutdown.cancelled().await;
            // Tell health checkers first, so load balancers stop sending work while we drain.
            report(&reporter, service_name, tonic_health::ServingStatus::NotServing).await;
        }
    };
    Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // The gateway forwards the client's `Authorization` header as metadata: access tokens with
        // large metadata must fit (hyper's default list is 16 KiB; GoTrue accepts 1 MiB of headers).
        .http2_max_header_list_size(Some(MAX_METADATA_BYTES))
        // Every call runs in a span that continues the caller's trace; failures are the caller's to
        // report (a gRPC error status is often an expected answer, e.g. wrong password).
        .layer(TraceLayer::new_for_grpc().make_span_with(call_span).on_failure(()))
        // ... and knows the end user's address, for the audit log.
        .layer(crate::client_ip::ClientIpLayer)
        .layer(crate::metrics::GrpcMetricsLayer)
        .add_routes(routes.add_service(health_service))
        .serve_with_incoming_shutdown(incoming, shutdown_signal)
        .await
        .with_context(|| format!("gRPC server {service_name} failed"))?;
    tracing::info!(service = service_name, "gRPC server stopped");
    Ok(())
}

/// Sets the status of the named service and of the whole server (the empty name load balancers ask for).
async fn report(
    reporter: &tonic_health::server::HealthReporter,
    service_name: &str,
    status: tonic_health::ServingStatus,
) {
    reporter.set_service_status(service_name, status).await;
    reporter.set_service_status("", status).await;
}

/// Request metadata a service accepts: Go's 1 MiB header limit plus room for the other metadata.
pub const MAX_METADATA_BYTES: u32 = (1 << 20) + 64 * 1024;

/// A channel to a service. It connects lazily and reconnects by itself, so a process can start before
/// its dependencies and survives their restarts. One channel multiplexes every call over HTTP/2;
/// clone it freely (clones share the connection).
pub fn channel(url: &str, connect_timeout: Duration, timeout: Duration) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .with_context(|| format!("invalid gRPC endpoint URL {url}"))?
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}

/// A channel whose calls carry the caller's request context: its trace (W3C `traceparent`
/// metadata), so a request is one trace from the gateway through every service it reaches, and the
/// end user's address ([`crate::client_ip`]).
pub type TracedChannel = InterceptedService<Channel, PropagateContext>;

/// [`channel`], carrying the caller's trace and client address.
pub fn traced_channel(url: &str, connect_timeout: Duration, timeout: Duration) -> anyhow::Result<TracedChannel> {
    Ok(InterceptedService::new(
        channel(url, connect_timeout, timeout)?,
        PropagateContext,
    ))
}

/// Adds the current span's trace context and the current client address to each outgoing call's
/// metadata.
#[derive(Debug, Clone, Copy)]
pub struct PropagateContext;

impl Interceptor for PropagateContext {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        for (name, value) in crate::telemetry::current_trace_headers() {
            if let (Ok(key), Ok(value)) = (MetadataKey::from_bytes(name.as_bytes()), value.parse()) {
                request.metadata_mut().insert(key, value);
            }
        }
        let client_ip = crate::client_ip::current();
        if !client_ip.is_empty()
            && let Ok(value) = client_ip.parse()
        {
            request.metadata_mut().insert(crate::client_ip::METADATA_KEY, value);
        }
        Ok(request)
    }
}

/// The span of one incoming call, continuing the caller's trace when it sent one.
fn call_span(request: &http::Request<tonic::body::Body>) -> tracing::Span {
    let span = tracing::info_span!("grpc", path = request.uri().path());
    crate::telemetry::continue_trace(&span, |name| request.headers().get(name)?.to_str().ok());
    span
}

/// Asks a server's health service whether `service_name` is SERVING.
pub async fn is_serving(channel: Channel, service_name: &str) -> bool {
    let mut client = HealthClient::new(channel);
    let request = HealthCheckRequest {
        service: service_name.to_string(),
    };
    matches!(
        client.check(request).await,
        Ok(response) if response.get_ref().status() == ServingStatus::Serving
    )
}
