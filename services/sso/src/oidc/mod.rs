//! OpenID Connect: issuers' discovery documents and signing keys (cached, refreshed on key
//! rotation, served stale through an issuer outage), ID token verification, and the mapping of
//! each issuer's claims into an identity (`claims.rs`, GoTrue's `ParseIDToken` parsers).
//!
//! Used by `grant_type=id_token` and by the providers whose code exchange returns an ID token.

pub mod cache;
pub mod claims;
pub mod verify;

pub use cache::OidcCache;
pub use verify::IdToken;
