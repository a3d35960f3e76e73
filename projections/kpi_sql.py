"""The SQL half of projections/kpi.py: per window, only **sums and counts** read from
the fact tables (queue_visits, queue_handling, agent_state_intervals,
callcentre_events); kpi.py's Python turns them into figures, and its module
docstring states the window membership each query follows. Imported from kpi
(``kpi.QUEUE_SUMS``...), where every caller finds them.
"""

# A visit's and a state period's time as a closed range, the expressions the GiST
# indexes of migration 0024_window_ranges are built on (spelled the same there, or
# the planner cannot use them). Closed, so that "overlaps [since, until)" is exactly
# the window membership below, an instant visit (left when offered) included; an end
# before the start (events out of order) is read as the start. A window query adds
# the overlap to its exact conditions: the index then finds the rows of the window
# alone, where B-tree ranges on start or end read every row before (or after) it,
# which made the refresh of a month's buckets quadratic (docs/reports.md). So the
# exact conditions are only the ones the overlap does not imply (a visit's start
# before `until` it does), spelled so that no B-tree or BRIN range on a start or an
# end can serve them (coalesce, not "IS NULL OR"): the planner ANDed such a bitmap,
# every row before or after the window and lossy for a BRIN, with the span's, and each
# bucket rechecked thousands of rows (a month's refresh 33.0 s, 22.5 s without).
VISIT_SPAN = ("tstzrange(offered_at, CASE WHEN left_at < offered_at THEN offered_at"
              " ELSE left_at END, '[]')")
PERIOD_SPAN = ("tstzrange(started_at, CASE WHEN ended_at < started_at THEN started_at"
               " ELSE ended_at END, '[]')")
_IN_WINDOW = "&& tstzrange($2, $3, '[)')"

# -- the SQL (asyncpg placeholders: $1 tenant, $2 since, $3 until) -------------------------

QUEUE_SUMS = f"""
WITH v AS (
    SELECT queue_id,
        count(*) FILTER (WHERE offered_at >= $2 AND offered_at < $3) AS offered,
        count(*) FILTER (WHERE transferred_in AND offered_at >= $2 AND offered_at < $3)
            AS transferred_in,
        count(*) FILTER (WHERE outcome = 'answered' AND left_at >= $2 AND left_at < $3)
            AS answered,
        count(*) FILTER (WHERE outcome = 'answered' AND left_at >= $2 AND left_at < $3
                         AND wait_s <= service_level_s) AS answered_within_sl,
        count(*) FILTER (WHERE outcome = 'abandoned' AND left_at >= $2 AND left_at < $3)
            AS abandoned,
        count(*) FILTER (WHERE outcome = 'short_abandoned' AND left_at >= $2 AND left_at < $3)
            AS short_abandoned,
        count(*) FILTER (WHERE outcome = 'overflowed' AND left_at >= $2 AND left_at < $3)
            AS overflowed,
        count(*) FILTER (WHERE outcome = 'transferred_out' AND left_at >= $2 AND left_at < $3)
            AS transferred_out,
        coalesce(sum(wait_s) FILTER (WHERE outcome = 'answered'
                                     AND left_at >= $2 AND left_at < $3), 0)::float8
            AS answered_wait_s,
        -- every visit selected waited during the window: its wait as of leaving, or
        -- as of `until` if it was still waiting then
        max(CASE WHEN left_at < $3 THEN wait_s
                 ELSE extract(epoch FROM $3 - offered_at)::float8 END) AS longest_wait_s
    FROM queue_visits
    WHERE tenant = $1 AND coalesce(left_at, 'infinity') >= $2
      AND {VISIT_SPAN} {_IN_WINDOW}
    GROUP BY queue_id
), h AS (
    SELECT queue_id, count(*) AS handled,
           coalesce(sum(coalesce(talk_s, 0) + coalesce(wrap_up_s, 0)), 0)::float8 AS handle_s
    FROM queue_handling
    WHERE tenant = $1 AND queue_id IS NOT NULL
      AND wrap_up_ended_at >= $2 AND wrap_up_ended_at < $3
    GROUP BY queue_id
)
SELECT queue_id, v.offered, v.transferred_in, v.answered, v.answered_within_sl, v.abandoned,
       v.short_abandoned, v.overflowed, v.transferred_out, v.answered_wait_s, h.handled,
       h.handle_s, v.longest_wait_s
FROM v FULL JOIN h USING (queue_id)
"""  # noqa: S608 - constants composed; values go as $n

AGENT_SUMS = f"""
SELECT agent_id,
    coalesce(sum(s) FILTER (WHERE state <> 'logged_out'), 0)::float8 AS staffed_s,
    coalesce(sum(s) FILTER (WHERE state = 'paused'), 0)::float8 AS paused_s,
    coalesce(sum(s) FILTER (WHERE state = 'on_call'), 0)::float8 AS on_call_s,
    coalesce(sum(s) FILTER (WHERE state = 'wrap_up'), 0)::float8 AS wrap_up_s
FROM (
    SELECT agent_id, state,
           GREATEST(0, extract(epoch FROM LEAST(coalesce(ended_at, $3), $3)
                                         - GREATEST(started_at, $2)))::float8 AS s
    FROM agent_state_intervals
    WHERE tenant = $1 AND coalesce(ended_at, 'infinity') > $2
      AND {PERIOD_SPAN} {_IN_WINDOW}
) clipped
GROUP BY agent_id
"""  # noqa: S608 - constants composed; values go as $n

AGENT_HANDLED = """
SELECT agent_id, count(*) AS handled,
       coalesce(sum(coalesce(talk_s, 0) + coalesce(wrap_up_s, 0)), 0)::float8 AS handle_s
FROM queue_handling
WHERE tenant = $1 AND wrap_up_ended_at >= $2 AND wrap_up_ended_at < $3
GROUP BY agent_id
"""

AGENT_MISSED = """
SELECT aggregate_id AS agent_id, count(*) AS missed_offers
FROM callcentre_events
WHERE tenant = $1 AND kind = 'agent' AND type = 'dialtone.agent.offer_missed.v1'
  AND occurred_at >= $2 AND occurred_at < $3
GROUP BY aggregate_id
"""

# Per (queue, agent): a handled call counts in its queue (NULL for a direct call) and
# for its agent, as in QUEUE_SUMS' h and AGENT_HANDLED. Its handle time in three parts:
# hold is the time its call was on hold (Call.Held up to the call's next Resumed or
# Ended in call_events, the calls group's table; a hold still open runs to the end of
# the handling) inside the handling [accepted_at, ended_at]; talk is the rest of the
# handling; after-call work. talk + hold + after-call is the handle_s of QUEUE_SUMS.
HANDLE_SPLIT = """
WITH h AS (
    SELECT queue_id, agent_id, call_id, accepted_at,
           coalesce(ended_at, wrap_up_ended_at) AS ended_at,
           coalesce(talk_s, 0) AS talk_s, coalesce(wrap_up_s, 0) AS wrap_up_s
    FROM queue_handling
    WHERE tenant = $1 AND wrap_up_ended_at >= $2 AND wrap_up_ended_at < $3
), marks AS (
    SELECT call_id, split_part(type, '.', 3) AS name, occurred_at,
           lead(occurred_at) OVER (PARTITION BY call_id ORDER BY version) AS next_at
    FROM call_events
    WHERE call_id IN (SELECT call_id FROM h)
      AND split_part(type, '.', 3) IN ('held', 'resumed', 'ended')
), held AS (
    SELECT h.agent_id, h.call_id, h.accepted_at,
           coalesce(sum(GREATEST(0, extract(epoch FROM
               LEAST(coalesce(m.next_at, h.ended_at), h.ended_at)
               - GREATEST(m.occurred_at, h.accepted_at)))), 0)::float8 AS hold_s
    FROM h JOIN marks m ON m.call_id = h.call_id AND m.name = 'held'
    GROUP BY h.agent_id, h.call_id, h.accepted_at
)
SELECT h.queue_id, h.agent_id,
       coalesce(sum(h.talk_s - coalesce(held.hold_s, 0)), 0)::float8 AS talk_s,
       coalesce(sum(coalesce(held.hold_s, 0)), 0)::float8 AS hold_s,
       coalesce(sum(h.wrap_up_s), 0)::float8 AS after_call_s
FROM h LEFT JOIN held USING (agent_id, call_id, accepted_at)
GROUP BY h.queue_id, h.agent_id
"""

AGENT_STATE_TIMES = f"""
SELECT agent_id, state, reason, sum(s)::float8 AS seconds
FROM (
    SELECT agent_id, state, CASE WHEN state = 'paused' THEN coalesce(reason, '') ELSE '' END
               AS reason,
           GREATEST(0, extract(epoch FROM LEAST(coalesce(ended_at, $3), $3)
                                         - GREATEST(started_at, $2)))::float8 AS s
    FROM agent_state_intervals
    WHERE tenant = $1 AND state <> 'logged_out'
      AND coalesce(ended_at, 'infinity') > $2
      AND {PERIOD_SPAN} {_IN_WINDOW}
) clipped
WHERE s > 0
GROUP BY agent_id, state, reason
"""  # noqa: S608 - constants composed; values go as $n
