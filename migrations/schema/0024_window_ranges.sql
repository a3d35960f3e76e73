-- Issue 11: the window queries (projections/kpi_sql.py: the live view's "today" and
-- rolling window, each 15-minute bucket the refresher computes, a report's live
-- part) find a queue's visits and an agent's state periods that overlap the window
-- by index. Their B-tree conditions (started before the window's end, ended after
-- its start) each read every row on one side of the window: a month's refresh read
-- the whole history for each of its 2,881 buckets (225 ms a bucket, 20 ms at two
-- days). A GiST index on the row's closed period [start, end] answers "overlaps
-- [since, until)" with the window's rows alone, and a closed period keeps the
-- instant visits (left when offered: an empty half-open range overlaps nothing).
-- These replace 0018's half-open ones: time travel's "contains t" (api/live/at.py)
-- uses them too, with its exact bounds checked after. The expressions are
-- projections/kpi_sql.py's VISIT_SPAN and PERIOD_SPAN, character for character.
-- depends: 0018_time_travel
DROP INDEX queue_visits_during;
DROP INDEX agent_state_intervals_during;
CREATE INDEX queue_visits_span ON queue_visits USING gist (
    tstzrange(offered_at, CASE WHEN left_at < offered_at THEN offered_at ELSE left_at END, '[]'));
CREATE INDEX agent_state_intervals_span ON agent_state_intervals USING gist (
    tstzrange(started_at, CASE WHEN ended_at < started_at THEN started_at ELSE ended_at END, '[]'));
