//! [`Store::restore_tenant`]: replacing one tenant's rows with an export's, in one transaction
//! (see the module docs of `tenant_io` for the invariants).

use std::path::Path;
use std::time::Instant;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::copy::{copy_registry_row, copy_table, table_digest, TableDigest};
use super::export::{check_tenant, failed, tenant_clock};
use super::{check_unsynced, IfUnsynced, TableCopied, TenantIoError, TenantIoStep, TenantRestore};
use crate::backup::{check_checksum, ident, inspect_copy, is_backup_log, mend_log, BackupError};
use crate::catalog::{BALANCES, TABLES};
use crate::ids::{RowId, TenantId, Timestamp};
use crate::store::clock::raise_clock_floor;
use crate::store::Store;
use crate::tenant::settings::TenantSettings;

impl Store {
    /// Replaces one tenant's rows with those of its export `from` (written by
    /// [`Store::export_tenant`]), in one transaction: every other tenant's rows stay exactly as
    /// they were. Checked first, changing nothing when refused: the export's SHA-256 against
    /// `<from>.sha256`, `integrity_check`, that it is an export of this tenant at this schema
    /// version, and the tenant's unsynced operations ([`IfUnsynced`]). Each restored table's
    /// digest is compared with the export's before commit; `restore_jobs` records the restore.
    /// `progress` is called after each table.
    pub fn restore_tenant(
        &self,
        tenant: &TenantId,
        from: &Path,
        if_unsynced: IfUnsynced,
        progress: &mut dyn FnMut(TableCopied),
    ) -> Result<TenantRestore, TenantIoError> {
        // A tenant the node no longer has is registered again here, in the shared file.
        if let Ok(home) = super::routed(self, tenant) {
            if !std::ptr::eq(home, self) {
                return home.restore_tenant(tenant, from, if_unsynced, progress);
            }
        }
        let started = Instant::now();
        let started_at = Timestamp::now();
        if !self.conn.is_autocommit() {
            return Err(TenantIoError::TransactionOpen);
        }
        let sha256 = check_checksum(from).map_err(|e| from_backup_error(e, from))?;
        let (src, exported_from) = open_export(from, tenant)?;
        let from_abs = from.canonicalize().unwrap_or_else(|_| from.to_path_buf());
        let bytes = std::fs::metadata(from).map(|m| m.len()).unwrap_or(0);
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(|e| failed(TenantIoStep::Check, tenant, e, "nothing was changed"))?;
        let replaced = replace(&tx, &src, tenant, if_unsynced, progress);
        let done = match replaced {
            Ok(done) => done,
            Err(e) => {
                drop(tx);
                if matches!(e, TenantIoError::Failed { .. }) {
                    record_failed(self, tenant, &from_abs, &sha256, bytes, started_at, &e);
                }
                return Err(e);
            }
        };
        let restore_failed = |e: &dyn std::fmt::Display| {
            failed(
                TenantIoStep::Record,
                tenant,
                e,
                "rolled back, the tenant's rows are as they were",
            )
        };
        let backup_id = export_record(&tx, tenant, &from_abs, &sha256, bytes)
            .map_err(|e| restore_failed(&e))?;
        let job = RowId::new();
        tx.execute(
            "INSERT INTO restore_jobs (id, tenant_id, backup_id, status, requested_by,
                                       started_at, finished_at, error)
             VALUES (?1, ?2, ?3, 'ok', NULL, ?4, ?5, NULL)",
            params![job, tenant, backup_id, started_at, Timestamp::now()],
        )
        .map_err(|e| restore_failed(&e))?;
        tx.commit().map_err(|e| {
            let reason = match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::ConstraintViolation) => {
                    format!("{e}: the export's rows refer to rows that neither it nor the node has")
                }
                _ => e.to_string(),
            };
            let e = failed(
                TenantIoStep::Restore,
                tenant,
                reason,
                "rolled back, the tenant's rows are as they were",
            );
            record_failed(self, tenant, &from_abs, &sha256, bytes, started_at, &e);
            e
        })?;
        // Stamps this connection cached may be behind the restored outbox and clock.
        self.forget_cached_clock();
        Ok(TenantRestore {
            tenant: tenant.clone(),
            from: from.to_path_buf(),
            sha256,
            exported_from,
            rows: done.tables.iter().map(|t| t.rows).sum(),
            tables: done.tables,
            rows_replaced: done.rows_replaced,
            unsynced_discarded: done.discarded,
            registered: done.registered,
            restore_job_id: job,
            backup_id,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// The backup kit's checks of a file, worded for an export.
pub(super) fn from_backup_error(e: BackupError, from: &Path) -> TenantIoError {
    match e {
        BackupError::NotFound { path } => TenantIoError::NotFound { path },
        BackupError::NoChecksum { path, reason } => TenantIoError::NoChecksum { path, reason },
        BackupError::ChecksumMismatch {
            path,
            expected,
            found,
            ..
        } => TenantIoError::ChecksumMismatch {
            path,
            expected,
            found,
        },
        BackupError::SchemaTooNew {
            path,
            found,
            supported,
        } => TenantIoError::SchemaMismatch {
            path,
            found,
            supported,
        },
        BackupError::Damaged { path, reason } => TenantIoError::NotAnExport {
            path,
            reason: format!("integrity_check: {reason}"),
        },
        BackupError::NotANode { path, reason } => TenantIoError::NotAnExport { path, reason },
        other => TenantIoError::NotAnExport {
            path: from.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

/// Opens an export read-only after checking that it is whole, an export, of `tenant`, at this
/// schema version, and holds no other tenant's rows; returns it and the node it came from.
fn open_export(from: &Path, tenant: &TenantId) -> Result<(Connection, RowId), TenantIoError> {
    let info = inspect_copy(from).map_err(|e| from_backup_error(e, from))?;
    let not_export = |reason: String| TenantIoError::NotAnExport {
        path: from.to_path_buf(),
        reason,
    };
    if !info.export {
        return Err(not_export(
            "it is a whole-node backup or a node database (a whole node is restored with \
             `pos-node backup restore`)"
                .into(),
        ));
    }
    let supported = Store::supported_schema_version();
    if info.schema_version != supported {
        return Err(TenantIoError::SchemaMismatch {
            path: from.to_path_buf(),
            found: info.schema_version,
            supported,
        });
    }
    let conn = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| not_export(e.to_string()))?;
    let registered: Vec<(TenantId, String)> = (|| {
        let mut stmt = conn.prepare("SELECT id, settings FROM tenants")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()
    })()
    .map_err(|e| not_export(e.to_string()))?;
    let (found, settings) = match registered.as_slice() {
        [one] => one,
        other => {
            return Err(not_export(format!(
                "it registers {} tenants, an export one",
                other.len()
            )))
        }
    };
    if found != tenant {
        return Err(TenantIoError::WrongTenant {
            path: from.to_path_buf(),
            expected: tenant.clone(),
            found: found.clone(),
        });
    }
    serde_json::from_str::<TenantSettings>(settings)
        .map_err(|e| e.to_string())
        // Checked as stored settings are: an export made before the feature switches were a
        // closed list may name others, and must still restore.
        .and_then(|s| s.validate_stored().map_err(|e| e.to_string()))
        .map_err(|e| not_export(format!("its tenant settings are invalid: {e}")))?;
    for table in TABLES {
        let others: bool = conn
            .query_row(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM {} WHERE tenant_id IS NOT ?1)",
                    ident(table.name)
                ),
                [tenant],
                |r| r.get(0),
            )
            .map_err(|e| not_export(e.to_string()))?;
        if others {
            return Err(not_export(format!(
                "table {} holds rows of another tenant",
                table.name
            )));
        }
    }
    Ok((conn, info.node_id))
}

/// What [`replace`] did.
struct Replaced {
    tables: Vec<TableDigest>,
    rows_replaced: u64,
    discarded: u64,
    registered: bool,
}

/// Replaces the tenant's rows inside the caller's write transaction `tx`; checks each table's
/// digest.
fn replace(
    tx: &Connection,
    src: &Connection,
    tenant: &TenantId,
    if_unsynced: IfUnsynced,
    progress: &mut dyn FnMut(TableCopied),
) -> Result<Replaced, TenantIoError> {
    let left = "rolled back, the tenant's rows are as they were";
    let restore_failed = |e: &dyn std::fmt::Display| failed(TenantIoStep::Restore, tenant, e, left);
    tx.pragma_update(None, "defer_foreign_keys", true)
        .map_err(|e| restore_failed(&e))?;
    // Operations the export holds come back with it (and are pushed again if unsynced).
    let exported: std::collections::HashSet<String> = (|| {
        let mut stmt = src.prepare("SELECT id FROM pending_operations WHERE tenant_id = ?1")?;
        let ids = stmt.query_map([tenant], |r| r.get(0))?;
        ids.collect::<rusqlite::Result<_>>()
    })()
    .map_err(|e| failed(TenantIoStep::Check, tenant, e, "nothing was changed"))?;
    let discarded = check_unsynced(tx, tenant, Some(&exported), if_unsynced)?;
    // The registry row: the node keeps status, plan, limits and tier; name and settings are
    // the export's. A tenant the node no longer has is registered again.
    let registered = !tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = ?1)",
            [tenant],
            |r| r.get::<_, bool>(0),
        )
        .map_err(|e| restore_failed(&e))?;
    if registered {
        copy_registry_row(src, tx, tenant).map_err(|e| restore_failed(&e))?;
        // Registered again where it is restored: the shared file (an export of a tenant
        // that lived in a file of its own says `dedicated`).
        tx.execute("UPDATE tenants SET tier = 'shared' WHERE id = ?1", [tenant])
            .map_err(|e| restore_failed(&e))?;
    } else {
        let (name, settings): (String, String) = src
            .query_row(
                "SELECT name, settings FROM tenants WHERE id = ?1",
                [tenant],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| restore_failed(&e))?;
        tx.execute(
            "UPDATE tenants SET name = ?2, settings = ?3, updated_at = ?4 WHERE id = ?1",
            params![tenant, name, settings, Timestamp::now()],
        )
        .map_err(|e| restore_failed(&e))?;
    }
    let restored: Vec<_> = TABLES
        .iter()
        .copied()
        .filter(|t| !is_backup_log(t))
        .collect();
    let (tables, rows_replaced) = replace_rows(
        tx,
        src,
        tenant,
        &restored,
        TenantIoStep::Restore,
        left,
        progress,
    )?;
    mend_log(tx, Some(tenant)).map_err(|e| restore_failed(&e))?;
    // The clock never goes back: stamps issued after the restore follow the export's.
    let theirs = tenant_clock(src, tenant).map_err(|e| restore_failed(&e))?;
    raise_clock_floor(tx, theirs).map_err(|e| restore_failed(&e))?;
    Ok(Replaced {
        tables,
        rows_replaced,
        discarded,
        registered,
    })
}

/// Replaces the tenant's rows of `tables` (catalog order) in `tx` with those `src` holds:
/// its kept balances and rows deleted (children first), `src`'s copied in (parents first),
/// and each table's digest in `tx` compared with what was read. Returns the digests read and
/// how many rows were deleted. The caller owns the transaction and defers its foreign keys.
pub(super) fn replace_rows(
    tx: &Connection,
    src: &Connection,
    tenant: &TenantId,
    tables: &[&'static crate::catalog::TableDef],
    step: TenantIoStep,
    left: &str,
    progress: &mut dyn FnMut(TableCopied),
) -> Result<(Vec<TableDigest>, u64), TenantIoError> {
    let copy_failed = |e: &dyn std::fmt::Display| failed(step, tenant, e, left);
    let delete_failed = |e: &dyn std::fmt::Display| failed(TenantIoStep::Delete, tenant, e, left);
    for balance in BALANCES {
        tx.execute(
            &format!("DELETE FROM {} WHERE tenant_id = ?1", ident(balance.table)),
            [tenant],
        )
        .map_err(|e| delete_failed(&e))?;
    }
    let mut rows_replaced = 0u64;
    for table in tables.iter().rev() {
        rows_replaced += tx
            .execute(
                &format!("DELETE FROM {} WHERE tenant_id = ?1", ident(table.name)),
                [tenant],
            )
            .map_err(|e| delete_failed(&e))? as u64;
    }
    let mut digests = Vec::with_capacity(tables.len());
    for (i, table) in tables.iter().enumerate() {
        let read = copy_table(src, tx, table, tenant).map_err(|e| copy_failed(&e))?;
        let stored = table_digest(tx, table, tenant).map_err(|e| copy_failed(&e))?;
        if stored != read {
            return Err(copy_failed(&format!(
                "table {}: {} rows with digest {} were read, the node now holds {} rows with \
                 digest {}",
                table.name, read.rows, read.sha256, stored.rows, stored.sha256
            )));
        }
        progress(TableCopied {
            table: table.name,
            rows: read.rows,
            done: i + 1,
            total: tables.len(),
        });
        digests.push(read);
    }
    Ok((digests, rows_replaced))
}

/// The export's row in `backups` for the tenant: the one with its SHA-256, or a new one.
fn export_record(
    conn: &Connection,
    tenant: &TenantId,
    path: &Path,
    sha256: &str,
    bytes: u64,
) -> rusqlite::Result<RowId> {
    let known: Option<RowId> = conn
        .query_row(
            "SELECT id FROM backups WHERE tenant_id = ?1 AND kind = 'tenant_export'
             AND sha256 = ?2 LIMIT 1",
            params![tenant, sha256],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = known {
        return Ok(id);
    }
    let id = RowId::new();
    let now = Timestamp::now();
    conn.execute(
        "INSERT INTO backups (id, tenant_id, kind, destination_id, path, sha256, size_bytes,
                              status, created_at, finished_at)
         VALUES (?1, ?2, 'tenant_export', NULL, ?3, ?4, ?5, 'ok', ?6, ?6)",
        params![
            id,
            tenant,
            path.to_string_lossy(),
            sha256,
            i64::try_from(bytes).unwrap_or(i64::MAX),
            now
        ],
    )?;
    Ok(id)
}

/// Records a restore that failed after its checks passed (best effort, in a transaction of
/// its own, and only for a tenant the node has: the job is one of its rows).
fn record_failed(
    store: &Store,
    tenant: &TenantId,
    path: &Path,
    sha256: &str,
    bytes: u64,
    started_at: Timestamp,
    error: &TenantIoError,
) {
    if check_tenant(store, tenant).is_err() {
        return;
    }
    let _ = (|| -> rusqlite::Result<()> {
        let tx = rusqlite::Transaction::new_unchecked(
            &store.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let backup_id = export_record(&tx, tenant, path, sha256, bytes)?;
        tx.execute(
            "INSERT INTO restore_jobs (id, tenant_id, backup_id, status, requested_by,
                                       started_at, finished_at, error)
             VALUES (?1, ?2, ?3, 'failed', NULL, ?4, ?5, ?6)",
            params![
                RowId::new(),
                tenant,
                backup_id,
                started_at,
                Timestamp::now(),
                error.to_string()
            ],
        )?;
        tx.commit()
    })();
}
