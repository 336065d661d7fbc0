//! Traces on the wire: the real binaries export OTLP over gRPC to a real receiver, and one sign-up is
//! one trace across gateway → user → token → notification, each span linked to its parent.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is the test failing"
)]

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use auth_testkit::otlp::{OtlpReceiver, ReceivedSpan};
use auth_testkit::{LaunchedSuite, SmtpSink, retry_until};
use serde_json::json;

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_auth-launcher"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

fn is_signup_request(span: &ReceivedSpan) -> bool {
    span.service.ends_with("gateway")
        && span.name == "http"
        && span.attributes.get("path").map(String::as_str) == Some("/signup")
}

/// The spans of the trace that holds the gateway's `/signup` request.
fn sign_up_trace(spans: &[ReceivedSpan]) -> Vec<ReceivedSpan> {
    let Some(root) = spans.iter().find(|s| is_signup_request(s)) else {
        return Vec::new();
    };
    spans.iter().filter(|s| s.trace_id == root.trace_id).cloned().collect()
}

#[tokio::test]
async fn a_sign_up_is_one_trace_across_every_process_on_the_wire() -> anyhow::Result<()> {
    auth_core::install_tls_provider();
    let receiver = OtlpReceiver::start().await?;
    let smtp = SmtpSink::start().await?;
    let mut settings = smtp.settings();
    settings.push(("GOTRUE_TRACING_ENABLED", "true".into()));
    settings.push(("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()));
    // Export within a moment instead of the batch processor's default 5 s.
    settings.push(("OTEL_BSP_SCHEDULE_DELAY", "100".into()));
    let suite = LaunchedSuite::start(&bin_dir(), &settings).await?;

    // A PKCE sign-up: the user service asks the token service for a flow state and queues the
    // confirmation email, which the notifier delivers.
    let response = reqwest::Client::new()
        .post(format!("{}/signup", suite.base_url))
        .json(&json!({
            "email": format!("traced-{}@example.com", uuid::Uuid::new_v4().simple()),
            "password": "password-123",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "s256",
        }))
        .send()
        .await?;
    anyhow::ensure!(response.status() == 200, "signup answered {}", response.status());
    smtp.next().await.expect("the confirmation email");

    let wanted = ["gateway", "user", "token", "notification"];
    retry_until(|| async {
        let trace = sign_up_trace(&receiver.spans());
        wanted.iter().all(|w| trace.iter().any(|s| s.service.ends_with(w)))
    })
    .await?;

    let trace = sign_up_trace(&receiver.spans());
    let services: BTreeSet<&str> = trace.iter().map(|s| s.service.as_str()).collect();
    assert!(services.len() >= 4, "{services:?}");
    // Exactly one root (the gateway's request); every other span's parent is a span of this trace.
    let by_id: HashMap<&str, &ReceivedSpan> = trace.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let roots: Vec<&ReceivedSpan> = trace.iter().filter(|s| s.parent_span_id.is_empty()).collect();
    assert_eq!(roots.len(), 1, "{trace:#?}");
    for span in &trace {
        if span.parent_span_id.is_empty() {
            continue;
        }
        let parent = by_id.get(span.parent_span_id.as_str());
        assert!(
            parent.is_some(),
            "span {} of {} has no parent in the trace",
            span.name,
            span.service
        );
    }
    // Each service's call span hangs under the process that called it.
    let parent_service = |service: &str, name: &str| {
        trace
            .iter()
            .find(|s| s.service.ends_with(service) && s.name == name)
            .and_then(|s| by_id.get(s.parent_span_id.as_str()))
            .map(|p| p.service.clone())
    };
    assert!(parent_service("user", "grpc").is_some_and(|p| p.ends_with("gateway")));
    assert!(parent_service("token", "grpc").is_some_and(|p| p.ends_with("user")));
    assert!(parent_service("notification", "deliver").is_some_and(|p| p.ends_with("user")));
    // No other trace holds a /signup request of this run.
    let signup_roots = receiver
        .spans()
        .iter()
        .filter(|s| is_signup_request(s))
        .map(|s| s.trace_id.clone())
        .collect::<BTreeSet<_>>();
    assert_eq!(signup_roots.len(), 1, "one trace per sign-up");
    suite.shutdown().await?;
    Ok(())
}
