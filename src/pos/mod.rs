//! What a POS does, through the tenant handle: checkout, refunds and voids, gift cards, loyalty,
//! store credit, layaways, work orders, stock and reports.
//!
//! Every flow is one transaction (everything or nothing, with an audit row and a pending
//! operation per row written), checks the actor once (at least a cashier; stock adjustments and
//! counts a manager), and is available on [`crate::Tenant`] and inside a [`crate::TenantTx`]
//! through the [`Pos`] trait.
//!
//! Balances are never a number two terminals overwrite. Stock on hand, gift card balances,
//! loyalty points, credit owed and layaway payments are sums of append-only ledger rows
//! ([`crate::catalog::BALANCES`]), so merging two terminals' work is a union of rows. The business rules a
//! single terminal enforces (no selling below zero stock, no redeeming more than a card holds, no
//! charging past a credit limit) are refused here with a [`FlowError`] unless the tenant's
//! [`crate::BusinessRules`] allow them; two terminals offline can still break them together, and
//! the sync engine records that as a conflict for a person.
//!
//! Money is integer minor units and every rounding is half away from zero ([`money`]).
//!
//! The tenant's feature switches ([`Feature`], [`TenantSettings::feature`]) decide which flows
//! a terminal offers: a switched-off feature refuses the flows that start something of it with
//! [`FlowError::FeatureOff`] (nothing written), and a checkout leaves out the parts it covers.
//! Refunds and voids are never refused by a switch.
//!
//! ```
//! use pos_tenancy::catalog::Product;
//! use pos_tenancy::pos::{Checkout, LineItem, Pos, Tender};
//! use pos_tenancy::{NewTenant, RowId, Store, TenantAccess, Timestamp};
//! let store = Store::open_in_memory()?;
//! store.add_tenant(&NewTenant::new("caps".parse()?, "Caps"))?;
//! let caps = store.tenant(&"caps".parse()?)?;
//! let admin = caps.bootstrap_admin("owner", "Store Owner")?;
//! let now = Timestamp::now();
//! let oil = Product {
//!     id: RowId::new(), sku: "OIL-5W30".into(), barcode: None, name: "5W-30 oil, 1 l".into(),
//!     description: None, brand: None, category_id: None, kind: "stocked".into(),
//!     price_minor: 899, cost_minor: 500, currency: "USD".into(), taxable: true,
//!     reorder_level_milli: 0, image: None, active: true, created_at: now, updated_at: now,
//! };
//! caps.insert(&admin, &oil)?;
//! caps.receive_stock(&admin, oil.id, "main", 10_000, Some(500))?;
//! let receipt = caps.checkout(&admin, &Checkout::new()
//!     .line(LineItem::product(oil.id, 2_000))
//!     .tender(Tender::Cash { tendered_minor: 2_000 }))?;
//! assert_eq!(receipt.sale.total_minor, 1_798);
//! assert_eq!(receipt.change_minor, 202);
//! assert_eq!(caps.stock_on_hand(oil.id, "main")?, 8_000);
//! # Ok::<(), pos_tenancy::Error>(())
//! ```

pub mod money;

pub(crate) mod accounts;
pub(crate) mod checkout;
pub(crate) mod layaway;
pub(crate) mod refund;
pub(crate) mod reports;
pub(crate) mod stock;
pub(crate) mod work_order;

pub use accounts::{GiftCardReceipt, GiftCardSale};
pub use checkout::{Checkout, LineItem, Receipt, Tender, DEFAULT_LOCATION};
pub use layaway::{LayawayCancellation, LayawayCompletion, LayawayOrder, LayawayReceipt};
pub use refund::{CardOverride, Refund, RefundReceipt, RefundTender};
pub use reports::{
    CreditStanding, CustomerHistory, GiftCardHolding, LoyaltyStanding, OpenLayaway, PaymentTotal,
    ReorderLine, MAX_HISTORY_SALES, PAYMENT_METHOD_ORDER,
};
pub use work_order::WorkOrderRequest;

use crate::catalog::{
    CreditTransaction, GiftCard, GiftCardTransaction, InventoryTransaction, LoyaltyAccount,
    LoyaltyTransaction, PaymentMethod,
};
use crate::ids::{RowId, Timestamp};
#[cfg(feature = "receipts")]
use crate::receipt::{ReceiptDocument, ReceiptFormat, ReceiptOf};
use crate::tenant::settings::{Feature, TenantSettings};
use crate::tenant::{Actor, TenantAccess};
use crate::Result;

/// Refuses `flow` with [`FlowError::FeatureOff`] when the settings switch `feature` off.
pub(crate) fn require(
    settings: &TenantSettings,
    feature: Feature,
    flow: &'static str,
) -> std::result::Result<(), FlowError> {
    if settings.feature(feature) {
        Ok(())
    } else {
        Err(FlowError::FeatureOff { feature, flow })
    }
}

/// A POS flow refused: a business rule or bad input. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// A sale, layaway or work order needs at least one line.
    #[error("{what} has no lines")]
    NoLines {
        /// What was empty.
        what: &'static str,
    },
    /// A quantity that is zero or negative (or too large).
    #[error("line {line}: quantity {quantity_milli} thousandths must be above zero")]
    Quantity {
        /// 1-based line number.
        line: usize,
        /// The quantity given.
        quantity_milli: i64,
    },
    /// An amount that must be above zero (or zero or above) is not.
    #[error("{what} must be {rule}, got {amount_minor}")]
    Amount {
        /// What the amount is for.
        what: &'static str,
        /// "above zero" or "zero or above".
        rule: &'static str,
        /// The amount given.
        amount_minor: i64,
    },
    /// A required text is empty (a reason, a card reference, a description).
    #[error("{what} must not be empty")]
    Empty {
        /// Which text.
        what: &'static str,
    },
    /// The product is inactive and cannot be sold.
    #[error("product {product} is inactive")]
    ProductInactive {
        /// The product.
        product: RowId,
    },
    /// A product, card or account in another currency than the store's.
    #[error("{what} is in {found}, the store sells in {expected}")]
    Currency {
        /// What has the other currency.
        what: &'static str,
        /// The store's currency.
        expected: String,
        /// The other one.
        found: String,
    },
    /// Selling more than is on hand, and the tenant does not allow negative stock.
    #[error(
        "not enough stock of product {product} at {location}: {on_hand_milli} on hand, \
         {wanted_milli} wanted (thousandths)"
    )]
    InsufficientStock {
        /// The product.
        product: RowId,
        /// The location.
        location: String,
        /// On hand now.
        on_hand_milli: i64,
        /// Wanted in this flow.
        wanted_milli: i64,
    },
    /// Redeeming more than a gift card holds, and the tenant does not allow overdraws.
    #[error("gift card {card} holds {balance_minor}, {wanted_minor} wanted")]
    GiftCardBalance {
        /// The card.
        card: RowId,
        /// Its balance.
        balance_minor: i64,
        /// Wanted.
        wanted_minor: i64,
    },
    /// The gift card cannot be used (inactive, expired).
    #[error("gift card {card} cannot be used: {reason}")]
    GiftCardUnusable {
        /// The card.
        card: RowId,
        /// Why.
        reason: &'static str,
    },
    /// Charging past a credit limit, and the tenant does not allow it.
    #[error(
        "store credit {account}: {owed_minor} owed of a {limit_minor} limit, {wanted_minor} more \
         wanted"
    )]
    CreditLimit {
        /// The account.
        account: RowId,
        /// Owed now.
        owed_minor: i64,
        /// The limit.
        limit_minor: i64,
        /// The new charge.
        wanted_minor: i64,
    },
    /// The customer has no account of this kind (or none is named).
    #[error("{what}: the customer has no {account} account")]
    NoAccount {
        /// What needed it.
        what: &'static str,
        /// The account's payment method, `store_credit` or `loyalty` ([`PaymentMethod::as_str`]).
        account: &'static str,
    },
    /// The store credit account is closed for charges.
    #[error("store credit account {account} is closed")]
    AccountClosed {
        /// The account.
        account: RowId,
    },
    /// Redeeming more points than the account holds.
    #[error("loyalty account {account} holds {points} points, {wanted} wanted")]
    LoyaltyPoints {
        /// The account.
        account: RowId,
        /// Its points.
        points: i64,
        /// Wanted.
        wanted: i64,
    },
    /// The tenders do not cover the amount due.
    #[error("{due_minor} due, {paid_minor} tendered")]
    Underpaid {
        /// Due.
        due_minor: i64,
        /// Tendered.
        paid_minor: i64,
    },
    /// Tenders other than cash exceed the amount due (only cash gives change).
    #[error("{due_minor} due, {paid_minor} in tenders that give no change")]
    Overpaid {
        /// Due.
        due_minor: i64,
        /// Paid in non-cash tenders.
        paid_minor: i64,
    },
    /// A tender this flow does not take.
    #[error("{flow} does not take {method}")]
    TenderNotAccepted {
        /// The flow.
        flow: &'static str,
        /// The payment method ([`PaymentMethod::as_str`]).
        method: &'static str,
    },
    /// A refund gives back by a method more than the sale took by it (refunds before this one
    /// counted), and the tenant does not allow refunds to any tender
    /// ([`crate::BusinessRules::allow_refund_to_any_tender`]). Figures are minor units, or
    /// points for `loyalty`.
    #[error(
        "a refund by {method}{}: the sale took {sale_took} {} by it, {refunded} already \
         refunded, {wanted} wanted",
        gift_card.map(|c| format!(" {c}")).unwrap_or_default(),
        if *method == PaymentMethod::Loyalty.as_str() { "points" } else { "minor units" }
    )]
    RefundExceedsTender {
        /// The refund method ([`PaymentMethod::as_str`]).
        method: &'static str,
        /// The gift card, for `gift_card`.
        gift_card: Option<RowId>,
        /// What the sale took by this method (and card).
        sale_took: i64,
        /// What earlier refunds of the sale gave back by it.
        refunded: i64,
        /// What this refund gives back by it.
        wanted: i64,
    },
    /// Refunding or voiding a sale that sold a gift card: its money is on the card, and the
    /// card is what would have to be unloaded (redeem what is left on it instead).
    #[error(
        "sale {sale} sold gift card {card}: its money is on the card, so the sale cannot be \
         reversed by {action}; redeem the card instead"
    )]
    SoldGiftCard {
        /// The sale.
        sale: RowId,
        /// The card it sold.
        card: RowId,
        /// `refund` or `void`.
        action: &'static str,
    },
    /// A figure does not fit in 64 bits.
    #[error("an amount overflowed")]
    Overflow,
    /// A document is not in a state that allows this flow.
    #[error("{what} {id} is {status}: cannot {action}")]
    State {
        /// The document kind.
        what: &'static str,
        /// Its id.
        id: RowId,
        /// Its status.
        status: String,
        /// The flow refused.
        action: &'static str,
    },
    /// Reversing more of a sale line than is left of it.
    #[error("line {line}: {remaining_milli} thousandths left to reverse, {wanted_milli} wanted")]
    ReverseTooMuch {
        /// The original line.
        line: RowId,
        /// Not yet reversed.
        remaining_milli: i64,
        /// Wanted.
        wanted_milli: i64,
    },
    /// A line that does not belong to the sale being reversed.
    #[error("line {line} is not a line of sale {sale}")]
    ForeignLine {
        /// The line.
        line: RowId,
        /// The sale.
        sale: RowId,
    },
    /// A layaway deposit below the tenant's minimum.
    #[error("a deposit of {given_minor} is below the minimum {min_minor}")]
    DepositTooSmall {
        /// The minimum.
        min_minor: i64,
        /// Given.
        given_minor: i64,
    },
    /// Paying more into a layaway than is left to pay.
    #[error("layaway {layaway}: {left_minor} left to pay, {given_minor} given")]
    LayawayOverpaid {
        /// The layaway.
        layaway: RowId,
        /// Left to pay.
        left_minor: i64,
        /// Given.
        given_minor: i64,
    },
    /// Completing a layaway that is not fully paid.
    #[error("layaway {layaway}: {paid_minor} of {total_minor} paid")]
    LayawayUnpaid {
        /// The layaway.
        layaway: RowId,
        /// Paid.
        paid_minor: i64,
        /// Due.
        total_minor: i64,
    },
    /// The flow belongs to a feature the tenant's settings switch off
    /// ([`TenantSettings::feature`]); see [`Feature`] for what each switch refuses.
    #[error(
        "{flow} is refused: the feature switch {feature} is off in the tenant's settings \
         (features.{feature})"
    )]
    FeatureOff {
        /// The switch that is off.
        feature: Feature,
        /// What was refused.
        flow: &'static str,
    },
    /// A vehicle named for a customer who does not own it.
    #[error("vehicle {vehicle} does not belong to customer {customer}")]
    ForeignVehicle {
        /// The vehicle.
        vehicle: RowId,
        /// The customer named.
        customer: RowId,
    },
}

/// The POS flows on a tenant handle ([`crate::Tenant`]) or inside a transaction
/// ([`crate::TenantTx`]). Implemented for every [`TenantAccess`].
pub trait Pos: TenantAccess {
    /// Sells lines to a customer (or to nobody) for one or more tenders, in one transaction:
    /// the sale, its lines and payments, one stock row per stocked line, gift card, store credit
    /// and loyalty ledger rows, promotion usage and commission rows. See [`Checkout`]. A tender
    /// or coupon code of a switched-off feature is refused ([`FlowError::FeatureOff`]); price
    /// levels, promotions, commission and points earned are left out while theirs is off.
    fn checkout(&self, actor: &Actor, sale: &Checkout) -> Result<Receipt> {
        self.in_write(|s| checkout::run(s, actor, sale))
    }

    /// Stock on hand of a product at a location, in thousandths: the sum of its ledger.
    fn stock_on_hand(&self, product: RowId, location: &str) -> Result<i64> {
        self.scope()
            .balance::<InventoryTransaction>(&[&product, &location])
    }

    /// Receives stock (a delivery): a `receive` ledger row. Needs a manager.
    fn receive_stock(
        &self,
        actor: &Actor,
        product: RowId,
        location: &str,
        quantity_milli: i64,
        unit_cost_minor: Option<i64>,
    ) -> Result<i64> {
        self.in_write(|s| {
            stock::receive(s, actor, product, location, quantity_milli, unit_cost_minor)
        })
    }

    /// Adjusts stock by a signed quantity for a stated reason (damage, theft, found): an
    /// `adjust` ledger row. Needs a manager. Returns the new stock on hand.
    fn adjust_stock(
        &self,
        actor: &Actor,
        product: RowId,
        location: &str,
        delta_milli: i64,
        reason: &str,
    ) -> Result<i64> {
        self.in_write(|s| stock::adjust(s, actor, product, location, delta_milli, reason))
    }

    /// Records a stock count: a `count` ledger row of the difference between what was counted
    /// and what the ledger says, so stock on hand becomes the count. Two terminals' sales made
    /// meanwhile offline still count against it when they arrive. Needs a manager.
    fn count_stock(
        &self,
        actor: &Actor,
        product: RowId,
        location: &str,
        counted_milli: i64,
    ) -> Result<i64> {
        self.in_write(|s| stock::count(s, actor, product, location, counted_milli))
    }

    /// Issues a gift card loaded with `amount_minor`: the card and its `issue` ledger row. No
    /// money is taken (a promotional card); [`Pos::sell_gift_card`] sells one. Refused while
    /// [`Feature::GiftCards`] is off, as are selling, topping up and redeeming a card.
    fn issue_gift_card(
        &self,
        actor: &Actor,
        code: &str,
        amount_minor: i64,
        customer: Option<RowId>,
        expires_at: Option<Timestamp>,
    ) -> Result<GiftCard> {
        self.in_write(|s| {
            accounts::issue_gift_card(s, actor, code, amount_minor, customer, expires_at)
        })
    }

    /// Sells a gift card for money, in one transaction: a sale of one untaxed service line
    /// "Gift card `<code>`" for the card's amount, its payments by the tenders given (cash with
    /// change, card, store credit; a gift card or loyalty points are refused with
    /// [`FlowError::TenderNotAccepted`]), then the card and its `issue` ledger row naming the
    /// sale. No promotions, loyalty points or commission: the card earns points when it is
    /// spent. The sale cannot be refunded or voided ([`FlowError::SoldGiftCard`]). See
    /// [`GiftCardSale`]; [`Pos::issue_gift_card`] loads a card without taking money.
    fn sell_gift_card(&self, actor: &Actor, sale: &GiftCardSale) -> Result<GiftCardReceipt> {
        self.in_write(|s| accounts::sell_gift_card(s, actor, sale))
    }

    /// Loads more onto a gift card: a `top_up` ledger row. Returns the new balance.
    fn top_up_gift_card(&self, actor: &Actor, card: RowId, amount_minor: i64) -> Result<i64> {
        self.in_write(|s| accounts::top_up_gift_card(s, actor, card, amount_minor))
    }

    /// Redeems from a gift card outside a checkout: a `redeem` ledger row. Returns the new
    /// balance. Refused past the balance unless the tenant allows overdraws.
    fn redeem_gift_card(&self, actor: &Actor, card: RowId, amount_minor: i64) -> Result<i64> {
        self.in_write(|s| accounts::redeem_gift_card(s, actor, card, amount_minor, None))
    }

    /// A gift card's balance: the sum of its ledger.
    fn gift_card_balance(&self, card: RowId) -> Result<i64> {
        self.scope().balance::<GiftCardTransaction>(&[&card])
    }

    /// Opens the customer's loyalty account (one per customer) under a card number. Refused
    /// while [`Feature::Loyalty`] is off, as is redeeming points.
    fn enroll_loyalty(
        &self,
        actor: &Actor,
        customer: RowId,
        number: &str,
    ) -> Result<LoyaltyAccount> {
        self.in_write(|s| accounts::enroll_loyalty(s, actor, customer, number))
    }

    /// Points on a loyalty account: the sum of its ledger.
    fn loyalty_points(&self, account: RowId) -> Result<i64> {
        self.scope().balance::<LoyaltyTransaction>(&[&account])
    }

    /// Redeems points outside a checkout (a reward): a `redeem` ledger row. Returns the points
    /// left. Never past the balance.
    fn redeem_points(&self, actor: &Actor, account: RowId, points: i64) -> Result<i64> {
        self.in_write(|s| accounts::redeem_points(s, actor, account, points, None))
    }

    /// Charges a customer's store credit outside a checkout: a `charge` ledger row. Returns
    /// what is owed. Refused past the limit unless the tenant allows it, and while
    /// [`Feature::StoreCredit`] is off.
    fn charge_credit(&self, actor: &Actor, account: RowId, amount_minor: i64) -> Result<i64> {
        self.in_write(|s| accounts::charge_credit(s, actor, account, amount_minor, None))
    }

    /// Records a payment against store credit owed: a `payment` ledger row. Returns what is
    /// still owed. Taken even while [`Feature::StoreCredit`] is off: a debt can always be paid.
    fn pay_credit(&self, actor: &Actor, account: RowId, amount_minor: i64) -> Result<i64> {
        self.in_write(|s| accounts::pay_credit(s, actor, account, amount_minor))
    }

    /// What a store credit account owes: the sum of its ledger.
    fn credit_owed(&self, account: RowId) -> Result<i64> {
        self.scope().balance::<CreditTransaction>(&[&account])
    }

    /// A day's takings by payment method (UTC day): sale payments and layaway payments paid
    /// that day, refunds (negative payments) netted in, methods in [`PAYMENT_METHOD_ORDER`];
    /// methods with no payment that day are left out.
    fn sales_by_payment(&self, day: chrono::NaiveDate) -> Result<Vec<PaymentTotal>> {
        reports::sales_by_payment(&self.scope(), day)
    }

    /// Active stocked products whose stock on hand at `location` is below their reorder level
    /// (the location's `inventory` row if any, else the product's; a level of 0 means never
    /// reorder), by SKU.
    fn stock_below_reorder(&self, location: &str) -> Result<Vec<ReorderLine>> {
        reports::stock_below_reorder(&self.scope(), location)
    }

    /// A customer's history: the latest `limit` sales (1 to [`MAX_HISTORY_SALES`]), vehicles,
    /// work orders, gift cards with balances, loyalty points, credit owed and limit, and open
    /// layaways with what is paid.
    fn customer_history(&self, customer: RowId, limit: u32) -> Result<CustomerHistory> {
        reports::customer_history(&self.scope(), customer, limit)
    }

    /// Puts goods aside for a customer against a deposit (cash or card): the lines priced as
    /// a checkout prices them, the stock checked but not taken, the sale written with status
    /// `layaway`, the layaway and its deposit as the first row of its payments. Refused while
    /// [`Feature::Layaways`] is off; a layaway already open can still be paid, completed and
    /// cancelled.
    fn open_layaway(&self, actor: &Actor, order: &LayawayOrder) -> Result<LayawayReceipt> {
        self.in_write(|s| layaway::open(s, actor, order))
    }

    /// Pays into an open layaway (cash or card), never past what is left. Returns what has
    /// been paid so far.
    fn pay_layaway(&self, actor: &Actor, layaway: RowId, tender: &Tender) -> Result<i64> {
        self.in_write(|s| layaway::pay(s, actor, layaway, tender))
    }

    /// What has been paid into a layaway: the sum of its payments.
    fn layaway_paid(&self, layaway: RowId) -> Result<i64> {
        layaway::paid_so_far(&self.scope(), layaway)
    }

    /// Completes a fully paid layaway: the stock leaves now (`layaway` ledger rows),
    /// commission and loyalty points are earned, and the sale and the layaway are completed.
    fn complete_layaway(&self, actor: &Actor, layaway: RowId) -> Result<LayawayCompletion> {
        self.in_write(|s| layaway::complete(s, actor, layaway))
    }

    /// Cancels an open layaway: what was paid, less the tenant's cancellation fee, goes back by
    /// the method each payment came in (negative payment rows: the cash in one, each card
    /// payment in its own), the fee taken out of the cash first, then out of the card payments
    /// oldest first; the sale is voided and no stock ever moved.
    fn cancel_layaway(&self, actor: &Actor, layaway: RowId) -> Result<LayawayCancellation> {
        self.in_write(|s| layaway::cancel(s, actor, layaway))
    }

    /// Opens a work order for a customer (and one of their vehicles). Refused while
    /// [`Feature::WorkOrders`] is off; an order already open can still be finished and billed.
    fn open_work_order(
        &self,
        actor: &Actor,
        request: &WorkOrderRequest,
    ) -> Result<crate::catalog::WorkOrder> {
        self.in_write(|s| work_order::open(s, actor, request))
    }

    /// Adds a part to an open work order at the product's price for the customer's price
    /// level.
    fn add_part(
        &self,
        actor: &Actor,
        work_order: RowId,
        product: RowId,
        quantity_milli: i64,
    ) -> Result<crate::catalog::WorkOrderLine> {
        self.in_write(|s| work_order::add_part(s, actor, work_order, product, quantity_milli))
    }

    /// Adds labour to an open work order: hours (in thousandths) at a rate per hour.
    fn add_labour(
        &self,
        actor: &Actor,
        work_order: RowId,
        description: &str,
        hours_milli: i64,
        rate_minor: i64,
    ) -> Result<crate::catalog::WorkOrderLine> {
        self.in_write(|s| {
            work_order::add_labour(s, actor, work_order, description, hours_milli, rate_minor)
        })
    }

    /// Completes a work order into a sale to its customer, run as a checkout of its lines
    /// (parts as products, labour as service lines taxed by the tenant's rule), paid by these
    /// tenders; the work order is completed and linked to the sale.
    fn complete_work_order(
        &self,
        actor: &Actor,
        work_order: RowId,
        tenders: &[Tender],
    ) -> Result<Receipt> {
        self.in_write(|s| work_order::complete(s, actor, work_order, tenders))
    }

    /// Cancels an open work order; nothing is sold.
    fn cancel_work_order(
        &self,
        actor: &Actor,
        work_order: RowId,
    ) -> Result<crate::catalog::WorkOrder> {
        self.in_write(|s| work_order::cancel(s, actor, work_order))
    }

    /// Refunds a sale, or some of its lines, as a new sale with negative figures; the
    /// original is never edited. Stock goes back when asked, the money by the tenders given
    /// (exactly the refund's total), loyalty points earned on the sale are taken back in
    /// proportion to its net, commission on the refunded lines' own share, and the sale's
    /// promotion uses are given back once every line a promotion discounted is wholly
    /// reversed. See [`Refund`]. Needs a cashier (and a manager's approval for
    /// [`Refund::override_unusable_card`]). A sale of a gift card is refused
    /// ([`FlowError::SoldGiftCard`]). Never refused by a feature switch: money goes back to a
    /// gift card, store credit or points as [`RefundTender`] says even while that feature is
    /// off (the balance waits there, readable, until it is on again).
    fn refund(&self, actor: &Actor, refund: &Refund) -> Result<RefundReceipt> {
        self.in_write(|s| refund::refund(s, actor, refund))
    }

    /// Voids a whole sale: every line reversed, stock back where it came from, every payment
    /// back by its own method (gift card, store credit and points to where they came from),
    /// points and commission taken back, promotion uses given back. Refused once any part of the sale was refunded, and
    /// for a sale of a gift card ([`FlowError::SoldGiftCard`]). Needs a manager.
    fn void_sale(&self, actor: &Actor, sale_id: RowId, reason: &str) -> Result<RefundReceipt> {
        self.in_write(|s| refund::void(s, actor, sale_id, reason))
    }

    /// The receipt of a sale, a refund or a void in `format` (text, ESC/POS or HTML), rendered
    /// from the stored rows alone; writes nothing, so it reprints at any time. The brand,
    /// header, footer and locale are those in force when the sale was made (the copy it keeps,
    /// [`crate::ReceiptBrand`]), or today's settings, said on the receipt, for a sale that
    /// keeps none: see [`crate::receipt`] for what a reprint shows.
    /// A refund or void shows negative figures, "REFUND" or "VOID" and the original receipt
    /// number. Fails with [`crate::Error::NotFound`] for a sale the tenant does not have.
    /// Only with the `receipts` feature (on by default).
    #[cfg(feature = "receipts")]
    fn receipt(&self, sale_id: RowId, format: &ReceiptFormat) -> Result<Vec<u8>> {
        self.receipt_of(&ReceiptOf::Sale(sale_id), format)
    }

    /// What the receipt of a sale shows ([`Pos::receipt`]), before it is laid out. Only with
    /// the `receipts` feature (on by default).
    #[cfg(feature = "receipts")]
    fn receipt_document(&self, sale_id: RowId) -> Result<ReceiptDocument> {
        self.receipt_document_of(&ReceiptOf::Sale(sale_id))
    }

    /// The receipt of `what` in `format`: a sale, a layaway payment or completion, a work
    /// order's invoice, a gift card's sale or a gift card's balance slip ([`ReceiptOf`]),
    /// rendered from the stored rows alone as [`Pos::receipt`] is. Each shows the brand copy
    /// of the sale it belongs to (a layaway payment: its layaway's sale); a balance slip, which
    /// belongs to no sale, shows today's settings and says so. Fails with
    /// [`crate::Error::NotFound`] for a row the tenant does not have, and with
    /// [`FlowError::State`] for a layaway or work order not completed or a card never sold.
    /// Only with the `receipts` feature (on by default).
    #[cfg(feature = "receipts")]
    fn receipt_of(&self, what: &ReceiptOf, format: &ReceiptFormat) -> Result<Vec<u8>> {
        Ok(self.receipt_document_of(what)?.render(format)?)
    }

    /// What the receipt of `what` shows ([`Pos::receipt_of`]), before it is laid out. Only
    /// with the `receipts` feature (on by default).
    #[cfg(feature = "receipts")]
    fn receipt_document_of(&self, what: &ReceiptOf) -> Result<ReceiptDocument> {
        let s = self.scope();
        let settings = s.tenant_settings()?;
        ReceiptDocument::load(&s, &settings, what)
    }
}

impl<T: TenantAccess + ?Sized> Pos for T {}
