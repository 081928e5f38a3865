-- pos-tenancy schema, version 1.
--
-- Every table except `tenants` carries `tenant_id TEXT NOT NULL` referencing the registry, a
-- primary key of (tenant_id, id), UNIQUE constraints that include tenant_id, and composite foreign
-- keys (tenant_id, x_id) so that no row can point at another tenant's row. Triggers at the end
-- refuse any UPDATE that changes tenant_id. Row ids are UUIDv7 text created on the terminal.
-- Money is integer minor units next to an ISO 4217 currency; quantities are integer thousandths
-- of a unit (quantity_milli) so litres of oil and hours of labour are exact; timestamps are
-- RFC 3339 UTC text with milliseconds, so they sort as text.
-- Allowed words are checked with OR chains, not IN lists: SQLite builds a temporary table for an
-- IN list of three or more values on every execution of a statement that checks it (measured
-- at ~24k instructions per such CHECK per insert).

CREATE TABLE tenants (
    id                  TEXT PRIMARY KEY NOT NULL
                        CHECK (length(id) BETWEEN 1 AND 64 AND id NOT GLOB '*[^a-z0-9-]*'),
    name                TEXT NOT NULL CHECK (length(name) > 0),
    status              TEXT NOT NULL DEFAULT 'active'
                        CHECK (status = 'active' OR status = 'suspended' OR status = 'cancelled'),
    plan                TEXT NOT NULL DEFAULT 'free' CHECK (plan = 'free' OR plan = 'pro' OR plan = 'enterprise'),
    max_users           INTEGER NOT NULL CHECK (max_users >= 0),
    max_api_calls_month INTEGER NOT NULL CHECK (max_api_calls_month >= 0),
    tier                TEXT NOT NULL DEFAULT 'shared' CHECK (tier IN ('shared', 'dedicated')),
    settings            TEXT NOT NULL CHECK (json_valid(settings)),
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
) WITHOUT ROWID;

-- ---------------------------------------------------------------- core

CREATE TABLE users (
    id           TEXT NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    username     TEXT NOT NULL CHECK (length(username) > 0),
    display_name TEXT NOT NULL,
    email        TEXT,
    role         TEXT NOT NULL CHECK (role = 'admin' OR role = 'manager' OR role = 'cashier'),
    pin_hash     TEXT,
    active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, username)
) WITHOUT ROWID;
CREATE UNIQUE INDEX users_email ON users(tenant_id, email) WHERE email IS NOT NULL;

CREATE TABLE devices (
    id            TEXT NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL DEFAULT 'terminal' CHECK (kind = 'terminal' OR kind = 'back_office' OR kind = 'mobile'),
    location      TEXT,
    registered_at TEXT NOT NULL,
    last_seen_at  TEXT,
    active        INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
) WITHOUT ROWID;

CREATE TABLE sessions (
    id         TEXT NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    user_id    TEXT NOT NULL,
    device_id  TEXT,
    started_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    ended_at   TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions(tenant_id, user_id);
CREATE INDEX sessions_device ON sessions(tenant_id, device_id);

CREATE TABLE audit_log (
    id            TEXT NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    at            TEXT NOT NULL,
    actor_user_id TEXT,
    action        TEXT NOT NULL CHECK (action = 'insert' OR action = 'update' OR action = 'delete' OR action = 'bootstrap' OR action = 'settings' OR action = 'status' OR action = 'plan'),
    table_name    TEXT NOT NULL,
    row_id        TEXT NOT NULL,
    detail        TEXT CHECK (detail IS NULL OR json_valid(detail)),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, actor_user_id) REFERENCES users(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX audit_log_row ON audit_log(tenant_id, table_name, row_id);
CREATE INDEX audit_log_actor ON audit_log(tenant_id, actor_user_id);

-- ---------------------------------------------------------------- products

CREATE TABLE product_categories (
    id         TEXT NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    name       TEXT NOT NULL CHECK (length(name) > 0),
    parent_id  TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name),
    FOREIGN KEY (tenant_id, parent_id) REFERENCES product_categories(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX product_categories_parent ON product_categories(tenant_id, parent_id);

CREATE TABLE products (
    id                  TEXT NOT NULL,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
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
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, sku),
    FOREIGN KEY (tenant_id, category_id) REFERENCES product_categories(tenant_id, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX products_barcode ON products(tenant_id, barcode) WHERE barcode IS NOT NULL;
CREATE INDEX products_category ON products(tenant_id, category_id);
CREATE INDEX products_name ON products(tenant_id, name);

CREATE TABLE fitment_data (
    id         TEXT NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    product_id TEXT NOT NULL,
    make       TEXT NOT NULL,
    model      TEXT NOT NULL,
    year_from  INTEGER NOT NULL CHECK (year_from BETWEEN 1886 AND 2100),
    year_to    INTEGER NOT NULL CHECK (year_to BETWEEN 1886 AND 2100),
    engine     TEXT,
    notes      TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products(tenant_id, id),
    CHECK (year_to >= year_from)
) WITHOUT ROWID;
CREATE INDEX fitment_product ON fitment_data(tenant_id, product_id);
CREATE INDEX fitment_vehicle ON fitment_data(tenant_id, make, model, year_from);

CREATE TABLE inventory (
    id                  TEXT NOT NULL,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    product_id          TEXT NOT NULL,
    location            TEXT NOT NULL DEFAULT 'main',
    bin                 TEXT,
    reorder_level_milli INTEGER NOT NULL DEFAULT 0,
    reorder_qty_milli   INTEGER NOT NULL DEFAULT 0,
    updated_at          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, product_id, location),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products(tenant_id, id)
) WITHOUT ROWID;

-- ---------------------------------------------------------------- customers

CREATE TABLE price_levels (
    id           TEXT NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    name         TEXT NOT NULL CHECK (length(name) > 0),
    discount_ppm INTEGER NOT NULL DEFAULT 0 CHECK (discount_ppm BETWEEN 0 AND 1000000),
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
) WITHOUT ROWID;

CREATE TABLE customers (
    id             TEXT NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
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
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, code),
    FOREIGN KEY (tenant_id, price_level_id) REFERENCES price_levels(tenant_id, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX customers_email ON customers(tenant_id, email) WHERE email IS NOT NULL;
CREATE INDEX customers_name ON customers(tenant_id, last_name, first_name);
CREATE INDEX customers_phone ON customers(tenant_id, phone);
CREATE INDEX customers_price_level ON customers(tenant_id, price_level_id);

CREATE TABLE customer_vehicles (
    id          TEXT NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    customer_id TEXT NOT NULL,
    vin         TEXT CHECK (vin IS NULL OR length(vin) BETWEEN 5 AND 17), -- 17 since 1981; shorter before
    plate       TEXT,
    make        TEXT NOT NULL,
    model       TEXT NOT NULL,
    year        INTEGER NOT NULL CHECK (year BETWEEN 1886 AND 2100),
    engine      TEXT,
    mileage     INTEGER CHECK (mileage IS NULL OR mileage >= 0),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX customer_vehicles_vin ON customer_vehicles(tenant_id, vin) WHERE vin IS NOT NULL;
CREATE INDEX customer_vehicles_customer ON customer_vehicles(tenant_id, customer_id);
CREATE INDEX customer_vehicles_plate ON customer_vehicles(tenant_id, plate);

-- ---------------------------------------------------------------- sales

CREATE TABLE sales (
    id             TEXT NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
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
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, number),
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices(tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX sales_sold_at ON sales(tenant_id, sold_at);
CREATE INDEX sales_customer ON sales(tenant_id, customer_id, sold_at);
CREATE INDEX sales_device ON sales(tenant_id, device_id);
CREATE INDEX sales_user ON sales(tenant_id, user_id);

CREATE TABLE sale_lines (
    id               TEXT NOT NULL,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
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
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, sale_id, line_no),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES sales(tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX sale_lines_product ON sale_lines(tenant_id, product_id);

CREATE TABLE gift_cards (
    id          TEXT NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    code        TEXT NOT NULL CHECK (length(code) > 0),
    currency    TEXT NOT NULL CHECK (length(currency) = 3),
    customer_id TEXT,
    issued_at   TEXT NOT NULL,
    expires_at  TEXT,
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, code),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX gift_cards_customer ON gift_cards(tenant_id, customer_id);

CREATE TABLE sale_payments (
    id             TEXT NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    sale_id        TEXT NOT NULL,
    method         TEXT NOT NULL CHECK (method = 'cash' OR method = 'card' OR method = 'gift_card' OR method = 'store_credit' OR method = 'loyalty'),
    amount_minor   INTEGER NOT NULL,
    currency       TEXT NOT NULL CHECK (length(currency) = 3),
    tendered_minor INTEGER,
    change_minor   INTEGER NOT NULL DEFAULT 0 CHECK (change_minor >= 0),
    reference      TEXT,
    gift_card_id   TEXT,
    paid_at        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES sales(tenant_id, id),
    FOREIGN KEY (tenant_id, gift_card_id) REFERENCES gift_cards(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX sale_payments_sale ON sale_payments(tenant_id, sale_id);
CREATE INDEX sale_payments_method ON sale_payments(tenant_id, method, paid_at);
CREATE INDEX sale_payments_gift_card ON sale_payments(tenant_id, gift_card_id);

CREATE TABLE gift_card_transactions (
    id           TEXT NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    gift_card_id TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind = 'issue' OR kind = 'top_up' OR kind = 'redeem' OR kind = 'refund' OR kind = 'adjust'),
    amount_minor INTEGER NOT NULL,
    sale_id      TEXT,
    user_id      TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, gift_card_id) REFERENCES gift_cards(tenant_id, id),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES sales(tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX gift_card_transactions_card ON gift_card_transactions(tenant_id, gift_card_id);
CREATE INDEX gift_card_transactions_sale ON gift_card_transactions(tenant_id, sale_id);

CREATE TABLE layaways (
    id            TEXT NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
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
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, number),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES sales(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX layaways_customer ON layaways(tenant_id, customer_id);
CREATE INDEX layaways_sale ON layaways(tenant_id, sale_id);

CREATE TABLE layaway_payments (
    id           TEXT NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    layaway_id   TEXT NOT NULL,
    method       TEXT NOT NULL CHECK (method = 'cash' OR method = 'card' OR method = 'gift_card' OR method = 'store_credit' OR method = 'loyalty'),
    amount_minor INTEGER NOT NULL,
    user_id      TEXT,
    paid_at      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, layaway_id) REFERENCES layaways(tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX layaway_payments_layaway ON layaway_payments(tenant_id, layaway_id);

CREATE TABLE work_orders (
    id                 TEXT NOT NULL,
    tenant_id          TEXT NOT NULL REFERENCES tenants(id),
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
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, number),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id),
    FOREIGN KEY (tenant_id, vehicle_id) REFERENCES customer_vehicles(tenant_id, id),
    FOREIGN KEY (tenant_id, technician_user_id) REFERENCES users(tenant_id, id),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES sales(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX work_orders_customer ON work_orders(tenant_id, customer_id);
CREATE INDEX work_orders_vehicle ON work_orders(tenant_id, vehicle_id);
CREATE INDEX work_orders_technician ON work_orders(tenant_id, technician_user_id);
CREATE INDEX work_orders_sale ON work_orders(tenant_id, sale_id);
CREATE INDEX work_orders_status ON work_orders(tenant_id, status);

CREATE TABLE work_order_lines (
    id               TEXT NOT NULL,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    work_order_id    TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('part', 'labour')),
    product_id       TEXT,
    description      TEXT NOT NULL,
    quantity_milli   INTEGER NOT NULL,
    unit_price_minor INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, work_order_id) REFERENCES work_orders(tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX work_order_lines_order ON work_order_lines(tenant_id, work_order_id);
CREATE INDEX work_order_lines_product ON work_order_lines(tenant_id, product_id);

CREATE TABLE commission_rules (
    id          TEXT NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL CHECK (length(name) > 0),
    user_id     TEXT,
    category_id TEXT,
    rate_ppm    INTEGER NOT NULL CHECK (rate_ppm BETWEEN 0 AND 1000000),
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id),
    FOREIGN KEY (tenant_id, category_id) REFERENCES product_categories(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX commission_rules_user ON commission_rules(tenant_id, user_id);
CREATE INDEX commission_rules_category ON commission_rules(tenant_id, category_id);

CREATE TABLE commissions (
    id           TEXT NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    user_id      TEXT NOT NULL,
    sale_id      TEXT NOT NULL,
    rule_id      TEXT,
    amount_minor INTEGER NOT NULL,
    currency     TEXT NOT NULL CHECK (length(currency) = 3),
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES sales(tenant_id, id),
    FOREIGN KEY (tenant_id, rule_id) REFERENCES commission_rules(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX commissions_user ON commissions(tenant_id, user_id, created_at);
CREATE INDEX commissions_sale ON commissions(tenant_id, sale_id);
CREATE INDEX commissions_rule ON commissions(tenant_id, rule_id);

CREATE TABLE loyalty_accounts (
    id          TEXT NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    customer_id TEXT NOT NULL,
    number      TEXT NOT NULL CHECK (length(number) > 0),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, customer_id),
    UNIQUE (tenant_id, number),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)
) WITHOUT ROWID;

CREATE TABLE loyalty_transactions (
    id         TEXT NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    account_id TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind = 'accrue' OR kind = 'redeem' OR kind = 'reverse' OR kind = 'adjust'),
    points     INTEGER NOT NULL,
    sale_id    TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES loyalty_accounts(tenant_id, id),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES sales(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX loyalty_transactions_account ON loyalty_transactions(tenant_id, account_id);
CREATE INDEX loyalty_transactions_sale ON loyalty_transactions(tenant_id, sale_id);

CREATE TABLE credit_accounts (
    id                 TEXT NOT NULL,
    tenant_id          TEXT NOT NULL REFERENCES tenants(id),
    customer_id        TEXT NOT NULL,
    credit_limit_minor INTEGER NOT NULL CHECK (credit_limit_minor >= 0),
    currency           TEXT NOT NULL CHECK (length(currency) = 3),
    active             INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, customer_id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)
) WITHOUT ROWID;

CREATE TABLE credit_transactions (
    id           TEXT NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    account_id   TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind = 'charge' OR kind = 'payment' OR kind = 'refund' OR kind = 'adjust'),
    amount_minor INTEGER NOT NULL,
    sale_id      TEXT,
    user_id      TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES credit_accounts(tenant_id, id),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES sales(tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX credit_transactions_account ON credit_transactions(tenant_id, account_id);
CREATE INDEX credit_transactions_sale ON credit_transactions(tenant_id, sale_id);

CREATE TABLE promotions (
    id          TEXT NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
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
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products(tenant_id, id),
    FOREIGN KEY (tenant_id, category_id) REFERENCES product_categories(tenant_id, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX promotions_code ON promotions(tenant_id, code) WHERE code IS NOT NULL;
CREATE INDEX promotions_product ON promotions(tenant_id, product_id);
CREATE INDEX promotions_category ON promotions(tenant_id, category_id);

CREATE TABLE promotion_usage (
    id             TEXT NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    promotion_id   TEXT NOT NULL,
    sale_id        TEXT NOT NULL,
    customer_id    TEXT,
    discount_minor INTEGER NOT NULL CHECK (discount_minor >= 0),
    used_at        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, promotion_id) REFERENCES promotions(tenant_id, id),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES sales(tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX promotion_usage_promotion ON promotion_usage(tenant_id, promotion_id);
CREATE INDEX promotion_usage_sale ON promotion_usage(tenant_id, sale_id);
CREATE INDEX promotion_usage_customer ON promotion_usage(tenant_id, customer_id);

CREATE TABLE inventory_transactions (
    id              TEXT NOT NULL,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    product_id      TEXT NOT NULL,
    location        TEXT NOT NULL DEFAULT 'main',
    kind            TEXT NOT NULL CHECK (kind = 'receive' OR kind = 'sale' OR kind = 'refund' OR kind = 'adjust' OR kind = 'count' OR kind = 'transfer' OR kind = 'layaway'),
    quantity_milli  INTEGER NOT NULL,
    unit_cost_minor INTEGER,
    reason          TEXT,
    sale_id         TEXT,
    user_id         TEXT,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products(tenant_id, id),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES sales(tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX inventory_transactions_product ON inventory_transactions(tenant_id, product_id, location);
CREATE INDEX inventory_transactions_sale ON inventory_transactions(tenant_id, sale_id);
CREATE INDEX inventory_transactions_user ON inventory_transactions(tenant_id, user_id);

-- ---------------------------------------------------------------- sync (local bookkeeping)

CREATE TABLE sync_log (
    id          TEXT NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    direction   TEXT NOT NULL CHECK (direction IN ('push', 'pull')),
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    operations  INTEGER NOT NULL DEFAULT 0 CHECK (operations >= 0),
    cursor      INTEGER,
    status      TEXT NOT NULL CHECK (status = 'running' OR status = 'ok' OR status = 'failed'),
    error       TEXT,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX sync_log_started ON sync_log(tenant_id, started_at);

CREATE TABLE sync_conflicts (
    id           TEXT NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
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
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, resolved_by) REFERENCES users(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX sync_conflicts_row ON sync_conflicts(tenant_id, table_name, row_id);
CREATE INDEX sync_conflicts_resolver ON sync_conflicts(tenant_id, resolved_by);

CREATE TABLE pending_operations (
    id            TEXT NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
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
    -- Keyed by clock stamp (unique per node), which is the order operations are pushed in. One
    -- b-tree only: every write pays for each page of this table it touches.
    PRIMARY KEY (tenant_id, hlc),
    FOREIGN KEY (tenant_id, actor_user_id) REFERENCES users(tenant_id, id)
) WITHOUT ROWID;

-- ---------------------------------------------------------------- backup

CREATE TABLE backup_destinations (
    id         TEXT NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    name       TEXT NOT NULL CHECK (length(name) > 0),
    kind       TEXT NOT NULL CHECK (kind = 'local_dir' OR kind = 's3' OR kind = 'sftp'),
    target     TEXT NOT NULL,
    active     INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
) WITHOUT ROWID;

CREATE TABLE backup_settings (
    id             TEXT NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    schedule       TEXT NOT NULL,
    retention_days INTEGER NOT NULL CHECK (retention_days >= 1),
    encrypt        INTEGER NOT NULL DEFAULT 1 CHECK (encrypt IN (0, 1)),
    destination_id TEXT,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id),
    FOREIGN KEY (tenant_id, destination_id) REFERENCES backup_destinations(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX backup_settings_destination ON backup_settings(tenant_id, destination_id);

CREATE TABLE backups (
    id             TEXT NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    kind           TEXT NOT NULL CHECK (kind IN ('full', 'tenant_export')),
    destination_id TEXT,
    path           TEXT NOT NULL,
    sha256         TEXT CHECK (sha256 IS NULL OR length(sha256) = 64),
    size_bytes     INTEGER CHECK (size_bytes IS NULL OR size_bytes >= 0),
    status         TEXT NOT NULL CHECK (status = 'running' OR status = 'ok' OR status = 'failed'),
    created_at     TEXT NOT NULL,
    finished_at    TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, destination_id) REFERENCES backup_destinations(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX backups_created ON backups(tenant_id, created_at);
CREATE INDEX backups_destination ON backups(tenant_id, destination_id);

CREATE TABLE restore_jobs (
    id           TEXT NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    backup_id    TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status = 'pending' OR status = 'running' OR status = 'ok' OR status = 'failed'),
    requested_by TEXT,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    error        TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, backup_id) REFERENCES backups(tenant_id, id),
    FOREIGN KEY (tenant_id, requested_by) REFERENCES users(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX restore_jobs_backup ON restore_jobs(tenant_id, backup_id);
CREATE INDEX restore_jobs_requested_by ON restore_jobs(tenant_id, requested_by);

-- ---------------------------------------------------------------- tenant_id never changes

-- A row belongs to the tenant that wrote it, for ever: moving it would silently hand one
-- business's data to another. The registry's own id is frozen for the same reason.
CREATE TRIGGER tenants_id_immutable BEFORE UPDATE OF id ON tenants
WHEN NEW.id IS NOT OLD.id BEGIN SELECT RAISE(ABORT, 'tenants.id is immutable'); END;
CREATE TRIGGER users_tenant_id_immutable BEFORE UPDATE OF tenant_id ON users
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on users'); END;
CREATE TRIGGER devices_tenant_id_immutable BEFORE UPDATE OF tenant_id ON devices
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on devices'); END;
CREATE TRIGGER sessions_tenant_id_immutable BEFORE UPDATE OF tenant_id ON sessions
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on sessions'); END;
CREATE TRIGGER audit_log_tenant_id_immutable BEFORE UPDATE OF tenant_id ON audit_log
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on audit_log'); END;
CREATE TRIGGER product_categories_tenant_id_immutable BEFORE UPDATE OF tenant_id ON product_categories
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on product_categories'); END;
CREATE TRIGGER products_tenant_id_immutable BEFORE UPDATE OF tenant_id ON products
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on products'); END;
CREATE TRIGGER fitment_data_tenant_id_immutable BEFORE UPDATE OF tenant_id ON fitment_data
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on fitment_data'); END;
CREATE TRIGGER inventory_tenant_id_immutable BEFORE UPDATE OF tenant_id ON inventory
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on inventory'); END;
CREATE TRIGGER price_levels_tenant_id_immutable BEFORE UPDATE OF tenant_id ON price_levels
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on price_levels'); END;
CREATE TRIGGER customers_tenant_id_immutable BEFORE UPDATE OF tenant_id ON customers
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on customers'); END;
CREATE TRIGGER customer_vehicles_tenant_id_immutable BEFORE UPDATE OF tenant_id ON customer_vehicles
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on customer_vehicles'); END;
CREATE TRIGGER sales_tenant_id_immutable BEFORE UPDATE OF tenant_id ON sales
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on sales'); END;
CREATE TRIGGER sale_lines_tenant_id_immutable BEFORE UPDATE OF tenant_id ON sale_lines
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on sale_lines'); END;
CREATE TRIGGER gift_cards_tenant_id_immutable BEFORE UPDATE OF tenant_id ON gift_cards
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on gift_cards'); END;
CREATE TRIGGER sale_payments_tenant_id_immutable BEFORE UPDATE OF tenant_id ON sale_payments
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on sale_payments'); END;
CREATE TRIGGER gift_card_transactions_tenant_id_immutable BEFORE UPDATE OF tenant_id ON gift_card_transactions
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on gift_card_transactions'); END;
CREATE TRIGGER layaways_tenant_id_immutable BEFORE UPDATE OF tenant_id ON layaways
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on layaways'); END;
CREATE TRIGGER layaway_payments_tenant_id_immutable BEFORE UPDATE OF tenant_id ON layaway_payments
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on layaway_payments'); END;
CREATE TRIGGER work_orders_tenant_id_immutable BEFORE UPDATE OF tenant_id ON work_orders
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on work_orders'); END;
CREATE TRIGGER work_order_lines_tenant_id_immutable BEFORE UPDATE OF tenant_id ON work_order_lines
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on work_order_lines'); END;
CREATE TRIGGER commission_rules_tenant_id_immutable BEFORE UPDATE OF tenant_id ON commission_rules
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on commission_rules'); END;
CREATE TRIGGER commissions_tenant_id_immutable BEFORE UPDATE OF tenant_id ON commissions
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on commissions'); END;
CREATE TRIGGER loyalty_accounts_tenant_id_immutable BEFORE UPDATE OF tenant_id ON loyalty_accounts
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on loyalty_accounts'); END;
CREATE TRIGGER loyalty_transactions_tenant_id_immutable BEFORE UPDATE OF tenant_id ON loyalty_transactions
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on loyalty_transactions'); END;
CREATE TRIGGER credit_accounts_tenant_id_immutable BEFORE UPDATE OF tenant_id ON credit_accounts
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on credit_accounts'); END;
CREATE TRIGGER credit_transactions_tenant_id_immutable BEFORE UPDATE OF tenant_id ON credit_transactions
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on credit_transactions'); END;
CREATE TRIGGER promotions_tenant_id_immutable BEFORE UPDATE OF tenant_id ON promotions
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on promotions'); END;
CREATE TRIGGER promotion_usage_tenant_id_immutable BEFORE UPDATE OF tenant_id ON promotion_usage
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on promotion_usage'); END;
CREATE TRIGGER inventory_transactions_tenant_id_immutable BEFORE UPDATE OF tenant_id ON inventory_transactions
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on inventory_transactions'); END;
CREATE TRIGGER sync_log_tenant_id_immutable BEFORE UPDATE OF tenant_id ON sync_log
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on sync_log'); END;
CREATE TRIGGER sync_conflicts_tenant_id_immutable BEFORE UPDATE OF tenant_id ON sync_conflicts
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on sync_conflicts'); END;
CREATE TRIGGER pending_operations_tenant_id_immutable BEFORE UPDATE OF tenant_id ON pending_operations
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on pending_operations'); END;
CREATE TRIGGER backup_destinations_tenant_id_immutable BEFORE UPDATE OF tenant_id ON backup_destinations
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on backup_destinations'); END;
CREATE TRIGGER backup_settings_tenant_id_immutable BEFORE UPDATE OF tenant_id ON backup_settings
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on backup_settings'); END;
CREATE TRIGGER backups_tenant_id_immutable BEFORE UPDATE OF tenant_id ON backups
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on backups'); END;
CREATE TRIGGER restore_jobs_tenant_id_immutable BEFORE UPDATE OF tenant_id ON restore_jobs
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on restore_jobs'); END;
