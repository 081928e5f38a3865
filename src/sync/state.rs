//! Where each tenant's sync stands on this node (`sync_state`), every attempt's `sync_log` row,
//! and the status a person or a script reads ([`SyncStatus`]).

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::ids::{RowId, TenantId, Timestamp};
use crate::store::Store;
use crate::sync::transport::ErrorClass;
use crate::Result;

/// Pending operations with no progress for this long while online make a tenant `stalled`.
pub const STALL_AFTER: Duration = Duration::from_secs(30);

/// A sync step, as errors and the log name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// Sending this node's operations.
    Push,
    /// Fetching and merging other terminals' operations.
    Pull,
    /// Fetching the tenant's settings.
    Config,
}

impl Step {
    /// The stored word.
    pub fn as_str(&self) -> &'static str {
        match self {
            Step::Push => "push",
            Step::Pull => "pull",
            Step::Config => "config",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Makes the tenant's `sync_state` row if it has none.
pub(crate) fn ensure(conn: &Connection, tenant: &TenantId) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO sync_state (id, tenant_id) VALUES (?1, ?2) ON CONFLICT (tenant_id) DO NOTHING",
    )?
    .execute(params![RowId::new(), tenant])?;
    Ok(())
}

/// The last log sequence number applied here.
pub(crate) fn cursor(conn: &Connection, tenant: &TenantId) -> Result<u64> {
    let c: Option<i64> = conn
        .prepare_cached("SELECT cursor FROM sync_state WHERE tenant_id = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?;
    Ok(c.and_then(|c| u64::try_from(c).ok()).unwrap_or(0))
}

/// Moves the cursor forward (never back), in the caller's transaction.
pub(crate) fn set_cursor(conn: &Connection, tenant: &TenantId, cursor: u64) -> Result<()> {
    ensure(conn, tenant)?;
    conn.prepare_cached(
        "UPDATE sync_state SET cursor = max(cursor, ?2), last_progress_at = ?3 WHERE tenant_id = ?1",
    )?
    .execute(params![tenant, to_i64(cursor), Timestamp::now()])?;
    Ok(())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Records a step that reached the server: online, its time, the server's head (never moving
/// back), and progress when operations moved; the last error is cleared if this step made it
/// (a pull that works does not hide a push that keeps failing).
pub(crate) fn record_success(
    conn: &Connection,
    tenant: &TenantId,
    step: Step,
    moved: usize,
    server_high: Option<u64>,
) -> Result<()> {
    ensure(conn, tenant)?;
    let now = Timestamp::now();
    let column = match step {
        Step::Push => "last_push_at",
        Step::Pull => "last_pull_at",
        Step::Config => "last_pull_at",
    };
    // `column` is one of two fixed identifiers above.
    conn.prepare_cached(&format!(
        "UPDATE sync_state SET online = 1, {column} = max(coalesce({column}, ''), ?2),
             server_high = max(server_high, ?3),
             last_progress_at = CASE WHEN ?4 > 0 THEN ?2 ELSE last_progress_at END,
             error_class = CASE WHEN error_step = ?5 THEN NULL ELSE error_class END,
             error = CASE WHEN error_step = ?5 THEN NULL ELSE error END,
             error_at = CASE WHEN error_step = ?5 THEN NULL ELSE error_at END,
             error_step = CASE WHEN error_step = ?5 THEN NULL ELSE error_step END
         WHERE tenant_id = ?1"
    ))?
    .execute(params![
        tenant,
        now,
        to_i64(server_high.unwrap_or(0)),
        to_i64(moved as u64),
        step.as_str()
    ])?;
    Ok(())
}

/// Records a failed step: its class, step and message; offline when the server was not
/// reached.
pub(crate) fn record_error(conn: &Connection, tenant: &TenantId, error: &SyncError) -> Result<()> {
    ensure(conn, tenant)?;
    let online = !matches!(error.class, ErrorClass::Transient);
    conn.prepare_cached(
        "UPDATE sync_state SET online = ?2, error_class = ?3, error_step = ?4, error = ?5,
             error_at = ?6
         WHERE tenant_id = ?1",
    )?
    .execute(params![
        tenant,
        online,
        error.class.as_str(),
        error.step.as_str(),
        error.message,
        Timestamp::now()
    ])?;
    Ok(())
}

/// Appends a `sync_log` row for one attempt.
pub(crate) fn log(
    conn: &Connection,
    tenant: &TenantId,
    step: Step,
    started: Timestamp,
    operations: usize,
    cursor: Option<u64>,
    error: Option<&str>,
) -> Result<()> {
    let direction = match step {
        Step::Push => "push",
        Step::Pull | Step::Config => "pull",
    };
    conn.prepare_cached(
        "INSERT INTO sync_log (id, tenant_id, direction, started_at, finished_at, operations,
             cursor, status, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        RowId::new(),
        tenant,
        direction,
        started,
        Timestamp::now(),
        to_i64(operations as u64),
        cursor.map(to_i64),
        if error.is_some() { "failed" } else { "ok" },
        error
    ])?;
    Ok(())
}

/// A failed sync step: which tenant, which step, what kind of failure, and what a person can
/// do about it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("tenant {tenant}: {step} failed ({}): {message}; what to do: {}", class.as_str(), class.action())]
pub struct SyncError {
    /// The tenant.
    pub tenant: TenantId,
    /// The step.
    pub step: Step,
    /// What kind of failure.
    pub class: ErrorClass,
    /// What went wrong.
    pub message: String,
    /// How long the server asked to wait, if it did.
    pub retry_after: Option<Duration>,
}

impl SyncError {
    pub(crate) fn new(tenant: &TenantId, step: Step, class: ErrorClass, message: String) -> Self {
        Self {
            tenant: tenant.clone(),
            step,
            class,
            message,
            retry_after: None,
        }
    }

    /// What a person can do about it.
    pub fn action(&self) -> &'static str {
        self.class.action()
    }

    pub(crate) fn local(tenant: &TenantId, step: Step, e: crate::Error) -> Self {
        // A busy database is the terminal's own write in progress: try again.
        // So is a tenant moved to or from a file of its own meanwhile: the next step routes
        // to its new home.
        let busy = matches!(
            &e,
            crate::Error::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DatabaseBusy
                    || f.code == rusqlite::ErrorCode::DatabaseLocked
        ) || matches!(&e, crate::Error::TenantMoved { .. });
        let class = if busy {
            ErrorClass::Transient
        } else {
            ErrorClass::Fatal
        };
        Self::new(
            tenant,
            step,
            class,
            format!("this terminal's database: {e}"),
        )
    }
}

/// The last error of a tenant's sync, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastError {
    /// Its class: transient, auth, suspended, refused or fatal.
    pub class: String,
    /// The step that failed.
    pub step: String,
    /// What went wrong.
    pub message: String,
    /// What a person can do.
    pub action: String,
    /// When.
    pub at: Option<Timestamp>,
}

/// Where a tenant's sync stands on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    /// The tenant.
    pub tenant: TenantId,
    /// Whether the last attempt reached the server.
    pub online: bool,
    /// Operations waiting to be pushed (set aside ones not counted).
    pub pending: u64,
    /// When the oldest of them was written.
    pub oldest_pending_at: Option<Timestamp>,
    /// Operations the server refused for good, kept for a person.
    pub set_aside: u64,
    /// The last log sequence number applied here.
    pub cursor: u64,
    /// The server's highest sequence number, as last seen.
    pub server_high: u64,
    /// Last push that reached the server.
    pub last_push_at: Option<Timestamp>,
    /// Last pull that reached the server.
    pub last_pull_at: Option<Timestamp>,
    /// Last time operations moved either way.
    pub last_progress_at: Option<Timestamp>,
    /// Conflicts not resolved yet.
    pub open_conflicts: u64,
    /// Operations pending while online with no progress for [`STALL_AFTER`].
    pub stalled: bool,
    /// The last error, if the last attempt failed.
    pub last_error: Option<LastError>,
}

impl Store {
    /// Where the tenant's sync stands on this node, read from the database (so a second
    /// process, such as `pos-node status`, sees what the engine recorded).
    pub fn sync_status(&self, tenant: &TenantId) -> Result<SyncStatus> {
        let conn = &self.home(tenant)?.conn;
        let (pending, oldest, set_aside): (i64, Option<Timestamp>, i64) = conn
            .prepare_cached(
                "SELECT count(*) FILTER (WHERE set_aside IS NULL),
                        min(created_at) FILTER (WHERE set_aside IS NULL),
                        count(*) FILTER (WHERE set_aside IS NOT NULL)
                 FROM pending_operations WHERE tenant_id = ?1 AND synced_at IS NULL",
            )?
            .query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        let open_conflicts: i64 = conn
            .prepare_cached(
                "SELECT count(*) FROM sync_conflicts WHERE tenant_id = ?1 AND resolved_at IS NULL",
            )?
            .query_row([tenant], |r| r.get(0))?;
        type Row = (
            i64,
            i64,
            Option<Timestamp>,
            Option<Timestamp>,
            Option<Timestamp>,
            bool,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<Timestamp>,
        );
        let row: Option<Row> = conn
            .prepare_cached(
                "SELECT cursor, server_high, last_push_at, last_pull_at, last_progress_at, online,
                        error_class, error_step, error, error_at
                 FROM sync_state WHERE tenant_id = ?1",
            )?
            .query_row([tenant], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                ))
            })
            .optional()?;
        let (cursor, high, push, pull, progress, online, class, step, error, error_at) =
            row.unwrap_or((0, 0, None, None, None, false, None, None, None, None));
        let pending = u64::try_from(pending).unwrap_or(0);
        let last_error = class.map(|class| LastError {
            action: class_action(&class).to_owned(),
            class,
            step: step.unwrap_or_default(),
            message: error.unwrap_or_default(),
            at: error_at,
        });
        // Stalled: work waits while the server answers, and nothing moved for a while (the
        // oldest pending write counts as the start of the wait).
        let since = progress.max(oldest);
        let stalled = online
            && pending > 0
            && since.is_some_and(|t| {
                Timestamp::now().as_millis() - t.as_millis() > STALL_AFTER.as_millis() as i64
            });
        Ok(SyncStatus {
            tenant: tenant.clone(),
            online,
            pending,
            oldest_pending_at: oldest,
            set_aside: u64::try_from(set_aside).unwrap_or(0),
            cursor: u64::try_from(cursor).unwrap_or(0),
            server_high: u64::try_from(high).unwrap_or(0),
            last_push_at: push,
            last_pull_at: pull,
            last_progress_at: progress,
            open_conflicts: u64::try_from(open_conflicts).unwrap_or(0),
            stalled,
            last_error,
        })
    }
}

fn class_action(class: &str) -> &'static str {
    let class = match class {
        "transient" => ErrorClass::Transient,
        "auth" => ErrorClass::Auth,
        "suspended" => ErrorClass::Suspended,
        "refused" => ErrorClass::Refused,
        _ => ErrorClass::Fatal,
    };
    class.action()
}
