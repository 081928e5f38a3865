//! What the tenant-scoped layer costs over hand-written rusqlite.
//!
//! Each group runs the same work twice, in the same process and on the same migrated schema:
//!
//! * `layer`: through [`pos_tenancy::Tenant`] (`insert`, `get`, `list`);
//! * `rusqlite`: hand-written rusqlite with cached prepared statements and no layer in between,
//!   doing the same writes (the business row and its audit row, in one IMMEDIATE transaction)
//!   and the same reads (the same tenant-filtered SQL, mapped into the same `Product` struct).
//!
//! Both sides use file-backed databases in WAL mode with `synchronous=NORMAL` and foreign keys
//! on, each holding two tenants with 10,000 products apiece, so the tenant filter matters.
//! Every group gets fresh files, so rows inserted by one group do not change another's data.
//!
//! Goals: the layer costs at most 1.3x the baseline on writes (`insert`) and at most 1.1x on
//! reads (`point_read`, `list`). Compare the `layer` and `rusqlite` estimates of each group.

use std::cell::Cell;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pos_tenancy::catalog::Product;
use pos_tenancy::{
    Actor, ListQuery, NewTenant, RowId, Store, Tenant, TenantAccess, TenantId, Timestamp,
};
use rusqlite::{params, Connection, TransactionBehavior};
use tempfile::TempDir;

/// Products preloaded per tenant.
const PRELOAD: usize = 10_000;
/// Rows per list page.
const PAGE: usize = 50;
/// Step through the preloaded ids by a prime so successive reads land far apart.
const STRIDE: usize = 7_919;

const INSERT_SQL: &str = "INSERT INTO products (id, tenant_id, sku, barcode, name, description, \
     brand, category_id, kind, price_minor, cost_minor, currency, taxable, reorder_level_milli, \
     image, active, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";

const AUDIT_SQL: &str = "INSERT INTO audit_log (tenant_id, id, at, actor_user_id, action, \
     table_name, row_id, detail) VALUES (?1, ?2, ?3, ?4, 'insert', 'products', ?5, NULL)";

const SELECT_COLUMNS: &str = "SELECT id, sku, barcode, name, description, brand, category_id, \
     kind, price_minor, cost_minor, currency, taxable, reorder_level_milli, image, active, \
     created_at, updated_at FROM products";

thread_local! {
    /// Makes every sku and barcode unique across all the databases of a run.
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}

/// A product with a fresh id, timestamps, sku and barcode.
fn new_product() -> Product {
    let n = COUNTER.with(|c| {
        let n = c.get();
        c.set(n + 1);
        n
    });
    let now = Timestamp::now();
    Product {
        id: RowId::new(),
        sku: format!("SKU-{n:08}"),
        barcode: Some(format!("{n:013}")),
        name: format!("Oil filter {n}"),
        description: Some("Spin-on oil filter".to_owned()),
        brand: Some("Fram".to_owned()),
        category_id: None,
        kind: "stocked".to_owned(),
        price_minor: 1299,
        cost_minor: 610,
        currency: "USD".to_owned(),
        taxable: true,
        reorder_level_milli: 5000,
        image: None,
        active: true,
        created_at: now,
        updated_at: now,
    }
}

/// Maps a row selected with [`SELECT_COLUMNS`] by hand.
fn product_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Product> {
    Ok(Product {
        id: row.get(0)?,
        sku: row.get(1)?,
        barcode: row.get(2)?,
        name: row.get(3)?,
        description: row.get(4)?,
        brand: row.get(5)?,
        category_id: row.get(6)?,
        kind: row.get(7)?,
        price_minor: row.get(8)?,
        cost_minor: row.get(9)?,
        currency: row.get(10)?,
        taxable: row.get(11)?,
        reorder_level_milli: row.get(12)?,
        image: row.get(13)?,
        active: row.get(14)?,
        created_at: row.get(15)?,
        updated_at: row.get(16)?,
    })
}

fn caps() -> TenantId {
    "caps".parse().expect("valid tenant slug")
}

/// Creates a migrated database at `path` holding `caps` and `bolt`, each with an admin and
/// [`PRELOAD`] products; returns the store, `caps`'s admin and `caps`'s product ids in id order.
fn populate(path: &Path) -> (Store, Actor, Vec<RowId>) {
    let store = Store::open(path).expect("store opens");
    let mut caps = None;
    for (slug, name) in [("caps", "Caps Automotive"), ("bolt", "Bolt Bros")] {
        let id: TenantId = slug.parse().expect("valid tenant slug");
        store
            .add_tenant(&NewTenant::new(id.clone(), name))
            .expect("tenant added");
        let mut tenant = store.tenant(&id).expect("tenant handle");
        let admin = tenant
            .bootstrap_admin("owner", "Store Owner")
            .expect("admin bootstrapped");
        let tx = tenant.transaction().expect("transaction starts");
        let mut ids = Vec::with_capacity(PRELOAD);
        for _ in 0..PRELOAD {
            let p = new_product();
            tx.insert(&admin, &p).expect("preload insert");
            ids.push(p.id);
        }
        tx.commit().expect("preload commits");
        if slug == "caps" {
            caps = Some((admin, ids));
        }
    }
    let (admin, mut caps_ids) = caps.expect("caps was populated");
    caps_ids.sort();
    (store, admin, caps_ids)
}

/// The layer's store with its `caps` admin, and a raw connection to a second file with the
/// same schema and data, with `caps`'s admin id.
struct Fixture {
    _dir: TempDir,
    store: Store,
    admin: Actor,
    store_ids: Vec<RowId>,
    conn: Connection,
    tenant_id: TenantId,
    admin_id: RowId,
    conn_ids: Vec<RowId>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let tenant_id = caps();

        let (store, admin, store_ids) = populate(&dir.path().join("layer.db"));

        let baseline = dir.path().join("baseline.db");
        let (seed, _, conn_ids) = populate(&baseline);
        drop(seed);
        let first = Connection::open(&baseline).expect("baseline opens");
        if std::env::var("TOUCH").is_ok() { first.query_row("SELECT count(*) FROM products", [], |r| r.get::<_, i64>(0)).unwrap(); }
        let conn = if std::env::var("SECOND").is_ok() {
            Connection::open(&baseline).expect("baseline opens")
        } else {
            first
        };
        if std::env::var("NOJM").is_err() {
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
                .expect("WAL");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .expect("synchronous=NORMAL");
        conn.pragma_update(None, "foreign_keys", true)
            .expect("foreign keys on");
        let admin_id: RowId = conn
            .query_row(
                "SELECT id FROM users WHERE tenant_id = ?1 AND username = 'owner'",
                [&tenant_id],
                |r| r.get(0),
            )
            .expect("baseline admin id");

        Self {
            _dir: dir,
            store,
            admin,
            store_ids,
            conn,
            tenant_id,
            admin_id,
            conn_ids,
        }
    }

    fn tenant(&self) -> Tenant<'_> {
        tenant_of(&self.store, &self.tenant_id)
    }
}

fn tenant_of<'s>(store: &'s Store, id: &TenantId) -> Tenant<'s> {
    store.tenant(id).expect("tenant handle")
}

/// Yields `ids[i]` for `i` stepping by [`STRIDE`] through `0..len`.
struct Cycle<'a> {
    ids: &'a [RowId],
    len: usize,
    i: usize,
}

impl<'a> Cycle<'a> {
    fn new(ids: &'a [RowId], len: usize) -> Self {
        Self { ids, len, i: 0 }
    }

    fn next_id(&mut self) -> RowId {
        self.i = (self.i + STRIDE) % self.len;
        self.ids[self.i]
    }
}

fn insert(c: &mut Criterion) {
    let Fixture {
        _dir,
        store,
        admin,
        mut conn,
        tenant_id,
        admin_id,
        ..
    } = Fixture::new();
    let tenant = tenant_of(&store, &tenant_id);
    let mut group = c.benchmark_group("insert");

    group.bench_function("layer", |b| {
        b.iter(|| {
            let p = new_product();
            tenant.insert(&admin, black_box(&p)).expect("layer insert");
        })
    });

    group.bench_function("rusqlite", |b| {
        b.iter(|| {
            let p = new_product();
            let p = black_box(&p);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .expect("BEGIN IMMEDIATE");
            tx.prepare_cached(INSERT_SQL)
                .expect("prepare insert")
                .execute(params![
                    p.id,
                    tenant_id,
                    p.sku,
                    p.barcode,
                    p.name,
                    p.description,
                    p.brand,
                    p.category_id,
                    p.kind,
                    p.price_minor,
                    p.cost_minor,
                    p.currency,
                    p.taxable,
                    p.reorder_level_milli,
                    p.image,
                    p.active,
                    p.created_at,
                    p.updated_at,
                ])
                .expect("insert product");
            tx.prepare_cached(AUDIT_SQL)
                .expect("prepare audit")
                .execute(params![
                    tenant_id,
                    RowId::new(),
                    Timestamp::now(),
                    admin_id,
                    p.id,
                ])
                .expect("insert audit row");
            tx.commit().expect("COMMIT");
        })
    });

    group.finish();
}

fn point_read(c: &mut Criterion) {
    let fx = Fixture::new();
    let tenant = fx.tenant();
    let mut group = c.benchmark_group("point_read");

    let mut ids = Cycle::new(&fx.store_ids, fx.store_ids.len());
    group.bench_function("layer", |b| {
        b.iter(|| {
            let p: Option<Product> = tenant.get(black_box(ids.next_id())).expect("layer get");
            black_box(p.expect("row exists"))
        })
    });

    let sql = format!("{SELECT_COLUMNS} WHERE tenant_id = ?1 AND id = ?2");
    let mut ids = Cycle::new(&fx.conn_ids, fx.conn_ids.len());
    group.bench_function("rusqlite", |b| {
        b.iter(|| {
            let id = black_box(ids.next_id());
            let p = fx
                .conn
                .prepare_cached(&sql)
                .expect("prepare get")
                .query_row(params![fx.tenant_id, id], product_from_row)
                .expect("row exists");
            black_box(p)
        })
    });

    group.finish();
}

fn list(c: &mut Criterion) {
    let fx = Fixture::new();
    let tenant = fx.tenant();
    let mut group = c.benchmark_group("list");

    // Start far enough from the end that every page is full and has a next page.
    let mut ids = Cycle::new(&fx.store_ids, fx.store_ids.len() - PAGE - 1);
    group.bench_function("layer", |b| {
        b.iter(|| {
            let q = ListQuery::new()
                .limit(PAGE as u32)
                .after(black_box(ids.next_id()));
            let page = tenant.list::<Product>(&q).expect("layer list");
            debug_assert_eq!(page.rows.len(), PAGE);
            black_box(page)
        })
    });

    // The same keyset SQL the layer runs: one row more than a page, to know if there is a next.
    let sql = format!(
        "{SELECT_COLUMNS} WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT {}",
        PAGE + 1
    );
    let mut ids = Cycle::new(&fx.conn_ids, fx.conn_ids.len() - PAGE - 1);
    group.bench_function("rusqlite", |b| {
        b.iter(|| {
            let after = black_box(ids.next_id());
            let mut stmt = fx.conn.prepare_cached(&sql).expect("prepare list");
            let mut rows = Vec::with_capacity(PAGE + 1);
            let mut cursor = stmt
                .query(params![fx.tenant_id, after])
                .expect("list query");
            while let Some(row) = cursor.next().expect("list row") {
                rows.push(product_from_row(row).expect("product"));
            }
            let next = if rows.len() > PAGE {
                rows.truncate(PAGE);
                rows.last().map(|p| p.id)
            } else {
                None
            };
            debug_assert_eq!(rows.len(), PAGE);
            black_box((rows, next))
        })
    });

    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = point_read
}
criterion_main!(benches);
