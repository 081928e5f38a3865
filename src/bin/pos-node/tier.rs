//! `pos-node promote`, `demote`, `purge` and `storage`: a tenant in a database file of its
//! own beside the node's shared file (stage 2 of the isolation plan), the way back, the
//! removal of the copies a move keeps for its rollback window, and the node's automatic rule.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};
use pos_tenancy::{
    MoveReason, PurgeReport, StorageSettings, Store, TenantId, TenantMove, Tier, Timestamp,
    MAX_KEEP_DAYS,
};
use serde::Serialize;

use crate::output::{print, print_json, warn, write_table};
use crate::tenant_io::TablesBar;
use crate::{open_existing, CliError, Outcome};

#[derive(Args)]
#[command(group(ArgGroup::new("which").required(true).args(["tenant", "auto"])))]
pub(crate) struct PromoteArgs {
    /// The node database (the shared file).
    #[arg(long)]
    db: PathBuf,
    /// The tenant to move into a file of its own (its slug).
    #[arg(long)]
    tenant: Option<String>,
    /// Promote every tenant the node's automatic rule finds due (see `pos-node storage`).
    #[arg(long, conflicts_with = "keep_days")]
    auto: bool,
    /// Days the shared copy is kept for a way back (default: the node's setting, 30).
    #[arg(long, value_name = "DAYS", value_parser = keep_days)]
    keep_days: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct DemoteArgs {
    /// The node database (the shared file).
    #[arg(long)]
    db: PathBuf,
    /// The tenant to move back into the shared file (its slug).
    #[arg(long)]
    tenant: String,
    /// Days the tenant's own file is kept for a way back (default: the node's setting, 30).
    #[arg(long, value_name = "DAYS", value_parser = keep_days)]
    keep_days: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct PurgeArgs {
    /// The node database (the shared file).
    #[arg(long)]
    db: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[command(group(
    ArgGroup::new("change")
        .multiple(true)
        .args(["auto_promote_users", "auto_promote_rows", "keep_days"])
        .requires("set")
))]
pub(crate) struct StorageArgs {
    /// The node database (the shared file).
    #[arg(long)]
    db: PathBuf,
    /// Change the settings named (the others stay as they are) instead of showing them.
    #[arg(long, requires = "change")]
    set: bool,
    /// Promote a tenant once it has this many active users (the plan: 50), or `off`.
    #[arg(long, value_name = "N|off", value_parser = threshold::<u32>)]
    auto_promote_users: Option<Threshold<u32>>,
    /// Promote a tenant once it has this many rows across its tables, or `off`.
    #[arg(long, value_name = "N|off", value_parser = threshold::<u64>)]
    auto_promote_rows: Option<Threshold<u64>>,
    /// Days a move keeps the copy it leaves behind (0: `purge` may remove it at once).
    #[arg(long, value_name = "DAYS", value_parser = keep_days)]
    keep_days: Option<u32>,
    /// Print the settings (and the tenants) as JSON.
    #[arg(long)]
    json: bool,
}

/// A threshold of the automatic rule: at least 1, or off.
#[derive(Clone, Copy)]
struct Threshold<T>(Option<T>);

fn threshold<T>(text: &str) -> Result<Threshold<T>, String>
where
    T: std::str::FromStr + PartialEq + From<u8>,
{
    if text == "off" {
        return Ok(Threshold(None));
    }
    match text.parse::<T>() {
        Ok(n) if n == T::from(0) => {
            Err("a threshold is at least 1; say `off` to turn it off".into())
        }
        Ok(n) => Ok(Threshold(Some(n))),
        Err(_) => Err("a whole number of at least 1, or `off`".into()),
    }
}

fn keep_days(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(days) if days <= MAX_KEEP_DAYS => Ok(days),
        _ => Err(format!("a whole number of days from 0 to {MAX_KEEP_DAYS}")),
    }
}

pub(crate) fn promote(args: PromoteArgs) -> Result<Outcome, CliError> {
    // Everything is checked before the database is opened.
    let tenant: Option<TenantId> = args.tenant.as_deref().map(str::parse).transpose()?;
    let store = open_existing(&args.db)?;
    let Some(tenant) = tenant else {
        return auto(&store, args.json);
    };
    let mut bar = TablesBar::new("promote");
    let moved = store.promote_tenant(&tenant, args.keep_days, MoveReason::Operator, &mut |t| {
        bar.update(t)
    });
    bar.finish();
    report_move(&moved?, args.json)
}

pub(crate) fn demote(args: DemoteArgs) -> Result<Outcome, CliError> {
    let tenant: TenantId = args.tenant.parse()?;
    let store = open_existing(&args.db)?;
    let mut bar = TablesBar::new("demote");
    let moved = store.demote_tenant(&tenant, args.keep_days, MoveReason::Operator, &mut |t| {
        bar.update(t)
    });
    bar.finish();
    report_move(&moved?, args.json)
}

fn report_move(moved: &TenantMove, json: bool) -> Result<Outcome, CliError> {
    if json {
        print_json(moved)?;
    } else {
        print(|out| write_move(out, moved))?;
    }
    Ok(Outcome::Ok)
}

fn write_move(out: &mut impl Write, m: &TenantMove) -> io::Result<()> {
    let (verb, now_in) = if m.direction == "promote" {
        ("promoted", format!("its own file {}", m.file.display()))
    } else {
        ("demoted", "the shared file".to_owned())
    };
    writeln!(
        out,
        "{verb} tenant {}{}: it now lives in {now_in}; {} rows in {} tables checked, {:.2} s",
        m.tenant,
        if m.reason == MoveReason::Auto {
            " (automatic rule)"
        } else {
            ""
        },
        m.rows,
        m.tables.len(),
        m.seconds
    )?;
    writeln!(out, "SHA-256 {}", m.sha256)?;
    writeln!(
        out,
        "kept until {} for a way back: {}; move {}",
        m.keep_until, m.kept, m.id
    )
}

/// What `promote --auto --json` prints.
#[derive(Serialize)]
struct AutoReport<'a> {
    /// Whether a threshold is set.
    rule_on: bool,
    settings: &'a StorageSettings,
    moves: &'a [TenantMove],
}

fn auto(store: &Store, json: bool) -> Result<Outcome, CliError> {
    let settings = store.storage_settings()?;
    let shared_before: Vec<TenantId> = store
        .tenants()?
        .into_iter()
        .filter(|t| t.tier == Tier::Shared)
        .map(|t| t.id)
        .collect();
    let mut bar = TablesBar::new("promote");
    let moves = store.auto_promote(&mut |_, t| bar.update(t));
    bar.finish();
    let moves = match moves {
        Ok(moves) => moves,
        Err(e) => {
            // The rule stops at its first failure and the moves before it stay done; the error
            // does not carry them, so the registry says which they were.
            let moved: Vec<String> = store
                .tenants()
                .unwrap_or_default()
                .into_iter()
                .filter(|t| t.tier == Tier::Dedicated && shared_before.contains(&t.id))
                .map(|t| t.id.to_string())
                .collect();
            if !moved.is_empty() {
                warn(&format!(
                    "promoted before the failure, and kept so: {}",
                    moved.join(", ")
                ));
            }
            return Err(e.into());
        }
    };
    let rule_on = settings.auto_promote_users.is_some() || settings.auto_promote_rows.is_some();
    if json {
        print_json(&AutoReport {
            rule_on,
            settings: &settings,
            moves: &moves,
        })?;
        return Ok(Outcome::Ok);
    }
    print(|out| {
        if !rule_on {
            return writeln!(
                out,
                "the automatic rule is off (turn it on with `pos-node storage --set \
                 --auto-promote-users N` or `--auto-promote-rows N`); nothing was moved"
            );
        }
        for m in &moves {
            write_move(out, m)?;
        }
        if moves.is_empty() {
            writeln!(
                out,
                "no tenant is due ({}); nothing was moved",
                rule_text(&settings)
            )
        } else {
            writeln!(
                out,
                "{} tenants promoted ({})",
                moves.len(),
                rule_text(&settings)
            )
        }
    })?;
    Ok(Outcome::Ok)
}

/// The automatic rule in words.
fn rule_text(s: &StorageSettings) -> String {
    let mut parts = Vec::new();
    if let Some(users) = s.auto_promote_users {
        parts.push(format!("at {users} active users"));
    }
    if let Some(rows) = s.auto_promote_rows {
        parts.push(format!("at {rows} rows"));
    }
    if parts.is_empty() {
        "off".to_owned()
    } else {
        format!("promote {}", parts.join(" or "))
    }
}

pub(crate) fn purge(args: PurgeArgs) -> Result<Outcome, CliError> {
    let store = open_existing(&args.db)?;
    let report = store.purge_moved_copies(Timestamp::now())?;
    if args.json {
        print_json(&report)?;
    } else {
        print(|out| write_purge(out, &report))?;
    }
    Ok(Outcome::Ok)
}

fn write_purge(out: &mut impl Write, report: &PurgeReport) -> io::Result<()> {
    for p in &report.purged {
        let tenant = p
            .tenant
            .as_ref()
            .map_or_else(|| "no tenant".to_owned(), |t| format!("tenant {t}"));
        let left_by = p
            .move_id
            .map_or_else(|| "no move names it".to_owned(), |id| format!("move {id}"));
        match &p.file {
            Some(file) => writeln!(
                out,
                "removed the file {} ({tenant}, {left_by})",
                file.display()
            )?,
            None => writeln!(
                out,
                "removed the {} of {tenant}: {} rows ({left_by})",
                p.what, p.rows
            )?,
        }
    }
    for k in &report.kept {
        let what = match &k.file {
            Some(file) => format!("the file {}", file.display()),
            None => format!("the {}", k.what),
        };
        writeln!(
            out,
            "kept until {}: {what} of tenant {} (move {})",
            k.keep_until, k.tenant, k.move_id
        )?;
    }
    writeln!(
        out,
        "purge: {} copies removed, {} still inside their window",
        report.purged.len(),
        report.kept.len()
    )
}

/// One tenant in `storage`: where it lives.
#[derive(Serialize)]
struct TenantHome {
    id: TenantId,
    tier: Tier,
    /// Its own file, for a dedicated tenant.
    file: Option<PathBuf>,
    /// Why its file cannot be used, if it cannot.
    problem: Option<String>,
}

#[derive(Serialize)]
struct StorageView {
    settings: StorageSettings,
    tenants: Vec<TenantHome>,
}

pub(crate) fn storage(args: StorageArgs) -> Result<Outcome, CliError> {
    let store = open_existing(&args.db)?;
    let tenants = homes(&store, &args.db)?;
    if args.set {
        let mut settings = store.storage_settings()?;
        if let Some(Threshold(users)) = args.auto_promote_users {
            settings = settings.auto_promote_users(users);
        }
        if let Some(Threshold(rows)) = args.auto_promote_rows {
            settings = settings.auto_promote_rows(rows);
        }
        if let Some(days) = args.keep_days {
            settings = settings.keep_days(days);
        }
        store.set_storage_settings(&settings)?;
        let settings = store.storage_settings()?;
        if args.json {
            print_json(&settings)?;
        } else {
            print(|out| {
                writeln!(out, "storage settings changed")?;
                write_settings(out, &settings)
            })?;
        }
        return Ok(Outcome::Ok);
    }
    let view = StorageView {
        settings: store.storage_settings()?,
        tenants,
    };
    if args.json {
        print_json(&view)?;
    } else {
        print(|out| write_storage(out, &view))?;
    }
    Ok(if view.tenants.iter().all(|t| t.problem.is_none()) {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}

/// Each tenant's tier and file. Refuses a tenant's own file given as the node's: it holds a
/// dedicated tenant that lives in it, which the shared file never does.
fn homes(store: &Store, db: &Path) -> Result<Vec<TenantHome>, CliError> {
    let mut homes = Vec::new();
    for t in store.tenants()? {
        let (file, problem) = if t.tier == Tier::Shared {
            (None, None)
        } else {
            match store.tenant_home_path(&t.id) {
                Ok(Some(file)) => (Some(file), None),
                Ok(None) => {
                    return Err(CliError::Usage(format!(
                        "{} is tenant {}'s own file, not a node's shared file: give the \
                         node's database (nothing was changed)",
                        db.display(),
                        t.id
                    )))
                }
                Err(pos_tenancy::Error::TenantFile { path, reason, .. }) => {
                    (Some(path), Some(reason))
                }
                Err(e) => (None, Some(e.to_string())),
            }
        };
        homes.push(TenantHome {
            id: t.id,
            tier: t.tier,
            file,
            problem,
        });
    }
    Ok(homes)
}

fn write_settings(out: &mut impl Write, s: &StorageSettings) -> io::Result<()> {
    writeln!(out, "automatic rule:  {}", rule_text(s))?;
    writeln!(
        out,
        "rollback window: {} days (a move keeps the copy it leaves behind this long)",
        s.keep_days
    )
}

fn write_storage(out: &mut impl Write, view: &StorageView) -> io::Result<()> {
    write_settings(out, &view.settings)?;
    writeln!(out)?;
    let header = ["tenant", "tier", "file"].map(String::from);
    let rows: Vec<Vec<String>> = view
        .tenants
        .iter()
        .map(|t| {
            let mut file = t
                .file
                .as_ref()
                .map(|f| f.display().to_string())
                .unwrap_or_default();
            if let Some(problem) = &t.problem {
                file.push_str(&format!(" (PROBLEM: {problem})"));
            }
            vec![t.id.to_string(), t.tier.to_string(), file]
        })
        .collect();
    write_table(out, &header, &rows)
}
