"""The projections' folds (agent_view, queue_view) read the published envelopes
only, yet must agree with the aggregates: random call-centre days, recorded by
the real service and router in memory, folded and compared field by field."""

from __future__ import annotations

import random
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from application.callcentre import CallCentreService
from application.router import RoutingProcess
from domain.addressing import Target
from domain.agent import Agent, AgentState
from domain.errors import DomainError
from domain.queue import Queue
from projections import agent_view, queue_view
from projections.envelope import EventEnvelope, decode

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
AGENTS = ("alice", "bob", "carol", "dave")


class Day:
    """One random day: callers arrive, hang up, get transferred; agents answer,
    miss, pause, log out; the router offers and runs its timers."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = T0
        self.service = CallCentreService()
        self.router = RoutingProcess(self.service, clock=lambda: self.now)
        strategies = ("longest_idle", "ring_all", "round_robin")
        self.queues = [self.service.create_queue(
            f"q{n}", f"Q{n}", s, occurred_at=T0, wrap_up_s=self.rng.choice([0, 5]),
            offer_timeout_s=8).id for n, s in enumerate(strategies)]
        self.service.set_overflow(self.queues[0], 40, Target.queue(self.queues[1]), T0)
        self.agents = []
        for key in AGENTS:
            agent = self.service.create_agent(key, key.title(), {"english": 50},
                                              occurred_at=T0, auto_pause_after=2).id
            for queue in self.rng.sample(self.queues, 2):
                self.service.add_member(queue, agent, self.rng.randint(0, 2), T0)
            self.agents.append(agent)
        self.waiting: list[tuple[UUID, UUID]] = []  # (queue, call) the callers think they are in

    def run(self, steps: int) -> None:
        actions = [self.arrive, self.arrive, self.answer, self.miss, self.hang_up_agent,
                   self.abandon, self.transfer, self.presence, self.presence]
        for _ in range(steps):
            self.now += timedelta(seconds=self.rng.uniform(0.5, 4))
            with suppress(DomainError):  # a refused step is part of a real day
                self.rng.choice(actions)()
            self.router.step()

    def arrive(self) -> None:
        queue, call = self.rng.choice(self.queues), uuid4()
        self.service.enqueue_call(queue, call, self.rng.choice([0, 0, 5]), self.now)
        self.waiting.append((queue, call))

    def _agent_in(self, *states: AgentState) -> Agent | None:
        found = [a for a in (self.service.get(Agent, i) for i in self.agents) if a.state in states]
        return self.rng.choice(found) if found else None

    def answer(self) -> None:
        agent = self._agent_in(AgentState.RESERVED)
        if agent is not None and agent.current_call_id is not None:
            self.service.accept_offer(agent.id, agent.current_call_id, self.now)

    def miss(self) -> None:
        agent = self._agent_in(AgentState.RESERVED)
        if agent is not None and agent.current_call_id is not None:
            self.service.miss_offer(agent.id, agent.current_call_id, self.now)

    def hang_up_agent(self) -> None:
        agent = self._agent_in(AgentState.ON_CALL)
        if agent is not None and agent.current_call_id is not None:
            self.service.end_agent_call(agent.id, agent.current_call_id, self.now)

    def abandon(self) -> None:
        if self.waiting:
            queue, call = self.waiting.pop(self.rng.randrange(len(self.waiting)))
            self.service.abandon_call(queue, call, self.now)

    def transfer(self) -> None:
        if self.waiting:
            queue, call = self.rng.choice(self.waiting)
            to = self.rng.choice([q for q in self.queues if q != queue])
            self.service.transfer_call(queue, call, Target.queue(to), self.now)
            self.waiting = [(to, c) if c == call else (q, c) for q, c in self.waiting]

    def presence(self) -> None:
        agent = self.service.get(Agent, self.rng.choice(self.agents))
        moves = {
            AgentState.LOGGED_OUT: lambda: self.service.login(agent.id, "sip:x@pbx", self.now),
            AgentState.AVAILABLE: lambda: self.service.pause(agent.id, "break", self.now),
            AgentState.PAUSED: lambda: self.service.resume(agent.id, self.now),
            AgentState.WRAP_UP: lambda: self.service.logout(agent.id, self.now),
        }
        move = moves.get(agent.state)
        if move is not None:
            move()

    def envelopes(self) -> list[EventEnvelope]:
        return decode(self.service, self.service.recorder.select_notifications(1, 100_000))


def fold(envelopes: list[EventEnvelope], kind: str, start, advance) -> dict[UUID, object]:  # type: ignore[no-untyped-def]
    views: dict[UUID, object] = {}
    for envelope in envelopes:
        if envelope.kind == kind:
            view = views.get(envelope.subject)
            views[envelope.subject] = start(envelope) if view is None else advance(view, envelope)
    return views


@pytest.mark.parametrize("seed", range(8))
def test_folded_views_agree_with_the_aggregates(seed: int) -> None:
    day = Day(seed)
    day.run(160)
    envelopes = day.envelopes()
    agents = fold(envelopes, "agent", agent_view.start, agent_view.advance)
    queues = fold(envelopes, "queue", queue_view.start, queue_view.advance)

    for agent_id in day.agents:
        agent, view = day.service.get(Agent, agent_id), agents[agent_id]
        assert isinstance(view, agent_view.AgentView)
        assert (view.state, view.state_since, view.pause_reason, view.device_uri) == (
            agent.state.value, agent.state_since, agent.pause_reason, agent.device_uri)
        assert (view.missed_offers, view.calls_handled, view.skills, view.last_version) == (
            agent.missed_offers, agent.calls_handled, agent.skills, agent.version)
        if agent.state is not AgentState.WRAP_UP:  # the view keeps the call just ended
            assert (view.current_call_id, view.current_queue_id) == (
                agent.current_call_id, agent.current_queue_id)
        assert (view.offer_deadline, view.wrap_up_until) == (
            agent.offer_deadline, agent.wrap_up_until)
    for queue_id in day.queues:
        queue, qview = day.service.get(Queue, queue_id), queues[queue_id]
        assert isinstance(qview, queue_view.QueueView)
        assert qview.calls == queue.calls
        assert qview.tally == queue.tally
        assert qview.members == queue.members
        assert (qview.max_wait_s, qview.last_version) == (queue.max_wait_s, queue.version)
    assert day.router.stats.offers > 10  # the day was busy enough to mean something


def test_the_fold_puts_requeued_calls_where_the_aggregate_did_without_knowing_who_rang() -> None:
    """queue_calls does not store which calls rang an agent, so the fold reloaded
    from it forgets; the requeue's event says where the call went back."""
    service = CallCentreService()
    queue = service.create_queue("sales", "Sales", "longest_idle", occurred_at=T0).id
    agents = []
    for key in ("alice", "bob"):
        agents.append(agent := service.create_agent(key, key.title(), occurred_at=T0).id)
        service.add_member(queue, agent, 0, T0)
        service.login(agent, f"sip:{key}@pbx", T0)
    calls = [uuid4() for _ in range(3)]
    for n, call in enumerate(calls):
        service.enqueue_call(queue, call, 0, T0 + timedelta(seconds=n + 1))
    for agent, call in zip(agents, calls, strict=False):
        service.offer_call(queue, call, [agent], T0 + timedelta(seconds=5))
    for agent, call in zip(agents, calls, strict=False):  # the first caller's ring ends first
        service.miss_offer(agent, call, T0 + timedelta(seconds=9))

    def reloaded(view: queue_view.QueueView, envelope: EventEnvelope) -> queue_view.QueueView:
        view.calls = [replace(c, rung=False) for c in view.calls]  # as queue_live.load reads
        return queue_view.advance(view, envelope)

    envelopes = decode(service, service.recorder.select_notifications(1, 1000))
    folded = fold(envelopes, "queue", queue_view.start, reloaded)[queue]
    assert isinstance(folded, queue_view.QueueView)
    assert [c.call_id for c in folded.calls] == calls
    assert [c.call_id for c in service.get(Queue, queue).calls] == calls
