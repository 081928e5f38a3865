-- A terminal that pulls a whole tenant at once (a new till joining) sets the secondary indexes
-- of the tables it fills aside and builds them once at the end: one sorted build instead of a
-- random insert into every index for every row. This table holds what was set aside, written
-- in the transaction that dropped them, so a crash mid-pull leaves the definitions behind and
-- the next open builds them again. Node-level, like node_state: indexes span every tenant.
CREATE TABLE deferred_indexes (
    name        TEXT PRIMARY KEY,
    table_name  TEXT NOT NULL,
    sql         TEXT NOT NULL CHECK (sql LIKE 'CREATE INDEX %'),
    deferred_at TEXT NOT NULL
);
