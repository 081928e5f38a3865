//! The catalog's rules against the node schema: what a node's CHECK constraints refuse,
//! `protocol::validate` refuses too (on the node, the server and in the merge alike), so an
//! operation the central log takes can be applied on every node; each table takes only the
//! operation kinds its entry allows (documents are written once, then amended only in their
//! state columns); texts are bounded.

mod common;

use common::*;
use pos_tenancy::catalog::{
    self, ColumnDef, ColumnKind, Fitment, Record, Sale, SyncClass, TableDef, WorkOrder,
};
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::protocol::{check_column, validate, Operation, OperationError, OperationKind};
use pos_tenancy::{
    CentralError, CentralStore, Error, Hlc, ListQuery, NewTenant, RowId, SqliteCentral,
    TenantAccess, Timestamp,
};
use rusqlite::types::Value as Sql;
use serde_json::{json, Map, Value as J};

type R = pos_tenancy::Result<()>;

// ------------------------------------------------------------------------------ the schema

/// A CREATE TABLE statement's definitions (comments removed), split at the commas outside
/// parentheses and quotes.
fn definitions(create: &str) -> Vec<String> {
    let text: String = create
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    let (Some(open), Some(close)) = (text.find('('), text.rfind(')')) else {
        panic!("not a CREATE TABLE: {create}");
    };
    let (mut parts, mut current, mut depth, mut quoted) = (Vec::new(), String::new(), 0, false);
    for c in text[open + 1..close].chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(std::mem::take(&mut current).trim().to_owned());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current.trim().to_owned());
    parts
}

/// Every `CHECK (...)` expression of a definition.
fn checks(def: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = def;
    while let Some(at) = rest.find("CHECK") {
        let after = &rest[at + "CHECK".len()..];
        let Some(open) = after.find('(') else { break };
        let mut depth = 0;
        let mut end = None;
        for (i, c) in after[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(open + i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        found.push(after[open + 1..end].trim().to_owned());
        rest = &after[end..];
    }
    found
}

/// One CHECK of a tenant table: the columns it reads and its expression.
struct Check {
    table: &'static TableDef,
    columns: Vec<&'static ColumnDef>,
    expr: String,
}

/// Every CHECK constraint of every tenant table, read from the schema of a migrated node
/// database.
fn schema_checks() -> Vec<Check> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node.db");
    drop(pos_tenancy::Store::open(&path).expect("a migrated node store"));
    let conn = rusqlite::Connection::open(&path).expect("the node file");
    let mut all = Vec::new();
    for table in catalog::TABLES {
        let create: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table.name],
                |r| r.get(0),
            )
            .expect("every catalog table is in the schema");
        for def in definitions(&create) {
            let first = def.split_whitespace().next().unwrap_or("");
            for expr in checks(&def) {
                let columns: Vec<&'static ColumnDef> = match table.column(first) {
                    Some(col) => vec![col],
                    // A table constraint: the columns it names.
                    None => table
                        .columns
                        .iter()
                        .filter(|c| {
                            expr.split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                                .any(|word| word == c.name)
                        })
                        .collect(),
                };
                assert!(!columns.is_empty(), "{}: {def}", table.name);
                all.push(Check {
                    table,
                    columns,
                    expr,
                });
            }
        }
    }
    all
}

/// Values to try in a column of this kind, as SQLite stores them.
fn candidates(kind: ColumnKind) -> Vec<Sql> {
    match kind {
        ColumnKind::Text => [
            "",
            "a",
            "ab",
            "abc",
            "USD",
            "usd",
            "QQQ",
            "abcd",
            "abcde",
            "bogus",
            "US Dollar",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([16, 17, 18, 63, 64, 65, 4097].map(|n| "x".repeat(n)))
        .map(Sql::Text)
        .collect(),
        ColumnKind::Integer => [
            i64::MIN,
            -1_000_001,
            -1,
            0,
            1,
            1885,
            1886,
            2000,
            2100,
            2101,
            1_000_000,
            1_000_001,
            i64::MAX,
        ]
        .map(Sql::Integer)
        .to_vec(),
        ColumnKind::Bool => [0, 1, 2, -1].map(Sql::Integer).to_vec(),
        other => panic!("no CHECK was expected on a column of kind {other:?}"),
    }
}

/// A stored value as an operation carries it: what a client would send for it.
fn wire(col: &ColumnDef, v: &Sql) -> J {
    match (col.kind, v) {
        (ColumnKind::Bool, Sql::Integer(0)) => J::Bool(false),
        (ColumnKind::Bool, Sql::Integer(1)) => J::Bool(true),
        (_, Sql::Integer(i)) => json!(i),
        (_, Sql::Text(s)) => json!(s),
        (_, other) => panic!("no candidate {other:?}"),
    }
}

/// Whether the CHECK passes with these values of its columns (SQLite: NULL passes).
fn passes(conn: &rusqlite::Connection, check: &Check, values: &[&Sql]) -> bool {
    let select: Vec<String> = check
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("?{} AS \"{}\"", i + 1, c.name))
        .collect();
    // The expression is the schema's own text (our migrations), never input.
    let sql = format!(
        "SELECT ({}) FROM (SELECT {})",
        check.expr,
        select.join(", ")
    );
    let v: Option<bool> = conn
        .query_row(&sql, rusqlite::params_from_iter(values.iter()), |r| {
            r.get(0)
        })
        .unwrap_or_else(|e| panic!("{}: {sql}: {e}", check.table.name));
    v != Some(false)
}

/// A value of the column that the catalog accepts.
fn sample(col: &ColumnDef) -> J {
    match col.kind {
        ColumnKind::Id => json!(RowId::new().to_string()),
        ColumnKind::Timestamp => json!(Timestamp::now().to_string()),
        ColumnKind::Bool => json!(true),
        ColumnKind::Json => json!({}),
        ColumnKind::Blob => json!([]),
        ColumnKind::Integer => json!(col.range.map_or(0, |r| r.min)),
        ColumnKind::Text => match (col.one_of, col.format) {
            (Some(words), _) => json!(words[0]),
            (None, Some(_)) => json!("USD"),
            (None, None) => {
                let min = col.length.map_or(1, |l| l.min.max(1));
                json!("x".repeat(usize::try_from(min).expect("a small length")))
            }
        },
        other => panic!("a column of kind {other:?}"),
    }
}

/// A whole row of the table that the catalog accepts.
fn sample_row(table: &TableDef) -> Map<String, J> {
    table
        .columns
        .iter()
        .map(|c| (c.name.to_owned(), sample(c)))
        .collect()
}

fn op(table: &TableDef, kind: OperationKind, columns: Map<String, J>) -> Operation {
    let device = RowId::new();
    Operation {
        id: RowId::new(),
        tenant_id: tid("caps"),
        device_id: device,
        hlc: Hlc::new(1_700_000_000_000, 0, device).expect("a stamp"),
        actor_user_id: None,
        table: table.name.to_owned(),
        row_id: RowId::new(),
        kind,
        columns,
        unit: None,
        base: None,
    }
}

/// The kind a new row of the table travels as.
fn insert_kind(table: &TableDef) -> OperationKind {
    if table.sync_class == SyncClass::Ledger {
        OperationKind::LedgerAppend
    } else {
        OperationKind::Insert
    }
}

#[test]
fn validate_refuses_every_value_a_check_constraint_of_the_node_schema_refuses() {
    let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
    let mut refused = 0;
    let mut not_expressible = Vec::new();
    for check in schema_checks() {
        let t = check.table;
        // A JSON column's CHECK is `json_valid`: an operation carries a JSON value, which the
        // node stores as its own serialization, always valid. No value on the wire can break
        // it, so there is nothing for validate to refuse.
        if check.columns.iter().any(|c| c.kind == ColumnKind::Json) {
            assert!(
                check.expr.contains("json_valid"),
                "{}: {}",
                t.name,
                check.expr
            );
            not_expressible.push(format!("{}: {}", t.name, check.expr));
            continue;
        }
        let pools: Vec<Vec<Sql>> = check.columns.iter().map(|c| candidates(c.kind)).collect();
        // Values the CHECK and the catalog accept, to hold the other columns of a table
        // constraint still.
        let fine = |i: usize, v: &Sql| {
            check_column(t, check.columns[i].name, &wire(check.columns[i], v)).is_ok()
        };
        let baseline: Vec<Sql> = match pools.as_slice() {
            [_] => vec![Sql::Null],
            [a, b] => a
                .iter()
                .flat_map(|x| b.iter().map(move |y| (x, y)))
                .find(|(x, y)| fine(0, x) && fine(1, y) && passes(&conn, &check, &[*x, *y]))
                .map(|(x, y)| vec![x.clone(), y.clone()])
                .unwrap_or_else(|| panic!("{}: no values pass {}", t.name, check.expr)),
            _ => panic!("{}: a CHECK of more than two columns", t.name),
        };
        let mut found = 0;
        for (i, col) in check.columns.iter().enumerate() {
            for v in &pools[i] {
                let mut values: Vec<&Sql> = baseline.iter().collect();
                values[i] = v;
                if passes(&conn, &check, &values) {
                    continue;
                }
                found += 1;
                let what = format!("{}.{} = {v:?} ({})", t.name, col.name, check.expr);
                if t.sync_class == SyncClass::LocalOnly {
                    // Never synced, so validate refuses the table itself; the column's rule is
                    // still the catalog's.
                    let Err(err) = check_column(t, col.name, &wire(col, v)) else {
                        panic!("check_column accepts {what}");
                    };
                    let message = err.to_string();
                    assert!(
                        message.contains(&format!("{}.{}", t.name, col.name)),
                        "{what}: {message}"
                    );
                    let whole = op(t, OperationKind::Insert, sample_row(t));
                    assert!(matches!(
                        validate(&whole),
                        Err(OperationError::LocalOnlyTable(_))
                    ));
                    continue;
                }
                let mut row = sample_row(t);
                for (c, value) in check.columns.iter().zip(&values) {
                    if !matches!(value, Sql::Null) {
                        row.insert(c.name.to_owned(), wire(c, value));
                    }
                }
                let Err(err) = validate(&op(t, insert_kind(t), row)) else {
                    panic!("validate accepts {what}");
                };
                let message = err.to_string();
                assert!(
                    message.contains(t.name) && message.contains(col.name),
                    "{what}: {message}"
                );
            }
        }
        assert!(found > 0, "no candidate breaks {}: {}", t.name, check.expr);
        refused += found;
    }
    assert!(refused > 100, "{refused}");
    // sync_conflicts (2), audit_log, sync_stamps (2), sales.receipt_brand: each a JSON
    // column's json_valid.
    assert_eq!(not_expressible.len(), 6, "{not_expressible:#?}");
}

#[test]
fn a_whole_row_of_sample_values_passes_so_each_refusal_above_is_its_columns() {
    for t in catalog::TABLES {
        if t.sync_class == SyncClass::LocalOnly {
            for (name, value) in sample_row(t) {
                check_column(t, &name, &value).expect("a sample value");
            }
            continue;
        }
        let ok = validate(&op(t, insert_kind(t), sample_row(t)));
        assert!(ok.is_ok(), "{}: {ok:?}", t.name);
    }
}

// ------------------------------------------------------------------------------ the issue

fn product_row() -> Map<String, J> {
    match serde_json::to_value(product("OF-1", 1299)).expect("json") {
        J::Object(mut m) => {
            m.remove("id");
            m
        }
        _ => unreachable!(),
    }
}

#[test]
fn products_a_node_cannot_apply_are_refused_and_the_message_names_the_column() {
    let products = catalog::Product::TABLE;
    assert!(validate(&op(products, OperationKind::Insert, product_row())).is_ok());
    let four_mib = "x".repeat(4 << 20);
    for (column, value) in [
        ("price_minor", json!(-1)),
        ("cost_minor", json!(-5)),
        ("name", json!("")),
        ("sku", json!("")),
        ("currency", json!("US Dollar")),
        ("currency", json!("usd")),
        ("currency", json!("QQQ")),
        ("kind", json!("bogus")),
        ("name", json!(four_mib)),
        ("description", json!(four_mib)),
        ("brand", json!("b".repeat(201))),
        ("image", json!(vec![7u8; 64 * 1024 + 1])),
    ] {
        let mut row = product_row();
        row.insert(column.to_owned(), value);
        let err = validate(&op(products, OperationKind::Insert, row))
            .expect_err(&format!("products.{column}"));
        assert!(
            matches!(err, OperationError::BadValue { table: "products", column: c, .. } if c == column),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("products.{column}: ")),
            "{message}"
        );
        assert!(
            message.len() < 300,
            "a refusal does not echo the value: {message}"
        );
    }
    // At the bounds, accepted.
    let mut row = product_row();
    row.insert("name".into(), json!("é".repeat(200)));
    row.insert("description".into(), json!("d".repeat(4000)));
    row.insert("currency".into(), json!("EUR"));
    row.insert("price_minor".into(), json!(0));
    assert!(validate(&op(products, OperationKind::Insert, row)).is_ok());
}

#[test]
fn a_document_is_written_once_and_amended_only_in_its_state_columns() {
    let sales = Sale::TABLE;
    let update = |table: &TableDef, columns: serde_json::Value| {
        let J::Object(columns) = columns else {
            unreachable!()
        };
        validate(&op(table, OperationKind::Update, columns))
    };
    let err = update(sales, json!({"total_minor": 0})).expect_err("a sale's total changed");
    assert!(
        matches!(
            err,
            OperationError::NotAmendable {
                table: "sales",
                column: "total_minor",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("sales.total_minor"), "{err}");
    assert!(update(sales, json!({"status": "completed", "total_minor": 0})).is_err());
    assert!(update(sales, json!({"status": "voided"})).is_ok());
    assert!(update(
        WorkOrder::TABLE,
        json!({"status": "completed", "sale_id": RowId::new(),
        "completed_at": Timestamp::now()})
    )
    .is_ok());
    assert!(update(WorkOrder::TABLE, json!({"description": "more"})).is_err());
    // Lines and payments are never updated at all.
    for table in [
        catalog::SaleLine::TABLE,
        catalog::SalePayment::TABLE,
        catalog::WorkOrderLine::TABLE,
    ] {
        assert!(
            matches!(
                update(table, json!({})),
                Err(OperationError::KindNotAllowed {
                    kind: OperationKind::Update,
                    ..
                })
            ),
            "{}",
            table.name
        );
    }
    assert!(!catalog::SaleLine::TABLE.allows(OperationKind::Update));
    assert!(Sale::TABLE.allows(OperationKind::Update) && Sale::TABLE.allows(OperationKind::Insert));
}

#[test]
fn the_central_store_refuses_what_a_node_cannot_apply_and_stores_nothing() {
    let central = SqliteCentral::open_in_memory().expect("central");
    central
        .add_tenant(&NewTenant::new(tid("caps"), "Caps"))
        .expect("tenant");
    let products = catalog::Product::TABLE;
    for (column, value) in [
        ("price_minor", json!(-1)),
        ("name", json!("")),
        ("sku", json!("")),
        ("currency", json!("US Dollar")),
        ("currency", json!("usd")),
        ("currency", json!("QQQ")),
        ("name", json!("x".repeat(4 << 20))),
    ] {
        let mut row = product_row();
        row.insert(column.to_owned(), value);
        let refused = central.append(&tid("caps"), &[op(products, OperationKind::Insert, row)]);
        // A 4 MiB name meets the size bound of one operation before the column rule.
        assert!(
            matches!(
                &refused,
                Err(CentralError::BatchRejected { .. } | CentralError::OperationTooLarge { .. })
            ),
            "{column}: {refused:?}"
        );
    }
    let edit = op(Sale::TABLE, OperationKind::Update, {
        let mut m = Map::new();
        m.insert("total_minor".into(), json!(0));
        m
    });
    assert!(central.append(&tid("caps"), &[edit]).is_err());
    let page = central.operations_after(&tid("caps"), 0, 10).expect("pull");
    assert_eq!(page.high, 0, "nothing was stored");
}

#[test]
fn the_handle_refuses_to_edit_what_a_document_wrote_once_but_flows_amend_its_state() -> R {
    let store = store_with(&["caps"]);
    let caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let g = populate(&caps, &admin, "a")?;
    let mut wo = caps.list::<WorkOrder>(&ListQuery::new())?.rows.remove(0);
    assert_eq!(wo.status, "open");
    let before = caps.pending_operations(10_000)?.len();
    wo.description = "Oil change and brake check".into();
    let err = caps
        .update(&admin, &wo)
        .expect_err("a work order's text edited");
    assert!(
        matches!(
            err,
            Error::AppendOnly {
                table: "work_orders",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        caps.pending_operations(10_000)?.len(),
        before,
        "nothing written"
    );
    // Its state is amended, by hand or by the flows.
    let mut wo = caps.fetch::<WorkOrder>(wo.id)?;
    wo.status = "in_progress".into();
    caps.update(&admin, &wo)?;
    let c = caps.fetch::<catalog::Customer>(g.customer)?;
    caps.receive_stock(&admin, g.product, "main", 5_000, None)?;
    let sale = caps.checkout(
        &admin,
        &Checkout::new()
            .customer(c.id)
            .line(LineItem::product(g.product, 1000))
            .tender(Tender::Cash {
                tendered_minor: 5000,
            }),
    )?;
    assert_eq!(sale.sale.status, "completed");
    Ok(())
}

#[test]
fn an_update_of_one_model_year_carries_both_so_the_pair_merges_as_one() -> R {
    let store = store_with(&["caps"]);
    let caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let p = product("OF-1", 1299);
    caps.insert(&admin, &p)?;
    let mut f = Fitment {
        id: RowId::new(),
        product_id: p.id,
        make: "Toyota".into(),
        model: "Corolla".into(),
        year_from: 2014,
        year_to: 2019,
        engine: None,
        notes: None,
    };
    caps.insert(&admin, &f)?;
    f.year_to = 2022;
    caps.update(&admin, &f)?;
    let ops = caps.pending_operations(100)?;
    let last = ops.last().expect("the update");
    assert_eq!(last.kind, OperationKind::Update);
    assert_eq!(last.columns.get("year_to"), Some(&json!(2022)));
    assert_eq!(last.columns.get("year_from"), Some(&json!(2014)));
    // Alone, or out of order, an update is refused.
    let alone = op(Fitment::TABLE, OperationKind::Update, {
        let mut m = Map::new();
        m.insert("year_to".into(), json!(2022));
        m
    });
    assert!(validate(&alone)
        .unwrap_err()
        .to_string()
        .contains("fitment_data.year_to"));
    let mut reversed = last.clone();
    reversed.columns.insert("year_from".into(), json!(2023));
    assert!(validate(&reversed).is_err());
    Ok(())
}
