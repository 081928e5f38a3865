//! A promotion or a demotion killed with SIGKILL at any moment leaves the tenant readable from
//! exactly one place with all its rows (issue 16, stage 2 of the isolation plan).
//!
//! The test re-runs its own binary as the child (`POS_TIER_CHILD_DB` and `POS_TIER_CHILD_MOVE`
//! set): the child opens the node file and promotes or demotes the big tenant, printing
//! `moving` before the call, `table <k>` after each table of the copy (the move's progress
//! callback) and `moved` once it returned. The parent kills it at a table of the copy or after
//! a delay spread over the measured length of a move that was not killed, and then checks,
//! with the child dead: the tenant's digest is the one it had before any move (nothing writes
//! in between), its registry row routes to one place and its rows are read through a handle
//! there, the other place is never the route, every other tenant is exactly as it was,
//! `verify` is clean, a purge now removes what a killed promotion left, and a purge far in the
//! future (tried on a copy of the node, so that the node keeps what its moves left for a way
//! back and later demotions replace a kept shared copy) leaves no file the route does not
//! name. The next run moves the tenant on from wherever the kill left it. Every wait is
//! bounded; no timing is asserted.

mod common;
mod io_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use common::{first_admin, populate, product, tid};
use pos_tenancy::catalog::{Product, TABLES};
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::{
    ListQuery, MoveReason, NewTenant, Plan, Store, TableCopied, TenantAccess, TenantDigest,
    TenantId, Tier, Timestamp, TENANT_FILE_APPLICATION_ID,
};

type E = Box<dyn std::error::Error>;

const TEST: &str = "a_move_killed_at_any_moment_leaves_the_tenant_in_one_place_with_all_its_rows";
const BIG: &str = "caps";
const OTHERS: [&str; 2] = ["bolt", "acme"];
/// Products of the big tenant, each with a stock receipt, and sales: with their audit entries
/// and pending operations about 3,000 rows, so that a kill can land in the middle of a move
/// and the file still runs in well under a minute.
const PRODUCTS: usize = 300;
const SALES: usize = 60;
/// Kills that must land inside a move (after `moving`, before `moved`), half each way, and at
/// most this many runs in all.
const MIN_KILLS: usize = 20;
const MAX_RUNS: usize = 60;
/// How long any one thing may take before the test gives up on it (no timing is asserted).
const PATIENCE: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------------------------- child

fn child(db: &Path) -> ! {
    let run = || -> Result<(), E> {
        let direction = std::env::var("POS_TIER_CHILD_MOVE")?;
        let store = Store::open(db)?;
        let tenant = tid(BIG);
        let mut progress = |t: TableCopied| println!("{MARK}table {} {}", t.done, t.table);
        println!("{MARK}moving");
        let moved = match direction.as_str() {
            "promote" => {
                store.promote_tenant(&tenant, None, MoveReason::Operator, &mut progress)?
            }
            "demote" => store.demote_tenant(&tenant, None, MoveReason::Operator, &mut progress)?,
            other => return Err(format!("no move {other:?}").into()),
        };
        println!("{MARK}moved {}", moved.rows);
        Ok(())
    };
    match run() {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            println!("{MARK}failed {e}");
            std::process::exit(3)
        }
    }
}

/// The child's lines, each marked: the test harness prints its own words before the first.
const MARK: &str = "tier: ";

// ------------------------------------------------------------------------------------ parent

/// Where the parent kills a child.
#[derive(Debug, Clone, Copy)]
enum Aim {
    /// Not at all: the move runs to its end.
    None,
    /// As soon as the child reports table `k` of the copy done (0: as it starts the move).
    Table(usize),
    /// This long after the child starts the move.
    After(Duration),
}

/// What one run of a child did.
struct Run {
    /// The child's lines, in order.
    said: Vec<String>,
    /// Whether it was still running when the kill came.
    killed: bool,
    /// How long the move took, from `moving` to `moved`, for a run that finished.
    took: Option<Duration>,
}

fn run_child(exe: &Path, db: &Path, direction: &str, aim: Aim) -> Result<Run, E> {
    let mut child = Command::new(exe)
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env("POS_TIER_CHILD_DB", db)
        .env("POS_TIER_CHILD_MOVE", direction)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let out = common::marked_lines(child.stdout.take().ok_or("no stdout")?, MARK);
    let mut said: Vec<String> = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    let mut started: Option<Instant> = None;
    let mut took = None;
    // Reads the child's lines until `stop` says so or the child ends; bounded.
    let mut read = |stop: &mut dyn FnMut(&str) -> bool| -> Result<bool, E> {
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .ok_or_else(|| format!("the {direction} child took too long: {said:?}"))?;
            let line = match out.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Ok(false),
            };
            if line == "moving" {
                started = Some(Instant::now());
            }
            if line.starts_with("moved") {
                took = started.map(|s| s.elapsed());
            }
            let stop_here = stop(&line);
            said.push(line);
            if stop_here {
                return Ok(true);
            }
        }
    };
    let reached = match aim {
        Aim::None => read(&mut |_| false)?,
        Aim::Table(0) => read(&mut |line| line == "moving")?,
        Aim::Table(k) => {
            let want = format!("table {k} ");
            read(&mut |line| line.starts_with(&want))?
        }
        Aim::After(delay) => {
            let at_start = read(&mut |line| line == "moving")?;
            if at_start {
                std::thread::sleep(delay);
            }
            at_start
        }
    };
    let killed = reached && child.try_wait()?.is_none();
    if killed {
        child.kill()?;
    }
    let status = child.wait()?;
    // What it printed before dying happened too.
    read(&mut |_| false)?;
    if !killed && !status.success() {
        return Err(format!("the {direction} child failed ({status}): {said:?}").into());
    }
    if let Some(failed) = said.iter().find(|l| l.starts_with("failed")) {
        return Err(format!("the {direction} child: {failed}").into());
    }
    Ok(Run { said, killed, took })
}

/// Where a kill landed, from the child's last line and from whether the route moved.
fn stage(said: &[String], switched: bool) -> String {
    let last = said
        .iter()
        .rev()
        .find(|l| *l == "moving" || l.starts_with("table ") || l.starts_with("moved"));
    match last.map(String::as_str) {
        Some(l) if l.starts_with("moved") => "after it returned".into(),
        _ if switched => "after the switch, before it returned".into(),
        None => "while opening".into(),
        Some("moving") => "before the first table".into(),
        Some(l) => {
            let k: usize = l
                .split(' ')
                .nth(1)
                .and_then(|k| k.parse().ok())
                .unwrap_or(0);
            if k >= TABLES.len() {
                "after the last table, before the switch".into()
            } else if k * 3 < TABLES.len() {
                "copying, first third".into()
            } else if k * 3 < TABLES.len() * 2 {
                "copying, second third".into()
            } else {
                "copying, last third".into()
            }
        }
    }
}

fn homes(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".tenants");
    PathBuf::from(name)
}

/// Every file in `dir` (a database's `-wal` and `-shm` included), by name.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The database a file in the homes directory belongs to.
fn base(name: &str) -> &str {
    name.trim_end_matches("-wal")
        .trim_end_matches("-shm")
        .trim_end_matches("-journal")
}

/// What must hold after every run.
struct Expected {
    digest: TenantDigest,
    products: i64,
    sales: i64,
    others: Vec<(TenantId, TenantDigest, io_common::Dump)>,
}

/// The node: the big tenant with thousands of rows, two small ones beside it.
fn node(db: &Path) -> Result<Expected, E> {
    let store = Store::open(db)?;
    for id in OTHERS.iter().chain([&BIG]) {
        store.add_tenant(&NewTenant::new(tid(id), &format!("{id} store")).plan(Plan::Pro))?;
        let t = store.tenant(&tid(id))?;
        let admin = t.bootstrap_admin("owner", "Owner")?;
        populate(&t, &admin, id)?;
    }
    let mut t = store.tenant(&tid(BIG))?;
    let admin = first_admin(&t)?;
    let tx = t.transaction()?;
    let mut ids = Vec::with_capacity(PRODUCTS);
    for k in 0..PRODUCTS {
        let p = product(&format!("BULK-{k}"), 1_000 + k as i64);
        tx.insert(&admin, &p)?;
        tx.receive_stock(&admin, p.id, "main", 1_000_000, Some(500))?;
        ids.push(p.id);
    }
    tx.commit()?;
    for k in 0..SALES {
        let sale = Checkout::new()
            .line(LineItem::product(ids[k * 7 % ids.len()], 1_000))
            .line(LineItem::product(ids[k * 11 % ids.len()], 2_000));
        t.checkout(
            &admin,
            &sale.tender(Tender::Cash {
                tendered_minor: 1_000_000,
            }),
        )?;
    }
    let count = |table: &str| -> Result<i64, E> {
        let sql = format!("SELECT count(*) AS n FROM {table}");
        Ok(t.query(&sql)?.rows[0][0].as_i64().ok_or("a count")?)
    };
    let (products, sales) = (count("products")?, count("sales")?);
    drop(t);
    let mut others = Vec::new();
    for id in OTHERS {
        others.push((
            tid(id),
            store.tenant_digest(&tid(id))?,
            io_common::dump(db, id),
        ));
    }
    Ok(Expected {
        digest: store.tenant_digest(&tid(BIG))?,
        products,
        sales,
        others,
    })
}

/// The tier a raw connection reads in a file's registry.
fn tier_in(file: &Path) -> Result<String, E> {
    let conn = rusqlite::Connection::open(file)?;
    Ok(
        conn.query_row("SELECT tier FROM tenants WHERE id = ?1", [BIG], |r| {
            r.get(0)
        })?,
    )
}

/// The big tenant's rows of `table` in a file, read with a raw connection.
fn raw_count(file: &Path, table: &str) -> Result<i64, E> {
    let conn = rusqlite::Connection::open(file)?;
    // Catalog table names only.
    Ok(conn.query_row(
        &format!("SELECT count(*) FROM \"{table}\" WHERE tenant_id = ?1"),
        [BIG],
        |r| r.get(0),
    )?)
}

/// Opens the node as a restarted terminal would and checks every promise; returns the tier.
fn check_node(db: &Path, x: &Expected, what: &str) -> Result<Tier, E> {
    let store = Store::open(db)?;
    let big = tid(BIG);
    assert_eq!(
        store.tenant_digest(&big)?,
        x.digest,
        "{what}: the tenant's rows are all there, as they were"
    );
    let tier = store.tenant_info(&big)?.tier;
    let home = store.tenant_home_path(&big)?;
    // The shared registry is the route: it agrees with what the store says.
    let shared_says = tier_in(db)?;
    let place = match tier {
        Tier::Shared => {
            assert_eq!(shared_says, "shared", "{what}");
            assert_eq!(home, None, "{what}: shared, so no file is the route");
            db.to_path_buf()
        }
        Tier::Dedicated => {
            assert_eq!(shared_says, "dedicated", "{what}");
            let file = home.ok_or_else(|| format!("{what}: dedicated, but no file"))?;
            assert!(file.starts_with(homes(db)), "{what}: {}", file.display());
            assert_eq!(tier_in(&file)?, "dedicated", "{what}: the file agrees");
            let conn = rusqlite::Connection::open(&file)?;
            let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
            assert_eq!(app, TENANT_FILE_APPLICATION_ID, "{what}");
            file
        }
        other => return Err(format!("{what}: tier {other:?}").into()),
    };
    // Read through a handle, the rows are those of the place the route names.
    let t = store.tenant(&big)?;
    let count = |table: &str| -> Result<i64, E> {
        let sql = format!("SELECT count(*) AS n FROM {table}");
        Ok(t.query(&sql)?.rows[0][0].as_i64().ok_or("a count")?)
    };
    assert_eq!(count("products")?, x.products, "{what}: products");
    assert_eq!(count("sales")?, x.sales, "{what}: sales");
    let listed = t.list::<Product>(&ListQuery::new().limit(10))?;
    assert_eq!(listed.rows.len(), 10, "{what}: a page of products");
    assert_eq!(raw_count(&place, "products")?, x.products, "{what}");
    assert_eq!(raw_count(&place, "sales")?, x.sales, "{what}");
    drop(t);
    for (id, digest, dump) in &x.others {
        assert_eq!(&store.tenant_digest(id)?, digest, "{what}: tenant {id}");
        assert_eq!(
            &io_common::dump(db, id.as_str()),
            dump,
            "{what}: tenant {id}"
        );
    }
    let report = store.verify()?;
    assert!(report.is_ok(), "{what}: {:?}", report.violations);
    // Files a killed promotion left go now; every file left is one a move names.
    store.purge_moved_copies(Timestamp::now())?;
    let conn = rusqlite::Connection::open(db)?;
    let named: Vec<String> = conn
        .prepare("SELECT file FROM tenant_moves")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in files_in(&homes(db)) {
        assert!(
            named.iter().any(|n| n == base(&name)),
            "{what}: {name} is left over after a purge"
        );
    }
    Ok(tier)
}

/// Copies the node's directory (the store closed), so a purge can be tried on the copy while
/// the node keeps the copies its moves left for a way back.
fn copy_dir(from: &Path, to: &Path) -> Result<(), E> {
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()))?;
        } else {
            std::fs::copy(&path, to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// On a copy of the node: a purge far in the future leaves the tenant in exactly one place.
fn check_purge(node_dir: &Path, scratch: &Path, x: &Expected, what: &str) -> Result<(), E> {
    copy_dir(node_dir, scratch)?;
    let db = scratch.join("node.db");
    let store = Store::open(&db)?;
    let big = tid(BIG);
    let far =
        Timestamp::from_millis(Timestamp::now().as_millis() + 365 * 86_400_000).ok_or("a time")?;
    store.purge_moved_copies(far)?;
    assert_eq!(
        store.tenant_digest(&big)?,
        x.digest,
        "{what}: after a purge"
    );
    let route = store.tenant_home_path(&big)?;
    let left = files_in(&homes(&db));
    match &route {
        None => {
            assert!(
                left.is_empty(),
                "{what}: shared, but files are left: {left:?}"
            );
        }
        Some(file) => {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for l in &left {
                assert_eq!(base(l), name, "{what}: a file the route does not name");
            }
            // The shared file keeps the tenant's registry row (the route) and nothing else.
            let shared = rusqlite::Connection::open(&db)?;
            for table in TABLES {
                // Catalog table names only.
                let n: i64 = shared.query_row(
                    &format!(
                        "SELECT count(*) FROM \"{}\" WHERE tenant_id = ?1",
                        table.name
                    ),
                    [BIG],
                    |r| r.get(0),
                )?;
                assert_eq!(n, 0, "{what}: {} rows left in the shared file", table.name);
            }
        }
    }
    let t = store.tenant(&big)?;
    let n = t.query("SELECT count(*) AS n FROM products")?.rows[0][0]
        .as_i64()
        .ok_or("a count")?;
    assert_eq!(n, x.products, "{what}: after a purge");
    drop(t);
    for (id, digest, _) in &x.others {
        assert_eq!(&store.tenant_digest(id)?, digest, "{what}: tenant {id}");
    }
    drop(store);
    std::fs::remove_dir_all(scratch)?;
    Ok(())
}

/// Kills moves at 20 points or more inside them, ten promotions and ten demotions at least: at
/// a table of the copy (from its start to past the last table) and at delays spread over the
/// length of a move that ran to its end; after each, every promise holds, and the next move
/// starts from there. Every fifth run or so is let finish, so the tenant keeps changing places.
#[test]
fn a_move_killed_at_any_moment_leaves_the_tenant_in_one_place_with_all_its_rows() -> Result<(), E> {
    if let Some(db) = std::env::var_os("POS_TIER_CHILD_DB") {
        child(Path::new(&db));
    }
    let dir = tempfile::tempdir()?;
    let node_dir = dir.path().join("node");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&node_dir)?;
    let db = node_dir.join("node.db");
    let x = node(&db)?;
    let mut tier = check_node(&db, &x, "before any move")?;
    assert_eq!(tier, Tier::Shared);
    let exe = std::env::current_exe()?;

    let tables = TABLES.len();
    // Kills inside a move each way, and kills in one direction before a move runs to its end
    // so the tenant changes places (the first of each way measures how long a move takes).
    let quota = MIN_KILLS / 2;
    const BETWEEN_FLIPS: usize = 4;
    let mut took: BTreeMap<&'static str, Duration> = BTreeMap::new();
    let mut landed: BTreeMap<String, usize> = BTreeMap::new();
    let mut at_table: BTreeMap<usize, usize> = BTreeMap::new();
    let mut in_move = BTreeMap::from([("promote", 0usize), ("demote", 0usize)]);
    let mut aimed = BTreeMap::from([("promote", 0usize), ("demote", 0usize)]);
    let (mut runs, mut kills, mut since_flip) = (0usize, 0usize, 0usize);
    while in_move.values().any(|n| *n < quota) {
        runs += 1;
        assert!(
            runs <= MAX_RUNS,
            "{MAX_RUNS} runs and too few kills inside a move: {in_move:?}, {landed:?}"
        );
        let direction = if tier == Tier::Shared {
            "promote"
        } else {
            "demote"
        };
        let other = if direction == "promote" {
            "demote"
        } else {
            "promote"
        };
        let done_here = in_move[direction] >= quota;
        let flip = done_here || (since_flip >= BETWEEN_FLIPS && in_move[other] < quota);
        let j = aimed[direction];
        let aim = match took.get(direction) {
            _ if flip => Aim::None,
            // At a table, from the move's start (0) to past the last, spread by a stride
            // prime to the table count.
            None => Aim::Table((j * 7) % (tables + 1)),
            Some(_) if j % 2 == 0 => Aim::Table((j / 2 * 7 + 3) % (tables + 1)),
            // Or after a fraction of an unkilled move's length: 5%, 15%, ... 115%.
            Some(length) => {
                let tenth = (j / 2 * 5) % 12;
                Aim::After(length.mul_f64(0.05 + 0.1 * tenth as f64))
            }
        };
        if !flip {
            *aimed.get_mut(direction).ok_or("a direction")? += 1;
        }
        let run = run_child(&exe, &db, direction, aim)?;
        if let (Aim::None, Some(length)) = (aim, run.took) {
            took.entry(direction).or_insert(length);
        }
        let what = format!("run {runs}, {direction} aimed at {aim:?}");
        let before = tier;
        tier = check_node(&db, &x, &what)?;
        check_purge(&node_dir, &scratch, &x, &what)?;
        if tier == before {
            since_flip += 1;
        } else {
            since_flip = 0;
        }
        if !run.killed {
            assert!(
                run.said.iter().any(|l| l.starts_with("moved")),
                "{what}: the child ended without moving: {:?}",
                run.said
            );
            assert_ne!(tier, before, "{what}: a finished move switched the route");
            continue;
        }
        kills += 1;
        let stage = stage(&run.said, tier != before);
        if !matches!(stage.as_str(), "after it returned" | "while opening") {
            *in_move.get_mut(direction).ok_or("a direction")? += 1;
        }
        let last_table = run
            .said
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("table "))
            .and_then(|l| l.split(' ').next())
            .and_then(|k| k.parse::<usize>().ok());
        if let Some(k) = last_table {
            *at_table.entry(k).or_default() += 1;
        }
        *landed.entry(format!("{direction}: {stage}")).or_default() += 1;
    }
    eprintln!(
        "{runs} runs, {kills} kills, {in_move:?} inside a move; unkilled moves took {took:?}; \
         landed: {landed:#?}; last table reported at the kill: {at_table:?}"
    );
    Ok(())
}
