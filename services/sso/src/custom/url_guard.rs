//! GoTrue's `ValidateOAuthURL`: the URLs an admin gives a custom provider are fetched by the
//! server, so they must be HTTPS and must not lead into the server's own network (loopback,
//! private, link-local, multicast or unspecified addresses, cloud metadata), lest the admin API
//! become a way to make the server call internal services. `AUTH_CUSTOM_OAUTH_ALLOW_PRIVATE_NETWORKS`
//! lifts the network rule (HTTPS stays required) for identity providers inside the cluster.

use std::net::IpAddr;

use auth_core::{ErrorCode, ServiceError};

fn refused(message: &str) -> ServiceError {
    ServiceError::bad_request(ErrorCode::ValidationFailed, message)
}

/// GoTrue's `isLocalhost`.
fn is_localhost(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1" | "0.0.0.0" | "::") || host.ends_with(".localhost")
}

/// GoTrue's `validateIP`: the reason an address is refused, if it is.
fn refusal(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    if ip.is_loopback() {
        return Some("URL cannot resolve to loopback addresses");
    }
    let (private, link_local) = match ip {
        IpAddr::V4(v4) => (v4.is_private(), v4.is_link_local()),
        // fc00::/7 and fe80::/10
        IpAddr::V6(v6) => (
            (v6.segments()[0] & 0xfe00) == 0xfc00,
            (v6.segments()[0] & 0xffc0) == 0xfe80,
        ),
    };
    if private {
        return Some("URL cannot resolve to private network addresses");
    }
    // 169.254.0.0/16 holds the cloud metadata endpoint 169.254.169.254.
    if link_local {
        return Some("URL cannot resolve to link-local addresses");
    }
    if ip.is_multicast() {
        return Some("URL cannot resolve to multicast addresses");
    }
    if ip.is_unspecified() {
        return Some("URL cannot resolve to unspecified addresses");
    }
    None
}

/// Checks one URL an admin configured, with GoTrue's messages.
pub async fn check(url: &str, allow_private_networks: bool) -> Result<(), ServiceError> {
    let parsed = url::Url::parse(url).map_err(|_| refused("Invalid URL format"))?;
    if parsed.scheme() != "https" {
        return Err(refused("URL must use HTTPS"));
    }
    let host = match parsed.host() {
        Some(url::Host::Domain(name)) => name.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(refused("URL must have a valid hostname")),
    };
    if allow_private_networks {
        return Ok(());
    }
    if is_localhost(&host) {
        return Err(refused("URL cannot point to localhost or loopback addresses"));
    }
    let addresses = tokio::net::lookup_host((host.as_str(), parsed.port_or_known_default().unwrap_or(443)))
        .await
        .map_err(|_| refused("Unable to resolve hostname"))?;
    for address in addresses {
        if let Some(reason) = refusal(address.ip()) {
            return Err(refused(reason));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn message(url: &str) -> String {
        check(url, false).await.err().map(|e| e.message).unwrap_or_default()
    }

    #[tokio::test]
    async fn urls_into_the_servers_network_are_refused() {
        assert_eq!(message("http://idp.example.com").await, "URL must use HTTPS");
        assert_eq!(message("not a url").await, "Invalid URL format");
        assert_eq!(
            message("https://localhost:8443/x").await,
            "URL cannot point to localhost or loopback addresses"
        );
        assert_eq!(
            message("https://app.localhost").await,
            "URL cannot point to localhost or loopback addresses"
        );
        assert_eq!(
            message("https://127.0.0.2").await,
            "URL cannot resolve to loopback addresses"
        );
        assert_eq!(
            message("https://10.1.2.3").await,
            "URL cannot resolve to private network addresses"
        );
        assert_eq!(
            message("https://192.168.0.1").await,
            "URL cannot resolve to private network addresses"
        );
        assert_eq!(
            message("https://169.254.169.254/latest/meta-data").await,
            "URL cannot resolve to link-local addresses"
        );
        assert_eq!(
            message("https://[::ffff:10.0.0.1]").await,
            "URL cannot resolve to private network addresses"
        );
        assert_eq!(
            message("https://[fd00::1]").await,
            "URL cannot resolve to private network addresses"
        );
        assert_eq!(message("https://93.184.216.34/x").await, "");
    }

    #[tokio::test]
    async fn private_networks_may_be_allowed_but_https_stays_required() {
        assert!(check("https://127.0.0.1:8443", true).await.is_ok());
        assert!(check("http://127.0.0.1:8443", true).await.is_err());
    }
}
