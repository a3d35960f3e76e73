"""Upgrading to migration 0023 heals the buckets computed before 0022 (issue 11 leftover).

Before 0022 a handled call's hold was inside ``talk_s`` and ``hold_s`` read 0; 0022
added the column and the split but left the buckets computed until then as they
were. 0023 marks every computed bucket dirty, so the refresher (the real loop,
streams/refresher.py) recomputes them: the same database, before 0023's marks,
keeps hold_s 0 however long a refresher runs.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import psycopg
from yoyo import get_backend, read_migrations

from dialtone.migrations import apply_migrations, migration_dirs, yoyo_url
from projections import callcentre, calls, interval_buckets
from streams.refresher import ProjectionRefresher
from tests.integration.test_callcentre_projections import at
from tests.integration.test_callcentre_projections import history as morning
from tests.integration.test_interval_refresher import alice_row, c1_call, dirty

HEAL = "0023_interval_heal"
BOUND_S = 60.0


def migrate_to_0022(database_url: str) -> None:
    """Every migration but 0023 (the plain path's too: none depends on 0023)."""
    backend = get_backend(yoyo_url(database_url))
    try:
        migrations = read_migrations(*map(str, migration_dirs(database_url))).filter(
            lambda m: m.id != HEAL)
        with backend.lock():
            backend.apply_migrations(backend.to_apply(migrations))
    finally:
        backend.connection.close()
        gc.collect()


def as_before_0022(database_url: str) -> None:
    """The morning, C1 held 35 s of alice's handling, with its buckets as a release
    before 0022 computed them: the hold inside talk_s, hold_s 0 (0022's default)."""
    _, events = morning()
    with psycopg.connect(database_url, autocommit=True) as conn:
        calls.apply_batch(conn, c1_call(("initiated", 100), ("answered", 105), ("held", 120),
                                        ("resumed", 150), ("held", 190), ("ended", 195)),
                          "calls:test")
        callcentre.apply_batch(conn, events, "store:test")
        interval_buckets.refresh_dirty(conn, wait=True)
        for table in ("interval_queue", "interval_agent"):
            conn.execute(f"UPDATE {table} SET talk_s = talk_s + hold_s, hold_s = 0")


def refresh_for_a_while(database_url: str, rounds: int = 3) -> None:
    """The real refresher, until nothing is dirty and it has looked ``rounds`` times more
    (bounded waits)."""
    calls_made: list[int] = []

    def counted(conn: psycopg.Connection[Any], *, wait: bool = False) -> int:
        done = interval_buckets.refresh_dirty(conn, wait=wait)
        calls_made.append(done)
        return done

    refresher = ProjectionRefresher(database_url, [counted], "refresher-upgrade", tick_s=0.1,
                                    gap_s=0.05)
    refresher.start()
    try:
        deadline = time.monotonic() + BOUND_S
        while dirty(database_url) or len(calls_made) < rounds:
            assert time.monotonic() < deadline, f"still dirty after {BOUND_S} s"
            time.sleep(0.1)
        seen = len(calls_made)
        while len(calls_made) < seen + rounds:
            assert time.monotonic() < deadline, "the refresher stopped looking"
            time.sleep(0.1)
    finally:
        refresher.stop()


def test_the_upgrade_marks_every_bucket_and_the_refresher_puts_the_hold_in(
        database_url: str) -> None:
    migrate_to_0022(database_url)
    as_before_0022(database_url)
    before = {"bucket_start": at(0), "talk_s": 95.0, "hold_s": 0.0, "after_call_s": 30.0,
              "handle_s": 125.0}
    assert alice_row(database_url) == before
    with psycopg.connect(database_url) as conn:
        computed = {r[0] for r in conn.execute("SELECT bucket_start FROM interval_marks")}
    assert at(0) in computed
    assert not dirty(database_url)
    refresh_for_a_while(database_url)
    assert alice_row(database_url) == before  # no refresher heals it without 0023

    assert HEAL in apply_migrations(database_url)
    gc.collect()  # yoyo's connection
    assert dirty(database_url) == dict.fromkeys(computed, 1)
    refresh_for_a_while(database_url)
    assert alice_row(database_url) == {"bucket_start": at(0), "talk_s": 60.0, "hold_s": 35.0,
                                       "after_call_s": 30.0, "handle_s": 125.0}
    with psycopg.connect(database_url) as conn:
        queue = conn.execute("SELECT talk_s, hold_s FROM interval_queue WHERE handled = 1"
                             " AND bucket_start = %s", (at(0),)).fetchone()
    assert queue == (60.0, 35.0)
