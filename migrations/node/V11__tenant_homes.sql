-- Stage 2 of the isolation plan: a tenant lives either in this (shared) file or in a SQLite
-- file of its own beside it (`tenants.tier = 'dedicated'`). Node-level tables, like
-- node_state: they describe where tenants live, not a tenant's data, so they have no
-- tenant_id column and outlive an offboarded tenant's rows.

-- Every promotion and demotion that switched a route, with what it copied and how long the
-- copy it left behind (the shared rows after a promotion, the tenant's file after a demotion)
-- is kept for a way back. The route of a dedicated tenant is the file of its newest promotion.
CREATE TABLE tenant_moves (
    id          TEXT PRIMARY KEY CHECK (length(id) = 36),
    tenant      TEXT NOT NULL,
    direction   TEXT NOT NULL CHECK (direction IN ('promote', 'demote')),
    -- The tenant's own file, relative to the shared file's directory.
    file        TEXT NOT NULL CHECK (file <> ''),
    rows        INTEGER NOT NULL CHECK (rows >= 0),
    sha256      TEXT NOT NULL CHECK (length(sha256) = 64),
    -- 'auto' when the automatic rule made the move, else 'operator'.
    reason      TEXT NOT NULL CHECK (reason IN ('operator', 'auto')),
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    keep_until  TEXT NOT NULL,
    purged_at   TEXT
) WITHOUT ROWID;
CREATE INDEX tenant_moves_tenant ON tenant_moves(tenant, finished_at);

-- The route of a dedicated tenant, defined once: the file of its newest promotion.
CREATE VIEW tenant_homes AS
SELECT m.tenant, m.id AS move_id, m.file FROM tenant_moves m
WHERE m.direction = 'promote' AND NOT EXISTS (
    SELECT 1 FROM tenant_moves n
    WHERE n.tenant = m.tenant AND n.direction = 'promote'
      AND (n.finished_at, n.id) > (m.finished_at, m.id));

-- The node's rule for automatic promotion (the plan: promote at 50 users), off by default,
-- and the rollback window every move keeps.
CREATE TABLE storage_settings (
    singleton          INTEGER PRIMARY KEY CHECK (singleton = 1),
    auto_promote_users INTEGER CHECK (auto_promote_users IS NULL OR auto_promote_users >= 1),
    auto_promote_rows  INTEGER CHECK (auto_promote_rows IS NULL OR auto_promote_rows >= 1),
    keep_days          INTEGER NOT NULL DEFAULT 30 CHECK (keep_days >= 0),
    updated_at         TEXT NOT NULL
);
