//! Conflicts the merge records for a person: `sync_conflicts` rows, synced like master data so
//! every terminal of a tenant holds the same set, and resolved by an operation like any other.
//!
//! A conflict's id is derived from what conflicted (its kind and the rows, columns and stamps
//! involved), never drawn at random: two terminals that detect the same conflict, each when it
//! merges the other's work, write the same row, and the merge of the two copies is one row.
//!
//! A person resolves a conflict with [`Tenant::resolve_conflict`]: an `update` operation of the
//! conflict's row (its `resolved_at`, `resolved_by` and `resolution` columns), stamped and
//! pushed like any master-data change, so the resolution shows on every terminal. The table is
//! internal (no application writes it through the generic CRUD): this is its only writer
//! besides the merge.

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use crate::catalog::{Record, SyncConflict};
use crate::ids::{Json, RowId, TenantId, Timestamp};
use crate::outbox::{self, Change, Stamper};
use crate::protocol::OperationKind;
use crate::sync::stamps;
use crate::tenant::settings::Role;
use crate::tenant::{Actor, Scope, Tenant, TenantAccess};
use crate::Result;

/// The longest resolution note, in characters.
pub const MAX_RESOLUTION_CHARS: usize = 1000;

/// Why a conflict could not be resolved as asked; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConflictError {
    /// The conflict was resolved already (here, or on another terminal and synced here).
    #[error(
        "conflict {id} was resolved already at {at}{}: {resolution}",
        by.map(|u| format!(" by user {u}")).unwrap_or_default()
    )]
    AlreadyResolved {
        /// The conflict.
        id: RowId,
        /// When it was resolved.
        at: Timestamp,
        /// By whom.
        by: Option<RowId>,
        /// The note it was resolved with.
        resolution: String,
    },
    /// A resolution note that is empty (or only spaces) or longer than
    /// [`MAX_RESOLUTION_CHARS`].
    #[error("a resolution note must be 1 to {max} characters, got {chars}")]
    BadResolution {
        /// Characters given (after trimming spaces).
        chars: usize,
        /// The most allowed.
        max: usize,
    },
}

/// Reading and resolving the conflicts the merge recorded (see [`crate::sync`]).
impl Tenant<'_> {
    /// The tenant's conflicts on this terminal, oldest first (by detection time, then id);
    /// only those not resolved yet with `open_only`.
    pub fn conflicts(&self, open_only: bool) -> Result<Vec<SyncConflict>> {
        // Both conditions are fixed text; the scope binds the tenant.
        let condition = if open_only {
            "resolved_at IS NULL"
        } else {
            "1"
        };
        self.scope()
            .rows_where::<SyncConflict>(condition, "ORDER BY detected_at, id", &[])
    }

    /// Marks a conflict resolved by `actor` with a note saying what was done about it (1 to
    /// [`MAX_RESOLUTION_CHARS`] characters, surrounding spaces trimmed), and returns the
    /// conflict as it now is. Needs a manager or an admin.
    ///
    /// The resolution is an `update` operation of the conflict's row, in one transaction with
    /// the row and an audit entry: it reaches every terminal of the tenant with the next sync.
    /// An unknown id is [`crate::Error::NotFound`]; a conflict resolved already (here or on
    /// another terminal) is refused with [`ConflictError::AlreadyResolved`].
    pub fn resolve_conflict(
        &self,
        actor: &Actor,
        id: RowId,
        resolution: &str,
    ) -> Result<SyncConflict> {
        let note = resolution.trim();
        let chars = note.chars().count();
        if chars == 0 || chars > MAX_RESOLUTION_CHARS {
            return Err(ConflictError::BadResolution {
                chars,
                max: MAX_RESOLUTION_CHARS,
            }
            .into());
        }
        self.in_write(|scope| resolve(scope, self.tenant_id(), actor, id, note))
    }
}

/// The columns a resolution writes, as its operation carries them.
const RESOLUTION_COLUMNS: [&str; 3] = ["resolved_at", "resolved_by", "resolution"];

fn resolve(
    scope: &Scope<'_>,
    tenant: &TenantId,
    actor: &Actor,
    id: RowId,
    note: &str,
) -> Result<SyncConflict> {
    let table = SyncConflict::TABLE;
    scope.require_role(actor, Role::Manager, "resolve", table.name)?;
    let mut row: SyncConflict = scope.row(id)?;
    if let Some(at) = row.resolved_at {
        return Err(ConflictError::AlreadyResolved {
            id,
            at,
            by: row.resolved_by,
            resolution: row.resolution.unwrap_or_default(),
        }
        .into());
    }
    row.resolved_at = Some(Timestamp::now());
    row.resolved_by = Some(actor.user_id());
    row.resolution = Some(note.to_owned());
    let store = scope.store();
    let conn = &store.conn;
    conn.prepare_cached(
        "UPDATE sync_conflicts SET resolved_at = ?3, resolved_by = ?4, resolution = ?5
         WHERE tenant_id = ?1 AND id = ?2",
    )?
    .execute(params![
        tenant,
        id,
        row.resolved_at,
        row.resolved_by,
        row.resolution
    ])
    .map_err(|e| crate::Error::on_table(table.name, e))?;
    let columns = match serde_json::to_value(&row) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.retain(|name, _| RESOLUTION_COLUMNS.contains(&name.as_str()));
            map
        }
        _ => {
            return Err(crate::Error::InvalidPayload {
                table: table.name,
                reason: "a conflict does not serialize as an object".into(),
            })
        }
    };
    // Stamped like any master-data update: per-column stamps and the writer's view (`base`),
    // so the merge on the other terminals takes it by the same rules.
    outbox::append(
        conn,
        &store.stamper(),
        tenant,
        Change {
            actor: Some(actor.user_id()),
            table,
            row_id: id,
            kind: OperationKind::Update,
            columns,
            before: None,
        },
    )?;
    scope.audit(
        Some(actor.user_id()),
        "update",
        table.name,
        &id.to_string(),
        Some(serde_json::json!({ "columns": RESOLUTION_COLUMNS, "resolution": note })),
    )?;
    Ok(row)
}

/// What kind of rule a merge found broken. Its text is what `sync_conflicts.kind` stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConflictKind {
    /// Two terminals changed the same column of the same row without seeing each other's
    /// change; the later stamp won and the other value is kept here.
    ConcurrentEdit,
    /// A row was changed on one terminal and deleted on another; the delete won.
    UpdateVsDelete,
    /// A row was deleted on one terminal while another wrote rows that refer to it; the row
    /// stays (or comes back), so nothing that refers to it is lost.
    DeleteVsReference,
    /// Two terminals created rows with the same unique key (a SKU, an email); the row with the
    /// lower id keeps the key and the other's key gets a suffix.
    DuplicateKey,
    /// A document or ledger row arrived under an id this terminal holds with other content;
    /// the local one is kept.
    DifferentContent,
    /// Stock went below zero (two terminals sold the last unit); both sales stand.
    NegativeStock,
    /// A gift card was redeemed past its balance (spent on two offline terminals).
    GiftCardOverdrawn,
    /// Loyalty points were redeemed past the balance.
    PointsOverdrawn,
    /// Store credit passed the account's limit.
    CreditLimitExceeded,
    /// A sale line was refunded more than it sold (refunds on two terminals).
    OverRefunded,
    /// The central server refused an operation of this terminal; it is set aside, not pushed.
    RefusedOperation,
    /// A transaction from another terminal could not be applied here; its operations are kept
    /// in the conflict.
    NotApplied,
}

impl ConflictKind {
    /// The stored word.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConflictKind::ConcurrentEdit => "concurrent_edit",
            ConflictKind::UpdateVsDelete => "update_vs_delete",
            ConflictKind::DeleteVsReference => "delete_vs_reference",
            ConflictKind::DuplicateKey => "duplicate_key",
            ConflictKind::DifferentContent => "different_content",
            ConflictKind::NegativeStock => "negative_stock",
            ConflictKind::GiftCardOverdrawn => "gift_card_overdrawn",
            ConflictKind::PointsOverdrawn => "points_overdrawn",
            ConflictKind::CreditLimitExceeded => "credit_limit_exceeded",
            ConflictKind::OverRefunded => "over_refunded",
            ConflictKind::RefusedOperation => "refused_operation",
            ConflictKind::NotApplied => "not_applied",
        }
    }
}

impl std::fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A conflict about to be recorded.
#[derive(Debug, Clone)]
pub(crate) struct NewConflict {
    pub(crate) kind: ConflictKind,
    /// What identifies this conflict on every terminal (after the kind).
    pub(crate) key: Vec<String>,
    pub(crate) table: String,
    pub(crate) row: String,
    pub(crate) column: Option<String>,
    pub(crate) local: Option<serde_json::Value>,
    pub(crate) remote: Option<serde_json::Value>,
}

impl NewConflict {
    /// The conflict's id, the same on every terminal.
    pub(crate) fn id(&self, tenant: &TenantId) -> RowId {
        let mut parts: Vec<&str> = vec![tenant.as_str(), self.kind.as_str()];
        parts.extend(self.key.iter().map(String::as_str));
        RowId::derived(&parts)
    }
}

/// Records a conflict once, in the caller's transaction, with its operation so the other
/// terminals get it: returns its id when it is new here, `None` when this terminal already
/// holds it (detected here before, or pulled from another terminal).
pub(crate) fn record(
    conn: &Connection,
    stamper: &Stamper<'_>,
    tenant: &TenantId,
    conflict: NewConflict,
) -> Result<Option<RowId>> {
    let id = conflict.id(tenant);
    let known: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM sync_conflicts WHERE tenant_id = ?1 AND id = ?2)",
        )?
        .query_row(params![tenant, id], |r| r.get(0))?;
    if known {
        return Ok(None);
    }
    let row = SyncConflict {
        id,
        table_name: conflict.table,
        row_id: conflict.row,
        column_name: conflict.column,
        kind: conflict.kind.as_str().to_owned(),
        local_value: conflict.local.map(Json),
        remote_value: conflict.remote.map(Json),
        detected_at: Timestamp::now(),
        resolved_at: None,
        resolved_by: None,
        resolution: None,
    };
    insert_row(conn, tenant, &row)?;
    let columns = match serde_json::to_value(&row) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.remove("id");
            map
        }
        _ => {
            return Err(crate::Error::InvalidPayload {
                table: "sync_conflicts",
                reason: "a conflict does not serialize as an object".into(),
            })
        }
    };
    let hlc = outbox::append(
        conn,
        stamper,
        tenant,
        Change {
            actor: None,
            table: SyncConflict::TABLE,
            row_id: id,
            kind: OperationKind::Insert,
            columns,
            before: None,
        },
    )?;
    // Two terminals insert the same conflict: its columns merge by these stamps.
    if let Some(hlc) = hlc {
        let mut st = stamps::RowStamps::default();
        st.stamps.insert(stamps::INSERTED.to_owned(), hlc);
        stamps::save(conn, tenant, SyncConflict::TABLE, id, &st)?;
    }
    Ok(Some(id))
}

fn insert_row(conn: &Connection, tenant: &TenantId, row: &SyncConflict) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO sync_conflicts (id, tenant_id, table_name, row_id, column_name, kind,
             local_value, remote_value, detected_at, resolved_at, resolved_by, resolution)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        row.id,
        tenant,
        row.table_name,
        row.row_id,
        row.column_name,
        row.kind,
        row.local_value,
        row.remote_value,
        row.detected_at,
        row.resolved_at,
        row.resolved_by,
        row.resolution
    ])?;
    Ok(())
}
