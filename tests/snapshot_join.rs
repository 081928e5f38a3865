//! A new terminal joining a tenant from the central server's snapshot ends exactly where a
//! terminal that replayed the whole log ends: the same business rows, merge stamps, conflicts
//! and audit trail, the same cursor, and a clock past every stamp it took in. A file it cannot
//! take changes nothing and the log is replayed instead.
#![cfg(feature = "testkit")]

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pos_tenancy::catalog::{Product, Sale};
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::protocol::{
    Operation, OperationPage, OperationResult, SnapshotInfo, TenantConfig,
};
use pos_tenancy::sync::{
    DirectTransport, RoundReport, SnapshotUse, SyncOptions, Syncer, Transport, TransportError,
};
use pos_tenancy::testkit::sync::World;
use pos_tenancy::SqliteCentral;
use pos_tenancy::{ListQuery, Store, TenantAccess, TenantId};

type R = Result<(), Box<dyn std::error::Error>>;
/// A file's rows of caps, table by table, as text.
type State = Vec<(String, Vec<String>)>;

/// What the test transport's snapshot call does.
#[derive(Clone)]
enum Serve {
    Nothing,
    File(PathBuf, SnapshotInfo),
    Unreachable,
    /// The server answers with this status (its snapshot directory broken, say).
    Status(u16),
}

/// The world's central store, with a snapshot served from a file (as the server would).
struct Snapshots {
    inner: DirectTransport<SqliteCentral>,
    serve: Mutex<Serve>,
    asked: Mutex<usize>,
}

impl Snapshots {
    fn new(central: &Arc<SqliteCentral>, serve: Serve) -> Self {
        Self {
            inner: DirectTransport::new(Arc::clone(central)),
            serve: Mutex::new(serve),
            asked: Mutex::new(0),
        }
    }

    fn serve(&self, serve: Serve) {
        *self.serve.lock().unwrap_or_else(|p| p.into_inner()) = serve;
    }

    fn asked(&self) -> usize {
        *self.asked.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Transport for Snapshots {
    fn push(
        &self,
        tenant: &TenantId,
        token: &str,
        operations: &[Operation],
    ) -> Result<Vec<OperationResult>, TransportError> {
        self.inner.push(tenant, token, operations)
    }
    fn pull(
        &self,
        tenant: &TenantId,
        token: &str,
        after: u64,
        limit: u32,
    ) -> Result<OperationPage, TransportError> {
        self.inner.pull(tenant, token, after, limit)
    }
    fn config(&self, tenant: &TenantId, token: &str) -> Result<TenantConfig, TransportError> {
        self.inner.config(tenant, token)
    }
    fn snapshot(
        &self,
        _tenant: &TenantId,
        _token: &str,
        into: &Path,
    ) -> Result<Option<SnapshotInfo>, TransportError> {
        *self.asked.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        let serve = self.serve.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match serve {
            Serve::Nothing => Ok(None),
            Serve::Unreachable => Err(TransportError::Unreachable("cut (test)".into())),
            Serve::Status(status) => Err(TransportError::Server {
                status,
                code: "internal".into(),
                message: "the snapshot cannot be read (test)".into(),
                retry_after: None,
            }),
            Serve::File(path, info) => {
                let bytes =
                    std::fs::read(&path).map_err(|e| TransportError::Unreachable(e.to_string()))?;
                std::fs::write(into, bytes)
                    .map_err(|e| TransportError::Unreachable(e.to_string()))?;
                Ok(Some(info))
            }
        }
    }
}

/// A busy tenant: three tills selling, receiving stock and repricing, one of them offline for
/// a while, so the log holds conflicts, refunds of stock below zero and concurrent edits.
fn busy_world(
    seed: u64,
    actions: usize,
) -> Result<(World, pos_tenancy::Actor), Box<dyn std::error::Error>> {
    let mut world = World::builder(seed)
        .tenant("caps", 3)
        .tenant("bolt", 1)
        .options(SyncOptions::default().snapshot_from(None))
        .build()?;
    let admin = world.admin("caps")?;
    let first = world.terminal("caps", 0);
    for (i, sku) in ["OF-1", "AF-2", "SP-7"].iter().enumerate() {
        world.product(first, &admin, sku, 500 + 100 * i as i64, 3)?;
    }
    day(&mut world, &admin, actions)?;
    let bolt = world.admin("bolt")?;
    world.product(world.terminal("bolt", 0), &bolt, "BOLT-1", 900, 5)?;
    world.quiesce()?;
    Ok((world, admin))
}

fn day(
    world: &mut World,
    admin: &pos_tenancy::Actor,
    actions: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let tills: Vec<_> = (0..3).map(|n| world.terminal("caps", n)).collect();
    for (n, t) in tills.iter().enumerate() {
        if n == 1 {
            world.offline(*t);
        }
        for _ in 0..actions {
            world.random_action(*t, admin)?;
        }
    }
    world.online(tills[1]);
    world.quiesce()?;
    Ok(())
}

fn caps() -> TenantId {
    "caps".parse().expect("a valid id")
}

/// A node that applied the log itself, exported: what the central server serves.
fn snapshot_of(
    world: &World,
    dir: &Path,
) -> Result<(PathBuf, SnapshotInfo), Box<dyn std::error::Error>> {
    let store = Store::open(dir.join("shadow.db"))?;
    let transport = DirectTransport::new(Arc::clone(world.central()));
    let options = SyncOptions::default().snapshot_from(None);
    let syncer = Syncer::new(&store, &transport, &options);
    syncer.join(&caps(), "t")?;
    // The conflicts it found are records of its own, pushed like every terminal's; a
    // snapshot holds no operation the server has not received.
    syncer.round(&caps(), "t")?;
    assert_eq!(store.sync_status(&caps())?.pending, 0);
    let cursor = store.sync_status(&caps())?.cursor;
    let path = dir.join(format!("caps-{cursor}.db"));
    let export = store.export_tenant(&caps(), &path, &mut |_| {})?;
    Ok((
        path,
        SnapshotInfo {
            cursor,
            sha256: export.sha256,
            bytes: export.bytes,
        },
    ))
}

fn join(
    path: &Path,
    transport: &Snapshots,
    options: &SyncOptions,
) -> Result<(Store, RoundReport), Box<dyn std::error::Error>> {
    let store = Store::open(path)?;
    let report = Syncer::new(&store, transport, options).join(&caps(), "t")?;
    Ok((store, report))
}

fn rows(path: &Path, sql: &str) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let conn = rusqlite::Connection::open(path)?;
    let mut stmt = conn.prepare(sql)?;
    let n = stmt.column_count();
    let out = stmt
        .query_map([], |r| {
            let mut line = Vec::with_capacity(n);
            for i in 0..n {
                line.push(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    other => format!("{other:?}"),
                });
            }
            Ok(line.join("|"))
        })?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(out)
}

/// Everything of caps a join writes that must not depend on how it joined: every synced table,
/// the merge's stamps, and the audit trail without its node-made id and time.
fn state(path: &Path) -> Result<State, Box<dyn std::error::Error>> {
    // The synced tables and kept balances, as every sync test compares two terminals.
    let mut out: State = common::sync::dump(path, &caps())?.into_iter().collect();
    // The merge's stamps of every business row, as stored. A conflict record's stamps are
    // compared by the newest: a terminal that merged another's record of the same conflict
    // keeps stamps per column, one that only wrote its own keeps the insert's, and both
    // read the same stamp for every column.
    let mut stamps = rows(
        path,
        "SELECT table_name, id, stamps, tombstone FROM sync_stamps
         WHERE tenant_id = 'caps' AND table_name <> 'sync_conflicts'",
    )?;
    stamps.sort();
    out.push(("sync_stamps".into(), stamps));
    let mut newest = Vec::new();
    for line in rows(
        path,
        "SELECT id, stamps FROM sync_stamps
         WHERE tenant_id = 'caps' AND table_name = 'sync_conflicts'",
    )? {
        let (id, json) = line.split_once('|').ok_or("a stamps row")?;
        let map: std::collections::BTreeMap<String, String> = serde_json::from_str(json)?;
        let max = map.values().max().cloned().unwrap_or_default();
        newest.push(format!("{id} {max}"));
    }
    newest.sort();
    out.push(("sync_stamps of conflicts".into(), newest));
    // Conflict records are each terminal's own (audited where they arrive from another), so
    // the trails agree on everything else.
    let mut audit = rows(
        path,
        "SELECT actor_user_id, action, table_name, row_id, detail FROM audit_log
         WHERE tenant_id = 'caps' AND table_name <> 'sync_conflicts'",
    )?;
    audit.sort();
    out.push(("audit_log".into(), audit));
    Ok(out)
}

#[test]
fn a_terminal_joining_from_a_snapshot_ends_where_a_replay_ends_and_keeps_selling() -> R {
    let (mut world, admin) = busy_world(31, 12)?;
    let dir = tempfile::tempdir()?;
    let (file, info) = snapshot_of(&world, dir.path())?;
    assert!(info.cursor > 0);
    // The log goes on after the snapshot: the joining terminal pulls the rest.
    day(&mut world, &admin, 4)?;
    let head = world
        .store(world.terminal("caps", 0))
        .sync_status(&caps())?
        .cursor;
    assert!(
        head > info.cursor,
        "the log went on: {head} after {}",
        info.cursor
    );

    let snap = Snapshots::new(world.central(), Serve::File(file.clone(), info.clone()));
    let from_snapshot = SyncOptions::default().snapshot_from(Some(1));
    let (taken, report) = join(&dir.path().join("taken.db"), &snap, &from_snapshot)?;
    match &report.snapshot {
        Some(SnapshotUse::Taken {
            cursor,
            rows,
            bytes,
        }) => {
            assert_eq!(*cursor, info.cursor);
            assert!(*rows > 0);
            assert_eq!(*bytes, info.bytes);
        }
        other => panic!("the snapshot was not taken: {other:?}"),
    }
    assert_eq!(report.cursor, head);
    assert_eq!(snap.asked(), 1);
    // The downloaded file is gone.
    assert!(!dir.path().join("taken.db.snapshot-caps").exists());

    let replay = Snapshots::new(world.central(), Serve::Nothing);
    let (replayed, report) = join(
        &dir.path().join("replayed.db"),
        &replay,
        &SyncOptions::default().snapshot_from(None),
    )?;
    assert_eq!(report.snapshot, None);
    assert_eq!(replay.asked(), 0);

    // The replaying terminal recorded the conflicts it found and pushes them, as every
    // terminal does; once each has the other's, the two are the same.
    let replaying = Syncer::new(&replayed, &replay, &from_snapshot);
    replaying.round(&caps(), "t")?;
    Syncer::new(&taken, &snap, &from_snapshot).round(&caps(), "t")?;
    replaying.round(&caps(), "t")?;
    let (a, b) = (
        state(&dir.path().join("taken.db"))?,
        state(&dir.path().join("replayed.db"))?,
    );
    for ((table, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(
            x, y,
            "table {table} differs between the snapshot join and the replay"
        );
    }
    assert!(a
        .iter()
        .any(|(t, r)| t == "sync_conflicts" && !r.is_empty()));
    assert!(a.iter().any(|(t, r)| t == "sync_stamps" && !r.is_empty()));
    assert!(a.iter().any(|(t, r)| t == "audit_log" && !r.is_empty()));
    // No row of the other tenant came with it.
    let bolt = rows(
        &dir.path().join("taken.db"),
        "SELECT count(*) FROM audit_log WHERE tenant_id <> 'caps'",
    )?;
    assert_eq!(bolt, ["Integer(0)"]);
    assert_eq!(
        taken.sync_status(&caps())?.cursor,
        replayed.sync_status(&caps())?.cursor
    );
    // Its clock is past every stamp it took in (as far as the replay's): what it writes now
    // comes after.
    assert!(clock(&dir.path().join("taken.db"))? >= clock(&dir.path().join("replayed.db"))?);

    // It sells as soon as it is in, and what it writes reaches the other tills.
    let handle = taken.tenant(&caps())?;
    let me = handle.actor(admin.user_id())?;
    let product = handle
        .list::<Product>(&ListQuery::new().limit(1))?
        .rows
        .into_iter()
        .next()
        .ok_or("a product")?;
    let sale = handle.checkout(
        &me,
        &Checkout::new()
            .line(LineItem::product(product.id, 1000))
            .tender(Tender::Cash {
                tendered_minor: 1_000_000,
            }),
    )?;
    Syncer::new(&taken, &snap, &from_snapshot).round(&caps(), "t")?;
    assert_eq!(taken.sync_status(&caps())?.pending, 0);
    world.quiesce()?;
    let till = world.store(world.terminal("caps", 2)).tenant(&caps())?;
    assert!(till.get::<Sale>(sale.sale.id)?.is_some());
    drop((taken, replayed));
    assert!(verify_clean(&dir.path().join("taken.db"))?);
    Ok(())
}

fn clock(path: &Path) -> Result<(i64, i64), Box<dyn std::error::Error>> {
    let conn = rusqlite::Connection::open(path)?;
    Ok(conn.query_row(
        "SELECT hlc_millis, hlc_counter FROM node_state WHERE singleton = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

fn verify_clean(path: &Path) -> Result<bool, Box<dyn std::error::Error>> {
    let store = Store::open(path)?;
    let report = store.verify()?;
    Ok(report.violations.is_empty())
}

#[test]
fn a_file_the_terminal_cannot_take_changes_nothing_and_the_log_is_replayed() -> R {
    let (world, _) = busy_world(7, 6)?;
    let dir = tempfile::tempdir()?;
    let (file, info) = snapshot_of(&world, dir.path())?;
    let options = SyncOptions::default().snapshot_from(Some(1));
    let reference = state(&{
        let replay = Snapshots::new(world.central(), Serve::Nothing);
        join(&dir.path().join("reference.db"), &replay, &options)?;
        dir.path().join("reference.db")
    })?;

    let garbage = dir.path().join("garbage.db");
    std::fs::write(
        &garbage,
        b"not a database at all, but long enough to look like one",
    )?;
    let wrong_cursor = SnapshotInfo {
        cursor: info.cursor + 1,
        ..info.clone()
    };
    let node = dir.path().join("node.db");
    let whole = Store::open(&node)?;
    let tenant_file = dir.path().join("node-file.db");
    drop(whole);
    std::fs::copy(&node, &tenant_file)?;
    let cases = [
        (
            "garbage",
            Serve::File(garbage, info.clone()),
            "not a tenant export",
        ),
        (
            "another cursor",
            Serve::File(file.clone(), wrong_cursor),
            "announced",
        ),
        (
            "a node database",
            Serve::File(tenant_file, info.clone()),
            "not a tenant export",
        ),
    ];
    refused_and_replayed(&world, dir.path(), "case", cases, &options, &reference)
}

/// Each file served in `cases` is refused saying `says`, and the join replays the log to the
/// `reference` state.
fn refused_and_replayed(
    world: &World,
    dir: &Path,
    prefix: &str,
    cases: impl IntoIterator<Item = (&'static str, Serve, &'static str)>,
    options: &SyncOptions,
    reference: &State,
) -> R {
    for (i, (what, serve, says)) in cases.into_iter().enumerate() {
        let snap = Snapshots::new(world.central(), serve);
        let path = dir.join(format!("{prefix}-{i}.db"));
        let (_store, report) = join(&path, &snap, options)
            .map_err(|e| format!("{what}: the round failed instead of replaying: {e}"))?;
        match &report.snapshot {
            Some(SnapshotUse::Refused { reason }) => {
                assert!(reason.contains(says), "{what}: {reason}")
            }
            other => panic!("{what}: {other:?}"),
        }
        assert_eq!(&state(&path)?, reference, "{what}: the replay's state");
    }
    Ok(())
}

#[test]
fn an_unreachable_snapshot_fails_the_round_and_the_next_round_takes_it() -> R {
    let (world, _) = busy_world(5, 6)?;
    let dir = tempfile::tempdir()?;
    let (file, info) = snapshot_of(&world, dir.path())?;
    let options = SyncOptions::default().snapshot_from(Some(1));
    let snap = Snapshots::new(world.central(), Serve::Unreachable);
    let path = dir.path().join("node.db");
    let store = Store::open(&path)?;
    let failed = Syncer::new(&store, &snap, &options).join(&caps(), "t");
    let err = failed
        .err()
        .ok_or("the round should fail while the snapshot is cut")?;
    assert_eq!(err.class, pos_tenancy::sync::ErrorClass::Transient);
    assert_eq!(store.sync_status(&caps())?.cursor, 0);
    snap.serve(Serve::File(file, info.clone()));
    let report = Syncer::new(&store, &snap, &options).round(&caps(), "t")?;
    assert!(
        matches!(report.snapshot, Some(SnapshotUse::Taken { cursor, .. }) if cursor == info.cursor),
        "{report:?}"
    );
    Ok(())
}

#[test]
fn a_terminal_that_sold_before_its_first_sync_replays_the_log_instead() -> R {
    let (world, _) = busy_world(9, 4)?;
    let dir = tempfile::tempdir()?;
    let (file, info) = snapshot_of(&world, dir.path())?;
    let snap = Snapshots::new(world.central(), Serve::File(file, info));
    let store = Store::open(dir.path().join("node.db"))?;
    store.add_tenant(&pos_tenancy::NewTenant::new(caps(), "caps"))?;
    // Its own first write: a snapshot would have nothing to merge it with.
    store
        .tenant(&caps())?
        .bootstrap_admin("second-owner", "Second")?;
    let options = SyncOptions::default().snapshot_from(Some(1));
    let report = Syncer::new(&store, &snap, &options).round(&caps(), "t")?;
    assert_eq!(report.snapshot, None);
    assert_eq!(snap.asked(), 0);
    assert!(report.applied > 0);
    Ok(())
}

#[test]
fn a_file_whose_rows_break_this_nodes_rules_is_refused_and_the_log_replayed() -> R {
    let (world, _) = busy_world(11, 4)?;
    let dir = tempfile::tempdir()?;
    let (file, info) = snapshot_of(&world, dir.path())?;
    let options = SyncOptions::default().snapshot_from(Some(1));
    let reference = state(&{
        let replay = Snapshots::new(world.central(), Serve::Nothing);
        join(&dir.path().join("reference.db"), &replay, &options)?;
        dir.path().join("reference.db")
    })?;
    // Files that pass every check made before the copy (a tenant export of caps alone, this
    // schema version, no pending operation, the announced cursor) but whose tables do not
    // hold what this node's tables take: the copy fails on the file, not on this node.
    let cases = [
        (
            "a row a CHECK refuses",
            "PRAGMA ignore_check_constraints = ON;
             UPDATE audit_log SET action = 'bogus' WHERE id = (SELECT min(id) FROM audit_log);",
            "CHECK constraint failed",
        ),
        (
            "a table missing",
            "PRAGMA foreign_keys = OFF; DROP TABLE layaway_payments;",
            "no such table",
        ),
    ];
    let mut served = Vec::new();
    for (i, (what, damage, says)) in cases.into_iter().enumerate() {
        let bad = dir.path().join(format!("bad-{i}.db"));
        std::fs::copy(&file, &bad)?;
        rusqlite::Connection::open(&bad)?.execute_batch(damage)?;
        let bytes = std::fs::metadata(&bad)?.len();
        let info = SnapshotInfo {
            bytes,
            ..info.clone()
        };
        served.push((what, Serve::File(bad, info), says));
    }
    refused_and_replayed(&world, dir.path(), "case", served, &options, &reference)
}

#[test]
fn a_snapshot_past_the_head_of_the_servers_log_is_refused_and_the_log_replayed() -> R {
    let (world, _) = busy_world(13, 4)?;
    let dir = tempfile::tempdir()?;
    let (file, info) = snapshot_of(&world, dir.path())?;
    let options = SyncOptions::default().snapshot_from(Some(1));
    let reference = state(&{
        let replay = Snapshots::new(world.central(), Serve::Nothing);
        join(&dir.path().join("reference.db"), &replay, &options)?;
        dir.path().join("reference.db")
    })?;
    // A snapshot that says it holds operations the log does not have yet (one from another
    // server, or kept while the central database was restored from an older backup): taken,
    // the terminal would skip those sequence numbers for good once the log reaches them.
    let ahead = info.cursor + 1000;
    let future = dir.path().join("future.db");
    std::fs::copy(&file, &future)?;
    rusqlite::Connection::open(&future)?.execute(
        "UPDATE sync_state SET cursor = ?1 WHERE tenant_id = 'caps'",
        [i64::try_from(ahead)?],
    )?;
    let bytes = std::fs::metadata(&future)?.len();
    let snap = Snapshots::new(
        world.central(),
        Serve::File(
            future,
            SnapshotInfo {
                cursor: ahead,
                bytes,
                ..info.clone()
            },
        ),
    );
    let path = dir.path().join("node.db");
    let (store, report) = join(&path, &snap, &options)?;
    match &report.snapshot {
        Some(SnapshotUse::Refused { reason }) => {
            assert!(reason.contains(&ahead.to_string()), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.sync_status(&caps())?.cursor, info.cursor);
    assert_eq!(state(&path)?, reference, "the replay's state");
    Ok(())
}

#[test]
fn a_refused_file_in_wal_mode_leaves_nothing_beside_the_database() -> R {
    let (world, _) = busy_world(17, 2)?;
    let dir = tempfile::tempdir()?;
    let (_, info) = snapshot_of(&world, dir.path())?;
    // A node database (WAL mode) served as the snapshot: opening it to check it makes its
    // `-wal` and `-shm` beside the download.
    let served = dir.path().join("served");
    std::fs::create_dir(&served)?;
    let other = served.join("other-node.db");
    drop(Store::open(&other)?);
    let bytes = std::fs::metadata(&other)?.len();
    let snap = Snapshots::new(
        world.central(),
        Serve::File(other, SnapshotInfo { bytes, ..info }),
    );
    let options = SyncOptions::default().snapshot_from(Some(1));
    let nodes = dir.path().join("nodes");
    std::fs::create_dir(&nodes)?;
    let (store, report) = join(&nodes.join("node.db"), &snap, &options)?;
    assert!(
        matches!(report.snapshot, Some(SnapshotUse::Refused { .. })),
        "{:?}",
        report.snapshot
    );
    drop(store);
    let mut left: Vec<String> = std::fs::read_dir(&nodes)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    left.retain(|name| name.contains(".snapshot-"));
    assert!(left.is_empty(), "left beside the database: {left:?}");
    Ok(())
}

/// A transport through which, the first time this process pulls a page, another process on
/// the same database file pulls the tenant first (deterministically "meanwhile").
struct Meanwhile<'a> {
    inner: &'a Snapshots,
    other: Mutex<Option<Box<dyn FnOnce() + Send + 'a>>>,
}

impl Transport for Meanwhile<'_> {
    fn push(
        &self,
        tenant: &TenantId,
        token: &str,
        operations: &[Operation],
    ) -> Result<Vec<OperationResult>, TransportError> {
        self.inner.push(tenant, token, operations)
    }
    fn pull(
        &self,
        tenant: &TenantId,
        token: &str,
        after: u64,
        limit: u32,
    ) -> Result<OperationPage, TransportError> {
        let page = self.inner.pull(tenant, token, after, limit);
        let other = self.other.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(other) = other {
            other();
        }
        page
    }
    fn config(&self, tenant: &TenantId, token: &str) -> Result<TenantConfig, TransportError> {
        self.inner.config(tenant, token)
    }
    fn snapshot(
        &self,
        tenant: &TenantId,
        token: &str,
        into: &Path,
    ) -> Result<Option<SnapshotInfo>, TransportError> {
        self.inner.snapshot(tenant, token, into)
    }
}

#[test]
fn a_pull_that_another_process_overtook_goes_on_from_its_cursor_instead_of_applying_the_log_again(
) -> R {
    let (world, _) = busy_world(19, 8)?;
    let dir = tempfile::tempdir()?;
    let (file, info) = snapshot_of(&world, dir.path())?;
    // The other process joins from the snapshot, or replays the log, while this one holds a
    // page fetched from cursor 0: the file ends as the other's pull alone leaves it.
    for (i, other_takes_snapshot) in [true, false].into_iter().enumerate() {
        let reference = dir.path().join(format!("reference-{i}.db"));
        {
            let alone = Store::open(&reference)?;
            alone.add_tenant(&pos_tenancy::NewTenant::new(caps(), "caps"))?;
            let serve = match other_takes_snapshot {
                true => Serve::File(file.clone(), info.clone()),
                false => Serve::Nothing,
            };
            let via = Snapshots::new(world.central(), serve);
            let options = SyncOptions::default().snapshot_from(Some(1));
            Syncer::new(&alone, &via, &options).pull(&caps(), "t")?;
        }
        // A conflict's record carries when and by which node it was found: compared by what
        // conflicted.
        let conflicts = "SELECT id, kind, table_name, row_id, column_name FROM sync_conflicts
                         WHERE tenant_id = 'caps' ORDER BY id";
        let timeless = |path: &Path| -> Result<_, Box<dyn std::error::Error>> {
            let mut s = state(path)?;
            s.retain(|(table, _)| {
                !table.starts_with("sync_conflicts") && !table.contains("of conflicts")
            });
            Ok((s, rows(path, conflicts)?))
        };
        let reference = timeless(&reference)?;
        let path = dir.path().join(format!("node-{i}.db"));
        let this = Store::open(&path)?;
        this.add_tenant(&pos_tenancy::NewTenant::new(caps(), "caps"))?;
        let served = Snapshots::new(world.central(), Serve::File(file.clone(), info.clone()));
        let plain = Snapshots::new(world.central(), Serve::Nothing);
        let other_path = path.clone();
        let meanwhile = Meanwhile {
            inner: &plain,
            other: Mutex::new(Some(Box::new(|| {
                let via = if other_takes_snapshot {
                    &served
                } else {
                    &plain
                };
                let options = SyncOptions::default().snapshot_from(Some(1));
                let pulled = Store::open(other_path)
                    .map_err(|e| e.to_string())
                    .and_then(|other| {
                        Syncer::new(&other, via, &options)
                            .pull(&caps(), "t")
                            .map_err(|e| e.to_string())
                    });
                assert!(pulled.is_ok(), "the other process pulled: {pulled:?}");
            }))),
        };
        let options = SyncOptions::default().snapshot_from(None);
        Syncer::new(&this, &meanwhile, &options).pull(&caps(), "t")?;
        drop(this);
        let got = timeless(&path)?;
        let mut differ: Vec<&str> = got
            .0
            .iter()
            .zip(&reference.0)
            .filter(|(a, b)| a != b)
            .map(|(a, _)| a.0.as_str())
            .collect();
        if got.1 != reference.1 {
            differ.push("sync_conflicts");
        }
        assert!(
            differ.is_empty(),
            "other process took the snapshot: {other_takes_snapshot}; differs from a replay: {differ:?}"
        );
    }
    Ok(())
}

#[test]
fn a_server_error_serving_the_snapshot_is_worked_around_with_the_log_and_a_rate_limit_is_waited_for(
) -> R {
    let (world, _) = busy_world(13, 4)?;
    let dir = tempfile::tempdir()?;
    let options = SyncOptions::default().snapshot_from(Some(1));
    // A 500: the join replays the log, which the server still serves.
    let snap = Snapshots::new(world.central(), Serve::Status(500));
    let (store, report) = join(&dir.path().join("a.db"), &snap, &options)?;
    match &report.snapshot {
        Some(SnapshotUse::Refused { reason }) => assert!(reason.contains("500"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(report.cursor, report.server_high);
    assert_eq!(store.sync_status(&caps())?.pending, 0);
    // A 429 is the server asking to wait: the round fails and is retried, nothing written.
    let snap = Snapshots::new(world.central(), Serve::Status(429));
    let store = Store::open(dir.path().join("b.db"))?;
    let failed = Syncer::new(&store, &snap, &options).join(&caps(), "t");
    let err = failed.err().ok_or("a 429 fails the round")?;
    assert_eq!(err.class, pos_tenancy::sync::ErrorClass::Transient);
    assert_eq!(store.sync_status(&caps())?.cursor, 0);
    Ok(())
}
