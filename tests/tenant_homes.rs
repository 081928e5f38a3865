//! A tenant in a database file of its own (stage 2 of the isolation plan), through the public
//! API: promote, demote and purge; the handle routes by the registry's tier, so the same code
//! reads and writes in either place; handles opened before a move are refused; every other
//! tenant's rows stay exactly as they were.

mod common;
mod io_common;

use std::path::{Path, PathBuf};

use common::{first_admin, populate, product, tid};
use io_common::{dump, rows_left};
use pos_tenancy::catalog::Product;
use pos_tenancy::{
    Error, IfUnsynced, MoveReason, NewTenant, Plan, StorageSettings, Store, TenantAccess,
    TenantIoError, Tier, Timestamp, TENANT_FILE_APPLICATION_ID,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TENANTS: [&str; 3] = ["caps", "bolt", "acme"];

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

fn homes(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".tenants");
    PathBuf::from(name)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".db"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_promoted_tenant_reads_and_writes_in_its_own_file_and_comes_back_whole() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db)?;
    let caps = tid("caps");
    let before = store.tenant_digest(&caps)?;
    let others: Vec<_> = ["bolt", "acme"].iter().map(|t| dump(&db, t)).collect();
    let stale = store.tenant(&caps)?;

    let mut tables = 0;
    let moved = store.promote_tenant(&caps, None, MoveReason::Operator, &mut |_| tables += 1)?;
    assert_eq!(tables, pos_tenancy::catalog::TABLES.len());
    assert_eq!(
        moved.tables, before.tables,
        "row counts and a SHA-256 per table"
    );
    assert_eq!(moved.sha256, before.sha256);
    assert!(moved.file.starts_with(homes(&db)));
    let days = (moved.keep_until.as_millis() - Timestamp::now().as_millis()) / 86_400_000;
    assert!((29..=30).contains(&days), "kept 30 days: {days}");

    // The file: the tenant's own, of this node, with exactly its rows.
    let file = rusqlite::Connection::open(&moved.file)?;
    let app: i64 = file.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    assert_eq!(app, TENANT_FILE_APPLICATION_ID);
    let registered: Vec<(String, String)> = file
        .prepare("SELECT id, tier FROM tenants")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    assert_eq!(registered, [("caps".to_owned(), "dedicated".to_owned())]);
    let node_id: String = file.query_row("SELECT node_id FROM node_state", [], |r| r.get(0))?;
    assert_eq!(node_id, store.node_id().to_string(), "the same device id");
    drop(file);

    // The route: a new handle reads the same rows there; the old one is refused.
    assert_eq!(store.tenant_info(&caps)?.tier, Tier::Dedicated);
    assert_eq!(store.tenant_home_path(&caps)?, Some(moved.file.clone()));
    assert_eq!(store.tenant_digest(&caps)?.sha256, before.sha256);
    assert!(matches!(
        stale.list::<Product>(&Default::default()),
        Err(Error::TenantMoved { .. })
    ));
    let t = store.tenant(&caps)?;
    let admin = first_admin(&t)?;
    assert!(matches!(
        stale.insert(&admin, &product("STALE", 100)),
        Err(Error::TenantMoved { .. })
    ));
    let new = product("PROMOTED-1", 1234);
    t.insert(&admin, &new)?;
    assert_eq!(t.fetch::<Product>(new.id)?.sku, "PROMOTED-1");
    let report = t.query("SELECT count(*) AS n FROM products")?;
    assert!(!report.rows.is_empty());
    // The write is in the file, with its pending operation; the shared copy is as it was.
    let in_file: i64 = rusqlite::Connection::open(&moved.file)?.query_row(
        "SELECT count(*) FROM pending_operations WHERE tenant_id = 'caps' AND row_id = ?1",
        [new.id.to_string()],
        |r| r.get(0),
    )?;
    assert_eq!(in_file, 1);
    let in_shared: i64 = rusqlite::Connection::open(&db)?.query_row(
        "SELECT count(*) FROM products WHERE id = ?1",
        [new.id.to_string()],
        |r| r.get(0),
    )?;
    assert_eq!(in_shared, 0);
    drop(t);

    // Reopened, the node routes there by itself.
    drop(stale);
    drop(store);
    let store = Store::open(&db)?;
    let after_write = store.tenant_digest(&caps)?;
    assert_ne!(after_write.sha256, before.sha256);
    assert_eq!(
        store.tenant(&caps)?.fetch::<Product>(new.id)?.price_minor,
        1234
    );

    // And back: the shared file takes every row written meanwhile.
    let back = store.demote_tenant(&caps, Some(0), MoveReason::Operator, &mut |_| {})?;
    assert_eq!(back.sha256, after_write.sha256);
    assert_eq!(store.tenant_info(&caps)?.tier, Tier::Shared);
    assert_eq!(store.tenant_home_path(&caps)?, None);
    assert_eq!(store.tenant_digest(&caps)?.sha256, after_write.sha256);
    assert_eq!(
        store.tenant(&caps)?.fetch::<Product>(new.id)?.sku,
        "PROMOTED-1"
    );
    let others_after: Vec<_> = ["bolt", "acme"].iter().map(|t| dump(&db, t)).collect();
    assert_eq!(others, others_after, "every other tenant exactly as it was");
    assert!(store.verify()?.is_ok());

    // The demotion kept the file (0 days: purge removes it now); the promotion's window is
    // 30 days, but its shared copy became the tenant's home again, so nothing is left of it
    // to keep.
    assert_eq!(files_in(&homes(&db)).len(), 1);
    let purge = store.purge_moved_copies(Timestamp::now())?;
    assert_eq!(purge.purged.len(), 1, "{purge:?}");
    assert_eq!(purge.purged[0].what, "file");
    assert!(
        purge.kept.is_empty(),
        "nothing is left of the promotion: {purge:?}"
    );
    assert!(files_in(&homes(&db)).is_empty());
    assert_eq!(store.tenant_digest(&caps)?.sha256, after_write.sha256);
    Ok(())
}

#[test]
fn purge_removes_the_shared_copy_once_its_window_is_over_and_leftover_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db)?;
    let caps = tid("caps");
    let digest = store.tenant_digest(&caps)?;
    let moved = store.promote_tenant(&caps, Some(2), MoveReason::Operator, &mut |_| {})?;
    // A promotion that died before its switch leaves a file no move names.
    let leftover = homes(&db).join("bolt-0190f5f2-0000-7000-8000-000000000000.db.partial");
    std::fs::write(&leftover, b"half a file")?;
    assert!(rows_left(&db, "caps") > 0, "the shared copy is kept");

    let early = store.purge_moved_copies(Timestamp::now())?;
    assert_eq!(early.kept.len(), 1);
    assert_eq!(early.kept[0].what, "shared rows");
    assert_eq!(early.kept[0].move_id, moved.id);
    assert_eq!(early.kept[0].keep_until, moved.keep_until);
    assert!(!leftover.exists(), "{early:?}");
    let said: Vec<_> = early.purged.iter().filter_map(|p| p.file.clone()).collect();
    assert_eq!(
        said,
        std::slice::from_ref(&leftover),
        "the leftover is reported"
    );
    assert_eq!(early.purged[0].tenant, Some(tid("bolt")));
    assert!(rows_left(&db, "caps") > 0, "still inside its window");

    let later =
        Timestamp::from_millis(Timestamp::now().as_millis() + 3 * 86_400_000).ok_or("time")?;
    let purge = store.purge_moved_copies(later)?;
    assert_eq!(purge.purged.len(), 1, "{purge:?}");
    assert_eq!(purge.purged[0].what, "shared rows");
    assert!(purge.purged[0].rows > 40);
    // The shared file holds nothing of the tenant but its registry row (the route).
    let shared = rusqlite::Connection::open(&db)?;
    for table in pos_tenancy::catalog::TABLES {
        let n: i64 = shared.query_row(
            &format!(
                "SELECT count(*) FROM \"{}\" WHERE tenant_id = 'caps'",
                table.name
            ),
            [],
            |r| r.get(0),
        )?;
        assert_eq!(n, 0, "{}", table.name);
    }
    assert!(moved.file.exists());
    assert_eq!(store.tenant_digest(&caps)?.sha256, digest.sha256);
    assert!(store.purge_moved_copies(later)?.purged.is_empty(), "once");

    // With the shared copy gone, the way back still works: from the file.
    store.demote_tenant(&caps, None, MoveReason::Operator, &mut |_| {})?;
    assert_eq!(store.tenant_digest(&caps)?.sha256, digest.sha256);
    Ok(())
}

#[test]
fn moves_refuse_what_cannot_be_done_and_change_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db)?;
    let caps = tid("caps");
    assert!(matches!(
        store.promote_tenant(&tid("nobody"), None, MoveReason::Operator, &mut |_| {}),
        Err(TenantIoError::UnknownTenant { .. })
    ));
    assert!(matches!(
        store.demote_tenant(&caps, None, MoveReason::Operator, &mut |_| {}),
        Err(TenantIoError::AlreadyThere { .. })
    ));
    store.promote_tenant(&caps, None, MoveReason::Operator, &mut |_| {})?;
    assert!(matches!(
        store.promote_tenant(&caps, None, MoveReason::Operator, &mut |_| {}),
        Err(TenantIoError::AlreadyThere { .. })
    ));
    // A window past what a stored time can hold is refused before anything is written.
    assert!(matches!(
        store.promote_tenant(
            &tid("bolt"),
            Some(u32::MAX),
            MoveReason::Operator,
            &mut |_| {}
        ),
        Err(TenantIoError::KeepDays { .. })
    ));
    assert!(store
        .set_storage_settings(&StorageSettings::default().keep_days(pos_tenancy::MAX_KEEP_DAYS + 1))
        .is_err());
    assert_eq!(store.tenant_info(&tid("bolt"))?.tier, Tier::Shared);
    let memory = Store::open_in_memory()?;
    memory.add_tenant(&NewTenant::new(caps.clone(), "Caps"))?;
    assert!(matches!(
        memory.promote_tenant(&caps, None, MoveReason::Operator, &mut |_| {}),
        Err(TenantIoError::NoTenantFiles { .. })
    ));

    // A route naming a file that is gone is an error that names it, not a silent empty tenant.
    let path = store.tenant_home_path(&caps)?.ok_or("a file")?;
    drop(store);
    std::fs::remove_file(&path)?;
    let store = Store::open(&db)?;
    match store.tenant(&caps).map(|_| ()) {
        Err(Error::TenantFile { path: named, .. }) => assert_eq!(named, path),
        other => panic!("expected TenantFile, got {other:?}"),
    }
    // Every other tenant is unaffected, and the list still shows caps.
    assert_eq!(store.tenants()?.len(), 3);
    store.tenant(&tid("bolt"))?;
    Ok(())
}

#[test]
fn a_refused_promotion_leaves_no_directory_and_an_export_is_not_opened_as_a_node() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db)?;
    assert!(matches!(
        store.promote_tenant(&tid("nobody"), None, MoveReason::Operator, &mut |_| {}),
        Err(TenantIoError::UnknownTenant { .. })
    ));
    assert!(!homes(&db).exists());

    let export = dir.path().join("caps.export");
    store.export_tenant(&tid("caps"), &export, &mut |_| {})?;
    let sealed = std::fs::read(&export)?;
    for opened in [Store::open(&export), Store::open_existing(&export)] {
        assert!(matches!(opened, Err(Error::NotANodeDatabase { .. })));
    }
    assert_eq!(std::fs::read(&export)?, sealed, "not a byte changed");
    Ok(())
}

#[test]
fn status_and_settings_changed_in_the_file_come_back_with_a_demotion() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db)?;
    let caps = tid("caps");
    store.promote_tenant(&caps, None, MoveReason::Operator, &mut |_| {})?;
    let mut settings = store.tenant_info(&caps)?.settings;
    settings.brand_name = "Caps Deluxe".into();
    store.set_tenant_settings(&caps, &settings)?;
    store.set_tenant_status(&caps, pos_tenancy::TenantStatus::Suspended)?;
    let listed = store.tenants()?;
    let row = listed.iter().find(|t| t.id == caps).ok_or("listed")?;
    assert_eq!(row.settings.brand_name, "Caps Deluxe");
    assert_eq!(row.status, pos_tenancy::TenantStatus::Suspended);
    assert_eq!(row.tier, Tier::Dedicated);

    store.demote_tenant(&caps, None, MoveReason::Operator, &mut |_| {})?;
    let info = store.tenant_info(&caps)?;
    assert_eq!(info.settings.brand_name, "Caps Deluxe");
    assert_eq!(info.status, pos_tenancy::TenantStatus::Suspended);
    assert_eq!(info.tier, Tier::Shared);
    Ok(())
}

#[test]
fn the_automatic_rule_promotes_tenants_past_a_threshold_and_is_off_by_default() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db)?;
    assert_eq!(store.storage_settings()?, StorageSettings::default());
    assert!(
        store.auto_promote(&mut |_, _| {})?.is_empty(),
        "off by default"
    );

    // caps gets three more users; the rule is 3 users.
    let caps = store.tenant(&tid("caps"))?;
    let admin = first_admin(&caps)?;
    for name in ["ana", "ben"] {
        caps.insert_json(
            &admin,
            "users",
            serde_json::json!({"username": name, "display_name": name, "role": "cashier",
                               "active": true, "created_at": Timestamp::now(),
                               "updated_at": Timestamp::now()}),
        )?;
    }
    drop(caps);
    assert!(store
        .set_storage_settings(&StorageSettings::default().auto_promote_users(Some(0)))
        .is_err());
    store.set_storage_settings(
        &StorageSettings::default()
            .auto_promote_users(Some(3))
            .keep_days(7),
    )?;
    let moves = store.auto_promote(&mut |_, _| {})?;
    let promoted: Vec<_> = moves.iter().map(|m| m.tenant.to_string()).collect();
    assert_eq!(promoted, ["caps"]);
    assert_eq!(moves[0].reason, MoveReason::Auto);
    assert_eq!(store.tenant_info(&tid("caps"))?.tier, Tier::Dedicated);
    assert!(store.auto_promote(&mut |_, _| {})?.is_empty(), "once");

    // A row threshold takes the rest.
    store.set_storage_settings(&StorageSettings::default().auto_promote_rows(Some(1)))?;
    assert_eq!(store.auto_promote(&mut |_, _| {})?.len(), 2);
    Ok(())
}

#[test]
fn offboarding_a_promoted_tenant_exports_it_and_removes_both_places() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.db");
    let store = node(&db)?;
    let caps = tid("caps");
    let digest = store.tenant_digest(&caps)?;
    let moved = store.promote_tenant(&caps, None, MoveReason::Operator, &mut |_| {})?;
    let export = dir.path().join("caps-final.db");
    let refused = store.delete_tenant(&caps, &export, IfUnsynced::Refuse, &mut |_| {});
    assert!(matches!(refused, Err(TenantIoError::Unsynced { .. })));
    assert!(moved.file.exists() && !export.exists());

    let gone = store.delete_tenant(&caps, &export, IfUnsynced::Discard, &mut |_| {})?;
    assert_eq!(gone.export.tables, digest.tables);
    assert!(!moved.file.exists());
    assert_eq!(rows_left(&db, "caps"), 0);
    assert!(matches!(store.tenant(&caps), Err(Error::TenantNotFound(_))));
    // The export restores it, into the shared file.
    store.restore_tenant(&caps, &export, IfUnsynced::Refuse, &mut |_| {})?;
    // Every table but the node's backup log, which records the restore.
    let data = |d: pos_tenancy::TenantDigest| {
        d.tables
            .into_iter()
            .filter(|t| !["backups", "restore_jobs"].contains(&t.table))
            .collect::<Vec<_>>()
    };
    assert_eq!(data(store.tenant_digest(&caps)?), data(digest));
    assert_eq!(store.tenant_info(&caps)?.tier, Tier::Shared);
    Ok(())
}
