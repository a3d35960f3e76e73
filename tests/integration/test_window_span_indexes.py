"""The window queries can find a window's visits and state periods by the GiST
indexes of migration 0024: the expressions in projections/kpi_sql.py and in the
migration must match character for character (after PostgreSQL's own parsing), or
the planner never uses the indexes and every bucket the refresher computes reads
the whole history again."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from projections import kpi_sql

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

SPANS = [("queue_visits", kpi_sql.VISIT_SPAN, "queue_visits_span"),
         ("agent_state_intervals", kpi_sql.PERIOD_SPAN, "agent_state_intervals_span")]


@pytest.mark.parametrize(("table", "span", "index"), SPANS, ids=["visits", "periods"])
def test_an_overlap_with_the_kpi_span_is_answered_by_the_span_index(
        database_url: str, table: str, span: str, index: str) -> None:
    since, until = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 15, tzinfo=UTC)
    with psycopg.connect(database_url) as conn:
        # Only the overlap to go by, and sequential scans priced out: the one other
        # plan left is a sequential scan, which the planner takes only if no index
        # has the expression.
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.execute(
            f"EXPLAIN SELECT 1 FROM {table} WHERE {span} && tstzrange(%s, %s, '[)')",
            (since, until)).fetchall())
    assert index in plan, plan


@pytest.mark.parametrize(("table", "span", "index"), SPANS, ids=["visits", "periods"])
def test_time_travel_s_contains_t_is_answered_by_the_span_index(
        database_url: str, table: str, span: str, index: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.execute(
            f"EXPLAIN SELECT 1 FROM {table} WHERE {span} @> %s::timestamptz",
            (datetime(2026, 1, 1, tzinfo=UTC),)).fetchall())
    assert index in plan, plan
