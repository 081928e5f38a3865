//! What the tenant-scoped layer costs over hand-written rusqlite.
//!
//! Each group runs the same work twice, in the same run and on the same migrated schema:
//!
//! * `layer`: through [`pos_tenancy::Tenant`] (`insert`, `get`, `list`);
//! * `rusqlite`: hand-written rusqlite with cached prepared statements and no layer in between,
//!   doing the business row and its audit row in one IMMEDIATE transaction, and the same reads
//!   (the same tenant-filtered SQL, mapped into the same `Product` struct);
//! * `rusqlite_outbox` (insert only): the same plus the outbox operation the layer writes with
//!   every synced write, written as the store writes it: stamped from the newest stamp kept in
//!   memory while `PRAGMA data_version` is unchanged (read from the outbox otherwise), columns
//!   as `pos_tenancy::json_text`, stamp and `created_at` formatted by hand.
//!
//! Goals: the layer costs at most 1.3x the baseline on writes and at most 1.1x on reads
//! (`point_read`, `list`); the outbox costs at most 1.3x a write without it. `layer /
//! rusqlite_outbox` is the layer's own cost for the same writes; `layer / rusqlite` is the
//! layer and the outbox together against a bare write.
//!
//! Each group builds two database files the same way, through the `Store` API: WAL,
//! `synchronous=NORMAL`, foreign keys on, two tenants with 10,000 products apiece (so the
//! tenant filter matters), then closes them. The layer reopens one with `Store::open`; the
//! baseline opens the other with [`pos_tenancy::vfs::open`] (the VFS a store writes through)
//! and the same pragmas, the store's checkpoint cap ([`pos_tenancy::WAL_AUTOCHECKPOINT`])
//! and its background checkpoint ([`pos_tenancy::BackgroundCheckpoint`]) included.
//!
//! Before each side of `insert` both files are synced to disk. Otherwise the operating system
//! still holds the freshly built files in its cache, and the first checkpoint's sync of either
//! file writes all of it out, inside whichever side happens to checkpoint it first.
//!
//! Only one side's connection is open while that side is measured. rusqlite's bundled SQLite
//! is built with `SQLITE_ENABLE_MEMORY_MANAGEMENT`, so all connections of a process share one
//! page-cache pool. With both connections open, one of them missed its cache on nearly every
//! read (about 2.5 page reads per lookup against 0.1), and which one depended on what had run
//! before: the same point read measured 4.5 or 6.8 µs. That cost belongs to neither side.

use std::cell::Cell;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, Criterion};
use pos_tenancy::catalog::Product;
use pos_tenancy::ClockState;
use pos_tenancy::{
    Actor, ListQuery, NewTenant, RowId, Store, Tenant, TenantAccess, TenantId, Timestamp,
};
use pos_tenancy::{BackgroundCheckpoint, CHECKPOINT_INTERVAL};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tempfile::TempDir;

/// Products preloaded per tenant.
const PRELOAD: usize = 10_000;
/// Rows per list page.
const PAGE: usize = 50;

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
    /// Numbers products. Reset for each file, so both files preload the same text and have the
    /// same layout; the inserts of a benchmark continue from there.
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
        name: format!("Oil filter {n:08}"),
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
/// [`PRELOAD`] products, and closes it. Returns `caps`'s admin user and product ids in id order.
fn populate(path: &Path) -> (RowId, Vec<RowId>) {
    let store = Store::open(path).expect("store opens");
    COUNTER.with(|c| c.set(0));
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
            caps = Some((admin.user_id(), ids));
        }
    }
    let (admin, mut ids) = caps.expect("caps was populated");
    ids.sort();
    (admin, ids)
}

/// The two files of a group: one for the layer, one for the baseline.
struct Files {
    _dir: TempDir,
    layer: PathBuf,
    layer_admin: RowId,
    layer_ids: Vec<RowId>,
    baseline: PathBuf,
    baseline_ids: Vec<RowId>,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let layer = dir.path().join("layer.db");
        let (layer_admin, layer_ids) = populate(&layer);
        let baseline = dir.path().join("baseline.db");
        let (_, baseline_ids) = populate(&baseline);
        Self {
            _dir: dir,
            layer,
            layer_admin,
            layer_ids,
            baseline,
            baseline_ids,
        }
    }

    /// The layer's store and `caps`'s admin as an actor.
    fn open_layer(&self) -> (Store, Actor) {
        let store = Store::open(&self.layer).expect("layer store opens");
        let admin = store
            .tenant(&caps())
            .expect("tenant handle")
            .actor(self.layer_admin)
            .expect("admin actor");
        (store, admin)
    }

    /// A raw connection to the baseline file, set up as `Store::open` sets its own (the
    /// background checkpoint included: keep the last value alive while measuring), `caps`'s
    /// admin user id and the node's id (the device id its operations carry).
    fn open_baseline(&self) -> (Connection, RowId, RowId, Option<BackgroundCheckpoint>) {
        let conn = pos_tenancy::vfs::open(&self.baseline).expect("baseline opens");
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .expect("WAL");
        conn.pragma_update(None, "synchronous", "NORMAL")
            .expect("synchronous=NORMAL");
        conn.pragma_update(None, "foreign_keys", true)
            .expect("foreign keys on");
        conn.pragma_update(None, "wal_autocheckpoint", pos_tenancy::WAL_AUTOCHECKPOINT)
            .expect("the store's checkpoint interval");
        let admin_id = conn
            .query_row(
                "SELECT id FROM users WHERE tenant_id = ?1 AND username = 'owner'",
                [caps()],
                |r| r.get(0),
            )
            .expect("baseline admin id");
        let node_id = conn
            .query_row("SELECT node_id FROM node_state", [], |r| r.get(0))
            .expect("baseline node id");
        let checkpoints = BackgroundCheckpoint::start(&self.baseline, CHECKPOINT_INTERVAL);
        (conn, admin_id, node_id, checkpoints)
    }

    /// Writes both files out of the operating system's cache (see the module notes).
    fn sync(&self) {
        for path in [&self.layer, &self.baseline] {
            std::fs::File::open(path)
                .and_then(|f| f.sync_all())
                .expect("database file synced");
        }
    }
}

fn tenant_of(store: &Store) -> Tenant<'_> {
    store.tenant(&caps()).expect("tenant handle")
}

/// Picks ids from `ids[..len]` in a fixed pseudo-random order (xorshift64), the same order on
/// both sides.
struct Picker<'a> {
    ids: &'a [RowId],
    len: u64,
    state: u64,
}

impl<'a> Picker<'a> {
    fn new(ids: &'a [RowId], len: usize) -> Self {
        Self {
            ids,
            len: len as u64,
            state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn next_id(&mut self) -> RowId {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.ids[(self.state % self.len) as usize]
    }
}

fn insert(c: &mut Criterion) {
    let files = Files::new();
    let mut group = c.benchmark_group("insert");

    {
        files.sync();
        let (store, admin) = files.open_layer();
        let tenant = tenant_of(&store);
        group.bench_function("layer", |b| {
            b.iter(|| {
                let p = new_product();
                tenant.insert(&admin, black_box(&p)).expect("layer insert");
            })
        });
    }

    // Issue 5's baseline: the business row and its audit row, nothing else.
    {
        files.sync();
        let (mut conn, admin_id, node_id, _checkpoints) = files.open_baseline();
        let node_id = node_id.to_string();
        let mut clock = BaselineClock::default();
        group.bench_function("rusqlite", |b| {
            b.iter(|| baseline_insert(&mut conn, &admin_id, &node_id, &mut clock, false))
        });
    }

    // The same writes as the layer: the row, its audit row and its outbox operation (with the
    // clock read that stamps it), so `layer / rusqlite_outbox` is the layer's own cost and
    // `layer / rusqlite` what the layer plus the outbox cost over a bare write.
    {
        files.sync();
        let (mut conn, admin_id, node_id, _checkpoints) = files.open_baseline();
        let node_id = node_id.to_string();
        let mut clock = BaselineClock::default();
        group.bench_function("rusqlite_outbox", |b| {
            b.iter(|| baseline_insert(&mut conn, &admin_id, &node_id, &mut clock, true))
        });
    }

    group.finish();
}

const OUTBOX_SQL: &str = "INSERT INTO pending_operations (id, tenant_id, device_id, hlc, \
     actor_user_id, table_name, row_id, kind, columns, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, 'products', ?6, 'insert', ?7, ?8)";

/// One product insert by hand: the row, its audit row and, with `outbox`, its operation.
fn baseline_insert(
    conn: &mut Connection,
    admin_id: &RowId,
    node_id: &str,
    clock: &mut BaselineClock,
    outbox: bool,
) {
    let tenant_id = caps();
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
            p.id
        ])
        .expect("insert audit row");
    if outbox {
        // The newest stamp is kept in memory while no other connection has committed, as the
        // store keeps it; otherwise it is read from the outbox.
        let data_version: i64 = tx
            .prepare_cached("PRAGMA data_version")
            .expect("prepare data_version")
            .query_row([], |r| r.get(0))
            .expect("read data_version");
        let newest = match clock.newest {
            Some(newest) if clock.data_version == data_version => newest,
            _ => tx
                .prepare_cached(
                    "SELECT hlc FROM pending_operations WHERE tenant_id = ?1 \
                     ORDER BY hlc DESC LIMIT 1",
                )
                .expect("prepare clock")
                .query_row([&tenant_id], |r| r.get::<_, String>(0))
                .optional()
                .expect("read clock")
                .map(|t| parse_clock(&t))
                .unwrap_or_default(),
        };
        let now = u64::try_from(Timestamp::now().as_millis()).expect("clock after 1970");
        let next = newest.tick(now).expect("tick");
        *clock = BaselineClock {
            data_version,
            newest: Some(next),
        };
        let columns = pos_tenancy::json_text(p).expect("product as JSON");
        tx.prepare_cached(OUTBOX_SQL)
            .expect("prepare outbox")
            .execute(params![
                RowId::new(),
                tenant_id,
                node_id,
                // The stored stamp: the clock part, the node being device_id.
                std::str::from_utf8(&stored_stamp(next)).expect("digits"),
                admin_id,
                p.id,
                columns,
                // Written when stamped, as the store writes it.
                std::str::from_utf8(&rfc3339_millis(now)).expect("digits")
            ])
            .expect("insert operation");
    }
    tx.commit().expect("COMMIT");
}

/// The hand-written clock: the newest stamp and `PRAGMA data_version` when it was known.
#[derive(Default)]
struct BaselineClock {
    data_version: i64,
    newest: Option<ClockState>,
}

/// A stamp's stored text, `MMMMMMMMMMMMMMMM.CCCCCC`, digit by digit.
fn stored_stamp(s: ClockState) -> [u8; 23] {
    let mut text = [b'.'; 23];
    let mut put = |range: std::ops::Range<usize>, mut v: u64| {
        for d in text[range].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0..16, s.millis);
    put(17..23, u64::from(s.counter));
    text
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` by hand, as the store writes an operation's `created_at`.
fn rfc3339_millis(ms: u64) -> [u8; 24] {
    let (days, ms_of_day) = (ms / 86_400_000, ms % 86_400_000);
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let mut t = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for d in t[at..at + width].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, ms_of_day / 3_600_000);
    put(14, 2, ms_of_day / 60_000 % 60);
    put(17, 2, ms_of_day / 1_000 % 60);
    put(20, 3, ms_of_day % 1_000);
    t
}

/// The clock part of a stored stamp, `MMMMMMMMMMMMMMMM.CCCCCC`.
fn parse_clock(text: &str) -> ClockState {
    let (millis, counter) = text.split_once('.').expect("stored stamp");
    ClockState {
        millis: millis.parse().expect("stamp millis"),
        counter: counter.parse().expect("stamp counter"),
    }
}

fn point_read(c: &mut Criterion) {
    let files = Files::new();
    let mut group = c.benchmark_group("point_read");

    {
        let (store, _) = files.open_layer();
        let tenant = tenant_of(&store);
        let mut ids = Picker::new(&files.layer_ids, files.layer_ids.len());
        group.bench_function("layer", |b| {
            b.iter(|| {
                let p: Option<Product> = tenant.get(black_box(ids.next_id())).expect("layer get");
                black_box(p.expect("row exists"))
            })
        });
    }

    {
        let (conn, _, _, _checkpoints) = files.open_baseline();
        let tenant_id = caps();
        let sql = format!("{SELECT_COLUMNS} WHERE tenant_id = ?1 AND id = ?2");
        let mut ids = Picker::new(&files.baseline_ids, files.baseline_ids.len());
        group.bench_function("rusqlite", |b| {
            b.iter(|| {
                let id = black_box(ids.next_id());
                let p = conn
                    .prepare_cached(&sql)
                    .expect("prepare get")
                    .query_row(params![tenant_id, id], product_from_row)
                    .expect("row exists");
                black_box(p)
            })
        });
    }

    group.finish();
}

fn list(c: &mut Criterion) {
    let files = Files::new();
    let mut group = c.benchmark_group("list");
    // Keys far enough from the end that every page is full and has a next page.
    let starts = PRELOAD - PAGE - 1;

    {
        let (store, _) = files.open_layer();
        let tenant = tenant_of(&store);
        let mut ids = Picker::new(&files.layer_ids, starts);
        group.bench_function("layer", |b| {
            b.iter(|| {
                let q = ListQuery::new()
                    .limit(PAGE as u32)
                    .after(black_box(ids.next_id()));
                let page = tenant.list::<Product>(&q).expect("layer list");
                assert_eq!(page.rows.len(), PAGE);
                black_box(page)
            })
        });
    }

    {
        let (conn, _, _, _checkpoints) = files.open_baseline();
        let tenant_id = caps();
        // The same keyset SQL the layer runs: one row more than a page, to know if there is
        // a next page.
        let sql = format!(
            "{SELECT_COLUMNS} WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT {}",
            PAGE + 1
        );
        let mut ids = Picker::new(&files.baseline_ids, starts);
        group.bench_function("rusqlite", |b| {
            b.iter(|| {
                let after = black_box(ids.next_id());
                let mut stmt = conn.prepare_cached(&sql).expect("prepare list");
                let mut rows = Vec::with_capacity(PAGE + 1);
                let mut cursor = stmt.query(params![tenant_id, after]).expect("list query");
                while let Some(row) = cursor.next().expect("list row") {
                    rows.push(product_from_row(row).expect("product"));
                }
                let next = if rows.len() > PAGE {
                    rows.truncate(PAGE);
                    rows.last().map(|p| p.id)
                } else {
                    None
                };
                assert_eq!(rows.len(), PAGE);
                black_box((rows, next))
            })
        });
    }

    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = insert, point_read, list
}
/// Without criterion: `POS_BENCH_INSERTS=<layer|rusqlite|rusqlite_outbox>:<count>` builds the
/// files of the `insert` group, then runs exactly `count` inserts of one side and exits. For
/// instruction counts, whose timing-free figures the wall clock of a shared machine cannot
/// give: `valgrind --tool=callgrind --toggle-collect='*insert_once*'` counts only the inserts,
/// and every side does the same number of them on the same fresh file.
fn main() {
    match std::env::var("POS_BENCH_INSERTS") {
        Ok(spec) => profile_inserts(&spec),
        Err(_) => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}

fn profile_inserts(spec: &str) {
    let (side, count) = spec
        .split_once(':')
        .and_then(|(side, n)| Some((side, n.parse::<usize>().ok()?)))
        .expect("POS_BENCH_INSERTS=<side>:<count>");
    let files = Files::new();
    files.sync();
    let start = std::time::Instant::now();
    match side {
        "layer" => {
            let (store, admin) = files.open_layer();
            let tenant = tenant_of(&store);
            for _ in 0..count {
                layer_insert_once(&tenant, &admin);
            }
        }
        "rusqlite" | "rusqlite_outbox" => {
            let (mut conn, admin_id, node_id, _checkpoints) = files.open_baseline();
            let node_id = node_id.to_string();
            let mut clock = BaselineClock::default();
            let outbox = side == "rusqlite_outbox";
            for _ in 0..count {
                baseline_insert_once(&mut conn, &admin_id, &node_id, &mut clock, outbox);
            }
        }
        other => panic!("no insert side {other:?}"),
    }
    let per = start.elapsed() / u32::try_from(count.max(1)).unwrap_or(u32::MAX);
    println!("{side}: {count} inserts, {per:?} each");
}

#[inline(never)]
fn layer_insert_once(tenant: &Tenant<'_>, admin: &Actor) {
    let p = new_product();
    tenant.insert(admin, black_box(&p)).expect("layer insert");
}

#[inline(never)]
fn baseline_insert_once(
    conn: &mut Connection,
    admin_id: &RowId,
    node_id: &str,
    clock: &mut BaselineClock,
    outbox: bool,
) {
    baseline_insert(conn, admin_id, node_id, clock, outbox)
}
