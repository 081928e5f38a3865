//! The real `pos-central` binary on an ephemeral loopback port, driven with reqwest: auth,
//! every error status, pushes of a node's real outbox, duplicates, concurrent tenants, rate
//! limits, the clock-skew bound, metrics, the OpenAPI document, the admin commands, and crashes:
//! SIGKILL mid-push, an abort between commit and answer (feature `fault-injection`), and
//! SIGTERM with a batch in flight. Every loop is bounded; no test asserts a timing.
//!
//! Every scenario runs on both backends: `sqlite::NAME` on a database file, `postgres::NAME`
//! (feature `postgres`) with `--database-url` on a fresh database of a throwaway cluster
//! (`common/pg.rs`, shared by the tests running at once), skipped where PostgreSQL is not
//! installed unless `POS_REQUIRE_POSTGRES=1`. The bodies are written once, over [`Backend`];
//! `on_both_backends!` at the end makes the two tests of each.
#![cfg(feature = "server")]

mod common;
#[cfg(feature = "postgres")]
#[path = "common/pg.rs"]
mod pg;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::*;
use pos_tenancy::protocol::BatchResults;
use pos_tenancy::protocol::OperationStatus;
use pos_tenancy::server::issue_token;
use pos_tenancy::{CentralStore, SqliteCentral};
use pos_tenancy::{Hlc, Operation};
use reqwest::blocking::Client;
use reqwest::StatusCode;
#[cfg(feature = "postgres")]
use std::sync::Arc;

const SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";
const BIN: &str = env!("CARGO_BIN_EXE_pos-central");

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The central store a test's server and admin commands use.
enum Backend {
    /// A SQLite file (`--db FILE`).
    Sqlite,
    /// A fresh database on the shared throwaway cluster (`--database-url URL`).
    #[cfg(feature = "postgres")]
    Postgres(Arc<pg::PgCluster>),
}

/// Where a test's central database is.
enum Db {
    File(PathBuf),
    #[cfg(feature = "postgres")]
    Url {
        url: String,
        /// Kept running until the test's environment is dropped.
        _cluster: Arc<pg::PgCluster>,
    },
}

struct Env {
    _dir: tempfile::TempDir,
    db: Db,
    secret: PathBuf,
}

impl Env {
    /// The flag naming the database for `pos-central`, and its value.
    fn db(&self) -> (&'static str, String) {
        match &self.db {
            Db::File(path) => ("--db", path.display().to_string()),
            #[cfg(feature = "postgres")]
            Db::Url { url, .. } => ("--database-url", url.clone()),
        }
    }

    /// The central store beside the server, to look at what it stored.
    fn store(&self) -> Box<dyn CentralStore> {
        match &self.db {
            Db::File(path) => Box::new(SqliteCentral::open(path).expect("central db")),
            #[cfg(feature = "postgres")]
            Db::Url { url, .. } => {
                Box::new(pos_tenancy::PgCentral::connect(url, 1).expect("central db"))
            }
        }
    }
}

fn run(args: &[&str]) -> Output {
    // Admin commands log only warnings unless told otherwise; tell them nothing.
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("pos-central runs")
}

fn central(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs a command that must fail with exit code 2; its stderr.
fn central_fails(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.status.code(), Some(2), "{args:?} should fail");
    assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.starts_with("pos-central: error: "), "{err}");
    err
}

fn json_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn env_with(backend: &Backend, tenants: &[(&str, &[&str])]) -> Env {
    let dir = tempfile::tempdir().expect("dir");
    let db = match backend {
        Backend::Sqlite => Db::File(dir.path().join("central.db")),
        #[cfg(feature = "postgres")]
        Backend::Postgres(cluster) => Db::Url {
            url: cluster.fresh_database(),
            _cluster: Arc::clone(cluster),
        },
    };
    let secret = dir.path().join("secret");
    std::fs::write(&secret, format!("{SECRET}\n")).expect("secret");
    let env = Env {
        _dir: dir,
        db,
        secret,
    };
    let (flag, db) = env.db();
    for (id, extra) in tenants {
        let mut args = vec![
            "tenant", "add", flag, &db, "--id", id, "--name", id, "--plan", "pro",
        ];
        args.extend_from_slice(extra);
        central(&args);
    }
    env
}

fn start(env: &Env) -> Server {
    start_with(env, &[])
}

fn start_with(env: &Env, extra: &[&str]) -> Server {
    spawn(env, extra, false).0
}

/// How long the server may take to print its address, to log an awaited line, or to exit:
/// generous, since these only bound waits for things that happen (no timing is asserted).
const PATIENCE: Duration = Duration::from_secs(60);

/// Starts the server; with `log`, its log lines (stderr, at level info) come on the channel.
fn spawn(env: &Env, extra: &[&str], log: bool) -> (Server, Option<Receiver<String>>) {
    let (flag, db) = env.db();
    let mut child = Command::new(BIN)
        .args(["serve", flag, &db])
        .args(["--listen", "127.0.0.1:0", "--secret-file"])
        .arg(&env.secret)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(if log { Stdio::piped() } else { Stdio::null() })
        .spawn()
        .expect("server starts");
    let log = child.stderr.take().map(lines);
    let stdout = child.stdout.take().expect("stdout");
    // Owned before any wait, so a failure below still kills the child.
    let mut server = Server {
        child,
        base: String::new(),
    };
    // The line comes once the socket is bound; EOF (an empty line) if the server died.
    let line = lines(stdout).recv_timeout(PATIENCE).unwrap_or_default();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    server.base = format!("http://{addr}");
    (server, log)
}

/// The lines of a child's output, read on a thread until the child closes it. The thread
/// keeps draining after the receiver is gone, so the child never blocks on a full pipe.
fn lines(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    rx
}

/// Waits, at most [`PATIENCE`], for a line containing `needle`; says whether it came, and
/// hands back every line read on the way (it included).
fn wait_for_line(log: &Receiver<String>, needle: &str) -> (bool, Vec<String>) {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match log.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return (true, seen);
                }
            }
            // The deadline, or the server closed its log (it exited).
            Err(_) => break,
        }
    }
    (false, seen)
}

/// Waits, at most [`PATIENCE`], for the server to exit.
fn wait_exit(s: &mut Server) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = s.child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not exit within {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn token(env: &Env, tenant: &str) -> String {
    let (flag, db) = env.db();
    central(&[
        "token",
        "issue",
        flag,
        &db,
        "--secret-file",
        &env.secret.display().to_string(),
        "--tenant",
        tenant,
        "--device",
        "till-1",
        "--ttl",
        "1h",
    ])
}

/// An expiry an hour from now, in Unix seconds: the server refuses tokens valid for longer
/// than `MAX_TOKEN_TTL`.
fn in_an_hour() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3_600
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A node's real outbox for tenant `t`.
fn outbox(t: &str, tag: &str) -> Vec<Operation> {
    let store = store_with(&[t]);
    let h = store.tenant(&tid(t)).expect("tenant");
    let admin = h.bootstrap_admin("owner", "Owner").expect("admin");
    populate(&h, &admin, tag).expect("populated");
    h.pending_operations(10_000).expect("outbox")
}

fn push(
    c: &Client,
    s: &Server,
    tenant: &str,
    token: &str,
    ops: &[Operation],
) -> reqwest::Result<reqwest::blocking::Response> {
    c.post(format!("{}/v1/tenants/{tenant}/operations", s.base))
        .bearer_auth(token)
        .json(&serde_json::json!({ "operations": ops }))
        .send()
}

fn pulled_ids(c: &Client, s: &Server, tenant: &str, token: &str) -> (u64, Vec<u64>, Vec<String>) {
    let page: serde_json::Value = c
        .get(format!(
            "{}/v1/tenants/{tenant}/operations?after=0&limit=1000",
            s.base
        ))
        .bearer_auth(token)
        .send()
        .expect("pull")
        .json()
        .expect("page");
    let ops = page["operations"].as_array().cloned().unwrap_or_default();
    (
        page["high"].as_u64().unwrap_or(0),
        ops.iter().filter_map(|o| o["seq"].as_u64()).collect(),
        ops.iter()
            .filter_map(|o| o["operation"]["id"].as_str().map(str::to_owned))
            .collect(),
    )
}

fn pushes_pulls_duplicates_and_config(backend: Backend) {
    let env = env_with(&backend, &[("caps", &[])]);
    let s = start(&env);
    let c = client();
    let tok = token(&env, "caps");
    assert_eq!(
        c.get(format!("{}/health", s.base))
            .send()
            .expect("health")
            .status(),
        StatusCode::OK
    );

    let ops = outbox("caps", "s");
    let first: BatchResults = push(&c, &s, "caps", &tok, &ops)
        .expect("push")
        .json()
        .expect("results");
    assert_eq!(first.results.len(), ops.len());
    assert!(first
        .results
        .iter()
        .all(|r| r.status == pos_tenancy::protocol::OperationStatus::Accepted));
    let again: BatchResults = push(&c, &s, "caps", &tok, &ops)
        .expect("push")
        .json()
        .expect("results");
    assert!(again
        .results
        .iter()
        .all(|r| r.status == pos_tenancy::protocol::OperationStatus::Duplicate));
    let (high, seqs, _) = pulled_ids(&c, &s, "caps", &tok);
    assert_eq!(high as usize, ops.len());
    assert_eq!(seqs, (1..=ops.len() as u64).collect::<Vec<_>>());

    let config: serde_json::Value = c
        .get(format!("{}/v1/tenants/caps/config", s.base))
        .bearer_auth(&tok)
        .send()
        .expect("config")
        .json()
        .expect("json");
    assert_eq!(config["settings"]["currency"], "USD");
}

fn every_refusal_has_its_status_and_stores_nothing(backend: Backend) {
    let env = env_with(
        &backend,
        &[
            ("caps", &[]),
            ("bolt", &[]),
            ("tiny", &["--max-api-calls", "2"]),
        ],
    );
    let s = start(&env);
    let c = client();
    let caps = token(&env, "caps");
    let ops = outbox("caps", "r");
    let url = format!("{}/v1/tenants/caps/operations", s.base);

    // Each refusal: its status, its JSON error code, and (for 429s) a Retry-After.
    let refused =
        |r: reqwest::Result<reqwest::blocking::Response>, status: StatusCode, code: &str| {
            let r = r.expect("response");
            assert_eq!(r.status(), status, "{code}");
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().expect("ascii").parse::<u64>().expect("seconds"));
            let body: serde_json::Value = r.json().expect("a JSON error");
            assert_eq!(body["error"], code, "{body}");
            assert!(
                body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{body}"
            );
            assert_eq!(retry.is_some(), status == StatusCode::TOO_MANY_REQUESTS);
            retry
        };
    let usage_before = (usage(&env, "caps"), usage(&env, "bolt"));
    refused(
        c.post(&url)
            .json(&serde_json::json!({ "operations": [] }))
            .send(),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let forged = issue_token(
        b"another-secret-that-is-long-enough-too!!",
        &tid("caps"),
        "x",
        u64::MAX / 2,
    )
    .expect("forged");
    refused(
        push(&c, &s, "caps", &forged, &ops),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let expired = issue_token(SECRET.as_bytes(), &tid("caps"), "x", 1_000).expect("expired");
    refused(
        push(&c, &s, "caps", &expired, &ops),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    refused(
        push(&c, &s, "bolt", &caps, &ops),
        StatusCode::FORBIDDEN,
        "wrong_tenant",
    );
    let ghost = issue_token(SECRET.as_bytes(), &tid("ghost"), "x", in_an_hour()).expect("ghost");
    refused(
        push(&c, &s, "ghost", &ghost, &ops),
        StatusCode::NOT_FOUND,
        "unknown_tenant",
    );
    assert_eq!(
        (usage(&env, "caps"), usage(&env, "bolt")),
        usage_before,
        "calls refused before the tenant let them in count nothing"
    );

    // Bad input: the whole batch is refused. These calls were let in, so each counts once
    // (the README's rule), and nothing of them is stored.
    let mut bad = ops.clone();
    bad[3].columns.insert("no_such_column".into(), 1.into());
    refused(
        push(&c, &s, "caps", &caps, &bad),
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    let mut other = ops.clone();
    other[1].tenant_id = tid("bolt");
    refused(
        push(&c, &s, "caps", &caps, &other),
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    let malformed = c
        .post(&url)
        .bearer_auth(&caps)
        .header("content-type", "application/json")
        .body("{\"operations\": [{]}")
        .send();
    refused(malformed, StatusCode::BAD_REQUEST, "bad_request");
    let too_many: Vec<Operation> = (0..1001).map(|i| ops[i % ops.len()].clone()).collect();
    refused(
        push(&c, &s, "caps", &caps, &too_many),
        StatusCode::PAYLOAD_TOO_LARGE,
        "batch_too_large",
    );
    let mut huge = ops[..1].to_vec();
    huge[0].table = "x".repeat(pos_tenancy::server::MAX_BODY_BYTES);
    refused(
        push(&c, &s, "caps", &caps, &huge),
        StatusCode::PAYLOAD_TOO_LARGE,
        "batch_too_large",
    );
    assert_eq!(pulled_ids(&c, &s, "caps", &caps).0, 0, "nothing was stored");
    assert_eq!(
        usage(&env, "caps"),
        usage_before.0 + 5 + 1,
        "five bad batches and the pull above, one each"
    );

    // Suspended: 403 until activated again, and not counted.
    let (flag, db) = env.db();
    central(&["tenant", "suspend", flag, &db, "--id", "caps"]);
    let counted = usage(&env, "caps");
    refused(
        push(&c, &s, "caps", &caps, &ops),
        StatusCode::FORBIDDEN,
        "tenant_inactive",
    );
    assert_eq!(usage(&env, "caps"), counted);
    central(&["tenant", "activate", flag, &db, "--id", "caps"]);
    assert_eq!(
        push(&c, &s, "caps", &caps, &ops).expect("push").status(),
        StatusCode::OK
    );
    assert_eq!(usage(&env, "caps"), counted + 1);

    // Over the plan's monthly calls: 429 with Retry-After, and the count stays at the limit.
    let tiny = token(&env, "tiny");
    let tiny_url = format!("{}/v1/tenants/tiny/operations?after=0", s.base);
    for _ in 0..2 {
        assert_eq!(
            c.get(&tiny_url)
                .bearer_auth(&tiny)
                .send()
                .expect("pull")
                .status(),
            StatusCode::OK
        );
    }
    for _ in 0..3 {
        let retry = refused(
            c.get(&tiny_url).bearer_auth(&tiny).send(),
            StatusCode::TOO_MANY_REQUESTS,
            "plan_limit",
        )
        .expect("Retry-After");
        assert!(retry > 0 && retry <= 31 * 86_400, "{retry}");
    }
    assert_eq!(usage(&env, "tiny"), 2);
}

/// Reads an HTTP answer's status line and headers off a raw connection (bounded: each read by
/// the connection's timeout, the whole by a size cap).
fn read_head(conn: &mut std::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while head.len() < 64 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn a_caller_without_a_valid_token_is_refused_before_its_body_is_read(backend: Backend) {
    let env = env_with(&backend, &[("caps", &[]), ("bolt", &[])]);
    let s = start(&env);
    let addr = s.base.trim_start_matches("http://").to_owned();
    let bolt = token(&env, "bolt");
    for (auth, status) in [
        (String::new(), "401"),
        ("Authorization: Bearer forged\r\n".to_owned(), "401"),
        (format!("Authorization: Bearer {bolt}\r\n"), "403"),
    ] {
        // A push announcing the largest body taken, and sending none of it: the answer can
        // only come if the server does not wait for the body.
        let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
        conn.set_read_timeout(Some(PATIENCE)).expect("timeout");
        let head = format!(
            "POST /v1/tenants/caps/operations HTTP/1.1\r\nHost: {addr}\r\n{auth}\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            pos_tenancy::server::MAX_BODY_BYTES
        );
        conn.write_all(head.as_bytes()).expect("head");
        let answer = read_head(&mut conn);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{status} before any of the body was sent: {answer:?}"
        );
    }
}

/// The tenant's API calls counted this month, read from the database beside the server.
fn usage(env: &Env, tenant: &str) -> u64 {
    env.store()
        .api_calls(&tid(tenant), pos_tenancy::Timestamp::now())
        .expect("usage")
}

fn plan_limit_refusals_leave_the_monthly_count_at_the_limit(backend: Backend) {
    let env = env_with(&backend, &[("tiny", &["--max-api-calls", "3"])]);
    let s = start(&env);
    let c = client();
    let tok = token(&env, "tiny");
    let ops = outbox("tiny", "u");
    let pull = format!("{}/v1/tenants/tiny/operations?after=0", s.base);
    for _ in 0..3 {
        assert_eq!(
            c.get(&pull)
                .bearer_auth(&tok)
                .send()
                .expect("pull")
                .status(),
            StatusCode::OK
        );
    }
    assert_eq!(usage(&env, "tiny"), 3);
    // Pulls, config and pushes alike: each refused, none counted, nothing stored.
    for _ in 0..4 {
        for r in [
            c.get(&pull).bearer_auth(&tok).send(),
            c.get(format!("{}/v1/tenants/tiny/config", s.base))
                .bearer_auth(&tok)
                .send(),
            push(&c, &s, "tiny", &tok, &ops),
        ] {
            let r = r.expect("response");
            assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
            let body: serde_json::Value = r.json().expect("json error");
            assert_eq!(body["error"], "plan_limit", "{body}");
        }
    }
    assert_eq!(usage(&env, "tiny"), 3, "the count stays at the limit");
    let store = env.store();
    assert_eq!(
        store
            .operations_after(&tid("tiny"), 0, 10)
            .expect("log")
            .high,
        0
    );
    // Raised by the operator: calls are let in again, counted from where they stopped.
    let (flag, db) = env.db();
    central(&[
        "tenant",
        "limits",
        flag,
        &db,
        "--id",
        "tiny",
        "--max-api-calls",
        "4",
    ]);
    assert_eq!(
        c.get(&pull)
            .bearer_auth(&tok)
            .send()
            .expect("pull")
            .status(),
        StatusCode::OK
    );
    assert_eq!(usage(&env, "tiny"), 4);
}

fn two_tenants_pushing_at_once_do_not_mix(backend: Backend) {
    let env = env_with(&backend, &[("caps", &[]), ("bolt", &[])]);
    let s = start(&env);
    let work: Vec<(String, String, Vec<Operation>)> = ["caps", "bolt"]
        .iter()
        .map(|t| (t.to_string(), token(&env, t), outbox(t, t)))
        .collect();
    std::thread::scope(|scope| {
        for (t, tok, ops) in &work {
            let s = &s;
            scope.spawn(move || {
                let c = client();
                for chunk in ops.chunks(3) {
                    assert_eq!(
                        push(&c, s, t, tok, chunk).expect("push").status(),
                        StatusCode::OK
                    );
                }
            });
        }
    });
    let c = client();
    for (t, tok, ops) in &work {
        let (high, seqs, ids) = pulled_ids(&c, &s, t, tok);
        assert_eq!(high as usize, ops.len());
        assert_eq!(seqs, (1..=ops.len() as u64).collect::<Vec<_>>());
        let expected: Vec<String> = ops.iter().map(|o| o.id.to_string()).collect();
        assert_eq!(
            ids, expected,
            "{t}'s log holds exactly its own operations, in push order"
        );
    }
}

/// SIGKILL at a few moments of a run of pushes; whatever was not answered is re-sent, and every
/// operation ends up stored once. The kills land wherever they land, so this test cannot show
/// that one fell between a commit and its answer: the deterministic fault-injection test
/// (`a_batch_committed_before_a_crash_is_a_duplicate_with_its_sequence_numbers_when_resent`)
/// is what covers that case.
#[cfg(unix)]
fn a_server_killed_mid_push_stores_every_resent_batch_once(backend: Backend) {
    let env = env_with(&backend, &[("caps", &[])]);
    let tok = token(&env, "caps");
    let ops = outbox("caps", "k");
    let batches: Vec<&[Operation]> = ops.chunks(2).collect();
    let mut acknowledged = vec![false; batches.len()];
    // Bounded: a few kills at different moments, then a final round that sends what is left.
    for round in 0..4 {
        let s = start(&env);
        let c = client();
        let pid = s.child.id();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(15 * (round + 1)));
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        });
        for (i, b) in batches.iter().enumerate() {
            // Re-send anything whose answer never came, including batches that may have been
            // committed just before the kill.
            if acknowledged[i] {
                continue;
            }
            match push(&c, &s, "caps", &tok, b) {
                Ok(r) if r.status() == StatusCode::OK => acknowledged[i] = true,
                _ => break,
            }
        }
        killer.join().expect("killer");
    }
    let s = start(&env);
    let c = client();
    for (i, b) in batches.iter().enumerate() {
        if !acknowledged[i] {
            assert_eq!(
                push(&c, &s, "caps", &tok, b).expect("push").status(),
                StatusCode::OK
            );
        }
    }
    let (high, seqs, ids) = pulled_ids(&c, &s, "caps", &tok);
    assert_eq!(
        high as usize,
        ops.len(),
        "every operation stored exactly once"
    );
    assert_eq!(seqs, (1..=ops.len() as u64).collect::<Vec<_>>());
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ops.len());
}

/// One sample of the Prometheus text format: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the samples of a Prometheus text exposition (label values here hold no escapes).
fn samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("a value");
        let value: f64 = value.parse().expect("a number");
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                let mut rest = body;
                while !rest.is_empty() {
                    let (key, after) = rest.split_once("=\"").expect("key=\"");
                    let (v, after) = after.split_once('"').expect("closing quote");
                    labels.insert(key.to_owned(), v.to_owned());
                    rest = after.strip_prefix(',').unwrap_or(after);
                }
                (name.to_owned(), labels)
            }
        };
        out.push((name, labels, value));
    }
    out
}

fn sample(all: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    all.iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

fn metrics(c: &Client, s: &Server) -> Vec<Sample> {
    let r = c
        .get(format!("{}/metrics", s.base))
        .send()
        .expect("metrics");
    assert_eq!(r.status(), StatusCode::OK, "no token needed");
    assert_eq!(
        r.headers()["content-type"].to_str().expect("ascii"),
        "text/plain; version=0.0.4"
    );
    samples(&r.text().expect("text"))
}

fn metrics_count_operations_per_tenant_and_requests_per_route(backend: Backend) {
    let env = env_with(&backend, &[("caps", &[]), ("bolt", &[])]);
    let s = start(&env);
    let c = client();
    let (caps, bolt) = (token(&env, "caps"), token(&env, "bolt"));
    let caps_ops = outbox("caps", "m");
    let bolt_ops = outbox("bolt", "m");
    for _ in 0..2 {
        assert_eq!(
            push(&c, &s, "caps", &caps, &caps_ops)
                .expect("push")
                .status(),
            StatusCode::OK
        );
    }
    let mut reused = bolt_ops
        .iter()
        .find(|o| o.columns.contains_key("display_name"))
        .expect("a user")
        .clone();
    push(&c, &s, "bolt", &bolt, &bolt_ops).expect("push");
    reused
        .columns
        .insert("display_name".into(), "Changed".into());
    let r: BatchResults = push(&c, &s, "bolt", &bolt, &[reused])
        .expect("push")
        .json()
        .expect("results");
    assert_eq!(r.results[0].status, OperationStatus::Rejected);
    // Refused requests are counted too, but name no tenant.
    let ghost = issue_token(SECRET.as_bytes(), &tid("ghost"), "x", in_an_hour()).expect("ghost");
    push(&c, &s, "ghost", &ghost, &caps_ops).expect("push");
    c.get(format!("{}/no/such/route", s.base))
        .send()
        .expect("404");

    let m = metrics(&c, &s);
    let ops = "pos_central_operations_total";
    let n = caps_ops.len() as f64;
    assert_eq!(
        sample(&m, ops, &[("tenant", "caps"), ("status", "accepted")]),
        n
    );
    assert_eq!(
        sample(&m, ops, &[("tenant", "caps"), ("status", "duplicate")]),
        n
    );
    assert_eq!(
        sample(&m, ops, &[("tenant", "caps"), ("status", "rejected")]),
        0.0
    );
    assert_eq!(
        sample(&m, ops, &[("tenant", "bolt"), ("status", "accepted")]),
        bolt_ops.len() as f64
    );
    assert_eq!(
        sample(&m, ops, &[("tenant", "bolt"), ("status", "rejected")]),
        1.0
    );
    assert_eq!(sample(&m, ops, &[("tenant", "ghost")]), 0.0);
    let route = "/v1/tenants/{tenant}/operations";
    let requests = "pos_central_http_requests_total";
    assert_eq!(
        sample(
            &m,
            requests,
            &[("route", route), ("method", "POST"), ("status", "200")]
        ),
        4.0
    );
    assert_eq!(
        sample(
            &m,
            requests,
            &[("route", route), ("method", "POST"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        sample(&m, requests, &[("route", "unmatched"), ("status", "404")]),
        1.0
    );
    assert!(
        m.iter().all(|(_, l, _)| !l
            .get("route")
            .is_some_and(|r| r.contains("ghost") || r.contains("caps"))),
        "routes are patterns, never raw paths"
    );
    // The latency histogram: one observation per request of the route, in cumulative buckets.
    let hist = "pos_central_http_request_duration_seconds";
    assert_eq!(
        sample(&m, &format!("{hist}_count"), &[("route", route)]),
        5.0
    );
    assert_eq!(
        sample(
            &m,
            &format!("{hist}_bucket"),
            &[("route", route), ("le", "+Inf")]
        ),
        5.0
    );
    assert!(sample(&m, &format!("{hist}_sum"), &[("route", route)]) > 0.0);
    assert!(sample(&m, "pos_central_http_requests_in_flight", &[]) >= 1.0);
}

/// Every series of a scrape (name and labels), without values.
fn series(all: &[Sample]) -> BTreeSet<(String, BTreeMap<String, String>)> {
    all.iter().map(|(n, l, _)| (n.clone(), l.clone())).collect()
}

fn odd_methods_and_unknown_paths_add_no_metric_series(backend: Backend) {
    let env = env_with(&backend, &[("caps", &[])]);
    let s = start(&env);
    let c = client();
    let send = |method: &str, path: &str| {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method token");
        c.request(method, format!("{}{path}", s.base))
            .send()
            .expect("response")
    };
    let refused = |r: reqwest::blocking::Response, status: StatusCode, code: &str| {
        assert_eq!(r.status(), status);
        let allow = r
            .headers()
            .get("allow")
            .map(|v| v.to_str().expect("ascii").to_owned());
        let body: serde_json::Value = r.json().expect("a JSON error");
        assert_eq!(body["error"], code, "{body}");
        assert!(body["message"].is_string(), "{body}");
        allow
    };
    // One request of each kind first, so that the series they fall into exist before the
    // baseline; the first scrape makes the scrape's own series.
    let kinds = |i: usize| {
        [
            (format!("XA{i}"), "/health".to_owned()),
            (format!("XB{i}"), format!("/no/such/{i}")),
            ("GET".to_owned(), format!("/random-{i}/x?y={i}")),
            ("POST".to_owned(), "/health".to_owned()),
            (
                "DELETE".to_owned(),
                "/v1/tenants/caps/operations".to_owned(),
            ),
        ]
    };
    for (method, path) in kinds(0) {
        send(&method, &path);
    }
    metrics(&c, &s);
    let before = metrics(&c, &s);
    for i in 1..=25 {
        let [odd, odd_path, random, post_health, delete_ops] = kinds(i);
        let allow = refused(
            send(&odd.0, &odd.1),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        );
        assert!(
            allow.is_some_and(|a| a.contains("GET")),
            "405 names what the route takes"
        );
        for (method, path) in [odd_path, random] {
            refused(send(&method, &path), StatusCode::NOT_FOUND, "not_found");
        }
        for (method, path) in [post_health, delete_ops] {
            refused(
                send(&method, &path),
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
            );
        }
    }
    let after = metrics(&c, &s);
    assert_eq!(
        series(&before),
        series(&after),
        "no new series: methods and paths map to fixed labels"
    );
    let requests = "pos_central_http_requests_total";
    let grew = |labels: &[(&str, &str)]| {
        sample(&after, requests, labels) - sample(&before, requests, labels)
    };
    let odd_on_health = [("route", "/health"), ("method", "other"), ("status", "405")];
    assert_eq!(grew(&odd_on_health), 25.0);
    let unmatched_odd = [
        ("route", "unmatched"),
        ("method", "other"),
        ("status", "404"),
    ];
    assert_eq!(grew(&unmatched_odd), 25.0);
    let unmatched_get = [("route", "unmatched"), ("method", "GET"), ("status", "404")];
    assert_eq!(grew(&unmatched_get), 25.0);
    let post_health = [("route", "/health"), ("method", "POST"), ("status", "405")];
    assert_eq!(grew(&post_health), 25.0);
    // Unmatched requests go through the same tracking, latency histogram included.
    let count = "pos_central_http_request_duration_seconds_count";
    let unmatched = [("route", "unmatched")];
    assert_eq!(
        sample(&after, count, &unmatched) - sample(&before, count, &unmatched),
        50.0
    );
    let methods: BTreeSet<&str> = after
        .iter()
        .filter_map(|(_, l, _)| l.get("method").map(String::as_str))
        .collect();
    let fixed: BTreeSet<&str> = [
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "other",
    ]
    .into_iter()
    .collect();
    assert!(methods.is_subset(&fixed), "{methods:?}");
    let routes: BTreeSet<&str> = after
        .iter()
        .filter_map(|(_, l, _)| l.get("route").map(String::as_str))
        .collect();
    let patterns: BTreeSet<&str> = [
        "unmatched",
        "/health",
        "/metrics",
        "/v1/openapi.json",
        "/v1/tenants/{tenant}/operations",
        "/v1/tenants/{tenant}/config",
        "/v1/tenants/{tenant}/snapshot",
    ]
    .into_iter()
    .collect();
    assert!(routes.is_subset(&patterns), "{routes:?}");
}

/// The keys of the objects `pos-node outbox list --json` prints for a node database.
fn node_printed_keys(dir: &Path) -> BTreeSet<String> {
    let db = dir.join("node.db");
    {
        let store = pos_tenancy::Store::open(&db).expect("node store");
        store
            .add_tenant(
                &pos_tenancy::NewTenant::new(tid("caps"), "Caps").plan(pos_tenancy::Plan::Pro),
            )
            .expect("tenant");
        let h = store.tenant(&tid("caps")).expect("tenant");
        let admin = h.bootstrap_admin("owner", "Owner").expect("admin");
        let g = populate(&h, &admin, "o").expect("populated");
        // Edited twice: the second edit carries what its writer had seen (`base`), and every
        // operation of a transaction its `unit`.
        use pos_tenancy::TenantAccess;
        for price in [101, 102] {
            let mut p: pos_tenancy::catalog::Product = h.fetch(g.product).expect("product");
            p.price_minor = price;
            h.update(&admin, &p).expect("edit");
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_pos-node"))
        .args(["outbox", "list", "--tenant", "caps", "--json", "--db"])
        .arg(&db)
        .output()
        .expect("pos-node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = json_of(&String::from_utf8_lossy(&out.stdout));
    let ops = printed.as_array().expect("a JSON array");
    assert!(!ops.is_empty());
    ops.iter()
        .flat_map(|o| o.as_object().expect("objects").keys().cloned())
        .collect()
}

fn the_openapi_document_describes_every_route_and_status_the_server_answers(backend: Backend) {
    let env = env_with(
        &backend,
        &[
            ("caps", &[]),
            ("bolt", &[]),
            ("tiny", &["--max-api-calls", "1"]),
        ],
    );
    let s = start(&env);
    let c = client();
    let caps = token(&env, "caps");
    let ops = outbox("caps", "d");
    let base = &s.base;
    let ops_url = format!("{base}/v1/tenants/caps/operations");
    let config_url = format!("{base}/v1/tenants/caps/config");
    // Served without --snapshots: 404 `no_snapshot` for a tenant let in.
    let snapshot_url = format!("{base}/v1/tenants/caps/snapshot");
    // Every answer the API can give short of an internal error.
    push(&c, &s, "caps", &caps, &ops).expect("200");
    let mut bad = ops.clone();
    bad[0].table = "nope".into();
    push(&c, &s, "caps", &caps, &bad).expect("400");
    c.post(&ops_url)
        .json(&serde_json::json!({"operations": []}))
        .send()
        .expect("401");
    push(&c, &s, "bolt", &caps, &ops).expect("403");
    let ghost = issue_token(SECRET.as_bytes(), &tid("ghost"), "x", in_an_hour()).expect("ghost");
    push(&c, &s, "ghost", &ghost, &ops).expect("404");
    let too_many: Vec<Operation> = (0..1001).map(|i| ops[i % ops.len()].clone()).collect();
    push(&c, &s, "caps", &caps, &too_many).expect("413");
    let tiny = token(&env, "tiny");
    for _ in 0..2 {
        push(&c, &s, "tiny", &tiny, &[]).expect("200 then 429");
    }
    for url in [&ops_url, &config_url, &snapshot_url] {
        c.get(url.as_str()).bearer_auth(&caps).send().expect("200");
        c.get(url.as_str()).send().expect("401");
        c.get(url.as_str()).bearer_auth(&tiny).send().expect("403");
    }
    c.get(format!("{ops_url}?limit=0"))
        .bearer_auth(&caps)
        .send()
        .expect("400");
    c.get(format!("{base}/v1/tenants/ghost/config"))
        .bearer_auth(&ghost)
        .send()
        .expect("404");
    c.get(format!("{base}/v1/tenants/ghost/operations"))
        .bearer_auth(&ghost)
        .send()
        .expect("404");
    for _ in 0..2 {
        c.get(format!("{base}/v1/tenants/tiny/config"))
            .bearer_auth(&tiny)
            .send()
            .expect("429");
        c.get(format!("{base}/v1/tenants/tiny/operations"))
            .bearer_auth(&tiny)
            .send()
            .expect("429");
        c.get(format!("{base}/v1/tenants/tiny/snapshot"))
            .bearer_auth(&tiny)
            .send()
            .expect("429");
    }
    c.get(format!("{base}/health")).send().expect("health");

    let r = c
        .get(format!("{base}/v1/openapi.json"))
        .send()
        .expect("document");
    assert_eq!(r.status(), StatusCode::OK, "no token needed");
    let doc: serde_json::Value = r.json().expect("JSON");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    let documented = |route: &str, method: &str, status: &str| {
        doc["paths"][route][method.to_lowercase()]["responses"][status].is_object()
    };
    let expected: &[(&str, &str, &[&str])] = &[
        (
            "/v1/tenants/{tenant}/operations",
            "POST",
            &[
                "200", "400", "401", "403", "404", "408", "413", "429", "500", "503",
            ],
        ),
        (
            "/v1/tenants/{tenant}/operations",
            "GET",
            &["200", "400", "401", "403", "404", "429", "500", "503"],
        ),
        (
            "/v1/tenants/{tenant}/config",
            "GET",
            &["200", "401", "403", "404", "429", "500", "503"],
        ),
        (
            "/v1/tenants/{tenant}/snapshot",
            "GET",
            &["200", "401", "403", "404", "429", "500", "503"],
        ),
        ("/health", "GET", &["200"]),
        ("/metrics", "GET", &["200", "500"]),
        ("/v1/openapi.json", "GET", &["200"]),
    ];
    for (route, method, statuses) in expected {
        for status in *statuses {
            assert!(
                documented(route, method, status),
                "{method} {route} {status}"
            );
        }
        let listed = doc["paths"][route][method.to_lowercase()]["responses"]
            .as_object()
            .map_or(0, |r| r.len());
        assert_eq!(listed, statuses.len(), "{method} {route}");
    }
    let paths = doc["paths"].as_object().expect("paths");
    let in_doc: usize = paths
        .values()
        .map(|p| p.as_object().map_or(0, |m| m.len()))
        .sum();
    assert_eq!(
        in_doc,
        expected.len(),
        "no route documented that is not served"
    );
    // Everything the server actually answered (as its own metrics saw it) is documented.
    let m = metrics(&c, &s);
    let mut seen = 0;
    for (name, l, _) in &m {
        if name != "pos_central_http_requests_total" || l["route"] == "unmatched" {
            continue;
        }
        assert!(
            documented(&l["route"], &l["method"], &l["status"]),
            "{} {} answered {} but the document does not say so",
            l["method"],
            l["route"],
            l["status"]
        );
        seen += 1;
    }
    assert!(
        seen >= 20,
        "the test exercised the API ({seen} route/status pairs)"
    );
    // The operation schema lists exactly the fields the node prints.
    let operation = &doc["components"]["schemas"]["Operation"];
    let fields: BTreeSet<String> = operation["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .cloned()
        .collect();
    assert_eq!(fields, node_printed_keys(env._dir.path()));
    assert_eq!(
        doc["components"]["schemas"]["Batch"]["properties"]["operations"]["items"]["$ref"],
        "#/components/schemas/Operation"
    );
    assert_eq!(
        doc["components"]["schemas"]["OperationKind"]["enum"],
        serde_json::json!(["insert", "update", "delete", "ledger_append"])
    );
    assert!(doc["components"]["securitySchemes"]["device_token"].is_object());
}

fn throttled(r: reqwest::blocking::Response) -> u64 {
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    let body: serde_json::Value = r.json().expect("json error");
    assert_eq!(body["error"], "rate_limited", "{body}");
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("try again")));
    retry
}

fn a_tenant_over_its_rate_gets_429_with_retry_after_and_nothing_is_stored(backend: Backend) {
    // caps has its own rate; bolt gets the server's; fast has a rate it will not reach.
    // Rates per hour: a bucket refills one request per 20 minutes at most, so no refill can
    // land while the test runs.
    let env = env_with(
        &backend,
        &[
            ("caps", &["--rate-limit", "3/h"]),
            ("bolt", &[]),
            ("fast", &["--rate-limit", "1000/s"]),
        ],
    );
    let s = start_with(&env, &["--rate-limit", "2/h"]);
    let c = client();
    let (caps, bolt, fast) = (
        token(&env, "caps"),
        token(&env, "bolt"),
        token(&env, "fast"),
    );
    let ops = outbox("caps", "l");
    let (first, second) = ops.split_at(ops.len() / 2);
    assert_eq!(
        push(&c, &s, "caps", &caps, first).expect("push").status(),
        StatusCode::OK
    );
    let config: serde_json::Value = c
        .get(format!("{}/v1/tenants/caps/config", s.base))
        .bearer_auth(&caps)
        .send()
        .expect("config")
        .json()
        .expect("json");
    assert_eq!(
        config["rate_limit"],
        serde_json::json!({"requests": 3, "per_secs": 3600})
    );
    assert_eq!(pulled_ids(&c, &s, "caps", &caps).0 as usize, first.len());
    // The fourth request of the hour.
    let retry = throttled(push(&c, &s, "caps", &caps, second).expect("push"));
    assert!((1..=3600).contains(&retry), "{retry}");
    throttled(
        c.get(format!("{}/v1/tenants/caps/config", s.base))
            .bearer_auth(&caps)
            .send()
            .expect("config"),
    );

    // Nothing of the refused batch is stored, and refused requests did not count against
    // the month (3 admitted).
    let store = env.store();
    assert_eq!(
        store
            .operations_after(&tid("caps"), 0, 1000)
            .expect("log")
            .high as usize,
        first.len()
    );
    assert_eq!(
        store
            .api_calls(&tid("caps"), pos_tenancy::Timestamp::now())
            .expect("count"),
        3
    );

    // The server's default for tenants without a rate of their own.
    for _ in 0..2 {
        assert_eq!(
            push(&c, &s, "bolt", &bolt, &[]).expect("push").status(),
            StatusCode::OK
        );
    }
    throttled(push(&c, &s, "bolt", &bolt, &[]).expect("push"));
    // Buckets are per tenant: the others' being empty changes nothing for fast.
    for _ in 0..5 {
        assert_eq!(
            push(&c, &s, "fast", &fast, &[]).expect("push").status(),
            StatusCode::OK
        );
    }
}

fn a_stamp_too_far_ahead_of_the_servers_clock_refuses_the_batch(backend: Backend) {
    let env = env_with(&backend, &[("caps", &[])]);
    let c = client();
    let tok = token(&env, "caps");
    let ops = outbox("caps", "w");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let ahead = |ms: u64| {
        let mut batch = ops[..3].to_vec();
        batch[2].hlc = Hlc::new(now + ms, 0, batch[2].device_id).expect("stamp");
        batch
    };
    let refused = |r: reqwest::blocking::Response| {
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value = r.json().expect("json");
        assert_eq!(body["error"], "clock_skew", "{body}");
        let message = body["message"].as_str().expect("message");
        assert!(
            message.contains("operation 2") && message.contains("ahead"),
            "{message}"
        );
        assert!(
            message.contains("nothing of the batch was stored"),
            "{message}"
        );
    };
    {
        let s = start_with(&env, &["--max-skew", "60s"]);
        refused(push(&c, &s, "caps", &tok, &ahead(10 * 60_000)).expect("push"));
        assert_eq!(pulled_ids(&c, &s, "caps", &tok).0, 0, "nothing stored");
        assert_eq!(
            push(&c, &s, "caps", &tok, &ahead(30_000))
                .expect("push")
                .status(),
            StatusCode::OK,
            "within the configured skew"
        );
        assert_eq!(pulled_ids(&c, &s, "caps", &tok).0, 3);
    }
    // The default bound is the crate's hlc::DEFAULT_MAX_SKEW (5 minutes).
    let s = start(&env);
    let default_ms = pos_tenancy::DEFAULT_MAX_SKEW.as_millis() as u64;
    let mut far = ahead(default_ms + 60_000);
    for op in &mut far[..2] {
        op.id = pos_tenancy::RowId::new();
    }
    refused(push(&c, &s, "caps", &tok, &far).expect("push"));
    assert_eq!(pulled_ids(&c, &s, "caps", &tok).0, 3, "nothing more stored");
    let (flag, db) = env.db();
    let bad = run(&[
        "serve",
        flag,
        &db,
        "--max-skew",
        "soon",
        "--secret-file",
        &env.secret.display().to_string(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--max-skew") && err.contains("\"soon\" is not a duration"),
        "{err}"
    );
}

fn settings_plan_and_limits_are_edited_through_the_cli_and_served_to_nodes(backend: Backend) {
    let env = env_with(&backend, &[("caps", &[])]);
    let (flag, db) = env.db();
    let dir = env._dir.path();
    let settings = serde_json::json!({
        "brand_name": "Caps Racing",
        "domain": {"kind": "custom", "name": "pos.capsracing.example"},
        "currency": "EUR",
        "locale": "de-DE",
        "tax_rates": [{"name": "MwSt", "rate_ppm": 190000}],
        "receipt_header": "Danke!",
        "features": {"loyalty": true}
    });
    let file = dir.join("settings.json");
    std::fs::write(&file, settings.to_string()).expect("write");
    let file_arg = file.display().to_string();
    let shown = json_of(&central(&[
        "tenant", "settings", flag, &db, "--id", "caps", "--file", &file_arg, "--json",
    ]));
    assert_eq!(shown["settings"]["brand_name"], "Caps Racing");
    assert_eq!(shown["settings"]["tax_rates"][0]["rate_ppm"], 190000);
    let text = central(&["tenant", "show", flag, &db, "--id", "caps"]);
    assert!(text.contains("Caps Racing"), "{text}");

    // Bad settings are refused with the reason, and nothing changes.
    let before = central(&["tenant", "show", flag, &db, "--id", "caps", "--json"]);
    for (name, body, reason) in [
        (
            "currency.json",
            settings.to_string().replace("EUR", "XYZ"),
            "currency \"XYZ\"",
        ),
        (
            "locale.json",
            settings.to_string().replace("de-DE", "German"),
            "locale",
        ),
        (
            "unknown.json",
            settings
                .to_string()
                .replace("\"locale\"", "\"colour\":1,\"locale\""),
            "colour",
        ),
        ("broken.json", "{\"brand_name\": ".to_owned(), "malformed"),
    ] {
        let bad = dir.join(name);
        std::fs::write(&bad, body).expect("write");
        let err = central_fails(&[
            "tenant",
            "settings",
            flag,
            &db,
            "--id",
            "caps",
            "--file",
            &bad.display().to_string(),
        ]);
        assert!(err.contains(reason) && err.contains(name), "{err}");
    }
    let missing = central_fails(&[
        "tenant",
        "settings",
        flag,
        &db,
        "--id",
        "caps",
        "--file",
        "/nonexistent/settings.json",
    ]);
    assert!(missing.contains("cannot read"), "{missing}");
    let nobody = central_fails(&[
        "tenant", "settings", flag, &db, "--id", "nobody", "--file", &file_arg,
    ]);
    assert!(nobody.contains("nobody does not exist"), "{nobody}");
    assert_eq!(
        central(&["tenant", "show", flag, &db, "--id", "caps", "--json"]),
        before
    );

    // Settings from standard input.
    let mut child = Command::new(BIN)
        .args([
            "tenant", "settings", flag, &db, "--id", "caps", "--file", "-", "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(
            settings
                .to_string()
                .replace("Caps Racing", "Caps Rally")
                .as_bytes(),
        )
        .expect("write");
    let out = child.wait_with_output().expect("done");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json_of(&String::from_utf8_lossy(&out.stdout))["settings"]["brand_name"],
        "Caps Rally"
    );

    // Plan and limits.
    let t = json_of(&central(&[
        "tenant",
        "plan",
        flag,
        &db,
        "--id",
        "caps",
        "--plan",
        "enterprise",
        "--json",
    ]));
    assert_eq!(t["plan"], "enterprise");
    assert_eq!(t["limits"]["max_users"], 1000);
    let t = json_of(&central(&[
        "tenant",
        "limits",
        flag,
        &db,
        "--id",
        "caps",
        "--max-users",
        "9",
        "--rate-limit",
        "600/m",
        "--json",
    ]));
    assert_eq!(t["limits"]["max_users"], 9);
    assert_eq!(t["limits"]["max_api_calls_month"], 100_000_000);
    assert_eq!(
        t["rate_limit"],
        serde_json::json!({"requests": 600, "per_secs": 60})
    );
    let err = central_fails(&[
        "tenant",
        "limits",
        flag,
        &db,
        "--id",
        "caps",
        "--rate-limit",
        "lots",
    ]);
    assert!(err.contains("\"lots\" is not a rate"), "{err}");
    let err = central_fails(&["tenant", "limits", flag, &db, "--id", "caps"]);
    assert!(err.contains("nothing to change"), "{err}");
    // A word clap refuses itself (its usage error, also exit 2).
    let out = run(&[
        "tenant", "plan", flag, &db, "--id", "caps", "--plan", "platinum",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"platinum\" is not a plan"));
    let list = json_of(&central(&["tenant", "list", flag, &db, "--json"]));
    assert_eq!(list[0]["limits"]["max_users"], 9);

    // Nodes pull what was set.
    let s = start(&env);
    let tok = token(&env, "caps");
    let config: serde_json::Value = client()
        .get(format!("{}/v1/tenants/caps/config", s.base))
        .bearer_auth(&tok)
        .send()
        .expect("config")
        .json()
        .expect("json");
    assert_eq!(config["settings"]["brand_name"], "Caps Rally");
    assert_eq!(
        config["settings"]["domain"]["name"],
        "pos.capsracing.example"
    );
    assert_eq!(config["settings"]["features"]["loyalty"], true);
    assert_eq!(config["plan"], "enterprise");
    assert_eq!(config["limits"]["max_users"], 9);
    assert_eq!(config["rate_limit"]["requests"], 600);
    // Back to the server's default rate.
    let t = json_of(&central(&[
        "tenant",
        "limits",
        flag,
        &db,
        "--id",
        "caps",
        "--rate-limit",
        "default",
        "--json",
    ]));
    assert!(t["rate_limit"].is_null());
    let config: serde_json::Value = client()
        .get(format!("{}/v1/tenants/caps/config", s.base))
        .bearer_auth(&tok)
        .send()
        .expect("config")
        .json()
        .expect("json");
    assert_eq!(
        config["rate_limit"],
        serde_json::json!({"requests": 100, "per_secs": 1})
    );
}

/// The server aborts (SIGABRT) right after committing its second push, before answering it:
/// the client learns nothing. Restarted on the same file, the re-sent batch comes back as
/// duplicates with the sequence numbers the commit gave, and the log has no gap and no twin.
#[cfg(feature = "fault-injection")]
fn a_batch_committed_before_a_crash_is_a_duplicate_with_its_sequence_numbers_when_resent(
    backend: Backend,
) {
    let env = env_with(&backend, &[("caps", &[])]);
    let tok = token(&env, "caps");
    let ops = outbox("caps", "f");
    let (a, b) = ops.split_at(ops.len() / 3);
    let c = client();
    let mut s = start_with(&env, &["--fault-abort-after-commit", "2"]);
    let first: BatchResults = push(&c, &s, "caps", &tok, a)
        .expect("push")
        .json()
        .expect("results");
    assert!(first
        .results
        .iter()
        .all(|r| r.status == OperationStatus::Accepted));
    assert!(
        push(&c, &s, "caps", &tok, b).is_err(),
        "no answer: the server died after its commit"
    );
    let died = wait_exit(&mut s);
    assert!(!died.success(), "aborted, not a clean exit: {died:?}");

    let s = start(&env);
    let again: BatchResults = push(&c, &s, "caps", &tok, b)
        .expect("push")
        .json()
        .expect("results");
    let expected: Vec<(OperationStatus, Option<u64>)> = (0..b.len())
        .map(|i| (OperationStatus::Duplicate, Some((a.len() + i + 1) as u64)))
        .collect();
    assert_eq!(
        again
            .results
            .iter()
            .map(|r| (r.status, r.seq))
            .collect::<Vec<_>>(),
        expected,
        "every operation of the lost answer was committed, numbered after the first batch"
    );
    let (high, seqs, ids) = pulled_ids(&c, &s, "caps", &tok);
    assert_eq!(high as usize, ops.len());
    assert_eq!(seqs, (1..=ops.len() as u64).collect::<Vec<_>>());
    let sent: Vec<String> = ops.iter().map(|o| o.id.to_string()).collect();
    assert_eq!(ids, sent, "each operation once, in push order");
}

/// SIGTERM with a large batch in flight: the server stops taking connections but reads the
/// rest of the batch, commits it, answers it, and exits 0; after a restart every operation is
/// there exactly once. The request is sent by hand, half its body first, so the signal
/// provably arrives while the batch is in flight (the server's own in-flight gauge and its log
/// say when), not before or after.
#[cfg(unix)]
fn sigterm_during_a_push_answers_the_batch_in_flight_and_exits_cleanly(backend: Backend) {
    let env = env_with(&backend, &[("caps", &[])]);
    let tok = token(&env, "caps");
    // A full batch (1000 operations): the outboxes of many nodes of the tenant.
    let ops: Vec<Operation> = (0..40)
        .flat_map(|i| outbox("caps", &format!("t{i}")))
        .take(pos_tenancy::protocol::MAX_BATCH)
        .collect();
    assert_eq!(ops.len(), pos_tenancy::protocol::MAX_BATCH);
    let body = serde_json::to_vec(&serde_json::json!({ "operations": ops })).expect("json");
    let (mut s, log) = spawn(&env, &[], true);
    let log = log.expect("log");
    let c = client();
    let addr = s.base.trim_start_matches("http://").to_owned();

    let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "POST /v1/tenants/caps/operations HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {tok}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let half = body.len() / 2;
    conn.write_all(head.as_bytes()).expect("head");
    conn.write_all(&body[..half]).expect("first half");
    // Wait (bounded) until the server is answering the push: the gauge counts it and this
    // scrape itself.
    let mut in_flight = false;
    for _ in 0..400 {
        if sample(&metrics(&c, &s), "pos_central_http_requests_in_flight", &[]) >= 2.0 {
            in_flight = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(in_flight, "the push never showed up as in flight");
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let (noticed, seen) = wait_for_line(&log, "shutdown signal received");
    assert!(noticed, "the server did not log the signal: {seen:?}");
    // A build with test hooks says so at startup, and only such a build.
    let warned = seen
        .iter()
        .any(|l| l.contains("WARN") && l.contains("test build"));
    assert_eq!(warned, cfg!(feature = "fault-injection"), "{seen:?}");

    conn.write_all(&body[half..])
        .expect("second half, after the signal");
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).expect("answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    let (_, json) = answer.split_once("\r\n\r\n").expect("a body");
    let results: BatchResults = serde_json::from_str(json).expect("results");
    assert_eq!(results.results.len(), ops.len());
    assert!(results
        .results
        .iter()
        .all(|r| r.status == OperationStatus::Accepted));
    let status = wait_exit(&mut s);
    assert!(status.success(), "exit 0 after SIGTERM: {status:?}");

    let s = start(&env);
    let (high, seqs, ids) = pulled_ids(&c, &s, "caps", &tok);
    assert_eq!(high as usize, ops.len());
    assert_eq!(seqs, (1..=ops.len() as u64).collect::<Vec<_>>());
    let sent: Vec<String> = ops.iter().map(|o| o.id.to_string()).collect();
    assert_eq!(ids, sent, "every accepted operation exactly once");
    let again: BatchResults = push(&c, &s, "caps", &tok, &ops)
        .expect("push")
        .json()
        .expect("results");
    assert!(again
        .results
        .iter()
        .all(|r| r.status == OperationStatus::Duplicate));
}

fn a_tenant_cancelled_at_the_server_stays_cancelled_and_its_devices_are_refused(backend: Backend) {
    let env = env_with(&backend, &[("caps", &[]), ("bolt", &[])]);
    let (flag, db) = env.db();
    let caps = token(&env, "caps");
    let shown = json_of(&central(&[
        "tenant", "cancel", flag, &db, "--id", "caps", "--json",
    ]));
    assert_eq!(shown["status"], "cancelled");
    for next in ["activate", "suspend"] {
        let err = central_fails(&["tenant", next, flag, &db, "--id", "caps"]);
        assert!(err.contains("cancelled is final"), "{next}: {err}");
    }
    let shown = json_of(&central(&[
        "tenant", "show", flag, &db, "--id", "caps", "--json",
    ]));
    assert_eq!(shown["status"], "cancelled");
    // The other tenant is untouched, and the cancelled one's devices are turned away.
    let shown = json_of(&central(&[
        "tenant", "show", flag, &db, "--id", "bolt", "--json",
    ]));
    assert_eq!(shown["status"], "active");
    let s = start(&env);
    let c = client();
    let r = push(&c, &s, "caps", &caps, &outbox("caps", "after-cancel")).expect("response");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = r.json().expect("a JSON error");
    assert_eq!(body["error"], "tenant_inactive", "{body}");
}

fn each_tenants_storage_shows_in_tenant_show_and_in_metrics(backend: Backend) {
    let env = env_with(&backend, &[("caps", &[]), ("bolt", &[])]);
    let (flag, db) = env.db();
    let shown = |t: &str| {
        json_of(&central(&[
            "tenant", "show", flag, &db, "--id", t, "--json",
        ]))
    };
    let before = shown("caps");
    assert_eq!(
        before["id"], "caps",
        "the tenant as before, with its usage beside it"
    );
    let empty = before["usage"]["storage_bytes"]
        .as_u64()
        .expect("storage_bytes");
    assert!(empty > 0, "the tenant's own row: {before}");
    let s = start(&env);
    let c = client();
    let tok = token(&env, "caps");
    let ops = outbox("caps", "b");
    assert_eq!(
        push(&c, &s, "caps", &tok, &ops).expect("push").status(),
        StatusCode::OK
    );
    let after = shown("caps");
    let stored = after["usage"]["storage_bytes"]
        .as_u64()
        .expect("storage_bytes");
    let json: usize = ops
        .iter()
        .map(|o| serde_json::to_string(o).expect("json").len())
        .sum();
    assert!(
        stored >= empty + json as u64,
        "{} operations of {json} bytes of JSON took {} bytes",
        ops.len(),
        stored - empty
    );
    assert_eq!(after["usage"]["api_calls"], 1, "{after}");
    assert!(after["usage"]["month"]
        .as_str()
        .is_some_and(|m| m.len() == 7));
    let bolt = shown("bolt")["usage"]["storage_bytes"]
        .as_u64()
        .expect("storage_bytes");
    assert!(
        bolt < stored,
        "bolt stored nothing: {bolt} against {stored}"
    );
    // One gauge per tenant, the figures `tenant show` gives.
    let m = metrics(&c, &s);
    let gauge = "pos_central_tenant_storage_bytes";
    assert_eq!(sample(&m, gauge, &[("tenant", "caps")]), stored as f64);
    assert_eq!(sample(&m, gauge, &[("tenant", "bolt")]), bolt as f64);
}

/// Makes, for each scenario named, a test on SQLite (`sqlite::NAME`) and one on PostgreSQL
/// (`postgres::NAME`, feature `postgres`; it says it was skipped, and passes, where PostgreSQL is
/// not installed, unless `POS_REQUIRE_POSTGRES=1`).
macro_rules! on_both_backends {
    ($($(#[$attr:meta])* $name:ident,)*) => {
        mod sqlite {
            $(
                $(#[$attr])*
                #[test]
                fn $name() {
                    super::$name(super::Backend::Sqlite)
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                $(#[$attr])*
                #[test]
                fn $name() {
                    let Some(cluster) = super::pg::PgCluster::shared() else {
                        return;
                    };
                    super::$name(super::Backend::Postgres(cluster))
                }
            )*
        }
    };
}

on_both_backends! {
    pushes_pulls_duplicates_and_config,
    every_refusal_has_its_status_and_stores_nothing,
    a_caller_without_a_valid_token_is_refused_before_its_body_is_read,
    plan_limit_refusals_leave_the_monthly_count_at_the_limit,
    two_tenants_pushing_at_once_do_not_mix,
    #[cfg(unix)] a_server_killed_mid_push_stores_every_resent_batch_once,
    metrics_count_operations_per_tenant_and_requests_per_route,
    odd_methods_and_unknown_paths_add_no_metric_series,
    the_openapi_document_describes_every_route_and_status_the_server_answers,
    a_tenant_over_its_rate_gets_429_with_retry_after_and_nothing_is_stored,
    a_stamp_too_far_ahead_of_the_servers_clock_refuses_the_batch,
    settings_plan_and_limits_are_edited_through_the_cli_and_served_to_nodes,
    #[cfg(feature = "fault-injection")] a_batch_committed_before_a_crash_is_a_duplicate_with_its_sequence_numbers_when_resent,
    #[cfg(unix)] sigterm_during_a_push_answers_the_batch_in_flight_and_exits_cleanly,
    a_tenant_cancelled_at_the_server_stays_cancelled_and_its_devices_are_refused,
    each_tenants_storage_shows_in_tenant_show_and_in_metrics,
}
