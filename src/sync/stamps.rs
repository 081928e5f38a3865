//! The merge's memory: for each row merged column by column, the clock stamp of each column's
//! value (`sync_stamps`), and a deleted row's last values.
//!
//! Written by local updates and deletes (the outbox calls [`record_local`] in the write's
//! transaction) and by every remote write the merge applies. Inserts made here write nothing:
//! a row with no stamps was written by this node's insert or came before the sync engine, and
//! a remote update of it was made by a node that had it, so after it.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use crate::catalog::TableDef;
use crate::hlc::Hlc;
use crate::ids::{Json, RowId, TenantId};
use crate::protocol::{Operation, OperationKind};
use crate::Result;

/// The key of a row's insert stamp.
pub(crate) const INSERTED: &str = "";
/// The key of a row's deletion stamp.
pub(crate) const DELETED: &str = "#deleted";

/// A row's stamps as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RowStamps {
    /// Column (or [`INSERTED`] / [`DELETED`]) to stamp.
    pub(crate) stamps: BTreeMap<String, Hlc>,
    /// The row's last values, once deleted.
    pub(crate) tombstone: Option<serde_json::Map<String, serde_json::Value>>,
}

impl RowStamps {
    /// The newest stamp of any of the row's values: what a writer here has seen of it.
    pub(crate) fn newest(&self) -> Option<Hlc> {
        self.stamps.values().max().copied()
    }

    /// The stamp of a column's value: its own, else the row's insert, else none (older than
    /// anything remote).
    pub(crate) fn of(&self, column: &str) -> Option<Hlc> {
        self.stamps
            .get(column)
            .or_else(|| self.stamps.get(INSERTED))
            .copied()
    }

    /// The deletion's stamp, if the row is deleted.
    pub(crate) fn deleted(&self) -> Option<Hlc> {
        self.stamps.get(DELETED).copied()
    }
}

/// The stamps kept for a row, if any.
pub(crate) fn load(conn: &Connection, tenant: &TenantId, row: RowId) -> Result<Option<RowStamps>> {
    let found: Option<(Json, Option<Json>)> = conn
        .prepare_cached(
            "SELECT stamps, tombstone FROM sync_stamps WHERE tenant_id = ?1 AND id = ?2",
        )?
        .query_row(params![tenant, row], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((stamps, tombstone)) = found else {
        return Ok(None);
    };
    let corrupt = |what: &str| crate::Error::InvalidPayload {
        table: "sync_stamps",
        reason: format!("row {row}: {what}"),
    };
    let serde_json::Value::Object(map) = stamps.0 else {
        return Err(corrupt("stamps are not an object"));
    };
    let mut out = RowStamps::default();
    for (column, stamp) in map {
        let text = stamp
            .as_str()
            .ok_or_else(|| corrupt("a stamp is not text"))?;
        let hlc: Hlc = text
            .parse()
            .map_err(|_| corrupt("a stamp is not a clock stamp"))?;
        out.stamps.insert(column, hlc);
    }
    out.tombstone = match tombstone.map(|t| t.0) {
        None => None,
        Some(serde_json::Value::Object(values)) => Some(values),
        Some(_) => return Err(corrupt("the tombstone is not an object")),
    };
    Ok(Some(out))
}

/// Stores a row's stamps, replacing what was kept.
pub(crate) fn save(
    conn: &Connection,
    tenant: &TenantId,
    table: &'static TableDef,
    row: RowId,
    stamps: &RowStamps,
) -> Result<()> {
    let map: serde_json::Map<String, serde_json::Value> = stamps
        .stamps
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.to_string())))
        .collect();
    let text = |v: &serde_json::Map<String, serde_json::Value>| {
        crate::outbox::json_text(v).map_err(|e| crate::Error::InvalidPayload {
            table: "sync_stamps",
            reason: e.to_string(),
        })
    };
    let tombstone = match &stamps.tombstone {
        Some(values) => Some(text(values)?),
        None => None,
    };
    conn.prepare_cached(
        "INSERT INTO sync_stamps (id, tenant_id, table_name, stamps, tombstone)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (tenant_id, id) DO UPDATE SET stamps = excluded.stamps,
             tombstone = excluded.tombstone",
    )?
    .execute(params![row, tenant, table.name, text(&map)?, tombstone])?;
    Ok(())
}

/// Records a local update's or delete's stamps, in the write's transaction. Returns, for an
/// update, the newest stamp the row had before it (the operation's `base`).
pub(crate) fn record_local(
    conn: &Connection,
    tenant: &TenantId,
    table: &'static TableDef,
    row: RowId,
    op: &Operation,
    before: Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<Option<Hlc>> {
    let mut stamps = load(conn, tenant, row)?.unwrap_or_default();
    let base = stamps.newest();
    match op.kind {
        OperationKind::Update => {
            for column in op.columns.keys() {
                stamps.stamps.insert(column.clone(), op.hlc);
            }
        }
        OperationKind::Delete => {
            stamps.stamps.insert(DELETED.to_owned(), op.hlc);
            stamps.tombstone = before;
        }
        OperationKind::Insert | OperationKind::LedgerAppend => return Ok(None),
    }
    save(conn, tenant, table, row, &stamps)?;
    Ok(match op.kind {
        OperationKind::Update => base,
        _ => None,
    })
}
