//! Device tokens: issuing them (HS256, for `pos-central token issue`) and letting a request in
//! for the tenant in its path.
//!
//! The check is an extractor, [`Admitted`]: a handler that serves a tenant takes one as an
//! argument, and it is the only way a handler gets the tenant's id, so no handler can serve a
//! tenant without the check, nor run its body before it.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, TimeZone, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use super::app::{blocking, AppState};
use super::error::{ApiError, ServerError};
use crate::central::CentralError;
use crate::ids::{TenantId, Timestamp};
use crate::protocol::{Claims, RateLimit};
use crate::tenant::settings::{Plan, PlanLimits, TenantStatus};

/// The shortest signing secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// Refuses a secret too short to sign with: tokens are only as strong as it.
pub(super) fn check_secret(secret: &[u8]) -> Result<(), ServerError> {
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

/// A request let in for the tenant in its path: the device token is valid (HS256, not expired)
/// and for that tenant, the tenant exists and is active, one request was taken from its rate,
/// and the call was counted against its plan's monthly API calls.
///
/// Refused requests (401, 403, 404, 429) store nothing and count nothing; a call let in counts
/// whatever it then answers (bad input included: the tenant's device made the server work).
/// Extractors run in argument order and the body last, so a handler that takes this before
/// its body reads no body for a stranger.
#[derive(Debug)]
pub(super) struct Admitted(TenantId);

impl Admitted {
    /// The tenant the request was let in for.
    pub(super) fn tenant(&self) -> &TenantId {
        &self.0
    }
}

impl FromRequestParts<AppState> for Admitted {
    /// An [`ApiError`] as a response, or axum's own answer to a path it cannot decode (what
    /// the handlers answered when each took the path itself).
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Path(tenant) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        admit(state, &parts.headers, &tenant)
            .await
            .map(Self)
            .map_err(IntoResponse::into_response)
    }
}

/// Authenticates the device for `tenant`, checks the tenant, takes one request from its rate,
/// and counts the call against its monthly plan while under the plan's limit ([`Admitted`]).
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
        Admission::Throttled { rate, retry_after } => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "tenant {id} may make {} requests per {} s ({rate}); try again in {retry_after} s",
                rate.requests, rate.per_secs
            ),
        )
        .retry_after(retry_after)),
        Admission::OverPlan { limits, plan } => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "plan_limit",
            format!(
                "the {plan} plan allows {} API calls a month",
                limits.max_api_calls_month
            ),
        )
        .retry_after(seconds_to_next_month())),
        Admission::In => Ok(id),
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

/// Seconds until the next calendar month (UTC), when the plan's monthly calls start again.
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
