//! The report escape hatch under attack: every way we could think of to see another tenant's
//! rows, the schema, or to write, is refused or returns only the caller's rows.

mod common;

use common::*;
use pos_tenancy::{Error, QueryError, Store, StoreBuilder, Tenant, TenantAccess};

struct Fixture {
    store: Store,
}

fn fixture() -> Fixture {
    fixture_with(Store::builder())
}

/// The fixture on a store opened with these settings.
fn fixture_with(builder: StoreBuilder) -> Fixture {
    let store = built_store_with(builder, &["caps", "bolt"]);
    for (t, tag) in [("caps", "c"), ("bolt", "b")] {
        let h = store.tenant(&tid(t)).expect("handle");
        let admin = h.bootstrap_admin("owner", "Owner").expect("admin");
        populate(&h, &admin, tag).expect("populated");
        h.insert(&admin, &product(&format!("ONLY-{t}"), 999))
            .expect("product");
    }
    Fixture { store }
}

impl Fixture {
    fn caps(&self) -> Tenant<'_> {
        self.store.tenant(&tid("caps")).expect("caps")
    }
}

/// Every string value in a result: used to check that nothing of bolt's leaks.
fn texts(result: &pos_tenancy::QueryResult) -> Vec<String> {
    result
        .rows
        .iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn refused(result: pos_tenancy::Result<pos_tenancy::QueryResult>) -> QueryError {
    match result {
        Err(Error::Query(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn plain_reads_see_only_the_tenants_rows() {
    let f = fixture();
    let caps = f.caps();
    let r = caps
        .query("SELECT sku FROM products ORDER BY sku")
        .expect("query");
    assert_eq!(texts(&r), ["OF-c", "ONLY-caps"]);
    let r = caps
        .query("SELECT DISTINCT tenant_id FROM audit_log")
        .expect("query");
    assert_eq!(texts(&r), ["caps"]);
    let r = caps.query("SELECT id, name FROM tenants").expect("query");
    assert_eq!(r.rows.len(), 1);
    assert_eq!(r.rows[0][0], "caps");
}

#[test]
fn joins_subqueries_ctes_unions_and_correlated_subqueries_stay_inside_the_tenant() {
    let f = fixture();
    let caps = f.caps();
    let queries = [
        "SELECT s.number, l.description, p.sku FROM sales s JOIN sale_lines l ON l.sale_id = s.id
         LEFT JOIN products p ON p.id = l.product_id",
        "SELECT sku FROM products WHERE id IN (SELECT product_id FROM sale_lines)",
        "WITH all_skus AS (SELECT sku FROM products) SELECT sku FROM all_skus",
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3)
         SELECT p.sku FROM n, products p",
        "SELECT sku FROM products UNION SELECT code FROM customers UNION SELECT number FROM sales",
        "SELECT c.code, (SELECT count(*) FROM sales s WHERE s.customer_id = c.id) FROM customers c",
        "SELECT sku FROM products WHERE tenant_id = 'bolt' OR 1 = 1",
        "SELECT sku FROM products WHERE tenant_id <> 'caps'",
        "SELECT * FROM (SELECT * FROM products) AS p",
        "SELECT name FROM tenants WHERE id = 'bolt'",
        "SELECT sku FROM temp.products",
    ];
    for sql in queries {
        let r = caps.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let leaked: Vec<String> = texts(&r)
            .into_iter()
            .filter(|t| t.ends_with("-b") || t.contains("bolt"))
            .collect();
        assert!(leaked.is_empty(), "{sql} leaked {leaked:?}");
    }
    assert!(caps
        .query("SELECT sku FROM products WHERE tenant_id <> 'caps'")
        .expect("q")
        .rows
        .is_empty());
}

#[test]
fn naming_the_base_tables_the_schema_or_pragmas_is_refused() {
    let f = fixture();
    let caps = f.caps();
    for sql in [
        "SELECT sku FROM main.products",
        "SELECT * FROM main.tenants",
        "SELECT sku FROM products UNION SELECT sku FROM main.products",
        "SELECT (SELECT count(*) FROM main.sales)",
        "WITH x AS (SELECT * FROM main.customers) SELECT * FROM x",
        "SELECT * FROM sqlite_master",
        "SELECT * FROM sqlite_schema",
        "SELECT * FROM temp.sqlite_master",
        "SELECT * FROM pragma_table_info('products')",
        "SELECT * FROM pragma_database_list",
    ] {
        let e = refused(caps.query(sql));
        assert!(matches!(e, QueryError::Refused(_)), "{sql}: {e:?}");
    }
}

#[test]
fn writes_attach_pragma_and_several_statements_are_refused_and_change_nothing() {
    let f = fixture();
    let caps = f.caps();
    let before = caps
        .query("SELECT count(*) FROM products")
        .expect("count")
        .rows;
    for sql in [
        "DELETE FROM products",
        "UPDATE products SET price_minor = 0",
        "INSERT INTO products (id) VALUES ('x')",
        "DROP TABLE products",
        "ATTACH DATABASE ':memory:' AS other",
        "PRAGMA foreign_keys = OFF",
        "PRAGMA table_info(products)",
        "CREATE TEMP TABLE t (x)",
        "CREATE TEMP VIEW products AS SELECT * FROM main.products",
        "BEGIN",
        "SELECT 1; DELETE FROM products",
        "SELECT 1; SELECT 2",
        "",
        "   -- only a comment",
        "/* lead */ DELETE FROM products",
        "WITH x AS (SELECT 1) DELETE FROM products",
        "SELECT load_extension('evil')",
    ] {
        let e = refused(caps.query(sql));
        assert!(
            matches!(
                e,
                QueryError::Refused(_) | QueryError::NotReadOnly | QueryError::NotOneStatement
            ),
            "{sql:?}: {e:?}"
        );
    }
    assert_eq!(
        caps.query("SELECT count(*) FROM products")
            .expect("count")
            .rows,
        before
    );
    assert!(f.store.verify().expect("verify").is_ok());
}

#[test]
fn the_filter_is_not_left_behind_between_queries_or_tenants() {
    let f = fixture();
    let bolt = f.store.tenant(&tid("bolt")).expect("bolt");
    let caps = f.caps();
    let a = caps
        .query("SELECT sku FROM products ORDER BY sku")
        .expect("caps");
    let b = bolt
        .query("SELECT sku FROM products ORDER BY sku")
        .expect("bolt");
    assert_eq!(texts(&a), ["OF-c", "ONLY-caps"]);
    assert_eq!(texts(&b), ["OF-b", "ONLY-bolt"]);
    // A refused query does not leave the report connection in a state that leaks.
    let _ = caps.query("SELECT * FROM main.products");
    assert_eq!(
        texts(
            &bolt
                .query("SELECT sku FROM products ORDER BY sku")
                .expect("bolt")
        ),
        ["OF-b", "ONLY-bolt"]
    );
}

#[test]
fn syntax_errors_are_reported_as_such() {
    let f = fixture();
    let e = refused(f.caps().query("SELEC sku FROM products"));
    assert!(
        matches!(e, QueryError::NotReadOnly | QueryError::Sql(_)),
        "{e:?}"
    );
    let e = refused(f.caps().query("SELECT no_such_column FROM products"));
    assert!(matches!(e, QueryError::Sql(_)), "{e:?}");
}

#[test]
fn a_cte_named_like_a_table_cannot_read_the_real_table() {
    let f = fixture();
    let caps = f.caps();
    let mut tables: Vec<&str> = pos_tenancy::catalog::TABLES
        .iter()
        .map(|t| t.name)
        .collect();
    tables.push("tenants");
    for t in tables {
        for sql in [
            format!("WITH {t} AS (SELECT * FROM main.{t}) SELECT * FROM {t}"),
            format!("WITH RECURSIVE {t} AS (SELECT * FROM main.{t}) SELECT count(*) FROM {t}"),
            format!("SELECT (WITH {t} AS (SELECT * FROM main.{t}) SELECT count(*) FROM {t})"),
            format!("SELECT * FROM (SELECT * FROM main.{t}) AS {t}"),
        ] {
            let e = refused(caps.query(&sql));
            assert!(matches!(e, QueryError::Refused(_)), "{sql}: {e:?}");
        }
    }
}

#[test]
fn pin_hashes_are_not_in_the_report_views_and_json_functions_work() {
    let f = fixture();
    let caps = f.caps();
    let e = refused(caps.query("SELECT pin_hash FROM users"));
    assert!(matches!(e, QueryError::Sql(_)), "{e:?}");
    let r = caps
        .query("SELECT j.value FROM tenants, json_each(tenants.settings, '$.brand_name') AS j")
        .expect("json_each");
    assert_eq!(r.rows, vec![vec![serde_json::json!("caps store")]]);
}

#[test]
fn runaway_reports_are_stopped() {
    let f = fixture_with(Store::builder().query_timeout(std::time::Duration::from_millis(200)));
    let caps = f.caps();
    let e = refused(caps.query(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    ));
    assert!(matches!(e, QueryError::TimedOut(_)), "{e:?}");
    let e = refused(caps.query("SELECT randomblob(50000000)"));
    assert!(matches!(e, QueryError::Sql(_)), "{e:?}");
    // The connection is still good after a stopped query.
    assert_eq!(
        caps.query("SELECT count(*) FROM products")
            .expect("count")
            .rows[0][0],
        2
    );
    // The row cap, under a timeout no loaded machine reaches first (100,001 rows took over
    // 200 ms while other test binaries were running): a store configured so from the start,
    // as a store's settings are given before it opens.
    let f = fixture_with(Store::builder().query_timeout(std::time::Duration::from_secs(60)));
    let caps = f.caps();
    let e = refused(caps.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100001) SELECT x FROM c"));
    assert!(matches!(e, QueryError::TooManyRows(100_000)), "{e:?}");
    // The connection is still good afterwards.
    assert_eq!(
        caps.query("SELECT count(*) FROM products")
            .expect("count")
            .rows[0][0],
        2
    );
}

#[test]
fn a_result_larger_than_the_byte_bound_is_refused_with_the_bound_whatever_its_shape() {
    use pos_tenancy::MAX_RESULT_BYTES;
    let f = fixture();
    let caps = f.caps();
    // The issue's query: each row a million-byte blob (two million characters of hex). It
    // used to be built whole, past 2 GB; it stops at the bound, a few rows in.
    let e = refused(caps.query(
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
         SELECT n, zeroblob(1000000) FROM r LIMIT 5000",
    ));
    assert_eq!(e, QueryError::TooLarge(MAX_RESULT_BYTES));
    let message = e.to_string();
    assert!(
        message.contains("16 MiB") && message.contains("LIMIT"),
        "the bound and how to narrow the query: {message}"
    );
    // Small values count too: 100,000 rows (the row cap) of eight integers hold more than the
    // bound in memory, whatever each value's text.
    let e = refused(caps.query(
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r LIMIT 100000) \
         SELECT n, n, n, n, n, n, n, n FROM r",
    ));
    assert_eq!(e, QueryError::TooLarge(MAX_RESULT_BYTES));
    // Under the bound a result comes back whole: seven such blobs are 14 MB of hex.
    let r = caps
        .query(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
             SELECT n, zeroblob(1000000) FROM r LIMIT 7",
        )
        .expect("under the bound");
    assert_eq!(r.rows.len(), 7);
    assert_eq!(r.rows[6][1].as_str().map(str::len), Some(2_000_000));
    assert!(r.rows[6][1]
        .as_str()
        .is_some_and(|hex| hex.bytes().all(|b| b == b'0')));
}

#[test]
fn the_deadline_holds_while_rows_are_read_and_converted_not_only_while_sqlite_computes() {
    // A deadline that has passed before the first row: SQLite computes these rows in far
    // fewer instructions than its progress handler waits between calls (10,000), so only the
    // deadline kept while rows are read and converted can stop them. Before, all three
    // million-byte blobs were converted and returned.
    let f = fixture_with(Store::builder().query_timeout(std::time::Duration::ZERO));
    let caps = f.caps();
    let e = refused(caps.query(
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
         SELECT n, zeroblob(1000000) FROM r LIMIT 3",
    ));
    assert_eq!(e, QueryError::TimedOut(std::time::Duration::ZERO));
    // And a query that cannot finish is stopped by it as well.
    let e =
        refused(caps.query(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r",
        ));
    assert_eq!(e, QueryError::TimedOut(std::time::Duration::ZERO));
}
