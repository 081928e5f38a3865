//! Opening a node database: the [`StoreBuilder`] and its settings, the pragmas every
//! connection of a store runs with, migrating, the node's identity, planner statistics, and
//! the background checkpoint of a file store.
//!
//! Invariants: a store is configured before it opens and keeps its settings for its life (the
//! builder is consumed by `open`); opening an already migrated file takes no write lock unless
//! the node has no identity yet; a file that is not a SQLite database, or that a newer build
//! wrote, is refused before anything is written to it.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::checkpoint::{BackgroundCheckpoint, CHECKPOINT_INTERVAL};
use super::clock::{system_millis, ClockCache};
use super::schema::migrate;
use super::{Location, Store};
use crate::error::Error;
use crate::hlc::DEFAULT_MAX_SKEW;
use crate::ids::RowId;
use crate::tenant::query::DEFAULT_QUERY_TIMEOUT;
use crate::Result;

/// How long a statement waits for another connection's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many pages the write-ahead log of a file store may hold before a commit checkpoints it
/// itself, unless [`StoreBuilder::wal_autocheckpoint`] says otherwise: a cap (40 MiB of 4 KiB
/// pages) for when the background checkpoint ([`CHECKPOINT_INTERVAL`]) cannot keep up, not
/// the durability bound.
pub const WAL_AUTOCHECKPOINT: u32 = 10_000;

/// A [`Store`]'s settings, given before it opens; [`StoreBuilder::open`] or
/// [`StoreBuilder::open_in_memory`] consumes the builder and returns the store. Each setting
/// has a default, so `Store::builder().open(path)` is [`Store::open`].
///
/// ```
/// use std::time::Duration;
/// use pos_tenancy::Store;
///
/// let store = Store::builder()
///     .query_timeout(Duration::from_secs(2))
///     .max_clock_skew(Duration::from_secs(60))
///     .open_in_memory()?;
/// assert!(store.path().is_none());
/// # Ok::<(), pos_tenancy::Error>(())
/// ```
#[must_use = "a builder does nothing until `open` or `open_in_memory`"]
pub struct StoreBuilder {
    pub(super) clock: super::Clock,
    pub(super) max_skew: Duration,
    pub(super) query_timeout: Duration,
    pub(super) wal_autocheckpoint: u32,
}

impl Default for StoreBuilder {
    fn default() -> Self {
        Self {
            clock: std::sync::Arc::new(system_millis),
            max_skew: DEFAULT_MAX_SKEW,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            wal_autocheckpoint: WAL_AUTOCHECKPOINT,
        }
    }
}

impl std::fmt::Debug for StoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreBuilder")
            .field("max_skew", &self.max_skew)
            .field("query_timeout", &self.query_timeout)
            .field("wal_autocheckpoint", &self.wal_autocheckpoint)
            .finish_non_exhaustive()
    }
}

impl StoreBuilder {
    /// A builder with every setting at its default (the same as [`Store::builder`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The wall clock the hybrid logical clock reads, in milliseconds since the Unix epoch.
    /// Default: the system clock. For tests and simulations of clocks that jump.
    pub fn clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = std::sync::Arc::new(clock);
        self
    }

    /// How far ahead of this node's clock a remote stamp may be before
    /// [`Store::observe_clock`] refuses it. Default: [`DEFAULT_MAX_SKEW`].
    pub fn max_clock_skew(mut self, skew: Duration) -> Self {
        self.max_skew = skew;
        self
    }

    /// How long one report query ([`Tenant::query`](crate::Tenant::query)) may run
    /// before it is stopped. Default: [`DEFAULT_QUERY_TIMEOUT`].
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// How many write-ahead log pages make a commit checkpoint itself. Default:
    /// [`WAL_AUTOCHECKPOINT`]; 1000 is SQLite's own default, 0 leaves checkpoints to the
    /// background thread alone.
    pub fn wal_autocheckpoint(mut self, pages: u32) -> Self {
        self.wal_autocheckpoint = pages;
        self
    }

    /// Opens (creating if needed) the database at `path` and applies pending migrations, all
    /// in one transaction. Then WAL, `synchronous=NORMAL`, foreign keys on, a busy timeout, and a
    /// background thread that checkpoints every [`CHECKPOINT_INTERVAL`] (a commit checkpoints
    /// itself only past [`StoreBuilder::wal_autocheckpoint`] pages).
    ///
    /// A file written by a newer version of this crate is refused with
    /// [`Error::SchemaTooNew`] and left as it was.
    ///
    /// A pos-central database is refused with [`Error::NotANodeDatabase`] and left as it was.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Store> {
        self.open_file(path.as_ref().to_path_buf(), false)
    }

    /// Opens the node database at `path` as [`StoreBuilder::open`] does, but only one that
    /// exists: for tools whose commands read (a typo in a path must not leave a new database
    /// behind). A missing file is [`Error::NoDatabase`]; an empty file, a pos-central database
    /// or another SQLite database is [`Error::NotANodeDatabase`]. Both are refused before
    /// anything is written.
    pub fn open_existing(self, path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(Error::NoDatabase { path });
        }
        self.open_file(path, true)
    }

    fn open_file(self, path: PathBuf, existing: bool) -> Result<Store> {
        let open_err = |source| Error::Open {
            path: path.clone(),
            source,
        };
        // Each commit's log frames in one write (see `vfs`).
        let conn = super::vfs::open(&path).map_err(open_err)?;
        // Reading the header is the first access; a non-SQLite file fails here, untouched.
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
            .map_err(open_err)?;
        // Before anything is written to it (the journal mode, the migrations).
        match foreign_kind(&conn, &path).map_err(open_err)? {
            Some(what) if existing || what == CENTRAL || what == EXPORT => {
                return Err(Error::NotANodeDatabase { path, what });
            }
            _ => {}
        }
        self.setup(conn, Location::File(path), true)
    }

    /// A private in-memory database (for tests and tools), migrated like a file.
    pub fn open_in_memory(self) -> Result<Store> {
        let uri = format!("file:pos-tenancy-{}?mode=memory&cache=shared", RowId::new());
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&uri, flags).map_err(|source| Error::Open {
            path: PathBuf::from(&uri),
            source,
        })?;
        self.setup(conn, Location::Memory(uri), false)
    }

    fn setup(self, mut conn: Connection, location: Location, wal: bool) -> Result<Store> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        if wal {
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "wal_autocheckpoint", self.wal_autocheckpoint)?;
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
        let home_of = super::homes::home_of(&conn)?;
        // A pull in bulk that died left indexes set aside: build them before anyone reads.
        super::deferred::build_deferred(&conn)?;
        refresh_statistics(&conn)?;
        // Each commit and rollback ends a transaction: the outbox groups a transaction's
        // operations by this count (see `ClockCache::txn_epoch`).
        let clock_cache = ClockCache::default();
        let (committed, rolled_back) = (
            std::sync::Arc::clone(&clock_cache.txn_epoch),
            std::sync::Arc::clone(&clock_cache.txn_epoch),
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
        Ok(Store {
            conn,
            location,
            reports: RefCell::new(None),
            node_id,
            node_text: node_id.to_string(),
            clock_cache: RefCell::new(clock_cache),
            max_skew: self.max_skew,
            query_timeout: self.query_timeout,
            wal_autocheckpoint: self.wal_autocheckpoint,
            clock: self.clock,
            home_of,
            homes: elsa::FrozenMap::new(),
            _checkpointer: checkpointer,
        })
    }
}

const CENTRAL: &str = "a pos-central database";
const EXPORT: &str = "a tenant export (restore it into a node with `pos-node restore`)";

/// What a file that is not a node database is: `None` for a node database of any version
/// (its tables, or the first migration's with refinery's history), else an empty file or
/// database, a pos-central database (its operation log, no products) or another SQLite
/// database. Reads the schema only.
pub(super) fn foreign_kind(
    conn: &Connection,
    path: &Path,
) -> rusqlite::Result<Option<&'static str>> {
    let has = |table: &str| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
            [table],
            |r| r.get(0),
        )
    };
    // A tenant export has the node's schema but is a sealed file of one tenant: writing to it
    // would break its checksum. It is read by `restore`, never opened as a node.
    let app: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if app == crate::tenant_io::EXPORT_APPLICATION_ID {
        return Ok(Some(EXPORT));
    }
    if has("node_state")? || (has("products")? && has("refinery_schema_history")?) {
        return Ok(None);
    }
    if has("operations")? && !has("products")? {
        return Ok(Some(CENTRAL));
    }
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        [],
        |r| r.get(0),
    )?;
    if tables > 0 {
        return Ok(Some("another SQLite database"));
    }
    // A zero-length file is what a typo or `touch` leaves; SQLite reads it as an empty database.
    let empty_file = std::fs::metadata(path).is_ok_and(|m| m.len() == 0);
    Ok(Some(if empty_file {
        "an empty file"
    } else {
        "an empty SQLite database"
    }))
}

impl Store {
    /// A builder for a store with settings other than the defaults; see [`StoreBuilder`].
    pub fn builder() -> StoreBuilder {
        StoreBuilder::default()
    }

    /// Opens (creating if needed) the database at `path` with the default settings:
    /// `Store::builder().open(path)`; see [`StoreBuilder::open`].
    ///
    /// A file written by a newer version of this crate is refused with
    /// [`Error::SchemaTooNew`] and left as it was.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::builder().open(path)
    }

    /// Opens an existing node database with the default settings, never creating one:
    /// `Store::builder().open_existing(path)`; see [`StoreBuilder::open_existing`].
    ///
    /// ```
    /// use pos_tenancy::{Error, Store};
    /// let dir = tempfile::tempdir()?;
    /// let typo = dir.path().join("nod.db");
    /// assert!(matches!(Store::open_existing(&typo), Err(Error::NoDatabase { .. })));
    /// assert!(!typo.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self> {
        Self::builder().open_existing(path)
    }

    /// A private in-memory database (for tests and tools), migrated like a file, with the
    /// default settings: `Store::builder().open_in_memory()`.
    pub fn open_in_memory() -> Result<Self> {
        Self::builder().open_in_memory()
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_store_runs_with_its_builders_settings_or_the_defaults() -> Result<()> {
        let pages = |s: &Store| -> Result<u32> {
            Ok(s.conn
                .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?)
        };
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("node.db");
        let store = Store::open(&path)?;
        assert_eq!(pages(&store)?, WAL_AUTOCHECKPOINT);
        assert_eq!(store.max_skew, DEFAULT_MAX_SKEW);
        assert_eq!(store.query_timeout, DEFAULT_QUERY_TIMEOUT);
        drop(store);

        let store = Store::builder()
            .clock(|| 42)
            .max_clock_skew(Duration::from_secs(7))
            .query_timeout(Duration::from_millis(300))
            .wal_autocheckpoint(0)
            .open(&path)?;
        assert_eq!(pages(&store)?, 0);
        assert_eq!((store.clock)(), 42);
        assert_eq!(store.max_skew, Duration::from_secs(7));
        assert_eq!(store.query_timeout, Duration::from_millis(300));
        Ok(())
    }
}
