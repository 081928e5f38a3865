//! One tenant's rows of one catalog table: copied from one connection to another, and
//! digested, in the same canonical order, so a copy proves itself by comparing the digest of
//! what it read with the digest of what the other side then holds.
//!
//! The order is `id` and then every column: one row per id in every table keyed
//! `(tenant_id, id)`, where SQLite reads that order straight off the key; a total order
//! anyway, so equal rows digest equally whatever their physical order. Each value is fed with
//! its SQLite type and length, so no two different rows feed the same bytes.

use rusqlite::types::ToSqlOutput;
use rusqlite::Connection;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::backup::{feed_value, hex, ident};
use crate::catalog::TableDef;
use crate::ids::TenantId;

/// One table's rows of a tenant: how many, and their SHA-256 in canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TableDigest {
    /// The table.
    pub table: &'static str,
    /// The tenant's rows in it.
    pub rows: u64,
    /// SHA-256 over those rows in canonical order (the table name first).
    pub sha256: String,
}

/// The SELECT of a tenant's rows of `table`, every column in catalog order, canonical order.
fn select_sql(table: &TableDef) -> String {
    let columns: Vec<String> = table.all_column_names().map(ident).collect();
    let order: Vec<String> = (1..=columns.len()).map(|i| i.to_string()).collect();
    format!(
        "SELECT {} FROM {} WHERE tenant_id = ?1 ORDER BY {}",
        columns.join(", "),
        ident(table.name),
        order.join(", ")
    )
}

/// A digest being taken.
struct Digester {
    sha: Sha256,
    rows: u64,
}

impl Digester {
    fn new(table: &TableDef) -> Self {
        let mut sha = Sha256::new();
        feed_value(
            &mut |b: &[u8]| sha.update(b),
            rusqlite::types::ValueRef::Text(table.name.as_bytes()),
        );
        Self { sha, rows: 0 }
    }

    fn row(&mut self, row: &rusqlite::Row<'_>, columns: usize) -> rusqlite::Result<()> {
        for i in 0..columns {
            feed_value(&mut |b: &[u8]| self.sha.update(b), row.get_ref(i)?);
        }
        self.rows += 1;
        Ok(())
    }

    fn finish(self, table: &'static TableDef) -> TableDigest {
        TableDigest {
            table: table.name,
            rows: self.rows,
            sha256: hex(&self.sha.finalize()),
        }
    }
}

/// The digest of the tenant's rows of `table` as `conn` reads them.
pub(crate) fn table_digest(
    conn: &Connection,
    table: &'static TableDef,
    tenant: &TenantId,
) -> rusqlite::Result<TableDigest> {
    let mut stmt = conn.prepare(&select_sql(table))?;
    let columns = stmt.column_count();
    let mut digest = Digester::new(table);
    let mut rows = stmt.query([tenant])?;
    while let Some(row) = rows.next()? {
        digest.row(row, columns)?;
    }
    Ok(digest.finish(table))
}

/// Copies the tenant's rows of `table` from `src` into the same table of `dst` and returns the
/// digest of the rows read. The caller owns both transactions (and defers `dst`'s foreign
/// keys, since a table may refer to itself).
pub(crate) fn copy_table(
    src: &Connection,
    dst: &Connection,
    table: &'static TableDef,
    tenant: &TenantId,
) -> rusqlite::Result<TableDigest> {
    let columns: Vec<String> = table.all_column_names().map(ident).collect();
    let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    let mut insert = dst.prepare(&format!(
        "INSERT INTO {} ({}) VALUES ({})",
        ident(table.name),
        columns.join(", "),
        marks.join(", ")
    ))?;
    let mut select = src.prepare(&select_sql(table))?;
    let n = select.column_count();
    let mut digest = Digester::new(table);
    let mut rows = select.query([tenant])?;
    while let Some(row) = rows.next()? {
        digest.row(row, n)?;
        for i in 0..n {
            insert.raw_bind_parameter(i + 1, ToSqlOutput::Borrowed(row.get_ref(i)?))?;
        }
        insert.raw_execute()?;
    }
    Ok(digest.finish(table))
}

/// Copies the tenant's registry row (`tenants`, a node table outside the catalog) from `src`
/// into `dst`, every column `src` has.
pub(crate) fn copy_registry_row(
    src: &Connection,
    dst: &Connection,
    tenant: &TenantId,
) -> rusqlite::Result<usize> {
    let mut select = src.prepare("SELECT * FROM tenants WHERE id = ?1")?;
    let names: Vec<String> = select.column_names().into_iter().map(ident).collect();
    let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
    let mut insert = dst.prepare(&format!(
        "INSERT INTO tenants ({}) VALUES ({})",
        names.join(", "),
        marks.join(", ")
    ))?;
    let mut copied = 0;
    let mut rows = select.query([tenant])?;
    while let Some(row) = rows.next()? {
        for i in 0..names.len() {
            insert.raw_bind_parameter(i + 1, ToSqlOutput::Borrowed(row.get_ref(i)?))?;
        }
        copied += insert.raw_execute()?;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{self, Record};

    #[test]
    fn the_catalog_lists_parents_before_children() {
        for (i, table) in catalog::TABLES.iter().enumerate() {
            for column in table.columns {
                let Some(parent) = column.references else {
                    continue;
                };
                let at = catalog::TABLES.iter().position(|t| t.name == parent);
                assert!(
                    at.is_some_and(|p| p <= i),
                    "{}.{} refers to {parent}, listed after it",
                    table.name,
                    column.name
                );
            }
        }
    }

    #[test]
    fn copying_digests_what_it_read_and_the_copy_digests_the_same() -> crate::Result<()> {
        let src = crate::Store::open_in_memory()?;
        let caps: TenantId = "caps".parse()?;
        src.add_tenant(&crate::NewTenant::new(caps.clone(), "Caps"))?;
        src.tenant(&caps)?.bootstrap_admin("owner", "Owner")?;
        let dst = crate::Store::open_in_memory()?;
        copy_registry_row(&src.conn, &dst.conn, &caps)?;
        let users = catalog::User::TABLE;
        let read = copy_table(&src.conn, &dst.conn, users, &caps)?;
        assert_eq!(read.rows, 1);
        assert_eq!(table_digest(&dst.conn, users, &caps)?, read);
        assert_eq!(table_digest(&src.conn, users, &caps)?, read);
        let other = table_digest(&dst.conn, users, &"bolt".parse()?)?;
        assert_eq!(other.rows, 0);
        assert_ne!(other.sha256, read.sha256);
        Ok(())
    }
}
