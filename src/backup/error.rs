//! The one error type of whole-node backups, and the step each failure happened at.

use std::fmt;
use std::path::PathBuf;

use crate::ids::RowId;

/// The step of a backup, restore or prune that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackupStep {
    /// Opening the node database and reading what the step needs from it.
    Open,
    /// Writing the backup's rows in `backups` (or the restore's in `restore_jobs`).
    Record,
    /// Copying the database with the online backup API.
    Copy,
    /// Hashing the copy and writing its `.sha256`.
    Seal,
    /// Checking a copy: its checksum, `integrity_check`, that it is a node database.
    Check,
    /// Preparing the restored copy (identity, clock, the backup log) beside the database.
    Prepare,
    /// Replacing the database with the prepared copy.
    Replace,
    /// Removing backups that retention no longer keeps.
    Prune,
}

impl fmt::Display for BackupStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackupStep::Open => "open",
            BackupStep::Record => "record",
            BackupStep::Copy => "copy",
            BackupStep::Seal => "seal",
            BackupStep::Check => "check",
            BackupStep::Prepare => "prepare",
            BackupStep::Replace => "replace",
            BackupStep::Prune => "prune",
        })
    }
}

/// Why a backup, a check, a restore or a prune did not happen. Each says what was left: a
/// refused restore changed nothing, a failed backup removed its half-written copy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// There is no file at the path.
    #[error("{path}: no such file (nothing was changed)")]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The file is not a node database (or backup of one): not SQLite, truncated, or another
    /// application's.
    #[error("{path} is not a node database or a backup of one: {reason}; nothing was changed")]
    NotANode {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// The file is one tenant's export, which `restore_tenant` restores, not a whole node.
    #[error(
        "{path} is a tenant export, not a backup of a node; restore it with \
         `pos-node restore --tenant` (nothing was changed)"
    )]
    TenantExport {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a newer version of this crate.
    #[error(
        "{path} is at schema version {found}, newer than the {supported} this pos-tenancy \
         knows; nothing was changed"
    )]
    SchemaTooNew {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// Another connection (a till, a sync engine, another `pos-node`) has the database open.
    #[error(
        "{path} is in use by another process; close the till and any other program using it, \
         then try again (nothing was changed)"
    )]
    InUse {
        /// The database.
        path: PathBuf,
    },
    /// The backup's recorded SHA-256 is missing or unreadable.
    #[error("cannot read the recorded checksum {path}: {reason}; nothing was changed")]
    NoChecksum {
        /// The checksum file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The backup does not match its recorded SHA-256: it was changed or damaged after it was
    /// taken, and is never restored.
    #[error(
        "{path} does not match its recorded SHA-256 ({recorded_in} says {expected}, the file \
         hashes to {found}); it is never restored, nothing was changed"
    )]
    ChecksumMismatch {
        /// The backup.
        path: PathBuf,
        /// Where the expected digest was recorded (the `.sha256` file or the `backups` table).
        recorded_in: String,
        /// The recorded digest.
        expected: String,
        /// The file's digest.
        found: String,
    },
    /// The backup hashes as recorded but SQLite finds it damaged.
    #[error("{path} fails integrity_check: {reason}; it is never restored, nothing was changed")]
    Damaged {
        /// The backup.
        path: PathBuf,
        /// The first problems `integrity_check` reported.
        reason: String,
    },
    /// A backup's tenant files do not match its copy of the shared file: a tenant its
    /// registry routes to a file of its own has none (or not that tenant's, or another
    /// node's), or `SHA256SUMS` is missing or lists other files. It is never restored.
    #[error(
        "the tenant files of {path} do not match it: {reason}; it is never restored, nothing \
         was changed"
    )]
    TenantFiles {
        /// The backup, or the tenant file concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No backup with this id is recorded.
    #[error("no backup {id} is recorded in this node database (see `pos-node backup list`)")]
    UnknownBackup {
        /// The id asked for.
        id: RowId,
    },
    /// The destination cannot be written (missing, not a directory, read-only, full).
    #[error("cannot write to {path}: {reason}; nothing was changed")]
    Destination {
        /// The destination.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A step failed; what it had done is undone (a half-written copy removed, a transaction
    /// rolled back).
    #[error("backup {step} failed on {path}: {reason}; {left}")]
    Failed {
        /// The step.
        step: BackupStep,
        /// The file the step worked on.
        path: PathBuf,
        /// What went wrong.
        reason: String,
        /// What was left as it was.
        left: &'static str,
    },
}

impl BackupError {
    /// A failed step on `path`, with what it left as it was.
    pub(crate) fn failed(
        step: BackupStep,
        path: impl Into<PathBuf>,
        reason: impl fmt::Display,
        left: &'static str,
    ) -> Self {
        BackupError::Failed {
            step,
            path: path.into(),
            reason: reason.to_string(),
            left,
        }
    }
}
