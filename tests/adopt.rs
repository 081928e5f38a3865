//! Adoption of legacy single-tenant stores, through the public API and the `pos-node` binary:
//! generated stores of several sizes, quirks the store does not know, failures that must leave
//! the file as it was, rollback, and a process killed at random moments.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use pos_tenancy::adopt::{self, adopt, canonical_digest, AdoptError, AdoptOptions, Outcome, Step};
use pos_tenancy::catalog::{Product, Sale, SaleLine, User};
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::testkit::legacy::{generate, LegacyOptions, LEGACY_SCHEMA};
use pos_tenancy::{ListQuery, RowId, Store, TenantAccess, TenantId, Timestamp};
use rand::{Rng, SeedableRng};
use rusqlite::Connection;

fn tenant() -> TenantId {
    "caps-automotive".parse().expect("valid slug")
}

fn options(dir: &Path) -> AdoptOptions {
    AdoptOptions::new(tenant(), "Caps Automotive").backup_dir(dir.join("backups"))
}

fn legacy(dir: &Path, rows: u64, seed: u64) -> PathBuf {
    let path = dir.join(format!("legacy-{rows}-{seed}.db"));
    generate(
        &path,
        &LegacyOptions {
            rows,
            seed,
            ..LegacyOptions::default()
        },
    )
    .expect("legacy store generated");
    path
}

fn adopted(outcome: Outcome) -> adopt::AdoptReport {
    match outcome {
        Outcome::Adopted(report) => report,
        other => panic!("expected an adoption, got {other:?}"),
    }
}

fn count(conn: &Connection, table: &str) -> u64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as u64)
    .expect("count")
}

/// Whether the file has this table (the legacy app predates tables added since).
fn exists(conn: &Connection, table: &str) -> bool {
    conn.query_row(
        "SELECT count(*) FROM pragma_table_list WHERE name = ?1",
        [table],
        |r| r.get::<_, i64>(0),
    )
    .expect("table list")
        > 0
}

fn file_sha(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("file readable")
}

/// Raises the first product's price through the tenant handle, as the adopted tenant's admin.
fn reprice_first_product(store: &Store, by: i64) -> Product {
    let caps = store.tenant(&tenant()).expect("tenant");
    let admins = caps
        .list::<User>(&ListQuery::new().eq("role", "admin").limit(1))
        .expect("users");
    let admin = caps.actor(admins.rows[0].id).expect("actor");
    let mut product = caps
        .list::<Product>(&ListQuery::new().limit(1))
        .expect("products")
        .rows
        .remove(0);
    product.price_minor += by;
    caps.update(&admin, &product)
        .expect("an update through the handle");
    product
}

/// Adopts a file that must be refused, and checks that not one byte of it changed.
fn refused(path: &Path, opts: &AdoptOptions) -> AdoptError {
    let bytes = file_sha(path);
    let err = adopt(path, opts, &mut |_| {}).expect_err("refused");
    assert_eq!(file_sha(path), bytes, "{err}");
    err
}

/// Every row of a table as text, in id order, with the named columns.
fn dump(conn: &Connection, table: &str, columns: &str) -> Vec<Vec<String>> {
    let mut stmt = conn
        .prepare(&format!("SELECT {columns} FROM {table} ORDER BY id"))
        .expect("prepare dump");
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| {
                    r.get_ref(i).map(|v| match v {
                        rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                        rusqlite::types::ValueRef::Integer(i) => format!("i{i}"),
                        rusqlite::types::ValueRef::Real(f) => format!("r{f}"),
                        rusqlite::types::ValueRef::Text(t) => {
                            format!("t{}", String::from_utf8_lossy(t))
                        }
                        rusqlite::types::ValueRef::Blob(b) => format!("b{b:?}"),
                    })
                })
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .expect("query dump");
    rows.collect::<rusqlite::Result<_>>().expect("rows")
}

fn legacy_columns(conn: &Connection, table: &str) -> String {
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
        .expect("columns");
    let names: Vec<String> = stmt
        .query_map([table], |r| r.get(0))
        .expect("columns")
        .collect::<rusqlite::Result<_>>()
        .expect("columns");
    names.join(", ")
}

#[test]
fn generated_stores_of_several_sizes_are_adopted_and_usable() {
    let dir = tempfile::tempdir().expect("tempdir");
    for rows in [1_000, 5_000, 30_000] {
        let path = legacy(dir.path(), rows, 7);
        let before = Connection::open(&path).expect("legacy opens");
        let counts: Vec<(String, u64)> = pos_tenancy::catalog::TABLES
            .iter()
            .filter(|t| exists(&before, t.name))
            .map(|t| (t.name.to_owned(), count(&before, t.name)))
            .collect();
        let sale_lines = dump(
            &before,
            "sale_lines",
            &legacy_columns(&before, "sale_lines"),
        );
        let products = dump(&before, "products", &legacy_columns(&before, "products"));
        drop(before);

        let report = adopted(adopt(&path, &options(dir.path()), &mut |_| {}).expect("adopts"));
        assert_eq!(report.tables.len(), pos_tenancy::catalog::TABLES.len());
        for (table, n) in &counts {
            let t = report
                .tables
                .iter()
                .find(|t| &t.table == table)
                .expect("every table reported");
            assert_eq!((t.rows_before, t.rows_after), (*n, *n), "{table}");
        }
        assert_eq!(
            report.total_rows_after,
            counts.iter().map(|(_, n)| n).sum::<u64>()
        );
        assert!(report.backup.path.is_file());

        // Every column of every row is what it was (checked here independently of the
        // adoption's own digest).
        let after = Connection::open(&path).expect("adopted opens");
        let cols = legacy_columns(
            &Connection::open(&report.backup.path).expect("backup"),
            "sale_lines",
        );
        assert_eq!(dump(&after, "sale_lines", &cols), sale_lines);
        let cols = legacy_columns(
            &Connection::open(&report.backup.path).expect("backup"),
            "products",
        );
        assert_eq!(dump(&after, "products", &cols), products);
        let nulls: i64 = after
            .query_row(
                "SELECT count(*) FROM sales WHERE tenant_id IS NULL OR tenant_id <> 'caps-automotive'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(nulls, 0);
        // The planner has statistics: the stock of a product is read through its index, not
        // by scanning the tenant's whole ledger (what SQLite does without them, taking
        // `tenant_id = ?` for a selective condition).
        let plan: Vec<String> = after
            .prepare(
                "EXPLAIN QUERY PLAN SELECT sum(quantity_milli) FROM inventory_transactions
                 WHERE tenant_id = 'caps-automotive' AND product_id = 'x'",
            )
            .expect("plan")
            .query_map([], |r| r.get(3))
            .expect("plan")
            .collect::<rusqlite::Result<_>>()
            .expect("plan");
        let plan = plan.join("; ");
        assert!(plan.contains("inventory_transactions_product"), "{plan}");
        drop(after);

        // The file opens as a current store straight away and passes verify.
        let store = Store::open(&path).expect("adopted store opens");
        assert_eq!(
            store.schema_version().expect("version"),
            Store::supported_schema_version()
        );
        let verified = store.verify().expect("verify runs");
        assert!(verified.is_ok(), "{:?}", verified.violations);

        // And it is usable through the tenant handle: reads, and writes that reference
        // adopted rows.
        let caps = store.tenant(&tenant()).expect("tenant handle");
        let admins = caps
            .list::<User>(&ListQuery::new().eq("role", "admin").limit(1))
            .expect("list users");
        let admin = caps
            .actor(
                admins
                    .rows
                    .first()
                    .expect("the legacy store has an admin")
                    .id,
            )
            .expect("actor");
        let product = caps
            .list::<Product>(&ListQuery::new().limit(1))
            .expect("list products")
            .rows
            .into_iter()
            .next()
            .expect("products");
        let sale = caps
            .list::<Sale>(&ListQuery::new().limit(1))
            .expect("list sales")
            .rows
            .into_iter()
            .next()
            .expect("sales");
        assert!(caps.get::<Sale>(sale.id).expect("get").is_some());
        let now = Timestamp::now();
        let new_sale = Sale {
            id: RowId::new(),
            number: format!("ADOPTED-{rows}"),
            device_id: None,
            customer_id: sale.customer_id,
            user_id: admin.user_id(),
            status: "open".into(),
            currency: product.currency.clone(),
            subtotal_minor: product.price_minor,
            discount_minor: 0,
            tax_minor: 0,
            total_minor: product.price_minor,
            sold_at: now,
            note: None,
            receipt_brand: None,
        };
        caps.insert(&admin, &new_sale)
            .expect("a new sale on adopted data");
        let line = SaleLine {
            id: RowId::new(),
            sale_id: new_sale.id,
            product_id: Some(product.id),
            ..caps
                .list::<SaleLine>(&ListQuery::new().limit(1))
                .expect("lines")
                .rows
                .into_iter()
                .next()
                .expect("a line")
        };
        caps.insert(&admin, &line)
            .expect("a line for an adopted product");
        let n = caps
            .query("SELECT count(*) AS n FROM sale_lines")
            .expect("report");
        assert_eq!(
            n.rows[0][0],
            serde_json::json!(counts
                .iter()
                .find(|(t, _)| t == "sale_lines")
                .map(|(_, n)| n + 1))
        );
        assert_eq!(caps.pending_operations(10).expect("outbox").len(), 2);
    }
}

/// A legacy file with the quirks real stores grow: an extra column, an extra unique index, an
/// extra UNIQUE constraint, a view, a trigger, NULLs, non-ASCII text and blobs.
fn quirky(dir: &Path) -> PathBuf {
    let path = legacy(dir, 2_000, 3);
    let conn = Connection::open(&path).expect("opens");
    conn.execute_batch(
        "ALTER TABLE products ADD COLUMN shelf TEXT DEFAULT 'A1';
         ALTER TABLE customers ADD COLUMN nickname TEXT;
         CREATE UNIQUE INDEX products_shelf_name ON products(shelf, name);
         CREATE INDEX customers_nickname ON customers(nickname COLLATE NOCASE DESC);
         CREATE VIEW cheap_products AS SELECT sku, name FROM products WHERE price_minor < 1000;
         CREATE TRIGGER products_touch AFTER UPDATE OF price_minor ON products
         BEGIN UPDATE products SET shelf = 'repriced' WHERE id = NEW.id; END;
         UPDATE products SET description = NULL, brand = NULL
             WHERE rowid IN (SELECT rowid FROM products LIMIT 3);
         UPDATE products SET name = 'Ölfilter für Zündkerzen 東京 🚗', image = x'00ff10fe'
             WHERE rowid = (SELECT min(rowid) FROM products);
         UPDATE customers SET nickname = 'Ñandú' WHERE rowid = (SELECT min(rowid) FROM customers);",
    )
    .expect("quirks added");
    path
}

#[test]
fn quirks_are_kept_and_rescoped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = quirky(dir.path());
    let plan = match adopt(&path, &options(dir.path()).dry_run(true), &mut |_| {}).expect("plans") {
        Outcome::Planned(plan) => plan,
        other => panic!("expected a plan, got {other:?}"),
    };
    let products = plan
        .tables
        .iter()
        .find(|t| t.table == "products")
        .expect("products");
    assert_eq!(products.extra_columns, ["shelf"]);
    assert!(products
        .indexes
        .iter()
        .any(|i| i.starts_with("products_shelf_name")));
    assert_eq!(plan.views, ["cheap_products"]);
    assert_eq!(plan.triggers, ["products_touch"]);

    let before = Connection::open(&path).expect("opens");
    let products_before = dump(&before, "products", &legacy_columns(&before, "products"));
    let customers_before = dump(&before, "customers", &legacy_columns(&before, "customers"));
    let cols_products = legacy_columns(&before, "products");
    let cols_customers = legacy_columns(&before, "customers");
    drop(before);

    adopted(adopt(&path, &options(dir.path()), &mut |_| {}).expect("adopts"));
    let conn = Connection::open(&path).expect("opens");
    assert_eq!(dump(&conn, "products", &cols_products), products_before);
    assert_eq!(dump(&conn, "customers", &cols_customers), customers_before);
    // The extra indexes lead with tenant_id now and keep their collation and order.
    for index in ["products_shelf_name", "customers_nickname"] {
        let first: String = conn
            .query_row(
                "SELECT name FROM pragma_index_xinfo(?1) WHERE seqno = 0",
                [index],
                |r| r.get(0),
            )
            .expect("index exists");
        assert_eq!(first, "tenant_id", "{index}");
    }
    let (coll, desc): (String, bool) = conn
        .query_row(
            "SELECT coll, \"desc\" FROM pragma_index_xinfo('customers_nickname') WHERE seqno = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("index column");
    assert_eq!((coll.as_str(), desc), ("NOCASE", true));
    // The view and the trigger still work.
    let cheap: i64 = conn
        .query_row("SELECT count(*) FROM cheap_products", [], |r| r.get(0))
        .expect("view works");
    let expected: i64 = conn
        .query_row(
            "SELECT count(*) FROM products WHERE price_minor < 1000",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(cheap, expected);
    drop(conn);

    let store = Store::open(&path).expect("opens as a store");
    assert!(store.verify().expect("verify").is_ok());
    let product = reprice_first_product(&store, 100);
    drop(store);
    let conn = Connection::open(&path).expect("opens");
    let shelf: String = conn
        .query_row(
            "SELECT shelf FROM products WHERE id = ?1",
            [product.id],
            |r| r.get(0),
        )
        .expect("row");
    assert_eq!(shelf, "repriced", "the legacy trigger fired");
    // The extra unique index is now per tenant: a second product on the same shelf with the
    // same name is still refused within the tenant.
    let dup = conn.execute(
        "INSERT INTO products (id, tenant_id, sku, name, price_minor, currency, created_at,
                               updated_at, shelf)
         SELECT ?1, tenant_id, 'DUP-SKU', name, 1, currency, created_at, updated_at, shelf
         FROM products WHERE id = ?2",
        rusqlite::params![RowId::new(), product.id],
    );
    assert!(dup.is_err(), "the rescoped unique index still holds");
}

#[test]
fn a_failing_step_rolls_back_and_names_the_step_and_table() {
    let dir = tempfile::tempdir().expect("tempdir");

    // A sale line whose sale is gone: the legacy app never enforced foreign keys.
    let path = legacy(dir.path(), 2_000, 11);
    let conn = Connection::open(&path).expect("opens");
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF;
         UPDATE sale_lines SET sale_id = '0192f3a0-0000-7000-8000-00000000dead'
             WHERE rowid = (SELECT min(rowid) FROM sale_lines);",
    )
    .expect("orphan made");
    drop(conn);
    let digest = canonical_digest(&path).expect("digest");
    let err = adopt(&path, &options(dir.path()), &mut |_| {}).expect_err("must fail");
    match &err {
        AdoptError::Failed { step, table, .. } => {
            assert_eq!(*step, Step::ForeignKeyCheck);
            assert_eq!(table.as_deref(), Some("sale_lines"));
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("sale_lines"), "{err}");
    assert_eq!(
        canonical_digest(&path).expect("digest"),
        digest,
        "file unchanged"
    );

    // A value the current schema's CHECK refuses.
    let path = legacy(dir.path(), 2_000, 12);
    let conn = Connection::open(&path).expect("opens");
    conn.execute_batch(
        "PRAGMA ignore_check_constraints = ON;
         UPDATE products SET kind = 'bogus' WHERE rowid = (SELECT min(rowid) FROM products);",
    )
    .expect("bad value made");
    drop(conn);
    let digest = canonical_digest(&path).expect("digest");
    let err = adopt(&path, &options(dir.path()), &mut |_| {}).expect_err("must fail");
    assert!(
        matches!(&err, AdoptError::Failed { step: Step::Copy, table: Some(t), .. } if t == "products"),
        "{err}"
    );
    assert_eq!(
        canonical_digest(&path).expect("digest"),
        digest,
        "file unchanged"
    );

    // A value the new column's type would convert: an integer in a legacy column declared
    // without a type, copied into a TEXT column, would become text. The digest catches it.
    let path = dir.path().join("typeless.db");
    Connection::open(&path)
        .expect("creates")
        .execute_batch(
            "CREATE TABLE product_categories (id TEXT PRIMARY KEY NOT NULL, name NOT NULL,
                 parent_id TEXT, created_at TEXT NOT NULL);
             INSERT INTO product_categories VALUES ('0192f3a0-0000-7000-8000-000000000001', 12,
                 NULL, '2026-01-01T09:00:00.000Z');",
        )
        .expect("legacy table");
    let digest = canonical_digest(&path).expect("digest");
    let err = adopt(&path, &options(dir.path()), &mut |_| {}).expect_err("must fail");
    assert!(
        matches!(&err, AdoptError::Failed { step: Step::Validate, table: Some(t), .. }
                 if t == "product_categories"),
        "{err}"
    );
    assert_eq!(
        canonical_digest(&path).expect("digest"),
        digest,
        "file unchanged"
    );
}

#[test]
fn files_that_are_not_legacy_stores_are_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = options(dir.path());

    let missing = dir.path().join("missing.db");
    assert!(matches!(
        adopt(&missing, &opts, &mut |_| {}),
        Err(AdoptError::NotFound { .. })
    ));
    assert!(!missing.exists(), "no file is created");

    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "this is not a database, just some text long enough ".repeat(100),
    )
    .expect("written");
    let err = refused(&text, &opts);
    assert!(matches!(err, AdoptError::NotSqlite { .. }), "{err}");

    let empty = dir.path().join("empty.db");
    Connection::open(&empty)
        .expect("creates")
        .execute_batch("PRAGMA user_version = 1")
        .expect("x");
    assert!(matches!(
        adopt(&empty, &opts, &mut |_| {}),
        Err(AdoptError::NotLegacy { .. })
    ));

    let other = dir.path().join("other.db");
    Connection::open(&other)
        .expect("creates")
        .execute_batch("CREATE TABLE recipes (id INTEGER PRIMARY KEY, title TEXT);")
        .expect("other app");
    let err = refused(&other, &opts);
    assert!(matches!(err, AdoptError::NotLegacy { .. }), "{err}");
    assert!(err.to_string().contains("recipes"));

    // A legacy store with a table the catalog does not know: refused, with its name.
    let mixed = legacy(dir.path(), 1_000, 5);
    Connection::open(&mixed)
        .expect("opens")
        .execute_batch("CREATE TABLE loyalty_cards_v0 (id TEXT PRIMARY KEY, code TEXT UNIQUE);")
        .expect("extra table");
    let err = refused(&mixed, &opts);
    assert!(matches!(err, AdoptError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("loyalty_cards_v0"));

    // A legacy index with the name of a store index but other leading columns: queries it
    // served could be lost, so it is refused (only the store's own rekeyed audit_log_row,
    // matched by its old columns, is taken over).
    let reordered = legacy(dir.path(), 1_000, 7);
    Connection::open(&reordered)
        .expect("opens")
        .execute_batch(
            "DROP INDEX inventory_transactions_product;
             CREATE INDEX inventory_transactions_product
                 ON inventory_transactions(location, product_id);",
        )
        .expect("redefined index");
    let err = refused(&reordered, &opts);
    assert!(matches!(err, AdoptError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("another definition"), "{err}");

    // Truncated: the second half of the file is gone.
    let truncated = legacy(dir.path(), 5_000, 6);
    let full = std::fs::read(&truncated).expect("read");
    std::fs::write(&truncated, &full[..full.len() / 2]).expect("truncate");
    let err = refused(&truncated, &opts);
    assert!(
        matches!(
            err,
            AdoptError::NotSqlite { .. } | AdoptError::Failed { .. }
        ),
        "{err}"
    );

    // Locked by another connection holding an exclusive lock.
    let locked = legacy(dir.path(), 1_000, 8);
    let holder = Connection::open(&locked).expect("opens");
    holder.execute_batch("BEGIN EXCLUSIVE").expect("locks");
    let err = adopt(&locked, &opts, &mut |_| {}).expect_err("refused");
    assert!(matches!(err, AdoptError::Locked { .. }), "{err}");
    holder.execute_batch("ROLLBACK").expect("unlocks");
    // A writer that has begun but not committed (a RESERVED lock): the audit and the backup
    // can read, the rebuild cannot start; the stale backup is removed.
    holder
        .execute_batch("BEGIN IMMEDIATE; UPDATE products SET brand = brand;")
        .expect("writes");
    let err = refused(&locked, &opts);
    assert!(matches!(err, AdoptError::Locked { .. }), "{err}");
    let leftovers = std::fs::read_dir(dir.path().join("backups"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(leftovers, 0, "no backup is left behind");
    holder.execute_batch("ROLLBACK").expect("unlocks");
    drop(holder);
    let digest = canonical_digest(&locked).expect("digest");
    adopted(adopt(&locked, &opts, &mut |_| {}).expect("adopts once unlocked"));
    assert_ne!(canonical_digest(&locked).expect("digest"), digest);
}

#[test]
fn a_dry_run_changes_nothing_and_a_second_run_is_a_no_op() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = legacy(dir.path(), 1_000, 9);
    let bytes = file_sha(&path);
    let plan = match adopt(&path, &options(dir.path()).dry_run(true), &mut |_| {}).expect("plan") {
        Outcome::Planned(plan) => plan,
        other => panic!("expected a plan, got {other:?}"),
    };
    assert_eq!(file_sha(&path), bytes);
    assert!(
        !dir.path().join("backups").exists(),
        "a dry run writes no backup"
    );
    let sales = plan
        .tables
        .iter()
        .find(|t| t.table == "sales")
        .expect("sales");
    assert!(sales.rows > 0);
    assert!(sales
        .constraints
        .contains(&"PRIMARY KEY (tenant_id, id)".to_owned()));
    assert!(sales
        .constraints
        .contains(&"UNIQUE (tenant_id, number)".to_owned()));
    assert!(sales.indexes.iter().all(|i| i.contains("(tenant_id")));

    adopted(adopt(&path, &options(dir.path()), &mut |_| {}).expect("adopts"));
    let digest = canonical_digest(&path).expect("digest");
    match adopt(&path, &options(dir.path()), &mut |_| {}).expect("second run") {
        Outcome::AlreadyMultiTenant { tenants, .. } => assert_eq!(tenants, ["caps-automotive"]),
        other => panic!("expected a no-op, got {other:?}"),
    }
    assert_eq!(canonical_digest(&path).expect("digest"), digest);
}

#[test]
fn rollback_restores_the_original_after_checking_the_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = legacy(dir.path(), 2_000, 10);
    let original = canonical_digest(&path).expect("digest");
    let report = adopted(adopt(&path, &options(dir.path()), &mut |_| {}).expect("adopts"));
    // The backup is the original, and its checksum file is in sha256sum format.
    assert_eq!(
        canonical_digest(&report.backup.path).expect("digest"),
        original
    );
    let sums = std::fs::read_to_string(adopt::checksum_path(&report.backup.path)).expect("sums");
    assert!(sums.starts_with(&report.backup.sha256));

    // Work done after adoption is lost by a rollback, which is what rollback means.
    let store = Store::open(&path).expect("opens");
    reprice_first_product(&store, 1);
    drop(store);
    let restored = adopt::rollback(&path, &report.backup.path).expect("rolls back");
    assert_eq!(restored.canonical_digest, original);
    assert_eq!(canonical_digest(&path).expect("digest"), original);
    let mode: String = Connection::open(&path)
        .expect("opens")
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "delete", "the legacy app gets its journal mode back");
    assert!(matches!(
        adopt::rollback(&dir.path().join("no-such.db"), &report.backup.path),
        Err(AdoptError::NotFound { .. })
    ));
    assert!(!dir.path().join("no-such.db").exists());

    // A backup that does not match its checksum is refused, and the database is untouched.
    adopted(adopt(&path, &options(dir.path()), &mut |_| {}).expect("adopts again"));
    let adopted_digest = canonical_digest(&path).expect("digest");
    let mut tampered = std::fs::read(&report.backup.path).expect("backup");
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    std::fs::write(&report.backup.path, tampered).expect("tamper");
    let err = adopt::rollback(&path, &report.backup.path).expect_err("refused");
    assert!(matches!(err, AdoptError::ChecksumMismatch { .. }), "{err}");
    assert_eq!(canonical_digest(&path).expect("digest"), adopted_digest);
}

/// Every kept balance as `(table, key..., value)` text rows, and the same from the ledger sums.
fn kept_and_summed(conn: &Connection) -> (Vec<String>, Vec<String>) {
    let rows = |sql: &str| -> Vec<String> {
        conn.prepare(sql)
            .expect("prepare")
            .query_map([], |r| r.get::<_, String>(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    };
    let kept = rows(
        "SELECT 's|' || tenant_id || '|' || product_id || '|' || location || '|' || on_hand_milli
           FROM stock_levels
         UNION ALL SELECT 'g|' || tenant_id || '|' || gift_card_id || '|' || balance_minor
           FROM gift_card_balances
         UNION ALL SELECT 'l|' || tenant_id || '|' || account_id || '|' || points
           FROM loyalty_balances
         UNION ALL SELECT 'c|' || tenant_id || '|' || account_id || '|' || owed_minor
           FROM credit_balances
         ORDER BY 1",
    );
    let summed = rows(
        "SELECT 's|' || tenant_id || '|' || product_id || '|' || location || '|'
                || sum(quantity_milli) FROM inventory_transactions
           GROUP BY tenant_id, product_id, location
         UNION ALL SELECT 'g|' || tenant_id || '|' || gift_card_id || '|' || sum(amount_minor)
           FROM gift_card_transactions GROUP BY tenant_id, gift_card_id
         UNION ALL SELECT 'l|' || tenant_id || '|' || account_id || '|' || sum(points)
           FROM loyalty_transactions GROUP BY tenant_id, account_id
         UNION ALL SELECT 'c|' || tenant_id || '|' || account_id || '|' || sum(amount_minor)
           FROM credit_transactions GROUP BY tenant_id, account_id
         ORDER BY 1",
    );
    (kept, summed)
}

#[test]
fn balances_are_filled_from_the_ledgers_and_their_triggers_are_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = legacy(dir.path(), 5_000, 11);
    let legacy_conn = Connection::open(&path).expect("legacy opens");
    let ledger_rows: Vec<u64> = [
        "inventory_transactions",
        "gift_card_transactions",
        "loyalty_transactions",
        "credit_transactions",
    ]
    .iter()
    .map(|t| count(&legacy_conn, t))
    .collect();
    assert!(
        ledger_rows.iter().all(|&n| n > 0),
        "the fixture writes every ledger: {ledger_rows:?}"
    );
    drop(legacy_conn);
    let report = adopted(adopt(&path, &options(dir.path()), &mut |_| {}).expect("adopts"));
    assert!(report.step_seconds.contains_key(&Step::Balances));

    let conn = Connection::open(&path).expect("adopted opens");
    let (kept, summed) = kept_and_summed(&conn);
    assert!(kept.iter().any(|k| k.starts_with("s|")), "stock is kept");
    assert_eq!(kept, summed, "every kept balance is its ledger sum");
    // The ledgers' triggers are those of a store the migrations made, by name and text.
    let ledger_triggers = |conn: &Connection| -> Vec<(String, String)> {
        conn.prepare(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name IN
             ('inventory_transactions', 'gift_card_transactions', 'loyalty_transactions',
              'credit_transactions') ORDER BY name",
        )
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
    };
    let fresh = dir.path().join("fresh.db");
    drop(Store::open(&fresh).expect("a new store"));
    let made = ledger_triggers(&Connection::open(&fresh).expect("opens"));
    assert_eq!(
        made.iter().filter(|(_, sql)| sql.contains("AFTER")).count(),
        12,
        "insert, update and delete on each of the four ledgers: {made:?}"
    );
    assert_eq!(ledger_triggers(&conn), made);
    drop(conn);
    let store = Store::open(&path).expect("adopted store opens");
    let verified = store.verify().expect("verify runs");
    assert!(verified.is_ok(), "{:?}", verified.violations);

    // A sale through the handle moves stock on hand: the triggers keep the balance again.
    let conn = Connection::open(&path).expect("opens");
    let (product, on_hand): (String, i64) = conn
        .query_row(
            "SELECT s.product_id, s.on_hand_milli FROM stock_levels s
             JOIN products p ON p.tenant_id = s.tenant_id AND p.id = s.product_id
             WHERE s.location = 'main' AND s.on_hand_milli >= 2000 AND p.active = 1
             ORDER BY s.product_id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("a product in stock");
    drop(conn);
    let product: RowId = product.parse().expect("a row id");
    let caps = store.tenant(&tenant()).expect("tenant");
    let admins = caps
        .list::<User>(&ListQuery::new().eq("role", "admin").limit(1))
        .expect("users");
    let admin = caps.actor(admins.rows[0].id).expect("actor");
    assert_eq!(caps.stock_on_hand(product, "main").expect("stock"), on_hand);
    caps.checkout(
        &admin,
        &Checkout::new()
            .line(LineItem::product(product, 1_000))
            .tender(Tender::Cash {
                tendered_minor: 100_000_000,
            }),
    )
    .expect("a sale of an adopted product");
    assert_eq!(
        caps.stock_on_hand(product, "main").expect("stock"),
        on_hand - 1_000
    );
    let verified = store.verify().expect("verify runs");
    assert!(verified.is_ok(), "{:?}", verified.violations);
}

#[test]
fn the_fixture_schema_has_no_tenant_id_anywhere() {
    // The fixture's schema really is the legacy one: no tenant_id and no registry.
    let conn = Connection::open_in_memory().expect("memory");
    conn.execute_batch(LEGACY_SCHEMA).expect("legacy schema");
    let with_tenant: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema s, pragma_table_info(s.name) c
             WHERE s.type = 'table' AND c.name = 'tenant_id'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(with_tenant, 0);
}

// ---------------------------------------------------------------- the command line

fn pos_node() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pos-node"))
}

#[test]
fn cli_adopts_reports_as_json_and_rolls_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = legacy(dir.path(), 1_000, 21);
    let original = canonical_digest(&path).expect("digest");
    let db = path.to_str().expect("utf-8 path");
    let backups = dir.path().join("bk");
    std::fs::create_dir(&backups).expect("the backup directory");

    let out = pos_node()
        .args([
            "adopt",
            "--db",
            db,
            "--tenant",
            "caps-automotive",
            "--dry-run",
            "--json",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(plan["outcome"], "planned");
    assert_eq!(canonical_digest(&path).expect("digest"), original);

    let out = pos_node()
        .args([
            "adopt",
            "--db",
            db,
            "--tenant",
            "caps-automotive",
            "--name",
            "Caps",
        ])
        .args(["--backup-dir", backups.to_str().expect("utf-8"), "--json"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "no progress bars when not on a terminal"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["outcome"], "adopted");
    let tables = report["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), pos_tenancy::catalog::TABLES.len());
    assert!(tables.iter().all(|t| t["rows_before"] == t["rows_after"]));
    let backup = report["backup"]["path"]
        .as_str()
        .expect("backup path")
        .to_owned();

    let out = pos_node()
        .args(["verify", "--db", db])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = pos_node()
        .args(["adopt", "--db", db, "--tenant", "caps-automotive"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already a multi-tenant store"));

    let out = pos_node()
        .args([
            "adopt",
            "--rollback",
            "--backup",
            &backup,
            "--db",
            db,
            "--json",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(canonical_digest(&path).expect("digest"), original);

    let out = pos_node()
        .args(["adopt", "--db", db, "--tenant", "Not A Slug"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(canonical_digest(&path).expect("digest"), original);
}

// ---------------------------------------------------------------- crash safety

/// Kills `pos-node adopt` with SIGKILL at spread-out moments, 24 times; after each kill the file
/// is either exactly the original or fully adopted and verified, never anything in between.
#[test]
fn killed_adoptions_leave_the_original_or_a_verified_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let template = legacy(dir.path(), 30_000, 99);
    let original = canonical_digest(&template).expect("digest");
    let legacy_rows: u64 = {
        let conn = Connection::open(&template).expect("opens");
        pos_tenancy::catalog::TABLES
            .iter()
            .filter(|t| exists(&conn, t.name))
            .map(|t| count(&conn, t.name))
            .sum()
    };
    let work = dir.path().join("work.db");
    std::fs::create_dir(dir.path().join("bk")).expect("the backup directory");
    let run = |work: &Path| {
        pos_node()
            .args([
                "adopt",
                "--db",
                work.to_str().expect("utf-8"),
                "--tenant",
                "caps-automotive",
            ])
            .args([
                "--backup-dir",
                dir.path().join("bk").to_str().expect("utf-8"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawns")
    };
    // One uninterrupted run tells how long the whole thing takes here.
    std::fs::copy(&template, &work).expect("copy");
    let started = Instant::now();
    let status = run(&work).wait().expect("waits");
    assert!(status.success());
    let full = started.elapsed();

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let (mut originals, mut adopted_files, mut killed_running) = (0, 0, 0);
    // Kills that came after the process had finished by itself do not count; the window
    // shrinks when that happens, so that at least 20 kills land mid-way on a slow or a fast
    // machine. Bounded: 80 attempts at most.
    let mut window = full.as_secs_f64();
    for attempt in 0..80 {
        if killed_running >= 20 {
            break;
        }
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", work.display()));
        }
        std::fs::copy(&template, &work).expect("copy");
        let mut child = run(&work);
        std::thread::sleep(std::time::Duration::from_secs_f64(
            window * rng.random_range(0.0..1.0),
        ));
        if child.try_wait().expect("try_wait").is_none() {
            killed_running += 1;
            child.kill().ok(); // SIGKILL on Unix
        } else {
            window *= 0.8;
        }
        child.wait().expect("reaped");

        let digest = canonical_digest(&work).expect("the file is a readable database");
        if digest == original {
            originals += 1;
            continue;
        }
        adopted_files += 1;
        let verified = pos_node()
            .args(["verify", "--db", work.to_str().expect("utf-8")])
            .output()
            .expect("runs");
        assert!(
            verified.status.success(),
            "attempt {attempt}: neither the original nor a verified store: {}{}",
            String::from_utf8_lossy(&verified.stdout),
            String::from_utf8_lossy(&verified.stderr)
        );
        let store = Store::open(&work).expect("opens");
        let report = store.verify().expect("verify runs");
        // Every legacy row, and the adoption's record of the backup it took (an audit row).
        assert_eq!(
            report.rows_checked,
            legacy_rows + 1,
            "attempt {attempt}: every row is there"
        );
    }
    assert!(
        killed_running >= 20,
        "only {killed_running} kills landed mid-adoption"
    );
    eprintln!(
        "{killed_running} kills mid-adoption; files left original: {originals}, adopted and \
         verified: {adopted_files}"
    );
    assert!(originals > 0, "some kills land before the commit");
}

// ---------------------------------------------------------------- rollback's refusals

#[test]
fn rollback_gives_up_on_a_database_another_process_holds_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = legacy(dir.path(), 1_000, 31);
    let report = adopted(adopt(&path, &options(dir.path()), &mut |_| {}).expect("adopts"));
    let adopted_digest = canonical_digest(&path).expect("digest");

    // Another process holds the write lock (BEGIN EXCLUSIVE) for as long as it likes.
    let holder = Connection::open(&path).expect("opens");
    holder
        .execute_batch("BEGIN EXCLUSIVE; UPDATE tenants SET name = name;")
        .expect("lock held");
    let mut child = pos_node()
        .args(["adopt", "--rollback", "--backup"])
        .arg(&report.backup.path)
        .arg("--db")
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    // Not a timing assertion: a rollback that never gives up (it used to retry without end)
    // must fail this test instead of hanging it.
    let watchdog = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if watchdog.elapsed() > std::time::Duration::from_secs(120) {
            child.kill().ok();
            child.wait().ok();
            panic!("adopt --rollback was still waiting for the lock after 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("locked by another process") && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    holder.execute_batch("ROLLBACK").expect("released");
    drop(holder);
    assert_eq!(canonical_digest(&path).expect("digest"), adopted_digest);
}

#[test]
fn rollback_restores_only_the_backup_the_databases_own_adoption_took() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ours = legacy(dir.path(), 1_000, 41);
    let theirs = legacy(dir.path(), 1_000, 42);
    let our_backup =
        adopted(adopt(&ours, &options(dir.path()), &mut |_| {}).expect("adopts")).backup;
    let their_backup =
        adopted(adopt(&theirs, &options(dir.path()), &mut |_| {}).expect("adopts")).backup;
    let adopted_digest = canonical_digest(&ours).expect("digest");

    // Another store's pre-adoption backup, whole and with its .sha256, is not ours.
    let err = adopt::rollback(&ours, &their_backup.path).expect_err("refused");
    assert!(matches!(err, AdoptError::NotItsBackup { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&our_backup.sha256) && message.contains("nothing was restored"),
        "names the backup the adoption took: {message}"
    );
    assert_eq!(canonical_digest(&ours).expect("digest"), adopted_digest);

    // A node database that was never adopted records no backup, so none goes over it,
    // whatever SQLite file with a matching .sha256 is offered.
    let node = dir.path().join("node.db");
    let store = Store::open(&node).expect("node");
    store
        .add_tenant(&pos_tenancy::NewTenant::new(tenant(), "Caps"))
        .expect("tenant");
    drop(store);
    let node_digest = canonical_digest(&node).expect("digest");
    let err = adopt::rollback(&node, &our_backup.path).expect_err("refused");
    assert!(matches!(err, AdoptError::NotAdopted { .. }), "{err}");
    assert_eq!(canonical_digest(&node).expect("digest"), node_digest);
    // Through the binary: exit 2 with the reason.
    let out = pos_node()
        .args(["adopt", "--rollback", "--backup"])
        .arg(&their_backup.path)
        .arg("--db")
        .arg(&ours)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not the backup"));
    assert_eq!(canonical_digest(&ours).expect("digest"), adopted_digest);

    // Its own backup is restored.
    let original = canonical_digest(&our_backup.path).expect("digest");
    adopt::rollback(&ours, &our_backup.path).expect("rolls back");
    assert_eq!(canonical_digest(&ours).expect("digest"), original);
}
