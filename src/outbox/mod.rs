//! The outbox: every synced write leaves a pending operation in the same transaction.
//!
//! An [`Operation`] is what a node pushes to the central server, in exactly the JSON form that
//! `pos-node outbox list --json` prints (its type and [`validate`] live in [`crate::protocol`]).
//!
//! On the node, operations wait in `pending_operations`, with the stamp's clock part only (the
//! node is the row's `device_id`, see migration V3);
//! [`crate::Tenant::pending_operations`] reads them back in wire form.

mod json;

pub use json::json_text;

use std::cell::RefCell;

use rusqlite::{params, Connection};

use crate::catalog::{SyncClass, TableDef};
use crate::hlc::{ClockState, Hlc};
use crate::ids::{RowId, TenantId, Timestamp};
use crate::protocol::{validate, Operation, OperationError, OperationKind, Unit};
use crate::store::clock::ClockCache;

/// What the crate needs to stamp operations: the node id and the clock.
pub(crate) struct Stamper<'a> {
    pub(crate) node: RowId,
    /// The node id as the outbox stores it, made once per store.
    pub(crate) node_text: &'a str,
    pub(crate) now_millis: &'a (dyn Fn() -> u64 + Send + Sync),
    pub(crate) cache: &'a RefCell<ClockCache>,
}

impl Stamper<'_> {
    /// The id of the transaction the operation `id` is written in: the id of its first
    /// operation. A commit or rollback of the connection ends the transaction (see
    /// `ClockCache::txn_epoch`).
    fn txn(&self, id: RowId) -> RowId {
        let mut cache = self.cache.borrow_mut();
        let epoch = cache.txn_epoch.load(std::sync::atomic::Ordering::Relaxed);
        match cache.txn {
            Some((e, txn)) if e == epoch => txn,
            _ => {
                cache.txn = Some((epoch, id));
                id
            }
        }
    }

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
    /// For a delete: the row's values before it, kept so the row can come back if a sale that
    /// refers to it arrives from another terminal.
    pub(crate) before: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Appends an operation for a write in the caller's transaction and returns its stamp.
/// Local-only tables are skipped (`None`); anything else is validated first.
pub(crate) fn append(
    conn: &Connection,
    stamper: &Stamper<'_>,
    tenant: &TenantId,
    change: Change,
) -> crate::Result<Option<Hlc>> {
    let Change {
        actor,
        table,
        row_id,
        kind,
        columns,
        before,
    } = change;
    if table.sync_class == SyncClass::LocalOnly {
        return Ok(None);
    }
    let kind = if table.sync_class == SyncClass::Ledger && kind == OperationKind::Insert {
        OperationKind::LedgerAppend
    } else {
        kind
    };
    let (stamp, now) = stamper.next(conn, tenant)?;
    let id = RowId::new();
    let txn = stamper.txn(id);
    let hlc = Hlc::new(stamp.millis, stamp.counter, stamper.node).map_err(crate::Error::Clock)?;
    let mut op = Operation {
        id,
        tenant_id: tenant.clone(),
        device_id: stamper.node,
        hlc,
        actor_user_id: actor,
        table: table.name.to_owned(),
        row_id,
        kind,
        columns,
        unit: None,
        base: None,
    };
    validate(&op)?;
    // Changes of rows that are merged column by column leave their stamps: the merge compares
    // a remote write with them, and an update carries what its writer had seen (`base`).
    if matches!(kind, OperationKind::Update | OperationKind::Delete) {
        op.base = crate::sync::stamps::record_local(conn, tenant, table, row_id, &op, before)?;
    }
    let columns = json_text(&op.columns).map_err(|e| crate::Error::InvalidPayload {
        table: table.name,
        reason: e.to_string(),
    })?;
    // On one line: the statement cache hashes the text on every use.
    conn.prepare_cached(
        "INSERT INTO pending_operations (id,tenant_id,device_id,hlc,actor_user_id,table_name,\
         row_id,kind,columns,created_at,txn_id,base) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
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
        txn,
        op.base.map(|b| b.to_string()),
    ])
    .map_err(|e| crate::Error::on_table("pending_operations", e))?;
    Ok(Some(hlc))
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
    // One more than asked: whether the last one ends its transaction depends on the next.
    let mut stmt = conn.prepare_cached(
        "SELECT id, tenant_id, device_id, hlc, table_name, row_id, kind, columns, actor_user_id,
                txn_id, base
         FROM pending_operations WHERE tenant_id = ?1 AND synced_at IS NULL AND set_aside IS NULL
         ORDER BY hlc LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![tenant, i64::from(limit) + 1], |r| {
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
            r.get::<_, Option<RowId>>(9)?,
            r.get::<_, Option<String>>(10)?,
        ))
    })?;
    let mut out: Vec<Operation> = Vec::new();
    for row in rows {
        let (id, tenant_id, device, hlc, table, row_id, kind, columns, actor_user_id, txn, base) =
            row?;
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
            unit: txn.map(|txn| Unit { txn, last: true }),
            base: match base {
                Some(b) => Some(b.parse().map_err(|_| malformed("base stamp"))?),
                None => None,
            },
        });
    }
    // A transaction's operations are consecutive in clock order (it holds the write lock):
    // an operation is its transaction's last unless the next one shares it.
    for i in 1..out.len() {
        let next = out[i].unit.map(|u| u.txn);
        if let Some(unit) = out[i - 1].unit.as_mut() {
            unit.last = next != Some(unit.txn);
        }
    }
    let extra = out.len() > limit as usize;
    out.truncate(limit as usize);
    if !extra {
        // Nothing follows the last one read: its transaction is complete (all of a
        // transaction's operations commit together).
        if let Some(unit) = out.last_mut().and_then(|o| o.unit.as_mut()) {
            unit.last = true;
        }
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
            unit: None,
            base: None,
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
        for table in crate::catalog::TABLES {
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
