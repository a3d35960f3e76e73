"""Every Call event, as the relay publishes it, matches the documented topic schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from application.calls import CallService
from devtools.simulate import full_lifecycle
from domain.call import Direction, SupervisionMode
from projections.envelope import EventEnvelope, InvalidEnvelope, decode, format_sequence

SCHEMA_DEFINED = ("initiated", "routed", "ringing", "answered", "held", "resumed",
                  "transferred", "ended", "queued", "agent_connected", "recording_available",
                  "recording_stored", "recording_deleted",
                  "supervision_started", "supervision_ended", "media_quality_recorded")
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs/schemas/dialtone.calls.v1.schema.json").read_text()
)
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER  # uuid, date-time: checked too


@pytest.fixture(scope="module")
def published() -> list[dict[str, object]]:
    service = CallService()  # in-memory store: the mapping is what is under test
    call_id = full_lifecycle(service, "schema@test")
    _call_centre_call(service, datetime.now(UTC))
    service.attach_recording(call_id, "file:///recordings/x.wav", 119.5, datetime.now(UTC))
    service.store_recording(call_id, "recordings", "default/x.wav", 1024, "0f" * 32,
                            datetime.now(UTC))
    service.delete_recording(call_id, "recordings", "default/x.wav", "retention",
                             datetime.now(UTC))
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


def test_every_call_event_validates_against_the_topic_schema(
    published: list[dict[str, object]],
) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=FORMATS)
    types = {str(e["type"]).split(".")[2] for e in published}
    assert types == set(SCHEMA_DEFINED)
    for event in published:
        errors = [e.message for e in validator.iter_errors(event)]
        assert errors == [], event["type"]


def _closed(schema: object) -> object:
    """The schema with every `data` object closed: what we publish today, exactly."""
    if isinstance(schema, dict):
        return {k: False if k == "additionalProperties" else _closed(v)
                for k, v in schema.items()}
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


def test_every_published_field_is_documented(published: list[dict[str, object]]) -> None:
    validator = jsonschema.Draft202012Validator(_closed(SCHEMA), format_checker=FORMATS)
    for event in published:
        assert [e.message for e in validator.iter_errors(event)] == [], event["type"]


def test_schema_lets_a_new_optional_field_appear_within_the_version(
    published: list[dict[str, object]],
) -> None:
    ended = next(e for e in published if e["type"] == "dialtone.call.ended.v1")
    extended = {**ended, "data": {**ended["data"], "surprise": 1}}  # type: ignore[dict-item]
    jsonschema.validate(extended, SCHEMA)  # consumers must ignore what they do not know
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(extended, _closed(SCHEMA))


def test_schema_rejects_a_changed_type(published: list[dict[str, object]]) -> None:
    ended = next(e for e in published if e["type"] == "dialtone.call.ended.v1")
    changed = {**ended, "data": {**ended["data"], "sip_status": "200"}}  # type: ignore[dict-item]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(changed, SCHEMA)


def test_sequence_is_a_zero_padded_position_that_sorts_as_a_string(
    published: list[dict[str, object]],
) -> None:
    sequences = [str(e["sequence"]) for e in published]
    assert all(len(s) == 20 and s.isdigit() for s in sequences)
    assert sorted(sequences) == sequences  # published in store order
    assert [int(s) for s in sequences] == [EventEnvelope.from_cloudevent(e).position
                                           for e in published]
    assert format_sequence(9) < format_sequence(10)  # where str(9) > str(10)


@pytest.mark.parametrize("old", ["1874", "1", "00000000000000001874"])
def test_a_message_published_before_the_sequence_was_padded_validates(
    published: list[dict[str, object]], old: str,
) -> None:
    """The topics retain v1 messages from before 2026-12-02, whose sequence is unpadded."""
    jsonschema.validate({**published[0], "sequence": old}, SCHEMA, format_checker=FORMATS)


@pytest.mark.parametrize("bad", ["", "000000000000000018740", "12a", 1874])
def test_a_sequence_the_relay_never_published_is_refused(
    published: list[dict[str, object]], bad: object,
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**published[0], "sequence": bad}, SCHEMA)


@pytest.mark.parametrize("old", [1874, "1874", "00000000000000001874"])
def test_consumers_read_the_old_sequence_forms_too(published: list[dict[str, object]],
                                                   old: object) -> None:
    event = {**published[0], "sequence": old}
    assert EventEnvelope.from_cloudevent(event).position == 1874


@pytest.mark.parametrize("bad", ["-1", "12a", " 12", 1.5, True, None])
def test_a_sequence_that_is_not_digits_is_invalid(published: list[dict[str, object]],
                                                  bad: object) -> None:
    with pytest.raises(InvalidEnvelope):
        EventEnvelope.from_cloudevent({**published[0], "sequence": bad})


def test_published_event_round_trips_to_the_same_envelope(
    published: list[dict[str, object]],
) -> None:
    for event in published:
        assert EventEnvelope.from_cloudevent(event).to_cloudevent() == event
