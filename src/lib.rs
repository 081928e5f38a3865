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

// Private modules behind a flat facade: files can move without breaking the API. The public
// namespaces are the vocabularies a user reaches for as a whole: the catalog's record types,
// the wire contract, the POS flows, adoption, backups, the server and the test kit.
mod central;
mod error;
mod hlc;
mod ids;
mod outbox;
mod store;
mod tenant;
mod tenant_io;

pub mod adopt;
pub mod backup;
pub mod catalog;
pub mod pos;
pub mod protocol;
#[cfg(feature = "receipts")]
pub mod receipt;
#[cfg(feature = "server")]
pub mod server;
pub mod sync;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use catalog::Record;
pub use central::{
    check_skew, CentralError, CentralStore, CentralTenant, LimitsUpdate, SnapshotError,
    SqliteCentral, TenantSnapshots, MAX_API_CALLS_LIMIT, MAX_OPERATION_BYTES, MAX_PAGE_BYTES,
};
#[cfg(feature = "postgres")]
pub use central::{PgCentral, DEFAULT_POOL_SIZE, DEFAULT_POOL_WAIT};
pub use error::{ConstraintKind, Error};
pub use hlc::{ClockState, Hlc, HlcError, DEFAULT_MAX_SKEW, MAX_COUNTER, MAX_MILLIS};
pub use ids::{Json, RowId, RowIdError, TenantId, TenantIdError, Timestamp};
pub use outbox::json_text;
pub use protocol::{Operation, OperationKind};
pub use store::verify::{Check, VerifyError, VerifyReport, Violation};
pub use store::vfs;
pub use store::{
    BackgroundCheckpoint, Store, StoreBuilder, BUSY_TIMEOUT, CHECKPOINT_INTERVAL,
    TENANT_FILE_APPLICATION_ID, WAL_AUTOCHECKPOINT,
};
pub use tenant::query::{
    QueryError, QueryResult, DEFAULT_QUERY_TIMEOUT, MAX_RESULT_BYTES, MAX_ROWS, MAX_VALUE_BYTES,
    VALUE_OVERHEAD_BYTES,
};
pub use tenant::settings::{
    is_iso4217, BusinessRules, Domain, Feature, NewTenant, Plan, PlanLimits, ReceiptBrand, Role,
    SettingsError, TaxRate, TenantInfo, TenantSettings, TenantStatus, Tier, UnknownWord,
};
pub use tenant::{Actor, FilterOp, FilterValue, ListQuery, Page, Tenant, TenantAccess, TenantTx};
pub use tenant_io::{
    IfUnsynced, KeptCopy, MoveReason, PurgeReport, PurgedCopy, StorageSettings, TableCopied,
    TableDigest, TenantDeletion, TenantDigest, TenantExport, TenantIoError, TenantIoStep,
    TenantMove, TenantRestore, DEFAULT_KEEP_DAYS, EXPORT_APPLICATION_ID, MAX_KEEP_DAYS,
};

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The README's examples, compiled as doctests so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
