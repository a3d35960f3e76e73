"""The shared log follower on a real PostgreSQL: a commit's NOTIFY wakes it out of
an hour's tick, stop() ends its wait at once, its connection killed under it is
made anew and it reads on from its caller's position, and a database it cannot
reach is retried (failures counted) until it is stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from uuid import UUID

import psycopg
import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from application.follow import Backoff, Follower, pages
from dialtone.database import eventsourcing_env, with_database

HOUR = 3600.0  # a tick no test waits out: only a NOTIFY or stop() ends a wait


class Note(Aggregate):
    @event("Written")
    def __init__(self, text: str) -> None:
        self.text = text


class Reader:
    """A follower's caller: keeps its position in memory, reads after it."""

    def __init__(self, app: Application[UUID]) -> None:
        self.app = app
        self.position = 0
        self.seen: list[int] = []
        self.steps = 0

    def step(self) -> bool:
        self.steps += 1
        for page in pages(self.app.recorder, self.position, page_size=2):
            self.seen += [n.id for n in page]
            self.position = page[-1].id
        return False


@pytest.fixture
def app(database_url: str) -> Iterator[Application[UUID]]:
    application: Application[UUID] = Application(env=eventsourcing_env(database_url))
    yield application
    application.close()


def _channel(app: Application[UUID]) -> str:
    return str(app.recorder.channel_name)  # type: ignore[attr-defined]  # PostgreSQL recorder


def _wait(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _listening(database_url: str, follower: Follower) -> Callable[[], bool]:
    """True once the follower has LISTENed on its wake-up channel (its last LISTEN)."""
    def check() -> bool:
        with psycopg.connect(database_url, autocommit=True) as conn:
            return conn.execute("SELECT 1 FROM pg_stat_activity WHERE query = %s",
                                (f'LISTEN "{follower.wake_channel}"',)).fetchone() is not None
    return check


def test_a_commit_wakes_the_follower_and_it_reads_from_its_callers_position(
        app: Application[UUID], database_url: str) -> None:
    app.save(Note("before"), Note("before too"))
    reader = Reader(app)
    reader.position = 1  # the caller's start: after the first event
    follower = Follower("test-follow", reader.step, database_url=database_url,
                        channels=(_channel(app),), tick_s=HOUR)
    follower.start()
    try:
        _wait(lambda: reader.seen == [2], "the first step")
        _wait(_listening(database_url, follower), "the LISTEN")
        app.save(Note("after"))  # its commit NOTIFYs the events channel
        _wait(lambda: reader.seen == [2, 3], "the commit's notification")
    finally:
        follower.stop(timeout=30)
    assert follower.failures == 0


def test_stop_ends_the_wait_at_once_and_notifies_reach_the_callers_hook(
        app: Application[UUID], database_url: str) -> None:
    heard: list[tuple[str, str]] = []
    follower = Follower("test-follow", lambda: False, database_url=database_url,
                        channels=(_channel(app), "test_requests"), tick_s=HOUR,
                        on_notify=lambda n: heard.append((n.channel, n.payload)))
    follower.start()
    _wait(_listening(database_url, follower), "the LISTEN")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("NOTIFY test_requests, 'hello'")
    _wait(lambda: heard == [("test_requests", "hello")], "the request")
    follower.stop(timeout=30)
    assert follower.thread is not None
    assert not follower.thread.is_alive()  # an hour's tick: only the wake-up ended it
    assert heard == [("test_requests", "hello")]  # its own wake-up is not the caller's


def test_a_killed_connection_is_made_anew_and_reading_goes_on(
        app: Application[UUID], database_url: str) -> None:
    reader = Reader(app)
    failures: list[BaseException] = []
    follower = Follower("test-follow", reader.step, database_url=database_url,
                        channels=(_channel(app),), tick_s=HOUR, backoff=Backoff(0.05, 0.05),
                        on_failure=lambda error, _: failures.append(error))
    follower.start()
    try:
        app.save(Note("one"))
        _wait(lambda: reader.seen == [1], "the first event")
        _wait(_listening(database_url, follower), "the LISTEN")
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE query = %s", (f'LISTEN "{follower.wake_channel}"',))
        _wait(lambda: follower.failures == 1, "the lost connection")
        app.save(Note("two"))
        _wait(lambda: reader.seen == [1, 2], "reading after the reconnection")
    finally:
        follower.stop(timeout=30)
    assert isinstance(failures[0], psycopg.OperationalError)


def test_a_database_it_cannot_reach_is_retried_until_stopped(pg_admin_dsn: str) -> None:
    steps: list[int] = []
    delays: list[float] = []

    def step() -> bool:
        steps.append(1)
        return False

    missing = with_database(pg_admin_dsn, "dialtone_no_such_database")
    follower = Follower("test-follow", step, database_url=missing,
                        channels=("anything",), tick_s=HOUR, backoff=Backoff(0.01, 0.04),
                        on_failure=lambda _, delay: delays.append(delay))
    thread = threading.Thread(target=follower.run, daemon=True)
    thread.start()
    _wait(lambda: follower.failures >= 4, "the retries")
    follower.stop()
    thread.join(30)
    assert not thread.is_alive()
    assert steps == []
    assert delays[:4] == [0.01, 0.02, 0.04, 0.04]
