//! Copy and validate, table by table: every row of a legacy table goes into the new table with
//! the tenant's id, in primary-key order, and is proven unchanged before the next table starts.
//!
//! The proof costs no second read of the legacy table: the copy's WHERE clause calls
//! `adopt_tap`, which digests each row as it streams through, and one scan of the new table
//! counts its rows, those of another or no tenant, and takes the same digest with the
//! `adopt_row_digest` aggregate (see the backup kit's digest). Equal counts, no foreign rows
//! and equal digests mean every column of every row came through as it was; a value the new
//! column's type affinity converts (`'3'` into `3`) fails the table.

use std::collections::BTreeMap;
use std::time::Instant;

use rusqlite::Connection;

use super::audit::{Audit, ReferenceTable};
use super::error::{failed, AdoptError};
use super::report::{Laps, TableReport};
use super::{Progress, Step, LEGACY_PREFIX};
use crate::backup::{ident, install_digests, Tap};
use crate::tenant::settings::NewTenant;

/// Copies and validates every table of the audit; returns each table's report and the rows
/// copied in all.
pub(super) fn copy_tables(
    conn: &Connection,
    audit: &Audit,
    reference: &BTreeMap<&'static str, ReferenceTable>,
    tenant: &NewTenant,
    laps: &mut Laps<'_>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(Vec<TableReport>, u64), AdoptError> {
    let tap = install_digests(conn).map_err(failed(Step::Validate, None))?;

    let mut reports = Vec::new();
    let mut total_after = 0u64;
    for t in &audit.tables {
        let table_started = Instant::now();
        let target = reference.get(t.name);
        let (indexes, constraints) = target
            .map(|r| (r.indexes.len(), r.constraints.len()))
            .unwrap_or((0, 0));
        if !t.present {
            reports.push(TableReport {
                table: t.name.to_owned(),
                rows_before: 0,
                rows_after: 0,
                indexes_rescoped: indexes,
                constraints_rescoped: constraints,
                seconds: 0.0,
            });
            continue;
        }
        let legacy = ident(&format!("{LEGACY_PREFIX}{}", t.name));
        let table = ident(t.name);
        let copy_err = failed(Step::Copy, Some(t.name));
        let rows_before: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {legacy}"), [], |r| r.get(0))
            .map_err(copy_err)?;
        let rows_before = u64::try_from(rows_before).unwrap_or(0);
        progress(Progress::TableStarted {
            table: t.name,
            rows: rows_before,
        });
        for col in &t.extra {
            let mut def = format!(
                "ALTER TABLE {table} ADD COLUMN {} {}",
                ident(&col.name),
                col.decl_type
            );
            if col.not_null {
                def.push_str(" NOT NULL");
            }
            if let Some(default) = &col.default {
                def.push_str(&format!(" DEFAULT {default}"));
            }
            // One statement only: the type and default come from the legacy file's own schema,
            // checked in the audit (a plain type name, a literal default).
            conn.execute(&def, [])
                .map_err(failed(Step::Copy, Some(t.name)))?;
        }
        let cols: Vec<String> = t
            .shared
            .iter()
            .chain(t.extra.iter().map(|c| &c.name))
            .map(|c| ident(c))
            .collect();
        let cols = cols.join(", ");
        let order: Vec<String> = target
            .map(|r| r.key.iter().map(|k| ident(k)).collect())
            .unwrap_or_default();
        let order = if order.is_empty() {
            String::new()
        } else {
            format!(" ORDER BY {}", order.join(", "))
        };
        let reset = |tap: &Tap| {
            tap.lock()
                .map(|mut state| std::mem::take(&mut state.acc))
                .map_err(|_| AdoptError::Failed {
                    step: Step::Copy,
                    table: Some(t.name.to_owned()),
                    reason: "digest lock poisoned".into(),
                })
        };
        reset(&tap)?;
        conn.execute(
            &format!(
                "INSERT INTO {table} (\"tenant_id\", {cols}) SELECT ?1, {cols} FROM {legacy} \
                 WHERE adopt_tap({cols}){order}"
            ),
            [&tenant.id],
        )
        .map_err(failed(Step::Copy, Some(t.name)))?;
        let read = reset(&tap)?;
        laps.lap(Step::Copy);

        let validate_err = failed(Step::Validate, Some(t.name));
        // One scan of the new table: its rows, those of another or no tenant, and the digest.
        let (rows_after, foreign, after): (i64, i64, String) = conn
            .query_row(
                &format!(
                    "SELECT count(*), count(*) FILTER (WHERE \"tenant_id\" IS NOT ?1), \
                     adopt_row_digest({cols}) FROM {table}"
                ),
                [&tenant.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(validate_err)?;
        let rows_after = u64::try_from(rows_after).unwrap_or(0);
        let invalid = |reason: String| AdoptError::Failed {
            step: Step::Validate,
            table: Some(t.name.to_owned()),
            reason,
        };
        if rows_after != rows_before {
            return Err(invalid(format!(
                "{rows_before} rows before, {rows_after} after"
            )));
        }
        if foreign != 0 {
            return Err(invalid(format!("{foreign} rows without the tenant's id")));
        }
        if read.rows != rows_before {
            return Err(invalid(format!(
                "the copy read {} of {rows_before} rows",
                read.rows
            )));
        }
        let before = read.text();
        if before != after {
            return Err(invalid(
                "some column values changed in the copy (a value the new column's type converts)"
                    .into(),
            ));
        }
        laps.lap(Step::Validate);
        total_after += rows_after;
        progress(Progress::TableDone {
            table: t.name,
            rows: rows_after,
        });
        reports.push(TableReport {
            table: t.name.to_owned(),
            rows_before,
            rows_after,
            indexes_rescoped: indexes + t.extra_indexes.len(),
            constraints_rescoped: constraints,
            seconds: table_started.elapsed().as_secs_f64(),
        });
    }
    Ok((reports, total_after))
}
