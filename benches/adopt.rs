//! Adoption of a legacy store against the bare copy it cannot avoid, and the queries a store
//! runs every day on the adopted file against the same queries on the legacy file.
//!
//! Groups (one legacy store of `POS_BENCH_ADOPT_ROWS` rows, default 1,000,000, generated once
//! by the test kit's generator with seed 1):
//!
//! * `adopt_1m`: each iteration starts from a fresh copy of the legacy file (copied and
//!   synced in setup, not timed, so no side pays for writing the copy out).
//!   * `adopt`: [`pos_tenancy::adopt::adopt`] as `pos-node adopt` runs it: audit, online backup
//!     with its SHA-256, rebuild, validation by digests, `foreign_key_check`, `integrity_check`
//!     and commit.
//!   * `floor_deferred_indexes`: the bare copy into the rebuilt tables in one transaction, the
//!     fastest way: legacy tables renamed aside, the current schema created from the migration
//!     files, its indexes and the triggers that keep the balances (V5) dropped, `INSERT ...
//!     SELECT` per legacy table in key order, the indexes built, the legacy tables dropped.
//!     Nothing else: no backup, no verification, no ANALYZE, and the balance tables are left
//!     empty (adoption fills them with one grouped sum per table, its `balances` step, and
//!     puts the triggers back), so the floor is the copy alone. The connection has
//!     adoption's page cache and sorter settings but not its memory map, which did not make
//!     the bare copy faster (4.75 s without, 4.92 s and 5.23 s with, one run each, copies not
//!     yet synced; adoption reads every page again in its checks, which is where it pays).
//!   * `floor_naive`: the same copy with the schema's indexes in place during the inserts
//!     (the balance triggers still dropped).
//!
//!   Goals: `adopt` at most 10 s and at most 1.5x `floor_deferred_indexes`.
//! * `queries`: tenant-scoped SQL on the adopted file (`WHERE tenant_id = ? AND ...`, the SQL
//!   the tenant layer issues) against the unscoped SQL on the legacy file: a product by SKU, a
//!   customer's sales, today's sales, the stock of a product. Each cycles through 64 keys.
//!   Only one of the two connections is open while it is measured (see benches/store.rs on
//!   the shared page cache). Goal: within 10%.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use pos_tenancy::adopt::{adopt, AdoptOptions, Outcome};
use pos_tenancy::testkit::legacy::{generate, today, LegacyOptions};
use rusqlite::{Connection, TransactionBehavior};
use tempfile::TempDir;

const TENANT: &str = "caps-automotive";
/// Every node migration, so the floor builds the same schema adoption does.
const SCHEMA: [&str; 7] = [
    include_str!("../migrations/node/V1__initial_schema.sql"),
    include_str!("../migrations/node/V2__node_state.sql"),
    include_str!("../migrations/node/V3__outbox_compact_rows.sql"),
    include_str!("../migrations/node/V4__covering_ledger_indexes.sql"),
    include_str!("../migrations/node/V5__ledger_balances.sql"),
    include_str!("../migrations/node/V6__append_friendly_indexes.sql"),
    include_str!("../migrations/node/V7__layaway_payment_reference.sql"),
];

struct Fixture {
    dir: TempDir,
    legacy: PathBuf,
    adopted: PathBuf,
    options: LegacyOptions,
}

fn rows() -> u64 {
    std::env::var("POS_BENCH_ADOPT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let legacy = dir.path().join("legacy.db");
    let options = LegacyOptions {
        rows: rows(),
        ..LegacyOptions::default()
    };
    let summary = generate(&legacy, &options).expect("legacy store generated");
    eprintln!("legacy store: {} rows", summary.total_rows);
    let adopted = dir.path().join("adopted.db");
    std::fs::copy(&legacy, &adopted).expect("copy");
    let outcome = adopt(&adopted, &adopt_options(dir.path()), &mut |_| {}).expect("adopts");
    if let Outcome::Adopted(report) = outcome {
        eprintln!(
            "one adoption: {:.2} s; steps: {:?}",
            report.seconds, report.step_seconds
        );
    }
    Fixture {
        dir,
        legacy,
        adopted,
        options,
    }
}

fn adopt_options(dir: &Path) -> AdoptOptions {
    AdoptOptions::new(TENANT.parse().expect("slug"), "Caps Automotive")
        .backup_dir(dir.join("backups"))
}

/// A fresh copy of the legacy file for one iteration; removed with its backups afterwards.
struct Copy {
    dir: TempDir,
    path: PathBuf,
}

fn fresh_copy(f: &Fixture) -> Copy {
    let dir = tempfile::tempdir_in(f.dir.path()).expect("tempdir");
    let path = dir.path().join("store.db");
    std::fs::copy(&f.legacy, &path).expect("copy");
    std::fs::File::open(&path)
        .and_then(|file| file.sync_all())
        .expect("sync");
    Copy { dir, path }
}

fn catalog_tables() -> Vec<&'static str> {
    pos_tenancy::catalog::TABLES
        .iter()
        .map(|t| t.name)
        .collect()
}

fn column_list(conn: &Connection, table: &str) -> String {
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
        .expect("columns");
    let names: Vec<String> = stmt
        .query_map([table], |r| r.get(0))
        .expect("columns")
        .collect::<rusqlite::Result<_>>()
        .expect("columns");
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The bare copy: what any in-place rebuild must do at least.
fn floor(path: &Path, defer_indexes: bool) {
    let mut conn = Connection::open(path).expect("opens");
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF; PRAGMA legacy_alter_table = ON; \
         PRAGMA cache_size = -131072; PRAGMA threads = 2; PRAGMA temp_store = MEMORY;",
    )
    .expect("pragmas");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .expect("begin");
    // The tables the legacy file has; those added since (sale_reversals) are created empty.
    let tables: Vec<&str> = catalog_tables()
        .into_iter()
        .filter(|t| {
            tx.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [t],
                |r| r.get::<_, i64>(0),
            )
            .expect("table list")
                > 0
        })
        .collect();
    let legacy_indexes: Vec<String> = tx
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL")
        .expect("indexes")
        .query_map([], |r| r.get(0))
        .expect("indexes")
        .collect::<rusqlite::Result<_>>()
        .expect("indexes");
    for index in legacy_indexes {
        tx.execute_batch(&format!("DROP INDEX \"{index}\""))
            .expect("drop");
    }
    let mut columns = Vec::new();
    for t in &tables {
        columns.push(column_list(&tx, t));
        tx.execute_batch(&format!("ALTER TABLE \"{t}\" RENAME TO \"old_{t}\""))
            .expect("rename");
    }
    for sql in SCHEMA {
        tx.execute_batch(sql).expect("schema");
    }
    // The triggers on the ledgers that write a balance table: not part of the bare copy.
    for b in pos_tenancy::catalog::BALANCES {
        let names: Vec<String> = tx
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1 \
                 AND instr(lower(sql), ?2) > 0",
            )
            .expect("triggers")
            .query_map([b.ledger, b.table], |r| r.get(0))
            .expect("triggers")
            .collect::<rusqlite::Result<_>>()
            .expect("triggers");
        assert_eq!(names.len(), 3, "insert, update and delete on {}", b.ledger);
        for name in names {
            tx.execute_batch(&format!("DROP TRIGGER \"{name}\""))
                .expect("drop");
        }
    }
    tx.execute(
        "INSERT INTO tenants (id, name, max_users, max_api_calls_month, settings, created_at,
                              updated_at)
         VALUES (?1, 'Caps', 10, 1000, '{}', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        [TENANT],
    )
    .expect("tenant");
    let indexes: Vec<String> = if defer_indexes {
        let found: Vec<(String, String)> = tx
            .prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL")
            .expect("indexes")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("indexes")
            .collect::<rusqlite::Result<_>>()
            .expect("indexes");
        for (name, _) in &found {
            tx.execute_batch(&format!("DROP INDEX \"{name}\""))
                .expect("drop");
        }
        found.into_iter().map(|(_, sql)| sql).collect()
    } else {
        Vec::new()
    };
    for (t, cols) in tables.iter().zip(&columns) {
        let key = if *t == "pending_operations" {
            "hlc"
        } else {
            "id"
        };
        tx.execute(
            &format!(
                "INSERT INTO \"{t}\" (tenant_id, {cols}) SELECT ?1, {cols} FROM \"old_{t}\" \
                 ORDER BY {key}"
            ),
            [TENANT],
        )
        .expect("copy");
    }
    for sql in indexes {
        tx.execute_batch(&sql).expect("index");
    }
    for t in &tables {
        tx.execute_batch(&format!("DROP TABLE \"old_{t}\""))
            .expect("drop");
    }
    tx.commit().expect("commit");
}

fn bench_adopt(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("adopt_1m");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(60));
    group.bench_function("adopt", |b| {
        b.iter_batched(
            || fresh_copy(f),
            |copy| {
                let outcome = adopt(&copy.path, &adopt_options(copy.dir.path()), &mut |_| {})
                    .expect("adopts");
                assert!(matches!(outcome, Outcome::Adopted(_)));
                copy
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("floor_deferred_indexes", |b| {
        b.iter_batched(
            || fresh_copy(f),
            |copy| {
                floor(&copy.path, true);
                copy
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("floor_naive", |b| {
        b.iter_batched(
            || fresh_copy(f),
            |copy| {
                floor(&copy.path, false);
                copy
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Keys the queries cycle through, read from the legacy file.
struct Keys {
    skus: Vec<String>,
    customers: Vec<String>,
    products: Vec<String>,
    day: (String, String),
}

fn keys(f: &Fixture) -> Keys {
    let conn = Connection::open(&f.legacy).expect("opens");
    let column = |sql: &str| -> Vec<String> {
        conn.prepare(sql)
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    };
    let day = today(&f.options);
    Keys {
        skus: column("SELECT sku FROM products ORDER BY id LIMIT 64"),
        customers: column(
            "SELECT customer_id FROM sales WHERE customer_id IS NOT NULL
             GROUP BY customer_id ORDER BY customer_id LIMIT 64",
        ),
        products: column(
            "SELECT product_id FROM inventory_transactions GROUP BY product_id
             ORDER BY product_id LIMIT 64",
        ),
        day: (
            format!("{day}T00:00:00.000Z"),
            format!("{}T00:00:00.000Z", day.succ_opt().expect("a next day")),
        ),
    }
}

fn bench_queries(c: &mut Criterion, f: &Fixture) {
    let k = keys(f);
    let mut group = c.benchmark_group("queries");
    group.measurement_time(Duration::from_secs(4));
    for (side, path) in [("legacy", &f.legacy), ("adopted", &f.adopted)] {
        let scoped = side == "adopted";
        let open = || Connection::open(path).expect("opens");
        // The same statement with and without the tenant condition; the legacy one numbers
        // its parameters from ?2 so that both bind the same way (?1 is left out of it).
        let sql = |unscoped: &str, scoped_sql: &str| {
            if scoped {
                scoped_sql.to_owned()
            } else {
                unscoped.to_owned()
            }
        };
        fn args(scoped: bool, rest: Vec<&str>) -> Vec<&str> {
            if scoped {
                std::iter::once(TENANT).chain(rest).collect()
            } else {
                rest
            }
        }

        let q = sql(
            "SELECT id, name, price_minor FROM products WHERE sku = ?1",
            "SELECT id, name, price_minor FROM products WHERE tenant_id = ?1 AND sku = ?2",
        );
        group.bench_function(format!("product_by_sku/{side}"), |b| {
            let conn = open();
            let mut stmt = conn.prepare(&q).expect("prepare");
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % k.skus.len();
                let row: (String, String, i64) = stmt
                    .query_row(
                        rusqlite::params_from_iter(args(scoped, vec![k.skus[i].as_str()])),
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .expect("found");
                black_box(row)
            })
        });

        let q = sql(
            "SELECT id, number, total_minor, sold_at FROM sales WHERE customer_id = ?1
             ORDER BY sold_at DESC LIMIT 50",
            "SELECT id, number, total_minor, sold_at FROM sales WHERE tenant_id = ?1
             AND customer_id = ?2 ORDER BY sold_at DESC LIMIT 50",
        );
        group.bench_function(format!("customer_sales/{side}"), |b| {
            let conn = open();
            let mut stmt = conn.prepare(&q).expect("prepare");
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % k.customers.len();
                let n = stmt
                    .query_map(
                        rusqlite::params_from_iter(args(scoped, vec![k.customers[i].as_str()])),
                        |r| r.get::<_, i64>(2),
                    )
                    .expect("query")
                    .count();
                black_box(n)
            })
        });

        let q = sql(
            "SELECT count(*), coalesce(sum(total_minor), 0) FROM sales WHERE
             sold_at >= ?1 AND sold_at < ?2",
            "SELECT count(*), coalesce(sum(total_minor), 0) FROM sales WHERE tenant_id = ?1
             AND sold_at >= ?2 AND sold_at < ?3",
        );
        group.bench_function(format!("todays_sales/{side}"), |b| {
            let conn = open();
            let mut stmt = conn.prepare(&q).expect("prepare");
            b.iter(|| {
                let row: (i64, i64) = stmt
                    .query_row(
                        rusqlite::params_from_iter(args(
                            scoped,
                            vec![k.day.0.as_str(), k.day.1.as_str()],
                        )),
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .expect("sums");
                black_box(row)
            })
        });

        let q = sql(
            "SELECT coalesce(sum(quantity_milli), 0) FROM inventory_transactions
             WHERE product_id = ?1",
            "SELECT coalesce(sum(quantity_milli), 0) FROM inventory_transactions
             WHERE tenant_id = ?1 AND product_id = ?2",
        );
        group.bench_function(format!("stock_of_product/{side}"), |b| {
            let conn = open();
            let mut stmt = conn.prepare(&q).expect("prepare");
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % k.products.len();
                let stock: i64 = stmt
                    .query_row(
                        rusqlite::params_from_iter(args(scoped, vec![k.products[i].as_str()])),
                        |r| r.get(0),
                    )
                    .expect("sum");
                black_box(stock)
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    bench_queries(c, &f);
    bench_adopt(c, &f);
}

criterion_group!(adoption, benches);
criterion_main!(adoption);
