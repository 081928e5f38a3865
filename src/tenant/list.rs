//! One page of one table's rows: filters on catalog columns, keyset pagination by id.

use rusqlite::types::Value;
use serde::Serialize;

use crate::ids::{RowId, Timestamp};
use crate::tenant::settings::Role;

/// A comparison in a [`ListQuery`] filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterOp {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// SQL `LIKE` with `%` and `_`.
    Like,
    /// `IS NULL` (the value is ignored).
    IsNull,
    /// `IS NOT NULL` (the value is ignored).
    IsNotNull,
}

impl FilterOp {
    pub(super) fn sql(&self) -> &'static str {
        match self {
            FilterOp::Eq => "=",
            FilterOp::Ne => "<>",
            FilterOp::Lt => "<",
            FilterOp::Le => "<=",
            FilterOp::Gt => ">",
            FilterOp::Ge => ">=",
            FilterOp::Like => "LIKE",
            FilterOp::IsNull => "IS NULL",
            FilterOp::IsNotNull => "IS NOT NULL",
        }
    }
}

/// Filters and a keyset page for [`TenantAccess::list`](crate::TenantAccess::list). Rows come in id order (UUIDv7, so
/// creation order); pass a page's [`Page::next`] to [`ListQuery::after`] for the next page.
///
/// ```
/// use pos_tenancy::{FilterOp, ListQuery};
/// let q = ListQuery::new().eq("active", true).filter("price_minor", FilterOp::Lt, 5_000).limit(50);
/// # let _ = q;
/// ```
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub(super) filters: Vec<(String, FilterOp, Value)>,
    pub(super) after: Option<RowId>,
    pub(super) limit: u32,
    pub(super) descending: bool,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self::new()
    }
}

impl ListQuery {
    /// Most rows a page may hold.
    pub const MAX_LIMIT: u32 = 1000;

    /// No filters, the first page of 100 rows, ascending.
    pub fn new() -> Self {
        Self {
            filters: Vec::new(),
            after: None,
            limit: 100,
            descending: false,
        }
    }
    /// Keeps rows where `column op value`.
    pub fn filter(mut self, column: &str, op: FilterOp, value: impl Into<FilterValue>) -> Self {
        self.filters.push((column.to_owned(), op, value.into().0));
        self
    }
    /// Keeps rows where `column = value`.
    pub fn eq(self, column: &str, value: impl Into<FilterValue>) -> Self {
        self.filter(column, FilterOp::Eq, value)
    }
    /// Starts after this id (the previous page's [`Page::next`]).
    pub fn after(mut self, id: RowId) -> Self {
        self.after = Some(id);
        self
    }
    /// Rows per page, 1 to [`ListQuery::MAX_LIMIT`]; default 100.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }
    /// Newest first.
    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }
}

/// A value compared against a column in a [`ListQuery`] filter.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterValue(pub(super) Value);

macro_rules! filter_value_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl From<$t> for FilterValue {
            fn from($v: $t) -> Self {
                FilterValue($e)
            }
        })*
    };
}
filter_value_from!(
    &str => |v| Value::Text(v.to_owned()),
    String => |v| Value::Text(v),
    i64 => |v| Value::Integer(v),
    i32 => |v| Value::Integer(v.into()),
    bool => |v| Value::Integer(v.into()),
    RowId => |v| Value::Text(v.to_string()),
    Timestamp => |v| Value::Text(v.to_rfc3339()),
    Role => |v| Value::Text(v.as_str().to_owned()),
    Vec<u8> => |v| Value::Blob(v),
);

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<R> {
    /// The rows.
    pub rows: Vec<R>,
    /// Where the next page starts, if there is one.
    pub next: Option<RowId>,
}
