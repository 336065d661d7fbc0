//! GoTrue's pagination for the admin lists (`/admin/users`, `/admin/audit`): the query parameters
//! as Go parses them, and the `Link` / `X-Total-Count` headers as GoTrue writes them.

use http::{HeaderMap, HeaderValue, StatusCode};

use super::go_encode;
use crate::error::ApiError;

pub(super) fn validation_failed(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, auth_core::ErrorCode::ValidationFailed, message)
}

/// The first value of a query parameter, `""` when absent.
pub(super) fn first<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// Go's `strconv.ParseUint` of an optional parameter, with its error text.
pub(super) fn parse_count(pairs: &[(String, String)], name: &str) -> Result<u64, ApiError> {
    match first(pairs, name) {
        "" => Ok(0),
        text => text.parse().map_err(|_| {
            validation_failed(format!(
                "Bad Pagination Parameters: strconv.ParseUint: parsing \"{text}\": invalid syntax"
            ))
        }),
    }
}

/// `path?query` with `name` set to `value` (and `drop` removed), query encoded as Go does.
pub(super) fn link(path: &str, pairs: &[(String, String)], name: &str, value: &str, drop: &str) -> String {
    let mut query: Vec<(String, String)> = pairs.iter().filter(|(k, _)| k != name && k != drop).cloned().collect();
    query.push((name.to_string(), value.to_string()));
    format!("<{path}?{}>", go_encode(query))
}

/// GoTrue's `addPaginationHeaders`: `Link` with `rel="next"` while pages remain and always
/// `rel="last"`, and `X-Total-Count`.
pub(super) fn page_headers(path: &str, pairs: &[(String, String)], total: u64, page: u64, per_page: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let pages = total.div_ceil(per_page.max(1));
    let mut header = String::new();
    if pages > page {
        header.push_str(&link(path, pairs, "page", &(page + 1).to_string(), ""));
        header.push_str("; rel=\"next\", ");
    }
    header.push_str(&link(path, pairs, "page", &pages.to_string(), ""));
    header.push_str("; rel=\"last\"");
    if let Ok(value) = HeaderValue::from_str(&header) {
        headers.insert(http::header::LINK, value);
    }
    headers.insert("x-total-count", HeaderValue::from(total));
    headers
}
