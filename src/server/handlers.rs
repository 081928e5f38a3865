//! The handlers: push, pull and config for a tenant's devices; health, metrics and the OpenAPI
//! document for the operator. Each carries its OpenAPI description.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::app::{blocking, AppState};
use super::auth::Admitted;
use super::error::ApiError;
use super::openapi::openapi;
use crate::central;
use crate::ids::Timestamp;
use crate::protocol::{
    Batch, BatchResults, ErrorBody, OperationPage, TenantConfig, SNAPSHOT_CURSOR_HEADER,
    SNAPSHOT_SHA256_HEADER,
};

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
pub(super) async fn health() -> Json<Health> {
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
            pos_central_http_requests_in_flight, \
            pos_central_tenant_storage_bytes{tenant}",
            content_type = "text/plain; version=0.0.4", body = String),
        (status = 500, description = "The metrics could not be encoded", body = ErrorBody)
    )
)]
pub(super) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    // Read from the store at each scrape, so every process reports the same figures. A store
    // that cannot answer leaves the gauges as they were and the rest of the scrape whole.
    let store = Arc::clone(&state.store);
    match blocking(move || store.storage_by_tenant()).await {
        Ok(by_tenant) => state.metrics.storage(&by_tenant),
        Err(_) => tracing::warn!("tenant storage not read for this scrape; gauges unchanged"),
    }
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
pub(super) async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(openapi())
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
        (status = 408, description = "The body did not arrive within 30 s (`body_timeout`); \
            nothing was stored and the connection is closed", body = ErrorBody),
        (status = 413, description = "More operations than a batch may hold (1000), a body \
            over 4 MiB (`batch_too_large`), or an operation over 1 MiB of JSON \
            (`operation_too_large`); nothing was stored", body = ErrorBody),
        (status = 429, description = "The tenant's request rate or its plan's monthly API calls \
            are used up; nothing was stored", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a retry may succeed"))),
        (status = 503, description = "Every database connection stayed busy for as long as \
            a request waits (`busy`); nothing was done", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a retry may succeed"))),
        (status = 500, description = "Internal error; nothing is known to be stored", body = ErrorBody)
    )
)]
pub(super) async fn push(
    State(state): State<AppState>,
    admitted: Admitted,
    // After `Admitted`: the body is read only once the device is let in, so a stranger cannot
    // make the server buffer up to MAX_BODY_BYTES.
    request: Request,
) -> Result<Json<BatchResults>, ApiError> {
    let body = read_body(&state, request).await?;
    let store = Arc::clone(&state.store);
    let max_skew = state.max_skew;
    let t = admitted.tenant().clone();
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
    state.metrics.results(admitted.tenant(), &results);
    Ok(Json(BatchResults { results }))
}

/// Reads a request's body within the state's body timeout. Axum's own extractor reads it
/// (DefaultBodyLimit applies), because it tells a body over the limit (413) from one that
/// failed to arrive (400); a body still arriving at the timeout answers 408 and closes the
/// connection, so a client that trickles its body holds neither a task nor a connection.
async fn read_body(state: &AppState, request: Request) -> Result<Bytes, ApiError> {
    let timeout = state.body_timeout;
    match tokio::time::timeout(timeout, Bytes::from_request(request, state)).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => {
            let status = e.status();
            Err(if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(status, "batch_too_large", e.body_text())
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
            })
        }
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {} s; nothing was stored",
                timeout.as_secs_f64()
            ),
        )
        .close_connection()),
    }
}

/// Query of a pull.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PullQuery {
    /// Sequence number already seen (default 0).
    #[serde(default)]
    pub after: u64,
    /// Page size, 1 to 1000 (default 500). A page also stops before 4 MiB of operation JSON
    /// (but holds at least one operation): page on while `after` is below `high`.
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
        (status = 503, description = "Every database connection stayed busy for as long as \
            a request waits (`busy`); nothing was done", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a retry may succeed"))),
        (status = 500, description = "Internal error", body = ErrorBody)
    )
)]
pub(super) async fn pull(
    State(state): State<AppState>,
    admitted: Admitted,
    query: Result<Query<PullQuery>, QueryRejection>,
) -> Result<Json<OperationPage>, ApiError> {
    let id = admitted.tenant().clone();
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
        (status = 503, description = "Every database connection stayed busy for as long as \
            a request waits (`busy`); nothing was done", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a retry may succeed"))),
        (status = 500, description = "Internal error", body = ErrorBody)
    )
)]
pub(super) async fn config(
    State(state): State<AppState>,
    admitted: Admitted,
) -> Result<Json<TenantConfig>, ApiError> {
    let id = admitted.tenant().clone();
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

/// The media type of a snapshot: an SQLite database file.
const SNAPSHOT_CONTENT_TYPE: &str = "application/vnd.sqlite3";

// The body of a snapshot answer as the OpenAPI document describes it: bytes, not JSON.
/// An SQLite database file (a tenant export), as bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // Only its schema is used.
struct SnapshotFile(Vec<u8>);

/// Read size of a snapshot's body: a few system calls per MiB, a small buffer per download.
const SNAPSHOT_CHUNK: usize = 64 * 1024;

/// The newest snapshot of the tenant: a tenant export (an SQLite file) of the tenant's log
/// applied up to the cursor in `x-pos-snapshot-cursor`, its SHA-256 in
/// `x-pos-snapshot-sha256`. A new terminal takes it in one copy, then pulls the log after that
/// cursor. Streamed from the file as it is read.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/snapshot",
    tag = "sync",
    params(("tenant" = String, Path, description = "The tenant's slug")),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The snapshot file", content_type = "application/vnd.sqlite3",
            body = inline(SnapshotFile),
            headers(
                ("x-pos-snapshot-cursor" = u64, description = "The last sequence number of the \
                    tenant's log the snapshot holds"),
                ("x-pos-snapshot-sha256" = String, description = "SHA-256 of the file, \
                    lowercase hex"),
                ("Content-Length" = u64, description = "The file's size in bytes")
            )),
        (status = 401, description = "No, forged or expired device token", body = ErrorBody),
        (status = 403, description = "A token of another tenant, or the tenant is not active", body = ErrorBody),
        (status = 404, description = "Unknown tenant, or no snapshot of the tenant \
            (`no_snapshot`: replay the log from the start)", body = ErrorBody),
        (status = 429, description = "The tenant's request rate or its plan's monthly API calls \
            are used up", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a retry may succeed"))),
        (status = 503, description = "Every database connection stayed busy for as long as \
            a request waits (`busy`); nothing was done", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a retry may succeed"))),
        (status = 500, description = "Internal error", body = ErrorBody)
    )
)]
pub(super) async fn snapshot(
    State(state): State<AppState>,
    admitted: Admitted,
) -> Result<Response, ApiError> {
    let id = admitted.tenant().clone();
    let none = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_snapshot",
            format!("the server holds no snapshot of tenant {id}; pull the log from the start"),
        )
    };
    let Some(snapshots) = state.snapshots.clone() else {
        return Err(none());
    };
    let t = id.clone();
    // Opened off the async threads; once open, a newer build removing it does not matter.
    let Some((info, _path, file)) = blocking(move || snapshots.open_newest(&t)).await? else {
        return Err(none());
    };
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        tokio::fs::File::from_std(file),
        SNAPSHOT_CHUNK,
    ));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, SNAPSHOT_CONTENT_TYPE)
        .header(header::CONTENT_LENGTH, info.bytes)
        .header(SNAPSHOT_CURSOR_HEADER, info.cursor)
        .header(SNAPSHOT_SHA256_HEADER, info.sha256)
        .body(body)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot build the snapshot answer");
            ApiError::internal()
        })
}
