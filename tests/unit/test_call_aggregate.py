"""The Call aggregate's rules: every transition, legal and illegal, every
idempotent repeat, and the disposition rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from domain.call import (
    Call,
    CallStatus,
    Direction,
    Disposition,
    HangupSide,
    Transfer,
    TransferKind,
)
from domain.errors import DomainError, IllegalTransition, InvalidValue

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_call(sip_call_id: str = "a84b4c76e66710@pc33.example.com") -> Call:
    return Call.initiate(caller="+15551230001", callee="2001", direction=Direction.INBOUND,
                         trunk="carrier-a", sip_call_id=sip_call_id, occurred_at=T0)


def end_kwargs(
    disposition: Disposition = Disposition.ANSWERED, seconds: float = 60
) -> dict[str, Any]:
    return {"disposition": disposition, "hangup_cause": "normal_clearing",
            "hangup_side": HangupSide.CALLER, "sip_status": None, "occurred_at": at(seconds)}


# Each status reached by the shortest path of legal commands.
PATHS: dict[CallStatus, list[Callable[[Call], None]]] = {
    CallStatus.INITIATED: [],
    CallStatus.ROUTED: [lambda c: c.route("agent-7", at(1))],
    CallStatus.RINGING: [lambda c: c.route("agent-7", at(1)), lambda c: c.ring(at(2))],
    CallStatus.ANSWERED: [lambda c: c.route("agent-7", at(1)), lambda c: c.ring(at(2)),
                          lambda c: c.answer(at(5))],
    CallStatus.HELD: [lambda c: c.route("agent-7", at(1)), lambda c: c.ring(at(2)),
                      lambda c: c.answer(at(5)), lambda c: c.hold(at(10))],
    CallStatus.ENDED: [lambda c: c.route("agent-7", at(1)), lambda c: c.ring(at(2)),
                       lambda c: c.answer(at(5)), lambda c: c.end(**end_kwargs())],
}


def call_in(status: CallStatus) -> Call:
    """A call in ``status`` with its history already collected."""
    call = new_call()
    for step in PATHS[status]:
        step(call)
    assert call.status is status
    call.collect_events()
    return call


def new_events(call: Call) -> list[type]:
    return [type(event) for event in call.collect_events()]


def others(*allowed: CallStatus) -> list[CallStatus]:
    return [status for status in CallStatus if status not in allowed]


COMMANDS: dict[str, Callable[[Call], None]] = {
    "route": lambda c: c.route("agent-9", at(30)),
    "ring": lambda c: c.ring(at(30)),
    "answer": lambda c: c.answer(at(30)),
    "hold": lambda c: c.hold(at(30)),
    "resume": lambda c: c.resume(at(30)),
    "transfer": lambda c: c.transfer(TransferKind.BLIND, "queue-sales", at(30)),
}


# Initiate


def test_initiate_records_the_call_facts_in_one_event() -> None:
    call = new_call()
    events = call.collect_events()
    assert [type(e) for e in events] == [Call.Initiated]
    assert (call.status, call.caller, call.callee, call.direction, call.trunk) == (
        CallStatus.INITIATED, "+15551230001", "2001", Direction.INBOUND, "carrier-a")
    assert call.initiated_at == T0
    assert events[0].occurred_at == T0  # type: ignore[attr-defined]
    assert (call.target, call.answered_at, call.ended_at, call.disposition) == (None,) * 4
    assert (call.hold_count, call.hold_total, call.transfers) == (0, timedelta(0), [])


def test_initiate_derives_the_same_id_from_the_same_sip_call_id() -> None:
    assert new_call("abc@host").id == new_call("abc@host").id == Call.id_for("abc@host")
    assert new_call("abc@host").id != new_call("abd@host").id


def test_initiate_accepts_a_call_without_trunk() -> None:
    call = Call.initiate(caller="1001", callee="1002", direction=Direction.INTERNAL, trunk=None,
                         sip_call_id="x", occurred_at=T0)
    assert call.trunk is None


def test_initiate_stores_occurred_at_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    call = Call.initiate(caller="1", callee="2", direction=Direction.OUTBOUND, trunk=None,
                         sip_call_id="x", occurred_at=datetime(2025, 3, 1, 10, tzinfo=paris))
    assert call.initiated_at == T0
    assert call.initiated_at.tzinfo is UTC


@pytest.mark.parametrize("bad", [
    {"direction": "sideways"},
    {"occurred_at": datetime(2025, 3, 1, 9)},  # naive
    {"sip_call_id": ""},
    {"caller": " "},
    {"callee": ""},
    {"trunk": ""},
])
def test_initiate_rejects_bad_values(bad: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {"caller": "1", "callee": "2", "direction": Direction.INBOUND,
                              "trunk": None, "sip_call_id": "x", "occurred_at": T0}
    with pytest.raises(InvalidValue):
        Call.initiate(**{**kwargs, **bad})


# Route


@pytest.mark.parametrize("status", [CallStatus.INITIATED, CallStatus.ROUTED, CallStatus.RINGING])
def test_route_before_answer_sets_target(status: CallStatus) -> None:
    call = call_in(status)
    call.route("agent-9", at(30))
    assert new_events(call) == [Call.Routed]
    assert (call.status, call.target) == (CallStatus.ROUTED, "agent-9")


def test_reroute_after_ringing_keeps_the_first_ring_time() -> None:
    call = call_in(CallStatus.RINGING)
    call.route("agent-9", at(30))
    call.ring(at(31))
    assert call.ringing_at == at(2)
    assert call.status is CallStatus.RINGING


@pytest.mark.parametrize("status", others(CallStatus.INITIATED, CallStatus.ROUTED,
                                          CallStatus.RINGING))
def test_route_fails_once_answered_or_ended(status: CallStatus) -> None:
    with pytest.raises(IllegalTransition):
        call_in(status).route("agent-9", at(30))


def test_route_rejects_an_empty_target() -> None:
    with pytest.raises(InvalidValue):
        call_in(CallStatus.INITIATED).route("", at(1))


# Ring


@pytest.mark.parametrize("status", [CallStatus.INITIATED, CallStatus.ROUTED])
def test_ring_records_ringing(status: CallStatus) -> None:
    call = call_in(status)
    call.ring(at(30))
    assert new_events(call) == [Call.Ringing]
    assert (call.status, call.ringing_at) == (CallStatus.RINGING, at(30))


def test_ring_again_while_ringing_is_a_no_op() -> None:
    call = call_in(CallStatus.RINGING)
    call.ring(at(30))
    assert new_events(call) == []
    assert call.ringing_at == at(2)


@pytest.mark.parametrize("status", [CallStatus.ANSWERED, CallStatus.HELD, CallStatus.ENDED])
def test_ring_fails_after_answer_or_end(status: CallStatus) -> None:
    with pytest.raises(IllegalTransition):
        call_in(status).ring(at(30))


# Answer


@pytest.mark.parametrize("status", [CallStatus.INITIATED, CallStatus.ROUTED, CallStatus.RINGING])
def test_answer_before_answer_records_answered(status: CallStatus) -> None:
    call = call_in(status)
    call.answer(at(30))
    assert new_events(call) == [Call.Answered]
    assert (call.status, call.answered_at) == (CallStatus.ANSWERED, at(30))


@pytest.mark.parametrize("status", [CallStatus.ANSWERED, CallStatus.HELD])
def test_answer_again_is_a_no_op(status: CallStatus) -> None:
    call = call_in(status)
    call.answer(at(30))
    assert new_events(call) == []
    assert (call.status, call.answered_at) == (status, at(5))


def test_answer_fails_after_end() -> None:
    with pytest.raises(IllegalTransition):
        call_in(CallStatus.ENDED).answer(at(30))


# Hold and resume


def test_hold_puts_an_answered_call_on_hold() -> None:
    call = call_in(CallStatus.ANSWERED)
    call.hold(at(30))
    assert new_events(call) == [Call.Held]
    assert (call.status, call.hold_started_at, call.hold_count) == (CallStatus.HELD, at(30), 1)


def test_hold_again_while_held_is_a_no_op() -> None:
    call = call_in(CallStatus.HELD)
    call.hold(at(30))
    assert new_events(call) == []
    assert (call.hold_started_at, call.hold_count) == (at(10), 1)


@pytest.mark.parametrize("status", others(CallStatus.ANSWERED, CallStatus.HELD))
def test_hold_fails_when_not_answered(status: CallStatus) -> None:
    with pytest.raises(IllegalTransition):
        call_in(status).hold(at(30))


def test_resume_takes_a_call_off_hold_and_adds_the_hold_time() -> None:
    call = call_in(CallStatus.HELD)
    call.resume(at(25))
    assert new_events(call) == [Call.Resumed]
    assert (call.status, call.hold_started_at, call.hold_total) == (
        CallStatus.ANSWERED, None, timedelta(seconds=15))


def test_hold_time_adds_up_over_several_holds() -> None:
    call = call_in(CallStatus.HELD)
    call.resume(at(25))
    call.hold(at(40))
    call.resume(at(42))
    assert (call.hold_count, call.hold_total) == (2, timedelta(seconds=17))


def test_resume_while_answered_is_a_no_op() -> None:
    call = call_in(CallStatus.ANSWERED)
    call.resume(at(30))
    assert new_events(call) == []


@pytest.mark.parametrize("status", others(CallStatus.ANSWERED, CallStatus.HELD))
def test_resume_fails_when_not_answered(status: CallStatus) -> None:
    with pytest.raises(IllegalTransition):
        call_in(status).resume(at(30))


# Transfer


@pytest.mark.parametrize("status", [CallStatus.ANSWERED, CallStatus.HELD])
@pytest.mark.parametrize("kind", list(TransferKind))
def test_transfer_of_a_connected_call_is_recorded(status: CallStatus, kind: TransferKind) -> None:
    call = call_in(status)
    call.transfer(kind, "queue-sales", at(30))
    assert new_events(call) == [Call.Transferred]
    assert call.transfers == [Transfer(kind, "queue-sales", at(30))]
    assert call.transfers[0] == (kind, "queue-sales", at(30))
    assert (call.status, call.target) == (status, "queue-sales")


@pytest.mark.parametrize("status", others(CallStatus.ANSWERED, CallStatus.HELD))
def test_transfer_fails_when_not_connected(status: CallStatus) -> None:
    with pytest.raises(IllegalTransition):
        call_in(status).transfer(TransferKind.BLIND, "queue-sales", at(30))


def test_transfer_rejects_an_unknown_kind() -> None:
    with pytest.raises(InvalidValue):
        call_in(CallStatus.ANSWERED).transfer("consultative", "x", at(30))  # type: ignore[arg-type]


# End and dispositions


def test_end_of_an_answered_call_records_the_hangup() -> None:
    call = call_in(CallStatus.ANSWERED)
    call.end(disposition=Disposition.ANSWERED, hangup_cause="normal_clearing",
             hangup_side=HangupSide.CALLEE, sip_status=200, occurred_at=at(60))
    assert new_events(call) == [Call.Ended]
    assert (call.status, call.ended_at, call.disposition, call.hangup_cause, call.hangup_side,
            call.sip_status) == (CallStatus.ENDED, at(60), Disposition.ANSWERED,
                                 "normal_clearing", HangupSide.CALLEE, 200)


def test_end_while_held_closes_the_hold() -> None:
    call = call_in(CallStatus.HELD)
    call.end(**end_kwargs(seconds=40))
    assert (call.hold_started_at, call.hold_total) == (None, timedelta(seconds=30))


def test_second_end_is_a_no_op() -> None:
    call = call_in(CallStatus.ENDED)
    call.end(**end_kwargs(Disposition.ANSWERED, seconds=90))
    assert new_events(call) == []
    assert call.ended_at == at(60)


UNANSWERED = [d for d in Disposition if d is not Disposition.ANSWERED]


@pytest.mark.parametrize("status", [CallStatus.INITIATED, CallStatus.ROUTED, CallStatus.RINGING])
@pytest.mark.parametrize("disposition", UNANSWERED)
def test_unanswered_call_ends_with_an_unanswered_disposition(
    status: CallStatus, disposition: Disposition
) -> None:
    call = call_in(status)
    call.end(**end_kwargs(disposition))
    assert new_events(call) == [Call.Ended]
    assert (call.disposition, call.answered_at) == (disposition, None)


@pytest.mark.parametrize("status", [CallStatus.INITIATED, CallStatus.ROUTED, CallStatus.RINGING])
def test_end_as_answered_fails_when_never_answered(status: CallStatus) -> None:
    with pytest.raises(IllegalTransition):
        call_in(status).end(**end_kwargs(Disposition.ANSWERED))


@pytest.mark.parametrize("status", [CallStatus.ANSWERED, CallStatus.HELD])
@pytest.mark.parametrize("disposition", UNANSWERED)
def test_end_as_unanswered_fails_once_answered(
    status: CallStatus, disposition: Disposition
) -> None:
    with pytest.raises(IllegalTransition):
        call_in(status).end(**end_kwargs(disposition))


@pytest.mark.parametrize("bad", [
    {"sip_status": 99}, {"sip_status": 700}, {"sip_status": True}, {"sip_status": "486"},
    {"hangup_cause": ""}, {"hangup_side": "nobody"}, {"disposition": "hung"},
])
def test_end_rejects_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidValue):
        call_in(CallStatus.ANSWERED).end(**{**end_kwargs(), **bad})


# Rules common to every command


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_fails_on_an_ended_call(name: str) -> None:
    with pytest.raises(IllegalTransition):
        COMMANDS[name](call_in(CallStatus.ENDED))


@pytest.mark.parametrize("command", [
    lambda c: c.route("agent-9", datetime(2025, 3, 1, 9, 0, 1)),
    lambda c: c.answer(datetime(2025, 3, 1, 9, 0, 1)),
])
def test_commands_reject_naive_times(command: Callable[[Call], None]) -> None:
    with pytest.raises(InvalidValue):
        command(call_in(CallStatus.INITIATED))


def test_commands_reject_a_time_before_the_call_started() -> None:
    with pytest.raises(InvalidValue):
        call_in(CallStatus.INITIATED).answer(at(-1))


def test_a_refused_command_leaves_the_call_unchanged() -> None:
    call = call_in(CallStatus.RINGING)
    before = repr(call), call.version
    refused: list[Callable[[], None]] = [lambda: call.hold(at(30)),
                                         lambda: call.end(**end_kwargs())]
    for command in refused:
        with pytest.raises(DomainError):
            command()
    assert (repr(call), call.version) == before
    assert new_events(call) == []


def test_events_carry_occurred_at_and_class_version() -> None:
    call = call_in(CallStatus.HELD)
    call.resume(at(20))
    call.transfer(TransferKind.ATTENDED, "2002", at(21))
    call.end(**end_kwargs())
    for event in call.collect_events():
        assert event.occurred_at.tzinfo is UTC  # type: ignore[attr-defined]
        assert type(event).class_version == 1  # type: ignore[attr-defined]
