//! The HTTP API of `pos-central` (feature `server`): axum on tokio over a [`CentralStore`](crate::CentralStore).
//!
//! Routes, all JSON, device token as `Authorization: Bearer`:
//! - `POST /v1/tenants/{tenant}/operations` with `{"operations": [OP, ...]}`: answers
//!   `{"results": [...]}` after the batch is committed.
//! - `GET /v1/tenants/{tenant}/operations?after=SEQ&limit=N`: the log after a cursor.
//! - `GET /v1/tenants/{tenant}/config`: the tenant's settings, for nodes to pull.
//!
//! And without a token: `GET /health`, `GET /metrics` (Prometheus text format 0.0.4, for the
//! operator's scraper) and `GET /v1/openapi.json` (the OpenAPI document, generated from the
//! handlers and wire types below by utoipa, so it cannot drift from them).
//!
//! Errors are `{"error": code, "message": text}` with 400 (bad input, nothing stored), 401 (no,
//! forged or expired token), 403 (token of another tenant, or tenant not active), 404 (unknown
//! tenant or path), 405 (a method the path does not take), 413 (batch too large), 429 (the
//! tenant's request rate, or the monthly API calls of its plan, used up; with `Retry-After`).
//! Internal failures answer 500 without details, which go to the log.
//!
//! The files: `app` (the router, its state, the fallbacks), `auth` (device tokens: issuing and
//! checking them), `limiter` (each tenant's request rate), `metrics` (Prometheus, and the
//! middleware that records every request), `error` ([`ApiError`] and its HTTP mapping),
//! `handlers` (one function per route) and `openapi` (the document).

mod app;
mod auth;
mod error;
mod handlers;
mod limiter;
mod metrics;
mod openapi;

pub use app::{app, AppState, DEFAULT_RATE_LIMIT, MAX_BODY_BYTES};
pub use auth::{issue_token, MIN_SECRET_LEN};
pub use error::{ApiError, ServerError};
pub use handlers::{Health, PullQuery};
pub use openapi::openapi;
