"""A queue's overflow to a recording, with fake legs: the caller hears the queue
tenant's recording, then the call ends failed / recording_played; a recording
that cannot be played says goodbye, recording_unavailable (application.b2bua.front)."""

from __future__ import annotations

from functools import partial
from uuid import uuid4

from application.b2bua import front as flow
from application.b2bua.centre_commands import CentreDone, Enqueue, Submit
from application.b2bua.front import Front, Stage
from application.b2bua.legs import Timer
from domain.addressing import Target
from domain.call import Disposition, HangupSide
from domain.queue import Queue
from tests.unit.b2bua_fakes import Clock, FakeLeg, QueueSettingsFake

SALES = Queue.id_for("sales", "acme")


Settings = partial(QueueSettingsFake, announce_position=True, tenant="acme")

def overflowed() -> tuple[Front[FakeLeg], list[flow.FrontAction]]:
    """A caller of tenant acme's queue, moved by its overflow to recording ``closed``."""
    visit = Front(uuid4(), FakeLeg("caller"), lambda _: None, {SALES: Settings("sales")}.get,
                  lambda t: f"{t.kind}:{t.value}", 20.0, Clock())
    [enqueue] = [a.command for a in visit.go(Target.queue(SALES)) if isinstance(a, Submit)]
    assert isinstance(enqueue, Enqueue)
    visit.centre_done(CentreDone(enqueue, True))
    return visit, visit.queue_left(SALES, Target.recording("closed"))


def test_an_overflow_to_a_recording_plays_the_queue_tenants_recording_then_ends() -> None:
    visit, moved = overflowed()
    assert moved == [flow.WithdrawRings(), flow.PlayRecording("closed", "acme")]
    assert visit.stage is Stage.ANNOUNCING
    assert visit.timer_fired(Timer.ANNOUNCE) == []  # no position said any more
    assert visit.recording_ended(played=True) == [
        flow.EndVisit(Disposition.FAILED, "recording_played", HangupSide.SYSTEM, None)]


def test_a_recording_that_cannot_be_played_says_goodbye() -> None:
    visit, _ = overflowed()
    assert visit.recording_ended(played=False) == [flow.Goodbye("recording_unavailable")]
    assert visit.recording_ended(played=True) == []  # heard once


def test_a_caller_hanging_up_during_the_recording_cancels_the_call() -> None:
    visit, _ = overflowed()
    assert visit.caller_left() == [flow.EndVisit(Disposition.CANCELLED, "originator_cancel",
                                                 HangupSide.CALLER, None)]
