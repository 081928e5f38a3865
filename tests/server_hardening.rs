//! The central server against hostile and careless clients: slow request heads and bodies, a
//! full connection table, a shutdown with such connections open, oversized requests, tokens
//! that live too long or are not tokens, pages of large operations, limits a backend cannot
//! store, and a node's database given to `pos-central`. The real binary where the behaviour
//! is its configuration (timeouts, signals, the CLI); the library's `serve` in process where a
//! test needs bounds shorter than the real ones. Every wait is bounded.
#![cfg(feature = "server")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pos_tenancy::protocol::{OperationKind, MAX_PAGE};
use pos_tenancy::server::{
    app, issue_token, serve, AppState, ServeOptions, Stopped, HEADER_READ_TIMEOUT, MAX_TOKEN_TTL,
};
use pos_tenancy::{CentralStore, Hlc, NewTenant, Operation, Plan, RowId, SqliteCentral};
use pos_tenancy::{MAX_OPERATION_BYTES, MAX_PAGE_BYTES};

const SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";
const BIN: &str = env!("CARGO_BIN_EXE_pos-central");
const NODE_BIN: &str = env!("CARGO_BIN_EXE_pos-node");
/// The most any wait here lasts: generous, it only bounds waits for things that happen.
const PATIENCE: Duration = Duration::from_secs(60);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn token_for(tenant: &str, exp: u64) -> String {
    issue_token(
        SECRET.as_bytes(),
        &tenant.parse().expect("tenant id"),
        "till-1",
        exp,
    )
    .expect("token")
}

// ---- the real binary ------------------------------------------------------------------------

struct Server {
    child: Child,
    addr: String,
    log: std::sync::mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Env {
    dir: tempfile::TempDir,
    db: PathBuf,
    secret: PathBuf,
}

impl Env {
    fn db(&self) -> String {
        self.db.display().to_string()
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("POS_CENTRAL_SECRET")
        .output()
        .expect("pos-central runs")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs a command that must fail with exit code 2 and print nothing on stdout; its stderr.
fn fails(args: &[&str]) -> String {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?} should fail: {err}");
    assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    assert!(err.starts_with("pos-central: error: "), "{err}");
    err
}

/// A central database with `tenants` (id and extra `tenant add` flags) and a secret file.
fn env_with(tenants: &[(&str, &[&str])]) -> Env {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("central.db");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, format!("{SECRET}\n")).expect("secret");
    let dbs = db.display().to_string();
    // `serve` only opens a database that exists; `init` makes one even with no tenant.
    ok(&["init", "--db", &dbs]);
    for (id, extra) in tenants {
        let mut args = vec!["tenant", "add", "--db", &dbs, "--id", id, "--name", id];
        args.extend_from_slice(extra);
        ok(&args);
    }
    Env { dir, db, secret }
}

/// Starts `pos-central serve` on a free loopback port; its log (stderr, at level info) comes
/// on a channel.
fn start(env: &Env) -> Server {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--db",
            &env.db(),
            "--listen",
            "127.0.0.1:0",
            "--secret-file",
        ])
        .arg(&env.secret)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    let log = lines(child.stderr.take().expect("stderr"));
    let stdout = lines(child.stdout.take().expect("stdout"));
    let mut server = Server {
        child,
        addr: String::new(),
        log,
    };
    let line = stdout.recv_timeout(PATIENCE).unwrap_or_default();
    server.addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    server
}

/// The lines of a child's output, read on a thread that keeps draining it.
fn lines(stream: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    rx
}

/// Waits, at most [`PATIENCE`], for a log line containing `needle`.
fn wait_for_line(log: &std::sync::mpsc::Receiver<String>, needle: &str) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match log.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

fn connect(addr: &str) -> TcpStream {
    let conn = TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(PATIENCE)).expect("timeout");
    conn
}

/// Reads until the server closes the connection (or resets it, or the read timeout passes);
/// what arrived, and whether the connection ended (rather than the timeout passing).
fn read_until_closed(conn: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match conn.read(&mut chunk) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (got, false)
            }
            // Reset: closed too.
            Err(_) => return (got, true),
        }
    }
}

/// One raw HTTP/1.1 exchange on a fresh connection that the server closes afterwards: the
/// status code and the JSON body.
fn raw_exchange(addr: &str, request: &[u8]) -> (u16, serde_json::Value) {
    let mut conn = connect(addr);
    // The server may answer and close before all of an oversized request is taken.
    let _ = conn.write_all(request);
    let (answer, closed) = read_until_closed(&mut conn);
    assert!(closed, "the server closed the connection after its answer");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("an HTTP answer: {text:?}"));
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {head:?}"));
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    (status, body)
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A request's answer: status and JSON body.
fn answer(r: reqwest::Result<reqwest::blocking::Response>) -> (u16, serde_json::Value) {
    let r = r.expect("an answer");
    let status = r.status().as_u16();
    (status, r.json().expect("a JSON body"))
}

fn message(body: &serde_json::Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

#[test]
fn a_half_sent_request_head_is_cut_off_within_the_header_timeout() {
    let env = env_with(&[]);
    let s = start(&env);
    let mut conn = connect(&s.addr);
    conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .expect("half a head");
    let sent = Instant::now();
    let (got, closed) = read_until_closed(&mut conn);
    let waited = sent.elapsed();
    assert!(closed, "the connection is closed, not kept open");
    assert!(got.is_empty(), "no answer to half a request");
    assert!(
        waited < HEADER_READ_TIMEOUT + Duration::from_secs(5),
        "closed after {waited:?}, the bound is {HEADER_READ_TIMEOUT:?}"
    );

    // A kept-alive connection waiting for its next request is bounded the same way.
    let mut conn = connect(&s.addr);
    conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("a request");
    let sent = Instant::now();
    let (got, closed) = read_until_closed(&mut conn);
    assert!(closed && String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert!(sent.elapsed() < HEADER_READ_TIMEOUT + Duration::from_secs(5));
}

#[test]
fn sigterm_with_slow_and_idle_connections_open_exits_promptly() {
    let env = env_with(&[]);
    let mut s = start(&env);
    // One that sent half a head, one idle after a request, one that sent nothing.
    let mut half = connect(&s.addr);
    half.write_all(b"POST /v1/tenants/caps/operations HTTP/1.1\r\nHost: x\r\n")
        .expect("half a head");
    let mut idle = connect(&s.addr);
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("a request");
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).expect("an answer");
    assert_eq!(&head, b"HTTP/1.1 200");
    let _silent = connect(&s.addr);

    let signalled = Instant::now();
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let status = loop {
        if let Some(status) = s.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            signalled.elapsed() < PATIENCE,
            "the server did not exit within {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = signalled.elapsed();
    assert!(status.success(), "exit 0 after SIGTERM: {status:?}");
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM took {took:?} with only slow and idle connections open"
    );
    assert!(wait_for_line(&s.log, "shutdown signal received"));
    let (_, closed) = read_until_closed(&mut half);
    assert!(closed, "the half-sent request was closed");
}

#[test]
fn hypers_own_error_answers_carry_a_json_error() {
    let env = env_with(&[]);
    let s = start(&env);
    let big_header = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let (status, body) = raw_exchange(&s.addr, big_header.as_bytes());
    assert_eq!(
        (status, body["error"].as_str()),
        (431, Some("headers_too_large"))
    );
    assert!(message(&body).contains("headers"), "{body}");
    let many_headers = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..150)
            .map(|i| format!("X-{i}: 1\r\n"))
            .collect::<String>()
    );
    let (status, body) = raw_exchange(&s.addr, many_headers.as_bytes());
    assert_eq!(
        (status, body["error"].as_str()),
        (431, Some("headers_too_large"))
    );
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let (status, body) = raw_exchange(&s.addr, long_uri.as_bytes());
    assert_eq!(
        (status, body["error"].as_str()),
        (414, Some("uri_too_long"))
    );
    assert!(message(&body).contains("URI"), "{body}");
    let (status, body) = raw_exchange(&s.addr, b"G@T /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
    // The server still answers.
    let (status, _) = answer(client().get(format!("http://{}/health", s.addr)).send());
    assert_eq!(status, 200);
}

#[test]
fn token_lifetimes_are_bounded_when_issued_and_when_used() {
    let env = env_with(&[("caps", &["--plan", "pro"])]);
    let issue = |ttl: &str| {
        vec![
            "token".to_owned(),
            "issue".into(),
            "--db".into(),
            env.db(),
            "--secret-file".into(),
            env.secret.display().to_string(),
            "--tenant".into(),
            "caps".into(),
            "--device".into(),
            "till-1".into(),
            "--ttl".into(),
            ttl.to_owned(),
        ]
    };
    let zero = issue("0s");
    let err = fails(&args(&zero));
    assert!(err.contains("already expired"), "{err}");
    for long in ["366d", "18446744073709551615s", "9000h"] {
        let v = issue(long);
        let err = fails(&args(&v));
        assert!(
            err.contains("longer than a device token may live") && err.contains("365d"),
            "{long}: {err}"
        );
    }
    let year = issue("365d");
    let token = ok(&args(&year));
    assert!(!token.is_empty());

    let s = start(&env);
    let c = client();
    let pull = |token: &str| {
        answer(
            c.get(format!(
                "http://{}/v1/tenants/caps/operations?after=0",
                s.addr
            ))
            .bearer_auth(token)
            .send(),
        )
    };
    assert_eq!(pull(&token).0, 200, "a token of a year is taken");
    let day = 86_400;
    assert_eq!(pull(&token_for("caps", now_secs() + 364 * day)).0, 200);
    for exp in [now_secs() + 400 * day, u64::MAX / 2] {
        let (status, body) = pull(&token_for("caps", exp));
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthorized"))
        );
        assert!(
            message(&body).contains("longer than this server accepts")
                && message(&body).contains(&format!("{}", MAX_TOKEN_TTL.as_secs() / day)),
            "{body}"
        );
    }
}

#[test]
fn the_bearer_scheme_is_case_insensitive_and_token_errors_speak_plainly() {
    use crate::base64_url as b64;
    let env = env_with(&[("caps", &["--plan", "pro"])]);
    let s = start(&env);
    let c = client();
    let url = format!("http://{}/v1/tenants/caps/config", s.addr);
    let token = token_for("caps", now_secs() + 3_600);
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let (status, body) = answer(
            c.get(&url)
                .header("authorization", format!("{scheme}  {token}"))
                .send(),
        );
        assert_eq!(status, 200, "{scheme}: {body}");
    }

    let claims = b64::encode(
        format!(
            r#"{{"tenant":"caps","device":"x","exp":{}}}"#,
            now_secs() + 3_600
        )
        .as_bytes(),
    );
    let unsigned = format!(
        "{}.{claims}.",
        b64::encode(br#"{"alg":"none","typ":"JWT"}"#)
    );
    let rs256 = format!(
        "{}.{claims}.c2ln",
        b64::encode(br#"{"alg":"RS256","typ":"JWT"}"#)
    );
    let no_claims = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({ "who": "me", "exp": now_secs() + 3_600 }),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("a token without the claims");
    let forged = issue_token(
        b"another-secret-that-is-long-enough-too!!",
        &"caps".parse().expect("id"),
        "x",
        now_secs() + 3_600,
    )
    .expect("forged");
    let expired = token_for("caps", 1_000);
    let cases: Vec<(String, &str)> = vec![
        (format!("Bearer {unsigned}"), "HS256"),
        (format!("Bearer {rs256}"), "HS256"),
        ("Bearer not-a-token".into(), "malformed"),
        ("Bearer a.b.c".into(), "malformed"),
        (format!("Bearer {no_claims}"), "does not carry the claims"),
        (
            format!("Bearer {forged}"),
            "not signed with this server's secret",
        ),
        (format!("Bearer {expired}"), "expired"),
        (format!("Basic {token}"), "Bearer scheme"),
        ("Bearer".into(), "no device token"),
    ];
    for (header, says) in &cases {
        let (status, body) = answer(c.get(&url).header("authorization", header).send());
        assert_eq!(status, 401, "{header}: {body}");
        let m = message(&body);
        assert!(m.contains(says), "{header}: {m}");
        for internal in [
            "unknown variant",
            "expected one of",
            "InvalidToken",
            "Error(",
        ] {
            assert!(!m.contains(internal), "{header}: {m}");
        }
    }
}

/// Base64url without padding, as JWT parts are written (a test needs to write tokens that
/// the library would not).
mod base64_url {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            }
        }
        out
    }
}

#[test]
fn a_tenants_own_call_limit_is_named_as_its_own() {
    let env = env_with(&[("tiny", &["--max-api-calls", "1"])]);
    let s = start(&env);
    let c = client();
    let url = format!("http://{}/v1/tenants/tiny/config", s.addr);
    let token = token_for("tiny", now_secs() + 3_600);
    assert_eq!(answer(c.get(&url).bearer_auth(&token).send()).0, 200);
    let (status, body) = answer(c.get(&url).bearer_auth(&token).send());
    assert_eq!((status, body["error"].as_str()), (429, Some("plan_limit")));
    let m = message(&body);
    assert!(
        m.contains("tenant tiny may make 1 API call a month (its own limit")
            && m.contains("the free plan's is 10000"),
        "{m}"
    );
    assert!(!m.contains("the free plan allows"), "{m}");
}

#[test]
fn api_call_limits_a_database_cannot_hold_are_refused_not_clamped() {
    let env = env_with(&[("caps", &[])]);
    let db = env.db();
    let err = fails(&[
        "tenant",
        "add",
        "--db",
        &db,
        "--id",
        "huge",
        "--name",
        "Huge",
        "--max-api-calls",
        "18446744073709551615",
    ]);
    assert!(
        err.contains("18446744073709551615") && err.contains("9223372036854775807"),
        "{err}"
    );
    let err = fails(&["tenant", "show", "--db", &db, "--id", "huge"]);
    assert!(err.contains("does not exist"), "{err}");
    let before = ok(&["tenant", "show", "--db", &db, "--id", "caps", "--json"]);
    let err = fails(&[
        "tenant",
        "limits",
        "--db",
        &db,
        "--id",
        "caps",
        "--max-users",
        "7",
        "--max-api-calls",
        "18446744073709551615",
    ]);
    assert!(err.contains("at most 9223372036854775807"), "{err}");
    assert_eq!(
        ok(&["tenant", "show", "--db", &db, "--id", "caps", "--json"]),
        before,
        "nothing changed"
    );
    let most = ok(&[
        "tenant",
        "limits",
        "--db",
        &db,
        "--id",
        "caps",
        "--max-api-calls",
        "9223372036854775807",
    ]);
    assert!(
        most.contains("9223372036854775807 API calls/month"),
        "{most}"
    );
}

#[test]
fn a_node_database_given_to_pos_central_is_named_for_what_it_is() {
    let env = env_with(&[]);
    let node = env.dir.path().join("node.db");
    let nodes = node.display().to_string();
    let out = Command::new(NODE_BIN)
        .args(["init", "--db", &nodes])
        .output()
        .expect("pos-node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = std::fs::read(&node).expect("node db");
    for args in [
        vec!["tenant", "list", "--db", &nodes],
        vec![
            "tenant", "add", "--db", &nodes, "--id", "caps", "--name", "Caps",
        ],
        vec![
            "serve",
            "--db",
            &nodes,
            "--listen",
            "127.0.0.1:0",
            "--secret-file",
            env.secret.to_str().expect("path"),
        ],
    ] {
        let err = fails(&args);
        assert!(
            err.contains("is a pos-node database, not a pos-central one"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read(&node).expect("node db"), before, "unchanged");

    // Another SQLite file is not taken for a central one either.
    let other = env.dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&other).expect("sqlite");
    conn.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        .expect("a table");
    drop(conn);
    let err = fails(&["tenant", "list", "--db", other.to_str().expect("path")]);
    assert!(err.contains("is another SQLite database"), "{err}");
}

/// A large operation: a conflict row whose JSON value carries `len` bytes of text (a JSON
/// column may hold up to a MiB; names are bounded far below that), stamped now.
fn named_level(tenant: &str, len: usize, n: u64) -> Operation {
    let millis = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("millis");
    let columns = serde_json::json!({
        "table_name": "products",
        "row_id": RowId::new().to_string(),
        "kind": "negative_stock",
        "local_value": { "pad": format!("{n:06} {}", "n".repeat(len)) },
        "detected_at": "2026-01-01T00:00:00.000Z"
    });
    Operation {
        id: RowId::new(),
        tenant_id: tenant.parse().expect("id"),
        device_id: RowId::new(),
        hlc: Hlc::new(millis, 0, RowId::new()).expect("stamp"),
        actor_user_id: None,
        table: "sync_conflicts".into(),
        row_id: RowId::new(),
        kind: OperationKind::Insert,
        columns: columns.as_object().cloned().unwrap_or_default(),
        unit: None,
        base: None,
    }
}

#[test]
fn large_operations_come_back_in_pages_under_the_byte_budget() {
    let env = env_with(&[("caps", &["--plan", "pro"]), ("probe", &["--plan", "pro"])]);
    let s = start(&env);
    let c = client();
    let push = |tenant: &str, ops: &[Operation]| {
        answer(
            c.post(format!("http://{}/v1/tenants/{tenant}/operations", s.addr))
                .bearer_auth(token_for(tenant, now_secs() + 3_600))
                .json(&serde_json::json!({ "operations": ops }))
                .send(),
        )
    };
    // One operation over the bound is refused whole, with its own code.
    let (status, body) = push("caps", &[named_level("caps", MAX_OPERATION_BYTES, 0)]);
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("operation_too_large")),
        "{body}"
    );
    // The longest name the catalog takes, of a few lengths up to 700 KB.
    let len = [700_000, 64 * 1024, 8 * 1024, 1024]
        .into_iter()
        .find(|len| push("probe", &[named_level("probe", *len, 0)]).0 == 200)
        .expect("a name length the catalog takes");
    let one = serde_json::to_vec(&named_level("caps", len, 0))
        .expect("json")
        .len();
    let n = (MAX_PAGE_BYTES * 5 / 2 / one + 1).min(3 * MAX_PAGE as usize);
    let ops: Vec<Operation> = (0..n as u64).map(|i| named_level("caps", len, i)).collect();
    // Batches under the 4 MiB body limit.
    let per_push = (3 * 1024 * 1024 / one).clamp(1, 1000);
    for batch in ops.chunks(per_push) {
        let (status, body) = push("caps", batch);
        assert_eq!(status, 200, "{body}");
    }

    let token = token_for("caps", now_secs() + 3_600);
    let mut after = 0;
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let r = c
            .get(format!(
                "http://{}/v1/tenants/caps/operations?after={after}&limit={MAX_PAGE}",
                s.addr
            ))
            .bearer_auth(&token)
            .send()
            .expect("pull");
        assert_eq!(r.status().as_u16(), 200);
        let text = r.text().expect("body");
        let page: serde_json::Value = serde_json::from_str(&text).expect("a page");
        let got = page["operations"].as_array().cloned().unwrap_or_default();
        let high = page["high"].as_u64().expect("high");
        assert_eq!(high, n as u64);
        if after >= high {
            assert!(got.is_empty());
            break;
        }
        assert!(
            !got.is_empty(),
            "a page below the high mark holds operations"
        );
        // The answer is the operations' JSON and a small envelope per operation.
        assert!(
            text.len() <= MAX_PAGE_BYTES + 64 * got.len() + 64,
            "a page of {} operations is {} bytes",
            got.len(),
            text.len()
        );
        for o in &got {
            let seq = o["seq"].as_u64().expect("seq");
            assert_eq!(seq, after + 1, "in order, without gaps");
            after = seq;
            ids.push(o["operation"]["id"].as_str().expect("id").to_owned());
        }
        pages += 1;
    }
    let sent: Vec<String> = ops.iter().map(|o| o.id.to_string()).collect();
    assert_eq!(ids, sent, "every operation arrives once, by paging on");
    if n as usize * one > MAX_PAGE_BYTES {
        assert!(pages > 1, "{n} operations of {one} bytes in one page");
    }
}

// ---- the library's serve, in process, with short bounds -----------------------------------

/// A server in this process: a tenant `caps` on the pro plan, `state` adjusted by `tune`, and
/// `options`. Dropping the shutdown sender stops it; the join handle says how.
struct InProcess {
    runtime: tokio::runtime::Runtime,
    addr: String,
    store: Arc<SqliteCentral>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<Stopped>>,
}

impl InProcess {
    fn start(options: ServeOptions, tune: impl FnOnce(AppState) -> AppState) -> Self {
        let store = Arc::new(SqliteCentral::open_in_memory().expect("central"));
        store
            .add_tenant(&NewTenant::new("caps".parse().expect("id"), "Caps").plan(Plan::Pro))
            .expect("tenant");
        let shared: Arc<dyn CentralStore> = store.clone();
        let state = tune(AppState::new(shared, SECRET.as_bytes().to_vec()).expect("state"));
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = runtime.spawn(serve(listener, app(state), options, async move {
            let _ = stopped.await;
        }));
        Self {
            runtime,
            addr,
            store,
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// Begins the shutdown.
    fn shut_down(&mut self) {
        drop(self.stop.take());
    }

    /// Waits, at most [`PATIENCE`], for `serve` to return.
    fn stopped(&mut self) -> Stopped {
        let served = self.served.take().expect("serving");
        self.runtime
            .block_on(async { tokio::time::timeout(PATIENCE, served).await })
            .expect("serve returned")
            .expect("serve did not panic")
    }
}

fn options(header_timeout: Duration, max_connections: usize) -> ServeOptions {
    let mut o = ServeOptions::default();
    o.header_read_timeout = header_timeout;
    o.max_connections = max_connections;
    o
}

#[test]
fn a_full_server_takes_no_connection_until_one_closes() {
    let s = InProcess::start(options(Duration::from_secs(30), 2), |s| s);
    let first = connect(&s.addr);
    let _second = connect(&s.addr);
    let mut third = connect(&s.addr);
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("a request");
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .expect("timeout");
    let (got, closed) = read_until_closed(&mut third);
    assert!(
        got.is_empty() && !closed,
        "no answer while two connections hold both slots"
    );
    drop(first);
    third.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let (got, closed) = read_until_closed(&mut third);
    assert!(closed, "answered and closed");
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "answered once a slot was free"
    );
}

#[test]
fn a_body_that_trickles_is_answered_408_and_stores_nothing() {
    let s = InProcess::start(ServeOptions::default(), |s| {
        s.body_read_timeout(Duration::from_millis(500))
    });
    let token = token_for("caps", now_secs() + 3_600);
    let mut conn = connect(&s.addr);
    let head = format!(
        "POST /v1/tenants/caps/operations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"operations\": ["
    );
    conn.write_all(head.as_bytes()).expect("head and a little");
    let (got, closed) = read_until_closed(&mut conn);
    assert!(closed, "the connection is closed after the answer");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let (_, body) = text.split_once("\r\n\r\n").expect("a body");
    let body: serde_json::Value = serde_json::from_str(body).expect("json");
    assert_eq!(body["error"], "body_timeout", "{body}");
    assert_eq!(
        s.store
            .operations_after(&"caps".parse().expect("id"), 0, 10)
            .expect("log")
            .high,
        0
    );
}

#[test]
fn shutdown_closes_waiting_connections_at_once_and_answers_the_request_in_flight() {
    let mut s = InProcess::start(options(Duration::from_secs(30), 16), |s| s);
    let token = token_for("caps", now_secs() + 3_600);
    let ops = [named_level("caps", 10, 1)];
    let body = serde_json::to_vec(&serde_json::json!({ "operations": ops })).expect("json");
    let mut pushing = connect(&s.addr);
    let head = format!(
        "POST /v1/tenants/caps/operations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    pushing.write_all(head.as_bytes()).expect("head");
    pushing.write_all(&body[..5]).expect("a little of the body");
    let mut half = connect(&s.addr);
    half.write_all(b"GET /health HTTP/1.1\r\n")
        .expect("half a head");
    let mut idle = connect(&s.addr);
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("a request");
    let mut status = [0u8; 12];
    idle.read_exact(&mut status).expect("an answer");
    // The push reached its handler (its body is being read): the gauge counts it and the
    // scrape itself.
    let c = client();
    let in_flight = || -> f64 {
        let text = c
            .get(format!("http://{}/metrics", s.addr))
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("pos_central_http_requests_in_flight "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let deadline = Instant::now() + PATIENCE;
    while in_flight() < 2.0 {
        assert!(Instant::now() < deadline, "the push never came in flight");
        std::thread::sleep(Duration::from_millis(20));
    }

    s.shut_down();
    let (_, closed) = read_until_closed(&mut half);
    assert!(closed, "the half-sent head is closed at once");
    let (_, closed) = read_until_closed(&mut idle);
    assert!(closed, "the idle connection is closed at once");
    pushing.write_all(&body[5..]).expect("the rest of the body");
    let (got, closed) = read_until_closed(&mut pushing);
    assert!(closed);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(s.stopped(), Stopped::Drained);
    assert_eq!(
        s.store
            .operations_after(&"caps".parse().expect("id"), 0, 10)
            .expect("log")
            .high,
        1
    );
}

#[test]
fn the_bounds_are_those_the_readme_states() {
    let o = ServeOptions::default();
    assert_eq!(o.header_read_timeout, Duration::from_secs(10));
    assert_eq!(o.max_connections, 512);
    assert_eq!(o.shutdown_grace, Duration::from_secs(10));
    assert_eq!(
        pos_tenancy::server::BODY_READ_TIMEOUT,
        Duration::from_secs(30)
    );
    assert_eq!(MAX_TOKEN_TTL, Duration::from_secs(365 * 86_400));
    assert_eq!(MAX_PAGE_BYTES, 4 * 1024 * 1024);
    assert_eq!(MAX_OPERATION_BYTES, 1024 * 1024);
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    for stated in [
        "10 s",
        "30 s",
        "512 connections",
        "4 MiB of operation JSON",
        "1 MiB",
        "365 days",
    ] {
        assert!(readme.contains(stated), "the README states {stated:?}");
    }
}

#[test]
fn a_server_whose_log_reader_went_away_keeps_serving_and_exits_0_on_sigterm() {
    let env = env_with(&[("caps", &[])]);
    let snaps = env.dir.path().join("snaps");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--db",
            &env.db(),
            "--listen",
            "127.0.0.1:0",
            "--secret-file",
        ])
        .arg(&env.secret)
        // The background builder logs too, from a thread of its own.
        .arg("--snapshots")
        .arg(&snaps)
        .args(["--snapshot-every", "1h", "--snapshot-min-ops", "1"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    // Whoever read the log (a supervisor, `| head`) is gone before the first line.
    drop(child.stderr.take());
    let stdout = lines(child.stdout.take().expect("stdout"));
    let line = stdout.recv_timeout(PATIENCE).unwrap_or_default();
    let addr = line.trim().strip_prefix("listening on ").map(str::to_owned);
    let answered = addr.as_deref().map(|addr| {
        let mut conn = connect(addr);
        conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("a request");
        let mut head = [0u8; 12];
        conn.read_exact(&mut head).is_ok() && &head == b"HTTP/1.1 200"
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if signalled.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("the server did not exit within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        addr.is_some(),
        "unexpected first line {line:?}, exit {status:?}"
    );
    assert_eq!(answered, Some(true), "the server answered /health");
    assert!(status.success(), "exit 0 after SIGTERM: {status:?}");
}
