//! The tenant handle: typed CRUD over every table, lists, transactions, actors and roles,
//! tenant status, payload checks, and the audit trail.

mod common;

use common::*;
use pos_tenancy::catalog::{self, AuditEntry, Customer, GiftCardTransaction, Product, Sale, User};
use pos_tenancy::{
    Error, FilterOp, ListQuery, Role, RowId, TenantAccess, TenantSettings, TenantStatus,
};

type R = pos_tenancy::Result<()>;

#[test]
fn every_writable_table_round_trips_through_the_handle() -> R {
    let store = store_with(&["caps"]);
    let caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let g = populate(&caps, &admin, "1")?;
    let p: Product = caps.fetch(g.product)?;
    assert_eq!(p.image.as_deref(), Some(&[0u8, 159, 146, 150, 255][..]));
    assert_eq!(p.barcode.as_deref(), Some("00011"));
    // Every catalog table that applications write now holds a row of this tenant.
    for t in catalog::TABLES {
        let n = caps
            .query(&format!("SELECT count(*) FROM {}", t.name))?
            .rows[0][0]
            .as_i64();
        // The sync engine's bookkeeping is written only by the sync engine.
        let internal_empty = matches!(
            t.name,
            "sync_log" | "sync_conflicts" | "sync_state" | "sync_stamps"
        );
        assert_eq!(n == Some(0), internal_empty, "{}: {n:?} rows", t.name);
    }
    Ok(())
}

#[test]
fn updates_record_which_columns_changed_and_deletes_leave_an_audit_row() -> R {
    let store = store_with(&["caps"]);
    let caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let mut p = product("BP-1", 4500);
    caps.insert(&admin, &p)?;
    p.price_minor = 4999;
    p.name = "Brake pads (front)".into();
    caps.update(&admin, &p)?;
    assert_eq!(caps.fetch::<Product>(p.id)?.price_minor, 4999);
    caps.update(&admin, &p)?; // unchanged: no write, no audit row
    caps.delete::<Product>(&admin, p.id)?;
    assert!(caps.get::<Product>(p.id)?.is_none());
    let audit = caps
        .list::<AuditEntry>(&ListQuery::new().eq("row_id", p.id.to_string()))?
        .rows;
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["insert", "update", "delete"]);
    let detail = audit[1].detail.as_ref().expect("update detail").0.clone();
    assert_eq!(
        detail,
        serde_json::json!({ "columns": ["name", "price_minor"] })
    );
    assert!(audit
        .iter()
        .all(|a| a.actor_user_id == Some(admin.user_id())));
    assert!(matches!(
        caps.delete::<Product>(&admin, p.id),
        Err(Error::NotFound { .. })
    ));
    Ok(())
}

#[test]
fn lists_filter_and_page_by_keyset_without_gaps_or_repeats() -> R {
    let store = store_with(&["caps", "bolt"]);
    let caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let bolt = store.tenant(&tid("bolt"))?;
    let bolt_admin = bolt.bootstrap_admin("owner", "Owner")?;
    let mut expected = Vec::new();
    for i in 0..53 {
        let p = product(&format!("SKU-{i:03}"), 100 * i);
        caps.insert(&admin, &p)?;
        bolt.insert(&bolt_admin, &product(&format!("SKU-{i:03}"), 1))?;
        expected.push(p.id);
    }
    let mut seen = Vec::new();
    let mut q = ListQuery::new().limit(10);
    loop {
        let page = caps.list::<Product>(&q)?;
        seen.extend(page.rows.iter().map(|p| p.id));
        match page.next {
            Some(next) => q = q.after(next),
            None => break,
        }
    }
    assert_eq!(seen, expected, "pages cover every row once, in id order");
    let cheap = caps.list::<Product>(&ListQuery::new().filter("price_minor", FilterOp::Lt, 500))?;
    assert_eq!(cheap.rows.len(), 5);
    let like = caps.list::<Product>(&ListQuery::new().filter("sku", FilterOp::Like, "SKU-05%"))?;
    assert_eq!(like.rows.len(), 3);
    let newest = caps.list::<Product>(&ListQuery::new().descending().limit(1))?;
    assert_eq!(newest.rows[0].id, *expected.last().expect("rows"));
    let none = caps.list::<Product>(&ListQuery::new().filter("barcode", FilterOp::IsNotNull, 0))?;
    assert!(none.rows.is_empty());
    let bad = caps.list::<Product>(&ListQuery::new().eq("price; DROP TABLE products", 1));
    assert!(matches!(bad, Err(Error::UnknownColumn { .. })));
    assert!(matches!(
        caps.list::<Product>(&ListQuery::new().limit(0)),
        Err(Error::InvalidPayload { .. })
    ));
    Ok(())
}

#[test]
fn a_transaction_commits_together_and_rolls_back_when_dropped() -> R {
    let store = store_with(&["caps"]);
    let mut caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let (a, b) = (product("A", 1), product("B", 2));
    {
        let tx = caps.transaction()?;
        tx.insert(&admin, &a)?;
        tx.insert(&admin, &b)?;
        assert!(
            tx.get::<Product>(a.id)?.is_some(),
            "visible inside the transaction"
        );
    } // dropped: rolled back
    assert!(caps.get::<Product>(a.id)?.is_none());
    assert!(caps
        .list::<AuditEntry>(&ListQuery::new().eq("table_name", "products"))?
        .rows
        .is_empty());

    let tx = caps.transaction()?;
    tx.insert(&admin, &a)?;
    // A failing write inside leaves nothing of itself, and the transaction goes on.
    assert!(tx.insert(&admin, &product("A", 5)).is_err());
    tx.insert(&admin, &b)?;
    tx.commit()?;
    assert_eq!(caps.list::<Product>(&ListQuery::new())?.rows.len(), 2);
    assert_eq!(
        caps.list::<AuditEntry>(&ListQuery::new().eq("table_name", "products"))?
            .rows
            .len(),
        2
    );
    Ok(())
}

#[test]
fn roles_gate_writes_and_actors_come_only_from_the_users_table() -> R {
    let store = store_with(&["caps", "bolt"]);
    let caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let g = populate(&caps, &admin, "r")?;
    let cashier = caps.actor(g.user)?;
    assert_eq!(cashier.role(), Role::Cashier);
    // A cashier sells and adds customers but does not edit the catalogue or manage users.
    caps.insert(&cashier, &customer("C-9", None))?;
    let err = caps
        .insert(&cashier, &product("X", 1))
        .expect_err("cashier edits products");
    assert!(
        matches!(
            err,
            Error::PermissionDenied {
                needed: Role::Manager,
                ..
            }
        ),
        "{err}"
    );
    let mut u: User = caps.fetch(g.user)?;
    u.role = Role::Admin;
    let err = caps
        .update(&cashier, &u)
        .expect_err("cashier promotes self");
    assert!(
        matches!(
            err,
            Error::PermissionDenied {
                needed: Role::Admin,
                ..
            }
        ),
        "{err}"
    );
    caps.update(&admin, &u)?;
    assert_eq!(caps.actor(g.user)?.role(), Role::Admin);
    // Settings need an admin too, and are validated.
    let manager_id = {
        let mut m: User = caps.fetch(g.user)?;
        m.id = RowId::new();
        m.username = "mgr".into();
        m.email = None;
        m.role = Role::Manager;
        caps.insert(&admin, &m)?;
        m.id
    };
    let manager = caps.actor(manager_id)?;
    let mut s = TenantSettings::new("Caps Automotive");
    assert!(matches!(
        caps.update_settings(&manager, &s),
        Err(Error::PermissionDenied { .. })
    ));
    s.currency = "EURO".into();
    assert!(matches!(
        caps.update_settings(&admin, &s),
        Err(Error::Settings(_))
    ));
    s.currency = "EUR".into();
    assert_eq!(caps.update_settings(&admin, &s)?.settings.currency, "EUR");
    // Unknown users are not actors; another tenant's actor is refused.
    assert!(matches!(
        caps.actor(RowId::new()),
        Err(Error::UnknownActor(_))
    ));
    let bolt = store.tenant(&tid("bolt"))?;
    let err = bolt
        .insert(&admin, &product("Y", 1))
        .expect_err("caps admin on bolt");
    assert!(matches!(err, Error::ActorTenantMismatch { .. }), "{err}");
    Ok(())
}

#[test]
fn suspended_tenants_read_but_do_not_write_and_cancelled_ones_do_neither() -> R {
    let store = store_with(&["caps"]);
    let caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let p = product("A", 1);
    caps.insert(&admin, &p)?;
    store.set_tenant_status(&tid("caps"), TenantStatus::Suspended)?;
    assert!(caps.get::<Product>(p.id)?.is_some());
    let err = caps
        .insert(&admin, &product("B", 1))
        .expect_err("write while suspended");
    assert!(
        matches!(
            err,
            Error::TenantInactive {
                status: TenantStatus::Suspended,
                ..
            }
        ),
        "{err}"
    );
    store.set_tenant_status(&tid("caps"), TenantStatus::Active)?;
    caps.insert(&admin, &product("B", 1))?;
    store.set_tenant_status(&tid("caps"), TenantStatus::Cancelled)?;
    assert!(matches!(
        caps.insert(&admin, &product("C", 1)),
        Err(Error::TenantInactive { .. })
    ));
    assert!(matches!(
        store.tenant(&tid("caps")),
        Err(Error::TenantInactive { .. })
    ));
    Ok(())
}

#[test]
fn a_cancelled_tenant_stays_cancelled_and_a_handle_opened_before_reads_nothing() -> R {
    use pos_tenancy::pos::Pos;
    let store = store_with(&["caps"]);
    let mut caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let p = product("A", 1);
    caps.insert(&admin, &p)?;
    // Suspended and active change into each other; a suspended tenant still reads.
    store.set_tenant_status(&tid("caps"), TenantStatus::Suspended)?;
    assert!(caps.get::<Product>(p.id)?.is_some());
    store.set_tenant_status(&tid("caps"), TenantStatus::Active)?;
    store.set_tenant_status(&tid("caps"), TenantStatus::Suspended)?;
    store.set_tenant_status(&tid("caps"), TenantStatus::Cancelled)?;
    // The handle was opened before the cancellation: every read is refused now.
    let cancelled = |r: pos_tenancy::Result<()>| {
        matches!(
            r,
            Err(Error::TenantInactive {
                status: TenantStatus::Cancelled,
                operation: "read",
                ..
            })
        )
    };
    assert!(cancelled(caps.get::<Product>(p.id).map(drop)));
    assert!(cancelled(caps.get::<Product>(RowId::new()).map(drop)));
    assert!(cancelled(caps.fetch::<Product>(p.id).map(drop)));
    assert!(cancelled(caps.list::<Product>(&ListQuery::new()).map(drop)));
    assert!(cancelled(caps.query("SELECT sku FROM products").map(drop)));
    assert!(cancelled(caps.actor(admin.user_id()).map(drop)));
    assert!(cancelled(caps.pending_operations(10).map(drop)));
    assert!(cancelled(caps.stock_on_hand(p.id, "main").map(drop)));
    assert!(cancelled(caps.transaction().map(drop)));
    // Cancelled is final: neither a suspension (which would make it readable) nor an
    // activation is made, and nothing changes.
    let before = store.tenant_info(&tid("caps"))?;
    for to in [TenantStatus::Suspended, TenantStatus::Active] {
        let err = store
            .set_tenant_status(&tid("caps"), to)
            .expect_err("a cancelled tenant changed");
        assert!(
            matches!(
                err,
                Error::TenantStatusChange {
                    from: TenantStatus::Cancelled,
                    to: found,
                    ..
                } if found == to
            ),
            "{err}"
        );
    }
    assert_eq!(store.tenant_info(&tid("caps"))?, before);
    assert!(cancelled(caps.get::<Product>(p.id).map(drop)));
    assert!(matches!(
        store.tenant(&tid("caps")),
        Err(Error::TenantInactive { .. })
    ));
    // Cancelling again changes nothing and is not an error.
    store.set_tenant_status(&tid("caps"), TenantStatus::Cancelled)?;
    Ok(())
}

#[test]
fn ledgers_are_append_only_and_documents_are_never_deleted() -> R {
    let store = store_with(&["caps"]);
    let caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let g = populate(&caps, &admin, "l")?;
    let entry = caps
        .list::<GiftCardTransaction>(&ListQuery::new().eq("gift_card_id", g.gift_card))?
        .rows
        .remove(0);
    let mut changed = entry.clone();
    changed.amount_minor = 1_000_000;
    assert!(matches!(
        caps.update(&admin, &changed),
        Err(Error::AppendOnly { .. })
    ));
    assert!(matches!(
        caps.delete::<GiftCardTransaction>(&admin, entry.id),
        Err(Error::AppendOnly { .. })
    ));
    assert!(matches!(
        caps.delete::<Sale>(&admin, g.sale),
        Err(Error::AppendOnly { .. })
    ));
    // The crate's own tables are not written by applications.
    let audit = AuditEntry {
        id: RowId::new(),
        at: now(),
        actor_user_id: None,
        action: "insert".into(),
        table_name: "products".into(),
        row_id: "forged".into(),
        detail: None,
    };
    assert!(matches!(
        caps.insert(&admin, &audit),
        Err(Error::InternalTable("audit_log"))
    ));
    assert_eq!(caps.fetch::<GiftCardTransaction>(entry.id)?, entry);
    Ok(())
}

#[test]
fn json_payloads_are_checked_against_the_catalog_and_the_tenant() -> R {
    let store = store_with(&["caps", "bolt"]);
    let caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let ts = now().to_string();
    let good = serde_json::json!({
        "tenant_id": "caps", "code": "C-1", "first_name": "José", "last_name": "Núñez",
        "company": null, "email": null, "phone": null, "price_level_id": null,
        "tax_exempt": false, "notes": "prefers 🚗 parts", "created_at": ts, "updated_at": ts,
    });
    let id = caps.insert_json(&admin, "customers", good.clone())?;
    assert_eq!(
        caps.fetch::<Customer>(id)?.notes.as_deref(),
        Some("prefers 🚗 parts")
    );

    let mut other = good.clone();
    other["tenant_id"] = "bolt".into();
    other["code"] = "C-2".into();
    assert!(matches!(
        caps.insert_json(&admin, "customers", other),
        Err(Error::TenantMismatch { .. })
    ));
    let mut wrong_type = good.clone();
    wrong_type["tax_exempt"] = "yes".into();
    wrong_type["code"] = "C-3".into();
    assert!(matches!(
        caps.insert_json(&admin, "customers", wrong_type),
        Err(Error::InvalidPayload { .. })
    ));
    let mut extra = good.clone();
    extra["code"] = "C-4".into();
    extra["is_admin"] = true.into();
    assert!(matches!(
        caps.insert_json(&admin, "customers", extra),
        Err(Error::InvalidPayload { .. })
    ));
    assert!(matches!(
        caps.insert_json(&admin, "sqlite_master", good),
        Err(Error::UnknownTable(_))
    ));
    assert_eq!(
        caps.list::<Customer>(&ListQuery::new())?.rows.len(),
        1,
        "nothing else was written"
    );
    Ok(())
}

#[test]
fn the_plan_caps_the_number_of_users() -> R {
    let store = pos_tenancy::Store::open_in_memory()?;
    store.add_tenant(&pos_tenancy::NewTenant::new(tid("tiny"), "Tiny"))?; // free: 3 users
    let tiny = store.tenant(&tid("tiny"))?;
    let admin = tiny.bootstrap_admin("owner", "Owner")?;
    assert!(matches!(
        tiny.bootstrap_admin("again", "Again"),
        Err(Error::AlreadyBootstrapped(_))
    ));
    let mut users = Vec::new();
    for i in 0..3 {
        let now = now();
        users.push(User {
            id: RowId::new(),
            username: format!("u{i}"),
            display_name: format!("User {i}"),
            email: None,
            role: Role::Cashier,
            pin_hash: None,
            active: true,
            created_at: now,
            updated_at: now,
        });
    }
    tiny.insert(&admin, &users[0])?;
    tiny.insert(&admin, &users[1])?;
    let err = tiny
        .insert(&admin, &users[2])
        .expect_err("fourth user on free");
    assert!(matches!(err, Error::PlanLimit { limit: 3, .. }), "{err}");
    store.set_tenant_plan(&tid("tiny"), pos_tenancy::Plan::Pro)?;
    tiny.insert(&admin, &users[2])?;
    Ok(())
}

#[test]
fn a_file_store_keeps_its_data_across_reopening() -> R {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("node.db");
    let id = {
        let store = pos_tenancy::Store::open(&path)?;
        store.add_tenant(&pos_tenancy::NewTenant::new(tid("caps"), "Caps"))?;
        let caps = store.tenant(&tid("caps"))?;
        let admin = caps.bootstrap_admin("owner", "Owner")?;
        let p = product("A", 1);
        caps.insert(&admin, &p)?;
        p.id
    };
    let store = pos_tenancy::Store::open(&path)?;
    assert_eq!(store.tenant(&tid("caps"))?.fetch::<Product>(id)?.sku, "A");
    assert_eq!(
        store
            .tenant(&tid("caps"))?
            .query("SELECT sku FROM products")?
            .rows
            .len(),
        1
    );
    Ok(())
}

#[test]
fn an_actor_made_before_a_demotion_loses_its_powers_and_the_last_admin_stays() -> R {
    let store = store_with(&["caps"]);
    let caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let g = populate(&caps, &admin, "d")?;
    let mut user: User = caps.fetch(g.user)?;
    user.role = Role::Manager;
    caps.update(&admin, &user)?;
    let manager = caps.actor(g.user)?;
    caps.insert(&manager, &product("M-1", 1))?;
    user.role = Role::Cashier;
    caps.update(&admin, &user)?;
    let err = caps
        .insert(&manager, &product("M-2", 1))
        .expect_err("stale manager actor");
    assert!(
        matches!(
            err,
            Error::PermissionDenied {
                role: Role::Cashier,
                ..
            }
        ),
        "{err}"
    );
    user.active = false;
    caps.update(&admin, &user)?;
    assert!(matches!(
        caps.insert(&manager, &customer("Z", None)),
        Err(Error::UnknownActor(_))
    ));

    // The only admin cannot demote or disable themself, nor be deleted.
    let mut me: User = caps.fetch(admin.user_id())?;
    me.role = Role::Manager;
    assert!(matches!(caps.update(&admin, &me), Err(Error::LastAdmin(_))));
    me.role = Role::Admin;
    me.active = false;
    assert!(matches!(caps.update(&admin, &me), Err(Error::LastAdmin(_))));
    assert_eq!(
        caps.actor(admin.user_id())?.role(),
        Role::Admin,
        "nothing changed"
    );
    Ok(())
}

#[test]
fn closed_documents_are_not_edited() -> R {
    let store = store_with(&["caps"]);
    let caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let g = populate(&caps, &admin, "z")?;
    let mut sale: Sale = caps.fetch(g.sale)?;
    assert_eq!(sale.status, "completed");
    sale.total_minor = 1;
    let err = caps
        .update(&admin, &sale)
        .expect_err("completed sale edited");
    assert!(
        matches!(err, Error::AppendOnly { table: "sales", .. }),
        "{err}"
    );
    assert_ne!(caps.fetch::<Sale>(g.sale)?.total_minor, 1);
    // An open work order is still worked on.
    let mut wo = caps
        .list::<catalog::WorkOrder>(&ListQuery::new())?
        .rows
        .remove(0);
    wo.status = "in_progress".into();
    caps.update(&admin, &wo)?;
    Ok(())
}
