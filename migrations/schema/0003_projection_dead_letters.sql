-- Events a projection could not apply (a "poison" event: its data breaks the
-- projection, e.g. text with U+0000, which PostgreSQL's text and jsonb refuse).
-- The runner isolates such an event from its batch, parks it here in the same
-- transaction that advances the projection's position past it, and goes on:
-- one bad event never stops a projection. Health and metrics count the rows;
-- an operator reads them, fixes the cause and replays them by hand.
-- depends: 0002_callcentre_projections

CREATE TABLE projection_dead_letters (
    projection   text        NOT NULL,  -- the projection group (its first table's name)
    source       text        NOT NULL,  -- as in projection_positions: store:<app> or a topic
    position     bigint      NOT NULL,  -- the event's store position (CloudEvents sequence)
    event_id     uuid        NOT NULL,
    aggregate_id uuid        NOT NULL,
    type         text        NOT NULL,
    error        text        NOT NULL,
    -- The CloudEvent as published, with each U+0000 written as the six
    -- characters \u0000 (jsonb cannot hold the character itself).
    payload      jsonb       NOT NULL,
    parked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, source, position)
);
