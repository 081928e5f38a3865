//! Taking, listing and checking whole-node backups.
//!
//! Invariants, and why:
//! - A backup is taken on a connection of its own, inside one read transaction: in WAL mode a
//!   reader never blocks a writer, so the till's commits go on; and a copy inside one read
//!   transaction is of one instant, which other connections' commits cannot make restart
//!   (without it SQLite restarts the copy after every commit, and a busy till never lets it
//!   finish). The copy goes a few pages a step ([`CreateOptions::pages_per_step`]), yielding
//!   between steps.
//! - Its rows are written (`running`) before the copy, committed in a write transaction of a
//!   few milliseconds, and marked `ok` with the SHA-256 and size only once the copy, its
//!   `.sha256` and the directory are synced; a copy that failed is removed and its rows say
//!   `failed`.
//! - Checking a backup never writes to it: it is opened read-only.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use super::error::{BackupError, BackupStep};
use super::retention::{prune_on, PruneOptions, PruneReport};
use super::snapshot::{sha256_file, take_snapshot_in_steps};
use super::{checksum_path, BackupFile, Pages};
use crate::ids::{RowId, TenantId, Timestamp};
use crate::store::{Store, BUSY_TIMEOUT};
use crate::tenant::settings::text_enum;

/// What a backup row holds: a copy of the whole node, or one tenant's export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackupKind {
    /// A copy of the whole node database.
    Full,
    /// One tenant's rows (`Store::export_tenant`).
    TenantExport,
}
text_enum!(BackupKind, "backup kind", { Full => "full", TenantExport => "tenant_export" });

/// Where a backup stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackupStatus {
    /// Being written (or its process died while writing it).
    Running,
    /// Written, synced and hashed.
    Ok,
    /// It failed; its copy was removed.
    Failed,
}
text_enum!(BackupStatus, "backup status", { Running => "running", Ok => "ok", Failed => "failed" });

/// How [`create`] takes a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateOptions {
    /// Pages (4 KiB each) copied a step. Default 256 (1 MiB): a step reads that much and
    /// yields, so a writer beside it shares the disk in small pieces.
    pub pages_per_step: u32,
    /// Prune with these options once the backup is taken; `None` keeps every backup.
    /// Default: pruning with [`PruneOptions::default`].
    pub prune: Option<PruneOptions>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self {
            pages_per_step: 256,
            prune: Some(PruneOptions::default()),
        }
    }
}

impl CreateOptions {
    /// No pruning after the backup.
    pub fn without_prune(mut self) -> Self {
        self.prune = None;
        self
    }
}

/// What [`create`] did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BackupReport {
    /// The backup's id (the same in every tenant's row).
    pub id: RowId,
    /// The copy, its SHA-256 and size.
    pub file: BackupFile,
    /// The node the copy is of.
    pub node_id: RowId,
    /// The tenants on the node, each of which has a row for this backup.
    pub tenants: Vec<TenantId>,
    /// Pages copied.
    pub pages: u64,
    /// Seconds the backup took (without the pruning).
    pub seconds: f64,
    /// What pruning removed afterwards, when it ran.
    pub pruned: Option<PruneReport>,
}

/// One backup as `backups` records it (its rows of every tenant, taken together).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BackupEntry {
    /// The backup's id.
    pub id: RowId,
    /// A copy of the node or one tenant's export.
    pub kind: BackupKind,
    /// The file.
    pub path: PathBuf,
    /// Its SHA-256, once written.
    pub sha256: Option<String>,
    /// Its size in bytes, once written.
    pub bytes: Option<u64>,
    /// Where it stands.
    pub status: BackupStatus,
    /// When it started.
    pub created_at: Timestamp,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// The tenants with a row for it, by id.
    pub tenants: Vec<TenantId>,
    /// Whether the file is there now.
    pub file_present: bool,
}

/// What [`verify`] found about one backup.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BackupCheck {
    /// The backup's id.
    pub id: RowId,
    /// A copy of the node or one tenant's export.
    pub kind: BackupKind,
    /// The file.
    pub path: PathBuf,
    /// The file's SHA-256 as hashed now, if it could be read.
    pub sha256: Option<String>,
    /// What is wrong with it; `None` when it hashes as recorded and SQLite finds it whole.
    pub problem: Option<String>,
}

/// Backs up the node database `db` into a new file in `dir` (created if missing) while other
/// connections keep writing, records it in `backups` (one row per tenant, see the module
/// docs), writes `<copy>.sha256`, then prunes as [`CreateOptions::prune`] says. `progress` is
/// called after every step with the pages copied so far.
///
/// `db` must exist (a backup never creates a database). A failure removes the half-written
/// copy and marks the rows `failed`. A node with no tenant has no row to record the backup
/// in: the copy and its `.sha256` are written all the same, and [`list`] does not show it.
pub fn create(
    db: &Path,
    dir: &Path,
    options: &CreateOptions,
    progress: &mut dyn FnMut(Pages),
) -> Result<BackupReport, BackupError> {
    let started = Instant::now();
    let conn = open_node(db)?;
    let node_id = node_id_of(&conn, db)?;
    std::fs::create_dir_all(dir).map_err(|e| BackupError::Destination {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let dir = dir.canonicalize().map_err(|e| BackupError::Destination {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let stem = db
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "node".into());
    let now = Timestamp::now();
    let name = format!(
        "{stem}.backup-{}.db",
        now.as_datetime().format("%Y%m%dT%H%M%S%.3fZ")
    );
    let path = dir.join(&name);
    if path.exists() {
        return Err(BackupError::Destination {
            path,
            reason: "a file of that name already exists".into(),
        });
    }
    let id = RowId::new();
    let record =
        |e: rusqlite::Error| BackupError::failed(BackupStep::Record, db, e, "no backup was taken");
    let tenants: Vec<TenantId> = {
        let mut stmt = conn
            .prepare("SELECT id FROM tenants ORDER BY id")
            .map_err(record)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(record)?;
        rows.collect::<rusqlite::Result<_>>().map_err(record)?
    };
    // Written before the copy, so the copy holds its own record (a restore marks it `ok`).
    conn.execute(
        "INSERT INTO backups (id, tenant_id, kind, destination_id, path, sha256, size_bytes,
                              status, created_at, finished_at)
         SELECT ?1, id, 'full', NULL, ?2, NULL, NULL, 'running', ?3, NULL FROM tenants",
        params![id, path.to_string_lossy(), now],
    )
    .map_err(record)?;

    let mut pages = 0u64;
    let copied = copy_in_read_transaction(&conn, &dir, &name, options, &mut |p: Pages| {
        pages = p.total;
        progress(p);
    });
    let file = match copied {
        Ok(file) => file,
        Err(reason) => {
            mark_failed(&conn, id);
            return Err(BackupError::failed(
                BackupStep::Copy,
                &path,
                reason,
                "the half-written copy was removed and the backup is recorded as failed",
            ));
        }
    };
    conn.execute(
        "UPDATE backups SET status = 'ok', sha256 = ?2, size_bytes = ?3, finished_at = ?4
         WHERE id = ?1",
        params![
            id,
            file.sha256,
            i64::try_from(file.bytes).unwrap_or(i64::MAX),
            Timestamp::now()
        ],
    )
    .map_err(|e| {
        BackupError::failed(
            BackupStep::Record,
            db,
            e,
            "the copy and its .sha256 are written and good, but its rows still say running",
        )
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let pruned = match &options.prune {
        Some(prune) => Some(prune_on(&conn, db, prune, Timestamp::now())?),
        None => None,
    };
    Ok(BackupReport {
        id,
        file,
        node_id,
        tenants,
        pages,
        seconds,
        pruned,
    })
}

/// The copy itself, inside one read transaction on `conn`, then hashed and sealed.
fn copy_in_read_transaction(
    conn: &Connection,
    dir: &Path,
    name: &str,
    options: &CreateOptions,
    progress: &mut dyn FnMut(Pages),
) -> Result<BackupFile, String> {
    conn.execute_batch("BEGIN DEFERRED")
        .map_err(|e| e.to_string())?;
    let copy = (|| {
        // The first read fixes the snapshot the whole copy is of.
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
            .map_err(|e| e.to_string())?;
        let step = i32::try_from(options.pages_per_step.max(1)).unwrap_or(i32::MAX);
        take_snapshot_in_steps(conn, dir, name, step, progress).map_err(|e| e.to_string())
    })();
    // Ends the read transaction whatever happened (it wrote nothing).
    let _ = conn.execute_batch("COMMIT");
    let path = dir.join(name);
    copy?.finish().map_err(|e| {
        // A copy that could not be hashed must not be taken for a good one later.
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(checksum_path(&path));
        e.to_string()
    })
}

/// Marks a backup's rows failed (best effort: the caller is already reporting a failure).
fn mark_failed(conn: &Connection, id: RowId) {
    let _ = conn.execute(
        "UPDATE backups SET status = 'failed', finished_at = ?2 WHERE id = ?1",
        params![id, Timestamp::now()],
    );
}

/// Every backup recorded in the node database `db` (its rows of every tenant taken together),
/// newest first.
pub fn list(db: &Path) -> Result<Vec<BackupEntry>, BackupError> {
    let conn = open_node(db)?;
    list_on(&conn).map_err(|e| BackupError::failed(BackupStep::Open, db, e, "nothing was changed"))
}

pub(super) fn list_on(conn: &Connection) -> rusqlite::Result<Vec<BackupEntry>> {
    let mut stmt = conn.prepare(
        "SELECT id, min(kind), min(path), max(sha256), max(size_bytes), min(status),
                min(created_at), max(finished_at), group_concat(tenant_id, ' ')
         FROM backups GROUP BY id ORDER BY min(created_at) DESC, id DESC",
    )?;
    let rows = stmt.query_map([], |r| {
        let path: String = r.get(2)?;
        let tenants: String = r.get(8)?;
        let mut tenants: Vec<TenantId> =
            tenants.split(' ').filter_map(|t| t.parse().ok()).collect();
        tenants.sort();
        let path = PathBuf::from(path);
        Ok(BackupEntry {
            id: r.get(0)?,
            kind: r.get(1)?,
            file_present: path.is_file(),
            path,
            sha256: r.get(3)?,
            bytes: r
                .get::<_, Option<i64>>(4)?
                .map(|b| u64::try_from(b).unwrap_or(0)),
            status: r.get(5)?,
            created_at: r.get(6)?,
            finished_at: r.get(7)?,
            tenants,
        })
    })?;
    rows.collect()
}

/// Checks backups recorded in `db`: the one with `id`, or every one recorded as `ok`. Each is
/// hashed again and compared with the SHA-256 in `backups` and in its `.sha256`, then opened
/// read-only and run through `integrity_check`. A problem is reported in its [`BackupCheck`],
/// not as an error; an unknown `id` is [`BackupError::UnknownBackup`].
pub fn verify(db: &Path, id: Option<RowId>) -> Result<Vec<BackupCheck>, BackupError> {
    let conn = open_node(db)?;
    let entries = list_on(&conn)
        .map_err(|e| BackupError::failed(BackupStep::Open, db, e, "nothing was changed"))?;
    drop(conn);
    let chosen: Vec<BackupEntry> = match id {
        Some(id) => {
            let found: Vec<BackupEntry> = entries.into_iter().filter(|e| e.id == id).collect();
            if found.is_empty() {
                return Err(BackupError::UnknownBackup { id });
            }
            found
        }
        None => entries
            .into_iter()
            .filter(|e| e.status == BackupStatus::Ok)
            .collect(),
    };
    Ok(chosen.iter().map(check_entry).collect())
}

fn check_entry(entry: &BackupEntry) -> BackupCheck {
    let mut check = BackupCheck {
        id: entry.id,
        kind: entry.kind,
        path: entry.path.clone(),
        sha256: None,
        problem: None,
    };
    check.problem = (|| {
        if entry.status != BackupStatus::Ok {
            return Some(format!(
                "the backup did not finish (status {})",
                entry.status
            ));
        }
        if !entry.path.is_file() {
            return Some("the file is missing".into());
        }
        let found = match sha256_file(&entry.path) {
            Ok((found, _)) => found,
            Err(e) => return Some(format!("cannot read the file: {e}")),
        };
        check.sha256 = Some(found.clone());
        let Some(recorded) = &entry.sha256 else {
            return Some("no SHA-256 is recorded for it".into());
        };
        if &found != recorded {
            return Some(format!(
                "checksum mismatch: backups records {recorded}, the file hashes to {found}"
            ));
        }
        match recorded_checksum(&entry.path) {
            Ok(beside) if &beside != recorded => {
                return Some(format!(
                    "checksum mismatch: {} says {beside}, backups records {recorded}",
                    checksum_path(&entry.path).display()
                ))
            }
            Ok(_) => {}
            Err(e) => return Some(e.to_string()),
        }
        match inspect_copy(&entry.path) {
            Ok(copy) => match (entry.kind, copy.export) {
                (BackupKind::Full, true) => Some("the file is a tenant export".into()),
                (BackupKind::TenantExport, false) => Some("the file is not a tenant export".into()),
                _ => None,
            },
            Err(e) => Some(e.to_string()),
        }
    })();
    check
}

/// The SHA-256 recorded in `<file>.sha256`.
pub(crate) fn recorded_checksum(file: &Path) -> Result<String, BackupError> {
    let sums = checksum_path(file);
    let text = std::fs::read_to_string(&sums).map_err(|e| BackupError::NoChecksum {
        path: sums.clone(),
        reason: e.to_string(),
    })?;
    text.split_whitespace()
        .next()
        .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase)
        .ok_or(BackupError::NoChecksum {
            path: sums,
            reason: "it does not start with a SHA-256 in hex".into(),
        })
}

/// Checks `file` against the SHA-256 recorded beside it and returns the digest.
pub(crate) fn check_checksum(file: &Path) -> Result<String, BackupError> {
    if !file.is_file() {
        return Err(BackupError::NotFound {
            path: file.to_path_buf(),
        });
    }
    let expected = recorded_checksum(file)?;
    let (found, _) = sha256_file(file).map_err(|e| BackupError::NotANode {
        path: file.to_path_buf(),
        reason: format!("cannot read it: {e}"),
    })?;
    if found != expected {
        return Err(BackupError::ChecksumMismatch {
            path: file.to_path_buf(),
            recorded_in: checksum_path(file).display().to_string(),
            expected,
            found,
        });
    }
    Ok(found)
}

/// What a copy (a backup or an export) says about itself.
#[derive(Debug, Clone)]
pub(crate) struct CopyInfo {
    /// The node it was taken on.
    pub(crate) node_id: RowId,
    /// Its schema version.
    pub(crate) schema_version: i64,
    /// Whether it is a tenant export (its application id says so).
    pub(crate) export: bool,
}

/// Opens a copy read-only and checks that SQLite finds it whole and that it is a node database
/// this build can read.
pub(crate) fn inspect_copy(path: &Path) -> Result<CopyInfo, BackupError> {
    let not_node = |reason: String| BackupError::NotANode {
        path: path.to_path_buf(),
        reason,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| not_node(e.to_string()))?;
    let problems: Vec<String> = (|| {
        let mut stmt = conn.prepare("PRAGMA integrity_check(10)")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
    })()
    .map_err(|e| not_node(e.to_string()))?;
    if problems != ["ok"] {
        return Err(BackupError::Damaged {
            path: path.to_path_buf(),
            reason: problems.join("; "),
        });
    }
    let info = describe(&conn).map_err(not_node)?;
    if info.schema_version > Store::supported_schema_version() {
        return Err(BackupError::SchemaTooNew {
            path: path.to_path_buf(),
            found: info.schema_version,
            supported: Store::supported_schema_version(),
        });
    }
    Ok(info)
}

/// Reads what a node database or a copy of one says about itself; the reason it is not one.
pub(crate) fn describe(conn: &Connection) -> Result<CopyInfo, String> {
    let has = |table: &str| -> Result<bool, String> {
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
            [table],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())
    };
    for table in [
        "tenants",
        "node_state",
        "backups",
        "refinery_schema_history",
    ] {
        if !has(table)? {
            return Err(format!("it has no {table} table"));
        }
    }
    let node_id: Option<RowId> = conn
        .query_row(
            "SELECT node_id FROM node_state WHERE singleton = 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| e.to_string())?;
    let node_id = node_id.ok_or("it has no node id")?;
    let schema_version: i64 = conn
        .query_row(
            "SELECT max(version) FROM refinery_schema_history",
            [],
            |r| r.get::<_, Option<i64>>(0),
        )
        .map_err(|e| e.to_string())?
        .unwrap_or(0);
    let application_id: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    Ok(CopyInfo {
        node_id,
        schema_version,
        export: application_id == crate::tenant_io::EXPORT_APPLICATION_ID,
    })
}

/// Opens an existing node database for reading and recording backups (never creates one).
pub(super) fn open_node(db: &Path) -> Result<Connection, BackupError> {
    if !db.is_file() {
        return Err(BackupError::NotFound {
            path: db.to_path_buf(),
        });
    }
    let not_node = |reason: String| BackupError::NotANode {
        path: db.to_path_buf(),
        reason,
    };
    let conn = crate::store::vfs::open(db).map_err(|e| not_node(e.to_string()))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| not_node(e.to_string()))?;
    let info = describe(&conn).map_err(not_node)?;
    if info.export {
        return Err(BackupError::TenantExport {
            path: db.to_path_buf(),
        });
    }
    if info.schema_version > Store::supported_schema_version() {
        return Err(BackupError::SchemaTooNew {
            path: db.to_path_buf(),
            found: info.schema_version,
            supported: Store::supported_schema_version(),
        });
    }
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(|e| not_node(e.to_string()))?;
    Ok(conn)
}

fn node_id_of(conn: &Connection, db: &Path) -> Result<RowId, BackupError> {
    describe(conn)
        .map(|i| i.node_id)
        .map_err(|reason| BackupError::NotANode {
            path: db.to_path_buf(),
            reason,
        })
}
