//! `pos-node verify`: schema invariants and data, exit 1 on any violation, 2 when the file
//! cannot be checked (locked past the busy timeout, unreadable, not a node database, another
//! schema version). The file is opened read-only and never changed.

use std::path::Path;

use std::io::Write;

use pos_tenancy::Store;

use crate::output::{print, print_json, write_table};
use crate::{CliError, Outcome};

pub(crate) fn run(db: &Path, json: bool) -> Result<Outcome, CliError> {
    if !db.is_file() {
        return Err(CliError::NoDatabase(db.display().to_string()));
    }
    let report = Store::verify_file(db)?;
    if json {
        print_json(&report)?;
    } else if report.is_ok() {
        print(|out| {
            writeln!(
                out,
                "ok: {} tenant tables and {} rows checked, no violations",
                report.tables_checked, report.rows_checked
            )
        })?;
    } else {
        let header = ["check", "table", "detail"].map(String::from);
        let rows: Vec<Vec<String>> = report
            .violations
            .iter()
            .map(|v| {
                let check = serde_json::to_value(v.check)
                    .ok()
                    .and_then(|c| c.as_str().map(str::to_owned))
                    .unwrap_or_default();
                vec![check, v.table.clone().unwrap_or_default(), v.detail.clone()]
            })
            .collect();
        print(|out| {
            write_table(out, &header, &rows)?;
            writeln!(out, "{} violations", report.violations.len())
        })?;
    }
    Ok(if report.is_ok() {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}
