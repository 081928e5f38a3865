//! `pos-node adopt`: turn a legacy single-tenant store into a multi-tenant one, or roll back.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pos_tenancy::adopt::{self, AdoptOptions, AdoptPlan, AdoptReport, Outcome, Progress};
use pos_tenancy::{Plan, TenantId};

use crate::output::{print, print_json, write_table};
use crate::{CliError, Outcome as Exit};

#[derive(Args)]
pub(crate) struct AdoptArgs {
    /// The legacy database file, adopted in place.
    #[arg(long)]
    db: PathBuf,
    /// The tenant every existing row will belong to (a slug).
    #[arg(long, required_unless_present = "rollback")]
    tenant: Option<String>,
    /// The tenant's trading name (default: the slug).
    #[arg(long)]
    name: Option<String>,
    /// free, pro or enterprise.
    #[arg(long, default_value = "free")]
    plan: Plan,
    /// Print the plan and change nothing.
    #[arg(long, conflicts_with = "rollback")]
    dry_run: bool,
    /// An existing directory the backup goes to (default: beside the database).
    #[arg(long)]
    backup_dir: Option<PathBuf>,
    /// Restore the backup given with --backup instead, after checking its SHA-256.
    #[arg(long, requires = "backup")]
    rollback: bool,
    /// The backup to restore (with --rollback).
    #[arg(long, requires = "rollback")]
    backup: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: AdoptArgs) -> Result<Exit, CliError> {
    if args.rollback {
        let Some(backup) = &args.backup else {
            return Err(CliError::Usage("--rollback needs --backup FILE".into()));
        };
        let report = adopt::rollback(&args.db, backup)?;
        if args.json {
            print_json(&report)?;
        } else {
            print(|out| {
                writeln!(
                    out,
                    "restored {} from {} (SHA-256 {} checked) in {:.2} s",
                    report.db.display(),
                    report.backup.display(),
                    report.sha256,
                    report.seconds
                )
            })?;
        }
        return Ok(Exit::Ok);
    }
    let Some(slug) = &args.tenant else {
        return Err(CliError::Usage("--tenant SLUG is required".into()));
    };
    let tenant: TenantId = slug.parse()?;
    let name = args.name.clone().unwrap_or_else(|| slug.clone());
    let mut options = AdoptOptions::new(tenant, name).dry_run(args.dry_run);
    options.plan = args.plan;
    if let Some(dir) = &args.backup_dir {
        // A typo must not leave a new directory tree behind (the library would create it).
        if !dir.is_dir() {
            return Err(CliError::Usage(format!(
                "--backup-dir {}: no such directory (create it first); nothing was changed",
                dir.display()
            )));
        }
    }
    options.backup_dir = args.backup_dir.clone();

    let mut bars = Bars::new();
    let outcome = adopt::adopt(&args.db, &options, &mut |p| bars.update(p))?;
    bars.finish();
    match &outcome {
        Outcome::AlreadyMultiTenant {
            path,
            schema_version,
            tenants,
        } => {
            if args.json {
                print_json(&outcome)?;
            } else {
                print(|out| {
                    writeln!(
                        out,
                        "{} is already a multi-tenant store (schema version {schema_version}, \
                         tenants: {}); nothing to do",
                        path.display(),
                        tenants.join(", ")
                    )
                })?;
            }
        }
        Outcome::Planned(plan) => {
            if args.json {
                print_json(&outcome)?;
            } else {
                print(|out| {
                    write_plan(out, plan)?;
                    writeln!(out, "dry run: nothing was changed")
                })?;
            }
        }
        Outcome::Adopted(report) => {
            if args.json {
                print_json(&outcome)?;
            } else {
                print(|out| write_report(out, &args.db, report))?;
            }
        }
    }
    Ok(Exit::Ok)
}

fn write_plan(out: &mut impl Write, plan: &AdoptPlan) -> io::Result<()> {
    let header = ["table", "rows", "indexes", "constraints", "extra columns"].map(String::from);
    let rows: Vec<Vec<String>> = plan
        .tables
        .iter()
        .map(|t| {
            vec![
                if t.present {
                    t.table.clone()
                } else {
                    format!("{} (new, empty)", t.table)
                },
                t.rows.to_string(),
                t.indexes.len().to_string(),
                t.constraints.len().to_string(),
                t.extra_columns.join(", "),
            ]
        })
        .collect();
    write_table(out, &header, &rows)?;
    writeln!(out)?;
    // What will be rescoped, table by table: every key, foreign key and index after adoption.
    for t in &plan.tables {
        writeln!(out, "{}:", t.table)?;
        for c in &t.constraints {
            writeln!(out, "    {c}")?;
        }
        for i in &t.indexes {
            writeln!(out, "    index {i}")?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} rows in {} tables to adopt as tenant {}",
        plan.total_rows,
        plan.tables.len(),
        plan.tenant
    )?;
    for (what, names) in [
        ("triggers kept", &plan.triggers),
        ("views kept", &plan.views),
        ("virtual tables left as they are", &plan.virtual_tables),
    ] {
        if !names.is_empty() {
            writeln!(out, "{what}: {}", names.join(", "))?;
        }
    }
    Ok(())
}

fn write_report(out: &mut impl Write, db: &Path, report: &AdoptReport) -> io::Result<()> {
    let header = [
        "table",
        "rows before",
        "rows after",
        "indexes",
        "constraints",
        "seconds",
    ]
    .map(String::from);
    let rows: Vec<Vec<String>> = report
        .tables
        .iter()
        .map(|t| {
            vec![
                t.table.clone(),
                t.rows_before.to_string(),
                t.rows_after.to_string(),
                t.indexes_rescoped.to_string(),
                t.constraints_rescoped.to_string(),
                format!("{:.3}", t.seconds),
            ]
        })
        .collect();
    write_table(out, &header, &rows)?;
    writeln!(
        out,
        "adopted {} as tenant {}: {} rows in {} tables, schema version {}, {:.2} s",
        db.display(),
        report.plan.tenant,
        report.total_rows_after,
        report.tables.len(),
        report.schema_version,
        report.seconds
    )?;
    writeln!(
        out,
        "backup: {} (SHA-256 {}); undo with `pos-node adopt --rollback --backup {} --db {}`",
        report.backup.path.display(),
        report.backup.sha256,
        report.backup.path.display(),
        db.display()
    )
}

/// Progress bars on stderr: hidden by indicatif when stderr is not a terminal.
struct Bars {
    multi: MultiProgress,
    backup: Option<ProgressBar>,
    total: Option<ProgressBar>,
    tables: HashMap<String, ProgressBar>,
    step: Option<ProgressBar>,
}

impl Bars {
    fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            backup: None,
            total: None,
            tables: HashMap::new(),
            step: None,
        }
    }

    fn style(template: &str) -> ProgressStyle {
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
    }

    fn update(&mut self, progress: Progress<'_>) {
        match progress {
            Progress::Planned { rows, .. } => {
                let bar = self.multi.add(ProgressBar::new(rows));
                bar.set_style(Self::style(
                    "{prefix:>26} [{bar:30}] {pos}/{len} rows {elapsed}",
                ));
                bar.set_prefix("all tables");
                self.total = Some(bar);
            }
            Progress::Backup { done, total } => {
                let bar = self.backup.get_or_insert_with(|| {
                    let bar = self.multi.add(ProgressBar::new(total));
                    bar.set_style(Self::style("{prefix:>26} [{bar:30}] {pos}/{len} pages"));
                    bar.set_prefix("backup");
                    bar
                });
                bar.set_length(total);
                bar.set_position(done);
            }
            Progress::TableStarted { table, rows } => {
                if let Some(bar) = self.backup.take() {
                    bar.finish();
                }
                let bar = self.multi.add(ProgressBar::new(rows));
                bar.set_style(Self::style(
                    "{prefix:>26} [{bar:30}] {pos}/{len} rows {msg}",
                ));
                bar.set_prefix(table.to_owned());
                bar.set_message("copying and checking");
                bar.enable_steady_tick(Duration::from_millis(200));
                self.tables.insert(table.to_owned(), bar);
            }
            Progress::TableDone { table, rows } => {
                if let Some(bar) = self.tables.remove(table) {
                    bar.set_position(rows);
                    bar.finish_with_message("done");
                }
                if let Some(total) = &self.total {
                    total.inc(rows);
                }
            }
            Progress::Step(step) => {
                if let Some(bar) = self.step.take() {
                    bar.finish();
                }
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(Self::style("{prefix:>26} {spinner} {elapsed}"));
                bar.set_prefix(step.to_string());
                bar.enable_steady_tick(Duration::from_millis(200));
                self.step = Some(bar);
            }
            _ => {}
        }
    }

    fn finish(&mut self) {
        for bar in self
            .backup
            .take()
            .into_iter()
            .chain(self.step.take())
            .chain(self.total.take())
        {
            bar.finish();
        }
    }
}
