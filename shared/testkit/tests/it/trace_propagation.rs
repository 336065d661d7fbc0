//! W3C trace context across the suite: a caller's `traceparent` makes the gateway's request, the
//! service calls behind it and the email's delivery by the notifier (through the outbox and NATS)
//! one trace.

use std::collections::HashMap;

use auth_testkit::traces::SpanRecorder;
use auth_testkit::{Suite, retry_until};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_sign_up_and_its_email_are_one_trace_from_the_gateway_to_the_notifier() -> anyhow::Result<()> {
    let recorder = SpanRecorder::install()?;
    let suite = Suite::start().await?;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = suite
        .request(reqwest::Method::POST, "/signup")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({"email": email(), "password": "password-123"}))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    suite.smtp.next().await.expect("the confirmation email");

    let headers: sqlx::types::Json<HashMap<String, String>> = sqlx::query_scalar("SELECT headers FROM outbox_messages")
        .fetch_one(&suite.db)
        .await?;
    let traceparent = headers.get("traceparent").expect("the outbox row carries the trace");
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "same trace, the user service's span as parent: {traceparent}"
    );

    // The gateway's request span, the user service's call span and the notifier's delivery span.
    retry_until(|| async {
        let names = recorder.span_names_in_trace(trace_id);
        ["http", "grpc", "deliver"]
            .iter()
            .all(|name| names.iter().any(|n| n == name))
    })
    .await?;

    // A request without a traceparent starts a trace of its own.
    let response = suite
        .post_json("/signup", &json!({"email": email(), "password": "password-123"}))
        .await?;
    assert_eq!(response.status(), 200);
    let traces: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT substr(headers->>'traceparent', 4, 32)) FROM outbox_messages")
            .fetch_one(&suite.db)
            .await?;
    assert_eq!(traces, 2);
    suite.shutdown().await;
    Ok(())
}
