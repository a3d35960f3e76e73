"""The shared log follower's reading and back-off, on eventsourcing's in-memory
recorder (the PostgreSQL side: tests/integration/test_follow.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic

from application.follow import Backoff, Follower, head, pages


class Note(Aggregate):
    class Written(Aggregate.Created):
        text: str

    class Amended(Aggregate.Event):
        text: str

    @event(Written)
    def __init__(self, text: str) -> None:
        self.text = text

    @event(Amended)
    def amend(self, text: str) -> None:
        self.text = text


@pytest.fixture
def app() -> Iterator[Application[UUID]]:
    application: Application[UUID] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    yield application
    application.close()


def _write(app: Application[UUID], count: int) -> None:
    for number in range(count):
        note = Note(f"note {number}")
        note.amend(f"note {number}, amended")
        app.save(note)


def test_pages_start_after_the_position_and_end_with_a_short_page(
        app: Application[UUID]) -> None:
    _write(app, 5)  # positions 1..10
    read = [[n.id for n in page] for page in pages(app.recorder, 3, page_size=4)]
    assert read == [[4, 5, 6, 7], [8, 9, 10]]
    assert list(pages(app.recorder, head(app.recorder), page_size=4)) == []
    assert head(app.recorder) == 10


def test_pages_stop_at_until_and_keep_only_the_topics_asked(app: Application[UUID]) -> None:
    _write(app, 5)
    until = [n.id for page in pages(app.recorder, 0, page_size=3, until=7) for n in page]
    assert until == [1, 2, 3, 4, 5, 6, 7]
    written = [n.id for page in pages(app.recorder, 0, page_size=2,
                                      topics=[get_topic(Note.Written)]) for n in page]
    assert written == [1, 3, 5, 7, 9]


def test_pages_are_read_when_asked_so_a_caller_resumes_after_its_last_page(
        app: Application[UUID]) -> None:
    _write(app, 2)  # 1..4
    reader = pages(app.recorder, 0, page_size=2)
    assert [n.id for n in next(reader)] == [1, 2]
    _write(app, 1)  # 5, 6: stored before the next page is asked for
    assert [[n.id for n in page] for page in reader] == [[3, 4], [5, 6]]


def test_backoff_doubles_from_first_to_most() -> None:
    backoff = Backoff(0.5, 5.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert Backoff().delay(3) == 1.0  # the default: a fixed second


def test_a_polling_follower_retries_a_failed_step_and_resets_the_back_off() -> None:
    outcomes: list[bool | Exception] = [ValueError("one"), ValueError("two"), False,
                                        ValueError("three")]
    waits: list[float] = []
    done = threading.Event()

    def step() -> bool:
        if not outcomes:
            done.set()
            return False
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    follower = Follower("test", step, tick_s=0.001, backoff=Backoff(0.001, 0.004),
                        retry_on=(ValueError,),
                        on_failure=lambda _, delay: waits.append(delay))
    follower.start()
    assert done.wait(30)
    follower.stop(timeout=30)
    assert follower.thread is not None
    assert not follower.thread.is_alive()
    assert follower.failures == 3
    assert waits == [0.001, 0.002, 0.001]  # doubled, then reset by the step that worked


def test_an_error_the_follower_does_not_retry_ends_run() -> None:
    def step() -> bool:
        raise KeyError("a bug")

    follower = Follower("test", step, tick_s=0.001, retry_on=(ValueError,))
    with pytest.raises(KeyError):
        follower.run()


def test_a_fatal_error_ends_run_even_if_its_kind_is_retried() -> None:
    class RefusedError(ValueError):
        pass

    def step() -> bool:
        raise RefusedError

    follower = Follower("test", step, tick_s=0.001, retry_on=(ValueError,), fatal=(RefusedError,))
    with pytest.raises(RefusedError):
        follower.run()
    assert follower.failures == 0


def test_a_listening_follower_needs_a_database() -> None:
    with pytest.raises(ValueError, match="database_url"):
        Follower("test", lambda: False, channels=("x",))
