-- Issue 11 §2, time travel (api/live/at.py): the visits open at an instant t and
-- each agent's state period holding t, found by index whatever the history's
-- length (a B-tree on the start finds every row started before t: the whole
-- history for a recent t). A GiST index on the row's half-open period
-- [start, end) answers "contains t" directly; an open row (end NULL) runs on.
-- An end before the start (events out of order) is read as an empty period at
-- the start, so the expression never fails a projection's write.
-- depends: 0010_queue_visits 0017_event_history
CREATE INDEX queue_visits_during ON queue_visits USING gist (
    tstzrange(offered_at, CASE WHEN left_at < offered_at THEN offered_at ELSE left_at END, '[)'));
CREATE INDEX agent_state_intervals_during ON agent_state_intervals USING gist (
    tstzrange(started_at, CASE WHEN ended_at < started_at THEN started_at ELSE ended_at END, '[)'));
