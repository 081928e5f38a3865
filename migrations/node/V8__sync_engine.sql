-- The sync engine's bookkeeping: which operations belong to one local transaction, the stamps
-- that let a late, older write lose to a newer one, and where each tenant's pull has reached.

-- The operations of one local transaction travel and are applied elsewhere as one unit:
-- txn_id is the id of the transaction's first operation. base is, for an update, the newest
-- stamp the row had on this node when it was changed (what the writer had seen), so a receiver
-- can tell a concurrent edit from one made over its own. set_aside holds the server's reason
-- when it refused the operation for good: it is kept for a person and no longer pushed.
ALTER TABLE pending_operations ADD COLUMN txn_id TEXT;
ALTER TABLE pending_operations ADD COLUMN base TEXT;
ALTER TABLE pending_operations ADD COLUMN set_aside TEXT;

-- Per tenant: the last log sequence applied, the server's head as last seen, and the last
-- outcome of each direction. Status reads it; it never moves backwards.
CREATE TABLE sync_state (
    id               TEXT NOT NULL,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    cursor           INTEGER NOT NULL DEFAULT 0 CHECK (cursor >= 0),
    server_high      INTEGER NOT NULL DEFAULT 0 CHECK (server_high >= 0),
    last_push_at     TEXT,
    last_pull_at     TEXT,
    last_progress_at TEXT,
    online           INTEGER NOT NULL DEFAULT 0 CHECK (online = 0 OR online = 1),
    error_class      TEXT CHECK (error_class IS NULL OR error_class = 'transient' OR error_class = 'auth' OR error_class = 'suspended' OR error_class = 'refused' OR error_class = 'fatal'),
    error_step       TEXT,
    error            TEXT,
    error_at         TEXT,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id)
) WITHOUT ROWID;

-- Per master-data row (and per updated document), keyed by the row's own id: the hybrid
-- logical clock stamp of each column's value ({"column": stamp}; "" is the row's insert,
-- "#deleted" its deletion) and, once deleted, the row's last values, so a sale that arrives
-- later for a deleted product can bring it back instead of being lost.
CREATE TABLE sync_stamps (
    id         TEXT NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    table_name TEXT NOT NULL,
    stamps     TEXT NOT NULL CHECK (json_valid(stamps)),
    tombstone  TEXT CHECK (tombstone IS NULL OR json_valid(tombstone)),
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;

CREATE TRIGGER sync_state_tenant_id_immutable BEFORE UPDATE OF tenant_id ON sync_state
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on sync_state'); END;
CREATE TRIGGER sync_stamps_tenant_id_immutable BEFORE UPDATE OF tenant_id ON sync_stamps
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on sync_stamps'); END;
