//! Written after the trading: restores and sync conflicts, then the audit trail, which takes
//! whatever rows remain of the target.

use serde_json::json;
use uuid::Uuid;

use super::Gen;
use crate::testkit::legacy::schema::T;
use crate::testkit::legacy::values::{oid, ots, Id, Ts};
use crate::testkit::legacy::Result;
use crate::testkit::reference::{DAY_MS, HOUR_MS};

impl Gen<'_> {
    pub(super) fn restores_and_conflicts(&mut self) -> Result<()> {
        let ok: Vec<usize> = (0..self.backups.len())
            .filter(|&b| self.backups[b].ok)
            .collect();
        for k in 0..self.plan.restores {
            if ok.is_empty() {
                break;
            }
            let b = self.pick(&ok);
            let backup = &self.backups[b];
            let (bid, created) = (backup.id, backup.created);
            let t = self.later(created);
            let id = self.id(t);
            let status = if k + 1 == self.plan.restores && k > 0 {
                "running"
            } else {
                ["ok", "ok", "ok", "failed", "pending"][self.below(5)]
            };
            let finished =
                (status == "ok" || status == "failed").then(|| t + self.between(10_000, 600_000));
            let error =
                (status == "failed").then_some("checksum mismatch: file changed since backup");
            let by = (k == 0 || self.pct(80)).then(|| Id(self.users[0].id));
            self.w.put(
                T::RestoreJobs,
                &[
                    &Id(id),
                    &Id(bid),
                    &status,
                    &by,
                    &Ts(t),
                    &ots(finished),
                    &error,
                ],
            )?;
        }
        for k in 0..self.plan.conflicts {
            let t = self.between(self.span.start + DAY_MS / 2, self.span.end - HOUR_MS);
            let id = self.id(t);
            let p = self.below(self.products.len());
            let product = &self.products[p];
            let (table, row, column, kind, local, remote) = match k % 4 {
                0 => (
                    "products",
                    product.id,
                    Some("price_minor"),
                    "column",
                    Some(json!(product.price).to_string()),
                    Some(json!(product.price + 100).to_string()),
                ),
                1 => (
                    "products",
                    product.id,
                    Some("name"),
                    "column",
                    Some(json!(product.name).to_string()),
                    Some(json!(format!("{} (neu)", product.name)).to_string()),
                ),
                2 => (
                    "products",
                    product.id,
                    None,
                    "stock_below_zero",
                    Some(json!({"on_hand_milli": -1_000}).to_string()),
                    None,
                ),
                _ => (
                    "products",
                    product.id,
                    None,
                    "deleted_locally",
                    None,
                    Some(json!({"sku_was": "discontinued"}).to_string()),
                ),
            };
            let resolved =
                (k % 4 != 2 && self.pct(70)).then(|| t + self.between(HOUR_MS, 3 * DAY_MS));
            let by = resolved.and_then(|_| (!self.pct(10)).then(|| Id(self.users[0].id)));
            let resolution = resolved.map(|_| {
                if k % 2 == 0 {
                    "kept_local"
                } else {
                    "kept_remote"
                }
            });
            self.w.put(
                T::SyncConflicts,
                &[
                    &Id(id),
                    &table,
                    &Id(row),
                    &column,
                    &kind,
                    &local,
                    &remote,
                    &Ts(t),
                    &ots(resolved),
                    &by,
                    &resolution,
                ],
            )?;
        }
        Ok(())
    }

    /// The audit trail, written last: it takes whatever rows remain of the target, one
    /// entry per write the old app logged, spread over the sales in time order.
    pub(super) fn audit_trail(&mut self) -> Result<()> {
        let n = self.plan.rows.saturating_sub(self.w.total()).max(2);
        let admin = self.users[0].id;
        let t0 = self.span.start + 4 * HOUR_MS;
        let id = self.id(t0);
        self.w.put(
            T::AuditLog,
            &[
                &Id(id),
                &Ts(t0),
                &Some(Id(admin)),
                &"bootstrap",
                &"users",
                &Id(admin),
                &Some(json!({"username": "owner", "role": "admin"}).to_string()),
            ],
        )?;
        let sales = self.sales.len() as u64;
        for k in 1..n {
            let j = (u128::from(k) * u128::from(sales) / u128::from(n)) as usize;
            let Some(sale) = self.sales.get(j) else { break };
            let (sale_id, sale_t, sale_user) = (sale.id, sale.t, sale.user);
            let t = sale_t + self.between(1, 500);
            let entry = self.id(t);
            let roll = self.below(100);
            let actor = if roll == 0 {
                None
            } else {
                Some(self.users[sale_user].id)
            };
            let (action, table, row, detail): (&str, &str, Uuid, Option<String>) = if roll < 88 {
                (
                    "insert",
                    "sales",
                    sale_id,
                    Some(json!({"number": format!("S-{:07}", j + 1)}).to_string()),
                )
            } else if roll < 94 {
                let p = self.below(self.products.len());
                let price = self.products[p].price;
                (
                    "update",
                    "products",
                    self.products[p].id,
                    Some(json!({"price_minor": [price, price + 50]}).to_string()),
                )
            } else if roll < 97 {
                let c = self.below(self.customers_before(t).max(1));
                ("insert", "customers", self.customers[c].id, None)
            } else if roll < 98 && !self.sessions.is_empty() {
                let k = self.below(self.sessions.len());
                ("delete", "sessions", self.sessions[k], None)
            } else if roll < 99 {
                (
                    "settings",
                    "backup_settings",
                    self.settings_id,
                    Some(json!({"retention_days": 30, "note": "Aufbewahrung geprüft"}).to_string()),
                )
            } else {
                let u = self.below(self.users.len());
                (
                    "status",
                    "users",
                    self.users[u].id,
                    Some(json!({"active": true}).to_string()),
                )
            };
            let actor = if action == "settings" || action == "status" {
                Some(admin)
            } else {
                actor
            };
            self.w.put(
                T::AuditLog,
                &[
                    &Id(entry),
                    &Ts(t),
                    &oid(actor),
                    &action,
                    &table,
                    &Id(row),
                    &detail,
                ],
            )?;
        }
        Ok(())
    }
}
