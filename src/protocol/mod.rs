//! The node/central contract: every type that crosses the wire, and [`validate`] (with
//! [`check_column`], its check of one value).
//!
//! The outbox writes [`Operation`]s, the central store and the server accept and serve them,
//! and the sync client pushes and pulls them; each of those imports its wire types from here
//! and none from another. Nothing here needs the `server` feature: with it, the types also
//! describe themselves for the OpenAPI document.

mod messages;
mod operation;

pub use messages::{
    BadRateLimit, Batch, BatchResults, Claims, ErrorBody, OperationPage, OperationResult,
    OperationStatus, RateLimit, SequencedOperation, SnapshotInfo, TenantConfig, MAX_BATCH,
    MAX_PAGE, SNAPSHOT_CURSOR_HEADER, SNAPSHOT_SHA256_HEADER,
};
pub use operation::{check_column, validate, Operation, OperationError, OperationKind, Unit};
