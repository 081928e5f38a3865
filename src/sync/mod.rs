//! The sync engine: every terminal of a tenant ends with the same data, no sale lost, nothing
//! stored twice, every broken business rule recorded for a person.
//!
//! - **Push** ([`Syncer::push`]): a tenant's pending operations in clock order, in batches
//!   that keep each local transaction whole; the outbox forgets an operation only after the
//!   server's answer (which comes after its commit). A batch the server refuses is retried a
//!   transaction at a time and what it refuses is set aside with its reason, so one bad
//!   operation never wedges the queue.
//! - **Pull** ([`Syncer::pull`]): the tenant's log after a persisted cursor; each transaction
//!   of another terminal is applied whole in one local transaction that also moves the cursor,
//!   so a crash at any point ends in "fetched again, applied once". Pull never waits for
//!   pending pushes: remote operations merge with local ones.
//! - **Merge** ([`merge`](self#merge-rules)): by the catalog's sync class, see below.
//! - **Engine** ([`SyncEngine`]): rounds for every tenant on a thread of their own, each
//!   tenant with its own token, cursor and backoff, driven by channels.
//!
//! # Merge rules
//!
//! - Master data: per column, the value with the newer hybrid-logical-clock stamp stays (ties
//!   by device id); stamps are kept per column, so a late, older write never overwrites a
//!   newer one. A change made without having seen another terminal's change of the same
//!   column is a `concurrent_edit` conflict (the newer value stays).
//! - Update against delete: the delete wins, wherever either arrives first; a change stamped
//!   after the delete is an `update_vs_delete` conflict. A delete of a row that a sale (or any
//!   row) on another terminal refers to is undone there and on the deleting terminal once that
//!   sale arrives (`delete_vs_reference`): nothing that refers to it is lost.
//! - Two rows created offline with the same unique key (a SKU, an email), or one terminal's
//!   edit giving a row a key another terminal's new row has: the row with the lower id keeps
//!   the key, the other's key gets `~` and the last eight characters of its id
//!   (`duplicate_key`), the same on every terminal. Which row shows a key depends only on
//!   which rows claim it, so when the keeper gives it up, the next claimant shows it again. A key that is not text (one loyalty account
//!   per customer) cannot be renamed: the later transaction is not applied (`not_applied`).
//! - Ledgers: union by row id; a row held already is not written again. Balances stay derived,
//!   so two terminals selling the last unit both keep their sale; stock below zero, a gift
//!   card or points balance below zero, credit past its limit and a sale line refunded past
//!   its quantity are conflicts (`negative_stock`, `gift_card_overdrawn`, `points_overdrawn`,
//!   `credit_limit_exceeded`, `over_refunded`), each recorded once per key.
//! - Documents: written once; the same id with other content is `different_content` and the
//!   local document stays. Their amendments merge like master data columns.
//! - Conflicts are rows of `sync_conflicts`, synced like master data with ids derived from
//!   what conflicted: every terminal ends with the same set, and a resolution made on one
//!   terminal ([`crate::Tenant::resolve_conflict`]) reaches all.
//! - Clocks: the server refuses a batch stamped further ahead of its clock than the skew
//!   bound (five minutes). A terminal whose clock runs ahead keeps its operations (nothing is
//!   lost) and reports a `refused` error until its clock is set right; it cannot win later
//!   merges with stamps from the future. Stamps that passed the server raise every receiver's
//!   clock, so a terminal whose clock is behind stamps its next writes after them.

pub(crate) mod conflicts;
mod engine;
pub(crate) mod merge;
mod round;
mod snapshot;
pub(crate) mod stamps;
pub(crate) mod state;
mod transport;

pub use conflicts::{ConflictError, ConflictKind, MAX_RESOLUTION_CHARS};
pub use engine::{read_token, SyncConfig, SyncEngine, SyncEvent, TokenDir, TokenProvider};
pub use merge::{ColumnMerge, ColumnResolver, LastWriterWins, Resolvers};
pub use round::{CrashHook, CrashPoint, RoundReport, SyncOptions, Syncer, BULK_FROM};
pub use snapshot::SnapshotUse;
pub use state::{LastError, Step, SyncError, SyncStatus, STALL_AFTER};
pub use transport::{
    DirectTransport, ErrorClass, HttpTransport, Transport, TransportError, CONNECT_TIMEOUT,
    REQUEST_TIMEOUT,
};
