//! Reports through the tenant handle: a day's sales by payment type, stock below reorder level,
//! a customer's history. Each reads the tenant's rows with statements that bind `tenant_id`;
//! the only text put into SQL is the catalog's own table and column names.

use chrono::NaiveDate;
use serde::Serialize;

use super::{layaway, FlowError};
use crate::catalog::{
    CreditAccount, CreditTransaction, Customer, CustomerVehicle, GiftCard, GiftCardTransaction,
    Layaway, LoyaltyAccount, LoyaltyTransaction, PaymentMethod, Sale, WorkOrder,
};
use crate::ids::RowId;
use crate::tenant::Scope;
use crate::{Error, Result};

/// Payment methods in the order reports list them: the words of
/// [`PaymentMethod`](crate::catalog::PaymentMethod), in its order.
pub const PAYMENT_METHOD_ORDER: &[&str] = PaymentMethod::WORDS;

/// What one payment method took in a day: sale payments and layaway payments together, refunds
/// (negative payments) netted in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentTotal {
    /// The method's word ([`PaymentMethod`](crate::catalog::PaymentMethod)).
    pub method: String,
    /// How many payment rows (refunds included).
    pub payments: i64,
    /// Their sum in minor units; cash is what stayed in the drawer (change already given back).
    pub amount_minor: i64,
}

/// A stocked product whose stock on hand is below its reorder level at a location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReorderLine {
    /// The product.
    pub product_id: RowId,
    /// Its SKU.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Stock on hand at the location, in thousandths (0 when it never had any).
    pub on_hand_milli: i64,
    /// The level it is below: the location's `inventory` row if there is one, else the
    /// product's.
    pub reorder_level_milli: i64,
    /// How much to order: the location's reorder quantity when one is set (above zero), else
    /// what brings stock back up to the level.
    pub reorder_qty_milli: i64,
}

/// A gift card and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GiftCardHolding {
    /// The card.
    pub card: GiftCard,
    /// Its balance (the sum of its ledger).
    pub balance_minor: i64,
}

/// A loyalty account and its points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoyaltyStanding {
    /// The account.
    pub account: LoyaltyAccount,
    /// Points held (the sum of its ledger).
    pub points: i64,
}

/// A store credit account: what is owed against what may be.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreditStanding {
    /// The account.
    pub account: CreditAccount,
    /// Owed now (the sum of its ledger; negative is a credit in the customer's favour).
    pub owed_minor: i64,
    /// The account's limit.
    pub limit_minor: i64,
    /// What may still be charged: the limit less what is owed, never below zero.
    pub available_minor: i64,
}

/// An open layaway and how far it is paid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenLayaway {
    /// The layaway.
    pub layaway: Layaway,
    /// Paid so far (the sum of its payments).
    pub paid_minor: i64,
    /// Left to pay.
    pub left_minor: i64,
}

/// Everything the store knows about one customer, for the counter screen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerHistory {
    /// The customer.
    pub customer: Customer,
    /// How many sales the customer has, in all (refunds and voids are sales too).
    pub sales_count: i64,
    /// The latest sales, newest first, at most the limit asked for.
    pub sales: Vec<Sale>,
    /// The customer's vehicles, oldest record first.
    pub vehicles: Vec<CustomerVehicle>,
    /// The customer's work orders, newest first.
    pub work_orders: Vec<WorkOrder>,
    /// The customer's gift cards with their balances, newest first.
    pub gift_cards: Vec<GiftCardHolding>,
    /// The loyalty account, if the customer has one.
    pub loyalty: Option<LoyaltyStanding>,
    /// The store credit account, if the customer has one.
    pub credit: Option<CreditStanding>,
    /// Open layaways with what is paid, oldest first.
    pub open_layaways: Vec<OpenLayaway>,
}

/// Most sales [`Pos::customer_history`](super::Pos::customer_history) returns.
pub const MAX_HISTORY_SALES: u32 = 1000;

/// The RFC 3339 text bounds of a UTC day, as timestamps are stored; `None` past the last day
/// chrono knows.
fn day_bounds(day: NaiveDate) -> Option<(String, String)> {
    let next = day.succ_opt()?;
    let bound = |d: NaiveDate| d.format("%Y-%m-%dT00:00:00.000Z").to_string();
    Some((bound(day), bound(next)))
}

pub(crate) fn sales_by_payment(s: &Scope<'_>, day: NaiveDate) -> Result<Vec<PaymentTotal>> {
    let Some((from, to)) = day_bounds(day) else {
        return Ok(Vec::new());
    };
    // Text comparison on the fixed-width UTC form is time comparison, and the (tenant_id,
    // method, paid_at) index serves the sale payments.
    let mut out: Vec<PaymentTotal> = s.query_map(
        "SELECT method, count(*), sum(amount_minor) FROM (
             SELECT method, amount_minor FROM sale_payments
             WHERE tenant_id = ?1 AND paid_at >= ?2 AND paid_at < ?3
             UNION ALL
             SELECT method, amount_minor FROM layaway_payments
             WHERE tenant_id = ?1 AND paid_at >= ?2 AND paid_at < ?3)
         GROUP BY method",
        &[&from, &to],
        |r| {
            Ok(PaymentTotal {
                method: r.get(0)?,
                payments: r.get(1)?,
                amount_minor: r.get(2)?,
            })
        },
    )?;
    out.sort_by_key(|t| {
        PAYMENT_METHOD_ORDER
            .iter()
            .position(|m| *m == t.method)
            .unwrap_or(PAYMENT_METHOD_ORDER.len())
    });
    Ok(out)
}

pub(crate) fn stock_below_reorder(s: &Scope<'_>, location: &str) -> Result<Vec<ReorderLine>> {
    if location.trim().is_empty() {
        return Err(FlowError::Empty { what: "a location" }.into());
    }
    s.query_map(
        "SELECT p.id, p.sku, p.name, coalesce(l.on_hand_milli, 0) AS on_hand,
                coalesce(i.reorder_level_milli, p.reorder_level_milli) AS level,
                coalesce(i.reorder_qty_milli, 0)
         FROM products p
         LEFT JOIN inventory i
           ON i.tenant_id = p.tenant_id AND i.product_id = p.id AND i.location = ?2
         LEFT JOIN stock_levels l
           ON l.tenant_id = p.tenant_id AND l.product_id = p.id AND l.location = ?2
         WHERE p.tenant_id = ?1 AND p.active = 1 AND p.kind = 'stocked'
           AND level > 0 AND on_hand < level
         ORDER BY p.sku",
        &[&location],
        |r| {
            let on_hand_milli: i64 = r.get(3)?;
            let reorder_level_milli: i64 = r.get(4)?;
            let qty: i64 = r.get(5)?;
            Ok(ReorderLine {
                product_id: r.get(0)?,
                sku: r.get(1)?,
                name: r.get(2)?,
                on_hand_milli,
                reorder_level_milli,
                reorder_qty_milli: if qty > 0 {
                    qty
                } else {
                    reorder_level_milli.saturating_sub(on_hand_milli)
                },
            })
        },
    )
}

pub(crate) fn customer_history(
    s: &Scope<'_>,
    customer_id: RowId,
    limit: u32,
) -> Result<CustomerHistory> {
    if limit == 0 || limit > MAX_HISTORY_SALES {
        return Err(Error::InvalidPayload {
            table: "sales",
            reason: format!("a history lists 1 to {MAX_HISTORY_SALES} sales, not {limit}"),
        });
    }
    let customer: Customer = s.row(customer_id)?;
    let sales_count: i64 = s.query_row(
        "SELECT count(*) FROM sales WHERE tenant_id = ?1 AND customer_id = ?2",
        &[&customer_id],
        |r| r.get(0),
    )?;
    let sales = s.rows_where::<Sale>(
        "customer_id = ?2",
        "ORDER BY sold_at DESC, id DESC LIMIT ?3",
        &[&customer_id, &limit],
    )?;
    let vehicles = s.rows_where::<CustomerVehicle>(
        "customer_id = ?2",
        "ORDER BY created_at, id",
        &[&customer_id],
    )?;
    let work_orders = s.rows_where::<WorkOrder>(
        "customer_id = ?2",
        "ORDER BY opened_at DESC, id DESC",
        &[&customer_id],
    )?;
    let gift_cards = s
        .rows_where::<GiftCard>(
            "customer_id = ?2",
            "ORDER BY issued_at DESC, id DESC",
            &[&customer_id],
        )?
        .into_iter()
        .map(|card| {
            let balance_minor = s.balance::<GiftCardTransaction>(&[&card.id])?;
            Ok(GiftCardHolding {
                card,
                balance_minor,
            })
        })
        .collect::<Result<_>>()?;
    let loyalty = s
        .rows_where::<LoyaltyAccount>("customer_id = ?2", "", &[&customer_id])?
        .into_iter()
        .next()
        .map(|account| {
            let points = s.balance::<LoyaltyTransaction>(&[&account.id])?;
            Ok::<_, Error>(LoyaltyStanding { account, points })
        })
        .transpose()?;
    let credit = s
        .rows_where::<CreditAccount>("customer_id = ?2", "", &[&customer_id])?
        .into_iter()
        .next()
        .map(|account| {
            let owed_minor = s.balance::<CreditTransaction>(&[&account.id])?;
            let limit_minor = account.credit_limit_minor;
            Ok::<_, Error>(CreditStanding {
                available_minor: limit_minor.saturating_sub(owed_minor).max(0),
                account,
                owed_minor,
                limit_minor,
            })
        })
        .transpose()?;
    let open_layaways = s
        .rows_where::<Layaway>(
            "customer_id = ?2 AND status = 'open'",
            "ORDER BY opened_at, id",
            &[&customer_id],
        )?
        .into_iter()
        .map(|layaway| {
            let paid_minor = layaway::paid(s, layaway.id)?;
            Ok(OpenLayaway {
                left_minor: layaway.total_minor.saturating_sub(paid_minor),
                layaway,
                paid_minor,
            })
        })
        .collect::<Result<_>>()?;
    Ok(CustomerHistory {
        customer,
        sales_count,
        sales,
        vehicles,
        work_orders,
        gift_cards,
        loyalty,
        credit,
        open_layaways,
    })
}
