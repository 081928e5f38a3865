//! Writes a legacy single-tenant POS store (the schema before tenants) for adoption tests and
//! benchmarks.
//!
//! ```sh
//! cargo run --release --example make_legacy_db -- --out /tmp/legacy.db --rows 1000000
//! ```
//!
//! Prints the total rows, each table's count and the seconds taken; errors go to stderr with
//! exit code 2. The file must not exist yet.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use chrono::NaiveDate;
use clap::Parser;
use pos_tenancy::testkit::legacy::{generate, today, LegacyOptions, LegacySummary};

/// Write a legacy single-tenant POS store filled with a deterministic auto-parts trading history.
#[derive(Debug, Parser)]
#[command(name = "make_legacy_db")]
struct Args {
    /// The SQLite file to create (must not exist).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Approximate total rows across all tables.
    #[arg(long, value_name = "N")]
    rows: u64,
    /// Seed of the random stream: the same options give the same rows.
    #[arg(long, value_name = "S", default_value_t = LegacyOptions::default().seed)]
    seed: u64,
    /// The first trading day.
    #[arg(long, value_name = "YYYY-MM-DD", default_value_t = LegacyOptions::default().first_day)]
    first_day: NaiveDate,
    /// Trading days, the last one included.
    #[arg(long, value_name = "D", default_value_t = LegacyOptions::default().days)]
    days: u32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = LegacyOptions {
        rows: args.rows,
        seed: args.seed,
        first_day: args.first_day,
        days: args.days,
    };
    let started = Instant::now();
    let summary = match generate(&args.out, &options) {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("make_legacy_db: {e}");
            return ExitCode::from(2);
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    match report(&args, &options, &summary, seconds, size) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make_legacy_db: cannot print the summary: {e}");
            ExitCode::from(2)
        }
    }
}

fn report(
    args: &Args,
    options: &LegacyOptions,
    summary: &LegacySummary,
    seconds: f64,
    size: u64,
) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "{}: {} rows in {seconds:.2} s, {:.1} MiB, {} to {} (seed {})",
        args.out.display(),
        summary.total_rows,
        size as f64 / (1024.0 * 1024.0),
        options.first_day,
        today(options),
        options.seed
    )?;
    for (table, rows) in &summary.tables {
        writeln!(out, "  {table:<24} {rows:>10}")?;
    }
    out.flush()
}
