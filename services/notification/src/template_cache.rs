//! Custom email bodies (`GOTRUE_MAILER_TEMPLATES_*`): fetched over HTTP, kept for
//! `GOTRUE_MAILER_TEMPLATE_MAX_AGE`, as GoTrue's template cache does. When a refresh fails the last
//! good body stays in use (and is retried after `GOTRUE_MAILER_TEMPLATE_RETRY_INTERVAL`); with none,
//! GoTrue's built-in body is used, so a template server outage never stops mail.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::Config;
use auth_proto::notification::v1::EmailKind;
use tokio::sync::Mutex;

struct Entry {
    body: Arc<str>,
    fetched_at: Instant,
    checked_at: Instant,
}

pub struct TemplateCache {
    config: Arc<Config>,
    http: reqwest::Client,
    /// One lock for every kind: fetches are rare (every 10 minutes per kind), and holding it while
    /// fetching keeps a burst of emails from fetching the same template many times.
    entries: Mutex<HashMap<i32, Entry>>,
}

impl TemplateCache {
    pub fn new(config: Arc<Config>) -> anyhow::Result<Self> {
        auth_core::install_tls_provider();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self {
            config,
            http,
            entries: Mutex::new(HashMap::new()),
        })
    }

    fn url(&self, kind: EmailKind) -> Option<String> {
        let url = self.config.mailer.templates.get(kind)?;
        // GoTrue: a URL not starting with "http" is appended to the site URL as written.
        Some(if url.starts_with("http") {
            url.to_string()
        } else {
            let site = self.config.site_url.as_str();
            format!(
                "{}{url}",
                site.strip_suffix('/').filter(|_| url.starts_with('/')).unwrap_or(site)
            )
        })
    }

    /// The custom body for `kind`, or `None` for GoTrue's built-in one.
    pub async fn body(&self, kind: EmailKind) -> Option<Arc<str>> {
        let url = self.url(kind)?;
        let mailer = &self.config.mailer;
        let mut entries = self.entries.lock().await;
        let now = Instant::now();
        if let Some(entry) = entries.get(&(kind as i32))
            && (now.duration_since(entry.fetched_at) < mailer.template_max_age
                || now.duration_since(entry.checked_at) < mailer.template_retry_interval)
        {
            return Some(entry.body.clone());
        }
        match self.fetch(&url).await {
            Ok(body) => {
                let body: Arc<str> = body.into();
                entries.insert(
                    kind as i32,
                    Entry {
                        body: body.clone(),
                        fetched_at: now,
                        checked_at: now,
                    },
                );
                Some(body)
            }
            Err(error) => {
                tracing::warn!(%url, error = format!("{error:#}"), "email template fetch failed");
                let entry = entries.get_mut(&(kind as i32))?;
                entry.checked_at = now;
                Some(entry.body.clone())
            }
        }
    }

    async fn fetch(&self, url: &str) -> anyhow::Result<String> {
        let response = self.http.get(url).send().await?;
        anyhow::ensure!(
            response.status() == reqwest::StatusCode::OK,
            "GET {url}: status code {}",
            response.status().as_u16()
        );
        // Read at most the configured size, as GoTrue's LimitReader does.
        let limit = self.config.mailer.template_max_size;
        let mut body = Vec::new();
        let mut response = response;
        while let Some(chunk) = response.chunk().await? {
            let room = limit.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= limit {
                break;
            }
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}
