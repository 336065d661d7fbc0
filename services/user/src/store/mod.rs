//! The user service's tables, one module each, with named operations (GoTrue's `models/` is the
//! anchor): an endpoint says what happens to an account (`users::confirm_email`), and the SQL that
//! does it is written once, here. Every operation runs on the caller's connection, so the caller's
//! transaction decides what commits together.
//!
//! Still outside, to move with the next step (one module for every kind of one-time code): the
//! statements that store a code's hash in its `users` column, written with the column as a
//! parameter in `codes.rs` and `generate_link.rs`; and the two single statements that record (and
//! undo) a sign-in together with its audit entry (`signin.rs`, `compensate.rs`).

pub mod identities;
pub mod one_time_tokens;
pub mod users;
