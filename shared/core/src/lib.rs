//! Code shared by every process of the suite: configuration, the error contract, telemetry, the
//! Postgres pool and migrations, gRPC plumbing, NATS naming, and the process runtime.

pub mod config;
pub mod db;
pub mod error;
pub mod grpc;
pub mod nats;
pub mod runtime;
pub mod telemetry;

pub use config::Config;
pub use error::{ErrorCode, ServiceError};
