"""The interval buckets' refresher on a real PostgreSQL: the call-centre group's apply
only marks buckets dirty, the refresher (streams/refresher.py) recomputes them in
its own transactions.

- A refresher that dies between the marks and its commit leaves every mark and no
  half-written bucket; a refresher started afterwards ends with exactly the
  buckets a rebuild (`dialtone rebuild`'s replay) computes.
- An event committed while the refresher computes its bucket keeps the bucket
  dirty (its mark's generation moved), so it is computed again: no lost update.
- Reports are right before the refresh (read from the fact tables) and after it
  (read from the buckets), and the same.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import psycopg
import pytest
from psycopg.rows import dict_row

from api.db import asyncpg_dsn
from api.queries.reports import ReportRequest, report
from application.identity.model import DEFAULT_TENANT
from dialtone.database import drop_database, ensure_database, with_database
from dialtone.migrations import apply_migrations
from projections import callcentre, calls, interval_buckets
from projections.envelope import EventEnvelope, decode
from streams.rebuild import replay_group
from streams.refresher import ProjectionRefresher
from tests.integration.test_callcentre_projections import C1, at
from tests.integration.test_callcentre_projections import history as morning
from tests.integration.test_kpi_sql import script
from tests.unit.test_kpi_properties import History

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

START = datetime(2025, 3, 29, 21, 0, tzinfo=UTC)
TABLES = {"interval_queue": "queue_id", "interval_agent": "agent_id",
          "interval_agent_state": "agent_id, state, reason", "interval_marks": "tenant"}


def _database(admin_dsn: str) -> Iterator[str]:
    database_url = with_database(admin_dsn, f"t_{uuid.uuid4().hex[:16]}")
    ensure_database(database_url)
    try:
        apply_migrations(database_url)
        yield database_url
    finally:
        drop_database(database_url)


@pytest.fixture
def live(pg_admin_dsn: str) -> Iterator[str]:
    yield from _database(pg_admin_dsn)


@pytest.fixture
def rebuilt(pg_admin_dsn: str) -> Iterator[str]:
    yield from _database(pg_admin_dsn)


def generated(seed: int) -> History:
    history = History(START)
    for op in script(seed=seed, length=120):
        history.run(op)
    return history


def deliver(database_url: str, events: list[EventEnvelope], seed: int) -> None:
    """Apply the events in batches of 7, shuffled, a third of them twice (out-of-order
    delivery: late events make computed buckets dirty again)."""
    rng = random.Random(seed)
    deliveries = events + rng.sample(events, len(events) // 3)
    rng.shuffle(deliveries)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for first in range(0, len(deliveries), 7):
            callcentre.apply_batch(conn, deliveries[first:first + 7], "shuffled")


def stored(database_url: str) -> dict[str, list[dict[str, Any]]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY bucket_start, {k}").fetchall()
                for t, k in TABLES.items()}


def dirty(database_url: str) -> dict[datetime, int]:
    with psycopg.connect(database_url) as conn:
        return dict(conn.execute("SELECT bucket_start, generation FROM interval_dirty").fetchall())


def assert_same(mine: dict[str, list[dict[str, Any]]],
                theirs: dict[str, list[dict[str, Any]]]) -> None:
    for table, rows in theirs.items():
        assert len(mine[table]) == len(rows), table
        assert mine[table] == rows, table  # seconds are rounded to the microsecond


def wait_until_clean(database_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while dirty(database_url):
        assert time.monotonic() < deadline, f"still dirty after {timeout} s"
        time.sleep(0.1)


def reports(database_url: str, history: History) -> list[Any]:
    """A 15-minute queue and agent report over the history's hours, as the API reads them."""
    async def read() -> list[Any]:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            found = []
            for kind in ("queue", "agent"):
                request = ReportRequest(DEFAULT_TENANT, kind, "15m", START,
                                        START + timedelta(hours=8), None)
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    found += await report(conn, request, "UTC", START + timedelta(hours=9))
            return found
        finally:
            await conn.close()
    return asyncio.run(read())


def assert_same_figures(mine: list[Any], theirs: list[Any]) -> None:
    """Same buckets, ids and sums (seconds to the microsecond: the buckets round them;
    a part read from the fact tables leaves out talk and after-call time it has none of)."""
    assert [(w, i) for w, i, _ in mine] == [(w, i) for w, i, _ in theirs]
    for (_, _, a), (_, _, b) in zip(mine, theirs, strict=True):
        for name in a.keys() | b.keys():
            value, other = a.get(name, 0), b.get(name, 0)
            assert value == (pytest.approx(other, abs=1e-6) if isinstance(value, float | dict)
                             else other), name


def test_a_refresher_killed_before_its_commit_loses_nothing(
        live: str, rebuilt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    history = generated(seed=7)
    events = decode(history.service, history.service.recorder.select_notifications(1, 100_000))
    deliver(live, events, seed=11)
    marked = dirty(live)
    assert len(marked) > 4  # the apply only marked them...
    assert not any(stored(live).values())  # ...and computed none
    from_facts = reports(live, history)
    assert from_facts  # read straight from the fact tables meanwhile

    # The refresher's session dies after it wrote the buckets, before it cleared the
    # marks and committed (as when its process is killed: PostgreSQL ends the session).
    def die(cur: psycopg.Cursor[Any], *_: Any) -> None:
        cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    monkeypatch.setattr(interval_buckets, "_clear", die)
    with pytest.raises(psycopg.OperationalError), \
            psycopg.connect(live, autocommit=True) as conn:
        interval_buckets.refresh_dirty(conn)
    assert dirty(live) == marked
    assert not any(stored(live).values())
    monkeypatch.undo()

    refresher = ProjectionRefresher(live, [interval_buckets.refresh_dirty], "refresher-test",
                                    tick_s=0.2)
    refresher.start()
    try:
        wait_until_clean(live)
    finally:
        refresher.stop()
    replay_group(history.service, rebuilt, callcentre.GROUP)
    assert not dirty(rebuilt)
    assert_same(stored(live), stored(rebuilt))
    assert len(stored(live)["interval_marks"]) >= len(marked)
    assert_same_figures(reports(live, history), from_facts)  # now from the buckets


def test_an_event_committed_during_a_refresh_keeps_its_bucket_dirty(
        live: str, rebuilt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    history = generated(seed=3)
    events = decode(history.service, history.service.recorder.select_notifications(1, 100_000))
    last = next(e for e in reversed(events) if e.kind in ("agent", "queue"))  # folded
    deliver(live, [e for e in events if e is not last], seed=5)
    with psycopg.connect(live, autocommit=True) as conn:
        interval_buckets.refresh_dirty(conn)
    assert not dirty(live)
    bucket = interval_buckets.floor(last.occurred_at)
    # Mark the last event's bucket, then commit that event (on another connection) while
    # the refresher is computing it: after the refresher's read of the marks.
    with psycopg.connect(live, autocommit=True) as conn:
        conn.execute("INSERT INTO interval_dirty (tenant, bucket_start) VALUES (%s, %s)",
                     (DEFAULT_TENANT, bucket))
    recompute = interval_buckets.recompute
    applied: list[bool] = []

    def meanwhile(cur: psycopg.Cursor[Any], tenant: str, at: datetime) -> None:
        if not applied:
            applied.append(True)
            with psycopg.connect(live, autocommit=True) as other:
                callcentre.apply_batch(other, [last], "late")
        recompute(cur, tenant, at)

    monkeypatch.setattr(interval_buckets, "recompute", meanwhile)
    with psycopg.connect(live, autocommit=True) as conn:
        interval_buckets.refresh_dirty(conn)
    monkeypatch.undo()
    assert applied
    assert dirty(live) == {bucket: 2}  # marked again meanwhile: not cleared
    with psycopg.connect(live, autocommit=True) as conn:
        assert interval_buckets.refresh_dirty(conn) >= 1
    assert not dirty(live)
    replay_group(history.service, rebuilt, callcentre.GROUP)
    assert_same(stored(live), stored(rebuilt))


def c1_call(*steps: tuple[str, float]) -> list[EventEnvelope]:
    """Call events of the morning's C1 (alice took it at 09:01:45, ended it at 09:03:20),
    versions and positions in order; each step is (event, seconds after 09:00)."""
    data: dict[str, dict[str, Any]] = {
        "initiated": {"caller": "1001", "callee": "sales", "direction": "inbound",
                      "trunk": "pstn", "sip_call_id": "c1@h"},
        "ended": {"disposition": "answered", "hangup_cause": "normal",
                  "hangup_side": "caller", "sip_status": 200}}
    return [EventEnvelope(id=uuid.uuid4(), type=f"dialtone.call.{name}.v1", subject=C1,
                          version=n + 1, position=10_000 + n, occurred_at=at(seconds),
                          data=data.get(name, {}))
            for n, (name, seconds) in enumerate(steps)]


def agent_report(database_url: str, since: datetime, until: datetime,
                 now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """A 15-minute agent report's sums, by agent key, as the API reads them."""
    async def read() -> list[tuple[str, dict[str, Any]]]:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            keys = {r["agent_id"]: r["key"]
                    for r in await conn.fetch("SELECT agent_id, key FROM agent_state")}
            request = ReportRequest(DEFAULT_TENANT, "agent", "15m", since, until, None)
            return [(keys[entity], sums) for _, entity, sums in await report(conn, request,
                                                                             "UTC", now)]
        finally:
            await conn.close()
    return asyncio.run(read())


def alice_row(database_url: str) -> dict[str, Any]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        row = conn.execute("SELECT a.* FROM interval_agent a JOIN agent_state s USING"
                           " (agent_id) WHERE s.key = 'alice' AND a.handled = 1").fetchone()
    assert row is not None
    return {k: row[k] for k in ("bucket_start", "talk_s", "hold_s", "after_call_s",
                                "handle_s")}


def test_a_hold_arriving_after_the_handling_was_bucketed_is_in_its_hold_s(
        live: str, rebuilt: str) -> None:
    service, events = morning()
    with psycopg.connect(live, autocommit=True) as conn:
        callcentre.apply_batch(conn, events, "store:test")
        interval_buckets.refresh_dirty(conn)
    bucket = at(0)  # alice's wrap-up ended at 09:03:50
    assert alice_row(live) == {"bucket_start": bucket, "talk_s": 95.0, "hold_s": 0.0,
                               "after_call_s": 30.0, "handle_s": 125.0}
    steps = c1_call(("initiated", 100), ("answered", 105), ("held", 120), ("resumed", 150),
                    ("held", 190), ("ended", 195))
    # The calls group folds them after the handling was bucketed: held 30 s; then a hold
    # still open, counted up to the end of alice's handling (09:03:20): 10 s; then the
    # call's end closes it at 09:03:15: 5 s.
    for batch, hold in ((steps[:4], 30.0), (steps[4:5], 40.0), (steps[5:], 35.0)):
        with psycopg.connect(live, autocommit=True) as conn:
            calls.apply_batch(conn, batch, "calls:test")
            assert dirty(live).keys() == {bucket}
            interval_buckets.refresh_dirty(conn)
        assert alice_row(live) == {"bucket_start": bucket, "talk_s": 125.0 - 30.0 - hold,
                                   "hold_s": hold, "after_call_s": 30.0, "handle_s": 125.0}
    agents = dict(agent_report(live, at(0), at(900), at(3600)))
    assert (agents["alice"]["talk_s"], agents["alice"]["hold_s"],
            agents["alice"]["after_call_s"], agents["alice"]["handle_s"]) == (60.0, 35.0, 30.0,
                                                                             125.0)

    with psycopg.connect(rebuilt, autocommit=True) as conn:
        calls.apply_batch(conn, steps, "calls:test")
    replay_group(service, rebuilt, callcentre.GROUP)
    assert_same(stored(live), stored(rebuilt))


def test_a_hold_arriving_during_a_rebuild_reaches_the_swapped_in_bucket(live: str) -> None:
    """A rebuild of the call-centre group computes alice's bucket aside; the calls group
    then folds C1's holds, marking the *live* bucket, which the live refresher serves
    (and clears) before the swap. The bucket swapped in has the hold all the same."""
    service, events = morning()
    with psycopg.connect(live, autocommit=True) as conn:
        callcentre.apply_batch(conn, events, f"store:{service.name}")
        interval_buckets.refresh_dirty(conn, wait=True)
    bucket = at(0)
    assert alice_row(live)["hold_s"] == 0.0
    steps = c1_call(("initiated", 100), ("answered", 105), ("held", 120), ("resumed", 150),
                    ("held", 190), ("ended", 195))
    held: list[bool] = []

    def settle_then_hold(conn: psycopg.Connection[Any], *, wait: bool = False) -> int:
        done = interval_buckets.refresh_dirty(conn, wait=wait)  # aside: alice's bucket, no hold
        if not held:
            held.append(True)
            with psycopg.connect(live, autocommit=True) as other:
                calls.apply_batch(other, steps, "calls:test")  # marks the live bucket...
                assert dirty(live).keys() == {bucket}
                interval_buckets.refresh_dirty(other, wait=True)  # ...the live refresher serves it
            assert alice_row(live)["hold_s"] == 35.0
            assert not dirty(live)
        return done

    replay_group(service, live, dataclasses.replace(callcentre.GROUP, settle=settle_then_hold))
    assert held
    with psycopg.connect(live, autocommit=True) as conn:
        interval_buckets.refresh_dirty(conn, wait=True)  # the live refresher after the swap
        triggers = conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
                                " AND tgrelid = 'interval_dirty'::regclass").fetchall()
        schemas = conn.execute("SELECT nspname FROM pg_namespace"
                               " WHERE nspname LIKE 'rebuild%%'").fetchall()
    assert alice_row(live) == {"bucket_start": bucket, "talk_s": 60.0, "hold_s": 35.0,
                               "after_call_s": 30.0, "handle_s": 125.0}
    assert (triggers, schemas) == ([], [])  # nothing of the rebuild left behind


def test_a_backlog_is_refreshed_a_batch_at_a_time_and_reports_stay_right(
        live: str, rebuilt: str) -> None:
    """Buckets computed, then an early event folded late: every computed bucket after it
    must be recomputed. In batches of 2, each call does 2 and leaves the rest dirty (the
    next computed bucket marked, so the rest is not forgotten and reports keep reading it
    from the fact tables); in the end, what a rebuild computes."""
    history = generated(seed=7)
    events = decode(history.service, history.service.recorder.select_notifications(1, 100_000))
    early = next(e for e in events[len(events) // 5:] if e.kind == "agent")
    with psycopg.connect(live, autocommit=True) as conn:
        for first in range(0, len(events), 7):
            callcentre.apply_batch(conn, [e for e in events[first:first + 7] if e is not early],
                                   "store:test")
        interval_buckets.refresh_dirty(conn, wait=True)
        callcentre.apply_batch(conn, [early], "store:test")
    computed = len(stored(live)["interval_marks"])
    from_facts = reports(live, history)
    rounds = []
    with psycopg.connect(live, autocommit=True) as conn:
        while done := interval_buckets.refresh_dirty(conn, batch=2):
            rounds.append(done)
            assert len(rounds) <= computed, "the batches do not converge"
            assert_same_figures(reports(live, history), from_facts)
    assert len(rounds) >= 3
    assert max(rounds) == 2
    assert not dirty(live)
    replay_group(history.service, rebuilt, callcentre.GROUP)
    assert_same(stored(live), stored(rebuilt))
    assert_same_figures(reports(live, history), from_facts)


def test_a_hold_during_a_rebuild_the_live_tables_lag_behind_is_in_the_bucket(live: str) -> None:
    """The live call-centre applier lags: it has not folded alice's wrap-up end when C1's
    holds arrive during a rebuild, so the calls group finds no finished handling to mark;
    the copy has folded it (and bucketed it without the holds). After the swap the lagging
    applier delivers that wrap-up end again: a duplicate, which still marks its bucket."""
    service, events = morning()
    lag = next(n for n, e in enumerate(events) if e.occurred_at >= at(230))  # alice's wrap-up end
    source = f"store:{service.name}"
    with psycopg.connect(live, autocommit=True) as conn:
        callcentre.apply_batch(conn, events[:lag], source)
        interval_buckets.refresh_dirty(conn, wait=True)
    steps = c1_call(("initiated", 100), ("answered", 105), ("held", 120), ("resumed", 150),
                    ("held", 190), ("ended", 195))
    held: list[bool] = []

    def settle_then_hold(conn: psycopg.Connection[Any], *, wait: bool = False) -> int:
        done = interval_buckets.refresh_dirty(conn, wait=wait)
        if not held:
            held.append(True)
            with psycopg.connect(live, autocommit=True) as other:
                calls.apply_batch(other, steps, "calls:test")
            assert not dirty(live)  # alice's handling is not finished in the live tables
        return done

    replay_group(service, live, dataclasses.replace(callcentre.GROUP, settle=settle_then_hold))
    assert held
    with psycopg.connect(live, autocommit=True) as conn:
        callcentre.apply_batch(conn, events[lag:], source)  # the lagging applier, after the swap
        interval_buckets.refresh_dirty(conn, wait=True)
    assert alice_row(live) == {"bucket_start": at(0), "talk_s": 60.0, "hold_s": 35.0,
                               "after_call_s": 30.0, "handle_s": 125.0}
