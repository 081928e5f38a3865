//! The checks over the finished file, before commit: SQLite's own `foreign_key_check` and
//! `integrity_check`. Foreign keys are off during the rebuild (renames must not rewrite the
//! legacy tables' references, and the pragma cannot change inside a transaction), so this check
//! is what proves every reference, now including `tenant_id`, resolves. The first few problems
//! are reported; any at all fails adoption and rolls it back.

use rusqlite::Connection;

use super::error::{failed, AdoptError};
use super::Step;

/// `PRAGMA foreign_key_check`: no row references a missing row.
pub(super) fn foreign_keys(conn: &Connection) -> Result<(), AdoptError> {
    let broken: Vec<(String, String)> = {
        let mut stmt = conn
            .prepare("SELECT \"table\", parent FROM pragma_foreign_key_check LIMIT 10")
            .map_err(failed(Step::ForeignKeyCheck, None))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(failed(Step::ForeignKeyCheck, None))?;
        rows
    };
    if let Some((table, parent)) = broken.first() {
        return Err(AdoptError::Failed {
            step: Step::ForeignKeyCheck,
            table: Some(table.clone()),
            reason: format!("rows reference a missing {parent} row"),
        });
    }
    Ok(())
}

/// `PRAGMA integrity_check`: the file's structure and every index agree with the tables.
pub(super) fn integrity(conn: &Connection) -> Result<(), AdoptError> {
    let problems: Vec<String> = {
        let mut stmt = conn
            .prepare("PRAGMA integrity_check(10)")
            .map_err(failed(Step::IntegrityCheck, None))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .map_err(failed(Step::IntegrityCheck, None))?;
        rows
    };
    if problems != ["ok"] {
        return Err(AdoptError::Failed {
            step: Step::IntegrityCheck,
            table: None,
            reason: problems.join("; "),
        });
    }
    Ok(())
}
