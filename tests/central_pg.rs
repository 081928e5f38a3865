//! The PostgreSQL central store (`PgCentral`, feature `postgres`) keeps every promise the SQLite
//! one keeps, across several server processes at once, on a throwaway cluster the tests start
//! themselves (`common/pg.rs`). Where PostgreSQL is not installed they say so and skip, unless
//! `POS_REQUIRE_POSTGRES=1`.

mod common;
#[path = "common/pg.rs"]
mod pg;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use pg::PgCluster;
use pos_tenancy::protocol::{OperationKind, OperationStatus};
use pos_tenancy::testkit::central_conformance;
use pos_tenancy::{CentralStore, Hlc, NewTenant, Operation, PgCentral, RowId, TenantId};

fn tid(s: &str) -> TenantId {
    s.parse().expect("a test tenant id")
}

/// A valid operation of the tenant: a new price level.
fn op(tenant: &str, n: u64) -> Operation {
    let columns = serde_json::json!({
        "name": format!("Level {n}"), "discount_ppm": 5, "created_at": "2026-01-01T00:00:00.000Z"
    });
    Operation {
        id: RowId::new(),
        tenant_id: tid(tenant),
        device_id: RowId::new(),
        hlc: Hlc::new(1_700_000_000_000 + n, 0, RowId::new()).expect("a stamp"),
        actor_user_id: None,
        table: "price_levels".into(),
        row_id: RowId::new(),
        kind: OperationKind::Insert,
        columns: columns.as_object().cloned().unwrap_or_default(),
        unit: None,
        base: None,
    }
}

#[test]
fn a_postgres_central_keeps_every_promise_of_the_conformance_suite() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let fresh = || PgCentral::connect(&cluster.fresh_database(), 4).expect("a PgCentral");
    if let Err(broken) = central_conformance::run_all(fresh) {
        panic!("{broken}");
    }
}

/// What one writer was answered: each accepted operation's number.
fn push_batches(store: &PgCentral, writer: u64, batches: u64) -> BTreeMap<RowId, u64> {
    let tenant = tid("caps");
    let mut accepted = BTreeMap::new();
    let mut previous: Option<(Vec<Operation>, Vec<Option<u64>>)> = None;
    for b in 0..batches {
        let batch: Vec<Operation> = (0..1 + b % 7)
            .map(|i| op("caps", writer * 1_000_000 + b * 100 + i))
            .collect();
        let results = store.append(&tenant, &batch).expect("a push");
        for (o, r) in batch.iter().zip(&results) {
            assert_eq!(r.status, OperationStatus::Accepted, "{r:?}");
            accepted.insert(o.id, r.seq.expect("an accepted operation's number"));
        }
        // Every third batch, the one before is sent again (a node that missed its answer): it
        // is answered duplicate, with the numbers it was first given.
        if b % 3 == 2 {
            if let Some((ops, seqs)) = &previous {
                let again = store.append(&tenant, ops).expect("a re-sent push");
                for (r, seq) in again.iter().zip(seqs) {
                    assert_eq!(
                        (r.status, r.seq),
                        (OperationStatus::Duplicate, *seq),
                        "a re-sent operation"
                    );
                }
            }
        }
        previous = Some((batch, results.iter().map(|r| r.seq).collect()));
    }
    accepted
}

#[test]
fn two_processes_pushing_to_one_tenant_leave_a_log_a_follower_reads_without_gap_skip_or_duplicate()
{
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let url = cluster.fresh_database();
    // Two stores with their own pools: two server processes, as far as the database can tell.
    let first = PgCentral::connect(&url, 2).expect("the first process's store");
    let second = PgCentral::connect(&url, 2).expect("the second process's store");
    let follower = PgCentral::connect(&url, 1).expect("the follower's store");
    first
        .add_tenant(&NewTenant::new(tid("caps"), "Caps"))
        .expect("a tenant");
    let writers_done = AtomicBool::new(false);
    let batches = 60;
    let (one, two, followed) = std::thread::scope(|s| {
        let one = s.spawn(|| push_batches(&first, 1, batches));
        let two = s.spawn(|| push_batches(&second, 2, batches));
        let follow = s.spawn(|| {
            let tenant = tid("caps");
            let mut cursor = 0;
            let mut read: Vec<(u64, RowId)> = Vec::new();
            loop {
                // Read before the page: once the writers are done, a page that ends at the
                // high mark is the end of the log.
                let done = writers_done.load(Ordering::SeqCst);
                let page = follower
                    .operations_after(&tenant, cursor, 25)
                    .expect("a page");
                for o in &page.operations {
                    assert_eq!(
                        o.seq,
                        cursor + 1,
                        "the follower at {cursor} was given {}: a gap or a skip",
                        o.seq
                    );
                    cursor = o.seq;
                    read.push((o.seq, o.operation.id));
                }
                if done && cursor == page.high {
                    return read;
                }
            }
        });
        // Done before a failed writer's panic is passed on, or the follower never stops.
        let (one, two) = (one.join(), two.join());
        writers_done.store(true, Ordering::SeqCst);
        let followed = follow.join();
        (
            one.expect("the first writer"),
            two.expect("the second writer"),
            followed.expect("the follower"),
        )
    });
    let mut answered: BTreeMap<RowId, u64> = one.clone();
    answered.extend(two.iter().map(|(id, seq)| (*id, *seq)));
    assert_eq!(answered.len(), one.len() + two.len(), "no id twice");
    let expected: Vec<u64> = (1..=answered.len() as u64).collect();
    assert_eq!(
        followed.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        expected,
        "the follower read every number once, in order"
    );
    for (seq, id) in &followed {
        assert_eq!(
            answered.get(id),
            Some(seq),
            "operation {id} read at {seq} is the one its writer was answered"
        );
    }
}

/// The tables every tenant's rows are in; fixed names, never input.
const TENANT_TABLES: [&str; 4] = ["tenants", "tenant_heads", "operations", "tenant_usage"];

/// How many of `caps`'s rows `table` shows in a transaction with `app.current_tenant` set to
/// `current` (or not set at all).
fn caps_rows(db: &mut postgres::Client, current: Option<&str>, table: &str) -> i64 {
    let mut tx = db.transaction().expect("a transaction");
    if let Some(current) = current {
        tx.execute(
            "SELECT set_config('app.current_tenant', $1, true)",
            &[&current],
        )
        .expect("the current tenant");
    }
    let n: i64 = tx
        .query_one(
            &format!("SELECT count(*) FROM {table} WHERE tenant_id = 'caps'"),
            &[],
        )
        .expect("a count")
        .get(0);
    tx.commit().expect("a commit");
    n
}

#[test]
fn with_the_wrong_tenant_set_the_servers_role_reads_and_changes_nothing_of_another_tenant() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let url = cluster.fresh_database();
    let store = PgCentral::connect(&url, 1).expect("a PgCentral");
    for t in ["caps", "other"] {
        store
            .add_tenant(&NewTenant::new(tid(t), t))
            .expect("a tenant");
    }
    store
        .append(&tid("caps"), &[op("caps", 1), op("caps", 2)])
        .expect("a push");
    store
        .count_api_call(&tid("caps"), pos_tenancy::Timestamp::now(), 10)
        .expect("a call counted");
    // The role the store connects as: granted the tables by their owner, no superuser and no
    // BYPASSRLS, as the server's role should be.
    let mut db = postgres::Client::connect(&url, postgres::NoTls).expect("the store's role");
    let role = db
        .query_one(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .expect("the role");
    assert_eq!(
        (role.get::<_, bool>(0), role.get::<_, bool>(1)),
        (false, false)
    );
    for table in TENANT_TABLES {
        assert!(
            caps_rows(&mut db, Some("caps"), table) > 0,
            "{table} holds caps's rows"
        );
        assert_eq!(
            caps_rows(&mut db, Some("other"), table),
            0,
            "{table} with another tenant set"
        );
        assert_eq!(
            caps_rows(&mut db, None, table),
            0,
            "{table} with no tenant set"
        );
    }
    let mut tx = db.transaction().expect("a transaction");
    tx.execute(
        "SELECT set_config('app.current_tenant', 'other', true)",
        &[],
    )
    .expect("the current tenant");
    let changed = tx
        .execute(
            "UPDATE operations SET kind = 'delete' WHERE tenant_id = 'caps'",
            &[],
        )
        .expect("an update that finds nothing");
    assert_eq!(changed, 0, "another tenant's operations cannot be changed");
    let refused = tx.execute(
        "UPDATE tenant_heads SET tenant_id = 'caps' WHERE tenant_id = 'other'",
        &[],
    );
    assert!(
        refused.is_err(),
        "a row cannot be moved to another tenant: {refused:?}"
    );
    drop(tx);
    // The tenant list reads every tenant's row, and nothing else.
    assert_eq!(
        store
            .tenants()
            .expect("the tenant list")
            .iter()
            .map(|t| t.id.to_string())
            .collect::<Vec<_>>(),
        ["caps", "other"]
    );
    for table in ["tenant_heads", "operations", "tenant_usage"] {
        assert_eq!(caps_rows(&mut db, Some("*"), table), 0, "{table} with '*'");
    }
}

const BIN: &str = env!("CARGO_BIN_EXE_pos-central");

/// Runs `pos-central` to the end; its stdout, after checking it succeeded.
fn central(args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("pos-central runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A `pos-central serve` process, killed on drop.
struct Serving {
    child: std::process::Child,
    base: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(url: &str, secret: &std::path::Path) -> Serving {
    serve_with(url, secret, &["--pool-size", "2"])
}

fn serve_with(url: &str, secret: &std::path::Path, extra: &[&str]) -> Serving {
    use std::io::BufRead;
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--database-url", url])
        .args(extra)
        .args(["--listen", "127.0.0.1:0", "--secret-file"])
        .arg(secret)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("pos-central serve starts");
    let stdout = child.stdout.take().expect("its stdout");
    let mut serving = Serving {
        child,
        base: String::new(),
    };
    // The first line comes once the socket is bound; EOF if the server died.
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the first line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    serving.base = format!("http://{addr}");
    serving
}

#[test]
fn two_pos_central_processes_on_one_database_url_serve_one_log() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let url = cluster.fresh_database();
    let secret = cluster.dir().join("secret");
    std::fs::write(&secret, "test-secret-that-is-long-enough-for-hs256!\n").expect("a secret");
    central(&[
        "tenant",
        "add",
        "--database-url",
        &url,
        "--id",
        "caps",
        "--name",
        "Caps",
        "--plan",
        "pro",
    ]);
    let shown: serde_json::Value = serde_json::from_str(&central(&[
        "tenant",
        "show",
        "--database-url",
        &url,
        "--id",
        "caps",
        "--json",
    ]))
    .expect("JSON");
    assert_eq!(shown["plan"], "pro");
    let token = central(&[
        "token",
        "issue",
        "--database-url",
        &url,
        "--tenant",
        "caps",
        "--device",
        "till-1",
        "--secret-file",
        secret.to_str().expect("a UTF-8 path"),
    ]);
    let (one, two) = (serve(&url, &secret), serve(&url, &secret));
    let http = reqwest::blocking::Client::new();
    let ops: Vec<Operation> = (1..=5).map(|n| op("caps", n)).collect();
    let push = |s: &Serving| -> serde_json::Value {
        http.post(format!("{}/v1/tenants/caps/operations", s.base))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "operations": ops }))
            .send()
            .expect("a push")
            .json()
            .expect("its answer")
    };
    let answers = |v: &serde_json::Value| -> Vec<(String, u64)> {
        v["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| {
                (
                    r["status"].as_str().unwrap_or_default().to_owned(),
                    r["seq"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    let first = answers(&push(&one));
    assert_eq!(
        first,
        (1..=5)
            .map(|n| ("accepted".to_owned(), n))
            .collect::<Vec<_>>()
    );
    let again = answers(&push(&two));
    assert_eq!(
        again,
        (1..=5)
            .map(|n| ("duplicate".to_owned(), n))
            .collect::<Vec<_>>(),
        "the other process answers a re-sent batch with the first numbers"
    );
    let page: serde_json::Value = http
        .get(format!(
            "{}/v1/tenants/caps/operations?after=0&limit=100",
            two.base
        ))
        .bearer_auth(&token)
        .send()
        .expect("a pull")
        .json()
        .expect("a page");
    assert_eq!(page["high"], 5);
    let ids: Vec<String> = page["operations"]
        .as_array()
        .expect("operations")
        .iter()
        .map(|o| o["operation"]["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        ids,
        ops.iter().map(|o| o.id.to_string()).collect::<Vec<_>>()
    );
}

/// A tenant `caps` in a fresh database, a secret file and a device token for it.
fn tenant_and_token(cluster: &PgCluster) -> (String, std::path::PathBuf, String) {
    let url = cluster.fresh_database();
    let secret = cluster.dir().join(format!("secret-{}", RowId::new()));
    std::fs::write(&secret, "test-secret-that-is-long-enough-for-hs256!\n").expect("a secret");
    central(&[
        "tenant",
        "add",
        "--database-url",
        &url,
        "--id",
        "caps",
        "--name",
        "Caps",
    ]);
    let token = central(&[
        "token",
        "issue",
        "--database-url",
        &url,
        "--tenant",
        "caps",
        "--device",
        "till-1",
        "--secret-file",
        secret.to_str().expect("a UTF-8 path"),
    ]);
    (url, secret, token)
}

#[test]
fn a_request_that_finds_every_database_connection_busy_answers_503_with_retry_after() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let (url, secret, token) = tenant_and_token(&cluster);
    let server = serve_with(&url, &secret, &["--pool-size", "1", "--pool-wait", "1s"]);
    // The tenant's head row locked by another session: a push takes the pool's one
    // connection and waits on the lock, holding it.
    let mut admin = cluster.admin();
    let db = url.rsplit('/').next().expect("a database name").to_owned();
    let mut holder = postgres::Client::connect(&cluster.url("postgres", &db), postgres::NoTls)
        .expect("a superuser connection to the store's database");
    let mut lock = holder.transaction().expect("a transaction");
    lock.execute(
        "SELECT head FROM tenant_heads WHERE tenant_id = 'caps' FOR UPDATE",
        &[],
    )
    .expect("the head row locked");
    let http = reqwest::blocking::Client::new();
    let ops: Vec<Operation> = (1..=3).map(|n| op("caps", n)).collect();
    std::thread::scope(|s| {
        let held = s.spawn(|| {
            http.post(format!("{}/v1/tenants/caps/operations", server.base))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "operations": ops }))
                .send()
                .expect("the held push's answer")
        });
        // Bounded: until the server's session waits on the lock.
        let mut waiting = false;
        for _ in 0..600 {
            let n: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = $1 AND usename = $2 AND wait_event_type = 'Lock'",
                    &[&db, &pg::APP_ROLE],
                )
                .expect("the server's sessions")
                .get(0);
            if n > 0 {
                waiting = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(waiting, "the push never waited on the locked head row");
        let busy = http
            .get(format!("{}/v1/tenants/caps/config", server.base))
            .bearer_auth(&token)
            .send()
            .expect("an answer");
        assert_eq!(busy.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
        let retry: u64 = busy.headers()["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!(retry >= 1, "{retry}");
        let body: serde_json::Value = busy.json().expect("a JSON error");
        assert_eq!(body["error"], "busy", "{body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("nothing was done")),
            "{body}"
        );
        lock.commit().expect("the lock let go");
        let held = held.join().expect("the held push");
        assert_eq!(
            held.status(),
            reqwest::StatusCode::OK,
            "the held push went on"
        );
    });
    let config = http
        .get(format!("{}/v1/tenants/caps/config", server.base))
        .bearer_auth(&token)
        .send()
        .expect("an answer");
    assert_eq!(
        config.status(),
        reqwest::StatusCode::OK,
        "the pool is free again"
    );
}

/// Pushes `batches` batches of the tenant's operations as one terminal would: each batch to
/// one of the servers in turn, sent again (to the other one if need be) until it is answered;
/// bounded. What each operation was answered: its number.
fn terminal(
    http: &reqwest::blocking::Client,
    bases: &std::sync::Mutex<Vec<String>>,
    tenant: &str,
    token: &str,
    id: u64,
    batches: u64,
) -> BTreeMap<RowId, u64> {
    let mut answered = BTreeMap::new();
    for b in 0..batches {
        let batch: Vec<Operation> = (0..1 + (b + id) % 5)
            .map(|i| op(tenant, id * 1_000_000 + b * 100 + i))
            .collect();
        let mut done = false;
        for attempt in 0..400 {
            let base = {
                let bases = bases
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                bases[((b + id + attempt) % 2) as usize].clone()
            };
            let answer = http
                .post(format!("{base}/v1/tenants/{tenant}/operations"))
                .bearer_auth(token)
                .json(&serde_json::json!({ "operations": batch }))
                .send();
            let results: pos_tenancy::protocol::BatchResults = match answer {
                Ok(r) if r.status() == reqwest::StatusCode::OK => r.json().expect("results"),
                // A server killed or restarting: the same batch again, to the other one.
                _ => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
            };
            for (o, r) in batch.iter().zip(&results.results) {
                assert!(
                    matches!(
                        r.status,
                        OperationStatus::Accepted | OperationStatus::Duplicate
                    ),
                    "{r:?}"
                );
                let seq = r.seq.expect("a stored operation's number");
                if let Some(first) = answered.insert(o.id, seq) {
                    assert_eq!(first, seq, "{} answered two numbers", o.id);
                }
            }
            done = true;
            break;
        }
        assert!(done, "terminal {id} of {tenant}: batch {b} never answered");
    }
    answered
}

/// The tenant's whole log, paged through a server: (number, id) in order.
fn whole_log(base: &str, tenant: &str, token: &str) -> Vec<(u64, RowId)> {
    let http = reqwest::blocking::Client::new();
    let mut log = Vec::new();
    let mut after = 0;
    // Bounded: every page advances the cursor, or the log is read.
    for _ in 0..10_000 {
        let page: pos_tenancy::protocol::OperationPage = http
            .get(format!(
                "{base}/v1/tenants/{tenant}/operations?after={after}&limit=100"
            ))
            .bearer_auth(token)
            .send()
            .expect("a pull")
            .json()
            .expect("a page");
        for o in &page.operations {
            log.push((o.seq, o.operation.id));
            after = o.seq;
        }
        if after >= page.high {
            return log;
        }
    }
    panic!("{tenant}'s log did not end");
}

#[test]
fn terminals_pushing_to_two_processes_lose_nothing_answered_when_one_is_killed_mid_push() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let (url, secret, caps) = tenant_and_token(&cluster);
    central(&[
        "tenant",
        "add",
        "--database-url",
        &url,
        "--id",
        "bolt",
        "--name",
        "Bolt",
    ]);
    let bolt = central(&[
        "token",
        "issue",
        "--database-url",
        &url,
        "--tenant",
        "bolt",
        "--device",
        "till-1",
        "--secret-file",
        secret.to_str().expect("a UTF-8 path"),
    ]);
    let mut doomed = serve(&url, &secret);
    let survivor = serve(&url, &secret);
    let bases = std::sync::Mutex::new(vec![doomed.base.clone(), survivor.base.clone()]);
    let http = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("a client");
    // Two terminals per tenant, each pushing to both servers in turn.
    let work = [
        ("caps", &caps, 1),
        ("caps", &caps, 2),
        ("bolt", &bolt, 3),
        ("bolt", &bolt, 4),
    ];
    let (answers, restarted) = std::thread::scope(|s| {
        let terminals: Vec<_> = work
            .iter()
            .map(|(tenant, token, id)| {
                let (http, bases) = (&http, &bases);
                s.spawn(move || (*tenant, terminal(http, bases, tenant, token, *id, 40)))
            })
            .collect();
        // SIGKILL the first server while it is answering a push (its in-flight gauge counts
        // the push and this scrape), then start it again on a new port.
        let mut in_flight = false;
        for _ in 0..2_000 {
            let scrape = http
                .get(format!("{}/metrics", doomed.base))
                .send()
                .and_then(|r| r.text())
                .unwrap_or_default();
            let busy = scrape.lines().any(|l| {
                l.strip_prefix("pos_central_http_requests_in_flight ")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .is_some_and(|v| v >= 2.0)
            });
            if busy {
                in_flight = true;
                break;
            }
        }
        assert!(in_flight, "no push was ever in flight on the first server");
        doomed.child.kill().expect("SIGKILL");
        doomed.child.wait().expect("reaped");
        let restarted = serve(&url, &secret);
        bases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)[0] = restarted.base.clone();
        let answers: Vec<(&str, BTreeMap<RowId, u64>)> = terminals
            .into_iter()
            .map(|t| t.join().expect("a terminal"))
            .collect();
        (answers, restarted)
    });
    for (tenant, token) in [("caps", &caps), ("bolt", &bolt)] {
        let log = whole_log(&restarted.base, tenant, token);
        let seqs: Vec<u64> = log.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(
            seqs,
            (1..=log.len() as u64).collect::<Vec<_>>(),
            "{tenant}'s log has no gap"
        );
        let stored: BTreeMap<RowId, u64> = log.iter().map(|(seq, id)| (*id, *seq)).collect();
        assert_eq!(
            stored.len(),
            log.len(),
            "{tenant}'s log holds no operation twice"
        );
        let mut answered = 0;
        for (_, a) in answers.iter().filter(|(t, _)| *t == tenant) {
            for (id, seq) in a {
                assert_eq!(
                    stored.get(id),
                    Some(seq),
                    "{tenant}: operation {id} was answered as stored at {seq}"
                );
                answered += 1;
            }
        }
        assert_eq!(
            answered,
            log.len(),
            "{tenant}: every stored operation was one a terminal sent, and got its answer"
        );
    }
}

/// Runs `pos-central` expecting exit code 2; its stderr.
fn central_fails(args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("pos-central runs");
    assert_eq!(out.status.code(), Some(2), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_owner_migrates_and_a_serving_role_without_ddl_rights_is_told_when_migrations_are_missing() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let (owner, app) = cluster.unmigrated_database();
    let secret = cluster.dir().join("secret");
    std::fs::write(&secret, "test-secret-that-is-long-enough-for-hs256!\n").expect("a secret");
    let secret = secret.to_str().expect("a UTF-8 path");
    // Nothing migrated: serve and the admin commands say so and what to run, and change
    // nothing.
    let err = central_fails(&[
        "serve",
        "--database-url",
        &app,
        "--listen",
        "127.0.0.1:0",
        "--secret-file",
        secret,
    ]);
    assert!(
        err.contains("never migrated") && err.contains("pos-central migrate --database-url"),
        "{err}"
    );
    let err = central_fails(&[
        "tenant",
        "add",
        "--database-url",
        &app,
        "--id",
        "caps",
        "--name",
        "Caps",
    ]);
    assert!(err.contains("pos-central migrate"), "{err}");
    // The serving role may not change the schema.
    let err = central_fails(&["migrate", "--database-url", &app]);
    assert!(err.contains("permission denied"), "{err}");
    // The owner may; then the serving role serves.
    let done: serde_json::Value =
        serde_json::from_str(&central(&["migrate", "--database-url", &owner, "--json"]))
            .expect("JSON");
    assert_eq!(done["schema"], "migrated");
    central(&[
        "tenant",
        "add",
        "--database-url",
        &app,
        "--id",
        "caps",
        "--name",
        "Caps",
    ]);
    let token = central(&[
        "token",
        "issue",
        "--database-url",
        &app,
        "--tenant",
        "caps",
        "--device",
        "till-1",
        "--secret-file",
        secret,
    ]);
    let server = serve(&app, std::path::Path::new(secret));
    let pushed = reqwest::blocking::Client::new()
        .post(format!("{}/v1/tenants/caps/operations", server.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "operations": [op("caps", 1)] }))
        .send()
        .expect("a push");
    assert_eq!(pushed.status(), reqwest::StatusCode::OK);
    let mut db = postgres::Client::connect(&app, postgres::NoTls).expect("the serving role");
    let ddl = db.batch_execute("CREATE TABLE intruder (x int)");
    assert!(ddl.is_err(), "the serving role created a table");
    // Migrating again changes nothing and is no error.
    central(&["migrate", "--database-url", &owner]);
}

/// `url` (one of a TLS cluster's, `...@127.0.0.1:PORT/DB?sslmode=require`) with another host
/// and sslmode.
fn with_tls(url: &str, host: &str, sslmode: &str) -> String {
    url.replace("@127.0.0.1:", &format!("@{host}:"))
        .replace("sslmode=require", &format!("sslmode={sslmode}"))
}

fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn with_sslmode_verify_full_and_the_clusters_ca_pos_central_migrates_and_serves_over_tls() {
    let Some(cluster) = PgCluster::shared_tls() else {
        return;
    };
    let ca = cluster.ca().expect("a TLS cluster's CA");
    let ca = path_str(&ca);
    let (owner, app) = cluster.unmigrated_database();
    // The certificate names localhost only: verify-full connects by that name.
    let (owner, app) = (
        with_tls(&owner, "localhost", "verify-full"),
        with_tls(&app, "localhost", "verify-full"),
    );
    central(&["migrate", "--database-url", &owner, "--database-ca", ca]);
    central(&[
        "tenant",
        "add",
        "--database-url",
        &app,
        "--database-ca",
        ca,
        "--id",
        "caps",
        "--name",
        "Caps",
    ]);
    let secret = cluster.dir().join(format!("secret-{}", RowId::new()));
    std::fs::write(&secret, "test-secret-that-is-long-enough-for-hs256!\n").expect("a secret");
    let token = central(&[
        "token",
        "issue",
        "--database-url",
        &app,
        "--database-ca",
        ca,
        "--tenant",
        "caps",
        "--device",
        "till-1",
        "--secret-file",
        path_str(&secret),
    ]);
    let server = serve_with(&app, &secret, &["--database-ca", ca, "--pool-size", "2"]);
    let pushed = reqwest::blocking::Client::new()
        .post(format!("{}/v1/tenants/caps/operations", server.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "operations": [op("caps", 1)] }))
        .send()
        .expect("a push");
    assert_eq!(pushed.status(), reqwest::StatusCode::OK);
    // The server's connections are encrypted: PostgreSQL says so of each.
    let encrypted: i64 = cluster
        .admin()
        .query_one(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.usename = 'pos_app' AND s.ssl",
            &[],
        )
        .expect("pg_stat_ssl")
        .get(0);
    assert!(
        encrypted >= 1,
        "no encrypted connection of the server's role"
    );
}

#[test]
fn a_server_certificate_not_signed_by_the_given_ca_is_refused_with_a_typed_error_naming_the_flag() {
    let Some(cluster) = PgCluster::shared_tls() else {
        return;
    };
    let app = with_tls(&cluster.fresh_database(), "localhost", "verify-full");
    let other = cluster.other_ca().expect("an unrelated CA");
    match PgCentral::connect_with_ca(&app, 1, Some(&other)) {
        Err(pos_tenancy::CentralError::PostgresTls { sslmode, reason }) => {
            assert_eq!(sslmode, "verify-full");
            assert!(
                reason.contains("UnknownIssuer") && reason.contains("--database-ca"),
                "{reason}"
            );
        }
        other => panic!("expected PostgresTls, got {other:?}"),
    }
    // Without a CA file the system's roots are trusted, and they did not sign it either.
    assert!(matches!(
        PgCentral::connect(&app, 1),
        Err(pos_tenancy::CentralError::PostgresTls { .. })
    ));
    let secret = cluster.dir().join(format!("secret-{}", RowId::new()));
    std::fs::write(&secret, "test-secret-that-is-long-enough-for-hs256!\n").expect("a secret");
    let err = central_fails(&[
        "serve",
        "--database-url",
        &app,
        "--database-ca",
        path_str(&other),
        "--listen",
        "127.0.0.1:0",
        "--secret-file",
        path_str(&secret),
    ]);
    assert!(
        err.contains("TLS connection to PostgreSQL failed (sslmode=verify-full)")
            && err.contains("not signed by a trusted CA"),
        "{err}"
    );
}

#[test]
fn verify_full_refuses_a_certificate_for_another_host_name_which_verify_ca_accepts() {
    let Some(cluster) = PgCluster::shared_tls() else {
        return;
    };
    let ca = cluster.ca().expect("a TLS cluster's CA");
    let app = cluster.fresh_database();
    // The certificate names localhost, not 127.0.0.1.
    let full = with_tls(&app, "127.0.0.1", "verify-full");
    match PgCentral::connect_with_ca(&full, 1, Some(&ca)) {
        Err(pos_tenancy::CentralError::PostgresTls { reason, .. }) => {
            assert!(reason.contains("does not name the host"), "{reason}");
        }
        other => panic!("expected PostgresTls, got {other:?}"),
    }
    let by_ca = with_tls(&app, "127.0.0.1", "verify-ca");
    PgCentral::connect_with_ca(&by_ca, 1, Some(&ca)).expect("verify-ca checks the CA alone");
    // verify-ca still checks the CA.
    let other = cluster.other_ca().expect("an unrelated CA");
    assert!(matches!(
        PgCentral::connect_with_ca(&by_ca, 1, Some(&other)),
        Err(pos_tenancy::CentralError::PostgresTls { .. })
    ));
}

#[test]
fn sslmode_disable_against_a_server_taking_only_tls_is_refused_with_a_typed_error() {
    let Some(cluster) = PgCluster::shared_tls() else {
        return;
    };
    let app = with_tls(&cluster.fresh_database(), "127.0.0.1", "disable");
    match PgCentral::connect(&app, 1) {
        Err(pos_tenancy::CentralError::PostgresRefused { sslmode, reason }) => {
            assert_eq!(sslmode, "disable");
            assert!(
                reason.contains("no encryption") && reason.contains("hostssl"),
                "{reason}"
            );
        }
        other => panic!("expected PostgresRefused, got {other:?}"),
    }
    let err = central_fails(&["tenant", "list", "--database-url", &app]);
    assert!(err.contains("PostgreSQL refused the connection"), "{err}");
}

#[test]
fn sslmode_require_against_a_server_without_tls_is_refused_and_prefer_falls_back_to_plain() {
    let Some(cluster) = PgCluster::shared() else {
        return;
    };
    let app = cluster.fresh_database();
    match PgCentral::connect(&format!("{app}?sslmode=require"), 1) {
        Err(pos_tenancy::CentralError::PostgresTls { sslmode, reason }) => {
            assert_eq!(sslmode, "require");
            assert!(reason.contains("does not support TLS"), "{reason}");
        }
        other => panic!("expected PostgresTls, got {other:?}"),
    }
    PgCentral::connect(&format!("{app}?sslmode=prefer"), 1).expect("prefer connects in plain");
}

#[test]
fn a_snapshot_built_from_a_postgres_central_is_taken_by_a_new_terminal() {
    use pos_tenancy::sync::{DirectTransport, SnapshotUse, SyncOptions, Syncer};
    use pos_tenancy::{Store, TenantAccess, TenantSnapshots};
    use std::sync::Arc;

    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let url = cluster.fresh_database();
    let central_store = Arc::new(PgCentral::connect(&url, 2).expect("a PgCentral"));
    central_store
        .add_tenant(&NewTenant::new(tid("caps"), "Caps"))
        .expect("a tenant");
    let dir = tempfile::tempdir().expect("a directory");
    let transport = DirectTransport::new(Arc::clone(&central_store));
    let replay = SyncOptions::default().snapshot_from(None);
    let writer = Store::open(dir.path().join("writer.db")).expect("a node");
    writer
        .add_tenant(&NewTenant::new(tid("caps"), "Caps"))
        .expect("the tenant");
    {
        let mut t = writer.tenant(&tid("caps")).expect("a handle");
        let admin = t.bootstrap_admin("owner", "Owner").expect("an admin");
        let tx = t.transaction().expect("a transaction");
        for i in 0..50 {
            tx.insert(&admin, &common::product(&format!("SKU-{i}"), 100 + i))
                .expect("a product");
        }
        tx.commit().expect("committed");
    }
    Syncer::new(&writer, &transport, &replay)
        .round(&tid("caps"), "t")
        .expect("pushed");
    let snaps = dir.path().join("snaps");
    let built: serde_json::Value = serde_json::from_str(&central(&[
        "snapshot",
        "--database-url",
        &url,
        "--dir",
        snaps.to_str().expect("a UTF-8 path"),
        "--tenant",
        "caps",
        "--json",
    ]))
    .expect("JSON");
    let head = central_store
        .operations_after(&tid("caps"), 0, 1)
        .expect("the log")
        .high;
    assert_eq!(built["cursor"].as_u64(), Some(head), "{built}");

    let joining = Store::open(dir.path().join("new.db")).expect("a node");
    let served = DirectTransport::new(Arc::clone(&central_store))
        .with_snapshots(TenantSnapshots::new(&snaps));
    let report = Syncer::new(
        &joining,
        &served,
        &SyncOptions::default().snapshot_from(Some(1)),
    )
    .join(&tid("caps"), "t")
    .expect("joined");
    assert!(
        matches!(report.snapshot, Some(SnapshotUse::Taken { cursor, .. }) if cursor == head),
        "{report:?}"
    );
    let count = |s: &Store| {
        s.tenant(&tid("caps"))
            .expect("a handle")
            .list::<pos_tenancy::catalog::Product>(&pos_tenancy::ListQuery::new().limit(500))
            .expect("products")
            .rows
            .len()
    };
    assert_eq!(count(&joining), 50);
    assert_eq!(count(&joining), count(&writer));
}
