//! The central server's storage: the tenants it serves and each tenant's operation log.
//!
//! The server is "the order, not the judge": it checks each pushed operation against the
//! catalog, stores each operation id once per tenant, and gives every accepted operation the
//! next number of a gap-free per-tenant sequence, so that nodes pulling the log after their
//! cursor all see the same order. The HTTP API (`pos-central`) is built on top of this module.
//!
//! - This file: the [`CentralStore`] trait, what every backend promises, its error and the
//!   tenant types, and the checks every backend runs before it stores anything
//!   (`check_batch`, `check_page_limit`, `check_limits`, [`check_skew`]) or while it fills a
//!   page (`PageBudget`).
//! - `sqlite.rs`: [`SqliteCentral`], the embedded default backend.
//! - `postgres.rs` (feature `postgres`): `PgCentral`, for several server processes over one
//!   PostgreSQL database.
//! - `snapshot.rs`: [`TenantSnapshots`], each tenant's snapshot (a tenant export of a shadow
//!   node kept at the head of the tenant's log), which new terminals download instead of
//!   replaying the log.
//!
//! What a backend promises is written down as code in the test kit,
//! `testkit::central_conformance`: a conformance suite that each backend runs against itself.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{RowId, TenantId, Timestamp};
use crate::protocol::{
    self, BadRateLimit, Operation, OperationError, OperationPage, OperationResult, RateLimit,
    MAX_BATCH, MAX_PAGE,
};
use crate::tenant::settings::{
    NewTenant, Plan, PlanLimits, SettingsError, TenantSettings, TenantStatus,
};

#[cfg(feature = "postgres")]
mod postgres;
mod snapshot;
mod sqlite;

#[cfg(feature = "postgres")]
pub use self::postgres::{PgCentral, DEFAULT_POOL_SIZE, DEFAULT_POOL_WAIT};
pub use snapshot::{SnapshotError, TenantSnapshots};
pub use sqlite::SqliteCentral;

/// The most operation JSON one page of the log carries, in bytes (the sum of its operations'
/// JSON, as [`CentralStore::append`] took them): a page stops before the operation that would
/// take it past this bound, so a pull answer stays a few MiB however large the operations are,
/// and the server's memory per pull with it. A page always holds at least one operation when
/// the log has one after the cursor, so a client that pages on while `after < high` (as a
/// node's sync client does) always makes progress.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// The largest operation taken, in bytes of its JSON: one row of one table. A quarter of
/// [`MAX_PAGE_BYTES`], so a page under the budget holds several of the largest; a product with
/// a photo of about 250 KiB (a blob travels as an array of byte values) still fits. A batch
/// holding a larger operation is refused whole.
pub const MAX_OPERATION_BYTES: usize = 1024 * 1024;

/// The highest monthly API call limit a tenant can have: the largest value a backend stores
/// (SQLite's and PostgreSQL's 64-bit signed integers). Higher limits are refused rather than
/// stored as something else; a limit this high never binds.
pub const MAX_API_CALLS_LIMIT: u64 = i64::MAX as u64;

/// What went wrong in the central store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CentralError {
    /// No such tenant.
    #[error("tenant {0} does not exist")]
    TenantNotFound(TenantId),
    /// The tenant is registered already.
    #[error("tenant {0} already exists")]
    TenantExists(TenantId),
    /// A status change the tenant's status does not allow ([`TenantStatus::can_become`]:
    /// cancelled is final); nothing was changed.
    #[error(
        "tenant {tenant} is {from} and cannot become {to}: cancelled is final; a tenant is \
         suspended or cancelled from active, and re-activated only from suspended"
    )]
    StatusChange {
        /// The tenant.
        tenant: TenantId,
        /// Its status.
        from: TenantStatus,
        /// The status asked for.
        to: TenantStatus,
    },
    /// The tenant may not push or pull now.
    #[error("tenant {tenant} is {status}")]
    TenantInactive {
        /// The tenant.
        tenant: TenantId,
        /// Its status.
        status: TenantStatus,
    },
    /// One operation of a batch is bad input; nothing of the batch was stored.
    #[error("operation {index} ({id}) refused, nothing of the batch was stored: {reason}")]
    BatchRejected {
        /// Its position in the batch, from 0.
        index: usize,
        /// Its id.
        id: RowId,
        /// Why.
        reason: String,
    },
    /// More operations than [`MAX_BATCH`].
    #[error("a batch holds at most {max} operations, this one {len}")]
    BatchTooLarge {
        /// Operations sent.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A page size outside 1 to [`MAX_PAGE`].
    #[error("a page holds 1 to {max} operations, not {limit}")]
    BadLimit {
        /// Asked for.
        limit: u32,
        /// The limit.
        max: u32,
    },
    /// An operation stamped further ahead of the server's clock than the allowed skew;
    /// nothing of the batch was stored.
    #[error(
        "operation {index} ({id}) refused, nothing of the batch was stored: its clock stamp is \
         {ahead_ms} ms ahead of the server's clock; at most {max_skew_ms} ms is accepted"
    )]
    ClockSkew {
        /// Its position in the batch, from 0.
        index: usize,
        /// Its id.
        id: RowId,
        /// How far ahead of the server's clock it was.
        ahead_ms: u64,
        /// The configured bound.
        max_skew_ms: u64,
    },
    /// An operation of a batch is larger than [`MAX_OPERATION_BYTES`]; nothing of the batch was
    /// stored.
    #[error(
        "operation {index} ({id}) refused, nothing of the batch was stored: it is {bytes} bytes \
         of JSON; an operation may be at most {max} bytes"
    )]
    OperationTooLarge {
        /// Its position in the batch, from 0.
        index: usize,
        /// Its id.
        id: RowId,
        /// Its size, in bytes of JSON.
        bytes: usize,
        /// The bound, [`MAX_OPERATION_BYTES`].
        max: usize,
    },
    /// A monthly API call limit over [`MAX_API_CALLS_LIMIT`]; nothing was changed.
    #[error(
        "a tenant's monthly API calls can be limited to at most {max} (as good as no limit), \
         not {value}"
    )]
    ApiCallLimitTooLarge {
        /// The limit asked for.
        value: u64,
        /// The bound, [`MAX_API_CALLS_LIMIT`].
        max: u64,
    },
    /// Not a rate such as `100/s`, `600/m` or `5000/h`.
    #[error("{0:?} is not a rate like 100/s, 600/m or 5000/h (at least 1 request)")]
    BadRateLimit(String),
    /// Settings that failed validation.
    #[error("invalid tenant settings: {0}")]
    Settings(#[from] SettingsError),
    /// The database could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The file is a database of something else (a node's), or empty where an existing
    /// database was asked for; nothing was written to it.
    #[error(
        "{path} is {what}, not a pos-central one; pos-central keeps its own database (a new \
         one is made by `pos-central init --db FILE` or `pos-central tenant add --db FILE ...`)"
    )]
    NotCentral {
        /// The file.
        path: PathBuf,
        /// What it is: `a pos-node database`, `another SQLite database`, `an empty file` or
        /// `an empty SQLite database`.
        what: &'static str,
    },
    /// No file at the path, where an existing database was asked for
    /// ([`SqliteCentral::open_existing`](crate::SqliteCentral::open_existing)); nothing was
    /// created.
    #[error("no database at {path} (nothing was created)")]
    NoDatabase {
        /// The path given.
        path: PathBuf,
    },
    /// Migrating the database failed; nothing was applied.
    #[error("migrating the central database failed, nothing was applied: {0}")]
    Migration(String),
    /// A PostgreSQL database whose schema is not the version this build uses; nothing was
    /// changed (`PgCentral::connect` never migrates).
    #[error(
        "the database's schema is at version {}, this pos-central needs version {want}: run \
         `pos-central migrate --database-url URL` as the role that owns the tables (the server's \
         own role need not be allowed to change the schema); nothing was changed",
        have.map_or_else(|| "none (never migrated)".to_owned(), |v| v.to_string())
    )]
    SchemaVersion {
        /// The newest migration applied there, if any.
        have: Option<u32>,
        /// The newest this build has.
        want: u32,
    },
    /// A stored row that does not read back (a damaged or foreign file).
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// Any other SQLite failure.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL failure: connecting, or a statement (`PgCentral`).
    #[cfg(feature = "postgres")]
    #[error("postgresql: {}", with_causes(.0))]
    Postgres(#[from] ::postgres::Error),
    /// The TLS settings of a PostgreSQL connection cannot be used: an `sslmode` this build
    /// does not know, or a CA file (`--database-ca`) that cannot be read or holds no
    /// certificate; nothing was done.
    #[cfg(feature = "postgres")]
    #[error("{0}; nothing was done")]
    PostgresTlsSettings(String),
    /// The TLS handshake with PostgreSQL failed: a certificate not signed by a trusted CA, or
    /// not naming the host under `sslmode=verify-full`, or a server with TLS off under
    /// `require`; nothing was done.
    #[cfg(feature = "postgres")]
    #[error(
        "the TLS connection to PostgreSQL failed (sslmode={sslmode}): {reason}; nothing was done"
    )]
    PostgresTls {
        /// The connection's `sslmode`.
        sslmode: &'static str,
        /// Why, and what to do about it.
        reason: String,
    },
    /// PostgreSQL refused the login (its `pg_hba.conf`, a password, the role); nothing was
    /// done.
    #[cfg(feature = "postgres")]
    #[error("PostgreSQL refused the connection (sslmode={sslmode}): {reason}; nothing was done")]
    PostgresRefused {
        /// The connection's `sslmode`.
        sslmode: &'static str,
        /// The server's reason, and what to do about it.
        reason: String,
    },
    /// Every connection of the pool stayed in use for as long as a caller waits; nothing was
    /// done (`PgCentral`: a larger pool, or fewer concurrent requests).
    #[error("all {size} database connections stayed busy for {waited:?}; nothing was done")]
    PoolExhausted {
        /// The pool's size.
        size: usize,
        /// How long the caller waited.
        waited: Duration,
    },
}

type Result<T, E = CentralError> = std::result::Result<T, E>;

impl From<BadRateLimit> for CentralError {
    fn from(e: BadRateLimit) -> Self {
        CentralError::BadRateLimit(e.0)
    }
}

/// A tenant as the central server knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CentralTenant {
    /// The slug.
    pub id: TenantId,
    /// Trading name.
    pub name: String,
    /// Active, suspended or cancelled.
    pub status: TenantStatus,
    /// The plan.
    pub plan: Plan,
    /// Its limits.
    pub limits: PlanLimits,
    /// Its own request rate; none: the server's default applies.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// White-label settings, which nodes pull.
    pub settings: TenantSettings,
    /// Registered.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// A change of a tenant's limits: each part that is given replaces the stored one, the others
/// stay as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsUpdate {
    /// Most staff accounts.
    pub max_users: Option<u32>,
    /// Most API calls per calendar month (UTC).
    pub max_api_calls_month: Option<u64>,
    /// The tenant's own request rate: `Some(Some(rate))` sets it, `Some(None)` falls back to
    /// the server's default.
    pub rate_limit: Option<Option<RateLimit>>,
}

impl LimitsUpdate {
    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Storage of the central server. Every method is safe to call from many request handlers.
///
/// A backend keeps the promises of the test kit's conformance suite
/// (`testkit::central_conformance::run_all`), which every backend runs against itself.
pub trait CentralStore: Send + Sync {
    /// Registers a tenant with its plan's limits (settings validated first).
    fn add_tenant(&self, new: &NewTenant) -> Result<CentralTenant> {
        self.add_tenant_with_limits(new, &LimitsUpdate::default())
    }
    /// Registers a tenant with its plan's limits changed by `limits`, in one transaction: the
    /// tenant exists with all of them or not at all.
    fn add_tenant_with_limits(
        &self,
        new: &NewTenant,
        limits: &LimitsUpdate,
    ) -> Result<CentralTenant>;
    /// One tenant.
    fn tenant(&self, id: &TenantId) -> Result<CentralTenant>;
    /// Every tenant, by id.
    fn tenants(&self) -> Result<Vec<CentralTenant>>;
    /// Suspends, cancels or re-activates a tenant, as [`TenantStatus::can_become`] allows
    /// ([`CentralError::StatusChange`] otherwise, and nothing changes).
    fn set_status(&self, id: &TenantId, status: TenantStatus) -> Result<CentralTenant>;
    /// Changes a tenant's limits and request rate, in one statement (a negotiated contract, a
    /// trial): what `update` gives replaces the stored value, the rest stays.
    fn update_limits(&self, id: &TenantId, update: &LimitsUpdate) -> Result<CentralTenant>;
    /// Overrides the plan's limits for one tenant (a negotiated contract, a trial).
    fn set_limits(&self, id: &TenantId, limits: PlanLimits) -> Result<CentralTenant> {
        let update = LimitsUpdate {
            max_users: Some(limits.max_users),
            max_api_calls_month: Some(limits.max_api_calls_month),
            rate_limit: None,
        };
        self.update_limits(id, &update)
    }
    /// Moves a tenant to another plan, with that plan's default limits (overrides made with
    /// [`CentralStore::set_limits`] are dropped; the request rate is kept).
    fn set_plan(&self, id: &TenantId, plan: Plan) -> Result<CentralTenant>;
    /// Sets the tenant's own request rate, or with `None` falls back to the server's default.
    fn set_rate_limit(&self, id: &TenantId, rate: Option<RateLimit>) -> Result<CentralTenant> {
        let update = LimitsUpdate {
            rate_limit: Some(rate),
            ..LimitsUpdate::default()
        };
        self.update_limits(id, &update)
    }
    /// Replaces the tenant's white-label settings (validated first; nothing changes if they
    /// are invalid).
    fn set_settings(&self, id: &TenantId, settings: &TenantSettings) -> Result<CentralTenant>;
    /// Stores a batch of the tenant's operations, atomically: the whole batch is checked
    /// first (tenant, catalog, types) and refused whole on bad input; then each operation is
    /// accepted with the next sequence number, or recognised as a duplicate, or rejected (an
    /// id reused with different content). Returns after the commit.
    fn append(&self, tenant: &TenantId, ops: &[Operation]) -> Result<Vec<OperationResult>>;
    /// Up to `limit` operations after sequence number `after`, and the log's high mark. A page
    /// also stops before it would carry more than [`MAX_PAGE_BYTES`] of operation JSON, but
    /// holds at least one operation when there is one after `after`: a caller pages on while
    /// its cursor is below `high`.
    fn operations_after(&self, tenant: &TenantId, after: u64, limit: u32) -> Result<OperationPage>;
    /// Counts one API call of the tenant in the calendar month (UTC) of `at`, but only while
    /// the month's count is under `max`: returns the count including this call, or `None`
    /// when `max` calls were counted already (nothing is written then, so refused calls never
    /// push the count past the limit). Atomic: concurrent callers cannot overshoot `max`.
    fn count_api_call(&self, tenant: &TenantId, at: Timestamp, max: u64) -> Result<Option<u64>>;
    /// The tenant's API calls counted in the calendar month (UTC) of `at`.
    fn api_calls(&self, tenant: &TenantId, at: Timestamp) -> Result<u64>;
    /// The storage the tenant uses in this store, in bytes: its rows in every table (its
    /// tenant row, its log with each operation's JSON, its monthly counts), as the backend
    /// stores them; indexes and free space are not counted. SQLite: the bytes of each stored
    /// value (text as UTF-8, an integer as 8). PostgreSQL: `pg_column_size` of each row
    /// (values as stored, compressed where PostgreSQL compresses them, and the row header).
    /// The two backends count the same rows, so their figures differ only by how each stores
    /// a row.
    fn storage_bytes(&self, tenant: &TenantId) -> Result<u64>;
    /// [`CentralStore::storage_bytes`] of every tenant, by id.
    fn storage_by_tenant(&self) -> Result<Vec<(TenantId, u64)>> {
        self.tenants()?
            .into_iter()
            .map(|t| Ok((t.id.clone(), self.storage_bytes(&t.id)?)))
            .collect()
    }
}

/// Checks a whole batch before anything is stored.
fn check_batch(tenant: &TenantId, ops: &[Operation]) -> Result<()> {
    if ops.len() > MAX_BATCH {
        return Err(CentralError::BatchTooLarge {
            len: ops.len(),
            max: MAX_BATCH,
        });
    }
    for (index, op) in ops.iter().enumerate() {
        let bytes = operation_bytes(op);
        if bytes > MAX_OPERATION_BYTES {
            return Err(CentralError::OperationTooLarge {
                index,
                id: op.id,
                bytes,
                max: MAX_OPERATION_BYTES,
            });
        }
        let refuse = |reason: String| CentralError::BatchRejected {
            index,
            id: op.id,
            reason,
        };
        if op.tenant_id != *tenant {
            return Err(refuse(format!(
                "the operation is for tenant {}, the request for {tenant}",
                op.tenant_id
            )));
        }
        protocol::validate(op).map_err(|e: OperationError| refuse(e.to_string()))?;
    }
    Ok(())
}

/// The size of an operation's JSON in bytes, as a backend stores and serves it, counted
/// without building the text.
pub(crate) fn operation_bytes(op: &Operation) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // An operation is plain data: writing it cannot fail, and a count cannot either.
    match serde_json::to_writer(&mut count, op) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// A status change the tenant's current status allows ([`TenantStatus::can_become`]):
/// `from` is the status read inside the backend's write transaction, `None` for no such
/// tenant.
fn check_status_change(
    tenant: &TenantId,
    from: Option<TenantStatus>,
    to: TenantStatus,
) -> Result<()> {
    match from {
        None => Err(CentralError::TenantNotFound(tenant.clone())),
        Some(from) if !from.can_become(to) => Err(CentralError::StatusChange {
            tenant: tenant.clone(),
            from,
            to,
        }),
        Some(_) => Ok(()),
    }
}

/// Checks a change of limits before anything is stored: a monthly API call limit is at most
/// [`MAX_API_CALLS_LIMIT`] (a larger one would be stored as another number).
fn check_limits(update: &LimitsUpdate) -> Result<()> {
    match update.max_api_calls_month {
        Some(value) if value > MAX_API_CALLS_LIMIT => Err(CentralError::ApiCallLimitTooLarge {
            value,
            max: MAX_API_CALLS_LIMIT,
        }),
        _ => Ok(()),
    }
}

/// The bytes of a page being filled, against [`MAX_PAGE_BYTES`]: every backend fills its pages
/// through one, so every backend stops where the others do.
#[derive(Debug, Default)]
struct PageBudget {
    bytes: usize,
    operations: usize,
}

impl PageBudget {
    /// Whether an operation of `bytes` bytes of JSON goes on the page (and counts it if so):
    /// the first always does, a later one only while the page stays within the budget.
    fn admits(&mut self, bytes: usize) -> bool {
        let total = self.bytes.saturating_add(bytes);
        if self.operations > 0 && total > MAX_PAGE_BYTES {
            return false;
        }
        self.bytes = total;
        self.operations += 1;
        true
    }
}

/// Checks a page size: 1 to [`MAX_PAGE`].
fn check_page_limit(limit: u32) -> Result<()> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(CentralError::BadLimit {
            limit,
            max: MAX_PAGE,
        });
    }
    Ok(())
}

/// Refuses a batch holding an operation stamped more than `max_skew` ahead of `now` (the
/// server's clock): taken in, it would sort after every operation other nodes make until
/// their clocks catch up. Stamps in the past are fine (a node that was offline).
///
/// ```
/// use std::time::Duration;
/// use pos_tenancy::check_skew;
/// use pos_tenancy::Timestamp;
/// assert!(check_skew(&[], Timestamp::now(), Duration::from_secs(1)).is_ok());
/// ```
pub fn check_skew(ops: &[Operation], now: Timestamp, max_skew: Duration) -> Result<()> {
    // The same bound as `hlc::ClockState::observe` on a node, but for a whole batch against the
    // server's clock, naming the operation: the node's check moves its clock, this one only looks.
    let now_millis = u64::try_from(now.as_millis()).unwrap_or(0);
    let max_skew_ms = u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX);
    for (index, op) in ops.iter().enumerate() {
        let stamp = op.hlc.millis();
        if stamp > now_millis.saturating_add(max_skew_ms) {
            return Err(CentralError::ClockSkew {
                index,
                id: op.id,
                ahead_ms: stamp - now_millis,
                max_skew_ms,
            });
        }
    }
    Ok(())
}

/// An error's text with the chain of its causes: the PostgreSQL client's own text ("error
/// connecting to server", "db error") leaves the reason to its source.
#[cfg(feature = "postgres")]
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hlc::Hlc;
    use crate::protocol::OperationKind;

    fn op(tenant: &str, millis: u64) -> Operation {
        let columns = serde_json::json!({
            "name": format!("Level {millis}"), "discount_ppm": 5, "created_at": "2026-01-01T00:00:00.000Z"
        });
        Operation {
            id: RowId::new(),
            tenant_id: tenant.parse().expect("id"),
            device_id: RowId::new(),
            hlc: Hlc::new(millis, 0, RowId::new()).expect("stamp"),
            actor_user_id: None,
            table: "price_levels".into(),
            row_id: RowId::new(),
            kind: OperationKind::Insert,
            columns: columns.as_object().cloned().unwrap_or_default(),
            unit: None,
            base: None,
        }
    }

    #[test]
    fn a_page_budget_takes_the_first_operation_and_stops_before_the_bound() {
        let mut page = PageBudget::default();
        assert!(page.admits(MAX_PAGE_BYTES + 1), "the first, however large");
        assert!(!page.admits(1), "nothing after it");
        let mut page = PageBudget::default();
        assert!(page.admits(MAX_PAGE_BYTES - 10) && page.admits(10));
        assert!(!page.admits(1), "exactly at the bound, then full");
    }

    #[test]
    fn an_operation_is_measured_as_its_json() {
        let o = op("caps", 5);
        let text = serde_json::to_string(&o).expect("json");
        assert_eq!(operation_bytes(&o), text.len());
        let mut big = op("caps", 6);
        big.columns
            .insert("name".into(), "x".repeat(MAX_OPERATION_BYTES).into());
        let err = check_batch(&"caps".parse().expect("id"), &[o, big]).expect_err("too large");
        assert!(
            matches!(err, CentralError::OperationTooLarge { index: 1, bytes, max: MAX_OPERATION_BYTES, .. } if bytes > MAX_OPERATION_BYTES),
            "{err}"
        );
    }

    #[test]
    fn api_call_limits_beyond_what_is_stored_are_refused() {
        let at = |n| LimitsUpdate {
            max_api_calls_month: Some(n),
            ..LimitsUpdate::default()
        };
        assert!(check_limits(&at(MAX_API_CALLS_LIMIT)).is_ok());
        let err = check_limits(&at(u64::MAX)).expect_err("over");
        assert!(err.to_string().contains("18446744073709551615"), "{err}");
    }

    #[test]
    fn an_update_that_gives_nothing_is_empty() {
        let users = LimitsUpdate {
            max_users: Some(9),
            ..LimitsUpdate::default()
        };
        assert!(LimitsUpdate::default().is_empty() && !users.is_empty());
    }

    #[test]
    fn rates_from_json_are_checked_like_every_other_rate() {
        let ok: RateLimit =
            serde_json::from_str(r#"{"requests": 600, "per_secs": 60}"#).expect("a rate");
        assert_eq!(ok, RateLimit::new(600, 60).expect("rate"));
        assert_eq!(
            serde_json::from_value::<RateLimit>(serde_json::to_value(ok).expect("json")).ok(),
            Some(ok),
            "what is written reads back"
        );
        for bad in [
            r#"{"requests": 0, "per_secs": 1}"#,
            r#"{"requests": 5, "per_secs": 0}"#,
            r#"{"requests": 5}"#,
        ] {
            assert!(serde_json::from_str::<RateLimit>(bad).is_err(), "{bad}");
        }
        let err = serde_json::from_str::<RateLimit>(r#"{"requests": 0, "per_secs": 1}"#)
            .expect_err("zero requests");
        assert!(err.to_string().contains("not a rate"), "{err}");
    }

    #[test]
    fn rates_read_and_print_in_their_short_form() {
        for (text, requests, per_secs) in [("5/s", 5, 1), ("600/m", 600, 60), ("3/h", 3, 3600)] {
            let r: RateLimit = text.parse().expect("rate");
            assert_eq!((r.requests, r.per_secs), (requests, per_secs));
            assert_eq!(r.to_string(), text);
        }
        assert_eq!(
            "10/30s".parse::<RateLimit>().ok(),
            RateLimit::new(10, 30).ok()
        );
        for bad in ["", "5", "0/s", "5/0s", "5/d", "-1/s", "x/m", "5/é"] {
            assert!(
                matches!(
                    bad.parse::<RateLimit>(),
                    Err(crate::protocol::BadRateLimit(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn stamps_too_far_ahead_refuse_the_batch() {
        let skew = Duration::from_secs(60);
        let now = 1_800_000_000_000;
        let at = Timestamp::from_millis(1_800_000_000_000).expect("time");
        let ok = [op("caps", now - 86_400_000), op("caps", now + 60_000)];
        assert!(check_skew(&ok, at, skew).is_ok(), "old and within the skew");
        let ahead = [op("caps", now), op("caps", now + 60_001)];
        let err = check_skew(&ahead, at, skew).expect_err("too far ahead");
        assert!(
            matches!(
                err,
                CentralError::ClockSkew {
                    index: 1,
                    ahead_ms: 60_001,
                    max_skew_ms: 60_000,
                    ..
                }
            ),
            "{err}"
        );
    }
}
