//! Push throughput of the central server over loopback HTTP against the central store's own
//! insert of the same operations without HTTP, in one criterion group.
//!
//! Each iteration pushes one batch of 500 fresh operations (real ones, from a node's outbox
//! shape) for one tenant. `store` calls `SqliteCentral::append` directly; `http` sends the same
//! batch with reqwest to the axum app served on 127.0.0.1 over a file-backed store, so the
//! difference is HTTP, JSON, auth, the rate limit, the skew check and the metrics (all of them
//! run on every push: the tenant's rate is set high enough never to refuse one). Goals: HTTP
//! at most 2x the store, and at least 20,000 operations a second (criterion's throughput line
//! prints operations per second).

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pos_tenancy::protocol::RateLimit;
use pos_tenancy::server::{app, issue_token, AppState};
use pos_tenancy::Hlc;
use pos_tenancy::{CentralStore, SqliteCentral};
use pos_tenancy::{NewTenant, Operation, OperationKind, Plan, RowId, TenantId};

const BATCH: usize = 500;
const SECRET: &[u8] = b"bench-secret-that-is-long-enough-for-hs256";

fn caps() -> TenantId {
    "caps".parse().expect("slug")
}

/// A batch of fresh customer inserts, as a node's outbox would hold them.
fn batch(counter: &mut u64) -> Vec<Operation> {
    let node = RowId::new();
    // Stamped now, as a node would: the server refuses stamps too far ahead of its clock.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    (0..BATCH)
        .map(|i| {
            *counter += 1;
            let columns = serde_json::json!({
                "code": format!("C-{counter:09}"), "first_name": "Ana", "last_name": "Diaz",
                "company": null, "email": format!("c{counter}@example.com"), "phone": "+1 555 0100",
                "price_level_id": null, "tax_exempt": false, "notes": null,
                "created_at": "2026-11-24T05:41:06.123Z", "updated_at": "2026-11-24T05:41:06.123Z",
            });
            Operation {
                id: RowId::new(),
                tenant_id: caps(),
                device_id: node,
                hlc: Hlc::new(now, i as u32, node).expect("stamp"),
                actor_user_id: None,
                table: "customers".into(),
                row_id: RowId::new(),
                kind: OperationKind::Insert,
                columns: columns.as_object().cloned().unwrap_or_default(),
                unit: None,
                base: None,
            }
        })
        .collect()
}

fn open(dir: &tempfile::TempDir, name: &str) -> SqliteCentral {
    let c = SqliteCentral::open(dir.path().join(name)).expect("central store");
    c.add_tenant(&NewTenant::new(caps(), "Caps").plan(Plan::Enterprise))
        .expect("tenant");
    c
}

fn push(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("dir");
    let mut group = c.benchmark_group("push_500");
    group.throughput(Throughput::Elements(BATCH as u64));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));

    {
        let store = open(&dir, "store.db");
        let mut counter = 0;
        group.bench_function("store", |b| {
            b.iter_batched(
                || batch(&mut counter),
                |ops| store.append(&caps(), &ops).expect("append"),
                criterion::BatchSize::SmallInput,
            )
        });
    }

    {
        let central = open(&dir, "http.db");
        let unreachable = RateLimit::new(1_000_000, 1).expect("rate");
        central
            .set_rate_limit(&caps(), Some(unreachable))
            .expect("rate");
        let store: Arc<dyn CentralStore> = Arc::new(central);
        let state = AppState::new(store, SECRET.to_vec()).expect("state");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        runtime.spawn(async move { axum::serve(listener, app(state)).await });
        let url = format!("http://{addr}/v1/tenants/caps/operations");
        // A day: the server refuses tokens valid for longer than MAX_TOKEN_TTL.
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            + 86_400;
        let token = issue_token(SECRET, &caps(), "bench", exp).expect("token");
        let client = reqwest::blocking::Client::new();
        let mut counter = 1_000_000_000;
        group.bench_function("http", |b| {
            b.iter_batched(
                || {
                    serde_json::to_vec(&serde_json::json!({ "operations": batch(&mut counter) }))
                        .expect("json")
                },
                |body| {
                    let r = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .expect("push");
                    assert!(r.status().is_success(), "{}", r.status());
                    r.bytes().expect("answer")
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, push);
criterion_main!(benches);
