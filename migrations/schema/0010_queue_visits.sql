-- Issue 10: the facts the supervisor's figures (and issue 11's reports) are
-- computed from, and the settings that frame them.
--
-- queue_visits: one row per visit of a call to a queue (a call transferred from
-- one queue to another has a visit in each), written from the Queue events by
-- the call-centre projection group; `outcome` is NULL while the call is in the
-- queue. queue_handling: one row per call an agent took from a queue (talk and
-- wrap-up, from the Agent events), joined to its visit on (queue, call, agent).
-- Both are projections: `dialtone rebuild` drops and rebuilds them with their
-- group. projections/kpi.py holds every formula over them.
-- depends: 0002_callcentre_projections 0005_identities 0007_tenants

CREATE TABLE queue_visits (
    queue_id          uuid        NOT NULL,
    call_id           uuid        NOT NULL,
    offered_at        timestamptz NOT NULL,  -- Queue.CallEnqueued
    tenant            text        NOT NULL DEFAULT 'default',
    offered_version   integer     NOT NULL,  -- the queue version that enqueued it
    transferred_in    boolean     NOT NULL DEFAULT false,
    outcome           text        CHECK (outcome IN ('answered', 'abandoned', 'short_abandoned',
                                                     'overflowed', 'transferred_out')),
    left_at           timestamptz,           -- answered, abandoned, overflowed or moved on
    wait_s            double precision,      -- as the queue measured it (event wait_s)
    service_level_s   double precision,      -- T when the call was answered or abandoned
    short_abandon_s   double precision NOT NULL,  -- the queue's threshold when it was offered
    agent_id          uuid,                  -- who answered
    last_position     bigint      NOT NULL,
    PRIMARY KEY (queue_id, call_id, offered_at)
);
CREATE INDEX queue_visits_tenant_offered ON queue_visits (tenant, offered_at);
CREATE INDEX queue_visits_tenant_left ON queue_visits (tenant, left_at);

CREATE TABLE queue_handling (
    agent_id          uuid        NOT NULL,
    call_id           uuid        NOT NULL,
    accepted_at       timestamptz NOT NULL,  -- Agent.OfferAccepted
    tenant            text        NOT NULL DEFAULT 'default',
    queue_id          uuid,                  -- NULL: a direct call, not from a queue
    ended_at          timestamptz,           -- Agent.CallEnded
    talk_s            double precision,      -- ended_at - accepted_at
    wrap_up_ended_at  timestamptz,           -- the state the agent entered after wrap-up
    wrap_up_s         double precision,      -- 0 when the call had no after-call work
    last_position     bigint      NOT NULL,
    PRIMARY KEY (agent_id, call_id, accepted_at)
);
CREATE INDEX queue_handling_tenant_ended ON queue_handling (tenant, ended_at);
CREATE INDEX queue_handling_visit ON queue_handling (queue_id, call_id, agent_id);

-- The day "today" starts at local midnight of the tenant's zone (an IANA name,
-- checked with zoneinfo by whatever sets it: projections.kpi.check_time_zone).
ALTER TABLE tenants ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';

-- A call abandoned sooner than this (seconds) is a short abandon, counted apart.
ALTER TABLE queue_live ADD COLUMN short_abandon_s double precision NOT NULL DEFAULT 5;

-- Missed offers per agent and window (projections/kpi.py AGENT_MISSED) without
-- scanning every call-centre event.
CREATE INDEX callcentre_events_offer_missed ON callcentre_events (tenant, occurred_at)
    WHERE type = 'dialtone.agent.offer_missed.v1';
