//! Each trading day's bookkeeping besides its sales: backups, sessions, stock movements, gift
//! card and store credit upkeep, and sync runs.

use super::{BackupRec, Gen};
use crate::testkit::legacy::data::ADJUST_REASONS;
use crate::testkit::legacy::schema::T;
use crate::testkit::legacy::values::{oid, ots, share, ts_text, Id, Ts};
use crate::testkit::legacy::Result;
use crate::testkit::reference::{DAY_MS, HOUR_MS, MINUTE_MS};

impl Gen<'_> {
    pub(super) fn backups_of(&mut self, d: u32, day: i64) -> Result<()> {
        for _ in 0..share(self.plan.backups, d, self.days) {
            let t = day + 2 * HOUR_MS + self.between(0, 10 * MINUTE_MS);
            let id = self.id(t);
            let last =
                self.backups.len() as u64 + 1 == self.plan.backups && self.plan.backups >= 10;
            let ok = self.backups.is_empty() || (!last && self.pct(92));
            let status = if last {
                "running"
            } else if ok {
                "ok"
            } else {
                "failed"
            };
            let kind = if self.pct(93) {
                "full"
            } else {
                "tenant_export"
            };
            let roll = self.below(100);
            let destination = if roll < 60 {
                Some(self.destinations[0])
            } else if roll < 95 {
                Some(self.destinations[1])
            } else {
                None
            };
            let path = format!("/var/backups/pos/pos-{}.db", &ts_text(t)[..10]);
            let sha = ok.then(|| self.hex(64));
            let size = ok.then(|| 4_096 * (1_000 + i64::from(d) * 50 + self.between(0, 100)));
            let finished = (!last).then(|| t + self.between(5_000, 300_000));
            self.w.put(
                T::Backups,
                &[
                    &Id(id),
                    &kind,
                    &oid(destination),
                    &path,
                    &sha,
                    &size,
                    &status,
                    &Ts(t),
                    &ots(finished),
                ],
            )?;
            self.backups.push(BackupRec { id, created: t, ok });
        }
        Ok(())
    }

    pub(super) fn sessions_of(&mut self, d: u32, day: i64) -> Result<()> {
        for _ in 0..share(self.plan.sessions, d, self.days) {
            let t = day + 7 * HOUR_MS + self.between(0, 10 * HOUR_MS);
            let id = self.id(t);
            let user = self.any_user();
            let device = (!self.pct(10)).then(|| {
                let k = self.below(self.devices.len());
                self.devices[k]
            });
            let ended = if (d + 1 == self.days && self.pct(50)) || self.pct(8) {
                None
            } else {
                Some(t + self.between(HOUR_MS, 9 * HOUR_MS))
            };
            self.w.put(
                T::Sessions,
                &[
                    &Id(id),
                    &Id(user),
                    &oid(device),
                    &Ts(t),
                    &Ts(t + 12 * HOUR_MS),
                    &ots(ended),
                ],
            )?;
            self.sessions.push(id);
        }
        Ok(())
    }

    fn stock_movement(
        &mut self,
        t: i64,
        p: usize,
        location: &str,
        kind: &str,
        qty: i64,
        reason: Option<&str>,
    ) -> Result<()> {
        let id = self.id(t);
        // Deliveries and counts are booked by the owner or the manager.
        let user = (!self.pct(5)).then(|| {
            let k = self.below(self.users.len().min(2));
            Id(self.users[k].id)
        });
        let cost = (kind != "transfer").then_some(self.products[p].cost);
        self.w.put(
            T::InventoryTransactions,
            &[
                &Id(id),
                &Id(self.products[p].id),
                &location,
                &kind,
                &qty,
                &cost,
                &reason,
                &None::<Id>,
                &user,
                &Ts(t),
            ],
        )
    }

    pub(super) fn stock_movements_of(&mut self, d: u32, day: i64) -> Result<()> {
        if self.stocked.is_empty() {
            return Ok(());
        }
        for _ in 0..share(self.plan.receipts, d, self.days) {
            let t = day + 7 * HOUR_MS + self.between(0, HOUR_MS);
            let k = self.below(self.stocked.len());
            let p = self.stocked[k];
            let qty = if self.products[p].fluid {
                1_000 * self.between(20, 200)
            } else {
                1_000 * self.between(5, 50)
            };
            let location = if self.products[p].warehouse && self.pct(50) {
                "warehouse"
            } else {
                "main"
            };
            let reason = self
                .pct(30)
                .then(|| format!("PO-{}", self.between(1_000, 99_999)));
            self.stock_movement(t, p, location, "receive", qty, reason.as_deref())?;
        }
        for _ in 0..share(self.plan.adjustments, d, self.days) {
            let t = day + self.between(8 * HOUR_MS, 19 * HOUR_MS);
            let k = self.below(self.stocked.len());
            let p = self.stocked[k];
            let reason = self.pick(ADJUST_REASONS);
            let qty = if reason == "found during stocktake" {
                1_000
            } else {
                -1_000 * self.between(1, 3)
            };
            let kind = if reason == "found during stocktake" {
                "count"
            } else {
                "adjust"
            };
            self.stock_movement(t, p, "main", kind, qty, Some(reason))?;
        }
        if self.stored.is_empty() {
            return Ok(());
        }
        for _ in 0..share(self.plan.transfers, d, self.days) {
            let t = day + self.between(7 * HOUR_MS, 8 * HOUR_MS);
            let k = self.below(self.stored.len());
            let p = self.stored[k];
            let qty = 1_000 * self.between(1, 10);
            let reason = Some("restock from warehouse");
            self.stock_movement(t, p, "warehouse", "transfer", -qty, reason)?;
            self.stock_movement(t + 1, p, "main", "transfer", qty, reason)?;
        }
        Ok(())
    }

    pub(super) fn gift_card_upkeep(&mut self, d: u32, day: i64) -> Result<()> {
        let issued = self.gift_issued.partition_point(|&g| g < day);
        if issued == 0 {
            return Ok(());
        }
        // About one top-up per five cards over the period, and a few write-offs.
        let top_ups = share(self.plan.gift_cards as u64 / 5, d, self.days);
        let adjusts = share(self.plan.gift_cards as u64 / 20, d, self.days);
        for k in 0..top_ups + adjusts {
            let g = self.below(issued);
            let t = day
                + self
                    .between(9 * HOUR_MS, 18 * HOUR_MS)
                    .max(self.gifts[g].issued - day + 1);
            let (kind, amount) = if k < top_ups {
                ("top_up", 2_500 * self.between(1, 5))
            } else {
                ("adjust", -self.gifts[g].balance.min(100))
            };
            let id = self.id(t);
            let user = Some(Id(self.any_user()));
            self.w.put(
                T::GiftCardTransactions,
                &[
                    &Id(id),
                    &Id(self.gifts[g].id),
                    &kind,
                    &amount,
                    &None::<Id>,
                    &user,
                    &Ts(t),
                ],
            )?;
            self.gifts[g].balance += amount;
        }
        Ok(())
    }

    pub(super) fn credit_statements(&mut self, t: i64) -> Result<()> {
        for a in 0..self.credit.len() {
            if self.credit[a].owed <= 0 || !self.pct(70) {
                continue;
            }
            let amount = self.credit[a].owed;
            // Bank transfers are booked by nobody at the till.
            let user = self.pct(50).then(|| Id(self.users[0].id));
            let id = self.id(t);
            self.w.put(
                T::CreditTransactions,
                &[
                    &Id(id),
                    &Id(self.credit[a].id),
                    &"payment",
                    &-amount,
                    &None::<Id>,
                    &user,
                    &Ts(t),
                ],
            )?;
            self.credit[a].owed = 0;
        }
        Ok(())
    }

    pub(super) fn sync_runs_of(&mut self, d: u32, day: i64) -> Result<()> {
        let n = share(self.plan.sync_runs, d, self.days);
        let mut starts: Vec<i64> = (0..n)
            .map(|_| day + self.between(0, DAY_MS - MINUTE_MS))
            .collect();
        starts.sort_unstable();
        for (k, t) in starts.into_iter().enumerate() {
            let id = self.id(t);
            let last = d + 1 == self.days && k as u64 + 1 == n;
            let push = self.pct(50);
            let failed = !last && self.pct(10);
            let status = if last {
                "running"
            } else if failed {
                "failed"
            } else {
                "ok"
            };
            let operations = if failed || last {
                0
            } else {
                self.between(0, 400)
            };
            let cursor = (!push && !failed && !last).then(|| {
                self.sync_cursor += operations;
                self.sync_cursor
            });
            let finished = (!last).then(|| t + self.between(200, 30_000));
            let error = failed.then(|| {
                self.pick(&[
                    "connection refused",
                    "timed out after 30 s",
                    "server answered 503",
                ])
            });
            self.w.put(
                T::SyncLog,
                &[
                    &Id(id),
                    &if push { "push" } else { "pull" },
                    &Ts(t),
                    &ots(finished),
                    &operations,
                    &cursor,
                    &status,
                    &error,
                ],
            )?;
        }
        Ok(())
    }
}
