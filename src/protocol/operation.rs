//! One write as it travels: [`Operation`], its [`OperationKind`], and [`validate`], which checks
//! an operation against the catalog. The node runs it before writing an operation to its outbox
//! and the server before accepting one, so both refuse the same operations for the same reasons.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::catalog::{self, ColumnDef, ColumnKind, SyncClass, TableDef};
use crate::hlc::Hlc;
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
    /// The local transaction the operation belongs to. Receivers apply a transaction's
    /// operations together, in one transaction of their own, once they hold its last one; an
    /// operation without a unit stands alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    /// For an update: the newest stamp the row had on the writing node when it was changed, so
    /// a receiver can tell an edit made over its own value from a concurrent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Hlc>,
}

/// Where an operation stands in the local transaction that wrote it (a checkout writes a sale,
/// its lines, payments, stock and points rows in one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Unit {
    /// The transaction: the id of its first operation.
    pub txn: RowId,
    /// Whether this is the transaction's last operation.
    pub last: bool,
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
