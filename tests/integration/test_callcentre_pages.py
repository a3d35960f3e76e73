"""The call-centre group applied a page at a time (a rebuild's or a large replay's
thousands of events, written set-wise) gives the same rows, table by table and row
by row, as the same events applied in the small batches a live runner sees, and as
a page delivered out of order with duplicates."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg
import pytest

from application.callcentre import CallCentreService
from dialtone.migrations import apply_migrations
from domain.addressing import Target
from domain.errors import DomainError
from projections import callcentre, interval_buckets
from projections.envelope import EventEnvelope, decode
from projections.registry import tables
from tests.integration.test_kpi_sql import redelivered

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
QUEUES, AGENTS, CALLS = 4, 12, 160
# Columns the database stamps with the time it wrote the row, and the dirty marks'
# generation (a count of marks, more of them in small batches): not the projection.
UNSTAMPED = ("projected_at", "updated_at", "generation")


def history(tenant: str | None = None) -> list[EventEnvelope]:
    """A few hours of a small centre, recorded by the real service (in memory): agents
    in two queues each, pauses, calls answered with and without wrap-up, abandoned
    (some short), transferred to another queue (and some back: a second visit of the
    call to its first queue), missed, and some still waiting; the same agent takes
    several calls in one page. ``tenant``: the centre's (else the default one)."""
    s = CallCentreService()
    s.tenant = tenant
    queues = [s.create_queue(f"q{n}", f"Queue {n}", "longest_idle", occurred_at=T0,
                             wrap_up_s=10 * (n % 2)).id for n in range(QUEUES)]
    agents = [s.create_agent(f"a{n}", f"Agent {n}", occurred_at=T0).id for n in range(AGENTS)]
    for n, agent in enumerate(agents):
        s.add_member(queues[n % QUEUES], agent, 0, T0)
        s.add_member(queues[(n + 1) % QUEUES], agent, 1, T0)
        s.login(agent, f"sip:a{n}@pbx.example.com", T0 + timedelta(seconds=n))
    for n in range(CALLS):
        at = T0 + timedelta(seconds=40 * n + 60)
        queue, agent, call = queues[n % QUEUES], agents[n % AGENTS], UUID(int=0xCA11_0000 + n)
        s.enqueue_call(queue, call, n % 3, at)
        with contextlib.suppress(DomainError):  # the agent is busy: the call waits
            _serve(s, n, queue, agent, call, at, queues[(n + 1) % QUEUES])
    return decode(s, s.recorder.select_notifications(1, 100_000))


def _serve(s: CallCentreService, n: int, queue: UUID, agent: UUID, call: UUID,
           at: datetime, other: UUID) -> None:
    if n % 11 == 3:
        s.abandon_call(queue, call, at + timedelta(seconds=n % 9))  # some under 5 s
    elif n % 11 == 5:
        s.transfer_call(queue, call, Target.queue(other), at + timedelta(seconds=3))
        if n % 2:  # and back, abandoned there: two visits of one call to one queue
            s.transfer_call(other, call, Target.queue(queue), at + timedelta(seconds=6))
            s.abandon_call(queue, call, at + timedelta(seconds=20))
    elif n % 11 == 7:
        s.pause(agent, "break", at)
        s.resume(agent, at + timedelta(seconds=30))
    elif n % 11 == 8:
        s.offer_call(queue, call, [agent], at + timedelta(seconds=1))
        s.miss_offer(agent, call, at + timedelta(seconds=12))
    elif n % 11 != 10:  # the rest: answered (wrap-up on odd queues), or left waiting
        s.offer_call(queue, call, [agent], at + timedelta(seconds=1))
        s.accept_offer(agent, call, at + timedelta(seconds=4))
        s.end_agent_call(agent, call, at + timedelta(seconds=30 + n % 50))
        if n % 2:
            s.finish_wrap_up(agent, at + timedelta(seconds=35 + n % 50))


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    apply_migrations(database_url)
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def rows(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, list[tuple[object, ...]]]:
    """Every table the group writes, every row, every column but the stamps, sorted."""
    found = {}
    for table in (*tables(callcentre.GROUP), "projection_positions"):
        columns = [str(c) for (c,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'"
            " AND table_name = %s ORDER BY ordinal_position", (table,)).fetchall()
            if c not in UNSTAMPED]
        query = (f"SELECT {', '.join(columns)} FROM {table}"  # catalog names
                 f" ORDER BY {', '.join(str(n + 1) for n in range(len(columns)))}")
        found[table] = conn.execute(query).fetchall()
    return found


def wipe(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute(f"TRUNCATE {', '.join((*tables(callcentre.GROUP), 'projection_positions'))}")


def apply(conn: psycopg.Connection[tuple[object, ...]], events: list[EventEnvelope],
          size: int, *, fresh: bool = False) -> None:
    for first in range(0, len(events), size):
        callcentre.apply_batch(conn, events[first:first + size], "store:test", fresh=fresh)
    interval_buckets.refresh_dirty(conn, wait=True)


def test_a_page_gives_the_rows_small_batches_give(
        conn: psycopg.Connection[tuple[object, ...]]) -> None:
    events = history()
    assert len(events) > 700  # a page of them, with every change the fold makes
    apply(conn, events, 8)  # as a runner keeping up sees them
    small = rows(conn)
    assert len(small["queue_visits"]) > 150
    assert len(small["queue_handling"]) > 80
    assert len(small["interval_agent_state"]) > 0

    wipe(conn)
    apply(conn, events, 10_000)  # one page
    assert rows(conn) == small

    # The page out of order and with duplicates, then again (nothing new).
    wipe(conn)
    apply(conn, redelivered(events), 10_000)
    apply(conn, events, 10_000)
    assert rows(conn) == small


def test_a_first_pass_copying_pages_straight_in_gives_the_rows_small_batches_give(
        conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Pages of 500 (set-wise, and an aggregate created in one page has later events in
    the next: their tenant is read back from the table) of a centre of tenant acme."""
    events = history("acme")
    apply(conn, events, 8)
    small = rows(conn)
    assert {r[-1] for r in conn.execute("SELECT tenant FROM callcentre_events")} == {"acme"}

    wipe(conn)
    apply(conn, events, 500, fresh=True)
    assert rows(conn) == small


def test_a_first_pass_given_an_event_twice_fails_instead_of_dropping_it(
        conn: psycopg.Connection[tuple[object, ...]]) -> None:
    events = history()
    with pytest.raises(psycopg.errors.UniqueViolation):
        apply(conn, events[:300] + events[:300], 600, fresh=True)
