//! The HTTP API of `pos-central` (feature `server`): axum on tokio over a [`CentralStore`].
//!
//! Routes, all JSON, device token as `Authorization: Bearer`:
//! - `POST /v1/tenants/{tenant}/operations` with `{"operations": [OP, ...]}`: answers
//!   `{"results": [...]}` after the batch is committed.
//! - `GET /v1/tenants/{tenant}/operations?after=SEQ&limit=N`: the log after a cursor.
//! - `GET /v1/tenants/{tenant}/config`: the tenant's settings, for nodes to pull.
//! - `GET /health`.
//!
//! Errors are `{"error": code, "message": text}` with 400 (bad input, nothing stored), 401 (no,
//! forged or expired token), 403 (token of another tenant, or tenant not active), 404 (unknown
//! tenant), 413 (batch too large), 429 (monthly API calls of the plan used up, with
//! `Retry-After`). Internal failures answer 500 without details, which go to the log.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Datelike, TimeZone, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::central::{CentralError, CentralStore, OperationPage, OperationResult};
use crate::ids::{TenantId, Timestamp};
use crate::outbox::Operation;
use crate::tenant::{TenantSettings, TenantStatus};

/// The shortest signing secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// Claims of a device token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The tenant the device belongs to.
    pub tenant: String,
    /// The device (node id).
    pub device: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// Why a secret or token could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The secret is too short to sign with.
    #[error("the signing secret must be at least {MIN_SECRET_LEN} bytes, got {0}")]
    WeakSecret(usize),
    /// Signing failed.
    #[error("cannot sign the token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// Signs a device token (HS256) for `tenant` and `device`, valid until `exp` (Unix seconds).
pub fn issue_token(
    secret: &[u8],
    tenant: &TenantId,
    device: &str,
    exp: u64,
) -> Result<String, TokenError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(TokenError::WeakSecret(secret.len()));
    }
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
}

impl AppState {
    /// State over a store, with the token-signing secret.
    pub fn new(store: Arc<dyn CentralStore>, secret: Vec<u8>) -> Result<Self, TokenError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(TokenError::WeakSecret(secret.len()));
        }
        Ok(Self {
            store,
            secret: Arc::new(secret),
        })
    }
}

/// The router; tests drive it directly or over a real socket.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/tenants/{tenant}/operations", get(pull).post(push))
        .route("/v1/tenants/{tenant}/config", get(config))
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
            CentralError::BatchRejected { .. } | CentralError::BadLimit { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
            }
            CentralError::BatchTooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch_too_large",
                e.to_string(),
            ),
            other => {
                tracing::error!(error = %other, "central store failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.code, "message": self.message }));
        let mut response = (self.status, body).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CentralError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => {
            tracing::error!(error = %e, "store task failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ))
        }
    }
}

/// Authenticates the device for the tenant in the path, checks the tenant, and counts the
/// call against the tenant's monthly plan.
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
    let t = id.clone();
    let (info, calls) = blocking(move || {
        let info = store.tenant(&t)?;
        if info.status != TenantStatus::Active {
            return Err(CentralError::TenantInactive {
                tenant: t,
                status: info.status,
            });
        }
        let calls = store.count_api_call(&t, Timestamp::now())?;
        Ok((info, calls))
    })
    .await?;
    if calls > info.limits.max_api_calls_month {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "plan_limit",
            format!(
                "the {} plan allows {} API calls a month",
                info.plan, info.limits.max_api_calls_month
            ),
        );
        e.retry_after = Some(seconds_to_next_month());
        return Err(e);
    }
    Ok(id)
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
        .map(|next| u64::try_from((next - now).num_seconds()).unwrap_or(0))
        .unwrap_or(3600)
}

/// A pushed batch.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// The operations, as `pos-node outbox list --json` prints them.
    pub operations: Vec<Operation>,
}

/// The answer to a push.
#[derive(Debug, Deserialize, Serialize)]
pub struct BatchResults {
    /// One entry per operation, in order.
    pub results: Vec<OperationResult>,
}

async fn push(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Batch>, JsonRejection>,
) -> Result<Json<BatchResults>, ApiError> {
    let id = admit(&state, &headers, &tenant).await?;
    let Json(batch) = body.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "batch_too_large", e.body_text())
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
        }
    })?;
    let store = Arc::clone(&state.store);
    let results = blocking(move || store.append(&id, &batch.operations)).await?;
    Ok(Json(BatchResults { results }))
}

/// Query of a pull.
#[derive(Debug, Deserialize)]
pub struct PullQuery {
    /// Sequence number already seen (default 0).
    #[serde(default)]
    pub after: u64,
    /// Page size (default 500).
    pub limit: Option<u32>,
}

async fn pull(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    query: Result<Query<PullQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<OperationPage>, ApiError> {
    let id = admit(&state, &headers, &tenant).await?;
    let Query(q) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let store = Arc::clone(&state.store);
    let page =
        blocking(move || store.operations_after(&id, q.after, q.limit.unwrap_or(500))).await?;
    Ok(Json(page))
}

/// What a node pulls to configure itself.
#[derive(Debug, Deserialize, Serialize)]
pub struct TenantConfig {
    /// The tenant.
    pub id: TenantId,
    /// Trading name.
    pub name: String,
    /// Its plan.
    pub plan: crate::tenant::Plan,
    /// Its limits.
    pub limits: crate::tenant::PlanLimits,
    /// White-label settings.
    pub settings: TenantSettings,
}

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
        settings: t.settings,
    }))
}
