//! [`PgCentral`]: the central store in PostgreSQL (feature `postgres`), for several pos-central
//! processes over one database.
//!
//! The same promises as the SQLite store, kept across processes:
//! - Each tenant's sequence is allocated inside the push's transaction from the tenant's row in
//!   `tenant_heads`, locked until the commit: pushes of one tenant serialize and commit in the
//!   order of their numbers, so a reader following the log after its cursor never skips one.
//!   Never a PostgreSQL SEQUENCE, whose numbers are handed out before commit.
//! - Each operation id is stored once per tenant (`UNIQUE (tenant_id, id)`), and recognised as a
//!   duplicate by its JSON text, as on SQLite.
//! - Every transaction names its tenant in `app.current_tenant` (local to the transaction), on
//!   which the row-level security policies of the schema filter, as a second wall behind the
//!   API's own `WHERE tenant_id = ...`.
//!
//! Connections come from a small pool of synchronous clients, sized by the caller. The schema
//! (`migrations/central-pg`) is migrated by [`PgCentral::migrate`], all or nothing, under an
//! advisory lock so that two migrating at once do not migrate twice, as a role allowed to create
//! tables; [`PgCentral::connect`] only checks its version, so the server can run as a role with
//! no right to change the schema.
//!
//! TLS (`tls.rs`): libpq's `sslmode` in the connection string, with rustls and the system's
//! roots or a CA file given by the caller.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use postgres::{Client, GenericClient, IsolationLevel, Row, Transaction};

use super::{
    check_batch, check_limits, check_page_limit, check_status_change, CentralError, CentralStore,
    CentralTenant, LimitsUpdate, PageBudget, Result,
};
use crate::ids::{TenantId, Timestamp};
use crate::protocol::{
    Operation, OperationPage, OperationResult, OperationStatus, RateLimit, SequencedOperation,
};
use crate::tenant::settings::{
    NewTenant, Plan, PlanLimits, SettingsError, TenantSettings, TenantStatus,
};

mod tls;

use tls::Connector;

mod embedded {
    refinery::embed_migrations!("migrations/central-pg");
}

/// The connection pool's size when none is given: enough for one server process's blocking
/// request handlers to overlap a few database round trips.
pub const DEFAULT_POOL_SIZE: usize = 8;

/// How long a caller waits for a free connection, unless [`PgCentral::pool_wait`] says
/// otherwise, before the store answers [`CentralError::PoolExhausted`] (which the server
/// answers 503 with `Retry-After`): a request should fail rather than hang.
pub const DEFAULT_POOL_WAIT: Duration = Duration::from_secs(30);

/// The advisory lock key held while migrating ("pos-cent" in ASCII): one process migrates, the
/// others wait and then find nothing left to do.
const MIGRATION_LOCK: i64 = 0x706f_732d_6365_6e74;

/// The `app.current_tenant` value with which the tenant list is read: not a tenant id (those
/// are lowercase letters, digits and dashes), and admitted by the policy of the `tenants`
/// table only, so no operation, head or usage row is ever read with it.
const ALL_TENANTS: &str = "*";

/// The PostgreSQL implementation of [`CentralStore`].
pub struct PgCentral {
    pool: Pool,
}

impl std::fmt::Debug for PgCentral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCentral")
            .field("pool_size", &self.pool.size)
            .finish_non_exhaustive()
    }
}

impl PgCentral {
    /// Connects to the database at `url` (`postgres://USER@HOST:PORT/DB`, or libpq's
    /// `key=value` form) with up to `pool_size` connections (at least one), after checking
    /// that its schema is this version's ([`CentralError::SchemaVersion`] otherwise: run
    /// [`PgCentral::migrate`] first).
    ///
    /// TLS as libpq's `sslmode` in `url` says (`disable`, `prefer` by default, `require`,
    /// `verify-ca`, `verify-full`); certificates are checked against the system's roots and
    /// Mozilla's. [`PgCentral::connect_with_ca`] names a private CA instead.
    pub fn connect(url: &str, pool_size: usize) -> Result<Self> {
        Self::connect_with_ca(url, pool_size, None)
    }

    /// [`PgCentral::connect`], with the certificates of the PEM file `ca_file` (if given) as
    /// the only CAs the server's certificate may be signed by: a private CA, as libpq's
    /// `sslrootcert`. With one, `prefer` and `require` check the signature too (as libpq does
    /// when its root file exists), only the name is left to `verify-full`.
    ///
    /// A certificate that fails the check is [`CentralError::PostgresTls`], a login the server
    /// refuses (`hostssl` only in `pg_hba.conf` under `sslmode=disable`, say)
    /// [`CentralError::PostgresRefused`], an unreadable CA file or unknown `sslmode`
    /// [`CentralError::PostgresTlsSettings`].
    pub fn connect_with_ca(url: &str, pool_size: usize, ca_file: Option<&Path>) -> Result<Self> {
        let pool = Pool {
            connector: Connector::new(url, ca_file)?,
            size: pool_size.max(1),
            wait: DEFAULT_POOL_WAIT,
            state: Mutex::new(PoolState::default()),
            freed: Condvar::new(),
        };
        let mut conn = pool.get()?;
        check_schema(&mut conn)?;
        drop(conn);
        Ok(Self { pool })
    }

    /// Migrates the schema of the database at `url` to this version (`migrations/central-pg`),
    /// all or nothing, as the role connecting there, which must be allowed to create tables
    /// (the owner of the database, say). [`PgCentral::connect`] never migrates, so the server
    /// can connect as a role with no such right.
    pub fn migrate(url: &str) -> Result<()> {
        Self::migrate_with_ca(url, None)
    }

    /// [`PgCentral::migrate`], trusting the CA certificates of `ca_file` as
    /// [`PgCentral::connect_with_ca`] does.
    pub fn migrate_with_ca(url: &str, ca_file: Option<&Path>) -> Result<()> {
        let mut client = Connector::new(url, ca_file)?.connect()?;
        migrate(&mut client)
    }

    /// How long a call waits for a free connection when all `pool_size` are in use, before it
    /// fails with [`CentralError::PoolExhausted`] (default [`DEFAULT_POOL_WAIT`]).
    pub fn pool_wait(mut self, wait: Duration) -> Self {
        self.pool.wait = wait;
        self
    }

    /// A transaction with `app.current_tenant` set to `tenant` until it ends.
    fn begin<'c>(conn: &'c mut Client, tenant: &str) -> Result<Transaction<'c>> {
        let mut tx = conn.transaction()?;
        set_tenant(&mut tx, tenant)?;
        Ok(tx)
    }

    /// Runs one UPDATE of a tenant's row (`$1` is its id) and reads the tenant back.
    fn update_tenant(
        &self,
        id: &TenantId,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<CentralTenant> {
        let mut conn = self.pool.get()?;
        let mut tx = Self::begin(&mut conn, id.as_str())?;
        if tx.execute(sql, params)? == 0 {
            return Err(CentralError::TenantNotFound(id.clone()));
        }
        let t = find_tenant(&mut tx, id)?;
        tx.commit()?;
        Ok(t)
    }
}

fn migrate(conn: &mut Client) -> Result<()> {
    conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let run = embedded::migrations::runner()
        .set_grouped(true)
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run(conn)
        .map(drop)
        .map_err(|e| CentralError::Migration(with_sources(&e)));
    // Released also when the connection closes; an unlock failure is then moot.
    let unlock = conn.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    run?;
    unlock?;
    Ok(())
}

/// An error and its sources: refinery's own message says only `db error`, PostgreSQL's
/// (`permission denied for schema public`) is its source's.
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The newest migration this build knows.
fn latest_version() -> u32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| u32::try_from(i64::from(m.version())).unwrap_or(0))
        .max()
        .unwrap_or(0)
}

/// Checks, without changing anything, that the database's schema is the one this build
/// migrates to: a role without the right to create tables can still tell that it is behind.
fn check_schema(conn: &mut Client) -> Result<()> {
    let want = latest_version();
    // Asked first: a statement naming a table that does not exist fails to parse.
    let migrated: bool = conn
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )?
        .try_get(0)?;
    let have: Option<i64> = if migrated {
        conn.query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM refinery_schema_history",
            &[],
        )?
        .try_get(0)?
    } else {
        None
    };
    let have = have.map(|v| u32::try_from(v).unwrap_or(0));
    if have != Some(want) {
        return Err(CentralError::SchemaVersion { have, want });
    }
    Ok(())
}

/// Names the transaction's tenant for the row-level security policies.
fn set_tenant(tx: &mut Transaction<'_>, tenant: &str) -> Result<()> {
    tx.execute(
        "SELECT set_config('app.current_tenant', $1, true)",
        &[&tenant],
    )?;
    Ok(())
}

/// A pool of synchronous clients: taken one per call, given back when the call ends, replaced
/// when the server closed one.
struct Pool {
    connector: Connector,
    size: usize,
    /// How long [`Pool::get`] waits for a connection to be given back.
    wait: Duration,
    state: Mutex<PoolState>,
    freed: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Client>,
    /// Connections open or being opened, idle or in use.
    open: usize,
}

impl Pool {
    fn state(&self) -> MutexGuard<'_, PoolState> {
        // The state is a list and a count, consistent after every statement: a panic while
        // holding the lock leaves nothing half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self) -> Result<Conn<'_>> {
        let started = Instant::now();
        let mut state = self.state();
        loop {
            if let Some(client) = state.idle.pop() {
                if client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                return Ok(Conn {
                    pool: self,
                    client: Some(client),
                });
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return match self.connector.connect() {
                    Ok(client) => Ok(Conn {
                        pool: self,
                        client: Some(client),
                    }),
                    Err(e) => {
                        self.state().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            // One deadline for the whole call: a wake-up that finds the connection taken by
            // another caller waits only for what is left of it.
            let waited = started.elapsed();
            let Some(left) = self.wait.checked_sub(waited).filter(|l| !l.is_zero()) else {
                return Err(CentralError::PoolExhausted {
                    size: self.size,
                    waited,
                });
            };
            let (next, _) = self
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
        }
    }
}

/// A client taken from the pool, given back on drop (or let go, if the server closed it).
struct Conn<'p> {
    pool: &'p Pool,
    client: Option<Client>,
}

impl Deref for Conn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        // Some from creation until drop.
        self.client.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        let mut state = self.pool.state();
        match self.client.take() {
            Some(client) if !client.is_closed() => state.idle.push(client),
            _ => state.open -= 1,
        }
        drop(state);
        self.pool.freed.notify_one();
    }
}

const TENANT_SELECT: &str =
    "SELECT tenant_id, name, status, plan, max_users, max_api_calls_month, settings, \
            created_at, updated_at, rate_limit_requests, rate_limit_period_secs FROM tenants";

fn corrupt(what: &str, e: impl std::fmt::Display) -> CentralError {
    CentralError::Corrupt(format!("{what}: {e}"))
}

fn parsed<T: FromStr>(row: &Row, index: usize, what: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let text: &str = row.try_get(index)?;
    text.parse().map_err(|e| corrupt(what, e))
}

fn tenant_from_row(r: &Row) -> Result<CentralTenant> {
    let rate = match (
        r.try_get::<_, Option<i64>>(9)?,
        r.try_get::<_, Option<i64>>(10)?,
    ) {
        (Some(n), Some(per)) => Some(RateLimit {
            requests: u32::try_from(n).unwrap_or(u32::MAX),
            per_secs: u32::try_from(per).unwrap_or(u32::MAX),
        }),
        _ => None,
    };
    let settings: &str = r.try_get(6)?;
    Ok(CentralTenant {
        id: parsed(r, 0, "tenant id")?,
        name: r.try_get(1)?,
        status: parsed(r, 2, "tenant status")?,
        plan: parsed(r, 3, "tenant plan")?,
        limits: PlanLimits::from_sql(r.try_get(4)?, r.try_get(5)?),
        rate_limit: rate,
        settings: serde_json::from_str(settings).map_err(|e| corrupt("tenant settings", e))?,
        created_at: parsed(r, 7, "tenant created_at")?,
        updated_at: parsed(r, 8, "tenant updated_at")?,
    })
}

fn settings_text(settings: &TenantSettings) -> Result<String> {
    Ok(serde_json::to_string(settings).map_err(|e| SettingsError::Malformed(e.to_string()))?)
}

fn find_tenant(tx: &mut impl GenericClient, id: &TenantId) -> Result<CentralTenant> {
    let row = tx
        .query_opt(
            &format!("{TENANT_SELECT} WHERE tenant_id = $1"),
            &[&id.as_str()],
        )?
        .ok_or_else(|| CentralError::TenantNotFound(id.clone()))?;
    tenant_from_row(&row)
}

fn active_tenant(tx: &mut impl GenericClient, id: &TenantId) -> Result<CentralTenant> {
    let t = find_tenant(tx, id)?;
    if t.status != TenantStatus::Active {
        return Err(CentralError::TenantInactive {
            tenant: id.clone(),
            status: t.status,
        });
    }
    Ok(t)
}

/// Applies a change of limits to the tenant's row, merged in SQL; the number of rows changed,
/// 0 if there is no such tenant.
fn apply_limits(tx: &mut Transaction<'_>, id: &TenantId, update: &LimitsUpdate) -> Result<u64> {
    let rate = update.rate_limit.flatten();
    Ok(tx.execute(
        "UPDATE tenants SET max_users = coalesce($2::bigint, max_users),
                max_api_calls_month = coalesce($3::bigint, max_api_calls_month),
                rate_limit_requests = CASE WHEN $4::boolean THEN $5::bigint ELSE rate_limit_requests END,
                rate_limit_period_secs = CASE WHEN $4::boolean THEN $6::bigint ELSE rate_limit_period_secs END,
                updated_at = $7::text
         WHERE tenant_id = $1::text",
        &[
            &id.as_str(),
            &update.max_users.map(i64::from),
            &update.max_api_calls_month.map(to_i64),
            &update.rate_limit.is_some(),
            &rate.map(|r| i64::from(r.requests)),
            &rate.map(|r| i64::from(r.per_secs)),
            &Timestamp::now().to_rfc3339(),
        ],
    )?)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl CentralStore for PgCentral {
    fn add_tenant_with_limits(
        &self,
        new: &NewTenant,
        limits: &LimitsUpdate,
    ) -> Result<CentralTenant> {
        new.settings.validate()?;
        check_limits(limits)?;
        let plan = new.plan.limits();
        let settings = settings_text(&new.settings)?;
        let mut conn = self.pool.get()?;
        let mut tx = Self::begin(&mut conn, new.id.as_str())?;
        let now = Timestamp::now().to_rfc3339();
        let n = tx.execute(
            "INSERT INTO tenants (tenant_id, name, status, plan, max_users, max_api_calls_month,
                                  settings, created_at, updated_at)
             VALUES ($1::text, $2::text, 'active', $3::text, $4::bigint, $5::bigint, $6::text,
                     $7::text, $7::text)
             ON CONFLICT (tenant_id) DO NOTHING",
            &[
                &new.id.as_str(),
                &new.name,
                &new.plan.as_str(),
                &i64::from(plan.max_users),
                &to_i64(plan.max_api_calls_month),
                &settings,
                &now,
            ],
        )?;
        if n == 0 {
            return Err(CentralError::TenantExists(new.id.clone()));
        }
        tx.execute(
            "INSERT INTO tenant_heads (tenant_id, head) VALUES ($1::text, 0)",
            &[&new.id.as_str()],
        )?;
        apply_limits(&mut tx, &new.id, limits)?;
        let t = find_tenant(&mut tx, &new.id)?;
        tx.commit()?;
        Ok(t)
    }

    fn tenant(&self, id: &TenantId) -> Result<CentralTenant> {
        let mut conn = self.pool.get()?;
        let mut tx = Self::begin(&mut conn, id.as_str())?;
        let t = find_tenant(&mut tx, id)?;
        tx.commit()?;
        Ok(t)
    }

    fn tenants(&self) -> Result<Vec<CentralTenant>> {
        let mut conn = self.pool.get()?;
        let mut tx = Self::begin(&mut conn, ALL_TENANTS)?;
        let rows = tx.query(&format!("{TENANT_SELECT} ORDER BY tenant_id"), &[])?;
        let tenants = rows.iter().map(tenant_from_row).collect::<Result<_>>()?;
        tx.commit()?;
        Ok(tenants)
    }

    fn set_status(&self, id: &TenantId, status: TenantStatus) -> Result<CentralTenant> {
        let mut conn = self.pool.get()?;
        let mut tx = Self::begin(&mut conn, id.as_str())?;
        // The row locked from the check to the change: another process cannot slip a
        // cancellation in between. NO KEY UPDATE, as the UPDATE itself takes: pushes, whose
        // foreign keys take KEY SHARE on this row, are not held up by it.
        let from = tx
            .query_opt(
                "SELECT status FROM tenants WHERE tenant_id = $1 FOR NO KEY UPDATE",
                &[&id.as_str()],
            )?
            .map(|r| parsed::<TenantStatus>(&r, 0, "tenant status"))
            .transpose()?;
        check_status_change(id, from, status)?;
        tx.execute(
            "UPDATE tenants SET status = $2::text, updated_at = $3::text WHERE tenant_id = $1::text",
            &[&id.as_str(), &status.as_str(), &Timestamp::now().to_rfc3339()],
        )?;
        let t = find_tenant(&mut tx, id)?;
        tx.commit()?;
        Ok(t)
    }

    fn update_limits(&self, id: &TenantId, update: &LimitsUpdate) -> Result<CentralTenant> {
        check_limits(update)?;
        let mut conn = self.pool.get()?;
        let mut tx = Self::begin(&mut conn, id.as_str())?;
        if apply_limits(&mut tx, id, update)? == 0 {
            return Err(CentralError::TenantNotFound(id.clone()));
        }
        let t = find_tenant(&mut tx, id)?;
        tx.commit()?;
        Ok(t)
    }

    fn set_plan(&self, id: &TenantId, plan: Plan) -> Result<CentralTenant> {
        let limits = plan.limits();
        self.update_tenant(
            id,
            "UPDATE tenants SET plan = $2::text, max_users = $3::bigint,
                    max_api_calls_month = $4::bigint, updated_at = $5::text
             WHERE tenant_id = $1::text",
            &[
                &id.as_str(),
                &plan.as_str(),
                &i64::from(limits.max_users),
                &to_i64(limits.max_api_calls_month),
                &Timestamp::now().to_rfc3339(),
            ],
        )
    }

    fn set_rate_limit(&self, id: &TenantId, rate: Option<RateLimit>) -> Result<CentralTenant> {
        self.update_tenant(
            id,
            "UPDATE tenants SET rate_limit_requests = $2::bigint,
                    rate_limit_period_secs = $3::bigint, updated_at = $4::text
             WHERE tenant_id = $1::text",
            &[
                &id.as_str(),
                &rate.map(|r| i64::from(r.requests)),
                &rate.map(|r| i64::from(r.per_secs)),
                &Timestamp::now().to_rfc3339(),
            ],
        )
    }

    fn set_settings(&self, id: &TenantId, settings: &TenantSettings) -> Result<CentralTenant> {
        settings.validate()?;
        let text = settings_text(settings)?;
        self.update_tenant(
            id,
            "UPDATE tenants SET settings = $2::text, updated_at = $3::text
             WHERE tenant_id = $1::text",
            &[&id.as_str(), &text, &Timestamp::now().to_rfc3339()],
        )
    }

    fn append(&self, tenant: &TenantId, ops: &[Operation]) -> Result<Vec<OperationResult>> {
        check_batch(tenant, ops)?;
        let mut conn = self.pool.get()?;
        let mut tx = Self::begin(&mut conn, tenant.as_str())?;
        // The tenant's head row, locked until the commit: the next push of this tenant, in
        // any process, waits here and then numbers on from what this one commits.
        let head: Option<i64> = tx
            .query_opt(
                "SELECT head FROM tenant_heads WHERE tenant_id = $1 FOR UPDATE",
                &[&tenant.as_str()],
            )?
            .map(|r| r.try_get(0))
            .transpose()?;
        active_tenant(&mut tx, tenant)?;
        let Some(mut high) = head else {
            return Err(corrupt("tenant_heads", format!("no head row for {tenant}")));
        };
        let first_high = high;
        let bodies = ops
            .iter()
            .map(|op| serde_json::to_string(op).map_err(|e| corrupt("operation", e)))
            .collect::<Result<Vec<String>>>()?;
        let ids: Vec<String> = ops.iter().map(|op| op.id.to_string()).collect();
        // Every id of the batch looked up at once; ids accepted earlier in this batch join
        // the map as they are numbered.
        let mut seen: HashMap<String, (i64, String)> = HashMap::new();
        for row in tx.query(
            "SELECT id, seq, body FROM operations WHERE tenant_id = $1::text AND id = ANY($2::text[])",
            &[&tenant.as_str(), &ids],
        )? {
            seen.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?));
        }
        let mut new = NewRows::default();
        let received = Timestamp::now().to_rfc3339();
        let mut results = Vec::with_capacity(ops.len());
        for ((op, id), body) in ops.iter().zip(ids).zip(bodies) {
            let result = match seen.get(&id) {
                Some((seq, stored)) if *stored == body => OperationResult {
                    id: op.id,
                    status: OperationStatus::Duplicate,
                    seq: u64::try_from(*seq).ok(),
                    reason: None,
                },
                Some(_) => OperationResult {
                    id: op.id,
                    status: OperationStatus::Rejected,
                    seq: None,
                    reason: Some(
                        "this operation id was stored before with different content".into(),
                    ),
                },
                None => {
                    high += 1;
                    new.push(op, high, id.clone(), body.clone());
                    seen.insert(id, (high, body));
                    OperationResult {
                        id: op.id,
                        status: OperationStatus::Accepted,
                        seq: u64::try_from(high).ok(),
                        reason: None,
                    }
                }
            };
            results.push(result);
        }
        if high != first_high {
            // One statement for the whole batch: one round trip however many operations.
            tx.execute(
                "INSERT INTO operations (tenant_id, seq, id, device_id, hlc, table_name, row_id,
                                         kind, body, received_at)
                 SELECT $1::text, seq, id, device_id, hlc, table_name, row_id, kind, body, $2::text
                 FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
                             $8::text[], $9::text[], $10::text[])
                      AS n (seq, id, device_id, hlc, table_name, row_id, kind, body)",
                &[
                    &tenant.as_str(),
                    &received,
                    &new.seq,
                    &new.id,
                    &new.device_id,
                    &new.hlc,
                    &new.table_name,
                    &new.row_id,
                    &new.kind,
                    &new.body,
                ],
            )?;
            tx.execute(
                "UPDATE tenant_heads SET head = $2::bigint WHERE tenant_id = $1::text",
                &[&tenant.as_str(), &high],
            )?;
        }
        tx.commit()?;
        Ok(results)
    }

    fn operations_after(&self, tenant: &TenantId, after: u64, limit: u32) -> Result<OperationPage> {
        check_page_limit(limit)?;
        let mut conn = self.pool.get()?;
        // One snapshot, so the page and the high mark agree.
        let mut tx = conn
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        set_tenant(&mut tx, tenant.as_str())?;
        active_tenant(&mut tx, tenant)?;
        let rows = tx.query(
            "SELECT seq, body FROM operations WHERE tenant_id = $1::text AND seq > $2::bigint
             ORDER BY seq LIMIT $3::bigint",
            &[&tenant.as_str(), &to_i64(after), &i64::from(limit)],
        )?;
        let mut operations = Vec::new();
        let mut budget = PageBudget::default();
        for r in &rows {
            let seq: i64 = r.try_get(0)?;
            let body: &str = r.try_get(1)?;
            if !budget.admits(body.len()) {
                break;
            }
            let operation: Operation =
                serde_json::from_str(body).map_err(|e| corrupt(&format!("operation {seq}"), e))?;
            operations.push(SequencedOperation {
                seq: to_u64(seq),
                operation,
            });
        }
        let high: i64 = tx
            .query_opt(
                "SELECT head FROM tenant_heads WHERE tenant_id = $1::text",
                &[&tenant.as_str()],
            )?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(0);
        tx.commit()?;
        Ok(OperationPage {
            operations,
            high: to_u64(high),
        })
    }

    fn count_api_call(&self, tenant: &TenantId, at: Timestamp, max: u64) -> Result<Option<u64>> {
        let mut conn = self.pool.get()?;
        let mut tx = Self::begin(&mut conn, tenant.as_str())?;
        find_tenant(&mut tx, tenant)?;
        // Both branches are guarded by the limit: a first call of the month inserts only if
        // `max` allows one, later ones add one only below `max`. No row back: over the plan.
        let calls: Option<i64> = tx
            .query_opt(
                "INSERT INTO tenant_usage (tenant_id, month, api_calls)
                 SELECT $1::text, $2::text, 1 WHERE $3::bigint >= 1
                 ON CONFLICT (tenant_id, month) DO UPDATE SET api_calls = tenant_usage.api_calls + 1
                     WHERE tenant_usage.api_calls < $3::bigint
                 RETURNING api_calls",
                &[&tenant.as_str(), &usage_month(at), &to_i64(max)],
            )?
            .map(|r| r.try_get(0))
            .transpose()?;
        tx.commit()?;
        Ok(calls.map(to_u64))
    }

    fn storage_bytes(&self, tenant: &TenantId) -> Result<u64> {
        let mut conn = self.pool.get()?;
        let mut tx = conn
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let bytes = storage_bytes(&mut tx, tenant)?;
        tx.commit()?;
        Ok(bytes)
    }

    fn storage_by_tenant(&self) -> Result<Vec<(TenantId, u64)>> {
        // One connection and one snapshot for every tenant, each read under its own
        // app.current_tenant: row-level security lets no statement read two tenants' rows.
        let mut conn = self.pool.get()?;
        let mut tx = conn
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        set_tenant(&mut tx, ALL_TENANTS)?;
        let ids = tx
            .query("SELECT tenant_id FROM tenants ORDER BY tenant_id", &[])?
            .iter()
            .map(|r| parsed::<TenantId>(r, 0, "tenant id"))
            .collect::<Result<Vec<_>>>()?;
        let mut all = Vec::with_capacity(ids.len());
        for id in ids {
            let bytes = storage_bytes(&mut tx, &id)?;
            all.push((id, bytes));
        }
        tx.commit()?;
        Ok(all)
    }

    fn api_calls(&self, tenant: &TenantId, at: Timestamp) -> Result<u64> {
        let mut conn = self.pool.get()?;
        let mut tx = Self::begin(&mut conn, tenant.as_str())?;
        find_tenant(&mut tx, tenant)?;
        let calls: Option<i64> = tx
            .query_opt(
                "SELECT api_calls FROM tenant_usage WHERE tenant_id = $1::text AND month = $2::text",
                &[&tenant.as_str(), &usage_month(at)],
            )?
            .map(|r| r.try_get(0))
            .transpose()?;
        tx.commit()?;
        Ok(calls.map_or(0, to_u64))
    }
}

/// The bytes of a tenant's rows ([`CentralStore::storage_bytes`]): `pg_column_size` of each of
/// its rows in every table (values as stored, compressed where PostgreSQL compressed them, and
/// the row header).
const STORAGE_BYTES: &str = "
    SELECT (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM tenants t WHERE tenant_id = $1)
         + (SELECT coalesce(sum(pg_column_size(h.*)), 0) FROM tenant_heads h WHERE tenant_id = $1)
         + (SELECT coalesce(sum(pg_column_size(o.*)), 0) FROM operations o WHERE tenant_id = $1)
         + (SELECT coalesce(sum(pg_column_size(u.*)), 0) FROM tenant_usage u WHERE tenant_id = $1)";

/// One tenant's [`STORAGE_BYTES`], in a transaction whose `app.current_tenant` is that tenant.
fn storage_bytes(tx: &mut Transaction<'_>, tenant: &TenantId) -> Result<u64> {
    set_tenant(tx, tenant.as_str())?;
    find_tenant(tx, tenant)?;
    let bytes: i64 = tx
        .query_one(STORAGE_BYTES, &[&tenant.as_str()])?
        .try_get(0)?;
    Ok(to_u64(bytes))
}

/// The operations a push accepts, column by column, for one `INSERT ... SELECT FROM unnest`.
#[derive(Default)]
struct NewRows {
    seq: Vec<i64>,
    id: Vec<String>,
    device_id: Vec<String>,
    hlc: Vec<String>,
    table_name: Vec<String>,
    row_id: Vec<String>,
    kind: Vec<&'static str>,
    body: Vec<String>,
}

impl NewRows {
    fn push(&mut self, op: &Operation, seq: i64, id: String, body: String) {
        self.seq.push(seq);
        self.id.push(id);
        self.device_id.push(op.device_id.to_string());
        self.hlc.push(op.hlc.to_string());
        self.table_name.push(op.table.clone());
        self.row_id.push(op.row_id.to_string());
        self.kind.push(op.kind.as_str());
        self.body.push(body);
    }
}

/// The `tenant_usage.month` key of an instant: its calendar month in UTC, `YYYY-MM`.
fn usage_month(at: Timestamp) -> String {
    at.as_datetime().format("%Y-%m").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_that_fails_says_why_not_just_that_it_failed() {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let e = PgCentral::connect("postgres://nobody@127.0.0.1:1/pos?sslmode=disable", 1)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("error connecting to server") && e.to_lowercase().contains("refused"),
            "{e}"
        );
    }
}
