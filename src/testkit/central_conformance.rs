//! What every [`CentralStore`] promises, as code: a conformance suite that any backend runs
//! against itself (the embedded [`SqliteCentral`](crate::SqliteCentral) now, a PostgreSQL
//! backend later).
//!
//! Each promise is one function taking a factory that makes a fresh, empty store; it returns
//! [`Broken`] naming the promise and what did not hold. [`run_all`] runs every promise, in the
//! order below, and stops at the first broken one. The factory is called once or more per
//! promise (a promise that needs several clean logs asks for several stores); a factory that
//! cannot make a store should panic, as a test does.
//!
//! ```
//! use pos_tenancy::testkit::central_conformance;
//! use pos_tenancy::SqliteCentral;
//! central_conformance::pages_follow_the_cursor_in_order(|| {
//!     SqliteCentral::open_in_memory().expect("an in-memory central store")
//! })?;
//! # Ok::<(), central_conformance::Broken>(())
//! ```
//!
//! The promises are those the server and the nodes build on: tenants are kept as registered
//! and changed; every accepted operation gets the next number of a gap-free per-tenant
//! sequence from 1; an operation id is stored once per tenant (re-sent: `duplicate` with its
//! first number; re-used with other content: `rejected`); a batch is refused whole on one bad
//! operation or when it is over [`MAX_BATCH`]; an operation over [`MAX_OPERATION_BYTES`] and a
//! monthly limit over [`MAX_API_CALLS_LIMIT`] are refused; pages follow the cursor in order
//! with limits 1 to [`MAX_PAGE`] and stop before [`MAX_PAGE_BYTES`]; tenants never see each
//! other's operations; inactive tenants neither push nor pull; API calls are counted per
//! calendar month and never past the limit; a tenant's storage counts its own rows and grows
//! only with what it stores; and all of it holds under concurrent callers. Everything is checked through the trait only, so a backend
//! passes or fails on what it answers, never on how it stores.
//!
//! One file on purpose, although long: it is the list of promises, one function each, read
//! top to bottom in the order [`run_all`] runs them; the check macros and helpers at the top
//! serve all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Barrier;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::central::{
    CentralError, CentralStore, LimitsUpdate, MAX_API_CALLS_LIMIT, MAX_OPERATION_BYTES,
    MAX_PAGE_BYTES,
};
use crate::hlc::Hlc;
use crate::ids::{RowId, TenantId, Timestamp};
use crate::protocol::{
    Operation, OperationKind, OperationResult, OperationStatus, RateLimit, SequencedOperation,
    MAX_BATCH, MAX_PAGE,
};
use crate::tenant::settings::{
    NewTenant, Plan, PlanLimits, SettingsError, TenantSettings, TenantStatus,
};
use crate::testkit::demo::{self, DemoOptions};
use crate::Store;

/// A promise the store did not keep.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the central store broke the promise `{promise}`: {detail}")]
#[non_exhaustive]
pub struct Broken {
    /// The promise: the name of its function in this module.
    pub promise: &'static str,
    /// What did not hold, or the error the store answered where it should have succeeded.
    pub detail: String,
}

/// Why a promise failed, before it is named.
struct Fail(String);

impl From<CentralError> for Fail {
    fn from(e: CentralError) -> Self {
        Fail(format!("the store answered an error: {e}"))
    }
}

impl From<crate::Error> for Fail {
    fn from(e: crate::Error) -> Self {
        Fail(format!("making a node's outbox failed: {e}"))
    }
}

/// Fails the promise unless `cond` holds.
macro_rules! ensure {
    ($cond:expr $(,)?) => {
        ensure!($cond, "{}", stringify!($cond))
    };
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(Fail(format!($($msg)+)));
        }
    };
}

/// Fails the promise unless both sides are equal, showing both.
macro_rules! ensure_eq {
    ($left:expr, $right:expr $(,)?) => {
        ensure_eq!($left, $right, "{} == {}", stringify!($left), stringify!($right))
    };
    ($left:expr, $right:expr, $($msg:tt)+) => {{
        let (left, right) = (&$left, &$right);
        if *left != *right {
            return Err(Fail(format!(
                "{}\n  left: {:?}\n right: {:?}",
                format!($($msg)+),
                left,
                right
            )));
        }
    }};
}

/// Fails the promise unless the value matches the pattern (and its guard), showing the value.
macro_rules! ensure_matches {
    ($value:expr, $pattern:pat $(if $guard:expr)? $(,)?) => {
        ensure_matches!($value, $pattern $(if $guard)?, "{}", stringify!($value))
    };
    ($value:expr, $pattern:pat $(if $guard:expr)?, $($msg:tt)+) => {{
        let value = $value;
        if !matches!(value, $pattern $(if $guard)?) {
            return Err(Fail(format!(
                "{}: expected {}, got {:?}",
                format!($($msg)+),
                stringify!($pattern $(if $guard)?),
                value
            )));
        }
    }};
}

/// Runs one promise and names it if it fails.
fn promise(name: &'static str, body: impl FnOnce() -> Result<(), Fail>) -> Result<(), Broken> {
    body().map_err(|Fail(detail)| Broken {
        promise: name,
        detail,
    })
}

/// Runs every promise of this module against stores made by `make`, in the order of the
/// module's documentation, and returns the first one broken.
pub fn run_all<S: CentralStore>(make: impl Fn() -> S) -> Result<(), Broken> {
    tenants_are_added_read_and_listed(&make)?;
    tenant_status_changes_follow_the_allowed_transitions(&make)?;
    limits_change_in_parts_and_a_tenant_is_added_with_its_overrides_at_once(&make)?;
    plan_rate_and_settings_changes_are_stored_and_bad_settings_change_nothing(&make)?;
    accepted_operations_are_numbered_from_one_without_gaps(&make)?;
    a_resent_operation_is_a_duplicate_with_its_first_number(&make)?;
    resends_in_any_order_store_each_operation_once_without_gaps(&make)?;
    a_bad_operation_refuses_the_whole_batch_and_stores_nothing(&make)?;
    batches_over_max_batch_are_refused(&make)?;
    operations_and_api_call_limits_beyond_their_bounds_are_refused(&make)?;
    pages_follow_the_cursor_in_order(&make)?;
    pages_stop_before_max_page_bytes_and_page_on_to_the_end(&make)?;
    one_tenants_operations_never_appear_in_anothers_log(&make)?;
    suspended_cancelled_and_unknown_tenants_neither_push_nor_pull(&make)?;
    api_calls_are_counted_per_month_and_never_past_the_limit(&make)?;
    storage_counts_each_tenants_own_rows_and_grows_only_with_what_it_stores(&make)?;
    a_nodes_outbox_comes_back_as_it_was_pushed(&make)?;
    concurrent_pushes_stay_gap_free_and_store_each_operation_once(&make)?;
    concurrent_api_calls_never_count_past_the_limit(&make)?;
    Ok(())
}

fn tid(s: &str) -> Result<TenantId, Fail> {
    s.parse()
        .map_err(|e| Fail(format!("{s:?} is not a tenant id: {e}")))
}

/// A fresh store from `make` with the tenants `ids`, each registered with default settings.
fn store_with<S: CentralStore>(make: &impl Fn() -> S, ids: &[&str]) -> Result<S, Fail> {
    let c = make();
    for id in ids {
        c.add_tenant(&NewTenant::new(tid(id)?, id))?;
    }
    Ok(c)
}

/// A valid operation of the tenant: a new price level, stamped at `millis`.
fn op(tenant: &str, millis: u64) -> Result<Operation, Fail> {
    let columns = serde_json::json!({
        "name": format!("Level {millis}"), "discount_ppm": 5, "created_at": "2026-01-01T00:00:00.000Z"
    });
    Ok(Operation {
        id: RowId::new(),
        tenant_id: tid(tenant)?,
        device_id: RowId::new(),
        hlc: Hlc::new(millis, 0, RowId::new()).map_err(|e| Fail(e.to_string()))?,
        actor_user_id: None,
        table: "price_levels".into(),
        row_id: RowId::new(),
        kind: OperationKind::Insert,
        columns: columns.as_object().cloned().unwrap_or_default(),
        unit: None,
        base: None,
    })
}

/// `n` valid operations of the tenant, stamped 1 to `n`.
fn ops(tenant: &str, n: u64) -> Result<Vec<Operation>, Fail> {
    (1..=n).map(|i| op(tenant, i)).collect()
}

fn seqs(page: &[SequencedOperation]) -> Vec<u64> {
    page.iter().map(|o| o.seq).collect()
}

fn statuses(results: &[OperationResult]) -> Vec<(OperationStatus, Option<u64>)> {
    results.iter().map(|r| (r.status, r.seq)).collect()
}

/// The tenant's whole log, read page by page with the largest page, and the last high mark.
fn pull_all<S: CentralStore>(
    c: &S,
    tenant: &TenantId,
) -> Result<(Vec<SequencedOperation>, u64), Fail> {
    let mut log: Vec<SequencedOperation> = Vec::new();
    loop {
        let after = log.last().map_or(0, |o| o.seq);
        let page = c.operations_after(tenant, after, MAX_PAGE)?;
        if page.operations.is_empty() {
            return Ok((log, page.high));
        }
        log.extend(page.operations);
    }
}

/// Tenants read back as they were registered, one by id and all ordered by id; an id is
/// registered once; unknown ids and invalid settings are refused.
pub fn tenants_are_added_read_and_listed<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise("tenants_are_added_read_and_listed", || {
        let c = make();
        ensure!(c.tenants()?.is_empty(), "a fresh store serves no tenant");
        let caps = tid("caps")?;
        let bolt = tid("bolt")?;
        let added =
            c.add_tenant(&NewTenant::new(caps.clone(), "Caps Automotive").plan(Plan::Pro))?;
        ensure_eq!(
            (
                &added.id,
                added.name.as_str(),
                added.status,
                added.plan,
                added.limits,
                added.rate_limit,
                &added.settings
            ),
            (
                &caps,
                "Caps Automotive",
                TenantStatus::Active,
                Plan::Pro,
                Plan::Pro.limits(),
                None,
                &TenantSettings::new("Caps Automotive")
            ),
            "a new tenant is active, with its plan's limits, the server's rate and its settings"
        );
        ensure_eq!(
            c.tenant(&caps)?,
            added,
            "a tenant reads back as it was added"
        );
        let free = c.add_tenant(&NewTenant::new(bolt.clone(), "Bolt"))?;
        ensure_eq!((free.plan, free.limits), (Plan::Free, Plan::Free.limits()));
        let listed: Vec<TenantId> = c.tenants()?.into_iter().map(|t| t.id).collect();
        ensure_eq!(listed, [bolt, caps.clone()], "tenants are listed by id");
        ensure_matches!(
            c.add_tenant(&NewTenant::new(caps.clone(), "Again")),
            Err(CentralError::TenantExists(_))
        );
        ensure_eq!(
            c.tenant(&caps)?.name,
            "Caps Automotive",
            "the first registration stands"
        );
        let nobody = tid("nobody")?;
        ensure_matches!(c.tenant(&nobody), Err(CentralError::TenantNotFound(_)));
        let mut bad = TenantSettings::new("Nobody");
        bad.currency = "XYZ".into();
        ensure_matches!(
            c.add_tenant(&NewTenant::new(nobody.clone(), "Nobody").settings(bad)),
            Err(CentralError::Settings(SettingsError::Currency(_)))
        );
        ensure_matches!(
            c.tenant(&nobody),
            Err(CentralError::TenantNotFound(_)),
            "a tenant with invalid settings is not added"
        );
        Ok(())
    })
}

/// A tenant is suspended, re-activated, suspended and cancelled, and reads back so; cancelled
/// is final (neither re-activated nor suspended, and it stays cancelled); an unknown tenant is
/// refused.
pub fn tenant_status_changes_follow_the_allowed_transitions<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise(
        "tenant_status_changes_follow_the_allowed_transitions",
        || {
            let c = store_with(&make, &["caps"])?;
            let caps = tid("caps")?;
            for status in [
                TenantStatus::Suspended,
                TenantStatus::Active,
                TenantStatus::Suspended,
                TenantStatus::Cancelled,
                TenantStatus::Cancelled,
            ] {
                ensure_eq!(c.set_status(&caps, status)?.status, status);
                ensure_eq!(c.tenant(&caps)?.status, status, "read back");
            }
            for next in [TenantStatus::Active, TenantStatus::Suspended] {
                ensure_matches!(
                    c.set_status(&caps, next),
                    Err(CentralError::StatusChange { .. })
                );
                ensure_eq!(
                    c.tenant(&caps)?.status,
                    TenantStatus::Cancelled,
                    "unchanged"
                );
            }
            ensure_matches!(
                c.set_status(&tid("nobody")?, TenantStatus::Suspended),
                Err(CentralError::TenantNotFound(_))
            );
            Ok(())
        },
    )
}

/// A change of limits replaces only what it gives; a tenant is added with its overrides in
/// one step (all of them or not at all).
pub fn limits_change_in_parts_and_a_tenant_is_added_with_its_overrides_at_once<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise(
        "limits_change_in_parts_and_a_tenant_is_added_with_its_overrides_at_once",
        || {
            let c = store_with(&make, &[])?;
            let caps = tid("caps")?;
            let rate = RateLimit::new(600, 60).map_err(|e| Fail(e.to_string()))?;
            let t = c.add_tenant_with_limits(
                &NewTenant::new(caps.clone(), "Caps").plan(Plan::Pro),
                &LimitsUpdate {
                    max_api_calls_month: Some(70),
                    rate_limit: Some(Some(rate)),
                    ..LimitsUpdate::default()
                },
            )?;
            let pro_users = Plan::Pro.limits().max_users;
            ensure_eq!(
                (
                    t.limits.max_users,
                    t.limits.max_api_calls_month,
                    t.rate_limit
                ),
                (pro_users, 70, Some(rate))
            );
            // Only what is given changes.
            let users = LimitsUpdate {
                max_users: Some(9),
                ..LimitsUpdate::default()
            };
            let t = c.update_limits(&caps, &users)?;
            ensure_eq!(
                (
                    t.limits.max_users,
                    t.limits.max_api_calls_month,
                    t.rate_limit
                ),
                (9, 70, Some(rate))
            );
            let default_rate = LimitsUpdate {
                rate_limit: Some(None),
                ..LimitsUpdate::default()
            };
            let t = c.update_limits(&caps, &default_rate)?;
            ensure_eq!((t.limits.max_users, t.rate_limit), (9, None));
            // A tenant that could not take its overrides is not added at all (a rate of 0
            // is refused only after the tenant's row was written).
            let broken = LimitsUpdate {
                rate_limit: Some(Some(RateLimit {
                    requests: 0,
                    per_secs: 1,
                })),
                ..LimitsUpdate::default()
            };
            let bolt = tid("bolt")?;
            ensure!(c
                .add_tenant_with_limits(&NewTenant::new(bolt.clone(), "Bolt"), &broken)
                .is_err());
            ensure_matches!(c.tenant(&bolt), Err(CentralError::TenantNotFound(_)));
            ensure_matches!(
                c.add_tenant_with_limits(&NewTenant::new(caps.clone(), "Again"), &users),
                Err(CentralError::TenantExists(_))
            );
            let nobody = tid("nobody")?;
            ensure_matches!(
                c.update_limits(&nobody, &users),
                Err(CentralError::TenantNotFound(_))
            );
            Ok(())
        },
    )
}

/// A new plan brings its limits and keeps the tenant's rate; rates and settings are stored;
/// invalid settings change nothing; an unknown tenant is refused.
pub fn plan_rate_and_settings_changes_are_stored_and_bad_settings_change_nothing<
    S: CentralStore,
>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise(
        "plan_rate_and_settings_changes_are_stored_and_bad_settings_change_nothing",
        || {
            let c = store_with(&make, &["caps"])?;
            let caps = tid("caps")?;
            ensure_eq!(c.tenant(&caps)?.rate_limit, None, "the server's default");
            let rate: RateLimit = "600/m".parse().map_err(|e| Fail(format!("{e}")))?;
            ensure_eq!(c.set_rate_limit(&caps, Some(rate))?.rate_limit, Some(rate));
            let custom = PlanLimits {
                max_users: 7,
                max_api_calls_month: 70,
            };
            c.set_limits(&caps, custom)?;
            let t = c.set_plan(&caps, Plan::Enterprise)?;
            ensure_eq!(
                (t.plan, t.limits, t.rate_limit),
                (Plan::Enterprise, Plan::Enterprise.limits(), Some(rate)),
                "a new plan brings its limits and keeps the rate"
            );
            let mut settings = TenantSettings::new("Caps Racing");
            settings.currency = "EUR".into();
            ensure_eq!(c.set_settings(&caps, &settings)?.settings, settings);
            let mut bad = settings.clone();
            bad.currency = "XYZ".into();
            ensure_matches!(
                c.set_settings(&caps, &bad),
                Err(CentralError::Settings(SettingsError::Currency(_)))
            );
            ensure_eq!(c.tenant(&caps)?.settings, settings, "unchanged");
            let nobody = tid("nobody")?;
            ensure_matches!(
                c.set_settings(&nobody, &settings),
                Err(CentralError::TenantNotFound(_))
            );
            ensure_matches!(
                c.set_rate_limit(&nobody, None),
                Err(CentralError::TenantNotFound(_))
            );
            Ok(())
        },
    )
}

/// Accepted operations get 1, 2, 3, ... in push order, across batches, and read back as
/// they were pushed; an empty batch stores nothing.
pub fn accepted_operations_are_numbered_from_one_without_gaps<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise(
        "accepted_operations_are_numbered_from_one_without_gaps",
        || {
            let c = store_with(&make, &["caps"])?;
            let caps = tid("caps")?;
            ensure_eq!(c.operations_after(&caps, 0, 100)?.high, 0, "an empty log");
            let batch = ops("caps", 3)?;
            let first = c.append(&caps, &batch)?;
            ensure_eq!(
                first.iter().map(|r| r.seq).collect::<Vec<_>>(),
                [Some(1), Some(2), Some(3)]
            );
            ensure!(
                first
                    .iter()
                    .zip(&batch)
                    .all(|(r, o)| r.id == o.id && r.status == OperationStatus::Accepted),
                "one answer per operation, in the batch's order: {first:?}"
            );
            ensure!(
                c.append(&caps, &[])?.is_empty(),
                "an empty batch is answered with nothing"
            );
            let more = vec![op("caps", 4)?, op("caps", 5)?];
            ensure_eq!(
                statuses(&c.append(&caps, &more)?),
                [
                    (OperationStatus::Accepted, Some(4)),
                    (OperationStatus::Accepted, Some(5))
                ],
                "the next batch continues the sequence"
            );
            let page = c.operations_after(&caps, 0, 100)?;
            ensure_eq!(page.high, 5);
            ensure_eq!(seqs(&page.operations), [1, 2, 3, 4, 5]);
            ensure_eq!(page.operations[0].operation, batch[0]);
            let pushed: Vec<&Operation> = batch.iter().chain(&more).collect();
            let pulled: Vec<&Operation> = page.operations.iter().map(|o| &o.operation).collect();
            ensure_eq!(
                pulled,
                pushed,
                "the log gives back what was pushed, in push order"
            );
            Ok(())
        },
    )
}

/// An operation id is stored once per tenant: re-sent (in a later batch or twice in one) it
/// is a duplicate carrying its first number; re-used with other content it is rejected,
/// with a reason and no number, and the stored one stays.
pub fn a_resent_operation_is_a_duplicate_with_its_first_number<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise(
        "a_resent_operation_is_a_duplicate_with_its_first_number",
        || {
            use OperationStatus::*;
            let c = store_with(&make, &["caps"])?;
            let caps = tid("caps")?;
            let batch = ops("caps", 3)?;
            c.append(&caps, &batch)?;
            // The same batch again, plus one new operation: stored once, numbers continue.
            let mut again = batch.clone();
            again.push(op("caps", 4)?);
            let second = c.append(&caps, &again)?;
            ensure_eq!(
                statuses(&second),
                [
                    (Duplicate, Some(1)),
                    (Duplicate, Some(2)),
                    (Duplicate, Some(3)),
                    (Accepted, Some(4))
                ]
            );
            let page = c.operations_after(&caps, 0, 100)?;
            ensure_eq!(page.high, 4);
            ensure_eq!(seqs(&page.operations), [1, 2, 3, 4]);
            // Twice in one batch: the second is a duplicate of the first.
            let twice = op("caps", 5)?;
            ensure_eq!(
                statuses(&c.append(&caps, &[twice.clone(), twice.clone()])?),
                [(Accepted, Some(5)), (Duplicate, Some(5))]
            );
            // An id re-used with other content.
            let first = op("caps", 6)?;
            c.append(&caps, std::slice::from_ref(&first))?;
            let mut forged = first.clone();
            forged.columns.insert("discount_ppm".into(), 999_999.into());
            let r = c.append(&caps, &[forged])?;
            ensure_eq!(r[0].status, OperationStatus::Rejected);
            ensure_eq!(r[0].seq, None, "a rejected operation has no number");
            ensure!(r[0].reason.is_some(), "a rejection says why: {r:?}");
            let page = c.operations_after(&caps, 0, 100)?;
            ensure_eq!(page.high, 6);
            ensure_eq!(
                page.operations.last().map(|o| &o.operation),
                Some(&first),
                "the first content stays"
            );
            Ok(())
        },
    )
}

/// Batches drawn from a pool with repeats (a node re-sending after a lost answer), 32 seeded
/// runs: every operation is stored exactly once and sequence numbers run 1..=n without gaps.
pub fn resends_in_any_order_store_each_operation_once_without_gaps<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise(
        "resends_in_any_order_store_each_operation_once_without_gaps",
        || {
            let pool = ops("caps", 40)?;
            let caps = tid("caps")?;
            for seed in 0..32 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let c = store_with(&make, &["caps"])?;
                let mut sent = BTreeSet::new();
                for _ in 0..rng.random_range(1..10) {
                    let ops: Vec<Operation> = (0..rng.random_range(1..12))
                        .map(|_| pool[rng.random_range(0..pool.len())].clone())
                        .collect();
                    let results = c.append(&caps, &ops)?;
                    ensure_eq!(results.len(), ops.len(), "seed {seed}: one answer each");
                    for (op, r) in ops.iter().zip(&results) {
                        let fresh = sent.insert(op.id);
                        ensure_eq!(
                            r.status,
                            if fresh {
                                OperationStatus::Accepted
                            } else {
                                OperationStatus::Duplicate
                            },
                            "seed {seed}"
                        );
                    }
                }
                let page = c.operations_after(&caps, 0, 1000)?;
                ensure_eq!(page.high as usize, sent.len(), "seed {seed}");
                ensure_eq!(
                    seqs(&page.operations),
                    (1..=sent.len() as u64).collect::<Vec<_>>(),
                    "seed {seed}"
                );
                let ids: BTreeSet<_> = page.operations.iter().map(|o| o.operation.id).collect();
                ensure_eq!(ids, sent, "seed {seed}");
            }
            Ok(())
        },
    )
}

/// One bad operation (another tenant's, a local-only table, a wrong type) refuses the whole
/// batch, naming its index, and nothing of it is stored: the sequence still starts at 1.
pub fn a_bad_operation_refuses_the_whole_batch_and_stores_nothing<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise(
        "a_bad_operation_refuses_the_whole_batch_and_stores_nothing",
        || {
            let c = store_with(&make, &["caps", "bolt"])?;
            let caps = tid("caps")?;
            let mut wrong_tenant = op("bolt", 2)?;
            wrong_tenant.tenant_id = tid("bolt")?;
            let mut local = op("caps", 3)?;
            local.table = "sessions".into();
            let mut bad_type = op("caps", 4)?;
            bad_type
                .columns
                .insert("discount_ppm".into(), "five".into());
            for bad in [wrong_tenant, local, bad_type] {
                let bad_id = bad.id;
                let err = c.append(&caps, &[op("caps", 1)?, bad]);
                ensure_matches!(
                    err,
                    Err(CentralError::BatchRejected { index: 1, id, .. }) if id == bad_id
                );
            }
            ensure_eq!(c.operations_after(&caps, 0, 100)?.high, 0, "nothing stored");
            ensure_eq!(
                c.operations_after(&tid("bolt")?, 0, 100)?.high,
                0,
                "nothing stored for the other tenant either"
            );
            let good = c.append(&caps, &[op("caps", 5)?])?;
            ensure_eq!(statuses(&good), [(OperationStatus::Accepted, Some(1))]);
            Ok(())
        },
    )
}

/// A batch of more than [`MAX_BATCH`] operations is refused whole; one of exactly
/// `MAX_BATCH` is taken.
pub fn batches_over_max_batch_are_refused<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise("batches_over_max_batch_are_refused", || {
        let c = store_with(&make, &["caps"])?;
        let caps = tid("caps")?;
        let too_many: Vec<Operation> = (0..=MAX_BATCH as u64)
            .map(|i| op("caps", i))
            .collect::<Result<_, _>>()?;
        ensure_matches!(
            c.append(&caps, &too_many),
            Err(CentralError::BatchTooLarge { len, max: MAX_BATCH }) if len == MAX_BATCH + 1
        );
        ensure_eq!(c.operations_after(&caps, 0, 100)?.high, 0, "nothing stored");
        let results = c.append(&caps, &too_many[..MAX_BATCH])?;
        ensure!(
            results
                .iter()
                .all(|r| r.status == OperationStatus::Accepted),
            "a full batch is taken"
        );
        ensure_eq!(c.operations_after(&caps, 0, 100)?.high, MAX_BATCH as u64);
        Ok(())
    })
}

/// An operation of more than [`MAX_OPERATION_BYTES`] of JSON refuses its batch whole; a monthly
/// API call limit over [`MAX_API_CALLS_LIMIT`] is refused (the tenant is not added, its limits
/// do not change) rather than stored as another number, and one of exactly that is kept.
pub fn operations_and_api_call_limits_beyond_their_bounds_are_refused<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise(
        "operations_and_api_call_limits_beyond_their_bounds_are_refused",
        || {
            let c = store_with(&make, &["caps"])?;
            let caps = tid("caps")?;
            let mut big = op("caps", 2)?;
            big.columns
                .insert("name".into(), "x".repeat(MAX_OPERATION_BYTES).into());
            let big_id = big.id;
            ensure_matches!(
                c.append(&caps, &[op("caps", 1)?, big]),
                Err(CentralError::OperationTooLarge { index: 1, id, bytes, max: MAX_OPERATION_BYTES })
                    if id == big_id && bytes > MAX_OPERATION_BYTES
            );
            ensure_eq!(c.operations_after(&caps, 0, 100)?.high, 0, "nothing stored");

            let over = LimitsUpdate {
                max_api_calls_month: Some(MAX_API_CALLS_LIMIT + 1),
                ..LimitsUpdate::default()
            };
            let bolt = tid("bolt")?;
            ensure_matches!(
                c.add_tenant_with_limits(&NewTenant::new(bolt.clone(), "Bolt"), &over),
                Err(CentralError::ApiCallLimitTooLarge { value, max: MAX_API_CALLS_LIMIT })
                    if value == MAX_API_CALLS_LIMIT + 1
            );
            ensure_matches!(c.tenant(&bolt), Err(CentralError::TenantNotFound(_)));
            let before = c.tenant(&caps)?.limits;
            let all = LimitsUpdate {
                max_api_calls_month: Some(u64::MAX),
                max_users: Some(3),
                ..LimitsUpdate::default()
            };
            ensure_matches!(
                c.update_limits(&caps, &all),
                Err(CentralError::ApiCallLimitTooLarge {
                    value: u64::MAX,
                    ..
                })
            );
            ensure_eq!(
                c.tenant(&caps)?.limits,
                before,
                "nothing of the update applied"
            );
            let most = LimitsUpdate {
                max_api_calls_month: Some(MAX_API_CALLS_LIMIT),
                ..LimitsUpdate::default()
            };
            ensure_eq!(
                c.update_limits(&caps, &most)?.limits.max_api_calls_month,
                MAX_API_CALLS_LIMIT
            );
            ensure_eq!(
                c.tenant(&caps)?.limits.max_api_calls_month,
                MAX_API_CALLS_LIMIT,
                "read back as given"
            );
            Ok(())
        },
    )
}

/// A page holds the operations after the cursor, in sequence order, at most `limit` of them,
/// and the log's high mark; following the cursor reads the whole log once. Limits run from
/// 1 to [`MAX_PAGE`]; 0 and more are refused.
pub fn pages_follow_the_cursor_in_order<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise("pages_follow_the_cursor_in_order", || {
        let c = store_with(&make, &["caps"])?;
        let caps = tid("caps")?;
        let empty = c.operations_after(&caps, 0, 10)?;
        ensure_eq!((empty.operations.len(), empty.high), (0, 0), "an empty log");
        let pushed = ops("caps", 10)?;
        c.append(&caps, &pushed)?;
        ensure_eq!(c.operations_after(&caps, 2, 1)?.operations[0].seq, 3);
        let mut after = 0;
        let mut read = Vec::new();
        let mut pages = 0;
        loop {
            let page = c.operations_after(&caps, after, 3)?;
            ensure_eq!(page.high, 10, "every page tells the high mark");
            let Some(last) = page.operations.last() else {
                break;
            };
            ensure!(page.operations.len() <= 3, "at most the limit");
            ensure_eq!(
                seqs(&page.operations),
                (after + 1..=last.seq).collect::<Vec<_>>(),
                "the operations right after the cursor, in order"
            );
            after = last.seq;
            read.extend(page.operations.into_iter().map(|o| o.operation));
            pages += 1;
        }
        ensure_eq!(pages, 4, "10 operations in pages of 3");
        ensure_eq!(
            read,
            pushed,
            "the cursor reads the whole log once, in push order"
        );
        let past = c.operations_after(&caps, 100, 10)?;
        ensure_eq!((past.operations.len(), past.high), (0, 10), "past the end");
        ensure_eq!(c.operations_after(&caps, 0, 1)?.operations.len(), 1);
        ensure_eq!(c.operations_after(&caps, 0, MAX_PAGE)?.operations.len(), 10);
        for limit in [0, MAX_PAGE + 1] {
            ensure_matches!(
                c.operations_after(&caps, 0, limit),
                Err(CentralError::BadLimit { limit: l, max: MAX_PAGE }) if l == limit
            );
        }
        Ok(())
    })
}

/// A page carries at most [`MAX_PAGE_BYTES`] of operation JSON whatever its limit, and stops
/// only where the next operation would not fit (or at the limit, or at the end of the log);
/// paging on while the cursor is below the high mark reads every operation once, in order.
///
/// The operations carry the longest name the catalog takes, up to 512 KiB (the largest of a
/// few lengths that a probe tenant's push accepts), and there are enough of them to fill
/// several pages.
pub fn pages_stop_before_max_page_bytes_and_page_on_to_the_end<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise(
        "pages_stop_before_max_page_bytes_and_page_on_to_the_end",
        || {
            let c = store_with(&make, &["caps", "probe"])?;
            let caps = tid("caps")?;
            let probe = tid("probe")?;
            let large = |tenant: &str, millis: u64, len: usize| -> Result<Operation, Fail> {
                let mut o = op(tenant, millis)?;
                o.columns.insert(
                    "name".into(),
                    format!("{millis:08} {}", "n".repeat(len)).into(),
                );
                Ok(o)
            };
            let mut text = None;
            for (i, len) in [512 * 1024, 64 * 1024, 8 * 1024, 1024, 64]
                .into_iter()
                .enumerate()
            {
                match c.append(&probe, &[large("probe", i as u64 + 1, len)?]) {
                    Ok(_) => {
                        text = Some(len);
                        break;
                    }
                    Err(CentralError::BatchRejected { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let Some(len) = text else {
                return Err(Fail("no name length was accepted".into()));
            };
            let size = |o: &Operation| serde_json::to_vec(o).map_or(0, |v| v.len());
            let one = size(&large("caps", 1, len)?);
            let n = (MAX_PAGE_BYTES * 5 / 2 / one + 1).min(3 * MAX_BATCH) as u64;
            let pushed: Vec<Operation> = (1..=n)
                .map(|i| large("caps", i, len))
                .collect::<Result<_, _>>()?;
            for batch in pushed.chunks(MAX_BATCH) {
                c.append(&caps, batch)?;
            }
            let total: usize = pushed.iter().map(size).sum();
            let mut after = 0;
            let mut read: Vec<Operation> = Vec::new();
            let mut pages = 0;
            loop {
                let page = c.operations_after(&caps, after, MAX_PAGE)?;
                ensure_eq!(page.high, n, "every page tells the high mark");
                if after >= page.high {
                    ensure!(page.operations.is_empty(), "nothing past the end");
                    break;
                }
                ensure!(
                    !page.operations.is_empty(),
                    "a page after {after} below the high mark {} holds an operation",
                    page.high
                );
                let bytes: usize = page.operations.iter().map(|o| size(&o.operation)).sum();
                ensure!(
                    bytes <= MAX_PAGE_BYTES || page.operations.len() == 1,
                    "a page of {} operations carries {bytes} bytes, over {MAX_PAGE_BYTES}",
                    page.operations.len()
                );
                let last = page.operations.last().map_or(after, |o| o.seq);
                ensure_eq!(
                    seqs(&page.operations),
                    (after + 1..=last).collect::<Vec<_>>(),
                    "the operations right after the cursor, in order"
                );
                let full = page.operations.len() == MAX_PAGE as usize;
                if let Some(next) = pushed.get(usize::try_from(last).unwrap_or(usize::MAX)) {
                    ensure!(
                        full || bytes + size(next) > MAX_PAGE_BYTES,
                        "a page of {bytes} bytes stopped before an operation of {} that fits",
                        size(next)
                    );
                }
                after = last;
                read.extend(page.operations.into_iter().map(|o| o.operation));
                pages += 1;
            }
            ensure_eq!(read, pushed, "paging on reads the whole log once, in order");
            if total > MAX_PAGE_BYTES {
                ensure!(
                    pages > 1,
                    "{total} bytes in {n} operations came in one page"
                );
            }
            Ok(())
        },
    )
}

/// Each tenant has its own log and its own sequence from 1; an operation id is one tenant's
/// only (another tenant's operation with the same id is a new operation of its log).
pub fn one_tenants_operations_never_appear_in_anothers_log<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise(
        "one_tenants_operations_never_appear_in_anothers_log",
        || {
            let c = store_with(&make, &["caps", "bolt"])?;
            let caps = tid("caps")?;
            let bolt = tid("bolt")?;
            let caps_ops = ops("caps", 3)?;
            c.append(&caps, &caps_ops[..2])?;
            let bolt_first = op("bolt", 1)?;
            ensure_eq!(
                statuses(&c.append(&bolt, std::slice::from_ref(&bolt_first))?),
                [(OperationStatus::Accepted, Some(1))],
                "each tenant's sequence starts at 1"
            );
            c.append(&caps, &caps_ops[2..])?;
            ensure_eq!(c.operations_after(&caps, 0, 100)?.high, 3);
            ensure_eq!(c.operations_after(&bolt, 0, 100)?.high, 1);
            // The same id in another tenant's operation: not a duplicate of caps' one.
            let mut same_id = op("bolt", 2)?;
            same_id.id = caps_ops[0].id;
            ensure_eq!(
                statuses(&c.append(&bolt, &[same_id])?),
                [(OperationStatus::Accepted, Some(2))],
                "operation ids are per tenant"
            );
            for (tenant, pushed) in [(&caps, caps_ops.len()), (&bolt, 2)] {
                let (log, high) = pull_all(&c, tenant)?;
                ensure_eq!((log.len(), high), (pushed, pushed as u64), "{tenant}'s log");
                ensure!(
                    log.iter().all(|o| o.operation.tenant_id == *tenant),
                    "{tenant}'s log holds only its own operations: {log:?}"
                );
            }
            Ok(())
        },
    )
}

/// A suspended or cancelled tenant neither pushes nor pulls (and nothing of a refused push is
/// stored); re-activated, it does both again. An unknown tenant is not found.
pub fn suspended_cancelled_and_unknown_tenants_neither_push_nor_pull<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise(
        "suspended_cancelled_and_unknown_tenants_neither_push_nor_pull",
        || {
            let c = store_with(&make, &["caps", "acme"])?;
            let (caps, acme) = (tid("caps")?, tid("acme")?);
            // Cancelled is final, so the suspension and the cancellation take a tenant each.
            for (tenant, status) in [
                (&caps, TenantStatus::Suspended),
                (&acme, TenantStatus::Cancelled),
            ] {
                c.set_status(tenant, status)?;
                ensure_matches!(
                    c.append(tenant, &[op(tenant.as_str(), 1)?]),
                    Err(CentralError::TenantInactive { status: s, .. }) if s == status
                );
                ensure_matches!(
                    c.operations_after(tenant, 0, 10),
                    Err(CentralError::TenantInactive { status: s, .. }) if s == status
                );
            }
            let nobody = tid("nobody")?;
            ensure_matches!(c.append(&nobody, &[]), Err(CentralError::TenantNotFound(_)));
            ensure_matches!(
                c.operations_after(&nobody, 0, 10),
                Err(CentralError::TenantNotFound(_))
            );
            c.set_status(&caps, TenantStatus::Active)?;
            ensure_eq!(
                c.operations_after(&caps, 0, 10)?.high,
                0,
                "nothing was stored while inactive"
            );
            ensure_eq!(
                statuses(&c.append(&caps, &[op("caps", 2)?])?),
                [(OperationStatus::Accepted, Some(1))],
                "re-activated, it pushes again"
            );
            Ok(())
        },
    )
}

/// API calls are counted per calendar month (UTC); a call over the limit is refused and not
/// counted; a raised limit lets calls in again; an unknown tenant is not found.
pub fn api_calls_are_counted_per_month_and_never_past_the_limit<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise(
        "api_calls_are_counted_per_month_and_never_past_the_limit",
        || {
            let time =
                |ms| Timestamp::from_millis(ms).ok_or_else(|| Fail(format!("{ms} ms is no time")));
            let nobody = tid("nobody")?;
            let caps = tid("caps")?;
            {
                let c = store_with(&make, &["caps"])?;
                let nov = time(1_795_000_000_000)?;
                let dec = time(1_797_000_000_000)?;
                ensure_eq!(c.count_api_call(&caps, nov, 10)?, Some(1));
                ensure_eq!(c.count_api_call(&caps, nov, 10)?, Some(2));
                ensure_eq!(
                    c.count_api_call(&caps, dec, 10)?,
                    Some(1),
                    "a new month starts at one"
                );
                ensure_eq!((c.api_calls(&caps, nov)?, c.api_calls(&caps, dec)?), (2, 1));
            }
            let c = store_with(&make, &["caps"])?;
            let at = time(1_795_000_000_000)?;
            ensure_eq!(c.count_api_call(&caps, at, 2)?, Some(1));
            ensure_eq!(c.count_api_call(&caps, at, 2)?, Some(2));
            for _ in 0..5 {
                ensure_eq!(c.count_api_call(&caps, at, 2)?, None, "over the limit");
            }
            ensure_eq!(
                c.api_calls(&caps, at)?,
                2,
                "refused calls left the count at the limit"
            );
            // A raised limit lets calls in again; a plan allowing none refuses the first call.
            ensure_eq!(c.count_api_call(&caps, at, 3)?, Some(3));
            let next = time(1_797_000_000_000)?;
            ensure_eq!(c.count_api_call(&caps, next, 0)?, None);
            ensure_eq!(c.api_calls(&caps, next)?, 0);
            ensure_matches!(
                c.count_api_call(&nobody, at, 10),
                Err(CentralError::TenantNotFound(_))
            );
            ensure_matches!(
                c.api_calls(&nobody, at),
                Err(CentralError::TenantNotFound(_))
            );
            Ok(())
        },
    )
}

/// A tenant's storage counts its own rows: its tenant row before anything else, then at
/// least the JSON of each operation it stores (small operations, which no backend compresses);
/// a re-sent batch stores nothing and adds nothing; another tenant's pushes leave it as it is;
/// the list of every tenant's storage says what each tenant's own answer says; an unknown
/// tenant is not found.
pub fn storage_counts_each_tenants_own_rows_and_grows_only_with_what_it_stores<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise(
        "storage_counts_each_tenants_own_rows_and_grows_only_with_what_it_stores",
        || {
            let (caps, bolt) = (tid("caps")?, tid("bolt")?);
            let c = store_with(&make, &["caps", "bolt"])?;
            let (caps0, bolt0) = (c.storage_bytes(&caps)?, c.storage_bytes(&bolt)?);
            ensure!(caps0 > 0, "a tenant's own row counts: {caps0}");
            let batch = ops("caps", 20)?;
            let json: u64 = batch
                .iter()
                .map(|o| crate::central::operation_bytes(o) as u64)
                .sum();
            c.append(&caps, &batch)?;
            let caps1 = c.storage_bytes(&caps)?;
            ensure!(
                caps1 >= caps0 + json,
                "20 operations of {json} bytes of JSON took {} bytes",
                caps1.saturating_sub(caps0)
            );
            ensure_eq!(c.storage_bytes(&bolt)?, bolt0, "another tenant's push");
            c.append(&caps, &batch)?;
            ensure_eq!(
                c.storage_bytes(&caps)?,
                caps1,
                "a re-sent batch stores nothing"
            );
            c.append(&bolt, &ops("bolt", 3)?)?;
            ensure!(c.storage_bytes(&bolt)? > bolt0, "bolt's own push");
            ensure_eq!(c.storage_bytes(&caps)?, caps1, "another tenant's push");
            ensure_eq!(
                c.storage_by_tenant()?,
                vec![
                    (bolt.clone(), c.storage_bytes(&bolt)?),
                    (caps.clone(), caps1)
                ],
                "every tenant's storage, by id"
            );
            ensure_matches!(
                c.storage_bytes(&tid("nobody")?),
                Err(CentralError::TenantNotFound(_))
            );
            Ok(())
        },
    )
}

/// What a real node's outbox holds (a demo day of trading: products, customers, sales,
/// ledgers, in batches), pushed and pushed again, comes back exactly as it was pushed, in
/// push order, each operation once.
pub fn a_nodes_outbox_comes_back_as_it_was_pushed<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    promise("a_nodes_outbox_comes_back_as_it_was_pushed", || {
        let caps = tid("caps")?;
        let node = Store::open_in_memory()?;
        node.add_tenant(&NewTenant::new(caps.clone(), "Caps"))?;
        let tenant = node.tenant(&caps)?;
        let admin = tenant.bootstrap_admin("owner", "Owner")?;
        let day = DemoOptions { sales: 5, seed: 7 };
        demo::fill(&tenant, &admin, &day, &mut |_, _| {})?;
        let outbox = tenant.pending_operations(100_000)?;
        let tables: BTreeSet<&str> = outbox.iter().map(|o| o.table.as_str()).collect();
        ensure!(
            tables.len() >= 10,
            "the demo day wrote to many tables: {tables:?}"
        );

        let c = store_with(&make, &["caps"])?;
        let mut first = Vec::new();
        for batch in outbox.chunks(250) {
            first.extend(c.append(&caps, batch)?);
        }
        ensure!(
            first.iter().all(|r| r.status == OperationStatus::Accepted),
            "every operation is taken: {:?}",
            first.iter().find(|r| r.status != OperationStatus::Accepted)
        );
        ensure_eq!(
            first.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (1..=outbox.len() as u64).map(Some).collect::<Vec<_>>()
        );
        let mut again = Vec::new();
        for batch in outbox.chunks(400) {
            again.extend(c.append(&caps, batch)?);
        }
        ensure!(again.iter().all(|r| r.status == OperationStatus::Duplicate));
        ensure_eq!(
            first.iter().map(|r| r.seq).collect::<Vec<_>>(),
            again.iter().map(|r| r.seq).collect::<Vec<_>>()
        );
        let (log, high) = pull_all(&c, &caps)?;
        ensure_eq!(high as usize, outbox.len());
        let pulled: Vec<Operation> = log.into_iter().map(|s| s.operation).collect();
        ensure!(
            pulled == outbox,
            "the log gives back what was pushed, in push order (first difference at {:?})",
            pulled.iter().zip(&outbox).position(|(a, b)| a != b)
        );
        Ok(())
    })
}

/// Threads pushing at once, to two tenants, each its own operations and all of them a shared
/// set (every node re-sending the same operations): per tenant every operation is accepted
/// once, every other answer is a duplicate with that number, and the log runs 1..=n without
/// gaps holding each operation once as it was pushed.
pub fn concurrent_pushes_stay_gap_free_and_store_each_operation_once<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    const THREADS: usize = 4;
    const OWN: u64 = 24;
    /// What one thread sent and was answered, each operation with its tenant.
    type Pushed = Result<Vec<(TenantId, Operation, OperationResult)>, Fail>;
    /// Per tenant, per operation id: every time it was sent, and the answer.
    type Answers = BTreeMap<TenantId, BTreeMap<RowId, Vec<(Operation, OperationResult)>>>;
    promise(
        "concurrent_pushes_stay_gap_free_and_store_each_operation_once",
        || {
            let names = ["caps", "bolt"];
            let c = store_with(&make, &names)?;
            let mut work = Vec::new();
            for name in names {
                let shared = ops(name, 12)?;
                for thread in 0..THREADS {
                    let own = ops(name, OWN)?;
                    // Own batches of 5 with a shared batch of 4 between them, the shared
                    // batches in another order on each thread so that they collide.
                    let mut batches: Vec<Vec<Operation>> = Vec::new();
                    let mut shared_batches: Vec<&[Operation]> = shared.chunks(4).collect();
                    let turn = thread % shared_batches.len();
                    shared_batches.rotate_left(turn);
                    let mut shared_batches = shared_batches.into_iter();
                    for chunk in own.chunks(5) {
                        batches.push(chunk.to_vec());
                        if let Some(s) = shared_batches.next() {
                            batches.push(s.to_vec());
                        }
                    }
                    work.push((tid(name)?, batches));
                }
            }
            let barrier = Barrier::new(work.len());
            let answers: Vec<Pushed> = std::thread::scope(|scope| {
                let handles: Vec<_> = work
                    .iter()
                    .map(|(tenant, batches)| {
                        let (c, barrier) = (&c, &barrier);
                        scope.spawn(move || {
                            barrier.wait();
                            let mut answers = Vec::new();
                            for batch in batches {
                                let results = c.append(tenant, batch)?;
                                ensure_eq!(results.len(), batch.len(), "one answer each");
                                let accepted: Vec<u64> = results
                                    .iter()
                                    .filter(|r| r.status == OperationStatus::Accepted)
                                    .filter_map(|r| r.seq)
                                    .collect();
                                ensure!(
                                    accepted.windows(2).all(|w| w[0] < w[1]),
                                    "a batch is numbered in its order: {results:?}"
                                );
                                for (op, r) in batch.iter().zip(results) {
                                    ensure_eq!(r.id, op.id, "answers in the batch's order");
                                    answers.push((tenant.clone(), op.clone(), r));
                                }
                            }
                            Ok(answers)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(Fail("a pushing thread panicked".into())))
                    })
                    .collect()
            });
            let mut by_tenant = Answers::new();
            for thread in answers {
                for (tenant, op, r) in thread? {
                    by_tenant
                        .entry(tenant)
                        .or_default()
                        .entry(op.id)
                        .or_default()
                        .push((op, r));
                }
            }
            for (tenant, answers) in &by_tenant {
                let mut numbers = BTreeSet::new();
                for (id, sent) in answers {
                    let accepted: Vec<u64> = sent
                        .iter()
                        .filter(|(_, r)| r.status == OperationStatus::Accepted)
                        .filter_map(|(_, r)| r.seq)
                        .collect();
                    ensure_eq!(accepted.len(), 1, "{tenant}: {id} accepted once: {sent:?}");
                    ensure!(
                        sent.iter().all(|(_, r)| r.seq == Some(accepted[0])
                            && matches!(
                                r.status,
                                OperationStatus::Accepted | OperationStatus::Duplicate
                            )),
                        "{tenant}: every other answer for {id} is a duplicate with its number: \
                         {sent:?}"
                    );
                    numbers.insert(accepted[0]);
                }
                let n = answers.len() as u64;
                ensure_eq!(
                    numbers,
                    (1..=n).collect::<BTreeSet<_>>(),
                    "{tenant}: each number given once"
                );
                let (log, high) = pull_all(&c, tenant)?;
                ensure_eq!(high, n, "{tenant}: the high mark");
                ensure_eq!(
                    seqs(&log),
                    (1..=n).collect::<Vec<_>>(),
                    "{tenant}: the log runs 1..=n"
                );
                for entry in &log {
                    let sent = answers.get(&entry.operation.id).and_then(|s| s.first());
                    ensure!(
                        sent.is_some_and(
                            |(op, r)| *op == entry.operation && r.seq == Some(entry.seq)
                        ),
                        "{tenant}: seq {} holds an operation as pushed, under its number",
                        entry.seq
                    );
                }
            }
            ensure_eq!(by_tenant.len(), names.len(), "both tenants pushed");
            Ok(())
        },
    )
}

/// Threads counting API calls at once never count past the limit: the calls let in are
/// numbered 1 to the limit, once each, and the rest are refused.
pub fn concurrent_api_calls_never_count_past_the_limit<S: CentralStore>(
    make: impl Fn() -> S,
) -> Result<(), Broken> {
    const THREADS: usize = 4;
    const CALLS: usize = 10;
    const MAX: u64 = 25;
    promise("concurrent_api_calls_never_count_past_the_limit", || {
        let c = store_with(&make, &["caps"])?;
        let caps = tid("caps")?;
        let at = Timestamp::from_millis(1_795_000_000_000).ok_or_else(|| Fail("no time".into()))?;
        let barrier = Barrier::new(THREADS);
        let counts: Vec<Result<Vec<Option<u64>>, Fail>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (c, caps, barrier) = (&c, &caps, &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        (0..CALLS)
                            .map(|_| c.count_api_call(caps, at, MAX).map_err(Fail::from))
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Fail("a counting thread panicked".into())))
                })
                .collect()
        });
        let mut let_in = Vec::new();
        let mut refused = 0;
        for thread in counts {
            for count in thread? {
                match count {
                    Some(n) => let_in.push(n),
                    None => refused += 1,
                }
            }
        }
        let_in.sort_unstable();
        ensure_eq!(
            let_in,
            (1..=MAX).collect::<Vec<_>>(),
            "numbered 1 to the limit"
        );
        ensure_eq!(refused, THREADS * CALLS - MAX as usize, "the rest refused");
        ensure_eq!(c.api_calls(&caps, at)?, MAX);
        Ok(())
    })
}
