//! [`Scope`]: one tenant's view of the store's connection, on which the handle's CRUD and the
//! POS flows are built.
//!
//! Every statement a scope runs binds this tenant as `?1` itself; callers write `tenant_id = ?1`
//! in their SQL and pass only their own parameters, from `?2`. SQL text comes from the crate
//! (catalog identifiers and fixed statements), never from input. Writes go through
//! [`Scope::append`] / [`Scope::amend`] (or the handle's checked CRUD) so each row carries its
//! pending operation and audit entry.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::OnceLock;

use rusqlite::types::Value;
use rusqlite::{
    params, params_from_iter, Connection, OptionalExtension, ParamsFromIter, Row, ToSql,
};

use super::{Actor, FilterOp, ListQuery, Page};
use crate::catalog::ledger::{self, KeptBalance};
use crate::catalog::{self, Access, AuditEntry, Record, RecordVisitor, SyncClass, TableDef, User};
use crate::error::Error;
use crate::ids::{Json, RowId, TenantId, Timestamp};
use crate::outbox;
use crate::protocol::OperationKind;
use crate::store::Store;
use crate::tenant::settings::{Role, TenantSettings, TenantStatus, Tier};
use crate::Result;

/// SQL text of one table, generated once from its catalog entry (catalog identifiers only).
struct TableSql {
    columns: String,
    insert: String,
    get: String,
    /// `get` with the tenant's status first, read in the same statement (and so the same
    /// snapshot): a LEFT JOIN from the registry row, NULLs when the row is not there.
    get_checked: String,
    update: String,
    delete: String,
}

fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

fn table_sql(table: &'static TableDef) -> &'static TableSql {
    static SQL: OnceLock<HashMap<&'static str, TableSql>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        catalog::TABLES
            .iter()
            .map(|t| {
                let name = quoted(t.name);
                let select: Vec<String> = std::iter::once("id")
                    .chain(t.columns.iter().map(|c| c.name))
                    .map(quoted)
                    .collect();
                let insert_cols: Vec<String> = t.all_column_names().map(quoted).collect();
                let placeholders: Vec<String> =
                    (1..=insert_cols.len()).map(|i| format!("?{i}")).collect();
                let sets: Vec<String> = t
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{} = ?{}", quoted(c.name), i + 3))
                    .collect();
                let columns = select.join(", ");
                let joined: Vec<String> = select.iter().map(|c| format!("r.{c}")).collect();
                let sql = TableSql {
                    get_checked: format!(
                        "SELECT t.\"status\", t.\"tier\", {} FROM \"tenants\" t LEFT JOIN {name} r \
                         ON r.\"tenant_id\" = t.\"id\" AND r.\"id\" = ?2 WHERE t.\"id\" = ?1",
                        joined.join(", ")
                    ),
                    insert: format!(
                        "INSERT INTO {name} ({}) VALUES ({})",
                        insert_cols.join(", "),
                        placeholders.join(", ")
                    ),
                    get: format!(
                        "SELECT {columns} FROM {name} WHERE \"tenant_id\" = ?1 AND \"id\" = ?2"
                    ),
                    update: format!(
                        "UPDATE {name} SET {} WHERE \"tenant_id\" = ?1 AND \"id\" = ?2",
                        sets.join(", ")
                    ),
                    delete: format!("DELETE FROM {name} WHERE \"tenant_id\" = ?1 AND \"id\" = ?2"),
                    columns,
                };
                (t.name, sql)
            })
            .collect()
    });
    match all.get(table.name) {
        Some(sql) => sql,
        None => unreachable!("every Record's table is in catalog::TABLES"),
    }
}

/// One tenant's view of one connection. Every statement it runs binds `tenant_id`.
///
/// A scope made for the reads of a handle ([`Scope::for_read`]) checks, before its first
/// read, that the tenant is not cancelled; one made inside a write (whose statements check the
/// status themselves) or a transaction (checked when it began) does not.
#[doc(hidden)]
pub struct Scope<'c> {
    store: &'c Store,
    tenant: &'c TenantId,
    /// Whether the next read checks the tenant's status first (then no more: a scope lives for
    /// one call of the handle).
    check_read: Cell<bool>,
}

impl<'c> Scope<'c> {
    pub(crate) fn new(store: &'c Store, tenant: &'c TenantId) -> Self {
        Self {
            store,
            tenant,
            check_read: Cell::new(false),
        }
    }

    /// A scope whose first read refuses a cancelled tenant.
    pub(crate) fn for_read(store: &'c Store, tenant: &'c TenantId) -> Self {
        Self {
            store,
            tenant,
            check_read: Cell::new(true),
        }
    }

    /// Checks the tenant's status before this scope's first read, if it was made for reads.
    fn before_read(&self) -> Result<()> {
        if self.check_read.replace(false) {
            self.ensure_readable()?;
        }
        Ok(())
    }

    /// The store's connection; inside a [`TenantTx`] it carries that transaction.
    fn conn(&self) -> &'c Connection {
        &self.store.conn
    }

    fn append_operation(
        &self,
        actor: RowId,
        table: &'static TableDef,
        row_id: RowId,
        kind: OperationKind,
        columns: serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        let change = outbox::Change {
            actor: Some(actor),
            table,
            row_id,
            kind,
            columns,
            before: None,
        };
        outbox::append(self.conn(), &self.store.stamper(), self.tenant, change).map(|_| ())
    }

    /// Inserts a record's row, with no checks and no audit: the one INSERT every table shares.
    fn insert_row<R: Record>(&self, rec: &R) -> Result<()> {
        let table = R::TABLE;
        let mut stmt = self.conn().prepare_cached(&table_sql(table).insert)?;
        stmt.raw_bind_parameter(1, rec.id())?;
        stmt.raw_bind_parameter(2, self.tenant)?;
        rec.bind_columns(&mut stmt, 3)?;
        stmt.raw_execute()
            .map_err(|e| Error::on_table(table.name, e))?;
        Ok(())
    }

    /// Appends an audit row in the caller's transaction. It stays on this node: the operation
    /// of the write carries the actor, and each node audits what it applies.
    pub(crate) fn audit(
        &self,
        actor: Option<RowId>,
        action: &str,
        table: &str,
        row_id: &str,
        detail: Option<serde_json::Value>,
    ) -> Result<()> {
        let entry = AuditEntry {
            id: RowId::new(),
            at: Timestamp::now(),
            actor_user_id: actor,
            action: action.to_owned(),
            table_name: table.to_owned(),
            row_id: row_id.to_owned(),
            detail: detail.map(Json),
        };
        self.insert_row(&entry)
    }

    /// The tenant's status, refused when this file is no longer its home.
    fn status_here(&self) -> Result<Option<TenantStatus>> {
        let found: Option<(TenantStatus, Tier)> = self
            .conn()
            .prepare_cached("SELECT status, tier FROM tenants WHERE id = ?1")?
            .query_row([self.tenant], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match found {
            Some((status, tier)) => {
                self.store.check_here(self.tenant, tier)?;
                Ok(Some(status))
            }
            None => Ok(None),
        }
    }

    pub(super) fn ensure_writable(&self) -> Result<()> {
        match self.status_here()? {
            Some(TenantStatus::Active) => Ok(()),
            Some(status) => Err(Error::TenantInactive {
                tenant: self.tenant.clone(),
                status,
                operation: "write",
            }),
            None => Err(Error::TenantNotFound(self.tenant.clone())),
        }
    }

    /// Refuses reads of a cancelled tenant (a suspended one still reads).
    pub(super) fn ensure_readable(&self) -> Result<()> {
        match self.status_here()? {
            Some(TenantStatus::Cancelled) => Err(Error::TenantInactive {
                tenant: self.tenant.clone(),
                status: TenantStatus::Cancelled,
                operation: "read",
            }),
            Some(_) => Ok(()),
            None => Err(Error::TenantNotFound(self.tenant.clone())),
        }
    }

    fn authorize(
        &self,
        actor: &Actor,
        table: &'static TableDef,
        operation: &'static str,
    ) -> Result<()> {
        if actor.tenant != *self.tenant {
            return Err(Error::ActorTenantMismatch {
                tenant: self.tenant.clone(),
                actor_tenant: actor.tenant.clone(),
            });
        }
        if table.access != Access::Api {
            return Err(Error::InternalTable(table.name));
        }
        let rule = match (table.sync_class, operation) {
            (SyncClass::Ledger, "update" | "delete") => Some("append-only ledger entries"),
            (SyncClass::Document, "delete") => Some("documents, amended but never deleted"),
            _ => None,
        };
        if let Some(rule) = rule {
            return Err(Error::AppendOnly {
                table: table.name,
                operation,
                rule,
            });
        }
        let role = self.current_role(actor)?;
        if role < table.write_role {
            return Err(Error::PermissionDenied {
                role,
                needed: table.write_role,
                operation,
                table: table.name,
            });
        }
        Ok(())
    }

    /// Checks, inside the write transaction, that the tenant is active and the actor still an
    /// active user, and returns the role the users table gives them now (an `Actor` made
    /// before a demotion does not keep its old powers).
    pub(super) fn current_role(&self, actor: &Actor) -> Result<Role> {
        self.role_of(actor.user_id)
    }

    /// The role of an active user of this tenant, read now (a write checks it in its own
    /// transaction), refused while the tenant is not active.
    fn role_of(&self, user: RowId) -> Result<Role> {
        let found: Option<(TenantStatus, Tier, Option<Role>, Option<bool>)> = self
            .conn()
            .prepare_cached(
                "SELECT t.status, t.tier, u.role, u.active FROM tenants t
                 LEFT JOIN users u ON u.tenant_id = t.id AND u.id = ?2 WHERE t.id = ?1",
            )?
            .query_row(params![self.tenant, user], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        let found = match found {
            Some((status, tier, role, active)) => {
                self.store.check_here(self.tenant, tier)?;
                Some((status, role, active))
            }
            None => None,
        };
        match found {
            None => Err(Error::TenantNotFound(self.tenant.clone())),
            Some((TenantStatus::Active, Some(role), Some(true))) => Ok(role),
            Some((TenantStatus::Active, _, _)) => Err(Error::UnknownActor(user)),
            Some((status, _, _)) => Err(Error::TenantInactive {
                tenant: self.tenant.clone(),
                status,
                operation: "write",
            }),
        }
    }

    /// Refuses a change to the users table that would leave the tenant without an active
    /// admin (nobody could manage users again). Runs after the change, in its transaction.
    fn ensure_an_admin_remains(&self, table: &'static TableDef) -> Result<()> {
        if table.name != User::TABLE.name {
            return Ok(());
        }
        let admins: i64 = self
            .conn()
            .prepare_cached(
                "SELECT count(*) FROM users WHERE tenant_id = ?1 AND role = 'admin' AND active = 1",
            )?
            .query_row([self.tenant], |r| r.get(0))?;
        if admins == 0 {
            return Err(Error::LastAdmin(self.tenant.clone()));
        }
        Ok(())
    }

    pub(super) fn get<R: Record>(&self, id: RowId) -> Result<Option<R>> {
        if self.check_read.replace(false) {
            return self.get_checked(id);
        }
        let mut stmt = self.conn().prepare_cached(&table_sql(R::TABLE).get)?;
        Ok(stmt
            .query_row(params![self.tenant, id], R::from_row)
            .optional()?)
    }

    /// [`Scope::get`] and the tenant's status in one statement: the hot read pays for no
    /// second one.
    fn get_checked<R: Record>(&self, id: RowId) -> Result<Option<R>> {
        let mut stmt = self
            .conn()
            .prepare_cached(&table_sql(R::TABLE).get_checked)?;
        let found = stmt
            .query_row(params![self.tenant, id], |row| {
                let status: TenantStatus = row.get(0)?;
                let tier: Tier = row.get(1)?;
                if status == TenantStatus::Cancelled {
                    return Ok((tier, Err(status)));
                }
                match row.get::<_, Option<RowId>>(2)? {
                    None => Ok((tier, Ok(None))),
                    Some(_) => R::from_row_at(row, 2).map(|r| (tier, Ok(Some(r)))),
                }
            })
            .optional()?;
        let found = match found {
            Some((tier, found)) => {
                self.store.check_here(self.tenant, tier)?;
                Some(found)
            }
            None => None,
        };
        match found {
            None => Err(Error::TenantNotFound(self.tenant.clone())),
            Some(Err(status)) => Err(Error::TenantInactive {
                tenant: self.tenant.clone(),
                status,
                operation: "read",
            }),
            Some(Ok(row)) => Ok(row),
        }
    }

    pub(super) fn list<R: Record>(&self, q: &ListQuery) -> Result<Page<R>> {
        self.before_read()?;
        let table = R::TABLE;
        if q.limit == 0 || q.limit > ListQuery::MAX_LIMIT {
            return Err(Error::InvalidPayload {
                table: table.name,
                reason: format!(
                    "a page holds 1 to {} rows, not {}",
                    ListQuery::MAX_LIMIT,
                    q.limit
                ),
            });
        }
        let mut sql = format!(
            "SELECT {} FROM {} WHERE \"tenant_id\" = ?1",
            table_sql(table).columns,
            quoted(table.name)
        );
        let mut values: Vec<&Value> = Vec::new();
        for (column, op, value) in &q.filters {
            // Only the catalog's own spelling of a column is ever put into the SQL text.
            let name = if column == "id" {
                "id"
            } else {
                table
                    .column(column)
                    .ok_or_else(|| Error::UnknownColumn {
                        table: table.name,
                        column: column.clone(),
                    })?
                    .name
            };
            match op {
                FilterOp::IsNull | FilterOp::IsNotNull => {
                    sql.push_str(&format!(" AND {} {}", quoted(name), op.sql()));
                }
                _ => {
                    values.push(value);
                    sql.push_str(&format!(
                        " AND {} {} ?{}",
                        quoted(name),
                        op.sql(),
                        values.len() + 1
                    ));
                }
            }
        }
        let after = q.after.map(|id| Value::Text(id.to_string()));
        if let Some(after) = &after {
            values.push(after);
            let cmp = if q.descending { "<" } else { ">" };
            sql.push_str(&format!(" AND \"id\" {cmp} ?{}", values.len() + 1));
        }
        let order = if q.descending { "DESC" } else { "ASC" };
        sql.push_str(&format!(" ORDER BY \"id\" {order} LIMIT {}", q.limit + 1));
        let mut stmt = self.conn().prepare_cached(&sql)?;
        stmt.raw_bind_parameter(1, self.tenant)?;
        for (i, v) in values.iter().enumerate() {
            stmt.raw_bind_parameter(i + 2, v)?;
        }
        let mut rows = Vec::with_capacity(q.limit as usize + 1);
        let mut cursor = stmt.raw_query();
        while let Some(row) = cursor.next()? {
            rows.push(R::from_row(row)?);
        }
        let next = if rows.len() > q.limit as usize {
            rows.truncate(q.limit as usize);
            rows.last().map(|r| r.id())
        } else {
            None
        };
        Ok(Page { rows, next })
    }

    pub(super) fn count_users(&self) -> Result<i64> {
        self.before_read()?;
        Ok(self
            .conn()
            .prepare_cached("SELECT count(*) FROM users WHERE tenant_id = ?1")?
            .query_row([self.tenant], |r| r.get(0))?)
    }

    pub(super) fn insert_unchecked<R: Record>(
        &self,
        actor_id: RowId,
        action: &str,
        rec: &R,
    ) -> Result<()> {
        let table = R::TABLE;
        if table.name == User::TABLE.name {
            let limit: i64 = self
                .conn()
                .prepare_cached("SELECT max_users FROM tenants WHERE id = ?1")?
                .query_row([self.tenant], |r| r.get(0))?;
            if self.count_users()? >= limit {
                return Err(Error::PlanLimit {
                    tenant: self.tenant.clone(),
                    what: "users",
                    limit: u64::try_from(limit).unwrap_or(0),
                });
            }
        }
        self.insert_row(rec)?;
        self.append_operation(
            actor_id,
            table,
            rec.id(),
            OperationKind::Insert,
            record_columns(rec)?,
        )?;
        self.audit(
            Some(actor_id),
            action,
            table.name,
            &rec.id().to_string(),
            None,
        )
    }

    pub(super) fn insert<R: Record>(&self, actor: &Actor, rec: &R) -> Result<()> {
        self.authorize(actor, R::TABLE, "insert")?;
        self.insert_unchecked(actor.user_id, "insert", rec)
    }

    pub(super) fn update<R: Record>(&self, actor: &Actor, rec: &R) -> Result<()> {
        let table = R::TABLE;
        self.authorize(actor, table, "update")?;
        let old: R = self.get(rec.id())?.ok_or(Error::NotFound {
            table: table.name,
            id: rec.id(),
        })?;
        let old = record_columns(&old)?;
        // A document in one of its closed states (the catalog's `#[closed_when]`) is frozen.
        let frozen = table.state.is_some_and(|state| {
            old.get(state.column)
                .and_then(|v| v.as_str())
                .is_some_and(|s| state.is_closed(s))
        });
        if frozen {
            return Err(Error::AppendOnly {
                table: table.name,
                operation: "update",
                rule: "closed documents, amended only by new ledger rows",
            });
        }
        let mut changed = record_columns(rec)?;
        changed.retain(|name, value| old.get(name) != Some(value));
        if changed.is_empty() {
            return Ok(());
        }
        // A document is amended only in the columns its entry names (its state, what closing
        // it records); the rest was written once.
        if changed.keys().any(|c| !table.is_amendable(c)) {
            return Err(Error::AppendOnly {
                table: table.name,
                operation: "update",
                rule: match table.amends {
                    [] => "documents written once and never updated",
                    _ => "documents amended only in their state columns",
                },
            });
        }
        let names: Vec<String> = changed.keys().cloned().collect();
        // Ordered pairs travel together, so the pair a row ends with is one writer's.
        if !table.ordered.is_empty() {
            let new = record_columns(rec)?;
            for &(low, high) in table.ordered {
                for (one, other) in [(low, high), (high, low)] {
                    if changed.contains_key(one) && !changed.contains_key(other) {
                        if let Some(value) = new.get(other) {
                            changed.insert(other.to_owned(), value.clone());
                        }
                    }
                }
            }
        }
        let mut stmt = self.conn().prepare_cached(&table_sql(table).update)?;
        stmt.raw_bind_parameter(1, self.tenant)?;
        stmt.raw_bind_parameter(2, rec.id())?;
        rec.bind_columns(&mut stmt, 3)?;
        stmt.raw_execute()
            .map_err(|e| Error::on_table(table.name, e))?;
        self.ensure_an_admin_remains(table)?;
        let detail = serde_json::json!({ "columns": names });
        self.append_operation(
            actor.user_id,
            table,
            rec.id(),
            OperationKind::Update,
            changed,
        )?;
        self.audit(
            Some(actor.user_id),
            "update",
            table.name,
            &rec.id().to_string(),
            Some(detail),
        )
    }

    pub(super) fn delete<R: Record>(&self, actor: &Actor, id: RowId) -> Result<()> {
        let table = R::TABLE;
        self.authorize(actor, table, "delete")?;
        // The row's last values stay with its deletion's stamp (see `crate::sync`).
        let before = match self.get::<R>(id)? {
            Some(rec) => Some(record_columns(&rec)?),
            None => None,
        };
        let n = self
            .conn()
            .prepare_cached(&table_sql(table).delete)?
            .execute(params![self.tenant, id])
            .map_err(|e| Error::on_table(table.name, e))?;
        if n == 0 {
            return Err(Error::NotFound {
                table: table.name,
                id,
            });
        }
        self.ensure_an_admin_remains(table)?;
        let change = outbox::Change {
            actor: Some(actor.user_id),
            table,
            row_id: id,
            kind: OperationKind::Delete,
            columns: serde_json::Map::new(),
            before,
        };
        outbox::append(self.conn(), &self.store.stamper(), self.tenant, change)?;
        self.audit(
            Some(actor.user_id),
            "delete",
            table.name,
            &id.to_string(),
            None,
        )
    }

    /// Inserts a row given as a JSON object into the table named `table` (see
    /// [`crate::TenantAccess::insert_json`]).
    pub(super) fn insert_json(
        &self,
        actor: &Actor,
        table: &str,
        payload: serde_json::Value,
    ) -> Result<RowId> {
        let payload = self.prepare_payload(table, payload)?;
        let visitor = InsertJson {
            scope: self,
            actor,
            payload,
        };
        catalog::visit_table(table, visitor).ok_or_else(|| Error::UnknownTable(table.to_owned()))?
    }

    /// Checks a JSON object against the handle's tenant: a `tenant_id` naming another tenant is
    /// refused; a missing `id` gets a new one.
    fn prepare_payload(
        &self,
        table: &str,
        payload: serde_json::Value,
    ) -> Result<serde_json::Map<String, serde_json::Value>> {
        let table = catalog::table(table).ok_or_else(|| Error::UnknownTable(table.to_owned()))?;
        let serde_json::Value::Object(mut map) = payload else {
            return Err(Error::InvalidPayload {
                table: table.name,
                reason: "not a JSON object".into(),
            });
        };
        match map.remove("tenant_id") {
            None => {}
            Some(serde_json::Value::String(s)) if s == self.tenant.as_str() => {}
            Some(other) => {
                let found = other
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| other.to_string());
                return Err(Error::TenantMismatch {
                    tenant: self.tenant.clone(),
                    found,
                });
            }
        }
        map.entry("id")
            .or_insert_with(|| serde_json::Value::String(RowId::new().to_string()));
        Ok(map)
    }
}

/// `?1` the tenant, then `params` from `?2`: how every statement of a scope is bound.
fn bound<'a>(
    tenant: &'a TenantId,
    params: &'a [&'a dyn ToSql],
) -> ParamsFromIter<impl Iterator<Item = &'a dyn ToSql>> {
    params_from_iter(std::iter::once(tenant as &dyn ToSql).chain(params.iter().copied()))
}

/// What the POS flows ([`crate::pos`]) build on: one authorization per flow, then rows written
/// with their operation and audit entry each, and reads that bind the tenant themselves.
///
/// The reads take SQL text from the crate only (never input) that names the tenant as `?1`
/// (`WHERE tenant_id = ?1 AND ...`) and the caller's parameters from `?2`; the scope binds `?1`
/// itself, so a flow cannot bind another tenant or forget to bind one. Statements are
/// prepared once per connection and cached.
impl<'c> Scope<'c> {
    /// The store, for the crate's own writers of internal tables outside this module (a
    /// conflict's resolution in `crate::sync`), which stamp their operation with the outbox
    /// as the merge does and bind the tenant themselves.
    pub(crate) fn store(&self) -> &'c Store {
        self.store
    }

    /// The tenant's settings as they are inside this transaction.
    pub(crate) fn tenant_settings(&self) -> Result<TenantSettings> {
        self.before_read()?;
        Ok(self
            .conn()
            .prepare_cached("SELECT settings FROM tenants WHERE id = ?1")?
            .query_row([self.tenant], |r| r.get(0))?)
    }

    /// Checks once for a whole flow that the tenant is active and the actor an active user of
    /// it with at least `needed`.
    pub(crate) fn require_role(
        &self,
        actor: &Actor,
        needed: Role,
        operation: &'static str,
        table: &'static str,
    ) -> Result<()> {
        if actor.tenant != *self.tenant {
            return Err(Error::ActorTenantMismatch {
                tenant: self.tenant.clone(),
                actor_tenant: actor.tenant.clone(),
            });
        }
        let role = self.current_role(actor)?;
        if role < needed {
            return Err(Error::PermissionDenied {
                role,
                needed,
                operation,
                table,
            });
        }
        Ok(())
    }

    /// Checks that a user named by a flow but not acting in it (the manager approving an
    /// override) is an active user of this tenant with at least `needed`, as
    /// [`Scope::require_role`] checks the actor.
    pub(crate) fn require_user_role(
        &self,
        user: RowId,
        needed: Role,
        operation: &'static str,
        table: &'static str,
    ) -> Result<()> {
        let role = self.role_of(user)?;
        if role < needed {
            return Err(Error::PermissionDenied {
                role,
                needed,
                operation,
                table,
            });
        }
        Ok(())
    }

    /// Inserts a row with its operation and audit entry, the actor already authorized by
    /// [`Scope::require_role`] for the flow.
    pub(crate) fn append<R: Record>(&self, actor: &Actor, rec: &R) -> Result<()> {
        self.insert_unchecked(actor.user_id, "insert", rec)
    }

    /// Updates a row as [`crate::TenantAccess::update`] does (documents frozen once closed).
    pub(crate) fn amend<R: Record>(&self, actor: &Actor, rec: &R) -> Result<()> {
        self.update(actor, rec)
    }

    /// The row of `R` with this id, or [`Error::NotFound`].
    pub(crate) fn row<R: Record>(&self, id: RowId) -> Result<R> {
        self.get(id)?.ok_or(Error::NotFound {
            table: R::TABLE.name,
            id,
        })
    }

    /// This tenant's rows of `R` matching `condition`, in the order and limit `tail` gives, in
    /// one statement. Both are SQL text from the crate only (never input); the caller's
    /// parameters are `?2` onwards. The column list is the catalog's, as every read uses.
    pub(crate) fn rows_where<R: Record>(
        &self,
        condition: &str,
        tail: &str,
        params: &[&dyn ToSql],
    ) -> Result<Vec<R>> {
        let sql = format!(
            "SELECT {} FROM {} WHERE \"tenant_id\" = ?1 AND {condition} {tail}",
            table_sql(R::TABLE).columns,
            quoted(R::TABLE.name)
        );
        self.query_map(&sql, params, R::from_row)
    }

    /// The balance kept beside ledger `L` for one key (values in the order of its
    /// [`BalanceDef::keys`](crate::catalog::BalanceDef::keys)), 0 when the ledger has no row.
    pub(crate) fn balance<L: KeptBalance>(&self, key: &[&dyn ToSql]) -> Result<i64> {
        self.before_read()?;
        ledger::read::<L>(self.conn(), self.tenant, key)
    }

    /// The first row `sql` returns, mapped by `f`; a statement that returns none is an error
    /// ([`rusqlite::Error::QueryReturnedNoRows`]), as for aggregates that always return one.
    pub(crate) fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.before_read()?;
        Ok(self
            .conn()
            .prepare_cached(sql)?
            .query_row(bound(self.tenant, params), f)?)
    }

    /// The first row `sql` returns, mapped by `f`, if it returns one.
    pub(crate) fn query_optional<T>(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        self.before_read()?;
        Ok(self
            .conn()
            .prepare_cached(sql)?
            .query_row(bound(self.tenant, params), f)
            .optional()?)
    }

    /// Every row `sql` returns, mapped by `f`, collected in order (into a `Vec`, a map...).
    pub(crate) fn query_map<T, C: FromIterator<T>>(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<C> {
        self.before_read()?;
        let mut stmt = self.conn().prepare_cached(sql)?;
        let rows = stmt.query_map(bound(self.tenant, params), f)?;
        Ok(rows.collect::<rusqlite::Result<C>>()?)
    }
}

/// A record's columns (all but `id`) as JSON values, as operations carry them.
fn record_columns<R: Record>(rec: &R) -> Result<serde_json::Map<String, serde_json::Value>> {
    match serde_json::to_value(rec) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.remove("id");
            Ok(map)
        }
        Ok(_) => unreachable!("catalog records serialize as objects"),
        Err(e) => Err(Error::InvalidPayload {
            table: R::TABLE.name,
            reason: e.to_string(),
        }),
    }
}

struct InsertJson<'a, 'c> {
    scope: &'a Scope<'c>,
    actor: &'a Actor,
    payload: serde_json::Map<String, serde_json::Value>,
}

impl RecordVisitor for InsertJson<'_, '_> {
    type Output = Result<RowId>;
    fn visit<R: Record>(self) -> Result<RowId> {
        let rec: R =
            serde_json::from_value(serde_json::Value::Object(self.payload)).map_err(|e| {
                Error::InvalidPayload {
                    table: R::TABLE.name,
                    reason: e.to_string(),
                }
            })?;
        self.scope.insert(self.actor, &rec)?;
        Ok(rec.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::settings::NewTenant;

    #[test]
    fn reads_bind_the_scope_tenant_and_check_the_parameter_count() -> Result<()> {
        let store = Store::open_in_memory()?;
        for id in ["caps", "bolt"] {
            store.add_tenant(&NewTenant::new(id.parse()?, id))?;
            store.tenant(&id.parse()?)?.bootstrap_admin(id, "Owner")?;
        }
        let caps: TenantId = "caps".parse()?;
        let s = Scope::new(&store, &caps);
        let sql = "SELECT username FROM users WHERE tenant_id = ?1 AND role = ?2";
        let names: Vec<String> = s.query_map(sql, &[&Role::Admin], |r| r.get(0))?;
        assert_eq!(names, ["caps"]);
        let count = "SELECT count(*) FROM users WHERE tenant_id = ?1";
        assert_eq!(s.query_row(count, &[], |r| r.get::<_, i64>(0))?, 1);
        let bolt = "SELECT id FROM users WHERE tenant_id = ?1 AND username = ?2";
        assert!(s
            .query_optional(bolt, &[&"bolt"], |r| r.get::<_, RowId>(0))?
            .is_none());
        // A parameter short is an error, never the value bound when the statement last ran.
        assert!(s
            .query_map::<String, Vec<_>>(sql, &[], |r| r.get(0))
            .is_err());
        Ok(())
    }
}
