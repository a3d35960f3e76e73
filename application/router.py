"""The routing process: offers waiting calls to free agents, and runs the timers.

A follower of CallCentreService's notification log (see docs/callcentre.md
for why not an eventsourcing ProcessApplication). Each ``step``:

1. ``pull``: read the log after the last position (``application.follow.pages``;
   ``streams.routing_process`` runs the steps in a ``Follower``), apply every Agent and
   Queue event to the in-memory ``RoutingView``; a queue is marked for routing
   when a call starts waiting (enqueued, requeued) or one of its members
   becomes available (login, resume, offer missed or withdrawn, call ended
   with no wrap-up, wrap-up finished).
2. ``sweep(now)``: offers whose deadline passed are missed (the agent's miss
   is counted, the call goes back to the head of its band, requeued calls in
   arrival order), wrap-ups that are due finish, calls that waited past a
   queue's maximum overflow.
3. ``route(now)``: for each marked queue, ``select_offers`` (priority, then
   arrival; the queue's strategy picks agents); each offer reserves the
   agent(s) and records the ring(s) on the queue, all of the step's offers in
   one transaction (falling back to one per offer if that is refused).

The reservation is the lock: two routers (or a router and a stale view)
reserving the same agent both append the agent's next version, and the
store refuses the second; the service re-runs it on fresh state, where the
agent is no longer available, and it fails with ``IllegalTransition``. The
queue then stays marked (with the other queues of the offer's agents, which
the step passed over for them) and is routed again on the next step, after
the log has brought the winner's reservation: the call goes to another free
agent or keeps waiting.

Nothing of the process's own is persisted: every decision is taken from the
aggregates' current state, so a restart re-reads the log and carries on
(a ring that was in flight at the crash times out and is requeued).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.callcentre import CallCentreService
from application.follow import domain_events, pages
from application.routing_view import OfferChange, RoutingView, clone
from domain.agent import AgentState
from domain.errors import DomainError
from domain.routing import Offer, select_offers

__all__ = ["OfferListener", "RoutingProcess", "RoutingStats"]

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
PlannedOffer = tuple[UUID, UUID, list[UUID]]  # queue, call, agents to ring


MISS_RETRY_S = 2.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class OfferListener(Protocol):
    """Told of every ring that starts or ends (from any writer), in log order.
    The SIP side implements it to ring and stop ringing agents' devices."""

    def offer_changed(self, change: OfferChange) -> None: ...


@dataclass
class RoutingStats:
    offers: int = 0  # transactions that reserved agent(s) for a call
    refused: int = 0  # offers the store refused (the view was behind the truth)
    timeouts: int = 0
    wrap_ups: int = 0
    overflows: int = 0


class RoutingProcess:
    def __init__(
        self,
        service: CallCentreService,
        *,
        clock: Clock = utc_now,
        listener: OfferListener | None = None,
        page_size: int = 1000,
    ) -> None:
        self.service = service
        self.clock = clock
        self.listener = listener
        self.page_size = page_size
        self.view = RoutingView()
        self.position = 0
        self.stats = RoutingStats()
        self._dirty: set[UUID] = set()
        self._live = False  # offer changes are reported once the history is read

    def step(self) -> int:
        """One round: pull, sweep, route. Returns the events pulled plus the
        commands issued (0 means there was nothing to do)."""
        pulled = self.pull()
        now = self.clock()
        return pulled + self.sweep(now) + self.route(now)

    def pull(self) -> int:
        """Apply what the log holds after ``position``; returns the number read."""
        total = 0
        for page in pages(self.service.recorder, self.position, page_size=self.page_size):
            self._absorb(domain_events(self.service, page))
            self.position = page[-1].id
            total += len(page)
        self._live = True
        return total

    def route(self, now: datetime) -> int:
        """Offer waiting calls of the marked queues; returns the offers committed.

        The step's offers are decided together (an agent in several queues gets
        at most one) and committed in ONE transaction: one turn at the event
        store's write lock however many agents came free at once. If the batch
        is refused (the view was behind), each offer is tried on its own.
        If it fails otherwise (the store unreachable), the queues stay marked:
        a quiet queue would not be marked again by the log."""
        queues, self._dirty = self._dirty, set()
        try:
            return self._route(sorted(queues), now)
        except BaseException:
            self._dirty |= queues
            raise

    def _route(self, queue_ids: list[UUID], now: datetime) -> int:
        plan = self._plan(queue_ids, now)
        if not plan:
            return 0
        try:
            events = self.service.offer_calls(plan, now, current=self._copies(plan))
        except DomainError:
            return sum(self._offer_one(offer, now) for offer in plan)
        self._absorb(events)
        self.stats.offers += len(plan)
        return len(plan)

    def sweep(self, now: datetime) -> int:
        """Run the timers that are due; returns the commands committed."""
        service = self.service
        done = 0
        for agent in self.view.agents_in(AgentState.RESERVED, AgentState.WRAP_UP):
            if agent.offer_expired(now) and agent.current_call_id is not None:
                done += self._issue("timeouts", service.miss_offer, agent.id,
                                    agent.current_call_id, now)
            elif agent.state is AgentState.WRAP_UP and agent.wrap_up_due(now):
                done += self._issue("wrap_ups", service.finish_wrap_up, agent.id, now)
        for queue in list(self.view.queues.values()):
            for call_id in queue.overdue(now):
                done += self._issue("overflows", service.overflow_call, queue.id, call_id, now)
        return done

    # -- internals -----------------------------------------------------------------------

    def _plan(self, queue_ids: list[UUID], now: datetime) -> list[PlannedOffer]:
        plan: list[PlannedOffer] = []
        taken: set[UUID] = set()
        for queue_id in queue_ids:
            queue = self.view.queues.get(queue_id)
            calls = queue.waiting_calls() if queue is not None else []
            if queue is None or not calls:
                continue
            members = self.view.snapshots(queue, now.date())
            cooling = {a.agent_id for a in members if self._just_missed(a.agent_id, now)}
            if cooling:
                self._dirty.add(queue_id)  # look again on a later tick
            free = [a for a in members if a.agent_id not in taken | cooling]
            for call_id, agent_ids in _by_call(select_offers(queue.routing_policy(), calls,
                                                             free)):
                plan.append((queue_id, call_id, agent_ids))
                taken.update(agent_ids)
        return plan

    def _just_missed(self, agent_id: UUID, now: datetime) -> bool:
        """An agent who has just missed an offer is not rung again for MISS_RETRY_S
        (like Asterisk's queue `retry`): an agent rejecting every call would
        otherwise be offered the same call in a tight loop, starving the others."""
        agent = self.view.agents.get(agent_id)
        return (agent is not None and agent.state is AgentState.AVAILABLE
                and agent.consecutive_misses > 0
                and (now - agent.state_since).total_seconds() < MISS_RETRY_S)

    def _copies(self, plan: list[PlannedOffer]) -> list[Aggregate]:
        """Private copies of the queues and agents of the plan, from the view."""
        queues = {queue_id for queue_id, _, _ in plan}
        agents = {a for _, _, agent_ids in plan for a in agent_ids}
        return [*(clone(self.view.queues[q]) for q in queues),
                *(clone(self.view.agents[a]) for a in agents)]

    def _offer_one(self, offer: PlannedOffer, now: datetime) -> int:
        queue_id, call_id, agent_ids = offer
        try:
            events = self.service.offer_call(queue_id, call_id, agent_ids, now,
                                             current=self._copies([offer]))
        except DomainError as refused:
            # The view was behind (the agent was taken, the call left): route
            # this queue again once the log has brought the news, and the other
            # queues of its agents too: their plans passed over the agents this
            # offer took, and if they are free after all nothing else marks them.
            log.debug("offer of %s in %s refused: %s", call_id, queue_id, refused)
            self.stats.refused += 1
            self._dirty.add(queue_id)
            for agent_id in agent_ids:
                self._dirty |= self.view.queues_of(agent_id)
            return 0
        self._absorb(events)
        self.stats.offers += 1
        return 1

    def _issue(self, counter: str, command: Callable[..., list[Any]], *args: Any) -> int:
        try:
            events = command(*args)
        except DomainError as refused:
            log.debug("timer command refused (%s); the log will tell", refused)
            return 0
        self._absorb(events)
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        return 1

    def _absorb(self, events: Iterable[Any]) -> None:
        dirty, changes = self.view.apply_all(events)
        self._dirty |= dirty
        if self.listener is not None and self._live:
            for change in changes:
                self.listener.offer_changed(change)


def _by_call(offers: list[Offer]) -> list[tuple[UUID, list[UUID]]]:
    """Offers grouped per call in order (ring-all rings several agents per call)."""
    grouped: dict[UUID, list[UUID]] = {}
    for offer in offers:
        grouped.setdefault(offer.call_id, []).append(offer.agent_id)
    return list(grouped.items())
