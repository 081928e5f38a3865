//! The real `pos-node` and `pos-central` binaries against a hostile environment: a stdout
//! whose reader is gone or whose disk is full, read commands and typos pointed at files that
//! are missing, empty or another program's database, and tenant texts holding control
//! characters.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pos_tenancy::protocol::Operation;
use pos_tenancy::{NewTenant, SqliteCentral, Store, TenantSettings};

const NODE: &str = env!("CARGO_BIN_EXE_pos-node");
const CENTRAL: &str = env!("CARGO_BIN_EXE_pos-central");
const SECRET: &str = "a-signing-secret-of-at-least-32-bytes!";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// How long a command that should refuse at once may take before it counts as running on (a
/// `serve` that took a typo for a database would serve forever): only bounds a failure.
const PATIENCE: Duration = Duration::from_secs(60);

/// Runs `bin` with `stdout` as its standard output; its exit and stderr. One still running
/// after [`PATIENCE`] is killed and fails the test.
fn run_with(bin: &str, args: &[&str], stdout: Stdio) -> Output {
    let mut child = Command::new(bin)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    // Drained on threads of their own, so a long output never blocks the command.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} still running after {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().expect("stdout"),
        stderr: err.join().expect("stderr"),
    }
}

fn run(bin: &str, args: &[&str]) -> Output {
    run_with(bin, args, Stdio::piped())
}

/// Runs a command that must succeed; its stdout.
fn ok(bin: &str, args: &[&str]) -> String {
    let out = run(bin, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs a command that must fail with exit 2, naming the program on stderr; its stderr.
fn fails(bin: &str, args: &[&str]) -> String {
    let out = run(bin, args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?} should fail: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    let name = if bin == NODE {
        "pos-node"
    } else {
        "pos-central"
    };
    assert!(
        err.starts_with(&format!("{name}: error: ")),
        "{args:?}: {err}"
    );
    err
}

/// A stdout whose only reader is already closed: every write fails with a broken pipe (Rust
/// programs ignore SIGPIPE), whenever the command gets to it.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    Stdio::from(writer)
}

/// A stdout on which every write fails with "no space left on device", if this system has
/// `/dev/full`.
fn full_disk() -> Option<Stdio> {
    match File::options().write(true).open("/dev/full") {
        Ok(f) => Some(Stdio::from(f)),
        Err(e) => {
            eprintln!("skipped: no /dev/full here ({e})");
            None
        }
    }
}

/// Runs a command whose stdout is a closed pipe; asserts it exits with `code` and says
/// nothing on stderr (no panic, no complaint about the reader going away).
fn quiet_when_closed(bin: &str, args: &[&str], code: i32) {
    let out = run_with(bin, args, closed_pipe());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert!(err.is_empty(), "{args:?} said on stderr: {err}");
}

/// Runs a command whose stdout is a full disk; asserts exit 2 with the reason on stderr.
fn fails_on_a_full_disk(bin: &str, args: &[&str]) {
    let Some(full) = full_disk() else { return };
    let out = run_with(bin, args, full);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(
        err.contains("cannot write the output") && err.contains("No space left"),
        "{args:?}: {err}"
    );
}

/// A node database with tenant `caps`, made through the library.
fn node_db(dir: &Path) -> String {
    let db = dir.join("node.db");
    let store = Store::open(&db).expect("store");
    let caps = "caps".parse().expect("slug");
    store
        .add_tenant(&NewTenant::new(caps, "Caps"))
        .expect("tenant");
    drop(store);
    path(&db)
}

/// A central database with tenant `caps`, and the secret file.
fn central_db(dir: &Path) -> (String, String) {
    let db = path(&dir.join("central.db"));
    ok(
        CENTRAL,
        &[
            "tenant", "add", "--db", &db, "--id", "caps", "--name", "Caps",
        ],
    );
    let secret = dir.join("secret");
    std::fs::write(&secret, SECRET).expect("secret");
    (db, path(&secret))
}

fn tenant_ids(db: &str) -> Vec<String> {
    let list: serde_json::Value =
        serde_json::from_str(&ok(NODE, &["tenant", "list", "--db", db, "--json"])).expect("json");
    list.as_array()
        .expect("array")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_owned())
        .collect()
}

/// A small legacy single-tenant store to adopt.
fn legacy_store(dir: &Path, name: &str, seed: u64) -> std::path::PathBuf {
    let file = dir.join(name);
    pos_tenancy::testkit::legacy::generate(
        &file,
        &pos_tenancy::testkit::legacy::LegacyOptions {
            rows: 1_000,
            seed,
            ..Default::default()
        },
    )
    .expect("a legacy store");
    file
}

// ---------------------------------------------------------------- a stdout that fails

#[test]
fn node_commands_end_quietly_when_the_reader_is_gone_and_keep_their_exit_code() {
    let dir = tempfile::tempdir().expect("dir");
    let db = node_db(dir.path());
    let fresh = path(&dir.path().join("fresh.db"));
    let reads: Vec<Vec<&str>> = vec![
        vec!["init", "--db", &fresh],
        vec!["init", "--db", &fresh, "--json"],
        vec!["tenant", "list", "--db", &db],
        vec!["tenant", "list", "--db", &db, "--json"],
        vec!["tenant", "show", "--db", &db, "--id", "caps"],
        vec!["tenant", "show", "--db", &db, "--id", "caps", "--json"],
        vec!["verify", "--db", &db],
        vec!["verify", "--db", &db, "--json"],
        vec!["outbox", "list", "--db", &db, "--tenant", "caps"],
        vec!["query", "--db", &db, "--tenant", "caps", "SELECT 1 AS one"],
        vec!["status", "--db", &db],
        vec!["backup", "list", "--db", &db],
    ];
    for args in &reads {
        quiet_when_closed(NODE, args, 0);
    }
}

#[test]
fn node_writes_commit_although_nobody_reads_what_they_print() {
    let dir = tempfile::tempdir().expect("dir");
    let db = node_db(dir.path());
    quiet_when_closed(
        NODE,
        &[
            "tenant", "add", "--db", &db, "--id", "bolt", "--name", "Bolt",
        ],
        0,
    );
    assert_eq!(tenant_ids(&db), ["bolt", "caps"]);
    quiet_when_closed(NODE, &["tenant", "suspend", "--db", &db, "--id", "bolt"], 0);
    let shown: serde_json::Value = serde_json::from_str(&ok(
        NODE,
        &["tenant", "show", "--db", &db, "--id", "bolt", "--json"],
    ))
    .expect("json");
    assert_eq!(shown["status"], "suspended");
    quiet_when_closed(
        NODE,
        &["demo", "--db", &db, "--tenant", "caps", "--sales", "2"],
        0,
    );
    let rows = ok(
        NODE,
        &[
            "query",
            "--db",
            &db,
            "--tenant",
            "caps",
            "--json",
            "SELECT count(*) AS n FROM products",
        ],
    );
    assert!(
        !rows.contains("\"n\": 0"),
        "the demo catalog was written: {rows}"
    );
}

#[test]
fn an_adoption_commits_whether_its_report_finds_a_closed_pipe_or_a_full_disk() {
    let dir = tempfile::tempdir().expect("dir");
    let legacy = legacy_store(dir.path(), "legacy.db", 7);
    let db = path(&legacy);
    quiet_when_closed(NODE, &["adopt", "--db", &db, "--tenant", "caps"], 0);
    assert_eq!(tenant_ids(&db), ["caps"], "the adoption was committed");
    // Adopted already: the notice goes nowhere, quietly.
    quiet_when_closed(NODE, &["adopt", "--db", &db, "--tenant", "caps"], 0);

    // Into a full disk: the adoption is committed, and exit 2 says its report was lost.
    let other = path(&legacy_store(dir.path(), "other.db", 8));
    fails_on_a_full_disk(NODE, &["adopt", "--db", &other, "--tenant", "bolt"]);
    if full_disk().is_some() {
        assert_eq!(tenant_ids(&other), ["bolt"]);
    }
}

#[test]
fn node_commands_exit_2_with_a_message_when_stdout_is_a_full_disk() {
    let dir = tempfile::tempdir().expect("dir");
    let db = node_db(dir.path());
    for args in [
        vec!["tenant", "list", "--db", &db],
        vec!["tenant", "list", "--db", &db, "--json"],
        vec!["tenant", "show", "--db", &db, "--id", "caps"],
        vec!["verify", "--db", &db],
        vec!["outbox", "list", "--db", &db, "--tenant", "caps"],
        vec!["query", "--db", &db, "--tenant", "caps", "SELECT 1 AS one"],
        vec!["backup", "list", "--db", &db],
    ] {
        fails_on_a_full_disk(NODE, &args);
    }
    // The write is committed; the exit code says the report of it was lost.
    fails_on_a_full_disk(
        NODE,
        &[
            "tenant", "add", "--db", &db, "--id", "bolt", "--name", "Bolt",
        ],
    );
    if full_disk().is_some() {
        assert_eq!(tenant_ids(&db), ["bolt", "caps"]);
    }
}

#[test]
fn central_commands_end_quietly_when_the_reader_is_gone_and_writes_still_commit() {
    let dir = tempfile::tempdir().expect("dir");
    let (db, secret) = central_db(dir.path());
    quiet_when_closed(
        CENTRAL,
        &[
            "tenant", "add", "--db", &db, "--id", "bolt", "--name", "Bolt",
        ],
        0,
    );
    for args in [
        vec!["tenant", "list", "--db", &db],
        vec!["tenant", "list", "--db", &db, "--json"],
        vec!["tenant", "show", "--db", &db, "--id", "bolt"],
        vec!["tenant", "suspend", "--db", &db, "--id", "bolt", "--json"],
        vec![
            "token",
            "issue",
            "--db",
            &db,
            "--secret-file",
            &secret,
            "--tenant",
            "caps",
            "--device",
            "till-1",
        ],
        vec!["init", "--db", &db],
    ] {
        quiet_when_closed(CENTRAL, &args, 0);
    }
    let list = ok(CENTRAL, &["tenant", "list", "--db", &db]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("bolt\t") && l.contains("\tsuspended\t")),
        "added and suspended with nobody reading: {list}"
    );
}

#[test]
fn central_commands_exit_2_with_a_message_when_stdout_is_a_full_disk() {
    let dir = tempfile::tempdir().expect("dir");
    let (db, secret) = central_db(dir.path());
    for args in [
        vec!["tenant", "list", "--db", &db],
        vec!["tenant", "list", "--db", &db, "--json"],
        vec!["tenant", "show", "--db", &db, "--id", "caps"],
        vec![
            "token",
            "issue",
            "--db",
            &db,
            "--secret-file",
            &secret,
            "--tenant",
            "caps",
            "--device",
            "till-1",
        ],
        // The address line is what scripts read; a server that cannot say it does not start.
        vec![
            "serve",
            "--db",
            &db,
            "--listen",
            "127.0.0.1:0",
            "--secret-file",
            &secret,
        ],
    ] {
        fails_on_a_full_disk(CENTRAL, &args);
    }
}

// ---------------------------------------------------------------- files that are not databases

/// Node commands that work on an existing database (reads, and a write), pointed at `db`.
fn node_commands(db: &str) -> Vec<Vec<&str>> {
    vec![
        vec!["tenant", "list", "--db", db],
        vec!["tenant", "show", "--db", db, "--id", "caps"],
        vec!["status", "--db", db],
        vec!["verify", "--db", db],
        vec!["query", "--db", db, "--tenant", "caps", "SELECT 1"],
        vec!["outbox", "list", "--db", db, "--tenant", "caps"],
        vec!["conflicts", "list", "--db", db, "--tenant", "caps"],
        vec!["tenant", "suspend", "--db", db, "--id", "caps"],
    ]
}

#[test]
fn node_read_commands_leave_a_missing_or_empty_file_as_it_was() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = path(&dir.path().join("typo.db"));
    for args in node_commands(&missing) {
        let err = fails(NODE, &args);
        assert!(err.contains("no database at"), "{args:?}: {err}");
        assert!(!Path::new(&missing).exists(), "{args:?} created {missing}");
    }
    let empty = dir.path().join("empty.db");
    File::create(&empty).expect("an empty file");
    let emptys = path(&empty);
    for args in node_commands(&emptys) {
        let err = fails(NODE, &args);
        assert!(
            err.contains("is not a pos-node database: it is an empty file"),
            "{args:?}: {err}"
        );
        assert_eq!(
            std::fs::metadata(&empty).expect("still there").len(),
            0,
            "{args:?} wrote into the empty file"
        );
    }
    // Creating one is `init`'s work.
    ok(NODE, &["init", "--db", &emptys]);
    assert_eq!(
        ok(NODE, &["tenant", "list", "--db", &emptys, "--json"]).trim(),
        "[]"
    );
}

#[test]
fn node_commands_name_a_central_database_for_what_it_is_and_leave_it_alone() {
    let dir = tempfile::tempdir().expect("dir");
    let (central, _) = central_db(dir.path());
    let before = std::fs::read(&central).expect("central db");
    let mut commands = node_commands(&central);
    commands.push(vec![
        "tenant", "add", "--db", &central, "--id", "bolt", "--name", "Bolt",
    ]);
    commands.push(vec!["init", "--db", &central]);
    for args in commands {
        let err = fails(NODE, &args);
        assert!(
            err.contains("is not a pos-node database: it is a pos-central database"),
            "{args:?}: {err}"
        );
    }
    let err = fails(NODE, &["adopt", "--db", &central, "--tenant", "caps"]);
    assert!(err.contains("it is a pos-central database"), "{err}");
    assert!(!err.contains("multi-tenant"), "{err}");
    assert_eq!(std::fs::read(&central).expect("central db"), before);
}

#[test]
fn central_read_commands_and_serve_leave_a_missing_or_empty_file_as_it_was() {
    let dir = tempfile::tempdir().expect("dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).expect("secret");
    let secret = path(&secret);
    let reads = |db: &str| -> Vec<Vec<String>> {
        [
            vec!["tenant", "list", "--db", db],
            vec!["tenant", "show", "--db", db, "--id", "caps"],
            vec!["tenant", "suspend", "--db", db, "--id", "caps"],
            vec![
                "token",
                "issue",
                "--db",
                db,
                "--secret-file",
                &secret,
                "--tenant",
                "caps",
                "--device",
                "till-1",
            ],
            vec![
                "serve",
                "--db",
                db,
                "--listen",
                "127.0.0.1:0",
                "--secret-file",
                &secret,
            ],
        ]
        .into_iter()
        .map(|a| a.into_iter().map(str::to_owned).collect())
        .collect()
    };
    let missing = path(&dir.path().join("typo.db"));
    for args in reads(&missing) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = fails(CENTRAL, &args);
        assert!(err.contains("no database at"), "{args:?}: {err}");
        assert!(!Path::new(&missing).exists(), "{args:?} created {missing}");
    }
    let empty = dir.path().join("empty.db");
    File::create(&empty).expect("an empty file");
    for args in reads(&path(&empty)) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = fails(CENTRAL, &args);
        assert!(
            err.contains("is an empty file, not a pos-central one"),
            "{args:?}: {err}"
        );
        assert_eq!(
            std::fs::metadata(&empty).expect("there").len(),
            0,
            "{args:?}"
        );
    }
    // `init` makes one (with no tenant yet), which the read commands then open.
    ok(CENTRAL, &["init", "--db", &missing]);
    assert_eq!(
        ok(CENTRAL, &["tenant", "list", "--db", &missing, "--json"]).trim(),
        "[]"
    );
    SqliteCentral::open_existing(&missing).expect("a central database");
}

#[test]
fn adopt_refuses_a_backup_directory_that_does_not_exist_and_creates_none() {
    let dir = tempfile::tempdir().expect("dir");
    let legacy = legacy_store(dir.path(), "legacy.db", 3);
    let before = std::fs::read(&legacy).expect("legacy");
    let typo = dir.path().join("no-such-dir").join("bk");
    let err = fails(
        NODE,
        &[
            "adopt",
            "--db",
            &path(&legacy),
            "--tenant",
            "caps",
            "--backup-dir",
            &path(&typo),
        ],
    );
    assert!(err.contains("no such directory"), "{err}");
    assert!(
        !dir.path().join("no-such-dir").exists(),
        "the directory was created"
    );
    assert_eq!(std::fs::read(&legacy).expect("legacy"), before);
}

// ---------------------------------------------------------------- messages a person can act on

#[test]
fn a_report_on_a_node_level_or_virtual_table_is_told_it_is_not_a_tenant_table() {
    let dir = tempfile::tempdir().expect("dir");
    let db = node_db(dir.path());
    for table in ["node_state", "dbstat", "refinery_schema_history"] {
        let err = fails(
            NODE,
            &[
                "query",
                "--db",
                &db,
                "--tenant",
                "caps",
                &format!("SELECT * FROM {table}"),
            ],
        );
        assert!(
            err.contains(&format!("{table} is not one of the tenant's tables")),
            "{err}"
        );
        assert!(!err.contains("through the tenant's view"), "{err}");
    }
    // A tenant table named the wrong way still gets the hint about its view.
    let err = fails(
        NODE,
        &[
            "query",
            "--db",
            &db,
            "--tenant",
            "caps",
            "SELECT * FROM main.products",
        ],
    );
    assert!(err.contains("through the tenant's view"), "{err}");
}

#[test]
fn an_operation_with_a_bad_id_or_device_id_is_refused_naming_that_field() {
    // An operation as the node writes it: the admin's user row.
    let store = Store::open_in_memory().expect("store");
    let caps = "caps".parse().expect("slug");
    store
        .add_tenant(&NewTenant::new(caps, "Caps"))
        .expect("tenant");
    let handle = store
        .tenant(&"caps".parse().expect("slug"))
        .expect("handle");
    handle.bootstrap_admin("owner", "Owner").expect("admin");
    let ops = handle.pending_operations(1).expect("outbox");
    let good = serde_json::to_value(&ops[0]).expect("json");
    assert!(serde_json::from_value::<Operation>(good.clone()).is_ok());
    for (field, expected) in [
        ("id", "operation id \"nope\" is not a UUID"),
        ("device_id", "device_id \"nope\" is not a UUID"),
        ("actor_user_id", "actor_user_id \"nope\" is not a UUID"),
        ("row_id", "row id \"nope\" is not a UUID"),
    ] {
        let mut bad = good.clone();
        bad[field] = "nope".into();
        let err = serde_json::from_value::<Operation>(bad)
            .expect_err("refused")
            .to_string();
        assert!(err.contains(expected), "{field}: {err}");
    }
    let mut no_actor = good.clone();
    no_actor
        .as_object_mut()
        .expect("object")
        .remove("actor_user_id");
    let op = serde_json::from_value::<Operation>(no_actor).expect("an actor is optional");
    assert_eq!(op.actor_user_id, None);
}

// ---------------------------------------------------------------- texts that act on a terminal

#[test]
fn tenant_names_and_brands_with_control_characters_are_printed_escaped() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("node.db");
    let store = Store::open(&db).expect("store");
    let name = "Caps\u{1b}[2J\u{7}";
    let brand = "Brand\u{1b}]0;owned\u{7}";
    store
        .add_tenant(
            &NewTenant::new("caps".parse().expect("slug"), name)
                .settings(TenantSettings::new(brand)),
        )
        .expect("tenant");
    drop(store);
    let db = path(&db);
    for args in [
        vec!["tenant", "list", "--db", &db],
        vec!["tenant", "show", "--db", &db, "--id", "caps"],
    ] {
        let out = ok(NODE, &args);
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{7}'),
            "{args:?}: {out:?}"
        );
        assert!(out.contains("Caps\\u{1b}[2J\\u{7}"), "{args:?}: {out}");
        assert!(
            out.contains("Brand\\u{1b}]0;owned\\u{7}"),
            "{args:?}: {out}"
        );
    }
    // JSON keeps the exact text (serde escapes it).
    let list: serde_json::Value =
        serde_json::from_str(&ok(NODE, &["tenant", "list", "--db", &db, "--json"])).expect("json");
    assert_eq!(list[0]["name"], name);

    let central = path(&dir.path().join("central.db"));
    ok(
        CENTRAL,
        &[
            "tenant", "add", "--db", &central, "--id", "caps", "--name", name,
        ],
    );
    let out = ok(CENTRAL, &["tenant", "list", "--db", &central]);
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    assert!(out.contains("Caps\\u{1b}[2J\\u{7}"), "{out}");
}

#[test]
fn help_that_cannot_be_written_is_an_error_and_help_to_a_closed_pipe_is_not() {
    for bin in [NODE, CENTRAL] {
        fails_on_a_full_disk(bin, &["--help"]);
        fails_on_a_full_disk(bin, &["--version"]);
        quiet_when_closed(bin, &["--help"], 0);
        // A usage error still says what was wrong, on stderr, exit 2.
        let out = run(bin, &["--no-such-flag"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).contains("--no-such-flag"));
    }
}
