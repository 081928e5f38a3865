//! Selling a gift card through the public API: one untaxed sale that takes the money, the card
//! issued with its `issue` row linked to the sale, no points, commission or promotions; refusals
//! that write nothing; refunds and voids of the sale refused; tenants kept apart.

use pos_tenancy::catalog::{
    CommissionRule, CreditAccount, Customer, Device, GiftCard, LoyaltyAccount, Promotion, Sale,
    User,
};
use pos_tenancy::pos::{
    Checkout, FlowError, GiftCardReceipt, GiftCardSale, LineItem, Pos, Refund, RefundTender, Tender,
};
use pos_tenancy::{
    Actor, Error, NewTenant, Plan, Result, Role, RowId, Store, TaxRate, Tenant, TenantAccess,
    TenantSettings, Timestamp,
};

/// A tenant with 8.875 % tax, a 10 % promotion on everything, a 5 % commission rule for
/// everyone, a cashier, and a customer with loyalty and store credit accounts.
struct Shop<'s> {
    t: Tenant<'s>,
    admin: Actor,
    cashier: Actor,
    customer: Customer,
    loyalty: LoyaltyAccount,
    credit: CreditAccount,
}

fn shop<'s>(store: &'s Store, id: &str) -> Result<Shop<'s>> {
    let mut settings = TenantSettings::new("Caps");
    settings.tax_rates.push(TaxRate {
        name: "Sales tax".into(),
        rate_ppm: 88_750,
    });
    store.add_tenant(
        &NewTenant::new(id.parse()?, "Caps")
            .plan(Plan::Pro)
            .settings(settings),
    )?;
    let t = store.tenant(&id.parse()?)?;
    let admin = t.bootstrap_admin("owner", "Owner")?;
    let now = Timestamp::now();
    let user = User {
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
    t.insert(&admin, &user)?;
    let cashier = t.actor(user.id)?;
    t.insert(
        &admin,
        &Promotion {
            id: RowId::new(),
            code: None,
            name: "10 % off everything".into(),
            kind: "percent".into(),
            value: 100_000,
            product_id: None,
            category_id: None,
            starts_at: now,
            ends_at: None,
            usage_limit: None,
            active: true,
        },
    )?;
    t.insert(
        &admin,
        &CommissionRule {
            id: RowId::new(),
            name: "Everyone".into(),
            user_id: None,
            category_id: None,
            rate_ppm: 50_000,
            active: true,
            created_at: now,
        },
    )?;
    let customer = Customer {
        id: RowId::new(),
        code: "C-1".into(),
        first_name: "Ana".into(),
        last_name: "Diaz".into(),
        company: None,
        email: None,
        phone: None,
        price_level_id: None,
        tax_exempt: false,
        notes: None,
        created_at: now,
        updated_at: now,
    };
    t.insert(&admin, &customer)?;
    let loyalty = t.enroll_loyalty(&admin, customer.id, "L-1")?;
    let credit = CreditAccount {
        id: RowId::new(),
        customer_id: customer.id,
        credit_limit_minor: 100_000,
        currency: "USD".into(),
        active: true,
        created_at: now,
    };
    t.insert(&admin, &credit)?;
    Ok(Shop {
        t,
        admin,
        cashier,
        customer,
        loyalty,
        credit,
    })
}

fn flow(e: Error) -> FlowError {
    match e {
        Error::Flow(f) => f,
        other => panic!("expected a flow refusal, got {other:?}"),
    }
}

const TABLES: &[&str] = &[
    "sales",
    "sale_lines",
    "sale_payments",
    "sale_reversals",
    "gift_cards",
    "gift_card_transactions",
    "loyalty_transactions",
    "credit_transactions",
    "commissions",
    "promotion_usage",
];

fn count(t: &Tenant<'_>, sql: &str) -> i64 {
    let r = t.query(sql).expect("query");
    r.rows[0][0].as_i64().expect("a number")
}

/// Row counts of every table the flows write, the outbox, and the balances they move.
fn snapshot(shop: &Shop<'_>) -> Vec<i64> {
    let t = &shop.t;
    let mut out: Vec<i64> = TABLES
        .iter()
        .map(|table| count(t, &format!("SELECT count(*) FROM {table}")))
        .collect();
    out.push(t.pending_operations(100_000).expect("outbox").len() as i64);
    out.push(t.loyalty_points(shop.loyalty.id).expect("points"));
    out.push(t.credit_owed(shop.credit.id).expect("owed"));
    out
}

fn cash(tendered_minor: i64) -> Tender {
    Tender::Cash { tendered_minor }
}

/// The card's ledger rows: (kind, amount, sale).
fn card_rows(t: &Tenant<'_>, card: RowId) -> Vec<(String, i64, Option<String>)> {
    t.query(&format!(
        "SELECT kind, amount_minor, sale_id FROM gift_card_transactions
         WHERE gift_card_id = '{card}' ORDER BY created_at, id"
    ))
    .expect("rows")
    .rows
    .into_iter()
    .map(|r| {
        (
            r[0].as_str().expect("kind").to_owned(),
            r[1].as_i64().expect("amount"),
            r[2].as_str().map(str::to_owned),
        )
    })
    .collect()
}

fn assert_card_sale(shop: &Shop<'_>, sold: &GiftCardReceipt, code: &str, amount: i64) {
    let t = &shop.t;
    let s = &sold.sale;
    assert_eq!(s.status, "completed");
    assert_eq!(
        (
            s.subtotal_minor,
            s.discount_minor,
            s.tax_minor,
            s.total_minor
        ),
        (amount, 0, 0, amount)
    );
    assert_eq!(&t.fetch::<Sale>(s.id).expect("sale"), s);
    let l = &sold.line;
    assert_eq!(l.sale_id, s.id);
    assert_eq!(l.kind, "service");
    assert_eq!(l.product_id, None);
    assert_eq!(l.description, format!("Gift card {code}"));
    assert_eq!(
        (
            l.quantity_milli,
            l.unit_price_minor,
            l.discount_minor,
            l.tax_minor,
            l.total_minor
        ),
        (1_000, amount, 0, 0, amount)
    );
    assert_eq!(
        count(
            t,
            &format!("SELECT count(*) FROM sale_lines WHERE sale_id = '{}'", s.id)
        ),
        1
    );
    let paid: i64 = sold.payments.iter().map(|p| p.amount_minor).sum();
    assert_eq!(paid, amount);
    assert!(sold.payments.iter().all(|p| p.sale_id == s.id));
    assert_eq!(
        &t.fetch::<GiftCard>(sold.card.id).expect("card"),
        &sold.card
    );
    assert_eq!(sold.card.code, code);
    assert_eq!(sold.card.currency, "USD");
    assert!(sold.card.active);
    assert_eq!(t.gift_card_balance(sold.card.id).expect("balance"), amount);
    assert_eq!(
        card_rows(t, sold.card.id),
        vec![("issue".to_owned(), amount, Some(s.id.to_string()))]
    );
    for (table, column) in [
        ("loyalty_transactions", "sale_id"),
        ("commissions", "sale_id"),
        ("promotion_usage", "sale_id"),
        ("inventory_transactions", "sale_id"),
    ] {
        assert_eq!(
            count(
                t,
                &format!("SELECT count(*) FROM {table} WHERE {column} = '{}'", s.id)
            ),
            0,
            "{table}"
        );
    }
}

#[test]
fn a_cash_sale_gives_change_and_loads_the_card_without_points_or_commission() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let expires = Timestamp::from_millis(Timestamp::now().as_millis() + 86_400_000)
        .ok_or(Error::Flow(FlowError::Overflow))?;
    let device = Device {
        id: RowId::new(),
        name: "Till 1".into(),
        kind: "terminal".into(),
        location: None,
        registered_at: Timestamp::now(),
        last_seen_at: None,
        active: true,
    };
    t.insert(&shop.admin, &device)?;
    let before = snapshot(&shop);
    let sold = t.sell_gift_card(
        &shop.cashier,
        &GiftCardSale::new("GC-1", 5_000)
            .customer(shop.customer.id)
            .expires_at(expires)
            .tender(cash(7_000)),
    )?;
    assert_card_sale(&shop, &sold, "GC-1", 5_000);
    assert_eq!(sold.sale.customer_id, Some(shop.customer.id));
    assert_eq!(sold.sale.user_id, shop.cashier.user_id());
    assert_eq!(sold.card.customer_id, Some(shop.customer.id));
    assert_eq!(sold.card.expires_at, Some(expires));
    assert_eq!(sold.change_minor, 2_000);
    assert_eq!(sold.payments.len(), 1);
    let p = &sold.payments[0];
    assert_eq!(
        (
            p.method.as_str(),
            p.amount_minor,
            p.tendered_minor,
            p.change_minor
        ),
        ("cash", 5_000, Some(7_000), 2_000)
    );
    assert_eq!(t.loyalty_points(shop.loyalty.id)?, 0);

    // The rows written: sale, line, payment, card, issue row.
    let after = snapshot(&shop);
    let grew: Vec<(&str, i64)> = TABLES
        .iter()
        .zip(before.iter().zip(&after))
        .map(|(table, (b, a))| (*table, a - b))
        .filter(|(_, d)| *d != 0)
        .collect();
    assert_eq!(
        grew,
        vec![
            ("sales", 1),
            ("sale_lines", 1),
            ("sale_payments", 1),
            ("gift_cards", 1),
            ("gift_card_transactions", 1),
        ]
    );
    // One pending operation per row.
    assert_eq!(after[TABLES.len()] - before[TABLES.len()], 5);

    // On a device, with no customer: a walk-in's card.
    let walk_in = t.sell_gift_card(
        &shop.cashier,
        &GiftCardSale::new("GC-2", 2_500)
            .device(device.id)
            .tender(cash(2_500)),
    )?;
    assert_card_sale(&shop, &walk_in, "GC-2", 2_500);
    assert_eq!(walk_in.sale.device_id, Some(device.id));
    assert_eq!(walk_in.sale.customer_id, None);
    assert_eq!(walk_in.change_minor, 0);

    // Spending the card in a checkout is where points are earned, once.
    let spent = t.checkout(
        &shop.cashier,
        &Checkout::new()
            .customer(shop.customer.id)
            .line(LineItem::service("Labour", 1_000, 2_000, false))
            .tender(Tender::GiftCard {
                card_id: sold.card.id,
                amount_minor: 1_800,
            }),
    )?;
    assert!(spent.points_earned > 0);
    assert_eq!(t.loyalty_points(shop.loyalty.id)?, spent.points_earned);
    assert_eq!(t.gift_card_balance(sold.card.id)?, 3_200);
    assert!(store.verify()?.is_ok());
    Ok(())
}

#[test]
fn card_and_store_credit_pay_for_a_card() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let sold = t.sell_gift_card(
        &shop.cashier,
        &GiftCardSale::new("GC-MIX", 10_000)
            .customer(shop.customer.id)
            .tender(Tender::Card {
                amount_minor: 6_000,
                reference: "AUTH-1".into(),
            })
            .tender(Tender::StoreCredit {
                amount_minor: 3_000,
            })
            .tender(cash(1_000)),
    )?;
    assert_card_sale(&shop, &sold, "GC-MIX", 10_000);
    let methods: Vec<(&str, i64)> = sold
        .payments
        .iter()
        .map(|p| (p.method.as_str(), p.amount_minor))
        .collect();
    assert_eq!(
        methods,
        vec![("card", 6_000), ("store_credit", 3_000), ("cash", 1_000)]
    );
    assert_eq!(sold.payments[0].reference.as_deref(), Some("AUTH-1"));
    assert_eq!(t.credit_owed(shop.credit.id)?, 3_000);

    let by_card = t.sell_gift_card(
        &shop.cashier,
        &GiftCardSale::new("GC-CARD", 2_000).tender(Tender::Card {
            amount_minor: 2_000,
            reference: "AUTH-2".into(),
        }),
    )?;
    assert_card_sale(&shop, &by_card, "GC-CARD", 2_000);

    // The day's takings include the money taken for the cards.
    let day = sold.sale.sold_at.as_datetime().date_naive();
    let totals: Vec<(String, i64, i64)> = t
        .sales_by_payment(day)?
        .into_iter()
        .map(|p| (p.method, p.payments, p.amount_minor))
        .collect();
    assert_eq!(
        totals,
        vec![
            ("cash".to_owned(), 1, 1_000),
            ("card".to_owned(), 2, 8_000),
            ("store_credit".to_owned(), 1, 3_000),
        ]
    );
    Ok(())
}

#[test]
fn refusals_write_nothing() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    // A promotional card to try paying with.
    let promo = t.issue_gift_card(&shop.admin, "PROMO", 10_000, None, None)?;
    t.checkout(
        &shop.cashier,
        &Checkout::new()
            .customer(shop.customer.id)
            .line(LineItem::service("Labour", 1_000, 10_000, false))
            .tender(cash(10_000)),
    )?;
    assert!(t.loyalty_points(shop.loyalty.id)? > 0);
    let before = snapshot(&shop);
    let past = Timestamp::from_millis(Timestamp::now().as_millis() - 1_000)
        .ok_or(Error::Flow(FlowError::Overflow))?;

    let refused = |sale: GiftCardSale| flow(t.sell_gift_card(&shop.cashier, &sale).unwrap_err());
    let e = refused(GiftCardSale::new("GC-1", 5_000).tender(Tender::GiftCard {
        card_id: promo.id,
        amount_minor: 5_000,
    }));
    assert_eq!(
        e,
        FlowError::TenderNotAccepted {
            flow: "a gift card sale",
            method: "gift_card",
        }
    );
    assert!(e.to_string().contains("gift_card"), "{e}");
    let e = refused(
        GiftCardSale::new("GC-1", 5_000)
            .customer(shop.customer.id)
            .tender(Tender::Loyalty { points: 10 })
            .tender(cash(5_000)),
    );
    assert_eq!(
        e,
        FlowError::TenderNotAccepted {
            flow: "a gift card sale",
            method: "loyalty",
        }
    );
    assert!(matches!(
        refused(GiftCardSale::new("  ", 5_000).tender(cash(5_000))),
        FlowError::Empty { .. }
    ));
    assert!(matches!(
        refused(GiftCardSale::new("GC-1", 0).tender(cash(5_000))),
        FlowError::Amount {
            amount_minor: 0,
            ..
        }
    ));
    assert!(matches!(
        refused(GiftCardSale::new("GC-1", -100).tender(cash(5_000))),
        FlowError::Amount { .. }
    ));
    assert_eq!(
        refused(GiftCardSale::new("GC-1", 5_000).tender(cash(4_999))),
        FlowError::Underpaid {
            due_minor: 5_000,
            paid_minor: 4_999,
        }
    );
    assert_eq!(
        refused(GiftCardSale::new("GC-1", 5_000)),
        FlowError::Underpaid {
            due_minor: 5_000,
            paid_minor: 0,
        }
    );
    assert!(matches!(
        refused(GiftCardSale::new("GC-1", 5_000).tender(Tender::Card {
            amount_minor: 6_000,
            reference: "AUTH".into(),
        })),
        FlowError::Overpaid { .. }
    ));
    // Store credit needs a customer with an account.
    assert!(matches!(
        refused(
            GiftCardSale::new("GC-1", 5_000).tender(Tender::StoreCredit {
                amount_minor: 5_000
            })
        ),
        FlowError::NoAccount { .. }
    ));
    assert!(matches!(
        refused(
            GiftCardSale::new("GC-1", 5_000)
                .expires_at(past)
                .tender(cash(5_000))
        ),
        FlowError::GiftCardUnusable { .. }
    ));
    assert_eq!(snapshot(&shop), before);
    assert_eq!(t.gift_card_balance(promo.id)?, 10_000);

    // Another tenant's actor is refused too.
    let other = self::shop(&store, "bolt")?;
    assert!(matches!(
        t.sell_gift_card(
            &other.cashier,
            &GiftCardSale::new("GC-1", 5_000).tender(cash(5_000))
        ),
        Err(Error::ActorTenantMismatch { .. })
    ));
    assert_eq!(snapshot(&shop), before);
    Ok(())
}

#[test]
fn a_card_sale_cannot_be_refunded_or_voided() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let sold = t.sell_gift_card(
        &shop.cashier,
        &GiftCardSale::new("GC-1", 5_000)
            .customer(shop.customer.id)
            .tender(cash(5_000)),
    )?;
    let before = snapshot(&shop);
    let e = flow(
        t.refund(
            &shop.cashier,
            &Refund::new(sold.sale.id, "changed their mind").tender(RefundTender::Cash {
                amount_minor: 5_000,
            }),
        )
        .unwrap_err(),
    );
    assert_eq!(
        e,
        FlowError::SoldGiftCard {
            sale: sold.sale.id,
            card: sold.card.id,
            action: "refund",
        }
    );
    assert!(e.to_string().contains("on the card"), "{e}");
    let e = flow(
        t.void_sale(&shop.admin, sold.sale.id, "mistake")
            .unwrap_err(),
    );
    assert_eq!(
        e,
        FlowError::SoldGiftCard {
            sale: sold.sale.id,
            card: sold.card.id,
            action: "void",
        }
    );
    assert_eq!(snapshot(&shop), before);
    assert_eq!(t.gift_card_balance(sold.card.id)?, 5_000);
    assert_eq!(&t.fetch::<Sale>(sold.sale.id)?, &sold.sale);

    // Spending the sold card does not make that sale a card sale: it voids, back onto the card.
    let spent = t.checkout(
        &shop.cashier,
        &Checkout::new()
            .line(LineItem::service("Labour", 1_000, 1_000, false))
            .tender(Tender::GiftCard {
                card_id: sold.card.id,
                amount_minor: 900,
            }),
    )?;
    t.void_sale(&shop.admin, spent.sale.id, "mistake")?;
    assert_eq!(t.gift_card_balance(sold.card.id)?, 5_000);
    Ok(())
}

#[test]
fn tenants_are_kept_apart() -> Result<()> {
    let store = Store::open_in_memory()?;
    let caps = shop(&store, "caps")?;
    let bolt = shop(&store, "bolt")?;
    let bolt_before = snapshot(&bolt);
    let sold = caps.t.sell_gift_card(
        &caps.cashier,
        &GiftCardSale::new("GC-1", 5_000).tender(cash(5_000)),
    )?;
    assert_eq!(snapshot(&bolt), bolt_before);
    assert!(matches!(
        bolt.t.fetch::<Sale>(sold.sale.id),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        bolt.t.fetch::<GiftCard>(sold.card.id),
        Err(Error::NotFound { .. })
    ));
    // The same code in the other tenant is its own card.
    let same = bolt.t.sell_gift_card(
        &bolt.cashier,
        &GiftCardSale::new("GC-1", 2_000).tender(cash(2_000)),
    )?;
    assert_eq!(caps.t.gift_card_balance(sold.card.id)?, 5_000);
    assert_eq!(bolt.t.gift_card_balance(same.card.id)?, 2_000);
    // A customer of another tenant cannot buy here.
    let before = snapshot(&caps);
    assert!(matches!(
        caps.t.sell_gift_card(
            &caps.cashier,
            &GiftCardSale::new("GC-2", 5_000)
                .customer(bolt.customer.id)
                .tender(cash(5_000))
        ),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(snapshot(&caps), before);
    assert!(store.verify()?.is_ok());
    Ok(())
}

#[test]
fn inside_a_transaction_dropped_it_leaves_nothing() -> Result<()> {
    let store = Store::open_in_memory()?;
    let mut shop = shop(&store, "caps")?;
    let before = snapshot(&shop);
    let (sale, card) = {
        let tx = shop.t.transaction()?;
        let sold = tx.sell_gift_card(
            &shop.cashier,
            &GiftCardSale::new("GC-1", 5_000).tender(cash(5_000)),
        )?;
        // The transaction sees its own writes.
        assert_eq!(tx.gift_card_balance(sold.card.id)?, 5_000);
        assert_eq!(tx.fetch::<Sale>(sold.sale.id)?, sold.sale);
        // A refused sale inside it leaves the earlier one standing.
        assert!(tx
            .sell_gift_card(&shop.cashier, &GiftCardSale::new("GC-2", 5_000))
            .is_err());
        assert_eq!(tx.gift_card_balance(sold.card.id)?, 5_000);
        (sold.sale.id, sold.card.id)
        // Dropped here without a commit.
    };
    assert_eq!(snapshot(&shop), before);
    assert!(matches!(
        shop.t.fetch::<Sale>(sale),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        shop.t.fetch::<GiftCard>(card),
        Err(Error::NotFound { .. })
    ));

    // Committed, it stays.
    let tx = shop.t.transaction()?;
    let sold = tx.sell_gift_card(
        &shop.cashier,
        &GiftCardSale::new("GC-1", 5_000).tender(cash(5_000)),
    )?;
    tx.commit()?;
    assert_card_sale(&shop, &sold, "GC-1", 5_000);
    assert!(store.verify()?.is_ok());
    Ok(())
}
