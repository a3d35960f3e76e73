-- Tenants (issue 9): every projection row carries the tenant of the aggregate
-- it comes from, and every API query filters on the caller's tenant. Rows
-- projected before tenants existed belong to `default`, as do the events they
-- came from (their created events have no tenant: read as `default`).
-- Keys are unique per tenant (two tenants may both have an agent `alice`),
-- and the indexes the API's queries use lead with the tenant.
-- depends: 0001_call_projections 0002_callcentre_projections 0003_projection_dead_letters 0004_service_heartbeats 0005_identities 0006_user_devices

ALTER TABLE agent_state ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE agent_state DROP CONSTRAINT agent_state_key_key;
CREATE UNIQUE INDEX agent_state_tenant_key ON agent_state (tenant, key);

ALTER TABLE agent_state_intervals ADD COLUMN tenant text NOT NULL DEFAULT 'default';

ALTER TABLE queue_live ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE queue_live DROP CONSTRAINT queue_live_key_key;
CREATE UNIQUE INDEX queue_live_tenant_key ON queue_live (tenant, key);

ALTER TABLE queue_members ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE queue_calls ADD COLUMN tenant text NOT NULL DEFAULT 'default';

ALTER TABLE call_live ADD COLUMN tenant text NOT NULL DEFAULT 'default';
CREATE INDEX call_live_tenant_started ON call_live (tenant, started_at, call_id);

ALTER TABLE call_events ADD COLUMN tenant text NOT NULL DEFAULT 'default';

ALTER TABLE callcentre_events ADD COLUMN tenant text NOT NULL DEFAULT 'default';

UPDATE cdr SET tenant = 'default' WHERE tenant IS NULL;
ALTER TABLE cdr ALTER COLUMN tenant SET DEFAULT 'default';
ALTER TABLE cdr ALTER COLUMN tenant SET NOT NULL;
CREATE INDEX cdr_tenant_final_by_start ON cdr (tenant, started_at, call_id)
    WHERE ended_at IS NOT NULL;
