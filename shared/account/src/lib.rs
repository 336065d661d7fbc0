//! The account domain every service shares: who the caller is (JWT keys, verification and the
//! principal), the user and session records as authorization reads them, session validity, and the
//! audit log. The process plumbing (configuration, errors, gRPC, NATS, telemetry) is `auth-core`'s.

// `with_user_columns!` names its column types as `::auth_account::users::...` (see there), which
// must resolve inside this crate too.
extern crate self as auth_account;

pub mod audit;
pub mod db_encryption;
pub mod jwt;
pub mod login;
pub mod pkce;
pub mod principal;
pub mod session_validity;
pub mod users;
