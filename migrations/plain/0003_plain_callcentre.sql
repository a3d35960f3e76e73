-- Plain PostgreSQL path: BRIN indexes for time-range scans of the append-mostly
-- call-centre history tables.
-- depends: 0002_callcentre_projections
CREATE INDEX callcentre_events_occurred_brin ON callcentre_events USING brin (occurred_at);
CREATE INDEX agent_state_intervals_started_brin ON agent_state_intervals USING brin (started_at);
