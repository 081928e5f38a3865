//! A deterministic generator of *legacy* single-tenant POS stores, for the tests and benchmarks
//! of adoption.
//!
//! A store that ran the old single-tenant POS has a SQLite file with this crate's tables but no
//! `tenant_id` column, no `tenants` registry and no node tables: [`LEGACY_SCHEMA`]. [`generate`]
//! writes such a file holding an auto-parts store's trading over [`LegacyOptions::days`] days:
//! staff, tills, a catalogue with fitment data and stock, customers with their vehicles, sales
//! with lines, payments and stock movements, gift cards, loyalty and store credit, layaways,
//! work orders, commissions, promotions, sessions, sync and backup bookkeeping, and the audit
//! trail. Every row satisfies the CHECK constraints and foreign keys of both the legacy schema
//! and the current one, and reads back as the typed records of [`crate::catalog`].
//!
//! The same options always give the same rows: ids and timestamps come from a ChaCha8 stream
//! seeded with [`LegacyOptions::seed`], never from the clock.
//!
//! ```
//! use pos_tenancy::testkit::legacy::{generate, today, LegacyOptions};
//!
//! let nanos = std::time::SystemTime::now()
//!     .duration_since(std::time::UNIX_EPOCH)?
//!     .as_nanos();
//! let path = std::env::temp_dir().join(format!("legacy-{}-{nanos}.db", std::process::id()));
//! let options = LegacyOptions { rows: 3_000, ..LegacyOptions::default() };
//! let summary = generate(&path, &options)?;
//! assert!(summary.total_rows.abs_diff(3_000) <= 60, "within 2 %");
//! assert!(summary.rows("sales").unwrap_or(0) > 0);
//!
//! // The last trading day has sales too, for "today's sales" queries.
//! let db = rusqlite::Connection::open(&path)?;
//! let today = today(&options).format("%Y-%m-%d").to_string();
//! let sold_today: i64 = db.query_row(
//!     "SELECT count(*) FROM sales WHERE substr(sold_at, 1, 10) = ?1",
//!     [&today],
//!     |r| r.get(0),
//! )?;
//! assert!(sold_today > 0);
//! drop(db);
//! std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The generator's parts: `schema` (the legacy schema and the writer of its rows), `values`
//! (how ids, timestamps and amounts are written), `data` (the store's fixed reference data),
//! `plan` (how many of each thing a row target asks for), `generator` (every table's rows, in
//! the order the store made them) and `summary` (what was written).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};
use rusqlite::Connection;

use crate::testkit::reference::DAY_MS;
use generator::Gen;
use schema::{legacy_tables, Writer};

mod data;
mod generator;
mod plan;
mod schema;
mod summary;
#[cfg(test)]
mod tests;
mod values;

pub use schema::LEGACY_SCHEMA;
pub use summary::LegacySummary;

/// The fewest rows [`generate`] accepts: below this the fixed reference data (staff, tills,
/// categories, price levels...) and the smallest useful trading history would overshoot the
/// target.
pub const MIN_ROWS: u64 = 1_000;

/// The most rows [`generate`] accepts (the generator keeps a few dozen bytes per sale in memory).
pub const MAX_ROWS: u64 = 100_000_000;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyOptions {
    /// Approximate total rows across all tables (within 2 %), from [`MIN_ROWS`] to
    /// [`MAX_ROWS`]. Default 10,000.
    pub rows: u64,
    /// Seed of the random stream; the same options give the same rows. Default 1.
    pub seed: u64,
    /// The first trading day (UTC). Default 2026-01-01.
    pub first_day: NaiveDate,
    /// How many days the store traded, the last one included; at least 1. Default 365.
    pub days: u32,
}

// A const, so the date is checked at compile time and nothing can fail at run time.
const DEFAULT_FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2026, 1, 1) {
    Some(day) => day,
    None => panic!("2026-01-01 is a date"),
};

impl Default for LegacyOptions {
    fn default() -> Self {
        Self {
            rows: 10_000,
            seed: 1,
            first_day: DEFAULT_FIRST_DAY,
            days: 365,
        }
    }
}

/// Why [`generate`] wrote nothing. On any error after the file was created, the partial file
/// is removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The target file exists; the generator never overwrites one.
    #[error("{path} already exists; the generator never overwrites a file")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The target file could not be created.
    #[error("cannot create {path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An option is out of range.
    #[error("invalid option {field}: {reason}")]
    Options {
        /// The option (`rows`, `days`, `first_day`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// SQLite failed during a step other than inserting rows.
    #[error("SQLite failed while {step}: {source}")]
    Sqlite {
        /// What was being done.
        step: &'static str,
        /// Why.
        source: rusqlite::Error,
    },
    /// SQLite kept another journal mode than the rollback journal the old app used.
    #[error("SQLite left the file in journal mode {mode:?} instead of \"delete\"")]
    JournalMode {
        /// The mode SQLite reported.
        mode: String,
    },
    /// SQLite refused a generated row.
    #[error("SQLite refused a row of {table}: {source}")]
    Insert {
        /// The table.
        table: &'static str,
        /// Why.
        source: rusqlite::Error,
    },
}

type Result<T, E = GenerateError> = std::result::Result<T, E>;

/// The last trading day of `options` (the first day plus `days - 1`), for "today's sales"
/// queries against a generated store. Saturates to the first day for options [`generate`]
/// refuses.
///
/// ```
/// use pos_tenancy::testkit::legacy::{today, LegacyOptions};
/// let last = today(&LegacyOptions::default());
/// assert_eq!(last.to_string(), "2026-12-31");
/// ```
pub fn today(options: &LegacyOptions) -> NaiveDate {
    options
        .first_day
        .checked_add_days(Days::new(u64::from(options.days.saturating_sub(1))))
        .unwrap_or(options.first_day)
}

/// Writes a new legacy store of about `options.rows` rows to `path`.
///
/// Refuses an existing file ([`GenerateError::Exists`]). Rows are written in one transaction
/// with the journal off (the file is new: on failure it is removed, not repaired); the file is
/// left in the default rollback-journal mode, as the old app left it. Generating 1,000,000 rows
/// takes about 7 s in a release build on two cores (a 340 MiB file).
///
/// ```
/// use pos_tenancy::testkit::legacy::{generate, GenerateError, LegacyOptions};
///
/// let nanos = std::time::SystemTime::now()
///     .duration_since(std::time::UNIX_EPOCH)?
///     .as_nanos();
/// let path = std::env::temp_dir().join(format!("legacy-gen-{}-{nanos}.db", std::process::id()));
/// let options = LegacyOptions { rows: 2_000, seed: 7, ..LegacyOptions::default() };
/// let summary = generate(&path, &options)?;
/// assert_eq!(summary.rows("pending_operations"), Some(0));
/// // A second run never overwrites the file.
/// assert!(matches!(generate(&path, &options), Err(GenerateError::Exists { .. })));
/// std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn generate(path: &Path, options: &LegacyOptions) -> Result<LegacySummary> {
    let span = validate(options)?;
    // create_new is the atomic "refuse to overwrite": SQLite has no exclusive-create flag, and
    // it takes an empty file for an empty database.
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(GenerateError::Exists {
                path: path.to_owned(),
            })
        }
        Err(source) => {
            return Err(GenerateError::Create {
                path: path.to_owned(),
                source,
            })
        }
    }
    let result = write_store(path, options, span);
    if result.is_err() {
        // Best effort: the file is ours and half-written; the error reported is the cause.
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Milliseconds since the epoch of the first day's midnight, and of the midnight after the
/// last day.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: i64,
    end: i64,
}

fn validate(options: &LegacyOptions) -> Result<Span> {
    let bad = |field, reason: String| Err(GenerateError::Options { field, reason });
    if options.rows < MIN_ROWS || options.rows > MAX_ROWS {
        return bad(
            "rows",
            format!("{} is outside {MIN_ROWS}..={MAX_ROWS}", options.rows),
        );
    }
    if options.days == 0 {
        return bad("days", "at least one trading day is needed".into());
    }
    let first = i64::from(options.first_day.to_epoch_days());
    if first < 0 {
        return bad(
            "first_day",
            format!("{} is before 1970-01-01", options.first_day),
        );
    }
    // Due dates and expiries run up to a few years past the last day; stay well inside the
    // four-digit years that keep timestamps fixed-width.
    let last = first + i64::from(options.days) - 1;
    let limit = i64::from(
        NaiveDate::from_ymd_opt(9000, 1, 1)
            .map(|d| d.to_epoch_days())
            .unwrap_or(0),
    );
    if last >= limit {
        return bad(
            "days",
            format!(
                "{} days from {} end after the year 9000",
                options.days, options.first_day
            ),
        );
    }
    Ok(Span {
        start: first * DAY_MS,
        end: (last + 1) * DAY_MS,
    })
}

fn write_store(path: &Path, options: &LegacyOptions, span: Span) -> Result<LegacySummary> {
    let sql = |step: &'static str| move |source| GenerateError::Sqlite { step, source };
    let mut conn = Connection::open(path).map_err(sql("opening the new file"))?;
    // The file is new and removed on failure, so nothing needs a journal or fsync meanwhile.
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -131072;",
    )
    .map_err(sql("configuring the connection"))?;
    let tx = conn
        .transaction()
        .map_err(sql("beginning the transaction"))?;
    tx.execute_batch(LEGACY_SCHEMA)
        .map_err(sql("creating the legacy schema"))?;
    let counts = {
        let writer = Writer::new(&tx)?;
        let mut gen = Gen::new(writer, options, span);
        gen.run()?;
        gen.w.counts
    };
    tx.commit().map_err(sql("committing"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(sql("restoring the rollback journal"))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(GenerateError::JournalMode { mode });
    }
    conn.close().map_err(|(_, source)| GenerateError::Sqlite {
        step: "closing the file",
        source,
    })?;
    let tables: Vec<(String, u64)> = legacy_tables()
        .iter()
        .zip(counts)
        .map(|(t, n)| (t.name.to_owned(), n))
        .collect();
    let total_rows = tables.iter().map(|(_, n)| n).sum();
    Ok(LegacySummary { tables, total_rows })
}
