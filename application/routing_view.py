"""The routing process's in-memory view: every Agent and Queue aggregate, kept
current by applying their events in notification-log order.

The view decides (who is free, which calls wait); the aggregates in the store
decide for real (a reservation of an agent the view wrongly thinks free is
refused). Events the router itself just recorded are applied at once, so it
does not offer the same agent twice before reading them back; when the log
delivers them later they are skipped (an event applies only on top of the
version before it).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, is_dataclass, replace
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.agent import Agent, AgentState
from domain.queue import Queue
from domain.routing import AgentSnapshot, snapshot_of

__all__ = ["OfferChange", "RoutingView", "clone"]


@dataclass(frozen=True)
class OfferChange:
    """An agent's ring started (``reserved``) or ended (``cancelled``, ``missed``,
    ``accepted``): what a SIP side must do with the agent's device."""

    kind: str
    agent_id: UUID
    call_id: UUID
    queue_id: UUID | None
    device_uri: str | None
    deadline: datetime | None
    occurred_at: datetime


A = TypeVar("A", bound=Aggregate)

OFFER_EVENTS: dict[type[Any], str] = {
    Agent.Reserved: "reserved",
    Agent.OfferAccepted: "accepted",
    Agent.OfferMissed: "missed",
    Agent.OfferCancelled: "cancelled",
}


def clone(aggregate: A) -> A:
    """A private copy of an Agent or Queue, cheap enough to make per decision.

    Their attributes are immutable values (str, UUID, datetime, enums, frozen
    dataclasses, tuples), dicts and lists of such values, or a mutable
    dataclass of numbers (QueueTally): copying the containers and the mutable
    dataclasses is enough (tests/unit/test_callcentre_router.py checks it).
    A deep copy of a busy queue cost a fifth of a routing decision."""
    copied = copy.copy(aggregate)
    for name, value in vars(aggregate).items():
        if isinstance(value, dict | list):
            setattr(copied, name, copy.copy(value))
        elif is_dataclass(value) and not isinstance(value, type) and not _frozen(value):
            setattr(copied, name, replace(value))
    return copied


def _frozen(value: object) -> bool:
    params = getattr(value, "__dataclass_params__", None)
    return bool(params is not None and params.frozen)


class RoutingView:
    def __init__(self) -> None:
        self.agents: dict[UUID, Agent] = {}
        self.queues: dict[UUID, Queue] = {}
        self._queues_of: dict[UUID, set[UUID]] = defaultdict(set)
        self._handled: dict[UUID, tuple[date, int]] = {}

    def apply(self, event: Any) -> tuple[set[UUID], OfferChange | None]:
        """Apply one event (if it is the next of its aggregate); return the queues
        worth routing again, and the offer change it records, if any."""
        if isinstance(event, Agent.Event):
            return self._apply_agent(event)
        if isinstance(event, Queue.Event):
            return self._apply_queue(event), None
        return set(), None

    def apply_all(self, events: Iterable[Any]) -> tuple[set[UUID], list[OfferChange]]:
        dirty: set[UUID] = set()
        changes: list[OfferChange] = []
        for event in events:
            queues, change = self.apply(event)
            dirty |= queues
            if change is not None:
                changes.append(change)
        return dirty, changes

    def snapshots(self, queue: Queue, today: date) -> list[AgentSnapshot]:
        """The routing view of the queue's member agents."""
        return [
            snapshot_of(self.agents[agent_id], penalty=member.penalty,
                        calls_handled_today=self.handled_on(agent_id, today),
                        last_offered=member.last_offered)
            for agent_id, member in queue.members.items() if agent_id in self.agents
        ]

    def handled_on(self, agent_id: UUID, day: date) -> int:
        handled_day, count = self._handled.get(agent_id, (day, 0))
        return count if handled_day == day else 0

    def agents_in(self, *states: AgentState) -> list[Agent]:
        return [a for a in self.agents.values() if a.state in states]

    def queues_of(self, agent_id: UUID) -> set[UUID]:
        """The queues the agent is a member of."""
        return set(self._queues_of.get(agent_id, ()))

    # -- internals -----------------------------------------------------------------------

    def _advance(self, known: dict[UUID, Any], event: Any) -> Any | None:
        """The aggregate after ``event``, or None when the event is not its next one
        (a duplicate, one of our own already applied, or one we cannot place)."""
        current = known.get(event.originator_id)
        if current is None:
            if event.originator_version != 1:
                return None
            current = event.mutate(None)
            known[event.originator_id] = current
            return current
        if event.originator_version != current.version + 1:
            return None
        event.mutate(current)
        return current

    def _apply_agent(self, event: Any) -> tuple[set[UUID], OfferChange | None]:
        agent: Agent | None = self._advance(self.agents, event)
        if agent is None:
            return set(), None
        if isinstance(event, Agent.CallEnded):
            day = event.occurred_at.date()
            self._handled[agent.id] = (day, self.handled_on(agent.id, day) + 1)
        dirty = set(self._queues_of[agent.id]) if agent.state is AgentState.AVAILABLE else set()
        return dirty, self._offer_change(agent, event)

    def _apply_queue(self, event: Any) -> set[UUID]:
        queue: Queue | None = self._advance(self.queues, event)
        if queue is None:
            return set()
        if isinstance(event, Queue.MemberAdded):
            self._queues_of[event.agent_id].add(queue.id)
        elif isinstance(event, Queue.MemberRemoved):
            self._queues_of[event.agent_id].discard(queue.id)
        return {queue.id} if any(not c.ringing for c in queue.calls) else set()

    @staticmethod
    def _offer_change(agent: Agent, event: Any) -> OfferChange | None:
        kind = OFFER_EVENTS.get(type(event))
        if kind is None:
            return None
        reserved = isinstance(event, Agent.Reserved)
        return OfferChange(
            kind=kind, agent_id=agent.id, call_id=event.call_id,
            queue_id=event.queue_id if reserved else None,
            device_uri=agent.device_uri,
            deadline=event.offer_deadline if reserved else None,
            occurred_at=event.occurred_at,
        )
