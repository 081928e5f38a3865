//! A node's database: the [`Store`] and the files that make it up, one seam each.
//!
//! - `open`: the [`StoreBuilder`], the pragmas, the node's identity, planner statistics;
//! - `checkpoint`: the [`BackgroundCheckpoint`] thread of a file store;
//! - `schema`: the embedded migrations, and installing the schema inside a caller's
//!   transaction (adoption);
//! - `registry`: the tenant registry and the door to a tenant's handle;
//! - `clock`: the node clock's persistence and [`Store::clock`] / [`Store::observe_clock`];
//! - [`vfs`]: the batched-WAL file layer; `verify`: the schema and data checks;
//! - `deferred`: secondary indexes set aside while a tenant is pulled in bulk;
//! - `homes`: where a tenant lives (the shared file or a file of its own) and the route to it.
//!
//! Invariants: a `Store` owns one connection and is configured once, before it opens (its
//! settings never change on an open store); its write transactions take the write lock up
//! front (`Store::begin_write`, IMMEDIATE), so writers queue instead of failing on upgrade;
//! report SQL runs on a connection of its own (`Store::with_reports`), never on the store's.

mod checkpoint;
pub(crate) mod clock;
pub(crate) mod deferred;
pub(crate) mod homes;
mod open;
mod registry;
mod schema;
pub(crate) mod verify;
pub mod vfs;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use crate::error::Error;
use crate::ids::{RowId, TenantId};
use crate::tenant::query::ReportConnection;
use crate::Result;
use verify::{VerifyError, VerifyReport};

pub use checkpoint::{BackgroundCheckpoint, CHECKPOINT_INTERVAL};
pub use homes::TENANT_FILE_APPLICATION_ID;
pub use open::{StoreBuilder, BUSY_TIMEOUT, WAL_AUTOCHECKPOINT};
pub(crate) use registry::{check_new_tenant, insert_tenant};
pub(crate) use schema::install_schema;

/// Where the database lives, so the report connection can open the same one.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    File(PathBuf),
    /// A shared-cache in-memory database, reachable by URI from a second connection.
    Memory(String),
}

/// The wall clock a store's hybrid logical clock reads; shared with the stores of its
/// tenants' own files, which must read the same clock.
pub(crate) type Clock = std::sync::Arc<dyn Fn() -> u64 + Send + Sync>;

/// A node's database: the tenant registry and every tenant's rows.
///
/// A `Store` owns one SQLite connection; it is `Send` but not `Sync`, so give each thread its
/// own (they share the file through WAL). Its settings are given before it opens, through
/// [`Store::builder`]; [`Store::open`] and [`Store::open_in_memory`] use the defaults.
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
    /// The newest stamps this connection knows, so a write need not look them up.
    clock_cache: RefCell<clock::ClockCache>,
    max_skew: Duration,
    query_timeout: Duration,
    wal_autocheckpoint: u32,
    clock: Clock,
    /// Set when this file is a tenant's own (a promoted tenant's home), to that tenant.
    home_of: Option<TenantId>,
    /// The stores of promoted tenants' own files, opened on first use, by file. Entries are
    /// only added (a route that changes names another file), so a handle's borrow of one
    /// lives as long as this store.
    homes: elsa::FrozenMap<PathBuf, Box<Store>>,
    /// File stores only; dropped after the connection above.
    _checkpointer: Option<BackgroundCheckpoint>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// This node's id: the device id its operations carry, made once per database file.
    pub fn node_id(&self) -> RowId {
        self.node_id
    }

    /// The path of the database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        match &self.location {
            Location::File(p) => Some(p),
            Location::Memory(_) => None,
        }
    }

    /// Checks the schema invariants and the data of every tenant table; see [`VerifyReport`].
    /// Nothing is written. An error that keeps the database from being read (a lock, no
    /// permission, I/O) is an `Err`, never a [`Violation`](verify::Violation).
    ///
    /// On a node's shared file, each dedicated tenant's own file is checked as well, opened
    /// read-only where its route names it: a file that is missing, unreadable or not that
    /// tenant's is a [`Check::TenantFile`](verify::Check::TenantFile) violation naming the
    /// tenant and the path, and a violation inside it has its detail prefixed with both (the
    /// counts add up over every file). A lock held on a tenant's file past [`BUSY_TIMEOUT`]
    /// is an `Err` ([`Error::Open`] with that file's path).
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut report = verify::verify(&self.conn)?;
        if let (Some(path), false) = (self.path(), self.is_tenant_file()) {
            verify::verify_homes(&self.conn, path, &mut report).map_err(|(at, e)| match e {
                Error::Sqlite(source) => Error::Open { path: at, source },
                other => other,
            })?;
        }
        Ok(report)
    }

    /// Checks the database file at `path` as [`Store::verify`] does, without opening a store:
    /// read-only, so nothing is created, migrated or written, and a file this process may
    /// only read is checked as well. A lock another process holds is waited for up to
    /// [`BUSY_TIMEOUT`], then [`VerifyError::Locked`]; a file at another schema version is
    /// refused ([`VerifyError::SchemaVersion`]) rather than migrated. Each dedicated tenant's
    /// own file is checked too, as [`Store::verify`] says (a lock on one is
    /// [`VerifyError::Locked`] naming it). `pos-node verify` runs this.
    ///
    /// ```
    /// use pos_tenancy::{NewTenant, Store};
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("node.db");
    /// Store::open(&path)?.add_tenant(&NewTenant::new("caps-automotive".parse()?, "Caps"))?;
    /// let before = std::fs::read(&path)?;
    /// assert!(Store::verify_file(&path)?.is_ok());
    /// assert_eq!(std::fs::read(&path)?, before);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify_file(path: impl AsRef<Path>) -> std::result::Result<VerifyReport, VerifyError> {
        verify::verify_file(path.as_ref())
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
