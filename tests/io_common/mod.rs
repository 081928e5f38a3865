//! Fixtures for the backup and tenant export tests: populated file stores, and a canonical
//! dump of one tenant read with plain SQL (independent of the library's own digests).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::types::Value;
use rusqlite::Connection;

/// Every row of the tenant in every table with a `tenant_id` column (kept balances included),
/// and its registry row under `tenants`, each table's rows in the order of all its columns.
pub type Dump = BTreeMap<String, Vec<Vec<Value>>>;

/// The canonical dump of `tenant` in the database at `path`.
pub fn dump(path: &Path, tenant: &str) -> Dump {
    dump_except(path, tenant, &[])
}

/// [`dump`] without the tables named in `skip`.
pub fn dump_except(path: &Path, tenant: &str, skip: &[&str]) -> Dump {
    let conn = Connection::open(path).expect("the database opens");
    let tables: Vec<String> = conn
        .prepare(
            "SELECT m.name FROM sqlite_schema m WHERE m.type = 'table'
             AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) c WHERE c.name = 'tenant_id')
             ORDER BY m.name",
        )
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .expect("tables");
    let mut out = Dump::new();
    let mut read = |table: &str, key: &str| {
        let columns: i64 = conn
            .query_row("SELECT count(*) FROM pragma_table_info(?1)", [table], |r| {
                r.get(0)
            })
            .expect("columns");
        let order: Vec<String> = (1..=columns).map(|i| i.to_string()).collect();
        let sql = format!(
            "SELECT * FROM \"{table}\" WHERE {key} = ?1 ORDER BY {}",
            order.join(", ")
        );
        let mut stmt = conn.prepare(&sql).expect("select");
        let n = stmt.column_count();
        let rows = stmt
            .query_map([tenant], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
            .expect("rows")
            .collect::<rusqlite::Result<Vec<Vec<Value>>>>()
            .expect("rows");
        out.insert(table.to_owned(), rows);
    };
    for table in &tables {
        if !skip.contains(&table.as_str()) {
            read(table, "tenant_id");
        }
    }
    if !skip.contains(&"tenants") {
        read("tenants", "id");
    }
    out
}

/// Rows of the tenant left in any table with a `tenant_id` column, or in the registry.
pub fn rows_left(path: &Path, tenant: &str) -> usize {
    dump(path, tenant).values().map(Vec::len).sum()
}
