//! `pos-node tenant ...`: the tenant registry.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use pos_tenancy::{NewTenant, Plan, Store, TenantId, TenantInfo, TenantSettings, TenantStatus};

use crate::output::{print, print_json, printable, write_table};
use crate::{open_existing, CliError, Outcome};

#[derive(Subcommand)]
pub(crate) enum TenantCommand {
    /// Register a tenant.
    Add {
        /// The database file.
        #[arg(long)]
        db: PathBuf,
        /// Slug: lowercase letters, digits and '-', 1 to 64 characters.
        #[arg(long)]
        id: String,
        /// Trading name.
        #[arg(long)]
        name: String,
        /// free, pro or enterprise.
        #[arg(long, default_value = "free")]
        plan: Plan,
        /// Print the new tenant as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every tenant.
    List {
        /// The database file.
        #[arg(long)]
        db: PathBuf,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show one tenant with its plan, limits and settings.
    Show(Target),
    /// Suspend a tenant: its data stays readable but cannot be written.
    Suspend(Target),
    /// Make a suspended or cancelled tenant active again.
    Activate(Target),
    /// Cancel a tenant: its data can be neither read nor written.
    Cancel(Target),
    /// Offboard a tenant: export its rows, then delete every one of them from this node.
    Delete(crate::tenant_io::DeleteArgs),
    /// Replace a standalone node's tenant settings with a JSON file (the whole settings, as
    /// `tenant show --json` prints them under "settings"), validated as `pos-central`
    /// validates them; nothing changes if they are invalid. On a node that syncs, the
    /// settings `pos-central` serves replace these at the next round.
    Settings {
        #[command(flatten)]
        target: Target,
        /// The settings file, or - for standard input.
        #[arg(long)]
        file: PathBuf,
    },
}

#[derive(Args)]
pub(crate) struct Target {
    /// The database file.
    #[arg(long)]
    db: PathBuf,
    /// The tenant's slug.
    #[arg(long)]
    id: String,
    /// Print the tenant as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(cmd: TenantCommand) -> Result<Outcome, CliError> {
    match cmd {
        TenantCommand::Add {
            db,
            id,
            name,
            plan,
            json,
        } => {
            let id: TenantId = id.parse()?;
            let store = Store::open(&db)?;
            let info = store.add_tenant(&NewTenant::new(id, &name).plan(plan))?;
            show(&info, json)?;
        }
        TenantCommand::List { db, json } => {
            let tenants = open_existing(&db)?.tenants()?;
            if json {
                print_json(&tenants)?;
            } else {
                let header = ["id", "name", "status", "plan", "tier", "brand"].map(String::from);
                let rows: Vec<Vec<String>> = tenants
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.to_string(),
                            printable(&t.name).into_owned(),
                            t.status.to_string(),
                            t.plan.to_string(),
                            t.tier.to_string(),
                            printable(&t.settings.brand_name).into_owned(),
                        ]
                    })
                    .collect();
                print(|out| write_table(out, &header, &rows))?;
            }
        }
        TenantCommand::Show(t) => {
            let store = open_existing(&t.db)?;
            show(&store.tenant_info(&t.id.parse()?)?, t.json)?;
        }
        TenantCommand::Suspend(t) => set_status(t, TenantStatus::Suspended)?,
        TenantCommand::Activate(t) => set_status(t, TenantStatus::Active)?,
        TenantCommand::Cancel(t) => set_status(t, TenantStatus::Cancelled)?,
        TenantCommand::Delete(args) => return crate::tenant_io::delete(args),
        TenantCommand::Settings { target, file } => {
            // Everything is checked before the database is opened.
            let id: TenantId = target.id.parse()?;
            let settings = read_settings(&file)?;
            let store = open_existing(&target.db)?;
            show(&store.set_tenant_settings(&id, &settings)?, target.json)?;
        }
    }
    Ok(Outcome::Ok)
}

/// Settings from a JSON file (or standard input for `-`), parsed and validated by the same
/// function `pos-central tenant settings` uses ([`TenantSettings::from_json`]).
fn read_settings(file: &Path) -> Result<TenantSettings, CliError> {
    let name = file.display().to_string();
    let mut text = String::new();
    let read = if file == Path::new("-") {
        io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(file).map(|t| text = t)
    };
    read.map_err(|e| CliError::ReadFile(name.clone(), e))?;
    TenantSettings::from_json(&text).map_err(|e| CliError::Settings(name, e))
}

fn set_status(t: Target, status: TenantStatus) -> Result<(), CliError> {
    let store = open_existing(&t.db)?;
    let info = store.set_tenant_status(&t.id.parse()?, status)?;
    show(&info, t.json)
}

fn show(t: &TenantInfo, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(t);
    }
    print(|out| write_info(out, t))
}

/// The tenant as text; what a tenant typed (name, brand) is escaped, so it cannot act on the
/// terminal (see [`printable`]).
fn write_info(out: &mut impl Write, t: &TenantInfo) -> io::Result<()> {
    writeln!(out, "id:          {}", t.id)?;
    writeln!(out, "name:        {}", printable(&t.name))?;
    writeln!(out, "status:      {}", t.status)?;
    writeln!(
        out,
        "plan:        {} (max {} users, {} API calls a month)",
        t.plan, t.limits.max_users, t.limits.max_api_calls_month
    )?;
    writeln!(out, "tier:        {}", t.tier)?;
    writeln!(out, "brand:       {}", printable(&t.settings.brand_name))?;
    writeln!(out, "currency:    {}", t.settings.currency)?;
    writeln!(out, "locale:      {}", t.settings.locale)?;
    // Every switch with its state in force (named or by default), so "off" is never hidden.
    let switches: Vec<String> = pos_tenancy::Feature::ALL
        .iter()
        .map(|f| format!("{f} {}", if t.settings.feature(*f) { "on" } else { "off" }))
        .collect();
    writeln!(out, "features:    {}", switches.join(", "))?;
    writeln!(out, "created:     {}", t.created_at)
}
