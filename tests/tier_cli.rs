//! `pos-node promote`, `demote`, `purge` and `storage` as a user types them: a tenant moved
//! into a file of its own is listed, queried and exported from there and comes back whole;
//! the automatic rule; JSON reports; bad input that exits 2 and changes nothing; a stdout
//! that is closed or full.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn pos_node_with(args: &[&str], stdout: Stdio) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pos-node"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("pos-node runs")
}

fn pos_node(args: &[&str]) -> Output {
    pos_node_with(args, Stdio::piped())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(args: &[&str]) -> String {
    let o = pos_node(args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    assert!(
        o.stderr.is_empty(),
        "no progress bar off a terminal: {}",
        stderr(&o)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).expect("a JSON report")
}

/// Exit code 2, nothing on stdout, and the reason on stderr (ours or clap's).
fn fails(args: &[&str]) -> String {
    let o = pos_node(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(o.stdout.is_empty(), "{args:?} printed a report");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(
        err.starts_with("pos-node: error: ") || err.starts_with("error: "),
        "{args:?}: {err}"
    );
    err
}

/// A node with two tenants that have sold something.
fn node(dir: &Path) -> String {
    let db = dir.join("node.db").display().to_string();
    ok(&["init", "--db", &db]);
    for (id, name) in [("caps", "Caps Automotive"), ("bolt", "Bolt Bros")] {
        ok(&[
            "tenant", "add", "--db", &db, "--id", id, "--name", name, "--plan", "pro",
        ]);
        ok(&["demo", "--db", &db, "--tenant", id, "--sales", "3"]);
    }
    db
}

fn homes(db: &str) -> PathBuf {
    PathBuf::from(format!("{db}.tenants"))
}

/// The tenants' own files (and leftovers) beside the node, by name.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Everything a command could change: the node file's bytes (with its log, if any) and the
/// files beside it.
fn snapshot(db: &str) -> (Vec<Vec<u8>>, Vec<String>) {
    let bytes = ["", "-wal"]
        .iter()
        .map(|s| std::fs::read(format!("{db}{s}")).unwrap_or_default())
        .collect();
    (bytes, files_in(&homes(db)))
}

fn tiers(db: &str) -> Vec<(String, String)> {
    json(&["tenant", "list", "--db", db, "--json"])
        .as_array()
        .expect("an array")
        .iter()
        .map(|t| {
            (
                t["id"].as_str().expect("id").to_owned(),
                t["tier"].as_str().expect("tier").to_owned(),
            )
        })
        .collect()
}

fn count(db: &str, tenant: &str, table: &str) -> u64 {
    let rows = json(&[
        "query",
        "--db",
        db,
        "--tenant",
        tenant,
        "--json",
        &format!("SELECT count(*) AS n FROM {table}"),
    ]);
    rows[0]["n"].as_u64().expect("a count")
}

fn is_sha256(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn a_promoted_tenant_is_listed_queried_and_exported_from_its_own_file_and_comes_back() {
    let dir = tempfile::tempdir().expect("dir");
    let db = node(dir.path());
    let sales = count(&db, "caps", "sales");
    let bolt_sales = count(&db, "bolt", "sales");

    let moved = json(&["promote", "--db", &db, "--tenant", "caps", "--json"]);
    assert_eq!(moved["tenant"], "caps");
    assert_eq!(moved["direction"], "promote");
    assert_eq!(moved["reason"], "operator");
    let file = PathBuf::from(moved["file"].as_str().expect("where it lives"));
    assert!(file.starts_with(homes(&db)) && file.is_file(), "{file:?}");
    assert!(moved["rows"].as_u64().is_some_and(|r| r > 0));
    assert!(is_sha256(&moved["sha256"]), "{moved}");
    assert!(moved["tables"].as_array().is_some_and(|t| !t.is_empty()));
    assert!(moved["keep_until"].is_string() && moved["seconds"].is_number());

    assert_eq!(
        tiers(&db),
        [
            ("bolt".to_owned(), "shared".to_owned()),
            ("caps".to_owned(), "dedicated".to_owned())
        ]
    );
    let shown = ok(&["tenant", "show", "--db", &db, "--id", "caps"]);
    assert!(shown.contains("tier:        dedicated"), "{shown}");
    let storage = json(&["storage", "--db", &db, "--json"]);
    assert_eq!(storage["settings"]["keep_days"], 30);
    assert_eq!(storage["settings"]["auto_promote_users"], Value::Null);
    let listed = storage["tenants"].as_array().expect("tenants");
    assert_eq!(listed[1]["id"], "caps");
    assert_eq!(listed[1]["file"], moved["file"]);
    assert_eq!(
        listed[0]["file"],
        Value::Null,
        "bolt lives in the shared file"
    );
    let text = ok(&["storage", "--db", &db]);
    assert!(text.contains("automatic rule:  off"), "{text}");
    assert!(text.contains(&file.display().to_string()), "{text}");

    // Read, written and exported from its own file; the other tenant as it was.
    assert_eq!(count(&db, "caps", "sales"), sales);
    ok(&["demo", "--db", &db, "--tenant", "caps", "--sales", "2"]);
    let sold = count(&db, "caps", "sales");
    assert!(sold > sales);
    assert_eq!(count(&db, "bolt", "sales"), bolt_sales);
    let to = dir.path().join("caps.export").display().to_string();
    let export = json(&[
        "export", "--db", &db, "--tenant", "caps", "--to", &to, "--json",
    ]);
    assert!(export["rows"].as_u64().is_some_and(|r| r > 0));

    // And back, with what was written meanwhile.
    let text = ok(&[
        "demote",
        "--db",
        &db,
        "--tenant",
        "caps",
        "--keep-days",
        "0",
    ]);
    assert!(
        text.contains("demoted tenant caps") && text.contains("the shared file"),
        "{text}"
    );
    assert!(
        text.contains("SHA-256") && text.contains("kept until"),
        "{text}"
    );
    assert_eq!(tiers(&db)[1], ("caps".to_owned(), "shared".to_owned()));
    assert_eq!(count(&db, "caps", "sales"), sold);
    assert!(ok(&["verify", "--db", &db]).starts_with("ok"));

    // The demotion kept the file for 0 days: purge removes it; the promotion's shared copy is
    // the tenant's home again, so nothing of it is kept.
    let purged = json(&["purge", "--db", &db, "--json"]);
    let removed = purged["purged"].as_array().expect("purged");
    assert_eq!(removed.len(), 1, "{purged}");
    assert_eq!(removed[0]["what"], "file");
    assert_eq!(removed[0]["tenant"], "caps");
    assert_eq!(removed[0]["file"], moved["file"]);
    assert!(!file.exists());
    let kept = purged["kept"].as_array().expect("kept");
    assert!(kept.is_empty(), "{purged}");
    let text = ok(&["purge", "--db", &db]);
    assert!(text.contains("0 copies removed, 0 still inside"), "{text}");
    assert_eq!(count(&db, "caps", "sales"), sold);
}

#[test]
fn a_promotion_kept_for_0_days_leaves_a_shared_copy_that_purge_removes() {
    let dir = tempfile::tempdir().expect("dir");
    let db = node(dir.path());
    let sales = count(&db, "caps", "sales");
    let text = ok(&[
        "promote",
        "--db",
        &db,
        "--tenant",
        "caps",
        "--keep-days",
        "0",
    ]);
    assert!(text.starts_with("promoted tenant caps"), "{text}");
    assert!(text.contains("it now lives in its own file"), "{text}");
    let text = ok(&["purge", "--db", &db]);
    assert!(
        text.contains("removed the shared rows of tenant caps"),
        "{text}"
    );
    assert!(text.contains("1 copies removed, 0 still inside"), "{text}");
    assert_eq!(count(&db, "caps", "sales"), sales, "read from its own file");
    // The way back still works, from the file.
    ok(&["demote", "--db", &db, "--tenant", "caps"]);
    assert_eq!(count(&db, "caps", "sales"), sales);
}

#[test]
fn the_automatic_rule_is_off_by_default_and_promotes_tenants_past_a_threshold() {
    let dir = tempfile::tempdir().expect("dir");
    let db = node(dir.path());
    let text = ok(&["promote", "--db", &db, "--auto"]);
    assert!(text.contains("automatic rule is off"), "{text}");
    let off = json(&["promote", "--db", &db, "--auto", "--json"]);
    assert_eq!(off["rule_on"], false);
    assert_eq!(off["moves"], serde_json::json!([]));

    // Unspecified settings stay as they were.
    let set = json(&[
        "storage",
        "--db",
        &db,
        "--set",
        "--auto-promote-users",
        "50",
        "--keep-days",
        "7",
        "--json",
    ]);
    assert_eq!(
        set,
        serde_json::json!({"auto_promote_users": 50, "auto_promote_rows": null, "keep_days": 7})
    );
    let text = ok(&["promote", "--db", &db, "--auto"]);
    assert!(
        text.contains("no tenant is due (promote at 50 active users)"),
        "{text}"
    );
    let text = ok(&["storage", "--db", &db, "--set", "--auto-promote-rows", "1"]);
    assert!(
        text.contains("promote at 50 active users or at 1 rows") && text.contains("7 days"),
        "{text}"
    );

    let auto = json(&["promote", "--db", &db, "--auto", "--json"]);
    assert_eq!(auto["rule_on"], true);
    let moves = auto["moves"].as_array().expect("moves");
    let promoted: Vec<&str> = moves.iter().filter_map(|m| m["tenant"].as_str()).collect();
    assert_eq!(promoted, ["bolt", "caps"]);
    assert!(moves.iter().all(|m| m["reason"] == "auto"));
    assert_eq!(tiers(&db).iter().filter(|t| t.1 == "dedicated").count(), 2);
    assert!(ok(&["promote", "--db", &db, "--auto"]).contains("no tenant is due"));

    // Both off again; the window stays.
    let set = json(&[
        "storage",
        "--db",
        &db,
        "--set",
        "--auto-promote-users",
        "off",
        "--auto-promote-rows",
        "off",
        "--json",
    ]);
    assert_eq!(
        set,
        serde_json::json!({"auto_promote_users": null, "auto_promote_rows": null, "keep_days": 7})
    );
}

#[test]
fn bad_input_exits_2_says_what_was_wrong_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let db = node(dir.path());
    ok(&["promote", "--db", &db, "--tenant", "caps"]);
    let own = json(&["storage", "--db", &db, "--json"])["tenants"][1]["file"]
        .as_str()
        .expect("caps's file")
        .to_owned();
    let before = snapshot(&db);
    let own_before = std::fs::read(&own).expect("caps's file");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not a database").expect("write");
    let notes = notes.display().to_string();
    let missing = dir.path().join("typo.db").display().to_string();

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["promote", "--db", &db, "--tenant", "nobody"],
            "no tenant nobody on this node (nothing was changed)",
        ),
        (
            vec!["demote", "--db", &db, "--tenant", "nobody"],
            "no tenant nobody",
        ),
        (
            vec!["promote", "--db", &db, "--tenant", "caps"],
            "tenant caps already lives in its own file (nothing was changed)",
        ),
        (
            vec!["demote", "--db", &db, "--tenant", "bolt"],
            "tenant bolt already lives in the shared file",
        ),
        (
            vec!["promote", "--db", &db, "--tenant", "Not A Slug"],
            "tenant id",
        ),
        (
            vec!["promote", "--db", &missing, "--tenant", "caps"],
            "no database at",
        ),
        (
            vec!["demote", "--db", &missing, "--tenant", "caps"],
            "no database at",
        ),
        (vec!["purge", "--db", &missing], "no database at"),
        (vec!["storage", "--db", &missing], "no database at"),
        (
            vec!["promote", "--db", &notes, "--tenant", "caps"],
            "not a database",
        ),
        (
            vec!["promote", "--db", &own, "--tenant", "caps"],
            "a tenant's own file cannot hold tenants",
        ),
        (
            vec!["demote", "--db", &own, "--tenant", "caps"],
            "a tenant's own file cannot hold tenants",
        ),
        (
            vec!["purge", "--db", &own],
            "a tenant's own file cannot hold tenants",
        ),
        (
            vec!["promote", "--db", &own, "--auto"],
            "a tenant's own file",
        ),
        (vec!["storage", "--db", &own], "is tenant caps's own file"),
        (
            vec!["storage", "--db", &own, "--set", "--keep-days", "1"],
            "is tenant caps's own file",
        ),
        (
            vec!["promote", "--db", &db, "--tenant", "bolt", "--keep-days=-1"],
            "from 0 to 36500",
        ),
        (
            vec![
                "promote",
                "--db",
                &db,
                "--tenant",
                "bolt",
                "--keep-days",
                "36501",
            ],
            "from 0 to 36500",
        ),
        (
            vec!["promote", "--db", &db, "--tenant", "bolt", "--auto"],
            "cannot be used with",
        ),
        (vec!["promote", "--db", &db], "required"),
        (
            vec!["promote", "--db", &db, "--auto", "--keep-days", "3"],
            "cannot be used with",
        ),
        (vec!["storage", "--db", &db, "--set"], "required"),
        (vec!["storage", "--db", &db, "--keep-days", "3"], "--set"),
        (
            vec!["storage", "--db", &db, "--set", "--auto-promote-users", "0"],
            "at least 1",
        ),
        (
            vec![
                "storage",
                "--db",
                &db,
                "--set",
                "--auto-promote-users",
                "5",
                "--auto-promote-rows",
                "many",
            ],
            "--auto-promote-rows",
        ),
        (
            vec!["storage", "--db", &db, "--set", "--keep-days", "forever"],
            "--keep-days",
        ),
    ];
    for (args, says) in &cases {
        let err = fails(args);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(snapshot(&db) == before, "{args:?} changed the node");
    }
    assert!(!Path::new(&missing).exists(), "a typo creates no database");
    assert_eq!(
        std::fs::read(&notes).expect("notes"),
        b"not a database".to_vec()
    );
    assert!(std::fs::read(&own).expect("caps's file") == own_before);
    let storage = json(&["storage", "--db", &db, "--json"]);
    assert_eq!(
        storage["settings"],
        serde_json::json!({"auto_promote_users": null, "auto_promote_rows": null, "keep_days": 30})
    );
}

#[test]
fn storage_and_status_exit_1_naming_a_tenant_file_that_is_gone_and_show_the_rest() {
    let dir = tempfile::tempdir().expect("dir");
    let db = node(dir.path());
    let moved = json(&["promote", "--db", &db, "--tenant", "caps", "--json"]);
    let file = moved["file"].as_str().expect("file").to_owned();
    std::fs::remove_file(&file).expect("removed");

    let o = pos_node(&["storage", "--db", &db, "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let view: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let caps = &view["tenants"][1];
    assert_eq!(caps["file"], file.as_str());
    assert!(caps["problem"].is_string(), "{view}");
    assert_eq!(view["tenants"][0]["problem"], Value::Null);
    let o = pos_node(&["storage", "--db", &db]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("PROBLEM") && text.contains(&file), "{text}");
    // Every tenant is still listed, and the other one works.
    assert_eq!(tiers(&db).len(), 2);
    count(&db, "bolt", "sales");
    // The sync status of the others is still shown; the lost one is named, and exits 1.
    let o = pos_node(&["status", "--db", &db, "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let statuses: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let shown: Vec<&str> = statuses
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["tenant"].as_str())
        .collect();
    assert_eq!(shown, ["bolt"]);
    assert!(
        stderr(&o).contains("tenant caps: its status cannot be read"),
        "{}",
        stderr(&o)
    );
    let o = pos_node(&["status", "--db", &db, "--tenant", "caps"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// A stdout whose only reader is already closed: every write fails with a broken pipe.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    Stdio::from(writer)
}

#[test]
fn a_move_stays_done_when_nobody_reads_its_report_and_a_full_disk_is_exit_2() {
    let dir = tempfile::tempdir().expect("dir");
    let db = node(dir.path());
    let quiet = |args: &[&str]| {
        let o = pos_node_with(args, closed_pipe());
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(o.stderr.is_empty(), "{args:?}: {}", stderr(&o));
    };
    quiet(&[
        "promote",
        "--db",
        &db,
        "--tenant",
        "caps",
        "--keep-days",
        "0",
    ]);
    assert_eq!(tiers(&db)[1].1, "dedicated");
    for args in [
        vec!["storage", "--db", &db],
        vec!["storage", "--db", &db, "--json"],
        vec!["purge", "--db", &db, "--json"],
        vec!["promote", "--db", &db, "--auto"],
        vec!["storage", "--db", &db, "--set", "--keep-days", "0"],
    ] {
        quiet(&args);
    }
    quiet(&["demote", "--db", &db, "--tenant", "caps", "--json"]);
    assert_eq!(tiers(&db)[1].1, "shared");
    quiet(&["purge", "--db", &db]);

    let Ok(full) = File::options().write(true).open("/dev/full") else {
        eprintln!("skipped: no /dev/full here");
        return;
    };
    let o = pos_node_with(
        &["promote", "--db", &db, "--tenant", "bolt"],
        Stdio::from(full),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot write the output") && err.contains("No space left"),
        "{err}"
    );
    assert_eq!(tiers(&db)[0], ("bolt".to_owned(), "dedicated".to_owned()));
}
