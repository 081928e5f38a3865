//! One tenant's rows in and out of a file: export, restore, and offboarding (export, then
//! delete). Every table is taken from the catalog ([`crate::catalog::TABLES`], parents before
//! children; deletes in reverse), never from a list of its own; a new table is exported,
//! restored and deleted with no change here.
//!
//! ```
//! use pos_tenancy::{IfUnsynced, NewTenant, Store, TenantId};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path().join("node.db"))?;
//! let caps: TenantId = "caps-automotive".parse()?;
//! store.add_tenant(&NewTenant::new(caps.clone(), "Caps Automotive"))?;
//! store.tenant(&caps)?.bootstrap_admin("owner", "Store Owner")?;
//!
//! let export = store.export_tenant(&caps, &dir.path().join("caps.db"), &mut |_| {})?;
//! // Its bootstrap left operations for the server; a restore over them needs Discard.
//! let restored = store.restore_tenant(&caps, &export.path, IfUnsynced::Discard, &mut |_| {})?;
//! assert_eq!(restored.rows, export.rows);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The export file is a standalone SQLite database with the node's schema (the same
//! migrations), holding the tenant's registry row, its rows of every tenant table (its outbox,
//! sync state and merge stamps included; the kept balances rebuilt by the schema's triggers),
//! and in `node_state` the node it came from and the clock as the tenant last saw it. Its
//! `PRAGMA application_id` marks it as an export ([`EXPORT_APPLICATION_ID`]), and its SHA-256
//! is written beside it (`<export>.sha256`).
//!
//! Invariants, and why:
//! - Exported rows are read in one transaction (one instant of the tenant), copied in
//!   canonical order while their digest is taken, and the export file is then digested table
//!   by table and must match; it is written under a temporary name, checked
//!   (`quick_check`, `foreign_key_check`), hashed, synced, and only then given its name,
//!   never over an existing file. A failed export leaves no file.
//! - A restore is one transaction of the store: the tenant's rows are deleted and the
//!   export's copied in, each table's digest is compared with the export's, the clock floor is
//!   raised past the export's clock (a stamp issued afterwards follows every stamp of the
//!   restored outbox), and `restore_jobs` records it; any failure rolls all of it back. Only
//!   rows with the tenant's id are read from the export or deleted here, so every other
//!   tenant's rows stay exactly as they were.
//! - The backup log (`backups`, `restore_jobs`) is the node's record, not data to rewind: a
//!   restore keeps the tenant's log as it is on the node and ignores the export's.
//! - The registry row: a restore keeps the node's status, plan, limits and tier (the
//!   operator's and the central server's to change) and takes the name and settings from the
//!   export; a tenant the node no longer has (offboarded) is registered again from it.
//! - Replacing or deleting a tenant's rows is refused when it would lose operations the server
//!   has not acknowledged ([`TenantIoError::Unsynced`], saying how many), unless the caller
//!   says to lose them ([`IfUnsynced::Discard`]). A restore loses those the export does not
//!   hold (the export's own come back with their outbox and are pushed again); offboarding
//!   loses all of them, since they will never reach the server.
//! - Offboarding holds the store's write lock from its check of the outbox to the end of the
//!   delete, so the export holds exactly the rows deleted; other tenants' writes wait for it
//!   (up to the busy timeout), which is why it is an operator's command, not a till's.

mod copy;
mod delete;
mod error;
mod export;
mod restore;
mod tier;

use std::path::PathBuf;

use rusqlite::Connection;
use serde::Serialize;

pub use copy::TableDigest;
pub use error::{TenantIoError, TenantIoStep};
pub(crate) use export::tenant_clock;
pub use tier::{
    KeptCopy, MoveReason, PurgeReport, PurgedCopy, StorageSettings, TenantMove, DEFAULT_KEEP_DAYS,
    MAX_KEEP_DAYS,
};

use crate::ids::{RowId, TenantId};

/// `PRAGMA application_id` of a tenant export ("POSE"): what tells an export from a
/// whole-node backup or a node database, which keep SQLite's 0.
pub const EXPORT_APPLICATION_ID: i64 = 0x504F_5345;

/// What to do when the tenant has operations the central server has not acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IfUnsynced {
    /// Refuse, saying how many there are ([`TenantIoError::Unsynced`]). The default.
    #[default]
    Refuse,
    /// Go on and lose them (`--force`).
    Discard,
}

/// A table done, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableCopied {
    /// The table.
    pub table: &'static str,
    /// The tenant's rows copied (or deleted).
    pub rows: u64,
    /// Tables done so far, this one included.
    pub done: usize,
    /// Tables in all.
    pub total: usize,
}

/// A tenant's rows, table by table, as [`crate::Store::tenant_digest`] reads them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TenantDigest {
    /// The tenant.
    pub tenant: TenantId,
    /// Each catalog table's rows of the tenant, in catalog order.
    pub tables: Vec<TableDigest>,
    /// SHA-256 over the tables' digests.
    pub sha256: String,
}

/// What [`crate::Store::export_tenant`] wrote.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TenantExport {
    /// The tenant.
    pub tenant: TenantId,
    /// The export file.
    pub path: PathBuf,
    /// Its SHA-256, also in `<path>.sha256`.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// The node it was exported from.
    pub node_id: RowId,
    /// Each table's rows and digest, in catalog order (the same in the node and the file).
    pub tables: Vec<TableDigest>,
    /// Rows in all.
    pub rows: u64,
    /// Its row in `backups` (kind `tenant_export`), when recorded (not when offboarding,
    /// which deletes the tenant's rows).
    pub backup_id: Option<RowId>,
    /// Seconds it took.
    pub seconds: f64,
}

/// What [`crate::Store::restore_tenant`] did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TenantRestore {
    /// The tenant.
    pub tenant: TenantId,
    /// The export restored.
    pub from: PathBuf,
    /// Its SHA-256, checked before anything was changed.
    pub sha256: String,
    /// The node the export was taken on.
    pub exported_from: RowId,
    /// Each restored table's rows and digest (equal in the export and the node).
    pub tables: Vec<TableDigest>,
    /// Rows restored in all.
    pub rows: u64,
    /// Rows of the tenant deleted first.
    pub rows_replaced: u64,
    /// Operations not yet synced, and not in the export, that the restore lost
    /// ([`IfUnsynced::Discard`]).
    pub unsynced_discarded: u64,
    /// Whether the tenant was registered again (the node no longer had it).
    pub registered: bool,
    /// Its row in `restore_jobs`.
    pub restore_job_id: RowId,
    /// The export's row in `backups` that the job names.
    pub backup_id: RowId,
    /// Seconds it took.
    pub seconds: f64,
}

/// What [`crate::Store::delete_tenant`] did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TenantDeletion {
    /// The tenant.
    pub tenant: TenantId,
    /// The export taken first.
    pub export: TenantExport,
    /// Rows deleted, its registry row and kept balances included.
    pub rows_deleted: u64,
    /// Operations not yet synced that were lost ([`IfUnsynced::Discard`]).
    pub unsynced_discarded: u64,
    /// Tables with a `tenant_id` column checked to hold no row of the tenant afterwards.
    pub tables_proven_empty: usize,
    /// Seconds it took.
    pub seconds: f64,
}

/// Refuses when the tenant has operations without the server's acknowledgement that the
/// change would lose and the caller did not say to lose them; returns how many it loses.
/// `kept` holds the ids of operations the change keeps (a restore puts the export's outbox
/// back, so those of them not yet synced are pushed again; offboarding keeps none).
pub(crate) fn check_unsynced(
    conn: &Connection,
    tenant: &TenantId,
    kept: Option<&std::collections::HashSet<String>>,
    if_unsynced: IfUnsynced,
) -> Result<u64, TenantIoError> {
    let read = || -> rusqlite::Result<(u64, u64)> {
        let mut stmt = conn.prepare(
            "SELECT id, set_aside IS NOT NULL FROM pending_operations
             WHERE tenant_id = ?1 AND synced_at IS NULL",
        )?;
        let mut rows = stmt.query([tenant])?;
        let (mut lost, mut set_aside) = (0u64, 0u64);
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            if kept.is_some_and(|k| k.contains(&id)) {
                continue;
            }
            lost += 1;
            if row.get::<_, bool>(1)? {
                set_aside += 1;
            }
        }
        Ok((lost, set_aside))
    };
    let (pending, set_aside) = read().map_err(|e| TenantIoError::Failed {
        step: TenantIoStep::Check,
        tenant: tenant.clone(),
        reason: e.to_string(),
        left: "nothing was changed".into(),
    })?;
    if pending > 0 && if_unsynced == IfUnsynced::Refuse {
        return Err(TenantIoError::Unsynced {
            tenant: tenant.clone(),
            pending,
            set_aside,
            not_in_export: kept.is_some(),
        });
    }
    Ok(pending)
}

/// The store the tenant lives in (its own file, after a promotion): every one-tenant
/// operation runs there.
pub(crate) fn routed<'s>(
    store: &'s crate::Store,
    tenant: &TenantId,
) -> Result<&'s crate::Store, TenantIoError> {
    match store.home(tenant) {
        Ok(home) => Ok(home),
        Err(crate::Error::TenantNotFound(_)) => Err(TenantIoError::UnknownTenant {
            tenant: tenant.clone(),
        }),
        Err(e) => Err(TenantIoError::Failed {
            step: TenantIoStep::Check,
            tenant: tenant.clone(),
            reason: e.to_string(),
            left: "nothing was changed".into(),
        }),
    }
}

impl crate::Store {
    /// The tenant's rows of every catalog table, digested in a canonical order (one read
    /// transaction): equal digests mean equal rows, whatever their physical order. What an
    /// export and a restore compare, and a way to prove a tenant unchanged.
    pub fn tenant_digest(&self, tenant: &TenantId) -> Result<TenantDigest, TenantIoError> {
        let home = routed(self, tenant)?;
        if !std::ptr::eq(home, self) {
            return home.tenant_digest(tenant);
        }
        if !self.conn.is_autocommit() {
            return Err(TenantIoError::TransactionOpen);
        }
        let failed = |e: rusqlite::Error| TenantIoError::Failed {
            step: TenantIoStep::Check,
            tenant: tenant.clone(),
            reason: e.to_string(),
            left: "nothing was changed".into(),
        };
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Deferred,
        )
        .map_err(failed)?;
        let tables = crate::catalog::TABLES
            .iter()
            .map(|t| copy::table_digest(&tx, t, tenant))
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(failed)?;
        drop(tx);
        Ok(TenantDigest {
            tenant: tenant.clone(),
            sha256: export::combined(&tables),
            tables,
        })
    }
}
