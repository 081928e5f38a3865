//! Layaways: goods put aside against a deposit and part payments; stock leaves on completion.
//!
//! Opening prices the lines exactly as a checkout would and writes the sale document with status
//! `layaway`, so the price the customer was quoted is kept; the payments are rows of the
//! `layaway_payments` ledger and what has been paid is their sum. Completing takes the stock
//! (ledger rows of kind `layaway`), pays commission and loyalty points, and amends the sale to
//! `completed`; the sale gets no payment rows of its own, its layaway's payments are its
//! payments (refunds of it are capped by them, see [`super::RefundTender`]). Cancelling gives
//! each payment back by its own method less the tenant's fee, kept out of the cash first and
//! then out of the card payments in the order they were made, and voids the sale.
//!
//! Layaway payments are taken in cash or by card only: gift cards, store credit and points have
//! ledgers of their own that a cancellation would have to give back to. A cash payment is the
//! amount handed over (no change is given; paying more than is left is refused). A card payment
//! needs the card terminal's reference, as at checkout, and keeps it in
//! `layaway_payments.reference` (as `sale_payments.reference` does); the negative card row a
//! cancellation writes carries the reference of the card payment it gives back. Cash rows have
//! none.

use serde::{Deserialize, Serialize};

use super::checkout::{self, Context, PricedLine, Tender, DEFAULT_LOCATION};
use super::money::{apply_ppm, extend, sum};
use super::{require, FlowError, LineItem};
use crate::catalog::{
    Commission, Layaway, LayawayPayment, PaymentMethod, Product, PromotionUse, Sale, SaleLine,
};
use crate::ids::{RowId, Timestamp};
use crate::tenant::settings::{Feature, Role};
use crate::tenant::{Actor, Scope};
use crate::Result;

/// Goods to put aside for a customer. See [`super::Pos::open_layaway`].
///
/// ```
/// use pos_tenancy::catalog::{Customer, Product};
/// use pos_tenancy::pos::{LayawayOrder, LineItem, Pos, Tender};
/// use pos_tenancy::{NewTenant, RowId, Store, TenantAccess, Timestamp};
/// let store = Store::open_in_memory()?;
/// store.add_tenant(&NewTenant::new("caps".parse()?, "Caps"))?;
/// let caps = store.tenant(&"caps".parse()?)?;
/// let admin = caps.bootstrap_admin("owner", "Store Owner")?;
/// let now = Timestamp::now();
/// let rack = Product {
///     id: RowId::new(), sku: "RACK-1".into(), barcode: None, name: "Roof rack".into(),
///     description: None, brand: None, category_id: None, kind: "stocked".into(),
///     price_minor: 10_000, cost_minor: 6_000, currency: "USD".into(), taxable: true,
///     reorder_level_milli: 0, image: None, active: true, created_at: now, updated_at: now,
/// };
/// caps.insert(&admin, &rack)?;
/// caps.receive_stock(&admin, rack.id, "main", 1_000, None)?;
/// let ana = Customer {
///     id: RowId::new(), code: "C-1".into(), first_name: "Ana".into(), last_name: "Diaz".into(),
///     company: None, email: None, phone: None, price_level_id: None, tax_exempt: false,
///     notes: None, created_at: now, updated_at: now,
/// };
/// caps.insert(&admin, &ana)?;
/// // 10 % down holds the rack; it stays on the shelf until it is paid off.
/// let held = caps.open_layaway(&admin, &LayawayOrder::new(
///     ana.id,
///     vec![LineItem::product(rack.id, 1_000)],
///     Tender::Cash { tendered_minor: 1_000 },
/// ))?;
/// assert_eq!(caps.stock_on_hand(rack.id, "main")?, 1_000);
/// let card = Tender::Card { amount_minor: 9_000, reference: "AUTH-7".into() };
/// assert_eq!(caps.pay_layaway(&admin, held.layaway.id, &card)?, 10_000);
/// caps.complete_layaway(&admin, held.layaway.id)?;
/// assert_eq!(caps.stock_on_hand(rack.id, "main")?, 0);
/// # Ok::<(), pos_tenancy::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayawayOrder {
    /// The customer holding the goods (required: the goods are theirs once paid).
    pub customer_id: RowId,
    /// The lines, priced as a checkout prices them (price level, promotions, tax).
    pub lines: Vec<LineItem>,
    /// The first payment, cash or card; at least the tenant's minimum share of the total
    /// ([`crate::BusinessRules::layaway_min_deposit_ppm`]) and at most the total.
    pub deposit: Tender,
    /// When the customer should have paid in full.
    pub due_at: Option<Timestamp>,
    /// Layaway number; by default `L-` and twelve hex digits of its random id.
    pub number: Option<String>,
    /// Coupon codes entered.
    pub promotion_codes: Vec<String>,
}

impl LayawayOrder {
    /// A layaway of these lines for a customer, opened with this deposit.
    pub fn new(customer_id: RowId, lines: Vec<LineItem>, deposit: Tender) -> Self {
        Self {
            customer_id,
            lines,
            deposit,
            due_at: None,
            number: None,
            promotion_codes: Vec::new(),
        }
    }
}

/// What opening a layaway wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayawayReceipt {
    /// The layaway, open.
    pub layaway: Layaway,
    /// Its sale document, status `layaway`.
    pub sale: Sale,
    /// The sale's lines.
    pub lines: Vec<SaleLine>,
    /// The deposit, the first row of the layaway's payments.
    pub deposit: LayawayPayment,
    /// Promotions used, one row per promotion.
    pub promotions: Vec<PromotionUse>,
}

/// What completing a layaway wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayawayCompletion {
    /// The layaway, completed.
    pub layaway: Layaway,
    /// Its sale, completed.
    pub sale: Sale,
    /// Loyalty points earned.
    pub points_earned: i64,
    /// Commission earned by whoever opened the layaway, one row per rule.
    pub commissions: Vec<Commission>,
}

/// What cancelling a layaway wrote. `refund_minor + fee_minor` is exactly what had been paid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayawayCancellation {
    /// The layaway, cancelled.
    pub layaway: Layaway,
    /// Given back in all: the sum of `refunds`, negated.
    pub refund_minor: i64,
    /// Kept by the store by its cancellation rule, out of the cash paid first, then out of the
    /// card payments in the order they were made.
    pub fee_minor: i64,
    /// The payments given back, negative rows of the layaway's payments: first one `cash` row
    /// of all the cash given back, then one `card` row per card payment given back, in the
    /// order the card payments were made, each with the reference of the payment it gives
    /// back. A payment the fee took whole gets no row.
    pub refunds: Vec<LayawayPayment>,
}

/// The amount of a layaway payment and, for a card, the terminal's reference; cash and card
/// only (see the module docs).
fn payment_amount(tender: &Tender) -> Result<(i64, Option<&str>)> {
    let (amount, reference) = match tender {
        Tender::Cash { tendered_minor } => (*tendered_minor, None),
        Tender::Card {
            amount_minor,
            reference,
        } => {
            if reference.trim().is_empty() {
                return Err(FlowError::Empty {
                    what: "a card payment's reference",
                }
                .into());
            }
            (*amount_minor, Some(reference.as_str()))
        }
        other => {
            return Err(FlowError::TenderNotAccepted {
                flow: "a layaway payment",
                method: other.method().as_str(),
            }
            .into())
        }
    };
    if amount <= 0 {
        return Err(FlowError::Amount {
            what: "a layaway payment",
            rule: "above zero",
            amount_minor: amount,
        }
        .into());
    }
    Ok((amount, reference))
}

/// A row of the layaway's payments; `reference` is the card terminal's, `None` for cash.
fn payment_row(
    actor: &Actor,
    layaway: RowId,
    method: PaymentMethod,
    amount_minor: i64,
    reference: Option<&str>,
    now: Timestamp,
) -> LayawayPayment {
    LayawayPayment {
        id: RowId::new(),
        layaway_id: layaway,
        method: method.as_str().to_owned(),
        amount_minor,
        user_id: Some(actor.user_id()),
        paid_at: now,
        reference: reference.map(str::to_owned),
    }
}

/// The layaway, refused unless it is open.
fn open_one(s: &Scope<'_>, layaway: RowId, action: &'static str) -> Result<Layaway> {
    let l: Layaway = s.row(layaway)?;
    if l.status != "open" {
        return Err(FlowError::State {
            what: "layaway",
            id: l.id,
            status: l.status,
            action,
        }
        .into());
    }
    Ok(l)
}

/// What a layaway has been paid so far: the sum of its payments (few rows; not kept in a
/// balance table).
pub(crate) fn paid(s: &Scope<'_>, layaway: RowId) -> Result<i64> {
    s.query_row(
        "SELECT coalesce(sum(amount_minor), 0) FROM layaway_payments
         WHERE tenant_id = ?1 AND layaway_id = ?2",
        &[&layaway],
        |r| r.get(0),
    )
}

/// What has been paid into a layaway of this tenant ([`crate::Error::NotFound`] for any other).
pub(crate) fn paid_so_far(s: &Scope<'_>, layaway: RowId) -> Result<i64> {
    let l: Layaway = s.row(layaway)?;
    paid(s, l.id)
}

pub(crate) fn open(s: &Scope<'_>, actor: &Actor, order: &LayawayOrder) -> Result<LayawayReceipt> {
    s.require_role(actor, Role::Cashier, "open a layaway", "layaways")?;
    // Only opening is switched: a layaway already open runs to its end (paid, completed or
    // cancelled), so the switch never holds a customer's deposit.
    require(
        &s.tenant_settings()?,
        Feature::Layaways,
        "opening a layaway",
    )?;
    if order.lines.is_empty() {
        return Err(FlowError::NoLines {
            what: "the layaway",
        }
        .into());
    }
    let (deposit, deposit_reference) = payment_amount(&order.deposit)?;
    let ctx = Context::load(s, Some(order.customer_id))?;
    let priced = checkout::price(s, &ctx, &order.lines, &order.promotion_codes)?;
    // The goods put aside must exist now, though they leave the stock only on completion.
    checkout::check_stock(s, &ctx, &priced.lines, DEFAULT_LOCATION)?;
    let id = RowId::new();
    let min_minor = apply_ppm(
        priced.total,
        i64::from(ctx.settings.rules.layaway_min_deposit_ppm),
    )?;
    if deposit < min_minor {
        return Err(FlowError::DepositTooSmall {
            min_minor,
            given_minor: deposit,
        }
        .into());
    }
    if deposit > priced.total {
        return Err(FlowError::LayawayOverpaid {
            layaway: id,
            left_minor: priced.total,
            given_minor: deposit,
        }
        .into());
    }
    let sale_id = RowId::new();
    let (sale, lines) = checkout::write_sale(
        s,
        actor,
        &ctx,
        &priced,
        sale_id,
        checkout::receipt_number("S", sale_id),
        "layaway",
        None,
        None,
    )?;
    // The price was agreed now, so the promotion is used now, whatever happens later.
    let promotions = checkout::record_promotions(s, actor, &ctx, sale.id, &priced.lines)?;
    let layaway = Layaway {
        id,
        number: order
            .number
            .clone()
            .unwrap_or_else(|| checkout::receipt_number("L", id)),
        customer_id: order.customer_id,
        sale_id: sale.id,
        status: "open".to_owned(),
        total_minor: priced.total,
        deposit_minor: deposit,
        currency: ctx.currency().to_owned(),
        opened_at: ctx.now,
        due_at: order.due_at,
        closed_at: None,
    };
    s.append(actor, &layaway)?;
    let deposit = payment_row(
        actor,
        id,
        order.deposit.method(),
        deposit,
        deposit_reference,
        ctx.now,
    );
    s.append(actor, &deposit)?;
    Ok(LayawayReceipt {
        layaway,
        sale,
        lines,
        deposit,
        promotions,
    })
}

pub(crate) fn pay(s: &Scope<'_>, actor: &Actor, layaway: RowId, tender: &Tender) -> Result<i64> {
    s.require_role(actor, Role::Cashier, "pay a layaway", "layaway_payments")?;
    let (amount, reference) = payment_amount(tender)?;
    let l = open_one(s, layaway, "take a payment")?;
    let before = paid(s, l.id)?;
    let left_minor = l.total_minor - before;
    if amount > left_minor {
        return Err(FlowError::LayawayOverpaid {
            layaway: l.id,
            left_minor,
            given_minor: amount,
        }
        .into());
    }
    s.append(
        actor,
        &payment_row(
            actor,
            l.id,
            tender.method(),
            amount,
            reference,
            Timestamp::now(),
        ),
    )?;
    Ok(before + amount)
}

/// The sale's lines as the pricing wrote them, for the ledger rows written on completion (the
/// agreed prices, not today's).
fn priced_lines(s: &Scope<'_>, sale: RowId) -> Result<Vec<PricedLine>> {
    let lines: Vec<SaleLine> = s.rows_where("sale_id = ?2", "ORDER BY line_no", &[&sale])?;
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let product: Option<Product> = line.product_id.map(|p| s.row(p)).transpose()?;
        let gross = extend(line.quantity_milli, line.unit_price_minor)?;
        out.push(PricedLine {
            product,
            description: line.description,
            quantity_milli: line.quantity_milli,
            unit_price_minor: line.unit_price_minor,
            gross,
            discount: line.discount_minor,
            tax: line.tax_minor,
            promotion: None,
        });
    }
    Ok(out)
}

pub(crate) fn complete(s: &Scope<'_>, actor: &Actor, layaway: RowId) -> Result<LayawayCompletion> {
    s.require_role(actor, Role::Cashier, "complete a layaway", "layaways")?;
    let l = open_one(s, layaway, "complete")?;
    let paid_minor = paid(s, l.id)?;
    if paid_minor != l.total_minor {
        return Err(FlowError::LayawayUnpaid {
            layaway: l.id,
            paid_minor,
            total_minor: l.total_minor,
        }
        .into());
    }
    let sale: Sale = s.row(l.sale_id)?;
    let ctx = Context::load(s, Some(l.customer_id))?;
    let lines = priced_lines(s, sale.id)?;
    checkout::check_stock(s, &ctx, &lines, DEFAULT_LOCATION)?;
    checkout::move_stock(
        s,
        actor,
        &ctx,
        sale.id,
        &lines,
        DEFAULT_LOCATION,
        "layaway",
        -1,
    )?;
    // Commission goes to whoever sold the goods: the cashier who opened the layaway.
    let commissions =
        checkout::record_commissions(s, actor, &ctx, sale.id, sale.user_id, &lines, 1)?;
    let points_earned = checkout::accrue_points(
        s,
        actor,
        &ctx,
        sale.id,
        sale.subtotal_minor - sale.discount_minor,
    )?;
    let sale = Sale {
        status: "completed".to_owned(),
        ..sale
    };
    s.amend(actor, &sale)?;
    let layaway = Layaway {
        status: "completed".to_owned(),
        closed_at: Some(ctx.now),
        ..l
    };
    s.amend(actor, &layaway)?;
    Ok(LayawayCompletion {
        layaway,
        sale,
        points_earned,
        commissions,
    })
}

/// What a cancellation gives back of each payment, the fee kept out of the cash first and then
/// out of the card payments in the order given (oldest first). Returns the cash given back and,
/// for each card payment, what goes back to it. With `0 <= fee_minor <= cash_minor + sum(cards)`
/// and every amount zero or above, the cash, the cards and the fee add up to what was paid.
fn give_back(fee_minor: i64, cash_minor: i64, cards_minor: &[i64]) -> (i64, Vec<i64>) {
    let from_cash = fee_minor.min(cash_minor).max(0);
    let mut fee_left = fee_minor - from_cash;
    let cards = cards_minor
        .iter()
        .map(|&paid| {
            let kept = fee_left.min(paid).max(0);
            fee_left -= kept;
            paid - kept
        })
        .collect();
    (cash_minor - from_cash, cards)
}

/// Cancels an open layaway: every payment goes back by its own method, less the tenant's
/// cancellation fee ([`crate::BusinessRules::layaway_cancellation_fee_ppm`] of what was paid,
/// rounded half away from zero, never more than was paid); the sale is voided, which gives
/// back the promotion uses its opening took (a use of a voided sale counts for nothing).
///
/// The fee comes out of the cash first, then out of the card payments in the order they were
/// made (the deposit first): the store keeps the fee from the money already in its drawer, so
/// the drawer never pays out cash for a card payment, and a card payment goes back to its card
/// whole wherever the cash covers the fee. All the cash given back is one negative `cash` row;
/// each card payment given back is a negative `card` row of its own, since each may be a
/// different card, carrying the reference of the card payment it gives back.
///
/// Refused, writing nothing, unless the layaway is open and every one of its payments is a cash
/// or card payment of zero or above (the only kind this module writes before a cancellation).
pub(crate) fn cancel(s: &Scope<'_>, actor: &Actor, layaway: RowId) -> Result<LayawayCancellation> {
    s.require_role(actor, Role::Cashier, "cancel a layaway", "layaways")?;
    let l = open_one(s, layaway, "cancel")?;
    let settings = s.tenant_settings()?;
    let payments: Vec<LayawayPayment> =
        s.rows_where("layaway_id = ?2", "ORDER BY paid_at, id", &[&l.id])?;
    let mut cash_minor = 0i64;
    let mut cards_minor = Vec::new();
    // The card payments, in the same order as `cards_minor`: each refund row carries its reference.
    let mut cards = Vec::new();
    for p in &payments {
        match p.method.parse() {
            _ if p.amount_minor < 0 => return Err(unrefundable(&l, p)),
            Ok(PaymentMethod::Cash) => {
                cash_minor = cash_minor
                    .checked_add(p.amount_minor)
                    .ok_or(FlowError::Overflow)?
            }
            Ok(PaymentMethod::Card) => {
                cards_minor.push(p.amount_minor);
                cards.push(p);
            }
            _ => return Err(unrefundable(&l, p)),
        }
    }
    let paid_minor = sum(cards_minor.iter().copied())?
        .checked_add(cash_minor)
        .ok_or(FlowError::Overflow)?;
    // Settings refuse a fee above 1,000,000 ppm; the bound keeps the money balanced anyway
    // (`paid_minor` is zero or above: every payment was checked to be).
    let fee_minor = apply_ppm(
        paid_minor,
        i64::from(settings.rules.layaway_cancellation_fee_ppm),
    )?
    .min(paid_minor)
    .max(0);
    let (cash_back, cards_back) = give_back(fee_minor, cash_minor, &cards_minor);
    let now = Timestamp::now();
    let mut refunds = Vec::new();
    if cash_back > 0 {
        refunds.push(payment_row(
            actor,
            l.id,
            PaymentMethod::Cash,
            -cash_back,
            None,
            now,
        ));
    }
    for (back, card) in cards_back.into_iter().zip(&cards).filter(|(b, _)| *b > 0) {
        refunds.push(payment_row(
            actor,
            l.id,
            PaymentMethod::Card,
            -back,
            card.reference.as_deref(),
            now,
        ));
    }
    for row in &refunds {
        s.append(actor, row)?;
    }
    let refund_minor = paid_minor - fee_minor;
    let sale: Sale = s.row(l.sale_id)?;
    s.amend(
        actor,
        &Sale {
            status: "voided".to_owned(),
            ..sale
        },
    )?;
    let layaway = Layaway {
        status: "cancelled".to_owned(),
        closed_at: Some(now),
        ..l
    };
    s.amend(actor, &layaway)?;
    Ok(LayawayCancellation {
        layaway,
        refund_minor,
        fee_minor,
        refunds,
    })
}

/// A payment a cancellation cannot give back by its own method: not cash or card (written by
/// something other than this module), or already negative.
fn unrefundable(l: &Layaway, p: &LayawayPayment) -> crate::Error {
    FlowError::State {
        what: "layaway",
        id: l.id,
        status: format!("paid {} by {} (payment {})", p.amount_minor, p.method, p.id),
        action: "cancel: only cash and card payments of zero or above can be given back",
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::give_back;
    use proptest::prelude::*;

    #[test]
    fn the_fee_comes_out_of_cash_first_then_the_oldest_card_payments() {
        assert_eq!(give_back(0, 300, &[1_000, 700]), (300, vec![1_000, 700]));
        assert_eq!(give_back(224, 1_235, &[1_000]), (1_011, vec![1_000]));
        assert_eq!(give_back(1_000, 300, &[1_000, 700]), (0, vec![300, 700]));
        assert_eq!(give_back(1_500, 300, &[1_000, 700]), (0, vec![0, 500]));
        assert_eq!(give_back(2_000, 300, &[1_000, 700]), (0, vec![0, 0]));
        assert_eq!(give_back(0, 0, &[]), (0, vec![]));
    }

    proptest! {
        #[test]
        fn what_goes_back_and_the_fee_add_up_to_what_was_paid(
            cash in 0i64..1_000_000,
            cards in prop::collection::vec(0i64..1_000_000, 0..5),
            share in 0u32..=1_000_000,
        ) {
            let paid = cash + cards.iter().sum::<i64>();
            let fee = super::apply_ppm(paid, i64::from(share))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (cash_back, cards_back) = give_back(fee, cash, &cards);
            prop_assert_eq!(cash_back + cards_back.iter().sum::<i64>() + fee, paid);
            prop_assert!((0..=cash).contains(&cash_back));
            for (back, card) in cards_back.iter().zip(&cards) {
                prop_assert!((0..=*card).contains(back));
            }
            // Cash pays the fee before any card does.
            if cards_back != cards {
                prop_assert_eq!(cash_back, 0);
            }
        }
    }
}
