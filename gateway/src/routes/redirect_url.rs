//! Redirect targets rewritten as GoTrue rewrites them (`/verify`, `/callback`): the target as the
//! app wrote it, parameters added to its query or fragment, encoded like Go's `url.Values.Encode`.

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use url::Url;

use super::go_encode;
use crate::error::ApiError;

/// GoTrue's `prepPKCERedirectURL` and friends: sets query parameters, re-encoding the query.
pub(crate) fn with_query(target: &str, params: Vec<(&str, String)>) -> String {
    let Some(mut target) = Target::parse(target) else {
        return target.to_string();
    };
    for (key, value) in params {
        set(&mut target.query, key, &value);
    }
    target.to_string()
}

/// A redirect target taken apart as it was written, and put back together as Go's `url.URL.String`
/// writes it: the scheme, host and path exactly as given (`url::Url` would add a `/` to
/// `http://localhost:3000`, which Go does not), the query re-encoded as `url.Values.Encode` does.
pub(crate) struct Target<'a> {
    base: &'a str,
    pub query: Vec<(String, String)>,
    pub fragment: Option<String>,
}

impl<'a> Target<'a> {
    pub fn parse(target: &'a str) -> Option<Self> {
        Url::parse(target).ok()?;
        let (rest, fragment) = match target.split_once('#') {
            Some((rest, fragment)) => (rest, Some(fragment.to_string())),
            None => (target, None),
        };
        let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
        let query = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Some(Self { base, query, fragment })
    }
}

impl std::fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.base)?;
        let query = go_encode(self.query.clone());
        if !query.is_empty() {
            write!(f, "?{query}")?;
        }
        if let Some(fragment) = &self.fragment {
            write!(f, "#{fragment}")?;
        }
        Ok(())
    }
}

impl Target<'_> {
    /// GoTrue's `u.Fragment = values.Encode()` followed by `u.String()`: Go escapes the encoded
    /// values once more for the fragment, so each `%` of the encoding becomes `%25` (a `:` reaches
    /// the app as `%253A`). Apps and clients read it that way from GoTrue; so it is written here.
    pub fn set_fragment_values<K: AsRef<str>>(&mut self, values: Vec<(K, String)>) {
        self.fragment = Some(go_encode(values).replace('%', "%25"));
    }
}

/// `url.Values.Set`: replaces every value of `key`.
pub(crate) fn set(pairs: &mut Vec<(String, String)>, key: &str, value: &str) {
    pairs.retain(|(k, _)| k != key);
    pairs.push((key.to_string(), value.to_string()));
}

/// A 303, as GoTrue answers `/verify` links.
pub(crate) fn see_other(location: &str) -> Response {
    redirect(StatusCode::SEE_OTHER, location)
}

/// A 302, as GoTrue's `http.Redirect(..., http.StatusFound)`.
pub(crate) fn found(location: &str) -> Response {
    redirect(StatusCode::FOUND, location)
}

fn redirect(status: StatusCode, location: &str) -> Response {
    match http::HeaderValue::from_str(location) {
        Ok(value) => (status, [(header::LOCATION, value)]).into_response(),
        Err(_) => ApiError::unexpected().into_response(),
    }
}
