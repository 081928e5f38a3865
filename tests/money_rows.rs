//! Money rows the POS flows write (sale and layaway payments, loyalty points, sale reversals)
//! set what a refund may give back; generic CRUD cannot add them, so no cashier can raise a
//! sale's refund cap by writing a row by hand. The flows and sync still write them.

mod common;

use common::*;
use pos_tenancy::catalog::{
    LayawayPayment, LoyaltyTransaction, Sale, SalePayment, SaleReversal, User,
};
use pos_tenancy::pos::{
    Checkout, FlowError, LayawayOrder, LineItem, Pos, Refund, RefundTender, Tender,
};
use pos_tenancy::{Error, Role, RowId, TenantAccess};

type R = pos_tenancy::Result<()>;

#[test]
fn a_cashier_cannot_add_a_payment_to_a_completed_sale_and_its_refund_cap_is_unchanged() -> R {
    let store = store_with(&["caps"]);
    let caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let now = now();
    let cashier = User {
        id: RowId::new(),
        username: "sam".into(),
        display_name: "Sam".into(),
        email: None,
        role: Role::Cashier,
        pin_hash: None,
        active: true,
        created_at: now,
        updated_at: now,
    };
    caps.insert(&admin, &cashier)?;
    let cashier = caps.actor(cashier.id)?;
    let c = customer("C-1", None);
    caps.insert(&admin, &c)?;
    let account = caps.enroll_loyalty(&cashier, c.id, "L-1")?;
    let p = product("OF-1", 1000);
    caps.insert(&admin, &p)?;
    caps.receive_stock(&admin, p.id, "main", 10_000, Some(500))?;
    let sold = caps.checkout(
        &cashier,
        &Checkout::new()
            .customer(c.id)
            .line(LineItem::product(p.id, 1000))
            .tender(Tender::Card {
                amount_minor: 1000,
                reference: "AUTH-1".into(),
            }),
    )?;
    assert_eq!(sold.sale.status, "completed");
    // Another sale, paid in cash, whose lines a forged reversal could name.
    let other = caps.checkout(
        &cashier,
        &Checkout::new()
            .line(LineItem::product(p.id, 1000))
            .tender(Tender::Cash {
                tendered_minor: 1000,
            }),
    )?;
    let before = caps.pending_operations(10_000)?;

    // A cash payment of 5,000 "on" the card sale, typed and as JSON, by the cashier and by the
    // admin alike: refused as the crate's own table, whatever the role.
    let forged = SalePayment {
        id: RowId::new(),
        sale_id: sold.sale.id,
        method: "cash".into(),
        amount_minor: 5000,
        currency: "USD".into(),
        tendered_minor: Some(5000),
        change_minor: 0,
        reference: None,
        gift_card_id: None,
        paid_at: now,
    };
    for actor in [&cashier, &admin] {
        let err = caps.insert(actor, &forged).expect_err("a payment by hand");
        assert!(
            matches!(err, Error::InternalTable("sale_payments")),
            "{err}"
        );
        let json = serde_json::to_value(&forged).expect("json");
        let err = caps
            .insert_json(actor, "sale_payments", json)
            .expect_err("a payment as JSON");
        assert!(
            matches!(err, Error::InternalTable("sale_payments")),
            "{err}"
        );
    }
    // Nor points redeemed on the sale, nor a reversal naming another sale as its refund.
    let points = LoyaltyTransaction {
        id: RowId::new(),
        account_id: account.id,
        kind: "redeem".into(),
        points: -5000,
        sale_id: Some(sold.sale.id),
        created_at: now,
    };
    assert!(matches!(
        caps.insert(&cashier, &points),
        Err(Error::InternalTable("loyalty_transactions"))
    ));
    let link = SaleReversal {
        id: RowId::new(),
        sale_id: sold.sale.id,
        sale_line_id: sold.lines[0].id,
        reversal_sale_id: other.sale.id,
        reversal_line_id: other.lines[0].id,
        kind: "refund".into(),
        quantity_milli: 1,
        created_at: now,
    };
    assert!(matches!(
        caps.insert(&cashier, &link),
        Err(Error::InternalTable("sale_reversals"))
    ));
    assert_eq!(
        caps.pending_operations(10_000)?,
        before,
        "nothing was written"
    );
    assert!(caps
        .list::<SalePayment>(&pos_tenancy::ListQuery::new().eq("sale_id", sold.sale.id))?
        .rows
        .iter()
        .all(|p| p.method == "card"));

    // The cap is what the sale took: 1,000 by card, nothing in cash.
    let err = caps
        .refund(
            &cashier,
            &Refund::new(sold.sale.id, "returned").tender(RefundTender::Cash {
                amount_minor: sold.sale.total_minor,
            }),
        )
        .expect_err("cash back for a card sale");
    assert!(
        matches!(
            err,
            Error::Flow(FlowError::RefundExceedsTender {
                method: "cash",
                sale_took: 0,
                ..
            })
        ),
        "{err}"
    );
    let refund = caps.refund(
        &cashier,
        &Refund::new(sold.sale.id, "returned").tender(RefundTender::Card {
            amount_minor: sold.sale.total_minor,
            reference: "RFD-1".into(),
        }),
    )?;
    assert_eq!(refund.sale.total_minor, -sold.sale.total_minor);
    assert_eq!(caps.fetch::<Sale>(sold.sale.id)?, sold.sale);
    Ok(())
}

#[test]
fn a_layaway_payment_is_taken_by_its_flow_never_written_by_hand() -> R {
    let store = store_with(&["caps"]);
    let caps = store.tenant(&tid("caps"))?;
    let admin = caps.bootstrap_admin("owner", "Owner")?;
    let c = customer("C-1", None);
    caps.insert(&admin, &c)?;
    let p = product("OF-1", 1000);
    caps.insert(&admin, &p)?;
    caps.receive_stock(&admin, p.id, "main", 10_000, Some(500))?;
    let opened = caps.open_layaway(
        &admin,
        &LayawayOrder::new(
            c.id,
            vec![LineItem::product(p.id, 1000)],
            Tender::Cash {
                tendered_minor: 200,
            },
        ),
    )?;
    let forged = LayawayPayment {
        id: RowId::new(),
        layaway_id: opened.layaway.id,
        method: "cash".into(),
        amount_minor: 800,
        user_id: None,
        paid_at: now(),
        reference: None,
    };
    assert!(matches!(
        caps.insert(&admin, &forged),
        Err(Error::InternalTable("layaway_payments"))
    ));
    assert_eq!(caps.layaway_paid(opened.layaway.id)?, 200);
    let paid = caps.pay_layaway(
        &admin,
        opened.layaway.id,
        &Tender::Cash {
            tendered_minor: 800,
        },
    )?;
    assert_eq!(paid, 1000);
    // Reading them through the handle is still fine.
    let rows = caps
        .list::<LayawayPayment>(&pos_tenancy::ListQuery::new())?
        .rows;
    assert_eq!(rows.len(), 2);
    Ok(())
}
