//! Refunds and voids: a new sale whose lines reverse lines of the original (never edited).
//!
//! A reversal is a sale of its own (number `R-…`, status `completed`, the original's customer
//! and currency) whose figures are all negative: each of its lines mirrors a line of the
//! original with a negative quantity, discount, tax and total (the unit price stays as sold),
//! and one `sale_reversals` row per line records the positive quantity it reversed. What is
//! left of a line is its quantity less those rows, so a line is never reversed twice.
//!
//! Figures of a partial line: gross `money::extend(q, unit)`, discount and tax in proportion to
//! the quantity (`line × q / quantity`, half away from zero), each capped at what is left of
//! the line; the part that takes the rest of a line takes exactly the line's figures less what
//! earlier reversals took, so a line refunded in parts returns exactly its total.
//!
//! Loyalty points accrued on the original are reversed in proportion to the net (before tax)
//! reversed so far, computed cumulatively over every reversal of the sale: `taken back in all =
//! earned × net reversed in all / sale net`, so no rounding drifts, nothing is taken back twice,
//! and the last reversal takes back exactly what is left.
//!
//! Commission is reversed line by line, on the refunded lines' own net, not the sale's: each
//! original commission row (per user and rule) covers the lines the checkout chose that rule
//! for (the same choice, `checkout::best_commission_rule`, among the rules in force now
//! and those the sale earned by), each line's share is what the checkout computed on it
//! (`net × rate`, half away from zero), and a line gives back its share in proportion to its
//! net reversed so far (all of it once the line is wholly reversed), again cumulatively. The
//! shares add up to what the row earned, so refunding every line one by one takes back exactly
//! what was earned and never more. Lines are attributed with today's rules and categories; when
//! their shares no longer add up to what the row earned (a rule or a product's category changed
//! since the sale), that row falls back to the sale's proportion above.
//!
//! Promotion uses are given back on the promotion's ledger (`promotion_usage`, append-only): a
//! row on the reversal sale for each promotion the original used, once every line of the
//! original that got a promotion discount is wholly reversed (by this reversal and earlier
//! ones), and only once per promotion and sale. Sale lines do not record which promotion
//! discounted them, so a sale with two promotions gives both back together: never a use given
//! back for goods the customer kept. A promotion's uses are its rows on sales less its rows on
//! reversal sales, rows on voided sales (cancelled layaways) counting for nothing
//! (`checkout::uses`).
//!
//! Money goes back the way it came. A refund's tenders are capped per method at what the sale
//! took by it less what its earlier refunds gave back by it (read from the reversal sales'
//! payments and, for points, their `reverse` loyalty rows), gift cards card by card, unless the
//! tenant allows refunds to any tender. A gift card that is now blocked or expired takes nothing
//! back; what it paid goes back by other tenders only under that tenant-wide rule or a manager's
//! override of this one refund ([`Refund::override_unusable_card`]), which raises the other
//! methods' caps (points excepted) by what those cards paid and were not given back, less what
//! earlier refunds already gave past the caps, and is written to the audit log with the
//! approver and the reason. A void gives every payment back to its own method, card, account or
//! points.
//!
//! Points given back are worth what they were worth on the sale, not the tenant's point value
//! today: the sale's rate is what its points payments took over the points it redeemed. The
//! points given back by all refunds of the sale, this one included, are valued together
//! (`points in all × rate`, half away from zero) less what the points of earlier refunds were
//! valued at, so no rounding drifts and all the points redeemed give back exactly what they
//! paid. Points cannot always cover an amount exactly (a point worth 2 and 979 due), so while
//! the sale has redeemed points not yet given back, a refund may give cash past the cash cap
//! by less than one point's value at the sale's rate: the remainder the points cannot cover.
//!
//! One file of about 1,400 lines, on purpose for now: the figures of a partial line, the caps
//! per tender and the points rate are three views of one tally of the sale's reversals, read
//! and checked in one place so a refund and a void cannot disagree about what is left. The caps
//! (`Tally`, `Method`, `PointRate` and their reads) are the seam to split along when the file
//! grows further.

use std::collections::BTreeMap;

use rusqlite::ToSql;
use serde::{Deserialize, Serialize};

use super::accounts::{self, unusable_reason, usable_card};
use super::checkout::{best_commission_rule, receipt_number, CommissionRuleRef};
use super::money::{apply_ppm, extend, mul_div_round, sum};
use super::FlowError;
use crate::catalog::{
    Commission, CreditTransaction, GiftCard, GiftCardTransaction, InventoryTransaction,
    LoyaltyTransaction, PaymentMethod, PromotionUse, Sale, SaleLine, SalePayment, SaleReversal,
};
use crate::ids::{RowId, Timestamp};
use crate::tenant::settings::{BusinessRules, ReceiptBrand, Role};
use crate::tenant::{Actor, Scope};
use crate::Result;

/// How a refund gives money back. Each amount is positive; together they must be exactly the
/// refund's total.
///
/// Money goes back the way it came: unless the tenant allows refunds to any tender
/// ([`crate::BusinessRules::allow_refund_to_any_tender`], a manager's override), what all refunds
/// of a sale give back by a method, this one included, may not exceed what the sale took by it.
/// Cash is capped at the sale's cash payments net of change, card at its card payments, a gift
/// card at what that very card paid (so only a card the sale was paid with), store credit at
/// what was charged to the customer's credit, and loyalty at the points redeemed on the sale. A
/// completed layaway's cash and card payments count as its sale's (a layaway takes no other
/// method; a row of another method, written past the flows, counts for nothing). Past a cap the
/// refund is refused with [`FlowError::RefundExceedsTender`] and nothing is written.
///
/// Points are worth the sale's own rate (what its points payments took over the points it
/// redeemed), whatever the tenant's point value is today; a sale that redeemed none (refunded
/// as points by the override) values them at today's point value. One exception to the cash
/// cap: points cannot always cover an amount exactly, so while the sale has redeemed points
/// not yet given back, a refund may give cash past the cash cap by less than one point's value
/// at the sale's rate (a sale paid 979 points worth 2 each, refunded half: 489 points and 1 in
/// cash). Amounts must still add up exactly to the refund's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "method")]
pub enum RefundTender {
    /// Cash handed back.
    Cash {
        /// Amount handed back.
        amount_minor: i64,
    },
    /// Credited to a payment card; the sale must have taken at least as much by card.
    Card {
        /// Amount credited.
        amount_minor: i64,
        /// Reference from the card terminal.
        reference: String,
    },
    /// Loaded back onto a gift card the sale was paid with (a `refund` ledger row), up to what
    /// that card paid. A card that is now blocked or expired is refused
    /// ([`FlowError::GiftCardUnusable`]); see [`Refund::override_unusable_card`].
    GiftCard {
        /// The card.
        card_id: RowId,
        /// Amount loaded.
        amount_minor: i64,
    },
    /// Taken off what the sale's customer owes on store credit (a `refund` ledger row), up to
    /// what the sale charged to it.
    StoreCredit {
        /// Amount taken off.
        amount_minor: i64,
    },
    /// Points given back to the sale's customer's loyalty account (a `reverse` ledger row),
    /// worth what they were worth on the sale (not the tenant's point value today), up to the
    /// points redeemed on the sale.
    Loyalty {
        /// Points given back.
        points: i64,
    },
}

/// A refund of a sale, or of some of its lines. Build it with [`Refund::new`] and the builder
/// methods.
///
/// ```
/// use pos_tenancy::catalog::Product;
/// use pos_tenancy::pos::{Checkout, LineItem, Pos, Refund, RefundTender, Tender};
/// use pos_tenancy::{NewTenant, RowId, Store, TenantAccess, Timestamp};
/// let store = Store::open_in_memory()?;
/// store.add_tenant(&NewTenant::new("caps".parse()?, "Caps"))?;
/// let caps = store.tenant(&"caps".parse()?)?;
/// let admin = caps.bootstrap_admin("owner", "Store Owner")?;
/// let now = Timestamp::now();
/// let oil = Product {
///     id: RowId::new(), sku: "OIL-5W30".into(), barcode: None, name: "5W-30 oil, 1 l".into(),
///     description: None, brand: None, category_id: None, kind: "stocked".into(),
///     price_minor: 899, cost_minor: 500, currency: "USD".into(), taxable: true,
///     reorder_level_milli: 0, image: None, active: true, created_at: now, updated_at: now,
/// };
/// caps.insert(&admin, &oil)?;
/// caps.receive_stock(&admin, oil.id, "main", 10_000, Some(500))?;
/// let sale = caps.checkout(&admin, &Checkout::new()
///     .line(LineItem::product(oil.id, 2_000))
///     .tender(Tender::Cash { tendered_minor: 2_000 }))?;
/// // One of the two bottles comes back.
/// let refund = caps.refund(&admin, &Refund::new(sale.sale.id, "leaking")
///     .line(sale.lines[0].id, 1_000)
///     .tender(RefundTender::Cash { amount_minor: 899 }))?;
/// assert_eq!(refund.sale.total_minor, -899);
/// assert_eq!(caps.stock_on_hand(oil.id, "main")?, 9_000);
/// # Ok::<(), pos_tenancy::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The sale refunded.
    pub sale_id: RowId,
    /// Lines of the sale and the quantity (thousandths) to refund of each; empty refunds all
    /// that is left of every line.
    pub lines: Vec<(RowId, i64)>,
    /// How the money goes back; together exactly the refund's total, each method within what
    /// the sale took by it (see [`RefundTender`]).
    pub tenders: Vec<RefundTender>,
    /// Whether stocked products go back on the shelf (a `refund` stock row each). Default: yes.
    pub restock: bool,
    /// Where restocked products go; by default where the sale took them from.
    pub location: Option<String>,
    /// The terminal.
    pub device_id: Option<RowId>,
    /// Why (kept as the refund's note). Must not be empty.
    pub reason: String,
    /// A manager's approval to give back by other tenders what now blocked or expired gift
    /// cards paid; see [`Refund::override_unusable_card`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_override: Option<CardOverride>,
}

/// A manager's approval, for one refund, to give back by other tenders what the sale's gift
/// cards paid when those cards are now blocked or expired. Made by
/// [`Refund::override_unusable_card`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardOverride {
    /// The approving user: an active manager or admin of the tenant when the refund runs
    /// (checked then, from the users table).
    pub approver_id: RowId,
    /// Why it was approved (kept in the audit log). Must not be empty.
    pub reason: String,
}

impl Refund {
    /// A refund of all that is left of the sale, restocked, with no tenders yet.
    pub fn new(sale_id: RowId, reason: &str) -> Self {
        Self {
            sale_id,
            lines: Vec::new(),
            tenders: Vec::new(),
            restock: true,
            location: None,
            device_id: None,
            reason: reason.to_owned(),
            card_override: None,
        }
    }

    /// Refunds this quantity (thousandths) of a line of the sale.
    pub fn line(mut self, line_id: RowId, quantity_milli: i64) -> Self {
        self.lines.push((line_id, quantity_milli));
        self
    }

    /// Adds a tender.
    pub fn tender(mut self, tender: RefundTender) -> Self {
        self.tenders.push(tender);
        self
    }

    /// Whether stocked products go back on the shelf.
    pub fn restock(mut self, restock: bool) -> Self {
        self.restock = restock;
        self
    }

    /// Puts restocked products at this location.
    pub fn location(mut self, location: &str) -> Self {
        self.location = Some(location.to_owned());
        self
    }

    /// Records the refund on this device.
    pub fn device(mut self, device: RowId) -> Self {
        self.device_id = Some(device);
        self
    }

    /// A manager's override for this refund only: what gift cards that paid the sale and are
    /// now blocked or expired paid (and no refund gave back onto them) may go back in cash, by
    /// card, to store credit or onto another gift card, past those methods' caps; points stay
    /// capped, and the blocked or expired card itself still takes nothing. Without it (or the
    /// tenant-wide [`crate::BusinessRules::allow_refund_to_any_tender`]) such a refund is
    /// refused with [`FlowError::RefundExceedsTender`].
    ///
    /// `approver` must be a manager or admin when the refund runs, else the refund is refused
    /// with [`crate::Error::PermissionDenied`]; the actor ringing the refund up may be a
    /// cashier. The approval is written to the audit log (actor: the approver; detail: the
    /// reason, who refunded, the cards and the amount that went past the caps) in the refund's
    /// transaction. `reason` must not be empty.
    pub fn override_unusable_card(mut self, approver: &Actor, reason: &str) -> Self {
        self.card_override = Some(CardOverride {
            approver_id: approver.user_id(),
            reason: reason.to_owned(),
        });
        self
    }
}

/// What a refund or void wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefundReceipt {
    /// The reversal sale (negative figures).
    pub sale: Sale,
    /// Its lines (negative quantities and amounts).
    pub lines: Vec<SaleLine>,
    /// What each line reversed, one row per line.
    pub reversals: Vec<SaleReversal>,
    /// Money given back (negative amounts).
    pub payments: Vec<SalePayment>,
    /// Loyalty points accrued on the original sale and taken back now.
    pub points_reversed: i64,
    /// Loyalty points given back as a tender (or, by a void, because the sale was paid with
    /// them).
    pub points_returned: i64,
    /// Commission reversed (negative amounts), one row per original earner and rule.
    pub commissions: Vec<Commission>,
    /// Promotion uses given back, one row per promotion, on the reversal sale (empty until
    /// every line a promotion discounted is wholly reversed).
    pub promotions: Vec<PromotionUse>,
}

// ------------------------------------------------------------------------------------- reading

fn sale_lines(s: &Scope<'_>, sale: RowId) -> Result<Vec<SaleLine>> {
    s.rows_where("sale_id = ?2", "ORDER BY line_no", &[&sale])
}

fn sale_payments(s: &Scope<'_>, sale: RowId) -> Result<Vec<SalePayment>> {
    s.rows_where("sale_id = ?2", "ORDER BY paid_at, id", &[&sale])
}

fn count(s: &Scope<'_>, sql: &str, id: RowId) -> Result<i64> {
    s.query_row(sql, &[&id], |r| r.get(0))
}

/// The sale to reverse and its lines; refused unless it is a completed sale (not itself a
/// reversal, nor a sale of a gift card, whose money is on the card).
fn original(s: &Scope<'_>, sale_id: RowId, action: &'static str) -> Result<(Sale, Vec<SaleLine>)> {
    let sale: Sale = s.row(sale_id)?;
    let refuse = |status: String| FlowError::State {
        what: "sale",
        id: sale_id,
        status,
        action,
    };
    if sale.status != "completed" {
        return Err(refuse(sale.status).into());
    }
    let is_reversal = sale.total_minor < 0
        || count(
            s,
            "SELECT count(*) FROM sale_reversals WHERE tenant_id = ?1 AND reversal_sale_id = ?2",
            sale_id,
        )? > 0;
    if is_reversal {
        return Err(refuse("a refund or void".to_owned()).into());
    }
    // A gift card sale's money is on the card: giving it back would leave the card loaded.
    if let Some(card) = accounts::card_sold_by(s, sale_id)? {
        return Err(FlowError::SoldGiftCard {
            sale: sale_id,
            card,
            action,
        }
        .into());
    }
    let lines = sale_lines(s, sale_id)?;
    Ok((sale, lines))
}

/// What earlier reversals took of a line: quantity and amounts, all positive.
#[derive(Debug, Default, Clone, Copy)]
struct Taken {
    quantity: i64,
    gross: i64,
    discount: i64,
    tax: i64,
}

fn taken(s: &Scope<'_>, line: RowId) -> Result<Taken> {
    let (quantity, gross, discount, tax) = s.query_row(
        "SELECT coalesce(sum(r.quantity_milli), 0),
                coalesce(-sum(l.total_minor - l.tax_minor + l.discount_minor), 0),
                coalesce(-sum(l.discount_minor), 0), coalesce(-sum(l.tax_minor), 0)
         FROM sale_reversals r
         JOIN sale_lines l ON l.tenant_id = r.tenant_id AND l.id = r.reversal_line_id
         WHERE r.tenant_id = ?1 AND r.sale_line_id = ?2",
        &[&line],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    Ok(Taken {
        quantity,
        gross,
        discount,
        tax,
    })
}

// ------------------------------------------------------------------------------------- figures

/// One original line and what this reversal takes of it (positive figures).
struct Part<'a> {
    line: &'a SaleLine,
    quantity: i64,
    gross: i64,
    discount: i64,
    tax: i64,
}

impl Part<'_> {
    fn net(&self) -> i64 {
        self.gross - self.discount
    }

    fn total(&self) -> i64 {
        self.gross - self.discount + self.tax
    }
}

/// `value` kept between zero and `left` (whichever side of zero `left` is on).
fn within(value: i64, left: i64) -> i64 {
    if left >= 0 {
        value.clamp(0, left)
    } else {
        value.clamp(left, 0)
    }
}

/// A line's gross (before discount), from its stored figures.
fn line_gross(line: &SaleLine) -> i64 {
    line.total_minor - line.tax_minor + line.discount_minor
}

fn part(line: &SaleLine, taken: Taken, quantity: i64) -> Result<Part<'_>> {
    let remaining = line.quantity_milli - taken.quantity;
    if quantity > remaining {
        return Err(FlowError::ReverseTooMuch {
            line: line.id,
            remaining_milli: remaining,
            wanted_milli: quantity,
        }
        .into());
    }
    let left_gross = line_gross(line) - taken.gross;
    let left_discount = line.discount_minor - taken.discount;
    let left_tax = line.tax_minor - taken.tax;
    if quantity == remaining {
        // The rest of the line: exactly what is left, so the parts add up to the line.
        return Ok(Part {
            line,
            quantity,
            gross: left_gross,
            discount: left_discount,
            tax: left_tax,
        });
    }
    let share =
        |whole: i64| mul_div_round(whole, quantity, line.quantity_milli).ok_or(FlowError::Overflow);
    Ok(Part {
        line,
        quantity,
        gross: within(extend(quantity, line.unit_price_minor)?, left_gross),
        discount: within(share(line.discount_minor)?, left_discount),
        tax: within(share(line.tax_minor)?, left_tax),
    })
}

/// The parts a refund asks for: the named lines (quantities of one line added up), or all
/// that is left of every line.
fn refund_parts<'a>(
    sale: &Sale,
    lines: &'a [SaleLine],
    taken: &BTreeMap<RowId, Taken>,
    wanted: &[(RowId, i64)],
) -> Result<Vec<Part<'a>>> {
    let taken_of = |id: RowId| taken.get(&id).copied().unwrap_or_default();
    if wanted.is_empty() {
        let parts = lines
            .iter()
            .filter_map(|l| {
                let left = l.quantity_milli - taken_of(l.id).quantity;
                (left > 0).then(|| part(l, taken_of(l.id), left))
            })
            .collect::<Result<Vec<_>>>()?;
        if parts.is_empty() {
            return Err(FlowError::State {
                what: "sale",
                id: sale.id,
                status: "wholly reversed".to_owned(),
                action: "refund",
            }
            .into());
        }
        return Ok(parts);
    }
    // Receipt order of the first mention; one part per original line.
    let mut by_line: Vec<(&SaleLine, i64)> = Vec::new();
    for (i, (id, quantity)) in wanted.iter().enumerate() {
        if *quantity <= 0 {
            return Err(FlowError::Quantity {
                line: i + 1,
                quantity_milli: *quantity,
            }
            .into());
        }
        let line = lines
            .iter()
            .find(|l| l.id == *id)
            .ok_or(FlowError::ForeignLine {
                line: *id,
                sale: sale.id,
            })?;
        match by_line.iter_mut().find(|(l, _)| l.id == *id) {
            Some((_, q)) => *q = q.checked_add(*quantity).ok_or(FlowError::Overflow)?,
            None => by_line.push((line, *quantity)),
        }
    }
    by_line
        .into_iter()
        .map(|(l, q)| part(l, taken_of(l.id), q))
        .collect()
}

// ------------------------------------------------------------------------------------- writing

/// The reversal sale, its lines and one `sale_reversals` row per line.
struct Written {
    sale: Sale,
    lines: Vec<SaleLine>,
    reversals: Vec<SaleReversal>,
}

#[allow(clippy::too_many_arguments)]
fn write_reversal(
    s: &Scope<'_>,
    actor: &Actor,
    original: &Sale,
    parts: &[Part<'_>],
    kind: &str,
    device: Option<RowId>,
    reason: &str,
    now: Timestamp,
) -> Result<Written> {
    let id = RowId::new();
    let subtotal = sum(parts.iter().map(|p| p.gross))?;
    let discount = sum(parts.iter().map(|p| p.discount))?;
    let tax = sum(parts.iter().map(|p| p.tax))?;
    let total = sum(parts.iter().map(Part::total))?;
    // The reversal's receipt is printed now, under today's brand; its tax mirrors what the
    // original charged, so the rates it names are the original's.
    let mut brand = s.tenant_settings()?.receipt_brand();
    brand.tax_rates = original
        .receipt_brand
        .as_ref()
        .and_then(ReceiptBrand::from_json)
        .map(|b| b.tax_rates)
        .unwrap_or_default();
    let sale = Sale {
        id,
        number: receipt_number("R", id),
        device_id: device,
        customer_id: original.customer_id,
        user_id: actor.user_id(),
        status: "completed".to_owned(),
        currency: original.currency.clone(),
        subtotal_minor: -subtotal,
        discount_minor: -discount,
        tax_minor: -tax,
        total_minor: -total,
        sold_at: now,
        note: Some(reason.to_owned()),
        receipt_brand: brand.to_json(),
    };
    s.append(actor, &sale)?;
    let mut lines = Vec::with_capacity(parts.len());
    let mut reversals = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        let line = SaleLine {
            id: RowId::new(),
            sale_id: id,
            line_no: i64::try_from(i + 1).map_err(|_| FlowError::Overflow)?,
            kind: p.line.kind.clone(),
            product_id: p.line.product_id,
            description: p.line.description.clone(),
            quantity_milli: -p.quantity,
            unit_price_minor: p.line.unit_price_minor,
            discount_minor: -p.discount,
            tax_minor: -p.tax,
            total_minor: -p.total(),
        };
        s.append(actor, &line)?;
        let reversal = SaleReversal {
            id: RowId::new(),
            sale_id: original.id,
            sale_line_id: p.line.id,
            reversal_sale_id: id,
            reversal_line_id: line.id,
            kind: kind.to_owned(),
            quantity_milli: p.quantity,
            created_at: now,
        };
        s.append(actor, &reversal)?;
        lines.push(line);
        reversals.push(reversal);
    }
    Ok(Written {
        sale,
        lines,
        reversals,
    })
}

/// A `refund` stock row for each line whose product the original sale took from stock, at
/// `location` or where the sale took it from.
#[allow(clippy::too_many_arguments)]
fn restock(
    s: &Scope<'_>,
    actor: &Actor,
    original: RowId,
    reversal: RowId,
    parts: &[Part<'_>],
    location: Option<&str>,
    reason: &str,
    now: Timestamp,
) -> Result<()> {
    // Whether a product is stocked is what the sale did, not what the product is now.
    let mut taken_from: BTreeMap<RowId, (String, Option<i64>)> = BTreeMap::new();
    let rows: Vec<(RowId, String, Option<i64>)> = s.query_map(
        "SELECT product_id, location, unit_cost_minor FROM inventory_transactions
         WHERE tenant_id = ?1 AND sale_id = ?2 AND quantity_milli < 0 ORDER BY id",
        &[&original],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    // The first row of each product says where the sale took it from.
    for (product, loc, cost) in rows {
        taken_from.entry(product).or_insert((loc, cost));
    }
    for p in parts {
        let Some((product_id, (from, cost))) = p
            .line
            .product_id
            .and_then(|id| taken_from.get(&id).map(|t| (id, t)))
        else {
            continue;
        };
        s.append(
            actor,
            &InventoryTransaction {
                id: RowId::new(),
                product_id,
                location: location.unwrap_or(from).to_owned(),
                kind: "refund".to_owned(),
                quantity_milli: p.quantity,
                unit_cost_minor: *cost,
                reason: Some(reason.to_owned()),
                sale_id: Some(reversal),
                user_id: Some(actor.user_id()),
                created_at: now,
            },
        )?;
    }
    Ok(())
}

/// Money going back, checked and ready to write (amounts positive).
enum Payback {
    Cash(i64),
    Card(i64, Option<String>),
    GiftCard(RowId, i64),
    StoreCredit(RowId, i64),
    /// Account, points, their amount.
    Loyalty(RowId, i64, i64),
}

impl Payback {
    fn amount(&self) -> i64 {
        match self {
            Self::Cash(a) | Self::Card(a, _) | Self::GiftCard(_, a) | Self::StoreCredit(_, a) => *a,
            Self::Loyalty(_, _, a) => *a,
        }
    }
}

/// The sale's customer's store credit or loyalty account, for money going back by `method`.
fn account_of(
    s: &Scope<'_>,
    sale: &Sale,
    what: &'static str,
    method: PaymentMethod,
) -> Result<RowId> {
    let no_account = || FlowError::NoAccount {
        what,
        account: method.as_str(),
    };
    let customer = sale.customer_id.ok_or_else(no_account)?;
    let found = if method == PaymentMethod::Loyalty {
        accounts::loyalty_account(s, customer)?
    } else {
        accounts::credit_account(s, customer)?
    };
    Ok(found.ok_or_else(no_account)?)
}

/// What a manager's override let through ([`Refund::override_unusable_card`]).
#[derive(Debug, Default)]
struct Overridden {
    /// The sale's gift cards that are blocked or expired now.
    cards: Vec<RowId>,
    /// What this refund gives past the caps of other methods on their account.
    past_caps_minor: i64,
}

/// Checks a refund's tenders, that they give back exactly `due` (positive), and, unless the
/// rules allow any tender, that each method stays within what the sale took by it, but for
/// what a manager's override (`card_override`) lets past the caps.
fn refund_paybacks(
    s: &Scope<'_>,
    sale: &Sale,
    rules: &BusinessRules,
    tenders: &[RefundTender],
    due: i64,
    card_override: bool,
    now: Timestamp,
) -> Result<(Vec<Payback>, Overridden)> {
    let positive = |what, amount_minor: i64| {
        if amount_minor <= 0 {
            Err(FlowError::Amount {
                what,
                rule: "above zero",
                amount_minor,
            })
        } else {
            Ok(amount_minor)
        }
    };
    let gives_points = tenders
        .iter()
        .any(|t| matches!(t, RefundTender::Loyalty { .. }));
    let tally = if gives_points || !rules.allow_refund_to_any_tender {
        Some(Tally::of(s, sale.id, rules)?)
    } else {
        None
    };
    // Points given back before this refund, then with each loyalty tender of it.
    let mut points_back = tally.as_ref().map_or(0, |t| {
        t.refunded.get(&Method::LOYALTY).copied().unwrap_or(0)
    });
    let mut out = Vec::with_capacity(tenders.len());
    for t in tenders {
        out.push(match t {
            RefundTender::Cash { amount_minor } => {
                Payback::Cash(positive("a cash refund", *amount_minor)?)
            }
            RefundTender::Card {
                amount_minor,
                reference,
            } => {
                let amount = positive("a card refund", *amount_minor)?;
                if reference.trim().is_empty() {
                    return Err(FlowError::Empty {
                        what: "a card refund's reference",
                    }
                    .into());
                }
                Payback::Card(amount, Some(reference.clone()))
            }
            RefundTender::GiftCard {
                card_id,
                amount_minor,
            } => {
                let amount = positive("a gift card refund", *amount_minor)?;
                let card: GiftCard = s.row(*card_id)?;
                if card.currency != sale.currency {
                    return Err(FlowError::Currency {
                        what: "the gift card",
                        expected: sale.currency.clone(),
                        found: card.currency,
                    }
                    .into());
                }
                if let Some(reason) = unusable_reason(&card, now) {
                    return Err(FlowError::GiftCardUnusable {
                        card: card.id,
                        reason,
                    }
                    .into());
                }
                Payback::GiftCard(card.id, amount)
            }
            RefundTender::StoreCredit { amount_minor } => {
                let amount = positive("a store credit refund", *amount_minor)?;
                let account =
                    account_of(s, sale, "a store credit refund", PaymentMethod::StoreCredit)?;
                Payback::StoreCredit(account, amount)
            }
            RefundTender::Loyalty { points } => {
                let points = positive("points given back", *points)?;
                let account = account_of(s, sale, "a loyalty refund", PaymentMethod::Loyalty)?;
                let rate = match &tally {
                    Some(t) => t.rate,
                    None => PointRate::today(rules),
                };
                if rate.minor <= 0 {
                    // Points worth nothing would pass the total check and still be given.
                    return Err(FlowError::TenderNotAccepted {
                        flow: "a refund (points are worth nothing)",
                        method: PaymentMethod::Loyalty.as_str(),
                    }
                    .into());
                }
                let after = points_back.checked_add(points).ok_or(FlowError::Overflow)?;
                let amount = rate
                    .value(after)?
                    .checked_sub(rate.value(points_back)?)
                    .ok_or(FlowError::Overflow)?;
                points_back = after;
                Payback::Loyalty(account, points, amount)
            }
        });
    }
    let given = sum(out.iter().map(Payback::amount))?;
    if given < due {
        return Err(FlowError::Underpaid {
            due_minor: due,
            paid_minor: given,
        }
        .into());
    }
    if given > due {
        return Err(FlowError::Overpaid {
            due_minor: due,
            paid_minor: given,
        }
        .into());
    }
    let mut overridden = Overridden::default();
    if let (false, Some(tally)) = (rules.allow_refund_to_any_tender, &tally) {
        let slack = if card_override {
            let (cards, slack) = tally.unusable_cards(s, now)?;
            overridden.cards = cards;
            slack
        } else {
            0
        };
        overridden.past_caps_minor = within_tenders(tally, &out, slack)?;
    }
    Ok((out, overridden))
}

/// What points given back are worth: `minor` minor units for every `points` points.
#[derive(Debug, Clone, Copy)]
struct PointRate {
    minor: i64,
    points: i64,
}

impl PointRate {
    /// The tenant's point value today.
    fn today(rules: &BusinessRules) -> Self {
        Self {
            minor: i64::from(rules.loyalty_point_value_minor),
            points: 1,
        }
    }

    /// What `points` are worth, half away from zero.
    fn value(self, points: i64) -> Result<i64> {
        Ok(mul_div_round(points, self.minor, self.points).ok_or(FlowError::Overflow)?)
    }

    /// Whether `amount` is less than one point's value.
    fn below_one_point(self, amount: i64) -> bool {
        i128::from(amount) * i128::from(self.points) < i128::from(self.minor)
    }
}

/// What a sale took by each method, what its earlier refunds gave back by each, and the rate
/// its points are given back at.
struct Tally {
    took: BTreeMap<Method, i64>,
    refunded: BTreeMap<Method, i64>,
    rate: PointRate,
    /// Whether the rate is the sale's own (it redeemed points), not today's point value.
    redeemed: bool,
}

impl Tally {
    fn of(s: &Scope<'_>, sale: RowId, rules: &BusinessRules) -> Result<Self> {
        let took = sale_took(s, sale)?;
        let refunded = refunded_before(s, sale)?;
        let redeemed_points = took.get(&Method::LOYALTY).copied().unwrap_or(0);
        let (rate, redeemed) = if redeemed_points > 0 {
            let minor = points(
                s,
                "SELECT coalesce(sum(amount_minor), 0) FROM sale_payments
                 WHERE tenant_id = ?1 AND sale_id = ?2 AND method = ?3",
                &[&sale, &PaymentMethod::Loyalty],
            )?;
            let rate = PointRate {
                minor,
                points: redeemed_points,
            };
            (rate, true)
        } else {
            (PointRate::today(rules), false)
        };
        Ok(Self {
            took,
            refunded,
            rate,
            redeemed,
        })
    }

    /// The sale's gift cards that are blocked or expired at `now`, and what a manager's override
    /// may let go back past other methods' caps on their account: what those cards paid and
    /// no refund gave back onto them, less what earlier refunds already gave past the caps of
    /// the other methods (points aside), so the same money is never moved twice.
    fn unusable_cards(&self, s: &Scope<'_>, now: Timestamp) -> Result<(Vec<RowId>, i64)> {
        let mut cards = Vec::new();
        let mut left = 0i64;
        for (method, took) in &self.took {
            let Some(card) = method.card else { continue };
            let c: GiftCard = s.row(card)?;
            if unusable_reason(&c, now).is_none() {
                continue;
            }
            let refunded = self.refunded.get(method).copied().unwrap_or(0);
            cards.push(card);
            left = left
                .checked_add((took - refunded).max(0))
                .ok_or(FlowError::Overflow)?;
        }
        let mut past = 0i64;
        for (method, refunded) in &self.refunded {
            if *method == Method::LOYALTY || method.card.is_some_and(|c| cards.contains(&c)) {
                continue;
            }
            let took = self.took.get(method).copied().unwrap_or(0);
            past = past
                .checked_add((refunded - took).max(0))
                .ok_or(FlowError::Overflow)?;
        }
        Ok((cards, (left - past).max(0)))
    }

    /// Cash this refund may give past the cash cap: less than one point's value at the sale's
    /// rate, while the sale has redeemed points not yet given back.
    fn cash_over_cap_allowed(&self, over: i64) -> bool {
        let took = self.took.get(&Method::LOYALTY).copied().unwrap_or(0);
        let back = self.refunded.get(&Method::LOYALTY).copied().unwrap_or(0);
        self.redeemed && back < took && self.rate.below_one_point(over)
    }
}

/// A refund method as the caps count it: a payment method, gift cards one by one (each card
/// is capped at what it paid), loyalty in points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Method {
    method: PaymentMethod,
    /// The card, for [`PaymentMethod::GiftCard`] only.
    card: Option<RowId>,
}

impl Method {
    const CASH: Self = Self::of(PaymentMethod::Cash);
    const LOYALTY: Self = Self::of(PaymentMethod::Loyalty);

    /// A method other than a gift card.
    const fn of(method: PaymentMethod) -> Self {
        Self { method, card: None }
    }

    /// The method of a payment row other than points (those are counted from the loyalty
    /// ledger). A gift card payment that names no card counts as cash, as a void gives it back
    /// in cash.
    fn of_payment(method: &str, card: Option<RowId>) -> Option<Self> {
        match (method.parse().ok()?, card) {
            (PaymentMethod::Loyalty, _) => None,
            (PaymentMethod::GiftCard, None) => Some(Self::CASH),
            (PaymentMethod::GiftCard, Some(card)) => Some(Self {
                method: PaymentMethod::GiftCard,
                card: Some(card),
            }),
            (method, _) => Some(Self::of(method)),
        }
    }
}

impl Payback {
    /// The method and what it gives back by it (points for loyalty).
    fn method(&self) -> (Method, i64) {
        match self {
            Self::Cash(a) => (Method::CASH, *a),
            Self::Card(a, _) => (Method::of(PaymentMethod::Card), *a),
            Self::GiftCard(card, a) => (
                Method {
                    method: PaymentMethod::GiftCard,
                    card: Some(*card),
                },
                *a,
            ),
            Self::StoreCredit(_, a) => (Method::of(PaymentMethod::StoreCredit), *a),
            Self::Loyalty(_, points, _) => (Method::LOYALTY, *points),
        }
    }
}

fn add_to(map: &mut BTreeMap<Method, i64>, method: Method, amount: i64) -> Result<()> {
    let entry = map.entry(method).or_default();
    *entry = entry.checked_add(amount).ok_or(FlowError::Overflow)?;
    Ok(())
}

/// Sums rows of (method, gift card, amount) into `map`, by [`Method::of_payment`].
fn add_payments(
    s: &Scope<'_>,
    sql: &str,
    params: &[&dyn ToSql],
    map: &mut BTreeMap<Method, i64>,
) -> Result<()> {
    let rows: Vec<(String, Option<RowId>, i64)> =
        s.query_map(sql, params, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    for (method, card, amount) in rows {
        if let Some(m) = Method::of_payment(&method, card) {
            add_to(map, m, amount)?;
        }
    }
    Ok(())
}

fn points(s: &Scope<'_>, sql: &str, params: &[&dyn ToSql]) -> Result<i64> {
    s.query_row(sql, params, |r| r.get(0))
}

/// What the sale took by each method: its payments (cash net of change), a completed
/// layaway's cash and card payments (the methods a layaway takes; a row of another method was
/// written past the flows, and a layaway's cancellation refuses it too), and the points
/// redeemed on it.
fn sale_took(s: &Scope<'_>, sale: RowId) -> Result<BTreeMap<Method, i64>> {
    let mut took = BTreeMap::new();
    add_payments(
        s,
        "SELECT method, gift_card_id, sum(amount_minor) FROM sale_payments
         WHERE tenant_id = ?1 AND sale_id = ?2 AND method <> ?3
         GROUP BY method, gift_card_id",
        &[&sale, &PaymentMethod::Loyalty],
        &mut took,
    )?;
    add_payments(
        s,
        "SELECT p.method, NULL, sum(p.amount_minor) FROM layaways l
         JOIN layaway_payments p ON p.tenant_id = l.tenant_id AND p.layaway_id = l.id
         WHERE l.tenant_id = ?1 AND l.sale_id = ?2 AND p.method IN (?3, ?4)
         GROUP BY p.method",
        &[&sale, &PaymentMethod::Cash, &PaymentMethod::Card],
        &mut took,
    )?;
    let redeemed = points(
        s,
        "SELECT coalesce(-sum(points), 0) FROM loyalty_transactions
         WHERE tenant_id = ?1 AND sale_id = ?2 AND kind = 'redeem'",
        &[&sale],
    )?;
    add_to(&mut took, Method::LOYALTY, redeemed)?;
    Ok(took)
}

/// What earlier refunds of the sale gave back by each method: their payments, and the points
/// they gave back (`reverse` rows above zero; those below take back accrued points).
fn refunded_before(s: &Scope<'_>, sale: RowId) -> Result<BTreeMap<Method, i64>> {
    let mut refunded = BTreeMap::new();
    add_payments(
        s,
        &format!(
            "SELECT method, gift_card_id, -sum(amount_minor) FROM sale_payments
             WHERE tenant_id = ?1 AND sale_id IN ({REVERSALS_OF}) AND method <> ?3
             GROUP BY method, gift_card_id"
        ),
        &[&sale, &PaymentMethod::Loyalty],
        &mut refunded,
    )?;
    let returned = points(
        s,
        &format!(
            "SELECT coalesce(sum(points), 0) FROM loyalty_transactions
             WHERE tenant_id = ?1 AND kind = 'reverse' AND points > 0
               AND sale_id IN ({REVERSALS_OF})"
        ),
        &[&sale],
    )?;
    add_to(&mut refunded, Method::LOYALTY, returned)?;
    Ok(refunded)
}

/// Refuses the first method (in the order the tenders name them) whose refunds in all would
/// exceed what the sale took by it, but for cash past its cap by less than one point's value
/// ([`Tally::cash_over_cap_allowed`]) and, up to `slack` in all, any method but points past
/// its cap by a manager's override ([`Tally::unusable_cards`]). Returns what went past the
/// caps on the override's account.
fn within_tenders(tally: &Tally, paybacks: &[Payback], mut slack: i64) -> Result<i64> {
    let mut past_caps = 0i64;
    let mut wanted: Vec<(Method, i64)> = Vec::new();
    for (method, amount) in paybacks.iter().map(Payback::method) {
        match wanted.iter_mut().find(|(m, _)| *m == method) {
            Some((_, w)) => *w = w.checked_add(amount).ok_or(FlowError::Overflow)?,
            None => wanted.push((method, amount)),
        }
    }
    for (method, wanted) in wanted {
        let sale_took = tally.took.get(&method).copied().unwrap_or(0);
        let refunded = tally.refunded.get(&method).copied().unwrap_or(0);
        let in_all = refunded.checked_add(wanted).ok_or(FlowError::Overflow)?;
        // What this refund gives past the cap (earlier refunds may be past it already).
        let over = in_all - sale_took.max(refunded);
        if in_all <= sale_took || (method == Method::CASH && tally.cash_over_cap_allowed(over)) {
            continue;
        }
        if method != Method::LOYALTY && over <= slack {
            slack -= over;
            past_caps = past_caps.checked_add(over).ok_or(FlowError::Overflow)?;
            continue;
        }
        return Err(FlowError::RefundExceedsTender {
            method: method.method.as_str(),
            gift_card: method.card,
            sale_took,
            refunded,
            wanted,
        }
        .into());
    }
    Ok(past_caps)
}

/// What a void gives back: every payment of the sale by its own method, to the same card or
/// account; points paid with go back as points, read from the sale's loyalty ledger rows. A
/// gift card that is blocked or expired now takes nothing back, as in a refund: the void is
/// refused, and a refund with other tenders and a manager's override gives the money back.
fn void_paybacks(s: &Scope<'_>, sale: &Sale) -> Result<Vec<Payback>> {
    let mut out = Vec::new();
    let mut loyalty_minor = 0i64;
    let now = Timestamp::now();
    for p in sale_payments(s, sale.id)? {
        match p.method.parse() {
            Ok(PaymentMethod::Cash) => out.push(Payback::Cash(p.amount_minor)),
            Ok(PaymentMethod::Card) => out.push(Payback::Card(p.amount_minor, p.reference)),
            Ok(PaymentMethod::GiftCard) => match p.gift_card_id {
                Some(card) => {
                    usable_card(s, card, now)?;
                    out.push(Payback::GiftCard(card, p.amount_minor))
                }
                None => out.push(Payback::Cash(p.amount_minor)),
            },
            Ok(PaymentMethod::StoreCredit) => {
                let account = account_of(
                    s,
                    sale,
                    "a void of a store credit payment",
                    PaymentMethod::StoreCredit,
                )?;
                out.push(Payback::StoreCredit(account, p.amount_minor));
            }
            Ok(PaymentMethod::Loyalty) => {
                loyalty_minor = loyalty_minor
                    .checked_add(p.amount_minor)
                    .ok_or(FlowError::Overflow)?;
            }
            _ => {
                return Err(FlowError::TenderNotAccepted {
                    flow: "a void",
                    method: "an unknown payment method",
                }
                .into())
            }
        }
    }
    if loyalty_minor != 0 {
        let rows: Vec<(RowId, i64)> = s.query_map(
            "SELECT account_id, -sum(points) FROM loyalty_transactions
             WHERE tenant_id = ?1 AND sale_id = ?2 AND kind = 'redeem'
             GROUP BY account_id ORDER BY account_id",
            &[&sale.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if rows.is_empty() {
            return Err(FlowError::NoAccount {
                what: "a void of a points payment",
                account: PaymentMethod::Loyalty.as_str(),
            }
            .into());
        }
        // A customer has one loyalty account, so the money goes with the first; a second
        // would get its points back with no amount.
        for (i, (account, points)) in rows.into_iter().enumerate() {
            let amount = if i == 0 { loyalty_minor } else { 0 };
            out.push(Payback::Loyalty(account, points, amount));
        }
    }
    Ok(out)
}

/// Writes the ledger rows and negative payments of the paybacks. Returns the payments and the
/// points given back.
fn pay_back(
    s: &Scope<'_>,
    actor: &Actor,
    sale: &Sale,
    paybacks: Vec<Payback>,
    now: Timestamp,
) -> Result<(Vec<SalePayment>, i64)> {
    let mut payments = Vec::with_capacity(paybacks.len());
    let mut points_returned = 0i64;
    let payment = |method: PaymentMethod, amount: i64| SalePayment {
        id: RowId::new(),
        sale_id: sale.id,
        method: method.as_str().to_owned(),
        amount_minor: -amount,
        currency: sale.currency.clone(),
        tendered_minor: None,
        change_minor: 0,
        reference: None,
        gift_card_id: None,
        paid_at: now,
    };
    for b in paybacks {
        let p = match b {
            Payback::Cash(a) => payment(PaymentMethod::Cash, a),
            Payback::Card(a, reference) => SalePayment {
                reference,
                ..payment(PaymentMethod::Card, a)
            },
            Payback::GiftCard(card, a) => {
                s.append(
                    actor,
                    &GiftCardTransaction {
                        id: RowId::new(),
                        gift_card_id: card,
                        kind: "refund".to_owned(),
                        amount_minor: a,
                        sale_id: Some(sale.id),
                        user_id: Some(actor.user_id()),
                        created_at: now,
                    },
                )?;
                SalePayment {
                    gift_card_id: Some(card),
                    ..payment(PaymentMethod::GiftCard, a)
                }
            }
            Payback::StoreCredit(account, a) => {
                s.append(
                    actor,
                    &CreditTransaction {
                        id: RowId::new(),
                        account_id: account,
                        kind: "refund".to_owned(),
                        amount_minor: -a,
                        sale_id: Some(sale.id),
                        user_id: Some(actor.user_id()),
                        created_at: now,
                    },
                )?;
                payment(PaymentMethod::StoreCredit, a)
            }
            Payback::Loyalty(account, points, a) => {
                s.append(
                    actor,
                    &LoyaltyTransaction {
                        id: RowId::new(),
                        account_id: account,
                        kind: "reverse".to_owned(),
                        points,
                        sale_id: Some(sale.id),
                        created_at: now,
                    },
                )?;
                points_returned = points_returned
                    .checked_add(points)
                    .ok_or(FlowError::Overflow)?;
                if a == 0 {
                    continue;
                }
                payment(PaymentMethod::Loyalty, a)
            }
        };
        s.append(actor, &p)?;
        payments.push(p);
    }
    Ok((payments, points_returned))
}

/// How far the sale is reversed, for taking back points, commission and promotion uses.
struct Progress {
    /// The original sale's net (before tax).
    sale_net: i64,
    /// Net reversed by every reversal so far, this one included.
    reversed_net: i64,
    /// Whether every line is now wholly reversed.
    whole: bool,
    /// Each line of the original, in receipt order.
    lines: Vec<LineProgress>,
}

/// How far one line of the original sale is reversed.
struct LineProgress {
    /// Its product, if any.
    product: Option<RowId>,
    /// Its net (gross less discount, before tax): what the checkout computed commission on.
    net: i64,
    /// Net of it reversed by every reversal so far, this one included.
    reversed_net: i64,
    /// Whether it is now wholly reversed.
    whole: bool,
    /// Whether a promotion discounted it.
    discounted: bool,
}

impl LineProgress {
    fn of(line: &SaleLine, before: Taken, parts: &[Part<'_>]) -> Result<Self> {
        let mut quantity = before.quantity;
        let mut reversed_net = before.gross - before.discount;
        for p in parts.iter().filter(|p| p.line.id == line.id) {
            quantity = quantity
                .checked_add(p.quantity)
                .ok_or(FlowError::Overflow)?;
            reversed_net = reversed_net
                .checked_add(p.net())
                .ok_or(FlowError::Overflow)?;
        }
        Ok(Self {
            product: line.product_id,
            net: line_gross(line) - line.discount_minor,
            reversed_net,
            whole: quantity >= line.quantity_milli,
            discounted: line.discount_minor > 0,
        })
    }

    /// What of `share` (earned on the whole line) should have been taken back in all by now:
    /// in proportion to the net reversed, all of it once the line is wholly reversed.
    fn due(&self, share: i64) -> Result<i64> {
        if self.whole {
            return Ok(share);
        }
        if self.net == 0 {
            return Ok(0);
        }
        let r = mul_div_round(share, self.reversed_net, self.net).ok_or(FlowError::Overflow)?;
        Ok(within(r, share))
    }
}

impl Progress {
    /// What of `earned` should have been taken back in all by now.
    fn due(&self, earned: i64) -> Result<i64> {
        if self.whole {
            return Ok(earned);
        }
        if self.sale_net == 0 {
            return Ok(0);
        }
        let r =
            mul_div_round(earned, self.reversed_net, self.sale_net).ok_or(FlowError::Overflow)?;
        Ok(within(r, earned))
    }
}

const REVERSALS_OF: &str =
    "SELECT DISTINCT reversal_sale_id FROM sale_reversals WHERE tenant_id = ?1 AND sale_id = ?2";

/// A `reverse` row (negative) per loyalty account that accrued points on the sale, for what
/// is due by the progress less what earlier reversals took back.
fn reverse_points(
    s: &Scope<'_>,
    actor: &Actor,
    original: RowId,
    reversal: RowId,
    progress: &Progress,
    now: Timestamp,
) -> Result<i64> {
    let sql = format!(
        "SELECT a.account_id, a.points, coalesce((
             SELECT -sum(t.points) FROM loyalty_transactions t
             WHERE t.tenant_id = ?1 AND t.account_id = a.account_id AND t.kind = 'reverse'
               AND t.points < 0 AND t.sale_id IN ({REVERSALS_OF})), 0)
         FROM (SELECT account_id, sum(points) AS points FROM loyalty_transactions
               WHERE tenant_id = ?1 AND sale_id = ?2 AND kind = 'accrue'
               GROUP BY account_id) a
         ORDER BY a.account_id"
    );
    let rows: Vec<(RowId, i64, i64)> = s.query_map(&sql, &[&original], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    let mut reversed = 0i64;
    for (account, accrued, already) in rows {
        let now_due = within(progress.due(accrued)? - already, accrued - already);
        if now_due <= 0 {
            continue;
        }
        s.append(
            actor,
            &LoyaltyTransaction {
                id: RowId::new(),
                account_id: account,
                kind: "reverse".to_owned(),
                points: -now_due,
                sale_id: Some(reversal),
                created_at: now,
            },
        )?;
        reversed = reversed.checked_add(now_due).ok_or(FlowError::Overflow)?;
    }
    Ok(reversed)
}

/// A negative commission row per earner and rule of the original sale, for what is due by the
/// lines reversed (see the module docs) less what earlier reversals took back.
fn reverse_commissions(
    s: &Scope<'_>,
    actor: &Actor,
    original: &Sale,
    reversal: RowId,
    progress: &Progress,
    now: Timestamp,
) -> Result<Vec<Commission>> {
    type Key = (RowId, Option<RowId>);
    let grouped = |sql: &str| -> Result<BTreeMap<Key, i64>> {
        s.query_map(sql, &[&original.id], |r| {
            Ok(((r.get(0)?, r.get(1)?), r.get(2)?))
        })
    };
    let earned = grouped(
        "SELECT user_id, rule_id, sum(amount_minor) FROM commissions
         WHERE tenant_id = ?1 AND sale_id = ?2 GROUP BY user_id, rule_id",
    )?;
    if earned.is_empty() {
        return Ok(Vec::new());
    }
    let already = grouped(&format!(
        "SELECT user_id, rule_id, -sum(amount_minor) FROM commissions
         WHERE tenant_id = ?1 AND sale_id IN ({REVERSALS_OF}) GROUP BY user_id, rule_id"
    ))?;
    // The rules a line may have earned by: those in force now and those the sale earned by.
    let rules: Vec<(CommissionRuleRef, bool)> = s.query_map(
        "SELECT id, user_id, category_id, rate_ppm, active FROM commission_rules
         WHERE tenant_id = ?1 ORDER BY id",
        &[],
        |r| Ok((CommissionRuleRef::from_row(r)?, r.get(4)?)),
    )?;
    let rules: Vec<CommissionRuleRef> = rules
        .into_iter()
        .filter(|(r, active)| *active || earned.keys().any(|(_, id)| *id == Some(r.id)))
        .map(|(r, _)| r)
        .collect();
    let categories = progress
        .lines
        .iter()
        .map(|l| match l.product {
            Some(product) => Ok(s
                .query_optional(
                    "SELECT category_id FROM products WHERE tenant_id = ?1 AND id = ?2",
                    &[&product],
                    |r| r.get::<_, Option<RowId>>(0),
                )?
                .flatten()),
            None => Ok(None),
        })
        .collect::<Result<Vec<_>>>()?;
    let mut out = Vec::new();
    for ((user, rule), amount) in earned {
        let before = already.get(&(user, rule)).copied().unwrap_or(0);
        let due = match due_by_lines(&rules, &categories, progress, user, rule, amount)? {
            Some(due) => due,
            None => progress.due(amount)?,
        };
        let now_due = within(due - before, amount - before);
        if now_due == 0 {
            continue;
        }
        let row = Commission {
            id: RowId::new(),
            user_id: user,
            sale_id: reversal,
            rule_id: rule,
            amount_minor: -now_due,
            currency: original.currency.clone(),
            created_at: now,
        };
        s.append(actor, &row)?;
        out.push(row);
    }
    Ok(out)
}

/// What of `earned` by `rule` for `user` should have been taken back in all by now, line by
/// line: each line the checkout would give to that rule gives back its share (`net × rate`) in
/// proportion to its net reversed. `None` when the shares do not add up to `earned` (a rule
/// or a category changed since the sale, or the row names no rule we know): the caller then
/// takes back in proportion to the sale's net.
fn due_by_lines(
    rules: &[CommissionRuleRef],
    categories: &[Option<RowId>],
    progress: &Progress,
    user: RowId,
    rule: Option<RowId>,
    earned: i64,
) -> Result<Option<i64>> {
    let Some(rule) = rule.and_then(|id| rules.iter().find(|r| r.id == id)) else {
        return Ok(None);
    };
    let (mut shares, mut due) = (0i64, 0i64);
    for (line, category) in progress.lines.iter().zip(categories) {
        if best_commission_rule(rules, user, *category).map(|r| r.id) != Some(rule.id) {
            continue;
        }
        let share = apply_ppm(line.net, rule.rate_ppm)?;
        shares = shares.checked_add(share).ok_or(FlowError::Overflow)?;
        due = due
            .checked_add(line.due(share)?)
            .ok_or(FlowError::Overflow)?;
    }
    Ok((shares == earned).then(|| within(due, earned)))
}

/// A promotion usage row on the reversal for each promotion the original sale used and no
/// earlier reversal gave back, once every line a promotion discounted is wholly reversed (every
/// line, if none was discounted). Its `discount_minor` is the discount the sale's row gave.
fn give_back_promotions(
    s: &Scope<'_>,
    actor: &Actor,
    original: &Sale,
    reversal: RowId,
    progress: &Progress,
    now: Timestamp,
) -> Result<Vec<PromotionUse>> {
    let mut discounted = progress.lines.iter().filter(|l| l.discounted).peekable();
    let done = if discounted.peek().is_some() {
        discounted.all(|l| l.whole)
    } else {
        progress.whole
    };
    if !done {
        return Ok(Vec::new());
    }
    let rows: Vec<(RowId, i64)> = s.query_map(
        &format!(
            "SELECT promotion_id, sum(discount_minor) FROM promotion_usage
             WHERE tenant_id = ?1 AND sale_id = ?2 AND promotion_id NOT IN (
                 SELECT promotion_id FROM promotion_usage
                 WHERE tenant_id = ?1 AND sale_id IN ({REVERSALS_OF}))
             GROUP BY promotion_id ORDER BY promotion_id"
        ),
        &[&original.id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for (promotion_id, discount_minor) in rows {
        let row = PromotionUse {
            id: RowId::new(),
            promotion_id,
            sale_id: reversal,
            customer_id: original.customer_id,
            discount_minor,
            used_at: now,
        };
        s.append(actor, &row)?;
        out.push(row);
    }
    Ok(out)
}

/// Everything after the refusals: the reversal sale, stock, money, points, commission and
/// promotion uses.
#[allow(clippy::too_many_arguments)]
fn reverse(
    s: &Scope<'_>,
    actor: &Actor,
    original: &Sale,
    lines: &[SaleLine],
    taken: &BTreeMap<RowId, Taken>,
    parts: &[Part<'_>],
    kind: &str,
    paybacks: Vec<Payback>,
    restock_at: Option<Option<&str>>,
    device: Option<RowId>,
    reason: &str,
    now: Timestamp,
) -> Result<RefundReceipt> {
    let written = write_reversal(s, actor, original, parts, kind, device, reason, now)?;
    let reversal = written.sale.id;
    if let Some(location) = restock_at {
        restock(
            s,
            actor,
            original.id,
            reversal,
            parts,
            location,
            reason,
            now,
        )?;
    }
    let (payments, points_returned) = pay_back(s, actor, &written.sale, paybacks, now)?;
    let line_progress = lines
        .iter()
        .map(|l| LineProgress::of(l, taken.get(&l.id).copied().unwrap_or_default(), parts))
        .collect::<Result<Vec<_>>>()?;
    let whole = line_progress.iter().all(|l| l.whole);
    let reversed_net = {
        let before: i64 = s.query_row(
            &format!(
                "SELECT coalesce(-sum(subtotal_minor - discount_minor), 0) FROM sales
                 WHERE tenant_id = ?1 AND id IN ({REVERSALS_OF}) AND id <> ?3"
            ),
            &[&original.id, &reversal],
            |r| r.get(0),
        )?;
        before
            .checked_add(sum(parts.iter().map(Part::net))?)
            .ok_or(FlowError::Overflow)?
    };
    let progress = Progress {
        sale_net: original.subtotal_minor - original.discount_minor,
        reversed_net,
        whole,
        lines: line_progress,
    };
    let points_reversed = reverse_points(s, actor, original.id, reversal, &progress, now)?;
    let commissions = reverse_commissions(s, actor, original, reversal, &progress, now)?;
    let promotions = give_back_promotions(s, actor, original, reversal, &progress, now)?;
    Ok(RefundReceipt {
        sale: written.sale,
        lines: written.lines,
        reversals: written.reversals,
        payments,
        points_reversed,
        points_returned,
        commissions,
        promotions,
    })
}

fn reason_given(reason: &str, what: &'static str) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(FlowError::Empty { what }.into());
    }
    Ok(())
}

fn taken_by_line(s: &Scope<'_>, lines: &[SaleLine]) -> Result<BTreeMap<RowId, Taken>> {
    lines.iter().map(|l| Ok((l.id, taken(s, l.id)?))).collect()
}

/// The refund flow: the lines' figures, then the tenders (exactly the total, each method
/// within what the sale took by it unless the rules allow any tender), then the writes.
pub(crate) fn refund(s: &Scope<'_>, actor: &Actor, req: &Refund) -> Result<RefundReceipt> {
    s.require_role(actor, Role::Cashier, "refund", "sales")?;
    reason_given(&req.reason, "the reason for a refund")?;
    if let Some(o) = &req.card_override {
        reason_given(&o.reason, "the reason for a refund override")?;
        s.require_user_role(
            o.approver_id,
            Role::Manager,
            "approve an unusable gift card override of",
            "refunds",
        )?;
    }
    if let Some(location) = &req.location {
        if location.trim().is_empty() {
            return Err(FlowError::Empty { what: "a location" }.into());
        }
    }
    let (sale, lines) = original(s, req.sale_id, "refund")?;
    let taken = taken_by_line(s, &lines)?;
    let parts = refund_parts(&sale, &lines, &taken, &req.lines)?;
    let due = sum(parts.iter().map(Part::total))?;
    let now = Timestamp::now();
    let rules = s.tenant_settings()?.rules;
    let (paybacks, overridden) = refund_paybacks(
        s,
        &sale,
        &rules,
        &req.tenders,
        due,
        req.card_override.is_some(),
        now,
    )?;
    let restock_at = req.restock.then_some(req.location.as_deref());
    let receipt = reverse(
        s,
        actor,
        &sale,
        &lines,
        &taken,
        &parts,
        "refund",
        paybacks,
        restock_at,
        req.device_id,
        &req.reason,
        now,
    )?;
    if let Some(o) = &req.card_override {
        // The approver is the audit row's actor: who let the money past the caps, and why.
        s.audit(
            Some(o.approver_id),
            "insert",
            "sales",
            &receipt.sale.id.to_string(),
            Some(serde_json::json!({
                "override": "unusable_gift_card",
                "reason": o.reason,
                "refunded_by": actor.user_id(),
                "original_sale": sale.id,
                "gift_cards": overridden.cards,
                "past_caps_minor": overridden.past_caps_minor,
            })),
        )?;
    }
    Ok(receipt)
}

/// The void flow: every line wholly, every payment back by its method, stock back where it
/// came from. Refused once any part of the sale was reversed.
pub(crate) fn void(
    s: &Scope<'_>,
    actor: &Actor,
    sale_id: RowId,
    reason: &str,
) -> Result<RefundReceipt> {
    s.require_role(actor, Role::Manager, "void", "sales")?;
    reason_given(reason, "the reason for a void")?;
    let (sale, lines) = original(s, sale_id, "void")?;
    let reversed = count(
        s,
        "SELECT count(*) FROM sale_reversals WHERE tenant_id = ?1 AND sale_id = ?2",
        sale_id,
    )?;
    if reversed > 0 {
        return Err(FlowError::State {
            what: "sale",
            id: sale_id,
            status: "already partly or wholly refunded".to_owned(),
            action: "void",
        }
        .into());
    }
    let taken = BTreeMap::new();
    let parts = lines
        .iter()
        .map(|l| part(l, Taken::default(), l.quantity_milli))
        .collect::<Result<Vec<_>>>()?;
    let paybacks = void_paybacks(s, &sale)?;
    // A completed layaway was paid through its own ledger, not the sale's payments: a void
    // cannot tell how to give that back, a refund with tenders can.
    if sum(paybacks.iter().map(Payback::amount))? != sale.total_minor {
        return Err(FlowError::State {
            what: "sale",
            id: sale_id,
            status: "paid outside its sale payments".to_owned(),
            action: "void (refund it with tenders)",
        }
        .into());
    }
    reverse(
        s,
        actor,
        &sale,
        &lines,
        &taken,
        &parts,
        "void",
        paybacks,
        Some(None),
        None,
        reason,
        Timestamp::now(),
    )
}
