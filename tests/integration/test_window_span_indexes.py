"""The window queries can find a window's visits and state periods by the GiST
indexes of migration 0024: the expressions in projections/kpi_sql.py and in the
migration must match character for character (after PostgreSQL's own parsing), or
the planner never uses the indexes and every bucket the refresher computes reads
the whole history again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg
import pytest

from projections import interval_sql, kpi_sql

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

SPANS = [("queue_visits", kpi_sql.VISIT_SPAN, "queue_visits_span"),
         ("agent_state_intervals", kpi_sql.PERIOD_SPAN, "agent_state_intervals_span")]


# A window's overlap (the kpi queries) and an instant's "contains" (time travel).
AT = datetime(2026, 1, 1, tzinfo=UTC)
PREDICATES = {"overlap": ("&& tstzrange(%s, %s, '[)')", (AT, AT + timedelta(minutes=15))),
              "contains": ("@> %s::timestamptz", (AT,))}


@pytest.mark.parametrize("predicate", PREDICATES)
@pytest.mark.parametrize(("table", "span", "index"), SPANS, ids=["visits", "periods"])
def test_the_kpi_span_is_answered_by_the_span_index(
        database_url: str, table: str, span: str, index: str, predicate: str) -> None:
    condition, args = PREDICATES[predicate]
    with psycopg.connect(database_url) as conn:
        # Only the span to go by, and sequential scans priced out: the one other plan
        # left is a sequential scan, which the planner takes only if no index has the
        # expression.
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.execute(
            f"EXPLAIN SELECT 1 FROM {table} WHERE {span} {condition}", args).fetchall())
    assert index in plan, plan


# Two days of short state periods and visits, 50 agents and queues: a window late in
# them, as the refresher computes it after a from-scratch build.
_PERIODS = """
INSERT INTO agent_state_intervals (agent_id, started_version, started_at, state, ended_at,
                                   duration_s, tenant)
SELECT a, n, %(at)s + n * interval '45 seconds', 'on_call',
       %(at)s + (n + 1) * interval '45 seconds', 45, 'default'
FROM unnest(%(ids)s::uuid[]) a, generate_series(1, 3840) n
"""
_VISITS = """
INSERT INTO queue_visits (queue_id, call_id, offered_at, tenant, offered_version, transferred_in,
                          short_abandon_s, last_position, outcome, left_at, wait_s)
SELECT q, gen_random_uuid(), %(at)s + n * interval '45 seconds', 'default', n, false, 0, n,
       'answered', %(at)s + n * interval '45 seconds' + interval '20 seconds', 20
FROM unnest(%(ids)s::uuid[]) q, generate_series(1, 3840) n
"""


@pytest.mark.parametrize("statement", ["INSERT_STATES", "INSERT_AGENTS", "INSERT_QUEUES"])
def test_a_window_s_rows_are_found_by_the_span_index_alone(database_url: str,
                                                         statement: str) -> None:
    """Not ANDed with a B-tree or BRIN range on the start (``offered_at < until``: every
    row before the window) or the end: that bitmap grows with the history, and a BRIN's
    is lossy, so each bucket rechecked thousands of rows (a month's refresh 33.0 s
    against 22.5 s without, bench.reports' history)."""
    with psycopg.connect(database_url) as conn:
        args = {"at": AT, "ids": [uuid4() for _ in range(50)]}
        conn.execute(_PERIODS, args)
        conn.execute(_VISITS, args)
        conn.execute("ANALYZE agent_state_intervals")
        conn.execute("ANALYZE queue_visits")
        buckets = [AT + timedelta(days=1, minutes=15 * n) for n in range(96)]
        plan = "\n".join(row[0] for row in conn.execute(
            "EXPLAIN " + getattr(interval_sql, statement),
            {"tenant": "default", "buckets": buckets}).fetchall())
    assert "_span" in plan, plan
    assert "BitmapAnd" not in plan, plan
