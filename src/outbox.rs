//! The outbox: every synced write leaves a pending operation in the same transaction.
//!
//! An [`Operation`] is what a node pushes to the central server, in exactly the JSON form that
//! `pos-node outbox list --json` prints. [`validate`] checks one against the catalog; the node
//! runs it before writing an operation and the server before accepting one.
//!
//! On the node, operations wait in `pending_operations`, with the stamp's clock part only (the
//! node is the row's `device_id`, see migration V3);
//! [`crate::Tenant::pending_operations`] reads them back in wire form.

use std::cell::RefCell;
use std::collections::HashMap;
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
    /// The node id as the outbox stores it, made once per store.
    pub(crate) node_text: &'a str,
    pub(crate) now_millis: &'a (dyn Fn() -> u64 + Send),
    pub(crate) cache: &'a RefCell<ClockCache>,
}

/// The newest stamp of each tenant as one store's connection last saw or issued it, so that
/// stamping a write does not search the outbox's index every time.
///
/// The file is the truth; this is only a copy, trusted while `PRAGMA data_version` says no
/// other connection (another `Store`, another process) has committed since it was read. An
/// entry may be ahead of the file (its write was rolled back): the next stamp then skips a
/// value, which breaks nothing; it is never behind it. Writes of `node_state` or
/// `pending_operations` through the store's own connection other than [`append`] (which keeps
/// it up to date) must [`ClockCache::clear`] it.
#[derive(Debug, Default)]
pub(crate) struct ClockCache {
    /// `PRAGMA data_version` when the entries were read.
    data_version: Option<i64>,
    /// Per tenant: the larger of the clock floor and the tenant's newest stamp.
    newest: HashMap<TenantId, ClockState>,
}

impl ClockCache {
    /// Forgets everything: the next stamp of each tenant reads the file.
    pub(crate) fn clear(&mut self) {
        self.data_version = None;
        self.newest.clear();
    }
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
    ///
    /// Called inside the write transaction, which holds the write lock: no other connection
    /// can commit between the check of the cache and the write of the stamp.
    /// Returns the stamp and the wall-clock reading it was made at.
    fn next(&self, conn: &Connection, tenant: &TenantId) -> crate::Result<(ClockState, u64)> {
        let data_version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        let mut cache = self.cache.borrow_mut();
        if cache.data_version != Some(data_version) {
            cache.clear();
            cache.data_version = Some(data_version);
        }
        let now = (self.now_millis)();
        if let Some(newest) = cache.newest.get_mut(tenant) {
            let next = newest.tick(now).map_err(crate::Error::Clock)?;
            *newest = next;
            return Ok((next, now));
        }
        let next = Self::newest_stored(conn, tenant)?
            .tick(now)
            .map_err(crate::Error::Clock)?;
        cache.newest.insert(tenant.clone(), next);
        Ok((next, now))
    }

    /// The larger of the clock floor and the tenant's newest stamp, as the file has them.
    fn newest_stored(conn: &Connection, tenant: &TenantId) -> crate::Result<ClockState> {
        // The floor and the tenant's newest stamp in one statement.
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
        Ok(floor.max(last))
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
    let (stamp, now) = stamper.next(conn, tenant)?;
    let op = Operation {
        id: RowId::new(),
        tenant_id: tenant.clone(),
        device_id: stamper.node,
        hlc: Hlc::new(stamp.millis, stamp.counter, stamper.node).map_err(crate::Error::Clock)?,
        actor_user_id: actor,
        table: table.name.to_owned(),
        row_id,
        kind,
        columns,
    };
    validate(&op)?;
    let columns = json_text(&op.columns).map_err(|e| crate::Error::InvalidPayload {
        table: table.name,
        reason: e.to_string(),
    })?;
    // On one line: the statement cache hashes the text on every use.
    conn.prepare_cached(
        "INSERT INTO pending_operations (id,tenant_id,device_id,hlc,actor_user_id,table_name,\
         row_id,kind,columns,created_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
    )?
    .execute(params![
        op.id,
        op.tenant_id,
        stamper.node_text,
        // The stamp is this node's: the row names the node in device_id already.
        stamp.stored_text(),
        op.actor_user_id,
        op.table,
        op.row_id,
        op.kind.as_str(),
        columns,
        // Written when stamped, by the same clock reading.
        CreatedAt::at(now),
    ])
    .map_err(|e| crate::Error::on_table("pending_operations", e))?;
    Ok(())
}

/// The JSON text of `value`, byte for byte what `serde_json::to_string` writes: the outbox
/// stores an operation's columns in this form on every write.
///
/// Faster for the flat objects of catalog records: strings with nothing to escape are copied
/// whole instead of byte by byte, ids are written without a temporary string, integers without
/// the formatting machinery. Anything it does not handle itself (a float, 128-bit integers,
/// enum variants with data, non-string map keys) is left to serde_json for the whole value, as
/// is every error.
///
/// ```
/// use pos_tenancy::outbox::json_text;
/// let v = serde_json::json!({"name": "Oil \"filter\"", "qty": -3, "tags": [true, null]});
/// assert_eq!(json_text(&v)?, serde_json::to_string(&v)?);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn json_text<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = String::with_capacity(768);
    match value.serialize(JsonText { out: &mut out }) {
        Ok(()) => Ok(out),
        Err(Fallback) => serde_json::to_string(value),
    }
}

/// What [`JsonText`] leaves to serde_json.
#[derive(Debug)]
struct Fallback;

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to serde_json")
    }
}

impl std::error::Error for Fallback {}

impl serde::ser::Error for Fallback {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Fallback
    }
}

/// The bytes JSON escapes: control characters, the quote and the backslash.
const ESCAPED: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b < 0x20 || b == b'"' as usize || b == b'\\' as usize;
        b += 1;
    }
    t
};

/// Appends `s` as a JSON string's contents, escaped as serde_json escapes.
fn push_escaped(out: &mut String, s: &str) {
    // Short strings (keys, codes) byte by byte through a table; long ones with no early exit,
    // so the check runs over whole vectors of bytes.
    let plain = if s.len() < 16 {
        s.bytes().all(|b| !ESCAPED[usize::from(b)])
    } else {
        s.bytes()
            .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'))
    };
    if plain {
        out.push_str(s);
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Only ASCII bytes are escaped, so `i` is a character boundary.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

fn push_u64(out: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// Escapes what a `Display` writes (ids: `collect_str`), with no temporary string.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_escaped(self.0, s);
        Ok(())
    }
}

/// A serde serializer writing serde_json's compact form into a string (see [`json_text`]).
struct JsonText<'a> {
    out: &'a mut String,
}

/// An object or array being written.
struct Compound<'a> {
    out: &'a mut String,
    first: bool,
}

impl Compound<'_> {
    #[inline]
    fn separate(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.out.push(',');
        }
    }
}

type Unsupported = serde::ser::Impossible<(), Fallback>;

impl<'a> serde::Serializer for JsonText<'a> {
    type Ok = ();
    type Error = Fallback;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Unsupported;
    type SerializeTupleStruct = Unsupported;
    type SerializeTupleVariant = Unsupported;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Unsupported;

    fn serialize_bool(self, v: bool) -> Result<(), Fallback> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Fallback> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), Fallback> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), Fallback> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), Fallback> {
        if v < 0 {
            self.out.push('-');
        }
        push_u64(self.out, v.unsigned_abs());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Fallback> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), Fallback> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), Fallback> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), Fallback> {
        push_u64(self.out, v);
        Ok(())
    }
    fn serialize_f32(self, _: f32) -> Result<(), Fallback> {
        Err(Fallback)
    }
    fn serialize_f64(self, _: f64) -> Result<(), Fallback> {
        Err(Fallback)
    }
    fn serialize_char(self, v: char) -> Result<(), Fallback> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Fallback> {
        self.out.push('"');
        push_escaped(self.out, v);
        self.out.push('"');
        Ok(())
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, v: &T) -> Result<(), Fallback> {
        use fmt::Write;
        self.out.push('"');
        write!(Escaping(self.out), "{v}").map_err(|_| Fallback)?;
        self.out.push('"');
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Fallback> {
        Err(Fallback)
    }
    fn serialize_none(self) -> Result<(), Fallback> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Fallback> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Fallback> {
        self.out.push_str("null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Fallback> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Fallback> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Fallback> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Fallback> {
        Err(Fallback)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, Fallback> {
        self.out.push('[');
        Ok(Compound {
            out: self.out,
            first: true,
        })
    }
    fn serialize_tuple(self, _: usize) -> Result<Unsupported, Fallback> {
        Err(Fallback)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Unsupported, Fallback> {
        Err(Fallback)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Unsupported, Fallback> {
        Err(Fallback)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, Fallback> {
        self.out.push('{');
        Ok(Compound {
            out: self.out,
            first: true,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, Fallback> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Unsupported, Fallback> {
        Err(Fallback)
    }
}

impl serde::ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Fallback;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Fallback> {
        self.separate();
        v.serialize(JsonText { out: self.out })
    }
    fn end(self) -> Result<(), Fallback> {
        self.out.push(']');
        Ok(())
    }
}

impl serde::ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Fallback;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Fallback> {
        self.separate();
        let start = self.out.len();
        key.serialize(JsonText { out: self.out })?;
        // serde_json quotes integer and boolean keys, or refuses the key: its business.
        if !self.out[start..].starts_with('"') {
            return Err(Fallback);
        }
        self.out.push(':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Fallback> {
        v.serialize(JsonText { out: self.out })
    }
    fn end(self) -> Result<(), Fallback> {
        self.out.push('}');
        Ok(())
    }
}

impl serde::ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Fallback;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Fallback> {
        self.separate();
        self.out.push('"');
        push_escaped(self.out, key);
        self.out.push_str("\":");
        v.serialize(JsonText { out: self.out })
    }
    fn end(self) -> Result<(), Fallback> {
        self.out.push('}');
        Ok(())
    }
}

/// An operation's `created_at`: a wall-clock reading in [`Timestamp`]'s text form.
enum CreatedAt {
    Fast([u8; 24]),
    Slow(String),
}

impl CreatedAt {
    fn at(ms: u64) -> Self {
        match rfc3339_millis(ms) {
            Some(text) => CreatedAt::Fast(text),
            None => CreatedAt::Slow(
                i64::try_from(ms)
                    .ok()
                    .and_then(Timestamp::from_millis)
                    .unwrap_or_else(Timestamp::now)
                    .to_rfc3339(),
            ),
        }
    }
}

impl rusqlite::ToSql for CreatedAt {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        let text: &[u8] = match self {
            CreatedAt::Fast(text) => text,
            CreatedAt::Slow(text) => text.as_bytes(),
        };
        Ok(rusqlite::types::ToSqlOutput::Borrowed(
            rusqlite::types::ValueRef::Text(text),
        ))
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the Unix epoch, as
/// [`Timestamp::to_rfc3339`] writes it, without going through chrono's formatter (it runs on
/// every write). `None` after the year 9999.
fn rfc3339_millis(ms: u64) -> Option<[u8; 24]> {
    const MAX: u64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    if ms > MAX {
        return None;
    }
    let (days, ms_of_day) = (ms / 86_400_000, ms % 86_400_000);
    // Days to a civil date (H. Hinnant's algorithm), for days on or after 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let mut t = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for d in t[at..at + width].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, ms_of_day / 3_600_000);
    put(14, 2, ms_of_day / 60_000 % 60);
    put(17, 2, ms_of_day / 1_000 % 60);
    put(20, 3, ms_of_day % 1_000);
    Some(t)
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

    proptest::proptest! {
        #[test]
        fn created_at_is_written_as_timestamps_are(ms in 0u64..=253_402_300_799_999) {
            let fast = rfc3339_millis(ms).map(|t| String::from_utf8_lossy(&t).into_owned());
            let chrono = i64::try_from(ms).ok().and_then(Timestamp::from_millis).map(|t| t.to_rfc3339());
            proptest::prop_assert_eq!(fast, chrono);
        }

        #[test]
        fn json_text_is_serde_jsons_text(value in json_value()) {
            proptest::prop_assert_eq!(json_text(&value).ok(), serde_json::to_string(&value).ok());
        }
    }

    /// Any JSON value a few levels deep, strings from all of Unicode (control characters,
    /// quotes and backslashes included), numbers of every kind.
    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value as J;
        let leaf = prop_oneof![
            Just(J::Null),
            any::<bool>().prop_map(J::Bool),
            any::<i64>().prop_map(J::from),
            any::<u64>().prop_map(J::from),
            any::<f64>().prop_map(J::from),
            any::<String>().prop_map(J::String),
            "[ -~\\x00-\\x1f\\x7f\"\\\\é€😀]{0,40}".prop_map(J::String),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(J::Array),
                proptest::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| J::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn json_text_writes_records_as_serde_json_does() -> crate::Result<()> {
        let p = crate::catalog::Product {
            id: RowId::new(),
            sku: "OF-\"1\"\\\n\u{1}".into(),
            barcode: None,
            name: "Ölfilter 😀".into(),
            description: Some(String::new()),
            brand: Some("x".repeat(100)),
            category_id: Some(RowId::new()),
            kind: "stocked".into(),
            price_minor: -1299,
            cost_minor: i64::MIN,
            currency: "USD".into(),
            taxable: true,
            reorder_level_milli: i64::MAX,
            image: Some(vec![0, 255, 7]),
            active: false,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        };
        let text = json_text(&p).map_err(|e| crate::Error::InvalidPayload {
            table: "products",
            reason: e.to_string(),
        })?;
        assert_eq!(Some(text), serde_json::to_string(&p).ok());
        Ok(())
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
