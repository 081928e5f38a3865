//! Where a tenant lives, and the route to it: stage 2 of the isolation plan.
//!
//! A tenant lives either in the node's shared file (`tenants.tier = 'shared'`) or in a SQLite
//! file of its own beside it (`'dedicated'`), `<shared file>.tenants/<tenant>-<move id>.db`,
//! named by the newest promotion in `tenant_moves`. A tenant's file has the node's schema,
//! the node's identity (its operations carry the same device id), the tenant's registry row
//! and its rows of every tenant table; `PRAGMA application_id` marks it
//! ([`TENANT_FILE_APPLICATION_ID`]).
//!
//! [`Store::tenant`] routes: the handle it returns runs on the store of the tenant's file
//! when the registry says so, so application code, report SQL, POS flows, the outbox and the
//! sync engine are the same for both tiers. The tenant's file is opened on first use and kept
//! open for the life of the store.
//!
//! Invariants, and why:
//! - A file is the tenant's home while its registry row there agrees: in the shared file,
//!   `tier = 'shared'`; in the tenant's file, `tier = 'dedicated'`. Every read and write
//!   checks this inside its statement or transaction, so a handle opened before a move (in
//!   this process or another) is refused ([`Error::TenantMoved`]) rather than reading or
//!   writing a copy that is no longer the tenant's.
//! - A route names a file by its move's id, never reusing a name: a store that opened an
//!   older file of the tenant keeps it open but is never routed to it again.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};

use super::{Store, StoreBuilder};
use crate::error::Error;
use crate::ids::TenantId;
use crate::tenant::settings::{TenantStatus, Tier};
use crate::Result;

/// `PRAGMA application_id` of a tenant's own database file ("POST"): what tells it from the
/// shared node file (SQLite's 0), a tenant export and a whole-node backup.
pub const TENANT_FILE_APPLICATION_ID: i64 = 0x504F_5354;

/// The tenant whose own file `conn` is, if it is one.
pub(crate) fn home_of(conn: &Connection) -> Result<Option<TenantId>> {
    let app: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if app != TENANT_FILE_APPLICATION_ID {
        return Ok(None);
    }
    Ok(conn
        .query_row("SELECT id FROM tenants ORDER BY id LIMIT 1", [], |r| {
            r.get(0)
        })
        .optional()?)
}

/// The directory of the tenants' own files of the shared file `db`: `<db>.tenants`.
pub(crate) fn homes_dir(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".tenants");
    PathBuf::from(name)
}

/// Every tenant the registry `conn` holds as dedicated, by id, with the file of its newest
/// promotion (relative to the homes directory; `None` when no promotion names one, which
/// leaves the tenant unreachable). Empty for a schema before tenant files
/// (no `tenant_moves`).
pub(crate) fn dedicated_routes(
    conn: &Connection,
) -> rusqlite::Result<Vec<(TenantId, Option<String>)>> {
    let moves: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'tenant_moves')",
        [],
        |r| r.get(0),
    )?;
    if !moves {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT t.id, h.file FROM tenants t LEFT JOIN tenant_homes h ON h.tenant = t.id
         WHERE t.tier = 'dedicated' ORDER BY t.id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// The tenant a file of a homes directory is for: its name is `<tenant>-<id>.db`.
pub(crate) fn file_tenant(name: &str) -> Option<TenantId> {
    let stem = name.strip_suffix(".db")?;
    let cut = stem.len().checked_sub(37)?;
    let (tenant, id) = stem.split_at_checked(cut)?;
    id.strip_prefix('-')?.parse::<crate::ids::RowId>().ok()?;
    tenant.parse().ok()
}

/// The route the shared registry gives a tenant.
pub(crate) struct Route {
    pub status: TenantStatus,
    pub tier: Tier,
    /// The file of its newest promotion, relative to the homes directory.
    pub file: Option<String>,
}

/// Reads a tenant's route from the registry `conn` holds.
pub(crate) fn route(conn: &Connection, tenant: &TenantId) -> Result<Option<Route>> {
    Ok(conn
        .prepare_cached(
            "SELECT t.status, t.tier, h.file
             FROM tenants t LEFT JOIN tenant_homes h ON h.tenant = t.id WHERE t.id = ?1",
        )?
        .query_row([tenant], |r| {
            Ok(Route {
                status: r.get(0)?,
                tier: r.get(1)?,
                file: r.get(2)?,
            })
        })
        .optional()?)
}

impl Store {
    /// Whether this store is a tenant's own file (a promoted tenant's home).
    pub(crate) fn is_tenant_file(&self) -> bool {
        self.home_of.is_some()
    }

    /// The directory of this node's tenant files, for a file store that is not one itself.
    pub(crate) fn homes_dir(&self) -> Option<PathBuf> {
        match (self.path(), &self.home_of) {
            (Some(path), None) => Some(homes_dir(path)),
            _ => None,
        }
    }

    /// Refuses a tenant whose registry row in this file says it lives elsewhere: `tier` as
    /// this store's registry holds it.
    pub(crate) fn check_here(&self, tenant: &TenantId, tier: Tier) -> Result<()> {
        let own_file = self.home_of.is_some();
        if (tier == Tier::Dedicated) == own_file {
            return Ok(());
        }
        Err(Error::TenantMoved {
            tenant: tenant.clone(),
            now_in: if own_file {
                "the shared file"
            } else {
                "its own file"
            },
        })
    }

    /// Refuses a tenant that no longer lives in this store's file; run inside the caller's
    /// write transaction, it holds until the commit (a move takes the same write lock).
    pub(crate) fn ensure_home(&self, tenant: &TenantId) -> Result<()> {
        let tier: Option<Tier> = self
            .conn
            .prepare_cached("SELECT tier FROM tenants WHERE id = ?1")?
            .query_row([tenant], |r| r.get(0))
            .optional()?;
        match tier {
            Some(tier) => self.check_here(tenant, tier),
            None => Err(Error::TenantNotFound(tenant.clone())),
        }
    }

    /// The store the tenant's rows live in: this one, or the store of its own file (opened on
    /// first use). [`Error::TenantNotFound`] for a tenant the registry does not have.
    pub(crate) fn home(&self, tenant: &TenantId) -> Result<&Store> {
        Ok(self.home_with_status(tenant)?.0)
    }

    /// [`Store::home`], and the tenant's status as its home's registry row holds it.
    pub(crate) fn home_with_status(&self, tenant: &TenantId) -> Result<(&Store, TenantStatus)> {
        let Some(route) = route(&self.conn, tenant)? else {
            return Err(Error::TenantNotFound(tenant.clone()));
        };
        if self.home_of.is_some() || route.tier == Tier::Shared {
            self.check_here(tenant, route.tier)?;
            return Ok((self, route.status));
        }
        let home = self.open_home(tenant, route.file.as_deref())?;
        let Some(there) = self::route(&home.conn, tenant)? else {
            return Err(self.file_error(tenant, route.file.as_deref(), "it has no registry row"));
        };
        home.check_here(tenant, there.tier)?;
        Ok((home, there.status))
    }

    /// The file a dedicated tenant lives in, `None` for one in the shared file.
    pub fn tenant_home_path(&self, tenant: &TenantId) -> Result<Option<PathBuf>> {
        let home = self.home(tenant)?;
        Ok(if std::ptr::eq(home, self) {
            None
        } else {
            home.path().map(Path::to_path_buf)
        })
    }

    fn file_error(&self, tenant: &TenantId, file: Option<&str>, reason: &str) -> Error {
        let path = match (self.homes_dir(), file) {
            (Some(dir), Some(file)) => dir.join(file),
            _ => PathBuf::from(file.unwrap_or("(none)")),
        };
        Error::TenantFile {
            tenant: tenant.clone(),
            path,
            reason: reason.to_owned(),
        }
    }

    /// The store of the tenant's own file `file`, opened with this store's settings on first
    /// use, and checked to be that tenant's file of this node.
    fn open_home(&self, tenant: &TenantId, file: Option<&str>) -> Result<&Store> {
        let (Some(dir), Some(name)) = (self.homes_dir(), file) else {
            return Err(self.file_error(
                tenant,
                file,
                "the registry says it has a file of its own, but no promotion names one",
            ));
        };
        let path = dir.join(name);
        if let Some(open) = self.homes.get(&path) {
            return Ok(open);
        }
        let store = StoreBuilder {
            clock: std::sync::Arc::clone(&self.clock),
            max_skew: self.max_skew,
            query_timeout: self.query_timeout,
            wal_autocheckpoint: self.wal_autocheckpoint,
        }
        .open_existing(&path)
        .map_err(|e| self.file_error(tenant, Some(name), &e.to_string()))?;
        if store.home_of.as_ref() != Some(tenant) {
            return Err(self.file_error(tenant, Some(name), "it is not this tenant's own file"));
        }
        if store.node_id != self.node_id {
            return Err(self.file_error(
                tenant,
                Some(name),
                &format!(
                    "it belongs to node {}, not to this node {}",
                    store.node_id, self.node_id
                ),
            ));
        }
        Ok(self.homes.insert(path, Box::new(store)))
    }
}
