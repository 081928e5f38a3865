//! The table catalog: one description of every tenant table from which generic CRUD, `verify`,
//! adoption, the outbox's checks and the report views are driven. Each entry also defines the
//! table's typed record struct, so a new table is one entry plus one migration.
//!
//! The catalog owns every per-table fact; nothing else in the crate keeps its own list of them:
//! - columns, their kinds, references and the words an enum-like column accepts
//!   ([`ColumnDef`]); payment methods are one typed enum, [`PaymentMethod`], whose words the
//!   payment tables accept and whose order reports use;
//! - the rules a value must follow beyond its type, which the node schema's CHECK constraints
//!   enforce and [`crate::protocol::validate`] applies to every operation, on the node and on
//!   the server alike, so an operation the central log takes can be applied on every node: a
//!   text's length ([`ColumnDef::length`]; every text, blob and JSON column is bounded), an
//!   integer's range ([`ColumnDef::range`]), a text's form ([`TextFormat`], an ISO 4217 code),
//!   and pairs of columns in order ([`TableDef::ordered`]);
//! - the operation kinds a table takes ([`TableDef::allows`]): master data is inserted,
//!   updated and deleted, a ledger only appended to, a document written once and then amended
//!   only in the columns its entry names ([`TableDef::amends`]);
//! - the columns report SQL never shows ([`ColumnDef::hidden`]);
//! - the column holding a document's state and the states that close it ([`StateDef`]): a
//!   closed document is frozen;
//! - the balance table kept beside a ledger ([`BalanceDef`], listed in [`BALANCES`]), which
//!   `verify` checks, adoption rebuilds and the POS flows read.
//!
//! `tables.rs` holds the entries; this file says what an entry is.

pub(crate) mod ledger;
mod payment;

pub use ledger::BalanceDef;
pub use payment::PaymentMethod;
pub use tables::*;

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use rusqlite::{Row, Statement};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ids::{Json, RowId, Timestamp};
use crate::protocol::OperationKind;
use crate::tenant::settings::Role;

/// How a table's changes travel between terminals (see the design notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SyncClass {
    /// Per-column last-writer-wins by hybrid logical clock.
    MasterData,
    /// Append-only rows merged by union; never updated or deleted.
    Ledger,
    /// Written once, then amended only in the columns its entry names
    /// ([`TableDef::amends`]); never deleted.
    Document,
    /// Never leaves the node.
    LocalOnly,
}

/// Whether applications may write a table through the tenant handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Access {
    /// Written through the handle's CRUD, by actors with at least the table's role.
    Api,
    /// Written only by the crate itself (audit, sync bookkeeping, and the money rows only the
    /// POS flows write); readable through the handle. Generic CRUD refuses it
    /// ([`crate::Error::InternalTable`]); sync applies it from other terminals.
    Internal,
}

/// The storage type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ColumnKind {
    /// Free text.
    Text,
    /// A 64-bit integer (money in minor units, quantities in thousandths).
    Integer,
    /// 0 or 1.
    Bool,
    /// Bytes.
    Blob,
    /// A [`RowId`] as text.
    Id,
    /// A [`Timestamp`] as RFC 3339 text.
    Timestamp,
    /// A JSON document as text.
    Json,
}

impl ColumnKind {
    /// The declared SQLite type of columns of this kind.
    pub fn sql_type(&self) -> &'static str {
        match self {
            ColumnKind::Integer | ColumnKind::Bool => "INTEGER",
            ColumnKind::Blob => "BLOB",
            _ => "TEXT",
        }
    }
}

/// Rust types that map to a column kind.
pub trait ColumnType {
    /// The kind stored.
    const KIND: ColumnKind;
    /// Whether NULL is allowed.
    const NULLABLE: bool = false;
}

macro_rules! column_type {
    ($($t:ty => $k:ident),* $(,)?) => {
        $(impl ColumnType for $t { const KIND: ColumnKind = ColumnKind::$k; })*
    };
}
column_type!(String => Text, i64 => Integer, bool => Bool, Vec<u8> => Blob, RowId => Id,
    Timestamp => Timestamp, Json => Json, Role => Text);

impl<T: ColumnType> ColumnType for Option<T> {
    const KIND: ColumnKind = T::KIND;
    const NULLABLE: bool = true;
}

/// One column of a table, other than `id` and `tenant_id` which every table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ColumnDef {
    /// Column name.
    pub name: &'static str,
    /// Storage type.
    pub kind: ColumnKind,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// The tenant table this column points at (by `(tenant_id, id)`), if it is a reference.
    pub references: Option<&'static str>,
    /// The only words a text column may hold (its CHECK constraint), if it is enum-like.
    pub one_of: Option<&'static [&'static str]>,
    /// Kept out of the report views: report SQL can never read it (a PIN hash).
    pub hidden: bool,
    /// The shortest and longest value: a text's length in characters (as SQLite's `length()`
    /// counts them), a blob's or a JSON document's (serialized) in bytes. Every text, blob and
    /// JSON column has one ([`TEXT_MAX_CHARS`], [`BLOB_MAX_BYTES`], [`JSON_MAX_BYTES`] unless
    /// its entry says otherwise); ids and timestamps have a fixed form instead.
    pub length: Option<Bounds>,
    /// The least and greatest value of an integer column, if it is bounded (amounts that are
    /// never negative, rates in parts per million, model years).
    pub range: Option<Bounds>,
    /// The form a text column's value must have, if any (an ISO 4217 currency code).
    pub format: Option<TextFormat>,
}

/// The least and greatest of something, both included: a length or a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Bounds {
    /// The least.
    pub min: i64,
    /// The greatest.
    pub max: i64,
}

impl Bounds {
    /// From `min` to `max`, both included.
    pub const fn new(min: i64, max: i64) -> Self {
        Self { min, max }
    }

    /// Whether `v` lies within.
    pub fn contains(&self, v: i64) -> bool {
        self.min <= v && v <= self.max
    }
}

impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (min, i64::MAX) => write!(f, "at least {min}"),
            (min, max) if min == max => write!(f, "exactly {min}"),
            (0, max) => write!(f, "at most {max}"),
            (min, max) => write!(f, "from {min} to {max}"),
        }
    }
}

/// A form a text column's value must have beyond its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TextFormat {
    /// An active ISO 4217 currency code, in capitals ("USD"; see [`crate::is_iso4217`]). The
    /// node schema checks only `length(currency) = 3`; a node's flows compare currencies with
    /// the tenant's, which is such a code, so anything else could never be sold in.
    Currency,
}

impl TextFormat {
    /// Whether `text` has this form.
    pub fn accepts(&self, text: &str) -> bool {
        match self {
            TextFormat::Currency => crate::tenant::settings::is_iso4217(text),
        }
    }

    /// What the form is, for a person.
    pub fn describe(&self) -> &'static str {
        match self {
            TextFormat::Currency => "an ISO 4217 currency code in capitals (USD, EUR)",
        }
    }
}

/// The longest text a column holds unless its catalog entry says otherwise: a name, a code, a
/// label, a reference. Notes, descriptions and paths name their own (up to a few thousand).
pub const TEXT_MAX_CHARS: i64 = 200;
/// The largest blob a column holds (a product's thumbnail).
pub const BLOB_MAX_BYTES: i64 = 64 * 1024;
/// The largest JSON document a column holds, serialized: enough for a conflict, which holds a
/// whole row of the largest table.
pub const JSON_MAX_BYTES: i64 = 1024 * 1024;

/// The length a column of this kind has unless its entry names one.
const fn default_length(kind: ColumnKind) -> Option<Bounds> {
    match kind {
        ColumnKind::Text => Some(Bounds::new(0, TEXT_MAX_CHARS)),
        ColumnKind::Blob => Some(Bounds::new(0, BLOB_MAX_BYTES)),
        ColumnKind::Json => Some(Bounds::new(0, JSON_MAX_BYTES)),
        _ => None,
    }
}

/// One tenant table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TableDef {
    /// Table name.
    pub name: &'static str,
    /// How its changes sync.
    pub sync_class: SyncClass,
    /// The least role that may write it.
    pub write_role: Role,
    /// Whether applications may write it.
    pub access: Access,
    /// Its columns after `id` and `tenant_id`, in schema order.
    pub columns: &'static [ColumnDef],
    /// For a document with a life cycle: its state column and the states that close it.
    pub state: Option<StateDef>,
    /// For a ledger whose sums are kept: the balance table beside it.
    pub balance: Option<&'static BalanceDef>,
    /// For a document amended after it is written: the only columns an update may set (its
    /// state, and what closing it records). Empty for every other table: master data updates
    /// any column; ledgers, and documents with none named, are never updated.
    pub amends: &'static [&'static str],
    /// Pairs of integer columns `(low, high)` where `low` may not exceed `high` (a fitment's
    /// first and last model year). An update sets both or neither, so the pair a row ends
    /// with is always one writer's, whatever order updates merge in.
    pub ordered: &'static [(&'static str, &'static str)],
}

/// Where a document keeps its state and which states close it. A closed document is frozen:
/// the handle refuses to update it ([`crate::Error::AppendOnly`]), and what follows (a refund, a
/// payment back) is written as new rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StateDef {
    /// The state column.
    pub column: &'static str,
    /// The states that close the document.
    pub closed: &'static [&'static str],
}

impl StateDef {
    /// Whether `state` closes the document.
    pub fn is_closed(&self, state: &str) -> bool {
        self.closed.contains(&state)
    }
}

impl TableDef {
    /// The column with this name, if the table has it.
    pub fn column(&self, name: &str) -> Option<&'static ColumnDef> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether `state` closes a document of this table (never, for a table with no
    /// [`TableDef::state`]).
    pub fn is_closed(&self, state: &str) -> bool {
        self.state.is_some_and(|s| s.is_closed(state))
    }

    /// Whether operations of `kind` may write this table: master data takes inserts, updates
    /// and deletes; a ledger only appends; a document is inserted once, and updated only if
    /// its entry names columns it amends ([`TableDef::amends`]). A local-only table takes
    /// none: it never leaves the node.
    pub fn allows(&self, kind: OperationKind) -> bool {
        match (self.sync_class, kind) {
            (SyncClass::MasterData, OperationKind::Insert)
            | (SyncClass::MasterData, OperationKind::Update)
            | (SyncClass::MasterData, OperationKind::Delete)
            | (SyncClass::Ledger, OperationKind::LedgerAppend)
            | (SyncClass::Document, OperationKind::Insert) => true,
            (SyncClass::Document, OperationKind::Update) => !self.amends.is_empty(),
            _ => false,
        }
    }

    /// Whether an update may set `column`: any column of master data, the columns a document
    /// amends ([`TableDef::amends`]), none of a ledger.
    pub fn is_amendable(&self, column: &str) -> bool {
        match self.sync_class {
            SyncClass::MasterData | SyncClass::LocalOnly => true,
            SyncClass::Document => self.amends.contains(&column),
            _ => false,
        }
    }

    /// Every column name in schema order: `id`, `tenant_id`, then [`TableDef::columns`].
    pub fn all_column_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        ["id", "tenant_id"]
            .into_iter()
            .chain(self.columns.iter().map(|c| c.name))
    }
}

mod sealed {
    /// Only this module's catalog structs are records: the handle trusts a record's table
    /// entry (its name, write role) and its binding of columns.
    pub trait Sealed {}
}

/// A typed row of one catalog table. Implemented by every record struct of the catalog (and sealed:
/// nothing else can claim to be a row of a catalog table); the generic CRUD of the tenant handle
/// works on any `Record`.
pub trait Record:
    sealed::Sealed + Clone + fmt::Debug + Serialize + DeserializeOwned + Send + 'static
{
    /// The table's catalog entry.
    const TABLE: &'static TableDef;

    /// The row id.
    fn id(&self) -> RowId;

    /// Binds the columns after `id` and `tenant_id`, in catalog order, to parameters `first..`.
    #[doc(hidden)]
    fn bind_columns(&self, stmt: &mut Statement<'_>, first: usize) -> rusqlite::Result<()>;

    /// Reads a row selected as `id, <columns in catalog order>`.
    #[doc(hidden)]
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Self::from_row_at(row, 0)
    }

    /// Reads a row selected as `id, <columns in catalog order>` from result column `first`
    /// on (after columns of a join).
    #[doc(hidden)]
    fn from_row_at(row: &Row<'_>, first: usize) -> rusqlite::Result<Self>;
}

/// Something to do with a record type chosen by table name at run time.
pub trait RecordVisitor {
    /// What the visit returns.
    type Output;
    /// Called with the record type of the table.
    fn visit<R: Record>(self) -> Self::Output;
}

macro_rules! catalog {
    (@parent) => { None };
    (@parent $parent:ident) => { Some(stringify!($parent)) };
    (@words) => { None };
    (@words $($word:literal),+ $(,)?) => { Some(&[$($word),+]) };
    // A list named once and shared (`#[one_of(PaymentMethod::WORDS)]`).
    (@words $list:path) => { Some($list) };
    (@hidden) => { false };
    (@hidden $why:literal) => { true };
    // `#[len(..=4000)]`, `#[len(1..=64)]`: a text's length in characters.
    (@len $kind:expr;) => { default_length($kind) };
    (@len $kind:expr; ..= $max:literal) => { Some(Bounds::new(0, $max)) };
    (@len $kind:expr; $min:literal ..= $max:literal) => { Some(Bounds::new($min, $max)) };
    // `#[range(0..)]`, `#[range(1886..=2100)]`: an integer's value.
    (@range) => { None };
    (@range $min:literal ..) => { Some(Bounds::new($min, i64::MAX)) };
    (@range $min:literal ..= $max:literal) => { Some(Bounds::new($min, $max)) };
    (@format) => { None };
    (@format $format:ident) => { Some(TextFormat::$format) };
    (@state) => { None };
    (@state $column:ident $($closed:literal)+) => {
        Some(StateDef { column: stringify!($column), closed: &[$($closed),+] })
    };
    (@balance $ty:ident) => { None };
    (@balance $ty:ident $kept:ident) => { Some(<$ty as KeptBalance>::BALANCE) };
    (@kept $ty:ident $kept:ident) => { *<$ty as KeptBalance>::BALANCE };
    ($(
        $(#[doc = $tdoc:literal])*
        $(#[balance($kept:ident . $value:ident = sum($amount:ident) by $($key:ident),+)])?
        $(#[closed_when($state:ident in $($closed:literal),+)])?
        $(#[amends($($amended:ident),+)])?
        $(#[ordered($low:ident <= $high:ident)])?
        $ty:ident => $table:ident ($class:ident, $role:ident, $access:ident) {
            $(
                $(#[doc = $cdoc:literal])*
                $(#[one_of($($words:tt)+)])?
                $(#[len($($len:tt)+)])?
                $(#[range($($range:tt)+)])?
                $(#[format($format:ident)])?
                $(#[hidden($why:literal)])?
                $col:ident : $cty:ty $(=> $parent:ident)?
            ),* $(,)?
        }
    )*) => {
        $(
            $(#[doc = $tdoc])*
            #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
            #[serde(deny_unknown_fields)]
            pub struct $ty {
                /// Row id.
                pub id: RowId,
                $( $(#[doc = $cdoc])* pub $col: $cty, )*
            }

            impl sealed::Sealed for $ty {}

            impl Record for $ty {
                const TABLE: &'static TableDef = &TableDef {
                    name: stringify!($table),
                    sync_class: SyncClass::$class,
                    write_role: Role::$role,
                    access: Access::$access,
                    columns: &[$(ColumnDef {
                        name: stringify!($col),
                        kind: <$cty as ColumnType>::KIND,
                        nullable: <$cty as ColumnType>::NULLABLE,
                        references: catalog!(@parent $($parent)?),
                        one_of: catalog!(@words $($($words)+)?),
                        hidden: catalog!(@hidden $($why)?),
                        length: catalog!(@len <$cty as ColumnType>::KIND; $($($len)+)?),
                        range: catalog!(@range $($($range)+)?),
                        format: catalog!(@format $($format)?),
                    }),*],
                    state: catalog!(@state $($state $($closed)+)?),
                    balance: catalog!(@balance $ty $($kept)?),
                    amends: &[$($(stringify!($amended)),+)?],
                    ordered: &[$((stringify!($low), stringify!($high)))?],
                };

                fn id(&self) -> RowId {
                    self.id
                }

                #[allow(unused_assignments, unused_mut, unused_variables)]
                fn bind_columns(&self, stmt: &mut Statement<'_>, first: usize) -> rusqlite::Result<()> {
                    let mut i = first;
                    $( stmt.raw_bind_parameter(i, &self.$col)?; i += 1; )*
                    Ok(())
                }

                #[allow(unused_assignments, unused_mut)]
                fn from_row_at(row: &Row<'_>, first: usize) -> rusqlite::Result<Self> {
                    let mut i = first;
                    Ok(Self {
                        id: row.get(first)?,
                        $( $col: { i += 1; row.get(i)? }, )*
                    })
                }
            }

            $(
                impl KeptBalance for $ty {
                    const BALANCE: &'static BalanceDef = &BalanceDef {
                        table: stringify!($kept),
                        keys: &[$(stringify!($key)),+],
                        value: stringify!($value),
                        ledger: stringify!($table),
                        amount: stringify!($amount),
                    };
                    const READ_SQL: &'static str = concat!(
                        "SELECT ", stringify!($value), " FROM ", stringify!($kept),
                        " WHERE tenant_id = ?1" $(, " AND ", stringify!($key), " = ?")+
                    );
                }
            )?
        )*

        /// Every tenant table, in migration order (parents before children).
        pub static TABLES: &[&TableDef] = &[$(<$ty as Record>::TABLE),*];

        /// Every balance table kept beside a ledger, in catalog order: the
        /// [`TableDef::balance`] of each ledger that has one.
        pub const BALANCES: &[BalanceDef] = &[$($(catalog!(@kept $ty $kept),)?)*];

        /// Calls `visitor` with the record type of the table named `name`; `None` if the catalog
        /// has no such table.
        pub fn visit_table<V: RecordVisitor>(name: &str, visitor: V) -> Option<V::Output> {
            match name {
                $( stringify!($table) => Some(visitor.visit::<$ty>()), )*
                _ => None,
            }
        }
    };
}

// After the macro: the entries use it.
mod tables;

/// Tables that belong to the node rather than to a tenant: the registry, the node's own state
/// (identity and clock), the indexes a bulk pull set aside (indexes span every tenant), and
/// where tenants live (their moves between files and the rule for them).
/// Every other table is a tenant table.
pub const NODE_TABLES: &[&str] = &[
    "tenants",
    "node_state",
    "deferred_indexes",
    "tenant_moves",
    "storage_settings",
    "refinery_schema_history",
];

/// Secondary indexes the merge reads through while it applies a page (what is left to refund
/// of a sale line), so a bulk pull never sets them aside.
pub const MERGE_READ_INDEXES: &[&str] = &["sale_reversals_line"];

/// The catalog entry of the table named `name`.
pub fn table(name: &str) -> Option<&'static TableDef> {
    static BY_NAME: OnceLock<HashMap<&'static str, &'static TableDef>> = OnceLock::new();
    BY_NAME
        .get_or_init(|| TABLES.iter().map(|t| (t.name, *t)).collect())
        .get(name)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_found_by_name_and_visitable() {
        struct Name;
        impl RecordVisitor for Name {
            type Output = &'static str;
            fn visit<R: Record>(self) -> &'static str {
                R::TABLE.name
            }
        }
        assert_eq!(TABLES.len(), 39);
        for t in TABLES {
            assert_eq!(table(t.name), Some(*t));
            assert_eq!(visit_table(t.name, Name), Some(t.name));
        }
        assert!(table("sqlite_master").is_none());
    }

    #[test]
    fn every_id_column_names_the_table_it_references() {
        for t in TABLES {
            for c in t.columns {
                assert_eq!(
                    c.kind == ColumnKind::Id,
                    c.references.is_some(),
                    "{}.{}",
                    t.name,
                    c.name
                );
                if let Some(parent) = c.references {
                    assert!(table(parent).is_some(), "{}.{} -> {parent}", t.name, c.name);
                }
            }
        }
    }

    #[test]
    fn every_document_state_is_a_column_that_accepts_its_closed_states() {
        let mut documents = Vec::new();
        for t in TABLES {
            let Some(state) = t.state else { continue };
            assert_eq!(t.sync_class, SyncClass::Document, "{}", t.name);
            let column = t.column(state.column).map(|c| c.one_of);
            let words = column.flatten().unwrap_or_default();
            assert!(!state.closed.is_empty(), "{}", t.name);
            for closed in state.closed {
                assert!(
                    words.contains(closed),
                    "{}.{} {closed}",
                    t.name,
                    state.column
                );
            }
            documents.push(t.name);
        }
        assert_eq!(documents, ["sales", "layaways", "work_orders"]);
        assert!(Sale::TABLE.is_closed("voided") && !Sale::TABLE.is_closed("layaway"));
        assert!(Layaway::TABLE.is_closed("cancelled") && !Layaway::TABLE.is_closed("open"));
        assert!(!WorkOrder::TABLE.is_closed("in_progress"));
        assert!(!SaleLine::TABLE.is_closed("completed"));
    }

    #[test]
    fn every_kept_balance_sums_a_column_of_its_ledger_by_ledger_columns() {
        let kept: Vec<&str> = TABLES
            .iter()
            .filter_map(|t| t.balance.map(|b| (t, b)))
            .map(|(t, b)| {
                assert_eq!(t.sync_class, SyncClass::Ledger, "{}", t.name);
                assert_eq!(b.ledger, t.name);
                assert_eq!(
                    t.column(b.amount).map(|c| c.kind),
                    Some(ColumnKind::Integer),
                    "{}",
                    b.table
                );
                for key in b.keys {
                    assert!(t.column(key).is_some(), "{}.{key}", t.name);
                }
                assert!(
                    table(b.table).is_none(),
                    "{} is not a tenant table",
                    b.table
                );
                b.table
            })
            .collect();
        let listed: Vec<&str> = BALANCES.iter().map(|b| b.table).collect();
        assert_eq!(kept, listed);
        assert_eq!(listed.len(), 4);
    }

    #[test]
    fn only_the_pin_hash_is_hidden_from_reports() {
        let hidden: Vec<(&str, &str)> = TABLES
            .iter()
            .flat_map(|t| t.columns.iter().map(move |c| (t, c)))
            .filter(|(_, c)| c.hidden)
            .map(|(t, c)| (t.name, c.name))
            .collect();
        assert_eq!(hidden, [("users", "pin_hash")]);
    }

    #[test]
    fn the_payment_tables_accept_exactly_the_payment_methods() {
        for t in [SalePayment::TABLE, LayawayPayment::TABLE] {
            let words = t.column("method").and_then(|c| c.one_of);
            assert_eq!(words, Some(PaymentMethod::WORDS), "{}", t.name);
        }
    }

    #[test]
    fn every_text_blob_and_json_column_is_bounded_and_rules_suit_their_kinds() {
        for t in TABLES {
            for c in t.columns {
                let at = format!("{}.{}", t.name, c.name);
                let bounded = matches!(
                    c.kind,
                    ColumnKind::Text | ColumnKind::Blob | ColumnKind::Json
                );
                assert_eq!(c.length.is_some(), bounded, "{at}");
                if let Some(l) = c.length {
                    assert!(
                        0 <= l.min && l.min <= l.max && l.max <= JSON_MAX_BYTES,
                        "{at}"
                    );
                }
                if c.range.is_some() {
                    assert_eq!(c.kind, ColumnKind::Integer, "{at}");
                }
                if c.format.is_some() || c.one_of.is_some() {
                    assert_eq!(c.kind, ColumnKind::Text, "{at}");
                }
            }
        }
        // What the issue found a server storing, and no node could apply.
        let currency = Product::TABLE.column("currency").and_then(|c| c.format);
        assert_eq!(currency, Some(TextFormat::Currency));
        assert!(["USD", "EUR"]
            .iter()
            .all(|c| TextFormat::Currency.accepts(c)));
        assert!(["usd", "QQQ", "US Dollar", ""]
            .iter()
            .all(|c| !TextFormat::Currency.accepts(c)));
        let price = Product::TABLE.column("price_minor").and_then(|c| c.range);
        assert_eq!(price, Some(Bounds::new(0, i64::MAX)));
        assert_eq!(Bounds::new(1, 64).to_string(), "from 1 to 64");
        assert_eq!(Bounds::new(0, 200).to_string(), "at most 200");
        assert_eq!(Bounds::new(0, i64::MAX).to_string(), "at least 0");
        assert_eq!(Bounds::new(64, 64).to_string(), "exactly 64");
    }

    #[test]
    fn documents_amend_only_named_columns_and_their_state_is_one() {
        let mut amended = Vec::new();
        for t in TABLES {
            for c in t.amends {
                assert!(t.column(c).is_some(), "{}.{c}", t.name);
            }
            if t.sync_class != SyncClass::Document {
                assert!(t.amends.is_empty(), "{}", t.name);
            }
            if let Some(state) = t.state {
                assert!(t.amends.contains(&state.column), "{}", t.name);
            }
            for &(low, high) in t.ordered {
                for c in [low, high] {
                    let kind = t.column(c).map(|c| c.kind);
                    assert_eq!(kind, Some(ColumnKind::Integer), "{}.{c}", t.name);
                }
            }
            if !t.amends.is_empty() {
                amended.push(t.name);
            }
        }
        // The POS flows amend exactly these: a sale's status (a layaway completed or
        // cancelled), a layaway's status and closing time, a work order's status, sale and
        // completion time.
        assert_eq!(amended, ["sales", "layaways", "work_orders"]);
        assert_eq!(Sale::TABLE.amends, ["status"]);
        assert_eq!(Layaway::TABLE.amends, ["status", "closed_at"]);
        assert_eq!(
            WorkOrder::TABLE.amends,
            ["status", "sale_id", "completed_at"]
        );
        use OperationKind::*;
        let kinds = |t: &TableDef| -> Vec<OperationKind> {
            [Insert, Update, Delete, LedgerAppend]
                .into_iter()
                .filter(|k| t.allows(*k))
                .collect()
        };
        assert_eq!(kinds(Product::TABLE), [Insert, Update, Delete]);
        assert_eq!(kinds(Sale::TABLE), [Insert, Update]);
        assert_eq!(kinds(SaleLine::TABLE), [Insert]);
        assert_eq!(kinds(SalePayment::TABLE), [Insert]);
        assert_eq!(kinds(GiftCardTransaction::TABLE), [LedgerAppend]);
        assert!(kinds(Session::TABLE).is_empty());
        assert!(Sale::TABLE.is_amendable("status") && !Sale::TABLE.is_amendable("total_minor"));
        assert!(Product::TABLE.is_amendable("price_minor"));
        assert!(!GiftCardTransaction::TABLE.is_amendable("amount_minor"));
    }

    #[test]
    fn money_rows_that_set_refund_caps_are_written_only_by_flows_and_sync() {
        let internal: Vec<&str> = TABLES
            .iter()
            .filter(|t| t.access == Access::Internal)
            .map(|t| t.name)
            .collect();
        assert_eq!(
            internal,
            [
                "audit_log",
                "sale_payments",
                "layaway_payments",
                "loyalty_transactions",
                "sync_log",
                "sync_conflicts",
                "pending_operations",
                "sale_reversals",
                "sync_state",
                "sync_stamps",
            ]
        );
    }

    #[test]
    fn no_catalog_column_shadows_the_keys() {
        for t in TABLES {
            assert!(
                t.column("id").is_none() && t.column("tenant_id").is_none(),
                "{}",
                t.name
            );
        }
    }
}
