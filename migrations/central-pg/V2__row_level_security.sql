-- Row-level security on every tenant table, as a second wall behind the API's own
-- `WHERE tenant_id = ...`: each transaction names its tenant in `app.current_tenant`
-- (set_config(..., true), local to the transaction), and a row of another tenant is neither
-- read nor written. FORCE: the policies hold for the tables' owner too, as the server usually
-- connects as the role that migrated them; only a superuser or a BYPASSRLS role passes.
-- With no tenant set, current_setting(..., true) is NULL or empty and matches no row.

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (tenant_id = current_setting('app.current_tenant', true))
    WITH CHECK (tenant_id = current_setting('app.current_tenant', true));
-- The tenant list (`pos-central tenant list`) reads with '*', which is not a tenant id: it may
-- read tenants' rows, never change them, and no other table admits it.
CREATE POLICY tenant_list ON tenants FOR SELECT
    USING (current_setting('app.current_tenant', true) = '*');

ALTER TABLE tenant_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_heads
    USING (tenant_id = current_setting('app.current_tenant', true))
    WITH CHECK (tenant_id = current_setting('app.current_tenant', true));

ALTER TABLE operations ENABLE ROW LEVEL SECURITY;
ALTER TABLE operations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON operations
    USING (tenant_id = current_setting('app.current_tenant', true))
    WITH CHECK (tenant_id = current_setting('app.current_tenant', true));

ALTER TABLE tenant_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_usage
    USING (tenant_id = current_setting('app.current_tenant', true))
    WITH CHECK (tenant_id = current_setting('app.current_tenant', true));
