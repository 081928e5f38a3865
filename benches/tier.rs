//! What moving a tenant into a file of its own costs, against a bare copy of the same rows with
//! the same checks, and export and restore in rows a second.
//!
//! The node: tenant `caps` with about `POS_BENCH_TIER_ROWS` (default 1,000,000) rows, made of
//! products, customers and audit rows in the proportions 1:1:2 (written by hand with SQL, as
//! a till accumulates them: the tables' every index is kept), plus a tenant `bolt` with a
//! hundredth of that, which no step may read. Each round, in this order:
//!
//! * `bare`: the baseline. A raw connection copies the tenant's rows of every catalog table
//!   into a new file with the node's schema (`ATTACH`, then `INSERT INTO … SELECT … WHERE
//!   tenant_id`, one transaction: SQLite copying with nothing of this crate in the way), then
//!   the same checks a promotion makes: a SHA-256 of every table's rows in canonical order in
//!   both files, `foreign_key_check`, `quick_check`, and the file synced. The new file
//!   gets the same 64 MiB cache a promotion gives it, and no reference is looked up row by
//!   row (the `foreign_key_check` after proves them all), as in a promotion.
//! * `promote`: [`Store::promote_tenant`], the whole command: copy, checks, switch.
//! * `demote`: [`Store::demote_tenant`] back (the shared rows replaced by the file's).
//! * `export` and `restore`: [`Store::export_tenant`] and [`Store::restore_tenant`].
//!
//! `POS_BENCH_TIER_RUNS` rounds (default 3); printed per step: seconds, rows a second, and the
//! ratio of promote to bare in the same round. Goals: promote of 1,000,000 rows in 10 s or
//! less, at most 1.5x bare. The fixture is kept in `POS_BENCH_DIR` (default the system's temp
//! directory) between runs.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{caps, env_count, load, process_cpu};
use pos_tenancy::catalog::TABLES;
use pos_tenancy::{IfUnsynced, MoveReason, NewTenant, Store, Timestamp};
use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};

/// Fills `tenant` with `rows` rows: products, customers and audit rows, 1:1:2. Ids come in
/// order (as time-ordered UUIDs do); codes, names, emails and phones in no order (a
/// multiplicative permutation), so their indexes are filled at random places, as on a till.
fn fill(conn: &Connection, tenant: &str, rows: u64) {
    let quarter = (rows / 4) as i64;
    let now = Timestamp::now().to_string();
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
         INSERT INTO products (id, tenant_id, sku, barcode, name, brand, kind, price_minor,
                               cost_minor, currency, created_at, updated_at)
         SELECT printf('00000000-0000-7000-8000-%012d', i), ?1,
                printf('SKU-%08d', i * 7919 % ?2), printf('%013d', i * 7907 % ?2),
                printf('Brake pad set %08d', i), 'Bosch', 'stocked',
                1000 + i % 97 * 37, 600, 'USD', ?3, ?3
         FROM n",
        params![tenant, quarter, now],
    )
    .expect("products");
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
         INSERT INTO customers (id, tenant_id, code, first_name, last_name, email, phone,
                                created_at, updated_at)
         SELECT printf('00000000-0000-7000-9000-%012d', i), ?1, printf('C-%08d', i * 7919 % ?2),
                'Ana', printf('Diaz %08d', i * 7907 % ?2),
                printf('ana%08d@example.com', i * 7901 % ?2), printf('+1555%07d', i * 7883 % ?2),
                ?3, ?3
         FROM n",
        params![tenant, quarter, now],
    )
    .expect("customers");
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
         INSERT INTO audit_log (id, tenant_id, at, actor_user_id, action, table_name, row_id,
                                detail)
         SELECT printf('00000000-0000-7000-a000-%012d', i), ?1, ?3, NULL, 'insert', 'products',
                printf('00000000-0000-7000-8000-%012d', i % ?2 + 1),
                json_object('sku', printf('SKU-%08d', i % ?2 + 1), 'price', i % 1000)
         FROM n",
        params![tenant, quarter * 2, now],
    )
    .expect("audit rows");
}

/// The node file with both tenants, made once and copied for each run.
fn fixture(rows: u64) -> PathBuf {
    let dir = std::env::var_os("POS_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("pos-bench-tier-v2-{rows}.db"));
    if path.exists() {
        return path;
    }
    let building = dir.join(format!("pos-bench-tier-{rows}.db.building"));
    let _ = std::fs::remove_file(&building);
    let store = Store::open(&building).expect("store opens");
    for (id, name) in [("caps", "Caps Automotive"), ("bolt", "Bolt Parts")] {
        store
            .add_tenant(&NewTenant::new(id.parse().expect("slug"), name))
            .expect("tenant");
        store
            .tenant(&id.parse().expect("slug"))
            .expect("handle")
            .bootstrap_admin("owner", "Owner")
            .expect("admin");
    }
    drop(store);
    let conn = Connection::open(&building).expect("raw connection");
    conn.pragma_update(None, "synchronous", "OFF")
        .expect("synchronous");
    let started = Instant::now();
    fill(&conn, "caps", rows);
    fill(&conn, "bolt", rows / 100);
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")
        .expect("checkpoint");
    drop(conn);
    std::fs::rename(&building, &path).expect("fixture named");
    eprintln!(
        "fixture: {} rows of caps in {:.1} s",
        rows,
        started.elapsed().as_secs_f64()
    );
    path
}

/// The SHA-256 of the tenant's rows of `table` in `schema`, every column, in canonical order:
/// the same work as the promotion's check of a table.
fn digest(conn: &Connection, schema: &str, table: &str, columns: usize) -> (u64, String) {
    let order: Vec<String> = (1..=columns).map(|i| i.to_string()).collect();
    let mut stmt = conn
        .prepare(&format!(
            "SELECT * FROM {schema}.\"{table}\" WHERE tenant_id = 'caps' ORDER BY {}",
            order.join(", ")
        ))
        .expect("select");
    let n = stmt.column_count();
    let mut sha = Sha256::new();
    let mut rows = stmt.query([]).expect("query");
    let mut count = 0u64;
    while let Some(row) = rows.next().expect("row") {
        for i in 0..n {
            match row.get_ref(i).expect("value") {
                rusqlite::types::ValueRef::Null => sha.update([0]),
                rusqlite::types::ValueRef::Integer(v) => sha.update(v.to_le_bytes()),
                rusqlite::types::ValueRef::Real(v) => sha.update(v.to_le_bytes()),
                rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                    sha.update((b.len() as u64).to_le_bytes());
                    sha.update(b)
                }
            }
        }
        count += 1;
    }
    (count, format!("{:x}", sha.finalize()))
}

/// The baseline: the tenant's rows copied by SQLite alone, then the same checks. Returns the
/// rows copied.
fn bare_copy(node: &Path, to: &Path) -> u64 {
    // The node's schema in the new file, as a promotion installs it.
    drop(Store::open(to).expect("schema"));
    let dst = Connection::open(to).expect("destination");
    dst.execute_batch("PRAGMA journal_mode = DELETE; DELETE FROM node_state;")
        .expect("empty");
    drop(dst);
    let conn = Connection::open(node).expect("node");
    conn.execute("ATTACH ?1 AS d", [to.to_string_lossy()])
        .expect("attach");
    conn.execute_batch(
        "PRAGMA d.journal_mode = MEMORY; PRAGMA d.synchronous = OFF; PRAGMA foreign_keys = OFF;
         PRAGMA d.cache_size = -65536; PRAGMA temp_store = MEMORY;
         BEGIN IMMEDIATE;
         INSERT INTO d.tenants SELECT * FROM main.tenants WHERE id = 'caps';",
    )
    .expect("begin");
    for t in TABLES {
        conn.execute(
            &format!(
                "INSERT INTO d.\"{0}\" SELECT * FROM main.\"{0}\" WHERE tenant_id = 'caps'",
                t.name
            ),
            [],
        )
        .expect("copy");
    }
    conn.execute_batch("COMMIT").expect("commit");
    let mut rows = 0;
    for t in TABLES {
        let columns = t.columns.len() + 2;
        let read = digest(&conn, "main", t.name, columns);
        let written = digest(&conn, "d", t.name, columns);
        assert_eq!(read, written, "{}", t.name);
        rows += read.0;
    }
    let violations: i64 = conn
        .query_row("SELECT count(*) FROM d.pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .expect("fk check");
    assert_eq!(violations, 0);
    let ok: String = conn
        .query_row("PRAGMA d.quick_check(1)", [], |r| r.get(0))
        .expect("integrity");
    assert_eq!(ok, "ok");
    drop(conn);
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .expect("sync");
    rows
}

fn report(step: &str, rows: u64, seconds: f64, cpu: f64) {
    println!(
        "{step:<8} {rows:>9} rows  {seconds:>7.2} s  {:>9.0} rows/s  (cpu {cpu:.2} s)",
        rows as f64 / seconds
    );
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let (started, cpu) = (Instant::now(), process_cpu());
    let out = f();
    (
        out,
        started.elapsed().as_secs_f64(),
        (process_cpu() - cpu).as_secs_f64(),
    )
}

fn main() {
    // `cargo test --benches` runs this with `--test`: the fixture is too big for that.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let rows = env_count("POS_BENCH_TIER_ROWS", 1_000_000);
    let runs = env_count("POS_BENCH_TIER_RUNS", 3);
    let fixture = fixture(rows);
    let work = tempfile::tempdir().expect("work dir");
    let node = work.path().join("node.db");
    std::fs::copy(&fixture, &node).expect("node copied");
    println!("load before: {}", load());
    let store = Store::open(&node).expect("store");
    let caps = caps();
    let mut ratios = Vec::new();
    for run in 1..=runs {
        println!("round {run}");
        let to = work.path().join(format!("bare-{run}.db"));
        let (copied, bare_s, cpu) = timed(|| bare_copy(&node, &to));
        report("bare", copied, bare_s, cpu);
        let _ = std::fs::remove_file(&to);

        // Each round's restore records itself in the tenant's backup log: digest it anew.
        let before = store.tenant_digest(&caps).expect("digest");
        let (moved, promote_s, cpu) = timed(|| {
            store
                .promote_tenant(&caps, Some(0), MoveReason::Operator, &mut |_| {})
                .expect("promote")
        });
        report("promote", moved.rows, promote_s, cpu);
        assert_eq!(moved.sha256, before.sha256);
        ratios.push(promote_s / bare_s);
        println!("promote / bare: {:.2}x", promote_s / bare_s);

        let (back, demote_s, cpu) = timed(|| {
            store
                .demote_tenant(&caps, Some(0), MoveReason::Operator, &mut |_| {})
                .expect("demote")
        });
        report("demote", back.rows, demote_s, cpu);
        store
            .purge_moved_copies(Timestamp::now())
            .expect("purge the file");

        let export = work.path().join(format!("caps-{run}.db"));
        let (exported, export_s, cpu) = timed(|| {
            store
                .export_tenant(&caps, &export, &mut |_| {})
                .expect("export")
        });
        report("export", exported.rows, export_s, cpu);
        let (restored, restore_s, cpu) = timed(|| {
            store
                .restore_tenant(&caps, &export, IfUnsynced::Discard, &mut |_| {})
                .expect("restore")
        });
        report("restore", restored.rows, restore_s, cpu);
        let _ = std::fs::remove_file(&export);
        let _ = std::fs::remove_file(pos_tenancy::backup::checksum_path(&export));
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "promote / bare, median of {runs}: {:.2}x (goal at most 1.5x)",
        ratios[ratios.len() / 2]
    );
    println!("load after: {}", load());
    // The handle routes to the shared file again and reads the tenant.
    assert!(store.tenant(&caps).expect("handle").info().is_ok());
}
