//! Whole-node backups through the public API: taken while a till sells, recorded for every
//! tenant, verified, restored (same terminal or another), pruned by each tenant's retention,
//! and bad input that changes nothing.

mod common;
mod io_common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{first_admin, populate, product, tid};
use io_common::{dump, dump_except};
use pos_tenancy::backup::{self, BackupError, BackupStatus, CreateOptions, PruneOptions};
use pos_tenancy::catalog::{BackupSettings, Product, RestoreJob};
use pos_tenancy::{
    Check, IfUnsynced, MoveReason, NewTenant, Plan, RowId, Store, TenantAccess, Timestamp,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A file store with these tenants, each with an admin and a row in every table.
fn node(db: &Path, tenants: &[(&str, Plan)]) -> Result<Store, Box<dyn std::error::Error>> {
    let store = Store::open(db)?;
    for (id, plan) in tenants {
        store.add_tenant(&NewTenant::new(tid(id), &format!("{id} store")).plan(*plan))?;
        let t = store.tenant(&tid(id))?;
        let admin = t.bootstrap_admin("owner", "Owner")?;
        populate(&t, &admin, id)?;
    }
    Ok(store)
}

fn no_prune() -> CreateOptions {
    CreateOptions::default().without_prune()
}

fn flip_a_byte(path: &Path, at: u64) -> std::io::Result<()> {
    let mut bytes = std::fs::read(path)?;
    let i = usize::try_from(at).unwrap_or(0).min(bytes.len() - 1);
    bytes[i] ^= 0x5a;
    std::fs::write(path, bytes)
}

#[test]
fn a_backup_taken_while_the_till_sells_is_of_one_instant_and_recorded_for_every_tenant(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db, &[("caps", Plan::Pro), ("bolt", Plan::Free)])?;
    // Enough pages that the copy takes many steps.
    let caps = store.tenant(&tid("caps"))?;
    let admin = first_admin(&caps)?;
    for i in 0..40 {
        let mut p = product(&format!("IMG-{i}"), 100);
        p.image = Some(vec![u8::try_from(i % 251)?; 64 * 1024]);
        caps.insert(&admin, &p)?;
    }
    // The till: another connection, selling while the backup runs.
    let till = Store::open(&db)?;
    let till_caps = till.tenant(&tid("caps"))?;
    let till_admin = first_admin(&till_caps)?;
    let mut options = no_prune();
    options.pages_per_step = 16;
    let mut sold: Vec<RowId> = Vec::new();
    let mut slowest = Duration::ZERO;
    let mut steps = 0u32;
    let report = backup::create(&db, &dir.path().join("bk"), &options, &mut |pages| {
        steps += 1;
        if steps % 5 == 1 && pages.done < pages.total {
            let p = product(&format!("SOLD-{steps}"), 500);
            let started = Instant::now();
            till_caps.insert(&till_admin, &p).expect("the till sells");
            slowest = slowest.max(started.elapsed());
            sold.push(p.id);
        }
    })?;
    assert!(sold.len() >= 3, "the till sold during the copy: {sold:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "no sale waited for the backup (slowest {slowest:?})"
    );
    assert_eq!(report.tenants, [tid("bolt"), tid("caps")]);
    assert_eq!(report.node_id, store.node_id());

    // The copy is of the instant it started: none of the sales made during it.
    let copy = rusqlite::Connection::open(&report.file.path)?;
    for id in &sold {
        let n: i64 = copy.query_row(
            "SELECT count(*) FROM products WHERE id = ?1",
            [id.to_string()],
            |r| r.get(0),
        )?;
        assert_eq!(n, 0, "a sale made during the copy is not in it");
        assert!(caps.get::<Product>(*id)?.is_some(), "but it is in the node");
    }
    let images: i64 = copy.query_row(
        "SELECT count(*) FROM products WHERE sku LIKE 'IMG-%'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(images, 40);
    // It holds its own record, one row per tenant, written before the copy.
    let own: Vec<(String, String)> = copy
        .prepare("SELECT tenant_id, status FROM backups WHERE id = ?1 ORDER BY tenant_id")?
        .query_map([report.id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    assert_eq!(
        own,
        [
            ("bolt".to_owned(), "running".to_owned()),
            ("caps".to_owned(), "running".to_owned())
        ]
    );
    drop(copy);

    // Recorded in the node, SHA-256 in the table and beside the file.
    let entry = backup::list(&db)?
        .into_iter()
        .find(|e| e.id == report.id)
        .ok_or("the backup is listed")?;
    assert_eq!(entry.status, BackupStatus::Ok);
    assert_eq!(entry.sha256.as_deref(), Some(report.file.sha256.as_str()));
    assert_eq!(entry.bytes, Some(report.file.bytes));
    assert_eq!(entry.tenants, [tid("bolt"), tid("caps")]);
    assert!(entry.file_present);
    let name = report
        .file
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("a file name")?;
    assert!(
        name.starts_with("node.backup-") && name.ends_with(".db"),
        "{name}"
    );
    assert_eq!(
        std::fs::read_to_string(backup::checksum_path(&report.file.path))?,
        format!("{}  {name}\n", report.file.sha256)
    );
    let checks = backup::verify(&db, Some(report.id))?;
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].problem, None);
    assert_eq!(
        checks[0].sha256.as_deref(),
        Some(report.file.sha256.as_str())
    );
    Ok(())
}

#[test]
fn verify_names_a_changed_a_missing_and_an_unrecorded_backup() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db, &[("caps", Plan::Pro)])?;
    let bk = dir.path().join("bk");
    let changed = backup::create(&db, &bk, &no_prune(), &mut |_| {})?;
    let unrecorded = backup::create(&db, &bk, &no_prune(), &mut |_| {})?;
    let missing = backup::create(&db, &bk, &no_prune(), &mut |_| {})?;
    drop(store);

    flip_a_byte(&changed.file.path, changed.file.bytes / 2)?;
    std::fs::remove_file(backup::checksum_path(&unrecorded.file.path))?;
    std::fs::remove_file(&missing.file.path)?;
    let problem = |id: RowId| -> Result<String, Box<dyn std::error::Error>> {
        let checks = backup::verify(&db, Some(id))?;
        Ok(checks[0].problem.clone().unwrap_or_default())
    };
    assert!(
        problem(changed.id)?.contains("checksum mismatch"),
        "{}",
        problem(changed.id)?
    );
    assert!(
        problem(unrecorded.id)?.contains(".sha256"),
        "{}",
        problem(unrecorded.id)?
    );
    assert!(
        problem(missing.id)?.contains("missing"),
        "{}",
        problem(missing.id)?
    );
    // Without an id: every finished backup, the populated tenant's made-up row included.
    let all = backup::verify(&db, None)?;
    assert!(all.len() >= 3 && all.iter().all(|c| c.problem.is_some()));
    match backup::verify(&db, Some(RowId::new())) {
        Err(BackupError::UnknownBackup { .. }) => {}
        other => panic!("expected UnknownBackup, got {other:?}"),
    }
    Ok(())
}

#[test]
fn a_restore_onto_the_same_terminal_keeps_its_id_and_its_clock_and_lists_later_backups(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let bk = dir.path().join("bk");
    let store = node(&db, &[("caps", Plan::Pro), ("bolt", Plan::Pro)])?;
    let node_id = store.node_id();
    let log = ["backups", "restore_jobs"];
    let caps_then = dump_except(&db, "caps", &log);
    let bolt_then = dump_except(&db, "bolt", &log);
    let first = backup::create(&db, &bk, &no_prune(), &mut |_| {})?;
    let caps = store.tenant(&tid("caps"))?;
    let admin = first_admin(&caps)?;
    caps.insert(&admin, &product("AFTER-1", 700))?;
    let second = backup::create(&db, &bk, &no_prune(), &mut |_| {})?;
    caps.insert(&admin, &product("AFTER-2", 800))?;
    let clock_before = store.clock()?;
    drop(caps);
    drop(store);

    let report = backup::restore(&db, &first.file.path, &mut |_| {})?;
    assert!(report.same_terminal && !report.created);
    assert_eq!(report.node_id, node_id);
    assert_eq!(report.backup_id, first.id);
    assert_eq!(report.sha256, first.file.sha256);
    assert_eq!(dump_except(&db, "caps", &log), caps_then);
    assert_eq!(dump_except(&db, "bolt", &log), bolt_then);

    let store = Store::open(&db)?;
    assert_eq!(store.node_id(), node_id);
    assert!(store.clock()? >= clock_before, "the clock never goes back");
    assert!(store.verify()?.is_ok(), "{:?}", store.verify()?.violations);
    // The backup restored is now recorded as finished, and the later one is still listed.
    let listed = backup::list(&db)?;
    let status = |id: RowId| listed.iter().find(|e| e.id == id).map(|e| e.status);
    assert_eq!(status(first.id), Some(BackupStatus::Ok));
    assert_eq!(status(second.id), Some(BackupStatus::Ok));
    assert!(report.log_rows_carried > 0);
    // A restore job for each tenant names the backup.
    for t in ["caps", "bolt"] {
        let jobs = store
            .tenant(&tid(t))?
            .list::<RestoreJob>(&Default::default())?;
        assert!(
            jobs.rows
                .iter()
                .any(|j| j.backup_id == first.id && j.status == "ok"),
            "{t}: {:?}",
            jobs.rows
        );
    }
    // A write after the restore is stamped after every stamp before it.
    let caps = store.tenant(&tid("caps"))?;
    caps.insert(&first_admin(&caps)?, &product("AFTER-RESTORE", 900))?;
    assert!(store.clock()? > clock_before);
    // The later backup restores too: nothing was lost by restoring the earlier one.
    drop(caps);
    drop(store);
    backup::restore(&db, &second.file.path, &mut |_| {})?;
    let store = Store::open(&db)?;
    let caps = store.tenant(&tid("caps"))?;
    let skus: Vec<String> = caps
        .query("SELECT sku FROM products WHERE sku LIKE 'AFTER-%'")?
        .rows
        .iter()
        .filter_map(|r| r.first().and_then(|v| v.as_str()).map(str::to_owned))
        .collect();
    assert_eq!(skus, ["AFTER-1"]);
    Ok(())
}

#[test]
fn a_restore_onto_another_terminal_or_a_new_disk_gets_a_new_node_id() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db, &[("caps", Plan::Pro)])?;
    let taken = backup::create(&db, &dir.path().join("bk"), &no_prune(), &mut |_| {})?;
    let original = store.node_id();

    let fresh = dir.path().join("new-disk.db");
    let report = backup::restore(&fresh, &taken.file.path, &mut |_| {})?;
    assert!(report.created && !report.same_terminal);
    assert_eq!(report.backup_node_id, original);
    assert_ne!(report.node_id, original);
    let restored = Store::open(&fresh)?;
    assert_eq!(restored.node_id(), report.node_id);
    assert_eq!(
        dump_except(&fresh, "caps", &["backups", "restore_jobs"]),
        dump_except(&db, "caps", &["backups", "restore_jobs"])
    );
    drop(restored);

    let other_db = dir.path().join("other-till.db");
    let other = node(&other_db, &[("bolt", Plan::Free)])?;
    let other_id = other.node_id();
    drop(other);
    let report = backup::restore(&other_db, &taken.file.path, &mut |_| {})?;
    assert!(!report.same_terminal && !report.created);
    assert_ne!(report.node_id, original);
    assert_ne!(report.node_id, other_id);
    let restored = Store::open(&other_db)?;
    assert_eq!(restored.node_id(), report.node_id);
    let tenants: Vec<String> = restored
        .tenants()?
        .iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(tenants, ["caps"]);
    Ok(())
}

#[test]
fn bad_backups_are_never_restored_and_change_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db, &[("caps", Plan::Pro)])?;
    let taken = backup::create(&db, &dir.path().join("bk"), &no_prune(), &mut |_| {})?;
    let export = store.export_tenant(&tid("caps"), &dir.path().join("caps.export"), &mut |_| {})?;
    store.tenant(&tid("caps"))?;
    let node_id = store.node_id();
    drop(store);
    let before = dump(&db, "caps");
    let unchanged = |what: &str| {
        assert_eq!(dump(&db, "caps"), before, "{what}: nothing changed");
    };

    // A backup changed after it was taken.
    let changed = dir.path().join("changed.db");
    std::fs::copy(&taken.file.path, &changed)?;
    std::fs::copy(
        backup::checksum_path(&taken.file.path),
        backup::checksum_path(&changed),
    )?;
    flip_a_byte(&changed, taken.file.bytes / 2)?;
    match backup::restore(&db, &changed, &mut |_| {}) {
        Err(e @ BackupError::ChecksumMismatch { .. }) => {
            assert!(e.to_string().contains("never restored"), "{e}");
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    unchanged("a changed backup");

    // A truncated one, with its checksum.
    let truncated = dir.path().join("truncated.db");
    std::fs::write(&truncated, &std::fs::read(&taken.file.path)?[..4096])?;
    std::fs::copy(
        backup::checksum_path(&taken.file.path),
        backup::checksum_path(&truncated),
    )?;
    assert!(matches!(
        backup::restore(&db, &truncated, &mut |_| {}),
        Err(BackupError::ChecksumMismatch { .. })
    ));
    unchanged("a truncated backup");

    // No recorded checksum.
    let bare = dir.path().join("bare.db");
    std::fs::copy(&taken.file.path, &bare)?;
    assert!(matches!(
        backup::restore(&db, &bare, &mut |_| {}),
        Err(BackupError::NoChecksum { .. })
    ));
    unchanged("a backup without its checksum");

    // Not a backup at all, though its checksum matches.
    let text = dir.path().join("notes.db");
    std::fs::write(
        &text,
        "these are not the rows you are looking for, just text",
    )?;
    write_checksum(&text)?;
    match backup::restore(&db, &text, &mut |_| {}) {
        Err(e @ BackupError::NotANode { .. }) => {
            assert!(e.to_string().contains("nothing was changed"), "{e}");
        }
        other => panic!("expected NotANode, got {other:?}"),
    }
    unchanged("a text file");

    // A tenant export is not a whole node.
    assert!(matches!(
        backup::restore(&db, &export.path, &mut |_| {}),
        Err(BackupError::TenantExport { .. })
    ));
    unchanged("a tenant export");

    // A backup restored over itself.
    assert!(matches!(
        backup::restore(&taken.file.path, &taken.file.path, &mut |_| {}),
        Err(BackupError::Destination { .. })
    ));
    assert!(backup::verify(&db, Some(taken.id))?[0].problem.is_none());

    // No file.
    assert!(matches!(
        backup::restore(&db, &dir.path().join("nowhere.db"), &mut |_| {}),
        Err(BackupError::NotFound { .. })
    ));
    unchanged("no file");
    assert_eq!(Store::open(&db)?.node_id(), node_id);
    Ok(())
}

/// Writes `<file>.sha256` for a file, as `sha256sum` would.
fn write_checksum(file: &Path) -> std::io::Result<()> {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(std::fs::read(file)?);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::write(backup::checksum_path(file), format!("{hex}  {name}\n"))
}

#[test]
fn a_database_in_use_is_never_replaced() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db, &[("caps", Plan::Pro)])?;
    let taken = backup::create(&db, &dir.path().join("bk"), &no_prune(), &mut |_| {})?;
    let caps = store.tenant(&tid("caps"))?;
    caps.insert(&first_admin(&caps)?, &product("LATER", 100))?;
    let before = dump(&db, "caps");
    match backup::restore(&db, &taken.file.path, &mut |_| {}) {
        Err(e @ BackupError::InUse { .. }) => assert!(e.to_string().contains("in use"), "{e}"),
        other => panic!("expected InUse, got {other:?}"),
    }
    assert_eq!(dump(&db, "caps"), before);
    assert!(
        caps.query("SELECT 1 FROM products WHERE sku = 'LATER'")?
            .rows
            .len()
            == 1
    );
    Ok(())
}

#[test]
fn a_destination_that_cannot_be_written_fails_and_records_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let _store = node(&db, &[("caps", Plan::Pro)])?;
    let listed = backup::list(&db)?.len();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory")?;
    match backup::create(&db, &file.join("bk"), &no_prune(), &mut |_| {}) {
        Err(e @ BackupError::Destination { .. }) => {
            assert!(e.to_string().contains("nothing was changed"), "{e}");
        }
        other => panic!("expected Destination, got {other:?}"),
    }
    assert_eq!(backup::list(&db)?.len(), listed);
    assert!(matches!(
        backup::create(
            &dir.path().join("none.db"),
            dir.path(),
            &no_prune(),
            &mut |_| {}
        ),
        Err(BackupError::NotFound { .. })
    ));
    assert!(
        !dir.path().join("none.db").exists(),
        "a backup never creates a database"
    );
    Ok(())
}

#[test]
fn pruning_keeps_what_each_tenants_retention_keeps_and_removes_a_file_no_tenant_keeps() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = Store::open(&db)?;
    for (id, plan) in [
        ("chain", Plan::Enterprise),
        ("corner", Plan::Free),
        ("tight", Plan::Pro),
    ] {
        store.add_tenant(&NewTenant::new(tid(id), id).plan(plan))?;
        store.tenant(&tid(id))?.bootstrap_admin("owner", "Owner")?;
    }
    // "tight" keeps one day, by its own settings.
    let tight = store.tenant(&tid("tight"))?;
    tight.insert(
        &first_admin(&tight)?,
        &BackupSettings {
            id: RowId::new(),
            schedule: "0 * * * *".into(),
            retention_days: 1,
            encrypt: false,
            destination_id: None,
            updated_at: Timestamp::now(),
        },
    )?;
    let bk = dir.path().join("bk");
    let mut taken = Vec::new();
    for _ in 0..5 {
        taken.push(backup::create(&db, &bk, &no_prune(), &mut |_| {})?);
        std::thread::sleep(Duration::from_millis(5));
    }
    // Fake dates: 1 hour, 3 days, 10 days, 20 days and 40 days before "now".
    let now: Timestamp = "2026-03-01T12:00:00.000Z".parse()?;
    let dates = [
        "2026-03-01T11:00:00.000Z",
        "2026-02-26T11:00:00.000Z",
        "2026-02-19T11:00:00.000Z",
        "2026-02-09T11:00:00.000Z",
        "2026-01-20T11:00:00.000Z",
    ];
    {
        let conn = rusqlite::Connection::open(&db)?;
        for (b, date) in taken.iter().zip(dates) {
            conn.execute(
                "UPDATE backups SET created_at = ?1 WHERE id = ?2",
                [date, &b.id.to_string()],
            )?;
        }
    }
    // A restore job of the oldest backup goes with it.
    let chain = store.tenant(&tid("chain"))?;
    chain.insert(
        &first_admin(&chain)?,
        &RestoreJob {
            id: RowId::new(),
            backup_id: taken[4].id,
            status: "ok".into(),
            requested_by: None,
            started_at: now,
            finished_at: Some(now),
            error: None,
        },
    )?;
    // A row written through a handle naming a file that is not a backup never gets it deleted.
    let precious = dir.path().join("precious.txt");
    std::fs::write(&precious, "keep me")?;
    chain.insert(
        &first_admin(&chain)?,
        &pos_tenancy::catalog::Backup {
            id: RowId::new(),
            kind: "full".into(),
            destination_id: None,
            path: precious.display().to_string(),
            sha256: Some("00".repeat(32)),
            size_bytes: Some(7),
            status: "ok".into(),
            created_at: "2025-01-01T00:00:00.000Z".parse()?,
            finished_at: None,
        },
    )?;

    let rows_of = |b: usize| -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let conn = rusqlite::Connection::open(&db)?;
        let rows = conn
            .prepare("SELECT tenant_id FROM backups WHERE id = ?1 ORDER BY tenant_id")?
            .query_map([taken[b].id.to_string()], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(rows)
    };
    let dry = backup::prune(
        &db,
        &PruneOptions::default().keep_last(1).dry_run(true),
        now,
    )?;
    assert!(dry.dry_run);
    assert_eq!(
        rows_of(4)?,
        ["chain", "corner", "tight"],
        "a dry run changes nothing"
    );

    let report = backup::prune(&db, &PruneOptions::default().keep_last(1), now)?;
    assert_eq!(report.retention[&tid("chain")].days, 35);
    assert_eq!(report.retention[&tid("corner")].days, 7);
    assert_eq!(report.retention[&tid("tight")].days, 1);
    // chain (35 days): the last, the daily ones, and one a week for 35 days.
    // corner (7 days): the last and the daily ones. tight (1 day): the last.
    assert_eq!(rows_of(0)?, ["chain", "corner", "tight"]);
    assert_eq!(rows_of(1)?, ["chain", "corner"]);
    assert_eq!(rows_of(2)?, ["chain"]);
    assert_eq!(rows_of(3)?, ["chain"]);
    assert!(rows_of(4)?.is_empty());
    for (i, b) in taken.iter().enumerate() {
        assert_eq!(
            b.file.path.exists(),
            i < 4,
            "backup {i}: only the one nobody keeps goes"
        );
    }
    assert!(!backup::checksum_path(&taken[4].file.path).exists());
    let removed: Vec<(RowId, bool)> = report
        .removed
        .iter()
        .map(|r| (r.id, r.file_removed))
        .collect();
    assert!(removed.contains(&(taken[4].id, true)));
    assert!(removed.contains(&(taken[1].id, false)));
    let jobs = chain.list::<RestoreJob>(&Default::default())?;
    assert!(jobs.rows.is_empty(), "the job went with its backup");
    assert_eq!(std::fs::read_to_string(&precious)?, "keep me");
    // Pruning after create runs with the default options.
    let latest = backup::create(&db, &bk, &CreateOptions::default(), &mut |_| {})?;
    assert!(latest.pruned.is_some());
    Ok(())
}

#[test]
fn a_tenant_restore_keeps_the_node_backup_log() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db, &[("caps", Plan::Pro)])?;
    let export = store.export_tenant(&tid("caps"), &dir.path().join("caps.db"), &mut |_| {})?;
    let taken = backup::create(&db, &dir.path().join("bk"), &no_prune(), &mut |_| {})?;
    store.restore_tenant(&tid("caps"), &export.path, IfUnsynced::Discard, &mut |_| {})?;
    let listed = backup::list(&db)?;
    assert!(
        listed
            .iter()
            .any(|e| e.id == taken.id && e.status == BackupStatus::Ok),
        "the backup taken after the export is still listed"
    );
    Ok(())
}

#[test]
fn verify_reports_a_deleted_tenant_file_and_what_is_wrong_inside_one() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db, &[("caps", Plan::Pro), ("bolt", Plan::Pro)])?;
    let shared_only = store.verify()?;
    store.promote_tenant(&tid("caps"), None, MoveReason::Operator, &mut |_| {})?;
    let home = store
        .tenant_home_path(&tid("caps"))?
        .ok_or("caps has a file")?;
    let whole = store.verify()?;
    assert!(whole.is_ok(), "{:?}", whole.violations);
    assert!(
        whole.tables_checked > shared_only.tables_checked,
        "the tenant's file is checked too"
    );
    assert_eq!(Store::verify_file(&db)?, whole);

    // Behind the crate's back: a kept balance that no longer equals its ledger, in the file.
    rusqlite::Connection::open(&home)?
        .execute_batch("UPDATE gift_card_balances SET balance_minor = balance_minor + 1")?;
    let inside = Store::verify_file(&db)?;
    let v = inside
        .violations
        .iter()
        .find(|v| v.check == Check::CachedBalance)
        .ok_or("the balance is reported")?;
    assert_eq!(v.table.as_deref(), Some("gift_card_balances"));
    assert!(
        v.detail.contains("tenant caps") && v.detail.contains(&home.display().to_string()),
        "{}",
        v.detail
    );
    drop(store);

    // The file is gone.
    for extra in ["", "-wal", "-shm"] {
        let mut name = home.as_os_str().to_owned();
        name.push(extra);
        let _ = std::fs::remove_file(std::path::PathBuf::from(name));
    }
    for report in [Store::verify_file(&db)?, Store::open(&db)?.verify()?] {
        let found: Vec<_> = report
            .violations
            .iter()
            .filter(|v| v.check == Check::TenantFile)
            .collect();
        assert_eq!(found.len(), 1, "{:?}", report.violations);
        assert!(
            found[0].detail.contains("caps")
                && found[0].detail.contains(&home.display().to_string())
                && found[0].detail.contains("missing"),
            "{}",
            found[0].detail
        );
    }
    assert!(!home.exists(), "verify creates nothing");
    Ok(())
}
