"""A page's queue visit and handling changes written set-wise, where a row opened and
closed in the page is inserted once, closed (queue_visits_sql._merged), leave the
tables exactly as the same changes applied one statement each, in order: with rows
already there (open, closed, ended without their wrap-up), a call back in a queue
it left, closes before their visit's offer, ends and wrap-ups repeated or out of
place."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg
import pytest

from projections import kpi, queue_visits_sql, staging
from projections.queue_visits import (
    Change,
    CloseVisit,
    EndWrapUp,
    HandlingEnded,
    OpenHandling,
    OpenVisit,
)

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
QUEUES = [UUID(int=0x0E0E_0000 + n) for n in range(3)]
AGENTS = [UUID(int=0xA6E7_0000 + n) for n in range(3)]
CALLS = [UUID(int=0xCA11_0000 + n) for n in range(6)]  # few: targets meet again
ROWS = """
SELECT 'visit', queue_id, call_id, offered_at, outcome, left_at, wait_s, service_level_s,
       agent_id::text, transferred_in::text, last_position, NULL::float8, NULL::float8
FROM queue_visits
UNION ALL
SELECT 'handling', agent_id, call_id, accepted_at, queue_id::text, ended_at, talk_s, wrap_up_s,
       wrap_up_ended_at::text, tenant, last_position, NULL, NULL
FROM queue_handling
ORDER BY 1, 2, 3, 4
"""


def _at(rng: random.Random) -> datetime:
    return T0 + timedelta(seconds=rng.randrange(0, 600), microseconds=rng.randrange(10**6))


def _change(rng: random.Random, position: int) -> Change:
    queue, agent, call, at = (rng.choice(QUEUES), rng.choice(AGENTS), rng.choice(CALLS),
                              _at(rng))
    kind = rng.randrange(6)
    if kind == 0:
        visit = kpi.Visit(queue_id=queue, call_id=call, offered_at=at,
                          transferred_in=rng.random() < 0.3)
        return OpenVisit("default", visit, position, 5.0, position)
    if kind == 1:
        return CloseVisit(queue, call, rng.choice(["answered", "abandoned"]), at,
                          rng.random() * 60, rng.choice([None, 20.0]),
                          rng.choice([None, agent]), position)
    if kind == 2:
        handling = kpi.Handling(agent_id=agent, call_id=call, queue_id=rng.choice([None, queue]),
                                accepted_at=at)
        return OpenHandling("default", handling, position)
    if kind == 3:
        return HandlingEnded(agent, call, at, rng.random() < 0.5, position)
    return EndWrapUp(agent, call, at, position)


def _page(rng: random.Random, first: int, size: int) -> list[Change]:
    """Random changes, and some whole visits and handlings opened and closed in order
    (the common case, which merges)."""
    changes: list[Change] = []
    position = first
    while len(changes) < size:
        position += 1
        if rng.random() < 0.5:
            changes.append(_change(rng, position))
            continue
        queue, agent, call, at = (rng.choice(QUEUES), rng.choice(AGENTS), rng.choice(CALLS),
                                  _at(rng))
        later = at + timedelta(seconds=rng.randrange(0, 90))
        changes += [
            OpenVisit("default", kpi.Visit(queue_id=queue, call_id=call, offered_at=at),
                      position, 5.0, position),
            CloseVisit(queue, call, "answered", later, 3.5, 20.0, agent, position + 1),
            OpenHandling("default", kpi.Handling(agent_id=agent, call_id=call, queue_id=queue,
                                                 accepted_at=later), position + 2),
            HandlingEnded(agent, call, later + timedelta(seconds=40), rng.random() < 0.7,
                          position + 3),
            EndWrapUp(agent, call, later + timedelta(seconds=45), position + 4)]
        position += 4
    return changes


def _tables(conn: psycopg.Connection[tuple[object, ...]], pages: list[list[Change]],
            set_wise: bool) -> list[tuple[object, ...]]:
    """The rows after ``pages`` (a transaction each), rolled back after."""
    with conn.transaction(force_rollback=True), conn.cursor() as cur:
        for page in pages:
            with conn.transaction():
                if set_wise:
                    queue_visits_sql.write(cur, page)
                else:
                    queue_visits_sql._write_rows(cur, page)
        return cur.execute(ROWS).fetchall()


@pytest.mark.parametrize("seed", range(12))
def test_a_set_wise_page_leaves_the_rows_its_changes_one_by_one_leave(
        database_url: str, seed: int) -> None:
    rng = random.Random(seed)
    before = _page(rng, 0, 40)  # written one by one: rows there before the pages
    pages = [_page(rng, 1000 * n, staging.SET_WISE_FROM + 20) for n in (1, 2)]
    with psycopg.connect(database_url) as conn:
        one_by_one = _tables(conn, [before, *pages], set_wise=False)
        set_wise = _tables(conn, [before, *pages], set_wise=True)
    assert set_wise == one_by_one


def test_a_visit_and_a_handling_opened_and_closed_in_a_page_are_written_as_one_row() -> None:
    agent, queue, call, at = AGENTS[0], QUEUES[0], CALLS[0], T0
    opened = OpenVisit("default", kpi.Visit(queue_id=queue, call_id=call, offered_at=at),
                       1, 5.0, 1)
    closed = CloseVisit(queue, call, "answered", at, 0.0, 20.0, agent, 2)
    accepted = OpenHandling("default", kpi.Handling(agent_id=agent, call_id=call,
                                                    queue_id=queue, accepted_at=at), 3)
    ended = HandlingEnded(agent, call, at + timedelta(seconds=30), True, 4)
    wrapped = EndWrapUp(agent, call, at + timedelta(seconds=40), 5)
    again = EndWrapUp(agent, call, at + timedelta(seconds=50), 6)

    merged = queue_visits_sql._merged([opened, accepted, closed, ended, wrapped, again], set())

    assert merged == [queue_visits_sql.ClosedVisit(opened, closed),
                      queue_visits_sql.EndedHandling(accepted, ended, wrapped), again]


def test_a_target_with_an_unfinished_row_before_the_page_is_not_merged() -> None:
    queue, call = QUEUES[0], CALLS[0]
    opened = OpenVisit("default", kpi.Visit(queue_id=queue, call_id=call, offered_at=T0),
                       1, 5.0, 1)
    closed = CloseVisit(queue, call, "answered", T0, 0.0, 20.0, None, 2)

    merged = queue_visits_sql._merged([opened, closed], {("visit", queue, call)})

    assert merged == [opened, closed]
