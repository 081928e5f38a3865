//! Adoption of a legacy single-tenant store in place.
//!
//! A store that ran the single-tenant version of this POS has the same tables without
//! `tenant_id` and without a tenants registry. [`adopt`] turns that file into a current
//! multi-tenant store whose rows all belong to one tenant, in one transaction:
//!
//! 1. *prepare*: audit the schema and count every table's rows (a dry run stops here), then copy
//!    the file with SQLite's online backup API and record the copy's SHA-256 beside it;
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
//! [`rollback`] restores the backup afterwards, after checking its SHA-256.
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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::functions::{Aggregate, Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::catalog;
use crate::ids::{TenantId, Timestamp};
use crate::tenant::settings::{NewTenant, Plan};

/// How long adoption waits for another process's lock before it reports the file as locked.
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// The prefix legacy tables are renamed to while their rows are copied.
const LEGACY_PREFIX: &str = "adopt_legacy_";
/// Pages copied per step of the online backup, between progress reports.
const BACKUP_PAGES_PER_STEP: i32 = 1024;

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

/// What adoption will do to one table (or did).
#[derive(Debug, Clone, Serialize)]
pub struct TablePlan {
    /// The table.
    pub table: String,
    /// Rows in the legacy table (0 when it is missing and will be created empty).
    pub rows: u64,
    /// Whether the legacy file has this table.
    pub present: bool,
    /// Columns the store does not know, kept as they are.
    pub extra_columns: Vec<String>,
    /// Indexes after adoption, each with `tenant_id` leading.
    pub indexes: Vec<String>,
    /// Keys and foreign keys after adoption, each including `tenant_id`.
    pub constraints: Vec<String>,
}

/// The audit of a legacy file: what adoption will do.
#[derive(Debug, Clone, Serialize)]
pub struct AdoptPlan {
    /// The database file.
    pub path: PathBuf,
    /// The tenant rows will belong to.
    pub tenant: TenantId,
    /// One entry per table of the store, in catalog order.
    pub tables: Vec<TablePlan>,
    /// Rows across all tables.
    pub total_rows: u64,
    /// Legacy triggers that will be put back as they are.
    pub triggers: Vec<String>,
    /// Legacy views that will be put back as they are.
    pub views: Vec<String>,
    /// Virtual tables (full-text indexes and the like), left untouched.
    pub virtual_tables: Vec<String>,
}

/// How one table came through adoption.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    /// The table.
    pub table: String,
    /// Rows before, counted inside the adoption's transaction.
    pub rows_before: u64,
    /// Rows after, all of them the tenant's.
    pub rows_after: u64,
    /// Indexes rescoped (the schema's and the extra ones).
    pub indexes_rescoped: usize,
    /// Keys and foreign keys rescoped.
    pub constraints_rescoped: usize,
    /// Seconds spent copying and validating this table.
    pub seconds: f64,
}

/// The backup adoption took before changing anything.
#[derive(Debug, Clone, Serialize)]
pub struct BackupFile {
    /// The copy of the database.
    pub path: PathBuf,
    /// Its SHA-256, also written to `<path>.sha256` in `sha256sum` format.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// A completed adoption.
#[derive(Debug, Clone, Serialize)]
pub struct AdoptReport {
    /// The plan that was carried out.
    pub plan: AdoptPlan,
    /// Table by table, rows before and after.
    pub tables: Vec<TableReport>,
    /// Rows across all tables after adoption.
    pub total_rows_after: u64,
    /// The backup to roll back to.
    pub backup: BackupFile,
    /// The schema version the file is now at.
    pub schema_version: i64,
    /// Seconds spent in each step.
    pub step_seconds: BTreeMap<Step, f64>,
    /// Seconds from start to commit.
    pub seconds: f64,
}

/// What [`adopt`] did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// The file already is a multi-tenant store; nothing was done.
    AlreadyMultiTenant {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        schema_version: i64,
        /// Its registered tenants.
        tenants: Vec<String>,
    },
    /// A dry run: the plan, nothing changed.
    Planned(AdoptPlan),
    /// The file was adopted.
    Adopted(AdoptReport),
}

/// Progress of long steps, for a progress bar.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// The audit is done: this many tables and rows will be adopted.
    Planned {
        /// Tables of the store.
        tables: usize,
        /// Rows across them.
        rows: u64,
    },
    /// Backup pages copied so far out of the total.
    Backup {
        /// Pages copied.
        done: u64,
        /// Pages in all.
        total: u64,
    },
    /// A table's rows are being copied.
    TableStarted {
        /// The table.
        table: &'a str,
        /// Its rows.
        rows: u64,
    },
    /// A table was copied and validated.
    TableDone {
        /// The table.
        table: &'a str,
        /// Its rows.
        rows: u64,
    },
    /// A whole-file step started (indexes, foreign keys, integrity).
    Step(Step),
}

/// The result of [`rollback`].
#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    /// The database restored.
    pub db: PathBuf,
    /// The backup it was restored from.
    pub backup: PathBuf,
    /// The backup's SHA-256, checked against the recorded one.
    pub sha256: String,
    /// The canonical digest of the restored database, equal to the backup's.
    pub canonical_digest: String,
    /// Seconds taken.
    pub seconds: f64,
}

// ---------------------------------------------------------------- the audit

/// A column as `pragma_table_xinfo` describes it.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    decl_type: String,
    not_null: bool,
    default: Option<String>,
    hidden: i64,
}

/// A table of the current schema, read from a reference database built by the migrations.
#[derive(Debug)]
struct ReferenceTable {
    columns: Vec<Column>,
    /// Primary key columns without tenant_id, in key order: the order rows are copied in.
    key: Vec<String>,
    indexes: Vec<String>,
    constraints: Vec<String>,
}

/// What the legacy file holds of one catalog table.
#[derive(Debug)]
struct LegacyTable {
    name: &'static str,
    present: bool,
    /// Columns both schemas have (the legacy spelling is kept), then extra ones.
    shared: Vec<String>,
    extra: Vec<Column>,
    rows: u64,
    /// Extra unique constraints and indexes, as statements for the new table.
    extra_indexes: Vec<(String, String)>,
}

/// The audit of a legacy file.
#[derive(Debug)]
struct Audit {
    tables: Vec<LegacyTable>,
    /// Names of the legacy indexes to drop before the schema's own are created.
    legacy_indexes: Vec<String>,
    triggers: Vec<(String, String)>,
    views: Vec<(String, String)>,
    virtual_tables: Vec<String>,
}

/// Quotes an identifier read from a schema (never user input) for use in SQL.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<Column>> {
    let mut stmt = conn.prepare(
        "SELECT name, type, \"notnull\", dflt_value, hidden FROM pragma_table_xinfo(?1) ORDER BY cid",
    )?;
    let rows = stmt.query_map([table], |r| {
        Ok(Column {
            name: r.get(0)?,
            decl_type: r.get(1)?,
            not_null: r.get(2)?,
            default: r.get(3)?,
            hidden: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// `(name, unique, origin)` of each index of a table.
fn index_list(conn: &Connection, table: &str) -> rusqlite::Result<Vec<(String, bool, String)>> {
    let mut stmt =
        conn.prepare("SELECT name, \"unique\", origin FROM pragma_index_list(?1) ORDER BY name")?;
    let rows = stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// Key columns of an index with their collation and order, as `"col" COLLATE x DESC` terms.
fn index_terms(conn: &Connection, index: &str) -> rusqlite::Result<Vec<(Option<String>, String)>> {
    let mut stmt = conn.prepare(
        "SELECT name, coll, \"desc\" FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno",
    )?;
    let rows = stmt.query_map([index], |r| {
        let name: Option<String> = r.get(0)?;
        let coll: Option<String> = r.get(1)?;
        let desc: bool = r.get(2)?;
        let mut term = name.as_deref().map(ident).unwrap_or_default();
        if let Some(coll) = coll.filter(|c| !c.eq_ignore_ascii_case("BINARY")) {
            term.push_str(&format!(" COLLATE {}", ident(&coll)));
        }
        if desc {
            term.push_str(" DESC");
        }
        Ok((name, term))
    })?;
    rows.collect()
}

/// Indexes of the single-tenant product that the store keeps under the same name with other
/// leading columns, with their old columns. Such a legacy index is the store's own, replaced
/// on purpose: `audit_log_row` was (table_name, row_id); V6 keys it by row id first (row ids
/// are UUIDv7, unique across tables), so a sale's audit rows append instead of splitting
/// pages in the middle of four table groups, and it still answers every lookup of a row's
/// history. Any other same-named index with other columns is refused, since queries it served
/// could be lost.
const REKEYED: &[(&str, &[&str])] = &[("audit_log_row", &["table_name", "row_id"])];

/// Builds the current schema in memory and reads what adoption compares against.
fn reference() -> crate::Result<(Connection, BTreeMap<&'static str, ReferenceTable>)> {
    let conn = Connection::open_in_memory()?;
    crate::store::install_schema(&conn, Timestamp::now())?;
    let mut tables = BTreeMap::new();
    for def in catalog::TABLES {
        let cols = columns(&conn, def.name)?;
        let mut pk: Vec<(i64, String)> = conn
            .prepare("SELECT pk, name FROM pragma_table_info(?1) WHERE pk > 0")?
            .query_map([def.name], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        pk.sort();
        let key: Vec<String> = pk.into_iter().map(|(_, n)| n).collect();
        let mut constraints = vec![format!("PRIMARY KEY ({})", key.join(", "))];
        let mut indexes = Vec::new();
        for (name, unique, origin) in index_list(&conn, def.name)? {
            let cols: Vec<String> = index_terms(&conn, &name)?
                .into_iter()
                .map(|(n, _)| n.unwrap_or_else(|| "<expr>".into()))
                .collect();
            match origin.as_str() {
                "pk" => {}
                "u" => constraints.push(format!("UNIQUE ({})", cols.join(", "))),
                _ => indexes.push(format!(
                    "{}{name} ({})",
                    if unique { "unique " } else { "" },
                    cols.join(", ")
                )),
            }
        }
        let mut fks = conn.prepare(
            "SELECT id, \"table\", group_concat(\"from\", ', ') FROM \
             (SELECT * FROM pragma_foreign_key_list(?1) ORDER BY id, seq) GROUP BY id ORDER BY id",
        )?;
        let found = fks.query_map([def.name], |r| {
            Ok(format!(
                "FOREIGN KEY ({}) -> {}",
                r.get::<_, String>(2)?,
                r.get::<_, String>(1)?
            ))
        })?;
        constraints.extend(found.collect::<rusqlite::Result<Vec<_>>>()?);
        let key = key.into_iter().filter(|k| k != "tenant_id").collect();
        tables.insert(
            def.name,
            ReferenceTable {
                columns: cols,
                key,
                indexes,
                constraints,
            },
        );
    }
    Ok((conn, tables))
}

/// Maps SQLite's errors on a file that is not what it should be to the typed errors.
fn classify(path: &Path, e: rusqlite::Error) -> AdoptError {
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

fn open_existing(path: &Path) -> Result<Connection, AdoptError> {
    if !path.is_file() {
        return Err(AdoptError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(path, e))?;
    conn.busy_timeout(LOCK_WAIT)
        .map_err(|e| classify(path, e))?;
    // The first read of the header: a file that is not SQLite fails here, untouched.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(|e| classify(path, e))?;
    Ok(conn)
}

/// A row of `sqlite_schema`: type, name, table and SQL text.
type SchemaObject = (String, String, String, Option<String>);

fn schema_objects(conn: &Connection) -> rusqlite::Result<Vec<SchemaObject>> {
    let mut stmt =
        conn.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    rows.collect()
}

/// Whether a column default read from the legacy schema is a plain literal (a number, a
/// string, a blob, NULL, TRUE or FALSE): the only defaults adoption copies into an ALTER TABLE.
fn is_literal(default: &str) -> bool {
    let d = default.trim();
    let quoted = |body: &str| !body.replace("''", "").contains('\'');
    if ["NULL", "TRUE", "FALSE"]
        .iter()
        .any(|w| d.eq_ignore_ascii_case(w))
    {
        return true;
    }
    if d.len() >= 2 && d.starts_with('\'') && d.ends_with('\'') {
        return quoted(&d[1..d.len() - 1]);
    }
    if d.len() >= 3 && (d.starts_with("X'") || d.starts_with("x'")) && d.ends_with('\'') {
        return d[2..d.len() - 1].chars().all(|c| c.is_ascii_hexdigit());
    }
    let number = d.strip_prefix(['+', '-']).unwrap_or(d);
    !number.is_empty()
        && number.chars().next().is_some_and(|c| c.is_ascii_digit())
        && number.parse::<f64>().is_ok()
}

/// The position just after the `(` that opens an index's column list, skipping quoted names.
fn column_list_start(sql: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in sql.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, '"' | '\'' | '`' | '[') => {
                quote = Some(if c == '[' { ']' } else { c });
            }
            None if c == '(' => return Some(i + 1),
            None => {}
        }
    }
    None
}

enum FileKind {
    MultiTenant,
    Legacy(Audit),
}

fn audit(
    conn: &Connection,
    path: &Path,
    reference: &BTreeMap<&'static str, ReferenceTable>,
    reference_conn: &Connection,
) -> Result<FileKind, AdoptError> {
    let fail = |e: rusqlite::Error| classify(path, e);
    let unsupported = |table: Option<&str>, reason: String| AdoptError::Unsupported {
        path: path.to_path_buf(),
        table: table.map(str::to_owned),
        reason,
    };
    let objects = schema_objects(conn).map_err(fail)?;
    let has = |kind: &str, name: &str| {
        objects
            .iter()
            .any(|(t, n, _, _)| t == kind && n.eq_ignore_ascii_case(name))
    };
    if has("table", "tenants") || has("table", "refinery_schema_history") {
        return Ok(FileKind::MultiTenant);
    }
    let reference_names: BTreeSet<String> = schema_objects(reference_conn)
        .map_err(fail)?
        .into_iter()
        .map(|(_, n, _, _)| n.to_ascii_lowercase())
        .collect();

    let mut virtual_tables = Vec::new();
    let mut shadow: BTreeSet<String> = BTreeSet::new();
    {
        let mut stmt = conn
            .prepare("SELECT name, type FROM pragma_table_list WHERE schema = 'main'")
            .map_err(fail)?;
        let listed = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(fail)?;
        for (name, kind) in listed {
            match kind.as_str() {
                "virtual" => virtual_tables.push(name),
                "shadow" => {
                    shadow.insert(name);
                }
                _ => {}
            }
        }
    }
    let plain_tables: Vec<&str> = objects
        .iter()
        .filter(|(t, n, _, sql)| {
            t == "table"
                && !n.starts_with("sqlite_")
                && !shadow.contains(n)
                && !virtual_tables.contains(n)
                && sql.is_some()
        })
        .map(|(_, n, _, _)| n.as_str())
        .collect();
    let known = |n: &str| {
        catalog::TABLES
            .iter()
            .any(|d| d.name.eq_ignore_ascii_case(n))
    };
    let unknown: Vec<&str> = plain_tables.iter().copied().filter(|n| !known(n)).collect();
    if plain_tables.len() == unknown.len() {
        return Err(AdoptError::NotLegacy {
            path: path.to_path_buf(),
            reason: if unknown.is_empty() {
                "the database has no tables".into()
            } else {
                format!(
                    "none of its tables belong to the POS schema ({})",
                    unknown.join(", ")
                )
            },
        });
    }
    if !unknown.is_empty() {
        // A table the catalog does not describe cannot be given tenant-scoped keys faithfully,
        // and leaving it unscoped would leave a table that ignores tenants.
        return Err(unsupported(
            None,
            format!(
                "tables unknown to the POS schema cannot be rescoped: {}; move them to another \
                 file first",
                unknown.join(", ")
            ),
        ));
    }
    let mut tables = Vec::new();
    let mut legacy_indexes = Vec::new();
    for def in catalog::TABLES {
        let Some(&name_in_file) = plain_tables
            .iter()
            .find(|n| n.eq_ignore_ascii_case(def.name))
        else {
            tables.push(LegacyTable {
                name: def.name,
                present: false,
                shared: Vec::new(),
                extra: Vec::new(),
                rows: 0,
                extra_indexes: Vec::new(),
            });
            continue;
        };
        let Some(target) = reference.get(def.name) else {
            continue;
        };
        let legacy_cols = columns(conn, name_in_file).map_err(fail)?;
        let mut shared = Vec::new();
        let mut extra = Vec::new();
        for col in legacy_cols {
            if col.hidden != 0 {
                return Err(unsupported(
                    Some(def.name),
                    format!("generated column {} cannot be copied", col.name),
                ));
            }
            if col.name.eq_ignore_ascii_case("tenant_id") {
                return Err(unsupported(
                    Some(def.name),
                    "it already has a tenant_id column but the file has no tenants registry".into(),
                ));
            }
            if target
                .columns
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(&col.name))
            {
                shared.push(col.name);
            } else {
                if col.not_null && col.default.is_none() {
                    return Err(unsupported(
                        Some(def.name),
                        format!(
                            "extra column {} is NOT NULL without a default, so the store could \
                             not insert rows",
                            col.name
                        ),
                    ));
                }
                if let Some(default) = col.default.as_deref().filter(|d| !is_literal(d)) {
                    return Err(unsupported(
                        Some(def.name),
                        format!(
                            "extra column {} has a default that is not a literal ({default}); \
                             ALTER TABLE cannot add it",
                            col.name
                        ),
                    ));
                }
                let type_ok = col
                    .decl_type
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " _(),".contains(c));
                if !type_ok {
                    return Err(unsupported(
                        Some(def.name),
                        format!(
                            "extra column {} has an unusual type {:?}",
                            col.name, col.decl_type
                        ),
                    ));
                }
                extra.push(col);
            }
        }
        for col in &target.columns {
            let missing = col.name != "tenant_id"
                && !shared.iter().any(|s| s.eq_ignore_ascii_case(&col.name));
            if missing && col.not_null && col.default.is_none() {
                return Err(unsupported(
                    Some(def.name),
                    format!("column {} is missing and the store requires it", col.name),
                ));
            }
        }
        let rows: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM {}", ident(def.name)),
                [],
                |r| r.get(0),
            )
            .map_err(fail)?;

        let mut extra_indexes = Vec::new();
        let target_uniques: Vec<Vec<String>> = index_list(reference_conn, def.name)
            .map_err(fail)?
            .into_iter()
            .filter(|(_, unique, _)| *unique)
            .map(|(n, _, _)| {
                index_terms(reference_conn, &n).map(|terms| {
                    terms
                        .into_iter()
                        .filter_map(|(n, _)| n)
                        .filter(|n| n != "tenant_id")
                        .map(|n| n.to_ascii_lowercase())
                        .collect()
                })
            })
            .collect::<rusqlite::Result<_>>()
            .map_err(fail)?;
        for (index, unique, origin) in index_list(conn, name_in_file).map_err(fail)? {
            match origin.as_str() {
                "pk" => {}
                "u" => {
                    let terms = index_terms(conn, &index).map_err(fail)?;
                    let cols: Vec<String> = terms
                        .iter()
                        .filter_map(|(n, _)| n.as_ref().map(|n| n.to_ascii_lowercase()))
                        .collect();
                    // The store's own keys already say UNIQUE (tenant_id, ...) for these.
                    if target_uniques.contains(&cols) {
                        continue;
                    }
                    let name = format!("{}_adopted_unique_{}", def.name, extra_indexes.len() + 1);
                    let list: Vec<String> = terms.into_iter().map(|(_, t)| t).collect();
                    extra_indexes.push((
                        name.clone(),
                        format!(
                            "CREATE UNIQUE INDEX {} ON {} (\"tenant_id\", {})",
                            ident(&name),
                            ident(def.name),
                            list.join(", ")
                        ),
                    ));
                }
                _ => {
                    legacy_indexes.push(index.clone());
                    if reference_names.contains(&index.to_ascii_lowercase()) {
                        // The store has an object of this name. If it is an index of the same
                        // uniqueness whose columns (after tenant_id) start with the legacy
                        // one's, it serves every query the legacy index served; anything else
                        // would be lost silently, so it is refused. The exceptions are the
                        // single-tenant product's own indexes that the store rekeyed on
                        // purpose (`REKEYED`), matched by name and exact old columns.
                        let mine: Vec<String> = index_terms(conn, &index)
                            .map_err(fail)?
                            .into_iter()
                            .map(|(_, t)| t.to_ascii_lowercase())
                            .collect();
                        let theirs: Vec<String> = index_terms(reference_conn, &index)
                            .map_err(fail)?
                            .into_iter()
                            .filter(|(n, _)| n.as_deref() != Some("tenant_id"))
                            .map(|(_, t)| t.to_ascii_lowercase())
                            .collect();
                        let theirs_unique = index_list(reference_conn, def.name)
                            .map_err(fail)?
                            .into_iter()
                            .any(|(n, u, _)| n.eq_ignore_ascii_case(&index) && u);
                        let mine_columns: Vec<String> = index_terms(conn, &index)
                            .map_err(fail)?
                            .into_iter()
                            .map(|(name, _)| name.unwrap_or_default().to_ascii_lowercase())
                            .collect();
                        let rekeyed = !unique
                            && REKEYED.iter().any(|(name, columns)| {
                                name.eq_ignore_ascii_case(&index) && mine_columns == *columns
                            });
                        let covered = !mine.is_empty()
                            && (theirs.starts_with(&mine) || rekeyed)
                            && (unique == theirs_unique)
                            && (!unique || theirs.len() == mine.len());
                        if !covered {
                            return Err(unsupported(
                                Some(def.name),
                                format!(
                                    "the legacy index {index} has the name of an index of the \
                                     store's schema but another definition; rename it first"
                                ),
                            ));
                        }
                        continue;
                    }
                    let sql: Option<String> = conn
                        .query_row(
                            "SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?1",
                            [&index],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(fail)?
                        .flatten();
                    let rescoped = sql.as_deref().and_then(|sql| {
                        column_list_start(sql)
                            .map(|at| format!("{}\"tenant_id\", {}", &sql[..at], &sql[at..]))
                    });
                    let Some(rescoped) = rescoped else {
                        return Err(unsupported(
                            Some(def.name),
                            format!("index {index} cannot be read"),
                        ));
                    };
                    extra_indexes.push((index, rescoped));
                }
            }
        }
        tables.push(LegacyTable {
            name: def.name,
            present: true,
            shared,
            extra,
            rows: u64::try_from(rows).unwrap_or(0),
            extra_indexes,
        });
    }
    let mut triggers = Vec::new();
    let mut views = Vec::new();
    for (kind, name, _, sql) in &objects {
        let Some(sql) = sql else { continue };
        let list = match kind.as_str() {
            "trigger" => &mut triggers,
            "view" => &mut views,
            _ => continue,
        };
        if reference_names.contains(&name.to_ascii_lowercase()) {
            return Err(unsupported(
                None,
                format!("the legacy {kind} {name} has the name of an object of the store's schema"),
            ));
        }
        list.push((name.clone(), sql.clone()));
    }
    Ok(FileKind::Legacy(Audit {
        tables,
        legacy_indexes,
        triggers,
        views,
        virtual_tables,
    }))
}

fn plan_of(
    path: &Path,
    options: &AdoptOptions,
    audit: &Audit,
    reference: &BTreeMap<&'static str, ReferenceTable>,
) -> AdoptPlan {
    let tables: Vec<TablePlan> = audit
        .tables
        .iter()
        .map(|t| {
            let target = reference.get(t.name);
            let mut indexes: Vec<String> = target.map(|r| r.indexes.clone()).unwrap_or_default();
            indexes.extend(
                t.extra_indexes
                    .iter()
                    .map(|(n, _)| format!("{n} (extra, rescoped)")),
            );
            TablePlan {
                table: t.name.to_owned(),
                rows: t.rows,
                present: t.present,
                extra_columns: t.extra.iter().map(|c| c.name.clone()).collect(),
                indexes,
                constraints: target.map(|r| r.constraints.clone()).unwrap_or_default(),
            }
        })
        .collect();
    AdoptPlan {
        path: path.to_path_buf(),
        tenant: options.tenant.clone(),
        total_rows: tables.iter().map(|t| t.rows).sum(),
        tables,
        triggers: audit.triggers.iter().map(|(n, _)| n.clone()).collect(),
        views: audit.views.iter().map(|(n, _)| n.clone()).collect(),
        virtual_tables: audit.virtual_tables.clone(),
    }
}

// ---------------------------------------------------------------- digests

/// SQLite's type of a value and its bytes, fed to a hasher so that `1`, `1.0` and `'1'` differ.
fn feed_value(h: &mut impl FnMut(&[u8]), v: ValueRef<'_>) {
    match v {
        ValueRef::Null => h(&[0]),
        ValueRef::Integer(i) => {
            h(&[1]);
            h(&i.to_le_bytes());
        }
        ValueRef::Real(f) => {
            h(&[2]);
            h(&f.to_bits().to_le_bytes());
        }
        ValueRef::Text(t) => {
            h(&[3]);
            h(&(t.len() as u64).to_le_bytes());
            h(t);
        }
        ValueRef::Blob(b) => {
            h(&[4]);
            h(&(b.len() as u64).to_le_bytes());
            h(b);
        }
    }
}

/// Appends a value to a row's encoding: SQLite's type, then the length of a text or blob, then
/// its bytes. The encoding of a row is injective (each value is self-delimiting), so rows that
/// differ in any value, or only in a value's type (`1`, `1.0` and `'1'`), encode differently.
fn encode_value(buf: &mut Vec<u8>, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => buf.push(0),
        ValueRef::Integer(i) => {
            buf.push(1);
            buf.extend_from_slice(&i.to_le_bytes());
        }
        ValueRef::Real(f) => {
            buf.push(2);
            buf.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        ValueRef::Text(t) => {
            buf.push(3);
            buf.extend_from_slice(&(t.len() as u64).to_le_bytes());
            buf.extend_from_slice(t);
        }
        ValueRef::Blob(b) => {
            buf.push(4);
            buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
            buf.extend_from_slice(b);
        }
    }
}

/// Hashes one row (a function call's arguments) with a key chosen per adoption: the row is
/// encoded into a reused buffer, then hashed in one call (SipHash-1-3 over one contiguous
/// input instead of three small writes per value).
#[derive(Clone)]
struct RowHasher {
    key: std::hash::RandomState,
}

impl RowHasher {
    fn new() -> Self {
        Self {
            key: std::hash::RandomState::new(),
        }
    }

    fn hash(&self, ctx: &Context<'_>, buf: &mut Vec<u8>) -> u64 {
        buf.clear();
        for i in 0..ctx.len() {
            encode_value(buf, ctx.get_raw(i));
        }
        let mut hasher = self.key.build_hasher();
        hasher.write(buf);
        hasher.finish()
    }
}

/// An order-independent digest of a table's rows: the count and the wrapping sum of keyed
/// 64-bit row hashes (SipHash with a random key, so no input is crafted to collide). Comparing
/// it before and after the copy proves every column of every row unchanged, up to a 2^-64
/// chance, without sorting or joining either table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct RowDigestAcc {
    rows: u64,
    sum: u64,
}

impl RowDigestAcc {
    fn add(&mut self, hash: u64) {
        self.rows += 1;
        self.sum = self.sum.wrapping_add(hash);
    }

    fn text(&self) -> String {
        format!("{}:{:016x}", self.rows, self.sum)
    }
}

/// A digest being taken, with the buffer each row is encoded into.
#[derive(Default)]
struct DigestState {
    acc: RowDigestAcc,
    buf: Vec<u8>,
}

/// The digest as an SQL aggregate, over the rows a query reads.
struct RowDigest(RowHasher);

impl Aggregate<DigestState, String> for RowDigest {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<DigestState> {
        Ok(DigestState::default())
    }

    fn step(&self, ctx: &mut Context<'_>, state: &mut DigestState) -> rusqlite::Result<()> {
        let hash = self.0.hash(ctx, &mut state.buf);
        state.acc.add(hash);
        Ok(())
    }

    fn finalize(
        &self,
        _: &mut Context<'_>,
        state: Option<DigestState>,
    ) -> rusqlite::Result<String> {
        Ok(state.map(|s| s.acc).unwrap_or_default().text())
    }
}

/// The digest of the rows a copy reads, taken as they stream through it (a function in the
/// copy's WHERE clause that is always true), so the legacy table is not read a second time.
type Tap = std::sync::Arc<std::sync::Mutex<DigestState>>;

fn install_digests(conn: &Connection) -> rusqlite::Result<Tap> {
    let hasher = RowHasher::new();
    conn.create_aggregate_function(
        "adopt_row_digest",
        -1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        RowDigest(hasher.clone()),
    )?;
    let tap = Tap::default();
    let feed = tap.clone();
    // Not deterministic: it must run once for every row, never be factored out.
    conn.create_scalar_function("adopt_tap", -1, FunctionFlags::SQLITE_UTF8, move |ctx| {
        let mut state = feed
            .lock()
            .map_err(|_| rusqlite::Error::UserFunctionError("digest lock poisoned".into()))?;
        let DigestState { acc, buf } = &mut *state;
        acc.add(hasher.hash(ctx, buf));
        Ok(true)
    })?;
    Ok(tap)
}

/// A SHA-256 over a database's schema and every row of every table, in a canonical order
/// (schema objects by type and name, tables by name, rows by all their columns). Two files with
/// the same digest hold the same schema and the same rows, whatever their page layout.
pub fn canonical_digest(path: &Path) -> Result<String, AdoptError> {
    if !path.is_file() {
        return Err(AdoptError::NotFound {
            path: path.to_path_buf(),
        });
    }
    // Read-write (it writes nothing) so that SQLite can roll back a hot journal left by a
    // killed process before the rows are read; a read-only connection cannot.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(path, e))?;
    conn.busy_timeout(LOCK_WAIT)
        .map_err(|e| classify(path, e))?;
    digest_connection(&conn).map_err(|e| classify(path, e))
}

fn digest_connection(conn: &Connection) -> rusqlite::Result<String> {
    let mut sha = Sha256::new();
    let objects = schema_objects(conn)?;
    for (kind, name, table, sql) in &objects {
        for part in [kind, name, table] {
            feed_value(
                &mut |b: &[u8]| sha.update(b),
                ValueRef::Text(part.as_bytes()),
            );
        }
        let sql = sql.as_deref().map(str::as_bytes);
        feed_value(
            &mut |b: &[u8]| sha.update(b),
            sql.map_or(ValueRef::Null, ValueRef::Text),
        );
    }
    let mut tables: Vec<&str> = objects
        .iter()
        .filter(|(k, n, _, sql)| k == "table" && sql.is_some() && !n.starts_with("sqlite_"))
        .map(|(_, n, _, _)| n.as_str())
        .collect();
    tables.sort_unstable();
    for table in tables {
        let cols = columns(conn, table)?;
        if cols.is_empty() {
            continue;
        }
        let order: Vec<String> = (1..=cols.len()).map(|i| i.to_string()).collect();
        let sql = format!(
            "SELECT * FROM {} ORDER BY {}",
            ident(table),
            order.join(", ")
        );
        // A virtual table's module may be missing here; its shadow tables carry its rows.
        let Ok(mut stmt) = conn.prepare(&sql) else {
            continue;
        };
        let n = stmt.column_count();
        feed_value(
            &mut |b: &[u8]| sha.update(b),
            ValueRef::Text(table.as_bytes()),
        );
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            for i in 0..n {
                feed_value(&mut |b: &[u8]| sha.update(b), row.get_ref(i)?);
            }
        }
    }
    Ok(hex(&sha.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        sha.update(&buf[..n]);
    }
    Ok((hex(&sha.finalize()), bytes))
}

/// The file that records a backup's SHA-256, in `sha256sum` format.
pub fn checksum_path(backup: &Path) -> PathBuf {
    let mut name = backup.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

// ---------------------------------------------------------------- adoption

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
    let backup = backup.finish();
    *steps.entry(Step::Backup).or_insert(0.0) += hash_wait.elapsed().as_secs_f64();
    let (tables, total_rows_after) = rebuilt?;
    let backup = backup?;

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
    let target = dir.join(format!("{stem}.pre-adopt-{stamp}.db"));
    let fail = |reason: String| AdoptError::Backup {
        path: target.clone(),
        reason,
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
    if target.exists() {
        return Err(fail("the file already exists".into()));
    }
    let result = (|| {
        let mut dst = Connection::open(&target).map_err(|e| e.to_string())?;
        let backup = rusqlite::backup::Backup::new(conn, &mut dst).map_err(|e| e.to_string())?;
        let mut busy_waits = 0u128;
        loop {
            let step = backup
                .step(BACKUP_PAGES_PER_STEP)
                .map_err(|e| e.to_string())?;
            let p = backup.progress();
            let total = u64::try_from(p.pagecount).unwrap_or(0);
            let done = total.saturating_sub(u64::try_from(p.remaining).unwrap_or(0));
            progress(Progress::Backup { done, total });
            match step {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => {}
                // Busy or locked: retried for a bounded time.
                _ => {
                    busy_waits += 1;
                    if busy_waits > LOCK_WAIT.as_millis() / 10 {
                        return Err("the database stayed locked during the backup".to_owned());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        drop(backup);
        drop(dst);
        Ok::<_, String>(())
    })();
    if let Err(reason) = result {
        // A half-written backup must not be mistaken for a good one later.
        let _ = std::fs::remove_file(&target);
        return Err(fail(reason));
    }
    // Hashing 300 MB takes a good part of a second; it runs on another core while the
    // rebuild goes on, and adoption waits for it before committing.
    let path = target.clone();
    let hashing = std::thread::spawn(move || {
        let (sha256, bytes) = sha256_file(&path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The backup must survive a power cut before the original is changed: the copy, its
        // checksum (written whole under a temporary name, then renamed) and the directory
        // entries are synced before adoption commits.
        std::fs::File::open(&path)?.sync_all()?;
        let sums = checksum_path(&path);
        let mut partial = sums.clone().into_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        {
            let mut file = std::fs::File::create(&partial)?;
            std::io::Write::write_all(&mut file, format!("{sha256}  {name}\n").as_bytes())?;
            file.sync_all()?;
        }
        std::fs::rename(&partial, &sums)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(BackupFile {
            path,
            sha256,
            bytes,
        })
    });
    Ok(PendingBackup {
        path: target,
        hashing,
    })
}

/// A backup written and being hashed.
struct PendingBackup {
    path: PathBuf,
    hashing: std::thread::JoinHandle<std::io::Result<BackupFile>>,
}

impl PendingBackup {
    /// Waits for the hashing and removes the backup and its checksum.
    fn discard(self) {
        let _ = self.hashing.join();
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(checksum_path(&self.path));
    }

    /// Waits for the hash and its checksum file.
    fn finish(self) -> Result<BackupFile, AdoptError> {
        let fail = |reason: String| AdoptError::Backup {
            path: self.path.clone(),
            reason,
        };
        match self.hashing.join() {
            Ok(Ok(file)) => Ok(file),
            Ok(Err(e)) => Err(fail(format!("cannot hash the backup: {e}"))),
            Err(_) => Err(fail("the hashing thread panicked".into())),
        }
    }
}

/// The rebuild inside the caller's transaction; any error leaves the transaction to roll back.
fn rebuild(
    conn: &Connection,
    audit: &Audit,
    reference: &BTreeMap<&'static str, ReferenceTable>,
    tenant: &NewTenant,
    steps: &mut BTreeMap<Step, f64>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(Vec<TableReport>, u64), AdoptError> {
    fn failed(step: Step, table: Option<&str>) -> impl Fn(rusqlite::Error) -> AdoptError + '_ {
        move |e| AdoptError::Failed {
            step,
            table: table.map(str::to_owned),
            reason: e.to_string(),
        }
    }
    let mut timer = Instant::now();
    let mut lap = |steps: &mut BTreeMap<Step, f64>, step: Step| {
        *steps.entry(step).or_insert(0.0) += timer.elapsed().as_secs_f64();
        timer = Instant::now();
    };

    // Prepare: triggers and views go first (they name the tables), then the legacy indexes
    // (index names are global and the schema reuses them), then the tables are set aside.
    for (name, _) in audit.triggers.iter() {
        conn.execute_batch(&format!("DROP TRIGGER {}", ident(name)))
            .map_err(failed(Step::Prepare, None))?;
    }
    for (name, _) in audit.views.iter() {
        conn.execute_batch(&format!("DROP VIEW {}", ident(name)))
            .map_err(failed(Step::Prepare, None))?;
    }
    for index in &audit.legacy_indexes {
        conn.execute_batch(&format!("DROP INDEX {}", ident(index)))
            .map_err(failed(Step::Prepare, None))?;
    }
    for t in audit.tables.iter().filter(|t| t.present) {
        conn.execute_batch(&format!(
            "ALTER TABLE {} RENAME TO {}",
            ident(t.name),
            ident(&format!("{LEGACY_PREFIX}{}", t.name))
        ))
        .map_err(failed(Step::Prepare, Some(t.name)))?;
    }
    lap(steps, Step::Prepare);

    // The current schema, exactly as the migrations make it. Its secondary indexes are built
    // after the copy: one sorted build per index instead of a random insert per row.
    crate::store::install_schema(conn, Timestamp::now()).map_err(|e| AdoptError::Failed {
        step: Step::CreateSchema,
        table: None,
        reason: e.to_string(),
    })?;
    if !crate::store::insert_tenant(conn, tenant, Timestamp::now()).map_err(|e| {
        AdoptError::Failed {
            step: Step::CreateSchema,
            table: Some("tenants".into()),
            reason: e.to_string(),
        }
    })? {
        return Err(AdoptError::Failed {
            step: Step::CreateSchema,
            table: Some("tenants".into()),
            reason: "the tenant exists already".into(),
        });
    }
    let schema_indexes: Vec<(String, String)> = {
        let mut stmt = conn
            .prepare(
                "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL \
                 AND tbl_name <> 'tenants' ORDER BY name",
            )
            .map_err(failed(Step::CreateSchema, None))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(failed(Step::CreateSchema, None))?;
        rows
    };
    for (name, _) in &schema_indexes {
        conn.execute_batch(&format!("DROP INDEX {}", ident(name)))
            .map_err(failed(Step::CreateSchema, None))?;
    }
    // The triggers that keep the balances would run once per copied ledger row (an upsert
    // each); they are set aside and the balances filled with one grouped sum per table after
    // the copy, then the triggers are put back as the migrations wrote them.
    let balance_triggers = balance_triggers(conn).map_err(failed(Step::CreateSchema, None))?;
    for (name, _) in &balance_triggers {
        conn.execute_batch(&format!("DROP TRIGGER {}", ident(name)))
            .map_err(failed(Step::CreateSchema, None))?;
    }
    lap(steps, Step::CreateSchema);

    let tap = install_digests(conn).map_err(failed(Step::Validate, None))?;

    let mut reports = Vec::new();
    let mut total_after = 0u64;
    for t in &audit.tables {
        let table_started = Instant::now();
        let target = reference.get(t.name);
        let (indexes, constraints) = target
            .map(|r| (r.indexes.len(), r.constraints.len()))
            .unwrap_or((0, 0));
        if !t.present {
            reports.push(TableReport {
                table: t.name.to_owned(),
                rows_before: 0,
                rows_after: 0,
                indexes_rescoped: indexes,
                constraints_rescoped: constraints,
                seconds: 0.0,
            });
            continue;
        }
        let legacy = ident(&format!("{LEGACY_PREFIX}{}", t.name));
        let table = ident(t.name);
        let copy_err = failed(Step::Copy, Some(t.name));
        let rows_before: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {legacy}"), [], |r| r.get(0))
            .map_err(copy_err)?;
        let rows_before = u64::try_from(rows_before).unwrap_or(0);
        progress(Progress::TableStarted {
            table: t.name,
            rows: rows_before,
        });
        for col in &t.extra {
            let mut def = format!(
                "ALTER TABLE {table} ADD COLUMN {} {}",
                ident(&col.name),
                col.decl_type
            );
            if col.not_null {
                def.push_str(" NOT NULL");
            }
            if let Some(default) = &col.default {
                def.push_str(&format!(" DEFAULT {default}"));
            }
            // One statement only: the type and default come from the legacy file's own schema,
            // checked in the audit (a plain type name, a literal default).
            conn.execute(&def, [])
                .map_err(failed(Step::Copy, Some(t.name)))?;
        }
        let cols: Vec<String> = t
            .shared
            .iter()
            .chain(t.extra.iter().map(|c| &c.name))
            .map(|c| ident(c))
            .collect();
        let cols = cols.join(", ");
        let order: Vec<String> = target
            .map(|r| r.key.iter().map(|k| ident(k)).collect())
            .unwrap_or_default();
        let order = if order.is_empty() {
            String::new()
        } else {
            format!(" ORDER BY {}", order.join(", "))
        };
        let reset = |tap: &Tap| {
            tap.lock()
                .map(|mut state| std::mem::take(&mut state.acc))
                .map_err(|_| AdoptError::Failed {
                    step: Step::Copy,
                    table: Some(t.name.to_owned()),
                    reason: "digest lock poisoned".into(),
                })
        };
        reset(&tap)?;
        conn.execute(
            &format!(
                "INSERT INTO {table} (\"tenant_id\", {cols}) SELECT ?1, {cols} FROM {legacy} \
                 WHERE adopt_tap({cols}){order}"
            ),
            [&tenant.id],
        )
        .map_err(failed(Step::Copy, Some(t.name)))?;
        let read = reset(&tap)?;
        lap(steps, Step::Copy);

        let validate_err = failed(Step::Validate, Some(t.name));
        // One scan of the new table: its rows, those of another or no tenant, and the digest.
        let (rows_after, foreign, after): (i64, i64, String) = conn
            .query_row(
                &format!(
                    "SELECT count(*), count(*) FILTER (WHERE \"tenant_id\" IS NOT ?1), \
                     adopt_row_digest({cols}) FROM {table}"
                ),
                [&tenant.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(validate_err)?;
        let rows_after = u64::try_from(rows_after).unwrap_or(0);
        let invalid = |reason: String| AdoptError::Failed {
            step: Step::Validate,
            table: Some(t.name.to_owned()),
            reason,
        };
        if rows_after != rows_before {
            return Err(invalid(format!(
                "{rows_before} rows before, {rows_after} after"
            )));
        }
        if foreign != 0 {
            return Err(invalid(format!("{foreign} rows without the tenant's id")));
        }
        if read.rows != rows_before {
            return Err(invalid(format!(
                "the copy read {} of {rows_before} rows",
                read.rows
            )));
        }
        let before = read.text();
        if before != after {
            return Err(invalid(
                "some column values changed in the copy (a value the new column's type converts)"
                    .into(),
            ));
        }
        lap(steps, Step::Validate);
        total_after += rows_after;
        progress(Progress::TableDone {
            table: t.name,
            rows: rows_after,
        });
        reports.push(TableReport {
            table: t.name.to_owned(),
            rows_before,
            rows_after,
            indexes_rescoped: indexes + t.extra_indexes.len(),
            constraints_rescoped: constraints,
            seconds: table_started.elapsed().as_secs_f64(),
        });
    }

    progress(Progress::Step(Step::Index));
    for (name, sql) in &schema_indexes {
        conn.execute_batch(sql).map_err(|e| AdoptError::Failed {
            step: Step::Index,
            table: None,
            reason: format!("{name}: {e}"),
        })?;
    }
    for t in &audit.tables {
        for (name, sql) in &t.extra_indexes {
            conn.execute_batch(sql).map_err(|e| AdoptError::Failed {
                step: Step::Index,
                table: Some(t.name.to_owned()),
                reason: format!("extra index {name}: {e}"),
            })?;
        }
    }
    lap(steps, Step::Index);

    // After the indexes: the stock sum reads the covering ledger index in key order, no sort.
    progress(Progress::Step(Step::Balances));
    for b in catalog::BALANCES {
        conn.execute_batch(&b.rebuild_sql())
            .map_err(failed(Step::Balances, Some(b.table)))?;
    }
    for (name, sql) in &balance_triggers {
        conn.execute_batch(sql).map_err(|e| AdoptError::Failed {
            step: Step::Balances,
            table: None,
            reason: format!("{name}: {e}"),
        })?;
    }
    lap(steps, Step::Balances);

    // The legacy tables go last: pages they free now are not reused (and journaled again)
    // by the copies and index builds above.
    for t in audit.tables.iter().filter(|t| t.present) {
        let legacy = ident(&format!("{LEGACY_PREFIX}{}", t.name));
        conn.execute_batch(&format!("DROP TABLE {legacy}"))
            .map_err(failed(Step::Restore, Some(t.name)))?;
    }
    lap(steps, Step::Restore);
    // Without statistics SQLite takes `tenant_id = ?` for a selective condition (it is the
    // least selective column there is) and answers "stock of this product" by scanning the
    // tenant's whole ledger through the primary key. A sampled ANALYZE (SQLite's recommended
    // analysis_limit) gives it real figures in a fraction of a second; it runs once the legacy
    // tables are gone, so that only the store's tables are analysed.
    conn.execute_batch("PRAGMA analysis_limit = 400; ANALYZE;")
        .map_err(failed(Step::Index, None))?;
    lap(steps, Step::Index);

    progress(Progress::Step(Step::Restore));
    for (name, sql) in audit.views.iter().chain(&audit.triggers) {
        conn.execute_batch(sql).map_err(|e| AdoptError::Failed {
            step: Step::Restore,
            table: None,
            reason: format!("{name}: {e}"),
        })?;
    }
    lap(steps, Step::Restore);

    progress(Progress::Step(Step::ForeignKeyCheck));
    let broken: Vec<(String, String)> = {
        let mut stmt = conn
            .prepare("SELECT \"table\", parent FROM pragma_foreign_key_check LIMIT 10")
            .map_err(failed(Step::ForeignKeyCheck, None))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(failed(Step::ForeignKeyCheck, None))?;
        rows
    };
    if let Some((table, parent)) = broken.first() {
        return Err(AdoptError::Failed {
            step: Step::ForeignKeyCheck,
            table: Some(table.clone()),
            reason: format!("rows reference a missing {parent} row"),
        });
    }
    lap(steps, Step::ForeignKeyCheck);

    progress(Progress::Step(Step::IntegrityCheck));
    let problems: Vec<String> = {
        let mut stmt = conn
            .prepare("PRAGMA integrity_check(10)")
            .map_err(failed(Step::IntegrityCheck, None))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .map_err(failed(Step::IntegrityCheck, None))?;
        rows
    };
    if problems != ["ok"] {
        return Err(AdoptError::Failed {
            step: Step::IntegrityCheck,
            table: None,
            reason: problems.join("; "),
        });
    }
    lap(steps, Step::IntegrityCheck);
    Ok((reports, total_after))
}

/// `(name, sql)` of the triggers that keep a balance table of [`catalog::BALANCES`]:
/// the triggers on its ledger that write to it.
fn balance_triggers(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1 \
         AND sql IS NOT NULL AND instr(lower(sql), ?2) > 0 ORDER BY name",
    )?;
    let mut found = Vec::new();
    for b in catalog::BALANCES {
        let rows = stmt.query_map([b.ledger, b.table], |r| Ok((r.get(0)?, r.get(1)?)))?;
        for row in rows {
            found.push(row?);
        }
    }
    Ok(found)
}

// ---------------------------------------------------------------- rollback

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
    let sums = checksum_path(backup);
    let recorded = std::fs::read_to_string(&sums).map_err(|e| AdoptError::Checksum {
        path: sums.clone(),
        reason: e.to_string(),
    })?;
    let expected = recorded
        .split_whitespace()
        .next()
        .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| AdoptError::Checksum {
            path: sums.clone(),
            reason: "it does not start with a SHA-256 in hex".into(),
        })?
        .to_ascii_lowercase();
    let (found, _) = sha256_file(backup).map_err(|e| AdoptError::Checksum {
        path: backup.to_path_buf(),
        reason: e.to_string(),
    })?;
    if found != expected {
        return Err(AdoptError::ChecksumMismatch {
            path: backup.to_path_buf(),
            expected,
            found,
        });
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_list_start_skips_quoted_names() {
        let sql = r#"CREATE INDEX "odd (name" ON products(brand)"#;
        let at = column_list_start(sql).expect("has a column list");
        assert_eq!(&sql[at..], "brand)");
        let sql = "CREATE UNIQUE INDEX [x(y] ON t (a) WHERE a IS NOT NULL";
        let at = column_list_start(sql).expect("has a column list");
        assert_eq!(&sql[at..], "a) WHERE a IS NOT NULL");
    }

    #[test]
    fn only_literal_defaults_are_copied() {
        for ok in [
            "NULL", "0", "-1.5", "1e3", "'A1'", "'it''s'", "X'00ff'", "TRUE",
        ] {
            assert!(is_literal(ok), "{ok}");
        }
        for bad in [
            "CURRENT_TIMESTAMP",
            "(1)",
            "'a' || 'b'",
            "'x'); DROP TABLE t; --'",
            "abs(1)",
        ] {
            assert!(!is_literal(bad), "{bad}");
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn the_reference_describes_every_catalog_table() {
        let (_, tables) = reference().expect("the schema builds");
        assert_eq!(tables.len(), catalog::TABLES.len());
        let products = &tables["products"];
        assert_eq!(products.key, ["id"]);
        assert!(products
            .constraints
            .contains(&"UNIQUE (tenant_id, sku)".to_owned()));
        assert!(products
            .constraints
            .iter()
            .any(|c| c == "FOREIGN KEY (tenant_id, category_id) -> product_categories"));
        assert_eq!(tables["pending_operations"].key, ["hlc"]);
    }

    #[test]
    fn digests_tell_types_apart() {
        let conn = Connection::open_in_memory().expect("memory");
        conn.create_aggregate_function(
            "d",
            -1,
            FunctionFlags::SQLITE_UTF8,
            RowDigest(RowHasher::new()),
        )
        .expect("registers");
        let digest = |values: &str| -> String {
            conn.query_row(&format!("SELECT d({values})"), [], |r| r.get(0))
                .expect("digest")
        };
        // Every value differs from every other, in type or in where a value ends.
        let rows = [
            "1",
            "1.0",
            "'1'",
            "x'31'",
            "NULL",
            "''",
            "x''",
            "0",
            "-0.0",
            "'ab', 'c'",
            "'a', 'bc'",
            "'abc', NULL",
            "NULL, 'abc'",
            "1, 2",
            "2, 1",
        ];
        let digests: Vec<String> = rows.iter().map(|r| digest(r)).collect();
        for (i, a) in digests.iter().enumerate() {
            for (j, b) in digests.iter().enumerate().skip(i + 1) {
                assert_ne!(a, b, "{} and {}", rows[i], rows[j]);
            }
        }
        assert_eq!(digest("1"), digests[0], "the same row, the same digest");
    }

    #[test]
    fn the_tap_and_the_aggregate_agree_in_any_row_order() -> rusqlite::Result<()> {
        let conn = Connection::open_in_memory()?;
        let tap = install_digests(&conn)?;
        conn.execute_batch(
            "CREATE TABLE t (a, b, c);
             INSERT INTO t VALUES (1, 'x', NULL), (2.5, x'00ff', 'y'), ('3', 3, 3.0);",
        )?;
        let read: i64 = conn.query_row(
            "SELECT count(*) FROM (SELECT * FROM t WHERE adopt_tap(a, b, c) ORDER BY a DESC)",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(read, 3);
        let tapped = tap.lock().map(|s| s.acc).expect("not poisoned");
        let stored: String =
            conn.query_row("SELECT adopt_row_digest(a, b, c) FROM t", [], |r| r.get(0))?;
        assert_eq!(tapped.text(), stored);
        conn.execute_batch("UPDATE t SET c = 3 WHERE c = 3.0")?;
        let changed: String =
            conn.query_row("SELECT adopt_row_digest(a, b, c) FROM t", [], |r| r.get(0))?;
        assert_ne!(changed, stored, "3.0 became 3");
        Ok(())
    }
}
