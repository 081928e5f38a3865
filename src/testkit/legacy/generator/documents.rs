//! Layaways and work orders: the documents a sale may complete, and the work orders still
//! open at the end.

use uuid::Uuid;

use super::{Gen, Line, ProductKind};
use crate::testkit::legacy::data::WORK_DESCRIPTIONS;
use crate::testkit::legacy::schema::T;
use crate::testkit::legacy::values::{oid, ots, Id, Ts, CURRENCY};
use crate::testkit::legacy::Result;
use crate::testkit::reference::{DAY_MS, HOUR_MS};

impl Gen<'_> {
    pub(super) fn layaway(
        &mut self,
        sale: Uuid,
        t: i64,
        customer: usize,
        total: i64,
        fate: &str,
        lines: &[Line],
    ) -> Result<()> {
        self.next_layaway += 1;
        let id = self.id(t);
        let number = format!("LA-{:05}", self.next_layaway);
        let due = t + 30 * DAY_MS;
        let deposit = (total / 5).max(total.min(1_000));
        let mut payments = vec![(t, deposit)];
        let mut paid = deposit;
        let closed = match fate {
            "completed" => {
                let extra = self.between(1, 4);
                let mut at: Vec<i64> = (0..extra).map(|_| self.between(t + HOUR_MS, due)).collect();
                at.sort_unstable();
                for (k, &when) in at.iter().enumerate() {
                    let amount = if k + 1 == at.len() {
                        total - paid
                    } else {
                        (total - paid) / 2
                    };
                    payments.push((when, amount));
                    paid += amount;
                }
                at.last().copied()
            }
            "cancelled" => {
                let when = self.between(t + HOUR_MS, due);
                if self.pct(50) && total > paid {
                    let amount = (total - paid) / 3;
                    payments.push((self.between(t + 1, when), amount));
                    paid += amount;
                }
                payments.push((when, -paid));
                Some(when)
            }
            _ => {
                if total > paid && self.pct(60) {
                    let when = self.between(t + HOUR_MS, self.span.end - 1);
                    let amount = (total - paid) / 3;
                    payments.push((when, amount));
                }
                None
            }
        };
        self.w.put(
            T::Layaways,
            &[
                &Id(id),
                &number,
                &Id(self.customers[customer].id),
                &Id(sale),
                &fate,
                &total,
                &deposit,
                &CURRENCY,
                &Ts(t),
                // Some layaways were taken without a due date.
                &(!self.next_layaway.is_multiple_of(7)).then_some(Ts(due)),
                &ots(closed),
            ],
        )?;
        for (when, amount) in payments {
            let pid = self.id(when);
            let method = if self.pct(50) { "cash" } else { "card" };
            let user = self.pct(90).then(|| Id(self.any_user()));
            self.w.put(
                T::LayawayPayments,
                &[&Id(pid), &Id(id), &method, &amount, &user, &Ts(when)],
            )?;
        }
        if let (Some(when), "cancelled") = (closed, fate) {
            // Goods back on the shelf.
            for l in lines {
                let Some(p) = l.product else { continue };
                if self.products[p].kind != ProductKind::Stocked {
                    continue;
                }
                let tx = self.id(when);
                self.w.put(
                    T::InventoryTransactions,
                    &[
                        &Id(tx),
                        &Id(self.products[p].id),
                        &"main",
                        &"layaway",
                        &l.qty,
                        &None::<i64>,
                        &Some("layaway cancelled"),
                        &Some(Id(sale)),
                        &None::<Id>,
                        &Ts(when),
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// A work order of `customer` with `lines`; `sale` is the sale it completed into.
    pub(super) fn work_order(
        &mut self,
        sale: Option<(Uuid, i64)>,
        customer: usize,
        lines: &[Line],
        status: &str,
    ) -> Result<()> {
        let c = &self.customers[customer];
        let (cid, created, first_vehicle, vehicles) =
            (c.id, c.created, c.first_vehicle, c.vehicles);
        let end = sale.map_or(self.span.end - HOUR_MS, |(_, t)| t);
        let opened = (end - self.between(HOUR_MS, 3 * DAY_MS))
            .max(created + 10_000)
            .min(end - 1);
        let vehicle = (vehicles > 0 && !self.pct(5)).then(|| first_vehicle + self.below(vehicles));
        let odometer = vehicle
            .and_then(|v| self.vehicles[v].mileage)
            .map(|m| m + 1_000 * self.between(0, 20));
        self.next_work_order += 1;
        let id = self.id(opened);
        let number = format!("WO-{:06}", self.next_work_order);
        let technician = (!self.pct(10)).then(|| self.any_user());
        let description = self.pick(WORK_DESCRIPTIONS);
        self.w.put(
            T::WorkOrders,
            &[
                &Id(id),
                &number,
                &Id(cid),
                &oid(vehicle.map(|v| self.vehicles[v].id)),
                &oid(technician),
                &status,
                &description,
                &odometer,
                &oid(sale.map(|(s, _)| s)),
                &Ts(opened),
                &ots(sale.map(|(_, t)| t)),
            ],
        )?;
        for l in lines {
            let at = self.between(opened, end.max(opened + 1));
            let lid = self.id(at);
            let (product_id, description) = match l.product {
                Some(p) => (Some(self.products[p].id), self.products[p].name.as_str()),
                None => (None, "Shop supplies / Altteilentsorgung"),
            };
            self.w.put(
                T::WorkOrderLines,
                &[
                    &Id(lid),
                    &Id(id),
                    &if l.service { "labour" } else { "part" },
                    &oid(product_id),
                    &description,
                    &l.qty,
                    &l.unit,
                    &Ts(at),
                ],
            )?;
        }
        Ok(())
    }

    pub(super) fn open_work_orders(&mut self) -> Result<()> {
        let n = (self.plan.work_orders / 10).max(2);
        let end = self.span.end - HOUR_MS;
        let owners = self
            .with_vehicle
            .partition_point(|&c| self.customer_created[c] < end);
        if owners == 0 {
            return Ok(());
        }
        let mut lines = Vec::new();
        for k in 0..n {
            let owner = self.below(owners);
            let customer = self.with_vehicle[owner];
            let status = ["open", "in_progress", "cancelled"][k % 3];
            lines.clear();
            for _ in 0..self.between(0, 3) {
                let p = self.pick_part();
                lines.push(self.line(p, 0, false));
            }
            self.work_order(None, customer, &lines, status)?;
        }
        Ok(())
    }
}
