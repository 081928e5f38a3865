//! What a whole-node backup costs the till that keeps selling during it.
//!
//! A node database of `POS_BENCH_BACKUP_MB` (default 1,024) megabytes: a tenant with 200
//! products in stock, then audit rows of about 1 KB each written by hand (the audit log is what
//! grows without end on a real till). A writer thread checks out sales through
//! [`Pos::checkout`] (3 lines, cash) on its own [`Store`], one after another, and times each:
//!
//! * `without`: for as long as the backup will take (the previous phase's duration, at least
//!   5 s), no backup runs: the baseline.
//! * `during`: [`backup::create`] copies the file (the online backup API, 1 MiB a step) on
//!   another thread while the writer keeps selling.
//!
//! The phases alternate `POS_BENCH_BACKUP_RUNS` times (default 3: without, during, without,
//! during...), so drift of the machine falls on both. Printed per phase: checkouts, p50, p99 and
//! the slowest checkout, and the ratio of p99 during a backup to p99 without. Goal: at most 2x.
//!
//! The machine this runs on is shared: the CPU time of the process is printed beside each
//! phase, and the load average before and after.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{caps, env_count, load, process_cpu, product};
use pos_tenancy::backup::{self, CreateOptions};
use pos_tenancy::catalog::Product;
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::{NewTenant, RowId, Store, TenantAccess, Timestamp};
use rusqlite::params;

const PRODUCTS: usize = 200;

/// The node file: the tenant, its admin, the products in stock, then audit rows up to `mb`.
fn populate(path: &Path, mb: u64) -> (RowId, Vec<Product>) {
    let store = Store::open(path).expect("store opens");
    store
        .add_tenant(&NewTenant::new(caps(), "Caps Automotive"))
        .expect("tenant");
    let mut tenant = store.tenant(&caps()).expect("tenant handle");
    let admin = tenant.bootstrap_admin("owner", "Owner").expect("admin");
    let products: Vec<Product> = (0..PRODUCTS).map(product).collect();
    let tx = tenant.transaction().expect("transaction");
    for p in &products {
        tx.insert(&admin, p).expect("product");
        tx.receive_stock(&admin, p.id, "main", 1_000_000_000, Some(600))
            .expect("stock");
    }
    tx.commit().expect("commit");
    drop(tenant);
    drop(store);
    let conn = rusqlite::Connection::open(path).expect("raw connection");
    conn.pragma_update(None, "synchronous", "OFF")
        .expect("synchronous");
    let started = Instant::now();
    let rows_per_batch = 50_000i64;
    let mut batch = 0i64;
    loop {
        let size: i64 = conn
            .query_row(
                "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
                [],
                |r| r.get(0),
            )
            .expect("size");
        if size as u64 >= mb * 1024 * 1024 {
            break;
        }
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
             INSERT INTO audit_log (id, tenant_id, at, actor_user_id, action, table_name,
                                    row_id, detail)
             SELECT printf('fill-%012d', ?1 + i), 'caps', ?3, ?4, 'update', 'products',
                    printf('row-%012d', ?1 + i),
                    json_object('note', hex(randomblob(420)))
             FROM n",
            params![
                batch * rows_per_batch,
                rows_per_batch,
                Timestamp::now(),
                admin.user_id()
            ],
        )
        .expect("audit rows");
        batch += 1;
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    eprintln!(
        "fixture: {} MB in {:.1} s",
        std::fs::metadata(path).map(|m| m.len() >> 20).unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
    (admin.user_id(), products)
}

/// Checks out sales until `stop` is set; each checkout's latency.
fn sell_until(path: &Path, admin: RowId, products: &[Product], stop: &AtomicBool) -> Vec<Duration> {
    let store = Store::open(path).expect("writer opens");
    let tenant = store.tenant(&caps()).expect("tenant");
    let actor = tenant.actor(admin).expect("actor");
    let mut latencies = Vec::new();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let basket = [
            &products[n % PRODUCTS],
            &products[(n + 7) % PRODUCTS],
            &products[(n + 19) % PRODUCTS],
        ];
        let mut sale = Checkout::new();
        for p in basket {
            sale = sale.line(LineItem::product(p.id, 1_000));
        }
        let sale = sale.tender(Tender::Cash {
            tendered_minor: 1_000_000,
        });
        let started = Instant::now();
        tenant.checkout(&actor, &sale).expect("checkout");
        latencies.push(started.elapsed());
    }
    latencies
}

struct Phase {
    name: &'static str,
    latencies: Vec<Duration>,
    wall: Duration,
    cpu: Duration,
}

impl Phase {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(i).copied().unwrap_or_default()
    }

    fn print(&self) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "  {:<8} {:>6} checkouts in {:>6.2} s (cpu {:>6.2} s): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.name,
            self.latencies.len(),
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64(),
            ms(self.percentile(0.5)),
            ms(self.percentile(0.99)),
            ms(self.percentile(1.0)),
        );
    }
}

/// One phase: the writer sells for `length` (without) or while a backup runs (during).
fn phase(
    path: &Path,
    backups: &Path,
    admin: RowId,
    products: &Arc<Vec<Product>>,
    length: Option<Duration>,
) -> Phase {
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (path, products, stop) = (path.to_path_buf(), Arc::clone(products), Arc::clone(&stop));
        std::thread::spawn(move || sell_until(&path, admin, &products, &stop))
    };
    let cpu = process_cpu();
    let started = Instant::now();
    match length {
        Some(length) => std::thread::sleep(length),
        None => {
            let options = CreateOptions::default().without_prune();
            let report =
                backup::create(path, backups, &options, &mut |_| {}).expect("backup taken");
            let _ = std::fs::remove_file(&report.file.path);
            let _ = std::fs::remove_file(backup::checksum_path(&report.file.path));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let latencies = writer.join().expect("writer thread");
    Phase {
        name: if length.is_some() {
            "without"
        } else {
            "during"
        },
        latencies,
        wall: started.elapsed(),
        cpu: process_cpu().saturating_sub(cpu),
    }
}

fn main() {
    // `cargo test --benches` runs this with `--test`: the fixture is too big for that.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let mb = env_count("POS_BENCH_BACKUP_MB", 1024);
    let runs = env_count("POS_BENCH_BACKUP_RUNS", 3).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node.db");
    let backups = dir.path().join("backups");
    let (admin, products) = populate(&path, mb);
    let products = Arc::new(products);
    println!(
        "backup: a {} MB node backed up while a writer checks out sales, {runs} runs, load {} before",
        std::fs::metadata(&path).map(|m| m.len() >> 20).unwrap_or(0),
        load()
    );
    let mut without = Vec::new();
    let mut during = Vec::new();
    let mut length = Duration::from_secs(5);
    for _ in 0..runs {
        let base = phase(&path, &backups, admin, &products, Some(length));
        base.print();
        let copy = phase(&path, &backups, admin, &products, None);
        copy.print();
        length = copy.wall.max(Duration::from_secs(5));
        without.push(base);
        during.push(copy);
    }
    let merged = |phases: &[Phase], name| Phase {
        name,
        latencies: phases.iter().flat_map(|p| p.latencies.clone()).collect(),
        wall: phases.iter().map(|p| p.wall).sum(),
        cpu: phases.iter().map(|p| p.cpu).sum(),
    };
    let (w, d) = (merged(&without, "without"), merged(&during, "during"));
    println!("all runs, load {} after:", load());
    w.print();
    d.print();
    println!(
        "  p99 during a backup / p99 without: {:.2}x (goal: at most 2x)",
        d.percentile(0.99).as_secs_f64() / w.percentile(0.99).as_secs_f64()
    );
}
