//! Adoption of a legacy single-tenant store in place.
//!
//! A store that ran the single-tenant version of this POS has the same tables without
//! `tenant_id` and without a tenants registry. [`adopt`] turns that file into a current
//! multi-tenant store whose rows all belong to one tenant, in one transaction:
//!
//! 1. *prepare*: audit the schema and count every table's rows (a dry run stops here), then copy
//!    the file with SQLite's online backup API and record the copy's SHA-256 beside it (and,
//!    in the adopted file, which backup it took: see [`rollback`](fn@rollback));
//! 2. *rebuild* (SQLite's ALTER TABLE cannot change constraints, so this follows SQLite's
//!    table-rebuild procedure): the legacy tables are renamed aside, the current schema is created
//!    exactly as the crate's migrations create it, and every row is copied with the tenant's id
//!    (with the triggers that keep the balances set aside: the balance tables are then filled
//!    with one grouped sum of each ledger, and the triggers put back);
//! 3. *validate* before commit: equal row counts, no row of another or no tenant, every other
//!    column of every row unchanged (an order-independent digest of both tables), then
//!    `foreign_key_check` and `integrity_check`.
//!
//! Whatever the store does not know is kept: extra columns, extra indexes (rescoped with
//! `tenant_id` leading), extra UNIQUE constraints (as tenant-scoped unique indexes), triggers,
//! views and virtual tables. Any failure rolls the transaction back and leaves the file as it
//! was; a process killed mid-way leaves SQLite's journal, which the next opener rolls back.
//! [`rollback`](fn@rollback) restores the backup afterwards, after checking its SHA-256 and that
//! it is the backup the file's adoption recorded taking.
//!
//! The backup and the digests come from the crate's backup kit, which knows nothing of
//! adoption and serves any other long operation too. The files here follow the steps: `audit` (open, inspect, plan), `rebuild`
//! (the order of the steps in one transaction: set aside, create the schema, finish), `copy`
//! (copy and validate each table), `indexes` (indexes and balances), `checks` (foreign keys and
//! integrity), `rollback`, `report` (progress, reports, step timings) and `error`.
//!
//! ```
//! use pos_tenancy::adopt::{adopt, AdoptOptions, Outcome};
//! # let dir = std::env::temp_dir().join(format!("pos-adopt-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let db = dir.join("legacy.db");
//! # let _ = std::fs::remove_file(&db);
//! // A (tiny) legacy store: the old schema had no tenant_id.
//! let legacy = rusqlite::Connection::open(&db)?;
//! legacy.execute_batch(
//!     "CREATE TABLE product_categories (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,
//!          parent_id TEXT REFERENCES product_categories(id), created_at TEXT NOT NULL);
//!      INSERT INTO product_categories VALUES ('0192f3a0-0000-7000-8000-000000000001',
//!          'Filters', NULL, '2026-01-01T09:00:00.000Z');",
//! )?;
//! drop(legacy);
//!
//! let options = AdoptOptions::new("caps-automotive".parse()?, "Caps Automotive")
//!     .backup_dir(&dir);
//! let Outcome::Adopted(report) = adopt(&db, &options, &mut |_| {})? else {
//!     panic!("a legacy file is adopted");
//! };
//! assert_eq!(report.total_rows_after, 1);
//! let store = pos_tenancy::Store::open(&db)?;
//! assert!(store.verify()?.is_ok());
//! # drop(store);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use crate::backup::{self, Pages, PendingBackup};
use crate::ids::{TenantId, Timestamp};
use crate::tenant::settings::{NewTenant, Plan};

mod audit;
mod checks;
mod copy;
mod error;
mod indexes;
mod rebuild;
mod report;
mod rollback;

pub use crate::backup::{checksum_path, BackupFile};
pub use audit::{AdoptPlan, TablePlan};
pub use error::AdoptError;
pub use report::{AdoptReport, Outcome, Progress, RollbackReport, TableReport};
pub use rollback::rollback;

use audit::{audit, open_existing, plan_of, reference, FileKind};
use error::classify;
use rebuild::rebuild;

/// The prefix legacy tables are renamed to while their rows are copied.
const LEGACY_PREFIX: &str = "adopt_legacy_";

/// What to adopt the file as.
#[derive(Debug, Clone)]
pub struct AdoptOptions {
    /// The tenant every existing row will belong to.
    pub tenant: TenantId,
    /// The tenant's display name.
    pub name: String,
    /// The tenant's plan (and so its limits).
    pub plan: Plan,
    /// Audit and print the plan only; change nothing and write no backup.
    pub dry_run: bool,
    /// Where the backup goes; the database's own directory when `None`.
    pub backup_dir: Option<PathBuf>,
}

impl AdoptOptions {
    /// Options for adopting as `tenant` named `name`, on the default plan, with the backup
    /// beside the database.
    pub fn new(tenant: TenantId, name: impl Into<String>) -> Self {
        Self {
            tenant,
            name: name.into(),
            plan: Plan::Free,
            dry_run: false,
            backup_dir: None,
        }
    }

    /// Only audit and plan.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Writes the backup into `dir`.
    pub fn backup_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.backup_dir = Some(dir.into());
        self
    }
}

/// A step of adoption, named in errors and timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// Reading the legacy schema and counting rows.
    Audit,
    /// Copying the file with the online backup API and hashing the copy.
    Backup,
    /// Taking the write lock and setting legacy objects aside.
    Prepare,
    /// Creating the current schema and registering the tenant.
    CreateSchema,
    /// Copying a table's rows with the tenant's id.
    Copy,
    /// Comparing a table's rows before and after.
    Validate,
    /// Building indexes (the schema's and the rescoped extra ones).
    Index,
    /// Filling the kept balances (stock on hand, card, points, credit) from their ledgers and
    /// putting back the triggers that keep them.
    Balances,
    /// Putting back triggers and views.
    Restore,
    /// `PRAGMA foreign_key_check`.
    ForeignKeyCheck,
    /// `PRAGMA integrity_check`.
    IntegrityCheck,
    /// Committing.
    Commit,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Step::Audit => "audit",
            Step::Backup => "backup",
            Step::Prepare => "prepare",
            Step::CreateSchema => "create-schema",
            Step::Copy => "copy",
            Step::Validate => "validate",
            Step::Index => "index",
            Step::Balances => "balances",
            Step::Restore => "restore",
            Step::ForeignKeyCheck => "foreign-key-check",
            Step::IntegrityCheck => "integrity-check",
            Step::Commit => "commit",
        };
        f.write_str(name)
    }
}

/// A SHA-256 over a database's schema and every row of every table, in a canonical order
/// (schema objects by type and name, tables by name, rows by all their columns). Two files with
/// the same digest hold the same schema and the same rows, whatever their page layout.
pub fn canonical_digest(path: &Path) -> Result<String, AdoptError> {
    backup::canonical_digest(path).map_err(AdoptError::from_backup)
}

/// Adopts the legacy store at `path` as the tenant in `options`; see the [module](self) docs.
///
/// `progress` hears about long steps (for a progress bar); pass `&mut |_| {}` to ignore them.
/// A file that already is a multi-tenant store is left alone ([`Outcome::AlreadyMultiTenant`]);
/// a dry run returns the plan ([`Outcome::Planned`]).
pub fn adopt(
    path: &Path,
    options: &AdoptOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Outcome, AdoptError> {
    let started = Instant::now();
    let mut new_tenant = NewTenant::new(options.tenant.clone(), &options.name);
    new_tenant.plan = options.plan;
    crate::store::check_new_tenant(&new_tenant).map_err(AdoptError::Tenant)?;
    let mut conn = open_existing(path)?;
    let (reference_conn, reference) = reference().map_err(|e| AdoptError::Failed {
        step: Step::Audit,
        table: None,
        reason: format!("cannot build the current schema: {e}"),
    })?;
    let mut steps = BTreeMap::new();

    // Foreign keys are checked once, over the finished tables; the pragma is a no-op inside a
    // transaction, so it is set first. Renames must not rewrite the legacy tables' references.
    // Pages are read through a memory map (SQLite caps it at its compile-time maximum): the
    // copy, index builds and both checks read more pages than the cache holds, and a mapped
    // page costs no read call and no copy (about 1 s of 12 at 1,000,000 rows). Writes still
    // go through the page cache and the journal, so a crash leaves what it left before.
    let setup = "PRAGMA foreign_keys = OFF; PRAGMA legacy_alter_table = ON; \
                 PRAGMA cache_size = -131072; PRAGMA threads = 2; PRAGMA temp_store = MEMORY; \
                 PRAGMA mmap_size = 4294967296;";
    conn.execute_batch(setup).map_err(|e| classify(path, e))?;
    // One transaction from the audit to the commit. It starts as a read because SQLite's
    // backup API refuses a source connection that is writing; the first change upgrades it.
    // In rollback-journal mode (the legacy app's) the read's shared lock keeps other processes
    // from committing meanwhile; in WAL mode one may, and the upgrade then fails with
    // SQLITE_BUSY_SNAPSHOT, reported as a locked file with the stale backup removed.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Deferred)
        .map_err(|e| classify(path, e))?;
    let audit_started = Instant::now();
    let audit = match audit(&tx, path, &reference, &reference_conn)? {
        FileKind::MultiTenant => return already_multi_tenant(&tx, path),
        FileKind::Legacy(audit) => audit,
    };
    let plan = plan_of(path, options, &audit, &reference);
    steps.insert(Step::Audit, audit_started.elapsed().as_secs_f64());
    if options.dry_run {
        return Ok(Outcome::Planned(plan));
    }
    progress(Progress::Planned {
        tables: plan.tables.len(),
        rows: plan.total_rows,
    });

    let backup_started = Instant::now();
    let backup = take_backup(&tx, path, options, progress)?;
    steps.insert(Step::Backup, backup_started.elapsed().as_secs_f64());

    // Take the write lock now, with the file unchanged (rewriting user_version with its own
    // value), so that a busy file is reported as locked rather than as a failed step.
    let locked = tx
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .and_then(|v| tx.execute_batch(&format!("PRAGMA user_version = {v}")));
    if let Err(e) = locked {
        // Another process writes to the file: the backup may already be stale, and nothing
        // was adopted, so it goes.
        backup.discard();
        return Err(classify(path, e));
    }
    let rebuilt = rebuild(&tx, &audit, &reference, &new_tenant, &mut steps, progress);
    // The hash is waited for on every path, so that a failed adoption still leaves a backup
    // with its checksum (the original is unchanged, but the copy is still a good one).
    let hash_wait = Instant::now();
    let backup = backup.finish().map_err(AdoptError::from_backup);
    *steps.entry(Step::Backup).or_insert(0.0) += hash_wait.elapsed().as_secs_f64();
    let (tables, total_rows_after) = rebuilt?;
    let backup = backup?;
    // The adopted file names its backup, so that a rollback restores only this one.
    rollback::record_backup(&tx, &options.tenant, &backup)
        .map_err(error::failed(Step::Backup, Some("audit_log")))?;

    let commit_started = Instant::now();
    tx.commit().map_err(|e| AdoptError::Failed {
        step: Step::Commit,
        table: None,
        reason: e.to_string(),
    })?;
    steps.insert(Step::Commit, commit_started.elapsed().as_secs_f64());
    Ok(Outcome::Adopted(AdoptReport {
        plan,
        tables,
        total_rows_after,
        backup,
        schema_version: crate::Store::supported_schema_version(),
        step_seconds: steps,
        seconds: started.elapsed().as_secs_f64(),
    }))
}

fn already_multi_tenant(conn: &Connection, path: &Path) -> Result<Outcome, AdoptError> {
    let fail = |e: rusqlite::Error| classify(path, e);
    let schema_version: Option<i64> = conn
        .query_row(
            "SELECT max(version) FROM refinery_schema_history",
            [],
            |r| r.get(0),
        )
        .optional()
        .unwrap_or(None)
        .flatten();
    let mut stmt = conn
        .prepare("SELECT id FROM tenants ORDER BY id")
        .map_err(fail)?;
    let tenants = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
        .map_err(fail)?;
    Ok(Outcome::AlreadyMultiTenant {
        path: path.to_path_buf(),
        schema_version: schema_version.unwrap_or(0),
        tenants,
    })
}

/// Takes the backup into the backup directory (the database's own by default) as
/// `<stem>.pre-adopt-<UTC time>.db`, with its `.sha256` beside it.
fn take_backup(
    conn: &Connection,
    path: &Path,
    options: &AdoptOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<PendingBackup, AdoptError> {
    let dir = match &options.backup_dir {
        Some(dir) => dir.clone(),
        None => path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store".into());
    let stamp = Timestamp::now().as_datetime().format("%Y%m%dT%H%M%S%.3fZ");
    let name = format!("{stem}.pre-adopt-{stamp}.db");
    backup::take_snapshot(conn, &dir, &name, &mut |pages: Pages| {
        progress(Progress::Backup {
            done: pages.done,
            total: pages.total,
        })
    })
    .map_err(AdoptError::from_backup)
}
