//! A kit for sync conflict tests: a world built from a seed (a central store, tenants, and
//! terminals each on its own SQLite file with its own clock), faults reproducible from the
//! seed, a bounded quiesce, and checkers a test calls by name. Terminals reach the central
//! store through the sync engine's direct transport, or over `pos-central`'s real HTTP API on
//! 127.0.0.1 ([`WorldBuilder::http`]).
//!
//! ```
//! use pos_tenancy::testkit::sync::World;
//! use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
//! use pos_tenancy::TenantAccess;
//!
//! let mut world = World::builder(7).tenant("caps", 2).build()?;
//! let admin = world.admin("caps")?;
//! let (a, b) = (world.terminal("caps", 0), world.terminal("caps", 1));
//! let plug = world.product(a, &admin, "SP-7", 899, 1_000)?;   // one in stock, synced to b
//! world.offline(a);
//! world.offline(b);
//! for t in [a, b] {
//!     let till = world.store(t).tenant(&"caps".parse()?)?;
//!     let me = till.actor(admin.user_id())?;
//!     till.checkout(&me, &Checkout::new().line(LineItem::product(plug, 1_000))
//!         .tender(Tender::Cash { tendered_minor: 10_000 }))?;
//! }
//! world.online(a);
//! world.online(b);
//! world.quiesce()?;
//! world.check_all()?;                                         // converged, stored once, ...
//! assert_eq!(world.conflicts("caps", a)?, vec!["negative_stock".to_owned()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every random choice (which request fails, which order terminals sync in) comes from a
//! ChaCha8 stream of the seed, and the trace records what each step did in words and counts
//! (never ids or times), so the same seed gives the same trace: [`World::trace`]. A checker
//! that fails says so with the seed and the command that replays it (`POS_SYNC_SEED=<seed>`
//! overrides the seed given to [`World::builder`]).
//!
//! A terminal that joins late can take the tenant's snapshot instead of replaying the log, as
//! over a real server: [`World::snapshot`] builds it, and the join's first sync takes it when
//! the world's options let it.
//!
//! One file of about 1,000 lines: the world, the transport wrapper its faults live in, and the
//! checkers all read the same shared state (links, chaos, the seeded stream), which a split
//! would have to pass around; the HTTP server wiring is the seam to split along next.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::catalog::{Product, SyncClass, TABLES};
use crate::central::{CentralStore, SqliteCentral, TenantSnapshots};
use crate::ids::{RowId, TenantId, Timestamp};
use crate::pos::Pos;
use crate::protocol::{Operation, OperationPage, OperationResult, SnapshotInfo, TenantConfig};
use crate::store::Store;
use crate::sync::{
    CrashPoint, DirectTransport, RoundReport, SyncError, SyncOptions, Syncer, Transport,
    TransportError,
};
use crate::tenant::settings::NewTenant;
use crate::tenant::{Actor, TenantAccess};

/// A failure of the kit: a checker that found the world broken, or a step that could not run.
/// Its text names the seed and the command that replays the run.
#[derive(Debug, thiserror::Error)]
#[error("{what}\n  seed {seed}; replay with: POS_SYNC_SEED={seed} cargo test {test}")]
pub struct KitError {
    /// What went wrong.
    pub what: String,
    /// The world's seed.
    pub seed: u64,
    /// The test that ran (the thread's name under `cargo test`).
    pub test: String,
}

type KitResult<T> = Result<T, KitError>;

/// Which terminal, as [`World::terminal`] gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TerminalId(usize);

/// Faults drawn for every request, by probability (0.0 to 1.0).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Chaos {
    /// A request answered 503.
    pub unavailable: f64,
    /// A request that times out before reaching the server.
    pub timeout: f64,
    /// A push the server commits whose answer is lost.
    pub lost_answer: f64,
    /// A push delivered twice (the second copy arrives after the first's answer).
    pub duplicate: f64,
}

/// How a world is made.
#[derive(Debug, Clone)]
pub struct WorldBuilder {
    seed: u64,
    tenants: Vec<(String, usize)>,
    options: SyncOptions,
    /// Over HTTP (only with the `server` feature).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    http: bool,
}

impl WorldBuilder {
    /// A tenant with `terminals` terminals of its own.
    pub fn tenant(mut self, id: &str, terminals: usize) -> Self {
        self.tenants.push((id.to_owned(), terminals));
        self
    }

    /// Terminals reach the central store through `pos-central`'s HTTP API on 127.0.0.1 (a
    /// server in this process, on a free port, with a device token per terminal) instead of
    /// the direct transport. Needs the `server` feature.
    #[cfg(feature = "server")]
    pub fn http(mut self) -> Self {
        self.http = true;
        self
    }

    /// Batch and page sizes of every terminal's rounds (default: [`SyncOptions::default`]).
    pub fn options(mut self, options: SyncOptions) -> Self {
        self.options = options;
        self
    }

    /// Makes the world: an in-process central store (its real SQLite code, through the
    /// direct transport), each tenant registered there and on each of its terminals.
    pub fn build(self) -> KitResult<World> {
        let seed = std::env::var("POS_SYNC_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(self.seed);
        let fail = |what: String| KitError {
            what,
            seed,
            test: test_name(),
        };
        let dir = tempfile::tempdir().map_err(|e| fail(format!("temporary directory: {e}")))?;
        let central = Arc::new(
            SqliteCentral::open(dir.path().join("central.db"))
                .map_err(|e| fail(format!("central store: {e}")))?,
        );
        let snapshots = TenantSnapshots::new(dir.path().join("snapshots"));
        let shared = Arc::new(Mutex::new(Shared {
            rng: ChaCha8Rng::seed_from_u64(seed),
            chaos: Chaos::default(),
            links: Vec::new(),
        }));
        let mut world = World {
            seed,
            dir,
            central,
            snapshots,
            shared,
            terminals: Vec::new(),
            options: self.options,
            trace: Vec::new(),
            #[cfg(feature = "server")]
            server: None,
        };
        #[cfg(feature = "server")]
        if self.http {
            world.server = Some(
                HttpServer::start(Arc::clone(&world.central), world.snapshots.clone())
                    .map_err(fail)?,
            );
        }
        for (tenant, count) in &self.tenants {
            let id: TenantId = tenant
                .parse()
                .map_err(|e| fail(format!("tenant {tenant:?}: {e}")))?;
            world
                .central
                .add_tenant(&NewTenant::new(id.clone(), tenant))
                .map_err(|e| fail(format!("central tenant {id}: {e}")))?;
            for _ in 0..*count {
                world.add_terminal(&id)?;
            }
        }
        Ok(world)
    }
}

/// What one terminal's link does to its requests.
#[derive(Debug, Default, Clone)]
struct Link {
    push_cut: bool,
    pull_cut: bool,
    hold: bool,
    held: Vec<(TenantId, Vec<Operation>)>,
    lose_next_answer: bool,
}

struct Shared {
    rng: ChaCha8Rng,
    chaos: Chaos,
    links: Vec<Link>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    match shared.lock() {
        Ok(g) => g,
        // A panicking test thread: the state is still what it was.
        Err(p) => p.into_inner(),
    }
}

/// A terminal's way to the central store: the direct transport behind the terminal's link and
/// the world's chaos.
struct KitTransport {
    inner: Box<dyn Transport + Send + Sync>,
    terminal: usize,
    shared: Arc<Mutex<Shared>>,
}

impl KitTransport {
    fn chaos(&self, push: bool) -> Result<(), TransportError> {
        let mut s = lock(&self.shared);
        let link = &s.links[self.terminal];
        if (push && link.push_cut) || (!push && link.pull_cut) {
            return Err(TransportError::Unreachable("partitioned (test kit)".into()));
        }
        let chaos = s.chaos;
        if s.rng.random_bool(chaos.unavailable.clamp(0.0, 1.0)) {
            return Err(TransportError::Server {
                status: 503,
                code: "unavailable".into(),
                message: "unavailable (test kit)".into(),
                retry_after: None,
            });
        }
        if s.rng.random_bool(chaos.timeout.clamp(0.0, 1.0)) {
            return Err(TransportError::Unreachable("timed out (test kit)".into()));
        }
        Ok(())
    }
}

impl Transport for KitTransport {
    fn push(
        &self,
        tenant: &TenantId,
        token: &str,
        operations: &[Operation],
    ) -> Result<Vec<OperationResult>, TransportError> {
        self.chaos(true)?;
        let (hold, lose, twice) = {
            let mut s = lock(&self.shared);
            let chaos = s.chaos;
            let lose = s.rng.random_bool(chaos.lost_answer.clamp(0.0, 1.0));
            let twice = s.rng.random_bool(chaos.duplicate.clamp(0.0, 1.0));
            let link = &mut s.links[self.terminal];
            let lose = lose || std::mem::take(&mut link.lose_next_answer);
            if link.hold {
                link.held.push((tenant.clone(), operations.to_vec()));
                (true, false, false)
            } else {
                (false, lose, twice)
            }
        };
        if hold {
            return Err(TransportError::Unreachable("held (test kit)".into()));
        }
        let results = self.inner.push(tenant, token, operations)?;
        if twice {
            self.inner.push(tenant, token, operations)?;
        }
        if lose {
            return Err(TransportError::Unreachable("answer lost (test kit)".into()));
        }
        Ok(results)
    }

    fn pull(
        &self,
        tenant: &TenantId,
        token: &str,
        after: u64,
        limit: u32,
    ) -> Result<OperationPage, TransportError> {
        self.chaos(false)?;
        self.inner.pull(tenant, token, after, limit)
    }

    fn config(&self, tenant: &TenantId, token: &str) -> Result<TenantConfig, TransportError> {
        self.chaos(false)?;
        self.inner.config(tenant, token)
    }

    fn snapshot(
        &self,
        tenant: &TenantId,
        token: &str,
        into: &std::path::Path,
    ) -> Result<Option<SnapshotInfo>, TransportError> {
        self.chaos(false)?;
        self.inner.snapshot(tenant, token, into)
    }
}

struct Terminal {
    tenant: TenantId,
    path: std::path::PathBuf,
    store: Option<Store>,
    clock_offset: Arc<AtomicI64>,
    transport: KitTransport,
    crash_at: Arc<Mutex<Option<CrashPoint>>>,
}

/// A seeded world of a central store and terminals. See the module docs.
pub struct World {
    seed: u64,
    dir: tempfile::TempDir,
    central: Arc<SqliteCentral>,
    snapshots: TenantSnapshots,
    shared: Arc<Mutex<Shared>>,
    terminals: Vec<Terminal>,
    options: SyncOptions,
    trace: Vec<String>,
    #[cfg(feature = "server")]
    server: Option<HttpServer>,
}

/// `pos-central`'s HTTP API over the world's central store, on 127.0.0.1.
#[cfg(feature = "server")]
struct HttpServer {
    url: String,
    secret: Vec<u8>,
    runtime: Option<tokio::runtime::Runtime>,
}

#[cfg(feature = "server")]
impl HttpServer {
    fn start(central: Arc<SqliteCentral>, snapshots: TenantSnapshots) -> Result<Self, String> {
        let secret: Vec<u8> = (0..3)
            .flat_map(|_| *RowId::new().as_uuid().as_bytes())
            .collect();
        // The kit's terminals sync far more often than a shop's: no rate limit in the way.
        let state = crate::server::AppState::new(central, secret.clone())
            .map_err(|e| e.to_string())?
            .snapshots(snapshots)
            .rate_limit(crate::protocol::RateLimit {
                requests: 1_000_000,
                per_secs: 1,
            });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .map_err(|e| e.to_string())?;
        let url = format!(
            "http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        runtime.spawn(async move { axum::serve(listener, crate::server::app(state)).await });
        Ok(Self {
            url,
            secret,
            runtime: Some(runtime),
        })
    }
}

#[cfg(feature = "server")]
impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The HTTP transport with one terminal's device token in place of the kit's placeholder.
#[cfg(feature = "server")]
struct TokenTransport {
    http: crate::sync::HttpTransport,
    token: String,
}

#[cfg(feature = "server")]
impl Transport for TokenTransport {
    fn push(
        &self,
        tenant: &TenantId,
        _token: &str,
        operations: &[Operation],
    ) -> Result<Vec<OperationResult>, TransportError> {
        self.http.push(tenant, &self.token, operations)
    }
    fn pull(
        &self,
        tenant: &TenantId,
        _token: &str,
        after: u64,
        limit: u32,
    ) -> Result<OperationPage, TransportError> {
        self.http.pull(tenant, &self.token, after, limit)
    }
    fn config(&self, tenant: &TenantId, _token: &str) -> Result<TenantConfig, TransportError> {
        self.http.config(tenant, &self.token)
    }
    fn snapshot(
        &self,
        tenant: &TenantId,
        _token: &str,
        into: &std::path::Path,
    ) -> Result<Option<SnapshotInfo>, TransportError> {
        self.http.snapshot(tenant, &self.token, into)
    }
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("seed", &self.seed)
            .field("terminals", &self.terminals.len())
            .finish_non_exhaustive()
    }
}

fn test_name() -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("<this test>")
        .to_owned()
}

impl World {
    /// A world made from `seed` (see [`WorldBuilder`]).
    pub fn builder(seed: u64) -> WorldBuilder {
        WorldBuilder {
            seed,
            tenants: Vec::new(),
            options: SyncOptions::default(),
            http: false,
        }
    }

    /// The seed in force (`POS_SYNC_SEED` when set).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The world's central store: for tests that read the log, and for terminals of their own
    /// beside the world's.
    pub fn central(&self) -> &Arc<SqliteCentral> {
        &self.central
    }

    /// Builds the tenant's snapshot from the central log as `pos-central snapshot` does; from
    /// now on the world's server serves it, so a terminal that [`join`](Self::join)s takes it
    /// on its first sync when its options let it ([`SyncOptions::snapshot_from`]; the default
    /// asks only 20,000 operations behind).
    pub fn snapshot(&mut self, tenant: &str) -> KitResult<SnapshotInfo> {
        let id: TenantId = tenant.parse().map_err(|e| self.fail(format!("{e}")))?;
        let info = self
            .snapshots
            .build(Arc::clone(&self.central), &id)
            .map_err(|e| self.fail(format!("snapshot of {tenant}: {e}")))?;
        self.note(format!("snapshot of {tenant} up to {}", info.cursor));
        Ok(info)
    }

    fn fail(&self, what: impl Into<String>) -> KitError {
        KitError {
            what: what.into(),
            seed: self.seed,
            test: test_name(),
        }
    }

    fn note(&mut self, line: String) {
        self.trace.push(line);
    }

    /// What the run did, a line a step, the same for the same seed.
    pub fn trace(&self) -> &[String] {
        &self.trace
    }

    /// How terminal `index` reaches the central store.
    fn transport_for(
        &self,
        index: usize,
        tenant: &TenantId,
    ) -> KitResult<Box<dyn Transport + Send + Sync>> {
        #[cfg(feature = "server")]
        if let Some(server) = &self.server {
            let exp = u64::try_from(Timestamp::now().as_millis() / 1000).unwrap_or(0) + 24 * 3600;
            let token = crate::server::issue_token(
                &server.secret,
                tenant,
                &format!("terminal-{index}"),
                exp,
            )
            .map_err(|e| self.fail(format!("token: {e}")))?;
            let http = crate::sync::HttpTransport::new(&server.url)
                .map_err(|e| self.fail(format!("transport: {e}")))?;
            return Ok(Box::new(TokenTransport { http, token }));
        }
        let _ = (index, tenant);
        Ok(Box::new(
            DirectTransport::new(Arc::clone(&self.central)).with_snapshots(self.snapshots.clone()),
        ))
    }

    fn add_terminal(&mut self, tenant: &TenantId) -> KitResult<TerminalId> {
        let index = self.terminals.len();
        let path = self.dir.path().join(format!("terminal-{index}.db"));
        let clock_offset = Arc::new(AtomicI64::new(0));
        let store =
            open(&path, &clock_offset).map_err(|e| self.fail(format!("terminal {index}: {e}")))?;
        store
            .add_tenant(&NewTenant::new(tenant.clone(), tenant.as_str()))
            .map_err(|e| self.fail(format!("terminal {index}: {e}")))?;
        lock(&self.shared).links.push(Link::default());
        self.terminals.push(Terminal {
            tenant: tenant.clone(),
            path,
            store: Some(store),
            clock_offset,
            transport: KitTransport {
                inner: self.transport_for(index, tenant)?,
                terminal: index,
                shared: Arc::clone(&self.shared),
            },
            crash_at: Arc::default(),
        });
        Ok(TerminalId(index))
    }

    /// Another terminal for `tenant`, joining now (it pulls the tenant from the start).
    pub fn join(&mut self, tenant: &str) -> KitResult<TerminalId> {
        let id: TenantId = tenant.parse().map_err(|e| self.fail(format!("{e}")))?;
        let t = self.add_terminal(&id)?;
        self.note(format!("terminal {} joins {tenant}", t.0));
        Ok(t)
    }

    /// The `n`th terminal of `tenant` (0-based, in the order they were made).
    ///
    /// # Panics
    /// When the tenant has no such terminal: a mistake in the test itself.
    pub fn terminal(&self, tenant: &str, n: usize) -> TerminalId {
        let found = self
            .terminals
            .iter()
            .enumerate()
            .filter(|(_, t)| t.tenant.as_str() == tenant)
            .nth(n);
        match found {
            Some((i, _)) => TerminalId(i),
            None => panic!("the world has no terminal {n} of tenant {tenant}"),
        }
    }

    /// A terminal's store: run POS flows and CRUD on it through the normal API.
    ///
    /// # Panics
    /// While the terminal is crashed (restart it first): a mistake in the test itself.
    pub fn store(&self, t: TerminalId) -> &Store {
        match self.terminals[t.0].store.as_ref() {
            Some(s) => s,
            None => panic!("terminal {} is crashed: restart it first", t.0),
        }
    }

    /// The tenant's admin, made on its first terminal and synced to all.
    pub fn admin(&mut self, tenant: &str) -> KitResult<Actor> {
        let t = self.terminal(tenant, 0);
        let id: TenantId = tenant.parse().map_err(|e| self.fail(format!("{e}")))?;
        let admin = self
            .store(t)
            .tenant(&id)
            .and_then(|h| h.bootstrap_admin("owner", "Owner"))
            .map_err(|e| self.fail(format!("admin of {tenant}: {e}")))?;
        self.note(format!("admin of {tenant} on terminal {}", t.0));
        self.quiesce()?;
        Ok(admin)
    }

    /// A stocked product made on terminal `t` with `stock_milli` received, synced everywhere.
    pub fn product(
        &mut self,
        t: TerminalId,
        actor: &Actor,
        sku: &str,
        price_minor: i64,
        stock_milli: i64,
    ) -> KitResult<RowId> {
        let tenant = self.terminals[t.0].tenant.clone();
        let now = Timestamp::now();
        let p = Product {
            id: RowId::new(),
            sku: sku.into(),
            barcode: None,
            name: format!("Product {sku}"),
            description: None,
            brand: None,
            category_id: None,
            kind: "stocked".into(),
            price_minor,
            cost_minor: price_minor / 2,
            currency: "USD".into(),
            taxable: false,
            reorder_level_milli: 0,
            image: None,
            active: true,
            created_at: now,
            updated_at: now,
        };
        let made = self.store(t).tenant(&tenant).and_then(|h| {
            h.insert(actor, &p)?;
            if stock_milli != 0 {
                h.receive_stock(actor, p.id, "main", stock_milli, None)?;
            }
            Ok(())
        });
        made.map_err(|e| self.fail(format!("product {sku}: {e}")))?;
        self.note(format!("product {sku} on terminal {}", t.0));
        self.quiesce()?;
        Ok(p.id)
    }

    /// Cuts the terminal off both ways.
    pub fn offline(&mut self, t: TerminalId) {
        self.partition(t, true, true);
    }

    /// Reconnects the terminal both ways.
    pub fn online(&mut self, t: TerminalId) {
        self.partition(t, false, false);
    }

    /// Cuts pushes and pulls of the terminal separately (a one-way partition).
    pub fn partition(&mut self, t: TerminalId, push_cut: bool, pull_cut: bool) {
        {
            let mut s = lock(&self.shared);
            s.links[t.0].push_cut = push_cut;
            s.links[t.0].pull_cut = pull_cut;
        }
        self.note(format!(
            "terminal {} push_cut={push_cut} pull_cut={pull_cut}",
            t.0
        ));
    }

    /// Holds the terminal's pushes: each is kept (the terminal sees a timeout) until
    /// [`World::release`] delivers them late.
    pub fn hold(&mut self, t: TerminalId) {
        lock(&self.shared).links[t.0].hold = true;
        self.note(format!("terminal {} holds its pushes", t.0));
    }

    /// Delivers the terminal's held pushes to the server now, in order, and stops holding.
    pub fn release(&mut self, t: TerminalId) -> KitResult<()> {
        let held = {
            let mut s = lock(&self.shared);
            s.links[t.0].hold = false;
            std::mem::take(&mut s.links[t.0].held)
        };
        let n = held.len();
        for (tenant, ops) in held {
            self.central
                .append(&tenant, &ops)
                .map_err(|e| self.fail(format!("releasing a held push: {e}")))?;
        }
        self.note(format!("terminal {} released {n} held pushes", t.0));
        Ok(())
    }

    /// The terminal's next push is committed by the server and its answer lost.
    pub fn lose_next_answer(&mut self, t: TerminalId) {
        lock(&self.shared).links[t.0].lose_next_answer = true;
        self.note(format!("terminal {} loses its next answer", t.0));
    }

    /// Faults drawn for every request from now on.
    pub fn chaos(&mut self, chaos: Chaos) {
        lock(&self.shared).chaos = chaos;
        self.note(format!("chaos {chaos:?}"));
    }

    /// Moves the terminal's wall clock by `millis` (negative: set back; a year ahead is
    /// `365 * 24 * 3600 * 1000`).
    pub fn shift_clock(&mut self, t: TerminalId, millis: i64) {
        self.terminals[t.0]
            .clock_offset
            .fetch_add(millis, Ordering::SeqCst);
        self.note(format!("terminal {} clock {millis:+} ms", t.0));
    }

    /// The terminal dies at `point` of its next round that reaches it; restart it with
    /// [`World::restart`].
    pub fn crash_at(&mut self, t: TerminalId, point: CrashPoint) {
        if let Ok(mut c) = self.terminals[t.0].crash_at.lock() {
            *c = Some(point);
        }
        self.note(format!("terminal {} will die at {point:?}", t.0));
    }

    /// Restarts a terminal from its file (after a crash, or to drop its connections).
    pub fn restart(&mut self, t: TerminalId) -> KitResult<()> {
        let term = &mut self.terminals[t.0];
        term.store = None;
        let store = open(&term.path, &term.clock_offset).map_err(|e| KitError {
            what: format!("restarting terminal {}: {e}", t.0),
            seed: self.seed,
            test: test_name(),
        })?;
        self.terminals[t.0].store = Some(store);
        self.note(format!("terminal {} restarted", t.0));
        Ok(())
    }

    /// One round of one terminal: push, pull, settings. A simulated crash leaves the terminal
    /// down (restart it); other failures are the round's answer.
    pub fn sync(&mut self, t: TerminalId) -> KitResult<Result<RoundReport, SyncError>> {
        let term = &self.terminals[t.0];
        let Some(store) = term.store.as_ref() else {
            return Err(self.fail(format!("terminal {} is crashed: restart it first", t.0)));
        };
        let crash = Arc::clone(&term.crash_at);
        let hook: crate::sync::CrashHook = Arc::new(move |point| match crash.lock() {
            Ok(mut c) if *c == Some(point) => {
                *c = None;
                true
            }
            _ => false,
        });
        let options = self.options.clone().crash_points(hook);
        let result = Syncer::new(store, &term.transport, &options).round(&term.tenant, "kit");
        let line = match &result {
            Ok(r) => format!(
                "terminal {} synced: pushed {} set aside {} applied {} conflicts {}",
                t.0,
                r.pushed,
                r.set_aside,
                r.applied,
                r.conflicts.len()
            ),
            Err(e) => format!("terminal {} failed: {} {}", t.0, e.step, e.class.as_str()),
        };
        let died = matches!(&result, Err(e) if e.message.contains("simulated crash"));
        self.note(line);
        if died {
            self.terminals[t.0].store = None;
        }
        Ok(result)
    }

    /// Syncs every running terminal in an order drawn from the seed, until each has pushed
    /// everything it can and applied the whole log of its tenant: at most `50` turns. Crashed
    /// terminals are restarted first. Fails naming each terminal that did not get there and
    /// why (offline, its last error, what it still holds).
    pub fn quiesce(&mut self) -> KitResult<()> {
        for i in 0..self.terminals.len() {
            if self.terminals[i].store.is_none() {
                self.restart(TerminalId(i))?;
            }
        }
        let mut last: BTreeMap<usize, String> = BTreeMap::new();
        for turn in 0..50 {
            let mut order: Vec<usize> = (0..self.terminals.len()).collect();
            {
                let mut s = lock(&self.shared);
                for i in (1..order.len()).rev() {
                    let j = s.rng.random_range(0..=i);
                    order.swap(i, j);
                }
            }
            for i in order {
                if self.terminals[i].store.is_none() {
                    self.restart(TerminalId(i))?;
                }
                if let Err(e) = self.sync(TerminalId(i))? {
                    last.insert(i, e.to_string());
                } else {
                    last.remove(&i);
                }
            }
            let behind = self.behind()?;
            if behind.is_empty() {
                self.note(format!("quiet after {} turns", turn + 1));
                return Ok(());
            }
        }
        let mut why = String::from("the world did not quiesce within 50 turns:");
        for (i, state) in self.behind()? {
            let _ = write!(why, "\n  terminal {i}: {state}");
            if let Some(e) = last.get(&i) {
                let _ = write!(why, "; last error: {e}");
            }
        }
        Err(self.fail(why))
    }

    /// Terminals not at their tenant's head, with what they hold.
    fn behind(&self) -> KitResult<Vec<(usize, String)>> {
        let mut out = Vec::new();
        for (i, term) in self.terminals.iter().enumerate() {
            let Some(store) = term.store.as_ref() else {
                out.push((i, "crashed".to_owned()));
                continue;
            };
            let head = self
                .central
                .operations_after(&term.tenant, 0, 1)
                .map_err(|e| self.fail(format!("central log: {e}")))?
                .high;
            let st = store
                .sync_status(&term.tenant)
                .map_err(|e| self.fail(format!("terminal {i} status: {e}")))?;
            if st.pending > 0 || st.cursor != head {
                let link = lock(&self.shared).links[i].clone();
                out.push((
                    i,
                    format!(
                        "{} pending, cursor {} of {head}{}{}",
                        st.pending,
                        st.cursor,
                        if link.push_cut || link.pull_cut {
                            ", partitioned"
                        } else {
                            ""
                        },
                        if link.hold { ", pushes held" } else { "" }
                    ),
                ));
            }
        }
        Ok(out)
    }

    /// Every synced table of `tenant` on terminal `t`, rows in id order, as JSON text.
    pub fn dump(&self, tenant: &str, t: TerminalId) -> KitResult<Vec<(String, String)>> {
        let id: TenantId = tenant.parse().map_err(|e| self.fail(format!("{e}")))?;
        let handle = self
            .store(t)
            .tenant(&id)
            .map_err(|e| self.fail(format!("terminal {}: {e}", t.0)))?;
        let mut out = Vec::new();
        for table in TABLES
            .iter()
            .filter(|t| t.sync_class != SyncClass::LocalOnly)
        {
            let rows = handle
                .query(&format!("SELECT * FROM {} ORDER BY id", table.name))
                .map_err(|e| self.fail(format!("dump of {}: {e}", table.name)))?;
            let text = serde_json::to_string(&rows.rows)
                .map_err(|e| self.fail(format!("dump of {}: {e}", table.name)))?;
            out.push((table.name.to_owned(), text));
        }
        Ok(out)
    }

    /// The kinds of the tenant's conflicts on terminal `t`, sorted.
    pub fn conflicts(&self, tenant: &str, t: TerminalId) -> KitResult<Vec<String>> {
        Ok(self
            .conflict_set(tenant, t)?
            .into_iter()
            .map(|(kind, _)| kind)
            .collect())
    }

    /// The tenant's conflicts on terminal `t`: (kind, "id table/row"), sorted.
    fn conflict_set(&self, tenant: &str, t: TerminalId) -> KitResult<BTreeSet<(String, String)>> {
        let id: TenantId = tenant.parse().map_err(|e| self.fail(format!("{e}")))?;
        let handle = self
            .store(t)
            .tenant(&id)
            .map_err(|e| self.fail(format!("terminal {}: {e}", t.0)))?;
        let rows = handle
            .query("SELECT id, kind, table_name || '/' || row_id FROM sync_conflicts")
            .map_err(|e| self.fail(format!("conflicts: {e}")))?;
        Ok(rows
            .rows
            .into_iter()
            .map(|r| {
                let s = |i: usize| r.get(i).and_then(|v| v.as_str()).unwrap_or("").to_owned();
                (s(1), format!("{} {}", s(0), s(2)))
            })
            .collect())
    }

    fn tenants(&self) -> BTreeSet<TenantId> {
        self.terminals.iter().map(|t| t.tenant.clone()).collect()
    }

    fn of(&self, tenant: &TenantId) -> Vec<TerminalId> {
        (0..self.terminals.len())
            .filter(|i| self.terminals[*i].tenant == *tenant)
            .map(TerminalId)
            .collect()
    }

    /// Per tenant, every terminal holds the same rows in every synced table.
    pub fn check_converged(&self) -> KitResult<()> {
        for tenant in self.tenants() {
            let terminals = self.of(&tenant);
            let Some(first) = terminals.first() else {
                continue;
            };
            let base = self.dump(tenant.as_str(), *first)?;
            for t in &terminals[1..] {
                for ((table, a), (_, b)) in base.iter().zip(self.dump(tenant.as_str(), *t)?) {
                    if *a != b {
                        return Err(self.fail(format!(
                            "{tenant}: {table} differs between terminal {} and terminal {}",
                            first.0, t.0
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every operation in the server's log once, and every row id of each terminal's
    /// outbox history at most once there.
    pub fn check_stored_once(&self) -> KitResult<()> {
        for tenant in self.tenants() {
            let mut seen = BTreeSet::new();
            let mut after = 0;
            loop {
                let page = self
                    .central
                    .operations_after(&tenant, after, 1000)
                    .map_err(|e| self.fail(format!("central log: {e}")))?;
                for s in &page.operations {
                    if !seen.insert(s.operation.id) {
                        return Err(self.fail(format!(
                            "{tenant}: operation {} is in the log twice",
                            s.operation.id
                        )));
                    }
                    after = s.seq;
                }
                if page.operations.is_empty() || after >= page.high {
                    break;
                }
            }
        }
        Ok(())
    }

    /// On every terminal, `verify` finds nothing: balances equal their ledgers, every row's
    /// tenant matches, constraints hold.
    pub fn check_balances(&self) -> KitResult<()> {
        for (i, term) in self.terminals.iter().enumerate() {
            if let Some(store) = term.store.as_ref() {
                let report = store
                    .verify()
                    .map_err(|e| self.fail(format!("terminal {i}: verify: {e}")))?;
                if !report.is_ok() {
                    return Err(self.fail(format!(
                        "terminal {i}: verify found {:?}",
                        report.violations
                    )));
                }
            }
        }
        Ok(())
    }

    /// Per tenant, every terminal holds the same conflicts, each recorded once (one per
    /// kind and row).
    pub fn check_conflicts(&self) -> KitResult<()> {
        for tenant in self.tenants() {
            let terminals = self.of(&tenant);
            let Some(first) = terminals.first() else {
                continue;
            };
            let base = self.conflict_set(tenant.as_str(), *first)?;
            for t in &terminals[1..] {
                let other = self.conflict_set(tenant.as_str(), *t)?;
                if other != base {
                    return Err(self.fail(format!(
                        "{tenant}: conflicts differ between terminal {} ({base:?}) and terminal {} ({other:?})",
                        first.0, t.0
                    )));
                }
            }
        }
        Ok(())
    }

    /// No terminal holds a row of a tenant it does not serve.
    pub fn check_isolation(&self) -> KitResult<()> {
        for (i, term) in self.terminals.iter().enumerate() {
            let Some(store) = term.store.as_ref() else {
                continue;
            };
            for table in TABLES {
                // Catalog identifiers only; the tenant is bound.
                let sql = format!(
                    "SELECT count(*) FROM \"{}\" WHERE tenant_id <> ?1",
                    table.name
                );
                let n: i64 = store
                    .conn
                    .query_row(&sql, [&term.tenant], |r| r.get(0))
                    .map_err(|e| self.fail(format!("terminal {i}: {e}")))?;
                if n > 0 {
                    return Err(self.fail(format!(
                        "terminal {i} of {} holds {n} row(s) of another tenant in {}",
                        term.tenant, table.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// Every checker, in turn.
    pub fn check_all(&self) -> KitResult<()> {
        self.check_converged()?;
        self.check_stored_once()?;
        self.check_balances()?;
        self.check_conflicts()?;
        self.check_isolation()
    }

    /// Runs the same scenario twice from the world's seed and fails if the traces differ.
    pub fn check_deterministic(
        seed: u64,
        scenario: impl Fn(u64) -> KitResult<Vec<String>>,
    ) -> KitResult<()> {
        let first = scenario(seed)?;
        let second = scenario(seed)?;
        if first != second {
            let at = first.iter().zip(&second).position(|(a, b)| a != b);
            return Err(KitError {
                what: format!(
                    "two runs of seed {seed} differ at step {at:?}: {:?} / {:?}",
                    at.and_then(|i| first.get(i)),
                    at.and_then(|i| second.get(i))
                ),
                seed,
                test: test_name(),
            });
        }
        Ok(())
    }

    /// A random POS action on terminal `t` drawn from the seed: a checkout of one of the
    /// tenant's products, a delivery, or a price change. Refusals by business rules are part
    /// of the game (recorded in the trace, not errors).
    pub fn random_action(&mut self, t: TerminalId, actor: &Actor) -> KitResult<()> {
        let tenant = self.terminals[t.0].tenant.clone();
        let (kind, pick, amount) = {
            let mut s = lock(&self.shared);
            (
                s.rng.random_range(0..10u8),
                s.rng.random_range(0..1000usize),
                s.rng.random_range(1..5i64),
            )
        };
        let store = self.store(t);
        let handle = store
            .tenant(&tenant)
            .map_err(|e| self.fail(format!("terminal {}: {e}", t.0)))?;
        let me = handle
            .actor(actor.user_id())
            .map_err(|e| self.fail(format!("terminal {}: {e}", t.0)))?;
        let products = handle
            .list::<Product>(&crate::tenant::ListQuery::new().limit(200))
            .map_err(|e| self.fail(format!("terminal {}: {e}", t.0)))?
            .rows;
        let Some(product) = products.get(pick % products.len().max(1)).cloned() else {
            self.note(format!("terminal {} has no product", t.0));
            return Ok(());
        };
        let outcome = match kind {
            0..=5 => handle
                .checkout(
                    &me,
                    &crate::pos::Checkout::new()
                        .line(crate::pos::LineItem::product(product.id, amount * 1000))
                        .tender(crate::pos::Tender::Cash {
                            tendered_minor: 1_000_000_000,
                        }),
                )
                .map(|_| "sold"),
            6..=7 => handle
                .receive_stock(&me, product.id, "main", amount * 1000, None)
                .map(|_| "received"),
            _ => {
                let mut p = product;
                p.price_minor += amount;
                handle.update(&me, &p).map(|_| "repriced")
            }
        };
        let word = match outcome {
            Ok(w) => w.to_owned(),
            Err(crate::Error::Flow(f)) => format!("refused ({})", flow_word(&f)),
            Err(e) => return Err(self.fail(format!("terminal {}: {e}", t.0))),
        };
        self.note(format!("terminal {} {word}", t.0));
        Ok(())
    }
}

/// A flow refusal's kind, without its ids.
fn flow_word(f: &crate::pos::FlowError) -> String {
    let text = format!("{f:?}");
    text.split([' ', '{', '(']).next().unwrap_or("").to_owned()
}

fn open(path: &std::path::Path, offset: &Arc<AtomicI64>) -> crate::Result<Store> {
    let offset = Arc::clone(offset);
    Store::builder()
        .clock(move || {
            let now = Timestamp::now().as_millis() + offset.load(Ordering::SeqCst);
            u64::try_from(now).unwrap_or(0)
        })
        .open(path)
}
