//! The table catalog: one description of every tenant table from which generic CRUD, `verify`,
//! adoption, the outbox's checks and the report views are driven. Each entry also defines the
//! table's typed record struct, so a new table is one entry plus one migration.
//!
//! The catalog owns every per-table fact; nothing else in the crate keeps its own list of them:
//! - columns, their kinds, references and the words an enum-like column accepts
//!   ([`ColumnDef`]); payment methods are one typed enum, [`PaymentMethod`], whose words the
//!   payment tables accept and whose order reports use;
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
    /// Written once, then amended; never deleted.
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
    /// Written only by the crate itself (audit, sync bookkeeping); readable through the handle.
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
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self>;
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
        $ty:ident => $table:ident ($class:ident, $role:ident, $access:ident) {
            $(
                $(#[doc = $cdoc:literal])*
                $(#[one_of($($words:tt)+)])?
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
                    }),*],
                    state: catalog!(@state $($state $($closed)+)?),
                    balance: catalog!(@balance $ty $($kept)?),
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
                fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
                    let mut i = 0;
                    Ok(Self {
                        id: row.get(0)?,
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

/// Tables that belong to the node rather than to a tenant: the registry and the node's own
/// state (identity and clock). Every other table is a tenant table.
pub const NODE_TABLES: &[&str] = &["tenants", "node_state", "refinery_schema_history"];

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
