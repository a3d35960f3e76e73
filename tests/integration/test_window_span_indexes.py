"""The window queries can find a window's visits and state periods by the GiST
indexes of migration 0024: the expressions in projections/kpi_sql.py and in the
migration must match character for character (after PostgreSQL's own parsing), or
the planner never uses the indexes and every bucket the refresher computes reads
the whole history again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from projections import kpi_sql

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
