//! Tenant-scoped access: the handle, actors, generic CRUD over the catalog, transactions.

pub(crate) mod query;
pub(crate) mod settings;

use std::collections::HashMap;
use std::sync::OnceLock;

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::catalog::{self, Access, AuditEntry, Record, RecordVisitor, SyncClass, TableDef, User};
use crate::outbox;
use crate::protocol::{Operation, OperationKind};

use crate::error::Error;
use crate::ids::{Json, RowId, TenantId, Timestamp};
use crate::store::Store;
use crate::tenant::query::QueryResult;
use crate::tenant::settings::{Role, TenantInfo, TenantSettings, TenantStatus};
use crate::Result;

/// A user of one tenant acting through its handle, with the role the database gave them.
///
/// Obtained from [`Tenant::actor`] or [`Tenant::bootstrap_admin`], never built by hand, so a
/// role cannot be claimed without the users table agreeing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    tenant: TenantId,
    user_id: RowId,
    role: Role,
}

impl Actor {
    /// The user.
    pub fn user_id(&self) -> RowId {
        self.user_id
    }
    /// Their role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// Their tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

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
    fn sql(&self) -> &'static str {
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

/// Filters and a keyset page for [`TenantAccess::list`]. Rows come in id order (UUIDv7, so
/// creation order); pass a page's [`Page::next`] to [`ListQuery::after`] for the next page.
///
/// ```
/// use pos_tenancy::{FilterOp, ListQuery};
/// let q = ListQuery::new().eq("active", true).filter("price_minor", FilterOp::Lt, 5_000).limit(50);
/// # let _ = q;
/// ```
#[derive(Debug, Clone)]
pub struct ListQuery {
    filters: Vec<(String, FilterOp, Value)>,
    after: Option<RowId>,
    limit: u32,
    descending: bool,
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
pub struct FilterValue(Value);

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

/// SQL text of one table, generated once from its catalog entry (catalog identifiers only).
struct TableSql {
    columns: String,
    insert: String,
    get: String,
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
                let sql = TableSql {
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
#[doc(hidden)]
pub struct Scope<'c> {
    store: &'c Store,
    tenant: &'c TenantId,
}

impl<'c> Scope<'c> {
    pub(crate) fn new(store: &'c Store, tenant: &'c TenantId) -> Self {
        Self { store, tenant }
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

    fn ensure_writable(&self) -> Result<()> {
        let status: Option<TenantStatus> = self
            .conn()
            .prepare_cached("SELECT status FROM tenants WHERE id = ?1")?
            .query_row([self.tenant], |r| r.get(0))
            .optional()?;
        match status {
            Some(TenantStatus::Active) => Ok(()),
            Some(status) => Err(Error::TenantInactive {
                tenant: self.tenant.clone(),
                status,
                operation: "write",
            }),
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
    fn current_role(&self, actor: &Actor) -> Result<Role> {
        let found: Option<(TenantStatus, Option<Role>, Option<bool>)> = self
            .conn()
            .prepare_cached(
                "SELECT t.status, u.role, u.active FROM tenants t
                 LEFT JOIN users u ON u.tenant_id = t.id AND u.id = ?2 WHERE t.id = ?1",
            )?
            .query_row(params![self.tenant, actor.user_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        match found {
            None => Err(Error::TenantNotFound(self.tenant.clone())),
            Some((TenantStatus::Active, Some(role), Some(true))) => Ok(role),
            Some((TenantStatus::Active, _, _)) => Err(Error::UnknownActor(actor.user_id)),
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

    fn get<R: Record>(&self, id: RowId) -> Result<Option<R>> {
        let mut stmt = self.conn().prepare_cached(&table_sql(R::TABLE).get)?;
        Ok(stmt
            .query_row(params![self.tenant, id], R::from_row)
            .optional()?)
    }

    fn list<R: Record>(&self, q: &ListQuery) -> Result<Page<R>> {
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

    fn count_users(&self) -> Result<i64> {
        Ok(self
            .conn()
            .prepare_cached("SELECT count(*) FROM users WHERE tenant_id = ?1")?
            .query_row([self.tenant], |r| r.get(0))?)
    }

    fn insert_unchecked<R: Record>(&self, actor_id: RowId, action: &str, rec: &R) -> Result<()> {
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

    fn insert<R: Record>(&self, actor: &Actor, rec: &R) -> Result<()> {
        self.authorize(actor, R::TABLE, "insert")?;
        self.insert_unchecked(actor.user_id, "insert", rec)
    }

    fn update<R: Record>(&self, actor: &Actor, rec: &R) -> Result<()> {
        let table = R::TABLE;
        self.authorize(actor, table, "update")?;
        let old: R = self.get(rec.id())?.ok_or(Error::NotFound {
            table: table.name,
            id: rec.id(),
        })?;
        let old = record_columns(&old)?;
        let final_status = ["completed", "voided", "cancelled"];
        let frozen = table.sync_class == SyncClass::Document
            && old
                .get("status")
                .and_then(|v| v.as_str())
                .is_some_and(|s| final_status.contains(&s));
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
        let mut stmt = self.conn().prepare_cached(&table_sql(table).update)?;
        stmt.raw_bind_parameter(1, self.tenant)?;
        stmt.raw_bind_parameter(2, rec.id())?;
        rec.bind_columns(&mut stmt, 3)?;
        stmt.raw_execute()
            .map_err(|e| Error::on_table(table.name, e))?;
        self.ensure_an_admin_remains(table)?;
        let names: Vec<&String> = changed.keys().collect();
        let detail = serde_json::json!({ "columns": names });
        self.append_operation(
            actor.user_id,
            table,
            rec.id(),
            OperationKind::Update,
            changed.clone(),
        )?;
        self.audit(
            Some(actor.user_id),
            "update",
            table.name,
            &rec.id().to_string(),
            Some(detail),
        )
    }

    fn delete<R: Record>(&self, actor: &Actor, id: RowId) -> Result<()> {
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

/// What the POS flows ([`crate::pos`]) build on: one authorization per flow, then rows written
/// with their operation and audit entry each.
impl<'c> Scope<'c> {
    pub(crate) fn connection(&self) -> &'c Connection {
        self.conn()
    }

    /// The store, for writers outside this module that stamp operations (sync's conflict
    /// resolution).
    pub(crate) fn store(&self) -> &'c Store {
        self.store
    }

    pub(crate) fn tenant(&self) -> &'c TenantId {
        self.tenant
    }

    /// The tenant's settings as they are inside this transaction.
    pub(crate) fn tenant_settings(&self) -> Result<TenantSettings> {
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

    /// Inserts a row with its operation and audit entry, the actor already authorized by
    /// [`Scope::require_role`] for the flow.
    pub(crate) fn append<R: Record>(&self, actor: &Actor, rec: &R) -> Result<()> {
        self.insert_unchecked(actor.user_id, "insert", rec)
    }

    /// Updates a row as [`TenantAccess::update`] does (documents frozen once closed).
    pub(crate) fn amend<R: Record>(&self, actor: &Actor, rec: &R) -> Result<()> {
        self.update(actor, rec)
    }

    /// This tenant's rows of `R` matching `condition`, in the order and limit `tail` gives.
    /// Both are SQL text from the crate only (never input); `?1` is the tenant, the caller's
    /// parameters follow from `?2`. The column list is the catalog's, as every read uses.
    pub(crate) fn rows_where<R: Record, P: rusqlite::Params>(
        &self,
        condition: &str,
        tail: &str,
        params: P,
    ) -> Result<Vec<R>> {
        let sql = format!(
            "SELECT {} FROM {} WHERE \"tenant_id\" = ?1 AND {condition} {tail}",
            table_sql(R::TABLE).columns,
            quoted(R::TABLE.name)
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(params, R::from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub(crate) fn row<R: Record>(&self, id: RowId) -> Result<R> {
        self.get(id)?.ok_or(Error::NotFound {
            table: R::TABLE.name,
            id,
        })
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

/// Reads and writes of one tenant's rows, shared by [`Tenant`] (each write its own
/// transaction) and [`TenantTx`] (writes inside one transaction).
///
/// Every write takes an [`Actor`] of the same tenant whose role is at least the table's
/// [`TableDef::write_role`], is refused unless the tenant is active, and appends an `audit_log`
/// row in the same transaction.
pub trait TenantAccess {
    #[doc(hidden)]
    fn scope(&self) -> Scope<'_>;

    #[doc(hidden)]
    fn in_write<T>(&self, f: impl FnOnce(&Scope<'_>) -> Result<T>) -> Result<T>;

    /// The tenant this handle is for.
    fn tenant_id(&self) -> &TenantId;

    /// The row with this id, if this tenant has it.
    fn get<R: Record>(&self, id: RowId) -> Result<Option<R>> {
        self.scope().get(id)
    }

    /// The row with this id, or [`Error::NotFound`].
    fn fetch<R: Record>(&self, id: RowId) -> Result<R> {
        self.get(id)?.ok_or(Error::NotFound {
            table: R::TABLE.name,
            id,
        })
    }

    /// One page of rows matching the query.
    fn list<R: Record>(&self, query: &ListQuery) -> Result<Page<R>> {
        self.scope().list(query)
    }

    /// Inserts a row for this tenant.
    fn insert<R: Record>(&self, actor: &Actor, record: &R) -> Result<()> {
        self.in_write(|s| s.insert(actor, record))
    }

    /// Replaces a row's columns; the audit row names the columns that changed. Ledger rows are
    /// refused ([`Error::AppendOnly`]).
    fn update<R: Record>(&self, actor: &Actor, record: &R) -> Result<()> {
        self.in_write(|s| s.update(actor, record))
    }

    /// Deletes a row. Ledger and document rows are refused ([`Error::AppendOnly`]); a row still
    /// referenced is refused by the database ([`Error::Constraint`]).
    fn delete<R: Record>(&self, actor: &Actor, id: RowId) -> Result<()> {
        self.in_write(|s| s.delete::<R>(actor, id))
    }

    /// Inserts a row given as a JSON object, for callers that pick the table at run time (the
    /// CLI, sync). A `tenant_id` other than this tenant's is refused; a missing `id` is made.
    fn insert_json(&self, actor: &Actor, table: &str, payload: serde_json::Value) -> Result<RowId> {
        self.in_write(|s| {
            let payload = s.prepare_payload(table, payload)?;
            let visitor = InsertJson {
                scope: s,
                actor,
                payload,
            };
            catalog::visit_table(table, visitor)
                .ok_or_else(|| Error::UnknownTable(table.to_owned()))?
        })
    }
}

/// A handle on one tenant's data, from [`Store::tenant`]. Each write is its own transaction;
/// use [`Tenant::transaction`] to group several.
///
/// Every write re-checks, inside its transaction, that the tenant is active and that the actor
/// is still an active user with the role needed. Reads check the tenant's status once, when the
/// handle is made: a handle is meant to live for one request or one screen, and a tenant
/// cancelled meanwhile is refused at its next write and its next [`Store::tenant`].
///
/// ```
/// use pos_tenancy::{catalog::Customer, NewTenant, RowId, Store, TenantAccess, Timestamp};
/// let store = Store::open_in_memory()?;
/// store.add_tenant(&NewTenant::new("caps".parse()?, "Caps"))?;
/// let caps = store.tenant(&"caps".parse()?)?;
/// let admin = caps.bootstrap_admin("owner", "Store Owner")?;
/// let now = Timestamp::now();
/// let customer = Customer {
///     id: RowId::new(), code: "C-1".into(), first_name: "Ana".into(), last_name: "Diaz".into(),
///     company: None, email: None, phone: None, price_level_id: None, tax_exempt: false,
///     notes: None, created_at: now, updated_at: now,
/// };
/// caps.insert(&admin, &customer)?;
/// assert_eq!(caps.fetch::<Customer>(customer.id)?.first_name, "Ana");
/// # Ok::<(), pos_tenancy::Error>(())
/// ```
pub struct Tenant<'s> {
    store: &'s Store,
    id: TenantId,
}

impl<'s> Tenant<'s> {
    pub(crate) fn new(store: &'s Store, id: TenantId) -> Self {
        Self { store, id }
    }

    /// The tenant's registry entry (status, plan, settings).
    pub fn info(&self) -> Result<TenantInfo> {
        self.store.tenant_info(&self.id)
    }

    /// The tenant's white-label settings.
    pub fn settings(&self) -> Result<TenantSettings> {
        Ok(self.info()?.settings)
    }

    /// The actor for an active user of this tenant, with the role the users table gives.
    pub fn actor(&self, user_id: RowId) -> Result<Actor> {
        let found: Option<(Role, bool)> = self
            .store
            .conn
            .prepare_cached("SELECT role, active FROM users WHERE tenant_id = ?1 AND id = ?2")?
            .query_row(params![self.id, user_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match found {
            Some((role, true)) => Ok(Actor {
                tenant: self.id.clone(),
                user_id,
                role,
            }),
            _ => Err(Error::UnknownActor(user_id)),
        }
    }

    /// Creates the tenant's first user, an admin, and returns it as an actor. Refused once the
    /// tenant has any user ([`Error::AlreadyBootstrapped`]).
    pub fn bootstrap_admin(&self, username: &str, display_name: &str) -> Result<Actor> {
        let tx = self.store.begin_write()?;
        let scope = Scope::new(self.store, &self.id);
        scope.ensure_writable()?;
        if scope.count_users()? > 0 {
            return Err(Error::AlreadyBootstrapped(self.id.clone()));
        }
        let now = Timestamp::now();
        let user = User {
            id: RowId::new(),
            username: username.to_owned(),
            display_name: display_name.to_owned(),
            email: None,
            role: Role::Admin,
            pin_hash: None,
            active: true,
            created_at: now,
            updated_at: now,
        };
        scope.insert_unchecked(user.id, "bootstrap", &user)?;
        tx.commit()?;
        Ok(Actor {
            tenant: self.id.clone(),
            user_id: user.id,
            role: Role::Admin,
        })
    }

    /// Replaces the tenant's settings after validating them. Needs an admin.
    pub fn update_settings(&self, actor: &Actor, settings: &TenantSettings) -> Result<TenantInfo> {
        if actor.tenant != self.id {
            return Err(Error::ActorTenantMismatch {
                tenant: self.id.clone(),
                actor_tenant: actor.tenant.clone(),
            });
        }
        settings.validate()?;
        let json = Json(
            serde_json::to_value(settings).map_err(|e| Error::InvalidPayload {
                table: "tenants",
                reason: e.to_string(),
            })?,
        );
        let tx = self.store.begin_write()?;
        let scope = Scope::new(self.store, &self.id);
        let role = scope.current_role(actor)?;
        if role < Role::Admin {
            return Err(Error::PermissionDenied {
                role,
                needed: Role::Admin,
                operation: "update",
                table: "tenants",
            });
        }
        tx.execute(
            "UPDATE tenants SET settings = ?2, updated_at = ?3 WHERE id = ?1",
            params![self.id, json, Timestamp::now()],
        )
        .map_err(|e| Error::on_table("tenants", e))?;
        scope.audit(
            Some(actor.user_id),
            "settings",
            "tenants",
            self.id.as_str(),
            None,
        )?;
        tx.commit()?;
        self.info()
    }

    /// Runs a read-only SELECT over this tenant's rows only. SQLite itself confines it: table
    /// names resolve to views filtered to this tenant, and an authorizer refuses base tables,
    /// writes, ATTACH, PRAGMA and the schema tables. See [`crate::QueryError`].
    pub fn query(&self, sql: &str) -> Result<QueryResult> {
        self.store
            .with_reports(|r, timeout| Ok(r.run(&self.id, sql, timeout)?))
    }

    /// This tenant's operations not yet acknowledged by the central server, oldest first (by
    /// clock stamp), at most `limit`.
    pub fn pending_operations(&self, limit: u32) -> Result<Vec<Operation>> {
        outbox::pending(&self.store.conn, &self.id, limit)
    }

    /// Starts a transaction: writes through it commit together on [`TenantTx::commit`] and
    /// roll back if it is dropped.
    pub fn transaction(&mut self) -> Result<TenantTx<'_>> {
        Ok(TenantTx {
            tx: self.store.begin_write()?,
            store: self.store,
            tenant: &self.id,
        })
    }
}

impl TenantAccess for Tenant<'_> {
    fn scope(&self) -> Scope<'_> {
        Scope::new(self.store, &self.id)
    }

    fn in_write<T>(&self, f: impl FnOnce(&Scope<'_>) -> Result<T>) -> Result<T> {
        let tx = self.store.begin_write()?;
        let out = f(&Scope::new(self.store, &self.id))?;
        tx.commit()?;
        Ok(out)
    }

    fn tenant_id(&self) -> &TenantId {
        &self.id
    }
}

/// Several writes of one tenant committed together. Rolls back when dropped without
/// [`TenantTx::commit`]. Each write inside is atomic on its own too (a failed write leaves
/// nothing behind, and the transaction can go on).
pub struct TenantTx<'t> {
    tx: rusqlite::Transaction<'t>,
    store: &'t Store,
    tenant: &'t TenantId,
}

impl TenantTx<'_> {
    /// Commits every write made through this transaction.
    pub fn commit(self) -> Result<()> {
        Ok(self.tx.commit()?)
    }

    /// Discards every write made through this transaction.
    pub fn rollback(self) -> Result<()> {
        Ok(self.tx.rollback()?)
    }
}

impl TenantAccess for TenantTx<'_> {
    fn scope(&self) -> Scope<'_> {
        Scope::new(self.store, self.tenant)
    }

    fn in_write<T>(&self, f: impl FnOnce(&Scope<'_>) -> Result<T>) -> Result<T> {
        // If something rolled back the whole transaction (a RAISE(ROLLBACK), a full disk), the
        // connection is back in autocommit: writing on would commit each write on its own.
        if self.tx.is_autocommit() {
            return Err(Error::TransactionAborted);
        }
        // A savepoint per write keeps a failed write from leaving half of itself (say, the row
        // without its audit entry) in a transaction the caller may still commit.
        self.tx.prepare_cached("SAVEPOINT pos_write")?.execute([])?;
        match f(&self.scope()) {
            Ok(out) => {
                self.tx.prepare_cached("RELEASE pos_write")?.execute([])?;
                Ok(out)
            }
            Err(e) => {
                if self.tx.is_autocommit() {
                    return Err(Error::TransactionAborted);
                }
                self.tx
                    .execute_batch("ROLLBACK TO pos_write; RELEASE pos_write")?;
                Err(e)
            }
        }
    }

    fn tenant_id(&self) -> &TenantId {
        self.tenant
    }
}
