-- Read models built from the call-centre events (CallCentreService: agents,
-- queues, IVR menus, numbers, dialplans). Every table is a projection: it can
-- be dropped and rebuilt from the event store.
-- depends: 0001_call_projections

-- Every call-centre event, in each aggregate's order: the audit trail analysts
-- replay ("what did this queue look like at 14:05"), and where an event that
-- arrived ahead of a missing one waits until the gap is filled.
CREATE TABLE callcentre_events (
    aggregate_id uuid        NOT NULL,
    version      integer     NOT NULL,
    kind         text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    event_id     uuid        NOT NULL,
    position     bigint      NOT NULL,
    type         text        NOT NULL,
    data         jsonb       NOT NULL,
    projected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_id, version, occurred_at)
);
CREATE INDEX callcentre_events_position ON callcentre_events (position);
CREATE INDEX callcentre_events_kind ON callcentre_events (kind, occurred_at);

-- One row per agent: its current state and since when.
CREATE TABLE agent_state (
    agent_id          uuid        PRIMARY KEY,
    key               text        NOT NULL UNIQUE,
    name              text        NOT NULL,
    state             text        NOT NULL,
    state_since       timestamptz NOT NULL,
    state_version     integer     NOT NULL,  -- the event that started the state
    device_uri        text,
    pause_reason      text,
    current_call_id   uuid,
    current_queue_id  uuid,
    offer_deadline    timestamptz,
    wrap_up_until     timestamptz,
    skills            jsonb       NOT NULL DEFAULT '{}',
    auto_pause_after  integer,
    missed_offers     integer     NOT NULL DEFAULT 0,
    calls_handled     integer     NOT NULL DEFAULT 0,
    last_version      integer     NOT NULL,
    last_position     bigint      NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_state_state ON agent_state (state);

-- One row per agent per state period, for historical reports: an interval is
-- open (ended_at NULL) until the agent's next state starts.
CREATE TABLE agent_state_intervals (
    agent_id         uuid        NOT NULL,
    started_version  integer     NOT NULL,
    started_at       timestamptz NOT NULL,
    state            text        NOT NULL,
    reason           text,       -- the pause reason, for paused periods
    call_id          uuid,
    queue_id         uuid,
    ended_at         timestamptz,
    duration_s       double precision,
    PRIMARY KEY (agent_id, started_version, started_at)
);
CREATE INDEX agent_state_intervals_open ON agent_state_intervals (agent_id) WHERE ended_at IS NULL;

-- One row per queue: its settings and the running tally (see domain QueueTally
-- for the accounting identity).
CREATE TABLE queue_live (
    queue_id                uuid        PRIMARY KEY,
    key                     text        NOT NULL UNIQUE,
    name                    text        NOT NULL,
    strategy                text        NOT NULL,
    service_level_s         double precision NOT NULL,
    max_wait_s              double precision,
    overflow_kind           text,
    overflow_value          text,
    wrap_up_s               double precision NOT NULL,
    offer_timeout_s         double precision NOT NULL,
    music_on_hold           text        NOT NULL,
    announce_position       boolean     NOT NULL,
    required_skills         jsonb       NOT NULL DEFAULT '{}',
    offered                 integer     NOT NULL DEFAULT 0,
    answered                integer     NOT NULL DEFAULT 0,
    answered_within_sl      integer     NOT NULL DEFAULT 0,
    abandoned               integer     NOT NULL DEFAULT 0,
    abandoned_within_sl     integer     NOT NULL DEFAULT 0,
    overflowed              integer     NOT NULL DEFAULT 0,
    transferred_in          integer     NOT NULL DEFAULT 0,
    transferred_out         integer     NOT NULL DEFAULT 0,
    requeued                integer     NOT NULL DEFAULT 0,
    agent_offers            integer     NOT NULL DEFAULT 0,
    answered_wait_total_s   double precision NOT NULL DEFAULT 0,
    abandoned_wait_total_s  double precision NOT NULL DEFAULT 0,
    created_at              timestamptz NOT NULL,
    last_version            integer     NOT NULL,
    last_position           bigint      NOT NULL,
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- Queue memberships (part of queue_live).
CREATE TABLE queue_members (
    queue_id      uuid    NOT NULL,
    agent_id      uuid    NOT NULL,
    penalty       integer NOT NULL,
    last_offered  integer,
    PRIMARY KEY (queue_id, agent_id)
);
CREATE INDEX queue_members_agent ON queue_members (agent_id);

-- Calls in a queue now (waiting or ringing an agent), in service order
-- (part of queue_live); the wait is now() - enqueued_at.
CREATE TABLE queue_calls (
    queue_id          uuid        NOT NULL,
    call_id           uuid        NOT NULL,
    position          integer     NOT NULL,
    priority          integer     NOT NULL,
    enqueued_at       timestamptz NOT NULL,
    transferred_from  uuid,
    ringing_agents    uuid[]      NOT NULL DEFAULT '{}',
    PRIMARY KEY (queue_id, call_id)
);
