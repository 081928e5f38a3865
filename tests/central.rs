//! The central store takes exactly what a node's outbox holds: pushed twice, stored once, in a
//! gap-free per-tenant order, whatever mix of batches and re-sends arrives.

mod common;

use std::collections::BTreeSet;

use common::*;
use pos_tenancy::protocol::OperationStatus;
use pos_tenancy::{CentralStore, SqliteCentral};
use pos_tenancy::{NewTenant, Operation};
use proptest::prelude::*;

fn node_operations(tag: &str) -> Vec<Operation> {
    let store = store_with(&["caps"]);
    let caps = store.tenant(&tid("caps")).expect("caps");
    let admin = caps.bootstrap_admin("owner", "Owner").expect("admin");
    populate(&caps, &admin, tag).expect("populated");
    caps.pending_operations(10_000).expect("outbox")
}

#[test]
fn a_nodes_outbox_as_json_is_accepted_and_a_resend_is_a_duplicate() {
    let ops = node_operations("n");
    assert!(ops.len() > 25, "every synced table wrote something");
    // Exactly what `pos-node outbox list --json` prints is what the server takes.
    let json = serde_json::to_string(&ops).expect("json");
    let wire: Vec<Operation> = serde_json::from_str(&json).expect("operations");
    let central = SqliteCentral::open_in_memory().expect("central");
    central
        .add_tenant(&NewTenant::new(tid("caps"), "Caps"))
        .expect("tenant");
    let first = central.append(&tid("caps"), &wire).expect("push");
    assert!(first.iter().all(|r| r.status == OperationStatus::Accepted));
    let again = central.append(&tid("caps"), &wire).expect("re-push");
    assert!(again.iter().all(|r| r.status == OperationStatus::Duplicate));
    assert_eq!(
        first.iter().map(|r| r.seq).collect::<Vec<_>>(),
        again.iter().map(|r| r.seq).collect::<Vec<_>>()
    );
    let page = central
        .operations_after(&tid("caps"), 0, 1000)
        .expect("pull");
    assert_eq!(page.high as usize, ops.len());
    let pulled: Vec<Operation> = page.operations.into_iter().map(|s| s.operation).collect();
    assert_eq!(
        pulled, ops,
        "the log gives back what was pushed, in push order"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Batches drawn from a pool with repeats (a node re-sending after a lost answer): every
    /// operation is stored exactly once and sequence numbers run 1..=n without gaps.
    #[test]
    fn resends_in_any_order_store_each_operation_once_without_gaps(
        picks in prop::collection::vec(prop::collection::vec(0usize..40, 1..12), 1..10)
    ) {
        let pool = node_operations("p");
        let central = SqliteCentral::open_in_memory().expect("central");
        central.add_tenant(&NewTenant::new(tid("caps"), "Caps")).expect("tenant");
        let mut sent = BTreeSet::new();
        for batch in picks {
            let ops: Vec<Operation> = batch.iter().map(|i| pool[i % pool.len()].clone()).collect();
            let results = central.append(&tid("caps"), &ops).expect("push");
            for (op, r) in ops.iter().zip(&results) {
                let fresh = sent.insert(op.id);
                prop_assert_eq!(r.status, if fresh { OperationStatus::Accepted } else { OperationStatus::Duplicate });
            }
        }
        let page = central.operations_after(&tid("caps"), 0, 1000).expect("pull");
        prop_assert_eq!(page.high as usize, sent.len());
        let seqs: Vec<u64> = page.operations.iter().map(|o| o.seq).collect();
        prop_assert_eq!(seqs, (1..=sent.len() as u64).collect::<Vec<_>>());
        let ids: BTreeSet<_> = page.operations.iter().map(|o| o.operation.id).collect();
        prop_assert_eq!(ids, sent);
    }
}
