//! Code shared by every process of the suite: configuration, the error contract, telemetry, the
//! Postgres pool and migrations, gRPC plumbing, NATS naming, and the process runtime.

pub mod audit;
pub mod config;
pub mod db;
pub mod error;
pub mod grpc;
pub mod jwt;
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
