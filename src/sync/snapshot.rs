//! A new terminal taking a tenant's state from the central server's snapshot instead of
//! replaying its whole log.
//!
//! A snapshot is a tenant export ([`crate::Store::export_tenant`]) of a node that applied the
//! tenant's log up to a cursor with the same merge as every terminal (the central server keeps
//! one such node per tenant). A terminal that holds nothing of the tenant yet and is far behind
//! downloads it ([`Transport::snapshot`]), copies the tenant's rows in with one
//! `INSERT … SELECT` per table, sets its cursor to the snapshot's and pulls only what came
//! after. The outcome is the replay's: the same rows, stamps and conflicts (the merge is
//! deterministic and the snapshot node ran it), and the same audit trail, one row per applied
//! operation naming it and its device.
//!
//! Invariants, and why:
//! - Only a tenant with no row in any table the copy fills, no pending operation and cursor 0
//!   takes a snapshot: there is nothing of its own to merge, so copying cannot lose anything.
//! - The copy, the cursor and the clock floor are one transaction of the tenant's home: a crash
//!   at any point leaves either nothing of the snapshot or all of it, with its cursor.
//! - What is node-local is not copied: the snapshot node's outbox (it must have none), its sync
//!   log and state, its backup log and sessions. The node keeps its own identity and registry
//!   row; the settings come with the round's settings step as always.
//! - A file that is not a snapshot this node can take (another schema version, another
//!   tenant, pending operations, a cursor other than announced or past the log's head, rows
//!   that refer to what it does not hold or that this node's tables refuse) changes nothing:
//!   the pull falls back to the log and says why.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use serde::Serialize;

use crate::backup::{describe, ident};
use crate::catalog::{self, SyncClass, TableDef, TABLES};
use crate::hlc::ClockState;
use crate::ids::TenantId;
use crate::protocol::SnapshotInfo;
use crate::store::clock::raise_clock_floor;
use crate::store::Store;
use crate::sync::state;
use crate::tenant_io::tenant_clock;

/// What became of a snapshot a pull asked the server for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
#[non_exhaustive]
pub enum SnapshotUse {
    /// The tenant's state was taken from the snapshot, up to `cursor`.
    Taken {
        /// The last log sequence number the snapshot holds.
        cursor: u64,
        /// Rows copied in (audit rows and merge stamps included).
        rows: u64,
        /// The file's size.
        bytes: u64,
    },
    /// The server's snapshot could not be taken; the pull replayed the log instead.
    Refused {
        /// What was wrong with it.
        reason: String,
    },
}

/// Tables a snapshot fills: every synced table, the merge's stamps, and the audit trail of what
/// the snapshot node applied. Never the node-local bookkeeping (outbox, sync state and log,
/// backup log, sessions).
pub(crate) fn filled_tables() -> impl Iterator<Item = &'static TableDef> {
    TABLES.iter().copied().filter(|t| {
        t.sync_class != SyncClass::LocalOnly
            || t.name == <catalog::SyncStamps as catalog::Record>::TABLE.name
            || t.name == <catalog::AuditEntry as catalog::Record>::TABLE.name
    })
}

/// Where a snapshot of `tenant` is downloaded: beside the store's file (`None` in memory).
pub(crate) fn download_path(store: &Store, tenant: &TenantId) -> Option<PathBuf> {
    let path = store.path()?;
    let mut name = path.file_name()?.to_os_string();
    name.push(format!(".snapshot-{tenant}"));
    Some(path.with_file_name(name))
}

/// Whether the tenant holds nothing a snapshot could overwrite: cursor 0, no pending
/// operation, no row in any table the snapshot fills.
pub(crate) fn holds_nothing(conn: &Connection, tenant: &TenantId) -> crate::Result<bool> {
    if state::cursor(conn, tenant)? != 0 {
        return Ok(false);
    }
    let pending = <catalog::PendingOperation as catalog::Record>::TABLE;
    for table in filled_tables().chain([pending]) {
        // The name comes from the catalog, never from input.
        let any: bool = conn.query_row(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE tenant_id = ?1)",
                ident(table.name)
            ),
            [tenant],
            |r| r.get(0),
        )?;
        if any {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Why a downloaded file cannot be taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unusable {
    /// The file is not a snapshot this node can take; nothing was changed.
    #[error("{0}")]
    File(String),
    /// The node could not write; nothing was changed.
    #[error(transparent)]
    Local(#[from] crate::Error),
}

impl From<rusqlite::Error> for Unusable {
    fn from(e: rusqlite::Error) -> Self {
        Unusable::Local(e.into())
    }
}

/// Checks the downloaded file at `path` before anything is written: a tenant export of
/// `tenant` at this schema version, with no pending operation, whose cursor is the announced
/// one. Cheap: the file's bytes were proven by their SHA-256 as they arrived, and the snapshot
/// node checked the file (`quick_check`, `foreign_key_check`) when it wrote it. Returns the
/// clock the snapshot node had.
fn check_file(path: &Path, tenant: &TenantId, info: &SnapshotInfo) -> Result<ClockState, Unusable> {
    let bad = |reason: String| Unusable::File(reason);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| bad(format!("it cannot be opened: {e}")))?;
    let copy = describe(&conn).map_err(|e| bad(format!("it is not a tenant export: {e}")))?;
    if !copy.export {
        return Err(bad("it is not a tenant export".into()));
    }
    let supported = Store::supported_schema_version();
    if copy.schema_version != supported {
        return Err(bad(format!(
            "it is at schema version {}, this node at {supported}",
            copy.schema_version
        )));
    }
    let read = || -> crate::Result<(Vec<TenantId>, i64, u64)> {
        let tenants = conn
            .prepare("SELECT id FROM tenants")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<TenantId>>>()?;
        let pending: i64 =
            conn.query_row("SELECT count(*) FROM pending_operations", [], |r| r.get(0))?;
        Ok((tenants, pending, state::cursor(&conn, tenant)?))
    };
    let (tenants, pending, cursor) = read().map_err(|e| bad(format!("it cannot be read: {e}")))?;
    if tenants != [tenant.clone()] {
        return Err(bad(format!(
            "it registers {} tenant(s), not tenant {tenant} alone",
            tenants.len()
        )));
    }
    if pending != 0 {
        return Err(bad(format!(
            "it holds {pending} operation(s) the server never received"
        )));
    }
    if cursor == 0 {
        return Err(bad(
            "it holds none of the tenant's log (a snapshot of a tenant with no operations)".into(),
        ));
    }
    if cursor != info.cursor {
        return Err(bad(format!(
            "it holds the log up to {cursor}, the server announced {}",
            info.cursor
        )));
    }
    tenant_clock(&conn, tenant).map_err(|e| bad(format!("its clock cannot be read: {e}")))
}

/// Takes the snapshot at `path` into the tenant's home `store`: checked, then every filled
/// table's rows of the tenant copied in one transaction with the cursor and the clock floor.
/// The caller has set the secondary indexes aside (or not, when other tenants share them).
/// Returns the rows copied.
pub(crate) fn take(
    store: &Store,
    tenant: &TenantId,
    path: &Path,
    info: &SnapshotInfo,
) -> Result<u64, Unusable> {
    let theirs = check_file(path, tenant, info)?;
    let conn = &store.conn;
    let text = path
        .to_str()
        .ok_or_else(|| Unusable::File(format!("{} is not a UTF-8 path", path.display())))?;
    conn.execute("ATTACH DATABASE ?1 AS snapshot", [text])?;
    let copied = copy_in(store, conn, tenant, info, theirs);
    let detached = conn.execute_batch("DETACH DATABASE snapshot");
    let rows = copied?;
    detached?;
    // Stamps this connection cached are behind the clock the snapshot brought.
    store.forget_cached_clock();
    Ok(rows)
}

fn copy_in(
    store: &Store,
    conn: &Connection,
    tenant: &TenantId,
    info: &SnapshotInfo,
    theirs: ClockState,
) -> Result<u64, Unusable> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    store.ensure_home(tenant)?;
    // Checked again under the write lock: another process may have pulled meanwhile.
    if !holds_nothing(&tx, tenant)? {
        return Err(Unusable::File(
            "the tenant received rows on this node meanwhile".into(),
        ));
    }
    // Tables refer to each other (and to themselves); the whole copy is checked at commit.
    tx.pragma_update(None, "defer_foreign_keys", true)?;
    let mut rows = 0u64;
    for table in filled_tables() {
        let columns: Vec<String> = table.all_column_names().map(ident).collect();
        let columns = columns.join(", ");
        // Names from the catalog only; the tenant is bound.
        rows += tx
            .execute(
                &format!(
                    "INSERT INTO main.{t} ({columns}) SELECT {columns} FROM snapshot.{t}
                     WHERE tenant_id = ?1",
                    t = ident(table.name)
                ),
                [tenant],
            )
            .map_err(|e| copy_error(table.name, e))? as u64;
    }
    state::ensure(&tx, tenant)?;
    state::set_cursor(&tx, tenant, info.cursor)?;
    // Stamps issued here from now on follow every stamp the snapshot holds.
    raise_clock_floor(&tx, theirs)?;
    tx.commit().map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => {
            Unusable::File(format!("its rows refer to rows it does not hold ({e})"))
        }
        _ => Unusable::Local(e.into()),
    })?;
    Ok(rows)
}

/// Why copying `table` failed. The tenant holds nothing here and every key includes the
/// tenant, so a broken constraint is the file's rows; and this node's tables are migrated, so
/// a statement that cannot be prepared (`SQLITE_ERROR`: a table or column missing) is the
/// file's tables. Both are the file's fault: refused, and the log is replayed. Anything else
/// (a full disk, an I/O error, a busy lock) is this node's.
fn copy_error(table: &str, e: rusqlite::Error) -> Unusable {
    let file = match e.sqlite_error() {
        Some(f) => {
            f.code == rusqlite::ErrorCode::ConstraintViolation
                || f.extended_code == rusqlite::ffi::SQLITE_ERROR
        }
        None => false,
    };
    if file {
        Unusable::File(format!("its rows of {table} cannot be taken ({e})"))
    } else {
        Unusable::Local(e.into())
    }
}
