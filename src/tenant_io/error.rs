//! The one error type of moving a tenant's rows in and out of a file, and the steps it names.

use std::fmt;
use std::path::PathBuf;

use crate::ids::TenantId;

/// The step of an export, a restore or an offboarding that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TenantIoStep {
    /// Reading the database or the file given, and the checks before anything is changed.
    Check,
    /// Copying the tenant's rows into the export file and checking the copy.
    Export,
    /// Hashing the export and writing its `.sha256`.
    Seal,
    /// Replacing the tenant's rows with the export's, and checking them.
    Restore,
    /// Deleting the tenant's rows.
    Delete,
    /// Proving that no row of the tenant remains.
    Prove,
    /// Recording the export or the restore (`backups`, `restore_jobs`).
    Record,
    /// Copying a tenant's rows to or from its own file, and checking the copy.
    Move,
    /// Switching a tenant's route to where its rows now are.
    Switch,
    /// Removing the copies a move kept for a way back, once their window is over.
    Purge,
}

impl fmt::Display for TenantIoStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TenantIoStep::Check => "check",
            TenantIoStep::Export => "export",
            TenantIoStep::Seal => "seal",
            TenantIoStep::Restore => "restore",
            TenantIoStep::Delete => "delete",
            TenantIoStep::Prove => "prove",
            TenantIoStep::Record => "record",
            TenantIoStep::Move => "move",
            TenantIoStep::Switch => "switch",
            TenantIoStep::Purge => "purge",
        })
    }
}

/// Why an export, a restore or an offboarding did not happen. In every case the node's
/// database holds what it held before (a failed export leaves no file behind either).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TenantIoError {
    /// The tenant is not registered on this node.
    #[error("no tenant {tenant} on this node (nothing was changed)")]
    UnknownTenant {
        /// The tenant asked for.
        tenant: TenantId,
    },
    /// The tenant has operations the central server has not acknowledged that the change
    /// would lose: all of them for offboarding, those the export does not hold for a restore.
    #[error(
        "tenant {tenant} has {pending} operations not yet synced{}{}; let sync send them \
         first, or pass --force to lose them (nothing was changed)",
        if *not_in_export { " that the export does not hold" } else { "" },
        if *set_aside > 0 { format!(" ({set_aside} of them set aside by the server)") } else { String::new() }
    )]
    Unsynced {
        /// The tenant.
        tenant: TenantId,
        /// Operations without the server's acknowledgement that would be lost, set aside ones
        /// included.
        pending: u64,
        /// Of those, the ones the server refused for good (kept for a person).
        set_aside: u64,
        /// Whether the count leaves out operations the export holds (a restore).
        not_in_export: bool,
    },
    /// The export's destination already exists; an export never overwrites a file.
    #[error("{path} already exists; an export never overwrites a file (nothing was changed)")]
    DestinationExists {
        /// The destination.
        path: PathBuf,
    },
    /// The export's destination cannot be written (a missing directory, not a directory,
    /// read-only, a full disk).
    #[error("cannot write the export to {path}: {reason}; nothing was changed")]
    Destination {
        /// The destination.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// There is no file at the path.
    #[error("{path}: no such file (nothing was changed)")]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The export's recorded SHA-256 (`<export>.sha256`) is missing or unreadable.
    #[error("cannot read the recorded checksum {path}: {reason}; nothing was changed")]
    NoChecksum {
        /// The checksum file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The export does not match its recorded SHA-256: truncated, changed or damaged.
    #[error(
        "{path} does not match its recorded SHA-256 (recorded {expected}, the file hashes to \
         {found}); it is never restored, nothing was changed"
    )]
    ChecksumMismatch {
        /// The export.
        path: PathBuf,
        /// The recorded digest.
        expected: String,
        /// The file's digest.
        found: String,
    },
    /// The file is not a tenant export: not SQLite, damaged, a whole-node backup, or holding
    /// rows it should not.
    #[error("{path} is not a tenant export: {reason}; nothing was changed")]
    NotAnExport {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// The export is of another tenant.
    #[error(
        "{path} is an export of tenant {found}, not of {expected}; a tenant's data is never \
         restored as another's (nothing was changed)"
    )]
    WrongTenant {
        /// The export.
        path: PathBuf,
        /// The tenant asked for.
        expected: TenantId,
        /// The tenant the export is of.
        found: TenantId,
    },
    /// The export was written at another schema version than this build's.
    #[error(
        "{path} is at schema version {found}, this pos-tenancy at {supported}; restore it with \
         the version that wrote it (nothing was changed)"
    )]
    SchemaMismatch {
        /// The export.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// This build's.
        supported: i64,
    },
    /// The tenant already lives where the move would put it.
    #[error("tenant {tenant} already lives in {lives_in} (nothing was changed)")]
    AlreadyThere {
        /// The tenant.
        tenant: TenantId,
        /// `its own file` or `the shared file`.
        lives_in: &'static str,
    },
    /// Tenants' own files live beside the node's shared file: an in-memory store, or a
    /// tenant's own file opened as a store, cannot move tenants.
    #[error("{store} cannot hold tenants in files of their own: open the node's shared file (nothing was changed)")]
    NoTenantFiles {
        /// What the store is.
        store: &'static str,
    },
    /// A rollback window longer than a stored time can hold.
    #[error("a window of {days} days is too long: at most {max} (nothing was changed)")]
    KeepDays {
        /// The days asked for.
        days: u32,
        /// The most allowed.
        max: u32,
    },
    /// A step about the node rather than one tenant (a purge, the automatic rule's check)
    /// failed; its transaction was rolled back.
    #[error("{step} failed: {reason}; {left}")]
    NodeFailed {
        /// The step.
        step: TenantIoStep,
        /// What went wrong.
        reason: String,
        /// What was left as it was.
        left: String,
    },
    /// The store's connection is inside a transaction of the caller's.
    #[error("a transaction is open on this store; finish it first (nothing was changed)")]
    TransactionOpen,
    /// A step failed; its transaction was rolled back.
    #[error("{step} of tenant {tenant} failed: {reason}; {left}")]
    Failed {
        /// The step.
        step: TenantIoStep,
        /// The tenant.
        tenant: TenantId,
        /// What went wrong.
        reason: String,
        /// What was left as it was.
        left: String,
    },
}
