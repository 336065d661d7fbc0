//! The sso service's HTTP to providers: one pooled reqwest client with a timeout
//! (`GOTRUE_INTERNAL_HTTP_TIMEOUT`'s default of 10 s), used by the oauth2 crate for code exchange
//! and by the providers for their user APIs.

use std::time::Duration;

use serde::de::DeserializeOwned;

/// Lower-case hex, as Go's `%x` and `hex.EncodeToString` write bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// The body of a 2xx answer; anything else (unreachable, another status) as an error naming the URL
/// and the start of what came back.
async fn successful_body(url: &str, response: Result<reqwest::Response, reqwest::Error>) -> Result<Vec<u8>, ApiError> {
    let response = response.map_err(|e| ApiError(format!("request to {url} failed: {e}")))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| ApiError(format!("reading {url} failed: {e}")))?;
    if !status.is_success() {
        return Err(ApiError(format!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&body).chars().take(200).collect::<String>()
        )));
    }
    Ok(body.to_vec())
}

#[derive(Clone)]
pub struct ProviderHttp {
    client: reqwest::Client,
}

/// A provider's API answered something else than a 2xx JSON body.
#[derive(Debug)]
pub struct ApiError(pub String);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ApiError {}

impl ProviderHttp {
    /// `extra_roots`: a PEM file of certificate authorities trusted beside the system's
    /// (`AUTH_EXTERNAL_CA_CERTS`).
    pub fn new(timeout: Duration, extra_roots: Option<&std::path::Path>) -> anyhow::Result<Self> {
        // reqwest is built without a crypto provider of its own; building a client before one is
        // installed panics.
        auth_core::install_tls_provider();
        let roots = match extra_roots {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("AUTH_EXTERNAL_CA_CERTS: cannot read {}: {e}", path.display()))?;
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    anyhow::anyhow!(
                        "AUTH_EXTERNAL_CA_CERTS: {} holds no usable PEM certificates: {e}",
                        path.display()
                    )
                })?
            }
            None => Vec::new(),
        };
        let client = reqwest::Client::builder()
            .tls_certs_merge(roots)
            .timeout(timeout)
            .user_agent(concat!("auth-suite/", env!("CARGO_PKG_VERSION")))
            // A token endpoint that redirects is misconfigured; following would leak the code.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { client })
    }

    /// The oauth2 crate's transport.
    pub async fn send(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, reqwest::Error> {
        let request = reqwest::Request::try_from(request)?;
        let response = self.client.execute(request).await?;
        let mut answer = http::Response::builder().status(response.status());
        if let Some(headers) = answer.headers_mut() {
            headers.extend(response.headers().clone());
        }
        let body = response.bytes().await?.to_vec();
        Ok(answer.body(body).unwrap_or_default())
    }

    /// A GET answered with a form (OAuth 1.0a's token endpoints), with its `Authorization` header.
    pub async fn get_form(&self, url: &str, authorization: &str) -> Result<Vec<(String, String)>, ApiError> {
        let response = self
            .client
            .get(url)
            .header(http::header::AUTHORIZATION, authorization)
            .send()
            .await;
        let body = successful_body(url, response).await?;
        Ok(url::form_urlencoded::parse(&body).into_owned().collect())
    }

    /// GoTrue's `makeRequest`: a GET with the user's access token (and any header the provider
    /// wants beside it), decoded from JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        access_token: &str,
        headers: &[(&str, &str)],
    ) -> Result<T, ApiError> {
        let mut request = self.client.get(url).header(http::header::ACCEPT, "application/json");
        // Public documents (OIDC discovery, JWKS) are fetched without a token.
        if !access_token.is_empty() {
            request = request.bearer_auth(access_token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = successful_body(url, request.send().await).await?;
        serde_json::from_slice(&body).map_err(|e| ApiError(format!("{url} answered unreadable JSON: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a process where nothing installed a TLS provider before (as in the sso binary).
    #[test]
    fn builds_in_a_fresh_process() {
        assert!(ProviderHttp::new(Duration::from_secs(1), None).is_ok());
    }
}
