-- Plain PostgreSQL path (no TimescaleDB): BRIN indexes keep time-range scans on
-- the append-mostly tables cheap; reports bucket with date_bin().
-- depends: 0001_call_projections
CREATE INDEX call_events_occurred_brin ON call_events USING brin (occurred_at);
CREATE INDEX cdr_started_brin ON cdr USING brin (started_at);
