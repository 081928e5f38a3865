//! The rebuild, inside the caller's transaction: SQLite's table-rebuild procedure (ALTER TABLE
//! cannot change constraints) applied to every table of the store at once.
//!
//! [`rebuild`] holds the order of the steps, and the order is the point: legacy objects are set
//! aside before the schema that reuses their names is created; the schema's secondary indexes
//! and the triggers that keep balances are set aside during the copy and built once after it;
//! the legacy tables are dropped last, so that the pages they free are not reused (and
//! journaled again) by the copies; views and triggers come back once their tables exist; the
//! checks run over the finished file. Any error returns at once and leaves the transaction to
//! roll back, so the file is either what it was or fully adopted.

use std::collections::BTreeMap;

use rusqlite::Connection;

use super::audit::{Audit, ReferenceTable};
use super::error::{failed, AdoptError};
use super::indexes::balance_triggers;
use super::report::{Laps, TableReport};
use super::{checks, copy, indexes, Progress, Step, LEGACY_PREFIX};
use crate::backup::ident;
use crate::ids::Timestamp;
use crate::tenant::settings::NewTenant;

/// `(name, sql)` of schema objects set aside during the copy and put back after it.
type Objects = Vec<(String, String)>;

/// The rebuild inside the caller's transaction; any error leaves the transaction to roll back.
pub(super) fn rebuild(
    conn: &Connection,
    audit: &Audit,
    reference: &BTreeMap<&'static str, ReferenceTable>,
    tenant: &NewTenant,
    steps: &mut BTreeMap<Step, f64>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(Vec<TableReport>, u64), AdoptError> {
    let mut laps = Laps::new(steps);
    set_aside(conn, audit)?;
    laps.lap(Step::Prepare);

    let (schema_indexes, balance_triggers) = create_schema(conn, tenant)?;
    laps.lap(Step::CreateSchema);

    let (reports, total_after) =
        copy::copy_tables(conn, audit, reference, tenant, &mut laps, progress)?;

    progress(Progress::Step(Step::Index));
    indexes::build_indexes(conn, audit, &schema_indexes)?;
    laps.lap(Step::Index);

    // After the indexes: the stock sum reads the covering ledger index in key order, no sort.
    progress(Progress::Step(Step::Balances));
    indexes::fill_balances(conn, &balance_triggers)?;
    laps.lap(Step::Balances);

    drop_legacy_tables(conn, audit)?;
    laps.lap(Step::Restore);
    indexes::analyze(conn)?;
    laps.lap(Step::Index);

    progress(Progress::Step(Step::Restore));
    restore_views_and_triggers(conn, audit)?;
    laps.lap(Step::Restore);

    progress(Progress::Step(Step::ForeignKeyCheck));
    checks::foreign_keys(conn)?;
    laps.lap(Step::ForeignKeyCheck);

    progress(Progress::Step(Step::IntegrityCheck));
    checks::integrity(conn)?;
    laps.lap(Step::IntegrityCheck);
    Ok((reports, total_after))
}

/// Prepare: sets the legacy objects aside.
fn set_aside(conn: &Connection, audit: &Audit) -> Result<(), AdoptError> {
    // Prepare: triggers and views go first (they name the tables), then the legacy indexes
    // (index names are global and the schema reuses them), then the tables are set aside.
    for (name, _) in audit.triggers.iter() {
        conn.execute_batch(&format!("DROP TRIGGER {}", ident(name)))
            .map_err(failed(Step::Prepare, None))?;
    }
    for (name, _) in audit.views.iter() {
        conn.execute_batch(&format!("DROP VIEW {}", ident(name)))
            .map_err(failed(Step::Prepare, None))?;
    }
    for index in &audit.legacy_indexes {
        conn.execute_batch(&format!("DROP INDEX {}", ident(index)))
            .map_err(failed(Step::Prepare, None))?;
    }
    for t in audit.tables.iter().filter(|t| t.present) {
        conn.execute_batch(&format!(
            "ALTER TABLE {} RENAME TO {}",
            ident(t.name),
            ident(&format!("{LEGACY_PREFIX}{}", t.name))
        ))
        .map_err(failed(Step::Prepare, Some(t.name)))?;
    }
    Ok(())
}

/// Creates the current schema and registers the tenant; returns the schema's secondary indexes
/// and the balance triggers, both dropped until the rows are in.
fn create_schema(conn: &Connection, tenant: &NewTenant) -> Result<(Objects, Objects), AdoptError> {
    // The current schema, exactly as the migrations make it. Its secondary indexes are built
    // after the copy: one sorted build per index instead of a random insert per row.
    crate::store::install_schema(conn, Timestamp::now()).map_err(|e| AdoptError::Failed {
        step: Step::CreateSchema,
        table: None,
        reason: e.to_string(),
    })?;
    if !crate::store::insert_tenant(conn, tenant, Timestamp::now()).map_err(|e| {
        AdoptError::Failed {
            step: Step::CreateSchema,
            table: Some("tenants".into()),
            reason: e.to_string(),
        }
    })? {
        return Err(AdoptError::Failed {
            step: Step::CreateSchema,
            table: Some("tenants".into()),
            reason: "the tenant exists already".into(),
        });
    }
    let schema_indexes: Vec<(String, String)> = {
        let mut stmt = conn
            .prepare(
                "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL \
                 AND tbl_name <> 'tenants' ORDER BY name",
            )
            .map_err(failed(Step::CreateSchema, None))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(failed(Step::CreateSchema, None))?;
        rows
    };
    for (name, _) in &schema_indexes {
        conn.execute_batch(&format!("DROP INDEX {}", ident(name)))
            .map_err(failed(Step::CreateSchema, None))?;
    }
    // The triggers that keep the balances would run once per copied ledger row (an upsert
    // each); they are set aside and the balances filled with one grouped sum per table after
    // the copy, then the triggers are put back as the migrations wrote them.
    let balance_triggers = balance_triggers(conn).map_err(failed(Step::CreateSchema, None))?;
    for (name, _) in &balance_triggers {
        conn.execute_batch(&format!("DROP TRIGGER {}", ident(name)))
            .map_err(failed(Step::CreateSchema, None))?;
    }
    Ok((schema_indexes, balance_triggers))
}

/// Drops the legacy tables, whose rows have all been copied and checked.
fn drop_legacy_tables(conn: &Connection, audit: &Audit) -> Result<(), AdoptError> {
    // The legacy tables go last: pages they free now are not reused (and journaled again)
    // by the copies and index builds above.
    for t in audit.tables.iter().filter(|t| t.present) {
        let legacy = ident(&format!("{LEGACY_PREFIX}{}", t.name));
        conn.execute_batch(&format!("DROP TABLE {legacy}"))
            .map_err(failed(Step::Restore, Some(t.name)))?;
    }
    Ok(())
}

/// Puts back the legacy views and triggers as they were written.
fn restore_views_and_triggers(conn: &Connection, audit: &Audit) -> Result<(), AdoptError> {
    for (name, sql) in audit.views.iter().chain(&audit.triggers) {
        conn.execute_batch(sql).map_err(|e| AdoptError::Failed {
            step: Step::Restore,
            table: None,
            reason: format!("{name}: {e}"),
        })?;
    }
    Ok(())
}
