"""The call-centre facts a Call records: queue entry, agents, recording, supervision."""

from __future__ import annotations

import pytest

from domain.call import Call, CallStatus, SupervisionMode
from domain.errors import IllegalTransition, InvalidValue
from tests.unit.test_call_aggregate import at, call_in, end_kwargs, new_call


def _new_events(call: Call) -> list[str]:
    return [type(e).__name__ for e in call.collect_events()]


def test_entering_a_queue_records_the_first_queued_time_and_the_last_queue() -> None:
    call = new_call()
    call.enter_queue("sales", at(2))
    call.answer(at(10))
    call.enter_queue("support", at(40))  # the agent transferred it to another queue
    assert (call.queue, call.queued_at) == ("support", at(2))


def test_the_same_queue_entry_reported_twice_adds_nothing() -> None:
    call = new_call()
    call.enter_queue("sales", at(2))
    call.collect_events()
    call.enter_queue("sales", at(3))
    assert _new_events(call) == []


def test_a_finished_call_cannot_enter_a_queue() -> None:
    with pytest.raises(IllegalTransition):
        call_in(CallStatus.ENDED).enter_queue("sales", at(90))


def test_each_agent_connected_is_listed_once_in_order() -> None:
    call = new_call()
    call.connect_agent("alice", at(5))
    call.connect_agent("alice", at(5))  # the same 200 OK reported twice
    call.answer(at(5))
    call.connect_agent("bob", at(50))
    assert call.agents == ["alice", "bob"]


def test_recording_attaches_after_the_end_once() -> None:
    call = call_in(CallStatus.ENDED)
    call.collect_events()
    call.attach_recording("file:///rec/c1.wav", 55.0, at(61))
    call.attach_recording("file:///rec/c1.wav", 55.0, at(62))
    assert _new_events(call) == ["RecordingAvailable"]
    assert call.recording == ("file:///rec/c1.wav", 55.0)


def test_recording_with_a_negative_duration_is_refused() -> None:
    with pytest.raises(InvalidValue):
        new_call().attach_recording("file:///rec/c1.wav", -1, at(1))


def test_supervision_needs_a_connected_call() -> None:
    with pytest.raises(IllegalTransition):
        new_call().start_supervision("sup-1", SupervisionMode.MONITOR, at(1))


def test_supervisor_switches_mode_and_leaves() -> None:
    call = call_in(CallStatus.ANSWERED)
    call.collect_events()
    call.start_supervision("sup-1", SupervisionMode.MONITOR, at(20))
    call.start_supervision("sup-1", SupervisionMode.MONITOR, at(21))
    call.start_supervision("sup-1", SupervisionMode.WHISPER, at(30))
    assert call.supervisors == {"sup-1": SupervisionMode.WHISPER}
    call.stop_supervision("sup-1", at(40))
    call.stop_supervision("sup-1", at(41))
    assert _new_events(call) == ["SupervisionStarted", "SupervisionStarted", "SupervisionEnded"]
    assert call.supervisors == {}


def test_the_end_of_the_call_ends_its_supervision() -> None:
    call = call_in(CallStatus.ANSWERED)
    call.start_supervision("sup-1", SupervisionMode.BARGE, at(20))
    call.end(**end_kwargs())
    call.collect_events()
    call.stop_supervision("sup-1", at(70))
    assert call.supervisors == {}
    assert _new_events(call) == []


def test_unknown_supervision_mode_is_refused() -> None:
    with pytest.raises(InvalidValue):
        call_in(CallStatus.ANSWERED).start_supervision("sup-1", "snoop", at(20))  # type: ignore[arg-type]
