"""A queue's recording policy: off by default, one event per change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.callcentre import CallCentreService
from domain.errors import InvalidValue
from domain.queue import Queue

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_new_queue_does_not_record_its_calls() -> None:
    assert Queue.create("sales", "Sales", occurred_at=T0).record_calls is False


def test_turning_recording_on_is_one_event_and_repeating_it_is_none() -> None:
    queue = Queue.create("sales", "Sales", occurred_at=T0)
    queue.collect_events()
    queue.set_recording(True, at(1))
    queue.set_recording(True, at(2))
    (event,) = queue.collect_events()
    assert isinstance(event, Queue.RecordingPolicyChanged)
    assert (event.record_calls, event.occurred_at) == (True, at(1))
    assert queue.record_calls is True


def test_the_policy_survives_replay() -> None:
    queue = Queue.create("sales", "Sales", occurred_at=T0)
    queue.set_recording(True, at(1))
    queue.set_recording(False, at(2))
    queue.set_recording(True, at(3))
    replayed = None
    for event in queue.collect_events():
        replayed = event.mutate(replayed)
    assert isinstance(replayed, Queue)
    assert replayed.record_calls is True


def test_the_policy_is_a_flag() -> None:
    with pytest.raises(InvalidValue):
        Queue.create("sales", "Sales", occurred_at=T0).set_recording("yes", at(1))  # type: ignore[arg-type]


def test_a_queue_created_to_record_its_calls_records_them() -> None:
    with CallCentreService(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}) as service:
        queue = service.create_queue("sales", "Sales", "longest_idle", occurred_at=T0,
                                     record_calls=True)
        assert service.get(Queue, queue.id).record_calls is True
