//! Opening a node database, migrating it, and the tenant registry.

pub(crate) mod clock;
pub(crate) mod verify;
pub mod vfs;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::error::Error;
use crate::hlc::Hlc;
use crate::ids::{Json, RowId, TenantId, Timestamp};
use crate::tenant::query::ReportConnection;
use crate::tenant::settings::{NewTenant, Plan, PlanLimits, TenantInfo, TenantStatus};
use crate::tenant::Tenant;
use crate::Result;
use verify::VerifyReport;

mod embedded {
    refinery::embed_migrations!("migrations/node");
}

/// How long a statement waits for another connection's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a file store's background thread copies the write-ahead log into the database
/// file (a checkpoint), syncing both.
///
/// With `synchronous=NORMAL` the log is synced only at checkpoints, so after a power cut or an
/// OS crash the commits since the last one may be lost (whole, never torn); an application
/// crash loses nothing. Checkpointing on a timer bounds that window by time: at most this long
/// of sales, however quiet the terminal (a page count alone left a quiet till's morning sales
/// unsynced until enough pages piled up). And no sale waits for a checkpoint's syncs: SQLite
/// runs its automatic checkpoint inside the commit that crosses the page count, which made a
/// checkout take 1.25 ms instead of about 0.5 ms here.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// How many pages the write-ahead log of a file store may hold before a commit checkpoints it
/// itself, unless [`Store::set_wal_autocheckpoint`] says otherwise: a cap (40 MiB of 4 KiB
/// pages) for when the background checkpoint ([`CHECKPOINT_INTERVAL`]) cannot keep up, not
/// the durability bound.
pub const WAL_AUTOCHECKPOINT: u32 = 10_000;

/// A thread that checkpoints a database file's write-ahead log every interval, on a connection
/// of its own (SQLite's `PRAGMA wal_checkpoint(PASSIVE)`), until dropped. Every file
/// [`Store`] runs one; tools that write a store's file through connections of their own can
/// run one too, so that their commits do not wait for checkpoints either.
pub struct BackgroundCheckpoint {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundCheckpoint {
    /// Starts checkpointing `path` every `interval`. `None` if the thread cannot be started
    /// (a store then relies on [`WAL_AUTOCHECKPOINT`] alone).
    pub fn start(path: impl Into<PathBuf>, interval: Duration) -> Option<Self> {
        let path = path.into();
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("pos-checkpoint".into())
            .spawn(move || {
                // Never creates the file: the store opened it already.
                let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let Ok(conn) = Connection::open_with_flags(&path, flags) else {
                    return;
                };
                let (lock, wake) = &*flag;
                let Ok(mut stopped) = lock.lock() else {
                    return;
                };
                // The flag is read before every wait: a stop signalled while the connection
                // was opening would otherwise wait out a whole interval (a lost wakeup).
                while !*stopped {
                    let Ok((guard, _)) = wake.wait_timeout(stopped, interval) else {
                        return;
                    };
                    stopped = guard;
                    if *stopped {
                        return;
                    }
                    // PASSIVE never waits for, nor blocks, a reader or a writer; what it
                    // cannot copy now, the next round copies. A failure (a file gone
                    // read-only, say) is the next commit's to report.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .ok()?;
        Some(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl std::fmt::Debug for BackgroundCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundCheckpoint")
            .finish_non_exhaustive()
    }
}

impl Drop for BackgroundCheckpoint {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        if let Ok(mut stopped) = lock.lock() {
            *stopped = true;
        }
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Lets SQLite's `PRAGMA optimize` gather planner statistics for the tables that have grown or
/// shrunk tenfold since they were last gathered, or never had any: a sampled `ANALYZE` (mask
/// bit 0x10 applies SQLite's analysis limit of 2000 rows an index; without it a store grown to
/// 600,000 audit rows took 356 ms to open instead of 56 ms, holding the write lock).
///
/// Every key and index leads with `tenant_id`, and without statistics SQLite takes that for
/// a selective condition: on a demo store of 5,000 sales it answered "the lines of this sale",
/// "the payments of this sale", "this customer's work orders" and "the promotions of this
/// product" by scanning the tenant's whole table through the primary key, not through the
/// index on the reference. This runs on the store's own connection, which loads what it
/// gathered at once (SQLite does not tell other open connections). It is best effort: it
/// never waits for a lock (if another connection is writing, the statistics wait for the next
/// open), and no failure of it (a read-only file, a full disk, a damaged index that `verify`
/// should get to report) stops the store from opening.
fn refresh_statistics(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::ZERO)?;
    let _ = conn.execute_batch("PRAGMA optimize = 0x10012");
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(())
}

/// Where the database lives, so the report connection can open the same one.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    File(PathBuf),
    /// A shared-cache in-memory database, reachable by URI from a second connection.
    Memory(String),
}

/// A node's database: the tenant registry and every tenant's rows.
///
/// A `Store` owns one SQLite connection; it is `Send` but not `Sync`, so give each thread its
/// own (they share the file through WAL).
///
/// ```
/// use pos_tenancy::{NewTenant, Store};
/// let store = Store::open_in_memory()?;
/// store.add_tenant(&NewTenant::new("caps-automotive".parse()?, "Caps Automotive"))?;
/// let caps = store.tenant(&"caps-automotive".parse()?)?;
/// assert_eq!(caps.info()?.name, "Caps Automotive");
/// # Ok::<(), pos_tenancy::Error>(())
/// ```
pub struct Store {
    pub(crate) conn: Connection,
    location: Location,
    reports: RefCell<Option<ReportConnection>>,
    node_id: RowId,
    /// `node_id` as operations store it, formatted once.
    node_text: String,
    clock: Box<dyn Fn() -> u64 + Send>,
    /// The newest stamps this connection knows, so a write need not look them up.
    clock_cache: RefCell<clock::ClockCache>,
    max_skew: Duration,
    query_timeout: Duration,
    /// File stores only; dropped after the connection above.
    _checkpointer: Option<BackgroundCheckpoint>,
}

/// Milliseconds since the Unix epoch by the system clock.
fn system_millis() -> u64 {
    u64::try_from(Timestamp::now().as_millis()).unwrap_or(0)
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and applies pending migrations, all
    /// in one transaction. Then WAL, `synchronous=NORMAL`, foreign keys on, a busy timeout, and a
    /// background thread that checkpoints every [`CHECKPOINT_INTERVAL`] (a commit checkpoints
    /// itself only past [`WAL_AUTOCHECKPOINT`] pages).
    ///
    /// A file written by a newer version of this crate is refused with
    /// [`Error::SchemaTooNew`] and left as it was.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let open_err = |source| Error::Open {
            path: path.clone(),
            source,
        };
        // Each commit's log frames in one write (see `vfs`).
        let conn = crate::store::vfs::open(&path).map_err(open_err)?;
        // Reading the header is the first access; a non-SQLite file fails here, untouched.
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
            .map_err(open_err)?;
        Self::setup(conn, Location::File(path), true)
    }

    /// A private in-memory database (for tests and tools), migrated like a file.
    pub fn open_in_memory() -> Result<Self> {
        let uri = format!("file:pos-tenancy-{}?mode=memory&cache=shared", RowId::new());
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&uri, flags).map_err(|source| Error::Open {
            path: PathBuf::from(&uri),
            source,
        })?;
        Self::setup(conn, Location::Memory(uri), false)
    }

    fn setup(mut conn: Connection, location: Location, wal: bool) -> Result<Self> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        if wal {
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT)?;
        conn.set_prepared_statement_cache_capacity(256);
        // One plan per statement, whatever its bound values. The bundled SQLite is built with
        // STAT4, so once a store has statistics (gathered on open, below, or by adoption) a
        // cached statement whose plan might depend on a bound value is prepared again on
        // every new binding: measured, one such re-prepare per product insert, about 77,000
        // instructions each, a quarter of the insert. Plans here are point and range lookups
        // on tenant-leading keys, which stat1 alone chooses well.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        migrate(&mut conn)?;
        // The node's identity is made once per file and kept: its operations carry it.
        // Only written once: opening an existing store must not need the write lock.
        let known: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM node_state WHERE singleton = 1)",
            [],
            |r| r.get(0),
        )?;
        if !known {
            conn.execute(
                "INSERT OR IGNORE INTO node_state (singleton, node_id) VALUES (1, ?1)",
                [RowId::new()],
            )?;
        }
        let node_id: RowId = conn.query_row(
            "SELECT node_id FROM node_state WHERE singleton = 1",
            [],
            |r| r.get(0),
        )?;
        refresh_statistics(&conn)?;
        // Each commit and rollback ends a transaction: the outbox groups a transaction's
        // operations by this count (see `ClockCache::txn_epoch`).
        let clock_cache = clock::ClockCache::default();
        let (committed, rolled_back) = (
            Arc::clone(&clock_cache.txn_epoch),
            Arc::clone(&clock_cache.txn_epoch),
        );
        conn.commit_hook(Some(move || {
            committed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            false
        }))?;
        conn.rollback_hook(Some(move || {
            rolled_back.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }))?;
        let checkpointer = match &location {
            Location::File(path) => BackgroundCheckpoint::start(path.clone(), CHECKPOINT_INTERVAL),
            Location::Memory(_) => None,
        };
        Ok(Self {
            conn,
            location,
            reports: RefCell::new(None),
            node_id,
            node_text: node_id.to_string(),
            clock: Box::new(system_millis),
            clock_cache: RefCell::new(clock_cache),
            max_skew: crate::hlc::DEFAULT_MAX_SKEW,
            query_timeout: crate::tenant::query::DEFAULT_QUERY_TIMEOUT,
            _checkpointer: checkpointer,
        })
    }

    /// The schema version the file is at (the newest applied migration).
    pub fn schema_version(&self) -> Result<i64> {
        Ok(applied_version(&self.conn)?.unwrap_or(0))
    }

    /// This node's id: the device id its operations carry, made once per database file.
    pub fn node_id(&self) -> RowId {
        self.node_id
    }

    /// Replaces the wall clock the hybrid logical clock reads (milliseconds since the Unix
    /// epoch). For tests and simulations of clocks that jump; the default is the system clock.
    pub fn set_clock(&mut self, clock: impl Fn() -> u64 + Send + 'static) {
        self.clock = Box::new(clock);
    }

    /// How far ahead of this node's clock a remote stamp may be before it is refused
    /// (default [`crate::hlc::DEFAULT_MAX_SKEW`]).
    pub fn set_max_clock_skew(&mut self, skew: Duration) {
        self.max_skew = skew;
    }

    /// How many write-ahead log pages make a commit checkpoint itself (default
    /// [`WAL_AUTOCHECKPOINT`]; 1000 is SQLite's own default, 0 leaves checkpoints to the
    /// background thread alone).
    pub fn set_wal_autocheckpoint(&self, pages: u32) -> Result<()> {
        self.conn.pragma_update(None, "wal_autocheckpoint", pages)?;
        Ok(())
    }

    /// How long one report query may run before it is stopped (default
    /// [`crate::tenant::query::DEFAULT_QUERY_TIMEOUT`]).
    pub fn set_query_timeout(&mut self, timeout: Duration) {
        self.query_timeout = timeout;
    }

    /// The last stamp this node issued or observed.
    pub fn clock(&self) -> Result<Hlc> {
        let state = clock::clock_state(&self.conn)?;
        Hlc::new(state.millis, state.counter, self.node_id).map_err(Error::Clock)
    }

    /// Takes in a stamp from another node, so every later local stamp comes after it. A stamp
    /// further ahead than the allowed skew is refused ([`Error::Clock`]) and changes nothing.
    pub fn observe_clock(&self, remote: &Hlc) -> Result<Hlc> {
        let tx = self.begin_write()?;
        let next = clock::clock_state(&tx)?
            .observe(remote, (self.clock)(), self.max_skew)
            .map_err(Error::Clock)?;
        tx.execute(
            "UPDATE node_state SET hlc_millis = ?1, hlc_counter = ?2 WHERE singleton = 1",
            rusqlite::params![i64::try_from(next.millis).unwrap_or(i64::MAX), next.counter],
        )?;
        // The floor rose on this connection, which PRAGMA data_version does not count.
        self.clock_cache.borrow_mut().clear();
        tx.commit()?;
        Hlc::new(next.millis, next.counter, self.node_id).map_err(Error::Clock)
    }

    /// Forgets the stamps this connection cached: the clock's floor was raised under them (a
    /// remote stamp observed by the merge).
    pub(crate) fn forget_cached_clock(&self) {
        self.clock_cache.borrow_mut().clear();
    }

    pub(crate) fn stamper(&self) -> crate::outbox::Stamper<'_> {
        crate::outbox::Stamper {
            node: self.node_id,
            node_text: &self.node_text,
            now_millis: &*self.clock,
            cache: &self.clock_cache,
        }
    }

    /// The newest schema version this build of the crate knows.
    pub fn supported_schema_version() -> i64 {
        latest_embedded_version()
    }

    /// The path of the database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        match &self.location {
            Location::File(p) => Some(p),
            Location::Memory(_) => None,
        }
    }

    /// Registers a tenant. Its settings are validated first; nothing is written on error.
    pub fn add_tenant(&self, new: &NewTenant) -> Result<TenantInfo> {
        check_new_tenant(new)?;
        let tx = self.begin_write()?;
        if !insert_tenant(&tx, new, Timestamp::now())? {
            return Err(Error::TenantExists(new.id.clone()));
        }
        tx.commit()?;
        self.tenant_info(&new.id)
    }

    /// Every registered tenant, by id.
    pub fn tenants(&self) -> Result<Vec<TenantInfo>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{TENANT_SELECT} ORDER BY id"))?;
        let rows = stmt.query_map([], tenant_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One tenant's registry entry.
    pub fn tenant_info(&self, id: &TenantId) -> Result<TenantInfo> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{TENANT_SELECT} WHERE id = ?1"))?;
        stmt.query_row([id], tenant_from_row)
            .optional()?
            .ok_or_else(|| Error::TenantNotFound(id.clone()))
    }

    /// Changes a tenant's status (suspend, activate, cancel), with an audit row.
    pub fn set_tenant_status(&self, id: &TenantId, status: TenantStatus) -> Result<TenantInfo> {
        let detail = serde_json::json!({ "status": status.as_str() });
        self.update_registry(id, "status", detail, |tx, now| {
            tx.execute(
                "UPDATE tenants SET status = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, status, now],
            )
        })
    }

    /// Moves a tenant to another plan and resets its limits to that plan's.
    pub fn set_tenant_plan(&self, id: &TenantId, plan: Plan) -> Result<TenantInfo> {
        let limits = plan.limits();
        let detail = serde_json::json!({ "plan": plan.as_str() });
        self.update_registry(id, "plan", detail, |tx, now| {
            tx.execute(
                "UPDATE tenants SET plan = ?2, max_users = ?3, max_api_calls_month = ?4,
                                    updated_at = ?5 WHERE id = ?1",
                params![
                    id,
                    plan,
                    limits.max_users,
                    clamp_i64(limits.max_api_calls_month),
                    now
                ],
            )
        })
    }

    /// Applies one change to a registry row and audits it, atomically.
    pub(crate) fn update_registry(
        &self,
        id: &TenantId,
        action: &str,
        detail: serde_json::Value,
        change: impl FnOnce(&Connection, &Timestamp) -> rusqlite::Result<usize>,
    ) -> Result<TenantInfo> {
        let tx = self.begin_write()?;
        let now = Timestamp::now();
        if change(&tx, &now).map_err(|e| Error::on_table("tenants", e))? == 0 {
            return Err(Error::TenantNotFound(id.clone()));
        }
        crate::tenant::Scope::new(self, id).audit(
            None,
            action,
            "tenants",
            id.as_str(),
            Some(detail),
        )?;
        tx.commit()?;
        self.tenant_info(id)
    }

    /// A handle on one tenant's data. Refused for unknown and cancelled tenants; a suspended
    /// tenant's handle reads but does not write.
    pub fn tenant(&self, id: &TenantId) -> Result<Tenant<'_>> {
        let status: Option<TenantStatus> = self
            .conn
            .prepare_cached("SELECT status FROM tenants WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        match status {
            None => Err(Error::TenantNotFound(id.clone())),
            Some(TenantStatus::Cancelled) => Err(Error::TenantInactive {
                tenant: id.clone(),
                status: TenantStatus::Cancelled,
                operation: "read",
            }),
            Some(_) => Ok(Tenant::new(self, id.clone())),
        }
    }

    /// Checks the schema invariants and the data of every tenant table; see [`VerifyReport`].
    pub fn verify(&self) -> Result<VerifyReport> {
        verify::verify(&self.conn)
    }

    /// Starts an IMMEDIATE transaction (the write lock is taken up front, so two writers queue
    /// on the busy timeout instead of failing on upgrade).
    pub(crate) fn begin_write(&self) -> Result<rusqlite::Transaction<'_>> {
        if !self.conn.is_autocommit() {
            return Err(Error::TransactionOpen);
        }
        Ok(rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?)
    }

    /// Runs `f` with the report connection, opening it on first use.
    pub(crate) fn with_reports<T>(
        &self,
        f: impl FnOnce(&ReportConnection, Duration) -> Result<T>,
    ) -> Result<T> {
        let mut slot = self.reports.borrow_mut();
        if slot.is_none() {
            *slot = Some(ReportConnection::open(&self.location)?);
        }
        match slot.as_ref() {
            Some(reports) => f(reports, self.query_timeout),
            None => unreachable!("set just above"),
        }
    }
}

/// Plan limits are u64 in Rust but SQLite integers are signed.
fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const TENANT_SELECT: &str = "SELECT id, name, status, plan, max_users, max_api_calls_month, tier, \
                             settings, created_at, updated_at FROM tenants";

fn tenant_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TenantInfo> {
    Ok(TenantInfo {
        id: r.get(0)?,
        name: r.get(1)?,
        status: r.get(2)?,
        plan: r.get(3)?,
        limits: PlanLimits::from_sql(r.get(4)?, r.get(5)?),
        tier: r.get(6)?,
        settings: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

fn latest_embedded_version() -> i64 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

fn applied_version(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    let has_history: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema
                        WHERE type = 'table' AND name = 'refinery_schema_history')",
        [],
        |r| r.get(0),
    )?;
    if !has_history {
        return Ok(None);
    }
    conn.query_row(
        "SELECT max(version) FROM refinery_schema_history",
        [],
        |r| r.get(0),
    )
}

/// Refuses a new tenant whose settings fail validation or whose name is empty.
pub(crate) fn check_new_tenant(new: &NewTenant) -> Result<()> {
    new.settings.validate()?;
    if new.name.trim().is_empty() {
        return Err(Error::InvalidPayload {
            table: "tenants",
            reason: "the tenant name is empty".into(),
        });
    }
    Ok(())
}

/// Writes a new tenant's registry row with its plan's limits; `false` when the id is taken.
/// The caller validated the name and settings and owns the transaction.
pub(crate) fn insert_tenant(conn: &Connection, new: &NewTenant, now: Timestamp) -> Result<bool> {
    let limits = new.plan.limits();
    let settings =
        Json(
            serde_json::to_value(&new.settings).map_err(|e| Error::InvalidPayload {
                table: "tenants",
                reason: e.to_string(),
            })?,
        );
    let inserted = conn.execute(
        "INSERT INTO tenants (id, name, status, plan, max_users, max_api_calls_month, tier,
                              settings, created_at, updated_at)
         VALUES (?1, ?2, 'active', ?3, ?4, ?5, ?6, ?7, ?8, ?8)
         ON CONFLICT (id) DO NOTHING",
        params![
            new.id,
            new.name,
            new.plan,
            limits.max_users,
            clamp_i64(limits.max_api_calls_month),
            new.tier,
            settings,
            now
        ],
    )?;
    Ok(inserted == 1)
}

/// Creates the current schema inside the caller's transaction, exactly as the embedded
/// migrations would, and records them in refinery's history table so that [`Store::open`]
/// finds the file up to date. Adoption needs this because refinery runs its migrations in a
/// transaction of its own, and adoption's rebuild must share one transaction with them.
pub(crate) fn install_schema(conn: &Connection, now: Timestamp) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE refinery_schema_history (
             version INT4 PRIMARY KEY,
             name VARCHAR(255),
             applied_on VARCHAR(255),
             checksum VARCHAR(255))",
    )?;
    let runner = embedded::migrations::runner();
    let mut migrations: Vec<_> = runner.get_migrations().iter().collect();
    migrations.sort_by_key(|m| m.version());
    // refinery reads `applied_on` back as RFC 3339.
    let applied_on = now.as_datetime().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for m in migrations {
        let sql = m
            .sql()
            .ok_or_else(|| Error::Migration(format!("migration V{} has no SQL", m.version())))?;
        conn.execute_batch(sql)?;
        conn.execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                i64::from(m.version()),
                m.name(),
                applied_on,
                m.checksum().to_string()
            ],
        )?;
    }
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let supported = latest_embedded_version();
    if let Some(found) = applied_version(conn)? {
        if found > supported {
            return Err(Error::SchemaTooNew { found, supported });
        }
        if found == supported {
            return Ok(());
        }
    }
    embedded::migrations::runner()
        .set_grouped(true)
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run(conn)
        .map_err(|e| Error::Migration(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::open_in_memory().expect("in-memory store opens")
    }

    #[test]
    fn commits_reach_the_database_file_without_a_checkpoint_in_any_commit() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("node.db");
        let store = Store::open(&path)?;
        // Far above what these writes fill: only the background thread can checkpoint them.
        store.set_wal_autocheckpoint(1_000_000)?;
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let before = size();
        for i in 0..50 {
            store.add_tenant(&NewTenant::new(format!("t{i}").parse()?, "T"))?;
        }
        // Bounded wait: forty intervals.
        let mut grown = false;
        for _ in 0..40 {
            std::thread::sleep(CHECKPOINT_INTERVAL);
            if size() > before {
                grown = true;
                break;
            }
        }
        assert!(grown, "the database file never received the log's pages");
        drop(store);
        // The thread is joined on drop and nothing is left open: the log is gone.
        assert!(!dir.path().join("node.db-wal").exists());
        Ok(())
    }

    #[test]
    fn opening_twice_applies_migrations_once() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("node.db");
        let v = Store::open(&path)?.schema_version()?;
        assert_eq!(v, Store::supported_schema_version());
        assert_eq!(Store::open(&path)?.schema_version()?, v);
        Ok(())
    }

    #[test]
    fn refuses_a_database_from_a_newer_crate() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("node.db");
        drop(Store::open(&path)?);
        let conn = Connection::open(&path)?;
        conn.execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (999, 'future', '2030-01-01T00:00:00Z', '0')",
            [],
        )?;
        drop(conn);
        match Store::open(&path) {
            Err(Error::SchemaTooNew { found: 999, .. }) => Ok(()),
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }

    #[test]
    fn refuses_a_file_that_is_not_sqlite() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("notes.txt");
        std::fs::write(
            &path,
            b"this is not a database, just some text long enough to matter",
        )?;
        assert!(matches!(Store::open(&path), Err(Error::Open { .. })));
        assert_eq!(
            std::fs::read(&path)?,
            b"this is not a database, just some text long enough to matter"
        );
        Ok(())
    }

    #[test]
    fn duplicate_tenants_and_bad_settings_change_nothing() -> Result<()> {
        let s = store();
        let id: TenantId = "caps".parse()?;
        s.add_tenant(&NewTenant::new(id.clone(), "Caps"))?;
        assert!(matches!(
            s.add_tenant(&NewTenant::new(id, "Again")),
            Err(Error::TenantExists(_))
        ));
        let mut bad = NewTenant::new("other".parse()?, "Other");
        bad.settings.currency = "DOLLARS".into();
        assert!(matches!(s.add_tenant(&bad), Err(Error::Settings(_))));
        assert_eq!(s.tenants()?.len(), 1);
        Ok(())
    }

    #[test]
    fn cancelled_tenants_get_no_handle() -> Result<()> {
        let s = store();
        let id: TenantId = "caps".parse()?;
        s.add_tenant(&NewTenant::new(id.clone(), "Caps"))?;
        s.set_tenant_status(&id, TenantStatus::Cancelled)?;
        assert!(matches!(s.tenant(&id), Err(Error::TenantInactive { .. })));
        assert!(matches!(
            s.tenant(&"nobody".parse()?),
            Err(Error::TenantNotFound(_))
        ));
        Ok(())
    }
}
