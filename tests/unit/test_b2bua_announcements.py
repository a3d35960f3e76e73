"""Position announcements of a waiting caller, with fake legs: the ANNOUNCE timer
keeps going while the caller waits, through a failed position question and an
agent's answer that did not stand (application.b2bua.front, offers)."""

from __future__ import annotations

from functools import partial
from uuid import uuid4

from application.b2bua import actions as act
from application.b2bua import front as flow
from application.b2bua.centre_commands import AcceptOffer, AskPosition, CentreDone, Enqueue, Submit
from application.b2bua.front import Front, Stage
from application.b2bua.legs import Timer
from application.b2bua.offers import OfferReserved, Offers, RingPlaced
from domain.addressing import Target
from domain.queue import Queue
from tests.unit.b2bua_fakes import Clock, FakeLeg, QueueSettingsFake

SALES = Queue.id_for("sales")
SUPPORT = Queue.id_for("support")
EVERY_S = 20.0
AGAIN = [act.CancelTimer(Timer.ANNOUNCE), act.StartTimer(Timer.ANNOUNCE, EVERY_S)]


Settings = partial(QueueSettingsFake, announce_position=True)

QUEUES = {SALES: Settings("sales"), SUPPORT: Settings("support")}


def queued() -> Front[FakeLeg]:
    visit = Front(uuid4(), FakeLeg("caller"), lambda _: None, QUEUES.get,
                  lambda t: f"{t.kind}:{t.value}", EVERY_S, Clock())
    [enqueue] = [a.command for a in visit.go(Target.queue(SALES)) if isinstance(a, Submit)]
    assert isinstance(enqueue, Enqueue)
    visit.centre_done(CentreDone(enqueue, True))
    return visit


def asked(visit: Front[FakeLeg]) -> AskPosition:
    [ask] = [a.command for a in visit.timer_fired(Timer.ANNOUNCE) if isinstance(a, Submit)]
    assert isinstance(ask, AskPosition)
    return ask


def test_a_failed_position_question_is_asked_again_later() -> None:
    visit = queued()
    failed = visit.centre_done(CentreDone(asked(visit), False, error="store unreachable"))
    assert failed == AGAIN  # nothing said, the timer runs on
    said = visit.centre_done(CentreDone(asked(visit), True, 2))
    assert said == [flow.PlayPosition(2), *AGAIN]


def test_the_answer_for_a_queue_the_caller_left_is_not_said() -> None:
    visit = queued()
    ask = asked(visit)
    visit.queue_left(SALES, Target.queue(SUPPORT))  # its announcements start over there
    assert visit.centre_done(CentreDone(ask, True, 7)) == []


def test_an_agents_answer_that_did_not_stand_restarts_the_announcements() -> None:
    visit = queued()
    offers: Offers[FakeLeg] = Offers(visit, lambda _: "alice", Clock())
    agent, leg = uuid4(), FakeLeg("alice")
    offers.reserved(OfferReserved(agent, "sip:alice@x", None))
    offers.ring_placed(RingPlaced(agent, leg, "sip:alice@x", None))
    [accept] = [a.command for a in offers.agent_answered(offers.rings[agent])
                if isinstance(a, Submit)]
    assert isinstance(accept, AcceptOffer)
    assert visit.timer_fired(Timer.ANNOUNCE) == []  # fired while the answer was stored
    # The router had timed the offer out: the accept is refused, the caller waits on.
    refused = offers.accepted(CentreDone(accept, False, error="offer gone"), ended=False)
    assert visit.stage is Stage.QUEUE
    assert refused[-2:] == AGAIN
    assert isinstance(asked(visit), AskPosition)  # and the next tick asks again


def test_a_queue_without_announcements_starts_no_timer_again() -> None:
    visit = queued()
    visit.queue = Settings("sales", announce_position=False)  # changed while waiting
    assert visit.back_to_queue() == []
    assert visit.centre_done(CentreDone(AskPosition(SALES, visit.call_id), False)) == []
