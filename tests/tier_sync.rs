//! Sync keeps working across a promotion and a demotion (issue 16, stage 2 of the isolation
//! plan): the real `pos-central` binary on 127.0.0.1, and two terminals of one tenant on files
//! of their own. The tenant's pending operations, its sync cursor and its clock move with it,
//! so after a move the terminal pushes what it sold from the tenant's new home, pulls on from
//! where it was (not from 0), and stamps on after its last stamp; a store opened before the
//! move (a long-running sync engine's) follows the route step by step, and a step in flight
//! when the tenant moves is refused as transient, writes nothing in the copy the move left
//! behind, and is finished by the next round.
//!
//! Terminal 1's wall clock is frozen, so only the clock state the node keeps in its files can
//! order its stamps. Every wait is bounded; no timing is asserted.
#![cfg(feature = "server")]

mod common;
mod io_common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::time::Duration;

use common::sync::{assert_log_clean, assert_same_dump, dump, server_log};
use common::{first_admin, product, tid};
use pos_tenancy::catalog::Product;
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::protocol::{Operation, OperationPage, OperationResult, TenantConfig};
use pos_tenancy::sync::{
    ErrorClass, HttpTransport, RoundReport, SyncConfig, SyncEngine, SyncEvent, SyncOptions, Syncer,
    Transport, TransportError,
};
use pos_tenancy::{
    Hlc, ListQuery, MoveReason, NewTenant, Plan, RowId, Store, TenantAccess, TenantId, Timestamp,
};

type E = Box<dyn std::error::Error>;

const BIN: &str = env!("CARGO_BIN_EXE_pos-central");
const SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";
const TENANT: &str = "caps";
/// How long any one thing may take before the test gives up on it (no timing is asserted).
const PATIENCE: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------------ server

fn central(args: &[&str]) -> Result<String, E> {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()?;
    if !out.status.success() {
        return Err(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A running `pos-central serve` with the tenant, and a device token for it.
struct Central {
    dir: tempfile::TempDir,
    db: PathBuf,
    token: String,
    child: Child,
    addr: SocketAddr,
}

impl Central {
    fn start() -> Result<Self, E> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("central.db");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, format!("{SECRET}\n"))?;
        let dbs = db.display().to_string();
        central(&[
            "tenant", "add", "--db", &dbs, "--id", TENANT, "--name", "Caps", "--plan", "pro",
        ])?;
        let token = central(&[
            "token",
            "issue",
            "--db",
            &dbs,
            "--secret-file",
            &secret.display().to_string(),
            "--tenant",
            TENANT,
            "--device",
            "tills",
            "--ttl",
            "1h",
        ])?;
        let mut child = Command::new(BIN)
            .args(["serve", "--db"])
            .arg(&db)
            .args(["--listen", "127.0.0.1:0", "--secret-file"])
            .arg(&secret)
            .args(["--rate-limit", "100000/s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        // Owned before any wait, so a failure below still kills the child.
        let mut server = Self {
            dir,
            db,
            token,
            child,
            addr: "127.0.0.1:0".parse()?,
        };
        let line = lines(stdout).recv_timeout(PATIENCE).unwrap_or_default();
        server.addr = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line {line:?}"))?
            .parse()?;
        Ok(server)
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the tenant's plan on the server, as an operator would.
    fn set_plan(&self, plan: &str) -> Result<(), E> {
        let db = self.db.display().to_string();
        central(&[
            "tenant", "plan", "--db", &db, "--id", TENANT, "--plan", plan,
        ])?;
        Ok(())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn transport(&self) -> Result<HttpTransport, E> {
        Ok(HttpTransport::new(&self.url())?)
    }

    /// The server's head: the highest sequence number of the tenant's log.
    fn head(&self) -> Result<u64, E> {
        Ok(self
            .transport()?
            .pull(&tid(TENANT), &self.token, 0, 1)?
            .high)
    }
}

impl Drop for Central {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines of a child's output, read on a thread until the child closes it.
fn lines(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

// --------------------------------------------------------------------------------- terminals

/// Two terminals of the tenant: terminal 1 (its wall clock frozen at `frozen`) made the
/// admin and the catalog and pushed them, terminal 2 pulled them.
struct Tills {
    c: Central,
    p1: PathBuf,
    p2: PathBuf,
    frozen: u64,
}

impl Tills {
    fn new() -> Result<Self, E> {
        let c = Central::start()?;
        let tills = Self {
            p1: c.path("till1.db"),
            p2: c.path("till2.db"),
            frozen: u64::try_from(Timestamp::now().as_millis())?,
            c,
        };
        let t1 = tills.one()?;
        t1.add_tenant(&NewTenant::new(tid(TENANT), "Caps"))?;
        {
            let mut t = t1.tenant(&tid(TENANT))?;
            let admin = t.bootstrap_admin("owner", "Owner")?;
            let tx = t.transaction()?;
            for k in 0..6 {
                let p = product(&format!("SKU-{k}"), 1_000 + k * 10);
                tx.insert(&admin, &p)?;
                tx.receive_stock(&admin, p.id, "main", 1_000_000_000, Some(500))?;
            }
            tx.commit()?;
        }
        tills.round(&t1)?;
        let t2 = Store::open(&tills.p2)?;
        t2.add_tenant(&NewTenant::new(tid(TENANT), "Caps"))?;
        tills.round(&t2)?;
        Ok(tills)
    }

    /// A store on terminal 1's file, with its frozen wall clock.
    fn one(&self) -> Result<Store, E> {
        let frozen = self.frozen;
        Ok(Store::builder().clock(move || frozen).open(&self.p1)?)
    }

    fn two(&self) -> Result<Store, E> {
        Ok(Store::open(&self.p2)?)
    }

    fn round(&self, store: &Store) -> Result<RoundReport, E> {
        let transport = self.c.transport()?;
        let options = SyncOptions::default();
        Ok(Syncer::new(store, &transport, &options).round(&tid(TENANT), &self.c.token)?)
    }

    /// Rounds on both terminals until neither has anything to push and both have applied the
    /// whole log; bounded. Returns the head.
    fn settle(&self, stores: &[&Store]) -> Result<u64, E> {
        for _ in 0..10 {
            for store in stores {
                self.round(store)?;
            }
            let head = self.c.head()?;
            let mut quiet = true;
            for store in stores {
                let st = store.sync_status(&tid(TENANT))?;
                quiet &= st.pending == 0 && st.cursor == head;
            }
            if quiet {
                return Ok(head);
            }
        }
        Err("the terminals did not settle within ten turns".into())
    }

    /// Both terminals hold the same rows, each read from the file the tenant lives in there,
    /// every operation is in the log once, and `verify` is clean on both.
    fn assert_converged(&self, t1: &Store, t2: &Store, what: &str) -> Result<(), E> {
        let head = self.settle(&[t1, t2])?;
        let log = server_log(&self.c.transport()?, &tid(TENANT), &self.c.token)?;
        assert_log_clean(&log, what);
        assert_eq!(log.len() as u64, head, "{what}");
        let one = dump(&place(t1, &self.p1)?, &tid(TENANT))?;
        let two = dump(&place(t2, &self.p2)?, &tid(TENANT))?;
        assert_same_dump(&one, &two, what);
        for (i, store) in [t1, t2].iter().enumerate() {
            let report = store.verify()?;
            assert!(report.is_ok(), "{what}: terminal {}: {report:?}", i + 1);
        }
        Ok(())
    }
}

/// The file the tenant lives in on a terminal: its own, or the terminal's shared file.
fn place(store: &Store, shared: &Path) -> Result<PathBuf, E> {
    Ok(store
        .tenant_home_path(&tid(TENANT))?
        .unwrap_or_else(|| shared.to_path_buf()))
}

/// Rings up `n` sales on the terminal, wherever the tenant lives there.
fn sell(store: &Store, n: usize) -> Result<(), E> {
    let t = store.tenant(&tid(TENANT))?;
    let admin = first_admin(&t)?;
    let products = t.list::<Product>(&ListQuery::new().limit(100))?.rows;
    for k in 0..n {
        let sale = Checkout::new()
            .line(LineItem::product(products[k % products.len()].id, 1_000))
            .tender(Tender::Cash {
                tendered_minor: 1_000_000,
            });
        t.checkout(&admin, &sale)?;
    }
    Ok(())
}

fn pending(store: &Store) -> Result<Vec<Operation>, E> {
    Ok(store.tenant(&tid(TENANT))?.pending_operations(u32::MAX)?)
}

/// The operations' ids and stamps, in order.
fn stamps(ops: &[Operation]) -> Vec<(RowId, Hlc)> {
    ops.iter().map(|o| (o.id, o.hlc)).collect()
}

/// A count read from a file with a plain connection, for the tenant.
fn count_in(file: &Path, sql: &str) -> Result<i64, E> {
    let conn = rusqlite::Connection::open(file)?;
    Ok(conn.query_row(sql, [TENANT], |r| r.get(0))?)
}

const PENDING: &str = "SELECT count(*) FROM pending_operations WHERE tenant_id = ?1";
const PUSHES: &str =
    "SELECT count(*) FROM sync_log WHERE tenant_id = ?1 AND direction = 'push' AND error IS NULL";

/// Asserts that every operation of `ops` is in the server's log exactly once, as terminal 1's.
fn assert_logged_once(
    tills: &Tills,
    ops: &[Operation],
    device: RowId,
    what: &str,
) -> Result<(), E> {
    let log = server_log(&tills.c.transport()?, &tid(TENANT), &tills.c.token)?;
    let mut times: BTreeMap<RowId, usize> = BTreeMap::new();
    for sop in &log {
        *times.entry(sop.operation.id).or_default() += 1;
    }
    for op in ops {
        assert_eq!(times.get(&op.id), Some(&1), "{what}: operation {}", op.id);
    }
    let ours: BTreeSet<RowId> = log
        .iter()
        .filter(|s| s.operation.device_id == device)
        .map(|s| s.operation.id)
        .collect();
    assert!(ops.iter().all(|o| ours.contains(&o.id)), "{what}: device");
    Ok(())
}

// ------------------------------------------------------------------------------------- tests

/// Terminal 1 sells offline and the tenant is promoted there with the sales pending; both
/// terminals sync and converge: the sales are pushed once from the tenant's file, the pull
/// goes on from the cursor, and stamps go on after the last one. Then the same back into the
/// shared file with new sales pending in the tenant's file.
#[test]
fn sync_keeps_working_across_a_promotion_and_a_demotion_with_operations_pending() -> Result<(), E> {
    let tills = Tills::new()?;
    let caps = tid(TENANT);
    let (t1, t2) = (tills.one()?, tills.two()?);
    sell(&t2, 3)?;
    tills.round(&t2)?;
    tills.round(&t1)?;

    // Terminal 1 sells offline, then the tenant is promoted there with the sales pending.
    sell(&t1, 4)?;
    let before = pending(&t1)?;
    assert!(before.len() >= 4, "{}", before.len());
    let cursor = t1.sync_status(&caps)?.cursor;
    assert!(cursor > 0, "terminal 1 has pulled before");
    let pushes_in_shared = count_in(&tills.p1, PUSHES)?;
    let moved = t1.promote_tenant(&caps, None, MoveReason::Operator, &mut |_| {})?;
    let file = moved.file.clone();
    assert_eq!(t1.tenant_home_path(&caps)?, Some(file.clone()));
    assert_eq!(stamps(&pending(&t1)?), stamps(&before), "the outbox moved");
    assert_eq!(count_in(&file, PENDING)?, before.len() as i64);
    assert_eq!(t1.sync_status(&caps)?.cursor, cursor, "the cursor moved");

    // Stamps after the promotion follow every stamp before it (the wall clock is frozen).
    sell(&t1, 1)?;
    let after = pending(&t1)?;
    let last_before = before.iter().map(|o| o.hlc).max().ok_or("stamps")?;
    let new: Vec<&Operation> = after[before.len()..].iter().collect();
    assert!(!new.is_empty());
    assert!(
        new.iter().all(|o| o.hlc > last_before),
        "the clock moved on: {last_before:?} then {:?}",
        new.iter().map(|o| o.hlc).collect::<Vec<_>>()
    );
    assert_eq!(stamps(&after[..before.len()]), stamps(&before));

    // Terminal 2 sells meanwhile; terminal 1 syncs from the tenant's file.
    sell(&t2, 2)?;
    tills.round(&t2)?;
    let report = tills.round(&t1)?;
    let head = tills.c.head()?;
    assert_eq!(report.pushed, after.len(), "{report:?}");
    assert_eq!(
        report.pulled as u64,
        head - cursor,
        "pulled on from the cursor, not from 0: {report:?}"
    );
    assert_eq!(report.cursor, head);
    assert_logged_once(&tills, &after, t1.node_id(), "after the promotion")?;
    // Pushed from the file: its outbox is empty and it records the push; the shared copy
    // kept the outbox as it was at the promotion and records nothing since.
    assert_eq!(count_in(&file, PENDING)?, 0);
    assert_eq!(count_in(&file, PUSHES)?, pushes_in_shared + 1);
    assert_eq!(count_in(&tills.p1, PENDING)?, before.len() as i64);
    assert_eq!(count_in(&tills.p1, PUSHES)?, pushes_in_shared);
    tills.assert_converged(&t1, &t2, "after the promotion")?;

    // New sales pending in the file, terminal 2 sells too, and the tenant comes back.
    sell(&t1, 3)?;
    sell(&t2, 2)?;
    tills.round(&t2)?;
    let before = pending(&t1)?;
    assert!(before.len() >= 3);
    let cursor = t1.sync_status(&caps)?.cursor;
    t1.demote_tenant(&caps, None, MoveReason::Operator, &mut |_| {})?;
    assert_eq!(t1.tenant_home_path(&caps)?, None);
    assert_eq!(
        stamps(&pending(&t1)?),
        stamps(&before),
        "the outbox came back"
    );
    assert_eq!(count_in(&tills.p1, PENDING)?, before.len() as i64);
    assert_eq!(
        t1.sync_status(&caps)?.cursor,
        cursor,
        "the cursor came back"
    );
    sell(&t1, 1)?;
    let after = pending(&t1)?;
    let last_before = before.iter().map(|o| o.hlc).max().ok_or("stamps")?;
    assert!(
        after[before.len()..].iter().all(|o| o.hlc > last_before),
        "the clock moved on after the demotion"
    );
    let pushes_in_file = count_in(&file, PUSHES)?;
    let report = tills.round(&t1)?;
    let head = tills.c.head()?;
    assert_eq!(report.pushed, after.len(), "{report:?}");
    assert_eq!(report.pulled as u64, head - cursor, "{report:?}");
    assert_logged_once(&tills, &after, t1.node_id(), "after the demotion")?;
    assert_eq!(count_in(&tills.p1, PENDING)?, 0);
    assert_eq!(
        count_in(&file, PUSHES)?,
        pushes_in_file,
        "the file is left alone"
    );
    assert_eq!(count_in(&file, PENDING)?, before.len() as i64);
    tills.assert_converged(&t1, &t2, "after the demotion")?;
    Ok(())
}

/// The newest stamp in the server's log: after a terminal pulled to the head, every stamp it
/// issued or saw is at most this.
fn newest_in_log(tills: &Tills) -> Result<Hlc, E> {
    let log = server_log(&tills.c.transport()?, &tid(TENANT), &tills.c.token)?;
    Ok(log
        .iter()
        .map(|s| s.operation.hlc)
        .max()
        .ok_or("an empty log")?)
}

/// Asserts that every pending operation of the terminal is stamped after `seen`.
fn assert_stamped_after(store: &Store, seen: Hlc, what: &str) -> Result<(), E> {
    let ops = pending(store)?;
    assert!(!ops.is_empty(), "{what}: nothing pending");
    for op in &ops {
        assert!(op.hlc > seen, "{what}: {:?} is not after {seen:?}", op.hlc);
    }
    Ok(())
}

/// Waits, bounded, for the engine's round and returns its events since the last call.
fn engine_round(engine: &SyncEngine, what: &str) -> Result<Vec<SyncEvent>, E> {
    if !engine.sync_and_wait(Some(&tid(TENANT)), PATIENCE) {
        return Err(format!("{what}: the engine's round did not run").into());
    }
    Ok(engine.events().try_iter().collect())
}

/// What an engine's round did: its report; no error.
fn round_done(events: &[SyncEvent], what: &str) -> Result<RoundReport, E> {
    let errors: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SyncEvent::Error(e) => Some(e.to_string()),
            SyncEvent::Offline(_, m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:?}");
    events
        .iter()
        .rev()
        .find_map(|e| match e {
            SyncEvent::RoundDone(_, r) => Some(r.clone()),
            _ => None,
        })
        .ok_or_else(|| format!("{what}: no round done in {events:?}").into())
}

/// A sync engine with a store of its own opened before the promotion (as `pos-node sync`
/// keeps one) while the till's store promotes and later demotes the tenant: every round
/// follows the route, pushes what was sold in the tenant's current home and pulls on from its
/// cursor, with no error; a move with nothing pending still carries the clock.
#[test]
fn a_sync_engine_opened_before_a_promotion_follows_the_tenant_to_its_file_and_back() -> Result<(), E>
{
    let tills = Tills::new()?;
    let caps = tid(TENANT);
    let t2 = tills.two()?;
    // The engine's own store, opened now and kept, as `pos-node sync` keeps its own.
    let token = tills.c.token.clone();
    let engine = SyncEngine::start(
        tills.one()?,
        tills.c.transport()?,
        move |_: &TenantId, _: bool| -> Result<String, String> { Ok(token.clone()) },
        SyncConfig::new()
            .interval(Duration::from_secs(3600))
            .tenants(vec![caps.clone()]),
    );
    let till = tills.one()?;
    sell(&till, 2)?;
    round_done(&engine_round(&engine, "before")?, "before")?;
    assert_eq!(till.sync_status(&caps)?.pending, 0);
    tills.assert_converged(&till, &t2, "before")?;

    // The till's store promotes the tenant, with nothing pending, and sells on; the engine's
    // store never saw the move. The file's clock starts after every stamp the node has seen.
    let seen = newest_in_log(&tills)?;
    till.promote_tenant(&caps, None, MoveReason::Operator, &mut |_| {})?;
    sell(&till, 3)?;
    assert_stamped_after(&till, seen, "promoted")?;
    sell(&t2, 2)?;
    tills.round(&t2)?;
    let sold = pending(&till)?;
    let cursor = till.sync_status(&caps)?.cursor;
    let report = round_done(&engine_round(&engine, "promoted")?, "promoted")?;
    let head = tills.c.head()?;
    assert_eq!(report.pushed, sold.len(), "{report:?}");
    assert_eq!(report.pulled as u64, head - cursor, "{report:?}");
    let st = till.sync_status(&caps)?;
    assert_eq!((st.pending, st.cursor), (0, head), "{st:?}");
    assert_logged_once(&tills, &sold, till.node_id(), "promoted")?;
    tills.assert_converged(&till, &t2, "promoted")?;

    // And back into the shared file, nothing pending: the shared file's clock goes on from
    // the tenant file's, past every stamp seen there.
    let seen = newest_in_log(&tills)?;
    till.demote_tenant(&caps, None, MoveReason::Operator, &mut |_| {})?;
    sell(&till, 3)?;
    assert_stamped_after(&till, seen, "demoted")?;
    sell(&t2, 1)?;
    tills.round(&t2)?;
    let sold = pending(&till)?;
    let cursor = till.sync_status(&caps)?.cursor;
    let report = round_done(&engine_round(&engine, "demoted")?, "demoted")?;
    let head = tills.c.head()?;
    assert_eq!(report.pushed, sold.len(), "{report:?}");
    assert_eq!(report.pulled as u64, head - cursor, "{report:?}");
    assert_logged_once(&tills, &sold, till.node_id(), "demoted")?;
    tills.assert_converged(&till, &t2, "demoted")?;
    engine.shutdown();
    Ok(())
}

// ------------------------------------------------------------------- a step in flight

/// Something to do once, in the middle of a sync step.
type Hook = Box<dyn FnOnce() -> Result<(), String> + Send>;

/// The HTTP transport, running a hook once right after the server answered a push, a pull or
/// a request for the tenant's configuration, before the terminal takes the answer in.
struct Hooked {
    inner: HttpTransport,
    /// Instead of sending the next push: run the hook, then answer it as a refusal (400).
    refuse_push: Mutex<Option<Hook>>,
    after_push: Mutex<Option<Hook>>,
    after_pull: Mutex<Option<Hook>>,
    after_config: Mutex<Option<Hook>>,
    ran: Mutex<Vec<Result<(), String>>>,
}

impl Hooked {
    fn new(inner: HttpTransport) -> Self {
        Self {
            inner,
            refuse_push: Mutex::new(None),
            after_push: Mutex::new(None),
            after_pull: Mutex::new(None),
            after_config: Mutex::new(None),
            ran: Mutex::new(Vec::new()),
        }
    }

    fn set(slot: &Mutex<Option<Hook>>, hook: Hook) -> Result<(), E> {
        *slot.lock().map_err(|_| "a poisoned lock")? = Some(hook);
        Ok(())
    }

    /// What the hooks that ran returned.
    fn ran(&self) -> Result<Vec<Result<(), String>>, E> {
        Ok(self.ran.lock().map_err(|_| "a poisoned lock")?.clone())
    }

    /// Runs the hook in `slot` if there is one; whether there was.
    fn run(&self, slot: &Mutex<Option<Hook>>) -> bool {
        let hook = slot.lock().ok().and_then(|mut h| h.take());
        let Some(hook) = hook else {
            return false;
        };
        let outcome = hook();
        if let Ok(mut ran) = self.ran.lock() {
            ran.push(outcome);
        }
        true
    }
}

impl Transport for Hooked {
    fn push(
        &self,
        tenant: &TenantId,
        token: &str,
        operations: &[Operation],
    ) -> Result<Vec<OperationResult>, TransportError> {
        if self.run(&self.refuse_push) {
            return Err(TransportError::Server {
                status: 400,
                code: "bad_request".into(),
                message: "refused for the test".into(),
                retry_after: None,
            });
        }
        let r = self.inner.push(tenant, token, operations);
        self.run(&self.after_push);
        r
    }

    fn pull(
        &self,
        tenant: &TenantId,
        token: &str,
        after: u64,
        limit: u32,
    ) -> Result<OperationPage, TransportError> {
        let r = self.inner.pull(tenant, token, after, limit);
        self.run(&self.after_pull);
        r
    }

    fn config(&self, tenant: &TenantId, token: &str) -> Result<TenantConfig, TransportError> {
        let r = self.inner.config(tenant, token);
        self.run(&self.after_config);
        r
    }
}

/// A hook that promotes the tenant through a store of its own on terminal 1's file.
fn promote_with(mover: Store) -> Hook {
    Box::new(move || {
        mover
            .promote_tenant(&tid(TENANT), None, MoveReason::Operator, &mut |_| {})
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// A hook that demotes the tenant through a store of its own on terminal 1's file.
fn demote_with(mover: Store) -> Hook {
    Box::new(move || {
        mover
            .demote_tenant(&tid(TENANT), None, MoveReason::Operator, &mut |_| {})
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// The tenant's rows in a file (its registry row aside, which a move changes), read with a
/// plain connection.
fn rows_in(file: &Path) -> io_common::Dump {
    io_common::dump_except(file, TENANT, &["tenants"])
}

/// A push whose answer arrives after the tenant was promoted by another store, and a pulled
/// page whose merge comes after it was demoted: each step is refused and writes nothing in the
/// copy the move left behind, and the round runs once more in the tenant's new home, sending
/// the batch again (stored once) and pulling the page again from the cursor the tenant
/// brought along. The server answered, so the round is no failure and nobody is told
/// "offline".
#[test]
fn a_sync_step_in_flight_when_the_tenant_moves_is_refused_and_the_round_runs_again_in_its_new_home(
) -> Result<(), E> {
    let tills = Tills::new()?;
    let caps = tid(TENANT);
    let t2 = tills.two()?;
    let t1 = tills.one()?;
    let options = SyncOptions::default();
    let hooked = Hooked::new(tills.c.transport()?);

    // A push whose answer arrives after another store on the file promoted the tenant.
    sell(&t1, 3)?;
    let sold = pending(&t1)?;
    let shared_copy = rows_in(&tills.p1);
    Hooked::set(&hooked.after_push, promote_with(tills.one()?))?;
    let report = Syncer::new(&t1, &hooked, &options).round(&caps, &tills.c.token)?;
    assert_eq!(hooked.ran()?, [Ok(())]);
    assert_eq!(
        report.pushed,
        sold.len(),
        "sent again from the file, answered as stored already: {report:?}"
    );
    // The server stored the batch once; the copy the move left behind is exactly as the
    // move left it; the tenant's file has nothing left to push.
    assert_logged_once(&tills, &sold, t1.node_id(), "the batch in flight")?;
    let file = t1.tenant_home_path(&caps)?.ok_or("promoted")?;
    assert!(
        rows_in(&tills.p1) == shared_copy,
        "the step in flight wrote in the shared copy"
    );
    assert_eq!(t1.sync_status(&caps)?.pending, 0);

    // A page pulled while another store demotes the tenant: its merge is refused, and the
    // round pulls it again from the cursor the tenant brought back.
    sell(&t2, 2)?;
    tills.round(&t2)?;
    let cursor = t1.sync_status(&caps)?.cursor;
    let file_copy = rows_in(&file);
    Hooked::set(&hooked.after_pull, demote_with(tills.one()?))?;
    let report = Syncer::new(&t1, &hooked, &options).round(&caps, &tills.c.token)?;
    assert_eq!(hooked.ran()?, [Ok(()), Ok(())]);
    assert_eq!(t1.tenant_home_path(&caps)?, None);
    assert!(
        rows_in(&file) == file_copy,
        "the step in flight wrote in the file the tenant left"
    );
    let head = tills.c.head()?;
    assert_eq!(report.pulled as u64, head - cursor, "{report:?}");
    assert!(report.applied > 0, "{report:?}");
    tills.assert_converged(&t1, &t2, "after both moves in flight")?;
    Ok(())
}

/// The server's settings for the tenant arrive while another store promotes it: they are not
/// written in the shared copy the move left behind (where no handle reads them) but refused
/// as transient, and the next round writes them where the tenant lives.
#[test]
fn settings_taken_in_while_the_tenant_moves_are_refused_and_written_in_its_new_home_next_round(
) -> Result<(), E> {
    let tills = Tills::new()?;
    let caps = tid(TENANT);
    let t1 = tills.one()?;
    let options = SyncOptions::default();
    let hooked = Hooked::new(tills.c.transport()?);
    assert_eq!(t1.tenant_info(&caps)?.plan, Plan::Pro);
    tills.c.set_plan("enterprise")?;
    let shared_registry = io_common::dump(&tills.p1, TENANT)["tenants"].clone();
    Hooked::set(&hooked.after_config, promote_with(tills.one()?))?;
    // The step alone: a whole round would run once more in the new home by itself.
    let taken = Syncer::new(&t1, &hooked, &options).pull_config(&caps, &tills.c.token);
    assert_eq!(hooked.ran()?, [Ok(())]);
    let err = taken.err().ok_or("the settings in flight were taken in")?;
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    assert_eq!(t1.tenant_info(&caps)?.plan, Plan::Pro, "not yet");
    let registry = io_common::dump(&tills.p1, TENANT)["tenants"].clone();
    // The promotion set the tier and the time; the plan and the rest are as they were.
    let plan_column = |rows: &Vec<Vec<rusqlite::types::Value>>| -> Vec<String> {
        rows.iter()
            .flat_map(|r| r.iter())
            .filter_map(|v| match v {
                rusqlite::types::Value::Text(t) => Some(t.clone()),
                _ => None,
            })
            .filter(|t| ["free", "pro", "enterprise"].contains(&t.as_str()))
            .collect()
    };
    assert_eq!(plan_column(&registry), plan_column(&shared_registry));
    let report = Syncer::new(&t1, &hooked, &options).round(&caps, &tills.c.token)?;
    assert!(report.settings_changed, "{report:?}");
    assert_eq!(t1.tenant_info(&caps)?.plan, Plan::Enterprise);
    assert!(t1.tenant_home_path(&caps)?.is_some());
    Ok(())
}

/// A push the server refuses while another store promotes the tenant: the refused sale is not
/// set aside in the shared copy the move left behind (where nobody would see it, while the
/// tenant's file kept it pending), but the step is refused as transient, and the next round
/// pushes the sale from the tenant's file.
#[test]
fn a_push_refused_while_the_tenant_moves_sets_nothing_aside_in_the_copy_left_behind(
) -> Result<(), E> {
    let tills = Tills::new()?;
    let caps = tid(TENANT);
    let t1 = tills.one()?;
    let options = SyncOptions::default();
    let hooked = Hooked::new(tills.c.transport()?);
    sell(&t1, 1)?;
    let sold = pending(&t1)?;
    let shared_copy = rows_in(&tills.p1);
    Hooked::set(&hooked.refuse_push, promote_with(tills.one()?))?;
    // The step alone: a whole round would run once more in the new home by itself.
    let taken = Syncer::new(&t1, &hooked, &options).push(&caps, &tills.c.token);
    assert_eq!(hooked.ran()?, [Ok(())]);
    let err = taken.err().ok_or("the refusal in flight was taken in")?;
    assert_eq!(err.class, ErrorClass::Transient, "{err}");
    assert!(
        rows_in(&tills.p1) == shared_copy,
        "the step in flight wrote in the shared copy"
    );
    let st = t1.sync_status(&caps)?;
    assert_eq!((st.pending, st.set_aside), (sold.len() as u64, 0), "{st:?}");
    let report = Syncer::new(&t1, &hooked, &options).round(&caps, &tills.c.token)?;
    assert_eq!(
        (report.pushed, report.set_aside),
        (sold.len(), 0),
        "{report:?}"
    );
    assert_logged_once(&tills, &sold, t1.node_id(), "pushed from the file")?;
    Ok(())
}
