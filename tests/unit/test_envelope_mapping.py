"""A stored domain event's attributes become the envelope's JSON-able ``data``, whatever
their types (each type's converter is looked up once, then reused: the mapping must
stay the same for a subclass, a nested value and the second event of a type), and its
class names the CloudEvents type."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from uuid import UUID, uuid4

import pytest
from eventsourcing.utils import get_topic

from domain.agent import Agent
from domain.queue import Queue
from projections.envelope import event_type, to_envelope, uuid_of
from streams.history import kind_of_topic


class Colour(Enum):
    RED = "red"


class Shade(StrEnum):  # a str subclass: still converted by its value
    DARK = "dark"


class Widget:
    class Repainted:
        class_version = 2

        def __init__(self, n: int) -> None:
            self.originator_id = UUID(int=7)
            self.originator_version = n
            self.timestamp = datetime(2026, 1, 1, tzinfo=UTC)
            self.colour = Colour.RED
            self.shade = Shade.DARK
            self.took = timedelta(seconds=1.5)
            self.by = UUID(int=9)
            self.history = [(UUID(int=1), Colour.RED), (UUID(int=2), None)]
            self.owners = {UUID(int=3): datetime(2026, 1, 2, tzinfo=UTC)}


def test_every_attribute_becomes_json_the_same_way_each_time() -> None:
    expected = {
        "colour": "red", "shade": "dark", "took": 1.5, "by": str(UUID(int=9)),
        "history": [[str(UUID(int=1)), "red"], [str(UUID(int=2)), None]],
        "owners": {str(UUID(int=3)): "2026-01-02T00:00:00+00:00"},
    }
    for n in (1, 2):  # the second event of the type reuses the converters found
        envelope = to_envelope(Widget.Repainted(n), position=n)
        assert dict(envelope.data) == expected
        assert json.loads(json.dumps(envelope.data)) == expected


def test_the_type_names_the_aggregate_the_event_and_its_class_version() -> None:
    assert event_type(Widget.Repainted(1)) == "dialtone.widget.repainted.v2"


def test_a_stored_topic_names_the_kind_its_envelope_will_have() -> None:
    for event_class in (Agent.LoggedIn, Queue.CallEnqueued, Widget.Repainted):
        assert kind_of_topic(get_topic(event_class)) == \
            event_type(event_class.__new__(event_class)).split(".")[1]
    assert kind_of_topic(get_topic(Agent.LoggedIn)) == "agent"


def test_an_envelope_knows_its_kind_and_name_from_its_type_once_made() -> None:
    envelope = to_envelope(Widget.Repainted(3), 11)
    assert (envelope.kind, envelope.name) == ("widget", "repainted")
    assert "kind" not in repr(envelope)  # derived, not part of what it says or compares


def test_an_id_in_event_data_parses_to_its_uuid_however_often_it_is_read() -> None:
    call_id = uuid4()
    assert uuid_of(str(call_id)) == call_id
    assert uuid_of(str(call_id)) == call_id  # from the cache
    assert uuid_of(call_id) == call_id  # already a UUID
    with pytest.raises(ValueError, match="badly formed"):
        uuid_of("not-an-id")
