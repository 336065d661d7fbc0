//! Per-IP request limits shared by every gateway replica.
//!
//! GoTrue keeps its token buckets in process memory, so N replicas allow N times the limit. Here the
//! buckets live in a NATS JetStream key-value bucket: each request reads its bucket, refills it for the
//! time that passed, takes a token and writes it back with compare-and-set on the entry's revision,
//! retrying when another replica wrote first. Idle buckets expire with the KV bucket's max age.
//!
//! The key is GoTrue's: the IP in `Sb-Forwarded-For` (when enabled) or the first value of the header
//! named by `GOTRUE_RATE_LIMIT_HEADER`. Without one, no per-IP limit applies, as in GoTrue.
//! If NATS cannot be reached the request is let through and the failure logged: an outage of the
//! limiter must not become an outage of sign-in.

use std::time::Duration;

use async_nats::jetstream::kv;
use auth_core::config::IpRateLimit;
use bytes::Bytes;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Compare-and-set attempts before giving up and letting the request through.
const MAX_ATTEMPTS: usize = 16;

#[derive(Clone)]
pub struct RateLimiter {
    store: kv::Store,
    header: Option<String>,
    sb_forwarded_for: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// Which limiter a route uses; each has its own buckets.
#[derive(Debug, Clone, Copy)]
pub enum Limiter {
    Token,
    Signup,
    AnonymousSignup,
    UserUpdate,
    Verify,
    Recover,
    Resend,
    MagicLink,
    Otp,
    FactorChallenge,
    FactorVerify,
    PasskeySignIn,
}

impl Limiter {
    fn name(self) -> &'static str {
        match self {
            Limiter::Token => "token",
            Limiter::Signup => "signup",
            Limiter::AnonymousSignup => "anonymous",
            Limiter::UserUpdate => "user",
            Limiter::Verify => "verify",
            Limiter::Recover => "recover",
            Limiter::Resend => "resend",
            Limiter::MagicLink => "magiclink",
            Limiter::Otp => "otp",
            Limiter::FactorChallenge => "factor_challenge",
            Limiter::FactorVerify => "factor_verify",
            Limiter::PasskeySignIn => "passkey",
        }
    }
}

impl RateLimiter {
    /// Opens (or creates) the suite's rate-limit bucket.
    pub async fn connect(config: &auth_core::Config) -> anyhow::Result<Self> {
        let client = auth_core::nats::connect_with(&config.suite).await?;
        let jetstream = async_nats::jetstream::new(client);
        let bucket = auth_core::nats::rate_limit_bucket_name(&config.suite.nats_prefix);
        // The bucket's stream is created directly: async-nats' create_key_value first asks for account
        // info, whose reply from NATS 2.9 servers it cannot parse. The settings are those of a KV bucket.
        jetstream
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: format!("KV_{bucket}"),
                description: Some("auth suite per-IP rate limits".into()),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: 1,
                // Longer than any refill window: a bucket idle this long is full again anyway.
                max_age: Duration::from_secs(2 * 3600),
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: async_nats::jetstream::stream::DiscardPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("cannot create the rate-limit stream for {bucket}: {e}"))?;
        let store = jetstream
            .get_key_value(&bucket)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open KV bucket {bucket}: {e}"))?;
        Ok(Self {
            store,
            header: config.rate_limit.header.as_ref().map(|h| h.to_ascii_lowercase()),
            sb_forwarded_for: config.security.sb_forwarded_for_enabled,
        })
    }

    /// The client IP that keys the buckets, or `None` (no limit) as GoTrue decides.
    fn client_key(&self, headers: &HeaderMap) -> Option<String> {
        if self.sb_forwarded_for
            && let Some(ip) = headers.get("sb-forwarded-for").and_then(|v| v.to_str().ok())
            && let Some(first) = ip.split(',').next().map(str::trim).filter(|s| !s.is_empty())
        {
            return Some(first.to_string());
        }
        let header = self.header.as_deref()?;
        let value = headers.get(header)?.to_str().ok()?;
        value
            .split(',')
            .next()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// 429 `over_request_rate_limit` when the caller's bucket for `limiter` is empty.
    pub async fn check(&self, headers: &HeaderMap, limiter: Limiter, limit: IpRateLimit) -> Result<(), ApiError> {
        let Some(client) = self.client_key(headers) else {
            return Ok(());
        };
        if client.len() > MAX_CLIENT_KEY_BYTES {
            return Err(ApiError::new(
                http::StatusCode::BAD_REQUEST,
                auth_core::ErrorCode::ValidationFailed,
                "The client address header is too long",
            ));
        }
        // KV keys allow a restricted alphabet and a bounded length: the SHA-256 of the address, in
        // hex, is always a valid 64-character key, whatever the header held.
        let key = format!("{}.{}", limiter.name(), hex(&Sha256::digest(client.as_bytes())));
        match self.take(&key, limit).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ApiError::new(
                http::StatusCode::TOO_MANY_REQUESTS,
                auth_core::ErrorCode::OverRequestRateLimit,
                "Request rate limit reached",
            )),
            Err(e) => {
                tracing::warn!(error = %e, "rate limiter unavailable; request allowed");
                Ok(())
            }
        }
    }

    /// Takes one token from the bucket; `false` when it is empty.
    async fn take(&self, key: &str, limit: IpRateLimit) -> anyhow::Result<bool> {
        let refill_per_ms = if limit.window.is_zero() {
            0.0
        } else {
            limit.per_window / limit.window.as_millis() as f64
        };
        for _ in 0..MAX_ATTEMPTS {
            let now_ms = chrono::Utc::now().timestamp_millis();
            let entry = self.store.entry(key).await?;
            let live = entry.as_ref().filter(|e| e.operation == kv::Operation::Put);
            let mut bucket = live
                .and_then(|e| serde_json::from_slice::<Bucket>(&e.value).ok())
                .unwrap_or(Bucket {
                    tokens: limit.burst,
                    at_ms: now_ms,
                });
            let elapsed = (now_ms - bucket.at_ms).max(0) as f64;
            bucket.tokens = (bucket.tokens + elapsed * refill_per_ms).min(limit.burst);
            bucket.at_ms = now_ms;
            if bucket.tokens < 1.0 {
                return Ok(false);
            }
            bucket.tokens -= 1.0;
            let value = Bytes::from(serde_json::to_vec(&bucket)?);
            let written = match &entry {
                Some(existing) => self.store.update(key, value, existing.revision).await.is_ok(),
                None => self.store.create(key, value).await.is_ok(),
            };
            if written {
                return Ok(true);
            }
            // Another replica (or request) wrote first: read again.
        }
        anyhow::bail!("rate limit bucket {key} kept changing under contention")
    }
}

/// Longer than any address a proxy writes (an IPv6 address with a zone is under 64 bytes).
const MAX_CLIENT_KEY_BYTES: usize = 256;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
