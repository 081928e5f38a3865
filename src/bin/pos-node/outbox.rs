//! `pos-node outbox list`: a tenant's pending operations, as the central server takes them.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use crate::output::{print, print_json, write_table};
use crate::{open_existing, CliError, Outcome};

#[derive(Subcommand)]
pub(crate) enum OutboxCommand {
    /// List the tenant's operations not yet acknowledged by the server, oldest first.
    List {
        /// The database file.
        #[arg(long)]
        db: PathBuf,
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
        /// Print a JSON array of operations, each exactly as `POST /v1/tenants/{tenant}/operations` takes it.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(cmd: OutboxCommand) -> Result<Outcome, CliError> {
    match cmd {
        OutboxCommand::List {
            db,
            tenant,
            limit,
            json,
        } => {
            let store = open_existing(&db)?;
            let ops = store.tenant(&tenant.parse()?)?.pending_operations(limit)?;
            if json {
                print_json(&ops)?;
            } else {
                let header = ["hlc", "kind", "table", "row_id", "columns"].map(String::from);
                let rows: Vec<Vec<String>> = ops
                    .iter()
                    .map(|op| {
                        let cols: Vec<&str> = op.columns.keys().map(String::as_str).collect();
                        vec![
                            op.hlc.to_string(),
                            op.kind.to_string(),
                            op.table.clone(),
                            op.row_id.to_string(),
                            cols.join(","),
                        ]
                    })
                    .collect();
                print(|out| {
                    write_table(out, &header, &rows)?;
                    writeln!(out, "({} pending)", rows.len())
                })?;
            }
            Ok(Outcome::Ok)
        }
    }
}
