//! Gift cards, loyalty points and store credit: each an account whose balance is the sum of
//! its ledger.

use serde::{Deserialize, Serialize};

use super::checkout::{self, Context, Priced, PricedLine, Tender};
use super::{require, FlowError};
use crate::catalog::{
    CreditAccount, CreditTransaction, GiftCard, GiftCardTransaction, LoyaltyAccount,
    LoyaltyTransaction, Sale, SaleLine, SalePayment,
};
use crate::ids::{RowId, Timestamp};
use crate::tenant::settings::{BusinessRules, Feature, Role};
use crate::tenant::{Actor, Scope};
use crate::Result;

/// Inside a checkout the sale and its context; standalone, `None`.
pub(crate) type InSale<'a> = Option<(RowId, &'a Context)>;

fn positive(what: &'static str, amount_minor: i64) -> Result<i64> {
    if amount_minor <= 0 {
        return Err(FlowError::Amount {
            what,
            rule: "above zero",
            amount_minor,
        }
        .into());
    }
    Ok(amount_minor)
}

/// Checks the actor for a standalone flow and that `feature` is on, and returns the tenant's
/// rules; inside a sale the checkout has checked the actor and its tenders.
fn rules(
    s: &Scope<'_>,
    actor: &Actor,
    in_sale: InSale<'_>,
    what: &'static str,
    feature: (Feature, &'static str),
) -> Result<BusinessRules> {
    match in_sale {
        Some((_, ctx)) => {
            require(&ctx.settings, feature.0, feature.1)?;
            Ok(ctx.settings.rules.clone())
        }
        None => {
            s.require_role(actor, Role::Cashier, what, "ledger")?;
            let settings = s.tenant_settings()?;
            require(&settings, feature.0, feature.1)?;
            Ok(settings.rules)
        }
    }
}

pub(crate) fn issue_gift_card(
    s: &Scope<'_>,
    actor: &Actor,
    code: &str,
    amount_minor: i64,
    customer: Option<RowId>,
    expires_at: Option<Timestamp>,
) -> Result<GiftCard> {
    s.require_role(actor, Role::Cashier, "issue", "gift_cards")?;
    let settings = s.tenant_settings()?;
    require(&settings, Feature::GiftCards, "issuing a gift card")?;
    let amount = new_card_load(code, amount_minor)?;
    let card = GiftCard {
        id: RowId::new(),
        code: code.to_owned(),
        currency: settings.currency,
        customer_id: customer,
        issued_at: Timestamp::now(),
        expires_at,
        active: true,
    };
    write_new_card(s, actor, card, amount, None)
}

/// A new card's first load, refused with a typed error when it is not positive or the card
/// has a blank code.
fn new_card_load(code: &str, amount_minor: i64) -> Result<i64> {
    let amount = positive("a gift card's first load", amount_minor)?;
    if code.trim().is_empty() {
        return Err(FlowError::Empty {
            what: "a gift card code",
        }
        .into());
    }
    Ok(amount)
}

/// Writes a new card and its `issue` ledger row, which names the sale that sold the card.
fn write_new_card(
    s: &Scope<'_>,
    actor: &Actor,
    card: GiftCard,
    amount: i64,
    sold_by: Option<RowId>,
) -> Result<GiftCard> {
    s.append(actor, &card)?;
    card_entry(s, actor, card.id, "issue", amount, sold_by, card.issued_at)?;
    Ok(card)
}

/// A gift card to sell: the card's code and the amount it is loaded with, paid for by the
/// customer. Build it with [`GiftCardSale::new`] and the builder methods, and ring it up with
/// [`crate::pos::Pos::sell_gift_card`].
///
/// The sale takes money like a checkout (cash with change, card, store credit) but is not
/// goods: one untaxed service line, no promotions, no loyalty points (the card earns them when
/// it is spent) and no commission. Paying for a gift card with a gift card or with loyalty
/// points is refused.
///
/// ```
/// use pos_tenancy::pos::{GiftCardSale, Pos, Tender};
/// use pos_tenancy::{NewTenant, Store, TenantAccess};
/// let store = Store::open_in_memory()?;
/// store.add_tenant(&NewTenant::new("caps".parse()?, "Caps"))?;
/// let caps = store.tenant(&"caps".parse()?)?;
/// let admin = caps.bootstrap_admin("owner", "Store Owner")?;
/// let sold = caps.sell_gift_card(&admin, &GiftCardSale::new("GC-0001", 5_000)
///     .tender(Tender::Cash { tendered_minor: 6_000 }))?;
/// assert_eq!(sold.sale.total_minor, 5_000);
/// assert_eq!(sold.change_minor, 1_000);
/// assert_eq!(caps.gift_card_balance(sold.card.id)?, 5_000);
/// # Ok::<(), pos_tenancy::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiftCardSale {
    /// The card's code (printed or encoded on it); not blank.
    pub code: String,
    /// What the card is loaded with, and what the sale costs; above zero.
    pub amount_minor: i64,
    /// How it is paid: cash, card or store credit.
    pub tenders: Vec<Tender>,
    /// The customer buying it, who also holds the card.
    pub customer_id: Option<RowId>,
    /// When the card expires; never by default.
    pub expires_at: Option<Timestamp>,
    /// The terminal.
    pub device_id: Option<RowId>,
}

impl GiftCardSale {
    /// A card with this code loaded with `amount_minor`, with no tenders yet.
    pub fn new(code: &str, amount_minor: i64) -> Self {
        Self {
            code: code.to_owned(),
            amount_minor,
            tenders: Vec::new(),
            customer_id: None,
            expires_at: None,
            device_id: None,
        }
    }

    /// Adds a tender.
    pub fn tender(mut self, tender: Tender) -> Self {
        self.tenders.push(tender);
        self
    }

    /// Sells to this customer, who holds the card.
    pub fn customer(mut self, customer: RowId) -> Self {
        self.customer_id = Some(customer);
        self
    }

    /// The card expires at this time.
    pub fn expires_at(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Rings the sale up on this device.
    pub fn device(mut self, device: RowId) -> Self {
        self.device_id = Some(device);
        self
    }
}

/// What selling a gift card wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GiftCardReceipt {
    /// The sale.
    pub sale: Sale,
    /// Its one line, "Gift card `<code>`", untaxed.
    pub line: SaleLine,
    /// Its payments.
    pub payments: Vec<SalePayment>,
    /// Cash given back.
    pub change_minor: i64,
    /// The card, whose `issue` ledger row names the sale.
    pub card: GiftCard,
}

/// The gift card sale flow: the sale and its payments as a checkout writes them (without
/// promotions, points or commission), then the card and its `issue` row linked to the sale.
pub(crate) fn sell_gift_card(
    s: &Scope<'_>,
    actor: &Actor,
    req: &GiftCardSale,
) -> Result<GiftCardReceipt> {
    s.require_role(actor, Role::Cashier, "sell", "gift_cards")?;
    let amount = new_card_load(&req.code, req.amount_minor)?;
    for t in &req.tenders {
        if matches!(t, Tender::GiftCard { .. } | Tender::Loyalty { .. }) {
            return Err(FlowError::TenderNotAccepted {
                flow: "a gift card sale",
                method: t.method().as_str(),
            }
            .into());
        }
    }
    let ctx = Context::load(s, req.customer_id)?;
    require(&ctx.settings, Feature::GiftCards, "selling a gift card")?;
    checkout::accept_tenders(&ctx, &req.tenders)?;
    let card_id = RowId::new();
    if req.expires_at.is_some_and(|e| e <= ctx.now) {
        return Err(FlowError::GiftCardUnusable {
            card: card_id,
            reason: "it would be sold already expired",
        }
        .into());
    }
    let priced = Priced {
        lines: vec![PricedLine {
            product: None,
            description: format!("Gift card {}", req.code),
            quantity_milli: 1000,
            unit_price_minor: amount,
            gross: amount,
            discount: 0,
            tax: 0,
            promotion: None,
        }],
        subtotal: amount,
        discount: 0,
        tax: 0,
        total: amount,
    };
    let id = RowId::new();
    let (sale, mut lines) = checkout::write_sale(
        s,
        actor,
        &ctx,
        &priced,
        id,
        checkout::receipt_number("S", id),
        "completed",
        req.device_id,
        None,
    )?;
    let settled = checkout::settle(s, actor, &ctx, sale.id, amount, &req.tenders)?;
    let card = GiftCard {
        id: card_id,
        code: req.code.clone(),
        currency: ctx.currency().to_owned(),
        customer_id: req.customer_id,
        issued_at: ctx.now,
        expires_at: req.expires_at,
        active: true,
    };
    let card = write_new_card(s, actor, card, amount, Some(sale.id))?;
    let line = lines.pop().ok_or(FlowError::NoLines { what: "the sale" })?;
    Ok(GiftCardReceipt {
        sale,
        line,
        payments: settled.payments,
        change_minor: settled.change_minor,
        card,
    })
}

/// The gift card a sale sold, if it sold one: its `issue` ledger row names the sale.
pub(crate) fn card_sold_by(s: &Scope<'_>, sale: RowId) -> Result<Option<RowId>> {
    s.query_optional(
        "SELECT gift_card_id FROM gift_card_transactions
         WHERE tenant_id = ?1 AND sale_id = ?2 AND kind = 'issue'
         ORDER BY id LIMIT 1",
        &[&sale],
        |r| r.get(0),
    )
}

fn card_entry(
    s: &Scope<'_>,
    actor: &Actor,
    card: RowId,
    kind: &str,
    amount_minor: i64,
    sale: Option<RowId>,
    at: Timestamp,
) -> Result<i64> {
    s.append(
        actor,
        &GiftCardTransaction {
            id: RowId::new(),
            gift_card_id: card,
            kind: kind.to_owned(),
            amount_minor,
            sale_id: sale,
            user_id: Some(actor.user_id()),
            created_at: at,
        },
    )?;
    s.balance::<GiftCardTransaction>(&[&card])
}

/// Why a card cannot take money at `now` (blocked, expired), or `None` when it can.
pub(crate) fn unusable_reason(c: &GiftCard, now: Timestamp) -> Option<&'static str> {
    if !c.active {
        Some("it is blocked")
    } else if c.expires_at.is_some_and(|e| e <= now) {
        Some("it has expired")
    } else {
        None
    }
}

/// A card that can take money now: active, not expired.
pub(crate) fn usable_card(s: &Scope<'_>, card: RowId, now: Timestamp) -> Result<GiftCard> {
    let c: GiftCard = s.row(card)?;
    match unusable_reason(&c, now) {
        Some(reason) => Err(FlowError::GiftCardUnusable { card, reason }.into()),
        None => Ok(c),
    }
}

pub(crate) fn top_up_gift_card(
    s: &Scope<'_>,
    actor: &Actor,
    card: RowId,
    amount_minor: i64,
) -> Result<i64> {
    s.require_role(actor, Role::Cashier, "top up", "gift_cards")?;
    require(
        &s.tenant_settings()?,
        Feature::GiftCards,
        "topping up a gift card",
    )?;
    let amount = positive("a top-up", amount_minor)?;
    let now = Timestamp::now();
    usable_card(s, card, now)?;
    card_entry(s, actor, card, "top_up", amount, None, now)
}

pub(crate) fn redeem_gift_card(
    s: &Scope<'_>,
    actor: &Actor,
    card: RowId,
    amount_minor: i64,
    in_sale: InSale<'_>,
) -> Result<i64> {
    let rules = rules(
        s,
        actor,
        in_sale,
        "redeem",
        (Feature::GiftCards, "redeeming a gift card"),
    )?;
    let amount = positive("a gift card redemption", amount_minor)?;
    let now = in_sale.map_or_else(Timestamp::now, |(_, ctx)| ctx.now);
    let c = usable_card(s, card, now)?;
    if let Some((_, ctx)) = in_sale {
        if c.currency != ctx.currency() {
            return Err(FlowError::Currency {
                what: "the gift card",
                expected: ctx.currency().to_owned(),
                found: c.currency,
            }
            .into());
        }
    }
    let held = s.balance::<GiftCardTransaction>(&[&card])?;
    if held < amount && !rules.allow_gift_card_overdraw {
        return Err(FlowError::GiftCardBalance {
            card,
            balance_minor: held,
            wanted_minor: amount,
        }
        .into());
    }
    card_entry(
        s,
        actor,
        card,
        "redeem",
        -amount,
        in_sale.map(|(sale, _)| sale),
        now,
    )
}

/// The customer's loyalty account, if any.
pub(crate) fn loyalty_account(s: &Scope<'_>, customer: RowId) -> Result<Option<RowId>> {
    s.query_optional(
        "SELECT id FROM loyalty_accounts WHERE tenant_id = ?1 AND customer_id = ?2",
        &[&customer],
        |r| r.get(0),
    )
}

/// The customer's store credit account, if any.
pub(crate) fn credit_account(s: &Scope<'_>, customer: RowId) -> Result<Option<RowId>> {
    s.query_optional(
        "SELECT id FROM credit_accounts WHERE tenant_id = ?1 AND customer_id = ?2",
        &[&customer],
        |r| r.get(0),
    )
}

pub(crate) fn enroll_loyalty(
    s: &Scope<'_>,
    actor: &Actor,
    customer: RowId,
    number: &str,
) -> Result<LoyaltyAccount> {
    s.require_role(actor, Role::Cashier, "enroll", "loyalty_accounts")?;
    require(
        &s.tenant_settings()?,
        Feature::Loyalty,
        "enrolling in loyalty",
    )?;
    if number.trim().is_empty() {
        return Err(FlowError::Empty {
            what: "a loyalty card number",
        }
        .into());
    }
    let account = LoyaltyAccount {
        id: RowId::new(),
        customer_id: customer,
        number: number.to_owned(),
        created_at: Timestamp::now(),
    };
    s.append(actor, &account)?;
    Ok(account)
}

pub(crate) fn redeem_points(
    s: &Scope<'_>,
    actor: &Actor,
    account: RowId,
    points: i64,
    in_sale: InSale<'_>,
) -> Result<i64> {
    rules(
        s,
        actor,
        in_sale,
        "redeem",
        (Feature::Loyalty, "redeeming points"),
    )?;
    let points = positive("points redeemed", points)?;
    let held = s.balance::<LoyaltyTransaction>(&[&account])?;
    if held < points {
        return Err(FlowError::LoyaltyPoints {
            account,
            points: held,
            wanted: points,
        }
        .into());
    }
    s.append(
        actor,
        &LoyaltyTransaction {
            id: RowId::new(),
            account_id: account,
            kind: "redeem".to_owned(),
            points: -points,
            sale_id: in_sale.map(|(sale, _)| sale),
            created_at: in_sale.map_or_else(Timestamp::now, |(_, ctx)| ctx.now),
        },
    )?;
    Ok(held - points)
}

fn credit_entry(
    s: &Scope<'_>,
    actor: &Actor,
    account: RowId,
    kind: &str,
    amount_minor: i64,
    sale: Option<RowId>,
    at: Timestamp,
) -> Result<i64> {
    s.append(
        actor,
        &CreditTransaction {
            id: RowId::new(),
            account_id: account,
            kind: kind.to_owned(),
            amount_minor,
            sale_id: sale,
            user_id: Some(actor.user_id()),
            created_at: at,
        },
    )?;
    s.balance::<CreditTransaction>(&[&account])
}

pub(crate) fn charge_credit(
    s: &Scope<'_>,
    actor: &Actor,
    account: RowId,
    amount_minor: i64,
    in_sale: InSale<'_>,
) -> Result<i64> {
    let rules = rules(
        s,
        actor,
        in_sale,
        "charge",
        (Feature::StoreCredit, "charging store credit"),
    )?;
    let amount = positive("a store credit charge", amount_minor)?;
    let CreditAccount {
        credit_limit_minor: limit,
        active,
        currency,
        ..
    } = s.row(account)?;
    if !active {
        return Err(FlowError::AccountClosed { account }.into());
    }
    if let Some((_, ctx)) = in_sale {
        if currency != ctx.currency() {
            return Err(FlowError::Currency {
                what: "the store credit account",
                expected: ctx.currency().to_owned(),
                found: currency,
            }
            .into());
        }
    }
    let owed = s.balance::<CreditTransaction>(&[&account])?;
    let after = owed.checked_add(amount).ok_or(FlowError::Overflow)?;
    if after > limit && !rules.allow_credit_over_limit {
        return Err(FlowError::CreditLimit {
            account,
            owed_minor: owed,
            limit_minor: limit,
            wanted_minor: amount,
        }
        .into());
    }
    let now = in_sale.map_or_else(Timestamp::now, |(_, ctx)| ctx.now);
    credit_entry(
        s,
        actor,
        account,
        "charge",
        amount,
        in_sale.map(|(sale, _)| sale),
        now,
    )
}

pub(crate) fn pay_credit(
    s: &Scope<'_>,
    actor: &Actor,
    account: RowId,
    amount_minor: i64,
) -> Result<i64> {
    s.require_role(actor, Role::Cashier, "pay", "credit_transactions")?;
    let amount = positive("a store credit payment", amount_minor)?;
    // Taken whether or not store credit is switched on: a switch must never keep a customer
    // from paying off what they owe.
    // The account must be this tenant's; paying more than is owed leaves a credit balance.
    s.row::<CreditAccount>(account)?;
    credit_entry(
        s,
        actor,
        account,
        "payment",
        -amount,
        None,
        Timestamp::now(),
    )
}
