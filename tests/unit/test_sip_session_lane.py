"""The SIP session adapter (adapters/sip/sessions/session.py) with fake legs: it
performs its flow's actions on the legs, and a call-centre call's lane, attached
by composition (``Session.lane``), takes over the steps it changes while the
plain steps it calls back still work.

The legs are fakes with the attributes the session reads; the session, its
plain flow and the actions' dispatch are the real ones, without pjsua2 running.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from adapters.sip.pjsua.legs import CONFIRMED, DISCONNECTED, Leg
from adapters.sip.sessions.session import Session, SessionContext
from application.b2bua import actions as act
from application.b2bua.legs import InboundFacts, LegRole
from domain.call import Disposition, HangupSide
from domain.call_commands import AnswerCall, CallCommand, EndCall, InitiateCall, RouteCall

TARGET = "sip:2000@127.0.0.1:5090"


class FakeLeg:
    """A pjsua2-free stand-in for adapters.sip.pjsua.legs.Leg."""

    def __init__(self, role: LegRole) -> None:
        self.role = role
        self.label = str(role)
        self.listener: Any = None
        self.state = 0
        self.last_status = 0
        self.confirmed = False
        self.disconnected = False
        self.no_slot = False
        self.did: list[tuple[str, object]] = []

    def place(self, target: str) -> bool:
        self.did.append(("place", target))
        return True

    def respond(self, status: int, headers: dict[str, str] | None = None) -> None:  # noqa: ARG002
        self.did.append(("respond", status))

    def end(self, status: int | None = None, headers: dict[str, str] | None = None  # noqa: ARG002
            ) -> None:
        self.did.append(("end", status))

    def detach(self) -> None:
        self.disconnected = True

    def audio(self) -> None:
        return None  # no media in these tests: bridging has nothing to connect

    def audio_info(self) -> None:
        return None

    def answers(self) -> None:
        self.state, self.last_status, self.confirmed = CONFIRMED, 200, True

    def hangs_up(self) -> None:
        self.state, self.disconnected = DISCONNECTED, True


class Harness:
    def __init__(self) -> None:
        self.commands: list[CallCommand] = []
        self.ended: list[Session] = []
        self.placed: list[FakeLeg] = []
        self.ctx = SessionContext(sink=self, new_leg=self._new_leg, call_later=self._later,
                                  no_answer_timeout=30.0, on_end=self.ended.append)
        self.caller = FakeLeg(LegRole.CALLER)
        facts = InboundFacts("sip-call-1@test", "1000", "2000")
        self.session = Session(self.ctx, cast(Leg, self.caller), facts)

    def put(self, command: CallCommand) -> None:
        self.commands.append(command)

    def _new_leg(self, role: LegRole) -> Leg:
        leg = FakeLeg(role)
        self.placed.append(leg)
        return cast(Leg, leg)

    def _later(self, seconds: float, callback: Callable[[], None]) -> _Timer:  # noqa: ARG002
        return _Timer()


class _Timer:
    def cancel(self) -> None:
        pass


class RecordingLane:
    """A lane that records which of the session's steps reached it; for the end and
    the hang-ups it calls back the session's plain step, as CentreCall does."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.steps: list[tuple[Any, ...]] = []
        session.lane = self

    def leg_state(self, leg: Leg) -> None:
        self.steps.append(("leg_state", leg))

    def key_pressed(self, leg: Leg, digit: str) -> None:
        self.steps.append(("key_pressed", leg, digit))

    def end_now(self, cause: str) -> None:
        self.steps.append(("end_now", cause))

    def finish(self, end: EndCall, answered: bool) -> None:
        self.steps.append(("finish", answered))
        self.session.plain_finish(end, answered)

    def end_all_but(self, keep: Leg | None) -> None:
        self.steps.append(("end_all_but", keep))
        self.session.plain_end_all_but(keep)

    def bridge(self) -> None:
        self.steps.append(("bridge",))

    def unbridge(self) -> None:
        self.steps.append(("unbridge",))

    def transfer_answered(self, transferor: Leg, new: Leg) -> None:
        self.steps.append(("transfer_answered", transferor, new))

    def emitted(self, command: CallCommand) -> CallCommand:
        self.steps.append(("emitted", type(command)))
        return command


def test_a_plain_session_places_the_callee_answers_the_caller_and_ends_on_the_callees_bye(
) -> None:
    h = Harness()
    h.session.start(TARGET)
    [callee] = h.placed
    assert callee.did == [("place", TARGET)]
    assert callee.listener is h.session

    callee.answers()
    h.session.leg_state(cast(Leg, callee))
    assert ("respond", 200) in h.caller.did

    callee.hangs_up()
    h.session.leg_state(cast(Leg, callee))
    assert [type(c) for c in h.commands] == [InitiateCall, RouteCall, AnswerCall, EndCall]
    end = h.commands[-1]
    assert isinstance(end, EndCall)
    assert end.hangup_side is HangupSide.CALLEE
    assert ("end", None) in h.caller.did  # the caller is sent a BYE
    assert h.ended == [h.session]
    assert h.session.lane is None


def test_a_lane_takes_over_the_steps_it_changes_and_its_commands_pass_through_it() -> None:
    h = Harness()
    lane = RecordingLane(h.session)
    caller = cast(Leg, h.caller)

    h.session.leg_state(caller)
    h.session.leg_dtmf(caller, "5")
    h.session.end_now("worker_shutdown")
    h.session.run([act.Bridge(), act.Unbridge()])
    assert lane.steps == [("leg_state", caller), ("key_pressed", caller, "5"),
                          ("end_now", "worker_shutdown"), ("bridge",), ("unbridge",)]
    assert h.commands == []  # the plain flow heard none of it
    assert h.caller.did == []

    lane.steps.clear()
    h.session.initiate()
    other = h.session.ctx.new_leg(LegRole.CALLEE)
    h.session.run([act.TransferAnswered(caller, other)])
    end = EndCall(h.session.call_id, datetime.now(UTC), Disposition.FAILED, "test",
                  HangupSide.SYSTEM, None)
    h.session.run([act.Finish(end, False), act.HangUpAllBut(None)])
    assert lane.steps == [("emitted", InitiateCall), ("transfer_answered", caller, other),
                          ("finish", False), ("emitted", EndCall), ("end_all_but", None)]
    assert [type(c) for c in h.commands] == [InitiateCall, EndCall]
    assert h.ended == [h.session]  # the plain end, called back by the lane
    assert ("end", None) in h.caller.did  # and the plain hang-up of every leg

