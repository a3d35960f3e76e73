"""A page of thousands of events applied to tables of millions must cost the same
as it did to empty ones: each statement the call-centre group runs per page looks
its rows up by key, and never scans a whole table. Two plans did (measured with
bench.reports' month of history): the read of each aggregate's next events (a merge
join over the whole callcentre_events index, every page) and the set-wise closes
of queue visits (a hash join over the whole table, once its statistics lagged the
load)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg
import pytest

from projections import agent_state_intervals, callcentre_events, queue_visits_sql, staging
from projections.queue_visits import CloseVisit

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _plan(conn: psycopg.Connection[tuple[object, ...]], statement: str,
          args: tuple[object, ...] = ()) -> str:
    return "\n".join(str(row[0]) for row in conn.execute("EXPLAIN " + statement, args))


def test_the_next_events_of_a_page_s_aggregates_are_read_by_index(database_url: str) -> None:
    aggregates = [uuid4() for _ in range(200)]
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO callcentre_events (aggregate_id, version, kind, occurred_at, event_id,"
            " position, type, data, tenant)"
            " SELECT a, v, 'agent', %s, gen_random_uuid(), v, 't', '{}', 'default'"
            " FROM unnest(%s::uuid[]) a, generate_series(1, 100) v", (AT, aggregates))
        conn.execute("ANALYZE callcentre_events")
        plan = _plan(conn, callcentre_events._AFTER, (aggregates[:50], [100] * 50))
    assert "callcentre_events_pkey" in plan, plan
    assert "Seq Scan on callcentre_events" not in plan, plan
    assert "Merge Join" not in plan, plan


_VISITS = """
INSERT INTO queue_visits (queue_id, call_id, offered_at, tenant, offered_version, transferred_in,
                          short_abandon_s, last_position)
SELECT gen_random_uuid(), gen_random_uuid(), '2026-01-01', 'default', 1, false, 0, n
FROM generate_series(1, %s) n
"""


def _visits_with_stale_statistics(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """queue_visits analyzed with a few rows, then grown two-thousandfold unseen: a bulk
    load that autovacuum has not caught up with."""
    conn.execute("ALTER TABLE queue_visits SET (autovacuum_enabled = false)")
    conn.execute(_VISITS, (10,))
    conn.execute("ANALYZE queue_visits")
    conn.execute(_VISITS, (20_000,))


def test_set_wise_visit_closes_probe_their_visits_by_key_even_with_stale_statistics(
        database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        _visits_with_stale_statistics(conn)
        with conn.cursor() as cur:
            closes = [(0, uuid4(), uuid4(), "answered", AT + timedelta(seconds=n), 1.0, 1.0,
                       None, n) for n in range(staging.ANALYZE_FROM)]
            staging.stage(cur, *queue_visits_sql._STAGES[CloseVisit], closes)
            with staging.keyed_lookups(cur):
                visits = _plan(conn, queue_visits_sql._STATEMENTS[CloseVisit], (0,))
    assert "queue_visits_pkey" in visits, visits
    assert "Seq Scan on queue_visits" not in visits, visits


def test_the_check_before_merging_a_page_s_visits_probes_them_by_key(
        database_url: str) -> None:
    """queue_visits_sql._merged writes a visit opened and closed in one page as one row
    unless the visit already has an open row; that check must not scan the table."""
    with psycopg.connect(database_url) as conn:
        _visits_with_stale_statistics(conn)
        targets = [uuid4() for _ in range(staging.ANALYZE_FROM)]
        plan = _plan(conn, queue_visits_sql._UNFINISHED,
                     (["visit"] * len(targets), targets, targets))
    assert "queue_visits_pkey" in plan, plan
    assert "queue_handling_pkey" in plan, plan
    assert "Seq Scan on queue_visits" not in plan, plan


_PERIODS = """
INSERT INTO agent_state_intervals (agent_id, started_version, started_at, state, tenant,
                                   ended_at)
SELECT gen_random_uuid(), 1, '2026-01-01', 'available', 'default', %s
FROM generate_series(1, %s)
"""


def test_set_wise_period_closes_probe_their_periods_by_key_with_many_closed_since(
        database_url: str) -> None:
    """A first pass closes each agent's period a page after it opened it: analyzed
    with few periods open, the table then had thousands opened and closed, whose
    entries the open periods' partial index still holds. The planner took that index
    for a few rows and hash-joined the stage to a walk of all of it."""
    with psycopg.connect(database_url) as conn:
        conn.execute("ALTER TABLE agent_state_intervals SET (autovacuum_enabled = false)")
        conn.execute(_PERIODS, (AT, 20_000))
        conn.execute("ANALYZE agent_state_intervals")
        conn.execute(_PERIODS, (None, 20_000))
        conn.execute("UPDATE agent_state_intervals SET ended_at = %s WHERE ended_at IS NULL",
                     (AT,))
        conn.execute(_PERIODS, (None, 300))
        with conn.cursor() as cur:
            closes = [(AT, uuid4(), 1, AT) for _ in range(staging.ANALYZE_FROM)]
            staging.stage(cur, agent_state_intervals._CLOSING,
                          agent_state_intervals._CLOSING_COLUMNS, closes)
            with staging.keyed_lookups(cur):
                periods = _plan(conn, agent_state_intervals._CLOSE)
    assert "Hash Join" not in periods, periods
    assert "Nested Loop" in periods, periods  # each staged close probes by key


@pytest.mark.parametrize("before", ["on", "off"])
def test_keyed_lookups_leave_the_settings_as_they_found_them(database_url: str,
                                                             before: str) -> None:
    names = ("enable_seqscan", "enable_hashjoin", "enable_mergejoin")
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        for name in names:
            cur.execute(f"SET {name} = {before}")
        with staging.keyed_lookups(cur):
            inside = [cur.execute(f"SHOW {name}").fetchone() for name in names]
        after = [cur.execute(f"SHOW {name}").fetchone() for name in names]
    assert inside == [("off",)] * len(names)
    assert after == [(before,)] * len(names)
