//! One sync round of one tenant, synchronously: push everything pending, pull to the server's
//! head and merge, fetch the settings. The engine ([`super::SyncEngine`]) runs rounds on its own
//! thread; `pos-node sync --once` and tests run them directly through [`Syncer`].

use std::sync::Arc;

use rusqlite::{params, TransactionBehavior};
use serde::Serialize;

use crate::hlc::Hlc;
use crate::ids::{Json, RowId, TenantId, Timestamp};
use crate::outbox;
use crate::protocol::{
    Operation, OperationResult, OperationStatus, SequencedOperation, TenantConfig, MAX_BATCH,
    MAX_PAGE,
};
use crate::store::{deferred, Store};
use crate::sync::conflicts::{self, ConflictKind, NewConflict};
use crate::sync::merge::{self, Resolvers};
use crate::sync::snapshot::{self, SnapshotUse};
use crate::sync::state::{self, Step, SyncError};
use crate::sync::transport::{ErrorClass, Transport, TransportError};

/// A point of a round where a test kit can make the terminal "die" (see
/// [`SyncOptions::crash_points`]): what the round did before it stays, what it was doing is
/// rolled back, as after a process killed there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CrashPoint {
    /// The server committed a push and answered; the terminal has not recorded the answer.
    PushAnswered,
    /// A page of the log arrived; nothing of it is applied.
    PullFetched,
    /// A page's units are merged; the merge's transaction has not committed.
    MergeApplied,
}

/// Decides, at each crash point, whether the terminal dies there.
pub type CrashHook = Arc<dyn Fn(CrashPoint) -> bool + Send + Sync>;

/// How a round moves operations.
#[derive(Clone)]
pub struct SyncOptions {
    batch_size: usize,
    page_size: u32,
    bulk_from: Option<u64>,
    snapshot_from: Option<u64>,
    resolvers: Resolvers,
    crash: Option<CrashHook>,
}

/// How far behind a tenant's log a pull must start for it to set the secondary indexes aside
/// and build them at the end (see [`SyncOptions::bulk_from`]).
pub const BULK_FROM: u64 = 20_000;

impl std::fmt::Debug for SyncOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncOptions")
            .field("batch_size", &self.batch_size)
            .field("page_size", &self.page_size)
            .field("bulk_from", &self.bulk_from)
            .field("snapshot_from", &self.snapshot_from)
            .field("resolvers", &self.resolvers)
            .field("crash_points", &self.crash.is_some())
            .finish()
    }
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            page_size: 500,
            bulk_from: Some(BULK_FROM),
            snapshot_from: Some(BULK_FROM),
            resolvers: Resolvers::default(),
            crash: None,
        }
    }
}

impl SyncOptions {
    /// Operations per push, 1 to [`MAX_BATCH`] (default 500). A transaction is never split
    /// across pushes unless it alone holds more than this.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.clamp(1, MAX_BATCH);
        self
    }

    /// Operations per pull page, 1 to [`MAX_PAGE`] (default 500). A transaction split over
    /// pages is applied once its last operation arrives.
    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = n.clamp(1, MAX_PAGE);
        self
    }

    /// A pull that starts at least this many operations behind the server's head, and
    /// further behind than it has come so far (a new terminal joining, a bootstrap resumed),
    /// sets the secondary indexes of the tables it fills aside and builds them once at the
    /// end: several times faster than writing every index row by row. Reports read those
    /// tables slowly meanwhile, so it happens only while no other tenant of the node has rows
    /// there; a crash leaves the definitions in the file and the next open builds them.
    /// `None` never does (default [`BULK_FROM`]).
    pub fn bulk_from(mut self, behind: Option<u64>) -> Self {
        self.bulk_from = behind;
        self
    }

    /// How far behind the log a tenant this node holds nothing of must be for a pull to ask
    /// the server for its snapshot first (see [`crate::sync::SnapshotUse`]): the tenant's
    /// state taken in one copy, then only the log after it pulled. `None` always replays the
    /// log (default [`BULK_FROM`]).
    pub fn snapshot_from(mut self, behind: Option<u64>) -> Self {
        self.snapshot_from = behind;
        self
    }

    /// How master-data columns written on two terminals merge, per table (default: the newer
    /// stamp wins, see [`crate::sync::LastWriterWins`]).
    pub fn resolvers(mut self, resolvers: Resolvers) -> Self {
        self.resolvers = resolvers;
        self
    }

    /// For test kits (default: none): asked at each [`CrashPoint`]; when it answers `true`
    /// the step stops there as if the process died (its transaction rolls back) and fails
    /// with a transient error naming the point. Restart the terminal from its file to go on.
    pub fn crash_points(mut self, hook: CrashHook) -> Self {
        self.crash = Some(hook);
        self
    }

    fn crashes_at(&self, point: CrashPoint) -> bool {
        self.crash.as_ref().is_some_and(|hook| hook(point))
    }
}

fn crashed(tenant: &TenantId, step: Step, point: CrashPoint) -> SyncError {
    SyncError::new(
        tenant,
        step,
        ErrorClass::Transient,
        format!("the terminal died at {point:?} (a simulated crash)"),
    )
}

/// What a round (or one of its steps) did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RoundReport {
    /// Operations the server acknowledged (accepted, or held already).
    pub pushed: usize,
    /// Operations the server refused for good, now set aside.
    pub set_aside: usize,
    /// Operations pulled from the log (this node's own included).
    pub pulled: usize,
    /// Other terminals' operations merged here.
    pub applied: usize,
    /// Conflicts recorded new on this terminal.
    pub conflicts: Vec<RowId>,
    /// The last log sequence number applied here.
    pub cursor: u64,
    /// The server's highest sequence number.
    pub server_high: u64,
    /// Whether the tenant's settings changed.
    pub settings_changed: bool,
    /// The snapshot the pull asked for, if it asked: taken, or refused and the log replayed.
    pub snapshot: Option<SnapshotUse>,
}

/// Runs sync steps of one store against one transport.
pub struct Syncer<'a, T: Transport + ?Sized> {
    store: &'a Store,
    transport: &'a T,
    options: &'a SyncOptions,
}

impl<T: Transport + ?Sized> std::fmt::Debug for Syncer<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer")
            .field("store", self.store)
            .finish_non_exhaustive()
    }
}

fn transport_error(tenant: &TenantId, step: Step, e: TransportError) -> SyncError {
    let mut err = SyncError::new(tenant, step, e.class(), e.to_string());
    err.retry_after = e.retry_after();
    err
}

impl<'a, T: Transport + ?Sized> Syncer<'a, T> {
    /// A syncer of `store` through `transport`.
    pub fn new(store: &'a Store, transport: &'a T, options: &'a SyncOptions) -> Self {
        Self {
            store,
            transport,
            options,
        }
    }

    /// Push, pull, then settings: a whole round for the tenant. A push the server refuses
    /// (a clock running ahead) does not keep the pull from running: pull never waits for
    /// pushes; the push's error is returned after it. Any other failure ends the round; what
    /// the steps before it did stays done.
    ///
    /// A round whose tenant moved to or from a file of its own meanwhile (its steps are
    /// refused in the copy the move left behind) runs once more, in the tenant's new home:
    /// the server answered, so the terminal is not offline.
    pub fn round(&self, tenant: &TenantId, token: &str) -> Result<RoundReport, SyncError> {
        let home = self.store.home(tenant).ok();
        let first = self.round_once(tenant, token);
        let moved = || match (home, self.store.home(tenant).ok()) {
            (Some(before), Some(now)) => !std::ptr::eq(before, now),
            _ => false,
        };
        match first {
            Err(e) if e.class == ErrorClass::Transient && moved() => self.round_once(tenant, token),
            first => first,
        }
    }

    fn round_once(&self, tenant: &TenantId, token: &str) -> Result<RoundReport, SyncError> {
        let pushed = self.push(tenant, token);
        if let Err(e) = &pushed {
            if matches!(
                e.class,
                ErrorClass::Transient | ErrorClass::Auth | ErrorClass::Suspended
            ) {
                return pushed;
            }
        }
        let pulled = self.pull(tenant, token)?;
        let settings_changed = self.pull_config(tenant, token)?;
        let pushed = pushed?;
        let mut conflicts = pushed.conflicts;
        conflicts.extend(pulled.conflicts);
        Ok(RoundReport {
            pushed: pushed.pushed,
            set_aside: pushed.set_aside,
            pulled: pulled.pulled,
            applied: pulled.applied,
            conflicts,
            cursor: pulled.cursor,
            server_high: pulled.server_high,
            settings_changed,
            snapshot: pulled.snapshot,
        })
    }

    /// Joins a tenant this node does not hold yet, then runs a [`round`](Self::round): the
    /// tenant is added from the server's configuration (name, plan, white-label settings;
    /// the token is the only thing a new terminal needs), and the round pulls its log from
    /// the start, so the terminal can sell as soon as this returns. On a node that holds the
    /// tenant already this is a round. Nothing is added when the server cannot be asked or
    /// refuses.
    pub fn join(&self, tenant: &TenantId, token: &str) -> Result<RoundReport, SyncError> {
        match self.store.tenant_info(tenant) {
            Ok(_) => return self.round(tenant, token),
            Err(crate::Error::TenantNotFound(_)) => {}
            Err(e) => return Err(SyncError::local(tenant, Step::Config, e)),
        }
        let config = self.fetch_config(tenant, token)?;
        let mut new = crate::NewTenant::new(tenant.clone(), &config.name).plan(config.plan);
        new.settings = config.settings;
        self.store
            .add_tenant(&new)
            .map_err(|e| SyncError::local(tenant, Step::Config, e))?;
        // The round's settings step brings the limits the server holds for it.
        self.round(tenant, token)
    }

    /// The tenant's configuration from the server, checked: its own, with valid settings.
    fn fetch_config(&self, tenant: &TenantId, token: &str) -> Result<TenantConfig, SyncError> {
        let config = self
            .transport
            .config(tenant, token)
            .map_err(|e| transport_error(tenant, Step::Config, e))?;
        if config.id != *tenant {
            return Err(SyncError::new(
                tenant,
                Step::Config,
                ErrorClass::Fatal,
                format!("the server sent the configuration of tenant {}", config.id),
            ));
        }
        config.settings.validate().map_err(|e| {
            SyncError::new(tenant, Step::Config, ErrorClass::Refused, e.to_string())
        })?;
        Ok(config)
    }

    /// Records a step's outcome in `sync_state` and `sync_log`. Bookkeeping that fails is not
    /// allowed to hide the step's own outcome. A tenant that moved during the step is not
    /// booked here: this file's copy is no longer its, and its next step books in its new home.
    fn finish<R>(
        &self,
        tenant: &TenantId,
        step: Step,
        started: Timestamp,
        result: Result<R, SyncError>,
        moved: impl Fn(&R) -> (usize, Option<u64>),
    ) -> Result<R, SyncError> {
        let conn = &self.store.conn;
        let book = || -> crate::Result<()> {
            let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            self.store.ensure_home(tenant)?;
            match &result {
                Ok(r) => {
                    let (n, high) = moved(r);
                    state::record_success(conn, tenant, step, n, high)?;
                    state::log(conn, tenant, step, started, n, high, None)?;
                }
                Err(e) => {
                    state::record_error(conn, tenant, e)?;
                    state::log(conn, tenant, step, started, 0, None, Some(&e.to_string()))?;
                }
            }
            tx.commit()?;
            Ok(())
        };
        let booked = match book() {
            Err(crate::Error::TenantMoved { .. }) => Ok(()),
            booked => booked,
        };
        match (result, booked) {
            (Ok(_), Err(e)) => Err(SyncError::local(tenant, step, e)),
            (result, _) => result,
        }
    }

    /// Pushes every pending operation of the tenant, in clock order, in batches that keep each
    /// transaction whole. Acknowledged operations leave the outbox (the clock floor raised to
    /// them first); a batch the server refuses is pushed again a transaction at a time, and
    /// the transactions it refuses are set aside with its reason, so one bad operation never
    /// holds the others back.
    pub fn push(&self, tenant: &TenantId, token: &str) -> Result<RoundReport, SyncError> {
        self.routed(tenant, Step::Push)?.push_here(tenant, token)
    }

    /// This syncer on the store the tenant lives in (its own file, after a promotion).
    fn routed(&self, tenant: &TenantId, step: Step) -> Result<Syncer<'a, T>, SyncError> {
        Ok(Syncer {
            store: self
                .store
                .home(tenant)
                .map_err(|e| SyncError::local(tenant, step, e))?,
            transport: self.transport,
            options: self.options,
        })
    }

    fn push_here(&self, tenant: &TenantId, token: &str) -> Result<RoundReport, SyncError> {
        let started = Timestamp::now();
        let result = self.push_all(tenant, token);
        if matches!(&result, Ok(r) if r.pushed == 0 && r.set_aside == 0) {
            // Nothing was sent, so nothing reached the server: no push to record (the status's
            // last push and online say what the server answered).
            return result;
        }
        self.finish(tenant, Step::Push, started, result, |r| (r.pushed, None))
    }

    fn push_all(&self, tenant: &TenantId, token: &str) -> Result<RoundReport, SyncError> {
        let local = |e| SyncError::local(tenant, Step::Push, e);
        let mut report = RoundReport::default();
        loop {
            let limit = u32::try_from(self.options.batch_size).unwrap_or(500);
            let ops = outbox::pending(&self.store.conn, tenant, limit).map_err(local)?;
            if ops.is_empty() {
                return Ok(report);
            }
            let ops = whole_units(ops);
            match self.transport.push(tenant, token, &ops) {
                Ok(results) => self.acknowledge(tenant, &ops, &results, &mut report)?,
                // Stamped ahead of the server's clock: this terminal's clock is wrong, not the
                // operations. They wait (nothing is lost) until the clock is set right.
                Err(e) if e.is_clock_skew() => return Err(transport_error(tenant, Step::Push, e)),
                Err(e) if e.class() == ErrorClass::Refused => {
                    // Find what the server refuses: a transaction at a time.
                    let units = split_units(&ops);
                    if units.len() == 1 {
                        self.set_aside(tenant, &ops, &e.to_string(), &mut report)?;
                        continue;
                    }
                    for unit in units {
                        match self.transport.push(tenant, token, unit) {
                            Ok(results) => self.acknowledge(tenant, unit, &results, &mut report)?,
                            Err(e) if e.class() == ErrorClass::Refused && !e.is_clock_skew() => {
                                self.set_aside(tenant, unit, &e.to_string(), &mut report)?
                            }
                            Err(e) => return Err(transport_error(tenant, Step::Push, e)),
                        }
                    }
                }
                Err(e) => return Err(transport_error(tenant, Step::Push, e)),
            }
        }
    }

    /// Takes the server's answer: acknowledged operations leave the outbox, refused ones are
    /// set aside; one transaction.
    fn acknowledge(
        &self,
        tenant: &TenantId,
        ops: &[Operation],
        results: &[OperationResult],
        report: &mut RoundReport,
    ) -> Result<(), SyncError> {
        let local = |e| SyncError::local(tenant, Step::Push, e);
        if results.len() != ops.len() || results.iter().zip(ops).any(|(r, o)| r.id != o.id) {
            return Err(SyncError::new(
                tenant,
                Step::Push,
                ErrorClass::Transient,
                "the server's results do not match the operations pushed".into(),
            ));
        }
        let conn = &self.store.conn;
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .map_err(|e| local(e.into()))?;
        self.store.ensure_home(tenant).map_err(local)?;
        // The floor first: pruned stamps must still bound the clock.
        let acked = ops
            .iter()
            .zip(results)
            .filter(|(_, r)| r.status != OperationStatus::Rejected)
            .map(|(o, _)| o.hlc)
            .max();
        merge::raise_floor(conn, acked).map_err(local)?;
        let mut refused = Vec::new();
        for (op, result) in ops.iter().zip(results) {
            if result.status == OperationStatus::Rejected {
                refused.push((op, result.reason.clone().unwrap_or_default()));
                continue;
            }
            let (clock, whole) = stored_stamps(op.hlc);
            conn.prepare_cached(
                "DELETE FROM pending_operations
                 WHERE tenant_id = ?1 AND (hlc = ?2 OR hlc = ?3) AND id = ?4",
            )
            .and_then(|mut s| s.execute(params![tenant, clock, whole, op.id]))
            .map_err(|e| local(e.into()))?;
            report.pushed += 1;
        }
        for (op, reason) in refused {
            self.mark_set_aside(tenant, std::slice::from_ref(op), &reason, report)
                .map_err(local)?;
        }
        if self.options.crashes_at(CrashPoint::PushAnswered) {
            return Err(crashed(tenant, Step::Push, CrashPoint::PushAnswered));
        }
        tx.commit().map_err(|e| local(e.into()))?;
        Ok(())
    }

    fn set_aside(
        &self,
        tenant: &TenantId,
        ops: &[Operation],
        reason: &str,
        report: &mut RoundReport,
    ) -> Result<(), SyncError> {
        let local = |e| SyncError::local(tenant, Step::Push, e);
        let conn = &self.store.conn;
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .map_err(|e| local(e.into()))?;
        self.store.ensure_home(tenant).map_err(local)?;
        self.mark_set_aside(tenant, ops, reason, report)
            .map_err(local)?;
        tx.commit().map_err(|e| local(e.into()))?;
        Ok(())
    }

    /// Marks operations set aside and records one conflict for them, in the caller's
    /// transaction.
    fn mark_set_aside(
        &self,
        tenant: &TenantId,
        ops: &[Operation],
        reason: &str,
        report: &mut RoundReport,
    ) -> crate::Result<()> {
        let conn = &self.store.conn;
        for op in ops {
            let (clock, whole) = stored_stamps(op.hlc);
            conn.prepare_cached(
                "UPDATE pending_operations SET set_aside = ?5
                 WHERE tenant_id = ?1 AND (hlc = ?2 OR hlc = ?3) AND id = ?4",
            )?
            .execute(params![tenant, clock, whole, op.id, reason])?;
            report.set_aside += 1;
        }
        let Some(first) = ops.first() else {
            return Ok(());
        };
        let conflict = NewConflict {
            kind: ConflictKind::RefusedOperation,
            key: vec![first.id.to_string()],
            table: first.table.clone(),
            row: first.row_id.to_string(),
            column: None,
            local: serde_json::to_value(ops).ok(),
            remote: Some(serde_json::json!({ "reason": reason })),
        };
        if let Some(id) = conflicts::record(conn, &self.store.stamper(), tenant, conflict)? {
            report.conflicts.push(id);
        }
        Ok(())
    }

    /// Pulls the tenant's log after its cursor, to the server's head, and merges each
    /// transaction of other terminals in one local transaction, moving the cursor with it.
    pub fn pull(&self, tenant: &TenantId, token: &str) -> Result<RoundReport, SyncError> {
        self.routed(tenant, Step::Pull)?.pull_here(tenant, token)
    }

    fn pull_here(&self, tenant: &TenantId, token: &str) -> Result<RoundReport, SyncError> {
        let started = Timestamp::now();
        let result = self.pull_all(tenant, token);
        // A snapshot taken counts the operations it holds as applied.
        self.finish(tenant, Step::Pull, started, result, |r| {
            let taken = match r.snapshot {
                Some(SnapshotUse::Taken { cursor, .. }) => usize::try_from(cursor).unwrap_or(0),
                _ => 0,
            };
            (r.applied + taken, Some(r.server_high))
        })
    }

    fn pull_all(&self, tenant: &TenantId, token: &str) -> Result<RoundReport, SyncError> {
        let local = |e| SyncError::local(tenant, Step::Pull, e);
        let mut deferred = 0;
        let pulled = self.pull_pages(tenant, token, &mut deferred);
        if deferred == 0 {
            return pulled;
        }
        // Whatever became of the pull, the indexes come back before the round ends: a failed
        // round may wait long for its retry, and reports would run without them meanwhile.
        let built = deferred::build_deferred(&self.store.conn).map_err(local);
        let report = pulled?;
        built?;
        Ok(report)
    }

    fn pull_pages(
        &self,
        tenant: &TenantId,
        token: &str,
        deferred: &mut usize,
    ) -> Result<RoundReport, SyncError> {
        let local = |e| SyncError::local(tenant, Step::Pull, e);
        let conn = &self.store.conn;
        // A download a killed process left behind (taken or not: it is never used again).
        if let Some(path) = snapshot::download_path(self.store, tenant) {
            remove_leftover(&path).map_err(local)?;
        }
        state::ensure(conn, tenant).map_err(local)?;
        let mut after = state::cursor(conn, tenant).map_err(local)?;
        let start = after;
        // The cursor as stored when this pull last wrote it (or found it).
        let mut from = after;
        let mut report = RoundReport {
            cursor: after,
            ..RoundReport::default()
        };
        // Operations of transactions whose last operation has not arrived yet.
        let mut waiting: Vec<SequencedOperation> = Vec::new();
        // The head as the first page shows it is where this pull stops: other terminals
        // keep pushing, and chasing a head that moves faster than this terminal applies
        // pages would keep the round in its pull for good, its own sales never pushed.
        let mut target: Option<u64> = None;
        loop {
            let page = self
                .transport
                .pull(tenant, token, after, self.options.page_size)
                .map_err(|e| transport_error(tenant, Step::Pull, e))?;
            report.server_high = report.server_high.max(page.high);
            let fetched = page.operations.len();
            if target.is_none() {
                let behind = page.high.saturating_sub(start);
                if self
                    .options
                    .bulk_from
                    .is_some_and(|from| behind >= from && behind > start)
                {
                    *deferred = deferred::defer_indexes(conn, tenant).map_err(local)?;
                }
                let wanted = self
                    .options
                    .snapshot_from
                    .is_some_and(|from| start == 0 && behind >= from);
                if wanted && snapshot::holds_nothing(conn, tenant).map_err(local)? {
                    let used = self.take_snapshot(tenant, token, page.high)?;
                    if let Some(SnapshotUse::Taken { cursor, .. }) = used {
                        // The page is older than the snapshot: fetch again after it.
                        after = cursor;
                        from = cursor;
                        report.cursor = cursor;
                        report.snapshot = used;
                        target = Some(page.high);
                        continue;
                    }
                    report.snapshot = used;
                }
            }
            let mut units: Vec<Vec<Operation>> = Vec::new();
            for sop in page.operations {
                if sop.seq <= after {
                    continue; // A page never goes back; ignore what would.
                }
                after = sop.seq;
                report.pulled += 1;
                let (complete, txn) = match sop.operation.unit {
                    None => (true, None),
                    Some(u) => (u.last, Some(u.txn)),
                };
                let seq = sop.seq;
                waiting.push(sop);
                if !complete {
                    continue;
                }
                let (unit, rest): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|w| {
                    w.seq == seq || (txn.is_some() && w.operation.unit.map(|u| u.txn) == txn)
                });
                waiting = rest;
                units.push(unit.into_iter().map(|w| w.operation).collect());
            }
            if !units.is_empty() {
                // Everything fetched is applied but what still waits for its transaction's end.
                let cursor = waiting.first().map_or(after, |w| w.seq - 1);
                if self.options.crashes_at(CrashPoint::PullFetched) {
                    return Err(crashed(tenant, Step::Pull, CrashPoint::PullFetched));
                }
                let before_commit = || self.options.crashes_at(CrashPoint::MergeApplied);
                let applied = match merge::apply_units(
                    self.store,
                    tenant,
                    &units,
                    from,
                    cursor,
                    &self.options.resolvers,
                    &before_commit,
                )
                .map_err(local)?
                {
                    merge::PageOutcome::Committed(applied) => applied,
                    merge::PageOutcome::Died => {
                        return Err(crashed(tenant, Step::Pull, CrashPoint::MergeApplied))
                    }
                    // Another process on this database applied these meanwhile: go on from
                    // where it left the cursor.
                    merge::PageOutcome::Moved(to) => {
                        after = to;
                        from = to;
                        waiting.clear();
                        report.cursor = report.cursor.max(to);
                        target.get_or_insert(page.high);
                        continue;
                    }
                };
                from = cursor;
                report.applied += applied.operations;
                report
                    .conflicts
                    .extend(applied.conflicts.iter().map(|(id, _)| *id));
                report.cursor = report.cursor.max(cursor);
            }
            let target = *target.get_or_insert(page.high);
            if fetched == 0 || after >= target.min(page.high) {
                return Ok(report);
            }
        }
    }

    /// Downloads the server's snapshot of the tenant and takes it. `Ok(None)`: the server has
    /// none. A file that cannot be taken, or a server error serving it, is `Refused` (the
    /// caller replays the log); a network, token, rate or suspension failure is the pull's
    /// error, retried like any other. `high` is the head of the log as the pull's first page
    /// showed it.
    fn take_snapshot(
        &self,
        tenant: &TenantId,
        token: &str,
        high: u64,
    ) -> Result<Option<SnapshotUse>, SyncError> {
        let Some(path) = snapshot::download_path(self.store, tenant) else {
            return Ok(None);
        };
        let local = |e| SyncError::local(tenant, Step::Pull, e);
        // The pull that asks removed any earlier download before its first page.
        let fetched = self.transport.snapshot(tenant, token, &path);
        let taken = match fetched {
            Ok(None) => Ok(None),
            Ok(Some(info)) => self.take_downloaded(tenant, token, &path, &info, high),
            // The server's own failure to serve its snapshot (a 5xx: a damaged file, a broken
            // snapshot directory) is worked around with the log, which it may well serve;
            // retried instead, a join would wait as long as the snapshot stays broken.
            Err(e @ TransportError::Server { status, .. }) if (500..600).contains(&status) => {
                Ok(Some(SnapshotUse::Refused {
                    reason: e.to_string(),
                }))
            }
            Err(e) => match e.class() {
                ErrorClass::Transient | ErrorClass::Auth | ErrorClass::Suspended => {
                    Err(transport_error(tenant, Step::Pull, e))
                }
                _ => Ok(Some(SnapshotUse::Refused {
                    reason: e.to_string(),
                })),
            },
        };
        let removed = remove_leftover(&path).map_err(local);
        let taken = taken?;
        removed?;
        Ok(taken)
    }

    /// Takes the downloaded snapshot at `path`, unless it holds more of the log than the
    /// server has: taken, its cursor would pass sequence numbers the log has not reached yet,
    /// and the operations that later take them would never be pulled.
    fn take_downloaded(
        &self,
        tenant: &TenantId,
        token: &str,
        path: &std::path::Path,
        info: &crate::protocol::SnapshotInfo,
        high: u64,
    ) -> Result<Option<SnapshotUse>, SyncError> {
        // The first page may predate a snapshot built since: ask for the head again.
        let head = if info.cursor > high {
            self.transport
                .pull(tenant, token, high, 1)
                .map_err(|e| transport_error(tenant, Step::Pull, e))?
                .high
        } else {
            high
        };
        if info.cursor > head {
            return Ok(Some(SnapshotUse::Refused {
                reason: format!(
                    "the server announced it up to {}, and its log ends at {head}",
                    info.cursor
                ),
            }));
        }
        match snapshot::take(self.store, tenant, path, info) {
            Ok(rows) => Ok(Some(SnapshotUse::Taken {
                cursor: info.cursor,
                rows,
                bytes: info.bytes,
            })),
            Err(snapshot::Unusable::File(reason)) => Ok(Some(SnapshotUse::Refused { reason })),
            Err(snapshot::Unusable::Local(e)) => Err(SyncError::local(tenant, Step::Pull, e)),
        }
    }

    /// Fetches the tenant's configuration and stores what changed (name, plan, limits,
    /// white-label settings), so a change made centrally reaches every terminal. Returns
    /// whether anything changed.
    pub fn pull_config(&self, tenant: &TenantId, token: &str) -> Result<bool, SyncError> {
        self.routed(tenant, Step::Config)?
            .pull_config_here(tenant, token)
    }

    fn pull_config_here(&self, tenant: &TenantId, token: &str) -> Result<bool, SyncError> {
        let local = |e| SyncError::local(tenant, Step::Config, e);
        let config = self.fetch_config(tenant, token)?;
        let settings = serde_json::to_value(&config.settings)
            .map(Json)
            .map_err(|e| SyncError::new(tenant, Step::Config, ErrorClass::Fatal, e.to_string()))?;
        // Written only where the tenant still lives: settings taken in while it moved are
        // refused (transient) and written in its new home by the next round.
        let conn = &self.store.conn;
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .map_err(|e| local(e.into()))?;
        self.store.ensure_home(tenant).map_err(local)?;
        let changed = conn
            .prepare_cached(
                "UPDATE tenants SET name = ?2, plan = ?3, max_users = ?4, max_api_calls_month = ?5,
                     settings = ?6, updated_at = ?7
                 WHERE id = ?1 AND (name IS NOT ?2 OR plan IS NOT ?3 OR max_users IS NOT ?4
                     OR max_api_calls_month IS NOT ?5 OR settings IS NOT json(?6))",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant,
                    config.name,
                    config.plan.as_str(),
                    i64::from(config.limits.max_users),
                    i64::try_from(config.limits.max_api_calls_month).unwrap_or(i64::MAX),
                    settings,
                    Timestamp::now()
                ])
            })
            .map_err(|e| local(e.into()))?;
        tx.commit().map_err(|e| local(e.into()))?;
        Ok(changed > 0)
    }
}

/// Removes a downloaded snapshot if one is there (a crash may have left it), with the files
/// SQLite makes beside a database it opens: a file in WAL mode (a node database served by
/// mistake) leaves its `-wal` and `-shm` once checked.
fn remove_leftover(path: &std::path::Path) -> crate::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = std::path::PathBuf::from(name);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(crate::Error::Io(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", file.display()),
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The stamp as the outbox may store it: the clock part alone (the node is the row's device)
/// or whole (a row adopted with another node's stamp).
fn stored_stamps(hlc: Hlc) -> (String, String) {
    (
        format!("{:016}.{:06}", hlc.millis(), hlc.counter()),
        hlc.to_string(),
    )
}

/// Drops a trailing transaction that continues past what was read, unless it is the only one
/// (a transaction larger than a batch travels in parts).
fn whole_units(mut ops: Vec<Operation>) -> Vec<Operation> {
    let Some(last) = ops.last().and_then(|o| o.unit) else {
        return ops;
    };
    if last.last {
        return ops;
    }
    let start = ops
        .iter()
        .rposition(|o| o.unit.map(|u| u.txn) != Some(last.txn))
        .map_or(0, |i| i + 1);
    if start > 0 {
        ops.truncate(start);
    }
    ops
}

/// Consecutive operations of one transaction each.
fn split_units(ops: &[Operation]) -> Vec<&[Operation]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=ops.len() {
        let boundary = i == ops.len() || {
            let (a, b) = (ops[i - 1].unit, ops[i].unit);
            a.is_none() || b.is_none() || a.map(|u| u.txn) != b.map(|u| u.txn)
        };
        if boundary {
            out.push(&ops[start..i]);
            start = i;
        }
    }
    out
}
