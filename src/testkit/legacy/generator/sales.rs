//! The trading days, and each sale with its lines, payments and commission.

use rand::seq::SliceRandom;
use rand::Rng;
use uuid::Uuid;

use super::{Gen, Line, ProductKind, SaleKind, SaleRec};
use crate::testkit::legacy::data::{BRAKES, CATEGORIES};
use crate::testkit::legacy::schema::T;
use crate::testkit::legacy::values::{div_round, oid, Id, Ts, CURRENCY, TAX_BP};
use crate::testkit::legacy::Result;
use crate::testkit::reference::{DAY_MS, HOUR_MS};

impl Gen<'_> {
    /// The index of the first sale of day `d` (`days` gives the sale count): sales spread
    /// evenly, the first on the first day and the last on the last day.
    fn first_sale_of(&self, d: u32) -> usize {
        let s = self.plan.sales as u128;
        if d >= self.days {
            return self.plan.sales;
        }
        if self.days == 1 {
            return 0;
        }
        let (d, last) = (u128::from(d), u128::from(self.days - 1));
        ((d * (s - 1)).div_ceil(last)) as usize
    }

    pub(super) fn trading(&mut self) -> Result<()> {
        let s = self.plan.sales;
        let mut kinds = vec![SaleKind::Normal; s];
        let mut order: Vec<usize> = (0..s).collect();
        order.shuffle(&mut self.rng);
        let mut next = order.into_iter();
        for (kind, n) in [
            (SaleKind::Layaway, self.plan.layaways),
            (SaleKind::WorkOrder, self.plan.work_orders),
            (SaleKind::Refund, self.plan.refunds),
            (SaleKind::Void, self.plan.voids),
        ] {
            for i in next.by_ref().take(n) {
                kinds[i] = kind;
            }
        }
        // The very last sale is an ordinary one, left open (a basket still at the till).
        if kinds[s - 1] != SaleKind::Normal {
            if let Some(j) = kinds.iter().rposition(|k| *k == SaleKind::Normal) {
                kinds.swap(j, s - 1);
            }
        }
        let mut promo = vec![false; s];
        for i in rand::seq::index::sample(&mut self.rng, s, self.plan.promo_sales.min(s)) {
            promo[i] = true;
        }
        let mut times = Vec::new();
        for d in 0..self.days {
            let day = self.day_start(d);
            self.backups_of(d, day)?;
            self.sessions_of(d, day)?;
            self.stock_movements_of(d, day)?;
            self.gift_card_upkeep(d, day)?;
            let (first, end) = (self.first_sale_of(d), self.first_sale_of(d + 1));
            times.clear();
            for _ in first..end {
                times.push(day + self.between(8 * HOUR_MS, 19 * HOUR_MS));
            }
            times.sort_unstable();
            for (k, &t) in times.iter().enumerate() {
                let i = first + k;
                let open = i + 1 == s && s >= 20;
                self.sale(i, t, kinds[i], promo[i], open)?;
            }
            self.sync_runs_of(d, day)?;
            if d % 30 == 29 || d + 1 == self.days {
                self.credit_statements(day + 20 * HOUR_MS)?;
            }
        }
        Ok(())
    }

    pub(super) fn pick_part(&mut self) -> usize {
        if self.popular.is_empty() {
            let k = self.below(self.services.len());
            return self.services[k];
        }
        // Squaring a uniform draw favours the head of the popularity order.
        let u: f64 = self.rng.random();
        let rank = ((u * u) * self.popular.len() as f64) as usize;
        self.popular[rank.min(self.popular.len() - 1)]
    }

    pub(super) fn line(&mut self, product: usize, discount_ppm: i64, refund: bool) -> Line {
        let p = &self.products[product];
        let (fluid, service, price) = (p.fluid, p.kind == ProductKind::Service, p.price);
        let qty = if fluid {
            500 * self.between(2, 13)
        } else if service {
            250 * self.between(2, 13)
        } else {
            1_000 * [1, 1, 1, 1, 1, 1, 1, 2, 2, 4][self.below(10)]
        };
        let qty = if refund { -qty } else { qty };
        let unit = price - price * discount_ppm / 1_000_000;
        Line {
            product: Some(product),
            service,
            qty,
            unit,
            gross: div_round(qty * unit, 1_000),
            discount: 0,
            tax: 0,
            total: 0,
        }
    }

    fn sale(&mut self, i: usize, t: i64, kind: SaleKind, promo: bool, open: bool) -> Result<()> {
        let id = self.id(t);
        let user = self.below(self.users.len());
        let device = (!self.pct(3)).then(|| {
            let k = self.below(self.tills.len());
            self.tills[k]
        });
        let known = self.customers_before(t);
        let owners = self
            .with_vehicle
            .partition_point(|&c| self.customer_created[c] < t);
        let mut kind = kind;
        if (kind == SaleKind::WorkOrder && owners == 0) || (kind == SaleKind::Layaway && known == 0)
        {
            kind = SaleKind::Normal;
        }
        let customer = match kind {
            SaleKind::WorkOrder => {
                let k = self.below(owners);
                Some(self.with_vehicle[k])
            }
            SaleKind::Layaway => Some(self.below(known)),
            _ if known > 0 && self.pct(40) => Some(self.below(known)),
            _ => None,
        };
        let (ppm, exempt) = customer.map_or((0, false), |c| {
            (self.customers[c].discount_ppm, self.customers[c].tax_exempt)
        });
        let refund = kind == SaleKind::Refund;

        let mut lines = std::mem::take(&mut self.lines);
        lines.clear();
        let parts = match kind {
            SaleKind::WorkOrder => self.between(1, 4),
            SaleKind::Refund => self.between(1, 3),
            _ => [1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6][self.below(12)],
        };
        for _ in 0..parts {
            let p = if !refund && self.pct(5) && !self.services.is_empty() {
                let k = self.below(self.services.len());
                self.services[k]
            } else {
                self.pick_part()
            };
            lines.push(self.line(p, ppm, refund));
        }
        if kind == SaleKind::WorkOrder {
            for _ in 0..self.between(1, 3) {
                let k = self.below(self.services.len());
                let p = self.services[k];
                lines.push(self.line(p, ppm, false));
            }
        }
        let supplies = if kind == SaleKind::WorkOrder { 30 } else { 3 };
        if !refund && self.pct(supplies) {
            // A line with no product: shop supplies, disposal fees.
            let unit = self.between(150, 900);
            lines.push(Line {
                product: None,
                service: true,
                qty: 1_000,
                unit,
                gross: unit,
                discount: 0,
                tax: 0,
                total: 0,
            });
        }
        let promotion = if promo && !refund && kind != SaleKind::Void {
            let valid: Vec<usize> = (0..self.promos.len())
                .filter(|&k| {
                    let p = &self.promos[k];
                    p.starts <= t && p.ends.is_none_or(|e| t < e)
                })
                .collect();
            (!valid.is_empty()).then(|| self.pick(&valid))
        } else {
            None
        };
        if let Some(k) = promotion {
            let p = &self.promos[k];
            let gross = lines[0].gross;
            lines[0].discount = if p.percent {
                div_round(gross * p.value, 1_000_000)
            } else {
                p.value.min(gross)
            };
        }
        for l in lines.iter_mut() {
            let taxable = l.product.is_none_or(|p| self.products[p].taxable);
            if taxable && !exempt {
                l.tax = div_round((l.gross - l.discount) * TAX_BP, 10_000);
            }
            l.total = l.gross - l.discount + l.tax;
        }
        let subtotal: i64 = lines.iter().map(|l| l.gross).sum();
        let discount: i64 = lines.iter().map(|l| l.discount).sum();
        let tax: i64 = lines.iter().map(|l| l.tax).sum();
        let total: i64 = lines.iter().map(|l| l.total).sum();

        // A layaway's fate decides its sale's status: still open when due after today.
        let layaway_due = t + 30 * DAY_MS;
        let layaway_fate = if kind == SaleKind::Layaway {
            if layaway_due >= self.span.end {
                "open"
            } else if self.pct(80) {
                "completed"
            } else {
                "cancelled"
            }
        } else {
            ""
        };
        let status = match kind {
            SaleKind::Void => "voided",
            SaleKind::Layaway => match layaway_fate {
                "open" => "layaway",
                "completed" => "completed",
                _ => "voided",
            },
            _ if open => "open",
            _ => "completed",
        };
        let number = format!("S-{:07}", i + 1);
        let note = match kind {
            SaleKind::Refund if !self.sales.is_empty() => {
                let j = self.below(self.sales.len());
                Some(format!("Refund of S-{:07}", j + 1))
            }
            SaleKind::Refund => Some("Refund without receipt".to_owned()),
            SaleKind::Void => {
                Some("Voided at the till – Kunde hat es sich anders überlegt".to_owned())
            }
            _ if self.pct(2) => Some("Customer will pick up tomorrow".to_owned()),
            _ => None,
        };
        let customer_id = customer.map(|c| self.customers[c].id);
        let user_id = self.users[user].id;
        self.w.put(
            T::Sales,
            &[
                &Id(id),
                &number,
                &oid(device),
                &oid(customer_id),
                &Id(user_id),
                &status,
                &CURRENCY,
                &subtotal,
                &discount,
                &tax,
                &total,
                &Ts(t),
                &note,
            ],
        )?;
        for (n, l) in lines.iter().enumerate() {
            let line_id = self.id(t);
            let (product_id, description) = match l.product {
                Some(p) => (Some(self.products[p].id), self.products[p].name.as_str()),
                None => (None, "Shop supplies / Altteilentsorgung"),
            };
            self.w.put(
                T::SaleLines,
                &[
                    &Id(line_id),
                    &Id(id),
                    &(n as i64 + 1),
                    &if l.service { "service" } else { "product" },
                    &oid(product_id),
                    &description,
                    &l.qty,
                    &l.unit,
                    &l.discount,
                    &l.tax,
                    &l.total,
                ],
            )?;
        }
        let moved = status == "completed" || status == "layaway" || layaway_fate == "cancelled";
        if moved {
            let movement = match kind {
                SaleKind::Refund => "refund",
                SaleKind::Layaway => "layaway",
                _ => "sale",
            };
            for l in &lines {
                let Some(p) = l.product else { continue };
                if self.products[p].kind != ProductKind::Stocked {
                    continue;
                }
                let tx = self.id(t);
                let cost = self.pct(30).then_some(self.products[p].cost);
                self.w.put(
                    T::InventoryTransactions,
                    &[
                        &Id(tx),
                        &Id(self.products[p].id),
                        &"main",
                        &movement,
                        &-l.qty,
                        &cost,
                        &None::<&str>,
                        &Some(Id(id)),
                        &Some(Id(user_id)),
                        &Ts(t),
                    ],
                )?;
            }
        }
        if status == "completed" && kind != SaleKind::Layaway {
            self.payments(id, t, customer, total, user)?;
            self.commission(id, t, user, total - tax, &lines)?;
            if let Some(acct) = customer.and_then(|c| self.customers[c].loyalty) {
                let points = total / 100;
                if points != 0 {
                    let tx = self.id(t + 1);
                    let entry = if points > 0 { "accrue" } else { "reverse" };
                    self.w.put(
                        T::LoyaltyTransactions,
                        &[
                            &Id(tx),
                            &Id(self.loyalty[acct].id),
                            &entry,
                            &points,
                            &Some(Id(id)),
                            &Ts(t + 1),
                        ],
                    )?;
                    self.loyalty[acct].points += points;
                }
            }
        }
        if let Some(k) = promotion {
            if status == "completed" || status == "layaway" {
                let use_id = self.id(t);
                self.w.put(
                    T::PromotionUsage,
                    &[
                        &Id(use_id),
                        &Id(self.promos[k].id),
                        &Id(id),
                        &oid(customer_id),
                        &lines[0].discount,
                        &Ts(t),
                    ],
                )?;
            }
        }
        if let (SaleKind::Layaway, Some(c)) = (kind, customer) {
            self.layaway(id, t, c, total, layaway_fate, &lines)?;
        }
        if let (SaleKind::WorkOrder, Some(c)) = (kind, customer) {
            self.work_order(Some((id, t)), c, &lines, "completed")?;
        }
        self.lines = lines;
        self.sales.push(SaleRec { id, t, user });
        Ok(())
    }

    fn payments(
        &mut self,
        sale: Uuid,
        t: i64,
        customer: Option<usize>,
        total: i64,
        user: usize,
    ) -> Result<()> {
        let paid_at = t + self.between(5_000, 120_000);
        if total < 0 {
            // Refunds go back the way most money comes in.
            let method = if self.pct(50) { "cash" } else { "card" };
            let id = self.id(paid_at);
            return self.w.put(
                T::SalePayments,
                &[
                    &Id(id),
                    &Id(sale),
                    &method,
                    &total,
                    &CURRENCY,
                    &None::<i64>,
                    &0_i64,
                    &None::<&str>,
                    &None::<Id>,
                    &Ts(paid_at),
                ],
            );
        }
        let mut remaining = total;
        let split = total >= 2_000 && self.pct(12);
        for round in 0..4 {
            let last = round == 3 || (round == 1 && split) || (round == 0 && !split);
            let want = if last || round > 0 {
                remaining
            } else {
                remaining * self.between(30, 71) / 100
            };
            let on_account = customer
                .and_then(|c| self.customers[c].credit)
                .is_some_and(|a| self.credit[a].active);
            let roll = self.below(100);
            let mut method = if round == 3 {
                "card"
            } else if round == 0 && on_account && roll < 60 {
                // Trade customers mostly charge to their account.
                "store_credit"
            } else if roll < 35 {
                "cash"
            } else if roll < 87 {
                "card"
            } else if roll < 92 {
                "gift_card"
            } else if roll < 96 {
                "store_credit"
            } else {
                "loyalty"
            };
            let mut amount = want;
            let mut gift = None;
            match method {
                "gift_card" => {
                    let issued = self.gift_issued.partition_point(|&g| g < t);
                    let mut card = None;
                    for _ in 0..3 {
                        let g = self.below(issued);
                        if issued > 0 && self.gifts[g].balance > 0 {
                            card = Some(g);
                            break;
                        }
                    }
                    match card {
                        Some(g) => {
                            amount = want.min(self.gifts[g].balance);
                            self.gifts[g].balance -= amount;
                            gift = Some(g);
                        }
                        None => method = "card",
                    }
                }
                "store_credit" => {
                    let acct = customer.and_then(|c| self.customers[c].credit);
                    match acct.filter(|&a| self.credit[a].active) {
                        Some(a) if self.credit[a].limit > self.credit[a].owed => {
                            amount = want.min(self.credit[a].limit - self.credit[a].owed);
                            self.credit[a].owed += amount;
                            let tx = self.id(paid_at);
                            self.w.put(
                                T::CreditTransactions,
                                &[
                                    &Id(tx),
                                    &Id(self.credit[a].id),
                                    &"charge",
                                    &amount,
                                    &Some(Id(sale)),
                                    &Some(Id(self.users[user].id)),
                                    &Ts(paid_at),
                                ],
                            )?;
                        }
                        _ => method = "card",
                    }
                }
                "loyalty" => {
                    let acct = customer.and_then(|c| self.customers[c].loyalty);
                    match acct {
                        Some(a) if self.loyalty[a].points >= 500 => {
                            // One point buys one minor unit.
                            amount = want.min(self.loyalty[a].points);
                            self.loyalty[a].points -= amount;
                            let tx = self.id(paid_at);
                            self.w.put(
                                T::LoyaltyTransactions,
                                &[
                                    &Id(tx),
                                    &Id(self.loyalty[a].id),
                                    &"redeem",
                                    &-amount,
                                    &Some(Id(sale)),
                                    &Ts(paid_at),
                                ],
                            )?;
                        }
                        _ => method = "card",
                    }
                }
                _ => {}
            }
            let (tendered, change) = if method == "cash" {
                let tendered = if self.pct(30) {
                    amount
                } else {
                    let note = self.pick(&[500_i64, 1_000, 2_000, 5_000]);
                    (amount + note - 1) / note * note
                };
                (Some(tendered), tendered - amount)
            } else {
                (None, 0)
            };
            let reference =
                (method == "card").then(|| format!("AUTH-{}", self.hex(6).to_uppercase()));
            let id = self.id(paid_at);
            let gift_id = gift.map(|g| self.gifts[g].id);
            self.w.put(
                T::SalePayments,
                &[
                    &Id(id),
                    &Id(sale),
                    &method,
                    &amount,
                    &CURRENCY,
                    &tendered,
                    &change,
                    &reference,
                    &oid(gift_id),
                    &Ts(paid_at),
                ],
            )?;
            if let Some(g) = gift_id {
                let tx = self.id(paid_at);
                self.w.put(
                    T::GiftCardTransactions,
                    &[
                        &Id(tx),
                        &Id(g),
                        &"redeem",
                        &-amount,
                        &Some(Id(sale)),
                        &Some(Id(self.users[user].id)),
                        &Ts(paid_at),
                    ],
                )?;
            }
            remaining -= amount;
            if remaining <= 0 {
                break;
            }
        }
        Ok(())
    }

    fn commission(
        &mut self,
        sale: Uuid,
        t: i64,
        user: usize,
        base: i64,
        lines: &[Line],
    ) -> Result<()> {
        if !self.users[user].commission || base == 0 {
            return Ok(());
        }
        let brakes = lines.iter().any(|l| {
            l.product.is_some_and(|p| {
                let c = self.products[p].category;
                c == BRAKES || CATEGORIES[c].parent == Some(BRAKES)
            })
        });
        let rule = if self.pct(5) {
            None
        } else if user == 1 {
            Some(2)
        } else if brakes {
            Some(1)
        } else {
            Some(0)
        };
        let rate = rule.map_or(20_000, |r| self.rules[r].rate_ppm);
        let amount = div_round(base * rate, 1_000_000);
        if amount == 0 {
            return Ok(());
        }
        let id = self.id(t + 2);
        self.w.put(
            T::Commissions,
            &[
                &Id(id),
                &Id(self.users[user].id),
                &Id(sale),
                &oid(rule.map(|r| self.rules[r].id)),
                &amount,
                &CURRENCY,
                &Ts(t + 2),
            ],
        )
    }
}
