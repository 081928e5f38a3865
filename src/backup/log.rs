//! The backup log: `backups` and `restore_jobs`, the node's record of the backups it took and
//! the restores it ran. They are tenant tables (each row belongs to a tenant, whose admins see
//! it), but what they record is the node's history rather than data to rewind: a restore of
//! the node or of one tenant keeps the log of the database it replaces, so the backups taken
//! after the one restored stay listed, restorable and governed by retention.

use rusqlite::types::Value;
use rusqlite::Connection;

use super::ident;
use crate::catalog::{Backup, Record, RestoreJob, TableDef};
use crate::ids::{RowId, TenantId};

/// The backup log's tables, parents first.
pub(crate) const BACKUP_LOG: [&TableDef; 2] = [Backup::TABLE, RestoreJob::TABLE];

/// Whether `table` is one of the backup log's.
pub(crate) fn is_backup_log(table: &TableDef) -> bool {
    BACKUP_LOG.iter().any(|t| t.name == table.name)
}

/// Every row of the backup log, table by table, in catalog column order.
pub(crate) type LogRows = Vec<(&'static TableDef, Vec<Vec<Value>>)>;

/// Reads the whole backup log of `conn`.
pub(crate) fn read_log(conn: &Connection) -> rusqlite::Result<LogRows> {
    let mut out = Vec::new();
    for table in BACKUP_LOG {
        let columns: Vec<String> = table.all_column_names().map(ident).collect();
        let mut stmt = conn.prepare(&format!(
            "SELECT {} FROM {}",
            columns.join(", "),
            ident(table.name)
        ))?;
        let n = columns.len();
        let rows = stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())?;
        out.push((table, rows.collect::<rusqlite::Result<Vec<Vec<Value>>>>()?));
    }
    Ok(out)
}

/// Writes rows read by [`read_log`] into `conn`'s log, the carried row replacing one with the
/// same key, except rows of the backup `keep` (whose rows `conn` already holds as they should
/// be) and rows of tenants `conn` does not have. The caller's transaction defers foreign keys;
/// [`mend_log`] then clears references the carried rows make to rows `conn` does not have.
pub(crate) fn carry_log(conn: &Connection, log: &LogRows, keep: RowId) -> rusqlite::Result<usize> {
    let mut carried = 0;
    for (table, rows) in log {
        let columns: Vec<String> = table.all_column_names().map(ident).collect();
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        // Column 1 is id (or, in restore_jobs, the row's own id); the backup a row is of is
        // its id in `backups` and its `backup_id` in `restore_jobs`.
        let backup_column = table
            .all_column_names()
            .position(|c| {
                c == if table.name == Backup::TABLE.name {
                    "id"
                } else {
                    "backup_id"
                }
            })
            .unwrap_or(0);
        let mut stmt = conn.prepare(&format!(
            "INSERT OR REPLACE INTO {} ({}) SELECT {} WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?2)",
            ident(table.name),
            columns.join(", "),
            marks.join(", ")
        ))?;
        let keep = Value::Text(keep.to_string());
        for row in rows {
            if table.name == Backup::TABLE.name && row.get(backup_column) == Some(&keep) {
                continue;
            }
            carried += stmt.execute(rusqlite::params_from_iter(row))?;
        }
    }
    Ok(carried)
}

/// Clears the log's optional references (a backup's destination, who asked for a restore) to
/// rows that are not there, so a log kept over restored data stays consistent: the rows of
/// `tenant` only, or of every tenant.
pub(crate) fn mend_log(conn: &Connection, tenant: Option<&TenantId>) -> rusqlite::Result<usize> {
    let mut mended = 0;
    for table in BACKUP_LOG {
        for column in table.columns.iter().filter(|c| c.nullable) {
            let Some(parent) = column.references else {
                continue;
            };
            mended += conn.execute(
                &format!(
                    "UPDATE {t} SET {c} = NULL WHERE {c} IS NOT NULL \
                     AND (?1 IS NULL OR tenant_id = ?1) AND NOT EXISTS \
                     (SELECT 1 FROM {p} WHERE {p}.tenant_id = {t}.tenant_id AND {p}.id = {t}.{c})",
                    t = ident(table.name),
                    c = ident(column.name),
                    p = ident(parent)
                ),
                [tenant],
            )?;
        }
    }
    Ok(mended)
}
