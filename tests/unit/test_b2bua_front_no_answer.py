"""application.b2bua.front: a number the call centre dials has the worker's no-answer
timeout, as a plain call's callee has (application.b2bua.plain)."""

from __future__ import annotations

from uuid import UUID, uuid4

from application.b2bua import actions as act
from application.b2bua import front as flow
from application.b2bua.front import Front, Stage
from application.b2bua.legs import Answered, Gone, Ringing, Timer
from domain.call import Disposition, HangupSide
from domain.ivr import IvrMenu
from tests.unit.b2bua_fakes import FakeLeg
from tests.unit.test_b2bua_front import QUEUES


def timed_front() -> Front[FakeLeg]:
    """A front whose dials have 30 s to be answered (as the worker sets it)."""
    menus: dict[UUID, IvrMenu] = {}
    return Front(uuid4(), FakeLeg("caller"), menus.get, QUEUES.get,
                 lambda t: f"{t.kind}:{t.value}", no_answer_s=30.0)


def test_a_dialled_number_that_rings_past_the_no_answer_timeout_ends_the_call() -> None:
    """The plain call's callee had a no-answer timer, the call-centre dial (IVR to a
    number, a number destination, an overflow, a blind transfer) none: a number that
    rang for ever kept the caller on music for ever."""
    visit = timed_front()
    assert visit.dial("sip:2000@h") == [flow.PlayMusic("default"),
                                        act.StartTimer(Timer.NO_ANSWER, 30.0),
                                        flow.PlaceCallee("sip:2000@h")]
    assert visit.dialled(Ringing(FakeLeg("callee"), 180))  # ringing, still waiting
    assert visit.timer_fired(Timer.NO_ANSWER) == [flow.EndVisit(
        Disposition.NO_ANSWER, "no_answer_timeout", HangupSide.SYSTEM, 480)]
    visit.ever_answered = True  # the target of a blind transfer
    assert visit.timer_fired(Timer.NO_ANSWER) == [
        flow.EndAnswered(HangupSide.SYSTEM, "transfer_failed")]


def test_an_answer_or_an_end_stops_the_no_answer_timer() -> None:
    visit = timed_front()
    visit.dial("sip:2000@h")
    assert visit.dialled(Answered(FakeLeg("callee"))) == [act.CancelTimer(Timer.NO_ANSWER),
                                                         flow.Talk()]
    visit.dial("sip:2001@h")
    assert visit.dialled(Gone(FakeLeg("callee"), 486))[0] == act.CancelTimer(Timer.NO_ANSWER)
    visit.stage = Stage.QUEUE  # no longer dialling: a late timer does nothing
    assert visit.timer_fired(Timer.NO_ANSWER) == []
