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

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::catalog::{
    CommissionRule, CreditAccount, CreditTransaction, Customer, CustomerVehicle, Fitment,
    GiftCardTransaction, InventoryItem, LoyaltyTransaction, PriceLevel, Product, ProductCategory,
    Promotion, SalePayment,
};
use crate::ids::{RowId, Timestamp};
use crate::pos::checkout::{self, Context, LineItem, Tender, DEFAULT_LOCATION};
use crate::pos::money::{apply_ppm, minor_per_major};
use crate::pos::{accounts, layaway, reports, stock, work_order, FlowError, Pos};
use crate::pos::{GiftCardSale, LayawayOrder, Refund, RefundTender, WorkOrderRequest};
use crate::tenant::settings::{Role, TaxRate};
use crate::tenant::{Actor, Scope, Tenant, TenantAccess};
use crate::{Error, Result};

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

/// What [`fill`] did: the catalog it made (all zero when the tenant had one) and the sales.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DemoSummary {
    /// The seed used.
    pub seed: u64,
    /// Whether the tenant had no products and got the demo catalog.
    pub catalog_created: bool,
    /// Whether the tenant had no tax rate and got the demo's sales tax (8.25 %).
    pub tax_rate_added: bool,
    /// Product categories made.
    pub categories: u64,
    /// Products made.
    pub products: u64,
    /// Fitment rows made (which vehicles a part fits).
    pub fitments: u64,
    /// Inventory rows made (bins and reorder levels per location).
    pub inventory_rows: u64,
    /// Price levels made.
    pub price_levels: u64,
    /// Customers made.
    pub customers: u64,
    /// Customer vehicles made.
    pub vehicles: u64,
    /// Loyalty accounts opened.
    pub loyalty_accounts: u64,
    /// Store credit accounts opened.
    pub credit_accounts: u64,
    /// Promotions made.
    pub promotions: u64,
    /// Commission rules made.
    pub commission_rules: u64,
    /// Deliveries received (one per stocked product).
    pub stock_receipts: u64,
    /// Gift cards issued with the catalog (sold cards are in `gift_cards_sold`).
    pub gift_cards_issued: u64,
    /// Attempts made: every kind below (a layaway payment that completes the layaway counts
    /// once) plus the refused.
    pub attempted: u64,
    /// Checkouts completed.
    pub checkouts: u64,
    /// Gift cards sold (the sale of the card and its issue, in one transaction; no points or
    /// commission).
    pub gift_cards_sold: u64,
    /// Refunds made (one whole line of a sale of this run each).
    pub refunds: u64,
    /// Sales of this run voided.
    pub voids: u64,
    /// Layaways opened.
    pub layaways_opened: u64,
    /// Payments into layaways, deposits included.
    pub layaway_payments: u64,
    /// Layaways paid in full and completed.
    pub layaways_completed: u64,
    /// Work orders opened, worked and completed into a sale.
    pub work_orders: u64,
    /// Attempts a business rule refused, skipped.
    pub refused: u64,
    /// The refused attempts by the rule that refused them (`insufficient_stock`, ...).
    pub refusals: BTreeMap<String, u64>,
    /// Products received while trading (not attempts): one per product a delivery restocked
    /// because its stock had fallen below its reorder level. The opening deliveries are in
    /// `stock_receipts`.
    pub restock_receipts: u64,
    /// Sum of the totals of the sales completed (checkouts, gift cards, work orders, completed
    /// layaways) less refunds and voids, in minor units.
    pub revenue_minor: i64,
    /// Sum of payments by method, in minor units: sale payments (cash net of change, refunds
    /// negative) and layaway payments.
    pub payments_minor: BTreeMap<String, i64>,
    /// Loyalty points earned by the sales.
    pub points_earned: i64,
    /// Promotions applied (one per promotion per sale).
    pub promotions_used: u64,
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

// ------------------------------------------------------------------------------ the catalog

/// A kind of part, sold under several brands.
struct Part {
    name: &'static str,
    /// Retail price in cents of a US dollar (scaled to the tenant's currency).
    price: i64,
    /// Sold by the litre: quantities in half litres, stock in litres.
    by_litre: bool,
    /// Fits particular vehicles (gets fitment rows).
    fitted: bool,
}

const fn part(name: &'static str, price: i64, by_litre: bool, fitted: bool) -> Part {
    Part {
        name,
        price,
        by_litre,
        fitted,
    }
}

struct Category {
    name: &'static str,
    /// Index of the parent in [`CATEGORIES`].
    parent: Option<usize>,
    sku_prefix: &'static str,
    parts: &'static [Part],
}

const BRAKES: usize = 1;
const WIPERS: usize = 12;
const BATTERIES: usize = 10;
const OILS: usize = 11;

const CATEGORIES: &[Category] = &[
    Category {
        name: "Engine",
        parent: None,
        sku_prefix: "ENG",
        parts: &[
            part("Water pump", 6_499, false, true),
            part("Thermostat", 2_199, false, true),
            part("Head gasket set", 8_999, false, true),
            part("Timing belt kit", 12_999, false, true),
        ],
    },
    Category {
        name: "Brakes",
        parent: None,
        sku_prefix: "BRK",
        parts: &[
            part("Brake pad set front", 4_999, false, true),
            part("Brake pad set rear", 3_999, false, true),
            part("Brake disc vented", 5_999, false, true),
            part("Brake caliper", 8_999, false, true),
            part("Brake fluid DOT 4 (per litre)", 1_299, true, false),
        ],
    },
    Category {
        name: "Suspension & Steering",
        parent: None,
        sku_prefix: "SUS",
        parts: &[
            part("Control arm", 7_499, false, true),
            part("Tie rod end", 2_999, false, true),
            part("Shock absorber front", 8_499, false, true),
        ],
    },
    Category {
        name: "Electrical",
        parent: None,
        sku_prefix: "ELE",
        parts: &[
            part("Alternator", 18_999, false, true),
            part("Starter motor", 15_999, false, true),
            part("Headlight bulb H7", 1_299, false, false),
            part("Tail light bulb P21W", 499, false, false),
        ],
    },
    Category {
        name: "Filters",
        parent: None,
        sku_prefix: "FIL",
        parts: &[
            part("Oil filter", 899, false, true),
            part("Air filter", 1_899, false, true),
            part("Cabin air filter", 1_599, false, true),
            part("Fuel filter", 2_499, false, true),
        ],
    },
    Category {
        name: "Ignition",
        parent: Some(0),
        sku_prefix: "IGN",
        parts: &[
            part("Spark plug iridium", 1_099, false, true),
            part("Ignition coil", 4_599, false, true),
        ],
    },
    Category {
        name: "Belts & Hoses",
        parent: Some(0),
        sku_prefix: "BLT",
        parts: &[
            part("Serpentine belt", 2_899, false, true),
            part("Radiator hose", 2_199, false, true),
        ],
    },
    Category {
        name: "Accessories",
        parent: None,
        sku_prefix: "ACC",
        parts: &[
            part("Floor mat set", 3_999, false, false),
            part("Warning triangle", 1_499, false, false),
            part("Phone holder", 1_999, false, false),
        ],
    },
    Category {
        name: "Service & Labour",
        parent: None,
        sku_prefix: "SVC",
        parts: &[],
    },
    Category {
        name: "Fluids & Chemicals",
        parent: None,
        sku_prefix: "FLU",
        parts: &[
            part("Coolant G12 (per litre)", 699, true, false),
            part("Windscreen washer fluid (per litre)", 299, true, false),
        ],
    },
    Category {
        name: "Batteries",
        parent: Some(3),
        sku_prefix: "BAT",
        parts: &[
            part("Battery 12V 60Ah", 12_999, false, true),
            part("Battery 12V 74Ah AGM", 21_999, false, true),
        ],
    },
    Category {
        name: "Motor Oil",
        parent: Some(9),
        sku_prefix: "OIL",
        parts: &[
            part("Engine oil 5W-30 (per litre)", 899, true, false),
            part("Engine oil 10W-40 (per litre)", 749, true, false),
            part("Gear oil 75W-90 (per litre)", 1_399, true, false),
        ],
    },
    Category {
        name: "Wiper Blades",
        parent: Some(7),
        sku_prefix: "WIP",
        parts: &[
            part("Wiper blade 22\"", 1_899, false, true),
            part("Wiper blade set", 3_299, false, true),
        ],
    },
];

/// Services and charges sold without stock: (category, SKU, name, price, kind, taxable).
const SERVICES: &[(usize, &str, &str, i64, &str, bool)] = &[
    (8, "SVC-LAB", "Labour (per hour)", 9_500, "service", false),
    (8, "SVC-OIL", "Oil change service", 4_999, "service", true),
    (8, "SVC-ALN", "Wheel alignment", 8_900, "service", true),
    (8, "SVC-DIA", "Diagnostic scan", 6_500, "service", true),
    (
        10,
        "BAT-CORE",
        "Battery core deposit",
        2_200,
        "non_stocked",
        false,
    ),
];

const DAY_MS: i64 = 86_400_000;

/// Products in the demo catalog, services included.
const PRODUCTS: usize = 200;
const CUSTOMERS: usize = 100;
const GIFT_CARDS: usize = 15;

const BRANDS: &[&str] = &[
    "Bosch",
    "Mann-Filter",
    "Brembo",
    "Febi",
    "Valeo",
    "NGK",
    "Castrol",
    "Gates",
    "Monroe",
    "Osram",
    "Denso",
    "ACDelco",
    "Motorcraft",
    "Mahle",
];

const FIRST_NAMES: &[(&str, &str)] = &[
    ("Ana", "ana"),
    ("José", "jose"),
    ("Jürgen", "juergen"),
    ("Zoë", "zoe"),
    ("François", "francois"),
    ("Emma", "emma"),
    ("Liam", "liam"),
    ("Olivia", "olivia"),
    ("Noah", "noah"),
    ("Aarav", "aarav"),
    ("Fatima", "fatima"),
    ("Mia", "mia"),
    ("Lucas", "lucas"),
    ("Grace", "grace"),
    ("Mateo", "mateo"),
    ("Hana", "hana"),
];

const LAST_NAMES: &[(&str, &str)] = &[
    ("Díaz", "diaz"),
    ("Müller", "mueller"),
    ("García", "garcia"),
    ("Smith", "smith"),
    ("Johnson", "johnson"),
    ("Brown", "brown"),
    ("O'Connor", "oconnor"),
    ("Kowalski", "kowalski"),
    ("Nguyen", "nguyen"),
    ("Rossi", "rossi"),
    ("Dubois", "dubois"),
    ("Wilson", "wilson"),
    ("Fischer", "fischer"),
    ("Martínez", "martinez"),
    ("Yamada", "yamada"),
    ("Okafor", "okafor"),
];

const COMPANIES: &[&str] = &[
    "Joe's Garage",
    "Fleet Solutions Ltd",
    "City Cabs",
    "Green Valley Farms",
    "Rapid Couriers",
    "Northside Motors",
];

/// Make, world manufacturer identifier (the VIN's first three characters) and models.
const MAKES: &[(&str, &str, &[&str])] = &[
    ("Toyota", "JT2", &["Corolla", "Hilux", "RAV4"]),
    ("Volkswagen", "WVW", &["Golf", "Passat", "Polo"]),
    ("Ford", "1FT", &["F-150", "Focus", "Transit"]),
    ("Honda", "JHM", &["Civic", "Accord"]),
    ("Chevrolet", "1GC", &["Silverado", "Malibu"]),
    ("Nissan", "JN1", &["Navara", "Micra"]),
    ("BMW", "WBA", &["3 Series", "X5"]),
];

const ENGINES: &[&str] = &[
    "1.6 16V", "2.0 TDI", "1.5 VTEC", "5.0 V8", "2.4 D-4D", "3.0 i6",
];

/// VIN characters (no I, O or Q).
const VIN_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPRSTUVWXYZ";

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// An EAN-13 with the in-store prefix 200 and its check digit.
fn barcode(n: usize) -> String {
    let body = format!("200{n:09}");
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// Makes the demo catalog in one transaction; needs a manager.
fn make_catalog(
    s: &Scope<'_>,
    actor: &Actor,
    rng: &mut ChaCha8Rng,
    summary: &mut DemoSummary,
) -> Result<()> {
    s.require_role(actor, Role::Manager, "create the demo catalog", "products")?;
    let currency = s.tenant_settings()?.currency;
    let scale = |cents: i64| (cents * minor_per_major(&currency) / 100).max(1);
    let now = Timestamp::now();
    let at = |days: i64| Timestamp::from_millis(now.as_millis() + days * DAY_MS).unwrap_or(now);

    let mut categories = Vec::with_capacity(CATEGORIES.len());
    for c in CATEGORIES {
        let row = ProductCategory {
            id: RowId::new(),
            name: c.name.to_owned(),
            parent_id: c.parent.map(|p: usize| categories[p]),
            created_at: now,
        };
        s.append(actor, &row)?;
        categories.push(row.id);
    }
    summary.categories = categories.len() as u64;

    for (category, sku, name, price, kind, taxable) in SERVICES {
        let product = Product {
            id: RowId::new(),
            sku: (*sku).to_owned(),
            barcode: None,
            name: (*name).to_owned(),
            description: None,
            brand: None,
            category_id: Some(categories[*category]),
            kind: (*kind).to_owned(),
            price_minor: scale(*price),
            cost_minor: 0,
            currency: currency.clone(),
            taxable: *taxable,
            reorder_level_milli: 0,
            image: None,
            active: true,
            created_at: now,
            updated_at: now,
        };
        s.append(actor, &product)?;
        summary.products += 1;
    }
    // Parts round-robin over every category's kinds of part, a different brand each time,
    // until the catalog holds PRODUCTS products.
    let parts: Vec<(usize, &Part)> = CATEGORIES
        .iter()
        .enumerate()
        .flat_map(|(i, c)| c.parts.iter().map(move |p| (i, p)))
        .collect();
    let mut stocked: Vec<(RowId, bool, i64)> = Vec::new();
    for k in 0..PRODUCTS.saturating_sub(SERVICES.len()) {
        let (ci, p) = parts[k % parts.len()];
        let round = k / parts.len();
        let brand = BRANDS[(k * 5 + round) % BRANDS.len()];
        // Prices vary by brand: 80 % to 125 % of the part's usual price, ending in 9.
        let price = scale(p.price * rng.random_range(80..=125) / 100 / 10 * 10 + 9);
        let cost = apply_ppm(price, rng.random_range(450_000..=650_000))?;
        let product = Product {
            id: RowId::new(),
            sku: format!("{}-{:04}", CATEGORIES[ci].sku_prefix, 1001 + k),
            barcode: Some(barcode(k + 1)),
            name: format!("{brand} {}", p.name),
            description: p.by_litre.then(|| "Sold by the litre".to_owned()),
            brand: Some(brand.to_owned()),
            category_id: Some(categories[ci]),
            kind: "stocked".to_owned(),
            price_minor: price,
            cost_minor: cost,
            currency: currency.clone(),
            taxable: true,
            reorder_level_milli: 1000 * rng.random_range(3..=6),
            image: None,
            active: true,
            created_at: now,
            updated_at: now,
        };
        s.append(actor, &product)?;
        summary.products += 1;
        if p.fitted {
            for _ in 0..rng.random_range(1..=3) {
                let (make, _, models) = pick(rng, MAKES);
                let year_from = rng.random_range(2005..=2018);
                let fit = Fitment {
                    id: RowId::new(),
                    product_id: product.id,
                    make: (*make).to_owned(),
                    model: (*pick(rng, models)).to_owned(),
                    year_from,
                    year_to: year_from + rng.random_range(3..=8),
                    engine: rng
                        .random_bool(0.5)
                        .then(|| (*pick(rng, ENGINES)).to_owned()),
                    notes: None,
                };
                s.append(actor, &fit)?;
                summary.fitments += 1;
            }
        }
        if rng.random_bool(0.3) {
            let item = InventoryItem {
                id: RowId::new(),
                product_id: product.id,
                location: DEFAULT_LOCATION.to_owned(),
                bin: Some(format!(
                    "{}-{:02}-{}",
                    char::from(b'A' + rng.random_range(0..6u8)),
                    rng.random_range(1..=20),
                    rng.random_range(1..=5)
                )),
                reorder_level_milli: 1000 * rng.random_range(4..=10),
                reorder_qty_milli: 1000 * rng.random_range(12..=24),
                updated_at: now,
            };
            s.append(actor, &item)?;
            summary.inventory_rows += 1;
        }
        stocked.push((product.id, p.by_litre, cost));
    }
    // Opening stock: a delivery for every stocked product; one in ten arrives short, so some
    // shelves may sell empty before the first delivery of the day restocks them.
    for (product, by_litre, cost) in stocked {
        let units = if rng.random_bool(0.1) {
            rng.random_range(1..=2)
        } else if by_litre {
            rng.random_range(20..=60)
        } else {
            rng.random_range(6..=30)
        };
        stock::receive(
            s,
            actor,
            product,
            DEFAULT_LOCATION,
            units * 1000,
            Some(cost),
        )?;
        summary.stock_receipts += 1;
    }

    let mut levels = Vec::new();
    for (name, ppm) in [("Trade", 100_000), ("Fleet", 150_000)] {
        let level = PriceLevel {
            id: RowId::new(),
            name: name.to_owned(),
            discount_ppm: ppm,
            created_at: now,
        };
        s.append(actor, &level)?;
        levels.push(level.id);
        summary.price_levels += 1;
    }

    let mut customers = Vec::with_capacity(CUSTOMERS);
    for i in 1..=CUSTOMERS {
        let (first, first_ascii) = *pick(rng, FIRST_NAMES);
        let (last, last_ascii) = *pick(rng, LAST_NAMES);
        let company = rng.random_bool(0.15).then(|| *pick(rng, COMPANIES));
        let customer = Customer {
            id: RowId::new(),
            code: format!("C-{i:04}"),
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            company: company.map(str::to_owned),
            email: rng
                .random_bool(0.7)
                .then(|| format!("{first_ascii}.{last_ascii}.{i}@example.com")),
            phone: Some(format!(
                "+1 555 {:03} {:04}",
                rng.random_range(100..1000),
                i
            )),
            price_level_id: company.map(|_| *pick(rng, &levels)),
            tax_exempt: company.is_some() && rng.random_bool(0.3),
            notes: None,
            created_at: now,
            updated_at: now,
        };
        s.append(actor, &customer)?;
        summary.customers += 1;
        let vehicles = match rng.random_range(0..100) {
            0..=24 => 0,
            25..=84 => 1,
            _ => 2,
        };
        for v in 0..vehicles {
            let (make, wmi, models) = pick(rng, MAKES);
            let random: String = (0..6).map(|_| char::from(*pick(rng, VIN_CHARS))).collect();
            let vehicle = CustomerVehicle {
                id: RowId::new(),
                customer_id: customer.id,
                // The customer and vehicle numbers at the end keep every VIN unique.
                vin: Some(format!("{wmi}{random}{i:06}{v:02}")),
                plate: Some(format!(
                    "{}{}{}-{:03}",
                    char::from(b'A' + rng.random_range(0..26u8)),
                    char::from(b'A' + rng.random_range(0..26u8)),
                    char::from(b'A' + rng.random_range(0..26u8)),
                    rng.random_range(0..1000)
                )),
                make: (*make).to_owned(),
                model: (*pick(rng, models)).to_owned(),
                year: rng.random_range(2004..=2025),
                engine: Some((*pick(rng, ENGINES)).to_owned()),
                mileage: Some(rng.random_range(5_000..=220_000)),
                created_at: now,
            };
            s.append(actor, &vehicle)?;
            summary.vehicles += 1;
        }
        if rng.random_bool(0.5) {
            let account = accounts::enroll_loyalty(s, actor, customer.id, &format!("L{i:06}"))?;
            summary.loyalty_accounts += 1;
            // A welcome balance, so points are there to spend on the first day.
            let points = rng.random_range(0..=2_000);
            if points > 0 {
                s.append(
                    actor,
                    &LoyaltyTransaction {
                        id: RowId::new(),
                        account_id: account.id,
                        kind: "adjust".to_owned(),
                        points,
                        sale_id: None,
                        created_at: now,
                    },
                )?;
            }
        }
        if company.is_some() || rng.random_bool(0.05) {
            s.append(
                actor,
                &CreditAccount {
                    id: RowId::new(),
                    customer_id: customer.id,
                    credit_limit_minor: scale(50_000 * rng.random_range(1..=10)),
                    currency: currency.clone(),
                    active: true,
                    created_at: now,
                },
            )?;
            summary.credit_accounts += 1;
        }
        customers.push(customer.id);
    }

    for i in 1..=GIFT_CARDS {
        let owner = rng.random_bool(0.6).then(|| *pick(rng, &customers));
        let amount = scale(2_500 * rng.random_range(1..=8));
        accounts::issue_gift_card(
            s,
            actor,
            &format!("GC-DEMO-{i:04}"),
            amount,
            owner,
            Some(at(365)),
        )?;
        summary.gift_cards_issued += 1;
    }

    // Promotions on categories that share no product, so no line has two promotions of equal
    // value (ties would go by random row id, and the seed would not fix the totals).
    let promotions = [
        (
            None,
            "Brake week 10 % off",
            "percent",
            100_000,
            BRAKES,
            None,
        ),
        (
            Some("WIPERS20"),
            "Wipers 20 % off with code WIPERS20",
            "percent",
            200_000,
            WIPERS,
            None,
        ),
        (
            None,
            "Battery launch: $10 off, first 5 sold",
            "amount",
            scale(1_000),
            BATTERIES,
            Some(5),
        ),
        (
            None,
            "Oil: $1.50 off a litre",
            "amount",
            scale(150),
            OILS,
            None,
        ),
    ];
    for (code, name, kind, value, category, usage_limit) in promotions {
        s.append(
            actor,
            &Promotion {
                id: RowId::new(),
                code: code.map(str::to_owned),
                name: name.to_owned(),
                kind: kind.to_owned(),
                value,
                product_id: None,
                category_id: Some(categories[category]),
                starts_at: at(-1),
                ends_at: Some(at(30)),
                usage_limit,
                active: true,
            },
        )?;
        summary.promotions += 1;
    }

    // Rules of distinct specificity (everyone, a category, a user), so none ties.
    let rules = [
        ("Standard 2 %", None, None, 20_000),
        ("Brakes bonus 3 %", None, Some(categories[BRAKES]), 30_000),
        ("Owner's rate 2.5 %", Some(actor.user_id()), None, 25_000),
    ];
    for (name, user_id, category_id, rate_ppm) in rules {
        s.append(
            actor,
            &CommissionRule {
                id: RowId::new(),
                name: name.to_owned(),
                user_id,
                category_id,
                rate_ppm,
                active: true,
                created_at: now,
            },
        )?;
        summary.commission_rules += 1;
    }
    Ok(())
}

// ------------------------------------------------------------------------------- the sales

struct DemoProduct {
    id: RowId,
    by_litre: bool,
    stocked: bool,
    /// What the store pays a unit (a litre) of it, in minor units; 0 when unknown.
    cost_minor: i64,
}

struct DemoCustomer {
    id: RowId,
    loyalty: Option<RowId>,
    credit: Option<RowId>,
}

struct DemoCard {
    id: RowId,
    customer: Option<RowId>,
}

struct DemoVehicle {
    id: RowId,
    customer: RowId,
    mileage: Option<i64>,
}

/// A sale of this run that may still be refunded or voided.
struct RecentSale {
    id: RowId,
    /// Its lines: id, quantity (thousandths) and total.
    lines: Vec<(RowId, i64, i64)>,
    /// The tenders it was paid with, in the order of its payments, and what is left to give
    /// back by each (see [`Paid`]).
    paid: Vec<(Paid, i64)>,
}

/// A tender a sale was paid with, as the refund flow caps it: cash net of change, card, each
/// gift card on its own, store credit, and loyalty counted in points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paid {
    Cash,
    Card,
    GiftCard(RowId),
    StoreCredit,
    Loyalty,
}

impl Paid {
    /// The tenders of a receipt's payments, in their order, one entry per tender (gift cards
    /// card by card) with what it took: minor units, points for loyalty (`point_value_minor`
    /// each, as the sale was paid). A gift card payment naming no card counts as cash, as the
    /// refund flow counts it.
    fn of(payments: &[SalePayment], point_value_minor: i64) -> Vec<(Self, i64)> {
        let mut out: Vec<(Self, i64)> = Vec::new();
        for p in payments {
            let (tender, took) = match (p.method.as_str(), p.gift_card_id) {
                ("cash", _) | ("gift_card", None) => (Self::Cash, p.amount_minor),
                ("card", _) => (Self::Card, p.amount_minor),
                ("gift_card", Some(card)) => (Self::GiftCard(card), p.amount_minor),
                ("store_credit", _) => (Self::StoreCredit, p.amount_minor),
                ("loyalty", _) if point_value_minor > 0 => {
                    (Self::Loyalty, p.amount_minor / point_value_minor)
                }
                _ => continue,
            };
            match out.iter_mut().find(|(t, _)| *t == tender) {
                Some((_, left)) => *left += took,
                None => out.push((tender, took)),
            }
        }
        out
    }
}

/// Splits a refund of `total` over the sale's own tenders in the order it was paid with
/// them, each up to what is left of it (which it lowers), so no tender gives back more than
/// it took: the refund flow refuses that ([`FlowError::RefundExceedsTender`]). Points are
/// whole, so a loyalty tender gives back at most the points that fit in what is still due and
/// the tenders after it take the rest. What no tender can take (only a remainder smaller than
/// a point, when nothing after the points is left) is offered in cash, which the flow then
/// refuses.
fn split_refund(
    paid: &mut [(Paid, i64)],
    total: i64,
    point_value_minor: i64,
    rng: &mut ChaCha8Rng,
) -> Vec<RefundTender> {
    let mut due = total;
    let mut out = Vec::new();
    for (tender, left) in paid.iter_mut() {
        if due <= 0 {
            break;
        }
        if *left <= 0 {
            continue;
        }
        let (given, amount) = match *tender {
            Paid::Loyalty if point_value_minor > 0 => {
                let points = (*left).min(due / point_value_minor);
                (points, points * point_value_minor)
            }
            Paid::Loyalty => (0, 0),
            _ => {
                let amount = (*left).min(due);
                (amount, amount)
            }
        };
        if given <= 0 {
            continue;
        }
        *left -= given;
        due -= amount;
        out.push(match *tender {
            Paid::Cash => RefundTender::Cash {
                amount_minor: amount,
            },
            Paid::Card => RefundTender::Card {
                amount_minor: amount,
                reference: format!("RFD-{:06}", rng.random_range(0..1_000_000)),
            },
            Paid::GiftCard(card_id) => RefundTender::GiftCard {
                card_id,
                amount_minor: amount,
            },
            Paid::StoreCredit => RefundTender::StoreCredit {
                amount_minor: amount,
            },
            Paid::Loyalty => RefundTender::Loyalty { points: given },
        });
    }
    if due > 0 {
        out.push(RefundTender::Cash { amount_minor: due });
    }
    out
}

/// An open layaway: its id and total.
struct DemoLayaway {
    id: RowId,
    total_minor: i64,
}

/// What the demo sells from and to, read in a fixed order (SKU, customer code, card code) so
/// the seed decides the same things whatever the row ids.
struct World {
    currency: String,
    point_value_minor: i64,
    tax_labour: bool,
    labour_rate_minor: i64,
    products: Vec<DemoProduct>,
    customers: Vec<DemoCustomer>,
    vehicles: Vec<DemoVehicle>,
    cards: Vec<DemoCard>,
    codes: Vec<String>,
    recent: Vec<RecentSale>,
    layaways: Vec<DemoLayaway>,
}

impl World {
    fn load(tenant: &Tenant<'_>) -> Result<Self> {
        let settings = tenant.settings()?;
        let scope = tenant.scope();
        let products = scope.query_map(
            "SELECT id, description, kind, cost_minor FROM products
             WHERE tenant_id = ?1 AND active = 1 AND currency = ?2 ORDER BY sku",
            &[&settings.currency],
            |r| {
                Ok(DemoProduct {
                    id: r.get(0)?,
                    by_litre: r.get::<_, Option<String>>(1)?.as_deref()
                        == Some("Sold by the litre"),
                    stocked: r.get::<_, String>(2)? == "stocked",
                    cost_minor: r.get(3)?,
                })
            },
        )?;
        let customers = scope.query_map(
            "SELECT c.id, l.id, a.id FROM customers c
             LEFT JOIN loyalty_accounts l ON l.tenant_id = c.tenant_id AND l.customer_id = c.id
             LEFT JOIN credit_accounts a
               ON a.tenant_id = c.tenant_id AND a.customer_id = c.id AND a.active = 1
             WHERE c.tenant_id = ?1 ORDER BY c.code",
            &[],
            |r| {
                Ok(DemoCustomer {
                    id: r.get(0)?,
                    loyalty: r.get(1)?,
                    credit: r.get(2)?,
                })
            },
        )?;
        let vehicles = scope.query_map(
            "SELECT v.id, v.customer_id, v.mileage FROM customer_vehicles v
             JOIN customers c ON c.tenant_id = v.tenant_id AND c.id = v.customer_id
             WHERE v.tenant_id = ?1 ORDER BY c.code, v.vin, v.plate, v.make, v.model, v.year",
            &[],
            |r| {
                Ok(DemoVehicle {
                    id: r.get(0)?,
                    customer: r.get(1)?,
                    mileage: r.get(2)?,
                })
            },
        )?;
        let cards = scope.query_map(
            "SELECT id, customer_id FROM gift_cards
             WHERE tenant_id = ?1 AND active = 1 AND currency = ?2
               AND (expires_at IS NULL OR expires_at > ?3)
             ORDER BY code",
            &[&settings.currency, &Timestamp::now()],
            |r| {
                Ok(DemoCard {
                    id: r.get(0)?,
                    customer: r.get(1)?,
                })
            },
        )?;
        let codes = scope.query_map(
            "SELECT code FROM promotions
             WHERE tenant_id = ?1 AND active = 1 AND code IS NOT NULL ORDER BY code",
            &[],
            |r| r.get(0),
        )?;
        let layaways = scope.query_map(
            "SELECT id, total_minor FROM layaways
             WHERE tenant_id = ?1 AND status = 'open' AND currency = ?2
             ORDER BY opened_at, number",
            &[&settings.currency],
            |r| {
                Ok(DemoLayaway {
                    id: r.get(0)?,
                    total_minor: r.get(1)?,
                })
            },
        )?;
        let labour_rate_minor = scope
            .query_optional(
                "SELECT price_minor FROM products
                 WHERE tenant_id = ?1 AND sku = 'SVC-LAB' AND currency = ?2",
                &[&settings.currency],
                |r| r.get(0),
            )?
            .unwrap_or(9_500 * minor_per_major(&settings.currency) / 100);
        Ok(Self {
            point_value_minor: i64::from(settings.rules.loyalty_point_value_minor),
            tax_labour: settings.rules.tax_labour,
            labour_rate_minor,
            currency: settings.currency,
            products,
            customers,
            vehicles,
            cards,
            codes,
            recent: Vec::new(),
            layaways,
        })
    }

    fn customer(&self, id: RowId) -> Option<&DemoCustomer> {
        self.customers.iter().find(|c| c.id == id)
    }

    fn product(&self, id: RowId) -> Option<&DemoProduct> {
        self.products.iter().find(|p| p.id == id)
    }
}

/// Chance, before each attempt but the first, that the supplier's delivery comes.
const DELIVERY_CHANCE: f64 = 0.1;

/// The supplier's delivery, in one transaction: every product of the reorder report for the
/// demo's location that the demo sells is received. The quantity brings it up to two to four
/// times its reorder level, and to at least its location's reorder quantity, in whole units
/// (5 litre jugs for products sold by the litre); the unit cost is the product's.
fn receive_delivery(
    tenant: &Tenant<'_>,
    actor: &Actor,
    world: &World,
    rng: &mut ChaCha8Rng,
    summary: &mut DemoSummary,
) -> Result<()> {
    let received = tenant.in_write(|s| {
        let mut received = 0;
        for line in reports::stock_below_reorder(s, DEFAULT_LOCATION)? {
            let Some(p) = world.product(line.product_id) else {
                continue;
            };
            let pack: i64 = if p.by_litre { 5_000 } else { 1_000 };
            let up_to = line
                .reorder_level_milli
                .saturating_mul(rng.random_range(2..=4));
            let wanted = line
                .reorder_qty_milli
                .max(up_to.saturating_sub(line.on_hand_milli))
                .max(1);
            let quantity = (wanted + pack - 1) / pack * pack;
            let cost = (p.cost_minor > 0).then_some(p.cost_minor);
            stock::receive(s, actor, p.id, DEFAULT_LOCATION, quantity, cost)?;
            received += 1;
        }
        Ok(received)
    })?;
    summary.restock_receipts += received;
    Ok(())
}

/// The rule that refused, in snake case (`InsufficientStock { .. }` is `insufficient_stock`).
fn refusal_name(e: &FlowError) -> String {
    let debug = format!("{e:?}");
    let variant = debug.split([' ', '{', '(']).next().unwrap_or_default();
    let mut out = String::with_capacity(variant.len() + 4);
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Rings up one attempt of a kind the stream picks; a business-rule refusal is counted.
fn sell_one(
    tenant: &Tenant<'_>,
    actor: &Actor,
    world: &mut World,
    rng: &mut ChaCha8Rng,
    summary: &mut DemoSummary,
) -> Result<()> {
    summary.attempted += 1;
    // One in twenty a gift card, refund, void (rarer, and a manager's), layaway opened,
    // layaway paid or work order; the rest counter sales. A kind with nothing to act on yet
    // (or not the actor's to do) is a counter sale.
    let roll = rng.random_range(0..100);
    let done = match roll {
        0..=4 => sell_gift_card(tenant, actor, world, rng, summary),
        5..=9 if !world.recent.is_empty() => refund_one(tenant, actor, world, rng, summary),
        10..=11 if !world.recent.is_empty() && actor.role() >= Role::Manager => {
            void_one(tenant, actor, world, rng, summary)
        }
        12..=16 if !world.customers.is_empty() => open_layaway(tenant, actor, world, rng, summary),
        17..=21 if !world.layaways.is_empty() => pay_layaway(tenant, actor, world, rng, summary),
        22..=26 if !world.vehicles.is_empty() => work_order(tenant, actor, world, rng, summary),
        _ => sell_parts(tenant, actor, world, rng, summary),
    };
    match done {
        Ok(()) => Ok(()),
        Err(Error::Flow(e)) => {
            summary.refused += 1;
            *summary.refusals.entry(refusal_name(&e)).or_default() += 1;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Counts a completed sale and keeps it as one that may be refunded or voided.
fn count_receipt(
    world: &mut World,
    summary: &mut DemoSummary,
    receipt: &checkout::Receipt,
    refundable: bool,
) {
    summary.revenue_minor += receipt.sale.total_minor;
    for p in &receipt.payments {
        *summary.payments_minor.entry(p.method.clone()).or_default() += p.amount_minor;
    }
    summary.points_earned += receipt.points_earned;
    summary.promotions_used += receipt.promotions.len() as u64;
    if refundable {
        world.recent.push(RecentSale {
            id: receipt.sale.id,
            lines: receipt
                .lines
                .iter()
                .map(|l| (l.id, l.quantity_milli, l.total_minor))
                .collect(),
            paid: Paid::of(&receipt.payments, world.point_value_minor),
        });
    }
}

/// A customer for the sale: walk-ins are four in ten.
fn pick_customer<'w>(world: &'w World, rng: &mut ChaCha8Rng) -> Option<&'w DemoCustomer> {
    if world.customers.is_empty() || rng.random_bool(0.4) {
        None
    } else {
        Some(pick(rng, &world.customers))
    }
}

/// One to five lines of the catalog; with `stocked_only`, parts only.
fn pick_lines(world: &World, rng: &mut ChaCha8Rng, stocked_only: bool) -> Vec<LineItem> {
    let n = *pick(rng, &[1, 1, 1, 2, 2, 3, 4, 5]);
    let pool: Vec<&DemoProduct> = world
        .products
        .iter()
        .filter(|p| p.stocked || !stocked_only)
        .collect();
    if pool.is_empty() {
        return Vec::new();
    }
    (0..n)
        .map(|_| {
            let p = pick(rng, &pool);
            let quantity = if p.by_litre {
                500 * rng.random_range(2..=10)
            } else {
                1000 * *pick(rng, &[1, 1, 1, 2, 2, 4])
            };
            LineItem::product(p.id, quantity)
        })
        .collect()
}

/// A counter sale of one to five lines, priced first (as the till shows the total) and then
/// paid with a mix of the customer's gift card, points and store credit, and card or cash.
fn sell_parts(
    tenant: &Tenant<'_>,
    actor: &Actor,
    world: &mut World,
    rng: &mut ChaCha8Rng,
    summary: &mut DemoSummary,
) -> Result<()> {
    let customer = pick_customer(world, rng);
    let mut sale = checkout::Checkout::new();
    sale.lines = pick_lines(world, rng, false);
    if !world.codes.is_empty() && rng.random_bool(0.15) {
        let code: &String = pick(rng, &world.codes);
        sale = sale.code(code);
    }
    if let Some(c) = customer {
        sale = sale.customer(c.id);
    }
    let receipt = tenant.in_write(|s| {
        let ctx = Context::load(s, customer.map(|c| c.id))?;
        let due = checkout::price(s, &ctx, &sale.lines, &sale.promotion_codes)?.total;
        sale.tenders = tenders(s, world, rng, customer, due)?;
        checkout::run(s, actor, &sale)
    })?;
    summary.checkouts += 1;
    count_receipt(world, summary, &receipt, true);
    Ok(())
}

/// Tenders for `due`: each account the customer has may pay part, then card or cash the rest.
fn tenders(
    s: &Scope<'_>,
    world: &World,
    rng: &mut ChaCha8Rng,
    customer: Option<&DemoCustomer>,
    due: i64,
) -> Result<Vec<Tender>> {
    let mut left = due;
    let mut out = Vec::new();
    // The customer's own card, or one in four walk-ins hands over a card they were given.
    let own = world
        .cards
        .iter()
        .find(|c| customer.is_some_and(|cu| c.customer == Some(cu.id)));
    let card = if own.is_some() {
        own
    } else if customer.is_none() && !world.cards.is_empty() && rng.random_bool(0.25) {
        Some(pick(rng, &world.cards))
    } else {
        None
    };
    if let Some(card) = card {
        let held = s.balance::<GiftCardTransaction>(&[&card.id])?;
        let amount = held.min(left);
        if amount > 0 {
            out.push(Tender::GiftCard {
                card_id: card.id,
                amount_minor: amount,
            });
            left -= amount;
        }
    }
    if let Some(account) = customer.and_then(|c| c.loyalty) {
        let points = s.balance::<LoyaltyTransaction>(&[&account])?;
        if world.point_value_minor > 0 && points >= 100 && left > 0 && rng.random_bool(0.3) {
            let spend = points.min(left / world.point_value_minor);
            if spend > 0 {
                out.push(Tender::Loyalty { points: spend });
                left -= spend * world.point_value_minor;
            }
        }
    }
    if let Some(account) = customer.and_then(|c| c.credit) {
        if left > 0 && rng.random_bool(0.5) {
            let owed = s.balance::<CreditTransaction>(&[&account])?;
            let limit = s.row::<CreditAccount>(account)?.credit_limit_minor;
            // Now and then the cashier tries the whole amount whatever the limit, and the
            // flow refuses it past the limit.
            let amount = if rng.random_bool(0.1) {
                left
            } else {
                left.min(limit - owed)
            };
            if amount > 0 {
                out.push(Tender::StoreCredit {
                    amount_minor: amount,
                });
                left -= amount;
            }
        }
    }
    if left > 0 {
        out.push(pay_rest(world, rng, left, true));
    }
    Ok(out)
}

/// Card or cash for what is left: cash rounded up to a note (change given) when `change`,
/// else exact.
fn pay_rest(world: &World, rng: &mut ChaCha8Rng, left: i64, change: bool) -> Tender {
    if rng.random_bool(0.45) {
        Tender::Card {
            amount_minor: left,
            reference: format!("AUTH-{:06}", rng.random_range(0..1_000_000)),
        }
    } else {
        let note = minor_per_major(&world.currency) * *pick(rng, &[1, 5, 10, 20]);
        let tendered = if !change || rng.random_bool(0.3) {
            left
        } else {
            (left + note - 1) / note * note
        };
        Tender::Cash {
            tendered_minor: tendered,
        }
    }
}

/// A gift card sold through [`Pos::sell_gift_card`]: the sale of the card (untaxed, earning no
/// points or commission) and its issue, in one transaction.
fn sell_gift_card(
    tenant: &Tenant<'_>,
    actor: &Actor,
    world: &mut World,
    rng: &mut ChaCha8Rng,
    summary: &mut DemoSummary,
) -> Result<()> {
    let customer = pick_customer(world, rng).map(|c| c.id);
    let amount = minor_per_major(&world.currency) * *pick(rng, &[25, 50, 50, 100]);
    let tender = pay_rest(world, rng, amount, true);
    // Terminals sell cards offline too: the code is random, like receipt numbers.
    let code = checkout::receipt_number("GC", RowId::new());
    let mut sale = GiftCardSale::new(&code, amount).tender(tender);
    if let Some(c) = customer {
        sale = sale.customer(c);
    }
    if let Some(expires) = Timestamp::from_millis(Timestamp::now().as_millis() + 730 * DAY_MS) {
        sale = sale.expires_at(expires);
    }
    let sold = tenant.sell_gift_card(actor, &sale)?;
    summary.gift_cards_sold += 1;
    // A sold card is not refunded as goods (refunds refuse it): its money is on the card.
    summary.revenue_minor += sold.sale.total_minor;
    for p in &sold.payments {
        *summary.payments_minor.entry(p.method.clone()).or_default() += p.amount_minor;
    }
    world.cards.push(DemoCard {
        id: sold.card.id,
        customer,
    });
    Ok(())
}

const REFUND_REASONS: &[&str] = &[
    "wrong part for the vehicle",
    "customer changed their mind",
    "damaged in the box",
];

/// Refunds one whole line of a sale of this run, back to the tenders the sale was paid with
/// (see [`split_refund`]). A sale is reversed once at most: it leaves the recent sales.
fn refund_one(
    tenant: &Tenant<'_>,
    actor: &Actor,
    world: &mut World,
    rng: &mut ChaCha8Rng,
    summary: &mut DemoSummary,
) -> Result<()> {
    let i = rng.random_range(0..world.recent.len());
    let mut sale = world.recent.remove(i);
    let (line, quantity, total) = *pick(rng, &sale.lines);
    // A whole line never reversed before comes back at exactly its total.
    let mut request = Refund::new(sale.id, pick::<&str>(rng, REFUND_REASONS)).line(line, quantity);
    request.tenders = split_refund(&mut sale.paid, total, world.point_value_minor, rng);
    let receipt = tenant.refund(actor, &request)?;
    summary.refunds += 1;
    summary.revenue_minor += receipt.sale.total_minor;
    for p in &receipt.payments {
        *summary.payments_minor.entry(p.method.clone()).or_default() += p.amount_minor;
    }
    Ok(())
}

/// Voids a whole sale of this run (a manager's flow): everything goes back where it came from.
fn void_one(
    tenant: &Tenant<'_>,
    actor: &Actor,
    world: &mut World,
    rng: &mut ChaCha8Rng,
    summary: &mut DemoSummary,
) -> Result<()> {
    let i = rng.random_range(0..world.recent.len());
    let sale = world.recent.remove(i);
    let receipt = tenant.void_sale(actor, sale.id, "rung up on the wrong customer")?;
    summary.voids += 1;
    summary.revenue_minor += receipt.sale.total_minor;
    for p in &receipt.payments {
        *summary.payments_minor.entry(p.method.clone()).or_default() += p.amount_minor;
    }
    Ok(())
}

/// Puts parts aside for a customer against a deposit of a fifth to a half of the total.
fn open_layaway(
    tenant: &Tenant<'_>,
    actor: &Actor,
    world: &mut World,
    rng: &mut ChaCha8Rng,
    summary: &mut DemoSummary,
) -> Result<()> {
    let customer = pick(rng, &world.customers).id;
    let lines = pick_lines(world, rng, true);
    let share_ppm = rng.random_range(200_000..=500_000);
    let by_card = rng.random_bool(0.5);
    let reference = format!("AUTH-{:06}", rng.random_range(0..1_000_000));
    let receipt = tenant.in_write(|s| {
        let ctx = Context::load(s, Some(customer))?;
        let total = checkout::price(s, &ctx, &lines, &[])?.total;
        let amount = apply_ppm(total, share_ppm)?.max(1);
        let deposit = if by_card {
            Tender::Card {
                amount_minor: amount,
                reference,
            }
        } else {
            Tender::Cash {
                tendered_minor: amount,
            }
        };
        let mut order = LayawayOrder::new(customer, lines, deposit);
        order.due_at = Timestamp::from_millis(ctx.now.as_millis() + 60 * DAY_MS);
        layaway::open(s, actor, &order)
    })?;
    summary.layaways_opened += 1;
    summary.layaway_payments += 1;
    *summary
        .payments_minor
        .entry(receipt.deposit.method.clone())
        .or_default() += receipt.deposit.amount_minor;
    summary.promotions_used += receipt.promotions.len() as u64;
    world.layaways.push(DemoLayaway {
        id: receipt.layaway.id,
        total_minor: receipt.layaway.total_minor,
    });
    Ok(())
}

/// Pays into an open layaway (half the time all that is left) and completes it once paid.
fn pay_layaway(
    tenant: &Tenant<'_>,
    actor: &Actor,
    world: &mut World,
    rng: &mut ChaCha8Rng,
    summary: &mut DemoSummary,
) -> Result<()> {
    let i = rng.random_range(0..world.layaways.len());
    let (id, total) = (world.layaways[i].id, world.layaways[i].total_minor);
    let left = total - tenant.layaway_paid(id)?;
    let all = rng.random_bool(0.5);
    if left > 0 {
        let amount = if all { left } else { (left / 2).max(1) };
        let tender = pay_rest(world, rng, amount, false);
        tenant.pay_layaway(actor, id, &tender)?;
        summary.layaway_payments += 1;
        *summary
            .payments_minor
            .entry(tender.method().as_str().to_owned())
            .or_default() += amount;
        if amount < left {
            return Ok(());
        }
    }
    // Fully paid: the goods leave the shelf now. If the stock is gone, the layaway stays open
    // (and is counted as refused) until a delivery comes.
    let done = tenant.complete_layaway(actor, id)?;
    summary.layaways_completed += 1;
    summary.revenue_minor += done.sale.total_minor;
    summary.points_earned += done.points_earned;
    world.layaways.remove(i);
    Ok(())
}

const JOBS: &[&str] = &[
    "Brake service front axle",
    "Oil and filter change",
    "Replace timing belt",
    "Check engine light: diagnose",
    "Battery replacement",
    "Replace shock absorbers",
];

/// A job on a customer's vehicle: opened, one to three parts and some labour added, and
/// completed into a sale paid like a counter sale, in one transaction.
fn work_order(
    tenant: &Tenant<'_>,
    actor: &Actor,
    world: &mut World,
    rng: &mut ChaCha8Rng,
    summary: &mut DemoSummary,
) -> Result<()> {
    let vehicle = pick(rng, &world.vehicles);
    let customer = world.customer(vehicle.customer);
    let mut request = WorkOrderRequest::new(vehicle.customer, pick::<&str>(rng, JOBS));
    request.vehicle_id = Some(vehicle.id);
    request.technician_user_id = Some(actor.user_id());
    request.odometer = vehicle.mileage.map(|m| m + rng.random_range(0..5_000));
    let mut parts = pick_lines(world, rng, true);
    parts.truncate(3);
    let hours_milli = 250 * rng.random_range(2..=12);
    let rate = world.labour_rate_minor;
    let tax_labour = world.tax_labour;
    let receipt = tenant.in_write(|s| {
        let wo = work_order::open(s, actor, &request)?;
        let mut quote = Vec::with_capacity(parts.len() + 1);
        for line in &parts {
            if let LineItem::Product {
                product_id,
                quantity_milli,
            } = line
            {
                work_order::add_part(s, actor, wo.id, *product_id, *quantity_milli)?;
                quote.push(line.clone());
            }
        }
        work_order::add_labour(s, actor, wo.id, "Labour", hours_milli, rate)?;
        // The quote the customer pays against: the lines as completion rings them up.
        quote.push(LineItem::service("Labour", hours_milli, rate, tax_labour));
        let ctx = Context::load(s, Some(wo.customer_id))?;
        let due = checkout::price(s, &ctx, &quote, &[])?.total;
        let tenders = tenders(s, world, rng, customer, due)?;
        work_order::complete(s, actor, wo.id, &tenders)
    })?;
    summary.work_orders += 1;
    count_receipt(world, summary, &receipt, true);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barcodes_carry_the_ean13_check_digit() {
        // 200000000001 weighs 2 + 1·3 = 5, so its check digit is 5.
        assert_eq!(barcode(1), "2000000000015");
        assert_eq!(barcode(1).len(), 13);
    }

    #[test]
    fn refunds_split_over_the_sales_tenders_in_order_within_what_each_took() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let card = RowId::new();
        // Points worth 10 each: 30 points paid 300.
        let mut paid = vec![
            (Paid::GiftCard(card), 500),
            (Paid::Loyalty, 30),
            (Paid::Card, 1_000),
        ];
        // 500 on the gift card, 3 points (30) and the 7 that is not a whole point by card.
        let first = split_refund(&mut paid, 537, 10, &mut rng);
        assert!(matches!(
            first.as_slice(),
            [
                RefundTender::GiftCard { card_id, amount_minor: 500 },
                RefundTender::Loyalty { points: 3 },
                RefundTender::Card { amount_minor: 7, .. },
            ] if *card_id == card
        ));
        assert_eq!(
            paid,
            vec![
                (Paid::GiftCard(card), 0),
                (Paid::Loyalty, 27),
                (Paid::Card, 993)
            ]
        );
        // A later refund takes what earlier ones left.
        let second = split_refund(&mut paid, 1_200, 10, &mut rng);
        assert!(matches!(
            second.as_slice(),
            [
                RefundTender::Loyalty { points: 27 },
                RefundTender::Card {
                    amount_minor: 930,
                    ..
                },
            ]
        ));
        assert_eq!(paid[2], (Paid::Card, 63));
    }

    #[test]
    fn refusals_are_named_in_snake_case() {
        let e = FlowError::InsufficientStock {
            product: RowId::new(),
            location: "main".into(),
            on_hand_milli: 0,
            wanted_milli: 1,
        };
        assert_eq!(refusal_name(&e), "insufficient_stock");
        assert_eq!(refusal_name(&FlowError::Overflow), "overflow");
    }
}
