//! `pos-node export`, `pos-node restore` and `pos-node tenant delete`: one tenant's rows out
//! of the node, back in, and offboarding.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pos_tenancy::{IfUnsynced, TableCopied, TenantExport, TenantId};

use crate::output::{print, print_json};
use crate::{open_existing, CliError, Outcome};

#[derive(Args)]
pub(crate) struct ExportArgs {
    /// The node database.
    #[arg(long)]
    db: PathBuf,
    /// The tenant to export (its slug).
    #[arg(long)]
    tenant: String,
    /// The export file to write (must not exist); its SHA-256 goes beside it.
    #[arg(long)]
    to: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct RestoreArgs {
    /// The node database.
    #[arg(long)]
    db: PathBuf,
    /// The tenant whose rows are replaced (its slug).
    #[arg(long)]
    tenant: String,
    /// The tenant's export (written by `pos-node export`).
    #[arg(long)]
    from: PathBuf,
    /// Restore even over operations not yet synced, losing them.
    #[arg(long)]
    force: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct DeleteArgs {
    /// The node database.
    #[arg(long)]
    db: PathBuf,
    /// The tenant to offboard (its slug).
    #[arg(long)]
    id: String,
    /// Where its export goes first (must not exist).
    #[arg(long)]
    export_to: PathBuf,
    /// Delete even with operations not yet synced, losing them.
    #[arg(long)]
    force: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn if_unsynced(force: bool) -> IfUnsynced {
    if force {
        IfUnsynced::Discard
    } else {
        IfUnsynced::Refuse
    }
}

pub(crate) fn export(args: ExportArgs) -> Result<Outcome, CliError> {
    let tenant: TenantId = args.tenant.parse()?;
    let store = open_existing(&args.db)?;
    let mut bar = TablesBar::new("export");
    let export = store.export_tenant(&tenant, &args.to, &mut |t| bar.update(t));
    bar.finish();
    let export = export?;
    if args.json {
        print_json(&export)?;
    } else {
        print(|out| write_export(out, &export))?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn restore(args: RestoreArgs) -> Result<Outcome, CliError> {
    let tenant: TenantId = args.tenant.parse()?;
    let store = open_existing(&args.db)?;
    let mut bar = TablesBar::new("restore");
    let restored = store.restore_tenant(&tenant, &args.from, if_unsynced(args.force), &mut |t| {
        bar.update(t)
    });
    bar.finish();
    let restored = restored?;
    if args.json {
        print_json(&restored)?;
    } else {
        print(|out| {
            writeln!(
                out,
                "restored tenant {} from {} (SHA-256 {} checked): {} rows in {} tables replaced \
                 {} rows, {:.2} s",
                restored.tenant,
                restored.from.display(),
                restored.sha256,
                restored.rows,
                restored.tables.len(),
                restored.rows_replaced,
                restored.seconds
            )?;
            if restored.registered {
                writeln!(out, "the tenant was registered again from the export")?;
            }
            if restored.unsynced_discarded > 0 {
                writeln!(
                    out,
                    "{} operations not yet synced and not in the export were lost (--force)",
                    restored.unsynced_discarded
                )?;
            }
            writeln!(out, "restore job {}", restored.restore_job_id)
        })?;
    }
    Ok(Outcome::Ok)
}

pub(crate) fn delete(args: DeleteArgs) -> Result<Outcome, CliError> {
    let tenant: TenantId = args.id.parse()?;
    let store = open_existing(&args.db)?;
    let mut bar = TablesBar::new("export");
    let deleted = store.delete_tenant(
        &tenant,
        &args.export_to,
        if_unsynced(args.force),
        &mut |t| bar.update(t),
    );
    bar.finish();
    let deleted = deleted?;
    if args.json {
        print_json(&deleted)?;
    } else {
        print(|out| {
            write_export(out, &deleted.export)?;
            writeln!(
                out,
                "deleted tenant {}: {} rows; {} tables with a tenant_id checked, none holds a \
                 row of it{}",
                deleted.tenant,
                deleted.rows_deleted,
                deleted.tables_proven_empty,
                if deleted.unsynced_discarded > 0 {
                    format!(
                        " ({} operations not yet synced were lost, --force)",
                        deleted.unsynced_discarded
                    )
                } else {
                    String::new()
                }
            )
        })?;
    }
    Ok(Outcome::Ok)
}

fn write_export(out: &mut impl Write, export: &TenantExport) -> io::Result<()> {
    writeln!(
        out,
        "exported tenant {} to {}: {} rows in {} tables, {} bytes, {:.2} s",
        export.tenant,
        export.path.display(),
        export.rows,
        export.tables.len(),
        export.bytes,
        export.seconds
    )?;
    writeln!(
        out,
        "SHA-256 {} (also in {}.sha256)",
        export.sha256,
        export.path.display()
    )
}

/// A bar of tables on stderr when it is a terminal; nothing otherwise (also `tier`'s).
pub(crate) struct TablesBar(ProgressBar);

impl TablesBar {
    pub(crate) fn new(prefix: &'static str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(ProgressBar::hidden());
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} tables {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(prefix);
        Self(bar)
    }

    pub(crate) fn update(&mut self, t: TableCopied) {
        self.0.set_length(t.total as u64);
        self.0.set_position(t.done as u64);
        self.0.set_message(format!("{} ({} rows)", t.table, t.rows));
    }

    pub(crate) fn finish(self) {
        self.0.finish_and_clear();
    }
}
