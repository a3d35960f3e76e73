-- Read models built from Call events. Every table is a projection: it can be
-- dropped and rebuilt from the event store (`dialtone rebuild NAME`).
-- Time-partitioning columns are part of each primary key so the same tables
-- become TimescaleDB hypertables on the Timescale path.

-- Every Call event, for timelines. Deduplicated on (call_id, version).
CREATE TABLE call_events (
    call_id      uuid        NOT NULL,
    version      integer     NOT NULL,
    occurred_at  timestamptz NOT NULL,
    event_id     uuid        NOT NULL,
    position     bigint      NOT NULL,
    type         text        NOT NULL,
    data         jsonb       NOT NULL,
    projected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (call_id, version, occurred_at)
);
CREATE INDEX call_events_position ON call_events (position);

-- One row per call; final once ended_at is set. Also the folded state that the
-- live projection advances one version at a time (last_version).
CREATE TABLE cdr (
    call_id          uuid        NOT NULL,
    started_at       timestamptz NOT NULL,
    tenant           text,
    direction        text        NOT NULL,
    caller           text        NOT NULL,
    callee           text        NOT NULL,
    final_callee     text,
    trunk            text,
    sip_call_id      text        NOT NULL,
    status           text        NOT NULL,
    queue            text,
    agents           text[]      NOT NULL DEFAULT '{}',
    queued_at        timestamptz,
    ringing_at       timestamptz,
    answered_at      timestamptz,
    ended_at         timestamptz,
    wait_s           double precision,
    talk_s           double precision,
    hold_s           double precision NOT NULL DEFAULT 0,
    hold_count       integer     NOT NULL DEFAULT 0,
    hold_started_at  timestamptz,
    wrap_up_s        double precision,
    disposition      text,
    hangup_cause     text,
    hangup_side      text,
    sip_status       integer,
    transfers        jsonb       NOT NULL DEFAULT '[]',
    recording_ref    text,
    mos              double precision,
    jitter_ms        double precision,
    loss_pct         double precision,
    rtt_ms           double precision,
    last_version     integer     NOT NULL,
    last_position    bigint      NOT NULL,
    PRIMARY KEY (call_id, started_at)
);
CREATE INDEX cdr_final_by_start ON cdr (started_at, call_id) WHERE ended_at IS NOT NULL;
CREATE INDEX cdr_caller ON cdr (caller, started_at);
CREATE INDEX cdr_callee ON cdr (callee, started_at);

-- Calls in progress: a small hot table for dashboards; a row leaves when the call ends.
CREATE TABLE call_live (
    call_id         uuid        PRIMARY KEY,
    status          text        NOT NULL,
    direction       text        NOT NULL,
    caller          text        NOT NULL,
    callee          text        NOT NULL,
    target          text,
    trunk           text,
    queue           text,
    started_at      timestamptz NOT NULL,
    answered_at     timestamptz,
    on_hold_since   timestamptz,
    last_version    integer     NOT NULL,
    last_position   bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX call_live_status ON call_live (status);

-- Calls whose newer events arrived before an older one: their later events
-- wait in call_events and are folded in once the gap is filled.
CREATE TABLE call_projection_gaps (
    call_id     uuid        PRIMARY KEY,
    since       timestamptz NOT NULL DEFAULT now()
);

-- How far each projection has applied each source (the in-process runner's
-- notification log, or a Kafka topic-partition), written in the same
-- transaction as the projection's rows.
CREATE TABLE projection_positions (
    projection  text        NOT NULL,
    source      text        NOT NULL,
    position    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, source)
);

-- How far the relay has published each application's notification log to
-- Kafka; advanced only after the broker acknowledged.
CREATE TABLE relay_positions (
    application text        PRIMARY KEY,
    position    bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
