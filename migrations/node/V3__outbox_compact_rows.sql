-- The outbox, rebuilt for a cheaper write: every synced change appends one of these rows in its
-- own transaction. SQLite cannot change a table's kind or its constraints in place, so this
-- follows its table-rebuild procedure: create the new table, copy the rows over (converting the
-- stamp), drop the old one, rename the new one, create the trigger again. No table refers to
-- pending_operations, so dropping it breaks no foreign key; its own foreign keys are declared
-- again and each copied row is checked against them.
--
-- * A rowid table again. An operation carries the written row as JSON, about 600 bytes. A
--   WITHOUT ROWID table keeps whole rows as the dividers of its interior pages too (SQLite
--   advises it for rows under a twentieth of a page), so appends split pages all the way up
--   every few writes. Rows now append to a rowid b-tree whose dividers are integers; the key
--   (tenant_id, hlc) is a small index of its own.
-- * hlc is the stamp without its node, MMMMMMMMMMMMMMMM.CCCCCC (fixed width, so text order is
--   still clock order): the node of a stamp this node made is device_id on the same row, and
--   the crate puts the two back together into the wire form. A stamp of another node (say, a
--   row copied in by adoption) is kept whole and read as it is.
-- * No json_valid CHECK on columns: the crate validates every operation against the catalog
--   before writing it, and writes serde_json's own output; the CHECK parsed it again each time.
CREATE TABLE pending_operations_v3 (
    id            TEXT NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    device_id     TEXT NOT NULL,
    hlc           TEXT NOT NULL,
    actor_user_id TEXT,
    table_name    TEXT NOT NULL,
    row_id        TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind = 'insert' OR kind = 'update' OR kind = 'delete' OR kind = 'ledger_append'),
    columns       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    synced_at     TEXT,
    seq           INTEGER,
    -- Clock order is push order; stamps are unique per node and tenant.
    PRIMARY KEY (tenant_id, hlc),
    FOREIGN KEY (tenant_id, actor_user_id) REFERENCES users(tenant_id, id)
);

INSERT INTO pending_operations_v3 (id, tenant_id, device_id, hlc, actor_user_id, table_name,
                                   row_id, kind, columns, created_at, synced_at, seq)
SELECT id, tenant_id, device_id,
       CASE WHEN substr(hlc, 24) = '@' || device_id THEN substr(hlc, 1, 23) ELSE hlc END,
       actor_user_id, table_name, row_id, kind, columns, created_at, synced_at, seq
FROM pending_operations
ORDER BY tenant_id, hlc;

DROP TABLE pending_operations;

ALTER TABLE pending_operations_v3 RENAME TO pending_operations;

CREATE TRIGGER pending_operations_tenant_id_immutable BEFORE UPDATE OF tenant_id ON pending_operations
WHEN NEW.tenant_id IS NOT OLD.tenant_id BEGIN SELECT RAISE(ABORT, 'tenant_id is immutable on pending_operations'); END;
