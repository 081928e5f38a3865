//! What the sync tests check on a terminal's file, read with a plain SQLite connection so that
//! nothing of the crate's own reading can hide a difference: canonical dumps of a tenant's
//! synced tables and balances, rows of a tenant a file must not hold, the conflicts a tenant
//! has, and a server log's operation ids.

use std::collections::BTreeMap;
use std::path::Path;

use pos_tenancy::catalog::{SyncClass, BALANCES, TABLES};
use pos_tenancy::protocol::SequencedOperation;
use pos_tenancy::sync::Transport;
use pos_tenancy::TenantId;
use rusqlite::types::Value;

type E = Box<dyn std::error::Error>;

fn text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => format!("{f:?}"),
        Value::Text(t) => format!("{t:?}"),
        Value::Blob(b) => format!(
            "x'{}'",
            b.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
}

fn rows(conn: &rusqlite::Connection, sql: &str, tenant: &TenantId) -> Result<Vec<String>, E> {
    let mut stmt = conn.prepare(sql)?;
    let n = stmt.column_count();
    let out = stmt
        .query_map([tenant.as_str()], |r| {
            (0..n)
                .map(|i| r.get::<_, Value>(i).map(|v| text(&v)))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map(|cols| cols.join("|"))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(out)
}

/// Every synced table of the tenant (every catalog table but the local-only ones) and every
/// kept balance, rows in key order, each row its values joined: equal between two terminals
/// exactly when they hold the same data.
pub fn dump(db: &Path, tenant: &TenantId) -> Result<BTreeMap<String, Vec<String>>, E> {
    let conn = rusqlite::Connection::open(db)?;
    let mut out = BTreeMap::new();
    for table in TABLES {
        if table.sync_class == SyncClass::LocalOnly {
            continue;
        }
        // Catalog identifiers only.
        let sql = format!(
            "SELECT * FROM \"{}\" WHERE tenant_id = ?1 ORDER BY id",
            table.name
        );
        out.insert(table.name.to_owned(), rows(&conn, &sql, tenant)?);
    }
    for balance in BALANCES {
        let sql = format!(
            "SELECT * FROM \"{}\" WHERE tenant_id = ?1 ORDER BY {}",
            balance.table,
            balance.keys.join(", ")
        );
        out.insert(balance.table.to_owned(), rows(&conn, &sql, tenant)?);
    }
    Ok(out)
}

/// Asserts that two dumps are equal, naming the first table that differs and its first
/// differing row.
pub fn assert_same_dump(
    a: &BTreeMap<String, Vec<String>>,
    b: &BTreeMap<String, Vec<String>>,
    what: &str,
) {
    for (table, rows_a) in a {
        let rows_b = b.get(table).map(Vec::as_slice).unwrap_or_default();
        if rows_a.as_slice() != rows_b {
            let first = rows_a
                .iter()
                .zip(rows_b)
                .position(|(x, y)| x != y)
                .unwrap_or(rows_a.len().min(rows_b.len()));
            panic!(
                "{what}: {table} differs ({} rows against {}); first difference at row {first}:\n  {:?}\n  {:?}",
                rows_a.len(),
                rows_b.len(),
                rows_a.get(first),
                rows_b.get(first)
            );
        }
    }
}

/// Rows in the file that belong to none of `allowed`, per table (every table with a
/// `tenant_id` column, the sync bookkeeping and the outbox included).
pub fn foreign_rows(db: &Path, allowed: &[&TenantId]) -> Result<Vec<(String, i64)>, E> {
    let conn = rusqlite::Connection::open(db)?;
    let tables: Vec<String> = conn
        .prepare(
            "SELECT m.name FROM sqlite_master m
             WHERE m.type = 'table' AND EXISTS
                 (SELECT 1 FROM pragma_table_info(m.name) c WHERE c.name = 'tenant_id')",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let list: Vec<String> = allowed
        .iter()
        .map(|t| format!("'{}'", t.as_str()))
        .collect();
    let mut out = Vec::new();
    for table in tables {
        // Table names from the file's own schema; tenant ids are validated slugs.
        let n: i64 = conn.query_row(
            &format!(
                "SELECT count(*) FROM \"{table}\" WHERE tenant_id NOT IN ({})",
                list.join(", ")
            ),
            [],
            |r| r.get(0),
        )?;
        if n > 0 {
            out.push((table, n));
        }
    }
    let tenants: Vec<String> = conn
        .prepare("SELECT id FROM tenants")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for t in tenants {
        if !allowed.iter().any(|a| a.as_str() == t) {
            out.push((format!("tenants/{t}"), 1));
        }
    }
    Ok(out)
}

/// The tenant's conflicts on a terminal: (id, kind), in id order.
pub fn conflicts(db: &Path, tenant: &TenantId) -> Result<Vec<(String, String)>, E> {
    let conn = rusqlite::Connection::open(db)?;
    let out = conn
        .prepare("SELECT id, kind FROM sync_conflicts WHERE tenant_id = ?1 ORDER BY id")?
        .query_map([tenant.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(out)
}

/// The whole log of a tenant, page by page through the transport.
pub fn server_log(
    transport: &dyn Transport,
    tenant: &TenantId,
    token: &str,
) -> Result<Vec<SequencedOperation>, E> {
    let mut out: Vec<SequencedOperation> = Vec::new();
    let mut after = 0;
    // Bounded: a log of at most 10,000 pages.
    for _ in 0..10_000 {
        let page = transport.pull(tenant, token, after, 1000)?;
        let Some(last) = page.operations.last() else {
            return Ok(out);
        };
        after = last.seq;
        out.extend(page.operations);
        if after >= page.high {
            return Ok(out);
        }
    }
    Err("the log did not end".into())
}

/// Asserts the log's promises: sequence numbers 1, 2, 3, ... and no operation id twice.
pub fn assert_log_clean(log: &[SequencedOperation], what: &str) {
    let mut ids = std::collections::BTreeSet::new();
    for (i, sop) in log.iter().enumerate() {
        assert_eq!(sop.seq, i as u64 + 1, "{what}: a gap or a twin in the log");
        assert!(
            ids.insert(sop.operation.id),
            "{what}: operation {} is in the log twice",
            sop.operation.id
        );
    }
}
