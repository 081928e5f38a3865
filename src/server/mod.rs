//! The HTTP API of `pos-central` (feature `server`): axum on tokio over a [`CentralStore`](crate::CentralStore).
//!
//! Routes, JSON but the snapshot, device token as `Authorization: Bearer` (the scheme in any case):
//! - `POST /v1/tenants/{tenant}/operations` with `{"operations": [OP, ...]}`: answers
//!   `{"results": [...]}` after the batch is committed.
//! - `GET /v1/tenants/{tenant}/operations?after=SEQ&limit=N`: the log after a cursor.
//! - `GET /v1/tenants/{tenant}/config`: the tenant's settings, for nodes to pull.
//! - `GET /v1/tenants/{tenant}/snapshot`: the tenant's newest snapshot (an SQLite file,
//!   streamed; its cursor and SHA-256 in headers), 404 `no_snapshot` when there is none
//!   ([`AppState::snapshots`]).
//!
//! And without a token: `GET /health`, `GET /metrics` (Prometheus text format 0.0.4, for the
//! operator's scraper) and `GET /v1/openapi.json` (the OpenAPI document, generated from the
//! handlers and wire types below by utoipa, so it cannot drift from them).
//!
//! Errors are `{"error": code, "message": text}` with 400 (bad input, nothing stored), 401 (no,
//! forged, expired or too long-lived token; the message says which), 403 (token of another
//! tenant, or tenant not active), 404 (unknown tenant or path), 405 (a method the path does not
//! take), 408 (a body slower than [`BODY_READ_TIMEOUT`]), 413 (batch or operation too large),
//! 414 and 431 (a URI or request head over what is read), 429 (the tenant's request rate, or
//! its monthly API calls, used up; with `Retry-After`), 503 `busy` (every database connection
//! of the process stayed in use for as long as a request waits; with `Retry-After`, nothing
//! done). Internal failures answer 500 without details, which go to the log.
//!
//! [`serve`] serves the router within the bounds a shared server needs (request head timeout,
//! a connection limit, a prompt shutdown); `pos-central serve` runs it.
//!
//! The files: `app` (the router, its state, the fallbacks), `auth` (device tokens: issuing and
//! checking them), `limiter` (each tenant's request rate), `metrics` (Prometheus, and the
//! middleware that records every request), `error` ([`ApiError`] and its HTTP mapping),
//! `handlers` (one function per route), `openapi` (the document) and `serve` (connections,
//! their bounds, and shutdown).

mod app;
mod auth;
mod error;
mod handlers;
mod limiter;
mod metrics;
mod openapi;
mod serve;

pub use app::{app, AppState, BODY_READ_TIMEOUT, DEFAULT_RATE_LIMIT, MAX_BODY_BYTES};
pub use auth::{issue_token, MAX_TOKEN_TTL, MIN_SECRET_LEN};
pub use error::{ApiError, ServerError, BUSY_RETRY_AFTER_SECS};
pub use handlers::{Health, PullQuery};
pub use openapi::openapi;
pub use serve::{
    serve, ServeOptions, Stopped, HEADER_READ_TIMEOUT, MAX_CONNECTIONS, MAX_HEAD_BYTES,
    SHUTDOWN_GRACE,
};
