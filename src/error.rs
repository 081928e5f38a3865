//! The error type of the store and the tenant handle.

use std::path::PathBuf;

use rusqlite::ffi;

use crate::ids::{RowId, RowIdError, TenantId, TenantIdError};
use crate::tenant::query::QueryError;
use crate::tenant::settings::{Role, SettingsError, TenantStatus};

/// Which database constraint refused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConstraintKind {
    /// A UNIQUE or PRIMARY KEY constraint (within the tenant).
    Unique,
    /// A foreign key: the referenced row does not exist in this tenant, or the row is still
    /// referenced.
    ForeignKey,
    /// A CHECK constraint (an allowed value or range).
    Check,
    /// A NOT NULL constraint.
    NotNull,
    /// A trigger refused the change (for example, changing `tenant_id`).
    Trigger,
    /// Another constraint.
    Other,
}

/// What went wrong in the store or a tenant handle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A POS flow refused by a business rule or bad input; nothing was written.
    #[error(transparent)]
    Flow(#[from] crate::pos::FlowError),
    /// A receipt that cannot be rendered (its locale or currency); nothing was written.
    #[cfg(feature = "receipts")]
    #[error(transparent)]
    Receipt(#[from] crate::receipt::ReceiptError),
    /// A sync conflict that cannot be resolved as asked; nothing was written.
    #[error(transparent)]
    Conflict(#[from] crate::sync::ConflictError),
    /// A tenant id that is not a valid slug.
    #[error(transparent)]
    TenantId(#[from] TenantIdError),
    /// A row id that is not a UUID.
    #[error(transparent)]
    RowId(#[from] RowIdError),
    /// Tenant settings that failed validation.
    #[error("invalid tenant settings: {0}")]
    Settings(#[from] SettingsError),
    /// The database file could not be opened or is not a SQLite database.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// No file at the path, where an existing database was asked for
    /// ([`Store::open_existing`](crate::Store::open_existing)); nothing was created.
    #[error("no database at {path} (nothing was created)")]
    NoDatabase {
        /// The path given.
        path: PathBuf,
    },
    /// The file is not a node database: empty, a pos-central database, or another SQLite
    /// database. Refused before anything was written to it.
    #[error("{path} is not a pos-node database: it is {what} (nothing was changed)")]
    NotANodeDatabase {
        /// The file.
        path: PathBuf,
        /// What it is instead: `an empty file`, `a pos-central database` or `another SQLite
        /// database`.
        what: &'static str,
    },
    /// The file was written by a newer version of this crate.
    #[error(
        "the database is at schema version {found}, newer than the {supported} this pos-tenancy \
         knows; upgrade pos-tenancy to open it (nothing was changed)"
    )]
    SchemaTooNew {
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// A migration failed; the grouped run was rolled back, so nothing was applied.
    #[error("migrating the database failed, nothing was applied: {0}")]
    Migration(String),
    /// No tenant with this id.
    #[error("tenant {0} does not exist")]
    TenantNotFound(TenantId),
    /// A tenant with this id exists already.
    #[error("tenant {0} already exists")]
    TenantExists(TenantId),
    /// The tenant's status forbids the operation.
    #[error("tenant {tenant} is {status}: {operation} refused")]
    TenantInactive {
        /// The tenant.
        tenant: TenantId,
        /// Its status.
        status: TenantStatus,
        /// `read` or `write`.
        operation: &'static str,
    },
    /// The tenant's data moved (promoted to a file of its own, or demoted back to the shared
    /// file) after this handle was opened: nothing was read or written here. Take a new handle
    /// from [`Store::tenant`](crate::Store::tenant), which follows the new route.
    #[error(
        "tenant {tenant} moved to {now_in} after this handle was opened: nothing was changed; \
         take a new handle (Store::tenant) to reach it there"
    )]
    TenantMoved {
        /// The tenant.
        tenant: TenantId,
        /// Where it lives now: `its own file` or `the shared file`.
        now_in: &'static str,
    },
    /// The tenant's own database file (its route after a promotion) could not be used.
    #[error("tenant {tenant}'s own database file {path}: {reason}")]
    TenantFile {
        /// The tenant.
        tenant: TenantId,
        /// The file its route names.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A change of status the tenant may not go through
    /// ([`TenantStatus::TRANSITIONS`]: cancelled is final).
    #[error(
        "tenant {tenant} is {from} and cannot become {to} (active and suspended change into each \
         other, either into cancelled, and cancelled is final); nothing was changed"
    )]
    TenantStatusChange {
        /// The tenant.
        tenant: TenantId,
        /// Its status.
        from: TenantStatus,
        /// The status refused.
        to: TenantStatus,
    },
    /// The actor's role is not enough.
    #[error("a {role} may not {operation} {table}; it needs a {needed}")]
    PermissionDenied {
        /// The actor's role.
        role: Role,
        /// The least role needed.
        needed: Role,
        /// What was attempted.
        operation: &'static str,
        /// On what.
        table: &'static str,
    },
    /// The actor was obtained from another tenant's handle.
    #[error("the actor belongs to tenant {actor_tenant}, not {tenant}")]
    ActorTenantMismatch {
        /// The handle's tenant.
        tenant: TenantId,
        /// The actor's tenant.
        actor_tenant: TenantId,
    },
    /// The user does not exist in this tenant or is disabled.
    #[error("user {0} is not an active user of this tenant")]
    UnknownActor(RowId),
    /// The tenant already has users, so there is nothing to bootstrap.
    #[error("tenant {0} already has users; bootstrap only creates the first admin")]
    AlreadyBootstrapped(TenantId),
    /// The change would leave the tenant without an active admin.
    #[error("tenant {0} must keep at least one active admin")]
    LastAdmin(TenantId),
    /// A limit of the tenant's plan.
    #[error("tenant {tenant} has reached its plan limit of {limit} {what}")]
    PlanLimit {
        /// The tenant.
        tenant: TenantId,
        /// What is limited.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// No catalog table by this name.
    #[error("no table {0:?} in the catalog")]
    UnknownTable(String),
    /// No such column in the table.
    #[error("table {table} has no column {column:?}")]
    UnknownColumn {
        /// The table.
        table: &'static str,
        /// The rejected column.
        column: String,
    },
    /// An update or delete of an append-only row.
    #[error("{table} rows are {rule}: {operation} refused")]
    AppendOnly {
        /// The table.
        table: &'static str,
        /// What was attempted.
        operation: &'static str,
        /// The rule that forbids it.
        rule: &'static str,
    },
    /// A write to a table only the crate itself writes.
    #[error("{0} is written only by pos-tenancy itself")]
    InternalTable(&'static str),
    /// A payload that names another tenant.
    #[error("the payload names tenant {found:?} but this handle is for {tenant}")]
    TenantMismatch {
        /// The handle's tenant.
        tenant: TenantId,
        /// The tenant the payload named.
        found: String,
    },
    /// A payload that does not fit the table.
    #[error("invalid {table} payload: {reason}")]
    InvalidPayload {
        /// The table.
        table: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// No row with this id in this tenant.
    #[error("{table} row {id} does not exist in this tenant")]
    NotFound {
        /// The table.
        table: &'static str,
        /// The id looked for.
        id: RowId,
    },
    /// The database refused the write.
    #[error("{table}: {kind:?} constraint failed: {message}")]
    Constraint {
        /// The table written.
        table: &'static str,
        /// Which constraint.
        kind: ConstraintKind,
        /// SQLite's message (names the columns).
        message: String,
    },
    /// A clock stamp that was malformed or too far in the future.
    #[error(transparent)]
    Clock(crate::hlc::HlcError),
    /// An operation that does not fit the catalog.
    #[error("invalid operation: {0}")]
    Operation(#[from] crate::protocol::OperationError),
    /// The database rolled the whole transaction back (a trigger's RAISE(ROLLBACK), a full
    /// disk); nothing of it was kept and it takes no more writes.
    #[error("the transaction was rolled back by the database; start a new one")]
    TransactionAborted,
    /// A nested transaction on one connection.
    #[error("a transaction is already open on this store")]
    TransactionOpen,
    /// A read-only report query was refused or failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// Any other SQLite failure.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file system failure.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Turns a SQLite constraint failure on `table` into [`Error::Constraint`]; other errors
    /// become [`Error::Sqlite`].
    pub(crate) fn on_table(table: &'static str, err: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(e, msg) = &err {
            if e.code == ffi::ErrorCode::ConstraintViolation {
                let kind = match e.extended_code {
                    ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                        ConstraintKind::Unique
                    }
                    ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ConstraintKind::ForeignKey,
                    ffi::SQLITE_CONSTRAINT_CHECK => ConstraintKind::Check,
                    ffi::SQLITE_CONSTRAINT_NOTNULL => ConstraintKind::NotNull,
                    ffi::SQLITE_CONSTRAINT_TRIGGER => ConstraintKind::Trigger,
                    _ => ConstraintKind::Other,
                };
                let message = msg.clone().unwrap_or_else(|| e.to_string());
                return Error::Constraint {
                    table,
                    kind,
                    message,
                };
            }
        }
        Error::Sqlite(err)
    }
}
