//! `pos-node backup ...`, `pos-node export`, `pos-node restore` and `pos-node tenant delete`
//! as a user types them: exit codes, JSON reports, and errors that say what was wrong.

use std::path::Path;
use std::process::{Command, Output};

fn pos_node(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pos-node"))
        .args(args)
        .output()
        .expect("pos-node runs")
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

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).expect("a JSON report")
}

/// Exit code 2 and the error on stderr.
fn fails(args: &[&str]) -> String {
    let o = pos_node(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    let err = stderr(&o);
    assert!(err.starts_with("pos-node: error: "), "{err}");
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
        ok(&["demo", "--db", &db, "--tenant", id, "--sales", "5"]);
    }
    db
}

#[test]
fn backup_create_list_verify_and_restore() {
    let dir = tempfile::tempdir().expect("dir");
    let db = node(dir.path());
    let bk = dir.path().join("backups").display().to_string();

    let report = json(&["backup", "create", "--db", &db, "--to", &bk, "--json"]);
    let id = report["id"].as_str().expect("an id").to_owned();
    let file = report["file"]["path"].as_str().expect("a path").to_owned();
    assert_eq!(report["tenants"], serde_json::json!(["bolt", "caps"]));
    assert!(Path::new(&file).is_file() && Path::new(&format!("{file}.sha256")).is_file());
    assert!(report["pruned"]["removed"]
        .as_array()
        .is_some_and(Vec::is_empty));

    let text = ok(&["backup", "create", "--db", &db, "--to", &bk, "--no-prune"]);
    assert!(
        text.contains("backed up") && text.contains("SHA-256"),
        "{text}"
    );

    let list = json(&["backup", "list", "--db", &db, "--json"]);
    let entries = list.as_array().expect("an array");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["id"], id.as_str(), "newest first");
    assert_eq!(entries[1]["status"], "ok");
    assert_eq!(entries[1]["kind"], "full");
    assert!(ok(&["backup", "list", "--db", &db]).contains(&id));

    let checked = ok(&["backup", "verify", "--db", &db, "--id", &id]);
    assert!(checked.contains("0 with problems"), "{checked}");
    // A changed backup: exit 1, with the reason.
    let mut bytes = std::fs::read(&file).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, bytes).expect("write");
    let o = pos_node(&["backup", "verify", "--db", &db, "--id", &id]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("checksum mismatch") && out.contains(&id),
        "{out}"
    );
    let o = pos_node(&["backup", "verify", "--db", &db, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let err = fails(&["backup", "restore", "--db", &db, "--from", &file]);
    assert!(err.contains("does not match its recorded SHA-256"), "{err}");
    assert!(fails(&["backup", "verify", "--db", &db, "--id", "not-an-id"]).contains("--id"));

    // The good one restores onto the same terminal, and onto a new disk with a new id.
    let good = entries[0]["path"].as_str().expect("a path").to_owned();
    let restored = json(&["backup", "restore", "--db", &db, "--from", &good, "--json"]);
    assert_eq!(restored["same_terminal"], true);
    let fresh = dir.path().join("spare.db").display().to_string();
    let text = ok(&["backup", "restore", "--db", &fresh, "--from", &good]);
    assert!(text.contains("new id"), "{text}");
    assert!(ok(&["verify", "--db", &fresh]).starts_with("ok"));

    let pruned = json(&["backup", "prune", "--db", &db, "--dry-run", "--json"]);
    assert_eq!(pruned["dry_run"], true);
    assert!(ok(&["backup", "prune", "--db", &db]).contains("pruning"));
}

#[test]
fn a_restore_over_a_database_in_use_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let db = node(dir.path());
    let bk = dir.path().join("backups").display().to_string();
    let report = json(&["backup", "create", "--db", &db, "--to", &bk, "--json"]);
    let file = report["file"]["path"].as_str().expect("a path").to_owned();
    let till = pos_tenancy::Store::open(&db).expect("the till opens the database");
    let err = fails(&["backup", "restore", "--db", &db, "--from", &file]);
    assert!(
        err.contains("in use") && err.contains("nothing was changed"),
        "{err}"
    );
    drop(till);
    ok(&["backup", "restore", "--db", &db, "--from", &file]);
    // Not a backup; a database that does not exist is never backed up.
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "hello").expect("write");
    let err = fails(&[
        "backup",
        "restore",
        "--db",
        &db,
        "--from",
        &notes.display().to_string(),
    ]);
    assert!(err.contains("checksum"), "{err}");
    let missing = dir.path().join("missing.db").display().to_string();
    assert!(fails(&["backup", "create", "--db", &missing, "--to", &bk]).contains("no such file"));
}

#[test]
fn export_restore_and_offboarding() {
    let dir = tempfile::tempdir().expect("dir");
    let db = node(dir.path());
    let to = dir.path().join("caps.export").display().to_string();

    let export = json(&[
        "export", "--db", &db, "--tenant", "caps", "--to", &to, "--json",
    ]);
    assert_eq!(export["tenant"], "caps");
    assert!(export["rows"].as_u64().is_some_and(|r| r > 0));
    assert!(Path::new(&format!("{to}.sha256")).is_file());
    let err = fails(&["export", "--db", &db, "--tenant", "caps", "--to", &to]);
    assert!(err.contains("already exists"), "{err}");
    let err = fails(&[
        "export",
        "--db",
        &db,
        "--tenant",
        "nobody",
        "--to",
        &format!("{to}.2"),
    ]);
    assert!(err.contains("no tenant nobody"), "{err}");
    let unwritable = dir
        .path()
        .join("node.db")
        .join("x.export")
        .display()
        .to_string();
    let err = fails(&[
        "export",
        "--db",
        &db,
        "--tenant",
        "caps",
        "--to",
        &unwritable,
    ]);
    assert!(err.contains("cannot write the export"), "{err}");

    // Sales made after the export are not synced: refused, with how many, unless --force.
    ok(&["demo", "--db", &db, "--tenant", "caps", "--sales", "2"]);
    let err = fails(&["restore", "--db", &db, "--tenant", "caps", "--from", &to]);
    assert!(
        err.contains("operations not yet synced") && err.contains("--force"),
        "{err}"
    );
    let err = fails(&[
        "restore", "--db", &db, "--tenant", "bolt", "--from", &to, "--force",
    ]);
    assert!(err.contains("export of tenant caps, not of bolt"), "{err}");
    let restored = json(&[
        "restore", "--db", &db, "--tenant", "caps", "--from", &to, "--force", "--json",
    ]);
    assert_eq!(restored["rows"], export["rows"]);
    assert!(ok(&["verify", "--db", &db]).starts_with("ok"));

    // Offboarding: refused while unsynced, then forced; the tenant is gone, its export kept.
    let off = dir.path().join("caps-final.export").display().to_string();
    let err = fails(&[
        "tenant",
        "delete",
        "--db",
        &db,
        "--id",
        "caps",
        "--export-to",
        &off,
    ]);
    assert!(err.contains("not yet synced"), "{err}");
    assert!(!Path::new(&off).exists());
    let deleted = json(&[
        "tenant",
        "delete",
        "--db",
        &db,
        "--id",
        "caps",
        "--export-to",
        &off,
        "--force",
        "--json",
    ]);
    assert_eq!(deleted["tenant"], "caps");
    assert!(deleted["rows_deleted"].as_u64().is_some_and(|r| r > 0));
    let tenants = json(&["tenant", "list", "--db", &db, "--json"]);
    assert_eq!(tenants.as_array().map(Vec::len), Some(1));
    assert!(ok(&["verify", "--db", &db]).starts_with("ok"));
    // And back.
    let text = ok(&["restore", "--db", &db, "--tenant", "caps", "--from", &off]);
    assert!(text.contains("registered again"), "{text}");
    assert_eq!(
        json(&["tenant", "list", "--db", &db, "--json"])
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[test]
fn backups_and_verify_cover_a_promoted_tenants_own_file() {
    let dir = tempfile::tempdir().expect("dir");
    let db = node(dir.path());
    let bk = dir.path().join("backups").display().to_string();
    let home = {
        let store = pos_tenancy::Store::open(&db).expect("the node opens");
        let caps: pos_tenancy::TenantId = "caps".parse().expect("an id");
        store
            .promote_tenant(&caps, None, pos_tenancy::MoveReason::Operator, &mut |_| {})
            .expect("caps moves to a file of its own");
        store
            .tenant_home_path(&caps)
            .expect("a route")
            .expect("a file")
    };
    ok(&["demo", "--db", &db, "--tenant", "caps", "--sales", "2"]);
    assert!(ok(&["verify", "--db", &db]).starts_with("ok"));
    let sales = |db: &str| {
        json(&[
            "query",
            "--db",
            db,
            "--tenant",
            "caps",
            "--json",
            "SELECT count(*) AS n FROM sales",
        ])[0]["n"]
            .as_i64()
            .expect("a count")
    };
    let sold = sales(&db);

    let report = json(&["backup", "create", "--db", &db, "--to", &bk, "--json"]);
    let id = report["id"].as_str().expect("an id").to_owned();
    let file = report["file"]["path"].as_str().expect("a path").to_owned();
    assert_eq!(report["tenant_files"][0]["tenant"], "caps");
    let part = report["tenant_files"][0]["file"]["path"]
        .as_str()
        .expect("a path")
        .to_owned();
    assert!(part.starts_with(&format!("{file}.tenants/")), "{part}");
    let text = ok(&["backup", "create", "--db", &db, "--to", &bk, "--no-prune"]);
    assert!(text.contains("tenant caps's own file to"), "{text}");
    assert!(ok(&["backup", "list", "--db", &db]).contains("+ 1 tenant file"));
    let checked = ok(&["backup", "verify", "--db", &db, "--id", &id]);
    assert!(
        checked.contains("ok       tenant caps") && checked.contains("0 with problems"),
        "{checked}"
    );

    ok(&["demo", "--db", &db, "--tenant", "caps", "--sales", "3"]);
    assert!(sales(&db) > sold);

    // A changed tenant file: reported (exit 1), and the backup is never restored.
    let mut bytes = std::fs::read(&part).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&part, bytes).expect("write");
    let o = pos_node(&["backup", "verify", "--db", &db, "--id", &id]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("PROBLEM  tenant caps"), "{out}");
    let err = fails(&["backup", "restore", "--db", &db, "--from", &file]);
    assert!(
        err.contains("does not match its recorded SHA-256") && err.contains("nothing was changed"),
        "{err}"
    );

    // The good one restores, the tenant's rows routed to their file.
    let good = json(&["backup", "list", "--db", &db, "--json"])[0]["path"]
        .as_str()
        .expect("a path")
        .to_owned();
    let restored = json(&["backup", "restore", "--db", &db, "--from", &good, "--json"]);
    assert_eq!(restored["tenant_files"][0]["tenant"], "caps");
    assert!(ok(&["verify", "--db", &db]).starts_with("ok"));
    assert_eq!(sales(&db), sold, "the tenant's sales as at the backup");

    // A tenant file that is gone: `verify` names the tenant and the file (exit 1).
    let now_home = restored["tenant_files"][0]["path"]
        .as_str()
        .expect("a path")
        .to_owned();
    assert_ne!(now_home, home.display().to_string());
    std::fs::remove_file(&now_home).expect("remove");
    let o = pos_node(&["verify", "--db", &db]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("tenant_file") && out.contains("caps") && out.contains(&now_home),
        "{out}"
    );
}
