//! `verify`: checks that the live schema enforces tenant isolation and that the data obeys it.
//!
//! The schema checks read the database's own description of itself (`sqlite_schema` and the
//! `pragma_table_info` / `pragma_index_list` / `pragma_foreign_key_list` functions, with table
//! names bound as parameters), so they hold for any file, including adopted legacy stores and
//! tables the catalog does not know.

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::Serialize;

use crate::catalog::{self, TableDef};
use crate::Result;

/// Which rule a [`Violation`] breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Check {
    /// Every tenant table has `tenant_id TEXT NOT NULL` referencing `tenants(id)`.
    TenantIdColumn,
    /// Every UNIQUE constraint or index includes `tenant_id`.
    UniqueWithoutTenant,
    /// Every foreign key to another tenant table is composite with `tenant_id`.
    ForeignKeyNotComposite,
    /// Every tenant table has an index or primary key leading with `tenant_id`.
    NoTenantLeadingIndex,
    /// A trigger refuses updates that change `tenant_id`.
    TenantIdMutable,
    /// The table and its columns match the crate's catalog.
    CatalogMismatch,
    /// No row has a NULL `tenant_id`.
    NullTenantId,
    /// No row names a tenant missing from the registry.
    UnknownTenant,
    /// No row references a row of another tenant.
    CrossTenantReference,
    /// `PRAGMA foreign_key_check` is clean.
    ForeignKeyCheck,
    /// `PRAGMA integrity_check` is clean.
    IntegrityCheck,
    /// Every kept balance (stock on hand, card balances) equals the sum of its ledger.
    CachedBalance,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The rule.
    pub check: Check,
    /// The table concerned, if one.
    pub table: Option<String>,
    /// What exactly is wrong.
    pub detail: String,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Tenant tables examined.
    pub tables_checked: usize,
    /// Rows of catalog tables examined.
    pub rows_checked: u64,
    /// Every violation found; empty when all holds.
    pub violations: Vec<Violation>,
}

impl VerifyReport {
    /// Whether every check passed.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

struct Findings(Vec<Violation>);

impl Findings {
    fn add(&mut self, check: Check, table: Option<&str>, detail: impl Into<String>) {
        self.0.push(Violation {
            check,
            table: table.map(str::to_owned),
            detail: detail.into(),
        });
    }
}

struct ColumnInfo {
    name: String,
    decl_type: String,
    not_null: bool,
    has_default: bool,
    pk: i64,
}

struct ForeignKey {
    parent: String,
    /// (child column, parent column or None for the parent's primary key)
    pairs: Vec<(String, Option<String>)>,
}

fn columns(conn: &Connection, table: &str) -> Result<Vec<ColumnInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk FROM pragma_table_info(?1)",
    )?;
    let rows = stmt.query_map([table], |r| {
        Ok(ColumnInfo {
            name: r.get(0)?,
            decl_type: r.get(1)?,
            not_null: r.get(2)?,
            has_default: r.get(3)?,
            pk: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn foreign_keys(conn: &Connection, table: &str) -> Result<Vec<ForeignKey>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
    )?;
    let mut by_id: BTreeMap<i64, ForeignKey> = BTreeMap::new();
    let rows = stmt.query_map([table], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    for row in rows {
        let (id, parent, from, to) = row?;
        by_id
            .entry(id)
            .or_insert_with(|| ForeignKey {
                parent,
                pairs: Vec::new(),
            })
            .pairs
            .push((from, to));
    }
    Ok(by_id.into_values().collect())
}

/// (index name, unique, columns in order)
fn indexes(conn: &Connection, table: &str) -> Result<Vec<(String, bool, Vec<String>)>> {
    let list: Vec<(String, bool)> = {
        let mut stmt = conn.prepare_cached("SELECT name, \"unique\" FROM pragma_index_list(?1)")?;
        let rows = stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut out = Vec::with_capacity(list.len());
    for (name, unique) in list {
        let mut stmt =
            conn.prepare_cached("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?;
        let cols = stmt
            .query_map([&name], |r| r.get::<_, Option<String>>(0))?
            // An expression column has no name; it never counts as tenant_id.
            .map(|c| c.map(|c| c.unwrap_or_else(|| "<expression>".to_owned())))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push((name, unique, cols));
    }
    Ok(out)
}

/// The primary key columns of `table`, in key order.
fn primary_key(cols: &[ColumnInfo]) -> Vec<&str> {
    let mut pk: Vec<&ColumnInfo> = cols.iter().filter(|c| c.pk > 0).collect();
    pk.sort_by_key(|c| c.pk);
    pk.into_iter().map(|c| c.name.as_str()).collect()
}

pub(crate) fn verify(conn: &Connection) -> Result<VerifyReport> {
    let mut f = Findings(Vec::new());
    // Plain tables only: virtual tables (and their shadow tables) carry no constraints, and a
    // full-text index over products should not fail verification of the store around it.
    let tables: Vec<String> = {
        let mut stmt = conn.prepare(
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut names = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        names.retain(|n| !catalog::NODE_TABLES.contains(&n.as_str()));
        names
    };
    let is_tenant_table = |name: &str| tables.iter().any(|t| t == name);

    if !freezes(conn, "tenants", "BEFORE UPDATE OF ID ON")? {
        f.add(
            Check::TenantIdMutable,
            Some("tenants"),
            "no trigger refuses an UPDATE of tenants.id",
        );
    }
    for table in &tables {
        // One odd table is reported, not allowed to end the whole check.
        if let Err(e) = check_schema(conn, &mut f, table, &is_tenant_table) {
            f.add(
                Check::IntegrityCheck,
                Some(table),
                format!("cannot be checked: {e}"),
            );
        }
    }

    let mut rows_checked = 0u64;
    for def in catalog::TABLES {
        if !is_tenant_table(def.name) {
            f.add(Check::CatalogMismatch, Some(def.name), "table is missing");
            continue;
        }
        match check_catalog_table(conn, &mut f, def) {
            Ok(rows) => rows_checked += rows,
            Err(e) => f.add(
                Check::IntegrityCheck,
                Some(def.name),
                format!("cannot be checked: {e}"),
            ),
        }
    }

    for table in &tables {
        // Per table, so that one table whose foreign keys SQLite cannot even resolve ("foreign
        // key mismatch") is reported without hiding the others.
        let mut stmt = conn.prepare_cached(
            "SELECT parent, count(*) FROM pragma_foreign_key_check(?1) GROUP BY parent",
        )?;
        let found = stmt
            .query_map([table], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        match found {
            Ok(found) => {
                for (parent, n) in found {
                    f.add(
                        Check::ForeignKeyCheck,
                        Some(table),
                        format!("{n} rows reference a missing {parent} row"),
                    );
                }
            }
            Err(e) => f.add(
                Check::ForeignKeyCheck,
                Some(table),
                format!("foreign keys cannot be checked: {e}"),
            ),
        }
    }
    for b in catalog::BALANCES {
        if !is_tenant_table(b.table) {
            f.add(Check::CatalogMismatch, Some(b.table), "table is missing");
            continue;
        }
        match conn.query_row(&b.mismatch_sql(), [], |r| r.get::<_, i64>(0)) {
            Ok(0) => {}
            Ok(n) => f.add(
                Check::CachedBalance,
                Some(b.table),
                format!("{n} balances differ from the sum of {}", b.ledger),
            ),
            Err(e) => f.add(
                Check::CachedBalance,
                Some(b.table),
                format!("cannot be checked: {e}"),
            ),
        }
    }
    {
        let mut stmt = conn.prepare("PRAGMA integrity_check(100)")?;
        let msgs = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for m in msgs.into_iter().filter(|m| m != "ok") {
            f.add(Check::IntegrityCheck, None, m);
        }
    }
    Ok(VerifyReport {
        tables_checked: tables.len(),
        rows_checked,
        violations: f.0,
    })
}

/// The schema rules, for any tenant table (catalog or not). Table names are only ever bound as
/// parameters here.
fn check_schema(
    conn: &Connection,
    f: &mut Findings,
    table: &str,
    is_tenant_table: &dyn Fn(&str) -> bool,
) -> Result<()> {
    let t = Some(table);
    let cols = columns(conn, table)?;
    match cols.iter().find(|c| c.name == "tenant_id") {
        None => f.add(Check::TenantIdColumn, t, "no tenant_id column"),
        Some(c) if !c.not_null => f.add(Check::TenantIdColumn, t, "tenant_id allows NULL"),
        Some(c) if !c.decl_type.eq_ignore_ascii_case("TEXT") => f.add(
            Check::TenantIdColumn,
            t,
            format!("tenant_id is {}, not TEXT", c.decl_type),
        ),
        Some(_) => {}
    }
    let fks = foreign_keys(conn, table)?;
    let to_registry = fks.iter().any(|fk| {
        fk.parent == "tenants"
            && fk.pairs.len() == 1
            && fk.pairs[0].0 == "tenant_id"
            && fk.pairs[0].1.as_deref().is_none_or(|to| to == "id")
    });
    if !to_registry {
        f.add(
            Check::TenantIdColumn,
            t,
            "tenant_id does not reference tenants(id)",
        );
    }
    for fk in fks.iter().filter(|fk| fk.parent != "tenants") {
        if !is_composite(conn, fk)? && is_tenant_table(&fk.parent) {
            let from: Vec<&str> = fk.pairs.iter().map(|p| p.0.as_str()).collect();
            f.add(
                Check::ForeignKeyNotComposite,
                t,
                format!(
                    "foreign key ({}) -> {} does not include tenant_id",
                    from.join(", "),
                    fk.parent
                ),
            );
        }
    }
    let pk = primary_key(&cols);
    let mut leading = pk.first() == Some(&"tenant_id");
    if !pk.is_empty() && !pk.contains(&"tenant_id") {
        f.add(
            Check::UniqueWithoutTenant,
            t,
            format!("primary key ({}) does not include tenant_id", pk.join(", ")),
        );
    }
    for (name, unique, idx_cols) in indexes(conn, table)? {
        leading |= idx_cols.first().map(String::as_str) == Some("tenant_id");
        // The primary key's own index was judged above.
        let is_pk_index = idx_cols.iter().map(String::as_str).eq(pk.iter().copied());
        if unique && !is_pk_index && !idx_cols.iter().any(|c| c == "tenant_id") {
            f.add(
                Check::UniqueWithoutTenant,
                t,
                format!(
                    "unique index {name} on ({}) does not include tenant_id",
                    idx_cols.join(", ")
                ),
            );
        }
    }
    if !leading {
        f.add(
            Check::NoTenantLeadingIndex,
            t,
            "no index or primary key leads with tenant_id",
        );
    }
    if catalog::table(table).is_none() && !freezes(conn, table, "BEFORE UPDATE OF TENANT_ID ON")? {
        f.add(
            Check::TenantIdMutable,
            t,
            "no trigger refuses an UPDATE of tenant_id",
        );
    }
    Ok(())
}

fn is_composite(conn: &Connection, fk: &ForeignKey) -> Result<bool> {
    let parent_pk: Vec<String> = if fk.pairs.iter().any(|p| p.1.is_none()) {
        primary_key(&columns(conn, &fk.parent)?)
            .into_iter()
            .map(str::to_owned)
            .collect()
    } else {
        Vec::new()
    };
    Ok(fk.pairs.iter().enumerate().any(|(i, (from, to))| {
        let to = to.as_deref().or(parent_pk.get(i).map(String::as_str));
        from == "tenant_id" && to == Some("tenant_id")
    }))
}

/// The rules only the catalog can tell: expected columns, a composite foreign key behind every
/// reference, a tenant_id freeze that really fires, and the data. Only catalog spellings of
/// names reach SQL text. Returns the rows examined.
fn check_catalog_table(conn: &Connection, f: &mut Findings, def: &'static TableDef) -> Result<u64> {
    let t = Some(def.name);
    let cols = columns(conn, def.name)?;
    let expected = [("id", "TEXT", false), ("tenant_id", "TEXT", false)]
        .into_iter()
        .chain(
            def.columns
                .iter()
                .map(|c| (c.name, c.kind.sql_type(), c.nullable)),
        );
    for (name, ty, nullable) in expected {
        match cols.iter().find(|c| c.name == name) {
            None => f.add(
                Check::CatalogMismatch,
                t,
                format!("column {name} is missing"),
            ),
            Some(c) if !c.decl_type.eq_ignore_ascii_case(ty) || c.not_null == nullable => f.add(
                Check::CatalogMismatch,
                t,
                format!(
                    "column {name} is {} {}, the catalog expects {ty} {}",
                    c.decl_type,
                    if c.not_null { "NOT NULL" } else { "NULL" },
                    if nullable { "NULL" } else { "NOT NULL" }
                ),
            ),
            Some(_) => {}
        }
    }
    for extra in cols
        .iter()
        .filter(|c| c.name != "id" && c.name != "tenant_id" && def.column(&c.name).is_none())
    {
        if extra.not_null && !extra.has_default {
            f.add(
                Check::CatalogMismatch,
                t,
                format!(
                    "extra column {} is NOT NULL without a default, so inserts fail",
                    extra.name
                ),
            );
        }
    }

    let fks = foreign_keys(conn, def.name)?;
    for col in def.columns {
        let Some(parent) = col.references else {
            continue;
        };
        let enforced = fks.iter().any(|fk| {
            fk.parent == parent
                && fk.pairs.len() == 2
                && fk
                    .pairs
                    .iter()
                    .any(|(from, to)| from == "tenant_id" && to.as_deref() == Some("tenant_id"))
                && fk
                    .pairs
                    .iter()
                    .any(|(from, to)| from == col.name && to.as_deref() == Some("id"))
        });
        if !enforced {
            f.add(
                Check::ForeignKeyNotComposite,
                t,
                format!(
                    "{} has no foreign key (tenant_id, {}) -> {parent}(tenant_id, id)",
                    col.name, col.name
                ),
            );
            cross_tenant_rows(conn, f, def, col.name, parent)?;
        }
    }

    let (rows, nulls, unknown): (i64, i64, i64) = conn.query_row(
        &format!(
            "SELECT count(*), coalesce(sum(t.tenant_id IS NULL), 0),
                    coalesce(sum(t.tenant_id IS NOT NULL AND NOT EXISTS
                        (SELECT 1 FROM tenants r WHERE r.id = t.tenant_id)), 0)
             FROM \"{}\" AS t",
            def.name
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    if nulls > 0 {
        f.add(
            Check::NullTenantId,
            t,
            format!("{nulls} rows have a NULL tenant_id"),
        );
    }
    if unknown > 0 {
        f.add(
            Check::UnknownTenant,
            t,
            format!("{unknown} rows name a tenant missing from the registry"),
        );
    }
    if !tenant_id_update_refused(conn, def, rows > 0)? {
        f.add(
            Check::TenantIdMutable,
            t,
            "an UPDATE of tenant_id is not refused by a trigger",
        );
    }
    Ok(u64::try_from(rows).unwrap_or(0))
}

/// Whether the database refuses moving a row to another tenant. With a row to try, it tries,
/// inside a savepoint that is always rolled back; on an empty table it reads the triggers.
fn tenant_id_update_refused(
    conn: &Connection,
    def: &'static TableDef,
    has_rows: bool,
) -> Result<bool> {
    if !has_rows {
        return freezes(conn, def.name, "BEFORE UPDATE OF TENANT_ID ON");
    }
    // Move a row to a real, freshly registered tenant (a trigger that only refuses unknown
    // tenants must not pass), inside a savepoint that is always rolled back.
    conn.execute_batch("SAVEPOINT pos_verify_probe")?;
    let probe = (|| -> rusqlite::Result<usize> {
        conn.execute(
            "INSERT INTO tenants (id, name, max_users, max_api_calls_month, settings, created_at, updated_at)
             VALUES ('pos-verify-probe', 'probe', 0, 0, '{}', '', '')",
            [],
        )?;
        conn.execute(
            &format!(
                "UPDATE \"{0}\" SET tenant_id = 'pos-verify-probe' \
                 WHERE id = (SELECT id FROM \"{0}\" LIMIT 1)",
                def.name
            ),
            [],
        )
    })();
    conn.execute_batch("ROLLBACK TO pos_verify_probe; RELEASE pos_verify_probe")?;
    match probe {
        Ok(_) => Ok(false),
        Err(rusqlite::Error::SqliteFailure(e, msg))
            if e.code == rusqlite::ffi::ErrorCode::ConstraintViolation =>
        {
            Ok(e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_TRIGGER
                && msg.is_some_and(|m| m.contains("tenant_id")))
        }
        // Busy, I/O and the like say nothing about the schema: report them as errors.
        Err(e) => Err(e.into()),
    }
}

/// Whether a trigger on `table` whose text contains `needle` (upper case) raises an error.
fn freezes(conn: &Connection, table: &str, needle: &str) -> Result<bool> {
    let mut stmt = conn
        .prepare_cached("SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1")?;
    let sqls = stmt
        .query_map([table], |r| r.get::<_, Option<String>>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(sqls.into_iter().flatten().any(|sql| {
        let norm = sql
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_uppercase();
        norm.contains(needle) && norm.contains("RAISE(")
    }))
}

/// Counts the rows whose `column` points at a row of `parent` that belongs to another tenant
/// (possible only where the composite foreign key is missing).
fn cross_tenant_rows(
    conn: &Connection,
    f: &mut Findings,
    child: &'static TableDef,
    column: &'static str,
    parent: &'static str,
) -> Result<()> {
    let n: i64 = conn.query_row(
        &format!(
            "SELECT count(*) FROM \"{c}\" AS c WHERE c.\"{column}\" IS NOT NULL AND EXISTS
               (SELECT 1 FROM \"{parent}\" AS p WHERE p.id = c.\"{column}\" AND p.tenant_id IS NOT c.tenant_id)",
            c = child.name
        ),
        [],
        |r| r.get(0),
    )?;
    if n > 0 {
        f.add(
            Check::CrossTenantReference,
            Some(child.name),
            format!("{n} rows reference a {parent} row of another tenant through {column}"),
        );
    }
    Ok(())
}
