//! Applying what another terminal did: one unit (the operations of one of its transactions) in
//! one local transaction, by the rules of each table's sync class. The rules are the same on
//! every node, so every node of a tenant that applies the same log ends with the same rows.
//!
//! - **Master data** merges column by column: the value with the newer stamp stays (ties by
//!   device id, inside [`Hlc`]'s order), and a stamp is kept per column (`sync_stamps`), so a
//!   late, older write never overwrites a newer one. A change made without having seen the
//!   other terminal's change of the same column is kept as a [`ConflictKind::ConcurrentEdit`].
//!   A delete wins over a concurrent update; a delete of a row that a sale elsewhere refers to
//!   is undone instead, so the sale is never lost. Two rows created with the same unique key:
//!   the lower id keeps it, the other's text key gets `~` and eight characters of its id.
//! - **Ledgers** merge by union of row ids: a row already held is not written again, so a page
//!   applied twice changes no balance. Balances are derived, so two terminals selling the last
//!   unit both keep their sale; a balance that breaks its rule becomes a conflict.
//! - **Documents** are written once: the same id with other content is a conflict and the local
//!   document stays. Their amendments (status changes) merge like master data columns.
//!
//! A unit that cannot be applied whole (it refers to a row this terminal never had) is not
//! applied at all; its operations are kept in a [`ConflictKind::NotApplied`] conflict.
//!
//! The rules and the row-level SQL they run on live together here (about 1,000 lines): each
//! rule reads and writes rows through the helpers at the end of the file, by catalog
//! identifiers only. The helpers are the seam to split along (a `rows` module) when the rules
//! grow.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::catalog::{self, ColumnDef, ColumnKind, SyncClass, TableDef};
use crate::hlc::Hlc;
use crate::ids::{RowId, TenantId, Timestamp};
use crate::protocol::{validate, Operation, OperationKind};
use crate::store::Store;
use crate::sync::conflicts::{self, ConflictKind, NewConflict};
use crate::sync::stamps::{self, RowStamps};
use crate::tenant::settings::BusinessRules;
use crate::{ConstraintKind, Error, Result};

type Columns = serde_json::Map<String, serde_json::Value>;

/// One column written on two terminals, as a [`ColumnResolver`] sees it.
#[derive(Debug)]
pub struct ColumnMerge<'a> {
    /// The table.
    pub table: &'static TableDef,
    /// The column.
    pub column: &'static ColumnDef,
    /// The value here and its stamp (`None`: written before any stamp was kept, or by this
    /// node's insert, which every remote change of the row came after).
    pub local: (&'a serde_json::Value, Option<Hlc>),
    /// The incoming value and its stamp.
    pub remote: (&'a serde_json::Value, Hlc),
}

/// Decides which value of a master-data column stays when two terminals wrote it. It must
/// decide from its arguments alone, the same way on every node, or terminals diverge.
pub trait ColumnResolver: Send + Sync {
    /// `true` to take the remote value.
    fn take_remote(&self, merge: &ColumnMerge<'_>) -> bool;
}

/// The default rule: the newer stamp wins (ties by device id).
#[derive(Debug, Clone, Copy, Default)]
pub struct LastWriterWins;

impl ColumnResolver for LastWriterWins {
    fn take_remote(&self, merge: &ColumnMerge<'_>) -> bool {
        merge.local.1.is_none_or(|local| merge.remote.1 > local)
    }
}

/// Resolvers by table name; tables not named use [`LastWriterWins`].
#[derive(Clone, Default)]
pub struct Resolvers {
    by_table: HashMap<&'static str, Arc<dyn ColumnResolver>>,
}

impl std::fmt::Debug for Resolvers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.by_table.keys()).finish()
    }
}

impl Resolvers {
    /// Uses `resolver` for the master-data columns of `table` (a catalog table).
    pub fn set(&mut self, table: &'static TableDef, resolver: Arc<dyn ColumnResolver>) {
        self.by_table.insert(table.name, resolver);
    }

    fn take_remote(&self, merge: &ColumnMerge<'_>) -> bool {
        match self.by_table.get(merge.table.name) {
            Some(r) => r.take_remote(merge),
            None => LastWriterWins.take_remote(merge),
        }
    }
}

/// What applying one unit did.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Operations of other terminals applied (written or recognised as held already).
    pub(crate) operations: usize,
    /// Conflicts recorded new on this terminal.
    pub(crate) conflicts: Vec<(RowId, ConflictKind)>,
}

/// Why a unit cannot be applied here.
struct NotApplicable(String);

enum Failure {
    Unit(NotApplicable),
    Store(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Store(e)
    }
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Store(Error::Sqlite(e))
    }
}

/// What became of a page of units.
pub(crate) enum PageOutcome {
    /// Committed, with what was applied.
    Committed(Applied),
    /// The tenant's cursor is no longer `from` (another process on this database pulled
    /// meanwhile, to this cursor): nothing was written; pull again after it.
    Moved(u64),
    /// `dies_before_commit` said the terminal died before the commit: nothing was written.
    Died,
}

/// Applies units of other terminals' operations (this node's own are recognised and skipped),
/// each whole or not at all, and moves the tenant's cursor from `from` (where the pull that
/// fetched them found it) to `cursor`, all in one transaction: a crash anywhere leaves the
/// cursor where the units start, and they are fetched and applied again. A cursor that moved
/// from `from` meanwhile is [`PageOutcome::Moved`]: applied twice, a unit's writes would be
/// audited twice and meet its own earlier writes as conflicts.
///
/// A page is first applied with no savepoint: nearly every unit applies, and a savepoint per
/// unit cost two statements and made SQLite copy every database page the unit changed first
/// into a sub-journal (a temporary file). Should a unit not apply, that attempt is rolled back
/// and the page applied again with a savepoint per unit, so the unit that cannot be applied is
/// left out alone. The rules decide from the page and the rows alone, so the second attempt
/// meets the same states as the first up to that unit.
pub(crate) fn apply_units(
    store: &Store,
    tenant: &TenantId,
    units: &[Vec<Operation>],
    from: u64,
    cursor: u64,
    resolvers: &Resolvers,
    dies_before_commit: &dyn Fn() -> bool,
) -> Result<PageOutcome> {
    let node = store.node_id();
    let remote: Vec<Vec<&Operation>> = units
        .iter()
        .map(|unit| unit.iter().filter(|op| op.device_id != node).collect())
        .collect();
    let page = Page {
        store,
        tenant,
        units,
        remote: &remote,
        from,
        cursor,
        resolvers,
        dies_before_commit,
    };
    match page.apply(false)? {
        Attempt::Committed(applied) => Ok(PageOutcome::Committed(applied)),
        Attempt::Moved(to) => Ok(PageOutcome::Moved(to)),
        Attempt::Died => Ok(PageOutcome::Died),
        Attempt::GaveUp => match page.apply(true)? {
            Attempt::Committed(applied) => Ok(PageOutcome::Committed(applied)),
            Attempt::Moved(to) => Ok(PageOutcome::Moved(to)),
            // With savepoints a unit that cannot be applied is left out, never given up on.
            Attempt::Died | Attempt::GaveUp => Ok(PageOutcome::Died),
        },
    }
}

/// How one attempt at a page ended.
enum Attempt {
    /// Committed, with what was applied.
    Committed(Applied),
    /// Rolled back at a unit that cannot be applied (an attempt without savepoints).
    GaveUp,
    /// Nothing written: the cursor is no longer where the pull found it.
    Moved(u64),
    /// Rolled back at a simulated crash before the commit.
    Died,
}

/// One page of units to apply, and what applying it needs.
struct Page<'a> {
    store: &'a Store,
    tenant: &'a TenantId,
    /// The units as pulled.
    units: &'a [Vec<Operation>],
    /// Each unit's operations of other terminals.
    remote: &'a [Vec<&'a Operation>],
    from: u64,
    cursor: u64,
    resolvers: &'a Resolvers,
    dies_before_commit: &'a dyn Fn() -> bool,
}

impl Page<'_> {
    /// Applies the page in one transaction. Without `savepoints`, gives up (rolled back) at
    /// the first unit that cannot be applied; with them, leaves that unit out and records it
    /// as a [`ConflictKind::NotApplied`] conflict.
    fn apply(&self, savepoints: bool) -> Result<Attempt> {
        let (store, tenant) = (self.store, self.tenant);
        let conn = &store.conn;
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        store.ensure_home(tenant)?;
        // Under the write lock: another process may have applied these units meanwhile.
        let now = crate::sync::state::cursor(conn, tenant)?;
        if now != self.from {
            return Ok(Attempt::Moved(now));
        }
        let mut applied = Applied::default();
        let newest = self.remote.iter().flatten().map(|op| op.hlc).max();
        let rules = match newest {
            Some(_) => store.tenant_info(tenant)?.settings.rules,
            None => BusinessRules::default(),
        };
        raise_floor(conn, newest)?;
        if newest.is_some() {
            // The floor moved under the connection's cached stamps: a conflict recorded in
            // this page is stamped after every stamp the page brought.
            store.forget_cached_clock();
        }
        let mut users = Users::default();
        for (unit, remote) in self.units.iter().zip(self.remote) {
            if remote.is_empty() {
                continue;
            }
            if savepoints {
                conn.prepare_cached("SAVEPOINT unit")?.execute([])?;
            }
            let mut unit_applied = Applied::default();
            let mut merger = Merger {
                store,
                conn,
                tenant,
                resolvers: self.resolvers,
                rules: &rules,
                applied: &mut unit_applied,
                users: &mut users,
                touched: Vec::new(),
            };
            match merger.apply_all(remote) {
                Ok(()) => {
                    if savepoints {
                        conn.prepare_cached("RELEASE unit")?.execute([])?;
                    }
                    applied.operations += unit_applied.operations;
                    applied.conflicts.extend(unit_applied.conflicts);
                }
                Err(Failure::Store(e)) => return Err(e),
                Err(Failure::Unit(_)) if !savepoints => {
                    tx.rollback()?;
                    store.forget_cached_clock();
                    return Ok(Attempt::GaveUp);
                }
                Err(Failure::Unit(NotApplicable(reason))) => {
                    tx.execute_batch("ROLLBACK TO unit; RELEASE unit")?;
                    // The unit's writes are gone, users it made among them.
                    users = Users::default();
                    let first = remote[0];
                    let conflict = NewConflict {
                        kind: ConflictKind::NotApplied,
                        key: vec![first.id.to_string()],
                        table: first.table.clone(),
                        row: first.row_id.to_string(),
                        column: None,
                        local: Some(serde_json::json!({ "reason": reason })),
                        remote: serde_json::to_value(unit).ok(),
                    };
                    if let Some(id) = conflicts::record(conn, &store.stamper(), tenant, conflict)? {
                        applied.conflicts.push((id, ConflictKind::NotApplied));
                    }
                }
            }
        }
        // A key's claimants can change with any row write, this node's own included (they
        // come back in the page too); ledger appends change none, so a page of them skips this.
        let claims_moved = self.units.iter().flatten().any(|op| {
            op.kind != OperationKind::LedgerAppend
                && op.table != <catalog::SyncConflict as catalog::Record>::TABLE.name
        });
        if claims_moved {
            settle_renamed_keys(store, tenant, &mut applied)?;
        }
        crate::sync::state::set_cursor(conn, tenant, self.cursor)?;
        if (self.dies_before_commit)() {
            // A simulated crash: the transaction rolls back as it is dropped.
            drop(tx);
            store.forget_cached_clock();
            return Ok(Attempt::Died);
        }
        tx.commit()?;
        Ok(Attempt::Committed(applied))
    }
}

/// Gives a renamed unique key back, or to another row, once who claims it has changed.
///
/// Renaming at the moment of a clash (`settle_unique`) depends on what the terminal holds
/// then: a terminal that applies "customer A takes ana@x, then gives it up" before "customer
/// B is created with ana@x" sees no clash, while one that applies B's insert in between
/// renames B's email, and without this pass it kept the rename for good, so terminals
/// diverged. What every terminal agrees on is what each row claims (its value without the
/// `~` suffix, merged by stamps); this pass makes what is shown a function of that alone: of
/// the rows claiming a key, the lowest id shows it, the others show it renamed. Renamed rows
/// are the rows of the tenant's `duplicate_key` conflicts (every rename records one), taken
/// in id order so the lowest claimant settles first.
fn settle_renamed_keys(store: &Store, tenant: &TenantId, applied: &mut Applied) -> Result<()> {
    let conn = &store.conn;
    let renamed: Vec<(String, RowId)> = conn
        .prepare_cached(
            "SELECT DISTINCT table_name, row_id FROM sync_conflicts
             WHERE tenant_id = ?1 AND kind = 'duplicate_key' ORDER BY row_id",
        )?
        .query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (table_name, row) in renamed {
        let Some(table) = catalog::table(&table_name) else {
            continue;
        };
        let Some(values) = read_row(conn, tenant, table, row)? else {
            continue;
        };
        let tag = rename_tag(row);
        for key in text_unique_keys(conn, table)? {
            // The key's claim: every column of it carries this row's tag when renamed.
            let claim: Option<Vec<String>> = key
                .iter()
                .map(|c| {
                    values
                        .get(c.name)
                        .and_then(serde_json::Value::as_str)
                        .and_then(|v| v.strip_suffix(&tag))
                        .map(str::to_owned)
                })
                .collect();
            let Some(claim) = claim else { continue };
            let shown_by = holder(conn, tenant, table, row, &key, &claim)?;
            if shown_by.is_some_and(|other| other < row) {
                continue; // A lower id claims it: this row stays renamed.
            }
            if let Some(other) = shown_by {
                // A higher id shows it (it came when no claimant showed it): it yields.
                let shown: Vec<serde_json::Value> = claim
                    .iter()
                    .map(|v| serde_json::Value::String(format!("{v}{}", rename_tag(other))))
                    .collect();
                let changes: Vec<(&'static ColumnDef, &serde_json::Value)> =
                    key.iter().copied().zip(&shown).collect();
                update_columns(conn, tenant, table, other, &changes)?;
                let original: Columns = key
                    .iter()
                    .zip(&claim)
                    .map(|(c, v)| (c.name.to_owned(), serde_json::Value::String(v.clone())))
                    .collect();
                let conflict = NewConflict {
                    kind: ConflictKind::DuplicateKey,
                    key: vec![table.name.to_owned(), other.to_string()],
                    table: table.name.to_owned(),
                    row: other.to_string(),
                    column: Some(key.iter().map(|c| c.name).collect::<Vec<_>>().join(",")),
                    local: Some(serde_json::json!({ "kept_by": row })),
                    remote: Some(serde_json::Value::Object(original)),
                };
                if let Some(id) = conflicts::record(conn, &store.stamper(), tenant, conflict)? {
                    applied.conflicts.push((id, ConflictKind::DuplicateKey));
                }
            }
            let back: Vec<serde_json::Value> =
                claim.into_iter().map(serde_json::Value::String).collect();
            let changes: Vec<(&'static ColumnDef, &serde_json::Value)> =
                key.iter().copied().zip(&back).collect();
            update_columns(conn, tenant, table, row, &changes)?;
        }
    }
    Ok(())
}

/// What a renamed key ends with: `~` and the last eight characters of the row's id.
fn rename_tag(row: RowId) -> String {
    let id = row.to_string();
    format!("~{}", &id[id.len().saturating_sub(8)..])
}

/// The table's unique keys made of text columns only (the keys a clash renames).
fn text_unique_keys(
    conn: &Connection,
    table: &'static TableDef,
) -> Result<Vec<Vec<&'static ColumnDef>>> {
    let indexes: Vec<(String, bool)> = conn
        .prepare_cached(&format!(
            "SELECT name, \"unique\" FROM pragma_index_list('{}')",
            table.name
        ))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut keys = Vec::new();
    for (index, unique) in indexes {
        if !unique {
            continue;
        }
        let names: Vec<String> = conn
            .prepare_cached("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?
            .query_map([&index], |r| r.get::<_, Option<String>>(0))?
            .filter_map(|r| r.transpose())
            .collect::<rusqlite::Result<_>>()?;
        let key: Vec<&'static ColumnDef> = names.iter().filter_map(|n| table.column(n)).collect();
        // The primary key, a key this cannot read, or one that is not all text: never renamed.
        if key.is_empty()
            || key.len() + 1 != names.len()
            || key.iter().any(|c| c.kind != ColumnKind::Text)
        {
            continue;
        }
        keys.push(key);
    }
    Ok(keys)
}

/// The query for the row of the tenant (`?1`) other than `?2` whose key columns equal `?3`,
/// `?4`...; only catalog identifiers are interpolated.
fn other_holder_sql(table: &TableDef, key: &[&'static ColumnDef]) -> String {
    let wheres: Vec<String> = key
        .iter()
        .enumerate()
        .map(|(i, c)| format!("\"{}\" = ?{}", c.name, i + 3))
        .collect();
    format!(
        "SELECT id FROM \"{}\" WHERE tenant_id = ?1 AND id <> ?2 AND {}",
        table.name,
        wheres.join(" AND ")
    )
}

/// The row other than `row` that shows these values of a key.
fn holder(
    conn: &Connection,
    tenant: &TenantId,
    table: &'static TableDef,
    row: RowId,
    key: &[&'static ColumnDef],
    values: &[String],
) -> Result<Option<RowId>> {
    let mut stmt = conn.prepare_cached(&other_holder_sql(table, key))?;
    stmt.raw_bind_parameter(1, tenant)?;
    stmt.raw_bind_parameter(2, row)?;
    for (i, v) in values.iter().enumerate() {
        stmt.raw_bind_parameter(i + 3, v.as_str())?;
    }
    let mut rows = stmt.raw_query();
    Ok(match rows.next()? {
        Some(r) => Some(r.get(0)?),
        None => None,
    })
}

/// What [`Merger::insert`] did.
enum Written {
    /// Wrote the row.
    New,
    /// Found the tenant holding a row with the id (its columns here) and wrote nothing.
    Held(Columns),
}

/// Whether this node has each user that operations name as their actor, learned once a page.
#[derive(Default)]
struct Users(HashMap<RowId, bool>);

/// Raises the node's clock floor to a stamp it has seen, so its next stamps come after it.
pub(crate) fn raise_floor(conn: &Connection, stamp: Option<Hlc>) -> Result<()> {
    let Some(stamp) = stamp else { return Ok(()) };
    let (millis, counter) = (
        i64::try_from(stamp.millis()).unwrap_or(i64::MAX),
        i64::from(stamp.counter()),
    );
    conn.prepare_cached(
        "UPDATE node_state SET hlc_millis = ?1, hlc_counter = ?2
         WHERE singleton = 1 AND (hlc_millis < ?1 OR (hlc_millis = ?1 AND hlc_counter < ?2))",
    )?
    .execute(params![millis, counter])?;
    Ok(())
}

struct Merger<'a> {
    store: &'a Store,
    conn: &'a Connection,
    tenant: &'a TenantId,
    resolvers: &'a Resolvers,
    rules: &'a BusinessRules,
    applied: &'a mut Applied,
    users: &'a mut Users,
    /// Ledger rows written, for the business rules checked after the unit.
    touched: Vec<(&'static TableDef, &'a Operation)>,
}

impl<'a> Merger<'a> {
    fn apply_all(&mut self, ops: &[&'a Operation]) -> Result<(), Failure> {
        for op in ops {
            self.apply(op)?;
            self.applied.operations += 1;
        }
        self.check_rules()?;
        Ok(())
    }

    fn conflict(&mut self, conflict: NewConflict) -> Result<()> {
        let kind = conflict.kind;
        if let Some(id) =
            conflicts::record(self.conn, &self.store.stamper(), self.tenant, conflict)?
        {
            self.applied.conflicts.push((id, kind));
        }
        Ok(())
    }

    fn apply(&mut self, op: &'a Operation) -> Result<(), Failure> {
        if op.tenant_id != *self.tenant {
            return Err(Failure::Unit(NotApplicable(format!(
                "operation {} belongs to tenant {}",
                op.id, op.tenant_id
            ))));
        }
        let table = validate(op)
            .map_err(|e| Failure::Unit(NotApplicable(format!("operation {}: {e}", op.id))))?;
        match (table.sync_class, op.kind) {
            (SyncClass::Ledger, OperationKind::LedgerAppend) => self.append_ledger(table, op)?,
            (SyncClass::Document, OperationKind::Insert) => self.insert_document(table, op)?,
            (SyncClass::MasterData, OperationKind::Insert) => self.insert_master(table, op)?,
            (SyncClass::MasterData | SyncClass::Document, OperationKind::Update) => {
                self.update(table, op)?
            }
            (SyncClass::MasterData, OperationKind::Delete) => self.delete(table, op)?,
            // `validate` refuses every other pair.
            _ => {
                return Err(Failure::Unit(NotApplicable(format!(
                    "{} of {} is not applied",
                    op.kind, table.name
                ))))
            }
        }
        if table.name == <catalog::User as catalog::Record>::TABLE.name {
            // A user made, changed or removed: what the page learned of users is stale.
            self.users.0.clear();
        }
        self.audit(table, op)?;
        Ok(())
    }

    /// Each node audits what it applies, under the operation's actor when this node has that
    /// user. The row is the one [`crate::tenant::Scope`] writes for a local change, with the
    /// operation and its device as detail; written here with one cached statement, the actor
    /// looked up once a page.
    fn audit(&mut self, table: &'static TableDef, op: &Operation) -> Result<()> {
        let actor = match op.actor_user_id {
            Some(user) => match self.users.0.get(&user) {
                Some(known) => known.then_some(user),
                None => {
                    let known: bool = self
                        .conn
                        .prepare_cached(
                            "SELECT EXISTS (SELECT 1 FROM users WHERE tenant_id = ?1 AND id = ?2)",
                        )?
                        .query_row(params![self.tenant, user], |r| r.get(0))?;
                    self.users.0.insert(user, known);
                    known.then_some(user)
                }
            },
            None => None,
        };
        let action = match op.kind {
            OperationKind::Update => "update",
            OperationKind::Delete => "delete",
            OperationKind::Insert | OperationKind::LedgerAppend => "insert",
        };
        // Ids print as bare UUIDs: nothing to escape. Keys in serde_json's order.
        let detail = format!(
            r#"{{"synced":{{"device":"{}","operation":"{}"}}}}"#,
            op.device_id, op.id
        );
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO audit_log (id, tenant_id, at, actor_user_id, action, table_name, row_id,
                 detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        bind_id(&mut stmt, 1, RowId::new())?;
        stmt.raw_bind_parameter(2, self.tenant)?;
        stmt.raw_bind_parameter(3, Timestamp::now())?;
        match actor {
            Some(user) => bind_id(&mut stmt, 4, user)?,
            None => stmt.raw_bind_parameter(4, rusqlite::types::Null)?,
        }
        stmt.raw_bind_parameter(5, action)?;
        stmt.raw_bind_parameter(6, table.name)?;
        bind_id(&mut stmt, 7, op.row_id)?;
        stmt.raw_bind_parameter(8, detail)?;
        stmt.raw_execute()
            .map_err(|e| Error::on_table("audit_log", e))?;
        Ok(())
    }

    fn append_ledger(
        &mut self,
        table: &'static TableDef,
        op: &'a Operation,
    ) -> Result<(), Failure> {
        match self.insert(table, op.row_id, &op.columns)? {
            Written::New => self.touched.push((table, op)),
            // Union by id: held already. Other content under the same id is a conflict.
            Written::Held(local) => self.compare_written_once(table, op, &local)?,
        }
        Ok(())
    }

    fn insert_document(&mut self, table: &'static TableDef, op: &Operation) -> Result<(), Failure> {
        if let Written::Held(local) = self.insert(table, op.row_id, &op.columns)? {
            self.compare_written_once(table, op, &local)?;
        }
        Ok(())
    }

    fn compare_written_once(
        &mut self,
        table: &'static TableDef,
        op: &Operation,
        local: &Columns,
    ) -> Result<()> {
        let differs = table.columns.iter().any(|c| {
            let remote = op.columns.get(c.name).unwrap_or(&serde_json::Value::Null);
            local.get(c.name).unwrap_or(&serde_json::Value::Null) != remote
        });
        if differs {
            self.conflict(NewConflict {
                kind: ConflictKind::DifferentContent,
                key: vec![
                    table.name.to_owned(),
                    op.row_id.to_string(),
                    op.id.to_string(),
                ],
                table: table.name.to_owned(),
                row: op.row_id.to_string(),
                column: None,
                local: Some(serde_json::Value::Object(local.clone())),
                remote: Some(serde_json::Value::Object(op.columns.clone())),
            })?;
        }
        Ok(())
    }

    fn insert_master(&mut self, table: &'static TableDef, op: &Operation) -> Result<(), Failure> {
        let mut stamps = stamps::load(self.conn, self.tenant, op.row_id)?;
        if let Some(st) = stamps.as_mut().filter(|s| s.deleted().is_some()) {
            if let Some(local) = read_row(self.conn, self.tenant, table, op.row_id)? {
                return self.merge_columns(table, op, &local, st.clone(), false);
            }
            // Deleted here: the delete wins; the values join the tombstone.
            merge_into_tombstone(st, &op.columns, op.hlc);
            stamps::save(self.conn, self.tenant, table, op.row_id, st)?;
            return Ok(());
        }
        if let Written::Held(local) = self.insert(table, op.row_id, &op.columns)? {
            // The same row from two terminals (a conflict both recorded) or delivered again:
            // column by column.
            return self.merge_columns(table, op, &local, stamps.unwrap_or_default(), false);
        }
        if let Some(mut st) = stamps {
            st.stamps.insert(stamps::INSERTED.to_owned(), op.hlc);
            stamps::save(self.conn, self.tenant, table, op.row_id, &st)?;
        } else if table.name == <catalog::SyncConflict as catalog::Record>::TABLE.name {
            let mut st = RowStamps::default();
            st.stamps.insert(stamps::INSERTED.to_owned(), op.hlc);
            stamps::save(self.conn, self.tenant, table, op.row_id, &st)?;
        }
        Ok(())
    }

    fn update(&mut self, table: &'static TableDef, op: &Operation) -> Result<(), Failure> {
        let mut st = stamps::load(self.conn, self.tenant, op.row_id)?.unwrap_or_default();
        match read_row(self.conn, self.tenant, table, op.row_id)? {
            Some(local) => self.merge_columns(table, op, &local, st, true),
            None => {
                if let Some(deleted) = st.deleted() {
                    // The delete wins; a change made after it (unseen by the deleter) is a
                    // conflict, and its values join the tombstone.
                    if op.hlc > deleted {
                        self.conflict(NewConflict {
                            kind: ConflictKind::UpdateVsDelete,
                            key: vec![
                                table.name.to_owned(),
                                op.row_id.to_string(),
                                deleted.to_string(),
                            ],
                            table: table.name.to_owned(),
                            row: op.row_id.to_string(),
                            column: None,
                            local: st.tombstone.clone().map(serde_json::Value::Object),
                            remote: Some(serde_json::Value::Object(op.columns.clone())),
                        })?;
                    }
                    merge_into_tombstone(&mut st, &op.columns, op.hlc);
                    stamps::save(self.conn, self.tenant, table, op.row_id, &st)?;
                    Ok(())
                } else {
                    Err(Failure::Unit(NotApplicable(format!(
                        "{} {} is changed but this terminal never had it",
                        table.name, op.row_id
                    ))))
                }
            }
        }
    }

    /// Merges an operation's columns into a row held here, column by column.
    fn merge_columns(
        &mut self,
        table: &'static TableDef,
        op: &Operation,
        local: &Columns,
        mut st: RowStamps,
        detect_concurrent: bool,
    ) -> Result<(), Failure> {
        let mut changes: Vec<(&'static ColumnDef, &serde_json::Value)> = Vec::new();
        let null = serde_json::Value::Null;
        for (name, remote) in &op.columns {
            let Some(column) = table.column(name) else {
                continue;
            };
            let local_value = local.get(name).unwrap_or(&null);
            let local_stamp = st.of(name);
            let merge = ColumnMerge {
                table,
                column,
                local: (local_value, local_stamp),
                remote: (remote, op.hlc),
            };
            let take = self.resolvers.take_remote(&merge);
            // Concurrent: this column was changed here after what the writer had seen. Not for
            // a conflict's own row: two resolutions of one conflict are not a new conflict
            // (the later one stays).
            let conflict_row = table.name == <catalog::SyncConflict as catalog::Record>::TABLE.name;
            if detect_concurrent && !conflict_row && local_value != remote {
                if let Some(own) = st.stamps.get(name).copied() {
                    if op.base.is_none_or(|base| own > base) && own != op.hlc {
                        let (a, b) = if own < op.hlc {
                            (own, op.hlc)
                        } else {
                            (op.hlc, own)
                        };
                        self.conflict(NewConflict {
                            kind: ConflictKind::ConcurrentEdit,
                            key: vec![
                                table.name.to_owned(),
                                op.row_id.to_string(),
                                name.clone(),
                                a.to_string(),
                                b.to_string(),
                            ],
                            table: table.name.to_owned(),
                            row: op.row_id.to_string(),
                            column: Some(name.clone()),
                            local: Some(serde_json::json!({ "value": local_value, "stamp": own })),
                            remote: Some(serde_json::json!({ "value": remote, "stamp": op.hlc })),
                        })?;
                    }
                }
            }
            if take {
                st.stamps.insert(name.clone(), op.hlc);
                if local_value != remote {
                    changes.push((column, remote));
                }
            }
        }
        if !changes.is_empty() {
            self.update_row(table, op.row_id, local, &changes)?;
        }
        stamps::save(self.conn, self.tenant, table, op.row_id, &st)?;
        Ok(())
    }

    /// Writes merged columns into a row held here. The database can refuse them as it
    /// refuses an insert: a unique key another row took meanwhile (an email set on one
    /// terminal while another created a customer with it) is settled as for an insert, a
    /// reference to a row deleted here brings that row back, and any other refusal makes
    /// the unit inapplicable. None of them may fail the page: that would stop the tenant's
    /// pull at this operation for good.
    fn update_row(
        &mut self,
        table: &'static TableDef,
        id: RowId,
        local: &Columns,
        changes: &[(&'static ColumnDef, &serde_json::Value)],
    ) -> Result<(), Failure> {
        let mut changes: Vec<(&'static ColumnDef, serde_json::Value)> =
            changes.iter().map(|(c, v)| (*c, (*v).clone())).collect();
        // Each retry mends one cause, as for an insert.
        for _ in 0..8 {
            let refs: Vec<(&'static ColumnDef, &serde_json::Value)> =
                changes.iter().map(|(c, v)| (*c, v)).collect();
            let e = match update_columns(self.conn, self.tenant, table, id, &refs) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let Error::Constraint { kind, .. } = &e else {
                return Err(Failure::Store(e));
            };
            let mut row = local.clone();
            for (c, v) in &changes {
                row.insert(c.name.to_owned(), v.clone());
            }
            match kind {
                ConstraintKind::Unique => {
                    if let Some(renamed) = self.settle_unique(table, id, &row)? {
                        // This row loses the key: its key columns take the renamed values.
                        for (name, value) in renamed {
                            if row.get(&name) == Some(&value) {
                                continue;
                            }
                            let Some(column) = table.column(&name) else {
                                continue;
                            };
                            match changes.iter_mut().find(|(c, _)| c.name == column.name) {
                                Some(change) => change.1 = value,
                                None => changes.push((column, value)),
                            }
                        }
                    }
                }
                ConstraintKind::ForeignKey => self.restore_parents(table, &row)?,
                _ => return Err(Failure::Unit(NotApplicable(e.to_string()))),
            }
        }
        Err(Failure::Unit(NotApplicable(format!(
            "{} {id} could not be written",
            table.name
        ))))
    }

    fn delete(&mut self, table: &'static TableDef, op: &Operation) -> Result<(), Failure> {
        let mut st = stamps::load(self.conn, self.tenant, op.row_id)?.unwrap_or_default();
        if st.deleted().is_some_and(|d| d >= op.hlc) {
            return Ok(());
        }
        let Some(local) = read_row(self.conn, self.tenant, table, op.row_id)? else {
            // Not here (yet): remember the delete, so the row cannot arrive after it.
            st.stamps.insert(stamps::DELETED.to_owned(), op.hlc);
            stamps::save(self.conn, self.tenant, table, op.row_id, &st)?;
            return Ok(());
        };
        let sql = &row_sql(table).delete;
        match self
            .conn
            .prepare_cached(sql)?
            .execute(params![self.tenant, op.row_id])
        {
            Ok(_) => {}
            Err(e) if is_constraint(&e, rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => {
                // Something here refers to the row (a sale of the product): the row stays, and
                // the deleting terminal brings it back when that sale reaches it.
                self.conflict(delete_vs_reference(table, op.row_id, op.hlc, &local))?;
                return Ok(());
            }
            Err(e) => return Err(Failure::Store(Error::on_table(table.name, e))),
        }
        let newer_change = st
            .stamps
            .iter()
            .filter(|(k, _)| k.as_str() != stamps::INSERTED && k.as_str() != stamps::DELETED)
            .map(|(_, v)| *v)
            .max()
            .filter(|changed| *changed > op.hlc);
        if newer_change.is_some() {
            self.conflict(NewConflict {
                kind: ConflictKind::UpdateVsDelete,
                key: vec![
                    table.name.to_owned(),
                    op.row_id.to_string(),
                    op.hlc.to_string(),
                ],
                table: table.name.to_owned(),
                row: op.row_id.to_string(),
                column: None,
                local: Some(serde_json::Value::Object(local.clone())),
                remote: None,
            })?;
        }
        st.stamps.insert(stamps::DELETED.to_owned(), op.hlc);
        st.tombstone = Some(local);
        stamps::save(self.conn, self.tenant, table, op.row_id, &st)?;
        Ok(())
    }

    /// Inserts a row, bringing back a parent this terminal deleted and settling a unique key
    /// held by another row. A row the tenant holds already under the id is left as it is and
    /// returned: nearly every row is new, so the insert is tried first, and a row held is the
    /// first thing a failed insert is checked for (before any constraint is mended).
    fn insert(
        &mut self,
        table: &'static TableDef,
        id: RowId,
        columns: &Columns,
    ) -> Result<Written, Failure> {
        if table.name == <catalog::User as catalog::Record>::TABLE.name {
            self.users.0.clear();
        }
        let mut columns = std::borrow::Cow::Borrowed(columns);
        // Each retry mends one cause; a row has few references and unique keys.
        for attempt in 0..8 {
            let Err(e) = insert_row(self.conn, self.tenant, table, id, &columns) else {
                return Ok(Written::New);
            };
            if attempt == 0 {
                if let Some(local) = read_row(self.conn, self.tenant, table, id)? {
                    return Ok(Written::Held(local));
                }
            }
            match e {
                e if is_constraint(&e, rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => {
                    self.restore_parents(table, &columns)?;
                }
                e if is_constraint(&e, rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE) => {
                    if let Some(renamed) = self.settle_unique(table, id, &columns)? {
                        columns = std::borrow::Cow::Owned(renamed);
                    }
                }
                e => {
                    return Err(Failure::Unit(NotApplicable(
                        Error::on_table(table.name, e).to_string(),
                    )))
                }
            }
        }
        Err(Failure::Unit(NotApplicable(format!(
            "{} {id} could not be written",
            table.name
        ))))
    }

    /// Brings back each missing parent of a row from its tombstone; a parent this terminal
    /// never had makes the unit inapplicable.
    fn restore_parents(
        &mut self,
        table: &'static TableDef,
        columns: &Columns,
    ) -> Result<(), Failure> {
        let mut restored = false;
        for column in table.columns {
            let (Some(parent_name), Some(serde_json::Value::String(parent_id))) =
                (column.references, columns.get(column.name))
            else {
                continue;
            };
            let Some(parent) = catalog::table(parent_name) else {
                continue;
            };
            let Ok(parent_id) = parent_id.parse::<RowId>() else {
                continue;
            };
            if read_row(self.conn, self.tenant, parent, parent_id)?.is_some() {
                continue;
            }
            let mut st = stamps::load(self.conn, self.tenant, parent_id)?.unwrap_or_default();
            let (Some(deleted), Some(values)) = (st.deleted(), st.tombstone.clone()) else {
                return Err(Failure::Unit(NotApplicable(format!(
                    "{}.{} refers to {parent_name} {parent_id}, which this terminal never had",
                    table.name, column.name
                ))));
            };
            self.insert(parent, parent_id, &values)?;
            st.stamps.remove(stamps::DELETED);
            st.tombstone = None;
            stamps::save(self.conn, self.tenant, parent, parent_id, &st)?;
            self.conflict(delete_vs_reference(parent, parent_id, deleted, &values))?;
            restored = true;
        }
        if restored {
            Ok(())
        } else {
            Err(Failure::Unit(NotApplicable(format!(
                "{} refers to a row this terminal does not have",
                table.name
            ))))
        }
    }

    /// Two rows with one unique key: the lower id keeps it, the other's text key columns get
    /// `~` and the last eight characters of its id. Returns the incoming row's columns when
    /// they are the ones to change, `None` when the row here was changed instead.
    fn settle_unique(
        &mut self,
        table: &'static TableDef,
        id: RowId,
        columns: &Columns,
    ) -> Result<Option<Columns>, Failure> {
        let Some((other, key)) = unique_clash(self.conn, self.tenant, table, id, columns)? else {
            return Err(Failure::Unit(NotApplicable(format!(
                "{} {id} clashes with a unique key that no other row holds",
                table.name
            ))));
        };
        if key.iter().any(|c| c.kind != ColumnKind::Text) {
            return Err(Failure::Unit(NotApplicable(format!(
                "{} {id} and {other} share a unique key ({}) that cannot be renamed",
                table.name,
                key.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
            ))));
        }
        let loser = id.max(other);
        let mut original = Columns::new();
        for c in &key {
            original.insert(
                c.name.to_owned(),
                columns.get(c.name).cloned().unwrap_or_default(),
            );
        }
        self.conflict(NewConflict {
            kind: ConflictKind::DuplicateKey,
            key: vec![table.name.to_owned(), loser.to_string()],
            table: table.name.to_owned(),
            row: loser.to_string(),
            column: Some(key.iter().map(|c| c.name).collect::<Vec<_>>().join(",")),
            local: Some(serde_json::json!({ "kept_by": id.min(other) })),
            remote: Some(serde_json::Value::Object(original)),
        })?;
        let renamed = |value: &serde_json::Value| match value {
            serde_json::Value::String(s) => {
                let tag = loser.to_string();
                serde_json::Value::String(format!("{s}~{}", &tag[tag.len() - 8..]))
            }
            other => other.clone(),
        };
        if loser == id {
            let mut out = columns.clone();
            for c in &key {
                if let Some(v) = out.get_mut(c.name) {
                    *v = renamed(v);
                }
            }
            Ok(Some(out))
        } else {
            let local = read_row(self.conn, self.tenant, table, other)?.unwrap_or_default();
            let values: Vec<(&'static ColumnDef, serde_json::Value)> = key
                .iter()
                .map(|c| {
                    (
                        *c,
                        renamed(local.get(c.name).unwrap_or(&serde_json::Value::Null)),
                    )
                })
                .collect();
            let refs: Vec<(&'static ColumnDef, &serde_json::Value)> =
                values.iter().map(|(c, v)| (*c, v)).collect();
            update_columns(self.conn, self.tenant, table, other, &refs)?;
            Ok(None)
        }
    }

    /// The business rules a merged ledger can break: each broken one is a conflict.
    fn check_rules(&mut self) -> Result<(), Failure> {
        let touched = std::mem::take(&mut self.touched);
        for (table, op) in &touched {
            let columns = &op.columns;
            let text = |name: &str| {
                columns
                    .get(name)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            let (kind, key, value, limit) = match table.name {
                "inventory_transactions" if !self.rules.allow_negative_stock => {
                    let (Some(product), Some(location)) = (text("product_id"), text("location"))
                    else {
                        continue;
                    };
                    let on_hand: Option<i64> = self
                        .conn
                        .prepare_cached(
                            "SELECT on_hand_milli FROM stock_levels
                             WHERE tenant_id = ?1 AND product_id = ?2 AND location = ?3",
                        )?
                        .query_row(params![self.tenant, product, location], |r| r.get(0))
                        .optional()?;
                    (
                        ConflictKind::NegativeStock,
                        vec![product, location],
                        on_hand,
                        0,
                    )
                }
                "gift_card_transactions" if !self.rules.allow_gift_card_overdraw => {
                    let Some(card) = text("gift_card_id") else {
                        continue;
                    };
                    let balance: Option<i64> = self
                        .conn
                        .prepare_cached(
                            "SELECT balance_minor FROM gift_card_balances
                             WHERE tenant_id = ?1 AND gift_card_id = ?2",
                        )?
                        .query_row(params![self.tenant, card], |r| r.get(0))
                        .optional()?;
                    (ConflictKind::GiftCardOverdrawn, vec![card], balance, 0)
                }
                "loyalty_transactions" => {
                    let Some(account) = text("account_id") else {
                        continue;
                    };
                    let points: Option<i64> = self
                        .conn
                        .prepare_cached(
                            "SELECT points FROM loyalty_balances
                             WHERE tenant_id = ?1 AND account_id = ?2",
                        )?
                        .query_row(params![self.tenant, account], |r| r.get(0))
                        .optional()?;
                    (ConflictKind::PointsOverdrawn, vec![account], points, 0)
                }
                "credit_transactions" if !self.rules.allow_credit_over_limit => {
                    let Some(account) = text("account_id") else {
                        continue;
                    };
                    // Owed past the limit: compare the negated amounts against 0.
                    let over: Option<i64> = self
                        .conn
                        .prepare_cached(
                            "SELECT a.credit_limit_minor - coalesce(b.owed_minor, 0)
                             FROM credit_accounts a LEFT JOIN credit_balances b
                               ON b.tenant_id = a.tenant_id AND b.account_id = a.id
                             WHERE a.tenant_id = ?1 AND a.id = ?2",
                        )?
                        .query_row(params![self.tenant, account], |r| r.get(0))
                        .optional()?;
                    (ConflictKind::CreditLimitExceeded, vec![account], over, 0)
                }
                "sale_reversals" => {
                    let Some(line) = text("sale_line_id") else {
                        continue;
                    };
                    // What is left to reverse of the line: negative when reversed twice.
                    let left: Option<i64> = self
                        .conn
                        .prepare_cached(
                            "SELECT l.quantity_milli - (SELECT coalesce(sum(r.quantity_milli), 0)
                                 FROM sale_reversals r
                                 WHERE r.tenant_id = l.tenant_id AND r.sale_line_id = l.id)
                             FROM sale_lines l WHERE l.tenant_id = ?1 AND l.id = ?2",
                        )?
                        .query_row(params![self.tenant, line], |r| r.get(0))
                        .optional()?;
                    (ConflictKind::OverRefunded, vec![line], left, 0)
                }
                _ => continue,
            };
            let Some(value) = value.filter(|v| *v < limit) else {
                continue;
            };
            let row = key.join("/");
            let mut conflict_key = vec![table.name.to_owned()];
            conflict_key.extend(key);
            self.conflict(NewConflict {
                kind,
                key: conflict_key,
                table: table.name.to_owned(),
                row,
                column: None,
                local: Some(serde_json::json!({ "value": value })),
                remote: Some(serde_json::Value::Object(columns.clone())),
            })?;
        }
        Ok(())
    }
}

fn delete_vs_reference(
    table: &'static TableDef,
    row: RowId,
    deleted: Hlc,
    values: &Columns,
) -> NewConflict {
    NewConflict {
        kind: ConflictKind::DeleteVsReference,
        key: vec![table.name.to_owned(), row.to_string(), deleted.to_string()],
        table: table.name.to_owned(),
        row: row.to_string(),
        column: None,
        local: Some(serde_json::Value::Object(values.clone())),
        remote: Some(serde_json::json!({ "deleted": deleted })),
    }
}

/// Changes of a deleted row join its tombstone column by column, so a row brought back holds
/// what every terminal wrote.
fn merge_into_tombstone(st: &mut RowStamps, columns: &Columns, stamp: Hlc) {
    let mut values = st.tombstone.take().unwrap_or_default();
    for (name, value) in columns {
        if st.of(name).is_none_or(|own| stamp > own) {
            values.insert(name.clone(), value.clone());
            st.stamps.insert(name.clone(), stamp);
        }
    }
    st.tombstone = Some(values);
}

fn is_constraint(e: &rusqlite::Error, extended: std::os::raw::c_int) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == extended)
}

/// SQL text of one table for the merge, from catalog identifiers only.
struct RowSql {
    insert: String,
    select: String,
    delete: String,
}

fn row_sql(table: &'static TableDef) -> &'static RowSql {
    static SQL: OnceLock<HashMap<&'static str, RowSql>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        catalog::TABLES
            .iter()
            .map(|t| {
                let names: Vec<String> = t.all_column_names().map(|c| format!("\"{c}\"")).collect();
                let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
                let cols: Vec<String> = t
                    .columns
                    .iter()
                    .map(|c| format!("\"{}\"", c.name))
                    .collect();
                let sql = RowSql {
                    insert: format!(
                        "INSERT INTO \"{}\" ({}) VALUES ({})",
                        t.name,
                        names.join(", "),
                        marks.join(", ")
                    ),
                    select: format!(
                        "SELECT {} FROM \"{}\" WHERE tenant_id = ?1 AND id = ?2",
                        if cols.is_empty() {
                            "1".to_owned()
                        } else {
                            cols.join(", ")
                        },
                        t.name
                    ),
                    delete: format!(
                        "DELETE FROM \"{}\" WHERE tenant_id = ?1 AND id = ?2",
                        t.name
                    ),
                };
                (t.name, sql)
            })
            .collect()
    });
    match all.get(table.name) {
        Some(sql) => sql,
        None => unreachable!("every table handed to the merge comes from catalog::TABLES"),
    }
}

/// A JSON value (checked by `validate`) as the column stores it.
fn to_sql(column: &ColumnDef, value: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match (column.kind, value) {
        (_, J::Null) => Value::Null,
        (ColumnKind::Integer, J::Number(n)) => n.as_i64().map_or(Value::Null, Value::Integer),
        (ColumnKind::Bool, J::Bool(b)) => Value::Integer(i64::from(*b)),
        (ColumnKind::Blob, J::Array(bytes)) => Value::Blob(
            bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect(),
        ),
        (ColumnKind::Json, v) => Value::Text(crate::outbox::json_text(v).unwrap_or_default()),
        (_, J::String(s)) => Value::Text(s.clone()),
        (_, other) => Value::Text(other.to_string()),
    }
}

/// A stored value as the operation's JSON carries it.
fn from_sql(column: &ColumnDef, value: ValueRef<'_>) -> serde_json::Value {
    use serde_json::Value as J;
    match (column.kind, value) {
        (_, ValueRef::Null) => J::Null,
        (ColumnKind::Bool, ValueRef::Integer(i)) => J::Bool(i != 0),
        (ColumnKind::Json, ValueRef::Text(t)) => serde_json::from_slice(t)
            .unwrap_or_else(|_| J::String(String::from_utf8_lossy(t).into())),
        (_, ValueRef::Integer(i)) => J::from(i),
        (_, ValueRef::Real(f)) => J::from(f),
        (_, ValueRef::Text(t)) => J::String(String::from_utf8_lossy(t).into_owned()),
        (_, ValueRef::Blob(b)) => J::Array(b.iter().map(|b| J::from(*b)).collect()),
    }
}

/// A row's columns (not `id`, `tenant_id`) as JSON, if the tenant has it.
pub(crate) fn read_row(
    conn: &Connection,
    tenant: &TenantId,
    table: &'static TableDef,
    id: RowId,
) -> Result<Option<Columns>> {
    let mut stmt = conn.prepare_cached(&row_sql(table).select)?;
    Ok(stmt
        .query_row(params![tenant, id], |r| {
            let mut out = Columns::new();
            for (i, c) in table.columns.iter().enumerate() {
                out.insert(c.name.to_owned(), from_sql(c, r.get_ref(i)?));
            }
            Ok(out)
        })
        .optional()?)
}

fn insert_row(
    conn: &Connection,
    tenant: &TenantId,
    table: &'static TableDef,
    id: RowId,
    columns: &Columns,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(&row_sql(table).insert)?;
    bind_id(&mut stmt, 1, id)?;
    stmt.raw_bind_parameter(2, tenant)?;
    for (i, c) in table.columns.iter().enumerate() {
        bind_json(&mut stmt, i + 3, c, columns.get(c.name))?;
    }
    stmt.raw_execute().map(|_| ())
}

/// Binds a JSON value as the column stores it ([`to_sql`]), text without a copy of its own.
fn bind_json(
    stmt: &mut rusqlite::Statement<'_>,
    i: usize,
    column: &ColumnDef,
    value: Option<&serde_json::Value>,
) -> rusqlite::Result<()> {
    use serde_json::Value as J;
    match (column.kind, value) {
        (_, None | Some(J::Null)) => stmt.raw_bind_parameter(i, rusqlite::types::Null),
        (ColumnKind::Json, Some(v)) => stmt.raw_bind_parameter(i, to_sql(column, v)),
        (ColumnKind::Integer, Some(J::Number(n))) => stmt.raw_bind_parameter(i, n.as_i64()),
        (ColumnKind::Bool, Some(J::Bool(b))) => stmt.raw_bind_parameter(i, i64::from(*b)),
        (ColumnKind::Blob, Some(v)) => stmt.raw_bind_parameter(i, to_sql(column, v)),
        (_, Some(J::String(text))) => stmt.raw_bind_parameter(i, text.as_str()),
        (_, Some(v)) => stmt.raw_bind_parameter(i, to_sql(column, v)),
    }
}

/// Binds a row id as its text, formatted on the stack.
fn bind_id(stmt: &mut rusqlite::Statement<'_>, i: usize, id: RowId) -> rusqlite::Result<()> {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text: &str = id.as_uuid().hyphenated().encode_lower(&mut buf);
    stmt.raw_bind_parameter(i, text)
}

fn update_columns(
    conn: &Connection,
    tenant: &TenantId,
    table: &'static TableDef,
    id: RowId,
    changes: &[(&'static ColumnDef, &serde_json::Value)],
) -> Result<()> {
    // Column names come from the catalog (each looked up by `TableDef::column`).
    let sets: Vec<String> = changes
        .iter()
        .enumerate()
        .map(|(i, (c, _))| format!("\"{}\" = ?{}", c.name, i + 3))
        .collect();
    let sql = format!(
        "UPDATE \"{}\" SET {} WHERE tenant_id = ?1 AND id = ?2",
        table.name,
        sets.join(", ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.raw_bind_parameter(1, tenant)?;
    stmt.raw_bind_parameter(2, id)?;
    for (i, (c, v)) in changes.iter().enumerate() {
        stmt.raw_bind_parameter(i + 3, to_sql(c, v))?;
    }
    stmt.raw_execute()
        .map_err(|e| Error::on_table(table.name, e))?;
    Ok(())
}

/// Another row of the tenant holding the same value of one of the table's unique keys as
/// `columns`, with that key's columns.
fn unique_clash(
    conn: &Connection,
    tenant: &TenantId,
    table: &'static TableDef,
    id: RowId,
    columns: &Columns,
) -> Result<Option<(RowId, Vec<&'static ColumnDef>)>> {
    let indexes: Vec<(String, bool)> = conn
        .prepare(&format!(
            "SELECT name, \"unique\" FROM pragma_index_list('{}')",
            table.name
        ))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (index, unique) in indexes {
        if !unique {
            continue;
        }
        let names: Vec<String> = conn
            .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?
            .query_map([&index], |r| r.get::<_, Option<String>>(0))?
            .filter_map(|r| r.transpose())
            .collect::<rusqlite::Result<_>>()?;
        let key: Vec<&'static ColumnDef> = names.iter().filter_map(|n| table.column(n)).collect();
        if key.is_empty() || key.len() + 1 != names.len() {
            continue; // The primary key, or a key this function cannot read.
        }
        if key
            .iter()
            .any(|c| columns.get(c.name).is_none_or(serde_json::Value::is_null))
        {
            continue;
        }
        let mut stmt = conn.prepare(&other_holder_sql(table, &key))?;
        stmt.raw_bind_parameter(1, tenant)?;
        stmt.raw_bind_parameter(2, id)?;
        for (i, c) in key.iter().enumerate() {
            let v = columns.get(c.name).map_or(Value::Null, |v| to_sql(c, v));
            stmt.raw_bind_parameter(i + 3, v)?;
        }
        let mut rows = stmt.raw_query();
        if let Some(row) = rows.next()? {
            let other: RowId = row.get(0)?;
            return Ok(Some((other, key)));
        }
    }
    Ok(None)
}
