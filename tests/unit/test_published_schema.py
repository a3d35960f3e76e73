"""Every Call event, as the relay publishes it, matches the documented topic schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from application.calls import CallService
from dialtone.simulate import full_lifecycle
from projections.envelope import EventEnvelope
from streams.envelopes import decode

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs/schemas/dialtone.calls.v1.schema.json").read_text()
)


@pytest.fixture(scope="module")
def published() -> list[dict[str, object]]:
    service = CallService()  # in-memory store: the mapping is what is under test
    full_lifecycle(service, "schema@test")
    notifications = service.recorder.select_notifications(start=1, limit=100)
    return [json.loads(e.to_json()) for e in decode(service, notifications)]


def test_every_call_event_validates_against_the_topic_schema(published) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    assert len(published) == 8
    for event in published:
        errors = [e.message for e in validator.iter_errors(event)]
        assert errors == [], event["type"]


def test_schema_rejects_an_event_with_an_undocumented_field(published) -> None:
    ended = next(e for e in published if e["type"] == "dialtone.call.ended.v1")
    tampered = {**ended, "data": {**ended["data"], "surprise": 1}}  # type: ignore[dict-item]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(tampered, SCHEMA)


def test_published_event_round_trips_to_the_same_envelope(published) -> None:
    for event in published:
        assert EventEnvelope.from_cloudevent(event).to_cloudevent() == event
