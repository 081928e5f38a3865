-- Indexes that a sale's inserts can append to instead of splitting pages in the middle.
--
-- Measured on the checkout benchmark's store (3,000 sales, then 179 commits read back from the
-- WAL and mapped to their b-trees with dbstat): a typical checkout wrote 57.9 pages, 8.7 of them
-- into `audit_log_row` alone. Its key was (tenant_id, table_name, row_id): the eight audit rows
-- of one sale land at the end of four table groups, each in the middle of the index, and every
-- split there rebalances three sibling pages. Row ids are UUIDv7, unique across tables and
-- increasing, so keyed by (tenant_id, row_id, table_name) the new entries all go to the tenant's
-- end of the index, and "the audit history of this row" is still one range lookup.
DROP INDEX audit_log_row;
CREATE INDEX audit_log_row ON audit_log(tenant_id, row_id, table_name);

-- Optional references that are NULL in most rows (a walk-in sale has no customer, a stock receipt
-- no sale, a system row no actor): every NULL entry was an index entry written and never read,
-- since a lookup by the reference (and SQLite's foreign key checks, `col = ?`) implies
-- `col IS NOT NULL` and uses the partial index. Same names, same columns.
DROP INDEX sales_customer;
CREATE INDEX sales_customer ON sales(tenant_id, customer_id, sold_at, status, number, total_minor)
    WHERE customer_id IS NOT NULL;
DROP INDEX sales_device;
CREATE INDEX sales_device ON sales(tenant_id, device_id) WHERE device_id IS NOT NULL;
DROP INDEX sale_payments_gift_card;
CREATE INDEX sale_payments_gift_card ON sale_payments(tenant_id, gift_card_id)
    WHERE gift_card_id IS NOT NULL;
DROP INDEX audit_log_actor;
CREATE INDEX audit_log_actor ON audit_log(tenant_id, actor_user_id)
    WHERE actor_user_id IS NOT NULL;
DROP INDEX inventory_transactions_sale;
CREATE INDEX inventory_transactions_sale ON inventory_transactions(tenant_id, sale_id)
    WHERE sale_id IS NOT NULL;
DROP INDEX gift_card_transactions_sale;
CREATE INDEX gift_card_transactions_sale ON gift_card_transactions(tenant_id, sale_id)
    WHERE sale_id IS NOT NULL;
DROP INDEX loyalty_transactions_sale;
CREATE INDEX loyalty_transactions_sale ON loyalty_transactions(tenant_id, sale_id)
    WHERE sale_id IS NOT NULL;
DROP INDEX credit_transactions_sale;
CREATE INDEX credit_transactions_sale ON credit_transactions(tenant_id, sale_id)
    WHERE sale_id IS NOT NULL;
DROP INDEX promotion_usage_customer;
CREATE INDEX promotion_usage_customer ON promotion_usage(tenant_id, customer_id)
    WHERE customer_id IS NOT NULL;
DROP INDEX work_orders_sale;
CREATE INDEX work_orders_sale ON work_orders(tenant_id, sale_id) WHERE sale_id IS NOT NULL;
