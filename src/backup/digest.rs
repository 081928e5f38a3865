//! Digests that prove two databases, or a table before and after a copy, hold the same rows.
//!
//! - The *canonical digest* ([`canonical_digest`], [`digest_connection`]) is a SHA-256 over a
//!   database's schema and every row of every table in a canonical order, so two files with the
//!   same digest hold the same schema and rows whatever their page layout: a snapshot checked
//!   after a restore, or a file before and after a failed change.
//! - The *row digest* is order-independent (a count and a wrapping sum of keyed row hashes),
//!   registered as the SQL aggregate `adopt_row_digest` and as `adopt_tap`, a function a copy's
//!   WHERE clause calls on every row it reads ([`install_digests`]). Comparing the two proves
//!   every column of every row unchanged without sorting or joining either table.
//!
//! Every value is encoded with SQLite's type and, for text and blobs, its length, so `1`,
//! `1.0` and `'1'` differ and no two rows encode alike.

use std::hash::{BuildHasher, Hasher};
use std::path::Path;

use rusqlite::functions::{Aggregate, Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use super::{hex, SnapshotError, LOCK_WAIT};

/// Quotes an identifier read from a schema (never user input) for use in SQL.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A row of `sqlite_schema`: type, name, table and SQL text.
pub(crate) type SchemaObject = (String, String, String, Option<String>);

/// Every row of `sqlite_schema`, by type and name (the canonical digest's order).
pub(crate) fn schema_objects(conn: &Connection) -> rusqlite::Result<Vec<SchemaObject>> {
    let mut stmt =
        conn.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    rows.collect()
}

/// SQLite's type of a value and its bytes, fed to a hasher so that `1`, `1.0` and `'1'` differ.
pub(crate) fn feed_value(h: &mut impl FnMut(&[u8]), v: ValueRef<'_>) {
    match v {
        ValueRef::Null => h(&[0]),
        ValueRef::Integer(i) => {
            h(&[1]);
            h(&i.to_le_bytes());
        }
        ValueRef::Real(f) => {
            h(&[2]);
            h(&f.to_bits().to_le_bytes());
        }
        ValueRef::Text(t) => {
            h(&[3]);
            h(&(t.len() as u64).to_le_bytes());
            h(t);
        }
        ValueRef::Blob(b) => {
            h(&[4]);
            h(&(b.len() as u64).to_le_bytes());
            h(b);
        }
    }
}

/// Appends a value to a row's encoding: SQLite's type, then the length of a text or blob, then
/// its bytes. The encoding of a row is injective (each value is self-delimiting), so rows that
/// differ in any value, or only in a value's type (`1`, `1.0` and `'1'`), encode differently.
fn encode_value(buf: &mut Vec<u8>, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => buf.push(0),
        ValueRef::Integer(i) => {
            buf.push(1);
            buf.extend_from_slice(&i.to_le_bytes());
        }
        ValueRef::Real(f) => {
            buf.push(2);
            buf.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        ValueRef::Text(t) => {
            buf.push(3);
            buf.extend_from_slice(&(t.len() as u64).to_le_bytes());
            buf.extend_from_slice(t);
        }
        ValueRef::Blob(b) => {
            buf.push(4);
            buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
            buf.extend_from_slice(b);
        }
    }
}

/// Hashes one row (a function call's arguments) with a key chosen per adoption: the row is
/// encoded into a reused buffer, then hashed in one call (SipHash-1-3 over one contiguous
/// input instead of three small writes per value).
#[derive(Clone)]
struct RowHasher {
    key: std::hash::RandomState,
}

impl RowHasher {
    fn new() -> Self {
        Self {
            key: std::hash::RandomState::new(),
        }
    }

    fn hash(&self, ctx: &Context<'_>, buf: &mut Vec<u8>) -> u64 {
        buf.clear();
        for i in 0..ctx.len() {
            encode_value(buf, ctx.get_raw(i));
        }
        let mut hasher = self.key.build_hasher();
        hasher.write(buf);
        hasher.finish()
    }
}

/// An order-independent digest of a table's rows: the count and the wrapping sum of keyed
/// 64-bit row hashes (SipHash with a random key, so no input is crafted to collide). Comparing
/// it before and after the copy proves every column of every row unchanged, up to a 2^-64
/// chance, without sorting or joining either table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowDigestAcc {
    /// Rows digested.
    pub(crate) rows: u64,
    sum: u64,
}

impl RowDigestAcc {
    fn add(&mut self, hash: u64) {
        self.rows += 1;
        self.sum = self.sum.wrapping_add(hash);
    }

    /// The digest as text: the row count and the sum in hex.
    pub(crate) fn text(&self) -> String {
        format!("{}:{:016x}", self.rows, self.sum)
    }
}

/// A digest being taken, with the buffer each row is encoded into.
#[derive(Default)]
pub(crate) struct DigestState {
    /// The digest so far.
    pub(crate) acc: RowDigestAcc,
    buf: Vec<u8>,
}

/// The digest as an SQL aggregate, over the rows a query reads.
struct RowDigest(RowHasher);

impl Aggregate<DigestState, String> for RowDigest {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<DigestState> {
        Ok(DigestState::default())
    }

    fn step(&self, ctx: &mut Context<'_>, state: &mut DigestState) -> rusqlite::Result<()> {
        let hash = self.0.hash(ctx, &mut state.buf);
        state.acc.add(hash);
        Ok(())
    }

    fn finalize(
        &self,
        _: &mut Context<'_>,
        state: Option<DigestState>,
    ) -> rusqlite::Result<String> {
        Ok(state.map(|s| s.acc).unwrap_or_default().text())
    }
}

/// The digest of the rows a copy reads, taken as they stream through it (a function in the
/// copy's WHERE clause that is always true), so the legacy table is not read a second time.
pub(crate) type Tap = std::sync::Arc<std::sync::Mutex<DigestState>>;

/// Registers `adopt_row_digest` (the aggregate) and `adopt_tap` (the per-row tap) on `conn`,
/// with one key for both, and returns the tap's digest.
pub(crate) fn install_digests(conn: &Connection) -> rusqlite::Result<Tap> {
    let hasher = RowHasher::new();
    conn.create_aggregate_function(
        "adopt_row_digest",
        -1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        RowDigest(hasher.clone()),
    )?;
    let tap = Tap::default();
    let feed = tap.clone();
    // Not deterministic: it must run once for every row, never be factored out.
    conn.create_scalar_function("adopt_tap", -1, FunctionFlags::SQLITE_UTF8, move |ctx| {
        let mut state = feed
            .lock()
            .map_err(|_| rusqlite::Error::UserFunctionError("digest lock poisoned".into()))?;
        let DigestState { acc, buf } = &mut *state;
        acc.add(hasher.hash(ctx, buf));
        Ok(true)
    })?;
    Ok(tap)
}

/// A SHA-256 over a database's schema and every row of every table, in a canonical order
/// (schema objects by type and name, tables by name, rows by all their columns). Two files with
/// the same digest hold the same schema and the same rows, whatever their page layout.
pub(crate) fn canonical_digest(path: &Path) -> Result<String, SnapshotError> {
    if !path.is_file() {
        return Err(SnapshotError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let sqlite = |source: rusqlite::Error| SnapshotError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    // Read-write (it writes nothing) so that SQLite can roll back a hot journal left by a
    // killed process before the rows are read; a read-only connection cannot.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    conn.busy_timeout(LOCK_WAIT).map_err(sqlite)?;
    digest_connection(&conn).map_err(sqlite)
}

/// [`canonical_digest`] of the database `conn` reads.
pub(crate) fn digest_connection(conn: &Connection) -> rusqlite::Result<String> {
    let mut sha = Sha256::new();
    let objects = schema_objects(conn)?;
    for (kind, name, table, sql) in &objects {
        for part in [kind, name, table] {
            feed_value(
                &mut |b: &[u8]| sha.update(b),
                ValueRef::Text(part.as_bytes()),
            );
        }
        let sql = sql.as_deref().map(str::as_bytes);
        feed_value(
            &mut |b: &[u8]| sha.update(b),
            sql.map_or(ValueRef::Null, ValueRef::Text),
        );
    }
    let mut tables: Vec<&str> = objects
        .iter()
        .filter(|(k, n, _, sql)| k == "table" && sql.is_some() && !n.starts_with("sqlite_"))
        .map(|(_, n, _, _)| n.as_str())
        .collect();
    tables.sort_unstable();
    for table in tables {
        let columns: i64 = conn.query_row(
            "SELECT count(*) FROM pragma_table_xinfo(?1)",
            [table],
            |r| r.get(0),
        )?;
        if columns == 0 {
            continue;
        }
        let order: Vec<String> = (1..=columns).map(|i| i.to_string()).collect();
        let sql = format!(
            "SELECT * FROM {} ORDER BY {}",
            ident(table),
            order.join(", ")
        );
        // A virtual table's module may be missing here; its shadow tables carry its rows.
        let Ok(mut stmt) = conn.prepare(&sql) else {
            continue;
        };
        let n = stmt.column_count();
        feed_value(
            &mut |b: &[u8]| sha.update(b),
            ValueRef::Text(table.as_bytes()),
        );
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            for i in 0..n {
                feed_value(&mut |b: &[u8]| sha.update(b), row.get_ref(i)?);
            }
        }
    }
    Ok(hex(&sha.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn digests_tell_types_apart() {
        let conn = Connection::open_in_memory().expect("memory");
        conn.create_aggregate_function(
            "d",
            -1,
            FunctionFlags::SQLITE_UTF8,
            RowDigest(RowHasher::new()),
        )
        .expect("registers");
        let digest = |values: &str| -> String {
            conn.query_row(&format!("SELECT d({values})"), [], |r| r.get(0))
                .expect("digest")
        };
        // Every value differs from every other, in type or in where a value ends.
        let rows = [
            "1",
            "1.0",
            "'1'",
            "x'31'",
            "NULL",
            "''",
            "x''",
            "0",
            "-0.0",
            "'ab', 'c'",
            "'a', 'bc'",
            "'abc', NULL",
            "NULL, 'abc'",
            "1, 2",
            "2, 1",
        ];
        let digests: Vec<String> = rows.iter().map(|r| digest(r)).collect();
        for (i, a) in digests.iter().enumerate() {
            for (j, b) in digests.iter().enumerate().skip(i + 1) {
                assert_ne!(a, b, "{} and {}", rows[i], rows[j]);
            }
        }
        assert_eq!(digest("1"), digests[0], "the same row, the same digest");
    }

    #[test]
    fn the_tap_and_the_aggregate_agree_in_any_row_order() -> rusqlite::Result<()> {
        let conn = Connection::open_in_memory()?;
        let tap = install_digests(&conn)?;
        conn.execute_batch(
            "CREATE TABLE t (a, b, c);
             INSERT INTO t VALUES (1, 'x', NULL), (2.5, x'00ff', 'y'), ('3', 3, 3.0);",
        )?;
        let read: i64 = conn.query_row(
            "SELECT count(*) FROM (SELECT * FROM t WHERE adopt_tap(a, b, c) ORDER BY a DESC)",
            [],
            |r| r.get(0),
        )?;
        assert_eq!(read, 3);
        let tapped = tap.lock().map(|s| s.acc).expect("not poisoned");
        let stored: String =
            conn.query_row("SELECT adopt_row_digest(a, b, c) FROM t", [], |r| r.get(0))?;
        assert_eq!(tapped.text(), stored);
        conn.execute_batch("UPDATE t SET c = 3 WHERE c = 3.0")?;
        let changed: String =
            conn.query_row("SELECT adopt_row_digest(a, b, c) FROM t", [], |r| r.get(0))?;
        assert_ne!(changed, stored, "3.0 became 3");
        Ok(())
    }
}
