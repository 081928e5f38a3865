//! The real `pos-central` binary on an ephemeral loopback port, driven with reqwest: auth,
//! every error status, pushes of a node's real outbox, duplicates, concurrent tenants, and a
//! server killed with SIGKILL mid-push whose batches are re-sent and stored once.
#![cfg(feature = "server")]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::*;
use pos_tenancy::server::{issue_token, BatchResults};
use pos_tenancy::Operation;
use reqwest::blocking::Client;
use reqwest::StatusCode;

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

struct Env {
    _dir: tempfile::TempDir,
    db: PathBuf,
    secret: PathBuf,
}

fn central(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("pos-central runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn env_with(tenants: &[(&str, &[&str])]) -> Env {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("central.db");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, format!("{SECRET}\n")).expect("secret");
    let dbs = db.display().to_string();
    for (id, extra) in tenants {
        let mut args = vec![
            "tenant", "add", "--db", &dbs, "--id", id, "--name", id, "--plan", "pro",
        ];
        args.extend_from_slice(extra);
        central(&args);
    }
    Env {
        _dir: dir,
        db,
        secret,
    }
}

fn start(env: &Env) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--db"])
        .arg(&env.db)
        .args(["--listen", "127.0.0.1:0", "--secret-file"])
        .arg(&env.secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    // Bounded: the line comes once the socket is bound, or EOF if the server died.
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read address");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    Server {
        base: format!("http://{addr}"),
        child,
    }
}

fn token(env: &Env, tenant: &str) -> String {
    central(&[
        "token",
        "issue",
        "--db",
        &env.db.display().to_string(),
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

fn client() -> Client {
    Client::builder()
        .timeout(std::time::Duration::from_secs(20))
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

#[test]
fn pushes_pulls_duplicates_and_config() {
    let env = env_with(&[("caps", &[])]);
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
        .all(|r| r.status == pos_tenancy::central::OperationStatus::Accepted));
    let again: BatchResults = push(&c, &s, "caps", &tok, &ops)
        .expect("push")
        .json()
        .expect("results");
    assert!(again
        .results
        .iter()
        .all(|r| r.status == pos_tenancy::central::OperationStatus::Duplicate));
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

#[test]
fn every_refusal_has_its_status_and_stores_nothing() {
    let env = env_with(&[
        ("caps", &[]),
        ("bolt", &[]),
        ("tiny", &["--max-api-calls", "2"]),
    ]);
    let s = start(&env);
    let c = client();
    let caps = token(&env, "caps");
    let ops = outbox("caps", "r");
    let url = format!("{}/v1/tenants/caps/operations", s.base);

    let status = |r: reqwest::Result<reqwest::blocking::Response>| r.expect("response").status();
    assert_eq!(
        status(
            c.post(&url)
                .json(&serde_json::json!({ "operations": [] }))
                .send()
        ),
        StatusCode::UNAUTHORIZED
    );
    let forged = issue_token(
        b"another-secret-that-is-long-enough-too!!",
        &tid("caps"),
        "x",
        u64::MAX / 2,
    )
    .expect("forged");
    assert_eq!(
        status(push(&c, &s, "caps", &forged, &ops)),
        StatusCode::UNAUTHORIZED
    );
    let expired = issue_token(SECRET.as_bytes(), &tid("caps"), "x", 1_000).expect("expired");
    assert_eq!(
        status(push(&c, &s, "caps", &expired, &ops)),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(push(&c, &s, "bolt", &caps, &ops)),
        StatusCode::FORBIDDEN,
        "caps token on bolt"
    );
    let ghost = issue_token(SECRET.as_bytes(), &tid("ghost"), "x", u64::MAX / 2).expect("ghost");
    assert_eq!(
        status(push(&c, &s, "ghost", &ghost, &ops)),
        StatusCode::NOT_FOUND
    );

    // Bad input: the whole batch is refused.
    let mut bad = ops.clone();
    bad[3].columns.insert("no_such_column".into(), 1.into());
    assert_eq!(
        status(push(&c, &s, "caps", &caps, &bad)),
        StatusCode::BAD_REQUEST
    );
    let mut other = ops.clone();
    other[1].tenant_id = tid("bolt");
    assert_eq!(
        status(push(&c, &s, "caps", &caps, &other)),
        StatusCode::BAD_REQUEST
    );
    let malformed = c
        .post(&url)
        .bearer_auth(&caps)
        .header("content-type", "application/json")
        .body("{\"operations\": [{]}")
        .send();
    assert_eq!(status(malformed), StatusCode::BAD_REQUEST);
    let too_many: Vec<Operation> = (0..1001).map(|i| ops[i % ops.len()].clone()).collect();
    assert_eq!(
        status(push(&c, &s, "caps", &caps, &too_many)),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(pulled_ids(&c, &s, "caps", &caps).0, 0, "nothing was stored");

    // Suspended: 403 until activated again.
    let db = env.db.display().to_string();
    central(&["tenant", "suspend", "--db", &db, "--id", "caps"]);
    assert_eq!(
        status(push(&c, &s, "caps", &caps, &ops)),
        StatusCode::FORBIDDEN
    );
    central(&["tenant", "activate", "--db", &db, "--id", "caps"]);
    assert_eq!(status(push(&c, &s, "caps", &caps, &ops)), StatusCode::OK);

    // Over the plan's monthly calls: 429 with Retry-After.
    let tiny = token(&env, "tiny");
    let tiny_url = format!("{}/v1/tenants/tiny/operations?after=0", s.base);
    for _ in 0..2 {
        assert_eq!(
            status(c.get(&tiny_url).bearer_auth(&tiny).send()),
            StatusCode::OK
        );
    }
    let r = c
        .get(&tiny_url)
        .bearer_auth(&tiny)
        .send()
        .expect("response");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry > 0 && retry <= 31 * 86_400);
    let body: serde_json::Value = r.json().expect("json error");
    assert_eq!(body["error"], "plan_limit");
}

#[test]
fn two_tenants_pushing_at_once_do_not_mix() {
    let env = env_with(&[("caps", &[]), ("bolt", &[])]);
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

#[cfg(unix)]
#[test]
fn a_server_killed_mid_push_stores_every_resent_batch_once() {
    let env = env_with(&[("caps", &[])]);
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
            std::thread::sleep(std::time::Duration::from_millis(15 * (round + 1)));
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
