//! [`SqliteCentral`]: the central store in one SQLite file (or in memory), the embedded
//! default behind [`CentralStore`].
//!
//! One connection behind a mutex: every write is one transaction, a push an IMMEDIATE one, so
//! the per-tenant sequence is read and extended by one writer at a time and stays gap-free.
//! Operations are stored as their JSON text (serde_json maps keep their keys sorted, so equal
//! operations give equal text: a re-sent operation is recognised by comparing text). The
//! schema is migrated on open (`migrations/central`), all or nothing.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    check_batch, check_limits, check_page_limit, check_status_change, CentralError, CentralStore,
    CentralTenant, LimitsUpdate, PageBudget, Result,
};
use crate::ids::{Json, TenantId, Timestamp};
use crate::protocol::{
    Operation, OperationPage, OperationResult, OperationStatus, RateLimit, SequencedOperation,
};
use crate::tenant::settings::{
    NewTenant, Plan, PlanLimits, SettingsError, TenantSettings, TenantStatus,
};

mod embedded {
    refinery::embed_migrations!("migrations/central");
}

/// The embedded SQLite implementation of [`CentralStore`].
///
/// ```
/// use pos_tenancy::{CentralStore, SqliteCentral};
/// use pos_tenancy::NewTenant;
/// let central = SqliteCentral::open_in_memory()?;
/// central.add_tenant(&NewTenant::new("caps".parse()?, "Caps"))?;
/// assert_eq!(central.operations_after(&"caps".parse()?, 0, 100)?.high, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SqliteCentral {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteCentral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCentral").finish_non_exhaustive()
    }
}

impl SqliteCentral {
    /// Opens (creating if needed) and migrates the central database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_file(path.as_ref().to_path_buf(), false)
    }

    /// Opens and migrates the central database at `path`, only if there is one: a missing file
    /// is [`CentralError::NoDatabase`], an empty one [`CentralError::NotCentral`], both refused
    /// before anything is written. For commands that must not create a database on a typo
    /// (`serve`, the read commands).
    ///
    /// ```
    /// use pos_tenancy::{CentralError, SqliteCentral};
    /// let dir = tempfile::tempdir()?;
    /// let typo = dir.path().join("centrl.db");
    /// assert!(matches!(SqliteCentral::open_existing(&typo), Err(CentralError::NoDatabase { .. })));
    /// assert!(!typo.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(CentralError::NoDatabase { path });
        }
        Self::open_file(path, true)
    }

    fn open_file(path: std::path::PathBuf, existing: bool) -> Result<Self> {
        let open_err = |source| CentralError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
            .map_err(open_err)?;
        // Before anything is written to it (the journal mode, the migrations).
        if let Some(what) = foreign_database(&conn).map_err(open_err)? {
            return Err(CentralError::NotCentral { path, what });
        }
        if existing && is_empty(&conn).map_err(open_err)? {
            // A zero-length file is what a typo or `touch` leaves; SQLite reads it as empty.
            let what = if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
                "an empty file"
            } else {
                "an empty SQLite database"
            };
            return Err(CentralError::NotCentral { path, what });
        }
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        Self::setup(conn)
    }

    /// A private in-memory central database (tests, benchmarks).
    pub fn open_in_memory() -> Result<Self> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Self> {
        conn.busy_timeout(crate::store::BUSY_TIMEOUT)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        embedded::migrations::runner()
            .set_grouped(true)
            .set_abort_divergent(true)
            .set_abort_missing(true)
            .run(&mut conn)
            .map_err(|e| CentralError::Migration(e.to_string()))?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Runs one UPDATE of a tenant's row and reads the tenant back.
    fn update_tenant(
        &self,
        id: &TenantId,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<CentralTenant> {
        let conn = self.conn();
        if conn.execute(sql, params)? == 0 {
            return Err(CentralError::TenantNotFound(id.clone()));
        }
        find_tenant(&conn, id)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-done work: every write is one
        // transaction that rolled back when the guard's transaction was dropped.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a database that is not a central one is, if it is one: a node's (it has the node's
/// tables), or another SQLite database (tables, but neither the central log nor a migration
/// history). An empty file, and a central database of any version, are `None`.
fn foreign_database(conn: &Connection) -> rusqlite::Result<Option<&'static str>> {
    let has = |table: &str| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    if has("products")? || has("node_state")? {
        return Ok(Some("a pos-node database"));
    }
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        [],
        |r| r.get(0),
    )?;
    if tables > 0 && !has("operations")? && !has("refinery_schema_history")? {
        return Ok(Some("another SQLite database"));
    }
    Ok(None)
}

/// Whether the database has no table at all (a new file, or an empty one).
fn is_empty(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table')",
        [],
        |r| r.get(0),
    )
}

const TENANT_SELECT: &str =
    "SELECT id, name, status, plan, max_users, max_api_calls_month, settings, \
            created_at, updated_at, rate_limit_requests, rate_limit_period_secs FROM tenants";

fn tenant_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CentralTenant> {
    let rate = match (r.get::<_, Option<i64>>(9)?, r.get::<_, Option<i64>>(10)?) {
        (Some(n), Some(per)) => Some(RateLimit {
            requests: u32::try_from(n).unwrap_or(u32::MAX),
            per_secs: u32::try_from(per).unwrap_or(u32::MAX),
        }),
        _ => None,
    };
    Ok(CentralTenant {
        id: r.get(0)?,
        name: r.get(1)?,
        status: r.get(2)?,
        plan: r.get(3)?,
        limits: PlanLimits::from_sql(r.get(4)?, r.get(5)?),
        rate_limit: rate,
        settings: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

fn settings_json(settings: &TenantSettings) -> Result<Json> {
    Ok(Json(
        serde_json::to_value(settings).map_err(|e| SettingsError::Malformed(e.to_string()))?,
    ))
}

fn find_tenant(conn: &Connection, id: &TenantId) -> Result<CentralTenant> {
    conn.prepare_cached(&format!("{TENANT_SELECT} WHERE id = ?1"))?
        .query_row([id], tenant_from_row)
        .optional()?
        .ok_or_else(|| CentralError::TenantNotFound(id.clone()))
}

fn active_tenant(conn: &Connection, id: &TenantId) -> Result<CentralTenant> {
    let t = find_tenant(conn, id)?;
    if t.status != TenantStatus::Active {
        return Err(CentralError::TenantInactive {
            tenant: id.clone(),
            status: t.status,
        });
    }
    Ok(t)
}

/// Applies a change of limits to the tenant's row, merged in SQL (one statement, no read
/// before the write); the number of rows changed, 0 if there is no such tenant.
fn apply_limits(conn: &Connection, id: &TenantId, update: &LimitsUpdate) -> Result<usize> {
    let rate = update.rate_limit.flatten();
    Ok(conn
        .prepare_cached(
            "UPDATE tenants SET max_users = coalesce(?2, max_users),
                    max_api_calls_month = coalesce(?3, max_api_calls_month),
                    rate_limit_requests = CASE WHEN ?4 THEN ?5 ELSE rate_limit_requests END,
                    rate_limit_period_secs = CASE WHEN ?4 THEN ?6 ELSE rate_limit_period_secs END,
                    updated_at = ?7
             WHERE id = ?1",
        )?
        .execute(params![
            id,
            update.max_users,
            update.max_api_calls_month.map(to_i64),
            update.rate_limit.is_some(),
            rate.map(|r| r.requests),
            rate.map(|r| r.per_secs),
            Timestamp::now()
        ])?)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl CentralStore for SqliteCentral {
    fn add_tenant_with_limits(
        &self,
        new: &NewTenant,
        limits: &LimitsUpdate,
    ) -> Result<CentralTenant> {
        new.settings.validate()?;
        check_limits(limits)?;
        let plan = new.plan.limits();
        let settings = settings_json(&new.settings)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let now = Timestamp::now();
        let n = tx.execute(
            "INSERT INTO tenants (id, name, status, plan, max_users, max_api_calls_month, settings,
                                  created_at, updated_at)
             VALUES (?1, ?2, 'active', ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT (id) DO NOTHING",
            params![
                new.id,
                new.name,
                new.plan,
                plan.max_users,
                to_i64(plan.max_api_calls_month),
                settings,
                now
            ],
        )?;
        if n == 0 {
            return Err(CentralError::TenantExists(new.id.clone()));
        }
        apply_limits(&tx, &new.id, limits)?;
        let t = find_tenant(&tx, &new.id)?;
        tx.commit()?;
        Ok(t)
    }

    fn tenant(&self, id: &TenantId) -> Result<CentralTenant> {
        find_tenant(&self.conn(), id)
    }

    fn tenants(&self) -> Result<Vec<CentralTenant>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!("{TENANT_SELECT} ORDER BY id"))?;
        let rows = stmt.query_map([], tenant_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn set_status(&self, id: &TenantId, status: TenantStatus) -> Result<CentralTenant> {
        let mut conn = self.conn();
        // The check and the change in one write transaction: another process cannot slip a
        // cancellation in between.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let from: Option<TenantStatus> = tx
            .query_row("SELECT status FROM tenants WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        check_status_change(id, from, status)?;
        tx.execute(
            "UPDATE tenants SET status = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, status, Timestamp::now()],
        )?;
        tx.commit()?;
        find_tenant(&conn, id)
    }

    fn update_limits(&self, id: &TenantId, update: &LimitsUpdate) -> Result<CentralTenant> {
        check_limits(update)?;
        let conn = self.conn();
        if apply_limits(&conn, id, update)? == 0 {
            return Err(CentralError::TenantNotFound(id.clone()));
        }
        find_tenant(&conn, id)
    }

    fn set_plan(&self, id: &TenantId, plan: Plan) -> Result<CentralTenant> {
        let limits = plan.limits();
        self.update_tenant(
            id,
            "UPDATE tenants SET plan = ?2, max_users = ?3, max_api_calls_month = ?4,
                    updated_at = ?5 WHERE id = ?1",
            params![
                id,
                plan,
                limits.max_users,
                to_i64(limits.max_api_calls_month),
                Timestamp::now()
            ],
        )
    }

    fn set_rate_limit(&self, id: &TenantId, rate: Option<RateLimit>) -> Result<CentralTenant> {
        self.update_tenant(
            id,
            "UPDATE tenants SET rate_limit_requests = ?2, rate_limit_period_secs = ?3,
                    updated_at = ?4 WHERE id = ?1",
            params![
                id,
                rate.map(|r| r.requests),
                rate.map(|r| r.per_secs),
                Timestamp::now()
            ],
        )
    }

    fn set_settings(&self, id: &TenantId, settings: &TenantSettings) -> Result<CentralTenant> {
        settings.validate()?;
        let json = settings_json(settings)?;
        self.update_tenant(
            id,
            "UPDATE tenants SET settings = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, json, Timestamp::now()],
        )
    }

    fn append(&self, tenant: &TenantId, ops: &[Operation]) -> Result<Vec<OperationResult>> {
        check_batch(tenant, ops)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        active_tenant(&tx, tenant)?;
        let mut high: i64 = tx
            .prepare_cached("SELECT coalesce(max(seq), 0) FROM operations WHERE tenant_id = ?1")?
            .query_row([tenant], |r| r.get(0))?;
        let received = Timestamp::now();
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            // serde_json maps keep their keys sorted, so equal operations give equal text.
            let body =
                serde_json::to_string(op).map_err(|e| CentralError::Corrupt(e.to_string()))?;
            let seen: Option<(i64, String)> = tx
                .prepare_cached(
                    "SELECT seq, body FROM operations WHERE tenant_id = ?1 AND id = ?2",
                )?
                .query_row(params![tenant, op.id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let result = match seen {
                Some((seq, stored)) if stored == body => OperationResult {
                    id: op.id,
                    status: OperationStatus::Duplicate,
                    seq: u64::try_from(seq).ok(),
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
                    tx.prepare_cached(
                        "INSERT INTO operations (tenant_id, seq, id, device_id, hlc, table_name, row_id,
                                                 kind, body, received_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    )?
                    .execute(params![
                        tenant,
                        high,
                        op.id,
                        op.device_id,
                        op.hlc.to_string(),
                        op.table,
                        op.row_id,
                        op.kind.as_str(),
                        body,
                        received
                    ])?;
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
        tx.commit()?;
        Ok(results)
    }

    fn operations_after(&self, tenant: &TenantId, after: u64, limit: u32) -> Result<OperationPage> {
        check_page_limit(limit)?;
        let conn = self.conn();
        // One read transaction, so the page and the high mark agree.
        let tx = conn.unchecked_transaction()?;
        active_tenant(&tx, tenant)?;
        let mut operations = Vec::new();
        let mut budget = PageBudget::default();
        {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, body FROM operations WHERE tenant_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let mut rows = stmt.query(params![tenant, to_i64(after), limit])?;
            while let Some(r) = rows.next()? {
                let seq: i64 = r.get(0)?;
                let body: String = r.get(1)?;
                // The stored text is the operation's JSON as taken, so its length is what the
                // budget counts.
                if !budget.admits(body.len()) {
                    break;
                }
                let operation: Operation = serde_json::from_str(&body)
                    .map_err(|e| CentralError::Corrupt(format!("operation {seq}: {e}")))?;
                operations.push(SequencedOperation {
                    seq: u64::try_from(seq).unwrap_or(0),
                    operation,
                });
            }
        }
        let high: i64 = tx
            .prepare_cached("SELECT coalesce(max(seq), 0) FROM operations WHERE tenant_id = ?1")?
            .query_row([tenant], |r| r.get(0))?;
        tx.commit()?;
        Ok(OperationPage {
            operations,
            high: u64::try_from(high).unwrap_or(0),
        })
    }

    fn count_api_call(&self, tenant: &TenantId, at: Timestamp, max: u64) -> Result<Option<u64>> {
        let conn = self.conn();
        find_tenant(&conn, tenant)?;
        // Both branches are guarded by the limit: a first call of the month inserts only if
        // `max` allows one, later ones add one only below `max`. No row back: over the plan.
        let calls: Option<i64> = conn
            .prepare_cached(
                "INSERT INTO tenant_usage (tenant_id, month, api_calls)
                 SELECT ?1, ?2, 1 WHERE ?3 >= 1
                 ON CONFLICT (tenant_id, month) DO UPDATE SET api_calls = api_calls + 1
                     WHERE api_calls < ?3
                 RETURNING api_calls",
            )?
            .query_row(params![tenant, usage_month(at), to_i64(max)], |r| r.get(0))
            .optional()?;
        Ok(calls.map(|n| u64::try_from(n).unwrap_or(0)))
    }

    fn storage_bytes(&self, tenant: &TenantId) -> Result<u64> {
        let mut conn = self.conn();
        // One read transaction: the tenant and its rows as of one moment.
        let tx = conn.transaction()?;
        find_tenant(&tx, tenant)?;
        let bytes: i64 = tx
            .prepare_cached(STORAGE_BYTES)?
            .query_row([tenant], |r| r.get(0))?;
        tx.commit()?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    fn api_calls(&self, tenant: &TenantId, at: Timestamp) -> Result<u64> {
        let conn = self.conn();
        find_tenant(&conn, tenant)?;
        let calls: Option<i64> = conn
            .prepare_cached(
                "SELECT api_calls FROM tenant_usage WHERE tenant_id = ?1 AND month = ?2",
            )?
            .query_row(params![tenant, usage_month(at)], |r| r.get(0))
            .optional()?;
        Ok(calls.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }
}

/// The bytes of a tenant's rows ([`CentralStore::storage_bytes`]): each text value's UTF-8
/// bytes and 8 for each integer (NULLs take none), over its rows of every table.
const STORAGE_BYTES: &str = "
    SELECT (SELECT coalesce(sum(octet_length(id) + octet_length(name) + octet_length(status)
                                + octet_length(plan) + 16 + octet_length(settings)
                                + octet_length(created_at) + octet_length(updated_at)
                                + 8 * (rate_limit_requests IS NOT NULL)
                                + 8 * (rate_limit_period_secs IS NOT NULL)), 0)
            FROM tenants WHERE id = ?1)
         + (SELECT coalesce(sum(octet_length(tenant_id) + 8 + octet_length(id)
                                + octet_length(device_id) + octet_length(hlc)
                                + octet_length(table_name) + octet_length(row_id)
                                + octet_length(kind) + octet_length(body)
                                + octet_length(received_at)), 0)
            FROM operations WHERE tenant_id = ?1)
         + (SELECT coalesce(sum(octet_length(tenant_id) + octet_length(month) + 8), 0)
            FROM tenant_usage WHERE tenant_id = ?1)";

/// The `tenant_usage.month` key of an instant: its calendar month in UTC, `YYYY-MM`.
fn usage_month(at: Timestamp) -> String {
    at.as_datetime().format("%Y-%m").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_made_by_version_1_is_upgraded_and_keeps_its_tenants() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| CentralError::Corrupt(e.to_string()))?;
        let path = dir.path().join("central.db");
        {
            let mut conn = Connection::open(&path)?;
            embedded::migrations::runner()
                .set_target(refinery::Target::Version(1))
                .run(&mut conn)
                .map_err(|e| CentralError::Migration(e.to_string()))?;
            conn.execute(
                "INSERT INTO tenants (id, name, status, plan, max_users, max_api_calls_month,
                                      settings, created_at, updated_at)
                 VALUES ('caps', 'Caps', 'active', 'pro', 25, 1000000, ?1, ?2, ?2)",
                params![
                    settings_json(&TenantSettings::new("Caps"))?,
                    Timestamp::now()
                ],
            )?;
        }
        let c = SqliteCentral::open(&path)?;
        let t = c.tenant(&"caps".parse().expect("id"))?;
        assert_eq!((t.plan, t.rate_limit), (Plan::Pro, None));
        Ok(())
    }
}
