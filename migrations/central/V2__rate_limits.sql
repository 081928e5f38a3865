-- A tenant's own request rate for the API, a token bucket: up to `rate_limit_requests` per
-- `rate_limit_period_secs`, in bursts of up to `rate_limit_requests`. Both NULL: the server's
-- `serve --rate-limit` default applies. Kept with the plan's other limits so every server
-- process reads the same value.

ALTER TABLE tenants ADD COLUMN rate_limit_requests INTEGER
    CHECK (rate_limit_requests IS NULL OR rate_limit_requests >= 1);
ALTER TABLE tenants ADD COLUMN rate_limit_period_secs INTEGER
    CHECK ((rate_limit_period_secs IS NULL) = (rate_limit_requests IS NULL)
           AND (rate_limit_period_secs IS NULL OR rate_limit_period_secs >= 1));
