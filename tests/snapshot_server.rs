//! Tenant snapshots end to end: a real `pos-central serve --snapshots DIR` on 127.0.0.1, a node
//! pushing through `HttpTransport`, `pos-central snapshot` building, and
//! `HttpTransport::snapshot` downloading. Every wait is bounded; nothing depends on timing (a
//! second builder is simulated by holding the tenant's build lock from this process).
#![cfg(feature = "server")]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{first_admin, product, tid};
use pos_tenancy::server::issue_token;
use pos_tenancy::sync::{HttpTransport, SyncOptions, Syncer, Transport, TransportError};
use pos_tenancy::{NewTenant, Store, TenantAccess, TenantId};

const SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";
const BIN: &str = env!("CARGO_BIN_EXE_pos-central");
/// The most a wait for the server's first line lasts: it only bounds a wait for what happens.
const PATIENCE: Duration = Duration::from_secs(60);

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn db(&self) -> String {
        self.dir.path().join("central.db").display().to_string()
    }
    fn snaps(&self) -> PathBuf {
        self.dir.path().join("snaps")
    }
    fn snaps_arg(&self) -> String {
        self.snaps().display().to_string()
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

/// A central database with tenants `caps` and `bolt`, and a secret file.
fn env() -> Env {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("secret"), format!("{SECRET}\n")).expect("secret");
    let env = Env { dir };
    let db = env.db();
    ok(&["init", "--db", &db]);
    for id in ["caps", "bolt"] {
        ok(&[
            "tenant", "add", "--db", &db, "--id", id, "--name", id, "--plan", "pro",
        ]);
    }
    env
}

/// Starts `pos-central serve` on a free loopback port, with `extra` flags.
fn start(env: &Env, extra: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--db", &env.db(), "--listen", "127.0.0.1:0"])
        .arg("--secret-file")
        .arg(env.dir.path().join("secret"))
        .args(extra)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(PATIENCE).unwrap_or_default();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Server {
        child,
        url: format!("http://{addr}"),
    }
}

fn token(tenant: &str) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3600;
    issue_token(SECRET.as_bytes(), &tid(tenant), "till-1", exp).expect("token")
}

/// A node holding `caps` with its admin.
fn node() -> Store {
    let store = Store::open_in_memory().expect("node");
    store
        .add_tenant(&NewTenant::new(tid("caps"), "caps").plan(pos_tenancy::Plan::Pro))
        .expect("tenant");
    store
        .tenant(&tid("caps"))
        .expect("handle")
        .bootstrap_admin("owner", "Owner")
        .expect("admin");
    store
}

/// Sells nothing, adds `n` products and pushes everything pending to the server.
fn push_products(store: &Store, server: &Server, n: usize, tag: &str) {
    let caps = tid("caps");
    let t = store.tenant(&caps).expect("handle");
    let admin = first_admin(&t).expect("admin");
    for i in 0..n {
        t.insert(&admin, &product(&format!("{tag}-{i}"), 100))
            .expect("product");
    }
    let transport = HttpTransport::new(&server.url).expect("transport");
    let options = SyncOptions::default();
    Syncer::new(store, &transport, &options)
        .push(&caps, &token("caps"))
        .expect("pushed");
}

/// `pos-central snapshot --tenant T --json`, parsed.
fn build(env: &Env, tenant: &str) -> serde_json::Value {
    let text = ok(&[
        "snapshot",
        "--db",
        &env.db(),
        "--dir",
        &env.snaps_arg(),
        "--tenant",
        tenant,
        "--json",
    ]);
    serde_json::from_str(&text).expect("json")
}

/// The published snapshot files of a tenant (names), sorted.
fn published(env: &Env, tenant: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(env.snaps().join(tenant))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("snapshot-") && n.ends_with(".export"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn file_cursor_and_products(file: &Path, tenant: &TenantId) -> (i64, i64) {
    let conn =
        rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open");
    let cursor = conn
        .query_row(
            "SELECT cursor FROM sync_state WHERE tenant_id = ?1",
            [tenant.as_str()],
            |r| r.get(0),
        )
        .expect("cursor");
    let products = conn
        .query_row(
            "SELECT count(*) FROM products WHERE tenant_id = ?1",
            [tenant.as_str()],
            |r| r.get(0),
        )
        .expect("products");
    (cursor, products)
}

#[test]
fn a_new_terminal_downloads_the_published_snapshot_byte_for_byte_and_a_rebuild_replaces_it() {
    let env = env();
    let server = start(&env, &["--snapshots", &env.snaps_arg()]);
    let node = node();
    let caps = tid("caps");
    let transport = HttpTransport::new(&server.url).expect("transport");
    let token = token("caps");

    push_products(&node, &server, 3, "A");
    let first = build(&env, "caps");
    let cursor = first["cursor"].as_u64().expect("cursor");
    let head = transport.pull(&caps, &token, 0, 1).expect("pull").high;
    assert_eq!(cursor, head, "the snapshot holds the whole log");
    assert_eq!(published(&env, "caps").len(), 1);

    let into = env.dir.path().join("first.export");
    let info = transport
        .snapshot(&caps, &token, &into)
        .expect("downloaded")
        .expect("a snapshot");
    assert_eq!(info.cursor, cursor);
    assert_eq!(Some(info.sha256.as_str()), first["sha256"].as_str());
    let published_file = env.snaps().join("caps").join(&published(&env, "caps")[0]);
    let got = std::fs::read(&into).expect("downloaded file");
    assert_eq!(got, std::fs::read(&published_file).expect("published"));
    assert_eq!(info.bytes, got.len() as u64);
    assert_eq!(
        file_cursor_and_products(&into, &caps),
        (i64::try_from(cursor).expect("fits"), 3)
    );

    push_products(&node, &server, 2, "B");
    let second = build(&env, "caps");
    let second_cursor = second["cursor"].as_u64().expect("cursor");
    assert!(second_cursor > cursor, "{second_cursor} after {cursor}");
    assert!(!published_file.exists(), "the older snapshot is removed");
    assert_eq!(published(&env, "caps").len(), 1);
    let into = env.dir.path().join("second.export");
    let info = transport
        .snapshot(&caps, &token, &into)
        .expect("downloaded")
        .expect("a snapshot");
    assert_eq!(info.cursor, second_cursor);
    assert_eq!(file_cursor_and_products(&into, &caps).1, 5);
}

#[test]
fn the_snapshot_route_refuses_what_pull_refuses_and_says_none_when_there_is_none() {
    let env = env();
    let server = start(&env, &["--snapshots", &env.snaps_arg()]);
    let node = node();
    let caps = tid("caps");
    push_products(&node, &server, 1, "A");
    build(&env, "caps");
    let transport = HttpTransport::new(&server.url).expect("transport");
    let into = env.dir.path().join("refused.export");
    let same = |a: TransportError, b: TransportError| match (a, b) {
        (
            TransportError::Server {
                status: sa,
                code: ca,
                ..
            },
            TransportError::Server {
                status: sb,
                code: cb,
                ..
            },
        ) => {
            assert_eq!((sa, &ca), (sb, &cb));
            (sa, ca)
        }
        other => panic!("{other:?}"),
    };
    for (bad, expect) in [
        (token("bolt"), (403, "wrong_tenant")),
        ("not-a-token".to_owned(), (401, "unauthorized")),
    ] {
        let snap = transport.snapshot(&caps, &bad, &into).expect_err("refused");
        let pull = transport.pull(&caps, &bad, 0, 1).expect_err("refused");
        let (status, code) = same(snap, pull);
        assert_eq!((status, code.as_str()), expect);
        assert!(!into.exists(), "nothing written for a refused request");
    }
    // A suspended tenant: refused like its pulls.
    ok(&["tenant", "suspend", "--db", &env.db(), "--id", "caps"]);
    let snap = transport
        .snapshot(&caps, &token("caps"), &into)
        .expect_err("suspended");
    let pull = transport
        .pull(&caps, &token("caps"), 0, 1)
        .expect_err("suspended");
    assert_eq!(same(snap, pull).0, 403);
    ok(&["tenant", "activate", "--db", &env.db(), "--id", "caps"]);

    // bolt has no snapshot; a server without --snapshots has none of anyone's.
    let bolt = transport
        .snapshot(&tid("bolt"), &token("bolt"), &into)
        .expect("answered");
    assert_eq!(bolt, None);
    drop(server);
    let plain = start(&env, &[]);
    let transport = HttpTransport::new(&plain.url).expect("transport");
    assert_eq!(
        transport
            .snapshot(&caps, &token("caps"), &into)
            .expect("answered"),
        None
    );
    assert!(!into.exists());
    // The 404 is the usual JSON error with its own code.
    let answer = reqwest::blocking::Client::new()
        .get(format!("{}/v1/tenants/caps/snapshot", plain.url))
        .bearer_auth(token("caps"))
        .send()
        .expect("answer");
    assert_eq!(answer.status().as_u16(), 404);
    let body: serde_json::Value = answer.json().expect("json");
    assert_eq!(body["error"], "no_snapshot");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("caps")));
}

#[test]
fn a_damaged_snapshot_or_an_existing_target_fails_the_download_saying_what_was_wrong() {
    let env = env();
    let server = start(&env, &["--snapshots", &env.snaps_arg()]);
    let node = node();
    let caps = tid("caps");
    push_products(&node, &server, 2, "A");
    build(&env, "caps");
    let transport = HttpTransport::new(&server.url).expect("transport");
    let token = token("caps");

    // The target exists: refused, and left as it was.
    let existing = env.dir.path().join("existing.export");
    std::fs::write(&existing, b"keep me").expect("existing");
    let err = transport
        .snapshot(&caps, &token, &existing)
        .expect_err("exists");
    assert!(
        matches!(err, TransportError::SnapshotFile { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("exists"), "{err}");
    assert_eq!(std::fs::read(&existing).expect("kept"), b"keep me");

    // A published file damaged on disk (same size, one byte changed).
    let file = env.snaps().join("caps").join(&published(&env, "caps")[0]);
    let mut bytes = std::fs::read(&file).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&file, &bytes).expect("damage");
    let into = env.dir.path().join("damaged.export");
    let err = transport
        .snapshot(&caps, &token, &into)
        .expect_err("damaged");
    let text = err.to_string();
    assert!(matches!(err, TransportError::Malformed(_)), "{err:?}");
    assert!(text.contains("does not match its checksum"), "{text}");
    assert!(text.contains(&into.display().to_string()), "{text}");
    assert!(into.exists(), "the partial download is left for the caller");
}

#[test]
fn a_second_builder_of_a_tenant_is_told_busy_and_all_reports_the_others() {
    let env = env();
    let server = start(&env, &[]);
    let node = node();
    push_products(&node, &server, 1, "A");
    build(&env, "caps");
    let before = published(&env, "caps");
    // Another builder holds caps: this process takes its lock, as a builder does.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(env.snaps().join("caps").join("build.lock"))
        .expect("lock file");
    lock.try_lock().expect("locked");
    push_products(&node, &server, 1, "B");
    let out = run(&[
        "snapshot",
        "--db",
        &env.db(),
        "--dir",
        &env.snaps_arg(),
        "--tenant",
        "caps",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("being built by another process"), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(published(&env, "caps"), before, "nothing changed");

    let out = run(&[
        "snapshot",
        "--db",
        &env.db(),
        "--dir",
        &env.snaps_arg(),
        "--all",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "some built, some not");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let entries = report.as_array().expect("array");
    assert_eq!(entries.len(), 2);
    assert!(entries
        .iter()
        .any(|e| e["tenant"] == "bolt" && e["cursor"].is_u64()));
    assert!(entries.iter().any(|e| e["tenant"] == "caps"
        && e["error"]
            .as_str()
            .is_some_and(|m| m.contains("another process"))));
    drop(lock);
    let after = build(&env, "caps");
    assert!(after["cursor"].as_u64().is_some());
    assert_ne!(
        published(&env, "caps"),
        before,
        "built once the lock is free"
    );
}

#[test]
fn serve_with_snapshot_every_builds_a_tenant_once_its_log_has_grown_enough() {
    let env = env();
    let server = start(
        &env,
        &[
            "--snapshots",
            &env.snaps_arg(),
            "--snapshot-every",
            "1",
            "--snapshot-min-ops",
            "3",
        ],
    );
    let node = node();
    let caps = tid("caps");
    let bolt_token = token("bolt");
    let token = token("caps");
    push_products(&node, &server, 3, "A");
    let transport = HttpTransport::new(&server.url).expect("transport");
    let head = transport.pull(&caps, &token, 0, 1).expect("pull").high;
    assert!(head >= 3);
    // Bounded: the builder passes every second; this only waits for a pass to happen.
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut attempt = 0;
    let info = loop {
        attempt += 1;
        let into = env.dir.path().join(format!("try-{attempt}.export"));
        if let Some(info) = transport.snapshot(&caps, &token, &into).expect("answered") {
            break info;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot built within {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(info.cursor, head);
    assert_eq!(
        transport
            .snapshot(&tid("bolt"), &bolt_token, &env.dir.path().join("bolt"))
            .expect("answered"),
        None,
        "bolt's empty log is under --snapshot-min-ops"
    );
}

#[test]
fn the_snapshot_command_builds_quietly_for_a_closed_pipe_and_fails_on_a_full_disk() {
    let env = env();
    let dir = env.snaps_arg();
    let db = env.db();
    let args = ["snapshot", "--db", &db, "--dir", &dir, "--tenant", "bolt"];
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::from(writer))
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "said on stderr: {err}");
    assert_eq!(
        published(&env, "bolt").len(),
        1,
        "built with nobody reading"
    );

    let Ok(full) = std::fs::File::options().write(true).open("/dev/full") else {
        eprintln!("skipped: no /dev/full here");
        return;
    };
    let out = Command::new(BIN)
        .args(args)
        .arg("--json")
        .env_remove("RUST_LOG")
        .stdout(Stdio::from(full))
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot write the output"), "{err}");
}

/// A one-shot HTTP server on 127.0.0.1 that reads a request head and answers `response`
/// as given, then closes the connection: for answers the real server never gives.
fn answering(response: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < 65_536 {
            match conn.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let _ = conn.write_all(&response);
    });
    format!("http://{addr}")
}

fn snapshot_answer(length: usize, sha256: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.sqlite3\r\ncontent-length: {length}\r\n\
         x-pos-snapshot-cursor: 7\r\nx-pos-snapshot-sha256: {sha256}\r\nconnection: close\r\n\r\n"
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[test]
fn a_cut_download_or_a_wrong_checksum_is_an_error_naming_what_arrived_and_the_file_left() {
    let dir = tempfile::tempdir().expect("dir");
    let caps = tid("caps");
    let sha_of_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    // The connection closes after 3 of 1000 bytes.
    let url = answering(snapshot_answer(1000, sha_of_abc, b"abc"));
    let into = dir.path().join("cut.export");
    let err = HttpTransport::new(&url)
        .expect("transport")
        .snapshot(&caps, "t", &into)
        .expect_err("cut");
    assert!(matches!(err, TransportError::Unreachable(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("3 of 1000 bytes arrived"), "{text}");
    assert!(text.contains(&into.display().to_string()), "{text}");

    // Every byte, but not the announced ones.
    let url = answering(snapshot_answer(3, &"0".repeat(64), b"abc"));
    let into = dir.path().join("wrong.export");
    let err = HttpTransport::new(&url)
        .expect("transport")
        .snapshot(&caps, "t", &into)
        .expect_err("mismatch");
    assert!(matches!(err, TransportError::Malformed(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("its SHA-256 is {sha_of_abc}")),
        "{err}"
    );

    // The right bytes: taken, with what the headers said.
    let url = answering(snapshot_answer(3, sha_of_abc, b"abc"));
    let into = dir.path().join("right.export");
    let info = HttpTransport::new(&url)
        .expect("transport")
        .snapshot(&caps, "t", &into)
        .expect("taken")
        .expect("a snapshot");
    assert_eq!((info.cursor, info.bytes), (7, 3));
    assert_eq!(std::fs::read(&into).expect("file"), b"abc");

    // No checksum header: not understood, and no file made.
    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx-pos-snapshot-cursor: 7\r\n\
        connection: close\r\n\r\nabc";
    let url = answering(answer.to_vec());
    let into = dir.path().join("headless.export");
    let err = HttpTransport::new(&url)
        .expect("transport")
        .snapshot(&caps, "t", &into)
        .expect_err("no sha");
    assert!(err.to_string().contains("x-pos-snapshot-sha256"), "{err}");
    assert!(!into.exists());

    // A server from before snapshots: no such route, so nothing to take.
    let body = r#"{"error":"not_found","message":"no such route"}"#;
    let url = answering(
        format!(
            "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    );
    let got = HttpTransport::new(&url)
        .expect("transport")
        .snapshot(&caps, "t", &into)
        .expect("answered");
    assert_eq!(got, None);
    assert!(!into.exists());
}

#[test]
fn a_terminal_joining_from_the_real_servers_snapshot_ends_where_a_replay_ends() {
    use pos_tenancy::sync::SnapshotUse;
    let env = env();
    let server = start(&env, &["--snapshots", &env.snaps_arg()]);
    let caps = tid("caps");
    let token = token("caps");
    let http = HttpTransport::new(&server.url).expect("transport");
    // Two tills that each made an admin `owner` offline: a conflict in the log, which the
    // shadow's merge meets too.
    let (a, b) = (node(), node());
    push_products(&a, &server, 20, "A");
    push_products(&b, &server, 20, "B");
    let options = SyncOptions::default();
    for till in [&a, &b] {
        Syncer::new(till, &http, &options)
            .round(&caps, &token)
            .expect("round");
    }
    let built = build(&env, "caps");
    push_products(&a, &server, 5, "C");

    let joined_db = env.dir.path().join("joined.db");
    let replayed_db = env.dir.path().join("replayed.db");
    {
        let joined = Store::open(&joined_db).expect("joined");
        let take = SyncOptions::default().snapshot_from(Some(1));
        let r = Syncer::new(&joined, &http, &take)
            .join(&caps, &token)
            .expect("joined");
        assert!(
            matches!(r.snapshot, Some(SnapshotUse::Taken { cursor, .. }) if Some(cursor) == built["cursor"].as_u64()),
            "{:?}",
            r.snapshot
        );
        let replayed = Store::open(&replayed_db).expect("replayed");
        let replay = SyncOptions::default().snapshot_from(None);
        let r2 = Syncer::new(&replayed, &http, &replay)
            .join(&caps, &token)
            .expect("replayed");
        assert_eq!(r.cursor, r2.cursor, "both at the head, past the snapshot");
    }
    // A conflict's `detected_at` is when each node met it (two replays differ there too).
    let comparable = |db: &Path| {
        let mut dump = common::sync::dump(db, &caps).expect("dump");
        for row in dump.get_mut("sync_conflicts").into_iter().flatten() {
            let mut cols: Vec<&str> = row.split('|').collect();
            cols[8] = "detected_at";
            *row = cols.join("|");
        }
        dump
    };
    let (joined, replayed) = (comparable(&joined_db), comparable(&replayed_db));
    assert!(
        !joined["sync_conflicts"].is_empty(),
        "the conflict came along"
    );
    common::sync::assert_same_dump(&joined, &replayed, "joined against replayed");
    common::sync::assert_same_dump(&replayed, &joined, "replayed against joined");
}

#[test]
fn a_rebuild_replaces_a_published_snapshot_damaged_on_disk_so_terminals_can_download_it_again() {
    let env = env();
    let server = start(&env, &["--snapshots", &env.snaps_arg()]);
    let node = node();
    let caps = tid("caps");
    push_products(&node, &server, 2, "A");
    build(&env, "caps");
    let file = env.snaps().join("caps").join(&published(&env, "caps")[0]);
    let mut bytes = std::fs::read(&file).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&file, &bytes).expect("damage");
    let transport = HttpTransport::new(&server.url).expect("transport");
    let token = token("caps");
    let damaged = env.dir.path().join("damaged.export");
    assert!(transport.snapshot(&caps, &token, &damaged).is_err());

    // Nothing new in the log: the rebuild an operator runs must still not keep the damage.
    let rebuilt = build(&env, "caps");
    let into = env.dir.path().join("again.export");
    let info = transport
        .snapshot(&caps, &token, &into)
        .expect("the rebuilt snapshot downloads")
        .expect("one");
    assert_eq!(rebuilt["sha256"].as_str(), Some(info.sha256.as_str()));
    assert_eq!(rebuilt["cursor"].as_u64(), Some(info.cursor));
    assert_eq!(published(&env, "caps").len(), 1);
}

#[test]
fn serve_refuses_a_snapshots_path_that_is_not_a_directory_instead_of_answering_500_to_every_join() {
    let env = env();
    let file = env.dir.path().join("secret");
    let mut child = Command::new(BIN)
        .args(["serve", "--db", &env.db(), "--listen", "127.0.0.1:0"])
        .arg("--secret-file")
        .arg(&file)
        .arg("--snapshots")
        .arg(&file)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pos-central runs");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if started.elapsed() > PATIENCE {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("output");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "it served: {err}");
    assert!(out.stdout.is_empty(), "it did not start serving");
    assert!(err.contains("--snapshots"), "{err}");
    assert!(err.contains("not a directory"), "{err}");
}
