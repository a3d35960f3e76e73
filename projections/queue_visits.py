"""queue_visits and queue_handling: the facts every queue and agent figure counts
(projections/kpi.py), folded from the Queue and Agent events.

* A visit opens with ``call_enqueued`` (a call moved from another queue opens a
  visit here flagged ``transferred_in``; the first queue's visit closed as
  ``transferred_out``: the call counts once in each) and closes with its outcome:
  ``call_answered``, ``call_abandoned`` (``short_abandoned`` when it waited less
  than the queue's short-abandon threshold), ``call_overflowed`` or
  ``call_transferred_out``.
* A handling opens with the agent's ``offer_accepted``, gets its talk time at
  ``call_ended`` (which includes hold: the agent is on the call while it is
  held) and its wrap-up when the agent next changes state after wrap-up.

The fold is pure: ``queue_changes`` and ``agent_changes`` turn one event into
row changes; ``queue_visits_sql.write`` applies them with SQL and ``Facts`` in memory (the
property tests' fast path), so both are the same definition. Each event is
folded once (the call-centre group's version gate), and every change is
idempotent anyway (insert-if-absent, close-if-open).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from projections import agent_view, kpi, queue_view
from projections.envelope import EventEnvelope, uuid_of, uuid_or_none

NAMES = ("queue_visits", "queue_handling")
LEAVING = {"call_answered": "answered", "call_abandoned": "abandoned",
           "call_overflowed": "overflowed", "call_transferred_out": "transferred_out"}


@dataclass(frozen=True)
class OpenVisit:
    tenant: str
    visit: kpi.Visit
    offered_version: int
    short_abandon_s: float
    position: int


@dataclass(frozen=True)
class CloseVisit:
    queue_id: UUID
    call_id: UUID
    outcome: str
    left_at: datetime
    wait_s: float
    service_level_s: float | None
    agent_id: UUID | None
    position: int


@dataclass(frozen=True)
class OpenHandling:
    tenant: str
    handling: kpi.Handling
    position: int


@dataclass(frozen=True)
class HandlingEnded:
    agent_id: UUID
    call_id: UUID
    ended_at: datetime
    wrap_up: bool  # False: no after-call work, so the handling is complete now
    position: int


@dataclass(frozen=True)
class EndWrapUp:
    agent_id: UUID
    call_id: UUID
    at: datetime
    position: int


Change = OpenVisit | CloseVisit | OpenHandling | HandlingEnded | EndWrapUp


class AgentMoment(NamedTuple):
    """What the fold needs of an agent before and after one event. A named tuple: made
    twice for every agent event folded, where a frozen dataclass cost three times as much."""

    tenant: str
    state: str
    state_version: int
    call_id: UUID | None
    queue_id: UUID | None


def moment(view: agent_view.AgentView) -> AgentMoment:
    return AgentMoment(view.tenant, view.state, view.state_version, view.current_call_id,
                       view.current_queue_id)


def queue_changes(tenant: str, short_abandon_s: float, e: EventEnvelope) -> list[Change]:
    """The row changes of one Queue event (``short_abandon_s``: the queue's
    threshold as it stood when the event happened)."""
    data = e.data
    if e.name == "call_enqueued":
        visit = kpi.Visit(queue_id=e.subject, call_id=uuid_of(data["call_id"]),
                          offered_at=e.occurred_at,
                          transferred_in=data.get("transferred_from") is not None)
        return [OpenVisit(tenant, visit, e.version, short_abandon_s, e.position)]
    outcome = LEAVING.get(e.name)
    if outcome is None:
        return []
    wait_s = float(data["wait_s"])
    if outcome == "abandoned" and wait_s < short_abandon_s:
        outcome = "short_abandoned"
    agent = data.get("agent_id")
    threshold = data.get("service_level_s")
    return [CloseVisit(e.subject, uuid_of(data["call_id"]), outcome, e.occurred_at, wait_s,
                       None if threshold is None else float(threshold),
                       uuid_or_none(agent), e.position)]


def agent_changes(before: AgentMoment | None, after: AgentMoment,
                  e: EventEnvelope) -> list[Change]:
    """The row changes of one Agent event, from the agent's view before and after it."""
    changes: list[Change] = []
    moved = before is not None and before.state_version != after.state_version
    if moved and before is not None and before.state == "wrap_up" and before.call_id:
        changes.append(EndWrapUp(e.subject, before.call_id, e.occurred_at, e.position))
    if e.name == "offer_accepted":
        handling = kpi.Handling(agent_id=e.subject, call_id=uuid_of(e.data["call_id"]),
                                queue_id=after.queue_id, accepted_at=e.occurred_at)
        changes.append(OpenHandling(after.tenant, handling, e.position))
    elif e.name == "call_ended":
        changes.append(HandlingEnded(e.subject, uuid_of(e.data["call_id"]), e.occurred_at,
                               e.data.get("wrap_up_until") is not None, e.position))
    return changes


# -- in memory (the property tests' fast path) ---------------------------------------------


class Facts:
    """queue_visits and queue_handling as dictionaries, changed exactly as ``write`` does."""

    def __init__(self) -> None:
        self.visits: dict[tuple[UUID, UUID, datetime], kpi.Visit] = {}
        self.handled: dict[tuple[UUID, UUID, datetime], kpi.Handling] = {}

    def apply(self, changes: Iterable[Change]) -> None:
        for change in changes:
            self._apply(change)

    def _apply(self, c: Change) -> None:
        if isinstance(c, OpenVisit):
            self.visits.setdefault((c.visit.queue_id, c.visit.call_id, c.visit.offered_at),
                                   c.visit)
        elif isinstance(c, CloseVisit):
            for key, v in self.visits.items():
                if key[:2] == (c.queue_id, c.call_id) and v.outcome is None \
                        and v.offered_at <= c.left_at:
                    self.visits[key] = replace(v, outcome=c.outcome, left_at=c.left_at,
                                               wait_s=c.wait_s,
                                               service_level_s=c.service_level_s)
        elif isinstance(c, OpenHandling):
            h = c.handling
            self.handled.setdefault((h.agent_id, h.call_id, h.accepted_at), h)
        else:
            self._end(c)

    def _end(self, c: HandlingEnded | EndWrapUp) -> None:
        for key, h in self.handled.items():
            if key[:2] != (c.agent_id, c.call_id):
                continue
            if isinstance(c, HandlingEnded) and h.ended_at is None:
                talk = max(0.0, (c.ended_at - h.accepted_at).total_seconds())
                ended = replace(h, ended_at=c.ended_at, talk_s=talk)
                if not c.wrap_up:  # no after-call work: the handling is complete
                    ended = replace(ended, wrap_up_ended_at=c.ended_at, wrap_up_s=0.0)
                self.handled[key] = ended
            elif isinstance(c, EndWrapUp) and h.ended_at is not None \
                    and h.wrap_up_ended_at is None:
                wrap = max(0.0, (c.at - h.ended_at).total_seconds())
                self.handled[key] = replace(h, wrap_up_ended_at=c.at, wrap_up_s=wrap)


def facts_of(envelopes: Iterable[EventEnvelope]) -> Facts:
    """The facts of a history, folded in memory as the call-centre group folds
    them (each aggregate's events in version order, through the same views)."""
    facts = Facts()
    agents: dict[UUID, agent_view.AgentView] = {}
    queues: dict[UUID, queue_view.QueueView] = {}
    for e in sorted(envelopes, key=lambda e: e.position):
        if e.kind == "queue":
            q = queues.get(e.subject)
            if q is not None:
                facts.apply(queue_changes(q.tenant, q.short_abandon_s, e))
            queues[e.subject] = queue_view.start(e) if q is None else queue_view.advance(q, e)
        elif e.kind == "agent":
            a = agents.get(e.subject)
            before = None if a is None else moment(a)
            a = agents[e.subject] = agent_view.start(e) if a is None else agent_view.advance(a, e)
            facts.apply(agent_changes(before, moment(a), e))
    return facts
