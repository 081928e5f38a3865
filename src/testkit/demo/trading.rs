//! The sales: the world the demo sells from (read from the tenant's data in a fixed order),
//! deliveries, and each kind of attempt (checkouts, gift cards, refunds, voids, layaways and
//! work orders) with the tenders that pay it.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{pick, DemoSummary};
use crate::catalog::{
    CreditAccount, CreditTransaction, GiftCardTransaction, LoyaltyTransaction, SalePayment,
};
use crate::ids::{RowId, Timestamp};
use crate::pos::checkout::{self, Context, LineItem, Tender, DEFAULT_LOCATION};
use crate::pos::money::{apply_ppm, minor_per_major};
use crate::pos::{
    layaway, reports, stock, work_order, FlowError, GiftCardSale, LayawayOrder, Pos, Refund,
    RefundTender, WorkOrderRequest,
};
use crate::tenant::settings::Role;
use crate::tenant::{Actor, Scope, Tenant, TenantAccess};
use crate::testkit::reference::DAY_MS;
use crate::{Error, Result};

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
pub(super) struct World {
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
    pub(super) fn load(tenant: &Tenant<'_>) -> Result<Self> {
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
pub(super) const DELIVERY_CHANCE: f64 = 0.1;

/// The supplier's delivery, in one transaction: every product of the reorder report for the
/// demo's location that the demo sells is received. The quantity brings it up to two to four
/// times its reorder level, and to at least its location's reorder quantity, in whole units
/// (5 litre jugs for products sold by the litre); the unit cost is the product's.
pub(super) fn receive_delivery(
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
pub(super) fn sell_one(
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
    use rand::SeedableRng;

    use super::*;

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
