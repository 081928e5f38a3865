//! A terminal process killed with SIGKILL while it sells: every sale it saw committed is in the
//! file after a restart, with its lines and its pending operations, the file is intact, and
//! nothing half-written is left.
//!
//! Commits reach the file through the store's VFS, which hands a commit's log frames to the
//! operating system in one write (see `pos_tenancy::vfs`), so this is also the proof that a
//! kill between buffering and writing loses only what was never reported committed.
//!
//! The test re-runs its own binary as the child (`POS_CRASH_CHILD_DB` set): the child opens
//! the store, rings up sales as fast as it can and prints each sale's id once `checkout` has
//! returned, until it is killed.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{product, tid};
use pos_tenancy::catalog::{Sale, SaleLine};
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::{ListQuery, NewTenant, RowId, Store, TenantAccess};
use rand::{Rng, SeedableRng};

const TEST: &str = "killed_terminals_keep_every_sale_they_committed";
const ROUNDS: u64 = 20;
const PRODUCTS: usize = 12;

fn child(db: &Path) -> ! {
    let run = || -> pos_tenancy::Result<()> {
        let store = Store::open(db)?;
        let t = store.tenant(&tid("caps"))?;
        let admin = common::first_admin(&t)?;
        let products = t.list::<pos_tenancy::catalog::Product>(&ListQuery::new().limit(100))?;
        let mut n = 0usize;
        loop {
            n += 1;
            let mut sale = Checkout::new();
            for k in 0..1 + n % 3 {
                let p = &products.rows[(n + k * 5) % products.rows.len()];
                sale = sale.line(LineItem::product(p.id, 1_000));
            }
            let receipt = t.checkout(
                &admin,
                &sale.tender(Tender::Cash {
                    tendered_minor: 1_000_000,
                }),
            )?;
            println!("{}", receipt.sale.id);
        }
    };
    match run() {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("child: {e}");
            std::process::exit(3)
        }
    }
}

#[test]
fn killed_terminals_keep_every_sale_they_committed() -> pos_tenancy::Result<()> {
    if let Some(db) = std::env::var_os("POS_CRASH_CHILD_DB") {
        child(Path::new(&db));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("till.db");
    {
        let store = Store::open(&db)?;
        store.add_tenant(&NewTenant::new(tid("caps"), "Caps"))?;
        let mut t = store.tenant(&tid("caps"))?;
        let admin = t.bootstrap_admin("owner", "Owner")?;
        let tx = t.transaction()?;
        for i in 0..PRODUCTS {
            let p = product(&format!("SKU-{i}"), 1_000 + i as i64 * 10);
            tx.insert(&admin, &p)?;
            tx.receive_stock(&admin, p.id, "main", 1_000_000_000, Some(500))?;
        }
        tx.commit()?;
    }
    let exe = std::env::current_exe().expect("test binary");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut committed: BTreeSet<RowId> = BTreeSet::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env("POS_CRASH_CHILD_DB", &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("child starts");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel::<RowId>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(id) = line.trim().parse::<RowId>() {
                    if tx.send(id).is_err() {
                        break;
                    }
                }
            }
        });
        // Kill after a random number of reported sales (0: possibly while it opens), each wait
        // bounded so a stuck child fails the test instead of hanging it.
        let wanted = rng.random_range(0..60u32);
        let mut seen = 0u32;
        while seen < wanted {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(id) => {
                    committed.insert(id);
                    seen += 1;
                }
                Err(_) => panic!("round {round}: the child stopped reporting sales"),
            }
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..3_000)));
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        // What it printed before dying was committed too.
        reader.join().expect("reader");
        committed.extend(rx.try_iter());
    }
    assert!(committed.len() > 100, "{} sales", committed.len());

    let store = Store::open(&db)?;
    let report = store.verify()?;
    assert!(report.is_ok(), "{report:?}");
    let t = store.tenant(&tid("caps"))?;
    for id in &committed {
        let sale: Sale = t.get(*id)?.unwrap_or_else(|| panic!("sale {id} was lost"));
        let lines = t.list::<SaleLine>(&ListQuery::new().filter(
            "sale_id",
            pos_tenancy::FilterOp::Eq,
            id.to_string(),
        ))?;
        assert!(!lines.rows.is_empty(), "sale {} has no lines", sale.number);
    }
    let pending = t.pending_operations(u32::MAX)?;
    let sales_with_operation: BTreeSet<RowId> = pending
        .iter()
        .filter(|op| op.table == "sales")
        .map(|op| op.row_id)
        .collect();
    for id in &committed {
        assert!(
            sales_with_operation.contains(id),
            "sale {id} has no pending operation"
        );
    }
    let conn = rusqlite::Connection::open(&db).expect("raw connection");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity check");
    assert_eq!(check, "ok");
    Ok(())
}
