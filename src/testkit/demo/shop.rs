//! The demo catalog, made once for a tenant with no products: categories, products with SKUs
//! and barcodes, fitment, price levels, customers with vehicles, loyalty and credit accounts,
//! gift cards, promotions, commission rules and opening stock.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{pick, DemoSummary};
use crate::catalog::{
    CommissionRule, CreditAccount, Customer, CustomerVehicle, Fitment, InventoryItem,
    LoyaltyTransaction, PriceLevel, Product, ProductCategory, Promotion,
};
use crate::ids::{RowId, Timestamp};
use crate::pos::checkout::DEFAULT_LOCATION;
use crate::pos::money::{apply_ppm, minor_per_major};
use crate::pos::{accounts, stock};
use crate::tenant::settings::Role;
use crate::tenant::{Actor, Scope};
use crate::testkit::reference::{ean13, DAY_MS, DEMO, VIN_CHARS};
use crate::Result;

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

/// Products in the demo catalog, services included.
const PRODUCTS: usize = 200;
const CUSTOMERS: usize = 100;
const GIFT_CARDS: usize = 15;

/// An EAN-13 with the in-store prefix 200 and its check digit.
fn barcode(n: usize) -> String {
    ean13(200_000_000_000 + n as u64)
}

/// Makes the demo catalog in one transaction; needs a manager.
pub(super) fn make_catalog(
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
        let brand = DEMO.brands[(k * 5 + round) % DEMO.brands.len()];
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
                let (make, _, models) = pick(rng, DEMO.makes);
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
                        .then(|| (*pick(rng, DEMO.engines)).to_owned()),
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
        let (first, first_ascii) = *pick(rng, DEMO.first_names);
        let (last, last_ascii) = *pick(rng, DEMO.last_names);
        let company = rng.random_bool(0.15).then(|| *pick(rng, DEMO.companies));
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
            let (make, wmi, models) = pick(rng, DEMO.makes);
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
                engine: Some((*pick(rng, DEMO.engines)).to_owned()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barcodes_carry_the_ean13_check_digit() {
        // 200000000001 weighs 2 + 1·3 = 5, so its check digit is 5.
        assert_eq!(barcode(1), "2000000000015");
        assert_eq!(barcode(1).len(), 13);
    }
}
