"""Call commands written once (issue 13 §3): each value of domain.call_commands
matches the Call method that decides it, CallService.handle runs any of them,
and the per-command service methods are that same path."""

from __future__ import annotations

import inspect
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from application.calls import CallService
from domain import call_commands
from domain.call import Call, CallNotFound, CallStatus
from domain.call_commands import (
    AnswerCall,
    AttachRecording,
    CallCommand,
    ConnectAgent,
    DeleteRecording,
    EndCall,
    HoldCall,
    InitiateCall,
    QueueCall,
    RecordMediaQuality,
    ResumeCall,
    RingCall,
    RouteCall,
    StartSupervision,
    StopSupervision,
    StoreRecording,
    TransferCall,
    fact_names,
)
from domain.errors import IllegalTransition
from domain.values import Direction, Disposition, HangupSide, SupervisionMode, TransferKind

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
SIP_CALL_ID = "commands@pbx"
CID = Call.id_for(SIP_CALL_ID)
SHA = "ab" * 32


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def every_command() -> list[type[CallCommand]]:
    found = [value for value in vars(call_commands).values()
             if isinstance(value, type) and issubclass(value, CallCommand)
             and value is not CallCommand]
    assert len(found) == 16  # a new command appears here: add it to the life below
    return found


def initiate() -> InitiateCall:
    return InitiateCall(CID, T0, "1001", "2001", Direction.INBOUND, None, SIP_CALL_ID)


def life() -> list[CallCommand]:
    """One command of each kind, in an order the aggregate accepts."""
    return [initiate(), RouteCall(CID, at(1), "sales"), QueueCall(CID, at(2), "sales"),
            RingCall(CID, at(3)), ConnectAgent(CID, at(4), "alice"), AnswerCall(CID, at(4)),
            HoldCall(CID, at(5)), ResumeCall(CID, at(6)),
            StartSupervision(CID, at(7), "sam", SupervisionMode.WHISPER),
            StopSupervision(CID, at(8), "sam"),
            RecordMediaQuality(CID, at(9), 4.3, 2.5, 0.1, 38.0),
            TransferCall(CID, at(10), TransferKind.BLIND, "sip:bob@dialtone"),
            EndCall(CID, at(11), Disposition.ANSWERED, "normal_clearing", HangupSide.CALLER, 200),
            AttachRecording(CID, at(12), "file:///r.wav", 11.0),
            StoreRecording(CID, at(13), "recordings", "default/r.wav", 88_244, SHA),
            DeleteRecording(CID, at(14), "recordings", "default/r.wav", "retention")]


@pytest.mark.parametrize("command", every_command(), ids=lambda c: c.__name__)
def test_each_command_has_exactly_the_arguments_of_the_method_that_decides_it(
        command: type[CallCommand]) -> None:
    decide = Call.initiate if command is InitiateCall else command.decide
    parameters = set(inspect.signature(decide).parameters) - {"self", "cls"}
    assert set(fact_names(command)) == parameters
    assert fact_names(command)[0] == "occurred_at"


def test_the_life_uses_every_command() -> None:
    assert {type(c) for c in life()} == set(every_command())


def test_a_command_is_a_frozen_value_whose_cause_is_not_part_of_it() -> None:
    link = ("audit", "row")
    hold = HoldCall(CID, at(5), cause=link)
    assert hold == HoldCall(CID, at(5))
    assert "audit" not in repr(hold)
    assert "cause" not in hold.facts()
    with pytest.raises(FrozenInstanceError):
        hold.occurred_at = at(6)  # type: ignore[misc]


def test_handle_records_the_same_events_as_calling_the_aggregate() -> None:
    service = CallService()
    for command in life():
        service.handle(command)
    handled = service.get_call(CID)

    direct = Call.initiate(caller="1001", callee="2001", direction=Direction.INBOUND,
                           trunk=None, sip_call_id=SIP_CALL_ID, occurred_at=T0)
    direct.route("sales", at(1))
    direct.enter_queue("sales", at(2))
    direct.ring(at(3))
    direct.connect_agent("alice", at(4))
    direct.answer(at(4))
    direct.hold(at(5))
    direct.resume(at(6))
    direct.start_supervision("sam", SupervisionMode.WHISPER, at(7))
    direct.stop_supervision("sam", at(8))
    direct.record_media_quality(mos=4.3, jitter_ms=2.5, loss_pct=0.1, rtt_ms=38.0,
                                occurred_at=at(9))
    direct.transfer(TransferKind.BLIND, "sip:bob@dialtone", at(10))
    direct.end(disposition=Disposition.ANSWERED, hangup_cause="normal_clearing",
               hangup_side=HangupSide.CALLER, sip_status=200, occurred_at=at(11))
    direct.attach_recording("file:///r.wav", 11.0, at(12))
    direct.store_recording("recordings", "default/r.wav", 88_244, SHA, at(13))
    direct.delete_recording("recordings", "default/r.wav", "retention", at(14))

    stored = [type(e).__name__ for e in service.events.get(CID)]
    assert stored == [type(e).__name__ for e in direct.collect_events()]
    assert len(stored) == 16
    store_times = {"_created_on", "_modified_on"}  # when saved, not when it happened
    assert ({k: v for k, v in vars(handled).items() if k not in store_times}
            == {k: v for k, v in vars(direct).items() if k not in store_times})


def test_a_repeated_initiate_adds_nothing_and_returns_the_same_call() -> None:
    service = CallService()
    service.handle(initiate())
    service.handle(initiate())
    assert [e.originator_version for e in service.events.get(CID)] == [1]


def test_a_refused_command_raises_and_leaves_the_call_unchanged() -> None:
    service = CallService()
    service.handle(initiate())
    with pytest.raises(IllegalTransition):
        service.handle(ResumeCall(CID, at(1)))
    assert service.get_call(CID).status is CallStatus.INITIATED
    with pytest.raises(CallNotFound):
        service.handle(RingCall(Call.id_for("nobody@pbx"), at(1)))


def test_the_per_command_methods_take_the_facts_with_occurred_at_last() -> None:
    service = CallService()
    call_id = service.initiate_call(caller="1001", callee="2001", direction=Direction.INBOUND,
                                    trunk=None, sip_call_id=SIP_CALL_ID, occurred_at=T0)
    assert call_id == CID
    service.route_call(call_id, "sales", at(1))
    service.answer_call(call_id, at(2))
    service.transfer_call(call_id, TransferKind.ATTENDED, "sip:bob@dialtone", at(3))
    service.start_supervision(call_id, supervisor="sam", mode=SupervisionMode.MONITOR,
                              occurred_at=at(4))
    call = service.get_call(call_id)
    transfer = call.transfers[0]
    assert (transfer.kind, transfer.target, transfer.at) == (
        TransferKind.ATTENDED, "sip:bob@dialtone", at(3))
    assert call.supervisors == {"sam": SupervisionMode.MONITOR}


@pytest.mark.parametrize(("args", "kwargs"), [
    (("sales", at(1), "extra"), {}),  # one fact too many
    (("sales",), {}),  # occurred_at missing
    (("sales", at(1)), {"queue": "sales"}),  # a fact RouteCall does not have
])
def test_the_per_command_methods_refuse_wrong_facts(args: tuple[Any, ...],
                                                    kwargs: dict[str, Any]) -> None:
    service = CallService()
    service.handle(initiate())
    with pytest.raises(TypeError):
        service.route_call(CID, *args, **kwargs)
    assert service.get_call(CID).status is CallStatus.INITIATED


def test_initiate_call_without_a_sip_call_id_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        CallService().initiate_call(caller="1001", callee="2001", direction=Direction.INBOUND,
                                    trunk=None, occurred_at=T0)


def test_inbound_builds_the_initiate_of_the_sip_call_id() -> None:
    command = InitiateCall.inbound(sip_call_id=SIP_CALL_ID, caller="1", callee="2",
                                   occurred_at=T0)
    assert command.call_id == CID
    assert command.direction is Direction.INBOUND
    assert isinstance(command.call_id, UUID)
