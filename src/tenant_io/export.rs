//! Writing one tenant's export file (see the module docs of `tenant_io` for its contents and
//! invariants), and [`Store::export_tenant`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::copy::{copy_registry_row, copy_table, table_digest, TableDigest};
use super::{TableCopied, TenantExport, TenantIoError, TenantIoStep, EXPORT_APPLICATION_ID};
use crate::backup::{hex, seal, sync_dir};
use crate::catalog::TABLES;
use crate::hlc::ClockState;
use crate::ids::{RowId, TenantId, Timestamp};
use crate::store::clock::clock_floor;
use crate::store::{install_schema, Store};

impl Store {
    /// Exports one tenant's rows of every tenant table (its outbox, sync state and merge
    /// stamps included) with its registry row and clock to a new standalone SQLite file `to`,
    /// with its SHA-256 in `<to>.sha256`, and records it in `backups` (kind `tenant_export`).
    /// `to` must not exist. `progress` is called after each table.
    ///
    /// The rows are read in one read transaction on the store's connection: other
    /// connections keep writing meanwhile, and the export is of one instant.
    pub fn export_tenant(
        &self,
        tenant: &TenantId,
        to: &Path,
        progress: &mut dyn FnMut(TableCopied),
    ) -> Result<TenantExport, TenantIoError> {
        let home = super::routed(self, tenant)?;
        if !std::ptr::eq(home, self) {
            return home.export_tenant(tenant, to, progress);
        }
        let started = Instant::now();
        let created_at = Timestamp::now();
        check_tenant(self, tenant)?;
        if !self.conn.is_autocommit() {
            return Err(TenantIoError::TransactionOpen);
        }
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Deferred,
        )
        .map_err(|e| failed(TenantIoStep::Check, tenant, e, "nothing was changed"))?;
        let mut export = write_export(&tx, tenant, to, self.node_id(), progress)?;
        drop(tx);
        let record = || -> rusqlite::Result<RowId> {
            let id = RowId::new();
            let tx = rusqlite::Transaction::new_unchecked(
                &self.conn,
                rusqlite::TransactionBehavior::Immediate,
            )?;
            tx.execute(
                "INSERT INTO backups (id, tenant_id, kind, destination_id, path, sha256,
                                      size_bytes, status, created_at, finished_at)
                 VALUES (?1, ?2, 'tenant_export', NULL, ?3, ?4, ?5, 'ok', ?6, ?7)",
                params![
                    id,
                    tenant,
                    export.path.to_string_lossy(),
                    export.sha256,
                    i64::try_from(export.bytes).unwrap_or(i64::MAX),
                    created_at,
                    Timestamp::now()
                ],
            )?;
            tx.commit()?;
            Ok(id)
        };
        let id = record().map_err(|e| {
            failed(
                TenantIoStep::Record,
                tenant,
                e,
                &format!(
                    "the export {} and its .sha256 are written and good, but not recorded in \
                     backups",
                    export.path.display()
                ),
            )
        })?;
        export.backup_id = Some(id);
        export.seconds = started.elapsed().as_secs_f64();
        Ok(export)
    }
}

/// Refuses a tenant the registry does not have.
pub(super) fn check_tenant(store: &Store, tenant: &TenantId) -> Result<(), TenantIoError> {
    match store.tenant_info(tenant) {
        Ok(_) => Ok(()),
        Err(crate::Error::TenantNotFound(_)) => Err(TenantIoError::UnknownTenant {
            tenant: tenant.clone(),
        }),
        Err(e) => Err(failed(
            TenantIoStep::Check,
            tenant,
            e,
            "nothing was changed",
        )),
    }
}

/// A failed step of `tenant`.
pub(super) fn failed(
    step: TenantIoStep,
    tenant: &TenantId,
    reason: impl std::fmt::Display,
    left: &str,
) -> TenantIoError {
    TenantIoError::Failed {
        step,
        tenant: tenant.clone(),
        reason: reason.to_string(),
        left: left.to_owned(),
    }
}

/// SHA-256 over tables' digests, in the order given.
pub(super) fn combined(tables: &[TableDigest]) -> String {
    let mut sha = Sha256::new();
    for t in tables {
        sha.update(t.table.as_bytes());
        sha.update([0]);
        sha.update(t.rows.to_le_bytes());
        sha.update(t.sha256.as_bytes());
    }
    hex(&sha.finalize())
}

/// The clock as the tenant last saw it in `conn`: the node's floor and the tenant's newest
/// stamp in the outbox.
pub(crate) fn tenant_clock(conn: &Connection, tenant: &TenantId) -> crate::Result<ClockState> {
    let floor = clock_floor(conn)?;
    let last: Option<String> = conn
        .query_row(
            "SELECT hlc FROM pending_operations WHERE tenant_id = ?1 ORDER BY hlc DESC LIMIT 1",
            [tenant],
            |r| r.get(0),
        )
        .optional()?;
    let last = match last {
        Some(text) => ClockState::from_stored(&text).map_err(crate::Error::Clock)?,
        None => ClockState::default(),
    };
    Ok(floor.max(last))
}

/// Writes the tenant's rows as `src` reads them (the caller holds a transaction on it) to a new
/// export file `to`, checks and seals it. Nothing is recorded in `src`. A failure removes
/// what it wrote.
pub(super) fn write_export(
    src: &Connection,
    tenant: &TenantId,
    to: &Path,
    node_id: RowId,
    progress: &mut dyn FnMut(TableCopied),
) -> Result<TenantExport, TenantIoError> {
    write_tenant_file(src, tenant, to, node_id, FileKind::Export, progress)
}

/// What a file of one tenant's rows is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FileKind {
    /// An export: sealed with its `.sha256`, never written again.
    Export,
    /// A promoted tenant's own database: its registry row says `dedicated`, and it is a live
    /// database from the moment its route is switched, so no `.sha256` is written beside it.
    TenantHome,
}

/// [`write_export`] for either kind of file.
pub(super) fn write_tenant_file(
    src: &Connection,
    tenant: &TenantId,
    to: &Path,
    node_id: RowId,
    kind: FileKind,
    progress: &mut dyn FnMut(TableCopied),
) -> Result<TenantExport, TenantIoError> {
    let started = Instant::now();
    if to.exists() {
        return Err(TenantIoError::DestinationExists {
            path: to.to_path_buf(),
        });
    }
    let partial = with_suffix(to, ".partial");
    let _ = std::fs::remove_file(&partial);
    let result = write_partial(src, tenant, to, &partial, node_id, kind, progress);
    let tables = match result {
        Ok(tables) => tables,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let placed = place(&partial, to, kind);
    let (sha256, bytes) = match placed {
        Ok(sealed) => sealed,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let path = to.canonicalize().unwrap_or_else(|_| to.to_path_buf());
    Ok(TenantExport {
        tenant: tenant.clone(),
        path,
        sha256,
        bytes,
        node_id,
        rows: tables.iter().map(|t| t.rows).sum(),
        tables,
        backup_id: None,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Syncs a finished file that gets no `.sha256` beside it (a live database: a hash of it
/// would say nothing after its first write). Its rows were checked table by table instead.
fn sync_file(file: &Path) -> std::io::Result<(String, u64)> {
    let handle = std::fs::File::open(file)?;
    handle.sync_all()?;
    Ok((String::new(), handle.metadata()?.len()))
}

/// Drops every explicit index of a new file's schema and returns their definitions, to be
/// run again once its rows are in.
fn set_aside_indexes(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let indexes: Vec<(String, String)> = {
        let mut stmt = conn.prepare(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL
             ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (name, _) in &indexes {
        conn.execute_batch(&format!("DROP INDEX {}", crate::backup::ident(name)))?;
    }
    Ok(indexes.into_iter().map(|(_, sql)| sql).collect())
}

pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Builds the export under its temporary name and checks it; returns each table's digest.
fn write_partial(
    src: &Connection,
    tenant: &TenantId,
    to: &Path,
    partial: &Path,
    node_id: RowId,
    kind: FileKind,
    progress: &mut dyn FnMut(TableCopied),
) -> Result<Vec<TableDigest>, TenantIoError> {
    let destination = |e: &dyn std::fmt::Display| TenantIoError::Destination {
        path: to.to_path_buf(),
        reason: e.to_string(),
    };
    let export_failed = |e: &dyn std::fmt::Display| {
        failed(
            TenantIoStep::Export,
            tenant,
            e,
            "nothing was changed and no export was left behind",
        )
    };
    let mut dst = Connection::open(partial).map_err(|e| destination(&e))?;
    // A temporary file, synced once whole before it is named: no journal on disk, no syncs.
    // A cache big enough for the index builds and the unique keys filled at random places.
    // References are not looked up row by row: `foreign_key_check` below proves every one of
    // them once the rows are in (measured: a lookup per reference per row otherwise).
    dst.execute_batch(
        "PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF; PRAGMA foreign_keys = OFF;
         PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;",
    )
    .map_err(|e| destination(&e))?;
    let clock = tenant_clock(src, tenant).map_err(|e| export_failed(&e))?;
    let tx = dst.transaction().map_err(|e| destination(&e))?;
    install_schema(&tx, Timestamp::now()).map_err(|e| match e {
        crate::Error::Sqlite(e) => destination(&e),
        other => export_failed(&other),
    })?;
    tx.execute(
        "INSERT INTO node_state (singleton, node_id, hlc_millis, hlc_counter) VALUES (1, ?1, ?2, ?3)",
        params![node_id, i64::try_from(clock.millis).unwrap_or(i64::MAX), clock.counter],
    )
    .map_err(|e| export_failed(&e))?;
    copy_registry_row(src, &tx, tenant).map_err(|e| export_failed(&e))?;
    if kind == FileKind::TenantHome {
        tx.execute(
            "UPDATE tenants SET tier = 'dedicated' WHERE id = ?1",
            [tenant],
        )
        .map_err(|e| export_failed(&e))?;
    }
    // The file is new and nobody else's: its explicit indexes are built once, sorted, after
    // the rows are in, not grown a row at a time at random places (a unique one that the
    // rows break fails its build, and with it the export).
    let indexes = set_aside_indexes(&tx).map_err(|e| export_failed(&e))?;
    let mut tables = Vec::with_capacity(TABLES.len());
    for (i, table) in TABLES.iter().enumerate() {
        let digest = copy_table(src, &tx, table, tenant).map_err(|e| export_failed(&e))?;
        progress(TableCopied {
            table: table.name,
            rows: digest.rows,
            done: i + 1,
            total: TABLES.len(),
        });
        tables.push(digest);
    }
    for sql in &indexes {
        tx.execute_batch(sql).map_err(|e| export_failed(&e))?;
    }
    tx.commit().map_err(|e| export_failed(&e))?;
    // The file must hold what was read: SQLite's checks, then every table's digest.
    let violations: i64 = dst
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .map_err(|e| export_failed(&e))?;
    if violations > 0 {
        return Err(export_failed(&format!(
            "the export has {violations} rows whose references are not in it"
        )));
    }
    // The structure of every page and record (`quick_check`); what `integrity_check` adds,
    // each index against its table, is left out: SQLite built the indexes from these rows in
    // the transaction above, and the rows are proven by their digests below. Measured on
    // 200,000 rows, the index pass was a quarter of a promotion. A restore runs the whole
    // `integrity_check` on the export before it reads a row.
    let integrity: String = dst
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(|e| export_failed(&e))?;
    if integrity != "ok" {
        return Err(export_failed(&format!("quick_check: {integrity}")));
    }
    for digest in &tables {
        let table = TABLES
            .iter()
            .find(|t| t.name == digest.table)
            .copied()
            .ok_or_else(|| export_failed(&"a table left the catalog"))?;
        let written = table_digest(&dst, table, tenant).map_err(|e| export_failed(&e))?;
        if &written != digest {
            return Err(export_failed(&format!(
                "table {}: the export holds {} rows with digest {}, {} rows with digest {} were read",
                digest.table, written.rows, written.sha256, digest.rows, digest.sha256
            )));
        }
    }
    let application_id = match kind {
        FileKind::Export => EXPORT_APPLICATION_ID,
        FileKind::TenantHome => crate::store::TENANT_FILE_APPLICATION_ID,
    };
    dst.pragma_update(None, "application_id", application_id)
        .map_err(|e| export_failed(&e))?;
    // An export is a single sealed file; a tenant's own file is a live database from its
    // switch on, placed in WAL as every node file is, so no reader of it (a backup, verify)
    // ever holds its writers up.
    let journal = match kind {
        FileKind::Export => "DELETE",
        FileKind::TenantHome => "WAL",
    };
    dst.pragma_update_and_check(None, "journal_mode", journal, |_| Ok(()))
        .map_err(|e| export_failed(&e))?;
    dst.close().map_err(|(_, e)| destination(&e))?;
    Ok(tables)
}

/// Hashes and syncs the finished export, writes `<to>.sha256`, then gives it its name (never
/// over a file that appeared meanwhile) and syncs the directory.
fn place(partial: &Path, to: &Path, kind: FileKind) -> Result<(String, u64), TenantIoError> {
    let destination = |e: &dyn std::fmt::Display| TenantIoError::Destination {
        path: to.to_path_buf(),
        reason: e.to_string(),
    };
    let sealed = match kind {
        FileKind::Export => seal(partial, to),
        FileKind::TenantHome => sync_file(partial),
    }
    .map_err(|e| destination(&e))?;
    let sums = crate::backup::checksum_path(to);
    match std::fs::hard_link(partial, to) {
        Ok(()) => {
            let _ = std::fs::remove_file(partial);
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(&sums);
            return Err(TenantIoError::DestinationExists {
                path: to.to_path_buf(),
            });
        }
        // A file system without hard links (a FAT stick): a rename, after checking.
        Err(_) => {
            if to.exists() {
                let _ = std::fs::remove_file(&sums);
                return Err(TenantIoError::DestinationExists {
                    path: to.to_path_buf(),
                });
            }
            if let Err(e) = std::fs::rename(partial, to) {
                let _ = std::fs::remove_file(&sums);
                return Err(destination(&e));
            }
        }
    }
    sync_dir(to).map_err(|e| destination(&e))?;
    Ok(sealed)
}
