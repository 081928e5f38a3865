//! The isolation invariants, read from the live schema of a freshly migrated database (never
//! from a list typed into the test), and proved by making the database refuse bad rows.

mod common;

use std::collections::BTreeMap;

use common::*;
use pos_tenancy::catalog::{Customer, Product, SaleLine};
use pos_tenancy::{ConstraintKind, Error, Store, TenantAccess};
use rusqlite::Connection;

fn migrated_file() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node.db");
    drop(Store::open(&path).expect("store opens"));
    let conn = Connection::open(&path).expect("raw connection");
    (dir, conn)
}

/// Every table straight from sqlite_schema, but the node's own (registry, node state,
/// migration history).
fn tenant_tables(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .expect("schema query");
    let names = stmt.query_map([], |r| r.get::<_, String>(0)).expect("rows");
    let mut names = names.collect::<rusqlite::Result<Vec<_>>>().expect("names");
    names.retain(|n| !pos_tenancy::catalog::NODE_TABLES.contains(&n.as_str()));
    assert!(names.len() >= 36, "{names:?}");
    names
}

fn strings(conn: &Connection, sql: &str, arg: &str) -> Vec<Vec<Option<String>>> {
    let mut stmt = conn.prepare(sql).expect("pragma query");
    let n = stmt.column_count();
    let rows = stmt
        .query_map([arg], |r| {
            (0..n)
                .map(|i| r.get::<_, Option<rusqlite::types::Value>>(i))
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .expect("rows");
    rows.map(|r| {
        r.expect("row")
            .into_iter()
            .map(|v| match v {
                Some(rusqlite::types::Value::Text(s)) => Some(s),
                Some(rusqlite::types::Value::Integer(i)) => Some(i.to_string()),
                None | Some(rusqlite::types::Value::Null) => None,
                Some(_) => Some(String::new()),
            })
            .collect()
    })
    .collect()
}

#[test]
fn the_schema_has_the_tables_a_store_needs() {
    let (_dir, conn) = migrated_file();
    let tables = tenant_tables(&conn);
    for needed in [
        "users",
        "sessions",
        "audit_log",
        "devices",
        "sales",
        "sale_lines",
        "sale_payments",
        "customers",
        "customer_vehicles",
        "layaways",
        "layaway_payments",
        "work_orders",
        "work_order_lines",
        "commissions",
        "commission_rules",
        "loyalty_accounts",
        "loyalty_transactions",
        "price_levels",
        "credit_accounts",
        "credit_transactions",
        "gift_cards",
        "gift_card_transactions",
        "promotions",
        "promotion_usage",
        "sync_log",
        "sync_conflicts",
        "pending_operations",
        "products",
        "product_categories",
        "fitment_data",
        "inventory",
        "inventory_transactions",
        "backups",
        "backup_destinations",
        "backup_settings",
        "restore_jobs",
    ] {
        assert!(tables.iter().any(|t| t == needed), "missing table {needed}");
    }
}

#[test]
fn every_tenant_table_has_a_not_null_tenant_id_referencing_the_registry() {
    let (_dir, conn) = migrated_file();
    for table in tenant_tables(&conn) {
        let cols = strings(
            &conn,
            "SELECT name, \"notnull\" FROM pragma_table_info(?1)",
            &table,
        );
        let tenant_col = cols.iter().find(|c| c[0].as_deref() == Some("tenant_id"));
        assert_eq!(
            tenant_col.map(|c| c[1].as_deref()),
            Some(Some("1")),
            "{table}: tenant_id must exist and be NOT NULL"
        );
        let fks = strings(
            &conn,
            "SELECT \"table\", \"from\" FROM pragma_foreign_key_list(?1)",
            &table,
        );
        assert!(
            fks.iter().any(|f| f[0].as_deref() == Some("tenants") && f[1].as_deref() == Some("tenant_id")),
            "{table}: tenant_id must reference tenants"
        );
    }
}

#[test]
fn every_unique_constraint_or_index_includes_tenant_id() {
    let (_dir, conn) = migrated_file();
    let mut uniques = 0;
    for table in tenant_tables(&conn) {
        for idx in strings(
            &conn,
            "SELECT name, \"unique\" FROM pragma_index_list(?1)",
            &table,
        ) {
            if idx[1].as_deref() != Some("1") {
                continue;
            }
            let name = idx[0].clone().expect("index name");
            let cols = strings(&conn, "SELECT name FROM pragma_index_info(?1)", &name);
            uniques += 1;
            assert!(
                cols.iter().any(|c| c[0].as_deref() == Some("tenant_id")),
                "{table}: unique index {name} lacks tenant_id"
            );
        }
    }
    assert!(
        uniques > 36,
        "primary keys and business keys are all unique indexes ({uniques})"
    );
}

#[test]
fn every_foreign_key_between_tenant_tables_is_composite_with_tenant_id() {
    let (_dir, conn) = migrated_file();
    let tables = tenant_tables(&conn);
    let mut checked = 0;
    for table in &tables {
        let rows = strings(
            &conn,
            "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1)",
            table,
        );
        let mut by_id: BTreeMap<String, Vec<Vec<Option<String>>>> = BTreeMap::new();
        for r in rows {
            by_id
                .entry(r[0].clone().expect("fk id"))
                .or_default()
                .push(r);
        }
        for (_, fk) in by_id {
            let parent = fk[0][1].clone().expect("parent");
            if parent == "tenants" {
                continue;
            }
            assert!(
                tables.contains(&parent),
                "{table} references non-tenant table {parent}"
            );
            checked += 1;
            assert!(
                fk.iter().any(|p| p[2].as_deref() == Some("tenant_id")
                    && p[3].as_deref() == Some("tenant_id")),
                "{table} -> {parent} is not composite with tenant_id"
            );
            assert!(
                fk.len() >= 2,
                "{table} -> {parent} must pair tenant_id with the key"
            );
        }
    }
    assert!(
        checked > 50,
        "the schema has many references between tenant tables ({checked})"
    );
}

#[test]
fn every_tenant_table_has_an_index_or_key_leading_with_tenant_id() {
    let (_dir, conn) = migrated_file();
    for table in tenant_tables(&conn) {
        let leading = strings(&conn, "SELECT name FROM pragma_index_list(?1)", &table)
            .into_iter()
            .filter_map(|i| i[0].clone())
            .any(|idx| {
                strings(
                    &conn,
                    "SELECT name FROM pragma_index_info(?1) ORDER BY seqno",
                    &idx,
                )
                .first()
                .and_then(|c| c[0].clone())
                .as_deref()
                    == Some("tenant_id")
            });
        assert!(leading, "{table}: no index leads with tenant_id");
    }
}

/// V6 made the indexes of optional references partial (`WHERE col IS NOT NULL`). That is only
/// free if every lookup by the reference can still use them: a lookup `col = ?` (what a report
/// and SQLite's own foreign key check on a parent delete run) must be answerable from the index
/// (`INDEXED BY` fails to prepare when it is not), and so must the audit history of one row
/// after `audit_log_row` was rekeyed.
#[test]
fn lookups_by_an_optional_reference_can_use_its_partial_index() {
    let (_dir, conn) = migrated_file();
    let mut stmt = conn
        .prepare(
            "SELECT name, tbl_name FROM sqlite_schema \
             WHERE type = 'index' AND sql LIKE '%WHERE%IS NOT NULL%' ORDER BY name",
        )
        .expect("schema query");
    let partial: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<rusqlite::Result<_>>()
        .expect("partial indexes");
    assert!(partial.len() >= 10, "{partial:?}");
    let mut lookups: Vec<String> = Vec::new();
    for (index, table) in &partial {
        let columns: Vec<String> = strings(
            &conn,
            "SELECT name FROM pragma_index_info(?1) ORDER BY seqno",
            index,
        )
        .into_iter()
        .filter_map(|c| c[0].clone())
        .collect();
        assert_eq!(columns[0], "tenant_id", "{index}");
        lookups.push(format!(
            "SELECT * FROM {table} INDEXED BY {index} WHERE tenant_id = 'caps' AND {} = 'x'",
            columns[1]
        ));
    }
    lookups.push(
        "SELECT * FROM audit_log INDEXED BY audit_log_row \
         WHERE tenant_id = 'caps' AND table_name = 'sales' AND row_id = 'x'"
            .into(),
    );
    for sql in lookups {
        if let Err(e) = conn.prepare(&sql) {
            panic!("{sql}: {e}");
        }
    }
}

/// A dummy value for a declared type, good enough for a row whose checks are switched off.
fn dummy(decl_type: &str, i: usize) -> rusqlite::types::Value {
    match decl_type {
        "INTEGER" => rusqlite::types::Value::Integer(1),
        "BLOB" => rusqlite::types::Value::Blob(vec![1]),
        _ => rusqlite::types::Value::Text(format!("v{i}")),
    }
}

#[test]
fn the_database_refuses_an_update_that_changes_tenant_id_on_every_table() {
    let (_dir, conn) = migrated_file();
    conn.execute_batch(
        "INSERT INTO tenants (id, name, max_users, max_api_calls_month, settings, created_at, updated_at)
         VALUES ('a', 'A', 1, 1, '{}', 'x', 'x'), ('b', 'B', 1, 1, '{}', 'x', 'x');
         PRAGMA foreign_keys = OFF; PRAGMA ignore_check_constraints = ON;",
    )
    .expect("setup");
    for table in tenant_tables(&conn) {
        // One row with every column filled, built from the live column list.
        let cols = strings(
            &conn,
            "SELECT name, type FROM pragma_table_info(?1)",
            &table,
        );
        let names: Vec<String> = cols
            .iter()
            .map(|c| format!("\"{}\"", c[0].clone().expect("name")))
            .collect();
        let values: Vec<rusqlite::types::Value> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| match c[0].as_deref() {
                Some("tenant_id") => rusqlite::types::Value::Text("a".into()),
                _ => dummy(c[1].as_deref().unwrap_or("TEXT"), i),
            })
            .collect();
        let marks = vec!["?"; names.len()].join(", ");
        conn.execute(
            &format!(
                "INSERT INTO \"{table}\" ({}) VALUES ({marks})",
                names.join(", ")
            ),
            rusqlite::params_from_iter(values),
        )
        .unwrap_or_else(|e| panic!("{table}: dummy row: {e}"));
        let err = conn
            .execute(
                &format!("UPDATE \"{table}\" SET tenant_id = 'b' WHERE tenant_id = 'a'"),
                [],
            )
            .expect_err(&format!("{table}: changing tenant_id must be refused"));
        assert!(
            err.to_string().contains("tenant_id is immutable"),
            "{table}: {err}"
        );
    }
}

#[test]
fn two_tenants_may_share_a_sku_and_an_email_but_not_within_one_tenant() -> pos_tenancy::Result<()> {
    let store = store_with(&["caps", "bolt"]);
    for t in ["caps", "bolt"] {
        let h = store.tenant(&tid(t))?;
        let admin = h.bootstrap_admin("owner", "Owner")?;
        h.insert(&admin, &product("A-100", 500))?;
        h.insert(&admin, &customer("C-1", Some("a@b.c")))?;
    }
    let caps = store.tenant(&tid("caps"))?;
    let admin = first_admin(&caps)?;
    let err = caps
        .insert(&admin, &product("A-100", 700))
        .expect_err("duplicate SKU in one tenant");
    assert!(
        matches!(
            err,
            Error::Constraint {
                kind: ConstraintKind::Unique,
                table: "products",
                ..
            }
        ),
        "{err}"
    );
    let err = caps
        .insert(&admin, &customer("C-2", Some("a@b.c")))
        .expect_err("duplicate email in one tenant");
    assert!(
        matches!(
            err,
            Error::Constraint {
                kind: ConstraintKind::Unique,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(caps.list::<Product>(&Default::default())?.rows.len(), 1);
    assert_eq!(caps.list::<Customer>(&Default::default())?.rows.len(), 1);
    Ok(())
}

#[test]
fn a_row_cannot_reference_another_tenants_row() -> pos_tenancy::Result<()> {
    let store = store_with(&["caps", "bolt"]);
    let caps = store.tenant(&tid("caps"))?;
    let caps_admin = caps.bootstrap_admin("owner", "Owner")?;
    let caps_graph = populate(&caps, &caps_admin, "c")?;
    let bolt = store.tenant(&tid("bolt"))?;
    let bolt_admin = bolt.bootstrap_admin("owner", "Owner")?;
    // Bolt tries to add a line to Caps's sale, and to sell Caps's product.
    let line = SaleLine {
        id: pos_tenancy::RowId::new(),
        sale_id: caps_graph.sale,
        line_no: 9,
        kind: "product".into(),
        product_id: Some(caps_graph.product),
        description: "stolen".into(),
        quantity_milli: 1000,
        unit_price_minor: 1,
        discount_minor: 0,
        tax_minor: 0,
        total_minor: 1,
    };
    let err = bolt
        .insert(&bolt_admin, &line)
        .expect_err("cross-tenant reference");
    assert!(
        matches!(
            err,
            Error::Constraint {
                kind: ConstraintKind::ForeignKey,
                ..
            }
        ),
        "{err}"
    );
    assert!(bolt.query("SELECT * FROM sale_lines")?.rows.is_empty());
    assert!(store.verify()?.is_ok(), "{:?}", store.verify()?.violations);
    Ok(())
}

#[test]
fn verify_is_clean_on_a_populated_store_and_names_every_broken_rule() -> pos_tenancy::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("node.db");
    {
        let store = Store::open(&path)?;
        store.add_tenant(
            &pos_tenancy::NewTenant::new(tid("caps"), "Caps").plan(pos_tenancy::Plan::Pro),
        )?;
        let caps = store.tenant(&tid("caps"))?;
        let admin = caps.bootstrap_admin("owner", "Owner")?;
        populate(&caps, &admin, "x")?;
        let report = store.verify()?;
        assert!(report.is_ok(), "{:?}", report.violations);
        // The catalog's tables and the balances kept beside the ledgers.
        assert_eq!(
            report.tables_checked,
            pos_tenancy::catalog::TABLES.len() + pos_tenancy::catalog::BALANCES.len()
        );
        assert!(report.rows_checked > 36);
    }
    // Break the rules behind the crate's back.
    let conn = Connection::open(&path)?;
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF;
         CREATE TABLE loose (id TEXT PRIMARY KEY, note TEXT);
         CREATE UNIQUE INDEX customers_phone_global ON customers(phone);
         CREATE TABLE notes (id TEXT NOT NULL, tenant_id TEXT NOT NULL REFERENCES tenants(id),
                             sale_id TEXT REFERENCES sales(id), PRIMARY KEY (tenant_id, id));
         INSERT INTO products (id, tenant_id, sku, name, price_minor, currency, created_at, updated_at)
         VALUES ('p-ghost', 'ghost', 'G', 'Ghost', 1, 'USD', 'x', 'x');
         UPDATE gift_card_balances SET balance_minor = balance_minor + 1;",
    )?;
    drop(conn);
    use pos_tenancy::Check::*;
    assert_reported(
        &Store::open(&path)?.verify()?,
        &[
            (TenantIdColumn, "loose"),
            (NoTenantLeadingIndex, "loose"),
            (TenantIdMutable, "loose"),
            (UniqueWithoutTenant, "customers"),
            (ForeignKeyNotComposite, "notes"),
            (TenantIdMutable, "notes"),
            (UnknownTenant, "products"),
            (ForeignKeyCheck, "products"),
            (CachedBalance, "gift_card_balances"),
        ],
    );
    Ok(())
}

#[test]
fn verify_catches_quietly_weakened_schemas_and_skips_virtual_tables() -> pos_tenancy::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("node.db");
    let (caps_customer, bolt_customer) = {
        let store = Store::open(&path)?;
        let mut ids = Vec::new();
        for t in ["caps", "bolt"] {
            store
                .add_tenant(&pos_tenancy::NewTenant::new(tid(t), t).plan(pos_tenancy::Plan::Pro))?;
            let h = store.tenant(&tid(t))?;
            let admin = h.bootstrap_admin("owner", "Owner")?;
            ids.push(populate(&h, &admin, t)?.customer);
        }
        (ids[0], ids[1])
    };
    let conn = Connection::open(&path)?;
    // Drop the composite foreign key from sales behind SQLite's back, then point a caps sale
    // at bolt's customer; weaken the users freeze so it never fires; drop the registry's.
    conn.execute_batch(
        "PRAGMA writable_schema = ON;
         UPDATE sqlite_schema SET sql = replace(sql,
             'FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id),', '')
         WHERE name = 'sales';
         PRAGMA writable_schema = OFF;",
    )?;
    drop(conn);
    let conn = Connection::open(&path)?;
    conn.execute(
        "UPDATE sales SET customer_id = ?1 WHERE tenant_id = 'caps' AND customer_id = ?2",
        [bolt_customer.to_string(), caps_customer.to_string()],
    )?;
    conn.execute_batch(
        "DROP TRIGGER users_tenant_id_immutable;
         CREATE TRIGGER users_tenant_id_immutable BEFORE UPDATE OF tenant_id ON users
         WHEN 0 BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable'); END;
         DROP TRIGGER tenants_id_immutable;
         CREATE TABLE counters (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id));
         CREATE INDEX counters_tenant ON counters(tenant_id);
         CREATE VIRTUAL TABLE product_search USING fts5(name, content = '');",
    )?;
    drop(conn);
    let report = Store::open(&path)?.verify()?;
    use pos_tenancy::Check::*;
    assert_reported(
        &report,
        &[
            (ForeignKeyNotComposite, "sales"),
            (CrossTenantReference, "sales"),
            (TenantIdMutable, "users"),
            (TenantIdMutable, "tenants"),
            (UniqueWithoutTenant, "counters"),
        ],
    );
    let found = violations(&report);
    assert!(
        !found.iter().any(|(_, t)| t
            .as_deref()
            .is_some_and(|t| t.starts_with("product_search"))),
        "virtual tables and their shadow tables are not tenant tables: {found:?}"
    );
    Ok(())
}

#[test]
fn verify_is_not_fooled_by_a_freeze_that_only_refuses_unknown_tenants() -> pos_tenancy::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("node.db");
    {
        let store = Store::open(&path)?;
        store.add_tenant(
            &pos_tenancy::NewTenant::new(tid("caps"), "Caps").plan(pos_tenancy::Plan::Pro),
        )?;
        let caps = store.tenant(&tid("caps"))?;
        let admin = caps.bootstrap_admin("owner", "Owner")?;
        populate(&caps, &admin, "f")?;
    }
    let conn = Connection::open(&path)?;
    conn.execute_batch(
        "DROP TRIGGER price_levels_tenant_id_immutable;
         CREATE TRIGGER price_levels_tenant_id_immutable BEFORE UPDATE OF tenant_id ON price_levels
         WHEN NEW.tenant_id NOT IN (SELECT id FROM tenants)
         BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on price_levels'); END;",
    )?;
    drop(conn);
    let store = Store::open(&path)?;
    let report = store.verify()?;
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.check == pos_tenancy::Check::TenantIdMutable
                && v.table.as_deref() == Some("price_levels")),
        "{:?}",
        report.violations
    );
    assert!(
        store.tenant_info(&tid("pos-verify-probe")).is_err(),
        "the probe left nothing behind"
    );
    Ok(())
}

/// Every index leads with `tenant_id`, and without planner statistics SQLite takes
/// `tenant_id = ?` for a selective condition: it answered "the lines of this sale" by scanning
/// the tenant's whole `sale_lines` through the primary key. A store gathers statistics when it
/// is opened (`PRAGMA optimize`), so once a store has rows, a lookup by a reference goes
/// through that reference's index.
#[cfg(feature = "testkit")]
#[test]
fn a_reopened_store_plans_lookups_by_reference_on_their_indexes() -> pos_tenancy::Result<()> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node.db");
    {
        let store = Store::open(&path)?;
        store.add_tenant(&pos_tenancy::NewTenant::new(tid("caps"), "Caps"))?;
        let t = store.tenant(&tid("caps"))?;
        let admin = t.bootstrap_admin("owner", "Owner")?;
        let options = pos_tenancy::testkit::demo::DemoOptions { sales: 40, seed: 3 };
        pos_tenancy::testkit::demo::fill(&t, &admin, &options, &mut |_, _| {})?;
    }
    let lookups = [
        ("sale_lines", "sale_id"),
        ("sale_payments", "sale_id"),
        ("customer_vehicles", "customer_id"),
        ("inventory_transactions", "sale_id"),
        ("audit_log", "row_id"),
    ];
    let plans = |conn: &Connection| -> Vec<String> {
        lookups
            .iter()
            .map(|(table, column)| {
                let sql = format!(
                    "EXPLAIN QUERY PLAN SELECT * FROM {table} \
                     WHERE tenant_id = 'caps' AND {column} = 'x'"
                );
                conn.query_row(&sql, [], |r| r.get::<_, String>(3))
                    .expect("plan")
            })
            .collect()
    };
    // What a store that never gathered statistics plans (the same file, read before reopening).
    let before = plans(&Connection::open(&path).expect("raw connection"));
    assert!(
        before.iter().any(|p| p.contains("PRIMARY KEY")),
        "without statistics some lookup scans the tenant: {before:?}"
    );
    drop(Store::open(&path)?);
    let after = plans(&Connection::open(&path).expect("raw connection"));
    for ((table, column), plan) in lookups.iter().zip(&after) {
        assert!(
            plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX"),
            "{table} by {column}: {plan}"
        );
    }
    Ok(())
}
