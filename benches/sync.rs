//! What the sync engine costs, each figure against a baseline measured in the same run.
//!
//! Terminals are [`Store`] files; the central server is a [`SqliteCentral`] file reached through
//! [`DirectTransport`] (no HTTP: benches/central.rs measures that). The operations are real
//! ones, written through the POS flows and the handle and generated from a seeded ChaCha8
//! stream: per 100 units of work, 80 checkouts (a sale, 3 product lines with a stock row each
//! and one cash payment: 8 operations; one in four names a customer), 8 new customers, 7 price
//! changes and 5 stock receipts, about 6.6 operations a unit.
//!
//! * `converge`: 4 terminals, each with `POS_BENCH_SYNC_OPS` (default 10,000) offline
//!   operations over a catalog they all hold, converge: every terminal pushes, then every
//!   terminal pulls and merges the other three's. Baseline: the same pushes alone (`push`),
//!   from fresh copies of the same files, so `converge / push` is what applying the log on the
//!   other side costs. Each terminal changes the prices of its own quarter of the products, so
//!   the merge records no conflict and one round converges (a conflict is itself an operation
//!   and would need a second round).
//! * `bootstrap`: a new terminal pulls a tenant of `POS_BENCH_SYNC_TENANT_OPS` (default
//!   1,000,000) operations from the start. Baselines, each pulling the same pages from the same
//!   transport and writing a page a transaction: the rows inserted by hand with cached
//!   prepared statements on a file set up as a store sets up its own, every index in place
//!   (`rusqlite`: no audit row, no merge; the engine, which sets the secondary indexes aside
//!   for a join, now beats it), the same rows written through the handle (`handle`: the store's
//!   own insert, with the audit row and the outbox operation of every local write), and the
//!   pages read with nothing written (`pull_only`: what the transport and the JSON cost).
//!   Beside the replay, `engine from a snapshot`: the same new terminal joins from the
//!   tenant's snapshot, built first as `pos-central snapshot` builds it (its cost printed
//!   apart: the central server's work, done before a terminal asks), downloaded through the
//!   direct transport (bytes copied, SHA-256 checked, file synced) and copied in.
//!   Goal: at least 50,000 operations applied a second.
//! * `apply_one` (criterion): one small pull round on the terminal `bootstrap` filled (it holds
//!   every row of the tenant: in the full run a million, twice the goal's 500,000), after
//!   another terminal pushed one new customer (`customer`), one price change (`price`) or one
//!   checkout of 8 operations (`checkout_8`). Baselines: the same round with nothing new
//!   (`nothing_new`), and the store's own insert of one customer there (`handle_customer`).
//!   Goal: one operation under 5 ms.
//! * `push_rss`: a node with `POS_BENCH_SYNC_PENDING` (default 200,000) pending operations
//!   pushes them all, in a child process that reads its own peak resident set (`VmHWM`) before
//!   and after. The central store lives in the same process, so its memory counts too. Goal:
//!   peak under 64 MB.
//!
//! The machine these run on is shared, so beside the wall time each side prints the process's
//! CPU time (all its threads) and how long it waited for a core; operations a second are
//! given by both. A ratio by CPU time holds up when other work competes for the cores.
//!
//! Run one part: `POS_BENCH_SYNC=converge` (or `bootstrap`, `apply_one`, `push_rss`, comma
//! separated; `apply_one` needs `bootstrap`). `POS_BENCH_SYNC_RUNS` (default 3) sets how many
//! times each side of `converge` and `bootstrap` runs; the best and the median are printed.
//! `POS_BENCH_SYNC_CACHE=DIR` keeps the generated files in DIR across runs (generating a
//! million operations takes minutes). `POS_BENCH_SYNC_PAGE=N` pulls and pushes N operations a
//! page instead of the default 500 (measured: 1,000 a page applies a million no faster).
//!
//! Without timing: `POS_BENCH_SYNC_PROFILE=<bootstrap|snapshot|rusqlite|handle|converge|push>`
//! builds (or reuses, with the cache) the fixture and runs that side once, for instruction
//! counts: `valgrind --tool=callgrind --toggle-collect='*_once*'` counts only the side's work
//! (`snapshot` builds the snapshot untimed, as the central server would, then joins from it).

mod common;

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{caps, env_count, load, process_cpu, product};
use criterion::Criterion;
use pos_tenancy::catalog::{self, ColumnKind, Customer, Product};
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::sync::{DirectTransport, SnapshotUse, SyncOptions, Syncer, Transport};
use pos_tenancy::{
    Actor, CentralStore, NewTenant, Operation, OperationKind, Plan, RowId, SqliteCentral, Store,
    TenantAccess, TenantSnapshots, Timestamp,
};
use pos_tenancy::{BackgroundCheckpoint, CHECKPOINT_INTERVAL};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::types::Value;
use rusqlite::{Connection, TransactionBehavior};

/// Products in the catalog every terminal starts with.
const PRODUCTS: usize = 500;
/// Customers in it.
const CUSTOMERS: usize = 200;
/// Terminals that converge.
const TERMINALS: usize = 4;
/// Bumped when the generated files change shape, so a cache is not reused wrongly.
const FIXTURE_VERSION: u32 = 1;

fn runs() -> usize {
    env_count("POS_BENCH_SYNC_RUNS", 3).max(1) as usize
}

fn wanted(part: &str) -> bool {
    match std::env::var("POS_BENCH_SYNC") {
        Ok(parts) => parts.split(',').any(|p| p.trim() == part),
        Err(_) => true,
    }
}

fn new_tenant() -> NewTenant {
    NewTenant::new(caps(), "Caps Automotive").plan(Plan::Enterprise)
}

/// A directory for generated files: the cache's `name` when `POS_BENCH_SYNC_CACHE` is set,
/// else a temporary one. `true` when it already holds a complete fixture.
fn fixture_dir(name: &str) -> (PathBuf, Option<tempfile::TempDir>, bool) {
    match std::env::var("POS_BENCH_SYNC_CACHE") {
        Ok(cache) => {
            let dir = Path::new(&cache).join(format!("{name}-v{FIXTURE_VERSION}"));
            let done = dir.join("done").exists();
            if !done {
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("cache dir");
            }
            (dir, None, done)
        }
        Err(_) => {
            let tmp = tempfile::tempdir().expect("temp dir");
            (tmp.path().to_path_buf(), Some(tmp), false)
        }
    }
}

/// Copies a closed store or central file (its WAL was checkpointed on close).
fn copy_db(from: &Path, to: &Path) {
    std::fs::copy(from, to).expect("copy database");
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", to.display()));
    }
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .expect("sync copy");
}

fn open_central(path: &Path) -> Arc<SqliteCentral> {
    Arc::new(SqliteCentral::open(path).expect("central store"))
}

fn options() -> SyncOptions {
    match std::env::var("POS_BENCH_SYNC_PAGE") {
        Ok(n) => SyncOptions::default().page_size(n.parse().expect("POS_BENCH_SYNC_PAGE")),
        Err(_) => SyncOptions::default(),
    }
}

fn push(store: &Store, transport: &DirectTransport<SqliteCentral>) -> usize {
    let options = options();
    Syncer::new(store, transport, &options)
        .push(&caps(), "token")
        .expect("push")
        .pushed
}

fn pull(store: &Store, transport: &DirectTransport<SqliteCentral>) -> usize {
    let options = options();
    Syncer::new(store, transport, &options)
        .pull(&caps(), "token")
        .expect("pull")
        .applied
}

fn pending(store: &Store) -> u64 {
    store.sync_status(&caps()).expect("status").pending
}

/// The catalog every terminal starts with.
#[derive(Clone)]
struct Catalog {
    admin: RowId,
    products: Vec<RowId>,
    customers: Vec<RowId>,
}

fn customer(code: String, rng: &mut ChaCha8Rng) -> Customer {
    const FIRST: [&str; 6] = ["Ana", "Ben", "Chen", "Dana", "Emeka", "Farah"];
    const LAST: [&str; 6] = ["Diaz", "Okafor", "Smith", "Nguyen", "Rossi", "Haddad"];
    let now = Timestamp::now();
    let first = FIRST[rng.random_range(0..FIRST.len())];
    let last = LAST[rng.random_range(0..LAST.len())];
    Customer {
        id: RowId::new(),
        email: Some(format!("{}@example.com", code.to_lowercase())),
        code,
        first_name: first.into(),
        last_name: last.into(),
        company: None,
        phone: Some(format!("+1 555 {:04}", rng.random_range(0..10_000))),
        price_level_id: None,
        tax_exempt: false,
        notes: None,
        created_at: now,
        updated_at: now,
    }
}

/// Makes the tenant's admin and catalog on `store` (plenty of stock of every product).
fn make_catalog(store: &Store) -> Catalog {
    let tenant = store.tenant(&caps()).expect("tenant");
    let admin = tenant.bootstrap_admin("owner", "Owner").expect("admin");
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut products = Vec::with_capacity(PRODUCTS);
    for n in 0..PRODUCTS {
        let p = product(n);
        tenant.insert(&admin, &p).expect("product");
        tenant
            .receive_stock(&admin, p.id, "main", 1_000_000_000, Some(600))
            .expect("stock");
        products.push(p.id);
    }
    let mut customers = Vec::with_capacity(CUSTOMERS);
    for n in 0..CUSTOMERS {
        let c = customer(format!("C-{n:06}"), &mut rng);
        tenant.insert(&admin, &c).expect("customer");
        customers.push(c.id);
    }
    Catalog {
        admin: admin.user_id(),
        products,
        customers,
    }
}

/// Writes units of work offline on one terminal, the same ones for the same seed.
struct Workload<'a> {
    admin: Actor,
    catalog: &'a Catalog,
    rng: ChaCha8Rng,
    /// This terminal's number and how many there are: it changes the prices of its own share
    /// of the products and numbers its customers apart from the others'.
    terminal: usize,
    terminals: usize,
    customers_made: usize,
    /// Operations one unit of each kind writes, learned from the outbox the first time.
    per_kind: [Option<u64>; 4],
}

impl<'a> Workload<'a> {
    fn new(store: &Store, catalog: &'a Catalog, terminal: usize, terminals: usize) -> Self {
        let admin = store
            .tenant(&caps())
            .expect("tenant")
            .actor(catalog.admin)
            .expect("admin");
        Self {
            admin,
            catalog,
            rng: ChaCha8Rng::seed_from_u64(1 + terminal as u64),
            terminal,
            terminals,
            customers_made: 0,
            per_kind: [None; 4],
        }
    }

    /// One unit of work; returns the operations it wrote.
    fn unit(&mut self, store: &Store) -> u64 {
        let roll = self.rng.random_range(0..100u32);
        let kind = match roll {
            0..80 => 0,
            80..88 => 1,
            88..95 => 2,
            _ => 3,
        };
        let before = match self.per_kind[kind] {
            Some(_) => None,
            None => Some(pending(store)),
        };
        let tenant = store.tenant(&caps()).expect("tenant");
        let products = &self.catalog.products;
        match kind {
            0 => {
                let mut sale = Checkout::new();
                for _ in 0..3 {
                    let p = products[self.rng.random_range(0..products.len())];
                    let qty = 1_000 * self.rng.random_range(1..=3);
                    sale = sale.line(LineItem::product(p, qty));
                }
                if self.rng.random_range(0..4) == 0 {
                    let c = &self.catalog.customers;
                    sale = sale.customer(c[self.rng.random_range(0..c.len())]);
                }
                let sale = sale.tender(Tender::Cash {
                    tendered_minor: 10_000_000,
                });
                tenant.checkout(&self.admin, &sale).expect("checkout");
            }
            1 => {
                self.customers_made += 1;
                let code = format!("T{}-{:07}", self.terminal, self.customers_made);
                let c = customer(code, &mut self.rng);
                tenant.insert(&self.admin, &c).expect("customer");
            }
            2 => {
                let share = products.len() / self.terminals;
                let i = self.rng.random_range(0..share) * self.terminals + self.terminal;
                let mut p: Product = tenant.fetch(products[i]).expect("product");
                p.price_minor = 1_000 + self.rng.random_range(0..5_000);
                p.updated_at = Timestamp::now();
                tenant.update(&self.admin, &p).expect("price");
            }
            _ => {
                let p = products[self.rng.random_range(0..products.len())];
                let qty = 1_000 * self.rng.random_range(1..=50);
                tenant
                    .receive_stock(&self.admin, p, "main", qty, Some(600))
                    .expect("receive");
            }
        }
        if let Some(before) = before {
            self.per_kind[kind] = Some(pending(store) - before);
        }
        self.per_kind[kind].unwrap_or(0)
    }

    /// Units until at least `ops` operations are written; returns how many were.
    fn run(&mut self, store: &Store, ops: u64) -> u64 {
        let mut written = 0;
        while written < ops {
            written += self.unit(store);
        }
        written
    }
}

/// Where a section's time went, for a shared machine whose wall clock alone misleads: the
/// process's CPU time (every thread: the background checkpoint's too) and the time the
/// calling thread spent ready to run but waiting for a core.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    wall: Duration,
    cpu: Duration,
    queued: Duration,
}

impl Usage {
    fn now() -> (Instant, Duration, Duration) {
        (Instant::now(), process_cpu(), run_queue_wait())
    }

    fn since((at, cpu, queued): (Instant, Duration, Duration)) -> Self {
        Usage {
            wall: at.elapsed(),
            cpu: process_cpu().saturating_sub(cpu),
            queued: run_queue_wait().saturating_sub(queued),
        }
    }

    fn describe(&self) -> String {
        format!(
            "wall {:.2} s, cpu {:.2} s, waiting for a core {:.2} s",
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64(),
            self.queued.as_secs_f64()
        )
    }
}

/// Time the calling thread spent runnable but not running (`/proc/thread-self/schedstat`).
fn run_queue_wait() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// Prints one side's runs: the best and the median wall time, the median run's CPU time and
/// wait for a core, operations a second by each, and the ratios to `baseline` (median wall,
/// median CPU) when given. Returns the median run.
fn summary(name: &str, runs: &mut [Usage], ops: u64, baseline: Option<Usage>) -> Usage {
    runs.sort_by_key(|u| u.wall);
    let median = runs[runs.len() / 2];
    let ratio = baseline.map_or(String::new(), |b| {
        format!(
            "; {:.2}x the baseline (wall), {:.2}x (cpu)",
            median.wall.as_secs_f64() / b.wall.as_secs_f64(),
            median.cpu.as_secs_f64() / b.cpu.as_secs_f64()
        )
    });
    println!(
        "  {name:<18} best {:.2} s, median {}; {:.0} ops/s (wall), {:.0} ops/s (cpu){ratio}",
        runs[0].wall.as_secs_f64(),
        median.describe(),
        per_second(ops, median.wall),
        per_second(ops, median.cpu),
    );
    median
}

fn per_second(n: u64, t: Duration) -> f64 {
    n as f64 / t.as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// converge

struct ConvergeFixture {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    ops: Vec<u64>,
}

impl ConvergeFixture {
    fn central(&self) -> PathBuf {
        self.dir.join("central.db")
    }
    fn terminal(&self, i: usize) -> PathBuf {
        self.dir.join(format!("t{i}.db"))
    }
}

fn converge_fixture(per_terminal: u64) -> ConvergeFixture {
    let (dir, tmp, done) = fixture_dir(&format!("converge-{per_terminal}"));
    let fixture = ConvergeFixture {
        dir,
        _tmp: tmp,
        ops: Vec::new(),
    };
    if done {
        let ops = std::fs::read_to_string(fixture.dir.join("done")).expect("done");
        let ops = ops.split_whitespace().map(|n| n.parse().expect("count"));
        return ConvergeFixture {
            ops: ops.collect(),
            ..fixture
        };
    }
    let started = Instant::now();
    let central = open_central(&fixture.central());
    central.add_tenant(&new_tenant()).expect("tenant");
    let transport = DirectTransport::new(Arc::clone(&central));
    let stores: Vec<Store> = (0..TERMINALS)
        .map(|i| {
            let s = Store::open(fixture.terminal(i)).expect("terminal");
            s.add_tenant(&new_tenant()).expect("tenant");
            s
        })
        .collect();
    let catalog = make_catalog(&stores[0]);
    push(&stores[0], &transport);
    for s in &stores[1..] {
        pull(s, &transport);
    }
    let ops: Vec<u64> = stores
        .iter()
        .enumerate()
        .map(|(i, s)| Workload::new(s, &catalog, i, TERMINALS).run(s, per_terminal))
        .collect();
    for (i, s) in stores.iter().enumerate() {
        assert_eq!(pending(s), ops[i], "terminal {i}'s outbox");
    }
    drop(stores);
    drop(transport);
    drop(central);
    let text: Vec<String> = ops.iter().map(u64::to_string).collect();
    std::fs::write(fixture.dir.join("done"), text.join(" ")).expect("done");
    eprintln!(
        "converge fixture: {ops:?} offline operations made in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    ConvergeFixture { ops, ..fixture }
}

/// Fresh copies of the fixture's files in `into`: the central store and the terminals.
fn converge_copy(f: &ConvergeFixture, into: &Path) -> (Arc<SqliteCentral>, Vec<Store>) {
    copy_db(&f.central(), &into.join("central.db"));
    for i in 0..TERMINALS {
        copy_db(&f.terminal(i), &into.join(format!("t{i}.db")));
    }
    let central = open_central(&into.join("central.db"));
    let stores = (0..TERMINALS)
        .map(|i| Store::open(into.join(format!("t{i}.db"))).expect("terminal"))
        .collect();
    (central, stores)
}

#[inline(never)]
fn converge_push_once(stores: &[Store], transport: &DirectTransport<SqliteCentral>) -> usize {
    stores.iter().map(|s| push(s, transport)).sum()
}

#[inline(never)]
fn converge_pull_once(stores: &[Store], transport: &DirectTransport<SqliteCentral>) -> usize {
    stores.iter().map(|s| pull(s, transport)).sum()
}

/// One run of one side on fresh copies; returns (push, pull, applied).
fn converge_run(f: &ConvergeFixture, apply: bool, check: bool) -> (Usage, Usage, usize) {
    let run = tempfile::tempdir_in(&f.dir).expect("run dir");
    let (central, stores) = converge_copy(f, run.path());
    let transport = DirectTransport::new(Arc::clone(&central));
    let started = Usage::now();
    let pushed = converge_push_once(&stores, &transport);
    let pushing = Usage::since(started);
    assert_eq!(
        pushed as u64,
        f.ops.iter().sum::<u64>(),
        "every operation pushed"
    );
    if !apply {
        return (pushing, Usage::default(), 0);
    }
    let started = Usage::now();
    let applied = converge_pull_once(&stores, &transport);
    let pulling = Usage::since(started);
    if check {
        let sales: Vec<i64> = stores
            .iter()
            .map(|s| {
                let st = s.sync_status(&caps()).expect("status");
                assert_eq!(st.pending, 0);
                assert_eq!(st.cursor, st.server_high, "applied to the head");
                assert_eq!(st.open_conflicts, 0, "no conflict in this workload");
                let rows = s
                    .tenant(&caps())
                    .expect("tenant")
                    .query("SELECT count(*) AS n FROM sales")
                    .expect("count");
                rows.rows[0][0].as_i64().expect("count")
            })
            .collect();
        assert!(sales.windows(2).all(|w| w[0] == w[1]), "sales {sales:?}");
    }
    (pushing, pulling, applied)
}

fn converge() {
    let per_terminal = env_count("POS_BENCH_SYNC_OPS", 10_000);
    let f = converge_fixture(per_terminal);
    let total: u64 = f.ops.iter().sum();
    let mut base = Vec::new();
    let mut full = Vec::new();
    let mut pulls = Vec::new();
    let mut applied = 0;
    let load_before = load();
    for r in 0..runs() {
        // Alternate which side goes first, so neither always meets a warmer cache.
        for apply in if r % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        } {
            let (pushing, pulling, n) = converge_run(&f, apply, r == 0);
            if apply {
                full.push(Usage {
                    wall: pushing.wall + pulling.wall,
                    cpu: pushing.cpu + pulling.cpu,
                    queued: pushing.queued + pulling.queued,
                });
                pulls.push(pulling);
                applied = n;
            } else {
                base.push(pushing);
            }
        }
    }
    println!(
        "converge: {TERMINALS} terminals x {per_terminal} offline operations ({total} in all), \
         {} runs, load {load_before} before, {} after",
        runs(),
        load()
    );
    let base = summary("push (baseline)", &mut base, total, None);
    summary("converge", &mut full, total, Some(base));
    println!("  of which the pulls, {applied} operations applied:");
    summary("pull", &mut pulls, applied as u64, None);
}

// ---------------------------------------------------------------------------------------------
// bootstrap, apply_one, push_rss

struct TenantFixture {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// Operations in the central log.
    ops: u64,
    /// Pending operations in the push fixture.
    pending: u64,
    catalog: Catalog,
}

impl TenantFixture {
    /// The central store holding the tenant's log.
    fn central(&self) -> PathBuf {
        self.dir.join("central.db")
    }
    /// The terminal that wrote the log (synced: nothing pending).
    fn writer(&self) -> PathBuf {
        self.dir.join("writer.db")
    }
    /// The writer when it had `pending` operations waiting.
    fn pending_node(&self) -> PathBuf {
        self.dir.join("pending.db")
    }
    /// A central store with the tenant and no operation.
    fn empty_central(&self) -> PathBuf {
        self.dir.join("empty-central.db")
    }
}

fn tenant_fixture(ops: u64, pending_ops: u64) -> TenantFixture {
    let (dir, tmp, done) = fixture_dir(&format!("tenant-{ops}-{pending_ops}"));
    let meta = dir.join("done");
    if done {
        let text = std::fs::read_to_string(&meta).expect("done");
        let v: serde_json::Value = serde_json::from_str(&text).expect("meta");
        let ids = |k: &str| -> Vec<RowId> {
            v[k].as_array()
                .expect("ids")
                .iter()
                .map(|s| s.as_str().expect("id").parse().expect("id"))
                .collect()
        };
        return TenantFixture {
            dir,
            _tmp: tmp,
            ops: v["ops"].as_u64().expect("ops"),
            pending: v["pending"].as_u64().expect("pending"),
            catalog: Catalog {
                admin: v["admin"].as_str().expect("admin").parse().expect("admin"),
                products: ids("products"),
                customers: ids("customers"),
            },
        };
    }
    let started = Instant::now();
    {
        let empty = SqliteCentral::open(dir.join("empty-central.db")).expect("central");
        empty.add_tenant(&new_tenant()).expect("tenant");
    }
    let writer_path = dir.join("writer.db");
    let store = Store::open(&writer_path).expect("writer");
    store.add_tenant(&new_tenant()).expect("tenant");
    let catalog = make_catalog(&store);
    let mut work = Workload::new(&store, &catalog, 0, 1);
    let mut written = pending(&store);
    let mut generate = |store: &Store, written: &mut u64, target: u64| {
        while *written < target {
            *written += work.unit(store);
            if *written % 100_000 < 8 {
                eprintln!(
                    "  {written} operations written ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        }
    };
    generate(&store, &mut written, pending_ops);
    // The node with `pending_ops` operations waiting: closed, copied, reopened.
    drop(store);
    copy_db(&writer_path, &dir.join("pending.db"));
    let snapshot = written;
    let store = Store::open(&writer_path).expect("writer");
    generate(&store, &mut written, ops);
    let total = pending(&store);
    assert_eq!(total, written);
    eprintln!(
        "tenant fixture: {total} operations written in {:.1} s; pushing them",
        started.elapsed().as_secs_f64()
    );
    let central = open_central(&dir.join("central.db"));
    central.add_tenant(&new_tenant()).expect("tenant");
    let transport = DirectTransport::new(Arc::clone(&central));
    let pushing = Instant::now();
    let pushed = push(&store, &transport);
    let pushing = pushing.elapsed();
    assert_eq!(pushed as u64, total);
    eprintln!(
        "tenant fixture: {total} operations pushed in {:.1} s ({:.0}/s)",
        pushing.as_secs_f64(),
        per_second(total, pushing)
    );
    drop(store);
    drop(transport);
    drop(central);
    let pending_count = snapshot;
    let meta_json = serde_json::json!({
        "ops": total,
        "pending": pending_count,
        "admin": catalog.admin.to_string(),
        "products": catalog.products.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "customers": catalog.customers.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    });
    std::fs::write(&meta, meta_json.to_string()).expect("done");
    TenantFixture {
        dir,
        _tmp: tmp,
        ops: total,
        pending: pending_count,
        catalog,
    }
}

/// A new terminal's file: the schema and the tenant, nothing of its data.
fn new_terminal(path: &Path) -> Store {
    let s = Store::open(path).expect("terminal");
    s.add_tenant(&new_tenant()).expect("tenant");
    s
}

#[inline(never)]
fn bootstrap_once(store: &Store, transport: &DirectTransport<SqliteCentral>) -> usize {
    pull(store, transport)
}

/// A new terminal joining from the snapshot: the download (the bytes copied, their SHA-256
/// checked and the file synced, what the HTTP client does short of the socket), the copy, the
/// index build, and the log after the snapshot (none here). Returns the operations the
/// snapshot holds.
#[inline(never)]
fn snapshot_once(store: &Store, transport: &DirectTransport<SqliteCentral>) -> usize {
    let options = options().snapshot_from(Some(1));
    let report = Syncer::new(store, transport, &options)
        .pull(&caps(), "token")
        .expect("pull");
    match report.snapshot {
        Some(SnapshotUse::Taken { cursor, .. }) => cursor as usize + report.applied,
        other => panic!("the snapshot was not taken: {other:?}"),
    }
}

/// The central store serving the tenant's snapshot, built as `pos-central snapshot` builds it
/// (a shadow node replays the log, then exports the tenant); the build is the central
/// server's work, done before a terminal asks, so it is printed but not timed with the join.
fn snapshot_transport(central: &Arc<SqliteCentral>, dir: &Path) -> DirectTransport<SqliteCentral> {
    let snapshots = TenantSnapshots::new(dir.join("snapshots"));
    let started = Usage::now();
    let info = snapshots
        .build(Arc::clone(central), &caps())
        .expect("snapshot built");
    eprintln!(
        "  snapshot: up to {}, {} MB, built by the central server in {} (not timed with the join)",
        info.cursor,
        info.bytes / 1_000_000,
        Usage::since(started).describe()
    );
    DirectTransport::new(Arc::clone(central)).with_snapshots(snapshots)
}

/// By hand: the same pages from the same transport, their rows inserted with every index in
/// place.
#[inline(never)]
fn rusqlite_once(conn: &Connection, transport: &DirectTransport<SqliteCentral>) -> usize {
    let mut sql: HashMap<(String, OperationKind, Vec<bool>), String> = HashMap::new();
    let mut after = 0;
    let mut written = 0;
    loop {
        let page = transport.pull(&caps(), "token", after, 500).expect("page");
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .expect("transaction");
        for sop in &page.operations {
            write_by_hand(&tx, &mut sql, &sop.operation);
            written += 1;
            after = sop.seq;
        }
        tx.commit().expect("commit");
        if page.operations.is_empty() || after >= page.high {
            return written;
        }
    }
}

/// The store's own write of the same rows: the same pages, each written through the handle in
/// one transaction ([`TenantAccess::insert_json`], a price change as [`TenantAccess::update`]),
/// by an admin of this terminal, with the audit row and the outbox operation every local write
/// makes. The log's own users are written like any row. Rows of tables only the POS flows write
/// (`Access::Internal`: the checkouts' payments) cannot go through generic CRUD and are left
/// out; the figure is per operation written. Returns the operations written and those left out.
#[inline(never)]
fn handle_once(store: &Store, transport: &DirectTransport<SqliteCentral>) -> (usize, usize) {
    let mut tenant = store.tenant(&caps()).expect("tenant");
    let admin = tenant
        .bootstrap_admin("bench-admin", "Bench admin")
        .expect("admin");
    let mut after = 0;
    let mut written = 0;
    let mut left_out = 0;
    loop {
        let page = transport.pull(&caps(), "token", after, 500).expect("page");
        let tx = tenant.transaction().expect("transaction");
        for sop in &page.operations {
            let op = &sop.operation;
            after = sop.seq;
            if catalog::table(&op.table).is_some_and(|t| t.access == catalog::Access::Internal) {
                left_out += 1;
                continue;
            }
            match op.kind {
                OperationKind::Insert | OperationKind::LedgerAppend => {
                    let mut row = op.columns.clone();
                    row.insert("id".into(), serde_json::json!(op.row_id));
                    tx.insert_json(&admin, &op.table, serde_json::Value::Object(row))
                        .expect("insert through the handle");
                }
                OperationKind::Update if op.table == "products" => {
                    let p: Product = tx.fetch(op.row_id).expect("product");
                    let mut row = match serde_json::to_value(&p).expect("product json") {
                        serde_json::Value::Object(row) => row,
                        _ => unreachable!("a record is an object"),
                    };
                    row.extend(op.columns.clone());
                    let p: Product =
                        serde_json::from_value(serde_json::Value::Object(row)).expect("product");
                    tx.update(&admin, &p).expect("update through the handle");
                }
                other => panic!("the workload writes no {other} of {}", op.table),
            }
            written += 1;
        }
        tx.commit().expect("commit");
        if page.operations.is_empty() || after >= page.high {
            return (written, left_out);
        }
    }
}

#[inline(never)]
fn pull_only_once(transport: &DirectTransport<SqliteCentral>) -> usize {
    let mut after = 0;
    let mut read = 0;
    loop {
        let page = transport.pull(&caps(), "token", after, 500).expect("page");
        read += page.operations.len();
        if let Some(last) = page.operations.last() {
            after = last.seq;
        }
        black_box(&page);
        if page.operations.is_empty() || after >= page.high {
            return read;
        }
    }
}

fn sql_value(kind: ColumnKind, v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match (kind, v) {
        (_, J::Null) => Value::Null,
        (_, J::Bool(b)) => Value::Integer(i64::from(*b)),
        (_, J::Number(n)) => n.as_i64().map_or(Value::Null, Value::Integer),
        (ColumnKind::Json, v) => Value::Text(v.to_string()),
        (_, J::String(s)) => Value::Text(s.clone()),
        (_, other) => Value::Text(other.to_string()),
    }
}

fn write_by_hand(
    conn: &Connection,
    sql: &mut HashMap<(String, OperationKind, Vec<bool>), String>,
    op: &Operation,
) {
    let table = catalog::table(&op.table).expect("catalog table");
    let present: Vec<bool> = table
        .columns
        .iter()
        .map(|c| op.columns.contains_key(c.name))
        .collect();
    let text = sql
        .entry((op.table.clone(), op.kind, present.clone()))
        .or_insert_with(|| {
            let cols: Vec<&str> = table
                .columns
                .iter()
                .zip(&present)
                .filter(|(_, p)| **p)
                .map(|(c, _)| c.name)
                .collect();
            match op.kind {
                OperationKind::Insert | OperationKind::LedgerAppend => {
                    let marks: Vec<String> = (3..cols.len() + 3).map(|i| format!("?{i}")).collect();
                    format!(
                        "INSERT INTO {} (id, tenant_id{}{}) VALUES (?1, ?2{}{})",
                        table.name,
                        if cols.is_empty() { "" } else { ", " },
                        cols.join(", "),
                        if cols.is_empty() { "" } else { ", " },
                        marks.join(", ")
                    )
                }
                OperationKind::Update => {
                    let sets: Vec<String> = cols
                        .iter()
                        .enumerate()
                        .map(|(i, c)| format!("{c} = ?{}", i + 3))
                        .collect();
                    format!(
                        "UPDATE {} SET {} WHERE id = ?1 AND tenant_id = ?2",
                        table.name,
                        sets.join(", ")
                    )
                }
                _ => format!(
                    "DELETE FROM {} WHERE id = ?1 AND tenant_id = ?2",
                    table.name
                ),
            }
        });
    let mut stmt = conn.prepare_cached(text).expect("prepare");
    stmt.raw_bind_parameter(1, op.row_id).expect("bind");
    stmt.raw_bind_parameter(2, &op.tenant_id).expect("bind");
    let mut i = 3;
    for c in table.columns {
        if let Some(v) = op.columns.get(c.name) {
            stmt.raw_bind_parameter(i, sql_value(c.kind, v))
                .expect("bind");
            i += 1;
        }
    }
    stmt.raw_execute().expect("write by hand");
}

/// A raw connection set up as a store sets up its own (see benches/pos.rs).
fn open_raw(path: &Path) -> Connection {
    let conn = pos_tenancy::vfs::open(path).expect("raw connection");
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

/// Bootstraps the tenant `runs` times each way; returns the last terminal the engine filled.
fn bootstrap(f: &TenantFixture, work: &Path) -> PathBuf {
    let central = open_central(&f.central());
    let transport = DirectTransport::new(Arc::clone(&central));
    let mut engine = Vec::new();
    let mut hand = Vec::new();
    let mut handled = Vec::new();
    let mut handle_ops = 0;
    let mut read = Vec::new();
    let mut snapshotted = Vec::new();
    let snapshot = snapshot_transport(&central, work);
    let mut last = PathBuf::new();
    let load_before = load();
    for r in 0..runs() {
        // The engine.
        let path = work.join(format!("bootstrap-{r}.db"));
        let store = new_terminal(&path);
        let started = Usage::now();
        let applied = bootstrap_once(&store, &transport);
        engine.push(Usage::since(started));
        assert_eq!(applied as u64, f.ops, "every operation applied");
        if r == 0 {
            let st = store.sync_status(&caps()).expect("status");
            assert_eq!(st.cursor, f.ops, "the whole log applied");
            assert_eq!(st.open_conflicts, 0);
        }
        drop(store);
        if !last.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&last);
        }
        last = path;
        // The engine, from the snapshot.
        {
            let path = work.join(format!("snapshot-{r}.db"));
            let store = new_terminal(&path);
            let started = Usage::now();
            let n = snapshot_once(&store, &snapshot);
            snapshotted.push(Usage::since(started));
            assert_eq!(n as u64, f.ops, "the snapshot holds the whole log");
            drop(store);
            let _ = std::fs::remove_file(&path);
        }
        // By hand.
        let path = work.join(format!("rusqlite-{r}.db"));
        drop(new_terminal(&path));
        {
            let conn = open_raw(&path);
            let _checkpoints = BackgroundCheckpoint::start(&path, CHECKPOINT_INTERVAL);
            let started = Usage::now();
            let n = rusqlite_once(&conn, &transport);
            hand.push(Usage::since(started));
            assert_eq!(n as u64, f.ops);
        }
        let _ = std::fs::remove_file(&path);
        // The store's own writes.
        let path = work.join(format!("handle-{r}.db"));
        {
            let store = new_terminal(&path);
            let started = Usage::now();
            let (n, left_out) = handle_once(&store, &transport);
            handled.push(Usage::since(started));
            assert_eq!((n + left_out) as u64, f.ops);
            handle_ops = n as u64;
        }
        let _ = std::fs::remove_file(&path);
        // The transport alone.
        let started = Usage::now();
        let n = pull_only_once(&transport);
        read.push(Usage::since(started));
        assert_eq!(n as u64, f.ops);
    }
    println!(
        "bootstrap: a new terminal pulls {} operations, {} runs, load {load_before} before, {} after",
        f.ops,
        runs(),
        load()
    );
    let floor = summary("rusqlite (by hand)", &mut hand, f.ops, None);
    summary("pull_only", &mut read, f.ops, Some(floor));
    println!(
        "  (the handle writes {handle_ops} of them: the flows' own money rows cannot go through CRUD)"
    );
    let handle = summary("handle", &mut handled, handle_ops, None);
    let e = summary("engine", &mut engine, f.ops, Some(floor));
    let snap = summary("engine from a snapshot", &mut snapshotted, f.ops, Some(e));
    // Per operation: the handle writes fewer of them.
    let per_op = |u: Duration, n: u64| u.as_secs_f64() / n as f64;
    println!(
        "  engine against the handle, per operation: {:.2}x (wall), {:.2}x (cpu)",
        per_op(e.wall, f.ops) / per_op(handle.wall, handle_ops),
        per_op(e.cpu, f.ops) / per_op(handle.cpu, handle_ops)
    );
    println!(
        "  engine from a snapshot against the handle, per operation: {:.3}x (wall), {:.3}x (cpu)",
        per_op(snap.wall, f.ops) / per_op(handle.wall, handle_ops),
        per_op(snap.cpu, f.ops) / per_op(handle.cpu, handle_ops)
    );
    last
}

fn apply_one(f: &TenantFixture, work: &Path, big: &Path, c: &mut Criterion) {
    // The writer and the log are copied: the new operations must not reach the fixture.
    copy_db(&f.central(), &work.join("central.db"));
    copy_db(&f.writer(), &work.join("writer.db"));
    let central = open_central(&work.join("central.db"));
    let transport = DirectTransport::new(Arc::clone(&central));
    let writer = Store::open(work.join("writer.db")).expect("writer");
    let store = Store::open(big).expect("terminal");
    let rows: i64 = store
        .tenant(&caps())
        .expect("tenant")
        .query(
            "SELECT (SELECT count(*) FROM sales) + (SELECT count(*) FROM sale_lines)
                  + (SELECT count(*) FROM sale_payments)
                  + (SELECT count(*) FROM inventory_transactions)
                  + (SELECT count(*) FROM customers) + (SELECT count(*) FROM products)",
        )
        .expect("count")
        .rows[0][0]
        .as_i64()
        .expect("count");
    println!(
        "apply_one: the terminal holds {rows} business rows (and an audit row each), load {}",
        load()
    );
    let wt = writer.tenant(&caps()).expect("tenant");
    let admin = wt.actor(f.catalog.admin).expect("admin");
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut made = 0usize;
    let mut group = c.benchmark_group("apply_one");
    let mut measure = |name: &str, write: &mut dyn FnMut(&mut ChaCha8Rng, usize)| {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    made += 1;
                    write(&mut rng, made);
                    push(&writer, &transport);
                    let started = Instant::now();
                    black_box(pull(&store, &transport));
                    total += started.elapsed();
                }
                total
            })
        });
    };
    measure("nothing_new", &mut |_, _| {});
    measure("customer", &mut |rng, n| {
        wt.insert(&admin, &customer(format!("N-{n:07}"), rng))
            .expect("customer");
    });
    measure("price", &mut |rng, _| {
        let products = &f.catalog.products;
        let mut p: Product = wt
            .fetch(products[rng.random_range(0..products.len())])
            .expect("product");
        p.price_minor = 1_000 + rng.random_range(0..5_000);
        wt.update(&admin, &p).expect("price");
    });
    measure("checkout_8", &mut |rng, _| {
        let products = &f.catalog.products;
        let mut sale = Checkout::new();
        for _ in 0..3 {
            sale = sale.line(LineItem::product(
                products[rng.random_range(0..products.len())],
                1_000,
            ));
        }
        wt.checkout(
            &admin,
            &sale.tender(Tender::Cash {
                tendered_minor: 10_000_000,
            }),
        )
        .expect("checkout");
    });
    // The baseline: the store's own insert of one customer on the same terminal (its row,
    // audit row and outbox operation, one transaction).
    let local = store.tenant(&caps()).expect("tenant");
    let local_admin = local.actor(f.catalog.admin).expect("admin");
    group.bench_function("handle_customer", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                made += 1;
                let c = customer(format!("H-{made:07}"), &mut rng);
                let started = Instant::now();
                local.insert(&local_admin, &c).expect("customer");
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();
    let conflicts = store.sync_status(&caps()).expect("status").open_conflicts;
    assert_eq!(conflicts, 0, "no conflict in this workload");
}

/// Pushes everything pending from a copy of the node with `pending` operations waiting, in a
/// child process, and reads its peak resident set.
fn push_rss(f: &TenantFixture, work: &Path) {
    let node = work.join("pending.db");
    let central = work.join("central.db");
    let mut results = Vec::new();
    for side in ["open", "push"] {
        copy_db(&f.pending_node(), &node);
        copy_db(&f.empty_central(), &central);
        let out = std::process::Command::new(std::env::current_exe().expect("exe"))
            .env(
                "POS_BENCH_SYNC_CHILD",
                format!("{side}:{}:{}", node.display(), central.display()),
            )
            .output()
            .expect("child runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        results.push((side, text.trim().to_owned()));
    }
    println!(
        "push_rss: a node with {} pending operations, load {}",
        f.pending,
        load()
    );
    for (side, text) in results {
        println!("  {side:<5} {text}");
    }
}

fn vm_hwm_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// The child of [`push_rss`]: `open` opens the node and the central store and counts what is
/// pending (the baseline); `push` also pushes it all.
fn child(spec: &str) {
    let mut parts = spec.splitn(3, ':');
    let (side, node, central) = (
        parts.next().expect("side"),
        parts.next().expect("node"),
        parts.next().expect("central"),
    );
    let store = Store::open(node).expect("node");
    let central = open_central(Path::new(central));
    let transport = DirectTransport::new(central);
    let waiting = pending(&store);
    let opened = vm_hwm_kb();
    let started = Instant::now();
    let pushed = if side == "push" {
        push_once(&store, &transport)
    } else {
        0
    };
    let took = started.elapsed();
    let peak = vm_hwm_kb();
    if side == "push" {
        assert_eq!(pushed as u64, waiting, "every pending operation pushed");
        assert_eq!(pending(&store), 0);
    }
    println!(
        "peak RSS {:.1} MB ({:.1} MB once open; {waiting} pending, {pushed} pushed in {:.2} s, \
         {:.0} ops/s)",
        peak as f64 / 1024.0,
        opened as f64 / 1024.0,
        took.as_secs_f64(),
        per_second(pushed as u64, took)
    );
}

#[inline(never)]
fn push_once(store: &Store, transport: &DirectTransport<SqliteCentral>) -> usize {
    push(store, transport)
}

fn profile(side: &str) {
    let started = Instant::now();
    match side {
        "converge" | "push" => {
            let f = converge_fixture(env_count("POS_BENCH_SYNC_OPS", 10_000));
            let (pushing, pulling, n) = converge_run(&f, side == "converge", false);
            eprintln!(
                "{side}: push {}; pull {}, {n} applied",
                pushing.describe(),
                pulling.describe()
            );
        }
        "bootstrap" | "rusqlite" | "handle" => {
            let f = tenant_fixture(
                env_count("POS_BENCH_SYNC_TENANT_OPS", 1_000_000),
                env_count("POS_BENCH_SYNC_PENDING", 200_000),
            );
            let work = tempfile::tempdir_in(&f.dir).expect("work dir");
            let path = work.path().join("profile.db");
            let store = new_terminal(&path);
            let transport = DirectTransport::new(open_central(&f.central()));
            let timed = Usage::now();
            let n = if side == "bootstrap" {
                bootstrap_once(&store, &transport)
            } else if side == "handle" {
                handle_once(&store, &transport).0
            } else {
                drop(store);
                let conn = open_raw(&path);
                let _checkpoints = BackgroundCheckpoint::start(&path, CHECKPOINT_INTERVAL);
                rusqlite_once(&conn, &transport)
            };
            eprintln!("{side}: {n} operations, {}", Usage::since(timed).describe());
        }
        "snapshot" => {
            let f = tenant_fixture(
                env_count("POS_BENCH_SYNC_TENANT_OPS", 1_000_000),
                env_count("POS_BENCH_SYNC_PENDING", 200_000),
            );
            let work = tempfile::tempdir_in(&f.dir).expect("work dir");
            let snap = snapshot_transport(&open_central(&f.central()), work.path());
            let store = new_terminal(&work.path().join("profile.db"));
            let timed = Usage::now();
            let n = snapshot_once(&store, &snap);
            eprintln!("{side}: {n} operations, {}", Usage::since(timed).describe());
        }
        other => panic!("POS_BENCH_SYNC_PROFILE: no side {other:?}"),
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
}

fn main() {
    if let Ok(spec) = std::env::var("POS_BENCH_SYNC_CHILD") {
        child(&spec);
        return;
    }
    if let Ok(side) = std::env::var("POS_BENCH_SYNC_PROFILE") {
        profile(&side);
        return;
    }
    let mut criterion = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .configure_from_args();
    if wanted("converge") {
        converge();
    }
    let tenant_parts = ["bootstrap", "apply_one", "push_rss"];
    if tenant_parts.iter().any(|p| wanted(p)) {
        let f = tenant_fixture(
            env_count("POS_BENCH_SYNC_TENANT_OPS", 1_000_000),
            env_count("POS_BENCH_SYNC_PENDING", 200_000),
        );
        let work = tempfile::tempdir_in(&f.dir).expect("work dir");
        if wanted("push_rss") {
            push_rss(&f, work.path());
        }
        if wanted("bootstrap") || wanted("apply_one") {
            let big = bootstrap(&f, work.path());
            if wanted("apply_one") {
                apply_one(&f, work.path(), &big, &mut criterion);
            }
        }
    }
    criterion.final_summary();
}
