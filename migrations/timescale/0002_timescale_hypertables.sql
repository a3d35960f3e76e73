-- TimescaleDB path: chosen by `dialtone migrate` when the extension is available.
-- Hypertables partition by time; old chunks are compressed and, for the raw
-- event timeline, dropped after the retention period (the event store keeps
-- the full history, so any report can still be rebuilt).
-- depends: 0001_call_projections
CREATE EXTENSION IF NOT EXISTS timescaledb;

SELECT create_hypertable('call_events', by_range('occurred_at', INTERVAL '1 day'), migrate_data => true);
SELECT create_hypertable('cdr', by_range('started_at', INTERVAL '7 days'), migrate_data => true);

ALTER TABLE call_events SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'call_id',
    timescaledb.compress_orderby = 'version'
);
ALTER TABLE cdr SET (
    timescaledb.compress,
    timescaledb.compress_orderby = 'started_at DESC, call_id'
);
SELECT add_compression_policy('call_events', INTERVAL '7 days');
SELECT add_compression_policy('cdr', INTERVAL '30 days');
SELECT add_retention_policy('call_events', INTERVAL '400 days');
