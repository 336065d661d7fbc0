//! The address of the person a call acts for, as request context.
//!
//! The gateway works it out once per HTTP request (`X-Forwarded-For`, or `Sb-Forwarded-For` when
//! enabled) and runs the request inside [`scope`]. From there it travels the way the trace does:
//! every gRPC call made inside the scope carries it as `x-client-ip` metadata
//! ([`crate::grpc::PropagateContext`]) and every gRPC server runs the call inside a scope of its own
//! ([`ClientIpLayer`]). So the audit log ([`crate::audit`]) records who acted from where without
//! each flow passing the address down by hand, and an internal caller that sends no address is
//! simply recorded without one.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http;

/// The gRPC metadata (HTTP/2 header) name the address travels under.
pub const METADATA_KEY: &str = "x-client-ip";

tokio::task_local! {
    static CLIENT_IP: String;
}

/// Runs `work` with `ip` as the client address.
pub async fn scope<F: Future>(ip: String, work: F) -> F::Output {
    CLIENT_IP.scope(ip, work).await
}

/// The client address of the call being served, or "" outside any scope.
pub fn current() -> String {
    CLIENT_IP.try_with(Clone::clone).unwrap_or_default()
}

/// Serves each incoming call inside a [`scope`] of the address its caller sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientIpLayer;

impl<S> tower::Layer<S> for ClientIpLayer {
    type Service = WithClientIp<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithClientIp { inner }
    }
}

#[derive(Debug, Clone)]
pub struct WithClientIp<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for WithClientIp<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let ip = request
            .headers()
            .get(METADATA_KEY)
            .and_then(|value| value.to_str().ok())
            // The column holds 64 characters; an address is never longer.
            .filter(|value| value.len() <= 64)
            .unwrap_or_default()
            .to_string();
        // Tonic's handler future does its work when polled, so it all runs inside the scope.
        Box::pin(scope(ip, self.inner.call(request)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_address_is_visible_inside_its_scope_only() {
        assert_eq!(current(), "");
        let seen = scope("203.0.113.7".into(), async { current() }).await;
        assert_eq!(seen, "203.0.113.7");
        assert_eq!(current(), "");
    }
}
