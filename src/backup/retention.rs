//! How long whole-node backups are kept: a [`Retention`] per tenant, and [`prune`].
//!
//! A tenant's retention is its `backup_settings.retention_days` when it has that row, else its
//! plan's default (enterprise 35 days, pro 14, free 7, the plans' backup table). Within it a
//! tenant keeps its last [`DEFAULT_KEEP_LAST`] backups whatever their age (a node that was off
//! for a month still has its latest), the newest backup of each day of the last
//! [`DEFAULT_DAILY_DAYS`] days, and the newest of each ISO week of the whole retention window.
//!
//! Invariants, and why:
//! - Each tenant's retention decides about its own rows only; a file goes when no row names it
//!   any more, so one tenant's short retention never removes a backup another still keeps.
//! - A restore job's record goes with the backup it restored (`restore_jobs` refers to it).
//! - A file is deleted only when it looks like a backup this module wrote: its name has
//!   `.backup-`, its `.sha256` is beside it and records the SHA-256 the row does, and no row
//!   of any backup names its path any more. A row written through a tenant handle naming some
//!   other file can never get that file deleted. Its tenant files (`<file>.tenants/`) go with
//!   it: only files there named like tenant files, their `.sha256` and `SHA256SUMS`.
//! - Rows are removed in one transaction before any file; a crash in between leaves a file no
//!   row names (harmless), never a row naming a missing file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use chrono::Datelike;
use rusqlite::{params, Connection, TransactionBehavior};
use serde::Serialize;

use super::checksum_path;
use super::error::{BackupError, BackupStep};
use super::node::{open_node, recorded_checksum};
use super::tenant_files::remove_parts;
use crate::ids::{RowId, TenantId, Timestamp};
use crate::tenant::settings::Plan;

/// Backups kept whatever their age, newest first, unless settings say otherwise.
pub const DEFAULT_KEEP_LAST: u32 = 3;

/// Days for which the newest backup of each day is kept.
pub const DEFAULT_DAILY_DAYS: u32 = 7;

/// A backup that has not finished after this long is taken for one whose process died.
const STALE_RUNNING_MS: i64 = 24 * 3_600_000;

/// Which of a tenant's backups to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Retention {
    /// The window in days: the newest backup of each ISO week in it is kept, nothing older
    /// (except the last [`Retention::keep_last`]).
    pub days: u32,
    /// The newest backups kept whatever their age.
    pub keep_last: u32,
    /// The newest backup of each day of the last this many days (at most [`Retention::days`])
    /// is kept.
    pub daily_days: u32,
}

impl Retention {
    /// A retention of `days` days with the default last-N and daily counts.
    pub fn days(days: u32) -> Self {
        Self {
            days,
            keep_last: DEFAULT_KEEP_LAST,
            daily_days: DEFAULT_DAILY_DAYS,
        }
    }

    /// The default for a plan: enterprise 35 days, pro 14, free 7.
    pub fn for_plan(plan: Plan) -> Self {
        Self::days(match plan {
            Plan::Enterprise => 35,
            Plan::Pro => 14,
            Plan::Free => 7,
        })
    }

    /// The same retention keeping the last `n` whatever their age.
    pub fn keep_last(mut self, n: u32) -> Self {
        self.keep_last = n;
        self
    }

    /// Which of the backups taken at `created` (in any order) to keep at `now`: one answer per
    /// backup, in the order given. A backup dated after `now` (a clock set back) is kept.
    pub fn keeps(&self, created: &[Timestamp], now: Timestamp) -> Vec<bool> {
        let mut order: Vec<usize> = (0..created.len()).collect();
        order.sort_by(|a, b| created[*b].cmp(&created[*a]));
        let mut keep = vec![false; created.len()];
        let day_ms: i64 = 24 * 3_600_000;
        let daily_ms = i64::from(self.daily_days.min(self.days)) * day_ms;
        let window_ms = i64::from(self.days) * day_ms;
        let mut days_seen = BTreeSet::new();
        let mut weeks_seen = BTreeSet::new();
        for (rank, &i) in order.iter().enumerate() {
            let at = created[i];
            let age = now.as_millis() - at.as_millis();
            let date = at.as_datetime().date_naive();
            let week = date.iso_week();
            if rank < self.keep_last as usize || age < 0 {
                keep[i] = true;
            }
            // Newest first, so the first of a day or week seen is that day's or week's newest.
            if age < daily_ms && days_seen.insert(date) {
                keep[i] = true;
            }
            if age < window_ms && weeks_seen.insert((week.year(), week.week())) {
                keep[i] = true;
            }
        }
        keep
    }
}

/// How [`prune`] prunes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneOptions {
    /// Backups kept whatever their age, for every tenant. Default [`DEFAULT_KEEP_LAST`].
    pub keep_last: u32,
    /// Report what would go and change nothing.
    pub dry_run: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self {
            keep_last: DEFAULT_KEEP_LAST,
            dry_run: false,
        }
    }
}

impl PruneOptions {
    /// Keep the last `n` backups whatever their age.
    pub fn keep_last(mut self, n: u32) -> Self {
        self.keep_last = n;
        self
    }

    /// Report only.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// A backup whose rows pruning removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PrunedBackup {
    /// The backup's id.
    pub id: RowId,
    /// Its file.
    pub path: PathBuf,
    /// When it was taken.
    pub created_at: Timestamp,
    /// The tenants whose rows for it went.
    pub tenants: Vec<TenantId>,
    /// Whether its file (and `.sha256`, and its tenant files) was deleted: no row names it any
    /// more.
    pub file_removed: bool,
}

/// What [`prune`] did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PruneReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Each tenant's retention.
    pub retention: BTreeMap<TenantId, Retention>,
    /// Backups with rows removed, oldest first.
    pub removed: Vec<PrunedBackup>,
    /// Backups still recorded.
    pub kept: usize,
}

/// Removes the whole-node backups of `db` that no tenant's [`Retention`] keeps at `now`
/// (see the module docs for what is kept and when a file is deleted).
pub fn prune(
    db: &Path,
    options: &PruneOptions,
    now: Timestamp,
) -> Result<PruneReport, BackupError> {
    let conn = open_node(db)?;
    prune_on(&conn, db, options, now)
}

/// A row of `backups` that pruning considers.
struct Row {
    tenant: TenantId,
    id: RowId,
    path: String,
    sha256: Option<String>,
    ok: bool,
    created_at: Timestamp,
}

pub(super) fn prune_on(
    conn: &Connection,
    db: &Path,
    options: &PruneOptions,
    now: Timestamp,
) -> Result<PruneReport, BackupError> {
    let fail = |e: rusqlite::Error| {
        BackupError::failed(
            BackupStep::Prune,
            db,
            e,
            "rolled back, no backup was removed",
        )
    };
    let retention = retention_of_tenants(conn, options).map_err(fail)?;
    let rows: Vec<Row> = {
        let mut stmt = conn
            .prepare(
                "SELECT tenant_id, id, path, sha256, status = 'ok', created_at FROM backups
                 WHERE kind = 'full'",
            )
            .map_err(fail)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Row {
                    tenant: r.get(0)?,
                    id: r.get(1)?,
                    path: r.get(2)?,
                    sha256: r.get(3)?,
                    ok: r.get(4)?,
                    created_at: r.get(5)?,
                })
            })
            .map_err(fail)?;
        rows.collect::<rusqlite::Result<_>>().map_err(fail)?
    };
    let mut by_tenant: HashMap<&TenantId, Vec<&Row>> = HashMap::new();
    for row in &rows {
        by_tenant.entry(&row.tenant).or_default().push(row);
    }
    let mut dropped: Vec<&Row> = Vec::new();
    for (tenant, rows) in &by_tenant {
        let keep = retention
            .get(*tenant)
            .copied()
            .unwrap_or_else(|| Retention::for_plan(Plan::Free).keep_last(options.keep_last));
        let finished: Vec<&Row> = rows.iter().copied().filter(|r| r.ok).collect();
        let created: Vec<Timestamp> = finished.iter().map(|r| r.created_at).collect();
        for (row, kept) in finished.iter().zip(keep.keeps(&created, now)) {
            if !kept {
                dropped.push(row);
            }
        }
        dropped.extend(
            rows.iter()
                .copied()
                .filter(|r| !r.ok && now.as_millis() - r.created_at.as_millis() > STALE_RUNNING_MS),
        );
    }
    // Which paths are still named once the dropped rows are gone.
    let gone: BTreeSet<(&TenantId, RowId)> = dropped.iter().map(|r| (&r.tenant, r.id)).collect();
    let still_named: BTreeSet<&str> = rows
        .iter()
        .filter(|r| !gone.contains(&(&r.tenant, r.id)))
        .map(|r| r.path.as_str())
        .collect();
    let mut removed: BTreeMap<RowId, PrunedBackup> = BTreeMap::new();
    for row in &dropped {
        let entry = removed.entry(row.id).or_insert_with(|| PrunedBackup {
            id: row.id,
            path: PathBuf::from(&row.path),
            created_at: row.created_at,
            tenants: Vec::new(),
            file_removed: false,
        });
        entry.tenants.push(row.tenant.clone());
        entry.created_at = entry.created_at.min(row.created_at);
    }
    let kept = rows
        .iter()
        .filter(|r| !removed.contains_key(&r.id))
        .map(|r| r.id)
        .collect::<BTreeSet<_>>()
        .len();
    if !options.dry_run && !dropped.is_empty() {
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .map_err(fail)?;
        for row in &dropped {
            tx.execute(
                "DELETE FROM restore_jobs WHERE tenant_id = ?1 AND backup_id = ?2",
                params![row.tenant, row.id],
            )
            .map_err(fail)?;
            tx.execute(
                "DELETE FROM backups WHERE tenant_id = ?1 AND id = ?2",
                params![row.tenant, row.id],
            )
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
    }
    let mut removed: Vec<PrunedBackup> = removed.into_values().collect();
    for backup in &mut removed {
        backup.tenants.sort();
        let Some(path) = backup.path.to_str() else {
            continue;
        };
        if still_named.contains(path) {
            continue;
        }
        let sha = dropped
            .iter()
            .find(|r| r.id == backup.id)
            .and_then(|r| r.sha256.clone());
        if !options.dry_run && looks_like_our_backup(&backup.path, sha.as_deref()) {
            backup.file_removed = std::fs::remove_file(&backup.path).is_ok();
            let _ = std::fs::remove_file(checksum_path(&backup.path));
            // Its tenant files go with it: a copy of the node is only whole with them.
            remove_parts(&backup.path);
        } else if options.dry_run {
            backup.file_removed = looks_like_our_backup(&backup.path, sha.as_deref());
        }
    }
    removed.sort_by_key(|b| b.created_at);
    Ok(PruneReport {
        dry_run: options.dry_run,
        retention,
        removed,
        kept,
    })
}

/// Whether the file at `path` is a backup [`super::create`] wrote with this SHA-256.
fn looks_like_our_backup(path: &Path, sha256: Option<&str>) -> bool {
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains(".backup-") && n.ends_with(".db"));
    named
        && path.is_file()
        && sha256.is_some_and(|sha| recorded_checksum(path).is_ok_and(|beside| beside == sha))
}

/// Each tenant's retention: its settings' days, or its plan's.
fn retention_of_tenants(
    conn: &Connection,
    options: &PruneOptions,
) -> rusqlite::Result<BTreeMap<TenantId, Retention>> {
    let mut stmt = conn.prepare(
        "SELECT t.id, t.plan, s.retention_days FROM tenants t
         LEFT JOIN backup_settings s ON s.tenant_id = t.id",
    )?;
    let rows = stmt.query_map([], |r| {
        let tenant: TenantId = r.get(0)?;
        let plan: Plan = r.get(1)?;
        let days: Option<i64> = r.get(2)?;
        let retention = match days {
            Some(days) => Retention::days(u32::try_from(days.max(1)).unwrap_or(u32::MAX)),
            None => Retention::for_plan(plan),
        };
        Ok((tenant, retention.keep_last(options.keep_last)))
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a test date")
    }

    fn kept(retention: Retention, created: &[&str], now: &str) -> Vec<String> {
        let created: Vec<Timestamp> = created.iter().map(|c| at(c)).collect();
        retention
            .keeps(&created, at(now))
            .into_iter()
            .zip(&created)
            .filter(|(k, _)| *k)
            .map(|(_, c)| c.to_string())
            .collect()
    }

    #[test]
    fn plans_default_to_their_retention() {
        assert_eq!(Retention::for_plan(Plan::Enterprise).days, 35);
        assert_eq!(Retention::for_plan(Plan::Pro).days, 14);
        assert_eq!(Retention::for_plan(Plan::Free).days, 7);
    }

    #[test]
    fn the_last_n_are_kept_whatever_their_age() {
        let old = [
            "2020-01-01T00:00:00.000Z",
            "2020-01-02T00:00:00.000Z",
            "2020-01-03T00:00:00.000Z",
            "2020-01-04T00:00:00.000Z",
        ];
        let kept = kept(Retention::days(7), &old, "2026-01-01T00:00:00.000Z");
        assert_eq!(
            kept,
            [
                "2020-01-02T00:00:00.000Z",
                "2020-01-03T00:00:00.000Z",
                "2020-01-04T00:00:00.000Z"
            ]
        );
    }

    #[test]
    fn hourly_backups_thin_to_daily_then_weekly_then_none() {
        // Every six hours for 40 days before 2026-03-01 (a Sunday).
        let now = at("2026-03-01T12:00:00.000Z");
        let created: Vec<Timestamp> = (1..=160)
            .map(|i| Timestamp::from_millis(now.as_millis() - i * 6 * 3_600_000).expect("date"))
            .collect();
        let retention = Retention::days(14).keep_last(2);
        let keep = retention.keeps(&created, now);
        let kept: Vec<Timestamp> = created
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| *c)
            .collect();
        // Nothing older than the window but the last N (which are the newest).
        assert!(kept
            .iter()
            .all(|c| now.as_millis() - c.as_millis() < 14 * 24 * 3_600_000));
        // One a day for the last 7 days (today's 06:00 and 00:00 are the last two).
        let days: BTreeSet<_> = kept
            .iter()
            .filter(|c| now.as_millis() - c.as_millis() < 7 * 24 * 3_600_000)
            .map(|c| c.as_datetime().date_naive())
            .collect();
        assert_eq!(days.len(), 8, "today and the seven days before: {kept:?}");
        // The newest of each day: 18:00 of every earlier day in the daily window.
        assert!(kept.contains(&at("2026-02-27T18:00:00.000Z")));
        assert!(!kept.contains(&at("2026-02-27T12:00:00.000Z")));
        // Beyond the daily window, one a week: the week of 2026-02-16..22 has its newest in
        // the daily window already, the week of 2026-02-09..15 keeps its newest only, and the
        // week before is past the window.
        assert!(kept.contains(&at("2026-02-22T18:00:00.000Z")));
        assert!(!kept.contains(&at("2026-02-21T18:00:00.000Z")));
        assert!(kept.contains(&at("2026-02-15T18:00:00.000Z")));
        assert!(!kept.contains(&at("2026-02-14T18:00:00.000Z")));
        assert!(!kept.contains(&at("2026-02-08T18:00:00.000Z")));
        // The last two, a day's newest for eight days (one of them also among the last two),
        // and one weekly.
        assert_eq!(kept.len(), 10, "{kept:?}");
    }

    #[test]
    fn a_backup_from_the_future_is_kept() {
        let kept = kept(
            Retention::days(7).keep_last(0),
            &["2026-03-05T00:00:00.000Z", "2026-01-01T00:00:00.000Z"],
            "2026-03-01T00:00:00.000Z",
        );
        assert_eq!(kept, ["2026-03-05T00:00:00.000Z"]);
    }
}
