"""A first pass's page of visit and handling changes, folded in memory and copied in
once (projections/queue_visits_fresh.py), leaves exactly the rows the statements
per change (projections/queue_visits_sql.py) leave, including where a page opens a
visit or handling whose target already has a row open in the table: the page's
close then reaches that row too."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from projections import kpi, queue_visits_fresh, queue_visits_sql
from projections.queue_visits import (
    Change,
    CloseVisit,
    EndWrapUp,
    HandlingEnded,
    OpenHandling,
    OpenVisit,
)

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
Q, A = UUID(int=0x0A), UUID(int=0x0B)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def visit(call: UUID, offered: float, position: int) -> OpenVisit:
    return OpenVisit("default", kpi.Visit(Q, call, at(offered)), position, 5.0, position)


def handling(call: UUID, accepted: float, position: int) -> OpenHandling:
    return OpenHandling("default", kpi.Handling(A, call, Q, at(accepted)), position)


# Page 1 leaves call 1's visit and handling open; page 2 opens a second visit and
# handling of call 1 (its target busy in the table) and a whole visit and handling of
# calls 2-4 (folded): wrap-up (ended twice), a close before its offer, no wrap-up.
C1, C2, C3, C4 = UUID(int=1), UUID(int=2), UUID(int=3), UUID(int=4)
PAGE_1: list[Change] = [visit(C1, 0, 1), handling(C1, 5, 2)]
PAGE_2: list[Change] = [
    visit(C1, 20, 3), CloseVisit(Q, C1, "answered", at(25), 25.0, 20.0, A, 4),
    handling(C1, 25, 5), HandlingEnded(A, C1, at(40), True, 6), EndWrapUp(A, C1, at(47), 7),
    visit(C2, 50, 8), CloseVisit(Q, C2, "answered", at(52.5), 2.5, 20.0, A, 9),
    handling(C2, 52.5, 10), HandlingEnded(A, C2, at(80.000001), True, 11),
    EndWrapUp(A, C2, at(85), 12), EndWrapUp(A, C2, at(86), 13),  # the second: no-op
    visit(C3, 90, 14), CloseVisit(Q, C3, "abandoned", at(89), 0.0, None, None, 15),
    CloseVisit(Q, C3, "abandoned", at(90), 0.0, None, None, 16),
    handling(C4, 91, 17), HandlingEnded(A, C4, at(95.5), False, 18),  # no wrap-up
]
Write = Callable[[psycopg.Cursor[Any], Sequence[Change]], None]


def rows_after(database_url: str, second: Write) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE queue_visits, queue_handling")
        queue_visits_sql.write(cur, PAGE_1)
        second(cur, PAGE_2)
        found = {t: cur.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
                 for t in ("queue_visits", "queue_handling")}
        conn.rollback()
    return found


def test_a_page_folded_in_memory_leaves_the_rows_the_statements_leave(
        database_url: str) -> None:
    expected = rows_after(database_url, queue_visits_sql.write)
    assert len(expected["queue_visits"]) == 4
    assert [r[6] for r in expected["queue_visits"]].count(None) == 0  # call 1's both closed
    assert rows_after(database_url, queue_visits_fresh.write) == expected
