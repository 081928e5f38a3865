//! Secondary indexes set aside while a tenant is pulled in bulk, and built again after.
//!
//! A new terminal joining a tenant applies the whole log at once: a million operations write
//! a million rows and as many audit rows, and each row goes into every index of its table at
//! a random place. Setting the secondary indexes aside and building each once at the end (a
//! sort) does the same work for a fraction of the cost. Only indexes that nothing reads while
//! the pull applies are set aside: never a unique one (the merge's duplicate-key rule stands
//! on them), never one the merge reads through ([`catalog::MERGE_READ_INDEXES`]), never one of
//! a table the catalog does not fill from the log.
//!
//! Invariants: an index is dropped in the same transaction that records its definition in
//! `deferred_indexes`, and built again in the same transaction that forgets it, so a crash at
//! any moment leaves every index either in the schema or in that table, never lost; opening a
//! store builds whatever a crashed pull left set aside ([`build_deferred`]). Indexes span every
//! tenant, so they are set aside only while no other tenant has a row in those tables.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::catalog::{self, SyncClass};
use crate::ids::{TenantId, Timestamp};
use crate::Result;

/// An index that may be set aside: its name, its table and its definition.
struct Index {
    name: String,
    table: String,
    sql: String,
}

/// The indexes a bulk pull of a tenant may set aside.
fn deferrable(conn: &Connection) -> Result<Vec<Index>> {
    let mut stmt = conn.prepare(
        "SELECT name, tbl_name, sql FROM sqlite_schema
         WHERE type = 'index' AND sql LIKE 'CREATE INDEX %' ORDER BY name",
    )?;
    let all = stmt
        .query_map([], |r| {
            Ok(Index {
                name: r.get(0)?,
                table: r.get(1)?,
                sql: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(all
        .into_iter()
        .filter(|i| {
            let filled = catalog::table(&i.table).is_some_and(|t| {
                t.sync_class != SyncClass::LocalOnly
                    || t.name == <catalog::AuditEntry as catalog::Record>::TABLE.name
            });
            filled && !catalog::MERGE_READ_INDEXES.contains(&i.name.as_str())
        })
        .collect())
}

/// Sets aside the deferrable indexes for a bulk pull of `tenant`, in one transaction. Returns
/// how many were set aside: none when another tenant has rows in one of their tables (its
/// reports would run without them) or when they are set aside already.
pub(crate) fn defer_indexes(conn: &Connection, tenant: &TenantId) -> Result<usize> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let indexes = deferrable(&tx)?;
    let mut tables: Vec<&str> = indexes.iter().map(|i| i.table.as_str()).collect();
    tables.sort_unstable();
    tables.dedup();
    for table in tables {
        // Two range probes on the tenant-leading key: no scan of this tenant's own rows.
        // The name comes from the schema, never from input.
        let other: bool = tx.query_row(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM \"{table}\" WHERE tenant_id < ?1)
                     OR EXISTS (SELECT 1 FROM \"{table}\" WHERE tenant_id > ?1)"
            ),
            [tenant],
            |r| r.get(0),
        )?;
        if other {
            return Ok(0);
        }
    }
    let now = Timestamp::now();
    for index in &indexes {
        tx.execute(
            "INSERT INTO deferred_indexes (name, table_name, sql, deferred_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![index.name, index.table, index.sql, now],
        )?;
        tx.execute_batch(&format!("DROP INDEX \"{}\"", index.name))?;
    }
    tx.commit()?;
    Ok(indexes.len())
}

/// Builds every index set aside and forgets it, in one transaction. Returns how many were
/// built. Cheap when none is set aside: one read, no write lock.
pub(crate) fn build_deferred(conn: &Connection) -> Result<usize> {
    let any: Option<i64> = conn
        .query_row("SELECT 1 FROM deferred_indexes LIMIT 1", [], |r| r.get(0))
        .optional()?;
    if any.is_none() {
        return Ok(0);
    }
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let defined: Vec<String> = tx
        .prepare("SELECT sql FROM deferred_indexes ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for sql in &defined {
        // The definitions are the schema's own, taken from sqlite_schema by `defer_indexes`
        // (the table's CHECK keeps anything but an index definition out). Another process may
        // have built them already.
        let sql = sql.replacen("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1);
        tx.execute_batch(&sql)?;
    }
    tx.execute("DELETE FROM deferred_indexes", [])?;
    tx.commit()?;
    // The tables grew from nothing, and without statistics SQLite may scan a tenant's table
    // for "the lines of this sale". A full ANALYZE cost as much as building the indexes
    // (measured), so it samples: a few hundred rows an index give the planner its shape.
    let limit: i64 = conn.query_row("PRAGMA analysis_limit", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA analysis_limit = 400; ANALYZE;")?;
    conn.pragma_update(None, "analysis_limit", limit)?;
    Ok(defined.len())
}

/// How many indexes are set aside now.
#[cfg(test)]
pub(crate) fn deferred_count(conn: &Connection) -> Result<usize> {
    let n: i64 = conn.query_row("SELECT count(*) FROM deferred_indexes", [], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewTenant, Store};

    fn index_names(conn: &Connection) -> Result<Vec<String>> {
        Ok(conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    #[test]
    fn indexes_set_aside_come_back_exactly_as_they_were() -> Result<()> {
        let store = Store::open_in_memory()?;
        store.add_tenant(&NewTenant::new("caps".parse()?, "Caps"))?;
        let before = index_names(&store.conn)?;
        let n = defer_indexes(&store.conn, &"caps".parse()?)?;
        assert!(
            n > 10,
            "the big tables' secondary indexes are set aside: {n}"
        );
        assert_eq!(deferred_count(&store.conn)?, n);
        let during = index_names(&store.conn)?;
        assert_eq!(during.len(), before.len() - n);
        for kept in ["sale_reversals_line", "sync_log_started"] {
            assert!(during.iter().any(|i| i == kept), "{kept} is kept");
        }
        // Unique constraints stay: the merge's duplicate-key rule stands on them.
        assert!(during
            .iter()
            .any(|i| i.starts_with("sqlite_autoindex_products")));
        // Set aside twice: nothing more to set aside.
        assert_eq!(defer_indexes(&store.conn, &"caps".parse()?)?, 0);
        assert_eq!(build_deferred(&store.conn)?, n);
        assert_eq!(index_names(&store.conn)?, before);
        assert_eq!(deferred_count(&store.conn)?, 0);
        assert_eq!(build_deferred(&store.conn)?, 0);
        Ok(())
    }

    #[test]
    fn indexes_stay_while_another_tenant_has_rows() -> Result<()> {
        let store = Store::open_in_memory()?;
        store.add_tenant(&NewTenant::new("caps".parse()?, "Caps"))?;
        store.add_tenant(&NewTenant::new("zeta".parse()?, "Zeta"))?;
        let before = index_names(&store.conn)?;
        let zeta = store.tenant(&"zeta".parse()?)?;
        zeta.bootstrap_admin("owner", "Owner")?;
        assert_eq!(defer_indexes(&store.conn, &"caps".parse()?)?, 0);
        assert_eq!(index_names(&store.conn)?, before);
        Ok(())
    }
}
