//! Quickstart: a node database with two tenants, each selling through its own handle, proof
//! that neither sees the other's data, a day of demo trading with its payment report, then a
//! central server on loopback and a second terminal: both sell offline (the same last unit,
//! the same price edited on each), sync, agree on every row, and show what the merge recorded.
//!
//! Run with `cargo run --example quickstart [-- path/to/node.db]`.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pos_tenancy::catalog::{Product, Sale, SyncClass, SyncConflict, TABLES};
use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
use pos_tenancy::server::{app, issue_token, AppState};
use pos_tenancy::sync::{HttpTransport, SyncOptions, Syncer};
use pos_tenancy::testkit::demo;
use pos_tenancy::{
    Actor, CentralStore, ListQuery, NewTenant, Plan, RowId, SqliteCentral, Store, TaxRate, Tenant,
    TenantAccess, TenantId, TenantSettings, Timestamp,
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

    sync_two_terminals(&store, &path, &caps_admin, &caps.settings()?)?;
    Ok(())
}

/// A central server on 127.0.0.1 (pos-central's HTTP API over its embedded store) and a second
/// terminal of caps-automotive: the first pushes its day, the second joins and pulls it, then
/// both sell the same last spark plug and reprice it while offline, and sync.
fn sync_two_terminals(
    till1: &Store,
    path: &Path,
    admin: &Actor,
    settings: &TenantSettings,
) -> Result<(), Box<dyn StdError>> {
    let caps_id: TenantId = "caps-automotive".parse()?;
    let central_path = path.with_extension("central.db");
    let till2_path = path.with_extension("till2.db");
    for file in [&central_path, &till2_path] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
    }
    let central = SqliteCentral::open(&central_path)?;
    central.add_tenant(
        &NewTenant::new(caps_id.clone(), "Caps Automotive LLC")
            .plan(Plan::Pro)
            .settings(settings.clone()),
    )?;
    // A signing secret made for this run (two random UUIDs' worth of bytes).
    let secret: Vec<u8> = [RowId::new(), RowId::new()]
        .iter()
        .flat_map(|id| *id.as_uuid().as_bytes())
        .chain(*RowId::new().as_uuid().as_bytes())
        .collect();
    let state = AppState::new(Arc::new(central) as Arc<dyn CentralStore>, secret.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}", listener.local_addr()?);
    runtime.spawn(async move { axum::serve(listener, app(state)).await });
    println!(
        "\ncentral server: {url} (its log in {})",
        central_path.display()
    );

    // A new till: nothing but its token; joining adds the tenant from the server's settings.
    let till2 = Store::open(&till2_path)?;
    let expires = u64::try_from(Timestamp::now().as_millis() / 1000).unwrap_or(0) + 3600;
    let token = |till: &Store| issue_token(&secret, &caps_id, &till.node_id().to_string(), expires);
    let (token1, token2) = (token(till1)?, token(&till2)?);
    let http = HttpTransport::new(&url)?;
    let options = SyncOptions::default();
    let sync =
        |till: &Store, token: &str| Syncer::new(till, &http, &options).round(&caps_id, token);

    let first = sync(till1, &token1)?;
    println!("till 1 pushed {} operations of its day", first.pushed);
    let joined = Syncer::new(&till2, &http, &options).join(&caps_id, &token2)?;
    println!(
        "till 2 joined and applied {} operations (log head {})",
        joined.applied, joined.server_high
    );

    // One spark plug left; both tills go offline, each sells it and reprices the plug.
    let one = till1.tenant(&caps_id)?;
    let two = till2.tenant(&caps_id)?;
    let now = Timestamp::now();
    let mut plug = Product {
        id: RowId::new(),
        sku: "SP-7".into(),
        barcode: None,
        name: "Spark plug".into(),
        description: None,
        brand: Some("NGK".into()),
        category_id: None,
        kind: "stocked".into(),
        price_minor: 899,
        cost_minor: 400,
        currency: settings.currency.clone(),
        taxable: true,
        reorder_level_milli: 2_000,
        image: None,
        active: true,
        created_at: now,
        updated_at: now,
    };
    one.insert(admin, &plug)?;
    one.receive_stock(admin, plug.id, "main", 1_000, Some(400))?;
    sync(till1, &token1)?;
    sync(&till2, &token2)?;
    let admin2 = two.actor(admin.user_id())?;
    let card = |amount_minor: i64| Tender::Card {
        amount_minor,
        reference: "AUTH-7".into(),
    };
    let sale = |price: i64| {
        let tax: i64 = settings
            .tax_rates
            .iter()
            .map(|t| i64::from(t.rate_ppm))
            .sum();
        price + (price * tax + 500_000) / 1_000_000
    };
    one.checkout(
        admin,
        &Checkout::new()
            .line(LineItem::product(plug.id, 1_000))
            .tender(card(sale(899))),
    )?;
    two.checkout(
        &admin2,
        &Checkout::new()
            .line(LineItem::product(plug.id, 1_000))
            .tender(card(sale(899))),
    )?;
    plug.price_minor = 949;
    one.update(admin, &plug)?;
    std::thread::sleep(std::time::Duration::from_millis(2));
    plug.price_minor = 999;
    two.update(&admin2, &plug)?;
    println!("offline: each till sold the last SP-7; till 1 priced it 949, till 2 then 999");

    // Back online: sync until both have pushed everything and applied the whole log (a merge
    // records its conflicts, which travel too).
    for _ in 0..5 {
        sync(till1, &token1)?;
        sync(&till2, &token2)?;
        let (a, b) = (till1.sync_status(&caps_id)?, till2.sync_status(&caps_id)?);
        if a.pending + b.pending == 0 && a.cursor == b.cursor && a.cursor == a.server_high {
            break;
        }
    }
    for (name, till) in [("till 1", till1), ("till 2", &till2)] {
        let t = till.tenant(&caps_id)?;
        let status = till.sync_status(&caps_id)?;
        println!(
            "{name}: SP-7 stock {} at {} minor units; {} pending, cursor {} of {}",
            t.stock_on_hand(plug.id, "main")? / 1000,
            t.fetch::<Product>(plug.id)?.price_minor,
            status.pending,
            status.cursor,
            status.server_high
        );
    }
    let dump = |till: &Store| -> Result<Vec<String>, Box<dyn StdError>> {
        let t = till.tenant(&caps_id)?;
        let mut out = Vec::new();
        for table in TABLES
            .iter()
            .filter(|t| t.sync_class != SyncClass::LocalOnly)
        {
            let rows = t.query(&format!("SELECT * FROM {} ORDER BY id", table.name))?;
            out.push(serde_json::to_string(&rows.rows)?);
        }
        Ok(out)
    };
    let agree = dump(till1)? == dump(&till2)?;
    println!(
        "the two tills {} on every synced table",
        if agree { "agree" } else { "DISAGREE" }
    );
    println!("what the merge recorded for a person:");
    for c in one.list::<SyncConflict>(&ListQuery::new())?.rows {
        println!(
            "  {} on {} {}{}",
            c.kind,
            c.table_name,
            c.row_id,
            c.column_name.map(|c| format!(" ({c})")).unwrap_or_default()
        );
    }
    runtime.shutdown_background();
    if !agree {
        return Err("the terminals did not converge".into());
    }
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
