"""Reservation races on the real PostgreSQL event store: the reservation of an
agent is the lock, so however many routers race, no agent is ever offered two
calls; a router that loses takes another agent or leaves the call waiting."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from application.callcentre import CallCentreService
from application.router import RoutingProcess
from dialtone.database import eventsourcing_env
from domain.agent import Agent, AgentState
from domain.queue import Queue

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
RACERS = 6


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def services(database_url: str) -> Iterator[Callable[[], CallCentreService]]:
    """A factory of services on the same store, each with its own connections
    and cache: separate writers, as separate router processes would be."""
    with ExitStack() as stack:
        def make(**env: str) -> CallCentreService:
            return stack.enter_context(CallCentreService(env=eventsourcing_env(database_url,
                                                                              **env)))
        yield make


def setup_centre(service: CallCentreService, agents: int, queues: int) -> tuple[
        list[UUID], list[UUID]]:
    """Logged-in agents, each a member of every queue, longest idle first in order."""
    agent_ids = []
    for n in range(agents):
        agent = service.create_agent(f"agent-{n}", f"Agent {n}", occurred_at=T0)
        service.login(agent.id, f"sip:{n}@pbx.example.com", at(n))
        agent_ids.append(agent.id)
    queue_ids = []
    for n in range(queues):
        queue = service.create_queue(f"queue-{n}", f"Queue {n}", "longest_idle", occurred_at=T0)
        for agent_id in agent_ids:
            service.add_member(queue.id, agent_id, 0, T0)
        queue_ids.append(queue.id)
    return agent_ids, queue_ids


def reservations(service: CallCentreService, agent_id: UUID) -> list[UUID]:
    events = service.events.get(agent_id)
    return [e.call_id for e in events if isinstance(e, Agent.Reserved)]


def test_the_store_refuses_every_reservation_of_an_agent_but_the_first(services) -> None:
    setup = services()
    (agent_id,), _ = setup_centre(setup, agents=1, queues=0)
    racers = [services() for _ in range(RACERS)]
    barrier = threading.Barrier(RACERS)

    def reserve(service: CallCentreService) -> str:
        agent: Agent = service.repository.get(agent_id)  # every racer reads version N ...
        agent.reserve(uuid4(), None, 15, at(10))
        barrier.wait(timeout=10)  # ... before any of them appends version N + 1
        try:
            service.save(agent)
        except IntegrityError:
            return "refused"
        return "saved"

    with ThreadPoolExecutor(RACERS) as pool:
        outcomes = Counter(pool.map(reserve, racers))

    assert outcomes == {"saved": 1, "refused": RACERS - 1}
    assert len(reservations(setup, agent_id)) == 1


def test_racing_routers_never_offer_two_calls_to_one_agent(services) -> None:
    setup = services()
    agent_ids, queue_ids = setup_centre(setup, agents=3, queues=RACERS)
    calls = [uuid4() for _ in queue_ids]
    for queue_id, call_id in zip(queue_ids, calls, strict=True):
        setup.enqueue_call(queue_id, call_id, 0, at(20))
    routers = [RoutingProcess(services(), clock=lambda: at(21))
               for _ in range(RACERS)]
    for router in routers:
        router.pull()  # every router now sees the same three free agents
    barrier = threading.Barrier(RACERS)

    def route(router: RoutingProcess) -> int:
        barrier.wait(timeout=10)
        return router.route(at(21))

    with ThreadPoolExecutor(RACERS) as pool:
        made = sum(pool.map(route, routers))

    reserved = {a: reservations(setup, a) for a in agent_ids}
    assert all(len(calls_of) == 1 for calls_of in reserved.values()), reserved
    assert made == len(agent_ids)
    refused = sum(r.stats.refused for r in routers)
    assert refused >= RACERS - len(agent_ids)  # the race happened and was lost cleanly
    ringing = [c for q in queue_ids for c in setup.get(Queue, q).calls if c.ringing]
    assert sorted(a for c in ringing for a in c.offered_to) == sorted(agent_ids)


def test_a_router_that_loses_an_agent_offers_the_call_to_another(services) -> None:
    setup = services()
    (first, second), (q1, q2) = setup_centre(setup, agents=2, queues=2)
    c1, c2 = uuid4(), uuid4()
    setup.enqueue_call(q1, c1, 0, at(20))
    setup.enqueue_call(q2, c2, 0, at(20))
    router = RoutingProcess(services(), clock=lambda: at(21))
    router.pull()  # its view: both calls waiting, both agents free

    services().offer_call(q1, c1, [first], at(21))  # another router wins the first agent
    router.route(at(21))  # its plan needs the first agent: refused, as a batch and alone
    assert router.stats.refused >= 1

    router.step()  # reads the winner's reservation and routes again
    assert setup.get(Agent, first).current_call_id == c1
    assert setup.get(Agent, second).current_call_id == c2
    assert reservations(setup, first) == [c1]
    assert reservations(setup, second) == [c2]
    assert setup.get(Queue, q1).call(c1).offered_to == (first,)  # never a second ring


def test_a_router_whose_agent_was_taken_offers_the_call_to_the_next_free_one(
        services) -> None:
    setup = services()
    (first, second), (q1,) = setup_centre(setup, agents=2, queues=1)
    c1, other = uuid4(), uuid4()
    setup.enqueue_call(q1, c1, 0, at(20))
    router = RoutingProcess(services(), clock=lambda: at(21))
    router.pull()  # its view: c1 waits, the longest idle (first) is free

    services().offer_direct(first, other, 15, at(21))  # a direct call takes the first agent
    assert router.route(at(21)) == 0
    assert router.stats.refused == 1
    router.step()  # reads the reservation, routes the queue again: the second agent
    assert setup.get(Agent, second).current_call_id == c1
    assert reservations(setup, first) == [other]


def test_a_loser_with_no_other_agent_leaves_the_call_waiting(services) -> None:
    setup = services()
    (agent_id,), (q1, q2) = setup_centre(setup, agents=1, queues=2)
    setup.enqueue_call(q1, uuid4(), 0, at(20))
    setup.enqueue_call(q2, uuid4(), 0, at(20))
    left, right = (RoutingProcess(services(), clock=lambda: at(21))
                   for _ in range(2))
    left.pull()
    right.pull()

    assert left.route(at(21)) + right.route(at(21)) == 1
    assert left.step() + right.step() > 0  # both read the reservation; nothing more to offer
    assert left.route(at(21)) + right.route(at(21)) == 0

    assert setup.get(Agent, agent_id).state is AgentState.RESERVED
    waiting = [len(setup.get(Queue, q).waiting_calls()) for q in (q1, q2)]
    assert sorted(waiting) == [0, 1]
    assert len(reservations(setup, agent_id)) == 1
