"""A call's recording in object storage: stored once per object, deleted once,
checked values (issue 14 §5)."""

from __future__ import annotations

import pytest

from domain.call import Call, CallStatus, StoredRecording
from domain.errors import InvalidValue
from tests.unit.test_call_aggregate import at, call_in

SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
KEY = "default/2025-03-01/c1.wav"


def recorded() -> Call:
    call = call_in(CallStatus.ENDED)
    call.attach_recording("file:///rec/c1.wav", 55.0, at(61))
    call.collect_events()
    return call


def _names(call: Call) -> list[str]:
    return [type(e).__name__ for e in call.collect_events()]


def test_an_upload_retried_after_a_crash_stores_one_event() -> None:
    call = recorded()
    call.store_recording("recordings", KEY, 1024, SHA, at(70))
    call.store_recording("recordings", KEY, 1024, SHA, at(75))
    assert _names(call) == ["RecordingStored"]
    assert call.stored_recording == StoredRecording("recordings", KEY, 1024, SHA)
    assert call.recording == ("file:///rec/c1.wav", 55.0)  # the recording's facts stay


def test_deleting_the_stored_object_is_recorded_once_and_only_for_that_object() -> None:
    call = recorded()
    call.store_recording("recordings", KEY, 1024, SHA, at(70))
    call.collect_events()
    call.delete_recording("recordings", "default/other.wav", "retention", at(80))
    call.delete_recording("recordings", KEY, "retention", at(80))
    call.delete_recording("recordings", KEY, "retention", at(81))
    assert _names(call) == ["RecordingDeleted"]
    assert call.stored_recording is None


@pytest.mark.parametrize(("bucket", "key", "size", "sha"), [
    ("", KEY, 1, SHA), ("recordings", " ", 1, SHA), ("recordings", KEY, -1, SHA),
    ("recordings", KEY, True, SHA), ("recordings", KEY, 1, SHA.upper()),
    ("recordings", KEY, 1, "abc"),
])
def test_a_stored_recording_with_a_bad_value_is_refused(bucket: str, key: str, size: int,
                                                       sha: str) -> None:
    call = recorded()
    with pytest.raises(InvalidValue):
        call.store_recording(bucket, key, size, sha, at(70))
    assert _names(call) == []


def test_a_call_without_a_recording_has_nothing_to_store() -> None:
    with pytest.raises(InvalidValue):
        call_in(CallStatus.ENDED).store_recording("recordings", KEY, 1, SHA, at(70))
