//! End-to-end tests of the suite: every request goes through the gateway to real services, on a real
//! Postgres database and NATS server (one integration binary; see shared/testkit for the harness).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is the test failing"
)]

mod account_cache;
mod admin;
mod admin_factors;
mod admin_links;
mod clients;
mod compat;
mod compat_links;
mod custom_providers;
mod db_encryption;
mod deploy_files;
mod external;
mod general;
mod hardening;
mod mfa;
mod mfa_phone;
mod mfa_recovery_codes;
mod mfa_webauthn;
mod outbox;
mod passkeys;
mod resilience;
mod schema;
mod signup;
mod sinks;
mod support;
mod tokens;
mod trace_propagation;
mod user;
mod verify;
