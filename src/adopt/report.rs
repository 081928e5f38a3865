//! What adoption tells its caller: progress while it runs, and what it did (a plan, a report,
//! or that the file already was a multi-tenant store), with the seconds spent in each step.
//!
//! Every type here serialises to the JSON that `pos-node adopt --json` prints, so field names
//! are part of the command line's contract.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::{AdoptPlan, BackupFile, Step};

/// How one table came through adoption.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    /// The table.
    pub table: String,
    /// Rows before, counted inside the adoption's transaction.
    pub rows_before: u64,
    /// Rows after, all of them the tenant's.
    pub rows_after: u64,
    /// Indexes rescoped (the schema's and the extra ones).
    pub indexes_rescoped: usize,
    /// Keys and foreign keys rescoped.
    pub constraints_rescoped: usize,
    /// Seconds spent copying and validating this table.
    pub seconds: f64,
}

/// A completed adoption.
#[derive(Debug, Clone, Serialize)]
pub struct AdoptReport {
    /// The plan that was carried out.
    pub plan: AdoptPlan,
    /// Table by table, rows before and after.
    pub tables: Vec<TableReport>,
    /// Rows across all tables after adoption.
    pub total_rows_after: u64,
    /// The backup to roll back to.
    pub backup: BackupFile,
    /// The schema version the file is now at.
    pub schema_version: i64,
    /// Seconds spent in each step.
    pub step_seconds: BTreeMap<Step, f64>,
    /// Seconds from start to commit.
    pub seconds: f64,
}

/// What [`adopt`](fn@super::adopt) did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// The file already is a multi-tenant store; nothing was done.
    AlreadyMultiTenant {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        schema_version: i64,
        /// Its registered tenants.
        tenants: Vec<String>,
    },
    /// A dry run: the plan, nothing changed.
    Planned(AdoptPlan),
    /// The file was adopted.
    Adopted(AdoptReport),
}

/// Progress of long steps, for a progress bar.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// The audit is done: this many tables and rows will be adopted.
    Planned {
        /// Tables of the store.
        tables: usize,
        /// Rows across them.
        rows: u64,
    },
    /// Backup pages copied so far out of the total.
    Backup {
        /// Pages copied.
        done: u64,
        /// Pages in all.
        total: u64,
    },
    /// A table's rows are being copied.
    TableStarted {
        /// The table.
        table: &'a str,
        /// Its rows.
        rows: u64,
    },
    /// A table was copied and validated.
    TableDone {
        /// The table.
        table: &'a str,
        /// Its rows.
        rows: u64,
    },
    /// A whole-file step started (indexes, foreign keys, integrity).
    Step(Step),
}

/// The result of [`rollback`](fn@super::rollback).
#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    /// The database restored.
    pub db: PathBuf,
    /// The backup it was restored from.
    pub backup: PathBuf,
    /// The backup's SHA-256, checked against the recorded one.
    pub sha256: String,
    /// The canonical digest of the restored database, equal to the backup's.
    pub canonical_digest: String,
    /// Seconds taken.
    pub seconds: f64,
}

/// Seconds per step for [`AdoptReport::step_seconds`]: each lap runs from the end of the
/// previous one, so the steps' seconds add up to the rebuild's.
pub(super) struct Laps<'a> {
    steps: &'a mut BTreeMap<Step, f64>,
    timer: Instant,
}

impl<'a> Laps<'a> {
    /// Starts timing now.
    pub(super) fn new(steps: &'a mut BTreeMap<Step, f64>) -> Self {
        Self {
            steps,
            timer: Instant::now(),
        }
    }

    /// Adds the time since the last lap to `step`.
    pub(super) fn lap(&mut self, step: Step) {
        *self.steps.entry(step).or_insert(0.0) += self.timer.elapsed().as_secs_f64();
        self.timer = Instant::now();
    }
}
