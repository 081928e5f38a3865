//! # pos-tenancy
//!
//! The offline-first, tenant-scoped store that point-of-sale terminals embed. Each node keeps
//! its data in SQLite with `tenant_id` on every table; the database itself refuses rows that
//! cross tenants (composite foreign keys, tenant-scoped UNIQUE constraints, triggers that freeze
//! `tenant_id`), and the Rust API only reaches tenant data through a handle for one tenant.
//!
//! ```
//! use pos_tenancy::{catalog::Product, NewTenant, RowId, Store, TenantAccess, Timestamp};
//!
//! let store = Store::open_in_memory()?;
//! for (id, name) in [("caps-automotive", "Caps Automotive"), ("bolt-bros", "Bolt Bros")] {
//!     store.add_tenant(&NewTenant::new(id.parse()?, name))?;
//! }
//! let caps = store.tenant(&"caps-automotive".parse()?)?;
//! let admin = caps.bootstrap_admin("owner", "Store Owner")?;
//! let now = Timestamp::now();
//! let filter = Product {
//!     id: RowId::new(), sku: "OF-100".into(), barcode: None, name: "Oil filter".into(),
//!     description: None, brand: Some("Fram".into()), category_id: None, kind: "stocked".into(),
//!     price_minor: 1299, cost_minor: 610, currency: "USD".into(), taxable: true,
//!     reorder_level_milli: 5000, image: None, active: true, created_at: now, updated_at: now,
//! };
//! caps.insert(&admin, &filter)?;
//!
//! // Another tenant sees nothing of it, through the API or through report SQL.
//! let bolt = store.tenant(&"bolt-bros".parse()?)?;
//! assert!(bolt.get::<Product>(filter.id)?.is_none());
//! assert!(bolt.query("SELECT * FROM products")?.rows.is_empty());
//! assert_eq!(caps.query("SELECT sku FROM products")?.rows.len(), 1);
//! # Ok::<(), pos_tenancy::Error>(())
//! ```
#![warn(missing_docs)]

pub mod access;
pub mod adopt;
pub mod catalog;
pub mod central;
pub mod error;
pub mod hlc;
pub mod ids;
pub mod ledger;
pub mod outbox;
pub mod pos;
pub mod query;
#[cfg(feature = "server")]
pub mod server;
pub mod store;
pub mod tenant;
pub mod testkit;
pub mod verify;
pub mod vfs;

pub use access::{Actor, FilterOp, FilterValue, ListQuery, Page, Tenant, TenantAccess, TenantTx};
pub use catalog::Record;
pub use error::{ConstraintKind, Error};
pub use hlc::Hlc;
pub use ids::{Json, RowId, RowIdError, TenantId, TenantIdError, Timestamp};
pub use outbox::{Operation, OperationKind};
pub use query::{QueryError, QueryResult};
pub use store::Store;
pub use tenant::{
    BusinessRules, Domain, NewTenant, Plan, PlanLimits, Role, SettingsError, TaxRate, TenantInfo,
    TenantSettings, TenantStatus, Tier,
};
pub use verify::{Check, VerifyReport, Violation};

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The README's examples, compiled as doctests so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
