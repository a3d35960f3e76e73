"""Call flow through queues on the real PostgreSQL store, driven by the routing
process with a test clock: offer timeouts, abandons, transfers, overflow,
ring-all, wrap-up, and the LISTEN/NOTIFY runner."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from application.callcentre import CallCentreService
from application.router import RoutingProcess
from application.routing_view import OfferChange
from dialtone.database import eventsourcing_env
from domain.addressing import Target
from domain.agent import AUTO_PAUSE_REASON, Agent, AgentState
from domain.queue import Queue
from streams.routing_process import RoutingRunner

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def set(self, seconds: float) -> None:
        self.now = at(seconds)


class Changes:
    def __init__(self) -> None:
        self.seen: list[OfferChange] = []

    def offer_changed(self, change: OfferChange) -> None:
        self.seen.append(change)


@pytest.fixture
def service(database_url: str) -> Iterator[CallCentreService]:
    with CallCentreService(env=eventsourcing_env(database_url)) as app:
        yield app


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def router(service: CallCentreService, clock: Clock) -> RoutingProcess:
    return RoutingProcess(service, clock=clock, listener=Changes())


def agent(service: CallCentreService, key: str, *queues: UUID, login_at: float = 0,
          **settings: object) -> UUID:
    agent_id = service.create_agent(key, key.title(), occurred_at=T0, **settings).id  # type: ignore[arg-type]
    for queue_id in queues:
        service.add_member(queue_id, agent_id, 0, T0)
    service.login(agent_id, f"sip:{key}@pbx.example.com", at(login_at))
    return agent_id


def queue(service: CallCentreService, key: str, strategy: str = "longest_idle",
          **settings: object) -> UUID:
    return service.create_queue(key, key.title(), strategy, occurred_at=T0, **settings).id  # type: ignore[arg-type]


def test_unanswered_offer_goes_back_to_the_head_and_counts_a_miss(service, router, clock) -> None:
    sales = queue(service, "sales", offer_timeout_s=10)
    alice = agent(service, "alice", sales, auto_pause_after=1)
    first, second = uuid4(), uuid4()
    service.enqueue_call(sales, first, 0, at(1))
    service.enqueue_call(sales, second, 0, at(2))
    clock.set(3)
    router.step()
    assert service.get(Agent, alice).current_call_id == first

    clock.set(12.9)
    router.step()
    assert service.get(Agent, alice).state is AgentState.RESERVED  # deadline not reached

    clock.set(13)
    router.step()
    missed = service.get(Agent, alice)
    assert (missed.missed_offers, missed.state, missed.pause_reason) == (
        1, AgentState.PAUSED, AUTO_PAUSE_REASON)
    sales_now = service.get(Queue, sales)
    assert [c.call_id for c in sales_now.waiting_calls()] == [first, second]
    assert (sales_now.tally.requeued, sales_now.tally.agent_offers) == (1, 1)

    bob = agent(service, "bob", sales, login_at=14)
    clock.set(14)
    router.step()
    assert service.get(Agent, bob).current_call_id == first  # the head of the queue


def test_caller_hanging_up_while_waiting_is_an_abandon_with_its_wait(service, router) -> None:
    sales = queue(service, "sales", service_level_s=20)
    call = uuid4()
    service.enqueue_call(sales, call, 0, at(5))
    service.abandon_call(sales, call, at(35))
    (abandoned,) = [e for e in service.events.get(sales) if isinstance(e, Queue.CallAbandoned)]
    assert (abandoned.wait_s, abandoned.service_level_s) == (30.0, 20.0)
    tally = service.get(Queue, sales).tally
    assert (tally.offered, tally.abandoned, tally.abandoned_within_sl) == (1, 1, 0)


def test_caller_hanging_up_while_ringing_withdraws_the_offer_without_a_miss(
        service, router, clock) -> None:
    sales = queue(service, "sales")
    alice = agent(service, "alice", sales)
    call = uuid4()
    service.enqueue_call(sales, call, 0, at(1))
    clock.set(2)
    router.step()
    service.abandon_call(sales, call, at(4))
    router.step()
    state = service.get(Agent, alice)
    assert (state.state, state.missed_offers) == (AgentState.AVAILABLE, 0)
    kinds = [(c.kind, c.device_uri) for c in router.listener.seen]
    assert kinds == [("reserved", "sip:alice@pbx.example.com"),
                     ("cancelled", "sip:alice@pbx.example.com")]


def test_a_transferred_call_is_offered_once_to_each_queue_and_answered_once(
        service, router, clock) -> None:
    sales, support = queue(service, "sales", offer_timeout_s=5), queue(service, "support")
    alice = agent(service, "alice", sales, auto_pause_after=1)
    bob = agent(service, "bob", support)
    call = uuid4()
    service.enqueue_call(sales, call, 3, at(1))
    clock.set(1)
    router.step()  # rings alice ...
    clock.set(6)
    router.step()  # ... who misses it: back in sales
    service.transfer_call(sales, call, Target.queue(support), at(7))
    clock.set(7)
    router.step()  # rings bob in support
    service.accept_offer(bob, call, at(9))
    service.end_agent_call(bob, call, at(60))

    out, into = service.get(Queue, sales).tally, service.get(Queue, support).tally
    assert (out.offered, out.transferred_out, out.answered, out.agent_offers) == (1, 1, 0, 1)
    assert (into.offered, into.transferred_in, into.answered, into.agent_offers) == (1, 1, 1, 1)
    assert out.answered + into.answered == 1
    (enqueued,) = [e for e in service.events.get(support) if isinstance(e, Queue.CallEnqueued)]
    assert (enqueued.priority, enqueued.transferred_from) == (3, sales)
    assert service.get(Agent, alice).missed_offers == 1
    assert service.get(Agent, bob).calls_handled == 1


def test_ring_all_answered_by_one_agent_withdraws_the_other_rings(service, router, clock) -> None:
    sales = queue(service, "sales", "ring_all")
    agents = [agent(service, name, sales) for name in ("alice", "bob", "carol")]
    call = uuid4()
    service.enqueue_call(sales, call, 0, at(1))
    clock.set(2)
    router.step()
    assert {service.get(Agent, a).state for a in agents} == {AgentState.RESERVED}

    service.accept_offer(agents[1], call, at(4))
    states = [service.get(Agent, a) for a in agents]
    assert [a.state for a in states] == [AgentState.AVAILABLE, AgentState.ON_CALL,
                                         AgentState.AVAILABLE]
    assert sum(a.missed_offers for a in states) == 0
    assert service.get(Queue, sales).tally.answered == 1


def test_one_ring_all_agent_missing_keeps_the_call_ringing_the_others(
        service, router, clock) -> None:
    sales = queue(service, "sales", "ring_all")
    alice, bob = agent(service, "alice", sales), agent(service, "bob", sales)
    call = uuid4()
    service.enqueue_call(sales, call, 0, at(1))
    clock.set(2)
    router.step()
    service.miss_offer(alice, call, at(3))  # alice rejects; bob still rings
    assert service.get(Queue, sales).tally.requeued == 0
    service.miss_offer(bob, call, at(4))  # now nobody rings: back to waiting
    assert service.get(Queue, sales).tally.requeued == 1


def test_a_call_waiting_past_the_maximum_overflows_to_the_target_queue(
        service, router, clock) -> None:
    sales, backup = queue(service, "sales"), queue(service, "backup")
    service.set_overflow(sales, 30, Target.queue(backup), T0)
    call = uuid4()
    service.enqueue_call(sales, call, 2, at(1))
    clock.set(30.9)
    router.step()
    assert service.get(Queue, sales).tally.overflowed == 0
    clock.set(31)
    router.step()
    assert service.get(Queue, sales).tally.overflowed == 1
    assert [c.call_id for c in service.get(Queue, backup).waiting_calls()] == [call]
    assert router.stats.overflows == 1


def test_wrap_up_ends_when_due_and_the_agent_takes_the_next_call(service, router, clock) -> None:
    sales = queue(service, "sales", wrap_up_s=30)
    alice = agent(service, "alice", sales)
    first, second = uuid4(), uuid4()
    service.enqueue_call(sales, first, 0, at(1))
    clock.set(1)
    router.step()
    service.accept_offer(alice, first, at(2))
    service.enqueue_call(sales, second, 0, at(3))
    service.end_agent_call(alice, first, at(10))
    clock.set(39)
    router.step()
    assert service.get(Agent, alice).state is AgentState.WRAP_UP
    clock.set(40)
    router.step()
    assert service.get(Agent, alice).current_call_id == second


def test_the_runner_routes_as_soon_as_a_call_is_committed(
        service, database_url: str) -> None:
    sales = queue(service, "sales")
    alice = agent(service, "alice", sales)
    with CallCentreService(env=eventsourcing_env(database_url)) as own:
        runner = RoutingRunner(RoutingProcess(own), database_url, tick_s=5.0)
        runner.start()
        try:
            time.sleep(0.5)  # the runner has read the history and sleeps on LISTEN
            call = uuid4()
            service.enqueue_call(sales, call, 0, datetime.now(UTC))
            deadline = time.monotonic() + 3.0  # well under the 5 s tick: woken by NOTIFY
            while time.monotonic() < deadline and service.get(Agent, alice).current_call_id is None:
                time.sleep(0.02)
        finally:
            runner.stop()
    assert service.get(Agent, alice).current_call_id == call
