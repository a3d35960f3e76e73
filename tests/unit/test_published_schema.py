"""Every Call event, as the relay publishes it, matches the documented topic schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from application.calls import CallService
from dialtone.simulate import full_lifecycle
from domain.call import Direction, SupervisionMode
from projections.envelope import EventEnvelope
from streams.envelopes import decode

SCHEMA_DEFINED = ("initiated", "routed", "ringing", "answered", "held", "resumed",
                  "transferred", "ended", "queued", "agent_connected", "recording_available",
                  "supervision_started", "supervision_ended", "media_quality_recorded")
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs/schemas/dialtone.calls.v1.schema.json").read_text()
)


@pytest.fixture(scope="module")
def published() -> list[dict[str, object]]:
    service = CallService()  # in-memory store: the mapping is what is under test
    call_id = full_lifecycle(service, "schema@test")
    _call_centre_call(service, datetime.now(UTC))
    service.attach_recording(call_id, "file:///recordings/x.wav", 119.5, datetime.now(UTC))
    notifications = service.recorder.select_notifications(start=1, limit=100)
    return [json.loads(e.to_json()) for e in decode(service, notifications)]


def _call_centre_call(service: CallService, t0: datetime) -> None:
    call_id = service.initiate_call(caller="+15550100", callee="800", trunk=None,
                                    direction=Direction.INBOUND, sip_call_id="cc@test",
                                    occurred_at=t0)
    service.queue_call(call_id, "sales", t0)
    service.connect_agent(call_id, "alice", t0)
    service.answer_call(call_id, t0)
    service.record_media_quality(call_id, mos=4.3, jitter_ms=2.5, loss_pct=0.0, rtt_ms=None,
                                 occurred_at=t0)
    service.start_supervision(call_id, "sup-1", SupervisionMode.WHISPER, t0)
    service.stop_supervision(call_id, "sup-1", t0)


def test_every_call_event_validates_against_the_topic_schema(published) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    types = {e["type"].split(".")[2] for e in published}  # type: ignore[union-attr]
    assert types == set(SCHEMA_DEFINED)
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
