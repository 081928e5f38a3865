//! Tests of the generated stores: their schema against the current one, their rows, and
//! the options.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::types::Value;
use uuid::Uuid;

use super::schema::{legacy_columns, legacy_tables, ADDED_SINCE, T, TABLE_COUNT};
use super::*;
use crate::catalog::{self, ColumnKind, Record, RecordVisitor};
use crate::Timestamp;

const CURRENT_SCHEMA: &str = include_str!("../../../migrations/node/V1__initial_schema.sql");

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn schema_db(sql: &str) -> rusqlite::Result<Connection> {
    let db = Connection::open_in_memory()?;
    db.execute_batch(sql)?;
    Ok(db)
}

/// A generated store in its own temporary directory (removed on drop).
struct Store {
    _dir: tempfile::TempDir,
    path: PathBuf,
    summary: LegacySummary,
}

fn store(rows: u64, seed: u64) -> std::result::Result<Store, Box<dyn std::error::Error>> {
    store_with(&LegacyOptions {
        rows,
        seed,
        ..LegacyOptions::default()
    })
}

fn store_with(options: &LegacyOptions) -> std::result::Result<Store, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("legacy.db");
    let summary = generate(&path, options)?;
    Ok(Store {
        _dir: dir,
        path,
        summary,
    })
}

fn strings(db: &Connection, sql: &str, arg: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = db.prepare(sql)?;
    let rows = stmt.query_map([arg], |r| r.get::<_, String>(0))?;
    rows.collect()
}

fn count(db: &Connection, sql: &str) -> rusqlite::Result<i64> {
    db.query_row(sql, [], |r| r.get(0))
}

/// Name, declared type, NOT NULL and default of a column.
type ColumnInfo = (String, String, bool, Option<String>);

/// Table, unique, partial and columns (without tenant_id) of an index.
type IndexInfo = (String, bool, bool, Vec<String>);

/// Every column but tenant_id.
fn columns(db: &Connection, table: &str) -> rusqlite::Result<Vec<ColumnInfo>> {
    let mut stmt = db.prepare(
        "SELECT name, type, \"notnull\", dflt_value FROM pragma_table_info(?1) \
         WHERE name != 'tenant_id' ORDER BY cid",
    )?;
    let rows = stmt.query_map([table], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    rows.collect()
}

/// Every `CHECK (...)` of a table's CREATE statement, as written.
fn checks(sql: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = sql;
    while let Some(at) = rest.find("CHECK (") {
        let body = &rest[at + "CHECK ".len()..];
        let mut depth = 0;
        let mut end = body.len();
        for (i, c) in body.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        found.push(body[..end].to_owned());
        rest = &body[end..];
    }
    found.sort();
    found
}

fn table_sql(db: &Connection, table: &str) -> rusqlite::Result<String> {
    db.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get(0),
    )
}

/// Named indexes: name -> (table, unique, partial, columns without tenant_id).
fn named_indexes(db: &Connection) -> rusqlite::Result<BTreeMap<String, IndexInfo>> {
    let mut out = BTreeMap::new();
    let mut stmt = db.prepare(
        "SELECT name, tbl_name, sql LIKE 'CREATE UNIQUE%', sql LIKE '% WHERE %' \
         FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL",
    )?;
    let rows: Vec<(String, String, bool, bool)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, table, unique, partial) in rows {
        let cols = strings(
            db,
            "SELECT name FROM pragma_index_info(?1) WHERE name != 'tenant_id' ORDER BY seqno",
            &name,
        )?;
        out.insert(name, (table, unique, partial, cols));
    }
    Ok(out)
}

/// UNIQUE constraints of a table as column lists without tenant_id (empty lists dropped).
fn unique_constraints(db: &Connection, table: &str) -> rusqlite::Result<BTreeSet<Vec<String>>> {
    let mut out = BTreeSet::new();
    for index in strings(
        db,
        "SELECT name FROM pragma_index_list(?1) WHERE origin = 'u'",
        table,
    )? {
        let cols = strings(
            db,
            "SELECT name FROM pragma_index_info(?1) WHERE name != 'tenant_id' ORDER BY seqno",
            &index,
        )?;
        if !cols.is_empty() {
            out.insert(cols);
        }
    }
    Ok(out)
}

/// Foreign keys of a table as (from, parent table, to), tenant_id pairs dropped.
fn foreign_keys(
    db: &Connection,
    table: &str,
) -> rusqlite::Result<BTreeSet<(String, String, String)>> {
    let mut stmt = db.prepare(
        "SELECT \"from\", \"table\", \"to\" FROM pragma_foreign_key_list(?1) \
         WHERE \"from\" != 'tenant_id'",
    )?;
    let rows = stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

#[test]
fn legacy_tables_are_the_catalog_tables_in_order() -> TestResult {
    let db = schema_db(LEGACY_SCHEMA)?;
    let mut stmt =
        db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY rowid")?;
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let catalog: Vec<&str> = legacy_tables().iter().map(|t| t.name).collect();
    assert_eq!(names, catalog);
    assert_eq!(TABLE_COUNT, catalog.len());
    for (t, name) in [
        (T::Users, "users"),
        (T::Sales, "sales"),
        (T::PendingOperations, "pending_operations"),
        (T::RestoreJobs, "restore_jobs"),
    ] {
        assert_eq!(legacy_tables()[t as usize].name, name);
    }
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'"
        )?,
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pragma_table_list WHERE name = 'tenants'"
        )?,
        0
    );
    Ok(())
}

#[test]
fn legacy_columns_are_the_current_ones_without_tenant_id() -> TestResult {
    let legacy = schema_db(LEGACY_SCHEMA)?;
    let current = schema_db(CURRENT_SCHEMA)?;
    for table in legacy_tables() {
        let old = columns(&legacy, table.name)?;
        assert_eq!(old, columns(&current, table.name)?, "{}", table.name);
        let names: Vec<&str> = old.iter().map(|c| c.0.as_str()).collect();
        let expected: Vec<&str> = std::iter::once("id")
            .chain(legacy_columns(table).map(|c| c.name))
            .collect();
        assert_eq!(names, expected, "{} in catalog order", table.name);
        assert_eq!(
            checks(&table_sql(&legacy, table.name)?),
            checks(&table_sql(&current, table.name)?),
            "CHECKs of {}",
            table.name
        );
    }
    Ok(())
}

#[test]
fn columns_added_since_are_nullable_catalog_columns_the_old_app_lacked() -> TestResult {
    let legacy = schema_db(LEGACY_SCHEMA)?;
    let first = schema_db(CURRENT_SCHEMA)?;
    for &(table, column) in ADDED_SINCE {
        let def = legacy_tables()
            .iter()
            .find(|t| t.name == table)
            .ok_or(table)?;
        let col = def
            .columns
            .iter()
            .find(|c| c.name == column)
            .ok_or(column)?;
        // Adoption fills it with NULL, and the old app's rows must still read as records.
        assert!(col.nullable, "{table}.{column} must be nullable");
        for db in [&legacy, &first] {
            assert!(
                !columns(db, table)?.iter().any(|c| c.0 == column),
                "{table}.{column} is not a column of the old app"
            );
        }
    }
    Ok(())
}

#[test]
fn legacy_tables_are_rowid_tables_keyed_by_id_except_the_outbox() -> TestResult {
    let db = schema_db(LEGACY_SCHEMA)?;
    for table in legacy_tables() {
        let key = strings(
            &db,
            "SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk",
            table.name,
        )?;
        let expected = if table.name == "pending_operations" {
            "hlc"
        } else {
            "id"
        };
        assert_eq!(key, [expected], "{}", table.name);
        assert!(
            !table_sql(&db, table.name)?.contains("WITHOUT ROWID"),
            "{}",
            table.name
        );
        // Only rowid tables answer to `rowid`.
        db.prepare(&format!("SELECT rowid FROM {} LIMIT 0", table.name))?;
    }
    Ok(())
}

#[test]
fn legacy_indexes_uniques_and_foreign_keys_are_the_current_ones_without_tenant_id() -> TestResult {
    let legacy = schema_db(LEGACY_SCHEMA)?;
    let current = schema_db(CURRENT_SCHEMA)?;
    assert_eq!(named_indexes(&legacy)?, named_indexes(&current)?);
    for table in legacy_tables() {
        assert_eq!(
            unique_constraints(&legacy, table.name)?,
            unique_constraints(&current, table.name)?,
            "UNIQUE of {}",
            table.name
        );
        let mut current_fks = foreign_keys(&current, table.name)?;
        current_fks.retain(|(_, parent, _)| parent != "tenants");
        assert_eq!(
            foreign_keys(&legacy, table.name)?,
            current_fks,
            "FKs of {}",
            table.name
        );
    }
    // The one UNIQUE that was only tenant_id has no single-tenant counterpart.
    assert!(unique_constraints(&legacy, "backup_settings")?.is_empty());
    Ok(())
}

#[test]
fn a_small_store_is_consistent_and_passes_sqlites_checks() -> TestResult {
    let s = store(5_000, 1)?;
    assert!(
        s.summary.total_rows.abs_diff(5_000) <= 100,
        "{}",
        s.summary.total_rows
    );
    let db = Connection::open(&s.path)?;
    let mut stmt = db.prepare("PRAGMA foreign_key_check")?;
    let violations: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    assert!(violations.is_empty(), "{violations:?}");
    let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    assert_eq!(integrity, "ok");
    let mode: String = db.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    assert_eq!(mode, "delete");
    for (table, rows) in &s.summary.tables {
        let n = count(&db, &format!("SELECT count(*) FROM {table}"))?;
        assert_eq!(n as u64, *rows, "{table}");
    }
    assert_eq!(s.summary.rows("pending_operations"), Some(0));
    // Money adds up: lines to sales, payments to completed sales, layaway payments to
    // completed layaways; no gift card is overdrawn.
    for (what, sql) in [
        ("sale totals", "SELECT count(*) FROM sales s WHERE total_minor != \
            (SELECT sum(total_minor) FROM sale_lines WHERE sale_id = s.id) \
            OR total_minor != subtotal_minor - discount_minor + tax_minor \
            OR subtotal_minor != (SELECT sum(l.total_minor - l.tax_minor + l.discount_minor) \
                FROM sale_lines l WHERE l.sale_id = s.id)"),
        ("payments", "SELECT count(*) FROM sales s WHERE status = 'completed' \
            AND NOT EXISTS (SELECT 1 FROM layaways WHERE sale_id = s.id) \
            AND total_minor != (SELECT coalesce(sum(amount_minor), 0) FROM sale_payments \
                WHERE sale_id = s.id)"),
        ("unpaid statuses", "SELECT count(*) FROM sale_payments p JOIN sales s ON s.id = p.sale_id \
            WHERE s.status != 'completed'"),
        ("layaways", "SELECT count(*) FROM layaways l WHERE status = 'completed' \
            AND total_minor != (SELECT sum(amount_minor) FROM layaway_payments WHERE layaway_id = l.id)"),
        ("gift cards", "SELECT count(*) FROM (SELECT gift_card_id FROM gift_card_transactions \
            GROUP BY gift_card_id HAVING sum(amount_minor) < 0)"),
        ("line numbers", "SELECT count(*) FROM sales s WHERE (SELECT max(line_no) FROM sale_lines \
            WHERE sale_id = s.id) != (SELECT count(*) FROM sale_lines WHERE sale_id = s.id)"),
        ("sale movements", "SELECT count(*) FROM inventory_transactions \
            WHERE kind = 'sale' AND (sale_id IS NULL OR quantity_milli >= 0)"),
        ("change", "SELECT count(*) FROM sale_payments WHERE method = 'cash' \
            AND tendered_minor - amount_minor != change_minor"),
    ] {
        assert_eq!(count(&db, sql)?, 0, "{what}");
    }
    assert!(
        count(
            &db,
            "SELECT count(*) FROM users WHERE role = 'admin' AND active = 1"
        )? >= 1
    );
    for role in ["manager", "cashier"] {
        let n: i64 = db.query_row("SELECT count(*) FROM users WHERE role = ?1", [role], |r| {
            r.get(0)
        })?;
        assert!(n >= 1, "{role}");
    }
    assert!(
        count(
            &db,
            "SELECT count(*) FROM product_categories WHERE parent_id IS NOT NULL"
        )? > 0
    );
    assert!(count(&db, "SELECT count(*) FROM products WHERE image IS NOT NULL")? > 0);
    assert!(
        count(
            &db,
            "SELECT count(*) FROM customers WHERE last_name GLOB '*[^ -~]*'"
        )? > 0
    );
    assert!(
        count(
            &db,
            "SELECT count(*) FROM products WHERE name GLOB '*[^ -~]*'"
        )? > 0
    );
    Ok(())
}

#[test]
fn trading_spans_the_period_and_the_last_day_has_sales() -> TestResult {
    for days in [1, 7, 365] {
        let options = LegacyOptions {
            rows: 3_000,
            days,
            first_day: NaiveDate::from_ymd_opt(2025, 6, 1).ok_or("date")?,
            ..LegacyOptions::default()
        };
        let s = store_with(&options)?;
        let db = Connection::open(&s.path)?;
        let (first, last): (String, String) =
            db.query_row("SELECT min(sold_at), max(sold_at) FROM sales", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        assert!(first.starts_with("2025-06-01T"), "{first}");
        let today = today(&options).format("%Y-%m-%d").to_string();
        assert!(last.starts_with(&today), "{last} vs {today}");
    }
    Ok(())
}

#[test]
fn every_table_but_the_outbox_gets_rows_and_the_total_is_within_two_percent() -> TestResult {
    for (rows, seed, days) in [
        (MIN_ROWS, 1, 365),
        (MIN_ROWS, 2, 1),
        (2_000, 1, 365),
        (2_000, 2, 30),
        (2_000, 3, 2),
        (12_345, 4, 90),
    ] {
        let s = store_with(&LegacyOptions {
            rows,
            seed,
            days,
            ..LegacyOptions::default()
        })?;
        let off = s.summary.total_rows.abs_diff(rows);
        assert!(
            off * 50 <= rows,
            "{rows} rows, days {days}: got {}",
            s.summary.total_rows
        );
        if rows >= 2_000 {
            for (table, n) in &s.summary.tables {
                if table != "pending_operations" {
                    assert!(
                        *n > 0,
                        "{table} is empty at {rows} rows, seed {seed}, days {days}"
                    );
                }
            }
        }
    }
    Ok(())
}

/// Every table's rows in primary-key order.
fn dump(path: &Path) -> rusqlite::Result<Vec<(String, Vec<Vec<Value>>)>> {
    let db = Connection::open(path)?;
    let mut out = Vec::new();
    for table in legacy_tables() {
        let key = if table.name == "pending_operations" {
            "hlc"
        } else {
            "id"
        };
        let mut stmt = db.prepare(&format!("SELECT * FROM {} ORDER BY {key}", table.name))?;
        let width = stmt.column_count();
        let rows = stmt
            .query_map([], |r| (0..width).map(|i| r.get::<_, Value>(i)).collect())?
            .collect::<rusqlite::Result<Vec<Vec<Value>>>>()?;
        out.push((table.name.to_owned(), rows));
    }
    Ok(out)
}

#[test]
fn the_same_options_give_the_same_rows() -> TestResult {
    let a = store(3_000, 42)?;
    let b = store(3_000, 42)?;
    let c = store(3_000, 43)?;
    assert_eq!(a.summary, b.summary);
    let (da, db, dc) = (dump(&a.path)?, dump(&b.path)?, dump(&c.path)?);
    assert!(da == db, "two runs with seed 42 differ");
    assert!(da != dc, "seeds 42 and 43 gave the same rows");
    Ok(())
}

struct ReadAll<'a>(&'a Connection);

impl RecordVisitor for ReadAll<'_> {
    type Output = rusqlite::Result<u64>;
    fn visit<R: Record>(self) -> rusqlite::Result<u64> {
        // A column added since reads as NULL, as adoption fills it.
        let columns: Vec<String> = std::iter::once("id".to_owned())
            .chain(R::TABLE.columns.iter().map(|c| {
                if ADDED_SINCE.contains(&(R::TABLE.name, c.name)) {
                    format!("NULL AS {}", c.name)
                } else {
                    c.name.to_owned()
                }
            }))
            .collect();
        let sql = format!("SELECT {} FROM {}", columns.join(", "), R::TABLE.name);
        let mut stmt = self.0.prepare(&sql)?;
        let mut n = 0;
        for row in stmt.query_map([], |r| R::from_row(r))? {
            row?;
            n += 1;
        }
        Ok(n)
    }
}

#[test]
fn rows_read_as_typed_records_and_copy_into_the_current_schema() -> TestResult {
    let s = store(5_000, 5)?;
    let legacy = Connection::open(&s.path)?;
    for (table, rows) in &s.summary.tables {
        let read = catalog::visit_table(table, ReadAll(&legacy)).ok_or("not in the catalog")??;
        assert_eq!(read, *rows, "{table}");
    }
    drop(legacy);

    // Values move unchanged into the current schema, its CHECKs and composite keys.
    let current = schema_db(CURRENT_SCHEMA)?;
    current.execute_batch(
        "PRAGMA foreign_keys = ON;
         INSERT INTO tenants (id, name, max_users, max_api_calls_month, settings, created_at, updated_at)
         VALUES ('legacy-store', 'Legacy store', 100, 100000, '{}',
                 '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');",
    )?;
    current.execute("ATTACH DATABASE ?1 AS legacy", [s.path.to_string_lossy()])?;
    current.execute_batch("BEGIN; PRAGMA defer_foreign_keys = ON;")?;
    for table in legacy_tables() {
        let columns: Vec<&str> = std::iter::once("id")
            .chain(legacy_columns(table).map(|c| c.name))
            .collect();
        let columns = columns.join(", ");
        current.execute(
            &format!(
                "INSERT INTO main.{0} (tenant_id, {1}) SELECT 'legacy-store', {1} FROM legacy.{0}",
                table.name, columns
            ),
            [],
        )?;
    }
    current.execute_batch("COMMIT")?;
    assert_eq!(
        count(&current, "SELECT count(*) FROM pragma_foreign_key_check")?,
        0
    );
    assert_eq!(
        count(&current, "SELECT count(*) FROM main.sales")? as u64,
        s.summary.rows("sales").unwrap_or(0)
    );
    Ok(())
}

#[test]
fn ids_and_timestamps_are_canonical() -> TestResult {
    let options = LegacyOptions {
        rows: 5_000,
        ..LegacyOptions::default()
    };
    let s = store_with(&options)?;
    let db = Connection::open(&s.path)?;
    let start = Timestamp::from(
        options
            .first_day
            .and_hms_opt(0, 0, 0)
            .ok_or("time")?
            .and_utc(),
    );
    for table in legacy_tables() {
        let mut ids = vec![("id", ColumnKind::Id)];
        ids.extend(legacy_columns(table).map(|c| (c.name, c.kind)));
        for (column, kind) in ids {
            if kind != ColumnKind::Id && kind != ColumnKind::Timestamp {
                continue;
            }
            let sql = format!(
                "SELECT {column} FROM {} WHERE {column} IS NOT NULL",
                table.name
            );
            let mut stmt = db.prepare(&sql)?;
            let values = stmt.query_map([], |r| r.get::<_, String>(0))?;
            for text in values {
                let text = text?;
                if kind == ColumnKind::Id {
                    let id = Uuid::try_parse(&text)?;
                    assert_eq!(id.hyphenated().to_string(), text, "{}.{column}", table.name);
                    assert_eq!(id.get_version_num(), 7, "{}.{column}", table.name);
                } else {
                    let t: Timestamp = text.parse()?;
                    assert_eq!(t.to_rfc3339(), text, "{}.{column}", table.name);
                    assert!(
                        t >= start,
                        "{}.{column} {text} before the first day",
                        table.name
                    );
                }
            }
        }
    }
    Ok(())
}

#[test]
fn optional_columns_hold_both_nulls_and_values() -> TestResult {
    let s = store(20_000, 1)?;
    let db = Connection::open(&s.path)?;
    for table in legacy_tables() {
        if s.summary.rows(table.name).unwrap_or(0) < 50 {
            continue;
        }
        for column in legacy_columns(table).filter(|c| c.nullable) {
            let (nulls, values): (i64, i64) = db.query_row(
                &format!(
                    "SELECT count(*) - count({0}), count({0}) FROM {1}",
                    column.name, table.name
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            assert!(
                nulls > 0 && values > 0,
                "{}.{}: {nulls} NULLs, {values} values",
                table.name,
                column.name
            );
        }
    }
    Ok(())
}

#[test]
fn an_existing_file_is_refused_and_left_alone() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.db");
    std::fs::write(&path, b"keep me")?;
    let err = generate(&path, &LegacyOptions::default())
        .err()
        .ok_or("overwrote")?;
    assert!(matches!(err, GenerateError::Exists { .. }), "{err}");
    assert_eq!(std::fs::read(&path)?, b"keep me");
    Ok(())
}

#[test]
fn options_out_of_range_are_refused_before_any_file_exists() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.db");
    let base = LegacyOptions::default();
    for (options, field) in [
        (
            LegacyOptions {
                rows: MIN_ROWS - 1,
                ..base.clone()
            },
            "rows",
        ),
        (
            LegacyOptions {
                rows: MAX_ROWS + 1,
                ..base.clone()
            },
            "rows",
        ),
        (
            LegacyOptions {
                days: 0,
                ..base.clone()
            },
            "days",
        ),
        (
            LegacyOptions {
                days: u32::MAX,
                ..base.clone()
            },
            "days",
        ),
        (
            LegacyOptions {
                first_day: NaiveDate::from_ymd_opt(1969, 12, 31).ok_or("date")?,
                ..base.clone()
            },
            "first_day",
        ),
    ] {
        match generate(&path, &options) {
            Err(GenerateError::Options { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{options:?} gave {other:?}"),
        }
        assert!(!path.exists());
    }
    Ok(())
}

#[test]
fn today_is_the_last_trading_day() -> TestResult {
    let first_day = NaiveDate::from_ymd_opt(2024, 2, 28).ok_or("date")?;
    let options = LegacyOptions {
        first_day,
        days: 3,
        ..LegacyOptions::default()
    };
    assert_eq!(
        today(&options),
        NaiveDate::from_ymd_opt(2024, 3, 1).ok_or("date")?
    );
    assert_eq!(
        today(&LegacyOptions {
            days: 1,
            ..options.clone()
        }),
        first_day
    );
    assert_eq!(today(&LegacyOptions { days: 0, ..options }), first_day);
    Ok(())
}
