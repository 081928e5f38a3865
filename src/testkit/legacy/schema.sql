-- The schema of a store that ran the old single-tenant POS, as its SQLite file still has it.
--
-- Derived from migrations/node/V1__initial_schema.sql (keep the two in step): the same tables,
-- column names and order, declared types, NOT NULL, DEFAULTs and CHECKs, but no `tenants`
-- registry, no `tenant_id` column, no tenant_id-freeze triggers, and no node tables
-- (node_state, refinery_schema_history). Tables are plain rowid tables keyed by `id`, except
-- pending_operations, keyed by its natural key `hlc` as today. UNIQUE constraints, unique
-- indexes and foreign keys are the current ones without tenant_id, and indexes keep their
-- names. backup_settings has no UNIQUE: today's UNIQUE (tenant_id), one row per tenant, has no
-- single-tenant counterpart.

-- ---------------------------------------------------------------- core

CREATE TABLE users (
    id           TEXT PRIMARY KEY NOT NULL,
    username     TEXT NOT NULL CHECK (length(username) > 0),
    display_name TEXT NOT NULL,
    email        TEXT,
    role         TEXT NOT NULL CHECK (role = 'admin' OR role = 'manager' OR role = 'cashier'),
    pin_hash     TEXT,
    active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (username)
);
CREATE UNIQUE INDEX users_email ON users(email) WHERE email IS NOT NULL;

CREATE TABLE devices (
    id            TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL DEFAULT 'terminal' CHECK (kind = 'terminal' OR kind = 'back_office' OR kind = 'mobile'),
    location      TEXT,
    registered_at TEXT NOT NULL,
    last_seen_at  TEXT,
    active        INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    UNIQUE (name)
);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL,
    device_id  TEXT,
    started_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    ended_at   TEXT,
    FOREIGN KEY (user_id) REFERENCES users(id),
    FOREIGN KEY (device_id) REFERENCES devices(id)
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_device ON sessions(device_id);

CREATE TABLE audit_log (
    id            TEXT PRIMARY KEY NOT NULL,
    at            TEXT NOT NULL,
    actor_user_id TEXT,
    action        TEXT NOT NULL CHECK (action = 'insert' OR action = 'update' OR action = 'delete' OR action = 'bootstrap' OR action = 'settings' OR action = 'status' OR action = 'plan'),
    table_name    TEXT NOT NULL,
    row_id        TEXT NOT NULL,
    detail        TEXT CHECK (detail IS NULL OR json_valid(detail)),
    FOREIGN KEY (actor_user_id) REFERENCES users(id)
);
CREATE INDEX audit_log_row ON audit_log(table_name, row_id);
CREATE INDEX audit_log_actor ON audit_log(actor_user_id);

-- ---------------------------------------------------------------- products

CREATE TABLE product_categories (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL CHECK (length(name) > 0),
    parent_id  TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (name),
    FOREIGN KEY (parent_id) REFERENCES product_categories(id)
);
CREATE INDEX product_categories_parent ON product_categories(parent_id);

CREATE TABLE products (
    id                  TEXT PRIMARY KEY NOT NULL,
    sku                 TEXT NOT NULL CHECK (length(sku) > 0),
    barcode             TEXT,
    name                TEXT NOT NULL CHECK (length(name) > 0),
    description         TEXT,
    brand               TEXT,
    category_id         TEXT,
    kind                TEXT NOT NULL DEFAULT 'stocked' CHECK (kind = 'stocked' OR kind = 'non_stocked' OR kind = 'service'),
    price_minor         INTEGER NOT NULL CHECK (price_minor >= 0),
    cost_minor          INTEGER NOT NULL DEFAULT 0 CHECK (cost_minor >= 0),
    currency            TEXT NOT NULL CHECK (length(currency) = 3),
    taxable             INTEGER NOT NULL DEFAULT 1 CHECK (taxable IN (0, 1)),
    reorder_level_milli INTEGER NOT NULL DEFAULT 0,
    image               BLOB,
    active              INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    UNIQUE (sku),
    FOREIGN KEY (category_id) REFERENCES product_categories(id)
);
CREATE UNIQUE INDEX products_barcode ON products(barcode) WHERE barcode IS NOT NULL;
CREATE INDEX products_category ON products(category_id);
CREATE INDEX products_name ON products(name);

CREATE TABLE fitment_data (
    id         TEXT PRIMARY KEY NOT NULL,
    product_id TEXT NOT NULL,
    make       TEXT NOT NULL,
    model      TEXT NOT NULL,
    year_from  INTEGER NOT NULL CHECK (year_from BETWEEN 1886 AND 2100),
    year_to    INTEGER NOT NULL CHECK (year_to BETWEEN 1886 AND 2100),
    engine     TEXT,
    notes      TEXT,
    FOREIGN KEY (product_id) REFERENCES products(id),
    CHECK (year_to >= year_from)
);
CREATE INDEX fitment_product ON fitment_data(product_id);
CREATE INDEX fitment_vehicle ON fitment_data(make, model, year_from);

CREATE TABLE inventory (
    id                  TEXT PRIMARY KEY NOT NULL,
    product_id          TEXT NOT NULL,
    location            TEXT NOT NULL DEFAULT 'main',
    bin                 TEXT,
    reorder_level_milli INTEGER NOT NULL DEFAULT 0,
    reorder_qty_milli   INTEGER NOT NULL DEFAULT 0,
    updated_at          TEXT NOT NULL,
    UNIQUE (product_id, location),
    FOREIGN KEY (product_id) REFERENCES products(id)
);

-- ---------------------------------------------------------------- customers

CREATE TABLE price_levels (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL CHECK (length(name) > 0),
    discount_ppm INTEGER NOT NULL DEFAULT 0 CHECK (discount_ppm BETWEEN 0 AND 1000000),
    created_at   TEXT NOT NULL,
    UNIQUE (name)
);

CREATE TABLE customers (
    id             TEXT PRIMARY KEY NOT NULL,
    code           TEXT NOT NULL CHECK (length(code) > 0),
    first_name     TEXT NOT NULL,
    last_name      TEXT NOT NULL,
    company        TEXT,
    email          TEXT,
    phone          TEXT,
    price_level_id TEXT,
    tax_exempt     INTEGER NOT NULL DEFAULT 0 CHECK (tax_exempt IN (0, 1)),
    notes          TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (code),
    FOREIGN KEY (price_level_id) REFERENCES price_levels(id)
);
CREATE UNIQUE INDEX customers_email ON customers(email) WHERE email IS NOT NULL;
CREATE INDEX customers_name ON customers(last_name, first_name);
CREATE INDEX customers_phone ON customers(phone);
CREATE INDEX customers_price_level ON customers(price_level_id);

CREATE TABLE customer_vehicles (
    id          TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL,
    vin         TEXT CHECK (vin IS NULL OR length(vin) BETWEEN 5 AND 17), -- 17 since 1981; shorter before
    plate       TEXT,
    make        TEXT NOT NULL,
    model       TEXT NOT NULL,
    year        INTEGER NOT NULL CHECK (year BETWEEN 1886 AND 2100),
    engine      TEXT,
    mileage     INTEGER CHECK (mileage IS NULL OR mileage >= 0),
    created_at  TEXT NOT NULL,
    FOREIGN KEY (customer_id) REFERENCES customers(id)
);
CREATE UNIQUE INDEX customer_vehicles_vin ON customer_vehicles(vin) WHERE vin IS NOT NULL;
CREATE INDEX customer_vehicles_customer ON customer_vehicles(customer_id);
CREATE INDEX customer_vehicles_plate ON customer_vehicles(plate);

-- ---------------------------------------------------------------- sales

CREATE TABLE sales (
    id             TEXT PRIMARY KEY NOT NULL,
    number         TEXT NOT NULL CHECK (length(number) > 0),
    device_id      TEXT,
    customer_id    TEXT,
    user_id        TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status = 'open' OR status = 'layaway' OR status = 'completed' OR status = 'voided'),
    currency       TEXT NOT NULL CHECK (length(currency) = 3),
    subtotal_minor INTEGER NOT NULL,
    discount_minor INTEGER NOT NULL DEFAULT 0,
    tax_minor      INTEGER NOT NULL DEFAULT 0,
    total_minor    INTEGER NOT NULL,
    sold_at        TEXT NOT NULL,
    note           TEXT,
    UNIQUE (number),
    FOREIGN KEY (device_id) REFERENCES devices(id),
    FOREIGN KEY (customer_id) REFERENCES customers(id),
    FOREIGN KEY (user_id) REFERENCES users(id)
);
CREATE INDEX sales_sold_at ON sales(sold_at);
CREATE INDEX sales_customer ON sales(customer_id, sold_at);
CREATE INDEX sales_device ON sales(device_id);
CREATE INDEX sales_user ON sales(user_id);

CREATE TABLE sale_lines (
    id               TEXT PRIMARY KEY NOT NULL,
    sale_id          TEXT NOT NULL,
    line_no          INTEGER NOT NULL CHECK (line_no >= 1),
    kind             TEXT NOT NULL CHECK (kind IN ('product', 'service')),
    product_id       TEXT,
    description      TEXT NOT NULL,
    quantity_milli   INTEGER NOT NULL,
    unit_price_minor INTEGER NOT NULL,
    discount_minor   INTEGER NOT NULL DEFAULT 0,
    tax_minor        INTEGER NOT NULL DEFAULT 0,
    total_minor      INTEGER NOT NULL,
    UNIQUE (sale_id, line_no),
    FOREIGN KEY (sale_id) REFERENCES sales(id),
    FOREIGN KEY (product_id) REFERENCES products(id)
);
CREATE INDEX sale_lines_product ON sale_lines(product_id);

CREATE TABLE gift_cards (
    id          TEXT PRIMARY KEY NOT NULL,
    code        TEXT NOT NULL CHECK (length(code) > 0),
    currency    TEXT NOT NULL CHECK (length(currency) = 3),
    customer_id TEXT,
    issued_at   TEXT NOT NULL,
    expires_at  TEXT,
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    UNIQUE (code),
    FOREIGN KEY (customer_id) REFERENCES customers(id)
);
CREATE INDEX gift_cards_customer ON gift_cards(customer_id);

CREATE TABLE sale_payments (
    id             TEXT PRIMARY KEY NOT NULL,
    sale_id        TEXT NOT NULL,
    method         TEXT NOT NULL CHECK (method = 'cash' OR method = 'card' OR method = 'gift_card' OR method = 'store_credit' OR method = 'loyalty'),
    amount_minor   INTEGER NOT NULL,
    currency       TEXT NOT NULL CHECK (length(currency) = 3),
    tendered_minor INTEGER,
    change_minor   INTEGER NOT NULL DEFAULT 0 CHECK (change_minor >= 0),
    reference      TEXT,
    gift_card_id   TEXT,
    paid_at        TEXT NOT NULL,
    FOREIGN KEY (sale_id) REFERENCES sales(id),
    FOREIGN KEY (gift_card_id) REFERENCES gift_cards(id)
);
CREATE INDEX sale_payments_sale ON sale_payments(sale_id);
CREATE INDEX sale_payments_method ON sale_payments(method, paid_at);
CREATE INDEX sale_payments_gift_card ON sale_payments(gift_card_id);

CREATE TABLE gift_card_transactions (
    id           TEXT PRIMARY KEY NOT NULL,
    gift_card_id TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind = 'issue' OR kind = 'top_up' OR kind = 'redeem' OR kind = 'refund' OR kind = 'adjust'),
    amount_minor INTEGER NOT NULL,
    sale_id      TEXT,
    user_id      TEXT,
    created_at   TEXT NOT NULL,
    FOREIGN KEY (gift_card_id) REFERENCES gift_cards(id),
    FOREIGN KEY (sale_id) REFERENCES sales(id),
    FOREIGN KEY (user_id) REFERENCES users(id)
);
CREATE INDEX gift_card_transactions_card ON gift_card_transactions(gift_card_id);
CREATE INDEX gift_card_transactions_sale ON gift_card_transactions(sale_id);

CREATE TABLE layaways (
    id            TEXT PRIMARY KEY NOT NULL,
    number        TEXT NOT NULL CHECK (length(number) > 0),
    customer_id   TEXT NOT NULL,
    sale_id       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status = 'open' OR status = 'completed' OR status = 'cancelled'),
    total_minor   INTEGER NOT NULL CHECK (total_minor >= 0),
    deposit_minor INTEGER NOT NULL CHECK (deposit_minor >= 0),
    currency      TEXT NOT NULL CHECK (length(currency) = 3),
    opened_at     TEXT NOT NULL,
    due_at        TEXT,
    closed_at     TEXT,
    UNIQUE (number),
    FOREIGN KEY (customer_id) REFERENCES customers(id),
    FOREIGN KEY (sale_id) REFERENCES sales(id)
);
CREATE INDEX layaways_customer ON layaways(customer_id);
CREATE INDEX layaways_sale ON layaways(sale_id);

CREATE TABLE layaway_payments (
    id           TEXT PRIMARY KEY NOT NULL,
    layaway_id   TEXT NOT NULL,
    method       TEXT NOT NULL CHECK (method = 'cash' OR method = 'card' OR method = 'gift_card' OR method = 'store_credit' OR method = 'loyalty'),
    amount_minor INTEGER NOT NULL,
    user_id      TEXT,
    paid_at      TEXT NOT NULL,
    FOREIGN KEY (layaway_id) REFERENCES layaways(id),
    FOREIGN KEY (user_id) REFERENCES users(id)
);
CREATE INDEX layaway_payments_layaway ON layaway_payments(layaway_id);

CREATE TABLE work_orders (
    id                 TEXT PRIMARY KEY NOT NULL,
    number             TEXT NOT NULL CHECK (length(number) > 0),
    customer_id        TEXT NOT NULL,
    vehicle_id         TEXT,
    technician_user_id TEXT,
    status             TEXT NOT NULL CHECK (status = 'open' OR status = 'in_progress' OR status = 'completed' OR status = 'cancelled'),
    description        TEXT NOT NULL,
    odometer           INTEGER CHECK (odometer IS NULL OR odometer >= 0),
    sale_id            TEXT,
    opened_at          TEXT NOT NULL,
    completed_at       TEXT,
    UNIQUE (number),
    FOREIGN KEY (customer_id) REFERENCES customers(id),
    FOREIGN KEY (vehicle_id) REFERENCES customer_vehicles(id),
    FOREIGN KEY (technician_user_id) REFERENCES users(id),
    FOREIGN KEY (sale_id) REFERENCES sales(id)
);
CREATE INDEX work_orders_customer ON work_orders(customer_id);
CREATE INDEX work_orders_vehicle ON work_orders(vehicle_id);
CREATE INDEX work_orders_technician ON work_orders(technician_user_id);
CREATE INDEX work_orders_sale ON work_orders(sale_id);
CREATE INDEX work_orders_status ON work_orders(status);

CREATE TABLE work_order_lines (
    id               TEXT PRIMARY KEY NOT NULL,
    work_order_id    TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('part', 'labour')),
    product_id       TEXT,
    description      TEXT NOT NULL,
    quantity_milli   INTEGER NOT NULL,
    unit_price_minor INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    FOREIGN KEY (work_order_id) REFERENCES work_orders(id),
    FOREIGN KEY (product_id) REFERENCES products(id)
);
CREATE INDEX work_order_lines_order ON work_order_lines(work_order_id);
CREATE INDEX work_order_lines_product ON work_order_lines(product_id);

CREATE TABLE commission_rules (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL CHECK (length(name) > 0),
    user_id     TEXT,
    category_id TEXT,
    rate_ppm    INTEGER NOT NULL CHECK (rate_ppm BETWEEN 0 AND 1000000),
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at  TEXT NOT NULL,
    UNIQUE (name),
    FOREIGN KEY (user_id) REFERENCES users(id),
    FOREIGN KEY (category_id) REFERENCES product_categories(id)
);
CREATE INDEX commission_rules_user ON commission_rules(user_id);
CREATE INDEX commission_rules_category ON commission_rules(category_id);

CREATE TABLE commissions (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL,
    sale_id      TEXT NOT NULL,
    rule_id      TEXT,
    amount_minor INTEGER NOT NULL,
    currency     TEXT NOT NULL CHECK (length(currency) = 3),
    created_at   TEXT NOT NULL,
    FOREIGN KEY (user_id) REFERENCES users(id),
    FOREIGN KEY (sale_id) REFERENCES sales(id),
    FOREIGN KEY (rule_id) REFERENCES commission_rules(id)
);
CREATE INDEX commissions_user ON commissions(user_id, created_at);
CREATE INDEX commissions_sale ON commissions(sale_id);
CREATE INDEX commissions_rule ON commissions(rule_id);

CREATE TABLE loyalty_accounts (
    id          TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL,
    number      TEXT NOT NULL CHECK (length(number) > 0),
    created_at  TEXT NOT NULL,
    UNIQUE (customer_id),
    UNIQUE (number),
    FOREIGN KEY (customer_id) REFERENCES customers(id)
);

CREATE TABLE loyalty_transactions (
    id         TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind = 'accrue' OR kind = 'redeem' OR kind = 'reverse' OR kind = 'adjust'),
    points     INTEGER NOT NULL,
    sale_id    TEXT,
    created_at TEXT NOT NULL,
    FOREIGN KEY (account_id) REFERENCES loyalty_accounts(id),
    FOREIGN KEY (sale_id) REFERENCES sales(id)
);
CREATE INDEX loyalty_transactions_account ON loyalty_transactions(account_id);
CREATE INDEX loyalty_transactions_sale ON loyalty_transactions(sale_id);

CREATE TABLE credit_accounts (
    id                 TEXT PRIMARY KEY NOT NULL,
    customer_id        TEXT NOT NULL,
    credit_limit_minor INTEGER NOT NULL CHECK (credit_limit_minor >= 0),
    currency           TEXT NOT NULL CHECK (length(currency) = 3),
    active             INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at         TEXT NOT NULL,
    UNIQUE (customer_id),
    FOREIGN KEY (customer_id) REFERENCES customers(id)
);

CREATE TABLE credit_transactions (
    id           TEXT PRIMARY KEY NOT NULL,
    account_id   TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind = 'charge' OR kind = 'payment' OR kind = 'refund' OR kind = 'adjust'),
    amount_minor INTEGER NOT NULL,
    sale_id      TEXT,
    user_id      TEXT,
    created_at   TEXT NOT NULL,
    FOREIGN KEY (account_id) REFERENCES credit_accounts(id),
    FOREIGN KEY (sale_id) REFERENCES sales(id),
    FOREIGN KEY (user_id) REFERENCES users(id)
);
CREATE INDEX credit_transactions_account ON credit_transactions(account_id);
CREATE INDEX credit_transactions_sale ON credit_transactions(sale_id);

CREATE TABLE promotions (
    id          TEXT PRIMARY KEY NOT NULL,
    code        TEXT,
    name        TEXT NOT NULL CHECK (length(name) > 0),
    kind        TEXT NOT NULL CHECK (kind IN ('percent', 'amount')),
    value       INTEGER NOT NULL CHECK (value >= 0),
    product_id  TEXT,
    category_id TEXT,
    starts_at   TEXT NOT NULL,
    ends_at     TEXT,
    usage_limit INTEGER CHECK (usage_limit IS NULL OR usage_limit >= 0),
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    FOREIGN KEY (product_id) REFERENCES products(id),
    FOREIGN KEY (category_id) REFERENCES product_categories(id)
);
CREATE UNIQUE INDEX promotions_code ON promotions(code) WHERE code IS NOT NULL;
CREATE INDEX promotions_product ON promotions(product_id);
CREATE INDEX promotions_category ON promotions(category_id);

CREATE TABLE promotion_usage (
    id             TEXT PRIMARY KEY NOT NULL,
    promotion_id   TEXT NOT NULL,
    sale_id        TEXT NOT NULL,
    customer_id    TEXT,
    discount_minor INTEGER NOT NULL CHECK (discount_minor >= 0),
    used_at        TEXT NOT NULL,
    FOREIGN KEY (promotion_id) REFERENCES promotions(id),
    FOREIGN KEY (sale_id) REFERENCES sales(id),
    FOREIGN KEY (customer_id) REFERENCES customers(id)
);
CREATE INDEX promotion_usage_promotion ON promotion_usage(promotion_id);
CREATE INDEX promotion_usage_sale ON promotion_usage(sale_id);
CREATE INDEX promotion_usage_customer ON promotion_usage(customer_id);

CREATE TABLE inventory_transactions (
    id              TEXT PRIMARY KEY NOT NULL,
    product_id      TEXT NOT NULL,
    location        TEXT NOT NULL DEFAULT 'main',
    kind            TEXT NOT NULL CHECK (kind = 'receive' OR kind = 'sale' OR kind = 'refund' OR kind = 'adjust' OR kind = 'count' OR kind = 'transfer' OR kind = 'layaway'),
    quantity_milli  INTEGER NOT NULL,
    unit_cost_minor INTEGER,
    reason          TEXT,
    sale_id         TEXT,
    user_id         TEXT,
    created_at      TEXT NOT NULL,
    FOREIGN KEY (product_id) REFERENCES products(id),
    FOREIGN KEY (sale_id) REFERENCES sales(id),
    FOREIGN KEY (user_id) REFERENCES users(id)
);
CREATE INDEX inventory_transactions_product ON inventory_transactions(product_id, location);
CREATE INDEX inventory_transactions_sale ON inventory_transactions(sale_id);
CREATE INDEX inventory_transactions_user ON inventory_transactions(user_id);

-- ---------------------------------------------------------------- sync (local bookkeeping)

CREATE TABLE sync_log (
    id          TEXT PRIMARY KEY NOT NULL,
    direction   TEXT NOT NULL CHECK (direction IN ('push', 'pull')),
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    operations  INTEGER NOT NULL DEFAULT 0 CHECK (operations >= 0),
    cursor      INTEGER,
    status      TEXT NOT NULL CHECK (status = 'running' OR status = 'ok' OR status = 'failed'),
    error       TEXT
);
CREATE INDEX sync_log_started ON sync_log(started_at);

CREATE TABLE sync_conflicts (
    id           TEXT PRIMARY KEY NOT NULL,
    table_name   TEXT NOT NULL,
    row_id       TEXT NOT NULL,
    column_name  TEXT,
    kind         TEXT NOT NULL,
    local_value  TEXT CHECK (local_value IS NULL OR json_valid(local_value)),
    remote_value TEXT CHECK (remote_value IS NULL OR json_valid(remote_value)),
    detected_at  TEXT NOT NULL,
    resolved_at  TEXT,
    resolved_by  TEXT,
    resolution   TEXT,
    FOREIGN KEY (resolved_by) REFERENCES users(id)
);
CREATE INDEX sync_conflicts_row ON sync_conflicts(table_name, row_id);
CREATE INDEX sync_conflicts_resolver ON sync_conflicts(resolved_by);

CREATE TABLE pending_operations (
    id            TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    hlc           TEXT NOT NULL,
    actor_user_id TEXT,
    table_name    TEXT NOT NULL,
    row_id        TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind = 'insert' OR kind = 'update' OR kind = 'delete' OR kind = 'ledger_append'),
    columns       TEXT NOT NULL CHECK (json_valid(columns)),
    created_at    TEXT NOT NULL,
    synced_at     TEXT,
    seq           INTEGER,
    -- Keyed by clock stamp (unique per node), which is the order operations are pushed in.
    PRIMARY KEY (hlc),
    FOREIGN KEY (actor_user_id) REFERENCES users(id)
);

-- ---------------------------------------------------------------- backup

CREATE TABLE backup_destinations (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL CHECK (length(name) > 0),
    kind       TEXT NOT NULL CHECK (kind = 'local_dir' OR kind = 's3' OR kind = 'sftp'),
    target     TEXT NOT NULL,
    active     INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at TEXT NOT NULL,
    UNIQUE (name)
);

CREATE TABLE backup_settings (
    id             TEXT PRIMARY KEY NOT NULL,
    schedule       TEXT NOT NULL,
    retention_days INTEGER NOT NULL CHECK (retention_days >= 1),
    encrypt        INTEGER NOT NULL DEFAULT 1 CHECK (encrypt IN (0, 1)),
    destination_id TEXT,
    updated_at     TEXT NOT NULL,
    FOREIGN KEY (destination_id) REFERENCES backup_destinations(id)
);
CREATE INDEX backup_settings_destination ON backup_settings(destination_id);

CREATE TABLE backups (
    id             TEXT PRIMARY KEY NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('full', 'tenant_export')),
    destination_id TEXT,
    path           TEXT NOT NULL,
    sha256         TEXT CHECK (sha256 IS NULL OR length(sha256) = 64),
    size_bytes     INTEGER CHECK (size_bytes IS NULL OR size_bytes >= 0),
    status         TEXT NOT NULL CHECK (status = 'running' OR status = 'ok' OR status = 'failed'),
    created_at     TEXT NOT NULL,
    finished_at    TEXT,
    FOREIGN KEY (destination_id) REFERENCES backup_destinations(id)
);
CREATE INDEX backups_created ON backups(created_at);
CREATE INDEX backups_destination ON backups(destination_id);

CREATE TABLE restore_jobs (
    id           TEXT PRIMARY KEY NOT NULL,
    backup_id    TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status = 'pending' OR status = 'running' OR status = 'ok' OR status = 'failed'),
    requested_by TEXT,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    error        TEXT,
    FOREIGN KEY (backup_id) REFERENCES backups(id),
    FOREIGN KEY (requested_by) REFERENCES users(id)
);
CREATE INDEX restore_jobs_backup ON restore_jobs(backup_id);
CREATE INDEX restore_jobs_requested_by ON restore_jobs(requested_by);

