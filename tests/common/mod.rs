//! Shared fixtures for the integration tests: stores with tenants, and one row in every
//! application-writable table of a tenant, made through the public API.
#![allow(dead_code)]

use std::sync::Arc;

use pos_tenancy::catalog::*;
use pos_tenancy::pos::{Checkout, LineItem, Pos, Refund, RefundTender, Tender};
use pos_tenancy::protocol::{Operation, OperationKind};
use pos_tenancy::sync::{DirectTransport, SyncOptions, Syncer};
use pos_tenancy::{
    Actor, CentralStore, Hlc, NewTenant, Result, RowId, SqliteCentral, Store, Tenant, TenantAccess,
    TenantId, Timestamp,
};

pub fn tid(s: &str) -> TenantId {
    s.parse().expect("test tenant ids are valid")
}

/// An in-memory store with these tenants registered (plan pro, so a few users fit).
pub fn store_with(tenants: &[&str]) -> Store {
    built_store_with(Store::builder(), tenants)
}

/// An in-memory store opened with these settings, with these tenants registered as
/// [`store_with`] registers them.
pub fn built_store_with(builder: pos_tenancy::StoreBuilder, tenants: &[&str]) -> Store {
    let store = builder.open_in_memory().expect("in-memory store");
    for t in tenants {
        store
            .add_tenant(&NewTenant::new(tid(t), &format!("{t} store")).plan(pos_tenancy::Plan::Pro))
            .expect("tenant added");
    }
    store
}

/// The actor of the tenant's first user (the admin made by `bootstrap_admin`).
pub fn first_admin(t: &Tenant<'_>) -> Result<Actor> {
    let users = t.list::<User>(&pos_tenancy::ListQuery::new().limit(1))?;
    let user = users
        .rows
        .first()
        .ok_or(pos_tenancy::Error::UnknownTable("no users".into()))?;
    t.actor(user.id)
}

/// The (check, table) pairs of a verify report, for asserting on.
pub fn violations(report: &pos_tenancy::VerifyReport) -> Vec<(pos_tenancy::Check, Option<String>)> {
    report
        .violations
        .iter()
        .map(|v| (v.check, v.table.clone()))
        .collect()
}

/// Asserts that every expected (check, table) violation was reported.
pub fn assert_reported(
    report: &pos_tenancy::VerifyReport,
    expected: &[(pos_tenancy::Check, &str)],
) {
    let found = violations(report);
    for (check, table) in expected {
        assert!(
            found.contains(&(*check, Some((*table).to_owned()))),
            "expected {check:?} on {table} in {found:?}"
        );
    }
}

pub fn now() -> Timestamp {
    Timestamp::now()
}

pub fn product(sku: &str, price_minor: i64) -> Product {
    let now = now();
    Product {
        id: RowId::new(),
        sku: sku.into(),
        barcode: None,
        name: format!("Part {sku}"),
        description: None,
        brand: Some("Bosch".into()),
        category_id: None,
        kind: "stocked".into(),
        price_minor,
        cost_minor: price_minor / 2,
        currency: "USD".into(),
        taxable: true,
        reorder_level_milli: 2000,
        image: None,
        active: true,
        created_at: now,
        updated_at: now,
    }
}

pub fn customer(code: &str, email: Option<&str>) -> Customer {
    let now = now();
    Customer {
        id: RowId::new(),
        code: code.into(),
        first_name: "Ana".into(),
        last_name: "Diaz".into(),
        company: None,
        email: email.map(str::to_owned),
        phone: Some("+1 555 0100".into()),
        price_level_id: None,
        tax_exempt: false,
        notes: None,
        created_at: now,
        updated_at: now,
    }
}

/// Ids of the rows [`populate`] made.
#[derive(Debug, Clone)]
pub struct Graph {
    pub admin: Actor,
    pub user: RowId,
    pub device: RowId,
    pub category: RowId,
    pub product: RowId,
    pub customer: RowId,
    pub vehicle: RowId,
    pub sale: RowId,
    pub gift_card: RowId,
}

/// Writes a row as another terminal's operation brings it: pushed to a central store by a
/// device of its own, then pulled into `store` by the sync engine. The way a row that the
/// flows never write (another system's data) reaches a node, past the handle's access rules,
/// since generic CRUD refuses the tables only flows and sync write.
pub fn arrives_by_sync<R: Record>(store: &Store, tenant: &TenantId, row: &R) {
    let mut columns = match serde_json::to_value(row).expect("a record is JSON") {
        serde_json::Value::Object(map) => map,
        other => panic!("a record serializes as an object, not {other}"),
    };
    columns.remove("id");
    let device = RowId::new();
    let millis = u64::try_from(Timestamp::now().as_millis()).expect("after 1970");
    let op = Operation {
        id: RowId::new(),
        tenant_id: tenant.clone(),
        device_id: device,
        hlc: Hlc::new(millis, 0, device).expect("a stamp of now"),
        actor_user_id: None,
        table: R::TABLE.name.to_owned(),
        row_id: row.id(),
        kind: if R::TABLE.sync_class == SyncClass::Ledger {
            OperationKind::LedgerAppend
        } else {
            OperationKind::Insert
        },
        columns,
        unit: None,
        base: None,
    };
    let central = Arc::new(SqliteCentral::open_in_memory().expect("central store"));
    central
        .add_tenant(&NewTenant::new(tenant.clone(), "Elsewhere"))
        .expect("tenant");
    central
        .append(tenant, &[op])
        .expect("the operation is taken");
    let transport = DirectTransport::new(central);
    let options = SyncOptions::default();
    let pulled = Syncer::new(store, &transport, &options)
        .pull(tenant, "token")
        .expect("pulled");
    assert_eq!(pulled.applied, 1, "{pulled:?}");
}

/// Writes one row into every table that applications write, through the typed API, so that
/// every catalog entry's CRUD runs at least once; the money rows that only flows write (sale
/// and layaway payments, loyalty points, sale reversals) are written by a checkout, its refund
/// and a layaway payment. Returns the ids made.
pub fn populate(t: &Tenant<'_>, admin: &Actor, tag: &str) -> Result<Graph> {
    let now = now();
    let user = User {
        id: RowId::new(),
        username: format!("cashier-{tag}"),
        display_name: "Sam Cashier".into(),
        email: Some(format!("sam-{tag}@example.com")),
        role: pos_tenancy::Role::Cashier,
        pin_hash: None,
        active: true,
        created_at: now,
        updated_at: now,
    };
    t.insert(admin, &user)?;
    let device = Device {
        id: RowId::new(),
        name: format!("Till {tag}"),
        kind: "terminal".into(),
        location: Some("Front counter".into()),
        registered_at: now,
        last_seen_at: None,
        active: true,
    };
    t.insert(admin, &device)?;
    t.insert(
        admin,
        &Session {
            id: RowId::new(),
            user_id: user.id,
            device_id: Some(device.id),
            started_at: now,
            expires_at: now,
            ended_at: None,
        },
    )?;
    let category = ProductCategory {
        id: RowId::new(),
        name: format!("Filters {tag}"),
        parent_id: None,
        created_at: now,
    };
    t.insert(admin, &category)?;
    let mut p = product(&format!("OF-{tag}"), 1299);
    p.category_id = Some(category.id);
    p.barcode = Some(format!("0001{tag}"));
    p.image = Some(vec![0, 159, 146, 150, 255]);
    t.insert(admin, &p)?;
    t.insert(
        admin,
        &Fitment {
            id: RowId::new(),
            product_id: p.id,
            make: "Toyota".into(),
            model: "Corolla".into(),
            year_from: 2014,
            year_to: 2019,
            engine: Some("1.8L 2ZR-FE".into()),
            notes: None,
        },
    )?;
    t.insert(
        admin,
        &InventoryItem {
            id: RowId::new(),
            product_id: p.id,
            location: "main".into(),
            bin: Some("A-3".into()),
            reorder_level_milli: 2000,
            reorder_qty_milli: 10000,
            updated_at: now,
        },
    )?;
    let level = PriceLevel {
        id: RowId::new(),
        name: format!("Trade {tag}"),
        discount_ppm: 100_000,
        created_at: now,
    };
    t.insert(admin, &level)?;
    let mut c = customer(&format!("C-{tag}"), Some(&format!("ana-{tag}@example.com")));
    c.price_level_id = Some(level.id);
    t.insert(admin, &c)?;
    let vehicle = CustomerVehicle {
        id: RowId::new(),
        customer_id: c.id,
        vin: Some("1HGCM82633A004352".into()),
        plate: Some("ABC-123".into()),
        make: "Toyota".into(),
        model: "Corolla".into(),
        year: 2016,
        engine: None,
        mileage: Some(88_000),
        created_at: now,
    };
    t.insert(admin, &vehicle)?;
    let sale = Sale {
        id: RowId::new(),
        number: format!("R-{tag}"),
        device_id: Some(device.id),
        customer_id: Some(c.id),
        user_id: user.id,
        status: "completed".into(),
        currency: "USD".into(),
        subtotal_minor: 1299,
        discount_minor: 0,
        tax_minor: 104,
        total_minor: 1403,
        sold_at: now,
        note: None,
        receipt_brand: None,
    };
    t.insert(admin, &sale)?;
    let line_id = RowId::new();
    t.insert(
        admin,
        &SaleLine {
            id: line_id,
            sale_id: sale.id,
            line_no: 1,
            kind: "product".into(),
            product_id: Some(p.id),
            description: p.name.clone(),
            quantity_milli: 1000,
            unit_price_minor: 1299,
            discount_minor: 0,
            tax_minor: 104,
            total_minor: 1403,
        },
    )?;
    let card = GiftCard {
        id: RowId::new(),
        code: format!("GC-{tag}"),
        currency: "USD".into(),
        customer_id: Some(c.id),
        issued_at: now,
        expires_at: None,
        active: true,
    };
    t.insert(admin, &card)?;
    t.insert(
        admin,
        &GiftCardTransaction {
            id: RowId::new(),
            gift_card_id: card.id,
            kind: "issue".into(),
            amount_minor: 5000,
            sale_id: None,
            user_id: Some(user.id),
            created_at: now,
        },
    )?;
    let layaway_sale = Sale {
        id: RowId::new(),
        number: format!("L-{tag}"),
        status: "layaway".into(),
        ..sale.clone()
    };
    t.insert(admin, &layaway_sale)?;
    let layaway = Layaway {
        id: RowId::new(),
        number: format!("LAY-{tag}"),
        customer_id: c.id,
        sale_id: layaway_sale.id,
        status: "open".into(),
        total_minor: 1403,
        deposit_minor: 300,
        currency: "USD".into(),
        opened_at: now,
        due_at: None,
        closed_at: None,
    };
    t.insert(admin, &layaway)?;
    t.pay_layaway(
        admin,
        layaway.id,
        &Tender::Cash {
            tendered_minor: 300,
        },
    )?;
    let wo = WorkOrder {
        id: RowId::new(),
        number: format!("WO-{tag}"),
        customer_id: c.id,
        vehicle_id: Some(vehicle.id),
        technician_user_id: Some(user.id),
        status: "open".into(),
        description: "Oil change".into(),
        odometer: Some(88_000),
        sale_id: None,
        opened_at: now,
        completed_at: None,
    };
    t.insert(admin, &wo)?;
    t.insert(
        admin,
        &WorkOrderLine {
            id: RowId::new(),
            work_order_id: wo.id,
            kind: "labour".into(),
            product_id: None,
            description: "Labour".into(),
            quantity_milli: 500,
            unit_price_minor: 9000,
            created_at: now,
        },
    )?;
    let rule = CommissionRule {
        id: RowId::new(),
        name: format!("Parts {tag}"),
        user_id: None,
        category_id: Some(category.id),
        rate_ppm: 20_000,
        active: true,
        created_at: now,
    };
    t.insert(admin, &rule)?;
    t.insert(
        admin,
        &Commission {
            id: RowId::new(),
            user_id: user.id,
            sale_id: sale.id,
            rule_id: Some(rule.id),
            amount_minor: 26,
            currency: "USD".into(),
            created_at: now,
        },
    )?;
    let loyalty = LoyaltyAccount {
        id: RowId::new(),
        customer_id: c.id,
        number: format!("LOY-{tag}"),
        created_at: now,
    };
    t.insert(admin, &loyalty)?;
    let credit = CreditAccount {
        id: RowId::new(),
        customer_id: c.id,
        credit_limit_minor: 50_000,
        currency: "USD".into(),
        active: true,
        created_at: now,
    };
    t.insert(admin, &credit)?;
    t.insert(
        admin,
        &CreditTransaction {
            id: RowId::new(),
            account_id: credit.id,
            kind: "charge".into(),
            amount_minor: 1403,
            sale_id: Some(sale.id),
            user_id: Some(user.id),
            created_at: now,
        },
    )?;
    let promo = Promotion {
        id: RowId::new(),
        code: Some(format!("SAVE10-{tag}")),
        name: "Ten percent off".into(),
        kind: "percent".into(),
        value: 100_000,
        product_id: Some(p.id),
        category_id: None,
        starts_at: now,
        ends_at: None,
        usage_limit: Some(100),
        active: true,
    };
    t.insert(admin, &promo)?;
    t.insert(
        admin,
        &PromotionUse {
            id: RowId::new(),
            promotion_id: promo.id,
            sale_id: sale.id,
            customer_id: Some(c.id),
            discount_minor: 130,
            used_at: now,
        },
    )?;
    t.insert(
        admin,
        &InventoryTransaction {
            id: RowId::new(),
            product_id: p.id,
            location: "main".into(),
            kind: "sale".into(),
            quantity_milli: -1000,
            unit_cost_minor: Some(650),
            reason: None,
            sale_id: Some(sale.id),
            user_id: Some(user.id),
            created_at: now,
        },
    )?;
    let dest = BackupDestination {
        id: RowId::new(),
        name: format!("USB {tag}"),
        kind: "local_dir".into(),
        target: "/media/usb/backups".into(),
        active: true,
        created_at: now,
    };
    t.insert(admin, &dest)?;
    t.insert(
        admin,
        &BackupSettings {
            id: RowId::new(),
            schedule: "0 3 * * *".into(),
            retention_days: 30,
            encrypt: true,
            destination_id: Some(dest.id),
            updated_at: now,
        },
    )?;
    let backup = Backup {
        id: RowId::new(),
        kind: "full".into(),
        destination_id: Some(dest.id),
        path: "/media/usb/backups/node.db".into(),
        sha256: Some("ab".repeat(32)),
        size_bytes: Some(4096),
        status: "ok".into(),
        created_at: now,
        finished_at: Some(now),
    };
    t.insert(admin, &backup)?;
    t.insert(
        admin,
        &RestoreJob {
            id: RowId::new(),
            backup_id: backup.id,
            status: "pending".into(),
            requested_by: Some(admin.user_id()),
            started_at: now,
            finished_at: None,
            error: None,
        },
    )?;
    // A sale through the checkout (its payment, stock row and loyalty points), and its refund:
    // a sale of its own with the line reversed, the link between and the money given back.
    t.receive_stock(admin, p.id, "main", 5_000, Some(650))?;
    let sold = t.checkout(
        admin,
        &Checkout::new()
            .customer(c.id)
            .line(LineItem::product(p.id, 1000))
            .tender(Tender::Cash {
                tendered_minor: 2000,
            }),
    )?;
    t.refund(
        admin,
        &Refund::new(sold.sale.id, "returned").tender(RefundTender::Cash {
            amount_minor: sold.sale.total_minor,
        }),
    )?;
    Ok(Graph {
        admin: admin.clone(),
        user: user.id,
        device: device.id,
        category: category.id,
        product: p.id,
        customer: c.id,
        vehicle: vehicle.id,
        sale: sale.id,
        gift_card: card.id,
    })
}

/// Checks the sync tests share (dumps, foreign rows, conflicts, the server's log).
pub mod sync;

/// The lines a child process prints after `mark` (the test harness prints its own words before
/// the first), unmarked, read on a thread until the child closes the stream: for crash tests
/// that kill a child at a line it printed.
pub fn marked_lines(
    stream: impl std::io::Read + Send + 'static,
    mark: &'static str,
) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let Some((_, said)) = line.split_once(mark) else {
                continue;
            };
            if tx.send(said.to_owned()).is_err() {
                break;
            }
        }
    });
    rx
}
