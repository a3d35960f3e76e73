"""The routing process on in-memory persistence: its view of the log, the
copies it hands to commands, what it tells the SIP side, and its choices."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import OperationalError

from application.callcentre import CallCentreService
from application.router import RoutingProcess
from application.routing_view import OfferChange, RoutingView, clone
from domain.agent import Agent, AgentState
from domain.queue import Queue
from domain.queue_values import QueuedCall, QueueMember, QueueTally

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Changes:
    def __init__(self) -> None:
        self.seen: list[OfferChange] = []

    def offer_changed(self, change: OfferChange) -> None:
        self.seen.append(change)


@pytest.fixture
def service() -> CallCentreService:
    return CallCentreService()


def centre(service: CallCentreService, strategy: str, *agents: str) -> tuple[UUID, list[UUID]]:
    queue = service.create_queue("sales", "Sales", strategy, occurred_at=T0).id
    ids = []
    for n, key in enumerate(agents):
        agent = service.create_agent(key, key.title(), occurred_at=T0).id
        service.add_member(queue, agent, 0, T0)
        service.login(agent, f"sip:{key}@pbx", at(n))
        ids.append(agent)
    return queue, ids


def test_clone_shares_no_mutable_state_with_the_original() -> None:
    queue = Queue.create("sales", "Sales", occurred_at=T0)
    queue.add_member(UUID(int=1), 0, T0)
    queue.enqueue(UUID(int=9), 0, T0)
    copied = clone(queue)
    copied.enqueue(UUID(int=10), 0, at(1))
    copied.add_member(UUID(int=2), 1, at(1))
    copied.require_skill("english", 10, at(1))
    assert (len(queue.calls), len(queue.members), queue.tally.offered) == (1, 1, 1)
    assert not queue.required_skills
    assert len(queue.pending_events) == 3  # its own, untouched by the copy's
    agent = Agent.create("alice", "Alice", {"english": 5}, occurred_at=T0)
    copied_agent = clone(agent)
    copied_agent.set_skill("german", 7, at(1))
    assert agent.skills == {"english": 5}


def test_clone_covers_every_kind_of_queue_attribute() -> None:
    """clone copies dicts, lists and mutable dataclasses; everything else a
    Queue or Agent holds must be immutable for that to be enough."""
    frozen = {QueuedCall, QueueMember}
    assert all(dataclasses.fields(c) and c.__dataclass_params__.frozen  # type: ignore[attr-defined]
               for c in frozen)
    assert not QueueTally.__dataclass_params__.frozen  # type: ignore[attr-defined]
    queue = Queue.create("sales", "Sales", occurred_at=T0)
    agent = Agent.create("alice", "Alice", occurred_at=T0)
    allowed = (str, int, float, bool, UUID, datetime, tuple, dict, list, QueueTally, type(None))
    for aggregate in (queue, agent):
        for name, value in vars(aggregate).items():
            assert isinstance(value, allowed), (type(aggregate).__name__, name, type(value))


def test_view_applies_each_event_once_whatever_the_order_of_arrival(service) -> None:
    centre(service, "longest_idle", "alice")
    events = [service.mapper.to_domain_event(n)
              for n in service.recorder.select_notifications(1, 100)]
    view = RoutingView()
    view.apply_all(events)
    view.apply_all(events[2:])  # duplicates are skipped
    alice = view.agents[Agent.id_for("alice")]
    assert (alice.state, alice.version) == (AgentState.AVAILABLE, 2)


def test_a_free_member_marks_its_queues_for_routing(service) -> None:
    queue, (alice,) = centre(service, "longest_idle", "alice")
    view = RoutingView()
    view.apply_all(service.mapper.to_domain_event(n)
                   for n in service.recorder.select_notifications(1, 100))
    seen = service.recorder.max_notification_id() or 0
    service.pause(alice, "lunch", at(5))
    service.resume(alice, at(6))
    later = [service.mapper.to_domain_event(n)
             for n in service.recorder.select_notifications(seen + 1, 100)]
    dirty = [view.apply(e)[0] for e in later]
    assert dirty == [set(), {queue}]  # paused: nothing; available again: its queue


def test_history_is_read_silently_then_offers_are_reported(service) -> None:
    queue, (alice,) = centre(service, "longest_idle", "alice")
    old = uuid4()
    service.enqueue_call(queue, old, 0, at(1))
    service.offer_call(queue, old, [alice], at(2))
    service.accept_offer(alice, old, at(3))
    service.end_agent_call(alice, old, at(4))
    changes = Changes()
    router = RoutingProcess(service, clock=Clock(), listener=changes)
    router.step()
    assert changes.seen == []  # the old offer is history, not a ring to start
    call = uuid4()
    service.enqueue_call(queue, call, 0, at(10))
    router.step()
    (ring,) = changes.seen
    assert (ring.kind, ring.agent_id, ring.call_id, ring.queue_id, ring.device_uri) == (
        "reserved", alice, call, queue, "sip:alice@pbx")
    assert ring.deadline is not None


def test_calls_are_offered_by_priority_then_arrival(service) -> None:
    queue, (alice,) = centre(service, "longest_idle", "alice")
    early, urgent = uuid4(), uuid4()
    service.enqueue_call(queue, early, 0, at(1))
    service.enqueue_call(queue, urgent, 9, at(2))
    RoutingProcess(service, clock=Clock()).step()
    assert service.get(Agent, alice).current_call_id == urgent


def test_fewest_calls_counts_the_calls_handled_today(service) -> None:
    queue, (alice, bob) = centre(service, "fewest_calls", "alice", "bob")
    for n in range(2):  # alice handled two calls yesterday, bob one today
        service.offer_direct(alice, (call := uuid4()), 15, at(-86_400 + n))
        service.accept_offer(alice, call, at(-86_400 + n))
        service.end_agent_call(alice, call, at(-86_400 + n))
    service.offer_direct(bob, (call := uuid4()), 15, at(10))
    service.accept_offer(bob, call, at(11))
    service.end_agent_call(bob, call, at(12))
    service.enqueue_call(queue, (waiting := uuid4()), 0, at(20))
    clock = Clock()
    clock.now = at(21)
    RoutingProcess(service, clock=clock).step()
    assert service.get(Agent, alice).current_call_id == waiting


def test_ring_all_reserves_every_free_member_in_one_offer(service) -> None:
    queue, agents = centre(service, "ring_all", "alice", "bob", "carol")
    service.enqueue_call(queue, (call := uuid4()), 0, at(5))
    router = RoutingProcess(service, clock=Clock())
    router.step()
    assert router.stats.offers == 1
    assert {service.get(Agent, a).current_call_id for a in agents} == {call}
    assert len(service.get(Queue, queue).call(call).offered_to) == 3


def test_a_refused_offer_keeps_the_queue_marked_until_the_log_catches_up(service) -> None:
    queue, (alice,) = centre(service, "longest_idle", "alice")
    call = uuid4()
    service.enqueue_call(queue, call, 0, at(5))
    router = RoutingProcess(service, clock=Clock())
    router.pull()  # its view: the call waits, alice is free
    service.pause(alice, "lunch", at(6))  # ... which the router has not read yet
    assert router.route(at(7)) == 0
    assert router.stats.refused == 1
    router.step()  # reads the pause; the queue is routed again: nobody free
    assert (router.stats.offers, router.stats.refused) == (0, 1)
    service.resume(alice, at(8))
    router.step()
    assert service.get(Agent, alice).current_call_id == call


def test_an_agent_who_just_missed_is_passed_over_then_offered_again_after_the_retry(
    service,
) -> None:
    queue, (alice, bob) = centre(service, "longest_idle", "alice", "bob")
    service.logout(bob, at(2))
    service.enqueue_call(queue, (call := uuid4()), 0, at(5))
    clock = Clock()
    clock.now = at(5)
    router = RoutingProcess(service, clock=clock)
    router.step()
    assert service.get(Agent, alice).current_call_id == call
    service.miss_offer(alice, call, at(6))  # alice rejects (486)

    clock.now = at(6.5)  # alice, the longest idle, is cooling down; bob comes back
    service.login(bob, "sip:bob@pbx", at(6.2))
    router.step()
    assert service.get(Agent, bob).current_call_id == call
    assert service.get(Agent, alice).current_call_id is None


def test_a_lone_agent_who_missed_is_offered_the_call_again_after_the_retry(service) -> None:
    queue, (alice,) = centre(service, "longest_idle", "alice")
    service.enqueue_call(queue, (call := uuid4()), 0, at(5))
    clock = Clock()
    clock.now = at(5)
    router = RoutingProcess(service, clock=clock)
    router.step()
    service.miss_offer(alice, call, at(6))

    clock.now = at(7)
    router.step()
    assert service.get(Agent, alice).state is AgentState.AVAILABLE  # not rung at once
    clock.now = at(8.5)
    router.step()
    assert service.get(Agent, alice).current_call_id == call


def test_a_store_failure_while_routing_keeps_the_queues_marked(service, monkeypatch) -> None:
    """The step fails (the runner logs it and steps again); the queue it was
    routing must still be marked: nothing new in the log will mark it."""
    queue, (alice,) = centre(service, "longest_idle", "alice")
    clock = Clock()
    router = RoutingProcess(service, clock=clock)
    router.step()  # nothing waits: no queue stays marked
    service.enqueue_call(queue, (call := uuid4()), 0, at(10))
    offer_calls = service.offer_calls
    failures = [OperationalError("server closed the connection unexpectedly")]

    def unreachable_once(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return offer_calls(*args, **kwargs)

    monkeypatch.setattr(service, "offer_calls", unreachable_once)
    clock.now = at(10.1)
    with pytest.raises(OperationalError):
        router.step()
    clock.now = at(10.2)
    router.step()
    assert service.get(Agent, alice).current_call_id == call


def test_a_queue_passed_over_for_an_agent_a_refused_offer_took_is_routed_again(
    service,
) -> None:
    """Xavier is free in two queues with a call each: the step offers him the
    first queue's call and passes the second over; the store refuses the offer
    (that caller hung up meanwhile), so the second queue is routed again."""
    first, second = sorted(service.create_queue(key, key.title(), "longest_idle",
                                                occurred_at=T0).id
                           for key in ("sales", "support"))  # routed in id order
    xavier = service.create_agent("xavier", "Xavier", occurred_at=T0).id
    for queue in (first, second):
        service.add_member(queue, xavier, 0, T0)
    service.login(xavier, "sip:xavier@pbx", at(1))
    router = RoutingProcess(service, clock=Clock())
    router.step()
    gone, waiting = uuid4(), uuid4()
    service.enqueue_call(first, gone, 0, at(10))
    service.enqueue_call(second, waiting, 0, at(10))
    router.pull()  # both queues marked
    service.abandon_call(first, gone, at(10.05))  # ... which the router has not read yet
    assert router.route(at(10.1)) == 0
    assert router.stats.refused == 1
    router.step()
    assert service.get(Agent, xavier).current_call_id == waiting


def test_calls_timed_out_in_one_sweep_keep_their_arrival_order(service) -> None:
    queue, (alice, bob) = centre(service, "longest_idle", "alice", "bob")
    early, late = uuid4(), uuid4()
    service.enqueue_call(queue, early, 0, at(10))
    service.enqueue_call(queue, late, 0, at(11))
    clock = Clock()
    clock.now = at(12)
    router = RoutingProcess(service, clock=clock)
    router.step()
    assert [service.get(Agent, a).current_call_id for a in (alice, bob)] == [early, late]
    clock.now = at(30)  # both rang out: the sweep times alice's out first, then bob's
    router.step()
    assert router.stats.timeouts == 2
    assert [c.call_id for c in service.get(Queue, queue).calls] == [early, late]
