//! `pos-node verify`: schema invariants and data, exit 1 on any violation.

use std::path::Path;

use std::io::Write;

use crate::output::{print, print_json, write_table};
use crate::{open_existing, CliError, Outcome};

pub(crate) fn run(db: &Path, json: bool) -> Result<Outcome, CliError> {
    let report = open_existing(db)?.verify()?;
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
