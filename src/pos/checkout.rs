//! Checkout: pricing (price level, promotions, tax), stock, tenders, loyalty and commissions.
//! The pieces are `pub(crate)` because layaways, work orders and refunds price and settle the
//! same way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::money::{apply_ppm, extend, minor_per_major, sum};
use super::{accounts, require, FlowError};
use crate::catalog::{
    Commission, Customer, InventoryTransaction, LoyaltyTransaction, PaymentMethod, PriceLevel,
    Product, PromotionUse, Sale, SaleLine, SalePayment,
};
use crate::ids::{RowId, Timestamp};
use crate::tenant::settings::{Feature, Role, TenantSettings};
use crate::tenant::{Actor, Scope};
use crate::Result;

/// Where stock is kept when a flow names no location.
pub const DEFAULT_LOCATION: &str = "main";

/// One line to sell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LineItem {
    /// A catalog product at its price for the customer's price level.
    Product {
        /// The product.
        product_id: RowId,
        /// Quantity in thousandths (1 unit is 1000).
        quantity_milli: i64,
    },
    /// A service or other line not in the catalog, at a price given by the cashier.
    Service {
        /// Text on the receipt.
        description: String,
        /// Quantity in thousandths (hours of labour, say).
        quantity_milli: i64,
        /// Price of one unit.
        unit_price_minor: i64,
        /// Whether the tenant's taxes apply.
        taxable: bool,
    },
}

impl LineItem {
    /// A product line.
    pub fn product(product_id: RowId, quantity_milli: i64) -> Self {
        Self::Product {
            product_id,
            quantity_milli,
        }
    }

    /// A service line.
    pub fn service(
        description: &str,
        quantity_milli: i64,
        unit_price_minor: i64,
        taxable: bool,
    ) -> Self {
        Self::Service {
            description: description.to_owned(),
            quantity_milli,
            unit_price_minor,
            taxable,
        }
    }

    fn quantity(&self) -> i64 {
        match self {
            Self::Product { quantity_milli, .. } | Self::Service { quantity_milli, .. } => {
                *quantity_milli
            }
        }
    }
}

/// One way the customer pays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "method")]
pub enum Tender {
    /// Cash handed over; it covers what the other tenders leave, and the rest is change.
    Cash {
        /// Cash handed over.
        tendered_minor: i64,
    },
    /// A payment card, by its authorisation reference.
    Card {
        /// Amount charged to the card.
        amount_minor: i64,
        /// Authorisation reference from the card terminal.
        reference: String,
    },
    /// A gift card of this tenant.
    GiftCard {
        /// The card.
        card_id: RowId,
        /// Amount redeemed.
        amount_minor: i64,
    },
    /// The customer's store credit account (the sale needs a customer).
    StoreCredit {
        /// Amount charged to the account.
        amount_minor: i64,
    },
    /// The customer's loyalty points, each worth the tenant's point value.
    Loyalty {
        /// Points redeemed.
        points: i64,
    },
}

impl Tender {
    pub(crate) fn method(&self) -> PaymentMethod {
        match self {
            Self::Cash { .. } => PaymentMethod::Cash,
            Self::Card { .. } => PaymentMethod::Card,
            Self::GiftCard { .. } => PaymentMethod::GiftCard,
            Self::StoreCredit { .. } => PaymentMethod::StoreCredit,
            Self::Loyalty { .. } => PaymentMethod::Loyalty,
        }
    }
}

/// A sale to ring up. Build it with [`Checkout::new`] and the builder methods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkout {
    /// Receipt number; by default `S-` and twelve hex digits of the sale's random id, unique
    /// across terminals working offline.
    pub number: Option<String>,
    /// The customer (for price level, tax exemption, loyalty, store credit).
    pub customer_id: Option<RowId>,
    /// Who earns the commission; the actor by default.
    pub salesperson_id: Option<RowId>,
    /// The terminal.
    pub device_id: Option<RowId>,
    /// Where the stock leaves from; [`DEFAULT_LOCATION`] by default.
    pub location: Option<String>,
    /// The lines, in receipt order.
    pub lines: Vec<LineItem>,
    /// How it is paid.
    pub tenders: Vec<Tender>,
    /// Coupon codes entered; promotions with a code apply only when it is entered.
    pub promotion_codes: Vec<String>,
    /// Note on the sale.
    pub note: Option<String>,
}

impl Checkout {
    /// An empty sale.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a line.
    pub fn line(mut self, line: LineItem) -> Self {
        self.lines.push(line);
        self
    }

    /// Adds a tender.
    pub fn tender(mut self, tender: Tender) -> Self {
        self.tenders.push(tender);
        self
    }

    /// Sells to this customer.
    pub fn customer(mut self, customer: RowId) -> Self {
        self.customer_id = Some(customer);
        self
    }

    /// Credits the commission to this user.
    pub fn salesperson(mut self, user: RowId) -> Self {
        self.salesperson_id = Some(user);
        self
    }

    /// Rings the sale up on this device.
    pub fn device(mut self, device: RowId) -> Self {
        self.device_id = Some(device);
        self
    }

    /// Takes stock from this location.
    pub fn location(mut self, location: &str) -> Self {
        self.location = Some(location.to_owned());
        self
    }

    /// Enters a coupon code.
    pub fn code(mut self, code: &str) -> Self {
        self.promotion_codes.push(code.to_owned());
        self
    }
}

/// What a checkout wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Receipt {
    /// The sale.
    pub sale: Sale,
    /// Its lines.
    pub lines: Vec<SaleLine>,
    /// Its payments.
    pub payments: Vec<SalePayment>,
    /// Cash given back.
    pub change_minor: i64,
    /// Loyalty points earned.
    pub points_earned: i64,
    /// Promotions used, one row per promotion.
    pub promotions: Vec<PromotionUse>,
    /// Commission earned, one row per rule.
    pub commissions: Vec<Commission>,
}

// ------------------------------------------------------------------------------------- pricing

/// What every pricing needs to know about the tenant and the customer.
pub(crate) struct Context {
    pub(crate) settings: TenantSettings,
    pub(crate) customer: Option<Customer>,
    level_ppm: i64,
    tax_ppm: i64,
    pub(crate) now: Timestamp,
}

impl Context {
    pub(crate) fn load(s: &Scope<'_>, customer: Option<RowId>) -> Result<Self> {
        let settings = s.tenant_settings()?;
        let customer: Option<Customer> = customer.map(|id| s.row(id)).transpose()?;
        let level_ppm = match customer.as_ref().and_then(|c| c.price_level_id) {
            Some(level) if settings.feature(Feature::PriceLevels) => {
                s.row::<PriceLevel>(level)?.discount_ppm
            }
            _ => 0,
        };
        let exempt = customer.as_ref().is_some_and(|c| c.tax_exempt);
        let tax_ppm = if exempt {
            0
        } else {
            settings
                .tax_rates
                .iter()
                .map(|r| i64::from(r.rate_ppm))
                .sum()
        };
        Ok(Self {
            settings,
            customer,
            level_ppm,
            tax_ppm,
            now: Timestamp::now(),
        })
    }

    pub(crate) fn currency(&self) -> &str {
        &self.settings.currency
    }
}

/// A line with its figures worked out.
pub(crate) struct PricedLine {
    pub(crate) product: Option<Product>,
    pub(crate) description: String,
    pub(crate) quantity_milli: i64,
    pub(crate) unit_price_minor: i64,
    pub(crate) gross: i64,
    pub(crate) discount: i64,
    pub(crate) tax: i64,
    pub(crate) promotion: Option<RowId>,
}

impl PricedLine {
    pub(crate) fn total(&self) -> i64 {
        self.gross - self.discount + self.tax
    }

    pub(crate) fn net(&self) -> i64 {
        self.gross - self.discount
    }

    pub(crate) fn stocked(&self) -> Option<&Product> {
        self.product.as_ref().filter(|p| p.kind == "stocked")
    }
}

/// A priced sale: lines and the sums of their rounded figures.
pub(crate) struct Priced {
    pub(crate) lines: Vec<PricedLine>,
    pub(crate) subtotal: i64,
    pub(crate) discount: i64,
    pub(crate) tax: i64,
    pub(crate) total: i64,
}

struct Promo {
    id: RowId,
    /// The coupon code that must be entered, if any.
    code: Option<String>,
    kind: String,
    value: i64,
    product: Option<RowId>,
    category: Option<RowId>,
    usage_limit: Option<i64>,
}

impl Promo {
    fn applies_to(&self, product: Option<&Product>) -> bool {
        match (self.product, self.category, product) {
            (None, None, _) => true,
            (Some(p), _, Some(prod)) => p == prod.id,
            (None, Some(c), Some(prod)) => prod.category_id == Some(c),
            _ => false,
        }
    }

    /// The discount on a line: a percentage of it, or an amount off each unit; never more than
    /// the line.
    fn discount(&self, gross: i64, quantity_milli: i64) -> std::result::Result<i64, FlowError> {
        let d = if self.kind == "percent" {
            apply_ppm(gross, self.value.min(1_000_000))?
        } else {
            extend(quantity_milli, self.value)?
        };
        Ok(d.clamp(0, gross.max(0)))
    }
}

fn promotions(s: &Scope<'_>, ctx: &Context, codes: &[String]) -> Result<Vec<Promo>> {
    let mut out: Vec<Promo> = s.query_map(
        "SELECT id, code, kind, value, product_id, category_id, usage_limit FROM promotions
         WHERE tenant_id = ?1 AND active = 1 AND starts_at <= ?2
           AND (ends_at IS NULL OR ends_at > ?2)",
        &[&ctx.now],
        |r| {
            Ok(Promo {
                id: r.get(0)?,
                code: r.get(1)?,
                kind: r.get(2)?,
                value: r.get(3)?,
                product: r.get(4)?,
                category: r.get(5)?,
                usage_limit: r.get(6)?,
            })
        },
    )?;
    out.retain(|p| p.code.as_ref().is_none_or(|c| codes.contains(c)));
    Ok(out)
}

/// Prices lines for the context's customer: unit price from the price level, the best
/// promotion of each line (within its usage limit), tax per line.
pub(crate) fn price(
    s: &Scope<'_>,
    ctx: &Context,
    items: &[LineItem],
    codes: &[String],
) -> Result<Priced> {
    if items.is_empty() {
        return Err(FlowError::NoLines { what: "the sale" }.into());
    }
    let promos = if ctx.settings.feature(Feature::Promotions) {
        promotions(s, ctx, codes)?
    } else if codes.is_empty() {
        Vec::new()
    } else {
        // A code the cashier typed must not be dropped without a word.
        return Err(FlowError::FeatureOff {
            feature: Feature::Promotions,
            flow: "a coupon code",
        }
        .into());
    };
    let mut used: BTreeMap<RowId, i64> = BTreeMap::new();
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let quantity_milli = item.quantity();
        if quantity_milli <= 0 {
            return Err(FlowError::Quantity {
                line: i + 1,
                quantity_milli,
            }
            .into());
        }
        let (product, description, unit, taxable) = match item {
            LineItem::Product { product_id, .. } => {
                let p: Product = s.row(*product_id)?;
                if !p.active {
                    return Err(FlowError::ProductInactive { product: p.id }.into());
                }
                if p.currency != ctx.currency() {
                    return Err(FlowError::Currency {
                        what: "the product",
                        expected: ctx.currency().to_owned(),
                        found: p.currency,
                    }
                    .into());
                }
                let unit = p.price_minor - apply_ppm(p.price_minor, ctx.level_ppm)?;
                let (name, taxable) = (p.name.clone(), p.taxable);
                (Some(p), name, unit, taxable)
            }
            LineItem::Service {
                description,
                unit_price_minor,
                taxable,
                ..
            } => {
                if description.trim().is_empty() {
                    return Err(FlowError::Empty {
                        what: "a service line's description",
                    }
                    .into());
                }
                if *unit_price_minor < 0 {
                    return Err(FlowError::Amount {
                        what: "a service line's price",
                        rule: "zero or above",
                        amount_minor: *unit_price_minor,
                    }
                    .into());
                }
                (None, description.clone(), *unit_price_minor, *taxable)
            }
        };
        let gross = extend(quantity_milli, unit)?;
        // The best promotion that applies and still has uses left; ties go to the lower id.
        let mut best: Option<(i64, &Promo)> = None;
        for promo in promos.iter().filter(|p| p.applies_to(product.as_ref())) {
            let d = promo.discount(gross, quantity_milli)?;
            if d == 0
                || best.is_some_and(|(b, bp)| {
                    (b, std::cmp::Reverse(bp.id)) >= (d, std::cmp::Reverse(promo.id))
                })
            {
                continue;
            }
            if let Some(limit) = promo.usage_limit {
                if !used.contains_key(&promo.id) && uses(s, promo.id)? >= limit {
                    continue;
                }
            }
            best = Some((d, promo));
        }
        let (discount, promotion) = match best {
            Some((d, p)) => {
                *used.entry(p.id).or_default() += d;
                (d, Some(p.id))
            }
            None => (0, None),
        };
        let tax = if taxable {
            apply_ppm(gross - discount, ctx.tax_ppm)?
        } else {
            0
        };
        lines.push(PricedLine {
            product,
            description,
            quantity_milli,
            unit_price_minor: unit,
            gross,
            discount,
            tax,
            promotion,
        });
    }
    let subtotal = sum(lines.iter().map(|l| l.gross))?;
    let discount = sum(lines.iter().map(|l| l.discount))?;
    let tax = sum(lines.iter().map(|l| l.tax))?;
    Ok(Priced {
        subtotal,
        discount,
        tax,
        total: subtotal - discount + tax,
        lines,
    })
}

/// Uses of a promotion: its usage rows on sales, less the rows on refunds and voids that gave
/// a use back (a reversal sale is one with `sale_reversals` rows; see the refund module). A
/// row on a voided sale (a cancelled layaway's: the customer took nothing home) counts for
/// nothing; derived from the sale's status, which syncs, so every terminal counts the same.
fn uses(s: &Scope<'_>, promotion: RowId) -> Result<i64> {
    s.query_row(
        "SELECT coalesce(sum(CASE WHEN EXISTS (
                    SELECT 1 FROM sale_reversals r
                    WHERE r.tenant_id = u.tenant_id AND r.reversal_sale_id = u.sale_id)
                  THEN -1
                  WHEN EXISTS (
                    SELECT 1 FROM sales v
                    WHERE v.tenant_id = u.tenant_id AND v.id = u.sale_id AND v.status = 'voided')
                  THEN 0 ELSE 1 END), 0)
         FROM promotion_usage u WHERE u.tenant_id = ?1 AND u.promotion_id = ?2",
        &[&promotion],
        |r| r.get(0),
    )
}

/// A receipt number from the sale's id: its last twelve hex digits are random, so terminals
/// numbering offline do not collide.
pub(crate) fn receipt_number(prefix: &str, id: RowId) -> String {
    let hex = id.as_uuid().simple().to_string();
    format!("{prefix}-{}", &hex[hex.len() - 12..])
}

// -------------------------------------------------------------------------------- writing

/// Refuses taking more stock than is on hand, unless the tenant allows negative stock.
pub(crate) fn check_stock(
    s: &Scope<'_>,
    ctx: &Context,
    lines: &[PricedLine],
    location: &str,
) -> Result<()> {
    if ctx.settings.rules.allow_negative_stock {
        return Ok(());
    }
    let mut wanted: BTreeMap<RowId, i64> = BTreeMap::new();
    for p in lines
        .iter()
        .filter_map(|l| l.stocked().map(|p| (p, l.quantity_milli)))
    {
        *wanted.entry(p.0.id).or_default() += p.1;
    }
    for (product, wanted_milli) in wanted {
        let on_hand_milli = s.balance::<InventoryTransaction>(&[&product, &location])?;
        if on_hand_milli < wanted_milli {
            return Err(FlowError::InsufficientStock {
                product,
                location: location.to_owned(),
                on_hand_milli,
                wanted_milli,
            }
            .into());
        }
    }
    Ok(())
}

/// Writes the sale document and its lines.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_sale(
    s: &Scope<'_>,
    actor: &Actor,
    ctx: &Context,
    priced: &Priced,
    id: RowId,
    number: String,
    status: &str,
    device: Option<RowId>,
    note: Option<String>,
) -> Result<(Sale, Vec<SaleLine>)> {
    let sale = Sale {
        id,
        number,
        device_id: device,
        customer_id: ctx.customer.as_ref().map(|c| c.id),
        user_id: actor.user_id(),
        status: status.to_owned(),
        currency: ctx.currency().to_owned(),
        subtotal_minor: priced.subtotal,
        discount_minor: priced.discount,
        tax_minor: priced.tax,
        total_minor: priced.total,
        sold_at: ctx.now,
        note,
        receipt_brand: ctx.settings.receipt_brand().to_json(),
    };
    s.append(actor, &sale)?;
    let mut lines = Vec::with_capacity(priced.lines.len());
    for (i, l) in priced.lines.iter().enumerate() {
        let line = SaleLine {
            id: RowId::new(),
            sale_id: sale.id,
            line_no: i64::try_from(i + 1).map_err(|_| FlowError::Overflow)?,
            kind: if l.product.is_some() {
                "product"
            } else {
                "service"
            }
            .to_owned(),
            product_id: l.product.as_ref().map(|p| p.id),
            description: l.description.clone(),
            quantity_milli: l.quantity_milli,
            unit_price_minor: l.unit_price_minor,
            discount_minor: l.discount,
            tax_minor: l.tax,
            total_minor: l.total(),
        };
        s.append(actor, &line)?;
        lines.push(line);
    }
    Ok((sale, lines))
}

/// One inventory ledger row per stocked line: `sign` −1 takes stock, +1 puts it back.
#[allow(clippy::too_many_arguments)]
pub(crate) fn move_stock(
    s: &Scope<'_>,
    actor: &Actor,
    ctx: &Context,
    sale: RowId,
    lines: &[PricedLine],
    location: &str,
    kind: &str,
    sign: i64,
) -> Result<()> {
    for l in lines {
        if let Some(p) = l.stocked() {
            s.append(
                actor,
                &InventoryTransaction {
                    id: RowId::new(),
                    product_id: p.id,
                    location: location.to_owned(),
                    kind: kind.to_owned(),
                    quantity_milli: sign * l.quantity_milli,
                    unit_cost_minor: Some(p.cost_minor),
                    reason: None,
                    sale_id: Some(sale),
                    user_id: Some(actor.user_id()),
                    created_at: ctx.now,
                },
            )?;
        }
    }
    Ok(())
}

/// One promotion usage row per promotion used in the sale.
pub(crate) fn record_promotions(
    s: &Scope<'_>,
    actor: &Actor,
    ctx: &Context,
    sale: RowId,
    lines: &[PricedLine],
) -> Result<Vec<PromotionUse>> {
    let mut by_promo: BTreeMap<RowId, i64> = BTreeMap::new();
    for l in lines {
        if let Some(p) = l.promotion {
            *by_promo.entry(p).or_default() += l.discount;
        }
    }
    let mut out = Vec::with_capacity(by_promo.len());
    for (promotion_id, discount_minor) in by_promo {
        let row = PromotionUse {
            id: RowId::new(),
            promotion_id,
            sale_id: sale,
            customer_id: ctx.customer.as_ref().map(|c| c.id),
            discount_minor,
            used_at: ctx.now,
        };
        s.append(actor, &row)?;
        out.push(row);
    }
    Ok(out)
}

/// What choosing a commission rule needs of it.
pub(crate) struct CommissionRuleRef {
    pub(crate) id: RowId,
    pub(crate) user: Option<RowId>,
    pub(crate) category: Option<RowId>,
    pub(crate) rate_ppm: i64,
}

impl CommissionRuleRef {
    /// From `SELECT id, user_id, category_id, rate_ppm`.
    pub(crate) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            user: r.get(1)?,
            category: r.get(2)?,
            rate_ppm: r.get(3)?,
        })
    }
}

/// The rule a line earns commission by: the most specific of `rules` for the salesperson and
/// the line's category (user and category, then category, then user, then a rule for
/// everyone; ties to the lower id). Refunds attribute lines to rules the same way.
pub(crate) fn best_commission_rule(
    rules: &[CommissionRuleRef],
    salesperson: RowId,
    category: Option<RowId>,
) -> Option<&CommissionRuleRef> {
    rules
        .iter()
        .filter(|r| {
            r.user.is_none_or(|u| u == salesperson)
                && r.category.is_none_or(|c| Some(c) == category)
        })
        .max_by_key(|r| {
            (
                u8::from(r.category.is_some()) * 2 + u8::from(r.user.is_some()),
                std::cmp::Reverse(r.id),
            )
        })
}

/// Commission of each line's net amount by the most specific active rule for the salesperson
/// and the product's category (user and category, then category, then user, then a rule for
/// everyone; ties to the lower id), one row per rule; `sign` −1 reverses.
pub(crate) fn record_commissions(
    s: &Scope<'_>,
    actor: &Actor,
    ctx: &Context,
    sale: RowId,
    salesperson: RowId,
    lines: &[PricedLine],
    sign: i64,
) -> Result<Vec<Commission>> {
    // Off, nothing is earned; a refund reverses what was earned without coming here.
    if !ctx.settings.feature(Feature::Commissions) {
        return Ok(Vec::new());
    }
    let rules: Vec<CommissionRuleRef> = s.query_map(
        "SELECT id, user_id, category_id, rate_ppm FROM commission_rules
         WHERE tenant_id = ?1 AND active = 1 ORDER BY id",
        &[],
        CommissionRuleRef::from_row,
    )?;
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_rule: BTreeMap<RowId, i64> = BTreeMap::new();
    for l in lines {
        let category = l.product.as_ref().and_then(|p| p.category_id);
        if let Some(rule) = best_commission_rule(&rules, salesperson, category) {
            *by_rule.entry(rule.id).or_default() += apply_ppm(l.net(), rule.rate_ppm)?;
        }
    }
    let mut out = Vec::new();
    for (rule, amount) in by_rule.into_iter().filter(|(_, a)| *a != 0) {
        let row = Commission {
            id: RowId::new(),
            user_id: salesperson,
            sale_id: sale,
            rule_id: Some(rule),
            amount_minor: sign * amount,
            currency: ctx.currency().to_owned(),
            created_at: ctx.now,
        };
        s.append(actor, &row)?;
        out.push(row);
    }
    Ok(out)
}

/// Points earned on `eligible_minor` by the tenant's rule, rounded down.
pub(crate) fn points_for(ctx: &Context, eligible_minor: i64) -> i64 {
    let per_unit = i64::from(ctx.settings.rules.loyalty_points_per_unit);
    if eligible_minor <= 0 || per_unit == 0 {
        return 0;
    }
    let r = i128::from(eligible_minor) * i128::from(per_unit)
        / i128::from(minor_per_major(ctx.currency()));
    i64::try_from(r).unwrap_or(i64::MAX)
}

/// Accrues loyalty points to the customer's account, if they have one. Returns the points.
pub(crate) fn accrue_points(
    s: &Scope<'_>,
    actor: &Actor,
    ctx: &Context,
    sale: RowId,
    eligible_minor: i64,
) -> Result<i64> {
    let Some(customer) = ctx.customer.as_ref() else {
        return Ok(0);
    };
    if !ctx.settings.feature(Feature::Loyalty) {
        return Ok(0);
    }
    let Some(account) = accounts::loyalty_account(s, customer.id)? else {
        return Ok(0);
    };
    let points = points_for(ctx, eligible_minor);
    if points > 0 {
        s.append(
            actor,
            &LoyaltyTransaction {
                id: RowId::new(),
                account_id: account,
                kind: "accrue".to_owned(),
                points,
                sale_id: Some(sale),
                created_at: ctx.now,
            },
        )?;
    }
    Ok(points)
}

/// The payments of a sale and what they did.
pub(crate) struct Settled {
    pub(crate) payments: Vec<SalePayment>,
    pub(crate) change_minor: i64,
    /// The amount paid with loyalty points (earns no points).
    pub(crate) loyalty_minor: i64,
}

/// Applies the tenders to `due_minor`: card, gift card, store credit and points exactly as
/// given (with their ledger rows), cash covering the rest with change. Refuses a shortfall and
/// non-cash tenders above what is due.
pub(crate) fn settle(
    s: &Scope<'_>,
    actor: &Actor,
    ctx: &Context,
    sale: RowId,
    due_minor: i64,
    tenders: &[Tender],
) -> Result<Settled> {
    let mut payments = Vec::with_capacity(tenders.len());
    let mut loyalty_minor = 0;
    let mut cash_tendered = 0i64;
    let mut has_cash = false;
    let mut non_cash = 0i64;
    let payment = |method: PaymentMethod, amount_minor: i64| SalePayment {
        id: RowId::new(),
        sale_id: sale,
        method: method.as_str().to_owned(),
        amount_minor,
        currency: ctx.currency().to_owned(),
        tendered_minor: None,
        change_minor: 0,
        reference: None,
        gift_card_id: None,
        paid_at: ctx.now,
    };
    for t in tenders {
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
        match t {
            Tender::Cash { tendered_minor } => {
                if *tendered_minor < 0 {
                    return Err(FlowError::Amount {
                        what: "cash tendered",
                        rule: "zero or above",
                        amount_minor: *tendered_minor,
                    }
                    .into());
                }
                has_cash = true;
                cash_tendered = cash_tendered
                    .checked_add(*tendered_minor)
                    .ok_or(FlowError::Overflow)?;
            }
            Tender::Card {
                amount_minor,
                reference,
            } => {
                let amount = positive("a card payment", *amount_minor)?;
                if reference.trim().is_empty() {
                    return Err(FlowError::Empty {
                        what: "a card payment's reference",
                    }
                    .into());
                }
                let mut p = payment(PaymentMethod::Card, amount);
                p.reference = Some(reference.clone());
                payments.push(p);
            }
            Tender::GiftCard {
                card_id,
                amount_minor,
            } => {
                let amount = positive("a gift card payment", *amount_minor)?;
                accounts::redeem_gift_card(s, actor, *card_id, amount, Some((sale, ctx)))?;
                let mut p = payment(PaymentMethod::GiftCard, amount);
                p.gift_card_id = Some(*card_id);
                payments.push(p);
            }
            Tender::StoreCredit { amount_minor } => {
                let amount = positive("a store credit payment", *amount_minor)?;
                let account =
                    customer_account(s, ctx, "a store credit payment", PaymentMethod::StoreCredit)?;
                accounts::charge_credit(s, actor, account, amount, Some((sale, ctx)))?;
                payments.push(payment(PaymentMethod::StoreCredit, amount));
            }
            Tender::Loyalty { points } => {
                let points = positive("points redeemed", *points)?;
                if ctx.settings.rules.loyalty_point_value_minor == 0 {
                    // Settings validation refuses this; a file written otherwise must not let
                    // points buy nothing.
                    return Err(FlowError::TenderNotAccepted {
                        flow: "checkout (points are worth nothing)",
                        method: PaymentMethod::Loyalty.as_str(),
                    }
                    .into());
                }
                let account =
                    customer_account(s, ctx, "a loyalty payment", PaymentMethod::Loyalty)?;
                accounts::redeem_points(s, actor, account, points, Some((sale, ctx)))?;
                let amount = points
                    .checked_mul(i64::from(ctx.settings.rules.loyalty_point_value_minor))
                    .ok_or(FlowError::Overflow)?;
                loyalty_minor += amount;
                payments.push(payment(PaymentMethod::Loyalty, amount));
            }
        }
        if let Some(p) = payments.last() {
            if !matches!(t, Tender::Cash { .. }) {
                non_cash = non_cash
                    .checked_add(p.amount_minor)
                    .ok_or(FlowError::Overflow)?;
            }
        }
    }
    if non_cash > due_minor {
        return Err(FlowError::Overpaid {
            due_minor,
            paid_minor: non_cash,
        }
        .into());
    }
    let rest = due_minor - non_cash;
    if cash_tendered < rest {
        return Err(FlowError::Underpaid {
            due_minor,
            paid_minor: non_cash + cash_tendered,
        }
        .into());
    }
    let change_minor = cash_tendered - rest;
    if has_cash {
        let mut p = payment(PaymentMethod::Cash, rest);
        p.tendered_minor = Some(cash_tendered);
        p.change_minor = change_minor;
        payments.push(p);
    }
    for p in &payments {
        s.append(actor, p)?;
    }
    Ok(Settled {
        payments,
        change_minor,
        loyalty_minor,
    })
}

/// Refuses a tender of a switched-off feature (gift card, store credit, points) before a flow
/// writes anything.
pub(crate) fn accept_tenders(ctx: &Context, tenders: &[Tender]) -> Result<()> {
    for t in tenders {
        let (feature, flow) = match t {
            Tender::Cash { .. } | Tender::Card { .. } => continue,
            Tender::GiftCard { .. } => (Feature::GiftCards, "a gift card payment"),
            Tender::StoreCredit { .. } => (Feature::StoreCredit, "a store credit payment"),
            Tender::Loyalty { .. } => (Feature::Loyalty, "a payment with points"),
        };
        require(&ctx.settings, feature, flow)?;
    }
    Ok(())
}

/// The customer's store credit or loyalty account, for a tender by that `method`.
fn customer_account(
    s: &Scope<'_>,
    ctx: &Context,
    what: &'static str,
    method: PaymentMethod,
) -> Result<RowId> {
    let no_account = || FlowError::NoAccount {
        what,
        account: method.as_str(),
    };
    let customer = ctx.customer.as_ref().ok_or_else(no_account)?;
    let found = if method == PaymentMethod::Loyalty {
        accounts::loyalty_account(s, customer.id)?
    } else {
        accounts::credit_account(s, customer.id)?
    };
    Ok(found.ok_or_else(no_account)?)
}

/// The checkout flow.
pub(crate) fn run(s: &Scope<'_>, actor: &Actor, req: &Checkout) -> Result<Receipt> {
    s.require_role(actor, Role::Cashier, "checkout", "sales")?;
    let ctx = Context::load(s, req.customer_id)?;
    accept_tenders(&ctx, &req.tenders)?;
    let priced = price(s, &ctx, &req.lines, &req.promotion_codes)?;
    let location = req.location.as_deref().unwrap_or(DEFAULT_LOCATION);
    if location.trim().is_empty() {
        return Err(FlowError::Empty { what: "a location" }.into());
    }
    check_stock(s, &ctx, &priced.lines, location)?;
    let id = RowId::new();
    let number = req
        .number
        .clone()
        .unwrap_or_else(|| receipt_number("S", id));
    let (sale, lines) = write_sale(
        s,
        actor,
        &ctx,
        &priced,
        id,
        number,
        "completed",
        req.device_id,
        req.note.clone(),
    )?;
    move_stock(s, actor, &ctx, sale.id, &priced.lines, location, "sale", -1)?;
    let settled = settle(s, actor, &ctx, sale.id, priced.total, &req.tenders)?;
    let promotions = record_promotions(s, actor, &ctx, sale.id, &priced.lines)?;
    let salesperson = req.salesperson_id.unwrap_or(actor.user_id());
    let commissions = record_commissions(s, actor, &ctx, sale.id, salesperson, &priced.lines, 1)?;
    let points_earned = accrue_points(
        s,
        actor,
        &ctx,
        sale.id,
        priced.subtotal - priced.discount - settled.loyalty_minor,
    )?;
    Ok(Receipt {
        sale,
        lines,
        payments: settled.payments,
        change_minor: settled.change_minor,
        points_earned,
        promotions,
        commissions,
    })
}
