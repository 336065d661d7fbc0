//! The plumbing every process of the suite shares: configuration, the error contract, telemetry and
//! metrics, the Postgres pool and migrations, gRPC plumbing, NATS, and the process runtime. No
//! account logic lives here: that is `auth-account` (shared by the services) and the services' own.

pub mod client_ip;
pub mod config;
#[cfg(feature = "db")]
pub mod db;
pub mod env_file;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod nats;
pub mod redirect;
pub mod runtime;
pub mod telemetry;

pub use config::Config;
pub use error::{ErrorCode, ServiceError};

/// Installs ring as the process's TLS crypto provider (as SMTP and Postgres already use), which the
/// HTTP client needs before it can be built. Call at the start of any binary that makes HTTP calls;
/// calling it again is harmless.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
