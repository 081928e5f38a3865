//! Rolling an adoption back: the backup it took is restored into the database, but only after
//! the backup matches the SHA-256 recorded beside it, and the restored file is then proven
//! equal to the backup by their canonical digests. The database is never created: a mistyped
//! path must not become a restored copy somewhere else.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::error::{classify, AdoptError};
use super::report::RollbackReport;
use crate::backup::{digest_connection, verify_checksum, BACKUP_PAGES_PER_STEP, LOCK_WAIT};

/// Restores the backup adoption took into `db`, after checking the backup against the SHA-256
/// recorded in `<backup>.sha256`. The restored database's canonical digest is checked against
/// the backup's.
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
    let src = Connection::open_with_flags(
        backup,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| restore_failed(classify(backup, e)))?;
    let backup_digest = digest_connection(&src).map_err(|e| restore_failed(classify(backup, e)))?;
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
    {
        let copy = rusqlite::backup::Backup::new(&src, &mut dst)
            .map_err(|e| restore_failed(classify(db, e)))?;
        copy.run_to_completion(BACKUP_PAGES_PER_STEP, Duration::from_millis(10), None)
            .map_err(|e| match e.sqlite_error_code() {
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => AdoptError::Locked {
                    path: db.to_path_buf(),
                },
                _ => restore_err(e.to_string()),
            })?;
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
