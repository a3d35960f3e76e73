-- Issue 11: hourly sums beside the 15-minute buckets. Each hour table holds, per
-- UTC hour, the sum of its 15-minute table's rows in that hour (same columns; the
-- longest wait a max; seconds rounded to the microsecond as the buckets are). The
-- refresher rewrites an hour in the transaction that recomputes any of its
-- quarters (projections/interval_buckets.py), so an hour always equals its
-- quarters. Hourly and daily reports in a zone whose offset is whole hours read
-- the hours, a quarter of the rows (a month's daily queue report: the sums went
-- from 144,000 rows to 36,000), and the 15-minute rows only at a range's edges
-- (api/queries/reports.py). Built here from the buckets stored. A refresher of
-- an older release rewrites quarters without their hour: migrate with those
-- stopped, and after running an older release on this schema, run `dialtone
-- rebuild callcentre`.
-- depends: 0025_kafka_partition_sources

CREATE TABLE interval_queue_hour (LIKE interval_queue INCLUDING ALL);
CREATE TABLE interval_agent_hour (LIKE interval_agent INCLUDING ALL);
CREATE TABLE interval_agent_state_hour (LIKE interval_agent_state INCLUDING ALL);

INSERT INTO interval_queue_hour (
    tenant, bucket_start, queue_id, offered, transferred_in, answered, answered_within_sl,
    abandoned, short_abandoned, overflowed, transferred_out, answered_wait_s, handled,
    handle_s, talk_s, hold_s, after_call_s, longest_wait_s)
SELECT tenant, date_bin('1 hour', bucket_start, timestamptz '1970-01-01 00:00+00'), queue_id,
       sum(offered), sum(transferred_in), sum(answered), sum(answered_within_sl),
       sum(abandoned), sum(short_abandoned), sum(overflowed), sum(transferred_out),
       round(sum(answered_wait_s) * 1e6::float8) / 1e6::float8, sum(handled),
       round(sum(handle_s) * 1e6::float8) / 1e6::float8,
       round(sum(talk_s) * 1e6::float8) / 1e6::float8,
       round(sum(hold_s) * 1e6::float8) / 1e6::float8,
       round(sum(after_call_s) * 1e6::float8) / 1e6::float8, max(longest_wait_s)
FROM interval_queue GROUP BY 1, 2, 3;

INSERT INTO interval_agent_hour (
    tenant, bucket_start, agent_id, staffed_s, paused_s, on_call_s, wrap_up_s, handled,
    handle_s, talk_s, hold_s, after_call_s, missed_offers)
SELECT tenant, date_bin('1 hour', bucket_start, timestamptz '1970-01-01 00:00+00'), agent_id,
       round(sum(staffed_s) * 1e6::float8) / 1e6::float8,
       round(sum(paused_s) * 1e6::float8) / 1e6::float8,
       round(sum(on_call_s) * 1e6::float8) / 1e6::float8,
       round(sum(wrap_up_s) * 1e6::float8) / 1e6::float8, sum(handled),
       round(sum(handle_s) * 1e6::float8) / 1e6::float8,
       round(sum(talk_s) * 1e6::float8) / 1e6::float8,
       round(sum(hold_s) * 1e6::float8) / 1e6::float8,
       round(sum(after_call_s) * 1e6::float8) / 1e6::float8, sum(missed_offers)
FROM interval_agent GROUP BY 1, 2, 3;

INSERT INTO interval_agent_state_hour (tenant, bucket_start, agent_id, state, reason, seconds)
SELECT tenant, date_bin('1 hour', bucket_start, timestamptz '1970-01-01 00:00+00'), agent_id,
       state, reason, round(sum(seconds) * 1e6::float8) / 1e6::float8
FROM interval_agent_state GROUP BY 1, 2, 3, 4, 5;

-- The call-centre group's tables each have a position; the new ones start where the
-- group is (positions are read by the group's first table, and shown by /health).
INSERT INTO projection_positions (projection, source, position, updated_at)
SELECT hour.name, p.source, p.position, p.updated_at
FROM projection_positions p
CROSS JOIN (VALUES ('interval_queue_hour'), ('interval_agent_hour'),
                   ('interval_agent_state_hour')) AS hour(name)
WHERE p.projection = 'interval_queue'
ON CONFLICT DO NOTHING;
