//! Adoption's one error type, and the mappings into it: SQLite's errors on a file that is not
//! what it should be ([`classify`]), a failed step ([`failed`]), and the backup kit's errors,
//! which keep the variants and wording adoption had before the kit was taken out of it
//! ([`AdoptError::from_backup`]).

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

use super::Step;
use crate::backup::SnapshotError as BackupError;

/// Why adoption or its rollback did not happen. In every case the database file holds what it
/// held before.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdoptError {
    /// The tenant's name or settings are not acceptable.
    #[error("invalid tenant: {0}")]
    Tenant(#[source] crate::Error),
    /// There is no file at the path.
    #[error("{path}: no such file (nothing was changed)")]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The file is not a SQLite database, or it is truncated or damaged.
    #[error("{path} is not a readable SQLite database ({reason}); nothing was changed")]
    NotSqlite {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        reason: String,
    },
    /// Another process holds a lock on the file.
    #[error(
        "{path} is locked by another process; close the application using it and try again \
         (nothing was changed)"
    )]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// The file is a SQLite database but not a legacy POS store.
    #[error("{path} is not a legacy POS store: {reason}; nothing was changed")]
    NotLegacy {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// The legacy store has something adoption cannot carry over faithfully.
    #[error("{path} cannot be adopted: {}{reason}; nothing was changed",
            table.as_deref().map(|t| format!("table {t}: ")).unwrap_or_default())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The table concerned, if one.
        table: Option<String>,
        /// What is in the way.
        reason: String,
    },
    /// The backup could not be written or hashed.
    #[error("backup to {path} failed: {reason}; nothing was changed")]
    Backup {
        /// The backup file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A step of the adoption failed; its transaction was rolled back.
    #[error("adoption failed at step {step}{}: {reason}; rolled back, the file is unchanged",
            table.as_deref().map(|t| format!(" on table {t}")).unwrap_or_default())]
    Failed {
        /// The step.
        step: Step,
        /// The table, when the step works table by table.
        table: Option<String>,
        /// What went wrong.
        reason: String,
    },
    /// The backup's recorded SHA-256 is missing or unreadable.
    #[error("cannot read the recorded checksum {path}: {reason}; nothing was restored")]
    Checksum {
        /// The checksum file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The backup does not match its recorded SHA-256.
    #[error(
        "backup {path} does not match its recorded SHA-256 (recorded {expected}, found {found}); \
         nothing was restored"
    )]
    ChecksumMismatch {
        /// The backup.
        path: PathBuf,
        /// The recorded digest.
        expected: String,
        /// The file's digest.
        found: String,
    },
    /// The database records no adoption, so no backup can be proven to be its own: it is not
    /// a store `pos-node adopt` made (or it was adopted before adoptions were recorded).
    #[error(
        "{db} records no adoption (no `bootstrap` entry of its tenant in audit_log names a \
         pre-adoption backup), so {backup} cannot be shown to be its own backup; nothing was \
         restored"
    )]
    NotAdopted {
        /// The database.
        db: PathBuf,
        /// The backup given.
        backup: PathBuf,
    },
    /// The backup is not the one the database's adoption took.
    #[error(
        "{backup} (SHA-256 {found}) is not the backup {db}'s adoption took ({recorded}); \
         nothing was restored"
    )]
    NotItsBackup {
        /// The database.
        db: PathBuf,
        /// The backup given.
        backup: PathBuf,
        /// The backup's SHA-256.
        found: String,
        /// What the database records: each backup its adoptions took, with its SHA-256.
        recorded: String,
    },
    /// Restoring the backup failed.
    #[error("restoring {backup} into {db} failed: {reason}")]
    Restore {
        /// The backup.
        backup: PathBuf,
        /// The database.
        db: PathBuf,
        /// Why.
        reason: String,
    },
}

impl AdoptError {
    /// The backup kit's error in adoption's words (the variants adoption has always had).
    pub(super) fn from_backup(e: BackupError) -> Self {
        match e {
            BackupError::NotFound { path } => AdoptError::NotFound { path },
            BackupError::Sqlite { path, source } => classify(&path, source),
            BackupError::Write { path, reason } => AdoptError::Backup { path, reason },
            BackupError::Checksum { path, reason } => AdoptError::Checksum { path, reason },
            BackupError::ChecksumMismatch {
                path,
                expected,
                found,
            } => AdoptError::ChecksumMismatch {
                path,
                expected,
                found,
            },
        }
    }
}

/// Maps SQLite's errors on a file that is not what it should be to the typed errors.
pub(super) fn classify(path: &Path, e: rusqlite::Error) -> AdoptError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => AdoptError::NotSqlite {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => AdoptError::Locked {
            path: path.to_path_buf(),
        },
        _ => AdoptError::Failed {
            step: Step::Audit,
            table: None,
            reason: e.to_string(),
        },
    }
}

/// A SQLite error at `step` (on `table`, when the step works table by table).
pub(super) fn failed(
    step: Step,
    table: Option<&str>,
) -> impl Fn(rusqlite::Error) -> AdoptError + '_ {
    move |e| AdoptError::Failed {
        step,
        table: table.map(str::to_owned),
        reason: e.to_string(),
    }
}
