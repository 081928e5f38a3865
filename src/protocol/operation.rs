//! One write as it travels: [`Operation`], its [`OperationKind`], and [`validate`], which checks
//! an operation against the catalog. The node runs it before writing an operation to its outbox,
//! the server before accepting one, and the sync merge before applying one, so all refuse the
//! same operations for the same reasons, and an operation the central log holds can be applied
//! on every node: the column rules it checks are the node schema's CHECK constraints, kept as
//! catalog facts ([`ColumnDef`], [`TableDef`]), and no stricter rule lives only in SQL.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::catalog::{self, Bounds, ColumnDef, ColumnKind, SyncClass, TableDef};
use crate::hlc::Hlc;
use crate::ids::{RowId, RowIdError, TenantId, Timestamp};

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

    /// Whether a table of this sync class may take operations of this kind at all; a table's
    /// own entry may take fewer ([`TableDef::allows`]: a document written once is never
    /// updated).
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
    #[serde(deserialize_with = "operation_id")]
    pub id: RowId,
    /// The tenant whose row it is.
    pub tenant_id: TenantId,
    /// The node that wrote it.
    #[serde(deserialize_with = "device_id")]
    pub device_id: RowId,
    /// When, on the writing node's hybrid logical clock.
    pub hlc: Hlc,
    /// The user who made the change (the audit trail travels with the operation).
    #[serde(default, deserialize_with = "actor_user_id")]
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

/// A UUID field of an operation, refused by its name: [`RowId`]'s own error says "row id",
/// which points at `row_id` whichever field was wrong.
fn uuid_field<'de, D: Deserializer<'de>>(d: D, field: &str) -> Result<RowId, D::Error> {
    parse_uuid_field(&<std::borrow::Cow<'de, str>>::deserialize(d)?, field)
}

fn parse_uuid_field<E: serde::de::Error>(text: &str, field: &str) -> Result<RowId, E> {
    text.parse()
        .map_err(|e: RowIdError| E::custom(format!("{field} {:?} is not a UUID", e.value)))
}

fn operation_id<'de, D: Deserializer<'de>>(d: D) -> Result<RowId, D::Error> {
    uuid_field(d, "operation id")
}

fn device_id<'de, D: Deserializer<'de>>(d: D) -> Result<RowId, D::Error> {
    uuid_field(d, "device_id")
}

fn actor_user_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RowId>, D::Error> {
    <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?
        .map(|text| parse_uuid_field(&text, "actor_user_id"))
        .transpose()
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
    /// The kind does not suit the table (say, an update of a ledger row, or of a document
    /// written once: [`TableDef::allows`]).
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
    /// An update of a column a document never changes once written (a sale's total).
    #[error(
        "{table}.{column} is written once and never updated; an update of {table} may set only \
         {amends:?}"
    )]
    NotAmendable {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// The columns an update may set.
        amends: &'static [&'static str],
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

/// Checks an operation against the catalog, so that what one node or the server accepts every
/// node can apply:
/// - a synced table, and a kind the table takes ([`TableDef::allows`]: a document is written
///   once and then updated only in the columns it amends, [`TableDef::amends`]);
/// - columns that exist, each value checked by [`check_column`] (its type, and the rules the
///   node schema's CHECK constraints enforce, from the catalog: allowed words, lengths,
///   ranges, currency codes);
/// - on an update, only columns the table lets an update set; on an insert or a ledger append,
///   every NOT NULL column;
/// - ordered pairs ([`TableDef::ordered`]) in order, and updated together.
pub fn validate(op: &Operation) -> Result<&'static TableDef, OperationError> {
    let table =
        catalog::table(&op.table).ok_or_else(|| OperationError::UnknownTable(op.table.clone()))?;
    if table.sync_class == SyncClass::LocalOnly {
        return Err(OperationError::LocalOnlyTable(table.name));
    }
    if !table.allows(op.kind) {
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
        let col = check_column(table, name, value)?;
        if op.kind == OperationKind::Update && !table.is_amendable(col.name) {
            return Err(OperationError::NotAmendable {
                table: table.name,
                column: col.name,
                amends: table.amends,
            });
        }
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
    check_ordered(table, &op.columns)?;
    Ok(table)
}

/// Checks one column's value against the catalog: the column exists (`id` and `tenant_id`
/// travel outside the columns), the value has the column's type (NULL only where allowed),
/// and it follows the column's rules: one of its words, a length within its bounds (every
/// text, blob and JSON column has some), an integer within its range, a text in its form (an
/// ISO 4217 code). Returns the column's entry.
///
/// [`validate`] checks every column of an operation with it; a form can check one field
/// before a write, and a local-only table's values (which never travel) can be checked too.
///
/// ```
/// use pos_tenancy::catalog::{Product, Record};
/// use pos_tenancy::protocol::check_column;
/// use serde_json::json;
/// assert!(check_column(Product::TABLE, "currency", &json!("USD")).is_ok());
/// let err = check_column(Product::TABLE, "currency", &json!("US Dollar")).unwrap_err();
/// assert!(err.to_string().starts_with("products.currency:"));
/// assert!(check_column(Product::TABLE, "price_minor", &json!(-1)).is_err());
/// assert!(check_column(Product::TABLE, "name", &json!("x".repeat(4 << 20))).is_err());
/// ```
pub fn check_column(
    table: &'static TableDef,
    name: &str,
    value: &serde_json::Value,
) -> Result<&'static ColumnDef, OperationError> {
    let col = table
        .column(name)
        .ok_or_else(|| OperationError::UnknownColumn {
            table: table.name,
            column: shown(name),
        })?;
    check_value(table, col, value)?;
    Ok(col)
}

/// The pairs of [`TableDef::ordered`]: in order when both are given, and never one without
/// the other on an update (the other may stand in the row already, which the operation cannot
/// see, and the pair merges as one writer's only when both travel together).
fn check_ordered(
    table: &'static TableDef,
    columns: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), OperationError> {
    for &(low, high) in table.ordered {
        let bad = |column: &'static str, reason: String| OperationError::BadValue {
            table: table.name,
            column,
            reason,
        };
        match (columns.get(low), columns.get(high)) {
            (None, None) => {}
            (Some(_), None) => {
                return Err(bad(low, format!("is written only together with {high}")))
            }
            (None, Some(_)) => {
                return Err(bad(high, format!("is written only together with {low}")))
            }
            (Some(l), Some(h)) => {
                if let (Some(l), Some(h)) = (l.as_i64(), h.as_i64()) {
                    if l > h {
                        return Err(bad(high, format!("{h} is below {low} ({l})")));
                    }
                }
            }
        }
    }
    Ok(())
}

/// A text as an error message shows it: quoted, and cut short (a refused value may be
/// megabytes long).
fn shown(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}... ({} characters)", &s[..cut], s.chars().count()),
    }
}

/// Whether a text's length in characters (as SQLite's `length()` counts them) is within
/// `bounds`; its length when it is not. Counted only when the byte length cannot tell.
fn text_length(s: &str, bounds: Bounds) -> Result<(), i64> {
    let bytes = i64::try_from(s.len()).unwrap_or(i64::MAX);
    // A character is 1 to 4 bytes: bytes within the bounds, and at least one character when
    // one is all that is asked, settle it.
    if bounds.min <= 1 && bytes <= bounds.max {
        return if bytes >= bounds.min {
            Ok(())
        } else {
            Err(bytes)
        };
    }
    let chars = i64::try_from(s.chars().count()).unwrap_or(i64::MAX);
    if bounds.contains(chars) {
        Ok(())
    } else {
        Err(chars)
    }
}

/// Counts the bytes of a JSON document as serialized, stopping past `max`.
struct ByteCount {
    bytes: i64,
    max: i64,
}

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes = self
            .bytes
            .saturating_add(i64::try_from(buf.len()).unwrap_or(i64::MAX));
        if self.bytes > self.max {
            return Err(std::io::Error::other("past the bound"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn check_value(
    table: &'static TableDef,
    col: &'static ColumnDef,
    v: &serde_json::Value,
) -> Result<(), OperationError> {
    use serde_json::Value as J;
    let bad = |reason: String| OperationError::BadValue {
        table: table.name,
        column: col.name,
        reason,
    };
    let length = |n: i64, unit: &str| match col.length {
        Some(bounds) if !bounds.contains(n) => Err(bad(format!("{n} {unit}, must be {bounds}"))),
        _ => Ok(()),
    };
    match (col.kind, v) {
        (_, J::Null) if col.nullable => Ok(()),
        (_, J::Null) => Err(bad("is NOT NULL".to_owned())),
        (ColumnKind::Text, J::String(s)) => {
            // Enum-like columns: a wrong word would otherwise only fail on the node applying it.
            if let Some(words) = col.one_of {
                if !words.contains(&s.as_str()) {
                    return Err(bad(format!("{:?} is not one of {words:?}", shown(s))));
                }
            }
            if let Some(bounds) = col.length {
                text_length(s, bounds)
                    .map_err(|n| bad(format!("{n} characters, must be {bounds}")))?;
            }
            match col.format {
                Some(format) if !format.accepts(s) => {
                    Err(bad(format!("{:?} is not {}", shown(s), format.describe())))
                }
                _ => Ok(()),
            }
        }
        (ColumnKind::Integer, J::Number(n)) => match (n.as_i64(), col.range) {
            (None, _) => Err(bad(format!("expected a 64-bit integer, got {n}"))),
            (Some(i), Some(range)) if !range.contains(i) => {
                Err(bad(format!("{i} is out of range, must be {range}")))
            }
            _ => Ok(()),
        },
        (ColumnKind::Bool, J::Bool(_)) => Ok(()),
        (ColumnKind::Blob, J::Array(a))
            if a.iter().all(|b| b.as_u64().is_some_and(|b| b <= 255)) =>
        {
            length(i64::try_from(a.len()).unwrap_or(i64::MAX), "bytes")
        }
        // Only the canonical text: ids are compared as text by the composite foreign keys, and
        // timestamps must keep their fixed width to sort.
        (ColumnKind::Id, J::String(s)) => match s.parse::<RowId>() {
            Ok(id) if id.to_string() == *s => Ok(()),
            _ => Err(bad("is not a lowercase hyphenated UUID".to_owned())),
        },
        (ColumnKind::Timestamp, J::String(s)) => match s.parse::<Timestamp>() {
            Ok(t) if t.to_rfc3339() == *s => Ok(()),
            _ => Err(bad(
                "is not a UTC RFC 3339 timestamp with milliseconds (2026-11-24T05:41:06.123Z)"
                    .to_owned(),
            )),
        },
        // Any JSON value is a valid document (the node's `json_valid` CHECK); only its size
        // is bounded.
        (ColumnKind::Json, _) => match col.length {
            Some(bounds) => {
                let mut count = ByteCount {
                    bytes: 0,
                    max: bounds.max,
                };
                match serde_json::to_writer(&mut count, v) {
                    Ok(()) => length(count.bytes, "bytes as JSON"),
                    Err(_) => Err(bad(format!(
                        "over {} bytes as JSON, must be {bounds}",
                        bounds.max
                    ))),
                }
            }
            None => Ok(()),
        },
        (kind, _) => Err(bad(format!("expected {kind:?}, got {}", kind_of(v)))),
    }
}

/// What a JSON value is, for an error message (never the value itself, which may be huge).
fn kind_of(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Null => "null".to_owned(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => n.to_string(),
        J::String(s) => format!("the text {:?}", shown(s)),
        J::Array(a) => format!("an array of {} values", a.len()),
        J::Object(o) => format!("an object of {} members", o.len()),
    }
}
