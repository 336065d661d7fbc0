//! HTTP errors in GoTrue's shapes.
//!
//! Handlers fail with [`ApiError`]. Its `IntoResponse` only marks the response; the `render_errors`
//! middleware (which sees the request headers) writes the body in the format the client asked for:
//!
//! - default, or `X-Supabase-Api-Version` before 2024-01-01 or invalid:
//!   `{"code": <status>, "error_code": "...", "msg": "...", "error_id"?: "<request id, 5xx only>"}`
//! - `X-Supabase-Api-Version` ≥ 2024-01-01: `{"code": "<error_code>", "message": "..."}`, and the
//!   version header is echoed.
//!
//! Both carry `x-sb-error-code`, and weak passwords add `"weak_password": {"reasons": [...]}`.

use auth_core::error::{
    ErrorCode, PUBLIC_MESSAGE_KEY, UNEXPECTED_FAILURE_MESSAGE, WEAK_PASSWORD_REASONS_KEY, decode_status,
};
use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{Value, json};

pub const API_VERSION_HEADER: HeaderName = HeaderName::from_static("x-supabase-api-version");
pub const ERROR_CODE_HEADER: HeaderName = HeaderName::from_static("x-sb-error-code");
const API_VERSION_2024_01_01: &str = "2024-01-01";

/// The error formats GoTrue selects with `X-Supabase-Api-Version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    Initial,
    V2024_01_01,
}

impl ApiVersion {
    /// Any valid date on or after 2024-01-01 selects the 2024 format; anything else the initial one.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let Some(value) = headers.get(API_VERSION_HEADER).and_then(|v| v.to_str().ok()) else {
            return Self::Initial;
        };
        let is_date = value.len() == 10
            && value.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            })
            && valid_calendar_date(value);
        // ISO dates of equal length compare correctly as strings.
        if is_date && value >= API_VERSION_2024_01_01 {
            Self::V2024_01_01
        } else {
            Self::Initial
        }
    }
}

fn valid_calendar_date(value: &str) -> bool {
    let field = |range: std::ops::Range<usize>| value[range].parse::<u32>().unwrap_or(0);
    let (year, month, day) = (field(0..4), field(5..7), field(8..10));
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_in_month).contains(&day)
}

/// An error answered to an HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub weak_password_reasons: Option<Vec<String>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.as_str().to_string(),
            message: message.into(),
            weak_password_reasons: None,
        }
    }

    pub fn unexpected() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::UnexpectedFailure,
            UNEXPECTED_FAILURE_MESSAGE,
        )
    }

    pub fn bad_json(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadJson,
            format!("Could not parse request body as JSON: {detail}"),
        )
    }

    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RequestEntityTooLarge,
            format!("Request body too large (max {limit} bytes)"),
        )
    }

    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::RequestTimeout,
            "Processing this request timed out, please retry after a moment.",
        )
    }

    /// A service could not be reached. 503 tells clients (auth-js retries 502/503/504) to try again.
    pub fn service_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::UnexpectedFailure,
            auth_core::error::SERVICE_UNAVAILABLE_MESSAGE,
        )
    }

    /// Writes the body in the format `version` selects. `request_id` becomes `error_id` on 5xx.
    pub fn render(&self, version: ApiVersion, request_id: Option<&str>) -> Response {
        let mut body = match version {
            ApiVersion::Initial => {
                let mut body = json!({
                    "code": self.status.as_u16(),
                    "error_code": self.code,
                    "msg": self.message,
                });
                if self.status.is_server_error()
                    && let Some(id) = request_id
                {
                    body["error_id"] = Value::from(id);
                }
                body
            }
            ApiVersion::V2024_01_01 => json!({ "code": self.code, "message": self.message }),
        };
        if let Some(reasons) = &self.weak_password_reasons {
            body["weak_password"] = json!({ "reasons": reasons });
        }
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Ok(code) = HeaderValue::from_str(&self.code) {
            headers.insert(ERROR_CODE_HEADER, code);
        }
        if version == ApiVersion::V2024_01_01 {
            headers.insert(API_VERSION_HEADER, HeaderValue::from_static(API_VERSION_2024_01_01));
        }
        response
    }
}

impl IntoResponse for ApiError {
    /// Marks the response; `render_errors` writes the body once it knows the requested format.
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        if let Some(decoded) = decode_status(&status) {
            let http = StatusCode::from_u16(decoded.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let public = decoded.metadata.get(PUBLIC_MESSAGE_KEY).is_some_and(|v| v == "true");
            if http.is_server_error() && !public {
                return Self {
                    status: http,
                    ..Self::unexpected()
                };
            }
            let weak_password_reasons = decoded.metadata.get(WEAK_PASSWORD_REASONS_KEY).map(|reasons| {
                reasons
                    .split(',')
                    .filter(|r| !r.is_empty())
                    .map(str::to_string)
                    .collect()
            });
            return Self {
                status: http,
                code: decoded.code,
                message: decoded.message,
                weak_password_reasons,
            };
        }
        // Not a suite error: a transport failure, a crash, a timeout. Log it here, never echo it.
        tracing::error!(grpc_code = ?status.code(), grpc_message = status.message(), "service call failed");
        match status.code() {
            _ if auth_core::error::is_unreachable(&status) => Self::service_unavailable(),
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => Self::request_timeout(),
            _ => Self::unexpected(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::ServiceError;

    fn headers(version: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(API_VERSION_HEADER, HeaderValue::from_str(version).expect("ascii"));
        headers
    }

    #[test]
    fn api_version_selection_follows_gotrue() {
        assert_eq!(ApiVersion::from_headers(&HeaderMap::new()), ApiVersion::Initial);
        assert_eq!(ApiVersion::from_headers(&headers("2023-12-31")), ApiVersion::Initial);
        assert_eq!(
            ApiVersion::from_headers(&headers("2024-01-01")),
            ApiVersion::V2024_01_01
        );
        assert_eq!(
            ApiVersion::from_headers(&headers("2031-07-15")),
            ApiVersion::V2024_01_01
        );
        for invalid in ["2024-13-01", "2024-02-30", "yesterday", "2024-1-01", "20240101"] {
            assert_eq!(
                ApiVersion::from_headers(&headers(invalid)),
                ApiVersion::Initial,
                "{invalid}"
            );
        }
    }

    #[test]
    fn service_errors_keep_their_gotrue_status_and_code() {
        let status = tonic::Status::from(
            ServiceError::unprocessable(ErrorCode::WeakPassword, "Password should be at least 6 characters.")
                .with_metadata(WEAK_PASSWORD_REASONS_KEY, "length"),
        );
        let error = ApiError::from(status);
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.code, "weak_password");
        assert_eq!(error.weak_password_reasons, Some(vec!["length".to_string()]));
    }

    #[test]
    fn transport_failures_become_generic_5xx() {
        assert_eq!(
            ApiError::from(tonic::Status::unavailable("tcp connect error 127.0.0.1:1")),
            ApiError::service_unavailable()
        );
        let internal = ApiError::from(tonic::Status::internal("panicked at secret.rs"));
        assert_eq!(internal, ApiError::unexpected());
        let from_service = ApiError::from(tonic::Status::from(ServiceError::internal(anyhow::anyhow!(
            "db password wrong"
        ))));
        assert_eq!(from_service.code, "unexpected_failure");
        assert!(!from_service.message.contains("password"));
    }
}
