//! `pos-node`: the store-side command line. Exit codes: 0 all well, 1 `verify` or `status`
//! found problems (or `backup verify` a bad backup, `storage` a tenant file it cannot use), 2 an error (printed on stderr, prefixed by
//! the program name).

mod adopt;
// Backups and tenant export (issue 16): see the block marked below in `Command` and `run`.
mod backup;
mod conflicts;
#[cfg(feature = "testkit")]
mod demo;
mod outbox;
mod output;
mod query;
#[cfg(feature = "receipts")]
mod receipt;
mod status;
mod sync;
mod tenant;
mod tenant_io;
// A tenant in a file of its own (issue 16, stage 2): promote, demote, purge, storage.
mod tier;
mod verify;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pos_tenancy::Store;

/// Store-side node tools for pos-tenancy: create a node database, manage its tenants, check
/// its isolation invariants and run read-only reports.
#[derive(Parser)]
#[command(name = "pos-node", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a node database (or migrate an existing one to this version).
    Init {
        /// The database file.
        #[arg(long)]
        db: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Adopt a legacy single-tenant store in place (or roll an adoption back).
    Adopt(Box<adopt::AdoptArgs>),
    /// Fill a tenant with a demo auto-parts store and ring up a day of sales.
    #[cfg(feature = "testkit")]
    Demo(demo::DemoArgs),
    /// Manage the tenant registry.
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Inspect the outbox of operations waiting for the central server.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// Check schema invariants and data; exit 1 listing every violation.
    Verify {
        /// The database file.
        #[arg(long)]
        db: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sync with the central server: once, or until SIGTERM or Ctrl-C.
    Sync(sync::SyncArgs),
    /// Where each tenant's sync stands; exit 1 if one is stalled, failing or has operations
    /// set aside.
    Status(status::StatusArgs),
    /// List and resolve the conflicts the merge recorded.
    #[command(subcommand)]
    Conflicts(conflicts::ConflictsCommand),
    /// Run a read-only SELECT confined to one tenant's rows.
    Query {
        /// The database file.
        #[arg(long)]
        db: PathBuf,
        /// The tenant whose rows the query sees.
        #[arg(long)]
        tenant: String,
        /// Print rows as a JSON array of objects.
        #[arg(long)]
        json: bool,
        /// The SELECT statement.
        sql: String,
    },
    /// Print a sale's receipt (text, ESC/POS bytes or HTML) on stdout.
    #[cfg(feature = "receipts")]
    Receipt(receipt::ReceiptArgs),
    // ---- Backups and tenant export (issue 16) ----
    /// Back up the whole node, list, verify, restore and prune its backups.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Export one tenant's rows to a standalone SQLite file, with its SHA-256.
    Export(tenant_io::ExportArgs),
    /// Replace one tenant's rows with those of its export, in one transaction.
    Restore(tenant_io::RestoreArgs),
    // ---- end of backups and tenant export ----
    // ---- A tenant in a file of its own (issue 16, stage 2) ----
    /// Move a tenant into a database file of its own beside the node's (or, with --auto,
    /// every tenant the node's automatic rule finds due).
    Promote(tier::PromoteArgs),
    /// Move a tenant from its own file back into the node's shared file.
    Demote(tier::DemoteArgs),
    /// Remove the copies moves kept for a way back once their window is over.
    Purge(tier::PurgeArgs),
    /// Show (or with --set change) the automatic rule and rollback window, and where each
    /// tenant lives; exit 1 if a tenant's own file cannot be used.
    Storage(tier::StorageArgs),
    // ---- end of a tenant in a file of its own ----
}

/// What a command wants the process to exit with, when it did not fail.
pub(crate) enum Outcome {
    Ok,
    /// Exit 1: the command found problems and listed them.
    Problems,
    /// Exit 2: the command failed and has said why on stderr already.
    Failed,
}

/// Errors of the command line: the library's, or a usage problem it found itself.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Store(#[from] pos_tenancy::Error),
    #[error(transparent)]
    TenantId(#[from] pos_tenancy::TenantIdError),
    #[error("no database at {0} (create one with `pos-node init --db {0}`)")]
    NoDatabase(String),
    #[error(transparent)]
    Adopt(#[from] pos_tenancy::adopt::AdoptError),
    #[error(transparent)]
    Verify(#[from] pos_tenancy::VerifyError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
    #[error(transparent)]
    Backup(#[from] pos_tenancy::backup::BackupError),
    #[error(transparent)]
    TenantIo(#[from] pos_tenancy::TenantIoError),
    #[error("invalid settings in {0}: {1}; nothing was changed")]
    Settings(String, pos_tenancy::SettingsError),
    #[error("cannot read {0}: {1}; nothing was changed")]
    ReadFile(String, std::io::Error),
}

/// Opens an existing node database; read commands never create one by accident, nor turn an
/// empty file or another program's database into one.
pub(crate) fn open_existing(db: &Path) -> Result<Store, CliError> {
    Store::open_existing(db).map_err(|e| match e {
        pos_tenancy::Error::NoDatabase { .. } => CliError::NoDatabase(db.display().to_string()),
        e => e.into(),
    })
}

fn run(cli: Cli) -> Result<Outcome, CliError> {
    match cli.command {
        Command::Init { db, json } => {
            let store = Store::open(&db)?;
            let version = store.schema_version()?;
            if json {
                output::print_json(&serde_json::json!({
                    "db": db.display().to_string(),
                    "schema_version": version,
                }))?;
            } else {
                output::print(|out| {
                    writeln!(
                        out,
                        "{}: node database ready at schema version {version}",
                        db.display()
                    )
                })?;
            }
            Ok(Outcome::Ok)
        }
        Command::Adopt(args) => adopt::run(*args),
        #[cfg(feature = "testkit")]
        Command::Demo(args) => demo::run(args),
        Command::Tenant(cmd) => tenant::run(cmd),
        Command::Outbox(cmd) => outbox::run(cmd),
        Command::Verify { db, json } => verify::run(&db, json),
        Command::Sync(args) => sync::run(args),
        Command::Status(args) => status::run(args),
        Command::Conflicts(cmd) => conflicts::run(cmd),
        Command::Query {
            db,
            tenant,
            json,
            sql,
        } => query::run(&db, &tenant, json, &sql),
        // ---- Backups and tenant export (issue 16) ----
        #[cfg(feature = "receipts")]
        Command::Receipt(args) => receipt::run(args),
        Command::Backup(cmd) => backup::run(cmd),
        Command::Export(args) => tenant_io::export(args),
        Command::Restore(args) => tenant_io::restore(args),
        // ---- end of backups and tenant export ----
        Command::Promote(args) => tier::promote(args),
        Command::Demote(args) => tier::demote(args),
        Command::Purge(args) => tier::purge(args),
        Command::Storage(args) => tier::storage(args),
    }
}

fn main() -> ExitCode {
    let cli = match output::parse_args::<Cli>("pos-node") {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run(cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Ok(Outcome::Failed) => ExitCode::from(2),
        Err(e) => {
            output::warn(&format!("error: {e}"));
            ExitCode::from(2)
        }
    }
}
