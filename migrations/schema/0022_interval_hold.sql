-- Issue 11 leftover: hold time in the interval reports. A handled call's hold is
-- the time its call was on hold (Call.Held up to the next Resumed or Ended, read
-- from call_events) inside the agent's handling [accepted_at, ended_at];
-- projections/kpi_sql.py's HANDLE_SPLIT computes it, talk_s is now the handling's
-- time *minus* that hold, so talk_s + hold_s + after_call_s is still handle_s.
-- The calls group marks the handling's bucket dirty (interval_dirty, 0019) when a
-- Held, Resumed or Ended changes a handled call's hold, so the refresher
-- recomputes it. Buckets computed before this migration keep hold inside talk_s
-- and read hold_s 0 until `dialtone rebuild callcentre` (or a new event) recomputes them.
-- depends: 0021_queue_record_calls

ALTER TABLE interval_queue ADD COLUMN hold_s double precision NOT NULL DEFAULT 0;
ALTER TABLE interval_agent ADD COLUMN hold_s double precision NOT NULL DEFAULT 0;
