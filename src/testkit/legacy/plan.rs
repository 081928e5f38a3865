//! How many of each thing to make for a row target.

use super::data::CATEGORIES;

/// Rows expected per product (itself, stock rows, opening counts, fitment), per customer
/// (itself, vehicles, loyalty and credit accounts with their opening rows) and per sale (its
/// lines, payments, stock movements, ledgers, work orders, layaways and audit entry); the
/// audit trail absorbs the difference so the total lands on target.
const ROWS_PER_PRODUCT: f64 = 4.35;
const ROWS_PER_CUSTOMER: f64 = 2.5;
const ROWS_PER_SALE: f64 = 9.05;

/// How many of each thing to make for a row target.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) rows: u64,
    pub(super) users: usize,
    pub(super) devices: usize,
    pub(super) products: usize,
    pub(super) customers: usize,
    pub(super) gift_cards: usize,
    pub(super) promotions: usize,
    pub(super) sessions: u64,
    pub(super) sync_runs: u64,
    pub(super) backups: u64,
    pub(super) restores: usize,
    pub(super) conflicts: usize,
    pub(super) sales: usize,
    pub(super) layaways: usize,
    pub(super) work_orders: usize,
    pub(super) refunds: usize,
    pub(super) voids: usize,
    pub(super) promo_sales: usize,
    pub(super) receipts: u64,
    pub(super) adjustments: u64,
    pub(super) transfers: u64,
}

impl Plan {
    pub(super) fn new(rows: u64, days: u32) -> Self {
        let r = rows as f64;
        let per = |f: f64, min: usize| ((r * f) as usize).max(min);
        let users = 5 + (rows / 100_000).min(15) as usize;
        let devices = 4 + (rows / 250_000).min(4) as usize;
        let products = per(0.02, 20);
        let customers = per(0.015, 10);
        let gift_cards = per(0.001, 2);
        let promotions = 6 + (rows / 250_000).min(10) as usize;
        let sessions = (rows * 3 / 1_000).max(2);
        let sync_runs = (rows * 3 / 1_000).max(2);
        let backups = (rows / 2_000).clamp(1, u64::from(days));
        let restores = ((backups / 60) as usize).max(1);
        let conflicts = 4 + (rows / 200_000) as usize;
        let fixed = users
            + devices
            + 4 // price levels
            + CATEGORIES.len()
            + promotions
            + 4 // commission rules
            + 4 // backup destinations and settings
            + restores
            + conflicts;
        let master = fixed as f64
            + products as f64 * ROWS_PER_PRODUCT
            + customers as f64 * ROWS_PER_CUSTOMER
            + gift_cards as f64 * 2.0
            + (sessions + sync_runs + backups) as f64;
        // At least 40 sales, so each special kind below fits in its eighth.
        let sales = (((r - master) / ROWS_PER_SALE) as usize).max(40);
        let cap = sales / 8;
        Self {
            rows,
            users,
            devices,
            products,
            customers,
            gift_cards,
            promotions,
            sessions,
            sync_runs,
            backups,
            restores,
            conflicts,
            sales,
            layaways: ((rows / 1_000) as usize).clamp(1, cap),
            work_orders: ((rows / 300) as usize).clamp(2, cap),
            refunds: (sales / 100).clamp(1, cap),
            voids: (sales / 60).clamp(1, cap),
            promo_sales: (sales / 20).max(2),
            receipts: (sales / 5) as u64,
            adjustments: (sales / 60).max(1) as u64,
            transfers: (sales / 120) as u64,
        }
    }
}
