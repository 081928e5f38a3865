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
        let mut rows_deleted = 0u64;
        let tables = BALANCES
            .iter()
            .map(|b| b.table)
            .chain(TABLES.iter().rev().map(|t| t.name));
        for table in tables {
            rows_deleted += tx
                .execute(
                    &format!("DELETE FROM {} WHERE tenant_id = ?1", ident(table)),
                    [tenant],
                )
                .map_err(|e| delete_failed(&e))? as u64;
        }
        rows_deleted += tx
            .execute("DELETE FROM tenants WHERE id = ?1", [tenant])
            .map_err(|e| delete_failed(&e))? as u64;
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
