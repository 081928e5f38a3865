//! `pos-node status`: where each tenant's sync stands on this node, as the engine recorded it
//! in the database (so it works while `pos-node sync` runs in another process).

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;
use pos_tenancy::sync::SyncStatus;
use pos_tenancy::{TenantId, Timestamp};

use crate::output::{print, warn, write_json};
use crate::{open_existing, CliError, Outcome};

#[derive(Args)]
pub(crate) struct StatusArgs {
    /// The database file.
    #[arg(long)]
    db: PathBuf,
    /// Only this tenant (default: every tenant of the node).
    #[arg(long)]
    tenant: Option<TenantId>,
    /// Print a JSON array, one status object per tenant.
    #[arg(long)]
    json: bool,
}

/// Whether a status needs a person: stalled, failing, or holding operations the server
/// refused.
fn has_problems(s: &SyncStatus) -> bool {
    s.stalled || s.last_error.is_some() || s.set_aside > 0
}

pub(crate) fn run(args: StatusArgs) -> Result<Outcome, CliError> {
    let store = open_existing(&args.db)?;
    let (statuses, unreadable) = match args.tenant {
        Some(t) => (vec![store.sync_status(&t)?], 0),
        // One tenant whose own file cannot be read does not hide every other tenant's status:
        // it is named on stderr, and makes the exit 1.
        None => {
            let mut statuses = Vec::new();
            let mut unreadable = 0;
            for t in store.tenants()? {
                match store.sync_status(&t.id) {
                    Ok(s) => statuses.push(s),
                    Err(e) => {
                        unreadable += 1;
                        warn(&format!("tenant {}: its status cannot be read: {e}", t.id));
                    }
                }
            }
            (statuses, unreadable)
        }
    };
    print(|out| {
        if args.json {
            write_json(out, &statuses)
        } else {
            write_text(out, &statuses, &args.db.display().to_string())
        }
    })?;
    Ok(if unreadable > 0 || statuses.iter().any(has_problems) {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}

fn when(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "never".to_owned(), |t| t.to_string())
}

fn write_text(out: &mut impl Write, statuses: &[SyncStatus], db: &str) -> io::Result<()> {
    if statuses.is_empty() {
        return writeln!(out, "no tenants on this node");
    }
    for (i, s) in statuses.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let state = match (&s.last_error, s.online, s.last_pull_at.or(s.last_push_at)) {
            (None, _, None) => "never synced",
            (_, false, _) => "offline",
            (Some(_), true, _) => "online, failing",
            (None, true, _) if s.stalled => "online, stalled",
            (None, true, _) if s.pending == 0 && s.cursor >= s.server_high => "online, in step",
            (None, true, _) => "online",
        };
        writeln!(out, "{}: {state}", s.tenant)?;
        let oldest = s
            .oldest_pending_at
            .map(|t| format!(" (oldest {t})"))
            .unwrap_or_default();
        writeln!(out, "  pending:        {}{oldest}", s.pending)?;
        writeln!(out, "  set aside:      {}", s.set_aside)?;
        writeln!(out, "  cursor:         {} of {}", s.cursor, s.server_high)?;
        writeln!(out, "  last push:      {}", when(s.last_push_at))?;
        writeln!(out, "  last pull:      {}", when(s.last_pull_at))?;
        writeln!(out, "  last progress:  {}", when(s.last_progress_at))?;
        let see = if s.open_conflicts > 0 || s.set_aside > 0 {
            format!(
                " (pos-node conflicts list --db {db} --tenant {} --open)",
                s.tenant
            )
        } else {
            String::new()
        };
        writeln!(out, "  open conflicts: {}{see}", s.open_conflicts)?;
        writeln!(
            out,
            "  stalled:        {}",
            if s.stalled { "yes" } else { "no" }
        )?;
        match &s.last_error {
            None => writeln!(out, "  last error:     none")?,
            Some(e) => {
                writeln!(
                    out,
                    "  last error:     {} failed ({}) at {}: {}",
                    e.step,
                    e.class,
                    when(e.at),
                    e.message
                )?;
                writeln!(out, "  what to do:     {}", e.action)?;
            }
        }
    }
    Ok(())
}
