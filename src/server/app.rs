//! The router and the state its handlers share: every route in one list, so the router and the
//! OpenAPI document cannot disagree, and fallbacks that answer unknown paths and methods with
//! the same JSON errors as the handlers.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::check_secret;
use super::error::{ApiError, ServerError};
use super::handlers;
use super::limiter::RateLimiter;
use super::metrics::{track, Metrics};
use super::openapi::ApiDoc;
use crate::central::{CentralStore, TenantSnapshots};
use crate::hlc::DEFAULT_MAX_SKEW;
use crate::protocol::RateLimit;

/// The largest request body taken, in bytes: a batch is at most [`crate::protocol::MAX_BATCH`]
/// operations and at most this much JSON (413 beyond either).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// How long a request's body may take to arrive once the handler reads it (after the device
/// was let in): then the request answers 408 `body_timeout`, stores nothing, and the connection
/// is closed. A full push (4 MiB) takes well under a second on a shop's link; 30 s leaves
/// room for a poor one, and keeps a client that trickles its body from holding a connection.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The request rate of tenants that have none of their own, unless the server is configured
/// with another ([`AppState::rate_limit`], `pos-central serve --rate-limit`).
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
    requests: 100,
    per_secs: 1,
};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub(super) store: Arc<dyn CentralStore>,
    pub(super) secret: Arc<Vec<u8>>,
    pub(super) rate_limit: RateLimit,
    pub(super) max_skew: Duration,
    pub(super) body_timeout: Duration,
    pub(super) limiter: Arc<RateLimiter>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) snapshots: Option<Arc<TenantSnapshots>>,
    #[cfg(feature = "fault-injection")]
    pub(super) faults: Arc<Faults>,
}

impl AppState {
    /// State over a store, with the token-signing secret; the default request rate
    /// ([`DEFAULT_RATE_LIMIT`]), clock skew ([`DEFAULT_MAX_SKEW`]) and body timeout
    /// ([`BODY_READ_TIMEOUT`]).
    pub fn new(store: Arc<dyn CentralStore>, secret: Vec<u8>) -> Result<Self, ServerError> {
        check_secret(&secret)?;
        Ok(Self {
            store,
            secret: Arc::new(secret),
            rate_limit: DEFAULT_RATE_LIMIT,
            max_skew: DEFAULT_MAX_SKEW,
            body_timeout: BODY_READ_TIMEOUT,
            limiter: Arc::new(RateLimiter::default()),
            metrics: Arc::new(Metrics::new()?),
            snapshots: None,
            #[cfg(feature = "fault-injection")]
            faults: Arc::new(Faults::default()),
        })
    }

    /// Serves the tenants' newest snapshots of `snapshots` at `GET
    /// /v1/tenants/{tenant}/snapshot` (default: none, the route answers 404 `no_snapshot`).
    pub fn snapshots(mut self, snapshots: TenantSnapshots) -> Self {
        self.snapshots = Some(Arc::new(snapshots));
        self
    }

    /// The request rate of tenants without one of their own (default [`DEFAULT_RATE_LIMIT`]).
    pub fn rate_limit(mut self, rate: RateLimit) -> Self {
        self.rate_limit = rate;
        self
    }

    /// How far ahead of the server's clock an operation's stamp may be (default
    /// [`DEFAULT_MAX_SKEW`]); a batch holding one further ahead is refused whole.
    pub fn max_skew(mut self, skew: Duration) -> Self {
        self.max_skew = skew;
        self
    }

    /// How long a request's body may take to arrive (default [`BODY_READ_TIMEOUT`]).
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Fault injection (feature `fault-injection`, for crash tests only): the process aborts
    /// right after committing its `nth` push (from 1), before answering it, so the client
    /// never learns that the batch is stored.
    #[cfg(feature = "fault-injection")]
    pub fn abort_after_commit(mut self, nth: u64) -> Self {
        self.faults = Arc::new(Faults {
            abort_after_commit: Some(nth),
            ..Faults::default()
        });
        self
    }
}

/// Test hooks, compiled only with the `fault-injection` feature.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Default)]
pub(super) struct Faults {
    abort_after_commit: Option<u64>,
    commits: std::sync::atomic::AtomicU64,
}

#[cfg(feature = "fault-injection")]
impl Faults {
    pub(super) fn after_commit(&self) {
        let n = self
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        if self.abort_after_commit == Some(n) {
            tracing::warn!(
                push = n,
                "fault injection: aborting after the commit, before the answer"
            );
            std::process::abort();
        }
    }
}

/// Every route, each with its OpenAPI description: one list, so the router and the
/// document cannot disagree.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(handlers::push, handlers::pull))
        .routes(routes!(handlers::config))
        .routes(routes!(handlers::snapshot))
        .routes(routes!(handlers::health))
        .routes(routes!(handlers::metrics))
        .routes(routes!(handlers::openapi_json))
}

/// The router; tests drive it directly or over a real socket.
pub fn app(state: AppState) -> Router {
    let (router, _) = routes().split_for_parts();
    // `layer` (not `route_layer`) after both fallbacks: unknown paths and methods are tracked
    // like routed requests, with their real latency, under fixed labels.
    router
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Unknown paths: a JSON 404 like every other error (counted under the route
/// [`UNMATCHED`](super::metrics::UNMATCHED)).
async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// A known path with a method it does not serve: a JSON 405 like every other error (axum
/// still adds the `Allow` header).
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take this method",
    )
}

/// Runs blocking work (the store, CPU-heavy parsing) off the async threads.
pub(super) async fn blocking<T, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Into::into),
        Err(e) => {
            tracing::error!(error = %e, "store task failed");
            Err(ApiError::internal())
        }
    }
}
