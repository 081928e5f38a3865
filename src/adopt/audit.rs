//! Opening and inspecting a legacy file, and the plan adoption makes from it.
//!
//! The current schema is not described by hand: [`reference()`] builds it in memory with the
//! crate's own migrations and reads it back, so the audit compares the legacy file against
//! exactly what the rebuild will create. The audit changes nothing. It refuses, before any
//! backup is taken, whatever adoption could not carry over faithfully (unknown tables,
//! generated columns, extra columns the store could not insert into, objects named like the
//! store's own); everything else it finds is kept and listed in the [`AdoptPlan`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use super::error::{classify, AdoptError};
use super::AdoptOptions;
use crate::backup::{ident, schema_objects, LOCK_WAIT};
use crate::catalog;
use crate::ids::{TenantId, Timestamp};

/// What adoption will do to one table (or did).
#[derive(Debug, Clone, Serialize)]
pub struct TablePlan {
    /// The table.
    pub table: String,
    /// Rows in the legacy table (0 when it is missing and will be created empty).
    pub rows: u64,
    /// Whether the legacy file has this table.
    pub present: bool,
    /// Columns the store does not know, kept as they are.
    pub extra_columns: Vec<String>,
    /// Indexes after adoption, each with `tenant_id` leading.
    pub indexes: Vec<String>,
    /// Keys and foreign keys after adoption, each including `tenant_id`.
    pub constraints: Vec<String>,
}

/// The audit of a legacy file: what adoption will do.
#[derive(Debug, Clone, Serialize)]
pub struct AdoptPlan {
    /// The database file.
    pub path: PathBuf,
    /// The tenant rows will belong to.
    pub tenant: TenantId,
    /// One entry per table of the store, in catalog order.
    pub tables: Vec<TablePlan>,
    /// Rows across all tables.
    pub total_rows: u64,
    /// Legacy triggers that will be put back as they are.
    pub triggers: Vec<String>,
    /// Legacy views that will be put back as they are.
    pub views: Vec<String>,
    /// Virtual tables (full-text indexes and the like), left untouched.
    pub virtual_tables: Vec<String>,
}

/// A column as `pragma_table_xinfo` describes it.
#[derive(Debug, Clone)]
pub(super) struct Column {
    pub(super) name: String,
    pub(super) decl_type: String,
    pub(super) not_null: bool,
    pub(super) default: Option<String>,
    hidden: i64,
}

/// A table of the current schema, read from a reference database built by the migrations.
#[derive(Debug)]
pub(super) struct ReferenceTable {
    columns: Vec<Column>,
    /// Primary key columns without tenant_id, in key order: the order rows are copied in.
    pub(super) key: Vec<String>,
    pub(super) indexes: Vec<String>,
    pub(super) constraints: Vec<String>,
}

/// What the legacy file holds of one catalog table.
#[derive(Debug)]
pub(super) struct LegacyTable {
    pub(super) name: &'static str,
    pub(super) present: bool,
    /// Columns both schemas have (the legacy spelling is kept), then extra ones.
    pub(super) shared: Vec<String>,
    pub(super) extra: Vec<Column>,
    rows: u64,
    /// Extra unique constraints and indexes, as statements for the new table.
    pub(super) extra_indexes: Vec<(String, String)>,
}

/// The audit of a legacy file.
#[derive(Debug)]
pub(super) struct Audit {
    pub(super) tables: Vec<LegacyTable>,
    /// Names of the legacy indexes to drop before the schema's own are created.
    pub(super) legacy_indexes: Vec<String>,
    pub(super) triggers: Vec<(String, String)>,
    pub(super) views: Vec<(String, String)>,
    virtual_tables: Vec<String>,
}

fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<Column>> {
    let mut stmt = conn.prepare(
        "SELECT name, type, \"notnull\", dflt_value, hidden FROM pragma_table_xinfo(?1) ORDER BY cid",
    )?;
    let rows = stmt.query_map([table], |r| {
        Ok(Column {
            name: r.get(0)?,
            decl_type: r.get(1)?,
            not_null: r.get(2)?,
            default: r.get(3)?,
            hidden: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// `(name, unique, origin)` of each index of a table.
fn index_list(conn: &Connection, table: &str) -> rusqlite::Result<Vec<(String, bool, String)>> {
    let mut stmt =
        conn.prepare("SELECT name, \"unique\", origin FROM pragma_index_list(?1) ORDER BY name")?;
    let rows = stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// Key columns of an index with their collation and order, as `"col" COLLATE x DESC` terms.
fn index_terms(conn: &Connection, index: &str) -> rusqlite::Result<Vec<(Option<String>, String)>> {
    let mut stmt = conn.prepare(
        "SELECT name, coll, \"desc\" FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno",
    )?;
    let rows = stmt.query_map([index], |r| {
        let name: Option<String> = r.get(0)?;
        let coll: Option<String> = r.get(1)?;
        let desc: bool = r.get(2)?;
        let mut term = name.as_deref().map(ident).unwrap_or_default();
        if let Some(coll) = coll.filter(|c| !c.eq_ignore_ascii_case("BINARY")) {
            term.push_str(&format!(" COLLATE {}", ident(&coll)));
        }
        if desc {
            term.push_str(" DESC");
        }
        Ok((name, term))
    })?;
    rows.collect()
}

/// Indexes of the single-tenant product that the store keeps under the same name with other
/// leading columns, with their old columns. Such a legacy index is the store's own, replaced
/// on purpose: `audit_log_row` was (table_name, row_id); V6 keys it by row id first (row ids
/// are UUIDv7, unique across tables), so a sale's audit rows append instead of splitting
/// pages in the middle of four table groups, and it still answers every lookup of a row's
/// history. Any other same-named index with other columns is refused, since queries it served
/// could be lost.
const REKEYED: &[(&str, &[&str])] = &[("audit_log_row", &["table_name", "row_id"])];

/// Builds the current schema in memory and reads what adoption compares against.
pub(super) fn reference() -> crate::Result<(Connection, BTreeMap<&'static str, ReferenceTable>)> {
    let conn = Connection::open_in_memory()?;
    crate::store::install_schema(&conn, Timestamp::now())?;
    let mut tables = BTreeMap::new();
    for def in catalog::TABLES {
        let cols = columns(&conn, def.name)?;
        let mut pk: Vec<(i64, String)> = conn
            .prepare("SELECT pk, name FROM pragma_table_info(?1) WHERE pk > 0")?
            .query_map([def.name], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        pk.sort();
        let key: Vec<String> = pk.into_iter().map(|(_, n)| n).collect();
        let mut constraints = vec![format!("PRIMARY KEY ({})", key.join(", "))];
        let mut indexes = Vec::new();
        for (name, unique, origin) in index_list(&conn, def.name)? {
            let cols: Vec<String> = index_terms(&conn, &name)?
                .into_iter()
                .map(|(n, _)| n.unwrap_or_else(|| "<expr>".into()))
                .collect();
            match origin.as_str() {
                "pk" => {}
                "u" => constraints.push(format!("UNIQUE ({})", cols.join(", "))),
                _ => indexes.push(format!(
                    "{}{name} ({})",
                    if unique { "unique " } else { "" },
                    cols.join(", ")
                )),
            }
        }
        let mut fks = conn.prepare(
            "SELECT id, \"table\", group_concat(\"from\", ', ') FROM \
             (SELECT * FROM pragma_foreign_key_list(?1) ORDER BY id, seq) GROUP BY id ORDER BY id",
        )?;
        let found = fks.query_map([def.name], |r| {
            Ok(format!(
                "FOREIGN KEY ({}) -> {}",
                r.get::<_, String>(2)?,
                r.get::<_, String>(1)?
            ))
        })?;
        constraints.extend(found.collect::<rusqlite::Result<Vec<_>>>()?);
        let key = key.into_iter().filter(|k| k != "tenant_id").collect();
        tables.insert(
            def.name,
            ReferenceTable {
                columns: cols,
                key,
                indexes,
                constraints,
            },
        );
    }
    Ok((conn, tables))
}
/// Opens an existing file for adoption, reading its header so that a file that is not SQLite
/// fails here, untouched.
pub(super) fn open_existing(path: &Path) -> Result<Connection, AdoptError> {
    if !path.is_file() {
        return Err(AdoptError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(path, e))?;
    conn.busy_timeout(LOCK_WAIT)
        .map_err(|e| classify(path, e))?;
    // The first read of the header: a file that is not SQLite fails here, untouched.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(|e| classify(path, e))?;
    Ok(conn)
}

/// Whether a column default read from the legacy schema is a plain literal (a number, a
/// string, a blob, NULL, TRUE or FALSE): the only defaults adoption copies into an ALTER TABLE.
fn is_literal(default: &str) -> bool {
    let d = default.trim();
    let quoted = |body: &str| !body.replace("''", "").contains('\'');
    if ["NULL", "TRUE", "FALSE"]
        .iter()
        .any(|w| d.eq_ignore_ascii_case(w))
    {
        return true;
    }
    if d.len() >= 2 && d.starts_with('\'') && d.ends_with('\'') {
        return quoted(&d[1..d.len() - 1]);
    }
    if d.len() >= 3 && (d.starts_with("X'") || d.starts_with("x'")) && d.ends_with('\'') {
        return d[2..d.len() - 1].chars().all(|c| c.is_ascii_hexdigit());
    }
    let number = d.strip_prefix(['+', '-']).unwrap_or(d);
    !number.is_empty()
        && number.chars().next().is_some_and(|c| c.is_ascii_digit())
        && number.parse::<f64>().is_ok()
}

/// The position just after the `(` that opens an index's column list, skipping quoted names.
fn column_list_start(sql: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in sql.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, '"' | '\'' | '`' | '[') => {
                quote = Some(if c == '[' { ']' } else { c });
            }
            None if c == '(' => return Some(i + 1),
            None => {}
        }
    }
    None
}

/// What the audit found.
pub(super) enum FileKind {
    MultiTenant,
    Legacy(Audit),
}

/// Audits the file `conn` reads against the current schema; changes nothing.
pub(super) fn audit(
    conn: &Connection,
    path: &Path,
    reference: &BTreeMap<&'static str, ReferenceTable>,
    reference_conn: &Connection,
) -> Result<FileKind, AdoptError> {
    let fail = |e: rusqlite::Error| classify(path, e);
    let unsupported = |table: Option<&str>, reason: String| AdoptError::Unsupported {
        path: path.to_path_buf(),
        table: table.map(str::to_owned),
        reason,
    };
    let objects = schema_objects(conn).map_err(fail)?;
    let has = |kind: &str, name: &str| {
        objects
            .iter()
            .any(|(t, n, _, _)| t == kind && n.eq_ignore_ascii_case(name))
    };
    // The central server's database has a tenants registry too, but no store to adopt.
    if has("table", "operations") && !has("table", "products") {
        return Err(AdoptError::NotLegacy {
            path: path.to_path_buf(),
            reason: "it is a pos-central database (the central server's)".into(),
        });
    }
    if has("table", "tenants") || has("table", "refinery_schema_history") {
        return Ok(FileKind::MultiTenant);
    }
    let reference_names: BTreeSet<String> = schema_objects(reference_conn)
        .map_err(fail)?
        .into_iter()
        .map(|(_, n, _, _)| n.to_ascii_lowercase())
        .collect();

    let mut virtual_tables = Vec::new();
    let mut shadow: BTreeSet<String> = BTreeSet::new();
    {
        let mut stmt = conn
            .prepare("SELECT name, type FROM pragma_table_list WHERE schema = 'main'")
            .map_err(fail)?;
        let listed = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(fail)?;
        for (name, kind) in listed {
            match kind.as_str() {
                "virtual" => virtual_tables.push(name),
                "shadow" => {
                    shadow.insert(name);
                }
                _ => {}
            }
        }
    }
    let plain_tables: Vec<&str> = objects
        .iter()
        .filter(|(t, n, _, sql)| {
            t == "table"
                && !n.starts_with("sqlite_")
                && !shadow.contains(n)
                && !virtual_tables.contains(n)
                && sql.is_some()
        })
        .map(|(_, n, _, _)| n.as_str())
        .collect();
    let known = |n: &str| {
        catalog::TABLES
            .iter()
            .any(|d| d.name.eq_ignore_ascii_case(n))
    };
    let unknown: Vec<&str> = plain_tables.iter().copied().filter(|n| !known(n)).collect();
    if plain_tables.len() == unknown.len() {
        return Err(AdoptError::NotLegacy {
            path: path.to_path_buf(),
            reason: if unknown.is_empty() {
                "the database has no tables".into()
            } else {
                format!(
                    "none of its tables belong to the POS schema ({})",
                    unknown.join(", ")
                )
            },
        });
    }
    if !unknown.is_empty() {
        // A table the catalog does not describe cannot be given tenant-scoped keys faithfully,
        // and leaving it unscoped would leave a table that ignores tenants.
        return Err(unsupported(
            None,
            format!(
                "tables unknown to the POS schema cannot be rescoped: {}; move them to another \
                 file first",
                unknown.join(", ")
            ),
        ));
    }
    let mut tables = Vec::new();
    let mut legacy_indexes = Vec::new();
    for def in catalog::TABLES {
        let Some(&name_in_file) = plain_tables
            .iter()
            .find(|n| n.eq_ignore_ascii_case(def.name))
        else {
            tables.push(LegacyTable {
                name: def.name,
                present: false,
                shared: Vec::new(),
                extra: Vec::new(),
                rows: 0,
                extra_indexes: Vec::new(),
            });
            continue;
        };
        let Some(target) = reference.get(def.name) else {
            continue;
        };
        let legacy_cols = columns(conn, name_in_file).map_err(fail)?;
        let mut shared = Vec::new();
        let mut extra = Vec::new();
        for col in legacy_cols {
            if col.hidden != 0 {
                return Err(unsupported(
                    Some(def.name),
                    format!("generated column {} cannot be copied", col.name),
                ));
            }
            if col.name.eq_ignore_ascii_case("tenant_id") {
                return Err(unsupported(
                    Some(def.name),
                    "it already has a tenant_id column but the file has no tenants registry".into(),
                ));
            }
            if target
                .columns
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(&col.name))
            {
                shared.push(col.name);
            } else {
                if col.not_null && col.default.is_none() {
                    return Err(unsupported(
                        Some(def.name),
                        format!(
                            "extra column {} is NOT NULL without a default, so the store could \
                             not insert rows",
                            col.name
                        ),
                    ));
                }
                if let Some(default) = col.default.as_deref().filter(|d| !is_literal(d)) {
                    return Err(unsupported(
                        Some(def.name),
                        format!(
                            "extra column {} has a default that is not a literal ({default}); \
                             ALTER TABLE cannot add it",
                            col.name
                        ),
                    ));
                }
                let type_ok = col
                    .decl_type
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " _(),".contains(c));
                if !type_ok {
                    return Err(unsupported(
                        Some(def.name),
                        format!(
                            "extra column {} has an unusual type {:?}",
                            col.name, col.decl_type
                        ),
                    ));
                }
                extra.push(col);
            }
        }
        for col in &target.columns {
            let missing = col.name != "tenant_id"
                && !shared.iter().any(|s| s.eq_ignore_ascii_case(&col.name));
            if missing && col.not_null && col.default.is_none() {
                return Err(unsupported(
                    Some(def.name),
                    format!("column {} is missing and the store requires it", col.name),
                ));
            }
        }
        let rows: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM {}", ident(def.name)),
                [],
                |r| r.get(0),
            )
            .map_err(fail)?;

        let mut extra_indexes = Vec::new();
        let target_uniques: Vec<Vec<String>> = index_list(reference_conn, def.name)
            .map_err(fail)?
            .into_iter()
            .filter(|(_, unique, _)| *unique)
            .map(|(n, _, _)| {
                index_terms(reference_conn, &n).map(|terms| {
                    terms
                        .into_iter()
                        .filter_map(|(n, _)| n)
                        .filter(|n| n != "tenant_id")
                        .map(|n| n.to_ascii_lowercase())
                        .collect()
                })
            })
            .collect::<rusqlite::Result<_>>()
            .map_err(fail)?;
        for (index, unique, origin) in index_list(conn, name_in_file).map_err(fail)? {
            match origin.as_str() {
                "pk" => {}
                "u" => {
                    let terms = index_terms(conn, &index).map_err(fail)?;
                    let cols: Vec<String> = terms
                        .iter()
                        .filter_map(|(n, _)| n.as_ref().map(|n| n.to_ascii_lowercase()))
                        .collect();
                    // The store's own keys already say UNIQUE (tenant_id, ...) for these.
                    if target_uniques.contains(&cols) {
                        continue;
                    }
                    let name = format!("{}_adopted_unique_{}", def.name, extra_indexes.len() + 1);
                    let list: Vec<String> = terms.into_iter().map(|(_, t)| t).collect();
                    extra_indexes.push((
                        name.clone(),
                        format!(
                            "CREATE UNIQUE INDEX {} ON {} (\"tenant_id\", {})",
                            ident(&name),
                            ident(def.name),
                            list.join(", ")
                        ),
                    ));
                }
                _ => {
                    legacy_indexes.push(index.clone());
                    if reference_names.contains(&index.to_ascii_lowercase()) {
                        // The store has an object of this name. If it is an index of the same
                        // uniqueness whose columns (after tenant_id) start with the legacy
                        // one's, it serves every query the legacy index served; anything else
                        // would be lost silently, so it is refused. The exceptions are the
                        // single-tenant product's own indexes that the store rekeyed on
                        // purpose (`REKEYED`), matched by name and exact old columns.
                        let mine: Vec<String> = index_terms(conn, &index)
                            .map_err(fail)?
                            .into_iter()
                            .map(|(_, t)| t.to_ascii_lowercase())
                            .collect();
                        let theirs: Vec<String> = index_terms(reference_conn, &index)
                            .map_err(fail)?
                            .into_iter()
                            .filter(|(n, _)| n.as_deref() != Some("tenant_id"))
                            .map(|(_, t)| t.to_ascii_lowercase())
                            .collect();
                        let theirs_unique = index_list(reference_conn, def.name)
                            .map_err(fail)?
                            .into_iter()
                            .any(|(n, u, _)| n.eq_ignore_ascii_case(&index) && u);
                        let mine_columns: Vec<String> = index_terms(conn, &index)
                            .map_err(fail)?
                            .into_iter()
                            .map(|(name, _)| name.unwrap_or_default().to_ascii_lowercase())
                            .collect();
                        let rekeyed = !unique
                            && REKEYED.iter().any(|(name, columns)| {
                                name.eq_ignore_ascii_case(&index) && mine_columns == *columns
                            });
                        let covered = !mine.is_empty()
                            && (theirs.starts_with(&mine) || rekeyed)
                            && (unique == theirs_unique)
                            && (!unique || theirs.len() == mine.len());
                        if !covered {
                            return Err(unsupported(
                                Some(def.name),
                                format!(
                                    "the legacy index {index} has the name of an index of the \
                                     store's schema but another definition; rename it first"
                                ),
                            ));
                        }
                        continue;
                    }
                    let sql: Option<String> = conn
                        .query_row(
                            "SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?1",
                            [&index],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(fail)?
                        .flatten();
                    let rescoped = sql.as_deref().and_then(|sql| {
                        column_list_start(sql)
                            .map(|at| format!("{}\"tenant_id\", {}", &sql[..at], &sql[at..]))
                    });
                    let Some(rescoped) = rescoped else {
                        return Err(unsupported(
                            Some(def.name),
                            format!("index {index} cannot be read"),
                        ));
                    };
                    extra_indexes.push((index, rescoped));
                }
            }
        }
        tables.push(LegacyTable {
            name: def.name,
            present: true,
            shared,
            extra,
            rows: u64::try_from(rows).unwrap_or(0),
            extra_indexes,
        });
    }
    let mut triggers = Vec::new();
    let mut views = Vec::new();
    for (kind, name, _, sql) in &objects {
        let Some(sql) = sql else { continue };
        let list = match kind.as_str() {
            "trigger" => &mut triggers,
            "view" => &mut views,
            _ => continue,
        };
        if reference_names.contains(&name.to_ascii_lowercase()) {
            return Err(unsupported(
                None,
                format!("the legacy {kind} {name} has the name of an object of the store's schema"),
            ));
        }
        list.push((name.clone(), sql.clone()));
    }
    Ok(FileKind::Legacy(Audit {
        tables,
        legacy_indexes,
        triggers,
        views,
        virtual_tables,
    }))
}

/// The public plan of an audit.
pub(super) fn plan_of(
    path: &Path,
    options: &AdoptOptions,
    audit: &Audit,
    reference: &BTreeMap<&'static str, ReferenceTable>,
) -> AdoptPlan {
    let tables: Vec<TablePlan> = audit
        .tables
        .iter()
        .map(|t| {
            let target = reference.get(t.name);
            let mut indexes: Vec<String> = target.map(|r| r.indexes.clone()).unwrap_or_default();
            indexes.extend(
                t.extra_indexes
                    .iter()
                    .map(|(n, _)| format!("{n} (extra, rescoped)")),
            );
            TablePlan {
                table: t.name.to_owned(),
                rows: t.rows,
                present: t.present,
                extra_columns: t.extra.iter().map(|c| c.name.clone()).collect(),
                indexes,
                constraints: target.map(|r| r.constraints.clone()).unwrap_or_default(),
            }
        })
        .collect();
    AdoptPlan {
        path: path.to_path_buf(),
        tenant: options.tenant.clone(),
        total_rows: tables.iter().map(|t| t.rows).sum(),
        tables,
        triggers: audit.triggers.iter().map(|(n, _)| n.clone()).collect(),
        views: audit.views.iter().map(|(n, _)| n.clone()).collect(),
        virtual_tables: audit.virtual_tables.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_list_start_skips_quoted_names() {
        let sql = r#"CREATE INDEX "odd (name" ON products(brand)"#;
        let at = column_list_start(sql).expect("has a column list");
        assert_eq!(&sql[at..], "brand)");
        let sql = "CREATE UNIQUE INDEX [x(y] ON t (a) WHERE a IS NOT NULL";
        let at = column_list_start(sql).expect("has a column list");
        assert_eq!(&sql[at..], "a) WHERE a IS NOT NULL");
    }

    #[test]
    fn only_literal_defaults_are_copied() {
        for ok in [
            "NULL", "0", "-1.5", "1e3", "'A1'", "'it''s'", "X'00ff'", "TRUE",
        ] {
            assert!(is_literal(ok), "{ok}");
        }
        for bad in [
            "CURRENT_TIMESTAMP",
            "(1)",
            "'a' || 'b'",
            "'x'); DROP TABLE t; --'",
            "abs(1)",
        ] {
            assert!(!is_literal(bad), "{bad}");
        }
    }

    #[test]
    fn the_reference_describes_every_catalog_table() {
        let (_, tables) = reference().expect("the schema builds");
        assert_eq!(tables.len(), catalog::TABLES.len());
        let products = &tables["products"];
        assert_eq!(products.key, ["id"]);
        assert!(products
            .constraints
            .contains(&"UNIQUE (tenant_id, sku)".to_owned()));
        assert!(products
            .constraints
            .iter()
            .any(|c| c == "FOREIGN KEY (tenant_id, category_id) -> product_categories"));
        assert_eq!(tables["pending_operations"].key, ["hlc"]);
    }
}
