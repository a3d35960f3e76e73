-- Issue 9, the last two pieces of access control:
--
-- 1. The agents of a call in progress (call_live.agents), so that a user of
--    role agent can read the calls they handle or handled and no other. It is
--    filled from the call's AgentConnected events (the agent whose leg was
--    bridged to the caller; a transfer to another agent adds that agent), in
--    the order they connected, as the CDR's `agents` already is. Rows already
--    live take their agents from their CDR row (the same fold).
-- 2. The store positions (notification ids) of the events each audited command
--    stored (audit_log.positions) and the event store they are positions in
--    (audit_log.event_store: the application's name, e.g. CallCentreService;
--    each application numbers its own notification log), so an event is linked
--    to the actor and the request id of the command that produced it, exactly,
--    not only by aggregate.
-- depends: 0008_user_agent

ALTER TABLE call_live ADD COLUMN agents text[] NOT NULL DEFAULT '{}';
UPDATE call_live l SET agents = c.agents FROM cdr c
WHERE c.call_id = l.call_id AND c.agents <> '{}';
-- No index on agents: an agent's query also names its tenant, and call_live holds
-- only the calls in progress; a GIN index would tax every write of this hot table.

ALTER TABLE audit_log ADD COLUMN event_store text;
ALTER TABLE audit_log ADD COLUMN positions bigint[] NOT NULL DEFAULT '{}';
-- A timeline looks its events' positions up here (`event_store = ... AND positions @> ARRAY[...]`).
CREATE INDEX audit_log_positions ON audit_log USING gin (positions);
