//! Restoring a whole node from one of its backups.
//!
//! Invariants, and why:
//! - A backup that does not match the SHA-256 recorded beside it (or in the `backups` table of
//!   the database it replaces), or that `integrity_check` finds damaged, is never restored.
//! - The database is replaced only while this process holds SQLite's exclusive lock on it
//!   (`locking_mode=EXCLUSIVE`, taken with a short timeout): a database another connection has
//!   open (a till, a sync engine) is refused, since replacing it under them would tear their
//!   view of it.
//! - The copy is prepared in full beside the database (`<db>.restore-partial`) and then copied
//!   in with the online backup API in one step, which is one transaction of the database: a
//!   crash at any moment leaves either the old database or the restored one, never a mix.
//! - Identity: the restored node keeps the backup's node id only when restored onto the same
//!   terminal, known by the database being replaced having that same node id. Onto any other
//!   file (another terminal's database, or none: a new disk) it gets a new node id, so two
//!   terminals never stamp operations with the same device. Its operations already in the
//!   outbox keep the device that wrote them.
//! - The clock never goes back: the restored node's clock floor is raised to the replaced
//!   database's clock, so a stamp issued after the restore follows every stamp issued before.
//! - The replaced database's backup log is carried over (see the module docs of `backup`).
//! - Tenant files: every part is checked before anything changes; each goes to a name no file
//!   of the node has, prepared and synced beside it, and the replace of the shared file is
//!   the one commit that routes to them (a failed replace removes them). The replaced node's
//!   tenant files are locked like the shared file (one in use is refused) and never written.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use super::error::{BackupError, BackupStep};
use super::log::{carry_log, mend_log, read_log, LogRows};
use super::node::{check_checksum, describe, inspect_copy};
use super::snapshot::sync_dir;
use super::tenant_files::{check_parts, CheckedPart, RestoredTenantFile};
use super::{digest_connection, Pages};
use crate::hlc::ClockState;
use crate::ids::{RowId, TenantId, Timestamp};
use crate::store::clock::{clock_state, raise_clock_floor};
use crate::store::homes::{dedicated_routes, homes_dir};

/// How long a restore waits for another connection to let go of the database before it
/// reports the database as in use.
const IN_USE_WAIT: Duration = Duration::from_millis(500);

/// What [`restore`] did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RestoreReport {
    /// The database restored.
    pub db: PathBuf,
    /// The backup it was restored from.
    pub backup: PathBuf,
    /// The backup's SHA-256, checked before anything was changed.
    pub sha256: String,
    /// The backup's id in `backups`.
    pub backup_id: RowId,
    /// The node id of the database now.
    pub node_id: RowId,
    /// The node id in the backup.
    pub backup_node_id: RowId,
    /// Whether the node kept its id: restored onto the terminal it was taken on.
    pub same_terminal: bool,
    /// Whether there was no database before (a new disk).
    pub created: bool,
    /// The tenants in the restored database.
    pub tenants: Vec<TenantId>,
    /// Rows of the backup log carried over from the database replaced.
    pub log_rows_carried: usize,
    /// The restored database's canonical digest (schema and rows).
    pub canonical_digest: String,
    /// Each dedicated tenant's own file put back, where its route now names it (none, and
    /// left out of the JSON, for a backup without tenant files).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenant_files: Vec<RestoredTenantFile>,
    /// Seconds it took.
    pub seconds: f64,
}

/// What the database being replaced said about itself.
struct Replaced {
    conn: Connection,
    node_id: RowId,
    /// Its clock, raised to its tenant files' once they are read.
    clock: ClockState,
    log: LogRows,
    /// Its dedicated tenants' routes.
    routes: Vec<(TenantId, Option<String>)>,
}

/// Restores the node database `db` from the backup `from`, after checking the backup against
/// its recorded SHA-256 and `integrity_check`. Refused over a database another connection has
/// open. `db` may be missing (a new disk); then it is created. `progress` is called with the
/// pages copied while the backup is prepared.
pub fn restore(
    db: &Path,
    from: &Path,
    progress: &mut dyn FnMut(Pages),
) -> Result<RestoreReport, BackupError> {
    let started = Instant::now();
    let sha256 = check_checksum(from)?;
    let info = inspect_copy(from)?;
    if info.export {
        return Err(BackupError::TenantExport {
            path: from.to_path_buf(),
        });
    }
    if let Some(tenant) = &info.tenant_file {
        return Err(BackupError::NotANode {
            path: from.to_path_buf(),
            reason: format!("it is tenant {tenant}'s own file, not a backup of a node"),
        });
    }
    let parts = check_parts(from, info.node_id, info.schema_version)?.into_result()?;
    let from_abs = from.canonicalize().map_err(|e| BackupError::NotANode {
        path: from.to_path_buf(),
        reason: e.to_string(),
    })?;
    if db.canonicalize().is_ok_and(|d| d == from_abs) {
        return Err(BackupError::Destination {
            path: db.to_path_buf(),
            reason: "it is the backup itself".into(),
        });
    }
    let mut replaced = if db.exists() {
        Some(lock_replaced(db, &from_abs, &sha256)?)
    } else {
        match db.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) if !dir.is_dir() => {
                return Err(BackupError::Destination {
                    path: db.to_path_buf(),
                    reason: format!("{} is not a directory", dir.display()),
                })
            }
            _ => None,
        }
    };
    // Held (locked) until the restore is over, like the shared file.
    let _held = match replaced.as_mut() {
        Some(r) => lock_replaced_homes(db, r)?,
        None => Vec::new(),
    };
    // Each tenant file goes to a name no file in the node has: the backup's when it is free,
    // else a new one, so no file of the node being replaced is ever written and the switch to
    // the restored files is the one commit of the shared file.
    let homes = homes_dir(db);
    let placed: Vec<(CheckedPart, PathBuf)> = parts
        .into_iter()
        .map(|part| {
            let free = |name: &str| {
                ["", "-wal", "-shm", "-journal", ".restore-partial"]
                    .iter()
                    .all(|extra| !homes.join(format!("{name}{extra}")).exists())
            };
            let name = if free(&part.name) {
                part.name.clone()
            } else {
                format!("{}-{}.db", part.tenant, RowId::new())
            };
            let to = homes.join(name);
            (part, to)
        })
        .collect();
    let staging = staging_path(db);
    let _ = std::fs::remove_file(&staging);
    let renames: Vec<(TenantId, String)> = placed
        .iter()
        .filter_map(|(part, to)| {
            let name = to.file_name()?.to_string_lossy().into_owned();
            (name != part.name).then(|| (part.tenant.clone(), name))
        })
        .collect();
    let prepared = prepare(
        from,
        &from_abs,
        &sha256,
        &staging,
        replaced.as_ref(),
        &renames,
        progress,
    );
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => {
            let _ = std::fs::remove_file(&staging);
            return Err(e);
        }
    };
    let floor = replaced.as_ref().map(|r| r.clock);
    if let Err(e) = place_parts(&placed, prepared.node_id, floor, progress) {
        let _ = std::fs::remove_file(&staging);
        return Err(e);
    }
    let replaced_existing = replaced.is_some();
    let result = replace(db, &staging, replaced, &prepared.digest);
    let _ = std::fs::remove_file(&staging);
    if let Err(e) = result {
        // The node is as it was; the files placed for it are named by no route of it.
        for (_, to) in &placed {
            remove_db_file(to);
        }
        return Err(e);
    }
    let tenant_files = placed
        .into_iter()
        .map(|(part, to)| RestoredTenantFile {
            tenant: part.tenant,
            backup: part.path,
            sha256: part.sha256,
            path: to,
        })
        .collect();
    Ok(RestoreReport {
        db: db.to_path_buf(),
        backup: from.to_path_buf(),
        sha256,
        backup_id: prepared.backup_id,
        node_id: prepared.node_id,
        backup_node_id: info.node_id,
        same_terminal: prepared.node_id == info.node_id,
        created: !replaced_existing,
        tenants: prepared.tenants,
        log_rows_carried: prepared.carried,
        canonical_digest: prepared.digest,
        tenant_files,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Removes a database file and what SQLite may keep beside it (best effort).
fn remove_db_file(path: &Path) {
    for extra in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(extra);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// Takes the exclusive lock on each tenant file the replaced node routes to, as on the shared
/// file (refusing one in use), and raises `replaced.clock` to theirs: the restored node's
/// clock must follow every stamp issued before, in any of its files. A file that is missing
/// or cannot be read is skipped: it is what a restore repairs.
fn lock_replaced_homes(db: &Path, replaced: &mut Replaced) -> Result<Vec<Connection>, BackupError> {
    let dir = homes_dir(db);
    let mut held = Vec::new();
    for (_, file) in &replaced.routes {
        let Some(file) = file else { continue };
        let path = dir.join(file);
        if !path.is_file() {
            continue;
        }
        let Ok(conn) = crate::store::vfs::open(&path) else {
            continue;
        };
        let locked = conn
            .busy_timeout(IN_USE_WAIT)
            .and_then(|()| {
                conn.pragma_update_and_check(None, "locking_mode", "EXCLUSIVE", |_| Ok(()))
            })
            .and_then(|()| conn.execute_batch("BEGIN IMMEDIATE"));
        match locked {
            Ok(()) => {}
            Err(e) if is_busy(&e) => return Err(BackupError::InUse { path }),
            Err(_) => continue,
        }
        if let Ok(clock) = clock_state(&conn) {
            replaced.clock = replaced.clock.max(clock);
        }
        // Ends the transaction; the exclusive lock stays with the connection.
        let _ = conn.execute_batch("COMMIT");
        held.push(conn);
    }
    Ok(held)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Prepares each tenant file of the backup beside its place in the node
/// (`<file>.restore-partial`): the copy, the restored node's id, its clock raised to `floor`
/// (the replaced node's), synced; then gives each its name. A failure removes what it wrote.
fn place_parts(
    placed: &[(CheckedPart, PathBuf)],
    node_id: RowId,
    floor: Option<ClockState>,
    progress: &mut dyn FnMut(Pages),
) -> Result<(), BackupError> {
    let stagings: Vec<PathBuf> = placed
        .iter()
        .map(|(_, to)| {
            let mut name = to.as_os_str().to_owned();
            name.push(".restore-partial");
            PathBuf::from(name)
        })
        .collect();
    let result = (|| {
        for ((part, to), staging) in placed.iter().zip(&stagings) {
            prepare_part(part, staging, node_id, floor, progress)?;
            let failed = |e: &dyn std::fmt::Display| {
                BackupError::failed(
                    BackupStep::Prepare,
                    to,
                    e,
                    "the prepared tenant files were removed, nothing was changed",
                )
            };
            if to.exists() {
                return Err(failed(&"a file of that name appeared meanwhile"));
            }
            std::fs::rename(staging, to).map_err(|e| failed(&e))?;
            sync_dir(to).map_err(|e| failed(&e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        for ((_, to), staging) in placed.iter().zip(&stagings) {
            remove_db_file(staging);
            remove_db_file(to);
        }
    }
    result
}

/// Copies the database file `from` to `staging` with the online backup API, a thousand pages
/// a step, and returns a connection to the copy.
fn copy_to_staging(
    from: &Path,
    staging: &Path,
    progress: &mut dyn FnMut(Pages),
) -> rusqlite::Result<Connection> {
    let src = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut conn = Connection::open(staging)?;
    {
        let copy = rusqlite::backup::Backup::new(&src, &mut conn)?;
        loop {
            let step = copy.step(1024)?;
            progress(Pages::of(copy.progress()));
            if step == rusqlite::backup::StepResult::Done {
                break;
            }
        }
    }
    Ok(conn)
}

/// Copies one tenant file of the backup to `staging` and sets it up for the restored node.
fn prepare_part(
    part: &CheckedPart,
    staging: &Path,
    node_id: RowId,
    floor: Option<ClockState>,
    progress: &mut dyn FnMut(Pages),
) -> Result<(), BackupError> {
    let failed = |e: &dyn std::fmt::Display| {
        BackupError::failed(
            BackupStep::Prepare,
            staging,
            format!("tenant {}'s file: {e}", part.tenant),
            "the prepared tenant files were removed, nothing was changed",
        )
    };
    if let Some(dir) = staging.parent() {
        std::fs::create_dir_all(dir).map_err(|e| failed(&e))?;
    }
    remove_db_file(staging);
    let mut conn = copy_to_staging(&part.path, staging, progress).map_err(|e| failed(&e))?;
    let tx = conn.transaction().map_err(|e| failed(&e))?;
    tx.execute(
        "UPDATE node_state SET node_id = ?1 WHERE singleton = 1",
        [node_id],
    )
    .map_err(|e| failed(&e))?;
    if let Some(floor) = floor {
        raise_clock_floor(&tx, floor).map_err(|e| failed(&e))?;
    }
    tx.commit().map_err(|e| failed(&e))?;
    // As the tenant's live file is.
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .map_err(|e| failed(&e))?;
    drop(conn);
    std::fs::File::open(staging)
        .and_then(|f| f.sync_all())
        .map_err(|e| failed(&e))
}

fn staging_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".restore-partial");
    PathBuf::from(name)
}

/// Takes the exclusive lock on the database to be replaced (refusing one in use) and reads
/// its identity, clock and backup log.
fn lock_replaced(db: &Path, from: &Path, sha256: &str) -> Result<Replaced, BackupError> {
    let not_node = |reason: String| BackupError::NotANode {
        path: db.to_path_buf(),
        reason,
    };
    let conn = crate::store::vfs::open(db).map_err(|e| not_node(e.to_string()))?;
    let in_use = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            BackupError::InUse {
                path: db.to_path_buf(),
            }
        }
        _ => not_node(e.to_string()),
    };
    conn.busy_timeout(IN_USE_WAIT).map_err(in_use)?;
    conn.pragma_update_and_check(None, "locking_mode", "EXCLUSIVE", |_| Ok(()))
        .map_err(in_use)?;
    // In exclusive locking mode a write transaction takes the file's exclusive lock, which
    // SQLite cannot get while another connection holds so much as a shared lock (in WAL mode
    // every open connection does), and keeps it until the connection closes.
    conn.execute_batch("BEGIN IMMEDIATE").map_err(in_use)?;
    let read = (|| {
        let info = describe(&conn).map_err(not_node)?;
        if info.export {
            return Err(not_node("it is a tenant export".into()));
        }
        if let Some(tenant) = &info.tenant_file {
            return Err(not_node(format!(
                "it is tenant {tenant}'s own file; restore the node's shared file, which \
                 routes to it"
            )));
        }
        let recorded: Option<String> = conn
            .query_row(
                "SELECT sha256 FROM backups WHERE kind = 'full' AND status = 'ok' AND path = ?1
                 AND sha256 IS NOT NULL LIMIT 1",
                [from.to_string_lossy()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| not_node(e.to_string()))?;
        if let Some(recorded) = recorded.filter(|r| r != sha256) {
            return Err(BackupError::ChecksumMismatch {
                path: from.to_path_buf(),
                recorded_in: format!("the backups table of {}", db.display()),
                expected: recorded,
                found: sha256.to_owned(),
            });
        }
        let clock = clock_state(&conn).map_err(|e| not_node(e.to_string()))?;
        let log = read_log(&conn).map_err(|e| not_node(e.to_string()))?;
        let routes = dedicated_routes(&conn).map_err(|e| not_node(e.to_string()))?;
        Ok((info.node_id, clock, log, routes))
    })();
    // Ends the transaction; the exclusive lock stays with the connection.
    let _ = conn.execute_batch("COMMIT");
    let (node_id, clock, log, routes) = read?;
    Ok(Replaced {
        conn,
        node_id,
        clock,
        log,
        routes,
    })
}

/// The prepared copy.
struct Prepared {
    backup_id: RowId,
    node_id: RowId,
    tenants: Vec<TenantId>,
    carried: usize,
    digest: String,
}

/// Copies the backup to `staging` and sets it up as the restored node: identity, clock, the
/// backup's own rows marked `ok`, the replaced database's backup log, a restore job per tenant.
fn prepare(
    from: &Path,
    from_abs: &Path,
    sha256: &str,
    staging: &Path,
    replaced: Option<&Replaced>,
    renames: &[(TenantId, String)],
    progress: &mut dyn FnMut(Pages),
) -> Result<Prepared, BackupError> {
    let failed = |e: &dyn std::fmt::Display| {
        BackupError::failed(
            BackupStep::Prepare,
            staging,
            e,
            "the prepared copy was removed, nothing was changed",
        )
    };
    let mut conn = copy_to_staging(from, staging, progress).map_err(|e| failed(&e))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(|e| failed(&e))?;
    let tx = conn.transaction().map_err(|e| failed(&e))?;
    tx.pragma_update(None, "defer_foreign_keys", true)
        .map_err(|e| failed(&e))?;
    let backup_node: RowId = tx
        .query_row(
            "SELECT node_id FROM node_state WHERE singleton = 1",
            [],
            |r| r.get(0),
        )
        .map_err(|e| failed(&e))?;
    let node_id = match replaced {
        Some(r) if r.node_id == backup_node => backup_node,
        _ => RowId::new(),
    };
    tx.execute(
        "UPDATE node_state SET node_id = ?1 WHERE singleton = 1",
        [node_id],
    )
    .map_err(|e| failed(&e))?;
    if let Some(r) = replaced {
        raise_clock_floor(&tx, r.clock).map_err(|e| failed(&e))?;
    }
    // A tenant file restored under another name: its route (the newest promotion) names it.
    for (tenant, name) in renames {
        tx.execute(
            "UPDATE tenant_moves SET file = ?2
             WHERE id = (SELECT move_id FROM tenant_homes WHERE tenant = ?1)",
            params![tenant, name],
        )
        .map_err(|e| failed(&e))?;
    }
    let tenants: Vec<TenantId> = {
        let mut stmt = tx
            .prepare("SELECT id FROM tenants ORDER BY id")
            .map_err(|e| failed(&e))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| failed(&e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| failed(&e))?
    };
    let now = Timestamp::now();
    let bytes = std::fs::metadata(from).map(|m| m.len()).unwrap_or(0);
    let backup_id = own_record(&tx, from, from_abs, sha256, bytes, now).map_err(|e| failed(&e))?;
    let carried = match replaced {
        Some(r) => carry_log(&tx, &r.log, backup_id).map_err(|e| failed(&e))?,
        None => 0,
    };
    mend_log(&tx, None).map_err(|e| failed(&e))?;
    tx.execute(
        "INSERT INTO restore_jobs (id, tenant_id, backup_id, status, requested_by, started_at,
                                   finished_at, error)
         SELECT ?1, id, ?2, 'ok', NULL, ?3, ?4, NULL FROM tenants",
        params![RowId::new(), backup_id, now, Timestamp::now()],
    )
    .map_err(|e| failed(&e))?;
    tx.commit().map_err(|e| failed(&e))?;
    let digest = digest_connection(&conn).map_err(|e| failed(&e))?;
    Ok(Prepared {
        backup_id,
        node_id,
        tenants,
        carried,
        digest,
    })
}

/// Marks the backup's own rows (written `running` before the copy, so inside it) `ok` with its
/// checksum, or records it anew when the copy does not know itself (its file was renamed), and
/// returns its id.
fn own_record(
    conn: &Connection,
    from: &Path,
    from_abs: &Path,
    sha256: &str,
    bytes: u64,
    now: Timestamp,
) -> rusqlite::Result<RowId> {
    let name = from.file_name();
    let running: Vec<(RowId, String)> = {
        let mut stmt = conn.prepare(
            "SELECT DISTINCT id, path FROM backups WHERE kind = 'full' AND status = 'running'",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let own = running
        .into_iter()
        .find(|(_, path)| Path::new(path).file_name() == name)
        .map(|(id, _)| id);
    let size = i64::try_from(bytes).unwrap_or(i64::MAX);
    let path = from_abs.to_string_lossy();
    match own {
        Some(id) => {
            conn.execute(
                "UPDATE backups SET status = 'ok', sha256 = ?2, size_bytes = ?3, path = ?4,
                                    finished_at = coalesce(finished_at, ?5)
                 WHERE id = ?1",
                params![id, sha256, size, path, now],
            )?;
            Ok(id)
        }
        None => {
            let id = RowId::new();
            conn.execute(
                "INSERT INTO backups (id, tenant_id, kind, destination_id, path, sha256,
                                      size_bytes, status, created_at, finished_at)
                 SELECT ?1, id, 'full', NULL, ?2, ?3, ?4, 'ok', ?5, ?5 FROM tenants",
                params![id, path, sha256, size, now],
            )?;
            Ok(id)
        }
    }
}

/// Copies the prepared file into the database in one transaction, under the exclusive lock,
/// and checks the result against the prepared copy's digest.
fn replace(
    db: &Path,
    staging: &Path,
    replaced: Option<Replaced>,
    digest: &str,
) -> Result<(), BackupError> {
    let failed = |e: &dyn std::fmt::Display| {
        BackupError::failed(
            BackupStep::Replace,
            db,
            e,
            "the database was not changed (the copy into it is one transaction)",
        )
    };
    let mut conn = match replaced {
        Some(r) => r.conn,
        None => {
            let conn = crate::store::vfs::open(db).map_err(|e| failed(&e))?;
            conn.pragma_update_and_check(None, "locking_mode", "EXCLUSIVE", |_| Ok(()))
                .map_err(|e| failed(&e))?;
            conn
        }
    };
    let src = Connection::open_with_flags(
        staging,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| failed(&e))?;
    {
        let copy = rusqlite::backup::Backup::new(&src, &mut conn).map_err(|e| failed(&e))?;
        // One step: the whole copy is one transaction of the database.
        match copy.step(-1).map_err(|e| failed(&e))? {
            rusqlite::backup::StepResult::Done => {}
            other => return Err(failed(&format!("the copy stopped early ({other:?})"))),
        }
    }
    drop(src);
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .map_err(|e| failed(&e))?;
    let restored = digest_connection(&conn).map_err(|e| failed(&e))?;
    if restored != digest {
        return Err(BackupError::failed(
            BackupStep::Replace,
            db,
            "the restored database differs from the prepared copy",
            "restore again from the same backup",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewTenant, Store};

    #[test]
    fn a_database_another_connection_has_open_is_refused_and_unchanged() -> crate::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("node.db");
        let store = Store::open(&db)?;
        store.add_tenant(&NewTenant::new("caps".parse()?, "Caps"))?;
        let report = super::super::create(
            &db,
            &dir.path().join("bk"),
            &super::super::CreateOptions::default(),
            &mut |_| {},
        )
        .map_err(|e| crate::Error::Migration(e.to_string()))?;
        store.add_tenant(&NewTenant::new("bolt".parse()?, "Bolt"))?;
        match restore(&db, &report.file.path, &mut |_| {}) {
            Err(BackupError::InUse { .. }) => {}
            other => panic!("expected InUse, got {other:?}"),
        }
        assert_eq!(store.tenants()?.len(), 2, "nothing was changed");
        assert!(!staging_path(&db).exists());
        drop(store);
        let restored = restore(&db, &report.file.path, &mut |_| {})
            .map_err(|e| crate::Error::Migration(e.to_string()))?;
        assert!(restored.same_terminal);
        assert_eq!(Store::open(&db)?.tenants()?.len(), 1);
        Ok(())
    }
}
