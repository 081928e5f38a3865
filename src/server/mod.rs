//! The HTTP API of `pos-central` (feature `server`): axum on tokio over a [`CentralStore`].
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

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use chrono::{Datelike, TimeZone, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::central::{self, CentralError, CentralStore};
use crate::hlc::{Hlc, DEFAULT_MAX_SKEW};
use crate::ids::{RowId, TenantId, Timestamp};
use crate::protocol::{
    Batch, BatchResults, Claims, ErrorBody, OperationPage, OperationResult, OperationStatus,
    RateLimit, TenantConfig,
};
use crate::tenant::settings::{Plan, PlanLimits, TenantSettings, TenantStatus};

/// The shortest signing secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// The largest request body taken, in bytes: a batch is at most [`crate::protocol::MAX_BATCH`]
/// operations and at most this much JSON (413 beyond either).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The request rate of tenants that have none of their own, unless the server is configured
/// with another ([`AppState::rate_limit`], `pos-central serve --rate-limit`).
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
    requests: 100,
    per_secs: 1,
};

/// Why the server or a token could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The secret is too short to sign with.
    #[error("the signing secret must be at least {MIN_SECRET_LEN} bytes, got {0}")]
    WeakSecret(usize),
    /// Signing failed.
    #[error("cannot sign the token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    /// The metrics registry refused a metric.
    #[error("cannot set up the metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Refuses a secret too short to sign with: tokens are only as strong as it.
fn check_secret(secret: &[u8]) -> Result<(), ServerError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(ServerError::WeakSecret(secret.len()));
    }
    Ok(())
}

/// Signs a device token (HS256) for `tenant` and `device`, valid until `exp` (Unix seconds).
pub fn issue_token(
    secret: &[u8],
    tenant: &TenantId,
    device: &str,
    exp: u64,
) -> Result<String, ServerError> {
    check_secret(secret)?;
    let claims = Claims {
        tenant: tenant.to_string(),
        device: device.to_owned(),
        exp,
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )?)
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    store: Arc<dyn CentralStore>,
    secret: Arc<Vec<u8>>,
    rate_limit: RateLimit,
    max_skew: Duration,
    limiter: Arc<RateLimiter>,
    metrics: Arc<Metrics>,
    #[cfg(feature = "fault-injection")]
    faults: Arc<Faults>,
}

impl AppState {
    /// State over a store, with the token-signing secret; the default request rate
    /// ([`DEFAULT_RATE_LIMIT`]) and clock skew ([`DEFAULT_MAX_SKEW`]).
    pub fn new(store: Arc<dyn CentralStore>, secret: Vec<u8>) -> Result<Self, ServerError> {
        check_secret(&secret)?;
        Ok(Self {
            store,
            secret: Arc::new(secret),
            rate_limit: DEFAULT_RATE_LIMIT,
            max_skew: DEFAULT_MAX_SKEW,
            limiter: Arc::new(RateLimiter::default()),
            metrics: Arc::new(Metrics::new()?),
            #[cfg(feature = "fault-injection")]
            faults: Arc::new(Faults::default()),
        })
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
struct Faults {
    abort_after_commit: Option<u64>,
    commits: std::sync::atomic::AtomicU64,
}

#[cfg(feature = "fault-injection")]
impl Faults {
    fn after_commit(&self) {
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

/// Per-tenant token buckets, in memory: each tenant may burst up to its rate's `requests`,
/// refilled continuously at `requests / per_secs` a second. In memory because a limit that
/// costs a database write per request would cost more than it protects; a restart refills
/// every bucket, which errs on the side of the tenant.
#[derive(Debug, Default)]
struct RateLimiter {
    buckets: Mutex<HashMap<TenantId, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    rate: RateLimit,
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// Takes one request from the tenant's bucket at `now`, or says in how many whole seconds
    /// (at least 1) the next one will be there.
    fn take(&self, tenant: &TenantId, rate: RateLimit, now: Instant) -> Result<(), u64> {
        let capacity = f64::from(rate.requests);
        // A panic while holding the lock leaves a bucket at worst one token off.
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = match buckets.get_mut(tenant) {
            Some(b) => b,
            None => buckets.entry(tenant.clone()).or_insert(Bucket {
                rate,
                tokens: capacity,
                at: now,
            }),
        };
        if bucket.rate != rate {
            // The operator changed the tenant's rate: what was used stays used.
            bucket.rate = rate;
            bucket.tokens = bucket.tokens.min(capacity);
        }
        // Callers race for the lock with instants read before it: never move time back.
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate.per_second()).min(capacity);
        bucket.at = bucket.at.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / rate.per_second();
            Err((wait.ceil() as u64).max(1))
        }
    }
}

/// The server's Prometheus metrics, in a registry of its own (not the process-wide default,
/// so several servers in one test process do not mix).
struct Metrics {
    registry: Registry,
    operations: IntCounterVec,
    requests: IntCounterVec,
    latency: HistogramVec,
    in_flight: IntGauge,
}

impl Metrics {
    fn new() -> Result<Self, prometheus::Error> {
        let operations = IntCounterVec::new(
            Opts::new(
                "pos_central_operations_total",
                "Pushed operations by tenant and outcome (accepted, duplicate, rejected).",
            ),
            &["tenant", "status"],
        )?;
        let requests = IntCounterVec::new(
            Opts::new(
                "pos_central_http_requests_total",
                "HTTP requests by route, method and status code.",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "pos_central_http_request_duration_seconds",
                "Time from a request's arrival to its answer, by route.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["route"],
        )?;
        let in_flight = IntGauge::new(
            "pos_central_http_requests_in_flight",
            "Requests being answered now.",
        )?;
        let registry = Registry::new();
        registry.register(Box::new(operations.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        Ok(Self {
            registry,
            operations,
            requests,
            latency,
            in_flight,
        })
    }

    fn request(&self, route: &str, method: &Method, status: StatusCode, seconds: f64) {
        self.requests
            .with_label_values(&[route, method_label(method), status.as_str()])
            .inc();
        self.latency.with_label_values(&[route]).observe(seconds);
    }

    fn results(&self, tenant: &TenantId, results: &[OperationResult]) {
        let (mut accepted, mut duplicate, mut rejected) = (0, 0, 0);
        for r in results {
            match r.status {
                OperationStatus::Accepted => accepted += 1,
                OperationStatus::Duplicate => duplicate += 1,
                OperationStatus::Rejected => rejected += 1,
            }
        }
        // Labels only for tenants that passed `admit`, so their number is the registry's.
        for (status, n) in [
            ("accepted", accepted),
            ("duplicate", duplicate),
            ("rejected", rejected),
        ] {
            self.operations
                .with_label_values(&[tenant.as_str(), status])
                .inc_by(n);
        }
    }
}

/// The route label of requests that matched no route: never the raw path, which would let
/// any client create series.
const UNMATCHED: &str = "unmatched";

/// A method as a metric label: the standard methods a client of this API may send by name,
/// any other as `other`. HTTP allows any token as a method, so labelling the raw method would
/// let any client, without a token, create series without end.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "other",
    }
}

/// Counts a request in flight until dropped, also when the client goes away mid-request.
struct InFlight<'a>(&'a IntGauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Records every request, routed or not: route (the matched pattern, or [`UNMATCHED`]; never
/// the raw path), method ([`method_label`]), status and latency.
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |m| m.as_str().to_owned());
    let method = req.method().clone();
    state.metrics.in_flight.inc();
    let _guard = InFlight(&state.metrics.in_flight);
    let start = Instant::now();
    let response = next.run(req).await;
    state.metrics.request(
        &route,
        &method,
        response.status(),
        start.elapsed().as_secs_f64(),
    );
    response
}

/// The API's description; the paths and schemas come from the handlers below.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "pos-central",
        description = "The central sync server of pos-tenancy: takes each tenant's operations \
                       from its nodes and serves them back in one order."
    ),
    modifiers(&DeviceTokenScheme),
    tags(
        (name = "sync", description = "Pushing and pulling a tenant's operations"),
        (name = "tenant", description = "What nodes pull to configure themselves"),
        (name = "operator", description = "Health, metrics and this document; no token")
    )
)]
struct ApiDoc;

struct DeviceTokenScheme;

impl utoipa::Modify for DeviceTokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        http.description = Some(
            "A device token from `pos-central token issue` (HS256; claims tenant, device, exp)"
                .into(),
        );
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("device_token", SecurityScheme::Http(http));
    }
}

/// Every route, each with its OpenAPI description: one list, so the router and the
/// document cannot disagree.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(push, pull))
        .routes(routes!(config))
        .routes(routes!(health))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

/// The OpenAPI 3 document of the API, as `GET /v1/openapi.json` serves it.
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| routes().split_for_parts().1)
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

/// An API error: its HTTP mapping lives here, and internals never reach the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl From<CentralError> for ApiError {
    fn from(e: CentralError) -> Self {
        match e {
            CentralError::TenantNotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "unknown_tenant", e.to_string())
            }
            CentralError::TenantInactive { .. } => {
                Self::new(StatusCode::FORBIDDEN, "tenant_inactive", e.to_string())
            }
            CentralError::ClockSkew { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "clock_skew", e.to_string())
            }
            CentralError::BatchRejected { .. }
            | CentralError::BadLimit { .. }
            | CentralError::BadRateLimit(_)
            | CentralError::Settings(_) => {
                Self::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
            }
            CentralError::BatchTooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch_too_large",
                e.to_string(),
            ),
            other => {
                tracing::error!(error = %other, "central store failure");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
        });
        let mut response = (self.status, body).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// Unknown paths: a JSON 404 like every other error (counted under the route [`UNMATCHED`]).
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

/// The answer of `GET /health`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the server answers.
    pub status: String,
}

/// Liveness.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operator",
    responses((status = 200, description = "The server is up", body = Health))
)]
async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Metrics for the operator's Prometheus scraper. No token: it is scraped by the operator's
/// infrastructure, which should keep `/metrics` off the public internet (it names tenants).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operator",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4: \
            pos_central_operations_total{tenant,status}, \
            pos_central_http_requests_total{route,method,status}, \
            pos_central_http_request_duration_seconds{route} (histogram), \
            pos_central_http_requests_in_flight",
            content_type = "text/plain; version=0.0.4", body = String),
        (status = 500, description = "The metrics could not be encoded", body = ErrorBody)
    )
)]
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let families = state.metrics.registry.gather();
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&families)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot encode metrics");
            ApiError::internal()
        })?;
    Ok(([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response())
}

/// This API's OpenAPI 3 document, generated from the code.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "operator",
    responses((status = 200, description = "This document", body = Object))
)]
async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(openapi())
}

/// Runs blocking work (the store, CPU-heavy parsing) off the async threads.
async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, ApiError>
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

/// What [`admit`] found out in the store.
enum Admission {
    /// Let in, and counted against the month.
    In,
    /// Over the tenant's request rate; try again in this many seconds.
    Throttled { rate: RateLimit, retry_after: u64 },
    /// The month's API calls of the plan are used up; not counted.
    OverPlan { limits: PlanLimits, plan: Plan },
}

/// Authenticates the device for the tenant in the path, checks the tenant, takes one request
/// from its rate, and counts the call against its monthly plan while under the plan's limit.
/// Refused requests (401, 403, 404, 429) store nothing and count nothing; a call let in counts
/// whatever it then answers (bad input included: the tenant's device made the server work).
async fn admit(state: &AppState, headers: &HeaderMap, tenant: &str) -> Result<TenantId, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("a device token is required (Authorization: Bearer ...)"))?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(&state.secret),
        &validation,
    )
    .map_err(|e| unauthorized(&format!("invalid device token: {e}")))?
    .claims;
    if claims.tenant != tenant {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_tenant",
            "the device token is for another tenant",
        ));
    }
    let id: TenantId = tenant
        .parse()
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, "unknown_tenant", format!("{e}")))?;
    let store = Arc::clone(&state.store);
    let limiter = Arc::clone(&state.limiter);
    let default_rate = state.rate_limit;
    let t = id.clone();
    let admission = blocking(move || {
        let info = store.tenant(&t)?;
        if info.status != TenantStatus::Active {
            return Err(CentralError::TenantInactive {
                tenant: t,
                status: info.status,
            });
        }
        let rate = info.rate_limit.unwrap_or(default_rate);
        if let Err(retry_after) = limiter.take(&t, rate, Instant::now()) {
            return Ok(Admission::Throttled { rate, retry_after });
        }
        let max = info.limits.max_api_calls_month;
        Ok(match store.count_api_call(&t, Timestamp::now(), max)? {
            Some(_) => Admission::In,
            None => Admission::OverPlan {
                limits: info.limits,
                plan: info.plan,
            },
        })
    })
    .await?;
    match admission {
        Admission::Throttled { rate, retry_after } => {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "tenant {id} may make {} requests per {} s ({rate}); try again in {retry_after} s",
                    rate.requests, rate.per_secs
                ),
            );
            e.retry_after = Some(retry_after);
            Err(e)
        }
        Admission::OverPlan { limits, plan } => {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "plan_limit",
                format!(
                    "the {plan} plan allows {} API calls a month",
                    limits.max_api_calls_month
                ),
            );
            e.retry_after = Some(seconds_to_next_month());
            Err(e)
        }
        Admission::In => Ok(id),
    }
}

fn seconds_to_next_month() -> u64 {
    let now = Utc::now();
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .map(|next| {
            u64::try_from((next - now).num_seconds())
                .unwrap_or(0)
                .max(1)
        })
        .unwrap_or(3600)
}

/// Pushes a batch of the tenant's operations. The answer comes after the commit, so an
/// answer means durable; a batch re-sent after a lost answer is stored once (`duplicate`,
/// with the sequence numbers first given).
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/operations",
    tag = "sync",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    request_body = Batch,
    security(("device_token" = [])),
    responses(
        (status = 200, description = "Committed; one result per operation, in order", body = BatchResults),
        (status = 400, description = "Bad input (malformed body, another tenant's operation, \
            not in the catalog, wrong type or word, a clock stamp too far ahead); nothing of \
            the batch was stored", body = ErrorBody),
        (status = 401, description = "No, forged or expired device token", body = ErrorBody),
        (status = 403, description = "A token of another tenant, or the tenant is not active", body = ErrorBody),
        (status = 404, description = "Unknown tenant", body = ErrorBody),
        (status = 413, description = "More operations than a batch may hold (1000), or a \
            body over 4 MiB", body = ErrorBody),
        (status = 429, description = "The tenant's request rate or its plan's monthly API calls \
            are used up; nothing was stored", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a retry may succeed"))),
        (status = 500, description = "Internal error; nothing is known to be stored", body = ErrorBody)
    )
)]
async fn push(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    request: Request,
) -> Result<Json<BatchResults>, ApiError> {
    let id = admit(&state, request.headers(), &tenant).await?;
    // The body is read only once the device is let in, so a stranger cannot make the server
    // buffer up to MAX_BODY_BYTES. Axum's own extractor reads it (DefaultBodyLimit applies),
    // because it tells a body over the limit (413) from one that failed to arrive (400).
    let body = Bytes::from_request(request, &state).await.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "batch_too_large", e.body_text())
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
        }
    })?;
    let store = Arc::clone(&state.store);
    let max_skew = state.max_skew;
    let t = id.clone();
    // Parsing up to 4 MiB of JSON and checking every stamp is CPU work: it runs with the
    // append, off the async threads that serve every other request.
    let results = blocking(move || -> Result<_, ApiError> {
        let batch: Batch = serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the body is not a batch of operations: {e}"),
            )
        })?;
        central::check_skew(&batch.operations, Timestamp::now(), max_skew)?;
        Ok(store.append(&t, &batch.operations)?)
    })
    .await?;
    #[cfg(feature = "fault-injection")]
    state.faults.after_commit();
    state.metrics.results(&id, &results);
    Ok(Json(BatchResults { results }))
}

/// Query of a pull.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PullQuery {
    /// Sequence number already seen (default 0).
    #[serde(default)]
    pub after: u64,
    /// Page size, 1 to 1000 (default 500).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The tenant's operations after a sequence number, in sequence order, with the log's
/// highest sequence number.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/operations",
    tag = "sync",
    params(("tenant" = String, Path, description = "The tenant's slug"), PullQuery),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "A page of the log", body = OperationPage),
        (status = 400, description = "A bad cursor or page size", body = ErrorBody),
        (status = 401, description = "No, forged or expired device token", body = ErrorBody),
        (status = 403, description = "A token of another tenant, or the tenant is not active", body = ErrorBody),
        (status = 404, description = "Unknown tenant", body = ErrorBody),
        (status = 429, description = "The tenant's request rate or its plan's monthly API calls \
            are used up", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a retry may succeed"))),
        (status = 500, description = "Internal error", body = ErrorBody)
    )
)]
async fn pull(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    query: Result<Query<PullQuery>, QueryRejection>,
) -> Result<Json<OperationPage>, ApiError> {
    let id = admit(&state, &headers, &tenant).await?;
    let Query(q) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let store = Arc::clone(&state.store);
    let page =
        blocking(move || store.operations_after(&id, q.after, q.limit.unwrap_or(500))).await?;
    Ok(Json(page))
}

/// The tenant's plan, limits and white-label settings, for nodes to pull.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/config",
    tag = "tenant",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The tenant's configuration", body = TenantConfig),
        (status = 401, description = "No, forged or expired device token", body = ErrorBody),
        (status = 403, description = "A token of another tenant, or the tenant is not active", body = ErrorBody),
        (status = 404, description = "Unknown tenant", body = ErrorBody),
        (status = 429, description = "The tenant's request rate or its plan's monthly API calls \
            are used up", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a retry may succeed"))),
        (status = 500, description = "Internal error", body = ErrorBody)
    )
)]
async fn config(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Json<TenantConfig>, ApiError> {
    let id = admit(&state, &headers, &tenant).await?;
    let store = Arc::clone(&state.store);
    let t = blocking(move || store.tenant(&id)).await?;
    Ok(Json(TenantConfig {
        id: t.id,
        name: t.name,
        plan: t.plan,
        limits: t.limits,
        rate_limit: t.rate_limit.unwrap_or(state.rate_limit),
        settings: t.settings,
    }))
}

// OpenAPI schemas of the crate's own types that live outside this module. Their JSON forms
// are hand-written (Display/FromStr text, serde derives in modules that do not depend on
// utoipa); the tests below compare each description with what serde actually writes.

fn string_schema(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

impl PartialSchema for RowId {
    fn schema() -> RefOr<Schema> {
        string_schema("A UUID (v7 for rows and operations made on a node), lowercase, hyphenated")
            .format(Some(SchemaFormat::Custom("uuid".into())))
            .into()
    }
}
impl ToSchema for RowId {}

impl PartialSchema for TenantId {
    fn schema() -> RefOr<Schema> {
        string_schema("A tenant's slug: 1 to 64 of a-z, 0-9 and '-'")
            .pattern(Some("^[a-z0-9-]{1,64}$"))
            .examples(["caps-automotive"])
            .into()
    }
}
impl ToSchema for TenantId {}

impl PartialSchema for Hlc {
    fn schema() -> RefOr<Schema> {
        string_schema(
            "A hybrid logical clock stamp: 16 digits of milliseconds since the Unix epoch, \
             '.', a 6-digit counter, '@', the node's id; text order is clock order",
        )
        .pattern(Some(r"^[0-9]{16}\.[0-9]{6}@[0-9a-f-]{36}$"))
        .examples(["0001732433333123.000001@01937a5e-7f4e-7c2a-9a4b-1f2e3d4c5b6a"])
        .into()
    }
}
impl ToSchema for Hlc {}

impl PartialSchema for Plan {
    fn schema() -> RefOr<Schema> {
        string_schema("A commercial plan, which sets default limits")
            .enum_values(Some(Plan::ALL.iter().map(Plan::as_str)))
            .into()
    }
}
impl ToSchema for Plan {}

fn integer_schema(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .description(Some(description))
}

impl PartialSchema for PlanLimits {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some("What the tenant's plan allows"))
            .property("max_users", integer_schema("Most staff accounts"))
            .property(
                "max_api_calls_month",
                integer_schema("Most calls to this API per calendar month (UTC)"),
            )
            .required("max_users")
            .required("max_api_calls_month")
            .into()
    }
}
impl ToSchema for PlanLimits {}

impl PartialSchema for TenantSettings {
    fn schema() -> RefOr<Schema> {
        let domain = ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                Type::Object,
                Type::Null,
            ]))
            .description(Some(
                "Where the tenant's web back office is reached, if anywhere",
            ))
            .property(
                "kind",
                string_schema("subdomain (one DNS label) or custom (a DNS name)")
                    .enum_values(Some(["subdomain", "custom"])),
            )
            .property("name", string_schema("The DNS label or name"))
            .required("kind")
            .required("name");
        let tax_rate = ObjectBuilder::new()
            .property("name", string_schema("Shown on receipts"))
            .property(
                "rate_ppm",
                integer_schema("Parts per million, 0 to 1,000,000").maximum(Some(1_000_000)),
            )
            .required("name")
            .required("rate_ppm");
        let flag = |text: &'static str| {
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .description(Some(text))
        };
        let rules = ObjectBuilder::new()
            .description(Some(
                "Business rules of the POS flows; every field has a default",
            ))
            .property(
                "allow_negative_stock",
                flag("Sell past zero stock (default false)"),
            )
            .property(
                "allow_gift_card_overdraw",
                flag("Redeem more than a gift card holds (default false)"),
            )
            .property(
                "allow_credit_over_limit",
                flag("Charge store credit past the limit (default false)"),
            )
            .property(
                "loyalty_points_per_unit",
                integer_schema("Points per whole currency unit of net sales, 0 = off (default 1)"),
            )
            .property(
                "loyalty_point_value_minor",
                integer_schema(
                    "Minor units one point is worth when redeemed, at least 1 (default 1)",
                )
                .minimum(Some(1)),
            )
            .property(
                "layaway_min_deposit_ppm",
                integer_schema("Smallest layaway deposit, ppm of its total (default 100000)")
                    .maximum(Some(1_000_000)),
            )
            .property(
                "layaway_cancellation_fee_ppm",
                integer_schema("Share of a cancelled layaway's payments kept, ppm (default 0)")
                    .maximum(Some(1_000_000)),
            )
            .property(
                "tax_labour",
                flag("Tax labour lines of work orders (default false)"),
            )
            .property(
                "allow_refund_to_any_tender",
                flag("Refund by any tender, not only the sale's own (default false)"),
            );
        ObjectBuilder::new()
            .description(Some(
                "White-label and business settings, validated on the server",
            ))
            .property("brand_name", string_schema("1 to 100 characters"))
            .property("domain", domain)
            .property(
                "currency",
                string_schema("ISO 4217 code").pattern(Some("^[A-Z]{3}$")),
            )
            .property("locale", string_schema("Language tag such as en-US"))
            .property(
                "tax_rates",
                ArrayBuilder::new()
                    .items(tax_rate)
                    .description(Some("Taxes applied at checkout")),
            )
            .property(
                "receipt_header",
                string_schema("Printed above each receipt, at most 1000 characters"),
            )
            .property(
                "receipt_footer",
                string_schema("Printed below each receipt, at most 1000 characters"),
            )
            .property(
                "features",
                ObjectBuilder::new()
                    .description(Some("Feature flags switched on or off"))
                    .additional_properties(Some(AdditionalProperties::RefOr(
                        ObjectBuilder::new().schema_type(Type::Boolean).into(),
                    ))),
            )
            .property("rules", rules)
            .required("brand_name")
            .required("currency")
            .required("locale")
            .into()
    }
}
impl ToSchema for TenantSettings {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("TenantSettings")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> TenantId {
        "caps".parse().expect("slug")
    }

    #[test]
    fn a_bucket_bursts_to_its_size_then_refills_at_its_rate() {
        let limiter = RateLimiter::default();
        let rate = RateLimit::new(3, 60).expect("rate");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take(&caps(), rate, t0), Ok(()));
        }
        // Empty: one request comes back every 20 s.
        assert_eq!(limiter.take(&caps(), rate, t0), Err(20));
        assert_eq!(
            limiter.take(&caps(), rate, t0 + Duration::from_secs(19)),
            Err(1),
            "never less than a second"
        );
        assert_eq!(
            limiter.take(&caps(), rate, t0 + Duration::from_secs(20)),
            Ok(())
        );
        // Other tenants have buckets of their own.
        assert_eq!(
            limiter.take(&"bolt".parse().expect("slug"), rate, t0),
            Ok(())
        );
        // A new rate keeps what was used.
        let faster = RateLimit::new(10, 1).expect("rate");
        let t1 = t0 + Duration::from_secs(20);
        assert_eq!(limiter.take(&caps(), faster, t1), Err(1));
        assert_eq!(
            limiter.take(&caps(), faster, t1 + Duration::from_millis(100)),
            Ok(())
        );
    }

    fn schema_keys<T: PartialSchema>() -> Vec<String> {
        let RefOr::T(Schema::Object(o)) = T::schema() else {
            panic!("an object schema")
        };
        let mut keys: Vec<String> = o.properties.keys().cloned().collect();
        keys.sort();
        keys
    }

    fn json_keys(v: &impl Serialize) -> Vec<String> {
        let serde_json::Value::Object(map) = serde_json::to_value(v).expect("json") else {
            panic!("an object")
        };
        map.keys().cloned().collect()
    }

    #[test]
    fn hand_written_schemas_match_what_serde_writes() {
        let mut settings = TenantSettings::new("Caps");
        settings.domain = Some(crate::tenant::settings::Domain::Custom(
            "pos.caps.example".into(),
        ));
        settings.tax_rates.push(crate::tenant::settings::TaxRate {
            name: "State".into(),
            rate_ppm: 60_000,
        });
        settings.features.insert("loyalty".into(), true);
        assert_eq!(schema_keys::<TenantSettings>(), json_keys(&settings));
        let domain = serde_json::to_value(&settings.domain).expect("json");
        assert_eq!(domain["kind"], "custom");
        assert!(domain["name"].is_string());
        assert_eq!(schema_keys::<PlanLimits>(), json_keys(&Plan::Pro.limits()));
        let plans: Vec<String> = Plan::ALL
            .iter()
            .map(|p| {
                serde_json::to_value(p)
                    .expect("json")
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        assert_eq!(plans, ["free", "pro", "enterprise"]);
    }

    #[test]
    fn the_document_describes_every_route_of_the_router() {
        let doc = serde_json::to_value(openapi()).expect("json");
        assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3."));
        let paths = doc["paths"].as_object().expect("paths");
        for path in [
            "/v1/tenants/{tenant}/operations",
            "/v1/tenants/{tenant}/config",
            "/health",
            "/metrics",
            "/v1/openapi.json",
        ] {
            assert!(paths.contains_key(path), "{path}");
        }
        assert!(doc["components"]["schemas"]["Operation"].is_object());
        assert!(doc["components"]["securitySchemes"]["device_token"].is_object());
    }

    /// The settings schema is written by hand; every field the settings serialize must be in it
    /// (a new business rule was once missing), nested objects included.
    #[test]
    fn the_settings_schema_names_every_field_the_settings_carry() {
        fn check(value: &serde_json::Value, schema: &serde_json::Value, at: &str) {
            if let Some(items) = value.as_array() {
                for item in items {
                    check(item, &schema["items"], &format!("{at}[]"));
                }
                return;
            }
            let Some(fields) = value.as_object() else {
                return;
            };
            // A map (feature flags): its keys are data, not fields.
            if schema["additionalProperties"].is_object() {
                return;
            }
            let properties = schema["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{at}: no properties in {schema}"));
            for (name, field) in fields {
                let described = properties
                    .get(name)
                    .unwrap_or_else(|| panic!("{at}.{name} is not in the schema"));
                check(field, described, &format!("{at}.{name}"));
            }
        }
        let doc = serde_json::to_value(openapi()).expect("json");
        let schema = &doc["components"]["schemas"]["TenantSettings"];
        let mut settings = crate::TenantSettings::new("Caps");
        settings.tax_rates.push(crate::TaxRate {
            name: "Sales tax".into(),
            rate_ppm: 88_750,
        });
        let settings = serde_json::to_value(settings).expect("json");
        check(&settings, schema, "TenantSettings");
    }
}
