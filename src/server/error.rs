//! The server's errors: [`ServerError`] when it cannot be set up, [`ApiError`] for what a
//! request is answered, with its HTTP mapping. Internals never reach the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::auth::MIN_SECRET_LEN;
use crate::central::{CentralError, SnapshotError};
use crate::protocol::ErrorBody;

/// The `Retry-After` (seconds) of a 503 `busy`: every database connection of the process stayed
/// in use for as long as a request waits for one. Short: connections are given back as soon as
/// the requests holding them finish.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

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

/// An API error: its HTTP mapping lives here, and internals never reach the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
    close: bool,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            close: false,
        }
    }

    /// The same error, answered with `Retry-After: secs`.
    pub(super) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The same error, answered with `Connection: close`: the connection is not used again
    /// (a body left half read).
    pub(super) fn close_connection(mut self) -> Self {
        self.close = true;
        self
    }

    pub(super) fn internal() -> Self {
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
            | CentralError::ApiCallLimitTooLarge { .. }
            | CentralError::Settings(_) => {
                Self::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
            }
            CentralError::BatchTooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch_too_large",
                e.to_string(),
            ),
            CentralError::OperationTooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "operation_too_large",
                e.to_string(),
            ),
            // Not the client's fault and not lasting: it may try again shortly (a load
            // balancer may send it to another process). What was busy stays in the log.
            CentralError::PoolExhausted { .. } => {
                tracing::warn!(error = %e, "answering 503: no database connection free");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    format!(
                        "the server is busy; nothing was done, try again in {BUSY_RETRY_AFTER_SECS} s"
                    ),
                )
                .retry_after(BUSY_RETRY_AFTER_SECS)
            }
            other => {
                tracing::error!(error = %other, "central store failure");
                Self::internal()
            }
        }
    }
}

impl From<SnapshotError> for ApiError {
    /// A snapshot that cannot be read is the server's trouble (a damaged or removed `.sha256`,
    /// a disk error): logged, answered 500 without details.
    fn from(e: SnapshotError) -> Self {
        tracing::error!(error = %e, "snapshot failure");
        Self::internal()
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
        if self.close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
