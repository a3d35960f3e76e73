"""Offers of a waiting call-centre call (application.b2bua.offers) with fake
legs: agents' devices rung, answered, missed, withdrawn, and the agent who
then talks to the caller. No SIP stack, no database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID, uuid4

from application.b2bua import actions as act
from application.b2bua.centre_commands import (
    AcceptOffer,
    CentreDone,
    EndAgentCall,
    MissOffer,
    Submit,
)
from application.b2bua.front import Front, Stage
from application.b2bua.legs import Answered, Gone, Ringing
from application.b2bua.offers import (
    CancelOfferTimer,
    DropLeg,
    OfferReserved,
    Offers,
    PlaceAgent,
    RingFailed,
    RingPlaced,
    StartOfferTimer,
    TalkTo,
)
from domain.call_commands import ConnectAgent, RingCall
from tests.unit.b2bua_fakes import Clock, FakeLeg

ANN, BOB = uuid4(), uuid4()


def waiting() -> Offers[FakeLeg]:
    """The offers of a call waiting in a queue."""
    clock = Clock()
    front: Front[FakeLeg] = Front(uuid4(), FakeLeg("caller"), lambda _: None, lambda _: None,
                                  str, clock=clock)
    front.stage = Stage.QUEUE
    return Offers(front, lambda agent: "ann" if agent == ANN else "bob", clock)


def ringing(offers: Offers[FakeLeg], agent: UUID, name: str) -> FakeLeg:
    """``agent``'s device rung on a new leg (as the adapter places it)."""
    [place] = offers.reserved(OfferReserved(agent, f"sip:{name}@127.0.0.1", None))
    assert isinstance(place, PlaceAgent)
    leg = FakeLeg(name)
    assert offers.ring_placed(RingPlaced(agent, leg, place.device_uri, None)) == []
    return leg


def commands(actions: Sequence[object]) -> list[object]:
    return [a.command for a in actions if isinstance(a, Submit | act.Emit)]


def test_a_reserved_agent_is_rung_until_the_deadline_and_a_grace() -> None:
    offers = waiting()
    deadline = offers.clock() + timedelta(seconds=15)
    assert offers.reserved(OfferReserved(ANN, "sip:ann@h", deadline)) == [
        PlaceAgent(ANN, "sip:ann@h", deadline)]
    [timer] = offers.ring_placed(RingPlaced(ANN, FakeLeg("ann"), "sip:ann@h", deadline))
    assert isinstance(timer, StartOfferTimer)
    assert timer.agent_id == ANN
    assert 16.0 <= timer.seconds <= 17.0  # 15 s left (less a clock tick) + 2 s of grace


def test_no_ring_unless_waiting_and_once_per_agent() -> None:
    offers = waiting()
    ringing(offers, ANN, "ann")
    assert offers.reserved(OfferReserved(ANN, "sip:ann@h", None)) == []
    offers.front.stage = Stage.TALKING
    assert offers.reserved(OfferReserved(BOB, "sip:bob@h", None)) == []


def test_a_device_that_cannot_be_called_is_a_miss() -> None:
    offers = waiting()
    [miss] = commands(offers.reserved(OfferReserved(ANN, None, None)))
    assert isinstance(miss, MissOffer)
    assert miss.agent_id == ANN
    [miss] = commands(offers.ring_failed(RingFailed(BOB, "sip:bob@h")))
    assert isinstance(miss, MissOffer)
    assert miss.agent_id == BOB


def test_the_first_ring_counts_unless_the_call_was_answered_once() -> None:
    offers = waiting()
    leg = ringing(offers, ANN, "ann")
    ring = offers.ring_of(leg)
    assert ring is not None
    [ring_call] = commands(offers.ring_state(ring, Ringing(leg, 180)))
    assert isinstance(ring_call, RingCall)
    assert offers.ring_state(ring, Ringing(leg, 100)) == []
    offers.front.ever_answered = True  # back in a queue after a transfer
    assert offers.ring_state(ring, Ringing(leg, 180)) == []


def test_a_device_that_rejects_or_rings_out_is_a_miss() -> None:
    offers = waiting()
    leg = ringing(offers, ANN, "ann")
    ring = offers.ring_of(leg)
    assert ring is not None
    actions = offers.ring_state(ring, Gone(leg, 486))
    assert actions[0] == CancelOfferTimer(ANN)
    assert [type(c) for c in commands(actions)] == [MissOffer]
    assert offers.ring_of(leg) is None


def test_the_router_ending_an_offer_stops_the_ring_without_a_miss() -> None:
    offers = waiting()
    leg = ringing(offers, ANN, "ann")
    assert offers.stop_ring(ANN) == [CancelOfferTimer(ANN), DropLeg(leg)]
    assert offers.stop_ring(ANN) == []


def test_an_answer_withdraws_the_other_rings_and_accepts_the_offer() -> None:
    offers = waiting()
    ann, bob = ringing(offers, ANN, "ann"), ringing(offers, BOB, "bob")
    ring = offers.ring_of(ann)
    assert ring is not None
    actions = offers.ring_state(ring, Answered(ann))
    assert offers.front.stage is Stage.CONNECTING
    assert actions[:3] == [CancelOfferTimer(ANN), CancelOfferTimer(BOB), DropLeg(bob)]
    [accept] = commands(actions)
    assert isinstance(accept, AcceptOffer)
    talk = offers.accepted(CentreDone(accept, ok=True), ended=False)
    connect = commands(talk)[0]
    assert isinstance(connect, ConnectAgent)
    assert connect.agent == "ann"
    assert talk[-1] == TalkTo(ANN, ann, accept.at)
    assert offers.agent_id == ANN


def test_an_offer_that_no_longer_stands_hangs_the_agent_up_and_the_call_waits_on() -> None:
    offers = waiting()
    ann = ringing(offers, ANN, "ann")
    ring = offers.ring_of(ann)
    assert ring is not None
    [accept] = commands(offers.ring_state(ring, Answered(ann)))
    assert isinstance(accept, AcceptOffer)
    assert offers.accepted(CentreDone(accept, ok=False, error="expired"), ended=False) == [
        CancelOfferTimer(ANN), DropLeg(ann)]
    assert offers.front.stage is Stage.QUEUE
    assert offers.agent_id is None


def test_a_caller_gone_while_the_answer_was_stored_ends_the_agents_call() -> None:
    offers = waiting()
    ann = ringing(offers, ANN, "ann")
    ring = offers.ring_of(ann)
    assert ring is not None
    [accept] = commands(offers.ring_state(ring, Answered(ann)))
    assert isinstance(accept, AcceptOffer)
    actions = offers.accepted(CentreDone(accept, ok=True), ended=True)
    assert [type(c) for c in commands(actions)] == [EndAgentCall]
    assert actions[-1] == DropLeg(ann)


def test_an_answer_after_the_caller_moved_on_stops_that_ring() -> None:
    offers = waiting()
    ann = ringing(offers, ANN, "ann")
    ring = offers.ring_of(ann)
    assert ring is not None
    offers.front.stage = Stage.DIALLING  # an overflow to a number meanwhile
    assert offers.ring_state(ring, Answered(ann)) == [CancelOfferTimer(ANN), DropLeg(ann)]


def test_the_end_drops_every_ring_and_releases_the_agent() -> None:
    offers = waiting()
    offers.agent_id = ANN
    bob = ringing(offers, BOB, "bob")
    actions = offers.drop_all()
    assert actions[:2] == [CancelOfferTimer(BOB), DropLeg(bob)]
    [end] = commands(actions)
    assert isinstance(end, EndAgentCall)
    assert end.agent_id == ANN
    assert offers.release() == []  # released once
