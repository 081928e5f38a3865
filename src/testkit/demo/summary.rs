//! What the demo did.

use std::collections::BTreeMap;

use serde::Serialize;

/// What [`fill`](super::fill) did: the catalog it made (all zero when the tenant had one) and
/// the sales.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DemoSummary {
    /// The seed used.
    pub seed: u64,
    /// Whether the tenant had no products and got the demo catalog.
    pub catalog_created: bool,
    /// Whether the tenant had no tax rate and got the demo's sales tax (8.25 %).
    pub tax_rate_added: bool,
    /// Product categories made.
    pub categories: u64,
    /// Products made.
    pub products: u64,
    /// Fitment rows made (which vehicles a part fits).
    pub fitments: u64,
    /// Inventory rows made (bins and reorder levels per location).
    pub inventory_rows: u64,
    /// Price levels made.
    pub price_levels: u64,
    /// Customers made.
    pub customers: u64,
    /// Customer vehicles made.
    pub vehicles: u64,
    /// Loyalty accounts opened.
    pub loyalty_accounts: u64,
    /// Store credit accounts opened.
    pub credit_accounts: u64,
    /// Promotions made.
    pub promotions: u64,
    /// Commission rules made.
    pub commission_rules: u64,
    /// Deliveries received (one per stocked product).
    pub stock_receipts: u64,
    /// Gift cards issued with the catalog (sold cards are in `gift_cards_sold`).
    pub gift_cards_issued: u64,
    /// Attempts made: every kind below (a layaway payment that completes the layaway counts
    /// once) plus the refused.
    pub attempted: u64,
    /// Checkouts completed.
    pub checkouts: u64,
    /// Gift cards sold (the sale of the card and its issue, in one transaction; no points or
    /// commission).
    pub gift_cards_sold: u64,
    /// Refunds made (one whole line of a sale of this run each).
    pub refunds: u64,
    /// Sales of this run voided.
    pub voids: u64,
    /// Layaways opened.
    pub layaways_opened: u64,
    /// Payments into layaways, deposits included.
    pub layaway_payments: u64,
    /// Layaways paid in full and completed.
    pub layaways_completed: u64,
    /// Work orders opened, worked and completed into a sale.
    pub work_orders: u64,
    /// Attempts a business rule refused, skipped.
    pub refused: u64,
    /// The refused attempts by the rule that refused them (`insufficient_stock`, ...).
    pub refusals: BTreeMap<String, u64>,
    /// Products received while trading (not attempts): one per product a delivery restocked
    /// because its stock had fallen below its reorder level. The opening deliveries are in
    /// `stock_receipts`.
    pub restock_receipts: u64,
    /// Sum of the totals of the sales completed (checkouts, gift cards, work orders, completed
    /// layaways) less refunds and voids, in minor units.
    pub revenue_minor: i64,
    /// Sum of payments by method, in minor units: sale payments (cash net of change, refunds
    /// negative) and layaway payments.
    pub payments_minor: BTreeMap<String, i64>,
    /// Loyalty points earned by the sales.
    pub points_earned: i64,
    /// Promotions applied (one per promotion per sale).
    pub promotions_used: u64,
}
