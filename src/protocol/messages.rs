//! The messages of the sync API: push batches and their results, pages of a tenant's log, the
//! configuration a node pulls, the error body, device token claims, and the limits they obey.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Operation;
use crate::ids::{RowId, TenantId};
use crate::tenant::settings::{Plan, PlanLimits, TenantSettings};

/// Most operations one push may carry.
pub const MAX_BATCH: usize = 1000;
/// Most operations one pull returns.
pub const MAX_PAGE: u32 = 1000;

/// A request rate for a token bucket: up to `requests` per `per_secs` seconds, in bursts of up
/// to `requests`. Its text form is `100/s`, `600/m` or `5000/h`.
///
/// ```
/// use pos_tenancy::protocol::RateLimit;
/// let r: RateLimit = "600/m".parse()?;
/// assert_eq!((r.requests, r.per_secs), (600, 60));
/// assert_eq!(r.to_string(), "600/m");
/// assert!("0/s".parse::<RateLimit>().is_err());
/// # Ok::<(), pos_tenancy::protocol::BadRateLimit>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
// Read through `new`, so JSON cannot bring in a rate of 0 (an endless Retry-After).
#[serde(try_from = "RateLimitFields")]
pub struct RateLimit {
    /// Requests allowed per period, and the largest burst; at least 1.
    #[cfg_attr(feature = "server", schema(minimum = 1))]
    pub requests: u32,
    /// The period in seconds; at least 1.
    #[cfg_attr(feature = "server", schema(minimum = 1))]
    pub per_secs: u32,
}

/// A [`RateLimit`]'s JSON form, before [`RateLimit::new`] checks it.
#[derive(Deserialize)]
struct RateLimitFields {
    requests: u32,
    per_secs: u32,
}

impl TryFrom<RateLimitFields> for RateLimit {
    type Error = BadRateLimit;
    fn try_from(f: RateLimitFields) -> Result<Self, BadRateLimit> {
        Self::new(f.requests, f.per_secs)
    }
}

impl RateLimit {
    /// The rate, checked: both numbers at least 1.
    pub fn new(requests: u32, per_secs: u32) -> Result<Self, BadRateLimit> {
        if requests == 0 || per_secs == 0 {
            return Err(BadRateLimit(format!("{requests}/{per_secs}s")));
        }
        Ok(Self { requests, per_secs })
    }

    /// Tokens added per second.
    pub fn per_second(&self) -> f64 {
        f64::from(self.requests) / f64::from(self.per_secs)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.per_secs {
            1 => write!(f, "{}/s", self.requests),
            60 => write!(f, "{}/m", self.requests),
            3600 => write!(f, "{}/h", self.requests),
            n => write!(f, "{}/{n}s", self.requests),
        }
    }
}

impl FromStr for RateLimit {
    type Err = BadRateLimit;
    fn from_str(s: &str) -> Result<Self, BadRateLimit> {
        let bad = || BadRateLimit(s.to_owned());
        let (n, unit) = s.split_once('/').ok_or_else(bad)?;
        let requests: u32 = n.trim().parse().map_err(|_| bad())?;
        let per_secs = match unit.trim() {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            // The Display form of other periods, such as `10/30s`.
            other => other
                .strip_suffix('s')
                .and_then(|n| n.parse().ok())
                .ok_or_else(bad)?,
        };
        Self::new(requests, per_secs).map_err(|_| bad())
    }
}

/// A request rate that is not `N/s`, `N/m`, `N/h` or `N/Ks` with both numbers at least 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a rate like 100/s, 600/m or 5000/h (at least 1 request)")]
pub struct BadRateLimit(pub String);

/// What happened to one pushed operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OperationStatus {
    /// Stored now, with a new sequence number.
    Accepted,
    /// Stored before (same id, same content); its sequence number is the original one.
    Duplicate,
    /// Not stored; see the reason.
    Rejected,
}

/// The answer for one pushed operation, in the order they were sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct OperationResult {
    /// The operation id.
    pub id: RowId,
    /// Accepted, duplicate or rejected.
    pub status: OperationStatus,
    /// Its place in the tenant's log (accepted and duplicate ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An operation with its place in the tenant's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct SequencedOperation {
    /// Gap-free per-tenant sequence number, from 1.
    pub seq: u64,
    /// The operation as accepted.
    pub operation: Operation,
}

/// A page of a tenant's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct OperationPage {
    /// Operations after the cursor, in sequence order.
    pub operations: Vec<SequencedOperation>,
    /// The highest sequence number the tenant's log holds now.
    pub high: u64,
}

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

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A stable code: `bad_request`, `clock_skew`, `unauthorized`, `wrong_tenant`,
    /// `tenant_inactive`, `unknown_tenant`, `not_found`, `method_not_allowed`, `body_timeout`,
    /// `batch_too_large`, `operation_too_large`, `uri_too_long`, `headers_too_large`,
    /// `rate_limited`, `plan_limit` or `internal`.
    pub error: String,
    /// What was wrong, for a person.
    pub message: String,
}

/// A pushed batch.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// The operations, each exactly as `pos-node outbox list --json` prints it; at most
    /// [`MAX_BATCH`].
    pub operations: Vec<Operation>,
}

/// The answer to a push.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct BatchResults {
    /// One entry per operation, in order.
    pub results: Vec<OperationResult>,
}

/// What a node pulls to configure itself.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct TenantConfig {
    /// The tenant.
    pub id: TenantId,
    /// Trading name.
    pub name: String,
    /// Its plan.
    pub plan: Plan,
    /// Its limits.
    pub limits: PlanLimits,
    /// The request rate its devices get (its own, or the server's default).
    pub rate_limit: RateLimit,
    /// White-label settings.
    pub settings: TenantSettings,
}

/// The newest snapshot of a tenant that the central server holds (`GET
/// /v1/tenants/{tenant}/snapshot`): a tenant export (see [`crate::Store::export_tenant`]) of a
/// node that applied the tenant's log up to `cursor`, so a new terminal can take the tenant's
/// state in one copy and pull only what came after. Sent in the response headers
/// [`SNAPSHOT_CURSOR_HEADER`] and [`SNAPSHOT_SHA256_HEADER`], the file as the body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct SnapshotInfo {
    /// The last sequence number of the tenant's log the snapshot holds.
    pub cursor: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// The file's size in bytes.
    pub bytes: u64,
}

/// The response header naming the snapshot's cursor (a decimal sequence number).
pub const SNAPSHOT_CURSOR_HEADER: &str = "x-pos-snapshot-cursor";
/// The response header naming the snapshot's SHA-256 (lowercase hex).
pub const SNAPSHOT_SHA256_HEADER: &str = "x-pos-snapshot-sha256";
