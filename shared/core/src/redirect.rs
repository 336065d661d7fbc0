//! Where a flow may send the user afterwards (GoTrue's `GetReferrer` / `IsRedirectURLValid`).
//!
//! A `redirect_to` is honoured when it points back to `GOTRUE_SITE_URL` (same scheme, host and port;
//! any port on loopback hosts) or matches a glob of `GOTRUE_URI_ALLOW_LIST`; anything else silently
//! falls back to the site URL, so a phishing link cannot borrow the project's emails.
//!
//! The globs follow gobwas/glob, which GoTrue compiles with `.` and `/` as separators: `*` and `?`
//! stay within one host label or path segment, `**` crosses them, `[...]`/`[!...]` are classes,
//! `{a,b}` alternatives and `\` escapes. No crate implements those separator rules, so each glob is
//! translated to an anchored regular expression once, at start.

use regex::Regex;
use url::Url;

use crate::Config;
use crate::config::ConfiguredUrl;

#[derive(Debug, Clone)]
pub struct RedirectPolicy {
    site_url: ConfiguredUrl,
    allow_list: Vec<Regex>,
}

impl RedirectPolicy {
    pub fn new(config: &Config) -> Self {
        Self::from_parts(config.site_url.clone(), &config.uri_allow_list)
    }

    pub fn from_parts(site_url: ConfiguredUrl, allow_list: &[String]) -> Self {
        let allow_list = allow_list
            .iter()
            .filter_map(|glob| match Regex::new(&glob_to_regex(glob)) {
                Ok(regex) => Some(regex),
                Err(error) => {
                    tracing::warn!(%glob, %error, "GOTRUE_URI_ALLOW_LIST entry ignored");
                    None
                }
            })
            .collect();
        Self { site_url, allow_list }
    }

    pub fn site_url(&self) -> &str {
        self.site_url.as_str()
    }

    /// GoTrue's `IsRedirectURLValid`.
    pub fn is_allowed(&self, candidate: &str) -> bool {
        if candidate.is_empty() || !is_plain_url_text(candidate) {
            return false;
        }
        // The url crate maps look-alike Unicode (full-width dots, letters) to ASCII; Go keeps the
        // raw host, which then matches neither the site nor the hostname rule. Refuse such hosts
        // before the mapping can make them look legitimate.
        if !raw_authority(candidate).is_ascii() {
            return false;
        }
        let Ok(target) = Url::parse(candidate) else {
            return false;
        };
        // Credentials in a redirect target only serve to disguise where it goes
        // (`http://site\@evil.com`, `http://site@evil.com`); Go's parser refuses the former outright.
        if !target.username().is_empty() || target.password().is_some() || raw_authority(candidate).contains('@') {
            return false;
        }
        let host = host_name(&target);
        if host == host_name(&self.site_url)
            && target.scheme() == self.site_url.scheme()
            && (target.port() == self.site_url.port() || is_localhost(&host))
        {
            return true;
        }
        let http = matches!(target.scheme(), "http" | "https");
        // An IP address written as one decimal number (the url crate would read it as IPv4).
        let raw_host = raw_authority(candidate).rsplit('@').next().unwrap_or_default();
        let raw_host = raw_host.rsplit_once(':').map_or(raw_host, |(host, _port)| host);
        if !raw_host.is_empty() && raw_host.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return ip.is_loopback();
        }
        if http && !is_regular_hostname(&host) {
            return false;
        }
        let without_fragment = candidate.split('#').next().unwrap_or_default();
        self.allow_list.iter().any(|glob| glob.is_match(without_fragment))
    }

    /// GoTrue's `GetReferrer`: the first allowed of the explicit `redirect_to` and the `Referer`,
    /// else the site URL.
    pub fn resolve<'a>(&'a self, candidates: impl IntoIterator<Item = &'a str>) -> String {
        candidates
            .into_iter()
            .find(|candidate| self.is_allowed(candidate))
            .unwrap_or(self.site_url.as_str())
            .to_string()
    }
}

/// Text that can go out in a `Location` header and an email as it is: no control characters (CR/LF
/// would split the header), no spaces, no backslashes (browsers read `\` as `/`, the url crate
/// too, Go does not: the two would disagree on the host).
fn is_plain_url_text(candidate: &str) -> bool {
    !candidate
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
}

/// The host as Go's `url.Hostname()` gives it: IPv6 without brackets.
fn host_name(url: &Url) -> String {
    match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(host) => host.to_string(),
        None => String::new(),
    }
}

/// The authority of `scheme://authority/...` as written.
fn raw_authority(candidate: &str) -> &str {
    let rest = candidate.split_once("://").map_or(candidate, |(_, rest)| rest);
    rest.split(['/', '?', '#']).next().unwrap_or_default()
}

fn is_localhost(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1" | "0.0.0.0" | "::") || host.ends_with(".localhost")
}

/// `^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$`
fn is_regular_hostname(host: &str) -> bool {
    let bytes = host.as_bytes();
    let edge_ok = |b: &u8| b.is_ascii_alphanumeric();
    match bytes {
        [] => false,
        [only] => edge_ok(only),
        [first, middle @ .., last] => {
            edge_ok(first)
                && edge_ok(last)
                && middle
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-')
        }
    }
}

/// An anchored regex matching what gobwas/glob matches with separators `.` and `/`.
fn glob_to_regex(glob: &str) -> String {
    const NOT_SEPARATOR: &str = "[^./]";
    let mut out = String::from("^(?s:");
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    let mut alternation_depth = 0usize;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if i + 1 < chars.len() => {
                out.push_str(&regex::escape(&chars[i + 1].to_string()));
                i += 1;
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                out.push_str(".*");
                i += 1;
            }
            '*' => out.push_str(&format!("{NOT_SEPARATOR}*")),
            '?' => out.push_str(NOT_SEPARATOR),
            '[' => match chars[i + 1..].iter().position(|&c| c == ']') {
                Some(len) => {
                    let class: String = chars[i + 1..i + 1 + len].iter().collect();
                    let (negated, body) = match class.strip_prefix('!') {
                        Some(body) => (true, body.to_string()),
                        None => (false, class),
                    };
                    let body: String = body
                        .chars()
                        .map(|c| match c {
                            '\\' | '[' | ']' | '^' | '&' | '~' => format!("\\{c}"),
                            other => other.to_string(),
                        })
                        .collect();
                    out.push('[');
                    if negated {
                        out.push('^');
                    }
                    out.push_str(&body);
                    out.push(']');
                    i += len + 1;
                }
                None => out.push_str("\\["),
            },
            '{' => {
                alternation_depth += 1;
                out.push_str("(?:");
            }
            ',' if alternation_depth > 0 => out.push('|'),
            '}' if alternation_depth > 0 => {
                alternation_depth -= 1;
                out.push(')');
            }
            other => out.push_str(&regex::escape(&other.to_string())),
        }
        i += 1;
    }
    for _ in 0..alternation_depth {
        out.push(')');
    }
    out.push_str(")$");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str]) -> RedirectPolicy {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        RedirectPolicy::from_parts(ConfiguredUrl::parse("https://example.netlify.com").unwrap(), &allow)
    }

    /// GoTrue's `TestIsValidRedirectURL` table (§10 item 11).
    #[test]
    fn allow_list_globs_match_as_gotrue() {
        let p = policy(&[
            "http://*.test.dev:3000",
            "http://*.*.dev:3000",
            "http://test.dev:3000/*/*",
            "com.example.app://**",
            "twitter://timeline",
            "https://*.example.com/abc",
        ]);
        assert!(p.is_allowed("http://sub.test.dev:3000#/"));
        assert!(!p.is_allowed("http://sub.test.dev:3000/#/")); // the glob has no path
        assert!(p.is_allowed("http://foo.bar.dev:3000"));
        assert!(p.is_allowed("http://test.dev:3000/bar/foo"));
        assert!(p.is_allowed("com.example.app://sign-in/v2"));
        assert!(p.is_allowed("twitter://timeline"));
        assert!(!p.is_allowed("twitter://timeline/other"));
        assert!(!p.is_allowed("http://something#.example.com/abc"));
        assert!(!p.is_allowed("https://evil.com"));
        assert!(!p.is_allowed("https://ｅxample.com/abc"));
        assert!(!p.is_allowed("http://sub.test．dev:3000/"));
        assert!(!p.is_allowed("https://example．netlify.com/"));

        let narrow = policy(&["http://*.dev:3000", "http://test.dev:3000/*"]);
        assert!(!narrow.is_allowed("http://foo.bar.dev:3000"));
        assert!(!narrow.is_allowed("http://test.dev:3000/bar/foo"));
        assert!(narrow.is_allowed("http://test.dev:3000/bar"));
    }

    #[test]
    fn site_url_loopback_and_ip_rules() {
        let p = policy(&[]);
        assert!(p.is_allowed("https://example.netlify.com/welcome?x=1"));
        assert!(!p.is_allowed("http://example.netlify.com/welcome"));
        assert!(!p.is_allowed("https://example.netlify.com:8443/"));
        assert!(p.is_allowed("http://127.0.0.1:1234/cb"));
        assert!(!p.is_allowed("http://2130706433/"));
        assert!(!p.is_allowed("http://10.0.0.1/"));
        assert!(!p.is_allowed(""));

        let local = RedirectPolicy::from_parts(ConfiguredUrl::parse("http://localhost:3000").unwrap(), &[]);
        assert!(local.is_allowed("http://localhost:5173/cb"));
        assert_eq!(
            local.resolve(["https://evil.com", "http://localhost:1/x"]),
            "http://localhost:1/x"
        );
        assert_eq!(local.resolve(["https://evil.com"]), "http://localhost:3000");
    }

    /// Issue 13: whatever the allow list says, a target that is not plain URL text is refused, and
    /// the site URL is written as configured (no trailing slash added).
    #[test]
    fn targets_that_could_disguise_or_split_are_refused() {
        let p = policy(&["http://localhost:3000/**", "https://**"]);
        for hostile in [
            "http://localhost:3000/a\r\nSet-Cookie: x=1",
            "http://localhost:3000/\u{0}",
            "http://localhost:3000\\@evil.com",
            "http://localhost:3000@evil.com/",
            "https://user:pass@example.netlify.com/",
            "https://example.netlify.com/a b",
            "https://example.netlify.com/\tx",
        ] {
            assert!(!p.is_allowed(hostile), "{hostile:?}");
        }
        assert!(p.is_allowed("http://localhost:3000/a?b=c#d"));
        let local = RedirectPolicy::from_parts(ConfiguredUrl::parse("http://localhost:3000").unwrap(), &[]);
        assert_eq!(local.site_url(), "http://localhost:3000");
    }

    #[test]
    fn classes_and_alternatives() {
        let p = policy(&["https://{app,admin}.example.org/[a-c]?", "https://x.org/[!a]"]);
        assert!(p.is_allowed("https://app.example.org/b1"));
        assert!(p.is_allowed("https://admin.example.org/c2"));
        assert!(!p.is_allowed("https://api.example.org/b1"));
        assert!(!p.is_allowed("https://app.example.org/d1"));
        assert!(p.is_allowed("https://x.org/b"));
        assert!(!p.is_allowed("https://x.org/a"));
    }
}
