//! `verify`: checks that the live schema enforces tenant isolation and that the data obeys it.
//!
//! The schema checks read the database's own description of itself (`sqlite_schema` and the
//! `pragma_table_info` / `pragma_index_list` / `pragma_foreign_key_list` functions, with table
//! names bound as parameters), so they hold for any file, including adopted legacy stores and
//! tables the catalog does not know.
//!
//! On a node's shared file, each dedicated tenant's own file is checked the same way where its
//! route names it ([`verify_homes`]); what is wrong there is reported with the tenant and the
//! file, a missing or unreadable file as a [`Check::TenantFile`] violation.
//!
//! Invariants: verify only reads the database. [`verify_file`] opens the file read-only (it
//! never migrates, creates or rolls back anything), and the one check that must write, that
//! moving a row to another tenant is refused, runs on a [`Probe`]: an in-memory copy of the
//! schema holding one row of each table. What is wrong in the database is a [`Violation`]
//! (exit 1); what keeps it from being read at all (a lock held past [`BUSY_TIMEOUT`], no
//! permission, an I/O error, not a node database) is a [`VerifyError`] (exit 2), never a
//! violation. (The write probe used to run on the file itself: on a read-only file every table
//! with rows became a "cannot be checked" violation, and on a locked one each waited out the
//! busy timeout first, 35 s and more.)

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::limits::Limit;
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};
use serde::Serialize;

use super::BUSY_TIMEOUT;
use crate::backup::ident;
use crate::catalog::{self, TableDef};
use crate::error::Error;
use crate::Result;

/// Why a database file could not be verified (as opposed to what is wrong in it, which is a
/// [`Violation`]). Nothing was changed in any case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// There is no file at the path.
    #[error("{path}: no such file (nothing was checked)")]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// Another process held a lock on the file for longer than the busy timeout.
    #[error(
        "{path} is locked by another process (waited {waited:?}); try again once it is \
         released (nothing was checked or changed)"
    )]
    Locked {
        /// The file.
        path: PathBuf,
        /// How long verify waited ([`BUSY_TIMEOUT`]).
        waited: Duration,
    },
    /// The file is not a node database this build can check.
    #[error("{path} is not a pos-node database: {reason} (nothing was checked or changed)")]
    NotANode {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// The file is at another schema version than this build's; verify checks against the
    /// current catalog and never migrates.
    #[error(
        "{path} is at schema version {found} and this pos-tenancy checks version {supported}: \
         {}; nothing was checked or changed",
        if found < supported {
            "migrate it first (`pos-node init --db` on it, or open it with the application)"
        } else {
            "use the newer pos-tenancy that wrote it"
        }
    )]
    SchemaVersion {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// The version this build knows.
        supported: i64,
    },
    /// The file cannot be read: permissions, an I/O error, a damaged file, a journal left by
    /// a crash that only a writer can roll back.
    #[error("{path} cannot be read: {reason} (nothing was checked or changed)")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Whether a SQLite error is about the environment (a lock, permissions, the disk, memory, a
/// file that is not a database) rather than about the schema or rows being checked: such an
/// error ends the check instead of becoming a violation.
fn environmental(e: &Error) -> bool {
    match e {
        Error::Sqlite(e) | Error::Open { source: e, .. } => matches!(
            e.sqlite_error_code(),
            Some(
                ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::ReadOnly
                    | ErrorCode::CannotOpen
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::OutOfMemory
                    | ErrorCode::DiskFull
                    | ErrorCode::PermissionDenied
                    | ErrorCode::OperationInterrupted
                    | ErrorCode::FileLockingProtocolFailed
                    | ErrorCode::NotADatabase
            )
        ),
        Error::Io(_) => true,
        _ => false,
    }
}

/// Verifies the database at `path` without writing to it: opened read-only (never created,
/// migrated or rolled back), checked as [`Store::verify`](super::Store::verify) checks. A
/// lock another process holds is waited for up to [`BUSY_TIMEOUT`] per statement, then
/// [`VerifyError::Locked`]. A database in write-ahead-log mode in a directory this process
/// cannot write is read as immutable when no log is beside it (SQLite could not create one
/// for a reader, and no writer can have one either); reading a WAL database in a writable
/// directory may leave SQLite's empty `-wal` and `-shm` beside it, as any reader does.
pub(crate) fn verify_file(path: &Path) -> std::result::Result<VerifyReport, VerifyError> {
    if !path.is_file() {
        return Err(VerifyError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let fail = |e: Error| file_error(path, e);
    let conn = open_read_only(path).map_err(|e| fail(e.into()))?;
    // Named as every other command names it: an empty file, a central database...
    if let Some(what) = super::open::foreign_kind(&conn, path).map_err(|e| fail(e.into()))? {
        return Err(VerifyError::NotANode {
            path: path.to_path_buf(),
            reason: format!("it is {what}"),
        });
    }
    let version = super::schema::applied_version(&conn).map_err(|e| fail(e.into()))?;
    let has_registry: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'tenants')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| fail(e.into()))?;
    let supported = super::Store::supported_schema_version();
    match version {
        Some(found) if has_registry && found != supported => Err(VerifyError::SchemaVersion {
            path: path.to_path_buf(),
            found,
            supported,
        }),
        Some(_) if has_registry => {
            let mut report = verify(&conn).map_err(fail)?;
            verify_homes(&conn, path, &mut report).map_err(|(at, e)| file_error(&at, e))?;
            Ok(report)
        }
        _ => Err(VerifyError::NotANode {
            path: path.to_path_buf(),
            reason: "it has no tenant registry or no schema history (a legacy store is \
                     adopted first: `pos-node adopt`)"
                .into(),
        }),
    }
}

/// What keeps the file at `path` from being checked, from the error that stopped the check.
fn file_error(path: &Path, e: Error) -> VerifyError {
    let sqlite = match &e {
        Error::Sqlite(s) | Error::Open { source: s, .. } => Some(s),
        _ => None,
    };
    match sqlite.and_then(rusqlite::Error::sqlite_error_code) {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => VerifyError::Locked {
            path: path.to_path_buf(),
            waited: BUSY_TIMEOUT,
        },
        Some(ErrorCode::NotADatabase) => VerifyError::NotANode {
            path: path.to_path_buf(),
            reason: "it is not a SQLite database".into(),
        },
        _ if sqlite.is_some_and(|s| {
            matches!(s, rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK)
        }) =>
        {
            VerifyError::Unreadable {
                path: path.to_path_buf(),
                reason: "a process stopped in the middle of a write and left its journal, \
                         which only a writer can roll back (any pos-node command that \
                         writes, or the application, does)"
                    .into(),
            }
        }
        _ => VerifyError::Unreadable {
            path: path.to_path_buf(),
            reason: match sqlite {
                Some(s) => s.to_string(),
                None => e.to_string(),
            },
        },
    }
}

/// Opens `path` read-only with the busy timeout, falling back to an immutable read of a WAL
/// database in a directory where SQLite cannot create the reader's `-shm` (see
/// [`verify_file`]).
fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Opening reads nothing; the first statement finds out whether the file can be read.
    let first = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()));
    let cannot_start = match &first {
        Err(rusqlite::Error::SqliteFailure(f, _)) => {
            f.extended_code == rusqlite::ffi::SQLITE_READONLY_DIRECTORY
                || f.extended_code == rusqlite::ffi::SQLITE_READONLY_CANTINIT
        }
        _ => false,
    };
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let absolute = path.canonicalize().ok();
    let uri_path = absolute.as_deref().and_then(percent_path);
    let (true, false, Some(uri_path)) = (cannot_start, Path::new(&wal).exists(), uri_path) else {
        return first.map(|()| conn);
    };
    drop(conn);
    // No log beside it and none can be made: nothing can be writing it, so it is read as
    // the immutable file it is (no locks, no -shm).
    let conn = Connection::open_with_flags(
        format!("file:{uri_path}?immutable=1"),
        flags | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    Ok(conn)
}

/// `path` as the path part of a SQLite URI (`?`, `#` and `%` escaped), or `None` if it is not
/// UTF-8.
fn percent_path(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    Some(out)
}

/// Which rule a [`Violation`] breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Check {
    /// Every tenant table has `tenant_id TEXT NOT NULL` referencing `tenants(id)`.
    TenantIdColumn,
    /// Every UNIQUE constraint or index includes `tenant_id`.
    UniqueWithoutTenant,
    /// Every foreign key to another tenant table is composite with `tenant_id`.
    ForeignKeyNotComposite,
    /// Every tenant table has an index or primary key leading with `tenant_id`.
    NoTenantLeadingIndex,
    /// A trigger refuses updates that change `tenant_id`.
    TenantIdMutable,
    /// The table and its columns match the crate's catalog.
    CatalogMismatch,
    /// No row has a NULL `tenant_id`.
    NullTenantId,
    /// No row names a tenant missing from the registry.
    UnknownTenant,
    /// No row references a row of another tenant.
    CrossTenantReference,
    /// `PRAGMA foreign_key_check` is clean.
    ForeignKeyCheck,
    /// `PRAGMA integrity_check` is clean.
    IntegrityCheck,
    /// Every kept balance (stock on hand, card balances) equals the sum of its ledger.
    CachedBalance,
    /// A dedicated tenant's own file, named by its route, is there, can be read, and is that
    /// tenant's file of this node at this schema version.
    TenantFile,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The rule.
    pub check: Check,
    /// The table concerned, if one.
    pub table: Option<String>,
    /// What exactly is wrong.
    pub detail: String,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Tenant tables examined.
    pub tables_checked: usize,
    /// Rows of catalog tables examined.
    pub rows_checked: u64,
    /// Every violation found; empty when all holds.
    pub violations: Vec<Violation>,
}

impl VerifyReport {
    /// Whether every check passed.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

struct Findings(Vec<Violation>);

impl Findings {
    fn add(&mut self, check: Check, table: Option<&str>, detail: impl Into<String>) {
        self.0.push(Violation {
            check,
            table: table.map(str::to_owned),
            detail: detail.into(),
        });
    }
}

struct ColumnInfo {
    name: String,
    decl_type: String,
    not_null: bool,
    has_default: bool,
    pk: i64,
}

struct ForeignKey {
    parent: String,
    /// (child column, parent column or None for the parent's primary key)
    pairs: Vec<(String, Option<String>)>,
}

fn columns(conn: &Connection, table: &str) -> Result<Vec<ColumnInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk FROM pragma_table_info(?1)",
    )?;
    let rows = stmt.query_map([table], |r| {
        Ok(ColumnInfo {
            name: r.get(0)?,
            decl_type: r.get(1)?,
            not_null: r.get(2)?,
            has_default: r.get(3)?,
            pk: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn foreign_keys(conn: &Connection, table: &str) -> Result<Vec<ForeignKey>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
    )?;
    let mut by_id: BTreeMap<i64, ForeignKey> = BTreeMap::new();
    let rows = stmt.query_map([table], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    for row in rows {
        let (id, parent, from, to) = row?;
        by_id
            .entry(id)
            .or_insert_with(|| ForeignKey {
                parent,
                pairs: Vec::new(),
            })
            .pairs
            .push((from, to));
    }
    Ok(by_id.into_values().collect())
}

/// (index name, unique, columns in order)
fn indexes(conn: &Connection, table: &str) -> Result<Vec<(String, bool, Vec<String>)>> {
    let list: Vec<(String, bool)> = {
        let mut stmt = conn.prepare_cached("SELECT name, \"unique\" FROM pragma_index_list(?1)")?;
        let rows = stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut out = Vec::with_capacity(list.len());
    for (name, unique) in list {
        let mut stmt =
            conn.prepare_cached("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?;
        let cols = stmt
            .query_map([&name], |r| r.get::<_, Option<String>>(0))?
            // An expression column has no name; it never counts as tenant_id.
            .map(|c| c.map(|c| c.unwrap_or_else(|| "<expression>".to_owned())))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push((name, unique, cols));
    }
    Ok(out)
}

/// The primary key columns of `table`, in key order.
fn primary_key(cols: &[ColumnInfo]) -> Vec<&str> {
    let mut pk: Vec<&ColumnInfo> = cols.iter().filter(|c| c.pk > 0).collect();
    pk.sort_by_key(|c| c.pk);
    pk.into_iter().map(|c| c.name.as_str()).collect()
}

/// Checks the database `conn` reads, writing nothing to it. An environmental error (see
/// [`environmental`]) ends the check as an error; any other error on one table is reported as
/// a violation of that table, so one odd table does not hide the others.
pub(crate) fn verify(conn: &Connection) -> Result<VerifyReport> {
    let mut f = Findings(Vec::new());
    let cannot_check = |e: Error| if environmental(&e) { Err(e) } else { Ok(e) };
    // Plain tables only: virtual tables (and their shadow tables) carry no constraints, and a
    // full-text index over products should not fail verification of the store around it.
    let tables: Vec<String> = {
        let mut stmt = conn.prepare(
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut names = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        names.retain(|n| !catalog::NODE_TABLES.contains(&n.as_str()));
        names
    };
    let is_tenant_table = |name: &str| tables.iter().any(|t| t == name);

    if !freezes(conn, "tenants", "BEFORE UPDATE OF ID ON")? {
        f.add(
            Check::TenantIdMutable,
            Some("tenants"),
            "no trigger refuses an UPDATE of tenants.id",
        );
    }
    for table in &tables {
        // One odd table is reported, not allowed to end the whole check.
        if let Err(e) = check_schema(conn, &mut f, table, &is_tenant_table) {
            let e = cannot_check(e)?;
            f.add(
                Check::IntegrityCheck,
                Some(table),
                format!("cannot be checked: {e}"),
            );
        }
    }

    let probe = Probe::build(conn, &tables)?;
    let mut rows_checked = 0u64;
    for def in catalog::TABLES {
        if !is_tenant_table(def.name) {
            f.add(Check::CatalogMismatch, Some(def.name), "table is missing");
            continue;
        }
        match check_catalog_table(conn, &probe, &mut f, def) {
            Ok(rows) => rows_checked += rows,
            Err(e) => {
                let e = cannot_check(e)?;
                f.add(
                    Check::IntegrityCheck,
                    Some(def.name),
                    format!("cannot be checked: {e}"),
                );
            }
        }
    }

    for table in &tables {
        // Per table, so that one table whose foreign keys SQLite cannot even resolve ("foreign
        // key mismatch") is reported without hiding the others.
        let mut stmt = conn.prepare_cached(
            "SELECT parent, count(*) FROM pragma_foreign_key_check(?1) GROUP BY parent",
        )?;
        let found = stmt
            .query_map([table], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        match found.map_err(Error::from) {
            Ok(found) => {
                for (parent, n) in found {
                    f.add(
                        Check::ForeignKeyCheck,
                        Some(table),
                        format!("{n} rows reference a missing {parent} row"),
                    );
                }
            }
            Err(e) => {
                let e = cannot_check(e)?;
                f.add(
                    Check::ForeignKeyCheck,
                    Some(table),
                    format!("foreign keys cannot be checked: {e}"),
                );
            }
        }
    }
    for b in catalog::BALANCES {
        if !is_tenant_table(b.table) {
            f.add(Check::CatalogMismatch, Some(b.table), "table is missing");
            continue;
        }
        match conn
            .query_row(&b.mismatch_sql(), [], |r| r.get::<_, i64>(0))
            .map_err(Error::from)
        {
            Ok(0) => {}
            Ok(n) => f.add(
                Check::CachedBalance,
                Some(b.table),
                format!("{n} balances differ from the sum of {}", b.ledger),
            ),
            Err(e) => {
                let e = cannot_check(e)?;
                f.add(
                    Check::CachedBalance,
                    Some(b.table),
                    format!("cannot be checked: {e}"),
                );
            }
        }
    }
    {
        let mut stmt = conn.prepare("PRAGMA integrity_check(100)")?;
        let msgs = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for m in msgs.into_iter().filter(|m| m != "ok") {
            f.add(Check::IntegrityCheck, None, m);
        }
    }
    Ok(VerifyReport {
        tables_checked: tables.len(),
        rows_checked,
        violations: f.0,
    })
}

/// Checks each dedicated tenant's own file that the registry `conn` holds routes to (the
/// shared file being at `shared`), as [`verify`] checks a file, and adds what it finds to
/// `report`: a route naming no file, a file that is missing, unreadable, not that tenant's
/// file of this node, or at another schema version is a [`Check::TenantFile`] violation naming
/// the tenant and the path; a violation inside a tenant's file has its detail prefixed with
/// the tenant and the file. Only a lock held past the busy timeout (or another environmental
/// error inside a file that could be opened) stops the check: `Err` with the file it is on.
/// Nothing is written; `conn` being itself a tenant's own file checks nothing more.
pub(crate) fn verify_homes(
    conn: &Connection,
    shared: &Path,
    report: &mut VerifyReport,
) -> std::result::Result<(), (PathBuf, Error)> {
    let at_shared = |e: rusqlite::Error| (shared.to_path_buf(), Error::from(e));
    if super::homes::home_of(conn)
        .map_err(|e| (shared.to_path_buf(), e))?
        .is_some()
    {
        return Ok(());
    }
    let routes = super::homes::dedicated_routes(conn).map_err(at_shared)?;
    if routes.is_empty() {
        return Ok(());
    }
    let node: Option<String> = conn
        .query_row(
            "SELECT node_id FROM node_state WHERE singleton = 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(at_shared)?;
    let version = super::schema::applied_version(conn).map_err(at_shared)?;
    let dir = super::homes::homes_dir(shared);
    for (tenant, file) in routes {
        let Some(file) = file else {
            report.violations.push(Violation {
                check: Check::TenantFile,
                table: None,
                detail: format!(
                    "tenant {tenant} is dedicated, but no promotion in tenant_moves names its \
                     own file"
                ),
            });
            continue;
        };
        let path = dir.join(&file);
        let problem = |detail: String| Violation {
            check: Check::TenantFile,
            table: None,
            detail: format!("tenant {tenant}'s own file {}: {detail}", path.display()),
        };
        if !path.is_file() {
            report.violations.push(problem("it is missing".into()));
            continue;
        }
        let locked = |e: &Error| {
            matches!(
                e,
                Error::Sqlite(s) if matches!(
                    s.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                )
            )
        };
        let opened = open_read_only(&path).map_err(Error::from).and_then(|c| {
            home_problem(&c, &path, &tenant, node.as_deref(), version).map(|p| (c, p))
        });
        let home = match opened {
            Ok((home, None)) => home,
            Ok((_, Some(detail))) => {
                report.violations.push(problem(detail));
                continue;
            }
            Err(e) if locked(&e) => return Err((path, e)),
            Err(e) => {
                report
                    .violations
                    .push(problem(format!("it cannot be read: {e}")));
                continue;
            }
        };
        match verify(&home) {
            Ok(found) => {
                report.tables_checked += found.tables_checked;
                report.rows_checked += found.rows_checked;
                let prefix = format!("tenant {tenant}'s own file {}: ", path.display());
                report
                    .violations
                    .extend(found.violations.into_iter().map(|v| Violation {
                        detail: format!("{prefix}{}", v.detail),
                        ..v
                    }));
            }
            Err(e) if environmental(&e) => return Err((path, e)),
            Err(e) => report
                .violations
                .push(problem(format!("it cannot be checked: {e}"))),
        }
    }
    Ok(())
}

/// Why the file `conn` reads (at `path`) is not `tenant`'s own file of the node `node` at schema version
/// `version`, or `None` when it is.
fn home_problem(
    conn: &Connection,
    path: &Path,
    tenant: &crate::ids::TenantId,
    node: Option<&str>,
    version: Option<i64>,
) -> Result<Option<String>> {
    if let Some(what) = super::open::foreign_kind(conn, path)? {
        return Ok(Some(format!("it is {what}, not a tenant's own file")));
    }
    let Some(owner) = super::homes::home_of(conn)? else {
        return Ok(Some(
            "it is not a tenant's own file (its application_id says otherwise)".into(),
        ));
    };
    if &owner != tenant {
        return Ok(Some(format!("it is tenant {owner}'s own file")));
    }
    let theirs: Option<String> = conn
        .query_row(
            "SELECT node_id FROM node_state WHERE singleton = 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if theirs.as_deref() != node {
        return Ok(Some(format!(
            "it belongs to node {}, not to this node {}",
            theirs.as_deref().unwrap_or("(none)"),
            node.unwrap_or("(none)")
        )));
    }
    let found = super::schema::applied_version(conn)?;
    if found != version {
        return Ok(Some(format!(
            "it is at schema version {}, the shared file at {} (opening the tenant through the \
             node migrates it)",
            found.unwrap_or(0),
            version.unwrap_or(0)
        )));
    }
    Ok(None)
}

/// The schema rules, for any tenant table (catalog or not). Table names are only ever bound as
/// parameters here.
fn check_schema(
    conn: &Connection,
    f: &mut Findings,
    table: &str,
    is_tenant_table: &dyn Fn(&str) -> bool,
) -> Result<()> {
    let t = Some(table);
    let cols = columns(conn, table)?;
    match cols.iter().find(|c| c.name == "tenant_id") {
        None => f.add(Check::TenantIdColumn, t, "no tenant_id column"),
        Some(c) if !c.not_null => f.add(Check::TenantIdColumn, t, "tenant_id allows NULL"),
        Some(c) if !c.decl_type.eq_ignore_ascii_case("TEXT") => f.add(
            Check::TenantIdColumn,
            t,
            format!("tenant_id is {}, not TEXT", c.decl_type),
        ),
        Some(_) => {}
    }
    let fks = foreign_keys(conn, table)?;
    let to_registry = fks.iter().any(|fk| {
        fk.parent == "tenants"
            && fk.pairs.len() == 1
            && fk.pairs[0].0 == "tenant_id"
            && fk.pairs[0].1.as_deref().is_none_or(|to| to == "id")
    });
    if !to_registry {
        f.add(
            Check::TenantIdColumn,
            t,
            "tenant_id does not reference tenants(id)",
        );
    }
    for fk in fks.iter().filter(|fk| fk.parent != "tenants") {
        if !is_composite(conn, fk)? && is_tenant_table(&fk.parent) {
            let from: Vec<&str> = fk.pairs.iter().map(|p| p.0.as_str()).collect();
            f.add(
                Check::ForeignKeyNotComposite,
                t,
                format!(
                    "foreign key ({}) -> {} does not include tenant_id",
                    from.join(", "),
                    fk.parent
                ),
            );
        }
    }
    let pk = primary_key(&cols);
    let mut leading = pk.first() == Some(&"tenant_id");
    if !pk.is_empty() && !pk.contains(&"tenant_id") {
        f.add(
            Check::UniqueWithoutTenant,
            t,
            format!("primary key ({}) does not include tenant_id", pk.join(", ")),
        );
    }
    for (name, unique, idx_cols) in indexes(conn, table)? {
        leading |= idx_cols.first().map(String::as_str) == Some("tenant_id");
        // The primary key's own index was judged above.
        let is_pk_index = idx_cols.iter().map(String::as_str).eq(pk.iter().copied());
        if unique && !is_pk_index && !idx_cols.iter().any(|c| c == "tenant_id") {
            f.add(
                Check::UniqueWithoutTenant,
                t,
                format!(
                    "unique index {name} on ({}) does not include tenant_id",
                    idx_cols.join(", ")
                ),
            );
        }
    }
    if !leading {
        f.add(
            Check::NoTenantLeadingIndex,
            t,
            "no index or primary key leads with tenant_id",
        );
    }
    if catalog::table(table).is_none() && !freezes(conn, table, "BEFORE UPDATE OF TENANT_ID ON")? {
        f.add(
            Check::TenantIdMutable,
            t,
            "no trigger refuses an UPDATE of tenant_id",
        );
    }
    Ok(())
}

fn is_composite(conn: &Connection, fk: &ForeignKey) -> Result<bool> {
    let parent_pk: Vec<String> = if fk.pairs.iter().any(|p| p.1.is_none()) {
        primary_key(&columns(conn, &fk.parent)?)
            .into_iter()
            .map(str::to_owned)
            .collect()
    } else {
        Vec::new()
    };
    Ok(fk.pairs.iter().enumerate().any(|(i, (from, to))| {
        let to = to.as_deref().or(parent_pk.get(i).map(String::as_str));
        from == "tenant_id" && to == Some("tenant_id")
    }))
}

/// The rules only the catalog can tell: expected columns, a composite foreign key behind every
/// reference, a tenant_id freeze that really fires, and the data. Only catalog spellings of
/// names reach SQL text. Returns the rows examined.
fn check_catalog_table(
    conn: &Connection,
    probe: &Probe,
    f: &mut Findings,
    def: &'static TableDef,
) -> Result<u64> {
    let t = Some(def.name);
    let cols = columns(conn, def.name)?;
    let expected = [("id", "TEXT", false), ("tenant_id", "TEXT", false)]
        .into_iter()
        .chain(
            def.columns
                .iter()
                .map(|c| (c.name, c.kind.sql_type(), c.nullable)),
        );
    for (name, ty, nullable) in expected {
        match cols.iter().find(|c| c.name == name) {
            None => f.add(
                Check::CatalogMismatch,
                t,
                format!("column {name} is missing"),
            ),
            Some(c) if !c.decl_type.eq_ignore_ascii_case(ty) || c.not_null == nullable => f.add(
                Check::CatalogMismatch,
                t,
                format!(
                    "column {name} is {} {}, the catalog expects {ty} {}",
                    c.decl_type,
                    if c.not_null { "NOT NULL" } else { "NULL" },
                    if nullable { "NULL" } else { "NOT NULL" }
                ),
            ),
            Some(_) => {}
        }
    }
    for extra in cols
        .iter()
        .filter(|c| c.name != "id" && c.name != "tenant_id" && def.column(&c.name).is_none())
    {
        if extra.not_null && !extra.has_default {
            f.add(
                Check::CatalogMismatch,
                t,
                format!(
                    "extra column {} is NOT NULL without a default, so inserts fail",
                    extra.name
                ),
            );
        }
    }

    let fks = foreign_keys(conn, def.name)?;
    for col in def.columns {
        let Some(parent) = col.references else {
            continue;
        };
        let enforced = fks.iter().any(|fk| {
            fk.parent == parent
                && fk.pairs.len() == 2
                && fk
                    .pairs
                    .iter()
                    .any(|(from, to)| from == "tenant_id" && to.as_deref() == Some("tenant_id"))
                && fk
                    .pairs
                    .iter()
                    .any(|(from, to)| from == col.name && to.as_deref() == Some("id"))
        });
        if !enforced {
            f.add(
                Check::ForeignKeyNotComposite,
                t,
                format!(
                    "{} has no foreign key (tenant_id, {}) -> {parent}(tenant_id, id)",
                    col.name, col.name
                ),
            );
            cross_tenant_rows(conn, f, def, col.name, parent)?;
        }
    }

    let (rows, nulls, unknown): (i64, i64, i64) = conn.query_row(
        &format!(
            "SELECT count(*), coalesce(sum(t.tenant_id IS NULL), 0),
                    coalesce(sum(t.tenant_id IS NOT NULL AND NOT EXISTS
                        (SELECT 1 FROM tenants r WHERE r.id = t.tenant_id)), 0)
             FROM \"{}\" AS t",
            def.name
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if nulls > 0 {
        f.add(
            Check::NullTenantId,
            t,
            format!("{nulls} rows have a NULL tenant_id"),
        );
    }
    if unknown > 0 {
        f.add(
            Check::UnknownTenant,
            t,
            format!("{unknown} rows name a tenant missing from the registry"),
        );
    }
    if !probe.tenant_id_update_refused(conn, def, rows > 0)? {
        f.add(
            Check::TenantIdMutable,
            t,
            "an UPDATE of tenant_id is not refused by a trigger",
        );
    }
    Ok(u64::try_from(rows).unwrap_or(0))
}

/// Where verify tries to move a row to another tenant, since the file itself is only read: an
/// in-memory database with the file's tables and views, every registry row, one row of each
/// catalog table, and then the file's triggers (created after the rows, so that no insert
/// trigger stands in the way of copying them), in the order the file made them.
///
/// Tables with a trigger (or the row) that could not be copied are judged by reading their
/// triggers instead, as an empty table is. The schema text comes from the file being checked:
/// it runs only here, one statement at a time, on a connection that can attach nothing.
struct Probe {
    conn: Connection,
    /// Tables whose copy is incomplete (a trigger or their row could not be copied).
    incomplete: HashSet<String>,
}

impl Probe {
    fn build(file: &Connection, tables: &[String]) -> Result<Self> {
        let conn = Connection::open_in_memory()?;
        conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
        let mut incomplete = HashSet::new();
        let objects: Vec<(String, String, String)> = {
            let mut stmt = file.prepare(
                "SELECT type, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL \
                 AND type IN ('table', 'view', 'trigger') \
                 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let is_virtual = |sql: &str| {
            sql.split_whitespace()
                .nth(1)
                .is_some_and(|w| w.eq_ignore_ascii_case("VIRTUAL"))
        };
        for (kind, table, sql) in objects.iter().filter(|o| o.0 != "trigger") {
            if is_virtual(sql) {
                continue;
            }
            if conn.execute(sql, []).is_err() && kind == "table" {
                incomplete.insert(table.clone());
            }
        }
        let copies = std::iter::once("tenants").chain(
            catalog::TABLES
                .iter()
                .map(|t| t.name)
                .filter(|t| tables.iter().any(|n| n == t)),
        );
        for table in copies {
            // Every registry row (triggers may look tenants up); one row of any other table.
            let limit = if table == "tenants" { "" } else { " LIMIT 1" };
            match copy_rows(file, &conn, table, limit) {
                Ok(true) => {}
                Err(e) if environmental(&e) => return Err(e),
                Ok(false) | Err(_) => {
                    incomplete.insert(table.to_owned());
                }
            }
        }
        for (_, table, sql) in objects.iter().filter(|o| o.0 == "trigger") {
            if conn.execute(sql, []).is_err() {
                incomplete.insert(table.clone());
            }
        }
        Ok(Self { conn, incomplete })
    }

    /// Whether the database refuses moving a row to another tenant. With a row to try, it
    /// tries on the copy, inside a savepoint that is always rolled back; on an empty table, or
    /// one the copy does not hold whole, it reads the file's triggers.
    fn tenant_id_update_refused(
        &self,
        file: &Connection,
        def: &'static TableDef,
        has_rows: bool,
    ) -> Result<bool> {
        if !has_rows || self.incomplete.contains(def.name) {
            return freezes(file, def.name, "BEFORE UPDATE OF TENANT_ID ON");
        }
        let conn = &self.conn;
        // Move a row to a real, freshly registered tenant (a trigger that only refuses unknown
        // tenants must not pass), inside a savepoint that is always rolled back.
        conn.execute_batch("SAVEPOINT pos_verify_probe")?;
        let probe = (|| -> rusqlite::Result<usize> {
            conn.execute(
                "INSERT INTO tenants (id, name, max_users, max_api_calls_month, settings, created_at, updated_at)
                 VALUES ('pos-verify-probe', 'probe', 0, 0, '{}', '', '')",
                [],
            )?;
            conn.execute(
                &format!(
                    "UPDATE \"{0}\" SET tenant_id = 'pos-verify-probe' \
                     WHERE id = (SELECT id FROM \"{0}\" LIMIT 1)",
                    def.name
                ),
                [],
            )
        })();
        conn.execute_batch("ROLLBACK TO pos_verify_probe; RELEASE pos_verify_probe")?;
        match probe {
            Ok(_) => Ok(false),
            Err(rusqlite::Error::SqliteFailure(e, msg))
                if e.code == rusqlite::ffi::ErrorCode::ConstraintViolation =>
            {
                Ok(e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_TRIGGER
                    && msg.is_some_and(|m| m.contains("tenant_id")))
            }
            // Anything else (a trigger naming something the copy lacks) says nothing about
            // the freeze: the triggers are read instead.
            Err(_) => freezes(file, def.name, "BEFORE UPDATE OF TENANT_ID ON"),
        }
    }
}

/// Copies the rows of `table` that `limit` selects from the file into the probe's copy, by the
/// file's own column names (quoted). `Ok(false)`: the copy refused a row (its constraints, a
/// table it could not create); an error is the file's.
fn copy_rows(file: &Connection, probe: &Connection, table: &str, limit: &str) -> Result<bool> {
    let cols: Vec<String> = columns(file, table)?
        .into_iter()
        .map(|c| ident(&c.name))
        .collect();
    let list = cols.join(", ");
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let mut read = file.prepare(&format!("SELECT {list} FROM {}{limit}", ident(table)))?;
    let Ok(mut write) = probe.prepare(&format!(
        "INSERT INTO {} ({list}) VALUES ({})",
        ident(table),
        marks.join(", ")
    )) else {
        return Ok(false);
    };
    let mut rows = read.query([])?;
    while let Some(row) = rows.next()? {
        let values = (0..cols.len())
            .map(|i| row.get::<_, Value>(i))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if write.execute(rusqlite::params_from_iter(values)).is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether a trigger on `table` whose text contains `needle` (upper case) raises an error.
fn freezes(conn: &Connection, table: &str, needle: &str) -> Result<bool> {
    let mut stmt = conn
        .prepare_cached("SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1")?;
    let sqls = stmt
        .query_map([table], |r| r.get::<_, Option<String>>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(sqls.into_iter().flatten().any(|sql| {
        let norm = sql
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_uppercase();
        norm.contains(needle) && norm.contains("RAISE(")
    }))
}

/// Counts the rows whose `column` points at a row of `parent` that belongs to another tenant
/// (possible only where the composite foreign key is missing).
fn cross_tenant_rows(
    conn: &Connection,
    f: &mut Findings,
    child: &'static TableDef,
    column: &'static str,
    parent: &'static str,
) -> Result<()> {
    let n: i64 = conn.query_row(
        &format!(
            "SELECT count(*) FROM \"{c}\" AS c WHERE c.\"{column}\" IS NOT NULL AND EXISTS
               (SELECT 1 FROM \"{parent}\" AS p WHERE p.id = c.\"{column}\" AND p.tenant_id IS NOT c.tenant_id)",
            c = child.name
        ),
        [],
        |r| r.get(0),
    )?;
    if n > 0 {
        f.add(
            Check::CrossTenantReference,
            Some(child.name),
            format!("{n} rows reference a {parent} row of another tenant through {column}"),
        );
    }
    Ok(())
}
