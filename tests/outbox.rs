//! The outbox: every committed synced write has its operation, written in the same
//! transaction; nothing else does. And the clock behind the operations never goes backwards.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use pos_tenancy::catalog::{GiftCardTransaction, Product, Session};
use pos_tenancy::protocol::validate;
use pos_tenancy::{Error, NewTenant, Operation, OperationKind, RowId, Store, TenantAccess};
use pos_tenancy::{Hlc, HlcError};

type R = pos_tenancy::Result<()>;

fn kinds(ops: &[Operation]) -> Vec<(&str, OperationKind)> {
    ops.iter().map(|o| (o.table.as_str(), o.kind)).collect()
}

#[test]
fn each_synced_write_leaves_one_operation_that_names_its_actor() -> R {
    let store = store_with(&["caps"]);
    let caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let before = caps.pending_operations(1000)?.len();
    assert_eq!(before, 1, "the bootstrap user");

    let mut p = product("OF-1", 1299);
    caps.insert(&admin, &p)?;
    p.price_minor = 1399;
    caps.update(&admin, &p)?;
    caps.delete::<Product>(&admin, p.id)?;
    let ops = caps.pending_operations(1000)?.split_off(before);
    use OperationKind::*;
    assert_eq!(
        kinds(&ops),
        [
            ("products", Insert),
            ("products", Update),
            ("products", Delete)
        ]
    );
    assert!(ops.iter().all(|o| o.actor_user_id == Some(admin.user_id())));
    assert_eq!(ops[0].columns["sku"], "OF-1");
    use pos_tenancy::Record;
    assert_eq!(ops[0].columns.len(), Product::TABLE.columns.len());
    assert_eq!(
        ops[1].columns,
        serde_json::json!({ "price_minor": 1399 })
            .as_object()
            .cloned()
            .unwrap_or_default()
    );
    assert!(ops[2].columns.is_empty());
    assert!(ops
        .iter()
        .all(|o| o.tenant_id == tid("caps") && o.device_id == store.node_id()));
    assert!(
        ops.windows(2).all(|w| w[0].hlc < w[1].hlc),
        "stamps increase"
    );
    for op in &ops {
        validate(op).map_err(Error::from)?;
        // The JSON form is the wire form: it reads back to the same operation.
        let json = serde_json::to_string(op).map_err(|e| Error::InvalidPayload {
            table: "x",
            reason: e.to_string(),
        })?;
        let back: Operation = serde_json::from_str(&json).map_err(|e| Error::InvalidPayload {
            table: "x",
            reason: e.to_string(),
        })?;
        assert_eq!(&back, op);
    }
    Ok(())
}

#[test]
fn rolled_back_and_refused_writes_leave_no_operation() -> R {
    let store = store_with(&["caps"]);
    let mut caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let before = caps.pending_operations(1000)?;
    {
        let tx = caps.transaction()?;
        tx.insert(&admin, &product("A", 1))?;
        assert_eq!(tx.get::<Product>(RowId::new())?, None);
    }
    let dup = product("B", 1);
    caps.insert(&admin, &dup)?;
    let after_b = caps.pending_operations(1000)?;
    assert!(
        caps.insert(&admin, &product("B", 2)).is_err(),
        "duplicate SKU"
    );
    let mut changed = dup.clone();
    changed.currency = "TOOLONG".into();
    assert!(caps.update(&admin, &changed).is_err(), "CHECK constraint");
    assert_eq!(caps.pending_operations(1000)?, after_b);
    assert_eq!(after_b.len(), before.len() + 1);
    Ok(())
}

#[test]
fn local_only_tables_leave_nothing_in_the_outbox_and_ledgers_append() -> R {
    let store = store_with(&["caps"]);
    let caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let g = populate(&caps, &admin, "o")?;
    let ops = caps.pending_operations(10_000)?;
    let tables: Vec<&str> = ops.iter().map(|o| o.table.as_str()).collect();
    for local in [
        "sessions",
        "backups",
        "restore_jobs",
        "sync_log",
        "sync_conflicts",
        "pending_operations",
    ] {
        assert!(!tables.contains(&local), "{local} must not sync");
    }
    // The audit entries of local-only writes stay local too.
    let audited: Vec<String> = ops
        .iter()
        .filter(|o| o.table == "audit_log")
        .filter_map(|o| o.columns["table_name"].as_str().map(str::to_owned))
        .collect();
    assert!(
        !audited.iter().any(|t| t == "sessions" || t == "backups"),
        "{audited:?}"
    );
    assert!(ops
        .iter()
        .any(|o| o.table == "gift_card_transactions" && o.kind == OperationKind::LedgerAppend));
    let session = caps.list::<Session>(&Default::default())?.rows.remove(0);
    assert!(!ops.iter().any(|o| o.row_id == session.id));
    let entry = caps
        .list::<GiftCardTransaction>(
            &pos_tenancy::ListQuery::new().eq("gift_card_id", g.gift_card),
        )?
        .rows
        .remove(0);
    assert!(ops.iter().any(|o| o.row_id == entry.id));
    Ok(())
}

#[test]
fn operations_belong_to_their_tenant_only() -> R {
    let store = store_with(&["caps", "bolt"]);
    for t in ["caps", "bolt"] {
        let h = store.tenant(&tid(t))?;
        let admin = h.bootstrap_admin("owner", "Owner")?;
        h.insert(&admin, &product("SAME", 1))?;
    }
    for t in ["caps", "bolt"] {
        let ops = store.tenant(&tid(t))?.pending_operations(100)?;
        assert_eq!(ops.len(), 2, "the admin and the product");
        assert!(ops.iter().all(|o| o.tenant_id == tid(t)));
    }
    Ok(())
}

#[test]
fn stamps_never_go_backwards_across_restarts_and_clocks_set_back() -> R {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("node.db");
    let now = Arc::new(AtomicU64::new(2_000_000_000_000));
    let clock = {
        let now = Arc::clone(&now);
        move || now.load(Ordering::SeqCst)
    };
    let last = {
        let store = Store::builder().clock(clock.clone()).open(&path)?;
        store.add_tenant(&NewTenant::new(tid("caps"), "Caps"))?;
        let caps = store.tenant(&tid("caps"))?;
        let admin = caps.bootstrap_admin("owner", "Owner")?;
        caps.insert(&admin, &product("A", 1))?;
        // The wall clock jumps back an hour mid-session.
        now.fetch_sub(3_600_000, Ordering::SeqCst);
        caps.insert(&admin, &product("B", 1))?;
        let ops = caps.pending_operations(100)?;
        assert!(ops.windows(2).all(|w| w[0].hlc < w[1].hlc));
        ops.last()
            .map(|o| o.hlc)
            .ok_or(Error::UnknownTable("none".into()))?
    };
    // Restart with the clock still behind: stamps continue after the last one.
    let store = Store::builder().clock(clock).open(&path)?;
    assert_eq!(store.clock()?, last);
    let caps = store.tenant(&tid("caps"))?;
    let admin = first_admin(&caps)?;
    caps.insert(&admin, &product("C", 1))?;
    let newest = caps
        .pending_operations(100)?
        .last()
        .map(|o| o.hlc)
        .ok_or(Error::UnknownTable("none".into()))?;
    assert!(newest > last, "{newest} must follow {last}");
    assert_eq!(
        newest.node(),
        store.node_id(),
        "the node keeps its id across restarts"
    );
    Ok(())
}

#[test]
fn a_remote_stamp_moves_the_clock_forward_within_the_allowed_skew_only() -> R {
    let now = 2_000_000_000_000u64;
    let store = built_store_with(
        Store::builder()
            .clock(move || now)
            .max_clock_skew(Duration::from_secs(60)),
        &["caps"],
    );
    let other = RowId::new();
    let ahead = Hlc::new(now + 30_000, 7, other).map_err(Error::Clock)?;
    store.observe_clock(&ahead)?;
    let before = store.clock()?;
    let too_far = Hlc::new(now + 61_000, 0, other).map_err(Error::Clock)?;
    match store.observe_clock(&too_far) {
        Err(Error::Clock(HlcError::TooFarAhead { .. })) => {}
        other => panic!("expected TooFarAhead, got {other:?}"),
    }
    assert_eq!(store.clock()?, before, "a refused stamp changes nothing");
    let caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    caps.insert(&admin, &product("A", 1))?;
    let op = caps.pending_operations(1)?.remove(0);
    assert!(op.hlc > ahead, "local writes come after what was observed");
    Ok(())
}

#[test]
fn a_transaction_the_database_rolled_back_takes_no_more_writes() -> R {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("node.db");
    {
        let store = Store::open(&path)?;
        store.add_tenant(&NewTenant::new(tid("caps"), "Caps"))?;
        store
            .tenant(&tid("caps"))?
            .bootstrap_admin("owner", "Owner")?;
    }
    let conn = rusqlite::Connection::open(&path)?;
    conn.execute_batch(
        "CREATE TRIGGER products_no_free BEFORE INSERT ON products WHEN NEW.price_minor = 0
         BEGIN SELECT RAISE(ROLLBACK, 'free products roll everything back'); END;",
    )?;
    drop(conn);
    let store = Store::open(&path)?;
    let mut caps = store.tenant(&tid("caps"))?;
    let admin = first_admin(&caps)?;
    let before = caps.pending_operations(100)?;
    {
        let tx = caps.transaction()?;
        tx.insert(&admin, &product("A", 1))?;
        assert!(tx.insert(&admin, &product("FREE", 0)).is_err());
        assert!(matches!(
            tx.insert(&admin, &product("B", 1)),
            Err(Error::TransactionAborted)
        ));
        assert!(tx.commit().is_err());
    }
    assert!(
        caps.list::<Product>(&Default::default())?.rows.is_empty(),
        "nothing of it was kept"
    );
    assert_eq!(caps.pending_operations(100)?, before);
    Ok(())
}

mod embedded {
    refinery::embed_migrations!("migrations/node");
}

/// Writes one operation as the outbox stored it before V3: the whole stamp as its key.
fn insert_v2_operation(conn: &rusqlite::Connection, op: &Operation) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO pending_operations (id, tenant_id, device_id, hlc, actor_user_id, table_name,
                                         row_id, kind, columns, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        rusqlite::params![
            op.id,
            op.tenant_id,
            op.device_id.to_string(),
            op.hlc.to_string(),
            op.actor_user_id,
            op.table,
            op.row_id.to_string(),
            op.kind.to_string(),
            serde_json::Value::Object(op.columns.clone()).to_string(),
            now()
        ],
    )?;
    Ok(())
}

#[test]
fn operations_written_before_the_compact_outbox_read_back_unchanged() -> R {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("node.db");
    let node = RowId::new();
    let admin = RowId::new();
    let t = 2_000_000_000_000u64;
    let op = |hlc: Hlc, kind: OperationKind, columns: serde_json::Value| Operation {
        id: RowId::new(),
        tenant_id: tid("caps"),
        device_id: node,
        hlc,
        actor_user_id: Some(admin),
        table: "products".into(),
        row_id: RowId::new(),
        kind,
        columns: columns.as_object().cloned().unwrap_or_default(),
        unit: None,
        base: None,
    };
    let stamp = |counter, node| Hlc::new(t, counter, node).map_err(Error::Clock);
    let mut columns =
        serde_json::to_value(product("OF-1", 1299)).map_err(|e| Error::InvalidPayload {
            table: "products",
            reason: e.to_string(),
        })?;
    if let Some(c) = columns.as_object_mut() {
        c.remove("id");
    }
    let before = [
        op(stamp(0, node)?, OperationKind::Insert, columns),
        op(
            stamp(1, node)?,
            OperationKind::Update,
            serde_json::json!({ "price_minor": 1399 }),
        ),
        // A stamp of another node than the row's device (none is written so, but one copied in
        // would be): kept whole.
        op(
            stamp(2, RowId::new())?,
            OperationKind::Delete,
            serde_json::json!({}),
        ),
    ];
    {
        let mut conn = rusqlite::Connection::open(&path)?;
        embedded::migrations::runner()
            .set_target(refinery::Target::Version(2))
            .run(&mut conn)
            .map_err(|e| Error::Migration(e.to_string()))?;
        let settings = serde_json::to_string(&NewTenant::new(tid("caps"), "Caps").settings)
            .map_err(|e| Error::InvalidPayload {
                table: "tenants",
                reason: e.to_string(),
            })?;
        conn.execute(
            "INSERT INTO tenants (id, name, plan, max_users, max_api_calls_month, settings,
                                  created_at, updated_at)
             VALUES ('caps', 'Caps', 'pro', 10, 100000, ?1, ?2, ?2)",
            rusqlite::params![settings, now()],
        )?;
        conn.execute(
            "INSERT INTO users (id, tenant_id, username, display_name, role, created_at, updated_at)
             VALUES (?1, 'caps', 'owner', 'Owner', 'admin', ?2, ?2)",
            rusqlite::params![admin, now()],
        )?;
        conn.execute(
            "INSERT INTO node_state (singleton, node_id) VALUES (1, ?1)",
            [node],
        )?;
        for op in &before {
            insert_v2_operation(&conn, op)?;
        }
    }

    // The wall clock a minute behind the stamps already stored (used by the write below).
    let store = Store::builder().clock(move || t - 60_000).open(&path)?;
    assert_eq!(store.schema_version()?, Store::supported_schema_version());
    let report = store.verify()?;
    assert!(report.is_ok(), "{:?}", violations(&report));
    // The wire form is what it was.
    let caps = store.tenant(&tid("caps"))?;
    assert_eq!(caps.pending_operations(10)?, before);
    // This node's stamps are stored without the node, another node's whole.
    let stored: Vec<String> = {
        let conn = rusqlite::Connection::open(&path)?;
        let mut stmt = conn.prepare("SELECT hlc FROM pending_operations ORDER BY hlc")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    assert_eq!(
        stored,
        [
            before[0].hlc.to_string()[..23].to_owned(),
            before[1].hlc.to_string()[..23].to_owned(),
            before[2].hlc.to_string(),
        ]
    );
    // The clock goes on after the newest stamp, even with the wall clock behind it.
    let caps = store.tenant(&tid("caps"))?;
    let actor = caps.actor(admin)?;
    caps.insert(&actor, &product("OF-2", 1))?;
    let ops = caps.pending_operations(10)?;
    assert_eq!(ops.len(), 4);
    assert!(
        ops[3].hlc > before[2].hlc,
        "{} after {}",
        ops[3].hlc,
        before[2].hlc
    );
    assert_eq!(ops[3].hlc.node(), node);
    assert_eq!(ops[3].device_id, node);
    Ok(())
}

#[test]
fn only_canonical_ids_timestamps_and_clock_readings_get_in() {
    use serde_json::json;
    let node = RowId::new();
    let mut op = Operation {
        id: RowId::new(),
        tenant_id: tid("caps"),
        device_id: node,
        hlc: Hlc::new(1, 0, node).expect("stamp"),
        actor_user_id: None,
        table: "fitment_data".into(),
        row_id: RowId::new(),
        kind: OperationKind::Update,
        columns: Default::default(),
        unit: None,
        base: None,
    };
    for (col, value) in [
        ("product_id", json!(node.to_string().to_uppercase())),
        ("product_id", json!(node.to_string().replace('-', ""))),
    ] {
        op.columns = json!({ col: value })
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(validate(&op).is_err(), "{value}");
    }
    op.table = "promotions".into();
    for bad in [
        "2026-11-24T05:41:06.123+05:00",
        "2026-11-24t05:41:06.123z",
        "2026-11-24T05:41:06Z",
    ] {
        op.columns = json!({ "starts_at": bad })
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(validate(&op).is_err(), "{bad}");
    }
    op.columns = json!({ "starts_at": "2026-11-24T05:41:06.123Z" })
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(validate(&op).is_ok());
    assert!(matches!(
        Hlc::new(10_000_000_000_000_000, 0, node),
        Err(HlcError::OutOfRange(_))
    ));
}

/// The newest stamp of the tenant's outbox.
fn newest_stamp(store: &Store, tenant: &str) -> pos_tenancy::Result<Hlc> {
    store
        .tenant(&tid(tenant))?
        .pending_operations(10_000)?
        .last()
        .map(|o| o.hlc)
        .ok_or(Error::UnknownTable("no operations".into()))
}

#[test]
fn a_second_store_on_the_same_file_never_makes_the_first_stamp_backwards() -> R {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("node.db");
    // The first store's wall clock is an hour behind the second's, so only what it reads from
    // the file can keep its stamps after the second's.
    let first = Store::builder().clock(|| 2_000_000_000_000).open(&path)?;
    first.add_tenant(&NewTenant::new(tid("caps"), "Caps"))?;
    first.add_tenant(&NewTenant::new(tid("bolt"), "Bolt"))?;
    let caps = first.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    caps.insert(&admin, &product("A", 1))?;
    let bolt_admin = first
        .tenant(&tid("bolt"))?
        .bootstrap_admin("owner", "Owner")?;

    // It accepts remote stamps up to an hour ahead of its clock (see the floor raised below).
    let second = Store::builder()
        .clock(|| 2_000_003_600_000)
        .max_clock_skew(Duration::from_secs(3_600))
        .open(&path)?;
    assert_eq!(second.node_id(), first.node_id(), "one file, one node");
    {
        let caps = second.tenant(&tid("caps"))?;
        let admin = first_admin(&caps)?;
        caps.insert(&admin, &product("B", 1))?;
        caps.insert(&admin, &product("C", 1))?;
    }
    let seconds = newest_stamp(&second, "caps")?;
    assert_eq!(seconds.millis(), 2_000_003_600_000);

    // Back to the first store, whose memory of the clock is now stale.
    caps.insert(&admin, &product("D", 1))?;
    let after = newest_stamp(&first, "caps")?;
    assert!(after > seconds, "{after} must follow {seconds}");
    let ops = caps.pending_operations(100)?;
    assert!(
        ops.windows(2).all(|w| w[0].hlc < w[1].hlc),
        "stamps increase"
    );

    // The second store raises the clock floor; the first's next stamp of another tenant
    // follows it.
    let remote = Hlc::new(2_000_003_700_000, 5, RowId::new()).map_err(Error::Clock)?;
    second.observe_clock(&remote)?;
    let bolt = first.tenant(&tid("bolt"))?;
    bolt.insert(&bolt_admin, &product("E", 1))?;
    let bolts = newest_stamp(&first, "bolt")?;
    assert!(bolts > remote, "{bolts} must follow {remote}");

    // And the second store, in its turn, continues after the first.
    {
        let caps = second.tenant(&tid("caps"))?;
        let admin = first_admin(&caps)?;
        caps.insert(&admin, &product("F", 1))?;
    }
    let newest = newest_stamp(&second, "caps")?;
    assert!(newest > after, "{newest} must follow {after}");
    Ok(())
}

#[test]
fn the_clock_goes_on_after_observed_stamps_rollbacks_and_restarts() -> R {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("node.db");
    let now = 2_000_000_000_000u64;
    let (last, remote) = {
        let store = Store::builder()
            .clock(move || now)
            .max_clock_skew(Duration::from_secs(60))
            .open(&path)?;
        store.add_tenant(&NewTenant::new(tid("caps"), "Caps"))?;
        let mut caps = store.tenant(&tid("caps"))?;
        let admin = caps.bootstrap_admin("owner", "Owner")?;
        caps.insert(&admin, &product("A", 1))?;
        // A write rolled back: its stamp is never stored, and the next one still increases.
        {
            let tx = caps.transaction()?;
            tx.insert(&admin, &product("B", 1))?;
        }
        caps.insert(&admin, &product("C", 1))?;
        let ops = caps.pending_operations(100)?;
        assert!(ops.windows(2).all(|w| w[0].hlc < w[1].hlc));
        // A remote stamp observed by this very store, after stamps it remembers.
        let remote = Hlc::new(now + 30_000, 9, RowId::new()).map_err(Error::Clock)?;
        store.observe_clock(&remote)?;
        let caps = store.tenant(&tid("caps"))?;
        caps.insert(&admin, &product("D", 1))?;
        let last = newest_stamp(&store, "caps")?;
        assert!(last > remote, "{last} must follow {remote}");
        (last, remote)
    };
    // A restart, the wall clock now a day behind.
    let store = Store::builder()
        .clock(move || now - 86_400_000)
        .open(&path)?;
    let caps = store.tenant(&tid("caps"))?;
    let admin = first_admin(&caps)?;
    caps.insert(&admin, &product("E", 1))?;
    let newest = newest_stamp(&store, "caps")?;
    assert!(
        newest > last && newest > remote,
        "{newest} must follow {last}"
    );
    Ok(())
}
