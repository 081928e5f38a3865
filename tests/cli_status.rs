//! The real `pos-node` binary's `status` and `conflicts` commands: on a fresh store, on a store
//! whose last sync failed, and on conflicts made by a merge (two terminal files synced in
//! process through the direct transport), resolved through the command line.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use common::{product, tid};
use pos_tenancy::catalog::User;
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::sync::{DirectTransport, SyncOptions, Syncer};
use pos_tenancy::{
    CentralStore, NewTenant, Plan, Role, RowId, SqliteCentral, Store, TenantAccess, Timestamp,
};

fn pos_node(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pos-node"))
        .args(args)
        .output()
        .expect("pos-node runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a command that must exit with `code`; its stdout.
fn exits(code: i32, args: &[&str]) -> String {
    let o = pos_node(args);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    stdout(&o)
}

fn ok(args: &[&str]) -> String {
    exits(0, args)
}

/// Runs a command that must fail with exit code 2; its stderr.
fn fails(args: &[&str]) -> String {
    let o = pos_node(args);
    assert_eq!(o.status.code(), Some(2), "{args:?} should fail");
    let err = stderr(&o);
    assert!(err.starts_with("pos-node: error: "), "{err}");
    err
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn status_and_conflicts_on_a_fresh_store() {
    let dir = tempfile::tempdir().expect("dir");
    let db = path(&dir.path().join("node.db"));
    ok(&["init", "--db", &db]);
    assert!(ok(&["status", "--db", &db]).contains("no tenants"));
    assert_eq!(json(&ok(&["status", "--db", &db, "--json"])), json("[]"));
    for id in ["caps", "bolt"] {
        ok(&["tenant", "add", "--db", &db, "--id", id, "--name", id]);
    }

    let text = ok(&["status", "--db", &db]);
    assert!(text.contains("bolt: never synced"), "{text}");
    assert!(text.contains("caps: never synced"), "{text}");
    assert!(text.contains("last error:     none"), "{text}");
    let all = json(&ok(&["status", "--db", &db, "--json"]));
    let tenants: Vec<&str> = all
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["tenant"].as_str())
        .collect();
    assert_eq!(tenants, ["bolt", "caps"]);
    let one = json(&ok(&["status", "--db", &db, "--tenant", "caps", "--json"]));
    assert_eq!(one.as_array().map(Vec::len), Some(1));
    let caps = &one[0];
    assert_eq!(caps["tenant"], "caps");
    assert_eq!(caps["online"], false);
    assert_eq!(caps["pending"], 0);
    assert_eq!(caps["cursor"], 0);
    assert_eq!(caps["server_high"], 0);
    assert_eq!(caps["open_conflicts"], 0);
    assert_eq!(caps["stalled"], false);
    assert!(caps["last_error"].is_null());

    assert!(ok(&["conflicts", "list", "--db", &db, "--tenant", "caps"])
        .contains("(0 conflicts, 0 open)"));
    assert!(ok(&[
        "conflicts",
        "list",
        "--db",
        &db,
        "--tenant",
        "caps",
        "--open"
    ])
    .contains("(0 open)"));
    assert_eq!(
        json(&ok(&[
            "conflicts",
            "list",
            "--db",
            &db,
            "--tenant",
            "caps",
            "--json"
        ])),
        json("[]")
    );

    let ghost = fails(&["status", "--db", &db, "--tenant", "ghost"]);
    assert!(ghost.contains("ghost"), "{ghost}");
    let missing = path(&dir.path().join("missing.db"));
    assert!(fails(&["status", "--db", &missing]).contains("no database"));
    assert!(
        !dir.path().join("missing.db").exists(),
        "status made a database"
    );
    let id = RowId::new().to_string();
    let resolve = |user: &str| {
        fails(&[
            "conflicts",
            "resolve",
            "--db",
            &db,
            "--tenant",
            "caps",
            "--id",
            &id,
            "--as",
            user,
            "--resolution",
            "done",
        ])
    };
    let nobody = resolve("owner");
    assert!(nobody.contains("no user \"owner\""), "{nobody}");
    {
        let store = Store::open(dir.path().join("node.db")).expect("store");
        let caps = store.tenant(&tid("caps")).expect("caps");
        caps.bootstrap_admin("owner", "Owner").expect("admin");
    }
    let unknown = resolve("owner");
    assert!(
        unknown.contains("sync_conflicts") && unknown.contains(&id),
        "{unknown}"
    );
    // A conflict id that is not an id is refused by the argument parser (exit 2 too).
    let o = pos_node(&[
        "conflicts",
        "resolve",
        "--db",
        &db,
        "--tenant",
        "caps",
        "--id",
        "not-an-id",
        "--as",
        "owner",
        "--resolution",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_failed_sync_makes_status_exit_1_with_the_error_and_what_to_do() {
    let dir = tempfile::tempdir().expect("dir");
    let db = path(&dir.path().join("node.db"));
    ok(&[
        "tenant", "add", "--db", &db, "--id", "caps", "--name", "Caps",
    ]);
    {
        let store = Store::open(dir.path().join("node.db")).expect("store");
        let caps = store.tenant(&tid("caps")).expect("caps");
        caps.bootstrap_admin("owner", "Owner").expect("admin");
    }
    let token = dir.path().join("caps.token");
    std::fs::write(&token, "anything\n").expect("token");
    // A loopback port nobody listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let server = format!("http://127.0.0.1:{port}");
    let err = fails(&[
        "sync",
        "--db",
        &db,
        "--server",
        &server,
        "--tenant",
        "caps",
        "--token-file",
        &path(&token),
        "--once",
    ]);
    assert!(
        err.contains("tenant caps") && err.contains("(transient)"),
        "{err}"
    );
    let ghost = fails(&[
        "sync",
        "--db",
        &db,
        "--server",
        &server,
        "--tenant",
        "ghost",
        "--token-file",
        &path(&token),
        "--once",
    ]);
    assert!(
        ghost.contains("tenant ghost is not on this node") && ghost.contains("tenant add"),
        "{ghost}"
    );
    let text = exits(1, &["status", "--db", &db]);
    assert!(text.contains("caps: offline"), "{text}");
    assert!(text.contains("push failed (transient)"), "{text}");
    assert!(text.contains("what to do:"), "{text}");
    let status = json(&exits(1, &["status", "--db", &db, "--json"]));
    assert_eq!(status[0]["pending"], 1, "the admin's operation still waits");
    assert_eq!(status[0]["last_error"]["class"], "transient");
    assert_eq!(status[0]["last_error"]["step"], "push");
    assert!(status[0]["last_error"]["action"]
        .as_str()
        .is_some_and(|a| !a.is_empty()));
}

/// Two terminal files of tenant `caps` that each sold the last unit offline, merged in
/// process: both hold one open `negative_stock` conflict. Returns the files and the admin.
fn two_terminals_with_a_conflict(dir: &Path) -> (PathBuf, PathBuf, RowId) {
    let central = Arc::new(SqliteCentral::open_in_memory().expect("central"));
    let new = NewTenant::new(tid("caps"), "Caps").plan(Plan::Pro);
    central.add_tenant(&new).expect("central tenant");
    let transport = DirectTransport::new(Arc::clone(&central));
    let options = SyncOptions::default();
    let files = [dir.join("a.db"), dir.join("b.db")];
    let stores: Vec<Store> = files
        .iter()
        .map(|f| {
            let s = Store::open(f).expect("store");
            s.add_tenant(&new).expect("tenant");
            s
        })
        .collect();
    let sync = |i: usize| {
        Syncer::new(&stores[i], &transport, &options)
            .round(&tid("caps"), "token")
            .expect("round");
    };
    let a = stores[0].tenant(&tid("caps")).expect("a");
    let admin = a.bootstrap_admin("owner", "Owner").expect("admin");
    let now = Timestamp::now();
    let cashier = User {
        id: RowId::new(),
        username: "till".into(),
        display_name: "Till".into(),
        email: None,
        role: Role::Cashier,
        pin_hash: None,
        active: true,
        created_at: now,
        updated_at: now,
    };
    a.insert(&admin, &cashier).expect("cashier");
    let oil = product("OF-1", 1299);
    a.insert(&admin, &oil).expect("product");
    a.receive_stock(&admin, oil.id, "main", 1_000, None)
        .expect("stock");
    sync(0);
    sync(1);
    let sale = Checkout::new()
        .line(LineItem::product(oil.id, 1_000))
        .tender(Tender::Cash {
            tendered_minor: 100_000,
        });
    a.checkout(&admin, &sale).expect("sale a");
    let b = stores[1].tenant(&tid("caps")).expect("b");
    b.checkout(&b.actor(admin.user_id()).expect("actor"), &sale)
        .expect("sale b");
    for _ in 0..3 {
        sync(0);
        sync(1);
    }
    let [fa, fb] = files;
    (fa, fb, admin.user_id())
}

#[test]
fn conflicts_are_listed_and_resolved_through_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let (a, b, admin) = two_terminals_with_a_conflict(dir.path());
    let (a, b) = (path(&a), path(&b));
    let listed = json(&ok(&[
        "conflicts",
        "list",
        "--db",
        &b,
        "--tenant",
        "caps",
        "--open",
        "--json",
    ]));
    let open = listed.as_array().expect("array");
    assert_eq!(open.len(), 1, "{listed}");
    assert_eq!(open[0]["kind"], "negative_stock");
    assert!(open[0]["resolved_at"].is_null());
    let id = open[0]["id"].as_str().expect("id").to_owned();
    let text = ok(&["conflicts", "list", "--db", &b, "--tenant", "caps"]);
    assert!(
        text.contains(&id) && text.contains("negative_stock") && text.contains("open"),
        "{text}"
    );
    assert!(text.contains("(1 conflicts, 1 open)"), "{text}");
    let status = json(&ok(&["status", "--db", &b, "--json"]));
    assert_eq!(status[0]["open_conflicts"], 1);
    let pending = status[0]["pending"].as_u64().expect("pending");

    let resolve = |user: &str, note: &str| {
        pos_node(&[
            "conflicts",
            "resolve",
            "--db",
            &b,
            "--tenant",
            "caps",
            "--id",
            &id,
            "--as",
            user,
            "--resolution",
            note,
        ])
    };
    let cashier = resolve("till", "a cashier may not");
    assert_eq!(cashier.status.code(), Some(2));
    assert!(stderr(&cashier).contains("manager"), "{}", stderr(&cashier));
    let empty = resolve("owner", "   ");
    assert_eq!(empty.status.code(), Some(2));
    assert!(
        stderr(&empty).contains("1 to 1000 characters"),
        "{}",
        stderr(&empty)
    );
    // By username, then (refused) again by user id.
    let done = resolve("owner", "recounted: the shelf had one more");
    assert_eq!(done.status.code(), Some(0), "{}", stderr(&done));
    assert!(stdout(&done).contains(&id), "{}", stdout(&done));
    let again = resolve(&admin.to_string(), "twice");
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("resolved already"),
        "{}",
        stderr(&again)
    );

    assert_eq!(
        json(&ok(&[
            "conflicts",
            "list",
            "--db",
            &b,
            "--tenant",
            "caps",
            "--open",
            "--json"
        ])),
        json("[]")
    );
    let all = json(&ok(&[
        "conflicts",
        "list",
        "--db",
        &b,
        "--tenant",
        "caps",
        "--json",
    ]));
    assert_eq!(all[0]["resolution"], "recounted: the shelf had one more");
    assert_eq!(all[0]["resolved_by"], admin.to_string());
    let text = ok(&["conflicts", "list", "--db", &b, "--tenant", "caps"]);
    assert!(
        text.contains("resolved") && text.contains("by owner"),
        "{text}"
    );
    let status = json(&ok(&["status", "--db", &b, "--json"]));
    assert_eq!(status[0]["open_conflicts"], 0);
    assert_eq!(status[0]["pending"], pending + 1, "the resolution waits");
    // Terminal a has not synced since: still open there.
    let other = json(&ok(&["status", "--db", &a, "--json"]));
    assert_eq!(other[0]["open_conflicts"], 1);
}

#[test]
fn a_reader_that_goes_away_ends_the_output_without_a_panic() {
    let dir = tempfile::tempdir().expect("dir");
    let (_, b, _) = two_terminals_with_a_conflict(dir.path());
    let b = path(&b);
    for args in [
        vec!["status", "--db", &b],
        vec!["status", "--db", &b, "--json"],
        vec!["conflicts", "list", "--db", &b, "--tenant", "caps"],
        vec![
            "conflicts",
            "list",
            "--db",
            &b,
            "--tenant",
            "caps",
            "--json",
        ],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pos-node"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pos-node runs");
        // Close the reading end before the command writes (it opens the database first).
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("exit");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).is_empty(), "{args:?}: {}", stderr(&out));
    }
}
