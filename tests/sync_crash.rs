//! Real processes on 127.0.0.1: the `pos-central` binary, and syncing terminals that are
//! killed with SIGKILL at random moments of their push and of their pull and merge, then
//! restarted; a server that dies between its commit and its answer (feature
//! `fault-injection`); and a proxy in front of the server that is slow, drops connections
//! before and after the server's commit, and answers 503.
//!
//! Each terminal is this test binary run again as a child (`POS_SYNC_CHILD_DB` set): it sells
//! on its own file, printing each sale's id once `checkout` returned, and runs
//! `Syncer::round` over `HttpTransport` in a loop, printing a marker before and after every
//! call to the server, so the parent knows where each kill landed. At the end every terminal
//! syncs to the head and the test checks: every sale a child reported is on every terminal
//! and in the server's log exactly once, no operation is in the log twice, cursors are the
//! server's head, nothing is pending, `verify()` is clean and every terminal holds the same
//! rows. Every wait is bounded; no test asserts a timing.
#![cfg(feature = "server")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::sync::{assert_log_clean, assert_same_dump, dump, server_log};
use common::{product, tid};
use pos_tenancy::catalog::{Product, Sale};
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::protocol::{Operation, OperationPage, OperationResult, TenantConfig};
use pos_tenancy::sync::{
    HttpTransport, SyncConfig, SyncEngine, SyncOptions, Syncer, Transport, TransportError,
};
use pos_tenancy::{ListQuery, NewTenant, RowId, Store, TenantAccess, TenantId};
use rand::{Rng, SeedableRng};

type E = Box<dyn std::error::Error>;

const BIN: &str = env!("CARGO_BIN_EXE_pos-central");
const SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";
const TENANT: &str = "caps";
const KILL_TEST: &str =
    "syncing_terminals_killed_at_random_moments_lose_nothing_and_store_nothing_twice";
/// How long any one thing may take before the test gives up on it (no timing is asserted).
const PATIENCE: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------------ server

struct Central {
    dir: tempfile::TempDir,
    db: PathBuf,
    secret: PathBuf,
    token: String,
}

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

impl Central {
    /// A central database with the tenant, and a device token for it.
    fn new() -> Result<Self, E> {
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
        Ok(Self {
            dir,
            db,
            secret,
            token,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `pos-central serve` on an ephemeral port, with a rate limit no test reaches.
    fn serve(&self, extra: &[&str]) -> Result<Server, E> {
        let mut child = Command::new(BIN)
            .args(["serve", "--db"])
            .arg(&self.db)
            .args(["--listen", "127.0.0.1:0", "--secret-file"])
            .arg(&self.secret)
            .args(["--rate-limit", "100000/s"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        // Owned before any wait, so a failure below still kills the child.
        let mut server = Server {
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
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits, bounded, for the server to exit by itself.
    #[cfg(feature = "fault-injection")]
    fn wait_exit(&mut self) -> Result<std::process::ExitStatus, E> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err("the server did not exit".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
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

/// A terminal's file with the tenant registered.
fn terminal(path: &Path) -> Result<Store, E> {
    let store = Store::open(path)?;
    if store.tenant(&tid(TENANT)).is_err() {
        store.add_tenant(&NewTenant::new(tid(TENANT), "Caps"))?;
    }
    Ok(store)
}

/// The first terminal makes the admin and a catalog with plenty of stock, and pushes them;
/// the others pull them.
fn seed_terminals(paths: &[PathBuf], url: &str, token: &str, products: usize) -> Result<(), E> {
    let transport = HttpTransport::new(url)?;
    let options = SyncOptions::default();
    for (i, path) in paths.iter().enumerate() {
        let store = terminal(path)?;
        if i == 0 {
            let mut t = store.tenant(&tid(TENANT))?;
            let admin = t.bootstrap_admin("owner", "Owner")?;
            let tx = t.transaction()?;
            for k in 0..products {
                let p = product(&format!("SKU-{k}"), 1_000 + k as i64 * 10);
                tx.insert(&admin, &p)?;
                tx.receive_stock(&admin, p.id, "main", 1_000_000_000, Some(500))?;
            }
            tx.commit()?;
        }
        Syncer::new(&store, &transport, &options).round(&tid(TENANT), token)?;
    }
    Ok(())
}

/// Rounds on every terminal in turn until none has anything to push and each has applied
/// the whole log; bounded.
fn settle(stores: &[Store], transport: &dyn Transport, token: &str) -> Result<u64, E> {
    let options = SyncOptions::default();
    let tenant = tid(TENANT);
    for _ in 0..10 {
        for store in stores {
            Syncer::new(store, transport, &options).round(&tenant, token)?;
        }
        let head = transport.pull(&tenant, token, 0, 1)?.high;
        let mut quiet = true;
        for store in stores {
            let st = store.sync_status(&tenant)?;
            quiet &= st.pending == 0 && st.cursor == head;
        }
        if quiet {
            return Ok(head);
        }
    }
    Err("the terminals did not settle within ten turns".into())
}

/// What every terminal must show once settled: nothing pending or set aside, the cursor at
/// the head, a clean `verify`, an intact file, the same rows as the first terminal, and no
/// operation twice in the log. Returns the log.
fn assert_settled(
    stores: &[Store],
    paths: &[PathBuf],
    transport: &dyn Transport,
    token: &str,
    head: u64,
) -> Result<Vec<pos_tenancy::protocol::SequencedOperation>, E> {
    let tenant = tid(TENANT);
    let log = server_log(transport, &tenant, token)?;
    assert_log_clean(&log, "the server's log");
    assert_eq!(log.len() as u64, head);
    let first = dump(&paths[0], &tenant)?;
    for (i, (store, path)) in stores.iter().zip(paths).enumerate() {
        let st = store.sync_status(&tenant)?;
        assert_eq!(
            (st.pending, st.set_aside, st.cursor, st.server_high),
            (0, 0, head, head),
            "terminal {i}: {st:?}"
        );
        assert!(
            st.online && st.last_error.is_none() && !st.stalled,
            "terminal {i}: {st:?}"
        );
        // A push is recorded only when it sent something (a terminal that only reads has none).
        let pushed = log.iter().any(|s| s.operation.device_id == store.node_id());
        assert_eq!(st.last_push_at.is_some(), pushed, "terminal {i}: {st:?}");
        assert!(st.last_pull_at.is_some(), "terminal {i}: {st:?}");
        let report = store.verify()?;
        assert!(report.is_ok(), "terminal {i}: {:?}", report.violations);
        let conn = rusqlite::Connection::open(path)?;
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        assert_eq!(check, "ok", "terminal {i}");
        assert_same_dump(&first, &dump(path, &tenant)?, &format!("terminal {i}"));
    }
    Ok(log)
}

// ------------------------------------------------------------------------------------- child

/// The HTTP transport, printing a marker before and after each call so the parent can tell
/// where a kill landed.
struct Traced(HttpTransport);

impl Transport for Traced {
    fn push(
        &self,
        tenant: &TenantId,
        token: &str,
        operations: &[Operation],
    ) -> Result<Vec<OperationResult>, TransportError> {
        println!("push> {}", operations.len());
        let r = self.0.push(tenant, token, operations);
        println!("push<");
        r
    }

    fn pull(
        &self,
        tenant: &TenantId,
        token: &str,
        after: u64,
        limit: u32,
    ) -> Result<OperationPage, TransportError> {
        println!("pull> {after}");
        let r = self.0.pull(tenant, token, after, limit);
        // The page is merged after this line.
        println!("pull<");
        r
    }

    fn config(&self, tenant: &TenantId, token: &str) -> Result<TenantConfig, TransportError> {
        self.0.config(tenant, token)
    }
}

/// What the parent hands a child terminal: the server's URL, the token and its seeded stream.
fn child_env() -> Result<(String, String, rand_chacha::ChaCha8Rng), E> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let seed: u64 = var("POS_SYNC_CHILD_SEED")?.parse()?;
    Ok((
        var("POS_SYNC_CHILD_URL")?,
        var("POS_SYNC_CHILD_TOKEN")?,
        rand_chacha::ChaCha8Rng::seed_from_u64(seed),
    ))
}

fn child(db: &Path) -> ! {
    let run = || -> Result<(), E> {
        let (url, token, mut rng) = child_env()?;
        let store = Store::open(db)?;
        let tenant = tid(TENANT);
        let t = store.tenant(&tenant)?;
        let admin = common::first_admin(&t)?;
        let products = t.list::<Product>(&ListQuery::new().limit(100))?.rows;
        let transport = Traced(HttpTransport::new(&url)?);
        // Small batches and pages: many calls, so kills land between them too.
        let options = SyncOptions::default()
            .batch_size(rng.random_range(3..20))
            .page_size(rng.random_range(3..20));
        let syncer = Syncer::new(&store, &transport, &options);
        loop {
            for _ in 0..rng.random_range(1..4) {
                let mut sale = Checkout::new();
                for _ in 0..rng.random_range(1..4) {
                    let p = &products[rng.random_range(0..products.len())];
                    sale = sale.line(LineItem::product(p.id, 1_000));
                }
                let receipt = t.checkout(
                    &admin,
                    &sale.tender(Tender::Cash {
                        tendered_minor: 10_000_000,
                    }),
                )?;
                println!("sale {}", receipt.sale.id);
            }
            match syncer.round(&tenant, &token) {
                Ok(r) => println!("round {} {}", r.pushed, r.applied),
                Err(e) => println!("error {} {e}", e.class.as_str()),
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(0..5)));
        }
    };
    match run() {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            println!("failed {e}");
            std::process::exit(3)
        }
    }
}

/// A running child terminal and what it printed.
struct Node {
    child: Child,
    lines: Receiver<String>,
    /// The last lines read, the newest last.
    recent: std::collections::VecDeque<String>,
}

impl Node {
    fn start(exe: &Path, db: &Path, url: &str, token: &str, seed: u64) -> Result<Self, E> {
        let mut child = Command::new(exe)
            .args(["--exact", KILL_TEST, "--nocapture", "--test-threads=1"])
            .env("POS_SYNC_CHILD_DB", db)
            .env("POS_SYNC_CHILD_URL", url)
            .env("POS_SYNC_CHILD_TOKEN", token)
            .env("POS_SYNC_CHILD_SEED", seed.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        Ok(Self {
            child,
            lines: lines(stdout),
            recent: std::collections::VecDeque::new(),
        })
    }

    fn note(&mut self, line: String) {
        if self.recent.len() == 20 {
            self.recent.pop_front();
        }
        self.recent.push_back(line);
    }

    fn last(&self) -> &str {
        self.recent.back().map_or("", String::as_str)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the parent learnt from the children's lines.
#[derive(Default)]
struct Seen {
    /// Sales each child reported committed, by terminal.
    committed: Vec<BTreeSet<RowId>>,
    /// Rounds that failed, with their error.
    errors: Vec<String>,
    rounds: usize,
}

impl Seen {
    fn take(&mut self, node: usize, line: &str) -> Result<(), E> {
        if let Some(id) = line.strip_prefix("sale ") {
            self.committed[node].insert(id.trim().parse()?);
        } else if line.starts_with("round ") {
            self.rounds += 1;
        } else if line.starts_with("error ") || line.starts_with("failed ") {
            self.errors.push(format!("terminal {node}: {line}"));
        }
        Ok(())
    }
}

/// Where a kill landed, from the last marker the child printed before it died.
fn phase(last: &str) -> &'static str {
    match last.split(' ').next().unwrap_or_default() {
        "push>" => "push",
        "push<" => "push answered",
        "pull>" => "pull",
        "pull<" => "merge",
        "sale" => "sale",
        _ => "between",
    }
}

/// Three terminals sell and sync at once; one at a time is killed, aimed alternately at a
/// push (just after a batch left) and at a pull (just after a page came, while it merges),
/// with a random delay after the aim, and restarted: at least 24 kills, and at least five
/// landing in each direction. `POS_SYNC_KILL_SEED` picks another seed (the default is fixed).
#[test]
fn syncing_terminals_killed_at_random_moments_lose_nothing_and_store_nothing_twice() -> Result<(), E>
{
    if let Some(db) = std::env::var_os("POS_SYNC_CHILD_DB") {
        child(Path::new(&db));
    }
    const NODES: usize = 3;
    const MIN_KILLS: usize = 24;
    const MAX_KILLS: usize = 60;
    let c = Central::new()?;
    let server = c.serve(&[])?;
    let url = server.url();
    let paths: Vec<PathBuf> = (0..NODES).map(|i| c.path(&format!("till{i}.db"))).collect();
    seed_terminals(&paths, &url, &c.token, 12)?;

    let exe = std::env::current_exe()?;
    let seed = std::env::var("POS_SYNC_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(14);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut seen = Seen {
        committed: vec![BTreeSet::new(); NODES],
        ..Seen::default()
    };
    let mut nodes: Vec<Node> = Vec::new();
    for path in &paths {
        nodes.push(Node::start(&exe, path, &url, &c.token, rng.random())?);
    }
    let mut landed: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut kills = 0;
    while kills < MAX_KILLS {
        let enough = |landed: &BTreeMap<&str, usize>| {
            let n = |p: &[&str]| {
                p.iter()
                    .map(|p| landed.get(p).copied().unwrap_or(0))
                    .sum::<usize>()
            };
            n(&["push", "push answered"]) >= 5 && n(&["pull", "merge"]) >= 5
        };
        if kills >= MIN_KILLS && enough(&landed) {
            break;
        }
        let i = kills % NODES;
        // Aim at a push (a batch on its way, or its answer being taken) or at a pull (a
        // page on its way, or being merged), after a few calls so that some work is done.
        let target = if kills % 2 == 0 { "push>" } else { "pull<" };
        let mut skip = rng.random_range(0..4u32);
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .ok_or_else(|| {
                    format!("terminal {i} printed no {target:?}: {:?}", nodes[i].recent)
                })?;
            let line = match nodes[i].lines.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("terminal {i} died: {:?}", nodes[i].recent).into())
                }
            };
            seen.take(i, &line)?;
            let hit = line.starts_with(target);
            nodes[i].note(line);
            if hit {
                if skip == 0 {
                    break;
                }
                skip -= 1;
            }
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..8_000)));
        nodes[i].child.kill()?;
        nodes[i].child.wait()?;
        kills += 1;
        // What it printed before dying happened too.
        while let Ok(line) = nodes[i].lines.recv_timeout(PATIENCE) {
            seen.take(i, &line)?;
            nodes[i].note(line);
        }
        *landed.entry(phase(nodes[i].last())).or_default() += 1;
        nodes[i] = Node::start(&exe, &paths[i], &url, &c.token, rng.random())?;
        // Meanwhile the others run on; take what they said so their pipes never fill.
        for (k, node) in nodes.iter_mut().enumerate() {
            while let Ok(line) = node.lines.try_recv() {
                seen.take(k, &line)?;
                node.note(line);
            }
        }
    }
    // The last ones die wherever they are.
    for (i, node) in nodes.iter_mut().enumerate() {
        node.child.kill()?;
        node.child.wait()?;
        while let Ok(line) = node.lines.recv_timeout(PATIENCE) {
            seen.take(i, &line)?;
        }
    }
    drop(nodes);
    assert!(kills >= MIN_KILLS, "{kills} kills");
    let n = |p: &[&str]| {
        p.iter()
            .map(|p| landed.get(p).copied().unwrap_or(0))
            .sum::<usize>()
    };
    assert!(
        n(&["push", "push answered"]) >= 5 && n(&["pull", "merge"]) >= 5,
        "too few kills landed in push or in pull: {landed:?}"
    );
    // No terminal was refused anything and none failed on its own file: a failed round may
    // only be the network's doing (none expected, as the server never stops here).
    let bad: Vec<&String> = seen
        .errors
        .iter()
        .filter(|e| !e.contains(": error transient "))
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
    assert!(seen.rounds > 0, "no round ever finished");

    // Everyone syncs to the head, and every promise holds.
    let stores: Vec<Store> = paths.iter().map(Store::open).collect::<Result<_, _>>()?;
    let transport = HttpTransport::new(&url)?;
    let head = settle(&stores, &transport, &c.token)?;
    let log = assert_settled(&stores, &paths, &transport, &c.token, head)?;
    let mut sales_in_log: BTreeMap<RowId, usize> = BTreeMap::new();
    for sop in &log {
        if sop.operation.table == "sales" {
            *sales_in_log.entry(sop.operation.row_id).or_default() += 1;
        }
    }
    let committed: BTreeSet<RowId> = seen.committed.iter().flatten().copied().collect();
    assert!(committed.len() > 50, "{} sales", committed.len());
    for id in &committed {
        assert_eq!(sales_in_log.get(id), Some(&1), "sale {id} in the log");
    }
    for (i, store) in stores.iter().enumerate() {
        let t = store.tenant(&tid(TENANT))?;
        for id in &committed {
            assert!(
                t.get::<Sale>(*id)?.is_some(),
                "terminal {i} lacks sale {id}"
            );
        }
        // Every sale of the log once, each with its lines, and nothing else.
        let held: i64 = t.query("SELECT count(*) AS n FROM sales")?.rows[0][0]
            .as_i64()
            .ok_or("a count")?;
        assert_eq!(held as usize, sales_in_log.len(), "terminal {i}: sales");
        let with_lines: BTreeSet<String> = t
            .query("SELECT DISTINCT sale_id FROM sale_lines")?
            .rows
            .iter()
            .filter_map(|r| r[0].as_str().map(str::to_owned))
            .collect();
        assert!(
            committed
                .iter()
                .all(|id| with_lines.contains(&id.to_string())),
            "terminal {i}: a sale without its lines"
        );
    }
    eprintln!(
        "{kills} kills ({landed:?}), {} sales committed, {} rounds ({} failed), log of {head}",
        committed.len(),
        seen.rounds,
        seen.errors.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------- the answer is lost

/// The server commits a push and dies before answering it (`--fault-abort-after-commit`):
/// the terminal learns nothing, keeps the operations, and after the restart sends them
/// again; the server answers them as duplicates, and the log holds each once.
#[cfg(feature = "fault-injection")]
#[test]
fn an_answer_lost_to_a_server_crash_after_its_commit_is_sent_again_and_stored_once() -> Result<(), E>
{
    let c = Central::new()?;
    let paths = vec![c.path("a.db"), c.path("b.db")];
    let a = terminal(&paths[0])?;
    let t = a.tenant(&tid(TENANT))?;
    let admin = t.bootstrap_admin("owner", "Owner")?;
    for k in 0..8 {
        t.insert(&admin, &product(&format!("P-{k}"), 100 + k))?;
    }
    let made = t.pending_operations(1000)?;
    assert_eq!(made.len(), 9);
    let options = SyncOptions::default().batch_size(4);
    let mut dying = c.serve(&["--fault-abort-after-commit", "2"])?;
    let err = Syncer::new(&a, &HttpTransport::new(&dying.url())?, &options)
        .round(&tid(TENANT), &c.token)
        .err()
        .ok_or("the lost answer was not reported")?;
    assert_eq!(err.class, pos_tenancy::sync::ErrorClass::Transient, "{err}");
    assert!(!dying.wait_exit()?.success(), "the server aborted");
    let st = a.sync_status(&tid(TENANT))?;
    assert_eq!(
        st.pending, 5,
        "the first batch acknowledged, the second not"
    );

    let server = c.serve(&[])?;
    let transport = HttpTransport::new(&server.url())?;
    // The whole second batch is in the log already: it comes back as duplicates.
    let before = transport.pull(&tid(TENANT), &c.token, 0, 1)?.high;
    assert_eq!(before, 8, "both batches were committed");
    let report = Syncer::new(&a, &transport, &options).push(&tid(TENANT), &c.token)?;
    assert_eq!(report.pushed, 5);
    let b = terminal(&paths[1])?;
    let stores = vec![a, b];
    let head = settle(&stores, &transport, &c.token)?;
    let log = assert_settled(&stores, &paths, &transport, &c.token, head)?;
    let logged: BTreeSet<RowId> = log.iter().map(|s| s.operation.id).collect();
    assert!(made.iter().all(|op| logged.contains(&op.id)));
    assert_eq!(head, 9, "each operation once");
    Ok(())
}

// ----------------------------------------------------------------------------------- a proxy

/// What the proxy does to the next requests.
#[derive(Debug, Default)]
struct Faults {
    /// Every answer waits this long.
    delay: Duration,
    /// The next requests: the connection closes before they reach the server.
    drop_before: usize,
    /// The next pushes: the server commits them, the connection closes before the answer.
    drop_answer: usize,
    /// The next requests are answered 503 with `Retry-After: 1` without reaching the server.
    unavailable: usize,
}

/// An HTTP/1.1 proxy on 127.0.0.1 in front of the server: one thread a connection, one
/// connection to the server a request, and the faults it is told to inject.
struct Proxy {
    addr: SocketAddr,
    faults: Arc<Mutex<Faults>>,
    /// Requests that reached the server.
    forwarded: Arc<AtomicUsize>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Result<Self, E> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let proxy = Self {
            addr: listener.local_addr()?,
            faults: Arc::default(),
            forwarded: Arc::default(),
        };
        let faults = Arc::clone(&proxy.faults);
        let forwarded = Arc::clone(&proxy.forwarded);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let faults = Arc::clone(&faults);
                let forwarded = Arc::clone(&forwarded);
                std::thread::spawn(move || {
                    let _ = serve_connection(client, upstream, &faults, &forwarded);
                });
            }
        });
        Ok(proxy)
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        match self.faults.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

enum Fate {
    Forward,
    DropBefore,
    DropAnswer,
    Unavailable,
}

fn serve_connection(
    client: TcpStream,
    upstream: SocketAddr,
    faults: &Mutex<Faults>,
    forwarded: &AtomicUsize,
) -> std::io::Result<()> {
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut to_client = client;
    loop {
        let Some(request) = read_message(&mut from_client)? else {
            return Ok(());
        };
        let is_push = request.starts_with(b"POST ");
        let (fate, delay) = {
            let mut f = faults
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            let fate = if f.drop_before > 0 {
                f.drop_before -= 1;
                Fate::DropBefore
            } else if f.unavailable > 0 {
                f.unavailable -= 1;
                Fate::Unavailable
            } else if is_push && f.drop_answer > 0 {
                f.drop_answer -= 1;
                Fate::DropAnswer
            } else {
                Fate::Forward
            };
            (fate, f.delay)
        };
        match fate {
            Fate::DropBefore => return Ok(()),
            Fate::Unavailable => {
                let body = r#"{"error":"unavailable","message":"the proxy says try later"}"#;
                write!(
                    to_client,
                    "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )?;
                to_client.flush()?;
            }
            Fate::Forward | Fate::DropAnswer => {
                let mut server = TcpStream::connect(upstream)?;
                server.write_all(&request)?;
                let answer = read_message(&mut BufReader::new(server))?
                    .ok_or_else(|| std::io::Error::other("the server closed"))?;
                forwarded.fetch_add(1, Ordering::SeqCst);
                if matches!(fate, Fate::DropAnswer) {
                    // Committed by the server; the terminal never hears of it.
                    return Ok(());
                }
                std::thread::sleep(delay);
                to_client.write_all(&answer)?;
                to_client.flush()?;
            }
        }
    }
}

/// One HTTP/1.1 message, head and body (by Content-Length or chunked), as read; `None` at
/// the end of the stream.
fn read_message(r: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut raw = Vec::new();
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line)? == 0 {
            return if raw.is_empty() {
                Ok(None)
            } else {
                Err(std::io::Error::other("the stream ended in a head"))
            };
        }
        raw.extend_from_slice(&line);
        let text = String::from_utf8_lossy(&line).to_ascii_lowercase();
        if let Some(v) = text.strip_prefix("content-length:") {
            length = v.trim().parse().map_err(std::io::Error::other)?;
        }
        if text.starts_with("transfer-encoding:") && text.contains("chunked") {
            chunked = true;
        }
        if line == b"\r\n" {
            break;
        }
    }
    if chunked {
        loop {
            let mut size_line = Vec::new();
            r.read_until(b'\n', &mut size_line)?;
            raw.extend_from_slice(&size_line);
            let size_text = String::from_utf8_lossy(&size_line);
            let size =
                usize::from_str_radix(size_text.trim().split(';').next().unwrap_or_default(), 16)
                    .map_err(std::io::Error::other)?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk)?;
            raw.extend_from_slice(&chunk);
            if size == 0 {
                return Ok(Some(raw));
            }
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body)?;
    raw.extend_from_slice(&body);
    Ok(Some(raw))
}

/// Waits, bounded, until the terminal has nothing pending.
fn wait_pushed(store: &Store) -> Result<(), E> {
    let deadline = Instant::now() + PATIENCE;
    while store.sync_status(&tid(TENANT))?.pending > 0 {
        if Instant::now() > deadline {
            return Err(format!("still pending: {:?}", store.sync_status(&tid(TENANT))?).into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Through a proxy: a slow server (every answer late) still takes the pushes; a connection
/// dropped before the request reaches the server, an answer dropped after the server's
/// commit, and 503s are each retried by the engine by itself, with no local write, and end
/// in everything stored once and both terminals equal.
#[test]
fn a_slow_server_dropped_connections_and_503s_end_in_everything_stored_once() -> Result<(), E> {
    let c = Central::new()?;
    let server = c.serve(&[])?;
    let proxy = Proxy::start(server.addr)?;
    let paths = vec![c.path("a.db"), c.path("b.db")];
    seed_terminals(&paths[..1], &proxy.url(), &c.token, 4)?;
    let a = terminal(&paths[0])?;
    let sell = |n: usize| -> Result<Vec<RowId>, E> {
        let t = a.tenant(&tid(TENANT))?;
        let admin = common::first_admin(&t)?;
        let products = t.list::<Product>(&ListQuery::new())?.rows;
        let mut ids = Vec::new();
        for k in 0..n {
            let sale = Checkout::new()
                .line(LineItem::product(products[k % products.len()].id, 1_000))
                .tender(Tender::Cash {
                    tendered_minor: 100_000,
                });
            ids.push(t.checkout(&admin, &sale)?.sale.id);
        }
        Ok(ids)
    };
    let mut sales = Vec::new();

    // Slow: every answer comes 300 ms late, the pushes still go through, batch by batch.
    proxy.faults().delay = Duration::from_millis(300);
    sales.extend(sell(3)?);
    let options = SyncOptions::default().batch_size(8);
    let before = proxy.forwarded.load(Ordering::SeqCst);
    let report = Syncer::new(&a, &HttpTransport::new(&proxy.url())?, &options)
        .push(&tid(TENANT), &c.token)?;
    assert!(report.pushed > 8, "{report:?}");
    assert!(proxy.forwarded.load(Ordering::SeqCst) - before >= 2);
    assert_eq!(a.sync_status(&tid(TENANT))?.pending, 0);
    proxy.faults().delay = Duration::ZERO;

    // Faults one after another, each retried by the engine by itself.
    let engine = SyncEngine::start(
        Store::open(&paths[0])?,
        HttpTransport::new(&proxy.url())?,
        {
            let token = c.token.clone();
            move |_: &TenantId, _: bool| Ok::<_, String>(token.clone())
        },
        SyncConfig::new()
            .interval(Duration::from_secs(3600))
            .backoff(Duration::from_millis(50), Duration::from_millis(300))
            .options(SyncOptions::default().batch_size(8)),
    );
    for fault in ["drop_before", "drop_answer", "unavailable"] {
        {
            let mut f = proxy.faults();
            match fault {
                "drop_before" => f.drop_before = 1,
                "drop_answer" => f.drop_answer = 1,
                _ => f.unavailable = 2,
            }
        }
        sales.extend(sell(2)?);
        engine.sync_now(None);
        wait_pushed(&a)?;
        let f = proxy.faults();
        assert_eq!(
            (f.drop_before, f.drop_answer, f.unavailable),
            (0, 0, 0),
            "{fault} was injected"
        );
    }
    engine.shutdown();
    let st = a.sync_status(&tid(TENANT))?;
    assert!(st.last_error.is_none(), "{st:?}");
    let logged: Vec<String> = rusqlite::Connection::open(&paths[0])?
        .prepare("SELECT error FROM sync_log WHERE error IS NOT NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    assert!(
        logged.len() >= 3,
        "every failed attempt is logged: {logged:?}"
    );

    let b = terminal(&paths[1])?;
    let stores = vec![a, b];
    let transport = HttpTransport::new(&proxy.url())?;
    let head = settle(&stores, &transport, &c.token)?;
    let log = assert_settled(&stores, &paths, &transport, &c.token, head)?;
    for id in &sales {
        assert_eq!(
            log.iter()
                .filter(|s| s.operation.table == "sales" && s.operation.row_id == *id)
                .count(),
            1,
            "sale {id}"
        );
        assert!(stores[1].tenant(&tid(TENANT))?.get::<Sale>(*id)?.is_some());
    }
    Ok(())
}

// ------------------------------------------------------------------ joining in bulk, killed

const JOIN_TEST: &str = "a_terminal_killed_while_it_joins_in_bulk_keeps_every_index_and_every_row";

/// A new terminal pulling the whole tenant with the secondary indexes set aside
/// (`bulk_from(Some(1))`), in small pages so kills land between them; prints `joined` at the
/// head.
fn joiner(db: &Path) -> ! {
    let run = || -> Result<(), E> {
        let (url, token, mut rng) = child_env()?;
        let store = terminal(db)?;
        let transport = Traced(HttpTransport::new(&url)?);
        let options = SyncOptions::default()
            .bulk_from(Some(1))
            .page_size(rng.random_range(3..8));
        Syncer::new(&store, &transport, &options).pull(&tid(TENANT), &token)?;
        println!("joined");
        Ok(())
    };
    match run() {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            println!("failed {e}");
            std::process::exit(3)
        }
    }
}

/// The names of the file's indexes, and how many a bulk pull left set aside, read without
/// opening a store (opening builds them).
fn indexes(path: &Path) -> Result<(BTreeSet<String>, i64), E> {
    let conn = rusqlite::Connection::open(path)?;
    let names = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let deferred = conn.query_row("SELECT count(*) FROM deferred_indexes", [], |r| r.get(0))?;
    Ok((names, deferred))
}

/// A tenant of a few thousand operations; a new terminal joins it in bulk and is killed with
/// SIGKILL every few pages, at least 20 times while its indexes are set aside. After each
/// kill the file holds every index either in its schema or in `deferred_indexes`, and opening
/// it builds them all again; once it reaches the head it holds the same rows as the seller and
/// as a terminal that joined without bulk, and the same indexes.
#[test]
fn a_terminal_killed_while_it_joins_in_bulk_keeps_every_index_and_every_row() -> Result<(), E> {
    if let Some(db) = std::env::var_os("POS_SYNC_JOIN_DB") {
        joiner(Path::new(&db));
    }
    const MIN_KILLS: usize = 20;
    let c = Central::new()?;
    let server = c.serve(&[])?;
    let url = server.url();
    let transport = HttpTransport::new(&url)?;
    let seller_path = c.path("seller.db");
    seed_terminals(std::slice::from_ref(&seller_path), &url, &c.token, 12)?;
    let seller = terminal(&seller_path)?;
    {
        let t = seller.tenant(&tid(TENANT))?;
        let admin = common::first_admin(&t)?;
        let products = t.list::<Product>(&ListQuery::new().limit(100))?.rows;
        for k in 0..200 {
            let mut sale = Checkout::new();
            for j in 0..3 {
                sale = sale.line(LineItem::product(
                    products[(k + j) % products.len()].id,
                    1_000,
                ));
            }
            t.checkout(
                &admin,
                &sale.tender(Tender::Cash {
                    tendered_minor: 10_000_000,
                }),
            )?;
        }
    }
    let head = settle(std::slice::from_ref(&seller), &transport, &c.token)?;
    let (all, _) = indexes(&seller_path)?;

    let path = c.path("joiner.db");
    let exe = std::env::current_exe()?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(19);
    let (mut kills, mut mid_bulk) = (0, 0usize);
    let mut joined = false;
    while !joined && kills < 100 {
        let mut child = Command::new(&exe)
            .args(["--exact", JOIN_TEST, "--nocapture", "--test-threads=1"])
            .env("POS_SYNC_JOIN_DB", &path)
            .env("POS_SYNC_CHILD_URL", &url)
            .env("POS_SYNC_CHILD_TOKEN", &c.token)
            .env("POS_SYNC_CHILD_SEED", rng.random::<u64>().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let lines = lines(child.stdout.take().ok_or("no stdout")?);
        // Enough kills landed: let it reach the head.
        let mut pages = if mid_bulk < MIN_KILLS {
            rng.random_range(2..8u32)
        } else {
            u32::MAX
        };
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .ok_or("the joining terminal printed nothing")?;
            match lines.recv_timeout(left) {
                Ok(line) if line == "joined" => {
                    joined = true;
                    break;
                }
                Ok(line) if line.starts_with("failed") => return Err(line.into()),
                Ok(line) if line == "pull<" => {
                    pages -= 1;
                    if pages == 0 {
                        child.kill()?;
                        kills += 1;
                        break;
                    }
                }
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        child.wait()?;
        if joined {
            break;
        }
        let (names, deferred) = indexes(&path)?;
        // Every index is in the schema or set aside, never lost.
        assert_eq!(
            names.len() as i64 + deferred,
            all.len() as i64,
            "kill {kills}"
        );
        if deferred > 0 {
            mid_bulk += 1;
            drop(Store::open(&path)?);
            assert_eq!(
                indexes(&path)?,
                (all.clone(), 0),
                "opened after kill {kills}"
            );
        }
    }
    assert!(joined, "the terminal joined within 100 starts");
    assert!(
        mid_bulk >= MIN_KILLS,
        "{mid_bulk} of {kills} kills landed while the indexes were set aside"
    );
    let joiner = terminal(&path)?;
    assert_eq!(joiner.sync_status(&tid(TENANT))?.cursor, head);
    assert_eq!(indexes(&path)?, (all.clone(), 0));
    assert!(joiner.verify()?.is_ok());

    // The same tenant joined row by row, with no bulk.
    let plain_path = c.path("plain.db");
    let plain = terminal(&plain_path)?;
    Syncer::new(&plain, &transport, &SyncOptions::default().bulk_from(None))
        .pull(&tid(TENANT), &c.token)?;
    let seller_rows = dump(&seller_path, &tid(TENANT))?;
    assert_same_dump(&seller_rows, &dump(&path, &tid(TENANT))?, "joined in bulk");
    assert_same_dump(
        &seller_rows,
        &dump(&plain_path, &tid(TENANT))?,
        "joined row by row",
    );
    Ok(())
}
