//! Snapshots of a database and the digests that prove two copies equal: the kit adoption uses
//! before it changes a file, and that export, restore and tier promotion are to build on.
//!
//! - [`snapshot`]: a copy taken with SQLite's online backup API while the source stays open,
//!   its SHA-256 recorded beside it (`<copy>.sha256`, in `sha256sum` format), and the check of
//!   a copy against that record before it is used.
//! - [`digest`]: the canonical digest of a whole database (its schema and rows in a canonical
//!   order, so that files with the same content have the same digest whatever their page
//!   layout), and the order-independent row digest as an SQL aggregate, which compares a table
//!   before and after a copy without sorting either.
//! - [`progress`]: how far a copy has come, for a progress bar.
//!
//! Nothing here knows tenants or the catalog: it works on any SQLite file, and the store's
//! invariants are the caller's to keep. Failures are [`BackupError`]s, which each caller maps
//! into its own error with its own wording (what was or was not changed is the caller's to say).

use std::path::PathBuf;
use std::time::Duration;

mod digest;
mod progress;
mod snapshot;

pub(crate) use digest::{
    canonical_digest, digest_connection, ident, install_digests, schema_objects, Tap,
};
pub(crate) use progress::Pages;
pub(crate) use snapshot::{take_snapshot, verify_checksum, PendingBackup, BACKUP_PAGES_PER_STEP};
// Public through `adopt`, whose report and API have named them since before this module.
pub use snapshot::{checksum_path, BackupFile};

/// How long the kit, and adoption with it, waits for another process's lock before it reports
/// the file as locked.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Why a snapshot, its checksum or a digest could not be taken or checked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BackupError {
    /// There is no file at the path.
    #[error("{path}: no such file")]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// SQLite could not open or read the database: not a database, damaged, or locked.
    #[error("{path}: {source}")]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The snapshot could not be written or hashed; a half-written copy has been removed.
    #[error("snapshot to {path} failed: {reason}")]
    Write {
        /// The snapshot file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The snapshot's recorded SHA-256 is missing or unreadable.
    #[error("cannot read the recorded checksum {path}: {reason}")]
    Checksum {
        /// The checksum file (or the snapshot, when it is the snapshot that cannot be read).
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The snapshot does not match its recorded SHA-256.
    #[error("{path} does not match its recorded SHA-256 (recorded {expected}, found {found})")]
    ChecksumMismatch {
        /// The snapshot.
        path: PathBuf,
        /// The recorded digest.
        expected: String,
        /// The file's digest.
        found: String,
    },
}

/// Lowercase hex of a digest.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
