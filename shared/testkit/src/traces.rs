//! Spans kept in memory, for tests of trace propagation: the in-process suite's spans all land in
//! one recorder, so a test can check that one request became one trace across every service.

use std::sync::{Arc, Mutex};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[derive(Debug, Clone, Default)]
pub struct SpanRecorder {
    spans: Arc<Mutex<Vec<SpanData>>>,
}

impl SpanExporter for SpanRecorder {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        self.spans.lock().expect("recorder lock").extend(batch);
        std::future::ready(Ok(()))
    }
}

impl SpanRecorder {
    /// Installs the process's tracing subscriber with an OpenTelemetry layer that records every
    /// finished span here. Call it before [`crate::Suite::start`], once per test process.
    pub fn install() -> anyhow::Result<Self> {
        let recorder = Self::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(recorder.clone())
            .build();
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("auth-testkit")))
            .try_init()?;
        Ok(recorder)
    }

    /// The names of the finished spans that belong to trace `trace_id` (32 hex digits).
    pub fn span_names_in_trace(&self, trace_id: &str) -> Vec<String> {
        self.spans
            .lock()
            .expect("recorder lock")
            .iter()
            .filter(|span| span.span_context.trace_id().to_string() == trace_id)
            .map(|span| span.name.to_string())
            .collect()
    }
}
