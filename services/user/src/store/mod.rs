//! The user service's tables, one module each, with named operations (GoTrue's `models/` is the
//! anchor): an endpoint says what happens to an account (`users::confirm_email`), and the SQL that
//! does it is written once, here. Every operation runs on the caller's connection, so the caller's
//! transaction decides what commits together.
//!
//! Still outside: the two single statements that record (and undo) a password sign-in together
//! with its audit entry (`signin.rs`, `compensate.rs`), kept as one statement each so the hot path
//! needs no transaction.

pub mod identities;
pub mod one_time_tokens;
pub mod users;
