//! Device tokens: issuing them (HS256, for `pos-central token issue`) and letting a request in
//! for the tenant in its path.
//!
//! The check is an extractor, [`Admitted`]: a handler that serves a tenant takes one as an
//! argument, and it is the only way a handler gets the tenant's id, so no handler can serve a
//! tenant without the check, nor run its body before it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, TimeZone, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use super::app::{blocking, AppState};
use super::error::{ApiError, ServerError};
use crate::central::CentralError;
use crate::ids::{TenantId, Timestamp};
use crate::protocol::{Claims, RateLimit};
use crate::tenant::settings::{Plan, PlanLimits, TenantStatus};

/// The shortest signing secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// The longest a device token may live: `pos-central token issue --ttl` takes at most this,
/// and the server refuses a token whose `exp` is further ahead than this (plus the clock skew
/// it allows, [`AppState::max_skew`]), so a token never lives on unnoticed, and a leaked one
/// stops working within a year even if nobody rotates the secret.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(365 * 86_400);

/// Refuses a secret too short to sign with: tokens are only as strong as it.
pub(super) fn check_secret(secret: &[u8]) -> Result<(), ServerError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(ServerError::WeakSecret(secret.len()));
    }
    Ok(())
}

/// Signs a device token (HS256) for `tenant` and `device`, valid until `exp` (Unix seconds).
/// The server takes it only while `exp` is at most [`MAX_TOKEN_TTL`] ahead of its clock.
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
        // A refused request's body is never read: the connection cannot carry another
        // request, and saying so keeps a client's pool from sending the next one down a
        // connection the server is closing.
        let has_body = parts
            .headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
            || parts
                .headers
                .contains_key(axum::http::header::TRANSFER_ENCODING);
        admit(state, &parts.headers, &tenant)
            .await
            .map(Self)
            .map_err(|e| if has_body { e.close_connection() } else { e }.into_response())
    }
}

/// Authenticates the device for `tenant`, checks the tenant, takes one request from its rate,
/// and counts the call against its monthly plan while under the plan's limit ([`Admitted`]).
async fn admit(state: &AppState, headers: &HeaderMap, tenant: &str) -> Result<TenantId, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
    let token = bearer_token(headers).map_err(|m| unauthorized(&m))?;
    let claims = decode_claims(&state.secret, token).map_err(|m| unauthorized(&m))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let latest = now
        .saturating_add(MAX_TOKEN_TTL.as_secs())
        .saturating_add(state.max_skew.as_secs());
    if claims.exp > latest {
        return Err(unauthorized(&format!(
            "the device token is valid for {} more days, longer than this server accepts \
             (at most {} days); issue the device a new one with `pos-central token issue` \
             and a --ttl of at most {}d",
            (claims.exp - now) / 86_400,
            MAX_TOKEN_TTL.as_secs() / 86_400,
            MAX_TOKEN_TTL.as_secs() / 86_400
        )));
    }
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
            over_plan_message(&id, plan, limits),
        )
        .retry_after(seconds_to_next_month())),
        Admission::In => Ok(id),
    }
}

/// The device token of an `Authorization` header: the `Bearer` scheme (in any case, as HTTP
/// schemes are), then the token; or why there is none, for a person.
fn bearer_token(headers: &HeaderMap) -> Result<&str, String> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err("a device token is required (Authorization: Bearer ...)".into());
    };
    let value = value
        .to_str()
        .map_err(|_| {
            "the Authorization header is not plain text; it must be Bearer and a device token"
        })?
        .trim();
    let (scheme, token) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(
            "the Authorization header must use the Bearer scheme: Authorization: Bearer TOKEN"
                .into(),
        );
    }
    let token = token.trim();
    if token.is_empty() {
        return Err("the Authorization header has no device token after Bearer".into());
    }
    Ok(token)
}

/// What a token that is not a JWT at all is told.
const MALFORMED_TOKEN: &str = "the device token is malformed: a device token is a JWT (three \
    base64url parts joined by dots) as `pos-central token issue` prints it";

/// The claims of a device token signed with `secret`, or why it is refused, in words a person
/// can act on (the library's own message, which names its internals, goes to the debug log).
fn decode_claims(secret: &[u8], token: &str) -> Result<Claims, String> {
    let wrong_algorithm = |alg: &str| {
        format!(
            "the device token is signed with {alg}; this server takes only HS256 tokens, as \
             `pos-central token issue` makes them"
        )
    };
    let header = jsonwebtoken::decode_header(token).map_err(|e| {
        tracing::debug!(error = %e, "device token header refused");
        match e.kind() {
            // A header that is JSON but names no algorithm the library knows (`none`).
            ErrorKind::Json(_) => wrong_algorithm("an algorithm it does not know"),
            _ => MALFORMED_TOKEN.to_owned(),
        }
    })?;
    if header.alg != Algorithm::HS256 {
        return Err(wrong_algorithm(&format!("{:?}", header.alg)));
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
        .map(|data| data.claims)
        .map_err(|e| {
            tracing::debug!(error = %e, "device token refused");
            match e.kind() {
                ErrorKind::ExpiredSignature => "the device token has expired; issue the device a \
                    new one with `pos-central token issue`"
                    .to_owned(),
                ErrorKind::InvalidSignature => "the device token was not signed with this \
                    server's secret (a token of another server, or the secret was changed); \
                    issue the device a new one with `pos-central token issue`"
                    .to_owned(),
                ErrorKind::InvalidAlgorithm => wrong_algorithm("another algorithm"),
                ErrorKind::Json(_) | ErrorKind::MissingRequiredClaim(_) => "the device token \
                    does not carry the claims of a device token (tenant, device, and exp in \
                    seconds); issue the device a new one with `pos-central token issue`"
                    .to_owned(),
                _ => MALFORMED_TOKEN.to_owned(),
            }
        })
}

/// Why a call over the tenant's monthly API calls is refused: the plan's limit, or the
/// tenant's own when it has one (a negotiated contract, a trial), named as such.
fn over_plan_message(id: &TenantId, plan: Plan, limits: PlanLimits) -> String {
    let max = limits.max_api_calls_month;
    let calls = |n: u64| format!("{n} API call{}", if n == 1 { "" } else { "s" });
    let plans = plan.limits().max_api_calls_month;
    let whose = if max == plans {
        format!(
            "the {plan} plan of tenant {id} allows {} a month",
            calls(max)
        )
    } else {
        format!(
            "tenant {id} may make {} a month (its own limit; the {plan} plan's is {plans})",
            calls(max)
        )
    };
    format!("{whose}, and this month's are used up; calls are counted again from the 1st of next month (UTC)")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plans_limit_and_a_tenants_own_are_told_apart() {
        let tiny: TenantId = "tiny".parse().expect("id");
        let plan = over_plan_message(&tiny, Plan::Free, Plan::Free.limits());
        assert!(
            plan.starts_with("the free plan of tenant tiny allows 10000 API calls a month"),
            "{plan}"
        );
        let own = PlanLimits {
            max_api_calls_month: 3,
            ..Plan::Free.limits()
        };
        let own = over_plan_message(&tiny, Plan::Free, own);
        assert!(
            own.starts_with(
                "tenant tiny may make 3 API calls a month (its own limit; the free plan's is 10000)"
            ),
            "{own}"
        );
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::AUTHORIZATION,
                value.parse().expect("a header value"),
            );
            h
        };
        for value in [
            "Bearer t.o.k",
            "bearer t.o.k",
            "BEARER   t.o.k ",
            " Bearer\tt.o.k",
        ] {
            assert_eq!(
                bearer_token(&with(value)).as_deref(),
                Ok("t.o.k"),
                "{value:?}"
            );
        }
        for value in ["Basic dXNlcg==", "Bearer", "Bearer   ", "Bearert.o.k"] {
            assert!(bearer_token(&with(value)).is_err(), "{value:?}");
        }
        assert!(bearer_token(&HeaderMap::new()).is_err());
    }
}
