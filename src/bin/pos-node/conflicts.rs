//! `pos-node conflicts list|resolve`: what the merge recorded for a person, and their answer.
//! A resolution is an operation like any other: the next sync takes it to every terminal.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::PathBuf;

use clap::Subcommand;
use pos_tenancy::catalog::{SyncConflict, User};
use pos_tenancy::{Actor, ListQuery, RowId, Tenant, TenantAccess, TenantId};

use crate::output::{print, write_json, write_table};
use crate::{open_existing, CliError, Outcome};

#[derive(Subcommand)]
pub(crate) enum ConflictsCommand {
    /// List the tenant's conflicts, oldest first.
    List {
        /// The database file.
        #[arg(long)]
        db: PathBuf,
        /// The tenant.
        #[arg(long)]
        tenant: TenantId,
        /// Only those not resolved yet.
        #[arg(long)]
        open: bool,
        /// Print a JSON array of conflicts, with both sides of each.
        #[arg(long)]
        json: bool,
    },
    /// Mark a conflict resolved, saying what was done about it (needs a manager or admin).
    Resolve {
        /// The database file.
        #[arg(long)]
        db: PathBuf,
        /// The tenant.
        #[arg(long)]
        tenant: TenantId,
        /// The conflict's id (from `conflicts list`).
        #[arg(long)]
        id: RowId,
        /// Who resolves it: a username or user id of the tenant.
        #[arg(long = "as", value_name = "USER")]
        user: String,
        /// What was done about it (1 to 1000 characters).
        #[arg(long)]
        resolution: String,
        /// Print the resolved conflict as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(cmd: ConflictsCommand) -> Result<Outcome, CliError> {
    match cmd {
        ConflictsCommand::List {
            db,
            tenant,
            open,
            json,
        } => {
            let store = open_existing(&db)?;
            let handle = store.tenant(&tenant)?;
            let conflicts = handle.conflicts(open)?;
            if json {
                print(|out| write_json(out, &conflicts))?;
            } else {
                let names = usernames(&handle, &conflicts)?;
                print(|out| write_list(out, &conflicts, &names, open))?;
            }
        }
        ConflictsCommand::Resolve {
            db,
            tenant,
            id,
            user,
            resolution,
            json,
        } => {
            let store = open_existing(&db)?;
            let handle = store.tenant(&tenant)?;
            let actor = find_actor(&handle, &user)?;
            let resolved = handle.resolve_conflict(&actor, id, &resolution)?;
            print(|out| {
                if json {
                    write_json(out, &resolved)
                } else {
                    writeln!(
                        out,
                        "resolved conflict {} ({} on {} {}) as {user}; the next sync takes it to \
                         every terminal",
                        resolved.id, resolved.kind, resolved.table_name, resolved.row_id
                    )
                }
            })?;
        }
    }
    Ok(Outcome::Ok)
}

/// The actor for a username or user id of the tenant.
fn find_actor(handle: &Tenant<'_>, user: &str) -> Result<Actor, CliError> {
    if let Ok(id) = user.parse::<RowId>() {
        return Ok(handle.actor(id)?);
    }
    let found = handle.list::<User>(&ListQuery::new().eq("username", user).limit(1))?;
    match found.rows.first() {
        Some(u) => Ok(handle.actor(u.id)?),
        None => Err(CliError::Usage(format!(
            "tenant {} has no user {user:?} (give a username or a user id)",
            handle.tenant_id()
        ))),
    }
}

/// The usernames of those who resolved the conflicts listed.
fn usernames(
    handle: &Tenant<'_>,
    conflicts: &[SyncConflict],
) -> Result<HashMap<RowId, String>, CliError> {
    let mut names = HashMap::new();
    for id in conflicts.iter().filter_map(|c| c.resolved_by) {
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(id) {
            if let Some(u) = handle.get::<User>(id)? {
                slot.insert(u.username);
            }
        }
    }
    Ok(names)
}

/// At most `max` characters of `text`, with an ellipsis when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn write_list(
    out: &mut impl Write,
    conflicts: &[SyncConflict],
    names: &HashMap<RowId, String>,
    open_only: bool,
) -> io::Result<()> {
    let header = ["id", "kind", "table", "row", "column", "detected", "status"].map(String::from);
    let rows: Vec<Vec<String>> = conflicts
        .iter()
        .map(|c| {
            let status = match c.resolved_at {
                None => "open".to_owned(),
                Some(at) => {
                    let by = c
                        .resolved_by
                        .map(|u| names.get(&u).cloned().unwrap_or_else(|| u.to_string()))
                        .unwrap_or_else(|| "?".to_owned());
                    let note = c.resolution.as_deref().unwrap_or("");
                    format!("resolved {at} by {by}: {}", clip(note, 40))
                }
            };
            vec![
                c.id.to_string(),
                c.kind.clone(),
                c.table_name.clone(),
                c.row_id.clone(),
                c.column_name.clone().unwrap_or_default(),
                c.detected_at.to_string(),
                status,
            ]
        })
        .collect();
    write_table(out, &header, &rows)?;
    let open = conflicts.iter().filter(|c| c.resolved_at.is_none()).count();
    if open_only {
        writeln!(out, "({open} open)")
    } else {
        writeln!(out, "({} conflicts, {open} open)", conflicts.len())
    }
}
