//! Stock: receive, adjust with a reason, count. Stock on hand is the sum of the product's
//! inventory ledger at a location, kept in `stock_levels` (the catalog's balance of
//! [`InventoryTransaction`]).

use super::FlowError;
use crate::catalog::{InventoryTransaction, Product};
use crate::ids::{RowId, Timestamp};
use crate::tenant::settings::Role;
use crate::tenant::{Actor, Scope};
use crate::Result;

#[allow(clippy::too_many_arguments)]
fn entry(
    s: &Scope<'_>,
    actor: &Actor,
    product: RowId,
    location: &str,
    kind: &str,
    quantity_milli: i64,
    unit_cost_minor: Option<i64>,
    reason: Option<String>,
) -> Result<i64> {
    if location.trim().is_empty() {
        return Err(FlowError::Empty { what: "a location" }.into());
    }
    let p: Product = s.row(product)?;
    if p.kind != "stocked" {
        return Err(FlowError::State {
            what: "product",
            id: product,
            status: p.kind,
            action: "hold stock",
        }
        .into());
    }
    s.append(
        actor,
        &InventoryTransaction {
            id: RowId::new(),
            product_id: product,
            location: location.to_owned(),
            kind: kind.to_owned(),
            quantity_milli,
            unit_cost_minor,
            reason,
            sale_id: None,
            user_id: Some(actor.user_id()),
            created_at: Timestamp::now(),
        },
    )?;
    stock_on_hand(s, product, location)
}

fn stock_on_hand(s: &Scope<'_>, product: RowId, location: &str) -> Result<i64> {
    s.balance::<InventoryTransaction>(&[&product, &location])
}

pub(crate) fn receive(
    s: &Scope<'_>,
    actor: &Actor,
    product: RowId,
    location: &str,
    quantity_milli: i64,
    unit_cost_minor: Option<i64>,
) -> Result<i64> {
    s.require_role(actor, Role::Manager, "receive", "inventory_transactions")?;
    if quantity_milli <= 0 {
        return Err(FlowError::Quantity {
            line: 1,
            quantity_milli,
        }
        .into());
    }
    if let Some(cost) = unit_cost_minor.filter(|c| *c < 0) {
        return Err(FlowError::Amount {
            what: "a unit cost",
            rule: "zero or above",
            amount_minor: cost,
        }
        .into());
    }
    entry(
        s,
        actor,
        product,
        location,
        "receive",
        quantity_milli,
        unit_cost_minor,
        None,
    )
}

pub(crate) fn adjust(
    s: &Scope<'_>,
    actor: &Actor,
    product: RowId,
    location: &str,
    delta_milli: i64,
    reason: &str,
) -> Result<i64> {
    s.require_role(actor, Role::Manager, "adjust", "inventory_transactions")?;
    if reason.trim().is_empty() {
        return Err(FlowError::Empty {
            what: "the reason for a stock adjustment",
        }
        .into());
    }
    if delta_milli == 0 {
        return Err(FlowError::Quantity {
            line: 1,
            quantity_milli: 0,
        }
        .into());
    }
    // Writing off more than the ledger holds is refused like a sale of it, unless the tenant
    // allows negative stock.
    if delta_milli < 0 && !s.tenant_settings()?.rules.allow_negative_stock {
        let on_hand_milli = stock_on_hand(s, product, location)?;
        if on_hand_milli.saturating_add(delta_milli) < 0 {
            return Err(FlowError::InsufficientStock {
                product,
                location: location.to_owned(),
                on_hand_milli,
                wanted_milli: delta_milli.saturating_neg(),
            }
            .into());
        }
    }
    entry(
        s,
        actor,
        product,
        location,
        "adjust",
        delta_milli,
        None,
        Some(reason.to_owned()),
    )
}

pub(crate) fn count(
    s: &Scope<'_>,
    actor: &Actor,
    product: RowId,
    location: &str,
    counted_milli: i64,
) -> Result<i64> {
    s.require_role(actor, Role::Manager, "count", "inventory_transactions")?;
    if counted_milli < 0 {
        return Err(FlowError::Quantity {
            line: 1,
            quantity_milli: counted_milli,
        }
        .into());
    }
    let on_hand = stock_on_hand(s, product, location)?;
    let delta = counted_milli
        .checked_sub(on_hand)
        .ok_or(FlowError::Overflow)?;
    // The difference is the ledger row; the reason keeps what was counted and what the ledger
    // said, for whoever reviews the count.
    let reason = format!("counted {counted_milli}, ledger said {on_hand} (thousandths)");
    entry(
        s,
        actor,
        product,
        location,
        "count",
        delta,
        None,
        Some(reason),
    )
}
