-- TimescaleDB path: the call-centre history tables become hypertables (the
-- time column is part of each primary key for this). Intervals are kept: they
-- are the source of historical agent reports.
-- depends: 0002_callcentre_projections
CREATE EXTENSION IF NOT EXISTS timescaledb;

SELECT create_hypertable('callcentre_events', by_range('occurred_at', INTERVAL '7 days'), migrate_data => true);
SELECT create_hypertable('agent_state_intervals', by_range('started_at', INTERVAL '7 days'), migrate_data => true);

ALTER TABLE callcentre_events SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'aggregate_id',
    timescaledb.compress_orderby = 'version'
);
SELECT add_compression_policy('callcentre_events', INTERVAL '30 days');
