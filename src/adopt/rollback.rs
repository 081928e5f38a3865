//! Rolling an adoption back: the backup it took is restored into the database, but only after
//! the backup matches the SHA-256 recorded beside it and is the one the database's own
//! adoption recorded taking, and the restored file is then proven equal to the backup by their
//! canonical digests. The database is never created: a mistyped path must not become a
//! restored copy somewhere else. A database another process holds is given up on after
//! [`LOCK_WAIT`] (the store's own busy timeout, [`BUSY_TIMEOUT`](crate::BUSY_TIMEOUT), is
//! longer), with nothing changed.
//!
//! Why the record: a `.sha256` beside a file only says the file is whole, not whose it is. Any
//! SQLite file with a matching `.sha256` (another store's backup, a node backup) was restored
//! over a node database; now the adoption writes, in its own transaction, which backup it
//! took ([`record_backup`]), and a rollback restores only that one.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::StepResult;
use rusqlite::{params, Connection, ErrorCode, OpenFlags};

use super::error::{classify, AdoptError};
use super::report::RollbackReport;
use super::BackupFile;
use crate::backup::{digest_connection, verify_checksum, BACKUP_PAGES_PER_STEP, LOCK_WAIT};
use crate::ids::{RowId, TenantId, Timestamp};

/// Records in the adopted database which backup the adoption took: an `audit_log` row of the
/// tenant (action `bootstrap`, table `tenants`, row the tenant's id, no actor) whose detail is
/// `{"adopted_from": {"backup": path, "sha256": hex, "bytes": n}}`. Written inside the
/// adoption's transaction, so an adopted file always names its backup. `audit_log` is written
/// only by the crate and never synced, so a tenant cannot forge one.
pub(super) fn record_backup(
    conn: &Connection,
    tenant: &TenantId,
    backup: &BackupFile,
) -> rusqlite::Result<()> {
    let detail = serde_json::json!({
        "adopted_from": {
            "backup": backup.path.to_string_lossy(),
            "sha256": backup.sha256,
            "bytes": backup.bytes,
        }
    });
    conn.execute(
        "INSERT INTO audit_log (id, tenant_id, at, actor_user_id, action, table_name, row_id, detail)
         VALUES (?1, ?2, ?3, NULL, 'bootstrap', 'tenants', ?2, ?4)",
        params![RowId::new(), tenant, Timestamp::now(), detail.to_string()],
    )?;
    Ok(())
}

/// The backups the database's adoptions recorded taking, as `(path, sha256)`; none for a file
/// that has no `audit_log` (a legacy file, something else).
fn recorded_backups(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let has_log: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_list WHERE schema = 'main' AND name = 'audit_log')",
        [],
        |r| r.get(0),
    )?;
    if !has_log {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT coalesce(json_extract(detail, '$.adopted_from.backup'), ''),
                json_extract(detail, '$.adopted_from.sha256')
         FROM audit_log
         WHERE action = 'bootstrap' AND table_name = 'tenants' AND row_id = tenant_id
           AND json_valid(detail) AND json_type(detail, '$.adopted_from.sha256') = 'text'",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Restores the backup adoption took into `db`, after checking the backup against the SHA-256
/// recorded in `<backup>.sha256` and against the backup `db`'s adoption recorded taking
/// ([`AdoptError::NotAdopted`], [`AdoptError::NotItsBackup`]). The restored database's
/// canonical digest is checked against the backup's. A database another process has locked
/// is reported as [`AdoptError::Locked`] after two seconds; in every refusal the database is
/// left as it was.
pub fn rollback(db: &Path, backup: &Path) -> Result<RollbackReport, AdoptError> {
    let started = Instant::now();
    // A SQLite error that is neither a bad file nor a lock is a failed restore, not a failed
    // adoption step.
    let restore_failed = |e: AdoptError| match e {
        AdoptError::Failed { reason, .. } => AdoptError::Restore {
            backup: backup.to_path_buf(),
            db: db.to_path_buf(),
            reason,
        },
        other => other,
    };
    if !backup.is_file() {
        return Err(AdoptError::NotFound {
            path: backup.to_path_buf(),
        });
    }
    let found = verify_checksum(backup).map_err(AdoptError::from_backup)?;
    let restore_err = |reason: String| AdoptError::Restore {
        backup: backup.to_path_buf(),
        db: db.to_path_buf(),
        reason,
    };
    // Never create the database: a mistyped --db must not become a restored copy elsewhere.
    if !db.is_file() {
        return Err(AdoptError::NotFound {
            path: db.to_path_buf(),
        });
    }
    let mut dst = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| restore_failed(classify(db, e)))?;
    dst.busy_timeout(LOCK_WAIT)
        .map_err(|e| restore_failed(classify(db, e)))?;
    // Only this database's own pre-adoption backup goes over it.
    let recorded = recorded_backups(&dst).map_err(|e| restore_failed(classify(db, e)))?;
    if recorded.is_empty() {
        return Err(AdoptError::NotAdopted {
            db: db.to_path_buf(),
            backup: backup.to_path_buf(),
        });
    }
    if !recorded
        .iter()
        .any(|(_, sha)| sha.eq_ignore_ascii_case(&found))
    {
        let recorded = recorded
            .iter()
            .map(|(path, sha)| format!("{path}, SHA-256 {sha}"))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(AdoptError::NotItsBackup {
            db: db.to_path_buf(),
            backup: backup.to_path_buf(),
            found,
            recorded,
        });
    }
    let src = Connection::open_with_flags(
        backup,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| restore_failed(classify(backup, e)))?;
    src.busy_timeout(LOCK_WAIT)
        .map_err(|e| restore_failed(classify(backup, e)))?;
    let backup_digest = digest_connection(&src).map_err(|e| restore_failed(classify(backup, e)))?;
    {
        let copy = rusqlite::backup::Backup::new(&src, &mut dst)
            .map_err(|e| restore_failed(classify(db, e)))?;
        // Not `run_to_completion`: it retries a busy file forever. Each step waits up to
        // LOCK_WAIT in SQLite's busy handler; a file still busy LOCK_WAIT after the first busy
        // step is given up on, and dropping the copy rolls its transaction back.
        let mut busy_since: Option<Instant> = None;
        loop {
            let step =
                copy.step(BACKUP_PAGES_PER_STEP)
                    .map_err(|e| match e.sqlite_error_code() {
                        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                            AdoptError::Locked {
                                path: db.to_path_buf(),
                            }
                        }
                        _ => restore_err(e.to_string()),
                    })?;
            match step {
                StepResult::Done => break,
                StepResult::More => busy_since = None,
                _ => {
                    if busy_since.get_or_insert_with(Instant::now).elapsed() >= LOCK_WAIT {
                        return Err(AdoptError::Locked {
                            path: db.to_path_buf(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
    // The copy keeps the destination's journal mode (WAL after adoption); the legacy
    // application gets back the mode its file had.
    let mode: String = src
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(|e| restore_err(e.to_string()))?;
    dst.pragma_update_and_check(None, "journal_mode", &mode, |_| Ok(()))
        .map_err(|e| restore_err(e.to_string()))?;
    let restored = digest_connection(&dst).map_err(|e| restore_err(e.to_string()))?;
    if restored != backup_digest {
        return Err(restore_err(
            "the restored database differs from the backup".into(),
        ));
    }
    Ok(RollbackReport {
        db: db.to_path_buf(),
        backup: backup.to_path_buf(),
        sha256: found,
        canonical_digest: restored,
        seconds: started.elapsed().as_secs_f64(),
    })
}
