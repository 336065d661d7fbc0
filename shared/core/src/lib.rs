//! Code shared by every process of the suite: configuration, the error contract, telemetry, the
//! Postgres pool and migrations, gRPC plumbing, NATS naming, and the process runtime.

pub mod audit;
pub mod client_ip;
pub mod config;
pub mod db;
pub mod env_file;
pub mod error;
pub mod grpc;
pub mod jwt;
pub mod metrics;
pub mod nats;
pub mod outbox_relay;
pub mod password;
pub mod principal;
pub mod redirect;
pub mod runtime;
pub mod session_validity;
pub mod telemetry;
pub mod users;

pub use config::Config;
pub use error::{ErrorCode, ServiceError};

/// Installs ring as the process's TLS crypto provider (as SMTP and Postgres already use), which the
/// HTTP client needs before it can be built. Call at the start of any binary that makes HTTP calls;
/// calling it again is harmless.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
