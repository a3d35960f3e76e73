-- Issue 11 §3/§4: the tenant's event history in store order (GET /v1/events,
-- `dialtone export events`). Both event tables are read per tenant by position
-- (each application's notification log numbers its own events); without these
-- indexes a page after a position scans every tenant's events.
-- depends: 0010_queue_visits 0012_projection_notify

CREATE INDEX call_events_tenant_position ON call_events (tenant, position);
CREATE INDEX callcentre_events_tenant_position ON callcentre_events (tenant, position);

-- Issue 11 §6: a CDR's wrap_up_s comes from queue_handling by call id
-- (projections/cdr.py fill_wrap_up).
CREATE INDEX queue_handling_call ON queue_handling (call_id);
