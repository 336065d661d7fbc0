//! Routes, one module per area of GoTrue's API. Each module exposes `router()`.

pub mod general;
mod session;
mod well_known;

use axum::Router;

use crate::AppState;
use crate::middleware::{method_not_allowed, not_found};

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(general::router())
        .merge(well_known::router())
        .merge(session::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}
