//! The node schema: the embedded migrations (`migrations/node`), applying them on open, and
//! installing the current schema inside a caller's transaction for adoption.
//!
//! Invariants: refinery's history table is the one record of the schema version; a file whose
//! history names a migration newer than this build knows is refused and left untouched
//! ([`Error::SchemaTooNew`]); [`install_schema`] leaves a file that [`Store::open`] finds up to
//! date, exactly as if the migrations had run.

use rusqlite::{params, Connection};

use super::Store;
use crate::error::Error;
use crate::ids::Timestamp;
use crate::Result;

mod embedded {
    refinery::embed_migrations!("migrations/node");
}

impl Store {
    /// The schema version the file is at (the newest applied migration).
    pub fn schema_version(&self) -> Result<i64> {
        Ok(applied_version(&self.conn)?.unwrap_or(0))
    }

    /// The newest schema version this build of the crate knows.
    pub fn supported_schema_version() -> i64 {
        latest_embedded_version()
    }
}

fn latest_embedded_version() -> i64 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

pub(super) fn applied_version(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    let has_history: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema
                        WHERE type = 'table' AND name = 'refinery_schema_history')",
        [],
        |r| r.get(0),
    )?;
    if !has_history {
        return Ok(None);
    }
    conn.query_row(
        "SELECT max(version) FROM refinery_schema_history",
        [],
        |r| r.get(0),
    )
}

/// Creates the current schema inside the caller's transaction, exactly as the embedded
/// migrations would, and records them in refinery's history table so that [`Store::open`]
/// finds the file up to date. Adoption needs this because refinery runs its migrations in a
/// transaction of its own, and adoption's rebuild must share one transaction with them.
pub(crate) fn install_schema(conn: &Connection, now: Timestamp) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE refinery_schema_history (
             version INT4 PRIMARY KEY,
             name VARCHAR(255),
             applied_on VARCHAR(255),
             checksum VARCHAR(255))",
    )?;
    let runner = embedded::migrations::runner();
    let mut migrations: Vec<_> = runner.get_migrations().iter().collect();
    migrations.sort_by_key(|m| m.version());
    // refinery reads `applied_on` back as RFC 3339.
    let applied_on = now.as_datetime().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for m in migrations {
        let sql = m
            .sql()
            .ok_or_else(|| Error::Migration(format!("migration V{} has no SQL", m.version())))?;
        conn.execute_batch(sql)?;
        conn.execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                i64::from(m.version()),
                m.name(),
                applied_on,
                m.checksum().to_string()
            ],
        )?;
    }
    Ok(())
}

/// Applies the pending embedded migrations in one transaction; refuses a newer file.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let supported = latest_embedded_version();
    if let Some(found) = applied_version(conn)? {
        if found > supported {
            return Err(Error::SchemaTooNew { found, supported });
        }
        if found == supported {
            return Ok(());
        }
    }
    embedded::migrations::runner()
        .set_grouped(true)
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run(conn)
        .map_err(|e| Error::Migration(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_twice_applies_migrations_once() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("node.db");
        let v = Store::open(&path)?.schema_version()?;
        assert_eq!(v, Store::supported_schema_version());
        assert_eq!(Store::open(&path)?.schema_version()?, v);
        Ok(())
    }

    #[test]
    fn refuses_a_database_from_a_newer_crate() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("node.db");
        drop(Store::open(&path)?);
        let conn = Connection::open(&path)?;
        conn.execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (999, 'future', '2030-01-01T00:00:00Z', '0')",
            [],
        )?;
        drop(conn);
        match Store::open(&path) {
            Err(Error::SchemaTooNew { found: 999, .. }) => Ok(()),
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}
