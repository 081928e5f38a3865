//! Checkout, stock, gift cards, loyalty and store credit through the tenant handle: figures,
//! business rules, refusals that write nothing, tenant isolation, and (property tests) balances
//! equal to their ledger sums and sales whose money balances.

use pos_tenancy::catalog::*;
use pos_tenancy::pos::{
    Checkout, FlowError, LayawayOrder, LineItem, Pos, Refund, RefundTender, Tender,
};
use pos_tenancy::{
    Actor, Error, NewTenant, Plan, Role, RowId, Store, TaxRate, Tenant, TenantAccess,
    TenantSettings, Timestamp,
};
use proptest::prelude::*;
use rusqlite::Connection;

type R<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Shop {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Store,
}

fn settings(f: impl FnOnce(&mut TenantSettings)) -> TenantSettings {
    let mut s = TenantSettings::new("Caps Automotive");
    s.tax_rates.push(TaxRate {
        name: "State".into(),
        rate_ppm: 60_000,
    });
    s.tax_rates.push(TaxRate {
        name: "City".into(),
        rate_ppm: 28_750,
    });
    f(&mut s);
    s
}

fn shop(tenants: &[(&str, TenantSettings)]) -> R<Shop> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("pos.db");
    let store = Store::open(&path)?;
    for (t, s) in tenants {
        store.add_tenant(
            &NewTenant::new(t.parse()?, &format!("{t} store"))
                .plan(Plan::Pro)
                .settings(s.clone()),
        )?;
    }
    Ok(Shop {
        _dir: dir,
        path,
        store,
    })
}

impl Shop {
    fn raw(&self) -> R<Connection> {
        Ok(Connection::open(&self.path)?)
    }

    /// Rows of a table for one tenant, straight from the file.
    fn count(&self, tenant: &str, table: &str) -> R<i64> {
        // Table names are this test's own literals.
        Ok(self.raw()?.query_row(
            &format!("SELECT count(*) FROM {table} WHERE tenant_id = ?1"),
            [tenant],
            |r| r.get(0),
        )?)
    }

    /// Everything a refused flow must leave as it was.
    fn snapshot(&self, tenant: &str) -> R<Vec<i64>> {
        let mut out = Vec::new();
        for t in [
            "sales",
            "sale_lines",
            "sale_payments",
            "inventory_transactions",
            "gift_card_transactions",
            "loyalty_transactions",
            "credit_transactions",
            "promotion_usage",
            "commissions",
            "pending_operations",
            "audit_log",
        ] {
            out.push(self.count(tenant, t)?);
        }
        let conn = self.raw()?;
        for sql in [
            "SELECT coalesce(sum(on_hand_milli), 0) FROM stock_levels WHERE tenant_id = ?1",
            "SELECT coalesce(sum(balance_minor), 0) FROM gift_card_balances WHERE tenant_id = ?1",
            "SELECT coalesce(sum(points), 0) FROM loyalty_balances WHERE tenant_id = ?1",
            "SELECT coalesce(sum(owed_minor), 0) FROM credit_balances WHERE tenant_id = ?1",
        ] {
            out.push(conn.query_row(sql, [tenant], |r| r.get(0))?);
        }
        Ok(out)
    }
}

/// A catalog for one tenant: a category, stocked products, a service product, a customer on a
/// 10 % price level with loyalty and credit accounts, a cashier.
struct Catalog {
    admin: Actor,
    cashier: Actor,
    brakes: RowId,
    pads: Product,
    oil: Product,
    rotor: Product,
    customer: Customer,
    loyalty: RowId,
    credit: RowId,
}

fn product(sku: &str, price: i64, category: Option<RowId>, kind: &str) -> Product {
    let now = Timestamp::now();
    Product {
        id: RowId::new(),
        sku: sku.into(),
        barcode: None,
        name: format!("Part {sku}"),
        description: None,
        brand: None,
        category_id: category,
        kind: kind.into(),
        price_minor: price,
        cost_minor: price / 2,
        currency: "USD".into(),
        taxable: true,
        reorder_level_milli: 0,
        image: None,
        active: true,
        created_at: now,
        updated_at: now,
    }
}

fn catalog(t: &Tenant<'_>) -> R<Catalog> {
    let admin = t.bootstrap_admin("owner", "Owner")?;
    let now = Timestamp::now();
    let cashier = User {
        id: RowId::new(),
        username: "till".into(),
        display_name: "Till".into(),
        email: None,
        role: Role::Cashier,
        pin_hash: None,
        active: true,
        created_at: now,
        updated_at: now,
    };
    t.insert(&admin, &cashier)?;
    let cashier = t.actor(cashier.id)?;
    let brakes = ProductCategory {
        id: RowId::new(),
        name: "Brakes".into(),
        parent_id: None,
        created_at: now,
    };
    t.insert(&admin, &brakes)?;
    let pads = product("PAD-1", 4_999, Some(brakes.id), "stocked");
    let oil = product("OIL-1", 899, None, "stocked");
    let rotor = product("ROT-1", 12_000, Some(brakes.id), "stocked");
    for p in [&pads, &oil, &rotor] {
        t.insert(&admin, p)?;
        t.receive_stock(&admin, p.id, "main", 10_000, Some(p.cost_minor))?;
    }
    let level = PriceLevel {
        id: RowId::new(),
        name: "Trade".into(),
        discount_ppm: 100_000,
        created_at: now,
    };
    t.insert(&admin, &level)?;
    let customer = Customer {
        id: RowId::new(),
        code: "C-1".into(),
        first_name: "Ana".into(),
        last_name: "Diaz".into(),
        company: None,
        email: None,
        phone: None,
        price_level_id: Some(level.id),
        tax_exempt: false,
        notes: None,
        created_at: now,
        updated_at: now,
    };
    t.insert(&admin, &customer)?;
    let loyalty = t.enroll_loyalty(&admin, customer.id, "L-1")?.id;
    let credit = CreditAccount {
        id: RowId::new(),
        customer_id: customer.id,
        credit_limit_minor: 20_000,
        currency: "USD".into(),
        active: true,
        created_at: now,
    };
    t.insert(&admin, &credit)?;
    Ok(Catalog {
        admin,
        cashier,
        brakes: brakes.id,
        pads,
        oil,
        rotor,
        customer,
        loyalty,
        credit: credit.id,
    })
}

fn flow_error(e: Error) -> FlowError {
    match e {
        Error::Flow(f) => f,
        other => panic!("expected a business rule refusal, got {other:?}"),
    }
}

#[test]
fn a_cash_sale_prices_taxes_takes_stock_and_gives_change() -> R {
    let shop = shop(&[("caps", settings(|_| {}))])?;
    let caps = shop.store.tenant(&"caps".parse()?)?;
    let c = catalog(&caps)?;
    let ops_before = shop.count("caps", "pending_operations")?;
    let receipt = caps.checkout(
        &c.cashier,
        &Checkout::new()
            .line(LineItem::product(c.oil.id, 2_000))
            .line(LineItem::service("Fit wipers", 500, 3_333, false))
            .tender(Tender::Cash {
                tendered_minor: 5_000,
            }),
    )?;
    // 2 × 8.99 = 17.98; tax 8.875 % of 17.98 = 1.5957... → 1.60; half an hour at 33.33 is 16.665
    // → 16.67 (half away from zero), untaxed.
    let sale = &receipt.sale;
    assert_eq!(
        (sale.subtotal_minor, sale.discount_minor, sale.tax_minor),
        (1_798 + 1_667, 0, 160)
    );
    assert_eq!(sale.total_minor, 3_625);
    assert_eq!(receipt.change_minor, 5_000 - 3_625);
    assert_eq!(receipt.payments.len(), 1);
    assert_eq!(receipt.payments[0].amount_minor, 3_625);
    assert_eq!(receipt.payments[0].tendered_minor, Some(5_000));
    assert_eq!(caps.stock_on_hand(c.oil.id, "main")?, 8_000);
    // sale, 2 lines, 1 payment, 1 stock row (the service holds no stock): one operation each,
    // and no customer, so no points.
    assert_eq!(
        shop.count("caps", "pending_operations")? - ops_before,
        5,
        "one pending operation per row written"
    );
    assert_eq!(receipt.points_earned, 0);
    assert!(shop.store.verify()?.is_ok());
    Ok(())
}

#[test]
fn price_level_best_promotion_usage_limit_and_coupon_code() -> R {
    let shop = shop(&[("caps", settings(|s| s.tax_rates.clear()))])?;
    let caps = shop.store.tenant(&"caps".parse()?)?;
    let c = catalog(&caps)?;
    let now = Timestamp::now();
    let promo =
        |name: &str, kind: &str, value, product, category, limit, code: Option<&str>| Promotion {
            id: RowId::new(),
            code: code.map(str::to_owned),
            name: name.into(),
            kind: kind.into(),
            value,
            product_id: product,
            category_id: category,
            starts_at: Timestamp::from_millis(now.as_millis() - 60_000).expect("time"),
            ends_at: None,
            usage_limit: limit,
            active: true,
        };
    // 20 % off brakes, once ever; 5.00 off each rotor; 50 % off anything with a code.
    let once = promo(
        "Brake week",
        "percent",
        200_000,
        None,
        Some(c.brakes),
        Some(1),
        None,
    );
    let per_unit = promo(
        "Rotor deal",
        "amount",
        500,
        Some(c.rotor.id),
        None,
        None,
        None,
    );
    let coupon = promo("Half", "percent", 500_000, None, None, None, Some("HALF"));
    for p in [&once, &per_unit, &coupon] {
        caps.insert(&c.admin, p)?;
    }
    let sell = |code: Option<&str>| {
        let mut sale = Checkout::new()
            .customer(c.customer.id)
            .line(LineItem::product(c.pads.id, 1_000))
            .line(LineItem::product(c.rotor.id, 2_000))
            .tender(Tender::Cash {
                tendered_minor: 100_000,
            });
        if let Some(code) = code {
            sale = sale.code(code);
        }
        caps.checkout(&c.cashier, &sale)
    };
    let first = sell(None)?;
    // Trade level: pads 49.99 → 44.99 (4_999 − 499.9 → 500 rounded), rotor 120.00 → 108.00.
    assert_eq!(first.lines[0].unit_price_minor, 4_499);
    assert_eq!(first.lines[1].unit_price_minor, 10_800);
    // Pads: 20 % of 44.99 = 9.00 (899.8). Rotors: 20 % of 216.00 = 43.20 beats 2 × 5.00.
    assert_eq!(first.lines[0].discount_minor, 900);
    assert_eq!(first.lines[1].discount_minor, 4_320);
    assert_eq!(
        first.promotions.len(),
        1,
        "one usage row per promotion per sale"
    );
    assert_eq!(first.promotions[0].discount_minor, 5_220);
    let second = sell(None)?;
    assert_eq!(second.lines[0].discount_minor, 0, "usage limit reached");
    assert_eq!(
        second.lines[1].discount_minor, 1_000,
        "5.00 off each of two"
    );
    let third = sell(Some("HALF"))?;
    assert_eq!(
        third.lines[0].discount_minor, 2_250,
        "coupon applies with its code"
    );
    assert_eq!(third.sale.total_minor, 4_499 - 2_250 + 21_600 - 10_800);
    Ok(())
}

#[test]
fn tax_exempt_customers_pay_no_tax_and_untaxed_products_none() -> R {
    let shop = shop(&[("caps", settings(|_| {}))])?;
    let caps = shop.store.tenant(&"caps".parse()?)?;
    let c = catalog(&caps)?;
    let mut exempt = c.customer.clone();
    exempt.tax_exempt = true;
    caps.update(&c.admin, &exempt)?;
    let r = caps.checkout(
        &c.cashier,
        &Checkout::new()
            .customer(c.customer.id)
            .line(LineItem::product(c.oil.id, 1_000))
            .tender(Tender::Card {
                amount_minor: 809,
                reference: "AUTH-1".into(),
            }),
    )?;
    assert_eq!((r.sale.tax_minor, r.sale.total_minor), (0, 809));
    Ok(())
}

/// Runs a flow that must be refused and checks that not a row or balance changed.
fn refused<T: std::fmt::Debug>(
    shop: &Shop,
    flow: impl FnOnce() -> pos_tenancy::Result<T>,
) -> R<FlowError> {
    let before = shop.snapshot("caps")?;
    let err = flow().expect_err("the flow must be refused");
    assert_eq!(
        shop.snapshot("caps")?,
        before,
        "a refused flow wrote nothing"
    );
    Ok(flow_error(err))
}

#[test]
fn business_rules_and_bad_input_are_refused_and_write_nothing() -> R {
    let shop = shop(&[("caps", settings(|_| {}))])?;
    let caps = shop.store.tenant(&"caps".parse()?)?;
    let c = catalog(&caps)?;
    let card = caps.issue_gift_card(&c.cashier, "GC-1", 1_000, None, None)?;
    let cash = |n| Tender::Cash { tendered_minor: n };
    let one = |p: &Product| Checkout::new().line(LineItem::product(p.id, 1_000));

    let e = refused(&shop, || {
        caps.checkout(
            &c.cashier,
            &Checkout::new()
                .line(LineItem::product(c.oil.id, 11_000))
                .tender(cash(99_999)),
        )
    })?;
    assert!(
        matches!(
            e,
            FlowError::InsufficientStock {
                on_hand_milli: 10_000,
                wanted_milli: 11_000,
                ..
            }
        ),
        "{e}"
    );
    // The same product on two lines counts together.
    let e = refused(&shop, || {
        caps.checkout(
            &c.cashier,
            &one(&c.oil)
                .line(LineItem::product(c.oil.id, 9_500))
                .tender(cash(99_999)),
        )
    })?;
    assert!(matches!(
        e,
        FlowError::InsufficientStock {
            wanted_milli: 10_500,
            ..
        }
    ));
    let e = refused(&shop, || {
        caps.checkout(
            &c.cashier,
            &one(&c.rotor).tender(Tender::GiftCard {
                card_id: card.id,
                amount_minor: 13_000,
            }),
        )
    })?;
    assert!(
        matches!(
            e,
            FlowError::GiftCardBalance {
                balance_minor: 1_000,
                ..
            }
        ),
        "{e}"
    );
    let e = refused(&shop, || {
        caps.checkout(
            &c.cashier,
            &one(&c.rotor)
                .customer(c.customer.id)
                .tender(Tender::StoreCredit {
                    amount_minor: 11_754,
                })
                .tender(Tender::StoreCredit {
                    amount_minor: 10_000,
                }),
        )
    })?;
    assert!(matches!(e, FlowError::CreditLimit { .. }), "{e}");
    let e = refused(&shop, || {
        caps.checkout(&c.cashier, &one(&c.oil).tender(cash(100)))
    })?;
    assert!(
        matches!(
            e,
            FlowError::Underpaid {
                due_minor: 979,
                paid_minor: 100
            }
        ),
        "{e}"
    );
    let e = refused(&shop, || {
        caps.checkout(
            &c.cashier,
            &one(&c.oil).tender(Tender::Card {
                amount_minor: 5_000,
                reference: "A".into(),
            }),
        )
    })?;
    assert!(matches!(e, FlowError::Overpaid { .. }), "{e}");
    let e = refused(&shop, || {
        caps.checkout(
            &c.cashier,
            &one(&c.oil).tender(Tender::Card {
                amount_minor: 979,
                reference: " ".into(),
            }),
        )
    })?;
    assert!(matches!(e, FlowError::Empty { .. }), "{e}");
    let e = refused(&shop, || {
        caps.checkout(
            &c.cashier,
            &one(&c.oil)
                .customer(c.customer.id)
                .tender(Tender::Loyalty { points: 5 }),
        )
    })?;
    assert!(
        matches!(
            e,
            FlowError::LoyaltyPoints {
                points: 0,
                wanted: 5,
                ..
            }
        ),
        "{e}"
    );
    let e = refused(&shop, || {
        caps.checkout(
            &c.cashier,
            &Checkout::new()
                .line(LineItem::product(c.oil.id, 0))
                .tender(cash(0)),
        )
    })?;
    assert!(matches!(e, FlowError::Quantity { line: 1, .. }), "{e}");
    let e = refused(&shop, || {
        caps.checkout(&c.cashier, &Checkout::new().tender(cash(1)))
    })?;
    assert!(matches!(e, FlowError::NoLines { .. }), "{e}");
    let e = refused(&shop, || {
        caps.checkout(
            &c.cashier,
            &one(&c.oil).tender(Tender::StoreCredit { amount_minor: 979 }),
        )
    })?;
    assert!(
        matches!(
            e,
            FlowError::NoAccount {
                account: "store_credit",
                ..
            }
        ),
        "{e}"
    );
    let e = refused(&shop, || caps.redeem_gift_card(&c.cashier, card.id, 1_001))?;
    assert!(matches!(e, FlowError::GiftCardBalance { .. }), "{e}");
    let e = refused(&shop, || caps.charge_credit(&c.cashier, c.credit, 20_001))?;
    assert!(matches!(e, FlowError::CreditLimit { .. }), "{e}");
    let e = refused(&shop, || {
        caps.adjust_stock(&c.admin, c.oil.id, "main", -1_000, "")
    })?;
    assert!(matches!(e, FlowError::Empty { .. }), "{e}");
    // Writing off more than is on hand is refused like selling it.
    let e = refused(&shop, || {
        caps.adjust_stock(&c.admin, c.oil.id, "main", -10_001, "theft")
    })?;
    assert!(
        matches!(
            e,
            FlowError::InsufficientStock {
                on_hand_milli: 10_000,
                wanted_milli: 10_001,
                ..
            }
        ),
        "{e}"
    );
    let e = refused(&shop, || {
        caps.checkout(&c.cashier, &one(&c.oil).location(" ").tender(cash(99_999)))
    })?;
    assert!(matches!(e, FlowError::Empty { what: "a location" }), "{e}");
    // A point worth nothing would let points move without money: the settings refuse it.
    assert!(matches!(
        caps.update_settings(
            &c.admin,
            &settings(|s| s.rules.loyalty_point_value_minor = 0)
        ),
        Err(Error::Settings(_))
    ));
    let mut inactive = c.pads.clone();
    inactive.active = false;
    caps.update(&c.admin, &inactive)?;
    let e = refused(&shop, || {
        caps.checkout(&c.cashier, &one(&c.pads).tender(cash(99_999)))
    })?;
    assert!(matches!(e, FlowError::ProductInactive { .. }), "{e}");
    // Not a business rule: a cashier may not adjust stock, and another tenant's id is unknown.
    let before = shop.snapshot("caps")?;
    assert!(matches!(
        caps.adjust_stock(&c.cashier, c.oil.id, "main", 1_000, "found"),
        Err(Error::PermissionDenied { .. })
    ));
    assert!(matches!(
        caps.checkout(
            &c.cashier,
            &Checkout::new()
                .line(LineItem::product(RowId::new(), 1_000))
                .tender(cash(1))
        ),
        Err(Error::NotFound {
            table: "products",
            ..
        })
    ));
    assert_eq!(shop.snapshot("caps")?, before);
    Ok(())
}

#[test]
fn the_tenant_settings_can_allow_what_is_refused_by_default() -> R {
    let shop = shop(&[(
        "caps",
        settings(|s| {
            s.rules.allow_negative_stock = true;
            s.rules.allow_gift_card_overdraw = true;
            s.rules.allow_credit_over_limit = true;
        }),
    )])?;
    let caps = shop.store.tenant(&"caps".parse()?)?;
    let c = catalog(&caps)?;
    let card = caps.issue_gift_card(&c.cashier, "GC-1", 1_000, None, None)?;
    let r = caps.checkout(
        &c.cashier,
        &Checkout::new()
            .customer(c.customer.id)
            .line(LineItem::product(c.oil.id, 12_000))
            .tender(Tender::GiftCard {
                card_id: card.id,
                amount_minor: 5_000,
            })
            .tender(Tender::StoreCredit {
                amount_minor: r_total(&caps, &c, 12_000)? - 5_000,
            }),
    )?;
    assert_eq!(caps.stock_on_hand(c.oil.id, "main")?, -2_000);
    assert_eq!(caps.gift_card_balance(card.id)?, -4_000);
    assert_eq!(caps.credit_owed(c.credit)?, r.sale.total_minor - 5_000);
    assert!(caps.credit_owed(c.credit)? > 0);
    assert!(shop.store.verify()?.is_ok());
    Ok(())
}

/// The total of `qty` oil for the catalog's customer (trade price 8.09, taxed 8.875 %).
fn r_total(_t: &Tenant<'_>, _c: &Catalog, qty: i64) -> R<i64> {
    let gross = (809 * qty + 500) / 1000;
    let tax = (gross * 88_750 + 500_000) / 1_000_000;
    Ok(gross + tax)
}

#[test]
fn gift_cards_loyalty_and_store_credit_are_sums_of_their_ledgers() -> R {
    let shop = shop(&[("caps", settings(|s| s.tax_rates.clear()))])?;
    let caps = shop.store.tenant(&"caps".parse()?)?;
    let c = catalog(&caps)?;
    let card = caps.issue_gift_card(&c.cashier, "GC-9", 5_000, Some(c.customer.id), None)?;
    assert_eq!(caps.top_up_gift_card(&c.cashier, card.id, 2_500)?, 7_500);
    assert_eq!(caps.redeem_gift_card(&c.cashier, card.id, 500)?, 7_000);
    // 10 oils at the trade price, 80.90: 80 points on 80.90 (1 point per dollar, rounded down).
    let r = caps.checkout(
        &c.cashier,
        &Checkout::new()
            .customer(c.customer.id)
            .line(LineItem::product(c.oil.id, 10_000))
            .tender(Tender::GiftCard {
                card_id: card.id,
                amount_minor: 7_000,
            })
            .tender(Tender::StoreCredit {
                amount_minor: 1_090,
            }),
    )?;
    assert_eq!(r.sale.total_minor, 8_090);
    assert_eq!(r.points_earned, 80);
    assert_eq!(caps.gift_card_balance(card.id)?, 0);
    assert_eq!(caps.loyalty_points(c.loyalty)?, 80);
    assert_eq!(caps.credit_owed(c.credit)?, 1_090);
    assert_eq!(caps.pay_credit(&c.cashier, c.credit, 1_000)?, 90);
    // Paying with 50 points (worth 0.50) earns points only on the rest.
    caps.receive_stock(&c.admin, c.oil.id, "main", 5_000, None)?;
    let r = caps.checkout(
        &c.cashier,
        &Checkout::new()
            .customer(c.customer.id)
            .line(LineItem::product(c.oil.id, 1_000))
            .tender(Tender::Loyalty { points: 50 })
            .tender(Tender::Cash {
                tendered_minor: 1_000,
            }),
    )?;
    assert_eq!(r.payments[0].amount_minor, 50);
    assert_eq!(r.change_minor, 1_000 - (809 - 50));
    assert_eq!(r.points_earned, 7, "7.59 paid in money");
    assert_eq!(caps.loyalty_points(c.loyalty)?, 80 - 50 + 7);
    assert_eq!(caps.redeem_points(&c.cashier, c.loyalty, 37)?, 0);
    // An expired card takes nothing.
    let old = caps.issue_gift_card(
        &c.cashier,
        "GC-OLD",
        100,
        None,
        Timestamp::from_millis(Timestamp::now().as_millis() + 1),
    )?;
    std::thread::sleep(std::time::Duration::from_millis(5));
    let e = flow_error(
        caps.redeem_gift_card(&c.cashier, old.id, 50)
            .expect_err("expired"),
    );
    assert!(matches!(e, FlowError::GiftCardUnusable { .. }), "{e}");
    assert!(shop.store.verify()?.is_ok());
    Ok(())
}

#[test]
fn stock_is_received_adjusted_and_counted_on_its_ledger() -> R {
    let shop = shop(&[("caps", settings(|_| {}))])?;
    let caps = shop.store.tenant(&"caps".parse()?)?;
    let c = catalog(&caps)?;
    assert_eq!(
        caps.receive_stock(&c.admin, c.pads.id, "back", 4_000, Some(2_000))?,
        4_000
    );
    assert_eq!(
        caps.adjust_stock(&c.admin, c.pads.id, "back", -1_500, "damaged")?,
        2_500
    );
    assert_eq!(caps.count_stock(&c.admin, c.pads.id, "back", 3_000)?, 3_000);
    assert_eq!(
        caps.stock_on_hand(c.pads.id, "main")?,
        10_000,
        "locations apart"
    );
    let rows = caps.query(
        "SELECT kind, quantity_milli FROM inventory_transactions WHERE location = 'back' ORDER BY created_at, kind",
    )?;
    let kinds: Vec<(String, i64)> = rows
        .rows
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or("").to_owned(),
                r[1].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert!(kinds.contains(&("count".into(), 500)), "{kinds:?}");
    assert!(kinds.contains(&("adjust".into(), -1_500)));
    Ok(())
}

#[test]
fn commission_goes_by_the_most_specific_rule() -> R {
    let shop = shop(&[("caps", settings(|s| s.tax_rates.clear()))])?;
    let caps = shop.store.tenant(&"caps".parse()?)?;
    let c = catalog(&caps)?;
    let now = Timestamp::now();
    let rule = |name: &str, user, category, rate| CommissionRule {
        id: RowId::new(),
        name: name.into(),
        user_id: user,
        category_id: category,
        rate_ppm: rate,
        active: true,
        created_at: now,
    };
    let everyone = rule("Everyone", None, None, 10_000);
    let brakes = rule("Brakes", None, Some(c.brakes), 50_000);
    let mine = rule(
        "Till on brakes",
        Some(c.cashier.user_id()),
        Some(c.brakes),
        80_000,
    );
    for r in [&everyone, &brakes, &mine] {
        caps.insert(&c.admin, r)?;
    }
    let r = caps.checkout(
        &c.cashier,
        &Checkout::new()
            .line(LineItem::product(c.pads.id, 1_000))
            .line(LineItem::product(c.oil.id, 1_000))
            .tender(Tender::Cash {
                tendered_minor: 10_000,
            }),
    )?;
    let mut got: Vec<(RowId, i64)> = r
        .commissions
        .iter()
        .map(|c| (c.rule_id.expect("rule"), c.amount_minor))
        .collect();
    got.sort();
    let mut want = vec![(mine.id, 400), (everyone.id, 9)];
    want.sort();
    assert_eq!(
        got, want,
        "8 % of 49.99 and 1 % of 8.99, rounded half away from zero"
    );
    Ok(())
}

#[test]
fn two_tenants_doing_the_same_flows_never_touch_each_other() -> R {
    let shop = shop(&[("caps", settings(|_| {})), ("rival", settings(|_| {}))])?;
    let caps = shop.store.tenant(&"caps".parse()?)?;
    let rival = shop.store.tenant(&"rival".parse()?)?;
    let a = catalog(&caps)?;
    let b = catalog(&rival)?;
    let card = caps.issue_gift_card(&a.cashier, "GC-1", 1_000, None, None)?;
    rival.issue_gift_card(&b.cashier, "GC-1", 3_000, None, None)?;
    caps.checkout(
        &a.cashier,
        &Checkout::new()
            .line(LineItem::product(a.oil.id, 1_000))
            .tender(Tender::Cash {
                tendered_minor: 2_000,
            }),
    )?;
    assert_eq!(caps.stock_on_hand(a.oil.id, "main")?, 9_000);
    assert_eq!(rival.stock_on_hand(b.oil.id, "main")?, 10_000);
    let rival_before = shop.snapshot("rival")?;
    // Caps' ids mean nothing to the rival's handle, and the rival's actor nothing to caps'.
    assert!(matches!(
        rival.checkout(
            &b.cashier,
            &Checkout::new()
                .line(LineItem::product(a.oil.id, 1_000))
                .tender(Tender::Cash {
                    tendered_minor: 5_000
                })
        ),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        rival.redeem_gift_card(&b.cashier, card.id, 10),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        caps.checkout(
            &b.cashier,
            &Checkout::new()
                .line(LineItem::product(a.oil.id, 1_000))
                .tender(Tender::Cash {
                    tendered_minor: 5_000
                })
        ),
        Err(Error::ActorTenantMismatch { .. })
    ));
    assert_eq!(rival.stock_on_hand(a.oil.id, "main")?, 0);
    assert_eq!(rival.gift_card_balance(card.id)?, 0);
    assert_eq!(shop.snapshot("rival")?, rival_before);
    assert!(shop.store.verify()?.is_ok());
    Ok(())
}

#[test]
fn a_checkout_inside_a_transaction_goes_with_it() -> R {
    let shop = shop(&[("caps", settings(|_| {}))])?;
    let mut caps = shop.store.tenant(&"caps".parse()?)?;
    let c = catalog(&caps)?;
    let before = shop.snapshot("caps")?;
    {
        let tx = caps.transaction()?;
        tx.checkout(
            &c.cashier,
            &Checkout::new()
                .line(LineItem::product(c.oil.id, 1_000))
                .tender(Tender::Cash {
                    tendered_minor: 2_000,
                }),
        )?;
        // A refused flow inside the transaction leaves the earlier one standing.
        assert!(tx
            .checkout(
                &c.cashier,
                &Checkout::new().tender(Tender::Cash { tendered_minor: 1 })
            )
            .is_err());
        assert_eq!(tx.stock_on_hand(c.oil.id, "main")?, 9_000);
        tx.rollback()?;
    }
    assert_eq!(shop.snapshot("caps")?, before);
    Ok(())
}

// ------------------------------------------------------------------------ property tests

#[derive(Debug, Clone)]
enum Step {
    Receive(usize, i64),
    Adjust(usize, i64),
    Sell(Vec<(usize, i64)>, Pay),
    Issue(i64),
    Redeem(i64),
    PayCredit(i64),
    /// Refund half of the first line of an earlier sale, in cash.
    RefundHalf(usize),
    /// Void an earlier sale.
    Void(usize),
    /// Open a layaway of these lines with half down; then 0 completes it (after paying the
    /// rest), 1 cancels it, 2 leaves it open.
    Layaway(Vec<(usize, i64)>, u8),
}

#[derive(Debug, Clone)]
enum Pay {
    Cash(i64),
    GiftAndCash(i64),
    CreditAndCash(i64),
    PointsAndCash(i64),
}

fn step() -> impl Strategy<Value = Step> {
    let pay = prop_oneof![
        (0i64..5_000).prop_map(Pay::Cash),
        (1i64..3_000).prop_map(Pay::GiftAndCash),
        (1i64..3_000).prop_map(Pay::CreditAndCash),
        (1i64..200).prop_map(Pay::PointsAndCash),
    ];
    prop_oneof![
        (0usize..3, 1i64..20_000).prop_map(|(p, q)| Step::Receive(p, q)),
        (0usize..3, -5_000i64..5_000).prop_map(|(p, q)| Step::Adjust(p, q)),
        (prop::collection::vec((0usize..3, 1i64..4_000), 1..4), pay)
            .prop_map(|(l, p)| Step::Sell(l, p)),
        (1i64..10_000).prop_map(Step::Issue),
        (1i64..3_000).prop_map(Step::Redeem),
        (1i64..3_000).prop_map(Step::PayCredit),
        (0usize..8).prop_map(Step::RefundHalf),
        (0usize..8).prop_map(Step::Void),
        (
            prop::collection::vec((0usize..3, 1i64..3_000), 1..3),
            0u8..3
        )
            .prop_map(|(l, end)| Step::Layaway(l, end)),
    ]
}

/// Ledger sums, straight from the ledgers, against every balance the handle reports.
fn balances_match(shop: &Shop, t: &Tenant<'_>, c: &Catalog, cards: &[RowId]) -> R {
    let conn = shop.raw()?;
    for p in [&c.pads, &c.oil, &c.rotor] {
        let sum: i64 = conn.query_row(
            "SELECT coalesce(sum(quantity_milli), 0) FROM inventory_transactions
             WHERE tenant_id = 'caps' AND product_id = ?1 AND location = 'main'",
            [p.id.to_string()],
            |r| r.get(0),
        )?;
        assert_eq!(t.stock_on_hand(p.id, "main")?, sum);
    }
    for card in cards {
        let sum: i64 = conn.query_row(
            "SELECT coalesce(sum(amount_minor), 0) FROM gift_card_transactions
             WHERE tenant_id = 'caps' AND gift_card_id = ?1",
            [card.to_string()],
            |r| r.get(0),
        )?;
        assert_eq!(t.gift_card_balance(*card)?, sum);
    }
    let points: i64 = conn.query_row(
        "SELECT coalesce(sum(points), 0) FROM loyalty_transactions WHERE tenant_id = 'caps'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(t.loyalty_points(c.loyalty)?, points);
    let owed: i64 = conn.query_row(
        "SELECT coalesce(sum(amount_minor), 0) FROM credit_transactions WHERE tenant_id = 'caps'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(t.credit_owed(c.credit)?, owed);
    Ok(())
}

/// Every sale: lines add up to its figures, and, once completed, lines plus tax minus discounts
/// equals payments (each cash payment being what was tendered minus the change; a completed
/// layaway's payments are its layaway payments). Refunds and voids are sales with negative
/// figures and balance the same way; an open layaway is not paid yet and a cancelled one's
/// sale is voided.
fn sales_balance(shop: &Shop) -> R {
    let conn = shop.raw()?;
    let bad: i64 = conn.query_row(
        "SELECT count(*) FROM sales s WHERE s.tenant_id = 'caps' AND (
             s.subtotal_minor IS NOT (SELECT sum(l.total_minor - l.tax_minor + l.discount_minor)
                                      FROM sale_lines l WHERE l.tenant_id = s.tenant_id AND l.sale_id = s.id)
          OR s.discount_minor IS NOT (SELECT sum(discount_minor) FROM sale_lines l
                                      WHERE l.tenant_id = s.tenant_id AND l.sale_id = s.id)
          OR s.tax_minor IS NOT (SELECT sum(tax_minor) FROM sale_lines l
                                 WHERE l.tenant_id = s.tenant_id AND l.sale_id = s.id)
          OR s.subtotal_minor - s.discount_minor + s.tax_minor IS NOT s.total_minor
          OR (s.status = 'completed' AND s.total_minor IS NOT
                (SELECT coalesce(sum(coalesce(p.tendered_minor - p.change_minor, p.amount_minor)), 0)
                 FROM sale_payments p WHERE p.tenant_id = s.tenant_id AND p.sale_id = s.id)
              + (SELECT coalesce(sum(lp.amount_minor), 0) FROM layaways l
                 JOIN layaway_payments lp ON lp.tenant_id = l.tenant_id AND lp.layaway_id = l.id
                 WHERE l.tenant_id = s.tenant_id AND l.sale_id = s.id)))",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(bad, 0, "every sale balances");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn balances_equal_their_ledgers_and_every_sale_balances_through_every_flow(
        steps in prop::collection::vec(step(), 1..25),
        negative_stock in any::<bool>(),
    ) {
        let run = || -> R {
            let shop = shop(&[("caps", settings(|s| s.rules.allow_negative_stock = negative_stock))])?;
            let caps = shop.store.tenant(&"caps".parse()?)?;
            let c = catalog(&caps)?;
            let products = [&c.pads, &c.oil, &c.rotor];
            let mut cards: Vec<RowId> = Vec::new();
            let mut sold: Vec<(RowId, RowId, i64)> = Vec::new();
            for (i, s) in steps.iter().enumerate() {
                let before = shop.snapshot("caps")?;
                let outcome: pos_tenancy::Result<()> = match s {
                    Step::Receive(p, q) => caps.receive_stock(&c.admin, products[*p].id, "main", *q, None).map(drop),
                    Step::Adjust(p, q) => caps.adjust_stock(&c.admin, products[*p].id, "main", *q, "prop").map(drop),
                    Step::Issue(a) => caps.issue_gift_card(&c.cashier, &format!("GC-{i}"), *a, None, None).map(|g| cards.push(g.id)),
                    Step::Redeem(a) => match cards.last() {
                        Some(card) => caps.redeem_gift_card(&c.cashier, *card, *a).map(drop),
                        None => Ok(()),
                    },
                    Step::PayCredit(a) => caps.pay_credit(&c.cashier, c.credit, *a).map(drop),
                    Step::RefundHalf(k) => match sold.get(k % sold.len().max(1)) {
                        Some((sale, line, q)) => {
                            let part = Refund::new(*sale, "prop").line(*line, (q / 2).max(1));
                            // The amount due is what the refusal of a wrong tender names.
                            match caps.refund(&c.cashier, &part.clone().tender(RefundTender::Cash { amount_minor: 1 })) {
                                Err(Error::Flow(FlowError::Underpaid { due_minor, .. } | FlowError::Overpaid { due_minor, .. })) => {
                                    assert_eq!(shop.snapshot("caps")?, before);
                                    caps.refund(&c.cashier, &part.tender(RefundTender::Cash { amount_minor: due_minor })).map(drop)
                                }
                                other => other.map(drop),
                            }
                        }
                        None => Ok(()),
                    },
                    Step::Void(k) => match sold.get(k % sold.len().max(1)) {
                        Some((sale, _, _)) => caps.void_sale(&c.admin, *sale, "prop").map(drop),
                        None => Ok(()),
                    },
                    Step::Layaway(lines, end) => {
                        let items: Vec<LineItem> = lines.iter().map(|(p, q)| LineItem::product(products[*p].id, *q)).collect();
                        let order = |deposit| LayawayOrder::new(c.customer.id, items.clone(), Tender::Cash { tendered_minor: deposit });
                        match caps.open_layaway(&c.cashier, &order(i64::MAX / 4)) {
                            Err(Error::Flow(FlowError::LayawayOverpaid { left_minor: total, .. })) => {
                                assert_eq!(shop.snapshot("caps")?, before);
                                let opened = caps.open_layaway(&c.cashier, &order(total / 2));
                                match (opened, end) {
                                    (Ok(l), 0) => {
                                        caps.pay_layaway(&c.cashier, l.layaway.id, &Tender::Cash { tendered_minor: total - total / 2 })?;
                                        let stock: Vec<i64> = products.iter().map(|p| caps.stock_on_hand(p.id, "main")).collect::<pos_tenancy::Result<_>>()?;
                                        match caps.complete_layaway(&c.cashier, l.layaway.id) {
                                            Err(Error::Flow(_)) => {
                                                let after: Vec<i64> = products.iter().map(|p| caps.stock_on_hand(p.id, "main")).collect::<pos_tenancy::Result<_>>()?;
                                                assert_eq!(after, stock, "a refused completion moves no stock");
                                                Ok(())
                                            }
                                            other => other.map(drop),
                                        }
                                    }
                                    (Ok(l), 1) => caps.cancel_layaway(&c.cashier, l.layaway.id).map(drop),
                                    (opened, _) => opened.map(drop),
                                }
                            }
                            other => other.map(drop),
                        }
                    }
                    Step::Sell(lines, pay) => {
                        let mut sale = Checkout::new().customer(c.customer.id);
                        for (p, q) in lines {
                            sale = sale.line(LineItem::product(products[*p].id, *q));
                        }
                        sale = match pay {
                            Pay::Cash(_) => sale,
                            Pay::GiftAndCash(a) => match cards.last() {
                                Some(card) => sale.tender(Tender::GiftCard { card_id: *card, amount_minor: *a }),
                                None => sale,
                            },
                            Pay::CreditAndCash(a) => sale.tender(Tender::StoreCredit { amount_minor: *a }),
                            Pay::PointsAndCash(p) => sale.tender(Tender::Loyalty { points: *p }),
                        };
                        let extra = if let Pay::Cash(e) = pay { *e } else { 0 };
                        sale = sale.tender(Tender::Cash { tendered_minor: 200_000 + extra });
                        caps.checkout(&c.cashier, &sale).map(|r| {
                            sold.push((r.sale.id, r.lines[0].id, r.lines[0].quantity_milli));
                        })
                    }
                };
                match outcome {
                    Ok(()) => {}
                    Err(Error::Flow(_)) => {
                        assert_eq!(shop.snapshot("caps")?, before, "step {i} {s:?} refused and wrote nothing");
                    }
                    Err(e) => return Err(e.into()),
                }
                if !negative_stock {
                    for p in products {
                        assert!(caps.stock_on_hand(p.id, "main")? >= 0);
                    }
                }
            }
            balances_match(&shop, &caps, &c, &cards)?;
            sales_balance(&shop)?;
            let report = shop.store.verify()?;
            assert!(report.is_ok(), "{:?}", report.violations);
            Ok(())
        };
        run().map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}
