-- pos-central on PostgreSQL: the same tables as the SQLite store (migrations/central), for
-- several server processes over one database.
--
-- Every key of every table leads with tenant_id, so the schema can be distributed by tenant
-- (Citus-style: each table distributed on tenant_id, colocated) without change. Operations,
-- settings and timestamps are kept as text, exactly as the SQLite store keeps them: a re-sent
-- operation is recognised by comparing its JSON text, and jsonb would reorder it (and refuses
-- the \u0000 escape that JSON allows).

CREATE TABLE tenants (
    tenant_id              text PRIMARY KEY CHECK (tenant_id ~ '^[a-z0-9-]{1,64}$'),
    name                   text NOT NULL CHECK (length(name) > 0),
    status                 text NOT NULL DEFAULT 'active'
                           CHECK (status IN ('active', 'suspended', 'cancelled')),
    plan                   text NOT NULL CHECK (plan IN ('free', 'pro', 'enterprise')),
    max_users              bigint NOT NULL CHECK (max_users >= 0),
    max_api_calls_month    bigint NOT NULL CHECK (max_api_calls_month >= 0),
    -- Both NULL: the server's `serve --rate-limit` default applies.
    rate_limit_requests    bigint CHECK (rate_limit_requests IS NULL OR rate_limit_requests >= 1),
    rate_limit_period_secs bigint
                           CHECK ((rate_limit_period_secs IS NULL) = (rate_limit_requests IS NULL)
                                  AND (rate_limit_period_secs IS NULL OR rate_limit_period_secs >= 1)),
    settings               text NOT NULL,
    created_at             text NOT NULL,
    updated_at             text NOT NULL
);

-- The last sequence number given in each tenant's log. A push locks its tenant's row for the
-- whole transaction and numbers its operations from it, so pushes of one tenant (from any
-- number of server processes) commit one after another, in the order of their numbers: a
-- reader following the log after its cursor never sees a later number before an earlier one.
-- A PostgreSQL SEQUENCE would hand numbers out before commit, and transactions could commit
-- out of order.
CREATE TABLE tenant_heads (
    tenant_id text PRIMARY KEY REFERENCES tenants (tenant_id),
    head      bigint NOT NULL DEFAULT 0 CHECK (head >= 0)
);

CREATE TABLE operations (
    tenant_id   text NOT NULL REFERENCES tenants (tenant_id),
    seq         bigint NOT NULL CHECK (seq >= 1),
    id          text NOT NULL,
    device_id   text NOT NULL,
    hlc         text NOT NULL,
    table_name  text NOT NULL,
    row_id      text NOT NULL,
    kind        text NOT NULL,
    -- The operation exactly as accepted (JSON text), served back to the other nodes.
    body        text NOT NULL,
    received_at text NOT NULL,
    PRIMARY KEY (tenant_id, seq),
    -- Duplicates are per tenant: a global check would tell one tenant another's ids exist.
    UNIQUE (tenant_id, id)
);

-- API calls per tenant per calendar month (UTC), for plan limits.
CREATE TABLE tenant_usage (
    tenant_id text NOT NULL REFERENCES tenants (tenant_id),
    month     text NOT NULL CHECK (length(month) = 7),
    api_calls bigint NOT NULL DEFAULT 0 CHECK (api_calls >= 0),
    PRIMARY KEY (tenant_id, month)
);
