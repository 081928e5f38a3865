//! What the POS flows cost.
//!
//! * `checkout`: a typical sale (3 product lines, 1 cash payment, a stock row per line) through
//!   [`Pos::checkout`] (`flow`) against hand-written rusqlite issuing the same inserts in one
//!   IMMEDIATE transaction (`rusqlite`): the sale, its lines, the payment, the stock rows, and
//!   for each of those 8 rows its audit row and its outbox operation (JSON columns built with
//!   `serde_json`, stamped from an in-memory counter). The baseline knows its prices and reads
//!   nothing; the flow reads the settings, the actor's role, the products, the promotions, the
//!   stock and the commission rules, and checks every operation against the catalog. Goals:
//!   `flow` at most 1.5x `rusqlite`, and at least 2,000 checkouts a second (under 500 µs each)
//!   with `synchronous=NORMAL`.
//! * `balances`: stock on hand of a product with 100,000 inventory ledger rows and the balance
//!   of a gift card with 100,000 ledger rows, read through the handle (`stock_on_hand`,
//!   `gift_card_balance`, kept by the V5 triggers), against the ledger sum they replace
//!   (`ledger_sum_stock`, `ledger_sum_card`, through the covering index). Goal: under 1 ms.
//!
//! Each side of `checkout` has its own file, built the same way through the `Store` API,
//! written the same way (the store's VFS, [`pos_tenancy::vfs`], which hands a commit's log
//! frames to the OS in one write) and checkpointed the same way (the store's background
//! checkpoint, the same page cap), so the ratio is the flow's own cost; only one
//! side's connection is open while it is measured (all connections of the process
//! share one page cache pool; see benches/store.rs).

mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{caps, product};
use criterion::{criterion_group, Criterion};
use pos_tenancy::catalog::{GiftCard, Product};
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::{BackgroundCheckpoint, CHECKPOINT_INTERVAL};
use pos_tenancy::{NewTenant, RowId, Store, TaxRate, TenantAccess, TenantSettings, Timestamp};
use rusqlite::{params, Connection, TransactionBehavior};
use serde_json::json;
use tempfile::TempDir;

/// Products in the catalog; sales rotate over the first [`SOLD`].
const PRODUCTS: usize = 2_000;
const SOLD: usize = 60;
/// Ledger rows behind the balances read.
const LEDGER_ROWS: usize = 100_000;
/// 8.875 %.
const TAX_PPM: i64 = 88_750;

struct Setup {
    admin: RowId,
    products: Vec<Product>,
}

/// A store with `caps` (8.875 % tax), an admin, [`PRODUCTS`] products and plenty of stock of
/// the ones sold; closed when it returns.
fn populate(path: &Path) -> Setup {
    let store = Store::open(path).expect("store opens");
    let mut settings = TenantSettings::new("Caps Automotive");
    settings.tax_rates.push(TaxRate {
        name: "Sales tax".into(),
        rate_ppm: TAX_PPM as u32,
    });
    store
        .add_tenant(&NewTenant::new(caps(), "Caps").settings(settings))
        .expect("tenant added");
    let mut tenant = store.tenant(&caps()).expect("tenant handle");
    let admin = tenant.bootstrap_admin("owner", "Owner").expect("admin");
    let products: Vec<Product> = (0..PRODUCTS).map(product).collect();
    let tx = tenant.transaction().expect("transaction");
    for (i, p) in products.iter().enumerate() {
        tx.insert(&admin, p).expect("product");
        if i < SOLD {
            tx.receive_stock(&admin, p.id, "main", 1_000_000_000, Some(600))
                .expect("stock");
        }
    }
    tx.commit().expect("commit");
    Setup {
        admin: admin.user_id(),
        products,
    }
}

fn sync(path: &Path) {
    for p in [
        path.to_path_buf(),
        PathBuf::from(format!("{}-wal", path.display())),
    ] {
        if let Ok(f) = std::fs::File::open(&p) {
            let _ = f.sync_all();
        }
    }
}

/// The three products of the `n`th sale.
fn basket(products: &[Product], n: usize) -> [&Product; 3] {
    [
        &products[n % SOLD],
        &products[(n + 7) % SOLD],
        &products[(n + 19) % SOLD],
    ]
}

fn checkout(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let flow_path = dir.path().join("flow.db");
    let base_path = dir.path().join("baseline.db");
    let flow = populate(&flow_path);
    let base = populate(&base_path);
    sync(&flow_path);
    sync(&base_path);

    let mut group = c.benchmark_group("checkout");
    group.bench_function("flow", |b| {
        let store = Store::open(&flow_path).expect("store opens");
        let tenant = store.tenant(&caps()).expect("tenant");
        let actor = tenant.actor(flow.admin).expect("actor");
        let mut n = 0usize;
        b.iter(|| {
            n += 1;
            flow_sale_once(&tenant, &actor, basket(&flow.products, n))
        });
    });
    group.bench_function("rusqlite", |b| {
        let conn = open_raw(&base_path);
        // Checkpointed like a store's file: in the background, never in the commit.
        let _checkpoints = BackgroundCheckpoint::start(&base_path, CHECKPOINT_INTERVAL);
        let node: String = conn
            .query_row("SELECT node_id FROM node_state", [], |r| r.get(0))
            .expect("node id");
        let mut counter = 0u32;
        let mut n = 0usize;
        b.iter(|| {
            n += 1;
            hand_written_sale(
                &conn,
                &node,
                base.admin,
                basket(&base.products, n),
                &mut counter,
            )
        });
    });
    group.finish();
    drop(dir);
}

fn open_raw(path: &Path) -> Connection {
    let conn = pos_tenancy::vfs::open(path).expect("baseline opens");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("synchronous");
    conn.pragma_update(None, "foreign_keys", true)
        .expect("foreign keys");
    conn.pragma_update(None, "wal_autocheckpoint", pos_tenancy::WAL_AUTOCHECKPOINT)
        .expect("checkpoint interval");
    conn
}

const SALE_SQL: &str =
    "INSERT INTO sales (id, tenant_id, number, device_id, customer_id, user_id, \
     status, currency, subtotal_minor, discount_minor, tax_minor, total_minor, sold_at, note) \
     VALUES (?1, 'caps', ?2, NULL, NULL, ?3, 'completed', 'USD', ?4, 0, ?5, ?6, ?7, NULL)";
const LINE_SQL: &str =
    "INSERT INTO sale_lines (id, tenant_id, sale_id, line_no, kind, product_id, \
     description, quantity_milli, unit_price_minor, discount_minor, tax_minor, total_minor) \
     VALUES (?1, 'caps', ?2, ?3, 'product', ?4, ?5, 1000, ?6, 0, ?7, ?8)";
const PAYMENT_SQL: &str =
    "INSERT INTO sale_payments (id, tenant_id, sale_id, method, amount_minor, \
     currency, tendered_minor, change_minor, reference, gift_card_id, paid_at) \
     VALUES (?1, 'caps', ?2, 'cash', ?3, 'USD', 100000, ?4, NULL, NULL, ?5)";
const STOCK_SQL: &str = "INSERT INTO inventory_transactions (id, tenant_id, product_id, location, \
     kind, quantity_milli, unit_cost_minor, reason, sale_id, user_id, created_at) \
     VALUES (?1, 'caps', ?2, 'main', 'sale', -1000, 600, NULL, ?3, ?4, ?5)";
const AUDIT_SQL: &str = "INSERT INTO audit_log (id, tenant_id, at, actor_user_id, action, \
     table_name, row_id, detail) VALUES (?1, 'caps', ?2, ?3, 'insert', ?4, ?5, NULL)";
const OP_SQL: &str = "INSERT INTO pending_operations (id, tenant_id, device_id, hlc, \
     actor_user_id, table_name, row_id, kind, columns, created_at) \
     VALUES (?1, 'caps', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// The same rows a checkout writes, by hand.
fn hand_written_sale(
    conn: &Connection,
    node: &str,
    user: RowId,
    products: [&Product; 3],
    counter: &mut u32,
) {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
        .expect("transaction");
    let now = Timestamp::now();
    let mut side_rows = |table: &str, row: RowId, kind: &str, columns: serde_json::Value| {
        *counter += 1;
        let hlc = format!("{:016}.{:06}", now.as_millis(), *counter % 1_000_000);
        tx.prepare_cached(OP_SQL)
            .and_then(|mut s| {
                s.execute(params![
                    RowId::new(),
                    node,
                    hlc,
                    user,
                    table,
                    row.to_string(),
                    kind,
                    columns.to_string(),
                    now
                ])
            })
            .expect("operation");
        tx.prepare_cached(AUDIT_SQL)
            .and_then(|mut s| s.execute(params![RowId::new(), now, user, table, row.to_string()]))
            .expect("audit");
    };
    let sale = RowId::new();
    let lines: Vec<(RowId, &Product, i64)> = products
        .iter()
        .map(|p| {
            let tax = (p.price_minor * TAX_PPM + 500_000) / 1_000_000;
            (RowId::new(), *p, tax)
        })
        .collect();
    let subtotal: i64 = lines.iter().map(|(_, p, _)| p.price_minor).sum();
    let tax: i64 = lines.iter().map(|(_, _, t)| t).sum();
    let total = subtotal + tax;
    let number = format!("S-{}", &sale.as_uuid().simple().to_string()[20..]);
    tx.prepare_cached(SALE_SQL)
        .and_then(|mut s| s.execute(params![sale, number, user, subtotal, tax, total, now]))
        .expect("sale");
    side_rows(
        "sales",
        sale,
        "insert",
        json!({"number": number, "device_id": null, "customer_id": null, "user_id": user,
               "status": "completed", "currency": "USD", "subtotal_minor": subtotal,
               "discount_minor": 0, "tax_minor": tax, "total_minor": total, "sold_at": now,
               "note": null}),
    );
    for (i, (id, p, t)) in lines.iter().enumerate() {
        let line_total = p.price_minor + t;
        tx.prepare_cached(LINE_SQL)
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    sale,
                    i as i64 + 1,
                    p.id,
                    p.name,
                    p.price_minor,
                    t,
                    line_total
                ])
            })
            .expect("line");
        side_rows(
            "sale_lines",
            *id,
            "insert",
            json!({"sale_id": sale, "line_no": i + 1, "kind": "product", "product_id": p.id,
                   "description": p.name, "quantity_milli": 1000,
                   "unit_price_minor": p.price_minor, "discount_minor": 0, "tax_minor": t,
                   "total_minor": line_total}),
        );
    }
    for (_, p, _) in &lines {
        let id = RowId::new();
        tx.prepare_cached(STOCK_SQL)
            .and_then(|mut s| s.execute(params![id, p.id, sale, user, now]))
            .expect("stock");
        side_rows(
            "inventory_transactions",
            id,
            "ledger_append",
            json!({"product_id": p.id, "location": "main", "kind": "sale",
                   "quantity_milli": -1000, "unit_cost_minor": 600, "reason": null,
                   "sale_id": sale, "user_id": user, "created_at": now}),
        );
    }
    let payment = RowId::new();
    tx.prepare_cached(PAYMENT_SQL)
        .and_then(|mut s| s.execute(params![payment, sale, total, 100_000 - total, now]))
        .expect("payment");
    side_rows(
        "sale_payments",
        payment,
        "insert",
        json!({"sale_id": sale, "method": "cash", "amount_minor": total, "currency": "USD",
               "tendered_minor": 100_000, "change_minor": 100_000 - total, "reference": null,
               "gift_card_id": null, "paid_at": now}),
    );
    tx.commit().expect("commit");
}

/// A store whose first product has [`LEDGER_ROWS`] inventory rows and whose one gift card has
/// as many ledger rows, written with plain SQL in one transaction (the triggers keep the
/// balances as they go).
fn ledgers(path: &Path) -> (RowId, RowId) {
    let setup = populate(path);
    let store = Store::open(path).expect("store opens");
    let tenant = store.tenant(&caps()).expect("tenant");
    let admin = tenant.actor(setup.admin).expect("actor");
    let card: GiftCard = tenant
        .issue_gift_card(&admin, "GC-BENCH", 1_000, None, None)
        .expect("card");
    drop(store);
    let product = setup.products[0].id;
    let conn = open_raw(path);
    let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)
        .expect("transaction");
    {
        let now = Timestamp::now();
        let mut stock = tx
            .prepare(
                "INSERT INTO inventory_transactions (id, tenant_id, product_id, location, kind,
                     quantity_milli, created_at) VALUES (?1, 'caps', ?2, 'main', 'adjust', ?3, ?4)",
            )
            .expect("prepare");
        let mut entry = tx
            .prepare(
                "INSERT INTO gift_card_transactions (id, tenant_id, gift_card_id, kind,
                     amount_minor, created_at) VALUES (?1, 'caps', ?2, 'adjust', ?3, ?4)",
            )
            .expect("prepare");
        for i in 0..LEDGER_ROWS as i64 {
            let q = if i % 2 == 0 { 1_000 } else { -999 };
            stock
                .execute(params![RowId::new(), product, q, now])
                .expect("stock row");
            entry
                .execute(params![RowId::new(), card.id, q, now])
                .expect("card row");
        }
    }
    tx.commit().expect("commit");
    conn.execute_batch("ANALYZE").expect("analyze");
    (product, card.id)
}

fn balances(c: &mut Criterion) {
    let dir: TempDir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledgers.db");
    let (product, card) = ledgers(&path);
    let (stock, held) = {
        let store = Store::open(&path).expect("store opens");
        let tenant = store.tenant(&caps()).expect("tenant");
        (
            tenant.stock_on_hand(product, "main").expect("stock"),
            tenant.gift_card_balance(card).expect("balance"),
        )
    };
    let mut group = c.benchmark_group("balances");
    group.bench_function("stock_on_hand", |b| {
        let store = Store::open(&path).expect("store opens");
        let tenant = store.tenant(&caps()).expect("tenant");
        b.iter(|| {
            tenant
                .stock_on_hand(black_box(product), "main")
                .expect("stock")
        })
    });
    group.bench_function("gift_card_balance", |b| {
        let store = Store::open(&path).expect("store opens");
        let tenant = store.tenant(&caps()).expect("tenant");
        b.iter(|| tenant.gift_card_balance(black_box(card)).expect("balance"))
    });
    let stock_sql = "SELECT sum(quantity_milli) FROM inventory_transactions \
                     WHERE tenant_id = 'caps' AND product_id = ?1 AND location = 'main'";
    let card_sql = "SELECT sum(amount_minor) FROM gift_card_transactions \
                    WHERE tenant_id = 'caps' AND gift_card_id = ?1";
    for (name, sql, key, kept) in [
        ("ledger_sum_stock", stock_sql, product, stock),
        ("ledger_sum_card", card_sql, card, held),
    ] {
        group.bench_function(name, |b| {
            let conn = open_raw(&path);
            let mut stmt = conn.prepare(sql).expect("prepare");
            let mut sum = |key: RowId| -> i64 { stmt.query_row([key], |r| r.get(0)).expect("sum") };
            assert_eq!(sum(key), kept, "the kept balance is the ledger sum");
            b.iter(|| sum(black_box(key)))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    targets = checkout, balances
}
/// Without criterion: `POS_BENCH_CHECKOUTS=<flow|rusqlite>:<count>` builds one side's file, then
/// rings up exactly `count` sales on it and exits. For instruction counts, which a shared
/// machine's wall clock cannot give: `valgrind --tool=callgrind --toggle-collect='*sale_once*'`
/// counts only the sales, and both sides ring up the same baskets on the same fresh file.
fn main() {
    match std::env::var("POS_BENCH_CHECKOUTS") {
        Ok(spec) => profile_checkouts(&spec),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}

fn profile_checkouts(spec: &str) {
    let (side, count) = spec
        .split_once(':')
        .and_then(|(side, n)| Some((side, n.parse::<usize>().ok()?)))
        .expect("POS_BENCH_CHECKOUTS=<flow|rusqlite>:<count>");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("profile.db");
    let setup = populate(&path);
    sync(&path);
    let start = std::time::Instant::now();
    match side {
        "flow" => {
            let builder = match wal_pages() {
                Some(pages) => Store::builder().wal_autocheckpoint(pages),
                None => Store::builder(),
            };
            let store = builder.open(&path).expect("store opens");
            let tenant = store.tenant(&caps()).expect("tenant");
            let actor = tenant.actor(setup.admin).expect("actor");
            for n in 0..count {
                flow_sale_once(&tenant, &actor, basket(&setup.products, n));
            }
        }
        "rusqlite" => {
            let conn = open_raw(&path);
            let _checkpoints = BackgroundCheckpoint::start(&path, CHECKPOINT_INTERVAL);
            if let Some(pages) = wal_pages() {
                conn.pragma_update(None, "wal_autocheckpoint", pages)
                    .expect("checkpoint interval");
            }
            let node: String = conn
                .query_row("SELECT node_id FROM node_state", [], |r| r.get(0))
                .expect("node id");
            let mut counter = 0u32;
            for n in 0..count {
                hand_written_sale_once(
                    &conn,
                    &node,
                    setup.admin,
                    basket(&setup.products, n),
                    &mut counter,
                );
            }
        }
        other => panic!("unknown side {other}"),
    }
    eprintln!("{side}: {count} sales in {:?}", start.elapsed());
}

/// `POS_BENCH_WAL_PAGES=N` (profile mode only): checkpoint every N pages instead of the
/// store's default, to see what the checkpoint's writes and syncs cost.
fn wal_pages() -> Option<u32> {
    std::env::var("POS_BENCH_WAL_PAGES").ok()?.parse().ok()
}

#[inline(never)]
fn flow_sale_once(
    tenant: &pos_tenancy::Tenant<'_>,
    actor: &pos_tenancy::Actor,
    products: [&Product; 3],
) {
    let mut sale = Checkout::new();
    for p in products {
        sale = sale.line(LineItem::product(p.id, 1_000));
    }
    let sale = sale.tender(Tender::Cash {
        tendered_minor: 100_000,
    });
    black_box(tenant.checkout(actor, &sale).expect("checkout"));
}

#[inline(never)]
fn hand_written_sale_once(
    conn: &Connection,
    node: &str,
    user: RowId,
    products: [&Product; 3],
    counter: &mut u32,
) {
    hand_written_sale(conn, node, user, products, counter);
}
