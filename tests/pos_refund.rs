//! Refunds and voids through the public API: new sales that reverse stock, money, points and
//! commission, the original never edited, refusals that write nothing, tenants kept apart.

mod common;

use pos_tenancy::catalog::{
    CommissionRule, CreditAccount, Customer, GiftCard, LayawayPayment, LoyaltyAccount, Product,
    ProductCategory, Promotion, Sale, SaleLine, SalePayment, User,
};
use pos_tenancy::pos::{
    Checkout, FlowError, LineItem, Pos, Receipt, Refund, RefundReceipt, RefundTender, Tender,
};
use pos_tenancy::{
    Actor, BusinessRules, Error, NewTenant, Plan, Result, Role, RowId, Store, TaxRate, Tenant,
    TenantAccess, TenantSettings, Timestamp,
};

/// A store's tenant with staff, two stocked products (one at an awkward price, with a 12.5 %
/// promotion), a customer with loyalty and store credit accounts, 8.875 % tax and a 5 %
/// commission rule for everyone.
struct Shop<'s> {
    t: Tenant<'s>,
    admin: Actor,
    cashier: Actor,
    oil: Product,
    filter: Product,
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
    let product = |sku: &str, price_minor| Product {
        id: RowId::new(),
        sku: sku.into(),
        barcode: None,
        name: sku.into(),
        description: None,
        brand: None,
        category_id: None,
        kind: "stocked".into(),
        price_minor,
        cost_minor: 100,
        currency: "USD".into(),
        taxable: true,
        reorder_level_milli: 0,
        image: None,
        active: true,
        created_at: now,
        updated_at: now,
    };
    let oil = product("OIL", 899);
    let filter = product("FILTER", 333);
    for p in [&oil, &filter] {
        t.insert(&admin, p)?;
        t.receive_stock(&admin, p.id, "main", 20_000, Some(100))?;
    }
    t.insert(
        &admin,
        &Promotion {
            id: RowId::new(),
            code: None,
            name: "Filters 12.5 % off".into(),
            kind: "percent".into(),
            value: 125_000,
            product_id: Some(filter.id),
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
        oil,
        filter,
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
    "inventory_transactions",
    "gift_card_transactions",
    "loyalty_transactions",
    "credit_transactions",
    "commissions",
    "promotion_usage",
];

/// Row counts of every table a refund writes, the outbox, and the balances it moves.
fn snapshot(shop: &Shop<'_>) -> Vec<i64> {
    let t = &shop.t;
    let mut out: Vec<i64> = TABLES
        .iter()
        .map(|table| {
            let r = t
                .query(&format!("SELECT count(*) FROM {table}"))
                .expect("count");
            r.rows[0][0].as_i64().expect("a count")
        })
        .collect();
    out.push(t.pending_operations(100_000).expect("outbox").len() as i64);
    out.push(t.stock_on_hand(shop.oil.id, "main").expect("stock"));
    out.push(t.stock_on_hand(shop.filter.id, "main").expect("stock"));
    out.push(t.loyalty_points(shop.loyalty.id).expect("points"));
    out.push(t.credit_owed(shop.credit.id).expect("owed"));
    out
}

/// A reversal adds up: its lines sum to its figures, gross − discount + tax = total, its
/// payments sum to its total, and every figure is zero or below.
fn assert_balanced(r: &RefundReceipt) {
    let s = &r.sale;
    assert_eq!(
        s.subtotal_minor - s.discount_minor + s.tax_minor,
        s.total_minor
    );
    let lines_total: i64 = r.lines.iter().map(|l| l.total_minor).sum();
    let lines_tax: i64 = r.lines.iter().map(|l| l.tax_minor).sum();
    let lines_discount: i64 = r.lines.iter().map(|l| l.discount_minor).sum();
    assert_eq!(lines_total, s.total_minor);
    assert_eq!(lines_tax, s.tax_minor);
    assert_eq!(lines_discount, s.discount_minor);
    let paid: i64 = r.payments.iter().map(|p| p.amount_minor).sum();
    assert_eq!(paid, s.total_minor, "payments balance the reversal");
    assert!(s.total_minor <= 0 && s.subtotal_minor <= 0 && s.tax_minor <= 0);
    assert!(r.lines.iter().all(|l| l.quantity_milli < 0));
    assert_eq!(r.lines.len(), r.reversals.len());
    assert!(s.number.starts_with("R-"));
    assert_eq!(s.status, "completed");
}

/// The original sale, its lines and payments are exactly as the checkout wrote them.
fn assert_untouched(t: &Tenant<'_>, sale: &Receipt) {
    assert_eq!(&t.fetch::<Sale>(sale.sale.id).expect("sale"), &sale.sale);
    for l in &sale.lines {
        assert_eq!(&t.fetch::<SaleLine>(l.id).expect("line"), l);
    }
    for p in &sale.payments {
        assert_eq!(&t.fetch::<SalePayment>(p.id).expect("payment"), p);
    }
}

fn commission_sum(t: &Tenant<'_>) -> i64 {
    let r = t
        .query("SELECT coalesce(sum(amount_minor), 0) FROM commissions")
        .expect("sum");
    r.rows[0][0].as_i64().expect("a sum")
}

/// 2 oil, 1.5 filters (discounted) and an hour of labour to the customer; cash covers what
/// the other tenders leave.
fn mixed_sale(shop: &Shop<'_>, tenders: Vec<Tender>) -> Result<Receipt> {
    let mut sale = Checkout::new()
        .customer(shop.customer.id)
        .line(LineItem::product(shop.oil.id, 2_000))
        .line(LineItem::product(shop.filter.id, 1_500))
        .line(LineItem::service("Labour", 1_000, 4_000, false));
    for tender in tenders {
        sale = sale.tender(tender);
    }
    shop.t.checkout(
        &shop.cashier,
        &sale.tender(Tender::Cash {
            tendered_minor: 100_000,
        }),
    )
}

#[test]
fn a_full_refund_returns_stock_money_points_and_commission() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let sale = mixed_sale(&shop, vec![])?;
    assert!(sale.points_earned > 0);
    assert!(commission_sum(t) > 0);
    let owed = t.credit_owed(shop.credit.id)?;
    let r = t.refund(
        &shop.cashier,
        &Refund::new(sale.sale.id, "changed their mind").tender(RefundTender::Cash {
            amount_minor: sale.sale.total_minor,
        }),
    )?;
    assert_balanced(&r);
    assert_eq!(r.sale.total_minor, -sale.sale.total_minor);
    assert_eq!(r.sale.subtotal_minor, -sale.sale.subtotal_minor);
    assert_eq!(r.sale.discount_minor, -sale.sale.discount_minor);
    assert_eq!(r.sale.tax_minor, -sale.sale.tax_minor);
    assert_eq!(r.sale.customer_id, Some(shop.customer.id));
    for (orig, rev) in sale.lines.iter().zip(&r.lines) {
        assert_eq!(rev.quantity_milli, -orig.quantity_milli);
        assert_eq!(rev.total_minor, -orig.total_minor);
        assert_eq!(rev.product_id, orig.product_id);
    }
    assert!(r.reversals.iter().all(|x| x.kind == "refund"));
    assert_eq!(t.stock_on_hand(shop.oil.id, "main")?, 20_000);
    assert_eq!(t.stock_on_hand(shop.filter.id, "main")?, 20_000);
    assert_eq!(r.points_reversed, sale.points_earned);
    assert_eq!(t.loyalty_points(shop.loyalty.id)?, 0);
    assert_eq!(commission_sum(t), 0);
    assert_eq!(t.credit_owed(shop.credit.id)?, owed);
    assert_untouched(t, &sale);
    // Nothing is left to refund.
    let before = snapshot(&shop);
    let e = flow(
        t.refund(&shop.cashier, &Refund::new(sale.sale.id, "again"))
            .unwrap_err(),
    );
    assert!(matches!(e, FlowError::State { .. }), "{e:?}");
    assert_eq!(snapshot(&shop), before);
    Ok(())
}

#[test]
fn a_partial_refund_by_line_goes_back_to_store_credit() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let sale = mixed_sale(
        &shop,
        vec![Tender::StoreCredit {
            amount_minor: 1_000,
        }],
    )?;
    assert_eq!(t.credit_owed(shop.credit.id)?, 1_000);
    let points = t.loyalty_points(shop.loyalty.id)?;
    let oil_line = &sale.lines[0];
    // One of the two bottles of oil: 899 and its tax, 8.875 % of 1798 is 159.57 → 160, half
    // of that is 80.
    let r = t.refund(
        &shop.cashier,
        &Refund::new(sale.sale.id, "one bottle leaked")
            .line(oil_line.id, 1_000)
            .tender(RefundTender::StoreCredit { amount_minor: 979 }),
    )?;
    assert_balanced(&r);
    assert_eq!(r.lines.len(), 1);
    assert_eq!(r.lines[0].quantity_milli, -1_000);
    assert_eq!(r.sale.subtotal_minor, -899);
    assert_eq!(r.sale.tax_minor, -80);
    assert_eq!(r.sale.total_minor, -979);
    assert_eq!(r.reversals[0].quantity_milli, 1_000);
    assert_eq!(r.reversals[0].sale_line_id, oil_line.id);
    assert_eq!(t.credit_owed(shop.credit.id)?, 21);
    assert_eq!(t.stock_on_hand(shop.oil.id, "main")?, 19_000);
    assert_eq!(t.stock_on_hand(shop.filter.id, "main")?, 18_500);
    // Points come back in proportion to the net reversed, rounded half away from zero.
    let net = sale.sale.subtotal_minor - sale.sale.discount_minor;
    let expected = (sale.points_earned * 899 * 2 + net) / (2 * net);
    assert_eq!(r.points_reversed, expected);
    assert_eq!(t.loyalty_points(shop.loyalty.id)?, points - expected);
    // Commission likewise, per earner and rule.
    let earned: i64 = sale.commissions.iter().map(|c| c.amount_minor).sum();
    let expected = (earned * 899 * 2 + net) / (2 * net);
    assert_eq!(r.commissions.len(), 1);
    assert_eq!(r.commissions[0].amount_minor, -expected);
    assert_eq!(r.commissions[0].sale_id, r.sale.id);
    assert_eq!(commission_sum(t), earned - expected);
    // The other bottle, in cash, onto another shelf.
    let r = t.refund(
        &shop.cashier,
        &Refund::new(sale.sale.id, "the other one too")
            .line(oil_line.id, 1_000)
            .location("back")
            .tender(RefundTender::Cash { amount_minor: 979 }),
    )?;
    assert_balanced(&r);
    assert_eq!(r.payments[0].method, "cash");
    assert_eq!(t.stock_on_hand(shop.oil.id, "main")?, 19_000);
    assert_eq!(t.stock_on_hand(shop.oil.id, "back")?, 1_000);
    assert_untouched(t, &sale);
    Ok(())
}

#[test]
fn a_line_refunded_in_awkward_parts_returns_exactly_its_total() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    // 7 filters at 3.33 with 12.5 % off and 8.875 % tax: every figure rounds.
    let sale = t.checkout(
        &shop.cashier,
        &Checkout::new()
            .customer(shop.customer.id)
            .line(LineItem::product(shop.filter.id, 7_000))
            .tender(Tender::Cash {
                tendered_minor: 100_000,
            }),
    )?;
    let line = &sale.lines[0];
    assert!(line.discount_minor > 0 && line.tax_minor > 0);
    let mut refunds = Vec::new();
    let (mut returned, mut taxed, mut discounted) = (0, 0, 0);
    for part in [1_001, 1_499, 2_500, 333, 1_667] {
        let due = {
            // Price the part first in a refund that is refused for its tender, to learn the
            // total; the refusal writes nothing.
            let e = flow(
                t.refund(
                    &shop.cashier,
                    &Refund::new(sale.sale.id, "probe")
                        .line(line.id, part)
                        .tender(RefundTender::Cash {
                            amount_minor: 1_000_000,
                        }),
                )
                .unwrap_err(),
            );
            match e {
                FlowError::Overpaid { due_minor, .. } => due_minor,
                other => panic!("{other:?}"),
            }
        };
        let r = t.refund(
            &shop.cashier,
            &Refund::new(sale.sale.id, "returned in parts")
                .line(line.id, part)
                .tender(RefundTender::Cash { amount_minor: due }),
        )?;
        assert_balanced(&r);
        returned -= r.sale.total_minor;
        taxed -= r.sale.tax_minor;
        discounted -= r.sale.discount_minor;
        refunds.push(r);
    }
    assert_eq!(returned, line.total_minor);
    assert_eq!(taxed, line.tax_minor);
    assert_eq!(discounted, line.discount_minor);
    assert_eq!(t.stock_on_hand(shop.filter.id, "main")?, 20_000);
    let reversed_points: i64 = refunds.iter().map(|r| r.points_reversed).sum();
    assert_eq!(reversed_points, sale.points_earned);
    assert_eq!(t.loyalty_points(shop.loyalty.id)?, 0);
    assert_eq!(commission_sum(t), 0);
    // Nothing is left of the line.
    let before = snapshot(&shop);
    let e = flow(
        t.refund(
            &shop.cashier,
            &Refund::new(sale.sale.id, "once more").line(line.id, 1),
        )
        .unwrap_err(),
    );
    assert_eq!(
        e,
        FlowError::ReverseTooMuch {
            line: line.id,
            remaining_milli: 0,
            wanted_milli: 1
        }
    );
    assert_eq!(snapshot(&shop), before);
    assert_untouched(t, &sale);
    // Every kept balance still equals its ledger, every reference resolves.
    let report = store.verify()?;
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    Ok(())
}

#[test]
fn refusals_write_nothing() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let sale = mixed_sale(&shop, vec![])?;
    let other = mixed_sale(&shop, vec![])?;
    let oil = &sale.lines[0];
    let before = snapshot(&shop);
    let refused = |refund: Refund| flow(t.refund(&shop.cashier, &refund).unwrap_err());
    let cash = |amount_minor| RefundTender::Cash { amount_minor };

    let e = refused(Refund::new(sale.sale.id, "too many").line(oil.id, 2_001));
    assert_eq!(
        e,
        FlowError::ReverseTooMuch {
            line: oil.id,
            remaining_milli: 2_000,
            wanted_milli: 2_001
        }
    );
    // Two mentions of one line count together.
    let e = refused(
        Refund::new(sale.sale.id, "too many")
            .line(oil.id, 1_500)
            .line(oil.id, 1_500),
    );
    assert!(matches!(e, FlowError::ReverseTooMuch { .. }), "{e:?}");
    let e = refused(Refund::new(sale.sale.id, "foreign").line(other.lines[0].id, 1_000));
    assert_eq!(
        e,
        FlowError::ForeignLine {
            line: other.lines[0].id,
            sale: sale.sale.id
        }
    );
    for q in [0, -1_000] {
        let e = refused(Refund::new(sale.sale.id, "zero").line(oil.id, q));
        assert!(matches!(e, FlowError::Quantity { .. }), "{e:?}");
    }
    let e = refused(Refund::new(sale.sale.id, " ").line(oil.id, 1_000));
    assert!(matches!(e, FlowError::Empty { .. }), "{e:?}");
    // Tenders must give back exactly the refund (979 for one bottle).
    let one = || Refund::new(sale.sale.id, "one").line(oil.id, 1_000);
    let e = refused(one().tender(cash(978)));
    assert_eq!(
        e,
        FlowError::Underpaid {
            due_minor: 979,
            paid_minor: 978
        }
    );
    let e = refused(one().tender(cash(500)).tender(cash(480)));
    assert!(matches!(e, FlowError::Overpaid { .. }), "{e:?}");
    let e = refused(one().tender(cash(0)).tender(cash(979)));
    assert!(matches!(e, FlowError::Amount { .. }), "{e:?}");
    let e = refused(one().tender(RefundTender::Card {
        amount_minor: 979,
        reference: String::new(),
    }));
    assert!(matches!(e, FlowError::Empty { .. }), "{e:?}");
    assert_eq!(snapshot(&shop), before);
    // A sale to nobody has no store credit to refund to.
    let anonymous = t.checkout(
        &shop.cashier,
        &Checkout::new()
            .line(LineItem::product(shop.oil.id, 1_000))
            .tender(Tender::Cash {
                tendered_minor: 979,
            }),
    )?;
    let before_anon = snapshot(&shop);
    let e = flow(
        t.refund(
            &shop.cashier,
            &Refund::new(anonymous.sale.id, "no account")
                .tender(RefundTender::StoreCredit { amount_minor: 979 }),
        )
        .unwrap_err(),
    );
    assert!(matches!(e, FlowError::NoAccount { .. }), "{e:?}");
    assert_eq!(snapshot(&shop), before_anon);
    // A cashier may refund but not void.
    let e = t
        .void_sale(&shop.cashier, sale.sale.id, "mistake")
        .unwrap_err();
    assert!(matches!(e, Error::PermissionDenied { .. }), "{e:?}");
    // A sale that does not exist.
    let e = t
        .refund(&shop.cashier, &Refund::new(RowId::new(), "ghost"))
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    assert_eq!(snapshot(&shop), before_anon);

    // A refund cannot itself be refunded or voided.
    let r = t.refund(&shop.cashier, &one().tender(cash(979)))?;
    let before = snapshot(&shop);
    let e = flow(
        t.refund(&shop.cashier, &Refund::new(r.sale.id, "refund a refund"))
            .unwrap_err(),
    );
    assert!(matches!(e, FlowError::State { .. }), "{e:?}");
    let e = flow(
        t.void_sale(&shop.admin, r.sale.id, "void a refund")
            .unwrap_err(),
    );
    assert!(matches!(e, FlowError::State { .. }), "{e:?}");
    assert_eq!(snapshot(&shop), before);
    Ok(())
}

#[test]
fn a_void_puts_gift_card_and_cash_back() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let card = t.issue_gift_card(&shop.cashier, "GC-1", 1_500, None, None)?;
    let sale = mixed_sale(
        &shop,
        vec![Tender::GiftCard {
            card_id: card.id,
            amount_minor: 1_200,
        }],
    )?;
    assert_eq!(t.gift_card_balance(card.id)?, 300);
    let r = t.void_sale(&shop.admin, sale.sale.id, "rung up twice")?;
    assert_balanced(&r);
    assert_eq!(r.sale.total_minor, -sale.sale.total_minor);
    assert!(r.reversals.iter().all(|x| x.kind == "void"));
    assert_eq!(t.gift_card_balance(card.id)?, 1_500);
    let card_back: Vec<_> = r
        .payments
        .iter()
        .filter(|p| p.method == "gift_card")
        .collect();
    assert_eq!(card_back.len(), 1);
    assert_eq!(card_back[0].amount_minor, -1_200);
    assert_eq!(card_back[0].gift_card_id, Some(card.id));
    let cash: i64 = r
        .payments
        .iter()
        .filter(|p| p.method == "cash")
        .map(|p| p.amount_minor)
        .sum();
    assert_eq!(cash, -(sale.sale.total_minor - 1_200));
    assert_eq!(t.stock_on_hand(shop.oil.id, "main")?, 20_000);
    assert_eq!(t.stock_on_hand(shop.filter.id, "main")?, 20_000);
    assert_eq!(t.loyalty_points(shop.loyalty.id)?, 0);
    assert_eq!(commission_sum(t), 0);
    assert_untouched(t, &sale);
    // Voided once is voided.
    let before = snapshot(&shop);
    let e = flow(t.void_sale(&shop.admin, sale.sale.id, "again").unwrap_err());
    assert!(matches!(e, FlowError::State { .. }), "{e:?}");
    assert_eq!(snapshot(&shop), before);
    Ok(())
}

#[test]
fn a_void_gives_points_and_store_credit_back() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let first = mixed_sale(&shop, vec![])?;
    let points = t.loyalty_points(shop.loyalty.id)?;
    assert_eq!(points, first.points_earned);
    let sale = mixed_sale(
        &shop,
        vec![
            Tender::Loyalty { points: 40 },
            Tender::StoreCredit { amount_minor: 700 },
        ],
    )?;
    assert_eq!(t.credit_owed(shop.credit.id)?, 700);
    let r = t.void_sale(&shop.admin, sale.sale.id, "wrong customer")?;
    assert_balanced(&r);
    assert_eq!(r.points_returned, 40);
    assert_eq!(r.points_reversed, sale.points_earned);
    assert_eq!(t.loyalty_points(shop.loyalty.id)?, points);
    assert_eq!(t.credit_owed(shop.credit.id)?, 0);
    let report = store.verify()?;
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    Ok(())
}

#[test]
fn a_void_after_a_partial_refund_is_refused() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let sale = mixed_sale(&shop, vec![])?;
    t.refund(
        &shop.cashier,
        &Refund::new(sale.sale.id, "one bottle")
            .line(sale.lines[0].id, 1_000)
            .restock(false)
            .tender(RefundTender::Cash { amount_minor: 979 }),
    )?;
    // Not restocked.
    assert_eq!(t.stock_on_hand(shop.oil.id, "main")?, 18_000);
    let before = snapshot(&shop);
    let e = flow(
        t.void_sale(&shop.admin, sale.sale.id, "whole sale")
            .unwrap_err(),
    );
    assert!(matches!(e, FlowError::State { .. }), "{e:?}");
    assert_eq!(snapshot(&shop), before);
    Ok(())
}

#[test]
fn tenants_never_touch_each_others_sales() -> Result<()> {
    let store = Store::open_in_memory()?;
    let a = shop(&store, "caps")?;
    let b = shop(&store, "bolt")?;
    let sale_b = mixed_sale(&b, vec![])?;
    let sale_a = mixed_sale(&a, vec![])?;
    let card_b = b.t.issue_gift_card(&b.cashier, "GC-B", 500, None, None)?;
    let (before_a, before_b) = (snapshot(&a), snapshot(&b));
    // B's sale through A's handle does not exist.
    let e =
        a.t.refund(&a.cashier, &Refund::new(sale_b.sale.id, "not ours"))
            .unwrap_err();
    assert!(matches!(e, Error::NotFound { table: "sales", .. }), "{e:?}");
    let e =
        a.t.void_sale(&a.admin, sale_b.sale.id, "not ours")
            .unwrap_err();
    assert!(matches!(e, Error::NotFound { table: "sales", .. }), "{e:?}");
    // B's line on A's sale is a foreign line; B's gift card is not found.
    let e = flow(
        a.t.refund(
            &a.cashier,
            &Refund::new(sale_a.sale.id, "mixed").line(sale_b.lines[0].id, 1_000),
        )
        .unwrap_err(),
    );
    assert!(matches!(e, FlowError::ForeignLine { .. }), "{e:?}");
    let e =
        a.t.refund(
            &a.cashier,
            &Refund::new(sale_a.sale.id, "b's card")
                .line(sale_a.lines[0].id, 1_000)
                .tender(RefundTender::GiftCard {
                    card_id: card_b.id,
                    amount_minor: 979,
                }),
        )
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    // B's actor on A's handle.
    let e =
        a.t.refund(&b.cashier, &Refund::new(sale_a.sale.id, "wrong actor"))
            .unwrap_err();
    assert!(matches!(e, Error::ActorTenantMismatch { .. }), "{e:?}");
    assert_eq!(snapshot(&a), before_a);
    assert_eq!(snapshot(&b), before_b);
    // A refund in A writes nothing of B's.
    a.t.refund(
        &a.cashier,
        &Refund::new(sale_a.sale.id, "all").tender(RefundTender::Cash {
            amount_minor: sale_a.sale.total_minor,
        }),
    )?;
    assert_eq!(snapshot(&b), before_b);
    assert_untouched(&b.t, &sale_b);
    Ok(())
}

/// A sale of one bottle of oil (979 with tax) to the customer, paid by these tenders.
fn one_bottle(shop: &Shop<'_>, tenders: Vec<Tender>) -> Result<Receipt> {
    let mut sale = Checkout::new()
        .customer(shop.customer.id)
        .line(LineItem::product(shop.oil.id, 1_000));
    for tender in tenders {
        sale = sale.tender(tender);
    }
    let receipt = shop.t.checkout(&shop.cashier, &sale)?;
    assert_eq!(receipt.sale.total_minor, 979);
    Ok(receipt)
}

fn exceeds(
    method: &'static str,
    gift_card: Option<RowId>,
    sale_took: i64,
    refunded: i64,
    wanted: i64,
) -> FlowError {
    FlowError::RefundExceedsTender {
        method,
        gift_card,
        sale_took,
        refunded,
        wanted,
    }
}

#[test]
fn a_gift_card_sale_goes_back_onto_its_cards_not_in_cash() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let a = t.issue_gift_card(&shop.cashier, "GC-A", 5_000, None, None)?;
    let b = t.issue_gift_card(&shop.cashier, "GC-B", 5_000, None, None)?;
    let other = t.issue_gift_card(&shop.cashier, "GC-C", 5_000, None, None)?;
    let sale = one_bottle(
        &shop,
        vec![
            Tender::GiftCard {
                card_id: a.id,
                amount_minor: 600,
            },
            Tender::GiftCard {
                card_id: b.id,
                amount_minor: 379,
            },
        ],
    )?;
    let balances = |t: &Tenant<'_>| -> Result<Vec<i64>> {
        [a.id, b.id, other.id]
            .iter()
            .map(|c| t.gift_card_balance(*c))
            .collect()
    };
    assert_eq!(balances(t)?, [4_400, 4_621, 5_000]);
    let before = snapshot(&shop);
    let refused = |tenders: Vec<RefundTender>| {
        let mut refund = Refund::new(sale.sale.id, "wrong size");
        for tender in tenders {
            refund = refund.tender(tender);
        }
        flow(t.refund(&shop.cashier, &refund).unwrap_err())
    };
    let card = |card_id, amount_minor| RefundTender::GiftCard {
        card_id,
        amount_minor,
    };
    // Not in cash, not to store credit, not as points: the sale took none of them.
    let e = refused(vec![RefundTender::Cash { amount_minor: 979 }]);
    assert_eq!(e, exceeds("cash", None, 0, 0, 979));
    assert!(e.to_string().contains("the sale took 0 minor units"), "{e}");
    let e = refused(vec![RefundTender::StoreCredit { amount_minor: 979 }]);
    assert_eq!(e, exceeds("store_credit", None, 0, 0, 979));
    // Not onto a card the sale was not paid with, nor more onto a card than it paid.
    let e = refused(vec![card(other.id, 979)]);
    assert_eq!(e, exceeds("gift_card", Some(other.id), 0, 0, 979));
    assert!(e.to_string().contains(&other.id.to_string()), "{e}");
    let e = refused(vec![card(a.id, 979)]);
    assert_eq!(e, exceeds("gift_card", Some(a.id), 600, 0, 979));
    let e = refused(vec![card(a.id, 500), card(a.id, 200), card(b.id, 279)]);
    assert_eq!(e, exceeds("gift_card", Some(a.id), 600, 0, 700));
    assert_eq!(snapshot(&shop), before);
    assert_eq!(balances(t)?, [4_400, 4_621, 5_000]);
    // Onto the cards it came from.
    let r = t.refund(
        &shop.cashier,
        &Refund::new(sale.sale.id, "wrong size")
            .tender(card(a.id, 600))
            .tender(card(b.id, 379)),
    )?;
    assert_balanced(&r);
    assert_eq!(balances(t)?, [5_000, 5_000, 5_000]);
    let back: Vec<_> = r
        .payments
        .iter()
        .map(|p| (p.method.as_str(), p.gift_card_id, p.amount_minor))
        .collect();
    assert_eq!(
        back,
        [
            ("gift_card", Some(a.id), -600),
            ("gift_card", Some(b.id), -379)
        ]
    );
    assert_untouched(t, &sale);
    Ok(())
}

#[test]
fn cash_refunds_of_a_cash_and_card_sale_stop_at_the_cash_it_took() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let sale = mixed_sale(
        &shop,
        vec![Tender::Card {
            amount_minor: 5_000,
            reference: "AUTH-1".into(),
        }],
    )?;
    // Cash counts net of change.
    let cash_paid = sale.sale.total_minor - 5_000;
    let cash: Vec<_> = sale
        .payments
        .iter()
        .filter(|p| p.method == "cash")
        .collect();
    assert_eq!(cash.len(), 1);
    assert_eq!(cash[0].amount_minor, cash_paid);
    assert!(cash_paid > 979 && cash_paid < 2 * 979, "{cash_paid}");
    let oil = &sale.lines[0];
    let bottle = || Refund::new(sale.sale.id, "a bottle").line(oil.id, 1_000);
    let card = |amount_minor| RefundTender::Card {
        amount_minor,
        reference: "RFD-1".into(),
    };
    // The first bottle in cash.
    t.refund(
        &shop.cashier,
        &bottle().tender(RefundTender::Cash { amount_minor: 979 }),
    )?;
    // The second in cash would give back more cash than the sale took.
    let before = snapshot(&shop);
    let e = flow(
        t.refund(
            &shop.cashier,
            &bottle().tender(RefundTender::Cash { amount_minor: 979 }),
        )
        .unwrap_err(),
    );
    assert_eq!(e, exceeds("cash", None, cash_paid, 979, 979));
    assert_eq!(snapshot(&shop), before);
    // What cash is left, the rest on the card.
    let left = cash_paid - 979;
    let r = t.refund(
        &shop.cashier,
        &bottle()
            .tender(RefundTender::Cash { amount_minor: left })
            .tender(card(979 - left)),
    )?;
    assert_balanced(&r);
    assert_eq!(r.payments[1].reference.as_deref(), Some("RFD-1"));
    // Cash is used up: even one minor unit more is refused; the rest goes to the card.
    let rest = Refund::new(sale.sale.id, "the rest");
    let due = sale.sale.total_minor - 2 * 979;
    let before = snapshot(&shop);
    let e = flow(
        t.refund(
            &shop.cashier,
            &rest
                .clone()
                .tender(RefundTender::Cash { amount_minor: 1 })
                .tender(card(due - 1)),
        )
        .unwrap_err(),
    );
    assert_eq!(e, exceeds("cash", None, cash_paid, cash_paid, 1));
    assert_eq!(snapshot(&shop), before);
    let r = t.refund(&shop.cashier, &rest.tender(card(due)))?;
    assert_balanced(&r);
    let given: i64 = t
        .query("SELECT coalesce(sum(amount_minor), 0) FROM sale_payments WHERE method = 'card'")?
        .rows[0][0]
        .as_i64()
        .unwrap_or(-1);
    assert_eq!(given, 0, "the card got back exactly what it paid");
    assert_untouched(t, &sale);
    Ok(())
}

#[test]
fn points_go_back_only_as_far_as_the_sale_redeemed_them() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    // A cash sale earns points but redeems none: none go back as a tender.
    let cash_sale = mixed_sale(&shop, vec![])?;
    let points = t.loyalty_points(shop.loyalty.id)?;
    assert!(points > 40, "{points}");
    let before = snapshot(&shop);
    let e = flow(
        t.refund(
            &shop.cashier,
            &Refund::new(cash_sale.sale.id, "points instead")
                .line(cash_sale.lines[0].id, 1_000)
                .tender(RefundTender::Loyalty { points: 979 }),
        )
        .unwrap_err(),
    );
    assert_eq!(e, exceeds("loyalty", None, 0, 0, 979));
    assert!(e.to_string().contains("0 points"), "{e}");
    assert_eq!(snapshot(&shop), before);
    // A sale that redeemed 40 points gives back at most 40.
    let sale = one_bottle(
        &shop,
        vec![
            Tender::Loyalty { points: 40 },
            Tender::Cash {
                tendered_minor: 1_000,
            },
        ],
    )?;
    let half = |points, cash| {
        Refund::new(sale.sale.id, "half")
            .line(sale.lines[0].id, 500)
            .tender(RefundTender::Loyalty { points })
            .tender(RefundTender::Cash { amount_minor: cash })
    };
    // Half a bottle is 490: 30 points and 460 in cash.
    let r = t.refund(&shop.cashier, &half(30, 460))?;
    assert_eq!(r.points_returned, 30);
    let before = snapshot(&shop);
    let e = flow(t.refund(&shop.cashier, &half(11, 478)).unwrap_err());
    assert_eq!(e, exceeds("loyalty", None, 40, 30, 11));
    assert_eq!(snapshot(&shop), before);
    let r = t.refund(&shop.cashier, &half(10, 479))?;
    assert_balanced(&r);
    assert_eq!(r.points_returned, 10);
    Ok(())
}

/// Changes the tenant's business rules.
fn set_rules(shop: &Shop<'_>, change: impl FnOnce(&mut BusinessRules)) -> Result<()> {
    let mut settings = shop.t.settings()?;
    change(&mut settings.rules);
    shop.t.update_settings(&shop.admin, &settings)?;
    Ok(())
}

/// (method, amount) of each payment of a refund.
fn paid_back(r: &RefundReceipt) -> Vec<(&str, i64)> {
    r.payments
        .iter()
        .map(|p| (p.method.as_str(), p.amount_minor))
        .collect()
}

#[test]
fn points_go_back_at_the_sales_own_rate_not_todays() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    mixed_sale(&shop, vec![])?;
    assert!(t.loyalty_points(shop.loyalty.id)? >= 50);
    // Paid 50 points worth 2 each and 879 in cash; then a point is worth 1.
    set_rules(&shop, |r| r.loyalty_point_value_minor = 2)?;
    let sale = one_bottle(
        &shop,
        vec![
            Tender::Loyalty { points: 50 },
            Tender::Cash {
                tendered_minor: 879,
            },
        ],
    )?;
    let paid: Vec<_> = sale
        .payments
        .iter()
        .map(|p| (p.method.as_str(), p.amount_minor))
        .collect();
    assert_eq!(paid, [("loyalty", 100), ("cash", 879)]);
    set_rules(&shop, |r| r.loyalty_point_value_minor = 1)?;
    let whole = |points, cash| {
        Refund::new(sale.sale.id, "returned")
            .tender(RefundTender::Loyalty { points })
            .tender(RefundTender::Cash { amount_minor: cash })
    };
    let before = snapshot(&shop);
    // The 50 points are still worth the 100 they paid: 929 in cash is too much, and 100
    // points are more than the sale redeemed.
    let e = flow(t.refund(&shop.cashier, &whole(50, 929)).unwrap_err());
    assert_eq!(
        e,
        FlowError::Overpaid {
            due_minor: 979,
            paid_minor: 1_029
        }
    );
    let e = flow(t.refund(&shop.cashier, &whole(100, 779)).unwrap_err());
    assert_eq!(e, exceeds("loyalty", None, 50, 0, 100));
    assert_eq!(snapshot(&shop), before);
    // The points and the cash that paid.
    let points = t.loyalty_points(shop.loyalty.id)?;
    let r = t.refund(&shop.cashier, &whole(50, 879))?;
    assert_balanced(&r);
    assert_eq!(paid_back(&r), [("loyalty", -100), ("cash", -879)]);
    assert_eq!(r.points_returned, 50);
    assert_eq!(
        t.loyalty_points(shop.loyalty.id)?,
        points + 50 - r.points_reversed
    );
    assert_untouched(t, &sale);
    Ok(())
}

#[test]
fn what_points_cannot_cover_goes_back_in_cash_past_the_cap() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    set_rules(&shop, |r| r.loyalty_points_per_unit = 100)?;
    mixed_sale(&shop, vec![])?;
    set_rules(&shop, |r| {
        r.loyalty_points_per_unit = 1;
        r.loyalty_point_value_minor = 2;
    })?;
    assert!(t.loyalty_points(shop.loyalty.id)? >= 1_079);
    // Two bottles paid wholly with points worth 2 each: a bottle (979) is an odd amount.
    let two_bottles = |tenders: Vec<Tender>| {
        let sale = tenders.into_iter().fold(
            Checkout::new()
                .customer(shop.customer.id)
                .line(LineItem::product(shop.oil.id, 2_000)),
            Checkout::tender,
        );
        let receipt = t.checkout(&shop.cashier, &sale)?;
        assert_eq!(receipt.sale.total_minor, 1_958);
        Ok::<_, Error>(receipt)
    };
    let sale = two_bottles(vec![Tender::Loyalty { points: 979 }])?;
    let bottle = |sale: &Receipt, tenders: Vec<RefundTender>| {
        tenders.into_iter().fold(
            Refund::new(sale.sale.id, "a bottle").line(sale.lines[0].id, 1_000),
            Refund::tender,
        )
    };
    let points = |points| RefundTender::Loyalty { points };
    let cash = |amount_minor| RefundTender::Cash { amount_minor };
    let before = snapshot(&shop);
    // Points alone cannot make 979.
    let e = flow(
        t.refund(&shop.cashier, &bottle(&sale, vec![points(489)]))
            .unwrap_err(),
    );
    assert_eq!(
        e,
        FlowError::Underpaid {
            due_minor: 979,
            paid_minor: 978
        }
    );
    let e = flow(
        t.refund(&shop.cashier, &bottle(&sale, vec![points(490)]))
            .unwrap_err(),
    );
    assert_eq!(
        e,
        FlowError::Overpaid {
            due_minor: 979,
            paid_minor: 980
        }
    );
    // Cash past the cap only by less than one point's value.
    let e = flow(
        t.refund(&shop.cashier, &bottle(&sale, vec![points(488), cash(3)]))
            .unwrap_err(),
    );
    assert_eq!(e, exceeds("cash", None, 0, 0, 3));
    assert_eq!(snapshot(&shop), before);
    // Each bottle: 489 points and the 1 they cannot cover in cash.
    for _ in 0..2 {
        let r = t.refund(&shop.cashier, &bottle(&sale, vec![points(489), cash(1)]))?;
        assert_balanced(&r);
        assert_eq!(paid_back(&r), [("loyalty", -978), ("cash", -1)]);
        assert_eq!(r.points_returned, 489);
    }
    assert_untouched(t, &sale);

    // Once the points are all back there is no remainder to cover: the cash cap holds.
    let sale = two_bottles(vec![
        Tender::Loyalty { points: 100 },
        Tender::Card {
            amount_minor: 1_758,
            reference: "AUTH-2".into(),
        },
    ])?;
    let card = |amount_minor| RefundTender::Card {
        amount_minor,
        reference: "RFD-2".into(),
    };
    let r = t.refund(&shop.cashier, &bottle(&sale, vec![points(100), card(779)]))?;
    assert_balanced(&r);
    assert_eq!(paid_back(&r), [("loyalty", -200), ("card", -779)]);
    let before = snapshot(&shop);
    let e = flow(
        t.refund(&shop.cashier, &bottle(&sale, vec![card(978), cash(1)]))
            .unwrap_err(),
    );
    assert_eq!(e, exceeds("cash", None, 0, 0, 1));
    assert_eq!(snapshot(&shop), before);
    let r = t.refund(&shop.cashier, &bottle(&sale, vec![card(979)]))?;
    assert_balanced(&r);
    assert_untouched(t, &sale);
    Ok(())
}

#[test]
fn a_tenant_may_allow_refunds_to_any_tender() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let settings = t.settings()?;
    assert!(!settings.rules.allow_refund_to_any_tender, "off by default");
    let sale = one_bottle(
        &shop,
        vec![Tender::Card {
            amount_minor: 979,
            reference: "AUTH-1".into(),
        }],
    )?;
    let in_cash = Refund::new(sale.sale.id, "card terminal down")
        .line(sale.lines[0].id, 500)
        .tender(RefundTender::Cash { amount_minor: 490 });
    let before = snapshot(&shop);
    let e = flow(t.refund(&shop.cashier, &in_cash).unwrap_err());
    assert_eq!(e, exceeds("cash", None, 0, 0, 490));
    assert_eq!(snapshot(&shop), before);
    // The manager's override: a card sale refunded in cash and as points.
    let mut allowing = settings.clone();
    allowing.rules.allow_refund_to_any_tender = true;
    t.update_settings(&shop.admin, &allowing)?;
    let r = t.refund(&shop.cashier, &in_cash)?;
    assert_balanced(&r);
    assert_eq!(r.payments[0].method, "cash");
    let points = t.loyalty_points(shop.loyalty.id)?;
    let r = t.refund(
        &shop.cashier,
        &Refund::new(sale.sale.id, "rest as points").tender(RefundTender::Loyalty { points: 489 }),
    )?;
    assert_balanced(&r);
    assert_eq!(r.points_returned, 489);
    assert_eq!(
        t.loyalty_points(shop.loyalty.id)?,
        points + 489 - r.points_reversed
    );
    assert_untouched(t, &sale);
    Ok(())
}

#[test]
fn a_void_gives_each_payment_back_to_its_own_tender() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    mixed_sale(&shop, vec![])?;
    let card = t.issue_gift_card(&shop.cashier, "GC-1", 1_500, None, None)?;
    t.charge_credit(&shop.cashier, shop.credit.id, 250)?;
    let (held, owed, points) = (
        t.gift_card_balance(card.id)?,
        t.credit_owed(shop.credit.id)?,
        t.loyalty_points(shop.loyalty.id)?,
    );
    let sale = mixed_sale(
        &shop,
        vec![
            Tender::GiftCard {
                card_id: card.id,
                amount_minor: 1_200,
            },
            Tender::StoreCredit { amount_minor: 700 },
            Tender::Loyalty { points: 40 },
            Tender::Card {
                amount_minor: 2_000,
                reference: "AUTH-7".into(),
            },
        ],
    )?;
    assert_eq!(sale.payments.len(), 5);
    assert_eq!(t.gift_card_balance(card.id)?, held - 1_200);
    assert_eq!(t.credit_owed(shop.credit.id)?, owed + 700);
    assert_eq!(
        t.loyalty_points(shop.loyalty.id)?,
        points - 40 + sale.points_earned
    );
    let r = t.void_sale(&shop.admin, sale.sale.id, "wrong customer")?;
    assert_balanced(&r);
    // Each payment reversed onto its own method, card and reference, cash net of change.
    let key = |p: &SalePayment| {
        (
            p.method.clone(),
            p.gift_card_id,
            p.reference.clone(),
            p.amount_minor,
        )
    };
    let mut expected: Vec<_> = sale
        .payments
        .iter()
        .map(|p| SalePayment {
            amount_minor: -p.amount_minor,
            ..p.clone()
        })
        .map(|p| key(&p))
        .collect();
    let mut got: Vec<_> = r.payments.iter().map(key).collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(r.points_returned, 40);
    // Every balance as it was before the sale.
    assert_eq!(t.gift_card_balance(card.id)?, held);
    assert_eq!(t.credit_owed(shop.credit.id)?, owed);
    assert_eq!(t.loyalty_points(shop.loyalty.id)?, points);
    assert_untouched(t, &sale);
    let report = store.verify()?;
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    Ok(())
}

/// One bottle of oil (979 with tax) laid away by the customer, 500 down by card and the rest
/// in cash, completed: its sale.
fn one_bottle_laid_away(shop: &Shop<'_>) -> Result<Sale> {
    let t = &shop.t;
    let opened = t.open_layaway(
        &shop.cashier,
        &pos_tenancy::pos::LayawayOrder::new(
            shop.customer.id,
            vec![LineItem::product(shop.oil.id, 1_000)],
            Tender::Card {
                amount_minor: 500,
                reference: "AUTH-L".into(),
            },
        ),
    )?;
    assert_eq!(opened.layaway.total_minor, 979);
    t.pay_layaway(
        &shop.cashier,
        opened.layaway.id,
        &Tender::Cash {
            tendered_minor: 479,
        },
    )?;
    Ok(t.complete_layaway(&shop.cashier, opened.layaway.id)?.sale)
}

#[test]
fn a_completed_layaways_sale_goes_back_to_the_cash_and_card_that_paid_it() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let sale = one_bottle_laid_away(&shop)?;
    assert!(t.loyalty_points(shop.loyalty.id)? > 0);
    assert!(commission_sum(t) > 0);
    let whole = |tenders: Vec<RefundTender>| {
        tenders
            .into_iter()
            .fold(Refund::new(sale.id, "returned"), Refund::tender)
    };
    let card = |amount_minor| RefundTender::Card {
        amount_minor,
        reference: "RFD-L".into(),
    };
    let before = snapshot(&shop);
    // Its layaway's payments are its payments: no more cash or card back than each took.
    let e = flow(
        t.refund(
            &shop.cashier,
            &whole(vec![RefundTender::Cash { amount_minor: 979 }]),
        )
        .unwrap_err(),
    );
    assert_eq!(e, exceeds("cash", None, 479, 0, 979));
    let e = flow(
        t.refund(&shop.cashier, &whole(vec![card(979)]))
            .unwrap_err(),
    );
    assert_eq!(e, exceeds("card", None, 500, 0, 979));
    // A void cannot tell how the layaway was paid; a refund with tenders can.
    let e = flow(t.void_sale(&shop.admin, sale.id, "wrong").unwrap_err());
    assert!(matches!(e, FlowError::State { .. }), "{e:?}");
    assert_eq!(snapshot(&shop), before);

    let r = t.refund(
        &shop.cashier,
        &whole(vec![RefundTender::Cash { amount_minor: 479 }, card(500)]),
    )?;
    assert_balanced(&r);
    assert_eq!(r.payments[1].reference.as_deref(), Some("RFD-L"));
    assert_eq!(t.stock_on_hand(shop.oil.id, "main")?, 20_000);
    assert_eq!(t.loyalty_points(shop.loyalty.id)?, 0);
    assert_eq!(commission_sum(t), 0);
    assert_eq!(t.fetch::<Sale>(sale.id)?, sale);
    Ok(())
}

#[test]
fn a_layaway_payment_of_a_method_layaways_do_not_take_counts_for_nothing() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let opened = t.open_layaway(
        &shop.cashier,
        &pos_tenancy::pos::LayawayOrder::new(
            shop.customer.id,
            vec![LineItem::product(shop.oil.id, 1_000)],
            Tender::Card {
                amount_minor: 500,
                reference: "AUTH-L".into(),
            },
        ),
    )?;
    // Written past the flows (another terminal's or system's data, arriving by sync): a gift
    // card payment naming no card, which a layaway never takes (and its cancellation refuses).
    common::arrives_by_sync(
        &store,
        t.tenant_id(),
        &LayawayPayment {
            id: RowId::new(),
            layaway_id: opened.layaway.id,
            method: "gift_card".into(),
            amount_minor: 479,
            user_id: None,
            paid_at: Timestamp::now(),
            reference: None,
        },
    );
    let sale = t.complete_layaway(&shop.cashier, opened.layaway.id)?.sale;
    let card = |amount_minor| RefundTender::Card {
        amount_minor,
        reference: "RFD-L".into(),
    };
    let whole = Refund::new(sale.id, "returned")
        .tender(RefundTender::Cash { amount_minor: 479 })
        .tender(card(500));
    let before = snapshot(&shop);
    // It is not cash the sale took.
    let e = flow(t.refund(&shop.cashier, &whole).unwrap_err());
    assert_eq!(e, exceeds("cash", None, 0, 0, 479));
    let e = flow(
        t.refund(
            &shop.cashier,
            &Refund::new(sale.id, "returned").tender(card(979)),
        )
        .unwrap_err(),
    );
    assert_eq!(e, exceeds("card", None, 500, 0, 979));
    assert_eq!(snapshot(&shop), before);
    // Only the manager's override gives it back.
    set_rules(&shop, |r| r.allow_refund_to_any_tender = true)?;
    let r = t.refund(&shop.cashier, &whole)?;
    assert_balanced(&r);
    assert_eq!(paid_back(&r), [("cash", -479), ("card", -500)]);
    Ok(())
}

#[test]
fn a_cancelled_layaways_sale_is_not_refunded_again() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let opened = t.open_layaway(
        &shop.cashier,
        &pos_tenancy::pos::LayawayOrder::new(
            shop.customer.id,
            vec![LineItem::product(shop.oil.id, 1_000)],
            Tender::Cash {
                tendered_minor: 500,
            },
        ),
    )?;
    t.cancel_layaway(&shop.cashier, opened.layaway.id)?;
    let before = snapshot(&shop);
    let e = flow(
        t.refund(
            &shop.cashier,
            &Refund::new(opened.sale.id, "again").tender(RefundTender::Cash { amount_minor: 500 }),
        )
        .unwrap_err(),
    );
    assert!(
        matches!(&e, FlowError::State { status, .. } if status == "voided"),
        "{e:?}"
    );
    assert_eq!(snapshot(&shop), before);
    Ok(())
}

/// A whole refund of `sale` in cash, through any handle: the tenant's or a transaction.
fn refund_in_cash(a: &impl TenantAccess, cashier: &Actor, sale: &Receipt) -> Result<RowId> {
    let r = a.refund(
        cashier,
        &Refund::new(sale.sale.id, "changed their mind").tender(RefundTender::Cash {
            amount_minor: sale.sale.total_minor,
        }),
    )?;
    assert_balanced(&r);
    Ok(r.sale.id)
}

#[test]
fn a_refund_inside_a_transaction_is_kept_only_if_committed() -> Result<()> {
    let store = Store::open_in_memory()?;
    let mut caps = shop(&store, "caps")?;
    let bolt = shop(&store, "bolt")?;
    let sale = mixed_sale(&caps, vec![])?;
    let same = mixed_sale(&bolt, vec![])?;
    let before = snapshot(&caps);
    assert_eq!(snapshot(&bolt), before);

    let dropped = {
        let tx = caps.t.transaction()?;
        let id = refund_in_cash(&tx, &caps.cashier, &sale)?;
        // The transaction sees its own writes.
        assert_eq!(tx.stock_on_hand(caps.oil.id, "main")?, 20_000);
        assert_eq!(tx.loyalty_points(caps.loyalty.id)?, 0);
        assert!(tx.fetch::<Sale>(id)?.total_minor < 0);
        // A refused flow inside it leaves the earlier one standing: nothing is left to refund.
        let e = flow(
            tx.refund(&caps.cashier, &Refund::new(sale.sale.id, "again"))
                .unwrap_err(),
        );
        assert!(matches!(e, FlowError::State { .. }), "{e:?}");
        assert_eq!(tx.stock_on_hand(caps.oil.id, "main")?, 20_000);
        id
        // Dropped here without a commit.
    };
    assert_eq!(snapshot(&caps), before);
    assert!(matches!(
        caps.t.fetch::<Sale>(dropped),
        Err(Error::NotFound { .. })
    ));
    assert_untouched(&caps.t, &sale);
    assert!(store.verify()?.is_ok());

    // Committed, it leaves exactly what the same refund leaves through the tenant handle.
    let tx = caps.t.transaction()?;
    let id = refund_in_cash(&tx, &caps.cashier, &sale)?;
    tx.commit()?;
    refund_in_cash(&bolt.t, &bolt.cashier, &same)?;
    assert_eq!(snapshot(&caps), snapshot(&bolt));
    assert_ne!(snapshot(&caps), before);
    assert_eq!(
        caps.t.fetch::<Sale>(id)?.total_minor,
        -sale.sale.total_minor
    );
    assert_eq!(caps.t.stock_on_hand(caps.oil.id, "main")?, 20_000);
    assert_eq!(caps.t.loyalty_points(caps.loyalty.id)?, 0);
    assert_eq!(commission_sum(&caps.t), 0);
    let tables: Vec<String> = caps
        .t
        .pending_operations(100_000)?
        .into_iter()
        .map(|op| op.table)
        .collect();
    for table in ["sale_reversals", "sale_payments", "inventory_transactions"] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
    assert_untouched(&caps.t, &sale);
    assert!(store.verify()?.is_ok());
    Ok(())
}

// ------------------------------------------------- promotion uses, commission by line, overrides

/// A half-price promotion on filters that may be used once; it beats the fixture's 12.5 %.
fn half_price_filters_once(shop: &Shop<'_>) -> Result<Promotion> {
    let promo = Promotion {
        id: RowId::new(),
        code: None,
        name: "Half-price filter, once".into(),
        kind: "percent".into(),
        value: 500_000,
        product_id: Some(shop.filter.id),
        category_id: None,
        starts_at: Timestamp::from_millis(Timestamp::now().as_millis() - 60_000).expect("time"),
        ends_at: None,
        usage_limit: Some(1),
        active: true,
    };
    shop.t.insert(&shop.admin, &promo)?;
    Ok(promo)
}

/// One oil and one filter, paid in cash.
fn oil_and_filter(shop: &Shop<'_>) -> Result<Receipt> {
    shop.t.checkout(
        &shop.cashier,
        &Checkout::new()
            .line(LineItem::product(shop.oil.id, 1_000))
            .line(LineItem::product(shop.filter.id, 1_000))
            .tender(Tender::Cash {
                tendered_minor: 10_000,
            }),
    )
}

/// The discount the next sale of one filter gets.
fn next_filter_discount(store: &Store, shop: &Shop<'_>) -> Result<i64> {
    // Rung up inside a transaction that is dropped, so it uses nothing up.
    let mut t = store.tenant(shop.t.tenant_id())?;
    let tx = t.transaction()?;
    let r = tx.checkout(
        &shop.cashier,
        &Checkout::new()
            .line(LineItem::product(shop.filter.id, 1_000))
            .tender(Tender::Cash {
                tendered_minor: 10_000,
            }),
    )?;
    Ok(r.lines[0].discount_minor)
}

fn refund_lines(shop: &Shop<'_>, sale: &Receipt, lines: &[(RowId, i64)]) -> Result<RefundReceipt> {
    let mut refund = Refund::new(sale.sale.id, "returned");
    for (line, quantity) in lines {
        refund = refund.line(*line, *quantity);
    }
    // A probe refused as underpaid says what is due (and a refusal writes nothing).
    let probe = shop.t.refund(
        &shop.cashier,
        &refund
            .clone()
            .tender(RefundTender::Cash { amount_minor: 1 }),
    );
    let due = match probe {
        Err(Error::Flow(FlowError::Underpaid { due_minor, .. }))
        | Err(Error::Flow(FlowError::Overpaid { due_minor, .. })) => due_minor,
        // Exactly 1 was due: the probe was the refund.
        Ok(r) => return Ok(r),
        Err(e) => return Err(e),
    };
    let r = shop.t.refund(
        &shop.cashier,
        &refund.tender(RefundTender::Cash { amount_minor: due }),
    )?;
    assert_balanced(&r);
    Ok(r)
}

#[test]
fn a_promotion_use_is_given_back_once_every_line_it_discounted_is_refunded() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let promo = half_price_filters_once(&shop)?;
    assert_eq!(next_filter_discount(&store, &shop)?, 167, "half of 3.33");
    let sale = oil_and_filter(&shop)?;
    assert_eq!(sale.lines[1].discount_minor, 167);
    assert_eq!(sale.promotions.len(), 1);
    assert_eq!(sale.promotions[0].promotion_id, promo.id);
    // Used up: the next filter gets the 12.5 % only.
    assert_eq!(next_filter_discount(&store, &shop)?, 42);
    // The oil comes back: the filter the promotion discounted is kept, so is the use.
    let r = refund_lines(&shop, &sale, &[(sale.lines[0].id, 1_000)])?;
    assert!(r.promotions.is_empty());
    assert_eq!(next_filter_discount(&store, &shop)?, 42);
    // Half the filter comes back: still not every discounted unit.
    let r = refund_lines(&shop, &sale, &[(sale.lines[1].id, 400)])?;
    assert!(r.promotions.is_empty());
    assert_eq!(next_filter_discount(&store, &shop)?, 42);
    // The rest of it: the use goes back, as a usage row on the refund.
    let r = refund_lines(&shop, &sale, &[(sale.lines[1].id, 600)])?;
    assert_eq!(r.promotions.len(), 1);
    let back = &r.promotions[0];
    assert_eq!(
        (back.promotion_id, back.sale_id, back.discount_minor),
        (promo.id, r.sale.id, 167)
    );
    assert_eq!(next_filter_discount(&store, &shop)?, 167);
    // Written through the store's normal path: a synced operation like the use itself.
    assert!(shop
        .t
        .pending_operations(100_000)?
        .iter()
        .any(|op| op.table == "promotion_usage" && op.row_id == back.id));
    // The promotion can be used once again, and then it is used up again.
    let again = oil_and_filter(&shop)?;
    assert_eq!(again.lines[1].discount_minor, 167);
    assert_eq!(next_filter_discount(&store, &shop)?, 42);
    assert!(store.verify()?.is_ok());
    Ok(())
}

#[test]
fn a_void_gives_its_promotion_use_back() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    half_price_filters_once(&shop)?;
    let sale = oil_and_filter(&shop)?;
    assert_eq!(next_filter_discount(&store, &shop)?, 42);
    let r = shop
        .t
        .void_sale(&shop.admin, sale.sale.id, "rung up twice")?;
    assert_eq!(r.promotions.len(), 1);
    assert_eq!(next_filter_discount(&store, &shop)?, 167);
    Ok(())
}

/// Oil goes into an "Oils" category that earns 20 % (beside the fixture's 5 % for everything).
fn oils_earn_twenty_percent(shop: &Shop<'_>) -> Result<CommissionRule> {
    let now = Timestamp::now();
    let oils = ProductCategory {
        id: RowId::new(),
        name: "Oils".into(),
        parent_id: None,
        created_at: now,
    };
    shop.t.insert(&shop.admin, &oils)?;
    let mut oil = shop.t.fetch::<Product>(shop.oil.id)?;
    oil.category_id = Some(oils.id);
    shop.t.update(&shop.admin, &oil)?;
    let rule = CommissionRule {
        id: RowId::new(),
        name: "Oils".into(),
        user_id: None,
        category_id: Some(oils.id),
        rate_ppm: 200_000,
        active: true,
        created_at: now,
    };
    shop.t.insert(&shop.admin, &rule)?;
    Ok(rule)
}

/// Half away from zero, as the checkout rounds commission on a line.
fn share(net: i64, rate_ppm: i64) -> i64 {
    (net * rate_ppm + 500_000) / 1_000_000
}

fn line_net(l: &SaleLine) -> i64 {
    l.total_minor - l.tax_minor
}

/// Commission earned in all by one rule (reversals included).
fn commission_of(t: &Tenant<'_>, rule: RowId) -> i64 {
    let r = t
        .query(&format!(
            "SELECT coalesce(sum(amount_minor), 0) FROM commissions WHERE rule_id = '{rule}'"
        ))
        .expect("sum");
    r.rows[0][0].as_i64().expect("a sum")
}

#[test]
fn a_partial_refund_reverses_only_the_refunded_lines_commission() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let oils = oils_earn_twenty_percent(&shop)?;
    let sale = mixed_sale(&shop, vec![])?;
    let everyone = sale
        .commissions
        .iter()
        .find(|c| c.rule_id != Some(oils.id))
        .and_then(|c| c.rule_id)
        .expect("the rule for everyone");
    let [oil, filter, labour] = [&sale.lines[0], &sale.lines[1], &sale.lines[2]];
    let oil_share = share(line_net(oil), 200_000);
    let filter_share = share(line_net(filter), 50_000);
    let labour_share = share(line_net(labour), 50_000);
    assert_eq!(commission_of(t, oils.id), oil_share);
    assert_eq!(commission_of(t, everyone), filter_share + labour_share);
    // The labour line alone comes back: its 5 % share, none of the oil's 20 %.
    let r = refund_lines(&shop, &sale, &[(labour.id, 1_000)])?;
    let reversed: Vec<_> = r
        .commissions
        .iter()
        .map(|c| (c.rule_id, c.amount_minor))
        .collect();
    assert_eq!(reversed, [(Some(everyone), -labour_share)]);
    assert_eq!(commission_of(t, oils.id), oil_share);
    assert_eq!(commission_of(t, everyone), filter_share);
    Ok(())
}

#[test]
fn refunding_every_line_one_by_one_reverses_exactly_the_commission_earned() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let oils = oils_earn_twenty_percent(&shop)?;
    let sale = mixed_sale(&shop, vec![])?;
    let earned = commission_sum(t);
    assert!(earned > 0);
    let [oil, filter, labour] = [&sale.lines[0], &sale.lines[1], &sale.lines[2]];
    let oil_share = share(line_net(oil), 200_000);
    // Awkward parts: a third of the filters, then a bottle of oil, the labour, the rest.
    let steps: &[&[(RowId, i64)]] = &[
        &[(filter.id, 500)],
        &[(oil.id, 1_000)],
        &[(labour.id, 1_000)],
        &[(filter.id, 1_000)],
        &[(oil.id, 1_000)],
    ];
    let mut reversed = 0;
    for step in steps {
        let oil_before = commission_of(t, oils.id);
        let r = refund_lines(&shop, &sale, step)?;
        assert!(r.commissions.iter().all(|c| c.amount_minor <= 0));
        reversed -= r.commissions.iter().map(|c| c.amount_minor).sum::<i64>();
        assert!(reversed <= earned, "never more than was earned");
        if step[0].0 == oil.id {
            // A bottle of two: half the oil's share.
            assert_eq!(oil_before - commission_of(t, oils.id), oil_share / 2);
        } else {
            assert_eq!(
                commission_of(t, oils.id),
                oil_before,
                "the oil's share stays"
            );
        }
    }
    assert_eq!(reversed, earned);
    assert_eq!(commission_sum(t), 0);
    Ok(())
}

/// A manager of the shop.
fn manager(shop: &Shop<'_>) -> Result<Actor> {
    let now = Timestamp::now();
    let user = User {
        id: RowId::new(),
        username: "boss".into(),
        display_name: "Floor manager".into(),
        email: None,
        role: Role::Manager,
        pin_hash: None,
        active: true,
        created_at: now,
        updated_at: now,
    };
    shop.t.insert(&shop.admin, &user)?;
    shop.t.actor(user.id)
}

/// A bottle paid with a gift card that is then blocked.
fn paid_by_a_card_now_blocked(shop: &Shop<'_>) -> Result<(Receipt, GiftCard)> {
    let card = shop
        .t
        .issue_gift_card(&shop.cashier, "GC-1", 5_000, None, None)?;
    let sale = one_bottle(
        shop,
        vec![Tender::GiftCard {
            card_id: card.id,
            amount_minor: 979,
        }],
    )?;
    let blocked = GiftCard {
        active: false,
        ..card
    };
    shop.t.update(&shop.cashier, &blocked)?;
    Ok((sale, blocked))
}

#[test]
fn a_sale_paid_by_a_blocked_gift_card_is_refunded_by_other_tenders_with_a_managers_override(
) -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let boss = manager(&shop)?;
    let (sale, card) = paid_by_a_card_now_blocked(&shop)?;
    let in_cash =
        Refund::new(sale.sale.id, "leaking").tender(RefundTender::Cash { amount_minor: 979 });
    let before = snapshot(&shop);
    // The card takes nothing back, and cash is not what the sale took.
    let onto_card = Refund::new(sale.sale.id, "leaking").tender(RefundTender::GiftCard {
        card_id: card.id,
        amount_minor: 979,
    });
    let e = flow(t.refund(&shop.cashier, &onto_card).unwrap_err());
    assert!(matches!(e, FlowError::GiftCardUnusable { .. }), "{e:?}");
    let e = flow(t.refund(&shop.cashier, &in_cash).unwrap_err());
    assert_eq!(e, exceeds("cash", None, 0, 0, 979));
    // The override does not load the blocked card either.
    let e = flow(
        t.refund(
            &shop.cashier,
            &onto_card.override_unusable_card(&boss, "card reported stolen"),
        )
        .unwrap_err(),
    );
    assert!(matches!(e, FlowError::GiftCardUnusable { .. }), "{e:?}");
    assert_eq!(snapshot(&shop), before);
    // A manager's override for this one refund: the cashier gives it back in cash.
    let r = t.refund(
        &shop.cashier,
        &in_cash.override_unusable_card(&boss, "card reported stolen"),
    )?;
    assert_balanced(&r);
    assert_eq!(paid_back(&r), [("cash", -979)]);
    assert_eq!(t.gift_card_balance(card.id)?, 5_000 - 979);
    // Audited: who approved, why, who refunded, and how much went past the caps.
    let audit = t.query(&format!(
        "SELECT actor_user_id, detail FROM audit_log
         WHERE row_id = '{}' AND detail IS NOT NULL",
        r.sale.id
    ))?;
    assert_eq!(audit.rows.len(), 1, "{audit:?}");
    assert_eq!(
        audit.rows[0][0].as_str(),
        Some(boss.user_id().to_string().as_str())
    );
    let detail: serde_json::Value =
        serde_json::from_str(audit.rows[0][1].as_str().expect("detail")).expect("json");
    assert_eq!(detail["reason"], "card reported stolen");
    assert_eq!(detail["refunded_by"], shop.cashier.user_id().to_string());
    assert_eq!(detail["gift_cards"][0], card.id.to_string());
    assert_eq!(detail["past_caps_minor"], 979);
    // The tenant-wide rule is still off: the override was for that refund only.
    assert!(!t.settings()?.rules.allow_refund_to_any_tender);
    Ok(())
}

#[test]
fn an_override_for_an_expired_gift_card_moves_only_what_that_card_paid() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let boss = manager(&shop)?;
    let card = t.issue_gift_card(&shop.cashier, "GC-2", 5_000, None, None)?;
    let sale = one_bottle(
        &shop,
        vec![
            Tender::GiftCard {
                card_id: card.id,
                amount_minor: 400,
            },
            Tender::Card {
                amount_minor: 579,
                reference: "AUTH-1".into(),
            },
        ],
    )?;
    let expired = GiftCard {
        expires_at: Some(
            Timestamp::from_millis(Timestamp::now().as_millis() - 60_000).expect("time"),
        ),
        ..card
    };
    t.update(&shop.cashier, &expired)?;
    let approved = |refund: Refund| refund.override_unusable_card(&boss, "card expired last week");
    let before = snapshot(&shop);
    // All of it in cash would move the payment card's money too: refused.
    let e = flow(
        t.refund(
            &shop.cashier,
            &approved(
                Refund::new(sale.sale.id, "leaking")
                    .tender(RefundTender::Cash { amount_minor: 979 }),
            ),
        )
        .unwrap_err(),
    );
    assert_eq!(e, exceeds("cash", None, 0, 0, 979));
    assert_eq!(snapshot(&shop), before);
    // The expired card's 400 in cash, the rest back to the payment card.
    let r = t.refund(
        &shop.cashier,
        &approved(
            Refund::new(sale.sale.id, "leaking")
                .tender(RefundTender::Cash { amount_minor: 400 })
                .tender(RefundTender::Card {
                    amount_minor: 579,
                    reference: "RFD-1".into(),
                }),
        ),
    )?;
    assert_balanced(&r);
    assert_eq!(paid_back(&r), [("cash", -400), ("card", -579)]);
    Ok(())
}

#[test]
fn a_cashiers_override_is_refused_and_writes_nothing() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let (sale, _) = paid_by_a_card_now_blocked(&shop)?;
    let before = snapshot(&shop);
    let e = t
        .refund(
            &shop.cashier,
            &Refund::new(sale.sale.id, "leaking")
                .tender(RefundTender::Cash { amount_minor: 979 })
                .override_unusable_card(&shop.cashier, "I say so"),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::PermissionDenied {
                role: Role::Cashier,
                needed: Role::Manager,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("needs a manager"), "{e}");
    // Nor without a reason, even from a manager.
    let boss = manager(&shop)?;
    let before_boss = snapshot(&shop);
    let e = flow(
        t.refund(
            &shop.cashier,
            &Refund::new(sale.sale.id, "leaking")
                .tender(RefundTender::Cash { amount_minor: 979 })
                .override_unusable_card(&boss, " "),
        )
        .unwrap_err(),
    );
    assert!(matches!(e, FlowError::Empty { .. }), "{e:?}");
    assert_eq!(snapshot(&shop)[..TABLES.len()], before[..TABLES.len()]);
    assert_eq!(snapshot(&shop), before_boss);
    Ok(())
}

#[test]
fn a_void_of_a_sale_paid_by_a_card_now_blocked_is_refused_and_changes_nothing() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    let t = &shop.t;
    let boss = manager(&shop)?;
    let (sale, card) = paid_by_a_card_now_blocked(&shop)?;
    let balance = t.gift_card_balance(card.id)?;
    let before = snapshot(&shop);
    let e = flow(
        t.void_sale(&boss, sale.sale.id, "card reported stolen")
            .unwrap_err(),
    );
    assert!(
        matches!(&e, FlowError::GiftCardUnusable { card: c, reason } if *c == card.id
            && reason.contains("blocked")),
        "{e:?}"
    );
    assert_eq!(snapshot(&shop), before);
    assert_eq!(t.gift_card_balance(card.id)?, balance);
    // The way the error points to: a refund by other tenders with a manager's override.
    let r = t.refund(
        &shop.cashier,
        &Refund::new(sale.sale.id, "card reported stolen")
            .tender(RefundTender::Cash { amount_minor: 979 })
            .override_unusable_card(&boss, "card reported stolen"),
    )?;
    assert_eq!(r.sale.total_minor, -979);
    assert_eq!(t.gift_card_balance(card.id)?, balance);
    Ok(())
}

#[test]
fn a_cancelled_layaway_gives_its_promotion_use_back() -> Result<()> {
    let store = Store::open_in_memory()?;
    let shop = shop(&store, "caps")?;
    half_price_filters_once(&shop)?;
    let full = next_filter_discount(&store, &shop)?;
    let opened = shop.t.open_layaway(
        &shop.cashier,
        &pos_tenancy::pos::LayawayOrder::new(
            shop.customer.id,
            vec![LineItem::product(shop.filter.id, 1_000)],
            Tender::Cash {
                tendered_minor: 100,
            },
        ),
    )?;
    assert_eq!(opened.promotions.len(), 1);
    // The layaway holds the only use.
    assert!(next_filter_discount(&store, &shop)? < full);
    shop.t.cancel_layaway(&shop.cashier, opened.layaway.id)?;
    assert_eq!(next_filter_discount(&store, &shop)?, full);
    Ok(())
}
