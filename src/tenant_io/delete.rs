//! [`Store::delete_tenant`]: offboarding, an export and then the deletion of every row of the
//! tenant, proven gone (see the module docs of `tenant_io` for the invariants).

use std::path::Path;
use std::time::Instant;

use super::export::{check_tenant, failed, write_export};
use super::{check_unsynced, IfUnsynced, TableCopied, TenantDeletion, TenantIoError, TenantIoStep};
use crate::backup::ident;
use crate::catalog::{BALANCES, TABLES};
use crate::ids::TenantId;
use crate::store::Store;

impl Store {
    /// Offboards a tenant: exports its rows to `export_to` (as [`Store::export_tenant`] does,
    /// with its `.sha256`), then deletes every row of it, its registry row and kept balances
    /// included, in one transaction, and proves that no table with a `tenant_id` column holds a
    /// row of it any more. Refused while it has unsynced operations unless
    /// [`IfUnsynced::Discard`]. `export_to` must not exist. `progress` is called after each
    /// table exported.
    ///
    /// The store's write lock is held from the outbox check to the commit, so the export holds
    /// exactly the rows deleted. If the delete fails after the export was written, the tenant
    /// is left as it was and the export is kept.
    pub fn delete_tenant(
        &self,
        tenant: &TenantId,
        export_to: &Path,
        if_unsynced: IfUnsynced,
        progress: &mut dyn FnMut(TableCopied),
    ) -> Result<TenantDeletion, TenantIoError> {
        let home = super::routed(self, tenant)?;
        if !std::ptr::eq(home, self) {
            return self.delete_dedicated(home, tenant, export_to, if_unsynced, progress);
        }
        let started = Instant::now();
        check_tenant(self, tenant)?;
        if !self.conn.is_autocommit() {
            return Err(TenantIoError::TransactionOpen);
        }
        if export_to.exists() {
            return Err(TenantIoError::DestinationExists {
                path: export_to.to_path_buf(),
            });
        }
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(|e| failed(TenantIoStep::Check, tenant, e, "nothing was changed"))?;
        let discarded = check_unsynced(&tx, tenant, None, if_unsynced)?;
        let export = write_export(&tx, tenant, export_to, self.node_id(), progress)?;
        let kept = format!(
            "rolled back, the tenant is as it was; its export {} is kept",
            export.path.display()
        );
        let delete_failed =
            |e: &dyn std::fmt::Display| failed(TenantIoStep::Delete, tenant, e, &kept);
        let rows_deleted = delete_all(&tx, tenant).map_err(|e| delete_failed(&e))?;
        let proven = prove_gone(&tx, tenant)
            .map_err(|reason| failed(TenantIoStep::Prove, tenant, reason, &kept))?;
        tx.commit().map_err(|e| delete_failed(&e))?;
        self.forget_cached_clock();
        Ok(TenantDeletion {
            tenant: tenant.clone(),
            export,
            rows_deleted,
            unsynced_discarded: discarded,
            tables_proven_empty: proven,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

impl Store {
    /// Offboards a tenant that lives in a file of its own: the export is written from that
    /// file under both files' write locks, then the shared file's rows of the tenant (the
    /// copy its promotion kept, if not purged) and its registry row are deleted and proven
    /// gone in one commit, which is the point of no return; the tenant's file is removed
    /// after it (a file left by a crash there is one no route names, which `purge` removes).
    fn delete_dedicated(
        &self,
        home: &Store,
        tenant: &TenantId,
        export_to: &Path,
        if_unsynced: IfUnsynced,
        progress: &mut dyn FnMut(TableCopied),
    ) -> Result<TenantDeletion, TenantIoError> {
        let started = Instant::now();
        if !self.conn.is_autocommit() || !home.conn.is_autocommit() {
            return Err(TenantIoError::TransactionOpen);
        }
        if export_to.exists() {
            return Err(TenantIoError::DestinationExists {
                path: export_to.to_path_buf(),
            });
        }
        let check = |e: &dyn std::fmt::Display| {
            failed(TenantIoStep::Check, tenant, e, "nothing was changed")
        };
        let immediate = rusqlite::TransactionBehavior::Immediate;
        let tx =
            rusqlite::Transaction::new_unchecked(&self.conn, immediate).map_err(|e| check(&e))?;
        let home_tx =
            rusqlite::Transaction::new_unchecked(&home.conn, immediate).map_err(|e| check(&e))?;
        home.ensure_home(tenant).map_err(|e| check(&e))?;
        let discarded = check_unsynced(&home_tx, tenant, None, if_unsynced)?;
        let export = write_export(&home_tx, tenant, export_to, self.node_id(), progress)?;
        let kept = format!(
            "rolled back, the tenant is as it was; its export {} is kept",
            export.path.display()
        );
        let delete_failed =
            |e: &dyn std::fmt::Display| failed(TenantIoStep::Delete, tenant, e, &kept);
        let shared_rows = delete_all(&tx, tenant).map_err(|e| delete_failed(&e))?;
        let proven = prove_gone(&tx, tenant)
            .map_err(|reason| failed(TenantIoStep::Prove, tenant, reason, &kept))?;
        tx.commit().map_err(|e| delete_failed(&e))?;
        drop(home_tx);
        if let Some(file) = home.path() {
            for extra in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(super::export::with_suffix(file, extra));
            }
            let _ = crate::backup::sync_dir(file);
        }
        self.forget_cached_clock();
        Ok(TenantDeletion {
            tenant: tenant.clone(),
            rows_deleted: shared_rows + export.rows + 1,
            export,
            unsynced_discarded: discarded,
            tables_proven_empty: proven,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// Deletes every row of the tenant in `conn`, its registry row last; returns how many.
fn delete_all(conn: &rusqlite::Connection, tenant: &TenantId) -> rusqlite::Result<u64> {
    let rows = delete_rows(conn, tenant)?;
    Ok(rows + conn.execute("DELETE FROM tenants WHERE id = ?1", [tenant])? as u64)
}

/// Deletes the tenant's rows of every tenant table (not its registry row), kept balances
/// first and children before parents; returns how many.
pub(super) fn delete_rows(conn: &rusqlite::Connection, tenant: &TenantId) -> rusqlite::Result<u64> {
    let mut rows_deleted = 0u64;
    let tables = BALANCES
        .iter()
        .map(|b| b.table)
        .chain(TABLES.iter().rev().map(|t| t.name));
    for table in tables {
        rows_deleted += conn.execute(
            &format!("DELETE FROM {} WHERE tenant_id = ?1", ident(table)),
            [tenant],
        )? as u64;
    }
    Ok(rows_deleted)
}

/// Checks every table of the schema with a `tenant_id` column (read from the schema, not the
/// catalog, so a table the catalog does not list is checked too) and the registry: none may
/// hold a row of the tenant. Returns how many tables were checked.
fn prove_gone(conn: &rusqlite::Connection, tenant: &TenantId) -> Result<usize, String> {
    let tables: Vec<String> = (|| {
        let mut stmt = conn.prepare(
            "SELECT m.name FROM sqlite_schema m
             WHERE m.type = 'table'
               AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) c WHERE c.name = 'tenant_id')
             ORDER BY m.name",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()
    })()
    .map_err(|e| e.to_string())?;
    let mut left = Vec::new();
    for table in &tables {
        let n: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM {} WHERE tenant_id = ?1", ident(table)),
                [tenant],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        if n > 0 {
            left.push(format!("{table}: {n}"));
        }
    }
    let registered: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM tenants WHERE id = ?1)",
            [tenant],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    if registered {
        left.push("tenants: 1".into());
    }
    if !left.is_empty() {
        return Err(format!("rows of the tenant remain ({})", left.join(", ")));
    }
    Ok(tables.len())
}
