//! Moving a tenant between the node's shared file and a file of its own (stage 2 of the
//! isolation plan): [`Store::promote_tenant`], [`Store::demote_tenant`],
//! [`Store::purge_moved_copies`], and the automatic rule ([`StorageSettings`],
//! [`Store::auto_promote`]). Where a tenant lives and how a handle finds it is `store::homes`.
//!
//! Invariants, and why:
//! - A move holds the shared file's write lock from its first read to its switch (and a
//!   demotion the tenant's file's too), so the copy holds exactly the rows the tenant has at
//!   the switch; other tenants' writes wait for it (up to the busy timeout), which is why it is
//!   an operator's command or a rule run off the selling path, not a till's.
//! - The switch is one commit of the shared file: the registry's tier and the move's row in
//!   `tenant_moves`. Before it, the tenant's route and rows are as they were (a promotion has
//!   changed nothing in the shared file; a half-written file of its own is a leftover that
//!   [`Store::purge_moved_copies`] removes); after it, the route names a copy that was written
//!   whole, checked (row counts and a SHA-256 per table, `quick_check`,
//!   `foreign_key_check`) and synced. So a crash at any moment leaves the tenant readable from
//!   exactly one place with all its rows.
//! - The copy a move leaves behind (the shared rows after a promotion, the tenant's file after
//!   a demotion) is never read through a handle (its registry row there says the tenant lives
//!   elsewhere) and is kept for the move's window (`keep_until`), then purged.
//! - The pending operations, sync cursors, merge stamps and the clock move with the tenant: the
//!   file of its own holds its outbox and sync state and starts its clock where the tenant's
//!   last stamp was; a demotion raises the shared file's clock floor past the file's clock.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use super::copy::TableDigest;
use super::delete::delete_rows;
use super::export::{combined, failed, tenant_clock, with_suffix, write_tenant_file, FileKind};
use super::restore::replace_rows;
use super::{TableCopied, TenantIoError, TenantIoStep};
use crate::backup::{ident, sync_dir};
use crate::catalog::TABLES;
use crate::ids::{RowId, TenantId, Timestamp};
use crate::store::clock::raise_clock_floor;
use crate::store::homes::{file_tenant, homes_dir, route, Route};
use crate::store::Store;
use crate::tenant::settings::{TenantStatus, Tier};

/// How long a move keeps the copy it leaves behind, unless [`StorageSettings::keep_days`]
/// says otherwise: the plan's 30 days.
pub const DEFAULT_KEEP_DAYS: u32 = 30;

/// The longest window a move may keep its copy for: 100 years (a stored time past year
/// 9999 could not be read back).
pub const MAX_KEEP_DAYS: u32 = 36_500;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Why a move was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MoveReason {
    /// An operator asked for it (`pos-node promote`, `pos-node demote`).
    #[default]
    Operator,
    /// The node's automatic rule ([`StorageSettings`]).
    Auto,
}

impl MoveReason {
    fn as_str(self) -> &'static str {
        match self {
            MoveReason::Operator => "operator",
            MoveReason::Auto => "auto",
        }
    }
}

/// The node's rule for promoting tenants by itself, and the window every move keeps its
/// leftover copy for. Off by default: [`Store::auto_promote`] promotes nobody until a
/// threshold is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StorageSettings {
    /// Promote a tenant with at least this many active users (the plan: 50).
    pub auto_promote_users: Option<u32>,
    /// Promote a tenant with at least this many rows across its tables.
    pub auto_promote_rows: Option<u64>,
    /// Days a move keeps the copy it leaves behind (0: purge may remove it at once).
    pub keep_days: u32,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            auto_promote_users: None,
            auto_promote_rows: None,
            keep_days: DEFAULT_KEEP_DAYS,
        }
    }
}

impl StorageSettings {
    /// With the user threshold set (`None`: off).
    pub fn auto_promote_users(mut self, users: Option<u32>) -> Self {
        self.auto_promote_users = users;
        self
    }

    /// With the row threshold set (`None`: off).
    pub fn auto_promote_rows(mut self, rows: Option<u64>) -> Self {
        self.auto_promote_rows = rows;
        self
    }

    /// With the rollback window set.
    pub fn keep_days(mut self, days: u32) -> Self {
        self.keep_days = days;
        self
    }
}

/// What a promotion or a demotion did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TenantMove {
    /// The move's id (its row in `tenant_moves`).
    pub id: RowId,
    /// The tenant.
    pub tenant: TenantId,
    /// `promote` or `demote`.
    pub direction: &'static str,
    /// Who asked for it.
    pub reason: MoveReason,
    /// The tenant's own file: where it now lives (promote) or lived (demote).
    pub file: PathBuf,
    /// Each table's rows and SHA-256, equal in both places at the switch, in catalog order.
    pub tables: Vec<TableDigest>,
    /// Rows copied in all.
    pub rows: u64,
    /// SHA-256 over the tables' digests (what [`Store::tenant_digest`] gives right after).
    pub sha256: String,
    /// Until when the copy left behind is kept for a way back.
    pub keep_until: Timestamp,
    /// What was left behind for a way back.
    pub kept: String,
    /// Seconds it took.
    pub seconds: f64,
}

/// One leftover copy [`Store::purge_moved_copies`] removed.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PurgedCopy {
    /// The tenant (`None` for a file whose name names none).
    pub tenant: Option<TenantId>,
    /// The move that left it (`None` for a file no move names: a promotion that died before
    /// its switch).
    pub move_id: Option<RowId>,
    /// What was removed: `shared rows` or `file`.
    pub what: &'static str,
    /// Rows deleted (shared rows) or 0.
    pub rows: u64,
    /// The file removed, for a file.
    pub file: Option<PathBuf>,
}

/// A leftover copy [`Store::purge_moved_copies`] left alone: its window is not over.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct KeptCopy {
    /// The tenant.
    pub tenant: TenantId,
    /// The move that left it.
    pub move_id: RowId,
    /// What it is: `shared rows` (left by a promotion) or `file` (left by a demotion).
    pub what: &'static str,
    /// The file, for a file.
    pub file: Option<PathBuf>,
    /// Until when it is kept.
    pub keep_until: Timestamp,
}

/// What [`Store::purge_moved_copies`] did.
#[derive(Debug, Clone, Serialize, Default)]
#[non_exhaustive]
pub struct PurgeReport {
    /// The copies removed.
    pub purged: Vec<PurgedCopy>,
    /// The copies still inside their window.
    pub kept: Vec<KeptCopy>,
}

/// The store the shared file is: a move starts there.
fn shared_file(store: &Store) -> Result<PathBuf, TenantIoError> {
    if store.is_tenant_file() {
        return Err(TenantIoError::NoTenantFiles {
            store: "a tenant's own file",
        });
    }
    match store.path() {
        Some(path) => Ok(path.to_path_buf()),
        None => Err(TenantIoError::NoTenantFiles {
            store: "an in-memory store",
        }),
    }
}

fn begin(conn: &Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
}

/// The route of a tenant that must live in `tier` for the move: refused for an unknown
/// tenant, or one already where the move would put it.
fn living_in(found: Option<Route>, tenant: &TenantId, tier: Tier) -> Result<Route, TenantIoError> {
    match found {
        None => Err(TenantIoError::UnknownTenant {
            tenant: tenant.clone(),
        }),
        Some(r) if r.tier != tier => Err(TenantIoError::AlreadyThere {
            tenant: tenant.clone(),
            lives_in: match r.tier {
                Tier::Dedicated => "its own file",
                Tier::Shared => "the shared file",
            },
        }),
        Some(r) => Ok(r),
    }
}

fn keep_until(now: Timestamp, days: u32) -> Timestamp {
    Timestamp::from_millis(now.as_millis().saturating_add(i64::from(days) * DAY_MS)).unwrap_or(now)
}

/// A failure of a step not about one tenant.
fn node_failed(step: TenantIoStep, e: &dyn std::fmt::Display, left: &str) -> TenantIoError {
    TenantIoError::NodeFailed {
        step,
        reason: e.to_string(),
        left: left.to_owned(),
    }
}

impl Store {
    /// What every move checks first: this is the node's shared file with no transaction of
    /// the caller's open; returns that file and the window the move keeps its copy for (the
    /// one given, else the node's; refused past [`MAX_KEEP_DAYS`]).
    fn before_move(
        &self,
        tenant: &TenantId,
        keep_days: Option<u32>,
    ) -> Result<(PathBuf, u32), TenantIoError> {
        let db = shared_file(self)?;
        if !self.conn.is_autocommit() {
            return Err(TenantIoError::TransactionOpen);
        }
        let days = match keep_days {
            Some(days) => days,
            None => {
                self.storage_settings()
                    .map_err(|e| failed(TenantIoStep::Check, tenant, e, "nothing was changed"))?
                    .keep_days
            }
        };
        if days > MAX_KEEP_DAYS {
            return Err(TenantIoError::KeepDays {
                days,
                max: MAX_KEEP_DAYS,
            });
        }
        Ok((db, days))
    }

    /// The node's storage settings (automatic promotion, rollback window).
    pub fn storage_settings(&self) -> crate::Result<StorageSettings> {
        let found: Option<(Option<i64>, Option<i64>, i64)> = self
            .conn
            .query_row(
                "SELECT auto_promote_users, auto_promote_rows, keep_days FROM storage_settings
                 WHERE singleton = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(match found {
            None => StorageSettings::default(),
            Some((users, rows, days)) => StorageSettings {
                auto_promote_users: users.and_then(|u| u32::try_from(u).ok()),
                auto_promote_rows: rows.and_then(|r| u64::try_from(r).ok()),
                keep_days: u32::try_from(days).unwrap_or(DEFAULT_KEEP_DAYS),
            },
        })
    }

    /// Replaces the node's storage settings. A threshold of 0 is refused
    /// ([`crate::Error::InvalidPayload`]): say `None` to turn it off.
    pub fn set_storage_settings(&self, settings: &StorageSettings) -> crate::Result<()> {
        if settings.auto_promote_users == Some(0) || settings.auto_promote_rows == Some(0) {
            return Err(crate::Error::InvalidPayload {
                table: "storage_settings",
                reason: "a threshold is at least 1; leave it unset to turn it off".into(),
            });
        }
        if settings.keep_days > MAX_KEEP_DAYS {
            return Err(crate::Error::InvalidPayload {
                table: "storage_settings",
                reason: format!(
                    "keep_days is {}, at most {MAX_KEEP_DAYS}",
                    settings.keep_days
                ),
            });
        }
        let tx = self.begin_write()?;
        tx.execute(
            "INSERT INTO storage_settings (singleton, auto_promote_users, auto_promote_rows,
                                           keep_days, updated_at)
             VALUES (1, ?1, ?2, ?3, ?4)
             ON CONFLICT (singleton) DO UPDATE SET auto_promote_users = ?1,
                 auto_promote_rows = ?2, keep_days = ?3, updated_at = ?4",
            params![
                settings.auto_promote_users,
                settings
                    .auto_promote_rows
                    .map(|r| i64::try_from(r).unwrap_or(i64::MAX)),
                settings.keep_days,
                Timestamp::now()
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Moves a tenant from the shared file into a file of its own beside it
    /// (`<db>.tenants/<tenant>-<move id>.db`) and switches its route there: copies its rows of
    /// every tenant table with its registry row and clock, checks the copy (row counts and a
    /// SHA-256 per table, `quick_check`, `foreign_key_check`), syncs it, then switches the
    /// route in one commit. The shared rows are kept for `keep_days` (default: the node's
    /// [`StorageSettings::keep_days`]) and then removed by [`Store::purge_moved_copies`];
    /// [`Store::demote_tenant`] is the way back. `progress` is called after each table.
    ///
    /// Handles opened before the switch are refused afterwards ([`crate::Error::TenantMoved`]);
    /// [`Store::tenant`] routes to the new file. See the module docs for the invariants.
    pub fn promote_tenant(
        &self,
        tenant: &TenantId,
        keep_days: Option<u32>,
        reason: MoveReason,
        progress: &mut dyn FnMut(TableCopied),
    ) -> Result<TenantMove, TenantIoError> {
        let started = Instant::now();
        let started_at = Timestamp::now();
        let (db, keep_days) = self.before_move(tenant, keep_days)?;
        let check = |e: &dyn std::fmt::Display| {
            failed(TenantIoStep::Check, tenant, e, "nothing was changed")
        };
        let dir = homes_dir(&db);
        let id = RowId::new();
        let name = format!("{tenant}-{id}.db");
        let path = dir.join(&name);
        let tx = begin(&self.conn).map_err(|e| check(&e))?;
        living_in(
            route(&tx, tenant).map_err(|e| check(&e))?,
            tenant,
            Tier::Shared,
        )?;
        std::fs::create_dir_all(&dir).map_err(|e| TenantIoError::Destination {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        let written = write_tenant_file(
            &tx,
            tenant,
            &path,
            self.node_id(),
            FileKind::TenantHome,
            progress,
        )?;
        let sha256 = combined(&written.tables);
        let now = Timestamp::now();
        let until = keep_until(now, keep_days);
        let left = format!(
            "the tenant still lives in the shared file, as it was; {} is a leftover that \
             `purge` removes",
            path.display()
        );
        let switch = || -> rusqlite::Result<()> {
            tx.execute(
                "UPDATE tenants SET tier = 'dedicated', updated_at = ?2 WHERE id = ?1",
                params![tenant, now],
            )?;
            insert_move(
                &tx,
                &id,
                tenant,
                "promote",
                &name,
                written.rows,
                &sha256,
                reason,
                (started_at, now, until),
            )?;
            tx.commit()
        };
        if let Err(e) = switch() {
            // The file was written for nothing: the route still names the shared file.
            let _ = std::fs::remove_file(&path);
            return Err(failed(TenantIoStep::Switch, tenant, e, &left));
        }
        self.forget_cached_clock();
        Ok(TenantMove {
            id,
            tenant: tenant.clone(),
            direction: "promote",
            reason,
            file: path,
            rows: written.rows,
            tables: written.tables,
            sha256,
            keep_until: until,
            kept: format!("the tenant's rows in the shared file {}", db.display()),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Moves a promoted tenant back into the shared file and switches its route there: its
    /// shared rows (the copy its promotion left, if not purged yet) are replaced by its file's
    /// rows, checked table by table, its registry row takes the file's status, plan, limits
    /// and settings, and the clock floor is raised past the file's clock, all in one commit of
    /// the shared file. The tenant's file is kept for `keep_days` (as for
    /// [`Store::promote_tenant`]), then removed by [`Store::purge_moved_copies`].
    pub fn demote_tenant(
        &self,
        tenant: &TenantId,
        keep_days: Option<u32>,
        reason: MoveReason,
        progress: &mut dyn FnMut(TableCopied),
    ) -> Result<TenantMove, TenantIoError> {
        let started = Instant::now();
        let started_at = Timestamp::now();
        let (_, keep_days) = self.before_move(tenant, keep_days)?;
        let check = |e: &dyn std::fmt::Display| {
            failed(TenantIoStep::Check, tenant, e, "nothing was changed")
        };
        let route_now = route(&self.conn, tenant).map_err(|e| check(&e))?;
        let file = living_in(route_now, tenant, Tier::Dedicated)?
            .file
            .unwrap_or_default();
        let home = self.home(tenant).map_err(|e| check(&e))?;
        let path = home.path().map(Path::to_path_buf).unwrap_or_default();
        if !home.conn.is_autocommit() {
            return Err(TenantIoError::TransactionOpen);
        }
        // Lock order: the shared file, then the tenant's (a move is the only holder of both).
        let tx = begin(&self.conn).map_err(|e| check(&e))?;
        let still = route(&tx, tenant).map_err(|e| check(&e))?;
        if still.as_ref().and_then(|r| r.file.as_deref()) != Some(file.as_str()) {
            return Err(check(&"the tenant moved meanwhile"));
        }
        let home_tx = begin(&home.conn).map_err(|e| check(&e))?;
        home.ensure_home(tenant).map_err(|e| check(&e))?;
        let left = "rolled back: the tenant still lives in its own file, as it was";
        tx.pragma_update(None, "defer_foreign_keys", true)
            .map_err(|e| failed(TenantIoStep::Move, tenant, e, left))?;
        let (tables, _) = replace_rows(
            &tx,
            &home_tx,
            tenant,
            TABLES,
            TenantIoStep::Move,
            left,
            progress,
        )?;
        let rows: u64 = tables.iter().map(|t| t.rows).sum();
        let sha256 = combined(&tables);
        let now = Timestamp::now();
        let until = keep_until(now, keep_days);
        let id = RowId::new();
        // The clock never goes back: stamps issued in the shared file follow the file's.
        let file_clock = tenant_clock(&home_tx, tenant)
            .map_err(|e| failed(TenantIoStep::Move, tenant, e, left))?;
        let switch = || -> rusqlite::Result<()> {
            // The registry row takes what changed while the tenant lived in its own file.
            let (name, status, plan, max_users, max_calls, settings): (
                String,
                TenantStatus,
                String,
                i64,
                i64,
                String,
            ) = home_tx.query_row(
                "SELECT name, status, plan, max_users, max_api_calls_month, settings
                 FROM tenants WHERE id = ?1",
                [tenant],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )?;
            tx.execute(
                "UPDATE tenants SET name = ?2, status = ?3, plan = ?4, max_users = ?5,
                     max_api_calls_month = ?6, settings = ?7, tier = 'shared', updated_at = ?8
                 WHERE id = ?1",
                params![tenant, name, status, plan, max_users, max_calls, settings, now],
            )?;
            raise_clock_floor(&tx, file_clock)?;
            insert_move(
                &tx,
                &id,
                tenant,
                "demote",
                &file,
                rows,
                &sha256,
                reason,
                (started_at, now, until),
            )?;
            tx.commit()
        };
        switch().map_err(|e| failed(TenantIoStep::Switch, tenant, e, left))?;
        // The file is no longer the tenant's home: a handle on it (another process's) is
        // refused from now on. Should this not be written, the shared registry still routes
        // every new handle to the shared file.
        let _ = home_tx.execute("UPDATE tenants SET tier = 'shared' WHERE id = ?1", [tenant]);
        let _ = home_tx.commit();
        self.forget_cached_clock();
        Ok(TenantMove {
            id,
            tenant: tenant.clone(),
            direction: "demote",
            reason,
            file: path.clone(),
            tables,
            rows,
            sha256,
            keep_until: until,
            kept: format!("the tenant's own file {}", path.display()),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Removes the copies moves left behind whose window is over at `now`: the shared rows of
    /// a tenant promoted since (its registry row stays: it holds the route), the file of a
    /// tenant demoted since, and any file in `<db>.tenants` that no move names (a promotion
    /// that died before its switch). A copy still inside its window is listed in
    /// [`PurgeReport::kept`] and left alone. Holds the shared file's write lock while it
    /// decides and deletes rows; files are removed after the commit.
    pub fn purge_moved_copies(&self, now: Timestamp) -> Result<PurgeReport, TenantIoError> {
        let db = shared_file(self)?;
        if !self.conn.is_autocommit() {
            return Err(TenantIoError::TransactionOpen);
        }
        let left = "rolled back, nothing was removed";
        let purge_failed = |tenant: &TenantId, e: &dyn std::fmt::Display| {
            failed(TenantIoStep::Purge, tenant, e, left)
        };
        let tx = begin(&self.conn).map_err(|e| node_failed(TenantIoStep::Purge, &e, left))?;
        let moves = open_moves(&tx).map_err(|e| node_failed(TenantIoStep::Purge, &e, left))?;
        let mut report = PurgeReport::default();
        let mut remove: Vec<PathBuf> = Vec::new();
        let dir = homes_dir(&db);
        for m in &moves {
            let current = route(&tx, &m.tenant).map_err(|e| purge_failed(&m.tenant, &e))?;
            let home_file = current
                .as_ref()
                .filter(|r| r.tier == Tier::Dedicated)
                .and_then(|r| r.file.clone());
            // What the move left behind, if anything is left of it: a promotion's shared rows
            // while the tenant still lives in a file; a demotion's file unless it is the
            // tenant's home again.
            let left = match m.direction.as_str() {
                "promote" if home_file.is_some() => Some("shared rows"),
                "demote" if home_file.as_deref() != Some(m.file.as_str()) => Some("file"),
                _ => None,
            };
            let file = (left == Some("file")).then(|| dir.join(&m.file));
            match left {
                Some(what) if m.keep_until > now => {
                    report.kept.push(KeptCopy {
                        tenant: m.tenant.clone(),
                        move_id: m.id,
                        what,
                        file,
                        keep_until: m.keep_until,
                    });
                    continue;
                }
                Some("shared rows") => {
                    let rows =
                        delete_rows(&tx, &m.tenant).map_err(|e| purge_failed(&m.tenant, &e))?;
                    report.purged.push(PurgedCopy {
                        tenant: Some(m.tenant.clone()),
                        move_id: Some(m.id),
                        what: "shared rows",
                        rows,
                        file: None,
                    });
                }
                Some(_) => {
                    if let Some(file) = file {
                        report.purged.push(PurgedCopy {
                            tenant: Some(m.tenant.clone()),
                            move_id: Some(m.id),
                            what: "file",
                            rows: 0,
                            file: Some(file.clone()),
                        });
                        remove.push(file);
                    }
                }
                // Nothing is left over (the copy became the tenant's home again, or the
                // tenant is gone): the move is closed whatever its window.
                None => {}
            }
            tx.execute(
                "UPDATE tenant_moves SET purged_at = ?2 WHERE id = ?1",
                params![m.id, Timestamp::now()],
            )
            .map_err(|e| purge_failed(&m.tenant, &e))?;
        }
        // Files no move names (a promotion that died before its switch, or a tenant
        // offboarded), while the lock keeps any promotion from writing one.
        let named = named_files(&tx).map_err(|e| node_failed(TenantIoStep::Purge, &e, left))?;
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let base = name
                    .trim_end_matches("-wal")
                    .trim_end_matches("-shm")
                    .trim_end_matches("-journal")
                    .trim_end_matches(".partial");
                let decided = remove.iter().any(|r| r.file_name() == Some(base.as_ref()));
                if decided || named.iter().any(|n| n == base) {
                    continue;
                }
                // A file is reported once: itself, or the `.partial` a killed promotion
                // left; their `-wal`, `-shm` and `-journal` go with them unsaid.
                if name == base || name.ends_with(".partial") {
                    report.purged.push(PurgedCopy {
                        tenant: file_tenant(base),
                        move_id: None,
                        what: "file",
                        rows: 0,
                        file: Some(entry.path()),
                    });
                }
                remove.push(entry.path());
            }
        }
        tx.commit()
            .map_err(|e| node_failed(TenantIoStep::Purge, &e, left))?;
        for file in &remove {
            for extra in ["", "-wal", "-shm", "-journal"] {
                let _ = std::fs::remove_file(with_suffix(file, extra));
            }
        }
        if let Some(first) = remove.first() {
            let _ = sync_dir(first);
        }
        Ok(report)
    }

    /// Promotes every tenant of the shared file past the node's thresholds
    /// ([`StorageSettings`]; none while both are off), one after the other, with
    /// [`MoveReason::Auto`]. A cancelled tenant is left where it is. Stops at the first
    /// failure; the moves before it stay done.
    pub fn auto_promote(
        &self,
        progress: &mut dyn FnMut(&TenantId, TableCopied),
    ) -> Result<Vec<TenantMove>, TenantIoError> {
        shared_file(self)?;
        let check =
            |e: &dyn std::fmt::Display| node_failed(TenantIoStep::Check, e, "nothing was changed");
        let settings = self.storage_settings().map_err(|e| check(&e))?;
        if settings.auto_promote_users.is_none() && settings.auto_promote_rows.is_none() {
            return Ok(Vec::new());
        }
        let due = self.due_for_promotion(&settings).map_err(|e| check(&e))?;
        let mut moves = Vec::with_capacity(due.len());
        for tenant in due {
            moves.push(
                self.promote_tenant(&tenant, None, MoveReason::Auto, &mut |t| {
                    progress(&tenant, t)
                })?,
            );
        }
        Ok(moves)
    }

    /// The shared tenants (not cancelled) at or past a threshold.
    fn due_for_promotion(&self, settings: &StorageSettings) -> rusqlite::Result<Vec<TenantId>> {
        let mut stmt = self.conn.prepare(
            "SELECT id FROM tenants WHERE tier = 'shared' AND status <> 'cancelled' ORDER BY id",
        )?;
        let shared: Vec<TenantId> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut due = Vec::new();
        for tenant in shared {
            let users: i64 = self.conn.query_row(
                "SELECT count(*) FROM users WHERE tenant_id = ?1 AND active = 1",
                [&tenant],
                |r| r.get(0),
            )?;
            let by_users = settings
                .auto_promote_users
                .is_some_and(|at| users >= i64::from(at));
            let by_rows = match settings.auto_promote_rows {
                Some(at) if !by_users => tenant_rows(&self.conn, &tenant)? >= at,
                _ => false,
            };
            if by_users || by_rows {
                due.push(tenant);
            }
        }
        Ok(due)
    }
}

/// The tenant's rows across every tenant table.
fn tenant_rows(conn: &Connection, tenant: &TenantId) -> rusqlite::Result<u64> {
    let mut rows = 0u64;
    for table in TABLES {
        let n: i64 = conn.query_row(
            &format!(
                "SELECT count(*) FROM {} WHERE tenant_id = ?1",
                ident(table.name)
            ),
            [tenant],
            |r| r.get(0),
        )?;
        rows += u64::try_from(n).unwrap_or(0);
    }
    Ok(rows)
}

#[allow(clippy::too_many_arguments)]
fn insert_move(
    conn: &Connection,
    id: &RowId,
    tenant: &TenantId,
    direction: &str,
    file: &str,
    rows: u64,
    sha256: &str,
    reason: MoveReason,
    (started, finished, until): (Timestamp, Timestamp, Timestamp),
) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO tenant_moves (id, tenant, direction, file, rows, sha256, reason,
                                   started_at, finished_at, keep_until, purged_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL)",
        params![
            id,
            tenant,
            direction,
            file,
            i64::try_from(rows).unwrap_or(i64::MAX),
            sha256,
            reason.as_str(),
            started,
            finished,
            until
        ],
    )
}

/// A move whose leftover copy is not purged yet.
struct OpenMove {
    id: RowId,
    tenant: TenantId,
    direction: String,
    file: String,
    keep_until: Timestamp,
}

fn open_moves(conn: &Connection) -> rusqlite::Result<Vec<OpenMove>> {
    let mut stmt = conn.prepare(
        "SELECT id, tenant, direction, file, keep_until FROM tenant_moves
         WHERE purged_at IS NULL ORDER BY finished_at, id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(OpenMove {
            id: r.get(0)?,
            tenant: r.get(1)?,
            direction: r.get(2)?,
            file: r.get(3)?,
            keep_until: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// The files a purge must leave: every registered dedicated tenant's current file, and the
/// files of demotions whose window is not over.
fn named_files(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT h.file FROM tenants t JOIN tenant_homes h ON h.tenant = t.id
         WHERE t.tier = 'dedicated'
         UNION
         SELECT file FROM tenant_moves WHERE direction = 'demote' AND purged_at IS NULL",
    )?;
    let rows = stmt.query_map([], |r| r.get::<_, Option<String>>(0))?;
    Ok(rows
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect())
}
