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

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, Statement, ToSql};
use serde_json::json;
use uuid::Uuid;

use crate::catalog;

/// The schema of the old single-tenant POS: every tenant table of the current schema without
/// `tenant_id`, the `tenants` registry, the freeze triggers and the node tables. Plain rowid
/// tables keyed by `id` (pending_operations by `hlc`), single-column foreign keys, UNIQUE
/// constraints and indexes without `tenant_id` under the current index names.
pub const LEGACY_SCHEMA: &str = include_str!("legacy_schema.sql");

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

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacySummary {
    /// Every table of [`LEGACY_SCHEMA`] in schema order with its row count (pending_operations
    /// is always empty).
    pub tables: Vec<(String, u64)>,
    /// The sum of the counts.
    pub total_rows: u64,
}

impl LegacySummary {
    /// The row count of `table`, if the legacy schema has it.
    pub fn rows(&self, table: &str) -> Option<u64> {
        self.tables
            .iter()
            .find(|(name, _)| name == table)
            .map(|(_, n)| *n)
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

// ---------------------------------------------------------------------------- values

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;
const CURRENCY: &str = "USD";
/// Sales tax on taxable lines, in basis points (8.25 %).
const TAX_BP: i64 = 825;

/// A row id bound as canonical lowercase hyphenated text.
struct Id(Uuid);

impl ToSql for Id {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        Ok(ToSqlOutput::from(
            self.0.hyphenated().encode_lower(&mut buf).to_owned(),
        ))
    }
}

/// A timestamp (milliseconds since the epoch) bound in the crate's text form.
struct Ts(i64);

impl ToSql for Ts {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(ts_text(self.0)))
    }
}

fn oid(id: Option<Uuid>) -> Option<Id> {
    id.map(Id)
}

fn ots(ms: Option<i64>) -> Option<Ts> {
    ms.map(Ts)
}

/// `2026-03-04T10:15:30.123Z`, exactly what [`crate::Timestamp`] prints, for years 0 to 9999,
/// without chrono's general formatter (the generator writes millions of these).
fn ts_text(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let in_day = ms.rem_euclid(DAY_MS);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut s = String::with_capacity(24);
    let mut digits = |v: i64, width: u32, sep: char| {
        for k in (0..width).rev() {
            let d = (v / 10_i64.pow(k)) % 10;
            s.push(char::from(b'0' + d as u8));
        }
        s.push(sep);
    };
    digits(year, 4, '-');
    digits(month, 2, '-');
    digits(day, 2, 'T');
    digits(in_day / HOUR_MS, 2, ':');
    digits(in_day / MINUTE_MS % 60, 2, ':');
    digits(in_day / 1_000 % 60, 2, '.');
    digits(in_day % 1_000, 3, 'Z');
    s
}

/// Rounds `n / d` half away from zero (d > 0), so refunds mirror sales to the cent.
fn div_round(n: i64, d: i64) -> i64 {
    if n >= 0 {
        (n + d / 2) / d
    } else {
        -((-n + d / 2) / d)
    }
}

/// How many of `total` evenly spread events fall on day `d` of `days`.
fn share(total: u64, d: u32, days: u32) -> u64 {
    let at = |k: u32| (u128::from(total) * u128::from(k) / u128::from(days)) as u64;
    at(d + 1) - at(d)
}

// ---------------------------------------------------------------------------- writer

/// The tables in catalog (and schema) order; the discriminant indexes `catalog::TABLES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
enum T {
    Users,
    Devices,
    Sessions,
    AuditLog,
    ProductCategories,
    Products,
    FitmentData,
    Inventory,
    PriceLevels,
    Customers,
    CustomerVehicles,
    Sales,
    SaleLines,
    GiftCards,
    SalePayments,
    GiftCardTransactions,
    Layaways,
    LayawayPayments,
    WorkOrders,
    WorkOrderLines,
    CommissionRules,
    Commissions,
    LoyaltyAccounts,
    LoyaltyTransactions,
    CreditAccounts,
    CreditTransactions,
    Promotions,
    PromotionUsage,
    InventoryTransactions,
    SyncLog,
    SyncConflicts,
    // Never written (the old app's outbox is empty when it is retired); here for the order.
    #[allow(dead_code)]
    PendingOperations,
    BackupDestinations,
    BackupSettings,
    Backups,
    RestoreJobs,
}

const TABLE_COUNT: usize = T::RestoreJobs as usize + 1;

/// The tables the single-tenant app had: the catalog's first ones. Tables added since (say,
/// `sale_reversals`) come after them in the catalog, and adoption creates them empty.
fn legacy_tables() -> &'static [&'static catalog::TableDef] {
    &catalog::TABLES[..TABLE_COUNT]
}

/// Columns the catalog gained after the single-tenant app was retired, as (table, column): its
/// files never had them, so [`LEGACY_SCHEMA`] leaves them out and the generator writes none
/// (adoption fills them with NULL; each is nullable). Added by migrations after V1.
const ADDED_SINCE: &[(&str, &str)] = &[
    // V7: the card terminal's reference of a layaway payment.
    ("layaway_payments", "reference"),
    // V8: the sync engine's transaction, base stamp and refusal of an outbox operation.
    ("pending_operations", "txn_id"),
    ("pending_operations", "base"),
    ("pending_operations", "set_aside"),
];

/// The catalog's columns of `table` that the legacy table has, in catalog order (without `id`).
fn legacy_columns(table: &catalog::TableDef) -> impl Iterator<Item = &'static catalog::ColumnDef> {
    let name = table.name;
    table
        .columns
        .iter()
        .filter(move |c| !ADDED_SINCE.contains(&(name, c.name)))
}

/// One prepared INSERT per table, columns in catalog order (`id`, then the catalog's columns the
/// legacy table has), and the rows written so far.
struct Writer<'c> {
    stmts: Vec<Statement<'c>>,
    counts: [u64; TABLE_COUNT],
}

impl<'c> Writer<'c> {
    fn new(conn: &'c Connection) -> Result<Self> {
        let mut stmts = Vec::with_capacity(TABLE_COUNT);
        for table in legacy_tables() {
            // Identifiers from the crate's own catalog, never from input.
            let columns: Vec<&str> = std::iter::once("id")
                .chain(legacy_columns(table).map(|c| c.name))
                .collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                table.name,
                columns.join(", "),
                vec!["?"; columns.len()].join(", ")
            );
            let stmt = conn.prepare(&sql).map_err(|source| GenerateError::Insert {
                table: table.name,
                source,
            })?;
            stmts.push(stmt);
        }
        Ok(Self {
            stmts,
            counts: [0; TABLE_COUNT],
        })
    }

    fn put(&mut self, table: T, values: &[&dyn ToSql]) -> Result<()> {
        let i = table as usize;
        self.stmts[i]
            .execute(values)
            .map_err(|source| GenerateError::Insert {
                table: legacy_tables()[i].name,
                source,
            })?;
        self.counts[i] += 1;
        Ok(())
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

// ---------------------------------------------------------------------------- reference data

struct Category {
    name: &'static str,
    parent: Option<usize>,
    sku_prefix: &'static str,
    /// Product names, and whether the product is sold by the litre.
    items: &'static [(&'static str, bool)],
}

const SERVICE_CATEGORY: usize = 7;
const BRAKES: usize = 1;

const CATEGORIES: &[Category] = &[
    Category {
        name: "Engine",
        parent: None,
        sku_prefix: "ENG",
        items: &[
            ("Water pump", false),
            ("Thermostat", false),
            ("Gasket set", false),
        ],
    },
    Category {
        name: "Brakes",
        parent: None,
        sku_prefix: "BRK",
        items: &[("Brake caliper", false), ("Brake fluid DOT 4", true)],
    },
    Category {
        name: "Suspension & Steering",
        parent: None,
        sku_prefix: "SUS",
        items: &[("Control arm", false), ("Tie rod end", false)],
    },
    Category {
        name: "Electrical",
        parent: None,
        sku_prefix: "ELE",
        items: &[("Alternator", false), ("Starter motor", false)],
    },
    Category {
        name: "Filters",
        parent: None,
        sku_prefix: "FIL",
        items: &[("Fuel filter", false)],
    },
    Category {
        name: "Fluids & Chemicals",
        parent: None,
        sku_prefix: "FLU",
        items: &[("Coolant G12", true), ("Windscreen washer fluid", true)],
    },
    Category {
        name: "Accessories",
        parent: None,
        sku_prefix: "ACC",
        items: &[
            ("Floor mat set", false),
            ("Warning triangle", false),
            ("Phone holder", false),
        ],
    },
    Category {
        name: "Service & Labour",
        parent: None,
        sku_prefix: "SVC",
        items: &[
            ("Labour (per hour)", false),
            ("Oil change service", false),
            ("Brake inspection", false),
            ("Wheel alignment", false),
            ("Diagnose / Fehlerauslese", false),
            ("Tyre fitting", false),
        ],
    },
    Category {
        name: "Oil Filters",
        parent: Some(4),
        sku_prefix: "OFL",
        items: &[("Oil filter", false), ("Ölfilter Premium", false)],
    },
    Category {
        name: "Air Filters",
        parent: Some(4),
        sku_prefix: "AFL",
        items: &[("Air filter", false), ("Cabin air filter", false)],
    },
    Category {
        name: "Brake Pads",
        parent: Some(BRAKES),
        sku_prefix: "BPD",
        items: &[
            ("Brake pad set front", false),
            ("Brake pad set rear", false),
        ],
    },
    Category {
        name: "Brake Discs",
        parent: Some(BRAKES),
        sku_prefix: "BDS",
        items: &[("Brake disc vented", false), ("Brake disc solid", false)],
    },
    Category {
        name: "Batteries",
        parent: Some(3),
        sku_prefix: "BAT",
        items: &[("Battery 12V 60Ah", false), ("Battery 12V 74Ah AGM", false)],
    },
    Category {
        name: "Lighting",
        parent: Some(3),
        sku_prefix: "LGT",
        items: &[
            ("Headlight bulb H7", false),
            ("Tail light bulb P21W", false),
            ("LED bulb H4", false),
        ],
    },
    Category {
        name: "Motoröl & Schmierstoffe",
        parent: Some(5),
        sku_prefix: "OIL",
        items: &[
            ("Engine oil 5W-30", true),
            ("Engine oil 10W-40", true),
            ("Getriebeöl 75W-90", true),
        ],
    },
    Category {
        name: "Wiper Blades",
        parent: Some(6),
        sku_prefix: "WIP",
        items: &[("Wiper blade 22\"", false), ("Wiper blade set", false)],
    },
    Category {
        name: "Zündkerzen",
        parent: Some(0),
        sku_prefix: "ZND",
        items: &[("Spark plug iridium", false), ("Zündkerze Standard", false)],
    },
    Category {
        name: "タイヤ用品",
        parent: Some(6),
        sku_prefix: "TYR",
        items: &[("Tyre valve set", false), ("タイヤ修理キット", false)],
    },
    Category {
        name: "Belts & Hoses",
        parent: Some(0),
        sku_prefix: "BLT",
        items: &[
            ("Timing belt kit", false),
            ("Serpentine belt", false),
            ("Radiator hose", false),
        ],
    },
    Category {
        name: "Shocks & Struts",
        parent: Some(2),
        sku_prefix: "SHK",
        items: &[("Shock absorber front", false), ("Strut mount", false)],
    },
];

const BRANDS: &[&str] = &[
    "Bosch",
    "Mann-Filter",
    "Brembo",
    "Febi Bilstein",
    "Müller Teile",
    "Ñandú Repuestos",
    "東京パーツ",
    "Valeo",
    "NGK",
    "Castrol",
    "Liqui Moly",
    "Gates",
    "Monroe",
    "Osram",
];

/// Display name and an ASCII form for e-mail addresses.
const FIRST_NAMES: &[(&str, &str)] = &[
    ("Ana", "ana"),
    ("José", "jose"),
    ("Jürgen", "juergen"),
    ("Zoë", "zoe"),
    ("François", "francois"),
    ("Łukasz", "lukasz"),
    ("Søren", "soren"),
    ("Chloé", "chloe"),
    ("Mohammed", "mohammed"),
    ("Emma", "emma"),
    ("Liam", "liam"),
    ("Olivia", "olivia"),
    ("Noah", "noah"),
    ("太郎", "taro"),
    ("花子", "hanako"),
    ("Ñuño", "nuno"),
    ("Aarav", "aarav"),
    ("Fatima", "fatima"),
    ("Mia", "mia"),
    ("Lucas", "lucas"),
];

const LAST_NAMES: &[(&str, &str)] = &[
    ("Díaz", "diaz"),
    ("Müller", "mueller"),
    ("Schröder", "schroeder"),
    ("García", "garcia"),
    ("Núñez", "nunez"),
    ("Smith", "smith"),
    ("Johnson", "johnson"),
    ("Brown", "brown"),
    ("O'Connor", "oconnor"),
    ("van der Berg", "vanderberg"),
    ("Kowalski", "kowalski"),
    ("山田", "yamada"),
    ("佐藤", "sato"),
    ("Ødegaard", "odegaard"),
    ("Nguyễn", "nguyen"),
    ("Rossi", "rossi"),
    ("Dubois", "dubois"),
    ("Wilson", "wilson"),
    ("Fischer", "fischer"),
    ("Martínez", "martinez"),
];

const COMPANIES: &[&str] = &[
    "Ñandú Repuestos",
    "東京オートサービス",
    "Müller & Söhne KG",
    "Fleet Solutions Ltd",
    "Joe's Garage",
    "Taxi Zentrale Nord",
    "Green Valley Farms",
    "Städtische Werke",
];

const CUSTOMER_NOTES: &[&str] = &[
    "Prefers OEM parts",
    "Bitte vorher anrufen",
    "Fleet account – invoice monthly",
    "VIP 🚗",
    "Paga siempre en efectivo",
];

/// Make, world manufacturer identifier (VIN prefix) and models.
const MAKES: &[(&str, &str, &[&str])] = &[
    ("Toyota", "JT2", &["Corolla", "Hilux", "Yaris", "RAV4"]),
    ("Volkswagen", "WVW", &["Golf", "Passat", "Polo"]),
    ("Ford", "1FT", &["F-150", "Focus", "Transit"]),
    ("Škoda", "TMB", &["Octavia", "Fabia"]),
    ("Citroën", "VF7", &["C3", "Berlingo"]),
    ("BMW", "WBA", &["3er", "X5"]),
    ("Honda", "JHM", &["Civic", "Accord"]),
    ("Chevrolet", "1GC", &["Silverado", "Malibu"]),
    ("Nissan", "JN1", &["Navara", "Micra"]),
    ("Mercedes-Benz", "WDB", &["Sprinter", "C 200"]),
];

const ENGINES: &[&str] = &[
    "1.6 16V",
    "2.0 TDI",
    "1.5 VTEC",
    "5.0 V8",
    "2.4 D-4D",
    "1.2 PureTech",
    "3.0 i6",
    "Elektro",
];

/// VIN characters (no I, O or Q).
const VIN_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPRSTUVWXYZ";

const WORK_DESCRIPTIONS: &[&str] = &[
    "Brake service front axle",
    "Oil and filter change",
    "Inspektion nach Herstellervorgabe",
    "Replace timing belt",
    "Check engine light – diagnose",
    "Cambio de amortiguadores",
    "Battery replacement",
];

struct PromotionDef {
    code: Option<&'static str>,
    name: &'static str,
    percent: bool,
    /// Parts per million off, or minor units off.
    value: i64,
    category: Option<usize>,
    active: bool,
}

/// The store's standing promotions; larger stores add flash sales after these.
const PROMOTIONS: &[PromotionDef] = &[
    PromotionDef {
        code: Some("SPRING10"),
        name: "Brake sale 10 %",
        percent: true,
        value: 100_000,
        category: Some(BRAKES),
        active: true,
    },
    PromotionDef {
        code: None,
        name: "Ölwechsel-Aktion",
        percent: false,
        value: 500,
        category: Some(14),
        active: true,
    },
    PromotionDef {
        code: Some("WELCOME5"),
        name: "Welcome – $5 off",
        percent: false,
        value: 500,
        category: None,
        active: true,
    },
    PromotionDef {
        code: None,
        name: "Winter tyres −15 %",
        percent: true,
        value: 150_000,
        category: Some(17),
        active: true,
    },
    PromotionDef {
        code: Some("WIPERS20"),
        name: "Wipers 20 % off",
        percent: true,
        value: 200_000,
        category: Some(15),
        active: true,
    },
    PromotionDef {
        code: Some("OLD2019"),
        name: "Clearance 2019",
        percent: true,
        value: 300_000,
        category: None,
        active: false,
    },
];

struct CommissionRuleDef {
    name: &'static str,
    /// Index into the staff list.
    user: Option<usize>,
    category: Option<usize>,
    rate_ppm: i64,
    active: bool,
}

/// Index 0 is the standard rule, 1 the brakes bonus, 2 the senior's own rule.
const COMMISSION_RULES: &[CommissionRuleDef] = &[
    CommissionRuleDef {
        name: "Standard 2 %",
        user: None,
        category: None,
        rate_ppm: 20_000,
        active: true,
    },
    CommissionRuleDef {
        name: "Brakes bonus 3 %",
        user: None,
        category: Some(BRAKES),
        rate_ppm: 30_000,
        active: true,
    },
    CommissionRuleDef {
        name: "Senior – Jürgen Müller",
        user: Some(1),
        category: None,
        rate_ppm: 25_000,
        active: true,
    },
    CommissionRuleDef {
        name: "Old flat rate 1 %",
        user: None,
        category: None,
        rate_ppm: 10_000,
        active: false,
    },
];

const ADJUST_REASONS: &[&str] = &[
    "damaged in store",
    "Schwund / Inventurdifferenz",
    "found during stocktake",
    "supplier short delivery",
];

// ---------------------------------------------------------------------------- the plan

/// Rows expected per product (itself, stock rows, opening counts, fitment), per customer
/// (itself, vehicles, loyalty and credit accounts with their opening rows) and per sale (its
/// lines, payments, stock movements, ledgers, work orders, layaways and audit entry); the
/// audit trail absorbs the difference so the total lands on target.
const ROWS_PER_PRODUCT: f64 = 4.35;
const ROWS_PER_CUSTOMER: f64 = 2.5;
const ROWS_PER_SALE: f64 = 9.05;

/// How many of each thing to make for a row target.
#[derive(Debug, Clone)]
struct Plan {
    rows: u64,
    users: usize,
    devices: usize,
    products: usize,
    customers: usize,
    gift_cards: usize,
    promotions: usize,
    sessions: u64,
    sync_runs: u64,
    backups: u64,
    restores: usize,
    conflicts: usize,
    sales: usize,
    layaways: usize,
    work_orders: usize,
    refunds: usize,
    voids: usize,
    promo_sales: usize,
    receipts: u64,
    adjustments: u64,
    transfers: u64,
}

impl Plan {
    fn new(rows: u64, days: u32) -> Self {
        let r = rows as f64;
        let per = |f: f64, min: usize| ((r * f) as usize).max(min);
        let users = 5 + (rows / 100_000).min(15) as usize;
        let devices = 4 + (rows / 250_000).min(4) as usize;
        let products = per(0.02, 20);
        let customers = per(0.015, 10);
        let gift_cards = per(0.001, 2);
        let promotions = 6 + (rows / 250_000).min(10) as usize;
        let sessions = (rows * 3 / 1_000).max(2);
        let sync_runs = (rows * 3 / 1_000).max(2);
        let backups = (rows / 2_000).clamp(1, u64::from(days));
        let restores = ((backups / 60) as usize).max(1);
        let conflicts = 4 + (rows / 200_000) as usize;
        let fixed = users
            + devices
            + 4 // price levels
            + CATEGORIES.len()
            + promotions
            + 4 // commission rules
            + 4 // backup destinations and settings
            + restores
            + conflicts;
        let master = fixed as f64
            + products as f64 * ROWS_PER_PRODUCT
            + customers as f64 * ROWS_PER_CUSTOMER
            + gift_cards as f64 * 2.0
            + (sessions + sync_runs + backups) as f64;
        // At least 40 sales, so each special kind below fits in its eighth.
        let sales = (((r - master) / ROWS_PER_SALE) as usize).max(40);
        let cap = sales / 8;
        Self {
            rows,
            users,
            devices,
            products,
            customers,
            gift_cards,
            promotions,
            sessions,
            sync_runs,
            backups,
            restores,
            conflicts,
            sales,
            layaways: ((rows / 1_000) as usize).clamp(1, cap),
            work_orders: ((rows / 300) as usize).clamp(2, cap),
            refunds: (sales / 100).clamp(1, cap),
            voids: (sales / 60).clamp(1, cap),
            promo_sales: (sales / 20).max(2),
            receipts: (sales / 5) as u64,
            adjustments: (sales / 60).max(1) as u64,
            transfers: (sales / 120) as u64,
        }
    }
}

// ---------------------------------------------------------------------------- the generator

#[derive(Clone, Copy, PartialEq, Eq)]
enum ProductKind {
    Stocked,
    NonStocked,
    Service,
}

struct UserRec {
    id: Uuid,
    /// Earns commission on sales.
    commission: bool,
}

struct ProductRec {
    id: Uuid,
    name: String,
    kind: ProductKind,
    category: usize,
    price: i64,
    cost: i64,
    taxable: bool,
    fluid: bool,
    warehouse: bool,
}

struct CustomerRec {
    id: Uuid,
    created: i64,
    discount_ppm: i64,
    tax_exempt: bool,
    first_vehicle: usize,
    vehicles: usize,
    loyalty: Option<usize>,
    credit: Option<usize>,
}

struct VehicleRec {
    id: Uuid,
    mileage: Option<i64>,
}

struct GiftRec {
    id: Uuid,
    issued: i64,
    balance: i64,
}

struct LoyaltyRec {
    id: Uuid,
    points: i64,
}

struct CreditRec {
    id: Uuid,
    limit: i64,
    owed: i64,
    active: bool,
}

struct PromoRec {
    id: Uuid,
    percent: bool,
    value: i64,
    starts: i64,
    ends: Option<i64>,
}

struct RuleRec {
    id: Uuid,
    rate_ppm: i64,
}

struct SaleRec {
    id: Uuid,
    t: i64,
    user: usize,
}

struct BackupRec {
    id: Uuid,
    created: i64,
    ok: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SaleKind {
    Normal,
    Layaway,
    WorkOrder,
    Refund,
    Void,
}

#[derive(Clone, Copy)]
struct Line {
    product: Option<usize>,
    service: bool,
    qty: i64,
    unit: i64,
    gross: i64,
    discount: i64,
    tax: i64,
    total: i64,
}

struct Gen<'c> {
    rng: ChaCha8Rng,
    w: Writer<'c>,
    plan: Plan,
    span: Span,
    days: u32,
    users: Vec<UserRec>,
    /// Devices that ring up sales (tills and tablets).
    tills: Vec<Uuid>,
    devices: Vec<Uuid>,
    categories: Vec<Uuid>,
    price_levels: Vec<(Uuid, i64)>,
    products: Vec<ProductRec>,
    /// Parts in order of popularity (a random permutation), for skewed picks.
    popular: Vec<usize>,
    services: Vec<usize>,
    stocked: Vec<usize>,
    /// Stocked parts also kept in the warehouse.
    stored: Vec<usize>,
    customers: Vec<CustomerRec>,
    customer_created: Vec<i64>,
    /// Customers with a vehicle, in creation order.
    with_vehicle: Vec<usize>,
    vehicles: Vec<VehicleRec>,
    loyalty: Vec<LoyaltyRec>,
    credit: Vec<CreditRec>,
    gifts: Vec<GiftRec>,
    gift_issued: Vec<i64>,
    promos: Vec<PromoRec>,
    rules: Vec<RuleRec>,
    sales: Vec<SaleRec>,
    sessions: Vec<Uuid>,
    destinations: Vec<Uuid>,
    settings_id: Uuid,
    backups: Vec<BackupRec>,
    lines: Vec<Line>,
    next_layaway: usize,
    next_work_order: usize,
    next_vin: u64,
    sync_cursor: i64,
}

impl<'c> Gen<'c> {
    fn new(w: Writer<'c>, options: &LegacyOptions, span: Span) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            w,
            plan: Plan::new(options.rows, options.days),
            span,
            days: options.days,
            users: Vec::new(),
            tills: Vec::new(),
            devices: Vec::new(),
            categories: Vec::new(),
            price_levels: Vec::new(),
            products: Vec::new(),
            popular: Vec::new(),
            services: Vec::new(),
            stocked: Vec::new(),
            stored: Vec::new(),
            customers: Vec::new(),
            customer_created: Vec::new(),
            with_vehicle: Vec::new(),
            vehicles: Vec::new(),
            loyalty: Vec::new(),
            credit: Vec::new(),
            gifts: Vec::new(),
            gift_issued: Vec::new(),
            promos: Vec::new(),
            rules: Vec::new(),
            sales: Vec::new(),
            sessions: Vec::new(),
            destinations: Vec::new(),
            settings_id: Uuid::nil(),
            backups: Vec::new(),
            lines: Vec::new(),
            next_layaway: 0,
            next_work_order: 0,
            next_vin: 0,
            sync_cursor: 0,
        }
    }

    fn run(&mut self) -> Result<()> {
        self.staff_and_devices()?;
        self.catalogue()?;
        self.customer_base()?;
        self.promotions_and_rules()?;
        self.gift_cards()?;
        self.backup_setup()?;
        self.trading()?;
        self.open_work_orders()?;
        self.restores_and_conflicts()?;
        self.audit_trail()
    }

    // ------------------------------------------------------------------ randomness

    /// A UUIDv7 for a row made at `ms`, its random bits from the seeded stream.
    fn id(&mut self, ms: i64) -> Uuid {
        let mut bytes = [0u8; 10];
        self.rng.fill_bytes(&mut bytes);
        uuid::Builder::from_unix_timestamp_millis(u64::try_from(ms).unwrap_or(0), &bytes)
            .into_uuid()
    }

    /// True with probability `p` percent.
    fn pct(&mut self, p: u32) -> bool {
        self.rng.random_range(0..100) < p
    }

    fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            0
        } else {
            self.rng.random_range(0..n)
        }
    }

    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            lo
        } else {
            self.rng.random_range(lo..hi)
        }
    }

    fn any_user(&mut self) -> Uuid {
        let k = self.below(self.users.len());
        self.users[k].id
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    fn hex(&mut self, len: usize) -> String {
        const HEX: &[u8] = b"0123456789abcdef";
        (0..len)
            .map(|_| char::from(HEX[self.rng.random_range(0..16)]))
            .collect()
    }

    fn day_start(&self, d: u32) -> i64 {
        self.span.start + i64::from(d) * DAY_MS
    }

    /// A moment during opening hours of a random day at or after `from`.
    fn later(&mut self, from: i64) -> i64 {
        let t = self.between(from + MINUTE_MS, self.span.end - HOUR_MS);
        t.max(from + 1)
    }

    fn customers_before(&self, t: i64) -> usize {
        self.customer_created.partition_point(|&c| c < t)
    }

    // ------------------------------------------------------------------ master data

    fn staff_and_devices(&mut self) -> Result<()> {
        let t0 = self.span.start + 4 * HOUR_MS;
        let fixed: [(&str, &str, &str, bool, bool); 5] = [
            ("owner", "María José Núñez", "admin", true, false),
            ("jmueller", "Jürgen Müller", "manager", true, true),
            ("akowalski", "Anna Kowalski", "cashier", true, true),
            ("tsato", "佐藤 健", "cashier", true, true),
            ("loconnor", "Liam O'Connor", "cashier", false, false),
        ];
        for i in 0..self.plan.users {
            let t = t0 + i as i64 * 1_000;
            let id = self.id(t);
            let (username, display, role, active, commission) = match fixed.get(i) {
                Some(&(u, d, r, a, c)) => (u.to_owned(), d.to_owned(), r, a, c),
                None => {
                    let (first, _) = self.pick(FIRST_NAMES);
                    let (last, _) = self.pick(LAST_NAMES);
                    let role = if i % 4 == 0 { "manager" } else { "cashier" };
                    let active = self.pct(85);
                    let commission = self.pct(50);
                    (
                        format!("staff{i}"),
                        format!("{first} {last}"),
                        role,
                        active,
                        commission,
                    )
                }
            };
            let email = (i != 4 && self.pct(85)).then(|| format!("{username}@store.example"));
            let pin = (i != 4).then(|| format!("sha256${}", self.hex(64)));
            let updated = if self.pct(30) { self.later(t) } else { t };
            self.w.put(
                T::Users,
                &[
                    &Id(id),
                    &username,
                    &display,
                    &email,
                    &role,
                    &pin,
                    &active,
                    &Ts(t),
                    &Ts(updated),
                ],
            )?;
            self.users.push(UserRec { id, commission });
        }
        for i in 0..self.plan.devices {
            let t = t0 + 30 * MINUTE_MS + i as i64 * 1_000;
            let id = self.id(t);
            let (name, kind, location, active) = match i {
                0 => ("Till 1".to_owned(), "terminal", Some("Front counter"), true),
                1 => ("Till 2".to_owned(), "terminal", Some("Front counter"), true),
                2 => ("Back office PC".to_owned(), "back_office", None, true),
                3 => ("Old till".to_owned(), "terminal", Some("Werkstatt"), false),
                _ if i % 2 == 0 => (format!("Till {i}"), "terminal", Some("Annex"), true),
                _ => (format!("Tablet {i}"), "mobile", None, true),
            };
            let last_seen = if active {
                Some(self.between(self.span.end - DAY_MS, self.span.end))
            } else {
                None
            };
            self.w.put(
                T::Devices,
                &[
                    &Id(id),
                    &name,
                    &kind,
                    &location,
                    &Ts(t),
                    &ots(last_seen),
                    &active,
                ],
            )?;
            self.devices.push(id);
            if kind != "back_office" && active {
                self.tills.push(id);
            }
        }
        let levels = [
            ("Retail", 0),
            ("Trade", 100_000),
            ("Fleet", 150_000),
            ("Mechanic – Stammkunde", 200_000),
        ];
        for (i, (name, ppm)) in levels.into_iter().enumerate() {
            let t = t0 + 45 * MINUTE_MS + i as i64 * 1_000;
            let id = self.id(t);
            self.w
                .put(T::PriceLevels, &[&Id(id), &name, &ppm, &Ts(t)])?;
            self.price_levels.push((id, ppm));
        }
        Ok(())
    }

    fn catalogue(&mut self) -> Result<()> {
        let t0 = self.span.start + 4 * HOUR_MS + 50 * MINUTE_MS;
        for (i, c) in CATEGORIES.iter().enumerate() {
            let t = t0 + i as i64 * 1_000;
            let id = self.id(t);
            let parent = c.parent.map(|p| Id(self.categories[p]));
            self.w
                .put(T::ProductCategories, &[&Id(id), &c.name, &parent, &Ts(t)])?;
            self.categories.push(id);
        }
        let n = self.plan.products;
        let n_services = (n * 3 / 100).max(3);
        let with_image = (n / 200).max(3);
        let part_categories: Vec<usize> = (0..CATEGORIES.len())
            .filter(|&c| c != SERVICE_CATEGORY)
            .collect();
        let t0 = self.span.start + 5 * HOUR_MS;
        for i in 0..n {
            let created = t0 + i as i64 * (2 * HOUR_MS) / n as i64;
            let id = self.id(created);
            let service = i < n_services;
            let category = if service {
                SERVICE_CATEGORY
            } else {
                self.pick(&part_categories)
            };
            let cat = &CATEGORIES[category];
            let (base, fluid) = if service {
                cat.items[i % cat.items.len()]
            } else {
                self.pick(cat.items)
            };
            let kind = if service {
                ProductKind::Service
            } else if self.pct(7) {
                ProductKind::NonStocked
            } else {
                ProductKind::Stocked
            };
            let sku = format!("{}-{:06}", cat.sku_prefix, i + 1);
            let name = if service {
                base.to_owned()
            } else {
                format!("{base} {}", self.between(100, 1000))
            };
            let barcode = (!service && self.pct(85)).then(|| ean13(400_000_000_000 + i as u64));
            let description = self.pct(60).then(|| format!("{name} – {}", cat.name));
            let brand = (!service && self.pct(90)).then(|| self.pick(BRANDS));
            let category_id = (!self.pct(5) || service).then(|| self.categories[category]);
            let price = if service {
                self.between(3_000, 15_000)
            } else if fluid {
                self.between(600, 2_500)
            } else {
                let u: f64 = self.rng.random();
                (299.0 * (u * 5.0).exp()) as i64
            };
            let cost = price * self.between(45, 75) / 100;
            let taxable = !service || self.pct(50);
            let reorder = if kind == ProductKind::Stocked {
                1_000 * self.between(0, 6)
            } else {
                0
            };
            let image = (i >= n_services && i < n_services + with_image).then(|| {
                let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
                let len = self.between(100, 600) as usize;
                png.extend((0..len).map(|_| self.rng.random::<u8>()));
                png
            });
            let active = service || self.pct(95);
            let updated = if self.pct(30) {
                self.later(created)
            } else {
                created
            };
            let kind_text = match kind {
                ProductKind::Stocked => "stocked",
                ProductKind::NonStocked => "non_stocked",
                ProductKind::Service => "service",
            };
            self.w.put(
                T::Products,
                &[
                    &Id(id),
                    &sku,
                    &barcode,
                    &name,
                    &description,
                    &brand,
                    &oid(category_id),
                    &kind_text,
                    &price,
                    &cost,
                    &CURRENCY,
                    &taxable,
                    &reorder,
                    &image,
                    &active,
                    &Ts(created),
                    &Ts(updated),
                ],
            )?;
            let warehouse = kind == ProductKind::Stocked && self.pct(10);
            self.products.push(ProductRec {
                id,
                name,
                kind,
                category,
                price,
                cost,
                taxable,
                fluid,
                warehouse,
            });
            match kind {
                ProductKind::Service => self.services.push(i),
                ProductKind::Stocked => {
                    self.stocked.push(i);
                    self.popular.push(i);
                    if warehouse {
                        self.stored.push(i);
                    }
                }
                ProductKind::NonStocked => self.popular.push(i),
            }
        }
        self.popular.shuffle(&mut self.rng);
        // Stock rows, opening counts and fitment of stocked parts.
        let admin = self.users[0].id;
        let count_at = self.span.start + 6 * HOUR_MS;
        for k in 0..self.stocked.len() {
            let p = self.stocked[k];
            let locations: &[&str] = if self.products[p].warehouse {
                &["main", "warehouse"]
            } else {
                &["main"]
            };
            for &location in locations {
                let t = count_at + self.between(0, HOUR_MS);
                let id = self.id(t);
                let bin = (location == "main" && self.pct(80)).then(|| {
                    format!(
                        "{}-{:02}-{}",
                        char::from(b'A' + self.rng.random_range(0..8u8)),
                        self.between(1, 40),
                        self.between(1, 6)
                    )
                });
                let reorder = 1_000 * self.between(0, 6);
                let reorder_qty = 1_000 * self.between(0, 20);
                self.w.put(
                    T::Inventory,
                    &[
                        &Id(id),
                        &Id(self.products[p].id),
                        &location,
                        &bin,
                        &reorder,
                        &reorder_qty,
                        &Ts(t),
                    ],
                )?;
                let qty = if self.products[p].fluid {
                    500 * self.between(40, 400)
                } else {
                    1_000 * self.between(2, 40)
                };
                let tx = self.id(t + 1);
                self.w.put(
                    T::InventoryTransactions,
                    &[
                        &Id(tx),
                        &Id(self.products[p].id),
                        &location,
                        &"count",
                        &qty,
                        &Some(self.products[p].cost),
                        &Some("opening stock count"),
                        &None::<Id>,
                        &Some(Id(admin)),
                        &Ts(t + 1),
                    ],
                )?;
            }
            let fits = [0, 1, 1, 2, 2, 3][self.below(6)];
            for _ in 0..fits {
                let t = self.span.start + 7 * HOUR_MS + self.between(0, HOUR_MS);
                let id = self.id(t);
                let (make, _, models) = self.pick(MAKES);
                let model = self.pick(models);
                let from = self.between(1975, 2023);
                let to = (from + self.between(0, 9)).min(2026);
                let engine = self.pct(60).then(|| self.pick(ENGINES));
                let notes = self.pct(15).then(|| {
                    self.pick(&["Except AWD", "Nur mit Sportfahrwerk", "Solo motor diésel"])
                });
                self.w.put(
                    T::FitmentData,
                    &[
                        &Id(id),
                        &Id(self.products[p].id),
                        &make,
                        &model,
                        &from,
                        &to,
                        &engine,
                        &notes,
                    ],
                )?;
            }
        }
        Ok(())
    }

    fn customer_base(&mut self) -> Result<()> {
        let n = self.plan.customers;
        // Half the customers came with the store (imported on day one), the rest sign up
        // over the period; creation order is index order.
        let imported = n.div_ceil(2);
        let import_at = self.span.start + 6 * HOUR_MS;
        let signup_from = self.span.start + 9 * HOUR_MS;
        let signup_span = (self.span.end - 2 * HOUR_MS - signup_from).max(1);
        for i in 0..n {
            let created = if i < imported {
                import_at + i as i64 * HOUR_MS / imported as i64
            } else {
                signup_from + (i - imported) as i64 * signup_span / (n - imported) as i64
            };
            let id = self.id(created);
            let (first, first_ascii) = self.pick(FIRST_NAMES);
            let (last, last_ascii) = self.pick(LAST_NAMES);
            let code = format!("C-{:06}", i + 1);
            // The first customer is a trade account with everything, so small stores
            // still exercise every table.
            let anchor = i == 0;
            let company = if anchor {
                Some(COMPANIES[0])
            } else {
                self.pct(15).then(|| self.pick(COMPANIES))
            };
            let email = (anchor || self.pct(70))
                .then(|| format!("{first_ascii}.{last_ascii}{}@example.com", i + 1));
            let phone = self.pct(80).then(|| {
                format!(
                    "+1-555-{:03}-{:04}",
                    self.between(100, 1000),
                    self.between(0, 10_000)
                )
            });
            let level = (anchor || self.pct(25)).then(|| {
                let k = self.below(self.price_levels.len());
                self.price_levels[k]
            });
            let tax_exempt = self.pct(3);
            let notes = self.pct(10).then(|| self.pick(CUSTOMER_NOTES));
            let updated = if self.pct(20) {
                self.later(created)
            } else {
                created
            };
            self.w.put(
                T::Customers,
                &[
                    &Id(id),
                    &code,
                    &first,
                    &last,
                    &company,
                    &email,
                    &phone,
                    &oid(level.map(|(l, _)| l)),
                    &tax_exempt,
                    &notes,
                    &Ts(created),
                    &Ts(updated),
                ],
            )?;
            let vehicles = if anchor {
                2
            } else {
                [0, 0, 0, 1, 1, 1, 1, 1, 2, 2][self.below(10)]
            };
            let first_vehicle = self.vehicles.len();
            for v in 0..vehicles {
                self.vehicle(id, created + 1_000 * (v as i64 + 1))?;
            }
            if vehicles > 0 {
                self.with_vehicle.push(i);
            }
            let loyalty = if anchor || self.pct(25) {
                let t = created + 5_000;
                let acct = self.id(t);
                let number = format!("L-{:07}", self.loyalty.len() + 1);
                self.w
                    .put(T::LoyaltyAccounts, &[&Id(acct), &Id(id), &number, &Ts(t)])?;
                // A sign-up bonus: every account starts with a ledger row.
                let tx = self.id(t + 1);
                self.w.put(
                    T::LoyaltyTransactions,
                    &[
                        &Id(tx),
                        &Id(acct),
                        &"adjust",
                        &100_i64,
                        &None::<Id>,
                        &Ts(t + 1),
                    ],
                )?;
                self.loyalty.push(LoyaltyRec {
                    id: acct,
                    points: 100,
                });
                Some(self.loyalty.len() - 1)
            } else {
                None
            };
            let credit = if anchor || (company.is_some() && self.pct(50)) || self.pct(2) {
                let t = created + 6_000;
                let acct = self.id(t);
                let limit = 10_000 * self.between(5, 50);
                let active = anchor || self.pct(95);
                self.w.put(
                    T::CreditAccounts,
                    &[&Id(acct), &Id(id), &limit, &CURRENCY, &active, &Ts(t)],
                )?;
                let mut owed = 0;
                if anchor || self.pct(30) {
                    // A balance carried over from the paper ledger.
                    owed = 100 * self.between(10, 500);
                    let tx = self.id(t + 1);
                    self.w.put(
                        T::CreditTransactions,
                        &[
                            &Id(tx),
                            &Id(acct),
                            &"adjust",
                            &owed,
                            &None::<Id>,
                            &Some(Id(self.users[0].id)),
                            &Ts(t + 1),
                        ],
                    )?;
                }
                self.credit.push(CreditRec {
                    id: acct,
                    limit,
                    owed,
                    active,
                });
                Some(self.credit.len() - 1)
            } else {
                None
            };
            self.customers.push(CustomerRec {
                id,
                created,
                discount_ppm: level.map_or(0, |(_, ppm)| ppm),
                tax_exempt,
                first_vehicle,
                vehicles,
                loyalty,
                credit,
            });
            self.customer_created.push(created);
        }
        Ok(())
    }

    fn vehicle(&mut self, customer: Uuid, t: i64) -> Result<()> {
        let id = self.id(t);
        let (make, wmi, models) = self.pick(MAKES);
        let model = self.pick(models);
        let year = if self.pct(90) {
            self.between(1995, 2027)
        } else {
            self.between(1965, 1995)
        };
        let vin = self.pct(85).then(|| {
            // Unique by construction: a serial in base 33 after the maker's prefix; VINs
            // before 1981 were shorter.
            let mut serial = self.next_vin;
            self.next_vin += 1;
            let mut vin = String::from(wmi);
            let serial_len = if year >= 1981 { 8 } else { 6 };
            for _ in 0..serial_len {
                vin.push(char::from(VIN_CHARS[(serial % 33) as usize]));
                serial /= 33;
            }
            if year >= 1981 {
                for _ in 0..6 {
                    vin.push(char::from(VIN_CHARS[self.rng.random_range(0..33)]));
                }
            }
            vin
        });
        let plate = self.pct(80).then(|| {
            format!(
                "{}{}{}-{}",
                char::from(b'A' + self.rng.random_range(0..26u8)),
                char::from(b'A' + self.rng.random_range(0..26u8)),
                char::from(b'A' + self.rng.random_range(0..26u8)),
                self.between(100, 10_000)
            )
        });
        let engine = self.pct(60).then(|| self.pick(ENGINES));
        let mileage = self.pct(70).then(|| 1_000 * self.between(0, 300));
        self.w.put(
            T::CustomerVehicles,
            &[
                &Id(id),
                &Id(customer),
                &vin,
                &plate,
                &make,
                &model,
                &year,
                &engine,
                &mileage,
                &Ts(t),
            ],
        )?;
        self.vehicles.push(VehicleRec { id, mileage });
        Ok(())
    }

    fn promotions_and_rules(&mut self) -> Result<()> {
        let t0 = self.span.start + 4 * HOUR_MS + 58 * MINUTE_MS;
        let span = self.span.end - self.span.start;
        for i in 0..self.plan.promotions {
            let (code, name, percent, value, category, active) = match PROMOTIONS.get(i) {
                Some(p) => (
                    p.code.map(str::to_owned),
                    p.name.to_owned(),
                    p.percent,
                    p.value,
                    p.category,
                    p.active,
                ),
                None => (
                    self.pct(70).then(|| format!("FLASH{i}")),
                    format!("Flash sale {i}"),
                    true,
                    50_000,
                    None,
                    self.pct(80),
                ),
            };
            // The first two run for the whole period, so every sale has a promotion to use.
            let starts = if i < 2 {
                self.span.start
            } else {
                self.span.start + self.between(0, span)
            };
            let ends = if i < 2 || self.pct(30) {
                None
            } else {
                Some(starts + DAY_MS * self.between(7, 60))
            };
            // The clearance and the flash sales are for one product each.
            let product =
                ((i == 5 || i >= PROMOTIONS.len()) && !self.popular.is_empty()).then(|| {
                    let k = self.below(self.popular.len());
                    self.products[self.popular[k]].id
                });
            let limit = self.pct(40).then(|| 100 * self.between(1, 50));
            let id = self.id(starts.min(t0 + i as i64));
            self.w.put(
                T::Promotions,
                &[
                    &Id(id),
                    &code,
                    &name,
                    &if percent { "percent" } else { "amount" },
                    &value,
                    &oid(product),
                    &oid(category.map(|c| self.categories[c])),
                    &Ts(starts),
                    &ots(ends),
                    &limit,
                    &active,
                ],
            )?;
            self.promos.push(PromoRec {
                id,
                percent,
                value,
                starts,
                ends,
            });
        }
        for (i, rule) in COMMISSION_RULES.iter().enumerate() {
            let t = t0 + 10_000 + i as i64;
            let id = self.id(t);
            self.w.put(
                T::CommissionRules,
                &[
                    &Id(id),
                    &rule.name,
                    &oid(rule.user.map(|u| self.users[u].id)),
                    &oid(rule.category.map(|c| self.categories[c])),
                    &rule.rate_ppm,
                    &rule.active,
                    &Ts(t),
                ],
            )?;
            self.rules.push(RuleRec {
                id,
                rate_ppm: rule.rate_ppm,
            });
        }
        Ok(())
    }

    fn gift_cards(&mut self) -> Result<()> {
        let n = self.plan.gift_cards;
        let mut issued: Vec<i64> = (0..n)
            .map(|_| {
                let d = self.rng.random_range(0..self.days);
                self.day_start(d) + self.between(9 * HOUR_MS, 18 * HOUR_MS)
            })
            .collect();
        issued.sort_unstable();
        for (i, &t) in issued.iter().enumerate() {
            let id = self.id(t);
            let code = format!("GC-{:06}-{}", i + 1, self.hex(4).to_uppercase());
            let customer = self.pct(40).then(|| {
                let k = self.below(self.customers_before(t));
                self.customers[k].id
            });
            let expires = self.pct(70).then(|| t + 730 * DAY_MS);
            let active = i == 0 || self.pct(95);
            self.w.put(
                T::GiftCards,
                &[
                    &Id(id),
                    &code,
                    &CURRENCY,
                    &oid(customer),
                    &Ts(t),
                    &ots(expires),
                    &active,
                ],
            )?;
            let amount = 2_500 * self.between(1, 9);
            // Cards sold through the old web shop were issued by nobody at the till.
            let user = (i % 10 != 3).then(|| Id(self.any_user()));
            let tx = self.id(t + 1);
            self.w.put(
                T::GiftCardTransactions,
                &[
                    &Id(tx),
                    &Id(id),
                    &"issue",
                    &amount,
                    &None::<Id>,
                    &user,
                    &Ts(t + 1),
                ],
            )?;
            self.gifts.push(GiftRec {
                id,
                issued: t,
                balance: amount,
            });
        }
        self.gift_issued = issued;
        Ok(())
    }

    fn backup_setup(&mut self) -> Result<()> {
        let t = self.span.start + 4 * HOUR_MS + 55 * MINUTE_MS;
        let destinations = [
            ("Local disk", "local_dir", "/var/backups/pos", true),
            ("Offsite – S3", "s3", "s3://pos-backups/store-1", true),
            ("Old NAS", "sftp", "sftp://nas.local/backups/pos", false),
        ];
        for (i, (name, kind, target, active)) in destinations.into_iter().enumerate() {
            let id = self.id(t + i as i64);
            self.w.put(
                T::BackupDestinations,
                &[&Id(id), &name, &kind, &target, &active, &Ts(t + i as i64)],
            )?;
            self.destinations.push(id);
        }
        self.settings_id = self.id(t + 10);
        self.w.put(
            T::BackupSettings,
            &[
                &Id(self.settings_id),
                &"0 2 * * *",
                &30_i64,
                &true,
                &Some(Id(self.destinations[0])),
                &Ts(t + 10),
            ],
        )?;
        Ok(())
    }

    // ------------------------------------------------------------------ trading

    /// The index of the first sale of day `d` (`days` gives the sale count): sales spread
    /// evenly, the first on the first day and the last on the last day.
    fn first_sale_of(&self, d: u32) -> usize {
        let s = self.plan.sales as u128;
        if d >= self.days {
            return self.plan.sales;
        }
        if self.days == 1 {
            return 0;
        }
        let (d, last) = (u128::from(d), u128::from(self.days - 1));
        ((d * (s - 1)).div_ceil(last)) as usize
    }

    fn trading(&mut self) -> Result<()> {
        let s = self.plan.sales;
        let mut kinds = vec![SaleKind::Normal; s];
        let mut order: Vec<usize> = (0..s).collect();
        order.shuffle(&mut self.rng);
        let mut next = order.into_iter();
        for (kind, n) in [
            (SaleKind::Layaway, self.plan.layaways),
            (SaleKind::WorkOrder, self.plan.work_orders),
            (SaleKind::Refund, self.plan.refunds),
            (SaleKind::Void, self.plan.voids),
        ] {
            for i in next.by_ref().take(n) {
                kinds[i] = kind;
            }
        }
        // The very last sale is an ordinary one, left open (a basket still at the till).
        if kinds[s - 1] != SaleKind::Normal {
            if let Some(j) = kinds.iter().rposition(|k| *k == SaleKind::Normal) {
                kinds.swap(j, s - 1);
            }
        }
        let mut promo = vec![false; s];
        for i in rand::seq::index::sample(&mut self.rng, s, self.plan.promo_sales.min(s)) {
            promo[i] = true;
        }
        let mut times = Vec::new();
        for d in 0..self.days {
            let day = self.day_start(d);
            self.backups_of(d, day)?;
            self.sessions_of(d, day)?;
            self.stock_movements_of(d, day)?;
            self.gift_card_upkeep(d, day)?;
            let (first, end) = (self.first_sale_of(d), self.first_sale_of(d + 1));
            times.clear();
            for _ in first..end {
                times.push(day + self.between(8 * HOUR_MS, 19 * HOUR_MS));
            }
            times.sort_unstable();
            for (k, &t) in times.iter().enumerate() {
                let i = first + k;
                let open = i + 1 == s && s >= 20;
                self.sale(i, t, kinds[i], promo[i], open)?;
            }
            self.sync_runs_of(d, day)?;
            if d % 30 == 29 || d + 1 == self.days {
                self.credit_statements(day + 20 * HOUR_MS)?;
            }
        }
        Ok(())
    }

    fn pick_part(&mut self) -> usize {
        if self.popular.is_empty() {
            let k = self.below(self.services.len());
            return self.services[k];
        }
        // Squaring a uniform draw favours the head of the popularity order.
        let u: f64 = self.rng.random();
        let rank = ((u * u) * self.popular.len() as f64) as usize;
        self.popular[rank.min(self.popular.len() - 1)]
    }

    fn line(&mut self, product: usize, discount_ppm: i64, refund: bool) -> Line {
        let p = &self.products[product];
        let (fluid, service, price) = (p.fluid, p.kind == ProductKind::Service, p.price);
        let qty = if fluid {
            500 * self.between(2, 13)
        } else if service {
            250 * self.between(2, 13)
        } else {
            1_000 * [1, 1, 1, 1, 1, 1, 1, 2, 2, 4][self.below(10)]
        };
        let qty = if refund { -qty } else { qty };
        let unit = price - price * discount_ppm / 1_000_000;
        Line {
            product: Some(product),
            service,
            qty,
            unit,
            gross: div_round(qty * unit, 1_000),
            discount: 0,
            tax: 0,
            total: 0,
        }
    }

    fn sale(&mut self, i: usize, t: i64, kind: SaleKind, promo: bool, open: bool) -> Result<()> {
        let id = self.id(t);
        let user = self.below(self.users.len());
        let device = (!self.pct(3)).then(|| {
            let k = self.below(self.tills.len());
            self.tills[k]
        });
        let known = self.customers_before(t);
        let owners = self
            .with_vehicle
            .partition_point(|&c| self.customer_created[c] < t);
        let mut kind = kind;
        if (kind == SaleKind::WorkOrder && owners == 0) || (kind == SaleKind::Layaway && known == 0)
        {
            kind = SaleKind::Normal;
        }
        let customer = match kind {
            SaleKind::WorkOrder => {
                let k = self.below(owners);
                Some(self.with_vehicle[k])
            }
            SaleKind::Layaway => Some(self.below(known)),
            _ if known > 0 && self.pct(40) => Some(self.below(known)),
            _ => None,
        };
        let (ppm, exempt) = customer.map_or((0, false), |c| {
            (self.customers[c].discount_ppm, self.customers[c].tax_exempt)
        });
        let refund = kind == SaleKind::Refund;

        let mut lines = std::mem::take(&mut self.lines);
        lines.clear();
        let parts = match kind {
            SaleKind::WorkOrder => self.between(1, 4),
            SaleKind::Refund => self.between(1, 3),
            _ => [1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6][self.below(12)],
        };
        for _ in 0..parts {
            let p = if !refund && self.pct(5) && !self.services.is_empty() {
                let k = self.below(self.services.len());
                self.services[k]
            } else {
                self.pick_part()
            };
            lines.push(self.line(p, ppm, refund));
        }
        if kind == SaleKind::WorkOrder {
            for _ in 0..self.between(1, 3) {
                let k = self.below(self.services.len());
                let p = self.services[k];
                lines.push(self.line(p, ppm, false));
            }
        }
        let supplies = if kind == SaleKind::WorkOrder { 30 } else { 3 };
        if !refund && self.pct(supplies) {
            // A line with no product: shop supplies, disposal fees.
            let unit = self.between(150, 900);
            lines.push(Line {
                product: None,
                service: true,
                qty: 1_000,
                unit,
                gross: unit,
                discount: 0,
                tax: 0,
                total: 0,
            });
        }
        let promotion = if promo && !refund && kind != SaleKind::Void {
            let valid: Vec<usize> = (0..self.promos.len())
                .filter(|&k| {
                    let p = &self.promos[k];
                    p.starts <= t && p.ends.is_none_or(|e| t < e)
                })
                .collect();
            (!valid.is_empty()).then(|| self.pick(&valid))
        } else {
            None
        };
        if let Some(k) = promotion {
            let p = &self.promos[k];
            let gross = lines[0].gross;
            lines[0].discount = if p.percent {
                div_round(gross * p.value, 1_000_000)
            } else {
                p.value.min(gross)
            };
        }
        for l in lines.iter_mut() {
            let taxable = l.product.is_none_or(|p| self.products[p].taxable);
            if taxable && !exempt {
                l.tax = div_round((l.gross - l.discount) * TAX_BP, 10_000);
            }
            l.total = l.gross - l.discount + l.tax;
        }
        let subtotal: i64 = lines.iter().map(|l| l.gross).sum();
        let discount: i64 = lines.iter().map(|l| l.discount).sum();
        let tax: i64 = lines.iter().map(|l| l.tax).sum();
        let total: i64 = lines.iter().map(|l| l.total).sum();

        // A layaway's fate decides its sale's status: still open when due after today.
        let layaway_due = t + 30 * DAY_MS;
        let layaway_fate = if kind == SaleKind::Layaway {
            if layaway_due >= self.span.end {
                "open"
            } else if self.pct(80) {
                "completed"
            } else {
                "cancelled"
            }
        } else {
            ""
        };
        let status = match kind {
            SaleKind::Void => "voided",
            SaleKind::Layaway => match layaway_fate {
                "open" => "layaway",
                "completed" => "completed",
                _ => "voided",
            },
            _ if open => "open",
            _ => "completed",
        };
        let number = format!("S-{:07}", i + 1);
        let note = match kind {
            SaleKind::Refund if !self.sales.is_empty() => {
                let j = self.below(self.sales.len());
                Some(format!("Refund of S-{:07}", j + 1))
            }
            SaleKind::Refund => Some("Refund without receipt".to_owned()),
            SaleKind::Void => {
                Some("Voided at the till – Kunde hat es sich anders überlegt".to_owned())
            }
            _ if self.pct(2) => Some("Customer will pick up tomorrow".to_owned()),
            _ => None,
        };
        let customer_id = customer.map(|c| self.customers[c].id);
        let user_id = self.users[user].id;
        self.w.put(
            T::Sales,
            &[
                &Id(id),
                &number,
                &oid(device),
                &oid(customer_id),
                &Id(user_id),
                &status,
                &CURRENCY,
                &subtotal,
                &discount,
                &tax,
                &total,
                &Ts(t),
                &note,
            ],
        )?;
        for (n, l) in lines.iter().enumerate() {
            let line_id = self.id(t);
            let (product_id, description) = match l.product {
                Some(p) => (Some(self.products[p].id), self.products[p].name.as_str()),
                None => (None, "Shop supplies / Altteilentsorgung"),
            };
            self.w.put(
                T::SaleLines,
                &[
                    &Id(line_id),
                    &Id(id),
                    &(n as i64 + 1),
                    &if l.service { "service" } else { "product" },
                    &oid(product_id),
                    &description,
                    &l.qty,
                    &l.unit,
                    &l.discount,
                    &l.tax,
                    &l.total,
                ],
            )?;
        }
        let moved = status == "completed" || status == "layaway" || layaway_fate == "cancelled";
        if moved {
            let movement = match kind {
                SaleKind::Refund => "refund",
                SaleKind::Layaway => "layaway",
                _ => "sale",
            };
            for l in &lines {
                let Some(p) = l.product else { continue };
                if self.products[p].kind != ProductKind::Stocked {
                    continue;
                }
                let tx = self.id(t);
                let cost = self.pct(30).then_some(self.products[p].cost);
                self.w.put(
                    T::InventoryTransactions,
                    &[
                        &Id(tx),
                        &Id(self.products[p].id),
                        &"main",
                        &movement,
                        &-l.qty,
                        &cost,
                        &None::<&str>,
                        &Some(Id(id)),
                        &Some(Id(user_id)),
                        &Ts(t),
                    ],
                )?;
            }
        }
        if status == "completed" && kind != SaleKind::Layaway {
            self.payments(id, t, customer, total, user)?;
            self.commission(id, t, user, total - tax, &lines)?;
            if let Some(acct) = customer.and_then(|c| self.customers[c].loyalty) {
                let points = total / 100;
                if points != 0 {
                    let tx = self.id(t + 1);
                    let entry = if points > 0 { "accrue" } else { "reverse" };
                    self.w.put(
                        T::LoyaltyTransactions,
                        &[
                            &Id(tx),
                            &Id(self.loyalty[acct].id),
                            &entry,
                            &points,
                            &Some(Id(id)),
                            &Ts(t + 1),
                        ],
                    )?;
                    self.loyalty[acct].points += points;
                }
            }
        }
        if let Some(k) = promotion {
            if status == "completed" || status == "layaway" {
                let use_id = self.id(t);
                self.w.put(
                    T::PromotionUsage,
                    &[
                        &Id(use_id),
                        &Id(self.promos[k].id),
                        &Id(id),
                        &oid(customer_id),
                        &lines[0].discount,
                        &Ts(t),
                    ],
                )?;
            }
        }
        if let (SaleKind::Layaway, Some(c)) = (kind, customer) {
            self.layaway(id, t, c, total, layaway_fate, &lines)?;
        }
        if let (SaleKind::WorkOrder, Some(c)) = (kind, customer) {
            self.work_order(Some((id, t)), c, &lines, "completed")?;
        }
        self.lines = lines;
        self.sales.push(SaleRec { id, t, user });
        Ok(())
    }

    fn payments(
        &mut self,
        sale: Uuid,
        t: i64,
        customer: Option<usize>,
        total: i64,
        user: usize,
    ) -> Result<()> {
        let paid_at = t + self.between(5_000, 120_000);
        if total < 0 {
            // Refunds go back the way most money comes in.
            let method = if self.pct(50) { "cash" } else { "card" };
            let id = self.id(paid_at);
            return self.w.put(
                T::SalePayments,
                &[
                    &Id(id),
                    &Id(sale),
                    &method,
                    &total,
                    &CURRENCY,
                    &None::<i64>,
                    &0_i64,
                    &None::<&str>,
                    &None::<Id>,
                    &Ts(paid_at),
                ],
            );
        }
        let mut remaining = total;
        let split = total >= 2_000 && self.pct(12);
        for round in 0..4 {
            let last = round == 3 || (round == 1 && split) || (round == 0 && !split);
            let want = if last || round > 0 {
                remaining
            } else {
                remaining * self.between(30, 71) / 100
            };
            let on_account = customer
                .and_then(|c| self.customers[c].credit)
                .is_some_and(|a| self.credit[a].active);
            let roll = self.below(100);
            let mut method = if round == 3 {
                "card"
            } else if round == 0 && on_account && roll < 60 {
                // Trade customers mostly charge to their account.
                "store_credit"
            } else if roll < 35 {
                "cash"
            } else if roll < 87 {
                "card"
            } else if roll < 92 {
                "gift_card"
            } else if roll < 96 {
                "store_credit"
            } else {
                "loyalty"
            };
            let mut amount = want;
            let mut gift = None;
            match method {
                "gift_card" => {
                    let issued = self.gift_issued.partition_point(|&g| g < t);
                    let mut card = None;
                    for _ in 0..3 {
                        let g = self.below(issued);
                        if issued > 0 && self.gifts[g].balance > 0 {
                            card = Some(g);
                            break;
                        }
                    }
                    match card {
                        Some(g) => {
                            amount = want.min(self.gifts[g].balance);
                            self.gifts[g].balance -= amount;
                            gift = Some(g);
                        }
                        None => method = "card",
                    }
                }
                "store_credit" => {
                    let acct = customer.and_then(|c| self.customers[c].credit);
                    match acct.filter(|&a| self.credit[a].active) {
                        Some(a) if self.credit[a].limit > self.credit[a].owed => {
                            amount = want.min(self.credit[a].limit - self.credit[a].owed);
                            self.credit[a].owed += amount;
                            let tx = self.id(paid_at);
                            self.w.put(
                                T::CreditTransactions,
                                &[
                                    &Id(tx),
                                    &Id(self.credit[a].id),
                                    &"charge",
                                    &amount,
                                    &Some(Id(sale)),
                                    &Some(Id(self.users[user].id)),
                                    &Ts(paid_at),
                                ],
                            )?;
                        }
                        _ => method = "card",
                    }
                }
                "loyalty" => {
                    let acct = customer.and_then(|c| self.customers[c].loyalty);
                    match acct {
                        Some(a) if self.loyalty[a].points >= 500 => {
                            // One point buys one minor unit.
                            amount = want.min(self.loyalty[a].points);
                            self.loyalty[a].points -= amount;
                            let tx = self.id(paid_at);
                            self.w.put(
                                T::LoyaltyTransactions,
                                &[
                                    &Id(tx),
                                    &Id(self.loyalty[a].id),
                                    &"redeem",
                                    &-amount,
                                    &Some(Id(sale)),
                                    &Ts(paid_at),
                                ],
                            )?;
                        }
                        _ => method = "card",
                    }
                }
                _ => {}
            }
            let (tendered, change) = if method == "cash" {
                let tendered = if self.pct(30) {
                    amount
                } else {
                    let note = self.pick(&[500_i64, 1_000, 2_000, 5_000]);
                    (amount + note - 1) / note * note
                };
                (Some(tendered), tendered - amount)
            } else {
                (None, 0)
            };
            let reference =
                (method == "card").then(|| format!("AUTH-{}", self.hex(6).to_uppercase()));
            let id = self.id(paid_at);
            let gift_id = gift.map(|g| self.gifts[g].id);
            self.w.put(
                T::SalePayments,
                &[
                    &Id(id),
                    &Id(sale),
                    &method,
                    &amount,
                    &CURRENCY,
                    &tendered,
                    &change,
                    &reference,
                    &oid(gift_id),
                    &Ts(paid_at),
                ],
            )?;
            if let Some(g) = gift_id {
                let tx = self.id(paid_at);
                self.w.put(
                    T::GiftCardTransactions,
                    &[
                        &Id(tx),
                        &Id(g),
                        &"redeem",
                        &-amount,
                        &Some(Id(sale)),
                        &Some(Id(self.users[user].id)),
                        &Ts(paid_at),
                    ],
                )?;
            }
            remaining -= amount;
            if remaining <= 0 {
                break;
            }
        }
        Ok(())
    }

    fn commission(
        &mut self,
        sale: Uuid,
        t: i64,
        user: usize,
        base: i64,
        lines: &[Line],
    ) -> Result<()> {
        if !self.users[user].commission || base == 0 {
            return Ok(());
        }
        let brakes = lines.iter().any(|l| {
            l.product.is_some_and(|p| {
                let c = self.products[p].category;
                c == BRAKES || CATEGORIES[c].parent == Some(BRAKES)
            })
        });
        let rule = if self.pct(5) {
            None
        } else if user == 1 {
            Some(2)
        } else if brakes {
            Some(1)
        } else {
            Some(0)
        };
        let rate = rule.map_or(20_000, |r| self.rules[r].rate_ppm);
        let amount = div_round(base * rate, 1_000_000);
        if amount == 0 {
            return Ok(());
        }
        let id = self.id(t + 2);
        self.w.put(
            T::Commissions,
            &[
                &Id(id),
                &Id(self.users[user].id),
                &Id(sale),
                &oid(rule.map(|r| self.rules[r].id)),
                &amount,
                &CURRENCY,
                &Ts(t + 2),
            ],
        )
    }

    fn layaway(
        &mut self,
        sale: Uuid,
        t: i64,
        customer: usize,
        total: i64,
        fate: &str,
        lines: &[Line],
    ) -> Result<()> {
        self.next_layaway += 1;
        let id = self.id(t);
        let number = format!("LA-{:05}", self.next_layaway);
        let due = t + 30 * DAY_MS;
        let deposit = (total / 5).max(total.min(1_000));
        let mut payments = vec![(t, deposit)];
        let mut paid = deposit;
        let closed = match fate {
            "completed" => {
                let extra = self.between(1, 4);
                let mut at: Vec<i64> = (0..extra).map(|_| self.between(t + HOUR_MS, due)).collect();
                at.sort_unstable();
                for (k, &when) in at.iter().enumerate() {
                    let amount = if k + 1 == at.len() {
                        total - paid
                    } else {
                        (total - paid) / 2
                    };
                    payments.push((when, amount));
                    paid += amount;
                }
                at.last().copied()
            }
            "cancelled" => {
                let when = self.between(t + HOUR_MS, due);
                if self.pct(50) && total > paid {
                    let amount = (total - paid) / 3;
                    payments.push((self.between(t + 1, when), amount));
                    paid += amount;
                }
                payments.push((when, -paid));
                Some(when)
            }
            _ => {
                if total > paid && self.pct(60) {
                    let when = self.between(t + HOUR_MS, self.span.end - 1);
                    let amount = (total - paid) / 3;
                    payments.push((when, amount));
                }
                None
            }
        };
        self.w.put(
            T::Layaways,
            &[
                &Id(id),
                &number,
                &Id(self.customers[customer].id),
                &Id(sale),
                &fate,
                &total,
                &deposit,
                &CURRENCY,
                &Ts(t),
                // Some layaways were taken without a due date.
                &(!self.next_layaway.is_multiple_of(7)).then_some(Ts(due)),
                &ots(closed),
            ],
        )?;
        for (when, amount) in payments {
            let pid = self.id(when);
            let method = if self.pct(50) { "cash" } else { "card" };
            let user = self.pct(90).then(|| Id(self.any_user()));
            self.w.put(
                T::LayawayPayments,
                &[&Id(pid), &Id(id), &method, &amount, &user, &Ts(when)],
            )?;
        }
        if let (Some(when), "cancelled") = (closed, fate) {
            // Goods back on the shelf.
            for l in lines {
                let Some(p) = l.product else { continue };
                if self.products[p].kind != ProductKind::Stocked {
                    continue;
                }
                let tx = self.id(when);
                self.w.put(
                    T::InventoryTransactions,
                    &[
                        &Id(tx),
                        &Id(self.products[p].id),
                        &"main",
                        &"layaway",
                        &l.qty,
                        &None::<i64>,
                        &Some("layaway cancelled"),
                        &Some(Id(sale)),
                        &None::<Id>,
                        &Ts(when),
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// A work order of `customer` with `lines`; `sale` is the sale it completed into.
    fn work_order(
        &mut self,
        sale: Option<(Uuid, i64)>,
        customer: usize,
        lines: &[Line],
        status: &str,
    ) -> Result<()> {
        let c = &self.customers[customer];
        let (cid, created, first_vehicle, vehicles) =
            (c.id, c.created, c.first_vehicle, c.vehicles);
        let end = sale.map_or(self.span.end - HOUR_MS, |(_, t)| t);
        let opened = (end - self.between(HOUR_MS, 3 * DAY_MS))
            .max(created + 10_000)
            .min(end - 1);
        let vehicle = (vehicles > 0 && !self.pct(5)).then(|| first_vehicle + self.below(vehicles));
        let odometer = vehicle
            .and_then(|v| self.vehicles[v].mileage)
            .map(|m| m + 1_000 * self.between(0, 20));
        self.next_work_order += 1;
        let id = self.id(opened);
        let number = format!("WO-{:06}", self.next_work_order);
        let technician = (!self.pct(10)).then(|| self.any_user());
        let description = self.pick(WORK_DESCRIPTIONS);
        self.w.put(
            T::WorkOrders,
            &[
                &Id(id),
                &number,
                &Id(cid),
                &oid(vehicle.map(|v| self.vehicles[v].id)),
                &oid(technician),
                &status,
                &description,
                &odometer,
                &oid(sale.map(|(s, _)| s)),
                &Ts(opened),
                &ots(sale.map(|(_, t)| t)),
            ],
        )?;
        for l in lines {
            let at = self.between(opened, end.max(opened + 1));
            let lid = self.id(at);
            let (product_id, description) = match l.product {
                Some(p) => (Some(self.products[p].id), self.products[p].name.as_str()),
                None => (None, "Shop supplies / Altteilentsorgung"),
            };
            self.w.put(
                T::WorkOrderLines,
                &[
                    &Id(lid),
                    &Id(id),
                    &if l.service { "labour" } else { "part" },
                    &oid(product_id),
                    &description,
                    &l.qty,
                    &l.unit,
                    &Ts(at),
                ],
            )?;
        }
        Ok(())
    }

    fn open_work_orders(&mut self) -> Result<()> {
        let n = (self.plan.work_orders / 10).max(2);
        let end = self.span.end - HOUR_MS;
        let owners = self
            .with_vehicle
            .partition_point(|&c| self.customer_created[c] < end);
        if owners == 0 {
            return Ok(());
        }
        let mut lines = Vec::new();
        for k in 0..n {
            let owner = self.below(owners);
            let customer = self.with_vehicle[owner];
            let status = ["open", "in_progress", "cancelled"][k % 3];
            lines.clear();
            for _ in 0..self.between(0, 3) {
                let p = self.pick_part();
                lines.push(self.line(p, 0, false));
            }
            self.work_order(None, customer, &lines, status)?;
        }
        Ok(())
    }

    fn backups_of(&mut self, d: u32, day: i64) -> Result<()> {
        for _ in 0..share(self.plan.backups, d, self.days) {
            let t = day + 2 * HOUR_MS + self.between(0, 10 * MINUTE_MS);
            let id = self.id(t);
            let last =
                self.backups.len() as u64 + 1 == self.plan.backups && self.plan.backups >= 10;
            let ok = self.backups.is_empty() || (!last && self.pct(92));
            let status = if last {
                "running"
            } else if ok {
                "ok"
            } else {
                "failed"
            };
            let kind = if self.pct(93) {
                "full"
            } else {
                "tenant_export"
            };
            let roll = self.below(100);
            let destination = if roll < 60 {
                Some(self.destinations[0])
            } else if roll < 95 {
                Some(self.destinations[1])
            } else {
                None
            };
            let path = format!("/var/backups/pos/pos-{}.db", &ts_text(t)[..10]);
            let sha = ok.then(|| self.hex(64));
            let size = ok.then(|| 4_096 * (1_000 + i64::from(d) * 50 + self.between(0, 100)));
            let finished = (!last).then(|| t + self.between(5_000, 300_000));
            self.w.put(
                T::Backups,
                &[
                    &Id(id),
                    &kind,
                    &oid(destination),
                    &path,
                    &sha,
                    &size,
                    &status,
                    &Ts(t),
                    &ots(finished),
                ],
            )?;
            self.backups.push(BackupRec { id, created: t, ok });
        }
        Ok(())
    }

    fn sessions_of(&mut self, d: u32, day: i64) -> Result<()> {
        for _ in 0..share(self.plan.sessions, d, self.days) {
            let t = day + 7 * HOUR_MS + self.between(0, 10 * HOUR_MS);
            let id = self.id(t);
            let user = self.any_user();
            let device = (!self.pct(10)).then(|| {
                let k = self.below(self.devices.len());
                self.devices[k]
            });
            let ended = if (d + 1 == self.days && self.pct(50)) || self.pct(8) {
                None
            } else {
                Some(t + self.between(HOUR_MS, 9 * HOUR_MS))
            };
            self.w.put(
                T::Sessions,
                &[
                    &Id(id),
                    &Id(user),
                    &oid(device),
                    &Ts(t),
                    &Ts(t + 12 * HOUR_MS),
                    &ots(ended),
                ],
            )?;
            self.sessions.push(id);
        }
        Ok(())
    }

    fn stock_movement(
        &mut self,
        t: i64,
        p: usize,
        location: &str,
        kind: &str,
        qty: i64,
        reason: Option<&str>,
    ) -> Result<()> {
        let id = self.id(t);
        // Deliveries and counts are booked by the owner or the manager.
        let user = (!self.pct(5)).then(|| {
            let k = self.below(self.users.len().min(2));
            Id(self.users[k].id)
        });
        let cost = (kind != "transfer").then_some(self.products[p].cost);
        self.w.put(
            T::InventoryTransactions,
            &[
                &Id(id),
                &Id(self.products[p].id),
                &location,
                &kind,
                &qty,
                &cost,
                &reason,
                &None::<Id>,
                &user,
                &Ts(t),
            ],
        )
    }

    fn stock_movements_of(&mut self, d: u32, day: i64) -> Result<()> {
        if self.stocked.is_empty() {
            return Ok(());
        }
        for _ in 0..share(self.plan.receipts, d, self.days) {
            let t = day + 7 * HOUR_MS + self.between(0, HOUR_MS);
            let k = self.below(self.stocked.len());
            let p = self.stocked[k];
            let qty = if self.products[p].fluid {
                1_000 * self.between(20, 200)
            } else {
                1_000 * self.between(5, 50)
            };
            let location = if self.products[p].warehouse && self.pct(50) {
                "warehouse"
            } else {
                "main"
            };
            let reason = self
                .pct(30)
                .then(|| format!("PO-{}", self.between(1_000, 99_999)));
            self.stock_movement(t, p, location, "receive", qty, reason.as_deref())?;
        }
        for _ in 0..share(self.plan.adjustments, d, self.days) {
            let t = day + self.between(8 * HOUR_MS, 19 * HOUR_MS);
            let k = self.below(self.stocked.len());
            let p = self.stocked[k];
            let reason = self.pick(ADJUST_REASONS);
            let qty = if reason == "found during stocktake" {
                1_000
            } else {
                -1_000 * self.between(1, 3)
            };
            let kind = if reason == "found during stocktake" {
                "count"
            } else {
                "adjust"
            };
            self.stock_movement(t, p, "main", kind, qty, Some(reason))?;
        }
        if self.stored.is_empty() {
            return Ok(());
        }
        for _ in 0..share(self.plan.transfers, d, self.days) {
            let t = day + self.between(7 * HOUR_MS, 8 * HOUR_MS);
            let k = self.below(self.stored.len());
            let p = self.stored[k];
            let qty = 1_000 * self.between(1, 10);
            let reason = Some("restock from warehouse");
            self.stock_movement(t, p, "warehouse", "transfer", -qty, reason)?;
            self.stock_movement(t + 1, p, "main", "transfer", qty, reason)?;
        }
        Ok(())
    }

    fn gift_card_upkeep(&mut self, d: u32, day: i64) -> Result<()> {
        let issued = self.gift_issued.partition_point(|&g| g < day);
        if issued == 0 {
            return Ok(());
        }
        // About one top-up per five cards over the period, and a few write-offs.
        let top_ups = share(self.plan.gift_cards as u64 / 5, d, self.days);
        let adjusts = share(self.plan.gift_cards as u64 / 20, d, self.days);
        for k in 0..top_ups + adjusts {
            let g = self.below(issued);
            let t = day
                + self
                    .between(9 * HOUR_MS, 18 * HOUR_MS)
                    .max(self.gifts[g].issued - day + 1);
            let (kind, amount) = if k < top_ups {
                ("top_up", 2_500 * self.between(1, 5))
            } else {
                ("adjust", -self.gifts[g].balance.min(100))
            };
            let id = self.id(t);
            let user = Some(Id(self.any_user()));
            self.w.put(
                T::GiftCardTransactions,
                &[
                    &Id(id),
                    &Id(self.gifts[g].id),
                    &kind,
                    &amount,
                    &None::<Id>,
                    &user,
                    &Ts(t),
                ],
            )?;
            self.gifts[g].balance += amount;
        }
        Ok(())
    }

    fn credit_statements(&mut self, t: i64) -> Result<()> {
        for a in 0..self.credit.len() {
            if self.credit[a].owed <= 0 || !self.pct(70) {
                continue;
            }
            let amount = self.credit[a].owed;
            // Bank transfers are booked by nobody at the till.
            let user = self.pct(50).then(|| Id(self.users[0].id));
            let id = self.id(t);
            self.w.put(
                T::CreditTransactions,
                &[
                    &Id(id),
                    &Id(self.credit[a].id),
                    &"payment",
                    &-amount,
                    &None::<Id>,
                    &user,
                    &Ts(t),
                ],
            )?;
            self.credit[a].owed = 0;
        }
        Ok(())
    }

    fn sync_runs_of(&mut self, d: u32, day: i64) -> Result<()> {
        let n = share(self.plan.sync_runs, d, self.days);
        let mut starts: Vec<i64> = (0..n)
            .map(|_| day + self.between(0, DAY_MS - MINUTE_MS))
            .collect();
        starts.sort_unstable();
        for (k, t) in starts.into_iter().enumerate() {
            let id = self.id(t);
            let last = d + 1 == self.days && k as u64 + 1 == n;
            let push = self.pct(50);
            let failed = !last && self.pct(10);
            let status = if last {
                "running"
            } else if failed {
                "failed"
            } else {
                "ok"
            };
            let operations = if failed || last {
                0
            } else {
                self.between(0, 400)
            };
            let cursor = (!push && !failed && !last).then(|| {
                self.sync_cursor += operations;
                self.sync_cursor
            });
            let finished = (!last).then(|| t + self.between(200, 30_000));
            let error = failed.then(|| {
                self.pick(&[
                    "connection refused",
                    "timed out after 30 s",
                    "server answered 503",
                ])
            });
            self.w.put(
                T::SyncLog,
                &[
                    &Id(id),
                    &if push { "push" } else { "pull" },
                    &Ts(t),
                    &ots(finished),
                    &operations,
                    &cursor,
                    &status,
                    &error,
                ],
            )?;
        }
        Ok(())
    }

    fn restores_and_conflicts(&mut self) -> Result<()> {
        let ok: Vec<usize> = (0..self.backups.len())
            .filter(|&b| self.backups[b].ok)
            .collect();
        for k in 0..self.plan.restores {
            if ok.is_empty() {
                break;
            }
            let b = self.pick(&ok);
            let backup = &self.backups[b];
            let (bid, created) = (backup.id, backup.created);
            let t = self.later(created);
            let id = self.id(t);
            let status = if k + 1 == self.plan.restores && k > 0 {
                "running"
            } else {
                ["ok", "ok", "ok", "failed", "pending"][self.below(5)]
            };
            let finished =
                (status == "ok" || status == "failed").then(|| t + self.between(10_000, 600_000));
            let error =
                (status == "failed").then_some("checksum mismatch: file changed since backup");
            let by = (k == 0 || self.pct(80)).then(|| Id(self.users[0].id));
            self.w.put(
                T::RestoreJobs,
                &[
                    &Id(id),
                    &Id(bid),
                    &status,
                    &by,
                    &Ts(t),
                    &ots(finished),
                    &error,
                ],
            )?;
        }
        for k in 0..self.plan.conflicts {
            let t = self.between(self.span.start + DAY_MS / 2, self.span.end - HOUR_MS);
            let id = self.id(t);
            let p = self.below(self.products.len());
            let product = &self.products[p];
            let (table, row, column, kind, local, remote) = match k % 4 {
                0 => (
                    "products",
                    product.id,
                    Some("price_minor"),
                    "column",
                    Some(json!(product.price).to_string()),
                    Some(json!(product.price + 100).to_string()),
                ),
                1 => (
                    "products",
                    product.id,
                    Some("name"),
                    "column",
                    Some(json!(product.name).to_string()),
                    Some(json!(format!("{} (neu)", product.name)).to_string()),
                ),
                2 => (
                    "products",
                    product.id,
                    None,
                    "stock_below_zero",
                    Some(json!({"on_hand_milli": -1_000}).to_string()),
                    None,
                ),
                _ => (
                    "products",
                    product.id,
                    None,
                    "deleted_locally",
                    None,
                    Some(json!({"sku_was": "discontinued"}).to_string()),
                ),
            };
            let resolved =
                (k % 4 != 2 && self.pct(70)).then(|| t + self.between(HOUR_MS, 3 * DAY_MS));
            let by = resolved.and_then(|_| (!self.pct(10)).then(|| Id(self.users[0].id)));
            let resolution = resolved.map(|_| {
                if k % 2 == 0 {
                    "kept_local"
                } else {
                    "kept_remote"
                }
            });
            self.w.put(
                T::SyncConflicts,
                &[
                    &Id(id),
                    &table,
                    &Id(row),
                    &column,
                    &kind,
                    &local,
                    &remote,
                    &Ts(t),
                    &ots(resolved),
                    &by,
                    &resolution,
                ],
            )?;
        }
        Ok(())
    }

    /// The audit trail, written last: it takes whatever rows remain of the target, one
    /// entry per write the old app logged, spread over the sales in time order.
    fn audit_trail(&mut self) -> Result<()> {
        let n = self.plan.rows.saturating_sub(self.w.total()).max(2);
        let admin = self.users[0].id;
        let t0 = self.span.start + 4 * HOUR_MS;
        let id = self.id(t0);
        self.w.put(
            T::AuditLog,
            &[
                &Id(id),
                &Ts(t0),
                &Some(Id(admin)),
                &"bootstrap",
                &"users",
                &Id(admin),
                &Some(json!({"username": "owner", "role": "admin"}).to_string()),
            ],
        )?;
        let sales = self.sales.len() as u64;
        for k in 1..n {
            let j = (u128::from(k) * u128::from(sales) / u128::from(n)) as usize;
            let Some(sale) = self.sales.get(j) else { break };
            let (sale_id, sale_t, sale_user) = (sale.id, sale.t, sale.user);
            let t = sale_t + self.between(1, 500);
            let entry = self.id(t);
            let roll = self.below(100);
            let actor = if roll == 0 {
                None
            } else {
                Some(self.users[sale_user].id)
            };
            let (action, table, row, detail): (&str, &str, Uuid, Option<String>) = if roll < 88 {
                (
                    "insert",
                    "sales",
                    sale_id,
                    Some(json!({"number": format!("S-{:07}", j + 1)}).to_string()),
                )
            } else if roll < 94 {
                let p = self.below(self.products.len());
                let price = self.products[p].price;
                (
                    "update",
                    "products",
                    self.products[p].id,
                    Some(json!({"price_minor": [price, price + 50]}).to_string()),
                )
            } else if roll < 97 {
                let c = self.below(self.customers_before(t).max(1));
                ("insert", "customers", self.customers[c].id, None)
            } else if roll < 98 && !self.sessions.is_empty() {
                let k = self.below(self.sessions.len());
                ("delete", "sessions", self.sessions[k], None)
            } else if roll < 99 {
                (
                    "settings",
                    "backup_settings",
                    self.settings_id,
                    Some(json!({"retention_days": 30, "note": "Aufbewahrung geprüft"}).to_string()),
                )
            } else {
                let u = self.below(self.users.len());
                (
                    "status",
                    "users",
                    self.users[u].id,
                    Some(json!({"active": true}).to_string()),
                )
            };
            let actor = if action == "settings" || action == "status" {
                Some(admin)
            } else {
                actor
            };
            self.w.put(
                T::AuditLog,
                &[
                    &Id(entry),
                    &Ts(t),
                    &oid(actor),
                    &action,
                    &table,
                    &Id(row),
                    &detail,
                ],
            )?;
        }
        Ok(())
    }
}

/// A valid EAN-13 for a 12-digit number.
fn ean13(n: u64) -> String {
    let digits = format!("{:012}", n % 1_000_000_000_000);
    let sum: u32 = digits
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use rusqlite::types::Value;

    use super::*;
    use crate::catalog::{ColumnKind, Record, RecordVisitor};
    use crate::Timestamp;

    const CURRENT_SCHEMA: &str = include_str!("../../migrations/node/V1__initial_schema.sql");

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn schema_db(sql: &str) -> rusqlite::Result<Connection> {
        let db = Connection::open_in_memory()?;
        db.execute_batch(sql)?;
        Ok(db)
    }

    /// A generated store in its own temporary directory (removed on drop).
    struct Store {
        _dir: tempfile::TempDir,
        path: PathBuf,
        summary: LegacySummary,
    }

    fn store(rows: u64, seed: u64) -> std::result::Result<Store, Box<dyn std::error::Error>> {
        store_with(&LegacyOptions {
            rows,
            seed,
            ..LegacyOptions::default()
        })
    }

    fn store_with(
        options: &LegacyOptions,
    ) -> std::result::Result<Store, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("legacy.db");
        let summary = generate(&path, options)?;
        Ok(Store {
            _dir: dir,
            path,
            summary,
        })
    }

    fn strings(db: &Connection, sql: &str, arg: &str) -> rusqlite::Result<Vec<String>> {
        let mut stmt = db.prepare(sql)?;
        let rows = stmt.query_map([arg], |r| r.get::<_, String>(0))?;
        rows.collect()
    }

    fn count(db: &Connection, sql: &str) -> rusqlite::Result<i64> {
        db.query_row(sql, [], |r| r.get(0))
    }

    /// Name, declared type, NOT NULL and default of a column.
    type ColumnInfo = (String, String, bool, Option<String>);

    /// Table, unique, partial and columns (without tenant_id) of an index.
    type IndexInfo = (String, bool, bool, Vec<String>);

    /// Every column but tenant_id.
    fn columns(db: &Connection, table: &str) -> rusqlite::Result<Vec<ColumnInfo>> {
        let mut stmt = db.prepare(
            "SELECT name, type, \"notnull\", dflt_value FROM pragma_table_info(?1) \
             WHERE name != 'tenant_id' ORDER BY cid",
        )?;
        let rows = stmt.query_map([table], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.collect()
    }

    /// Every `CHECK (...)` of a table's CREATE statement, as written.
    fn checks(sql: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut rest = sql;
        while let Some(at) = rest.find("CHECK (") {
            let body = &rest[at + "CHECK ".len()..];
            let mut depth = 0;
            let mut end = body.len();
            for (i, c) in body.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            found.push(body[..end].to_owned());
            rest = &body[end..];
        }
        found.sort();
        found
    }

    fn table_sql(db: &Connection, table: &str) -> rusqlite::Result<String> {
        db.query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
    }

    /// Named indexes: name -> (table, unique, partial, columns without tenant_id).
    fn named_indexes(db: &Connection) -> rusqlite::Result<BTreeMap<String, IndexInfo>> {
        let mut out = BTreeMap::new();
        let mut stmt = db.prepare(
            "SELECT name, tbl_name, sql LIKE 'CREATE UNIQUE%', sql LIKE '% WHERE %' \
             FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL",
        )?;
        let rows: Vec<(String, String, bool, bool)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (name, table, unique, partial) in rows {
            let cols = strings(
                db,
                "SELECT name FROM pragma_index_info(?1) WHERE name != 'tenant_id' ORDER BY seqno",
                &name,
            )?;
            out.insert(name, (table, unique, partial, cols));
        }
        Ok(out)
    }

    /// UNIQUE constraints of a table as column lists without tenant_id (empty lists dropped).
    fn unique_constraints(db: &Connection, table: &str) -> rusqlite::Result<BTreeSet<Vec<String>>> {
        let mut out = BTreeSet::new();
        for index in strings(
            db,
            "SELECT name FROM pragma_index_list(?1) WHERE origin = 'u'",
            table,
        )? {
            let cols = strings(
                db,
                "SELECT name FROM pragma_index_info(?1) WHERE name != 'tenant_id' ORDER BY seqno",
                &index,
            )?;
            if !cols.is_empty() {
                out.insert(cols);
            }
        }
        Ok(out)
    }

    /// Foreign keys of a table as (from, parent table, to), tenant_id pairs dropped.
    fn foreign_keys(
        db: &Connection,
        table: &str,
    ) -> rusqlite::Result<BTreeSet<(String, String, String)>> {
        let mut stmt = db.prepare(
            "SELECT \"from\", \"table\", \"to\" FROM pragma_foreign_key_list(?1) \
             WHERE \"from\" != 'tenant_id'",
        )?;
        let rows = stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect()
    }

    #[test]
    fn legacy_tables_are_the_catalog_tables_in_order() -> TestResult {
        let db = schema_db(LEGACY_SCHEMA)?;
        let mut stmt =
            db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY rowid")?;
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let catalog: Vec<&str> = legacy_tables().iter().map(|t| t.name).collect();
        assert_eq!(names, catalog);
        assert_eq!(TABLE_COUNT, catalog.len());
        for (t, name) in [
            (T::Users, "users"),
            (T::Sales, "sales"),
            (T::PendingOperations, "pending_operations"),
            (T::RestoreJobs, "restore_jobs"),
        ] {
            assert_eq!(legacy_tables()[t as usize].name, name);
        }
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'"
            )?,
            0
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM pragma_table_list WHERE name = 'tenants'"
            )?,
            0
        );
        Ok(())
    }

    #[test]
    fn legacy_columns_are_the_current_ones_without_tenant_id() -> TestResult {
        let legacy = schema_db(LEGACY_SCHEMA)?;
        let current = schema_db(CURRENT_SCHEMA)?;
        for table in legacy_tables() {
            let old = columns(&legacy, table.name)?;
            assert_eq!(old, columns(&current, table.name)?, "{}", table.name);
            let names: Vec<&str> = old.iter().map(|c| c.0.as_str()).collect();
            let expected: Vec<&str> = std::iter::once("id")
                .chain(legacy_columns(table).map(|c| c.name))
                .collect();
            assert_eq!(names, expected, "{} in catalog order", table.name);
            assert_eq!(
                checks(&table_sql(&legacy, table.name)?),
                checks(&table_sql(&current, table.name)?),
                "CHECKs of {}",
                table.name
            );
        }
        Ok(())
    }

    #[test]
    fn columns_added_since_are_nullable_catalog_columns_the_old_app_lacked() -> TestResult {
        let legacy = schema_db(LEGACY_SCHEMA)?;
        let first = schema_db(CURRENT_SCHEMA)?;
        for &(table, column) in ADDED_SINCE {
            let def = legacy_tables()
                .iter()
                .find(|t| t.name == table)
                .ok_or(table)?;
            let col = def
                .columns
                .iter()
                .find(|c| c.name == column)
                .ok_or(column)?;
            // Adoption fills it with NULL, and the old app's rows must still read as records.
            assert!(col.nullable, "{table}.{column} must be nullable");
            for db in [&legacy, &first] {
                assert!(
                    !columns(db, table)?.iter().any(|c| c.0 == column),
                    "{table}.{column} is not a column of the old app"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn legacy_tables_are_rowid_tables_keyed_by_id_except_the_outbox() -> TestResult {
        let db = schema_db(LEGACY_SCHEMA)?;
        for table in legacy_tables() {
            let key = strings(
                &db,
                "SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk",
                table.name,
            )?;
            let expected = if table.name == "pending_operations" {
                "hlc"
            } else {
                "id"
            };
            assert_eq!(key, [expected], "{}", table.name);
            assert!(
                !table_sql(&db, table.name)?.contains("WITHOUT ROWID"),
                "{}",
                table.name
            );
            // Only rowid tables answer to `rowid`.
            db.prepare(&format!("SELECT rowid FROM {} LIMIT 0", table.name))?;
        }
        Ok(())
    }

    #[test]
    fn legacy_indexes_uniques_and_foreign_keys_are_the_current_ones_without_tenant_id() -> TestResult
    {
        let legacy = schema_db(LEGACY_SCHEMA)?;
        let current = schema_db(CURRENT_SCHEMA)?;
        assert_eq!(named_indexes(&legacy)?, named_indexes(&current)?);
        for table in legacy_tables() {
            assert_eq!(
                unique_constraints(&legacy, table.name)?,
                unique_constraints(&current, table.name)?,
                "UNIQUE of {}",
                table.name
            );
            let mut current_fks = foreign_keys(&current, table.name)?;
            current_fks.retain(|(_, parent, _)| parent != "tenants");
            assert_eq!(
                foreign_keys(&legacy, table.name)?,
                current_fks,
                "FKs of {}",
                table.name
            );
        }
        // The one UNIQUE that was only tenant_id has no single-tenant counterpart.
        assert!(unique_constraints(&legacy, "backup_settings")?.is_empty());
        Ok(())
    }

    #[test]
    fn timestamps_are_written_exactly_as_the_crate_writes_them() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let fixed = [
            0,
            951_782_400_000,     // 2000-02-29
            4_107_542_400_000,   // 2100-03-01
            1_772_619_330_123,   // 2026-03-04T10:15:30.123Z
            253_402_300_799_999, // 9999-12-31T23:59:59.999Z
        ];
        let random = (0..10_000).map(|_| rng.random_range(0..253_402_300_800_000_i64));
        for ms in fixed.into_iter().chain(random) {
            let expected = Timestamp::from_millis(ms).map(|t| t.to_rfc3339());
            assert_eq!(Some(ts_text(ms)), expected, "{ms}");
        }
    }

    #[test]
    fn a_small_store_is_consistent_and_passes_sqlites_checks() -> TestResult {
        let s = store(5_000, 1)?;
        assert!(
            s.summary.total_rows.abs_diff(5_000) <= 100,
            "{}",
            s.summary.total_rows
        );
        let db = Connection::open(&s.path)?;
        let mut stmt = db.prepare("PRAGMA foreign_key_check")?;
        let violations: Vec<(String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        assert!(violations.is_empty(), "{violations:?}");
        let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        assert_eq!(integrity, "ok");
        let mode: String = db.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        assert_eq!(mode, "delete");
        for (table, rows) in &s.summary.tables {
            let n = count(&db, &format!("SELECT count(*) FROM {table}"))?;
            assert_eq!(n as u64, *rows, "{table}");
        }
        assert_eq!(s.summary.rows("pending_operations"), Some(0));
        // Money adds up: lines to sales, payments to completed sales, layaway payments to
        // completed layaways; no gift card is overdrawn.
        for (what, sql) in [
            ("sale totals", "SELECT count(*) FROM sales s WHERE total_minor != \
                (SELECT sum(total_minor) FROM sale_lines WHERE sale_id = s.id) \
                OR total_minor != subtotal_minor - discount_minor + tax_minor \
                OR subtotal_minor != (SELECT sum(l.total_minor - l.tax_minor + l.discount_minor) \
                    FROM sale_lines l WHERE l.sale_id = s.id)"),
            ("payments", "SELECT count(*) FROM sales s WHERE status = 'completed' \
                AND NOT EXISTS (SELECT 1 FROM layaways WHERE sale_id = s.id) \
                AND total_minor != (SELECT coalesce(sum(amount_minor), 0) FROM sale_payments \
                    WHERE sale_id = s.id)"),
            ("unpaid statuses", "SELECT count(*) FROM sale_payments p JOIN sales s ON s.id = p.sale_id \
                WHERE s.status != 'completed'"),
            ("layaways", "SELECT count(*) FROM layaways l WHERE status = 'completed' \
                AND total_minor != (SELECT sum(amount_minor) FROM layaway_payments WHERE layaway_id = l.id)"),
            ("gift cards", "SELECT count(*) FROM (SELECT gift_card_id FROM gift_card_transactions \
                GROUP BY gift_card_id HAVING sum(amount_minor) < 0)"),
            ("line numbers", "SELECT count(*) FROM sales s WHERE (SELECT max(line_no) FROM sale_lines \
                WHERE sale_id = s.id) != (SELECT count(*) FROM sale_lines WHERE sale_id = s.id)"),
            ("sale movements", "SELECT count(*) FROM inventory_transactions \
                WHERE kind = 'sale' AND (sale_id IS NULL OR quantity_milli >= 0)"),
            ("change", "SELECT count(*) FROM sale_payments WHERE method = 'cash' \
                AND tendered_minor - amount_minor != change_minor"),
        ] {
            assert_eq!(count(&db, sql)?, 0, "{what}");
        }
        assert!(
            count(
                &db,
                "SELECT count(*) FROM users WHERE role = 'admin' AND active = 1"
            )? >= 1
        );
        for role in ["manager", "cashier"] {
            let n: i64 =
                db.query_row("SELECT count(*) FROM users WHERE role = ?1", [role], |r| {
                    r.get(0)
                })?;
            assert!(n >= 1, "{role}");
        }
        assert!(
            count(
                &db,
                "SELECT count(*) FROM product_categories WHERE parent_id IS NOT NULL"
            )? > 0
        );
        assert!(count(&db, "SELECT count(*) FROM products WHERE image IS NOT NULL")? > 0);
        assert!(
            count(
                &db,
                "SELECT count(*) FROM customers WHERE last_name GLOB '*[^ -~]*'"
            )? > 0
        );
        assert!(
            count(
                &db,
                "SELECT count(*) FROM products WHERE name GLOB '*[^ -~]*'"
            )? > 0
        );
        Ok(())
    }

    #[test]
    fn trading_spans_the_period_and_the_last_day_has_sales() -> TestResult {
        for days in [1, 7, 365] {
            let options = LegacyOptions {
                rows: 3_000,
                days,
                first_day: NaiveDate::from_ymd_opt(2025, 6, 1).ok_or("date")?,
                ..LegacyOptions::default()
            };
            let s = store_with(&options)?;
            let db = Connection::open(&s.path)?;
            let (first, last): (String, String) =
                db.query_row("SELECT min(sold_at), max(sold_at) FROM sales", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            assert!(first.starts_with("2025-06-01T"), "{first}");
            let today = today(&options).format("%Y-%m-%d").to_string();
            assert!(last.starts_with(&today), "{last} vs {today}");
        }
        Ok(())
    }

    #[test]
    fn every_table_but_the_outbox_gets_rows_and_the_total_is_within_two_percent() -> TestResult {
        for (rows, seed, days) in [
            (MIN_ROWS, 1, 365),
            (MIN_ROWS, 2, 1),
            (2_000, 1, 365),
            (2_000, 2, 30),
            (2_000, 3, 2),
            (12_345, 4, 90),
        ] {
            let s = store_with(&LegacyOptions {
                rows,
                seed,
                days,
                ..LegacyOptions::default()
            })?;
            let off = s.summary.total_rows.abs_diff(rows);
            assert!(
                off * 50 <= rows,
                "{rows} rows, days {days}: got {}",
                s.summary.total_rows
            );
            if rows >= 2_000 {
                for (table, n) in &s.summary.tables {
                    if table != "pending_operations" {
                        assert!(
                            *n > 0,
                            "{table} is empty at {rows} rows, seed {seed}, days {days}"
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Every table's rows in primary-key order.
    fn dump(path: &Path) -> rusqlite::Result<Vec<(String, Vec<Vec<Value>>)>> {
        let db = Connection::open(path)?;
        let mut out = Vec::new();
        for table in legacy_tables() {
            let key = if table.name == "pending_operations" {
                "hlc"
            } else {
                "id"
            };
            let mut stmt = db.prepare(&format!("SELECT * FROM {} ORDER BY {key}", table.name))?;
            let width = stmt.column_count();
            let rows = stmt
                .query_map([], |r| (0..width).map(|i| r.get::<_, Value>(i)).collect())?
                .collect::<rusqlite::Result<Vec<Vec<Value>>>>()?;
            out.push((table.name.to_owned(), rows));
        }
        Ok(out)
    }

    #[test]
    fn the_same_options_give_the_same_rows() -> TestResult {
        let a = store(3_000, 42)?;
        let b = store(3_000, 42)?;
        let c = store(3_000, 43)?;
        assert_eq!(a.summary, b.summary);
        let (da, db, dc) = (dump(&a.path)?, dump(&b.path)?, dump(&c.path)?);
        assert!(da == db, "two runs with seed 42 differ");
        assert!(da != dc, "seeds 42 and 43 gave the same rows");
        Ok(())
    }

    struct ReadAll<'a>(&'a Connection);

    impl RecordVisitor for ReadAll<'_> {
        type Output = rusqlite::Result<u64>;
        fn visit<R: Record>(self) -> rusqlite::Result<u64> {
            // A column added since reads as NULL, as adoption fills it.
            let columns: Vec<String> = std::iter::once("id".to_owned())
                .chain(R::TABLE.columns.iter().map(|c| {
                    if ADDED_SINCE.contains(&(R::TABLE.name, c.name)) {
                        format!("NULL AS {}", c.name)
                    } else {
                        c.name.to_owned()
                    }
                }))
                .collect();
            let sql = format!("SELECT {} FROM {}", columns.join(", "), R::TABLE.name);
            let mut stmt = self.0.prepare(&sql)?;
            let mut n = 0;
            for row in stmt.query_map([], |r| R::from_row(r))? {
                row?;
                n += 1;
            }
            Ok(n)
        }
    }

    #[test]
    fn rows_read_as_typed_records_and_copy_into_the_current_schema() -> TestResult {
        let s = store(5_000, 5)?;
        let legacy = Connection::open(&s.path)?;
        for (table, rows) in &s.summary.tables {
            let read =
                catalog::visit_table(table, ReadAll(&legacy)).ok_or("not in the catalog")??;
            assert_eq!(read, *rows, "{table}");
        }
        drop(legacy);

        // Values move unchanged into the current schema, its CHECKs and composite keys.
        let current = schema_db(CURRENT_SCHEMA)?;
        current.execute_batch(
            "PRAGMA foreign_keys = ON;
             INSERT INTO tenants (id, name, max_users, max_api_calls_month, settings, created_at, updated_at)
             VALUES ('legacy-store', 'Legacy store', 100, 100000, '{}',
                     '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');",
        )?;
        current.execute("ATTACH DATABASE ?1 AS legacy", [s.path.to_string_lossy()])?;
        current.execute_batch("BEGIN; PRAGMA defer_foreign_keys = ON;")?;
        for table in legacy_tables() {
            let columns: Vec<&str> = std::iter::once("id")
                .chain(legacy_columns(table).map(|c| c.name))
                .collect();
            let columns = columns.join(", ");
            current.execute(
                &format!(
                    "INSERT INTO main.{0} (tenant_id, {1}) SELECT 'legacy-store', {1} FROM legacy.{0}",
                    table.name, columns
                ),
                [],
            )?;
        }
        current.execute_batch("COMMIT")?;
        assert_eq!(
            count(&current, "SELECT count(*) FROM pragma_foreign_key_check")?,
            0
        );
        assert_eq!(
            count(&current, "SELECT count(*) FROM main.sales")? as u64,
            s.summary.rows("sales").unwrap_or(0)
        );
        Ok(())
    }

    #[test]
    fn ids_and_timestamps_are_canonical() -> TestResult {
        let options = LegacyOptions {
            rows: 5_000,
            ..LegacyOptions::default()
        };
        let s = store_with(&options)?;
        let db = Connection::open(&s.path)?;
        let start = Timestamp::from(
            options
                .first_day
                .and_hms_opt(0, 0, 0)
                .ok_or("time")?
                .and_utc(),
        );
        for table in legacy_tables() {
            let mut ids = vec![("id", ColumnKind::Id)];
            ids.extend(legacy_columns(table).map(|c| (c.name, c.kind)));
            for (column, kind) in ids {
                if kind != ColumnKind::Id && kind != ColumnKind::Timestamp {
                    continue;
                }
                let sql = format!(
                    "SELECT {column} FROM {} WHERE {column} IS NOT NULL",
                    table.name
                );
                let mut stmt = db.prepare(&sql)?;
                let values = stmt.query_map([], |r| r.get::<_, String>(0))?;
                for text in values {
                    let text = text?;
                    if kind == ColumnKind::Id {
                        let id = Uuid::try_parse(&text)?;
                        assert_eq!(id.hyphenated().to_string(), text, "{}.{column}", table.name);
                        assert_eq!(id.get_version_num(), 7, "{}.{column}", table.name);
                    } else {
                        let t: Timestamp = text.parse()?;
                        assert_eq!(t.to_rfc3339(), text, "{}.{column}", table.name);
                        assert!(
                            t >= start,
                            "{}.{column} {text} before the first day",
                            table.name
                        );
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn optional_columns_hold_both_nulls_and_values() -> TestResult {
        let s = store(20_000, 1)?;
        let db = Connection::open(&s.path)?;
        for table in legacy_tables() {
            if s.summary.rows(table.name).unwrap_or(0) < 50 {
                continue;
            }
            for column in legacy_columns(table).filter(|c| c.nullable) {
                let (nulls, values): (i64, i64) = db.query_row(
                    &format!(
                        "SELECT count(*) - count({0}), count({0}) FROM {1}",
                        column.name, table.name
                    ),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                assert!(
                    nulls > 0 && values > 0,
                    "{}.{}: {nulls} NULLs, {values} values",
                    table.name,
                    column.name
                );
            }
        }
        Ok(())
    }

    #[test]
    fn an_existing_file_is_refused_and_left_alone() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store.db");
        std::fs::write(&path, b"keep me")?;
        let err = generate(&path, &LegacyOptions::default())
            .err()
            .ok_or("overwrote")?;
        assert!(matches!(err, GenerateError::Exists { .. }), "{err}");
        assert_eq!(std::fs::read(&path)?, b"keep me");
        Ok(())
    }

    #[test]
    fn options_out_of_range_are_refused_before_any_file_exists() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store.db");
        let base = LegacyOptions::default();
        for (options, field) in [
            (
                LegacyOptions {
                    rows: MIN_ROWS - 1,
                    ..base.clone()
                },
                "rows",
            ),
            (
                LegacyOptions {
                    rows: MAX_ROWS + 1,
                    ..base.clone()
                },
                "rows",
            ),
            (
                LegacyOptions {
                    days: 0,
                    ..base.clone()
                },
                "days",
            ),
            (
                LegacyOptions {
                    days: u32::MAX,
                    ..base.clone()
                },
                "days",
            ),
            (
                LegacyOptions {
                    first_day: NaiveDate::from_ymd_opt(1969, 12, 31).ok_or("date")?,
                    ..base.clone()
                },
                "first_day",
            ),
        ] {
            match generate(&path, &options) {
                Err(GenerateError::Options { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{options:?} gave {other:?}"),
            }
            assert!(!path.exists());
        }
        Ok(())
    }

    #[test]
    fn today_is_the_last_trading_day() -> TestResult {
        let first_day = NaiveDate::from_ymd_opt(2024, 2, 28).ok_or("date")?;
        let options = LegacyOptions {
            first_day,
            days: 3,
            ..LegacyOptions::default()
        };
        assert_eq!(
            today(&options),
            NaiveDate::from_ymd_opt(2024, 3, 1).ok_or("date")?
        );
        assert_eq!(
            today(&LegacyOptions {
                days: 1,
                ..options.clone()
            }),
            first_day
        );
        assert_eq!(today(&LegacyOptions { days: 0, ..options }), first_day);
        Ok(())
    }

    #[test]
    fn ean13_check_digits_are_right() {
        // 400638133393 is a well-known EAN prefix with check digit 1.
        assert_eq!(ean13(400_638_133_393), "4006381333931");
    }
}
