//! The outbox: every synced write leaves a pending operation in the same transaction.
//!
//! An [`Operation`] is what a node pushes to the central server, in exactly the JSON form that
//! `pos-node outbox list --json` prints. [`validate`] checks one against the catalog; the node
//! runs it before writing an operation and the server before accepting one.
//!
//! On the node, operations wait in `pending_operations`, with the stamp's clock part only (the
//! node is the row's `device_id`, see migration V3);
//! [`crate::Tenant::pending_operations`] reads them back in wire form.

use std::fmt;
use std::str::FromStr;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::catalog::{self, ColumnDef, ColumnKind, SyncClass, TableDef};
use crate::hlc::{ClockState, Hlc};
use crate::ids::{RowId, TenantId, Timestamp};

/// What an operation does to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OperationKind {
    /// A new master-data or document row.
    Insert,
    /// Changed columns of a master-data or document row.
    Update,
    /// A master-data row removed.
    Delete,
    /// A new ledger row (ledgers are append-only).
    LedgerAppend,
}

impl OperationKind {
    /// The stored word.
    pub fn as_str(&self) -> &'static str {
        match self {
            OperationKind::Insert => "insert",
            OperationKind::Update => "update",
            OperationKind::Delete => "delete",
            OperationKind::LedgerAppend => "ledger_append",
        }
    }

    /// Whether a table of this sync class takes operations of this kind.
    pub fn allowed_for(&self, class: SyncClass) -> bool {
        matches!(
            (class, self),
            (
                SyncClass::MasterData,
                OperationKind::Insert | OperationKind::Update | OperationKind::Delete
            ) | (
                SyncClass::Document,
                OperationKind::Insert | OperationKind::Update
            ) | (SyncClass::Ledger, OperationKind::LedgerAppend)
        )
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OperationKind {
    type Err = OperationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "insert" => Ok(Self::Insert),
            "update" => Ok(Self::Update),
            "delete" => Ok(Self::Delete),
            "ledger_append" => Ok(Self::LedgerAppend),
            other => Err(OperationError::Malformed(format!(
                "unknown operation kind {other:?}"
            ))),
        }
    }
}

/// One write, as it travels from a node to the central server and on to the other nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// Operation id (UUIDv7): the server stores each id once.
    pub id: RowId,
    /// The tenant whose row it is.
    pub tenant_id: TenantId,
    /// The node that wrote it.
    pub device_id: RowId,
    /// When, on the writing node's hybrid logical clock.
    pub hlc: Hlc,
    /// The user who made the change (the audit trail travels with the operation).
    pub actor_user_id: Option<RowId>,
    /// The catalog table.
    pub table: String,
    /// The row written.
    pub row_id: RowId,
    /// Insert, update, delete or ledger append.
    pub kind: OperationKind,
    /// The columns written with their values: all of them for inserts and ledger appends, the
    /// changed ones for updates, none for deletes.
    #[cfg_attr(feature = "server", schema(value_type = Object))]
    pub columns: serde_json::Map<String, serde_json::Value>,
}

/// Why an operation does not fit the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OperationError {
    /// Not a catalog table.
    #[error("no table {0:?} in the catalog")]
    UnknownTable(String),
    /// The table never leaves the node.
    #[error("{0} is local to each node and is never synced")]
    LocalOnlyTable(&'static str),
    /// The kind does not suit the table's sync class (say, an update of a ledger row).
    #[error("{kind} is not allowed on {table} ({class:?} rows)")]
    KindNotAllowed {
        /// The table.
        table: &'static str,
        /// Its sync class.
        class: SyncClass,
        /// The refused kind.
        kind: OperationKind,
    },
    /// A column the table does not have (or `id` / `tenant_id`, which travel outside).
    #[error("{table} has no column {column:?}")]
    UnknownColumn {
        /// The table.
        table: &'static str,
        /// The column.
        column: String,
    },
    /// A value of the wrong type, or NULL for a NOT NULL column.
    #[error("{table}.{column}: {reason}")]
    BadValue {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A NOT NULL column missing from an insert or ledger append.
    #[error("{table}.{column} is required")]
    MissingColumn {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
    },
    /// A delete that carries columns.
    #[error("a delete carries no columns")]
    DeleteWithColumns,
    /// Not an operation at all.
    #[error("malformed operation: {0}")]
    Malformed(String),
}

/// Checks an operation against the catalog: a synced table, a kind its sync class allows, and
/// columns that exist with values of the right type (for enum-like text columns, one of the
/// words the table's CHECK constraint allows).
pub fn validate(op: &Operation) -> Result<&'static TableDef, OperationError> {
    let table =
        catalog::table(&op.table).ok_or_else(|| OperationError::UnknownTable(op.table.clone()))?;
    if table.sync_class == SyncClass::LocalOnly {
        return Err(OperationError::LocalOnlyTable(table.name));
    }
    if !op.kind.allowed_for(table.sync_class) {
        return Err(OperationError::KindNotAllowed {
            table: table.name,
            class: table.sync_class,
            kind: op.kind,
        });
    }
    if op.kind == OperationKind::Delete && !op.columns.is_empty() {
        return Err(OperationError::DeleteWithColumns);
    }
    for (name, value) in &op.columns {
        let col = table
            .column(name)
            .ok_or_else(|| OperationError::UnknownColumn {
                table: table.name,
                column: name.clone(),
            })?;
        check_value(table, col, value)?;
    }
    if matches!(op.kind, OperationKind::Insert | OperationKind::LedgerAppend) {
        if let Some(col) = table
            .columns
            .iter()
            .find(|c| !c.nullable && !op.columns.contains_key(c.name))
        {
            return Err(OperationError::MissingColumn {
                table: table.name,
                column: col.name,
            });
        }
    }
    Ok(table)
}

fn check_value(
    table: &'static TableDef,
    col: &'static ColumnDef,
    v: &serde_json::Value,
) -> Result<(), OperationError> {
    use serde_json::Value as J;
    let bad = |reason: &str| OperationError::BadValue {
        table: table.name,
        column: col.name,
        reason: reason.to_owned(),
    };
    match (col.kind, v) {
        (_, J::Null) if col.nullable => Ok(()),
        (_, J::Null) => Err(bad("is NOT NULL")),
        // Enum-like columns: a wrong word would otherwise only fail on the node applying it.
        (ColumnKind::Text, J::String(s)) => match col.one_of {
            Some(words) if !words.contains(&s.as_str()) => {
                Err(bad(&format!("{s:?} is not one of {words:?}")))
            }
            _ => Ok(()),
        },
        (ColumnKind::Integer, J::Number(n)) if n.is_i64() => Ok(()),
        (ColumnKind::Bool, J::Bool(_)) => Ok(()),
        (ColumnKind::Blob, J::Array(a))
            if a.iter().all(|b| b.as_u64().is_some_and(|b| b <= 255)) =>
        {
            Ok(())
        }
        // Only the canonical text: ids are compared as text by the composite foreign keys, and
        // timestamps must keep their fixed width to sort.
        (ColumnKind::Id, J::String(s)) => match s.parse::<RowId>() {
            Ok(id) if id.to_string() == *s => Ok(()),
            _ => Err(bad("is not a lowercase hyphenated UUID")),
        },
        (ColumnKind::Timestamp, J::String(s)) => match s.parse::<Timestamp>() {
            Ok(t) if t.to_rfc3339() == *s => Ok(()),
            _ => Err(bad(
                "is not a UTC RFC 3339 timestamp with milliseconds (2026-11-24T05:41:06.123Z)",
            )),
        },
        (ColumnKind::Json, _) => Ok(()),
        (kind, _) => Err(bad(&format!("expected {kind:?}, got {v}"))),
    }
}

/// What the crate needs to stamp operations: the node id and the clock.
pub(crate) struct Stamper<'a> {
    pub(crate) node: RowId,
    pub(crate) now_millis: &'a (dyn Fn() -> u64 + Send),
}

/// The clock floor kept in `node_state` (observed remote stamps, pruned operations).
pub(crate) fn clock_floor(conn: &Connection) -> crate::Result<ClockState> {
    let (millis, counter): (i64, i64) = conn
        .prepare_cached("SELECT hlc_millis, hlc_counter FROM node_state WHERE singleton = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(ClockState {
        millis: u64::try_from(millis).unwrap_or(0),
        counter: u32::try_from(counter).unwrap_or(0),
    })
}

/// The stamp of the tenant's newest operation still in the outbox.
fn last_stamp(conn: &Connection, tenant: &TenantId) -> crate::Result<Option<ClockState>> {
    let last: Option<String> = conn
        .prepare_cached(
            "SELECT hlc FROM pending_operations WHERE tenant_id = ?1 ORDER BY hlc DESC LIMIT 1",
        )?
        .query_row([tenant], |r| r.get(0))
        .optional()?;
    last.map(|text| ClockState::from_stored(&text).map_err(crate::Error::Clock))
        .transpose()
}

/// Everything the node's clock has issued or seen: the floor and every tenant's newest
/// pending operation.
pub(crate) fn clock_state(conn: &Connection) -> crate::Result<ClockState> {
    let mut state = clock_floor(conn)?;
    let tenants: Vec<TenantId> = {
        let mut stmt = conn.prepare_cached("SELECT id FROM tenants")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for t in &tenants {
        state = state.max(last_stamp(conn, t)?.unwrap_or_default());
    }
    Ok(state)
}

impl Stamper<'_> {
    /// The next stamp for one of the tenant's operations. Called inside the write transaction:
    /// the operation row it goes into is what persists it, so the clock costs no extra write.
    /// Stamps never go backwards within a tenant (the only place they are ever compared:
    /// merges are per tenant); across tenants, after a wall clock set back, one tenant's new
    /// stamp may be lower than another's.
    fn next(&self, conn: &Connection, tenant: &TenantId) -> crate::Result<Hlc> {
        // The floor and the tenant's newest stamp in one statement: this runs on every write.
        let (millis, counter, last): (i64, i64, Option<String>) = conn
            .prepare_cached(
                "SELECT hlc_millis, hlc_counter,
                        (SELECT hlc FROM pending_operations WHERE tenant_id = ?1
                         ORDER BY hlc DESC LIMIT 1)
                 FROM node_state WHERE singleton = 1",
            )?
            .query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        let floor = ClockState {
            millis: u64::try_from(millis).unwrap_or(0),
            counter: u32::try_from(counter).unwrap_or(0),
        };
        let last = match last {
            None => ClockState::default(),
            Some(text) => ClockState::from_stored(&text).map_err(crate::Error::Clock)?,
        };
        let next = floor
            .max(last)
            .tick((self.now_millis)())
            .map_err(crate::Error::Clock)?;
        Hlc::new(next.millis, next.counter, self.node).map_err(crate::Error::Clock)
    }
}

/// One write as the outbox records it.
pub(crate) struct Change {
    /// Who made it.
    pub(crate) actor: Option<RowId>,
    /// The table written.
    pub(crate) table: &'static TableDef,
    /// The row written.
    pub(crate) row_id: RowId,
    /// What was done.
    pub(crate) kind: OperationKind,
    /// Columns with their values.
    pub(crate) columns: serde_json::Map<String, serde_json::Value>,
}

/// Appends an operation for a write in the caller's transaction. Local-only tables are
/// skipped; anything else is validated first.
pub(crate) fn append(
    conn: &Connection,
    stamper: &Stamper<'_>,
    tenant: &TenantId,
    change: Change,
) -> crate::Result<()> {
    let Change {
        actor,
        table,
        row_id,
        kind,
        columns,
    } = change;
    if table.sync_class == SyncClass::LocalOnly {
        return Ok(());
    }
    let kind = if table.sync_class == SyncClass::Ledger && kind == OperationKind::Insert {
        OperationKind::LedgerAppend
    } else {
        kind
    };
    let op = Operation {
        id: RowId::new(),
        tenant_id: tenant.clone(),
        device_id: stamper.node,
        hlc: stamper.next(conn, tenant)?,
        actor_user_id: actor,
        table: table.name.to_owned(),
        row_id,
        kind,
        columns,
    };
    validate(&op)?;
    conn.prepare_cached(
        "INSERT INTO pending_operations (id, tenant_id, device_id, hlc, actor_user_id, table_name,
                                         row_id, kind, columns, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        op.id,
        op.tenant_id,
        op.device_id.to_string(),
        // The stamp is this node's: the row names the node in device_id already.
        op.hlc.clock_text(),
        op.actor_user_id,
        op.table,
        op.row_id.to_string(),
        op.kind.as_str(),
        crate::ids::Json(serde_json::Value::Object(op.columns)),
        Timestamp::now(),
    ])
    .map_err(|e| crate::Error::on_table("pending_operations", e))?;
    Ok(())
}

/// The tenant's operations not yet acknowledged by the server, in clock order.
pub(crate) fn pending(
    conn: &Connection,
    tenant: &TenantId,
    limit: u32,
) -> crate::Result<Vec<Operation>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, tenant_id, device_id, hlc, table_name, row_id, kind, columns, actor_user_id
         FROM pending_operations WHERE tenant_id = ?1 AND synced_at IS NULL ORDER BY hlc LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![tenant, limit], |r| {
        Ok((
            r.get::<_, RowId>(0)?,
            r.get::<_, TenantId>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, crate::ids::Json>(7)?,
            r.get::<_, Option<RowId>>(8)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, tenant_id, device, hlc, table, row_id, kind, columns, actor_user_id) = row?;
        let malformed = |what: &str| {
            crate::Error::Operation(OperationError::Malformed(format!(
                "stored operation {id}: {what}"
            )))
        };
        let serde_json::Value::Object(columns) = columns.0 else {
            return Err(malformed("columns are not an object"));
        };
        let device_id: RowId = device.parse().map_err(|_| malformed("device id"))?;
        out.push(Operation {
            id,
            tenant_id,
            device_id,
            hlc: Hlc::from_stored(&hlc, device_id).map_err(|_| malformed("clock stamp"))?,
            actor_user_id,
            table,
            row_id: row_id.parse().map_err(|_| malformed("row id"))?,
            kind: kind.parse()?,
            columns,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(table: &str, kind: OperationKind, columns: serde_json::Value) -> Operation {
        let serde_json::Value::Object(columns) = columns else {
            panic!("object")
        };
        Operation {
            id: RowId::new(),
            tenant_id: "caps".parse().unwrap(),
            device_id: RowId::new(),
            hlc: Hlc::new(1, 0, RowId::new()).unwrap(),
            actor_user_id: None,
            table: table.into(),
            row_id: RowId::new(),
            kind,
            columns,
        }
    }

    #[test]
    fn operations_are_checked_against_the_catalog() {
        use serde_json::json;
        use OperationKind::*;
        assert!(validate(&op(
            "price_levels",
            Insert,
            json!({"name": "Trade", "discount_ppm": 5, "created_at": "2026-01-01T00:00:00.000Z"})
        ))
        .is_ok());
        assert!(matches!(
            validate(&op("sessions", Insert, json!({}))),
            Err(OperationError::LocalOnlyTable(_))
        ));
        assert!(matches!(
            validate(&op("nope", Insert, json!({}))),
            Err(OperationError::UnknownTable(_))
        ));
        assert!(matches!(
            validate(&op("inventory_transactions", Update, json!({}))),
            Err(OperationError::KindNotAllowed { .. })
        ));
        assert!(matches!(
            validate(&op("sales", Delete, json!({}))),
            Err(OperationError::KindNotAllowed { .. })
        ));
        assert!(matches!(
            validate(&op("price_levels", Update, json!({"tenant_id": "x"}))),
            Err(OperationError::UnknownColumn { .. })
        ));
        assert!(matches!(
            validate(&op("price_levels", Update, json!({"discount_ppm": "5"}))),
            Err(OperationError::BadValue { .. })
        ));
        assert!(matches!(
            validate(&op("price_levels", Update, json!({"name": null}))),
            Err(OperationError::BadValue { .. })
        ));
        assert!(matches!(
            validate(&op("price_levels", Insert, json!({"name": "x"}))),
            Err(OperationError::MissingColumn { .. })
        ));
        assert!(matches!(
            validate(&op("products", Delete, json!({"sku": "x"}))),
            Err(OperationError::DeleteWithColumns)
        ));
    }

    #[test]
    fn enum_like_columns_take_only_their_words() {
        use serde_json::json;
        use OperationKind::*;
        assert!(validate(&op("products", Update, json!({"kind": "service"}))).is_ok());
        let err = validate(&op("products", Update, json!({"kind": "bogus"}))).unwrap_err();
        assert!(
            matches!(
                &err,
                OperationError::BadValue {
                    table: "products",
                    column: "kind",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("\"bogus\" is not one of"), "{err}");
        assert!(validate(&op("users", Update, json!({"role": "owner"}))).is_err());
        assert!(validate(&op("users", Update, json!({"role": "manager"}))).is_ok());
        // Free text columns are not restricted.
        assert!(validate(&op("products", Update, json!({"name": "bogus"}))).is_ok());
    }

    /// The columns of a CREATE TABLE statement (comments removed), each with its definition,
    /// split at the commas outside parentheses and quotes.
    fn column_definitions(create: &str) -> Vec<String> {
        let text: String = create
            .lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ");
        let body = &text[text.find('(').unwrap() + 1..text.rfind(')').unwrap()];
        let (mut parts, mut current, mut depth, mut quoted) = (Vec::new(), String::new(), 0, false);
        for c in body.chars() {
            match c {
                '\'' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted => depth -= 1,
                ',' if !quoted && depth == 0 => {
                    parts.push(std::mem::take(&mut current).trim().to_owned());
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        parts.push(current.trim().to_owned());
        parts
    }

    /// The expression inside the first `CHECK (...)` of a definition.
    fn check_expression(def: &str) -> Option<&str> {
        let start = def.find("CHECK")? + def[def.find("CHECK")?..].find('(')?;
        let mut depth = 0;
        for (i, c) in def[start..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(&def[start + 1..start + i]);
                    }
                }
                _ => {}
            }
        }
        None
    }

    fn quoted_words(expr: &str) -> Vec<String> {
        expr.split('\'')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_catalogs_words_are_exactly_what_the_schemas_checks_accept() -> crate::Result<()> {
        let store = crate::Store::open_in_memory()?;
        let conn = &store.conn;
        for table in catalog::TABLES {
            let create: String = conn.query_row(
                "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table.name],
                |r| r.get(0),
            )?;
            let defs = column_definitions(&create);
            for def in &defs {
                let first = def.split_whitespace().next().unwrap_or("");
                if table.column(first).is_none() {
                    // Table constraints: none may hide a word list for a column.
                    assert!(quoted_words(def).is_empty(), "{}: {def}", table.name);
                }
            }
            for col in table.columns {
                let def = defs
                    .iter()
                    .find(|d| d.split_whitespace().next() == Some(col.name))
                    .unwrap_or_else(|| panic!("{}.{} not in the schema", table.name, col.name));
                let expr = check_expression(def);
                let words = expr.map(quoted_words).unwrap_or_default();
                let catalog: Vec<String> = col
                    .one_of
                    .unwrap_or_default()
                    .iter()
                    .map(|w| (*w).to_owned())
                    .collect();
                assert_eq!(catalog, words, "{}.{}: {def}", table.name, col.name);
                let Some(expr) = expr.filter(|_| !words.is_empty()) else {
                    continue;
                };
                // The schema's own CHECK expression, evaluated on each word: the text comes
                // from sqlite_schema (our migrations), never from input.
                let sql = format!("SELECT ({expr}) FROM (SELECT ?1 AS \"{}\")", col.name);
                let passes = |w: &str| -> rusqlite::Result<bool> {
                    conn.query_row(&sql, [w], |r| r.get::<_, Option<bool>>(0))
                        .map(|v| v != Some(false))
                };
                for w in &words {
                    assert!(passes(w)?, "{}.{} refuses {w:?}", table.name, col.name);
                }
                assert!(
                    !passes("bogus")?,
                    "{}.{} accepts a bogus word",
                    table.name,
                    col.name
                );
            }
        }
        Ok(())
    }
}
