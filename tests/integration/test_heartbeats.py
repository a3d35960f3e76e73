"""application.heartbeats against a real PostgreSQL: beats, hangs, clean stops, outages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from application.heartbeats import Heartbeat
from dialtone.migrations import apply_migrations
from dialtone.services.postgres import EmbeddedPostgres
from tests.fixtures.processes import wait_for

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy


def _row(database_url: str, service: str = "test") -> dict[str, Any] | None:
    with psycopg.connect(database_url) as conn:
        cur = conn.execute("SELECT beat_at, stopped_at, detail, interval_s, pid "
                           "FROM service_heartbeats WHERE service = %s", (service,))
        row = cur.fetchone()
        return None if row is None else dict(zip([d.name for d in cur.description], row,
                                                 strict=True))


@pytest.fixture
def migrated(database_url: str) -> str:
    apply_migrations(database_url)
    return database_url


@pytest.fixture
def heartbeat(migrated: str) -> Iterator[Heartbeat]:
    beat = Heartbeat(migrated, "test", "one", interval_s=0.1, detail=lambda: {"n": 1})
    yield beat
    beat.stop()


def test_a_ticking_loop_beats_and_a_clean_stop_marks_the_row_stopped(migrated, heartbeat):
    heartbeat.start()
    wait_for(lambda: _row(migrated) is not None, 10, "the first beat")
    first = _row(migrated)
    assert first is not None
    assert first["detail"] == {"n": 1}
    assert first["interval_s"] == 0.1

    def advanced() -> bool:
        heartbeat.tick()
        row = _row(migrated)
        return row is not None and row["beat_at"] > first["beat_at"]

    wait_for(advanced, 10, "a later beat")
    heartbeat.stop()
    stopped = _row(migrated)
    assert stopped is not None
    assert stopped["stopped_at"] is not None


def test_a_loop_that_stops_ticking_stops_beating(migrated, heartbeat):
    heartbeat.start()  # one tick: one beat, then none without further ticks
    wait_for(lambda: _row(migrated) is not None, 10, "the first beat")
    time.sleep(0.3)  # a few intervals to let any pending beat land
    settled = _row(migrated)
    time.sleep(0.5)  # five more intervals without a tick
    assert _row(migrated) == settled
    heartbeat.tick()
    wait_for(lambda: _row(migrated) != settled, 10, "a beat after the loop ticked again")


def test_a_stop_does_not_mark_a_successor_on_the_same_instance(migrated):
    first = Heartbeat(migrated, "test", "same", interval_s=0.1)
    first.start()
    wait_for(lambda: _row(migrated) is not None, 10, "the first beat")
    successor = Heartbeat(migrated, "test", "same", interval_s=0.1)
    successor._key["pid"] = -1  # another process took the instance over
    successor.start()
    wait_for(lambda: (r := _row(migrated)) is not None and r["pid"] == -1, 10, "the takeover")
    first._stop.set()  # the old incarnation now stops (its beat thread first)
    first._thread.join(5)  # type: ignore[union-attr]
    first.stop()
    row = _row(migrated)
    assert row is not None
    assert row["stopped_at"] is None
    successor.stop()


def test_the_process_survives_the_database_going_away_and_beats_again(
    restartable: tuple[EmbeddedPostgres, str],
) -> None:
    pg_server, migrated = restartable
    apply_migrations(migrated)
    beat = Heartbeat(migrated, "test", "outage", interval_s=0.1)
    beat.start()
    try:
        wait_for(lambda: _row(migrated) is not None, 10, "the first beat")
        pg_server.stop()
        for _ in range(5):  # beats fail while it is down; the thread carries on
            beat.tick()
            time.sleep(0.1)
        assert beat._thread is not None
        assert beat._thread.is_alive()
    finally:
        pg_server.start()
    before = _row(migrated)
    assert before is not None

    def beats_again() -> bool:
        beat.tick()
        row = _row(migrated)
        return row is not None and row["beat_at"] > before["beat_at"]

    wait_for(beats_again, 20, "a beat after the database came back")
    beat.stop()


def test_a_stop_on_an_error_leaves_the_row_to_go_stale(migrated, heartbeat):
    heartbeat.start()
    wait_for(lambda: _row(migrated) is not None, 10, "the first beat")
    heartbeat.stop(clean=False)
    row = _row(migrated)
    assert row is not None
    assert row["stopped_at"] is None
