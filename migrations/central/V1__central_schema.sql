-- pos-central's own database: the tenants it serves and, per tenant, the log of operations
-- pushed by their nodes, each with a gap-free sequence number starting at 1.

CREATE TABLE tenants (
    id                  TEXT PRIMARY KEY NOT NULL
                        CHECK (length(id) BETWEEN 1 AND 64 AND id NOT GLOB '*[^a-z0-9-]*'),
    name                TEXT NOT NULL CHECK (length(name) > 0),
    status              TEXT NOT NULL DEFAULT 'active'
                        CHECK (status = 'active' OR status = 'suspended' OR status = 'cancelled'),
    plan                TEXT NOT NULL CHECK (plan = 'free' OR plan = 'pro' OR plan = 'enterprise'),
    max_users           INTEGER NOT NULL CHECK (max_users >= 0),
    max_api_calls_month INTEGER NOT NULL CHECK (max_api_calls_month >= 0),
    settings            TEXT NOT NULL CHECK (json_valid(settings)),
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE operations (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    id          TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    hlc         TEXT NOT NULL,
    table_name  TEXT NOT NULL,
    row_id      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    -- The operation exactly as accepted (JSON), served back to the other nodes.
    body        TEXT NOT NULL CHECK (json_valid(body)),
    received_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq),
    -- Duplicates are per tenant: a global check would tell one tenant another's ids exist.
    UNIQUE (tenant_id, id)
) WITHOUT ROWID;

-- API calls per tenant per calendar month (UTC), for plan limits.
CREATE TABLE tenant_usage (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    month     TEXT NOT NULL CHECK (length(month) = 7),
    api_calls INTEGER NOT NULL DEFAULT 0 CHECK (api_calls >= 0),
    PRIMARY KEY (tenant_id, month)
) WITHOUT ROWID;
