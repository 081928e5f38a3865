//! `pos-node query`: the read-only report SQL of one tenant.

use std::path::Path;

use std::io::Write;

use crate::output::{print, print_json, write_table};
use crate::{open_existing, CliError, Outcome};

pub(crate) fn run(db: &Path, tenant: &str, json: bool, sql: &str) -> Result<Outcome, CliError> {
    let store = open_existing(db)?;
    let handle = store.tenant(&tenant.parse()?)?;
    let result = handle.query(sql)?;
    if json {
        print_json(&result.to_objects())?;
    } else {
        let rows: Vec<Vec<String>> = result
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| match v {
                        serde_json::Value::Null => "NULL".to_owned(),
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect();
        print(|out| {
            write_table(out, &result.columns, &rows)?;
            writeln!(out, "({} rows)", rows.len())
        })?;
    }
    Ok(Outcome::Ok)
}
