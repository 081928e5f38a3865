//! The tenant registry: the `tenants` table's rows (id, name, status, plan and its limits,
//! tier, settings), and the door to a tenant's data ([`Store::tenant`]).
//!
//! Invariants: a tenant's settings and name are validated before anything is written; every
//! change of a registry row after its creation is audited in the same transaction; a status
//! changes only as [`TenantStatus::TRANSITIONS`] allow (cancelled is final); a cancelled
//! tenant gets no handle at all and a handle opened before reads nothing more, a suspended
//! one a handle that reads but does not write.

use rusqlite::{params, Connection, OptionalExtension};

use super::Store;
use crate::error::Error;
use crate::ids::{Json, TenantId, Timestamp};
use crate::tenant::settings::{
    NewTenant, Plan, PlanLimits, TenantInfo, TenantSettings, TenantStatus, Tier,
};
use crate::tenant::Tenant;
use crate::Result;

impl Store {
    /// Registers a tenant. Its settings are validated first; nothing is written on error.
    pub fn add_tenant(&self, new: &NewTenant) -> Result<TenantInfo> {
        check_new_tenant(new)?;
        let tx = self.begin_write()?;
        if !insert_tenant(&tx, new, Timestamp::now())? {
            return Err(Error::TenantExists(new.id.clone()));
        }
        tx.commit()?;
        self.tenant_info(&new.id)
    }

    /// Every registered tenant, by id. A tenant in a file of its own is listed as that file's
    /// registry row holds it (its status and settings change there); as the shared
    /// registry holds it when its file cannot be read, so the list still shows every tenant.
    pub fn tenants(&self) -> Result<Vec<TenantInfo>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{TENANT_SELECT} ORDER BY id"))?;
        let rows = stmt.query_map([], tenant_from_row)?;
        let mut all: Vec<TenantInfo> = rows.collect::<rusqlite::Result<_>>()?;
        for info in &mut all {
            if info.tier == Tier::Dedicated && !self.is_tenant_file() {
                if let Ok(home) = self.home(&info.id) {
                    if let Ok(there) = home.tenant_info_here(&info.id) {
                        *info = there;
                    }
                }
            }
        }
        Ok(all)
    }

    /// One tenant's registry entry, from the file it lives in.
    pub fn tenant_info(&self, id: &TenantId) -> Result<TenantInfo> {
        self.home(id)?.tenant_info_here(id)
    }

    /// One tenant's registry row in this file.
    pub(crate) fn tenant_info_here(&self, id: &TenantId) -> Result<TenantInfo> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{TENANT_SELECT} WHERE id = ?1"))?;
        stmt.query_row([id], tenant_from_row)
            .optional()?
            .ok_or_else(|| Error::TenantNotFound(id.clone()))
    }

    /// Changes a tenant's status (suspend, activate, cancel), with an audit row. Only the
    /// changes of [`TenantStatus::TRANSITIONS`] are made: active and suspended into each other,
    /// either into cancelled; a cancelled tenant stays cancelled
    /// ([`Error::TenantStatusChange`], and nothing is changed). Setting the status a tenant has
    /// changes nothing but is audited.
    pub fn set_tenant_status(&self, id: &TenantId, status: TenantStatus) -> Result<TenantInfo> {
        let detail = serde_json::json!({ "status": status.as_str() });
        self.update_registry(id, "status", detail, |tx, now| {
            let from: Option<TenantStatus> = tx
                .prepare_cached("SELECT status FROM tenants WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            match from {
                None => Ok(0),
                Some(from) if !from.can_become(status) => Err(Error::TenantStatusChange {
                    tenant: id.clone(),
                    from,
                    to: status,
                }),
                Some(_) => tx
                    .execute(
                        "UPDATE tenants SET status = ?2, updated_at = ?3 WHERE id = ?1",
                        params![id, status, now],
                    )
                    .map_err(|e| Error::on_table("tenants", e)),
            }
        })
    }

    /// Replaces a tenant's white-label and business settings, with an audit row (no actor: the
    /// node's operator, as `pos-node tenant settings` runs it). Validated first exactly as
    /// `pos-central` validates them ([`TenantSettings::validate`]: an unknown feature switch
    /// is refused by name); nothing is written when they are invalid or the tenant is unknown.
    /// For a standalone node: on a synced one, the settings `pos-central` serves replace these
    /// at the next sync round.
    pub fn set_tenant_settings(
        &self,
        id: &TenantId,
        settings: &TenantSettings,
    ) -> Result<TenantInfo> {
        settings.validate()?;
        let json = Json(
            serde_json::to_value(settings).map_err(|e| Error::InvalidPayload {
                table: "tenants",
                reason: e.to_string(),
            })?,
        );
        let detail = serde_json::json!({ "brand_name": settings.brand_name });
        self.update_registry(id, "settings", detail, |tx, now| {
            tx.execute(
                "UPDATE tenants SET settings = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, json, now],
            )
            .map_err(|e| Error::on_table("tenants", e))
        })
    }

    /// Moves a tenant to another plan and resets its limits to that plan's.
    pub fn set_tenant_plan(&self, id: &TenantId, plan: Plan) -> Result<TenantInfo> {
        let limits = plan.limits();
        let detail = serde_json::json!({ "plan": plan.as_str() });
        self.update_registry(id, "plan", detail, |tx, now| {
            tx.execute(
                "UPDATE tenants SET plan = ?2, max_users = ?3, max_api_calls_month = ?4,
                                    updated_at = ?5 WHERE id = ?1",
                params![
                    id,
                    plan,
                    limits.max_users,
                    clamp_i64(limits.max_api_calls_month),
                    now
                ],
            )
            .map_err(|e| Error::on_table("tenants", e))
        })
    }

    /// Applies one change to a registry row and audits it, atomically. `change` returns the
    /// rows it changed (0: no such tenant), or an error that leaves everything as it was.
    pub(crate) fn update_registry(
        &self,
        id: &TenantId,
        action: &str,
        detail: serde_json::Value,
        change: impl FnOnce(&Connection, &Timestamp) -> Result<usize>,
    ) -> Result<TenantInfo> {
        // The row of the file the tenant lives in: its status and settings change there.
        let home = self.home(id)?;
        let tx = home.begin_write()?;
        let now = Timestamp::now();
        let tier: Option<Tier> = tx
            .query_row("SELECT tier FROM tenants WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        if let Some(tier) = tier {
            home.check_here(id, tier)?;
        }
        if change(&tx, &now)? == 0 {
            return Err(Error::TenantNotFound(id.clone()));
        }
        crate::tenant::Scope::new(home, id).audit(
            None,
            action,
            "tenants",
            id.as_str(),
            Some(detail),
        )?;
        tx.commit()?;
        self.tenant_info(id)
    }

    /// A handle on one tenant's data. Refused for unknown and cancelled tenants; a suspended
    /// tenant's handle reads but does not write.
    pub fn tenant(&self, id: &TenantId) -> Result<Tenant<'_>> {
        // The route and the status in one read: the handle runs on the tenant's home.
        match self.home_with_status(id)? {
            (_, TenantStatus::Cancelled) => Err(Error::TenantInactive {
                tenant: id.clone(),
                status: TenantStatus::Cancelled,
                operation: "read",
            }),
            (home, _) => Ok(Tenant::new(home, id.clone())),
        }
    }
}

/// Plan limits are u64 in Rust but SQLite integers are signed.
fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const TENANT_SELECT: &str = "SELECT id, name, status, plan, max_users, max_api_calls_month, tier, \
                             settings, created_at, updated_at FROM tenants";

fn tenant_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TenantInfo> {
    Ok(TenantInfo {
        id: r.get(0)?,
        name: r.get(1)?,
        status: r.get(2)?,
        plan: r.get(3)?,
        limits: PlanLimits::from_sql(r.get(4)?, r.get(5)?),
        tier: r.get(6)?,
        settings: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

/// Refuses a new tenant whose settings fail validation or whose name is empty.
pub(crate) fn check_new_tenant(new: &NewTenant) -> Result<()> {
    new.settings.validate()?;
    if new.name.trim().is_empty() {
        return Err(Error::InvalidPayload {
            table: "tenants",
            reason: "the tenant name is empty".into(),
        });
    }
    Ok(())
}

/// Writes a new tenant's registry row with its plan's limits; `false` when the id is taken.
/// The caller validated the name and settings and owns the transaction.
pub(crate) fn insert_tenant(conn: &Connection, new: &NewTenant, now: Timestamp) -> Result<bool> {
    let limits = new.plan.limits();
    let settings =
        Json(
            serde_json::to_value(&new.settings).map_err(|e| Error::InvalidPayload {
                table: "tenants",
                reason: e.to_string(),
            })?,
        );
    let inserted = conn.execute(
        "INSERT INTO tenants (id, name, status, plan, max_users, max_api_calls_month, tier,
                              settings, created_at, updated_at)
         VALUES (?1, ?2, 'active', ?3, ?4, ?5, ?6, ?7, ?8, ?8)
         ON CONFLICT (id) DO NOTHING",
        params![
            new.id,
            new.name,
            new.plan,
            limits.max_users,
            clamp_i64(limits.max_api_calls_month),
            new.tier,
            settings,
            now
        ],
    )?;
    Ok(inserted == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::open_in_memory().expect("in-memory store opens")
    }

    #[test]
    fn duplicate_tenants_and_bad_settings_change_nothing() -> Result<()> {
        let s = store();
        let id: TenantId = "caps".parse()?;
        s.add_tenant(&NewTenant::new(id.clone(), "Caps"))?;
        assert!(matches!(
            s.add_tenant(&NewTenant::new(id, "Again")),
            Err(Error::TenantExists(_))
        ));
        let mut bad = NewTenant::new("other".parse()?, "Other");
        bad.settings.currency = "DOLLARS".into();
        assert!(matches!(s.add_tenant(&bad), Err(Error::Settings(_))));
        assert_eq!(s.tenants()?.len(), 1);
        Ok(())
    }

    #[test]
    fn cancelled_tenants_get_no_handle() -> Result<()> {
        let s = store();
        let id: TenantId = "caps".parse()?;
        s.add_tenant(&NewTenant::new(id.clone(), "Caps"))?;
        s.set_tenant_status(&id, TenantStatus::Cancelled)?;
        assert!(matches!(s.tenant(&id), Err(Error::TenantInactive { .. })));
        assert!(matches!(
            s.tenant(&"nobody".parse()?),
            Err(Error::TenantNotFound(_))
        ));
        Ok(())
    }
}
