//! The legacy schema and the writer of its rows: the tables the single-tenant app had (the
//! catalog's first ones, in its order), their columns, and one prepared INSERT per table.

use rusqlite::{Connection, Statement, ToSql};

use super::{GenerateError, Result};
use crate::catalog;

/// The schema of the old single-tenant POS: every tenant table of the current schema without
/// `tenant_id`, the `tenants` registry, the freeze triggers and the node tables. Plain rowid
/// tables keyed by `id` (pending_operations by `hlc`), single-column foreign keys, UNIQUE
/// constraints and indexes without `tenant_id` under the current index names.
pub const LEGACY_SCHEMA: &str = include_str!("schema.sql");

/// The tables in catalog (and schema) order; the discriminant indexes `catalog::TABLES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub(super) enum T {
    Users,
    Devices,
    Sessions,
    AuditLog,
    ProductCategories,
    Products,
    FitmentData,
    Inventory,
    PriceLevels,
    Customers,
    CustomerVehicles,
    Sales,
    SaleLines,
    GiftCards,
    SalePayments,
    GiftCardTransactions,
    Layaways,
    LayawayPayments,
    WorkOrders,
    WorkOrderLines,
    CommissionRules,
    Commissions,
    LoyaltyAccounts,
    LoyaltyTransactions,
    CreditAccounts,
    CreditTransactions,
    Promotions,
    PromotionUsage,
    InventoryTransactions,
    SyncLog,
    SyncConflicts,
    // Never written (the old app's outbox is empty when it is retired); here for the order.
    #[allow(dead_code)]
    PendingOperations,
    BackupDestinations,
    BackupSettings,
    Backups,
    RestoreJobs,
}

pub(super) const TABLE_COUNT: usize = T::RestoreJobs as usize + 1;

/// The tables the single-tenant app had: the catalog's first ones. Tables added since (say,
/// `sale_reversals`) come after them in the catalog, and adoption creates them empty.
pub(super) fn legacy_tables() -> &'static [&'static catalog::TableDef] {
    &catalog::TABLES[..TABLE_COUNT]
}

/// Columns the catalog gained after the single-tenant app was retired, as (table, column): its
/// files never had them, so [`LEGACY_SCHEMA`] leaves them out and the generator writes none
/// (adoption fills them with NULL; each is nullable). Added by migrations after V1.
pub(super) const ADDED_SINCE: &[(&str, &str)] = &[
    // V7: the card terminal's reference of a layaway payment.
    ("layaway_payments", "reference"),
    // V8: the sync engine's transaction, base stamp and refusal of an outbox operation.
    ("pending_operations", "txn_id"),
    ("pending_operations", "base"),
    ("pending_operations", "set_aside"),
    // V10: the brand and texts a sale's receipt shows, as they were when it was made.
    ("sales", "receipt_brand"),
];

/// The catalog's columns of `table` that the legacy table has, in catalog order (without `id`).
pub(super) fn legacy_columns(
    table: &catalog::TableDef,
) -> impl Iterator<Item = &'static catalog::ColumnDef> {
    let name = table.name;
    table
        .columns
        .iter()
        .filter(move |c| !ADDED_SINCE.contains(&(name, c.name)))
}

/// One prepared INSERT per table, columns in catalog order (`id`, then the catalog's columns the
/// legacy table has), and the rows written so far.
pub(super) struct Writer<'c> {
    pub(super) stmts: Vec<Statement<'c>>,
    pub(super) counts: [u64; TABLE_COUNT],
}

impl<'c> Writer<'c> {
    pub(super) fn new(conn: &'c Connection) -> Result<Self> {
        let mut stmts = Vec::with_capacity(TABLE_COUNT);
        for table in legacy_tables() {
            // Identifiers from the crate's own catalog, never from input.
            let columns: Vec<&str> = std::iter::once("id")
                .chain(legacy_columns(table).map(|c| c.name))
                .collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                table.name,
                columns.join(", "),
                vec!["?"; columns.len()].join(", ")
            );
            let stmt = conn.prepare(&sql).map_err(|source| GenerateError::Insert {
                table: table.name,
                source,
            })?;
            stmts.push(stmt);
        }
        Ok(Self {
            stmts,
            counts: [0; TABLE_COUNT],
        })
    }

    pub(super) fn put(&mut self, table: T, values: &[&dyn ToSql]) -> Result<()> {
        let i = table as usize;
        self.stmts[i]
            .execute(values)
            .map_err(|source| GenerateError::Insert {
                table: legacy_tables()[i].name,
                source,
            })?;
        self.counts[i] += 1;
        Ok(())
    }

    pub(super) fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}
