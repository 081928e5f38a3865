//! Demo data: an auto-parts store and a day of trading, made through the same POS flows an
//! application uses.
//!
//! [`fill`] gives a tenant with no products a realistic catalog (categories, products with
//! SKUs and barcodes, fitment, price levels, customers with vehicles, loyalty and credit
//! accounts, gift cards, promotions, commission rules and opening stock) and then rings up
//! [`DemoOptions::sales`] attempts: mostly checkouts of one to five lines paid with cash, card,
//! gift cards, points and store credit, and among them gift cards sold, refunds, voids,
//! layaways opened, paid and completed, and work orders. A tenant that already has a catalog
//! gets no new products: the demo sells from what is there, so several terminals of one tenant
//! can simulate a day on shared data.
//!
//! Every choice comes from a ChaCha8 stream seeded with [`DemoOptions::seed`] and from the
//! tenant's data read in a fixed order, so the same seed on the same starting data does the
//! same things. Row ids, receipt numbers and timestamps are real ([`crate::Timestamp::now`]),
//! as in a shop: two runs differ in those only.
//!
//! The store reorders as a shop does: now and then between sales (about one attempt in ten,
//! never before the first) the supplier's delivery comes with every product the demo sells
//! that the reorder report ([`Pos::stock_below_reorder`]) lists, each received
//! ([`Pos::receive_stock`]'s flow) at the product's cost and counted in
//! [`DemoSummary::restock_receipts`]. Deliveries need a manager:
//! a run as a cashier receives none.
//!
//! A sale a business rule refuses is skipped and counted in [`DemoSummary::refused`], as a
//! cashier would void the attempt and go on. Some are on purpose: one product in ten of the
//! opening stock arrives short, so early sales may find its shelf empty until the first
//! delivery, a shelf can still sell out between deliveries, and now and then a cashier tries
//! to put a whole sale on store credit whatever the account's limit.
//!
//! ```
//! use pos_tenancy::testkit::demo::{fill, DemoOptions};
//! use pos_tenancy::{NewTenant, Store};
//! let store = Store::open_in_memory()?;
//! store.add_tenant(&NewTenant::new("caps".parse()?, "Caps"))?;
//! let caps = store.tenant(&"caps".parse()?)?;
//! let admin = caps.bootstrap_admin("owner", "Store Owner")?;
//! let summary = fill(&caps, &admin, &DemoOptions { sales: 5, seed: 7 }, &mut |_, _| {})?;
//! assert!(summary.catalog_created);
//! assert_eq!(summary.attempted, 5);
//! assert!(summary.checkouts > 0);
//! assert!(store.verify()?.is_ok());
//! # Ok::<(), pos_tenancy::Error>(())
//! ```
//!
//! The demo's parts: `shop` (the demo catalog, made once), `trading` (the sales) and
//! `summary` (what was done).
//!
//! [`Pos::stock_below_reorder`]: crate::pos::Pos::stock_below_reorder
//! [`Pos::receive_stock`]: crate::pos::Pos::receive_stock

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::tenant::settings::{Role, TaxRate};
use crate::tenant::{Actor, Tenant, TenantAccess};
use crate::Result;

mod shop;
mod summary;
mod trading;

use shop::make_catalog;
pub use summary::DemoSummary;
use trading::{receive_delivery, sell_one, World, DELIVERY_CHANCE};

/// What [`fill`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOptions {
    /// Sales to ring up. Default 100.
    pub sales: u32,
    /// Seed of the random stream; the same seed on the same data does the same things.
    /// Default 1.
    pub seed: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            sales: 100,
            seed: 1,
        }
    }
}

/// Fills `tenant` with demo data and rings up `options.sales` sales as `actor`, calling
/// `progress(done, total)` after each sale (and once with `done` 0 before the first).
///
/// A tenant with no products first gets the demo catalog, which needs a manager (an admin also
/// adds the demo's sales tax if the tenant has none). Business-rule refusals are counted, not
/// returned; any other error stops the demo and is returned, leaving what was done before it.
pub fn fill(
    tenant: &Tenant<'_>,
    actor: &Actor,
    options: &DemoOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<DemoSummary> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut summary = DemoSummary {
        seed: options.seed,
        ..DemoSummary::default()
    };
    let products: i64 = tenant.scope().query_row(
        "SELECT count(*) FROM products WHERE tenant_id = ?1",
        &[],
        |r| r.get(0),
    )?;
    if products == 0 {
        tenant.in_write(|s| make_catalog(s, actor, &mut rng, &mut summary))?;
        summary.catalog_created = true;
        let mut settings = tenant.settings()?;
        if settings.tax_rates.is_empty() && actor.role() >= Role::Admin {
            settings.tax_rates.push(TaxRate {
                name: "Sales tax".to_owned(),
                rate_ppm: 82_500,
            });
            tenant.update_settings(actor, &settings)?;
            summary.tax_rate_added = true;
        }
    }
    let mut world = World::load(tenant)?;
    let total = u64::from(options.sales);
    progress(0, total);
    for done in 1..=total {
        // The draw is made whoever runs the demo, but only a manager receives the delivery
        // (which draws more from the stream and restocks), so a cashier's run follows a
        // manager's only up to the first delivery (or void, also a manager's).
        if done > 1 && rng.random_bool(DELIVERY_CHANCE) && actor.role() >= Role::Manager {
            receive_delivery(tenant, actor, &world, &mut rng, &mut summary)?;
        }
        sell_one(tenant, actor, &mut world, &mut rng, &mut summary)?;
        progress(done, total);
    }
    Ok(summary)
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}
