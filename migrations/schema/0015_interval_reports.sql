-- Issue 11 §1: interval reports. 15-minute buckets of *sums* (never ratios) per
-- queue and per agent, maintained by the call-centre projection group
-- (projections/interval_buckets.py) and rebuilt with it. Each bucket holds the
-- sums projections/kpi.py's SQL gives for the window [bucket_start,
-- bucket_start + 15 min); hourly and daily reports add buckets up at read time
-- (api/queries/reports.py), and ratios come from the summed sums through kpi.
-- depends: 0010_queue_visits

CREATE TABLE interval_queue (
    tenant              text             NOT NULL,
    bucket_start        timestamptz      NOT NULL,
    queue_id            uuid             NOT NULL,
    offered             integer          NOT NULL DEFAULT 0,
    transferred_in      integer          NOT NULL DEFAULT 0,
    answered            integer          NOT NULL DEFAULT 0,
    answered_within_sl  integer          NOT NULL DEFAULT 0,
    abandoned           integer          NOT NULL DEFAULT 0,
    short_abandoned     integer          NOT NULL DEFAULT 0,
    overflowed          integer          NOT NULL DEFAULT 0,
    transferred_out     integer          NOT NULL DEFAULT 0,
    answered_wait_s     double precision NOT NULL DEFAULT 0,
    handled             integer          NOT NULL DEFAULT 0,
    handle_s            double precision NOT NULL DEFAULT 0,
    talk_s              double precision NOT NULL DEFAULT 0,  -- of the handled calls (incl. hold)
    after_call_s        double precision NOT NULL DEFAULT 0,  -- their wrap-up
    longest_wait_s      double precision,                     -- a max, not a sum
    PRIMARY KEY (tenant, bucket_start, queue_id)
);

CREATE TABLE interval_agent (
    tenant              text             NOT NULL,
    bucket_start        timestamptz      NOT NULL,
    agent_id            uuid             NOT NULL,
    staffed_s           double precision NOT NULL DEFAULT 0,
    paused_s            double precision NOT NULL DEFAULT 0,
    on_call_s           double precision NOT NULL DEFAULT 0,
    wrap_up_s           double precision NOT NULL DEFAULT 0,
    handled             integer          NOT NULL DEFAULT 0,
    handle_s            double precision NOT NULL DEFAULT 0,
    talk_s              double precision NOT NULL DEFAULT 0,
    after_call_s        double precision NOT NULL DEFAULT 0,
    missed_offers       integer          NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, bucket_start, agent_id)
);

-- Time in each logged-in state (and, for paused, each reason; '' otherwise).
CREATE TABLE interval_agent_state (
    tenant              text             NOT NULL,
    bucket_start        timestamptz      NOT NULL,
    agent_id            uuid             NOT NULL,
    state               text             NOT NULL,
    reason              text             NOT NULL DEFAULT '',
    seconds             double precision NOT NULL,
    PRIMARY KEY (tenant, bucket_start, agent_id, state, reason)
);

-- The tenant's buckets computed so far: contiguous from its first folded event
-- to its latest one. After the last mark nothing happened, so a report reads
-- that tail straight from the fact tables (only open periods and waiting
-- calls contribute there).
CREATE TABLE interval_marks (
    tenant              text             NOT NULL,
    bucket_start        timestamptz      NOT NULL,
    PRIMARY KEY (tenant, bucket_start)
);

-- Recomputing a bucket runs kpi's window queries for 15 minutes: handled calls by
-- when their after-call work ended, and state periods by when they ended (or
-- are still open), without scanning the tenant's whole history.
CREATE INDEX queue_handling_tenant_wrap_up ON queue_handling (tenant, wrap_up_ended_at);
CREATE INDEX agent_state_intervals_tenant_ended ON agent_state_intervals (tenant, ended_at);
