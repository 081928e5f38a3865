-- Node-level state: one row per database file, not tenant data. It names the node (the device
-- id its operations carry) and persists its hybrid logical clock, so stamps never go backwards
-- across restarts or when the wall clock is set back.
CREATE TABLE node_state (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    node_id     TEXT NOT NULL CHECK (length(node_id) = 36),
    hlc_millis  INTEGER NOT NULL DEFAULT 0 CHECK (hlc_millis >= 0),
    hlc_counter INTEGER NOT NULL DEFAULT 0 CHECK (hlc_counter >= 0)
);

-- The outbox is read per tenant in clock order; the stamp is unique per node.
CREATE UNIQUE INDEX pending_operations_hlc ON pending_operations(tenant_id, hlc);
