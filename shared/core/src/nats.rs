//! NATS JetStream naming and setup shared by the publishers (outbox relays) and the notifier.
//!
//! Every subject and stream carries the configured prefix (`AUTH_NATS_PREFIX`), so several suites or
//! test runs share one NATS server without seeing each other's messages.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, stream};
use secrecy::ExposeSecret;

/// Subject of a notification event: `<prefix>.notification.v1.<event>`.
pub fn notification_subject(prefix: &str, event: &str) -> String {
    format!("{prefix}.notification.v1.{event}")
}

/// The stream holding every notification request of one suite.
pub fn notification_stream_name(prefix: &str) -> String {
    // Stream names may not contain dots; prefixes are letters, digits, `_` and `-`.
    format!("{}_NOTIFICATIONS", prefix.to_uppercase().replace('-', "_"))
}

/// The key-value bucket holding the gateway's per-IP rate-limit buckets.
pub fn rate_limit_bucket_name(prefix: &str) -> String {
    format!("{}_RATE_LIMITS", prefix.to_uppercase().replace('-', "_"))
}

/// Connects with the suite's NATS settings (`NATS_URL` and its credentials).
pub async fn connect_with(suite: &crate::config::SuiteConfig) -> anyhow::Result<async_nats::Client> {
    let auth = &suite.nats_auth;
    let mut options = async_nats::ConnectOptions::new();
    if let Some(path) = &auth.creds_file {
        options = options
            .credentials_file(path)
            .await
            .with_context(|| format!("cannot read NATS_CREDS {}", path.display()))?;
    }
    if let (Some(user), Some(password)) = (&auth.user, &auth.password) {
        options = options.user_and_password(user.clone(), password.expose_secret().to_string());
    }
    if let Some(token) = &auth.token {
        options = options.token(token.expose_secret().to_string());
    }
    if let Some(ca) = &auth.tls_ca {
        options = options.add_root_certificates(ca.clone());
    }
    options = options.require_tls(auth.tls_required);
    open(options, &suite.nats_url).await
}

/// Connects without credentials (tests, tools); `nats://user:password@host` URLs still work.
pub async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    open(async_nats::ConnectOptions::new(), url).await
}

async fn open(options: async_nats::ConnectOptions, url: &str) -> anyhow::Result<async_nats::Client> {
    options
        .name("auth-suite")
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to NATS at {url} (NATS_URL)"))
}

/// Creates the notification stream if it does not exist yet. A work queue: each message is removed
/// once one notifier replica acknowledged it; the duplicate window drops re-published outbox rows.
pub async fn ensure_notification_stream(
    jetstream: &jetstream::Context,
    prefix: &str,
) -> anyhow::Result<stream::Stream> {
    let name = notification_stream_name(prefix);
    jetstream
        .get_or_create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![notification_subject(prefix, "*")],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("cannot create JetStream stream {name}: {e}"))
}

/// Runs a JetStream setup step (stream, consumer) until it succeeds or `shutdown` fires. Under load
/// JetStream's API can time out at start; a service that gave up there would never become healthy.
pub async fn set_up<T, F, Fut>(
    what: &str,
    shutdown: &tokio_util::sync::CancellationToken,
    mut step: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match step().await {
            Ok(value) => return Ok(value),
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    what,
                    ?delay,
                    "JetStream setup failed; retrying"
                );
                tokio::select! {
                    () = shutdown.cancelled() => return Err(error.context(format!("{what}: stopped while retrying"))),
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix() {
        assert_eq!(
            notification_subject("auth", "email_requested"),
            "auth.notification.v1.email_requested"
        );
        assert_eq!(notification_stream_name("t-1a"), "T_1A_NOTIFICATIONS");
    }
}
