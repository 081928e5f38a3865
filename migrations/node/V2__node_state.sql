-- Node-level state: one row per database file, not tenant data. It names the node (the device
-- id its operations carry) and keeps the floor of its hybrid logical clock: remote stamps it
-- has observed, and the last stamp of operations removed from the outbox. Stamps of pending
-- operations are the rest of the clock's memory, so an ordinary write does not rewrite this row.
CREATE TABLE node_state (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    node_id     TEXT NOT NULL CHECK (length(node_id) = 36),
    hlc_millis  INTEGER NOT NULL DEFAULT 0 CHECK (hlc_millis >= 0),
    hlc_counter INTEGER NOT NULL DEFAULT 0 CHECK (hlc_counter >= 0)
);
