//! Indexes and balances, built once after the copy rather than maintained row by row during
//! it: one sorted build per index instead of a random insert per row, and one grouped sum per
//! balance table instead of a trigger's upsert per ledger row. The balance triggers are then
//! put back exactly as the migrations wrote them, and a sampled ANALYZE gives the planner real
//! figures for the adopted tables.

use rusqlite::Connection;

use super::audit::Audit;
use super::error::{failed, AdoptError};
use super::Step;

/// Builds the schema's secondary indexes, then the legacy file's extra ones (rescoped).
pub(super) fn build_indexes(
    conn: &Connection,
    audit: &Audit,
    schema_indexes: &[(String, String)],
) -> Result<(), AdoptError> {
    for (name, sql) in schema_indexes {
        conn.execute_batch(sql).map_err(|e| AdoptError::Failed {
            step: Step::Index,
            table: None,
            reason: format!("{name}: {e}"),
        })?;
    }
    for t in &audit.tables {
        for (name, sql) in &t.extra_indexes {
            conn.execute_batch(sql).map_err(|e| AdoptError::Failed {
                step: Step::Index,
                table: Some(t.name.to_owned()),
                reason: format!("extra index {name}: {e}"),
            })?;
        }
    }
    Ok(())
}

/// Fills the kept balances from their ledgers and puts back the triggers that keep them.
pub(super) fn fill_balances(
    conn: &Connection,
    balance_triggers: &[(String, String)],
) -> Result<(), AdoptError> {
    for b in crate::catalog::BALANCES {
        conn.execute_batch(&b.rebuild_sql())
            .map_err(failed(Step::Balances, Some(b.table)))?;
    }
    for (name, sql) in balance_triggers {
        conn.execute_batch(sql).map_err(|e| AdoptError::Failed {
            step: Step::Balances,
            table: None,
            reason: format!("{name}: {e}"),
        })?;
    }
    Ok(())
}

/// Gathers the planner's statistics for the adopted tables.
pub(super) fn analyze(conn: &Connection) -> Result<(), AdoptError> {
    // Without statistics SQLite takes `tenant_id = ?` for a selective condition (it is the
    // least selective column there is) and answers "stock of this product" by scanning the
    // tenant's whole ledger through the primary key. A sampled ANALYZE (SQLite's recommended
    // analysis_limit) gives it real figures in a fraction of a second; it runs once the legacy
    // tables are gone, so that only the store's tables are analysed.
    conn.execute_batch("PRAGMA analysis_limit = 400; ANALYZE;")
        .map_err(failed(Step::Index, None))?;
    Ok(())
}

/// `(name, sql)` of the triggers that keep a balance table of [`crate::catalog::BALANCES`]:
/// the triggers on its ledger that write to it.
pub(super) fn balance_triggers(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1 \
         AND sql IS NOT NULL AND instr(lower(sql), ?2) > 0 ORDER BY name",
    )?;
    let mut found = Vec::new();
    for b in crate::catalog::BALANCES {
        let rows = stmt.query_map([b.ledger, b.table], |r| Ok((r.get(0)?, r.get(1)?)))?;
        for row in rows {
            found.push(row?);
        }
    }
    Ok(found)
}
