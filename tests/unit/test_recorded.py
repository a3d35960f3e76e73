"""application.recorded: a command's collection holds exactly the positions of the
events its saves stored, in order, and the store they are in; saves outside any
collection record nothing (eventsourcing's in-memory persistence)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from application import recorded
from application.callcentre import CallCentreService

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def service() -> Iterator[CallCentreService]:
    with CallCentreService(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}) as app:
        yield app


def _head(service: CallCentreService) -> int:
    return service.recorder.max_notification_id() or 0


def test_a_collection_holds_the_positions_its_saves_stored(service):
    service.create_agent("before", "Before", occurred_at=T0)  # outside: not collected
    head = _head(service)
    with recorded.collecting() as stored:
        service.create_agent("alice", "Alice", occurred_at=T0)
        service.create_agent("bob", "Bob", occurred_at=T0)
    inside = _head(service)
    service.create_agent("after", "After", occurred_at=T0)  # closed: not collected
    assert inside > head + 1
    assert stored.store == CallCentreService.name
    assert stored.positions == list(range(head + 1, inside + 1))


def test_a_command_that_stores_nothing_names_no_store(service):
    with recorded.collecting() as stored:
        pass
    assert (stored.store, stored.positions) == (None, [])


def test_one_collection_refuses_a_second_store():
    with recorded.collecting():
        recorded.note("CallCentreService", [])
        with pytest.raises(RuntimeError, match="CallCentreService and CallService"):
            recorded.note("CallService", [])
