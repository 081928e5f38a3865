//! Layaways and work orders through the tenant handle: stock leaves a layaway only when it is
//! completed, a cancellation refunds what was paid less the tenant's fee, a work order completes
//! into a checkout of its parts and labour, and every refusal writes nothing.

mod common;

use common::{customer, now, product, tid};
use pos_tenancy::catalog::{
    CommissionRule, CustomerVehicle, Layaway, LayawayPayment, PriceLevel, Sale, WorkOrder,
};
use pos_tenancy::pos::{FlowError, LayawayOrder, LineItem, Pos, Tender, WorkOrderRequest};
use pos_tenancy::{
    Actor, BusinessRules, Error, NewTenant, Plan, Result, RowId, Store, TaxRate, Tenant,
    TenantAccess, TenantSettings,
};

/// 10 % sales tax on everything taxable, so the figures below are easy to check by hand.
const TAX_PPM: u32 = 100_000;

fn settings(name: &str, rules: BusinessRules) -> TenantSettings {
    let mut s = TenantSettings::new(name);
    s.tax_rates = vec![TaxRate {
        name: "Sales tax".into(),
        rate_ppm: TAX_PPM,
    }];
    s.rules = rules;
    s
}

/// A store with these tenants, each with the rules given, 10 % tax and an admin.
fn store(tenants: &[&str], rules: &BusinessRules) -> Store {
    let store = Store::open_in_memory().expect("in-memory store");
    for t in tenants {
        store
            .add_tenant(
                &NewTenant::new(tid(t), t)
                    .plan(Plan::Pro)
                    .settings(settings(t, rules.clone())),
            )
            .expect("tenant added");
        store
            .tenant(&tid(t))
            .expect("handle")
            .bootstrap_admin("owner", "Owner")
            .expect("admin");
    }
    store
}

/// One tenant's shop: its admin, a customer and a stocked product at $25.00 with 5 on hand.
struct Shop<'s> {
    t: Tenant<'s>,
    admin: Actor,
    customer: RowId,
    product: RowId,
}

fn shop<'s>(store: &'s Store, tenant: &str) -> Result<Shop<'s>> {
    let t = store.tenant(&tid(tenant))?;
    let admin = common::first_admin(&t)?;
    let c = customer(&format!("C-{tenant}"), None);
    t.insert(&admin, &c)?;
    let p = product(&format!("BRK-{tenant}"), 2_500);
    t.insert(&admin, &p)?;
    t.receive_stock(&admin, p.id, "main", 5_000, None)?;
    Ok(Shop {
        t,
        admin,
        customer: c.id,
        product: p.id,
    })
}

fn cash(minor: i64) -> Tender {
    Tender::Cash {
        tendered_minor: minor,
    }
}

fn card(minor: i64) -> Tender {
    Tender::Card {
        amount_minor: minor,
        reference: "AUTH-1".into(),
    }
}

/// The method and amount of each payment row given back, in order.
fn given_back(rows: &[LayawayPayment]) -> Vec<(&str, i64)> {
    rows.iter()
        .map(|p| (p.method.as_str(), p.amount_minor))
        .collect()
}

fn flow_error<T: std::fmt::Debug>(r: Result<T>) -> FlowError {
    match r {
        Err(Error::Flow(e)) => e,
        other => panic!("expected a flow refusal, got {other:?}"),
    }
}

/// Everything a refusal must leave alone: row counts of every table these flows write, the
/// outbox, and the stock of the shop's product.
fn snapshot(shop: &Shop<'_>) -> Result<(Vec<serde_json::Value>, usize, i64)> {
    let counts = shop.t.query(
        "SELECT (SELECT count(*) FROM sales), (SELECT count(*) FROM sale_lines),
                (SELECT count(*) FROM sale_payments), (SELECT count(*) FROM layaways),
                (SELECT count(*) FROM layaway_payments),
                (SELECT count(*) FROM inventory_transactions),
                (SELECT count(*) FROM work_orders), (SELECT count(*) FROM work_order_lines),
                (SELECT count(*) FROM commissions), (SELECT count(*) FROM loyalty_transactions),
                (SELECT count(*) FROM promotion_usage), (SELECT count(*) FROM audit_log),
                (SELECT group_concat(status) FROM (SELECT status FROM sales ORDER BY id)),
                (SELECT group_concat(status) FROM (SELECT status FROM layaways ORDER BY id)),
                (SELECT group_concat(status) FROM (SELECT status FROM work_orders ORDER BY id))",
    )?;
    Ok((
        counts.rows.into_iter().flatten().collect(),
        shop.t.pending_operations(100_000)?.len(),
        shop.t.stock_on_hand(shop.product, "main")?,
    ))
}

/// Two of the product: $50.00 + $5.00 tax = $55.00.
fn order(shop: &Shop<'_>, deposit: Tender) -> LayawayOrder {
    LayawayOrder::new(
        shop.customer,
        vec![LineItem::product(shop.product, 2_000)],
        deposit,
    )
}

#[test]
fn a_layaway_takes_its_stock_only_when_completed() -> Result<()> {
    let store = store(&["caps"], &BusinessRules::default());
    let shop = shop(&store, "caps")?;
    let account = shop.t.enroll_loyalty(&shop.admin, shop.customer, "L-1")?;
    shop.t.insert(
        &shop.admin,
        &CommissionRule {
            id: RowId::new(),
            name: "Everyone".into(),
            user_id: None,
            category_id: None,
            rate_ppm: 50_000,
            active: true,
            created_at: now(),
        },
    )?;
    assert_eq!(shop.t.stock_on_hand(shop.product, "main")?, 5_000);

    let opened = shop
        .t
        .open_layaway(&shop.admin, &order(&shop, cash(1_000)))?;
    assert_eq!(opened.sale.status, "layaway");
    assert_eq!(
        (opened.sale.subtotal_minor, opened.sale.tax_minor),
        (5_000, 500)
    );
    assert_eq!(opened.layaway.total_minor, 5_500);
    assert_eq!(opened.layaway.deposit_minor, 1_000);
    assert_eq!(opened.layaway.status, "open");
    assert_eq!(
        (opened.deposit.method.as_str(), opened.deposit.amount_minor),
        ("cash", 1_000)
    );
    let id = opened.layaway.id;
    assert_eq!(shop.t.layaway_paid(id)?, 1_000);
    assert_eq!(shop.t.stock_on_hand(shop.product, "main")?, 5_000);

    assert_eq!(shop.t.pay_layaway(&shop.admin, id, &card(2_000))?, 3_000);
    assert_eq!(shop.t.stock_on_hand(shop.product, "main")?, 5_000);
    assert_eq!(shop.t.pay_layaway(&shop.admin, id, &cash(2_500))?, 5_500);
    assert_eq!(shop.t.layaway_paid(id)?, 5_500);
    assert_eq!(shop.t.stock_on_hand(shop.product, "main")?, 5_000);
    let earned =
        "SELECT count(*) FROM commissions UNION ALL SELECT count(*) FROM loyalty_transactions";
    assert_eq!(
        shop.t.query(earned)?.rows,
        vec![vec![serde_json::json!(0)], vec![serde_json::json!(0)]]
    );

    let done = shop.t.complete_layaway(&shop.admin, id)?;
    assert_eq!(shop.t.stock_on_hand(shop.product, "main")?, 3_000);
    assert_eq!(done.layaway.status, "completed");
    assert!(done.layaway.closed_at.is_some());
    assert_eq!(done.sale.status, "completed");
    assert_eq!(shop.t.fetch::<Sale>(opened.sale.id)?.status, "completed");
    assert_eq!(shop.t.fetch::<Layaway>(id)?.status, "completed");
    // One point per dollar of the net amount, on the customer's account.
    assert_eq!(done.points_earned, 50);
    assert_eq!(shop.t.loyalty_points(account.id)?, 50);
    // 5 % of the $50.00 net, to the cashier who opened the layaway.
    assert_eq!(done.commissions.len(), 1);
    assert_eq!(done.commissions[0].amount_minor, 250);
    assert_eq!(done.commissions[0].user_id, shop.admin.user_id());
    let stock = shop
        .t
        .query("SELECT kind, quantity_milli FROM inventory_transactions WHERE kind <> 'receive'")?;
    assert_eq!(
        stock.rows,
        vec![vec![
            serde_json::json!("layaway"),
            serde_json::json!(-2_000)
        ]]
    );
    // A completed layaway takes no more payments and cannot be cancelled.
    let before = snapshot(&shop)?;
    assert!(matches!(
        flow_error(shop.t.pay_layaway(&shop.admin, id, &cash(1))),
        FlowError::State { .. }
    ));
    assert!(matches!(
        flow_error(shop.t.cancel_layaway(&shop.admin, id)),
        FlowError::State { .. }
    ));
    assert_eq!(snapshot(&shop)?, before);
    Ok(())
}

#[test]
fn a_cancelled_layaway_gives_each_payment_back_by_its_own_method_less_the_fee() -> Result<()> {
    let rules = BusinessRules {
        layaway_cancellation_fee_ppm: 100_000,
        ..BusinessRules::default()
    };
    let store = store(&["caps"], &rules);
    let shop = shop(&store, "caps")?;
    let opened = shop
        .t
        .open_layaway(&shop.admin, &order(&shop, card(1_000)))?;
    let id = opened.layaway.id;
    shop.t.pay_layaway(&shop.admin, id, &cash(1_235))?;

    let cancelled = shop.t.cancel_layaway(&shop.admin, id)?;
    // 10 % of 22.35 is 2.235: the half cent rounds away from zero.
    assert_eq!(cancelled.fee_minor, 224);
    assert_eq!(cancelled.refund_minor, 2_011);
    assert_eq!(cancelled.layaway.status, "cancelled");
    assert!(cancelled.layaway.closed_at.is_some());
    assert_eq!(shop.t.layaway_paid(id)?, 224);
    assert_eq!(shop.t.fetch::<Sale>(opened.sale.id)?.status, "voided");
    // The fee comes out of the cash; the card deposit goes back to the card whole.
    assert_eq!(
        given_back(&cancelled.refunds),
        [("cash", -1_011), ("card", -1_000)]
    );
    let refund = shop.t.query(
        "SELECT method, amount_minor FROM layaway_payments WHERE amount_minor < 0
         ORDER BY method DESC",
    )?;
    assert_eq!(
        refund.rows,
        vec![
            vec![serde_json::json!("cash"), serde_json::json!(-1_011)],
            vec![serde_json::json!("card"), serde_json::json!(-1_000)]
        ]
    );
    // No stock row was ever written for it.
    assert_eq!(shop.t.stock_on_hand(shop.product, "main")?, 5_000);
    let moves = shop
        .t
        .query("SELECT count(*) FROM inventory_transactions WHERE kind <> 'receive'")?;
    assert_eq!(moves.rows, vec![vec![serde_json::json!(0)]]);

    // Cancelled is final: no payment, no completion, no second refund.
    let before = snapshot(&shop)?;
    assert!(matches!(
        flow_error(shop.t.pay_layaway(&shop.admin, id, &cash(100))),
        FlowError::State { .. }
    ));
    assert!(matches!(
        flow_error(shop.t.complete_layaway(&shop.admin, id)),
        FlowError::State { .. }
    ));
    assert!(matches!(
        flow_error(shop.t.cancel_layaway(&shop.admin, id)),
        FlowError::State { .. }
    ));
    assert_eq!(snapshot(&shop)?, before);
    Ok(())
}

fn card_ref(minor: i64, reference: &str) -> Tender {
    Tender::Card {
        amount_minor: minor,
        reference: reference.into(),
    }
}

/// The tenant's settings with another cancellation fee.
fn set_fee(shop: &Shop<'_>, fee_ppm: u32) -> Result<()> {
    let mut s = shop.t.settings()?;
    s.rules.layaway_cancellation_fee_ppm = fee_ppm;
    shop.t.update_settings(&shop.admin, &s)?;
    Ok(())
}

/// Net of each method over all the layaway payments of the tenant, by method.
fn net_by_method(shop: &Shop<'_>) -> Result<Vec<Vec<serde_json::Value>>> {
    Ok(shop
        .t
        .query(
            "SELECT method, sum(amount_minor) FROM layaway_payments GROUP BY method ORDER BY method",
        )?
        .rows)
}

#[test]
fn the_cancellation_fee_comes_out_of_cash_first_then_the_card_payments_in_the_order_made(
) -> Result<()> {
    let rules = BusinessRules {
        layaway_cancellation_fee_ppm: 500_000,
        ..BusinessRules::default()
    };
    let store = store(&["caps"], &rules);
    let shop = shop(&store, "caps")?;
    let id = shop
        .t
        .open_layaway(&shop.admin, &order(&shop, card_ref(1_000, "AUTH-1")))?
        .layaway
        .id;
    shop.t.pay_layaway(&shop.admin, id, &cash(300))?;
    shop.t
        .pay_layaway(&shop.admin, id, &card_ref(700, "AUTH-2"))?;

    let cancelled = shop.t.cancel_layaway(&shop.admin, id)?;
    // Half of 20.00 is kept: all 3.00 of cash, then 7.00 of the card deposit, the first card
    // payment; the second card payment goes back whole.
    assert_eq!(cancelled.fee_minor, 1_000);
    assert_eq!(cancelled.refund_minor, 1_000);
    assert_eq!(
        given_back(&cancelled.refunds),
        [("card", -300), ("card", -700)]
    );
    assert!(cancelled
        .refunds
        .iter()
        .all(|p| p.layaway_id == id && p.user_id == Some(shop.admin.user_id())));
    assert_eq!(shop.t.layaway_paid(id)?, 1_000);
    assert_eq!(
        net_by_method(&shop)?,
        vec![
            vec![serde_json::json!("card"), serde_json::json!(700)],
            vec![serde_json::json!("cash"), serde_json::json!(300)]
        ]
    );
    Ok(())
}

/// Every payment row of the layaway as the store holds it, read back through the generic API,
/// oldest first (refunds last).
fn payments_of(shop: &Shop<'_>, layaway: RowId) -> Result<Vec<LayawayPayment>> {
    let ids = shop.t.query(&format!(
        "SELECT id FROM layaway_payments WHERE layaway_id = '{layaway}' ORDER BY paid_at, id"
    ))?;
    ids.rows
        .iter()
        .map(|row| {
            let id: RowId = row[0].as_str().expect("id text").parse()?;
            shop.t.fetch::<LayawayPayment>(id)
        })
        .collect()
}

/// Method, amount and reference of each row.
fn with_references(rows: &[LayawayPayment]) -> Vec<(&str, i64, Option<&str>)> {
    rows.iter()
        .map(|p| (p.method.as_str(), p.amount_minor, p.reference.as_deref()))
        .collect()
}

#[test]
fn a_card_payment_keeps_the_terminals_reference_and_cash_has_none() -> Result<()> {
    let store = store(&["caps"], &BusinessRules::default());
    let shop = shop(&store, "caps")?;
    let opened = shop
        .t
        .open_layaway(&shop.admin, &order(&shop, card_ref(1_000, "AUTH-DEP")))?;
    assert_eq!(opened.deposit.reference.as_deref(), Some("AUTH-DEP"));
    let id = opened.layaway.id;
    shop.t.pay_layaway(&shop.admin, id, &cash(300))?;
    shop.t
        .pay_layaway(&shop.admin, id, &card_ref(700, "AUTH-PAY"))?;

    let stored = payments_of(&shop, id)?;
    assert_eq!(stored[0], opened.deposit);
    assert_eq!(
        with_references(&stored),
        [
            ("card", 1_000, Some("AUTH-DEP")),
            ("cash", 300, None),
            ("card", 700, Some("AUTH-PAY")),
        ]
    );
    Ok(())
}

#[test]
fn a_cancellations_card_refund_carries_the_reference_of_the_payment_it_gives_back() -> Result<()> {
    for (fee_ppm, expected) in [
        // No fee: the cash back in one row, each card payment back to its own card.
        (
            0,
            vec![
                ("cash", -300, None),
                ("card", -1_000, Some("AUTH-1")),
                ("card", -700, Some("AUTH-2")),
            ],
        ),
        // 75 % of 20.00: the cash and the whole first card payment are kept, and 2.00 of the
        // second; what goes back goes to the second card, under its reference.
        (750_000, vec![("card", -500, Some("AUTH-2"))]),
    ] {
        let store = store(&["caps"], &BusinessRules::default());
        let shop = shop(&store, "caps")?;
        set_fee(&shop, fee_ppm)?;
        let id = shop
            .t
            .open_layaway(&shop.admin, &order(&shop, card_ref(1_000, "AUTH-1")))?
            .layaway
            .id;
        shop.t.pay_layaway(&shop.admin, id, &cash(300))?;
        shop.t
            .pay_layaway(&shop.admin, id, &card_ref(700, "AUTH-2"))?;

        let cancelled = shop.t.cancel_layaway(&shop.admin, id)?;
        assert_eq!(
            with_references(&cancelled.refunds),
            expected,
            "fee {fee_ppm}"
        );
        // As returned, so as stored.
        let stored = payments_of(&shop, id)?;
        assert_eq!(stored[3..], cancelled.refunds[..], "fee {fee_ppm}");
    }
    Ok(())
}

#[test]
fn a_cancellation_without_a_fee_gives_every_payment_back_whole() -> Result<()> {
    let store = store(&["caps"], &BusinessRules::default());
    let shop = shop(&store, "caps")?;
    let id = shop
        .t
        .open_layaway(&shop.admin, &order(&shop, card_ref(600, "AUTH-3")))?
        .layaway
        .id;
    shop.t
        .pay_layaway(&shop.admin, id, &card_ref(400, "AUTH-4"))?;
    shop.t.pay_layaway(&shop.admin, id, &cash(50))?;
    let cancelled = shop.t.cancel_layaway(&shop.admin, id)?;
    assert_eq!((cancelled.fee_minor, cancelled.refund_minor), (0, 1_050));
    assert_eq!(
        given_back(&cancelled.refunds),
        [("cash", -50), ("card", -600), ("card", -400)]
    );
    assert_eq!(shop.t.layaway_paid(id)?, 0);
    assert_eq!(
        net_by_method(&shop)?,
        vec![
            vec![serde_json::json!("card"), serde_json::json!(0)],
            vec![serde_json::json!("cash"), serde_json::json!(0)]
        ]
    );
    Ok(())
}

#[test]
fn a_fee_of_everything_gives_nothing_back_and_writes_no_refund_row() -> Result<()> {
    let store = store(&["caps"], &BusinessRules::default());
    let shop = shop(&store, "caps")?;
    set_fee(&shop, 1_000_000)?;
    let opened = shop
        .t
        .open_layaway(&shop.admin, &order(&shop, cash(1_000)))?;
    let id = opened.layaway.id;
    shop.t.pay_layaway(&shop.admin, id, &card(500))?;
    let cancelled = shop.t.cancel_layaway(&shop.admin, id)?;
    assert_eq!((cancelled.fee_minor, cancelled.refund_minor), (1_500, 0));
    assert!(cancelled.refunds.is_empty());
    assert_eq!(shop.t.layaway_paid(id)?, 1_500);
    let negative = shop
        .t
        .query("SELECT count(*) FROM layaway_payments WHERE amount_minor < 0")?;
    assert_eq!(negative.rows, vec![vec![serde_json::json!(0)]]);
    assert_eq!(shop.t.fetch::<Layaway>(id)?.status, "cancelled");
    assert_eq!(shop.t.fetch::<Sale>(opened.sale.id)?.status, "voided");
    Ok(())
}

#[test]
fn a_card_payment_without_the_terminals_reference_is_refused() -> Result<()> {
    let store = store(&["caps"], &BusinessRules::default());
    let shop = shop(&store, "caps")?;
    let before = snapshot(&shop)?;
    let blank = FlowError::Empty {
        what: "a card payment's reference",
    };
    for reference in ["", "   ", "\t\n"] {
        assert_eq!(
            flow_error(
                shop.t
                    .open_layaway(&shop.admin, &order(&shop, card_ref(1_000, reference)))
            ),
            blank
        );
    }
    assert_eq!(snapshot(&shop)?, before);
    let id = shop
        .t
        .open_layaway(&shop.admin, &order(&shop, cash(1_000)))?
        .layaway
        .id;
    let before = snapshot(&shop)?;
    assert_eq!(
        flow_error(shop.t.pay_layaway(&shop.admin, id, &card_ref(500, " "))),
        blank
    );
    assert_eq!(snapshot(&shop)?, before);
    assert_eq!(shop.t.layaway_paid(id)?, 1_000);
    Ok(())
}

#[test]
fn a_payment_that_cannot_go_back_by_its_own_method_stops_the_cancellation() -> Result<()> {
    let store = store(&["caps"], &BusinessRules::default());
    let shop = shop(&store, "caps")?;
    let id = shop
        .t
        .open_layaway(&shop.admin, &order(&shop, cash(1_000)))?
        .layaway
        .id;
    // Written past the flows (another terminal's or system's data, arriving by sync): a gift
    // card payment, which has no ledger row of the card to give back to.
    let odd = LayawayPayment {
        id: RowId::new(),
        layaway_id: id,
        method: "gift_card".into(),
        amount_minor: 500,
        user_id: None,
        paid_at: now(),
        reference: None,
    };
    common::arrives_by_sync(&store, shop.t.tenant_id(), &odd);
    let before = snapshot(&shop)?;
    let e = flow_error(shop.t.cancel_layaway(&shop.admin, id));
    assert!(
        matches!(&e, FlowError::State { id: found, status, .. }
            if *found == id && status.contains("gift_card") && status.contains(&odd.id.to_string())),
        "{e:?}"
    );
    assert_eq!(snapshot(&shop)?, before);
    assert_eq!(shop.t.fetch::<Layaway>(id)?.status, "open");
    Ok(())
}

/// Opens a layaway of the order, pays it off (2,000 by card, the rest in cash) and completes
/// it, through any handle: the tenant's or a transaction.
fn lay_away_and_complete(a: &impl TenantAccess, admin: &Actor, o: &LayawayOrder) -> Result<RowId> {
    let opened = a.open_layaway(admin, o)?;
    let id = opened.layaway.id;
    let left = opened.layaway.total_minor - opened.deposit.amount_minor - 2_000;
    a.pay_layaway(admin, id, &card(2_000))?;
    a.pay_layaway(admin, id, &cash(left))?;
    a.complete_layaway(admin, id)?;
    Ok(id)
}

#[test]
fn a_layaway_inside_a_transaction_is_kept_only_if_committed() -> Result<()> {
    let store = store(&["caps", "bolt"], &BusinessRules::default());
    let mut caps = shop(&store, "caps")?;
    let bolt = shop(&store, "bolt")?;
    let points = caps.t.enroll_loyalty(&caps.admin, caps.customer, "L-1")?.id;
    bolt.t.enroll_loyalty(&bolt.admin, bolt.customer, "L-1")?;
    let o = order(&caps, cash(1_000));
    let before = snapshot(&caps)?;

    let dropped = {
        let tx = caps.t.transaction()?;
        let id = lay_away_and_complete(&tx, &caps.admin, &o)?;
        // The transaction sees its own writes.
        assert_eq!(tx.fetch::<Layaway>(id)?.status, "completed");
        assert_eq!(tx.layaway_paid(id)?, 5_500);
        assert_eq!(tx.stock_on_hand(caps.product, "main")?, 3_000);
        assert_eq!(tx.loyalty_points(points)?, 50);
        // A refused flow inside it leaves the earlier ones standing.
        assert!(matches!(
            flow_error(tx.cancel_layaway(&caps.admin, id)),
            FlowError::State { .. }
        ));
        assert_eq!(tx.layaway_paid(id)?, 5_500);
        id
        // Dropped here without a commit.
    };
    assert_eq!(snapshot(&caps)?, before);
    assert!(matches!(
        caps.t.layaway_paid(dropped),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(caps.t.loyalty_points(points)?, 0);
    assert!(store.verify()?.is_ok());

    // Committed, it leaves exactly what the same flows leave through the tenant handle.
    let tx = caps.t.transaction()?;
    let id = lay_away_and_complete(&tx, &caps.admin, &o)?;
    tx.commit()?;
    lay_away_and_complete(&bolt.t, &bolt.admin, &order(&bolt, cash(1_000)))?;
    assert_eq!(snapshot(&caps)?, snapshot(&bolt)?);
    assert_ne!(snapshot(&caps)?, before);
    assert_eq!(caps.t.fetch::<Layaway>(id)?.status, "completed");
    assert_eq!(caps.t.layaway_paid(id)?, 5_500);
    assert_eq!(caps.t.stock_on_hand(caps.product, "main")?, 3_000);
    assert_eq!(caps.t.loyalty_points(points)?, 50);
    let tables: Vec<String> = caps
        .t
        .pending_operations(100_000)?
        .into_iter()
        .map(|op| op.table)
        .collect();
    for table in [
        "sales",
        "layaways",
        "layaway_payments",
        "inventory_transactions",
    ] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
    assert!(store.verify()?.is_ok());
    Ok(())
}

#[test]
fn layaway_refusals_write_nothing() -> Result<()> {
    let store = store(&["caps"], &BusinessRules::default());
    let shop = shop(&store, "caps")?;
    let before = snapshot(&shop)?;

    // 10 % of $55.00 is the smallest deposit.
    assert_eq!(
        flow_error(shop.t.open_layaway(&shop.admin, &order(&shop, cash(549)))),
        FlowError::DepositTooSmall {
            min_minor: 550,
            given_minor: 549
        }
    );
    assert!(matches!(
        flow_error(shop.t.open_layaway(&shop.admin, &order(&shop, cash(5_501)))),
        FlowError::LayawayOverpaid {
            left_minor: 5_500,
            given_minor: 5_501,
            ..
        }
    ));
    let gift = Tender::GiftCard {
        card_id: RowId::new(),
        amount_minor: 1_000,
    };
    assert_eq!(
        flow_error(shop.t.open_layaway(&shop.admin, &order(&shop, gift))),
        FlowError::TenderNotAccepted {
            flow: "a layaway payment",
            method: "gift_card"
        }
    );
    let too_many = LayawayOrder::new(
        shop.customer,
        vec![LineItem::product(shop.product, 6_000)],
        cash(10_000),
    );
    assert!(matches!(
        flow_error(shop.t.open_layaway(&shop.admin, &too_many)),
        FlowError::InsufficientStock {
            on_hand_milli: 5_000,
            wanted_milli: 6_000,
            ..
        }
    ));
    assert_eq!(snapshot(&shop)?, before);

    let opened = shop
        .t
        .open_layaway(&shop.admin, &order(&shop, cash(1_000)))?;
    let id = opened.layaway.id;
    let before = snapshot(&shop)?;
    assert_eq!(
        flow_error(shop.t.pay_layaway(&shop.admin, id, &cash(4_501))),
        FlowError::LayawayOverpaid {
            layaway: id,
            left_minor: 4_500,
            given_minor: 4_501
        }
    );
    assert!(matches!(
        flow_error(
            shop.t
                .pay_layaway(&shop.admin, id, &Tender::Loyalty { points: 10 })
        ),
        FlowError::TenderNotAccepted { .. }
    ));
    assert!(matches!(
        flow_error(shop.t.pay_layaway(&shop.admin, id, &cash(0))),
        FlowError::Amount { .. }
    ));
    assert_eq!(
        flow_error(shop.t.complete_layaway(&shop.admin, id)),
        FlowError::LayawayUnpaid {
            layaway: id,
            paid_minor: 1_000,
            total_minor: 5_500
        }
    );
    assert_eq!(snapshot(&shop)?, before);
    assert_eq!(shop.t.layaway_paid(id)?, 1_000);

    // Paying a cancelled layaway is refused and writes nothing.
    shop.t.cancel_layaway(&shop.admin, id)?;
    let before = snapshot(&shop)?;
    assert!(matches!(
        flow_error(shop.t.pay_layaway(&shop.admin, id, &cash(500))),
        FlowError::State { status, .. } if status == "cancelled"
    ));
    assert_eq!(snapshot(&shop)?, before);
    assert_eq!(shop.t.layaway_paid(id)?, 0);
    Ok(())
}

#[test]
fn completing_checks_the_stock_again() -> Result<()> {
    let store = store(&["caps"], &BusinessRules::default());
    let shop = shop(&store, "caps")?;
    let opened = shop
        .t
        .open_layaway(&shop.admin, &order(&shop, cash(5_500)))?;
    // The shelf was sold meanwhile: the goods put aside are no longer there.
    shop.t.checkout(
        &shop.admin,
        &pos_tenancy::pos::Checkout::new()
            .line(LineItem::product(shop.product, 4_000))
            .tender(cash(11_000)),
    )?;
    let before = snapshot(&shop)?;
    assert!(matches!(
        flow_error(shop.t.complete_layaway(&shop.admin, opened.layaway.id)),
        FlowError::InsufficientStock {
            on_hand_milli: 1_000,
            wanted_milli: 2_000,
            ..
        }
    ));
    assert_eq!(snapshot(&shop)?, before);
    Ok(())
}

#[test]
fn layaways_and_parts_are_priced_at_the_customers_price_level() -> Result<()> {
    let store = store(&["caps"], &BusinessRules::default());
    let shop = shop(&store, "caps")?;
    let trade = PriceLevel {
        id: RowId::new(),
        name: "Trade".into(),
        discount_ppm: 100_000,
        created_at: now(),
    };
    shop.t.insert(&shop.admin, &trade)?;
    let mut c = customer("C-trade", None);
    c.price_level_id = Some(trade.id);
    shop.t.insert(&shop.admin, &c)?;

    let mut o = order(&shop, cash(1_000));
    o.customer_id = c.id;
    let opened = shop.t.open_layaway(&shop.admin, &o)?;
    // $25.00 less 10 % is $22.50; two of them $45.00 plus $4.50 tax.
    assert_eq!(opened.lines[0].unit_price_minor, 2_250);
    assert_eq!(opened.layaway.total_minor, 4_950);

    let wo = shop
        .t
        .open_work_order(&shop.admin, &WorkOrderRequest::new(c.id, "Brakes"))?;
    let part = shop.t.add_part(&shop.admin, wo.id, shop.product, 1_000)?;
    assert_eq!(part.unit_price_minor, 2_250);
    let receipt = shop
        .t
        .complete_work_order(&shop.admin, wo.id, &[cash(2_475)])?;
    assert_eq!(receipt.sale.total_minor, 2_475);
    assert_eq!(receipt.change_minor, 0);
    Ok(())
}

fn vehicle(shop: &Shop<'_>, owner: RowId) -> Result<RowId> {
    let v = CustomerVehicle {
        id: RowId::new(),
        customer_id: owner,
        vin: None,
        plate: Some("CAP 123".into()),
        make: "Ford".into(),
        model: "Focus".into(),
        year: 2015,
        engine: None,
        mileage: None,
        created_at: now(),
    };
    shop.t.insert(&shop.admin, &v)?;
    Ok(v.id)
}

/// A work order with two parts (2 pads at $25.00, 1 filter at $8.99) and 1.5 hours of labour
/// at $80.00.
fn brake_job(shop: &Shop<'_>) -> Result<(RowId, RowId)> {
    let filter = product("FLT-1", 899);
    shop.t.insert(&shop.admin, &filter)?;
    shop.t
        .receive_stock(&shop.admin, filter.id, "main", 3_000, None)?;
    let mut req = WorkOrderRequest::new(shop.customer, "Front brakes");
    req.vehicle_id = Some(vehicle(shop, shop.customer)?);
    req.odometer = Some(120_500);
    let wo = shop.t.open_work_order(&shop.admin, &req)?;
    assert_eq!(wo.status, "open");
    let pads = shop.t.add_part(&shop.admin, wo.id, shop.product, 2_000)?;
    assert_eq!(pads.unit_price_minor, 2_500);
    shop.t.add_part(&shop.admin, wo.id, filter.id, 1_000)?;
    let labour = shop
        .t
        .add_labour(&shop.admin, wo.id, "Fit pads", 1_500, 8_000)?;
    assert_eq!(labour.kind, "labour");
    Ok((wo.id, filter.id))
}

#[test]
fn a_work_order_completes_into_a_sale_that_balances() -> Result<()> {
    let store = store(&["caps"], &BusinessRules::default());
    let shop = shop(&store, "caps")?;
    let (wo, filter) = brake_job(&shop)?;
    assert_eq!(shop.t.stock_on_hand(shop.product, "main")?, 5_000);

    let receipt = shop
        .t
        .complete_work_order(&shop.admin, wo, &[card(10_000), cash(10_000)])?;
    let sale = &receipt.sale;
    assert_eq!(sale.status, "completed");
    assert_eq!(sale.customer_id, Some(shop.customer));
    // Parts 50.00 + 8.99, labour 1.5 h × 80.00 = 120.00 untaxed by default.
    assert_eq!(sale.subtotal_minor, 5_000 + 899 + 12_000);
    assert_eq!(receipt.lines[2].tax_minor, 0);
    assert_eq!(sale.tax_minor, 500 + 90);
    let lines_total: i64 = receipt.lines.iter().map(|l| l.total_minor).sum();
    assert_eq!(lines_total, sale.total_minor);
    assert_eq!(
        sale.subtotal_minor + sale.tax_minor - sale.discount_minor,
        sale.total_minor
    );
    let paid: i64 = receipt.payments.iter().map(|p| p.amount_minor).sum();
    let tendered: i64 = receipt
        .payments
        .iter()
        .map(|p| p.tendered_minor.unwrap_or(p.amount_minor))
        .sum();
    assert_eq!(paid, sale.total_minor);
    assert_eq!(tendered - receipt.change_minor, sale.total_minor);
    assert_eq!(receipt.change_minor, 20_000 - 18_489);
    // The stock left with the sale.
    assert_eq!(shop.t.stock_on_hand(shop.product, "main")?, 3_000);
    assert_eq!(shop.t.stock_on_hand(filter, "main")?, 2_000);

    let done = shop.t.fetch::<WorkOrder>(wo)?;
    assert_eq!(done.status, "completed");
    assert_eq!(done.sale_id, Some(sale.id));
    assert!(done.completed_at.is_some());

    // A completed work order takes no more lines and is not completed twice.
    let before = snapshot(&shop)?;
    assert!(matches!(
        flow_error(shop.t.add_part(&shop.admin, wo, shop.product, 1_000)),
        FlowError::State { .. }
    ));
    assert!(matches!(
        flow_error(shop.t.add_labour(&shop.admin, wo, "More", 1_000, 100)),
        FlowError::State { .. }
    ));
    assert!(matches!(
        flow_error(
            shop.t
                .complete_work_order(&shop.admin, wo, &[cash(100_000)])
        ),
        FlowError::State { .. }
    ));
    assert!(matches!(
        flow_error(shop.t.cancel_work_order(&shop.admin, wo)),
        FlowError::State { .. }
    ));
    assert_eq!(snapshot(&shop)?, before);
    Ok(())
}

#[test]
fn labour_is_taxed_when_the_tenant_says_so() -> Result<()> {
    let rules = BusinessRules {
        tax_labour: true,
        ..BusinessRules::default()
    };
    let store = store(&["caps"], &rules);
    let shop = shop(&store, "caps")?;
    let (wo, _) = brake_job(&shop)?;
    let receipt = shop
        .t
        .complete_work_order(&shop.admin, wo, &[cash(20_000)])?;
    assert_eq!(receipt.lines[2].tax_minor, 1_200);
    assert_eq!(receipt.sale.tax_minor, 500 + 90 + 1_200);
    assert_eq!(receipt.sale.total_minor, 17_899 + 1_790);
    Ok(())
}

#[test]
fn work_order_refusals_write_nothing() -> Result<()> {
    let store = store(&["caps"], &BusinessRules::default());
    let shop = shop(&store, "caps")?;
    let other = customer("C-other", None);
    shop.t.insert(&shop.admin, &other)?;
    let theirs = vehicle(&shop, other.id)?;
    let before = snapshot(&shop)?;

    let mut req = WorkOrderRequest::new(shop.customer, "Oil change");
    req.vehicle_id = Some(theirs);
    assert_eq!(
        flow_error(shop.t.open_work_order(&shop.admin, &req)),
        FlowError::ForeignVehicle {
            vehicle: theirs,
            customer: shop.customer
        }
    );
    let blank = WorkOrderRequest::new(shop.customer, "  ");
    assert!(matches!(
        flow_error(shop.t.open_work_order(&shop.admin, &blank)),
        FlowError::Empty { .. }
    ));
    assert_eq!(snapshot(&shop)?, before);

    let wo = shop
        .t
        .open_work_order(&shop.admin, &WorkOrderRequest::new(shop.customer, "Oil"))?;
    let before = snapshot(&shop)?;
    assert!(matches!(
        flow_error(
            shop.t
                .complete_work_order(&shop.admin, wo.id, &[cash(1_000)])
        ),
        FlowError::NoLines { .. }
    ));
    assert!(matches!(
        flow_error(shop.t.add_part(&shop.admin, wo.id, shop.product, 0)),
        FlowError::Quantity { .. }
    ));
    assert!(matches!(
        flow_error(shop.t.add_labour(&shop.admin, wo.id, "Fit", 1_000, -1)),
        FlowError::Amount { .. }
    ));
    assert_eq!(snapshot(&shop)?, before);

    // An underpaid completion leaves the work order open and writes no sale.
    shop.t.add_part(&shop.admin, wo.id, shop.product, 1_000)?;
    let before = snapshot(&shop)?;
    assert!(matches!(
        flow_error(
            shop.t
                .complete_work_order(&shop.admin, wo.id, &[cash(1_000)])
        ),
        FlowError::Underpaid { .. }
    ));
    assert_eq!(snapshot(&shop)?, before);
    assert_eq!(shop.t.fetch::<WorkOrder>(wo.id)?.status, "open");

    let cancelled = shop.t.cancel_work_order(&shop.admin, wo.id)?;
    assert_eq!(cancelled.status, "cancelled");
    let before = snapshot(&shop)?;
    assert!(matches!(
        flow_error(shop.t.add_labour(&shop.admin, wo.id, "Fit", 1_000, 100)),
        FlowError::State { .. }
    ));
    assert_eq!(snapshot(&shop)?, before);
    Ok(())
}

#[test]
fn one_tenant_cannot_touch_another_tenants_layaway_or_work_order() -> Result<()> {
    let store = store(&["caps", "bolt"], &BusinessRules::default());
    let caps = shop(&store, "caps")?;
    let bolt = shop(&store, "bolt")?;
    let theirs = bolt
        .t
        .open_layaway(&bolt.admin, &order(&bolt, cash(1_000)))?;
    let id = theirs.layaway.id;
    let their_wo = bolt
        .t
        .open_work_order(&bolt.admin, &WorkOrderRequest::new(bolt.customer, "Brakes"))?;
    let before = (snapshot(&caps)?, snapshot(&bolt)?);

    let not_found = |r: Result<i64>| {
        assert!(
            matches!(r, Err(Error::NotFound { id: found, .. }) if found == id),
            "{r:?}"
        )
    };
    not_found(caps.t.pay_layaway(&caps.admin, id, &cash(500)));
    not_found(caps.t.layaway_paid(id));
    not_found(caps.t.complete_layaway(&caps.admin, id).map(|_| 0));
    not_found(caps.t.cancel_layaway(&caps.admin, id).map(|_| 0));
    assert!(matches!(
        caps.t
            .add_labour(&caps.admin, their_wo.id, "Fit", 1_000, 100),
        Err(Error::NotFound { .. })
    ));
    // Nor can tenant B's customer or vehicle be named in tenant A.
    assert!(matches!(
        caps.t
            .open_work_order(&caps.admin, &WorkOrderRequest::new(bolt.customer, "Oil")),
        Err(Error::NotFound { .. })
    ));
    // Tenant A's actor on tenant B's handle is refused too.
    assert!(matches!(
        bolt.t.pay_layaway(&caps.admin, id, &cash(500)),
        Err(Error::ActorTenantMismatch { .. })
    ));
    assert_eq!((snapshot(&caps)?, snapshot(&bolt)?), before);
    assert_eq!(bolt.t.layaway_paid(id)?, 1_000);
    Ok(())
}
