//! The read-only SQL escape hatch for reports.
//!
//! Reports run on a second, read-only connection to the same database. On it, every catalog
//! table name (and `tenants`) is a TEMP view; because SQLite looks names up in `temp` before
//! `main`, `SELECT * FROM sales` reads the view. Each public view reads an inner view whose name
//! is random per connection, and only the inner view reads the real table, filtered to the
//! current tenant. The authorizer allows a read of a real table only when that inner view is
//! the accessor: a CTE named `sales` that reads `main.sales` has accessor `sales` and is
//! refused, and nobody can name the inner view without knowing it. The inner views leave out
//! the columns the catalog marks hidden ([`crate::catalog::ColumnDef::hidden`]: a PIN hash). Everything else that is not
//! a plain read is refused: writes, ATTACH, PRAGMA (including `pragma_*` table functions),
//! `sqlite_schema`. A deadline, a row cap, a value-size limit and a cap on the bytes of the
//! whole result bound what one report may cost the terminal. The deadline holds while SQLite
//! computes rows (its progress handler) and while they are read and converted (checked before
//! each value), and the byte cap is checked before a value is converted, so a result is never
//! built past it (`SELECT n, zeroblob(1000000)` over 5,000 rows used to reach 2 GB and run
//! 50 s against a 30 s limit: converting a value runs no SQLite instruction).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::functions::FunctionFlags;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::catalog;
use crate::error::Error;
use crate::ids::TenantId;
use crate::store::{Location, BUSY_TIMEOUT};

/// Why a report query was refused or failed. Nothing is ever changed by a report query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The statement tried something reports may not do.
    #[error("query refused: {0}")]
    Refused(String),
    /// Not exactly one statement.
    #[error("query refused: exactly one SELECT statement is allowed")]
    NotOneStatement,
    /// A statement that would write.
    #[error("query refused: only read-only SELECT statements are allowed")]
    NotReadOnly,
    /// It ran past the time a report may take and was stopped.
    #[error("query stopped: it ran longer than {0:?}")]
    TimedOut(Duration),
    /// It returned more rows than a report may.
    #[error("query stopped: more than {0} rows; add a LIMIT or aggregate")]
    TooManyRows(usize),
    /// Its result holds more bytes than a report may ([`MAX_RESULT_BYTES`], counted as
    /// described there).
    #[error(
        "query stopped: its result is larger than {} MiB; select fewer or shorter columns \
         (substr() of long texts, length() of blobs), add a LIMIT or aggregate",
        .0 / (1024 * 1024)
    )]
    TooLarge(usize),
    /// SQLite could not compile or run it (syntax error, unknown column...).
    #[error("query failed: {0}")]
    Sql(String),
}

/// The rows a report query returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryResult {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows of JSON values (blobs as lowercase hex text).
    pub rows: Vec<Vec<serde_json::Value>>,
}

impl QueryResult {
    /// The rows as JSON objects keyed by column name.
    pub fn to_objects(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.rows
            .iter()
            .map(|row| {
                self.columns
                    .iter()
                    .cloned()
                    .zip(row.iter().cloned())
                    .collect()
            })
            .collect()
    }
}

/// State shared with the SQL function, the authorizer and the progress handler.
#[derive(Default)]
struct Shared {
    tenant: Option<String>,
    refusal: Option<String>,
    deadline: Option<Instant>,
}

/// How long one report may run unless the store says otherwise.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many rows one report may return.
pub const MAX_ROWS: usize = 100_000;
/// The largest text or blob value a report may build, in bytes.
pub const MAX_VALUE_BYTES: i32 = 1_000_000;
/// The largest result a report may return, in bytes: each value counts its text (a blob its
/// hex text, twice its length) plus a fixed [`VALUE_OVERHEAD_BYTES`], so the bound is on the
/// memory the result holds, whatever the shape of its rows; far more than a report shown on
/// a terminal needs.
pub const MAX_RESULT_BYTES: usize = 16 * 1024 * 1024;
/// What one value of a result counts besides its text, in bytes: the size of a JSON value
/// (a number, a NULL or a boolean is counted as this alone).
pub const VALUE_OVERHEAD_BYTES: usize = std::mem::size_of::<serde_json::Value>();

pub(crate) struct ReportConnection {
    conn: Connection,
    shared: Arc<Mutex<Shared>>,
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The function the views filter on: the tenant of the query being run, NULL otherwise (so a
/// view read outside [`ReportConnection::run`] matches no row).
const CURRENT_TENANT_FN: &str = "pos_current_tenant";

impl ReportConnection {
    pub(crate) fn open(location: &Location) -> Result<Self, Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match location {
            Location::File(path) => Connection::open_with_flags(path, flags),
            Location::Memory(uri) => Connection::open_with_flags(uri, flags),
        }?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let shared = Arc::new(Mutex::new(Shared::default()));

        let for_fn = Arc::clone(&shared);
        conn.create_scalar_function(
            CURRENT_TENANT_FN,
            0,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_INNOCUOUS,
            move |_| Ok(lock(&for_fn).tenant.clone()),
        )?;

        // table name -> name of its inner (filtered) view, random for this connection.
        // v4: 122 random bits (a v7 id is mostly a timestamp).
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let mut inner: HashMap<String, String> = HashMap::new();
        let mut public: Vec<(&str, Vec<&str>)> = catalog::TABLES
            .iter()
            .map(|t| {
                // The catalog's hidden columns (a PIN hash) are never in a view.
                let cols = t
                    .all_column_names()
                    .filter(|c| !t.column(c).is_some_and(|c| c.hidden))
                    .collect();
                (t.name, cols)
            })
            .collect();
        public.push((
            "tenants",
            vec![
                "id",
                "name",
                "status",
                "plan",
                "max_users",
                "max_api_calls_month",
                "tier",
                "settings",
                "created_at",
                "updated_at",
            ],
        ));
        for (table, cols) in &public {
            // Catalog identifiers and our own random name only; the tenant comes from the
            // function at run time.
            let key = if *table == "tenants" {
                "id"
            } else {
                "tenant_id"
            };
            let hidden = format!("_pos_{secret}_{table}");
            let cols = cols
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ");
            conn.execute_batch(&format!(
                "CREATE TEMP VIEW \"{hidden}\" AS SELECT {cols} FROM main.\"{table}\" \
                 WHERE \"{key}\" = {CURRENT_TENANT_FN}();
                 CREATE TEMP VIEW \"{table}\" AS SELECT * FROM temp.\"{hidden}\";"
            ))?;
            inner.insert((*table).to_owned(), hidden);
        }
        conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)?;
        let for_progress = Arc::clone(&shared);
        conn.progress_handler(
            10_000,
            Some(move || {
                lock(&for_progress)
                    .deadline
                    .is_some_and(|d| Instant::now() > d)
            }),
        )?;

        let for_auth = Arc::clone(&shared);
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            match decide(&inner, &ctx) {
                Ok(()) => Authorization::Allow,
                Err(reason) => {
                    lock(&for_auth).refusal.get_or_insert(reason);
                    Authorization::Deny
                }
            }
        }))?;
        Ok(Self { conn, shared })
    }

    pub(crate) fn run(
        &self,
        tenant: &TenantId,
        sql: &str,
        timeout: Duration,
    ) -> Result<QueryResult, QueryError> {
        {
            let mut s = lock(&self.shared);
            s.refusal = None;
            s.tenant = Some(tenant.as_str().to_owned());
            // None (no deadline) only for a timeout too long to add to the clock.
            s.deadline = Instant::now().checked_add(timeout);
        }
        let deadline = lock(&self.shared).deadline;
        let out = self.run_inner(sql, timeout, deadline);
        let mut s = lock(&self.shared);
        s.tenant = None;
        s.deadline = None;
        let refusal = s.refusal.take();
        out.map_err(|e| match (e, refusal) {
            (QueryError::Sql(_), Some(reason)) => QueryError::Refused(reason),
            (e, _) => e,
        })
    }

    fn run_inner(
        &self,
        sql: &str,
        timeout: Duration,
        deadline: Option<Instant>,
    ) -> Result<QueryResult, QueryError> {
        // The progress handler stops a query by interrupting it; anything else is SQL's word.
        let step_err = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::OperationInterrupted) => QueryError::TimedOut(timeout),
            _ => QueryError::Sql(e.to_string()),
        };
        if statement_count(sql) != 1 {
            return Err(QueryError::NotOneStatement);
        }
        match first_keyword(sql) {
            None => return Err(QueryError::NotOneStatement),
            Some(k)
                if !["SELECT", "WITH", "VALUES"]
                    .iter()
                    .any(|a| k.eq_ignore_ascii_case(a)) =>
            {
                // The authorizer and `readonly()` below are the real guard; this only gives
                // `DELETE FROM sales` a clearer answer than SQLite's "cannot modify a view".
                return Err(QueryError::NotReadOnly);
            }
            Some(_) => {}
        }
        let mut stmt = self.conn.prepare(sql).map_err(|e| match e {
            rusqlite::Error::MultipleStatement => QueryError::NotOneStatement,
            // Tables are views on this connection, so any write (`WITH x AS (...) DELETE ...`)
            // fails to compile with SQLite's "cannot modify <t> because it is a view".
            e if e.to_string().starts_with("cannot modify") => QueryError::NotReadOnly,
            e => QueryError::Sql(e.to_string()),
        })?;
        if !stmt.readonly() {
            return Err(QueryError::NotReadOnly);
        }
        let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
        let width = columns.len();
        let mut rows = Vec::new();
        let mut bytes = 0usize;
        let mut cursor = stmt.query([]).map_err(step_err)?;
        while let Some(row) = cursor.next().map_err(step_err)? {
            if rows.len() == MAX_ROWS {
                return Err(QueryError::TooManyRows(MAX_ROWS));
            }
            let mut out = Vec::with_capacity(width);
            for i in 0..width {
                // SQLite's progress handler only runs while SQLite computes; reading and
                // converting a row runs none of its instructions, so the deadline is kept here.
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(QueryError::TimedOut(timeout));
                }
                let v = row.get_ref(i).map_err(step_err)?;
                // Counted before it is converted, so nothing is built past the bound.
                bytes = bytes.saturating_add(result_bytes(v));
                if bytes > MAX_RESULT_BYTES {
                    return Err(QueryError::TooLarge(MAX_RESULT_BYTES));
                }
                out.push(to_json(v));
            }
            rows.push(out);
        }
        Ok(QueryResult { columns, rows })
    }
}

/// How many non-empty statements `sql` holds: `;` outside quotes, identifiers and comments
/// separate them. Done before compiling so `SELECT 1; DELETE ...` is refused as two statements
/// rather than with whatever compiling the second one says.
fn statement_count(sql: &str) -> usize {
    let mut count = 0;
    let mut has_content = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                has_content = true;
                // A doubled quote inside is an escaped quote: it closes and reopens, which this
                // loop handles by simply starting a new quoted run.
                for d in chars.by_ref() {
                    if d == close {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
            }
            ';' => {
                if has_content {
                    count += 1;
                }
                has_content = false;
            }
            c if c.is_whitespace() => {}
            _ => has_content = true,
        }
    }
    count + usize::from(has_content)
}

/// The first keyword of `sql`, skipping whitespace, comments and opening parentheses.
fn first_keyword(sql: &str) -> Option<&str> {
    let mut rest = sql;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after);
        } else {
            break;
        }
    }
    let end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// What a value counts against [`MAX_RESULT_BYTES`]: its text as the result holds it (a blob
/// as hex) and [`VALUE_OVERHEAD_BYTES`].
fn result_bytes(v: ValueRef<'_>) -> usize {
    VALUE_OVERHEAD_BYTES
        + match v {
            ValueRef::Text(t) => t.len(),
            ValueRef::Blob(b) => b.len().saturating_mul(2),
            ValueRef::Null | ValueRef::Integer(_) | ValueRef::Real(_) => 0,
        }
}

fn to_json(v: ValueRef<'_>) -> serde_json::Value {
    match v {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(i) => i.into(),
        ValueRef::Real(f) => serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        ValueRef::Blob(b) => hex(b).into(),
    }
}

/// Lowercase hex of a blob, by table rather than a `format!` per byte.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Functions a report may not call even though they only read.
const DENIED_FUNCTIONS: &[&str] = &["load_extension", "sqlite_offset", "fts3_tokenizer"];

/// Table-valued functions a report may read: they only see their own arguments.
const READABLE_FUNCTIONS: &[&str] = &["json_each", "json_tree"];

fn decide(inner: &HashMap<String, String>, ctx: &AuthContext<'_>) -> Result<(), String> {
    match ctx.action {
        AuthAction::Select | AuthAction::Recursive => Ok(()),
        AuthAction::Read { table_name, .. } => {
            let allowed = match ctx.database_name {
                // A CTE or subquery result: its own sources were authorized on their own.
                None => true,
                // The public views, and the inner views (already filtered to the tenant).
                Some("temp") => {
                    inner.contains_key(table_name) || inner.values().any(|v| v == table_name)
                }
                // A real table: only from inside its inner view.
                Some("main") => {
                    READABLE_FUNCTIONS.contains(&table_name)
                        || inner
                            .get(table_name)
                            .is_some_and(|v| ctx.accessor == Some(v.as_str()))
                }
                Some(_) => false,
            };
            if allowed {
                Ok(())
            } else if table_name.starts_with("sqlite_") {
                Err(format!("the schema table {table_name} is not readable"))
            } else if table_name.starts_with("pragma_") {
                Err(format!("{table_name} is a PRAGMA; PRAGMA is not allowed"))
            } else if !inner.contains_key(table_name) {
                // A node-level table (node_state, the migration history) or a virtual table
                // (dbstat): there is no view of it to point to.
                Err(format!(
                    "{table_name} is not one of the tenant's tables; a report reads only those \
                     (node-level tables and SQLite's virtual tables are not readable)"
                ))
            } else {
                Err(format!(
                    "{table_name} may only be read through the tenant's view (write `{table_name}`, \
                     not `main.{table_name}`, and do not rename another source to it)"
                ))
            }
        }
        AuthAction::Function { function_name } => {
            if DENIED_FUNCTIONS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(function_name))
            {
                Err(format!("the function {function_name} is not allowed"))
            } else {
                Ok(())
            }
        }
        AuthAction::Pragma { pragma_name, .. } => {
            Err(format!("PRAGMA {pragma_name} is not allowed"))
        }
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => {
            Err("ATTACH and DETACH are not allowed".to_owned())
        }
        AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name } => Err(format!(
            "writing {table_name} is not allowed; reports are read-only"
        )),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            Err("transactions are not allowed in reports".to_owned())
        }
        _ => Err("only SELECT statements are allowed".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_counted_outside_quotes_and_comments() {
        assert_eq!(statement_count("SELECT 1"), 1);
        assert_eq!(statement_count("SELECT 1;"), 1);
        assert_eq!(statement_count("SELECT 1; -- trailing\n"), 1);
        assert_eq!(statement_count("SELECT ';' AS semi"), 1);
        assert_eq!(statement_count("SELECT \"a;b\" FROM t /* ; */"), 1);
        assert_eq!(statement_count("SELECT 'it''s; fine'"), 1);
        assert_eq!(statement_count("SELECT 1; DELETE FROM t"), 2);
        assert_eq!(statement_count("  -- nothing"), 0);
        assert_eq!(statement_count(""), 0);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_value_counts_the_32_bytes_the_readme_says() {
        // The README states the bound with this figure; a JSON value grows if serde_json's
        // `preserve_order` is ever turned on, and then the README must say so.
        assert_eq!(VALUE_OVERHEAD_BYTES, 32);
    }

    #[test]
    fn blobs_are_hex_in_lowercase() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(
            result_bytes(ValueRef::Blob(&[1, 2, 3])),
            6 + VALUE_OVERHEAD_BYTES
        );
    }

    #[test]
    fn the_first_keyword_skips_comments_and_parentheses() {
        assert_eq!(first_keyword("/* x */ (SELECT 1)"), Some("SELECT"));
        assert_eq!(
            first_keyword("-- c\nwith x as (select 1) select * from x"),
            Some("with")
        );
        assert_eq!(first_keyword("  "), None);
    }
}
