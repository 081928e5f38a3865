//! One tenant's export, restore and offboarding through the public API: round trips, every
//! other tenant's rows exactly as they were, and bad input that changes nothing and says what
//! was wrong.

mod common;
mod io_common;

use std::path::Path;

use common::{first_admin, populate, product, tid};
use io_common::{dump, dump_except, rows_left, Dump};
use pos_tenancy::catalog::{Product, RestoreJob};
use pos_tenancy::{
    backup, IfUnsynced, NewTenant, Plan, Store, TenantAccess, TenantIoError, TenantIoStep,
    EXPORT_APPLICATION_ID,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TENANTS: [&str; 3] = ["caps", "bolt", "acme"];

/// The node's backup log: kept by a restore, not rewound.
const LOG: [&str; 2] = ["backups", "restore_jobs"];

/// A file store with three populated tenants.
fn node(db: &Path) -> Result<Store, Box<dyn std::error::Error>> {
    let store = Store::open(db)?;
    for id in TENANTS {
        store.add_tenant(&NewTenant::new(tid(id), &format!("{id} store")).plan(Plan::Pro))?;
        let t = store.tenant(&tid(id))?;
        let admin = t.bootstrap_admin("owner", "Owner")?;
        populate(&t, &admin, id)?;
    }
    Ok(store)
}

fn dumps(db: &Path) -> Vec<(&'static str, Dump)> {
    TENANTS.iter().map(|t| (*t, dump(db, t))).collect()
}

/// Marks every operation of the tenant acknowledged, as a sync round would.
fn mark_synced(db: &Path, tenant: &str) -> rusqlite::Result<usize> {
    rusqlite::Connection::open(db)?.execute(
        "UPDATE pending_operations SET synced_at = '2026-01-01T00:00:00.000Z', seq = 1
         WHERE tenant_id = ?1",
        [tenant],
    )
}

#[test]
fn an_export_restored_brings_the_tenant_back_and_leaves_every_other_tenant_as_it_was() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db)?;
    let caps_at_export = dump_except(&db, "caps", &LOG);
    let digest_at_export = store.tenant_digest(&tid("caps"))?;
    let mut progress = Vec::new();
    let export = store.export_tenant(&tid("caps"), &dir.path().join("caps.db"), &mut |t| {
        progress.push((t.table, t.done, t.total))
    })?;
    assert_eq!(progress.len(), pos_tenancy::catalog::TABLES.len());
    assert_eq!(export.tables, digest_at_export.tables);
    assert!(export.rows > 40, "a row in every table: {}", export.rows);
    assert_eq!(
        std::fs::read_to_string(backup::checksum_path(&export.path))?,
        format!("{}  caps.db\n", export.sha256)
    );

    // The export is a standalone database with the node's schema and only this tenant.
    let file = rusqlite::Connection::open(&export.path)?;
    let app: i64 = file.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    assert_eq!(app, EXPORT_APPLICATION_ID);
    let registered: Vec<String> = file
        .prepare("SELECT id FROM tenants")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    assert_eq!(registered, ["caps"]);
    drop(file);
    assert_eq!(
        dump(&export.path, "caps").get("products"),
        caps_at_export.get("products")
    );
    assert_eq!(
        dump(&export.path, "caps").get("stock_levels"),
        caps_at_export.get("stock_levels")
    );
    assert_eq!(
        dump(&export.path, "caps").get("pending_operations"),
        caps_at_export.get("pending_operations")
    );
    assert!(dump(&export.path, "bolt").values().all(Vec::is_empty));
    // Recorded in the node.
    let recorded = backup::list(&db)?
        .into_iter()
        .find(|e| Some(e.id) == export.backup_id)
        .ok_or("the export is recorded")?;
    assert_eq!(recorded.sha256.as_deref(), Some(export.sha256.as_str()));

    // Then caps changes, and so does bolt.
    let caps = store.tenant(&tid("caps"))?;
    let admin = first_admin(&caps)?;
    caps.insert(&admin, &product("NEW-AFTER-EXPORT", 999))?;
    let mut p = caps
        .list::<Product>(&Default::default())?
        .rows
        .into_iter()
        .find(|p| p.sku == "OF-caps")
        .ok_or("the populated product")?;
    p.price_minor = 1;
    caps.update(&admin, &p)?;
    let bolt = store.tenant(&tid("bolt"))?;
    bolt.insert(&first_admin(&bolt)?, &product("BOLT-LATER", 5))?;
    let others_before: Vec<(&str, Dump)> = dumps(&db)
        .into_iter()
        .filter(|(t, _)| *t != "caps")
        .collect();
    let clock_before = store.clock()?;

    let restored =
        store.restore_tenant(&tid("caps"), &export.path, IfUnsynced::Discard, &mut |_| {})?;
    assert_eq!(restored.rows, export.rows - export_log_rows(&export));
    assert!(restored.unsynced_discarded > 0);
    assert!(!restored.registered);
    assert_eq!(
        dump_except(&db, "caps", &[LOG[0], LOG[1], "tenants"]),
        without(&caps_at_export, &["tenants"])
    );
    for (t, before) in &others_before {
        assert_eq!(&dump(&db, t), before, "tenant {t} is exactly as it was");
    }
    // The restore is recorded, the store is consistent, and the clock moves on.
    let jobs = caps.list::<RestoreJob>(&Default::default())?;
    assert!(jobs.rows.iter().any(|j| j.id == restored.restore_job_id
        && j.status == "ok"
        && j.backup_id == restored.backup_id));
    assert!(store.verify()?.is_ok(), "{:?}", store.verify()?.violations);
    caps.insert(&admin, &product("AFTER-RESTORE", 3))?;
    assert!(store.clock()? > clock_before);
    Ok(())
}

/// Rows of the backup log in an export (a restore keeps the node's instead).
fn export_log_rows(export: &pos_tenancy::TenantExport) -> u64 {
    export
        .tables
        .iter()
        .filter(|t| LOG.contains(&t.table))
        .map(|t| t.rows)
        .sum()
}

fn without(dump: &Dump, tables: &[&str]) -> Dump {
    dump.iter()
        .filter(|(t, _)| !tables.contains(&t.as_str()))
        .map(|(t, r)| (t.clone(), r.clone()))
        .collect()
}

#[test]
fn a_restore_over_unsynced_operations_is_refused_with_their_count_unless_forced() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db)?;
    let export = store.export_tenant(&tid("caps"), &dir.path().join("caps.db"), &mut |_| {})?;
    let in_export = store.sync_status(&tid("caps"))?.pending;
    assert!(in_export > 0);
    // The export's own unsynced operations come back with it: nothing to lose yet.
    let same = store.restore_tenant(&tid("caps"), &export.path, IfUnsynced::Refuse, &mut |_| {})?;
    assert_eq!(same.unsynced_discarded, 0);
    assert_eq!(store.sync_status(&tid("caps"))?.pending, in_export);
    let caps = store.tenant(&tid("caps"))?;
    caps.insert(&first_admin(&caps)?, &product("UNSYNCED", 1))?;
    let pending = store.sync_status(&tid("caps"))?.pending - in_export;
    assert!(pending > 0);
    let before = dumps(&db);
    match store.restore_tenant(&tid("caps"), &export.path, IfUnsynced::Refuse, &mut |_| {}) {
        Err(e @ TenantIoError::Unsynced { .. }) => {
            let TenantIoError::Unsynced { pending: n, .. } = &e else {
                unreachable!()
            };
            assert_eq!(*n, pending);
            let text = e.to_string();
            assert!(
                text.contains(&format!(
                    "{pending} operations not yet synced that the export does not hold"
                )) && text.contains("--force"),
                "{text}"
            );
        }
        other => panic!("expected Unsynced, got {other:?}"),
    }
    assert_eq!(dumps(&db), before, "nothing changed");
    // Once synced, no force is needed.
    mark_synced(&db, "caps")?;
    let restored =
        store.restore_tenant(&tid("caps"), &export.path, IfUnsynced::Refuse, &mut |_| {})?;
    assert_eq!(restored.unsynced_discarded, 0);
    assert!(caps
        .query("SELECT 1 FROM products WHERE sku = 'UNSYNCED'")?
        .rows
        .is_empty());
    Ok(())
}

#[test]
fn an_export_of_one_tenant_is_never_restored_as_another() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db)?;
    let export = store.export_tenant(&tid("caps"), &dir.path().join("caps.db"), &mut |_| {})?;
    let before = dumps(&db);
    match store.restore_tenant(&tid("bolt"), &export.path, IfUnsynced::Discard, &mut |_| {}) {
        Err(e @ TenantIoError::WrongTenant { .. }) => {
            assert!(
                e.to_string().contains("export of tenant caps, not of bolt"),
                "{e}"
            );
        }
        other => panic!("expected WrongTenant, got {other:?}"),
    }
    assert_eq!(dumps(&db), before);
    Ok(())
}

#[test]
fn bad_exports_change_nothing_and_say_what_was_wrong() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db)?;
    let export = store.export_tenant(&tid("caps"), &dir.path().join("caps.db"), &mut |_| {})?;
    let whole = backup::create(
        &db,
        &dir.path().join("bk"),
        &backup::CreateOptions::default().without_prune(),
        &mut |_| {},
    )?;
    let before = dumps(&db);
    let restore =
        |from: &Path| store.restore_tenant(&tid("caps"), from, IfUnsynced::Discard, &mut |_| {});

    // Truncated: its recorded checksum no longer matches.
    let truncated = dir.path().join("truncated.db");
    std::fs::write(&truncated, &std::fs::read(&export.path)?[..8192])?;
    std::fs::copy(
        backup::checksum_path(&export.path),
        backup::checksum_path(&truncated),
    )?;
    match restore(&truncated) {
        Err(e @ TenantIoError::ChecksumMismatch { .. }) => {
            assert!(
                e.to_string()
                    .contains("does not match its recorded SHA-256"),
                "{e}"
            )
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    // Without its checksum.
    let bare = dir.path().join("bare.db");
    std::fs::copy(&export.path, &bare)?;
    assert!(matches!(
        restore(&bare),
        Err(TenantIoError::NoChecksum { .. })
    ));
    // A whole-node backup is not a tenant export.
    match restore(&whole.file.path) {
        Err(e @ TenantIoError::NotAnExport { .. }) => {
            assert!(e.to_string().contains("whole-node backup"), "{e}")
        }
        other => panic!("expected NotAnExport, got {other:?}"),
    }
    // Not a database at all, with a checksum that matches.
    let text = dir.path().join("notes.db");
    std::fs::write(&text, "a shopping list, not an export of anything at all")?;
    write_checksum(&text)?;
    assert!(matches!(
        restore(&text),
        Err(TenantIoError::NotAnExport { .. })
    ));
    // An export holding another tenant's rows (made by hand) is refused.
    let crafted = dir.path().join("crafted.db");
    std::fs::copy(&export.path, &crafted)?;
    {
        let conn = rusqlite::Connection::open(&crafted)?;
        // Another tenant's row, which the crafted file does not even register.
        conn.execute_batch("PRAGMA foreign_keys = OFF")?;
        conn.execute(
            "INSERT INTO price_levels (id, tenant_id, name, discount_ppm, created_at)
             VALUES ('00000000-0000-7000-8000-000000000001', 'bolt', 'Sneaky', 0,
                     '2026-01-01T00:00:00.000Z')",
            [],
        )?;
    }
    write_checksum(&crafted)?;
    match restore(&crafted) {
        Err(e @ TenantIoError::NotAnExport { .. }) => {
            assert!(e.to_string().contains("rows of another tenant"), "{e}")
        }
        other => panic!("expected NotAnExport, got {other:?}"),
    }
    // No file; an unknown tenant.
    assert!(matches!(
        restore(&dir.path().join("nowhere.db")),
        Err(TenantIoError::NotFound { .. })
    ));
    match store.export_tenant(&tid("nobody"), &dir.path().join("nobody.db"), &mut |_| {}) {
        Err(e @ TenantIoError::UnknownTenant { .. }) => {
            assert!(e.to_string().contains("nobody"), "{e}")
        }
        other => panic!("expected UnknownTenant, got {other:?}"),
    }
    assert!(!dir.path().join("nobody.db").exists());
    assert_eq!(dumps(&db), before, "nothing changed");
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
fn an_export_never_overwrites_a_file_and_one_it_cannot_write_leaves_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db)?;
    let before = dumps(&db);
    let exists = dir.path().join("taken.db");
    std::fs::write(&exists, "mine")?;
    assert!(matches!(
        store.export_tenant(&tid("caps"), &exists, &mut |_| {}),
        Err(TenantIoError::DestinationExists { .. })
    ));
    assert_eq!(std::fs::read_to_string(&exists)?, "mine");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory")?;
    let unwritable = file.join("caps.db");
    match store.export_tenant(&tid("caps"), &unwritable, &mut |_| {}) {
        Err(e @ TenantIoError::Destination { .. }) => {
            assert!(e.to_string().contains("cannot write the export"), "{e}")
        }
        other => panic!("expected Destination, got {other:?}"),
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(dumps(&db), before, "nothing recorded either");
    Ok(())
}

#[test]
fn offboarding_exports_then_deletes_every_row_and_the_export_brings_the_tenant_back() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db)?;
    let caps_before = dump(&db, "caps");
    let others_before: Vec<(&str, Dump)> = dumps(&db)
        .into_iter()
        .filter(|(t, _)| *t != "caps")
        .collect();
    let to = dir.path().join("caps-offboarded.db");

    // Refused while its operations are unsynced, with no export written.
    match store.delete_tenant(&tid("caps"), &to, IfUnsynced::Refuse, &mut |_| {}) {
        Err(TenantIoError::Unsynced { pending, .. }) => assert!(pending > 0),
        other => panic!("expected Unsynced, got {other:?}"),
    }
    assert!(!to.exists());
    assert_eq!(dump(&db, "caps"), caps_before);

    mark_synced(&db, "caps")?;
    let caps_synced = dump(&db, "caps");
    let deleted = store.delete_tenant(&tid("caps"), &to, IfUnsynced::Refuse, &mut |_| {})?;
    assert!(deleted.rows_deleted > 40);
    assert!(deleted.tables_proven_empty > pos_tenancy::catalog::TABLES.len());
    assert_eq!(rows_left(&db, "caps"), 0, "no row of caps remains anywhere");
    assert!(store.tenants()?.iter().all(|t| t.id != tid("caps")));
    for (t, before) in &others_before {
        assert_eq!(&dump(&db, t), before, "tenant {t} is exactly as it was");
    }
    assert!(store.verify()?.is_ok(), "{:?}", store.verify()?.violations);
    // The export holds what was deleted.
    assert_eq!(dump(&deleted.export.path, "caps"), caps_synced);
    assert!(matches!(
        store.export_tenant(&tid("caps"), &dir.path().join("again.db"), &mut |_| {}),
        Err(TenantIoError::UnknownTenant { .. })
    ));

    // The export brings the tenant back: registered again, rows as they were.
    let restored = store.restore_tenant(
        &tid("caps"),
        &deleted.export.path,
        IfUnsynced::Refuse,
        &mut |_| {},
    )?;
    assert!(restored.registered);
    assert_eq!(
        dump_except(&db, "caps", &LOG),
        without(&caps_synced, &LOG),
        "the registry row included"
    );
    for (t, before) in &others_before {
        assert_eq!(&dump(&db, t), before, "tenant {t} is exactly as it was");
    }
    assert!(store.verify()?.is_ok(), "{:?}", store.verify()?.violations);
    Ok(())
}

#[test]
fn a_tenant_moves_to_another_node_with_its_outbox_and_clock() -> TestResult {
    let dir = tempfile::tempdir()?;
    let a = node(&dir.path().join("a.db"))?;
    let caps = a.tenant(&tid("caps"))?;
    let admin = first_admin(&caps)?;
    caps.insert(&admin, &product("FROM-A", 10))?;
    let a_clock = a.clock()?;
    let export = a.export_tenant(&tid("caps"), &dir.path().join("caps.db"), &mut |_| {})?;
    assert_eq!(export.node_id, a.node_id());

    let b_db = dir.path().join("b.db");
    let b = Store::open(&b_db)?;
    b.add_tenant(&NewTenant::new(tid("zeta"), "Zeta"))?;
    let z = b.tenant(&tid("zeta"))?;
    populate(&z, &z.bootstrap_admin("owner", "Owner")?, "zeta")?;
    let zeta_before = dump(&b_db, "zeta");
    let restored = b.restore_tenant(&tid("caps"), &export.path, IfUnsynced::Refuse, &mut |_| {})?;
    assert!(restored.registered);
    assert_eq!(restored.exported_from, a.node_id());
    assert_eq!(dump(&b_db, "zeta"), zeta_before);
    // Its outbox came along, each operation still naming the device that wrote it.
    let ops = b.sync_status(&tid("caps"))?.pending;
    assert_eq!(ops, a.sync_status(&tid("caps"))?.pending);
    let devices: Vec<String> = rusqlite::Connection::open(&b_db)?
        .prepare("SELECT DISTINCT device_id FROM pending_operations WHERE tenant_id = 'caps'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    assert_eq!(devices, [a.node_id().to_string()]);
    // A write on B is stamped after everything A stamped for caps.
    let caps_b = b.tenant(&tid("caps"))?;
    caps_b.insert(&first_admin(&caps_b)?, &product("ON-B", 20))?;
    assert!(b.clock()?.millis() >= a_clock.millis());
    let stamps: Vec<String> = rusqlite::Connection::open(&b_db)?
        .prepare(
            "SELECT hlc FROM pending_operations WHERE tenant_id = 'caps' ORDER BY hlc DESC LIMIT 2",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    assert!(stamps[0] > stamps[1]);
    assert!(b.verify()?.is_ok(), "{:?}", b.verify()?.violations);
    Ok(())
}

#[test]
fn failures_name_their_step() {
    let e = TenantIoError::Failed {
        step: TenantIoStep::Restore,
        tenant: tid("caps"),
        reason: "disk I/O error".into(),
        left: "rolled back, the tenant's rows are as they were".into(),
    };
    assert_eq!(
        e.to_string(),
        "restore of tenant caps failed: disk I/O error; rolled back, the tenant's rows are as they were"
    );
}
