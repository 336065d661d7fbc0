//! Discovery documents and JWKS per issuer (GoTrue's `OIDCProviderCache`): fetched on first use,
//! kept `GOTRUE_EXTERNAL_OIDC_PROVIDER_CACHE_TTL` (1h), refetched at once when a token names a key
//! the set does not hold (at most once per `AUTH_OIDC_JWKS_REFRESH_INTERVAL`, a minute, per
//! issuer, so forged `kid`s cannot make the service hammer the issuer), and served stale when the
//! issuer cannot be reached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;

use crate::http::{ApiError, ProviderHttp};

/// The fields of an issuer's `/.well-known/openid-configuration` the suite uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    #[serde(default)]
    pub authorization_endpoint: String,
    #[serde(default)]
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
}

/// One issuer as known now.
#[derive(Debug, Clone)]
pub struct Issuer {
    pub discovery: Discovery,
    pub keys: Arc<JwkSet>,
}

struct Entry {
    issuer: Issuer,
    fetched_at: Instant,
    keys_fetched_at: Instant,
}

#[derive(Clone)]
pub struct OidcCache {
    http: ProviderHttp,
    ttl: Duration,
    key_refresh_interval: Duration,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    /// Issuers whose discovery document is not at `{issuer}/.well-known/openid-configuration`
    /// (custom providers with a `discovery_url`).
    discovery_urls: Arc<Mutex<HashMap<String, String>>>,
}

impl OidcCache {
    pub fn new(http: ProviderHttp, ttl: Duration, key_refresh_interval: Duration) -> Self {
        Self {
            http,
            ttl,
            key_refresh_interval,
            entries: Arc::default(),
            discovery_urls: Arc::default(),
        }
    }

    /// [`Self::issuer`] for an issuer whose discovery document lives at `discovery_url`; the
    /// location is remembered for later refetches (and for verifying its ID tokens).
    pub async fn issuer_at(&self, issuer: &str, discovery_url: &str) -> Result<Issuer, ApiError> {
        let well_known = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        {
            let mut urls = self
                .discovery_urls
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if discovery_url.is_empty() || discovery_url == well_known {
                urls.remove(issuer);
            } else if urls.get(issuer).map(String::as_str) != Some(discovery_url) {
                urls.insert(issuer.to_string(), discovery_url.to_string());
                // A new location: what was cached came from elsewhere.
                self.invalidate(issuer);
            }
        }
        self.issuer(issuer, true).await
    }

    /// Whether the issuer's document and keys are cached and young enough to be used without a fetch.
    pub fn is_fresh(&self, issuer: &str) -> bool {
        self.cached(issuer)
            .is_some_and(|(_, fetched_at, _)| fetched_at.elapsed() < self.ttl)
    }

    /// Forgets an issuer (a custom provider changed or went away): the next use fetches anew.
    pub fn invalidate(&self, issuer: &str) {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(issuer);
    }

    fn cached(&self, issuer: &str) -> Option<(Issuer, Instant, Instant)> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(issuer)
            .map(|entry| (entry.issuer.clone(), entry.fetched_at, entry.keys_fetched_at))
    }

    fn store(&self, url: &str, issuer: Issuer) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.insert(
            url.to_string(),
            Entry {
                issuer,
                fetched_at: now,
                keys_fetched_at: now,
            },
        );
    }

    /// The issuer's discovery document and keys. `exact_issuer`: the document must name the
    /// issuer it was fetched for (OIDC Discovery §4.3); Apple's is checked by the caller instead,
    /// as go-oidc's `InsecureIssuerURLContext` lets GoTrue do.
    pub async fn issuer(&self, url: &str, exact_issuer: bool) -> Result<Issuer, ApiError> {
        if let Some((issuer, fetched_at, _)) = self.cached(url)
            && fetched_at.elapsed() < self.ttl
        {
            return Ok(issuer);
        }
        match self.fetch(url, exact_issuer).await {
            Ok(issuer) => {
                self.store(url, issuer.clone());
                Ok(issuer)
            }
            Err(error) => match self.cached(url) {
                Some((stale, ..)) => {
                    tracing::warn!(issuer = url, %error, "OIDC issuer unreachable; using its cached keys");
                    Ok(stale)
                }
                None => Err(error),
            },
        }
    }

    /// A token named a key the cached set lacks: the issuer may have rotated its keys.
    pub async fn refresh_keys(&self, url: &str) -> Result<Option<Issuer>, ApiError> {
        let Some((issuer, _, keys_fetched_at)) = self.cached(url) else {
            return Ok(None);
        };
        if keys_fetched_at.elapsed() < self.key_refresh_interval {
            return Ok(None);
        }
        let keys: JwkSet = self.http.get_json(&issuer.discovery.jwks_uri, "", &[]).await?;
        let refreshed = Issuer {
            discovery: issuer.discovery.clone(),
            keys: Arc::new(keys),
        };
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = entries.get_mut(url) {
            entry.issuer = refreshed.clone();
            entry.keys_fetched_at = Instant::now();
        }
        Ok(Some(refreshed))
    }

    async fn fetch(&self, url: &str, exact_issuer: bool) -> Result<Issuer, ApiError> {
        let configured = self
            .discovery_urls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(url)
            .cloned();
        let well_known =
            configured.unwrap_or_else(|| format!("{}/.well-known/openid-configuration", url.trim_end_matches('/')));
        let discovery: Discovery = self.http.get_json(&well_known, "", &[]).await?;
        if exact_issuer && discovery.issuer != url {
            return Err(ApiError(format!(
                "oidc: issuer did not match the issuer returned by provider, expected {url:?} got {:?}",
                discovery.issuer
            )));
        }
        let keys: JwkSet = self.http.get_json(&discovery.jwks_uri, "", &[]).await?;
        Ok(Issuer {
            discovery,
            keys: Arc::new(keys),
        })
    }
}
