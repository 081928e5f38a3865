//! `pos-node backup ...`: whole-node backups (create, list, verify, restore, prune).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pos_tenancy::backup::{
    self, BackupCheck, BackupEntry, CreateOptions, PruneOptions, PruneReport,
};
use pos_tenancy::{RowId, Timestamp};

use crate::output::{print, print_json, write_table};
use crate::{CliError, Outcome};

#[derive(Subcommand)]
pub(crate) enum BackupCommand {
    /// Back up the whole node while it keeps selling; record it and prune old backups.
    Create {
        /// The node database.
        #[arg(long)]
        db: PathBuf,
        /// The directory the backup goes to (created if missing).
        #[arg(long)]
        to: PathBuf,
        /// Keep every backup: do not prune after this one.
        #[arg(long)]
        no_prune: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the backups recorded in the node database, newest first.
    List {
        /// The node database.
        #[arg(long)]
        db: PathBuf,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Hash backups again and open them read-only with integrity_check; exit 1 on a problem.
    Verify {
        /// The node database.
        #[arg(long)]
        db: PathBuf,
        /// Only this backup (default: every finished one).
        #[arg(long)]
        id: Option<String>,
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restore the whole node from a backup (with every program using the database closed).
    Restore {
        /// The node database to replace (created if missing: a new disk).
        #[arg(long)]
        db: PathBuf,
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove the backups no tenant's retention keeps any more.
    Prune {
        /// The node database.
        #[arg(long)]
        db: PathBuf,
        /// Backups kept whatever their age.
        #[arg(long, default_value_t = backup::DEFAULT_KEEP_LAST)]
        keep_last: u32,
        /// Say what would go and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(cmd: BackupCommand) -> Result<Outcome, CliError> {
    match cmd {
        BackupCommand::Create {
            db,
            to,
            no_prune,
            json,
        } => {
            let mut options = CreateOptions::default();
            if no_prune {
                options = options.without_prune();
            }
            let bar = pages_bar("backup");
            let report = backup::create(&db, &to, &options, &mut |p| {
                bar.set_length(p.total);
                bar.set_position(p.done);
            });
            bar.finish_and_clear();
            let report = report?;
            if json {
                print_json(&report)?;
            } else {
                print(|out| {
                    writeln!(
                        out,
                        "backed up {} to {} ({} bytes, {} pages, {:.2} s) for tenants {}",
                        db.display(),
                        report.file.path.display(),
                        report.file.bytes,
                        report.pages,
                        report.seconds,
                        report
                            .tenants
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )?;
                    writeln!(out, "id {}; SHA-256 {}", report.id, report.file.sha256)?;
                    for part in &report.tenant_files {
                        writeln!(
                            out,
                            "tenant {}'s own file to {} ({} bytes, SHA-256 {})",
                            part.tenant,
                            part.file.path.display(),
                            part.file.bytes,
                            part.file.sha256
                        )?;
                    }
                    match &report.pruned {
                        Some(pruned) => write_pruned(out, pruned),
                        None => Ok(()),
                    }
                })?;
            }
            Ok(Outcome::Ok)
        }
        BackupCommand::List { db, json } => {
            let entries = backup::list(&db)?;
            if json {
                print_json(&entries)?;
            } else {
                print(|out| write_entries(out, &entries))?;
            }
            Ok(Outcome::Ok)
        }
        BackupCommand::Verify { db, id, json } => {
            let id: Option<RowId> = match id {
                Some(id) => Some(
                    id.parse()
                        .map_err(|e| CliError::Usage(format!("--id {id}: {e}")))?,
                ),
                None => None,
            };
            let checks = backup::verify(&db, id)?;
            if json {
                print_json(&checks)?;
            } else {
                print(|out| write_checks(out, &checks))?;
            }
            Ok(if checks.iter().all(|c| c.problem.is_none()) {
                Outcome::Ok
            } else {
                Outcome::Problems
            })
        }
        BackupCommand::Restore { db, from, json } => {
            let bar = pages_bar("restore");
            let report = backup::restore(&db, &from, &mut |p| {
                bar.set_length(p.total);
                bar.set_position(p.done);
            });
            bar.finish_and_clear();
            let report = report?;
            if json {
                print_json(&report)?;
            } else {
                print(|out| {
                    writeln!(
                        out,
                        "restored {} from {} (SHA-256 {} checked) in {:.2} s: tenants {}",
                        report.db.display(),
                        report.backup.display(),
                        report.sha256,
                        report.seconds,
                        report
                            .tenants
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )?;
                    for part in &report.tenant_files {
                        writeln!(
                            out,
                            "tenant {}'s own file restored to {} (SHA-256 {} checked)",
                            part.tenant,
                            part.path.display(),
                            part.sha256
                        )?;
                    }
                    if report.same_terminal {
                        writeln!(
                            out,
                            "same terminal: the node keeps its id {}",
                            report.node_id
                        )?;
                    } else {
                        writeln!(
                            out,
                            "another terminal{}: the node gets the new id {} (the backup's was {})",
                            if report.created {
                                " (a new database)"
                            } else {
                                ""
                            },
                            report.node_id,
                            report.backup_node_id
                        )?;
                    }
                    Ok(())
                })?;
            }
            Ok(Outcome::Ok)
        }
        BackupCommand::Prune {
            db,
            keep_last,
            dry_run,
            json,
        } => {
            let options = PruneOptions::default()
                .keep_last(keep_last)
                .dry_run(dry_run);
            let report = backup::prune(&db, &options, Timestamp::now())?;
            if json {
                print_json(&report)?;
            } else {
                print(|out| write_pruned(out, &report))?;
            }
            Ok(Outcome::Ok)
        }
    }
}

/// A bar of pages on stderr when it is a terminal; nothing otherwise.
fn pages_bar(prefix: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} pages {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(prefix);
    bar
}

fn write_entries(out: &mut impl Write, entries: &[BackupEntry]) -> io::Result<()> {
    let header = [
        "id", "kind", "status", "created", "bytes", "tenants", "file",
    ]
    .map(String::from);
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                e.kind.to_string(),
                e.status.to_string(),
                e.created_at.to_string(),
                e.bytes.map(|b| b.to_string()).unwrap_or_default(),
                e.tenants
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                format!(
                    "{}{}{}",
                    e.path.display(),
                    if e.file_present { "" } else { " (missing)" },
                    match e.tenant_files.len() {
                        0 => String::new(),
                        n => format!(
                            " + {n} tenant file{}{}",
                            if n == 1 { "" } else { "s" },
                            if e.tenant_files.iter().all(|t| t.present) {
                                ""
                            } else {
                                " (some missing)"
                            }
                        ),
                    }
                ),
            ]
        })
        .collect();
    write_table(out, &header, &rows)
}

fn write_checks(out: &mut impl Write, checks: &[BackupCheck]) -> io::Result<()> {
    for c in checks {
        match &c.problem {
            None => writeln!(out, "ok       {} {}", c.id, c.path.display())?,
            Some(problem) => writeln!(out, "PROBLEM  {} {}: {problem}", c.id, c.path.display())?,
        }
        for t in &c.tenant_files {
            match &t.problem {
                None => writeln!(out, "  ok       tenant {} {}", t.tenant, t.path.display())?,
                Some(problem) => writeln!(
                    out,
                    "  PROBLEM  tenant {} {}: {problem}",
                    t.tenant,
                    t.path.display()
                )?,
            }
        }
    }
    let bad = checks.iter().filter(|c| c.problem.is_some()).count();
    writeln!(out, "{} backups checked, {bad} with problems", checks.len())
}

fn write_pruned(out: &mut impl Write, report: &PruneReport) -> io::Result<()> {
    let (verb, done) = if report.dry_run {
        ("would remove", "would be removed")
    } else {
        ("removed", "removed")
    };
    for b in &report.removed {
        writeln!(
            out,
            "{verb} {} of {} for tenants {}{}",
            b.id,
            b.created_at,
            b.tenants
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            if b.file_removed {
                format!(" (file {})", b.path.display())
            } else {
                String::new()
            }
        )?;
    }
    writeln!(
        out,
        "pruning: {} backups {done}, {} kept",
        report.removed.len(),
        report.kept
    )
}
