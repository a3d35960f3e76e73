-- The service level of docs/metrics.md is answered within T / (offered - short
-- abandons). queue_live counted abandons with a wait of at most T
-- (abandoned_within_sl), not short abandons (a wait under the queue's
-- short_abandon_s), so the Prometheus rule and the Grafana panel built on it
-- computed another figure. short_abandoned counts them as the queue's visits do
-- (projections/queue_view.py, the threshold in force at the abandon); GET
-- /metrics exports it as dialtone_queue_calls_short_abandoned_total.
--
-- Existing rows take the count of their visits closed as short abandons: the
-- call-centre group writes a queue's visits and its queue_live row in the same
-- transaction, from the same events, with the same threshold. A database whose
-- visits were never rebuilt since 0010 lacks the earlier ones; `dialtone rebuild
-- queue_live` recomputes the count from the events.
-- depends: 0010_queue_visits 0021_queue_record_calls

ALTER TABLE queue_live ADD COLUMN short_abandoned integer NOT NULL DEFAULT 0;

UPDATE queue_live q SET short_abandoned = v.short_abandoned
FROM (SELECT queue_id, count(*) AS short_abandoned FROM queue_visits
      WHERE outcome = 'short_abandoned' GROUP BY queue_id) v
WHERE v.queue_id = q.queue_id;
