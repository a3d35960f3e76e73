"""Offers of a waiting call-centre call: agents' devices rung, answered or
missed, and the agent who then talks to the caller, without pjsua2 (the
adapter is ``adapters/sip/sessions/centre_session.py``).

The router reserves an agent for the call (an offer); the worker rings the
agent's device (several at once for ring-all)::

    reserved --device placed--> RINGING (RingCall on the first 180/183, unless
                                 the call was answered once already)
             --device not callable--> missed
    RINGING --device 200 OK, call still waiting--> the call is CONNECTING:
                 the other rings withdrawn, accept_offer submitted
            --device gone (rejected, rang out)--> missed (miss_offer)
            --the offer ended elsewhere (router: missed, cancelled), or its
              deadline + grace passed--> stop ringing (no miss of ours)
    accept_offer stored --call still CONNECTING--> ConnectAgent; the agent talks
                        --refused (the offer no longer stands)--> stop ringing,
                          the call waits on (QUEUE: ``Front.back_to_queue``,
                          position announcements again)
                        --the caller left meanwhile--> the agent's call ends

Convention: a ring this flow stops is hung up with its listener detached
(``DropLeg``), so its end is not a miss.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

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
from application.b2bua.plain import now
from domain.call_commands import ConnectAgent, RingCall

log = logging.getLogger(__name__)

L = TypeVar("L", bound=Hashable)

OFFER_GRACE_S = 2.0  # past an offer's deadline, stop ringing even if the router is late


# Facts.


@dataclass(frozen=True)
class OfferReserved:
    """The router reserved ``agent_id`` for the call: ring ``device_uri``."""

    agent_id: UUID
    device_uri: str | None
    deadline: datetime | None


@dataclass(frozen=True)
class RingPlaced(Generic[L]):
    """The adapter is ringing the agent's device on ``leg`` (``PlaceAgent``)."""

    agent_id: UUID
    leg: L
    device_uri: str
    deadline: datetime | None


@dataclass(frozen=True)
class RingFailed:
    """No INVITE could be sent to the agent's device."""

    agent_id: UUID
    device_uri: str | None


# Actions.


@dataclass(frozen=True)
class PlaceAgent:
    """Ring the agent's device at ``device_uri``; report ``RingPlaced`` or ``RingFailed``."""

    agent_id: UUID
    device_uri: str
    deadline: datetime | None


@dataclass(frozen=True)
class StartOfferTimer:
    """Report ``stop_ring(agent_id)`` in ``seconds`` (unless cancelled)."""

    agent_id: UUID
    seconds: float


@dataclass(frozen=True)
class CancelOfferTimer:
    agent_id: UUID


@dataclass(frozen=True)
class DropLeg(Generic[L]):
    """Hang ``leg`` up without hearing its end (a ring we stopped)."""

    leg: L


@dataclass(frozen=True)
class TalkTo(Generic[L]):
    """The agent on ``leg`` talks to the caller from ``at`` (answer, bridge, record)."""

    agent_id: UUID
    leg: L
    at: datetime


OfferAction = (act.Emit | Submit | PlaceAgent | StartOfferTimer | CancelOfferTimer
               | DropLeg[L] | TalkTo[L] | act.StartTimer | act.CancelTimer)


@dataclass
class Ring(Generic[L]):
    """An offer being rung on an agent's device."""

    agent_id: UUID
    leg: L


class Offers(Generic[L]):
    """The rings of one call and the agent who took it."""

    def __init__(self, front: Front[L], agent_key: Callable[[UUID], str],
                 clock: Callable[[], datetime] = now) -> None:
        self.front = front
        self.call_id = front.call_id
        self.agent_key = agent_key
        self.clock = clock
        self.rings: dict[UUID, Ring[L]] = {}
        self.accepting: dict[UUID, Ring[L]] = {}  # answered, accept_offer being stored
        self.agent_id: UUID | None = None  # the agent talking to the caller

    def ring_of(self, leg: L) -> Ring[L] | None:
        return next((r for r in self.rings.values() if r.leg is leg), None)

    # The router's offers.

    def reserved(self, offer: OfferReserved) -> list[OfferAction[L]]:
        if self.front.stage is not Stage.QUEUE or offer.agent_id in self.rings:
            return []
        if offer.device_uri is None:
            return self.ring_failed(RingFailed(offer.agent_id, None))
        return [PlaceAgent(offer.agent_id, offer.device_uri, offer.deadline)]

    def ring_failed(self, fact: RingFailed) -> list[OfferAction[L]]:
        log.warning("call %s: cannot ring agent %s at %s", self.call_id, fact.agent_id,
                    fact.device_uri)
        return self._miss(fact.agent_id)

    def ring_placed(self, fact: RingPlaced[L]) -> list[OfferAction[L]]:
        log.info("call %s: ringing agent %s at %s", self.call_id, self.agent_key(fact.agent_id),
                 fact.device_uri)
        self.rings[fact.agent_id] = Ring(fact.agent_id, fact.leg)
        if fact.deadline is None:
            return []
        wait = (fact.deadline - self.clock()).total_seconds() + OFFER_GRACE_S
        return [StartOfferTimer(fact.agent_id, max(wait, 0.0))]

    def stop_ring(self, agent_id: UUID) -> list[OfferAction[L]]:
        """The offer ended elsewhere (missed by the router, withdrawn): stop ringing."""
        ring = self.rings.pop(agent_id, None)
        return self._drop(ring) if ring is not None else []

    def withdraw(self, keep: UUID | None = None) -> list[OfferAction[L]]:
        actions: list[OfferAction[L]] = []
        for agent_id in [a for a in self.rings if a != keep]:
            actions += self.stop_ring(agent_id)
        return actions

    def _drop(self, ring: Ring[L]) -> list[OfferAction[L]]:
        return [CancelOfferTimer(ring.agent_id), DropLeg(ring.leg)]

    def _miss(self, agent_id: UUID) -> list[OfferAction[L]]:
        return [Submit(MissOffer(agent_id, self.call_id, self.clock()))]

    # A ringing device's facts.

    def ring_state(self, ring: Ring[L], fact: Ringing[L] | Answered[L] | Gone[L]
                   ) -> list[OfferAction[L]]:
        if isinstance(fact, Ringing):
            if fact.status in (180, 183) and not self.front.ever_answered:
                return [act.Emit(RingCall(self.call_id, self.clock()))]  # the first ring counts
            return []
        if isinstance(fact, Answered):
            return self.agent_answered(ring)
        self.rings.pop(ring.agent_id, None)
        log.info("call %s: agent %s did not answer (%d)", self.call_id,
                 self.agent_key(ring.agent_id), fact.status)
        return [CancelOfferTimer(ring.agent_id), *self._miss(ring.agent_id)]

    def agent_answered(self, ring: Ring[L]) -> list[OfferAction[L]]:
        if self.front.stage is not Stage.QUEUE:
            return self.stop_ring(ring.agent_id)
        self.front.stage = Stage.CONNECTING
        self.accepting[ring.agent_id] = ring
        actions: list[OfferAction[L]] = [CancelOfferTimer(ring.agent_id),
                                          *self.withdraw(keep=ring.agent_id)]
        return [*actions, Submit(AcceptOffer(ring.agent_id, self.call_id, self.clock()))]

    def accepted(self, done: CentreDone, ended: bool) -> list[OfferAction[L]]:
        """The outcome of ``AcceptOffer``; ``ended``: the call ended meanwhile."""
        command = done.command
        assert isinstance(command, AcceptOffer)
        ring = self.accepting.pop(command.agent_id)
        self.rings.pop(command.agent_id, None)  # (a ring stopped meanwhile is gone already)
        if ended or self.front.stage is not Stage.CONNECTING:
            # The caller left while the answer was being stored.
            ends = [Submit(EndAgentCall(ring.agent_id, self.call_id, self.clock()))]
            return [*(ends if done.ok else []), *self._drop(ring)]
        if not done.ok:
            log.info("call %s: offer to %s no longer stands (%s); the caller waits on",
                     self.call_id, ring.agent_id, done.error)
            return [*self._drop(ring), *self.front.back_to_queue()]
        self.agent_id = ring.agent_id
        return [act.Emit(ConnectAgent(self.call_id, command.at, self.agent_key(ring.agent_id))),
                TalkTo(ring.agent_id, ring.leg, command.at)]

    # The agent leaving.

    def release(self) -> list[OfferAction[L]]:
        """The agent is done with the call (a transfer, the end): their wrap-up starts."""
        agent_id, self.agent_id = self.agent_id, None
        if agent_id is None:
            return []
        return [Submit(EndAgentCall(agent_id, self.call_id, self.clock()))]

    def drop_all(self) -> list[OfferAction[L]]:
        """The call ends: every ring stopped, the agent released."""
        actions: list[OfferAction[L]] = []
        for ring in list(self.rings.values()):
            actions += self._drop(ring)
        self.rings.clear()
        return [*actions, *self.release()]
