//! Quickstart: a node database with two tenants, each selling through its own handle, and
//! proof that neither sees the other's data.
//!
//! Run with `cargo run --example quickstart [-- path/to/node.db]`.

use std::error::Error as StdError;
use std::path::PathBuf;

use pos_tenancy::catalog::{InventoryTransaction, Product, Sale, SaleLine, SalePayment};
use pos_tenancy::{
    Actor, ListQuery, NewTenant, Plan, RowId, Store, TaxRate, Tenant, TenantAccess, TenantSettings,
    Timestamp,
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

    // Both stores stock a part with the same SKU: SKUs are unique per tenant, not globally.
    let caps_sale = sell(&mut caps, &caps_admin, "OF-100", "Oil filter", 1_299, 2)?;
    let bolt_sale = sell(&mut bolt, &bolt_admin, "OF-100", "Ölfilter", 1_150, 1)?;

    for (name, handle) in [("caps-automotive", &caps), ("bolt-bros", &bolt)] {
        let info = handle.info()?;
        let sales = handle.list::<Sale>(&ListQuery::new())?.rows;
        let report = handle.query(
            "SELECT s.number, count(l.id) AS lines, s.total_minor, s.currency
             FROM sales s JOIN sale_lines l ON l.sale_id = s.id GROUP BY s.id",
        )?;
        let outbox = handle.pending_operations(1000)?;
        println!(
            "\n{name} ({}, {}): {} sale(s), {} operation(s) waiting for the central server\n  report: {}",
            info.settings.brand_name,
            info.settings.currency,
            sales.len(),
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

    let report = store.verify()?;
    println!(
        "\nverify: {} tenant tables, {} rows, {} violations",
        report.tables_checked,
        report.rows_checked,
        report.violations.len()
    );
    Ok(())
}

/// Sells `qty` of a new product in one transaction: the product, the sale, its line, the
/// payment and the stock movement commit together (each with its audit row).
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
    let subtotal = price_minor * qty;
    let rate: i64 = settings
        .tax_rates
        .iter()
        .map(|t| i64::from(t.rate_ppm))
        .sum();
    // Tax rounds half up to the minor unit.
    let tax = (subtotal * rate + 500_000) / 1_000_000;
    let sale = Sale {
        id: RowId::new(),
        // Receipt numbers, like SKUs, are unique per tenant: both stores start at R-0001.
        number: "R-0001".into(),
        device_id: None,
        customer_id: None,
        user_id: actor.user_id(),
        status: "completed".into(),
        currency: settings.currency.clone(),
        subtotal_minor: subtotal,
        discount_minor: 0,
        tax_minor: tax,
        total_minor: subtotal + tax,
        sold_at: now,
        note: None,
    };
    let tx = tenant.transaction()?;
    tx.insert(actor, &product)?;
    tx.insert(actor, &sale)?;
    tx.insert(
        actor,
        &SaleLine {
            id: RowId::new(),
            sale_id: sale.id,
            line_no: 1,
            kind: "product".into(),
            product_id: Some(product.id),
            description: product.name.clone(),
            quantity_milli: qty * 1000,
            unit_price_minor: price_minor,
            discount_minor: 0,
            tax_minor: tax,
            total_minor: subtotal + tax,
        },
    )?;
    tx.insert(
        actor,
        &SalePayment {
            id: RowId::new(),
            sale_id: sale.id,
            method: "card".into(),
            amount_minor: subtotal + tax,
            currency: settings.currency.clone(),
            tendered_minor: None,
            change_minor: 0,
            reference: Some("AUTH-000123".into()),
            gift_card_id: None,
            paid_at: now,
        },
    )?;
    tx.insert(
        actor,
        &InventoryTransaction {
            id: RowId::new(),
            product_id: product.id,
            location: "main".into(),
            kind: "sale".into(),
            quantity_milli: -qty * 1000,
            unit_cost_minor: Some(product.cost_minor),
            reason: None,
            sale_id: Some(sale.id),
            user_id: Some(actor.user_id()),
            created_at: now,
        },
    )?;
    tx.commit()?;
    Ok(sale.id)
}
