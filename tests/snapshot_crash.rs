//! A terminal joining a tenant from a snapshot, killed with SIGKILL at any moment, holds either
//! nothing of the tenant (and joins again from the start) or all of the snapshot with its
//! cursor; its indexes are all back once it is opened again, and the download is never left
//! behind for good.
//!
//! The test re-runs its own binary as the child (`POS_SNAP_CHILD_DB` set): the child opens the
//! terminal's file and joins the tenant through a transport that serves the snapshot
//! `TenantSnapshots` built, printing `joining` before and `joined <cursor>` after. The parent kills it after a
//! delay spread over the length of a join that was not killed, checks the file with the child
//! dead, and starts the next run from whatever the kill left (a complete join is started
//! afresh). Every wait is bounded; no timing is asserted.

mod common;
mod io_common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{populate, product, tid};
use pos_tenancy::protocol::SnapshotInfo;
use pos_tenancy::sync::{DirectTransport, SnapshotUse, SyncOptions, Syncer};
use pos_tenancy::{CentralStore, NewTenant, SqliteCentral, Store, TenantAccess, TenantSnapshots};

type E = Box<dyn std::error::Error>;

const TEST: &str = "a_join_from_a_snapshot_killed_at_any_moment_holds_all_of_it_or_nothing";
const MARK: &str = "snapshot-crash: ";
/// Products written before the snapshot: with their audit rows and stamps about 4,000 rows,
/// so a kill lands inside the copy and the file still runs well under a minute.
const PRODUCTS: usize = 1_500;
const MIN_KILLS: usize = 12;
const MAX_RUNS: usize = 60;
const PATIENCE: Duration = Duration::from_secs(60);

/// The central store serving its published snapshots, as `pos-central serve --snapshots`.
fn transport(central: &Path, snapshots: &Path) -> Result<DirectTransport<SqliteCentral>, E> {
    Ok(
        DirectTransport::new(Arc::new(SqliteCentral::open(central)?))
            .with_snapshots(TenantSnapshots::new(snapshots)),
    )
}

fn options() -> SyncOptions {
    // Small pages and the bulk path as for a large tenant: the indexes are set aside too.
    SyncOptions::default()
        .snapshot_from(Some(1))
        .bulk_from(Some(1))
}

// ------------------------------------------------------------------------------------- child

fn child(db: &Path) -> ! {
    let run = || -> Result<(), E> {
        let var = |k: &str| std::env::var(k);
        let transport = transport(
            Path::new(&var("POS_SNAP_CENTRAL")?),
            Path::new(&var("POS_SNAP_DIR")?),
        )?;
        let store = Store::open(db)?;
        println!("{MARK}joining");
        let options = options();
        let report = Syncer::new(&store, &transport, &options).join(&tid("caps"), "t")?;
        match report.snapshot {
            Some(SnapshotUse::Taken { cursor, .. }) => println!("{MARK}joined {cursor}"),
            other => println!("{MARK}failed the snapshot was not taken: {other:?}"),
        }
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

// ------------------------------------------------------------------------------------ parent

struct Fixture {
    dir: tempfile::TempDir,
    central: PathBuf,
    snapshots: PathBuf,
    info: SnapshotInfo,
}

/// A tenant's log on a central store, and its snapshot, built as `pos-central snapshot`
/// builds it.
fn fixture() -> Result<Fixture, E> {
    let dir = tempfile::tempdir()?;
    let central_path = dir.path().join("central.db");
    let central = Arc::new(SqliteCentral::open(&central_path)?);
    central.add_tenant(&NewTenant::new(tid("caps"), "Caps"))?;
    let transport = DirectTransport::new(Arc::clone(&central));
    let replay = SyncOptions::default().snapshot_from(None);
    let writer = Store::open(dir.path().join("writer.db"))?;
    writer.add_tenant(&NewTenant::new(tid("caps"), "Caps"))?;
    {
        let mut t = writer.tenant(&tid("caps"))?;
        let admin = t.bootstrap_admin("owner", "Owner")?;
        populate(&t, &admin, "a")?;
        let tx = t.transaction()?;
        for i in 0..PRODUCTS {
            tx.insert(&admin, &product(&format!("SKU-{i:05}"), 100 + i as i64))?;
        }
        tx.commit()?;
    }
    Syncer::new(&writer, &transport, &replay).round(&tid("caps"), "t")?;
    let snapshots = dir.path().join("snapshots");
    let info = TenantSnapshots::new(&snapshots).build(central, &tid("caps"))?;
    Ok(Fixture {
        central: central_path,
        snapshots,
        info,
        dir,
    })
}

struct Run {
    said: Vec<String>,
    killed: bool,
    took: Option<Duration>,
}

fn run_child(exe: &Path, f: &Fixture, db: &Path, delay: Option<Duration>) -> Result<Run, E> {
    let mut child = Command::new(exe)
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env("POS_SNAP_CHILD_DB", db)
        .env("POS_SNAP_CENTRAL", &f.central)
        .env("POS_SNAP_DIR", &f.snapshots)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let out = common::marked_lines(child.stdout.take().ok_or("no stdout")?, MARK);
    let deadline = Instant::now() + PATIENCE;
    let mut said = Vec::new();
    let mut started = None;
    let mut took = None;
    let mut read = |stop_at_join: bool| -> Result<bool, E> {
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .ok_or_else(|| format!("the child took too long: {said:?}"))?;
            let line = match out.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Ok(false),
            };
            if line == "joining" {
                started = Some(Instant::now());
            }
            if line.starts_with("joined") {
                took = started.map(|s: Instant| s.elapsed());
            }
            let stop = stop_at_join && line == "joining";
            said.push(line);
            if stop {
                return Ok(true);
            }
        }
    };
    let reached = match delay {
        None => read(false)?,
        Some(delay) => {
            let at = read(true)?;
            if at {
                std::thread::sleep(delay);
            }
            at
        }
    };
    let killed = reached && child.try_wait()?.is_none();
    if killed {
        child.kill()?;
    }
    let status = child.wait()?;
    read(false)?;
    if let Some(failed) = said.iter().find(|l| l.starts_with("failed")) {
        return Err(format!("the child: {failed}").into());
    }
    if !killed && !status.success() {
        return Err(format!("the child failed ({status}): {said:?}").into());
    }
    Ok(Run { said, killed, took })
}

/// The tenant's rows of every table but the node's own bookkeeping (its registry row, sync
/// state and log, backup log), which says when this node did what.
fn state(db: &Path) -> io_common::Dump {
    io_common::dump_except(
        db,
        "caps",
        &[
            "tenants",
            "sync_state",
            "sync_log",
            "backups",
            "restore_jobs",
        ],
    )
}

fn indexes(db: &Path) -> Result<Vec<String>, E> {
    let conn = rusqlite::Connection::open(db)?;
    let mut stmt =
        conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' ORDER BY name")?;
    let names = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(names)
}

fn remove_node(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

#[test]
fn a_join_from_a_snapshot_killed_at_any_moment_holds_all_of_it_or_nothing() -> Result<(), E> {
    if let Some(db) = std::env::var_os("POS_SNAP_CHILD_DB") {
        child(Path::new(&db));
    }
    let exe = std::env::current_exe()?;
    let f = fixture()?;
    let db = f.dir.path().join("node.db");
    // A join that is not killed: how long one takes, and what it ends with.
    let first = run_child(&exe, &f, &db, None)?;
    let took = first.took.ok_or("the first join did not finish")?;
    assert_eq!(
        first.said.last().map(String::as_str),
        Some(&*format!("joined {}", f.info.cursor))
    );
    let reference = state(&db);
    let all_indexes = indexes(&db)?;
    assert!(reference
        .iter()
        .any(|(t, r)| t == "products" && r.len() >= PRODUCTS));
    remove_node(&db);

    let mut kills = 0;
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
    for run in 0..MAX_RUNS {
        if kills >= MIN_KILLS && outcomes.contains_key("all") {
            break;
        }
        // Spread over the join and as long again past its end.
        let delay = took.mul_f64((run % 20) as f64 / 10.0);
        let r = run_child(&exe, &f, &db, Some(delay))?;
        let inside = r.killed && !r.said.iter().any(|l| l.starts_with("joined"));
        if inside {
            kills += 1;
        }
        // The child is dead: open the file as the next start would.
        let store = Store::open(&db)?;
        let cursor = match store.sync_status(&tid("caps")) {
            Ok(s) => s.cursor,
            Err(_) => 0, // killed before the tenant was registered
        };
        drop(store);
        assert_eq!(indexes(&db)?, all_indexes, "run {run}: every index is back");
        let download = {
            let mut p = db.as_os_str().to_owned();
            p.push(".snapshot-caps");
            PathBuf::from(p)
        };
        if cursor == 0 {
            assert!(
                state(&db).values().all(Vec::is_empty),
                "run {run}: killed before the commit, nothing of the snapshot is there"
            );
            *outcomes.entry("nothing").or_default() += 1;
        } else {
            assert_eq!(cursor, f.info.cursor, "run {run}");
            assert_eq!(state(&db), reference, "run {run}: all of the snapshot");
            *outcomes.entry("all").or_default() += 1;
            // The next pull removes a download a kill left after the commit.
            let store = Store::open(&db)?;
            let transport = transport(&f.central, &f.snapshots)?;
            let options = options();
            let report = Syncer::new(&store, &transport, &options).round(&tid("caps"), "t")?;
            assert_eq!(report.snapshot, None, "run {run}: taken once");
            assert!(!download.exists(), "run {run}: no download left");
            drop(store);
            remove_node(&db);
        }
    }
    assert!(
        kills >= MIN_KILLS,
        "only {kills} kills landed inside a join in {MAX_RUNS} runs: {outcomes:?}"
    );
    assert!(
        outcomes.contains_key("nothing") && outcomes.contains_key("all"),
        "{outcomes:?}"
    );
    eprintln!("{kills} kills inside a join; the file held afterwards: {outcomes:?}");
    Ok(())
}
