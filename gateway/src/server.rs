//! The gateway's HTTP server: GoTrue's `net/http` limits, plus a cap on open connections.
//!
//! - a connection must send a request's headers within `AUTH_HTTP_HEADER_READ_TIMEOUT` (GoTrue's
//!   2 s `ReadHeaderTimeout`) of connecting or of its previous response, so silent or slow sockets
//!   are closed instead of piling up;
//! - request headers may total 1 MiB (Go's `DefaultMaxHeaderBytes`), so access tokens carrying large
//!   metadata work as they do with GoTrue;
//! - at most `AUTH_HTTP_MAX_CONNECTIONS` connections are served at once; past that a new connection
//!   is answered 503 in GoTrue's error shape and closed (load is shed, the process keeps its file
//!   descriptors and keeps answering `/health`);
//! - on shutdown no new connection is accepted and in-flight requests finish.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Go's `http.DefaultMaxHeaderBytes`, plus room for the request line.
pub const MAX_HEADER_BYTES: usize = (1 << 20) + 8192;

/// How long in-flight requests may take to finish once shutdown began.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` fires.
pub async fn serve(listener: TcpListener, app: Router, limits: HttpLimits, shutdown: CancellationToken) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));

    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Responses go out as soon as they are written (no Nagle delay behind a delayed ACK).
        let _ = stream.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(shed(stream));
            continue;
        };
        let service = app
            .clone()
            .map_request(move |mut request: http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // A connection that never sends a byte is closed too (hyper's own header timeout starts
            // only once the protocol is known, which takes a first byte).
            let mut first_byte = [0u8; 1];
            match tokio::time::timeout(limits.header_read_timeout, stream.peek(&mut first_byte)).await {
                Ok(Ok(read)) if read > 0 => {}
                _ => return, // silent past the timeout, closed, or failed
            }
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
                .into_owned();
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}");
    }
}

/// Answers a connection over the cap with a 503 and closes it.
async fn shed(mut stream: TcpStream) {
    const BODY: &str =
        r#"{"code":503,"error_code":"over_request_rate_limit","msg":"Too many connections, try again later"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\nretry-after: 1\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
