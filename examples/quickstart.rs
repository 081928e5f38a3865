//! Quickstart: a node database with two tenants, each selling through its own handle, proof
//! that neither sees the other's data, and a day of demo trading with its payment report.
//!
//! Run with `cargo run --example quickstart [-- path/to/node.db]`.

use std::error::Error as StdError;
use std::path::PathBuf;

use pos_tenancy::catalog::{Product, Sale};
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::testkit::demo;
use pos_tenancy::{
    Actor, NewTenant, Plan, RowId, Store, TaxRate, Tenant, TenantAccess, TenantSettings, Timestamp,
};

fn main() -> Result<(), Box<dyn StdError>> {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("pos-tenancy-quickstart.db"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let store = Store::open(&path)?;
    println!(
        "node database: {} (schema version {})",
        path.display(),
        store.schema_version()?
    );

    let mut caps_settings = TenantSettings::new("Caps Automotive");
    caps_settings.tax_rates.push(TaxRate {
        name: "State sales tax".into(),
        rate_ppm: 80_000,
    });
    caps_settings.receipt_footer = "Thank you for shopping at Caps!".into();
    let mut bolt_settings = TenantSettings::new("Bolt Bros Garage");
    bolt_settings.currency = "EUR".into();
    bolt_settings.locale = "de-DE".into();
    bolt_settings.tax_rates.push(TaxRate {
        name: "MwSt".into(),
        rate_ppm: 190_000,
    });

    store.add_tenant(
        &NewTenant::new("caps-automotive".parse()?, "Caps Automotive LLC")
            .plan(Plan::Pro)
            .settings(caps_settings),
    )?;
    store.add_tenant(
        &NewTenant::new("bolt-bros".parse()?, "Bolt Bros GmbH").settings(bolt_settings),
    )?;

    let mut caps = store.tenant(&"caps-automotive".parse()?)?;
    let mut bolt = store.tenant(&"bolt-bros".parse()?)?;
    let caps_admin = caps.bootstrap_admin("maria", "Maria (owner)")?;
    let bolt_admin = bolt.bootstrap_admin("jonas", "Jonas (owner)")?;

    // A day's trading at Caps: the demo store's catalog and customers, then sales, refunds,
    // gift cards, layaways and work orders through the same flows an application uses.
    let day = demo::fill(
        &caps,
        &caps_admin,
        &demo::DemoOptions {
            sales: 150,
            seed: 7,
        },
        &mut |_, _| {},
    )?;
    // Both stores stock a part with the same SKU: SKUs are unique per tenant, not globally.
    let caps_sale = sell(&mut caps, &caps_admin, "OF-100", "Oil filter", 1_299, 2)?;
    let bolt_sale = sell(&mut bolt, &bolt_admin, "OF-100", "Ölfilter", 1_150, 1)?;

    for (name, handle) in [("caps-automotive", &caps), ("bolt-bros", &bolt)] {
        let info = handle.info()?;
        let report = handle.query(
            "SELECT count(*) AS sales, sum(total_minor) AS total_minor, currency FROM sales
             GROUP BY currency",
        )?;
        let outbox = handle.pending_operations(100_000)?;
        println!(
            "\n{name} ({}, {}): {} operation(s) waiting for the central server\n  report: {}",
            info.settings.brand_name,
            info.settings.currency,
            outbox.len(),
            serde_json::to_string(&report.to_objects())?
        );
    }

    // Neither tenant sees the other's sale, by id or by SQL, even naming the other tenant.
    assert!(caps.get::<Sale>(bolt_sale)?.is_none());
    assert!(bolt.get::<Sale>(caps_sale)?.is_none());
    let peek = caps.query("SELECT number FROM sales WHERE tenant_id = 'bolt-bros'")?;
    assert!(peek.rows.is_empty());
    let refused = caps.query("SELECT number FROM main.sales");
    println!("\ncaps-automotive looking up bolt-bros's sale by id: not found");
    println!(
        "caps-automotive reading main.sales directly: {}",
        refused
            .map(|_| "allowed?!".to_string())
            .unwrap_or_else(|e| e.to_string())
    );

    println!(
        "\ncaps-automotive after a demo day: {} checkouts, {} refunds, {} voids, {} layaways, {} work orders",
        day.checkouts, day.refunds, day.voids, day.layaways_opened, day.work_orders
    );
    for total in caps.sales_by_payment(Timestamp::now().as_datetime().date_naive())? {
        println!(
            "  {:<12} {:>4} payments {:>12} minor units",
            total.method, total.payments, total.amount_minor
        );
    }
    println!(
        "  {} products below their reorder level",
        caps.stock_below_reorder("main")?.len()
    );

    let report = store.verify()?;
    println!(
        "\nverify: {} tenant tables, {} rows, {} violations",
        report.tables_checked,
        report.rows_checked,
        report.violations.len()
    );
    Ok(())
}

/// Stocks a new product and sells `qty` of it through the checkout flow: the sale, its line,
/// the card payment and the stock row commit together, each with its audit row and its
/// pending operation, and the tax comes from the tenant's settings.
fn sell(
    tenant: &mut Tenant<'_>,
    actor: &Actor,
    sku: &str,
    name: &str,
    price_minor: i64,
    qty: i64,
) -> Result<RowId, Box<dyn StdError>> {
    let settings = tenant.settings()?;
    let now = Timestamp::now();
    let product = Product {
        id: RowId::new(),
        sku: sku.into(),
        barcode: None,
        name: name.into(),
        description: None,
        brand: Some("Mann".into()),
        category_id: None,
        kind: "stocked".into(),
        price_minor,
        cost_minor: price_minor / 2,
        currency: settings.currency.clone(),
        taxable: true,
        reorder_level_milli: 3_000,
        image: None,
        active: true,
        created_at: now,
        updated_at: now,
    };
    tenant.insert(actor, &product)?;
    tenant.receive_stock(actor, product.id, "main", 10_000, Some(product.cost_minor))?;
    let rate: i64 = settings
        .tax_rates
        .iter()
        .map(|t| i64::from(t.rate_ppm))
        .sum();
    // The flow rounds tax half away from zero, per line.
    let subtotal = price_minor * qty;
    let total = subtotal + (subtotal * rate + 500_000) / 1_000_000;
    let receipt = tenant.checkout(
        actor,
        &Checkout::new()
            .line(LineItem::product(product.id, qty * 1000))
            .tender(Tender::Card {
                amount_minor: total,
                reference: "AUTH-000123".into(),
            }),
    )?;
    Ok(receipt.sale.id)
}
