"""domain/call.py stays under 400 lines (issue 13) by keeping its recording and
supervision commands in mixins, while every event stays nested in Call: the
topics events are stored under and the types the relay publishes do not move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.utils import get_topic

from domain.call import Call, Direction, Disposition, HangupSide, SupervisionMode
from projections.envelope import to_envelope

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)
SHA = "cd" * 32


@pytest.mark.parametrize("module", ["call.py", "call_recordings.py", "call_supervision.py",
                                    "call_commands.py", "values.py"])
def test_the_call_modules_are_under_400_lines(module: str) -> None:
    lines = (ROOT / "domain" / module).read_text().count("\n")
    assert lines <= 400, f"domain/{module} has {lines} lines"


@pytest.mark.parametrize("name", ["RecordingAvailable", "RecordingStored", "RecordingDeleted",
                                  "SupervisionStarted", "SupervisionEnded"])
def test_the_mixins_events_keep_their_topics(name: str) -> None:
    assert get_topic(getattr(Call, name)) == f"domain.call:Call.{name}"


def test_the_mixins_commands_store_events_that_load_and_publish_as_before() -> None:
    app: Application[UUID] = Application()
    call = Call.initiate(caller="1001", callee="2001", direction=Direction.INBOUND, trunk=None,
                         sip_call_id="split@pbx", occurred_at=T0)
    call.answer(T0 + timedelta(seconds=1))
    call.start_supervision("sam", SupervisionMode.MONITOR, T0 + timedelta(seconds=2))
    call.stop_supervision("sam", T0 + timedelta(seconds=3))
    call.end(disposition=Disposition.ANSWERED, hangup_cause="normal_clearing",
             hangup_side=HangupSide.CALLER, sip_status=200, occurred_at=T0 + timedelta(seconds=4))
    call.attach_recording("file:///r.wav", 3.0, T0 + timedelta(seconds=5))
    call.store_recording("recordings", "default/r.wav", 10, SHA, T0 + timedelta(seconds=6))
    call.delete_recording("recordings", "default/r.wav", "retention", T0 + timedelta(seconds=7))
    app.save(call)

    loaded: object = app.repository.get(call.id)
    assert isinstance(loaded, Call)
    assert (loaded.supervisors, loaded.recording, loaded.stored_recording) == (
        {}, ("file:///r.wav", 3.0), None)
    types = [to_envelope(e, i).type for i, e in enumerate(app.events.get(call.id), 1)][2:]
    assert types == ["dialtone.call.supervision_started.v1", "dialtone.call.supervision_ended.v1",
                     "dialtone.call.ended.v1", "dialtone.call.recording_available.v1",
                     "dialtone.call.recording_stored.v1", "dialtone.call.recording_deleted.v1"]
