//! The central store takes exactly what a node's outbox holds: pushed twice, stored once, in a
//! gap-free per-tenant order, whatever mix of batches and re-sends arrives.
//!
//! What any backend promises is the conformance suite
//! (`pos_tenancy::testkit::central_conformance`); here the SQLite backend runs all of it, in
//! memory and in a file, and takes a node's outbox as `pos-node` prints it.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use pos_tenancy::protocol::OperationStatus;
use pos_tenancy::testkit::central_conformance;
use pos_tenancy::{CentralStore, SqliteCentral};
use pos_tenancy::{NewTenant, Operation};

fn in_memory() -> SqliteCentral {
    SqliteCentral::open_in_memory().expect("central")
}

#[test]
fn an_in_memory_sqlite_central_keeps_every_promise() {
    if let Err(broken) = central_conformance::run_all(in_memory) {
        panic!("{broken}");
    }
}

#[test]
fn a_sqlite_central_file_keeps_every_promise() {
    let dir = tempfile::tempdir().expect("temp dir");
    let made = AtomicUsize::new(0);
    let in_a_file = || {
        let n = made.fetch_add(1, Ordering::Relaxed);
        SqliteCentral::open(dir.path().join(format!("central-{n}.db"))).expect("central")
    };
    if let Err(broken) = central_conformance::run_all(in_a_file) {
        panic!("{broken}");
    }
    assert!(made.into_inner() > 1, "each promise had a fresh store");
}

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
    let central = in_memory();
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
