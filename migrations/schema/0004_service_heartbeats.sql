-- depends: 0002_callcentre_projections
-- Liveness of each long-running process (relay, projection workers and
-- runners, routing process, B2BUA workers). A process upserts its row every
-- `interval_s` seconds while its main loop turns, and sets stopped_at when it
-- stops cleanly; a row whose beat is older than a few intervals and that is
-- not stopped belongs to a process that died or hung. Not a projection: it is
-- runtime state and is never rebuilt.
CREATE TABLE service_heartbeats (
    service     text             NOT NULL,
    instance    text             NOT NULL,
    pid         integer          NOT NULL,
    host        text             NOT NULL,
    started_at  timestamptz      NOT NULL,
    beat_at     timestamptz      NOT NULL,
    interval_s  double precision NOT NULL,
    stopped_at  timestamptz,
    detail      jsonb            NOT NULL DEFAULT '{}',
    PRIMARY KEY (service, instance)
);
