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
//! - Each dedicated tenant's own file is copied the same way, on a read-only connection of
//!   its own, before the shared file; the shared file's snapshot must route to exactly the
//!   files copied, or they are copied again (once). See the module docs of `backup`.
//! - Checking a backup never writes to it: it is opened read-only.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use super::error::{BackupError, BackupStep};
use super::retention::{prune_on, PruneOptions, PruneReport};
use super::snapshot::{sha256_file, take_snapshot_in_steps};
use super::tenant_files::{
    check_parts, listed_parts, parts_dir, remove_parts, write_manifest, TenantFileCheck,
    TenantFileCopy, TenantFilePart, MANIFEST,
};
use super::{checksum_path, BackupFile, Pages};
use crate::ids::{RowId, TenantId, Timestamp};
use crate::store::homes::{dedicated_routes, homes_dir};
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
    /// The copy of the shared file, its SHA-256 and size.
    pub file: BackupFile,
    /// The copy of each dedicated tenant's own file, by tenant (none for a node whose tenants
    /// all live in the shared file, and then left out of the JSON).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenant_files: Vec<TenantFileCopy>,
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
    /// The dedicated tenants' own files of a whole-node backup, as its `SHA256SUMS` lists
    /// them (none, and left out of the JSON, for a backup of a node without any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenant_files: Vec<TenantFilePart>,
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
    /// What is wrong with it (or with one of its tenant files); `None` when it hashes as
    /// recorded and SQLite finds it whole, and so do its tenant files.
    pub problem: Option<String>,
    /// Each dedicated tenant's own file the backup must have, checked (none, and left out of
    /// the JSON, for a backup of a node without any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenant_files: Vec<TenantFileCheck>,
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
    let parts = parts_dir(&path);
    if parts.exists() {
        return Err(BackupError::Destination {
            path: parts,
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
    let copied = copy_node(&conn, db, node_id, &dir, &name, options, &mut |p: Pages| {
        pages = p.total;
        progress(p);
    });
    let (file, tenant_files) = match copied {
        Ok(copied) => copied,
        Err(e) => {
            mark_failed(&conn, id);
            return Err(e);
        }
    };
    if !tenant_files.is_empty() {
        if let Err(e) = write_manifest(&parts, &tenant_files) {
            discard(&path);
            mark_failed(&conn, id);
            return Err(BackupError::failed(
                BackupStep::Seal,
                parts.join(MANIFEST),
                e,
                "the copies were removed and the backup is recorded as failed",
            ));
        }
    }
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
        tenant_files,
        node_id,
        tenants,
        pages,
        seconds,
        pruned,
    })
}

/// What a copy in a read transaction may refuse to copy, having read the snapshot it would be
/// of.
enum CopyFailed {
    /// The tenants' routes in the snapshot are not those the tenant files were taken for.
    RoutesChanged,
    /// Anything else, said.
    Other(String),
}

/// Copies the node: each dedicated tenant's own file into `<copy>.tenants/`, then the shared
/// file, whose snapshot must route to exactly the files taken (checked inside its read
/// transaction). A promotion or demotion in between makes it take the tenant files again,
/// once. A failure removes every copy it made. Reports the pages of all the copies together.
fn copy_node(
    conn: &Connection,
    db: &Path,
    node_id: RowId,
    dir: &Path,
    name: &str,
    options: &CreateOptions,
    progress: &mut dyn FnMut(Pages),
) -> Result<(BackupFile, Vec<TenantFileCopy>), BackupError> {
    let path = dir.join(name);
    let parts = parts_dir(&path);
    let left = "the copies were removed and the backup is recorded as failed";
    for _attempt in 0..2 {
        let routes = dedicated_routes(conn)
            .map_err(|e| BackupError::failed(BackupStep::Copy, db, e, "nothing was copied"))?;
        // Pages of the copies finished, and of the one running.
        let (base, current) = (Cell::new(0u64), Cell::new(0u64));
        let mut report = |p: Pages| {
            current.set(p.total);
            progress(Pages {
                done: base.get() + p.done,
                total: base.get() + p.total,
            })
        };
        let mut taken = Vec::with_capacity(routes.len());
        for (tenant, file) in &routes {
            let copied = copy_tenant_file(
                db,
                node_id,
                tenant,
                file.as_deref(),
                &parts,
                options,
                &mut report,
            );
            match copied {
                Ok(copy) => {
                    base.set(base.get() + current.take());
                    taken.push(copy);
                }
                Err((at, reason)) => {
                    discard(&path);
                    return Err(BackupError::failed(BackupStep::Copy, at, reason, left));
                }
            }
        }
        let check = |c: &Connection| match dedicated_routes(c) {
            Ok(now) if now == routes => Ok(()),
            Ok(_) => Err(CopyFailed::RoutesChanged),
            Err(e) => Err(CopyFailed::Other(e.to_string())),
        };
        match copy_in_read_transaction(conn, dir, name, options, &check, &mut report) {
            Ok(file) => return Ok((file, taken)),
            Err(CopyFailed::RoutesChanged) => discard(&path),
            Err(CopyFailed::Other(reason)) => {
                discard(&path);
                return Err(BackupError::failed(BackupStep::Copy, &path, reason, left));
            }
        }
    }
    Err(BackupError::failed(
        BackupStep::Copy,
        db,
        "a tenant was promoted or demoted while its file was being copied, twice in a row",
        "the copies were removed and the backup is recorded as failed; run it again once no \
         tenant is being moved",
    ))
}

/// Copies one dedicated tenant's own file (the route's `file` in the node's homes directory)
/// into `parts`, on a read-only connection of its own inside one read transaction, as the
/// shared file is copied. The error names the file it is about.
fn copy_tenant_file(
    db: &Path,
    node_id: RowId,
    tenant: &TenantId,
    file: Option<&str>,
    parts: &Path,
    options: &CreateOptions,
    progress: &mut dyn FnMut(Pages),
) -> Result<TenantFileCopy, (PathBuf, String)> {
    let Some(file) = file else {
        return Err((
            db.to_path_buf(),
            format!("tenant {tenant} is dedicated, but no promotion names its own file"),
        ));
    };
    let src = homes_dir(db).join(file);
    let fail = |reason: String| (src.clone(), format!("tenant {tenant}'s own file: {reason}"));
    if !src.is_file() {
        return Err(fail("it is missing".into()));
    }
    to_wal(&src);
    let home = Connection::open_with_flags(
        &src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| fail(e.to_string()))?;
    home.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| fail(e.to_string()))?;
    let info = describe(&home).map_err(fail)?;
    if info.tenant_file.as_ref() != Some(tenant) || info.node_id != node_id {
        return Err(fail(format!(
            "it is not this tenant's own file of node {node_id}"
        )));
    }
    let copied = copy_in_read_transaction(
        &home,
        parts,
        file,
        options,
        &|_: &Connection| Ok(()),
        progress,
    );
    match copied {
        Ok(copy) => Ok(TenantFileCopy {
            tenant: tenant.clone(),
            file: copy,
        }),
        Err(CopyFailed::Other(reason)) => Err(fail(reason)),
        Err(CopyFailed::RoutesChanged) => Err(fail("its route changed".into())),
    }
}

/// Puts the database at `path` in WAL mode if it is not (best effort). A tenant's file is
/// written in rollback-journal mode and switched to WAL by the first store that opens it; until
/// then a reader blocks every writer, so a backup copying it would hold the till up for the
/// whole copy. The switch is the one the tenant's first open makes, and changes no row.
fn to_wal(path: &Path) {
    let Ok(conn) = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return;
    };
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
    let mode: Option<String> = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .ok();
    if mode.is_some_and(|m| !m.eq_ignore_ascii_case("wal")) {
        let _ = conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()));
    }
}

/// Removes a copy, its `.sha256` and its tenant files (best effort: the caller is already
/// reporting a failure).
fn discard(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(checksum_path(path));
    remove_parts(path);
}

/// The copy itself, inside one read transaction on `conn`, then hashed and sealed.
/// `check` runs on the snapshot before the copy starts and may refuse it.
fn copy_in_read_transaction(
    conn: &Connection,
    dir: &Path,
    name: &str,
    options: &CreateOptions,
    check: &dyn Fn(&Connection) -> Result<(), CopyFailed>,
    progress: &mut dyn FnMut(Pages),
) -> Result<BackupFile, CopyFailed> {
    let other = |e: &dyn std::fmt::Display| CopyFailed::Other(e.to_string());
    conn.execute_batch("BEGIN DEFERRED")
        .map_err(|e| other(&e))?;
    let copy = (|| {
        // The first read fixes the snapshot the whole copy is of.
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
            .map_err(|e| other(&e))?;
        check(conn)?;
        let step = i32::try_from(options.pages_per_step.max(1)).unwrap_or(i32::MAX);
        take_snapshot_in_steps(conn, dir, name, step, progress).map_err(|e| other(&e))
    })();
    // Ends the read transaction whatever happened (it wrote nothing).
    let _ = conn.execute_batch("COMMIT");
    let path = dir.join(name);
    copy?.finish().map_err(|e| {
        // A copy that could not be hashed must not be taken for a good one later.
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(checksum_path(&path));
        other(&e)
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
        let kind: BackupKind = r.get(1)?;
        Ok(BackupEntry {
            id: r.get(0)?,
            kind,
            file_present: path.is_file(),
            tenant_files: match kind {
                BackupKind::Full => listed_parts(&path),
                _ => Vec::new(),
            },
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
        tenant_files: Vec::new(),
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
        let copy = match inspect_copy(&entry.path) {
            Ok(copy) => copy,
            Err(e) => return Some(e.to_string()),
        };
        match (entry.kind, copy.export) {
            (BackupKind::Full, true) => return Some("the file is a tenant export".into()),
            (BackupKind::TenantExport, false) => {
                return Some("the file is not a tenant export".into())
            }
            (BackupKind::TenantExport, true) => return None,
            (BackupKind::Full, false) => {}
        }
        match check_parts(&entry.path, copy.node_id, copy.schema_version) {
            Ok(parts) => {
                check.tenant_files = parts.reports();
                parts.problem()
            }
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
    /// The tenant it is the own file of, when it is a dedicated tenant's file (or a copy of
    /// one) rather than a node's shared file.
    pub(crate) tenant_file: Option<TenantId>,
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
    let tenant_file = crate::store::homes::home_of(conn).map_err(|e| e.to_string())?;
    Ok(CopyInfo {
        node_id,
        schema_version,
        export: application_id == crate::tenant_io::EXPORT_APPLICATION_ID,
        tenant_file,
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
    if let Some(tenant) = info.tenant_file {
        return Err(not_node(format!(
            "it is tenant {tenant}'s own file; give the node's shared file, which routes to it"
        )));
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
