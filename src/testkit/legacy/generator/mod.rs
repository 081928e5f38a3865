//! The generator: its records of what it made, its draws from the seeded stream, and the order
//! in which it writes the tables. The tables' rows are made in `master` (staff, devices,
//! catalogue, customers, promotions, gift cards, backup setup), `sales` (the trading days and
//! each sale with its lines, payments and commission), `documents` (layaways and work
//! orders), `daily` (each day's backups, sessions, stock movements, gift card and credit
//! upkeep and sync runs) and `epilogue` (restores, sync conflicts and the audit trail).

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use super::plan::Plan;
use super::schema::Writer;
use super::{LegacyOptions, Result, Span};
use crate::testkit::reference::{DAY_MS, HOUR_MS, MINUTE_MS};

mod daily;
mod documents;
mod epilogue;
mod master;
mod sales;

#[derive(Clone, Copy, PartialEq, Eq)]
enum ProductKind {
    Stocked,
    NonStocked,
    Service,
}

struct UserRec {
    id: Uuid,
    /// Earns commission on sales.
    commission: bool,
}

struct ProductRec {
    id: Uuid,
    name: String,
    kind: ProductKind,
    category: usize,
    price: i64,
    cost: i64,
    taxable: bool,
    fluid: bool,
    warehouse: bool,
}

struct CustomerRec {
    id: Uuid,
    created: i64,
    discount_ppm: i64,
    tax_exempt: bool,
    first_vehicle: usize,
    vehicles: usize,
    loyalty: Option<usize>,
    credit: Option<usize>,
}

struct VehicleRec {
    id: Uuid,
    mileage: Option<i64>,
}

struct GiftRec {
    id: Uuid,
    issued: i64,
    balance: i64,
}

struct LoyaltyRec {
    id: Uuid,
    points: i64,
}

struct CreditRec {
    id: Uuid,
    limit: i64,
    owed: i64,
    active: bool,
}

struct PromoRec {
    id: Uuid,
    percent: bool,
    value: i64,
    starts: i64,
    ends: Option<i64>,
}

struct RuleRec {
    id: Uuid,
    rate_ppm: i64,
}

struct SaleRec {
    id: Uuid,
    t: i64,
    user: usize,
}

struct BackupRec {
    id: Uuid,
    created: i64,
    ok: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SaleKind {
    Normal,
    Layaway,
    WorkOrder,
    Refund,
    Void,
}

#[derive(Clone, Copy)]
struct Line {
    product: Option<usize>,
    service: bool,
    qty: i64,
    unit: i64,
    gross: i64,
    discount: i64,
    tax: i64,
    total: i64,
}

pub(super) struct Gen<'c> {
    rng: ChaCha8Rng,
    pub(super) w: Writer<'c>,
    plan: Plan,
    span: Span,
    days: u32,
    users: Vec<UserRec>,
    /// Devices that ring up sales (tills and tablets).
    tills: Vec<Uuid>,
    devices: Vec<Uuid>,
    categories: Vec<Uuid>,
    price_levels: Vec<(Uuid, i64)>,
    products: Vec<ProductRec>,
    /// Parts in order of popularity (a random permutation), for skewed picks.
    popular: Vec<usize>,
    services: Vec<usize>,
    stocked: Vec<usize>,
    /// Stocked parts also kept in the warehouse.
    stored: Vec<usize>,
    customers: Vec<CustomerRec>,
    customer_created: Vec<i64>,
    /// Customers with a vehicle, in creation order.
    with_vehicle: Vec<usize>,
    vehicles: Vec<VehicleRec>,
    loyalty: Vec<LoyaltyRec>,
    credit: Vec<CreditRec>,
    gifts: Vec<GiftRec>,
    gift_issued: Vec<i64>,
    promos: Vec<PromoRec>,
    rules: Vec<RuleRec>,
    sales: Vec<SaleRec>,
    sessions: Vec<Uuid>,
    destinations: Vec<Uuid>,
    settings_id: Uuid,
    backups: Vec<BackupRec>,
    lines: Vec<Line>,
    next_layaway: usize,
    next_work_order: usize,
    next_vin: u64,
    sync_cursor: i64,
}

impl<'c> Gen<'c> {
    pub(super) fn new(w: Writer<'c>, options: &LegacyOptions, span: Span) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            w,
            plan: Plan::new(options.rows, options.days),
            span,
            days: options.days,
            users: Vec::new(),
            tills: Vec::new(),
            devices: Vec::new(),
            categories: Vec::new(),
            price_levels: Vec::new(),
            products: Vec::new(),
            popular: Vec::new(),
            services: Vec::new(),
            stocked: Vec::new(),
            stored: Vec::new(),
            customers: Vec::new(),
            customer_created: Vec::new(),
            with_vehicle: Vec::new(),
            vehicles: Vec::new(),
            loyalty: Vec::new(),
            credit: Vec::new(),
            gifts: Vec::new(),
            gift_issued: Vec::new(),
            promos: Vec::new(),
            rules: Vec::new(),
            sales: Vec::new(),
            sessions: Vec::new(),
            destinations: Vec::new(),
            settings_id: Uuid::nil(),
            backups: Vec::new(),
            lines: Vec::new(),
            next_layaway: 0,
            next_work_order: 0,
            next_vin: 0,
            sync_cursor: 0,
        }
    }

    pub(super) fn run(&mut self) -> Result<()> {
        self.staff_and_devices()?;
        self.catalogue()?;
        self.customer_base()?;
        self.promotions_and_rules()?;
        self.gift_cards()?;
        self.backup_setup()?;
        self.trading()?;
        self.open_work_orders()?;
        self.restores_and_conflicts()?;
        self.audit_trail()
    }

    // ------------------------------------------------------------------ randomness

    /// A UUIDv7 for a row made at `ms`, its random bits from the seeded stream.
    fn id(&mut self, ms: i64) -> Uuid {
        let mut bytes = [0u8; 10];
        self.rng.fill_bytes(&mut bytes);
        uuid::Builder::from_unix_timestamp_millis(u64::try_from(ms).unwrap_or(0), &bytes)
            .into_uuid()
    }

    /// True with probability `p` percent.
    fn pct(&mut self, p: u32) -> bool {
        self.rng.random_range(0..100) < p
    }

    fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            0
        } else {
            self.rng.random_range(0..n)
        }
    }

    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            lo
        } else {
            self.rng.random_range(lo..hi)
        }
    }

    fn any_user(&mut self) -> Uuid {
        let k = self.below(self.users.len());
        self.users[k].id
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    fn hex(&mut self, len: usize) -> String {
        const HEX: &[u8] = b"0123456789abcdef";
        (0..len)
            .map(|_| char::from(HEX[self.rng.random_range(0..16)]))
            .collect()
    }

    fn day_start(&self, d: u32) -> i64 {
        self.span.start + i64::from(d) * DAY_MS
    }

    /// A moment during opening hours of a random day at or after `from`.
    fn later(&mut self, from: i64) -> i64 {
        let t = self.between(from + MINUTE_MS, self.span.end - HOUR_MS);
        t.max(from + 1)
    }

    fn customers_before(&self, t: i64) -> usize {
        self.customer_created.partition_point(|&c| c < t)
    }
}
