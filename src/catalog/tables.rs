//! The tenant tables, one entry each: its record struct, sync class, write role, access and
//! columns, and the facts the rest of the crate reads from the catalog rather than keeping its
//! own copy: the balance kept beside a ledger (`#[balance]`), the states that close a document
//! (`#[closed_when]`) and the only columns an update may set on it (`#[amends]`), pairs of
//! columns in order (`#[ordered]`), the words a column accepts (`#[one_of]`), a text's length
//! in characters (`#[len]`, [`super::TEXT_MAX_CHARS`] when not named), an integer's range
//! (`#[range]`), a text's form (`#[format]`) and the columns reports never show (`#[hidden]`).
//! The node schema's CHECK constraints say the same in SQL (a test walks them all); the catalog
//! may be stricter (bounded texts, ISO 4217 codes), never looser. A new table is one entry here
//! plus one migration.
//!
//! Tables whose rows only the POS flows write are `Internal`: money rows that set what a refund
//! may give back (sale and layaway payments, loyalty points, sale reversals). Generic CRUD
//! refuses them; the flows write them through the crate's own insert path, and sync applies
//! them from other terminals.

use super::ledger::{BalanceDef, KeptBalance};
use super::payment::PaymentMethod;
use super::{
    default_length, sealed, Access, Bounds, ColumnDef, ColumnType, Record, RecordVisitor, StateDef,
    SyncClass, TableDef, TextFormat,
};
use crate::ids::{Json, RowId, Timestamp};
use crate::tenant::settings::Role;

use rusqlite::{Row, Statement};
use serde::{Deserialize, Serialize};

/// Where a job that runs and ends stands (`sync_log.status`, `backups.status`).
const RUN_STATUSES: &[&str] = &["running", "ok", "failed"];

catalog! {
    /// A member of staff who can sign in at a terminal.
    User => users (MasterData, Admin, Api) {
        /// Sign-in name, unique within the tenant.
        #[len(1..=64)]
        username: String,
        /// Shown on receipts.
        display_name: String,
        /// Unique within the tenant when set.
        #[len(..=254)]
        email: Option<String>,
        /// What the user may do.
        #[one_of("admin", "manager", "cashier")]
        role: Role,
        /// Hash of the terminal PIN (never the PIN).
        #[hidden("a PIN hash is brute-forced in seconds")]
        pin_hash: Option<String>,
        /// Disabled users cannot act.
        active: bool,
        /// Created.
        created_at: Timestamp,
        /// Last changed.
        updated_at: Timestamp,
    }

    /// A terminal or other device of a store.
    Device => devices (MasterData, Admin, Api) {
        /// Unique within the tenant ("Till 1").
        name: String,
        /// terminal, back_office or mobile.
        #[one_of("terminal", "back_office", "mobile")]
        kind: String,
        /// Store or area.
        location: Option<String>,
        /// Registered.
        registered_at: Timestamp,
        /// Last contact.
        last_seen_at: Option<Timestamp>,
        /// Retired devices are inactive.
        active: bool,
    }

    /// A user signed in at a device (local to the node).
    Session => sessions (LocalOnly, Cashier, Api) {
        /// Who.
        user_id: RowId => users,
        /// Where.
        device_id: Option<RowId> => devices,
        /// Signed in.
        started_at: Timestamp,
        /// Expires.
        expires_at: Timestamp,
        /// Signed out.
        ended_at: Option<Timestamp>,
    }

    /// Who changed what, written by the crate with every write. Each node keeps its own: the
    /// actor travels inside the operation, and a node applying a remote operation writes its
    /// own entry for it, so audit rows are never synced themselves.
    AuditEntry => audit_log (LocalOnly, Admin, Internal) {
        /// When.
        at: Timestamp,
        /// Who; none for platform actions.
        actor_user_id: Option<RowId> => users,
        /// insert, update, delete, bootstrap, settings, status or plan.
        #[one_of("insert", "update", "delete", "bootstrap", "settings", "status", "plan")]
        action: String,
        /// The table written.
        table_name: String,
        /// The row written.
        row_id: String,
        /// Changed columns or other detail.
        detail: Option<Json>,
    }

    /// A product category, optionally nested.
    ProductCategory => product_categories (MasterData, Manager, Api) {
        /// Unique within the tenant.
        #[len(1..=200)]
        name: String,
        /// Parent category.
        parent_id: Option<RowId> => product_categories,
        /// Created.
        created_at: Timestamp,
    }

    /// A part, product or service for sale.
    Product => products (MasterData, Manager, Api) {
        /// Stock-keeping unit, unique within the tenant.
        #[len(1..=64)]
        sku: String,
        /// EAN/UPC, unique within the tenant when set.
        #[len(..=64)]
        barcode: Option<String>,
        /// Name.
        #[len(1..=200)]
        name: String,
        /// Longer text.
        #[len(..=4000)]
        description: Option<String>,
        /// Manufacturer.
        brand: Option<String>,
        /// Category.
        category_id: Option<RowId> => product_categories,
        /// stocked, non_stocked or service.
        #[one_of("stocked", "non_stocked", "service")]
        kind: String,
        /// List price in minor units.
        #[range(0..)]
        price_minor: i64,
        /// Cost in minor units.
        #[range(0..)]
        cost_minor: i64,
        /// ISO 4217.
        #[format(Currency)]
        currency: String,
        /// Whether sales tax applies.
        taxable: bool,
        /// Reorder when stock falls to this many thousandths.
        reorder_level_milli: i64,
        /// Thumbnail.
        image: Option<Vec<u8>>,
        /// Inactive products are not sold.
        active: bool,
        /// Created.
        created_at: Timestamp,
        /// Last changed.
        updated_at: Timestamp,
    }

    /// Which vehicles a part fits.
    #[ordered(year_from <= year_to)]
    Fitment => fitment_data (MasterData, Manager, Api) {
        /// The part.
        product_id: RowId => products,
        /// Vehicle make.
        make: String,
        /// Vehicle model.
        model: String,
        /// First model year.
        #[range(1886..=2100)]
        year_from: i64,
        /// Last model year.
        #[range(1886..=2100)]
        year_to: i64,
        /// Engine code.
        engine: Option<String>,
        /// Notes.
        #[len(..=4000)]
        notes: Option<String>,
    }

    /// Stock settings of a product at a location (the quantity is the ledger's sum).
    InventoryItem => inventory (MasterData, Manager, Api) {
        /// The product.
        product_id: RowId => products,
        /// Store or warehouse.
        location: String,
        /// Shelf bin.
        bin: Option<String>,
        /// Reorder level in thousandths.
        reorder_level_milli: i64,
        /// Reorder quantity in thousandths.
        reorder_qty_milli: i64,
        /// Last changed.
        updated_at: Timestamp,
    }

    /// A price level (trade, fleet...) as a discount off list price.
    PriceLevel => price_levels (MasterData, Manager, Api) {
        /// Unique within the tenant.
        #[len(1..=200)]
        name: String,
        /// Discount in parts per million.
        #[range(0..=1_000_000)]
        discount_ppm: i64,
        /// Created.
        created_at: Timestamp,
    }

    /// A customer.
    Customer => customers (MasterData, Cashier, Api) {
        /// Customer number, unique within the tenant.
        #[len(1..=64)]
        code: String,
        /// First name.
        first_name: String,
        /// Last name.
        last_name: String,
        /// Company.
        company: Option<String>,
        /// Unique within the tenant when set.
        #[len(..=254)]
        email: Option<String>,
        /// Phone.
        phone: Option<String>,
        /// Price level.
        price_level_id: Option<RowId> => price_levels,
        /// Exempt from sales tax.
        tax_exempt: bool,
        /// Notes.
        #[len(..=4000)]
        notes: Option<String>,
        /// Created.
        created_at: Timestamp,
        /// Last changed.
        updated_at: Timestamp,
    }

    /// A customer's vehicle.
    CustomerVehicle => customer_vehicles (MasterData, Cashier, Api) {
        /// Owner.
        customer_id: RowId => customers,
        /// VIN (17 characters since 1981, 5 to 13 before), unique within the tenant when set.
        #[len(5..=17)]
        vin: Option<String>,
        /// Licence plate.
        plate: Option<String>,
        /// Make.
        make: String,
        /// Model.
        model: String,
        /// Model year.
        #[range(1886..=2100)]
        year: i64,
        /// Engine.
        engine: Option<String>,
        /// Odometer.
        #[range(0..)]
        mileage: Option<i64>,
        /// Created.
        created_at: Timestamp,
    }

    /// A sale (receipt).
    #[closed_when(status in "completed", "voided")]
    #[amends(status)]
    Sale => sales (Document, Cashier, Api) {
        /// Receipt number, unique within the tenant.
        #[len(1..=64)]
        number: String,
        /// Terminal.
        device_id: Option<RowId> => devices,
        /// Customer.
        customer_id: Option<RowId> => customers,
        /// Cashier.
        user_id: RowId => users,
        /// open, layaway, completed or voided.
        #[one_of("open", "layaway", "completed", "voided")]
        status: String,
        /// ISO 4217.
        #[format(Currency)]
        currency: String,
        /// Sum of lines before discounts.
        subtotal_minor: i64,
        /// Discounts.
        discount_minor: i64,
        /// Tax.
        tax_minor: i64,
        /// Total due.
        total_minor: i64,
        /// When.
        sold_at: Timestamp,
        /// Note.
        #[len(..=4000)]
        note: Option<String>,
        /// What the receipt shows of the tenant's settings as they were when the sale was made
        /// (a [`crate::ReceiptBrand`]: brand, header, footer, locale, tax rates), so a reprint
        /// shows them and not the settings of the day. NULL for sales made before the column
        /// existed (migration V10), adopted, or synced from a terminal that does not write it.
        receipt_brand: Option<Json>,
    }

    /// A line of a sale.
    SaleLine => sale_lines (Document, Cashier, Api) {
        /// The sale.
        sale_id: RowId => sales,
        /// Position, from 1.
        #[range(1..)]
        line_no: i64,
        /// product or service.
        #[one_of("product", "service")]
        kind: String,
        /// Product sold.
        product_id: Option<RowId> => products,
        /// Text on the receipt.
        #[len(..=1000)]
        description: String,
        /// Quantity in thousandths.
        quantity_milli: i64,
        /// Unit price.
        unit_price_minor: i64,
        /// Discount.
        discount_minor: i64,
        /// Tax.
        tax_minor: i64,
        /// Line total.
        total_minor: i64,
    }

    /// A gift card.
    GiftCard => gift_cards (MasterData, Cashier, Api) {
        /// Card code, unique within the tenant.
        #[len(1..=64)]
        code: String,
        /// ISO 4217.
        #[format(Currency)]
        currency: String,
        /// Holder.
        customer_id: Option<RowId> => customers,
        /// Issued.
        issued_at: Timestamp,
        /// Expires.
        expires_at: Option<Timestamp>,
        /// Blocked cards are inactive.
        active: bool,
    }

    /// A payment towards a sale. Written only by the flows (checkout, refunds, voids) and sync:
    /// what a sale took by each method caps what its refunds give back, so a row added by hand
    /// would raise that cap.
    SalePayment => sale_payments (Document, Cashier, Internal) {
        /// The sale.
        sale_id: RowId => sales,
        /// How it was paid: a [`PaymentMethod`] word.
        #[one_of(PaymentMethod::WORDS)]
        method: String,
        /// Amount applied.
        amount_minor: i64,
        /// ISO 4217.
        #[format(Currency)]
        currency: String,
        /// Cash handed over.
        tendered_minor: Option<i64>,
        /// Change given.
        #[range(0..)]
        change_minor: i64,
        /// Card authorisation reference.
        reference: Option<String>,
        /// Gift card used.
        gift_card_id: Option<RowId> => gift_cards,
        /// When.
        paid_at: Timestamp,
    }

    /// A gift card ledger row (the balance is the sum).
    #[balance(gift_card_balances.balance_minor = sum(amount_minor) by gift_card_id)]
    GiftCardTransaction => gift_card_transactions (Ledger, Cashier, Api) {
        /// The card.
        gift_card_id: RowId => gift_cards,
        /// issue, top_up, redeem, refund or adjust.
        #[one_of("issue", "top_up", "redeem", "refund", "adjust")]
        kind: String,
        /// Signed amount.
        amount_minor: i64,
        /// Sale.
        sale_id: Option<RowId> => sales,
        /// Cashier.
        user_id: Option<RowId> => users,
        /// When.
        created_at: Timestamp,
    }

    /// Goods put aside against part payments.
    #[closed_when(status in "completed", "cancelled")]
    #[amends(status, closed_at)]
    Layaway => layaways (Document, Cashier, Api) {
        /// Number, unique within the tenant.
        #[len(1..=64)]
        number: String,
        /// Customer.
        customer_id: RowId => customers,
        /// The sale holding the lines.
        sale_id: RowId => sales,
        /// open, completed or cancelled.
        #[one_of("open", "completed", "cancelled")]
        status: String,
        /// Total due.
        #[range(0..)]
        total_minor: i64,
        /// Deposit required.
        #[range(0..)]
        deposit_minor: i64,
        /// ISO 4217.
        #[format(Currency)]
        currency: String,
        /// Opened.
        opened_at: Timestamp,
        /// Due.
        due_at: Option<Timestamp>,
        /// Completed or cancelled.
        closed_at: Option<Timestamp>,
    }

    /// A payment towards a layaway (ledger). Written only by the layaway flows and sync: a
    /// completed layaway's payments count as its sale's for the refund caps.
    LayawayPayment => layaway_payments (Ledger, Cashier, Internal) {
        /// The layaway.
        layaway_id: RowId => layaways,
        /// How it was paid: a [`PaymentMethod`] word (the layaway flows take cash and card).
        #[one_of(PaymentMethod::WORDS)]
        method: String,
        /// Signed amount (refunds are negative).
        amount_minor: i64,
        /// Cashier.
        user_id: Option<RowId> => users,
        /// When.
        paid_at: Timestamp,
        /// Card terminal reference, for card payments.
        reference: Option<String>,
    }

    /// A service job on a customer's vehicle.
    #[closed_when(status in "completed", "cancelled")]
    #[amends(status, sale_id, completed_at)]
    WorkOrder => work_orders (Document, Cashier, Api) {
        /// Number, unique within the tenant.
        #[len(1..=64)]
        number: String,
        /// Customer.
        customer_id: RowId => customers,
        /// Vehicle.
        vehicle_id: Option<RowId> => customer_vehicles,
        /// Technician.
        technician_user_id: Option<RowId> => users,
        /// open, in_progress, completed or cancelled.
        #[one_of("open", "in_progress", "completed", "cancelled")]
        status: String,
        /// What to do.
        #[len(..=4000)]
        description: String,
        /// Odometer at check-in.
        #[range(0..)]
        odometer: Option<i64>,
        /// The sale it completed into.
        sale_id: Option<RowId> => sales,
        /// Opened.
        opened_at: Timestamp,
        /// Completed.
        completed_at: Option<Timestamp>,
    }

    /// A part or labour line of a work order.
    WorkOrderLine => work_order_lines (Document, Cashier, Api) {
        /// The work order.
        work_order_id: RowId => work_orders,
        /// part or labour.
        #[one_of("part", "labour")]
        kind: String,
        /// Part used.
        product_id: Option<RowId> => products,
        /// Text.
        #[len(..=1000)]
        description: String,
        /// Quantity or hours in thousandths.
        quantity_milli: i64,
        /// Unit price.
        unit_price_minor: i64,
        /// Added.
        created_at: Timestamp,
    }

    /// How salespeople earn commission.
    CommissionRule => commission_rules (MasterData, Manager, Api) {
        /// Unique within the tenant.
        #[len(1..=200)]
        name: String,
        /// Only for this user.
        user_id: Option<RowId> => users,
        /// Only for this category.
        category_id: Option<RowId> => product_categories,
        /// Rate in parts per million.
        #[range(0..=1_000_000)]
        rate_ppm: i64,
        /// In force.
        active: bool,
        /// Created.
        created_at: Timestamp,
    }

    /// Commission earned on a sale (ledger).
    Commission => commissions (Ledger, Cashier, Api) {
        /// Earner.
        user_id: RowId => users,
        /// Sale.
        sale_id: RowId => sales,
        /// Rule applied.
        rule_id: Option<RowId> => commission_rules,
        /// Signed amount.
        amount_minor: i64,
        /// ISO 4217.
        #[format(Currency)]
        currency: String,
        /// When.
        created_at: Timestamp,
    }

    /// A customer's loyalty account.
    LoyaltyAccount => loyalty_accounts (MasterData, Cashier, Api) {
        /// Customer (one account each).
        customer_id: RowId => customers,
        /// Card number, unique within the tenant.
        #[len(1..=64)]
        number: String,
        /// Created.
        created_at: Timestamp,
    }

    /// Points earned or spent (ledger). Written only by the flows and sync: points are money
    /// (they pay for sales), and the points a sale redeemed cap what its refunds give back.
    #[balance(loyalty_balances.points = sum(points) by account_id)]
    LoyaltyTransaction => loyalty_transactions (Ledger, Cashier, Internal) {
        /// Account.
        account_id: RowId => loyalty_accounts,
        /// accrue, redeem, reverse or adjust.
        #[one_of("accrue", "redeem", "reverse", "adjust")]
        kind: String,
        /// Signed points.
        points: i64,
        /// Sale.
        sale_id: Option<RowId> => sales,
        /// When.
        created_at: Timestamp,
    }

    /// A customer's store credit account.
    CreditAccount => credit_accounts (MasterData, Manager, Api) {
        /// Customer (one account each).
        customer_id: RowId => customers,
        /// Most that may be owed.
        #[range(0..)]
        credit_limit_minor: i64,
        /// ISO 4217.
        #[format(Currency)]
        currency: String,
        /// Open for charges.
        active: bool,
        /// Created.
        created_at: Timestamp,
    }

    /// A store credit charge or payment (ledger; owed is the sum).
    #[balance(credit_balances.owed_minor = sum(amount_minor) by account_id)]
    CreditTransaction => credit_transactions (Ledger, Cashier, Api) {
        /// Account.
        account_id: RowId => credit_accounts,
        /// charge, payment, refund or adjust.
        #[one_of("charge", "payment", "refund", "adjust")]
        kind: String,
        /// Signed amount (charges positive).
        amount_minor: i64,
        /// Sale.
        sale_id: Option<RowId> => sales,
        /// Cashier.
        user_id: Option<RowId> => users,
        /// When.
        created_at: Timestamp,
    }

    /// A promotion.
    Promotion => promotions (MasterData, Manager, Api) {
        /// Coupon code, unique within the tenant when set.
        #[len(..=64)]
        code: Option<String>,
        /// Name.
        #[len(1..=200)]
        name: String,
        /// percent or amount.
        #[one_of("percent", "amount")]
        kind: String,
        /// Parts per million or minor units.
        #[range(0..)]
        value: i64,
        /// Only this product.
        product_id: Option<RowId> => products,
        /// Only this category.
        category_id: Option<RowId> => product_categories,
        /// Starts.
        starts_at: Timestamp,
        /// Ends.
        ends_at: Option<Timestamp>,
        /// Most uses.
        #[range(0..)]
        usage_limit: Option<i64>,
        /// In force.
        active: bool,
    }

    /// One use of a promotion (ledger). A row on a refund or void sale (one with
    /// `sale_reversals` rows) gives a use back: a promotion's uses are its rows on sales less
    /// its rows on reversals.
    PromotionUse => promotion_usage (Ledger, Cashier, Api) {
        /// Promotion.
        promotion_id: RowId => promotions,
        /// Sale (or the refund or void giving the use back).
        sale_id: RowId => sales,
        /// Customer.
        customer_id: Option<RowId> => customers,
        /// Discount given (on a give-back, the discount the use had given).
        #[range(0..)]
        discount_minor: i64,
        /// When.
        used_at: Timestamp,
    }

    /// A stock movement (ledger; stock on hand is the sum).
    #[balance(stock_levels.on_hand_milli = sum(quantity_milli) by product_id, location)]
    InventoryTransaction => inventory_transactions (Ledger, Cashier, Api) {
        /// Product.
        product_id: RowId => products,
        /// Location.
        location: String,
        /// receive, sale, refund, adjust, count, transfer or layaway.
        #[one_of("receive", "sale", "refund", "adjust", "count", "transfer", "layaway")]
        kind: String,
        /// Signed quantity in thousandths.
        quantity_milli: i64,
        /// Unit cost.
        unit_cost_minor: Option<i64>,
        /// Why (adjustments).
        #[len(..=1000)]
        reason: Option<String>,
        /// Sale.
        sale_id: Option<RowId> => sales,
        /// Who.
        user_id: Option<RowId> => users,
        /// When.
        created_at: Timestamp,
    }

    /// One push or pull of the sync engine (local bookkeeping).
    SyncLogEntry => sync_log (LocalOnly, Admin, Internal) {
        /// push or pull.
        #[one_of("push", "pull")]
        direction: String,
        /// Started.
        started_at: Timestamp,
        /// Finished.
        finished_at: Option<Timestamp>,
        /// Operations moved.
        #[range(0..)]
        operations: i64,
        /// Server sequence reached.
        cursor: Option<i64>,
        /// running, ok or failed.
        #[one_of(RUN_STATUSES)]
        status: String,
        /// Failure.
        #[len(..=4000)]
        error: Option<String>,
    }

    /// A merge conflict kept for a person to review. Synced, so every terminal of the tenant
    /// sees the same conflicts and a resolution made on one shows on all; its ids are derived
    /// from what conflicted, so two terminals detecting the same conflict record one row.
    SyncConflict => sync_conflicts (MasterData, Admin, Internal) {
        /// Table.
        table_name: String,
        /// Row.
        #[len(..=1000)]
        row_id: String,
        /// Column, for master data.
        column_name: Option<String>,
        /// What kind of conflict.
        kind: String,
        /// Our value.
        local_value: Option<Json>,
        /// Their value.
        remote_value: Option<Json>,
        /// Detected.
        detected_at: Timestamp,
        /// Resolved.
        resolved_at: Option<Timestamp>,
        /// By whom.
        resolved_by: Option<RowId> => users,
        /// How.
        #[len(..=1000)]
        resolution: Option<String>,
    }

    /// A write waiting to be pushed to the central server (the outbox).
    PendingOperation => pending_operations (LocalOnly, Admin, Internal) {
        /// Device that wrote it.
        device_id: String,
        /// Hybrid logical clock stamp.
        hlc: String,
        /// Who made the change.
        actor_user_id: Option<RowId> => users,
        /// Table.
        table_name: String,
        /// Row.
        row_id: String,
        /// insert, update, delete or ledger_append.
        #[one_of("insert", "update", "delete", "ledger_append")]
        kind: String,
        /// Changed columns and values.
        columns: Json,
        /// Written.
        created_at: Timestamp,
        /// Acknowledged by the server.
        synced_at: Option<Timestamp>,
        /// Server sequence number.
        seq: Option<i64>,
        /// The local transaction it belongs to (the id of that transaction's first operation).
        txn_id: Option<String>,
        /// For an update: the newest stamp the row had here when it was changed.
        base: Option<String>,
        /// Why the server refused it for good; set aside operations are no longer pushed.
        #[len(..=4000)]
        set_aside: Option<String>,
    }

    /// Where backups go.
    BackupDestination => backup_destinations (MasterData, Admin, Api) {
        /// Unique within the tenant.
        #[len(1..=200)]
        name: String,
        /// local_dir, s3 or sftp.
        #[one_of("local_dir", "s3", "sftp")]
        kind: String,
        /// Directory or URL.
        #[len(..=4096)]
        target: String,
        /// In use.
        active: bool,
        /// Created.
        created_at: Timestamp,
    }

    /// The tenant's backup schedule (one row).
    BackupSettings => backup_settings (MasterData, Admin, Api) {
        /// Cron expression.
        schedule: String,
        /// Days kept.
        #[range(1..)]
        retention_days: i64,
        /// Encrypt archives.
        encrypt: bool,
        /// Default destination.
        destination_id: Option<RowId> => backup_destinations,
        /// Last changed.
        updated_at: Timestamp,
    }

    /// A backup taken on this node.
    Backup => backups (LocalOnly, Admin, Api) {
        /// full or tenant_export.
        #[one_of("full", "tenant_export")]
        kind: String,
        /// Destination.
        destination_id: Option<RowId> => backup_destinations,
        /// File.
        #[len(..=4096)]
        path: String,
        /// SHA-256 hex.
        #[len(64..=64)]
        sha256: Option<String>,
        /// Size.
        #[range(0..)]
        size_bytes: Option<i64>,
        /// running, ok or failed.
        #[one_of(RUN_STATUSES)]
        status: String,
        /// Started.
        created_at: Timestamp,
        /// Finished.
        finished_at: Option<Timestamp>,
    }

    /// A restore of a backup.
    RestoreJob => restore_jobs (LocalOnly, Admin, Api) {
        /// Backup restored.
        backup_id: RowId => backups,
        /// pending, running, ok or failed.
        #[one_of("pending", "running", "ok", "failed")]
        status: String,
        /// Who asked.
        requested_by: Option<RowId> => users,
        /// Started.
        started_at: Timestamp,
        /// Finished.
        finished_at: Option<Timestamp>,
        /// Failure.
        #[len(..=4000)]
        error: Option<String>,
    }

    /// How much of a sale line a refund or void reversed (ledger). The reversal is a sale of its
    /// own whose line `reversal_line_id` carries the negative quantity; the original is never
    /// edited. Written only by the refund flows and sync: these rows say which sales are a
    /// sale's refunds, and so what its refunds gave back already.
    SaleReversal => sale_reversals (Ledger, Cashier, Internal) {
        /// The original sale.
        sale_id: RowId => sales,
        /// The original line.
        sale_line_id: RowId => sale_lines,
        /// The refund or void sale.
        reversal_sale_id: RowId => sales,
        /// Its line reversing `sale_line_id`.
        reversal_line_id: RowId => sale_lines,
        /// refund or void.
        #[one_of("refund", "void")]
        kind: String,
        /// Quantity reversed, in thousandths (positive).
        #[range(1..)]
        quantity_milli: i64,
        /// When.
        created_at: Timestamp,
    }

    /// Where a tenant's sync stands on this node (the sync engine's bookkeeping).
    SyncState => sync_state (LocalOnly, Admin, Internal) {
        /// The last log sequence number applied here.
        #[range(0..)]
        cursor: i64,
        /// The server's highest sequence number, as last seen.
        #[range(0..)]
        server_high: i64,
        /// Last push that reached the server.
        last_push_at: Option<Timestamp>,
        /// Last pull that reached the server.
        last_pull_at: Option<Timestamp>,
        /// Last time an operation moved either way.
        last_progress_at: Option<Timestamp>,
        /// Whether the last attempt reached the server.
        online: bool,
        /// The last error's class.
        #[one_of("transient", "auth", "suspended", "refused", "fatal")]
        error_class: Option<String>,
        /// The step that failed: push, pull or config.
        error_step: Option<String>,
        /// The last error, for a person.
        #[len(..=4000)]
        error: Option<String>,
        /// When it happened.
        error_at: Option<Timestamp>,
    }

    /// Clock stamps of a synced row's values, keyed by the row's id (the merge's memory).
    SyncStamps => sync_stamps (LocalOnly, Admin, Internal) {
        /// The row's table.
        table_name: String,
        /// Column to stamp; `""` is the row's insert, `"#deleted"` its deletion.
        stamps: Json,
        /// The row's last values once deleted.
        tombstone: Option<Json>,
    }
}
