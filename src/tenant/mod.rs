//! Tenant-scoped access: the handle, actors, generic CRUD over the catalog, transactions.
//!
//! The only way to a tenant's rows is a handle for that tenant ([`Tenant`], or a [`TenantTx`]
//! inside a transaction), and every statement a handle runs binds its tenant as `tenant_id`.
//! The pieces:
//! - [`handle`]: [`TenantAccess`] (the reads and writes every handle has), [`Tenant`] and
//!   [`TenantTx`];
//! - [`scope`]: [`Scope`], one tenant's view of the connection, on which every read and write
//!   is built (the handle's CRUD and the POS flows alike); it binds `tenant_id` itself, so no
//!   caller ever binds it by hand;
//! - [`actor`]: [`Actor`], a user with the role the users table gives them;
//! - [`list`]: [`ListQuery`] and [`Page`], a filtered keyset page of one table;
//! - [`query`]: the read-only report SQL, confined to one tenant by SQLite itself;
//! - [`settings`]: the tenant registry's types (status, plan, white-label settings).

pub(crate) mod actor;
pub(crate) mod handle;
pub(crate) mod list;
pub(crate) mod query;
pub(crate) mod scope;
pub(crate) mod settings;

pub use actor::Actor;
pub use handle::{Tenant, TenantAccess, TenantTx};
pub use list::{FilterOp, FilterValue, ListQuery, Page};
pub use scope::Scope;
