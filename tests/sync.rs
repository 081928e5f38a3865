//! The sync engine through the public API, in process: terminals on real SQLite files, the
//! central store behind the direct transport. Each merge rule and each conflict kind has its
//! own test; the same outcome is checked on every terminal, in both orders where order could
//! matter.

mod common;

use std::sync::Arc;

use common::{customer, product, tid};
use pos_tenancy::catalog::{Customer, Product, SyncConflict};
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::sync::{DirectTransport, SyncOptions, Syncer};
use pos_tenancy::{
    Actor, CentralStore, ListQuery, NewTenant, RowId, SqliteCentral, Store, TenantAccess, TenantId,
};

type R = Result<(), Box<dyn std::error::Error>>;

/// A central store and the terminals of one tenant, each on its own file.
struct World {
    _dir: tempfile::TempDir,
    central: Arc<SqliteCentral>,
    transport: DirectTransport<SqliteCentral>,
    terminals: Vec<Store>,
    tenant: TenantId,
    options: SyncOptions,
}

impl World {
    fn new(terminals: usize) -> Result<Self, Box<dyn std::error::Error>> {
        Self::with_options(terminals, SyncOptions::default())
    }

    fn with_options(
        terminals: usize,
        options: SyncOptions,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let central = Arc::new(SqliteCentral::open_in_memory()?);
        let tenant = tid("caps");
        central.add_tenant(&NewTenant::new(tenant.clone(), "Caps Automotive"))?;
        let mut stores = Vec::new();
        for i in 0..terminals {
            let store = Store::open(dir.path().join(format!("t{i}.db")))?;
            store.add_tenant(&NewTenant::new(tenant.clone(), "Caps Automotive"))?;
            stores.push(store);
        }
        let world = Self {
            _dir: dir,
            transport: DirectTransport::new(Arc::clone(&central)),
            central,
            terminals: stores,
            tenant,
            options,
        };
        Ok(world)
    }

    /// The first terminal makes the tenant's admin; everyone syncs to have it.
    fn admin(&self) -> Result<Actor, Box<dyn std::error::Error>> {
        let t0 = self.terminals[0].tenant(&self.tenant)?;
        let admin = t0.bootstrap_admin("owner", "Owner")?;
        self.sync_all()?;
        Ok(admin)
    }

    fn actor(&self, i: usize, admin: &Actor) -> Result<Actor, Box<dyn std::error::Error>> {
        Ok(self.terminals[i]
            .tenant(&self.tenant)?
            .actor(admin.user_id())?)
    }

    fn sync(&self, i: usize) -> Result<pos_tenancy::sync::RoundReport, Box<dyn std::error::Error>> {
        let syncer = Syncer::new(&self.terminals[i], &self.transport, &self.options);
        Ok(syncer.round(&self.tenant, "token")?)
    }

    /// Every terminal in turn until none has anything to push and each has applied the whole
    /// log (a merge may record conflicts, which travel too); at most ten turns.
    fn sync_all(&self) -> R {
        for _ in 0..10 {
            for i in 0..self.terminals.len() {
                self.sync(i)?;
            }
            let head = self.central.operations_after(&self.tenant, 0, 1)?.high;
            let quiet = self.terminals.iter().all(|s| {
                s.sync_status(&self.tenant)
                    .is_ok_and(|st| st.pending == 0 && st.cursor == head)
            });
            if quiet {
                return Ok(());
            }
        }
        Err("terminals did not settle within ten turns".into())
    }

    /// Every synced table of the tenant on terminal `i`, rows in id order, as JSON text.
    fn dump(&self, i: usize) -> Result<Vec<(String, String)>, Box<dyn std::error::Error>> {
        let t = self.terminals[i].tenant(&self.tenant)?;
        let mut out = Vec::new();
        for table in pos_tenancy::catalog::TABLES {
            if table.sync_class == pos_tenancy::catalog::SyncClass::LocalOnly {
                continue;
            }
            let rows = t.query(&format!("SELECT * FROM {} ORDER BY id", table.name))?;
            out.push((table.name.to_owned(), serde_json::to_string(&rows.rows)?));
        }
        Ok(out)
    }

    fn assert_converged(&self) -> R {
        let first = self.dump(0)?;
        for i in 1..self.terminals.len() {
            let other = self.dump(i)?;
            for ((table, a), (_, b)) in first.iter().zip(&other) {
                assert_eq!(a, b, "{table} differs between terminal 0 and terminal {i}");
            }
        }
        for (i, store) in self.terminals.iter().enumerate() {
            let report = store.verify()?;
            assert!(report.is_ok(), "terminal {i}: {:?}", report.violations);
            let status = store.sync_status(&self.tenant)?;
            assert_eq!(
                status.pending, 0,
                "terminal {i} still has operations to push"
            );
            assert_eq!(
                status.cursor, status.server_high,
                "terminal {i} is behind the log"
            );
        }
        Ok(())
    }

    fn conflicts(&self, i: usize) -> Result<Vec<SyncConflict>, Box<dyn std::error::Error>> {
        let t = self.terminals[i].tenant(&self.tenant)?;
        Ok(t.list::<SyncConflict>(&ListQuery::new().limit(500))?.rows)
    }

    fn conflict_kinds(&self, i: usize) -> Result<Vec<(RowId, String)>, Box<dyn std::error::Error>> {
        let mut kinds: Vec<(RowId, String)> = self
            .conflicts(i)?
            .into_iter()
            .map(|c| (c.id, c.kind))
            .collect();
        kinds.sort();
        Ok(kinds)
    }
}

fn cash_sale(p: &Product, qty_milli: i64) -> Checkout {
    Checkout::new()
        .line(LineItem::product(p.id, qty_milli))
        .tender(Tender::Cash {
            tendered_minor: 1_000_000,
        })
}

#[test]
fn a_second_terminal_gets_the_first_ones_catalog_and_sales_and_both_converge() -> R {
    let w = World::new(2)?;
    let admin = w.admin()?;
    let a = w.terminals[0].tenant(&w.tenant)?;
    let oil = product("OF-1", 1299);
    a.insert(&admin, &oil)?;
    a.receive_stock(&admin, oil.id, "main", 10_000, None)?;
    a.checkout(&admin, &cash_sale(&oil, 2_000))?;
    w.sync(0)?;
    let report = w.sync(1)?;
    assert!(report.applied > 0);
    let b = w.terminals[1].tenant(&w.tenant)?;
    assert_eq!(b.fetch::<Product>(oil.id)?.sku, "OF-1");
    assert_eq!(b.stock_on_hand(oil.id, "main")?, 8_000);
    // The new terminal sells as soon as it is in.
    let admin_b = w.actor(1, &admin)?;
    b.checkout(&admin_b, &cash_sale(&oil, 1_000))?;
    w.sync_all()?;
    assert_eq!(a.stock_on_hand(oil.id, "main")?, 7_000);
    w.assert_converged()?;
    Ok(())
}

#[test]
fn the_same_page_applied_twice_changes_nothing_and_own_operations_are_recognised() -> R {
    let w = World::new(2)?;
    let admin = w.admin()?;
    let a = w.terminals[0].tenant(&w.tenant)?;
    let oil = product("OF-1", 1299);
    a.insert(&admin, &oil)?;
    a.receive_stock(&admin, oil.id, "main", 5_000, None)?;
    w.sync_all()?;
    let b = w.terminals[1].tenant(&w.tenant)?;
    let before = w.dump(1)?;
    let page = w.central.operations_after(&w.tenant, 0, 1000)?;
    assert!(page.operations.len() >= 3);
    // As if terminal 1 had crashed before its cursor moved: the whole log comes again.
    {
        let raw = rusqlite::Connection::open(w._dir.path().join("t1.db"))?;
        raw.execute("UPDATE sync_state SET cursor = 0", [])?;
    }
    let report = w.sync(1)?;
    assert_eq!(
        report.pulled as u64, page.high,
        "the whole log was fetched again"
    );
    for i in 0..2 {
        let status = w.terminals[i].sync_status(&w.tenant)?;
        assert_eq!(status.cursor, page.high);
    }
    assert_eq!(b.stock_on_hand(oil.id, "main")?, 5_000);
    assert_eq!(w.dump(1)?, before);
    Ok(())
}

#[test]
fn two_terminals_selling_the_last_unit_both_keep_their_sale_and_record_one_conflict() -> R {
    let w = World::new(2)?;
    let admin = w.admin()?;
    let a = w.terminals[0].tenant(&w.tenant)?;
    let mut oil = product("OF-1", 1299);
    oil.name = "Last oil filter".into();
    a.insert(&admin, &oil)?;
    a.receive_stock(&admin, oil.id, "main", 1_000, None)?;
    w.sync_all()?;
    // Both offline: each sells the one unit it sees.
    let b = w.terminals[1].tenant(&w.tenant)?;
    let sale_a = a.checkout(&admin, &cash_sale(&oil, 1_000))?;
    let sale_b = b.checkout(&w.actor(1, &admin)?, &cash_sale(&oil, 1_000))?;
    w.sync_all()?;
    for i in 0..2 {
        let t = w.terminals[i].tenant(&w.tenant)?;
        assert!(t
            .get::<pos_tenancy::catalog::Sale>(sale_a.sale.id)?
            .is_some());
        assert!(t
            .get::<pos_tenancy::catalog::Sale>(sale_b.sale.id)?
            .is_some());
        assert_eq!(t.stock_on_hand(oil.id, "main")?, -1_000);
        let kinds = w.conflict_kinds(i)?;
        assert_eq!(
            kinds.iter().filter(|(_, k)| k == "negative_stock").count(),
            1,
            "terminal {i}: {kinds:?}"
        );
    }
    assert_eq!(w.conflict_kinds(0)?, w.conflict_kinds(1)?);
    w.assert_converged()?;
    Ok(())
}

#[test]
fn concurrent_price_edits_keep_the_later_one_everywhere_and_record_the_other() -> R {
    for later_first in [false, true] {
        let w = World::new(2)?;
        let admin = w.admin()?;
        let a = w.terminals[0].tenant(&w.tenant)?;
        let mut p = product("BP-1", 4500);
        a.insert(&admin, &p)?;
        w.sync_all()?;
        let b = w.terminals[1].tenant(&w.tenant)?;
        let admin_b = w.actor(1, &admin)?;
        p.price_minor = 4999;
        a.update(&admin, &p)?;
        std::thread::sleep(std::time::Duration::from_millis(5));
        let mut q = b.fetch::<Product>(p.id)?;
        q.price_minor = 5200;
        b.update(&admin_b, &q)?;
        // The later edit (terminal 1's) wins whichever terminal pushes first.
        if later_first {
            w.sync(1)?;
            w.sync(0)?;
        } else {
            w.sync(0)?;
            w.sync(1)?;
        }
        w.sync_all()?;
        for i in 0..2 {
            let t = w.terminals[i].tenant(&w.tenant)?;
            assert_eq!(t.fetch::<Product>(p.id)?.price_minor, 5200, "terminal {i}");
            let kinds = w.conflict_kinds(i)?;
            assert_eq!(kinds.len(), 1, "terminal {i}: {kinds:?}");
            assert_eq!(kinds[0].1, "concurrent_edit");
        }
        assert_eq!(w.conflict_kinds(0)?, w.conflict_kinds(1)?);
        w.assert_converged()?;
    }
    Ok(())
}

#[test]
fn an_edit_made_after_seeing_the_other_is_not_a_conflict_and_an_older_write_never_wins() -> R {
    let w = World::new(2)?;
    let admin = w.admin()?;
    let a = w.terminals[0].tenant(&w.tenant)?;
    let mut p = product("BP-1", 4500);
    a.insert(&admin, &p)?;
    w.sync_all()?;
    p.price_minor = 4999;
    a.update(&admin, &p)?;
    w.sync_all()?;
    let b = w.terminals[1].tenant(&w.tenant)?;
    let mut q = b.fetch::<Product>(p.id)?;
    assert_eq!(q.price_minor, 4999);
    q.price_minor = 5100;
    b.update(&w.actor(1, &admin)?, &q)?;
    w.sync_all()?;
    for i in 0..2 {
        let t = w.terminals[i].tenant(&w.tenant)?;
        assert_eq!(t.fetch::<Product>(p.id)?.price_minor, 5100);
        assert!(w.conflicts(i)?.is_empty());
    }
    w.assert_converged()?;
    Ok(())
}

#[test]
fn update_against_delete_ends_deleted_everywhere_in_both_orders() -> R {
    for deleter_first in [false, true] {
        let w = World::new(2)?;
        let admin = w.admin()?;
        let a = w.terminals[0].tenant(&w.tenant)?;
        let c = customer("C-1", Some("ana@example.com"));
        a.insert(&admin, &c)?;
        w.sync_all()?;
        let b = w.terminals[1].tenant(&w.tenant)?;
        a.delete::<Customer>(&admin, c.id)?;
        std::thread::sleep(std::time::Duration::from_millis(5));
        let mut edited = b.fetch::<Customer>(c.id)?;
        edited.phone = Some("+1 555 0199".into());
        b.update(&w.actor(1, &admin)?, &edited)?;
        if deleter_first {
            w.sync(0)?;
            w.sync(1)?;
        } else {
            w.sync(1)?;
            w.sync(0)?;
        }
        w.sync_all()?;
        for i in 0..2 {
            let t = w.terminals[i].tenant(&w.tenant)?;
            assert!(t.get::<Customer>(c.id)?.is_none(), "terminal {i}");
            let kinds = w.conflict_kinds(i)?;
            assert_eq!(kinds.len(), 1, "terminal {i}: {kinds:?}");
            assert_eq!(kinds[0].1, "update_vs_delete");
        }
        assert_eq!(w.conflict_kinds(0)?, w.conflict_kinds(1)?);
        w.assert_converged()?;
    }
    Ok(())
}

#[test]
fn a_product_deleted_on_one_terminal_and_sold_on_another_comes_back_with_the_sale() -> R {
    let w = World::new(2)?;
    let admin = w.admin()?;
    let a = w.terminals[0].tenant(&w.tenant)?;
    // Wiper fitting: no stock, so nothing on terminal 0 refers to it when it is deleted.
    let mut p = product("WB-1", 899);
    p.kind = "service".into();
    a.insert(&admin, &p)?;
    w.sync_all()?;
    let b = w.terminals[1].tenant(&w.tenant)?;
    a.delete::<Product>(&admin, p.id)?;
    let sale = b.checkout(&w.actor(1, &admin)?, &cash_sale(&p, 1_000))?;
    w.sync_all()?;
    for i in 0..2 {
        let t = w.terminals[i].tenant(&w.tenant)?;
        assert!(
            t.get::<Product>(p.id)?.is_some(),
            "terminal {i} lost the product"
        );
        assert!(t.get::<pos_tenancy::catalog::Sale>(sale.sale.id)?.is_some());
        let kinds = w.conflict_kinds(i)?;
        assert_eq!(kinds.len(), 1, "terminal {i}: {kinds:?}");
        assert_eq!(kinds[0].1, "delete_vs_reference");
    }
    w.assert_converged()?;
    Ok(())
}

#[test]
fn the_same_sku_created_on_two_terminals_keeps_both_products_and_renames_one_everywhere() -> R {
    let w = World::new(2)?;
    let admin = w.admin()?;
    let a = w.terminals[0].tenant(&w.tenant)?;
    let b = w.terminals[1].tenant(&w.tenant)?;
    let x = product("DUP-1", 100);
    let y = product("DUP-1", 200);
    a.insert(&admin, &x)?;
    b.insert(&w.actor(1, &admin)?, &y)?;
    w.sync_all()?;
    let (keeper, loser) = if x.id < y.id {
        (x.id, y.id)
    } else {
        (y.id, x.id)
    };
    let tag = loser.to_string();
    for i in 0..2 {
        let t = w.terminals[i].tenant(&w.tenant)?;
        assert_eq!(t.fetch::<Product>(keeper)?.sku, "DUP-1");
        assert_eq!(
            t.fetch::<Product>(loser)?.sku,
            format!("DUP-1~{}", &tag[tag.len() - 8..])
        );
        let kinds = w.conflict_kinds(i)?;
        assert_eq!(kinds.len(), 1, "terminal {i}: {kinds:?}");
        assert_eq!(kinds[0].1, "duplicate_key");
    }
    w.assert_converged()?;
    Ok(())
}

#[test]
fn a_checkout_arrives_whole_even_one_operation_a_page() -> R {
    let w = World::with_options(2, SyncOptions::default().page_size(1).batch_size(3))?;
    let admin = w.admin()?;
    let a = w.terminals[0].tenant(&w.tenant)?;
    let oil = product("OF-1", 1299);
    let filter = product("AF-2", 2599);
    a.insert(&admin, &oil)?;
    a.insert(&admin, &filter)?;
    a.receive_stock(&admin, oil.id, "main", 10_000, None)?;
    a.receive_stock(&admin, filter.id, "main", 10_000, None)?;
    let receipt = a.checkout(
        &admin,
        &Checkout::new()
            .line(LineItem::product(oil.id, 1_000))
            .line(LineItem::product(filter.id, 2_000))
            .tender(Tender::Cash {
                tendered_minor: 1_000_000,
            }),
    )?;
    w.sync_all()?;
    let b = w.terminals[1].tenant(&w.tenant)?;
    assert!(b
        .get::<pos_tenancy::catalog::Sale>(receipt.sale.id)?
        .is_some());
    assert_eq!(b.stock_on_hand(filter.id, "main")?, 8_000);
    // Every log entry of the checkout names its transaction, the last one closing it.
    let page = w.central.operations_after(&w.tenant, 0, 1000)?;
    let sale_ops: Vec<_> = page
        .operations
        .iter()
        .filter(|s| {
            s.operation.unit.map(|u| u.txn)
                == page
                    .operations
                    .iter()
                    .find(|s| s.operation.row_id == receipt.sale.id)
                    .and_then(|s| s.operation.unit.map(|u| u.txn))
        })
        .collect();
    assert!(sale_ops.len() >= 5, "{} operations", sale_ops.len());
    assert_eq!(
        sale_ops
            .iter()
            .filter(|s| s.operation.unit.is_some_and(|u| u.last))
            .count(),
        1
    );
    assert!(sale_ops
        .last()
        .is_some_and(|s| s.operation.unit.is_some_and(|u| u.last)));
    w.assert_converged()?;
    Ok(())
}

#[test]
fn a_gift_card_spent_on_two_offline_terminals_keeps_both_and_records_the_overdraw() -> R {
    let w = World::new(2)?;
    let admin = w.admin()?;
    let a = w.terminals[0].tenant(&w.tenant)?;
    let card = a.issue_gift_card(&admin, "GC-77", 5_000, None, None)?;
    w.sync_all()?;
    let b = w.terminals[1].tenant(&w.tenant)?;
    a.redeem_gift_card(&admin, card.id, 4_000)?;
    b.redeem_gift_card(&w.actor(1, &admin)?, card.id, 3_000)?;
    w.sync_all()?;
    for i in 0..2 {
        let t = w.terminals[i].tenant(&w.tenant)?;
        assert_eq!(t.gift_card_balance(card.id)?, -2_000, "terminal {i}");
        let kinds: Vec<String> = w.conflict_kinds(i)?.into_iter().map(|(_, k)| k).collect();
        assert_eq!(kinds, ["gift_card_overdrawn"], "terminal {i}");
    }
    w.assert_converged()?;
    Ok(())
}

#[test]
fn a_sale_refunded_on_two_terminals_is_recorded_as_refunded_past_what_it_sold() -> R {
    let w = World::new(2)?;
    let admin = w.admin()?;
    let a = w.terminals[0].tenant(&w.tenant)?;
    let p = product("BR-9", 1_000);
    a.insert(&admin, &p)?;
    a.receive_stock(&admin, p.id, "main", 5_000, None)?;
    let receipt = a.checkout(&admin, &cash_sale(&p, 1_000))?;
    let total = receipt.sale.total_minor;
    w.sync_all()?;
    let b = w.terminals[1].tenant(&w.tenant)?;
    let refund = pos_tenancy::pos::Refund::new(receipt.sale.id, "customer returned it").tender(
        pos_tenancy::pos::RefundTender::Cash {
            amount_minor: total,
        },
    );
    a.refund(&admin, &refund)?;
    b.refund(&w.actor(1, &admin)?, &refund)?;
    w.sync_all()?;
    for i in 0..2 {
        let kinds: Vec<String> = w.conflict_kinds(i)?.into_iter().map(|(_, k)| k).collect();
        assert_eq!(kinds, ["over_refunded"], "terminal {i}");
    }
    assert_eq!(w.conflict_kinds(0)?, w.conflict_kinds(1)?);
    w.assert_converged()?;
    Ok(())
}

#[test]
fn a_terminal_whose_clock_is_a_year_ahead_keeps_its_writes_waiting_and_cannot_win() -> R {
    let dir = tempfile::tempdir()?;
    let w = World::new(1)?;
    let admin = w.admin()?;
    let a = w.terminals[0].tenant(&w.tenant)?;
    let mut p = product("FAST-1", 1_000);
    a.insert(&admin, &p)?;
    w.sync_all()?;
    // A second terminal whose wall clock runs a year ahead.
    const YEAR_MS: u64 = 365 * 24 * 3600 * 1000;
    let ahead = Store::builder()
        .clock(|| u64::try_from(pos_tenancy::Timestamp::now().as_millis()).unwrap_or(0) + YEAR_MS)
        .open(dir.path().join("ahead.db"))?;
    ahead.add_tenant(&NewTenant::new(w.tenant.clone(), "Caps Automotive"))?;
    let sync_ahead = || Syncer::new(&ahead, &w.transport, &w.options).round(&w.tenant, "t");
    sync_ahead()?;
    let fast = ahead.tenant(&w.tenant)?;
    let mut q = fast.fetch::<Product>(p.id)?;
    q.price_minor = 1;
    fast.update(&fast.actor(admin.user_id())?, &q)?;
    let err = sync_ahead()
        .err()
        .ok_or("a year-ahead stamp was accepted")?;
    assert!(err.message.contains("clock_skew"), "{err}");
    let status = ahead.sync_status(&w.tenant)?;
    assert_eq!(status.pending, 1, "its write waits, it is not lost");
    assert_eq!(status.set_aside, 0, "and it is not set aside");
    // A later edit on a terminal with a good clock stands.
    p.price_minor = 1_250;
    a.update(&admin, &p)?;
    w.sync_all()?;
    let err = sync_ahead().err().ok_or("the stamp is still ahead")?;
    // Its pull went on all the same: it holds the other terminal's later writes.
    let status = ahead.sync_status(&w.tenant)?;
    assert_eq!(
        status.cursor, status.server_high,
        "pull is not blocked by the refused push"
    );
    assert_eq!(
        status.last_error.map(|e| (e.class, e.step)),
        Some(("refused".to_owned(), "push".to_owned())),
        "{err}"
    );
    // Its own newer-stamped value stays here until its clock is right and it syncs.
    assert_eq!(fast.fetch::<Product>(p.id)?.price_minor, 1);
    assert_eq!(a.fetch::<Product>(p.id)?.price_minor, 1_250);
    let logged = w.central.operations_after(&w.tenant, 0, 1000)?;
    assert!(logged
        .operations
        .iter()
        .all(|s| s.operation.device_id != ahead.node_id()));
    Ok(())
}

#[test]
fn settings_changed_centrally_reach_the_terminal() -> R {
    let w = World::new(1)?;
    w.admin()?;
    let mut settings = pos_tenancy::TenantSettings::new("Caps Performance");
    settings.receipt_footer = "See you at Caps!".into();
    w.central.set_settings(&w.tenant, &settings)?;
    let report = w.sync(0)?;
    assert!(report.settings_changed);
    let info = w.terminals[0].tenant_info(&w.tenant)?;
    assert_eq!(info.settings.brand_name, "Caps Performance");
    assert_eq!(info.settings.receipt_footer, "See you at Caps!");
    assert!(
        !w.sync(0)?.settings_changed,
        "unchanged settings are not written again"
    );
    Ok(())
}

#[test]
fn a_terminal_joining_a_tenant_it_does_not_hold_takes_the_servers_settings_and_log() -> R {
    let w = World::new(1)?;
    let admin = w.admin()?;
    let a = w.terminals[0].tenant(&w.tenant)?;
    let oil = product("OF-1", 1299);
    a.insert(&admin, &oil)?;
    w.sync(0)?;
    let dir = tempfile::tempdir()?;
    let fresh = Store::open(dir.path().join("new.db"))?;
    let report = Syncer::new(&fresh, &w.transport, &w.options).join(&w.tenant, "token")?;
    assert_eq!(report.cursor, report.server_high);
    let caps = fresh.tenant(&w.tenant)?;
    assert_eq!(caps.info()?.name, "Caps Automotive");
    assert_eq!(caps.fetch::<Product>(oil.id)?.sku, "OF-1");
    caps.actor(admin.user_id())?;
    // Joining again is a round like any other.
    let again = Syncer::new(&fresh, &w.transport, &w.options).join(&w.tenant, "token")?;
    assert_eq!((again.pushed, again.applied), (0, 0));
    // A tenant the server does not know is refused and nothing is added.
    let ghost = tid("ghost");
    assert!(Syncer::new(&fresh, &w.transport, &w.options)
        .join(&ghost, "token")
        .is_err());
    assert!(fresh.tenant(&ghost).is_err());
    Ok(())
}
