-- Balances kept beside their ledgers, and the link from a refund or void to what it reverses.
--
-- A balance is the sum of its ledger: stock on hand of inventory_transactions, a gift card's of
-- gift_card_transactions, points of loyalty_transactions, credit owed of credit_transactions.
-- Summing at read time costs a scan of every row of the product or card (about 7 ms at
-- 100,000 rows); the POS reads these balances on every line it sells. So each ledger keeps its
-- sums here, maintained by triggers on every INSERT, UPDATE and DELETE of the ledger, whatever
-- writes it: the tenant handle, sync applying another terminal's rows, adoption, raw SQL. The
-- tables are derived state, local to the node, never synced (each node derives its own from the
-- ledger rows it holds), and `verify` checks every one against its ledger sum.
--
-- No foreign key to the product or card: the ledger row that the trigger sums already has one,
-- and the trigger copies its tenant_id, so a balance row cannot name another tenant's row.

CREATE TABLE stock_levels (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    product_id    TEXT NOT NULL,
    location      TEXT NOT NULL,
    on_hand_milli INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, product_id, location)
) WITHOUT ROWID;

CREATE TRIGGER inventory_transactions_stock_insert AFTER INSERT ON inventory_transactions BEGIN
    INSERT INTO stock_levels (tenant_id, product_id, location, on_hand_milli)
    VALUES (NEW.tenant_id, NEW.product_id, NEW.location, NEW.quantity_milli)
    ON CONFLICT (tenant_id, product_id, location)
    DO UPDATE SET on_hand_milli = on_hand_milli + excluded.on_hand_milli;
END;
CREATE TRIGGER inventory_transactions_stock_delete AFTER DELETE ON inventory_transactions BEGIN
    UPDATE stock_levels SET on_hand_milli = on_hand_milli - OLD.quantity_milli
    WHERE tenant_id = OLD.tenant_id AND product_id = OLD.product_id AND location = OLD.location;
END;
CREATE TRIGGER inventory_transactions_stock_update
AFTER UPDATE OF product_id, location, quantity_milli ON inventory_transactions BEGIN
    UPDATE stock_levels SET on_hand_milli = on_hand_milli - OLD.quantity_milli
    WHERE tenant_id = OLD.tenant_id AND product_id = OLD.product_id AND location = OLD.location;
    INSERT INTO stock_levels (tenant_id, product_id, location, on_hand_milli)
    VALUES (NEW.tenant_id, NEW.product_id, NEW.location, NEW.quantity_milli)
    ON CONFLICT (tenant_id, product_id, location)
    DO UPDATE SET on_hand_milli = on_hand_milli + excluded.on_hand_milli;
END;

CREATE TABLE gift_card_balances (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    gift_card_id  TEXT NOT NULL,
    balance_minor INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, gift_card_id)
) WITHOUT ROWID;

CREATE TRIGGER gift_card_transactions_balance_insert AFTER INSERT ON gift_card_transactions BEGIN
    INSERT INTO gift_card_balances (tenant_id, gift_card_id, balance_minor)
    VALUES (NEW.tenant_id, NEW.gift_card_id, NEW.amount_minor)
    ON CONFLICT (tenant_id, gift_card_id)
    DO UPDATE SET balance_minor = balance_minor + excluded.balance_minor;
END;
CREATE TRIGGER gift_card_transactions_balance_delete AFTER DELETE ON gift_card_transactions BEGIN
    UPDATE gift_card_balances SET balance_minor = balance_minor - OLD.amount_minor
    WHERE tenant_id = OLD.tenant_id AND gift_card_id = OLD.gift_card_id;
END;
CREATE TRIGGER gift_card_transactions_balance_update
AFTER UPDATE OF gift_card_id, amount_minor ON gift_card_transactions BEGIN
    UPDATE gift_card_balances SET balance_minor = balance_minor - OLD.amount_minor
    WHERE tenant_id = OLD.tenant_id AND gift_card_id = OLD.gift_card_id;
    INSERT INTO gift_card_balances (tenant_id, gift_card_id, balance_minor)
    VALUES (NEW.tenant_id, NEW.gift_card_id, NEW.amount_minor)
    ON CONFLICT (tenant_id, gift_card_id)
    DO UPDATE SET balance_minor = balance_minor + excluded.balance_minor;
END;

CREATE TABLE loyalty_balances (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    account_id TEXT NOT NULL,
    points     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, account_id)
) WITHOUT ROWID;

CREATE TRIGGER loyalty_transactions_balance_insert AFTER INSERT ON loyalty_transactions BEGIN
    INSERT INTO loyalty_balances (tenant_id, account_id, points)
    VALUES (NEW.tenant_id, NEW.account_id, NEW.points)
    ON CONFLICT (tenant_id, account_id) DO UPDATE SET points = points + excluded.points;
END;
CREATE TRIGGER loyalty_transactions_balance_delete AFTER DELETE ON loyalty_transactions BEGIN
    UPDATE loyalty_balances SET points = points - OLD.points
    WHERE tenant_id = OLD.tenant_id AND account_id = OLD.account_id;
END;
CREATE TRIGGER loyalty_transactions_balance_update
AFTER UPDATE OF account_id, points ON loyalty_transactions BEGIN
    UPDATE loyalty_balances SET points = points - OLD.points
    WHERE tenant_id = OLD.tenant_id AND account_id = OLD.account_id;
    INSERT INTO loyalty_balances (tenant_id, account_id, points)
    VALUES (NEW.tenant_id, NEW.account_id, NEW.points)
    ON CONFLICT (tenant_id, account_id) DO UPDATE SET points = points + excluded.points;
END;

CREATE TABLE credit_balances (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    account_id  TEXT NOT NULL,
    owed_minor  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, account_id)
) WITHOUT ROWID;

CREATE TRIGGER credit_transactions_balance_insert AFTER INSERT ON credit_transactions BEGIN
    INSERT INTO credit_balances (tenant_id, account_id, owed_minor)
    VALUES (NEW.tenant_id, NEW.account_id, NEW.amount_minor)
    ON CONFLICT (tenant_id, account_id) DO UPDATE SET owed_minor = owed_minor + excluded.owed_minor;
END;
CREATE TRIGGER credit_transactions_balance_delete AFTER DELETE ON credit_transactions BEGIN
    UPDATE credit_balances SET owed_minor = owed_minor - OLD.amount_minor
    WHERE tenant_id = OLD.tenant_id AND account_id = OLD.account_id;
END;
CREATE TRIGGER credit_transactions_balance_update
AFTER UPDATE OF account_id, amount_minor ON credit_transactions BEGIN
    UPDATE credit_balances SET owed_minor = owed_minor - OLD.amount_minor
    WHERE tenant_id = OLD.tenant_id AND account_id = OLD.account_id;
    INSERT INTO credit_balances (tenant_id, account_id, owed_minor)
    VALUES (NEW.tenant_id, NEW.account_id, NEW.amount_minor)
    ON CONFLICT (tenant_id, account_id) DO UPDATE SET owed_minor = owed_minor + excluded.owed_minor;
END;

CREATE TRIGGER stock_levels_tenant_id_immutable BEFORE UPDATE OF tenant_id ON stock_levels
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on stock_levels'); END;
CREATE TRIGGER gift_card_balances_tenant_id_immutable BEFORE UPDATE OF tenant_id ON gift_card_balances
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on gift_card_balances'); END;
CREATE TRIGGER loyalty_balances_tenant_id_immutable BEFORE UPDATE OF tenant_id ON loyalty_balances
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on loyalty_balances'); END;
CREATE TRIGGER credit_balances_tenant_id_immutable BEFORE UPDATE OF tenant_id ON credit_balances
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on credit_balances'); END;

-- Balances of rows written before this version (a store upgraded in place).
INSERT INTO stock_levels (tenant_id, product_id, location, on_hand_milli)
SELECT tenant_id, product_id, location, sum(quantity_milli) FROM inventory_transactions
GROUP BY tenant_id, product_id, location;
INSERT INTO gift_card_balances (tenant_id, gift_card_id, balance_minor)
SELECT tenant_id, gift_card_id, sum(amount_minor) FROM gift_card_transactions
GROUP BY tenant_id, gift_card_id;
INSERT INTO loyalty_balances (tenant_id, account_id, points)
SELECT tenant_id, account_id, sum(points) FROM loyalty_transactions GROUP BY tenant_id, account_id;
INSERT INTO credit_balances (tenant_id, account_id, owed_minor)
SELECT tenant_id, account_id, sum(amount_minor) FROM credit_transactions
GROUP BY tenant_id, account_id;

-- A refund or void is a new sale whose lines reverse lines of the original; the original is
-- never edited. One row per reversed line says how much of it was reversed, so a second refund
-- of the same line is limited to what is left. A ledger: two terminals refunding offline both
-- keep their refunds, and an over-refund is a conflict for a person.
CREATE TABLE sale_reversals (
    id                TEXT NOT NULL,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    sale_id           TEXT NOT NULL,
    sale_line_id      TEXT NOT NULL,
    reversal_sale_id  TEXT NOT NULL,
    reversal_line_id  TEXT NOT NULL,
    kind              TEXT NOT NULL CHECK (kind = 'refund' OR kind = 'void'),
    quantity_milli    INTEGER NOT NULL CHECK (quantity_milli > 0),
    created_at        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, sale_id) REFERENCES sales(tenant_id, id),
    FOREIGN KEY (tenant_id, sale_line_id) REFERENCES sale_lines(tenant_id, id),
    FOREIGN KEY (tenant_id, reversal_sale_id) REFERENCES sales(tenant_id, id),
    FOREIGN KEY (tenant_id, reversal_line_id) REFERENCES sale_lines(tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX sale_reversals_line ON sale_reversals(tenant_id, sale_line_id, quantity_milli);
CREATE INDEX sale_reversals_sale ON sale_reversals(tenant_id, sale_id);
CREATE INDEX sale_reversals_reversal_sale ON sale_reversals(tenant_id, reversal_sale_id);
CREATE INDEX sale_reversals_reversal_line ON sale_reversals(tenant_id, reversal_line_id);
CREATE TRIGGER sale_reversals_tenant_id_immutable BEFORE UPDATE OF tenant_id ON sale_reversals
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on sale_reversals'); END;
