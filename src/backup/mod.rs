//! Backups of a whole node: taken while the till keeps selling, recorded in the `backups`
//! table with their SHA-256, checked, restored, and pruned by each tenant's retention.
//!
//! ```no_run
//! use std::path::Path;
//! use pos_tenancy::backup::{self, CreateOptions};
//!
//! let db = Path::new("node.db");
//! let report = backup::create(db, Path::new("backups/"), &CreateOptions::default(), &mut |_| {})?;
//! println!("{} ({} bytes, SHA-256 {})", report.file.path.display(), report.file.bytes, report.file.sha256);
//! for check in backup::verify(db, Some(report.id))? {
//!     assert!(check.problem.is_none());
//! }
//! backup::restore(db, &report.file.path, &mut |_| {})?; // with the till closed
//! # Ok::<(), pos_tenancy::backup::BackupError>(())
//! ```
//!
//! - [`create`]: a copy with SQLite's online backup API, inside one read transaction of its own
//!   connection (so other connections' commits neither restart it nor wait for it: in WAL mode
//!   a reader never blocks a writer), a few pages a step; its SHA-256 beside it
//!   (`<copy>.sha256`, `sha256sum` format) and in `backups`; then [`prune`].
//! - [`list`], [`verify`] (re-hash against the table and the `.sha256`, then
//!   `integrity_check` on a read-only open), [`restore`] (the whole node, refused over a file
//!   another connection has open, never from a copy that fails its checksum), [`prune`] with a
//!   [`Retention`] per tenant. Each covers the dedicated tenants' own files (below).
//!
//! How a whole-node backup is recorded: `backups` is a tenant table, so a backup of the node
//! is one row *per tenant on the node*, all with the same id. Each tenant's admins then see,
//! through their own handle, that their data is in that file and where; each tenant's own
//! retention (its `backup_settings`, or its plan's default) decides how long *its* row is
//! kept, and the file goes when no tenant's row names it any more. Recording it only for a
//! tenant that asked would hide from every other tenant a file that holds its rows, and let
//! one tenant's retention delete another's backup.
//!
//! The rows are written (`running`) before the copy starts, so a backup contains its own
//! record; a restore marks it `ok` with its checksum. The backup log (`backups`,
//! `restore_jobs`) is the node's history rather than data to rewind: a restore carries the
//! replaced file's log over, so the backups taken after the one restored stay listed (and can
//! be restored in turn), and retention keeps governing them.
//!
//! ## Tenants with a file of their own
//!
//! A tenant promoted to a file of its own (`Store::promote_tenant`) has its rows there, not in
//! the shared file, so a backup of the node copies those files too. Layout, for a backup
//! `<dir>/<node>.backup-<time>.db`:
//!
//! ```text
//! <node>.backup-<time>.db            the shared file (registry, routes, every shared tenant)
//! <node>.backup-<time>.db.sha256
//! <node>.backup-<time>.db.tenants/   only when some tenant has a file of its own
//!     <tenant>-<move id>.db          each dedicated tenant's file, named as its route names it
//!     <tenant>-<move id>.db.sha256
//!     SHA256SUMS                     every tenant file with its SHA-256, written last
//! ```
//!
//! The same layout as a node's (`<db>.tenants/` beside the shared file). A node whose tenants
//! all live in the shared file gets exactly the backup it got before tenant files existed:
//! one file and its `.sha256`, listed as before; so does every backup taken before.
//!
//! Which tenant files a backup must have is what its copy of the shared file routes to (its
//! registry's dedicated tenants and their newest promotions). That copy is covered by the
//! SHA-256 in `backups` and beside it, so a missing or extra part is found: [`verify`] checks
//! each part against its `.sha256` and `SHA256SUMS`, runs `integrity_check` on it, and checks
//! it is that tenant's file of the node; [`restore`] refuses a backup any part of which fails.
//!
//! Consistency. Each file is copied inside one read transaction of its own, as the shared
//! file is, so no sale waits on any of them (a tenant file not opened since its promotion is
//! still in rollback-journal mode, where a reader blocks writers: it is switched to WAL first,
//! as its first open would); the tenant files first, each at its own instant,
//! then the shared file. A dedicated tenant's rows, outbox, sync state and clock are all in
//! its one file, so each tenant is restored consistent in itself, as of the instant its file
//! was copied; the shared file (its registry, the shared tenants, the backup log) is of a
//! slightly later instant. What ties them is the routes, and those are checked: inside the
//! shared copy's read transaction, before it copies, its routes must be those the tenant
//! files were copied for. If a promotion or demotion ran in between, the tenant files are
//! copied again, once; if the routes changed again, the backup fails, saying so, and removes
//! what it copied.
//!
//! Restoring puts each tenant file in `<db>.tenants/` under the backup's name, or under a new
//! name (the restored route then names it) when the node being replaced has a file of that
//! name: the replaced node's files are never written. The tenant files are prepared, synced
//! and named first, then the shared file is replaced in one transaction: that commit switches
//! every route at once. A failure before it removes the files it placed; a crash before it
//! leaves them as files no route names, which `Store::purge_moved_copies` removes. The
//! replaced node's tenant files stay where they were, named by no route of the restored node,
//! until a purge removes them. Each restored file gets the restored node's id, and every clock
//! is raised past the replaced node's clocks (shared file and tenant files), so no stamp goes
//! back.
//!
//! The same folder keeps the kit that adoption and the tenant export build on: `snapshot`
//! (online copy, sealing a file with its checksum), `digest` (canonical digests of a
//! database, order-independent row digests), `progress` ([`Pages`]). The kit knows neither
//! tenants nor the catalog; its failures are `SnapshotError`s that each caller words itself.

use std::path::PathBuf;
use std::time::Duration;

mod digest;
mod error;
mod log;
mod node;
mod progress;
mod restore;
mod retention;
mod snapshot;
mod tenant_files;

pub(crate) use digest::{
    canonical_digest, digest_connection, feed_value, ident, install_digests, schema_objects, Tap,
};
pub(crate) use snapshot::{
    seal, sha256_file, sync_dir, take_snapshot, verify_checksum, PendingBackup,
    BACKUP_PAGES_PER_STEP,
};

pub use error::{BackupError, BackupStep};
pub(crate) use log::{is_backup_log, mend_log};
pub(crate) use node::{check_checksum, describe, inspect_copy};
pub use node::{
    create, list, verify, BackupCheck, BackupEntry, BackupKind, BackupReport, BackupStatus,
    CreateOptions,
};
pub use progress::Pages;
pub use restore::{restore, RestoreReport};
pub use retention::{
    prune, PruneOptions, PruneReport, PrunedBackup, Retention, DEFAULT_DAILY_DAYS,
    DEFAULT_KEEP_LAST,
};
pub use tenant_files::{RestoredTenantFile, TenantFileCheck, TenantFileCopy, TenantFilePart};
// Also public through `adopt`, whose report and API have named them since before this module.
pub use snapshot::{checksum_path, BackupFile};

/// How long the kit, and adoption with it, waits for another process's lock before it reports
/// the file as locked.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Why a snapshot, its checksum or a digest could not be taken or checked (the kit's error;
/// each caller maps it into its own).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SnapshotError {
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
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
