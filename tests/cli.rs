//! The real `pos-node` binary in a temporary directory: exit codes, stdout and stderr.

use std::path::Path;
use std::process::{Command, Output};

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

fn db_arg(dir: &Path) -> String {
    dir.join("node.db").display().to_string()
}

fn ok(args: &[&str]) -> String {
    let o = pos_node(args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn init_tenants_and_json_listing() {
    let dir = tempfile::tempdir().expect("dir");
    let db = db_arg(dir.path());
    ok(&["init", "--db", &db]);
    ok(&[
        "tenant",
        "add",
        "--db",
        &db,
        "--id",
        "caps-automotive",
        "--name",
        "Caps Automotive",
        "--plan",
        "pro",
    ]);
    ok(&[
        "tenant",
        "add",
        "--db",
        &db,
        "--id",
        "bolt-bros",
        "--name",
        "Bolt Bros",
    ]);
    let list: serde_json::Value =
        serde_json::from_str(&ok(&["tenant", "list", "--db", &db, "--json"])).expect("JSON list");
    let ids: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, ["bolt-bros", "caps-automotive"]);
    assert_eq!(list[1]["plan"], "pro");
    assert_eq!(list[1]["limits"]["max_users"], 25);
    let text = ok(&["tenant", "list", "--db", &db]);
    assert!(
        text.contains("caps-automotive") && text.contains("Bolt Bros"),
        "{text}"
    );

    let shown: serde_json::Value = serde_json::from_str(&ok(&[
        "tenant",
        "suspend",
        "--db",
        &db,
        "--id",
        "bolt-bros",
        "--json",
    ]))
    .expect("JSON");
    assert_eq!(shown["status"], "suspended");
    let shown: serde_json::Value = serde_json::from_str(&ok(&[
        "tenant",
        "show",
        "--db",
        &db,
        "--id",
        "bolt-bros",
        "--json",
    ]))
    .expect("JSON");
    assert_eq!(shown["status"], "suspended");
    assert_eq!(shown["settings"]["currency"], "USD");
    ok(&["tenant", "activate", "--db", &db, "--id", "bolt-bros"]);
    assert!(
        ok(&["tenant", "show", "--db", &db, "--id", "bolt-bros"]).contains("status:      active")
    );
}

#[test]
fn bad_input_exits_2_with_the_reason_on_stderr_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let db = db_arg(dir.path());
    ok(&["init", "--db", &db]);
    for (args, needle) in [
        (
            vec![
                "tenant",
                "add",
                "--db",
                &db,
                "--id",
                "Caps Auto",
                "--name",
                "x",
            ],
            "only lowercase",
        ),
        (
            vec![
                "tenant", "add", "--db", &db, "--id", "caps", "--name", "x", "--plan", "gold",
            ],
            "gold",
        ),
        (
            vec!["tenant", "show", "--db", &db, "--id", "nobody"],
            "does not exist",
        ),
        (
            vec!["tenant", "suspend", "--db", &db, "--id", "nobody"],
            "does not exist",
        ),
        (
            vec!["query", "--db", &db, "--tenant", "nobody", "SELECT 1"],
            "does not exist",
        ),
    ] {
        let o = pos_node(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
    let missing = dir.path().join("missing.db").display().to_string();
    let o = pos_node(&["tenant", "list", "--db", &missing]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("pos-node: error: no database at"),
        "{}",
        stderr(&o)
    );
    assert!(
        !Path::new(&missing).exists(),
        "a read command must not create a database"
    );
    assert_eq!(ok(&["tenant", "list", "--db", &db, "--json"]).trim(), "[]");
}

#[test]
fn query_prints_a_table_or_json_and_refuses_what_reports_may_not_do() {
    let dir = tempfile::tempdir().expect("dir");
    let db = db_arg(dir.path());
    ok(&[
        "tenant", "add", "--db", &db, "--id", "caps", "--name", "Caps",
    ]);
    ok(&[
        "tenant", "add", "--db", &db, "--id", "bolt", "--name", "Bolt",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&ok(&[
        "query",
        "--db",
        &db,
        "--tenant",
        "caps",
        "--json",
        "SELECT id, name FROM tenants",
    ]))
    .expect("JSON rows");
    assert_eq!(rows, serde_json::json!([{ "id": "caps", "name": "Caps" }]));
    let table = ok(&[
        "query",
        "--db",
        &db,
        "--tenant",
        "caps",
        "SELECT id, name FROM tenants",
    ]);
    assert!(
        table.lines().next().is_some_and(|h| h.starts_with("id")),
        "{table}"
    );
    assert!(table.contains("(1 rows)"));
    for sql in [
        "SELECT * FROM main.tenants",
        "DELETE FROM products",
        "PRAGMA table_info(users)",
    ] {
        let o = pos_node(&["query", "--db", &db, "--tenant", "caps", sql]);
        assert_eq!(o.status.code(), Some(2), "{sql}");
        assert!(stderr(&o).contains("refused"), "{sql}: {}", stderr(&o));
    }
}

#[test]
fn verify_exits_0_when_clean_and_1_listing_every_violation() {
    let dir = tempfile::tempdir().expect("dir");
    let db = db_arg(dir.path());
    ok(&[
        "tenant", "add", "--db", &db, "--id", "caps", "--name", "Caps",
    ]);
    assert!(ok(&["verify", "--db", &db]).starts_with("ok:"));
    let report: serde_json::Value =
        serde_json::from_str(&ok(&["verify", "--db", &db, "--json"])).expect("JSON");
    assert_eq!(report["violations"], serde_json::json!([]));

    let conn = rusqlite::Connection::open(dir.path().join("node.db")).expect("raw");
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF;
         CREATE TABLE scratch (id TEXT PRIMARY KEY);
         INSERT INTO customers (id, tenant_id, code, first_name, last_name, created_at, updated_at)
         VALUES ('x', 'gone', 'C', 'A', 'B', 't', 't');",
    )
    .expect("break it");
    drop(conn);
    let o = pos_node(&["verify", "--db", &db, "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON report");
    let checks: Vec<(&str, &str)> = report["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| {
            (
                v["check"].as_str().unwrap_or(""),
                v["table"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for expected in [
        ("tenant_id_column", "scratch"),
        ("unknown_tenant", "customers"),
        ("foreign_key_check", "customers"),
    ] {
        assert!(checks.contains(&expected), "{expected:?} not in {checks:?}");
    }
    let o = pos_node(&["verify", "--db", &db]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("violations"));
}

#[test]
fn outbox_list_prints_the_pending_operations_as_json() {
    let dir = tempfile::tempdir().expect("dir");
    let db = db_arg(dir.path());
    ok(&[
        "tenant", "add", "--db", &db, "--id", "caps", "--name", "Caps",
    ]);
    {
        let store = pos_tenancy::Store::open(dir.path().join("node.db")).expect("store");
        let caps = store.tenant(&"caps".parse().expect("id")).expect("caps");
        caps.bootstrap_admin("owner", "Owner").expect("admin");
    }
    let ops: Vec<pos_tenancy::Operation> = serde_json::from_str(&ok(&[
        "outbox", "list", "--db", &db, "--tenant", "caps", "--json",
    ]))
    .expect("operations");
    assert_eq!(ops.len(), 1, "the bootstrap admin");
    assert_eq!(ops[0].table, "users");
    assert_eq!(ops[0].columns["username"], "owner");
    assert!(ok(&["outbox", "list", "--db", &db, "--tenant", "caps"]).contains("(1 pending)"));
    let o = pos_node(&["outbox", "list", "--db", &db, "--tenant", "Caps!"]);
    assert_eq!(o.status.code(), Some(2));
}

/// A node database with one tenant and some rows in several tables (users, products, the
/// outbox and the audit log), so that verify has rows to try moving to another tenant.
fn node_with_rows(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("node.db");
    let store = pos_tenancy::Store::open(&path).expect("store");
    let caps: pos_tenancy::TenantId = "caps".parse().expect("id");
    store
        .add_tenant(&pos_tenancy::NewTenant::new(caps.clone(), "Caps"))
        .expect("tenant");
    store
        .tenant(&caps)
        .expect("caps")
        .bootstrap_admin("owner", "Owner")
        .expect("admin");
    drop(store);
    // Rows written straight into the file, enough for a few hundred pages.
    let conn = rusqlite::Connection::open(&path).expect("raw");
    conn.execute_batch(
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r LIMIT 3000)
         INSERT INTO products (id, tenant_id, sku, name, price_minor, currency, created_at, updated_at)
         SELECT printf('00000000-0000-7000-8000-%012d', n), 'caps', 'SKU-' || n,
                'Product number ' || n, 100 + n, 'USD', '2026-01-01T00:00:00.000Z',
                '2026-01-01T00:00:00.000Z' FROM r;",
    )
    .expect("rows");
    drop(conn);
    path
}

/// Runs `pos-node` as a user that the file's mode keeps from writing it: this process's user,
/// unless it writes whatever the mode says (root, as in many CI containers), then `nobody`
/// through `setpriv`. `None` when neither can be arranged here.
fn as_reader_of(file: &Path, args: &[&str]) -> Option<Output> {
    let writes_anyway = std::fs::OpenOptions::new().append(true).open(file).is_ok();
    if !writes_anyway {
        return Some(pos_node(args));
    }
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let can = |program: &str, rest: &[&str]| {
        Command::new("setpriv")
            .args(nobody)
            .arg(program)
            .args(rest)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let file = file.to_str()?;
    if !can(env!("CARGO_BIN_EXE_pos-node"), &["--version"]) || !can("test", &["-r", file]) {
        return None;
    }
    Command::new("setpriv")
        .args(nobody)
        .arg(env!("CARGO_BIN_EXE_pos-node"))
        .args(args)
        .output()
        .ok()
}

#[test]
fn verify_checks_a_file_it_may_only_read_and_writes_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let path = node_with_rows(dir.path());
    let db = path.display().to_string();
    let before = std::fs::read(&path).expect("bytes");
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
    };
    mode(&path, 0o444);
    // First in a directory the reader may write (SQLite puts its reader's files there),
    // then in one it may not: both are checked, and clean.
    for dir_mode in [0o777, 0o555] {
        mode(dir.path(), dir_mode);
        let Some(o) = as_reader_of(&path, &["verify", "--db", &db]) else {
            mode(dir.path(), 0o755);
            eprintln!(
                "skipped: this process writes read-only files and cannot run pos-node as \
                 another user (setpriv), so a read-only file cannot be arranged here"
            );
            return;
        };
        assert_eq!(
            o.status.code(),
            Some(0),
            "directory {dir_mode:o}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(stdout(&o).starts_with("ok:"), "{}", stdout(&o));
        assert_eq!(std::fs::read(&path).expect("bytes"), before);
    }
    mode(dir.path(), 0o755);
}

#[test]
fn verify_reads_past_a_writer_and_gives_up_on_a_file_locked_against_readers() {
    let dir = tempfile::tempdir().expect("dir");
    let path = node_with_rows(dir.path());
    let db = path.display().to_string();

    // Another process writing (its write lock held) does not keep verify from reading a
    // consistent snapshot: no lock waits, no "cannot be checked" violations.
    let writer = rusqlite::Connection::open(&path).expect("writer");
    writer
        .execute_batch("BEGIN EXCLUSIVE; UPDATE tenants SET name = 'Caps (writing)';")
        .expect("write lock held");
    let o = pos_node(&["verify", "--db", &db]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("ok:"), "{}", stdout(&o));
    writer.execute_batch("ROLLBACK").expect("released");

    // A lock that keeps readers out (exclusive locking mode) ends verify once the busy
    // timeout has passed: exit 2 with the reason, not a list of violations.
    writer
        .execute_batch(
            "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; UPDATE tenants SET name = name;",
        )
        .expect("exclusive lock held");
    let o = pos_node(&["verify", "--db", &db, "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("locked by another process") && stderr(&o).contains("nothing"),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty(), "no report: {}", stdout(&o));
    drop(writer);
}

#[test]
fn verify_changes_no_byte_of_a_damaged_file() {
    let dir = tempfile::tempdir().expect("dir");
    let path = node_with_rows(dir.path());
    // Two leaf pages of the products the file was filled with: damage there is damage to data
    // (a page of the free list, where a fixed offset in the file may land, holds none).
    let leaves: Vec<usize> = {
        let conn = rusqlite::Connection::open(&path).expect("raw connection");
        let mut stmt = conn
            .prepare(
                "SELECT pageno FROM dbstat WHERE name = 'products' AND pagetype = 'leaf'
                 ORDER BY pageno",
            )
            .expect("dbstat");
        stmt.query_map([], |r| r.get::<_, i64>(0))
            .expect("pages")
            .map(|p| usize::try_from(p.expect("page")).expect("page number"))
            .collect()
    };
    assert!(leaves.len() > 4, "{} leaf pages", leaves.len());
    let mut bytes = std::fs::read(&path).expect("bytes");
    let page = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    // Page numbers count from 1; the header (page 1) stays readable. Cells fill a page from
    // its end: the last 200 bytes are rows (the middle may be the page's own free space).
    for p in [leaves[leaves.len() / 3], leaves[leaves.len() / 2]] {
        bytes[p * page - 200..p * page].fill(0xa5);
    }
    std::fs::write(&path, &bytes).expect("damaged");
    let o = pos_node(&["verify", "--db", &path.display().to_string()]);
    assert!(
        matches!(o.status.code(), Some(1 | 2)),
        "found problems or could not check: {:?} {}{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    let after = std::fs::read(&path).expect("bytes");
    let changed: Vec<usize> = (0..bytes.len().max(after.len()))
        .filter(|&i| bytes.get(i) != after.get(i))
        .collect();
    assert!(
        changed.is_empty(),
        "{} bytes changed, the first at {:?}",
        changed.len(),
        &changed[..changed.len().min(10)]
    );
}

#[test]
fn tenant_settings_sets_a_standalone_nodes_settings_and_refuses_bad_ones_changing_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let db = db_arg(dir.path());
    ok(&["init", "--db", &db]);
    ok(&[
        "tenant", "add", "--db", &db, "--id", "caps", "--name", "Caps",
    ]);
    let show = || -> serde_json::Value {
        serde_json::from_str(&ok(&[
            "tenant", "show", "--db", &db, "--id", "caps", "--json",
        ]))
        .expect("JSON")
    };
    let mut settings = show()["settings"].clone();
    settings["brand_name"] = "Caps Automotive".into();
    settings["locale"] = "de-DE".into();
    settings["currency"] = "EUR".into();
    settings["features"] = serde_json::json!({"gift_cards": false});
    let good = dir.path().join("good.json");
    std::fs::write(&good, settings.to_string()).expect("write");
    let out = ok(
        &["tenant", "settings", "--db", &db, "--id", "caps", "--file"]
            .into_iter()
            .chain([good.to_str().expect("utf-8 path"), "--json"])
            .collect::<Vec<_>>(),
    );
    let printed: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(printed["settings"]["brand_name"], "Caps Automotive");
    let stored = show();
    assert_eq!(stored["settings"], settings);
    let text = ok(&["tenant", "show", "--db", &db, "--id", "caps"]);
    assert!(text.contains("gift_cards off"), "{text}");

    // Each bad input: exit 2, a reason on stderr, nothing on stdout, the settings unchanged.
    let mut typo = settings.clone();
    typo["features"] = serde_json::json!({"giftcards": false});
    let mut bad_locale = settings.clone();
    bad_locale["locale"] = "German".into();
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("bad JSON", "{\"brand_name\": ".into(), "caps", "malformed"),
        (
            "unknown switch",
            typo.to_string(),
            "caps",
            "unknown feature switch \"giftcards\"",
        ),
        (
            "bad locale",
            bad_locale.to_string(),
            "caps",
            "locale \"German\"",
        ),
        ("unknown tenant", settings.to_string(), "nobody", "nobody"),
        (
            "bad tenant id",
            settings.to_string(),
            "Not A Slug",
            "Not A Slug",
        ),
    ];
    for (what, body, tenant, says) in cases {
        let file = dir.path().join("bad.json");
        std::fs::write(&file, body).expect("write");
        let o = pos_node(&[
            "tenant",
            "settings",
            "--db",
            &db,
            "--id",
            tenant,
            "--file",
            file.to_str().expect("utf-8 path"),
        ]);
        assert_eq!(o.status.code(), Some(2), "{what}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{what}: {}", stdout(&o));
        assert!(stderr(&o).contains(says), "{what}: {}", stderr(&o));
        assert_eq!(show(), stored, "{what} changed the tenant");
    }
    let missing = pos_node(&[
        "tenant",
        "settings",
        "--db",
        &db,
        "--id",
        "caps",
        "--file",
        "/nonexistent/s.json",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("cannot read"),
        "{}",
        stderr(&missing)
    );
    assert_eq!(show(), stored);
}
