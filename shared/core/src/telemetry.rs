//! Logging and tracing: `tracing` to stderr (text or JSON) and, when `GOTRUE_TRACING_ENABLED`, spans
//! exported over OTLP/gRPC to a collector.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogConfig, LogFormat, TracingConfig};

/// Flushes and stops the span exporter when dropped: keep it alive for the life of the process.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("trace exporter shutdown failed: {e}");
        }
    }
}

/// Installs the global subscriber for process `service` (e.g. `token`). `RUST_LOG` overrides
/// `GOTRUE_LOG_LEVEL`; the HTTP/2 and gRPC transport crates are kept at `warn`.
pub fn init(service: &str, log: &LogConfig, tracing: &TracingConfig) -> anyhow::Result<TelemetryGuard> {
    let filter = || {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new(format!(
                "{},h2=warn,hyper=warn,tower=warn,tonic=warn,sqlx=warn,async_nats=warn",
                log.level
            ))
        })
    };
    let fmt_layer = match log.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .boxed(),
    }
    .with_filter(filter());

    let provider = if tracing.enabled {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(tracing.otlp_endpoint.clone())
            .build()?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(format!("{}-{service}", tracing.service_name))
            .build();
        Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource)
                .build(),
        )
    } else {
        None
    };
    let otel_layer = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("auth-suite"))
            .with_filter(filter())
    });
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()?;
    Ok(TelemetryGuard { provider })
}

/// The W3C trace context (`traceparent`, and `tracestate` when set) of the current span, as header
/// name → value, for carrying a trace across a process boundary (gRPC metadata, NATS headers).
/// Empty when tracing is off.
pub fn current_trace_headers() -> HashMap<String, String> {
    let context = tracing::Span::current().context();
    let mut headers = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut headers);
    headers
}

/// Makes `span` continue the remote trace described by W3C trace context headers, which `header`
/// looks up by name (`traceparent`, `tracestate`). Without a valid `traceparent` the span starts a
/// trace of its own.
pub fn continue_trace<'a>(span: &tracing::Span, header: impl Fn(&str) -> Option<&'a str>) {
    let carrier: HashMap<String, String> = TraceContextPropagator::new()
        .fields()
        .filter_map(|name| Some((name.to_string(), header(name)?.to_string())))
        .collect();
    if carrier.is_empty() {
        return;
    }
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        // Fails only when the span is already closed or tracing is off; either way nothing to link.
        let _ = span.set_parent(context);
    }
}
