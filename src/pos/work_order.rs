//! Work orders: a job on a customer's vehicle, its parts and labour, completed into a sale.
//!
//! A work order collects `work_order_lines` while the job goes on: parts at the product's price
//! for the customer's price level when added (the quote), labour at the hours and rate given.
//! Completing it rings the lines up through the checkout itself ([`super::checkout`]), so the
//! sale is priced, taxed, paid, takes its stock and earns points and commission exactly as a
//! counter sale does, and links the work order to that sale, all in one transaction. Parts are
//! priced again at completion (today's price level and promotions); labour keeps its rate and is
//! taxed by [`crate::BusinessRules::tax_labour`].

use serde::{Deserialize, Serialize};

use super::checkout::{self, Checkout, Context, LineItem, Receipt, Tender};
use super::{require, FlowError};
use crate::catalog::{Customer, CustomerVehicle, Record, User, WorkOrder, WorkOrderLine};
use crate::ids::{RowId, Timestamp};
use crate::tenant::settings::{Feature, Role};
use crate::tenant::{Actor, Scope};
use crate::Result;

/// A job to open. See [`super::Pos::open_work_order`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkOrderRequest {
    /// The customer the job is for.
    pub customer_id: RowId,
    /// Their vehicle; it must be one of this customer's.
    pub vehicle_id: Option<RowId>,
    /// The technician doing the job, who earns the commission on its sale.
    pub technician_user_id: Option<RowId>,
    /// What to do.
    pub description: String,
    /// Odometer at check-in.
    pub odometer: Option<i64>,
    /// Work order number; by default `W-` and twelve hex digits of its random id.
    pub number: Option<String>,
}

impl WorkOrderRequest {
    /// A job for a customer, with no vehicle, technician, odometer or number yet.
    pub fn new(customer_id: RowId, description: &str) -> Self {
        Self {
            customer_id,
            vehicle_id: None,
            technician_user_id: None,
            description: description.to_owned(),
            odometer: None,
            number: None,
        }
    }
}

/// The work order, refused unless it can still change (open or in progress).
fn changeable(s: &Scope<'_>, work_order: RowId, action: &'static str) -> Result<WorkOrder> {
    let wo: WorkOrder = s.row(work_order)?;
    if WorkOrder::TABLE.is_closed(&wo.status) {
        return Err(FlowError::State {
            what: "work order",
            id: wo.id,
            status: wo.status,
            action,
        }
        .into());
    }
    Ok(wo)
}

pub(crate) fn open(s: &Scope<'_>, actor: &Actor, req: &WorkOrderRequest) -> Result<WorkOrder> {
    s.require_role(actor, Role::Cashier, "open a work order", "work_orders")?;
    // Only opening is switched: work already under way can be finished and billed.
    require(
        &s.tenant_settings()?,
        Feature::WorkOrders,
        "opening a work order",
    )?;
    if req.description.trim().is_empty() {
        return Err(FlowError::Empty {
            what: "a work order's description",
        }
        .into());
    }
    if let Some(odometer) = req.odometer.filter(|o| *o < 0) {
        return Err(FlowError::Amount {
            what: "the odometer",
            rule: "zero or above",
            amount_minor: odometer,
        }
        .into());
    }
    let customer: Customer = s.row(req.customer_id)?;
    if let Some(vehicle) = req.vehicle_id {
        let v: CustomerVehicle = s.row(vehicle)?;
        if v.customer_id != customer.id {
            return Err(FlowError::ForeignVehicle {
                vehicle,
                customer: customer.id,
            }
            .into());
        }
    }
    if let Some(technician) = req.technician_user_id {
        let _: User = s.row(technician)?;
    }
    let id = RowId::new();
    let wo = WorkOrder {
        id,
        number: req
            .number
            .clone()
            .unwrap_or_else(|| checkout::receipt_number("W", id)),
        customer_id: customer.id,
        vehicle_id: req.vehicle_id,
        technician_user_id: req.technician_user_id,
        status: "open".to_owned(),
        description: req.description.clone(),
        odometer: req.odometer,
        sale_id: None,
        opened_at: Timestamp::now(),
        completed_at: None,
    };
    s.append(actor, &wo)?;
    Ok(wo)
}

pub(crate) fn add_part(
    s: &Scope<'_>,
    actor: &Actor,
    work_order: RowId,
    product: RowId,
    quantity_milli: i64,
) -> Result<WorkOrderLine> {
    s.require_role(actor, Role::Cashier, "add a part", "work_order_lines")?;
    let wo = changeable(s, work_order, "add a part")?;
    // Priced as a one-line sale to the customer, without coupons: the same price level,
    // activity, currency and quantity checks as a checkout.
    let ctx = Context::load(s, Some(wo.customer_id))?;
    let priced = checkout::price(s, &ctx, &[LineItem::product(product, quantity_milli)], &[])?;
    let Some(line) = priced.lines.first() else {
        return Err(FlowError::NoLines { what: "a part" }.into());
    };
    let row = WorkOrderLine {
        id: RowId::new(),
        work_order_id: wo.id,
        kind: "part".to_owned(),
        product_id: Some(product),
        description: line.description.clone(),
        quantity_milli,
        unit_price_minor: line.unit_price_minor,
        created_at: ctx.now,
    };
    s.append(actor, &row)?;
    Ok(row)
}

pub(crate) fn add_labour(
    s: &Scope<'_>,
    actor: &Actor,
    work_order: RowId,
    description: &str,
    hours_milli: i64,
    rate_minor: i64,
) -> Result<WorkOrderLine> {
    s.require_role(actor, Role::Cashier, "add labour", "work_order_lines")?;
    if description.trim().is_empty() {
        return Err(FlowError::Empty {
            what: "a labour line's description",
        }
        .into());
    }
    if hours_milli <= 0 {
        return Err(FlowError::Quantity {
            line: 1,
            quantity_milli: hours_milli,
        }
        .into());
    }
    if rate_minor < 0 {
        return Err(FlowError::Amount {
            what: "a labour rate",
            rule: "zero or above",
            amount_minor: rate_minor,
        }
        .into());
    }
    let wo = changeable(s, work_order, "add labour")?;
    let row = WorkOrderLine {
        id: RowId::new(),
        work_order_id: wo.id,
        kind: "labour".to_owned(),
        product_id: None,
        description: description.to_owned(),
        quantity_milli: hours_milli,
        unit_price_minor: rate_minor,
        created_at: Timestamp::now(),
    };
    s.append(actor, &row)?;
    Ok(row)
}

/// The work order's lines in the order they were added.
fn lines(s: &Scope<'_>, work_order: RowId) -> Result<Vec<WorkOrderLine>> {
    s.rows_where(
        "work_order_id = ?2",
        "ORDER BY created_at, id",
        &[&work_order],
    )
}

pub(crate) fn complete(
    s: &Scope<'_>,
    actor: &Actor,
    work_order: RowId,
    tenders: &[Tender],
) -> Result<Receipt> {
    s.require_role(actor, Role::Cashier, "complete a work order", "work_orders")?;
    let wo = changeable(s, work_order, "complete")?;
    let rows = lines(s, wo.id)?;
    if rows.is_empty() {
        return Err(FlowError::NoLines {
            what: "the work order",
        }
        .into());
    }
    let tax_labour = s.tenant_settings()?.rules.tax_labour;
    let mut sale = Checkout::new().customer(wo.customer_id);
    sale.tenders = tenders.to_vec();
    sale.salesperson_id = wo.technician_user_id;
    sale.note = Some(format!("work order {}", wo.number));
    for row in &rows {
        sale.lines.push(match row.product_id {
            Some(product) => LineItem::product(product, row.quantity_milli),
            None => LineItem::service(
                &row.description,
                row.quantity_milli,
                row.unit_price_minor,
                tax_labour,
            ),
        });
    }
    let receipt = checkout::run(s, actor, &sale)?;
    s.amend(
        actor,
        &WorkOrder {
            status: "completed".to_owned(),
            sale_id: Some(receipt.sale.id),
            completed_at: Some(receipt.sale.sold_at),
            ..wo
        },
    )?;
    Ok(receipt)
}

pub(crate) fn cancel(s: &Scope<'_>, actor: &Actor, work_order: RowId) -> Result<WorkOrder> {
    s.require_role(actor, Role::Cashier, "cancel a work order", "work_orders")?;
    let wo = changeable(s, work_order, "cancel")?;
    let wo = WorkOrder {
        status: "cancelled".to_owned(),
        ..wo
    };
    s.amend(actor, &wo)?;
    Ok(wo)
}
