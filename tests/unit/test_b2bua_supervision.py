"""Supervisors on a call-centre call (application.b2bua.supervision) with fake
legs: called, joined, switching mode, leaving, and the API command each
recorded change carries out."""

from __future__ import annotations

from uuid import uuid4

from application.b2bua import actions as act
from application.b2bua.supervision import Supervision
from application.call_control import AuditLink
from domain.call import SupervisionMode
from domain.call_commands import StartSupervision, StopSupervision
from tests.unit.b2bua_fakes import Clock, FakeLeg

CALL = uuid4()
CALLED_BY = AuditLink(CALL, "control-join", "req-1")
SWITCHED_BY = AuditLink(CALL, "control-switch", "req-2")
TAKEN_OFF_BY = AuditLink(CALL, "control-leave", "req-3")


def called() -> tuple[Supervision[FakeLeg], FakeLeg]:
    supervision: Supervision[FakeLeg] = Supervision(CALL, Clock())
    leg = FakeLeg("supervisor")
    supervision.calling("sup-1", "sip:sup@127.0.0.1", SupervisionMode.MONITOR, leg, CALLED_BY)
    return supervision, leg


def commands(actions: list[act.Action[FakeLeg]]) -> list[object]:
    return [a.command for a in actions if isinstance(a, act.Emit)]


def test_a_called_supervisor_joins_when_their_device_answers() -> None:
    supervision, leg = called()
    watch = supervision.on_leg(leg)
    assert watch is not None
    assert supervision.joined() == []
    actions = supervision.device_answered(watch, None)
    [start] = commands(actions)
    assert isinstance(start, StartSupervision)
    assert (start.supervisor, start.mode, start.cause) == (
        "sup-1", SupervisionMode.MONITOR, CALLED_BY)
    assert actions[-1] == act.Bridge()
    assert supervision.joined() == [watch]
    assert supervision.device_answered(watch, None) == []  # once


def test_a_mode_switch_is_recorded_once_joined_with_its_own_cause() -> None:
    supervision, _ = called()
    watch = supervision.of("sup-1")
    assert watch is not None
    assert supervision.switch(watch, SupervisionMode.WHISPER, SWITCHED_BY) == []
    [joined] = commands(supervision.device_answered(watch, None))
    assert joined.mode is SupervisionMode.WHISPER  # type: ignore[attr-defined]
    [barge] = commands(supervision.switch(watch, SupervisionMode.BARGE, SWITCHED_BY))
    assert (barge.mode, barge.cause) == (  # type: ignore[attr-defined]
        SupervisionMode.BARGE, SWITCHED_BY)


def test_leaving_hangs_up_and_the_end_carries_the_command_that_asked() -> None:
    supervision, leg = called()
    watch = supervision.of("sup-1")
    assert watch is not None
    supervision.device_answered(watch, None)
    assert supervision.leave(watch, TAKEN_OFF_BY) == [act.HangUp(leg)]
    actions = supervision.device_gone(watch)
    [stop] = commands(actions)
    assert isinstance(stop, StopSupervision)
    assert (stop.supervisor, stop.cause) == ("sup-1", TAKEN_OFF_BY)
    assert supervision.of("sup-1") is None


def test_a_device_that_never_answered_leaves_no_record() -> None:
    supervision, leg = called()
    watch = supervision.on_leg(leg)
    assert watch is not None
    assert supervision.device_gone(watch) == [act.Bridge()]
    assert supervision.watches == {}


def test_the_call_ending_drops_every_supervisor() -> None:
    supervision, leg = called()
    other = FakeLeg("supervisor-2")
    supervision.calling("sup-2", "sip:sup2@127.0.0.1", SupervisionMode.BARGE, other, None)
    assert supervision.drop_all() == [leg, other]
    assert supervision.on_leg(leg) is None
