//! The account domain every service shares: who the caller is (JWT keys, verification and the
//! principal), the user and session records as authorization reads them, session validity, and the
//! audit log. The process plumbing (configuration, errors, gRPC, NATS, telemetry) is `auth-core`'s.

pub mod audit;
pub mod jwt;
pub mod principal;
pub mod session_validity;
pub mod users;
